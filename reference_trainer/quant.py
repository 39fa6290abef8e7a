"""The baseline's export: int8 with per-row scales for large matrices, zlib level 9 over torch.save.

- float matrices above `keep_float_max_numel` elements: int8 per row, rows clipped at the 99.99984th
  percentile of |w|, fp16 scales;
- other large float tensors: int8 with one fp32 scale;
- small float tensors: kept, as fp32 when their name matches a control pattern, else stored as fp16 with
  the original dtype recorded;
- non-float tensors: kept as they are.
The container keys (`__quant_format__: int8_clean_per_row_v1`, quantized/scales/dtypes/passthrough/...) are
the baseline's, so artifacts are interchangeable.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

FORMAT = "int8_clean_per_row_v1"
CLIP_QUANTILE = 99.99984 / 100.0
ZLIB_LEVEL = 9


@dataclass
class QuantStats:
    param_count: int = 0
    num_tensors: int = 0
    num_float_tensors: int = 0
    num_nonfloat_tensors: int = 0
    baseline_tensor_bytes: int = 0  # the state dict's tensors as they were
    int8_payload_bytes: int = 0  # what the quantized container's tensors hold


def _nbytes(t: Tensor) -> int:
    return t.numel() * t.element_size()


def quantize_matrix(w: Tensor) -> tuple[Tensor, Tensor]:
    """int8 rows and fp16 per-row scales; a row's clip value maps to 127, never a scale below 1/127."""
    w = w.float()
    if w.numel():
        clip = torch.quantile(w.abs(), CLIP_QUANTILE, dim=1)
    else:
        clip = torch.empty(w.shape[0], dtype=torch.float32)
    scale = (clip / 127.0).clamp_min(1.0 / 127.0)
    clipped = torch.maximum(torch.minimum(w, clip[:, None]), -clip[:, None])
    q = torch.clamp(torch.round(clipped / scale[:, None]), -127, 127).to(torch.int8)
    return q.contiguous(), scale.to(torch.float16).contiguous()


def quantize_tensor(t: Tensor) -> tuple[Tensor, Tensor]:
    """int8 values and one fp32 scale for a tensor that is not a matrix."""
    t = t.float()
    clip = float(torch.quantile(t.abs().flatten(), CLIP_QUANTILE).item()) if t.numel() else 0.0
    scale = torch.tensor(clip / 127.0 if clip > 0 else 1.0, dtype=torch.float32)
    q = torch.clamp(torch.round(torch.clamp(t, -clip, clip) / scale), -127, 127).to(torch.int8)
    return q.contiguous(), scale


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def quantize_state_dict(
    state: dict[str, Tensor], keep_fp32_patterns: tuple[str, ...], keep_float_max_numel: int
) -> tuple[dict[str, Any], QuantStats]:
    quantized: dict[str, Tensor] = {}
    scales: dict[str, Tensor] = {}
    dtypes: dict[str, str] = {}
    passthrough: dict[str, Tensor] = {}
    orig_dtypes: dict[str, str] = {}
    qmeta: dict[str, dict[str, object]] = {}
    stats = QuantStats()
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        stats.param_count += t.numel()
        stats.num_tensors += 1
        stats.baseline_tensor_bytes += _nbytes(t)
        if not t.is_floating_point():
            stats.num_nonfloat_tensors += 1
            passthrough[name] = t
            stats.int8_payload_bytes += _nbytes(t)
        elif t.numel() <= keep_float_max_numel:
            if any(p in name for p in keep_fp32_patterns):
                kept = t.float().contiguous()
            elif t.dtype in (torch.float32, torch.bfloat16):
                orig_dtypes[name] = _dtype_name(t.dtype)
                kept = t.to(torch.float16).contiguous()
            else:
                kept = t
            passthrough[name] = kept
            stats.int8_payload_bytes += _nbytes(kept)
        else:
            stats.num_float_tensors += 1
            q, s = quantize_matrix(t) if t.ndim == 2 else quantize_tensor(t)
            if s.ndim > 0:
                qmeta[name] = {"scheme": "per_row", "axis": 0}
            quantized[name], scales[name], dtypes[name] = q, s, _dtype_name(t.dtype)
            stats.int8_payload_bytes += _nbytes(q) + _nbytes(s)
    container: dict[str, Any] = {
        "__quant_format__": FORMAT,
        "quantized": quantized,
        "scales": scales,
        "dtypes": dtypes,
        "passthrough": passthrough,
    }
    if qmeta:
        container["qmeta"] = qmeta
    if orig_dtypes:
        container["passthrough_orig_dtypes"] = orig_dtypes
    return container, stats


def dequantize_state_dict(container: dict[str, Any]) -> dict[str, Tensor]:
    if container.get("__quant_format__") != FORMAT:
        raise ValueError(f"not an {FORMAT} container: {container.get('__quant_format__')!r}")
    out: dict[str, Tensor] = {}
    for name, q in container["quantized"].items():
        dtype = getattr(torch, container["dtypes"][name])
        s = container["scales"][name]
        if s.ndim > 0:  # per row: broadcast the row scale over the remaining dimensions
            s = s.float().view(q.shape[0], *([1] * (q.ndim - 1)))
        out[name] = (q.float() * s.float()).to(dtype).contiguous()
    orig_dtypes = container.get("passthrough_orig_dtypes", {})
    for name, t in container["passthrough"].items():
        restored = t.detach().cpu()
        if name in orig_dtypes:
            restored = restored.to(getattr(torch, orig_dtypes[name]))
        out[name] = restored.contiguous()
    return out


def to_bytes(container: dict[str, Any]) -> tuple[bytes, int]:
    """The compressed artifact and the size of the uncompressed torch.save payload."""
    buf = io.BytesIO()
    torch.save(container, buf)
    raw = buf.getvalue()
    return zlib.compress(raw, level=ZLIB_LEVEL), len(raw)


def from_bytes(blob: bytes) -> dict[str, Tensor]:
    container = torch.load(io.BytesIO(zlib.decompress(blob)), map_location="cpu")
    return dequantize_state_dict(container)

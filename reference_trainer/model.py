"""The baseline transformer: GQA attention with rotary embeddings and QK-norm, relu^2 MLP, RMSNorm,
residual mixing with the embedding stream, U-Net style skips between the two halves, tied embeddings and a
tanh logit softcap.

Parameter names (tok_emb, blocks.N.attn.c_q, ..., skip_weights) are the baseline's: the exported
state dict, the control-tensor name patterns and the artifact size depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reference_trainer.config import Hyperparameters


@dataclass(frozen=True)
class ModelShape:
    vocab_size: int
    num_layers: int
    model_dim: int
    num_heads: int
    num_kv_heads: int
    mlp_mult: int
    tie_embeddings: bool
    tied_embed_init_std: float
    logit_softcap: float
    rope_base: float
    qk_gain_init: float

    @classmethod
    def from_hparams(cls, hp: Hyperparameters) -> ModelShape:
        return cls(
            hp.vocab_size, hp.num_layers, hp.model_dim, hp.num_heads, hp.num_kv_heads, hp.mlp_mult,
            hp.tie_embeddings, hp.tied_embed_init_std, hp.logit_softcap, hp.rope_base, hp.qk_gain_init,
        )  # fmt: skip

    def validate(self) -> None:
        if self.model_dim % self.num_heads:
            raise ValueError("MODEL_DIM must be divisible by NUM_HEADS")
        if self.num_heads % self.num_kv_heads:
            raise ValueError("NUM_HEADS must be divisible by NUM_KV_HEADS")
        if (self.model_dim // self.num_heads) % 2:
            raise ValueError("the head dimension must be even for rotary embeddings")
        if self.logit_softcap <= 0:
            raise ValueError("LOGIT_SOFTCAP must be positive")


def rms_norm(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


class RMSNorm(nn.Module):
    """Parameter-free RMSNorm over the last dimension."""

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x)


class Linear(nn.Linear):
    """A bias-free linear layer whose fp32 weight is cast to the activation dtype at matmul time.

    Under bf16 autocast the optimizer keeps full-precision weights while the matmul runs in bf16.
    """

    def __init__(self, d_in: int, d_out: int, zero_init: bool = False) -> None:
        super().__init__(d_in, d_out, bias=False)
        self.zero_init = zero_init

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype))


class RotaryTables(nn.Module):
    """cos/sin tables for rotary embeddings, cached per sequence length and device."""

    def __init__(self, head_dim: int, base: float) -> None:
        super().__init__()
        exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
        self.register_buffer("inv_freq", 1.0 / (base**exponents), persistent=False)
        self._cache: tuple[int, torch.device, Tensor, Tensor] | None = None

    def forward(self, seq_len: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        if self._cache is None or self._cache[0] != seq_len or self._cache[1] != device:
            # Positions take inv_freq's dtype: bf16 after to_training_precision on CUDA, as in the baseline.
            positions = torch.arange(seq_len, device=device, dtype=self.inv_freq.dtype)
            angles = torch.outer(positions, self.inv_freq.to(device))
            self._cache = (seq_len, device, angles.cos()[None, None], angles.sin()[None, None])
        return self._cache[2].to(dtype), self._cache[3].to(dtype)


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the (first half, second half) pairs of the head dimension."""
    h = x.size(-1) // 2
    a, b = x[..., :h], x[..., h:]
    return torch.cat((a * cos + b * sin, b * cos - a * sin), dim=-1)


class Attention(nn.Module):
    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        dim = shape.model_dim
        self.num_heads = shape.num_heads
        self.num_kv_heads = shape.num_kv_heads
        self.head_dim = dim // shape.num_heads
        kv_dim = self.num_kv_heads * self.head_dim
        self.c_q = Linear(dim, dim)
        self.c_k = Linear(dim, kv_dim)
        self.c_v = Linear(dim, kv_dim)
        self.proj = Linear(dim, dim, zero_init=True)
        self.q_gain = nn.Parameter(torch.full((shape.num_heads,), shape.qk_gain_init, dtype=torch.float32))
        self.rotary = RotaryTables(self.head_dim, shape.rope_base)

    def _heads(self, t: Tensor, n: int) -> Tensor:
        bsz, seq, _ = t.shape
        return t.reshape(bsz, seq, n, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        bsz, seq, dim = x.shape
        q = rms_norm(self._heads(self.c_q(x), self.num_heads))
        k = rms_norm(self._heads(self.c_k(x), self.num_kv_heads))
        v = self._heads(self.c_v(x), self.num_kv_heads)
        cos, sin = self.rotary(seq, x.device, q.dtype)
        q = rotate(q, cos, sin) * self.q_gain.to(q.dtype)[None, :, None, None]
        k = rotate(k, cos, sin)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=self.num_kv_heads != self.num_heads
        )
        return self.proj(y.transpose(1, 2).reshape(bsz, seq, dim))


class ReluSquaredMLP(nn.Module):
    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        hidden = shape.mlp_mult * shape.model_dim
        self.fc = Linear(shape.model_dim, hidden)
        self.proj = Linear(hidden, shape.model_dim, zero_init=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(torch.relu(self.fc(x)).square())


class Block(nn.Module):
    """Pre-norm block; its input is first mixed with the embedding stream x0 by learned per-channel weights."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        dim = shape.model_dim
        self.attn_norm = RMSNorm()
        self.mlp_norm = RMSNorm()
        self.attn = Attention(shape)
        self.mlp = ReluSquaredMLP(shape)
        self.attn_scale = nn.Parameter(torch.ones(dim, dtype=torch.float32))
        self.mlp_scale = nn.Parameter(torch.ones(dim, dtype=torch.float32))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(dim), torch.zeros(dim))).float())

    def forward(self, x: Tensor, x0: Tensor) -> Tensor:
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        x = x + self.attn_scale.to(x.dtype) * self.attn(self.attn_norm(x))
        return x + self.mlp_scale.to(x.dtype) * self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    """Returns the mean cross-entropy of the targets, so one compiled graph covers model and loss."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        shape.validate()
        self.shape = shape
        self.tok_emb = nn.Embedding(shape.vocab_size, shape.model_dim)
        self.n_down = shape.num_layers // 2
        self.n_up = shape.num_layers - self.n_down
        n_skips = min(self.n_down, self.n_up)
        self.skip_weights = nn.Parameter(torch.ones(n_skips, shape.model_dim, dtype=torch.float32))
        self.blocks = nn.ModuleList([Block(shape) for _ in range(shape.num_layers)])
        self.final_norm = RMSNorm()
        self.lm_head = (
            None if shape.tie_embeddings else Linear(shape.model_dim, shape.vocab_size, zero_init=True)
        )
        self._init_weights()

    def _init_weights(self) -> None:
        if self.shape.tie_embeddings:
            nn.init.normal_(self.tok_emb.weight, mean=0.0, std=self.shape.tied_embed_init_std)
        for m in self.modules():
            if isinstance(m, Linear) and m.zero_init:
                nn.init.zeros_(m.weight)

    def hidden(self, input_ids: Tensor) -> Tensor:
        x0 = x = rms_norm(self.tok_emb(input_ids))
        skips: list[Tensor] = []
        for block in self.blocks[: self.n_down]:
            x = block(x, x0)
            skips.append(x)
        for i, block in enumerate(self.blocks[self.n_down :]):
            if skips:  # first half's outputs come back in reverse order
                x = x + self.skip_weights[i].to(x.dtype) * skips.pop()
            x = block(x, x0)
        return self.final_norm(x)

    def logits(self, h: Tensor) -> Tensor:
        raw = F.linear(h, self.tok_emb.weight) if self.lm_head is None else self.lm_head(h)
        cap = self.shape.logit_softcap
        return cap * torch.tanh(raw / cap)

    def forward(self, input_ids: Tensor, target_ids: Tensor) -> Tensor:
        h = self.hidden(input_ids).reshape(-1, self.shape.model_dim)
        return F.cross_entropy(self.logits(h).float(), target_ids.reshape(-1), reduction="mean")


def is_control_tensor(name: str, param: Tensor, patterns: tuple[str, ...]) -> bool:
    """Vectors, scalars and named control matrices: trained by Adam, kept in fp32."""
    return param.ndim < 2 or any(p in name for p in patterns)


def to_training_precision(model: GPT, patterns: tuple[str, ...]) -> None:
    """The baseline's CUDA precision layout: cast everything (buffers included) to bf16, then return the
    linear weights and the control tensors to fp32. The token embedding stays bf16, and so does the rotary
    inv_freq buffer, which makes the position angles bf16-rounded; both are kept for parity."""
    model.bfloat16()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Linear):
                m.float()
        for name, p in model.named_parameters():
            if is_control_tensor(name, p, patterns) and p.dtype != torch.float32:
                p.data = p.data.float()

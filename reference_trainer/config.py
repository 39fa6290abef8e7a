"""Hyperparameters from environment variables, with the official baseline's names and defaults.

The defaults are the baseline's "Simple Baseline" run: 9 blocks at width 512, 8 heads / 4 KV heads, MLP x2,
vocab 1024, sequence 1024, tied embeddings, 524,288 tokens per step, 20,000 iterations under a 600 s cap.
Three variables are this implementation's own (the baseline is CUDA-only and writes to the working
directory): DEVICE, COMPILE and OUT_DIR.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

CONTROL_PATTERNS_DEFAULT = (
    "attn_scale,attn_scales,mlp_scale,mlp_scales,resid_mix,resid_mixes,q_gain,skip_weight,skip_weights"
)


def _bool(text: str) -> bool:
    return bool(int(text))


def _patterns(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.split(",") if p)


def _env(name: str, default: Any, parse: Any = None) -> Any:
    """A dataclass field read from the environment by `from_env`; `parse` turns the string into the value."""
    return field(default=default, metadata={"env": name, "parse": parse or type(default)})


@dataclass(frozen=True)
class Hyperparameters:
    # Data: shard globs under DATA_PATH, as produced by the official export.
    data_path: str = _env("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    tokenizer_path: str = _env("TOKENIZER_PATH", "./data/tokenizers/fineweb_1024_bpe.model")
    run_id: str = _env("RUN_ID", "")  # empty: a fresh uuid4, as the baseline does
    seed: int = _env("SEED", 1337)

    # Validation always covers the whole val split.
    val_batch_size: int = _env("VAL_BATCH_SIZE", 524_288)
    val_loss_every: int = _env("VAL_LOSS_EVERY", 1000)
    train_log_every: int = _env("TRAIN_LOG_EVERY", 200)

    # Training length and batch.
    iterations: int = _env("ITERATIONS", 20000)
    warmdown_iters: int = _env("WARMDOWN_ITERS", 1200)
    warmup_steps: int = _env("WARMUP_STEPS", 20)
    train_batch_tokens: int = _env("TRAIN_BATCH_TOKENS", 524_288)
    train_seq_len: int = _env("TRAIN_SEQ_LEN", 1024)
    max_wallclock_seconds: float = _env("MAX_WALLCLOCK_SECONDS", 600.0)
    qk_gain_init: float = _env("QK_GAIN_INIT", 1.5)

    # Model shape.
    vocab_size: int = _env("VOCAB_SIZE", 1024)
    num_layers: int = _env("NUM_LAYERS", 9)
    num_kv_heads: int = _env("NUM_KV_HEADS", 4)
    model_dim: int = _env("MODEL_DIM", 512)
    num_heads: int = _env("NUM_HEADS", 8)
    mlp_mult: int = _env("MLP_MULT", 2)
    tie_embeddings: bool = _env("TIE_EMBEDDINGS", True, _bool)
    rope_base: float = _env("ROPE_BASE", 10000.0)
    logit_softcap: float = _env("LOGIT_SOFTCAP", 30.0)

    # Optimizers: Adam for embeddings/head/scalars, Muon for block matrices.
    embed_lr: float = _env("EMBED_LR", 0.6)
    head_lr: float = _env("HEAD_LR", 0.008)
    tied_embed_lr: float = _env("TIED_EMBED_LR", 0.05)
    tied_embed_init_std: float = _env("TIED_EMBED_INIT_STD", 0.005)
    matrix_lr: float = _env("MATRIX_LR", 0.04)
    scalar_lr: float = _env("SCALAR_LR", 0.04)
    muon_momentum: float = _env("MUON_MOMENTUM", 0.95)
    muon_backend_steps: int = _env("MUON_BACKEND_STEPS", 5)
    muon_momentum_warmup_start: float = _env("MUON_MOMENTUM_WARMUP_START", 0.85)
    muon_momentum_warmup_steps: int = _env("MUON_MOMENTUM_WARMUP_STEPS", 500)
    beta1: float = _env("BETA1", 0.9)
    beta2: float = _env("BETA2", 0.95)
    adam_eps: float = _env("ADAM_EPS", 1e-8)
    grad_clip_norm: float = _env("GRAD_CLIP_NORM", 0.0)

    # Which parameters are "control" tensors (Adam, and kept fp32 by the int8 export).
    control_tensor_name_patterns: tuple[str, ...] = _env(
        "CONTROL_TENSOR_NAME_PATTERNS", _patterns(CONTROL_PATTERNS_DEFAULT), _patterns
    )
    int8_keep_float_fp32_name_patterns: tuple[str, ...] | None = _env(
        "INT8_KEEP_FLOAT_FP32_NAME_PATTERNS", None, _patterns
    )  # None: same as the control patterns
    # A constant in the baseline; an env var here so tiny test models also exercise the int8 path.
    int8_keep_float_max_numel: int = _env("INT8_KEEP_FLOAT_MAX_NUMEL", 65_536)

    # This implementation's own switches.
    device: str = _env("DEVICE", "auto")  # auto | cpu | cuda
    compile: str = _env("COMPILE", "auto")  # auto (on for CUDA) | 0 | 1
    out_dir: str = _env("OUT_DIR", ".")  # where logs/ and the model files go

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Hyperparameters:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name in env:
                try:
                    values[f.name] = f.metadata["parse"](env[name])
                except ValueError:
                    raise ValueError(f"{name}={env[name]!r} is not a valid {f.type}") from None
        hp = cls(**values)
        if not hp.run_id:
            hp = _replace(hp, run_id=str(uuid.uuid4()))
        if hp.int8_keep_float_fp32_name_patterns is None:
            hp = _replace(hp, int8_keep_float_fp32_name_patterns=hp.control_tensor_name_patterns)
        return hp

    @property
    def train_files(self) -> str:
        return os.path.join(self.data_path, "fineweb_train_*.bin")

    @property
    def val_files(self) -> str:
        return os.path.join(self.data_path, "fineweb_val_*.bin")

    @property
    def token_lr(self) -> float:
        return self.tied_embed_lr if self.tie_embeddings else self.embed_lr


def _replace(hp: Hyperparameters, **changes: Any) -> Hyperparameters:
    from dataclasses import replace

    return replace(hp, **changes)

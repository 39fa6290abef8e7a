"""Validation: mean token cross-entropy (nats) and bits per byte over the whole val split.

Bytes per target come from pgaudit.bytes_accounting's tables, the same definition `pgaudit bpb` checks.
Each rank scores a contiguous range of sequences; sums are all-reduced in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pgaudit.bytes_accounting import ByteTables
from reference_trainer.runtime import Runtime


@dataclass(frozen=True)
class DeviceByteTables:
    base_bytes: Tensor
    has_leading_space: Tensor
    is_boundary: Tensor

    @classmethod
    def from_tables(cls, tables: ByteTables, device: torch.device) -> DeviceByteTables:
        return cls(
            torch.as_tensor(tables.base_bytes, device=device),
            torch.as_tensor(tables.has_leading_space, device=device),
            torch.as_tensor(tables.is_boundary, device=device),
        )

    def count(self, prev: Tensor, tgt: Tensor) -> Tensor:
        extra = self.has_leading_space[tgt] & ~self.is_boundary[prev]
        return self.base_bytes[tgt].to(torch.float64).sum() + extra.to(torch.float64).sum()


@dataclass(frozen=True)
class EvalResult:
    val_loss: float
    val_bpb: float
    tokens: float
    bytes: float


def evaluate(
    model: nn.Module,
    val_tokens: Tensor,
    tables: DeviceByteTables,
    seq_len: int,
    val_batch_size: int,
    rt: Runtime,
) -> EvalResult:
    local_tokens = val_batch_size // (rt.world_size * rt.grad_accum_steps)
    if local_tokens < seq_len:
        raise ValueError(
            f"VAL_BATCH_SIZE={val_batch_size} gives fewer than one sequence of {seq_len} per rank "
            f"(world_size={rt.world_size}, grad_accum_steps={rt.grad_accum_steps})"
        )
    seqs_per_batch = local_tokens // seq_len
    total_seqs = (val_tokens.numel() - 1) // seq_len
    first = total_seqs * rt.rank // rt.world_size
    last = total_seqs * (rt.rank + 1) // rt.world_size
    sums = torch.zeros(3, device=rt.device, dtype=torch.float64)  # loss*tokens, tokens, bytes

    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for s in range(first, last, seqs_per_batch):
            e = min(s + seqs_per_batch, last)
            chunk = val_tokens[s * seq_len : e * seq_len + 1].to(
                rt.device, dtype=torch.int64, non_blocking=True
            )
            x = chunk[:-1].reshape(-1, seq_len)
            y = chunk[1:].reshape(-1, seq_len)
            with rt.autocast():
                loss = model(x, y).detach()
            n = float(y.numel())
            sums[0] += loss.to(torch.float64) * n
            sums[1] += n
            sums[2] += tables.count(x.reshape(-1), y.reshape(-1))
    rt.all_reduce_(sums)
    model.train(was_training)
    loss_sum, tokens, nbytes = (float(v) for v in sums.tolist())
    val_loss = loss_sum / tokens
    return EvalResult(val_loss, val_loss / math.log(2.0) * tokens / nbytes, tokens, nbytes)

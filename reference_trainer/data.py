"""Token shards as torch tensors: the training stream split across ranks, and the validation tokens."""

from __future__ import annotations

from pathlib import Path

import torch

from pgaudit import shards


def load_shard(path: Path) -> torch.Tensor:
    """One shard as a uint16 tensor; bad magic, version or size raise shards.ShardFormatError."""
    return torch.from_numpy(shards.read_shard(path))


class TokenStream:
    """Reads the shards in sorted order, one after another, and wraps around: no sampling, no workers."""

    def __init__(self, pattern: str) -> None:
        self.paths = shards.expand(pattern)
        if not self.paths:
            raise FileNotFoundError(f"no training shards match {pattern}")
        self.index = 0
        self.tokens = load_shard(self.paths[0])
        self.pos = 0

    def _next_shard(self) -> None:
        self.index = (self.index + 1) % len(self.paths)
        self.tokens = load_shard(self.paths[self.index])
        self.pos = 0

    def take(self, n: int) -> torch.Tensor:
        pieces: list[torch.Tensor] = []
        while n > 0:
            left = self.tokens.numel() - self.pos
            if left <= 0:
                self._next_shard()
                continue
            k = min(n, left)
            pieces.append(self.tokens[self.pos : self.pos + k])
            self.pos += k
            n -= k
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


class RankBatcher:
    """Each micro-batch takes one contiguous chunk of the stream and gives rank r the r-th slice of it.

    A slice holds local_tokens + 1 tokens so that inputs and targets are the same span shifted by one.
    With world_size * grad_accum_steps fixed, every process count trains on the same tokens per step.
    """

    def __init__(self, pattern: str, rank: int, world_size: int, device: torch.device) -> None:
        self.stream = TokenStream(pattern)
        self.rank = rank
        self.world_size = world_size
        self.device = device

    def next_batch(
        self, global_tokens: int, seq_len: int, grad_accum_steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        local_tokens = global_tokens // (self.world_size * grad_accum_steps)
        if local_tokens < seq_len or local_tokens % seq_len:
            raise ValueError(
                f"TRAIN_BATCH_TOKENS={global_tokens} gives {local_tokens} tokens per micro-batch, "
                f"not a positive multiple of TRAIN_SEQ_LEN={seq_len}"
            )
        span = local_tokens + 1
        chunk = self.stream.take(span * self.world_size)
        mine = chunk[self.rank * span : (self.rank + 1) * span].to(torch.int64)
        x = mine[:-1].reshape(-1, seq_len)
        y = mine[1:].reshape(-1, seq_len)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def load_validation_tokens(pattern: str, seq_len: int) -> torch.Tensor:
    """All val shards in sorted order, cut to a whole number of sequences plus the one target token.

    Byte sidecars (fineweb_val_bytes_*) also match the val glob and are left out.
    """
    paths = shards.expand(pattern, exclude_sidecars=True)
    if not paths:
        raise FileNotFoundError(f"no validation shards match {pattern}")
    tokens = torch.from_numpy(shards.read_many(paths))
    usable = ((tokens.numel() - 1) // seq_len) * seq_len
    if usable <= 0:
        raise ValueError(f"validation split is too short for TRAIN_SEQ_LEN={seq_len}")
    return tokens[: usable + 1]

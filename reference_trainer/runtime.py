"""Where the run executes: device, precision, process group. The one place that touches CUDA APIs.

CUDA: NCCL, bf16 autocast, torch.compile, flash attention only (as the baseline). CPU: gloo, fp32, eager.
torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them the run is a single process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

from reference_trainer.config import Hyperparameters

# The global batch is split over world_size * grad_accum_steps micro-batches; the baseline fixes the
# product at 8 so that 1, 2, 4 or 8 processes see the same optimisation problem.
MICRO_BATCHES_PER_STEP = 8


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int
    world_size: int
    local_rank: int
    distributed: bool
    compile: bool

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def master(self) -> bool:
        return self.rank == 0

    @property
    def grad_accum_steps(self) -> int:
        return MICRO_BATCHES_PER_STEP // self.world_size

    @property
    def compute_dtype(self) -> torch.dtype:
        """Matmul precision: bf16 autocast on CUDA, plain fp32 on CPU."""
        return torch.bfloat16 if self.is_cuda else torch.float32

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.is_cuda:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        """Wait for queued GPU work so that wall-clock timings are real; a no-op on CPU."""
        if self.is_cuda:
            torch.cuda.synchronize(self.device)

    def all_reduce_(self, tensor: torch.Tensor, op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM) -> None:
        if self.distributed:
            dist.all_reduce(tensor, op=op)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def peak_memory_line(self) -> str | None:
        if not self.is_cuda:
            return None
        allocated = torch.cuda.max_memory_allocated(self.device) // 1024 // 1024
        reserved = torch.cuda.max_memory_reserved(self.device) // 1024 // 1024
        return f"peak memory allocated: {allocated} MiB reserved: {reserved} MiB"


def _choose_device(requested: str, local_rank: int) -> torch.device:
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"DEVICE must be auto, cpu or cuda, not {requested!r}")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("DEVICE=cuda but CUDA is not available")
    return torch.device("cuda", local_rank)


def setup(hp: Hyperparameters, env: Mapping[str, str] | None = None) -> Runtime:
    """Pick the device, join the process group, set the fast-math switches of the CUDA path."""
    env = os.environ if env is None else env
    distributed = "RANK" in env and "WORLD_SIZE" in env
    rank = int(env.get("RANK", "0"))
    world_size = int(env.get("WORLD_SIZE", "1"))
    local_rank = int(env.get("LOCAL_RANK", "0"))
    if world_size <= 0 or MICRO_BATCHES_PER_STEP % world_size:
        raise ValueError(f"WORLD_SIZE={world_size} must divide {MICRO_BATCHES_PER_STEP}")
    device = _choose_device(hp.device, local_rank)
    if hp.compile not in ("auto", "0", "1"):
        raise ValueError(f"COMPILE must be auto, 0 or 1, not {hp.compile!r}")
    use_compile = hp.compile == "1" or (hp.compile == "auto" and device.type == "cuda")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.enable_cudnn_sdp(False)
        torch.backends.cuda.enable_flash_sdp(True)
        torch.backends.cuda.enable_mem_efficient_sdp(False)
        torch.backends.cuda.enable_math_sdp(False)
    if distributed:
        if device.type == "cuda":
            dist.init_process_group(backend="nccl", device_id=device)
        else:
            dist.init_process_group(backend="gloo")
        dist.barrier()
    return Runtime(device, rank, world_size, local_rank, distributed, use_compile)


def teardown(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        # every rank reaches the end before the group goes away: a rank that tears gloo down while its peer
        # is still in a collective aborts the peer ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()


def seed_everything(seed: int, rt: Runtime) -> None:
    """Seed every generator the run uses (CUDA's only on the CUDA path)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if rt.is_cuda:
        torch.cuda.manual_seed_all(seed)

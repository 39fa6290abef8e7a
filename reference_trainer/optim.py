"""Optimizers: Muon (orthogonalized Nesterov momentum) for block matrices, Adam for everything else,
and the learning-rate / momentum schedules of the baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from reference_trainer.config import Hyperparameters
from reference_trainer.model import GPT, is_control_tensor
from reference_trainer.runtime import Runtime

# Quintic Newton-Schulz coefficients tuned for fast convergence of the singular values towards 1
# (Keller Jordan's Muon): a few iterations give an approximately orthogonal update.
NS_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz(g: Tensor, steps: int, dtype: torch.dtype, eps: float = 1e-7) -> Tensor:
    """Approximately U V^T for g = U S V^T, iterating on the wide orientation of the matrix."""
    a, b, c = NS_COEFFS
    x = g.to(dtype)
    x = x / (x.norm() + eps)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Each rank orthogonalizes every world_size-th matrix; one all-reduce shares the updates.

    The update of a (rows x cols) matrix is scaled by sqrt(max(1, rows/cols)), as in the Muon reference.
    """

    def __init__(
        self,
        params: list[Tensor],
        lr: float,
        momentum: float,
        backend_steps: int,
        rt: Runtime,
        orthogonalize: Callable[[Tensor, int, torch.dtype], Tensor] = newton_schulz,
    ) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "backend_steps": backend_steps})
        self.rt = rt
        self.orthogonalize = orthogonalize

    def _direction(self, p: Tensor, momentum: float, steps: int) -> Tensor:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p.grad)
        buf = state["momentum_buffer"]
        buf.mul_(momentum).add_(p.grad)
        nesterov = p.grad.add(buf, alpha=momentum)
        update = self.orthogonalize(nesterov, steps, self.rt.compute_dtype)
        return update * max(1.0, p.size(0) / p.size(1)) ** 0.5

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            params: list[Tensor] = group["params"]
            if not params:
                continue
            flat = torch.zeros(
                sum(p.numel() for p in params), device=params[0].device, dtype=self.rt.compute_dtype
            )
            offset = 0
            for i, p in enumerate(params):
                if i % self.rt.world_size == self.rt.rank and p.grad is not None:
                    flat[offset : offset + p.numel()] = self._direction(
                        p, group["momentum"], group["backend_steps"]
                    ).reshape(-1)
                offset += p.numel()
            self.rt.all_reduce_(flat)  # ranks wrote disjoint slices: the sum is the concatenation
            offset = 0
            for p in params:
                p.add_(flat[offset : offset + p.numel()].view_as(p).to(p.dtype), alpha=-group["lr"])
                offset += p.numel()


@dataclass
class OptimizerSet:
    optimizers: list[torch.optim.Optimizer]
    muon: Muon

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def set_lr_scale(self, scale: float) -> None:
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * scale

    def set_muon_momentum(self, momentum: float) -> None:
        for group in self.muon.param_groups:
            group["momentum"] = momentum

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()


def build_optimizers(model: GPT, hp: Hyperparameters, rt: Runtime) -> OptimizerSet:
    """Token embedding: Adam at TIED_EMBED_LR (or EMBED_LR); untied head: Adam at HEAD_LR; block matrices:
    Muon at MATRIX_LR; block vectors, control tensors and skip weights: Adam at SCALAR_LR."""
    patterns = hp.control_tensor_name_patterns
    named = list(model.blocks.named_parameters())
    matrices = [p for n, p in named if not is_control_tensor(n, p, patterns)]
    scalars = [p for n, p in named if is_control_tensor(n, p, patterns)]
    if model.skip_weights.numel() > 0:
        scalars.append(model.skip_weights)

    def adam(params: list[Tensor], lr: float) -> torch.optim.Adam:
        return torch.optim.Adam(
            [{"params": params, "lr": lr, "base_lr": lr}],
            betas=(hp.beta1, hp.beta2),
            eps=hp.adam_eps,
            fused=rt.is_cuda,
        )

    muon = Muon(matrices, hp.matrix_lr, hp.muon_momentum, hp.muon_backend_steps, rt)
    for group in muon.param_groups:
        group["base_lr"] = hp.matrix_lr
    optimizers: list[torch.optim.Optimizer] = [adam([model.tok_emb.weight], hp.token_lr), muon]
    if model.lm_head is not None:
        optimizers.insert(1, adam([model.lm_head.weight], hp.head_lr))
    optimizers.append(adam(scalars, hp.scalar_lr))
    return OptimizerSet(optimizers, muon)


def lr_scale(hp: Hyperparameters, step: int, elapsed_ms: float) -> float:
    """1.0, then a linear warmdown to 0 over the last WARMDOWN_ITERS steps.

    Under a wall-clock cap the warmdown is timed: it starts when the time left equals WARMDOWN_ITERS steps
    at the average step time so far, so the rate reaches 0 as the cap is hit.
    """
    if hp.warmdown_iters <= 0:
        return 1.0
    if hp.max_wallclock_seconds <= 0:
        start = max(hp.iterations - hp.warmdown_iters, 0)
        if start <= step < hp.iterations:
            return max((hp.iterations - step) / max(hp.warmdown_iters, 1), 0.0)
        return 1.0
    warmdown_ms = hp.warmdown_iters * elapsed_ms / max(step, 1)
    left_ms = max(1000.0 * hp.max_wallclock_seconds - elapsed_ms, 0.0)
    return left_ms / max(warmdown_ms, 1e-9) if left_ms <= warmdown_ms else 1.0


def muon_momentum(hp: Hyperparameters, step: int) -> float:
    """Linear warmup of the Muon momentum from MUON_MOMENTUM_WARMUP_START over MUON_MOMENTUM_WARMUP_STEPS."""
    if hp.muon_momentum_warmup_steps <= 0:
        return hp.muon_momentum
    frac = min(step / hp.muon_momentum_warmup_steps, 1.0)
    return (1 - frac) * hp.muon_momentum_warmup_start + frac * hp.muon_momentum

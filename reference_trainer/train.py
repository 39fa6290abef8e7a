"""The training run: setup, compile warmup, the wall-clock-capped loop, int8+zlib export and its round trip.

Timing follows the baseline: train_time counts only training steps (validation pauses the clock), and the
cap is checked after each step, so the run stops at the first step that ends past MAX_WALLCLOCK_SECONDS.
"""

from __future__ import annotations

import contextlib
import copy
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from pgaudit.bytes_accounting import build_byte_tables, load_tokenizer
from reference_trainer import log as fmt
from reference_trainer import quant, runtime
from reference_trainer.config import Hyperparameters
from reference_trainer.data import RankBatcher, load_validation_tokens
from reference_trainer.evaluate import DeviceByteTables, EvalResult, evaluate
from reference_trainer.model import GPT, ModelShape, to_training_precision
from reference_trainer.optim import OptimizerSet, build_optimizers, lr_scale, muon_momentum, newton_schulz
from reference_trainer.runtime import Runtime

PACKAGE_DIR = Path(__file__).resolve().parent
# pgaudit modules the trainer runs; they count towards "Code size" with the trainer's own sources.
SHARED_MODULES = ("errors.py", "shards.py", "caseops.py", "bytes_accounting.py")


@dataclass(frozen=True)
class TrainResult:
    steps: int
    final: EvalResult  # last validation before export
    roundtrip: EvalResult  # after int8+zlib export and reload
    artifact_bytes: int
    log_path: Path | None


def code_sources() -> list[tuple[str, str]]:
    files = sorted(PACKAGE_DIR.glob("*.py")) + [PACKAGE_DIR.parent / "pgaudit" / m for m in SHARED_MODULES]
    return [(f"{p.parent.name}/{p.name}", p.read_text(encoding="utf-8")) for p in files]


class Session:
    """State shared by the phases of one run."""

    def __init__(self, hp: Hyperparameters, rt: Runtime) -> None:
        self.hp = hp
        self.rt = rt
        self.out = Path(hp.out_dir)
        self.log = fmt.RunLog(self.out, hp.run_id, rt.master)
        self.sources = code_sources()
        self.code_bytes = sum(len(text.encode("utf-8")) for _, text in self.sources)

    def log_environment(self) -> None:
        for name, text in self.sources:  # what ran, for audits that diff it against the submission
            self.log(f"# ===== {name} =====\n{text}", console=False)
        self.log("=" * 100, console=False)
        self.log(f"Running Python {sys.version}", console=False)
        self.log(f"Running PyTorch {torch.__version__}", console=False)
        if self.rt.is_cuda:
            smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=False)
            self.log(smi.stdout, console=False)
        self.log("=" * 100, console=False)


def _load_data(s: Session) -> tuple[Tensor, DeviceByteTables]:
    hp = s.hp
    if not hp.tokenizer_path.endswith(".model"):
        raise ValueError(f"only SentencePiece .model tokenizers are supported: {hp.tokenizer_path}")
    sp = load_tokenizer(hp.tokenizer_path)
    if int(sp.vocab_size()) != hp.vocab_size:
        raise ValueError(
            f"VOCAB_SIZE={hp.vocab_size} does not match tokenizer vocab_size={int(sp.vocab_size())}"
        )
    val_tokens = load_validation_tokens(hp.val_files, hp.train_seq_len)
    tables = DeviceByteTables.from_tables(build_byte_tables(sp, hp.vocab_size), s.rt.device)
    dataset_dir = Path(hp.data_path).resolve()
    n_train = len(list(dataset_dir.glob("fineweb_train_*.bin")))
    s.log(f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={hp.tokenizer_path}")
    s.log(f"train_loader:dataset:{dataset_dir.name} train_shards:{n_train}")
    s.log(f"val_loader:shards pattern={hp.val_files} tokens:{val_tokens.numel() - 1}")
    return val_tokens, tables


def _build_model(s: Session) -> tuple[GPT, nn.Module]:
    """The bare model (for export and optimizers) and the one to call (compiled and/or DDP-wrapped)."""
    base = GPT(ModelShape.from_hparams(s.hp)).to(s.rt.device)
    if s.rt.is_cuda:
        to_training_precision(base, s.hp.control_tensor_name_patterns)
    model: nn.Module = torch.compile(base, dynamic=False, fullgraph=True) if s.rt.compile else base
    if s.rt.distributed:
        device_ids = [s.rt.local_rank] if s.rt.is_cuda else None
        model = DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)
    return base, model


def _log_setup(s: Session, base: GPT) -> None:
    hp, rt = s.hp, s.rt
    s.log(f"model_params:{sum(p.numel() for p in base.parameters())}")
    s.log(f"world_size:{rt.world_size} grad_accum_steps:{rt.grad_accum_steps}")
    if rt.is_cuda:
        s.log("sdp_backends:cudnn=False flash=True mem_efficient=False math=False")
    s.log(f"attention_mode:gqa num_heads:{hp.num_heads} num_kv_heads:{hp.num_kv_heads}")
    head_lr = hp.head_lr if base.lm_head is not None else 0.0
    s.log(
        f"tie_embeddings:{hp.tie_embeddings} embed_lr:{hp.token_lr} head_lr:{head_lr} "
        f"matrix_lr:{hp.matrix_lr} scalar_lr:{hp.scalar_lr}"
    )
    s.log(
        f"train_batch_tokens:{hp.train_batch_tokens} train_seq_len:{hp.train_seq_len} "
        f"iterations:{hp.iterations} warmup_steps:{hp.warmup_steps} "
        f"max_wallclock_seconds:{hp.max_wallclock_seconds:.3f}"
    )
    s.log(f"seed:{hp.seed}")


def _accumulate(s: Session, model: nn.Module, loader: RankBatcher, opts: OptimizerSet) -> Tensor:
    """Forward/backward over this rank's micro-batches; DDP syncs gradients on the last one only."""
    hp, rt = s.hp, s.rt
    opts.zero_grad()
    total = torch.zeros((), device=rt.device)
    for micro in range(rt.grad_accum_steps):
        last = micro == rt.grad_accum_steps - 1
        no_sync = model.no_sync() if rt.distributed and not last else contextlib.nullcontext()
        with no_sync:
            x, y = loader.next_batch(hp.train_batch_tokens, hp.train_seq_len, rt.grad_accum_steps)
            with rt.autocast():
                loss = model(x, y)
            total += loss.detach()
            (loss / rt.grad_accum_steps).backward()
    return total / rt.grad_accum_steps


def _warm_up(s: Session, base: GPT, model: nn.Module, opts: OptimizerSet) -> None:
    """Run WARMUP_STEPS real steps to compile and allocate, then restore the initial weights and states."""
    if s.hp.warmup_steps <= 0:
        return
    weights = {k: v.detach().cpu().clone() for k, v in base.state_dict().items()}
    states = [copy.deepcopy(opt.state_dict()) for opt in opts.optimizers]
    loader = RankBatcher(s.hp.train_files, s.rt.rank, s.rt.world_size, s.rt.device)
    model.train()
    n = s.hp.warmup_steps
    for i in range(1, n + 1):
        _accumulate(s, model, loader, opts)
        opts.step()
        opts.zero_grad()
        if n <= 20 or i % 10 == 0 or i == n:
            s.log(f"warmup_step:{i}/{n}")
    base.load_state_dict(weights, strict=True)
    for opt, state in zip(opts.optimizers, states, strict=True):
        opt.load_state_dict(state)
    opts.zero_grad()


def _train_loop(
    s: Session, model: nn.Module, base: GPT, opts: OptimizerSet, val_tokens: Tensor, tables: DeviceByteTables
) -> tuple[int, EvalResult]:
    hp, rt = s.hp, s.rt
    loader = RankBatcher(hp.train_files, rt.rank, rt.world_size, rt.device)
    cap_ms = 1000.0 * hp.max_wallclock_seconds if hp.max_wallclock_seconds > 0 else None
    train_ms = 0.0
    stop_after: int | None = None
    last_eval: EvalResult | None = None
    rt.synchronize()
    t0 = time.perf_counter()
    step = 0
    while True:
        last = step == hp.iterations or (stop_after is not None and step >= stop_after)
        if last or (hp.val_loss_every > 0 and step % hp.val_loss_every == 0):
            rt.synchronize()
            train_ms += 1000.0 * (time.perf_counter() - t0)
            last_eval = evaluate(model, val_tokens, tables, hp.train_seq_len, hp.val_batch_size, rt)
            s.log(fmt.val_line(step, hp.iterations, last_eval.val_loss, last_eval.val_bpb, train_ms))
            rt.synchronize()
            t0 = time.perf_counter()
        if last:
            if stop_after is not None and step < hp.iterations:
                s.log(fmt.stopping_early_line(train_ms, step, hp.iterations))
            break

        scale = lr_scale(hp, step, train_ms + 1000.0 * (time.perf_counter() - t0))
        train_loss = _accumulate(s, model, loader, opts)
        opts.set_muon_momentum(muon_momentum(hp, step))
        opts.set_lr_scale(scale)
        if hp.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(base.parameters(), hp.grad_clip_norm)
        opts.step()
        opts.zero_grad()
        step += 1

        approx_ms = train_ms + 1000.0 * (time.perf_counter() - t0)
        if hp.train_log_every > 0 and (
            step <= 10 or step % hp.train_log_every == 0 or stop_after is not None
        ):
            s.log(fmt.train_line(step, hp.iterations, train_loss.item(), approx_ms))
        reached = cap_ms is not None and approx_ms >= cap_ms
        if rt.distributed and cap_ms is not None:  # every rank must stop at the same step
            flag = torch.tensor(int(reached), device=rt.device)
            rt.all_reduce_(flag, op=torch.distributed.ReduceOp.MAX)
            reached = bool(flag.item())
        if stop_after is None and reached:
            stop_after = step
    assert last_eval is not None
    return step, last_eval


def _export_and_reload(
    s: Session, model: nn.Module, base: GPT, val_tokens: Tensor, tables: DeviceByteTables
) -> tuple[int, EvalResult]:
    hp, rt = s.hp, s.rt
    raw_path, art_path = s.out / "final_model.pt", s.out / "final_model.int8.ptz"
    if rt.master:
        torch.save(base.state_dict(), raw_path)
        for line in fmt.raw_size_lines(raw_path.stat().st_size, s.code_bytes):
            s.log(line)
    container, stats = quant.quantize_state_dict(
        base.state_dict(), hp.int8_keep_float_fp32_name_patterns or (), hp.int8_keep_float_max_numel
    )
    blob, raw_torch_bytes = quant.to_bytes(container)
    if rt.master:
        art_path.write_bytes(blob)
        lines = fmt.int8_size_lines(
            art_path.stat().st_size,
            stats.int8_payload_bytes,
            raw_torch_bytes,
            stats.baseline_tensor_bytes,
            s.code_bytes,
        )
        for line in lines:
            s.log(line)
    rt.barrier()
    base.load_state_dict(quant.from_bytes(art_path.read_bytes()), strict=True)
    rt.synchronize()
    t = time.perf_counter()
    result = evaluate(model, val_tokens, tables, hp.train_seq_len, hp.val_batch_size, rt)
    rt.synchronize()
    for line in fmt.roundtrip_lines(result.val_loss, result.val_bpb, 1000.0 * (time.perf_counter() - t)):
        s.log(line)
    return art_path.stat().st_size, result


def train(hp: Hyperparameters, rt: Runtime) -> TrainResult:
    s = Session(hp, rt)
    s.log_environment()
    runtime.seed_everything(hp.seed, rt)
    val_tokens, tables = _load_data(s)
    base, model = _build_model(s)
    opts = build_optimizers(base, hp, rt)
    if rt.compile:
        opts.muon.orthogonalize = torch.compile(newton_schulz)
    _log_setup(s, base)
    _warm_up(s, base, model, opts)
    steps, final = _train_loop(s, model, base, opts, val_tokens, tables)
    peak = rt.peak_memory_line()
    if peak:
        s.log(peak)
    artifact_bytes, roundtrip = _export_and_reload(s, model, base, val_tokens, tables)
    return TrainResult(steps, final, roundtrip, artifact_bytes, s.log.path)


def main() -> None:
    hp = Hyperparameters.from_env()
    rt = runtime.setup(hp)
    try:
        train(hp, rt)
    finally:
        runtime.teardown(rt)

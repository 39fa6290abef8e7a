"""Settings of one `pgaudit reproduce` call and the checks that turn bad input into one-line errors."""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pgaudit.errors import InputError, UsageError

DEFAULT_SEEDS = (1337, 42, 2025)
OFFICIAL_TRAIN_S = 600.0
OFFICIAL_EVAL_S = 600.0
# Start-up, data loading, compile warmup and serialization are outside the two official budgets.
DEFAULT_SLACK_S = 300.0


@dataclass
class ReproOptions:
    record_dir: Path
    out_dir: Path
    seeds: list[int] = field(default_factory=list)  # empty: from the folder, else DEFAULT_SEEDS
    n_seeds: int = 3
    nproc: int = 8
    nnodes: int = 1
    rdzv_endpoint: str | None = None
    launcher: list[str] = field(default_factory=list)  # empty: torchrun, else `python -m torch.distributed.run`
    script: str = "train_gpt.py"
    data_path: Path | None = None
    tokenizer_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    device: str = "cuda"  # cuda | cpu
    time_limit_s: float = OFFICIAL_TRAIN_S + OFFICIAL_EVAL_S + DEFAULT_SLACK_S
    kill_grace_s: float = 30.0
    resume: bool = False
    tolerance_floor: float = 0.002  # bpb: below this no difference is called a failure to reproduce
    tolerance_k: float = 3.0  # tolerance = max(floor, k x the claimed seeds' standard deviation)
    bytes_tolerance: float = 0.005  # relative difference of artifact bytes allowed against the claim
    calibration: Path | None = None  # calibration.json of this machine (pgaudit reproduce --calibrate)
    live: bool | None = None  # rich live table: None = when stderr is a terminal


def resolve_launcher(launcher: str | None) -> list[str]:
    """The torchrun command: --launcher, else `torchrun` on PATH, else `python -m torch.distributed.run`."""
    if launcher:
        argv = shlex.split(launcher)
        if not argv or shutil.which(argv[0]) is None:
            raise UsageError(f"launcher {launcher!r} not found (give an executable with --launcher)")
        return argv
    found = shutil.which("torchrun")
    if found:
        return [found]
    if importlib.util.find_spec("torch") is not None:
        return [sys.executable, "-m", "torch.distributed.run"]
    raise UsageError("torchrun not found and torch is not installed: pip install 'pgaudit[trainer]' or pass --launcher")


def default_data_paths(data_path: Path | None, tokenizer_path: Path | None) -> tuple[Path, Path]:
    """The official layout: data/datasets/fineweb10B_spV/ next to data/tokenizers/fineweb_V_bpe.model."""
    data = data_path or Path("data/datasets/fineweb10B_sp1024")
    if tokenizer_path is None:
        vocab = data.resolve().name.rsplit("_sp", 1)[-1] if "_sp" in data.name else "1024"
        tokenizer_path = data.resolve().parent.parent / "tokenizers" / f"fineweb_{vocab}_bpe.model"
    return data, tokenizer_path


def check_inputs(opts: ReproOptions) -> None:
    """Everything that can be known wrong before a run starts; each failure is one line and exit 2."""
    root = opts.record_dir
    if not root.exists():
        raise InputError(str(root), "no such folder")
    if not root.is_dir():
        raise InputError(str(root), "not a folder (expected a record folder)")
    if not (root / opts.script).is_file():
        raise InputError(str(root), f"no {opts.script} to run")
    hint = "fetch it with `python3 data/cached_challenge_fineweb.py --variant sp1024` in the challenge repo"
    if opts.data_path is None or not opts.data_path.is_dir():
        raise UsageError(f"data path {opts.data_path} is not a folder ({hint}, then pass --data-path)")
    if not any(opts.data_path.glob("fineweb_val_*.bin")):
        raise UsageError(f"data path {opts.data_path} has no fineweb_val_*.bin shard")
    if opts.tokenizer_path is None or not opts.tokenizer_path.is_file():
        raise UsageError(f"tokenizer {opts.tokenizer_path} not found ({hint}, or pass --tokenizer-path)")
    check_launch(opts)


def check_launch(opts: ReproOptions) -> None:
    if opts.nproc < 1 or opts.nnodes < 1:
        raise UsageError("--nproc and --nnodes must be at least 1")
    if opts.nnodes > 1 and not opts.rdzv_endpoint:
        raise UsageError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every machine)")
    if opts.time_limit_s <= 0:
        raise UsageError("--time-limit must be positive")
    if opts.device not in ("cuda", "cpu"):
        raise UsageError(f"--device must be cuda or cpu, not {opts.device!r}")
    if opts.device == "cuda":
        found = count_gpus()
        if found < opts.nproc:
            have = "no CUDA GPU" if found == 0 else f"only {found} CUDA GPU(s)"
            raise UsageError(f"{opts.nproc} GPU process(es) requested but {have} found; use --device cpu to run on the CPU")


def count_gpus() -> int:
    """GPUs nvidia-smi lists (no torch import: `pgaudit reproduce` checks input before loading torch)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def pick_seeds(requested: list[int], n: int, claimed: list[int]) -> list[int]:
    """--seed values, else the seeds the folder claims, else the usual 1337, 42, 2025; the first n of them."""
    if n < 1:
        raise UsageError("--seeds must be at least 1")
    if requested:  # --seed given: exactly those
        return list(dict.fromkeys(requested))
    pool = list(dict.fromkeys(claimed or list(DEFAULT_SEEDS)))
    for extra in DEFAULT_SEEDS:  # more seeds asked for than listed: fill with the usual ones
        if len(pool) >= n:
            break
        if extra not in pool:
            pool.append(extra)
    return pool[:n]

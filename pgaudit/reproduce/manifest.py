"""The manifest of one run: what ran, where, with which software and hardware, and how it ended.

torch is optional here: its versions are read lazily, once, in this interpreter (the one
`python -m torch.distributed.run` uses when no `torchrun` is on PATH); without torch they are null.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pgaudit import __version__

MANIFEST_VERSION = 1
# Variables that change what a run computes or how fast; anything else (tokens, paths of the shell) stays out.
ENV_ALLOW_PREFIXES = ("NCCL_", "TORCH_", "CUDA_", "CUBLAS_", "CUDNN_", "PYTORCH_", "OMP_", "MKL_", "TORCHINDUCTOR_")
ENV_ALLOW_NAMES = ("SEED", "RUN_ID", "DATA_PATH", "TOKENIZER_PATH", "DEVICE", "PYTHONHASHSEED", "WORLD_SIZE")
SMI_FIELDS = "index,name,uuid,pci.bus_id,driver_version,memory.total,clocks.max.sm,power.limit,compute_mode"
MANIFEST_KEYS = (
    "manifest_version", "pgaudit_version", "seed", "run_id", "record_dir", "scripts", "git", "argv", "env",
    "versions", "gpus", "gpu_topology", "cpu", "host", "started_utc", "wallclock_s", "exit",
)  # fmt: skip


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def script_hashes(root: Path) -> dict[str, str]:
    """sha256 of every script in the folder (what a resumed seed must match)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and path.suffix in (".py", ".sh") and not any(p.startswith(".") for p in rel.parts):
            out[rel.as_posix()] = sha256_file(path)
    return out


def git_state(root: Path) -> dict[str, Any] | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        head = subprocess.run([git, "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=20)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            [git, "-C", str(root), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def allowed_env(env: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    """The allowlisted part of the child's environment, plus every --env override (the user chose those)."""
    keep = {k: v for k, v in env.items() if k in ENV_ALLOW_NAMES or k.startswith(ENV_ALLOW_PREFIXES)}
    keep.update(overrides)
    return dict(sorted(keep.items()))


@functools.cache
def software_versions() -> dict[str, Any]:
    versions: dict[str, Any] = {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "torch": None,
        "cuda": None,
        "cudnn": None,
        "nccl": None,
    }
    try:
        import torch  # optional extra: only for the record of versions
    except ImportError:
        return versions
    versions["torch"] = torch.__version__
    versions["cuda"] = torch.version.cuda
    try:
        versions["cudnn"] = torch.backends.cudnn.version()
    except Exception:  # a CPU build can raise instead of returning None
        versions["cudnn"] = None
    try:
        nccl = torch.cuda.nccl.version() if torch.cuda.is_available() else None
        versions["nccl"] = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl
    except Exception:
        versions["nccl"] = None
    return versions


def _run(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def hardware() -> dict[str, Any]:
    smi = _run(["nvidia-smi", f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader"])
    gpus = [dict(zip(SMI_FIELDS.split(","), (c.strip() for c in line.split(",")), strict=False))
            for line in (smi or "").splitlines() if line.strip()]  # fmt: skip
    return {
        "gpus": gpus if smi is not None else None,
        "gpu_topology": _run(["nvidia-smi", "topo", "-m"]),
        "cpu": {"model": cpu_model(), "logical_cpus": os.cpu_count()},
        "host": platform.node(),
    }


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def is_reference_hardware(hw: dict[str, Any]) -> bool:
    """8 H100 SXM GPUs (nvidia-smi names the SXM part `H100 80GB HBM3`; PCIe is `H100 PCIe`)."""
    gpus = hw.get("gpus") or []
    names = [g.get("name", "") for g in gpus]
    return len(names) >= 8 and all("H100" in n and ("HBM3" in n or "SXM" in n) for n in names)


def build(
    *, seed: int, run_id: str, record_dir: Path, scripts: dict[str, str], argv: list[str], env: dict[str, str],
    started_utc: str, wallclock_s: float, exit_info: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    hw = hardware()
    return {
        "manifest_version": MANIFEST_VERSION,
        "pgaudit_version": __version__,
        "seed": seed,
        "run_id": run_id,
        "record_dir": str(record_dir),
        "scripts": scripts,
        "git": git_state(record_dir),
        "argv": argv,
        "env": env,
        "versions": software_versions(),
        "gpus": hw["gpus"],
        "gpu_topology": hw["gpu_topology"],
        "cpu": hw["cpu"],
        "host": hw["host"],
        "started_utc": started_utc,
        "wallclock_s": round(wallclock_s, 3),
        "exit": exit_info,
    }

"""scripts/gpu-check on a CPU: argument errors, the no-CUDA path, the report, and that no process outlives it.

The GPU path itself needs CUDA; `scripts/gpu-check --rehearse --python .venv/bin/python` runs its plumbing
on a CPU (about three minutes on two busy cores, so it is not part of the suite; docs/reference_trainer.md).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "gpu-check"
MARKER = "PGAUDIT_GPU_CHECK_RUN"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "OUT"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          env={**base, **(env or {})}, cwd=cwd or ROOT)  # fmt: skip


def marked(marker: str) -> list[int]:
    """Pids whose environment carries the run's marker, read from /proc independently of the script."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def no_gpu_path(tmp_path: Path) -> dict[str, str]:
    """PATH with an `nvidia-smi` that finds no device first, so the test means the same on a GPU machine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'No devices were found'\nexit 6\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_script_is_executable() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads process environments from /proc")
def test_dry_run_kills_a_step_at_its_timeout_and_leaves_nothing(tmp_path: Path) -> None:
    report = tmp_path / "out" / "report.md"
    done = run("--dry-run", "--report", str(report), "--work", str(tmp_path / "work"))
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert text == done.stdout.rstrip("\n") + "\n"  # the report is also printed
    assert text.startswith("# gpu-check (dry run")
    assert "| dry run: a command | PASS |" in text and "hello from a step" in text
    assert "| dry run: a step past its timeout | TIMEOUT |" in text
    marker = re.search(rf"{MARKER}=([0-9a-f]{{32}})", text)
    assert marker is not None
    # The timed-out step started a child in a session of its own (as torchrun's workers do): a group kill
    # misses it, the marker sweep must not.
    assert "1 killed at step timeouts" in text and "0 left behind" in text
    assert marked(marker.group(1)) == []
    assert (tmp_path / "work").is_dir() and list((tmp_path / "work").glob("gpu-check-*/dry-hang.log"))


def test_no_cuda_exits_cleanly_without_setting_up(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = run(
        "--venv",
        str(venv),
        "--work",
        str(tmp_path / "work"),
        env={**no_gpu_path(tmp_path), "OUT": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert "no CUDA device here" in done.stderr
    report = (tmp_path / "gpu-check-report.md").read_text()  # $OUT is where the report goes
    assert report.startswith("# gpu-check: no CUDA device, nothing run")
    assert "GPUs (`nvidia-smi -L`): none" in report and "0 left behind" in report
    assert not venv.exists()  # nothing installed on a machine that cannot run the checks


def test_default_report_is_in_the_working_directory(tmp_path: Path) -> None:
    done = run("--work", str(tmp_path / "work"), env=no_gpu_path(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "gpu-check-report.md").read_text().startswith("# gpu-check: no CUDA device")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "0"], "--budget must be positive"),
        (["--baseline-steps", "0"], "--baseline-steps must be at least 1"),
        (["--rehearse"], "--rehearse needs --python"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args: list[str], message: str, tmp_path: Path) -> None:
    done = run(*args, "--report", str(tmp_path / "r.md"))
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "r.md").exists()

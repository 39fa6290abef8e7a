"""Runs that crash, hang or are interrupted: PG602, the partial log kept, and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.reproduce.conftest import cpu_args, script_folder

HANG = """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends it: the hardest case
    with open(os.environ["PIDS_FILE"], "w") as f:
        f.write(f"{os.getpid()} {os.getpgid(0)} {os.getppid()}")
    print("started seed", os.environ["SEED"], flush=True)
    time.sleep(600)
"""


def _gone(pid: int, pgid: int, launcher_pid: int) -> None:
    for check in (lambda: os.kill(pid, 0), lambda: os.killpg(pgid, 0), lambda: os.killpg(launcher_pid, 0)):
        with pytest.raises(ProcessLookupError):
            check()


def _pids(path: Path) -> tuple[int, int, int]:
    pid, pgid, ppid = map(int, path.read_text().split())
    return pid, pgid, ppid


def test_crashing_script_gives_pg602_with_the_log_tail(tiny, tmp_path: Path) -> None:
    folder = script_folder(tmp_path, "crash", 'print("loading shards", flush=True)\nraise RuntimeError("boom at step 3")\n')
    out = tmp_path / "out"
    proc = run_cli("reproduce", str(folder), "--seeds", "1", *cpu_args(tiny, out))
    assert proc.returncode == 1, proc.stderr
    data = json.loads((out / "report.json").read_text())
    assert data["verdict"] == "run-failed"
    (pg602,) = [f for f in data["findings"] if f["code"] == "PG602"]
    assert "exited with status" in pg602["message"]
    assert any("boom at step 3" in line for line in pg602["evidence"])
    assert "loading shards" in (out / "seed_1337" / "console.log").read_text()


def test_hanging_script_is_killed_at_the_limit_with_nothing_left(tiny, tmp_path: Path, startup_s: int) -> None:
    folder = script_folder(tmp_path, "hang", HANG)
    out, pids = tmp_path / "out", tmp_path / "pids"
    limit = startup_s  # time for torchrun to start the worker, which then hangs until killed
    proc = run_cli("reproduce", str(folder), "--seeds", "1", "--time-limit", str(limit), "--kill-grace", "1",
                   *cpu_args(tiny, out, "--env", f"PIDS_FILE={pids}"), timeout=120 + 2 * limit)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    _gone(*_pids(pids))
    data = json.loads((out / "report.json").read_text())
    (res,) = data["results"]
    assert res["status"] == "killed"
    assert any("killed at the time limit" in f["message"] for f in data["findings"] if f["code"] == "PG602")
    assert "started seed 1337" in (out / "seed_1337" / "console.log").read_text()  # the partial log is kept
    man = json.loads((out / "seed_1337" / "manifest.json").read_text())
    assert man["exit"]["killed_at_limit"] and man["exit"]["time_limit_s"] == limit


def test_ctrl_c_kills_the_run_and_keeps_partial_results(tiny, tmp_path: Path, startup_s: int) -> None:
    folder = script_folder(tmp_path, "hang", HANG)
    out, pids = tmp_path / "out", tmp_path / "pids"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "pgaudit", "reproduce", str(folder), "--seeds", "2", "--kill-grace", "1",
            *cpu_args(tiny, out, "--env", f"PIDS_FILE={pids}")]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10 * startup_s  # far past the measured start-up, still bounded
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    _gone(*_pids(pids))
    data = json.loads((out / "report.json").read_text())
    assert data["verdict"] == "incomplete" and data["summary"]["interrupted"]
    assert [r["status"] for r in data["results"]] == ["interrupted"]  # the second seed never started
    assert not (out / "seed_42").exists()

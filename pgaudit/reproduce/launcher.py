"""Run one seed: a fresh copy of the folder, torchrun in its own session, the log streamed to a file.

The child writes straight into the log file (no pipe), so a killed or crashed run always leaves its partial
log on disk and a stuck reader can never block the time limit. Progress is read back by polling the file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pgaudit.errors import UsageError
from pgaudit.reproduce import procs
from pgaudit.reproduce.options import ReproOptions
from pgaudit.reproduce.status import Progress

POLL_S = 0.2


@dataclass
class LaunchResult:
    seed: int
    run_id: str
    workdir: Path
    console_log: Path
    argv: list[str]
    env: dict[str, str]  # the variables pgaudit set (not the inherited environment)
    started_utc: str
    wallclock_s: float
    returncode: int | None
    killed_at_limit: bool = False
    interrupted: bool = False
    train_over_s: float | None = None  # seconds after launch when the log showed training had ended

    @property
    def status(self) -> str:
        if self.interrupted:
            return "interrupted"
        if self.killed_at_limit:
            return "killed"
        return "finished" if self.returncode == 0 else "failed"

    def exit_info(self) -> dict[str, object]:
        signal_no = -self.returncode if self.returncode is not None and self.returncode < 0 else None
        return {
            "status": self.status,
            "returncode": self.returncode,
            "signal": signal_no,
            "killed_at_limit": self.killed_at_limit,
            "interrupted": self.interrupted,
            "time_limit_s": None,
        }


def build_argv(opts: ReproOptions, launcher: list[str], run_id: str, target: list[str]) -> list[str]:
    argv = list(launcher)
    if opts.nnodes > 1:
        argv += [f"--nnodes={opts.nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={opts.rdzv_endpoint}",
                 f"--rdzv-id={run_id}"]  # fmt: skip
    else:
        argv.append("--standalone")
    return [*argv, f"--nproc_per_node={opts.nproc}", *target]


def run_env(opts: ReproOptions, seed: int, run_id: str) -> dict[str, str]:
    """The variables a run gets on top of the inherited environment; --env overrides win."""
    env = {
        "SEED": str(seed),
        "RUN_ID": run_id,
        "DATA_PATH": str(Path(opts.data_path or "").resolve()),
        "TOKENIZER_PATH": str(Path(opts.tokenizer_path or "").resolve()),
    }
    if opts.device == "cpu":
        env.update({"DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": ""})
    env.update(opts.env)
    return env


def prepare_workdir(record_dir: Path, workdir: Path) -> None:
    """A fresh copy per seed: files a previous run wrote must not be mistaken for this run's outputs."""
    if workdir.exists():
        shutil.rmtree(workdir)
    shutil.copytree(record_dir, workdir, symlinks=True, ignore=shutil.ignore_patterns(".git"))


def launch(
    opts: ReproOptions, argv: list[str], env: dict[str, str], run_id: str, seed: int, seed_dir: Path,
    workdir: Path, progress: Progress, on_tick: Callable[[], None] = lambda: None,
) -> LaunchResult:  # fmt: skip
    """Run `argv` in `workdir` with `env` on top of ours, until it exits or `opts.time_limit_s` passes."""
    console_log = seed_dir / "console.log"
    token = uuid.uuid4().hex
    full_env = {**os.environ, **env, procs.TOKEN_VAR: token}
    started_utc = datetime.now(UTC).isoformat(timespec="seconds")
    start = time.monotonic()
    progress.started, progress.state = start, "running"
    with console_log.open("wb") as sink:
        try:
            proc = subprocess.Popen(argv, cwd=workdir, env=full_env, stdin=subprocess.DEVNULL, stdout=sink,
                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        except OSError as exc:
            raise UsageError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        result = LaunchResult(seed, run_id, workdir, console_log, argv, env, started_utc, 0.0, None)
        try:
            _watch(proc, console_log, progress, start + opts.time_limit_s, on_tick, result)
            if result.killed_at_limit:
                procs.terminate_tree(proc, token, opts.kill_grace_s)
            else:
                procs.sweep(token)
        except KeyboardInterrupt:
            result.interrupted = True
            procs.terminate_tree(proc, token, min(opts.kill_grace_s, 5.0))
        result.returncode = proc.returncode
    result.wallclock_s = time.monotonic() - start
    _drain(console_log, progress)
    progress.ended = time.monotonic()
    progress.state = result.status
    result.train_over_s = progress.train_over_at
    return result


def _watch(
    proc: subprocess.Popen[bytes], log: Path, progress: Progress, deadline: float,
    on_tick: Callable[[], None], result: LaunchResult,
) -> None:  # fmt: skip
    reader = _LineReader(log)
    while proc.poll() is None:
        now = time.monotonic()
        for line in reader.new_lines():
            progress.feed(line, now)
        on_tick()
        if now >= deadline:
            result.killed_at_limit = True
            return
        time.sleep(POLL_S)


def _drain(log: Path, progress: Progress) -> None:
    """Lines written between the last poll and the exit still count (the final metric is often among them)."""
    reader = _LineReader(log, progress.lines)
    now = time.monotonic()
    for line in reader.new_lines(final=True):
        progress.feed(line, now)


class _LineReader:
    """Complete lines appended to a growing file since the last call."""

    def __init__(self, path: Path, skip_lines: int = 0) -> None:
        self.path, self.offset, self.pending, self.skip = path, 0, b"", skip_lines

    def new_lines(self, final: bool = False) -> list[str]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return []
        self.offset += len(chunk)
        parts = (self.pending + chunk).split(b"\n")
        self.pending = parts.pop()
        if final and self.pending:  # a last line without a newline (a crash mid-write)
            parts.append(self.pending)
            self.pending = b""
        lines = [p.decode("utf-8", "replace").rstrip("\r") for p in parts]
        if self.skip:
            dropped, self.skip = min(self.skip, len(lines)), self.skip - min(self.skip, len(lines))
            lines = lines[dropped:]
        return lines

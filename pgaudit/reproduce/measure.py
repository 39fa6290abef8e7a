"""What one finished (or failed) seed produced: its scored metric and times from its log, and the artifact
bytes measured from the files it wrote -- not only what the log says about them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pgaudit.errors import InputError
from pgaudit.logs import RunLog, read_log
from pgaudit.reproduce.launcher import LaunchResult

# Raw checkpoints are not the artifact; the compressed export is (final_model.int8.ptz, *.ptz, *.xz, ...).
_RAW_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz")
TAIL_LINES = 25


def find_log(launch: LaunchResult) -> Path:
    """The script's own log (logs/RUN_ID.txt) when it wrote one with content, else the console stream."""
    own = launch.workdir / "logs" / f"{launch.run_id}.txt"
    if own.is_file() and own.stat().st_size > 0:
        return own
    return launch.console_log


def parse_run(path: Path, display: str) -> RunLog | None:
    try:
        return read_log(path, display)
    except InputError:
        return None


def artifact_file(workdir: Path, record_dir: Path) -> Path | None:
    """The compressed model this run wrote: the newest `final_model*` that is not a raw checkpoint or a copy
    of a file shipped in the folder."""
    shipped = {p.relative_to(record_dir) for p in record_dir.rglob("final_model*")}
    found = [p for p in workdir.rglob("final_model*")
             if p.is_file() and p.relative_to(workdir) not in shipped and not p.name.endswith(_RAW_SUFFIXES)]  # fmt: skip
    return max(found, key=lambda p: (p.stat().st_mtime, p.name)) if found else None


def tail(path: Path, n: int = TAIL_LINES) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return lines[-n:]


_ERROR_LINE = re.compile(r"^(?:\[rank\d+\]:\s*)?[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b")


def error_lines(lines: list[str], n: int = 12) -> list[str]:
    """The script's own exception, not torchrun's ChildFailedError report that follows it in the log."""
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if _ERROR_LINE.match(line) and not line.startswith("torch.distributed.elastic"):
            return lines[max(0, i - n + 1) : i + 1]
    return []


def summarize(launch: LaunchResult, record_dir: Path, script: str, out_dir: Path) -> dict[str, Any]:
    """The per-seed result written to seed_N/result.json (and read back by --resume)."""
    log_path = find_log(launch)
    rel = log_path.relative_to(out_dir).as_posix() if log_path.is_relative_to(out_dir) else str(log_path)
    run = parse_run(log_path, rel)
    scored = run.scored if run else None
    model = artifact_file(launch.workdir, record_dir)
    model_bytes = model.stat().st_size if model else None
    script_bytes = (record_dir / script).stat().st_size
    logged_code = run.code_bytes.bytes if run and run.code_bytes else None
    # Counted code is at least the committed script; a script that counts more (extra modules) is believed.
    counted_code = max(script_bytes, logged_code or 0)
    eval_s = None
    if run and run.total_eval_time_s is not None:
        eval_s = run.total_eval_time_s
    elif scored and scored.eval_time_ms is not None:
        eval_s = scored.eval_time_ms / 1000
    return {
        "seed": launch.seed,
        "status": launch.status,
        "returncode": launch.returncode,
        "log": rel,
        "console_log": launch.console_log.relative_to(out_dir).as_posix(),
        "metric": None if scored is None else {
            "method": scored.method, "val_bpb": scored.val_bpb, "val_loss": scored.val_loss,
            "line": scored.line,
        },
        "train_time_ms": run.train_time_ms if run else None,
        "stop_step": run.stop_step if run else None,
        "eval_time_s": eval_s,
        "external": {"wallclock_s": round(launch.wallclock_s, 3),
                     "train_s": None if launch.train_over_s is None else round(launch.train_over_s, 3),
                     "eval_s": None if launch.train_over_s is None
                     else round(launch.wallclock_s - launch.train_over_s, 3)},
        "artifact": {
            "model_file": None if model is None else model.relative_to(out_dir).as_posix(),
            "model_bytes": model_bytes,
            "code_bytes_script": script_bytes,
            "code_bytes_logged": logged_code,
            "total_measured": None if model_bytes is None else model_bytes + counted_code,
            "total_logged": run.total_bytes.bytes if run and run.total_bytes else None,
        },
        "log_tail": tail(log_path if launch.status == "finished" else launch.console_log),
        "error_lines": error_lines(tail(launch.console_log, 400)),
    }  # fmt: skip

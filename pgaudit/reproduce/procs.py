"""Find and end every process of one run, with psutil (process trees and environments on any platform).

torchrun starts its workers with `start_new_session=True`, so they are not in the launcher's process group
and a SIGKILL of torchrun would orphan them. Every process of a run therefore carries a marker variable
(`PGAUDIT_RUN_TOKEN`) inherited through the environment; at kill time the launcher's process tree
(`psutil.Process.children(recursive=True)`) and every process carrying the marker are signalled, which also
finds workers already re-parented to init.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import psutil

TOKEN_VAR = "PGAUDIT_RUN_TOKEN"
_GONE = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)


def marked_pids(token: str) -> set[int]:
    """Live processes whose environment carries `TOKEN_VAR=token` (zombies are not live)."""
    found: set[int] = set()
    for process in psutil.process_iter():
        with contextlib.suppress(*_GONE, OSError):
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get(TOKEN_VAR) == token:
                found.add(process.pid)
    return found


def tree_pids(pid: int) -> set[int]:
    """A process and all its descendants that are still alive."""
    try:
        root = psutil.Process(pid)
        return {pid, *(child.pid for child in root.children(recursive=True))}
    except _GONE:
        return set()


def _groups(pids: set[int]) -> set[int]:
    groups: set[int] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    return groups


def _signal_all(groups: set[int], pids: set[int], sig: signal.Signals) -> None:
    me = os.getpgid(0)
    for pgid in groups - {me}:  # never our own group: pgaudit itself must survive
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for pid in pids - {os.getpid()}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def terminate_tree(proc: subprocess.Popen[bytes], token: str, grace_s: float) -> None:
    """SIGTERM the run's groups, wait up to `grace_s`, then SIGKILL whatever is left, and reap the launcher."""
    alive = proc.poll() is None  # once reaped, its pid (and group id) may belong to someone else
    pids = marked_pids(token) | (tree_pids(proc.pid) if alive else set())
    groups = _groups(pids) | ({proc.pid} if alive else set())  # the launcher leads its own group
    _signal_all(groups, pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc.poll() is not None and not marked_pids(token):
            break
        time.sleep(0.05)
    left = marked_pids(token)
    groups |= _groups(left)
    _signal_all(groups, left | ({proc.pid} if proc.poll() is None else set()), signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    _wait_gone(token, 5.0, pids | left)


def sweep(token: str) -> None:
    """After a normal exit: kill any process of the run that outlived the launcher (a stray worker)."""
    left = marked_pids(token)
    if left:
        _signal_all(_groups(left), left, signal.SIGKILL)
        _wait_gone(token, 5.0, left)


def _wait_gone(token: str, timeout_s: float, killed: set[int] | frozenset[int] = frozenset()) -> None:
    """Until no process carries the token and the killed ones have left the process table: a killed worker whose parent
    died too stays a zombie until init reaps it, and until then its group id still answers kill(0)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not marked_pids(token) and not any(_exists(pid) for pid in killed - {os.getpid()}):
            return
        time.sleep(0.05)


def _exists(pid: int) -> bool:
    """Still in the process table, zombies included (a zombie's group id still answers kill(0))."""
    return psutil.pid_exists(pid)

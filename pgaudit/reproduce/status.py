"""Progress of a running seed, read from its log as it streams, and the live status shown to the maintainer."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.live import Live
from rich.table import Table

_NUM = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
# `step:12/20000 train_loss:6.94 train_time:24ms step_avg:23.99ms`, also with spaces after the colons.
_STEP = re.compile(r"^(?:\S+\s+)?step:\s*(?P<step>\d+)\s*/\s*(?P<total>\d+)\b(?P<rest>.*)$")
_LOSS = re.compile(rf"\btrain_loss[:=]\s*(?P<v>{_NUM})")
_TIME = re.compile(rf"\btrain_time[:=]\s*(?P<v>{_NUM})ms")
_AVG = re.compile(rf"\bstep_avg[:=]\s*(?P<v>{_NUM})ms")
_CAP = re.compile(rf"\bmax_wallclock_seconds[:=]\s*(?P<v>{_NUM})", re.IGNORECASE)
# Lines after which training is over and evaluation/export runs (for the external train/eval split).
_TRAIN_OVER = re.compile(r"^(?:\S+\s+)?(?:stopping_early:|Serialized model|peak memory)")


@dataclass
class Progress:
    """What the streamed lines told so far about one seed."""

    seed: int
    state: str = "waiting"  # waiting, running, finished, failed, killed, interrupted, skipped
    step: int | None = None
    total: int | None = None
    train_loss: float | None = None
    train_time_ms: float | None = None
    step_avg_ms: float | None = None
    cap_s: float | None = None
    started: float | None = None  # time.monotonic() at launch
    train_over_at: float | None = None  # seconds after launch when training was seen to end
    ended: float | None = None
    lines: int = 0
    tail: list[str] = field(default_factory=list)

    def feed(self, line: str, now: float) -> None:
        self.lines += 1
        self.tail = [*self.tail[-39:], line]
        if self.cap_s is None and (cap := _CAP.search(line)):
            self.cap_s = float(cap.group("v"))
        if self.train_over_at is None and self.started is not None and _TRAIN_OVER.match(line):
            self.train_over_at = now - self.started
        m = _STEP.match(line)
        if not m:
            return
        self.step, self.total = int(m.group("step")), int(m.group("total"))
        rest = m.group("rest")
        if loss := _LOSS.search(rest):
            self.train_loss = float(loss.group("v"))
        if t := _TIME.search(rest):
            self.train_time_ms = float(t.group("v"))
        if avg := _AVG.search(rest):
            self.step_avg_ms = float(avg.group("v"))

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended or now) - self.started

    def eta_s(self) -> float | None:
        """Training time left: steps left at the current average, bounded by the script's own wallclock cap."""
        if self.step is None or not self.total or not self.step_avg_ms:
            return None
        left = (self.total - self.step) * self.step_avg_ms / 1000
        if self.cap_s and self.train_time_ms is not None:
            left = min(left, max(self.cap_s - self.train_time_ms / 1000, 0.0))
        return left


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}s" if value >= 10 else f"{value:.1f}s"


class StatusBoard:
    """A rich live table on a terminal; plain one-line events otherwise (CI logs, tests)."""

    def __init__(self, seeds: list[int], live: bool | None = None) -> None:
        self.rows = {seed: Progress(seed) for seed in seeds}
        self.console = Console(stderr=True)
        self.live_enabled = sys.stderr.isatty() if live is None else live
        self._live: Live | None = None

    def __enter__(self) -> StatusBoard:
        if self.live_enabled:
            self._live = Live(self._table(), console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)

    def event(self, message: str) -> None:
        if self._live is not None:
            self._live.console.print(message, highlight=False, markup=False)
        else:
            self.console.print(message, highlight=False, markup=False)

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._table())

    def _table(self) -> Table:
        now = time.monotonic()
        table = Table(title="pgaudit reproduce", expand=False)
        for column in ("seed", "state", "step", "train_loss", "elapsed", "ETA (train)"):
            table.add_column(column, justify="right" if column != "state" else "left")
        for row in self.rows.values():
            step = "-" if row.step is None else f"{row.step}/{row.total}"
            loss = "-" if row.train_loss is None else f"{row.train_loss:.4f}"
            eta = row.eta_s() if row.state == "running" else None
            table.add_row(str(row.seed), row.state, step, loss, _fmt_s(row.elapsed(now)), _fmt_s(eta))
        return table

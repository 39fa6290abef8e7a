"""Numbered source lines around a finding, cut by the driver while the audited code is in memory.

The review shows them; keeping the cut here means no renderer re-reads a file or re-unwraps a payload.
"""

from __future__ import annotations

from pgaudit.findings import Location

CONTEXT = 2  # lines shown before and after the flagged lines
MAX_LINES = 9


def flagged_end(loc: Location) -> int:
    """The last flagged line: the finding's span, at most MAX_LINES - 2 * CONTEXT lines."""
    line = loc.line or 0
    return min(max(loc.end_line or line, line), line + MAX_LINES - 2 * CONTEXT - 1)


def window(lines: list[str], loc: Location) -> tuple[tuple[int, str], ...]:
    if loc.line is None or not 1 <= loc.line <= len(lines):
        return ()
    first, last = max(1, loc.line - CONTEXT), min(len(lines), flagged_end(loc) + CONTEXT)
    return tuple((number, lines[number - 1].rstrip()) for number in range(first, last + 1))

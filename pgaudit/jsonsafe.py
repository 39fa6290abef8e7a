"""Strict JSON for submitted files: standard JSON only, bounded nesting, finite numbers.

Python's `json` accepts `NaN`, `Infinity` and `1e400` (which becomes `inf`) and recurses once per nesting
level; a submission can use either to crash a later `int(...)` or the recursion limit. Both are input errors.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_DEPTH = 64  # accepted submission.json files nest 3 levels


class JsonInputError(ValueError):
    """The text is not strict, finite, reasonably nested JSON (the message says why, in one line)."""


def loads_strict(text: str) -> Any:
    depth = _max_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise JsonInputError(f"nested {depth:,} levels deep (limit {MAX_JSON_DEPTH})")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except JsonInputError:
        raise
    except RecursionError:
        raise JsonInputError(f"nested too deeply (limit {MAX_JSON_DEPTH})") from None
    except ValueError as exc:
        raise JsonInputError(str(exc).split("\n")[0]) from None


def _reject_constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError(f"the number {text[:40]} is out of range")
    return value


def _max_depth(text: str) -> int:
    """Deepest bracket nesting outside strings (a linear scan; json.loads would recurse)."""
    depth = best = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            best = max(best, depth)
        elif char in "]}":
            depth -= 1
    return best

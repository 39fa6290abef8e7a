"""`[tool.pgaudit]` in the nearest pyproject.toml: rule selection, severity overrides, policy values.

    [tool.pgaudit]
    select = ["PG1", "PG3", "PG5"]     # code prefixes; default: every rule
    ignore = ["PG103"]
    fail-on = "warning"                # error (default), warning or info

    [tool.pgaudit.severity]            # per-code overrides
    PG103 = "info"

    [tool.pgaudit.policy]              # validator thresholds (docs/validators.md)
    size_cap_bytes = 16000000

Command-line `--select` replaces the configured selection; `--ignore` adds to it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgaudit.errors import UsageError
from pgaudit.findings import Severity
from pgaudit.policy import Policy

_KEYS = {"select", "ignore", "fail-on", "severity", "policy"}


@dataclass
class Config:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: Severity = Severity.ERROR
    severity: dict[str, Severity] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    source: Path | None = None


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.pgaudit] table, from `start` upwards."""
    try:
        current = start.resolve()
    except (OSError, RuntimeError):  # a link loop: the audit itself reports it as an input error
        current = start.absolute().parent
    if current.is_file():
        current = current.parent
    for folder in [current, *current.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
                continue  # someone else's broken file is not our config
            if "pgaudit" in data.get("tool", {}):
                return candidate
    return None


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level
        raise UsageError(f"{path}: invalid TOML: nested too deeply") from None
    table = data.get("tool", {}).get("pgaudit", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.pgaudit] must be a table")
    return _from_table(table, path)


def _from_table(table: dict[str, Any], path: Path) -> Config:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise UsageError(f"{path}: unknown key(s) in [tool.pgaudit]: {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    config = Config(source=path)
    config.select = _codes(table.get("select", []), "select", path)
    config.ignore = _codes(table.get("ignore", []), "ignore", path)
    try:
        config.fail_on = Severity.parse(str(table.get("fail-on", "error")))
        overrides = table.get("severity", {})
        if not isinstance(overrides, dict):
            raise ValueError("[tool.pgaudit.severity] must be a table of CODE = \"error|warning|info\"")
        config.severity = {code.upper(): Severity.parse(str(level)) for code, level in overrides.items()}
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None
    policy = table.get("policy", {})
    if not isinstance(policy, dict):
        raise UsageError(f"{path}: [tool.pgaudit.policy] must be a table")
    config.policy = Policy.from_mapping(policy)
    return config


def _codes(value: Any, key: str, path: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{path}: [tool.pgaudit] {key} must be a list of code prefixes like [\"PG1\", \"PG301\"]")
    return tuple(v.strip().upper() for v in value if v.strip())

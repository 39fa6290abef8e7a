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

Where the configuration comes from depends on who is being served. `pgaudit check` on one's own code reads
the nearest pyproject.toml. The gate (`ci`, `review`, `check --strict`) reads only the repository root's
(the git work tree of the working directory, else the working directory) or `--config`, never a
pyproject.toml inside an audited record folder: the author being audited cannot lower the verdict. `ci`
reads the root pyproject.toml from the base revision, the repository as the maintainers have it.
"""

from __future__ import annotations

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


def _toml():  # type: ignore[no-untyped-def]
    """tomllib, imported when a pyproject.toml is read (most audits have none above them)."""
    import tomllib

    return tomllib


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
                data = _toml().loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, _toml().TOMLDecodeError, RecursionError):
                continue  # someone else's broken file is not our config
            if "pgaudit" in data.get("tool", {}):
                return candidate
    return None


def repository_root(start: Path | None = None) -> Path:
    """The git work tree holding `start` (default: the working directory), else `start` itself."""
    import subprocess  # the gate's configuration only

    here = (start or Path.cwd()).resolve()
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, timeout=30, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip()).resolve()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return here


def resolve_config(start: Path, *, gate: bool, explicit: Path | None = None, disabled: bool = False) -> Config:
    """The configuration of one run: none, `--config`, the repository root's (gate) or the nearest (check)."""
    if disabled:
        return Config()
    if explicit is not None:
        return load_config(explicit)
    if gate:
        candidate = repository_root() / "pyproject.toml"
        return load_config(candidate) if _has_table(candidate) else Config()
    return load_config(find_pyproject(start))


def config_from_text(text: str, label: str) -> Config:
    """[tool.pgaudit] from a pyproject.toml read elsewhere (`ci`: the base revision's); none if it has none."""
    try:
        data = _toml().loads(text)
    except _toml().TOMLDecodeError as exc:
        raise UsageError(f"{label}: invalid TOML: {exc}") from None
    table = data.get("tool", {}).get("pgaudit")
    if table is None:
        return Config()
    if not isinstance(table, dict):
        raise UsageError(f"{label}: [tool.pgaudit] must be a table")
    return _from_table(table, Path(label))


def _has_table(candidate: Path) -> bool:
    if not candidate.is_file():
        return False
    try:
        return "pgaudit" in _toml().loads(candidate.read_text(encoding="utf-8")).get("tool", {})
    except (OSError, UnicodeDecodeError, _toml().TOMLDecodeError):
        return True  # let load_config report it: a broken root config is the gate's own usage error


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config()
    try:
        data = _toml().loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except _toml().TOMLDecodeError as exc:
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


def apply_config(options, settings: Config):  # type: ignore[no-untyped-def]
    """`options` (an AuditOptions built from the command line) with `settings` under it: the command line's
    --select replaces the configured selection, its --ignore adds to it."""
    import dataclasses

    return dataclasses.replace(
        options,
        select=options.select or settings.select,
        ignore=settings.ignore + options.ignore,
        policy=settings.policy,
        severity={**settings.severity, **options.severity},
    )

"""The one options builder `check`, `ci` and `review` share: command-line values + `[tool.pgaudit]` ->
`AuditOptions` and the exit threshold.

`load_settings` is the single place configuration is found and read. `gate=True` is what `ci` and `review`
pass (they gate a pull request, where the submission must not configure its own audit); today the lookup is
the same in both modes, and the gate's restrictions plug in here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pgaudit.config import Config
from pgaudit.errors import UsageError
from pgaudit.findings import Severity
from pgaudit.policy import Policy


@dataclass
class AuditOptions:
    env: Mapping[str, str] = field(default_factory=dict)  # --env KEY=VALUE overrides
    select: tuple[str, ...] = ()  # code prefixes; empty = all
    ignore: tuple[str, ...] = ()
    use_logs: bool = True  # read the logged run configuration from the folder's train logs
    validators: bool = True  # run the record-folder validators (PG5xx)
    policy: Policy = field(default_factory=Policy)
    severity: Mapping[str, Severity] = field(default_factory=dict)  # per-code overrides from [tool.pgaudit]
    gate: bool = False  # set by `ci`, `review` and `check --strict`: auditing a submission for a gate, not for its author

    @property
    def honour_suppressions(self) -> bool:
        """Inline suppressions are the author's: honoured for the author's own `check`, reported (PG004) and
        not applied under the gate."""
        return not self.gate


def selected(code: str, options: AuditOptions) -> bool:
    if options.select and not any(code.startswith(p.upper()) for p in options.select):
        return False
    return not any(code.startswith(p.upper()) for p in options.ignore)


def load_settings(start: Path | None, config: Path | None = None, no_config: bool = False, *,
                  gate: bool = False) -> Config:
    """`[tool.pgaudit]`: from `config` when given; else, for the gate (ci, review, check --strict), only the
    repository root's pyproject.toml (never one inside an audited folder); else the nearest above `start`."""
    from pgaudit.config import resolve_config

    return resolve_config(start or Path.cwd(), gate=gate, explicit=config, disabled=no_config)


def parse_codes(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """`--select PG1,PG301 --select PG5` -> ("PG1", "PG301", "PG5")."""
    return tuple(c.strip().upper() for v in values for c in v.split(",") if c.strip())


def parse_env(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not key.replace("_", "").isalnum():
            raise UsageError(f"--env expects KEY=VALUE, got {pair!r}")
        env[key.strip()] = value
    return env


def build_options(settings: Config, *, env: list[str] = (), select: list[str] = (),  # type: ignore[assignment]
                  ignore: list[str] = (), no_logs: bool = False, fail_on: str | None = None,  # type: ignore[assignment]
                  gate: bool = False) -> tuple[AuditOptions, Severity]:
    """Command-line values over configuration: `--select` replaces the configured selection, `--ignore` adds
    to it, `--fail-on` wins over `fail-on`. Returns the options and the exit threshold."""
    try:
        threshold = Severity.parse(fail_on) if fail_on else settings.fail_on
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    options = AuditOptions(
        env=parse_env(env),
        select=parse_codes(select) or settings.select,
        ignore=settings.ignore + parse_codes(ignore),
        use_logs=not no_logs,
        policy=settings.policy,
        severity=settings.severity,
        gate=gate,
    )
    return options, threshold


def exit_code(report, threshold: Severity, exit_zero: bool) -> int:  # type: ignore[no-untyped-def]
    """The same exit code for the same result under every command: 2 input errors, 1 findings at or above
    the threshold (unless --exit-zero), else 0."""
    if report.errors:
        return 2
    if not exit_zero and any(f.severity >= threshold for f in report.active()):
        return 1
    return 0

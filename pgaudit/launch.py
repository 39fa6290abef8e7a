"""The `pgaudit` entry point: a plain `check` command line runs without typer; everything else goes to it.

Building the typer app and parsing with it costs about 0.15 s (typer makes a pydantic adapter for every
option), a fifth of a whole check of the largest record. So a `check` whose arguments are all spelled the
plain way (`--opt VALUE`, `--opt=VALUE`, `-f VALUE`, the flags, the paths) is parsed here and run by the very
function the typer command calls (pgaudit/check_command.py). Anything else (help, other commands, `--`,
joined short options, a repeated single option, a value that looks like an option, an unparsable number) is
left to typer, which parses and reports it exactly as before; so this parser never has to reject anything.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import Path
from typing import Any

# option -> (keyword of run_check, kind); kinds: str, path, int, list (repeatable str), flag
_CHECK_OPTIONS: dict[str, tuple[str, str]] = {
    "--format": ("output_format", "str"), "-f": ("output_format", "str"),
    "--output-format": ("output_mode", "str"),
    "--output": ("output", "path"), "-o": ("output", "path"),
    "--env": ("env", "list"), "--select": ("select", "list"), "--ignore": ("ignore", "list"),
    "--no-logs": ("no_logs", "flag"),
    "--fail-on": ("fail_on", "str"),
    "--config": ("config", "path"),
    "--no-config": ("no_config", "flag"),
    "--exit-zero": ("exit_zero", "flag"),
    "--hide-info": ("hide_info", "flag"),
    "--jobs": ("jobs", "int"), "-j": ("jobs", "int"),
    "--strict": ("strict", "flag"),
    "--baseline": ("baseline", "path"),
    "--write-baseline": ("write_baseline", "path"),
}  # fmt: skip
_NUMBER = re.compile(r"0|[1-9][0-9]{0,8}")


def check_arguments(args: list[str]) -> dict[str, Any] | None:
    """run_check's keyword arguments for `check ...` spelled the plain way; None to let typer parse it."""
    if not args or args[0] != "check" or os.name == "nt":
        return None
    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):  # click's shell completion
        return None
    kwargs: dict[str, Any] = {"paths": [], "env": [], "select": [], "ignore": []}
    rest = args[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        i += 1
        if not arg.startswith("-"):
            if "\0" in arg:
                return None
            kwargs["paths"].append(Path(arg))
            continue
        name, joined, value = arg.partition("=")
        spec = _CHECK_OPTIONS.get(name)
        if spec is None or (joined and (spec[1] == "flag" or not name.startswith("--"))):
            return None  # --help, `--`, `-`, `-fjson`, `--strict=1`, an unknown option: typer decides
        key, kind = spec
        if kind == "flag":
            if key in kwargs:
                return None
            kwargs[key] = True
            continue
        if not joined:
            if i >= len(rest):
                return None
            value = rest[i]
            i += 1
        if not value or value.startswith("-") or "\0" in value:
            return None
        if kind == "list":
            kwargs[key].append(value)
            continue
        if key in kwargs:  # given twice: typer's rule (the last one wins) is not repeated here
            return None
        if kind == "int":
            if not _NUMBER.fullmatch(value):
                return None
            kwargs[key] = int(value)
        else:
            kwargs[key] = Path(value) if kind == "path" else value
    if not kwargs["paths"]:
        return None  # typer's "Missing argument"
    return kwargs


def main() -> None:
    kwargs = check_arguments(sys.argv[1:])
    if kwargs is None:
        from pgaudit.cli import main as typer_main

        typer_main()
        return
    from pgaudit.errors import PgauditError, error_line

    try:
        _run(kwargs)
    except PgauditError as exc:  # as pgaudit.cli.main reports them
        from pgaudit.check_command import echo

        echo(error_line(str(exc)), err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("PGAUDIT_DEBUG"):
            raise
        from pgaudit.check_command import echo

        echo(error_line(f"internal error: {type(exc).__name__}: {exc} (set PGAUDIT_DEBUG=1 for details)"), err=True)
        sys.exit(2)


def _run(kwargs: dict[str, Any]) -> None:
    """What typer's standalone mode does around a command: exit codes, Ctrl-C, a closed pipe, end of input."""
    from pgaudit.check_command import run_check

    try:
        run_check(**kwargs)
    except KeyboardInterrupt:
        sys.exit(130)
    except EOFError:
        from typer import _click

        _click.echo(file=sys.stderr)
        _abort()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        from typer import _click

        sys.stdout = _click.utils.PacifyFlushWrapper(sys.stdout)  # type: ignore[assignment]
        sys.stderr = _click.utils.PacifyFlushWrapper(sys.stderr)  # type: ignore[assignment]
        sys.exit(1)
    sys.exit(0)


def _abort() -> None:
    """typer's report of an aborted command (rich's when rich is installed), exit 1."""
    from typer import core

    if core.HAS_RICH and core.DEFAULT_MARKUP_MODE is not None:
        from typer import rich_utils

        rich_utils.rich_abort_error()
    else:
        core._click.echo("Aborted!", file=sys.stderr)
    sys.exit(1)

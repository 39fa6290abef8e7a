"""`pgaudit check` itself, and the output helpers `ci` and `review` share with it, importable without typer.

The entry point (pgaudit/launch.py) runs `check` straight from here when its options are plain, so the
common case never builds the typer app; the typer command in pgaudit/cli.py calls the same function, so both
ways run identical code. Exits are `SystemExit` with the command's exit code (what typer turns `typer.Exit`
into); messages go through typer's `echo`, imported only when there is one to print.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pgaudit.errors import enable_workflow_escaping, error_line

OUTPUT_MODES = ("full", "concise")


def echo(message: str, err: bool = False) -> None:
    """typer's (click's) echo, imported on first use."""
    from typer import echo as typer_echo

    typer_echo(message, err=err)


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, then exit: the contract for every bad input."""
    echo(error_line(message), err=True)
    raise SystemExit(code)


def run_check(
    paths: list[Path],
    output_format: str = "text",
    output_mode: str = "full",
    output: Path | None = None,
    env: list[str] | tuple[str, ...] = (),
    select: list[str] | tuple[str, ...] = (),
    ignore: list[str] | tuple[str, ...] = (),
    no_logs: bool = False,
    fail_on: str | None = None,
    config: Path | None = None,
    no_config: bool = False,
    exit_zero: bool = False,
    hide_info: bool = False,
    jobs: int | None = None,
    strict: bool = False,
    baseline: Path | None = None,
    write_baseline: Path | None = None,
) -> None:
    """Audit scripts and record folders, print the report, exit with the check's exit code."""
    from pgaudit.engine import audit_paths
    from pgaudit.options import build_options, exit_code, load_settings
    from pgaudit.render import FORMATS

    if output_format == "github":
        enable_workflow_escaping()
    if output_format not in FORMATS:
        fail(f"unknown --format {output_format!r} (choose from {', '.join(FORMATS)})")
    if output_mode not in OUTPUT_MODES:
        fail(f"unknown --output-format {output_mode!r} (choose from {', '.join(OUTPUT_MODES)})")
    if jobs is not None and jobs < 1:
        fail(f"--jobs expects a positive number, got {jobs}")
    settings = load_settings(paths[0] if paths else None, config, no_config, gate=strict)
    entries = _load_baseline(baseline)
    options, threshold = build_options(settings, env=env, select=select, ignore=ignore, no_logs=no_logs,
                                       fail_on=fail_on, gate=strict)
    report = audit_paths(paths, options, jobs=jobs or os.cpu_count() or 1,
                         progress=_progress_factory(output_format, output))
    _gate_inputs(report, settings.source, strict, baseline, entries)
    if write_baseline is not None:
        from pgaudit.baseline import write

        count = write(report, write_baseline)
        echo(f"pgaudit: wrote {count} finding(s) to the baseline {write_baseline}", err=True)
        raise SystemExit(0)
    _print_errors(report)
    if report.errors and not report.files:
        raise SystemExit(2)  # nothing could be audited: the error lines are the whole answer
    _emit(report, output_format, output, hide_info, output_mode)
    raise SystemExit(exit_code(report, threshold, exit_zero))


def _print_errors(report) -> None:  # type: ignore[no-untyped-def]
    for problem in report.errors:  # one line each on stderr, whatever the format, escaped for workflows
        echo(error_line(f"{problem.path}: {problem.message}"), err=True)


def _load_baseline(path: Path | None):  # type: ignore[no-untyped-def]
    if path is None:
        return None
    from pgaudit.baseline import load

    return load(path)


def _gate_inputs(report, config_source, gate: bool, baseline_path, entries) -> None:  # type: ignore[no-untyped-def]
    """Record what applied (the gate, the config file, the baseline) in the report, and apply the baseline."""
    report.run_config["gate"] = gate
    report.run_config["config"] = _shown(config_source) if config_source else None
    report.run_config["baseline"] = None
    if entries is not None and baseline_path is not None:
        from pgaudit.baseline import apply

        matched = apply(report, entries, str(baseline_path))
        report.run_config["baseline"] = {"path": str(baseline_path), "entries": sum(entries.values()),
                                         "matched": matched}


def _shown(path: Path) -> str:
    """A path as reports show it: relative to the working directory when inside it (no machine paths)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _progress_factory(output_format: str, output: Path | None):  # type: ignore[no-untyped-def]
    """A rich progress bar on stderr for multi-folder audits, only when stderr is a terminal."""
    if not _stderr_may_be_terminal():
        return None  # what rich would decide here, without importing it
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    from rich.progress import Progress

    def factory(total: int):  # type: ignore[no-untyped-def]
        if total < 2:
            return None
        return Progress(console=console, transient=True)

    return factory


def _stderr_may_be_terminal() -> bool:
    """False only where rich's `Console(stderr=True).is_terminal` is False for sure: neither TTY_COMPATIBLE nor
    FORCE_COLOR is set (they override rich's test) and stderr is not a TTY (rich's own test)."""
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return True
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return True  # let rich decide


def _emit(report, output_format: str, output: Path | None, hide_info: bool,  # type: ignore[no-untyped-def]
          output_mode: str = "full") -> None:
    from pgaudit.atomic import write_atomic

    if output_format != "text":
        from pgaudit.render import string_renderer

        text = string_renderer(output_format)(report)
        if output:
            write_atomic(output, text)
        else:
            sys.stdout.write(text)
        return
    from rich.console import Console

    from pgaudit.render.text import TEXT_WIDTH, render_concise, render_text

    render = render_concise if output_mode == "concise" else render_text
    if output:
        import io

        buffer = io.StringIO()
        render(report, Console(file=buffer, color_system=None, width=TEXT_WIDTH), not hide_info)
        write_atomic(output, buffer.getvalue())
    else:
        console = Console(highlight=False)
        if not console.is_terminal:
            console = Console(highlight=False, width=TEXT_WIDTH)
        render(report, console, not hide_info)

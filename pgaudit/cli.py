"""The command line: parse options, call the library, render. No audit logic lives here.

Library modules are imported inside the commands so that `pgaudit --version` starts fast.
"""

from __future__ import annotations

import sys

import typer

from pgaudit import __version__

app = typer.Typer(
    name="pgaudit",
    help="Compliance auditor and submission validator for OpenAI's Parameter Golf challenge.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pgaudit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """pgaudit: is this Parameter Golf submission legal, and are its claims true?"""


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, then exit: the contract for every bad input."""
    typer.echo(f"pgaudit: {message}", err=True)
    raise typer.Exit(code)


def main() -> None:
    from pgaudit.errors import PgauditError

    try:
        app()
    except PgauditError as exc:
        typer.echo(f"pgaudit: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("pgaudit: interrupted", err=True)
        sys.exit(130)


# --- bpb (reference_trainer issue) ---


@app.command()
def bpb(
    tokenizer: str = typer.Option(..., "--tokenizer", help="SentencePiece .model the shards were tokenized with."),
    val: str = typer.Option(..., "--val", help="Glob of validation shards, e.g. 'DIR/fineweb_val_*.bin'."),
    sidecar: str | None = typer.Option(None, "--sidecar", help="Glob of per-token byte sidecars (CaseOps)."),
    output_format: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Recount validation bytes (baseline formula, decoded text, sidecar); exit 1 on a mismatch."""
    from pgaudit.bytes_accounting import verify
    from pgaudit.errors import UsageError

    if output_format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {output_format!r}")
    report = verify(tokenizer, val, sidecar)
    if output_format == "json":
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        from pgaudit.bytes_accounting import render_text

        render_text(report)
    raise typer.Exit(1 if report.mismatch else 0)

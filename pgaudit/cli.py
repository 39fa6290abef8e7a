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


# --- significance (validators issue) ---


@app.command()
def significance(
    seeds_from: str = typer.Option(..., "--seeds-from", help="Record folder whose per-seed logs are tested."),
    against: str | None = typer.Option(None, "--against", help="Record folder of the baseline (previous record)."),
    against_values: str | None = typer.Option(
        None, "--against-values", help="Baseline per-seed scores, comma-separated (e.g. 1.0810,1.0812)."
    ),
    values_unit: str = typer.Option("bpb", "--values-unit", help="Unit of --against-values: bpb or nats."),
    unit: str = typer.Option("auto", "--unit", help="Compare in auto (nats if same tokenizer), bpb or nats."),
    margin_in_bpb: bool = typer.Option(
        False, "--margin-in-bpb", help="Apply the 0.005 margin directly in bpb, as the early records did."
    ),
    output_format: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Is a record's improvement significant? README policy (0.005 nats, p<0.01) and late policy (Welch p<0.25).

    Exit code 0 when at least one policy passes, 1 when neither does, 2 on bad input.
    """
    from pathlib import Path

    from pgaudit.errors import InputError, UsageError
    from pgaudit.policy import Policy
    from pgaudit.render_significance import render_json, render_text
    from pgaudit.significance import compare, parse_values, sample_from_folder, sample_from_values
    from pgaudit.submission import load_record_folder

    if (against is None) == (against_values is None):
        raise UsageError("give exactly one of --against RECORD_DIR or --against-values V1,V2,...")
    if output_format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {output_format!r}")
    if unit not in ("auto", "bpb", "nats"):
        raise UsageError(f"--unit must be auto, bpb or nats, not {unit!r}")
    candidate = sample_from_folder(load_record_folder(Path(seeds_from), seeds_from), seeds_from)
    if candidate.n == 0:
        raise InputError(seeds_from, "no log with a final score found")
    if against is not None:
        baseline = sample_from_folder(load_record_folder(Path(against), against), against)
        if baseline.n == 0:
            raise InputError(against, "no log with a final score found")
    else:
        baseline = sample_from_values(parse_values(against_values or ""), values_unit)
    result = compare(candidate, baseline, Policy(), None if unit == "auto" else unit, margin_in_bpb)
    typer.echo(render_json(result) if output_format == "json" else render_text(result))
    raise typer.Exit(0 if (result.readme_passes or result.progression_passes) else 1)

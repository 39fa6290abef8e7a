"""The command line: parse options, call the library, render. No audit logic lives here.

Library modules are imported inside the commands so that `pgaudit --version` starts fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from pgaudit import __version__
from pgaudit.check_command import _emit, _gate_inputs, _load_baseline, _print_errors, run_check
from pgaudit.errors import WorkflowSafeWriter, enable_workflow_escaping, error_line
from pgaudit.lineage.command import HELP as lineage_help
from pgaudit.lineage.command import lineage_command

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


def _parse_env(pairs: list[str]) -> dict[str, str]:
    from pgaudit.options import parse_env

    return parse_env(pairs)


def _codes(values: list[str]) -> tuple[str, ...]:
    from pgaudit.options import parse_codes

    return parse_codes(values)


@app.command()
def check(
    paths: list[Path] = typer.Argument(..., help="train_gpt.py files, record folders, or folders of record folders."),
    output_format: str = typer.Option(
        "text", "--format", "-f", help="Output format: text, json, sarif, github (workflow commands) or markdown."
    ),
    output_mode: str = typer.Option(
        "full", "--output-format", help="Text output: full (wrapped, indented paragraphs) or concise (one line per finding)."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file (atomically)."),
    env: list[str] = typer.Option([], "--env", help="Evaluate the code with KEY=VALUE set (repeatable)."),
    select: list[str] = typer.Option([], "--select", help="Only these codes or prefixes (PG1, PG301,...)."),
    ignore: list[str] = typer.Option([], "--ignore", help="Skip these codes or prefixes."),
    no_logs: bool = typer.Option(False, "--no-logs", help="Ignore the folder's logs and documented run command."),
    fail_on: str | None = typer.Option(None, "--fail-on", help="Exit 1 on findings at or above: error (default), warning, info."),
    config: Path | None = typer.Option(None, "--config", help="pyproject.toml to read [tool.pgaudit] from (default: the nearest one)."),
    no_config: bool = typer.Option(False, "--no-config", help="Ignore [tool.pgaudit] configuration."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when findings are reported."),
    hide_info: bool = typer.Option(False, "--hide-info", help="Do not print info findings (text format)."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="Folders audited in parallel (default: the CPU count)."),
    strict: bool = typer.Option(
        False, "--strict", help="The gate, as ci runs it: inline suppressions are reported (PG004), not honoured; "
        "configuration only from the repository root or --config."
    ),
    baseline: Path | None = typer.Option(None, "--baseline", help="Accept the findings listed in this baseline file."),
    write_baseline: Path | None = typer.Option(
        None, "--write-baseline", help="Write the active findings to this baseline file (then exit 0)."
    ),
) -> None:
    """Audit scripts and record folders: evaluation-rule violations, with file:line, ruling and fix."""
    run_check(paths, output_format, output_mode, output, env, select, ignore, no_logs, fail_on, config, no_config,
              exit_zero, hide_info, jobs, strict, baseline, write_baseline)


@app.command("rules")
def list_rules(output_format: str = typer.Option("text", "--format", "-f", help="text or json")) -> None:
    """List every finding code: static rules, input checks, folder validators, CI and reproduction."""
    import json

    from pgaudit.codes import all_codes
    from pgaudit.rules import REGISTRY

    rows = [
        {
            "code": info.code,
            "name": info.name,
            "kind": info.kind,
            "severity": info.severity.label,
            "condition": REGISTRY[info.code].condition if info.code in REGISTRY else None,
            "catalogue_ids": list(info.catalogue_ids),
            "summary": info.summary,
        }
        for info in all_codes().values()
    ]
    if output_format == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="pgaudit codes")
    for column in ("code", "name", "kind", "severity", "catalogue", "summary"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["code"], row["name"], row["kind"], row["severity"], " ".join(row["catalogue_ids"]), row["summary"])
    Console().print(table)


@app.command()
def explain(code: str = typer.Argument(..., help="A finding code, e.g. PG101 or PG501.")) -> None:
    """Show a code's documentation; for static rules also its rulings and examples."""
    from pgaudit import rules
    from pgaudit.codes import describe

    cls = rules.get(code)
    if cls is None:
        info = describe(code)
        if info is None:
            fail(f"unknown rule code {code!r} (see `pgaudit rules`)")
        assert info is not None
        text = [f"{info.code} {info.name}  ({info.kind}, {info.severity.label})", "", info.summary]
        if info.doc:
            text += ["", info.doc]
        if info.catalogue_ids:
            text += ["", f"Catalogue: {' '.join(info.catalogue_ids)}"]
        if info.kind == "validator":
            text += ["", "Thresholds and evidence: docs/validators.md"]
        typer.echo("\n".join(text))
        return
    lines = [f"{cls.code} {cls.name}  ({cls.severity.label}, {cls.confidence.label} confidence)", "", cls.doc(), ""]
    lines.append("Rulings:")
    lines += [f"  {url}" for url in cls.ruling_urls]
    if cls.fix:
        lines += ["", f"Fix: {cls.fix}"]
    for title, examples in (("Flagged (INVALID)", cls.invalid), ("Not flagged (VALID)", cls.valid)):
        if examples:
            lines += ["", f"{title} examples:"]
            lines += [f"  - {ex.title}" for ex in examples if ex.title]
    typer.echo("\n".join(lines))


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, then exit: the contract for every bad input."""
    typer.echo(error_line(message), err=True)
    raise typer.Exit(code)


def main() -> None:
    from pgaudit.errors import PgauditError

    try:
        app()  # standalone mode: typer turns usage errors into exit 2 and typer.Exit into the exit code
    except PgauditError as exc:
        typer.echo(error_line(str(exc)), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo(error_line("interrupted"), err=True)
        sys.exit(130)
    except Exception as exc:  # a bug in pgaudit: still one line, exit 2 (PGAUDIT_DEBUG=1 for the traceback)
        if os.environ.get("PGAUDIT_DEBUG"):
            raise
        typer.echo(error_line(f"internal error: {type(exc).__name__}: {exc} (set PGAUDIT_DEBUG=1 for details)"), err=True)
        sys.exit(2)




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


# --- ci and review (CI issue) ---


@app.command()
def ci(
    base: str = typer.Option(..., "--base", help="The pull request's base revision (branch, tag or commit)."),
    head: str = typer.Option("HEAD", "--head", help="The pull request's head revision."),
    repo_root: Path = typer.Option(Path("."), "--repo-root", help="The git repository (default: here)."),
    sarif: Path | None = typer.Option(None, "--sarif", help="Also write SARIF 2.1.0 to this file."),
    output_format: str | None = typer.Option(
        None, "--format", "-f", help="stdout format (default: github when GITHUB_ACTIONS=true, else text)."
    ),
    env: list[str] = typer.Option([], "--env", help="Evaluate the code with KEY=VALUE set (repeatable)."),
    select: list[str] = typer.Option([], "--select", help="Only these codes or prefixes."),
    ignore: list[str] = typer.Option([], "--ignore", help="Skip these codes or prefixes."),
    fail_on: str | None = typer.Option(None, "--fail-on", help="Exit 1 on findings at or above: error (default), warning, info."),
    config: Path | None = typer.Option(
        None, "--config", help="pyproject.toml with [tool.pgaudit] (default: the base revision's root pyproject.toml)."
    ),
    no_config: bool = typer.Option(False, "--no-config", help="Ignore [tool.pgaudit] configuration."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when findings are reported."),
    review_file: Path | None = typer.Option(None, "--review", help="Also write the review comment(s) to this file."),
    repo: str | None = typer.Option(None, "--repo", help="OWNER/NAME for the review's permalinks (at --head)."),
    pr: int | None = typer.Option(None, "--pr", help="The pull request number, for the review's title line."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="Folders audited in parallel (default: the CPU count)."),
    baseline: Path | None = typer.Option(None, "--baseline", help="Accept the findings listed in this baseline file."),
) -> None:
    """Audit the record folders a pull request adds (git diff BASE...HEAD) and check its scope (R29)."""
    from pgaudit.atomic import write_atomic
    from pgaudit.ci import run_ci
    from pgaudit.options import build_options, exit_code
    from pgaudit.render import FORMATS, string_renderer
    from pgaudit.review import Links

    on_actions = os.environ.get("GITHUB_ACTIONS") == "true"
    output_format = output_format or ("github" if on_actions else "text")
    enable_workflow_escaping()  # ci output is read by a workflow runner: no line may forge a command
    if output_format != "github":
        sys.stdout = WorkflowSafeWriter(sys.stdout)  # type: ignore[assignment]
    if output_format not in FORMATS:
        fail(f"unknown --format {output_format!r} (choose from {', '.join(FORMATS)})")
    from pgaudit.config import Config, load_config

    # The gate's configuration: --config, else the base revision's root pyproject.toml (run_ci reads it).
    settings = load_config(config) if config is not None and not no_config else None
    options, threshold = build_options(settings or Config(), env=env, select=select, ignore=ignore,
                                       fail_on=fail_on, gate=True)
    entries = _load_baseline(baseline)
    links = Links.parse(repo, None, pr, sha_later=True) if review_file else None
    result = run_ci(repo_root, base, head, options, review=links, jobs=jobs or os.cpu_count() or 1,
                    settings=settings, use_config=not no_config, baseline=entries,
                    baseline_label=str(baseline) if baseline else None)
    report = result.report
    _print_errors(report)
    if result.scope.kind in ("empty", "other"):
        typer.echo(error_line(f"{base}...{head}: {result.scope.summary()}"), err=True)
    if sarif:
        write_atomic(sarif, string_renderer("sarif")(report))
    if review_file:
        write_atomic(review_file, "\n---\n\n".join(result.reviews.values()))
    _append_step_summary(string_renderer("markdown")(report))
    _emit(report, output_format, None, hide_info=False)
    raise typer.Exit(exit_code(report, threshold, exit_zero))


def _append_step_summary(markdown: str) -> None:
    """GitHub renders $GITHUB_STEP_SUMMARY as the job summary; steps append to it."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown)
    except OSError as exc:
        fail(f"cannot write the job summary {path}: {exc.strerror or exc}")


@app.command()
def review(
    record_dir: Path = typer.Argument(..., help="One record folder (records/track_*/<name>)."),
    repo: str | None = typer.Option(None, "--repo", help="OWNER/NAME on GitHub, for permalinks (with --sha)."),
    sha: str | None = typer.Option(None, "--sha", help="The commit the permalinks point at (with --repo)."),
    pr: int | None = typer.Option(None, "--pr", help="The pull request number, named in the title line."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the comment to this file (atomically)."),
    env: list[str] = typer.Option([], "--env", help="Evaluate the code with KEY=VALUE set (repeatable)."),
    select: list[str] = typer.Option([], "--select", help="Only these codes or prefixes."),
    ignore: list[str] = typer.Option([], "--ignore", help="Skip these codes or prefixes."),
    no_logs: bool = typer.Option(False, "--no-logs", help="Ignore the folder's logs and documented run command."),
    fail_on: str | None = typer.Option(None, "--fail-on", help="Exit 1 on findings at or above: error (default), warning, info."),
    config: Path | None = typer.Option(None, "--config", help="pyproject.toml to read [tool.pgaudit] from (default: the repository root's)."),
    no_config: bool = typer.Option(False, "--no-config", help="Ignore [tool.pgaudit] configuration."),
    baseline: Path | None = typer.Option(None, "--baseline", help="Accept the findings listed in this baseline file."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when findings are reported."),
    records: Path | None = typer.Option(None, "--records", help="Clone of the challenge repository: lead with the lineage."),
) -> None:
    """Write the Markdown review comment for one record folder: verdict, checks, findings with permalinks.

    Exits like `check` on the same folder: 1 on findings at or above --fail-on, 2 on input errors.
    """
    from pgaudit.options import build_options, exit_code, load_settings
    from pgaudit.review import Links, review_folder

    links = Links.parse(repo, sha, pr)
    settings = load_settings(record_dir, config, no_config, gate=True)
    options, threshold = build_options(settings, env=env, select=select, ignore=ignore, no_logs=no_logs,
                                       fail_on=fail_on, gate=True)
    entries = _load_baseline(baseline)
    from pgaudit.lineage.review import review_lineage

    view = review_lineage(record_dir, records, repo) if records else None
    text, report = review_folder(record_dir, links, options,
                                 prepare=lambda report: _gate_inputs(report, settings.source, True, baseline, entries),
                                 lineage=view)
    _print_errors(report)  # the comment lists them too; stderr has one line each, as for check
    if output:
        from pgaudit.atomic import write_atomic

        write_atomic(output, text)
    else:
        sys.stdout.write(text)
    raise typer.Exit(exit_code(report, threshold, exit_zero))


# --- reproduce (reproduction issue) ---


@app.command()
def reproduce(
    record_dir: Path | None = typer.Argument(None, help="The record folder to re-run (not needed with --calibrate)."),
    seeds: int = typer.Option(3, "--seeds", help="How many seeds: the folder's own, else 1337, 42, 2025."),
    seed: list[int] = typer.Option([], "--seed", help="Run exactly these seeds (repeatable)."),
    out: Path = typer.Option(Path("reproduce_out"), "--out", help="Folder for runs, manifests and reports."),
    nproc: int = typer.Option(8, "--nproc", help="Processes (GPUs) per node: torchrun --nproc_per_node."),
    nnodes: int = typer.Option(1, "--nnodes", help="Machines (torchrun --nnodes; needs --rdzv-endpoint)."),
    rdzv_endpoint: str | None = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT of the rendezvous."),
    launcher: str | None = typer.Option(None, "--launcher", help="torchrun command (default: torchrun, else python -m torch.distributed.run)."),
    script: str = typer.Option("train_gpt.py", "--script", help="The script torchrun runs, relative to the folder."),
    data_path: Path | None = typer.Option(None, "--data-path", help="Dataset folder (default: $DATA_PATH or data/datasets/fineweb10B_sp1024)."),
    tokenizer_path: Path | None = typer.Option(None, "--tokenizer-path", help="SentencePiece model (default: next to the data)."),
    env: list[str] = typer.Option([], "--env", help="KEY=VALUE for the runs (repeatable)."),
    device: str = typer.Option("cuda", "--device", help="cuda (default) or cpu."),
    time_limit: float = typer.Option(1500.0, "--time-limit", help="Seconds per seed, train + eval + slack, then killed."),
    kill_grace: float = typer.Option(30.0, "--kill-grace", help="Seconds between SIGTERM and SIGKILL at the limit."),
    resume: bool = typer.Option(False, "--resume", help="Skip seeds already complete in --out."),
    tolerance_floor: float = typer.Option(0.002, "--tolerance-floor", help="Smallest val_bpb tolerance."),
    tolerance_k: float = typer.Option(3.0, "--tolerance-k", help="Tolerance = max(floor, k x claimed seed sd)."),
    bytes_tolerance: float = typer.Option(0.005, "--bytes-tolerance", help="Relative artifact-bytes tolerance."),
    calibration: Path | None = typer.Option(None, "--calibration", help="calibration.json of this machine."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Measure this machine's ms/step instead."),
    calibrate_steps: int = typer.Option(20, "--calibrate-steps", help="Training steps of the calibration run."),
    workload: str = typer.Option("auto", "--workload", help="Calibration model: auto, official or tiny."),
) -> None:
    """Re-run a record folder per seed with torchrun and compare with its claims (PG601-PG603)."""
    from pgaudit.errors import UsageError
    from pgaudit.reproduce import main as repro
    from pgaudit.reproduce.options import ReproOptions, default_data_paths

    data, tokenizer = default_data_paths(data_path or _env_path("DATA_PATH"), tokenizer_path or _env_path("TOKENIZER_PATH"))
    opts = ReproOptions(
        record_dir=record_dir or Path("."), out_dir=out, seeds=list(seed), n_seeds=seeds, nproc=nproc, nnodes=nnodes,
        rdzv_endpoint=rdzv_endpoint, launcher=[launcher] if launcher else [], script=script,
        # --calibrate without data generates tiny data; a reproduction always needs the real data path.
        data_path=None if calibrate and not (data_path or _env_path("DATA_PATH")) else data,
        tokenizer_path=tokenizer, env=_parse_env(env), device=device, time_limit_s=time_limit,
        kill_grace_s=kill_grace, resume=resume, tolerance_floor=tolerance_floor, tolerance_k=tolerance_k,
        bytes_tolerance=bytes_tolerance, calibration=calibration,
    )  # fmt: skip
    if calibrate:
        raise typer.Exit(repro.calibrate(opts, calibrate_steps, workload))
    if record_dir is None:
        raise UsageError("give a RECORD_DIR to reproduce (or --calibrate)")
    raise typer.Exit(repro.run(opts))


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


# --- lineage: the command lives in pgaudit/lineage/command.py ---

app.command("lineage", help=lineage_help)(lineage_command)

"""`pgaudit check`: a path -> a Report. Finds the programs to audit, computes the facts once per program,
runs every selected rule in one pass over them, and attaches the record-folder validators.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgaudit import __version__, suppress
from pgaudit.analysis.evidence import LogLine
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.runcmd import documented_env
from pgaudit.errors import InputError
from pgaudit.findings import Confidence, Finding, InputProblem, Report, Severity
from pgaudit.policy import Policy
from pgaudit.source.program import Program, find_entries, inside, load_program


@dataclass
class AuditOptions:
    env: Mapping[str, str] = field(default_factory=dict)  # --env KEY=VALUE overrides
    select: tuple[str, ...] = ()  # code prefixes; empty = all
    ignore: tuple[str, ...] = ()
    use_logs: bool = True  # read the logged run configuration from the folder's train logs
    validators: bool = True  # run the record-folder validators (PG5xx)
    policy: Policy = field(default_factory=Policy)
    severity: Mapping[str, Severity] = field(default_factory=dict)  # per-code overrides from [tool.pgaudit]
    progress: Callable[[str], None] | None = None


def selected(code: str, options: AuditOptions) -> bool:
    if options.select and not any(code.startswith(p.upper()) for p in options.select):
        return False
    return not any(code.startswith(p.upper()) for p in options.ignore)


def audit(target: Path, options: AuditOptions | None = None, report: Report | None = None) -> Report:
    """Audit a script, a record folder, or a folder of record folders (into `report`, if given)."""
    options = options or AuditOptions()
    folders, root = plan(target)
    if target.is_file():  # a lone script: audit the code only; point check at the folder for its logs
        options = dataclasses.replace(options, use_logs=False, validators=False)
    report = report or Report(target=_display(target, root), tool_version=__version__)
    for folder, entries in folders:
        if options.progress:
            options.progress(_display(folder, root) or folder.name)
        audit_folder(folder, entries, options, report, root)
    report.run_config = {"env": dict(options.env), "select": list(options.select), "ignore": list(options.ignore)}
    return report


def audit_paths(
    targets: list[Path], options: AuditOptions, progress: Callable[[int], Any] | None = None
) -> Report:
    """Audit several targets into one report (paths relative to the working directory where possible)."""
    planned = [(target, *plan(target)) for target in targets]
    total = sum(len(folders) for _, folders, _ in planned)
    report = Report(target=", ".join(str(t) for t in targets), tool_version=__version__)
    bar = progress(total) if progress else None
    task = bar.add_task("auditing", total=total) if bar is not None else None
    try:
        if bar is not None:
            bar.start()
        for target, folders, root in planned:
            folder_options = options
            if target.is_file():
                folder_options = dataclasses.replace(options, use_logs=False, validators=False)
            for folder, entries in folders:
                if bar is not None:
                    bar.update(task, description=_display(folder, root) or folder.name)
                audit_folder(folder, entries, folder_options, report, root)
                if bar is not None:
                    bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    report.run_config = {"env": dict(options.env), "select": list(options.select), "ignore": list(options.ignore)}
    return report


def plan(target: Path) -> tuple[list[tuple[Path, list[Path]]], Path]:
    """The record folders to audit under `target` with their entry scripts, and the display root."""
    if not target.exists() and not target.is_symlink():
        raise InputError(str(target), "no such file or directory")
    root = _display_root(target)
    if target.is_symlink() and not target.exists():
        raise InputError(str(target), "broken symbolic link")
    if target.is_file():
        if target.suffix != ".py":
            raise InputError(str(target), "not a Python file (expected a .py script or a record folder)")
        return [(target.parent, [target])], root
    folders = _record_folders(target)
    if not folders:
        raise InputError(str(target), "no Python file to audit in this directory")
    return folders, root


def _record_folders(target: Path) -> list[tuple[Path, list[Path]]]:
    """The target itself if it holds scripts, else each subfolder that does (e.g. records/track_10min_16mb)."""
    entries = find_entries(target)
    if entries:
        return [(target, entries)]
    out = []
    for sub in sorted(p for p in target.rglob("*") if p.is_dir()):
        if not inside(sub, target):
            continue
        if any(part.startswith(".") for part in sub.relative_to(target).parts):
            continue
        found = find_entries(sub)
        if found and not any(sub.is_relative_to(f) for f, _ in out):
            out.append((sub, found))
    return out


def audit_folder(folder: Path, entries: list[Path], options: AuditOptions, report: Report, root: Path) -> None:
    """Audit one record folder (or one script) into `report`: rules on each entry program, then validators."""
    from pgaudit.rules import REGISTRY

    prefix = _display(folder, root)
    record = _load_record(folder, prefix, report) if options.use_logs or options.validators else None
    runs = record.runs() if record is not None and options.use_logs else []
    hyper = _merged_hyperparameters(runs)
    lines = [LogLine(run.name, ev.line, ev.text) for run in runs for ev in run.output_lines()]
    documented = None
    if options.use_logs:
        env, sources = documented_env(folder)
        documented = env if sources else None
    programs: list[Program] = []
    for entry in entries:
        try:
            program = load_program(entry, folder)
        except InputError as exc:
            report.errors.append(InputProblem(_join(prefix, exc.path), exc.detail))
            continue
        programs.append(program)
        for problem in program.problems:
            report.errors.append(InputProblem(_join(prefix, problem.path), problem.message))
        for audited in program.files:
            report.files.append(dataclasses.replace(audited, path=_join(prefix, audited.path)))
        facts = Facts(program, options.env, hyper, lines, documented)
        ran = [code for code in REGISTRY if selected(code, options)]
        findings = [finding for code in ran for finding in REGISTRY[code]().check(facts)]
        findings += [
            opaque_exec(unit, call, program.opaque_reason(call))
            for unit, call in program.opaque
            if selected("PG001", options)
        ]
        suppressions, malformed = suppress.collect([program])
        suppress.apply(findings, suppressions)
        findings += [f for f in [*malformed, *suppress.unused(suppressions, set(ran))] if selected(f.code, options)]
        report.findings.extend(_prefixed(_with_severity(f, options), prefix) for f in findings)
    if record is not None and options.validators and _is_record_folder(record):
        from pgaudit.validators import validate_folder

        for finding in validate_folder(record, programs, options.policy):
            if selected(finding.code, options):
                report.findings.append(_prefixed(_with_severity(finding, options), prefix))


def _load_record(folder: Path, prefix: str, report: Report):  # type: ignore[no-untyped-def]
    """The folder's claims and parsed logs (each log parsed once, shared by reachability and validators)."""
    from pgaudit.submission import load_record_folder

    try:
        record = load_record_folder(folder, prefix)
    except InputError as exc:
        report.errors.append(InputProblem(exc.path, exc.detail))
        return None
    report.errors.extend(record.problems)
    return record


def opaque_exec(unit, call, reason: str | None = None) -> Finding:  # type: ignore[no-untyped-def]
    """PG001: code run through exec/eval that pgaudit cannot decode statically was not audited."""
    import ast

    message = (
        f"`{ast.unparse(call)[:80]}` executes code that is neither a literal nor a decodable self-extracting "
        "payload: pgaudit cannot see that code, so nothing in it was audited."
    )
    if reason:  # a wrapper that does not decode, or a loader path that does not resolve: say which and why
        message = f"`{ast.unparse(call)[:80]}`: {reason}; the code it runs was not audited."
    return Finding(
        code="PG001",
        name="opaque-exec",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        message=message,
        location=unit.location(call),
        catalogue_ids=("R2",),
        fix="Commit the code that runs (or a payload pgaudit can decode: base64/ascii85 + lzma/zlib/gzip/bz2).",
        evidence=(unit.line_text(call.lineno).strip(),),
    )


def _with_severity(finding: Finding, options: AuditOptions) -> Finding:
    """Apply a configured severity override; code that cannot run stays informational."""
    override = next((sev for code, sev in options.severity.items() if finding.code.startswith(code)), None)
    if override is None or finding.reachable is False:
        return finding
    return dataclasses.replace(finding, severity=override)


def _is_record_folder(record) -> bool:  # type: ignore[no-untyped-def]
    """A folder a submission would be: under records/track_*/, or with a submission.json, README or train log.
    A bare folder with a script gets the code rules only."""
    return bool(record.track or record.claims is not None or record.logs or record.readme)


def _merged_hyperparameters(runs: list) -> dict[str, str]:  # type: ignore[type-arg]
    """Hyperparameters every run printed with the same value; a knob that differs between seeds is unknown."""
    merged: dict[str, str] = {}
    conflicting: set[str] = set()
    for run in runs:
        for key, value in run.hyperparameters.items():
            if key in merged and merged[key] != value:
                conflicting.add(key)
            merged.setdefault(key, value)
    return {k: v for k, v in merged.items() if k not in conflicting}


def _display_root(target: Path) -> Path:
    """Paths are shown relative to the working directory when the target is inside it, else relative to
    the target's parent (so the folder's own name stays visible)."""
    cwd = Path.cwd()
    try:
        target.resolve().relative_to(cwd.resolve())
        return cwd
    except ValueError:
        return target.resolve().parent


def _display(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return path.name
    text = rel.as_posix()
    return "" if text == "." else text


def _join(prefix: str, path: str) -> str:
    if path in ("", "."):
        return prefix or "."
    return f"{prefix}/{path}" if prefix else path


def _prefixed(finding: Finding, prefix: str) -> Finding:
    if not prefix:
        return finding
    loc = dataclasses.replace(finding.location, path=_join(prefix, finding.location.path))
    related = tuple(dataclasses.replace(r, path=_join(prefix, r.path)) for r in finding.related)
    return dataclasses.replace(finding, location=loc, related=related)


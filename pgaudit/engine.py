"""The one audit driver `check`, `ci` and `review` share: paths -> one `Report` (the audit result).

It plans the record folders under each target, audits each folder (programs loaded once, facts computed once
per program, every selected rule in one pass, then the record-folder validators) and records in the result
what ran (`FolderAudit`), so renderers and the review only read it. Folders are independent, so `jobs > 1`
audits them in a process pool; results are joined in plan order, identical to `jobs=1`.

Targets are made absolute before anything is read (a script's `__file__` is absolute at run time, so helper
paths computed from it resolve the same whether the folder was named relatively or not); paths in the result
are shown relative to the display root.
"""

from __future__ import annotations

import copyreg
import dataclasses
import gc
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pgaudit import __version__, suppress
from pgaudit.analysis.evidence import LogLine
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.runcmd import documented_env
from pgaudit.errors import InputError
from pgaudit.excerpts import window
from pgaudit.findings import Confidence, Finding, FolderAudit, InputProblem, Report, Severity
from pgaudit.options import AuditOptions, selected
from pgaudit.source.guards import BudgetExceeded, folder_budget, path_problem
from pgaudit.source.program import Program, find_entries, inside, load_program

__all__ = ["AuditOptions", "audit", "audit_paths", "plan", "selected"]

MAX_EXCERPT_FILE_BYTES = 64 * 1024 * 1024



def _read_only(table: dict[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(table)


# Options travel to --jobs workers by pickle; the policy's read-only tables are MappingProxyType.
copyreg.pickle(MappingProxyType, lambda proxy: (_read_only, (dict(proxy),)))


@dataclass(frozen=True)
class Work:
    """One folder to audit: picklable, so a worker process can take it."""

    folder: Path
    entries: tuple[Path, ...]
    options: AuditOptions
    root: Path  # display root
    label: str


def audit(target: Path, options: AuditOptions | None = None) -> Report:
    """Audit a script, a record folder, or a folder of record folders."""
    return audit_paths([target], options or AuditOptions())


def audit_paths(targets: list[Path], options: AuditOptions, *, jobs: int = 1,
                progress: Callable[[int], Any] | None = None, root: Path | None = None,
                label: str | None = None) -> Report:
    """Audit several targets into one report. `root`: what paths are shown relative to (default: the
    working directory when the target is inside it, else the target's parent). `progress(total)` returns a
    rich Progress (or None)."""
    work: list[Work] = []
    unplanned: list[InputProblem] = []
    for target in targets:
        absolute = Path(os.path.abspath(target))
        try:
            folders, display_root = plan(target)
        except InputError as exc:
            if len(targets) == 1:
                raise
            unplanned.append(InputProblem(exc.path, exc.detail))  # reported; the other targets go on
            continue
        display_root = root or display_root
        target_options = options
        if absolute.is_file():  # a lone script: the code only; point check at the folder for its logs
            target_options = dataclasses.replace(options, use_logs=False, validators=False)
        for folder, entries in folders:
            work.append(Work(folder, tuple(entries), target_options, display_root,
                             _display(folder, display_root) or folder.name))
    report = Report(target=label or ", ".join(str(t) for t in targets), tool_version=__version__)
    report.errors.extend(unplanned)
    for part in _run(work, jobs, progress):
        report.merge(part)
    report.run_config = {"env": dict(options.env), "select": list(options.select), "ignore": list(options.ignore)}
    describe_codes(report)
    return report


def describe_codes(report: Report, also: tuple[str, ...] = ()) -> None:
    """Attach the catalogue entry of every code that ran or was found (the renderers' code metadata)."""
    from pgaudit import codes

    ran = {c for f in report.folders for c in (*f.rules, *f.validators)}
    for code in sorted(ran | {f.code for f in report.findings} | set(also)):
        info = codes.describe(code)
        if info is not None:
            report.codes[code] = info


def _run(work: list[Work], jobs: int, progress: Callable[[int], Any] | None) -> list[Report]:
    bar = progress(len(work)) if progress else None
    task = bar.add_task("auditing", total=len(work)) if bar is not None else None
    results: list[Report | None] = [None] * len(work)
    jobs = max(1, min(jobs, len(work)))
    pool = None
    if jobs > 1:  # imported here: multiprocessing costs a single-folder check ~0.02 s of start-up
        from concurrent.futures import ProcessPoolExecutor, as_completed

        pool = ProcessPoolExecutor(max_workers=jobs)
    try:
        if pool is not None:  # submit (and so fork the workers) before the bar starts its refresh thread
            futures = {pool.submit(audit_work, item): i for i, item in enumerate(work)}
        if bar is not None:
            bar.start()
        if pool is None:
            for i, item in enumerate(work):
                if bar is not None:
                    bar.update(task, description=item.label)
                results[i] = audit_work(item)
                if bar is not None:
                    bar.advance(task)
        else:
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                if bar is not None:
                    bar.update(task, description=work[i].label)
                    bar.advance(task)
    except BaseException:
        if pool is not None:  # an error or Ctrl-C: leave no worker behind, and do not wait for their queue
            for process in list((pool._processes or {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            pool = None
        raise
    finally:
        if bar is not None:
            bar.stop()
        if pool is not None:
            pool.shutdown()
    return [r for r in results if r is not None]


def audit_work(item: Work) -> Report:
    """One folder's result (runs in a worker process under --jobs)."""
    report = Report(target="")
    audit_folder(item.folder, list(item.entries), item.options, report, item.root)
    return report


def plan(given: Path) -> tuple[list[tuple[Path, list[Path]]], Path]:
    """The record folders to audit under `given` (made absolute) with their entry scripts, and the display
    root. Errors name the target as it was given."""
    problem = path_problem(given)  # a link loop, dangling link or FIFO: refused before anything resolves it
    if problem:
        raise InputError(str(given), problem)
    target = Path(os.path.abspath(given))
    if not target.exists() and not target.is_symlink():
        raise InputError(str(given), "no such file or directory")
    root = _display_root(target)
    if target.is_symlink() and not target.exists():
        raise InputError(str(given), "broken symbolic link")
    if target.is_file():
        if target.suffix != ".py":
            raise InputError(str(given), "not a Python file (expected a .py script or a record folder)")
        return [(target.parent, [target])], root
    folders = _record_folders(target)
    if not folders:
        raise InputError(str(given), "no Python file to audit in this directory")
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
    """Audit one record folder (or one script) into `report`: rules on each entry program, then validators.

    Within a CPU and memory budget (source/guards.py): a folder past it is an input error, the run goes on."""
    try:
        with folder_budget():
            _audit_folder(folder, entries, options, report, root)
    except BudgetExceeded as exc:  # a lone script (no validators) is named itself, else its folder
        lone = not options.validators and len(entries) == 1
        report.errors.append(InputProblem(_display(entries[0] if lone else folder, root) or folder.name, str(exc)))


def _audit_folder(folder: Path, entries: list[Path], options: AuditOptions, report: Report, root: Path) -> None:
    from pgaudit.rules import REGISTRY

    gc.unfreeze()  # the previous folder's trees (frozen after loading, below) can be collected again

    folder = Path(os.path.abspath(folder))
    entries = [Path(os.path.abspath(e)) for e in entries]
    prefix = _display(folder, root)
    record = _load_record(folder, prefix, report) if options.use_logs or options.validators else None
    runs = record.runs() if record is not None and options.use_logs else []
    hyper = _merged_hyperparameters(runs)
    lines = [LogLine(run.name, ev.line, ev.text) for run in runs for ev in run.output_lines()]
    documented = None
    if options.use_logs:  # the current run command, from the submission context (pgaudit.context)
        env, sources = (record.context.run_command, record.context.run_command_sources) if record is not None \
            else documented_env(folder)
        documented = env if sources else None
    ran = selected_rules(options)
    audit = FolderAudit(path=prefix, rules=ran, claims=_title_claims(record))
    programs: list[Program] = []
    if selected("PG005", options):
        report.findings.extend(_prefixed(f, prefix) for f in launched_entry_notes(folder, entries))
    for entry in entries:
        try:
            program = load_program(entry, folder)
            # The parsed trees live as long as the audit: frozen, the collector stops re-scanning their tens
            # of thousands of nodes on every collection the analysis triggers, and at exit (together about a
            # tenth of a large record's time). The next folder thaws them (above), so they can be freed.
            gc.freeze()
        except InputError as exc:
            problem = InputProblem(_join(prefix, exc.path), exc.detail)
            if problem not in report.errors:  # a link loop is also seen when the folder's files are listed
                report.errors.append(problem)
            continue
        programs.append(program)
        for problem in program.problems:
            report.errors.append(InputProblem(_join(prefix, problem.path), problem.message))
        for audited in program.files:
            report.files.append(dataclasses.replace(audited, path=_join(prefix, audited.path)))
        facts = Facts(program, options.env, hyper, lines, documented)
        findings = [finding for code in ran for finding in REGISTRY[code]().check(facts)]
        findings += [
            opaque_exec(unit, call, program.opaque_reason(call))
            for unit, call in program.opaque
            if selected("PG001", options)
        ]
        suppressions, malformed = suppress.collect([program])
        if options.honour_suppressions:
            suppress.apply(findings, suppressions)
            attempts = suppress.unused(suppressions, set(ran))
        else:
            attempts = suppress.not_honoured(suppressions, findings)
        findings += [f for f in [*malformed, *attempts] if selected(f.code, options)]
        report.suppressions += suppress.listing(suppressions, options.honour_suppressions, prefix)
        findings = _with_excerpts(findings, folder, program)
        report.findings.extend(_prefixed(with_severity(f, options), prefix) for f in findings)
    audit.scripts = len(programs)
    audit.programs = tuple(_join(prefix, program.entry) for program in programs)
    if record is not None and options.validators and _is_record_folder(record):
        from pgaudit import codes
        from pgaudit.validators import validate_folder

        report.submissions[prefix or "."] = record.context.to_dict()
        audit.validators = tuple(c for c in codes.codes_of("validator") if selected(c, options))
        found = [f for f in validate_folder(record, programs, options.policy) if selected(f.code, options)]
        for finding in _with_excerpts(found, folder, None):
            report.findings.append(_prefixed(with_severity(finding, options), prefix))
    report.folders.append(audit)


def selected_rules(options: AuditOptions) -> tuple[str, ...]:
    """The static rules a folder's programs are checked with under these options."""
    from pgaudit.rules import REGISTRY

    return tuple(code for code in REGISTRY if selected(code, options))


def _load_record(folder: Path, prefix: str, report: Report):  # type: ignore[no-untyped-def]
    """The folder's claims and parsed logs (each log parsed once, shared by reachability and validators)."""
    from pgaudit.submission import load_record_folder

    try:
        record = load_record_folder(folder, prefix)
    except InputError as exc:
        report.errors.append(InputProblem(exc.path, exc.detail))
        return None
    report.errors.extend(InputProblem(_join(prefix, p.path), p.message) for p in record.problems)
    return record


def _title_claims(record) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """name, val_bpb and author from submission.json, as short strings (the review's title line)."""
    data = record.claims.data if record is not None and record.claims is not None else {}
    out = {}
    for key in ("name", "val_bpb", "author"):
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            out[key] = str(value)[:200]
    return out


def _with_excerpts(findings: list[Finding], folder: Path, program: Program | None) -> list[Finding]:
    """Each finding with the numbered lines around it, from the audited code (decoded payloads included) or,
    for logs and JSON, from the folder's file."""
    files: dict[str, list[str]] = {}
    out = []
    for f in findings:
        loc = f.location
        if loc.line is None or f.excerpt:
            out.append(f)
            continue
        lines = None
        if program is not None:
            unit = next((u for u in program.units if u.path == loc.path and u.in_payload == loc.in_payload
                         and (not loc.in_payload or u.wrapper_line == loc.wrapper_line)), None)
            lines = unit.lines if unit is not None else None
        if lines is None and not loc.in_payload:
            if loc.path not in files:
                files[loc.path] = _file_lines(folder, loc.path)
            lines = files[loc.path]
        out.append(dataclasses.replace(f, excerpt=window(lines or [], loc)))
    return out


def _file_lines(folder: Path, relative: str) -> list[str]:
    path = folder / relative
    try:
        if not inside(path, folder) or not path.is_file() or path.stat().st_size > MAX_EXCERPT_FILE_BYTES:
            return []
        return path.read_bytes().decode("utf-8", "replace").split("\n")
    except OSError:
        return []


def launched_entry_notes(folder: Path, entries: list[Path]) -> list[Finding]:
    """PG005: say which audited entries are there because the documented run command launches them."""
    from pgaudit.analysis.runcmd import launched_scripts
    from pgaudit.findings import Location

    notes = []
    for path, source in launched_scripts(folder):
        if path not in entries or path.name == "train_gpt.py":
            continue
        name = path.relative_to(folder).as_posix()
        notes.append(Finding(
            code="PG005",
            name="run-command-entry",
            severity=Severity.INFO,
            confidence=Confidence.HIGH,
            message=(
                f"The documented run command ({source}) launches `{name}`, so `{name}` is the code that runs: "
                "it is audited as an entry script, next to any train_gpt.py."
            ),
            location=Location(name, None),
            catalogue_ids=("R29",),
            evidence=(source,),
        ))
    return notes


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


def with_severity(finding: Finding, options: AuditOptions) -> Finding:
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

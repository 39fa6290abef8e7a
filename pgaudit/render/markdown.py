"""`--format markdown`: the job summary (`$GITHUB_STEP_SUMMARY`) -- verdict per record folder, the findings.

Everything from a submission goes through `mdtext` (escaped prose, safe code spans). The comment a reviewer
posts is `pgaudit review`; this is the overview a CI run leaves behind.
"""

from __future__ import annotations

from collections.abc import Iterable

from pgaudit.findings import Finding, InputProblem, Report, Severity
from pgaudit.render import mdtext as md
from pgaudit.render.meta import by_severity
from pgaudit.render.text import summary_line
from pgaudit.verdict import verdict

MAX_ROWS = 200  # a job summary is capped at 1 MiB; past this many findings, count the rest


def render_markdown(report: Report) -> str:
    lines = [f"## pgaudit: {md.text(summary_line(report))}", ""]
    scope = report.run_config.get("ci")
    if scope:
        lines += _scope(scope)
    lines += _folders(report)
    lines += _findings(report.active())
    lines += _input_errors(report.errors)
    suppressed = [f for f in report.findings if f.suppressed]
    if suppressed:
        lines += [f"{len(suppressed)} suppressed finding(s) are not listed (`--format json` shows them).", ""]
    from pgaudit.render.applied import applied_lines

    applied = applied_lines(report)
    if applied:
        lines += ["**What applied:**", "", *[f"- {md.text(line)}" for line in applied], ""]
    lines.append(f"<sub>pgaudit {md.text(report.tool_version)}: static audit, nothing was executed.</sub>")
    return "\n".join(lines) + "\n"


def _scope(scope: dict) -> list[str]:
    lines = ["### Pull request", ""]
    lines.append(f"Diff {md.code(scope.get('base', ''))}...{md.code(scope.get('head', ''))}: "
                 f"{md.text(scope.get('summary', ''))}")
    lines.append("")
    for folder in scope.get("folders", []):
        state = "new" if folder.get("new") else "existing"
        lines.append(f"- {state} record folder {md.code(folder['path'])} ({folder.get('files', 0)} file(s) changed)")
    outside = scope.get("outside", [])
    for change in outside[:20]:
        lines.append(f"- outside any record folder: {md.code(change['status'] + ' ' + change['path'])}")
    if len(outside) > 20:
        lines.append(f"- ... and {len(outside) - 20} more path(s) outside any record folder")
    lines.append("")
    return lines


def folders_of(report: Report) -> list[str]:
    """The record folders the report covers: the PR's under `pgaudit ci`, else the audited folders that had
    a script (from the audit result)."""
    scope = report.run_config.get("ci")
    if scope:
        return [f["path"] for f in scope.get("folders", []) if f.get("audited")]
    return sorted({f.path or "." for f in report.folders if f.scripts})


def in_folder(path: str, folder: str) -> bool:
    if folder == ".":
        return "/" not in path
    return path.startswith(folder.rstrip("/") + "/")


def _folders(report: Report) -> list[str]:
    folders = folders_of(report)
    if not folders:
        return []
    lines = ["| Record folder | Verdict | Errors | Warnings | Info |", "|---|---|---|---|---|"]
    for folder in folders:
        found = [f for f in report.findings if in_folder(f.location.path, folder)]
        problems = sum(in_folder(e.path, folder) for e in report.errors)
        active = [f for f in found if not f.suppressed]
        counts = [sum(f.severity == s for f in active) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)]
        judged = verdict(found, problems)
        lines.append(f"| {md.code(folder, cell=True)} | **{md.text(judged.label)}** | "
                     + " | ".join(str(c) for c in counts) + " |")
    outside = [f for f in report.active() if not any(in_folder(f.location.path, d) for d in folders)]
    if outside:
        counts = [sum(f.severity == s for f in outside) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)]
        lines.append(f"| outside the record folders | **{verdict(outside).label}** | "
                     + " | ".join(str(c) for c in counts) + " |")
    return [*lines, ""]


def _findings(findings: Iterable[Finding]) -> list[str]:
    ordered = by_severity(findings)
    if not ordered:
        return []
    lines = ["| Severity | Rule | Where | Finding | Fix |", "|---|---|---|---|---|"]
    for f in ordered[:MAX_ROWS]:
        rule = f"{f.code} {f.name}" + (f" ({f.condition})" if f.condition else "")
        lines.append(
            f"| {f.severity.label} | {md.text(rule)} | {md.code(where(f), cell=True)} | "
            f"{md.inline(f.message, cell=True)} | {md.inline(f.fix, cell=True)} |"
        )
    if len(ordered) > MAX_ROWS:
        lines.append(f"| | | | ... and {len(ordered) - MAX_ROWS} more finding(s) | |")
    return [*lines, ""]


def where(finding: Finding) -> str:
    loc = finding.location
    if loc.line is None:
        return loc.path
    text = f"{loc.path}:{loc.line}"
    if loc.in_payload:
        text += f" (decoded payload, exec'd at line {loc.wrapper_line})"
    return text


def _input_errors(errors: list[InputProblem]) -> list[str]:
    if not errors:
        return []
    lines = ["**Could not be audited:**", ""]
    lines += [f"- {md.code(e.path)}: {md.text(e.message)}" for e in errors]
    return [*lines, ""]

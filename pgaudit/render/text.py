"""`--format text`: findings grouped by file, with the code line, why, reachability, fix and ruling.

Full mode wraps every paragraph at the console's width (the terminal's, or 100 columns when the output is not
a terminal) with continuation lines indented under the paragraph; quoted code is cut, never wrapped. Concise
mode (`--output-format concise`) prints one `path:line:col: CODE severity: message` line per finding, the
shape ruff and compilers use, so editors and grep can jump to it. Colors come from rich, which turns them off
when the output is not a terminal (and honours NO_COLOR).
"""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.text import Text

from pgaudit.findings import Finding, Report, Severity
from pgaudit.render.meta import committed_line

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
INDENT = 8  # where a finding's paragraphs start, under its code name
TEXT_WIDTH = 100  # the width when the output is not a terminal (files, pipes, CI logs)


def render_text(report: Report, console: Console, show_info: bool = True) -> None:
    scope = report.run_config.get("ci")
    if scope:  # `pgaudit ci`: say what the pull request changed before what is wrong with it
        _para(console, Text(f"pull request {scope['base']}...{scope['head']}: {scope['summary']}", style="bold"), 0)
        console.print()
    by_file: dict[str, list[Finding]] = defaultdict(list)
    for finding in sorted(_shown(report, show_info), key=Finding.sort_key):
        by_file[finding.location.path].append(finding)
    for path, findings in by_file.items():
        console.print(Text(path, style="bold underline"))
        for finding in findings:
            _finding(console, finding)
        console.print()
    from pgaudit.render.applied import applied_lines

    for line in applied_lines(report):
        console.print(Text(line, style="dim"))
    console.print(summary_line(report, show_info))


def render_concise(report: Report, console: Console, show_info: bool = True) -> None:
    """One line per finding (never wrapped), then the summary line."""
    for f in sorted(_shown(report, show_info), key=Finding.sort_key):
        console.print(Text(concise_line(f)), soft_wrap=True)
    console.print(summary_line(report, show_info), soft_wrap=True)


def concise_line(f: Finding) -> str:
    """`path:line:col: CODE severity: message`. The line is the committed file's (the wrapper line for code in a
    self-extracting payload, with the payload line named in the message); pgaudit has no column, so 1."""
    line = committed_line(f) or 1
    message = " ".join(f.message.split())
    if f.location.in_payload:
        message = f"(payload line {f.location.line}) {message}"
    if f.reachable is False:
        message += " [does not run]"
    return f"{f.location.path}:{line}:1: {f.code} {f.severity.label}: {message}"


def _shown(report: Report, show_info: bool) -> list[Finding]:
    return [f for f in report.active() if show_info or f.severity > Severity.INFO]


def _para(console: Console, text: Text | str, indent: int = INDENT, style: str = "") -> None:
    """A paragraph at `indent`, wrapped at the console width, continuation lines indented too (no trailing
    blanks, so files and CI logs stay clean)."""
    body = text if isinstance(text, Text) else Text(text, style=style)
    for line in body.wrap(console, max(20, console.width - indent)):
        line.rstrip()
        console.print(Text(" " * indent).append_text(line), soft_wrap=True)


def _finding(console: Console, f: Finding) -> None:
    loc = f.location
    head = Text("  ")
    head.append(f"{loc.line or '-':>5} ", style="dim")
    head.append(f"{f.severity.label:<7}", style=_STYLE[f.severity])
    head.append(f" {f.code} {f.name}", style="bold")
    tags = [t for t in (f.condition, " ".join(f.catalogue_ids)) if t]
    if tags:
        head.append(f"  [{'; '.join(tags)}]", style="dim")
    if f.reachable is not None:
        head.append("  reachable: " + {True: "yes", False: "no"}[f.reachable], style="dim")
    elif f.reachability is not None:
        head.append("  reachable: undetermined", style="dim")
    console.print(head)
    if loc.in_payload:
        _para(console, f"inside the self-extracting payload exec'd at line {loc.wrapper_line}; line {loc.line} is a "
              "line of the decoded code", style="dim")
    for excerpt in f.evidence[:3]:  # quoted code: cut at the width, never wrapped
        quoted = Text(" " * INDENT + f"| {excerpt}", style="green", no_wrap=True, overflow="ellipsis")
        console.print(quoted, soft_wrap=False, crop=True)
    _para(console, f.message)
    if f.reachability is not None and f.reachability.detail:
        _para(console, f"reachability: {f.reachability.detail}", style="dim")
    for rel in f.related[:3]:
        _para(console, f"see also {rel.display()}", style="dim")
    if f.fix:
        fix = Text("fix:", style="bold")
        fix.append(f" {f.fix}")
        _para(console, fix)
    if f.ruling_urls:
        _para(console, f"ruling: {f.ruling_urls[0]}", style="dim")
    if f.suppressed:
        _para(console, f"suppressed: {f.suppression_reason or ''}", style="dim")


def summary_line(report: Report, show_info: bool = True) -> str:
    active = report.active()
    counts = {sev: sum(f.severity == sev for f in active) for sev in Severity}
    parts = [f"{counts[Severity.ERROR]} error(s)", f"{counts[Severity.WARNING]} warning(s)"]
    if show_info:
        parts.append(f"{counts[Severity.INFO]} info")
    suppressed = sum(f.suppressed for f in report.findings)
    if suppressed:
        parts.append(f"{suppressed} suppressed")
    payloads = sum(1 for f in report.files if f.payload)
    files = f"{len(report.files)} file(s)" + (f", {payloads} self-extracting" if payloads else "")
    verdict = "clean" if not counts[Severity.ERROR] and not report.errors else "NOT clean"
    inputs = f"; {len(report.errors)} input error(s)" if report.errors else ""
    return f"{verdict}: {', '.join(parts)} in {files}{inputs}"

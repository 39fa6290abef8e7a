"""`--format text`: findings grouped by file, with the code line, why, reachability, fix and ruling.

Colors come from rich, which turns them off when the output is not a terminal (and honours NO_COLOR).
"""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from pgaudit.findings import Finding, Report, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render_text(report: Report, console: Console, show_info: bool = True) -> None:
    scope = report.run_config.get("ci")
    if scope:  # `pgaudit ci`: say what the pull request changed before what is wrong with it
        console.print(Text(f"pull request {scope['base']}...{scope['head']}: {scope['summary']}", style="bold"))
        console.print()
    active = [f for f in report.active() if show_info or f.severity > Severity.INFO]
    by_file: dict[str, list[Finding]] = defaultdict(list)
    for finding in sorted(active, key=Finding.sort_key):
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
        console.print(
            f"        [dim]inside the self-extracting payload exec'd at line {loc.wrapper_line}; "
            f"line {loc.line} is a line of the decoded code[/dim]"
        )
    for excerpt in f.evidence[:3]:
        console.print(Text(f"        | {excerpt}", style="green"))
    console.print(f"        {escape(f.message)}", soft_wrap=True)
    if f.reachability is not None and f.reachability.detail:
        console.print(f"        [dim]reachability: {escape(f.reachability.detail)}[/dim]", soft_wrap=True)
    for rel in f.related[:3]:
        console.print(f"        [dim]see also {escape(rel.display())}[/dim]")
    if f.fix:
        console.print(f"        [bold]fix:[/bold] {escape(f.fix)}", soft_wrap=True)
    if f.ruling_urls:
        console.print(f"        [dim]ruling: {escape(f.ruling_urls[0])}[/dim]")
    if f.suppressed:
        console.print(f"        [dim]suppressed: {escape(f.suppression_reason or '')}[/dim]")


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

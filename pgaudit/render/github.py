"""`--format github`: GitHub Actions workflow commands (annotations), safe against submission text.

Every annotation is one line that starts with a command we write: data escapes `%`, `\\r` and `\\n`,
property values also `:` and `,` (GitHub's rules), so nothing a submission wrote can end the command or start
a line of its own. The full text report, which quotes submission code, follows inside
`::stop-commands::TOKEN` ... `::TOKEN::`: the runner ignores every command in between. TOKEN is a hash of
the text it wraps, so the output stays deterministic while a submission cannot contain its own token (that
would need a SHA-256 fixed point).

Annotations carry no columns (multi-line ranges reject them) and come most severe first, because GitHub
shows only the first few of each kind per step.
"""

from __future__ import annotations

import hashlib
import io

from rich.console import Console

from pgaudit.findings import Finding, Report, Severity
from pgaudit.render.meta import by_severity, clean, committed_line, payload_note
from pgaudit.render.text import TEXT_WIDTH, render_text, summary_line

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """GitHub's escaping of command data; other control characters are dropped."""
    return clean(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, data: str, **properties: str | int | None) -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{name}{' ' + props if props else ''}::{escape_data(data)}"


def annotation(finding: Finding) -> str:
    loc = finding.location
    line = committed_line(finding)
    end = loc.end_line if (not loc.in_payload and loc.end_line and line and loc.end_line > line) else None
    title = f"{finding.code} {finding.name}" + (f" ({finding.condition})" if finding.condition else "")
    lines = [finding.message]
    note = payload_note(finding)
    if note:
        lines.append(note)
    if finding.fix:
        lines.append(f"Fix: {finding.fix}")
    if finding.ruling_urls:
        lines.append(f"Ruling: {finding.ruling_urls[0]}")
    return command(_COMMAND[finding.severity], "\n".join(lines), file=loc.path, line=line, endLine=end, title=title)


def render_github(report: Report) -> str:
    out = [annotation(f) for f in by_severity(report.active())]
    out += [command("error", e.message, file=e.path, title="pgaudit: input not audited") for e in report.errors]
    out += wrapped_block("pgaudit report", _text_report(report))
    out.append(escape_data(summary_line(report)))
    return "\n".join(out) + "\n"


def wrapped_block(title: str, text: str) -> list[str]:
    """`text` in a collapsed log group, with workflow commands switched off while it is printed."""
    token = "pgaudit-" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    return [command("group", title), f"::stop-commands::{token}", *text.splitlines(), f"::{token}::", "::endgroup::"]


def _text_report(report: Report) -> str:
    buffer = io.StringIO()
    render_text(report, Console(file=buffer, color_system=None, width=TEXT_WIDTH, highlight=False))
    return clean(buffer.getvalue())

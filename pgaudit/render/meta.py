"""What renderers say about a finding's code: its family, descriptions and help, for any code.

Static rules are described by their catalogue entry, which the driver puts in the audit result
(`Report.codes`). Codes that are not rules (the PG5xx folder validators,
PG511 pr-scope, and rules that land later) are described from the code's family and from the finding itself,
so a new code renders correctly without a change here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pgaudit.codes import CodeInfo, family
from pgaudit.findings import Confidence, Finding, Severity

README_URL = "https://github.com/openai/parameter-golf/blob/main/README.md"

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_PRECISION = {Confidence.HIGH: "high", Confidence.MEDIUM: "medium", Confidence.LOW: "low"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    """Drop control characters (terminal escapes, NUL) from untrusted text; keep tabs and newlines."""
    return _CONTROL.sub("", text)


def sarif_level(severity: Severity) -> str:
    return _LEVEL[severity]


def precision(confidence: Confidence) -> str:
    return _PRECISION[confidence]


@dataclass(frozen=True)
class RuleMeta:
    code: str
    name: str
    short: str
    full: str
    help_text: str
    fix: str
    rulings: tuple[str, ...]
    condition: str | None
    catalogue_ids: tuple[str, ...]
    severity: Severity
    confidence: Confidence

    @property
    def tags(self) -> list[str]:
        return ["parameter-golf", *([self.condition] if self.condition else []), *self.catalogue_ids]


def rule_meta(code: str, findings: Iterable[Finding] = (), info: CodeInfo | None = None) -> RuleMeta:
    """Descriptions of `code`: from its catalogue entry in the audit result (`Report.codes`) when it is a
    static rule, else from its family and its findings."""
    if info is not None and info.kind == "rule":
        doc = info.doc
        head, _, body = doc.partition("\n")
        return RuleMeta(
            code=info.code,
            name=info.name,
            short=head.strip() or info.name,
            full=_what_it_does(body) or head.strip(),
            help_text=doc,
            fix=info.fix,
            rulings=info.rulings,
            condition=info.condition,
            catalogue_ids=info.catalogue_ids,
            severity=info.severity,
            confidence=info.confidence or Confidence.MEDIUM,
        )
    found = list(findings)
    first = found[0] if found else None
    name = first.name if first else code.lower()
    ids = tuple(dict.fromkeys(i for f in found for i in f.catalogue_ids))
    rulings = tuple(dict.fromkeys(u for f in found for u in f.ruling_urls)) or (README_URL,)
    fix = first.fix if first else ""
    return RuleMeta(
        code=code,
        name=name,
        short=f"{code} {name}",
        full=family(code),
        help_text=family(code) + (f"\n\nCatalogue: {' '.join(ids)}." if ids else ""),
        fix=fix,
        rulings=rulings,
        condition=first.condition if first else None,
        catalogue_ids=ids,
        severity=max((f.severity for f in found), default=Severity.WARNING),
        confidence=max((f.confidence for f in found), default=Confidence.MEDIUM),
    )


def _what_it_does(body: str) -> str:
    """The paragraph under the docstring's `What it does:` heading, on one line."""
    match = re.search(r"What it does:\s*\n(.*?)(?:\n\s*\n|\Z)", body, re.S)
    return " ".join(match.group(1).split()) if match else ""


def doc_markdown(doc: str) -> str:
    """A rule docstring as Markdown: headings bold, prose joined into paragraphs, examples fenced."""
    import textwrap

    head, _, body = doc.partition("\n")
    out = [head.strip()]
    for match in re.finditer(r"^(\S[^\n]*):\n((?:[ \t]+[^\n]*\n?|\n)*)", body, re.M):
        title, block = match.group(1), textwrap.dedent(match.group(2)).strip("\n")
        if title.lower().startswith("example"):
            out.append(f"**{title}**\n\n```python\n{block}\n```")
        else:
            paragraphs = [" ".join(p.split()) for p in block.split("\n\n") if p.strip()]
            out.append(f"**{title}**\n\n" + "\n\n".join(paragraphs))
    return "\n\n".join(out)


def payload_note(finding: Finding) -> str:
    """How to read a payload line: it is a line of the decoded code, carried by the wrapper line."""
    loc = finding.location
    if not loc.in_payload:
        return ""
    return (
        f"Line {loc.line} is a line of the code decoded from the self-extracting payload that "
        f"{loc.path} exec's at line {loc.wrapper_line}; the committed file shows only the wrapper."
    )


def committed_line(finding: Finding) -> int | None:
    """The line to point at in the committed file: the wrapper line for payload code."""
    loc = finding.location
    return loc.wrapper_line if loc.in_payload else loc.line


def by_severity(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then by place: the order annotation limits and readers should see them."""
    return sorted(findings, key=lambda f: (-int(f.severity), *f.sort_key()))

"""Inline suppressions: `# pgaudit: ignore[PG101] -- reason` on the finding's line or the line above it, and
`# pgaudit: ignore-file[PG103] -- reason` anywhere in a file. The reason is required: a suppression is a
claim a reviewer must be able to read. Malformed suppressions (PG002) and unused ones (PG003) are findings;
suppressed findings stay in the report, marked, so nothing disappears silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pgaudit.findings import Confidence, Finding, Location, Severity
from pgaudit.source.program import CodeUnit, Program

_DIRECTIVE = re.compile(r"#\s*pgaudit\s*:\s*(?P<kind>ignore-file|ignore)\b(?P<rest>.*)$")
_WELL_FORMED = re.compile(r"^\[(?P<codes>[A-Za-z0-9, ]+)\]\s*(?:--\s*(?P<reason>.*\S))?\s*$")
_CODE = re.compile(r"^PG\d{1,3}$")


@dataclass
class Suppression:
    unit: CodeUnit
    line: int
    codes: tuple[str, ...]  # codes or prefixes (PG1 covers PG101, PG102, ...)
    reason: str
    file_level: bool
    used: bool = False

    def covers(self, finding: Finding) -> bool:
        loc = finding.location
        if loc.path != self.unit.path or loc.in_payload != self.unit.in_payload:
            return False
        if not any(finding.code.startswith(code) for code in self.codes):
            return False
        return self.file_level or loc.line in (self.line, self._next_code_line())

    def _next_code_line(self) -> int:
        """A directive alone on its line applies to the next line."""
        text = self.unit.line_text(self.line).strip()
        return self.line + 1 if text.startswith("#") else self.line


def collect(programs: list[Program]) -> tuple[list[Suppression], list[Finding]]:
    """Every directive in the code that runs, and a PG002 finding for each malformed one."""
    found: list[Suppression] = []
    problems: list[Finding] = []
    for program in programs:
        for unit in program.units:
            if "pgaudit" not in unit.text:
                continue
            for number, line in enumerate(unit.lines, start=1):
                match = _DIRECTIVE.search(line)
                if match is None:
                    continue
                parsed = _WELL_FORMED.match(match.group("rest").strip())
                codes = tuple(c.strip().upper() for c in parsed.group("codes").split(",") if c.strip()) if parsed else ()
                reason = (parsed.group("reason") or "").strip() if parsed else ""
                bad = _problem(parsed is not None, codes, reason)
                if bad:
                    problems.append(_malformed(unit, number, line.strip(), bad))
                    continue
                found.append(Suppression(unit, number, codes, reason, match.group("kind") == "ignore-file"))
    return found, problems


def apply(findings: list[Finding], suppressions: list[Suppression]) -> None:
    for finding in findings:
        for suppression in suppressions:
            if suppression.covers(finding):
                finding.suppressed = True
                finding.suppression_reason = suppression.reason
                finding.suppression_kind = "inSource"
                suppression.used = True
                break


def unused(suppressions: list[Suppression], ran: set[str]) -> list[Finding]:
    """PG003 for directives that suppressed nothing (only for codes that actually ran)."""
    out = []
    for s in suppressions:
        if s.used or not any(r.startswith(c) for c in s.codes for r in ran):
            continue
        out.append(
            Finding(
                code="PG003",
                name="unused-suppression",
                severity=Severity.WARNING,
                confidence=Confidence.HIGH,
                message=f"`pgaudit: ignore[{', '.join(s.codes)}]` suppresses nothing here: no such finding at "
                f"{'this file' if s.file_level else f'line {s.line}'} (stale suppressions hide future findings).",
                location=s.unit.location(s.line),
                fix="Remove the directive, or move it to the line of the finding it is meant for.",
                evidence=(s.unit.line_text(s.line).strip(),),
            )
        )
    return out


def _problem(well_formed: bool, codes: tuple[str, ...], reason: str) -> str:
    if not well_formed:
        return "expected `# pgaudit: ignore[PG101] -- reason`"
    if not codes:
        return "no rule code between the brackets"
    bad = [c for c in codes if not _CODE.match(c)]
    if bad:
        return f"not a rule code: {', '.join(bad)}"
    if not reason:
        return "a reason is required after `--`"
    return ""


def _malformed(unit: CodeUnit, line: int, text: str, why: str) -> Finding:
    return Finding(
        code="PG002",
        name="malformed-suppression",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        message=f"Suppression comment not understood ({why}); it suppresses nothing.",
        location=Location(unit.path, line, line, unit.in_payload, unit.wrapper_line),
        fix="Write it as `# pgaudit: ignore[PG101] -- why this finding does not apply`.",
        evidence=(text,),
    )


# --- the gate: suppressions are not the audited author's to apply ----------------------------------------

GATE_CODE, GATE_NAME = "PG004", "suppression-not-honoured"


def not_honoured(suppressions: list[Suppression], findings: list[Finding]) -> list[Finding]:
    """PG004 for each directive in audited code under the gate (`ci`, `review`, `check --strict`).

    The author being audited is not the user of a compliance gate, so a directive silences nothing there: the
    findings it covers keep their own severity, and the attempt is reported here with the codes it names, its
    line and the author's reason, so a reviewer can still weigh the reason."""
    out = []
    for s in suppressions:
        covered = [f for f in findings if s.covers(f)]
        would = ", ".join(f"{f.code} at line {f.location.line}" for f in covered[:5]) if covered else ""
        what = f"it would have silenced {would}, which stays reported at its own severity" if covered else (
            "it matches no finding of this run")
        scope = "the whole file" if s.file_level else f"line {s.line}"
        out.append(
            Finding(
                code=GATE_CODE,
                name=GATE_NAME,
                severity=Severity.WARNING,
                confidence=Confidence.HIGH,
                message=f"`pgaudit: ignore{'-file' if s.file_level else ''}[{', '.join(s.codes)}]` on {scope} "
                f"tries to silence {', '.join(s.codes)} (the author's reason: \"{s.reason}\"). Inline "
                f"suppressions in audited code are not honoured by the gate (ci, review, check --strict): {what}.",
                location=s.unit.location(s.line),
                fix="Remove the directive; a finding that does not apply is argued in the pull request (or accepted "
                "by the maintainers in the repository's baseline file), not silenced by the submission itself.",
                evidence=(s.unit.line_text(s.line).strip(),),
            )
        )
    return out


def listing(suppressions: list[Suppression], honoured: bool, prefix: str = "") -> list[dict[str, object]]:
    """Every directive of a program as the report lists it: where, which codes, the reason, whether it applied."""
    out: list[dict[str, object]] = []
    for s in suppressions:
        path = f"{prefix}/{s.unit.path}" if prefix else s.unit.path
        out.append({"path": path, "line": s.line, "codes": list(s.codes), "reason": s.reason,
                    "file_level": s.file_level, "honoured": honoured, "used": s.used})
    return out

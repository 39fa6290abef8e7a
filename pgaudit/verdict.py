"""The verdict domain model: a report's verdict and its table of checks, for any code, present or future.

A finding belongs to a check by its `condition` (C1..C4), else by the check the code catalogue
(`pgaudit.codes`) gives it, else by its family: PG1xx C1, PG2xx C2, PG3xx C3, PG4xx data access; everything
else (line limit, package, claims) is "package".

A check says `pass` only when something that can fail it actually ran: the audit result records which rules
ran on how many scripts and which validators ran (`Report.folders`); nothing here consults a registry.
Validators report only problems and stay silent when a log lacks the numbers, so a silent validator is
`n.a.`, never `pass`; a check nothing in this run covers is `not checked`. The review and the Markdown
renderer read this model; it holds no rendering.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pgaudit import codes
from pgaudit.findings import Finding, Severity

CONDITIONS = ("C1", "C2", "C3", "C4")


@dataclass(frozen=True)
class Check:
    key: str
    title: str
    family: str = ""  # the code family that falls here when neither condition nor catalogue decides

    @property
    def validator_codes(self) -> tuple[str, ...]:
        """The PG5xx validator codes of this check, from the code catalogue."""
        return tuple(c for c, info in codes.all_codes().items() if info.kind == "validator" and info.check == self.key)


CHECKS: tuple[Check, ...] = (
    Check("C1", "C1 causality", "PG1"),
    Check("C2", "C2 normalization", "PG2"),
    Check("C3", "C3 score before update", "PG3"),
    Check("C4", "C4 single pass"),
    Check("data", "data access", "PG4"),
    Check("size", "artifact size"),
    Check("train", "train time"),
    Check("eval", "eval time"),
    Check("seeds", "seeds"),
    Check("significance", "significance"),
    Check("package", "package and claims", "PG5"),
    Check("scope", "pull request scope (R29)"),
)
_BY_KEY = {c.key: c for c in CHECKS}


def check_key(code: str, condition: str | None) -> str:
    """The check a code (with its condition) belongs to: its condition, else the catalogue's check, else its
    family; unknown codes fall into "package"."""
    if condition in CONDITIONS:
        return condition  # type: ignore[return-value]
    info = codes.describe(code)
    if info is not None and info.check:
        return info.check
    code = code.upper()
    return next((check.key for check in CHECKS if check.family and code.startswith(check.family)), "package")


@dataclass(frozen=True)
class CheckResult:
    check: Check
    status: str  # "pass", "fail", "warn", "n.a.", "not checked"
    evidence: str  # prose with backticked code, rendered with mdtext.inline
    findings: tuple[Finding, ...]


def check_results(findings: list[Finding], rules: Iterable[str], validators: Iterable[str], scripts: int,
                  also_ran: Iterable[str] = ()) -> list[CheckResult]:
    """One result per check for `findings` (one folder's), given the rules that ran on `scripts` scripts and
    the validators that ran (both read from the audit result, `FolderAudit`).

    `also_ran`: codes that are neither rules nor validators but ran on the whole pull request (PG511).
    """
    grouped: dict[str, list[Finding]] = {c.key: [] for c in CHECKS}
    for finding in findings:
        grouped[check_key(finding.code, finding.condition)].append(finding)
    rules_by_check: dict[str, list[str]] = {}
    for code in rules:
        rules_by_check.setdefault(check_key(code, _condition(code)), []).append(code)
    validators_by_check: dict[str, list[str]] = {}
    for code in validators:
        validators_by_check.setdefault(check_key(code, None), []).append(code)
    results = []
    for check in CHECKS:
        extra = [c for c in also_ran if check_key(c, None) == check.key]
        results.append(_result(check, grouped[check.key], rules_by_check.get(check.key, []),
                               tuple(validators_by_check.get(check.key, ())), scripts, extra))
    return results


def _condition(code: str) -> str | None:
    """A static rule's condition (C1..C4), from the code catalogue."""
    info = codes.describe(code)
    return info.condition if info is not None else None


def _result(check: Check, found: list[Finding], rules: list[str], validators: tuple[str, ...], scripts: int,
            extra: list[str]) -> CheckResult:
    active = [f for f in found if not f.suppressed]
    worst = max((f.severity for f in active), default=None)
    if worst == Severity.ERROR:
        return CheckResult(check, "fail", _cite(active, Severity.ERROR) + ".", tuple(found))
    if worst == Severity.WARNING:
        return CheckResult(check, "warn", _cite(active, Severity.WARNING) + ".", tuple(found))
    notes = _notes(found)
    info = f" Information only: {_cite(active, Severity.INFO)}." if active else ""
    ran = [*rules, *validators]
    if rules and scripts:
        return CheckResult(check, "pass", f"{', '.join(ran)} ran on {_scripts(scripts)}: no problem found."
                           + info + notes, tuple(found))
    if extra:
        return CheckResult(check, "pass", f"{', '.join(extra)} ran on the pull request: no problem found."
                           + info + notes, tuple(found))
    if validators and active:  # a validator read the numbers and only had information to give
        return CheckResult(check, "pass", f"{', '.join(validators)} ran: no problem found." + info + notes,
                           tuple(found))
    if validators:
        return CheckResult(check, "n.a.", f"{', '.join(validators)} reported nothing (validators are silent "
                           "when the logs lack the numbers, so this is not a pass)." + notes, tuple(found))
    return CheckResult(check, "not checked", _why_not(check, rules, scripts) + info + notes, tuple(found))


def _scripts(n: int) -> str:
    return "1 script" if n == 1 else f"{n} scripts"


def _why_not(check: Check, rules: list[str], scripts: int) -> str:
    if rules and not scripts:
        return "No script could be audited."
    parts = []
    if not check.validator_codes or (check.family and not check.family.startswith("PG5")):
        parts.append("no static rule for it in this pgaudit version")
    if check.key == "scope":
        return "Checked by `pgaudit ci` on the pull request's git diff, not on a folder alone."
    if check.validator_codes:
        parts.append(f"the record-folder validators ({', '.join(check.validator_codes)}) did not run")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _cite(findings: Iterable[Finding], severity: Severity) -> str:
    picked = [f for f in findings if f.severity == severity]
    cites = [f"{f.code} at `{_where(f)}`" for f in picked[:3]]
    more = f" and {len(picked) - 3} more" if len(picked) > 3 else ""
    return ", ".join(cites) + more


def _notes(found: list[Finding]) -> str:
    suppressed = [f for f in found if f.suppressed]
    if not suppressed:
        return ""
    return f" {len(suppressed)} suppressed ({', '.join(f'{f.code} at `{_where(f)}`' for f in suppressed[:3])})."


def _where(finding: Finding) -> str:
    loc = finding.location
    name = loc.path.rsplit("/", 1)[-1]
    if loc.line is None:
        return name
    return f"{name}:{loc.line}" + (" (payload)" if loc.in_payload else "")


# --- verdict ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    label: str  # "LOOKS CLEAN", "PASSES WITH WARNINGS", "NEEDS FIXES", "ILLEGAL under C3", ...
    reason: str  # prose with backticked code


def verdict(findings: list[Finding], input_errors: int = 0) -> Verdict:
    active = [f for f in findings if not f.suppressed]
    errors = [f for f in active if f.severity == Severity.ERROR]
    warnings = [f for f in active if f.severity == Severity.WARNING]
    conditions = sorted({check_key(f.code, f.condition) for f in errors} & set(CONDITIONS))
    illegal = [f for f in errors if check_key(f.code, f.condition) in (*CONDITIONS, "data")]
    if illegal:
        if conditions:
            label = "ILLEGAL under " + ", ".join(conditions)
        else:
            ids = sorted({i for f in illegal for i in f.catalogue_ids}) or ["data-access rules"]
            label = "ILLEGAL under " + ", ".join(ids)
        others = [f for f in errors if f not in illegal]
        also = f" Also {_count(others, 'other error')}: {_cite(others, Severity.ERROR)}." if others else ""
        return Verdict(label, f"{_count(illegal, 'error')}: {_cite(illegal, Severity.ERROR)}.{also}")
    # The headline follows errors only: warnings are borderline practices the catalogue accepts (a short GPTQ
    # reserve, two seeds, a p value between the policies); they are listed, not allowed to fail a record.
    if errors or input_errors:
        parts = [p for p in (_count(errors, "error"), _count(warnings, "warning")) if p]
        if input_errors:
            parts.append(f"{input_errors} file(s) could not be audited")
        cites = _cite(errors, Severity.ERROR) if errors else ""
        return Verdict("NEEDS FIXES", ", ".join(parts) + (f": {cites}." if cites else "."))
    infos = [f for f in active if f.severity == Severity.INFO]
    tail = f" ({_count(infos, 'informational note')})" if infos else ""
    if warnings:
        return Verdict("PASSES WITH WARNINGS", f"No error from the checks that ran; {_count(warnings, 'warning')} "
                       f"for the reviewer to read: {_cite(warnings, Severity.WARNING)}{tail}.")
    return Verdict("LOOKS CLEAN", f"No error or warning from the checks that ran{tail}.")


def _count(items: list[Finding], noun: str) -> str:
    if not items:
        return ""
    return f"{len(items)} {noun}" + ("s" if len(items) != 1 else "")


def check_by_key(key: str) -> Check:
    return _BY_KEY[key]


def review_order(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first; within a severity, in the order of the checks table (C1 first), then by place."""
    order = {c.key: i for i, c in enumerate(CHECKS)}
    return sorted(findings, key=lambda f: (-int(f.severity), order[check_key(f.code, f.condition)], *f.sort_key()))

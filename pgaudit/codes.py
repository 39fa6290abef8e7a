"""Every finding code pgaudit can emit, with its name and a one-line description.

Static rules describe themselves (rules/); this table covers the other producers -- input checks (PG0xx),
record-folder validators (PG5xx), the PR scope check and reproduction verdicts (PG6xx) -- so that
`pgaudit rules` and `pgaudit explain` know every code and renderers (SARIF, reviews) can describe any finding.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgaudit.findings import Severity


@dataclass(frozen=True)
class CodeInfo:
    code: str
    name: str
    kind: str  # "input", "rule", "validator", "ci", "reproduce"
    severity: Severity
    catalogue_ids: tuple[str, ...]
    summary: str
    doc: str = ""


_OTHER = [
    CodeInfo("PG001", "opaque-exec", "input", Severity.WARNING, ("R2",),
             "exec/eval of code pgaudit cannot decode statically: that code was not audited.",
             "The script runs code that is neither a literal nor a decodable self-extracting payload "
             "(`exec(os.environ['CODE'])`, a computed path). Nothing inside it was checked."),
    CodeInfo("PG002", "malformed-suppression", "input", Severity.WARNING, (),
             "A `# pgaudit: ignore[...]` comment that is not understood (a reason is required)."),
    CodeInfo("PG003", "unused-suppression", "input", Severity.WARNING, (),
             "A suppression that matches no finding: stale suppressions hide future findings."),
    CodeInfo("PG004", "run-command-entry", "input", Severity.INFO, ("R29",),
             "The documented run command launches a script other than train_gpt.py: that script is audited too.",
             "The entry of a submission is what its README or *.sh run command launches "
             "(`torchrun ... train_gpt_fast.py`, `python other.py`), whatever its name; pgaudit audits every "
             "script the command runs, next to train_gpt.py."),
    CodeInfo("PG501", "artifact-over-cap", "validator", Severity.ERROR, ("R1", "R2"),
             "A seed's artifact (model + code bytes) is over the decimal 16,000,000-byte cap."),
    CodeInfo("PG502", "train-time-over-cap", "validator", Severity.ERROR, ("R4",),
             "train_time over 600 s beyond the accepted final-step overshoot, or a disabled clock."),
    CodeInfo("PG503", "eval-time-over-cap", "validator", Severity.ERROR, ("R5",),
             "The scored evaluation path took more than 600 s."),
    CodeInfo("PG504", "train-data-after-cap", "validator", Severity.ERROR, ("R6",),
             "GPTQ/Hessian calibration read training data after the 600 s training budget."),
    CodeInfo("PG505", "line-limit", "validator", Severity.INFO, ("R7",),
             "The script is over 1,500 lines (hard error only for the root train_gpt.py)."),
    CodeInfo("PG506", "incomplete-package", "validator", Severity.ERROR, ("R29",),
             "The record folder lacks README.md, submission.json (val_bpb + author), a train log or the script."),
    CodeInfo("PG507", "claims-mismatch", "validator", Severity.WARNING, ("R10",),
             "submission.json disagrees with what the logs show."),
    CodeInfo("PG508", "too-few-seeds", "validator", Severity.WARNING, ("R8", "R10"),
             "Fewer than three seeds of the submitted configuration."),
    CodeInfo("PG509", "not-significant", "validator", Severity.WARNING, ("R8", "R9"),
             "The improvement is not significant under the README or the late maintainers' policy."),
    CodeInfo("PG510", "val-split-integrity", "validator", Severity.WARNING, ("R25",),
             "Validation token count or data-prep defaults suggest the validation split is not canonical."),
    CodeInfo("PG511", "pr-scope", "ci", Severity.ERROR, ("R29",),
             "A record PR must only add one new folder under records/track_*/."),
    CodeInfo("PG601", "not-reproduced", "reproduce", Severity.ERROR, ("R10",),
             "The re-run's score differs from the claim beyond the tolerance."),
    CodeInfo("PG602", "run-failed", "reproduce", Severity.ERROR, ("R29",),
             "The re-run crashed or was killed at the time limit."),
    CodeInfo("PG603", "artifact-mismatch", "reproduce", Severity.ERROR, ("R1",),
             "The re-run's artifact bytes differ from the claim."),
]  # fmt: skip


def all_codes() -> dict[str, CodeInfo]:
    """Static rules and every other code, sorted by code."""
    from pgaudit.rules import REGISTRY

    table = {info.code: info for info in _OTHER}
    for code, cls in REGISTRY.items():
        table[code] = CodeInfo(code, cls.name, "rule", cls.severity, cls.catalogue_ids, cls.summary(), cls.doc())
    return dict(sorted(table.items()))


def describe(code: str) -> CodeInfo | None:
    return all_codes().get(code.upper())

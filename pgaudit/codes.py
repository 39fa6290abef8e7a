"""The one catalogue of finding codes: every code pgaudit can emit, its name, kind, default severity,
catalogue IDs, the reviewer's check it belongs to, and the family a code range stands for.

Static rules describe themselves (rules/, merged in by `all_codes`); this table covers the other producers --
input checks (PG0xx), record-folder validators (PG5xx), the PR scope check and reproduction verdicts (PG6xx).
Validators, the verdict model, `pgaudit rules`/`explain` and the renderers all read their names and groupings
from here; nothing else lists codes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pgaudit.findings import Confidence, Severity


@dataclass(frozen=True)
class CodeInfo:
    code: str
    name: str
    kind: str  # "input", "rule", "validator", "ci", "reproduce"
    severity: Severity
    catalogue_ids: tuple[str, ...]
    summary: str
    doc: str = ""
    check: str = ""  # the reviewer's check (pgaudit.verdict.CHECKS) when the code names no condition
    # Static rules also bring what SARIF and the review show about them.
    condition: str | None = None
    confidence: Confidence | None = None
    fix: str = ""
    rulings: tuple[str, ...] = ()


_OTHER = [
    CodeInfo("PG001", "opaque-exec", "input", Severity.WARNING, ("R2",),
             "exec/eval of code pgaudit cannot decode statically: that code was not audited.",
             "The script runs code that is neither a literal nor a decodable self-extracting payload "
             "(`exec(os.environ['CODE'])`, a computed path). Nothing inside it was checked.", check="package"),
    CodeInfo("PG002", "malformed-suppression", "input", Severity.WARNING, (),
             "A `# pgaudit: ignore[...]` comment that is not understood (a reason is required).", check="package"),
    CodeInfo("PG003", "unused-suppression", "input", Severity.WARNING, (),
             "A suppression that matches no finding: stale suppressions hide future findings.", check="package"),
    CodeInfo("PG004", "suppression-not-honoured", "input", Severity.WARNING, (),
             "An inline suppression in audited code, not honoured by the gate (ci, review, check --strict).",
             "The author being audited is not the user of a compliance gate: under `pgaudit ci`, `pgaudit review` "
             "and `pgaudit check --strict`, `# pgaudit: ignore[...]` directives silence nothing. The findings they "
             "cover keep their own severity; this finding names the codes the directive tried to silence, its "
             "line and the author's reason. Accepted findings belong in the repository's baseline file.", check="package"),
    CodeInfo("PG005", "run-command-entry", "input", Severity.INFO, ("R29",),
             "The documented run command launches a script other than train_gpt.py: that script is audited too.",
             "The entry of a submission is what its README or *.sh run command launches "
             "(`torchrun ... train_gpt_fast.py`, `python other.py`), whatever its name; pgaudit audits every "
             "script the command runs, next to train_gpt.py.", check="package"),
    CodeInfo("PG501", "artifact-over-cap", "validator", Severity.ERROR, ("R1", "R2"),
             "A seed's artifact (model + code bytes) is over the decimal 16,000,000-byte cap.", check="size"),
    CodeInfo("PG502", "train-time-over-cap", "validator", Severity.ERROR, ("R4",),
             "train_time over 600 s beyond the accepted final-step overshoot, or a disabled clock.", check="train"),
    CodeInfo("PG503", "eval-time-over-cap", "validator", Severity.ERROR, ("R5",),
             "The scored evaluation path took more than 600 s.", check="eval"),
    CodeInfo("PG504", "train-data-after-cap", "validator", Severity.ERROR, ("R6",),
             "GPTQ/Hessian calibration read training data after the 600 s training budget.", check="train"),
    CodeInfo("PG505", "line-limit", "validator", Severity.INFO, ("R7",),
             "The script is over 1,500 lines (hard error only for the root train_gpt.py).", check="package"),
    CodeInfo("PG506", "incomplete-package", "validator", Severity.ERROR, ("R29",),
             "The record folder lacks README.md, submission.json (val_bpb + author), a train log or the script.", check="package"),
    CodeInfo("PG507", "claims-mismatch", "validator", Severity.WARNING, ("R10",),
             "submission.json disagrees with what the logs show.", check="package"),
    CodeInfo("PG508", "too-few-seeds", "validator", Severity.WARNING, ("R8", "R10"),
             "Fewer than three seeds of the submitted configuration.", check="seeds"),
    CodeInfo("PG509", "not-significant", "validator", Severity.WARNING, ("R8", "R9"),
             "The improvement is not significant under the README or the late maintainers' policy.", check="significance"),
    CodeInfo("PG510", "val-split-integrity", "validator", Severity.WARNING, ("R25",),
             "Validation token count or data-prep defaults suggest the validation split is not canonical.", check="data"),
    CodeInfo("PG512", "retracted-submission", "validator", Severity.INFO, ("R10",),
             "The submission is retracted (val_bpb null, a withdrawn status or README): not audited as a claim.", check="package"),
    CodeInfo("PG511", "pr-scope", "ci", Severity.ERROR, ("R29",),
             "A record PR must only add one new folder under records/track_*/.", check="scope"),
    CodeInfo("PG601", "not-reproduced", "reproduce", Severity.ERROR, ("R10",),
             "The re-run's score differs from the claim beyond the tolerance.", check="package"),
    CodeInfo("PG602", "run-failed", "reproduce", Severity.ERROR, ("R29",),
             "The re-run crashed or was killed at the time limit.", check="package"),
    CodeInfo("PG603", "artifact-mismatch", "reproduce", Severity.ERROR, ("R1",),
             "The re-run's artifact bytes differ from the claim.", check="package"),
]  # fmt: skip


# Code prefix -> what the family checks (DESIGN.md: code ranges); the longest matching prefix wins.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("PG511", "Pull request scope: a submission PR only adds one new folder under records/track_*/ (R29)."),
    ("PG0", "Input: a file that could not be audited."),
    ("PG1", "Causality (C1): the prediction at position t may depend only on the artifact and the strict prefix."),
    ("PG2", "Normalization (C2): a full distribution over the vocabulary, fixed before the token is revealed."),
    ("PG3", "Score before update and single pass (C3/C4): each token scored once, before any update that used it."),
    ("PG4", "Data access: no validation data in training or calibration, no training data or network at eval."),
    ("PG5", "Record-folder validator: artifact size, timing, package contents, claims, seeds, significance."),
    ("PG6", "Reproduction: a re-run compared with the submission's claims."),
)


def family(code: str) -> str:
    for prefix, description in FAMILIES:
        if code.upper().startswith(prefix):
            return description
    return "pgaudit check."


def codes_of(kind: str) -> dict[str, str]:
    """Code -> name of every non-rule code of a kind ("input", "validator", "ci", "reproduce"), in code order."""
    return {info.code: info.name for info in _OTHER if info.kind == kind}


def name(code: str) -> str:
    """The name of a non-rule code (validators, CI, reproduce take their names from here)."""
    return next(info.name for info in _OTHER if info.code == code)


@functools.cache
def _all_codes() -> tuple[tuple[str, CodeInfo], ...]:
    from pgaudit.rules import REGISTRY

    table = {info.code: info for info in _OTHER}
    for code, cls in REGISTRY.items():
        table[code] = CodeInfo(code, cls.name, "rule", cls.severity, tuple(cls.catalogue_ids), cls.summary(), cls.doc(),
                               condition=cls.condition, confidence=cls.confidence, fix=cls.fix,
                               rulings=tuple(cls.ruling_urls))
    return tuple(sorted(table.items()))


def all_codes() -> dict[str, CodeInfo]:
    """Static rules and every other code, sorted by code."""
    return dict(_all_codes())


def describe(code: str) -> CodeInfo | None:
    return dict(_all_codes()).get(code.upper())

"""PG506 incomplete-package (R29): README.md, submission.json (val_bpb + an author), a train log, the script.

Nonstandard names accepted in practice are found, not rejected (`train.log`, `logs/train0.txt`,
`ternary_log_42.txt`, `submission_ternary.json`, `train_gpt_cuda_ternary.py`, `mean_val_bpb`).
Severity: a missing file is an error in the record track and a warning in the non-record track, where
merged folders lack a JSON (2026-04-05 XNOR-Net) or a log (2026-03-29 LLaDA). A missing author identifier
is a warning: the accepted 2026-03-19 smeargate record has none. A folder under a data-only fixture tree
(no README, no scripts copied) is checked for its data files only.
"""

from __future__ import annotations

from pgaudit.findings import Confidence, Finding, Location, Severity
from pgaudit.submission import VAL_BPB_KEYS, Claims, RecordFolder
from pgaudit.validators.common import Context, finding
from pgaudit.validators.line_limit import is_repository_root

CODE, NAME = "PG506", "incomplete-package"


def check(ctx: Context) -> list[Finding]:
    folder = ctx.folder
    if folder.track is None and is_repository_root(folder.root):
        return []  # the challenge repository itself, audited for its root scripts, is not a submission
    missing_severity = Severity.ERROR if folder.is_record_track else Severity.WARNING
    findings: list[Finding] = []

    def missing(what: str, fix: str, path: str = ".") -> None:
        track = "" if folder.is_record_track else " (non-record track: merged folders have lacked it, so a warning)"
        findings.append(finding(CODE, NAME, missing_severity, Confidence.HIGH,
                                f"The folder has no {what}{track}.", Location(path), ("R29",), fix,
                                [f"files: {', '.join(folder.files) if folder.files else '(none)'}"]))

    if not folder.data_only:
        if folder.readme is None:
            missing("README.md explaining the submission", "Add a README.md describing the method and the runs.")
        if not folder.scripts:
            missing("training script (train_gpt.py)", "Add the train_gpt.py that produced the logs.")
    if folder.claims is None:
        missing("submission.json", "Add a submission.json with name, GitHub ID, val_bpb and related metadata.")
    else:
        findings.extend(_check_claims_file(folder, folder.claims, missing_severity))
    if not folder.logs:
        missing("train log produced by the script", "Add the train log(s) of the submitted run(s).")
    return findings


def _check_claims_file(folder: RecordFolder, claims: Claims, severity: Severity) -> list[Finding]:
    path = claims.path
    if claims.error:
        return [finding(CODE, NAME, severity, Confidence.HIGH, f"{path} cannot be read: {claims.error}.",
                        Location(path), ("R29",), "Make submission.json a valid JSON object.",
                        [f"{path}: {claims.error}"])]
    found: list[Finding] = []
    if claims.val_bpb is None:
        near = [k for k in claims.data if "bpb" in k.lower() or k.lower() in ("val_loss", "score")]
        if near:
            message = (f"{path} has no val_bpb field (found {', '.join(near)}); the README asks for val_bpb.")
            found.append(finding(CODE, NAME, Severity.WARNING, Confidence.HIGH, message, Location(path), ("R29",),
                                 "Add a top-level \"val_bpb\" with the claimed score.", [f"{path}: keys {sorted(claims.data)}"]))
        else:
            message = f"{path} claims no score: none of {', '.join(VAL_BPB_KEYS)} is present."
            found.append(finding(CODE, NAME, severity, Confidence.HIGH, message, Location(path), ("R29",),
                                 "Add a top-level \"val_bpb\" with the claimed score.", [f"{path}: keys {sorted(claims.data)}"]))
    if claims.author is None:
        message = (f"{path} names no author (author / github_id). The accepted 2026-03-19 smeargate record also "
                   "lacks one, so this is a warning.")
        found.append(finding(CODE, NAME, Severity.WARNING, Confidence.HIGH, message, Location(path), ("R29",),
                             "Add \"author\" and \"github_id\".", [f"{path}: keys {sorted(claims.data)}"]))
    return found

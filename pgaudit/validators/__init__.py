"""Record-folder validators (PG5xx): size, timing, line limit, package, evidence, seeds, significance, data.

`validate_folder` runs them all on a loaded `RecordFolder` and the `Program`s of its entry scripts.
Specification: CATALOGUE.md R1-R11, R25-R32; see docs/validators.md.
"""

from __future__ import annotations

import dataclasses

from pgaudit.codes import codes_of
from pgaudit.findings import Confidence, Finding, Location, Severity
from pgaudit.policy import Policy
from pgaudit.significance import Sample
from pgaudit.source.program import Program
from pgaudit.submission import RecordFolder
from pgaudit.validators import claims, line_limit, package, seeds, size, timing, val_split
from pgaudit.validators.common import Context, finding

# Code -> name of every validator finding, in code order (from the one code catalogue).
VALIDATOR_CODES: dict[str, str] = codes_of("validator")


def _undeclared_track(found: list[Finding], folder: RecordFolder) -> list[Finding]:
    """Outside records/ with no track in the README or submission.json, the 600 s caps are the record track's
    reading, not a fact: over-cap runs are warnings that ask for the declaration (R32: the README governs)."""
    if folder.context.track is not None:
        return found
    out = []
    for f in found:
        if f.severity is Severity.ERROR:
            f = dataclasses.replace(f, severity=Severity.WARNING, message=f.message + (
                " The track is not declared (no README statement, no submission.json track, not under "
                "records/track_*/): this is the record track's cap. A non-record submission says so in its README "
                "(R32), and the caps are waived; under records/track_10min_16mb/ this is an error."),
                catalogue_ids=(*f.catalogue_ids, "R32"))
        out.append(f)
    return out


def retracted(folder: RecordFolder) -> Finding:
    """PG512: the submission withdrew its claim; its claims are not audited (the code and logs still are)."""
    ctx = folder.context
    path, line = ctx.retracted_at
    return finding(
        "PG512", "retracted-submission", Severity.INFO, Confidence.HIGH,
        f"The submission is retracted ({ctx.retracted_why}): its claims (score, seeds, significance) are not "
        "audited as a claim; its code and logs still are.",
        Location(path or folder.readme or ".", line), ("R10",),
        "Nothing to fix: a retracted submission is not a record claim. Remove the folder from the pull request, "
        "or restore the claim with its logs.",
    )


def validate_folder(
    folder: RecordFolder, programs: list[Program], policy: Policy, *, against: Sample | None = None
) -> list[Finding]:
    """All PG5xx findings for one record folder. `against` is the baseline for PG509 (`--against`)."""
    ctx = Context(folder, programs, policy)
    findings: list[Finding] = []
    if folder.context.retracted:  # reported as retracted, not audited as a claim
        findings += [retracted(folder)]
    findings += size.check(ctx)
    findings += _undeclared_track([*timing.check_train_time(ctx), *timing.check_eval_time(ctx),
                                   *timing.check_train_data_after_cap(ctx)], folder)
    findings += line_limit.check(ctx)
    findings += package.check(ctx)
    if not folder.context.retracted:
        findings += claims.check(ctx)
        findings += seeds.check_seed_count(ctx)
        findings += seeds.check_significance(ctx, against)
    findings += val_split.check(ctx)
    return sorted(findings, key=Finding.sort_key)


__all__ = ["VALIDATOR_CODES", "validate_folder"]

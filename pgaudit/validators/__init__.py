"""Record-folder validators (PG5xx): size, timing, line limit, package, evidence, seeds, significance, data.

`validate_folder` runs them all on a loaded `RecordFolder` and the `Program`s of its entry scripts.
Specification: CATALOGUE.md R1-R11, R25-R32; see docs/validators.md.
"""

from __future__ import annotations

from pgaudit.codes import codes_of
from pgaudit.findings import Finding
from pgaudit.policy import Policy
from pgaudit.significance import Sample
from pgaudit.source.program import Program
from pgaudit.submission import RecordFolder
from pgaudit.validators import claims, line_limit, package, seeds, size, timing, val_split
from pgaudit.validators.common import Context

# Code -> name of every validator finding, in code order (from the one code catalogue).
VALIDATOR_CODES: dict[str, str] = codes_of("validator")


def validate_folder(
    folder: RecordFolder, programs: list[Program], policy: Policy, *, against: Sample | None = None
) -> list[Finding]:
    """All PG5xx findings for one record folder. `against` is the baseline for PG509 (`--against`)."""
    ctx = Context(folder, programs, policy)
    findings: list[Finding] = []
    findings += size.check(ctx)
    findings += timing.check_train_time(ctx)
    findings += timing.check_eval_time(ctx)
    findings += timing.check_train_data_after_cap(ctx)
    findings += line_limit.check(ctx)
    findings += package.check(ctx)
    findings += claims.check(ctx)
    findings += seeds.check_seed_count(ctx)
    findings += seeds.check_significance(ctx, against)
    findings += val_split.check(ctx)
    return sorted(findings, key=Finding.sort_key)


__all__ = ["VALIDATOR_CODES", "validate_folder"]

"""What every PG5xx validator shares: ruling URLs, finding construction, evidence quoting."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pgaudit.findings import Confidence, Finding, Location, Severity
from pgaudit.logs import Evidence, RunLog
from pgaudit.policy import Policy
from pgaudit.source.program import Program
from pgaudit.submission import Claim, RecordFolder

_SEED_NAME = re.compile(r"seed[_\-]?\d+", re.IGNORECASE)
README_URL = "https://github.com/openai/parameter-golf/blob/main/README.md"
PR = "https://github.com/openai/parameter-golf/pull/{}".format

# Ruling URLs per catalogue ID (CATALOGUE.md §1-§4, §9, §11).
RULINGS: dict[str, tuple[str, ...]] = {
    "R1": (README_URL, PR(1835)),
    "R2": (README_URL, PR(1412)),
    "R4": (README_URL,),
    "R5": (README_URL, PR(1972)),
    "R6": (PR(1047), PR(634)),
    "R7": ("https://github.com/openai/parameter-golf/blob/main/train_gpt.py", README_URL),
    "R8": (README_URL,),
    "R9": (PR(1902),),
    "R10": (PR(2124),),
    "R25": ("https://github.com/openai/parameter-golf/issues/2127", PR(2146)),
    "R29": (README_URL,),
    "R32": (README_URL,),
}


@dataclass(frozen=True)
class Context:
    """Inputs of one validation pass."""

    folder: RecordFolder
    programs: list[Program]
    policy: Policy


def rulings(*catalogue_ids: str) -> tuple[str, ...]:
    seen: list[str] = []
    for cid in catalogue_ids:
        for url in RULINGS.get(cid, ()):
            if url not in seen:
                seen.append(url)
    return tuple(seen)


def finding(
    code: str,
    name: str,
    severity: Severity,
    confidence: Confidence,
    message: str,
    location: Location,
    catalogue_ids: tuple[str, ...],
    fix: str,
    evidence: Iterable[str] = (),
    related: Iterable[Location] = (),
) -> Finding:
    return Finding(
        code=code,
        name=name,
        severity=severity,
        confidence=confidence,
        message=message,
        location=location,
        catalogue_ids=catalogue_ids,
        ruling_urls=rulings(*catalogue_ids),
        fix=fix,
        reachability=None,
        evidence=tuple(dict.fromkeys(evidence)),  # keep order, drop repeats
        related=tuple(related),
    )


def log_location(run: RunLog, evidence: Evidence | None) -> Location:
    return Location(run.name, evidence.line if evidence else None)


def claim_location(path: str, claim: Claim | None) -> Location:
    return Location(path, claim.line if claim else None)


def quote(run: RunLog, *items: Evidence | None) -> list[str]:
    return [item.quote(run.name) for item in items if item is not None]


def fmt_bytes(n: int | float) -> str:
    return f"{int(n):,}"


def fmt_ms(ms: float) -> str:
    return f"{ms:,.0f} ms"


def seed_label(run: RunLog) -> str:
    return f"seed {run.seed}" if run.seed is not None else run.name


def unique_runs(folder: RecordFolder) -> list[RunLog]:
    """Every submitted run (the submission context's), dropping exact repeats: a file that prints its results twice, or a second
    file with the same run (`final_model_source.log` next to `train_seed1337.log`)."""
    out: list[RunLog] = []
    seen: set[tuple] = set()
    # Logs named for their seed first, so that a repeat elsewhere is the one dropped.
    for run in sorted(folder.submitted_runs(), key=lambda r: _SEED_NAME.search(r.name) is None):
        key = (
            run.seed,
            run.train_time_ms,
            tuple((m.method, m.bpb_text) for m in run.metrics),
            tuple((s.kind, s.bytes) for s in run.sizes),
        )
        if key not in seen:
            seen.add(key)
            out.append(run)
    return out

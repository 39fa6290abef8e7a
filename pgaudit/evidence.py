"""Tie a folder's claims to its logs: which run backs which seed, and which logged value a claim matches.

Shared by the evidence (PG507) and significance (PG508/PG509) validators and the `significance` command.
Numbers are compared "within the printed precision": a claim printed with d decimals matches a logged value
when they differ by at most one unit in the d-th place (or in the log's last place, if coarser), because
authors round means and per-seed values differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from pgaudit.logs import Metric, RunLog, decimals
from pgaudit.submission import Claim, Claims, RecordFolder

_SEED_IN_NAME = re.compile(r"seed[_\-]?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class SeedRun:
    """One run chosen to represent a seed: its log, the metric taken as its score, and the seed's source."""

    seed: int | None
    run: RunLog
    metric: Metric
    seed_from: str  # "log" (hyperparameter line), "file name", or "unknown"

    @property
    def log_name(self) -> str:
        return self.run.name


def claim_decimals(claim: Claim) -> int:
    """Decimals of a JSON number as written (`1.2300` -> 4). When the line does not single the key out
    (minified JSON), Python's shortest repr is used: it drops trailing zeros, so the tolerance only widens."""
    key = claim.key.rsplit(".", 1)[-1]
    found = re.findall(rf'"{re.escape(key)}"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)', claim.text or "")
    return decimals(found[0]) if len(found) == 1 else decimals(repr(claim.value))


def within_precision(claimed: float, claimed_decimals: int, logged: float, logged_decimals: int) -> bool:
    places = min(claimed_decimals, logged_decimals) if logged_decimals else claimed_decimals
    return abs(claimed - logged) <= 10.0 ** (-places) + 1e-12


def seed_of_run(run: RunLog) -> tuple[int | None, str]:
    if run.seed is not None:
        return run.seed, "log"
    match = _SEED_IN_NAME.search(PurePosixPath(run.name).name)
    if match:
        return int(match.group(1)), "file name"
    return None, "unknown"


def seed_in_file_name(name: str) -> int | None:
    match = _SEED_IN_NAME.search(PurePosixPath(name).name)
    return int(match.group(1)) if match else None


def preferred_metric(run: RunLog, claims: Claims | None) -> Metric | None:
    """The run's score: the JSON-named method when the log has it, else the last final metric."""
    if claims is not None and claims.method is not None and isinstance(claims.method.value, str):
        wanted = claims.method.value.replace("_exact", "")
        named = [m for m in run.final_metrics if wanted.startswith(m.method)]
        if named:
            return max(named, key=lambda m: len(m.method))
    return run.scored


def seed_runs(folder: RecordFolder) -> list[SeedRun]:
    """One run per seed, choosing among reruns the one whose score the JSON claims for that seed.

    Runs that repeat the same seed and score (`train.log` next to `train_seed1337.log`) count once; runs of
    one logged seed with different scores count once per seed, the claimed one preferred.
    """
    claims = folder.claims
    candidates: list[SeedRun] = []
    seen: set[tuple[int | None, str, str]] = set()
    for run in folder.submitted_runs():
        metric = preferred_metric(run, claims)
        if metric is None:
            continue
        seed, source = seed_of_run(run)
        key = (seed, metric.method, metric.bpb_text)
        if key in seen:
            continue
        seen.add(key)
        candidates.append(SeedRun(seed, run, metric, source))
    chosen: dict[int | None, SeedRun] = {}
    unseeded: list[SeedRun] = []
    for candidate in candidates:
        if candidate.seed is None:
            unseeded.append(candidate)
            continue
        current = chosen.get(candidate.seed)
        if current is None or _claimed_rank(candidate, claims) > _claimed_rank(current, claims):
            chosen[candidate.seed] = candidate
    return [*chosen.values(), *unseeded]


def _claimed_rank(candidate: SeedRun, claims: Claims | None) -> int:
    """2: the JSON claims its score for its seed; 1: the JSON claims it for another seed or as the
    single top-level score; 0: neither."""
    if claims is None:
        return 0
    per_seed = claims.per_seed.get(candidate.seed) if candidate.seed is not None else None
    if per_seed and per_seed.val_bpb and metric_matches(per_seed.val_bpb, candidate.metric):
        return 2
    if any(sc.val_bpb and metric_matches(sc.val_bpb, candidate.metric) for sc in claims.per_seed.values()):
        return 1
    if claims.val_bpb is not None and metric_matches(claims.val_bpb, candidate.metric):
        return 1
    return 0


def metric_matches(claim: Claim, metric: Metric) -> bool:
    value = claim.value
    if not isinstance(value, int | float):
        return False
    return within_precision(float(value), claim_decimals(claim), metric.val_bpb, metric.bpb_decimals)


def loss_matches(claim: Claim, metric: Metric) -> bool:
    value = claim.value
    if not isinstance(value, int | float) or metric.val_loss is None:
        return False
    return within_precision(float(value), claim_decimals(claim), metric.val_loss, metric.loss_decimals)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def runs_with_seed(folder: RecordFolder, seed: int) -> list[RunLog]:
    return [run for run in folder.submitted_runs() if seed_of_run(run)[0] == seed]

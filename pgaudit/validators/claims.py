"""PG507 claims-mismatch (R10): what submission.json claims against what the logs show.

Checked within the printed precision (one unit in the last printed place): the top-level val_bpb and
val_loss (a single run's score or a mean over the seed runs), per-seed scores, the seeds themselves, the
artifact and code sizes, and whether the seed runs share one configuration.

Severity: warnings. Accepted records round, relabel and reuse fields loosely (a bpb under "val_loss", a
rounded "bytes_total", a single shipped log that does not match the claimed 3-seed mean of the 2026-03-19
MLP3x record), so an inconsistency is evidence for a reviewer, not a rule violation by itself. A val_bpb
better than every logged result is reported with high confidence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pgaudit.evidence import (
    SeedRun,
    claim_decimals,
    mean,
    metric_matches,
    seed_in_file_name,
    seed_of_run,
    seed_runs,
    within_precision,
)
from pgaudit.findings import Confidence, Finding, Location, Severity
from pgaudit.logs import Metric, RunLog
from pgaudit.submission import Claim, Claims, RecordFolder
from pgaudit.validators.common import Context, claim_location, finding, fmt_bytes, unique_runs

CODE, NAME = "PG507", "claims-mismatch"
FIX = "Make submission.json report exactly what the logs of the submitted runs show."
# Configuration keys that legitimately differ between the seed runs of one submission.
RUN_SPECIFIC = ("seed", "run_id", "logfile", "rank", "local_rank", "is_main_process", "log_file", "out_dir")
RUN_SPECIFIC_PARTS = ("path", "dir", "file", "log")


@dataclass(frozen=True)
class Candidate:
    label: str
    value: float
    decimals: int
    evidence: tuple[str, ...]


def check(ctx: Context) -> list[Finding]:
    folder = ctx.folder
    claims = folder.claims
    if claims is None or claims.error or not folder.logs:
        return []
    runs = seed_runs(folder)
    findings: list[Finding] = []
    findings.extend(_check_score(folder, claims, runs))
    findings.extend(_check_loss(folder, claims, runs))
    findings.extend(_check_per_seed(folder, claims))
    findings.extend(_check_seeds(folder, claims))
    findings.extend(_check_sizes(folder, claims))
    found = _check_configurations(runs)
    if found:
        findings.append(found)
    return findings


# --- scores ------------------------------------------------------------------------------------------


def score_candidates(folder: RecordFolder, runs: list[SeedRun], attribute: str = "val_bpb") -> list[Candidate]:
    """Logged values a score claim may legitimately repeat: single results, and means over seed runs."""
    out: list[Candidate] = []
    for run in unique_runs(folder):
        for metric in run.final_metrics:
            value = getattr(metric, attribute)
            if value is not None:
                out.append(_single(run, metric, value, attribute))
    chosen = [(r.metric, getattr(r.metric, attribute)) for r in runs]
    chosen = [(m, v) for m, v in chosen if v is not None]
    if len(chosen) >= 2:
        out.append(_mean_candidate(f"mean over {len(chosen)} seed runs", chosen, attribute))
    by_method: dict[str, list[tuple[Metric, float]]] = defaultdict(list)
    for run in unique_runs(folder):
        for metric in run.final_metrics:
            value = getattr(metric, attribute)
            if value is not None:
                by_method[metric.method].append((metric, value))
    for method, items in by_method.items():
        if len(items) >= 2:
            out.append(_mean_candidate(f"mean of {method} over {len(items)} runs", items, attribute))
    return out


def _single(run: RunLog, metric: Metric, value: float, attribute: str) -> Candidate:
    text = metric.bpb_text if attribute == "val_bpb" else metric.loss_text
    places = metric.bpb_decimals if attribute == "val_bpb" else metric.loss_decimals
    return Candidate(f"{metric.method} in {run.name}:{metric.line} = {text}", value, places,
                     (metric.evidence[-1].quote(run.name),))


def _mean_candidate(label: str, items: list[tuple[Metric, float]], attribute: str) -> Candidate:
    places = min(m.bpb_decimals if attribute == "val_bpb" else m.loss_decimals for m, _ in items)
    value = mean([v for _, v in items])
    return Candidate(f"{label} = {value:.{max(places, 4)}f}", value, places, ())


def _matches(claim: Claim, candidates: list[Candidate]) -> Candidate | None:
    value = float(claim.value)
    places = claim_decimals(claim)
    return next((c for c in candidates if within_precision(value, places, c.value, c.decimals)), None)


def _check_score(folder: RecordFolder, claims: Claims, runs: list[SeedRun]) -> list[Finding]:
    claim = claims.val_bpb
    if claim is None:
        return []
    candidates = score_candidates(folder, runs)
    if not candidates or _matches(claim, candidates):
        return []
    quote = claim.quote(claims.path)
    weaker = _weaker_matches(folder, claim)
    if weaker is not None:
        message = (f"{claims.path} claims {claim.key} = {claim.value}, which matches only {weaker.label}, "
                   "not a final (post-quantization) score of the run.")
        return [finding(CODE, NAME, Severity.WARNING, Confidence.MEDIUM, message,
                        claim_location(claims.path, claim), ("R10",), FIX, [quote, *weaker.evidence])]
    best = min(candidates, key=lambda c: c.value)
    closest = min(candidates, key=lambda c: abs(c.value - float(claim.value)))
    overclaim = float(claim.value) < best.value - 10.0 ** (-claim_decimals(claim))
    message = (f"{claims.path} claims {claim.key} = {claim.value}, but no log line or mean over the seed runs "
               f"matches it within the printed precision (closest: {closest.label}; best logged: {best.label}).")
    if overclaim:
        message += " The claim is better than every logged result."
    return [finding(CODE, NAME, Severity.WARNING, Confidence.HIGH if overclaim else Confidence.MEDIUM, message,
                    claim_location(claims.path, claim), ("R10",), FIX,
                    [quote, *closest.evidence, *best.evidence])]


def _weaker_matches(folder: RecordFolder, claim: Claim) -> Candidate | None:
    """A diagnostic (pre-quantization) or training-time value the claim repeats."""
    pool: list[Candidate] = []
    for run in unique_runs(folder):
        extra = [m for m in run.metrics if m.diagnostic or m.alias_of]
        if run.last_step_eval is not None:
            extra.append(run.last_step_eval)
        pool.extend(_single(run, m, m.val_bpb, "val_bpb") for m in extra)
    return _matches(claim, pool)


def _check_loss(folder: RecordFolder, claims: Claims, runs: list[SeedRun]) -> list[Finding]:
    claim = claims.val_loss
    if claim is None:
        return []
    candidates = score_candidates(folder, runs, "val_loss")
    if not candidates or _matches(claim, candidates):
        return []
    bpb_like = _matches(claim, score_candidates(folder, runs))
    closest = min(candidates, key=lambda c: abs(c.value - float(claim.value)))
    message = (f"{claims.path} claims {claim.key} = {claim.value} (nats), but no logged val_loss or mean matches "
               f"it (closest: {closest.label}).")
    if bpb_like is not None:
        message += f" The value matches a val_bpb instead ({bpb_like.label}): a bpb written under val_loss."
    return [finding(CODE, NAME, Severity.WARNING, Confidence.MEDIUM, message, claim_location(claims.path, claim),
                    ("R10",), FIX, [claim.quote(claims.path), *closest.evidence])]


def _check_per_seed(folder: RecordFolder, claims: Claims) -> list[Finding]:
    findings = []
    runs = unique_runs(folder)
    for seed, seed_claim in claims.per_seed.items():
        claim = seed_claim.val_bpb
        if claim is None:
            continue
        same_seed = [r for r in runs if seed_of_run(r)[0] == seed]
        if any(metric_matches(claim, m) for r in same_seed for m in r.final_metrics):
            continue
        elsewhere = [(r, m) for r in runs for m in r.final_metrics if metric_matches(claim, m)]
        if elsewhere:
            run, metric = elsewhere[0]
            logged_seed = seed_of_run(run)[0]
            message = (f"{claims.path} claims {claim.key} = {claim.value} for seed {seed}, but that score is logged "
                       f"by {run.name} under seed {logged_seed}.")
            evidence = [claim.quote(claims.path), metric.evidence[-1].quote(run.name)]
            seed_ev = run.evidence_at(run.hyperparameter_lines.get("seed"))
            if seed_ev is not None:
                evidence.append(seed_ev.quote(run.name))
        elif same_seed:
            shown = ", ".join(f"{m.method} {m.bpb_text}" for r in same_seed for m in r.final_metrics) or "no final metric"
            message = (f"{claims.path} claims {claim.key} = {claim.value} for seed {seed}, but the seed-{seed} "
                       f"log shows {shown}.")
            evidence = [claim.quote(claims.path)]
        else:
            continue  # reported once by the seed check
        findings.append(finding(CODE, NAME, Severity.WARNING, Confidence.MEDIUM, message,
                                claim_location(claims.path, claim), ("R10",), FIX, evidence))
    return findings


def _check_seeds(folder: RecordFolder, claims: Claims) -> list[Finding]:
    if not claims.seeds:
        return []
    logged: dict[int, list[str]] = defaultdict(list)
    for run in folder.runs():
        seed, _ = seed_of_run(run)
        if seed is not None:
            logged[seed].append(run.name)
    missing = [s for s in claims.seeds if s not in logged]
    if not missing:
        return []
    named = sorted({(log.name, s) for log in folder.logs if (s := seed_in_file_name(log.name)) is not None
                    and log.seed is not None and log.seed != s})
    message = (f"{claims.path} lists seed(s) {', '.join(map(str, missing))} with no log of that seed "
               f"(logged seeds: {', '.join(map(str, sorted(logged))) or 'none'}).")
    if named:
        message += " " + "; ".join(f"{name} is named for seed {s} but logs another seed" for name, s in named) + "."
    evidence = [claims.seeds_claim.quote(claims.path)] if claims.seeds_claim else []
    for name, _ in named:
        run = next(log for log in folder.logs if log.name == name)
        seed_ev = run.evidence_at(run.hyperparameter_lines.get("seed"))
        if seed_ev is not None:
            evidence.append(seed_ev.quote(name))
    return [finding(CODE, NAME, Severity.WARNING, Confidence.HIGH, message,
                    claim_location(claims.path, claims.seeds_claim), ("R10",),
                    "Ship one log per claimed seed, or list the seeds that were actually run.", evidence)]


# --- sizes -------------------------------------------------------------------------------------------


def _check_sizes(folder: RecordFolder, claims: Claims) -> list[Finding]:
    runs = unique_runs(folder)
    totals = [(r, r.total_bytes) for r in runs if r.total_bytes is not None]
    findings = []
    claim = claims.total_bytes
    if claim is not None and totals and isinstance(claim.value, int | float):
        values = [t.bytes for _, t in totals]
        allowed = {*values, max(values), min(values), round(mean(values))}
        if int(claim.value) not in allowed:
            understated = claim.value < max(values)
            message = (f"{claims.path} claims {claim.key} = {fmt_bytes(claim.value)}, but the logs print artifact "
                       f"totals {', '.join(fmt_bytes(v) for v in sorted(set(values)))}"
                       + (" (the claim understates the largest)." if understated else "."))
            run, total = max(totals, key=lambda rt: rt[1].bytes)
            findings.append(finding(CODE, NAME, Severity.WARNING, Confidence.HIGH if understated else Confidence.MEDIUM,
                                    message, claim_location(claims.path, claim), ("R10", "R1"), FIX,
                                    [claim.quote(claims.path), total.evidence.quote(run.name)]))
    for seed, seed_claim in claims.per_seed.items():
        size = seed_claim.total_bytes
        if size is None:
            continue
        seeded = [t for r, t in totals if seed_of_run(r)[0] == seed]
        if seeded and int(size.value) not in {t.bytes for t in seeded}:
            message = (f"{claims.path} claims {size.key} = {fmt_bytes(size.value)} for seed {seed}, but the seed-{seed} "
                       f"log prints {', '.join(fmt_bytes(t.bytes) for t in seeded)}.")
            findings.append(finding(CODE, NAME, Severity.WARNING, Confidence.HIGH, message,
                                    claim_location(claims.path, size), ("R10",), FIX, [size.quote(claims.path)]))
    code = claims.code_bytes
    logged_code = {s.bytes for r in runs for s in r.sizes if s.kind.startswith("code")}
    if code is not None and logged_code and isinstance(code.value, int | float) and int(code.value) not in logged_code:
        message = (f"{claims.path} claims {code.key} = {fmt_bytes(code.value)}, but the logs count code of "
                   f"{', '.join(fmt_bytes(v) for v in sorted(logged_code))} bytes.")
        findings.append(finding(CODE, NAME, Severity.WARNING, Confidence.MEDIUM, message,
                                claim_location(claims.path, code), ("R10",), FIX, [code.quote(claims.path)]))
    return findings


# --- configurations ----------------------------------------------------------------------------------


def config_differences(runs: list[RunLog]) -> dict[str, dict[str, str]]:
    """Keys whose printed values differ between runs (run-specific keys ignored): key -> run name -> value."""
    keys = set().union(*(r.hyperparameters for r in runs)) if runs else set()
    out: dict[str, dict[str, str]] = {}
    for key in sorted(keys):
        lowered = key.lower()
        if lowered in RUN_SPECIFIC or any(part in lowered for part in RUN_SPECIFIC_PARTS):
            continue
        values = {r.name: r.hyperparameters.get(key, "(absent)") for r in runs}
        if all(r.seed is not None and values[r.name] == str(r.seed) for r in runs):
            continue  # the seed under another name (`s:42` in the Ternary header)
        if len(set(values.values())) > 1 and all(key in r.hyperparameters for r in runs):
            out[key] = values
    return out


def _check_configurations(runs: list[SeedRun]) -> Finding | None:
    logs = [r.run for r in runs]
    if len(logs) < 2:
        return None
    differing = config_differences(logs)
    if not differing:
        return None
    shown = list(differing.items())[:8]
    detail = "; ".join(f"{key}: " + ", ".join(f"{name}={value}" for name, value in values.items())
                       for key, values in shown)
    more = f" (+{len(differing) - len(shown)} more keys)" if len(differing) > len(shown) else ""
    first = logs[0]
    key = shown[0][0]
    evidence = []
    for run in logs:
        ev = run.evidence_at(run.hyperparameter_lines.get(key))
        if ev is not None:
            evidence.append(ev.quote(run.name))
    message = f"The seed runs differ in configuration: {detail}{more}."
    return finding(CODE, NAME, Severity.WARNING, Confidence.MEDIUM, message,
                   Location(first.name, first.hyperparameter_lines.get(key)),
                   ("R10", "R8"), "Run every seed with the same submitted configuration.", evidence)

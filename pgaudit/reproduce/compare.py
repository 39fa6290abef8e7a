"""Re-run against claim: PG601 not-reproduced, PG602 run-failed, PG603 artifact-mismatch.

The score tolerance comes from the claim itself: seeds of one configuration already differ by their
standard deviation, and a re-run on other hardware differs at least that much, so a difference counts only
beyond k standard deviations of the claimed seeds, and never below a floor.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from pgaudit.codes import describe
from pgaudit.findings import Confidence, Finding, Location, Severity
from pgaudit.submission import RecordFolder
from pgaudit.validators.common import rulings

CAP_BYTES = 16_000_000


@dataclass
class Claimed:
    """What the folder claims, per seed and overall, and where each value comes from."""

    per_seed_bpb: dict[int, float] = field(default_factory=dict)
    per_seed_loss: dict[int, float] = field(default_factory=dict)
    per_seed_bytes: dict[int, int] = field(default_factory=dict)
    per_seed_train_ms: dict[int, float] = field(default_factory=dict)
    mean_bpb: float | None = None
    total_bytes: int | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"per_seed_val_bpb": self.per_seed_bpb, "per_seed_val_loss": self.per_seed_loss,
                "per_seed_bytes": self.per_seed_bytes, "per_seed_train_time_ms": self.per_seed_train_ms,
                "mean_val_bpb": self.mean_bpb, "total_bytes": self.total_bytes, "sources": self.sources}  # fmt: skip


def claimed(folder: RecordFolder) -> Claimed:
    """submission.json per-seed values first, the submitted logs for seeds the JSON does not detail."""
    out = Claimed()
    for run in folder.runs():
        if run.seed is None or run.scored is None:
            continue
        out.per_seed_bpb[run.seed] = run.scored.val_bpb
        if run.scored.val_loss is not None:
            out.per_seed_loss[run.seed] = run.scored.val_loss
        if run.total_bytes:
            out.per_seed_bytes[run.seed] = run.total_bytes.bytes
        if run.train_time_ms is not None:
            out.per_seed_train_ms[run.seed] = run.train_time_ms
        out.sources[f"seed {run.seed}"] = run.name
    claims = folder.claims
    if claims is not None:
        for seed, sc in claims.per_seed.items():
            if sc.val_bpb is not None and isinstance(sc.val_bpb.value, int | float):
                out.per_seed_bpb[seed] = float(sc.val_bpb.value)
                out.sources[f"seed {seed}"] = claims.path
            if sc.val_loss is not None and isinstance(sc.val_loss.value, int | float):
                out.per_seed_loss[seed] = float(sc.val_loss.value)
            if sc.total_bytes is not None and isinstance(sc.total_bytes.value, int | float):
                out.per_seed_bytes[seed] = int(sc.total_bytes.value)
        if claims.val_bpb is not None and isinstance(claims.val_bpb.value, int | float):
            out.mean_bpb = float(claims.val_bpb.value)
            out.sources["mean"] = claims.path
        if claims.total_bytes is not None and isinstance(claims.total_bytes.value, int | float):
            out.total_bytes = int(claims.total_bytes.value)
    if out.mean_bpb is None and out.per_seed_bpb:
        out.mean_bpb = statistics.fmean(out.per_seed_bpb.values())
        out.sources["mean"] = "mean of the submitted logs"
    return out


def tolerance(claim: Claimed, floor: float, k: float) -> tuple[float, float | None]:
    """(tolerance in bpb, the claimed seeds' standard deviation or None with fewer than two seeds)."""
    values = list(claim.per_seed_bpb.values())
    sd = statistics.stdev(values) if len(values) >= 2 else None
    return max(floor, k * sd) if sd is not None else floor, sd


def _finding(code: str, message: str, path: str, evidence: list[str], fix: str, line: int | None = None) -> Finding:
    info = describe(code)
    assert info is not None, code
    return Finding(code=code, name=info.name, severity=info.severity, confidence=Confidence.HIGH, message=message,
                   location=Location(path, line), catalogue_ids=info.catalogue_ids,
                   ruling_urls=rulings(*info.catalogue_ids), fix=fix, evidence=tuple(evidence))  # fmt: skip


def judge(
    results: list[dict[str, Any]], claim: Claimed, tol: float, bytes_rel_tol: float
) -> list[Finding]:
    findings: list[Finding] = []
    done: list[dict[str, Any]] = []
    for res in results:
        seed, log = res["seed"], res["log"]
        if res["status"] == "interrupted":  # stopped by the maintainer: not evidence against the submission
            continue
        if res["status"] != "finished" or res["metric"] is None:
            why = {"killed": "was killed at the time limit", "interrupted": "was interrupted",
                   "failed": f"exited with status {res['returncode']}"}.get(res["status"], "ended")  # fmt: skip
            if res["status"] == "finished":
                why = "finished without printing a final val_bpb"
            findings.append(_finding("PG602", f"seed {seed} {why}; the last lines of its log are the evidence",
                                     res["console_log"], res.get("error_lines") or res["log_tail"][-12:],
                                     "Run the script by hand with the same SEED and fix the crash, or raise "
                                     "--time-limit if the hardware is slower than 8xH100 SXM."))  # fmt: skip
            continue
        done.append(res)
        got = res["metric"]["val_bpb"]
        want = claim.per_seed_bpb.get(seed)
        if want is not None and abs(got - want) > tol:
            findings.append(_finding(
                "PG601", f"seed {seed}: re-run val_bpb {got:.8f} vs claimed {want:.8f} "
                f"(difference {got - want:+.5f}, tolerance {tol:.5f})", log, [f"claimed by {claim.sources.get(f'seed {seed}', '?')}"],
                "Check the submitted configuration (env defaults, data, tokenizer) against the one that ran.",
                res["metric"]["line"]))  # fmt: skip
        findings += _bytes_findings(res, claim, bytes_rel_tol)
    if done and claim.mean_bpb is not None:
        # The headline claim when every seed it covers was re-run; else the per-seed claims of the re-run seeds.
        ran = {r["seed"] for r in done}
        same = [r for r in done if r["seed"] in claim.per_seed_bpb]
        if set(claim.per_seed_bpb) <= ran or not same:
            base = claim.mean_bpb
        else:
            base = statistics.fmean(claim.per_seed_bpb[r["seed"]] for r in same)
        mean = statistics.fmean(r["metric"]["val_bpb"] for r in done)
        if abs(mean - base) > tol:
            findings.append(_finding(
                "PG601", f"mean re-run val_bpb {mean:.8f} over {len(done)} seed(s) vs claimed {base:.8f} "
                f"(difference {mean - base:+.5f}, tolerance {tol:.5f})", claim.sources.get("mean", "submission.json"),
                [], "The claimed score is not what this configuration produces; see the per-seed table."))  # fmt: skip
    return findings


def _bytes_findings(res: dict[str, Any], claim: Claimed, rel_tol: float) -> list[Finding]:
    art, seed = res["artifact"], res["seed"]
    measured = art["total_measured"]
    if measured is None:
        return [_finding("PG603", f"seed {seed} wrote no final_model* artifact; its size cannot be measured",
                         res["log"], [], "Write the compressed model to final_model*.ptz as the baseline does.")]
    out: list[Finding] = []
    logged = art["total_logged"]
    if logged is not None and measured > logged:
        out.append(_finding("PG603", f"seed {seed}: measured artifact {measured:,} bytes (model file "
                            f"{art['model_bytes']:,} + code) but the log printed {logged:,}", res["log"], [],
                            "Count the file as written plus the code bytes, as the baseline does."))  # fmt: skip
    want = claim.per_seed_bytes.get(seed, claim.total_bytes)
    if measured > CAP_BYTES and (want is None or want <= CAP_BYTES):
        out.append(_finding("PG603", f"seed {seed}: measured artifact {measured:,} bytes is over the "
                            f"16,000,000-byte cap", res["log"], [], "Shrink the model or its code."))  # fmt: skip
    elif want is not None and abs(measured - want) > rel_tol * want:
        out.append(_finding("PG603", f"seed {seed}: measured artifact {measured:,} bytes vs claimed {want:,} "
                            f"({(measured - want) / want:+.2%}, tolerance {rel_tol:.2%})", res["log"], [],
                            "Report the bytes the submitted configuration actually writes."))  # fmt: skip
    return out


def severity_worst(findings: list[Finding]) -> Severity | None:
    return max((f.severity for f in findings), default=None)

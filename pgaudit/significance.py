"""Per-seed samples of a record and the two significance policies (catalogue R8, R9).

A `Sample` is a record's per-seed scores (bpb, and val_loss in nats when logged) with the tokenizer they were
measured with. `compare` runs the README policy (one-sample test of the mean improvement against
SOTA - 0.005 nats at p < 0.01) and the late maintainers' policy (one-sided Welch p < 0.25 against the
previous frontier record's seeds) and says which passes.

Units: the README margin is in nats. Nats are compared only between runs of the same tokenizer; across
tokenizers (or when val_loss is unknown) the comparison is in bpb, with the margin converted by the run's
own tokens-per-byte ratio (0.005 nats is ~0.0030 bpb for SP1024, ~0.0019 bpb for SP8192).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pgaudit.errors import UsageError
from pgaudit.evidence import seed_runs
from pgaudit.policy import Policy
from pgaudit.stats import OneSample, Welch, one_sample_improvement, tokens_per_byte, welch_improvement
from pgaudit.submission import RecordFolder


@dataclass(frozen=True)
class Sample:
    label: str
    bpb: tuple[float, ...] = ()
    loss: tuple[float, ...] = ()  # empty unless every run logged val_loss
    seeds: tuple[int | None, ...] = ()
    tokenizer: str | None = None
    sources: tuple[str, ...] = ()  # `log:line` of each value

    @property
    def n(self) -> int:
        return max(len(self.bpb), len(self.loss))

    @property
    def tokens_per_byte(self) -> float | None:
        if not self.bpb or len(self.loss) != len(self.bpb):
            return None
        ratios = [tokens_per_byte(loss, bpb) for loss, bpb in zip(self.loss, self.bpb, strict=True) if loss > 0]
        return sum(ratios) / len(ratios) if ratios else None


@dataclass(frozen=True)
class Comparison:
    candidate: Sample
    baseline: Sample
    readme_unit: str | None  # "nats" or "bpb"; None when the README test could not run
    margin: float | None  # the README margin in readme_unit
    readme: OneSample | None
    welch_unit: str | None
    welch: Welch | None
    delta_bpb: float | None  # mean(candidate) - mean(baseline), negative = better
    delta_nats: float | None
    notes: tuple[str, ...] = field(default=())
    readme_p: float = 0.01
    progression_p: float = 0.25

    @property
    def readme_passes(self) -> bool | None:
        if self.readme is None:
            return None
        return self.readme.p < self.readme_p and self.readme.improvement >= self.readme.margin

    @property
    def progression_passes(self) -> bool | None:
        if self.welch is None:
            return None
        return self.welch.p < self.progression_p and self.welch.delta < 0


def tokenizer_of(path: str | None) -> str | None:
    return PurePosixPath(path).name if path else None


def sample_from_folder(folder: RecordFolder, label: str | None = None) -> Sample:
    """The folder's per-seed scores, one run per seed (see `evidence.seed_runs`)."""
    runs = seed_runs(folder)
    bpb = tuple(r.metric.val_bpb for r in runs)
    losses = [r.metric.val_loss for r in runs]
    loss = tuple(x for x in losses if x is not None) if all(x is not None for x in losses) else ()
    tokenizers = {tokenizer_of(r.run.tokenizer_path) for r in runs} - {None}
    return Sample(
        label=label or folder.display,
        bpb=bpb,
        loss=loss,
        seeds=tuple(r.seed for r in runs),
        tokenizer=tokenizers.pop() if len(tokenizers) == 1 else None,
        sources=tuple(f"{r.run.name}:{r.metric.line}" for r in runs),
    )


def sample_from_values(values: list[float], unit: str = "bpb", label: str = "--against-values",
                       tokenizer: str | None = None) -> Sample:
    if unit not in ("bpb", "nats"):
        raise UsageError(f"unknown unit {unit!r} (expected bpb or nats)")
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise UsageError("--against-values needs positive finite numbers, e.g. 1.0810,1.0812,1.0806")
    vals = tuple(values)
    return Sample(label, bpb=vals if unit == "bpb" else (), loss=vals if unit == "nats" else (),
                  seeds=(None,) * len(vals), tokenizer=tokenizer)


def compare(candidate: Sample, baseline: Sample, policy: Policy, unit: str | None = None,
            margin_in_bpb: bool = False) -> Comparison:
    """Both policies, in the fairest unit available (or the requested one).

    `margin_in_bpb` applies the 0.005 margin directly to bpb, as the early records did (2026-03-18
    LongContextSeq2048: t=31.42 against 1.2243657 - 0.005); it is not the README's nats margin.
    """
    if margin_in_bpb and unit == "nats":
        raise UsageError("a margin in bpb needs --unit bpb")
    if margin_in_bpb:
        unit = "bpb"
    notes: list[str] = []
    requested = unit
    same_tokenizer = (candidate.tokenizer is not None and candidate.tokenizer == baseline.tokenizer)
    nats_ok = bool(candidate.loss) and bool(baseline.loss)
    if unit == "nats" and not nats_ok:
        raise UsageError("cannot compare in nats: val_loss is not known for every run on both sides")
    if unit == "nats" and candidate.tokenizer and baseline.tokenizer and not same_tokenizer:
        raise UsageError(f"refusing to compare nats across tokenizers ({candidate.tokenizer} vs {baseline.tokenizer});"
                         " per-token losses are not comparable, use bpb")
    if unit is None:
        unit = "nats" if nats_ok and same_tokenizer else "bpb"
        if nats_ok and not same_tokenizer:
            notes.append("tokenizers differ or are unknown: compared in bpb, the margin converted from nats")
    forced_nats = unit == "nats" and requested == "nats"
    readme_unit, margin, readme = _readme_test(candidate, baseline, policy, unit, notes, margin_in_bpb)
    welch_unit, welch = _welch_test(candidate, baseline, "nats-forced" if forced_nats else unit, notes)
    delta_bpb = _delta(candidate.bpb, baseline.bpb)
    delta_nats = _delta(candidate.loss, baseline.loss) if (same_tokenizer or unit == "nats") else None
    return Comparison(candidate, baseline, readme_unit, margin, readme, welch_unit, welch, delta_bpb, delta_nats,
                      tuple(notes), policy.readme_p_threshold, policy.progression_p_threshold)


def _readme_test(candidate: Sample, baseline: Sample, policy: Policy, unit: str, notes: list[str],
                 margin_in_bpb: bool = False) -> tuple[str | None, float | None, OneSample | None]:
    values = candidate.loss if unit == "nats" else candidate.bpb
    reference_values = baseline.loss if unit == "nats" else baseline.bpb
    if len(values) < 2:
        notes.append(f"README test needs at least 2 candidate runs in {unit} (have {len(values)})")
        return None, None, None
    if not reference_values:
        notes.append(f"README test: the baseline has no {unit} values")
        return None, None, None
    if unit == "nats":
        margin = policy.margin_nats
    elif margin_in_bpb:
        margin = policy.margin_nats
        notes.append(f"margin {margin:g} applied in bpb as the early records did, not the README's nats")
    else:
        ratio = candidate.tokens_per_byte or baseline.tokens_per_byte
        if ratio is None:
            notes.append("README test skipped: no val_loss to convert the 0.005-nat margin into bpb")
            return None, None, None
        margin = policy.margin_nats / math.log(2.0) * ratio
    reference = sum(reference_values) / len(reference_values)
    return unit, margin, one_sample_improvement(values, reference, margin)


def _welch_test(candidate: Sample, baseline: Sample, unit: str, notes: list[str]) -> tuple[str | None, Welch | None]:
    """In bpb, the leaderboard unit, unless nats were asked for explicitly."""
    for use in (("nats", "bpb") if unit == "nats-forced" else ("bpb", "nats")):
        new = candidate.bpb if use == "bpb" else candidate.loss
        old = baseline.bpb if use == "bpb" else baseline.loss
        if len(new) >= 2 and len(old) >= 2:
            return use, welch_improvement(new, old)
    notes.append("Welch test needs at least 2 runs on each side")
    return None, None


def _delta(new: tuple[float, ...], old: tuple[float, ...]) -> float | None:
    if not new or not old:
        return None
    return sum(new) / len(new) - sum(old) / len(old)


def parse_values(text: str) -> list[float]:
    """`1.0810, 1.0812,1.0806` -> floats; UsageError on anything else."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--against-values: expected comma-separated numbers, got {text!r}") from None

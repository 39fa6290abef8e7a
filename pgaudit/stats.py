"""Significance math for record claims (catalogue R8, R9). Pure functions over per-seed scores.

Lower scores are better. Two one-sided tests are implemented:

- README policy (R8): one-sample t-test that the mean score is below `reference - margin`, passing at
  p < 0.01 (`t = (reference - margin - mean) / (sd / sqrt(n))`, df = n - 1).
- Late maintainers' policy (R9, PR #1902): one-sided Welch test of the new seeds against the previous
  frontier record's seeds, passing at p < 0.25 (`t = (mean_new - mean_old) / se`, negative = better).

Units: "nats" is val_loss (mean token cross-entropy); val_bpb = val_loss / ln 2 * tokens / bytes, so a margin
in nats converts to bpb with the run's own tokens-per-byte ratio, never with 1/ln 2 alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LN2 = math.log(2.0)


@dataclass(frozen=True)
class OneSample:
    n: int
    mean: float
    sd: float
    reference: float  # the score to beat (SOTA)
    margin: float  # required improvement, same unit as the scores
    t: float
    df: int
    p: float  # one-sided: P(mean >= reference - margin) under H0

    @property
    def threshold(self) -> float:
        return self.reference - self.margin

    @property
    def improvement(self) -> float:
        """reference - mean (positive = better than the reference)."""
        return self.reference - self.mean


@dataclass(frozen=True)
class Welch:
    n_new: int
    n_old: int
    mean_new: float
    mean_old: float
    sd_new: float
    sd_old: float
    t: float  # (mean_new - mean_old) / se: negative when the new scores are lower (better)
    df: float  # Welch-Satterthwaite
    p: float  # one-sided: P(T <= t)

    @property
    def delta(self) -> float:
        """mean_new - mean_old (negative = improvement)."""
        return self.mean_new - self.mean_old


def sample_sd(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return float("nan")
    m = sum(values) / n
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


def one_sample_improvement(values: Sequence[float], reference: float, margin: float) -> OneSample:
    """One-sided one-sample t-test of H1: mean(values) < reference - margin."""
    if len(values) < 2:
        raise ValueError("a one-sample t-test needs at least 2 values")
    return one_sample_from_summary(sum(values) / len(values), sample_sd(values), len(values), reference, margin)


def one_sample_from_summary(mean: float, sd: float, n: int, reference: float, margin: float) -> OneSample:
    """The same test from a mean, a sample standard deviation and a count (as READMEs print them)."""
    if n < 2:
        raise ValueError("a one-sample t-test needs at least 2 values")
    threshold = reference - margin
    if sd == 0.0:
        t = math.inf if mean < threshold else -math.inf if mean > threshold else 0.0
    else:
        t = (threshold - mean) / (sd / math.sqrt(n))
    p = float(_t_distribution().sf(t, n - 1))
    return OneSample(n, mean, sd, reference, margin, t, n - 1, p)


def welch_improvement(new: Sequence[float], old: Sequence[float]) -> Welch:
    """One-sided Welch t-test of H1: mean(new) < mean(old)."""
    if len(new) < 2 or len(old) < 2:
        raise ValueError("a Welch test needs at least 2 values on each side")
    return welch_from_summary(
        sum(new) / len(new), sample_sd(new), len(new), sum(old) / len(old), sample_sd(old), len(old)
    )


def welch_from_summary(mean_new: float, sd_new: float, n_new: int, mean_old: float, sd_old: float, n_old: int) -> Welch:
    if n_new < 2 or n_old < 2:
        raise ValueError("a Welch test needs at least 2 values on each side")
    v1, v2 = sd_new * sd_new / n_new, sd_old * sd_old / n_old
    se = math.sqrt(v1 + v2)
    if se == 0.0:
        t = -math.inf if mean_new < mean_old else math.inf if mean_new > mean_old else 0.0
        df = float(n_new + n_old - 2)
    else:
        t = (mean_new - mean_old) / se
        df = (v1 + v2) ** 2 / (v1 * v1 / (n_new - 1) + v2 * v2 / (n_old - 1))
    p = float(_t_distribution().cdf(t, df))
    return Welch(n_new, n_old, mean_new, mean_old, sd_new, sd_old, t, df, p)


def _t_distribution():  # type: ignore[no-untyped-def]
    """scipy's Student t, imported only when a p-value is computed (scipy.stats costs ~0.9 s to import, and
    most folder checks compute no significance)."""
    from scipy import stats

    return stats.t


def tokens_per_byte(val_loss: float, val_bpb: float) -> float:
    """tokens/bytes of the scored text, recovered from one run's (val_loss, val_bpb)."""
    return val_bpb * LN2 / val_loss


def nats_to_bpb(nats: float, tokens_per_byte_ratio: float) -> float:
    return nats / LN2 * tokens_per_byte_ratio


def bpb_to_nats(bpb: float, tokens_per_byte_ratio: float) -> float:
    return bpb * LN2 / tokens_per_byte_ratio

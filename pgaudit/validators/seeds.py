"""PG508 too-few-seeds (R8) and PG509 not-significant (R8, R9).

Both apply to the record track only (non-record submissions are not ranked). The README asks for enough
runs to show p < 0.01, "most often ... an average over 3 training runs"; early accepted records shipped a
single run, so too few seeds is a warning. Significance needs a baseline (`--against`): failing both
policies is a warning (the baseline is the caller's choice), passing only the late p < 0.25 policy is
information. The systems-optimization waiver (R11) cannot be detected from files and is mentioned.
"""

from __future__ import annotations

from pgaudit.evidence import seed_runs
from pgaudit.findings import Confidence, Finding, Location, Severity
from pgaudit.significance import Comparison, Sample, compare, sample_from_folder
from pgaudit.validators.common import Context, finding

FEW, FEW_NAME = "PG508", "too-few-seeds"
SIG, SIG_NAME = "PG509", "not-significant"


def check_seed_count(ctx: Context) -> list[Finding]:
    folder = ctx.folder
    if not folder.is_record_track or not folder.logs:
        return []
    runs = seed_runs(folder)
    seeds = {r.seed for r in runs if r.seed is not None}
    count = len(seeds) + len([r for r in runs if r.seed is None])
    if count >= ctx.policy.min_seeds:
        return []
    listed = ", ".join(f"{r.run.name} (seed {r.seed if r.seed is not None else '?'}: {r.metric.method} "
                       f"{r.metric.bpb_text})" for r in runs) or "no run with a final score"
    message = (f"{count} scored run(s) with distinct seeds ({listed}); the README asks for enough runs to show "
               f"p < 0.01, most often {ctx.policy.min_seeds}. Systems-only speedups are exempt (R11).")
    evidence = [f"{r.run.name}:{r.metric.line}: {r.metric.evidence[-1].text.strip()}" for r in runs]
    location = Location(runs[0].run.name, runs[0].metric.line) if runs else Location(".")
    return [finding(FEW, FEW_NAME, Severity.WARNING, Confidence.HIGH, message, location, ("R8",),
                    f"Submit logs of at least {ctx.policy.min_seeds} seeds of the same configuration.", evidence)]


def check_significance(ctx: Context, against: Sample | None) -> list[Finding]:
    folder = ctx.folder
    if against is None or not folder.is_record_track or not folder.logs:
        return []
    candidate = sample_from_folder(folder)
    if candidate.n == 0:
        return []
    result = compare(candidate, against, ctx.policy)
    if result.readme_passes and result.progression_passes:
        return []
    severity = Severity.INFO if (result.readme_passes or result.progression_passes) else Severity.WARNING
    message = describe(result)
    evidence = [*(f"{s}: {v:.8f}" for s, v in zip(candidate.sources, candidate.bpb, strict=False)),
                f"baseline {against.label}: " + ", ".join(f"{v:.8f}" for v in (against.bpb or against.loss))]
    first = candidate.sources[0].rsplit(":", 1) if candidate.sources else [folder.display, ""]
    location = Location(first[0], int(first[1]) if len(first) > 1 and first[1].isdigit() else None)
    return [finding(SIG, SIG_NAME, severity, Confidence.MEDIUM, message, location, ("R8", "R9"),
                    "Add seeds or a larger improvement until the claim is significant against the previous record.",
                    evidence)]


def describe(result: Comparison) -> str:
    """One paragraph: both tests with t, df, p, the mean improvement, and which policy passes."""
    parts = []
    if result.readme is not None:
        r = result.readme
        verdict = "passes" if result.readme_passes else "fails"
        parts.append(
            f"README policy (improvement >= {r.margin:.4f} {result.readme_unit} at p < {result.readme_p:g}, "
            f"one-sample): mean improvement {r.improvement:+.5f} {result.readme_unit}, t={r.t:.2f}, df={r.df}, "
            f"p={r.p:.2g} -> {verdict}"
        )
    else:
        parts.append("README policy: not computed")
    if result.welch is not None:
        w = result.welch
        verdict = "passes" if result.progression_passes else "fails"
        parts.append(
            f"late policy (one-sided Welch vs {result.baseline.label}, p < {result.progression_p:g}): "
            f"delta {w.delta:+.5f} {result.welch_unit}, t={w.t:.2f}, df={w.df:.2f}, p={w.p:.2g} -> {verdict}"
        )
    else:
        parts.append("late policy: not computed")
    text = "; ".join(parts) + "."
    if result.notes:
        text += " Notes: " + "; ".join(result.notes) + "."
    return text

"""Render a significance `Comparison` as a readable text table or as JSON (`pgaudit significance`)."""

from __future__ import annotations

import json
import math
from typing import Any

from pgaudit.significance import Comparison, Sample


def render_text(result: Comparison) -> str:
    lines = [_sample_table(result.candidate, "candidate"), "", _sample_table(result.baseline, "baseline"), ""]
    lines.append(_tests_table(result))
    if result.notes:
        lines.append("")
        lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)


def _sample_table(sample: Sample, role: str) -> str:
    rows = [("seed", "val_bpb", "val_loss (nats)", "source")]
    for i in range(sample.n):
        seed = sample.seeds[i] if i < len(sample.seeds) and sample.seeds[i] is not None else "-"
        bpb = f"{sample.bpb[i]:.8f}" if i < len(sample.bpb) else "-"
        loss = f"{sample.loss[i]:.8f}" if i < len(sample.loss) else "-"
        source = sample.sources[i] if i < len(sample.sources) else ""
        rows.append((str(seed), bpb, loss, source))
    if sample.n:
        rows.append(("mean", _mean(sample.bpb), _mean(sample.loss), ""))
    title = f"{role}: {sample.label}" + (f"  (tokenizer {sample.tokenizer})" if sample.tokenizer else "")
    return title + "\n" + _table(rows)


def _tests_table(result: Comparison) -> str:
    rows = [("policy", "test", "unit", "effect", "t", "df", "p", "threshold", "verdict")]
    if result.readme is not None:
        r = result.readme
        rows.append(("README", "one-sample vs SOTA - margin", result.readme_unit or "",
                     f"improvement {r.improvement:+.5f} (margin {r.margin:.5f})", f"{r.t:.2f}", str(r.df),
                     _p(r.p), f"p < {result.readme_p:g}", _verdict(result.readme_passes)))
    else:
        rows.append(("README", "one-sample", "-", "-", "-", "-", "-", f"p < {result.readme_p:g}", "not computed"))
    if result.welch is not None:
        w = result.welch
        rows.append(("late (PR #1902)", "one-sided Welch", result.welch_unit or "", f"delta {w.delta:+.5f}",
                     f"{w.t:.2f}", f"{w.df:.2f}", _p(w.p), f"p < {result.progression_p:g}",
                     _verdict(result.progression_passes)))
    else:
        rows.append(("late (PR #1902)", "one-sided Welch", "-", "-", "-", "-", "-",
                     f"p < {result.progression_p:g}", "not computed"))
    deltas = []
    if result.delta_bpb is not None:
        deltas.append(f"mean delta {result.delta_bpb:+.5f} bpb")
    if result.delta_nats is not None:
        deltas.append(f"{result.delta_nats:+.5f} nats")
    return _table(rows) + ("\n" + " / ".join(deltas) if deltas else "")


def _verdict(passes: bool | None) -> str:
    return "not computed" if passes is None else "PASS" if passes else "FAIL"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _mean(values: tuple[float, ...]) -> str:
    return f"{sum(values) / len(values):.8f}" if values else "-"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for index, row in enumerate(rows):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def to_dict(result: Comparison) -> dict[str, Any]:
    def sample(s: Sample) -> dict[str, Any]:
        return {"label": s.label, "tokenizer": s.tokenizer, "seeds": list(s.seeds), "val_bpb": list(s.bpb),
                "val_loss": list(s.loss), "sources": list(s.sources)}

    readme = result.readme
    welch = result.welch
    return {
        "candidate": sample(result.candidate),
        "baseline": sample(result.baseline),
        "readme_policy": None if readme is None else {
            "unit": result.readme_unit, "reference": readme.reference, "margin": readme.margin,
            "mean": readme.mean, "improvement": readme.improvement, "t": _num(readme.t), "df": readme.df,
            "p": readme.p, "p_threshold": result.readme_p, "passes": result.readme_passes,
        },
        "late_policy": None if welch is None else {
            "unit": result.welch_unit, "mean_new": welch.mean_new, "mean_old": welch.mean_old,
            "delta": welch.delta, "t": _num(welch.t), "df": welch.df, "p": welch.p,
            "p_threshold": result.progression_p, "passes": result.progression_passes,
        },
        "delta_bpb": result.delta_bpb,
        "delta_nats": result.delta_nats,
        "notes": list(result.notes),
    }


def _num(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def render_json(result: Comparison) -> str:
    return json.dumps(to_dict(result), indent=2)

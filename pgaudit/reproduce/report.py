"""report.json and report.md of a reproduction, both written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pgaudit import __version__
from pgaudit.atomic import write_atomic
from pgaudit.findings import SCHEMA_VERSION
from pgaudit.reproduce.runner import Outcome

REPORT_KIND = "reproduce"


def to_dict(outcome: Outcome, record_dir: Path, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": REPORT_KIND,
        "tool": {"name": "pgaudit", "version": __version__},
        "target": str(record_dir),
        "verdict": outcome.summary["verdict"],
        "settings": settings,
        "seeds": outcome.seeds,
        "skipped_by_resume": outcome.skipped,
        "results": outcome.results,
        "summary": outcome.summary,
        "findings": [f.to_dict() for f in outcome.findings],
    }


def _num(value: float | None, digits: int = 8) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _sig(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def to_markdown(data: dict[str, Any]) -> str:
    s = data["summary"]
    claimed = s["claimed"]["per_seed_val_bpb"]
    tol = s["tolerance"]
    lines = [f"# pgaudit reproduce: {data['verdict']}", "", f"Record folder: `{data['target']}`", "",
             f"Tolerance: {tol['val_bpb']:.5f} bpb (max of the floor {tol['floor']} and {tol['k']} x the claimed "
             f"seeds' standard deviation {_num(tol['claimed_seed_sd'], 5)}); artifact bytes {tol['bytes_relative']:.2%}.",
             "", "| seed | status | re-run val_bpb | claimed | difference | artifact bytes (measured) | "
             "train s (log) | eval s (log) | wallclock s |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in data["results"]:
        got = r["metric"]["val_bpb"] if r["metric"] else None
        want = claimed.get(str(r["seed"]), claimed.get(r["seed"]))
        diff = None if got is None or want is None else got - want
        train = None if r["train_time_ms"] is None else r["train_time_ms"] / 1000
        total = r["artifact"]["total_measured"]
        lines.append(f"| {r['seed']} | {r['status']} | {_num(got)} | {_num(want)} | {_num(diff, 5)} | "
                     f"{'-' if total is None else f'{total:,}'} | {_secs(train)} | {_secs(r['eval_time_s'])} | "
                     f"{_secs(r['external']['wallclock_s'])} |")  # fmt: skip
    agg = s["aggregate"]
    lines += ["", f"Mean of {agg['seeds_finished']} finished seed(s): {_num(agg['mean_val_bpb'])} "
              f"(claimed {_num(agg['claimed_mean_val_bpb'])}).", "", f"Timing: {s['timing']['basis']}."]  # fmt: skip
    for row in s["timing"]["seeds"]:
        if "train_s_8xh100" in row:
            label = "estimated" if row["estimate"] else "measured"
            lines.append(f"- seed {row['seed']}: {label} 8xH100 train {_sig(row['train_s_8xh100'])} s, "
                         f"eval {_sig(row['eval_s_8xh100'])} s, within caps: {row['within_caps']}")  # fmt: skip
    lines += ["", "## Findings", ""]
    if not data["findings"]:
        lines.append("None.")
    for f in data["findings"]:
        where = f["path"] if f["line"] is None else f"{f['path']}:{f['line']}"
        lines.append(f"- **{f['code']} {f['name']}** ({f['severity']}) `{where}`: {f['message']}")
        if f["evidence"]:
            lines += ["", "  ```", *[f"  {e}" for e in f["evidence"]], "  ```"]
    return "\n".join(lines) + "\n"


def write(out_dir: Path, data: dict[str, Any]) -> tuple[Path, Path]:
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    write_atomic(json_path, json.dumps(data, indent=2, default=str) + "\n")
    write_atomic(md_path, to_markdown(data))
    return json_path, md_path

"""Verdicts of the gate over a tree of record folders (e.g. the merged records materialized under .corpus/).

For every record folder: the verdict of `check --strict` (the engine in gate mode, as `ci` audits a folder),
the verdict line of `review`, whether the two agree, and the time-cap errors (PG502/PG503/PG504) of the
folder's non-record copies checked outside `records/`. Nothing here is read at test time.

    python benchmarks/gate_corpus.py .corpus/main/records [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pgaudit.render.verdict import verdict  # noqa: E402

from pgaudit.engine import AuditOptions, audit_folder, plan  # noqa: E402
from pgaudit.findings import Report  # noqa: E402
from pgaudit.review import Links, review_folder  # noqa: E402
from pgaudit.submission import NON_RECORD_TRACK, load_record_folder  # noqa: E402

TIME_CAPS = ("PG502", "PG503", "PG504")


def gate_report(folder: Path, root: Path) -> Report:
    options = AuditOptions(honour_suppressions=False)
    report = Report(target=str(folder))
    for sub, entries in plan(folder)[0]:
        audit_folder(sub, entries, options, report, root)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("records", type=Path, help="a records/ folder holding track_*/<name>/ folders")
    parser.add_argument("--json", type=Path, help="write per-folder results here")
    args = parser.parse_args()
    folders = sorted(p for p in args.records.glob("track_*/*") if p.is_dir())
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pgaudit-gate-") as tmp:
        for folder in folders:
            name = f"{folder.parent.name}/{folder.name}"
            try:
                report = gate_report(folder, args.records.parent)
            except Exception as exc:  # a folder with no script: report it, keep going
                rows.append({"folder": name, "error": f"{type(exc).__name__}: {exc}"})
                continue
            strict = verdict(report.findings, len(report.errors)).label
            text = review_folder(folder, Links(), AuditOptions(honour_suppressions=False))
            match = re.search(r"\*\*Verdict: (.*?)\.\*\*", text)
            reviewed = match.group(1) if match else "?"
            context = load_record_folder(folder).context
            outside = {}
            if context.track == NON_RECORD_TRACK:
                copy = Path(tmp) / "outside" / folder.name
                shutil.copytree(folder, copy)
                out = gate_report(copy, Path(tmp))
                outside = Counter(f.code for f in out.active() if f.code in TIME_CAPS and f.severity.label == "error")
            rows.append({
                "folder": name, "strict": strict, "review": reviewed, "same": strict == reviewed,
                "track": context.track, "track_source": context.track_source,
                "errors": sorted({f.code for f in report.active() if f.severity.label == "error"}),
                "warnings": sorted({f.code for f in report.active() if f.severity.label == "warning"}),
                "time_cap_errors_outside": dict(outside),
                "other_logs": sum(not r.submitted for r in context.roles.values()),
                "logs": len(context.roles),
            })
    seconds = time.perf_counter() - started
    audited = [r for r in rows if "strict" in r]
    labels = Counter(r["strict"].split(" under ")[0] for r in audited)
    print(f"{len(folders)} folders, {len(audited)} audited in {seconds:.0f} s")
    print("check --strict verdicts:", dict(labels))
    print("review agrees with check --strict:", sum(r["same"] for r in audited), "/", len(audited))
    non_record = [r for r in audited if r["track"] == NON_RECORD_TRACK]
    print("non-record folders:", len(non_record), "; time-cap errors outside records/:",
          sum(sum(r["time_cap_errors_outside"].values()) for r in non_record))
    print("logs classified as not submitted:", sum(r["other_logs"] for r in audited), "of",
          sum(r["logs"] for r in audited))
    for r in audited:
        if r["errors"] or not r["same"]:
            print(f"  {r['folder']}: {r['strict']} (review: {r['review']}) errors={r['errors']}")
    for r in rows:
        if "error" in r:
            print(f"  {r['folder']}: not audited: {r['error']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

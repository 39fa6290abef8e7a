"""Adversarial recall: every case of tests/adversarial audited as `pgaudit check FOLDER --format json` would.

    python benchmarks/adversarial.py [--keep DIR] [--json OUT.json] [--only NAME ...]

Each case is an illegal submission folder written to evade static checks (issue 15, "What to build") and
its legal twin. Verdict = an unsuppressed error, reachable not False, among PG0xx-PG4xx and PG504 (the
judge's definition). Prints per-case verdicts, then recall over the illegal folders, false errors over the
legal twins, and, separately, the native-code cases (a warning or error that names the native file).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pgaudit.engine import AuditOptions, audit  # noqa: E402
from pgaudit.errors import PgauditError  # noqa: E402
from tests.adversarial.cases import BY_NAME, CASES, Case, write  # noqa: E402


def verdict_codes(folder: Path) -> tuple[list[str], list[str], str | None]:
    """(verdict error codes, every unsuppressed finding as "CODE:severity:message", input error)."""
    try:
        report = audit(folder, AuditOptions())
    except PgauditError as exc:
        return [], [], str(exc)
    findings = [f for f in report.findings if not f.suppressed]
    codes = sorted({
        f.code for f in findings
        if f.severity.label == "error" and f.reachable is not False
        and (f.code[:3] in ("PG0", "PG1", "PG2", "PG3", "PG4") or f.code == "PG504")
    })  # fmt: skip
    return codes, [f"{f.code}:{f.severity.label}:{f.message}" for f in findings], None


def names_native(case: Case, findings: list[str]) -> bool:
    """A warning or error whose message names the native file the case ships."""
    from tests.adversarial.cases import build

    native = [p for p in build(case, False) if p.endswith((".c", ".cpp", ".so", ".pyc"))]
    return any(
        sev in ("warning", "error") and any(Path(n).name in msg for n in native)
        for code, sev, msg in (f.split(":", 2) for f in findings)
    )


def run(cases: list[Case], out: Path) -> dict:
    rows = []
    for case in cases:
        row: dict = {"case": case.name, "bullet": case.bullet, "family": case.family}
        start = time.perf_counter()
        codes, findings, err = verdict_codes(write(case, False, out / case.name / "illegal"))
        row.update(illegal=codes, illegal_error=err)
        if case.native:
            row["native_named"] = names_native(case, findings)
        else:
            twin, _, terr = verdict_codes(write(case, True, out / case.name / "legal"))
            row.update(legal=twin, legal_error=terr)
        row["seconds"] = round(time.perf_counter() - start, 2)
        rows.append(row)
    return {"rows": rows}


def summary(data: dict) -> str:
    rows = data["rows"]
    lines = []
    for r in rows:
        if "native_named" in r:
            lines.append(f"{r['case']:34} native  named={r['native_named']} verdict={r['illegal']}")
            continue
        hit = "HIT " if r["illegal"] else "MISS"
        twin = "FALSE" if r["legal"] else "ok"
        lines.append(f"{r['case']:34} b{r['bullet']} {hit} {r['illegal']!s:22} twin {twin} {r['legal'] or ''}"
                     + (f" input-error {r['illegal_error'] or r['legal_error']}" if r["illegal_error"] or r["legal_error"] else ""))
    scored = [r for r in rows if "native_named" not in r]
    native = [r for r in rows if "native_named" in r]
    hits = sum(bool(r["illegal"]) for r in scored)
    false = sum(bool(r["legal"]) for r in scored)
    lines.append(f"recall {hits}/{len(scored)} = {hits / max(len(scored), 1):.2f}; "
                 f"legal twins with a verdict error {false}/{len(scored)}; "
                 f"native files named in a warning {sum(r['native_named'] for r in native)}/{len(native)}")
    by_bullet: dict[str, list[int]] = {}
    for r in scored:
        b = by_bullet.setdefault(r["bullet"], [0, 0, 0])
        b[0] += 1
        b[1] += bool(r["illegal"])
        b[2] += bool(r["legal"])
    lines.append("by bullet: " + ", ".join(f"{k}: {v[1]}/{v[0]} (false {v[2]})" for k, v in sorted(by_bullet.items())))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="write the folders here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write the per-case rows as JSON")
    parser.add_argument("--only", nargs="*", help="case names")
    args = parser.parse_args()
    cases = [BY_NAME[n] for n in args.only] if args.only else CASES
    start = time.perf_counter()
    if args.keep:
        data = run(cases, args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data = run(cases, Path(tmp))
    print(summary(data))
    print(f"{len(cases)} cases in {time.perf_counter() - start:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

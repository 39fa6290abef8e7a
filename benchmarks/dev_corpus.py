"""Measure pgaudit on a labelled development corpus (a DEV.tsv: one submission a row, by commit and path).

The corpus lists real public submissions by commit and path; their code is never committed here. This script
materializes them from a bare clone of openai/parameter-golf that includes `refs/pull/*` into `.corpus/`
(git-ignored), runs `pgaudit check` in folder mode on each, and prints recall/precision per family.

    python benchmarks/dev_corpus.py --mirror PATH/TO/parameter-golf.git --tsv PATH/TO/DEV.tsv
    python benchmarks/dev_corpus.py ... --rewrite rename   # the same folders after a consistent renaming

`--rewrite KIND` (rename, split, swap, inplace: tests/metamorphic/rewrite.py) audits rewritten copies under
`.corpus/devp-KIND/` instead: every identifier the scripts bind renamed to `vN`, and so on.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Which rule codes count as catching each illegal family (the issue that owns each code is noted).
FAMILY_CODES = {
    "ngram_target_key": {"PG101"},
    "ngram_target_gate": {"PG101", "PG102"},
    "ngram_unnormalized": {"PG101", "PG201"},
    "ppm_unnormalized": {"PG201"},
    "two_pass_rescore": {"PG302", "PG101", "PG301"},
    "ttt_multiepoch_rescore": {"PG302", "PG301"},
    "prequant_ttt": {"PG301"},
    "slot": {"PG303", "PG301"},
    "gptq_calib_after_train": {"PG403", "PG504"},
    "other_illegal": {"PG401"},
    "gptq_val_calib": {"PG402"},
    "val_in_training": {"PG401"},
}


def _verdict_code(code: str) -> bool:
    """Codes the evaluation-legality verdict counts: code rules PG0xx-PG4xx and PG504."""
    return code[:3] in ("PG0", "PG1", "PG2", "PG3", "PG4") or code == "PG504"


def record_dir(out: Path, row: dict[str, str]) -> Path:
    """Each submission keeps its repository path (records/track_*/NAME), so the track is known."""
    return out / row["id"] / Path(row["path"]).parent


def materialize(mirror: Path, tsv: Path, out: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(tsv.open(), delimiter="\t"))
    for row in rows:
        dest = record_dir(out, row)
        if (dest / ".entry").exists():
            continue
        dest.mkdir(parents=True, exist_ok=True)
        commit = row["commit"]
        if subprocess.run(["git", "-C", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}"]).returncode:
            commit = "HEAD"
        folder = str(Path(row["path"]).parent)
        # A root-script pull request (folder ".") takes the root's files only, not the whole repository.
        scope = ["-r", "--", folder + "/"] if folder != "." else []
        listing = subprocess.run(
            ["git", "-C", str(mirror), "ls-tree", "-z", commit, *scope], capture_output=True, check=True
        ).stdout.decode()
        for entry in filter(None, listing.split("\0")):
            meta, name = entry.split("\t", 1)
            if meta.split()[1] != "blob":
                continue
            blob = subprocess.run(["git", "-C", str(mirror), "show", f"{commit}:{name}"], capture_output=True)
            if blob.returncode == 0:
                target = dest / (name if folder == "." else name[len(folder) + 1 :])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob.stdout)
        (dest / ".entry").write_text(Path(row["path"]).name)
    return rows


def rewrite_corpus(rows: list[dict[str, str]], src: Path, dst: Path, kind: str) -> list[str]:
    """Copies of the materialized folders with their Python files rewritten; returns what failed to rewrite."""
    from tests.metamorphic.folders import rewrite_folder
    from tests.metamorphic.rewrite import REWRITES

    failed = []
    for row in rows:
        folder, target = record_dir(src, row), record_dir(dst, row)
        try:
            rewrite_folder(folder, target, kind, REWRITES[kind])
        except Exception as exc:  # a file libcst cannot parse stays as submitted, and is reported
            failed.append(f"{row['id']}: {type(exc).__name__}: {str(exc)[:80]}")
    return failed


def evaluate(rows: list[dict[str, str]], out: Path) -> dict:
    from pgaudit.engine import AuditOptions, audit
    from pgaudit.errors import PgauditError

    results = []
    for row in rows:
        folder = record_dir(out, row)
        start = time.perf_counter()
        try:
            report = audit(folder, AuditOptions())
            findings = [f for f in report.findings if not f.suppressed]
            error = None
        except PgauditError as exc:
            findings, error = [], str(exc)
        elapsed = time.perf_counter() - start
        errors = sorted({f.code for f in findings if f.severity.label == "error"})
        verdict = sorted({f.code for f in findings if f.severity.label == "error" and f.reachable is not False
                          and _verdict_code(f.code)})
        warnings = sorted({f.code for f in findings if f.severity.label == "warning"})
        results.append({**row, "errors": errors, "verdict": verdict, "warnings": warnings, "seconds": elapsed, "crash": error})
    return {"results": results}


def _is_rule(code: str) -> bool:
    """Static code rules (PG0xx-PG4xx), as opposed to the record-folder validators (PG5xx)."""
    return code[:3] in ("PG0", "PG1", "PG2", "PG3", "PG4")


def summarize(data: dict) -> str:
    per_family: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    lines = []
    for r in data["results"]:
        fam = r["category"]
        stats = per_family[fam]
        stats["n"] += 1
        if r["label"] == "illegal":
            wanted = FAMILY_CODES.get(fam, set())
            hit = bool(set(r["errors"]) & wanted)
            stats["caught"] += hit
            stats["flagged"] += bool(set(r["errors"] + r["warnings"]) & wanted)
            stats["any_error"] += bool(r["errors"])
            stats["verdict"] += bool(r["verdict"])
            if not hit:
                lines.append(f"  missed  {r['id']:34} {fam:24} verdict={bool(r['verdict'])} errors={r['errors']} warnings={r['warnings']}")
        else:
            stats["rule_error"] += any(_is_rule(c) for c in r["errors"])
            stats["validator_error"] += any(not _is_rule(c) for c in r["errors"])
            stats["rule_warning"] += any(_is_rule(c) for c in r["warnings"])
            stats["verdict"] += bool(r["verdict"])
            if r["verdict"]:
                lines.append(f"  FALSE   {r['id']:34} {fam:24} verdict={r['verdict']} errors={r['errors']}")
        if r["crash"]:
            lines.append(f"  CRASH   {r['id']}: {r['crash']}")
    table = ["| family | label | n | its rule at error | its rule at warning or error | any error "
             "| verdict error | code-rule error | validator error | code-rule warning |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for fam in sorted(per_family, key=lambda f: (f.startswith("clean"), f)):
        s = per_family[fam]
        if fam.startswith("clean"):
            table.append(f"| {fam} | clean | {s['n']} | | | | {s['verdict']} | {s['rule_error']} | {s['validator_error']} "
                         f"| {s['rule_warning']} |")
        else:
            table.append(f"| {fam} | illegal | {s['n']} | {s['caught']} | {s['flagged']} | {s['any_error']} "
                         f"| {s['verdict']} | | | |")
    illegal = [r for r in data["results"] if r["label"] == "illegal"]
    clean = [r for r in data["results"] if r["label"] != "illegal"]
    caught = sum(bool(set(r["errors"]) & FAMILY_CODES.get(r["category"], set())) for r in illegal)
    accused = sum(any(_is_rule(c) for c in r["errors"]) for r in clean)
    times = sorted(r["seconds"] for r in data["results"])
    verdict_hit = sum(bool(r["verdict"]) for r in illegal)
    verdict_false = sum(bool(r["verdict"]) for r in clean)
    table.append("")
    table.append(f"verdict (unsuppressed reachable error among PG0xx-PG4xx and PG504): recall {verdict_hit}/{len(illegal)}, "
                 f"clean folders with a verdict error {verdict_false}/{len(clean)}")
    table.append(f"recall at error by the family's rule: {caught}/{len(illegal)}; clean folders with a code-rule "
                 f"error: {accused}/{len(clean)}")
    table.append(f"median {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s per folder (in-process)")
    return "\n".join([*table, "", *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", type=Path, required=True, help="bare clone of openai/parameter-golf with PR refs")
    parser.add_argument("--tsv", type=Path, required=True, help="the labelled corpus (columns: id, label, category, pr, commit, path, ...)")
    parser.add_argument("--out", type=Path, default=ROOT / ".corpus" / "devp")
    parser.add_argument("--json", type=Path, help="write the per-submission results here")
    parser.add_argument("--rewrite", choices=["rename", "split", "swap", "inplace"],
                        help="audit rewritten copies (tests/metamorphic/rewrite.py) under OUT-KIND")
    args = parser.parse_args()
    rows = materialize(args.mirror, args.tsv, args.out)
    audited = args.out
    if args.rewrite:
        audited = args.out.with_name(f"{args.out.name}-{args.rewrite}")
        for problem in rewrite_corpus(rows, args.out, audited, args.rewrite):
            print(f"  not rewritten: {problem}")
    data = evaluate(rows, audited)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    print(summarize(data))


if __name__ == "__main__":
    main()

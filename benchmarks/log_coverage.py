"""Log parser coverage over the fixture logs: how many yield a final metric, a size, a train time.

Run from the repository root:  python benchmarks/log_coverage.py [FIXTURES_DIR]
Prints a Markdown table. "present" is decided by plain regexes over the raw text, independently of the
parser, so the table shows what the parser misses, not only what it finds.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgaudit.logs import RunLog, read_log

DEFAULT_FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "records"
_PREFIX = re.compile(r"^\d{9,11}\.\d+\s+")
_DIAGNOSTIC = re.compile(r"diagnostic|pre-?quant|^DIAGNOSTIC|post[-_]ema\s+val_loss", re.IGNORECASE)


def has_final_metric(text: str) -> bool:
    """A line that names an eval and prints val_bpb, not a training step and not a diagnostic."""
    for raw in text.splitlines():
        line = _PREFIX.sub("", raw)
        printed = re.match(r"^[A-Za-z]", line) and re.search(r"\bval_loss[:=]\s*\d.*\bval_bpb[:=]\s*\d", line)
        if printed and not re.match(r"^step\b|^step:", line) and not _DIAGNOSTIC.search(line):
            return True
    return False


def has_size(text: str) -> bool:
    return bool(re.search(r"^(?:\S+ )?(?:Total submission size \S+: \d+ bytes|budget:\d+/|.*\| Total submission: \d+ bytes"
                          r"|artifact_bytes:\s+\d+|Serialized model \S+: \d+ bytes)", text, re.MULTILINE))


def has_train_time(text: str) -> bool:
    return bool(re.search(r"stopping_early|\btrain_time:\s*\d+ms", text))


def log_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".log", ".txt")
                  and not p.name.startswith("requirements"))


def parsed(run: RunLog) -> tuple[bool, bool, bool]:
    runs = run.all_runs
    return (any(r.final_metrics for r in runs), any(r.total_bytes or r.model_bytes for r in runs),
            any(r.train_time_ms is not None for r in runs))


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FIXTURES
    files = log_files(root)
    start = time.perf_counter()
    rows = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        run = read_log(path, path.relative_to(root).as_posix())
        rows.append((path.relative_to(root).as_posix(), (has_final_metric(text), has_size(text), has_train_time(text)),
                     parsed(run)))
    elapsed = time.perf_counter() - start
    print(f"Fixture logs: {len(files)} files under `{root.name}/` parsed in {elapsed:.2f} s.\n")
    print("| item | logs that contain it | parsed | missed | parsed though not detected by the oracle |")
    print("|---|---:|---:|---:|---:|")
    for i, item in enumerate(("final metric", "artifact/model size", "train time")):
        present = [r for r in rows if r[1][i]]
        got = [r for r in present if r[2][i]]
        extra = [r for r in rows if r[2][i] and not r[1][i]]
        print(f"| {item} | {len(present)} | {len(got)} | {len(present) - len(got)} | {len(extra)} |")
    missed = [(name, i) for name, have, got in rows for i in range(3) if have[i] and not got[i]]
    none = [name for name, have, _ in rows if not have[0]]
    print(f"\nLogs without any final metric line ({len(none)}): " + (", ".join(f"`{n}`" for n in none) or "none") + ".")
    if missed:
        print("\nMissed: " + ", ".join(f"`{n}` ({('metric', 'size', 'time')[i]})" for n, i in missed))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

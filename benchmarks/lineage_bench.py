"""Lineage benchmark: index the accepted records, look submissions up, and check READMEs' stated lineage.

Prepare once (materialized copies live under .corpus/, git-ignored):

    mkdir -p .corpus/lineage
    git -C MIRROR archive main records | tar -x -C .corpus/lineage
    git clone -q --bare --single-branch --branch main MIRROR .corpus/lineage/repo.git

then `python benchmarks/lineage_bench.py` (options: --tree, --repo, --rev, --jobs). It measures, each with a
fresh cache folder:
- indexing the extracted tree (`pgaudit lineage index .corpus/lineage`) and the same records read from git at
  a revision (`--rev`, what `pgaudit ci` does with the base), wall and CPU seconds (this process + workers);
- a lookup of every record against the cached index (fingerprint the submission, rank, compare, diff), with
  and without the scoring-path analysis;
- for every record whose README (or submission.json) states its base and names an accepted record merged
  before it: whether the nearest earlier ancestor by code is a stated base (any stated base, and the first).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pgaudit.lineage.index import Cache, build_index, index_from_git  # noqa: E402
from pgaudit.lineage.lookup import lineage_of  # noqa: E402


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = fn()
    return value, time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=ROOT / ".corpus" / "lineage", help="folder holding records/")
    parser.add_argument("--repo", type=Path, default=ROOT / ".corpus" / "lineage" / "repo.git", help="git clone")
    parser.add_argument("--rev", default="main")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lineage-bench-") as tmp:
        index, wall, cpu = timed(lambda: build_index(args.tree, Cache(Path(tmp) / "a"), jobs=args.jobs))
        print(f"index of {args.tree}/records: {len(index.records)} records, "
              f"{sum(len(r.entries) for r in index.records)} entries, {wall:.2f} s wall, {cpu:.2f} s CPU "
              f"(jobs={args.jobs})")
        _, wall, cpu = timed(lambda: build_index(args.tree, Cache(Path(tmp) / "a"), jobs=args.jobs))
        print(f"  again from the cache: {wall:.2f} s wall, {cpu:.2f} s CPU")
        if not args.repo.exists():
            print(f"no git clone at {args.repo}: skipping the git index and the stated-lineage check")
            return 0
        cache = Cache(Path(tmp) / "g")
        gindex, wall, cpu = timed(lambda: index_from_git(args.repo, args.rev, cache, jobs=args.jobs))
        print(f"index of {args.repo} at {args.rev} (git archive + history): {len(gindex.records)} records, "
              f"{wall:.2f} s wall, {cpu:.2f} s CPU")
        gindex = index_from_git(args.repo, args.rev, cache, jobs=args.jobs)  # from the cache, as a lookup sees it
        gindex.root = args.tree

        plain: list[float] = []
        plain_cpu: list[float] = []
        full: list[float] = []
        full_cpu: list[float] = []
        stated = agree_any = agree_first = 0
        rows = []
        for record in gindex.records:
            folder = args.tree / record.path
            if not record.entries:
                continue
            lin, wall, cpu = timed(lambda f=folder: lineage_of(f, gindex, earlier_only=True, scoring=False))
            plain.append(wall)
            plain_cpu.append(cpu)
            _, wall, cpu = timed(lambda f=folder: lineage_of(f, gindex, earlier_only=True, scoring=True))
            full.append(wall)
            full_cpu.append(cpu)
            named = [[r.path for r in c.records if r.earlier_than(record)] for c in lin.claims]
            named = [n for n in named if n]
            if not named:
                continue
            stated += 1
            nearest = lin.nearest.path if lin.nearest else None
            hit_any = any(nearest in n for n in named)
            hit_first = nearest in named[0]
            agree_any += hit_any
            agree_first += hit_first
            share = lin.comparison.share_functions if lin.comparison else 0.0
            rows.append(f"| {record.name} | {', '.join(c.claim.label() for c in lin.claims if c.records)} | "
                        f"{lin.nearest.label() if lin.nearest else '-'} {share:.0%} | {'yes' if hit_any else 'no'} |")
        print(f"lookups of {len(plain)} records (earlier records only), seconds wall / CPU:")
        print(f"  without scoring path: median {statistics.median(plain):.2f} / {statistics.median(plain_cpu):.2f}, "
              f"max {max(plain):.2f} / {max(plain_cpu):.2f}")
        print(f"  with scoring path:    median {statistics.median(full):.2f} / {statistics.median(full_cpu):.2f}, "
              f"max {max(full):.2f} / {max(full_cpu):.2f}")
        print(f"stated lineage naming an earlier accepted record: {stated} records; nearest ancestor agrees with "
              f"a stated base: {agree_any}/{stated} ({agree_any / max(stated, 1):.0%}), with the first stated: "
              f"{agree_first}/{stated} ({agree_first / max(stated, 1):.0%})")
        print("\n| record | stated base (accepted) | nearest earlier ancestor, functions identical | agrees |")
        print("|---|---|---|---|")
        print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

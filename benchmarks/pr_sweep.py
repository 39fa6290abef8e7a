"""Run `pgaudit check` over every record folder that a pull request of openai/parameter-golf adds.

    python benchmarks/pr_sweep.py --mirror PATH/TO/parameter-golf.git [--jobs 2] [--timeout 120]

1. Enumerate: for every `refs/pull/N/head` of the bare mirror, the folders `records/<track>/<name>/` of the
   head's tree that the base does not have (base = `main` at the merge-base with the head; `main` itself for
   the few heads without a common history). Identical folders (same tree sha) are audited once.
2. Materialize each distinct tree once, under `.corpus/prs/<pr>/<track>/<name>/` (git-ignored, never
   committed; the track stays in the path because pgaudit reads it from there). Blobs over `--max-bytes`
   (20 MB), submodules and blobs absent from the mirror are skipped and counted. Incremental: a tree listed
   in `.corpus/prs/materialized.txt` is not written again.
3. Audit. `--engine workers` (the default while `pgaudit check` has no `--jobs`): N worker processes, each
   running the `check` command of pgaudit's CLI in-process (`check FOLDER --format json`, the same code path
   as the console script) folder by folder, as fed by this script, so every folder gets its own time, exit
   code and output; a folder that runs past `--timeout` or kills its worker is recorded and the worker
   replaced. `--engine jobs` (the default once `pgaudit check --help` lists `--jobs`): one real
   `pgaudit check FOLDER... --format json --jobs N` process over every folder, for the wall time, followed by
   the workers over a `--time-sample` of folders for per-folder times (over all of them if the jobs run
   crashed, to find the folder).
4. Report: folders, input errors grouped by message pattern, crashes (a traceback, pgaudit's "internal
   error" line, or an exit code other than 0/1/2; each one's folder and last lines go to
   `.corpus/sweep/tracebacks.txt`), median / p95 / max seconds per folder, every folder over `--slow`
   seconds, and the wall time. Written to `.corpus/sweep/summary.md` and `results.json`, and printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import selectors
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / ".corpus"
TREE_MODE, SUBMODULE_MODE, SYMLINK_MODE = b"40000", b"160000", b"120000"
OK_EXIT_CODES = (0, 1, 2)


# --- reading the mirror -------------------------------------------------------------------------------------


class Objects:
    """Raw git objects through one `git cat-file --batch` and one `--batch-check` process (no fork per object)."""

    def __init__(self, mirror: Path) -> None:
        self.batch = subprocess.Popen(["git", "-C", str(mirror), "cat-file", "--batch"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
        self.check = subprocess.Popen(["git", "-C", str(mirror), "cat-file", "--batch-check"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip

    def size(self, spec: str) -> int | None:
        """The object's size, None when the mirror lacks it (its largest blobs may be absent)."""
        assert self.check.stdin and self.check.stdout
        self.check.stdin.write(spec.encode() + b"\n")
        self.check.stdin.flush()
        header = self.check.stdout.readline().split()
        return None if header[-1] == b"missing" else int(header[2])

    def read(self, spec: str) -> tuple[str, bytes] | None:
        assert self.batch.stdin and self.batch.stdout
        self.batch.stdin.write(spec.encode() + b"\n")
        self.batch.stdin.flush()
        header = self.batch.stdout.readline().split()
        if header[-1] == b"missing" or len(header) != 3:
            return None
        data = self.batch.stdout.read(int(header[2]))
        self.batch.stdout.read(1)  # the newline after the contents
        return header[1].decode(), data

    def tree(self, spec: str) -> list[tuple[bytes, str, str]]:
        """(mode, name, sha) of a tree's entries; [] when `spec` is not a tree."""
        obj = self.read(spec)
        if obj is None or obj[0] != "tree":
            return []
        data, out, i = obj[1], [], 0
        while i < len(data):
            space = data.index(b" ", i)
            nul = data.index(b"\0", space)
            name = data[space + 1 : nul].decode("utf-8", "surrogateescape")
            out.append((data[i:space], name, data[nul + 1 : nul + 21].hex()))
            i = nul + 21
        return out

    def close(self) -> None:
        for proc in (self.batch, self.check):
            assert proc.stdin
            proc.stdin.close()
            proc.wait()


@dataclass(frozen=True)
class Folder:
    pr: int
    track: str
    name: str
    tree: str


def record_folders(objects: Objects, commit: str) -> dict[tuple[str, str], str]:
    """(track, name) -> tree sha of every `records/<track>/<name>/` folder in `commit`."""
    out = {}
    for mode, track, sha in objects.tree(f"{commit}:records"):
        if mode == TREE_MODE:
            out.update({(track, name): s for m, name, s in objects.tree(sha) if m == TREE_MODE})
    return out


def merge_bases(mirror: Path, heads: dict[int, str], cache: Path) -> dict[int, str | None]:
    """The merge-base of each head with `main` (cached by head sha: computing 2,000 of them takes ~40 s)."""
    known: dict[str, str] = {}
    if cache.exists():
        known = dict(line.split("\t") for line in cache.read_text().splitlines() if "\t" in line)
    out: dict[int, str | None] = {}
    with cache.open("a") as fh:
        for pr, head in heads.items():
            if head not in known:
                proc = subprocess.run(["git", "-C", str(mirror), "merge-base", "main", head],
                                      capture_output=True, text=True)  # fmt: skip
                known[head] = proc.stdout.strip()
                fh.write(f"{head}\t{known[head]}\n")
            out[pr] = known[head] or None
    return out


def enumerate_folders(mirror: Path, objects: Objects, cache: Path) -> tuple[list[Folder], dict]:
    listing = subprocess.run(["git", "-C", str(mirror), "for-each-ref", "refs/pull/*/head",
                              "--format=%(refname) %(objectname)"],
                             capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    heads = {int(ref.split("/")[2]): sha for ref, sha in zip(listing[::2], listing[1::2], strict=True)}
    bases = merge_bases(mirror, heads, cache)
    main = record_folders(objects, "main")
    folders, changed = [], 0
    for pr in sorted(heads):
        base = record_folders(objects, bases[pr]) if bases[pr] else main
        for (track, name), tree in sorted(record_folders(objects, heads[pr]).items()):
            if (track, name) not in base:
                folders.append(Folder(pr, track, name, tree))
            elif base[(track, name)] != tree:
                changed += 1
    stats = {"pull_request_heads": len(heads), "heads_without_merge_base": sum(b is None for b in bases.values()),
             "prs_adding_a_folder": len({f.pr for f in folders}), "existing_folders_changed": changed}  # fmt: skip
    return folders, stats


# --- materializing ------------------------------------------------------------------------------------------


@dataclass
class Materialized:
    written_trees: int = 0
    already_there: int = 0
    files: int = 0
    bytes: int = 0
    over_max_bytes: int = 0
    absent_from_mirror: int = 0
    submodules: int = 0
    symlinks: int = 0
    odd_names: int = 0


def folder_path(corpus: Path, folder: Folder) -> Path:
    return corpus / "prs" / str(folder.pr) / folder.track / folder.name


def safe_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\0" not in name


def materialize(objects: Objects, unique: list[Folder], corpus: Path, max_bytes: int) -> Materialized:
    stats = Materialized()
    done_list = corpus / "prs" / "materialized.txt"
    done_list.parent.mkdir(parents=True, exist_ok=True)
    done = set(done_list.read_text().split()) if done_list.exists() else set()
    with done_list.open("a") as log:
        for folder in unique:
            if folder.tree in done:
                stats.already_there += 1
                continue
            if not (safe_name(folder.track) and safe_name(folder.name)):
                stats.odd_names += 1
                continue
            _write_tree(objects, folder.tree, folder_path(corpus, folder), max_bytes, stats)
            log.write(folder.tree + "\n")  # only once the whole tree is on disk
            log.flush()
            stats.written_trees += 1
    return stats


def _write_tree(objects: Objects, tree: str, dest: Path, max_bytes: int, stats: Materialized) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for mode, name, sha in objects.tree(tree):
        target = dest / name
        if not safe_name(name):
            stats.odd_names += 1
        elif mode == TREE_MODE:
            _write_tree(objects, sha, target, max_bytes, stats)
        elif mode == SUBMODULE_MODE:
            stats.submodules += 1
        else:
            size = objects.size(sha)
            if size is None:
                stats.absent_from_mirror += 1
                continue
            if size > max_bytes:
                stats.over_max_bytes += 1
                continue
            obj = objects.read(sha)
            if obj is None:
                stats.absent_from_mirror += 1
                continue
            if target.is_symlink() or target.exists():
                target.unlink()  # a half-written tree from an interrupted run
            if mode == SYMLINK_MODE:  # kept as a link, as a checkout would: pgaudit must cope with links
                os.symlink(obj[1], target)
                stats.symlinks += 1
            else:
                target.write_bytes(obj[1])
            stats.files += 1
            stats.bytes += size


# --- auditing -----------------------------------------------------------------------------------------------


@dataclass
class Result:
    path: str
    seconds: float
    exit_code: int | None  # None: killed at the timeout
    crash: bool = False
    timeout: bool = False
    errors: list[str] = field(default_factory=list)  # input error messages (JSON `errors`, else stderr lines)
    codes: dict[str, list[str]] = field(default_factory=dict)  # severity -> codes found
    tail: str = ""  # last lines of stderr / the traceback, for crashes
    cpu_seconds: float = (
        0.0  # CPU time of the worker for this folder: steadier than `seconds` on a busy machine
    )
    worker_max_rss_mb: float = 0.0  # the worker's peak resident memory so far (it audits folder after folder)


def worker_main() -> None:
    """A worker: read folder paths from stdin, audit each with the CLI's check command, print one JSON line."""
    import io
    import resource
    import traceback

    from pgaudit.cli import app
    from pgaudit.errors import PgauditError

    protocol = os.fdopen(os.dup(1), "w")  # result lines only: anything else written to fd 1 goes to stderr
    os.dup2(2, 1)
    while line := sys.stdin.readline():
        path = line.rstrip("\n")
        out, err = io.StringIO(), io.StringIO()
        crash, tail = False, ""
        start, cpu_start = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:  # what pgaudit.cli.main does, minus sys.exit
                code = app(["check", path, "--format", "json"], standalone_mode=False)
                code = code if isinstance(code, int) else 0
            except PgauditError as exc:
                print(f"pgaudit: {exc}", file=sys.stderr)
                code = exc.exit_code
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
            except Exception:  # a bug in pgaudit: exactly what the sweep looks for
                crash, code, tail = True, 2, traceback.format_exc()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        stderr = err.getvalue()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        result = Result(path, seconds, code, crash=crash, tail=tail or stderr[-2000:], cpu_seconds=cpu,
                        worker_max_rss_mb=rss)  # fmt: skip
        _read_report(result, out.getvalue(), stderr)
        protocol.write(json.dumps(asdict(result)) + "\n")
        protocol.flush()


def _read_report(result: Result, stdout: str, stderr: str) -> None:
    if "Traceback (most recent call last)" in stderr or "internal error" in stderr:
        result.crash = True
    if result.exit_code not in OK_EXIT_CODES:
        result.crash = True
    try:
        report = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        report = None
    if report is not None:
        result.errors = [e.get("message", "") for e in report.get("errors", [])]
        codes: dict[str, set[str]] = defaultdict(set)
        for finding in report.get("findings", []):
            if not finding.get("suppressed"):
                codes[finding["severity"]].add(finding["code"])
        result.codes = {k: sorted(v) for k, v in codes.items()}
    elif result.exit_code == 2 and not result.crash:  # nothing auditable: the stderr lines are the answer
        result.errors = [ln.split(": ", 2)[-1] for ln in stderr.splitlines() if ln.startswith("pgaudit: ")]


class Worker:
    """One worker process; `audit` feeds it a folder and waits for its line, up to the timeout."""

    def __init__(self, python: str, log_dir: Path, index: int) -> None:
        self.stderr = (log_dir / f"worker{index}.stderr").open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # pgaudit as installed for `python` (pip install -e .)
        self.proc = subprocess.Popen([python, str(Path(__file__).resolve()), "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env,
                                     start_new_session=True)  # fmt: skip
        self.selector = selectors.DefaultSelector()
        assert self.proc.stdout
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""

    def audit(self, path: str, timeout: float) -> Result:
        assert self.proc.stdin and self.proc.stdout
        start = time.perf_counter()
        self.proc.stdin.write(path.encode("utf-8", "surrogateescape") + b"\n")
        self.proc.stdin.flush()
        while b"\n" not in self.buffer:
            left = timeout - (time.perf_counter() - start)
            if left <= 0 or not self.selector.select(left):
                self.kill()
                return Result(path, time.perf_counter() - start, None, timeout=True)
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:  # the worker died (a segmentation fault, the OOM killer...)
                code = self.proc.wait()
                tail = self._stderr_tail()
                self.close()
                return Result(path, time.perf_counter() - start, code, crash=True, tail=tail)
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return Result(**json.loads(line))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):  # the whole session: the worker and anything it started
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.close()

    def close(self) -> None:
        self.selector.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close() if stream else None
        self.stderr.close()

    def _stderr_tail(self) -> str:
        self.stderr.flush()
        return Path(self.stderr.name).read_bytes()[-2000:].decode("utf-8", "replace")


def run_workers(
    paths: list[str], jobs: int, timeout: float, log_dir: Path, python: str
) -> tuple[list[Result], float]:
    """Audit `paths` with `jobs` worker processes pulling from one queue; (results in path order, wall time)."""
    queue = list(reversed(paths))
    results: dict[str, Result] = {}
    lock = threading.Lock()
    done = [0]

    def drive(index: int) -> None:
        worker = Worker(python, log_dir, index)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    path = queue.pop()
                if not worker.alive():
                    worker = Worker(python, log_dir, index)
                result = worker.audit(path, timeout)
                if not worker.alive() or result.timeout:
                    worker = Worker(python, log_dir, index)
                with lock:
                    results[path] = result
                    done[0] += 1
                    if done[0] % 100 == 0 or done[0] == len(paths):
                        print(f"  {done[0]}/{len(paths)} folders", file=sys.stderr, flush=True)
        finally:
            if worker.alive():
                worker.kill()

    start = time.perf_counter()
    threads = [threading.Thread(target=drive, args=(i,)) for i in range(max(1, jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[p] for p in paths], time.perf_counter() - start


def has_jobs_option(pgaudit: str) -> bool:
    proc = subprocess.run([pgaudit, "check", "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    return "--jobs" in proc.stdout


def run_jobs(paths: list[str], jobs: int, pgaudit: str, out_dir: Path, timeout: float) -> dict:
    """One real `pgaudit check FOLDER... --format json --jobs N` process over every folder."""
    report = out_dir / "jobs_report.json"
    report.unlink(missing_ok=True)
    command = [pgaudit, "check", *paths, "--format", "json", "--jobs", str(jobs), "-o", str(report)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, start_new_session=True
        )
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, stderr = (
            None,
            (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else (exc.stderr or ""),
        )
    wall = time.perf_counter() - start
    data = json.loads(report.read_text()) if report.exists() else {}
    crash = code not in OK_EXIT_CODES or "Traceback" in stderr or "internal error" in stderr
    # No report at all: the run audited nothing (e.g. one folder without a script stopped every other one).
    failed = crash or not data
    return {"failed": failed, "exit_code": code, "wall_seconds": wall, "crash": crash, "stderr_tail": stderr[-3000:],
            "errors": [e.get("message", "") for e in data.get("errors", [])], "summary": data.get("summary")}  # fmt: skip


# --- summarizing --------------------------------------------------------------------------------------------

_PATTERNS = [
    (re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`"), "'…'"),
    # a path, or a lone file name: both become PATH, so "a/b/train_gpt.py: ..." and "train_gpt.py: ..." group
    (
        re.compile(
            r"(?:/|\.{1,2}/)?(?:[\w.+@=-]+/)+[\w.+@=-]*|\b[\w.+-]+\.(?:py|log|json|txt|md|sh|model|bin|pt|ptz)\b"
        ),
        "PATH",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b|\b\d[\d,_.]*\b"), "N"),
]


def error_kind(message: str) -> str:
    """A message with its paths, quoted text and numbers blanked, so messages group by what went wrong."""
    for pattern, blank in _PATTERNS:
        message = pattern.sub(blank, message)
    return message.strip()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarize(meta: dict, results: list[Result], slow: float, corpus: Path) -> str:
    timed = [r.seconds for r in results if not r.timeout and not r.crash]
    crashes = [r for r in results if r.crash]
    timeouts = [r for r in results if r.timeout]
    kinds = Counter(error_kind(m) for r in results for m in r.errors)
    folders_with_errors = sum(bool(r.errors) for r in results)
    by_exit = Counter(str(r.exit_code) for r in results)
    severities = Counter(sev for r in results for sev in r.codes)
    codes = Counter(f"{c} ({sev})" for r in results for sev, cs in r.codes.items() for c in cs)
    lines = [
        f"mirror: {meta['mirror']} at main {meta['main_commit']}",
        f"pgaudit: {meta['pgaudit']}",
        f"pull-request heads: {meta['pull_request_heads']} ({meta['heads_without_merge_base']} without a merge-base "
        f"with main, compared with main); PRs adding a record folder: {meta['prs_adding_a_folder']}",
        f"record folders added by pull requests: {meta['folders']} ({meta['unique_trees']} distinct trees, audited "
        f"once each); existing folders a PR changes (not audited): {meta['existing_folders_changed']}",
        f"materialized: {meta['materialized']}",
        f"engine: {meta['engine']}, {meta['jobs']} workers, timeout {meta['timeout']} s per folder",
        f"audited: {len(results)} folders; exit codes {dict(sorted(by_exit.items()))}",
        f"crashes (tracebacks, internal errors, other exit codes): {len(crashes)}; timeouts: {len(timeouts)}",
        f"folders with an input error: {folders_with_errors}; folders with findings at "
        + ", ".join(f"{k}: {v}" for k, v in sorted(severities.items())),
    ]
    if timed:
        lines.append(f"seconds per folder ({meta['time_source']}): median {statistics.median(timed):.2f}, "
                     f"p95 {percentile(timed, 0.95):.2f}, max {max(timed):.2f}, total {sum(timed):.0f}")  # fmt: skip
    cpu = [r.cpu_seconds for r in results if not r.timeout and not r.crash]
    if cpu and any(cpu):
        lines.append(f"CPU seconds per folder: median {statistics.median(cpu):.2f}, p95 {percentile(cpu, 0.95):.2f}, "
                     f"max {max(cpu):.2f}, total {sum(cpu):.0f} (total / {meta['jobs']} = "
                     f"{sum(cpu) / max(1, meta['jobs']):.0f} s: the wall time on {meta['jobs']} idle cores, "
                     "interpreter start-up excluded)")  # fmt: skip
        lines.append(f"peak worker memory: {max(r.worker_max_rss_mb for r in results):.0f} MB")
    if meta.get("wall_seconds") is not None:
        lines.append(f"wall time: {meta['wall_seconds']:.1f} s ({meta['wall_source']})")
    lines += ["", "input errors by kind (folders' messages with paths, quotes and numbers blanked):"]
    lines += [f"  {n:5d}  {kind}" for kind, n in kinds.most_common()] or ["  none"]
    lines += ["", "most frequent codes (folders):"]
    lines += [f"  {n:5d}  {code}" for code, n in codes.most_common(20)]
    lines += ["", f"slow folders (> {slow:g} s) and timeouts:"]
    slow_ones = sorted((r for r in results if r.timeout or r.seconds > slow), key=lambda r: -r.seconds)
    lines += [
        f"  {r.seconds:7.1f} s{' TIMEOUT' if r.timeout else ''}  {_rel(r.path, corpus)}" for r in slow_ones
    ]
    lines += ["  none"] if not slow_ones else []
    lines += ["", "crashes:"]
    lines += [f"  exit {r.exit_code}  {_rel(r.path, corpus)}: {_last_line(r.tail)}" for r in crashes] or [
        "  none"
    ]
    return "\n".join(lines)


def _rel(path: str, corpus: Path) -> str:
    try:
        return str(Path(path).relative_to(corpus))
    except ValueError:
        return path


def _last_line(text: str) -> str:
    rows = [ln for ln in text.strip().splitlines() if ln.strip()]
    return rows[-1].strip()[:200] if rows else "(no output)"


def write_tracebacks(results: list[Result], target: Path, corpus: Path) -> None:
    blocks = []
    for r in results:
        if r.crash or r.timeout:
            tail = "\n".join(r.tail.strip().splitlines()[-25:])
            state = "TIMEOUT" if r.timeout else f"exit {r.exit_code}"
            blocks.append(f"=== {_rel(r.path, corpus)} ({state}, {r.seconds:.1f} s)\n{tail}\n")
    target.write_text("\n".join(blocks) if blocks else "no traceback\n")


# --- main ---------------------------------------------------------------------------------------------------


def pgaudit_source(python: str) -> str:
    """Which pgaudit the sweep measures: its folder and that checkout's commit (run outside any checkout, so
    that a `pgaudit/` in the working directory does not shadow the installed one)."""
    probe = "import pgaudit, os; print(os.path.dirname(pgaudit.__file__))"
    where = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd="/").stdout.strip()
    head = subprocess.run(
        ["git", "-C", where or "/", "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return f"{where} at {head.stdout.strip() or 'unknown commit'}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mirror", type=Path, help="bare clone of openai/parameter-golf with refs/pull/*")
    parser.add_argument(
        "--corpus", type=Path, default=CORPUS, help="where folders and results go (default .corpus)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--engine",
        choices=("auto", "workers", "jobs"),
        default="auto",
        help="auto: `pgaudit check --jobs` when pgaudit has it, else this script's workers",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per folder before it is killed")
    parser.add_argument("--slow", type=float, default=10.0, help="list folders slower than this (seconds)")
    parser.add_argument("--max-bytes", type=int, default=20_000_000, help="skip blobs larger than this")
    parser.add_argument(
        "--time-sample",
        type=int,
        default=300,
        help="with --engine jobs: folders timed one by one afterwards (0: all)",
    )
    parser.add_argument(
        "--limit", type=int, default=0, help="audit only the first N distinct folders (0: all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --time-sample draw")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the Python whose pgaudit is audited (its venv's `pgaudit` for --engine jobs)",
    )
    parser.add_argument("--materialize-only", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main()
        return
    if args.mirror is None:
        parser.error("--mirror is required")

    corpus = args.corpus.resolve()
    out_dir = corpus / "sweep"
    out_dir.mkdir(parents=True, exist_ok=True)
    (corpus / "prs").mkdir(exist_ok=True)
    python = args.python
    pgaudit = str(Path(python).with_name("pgaudit"))
    main_commit = subprocess.run(["git", "-C", str(args.mirror), "rev-parse", "main"],
                                 capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip

    start = time.perf_counter()
    objects = Objects(args.mirror)
    try:
        folders, meta = enumerate_folders(args.mirror, objects, corpus / "prs" / "mergebases.tsv")
        first: dict[str, Folder] = {}
        for folder in folders:
            first.setdefault(folder.tree, folder)
        unique = list(first.values())
        if args.limit:
            unique = unique[: args.limit]
        stats = materialize(objects, unique, corpus, args.max_bytes)
    finally:
        objects.close()
    print(f"enumerated {len(folders)} folders ({len(first)} distinct), materialized in "
          f"{time.perf_counter() - start:.1f} s: {asdict(stats)}", file=sys.stderr)  # fmt: skip
    meta.update(mirror=str(args.mirror), main_commit=main_commit, pgaudit=pgaudit_source(python), folders=len(folders), unique_trees=len(first),
                materialized=asdict(stats), jobs=args.jobs, timeout=args.timeout)  # fmt: skip
    if args.materialize_only:
        return
    paths = [str(folder_path(corpus, f)) for f in unique if folder_path(corpus, f).is_dir()]

    engine = args.engine
    if engine == "auto":
        engine = "jobs" if has_jobs_option(pgaudit) else "workers"
    meta["engine"] = engine
    jobs_run = None
    if engine == "jobs":
        jobs_run = run_jobs(
            paths, args.jobs, pgaudit, out_dir, timeout=args.timeout * len(paths) / max(1, args.jobs)
        )
        meta.update(
            wall_seconds=jobs_run["wall_seconds"],
            wall_source=f"one `pgaudit check --jobs {args.jobs}` process",
        )
        sample = paths
        if args.time_sample and not jobs_run["failed"] and args.time_sample < len(paths):
            sample = sorted(random.Random(args.seed).sample(paths, args.time_sample))
        results, wall = run_workers(sample, args.jobs, args.timeout, out_dir, python)
        meta["time_source"] = f"{len(sample)} folders, each timed in a worker process"
        if jobs_run["failed"]:  # its wall time measured a failure: the workers' is the sweep's
            meta.update(
                wall_seconds=wall, wall_source=f"{args.jobs} worker processes (the --jobs run failed)"
            )
    else:
        results, wall = run_workers(paths, args.jobs, args.timeout, out_dir, python)
        meta.update(wall_seconds=wall, wall_source=f"{args.jobs} worker processes, every folder",
                    time_source="every folder, timed in its worker process")  # fmt: skip

    write_tracebacks(results, out_dir / "tracebacks.txt", corpus)
    text = summarize(meta, results, args.slow, corpus)
    if jobs_run is not None:
        text += (f"\n\n`pgaudit check --jobs {args.jobs}` run: exit {jobs_run['exit_code']}, crash {jobs_run['crash']}, "
                 f"{'FAILED: no report, every folder then audited by the workers, ' if jobs_run['failed'] else ''}"
                 f"{len(jobs_run['errors'])} input errors, summary {jobs_run['summary']}")  # fmt: skip
    (out_dir / "summary.md").write_text(text + "\n")
    (out_dir / "results.json").write_text(json.dumps({"meta": meta, "jobs_run": jobs_run,
                                                      "results": [asdict(r) for r in results]}, indent=1))  # fmt: skip
    print(text)


if __name__ == "__main__":
    main()

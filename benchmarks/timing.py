"""Wall time of `pgaudit check` on a ~1,100-line and a ~3,700-line training script, split by stage.

The scripts are generated from this repository's own code (the reference trainer's modules and the bundled
examples, concatenated into one file the way record scripts are; the larger one adds renamed variants of the
model and eval code, as records carry several variants of their blocks), so no public submission is needed.
Each script is also wrapped as a self-extracting `exec(lzma.decompress(base64.b85decode(...)))` file to time
the unwrap.

    python benchmarks/timing.py [--repeat 7] [--keep DIR]
    python benchmarks/timing.py --record PATH [--record PATH ...] [--repeat 7]

With --record (a record folder or a script; e.g. the largest merged record), only the speed goal is measured,
in one run: `pgaudit check PATH --format json` in a fresh process against python start-up (`python -c pass`)
plus libcst's parse of the same file (the largest .py under PATH, parsed in this process after libcst is
imported). The three are interleaved, repeated, and the minimum of each is kept (other processes sharing
the cores only ever add time); the ratio check / (start-up + libcst parse) is printed for wall time and for
CPU time (user + sys). Goal: at most 2x.

Stages (medians over the repeats, each from a cold in-memory cache):
  startup   `python -m pgaudit --version` and `pgaudit --version` in a fresh process
  read      read + guards (size, binary, encoding)
  unwrap    finding and decoding the payload of the self-extracting copy
  parse     stdlib `ast` parse (what pgaudit uses); libcst's full parse of the same text is the yardstick
  analysis  index, run configurations, reachability, data-flow labels, score/update events
  rules     every registered rule on those facts
  check     the whole `pgaudit check FILE --format json` in a fresh process
"""

from __future__ import annotations

import argparse
import ast
import base64
import lzma
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRAINER_ORDER = ("config", "runtime", "data", "model", "optim", "quant", "evaluate", "log", "train")
VARIANT_MODULES = ("model", "optim", "quant", "evaluate")  # what records repeat in variants
EXAMPLES = ("clean_score_first_ttt", "dead_ngram_disabled")
OWN_PACKAGES = ("reference_trainer", "pgaudit")


# --- script generation -------------------------------------------------------------------------------------

def _strip(text: str) -> str:
    """Drop `from __future__` and imports of this repository's packages (the pieces become one file)."""
    tree = ast.parse(text)
    drop: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (
            node.module == "__future__" or (node.module or "").split(".")[0] in OWN_PACKAGES
        ):
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return "\n".join(line for n, line in enumerate(text.split("\n"), 1) if n not in drop)


def _renamed(text: str, suffix: str) -> str:
    """A variant of a module: every top-level def and class renamed with `suffix`."""
    names = [n.name for n in ast.parse(text).body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(name)}\b", f"{name}{suffix}", text)
    return text


def generate(target_lines: int) -> str:
    """One training script of about `target_lines` lines, built from this repository's code."""
    parts = [_strip((ROOT / "reference_trainer" / f"{m}.py").read_text()) for m in TRAINER_ORDER]
    parts += [_strip((ROOT / "examples" / e / "train_gpt.py").read_text()) for e in EXAMPLES]
    text = "from __future__ import annotations\n" + "\n\n".join(parts)
    variant = 2
    while text.count("\n") < target_lines - 200:
        for module in VARIANT_MODULES:
            piece = _strip((ROOT / "reference_trainer" / f"{module}.py").read_text())
            text += "\n\n" + _renamed(piece, f"_v{variant}")
            if text.count("\n") >= target_lines - 200:
                break
        variant += 1
    lines = text.split("\n")[: target_lines - 3]
    body = "\n".join(lines)
    while True:  # cut at the last top-level statement that still parses
        try:
            ast.parse(body)
            break
        except SyntaxError as exc:
            body = "\n".join(body.split("\n")[: (exc.lineno or len(lines)) - 1])
    return body + '\n\nif __name__ == "__main__":\n    main()\n'


def wrap(text: str) -> str:
    blob = base64.b85encode(lzma.compress(text.encode(), format=lzma.FORMAT_RAW,
                                          filters=[{"id": lzma.FILTER_LZMA2}])).decode()
    return ("import lzma as L,base64 as B\n"
            f'exec(L.decompress(B.b85decode("{blob}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n')


# --- measurement -------------------------------------------------------------------------------------------

def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _fresh() -> None:
    from pgaudit.source import parse

    parse._CACHE.clear()
    parse._NODES.clear()


def stages(path: Path, wrapped: Path, repeat: int) -> dict[str, float]:
    import libcst

    from pgaudit.analysis.facts import Facts
    from pgaudit.rules import REGISTRY
    from pgaudit.source.guards import read_source
    from pgaudit.source.parse import parse_python
    from pgaudit.source.program import load_program
    from pgaudit.source.unwrap import find_payloads

    text = path.read_text()
    result: dict[str, float] = {}
    result["read"] = median_time(lambda: read_source(path, path.name), repeat)

    def unwrap() -> None:
        _fresh()
        find_payloads(parse_python(wrapped.read_text(), wrapped.name), wrapped.name)

    result["unwrap"] = median_time(unwrap, repeat)

    def parse() -> None:
        _fresh()
        parse_python(text, path.name)

    result["parse"] = median_time(parse, repeat)
    result["libcst_parse"] = median_time(lambda: libcst.parse_module(text), max(3, repeat // 2))

    def timed_analysis() -> None:
        _fresh()
        program = load_program(path, path.parent)  # read + parse, excluded below
        start = time.perf_counter()
        facts = Facts(program)
        facts.index, facts.configs, facts.reach, facts.flow, facts.events  # noqa: B018
        analysis_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        for cls in REGISTRY.values():
            list(cls().check(facts))
        rule_times.append(time.perf_counter() - start)

    analysis_times: list[float] = []
    rule_times: list[float] = []
    for _ in range(repeat):
        timed_analysis()
    result["analysis"] = statistics.median(analysis_times)
    result["rules"] = statistics.median(rule_times)
    result["check"] = median_time(lambda: subprocess.run(
        [sys.executable, "-m", "pgaudit", "check", str(path), "--format", "json"], capture_output=True, check=False
    ), max(3, repeat // 2))
    return result


def startup(repeat: int) -> dict[str, float]:
    out = {"python -m pgaudit --version": median_time(
        lambda: subprocess.run([sys.executable, "-m", "pgaudit", "--version"], capture_output=True, check=True),
        repeat)}
    script = shutil.which("pgaudit") or str(Path(sys.executable).with_name("pgaudit"))
    if Path(script).exists():
        out["pgaudit --version"] = median_time(
            lambda: subprocess.run([script, "--version"], capture_output=True, check=True), repeat)
    out["python -c pass"] = median_time(
        lambda: subprocess.run([sys.executable, "-c", "pass"], capture_output=True, check=True), repeat)
    return out


def _child_run(cmd: list[str]) -> tuple[float, float]:
    """(wall, user + sys CPU) seconds of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bytecode_state() -> str:
    """Whether pgaudit's modules start from cached bytecode (an installed wheel does; a source checkout under
    PYTHONDONTWRITEBYTECODE=1 compiles every module in every process, ~0.1 s)."""
    import importlib.util

    sources = [p for p in (ROOT / "pgaudit").rglob("*.py") if "__pycache__" not in p.parts]
    fresh = 0
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        fresh += cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime
    return f"bytecode cached for {fresh}/{len(sources)} modules"


def record_ratio(path: Path, repeat: int) -> dict[str, tuple[float, float]]:
    """Minimum (wall, cpu) of the check, the start-up and the libcst parse of the largest script, interleaved."""
    import libcst

    scripts = [path] if path.is_file() else sorted(path.rglob("*.py"), key=lambda p: p.stat().st_size)
    if not scripts:
        raise SystemExit(f"timing.py: no Python file under {path}")
    text = scripts[-1].read_text()
    libcst.parse_module(text)  # warm: the parser's own lazy set-up is not part of a parse
    runs: dict[str, list[tuple[float, float]]] = {"check": [], "startup": [], "libcst": []}
    for _ in range(repeat):
        runs["check"].append(_child_run([sys.executable, "-m", "pgaudit", "check", str(path), "--format", "json"]))
        runs["startup"].append(_child_run([sys.executable, "-c", "pass"]))
        runs["libcst"].append(_timed(lambda: libcst.parse_module(text)))
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items()}
    best["script"] = (float(text.count("\n")), 0.0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="write the generated scripts here")
    parser.add_argument("--record", type=Path, action="append", default=[],
                        help="measure only check / (start-up + libcst parse) on this folder or script")
    args = parser.parse_args()
    if args.record:
        print(f"machine: {platform.processor() or platform.machine()}, {platform.python_implementation()} "
              f"{platform.python_version()}, {platform.system()}, load average {os.getloadavg()[0]:.1f}, "
              f"minimum of {args.repeat}, {bytecode_state()}")
        print("| record | lines | check wall | start-up wall | libcst parse wall | ratio wall "
              "| check CPU | start-up CPU | libcst parse CPU | ratio CPU |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for path in args.record:
            r = record_ratio(path, args.repeat)
            (cw, cc), (sw, sc), (lw, lc) = r["check"], r["startup"], r["libcst"]
            print(f"| {path.name} | {int(r['script'][0])} | {cw:.3f} | {sw:.3f} | {lw:.3f} | {cw / (sw + lw):.2f}x "
                  f"| {cc:.3f} | {sc:.3f} | {lc:.3f} | {cc / (sc + lc):.2f}x |")
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="pgaudit-timing-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}, {platform.system()}")
    for name, seconds in startup(args.repeat).items():
        print(f"startup  {name:32s} {seconds:7.3f} s")
    print()
    print("| script | lines | read | unwrap | parse (ast) | libcst parse | analysis | rules | analysis+rules "
          "| check (process) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for target in (1100, 3700):
        text = generate(target)
        path = work / f"script_{target}" / "train_gpt.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        wrapped = work / f"wrapped_{target}" / "train_gpt.py"
        wrapped.parent.mkdir(exist_ok=True)
        wrapped.write_text(wrap(text))
        r = stages(path, wrapped, args.repeat)
        print(f"| {path.parent.name} | {text.count(chr(10))} | {r['read']:.3f} | {r['unwrap']:.3f} | "
              f"{r['parse']:.3f} | {r['libcst_parse']:.3f} | {r['analysis']:.3f} | {r['rules']:.3f} | "
              f"{r['analysis'] + r['rules']:.3f} | {r['check']:.3f} |")


if __name__ == "__main__":
    main()

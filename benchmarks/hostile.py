"""The hostile-input suite, measured: each case built in a temporary folder, audited by a fresh
`python -m pgaudit` process started from inside that folder, with its wall time and peak memory.

    python benchmarks/hostile.py            # prints a Markdown table for benchmarks/RESULTS.md

Per case: exit code (0/1/2 expected, never a crash), wall seconds and max RSS of the child (/usr/bin/time), input
size, whether a shadowing module wrote its marker, whether any line on stdout/stderr would be read by a
GitHub runner as a command pgaudit did not write, whether a traceback or internal error appeared, and the
first error line. Needs nothing outside the repository.
"""

from __future__ import annotations

import base64
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLEAN = ROOT / "examples" / "clean_score_first_ttt"
ILLEGAL = ROOT / "examples" / "illegal_ngram_cache" / "train_gpt.py"
OURS = ("::error ", "::error::", "::warning ", "::warning::", "::notice ", "::notice::", "::group::",
        "::endgroup::", "::stop-commands::pgaudit-", "::pgaudit-")  # fmt: skip


def record(base: Path, name: str = "sub") -> Path:
    folder = base / "records" / "track_10min_16mb" / name
    shutil.copytree(CLEAN, folder)
    return folder


def script(base: Path, text: str | bytes) -> Path:
    path = base / "train_gpt.py"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def case_shadow(base: Path, marker: Path) -> tuple[Path, list[str]]:
    folder = record(base)
    for name in ("json", "typer", "rich", "numpy", "tomllib", "libcst", "click"):
        (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write('x')\n")
    (folder / "rules").mkdir()
    (folder / "rules" / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('x')\n")
    return folder, ["check", ".", "--format", "github"]


def case_injection(base: Path, marker: Path) -> tuple[Path, list[str]]:
    folder = record(base)
    (folder / "x\n::warning file=forged.py::forged\r::stop-commands::t.log").write_bytes(b"\x00bin")
    (folder / "train_seed7.log").write_text("::error file=train_gpt.py,line=1::forged\nval_bpb:1.0\n")
    return folder, ["check", ".", "--format", "github"]


def case_unicode_escape(base: Path, marker: Path) -> tuple[Path, list[str]]:
    return base, ["check", str(script(base, b'x = 1\n# coding: unicode_escape\ny = "\\x22"\n'))]


def case_decoy(base: Path, marker: Path) -> tuple[Path, list[str]]:
    folder = record(base)
    shutil.copy(ILLEGAL, folder / "train_gpt_fast.py")
    (folder / "README.md").write_text("```\ntorchrun --standalone --nproc_per_node=gpu train_gpt_fast.py\n```\n")
    return folder, ["check", "."]


def case_power(base: Path, marker: Path) -> tuple[Path, list[str]]:
    text = ILLEGAL.read_text().replace('if __name__ == "__main__":', 'if __name__ == "__main__" and 7 ** 2000000000 < 3:')
    return base, ["check", str(script(base, text))]


def case_json(value: str) -> Callable[[Path, Path], tuple[Path, list[str]]]:
    def build(base: Path, marker: Path) -> tuple[Path, list[str]]:
        folder = record(base)
        claims = (folder / "submission.json").read_text()
        (folder / "submission.json").write_text(claims.replace('"bytes_total": 15721574', f'"bytes_total": {value}'))
        return folder, ["check", "."]

    return build


def case_json_deep(base: Path, marker: Path) -> tuple[Path, list[str]]:
    folder = record(base)
    (folder / "submission.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return folder, ["check", "."]


def case_link_loop(base: Path, marker: Path) -> tuple[Path, list[str]]:
    (base / "train_gpt.py").symlink_to("train_gpt.py")
    return base, ["check", "train_gpt.py"]


def case_link_loop_inside(base: Path, marker: Path) -> tuple[Path, list[str]]:
    folder = record(base)
    (folder / "loop.log").symlink_to("loop.log")
    return folder, ["check", "."]


def case_fifo(base: Path, marker: Path) -> tuple[Path, list[str]]:
    os.mkfifo(base / "train_gpt.py")
    return base, ["check", "train_gpt.py"]


def case_text(text: str) -> Callable[[Path, Path], tuple[Path, list[str]]]:
    def build(base: Path, marker: Path) -> tuple[Path, list[str]]:
        return base, ["check", str(script(base, text))]

    return build


def case_utf16(base: Path, marker: Path) -> tuple[Path, list[str]]:
    return base, ["check", str(script(base, "import os\nprint(os.name)\n".encode("utf-16")))]


def case_bombs(base: Path, marker: Path) -> tuple[Path, list[str]]:
    blob = base64.b85encode(lzma.compress(b"#" * (45 * 1024 * 1024) + b"\nx = 1\n")).decode()
    lines = ["import lzma, base64"] + [f'exec(lzma.decompress(base64.b85decode("{blob}")))' for _ in range(20)]
    return base, ["check", str(script(base, "\n".join(lines) + "\n"))]


def case_long(lines: int) -> Callable[[Path, Path], tuple[Path, list[str]]]:
    def build(base: Path, marker: Path) -> tuple[Path, list[str]]:
        body = "".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(lines // 2))
        return base, ["check", str(script(base, body))]

    return build


CASES: list[tuple[str, Callable[[Path, Path], tuple[Path, list[str]]]]] = [
    ("shadowing modules (json.py, typer.py, rules/ ...), --format github", case_shadow),
    ("workflow commands in a file name and a log", case_injection),
    ("`# coding: unicode_escape` on line 2 after code", case_unicode_escape),
    ("decoy: README runs train_gpt_fast.py (--nproc_per_node=gpu)", case_decoy),
    ("7 ** 2000000000 in a guard", case_power),
    ("submission.json: NaN", case_json("NaN")),
    ("submission.json: Infinity", case_json("Infinity")),
    ("submission.json: 1e400", case_json("1e400")),
    ("submission.json nested 100,000 deep", case_json_deep),
    ("symlink loop as the entry", case_link_loop),
    ("symlink loop inside the folder", case_link_loop_inside),
    ("FIFO given as the file", case_fifo),
    ("valid 3.14 `except A, B:`", case_text("try:\n    pass\nexcept ValueError, TypeError:\n    pass\n")),
    ("500 nested parentheses", case_text("x = " + "(" * 500 + "1" + ")" * 500 + "\n")),
    ("10,000 nested parentheses", case_text("x = " + "(" * 10_000 + "1" + ")" * 10_000 + "\n")),
    ("1,000 unary minus", case_text("x = " + "-" * 1000 + "1\n")),
    ("100,000 `not`", case_text("x = " + "not " * 100_000 + "x\n")),
    ("UTF-16 file", case_utf16),
    ("twenty 45 MB lzma payloads", case_bombs),
    ("19,000-line script", case_long(19_000)),
    ("200,000-line script", case_long(200_000)),
]


def run_case(name: str, build: Callable[[Path, Path], tuple[Path, list[str]]]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "case"
        base.mkdir()
        marker = Path(tmp) / "MARKER"
        cwd, args = build(base, marker)
        size = sum(p.stat().st_size for p in base.rglob("*") if p.is_file() and not p.is_symlink())
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
        env.pop("GITHUB_ACTIONS", None)
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        with out.open("wb") as o, err.open("wb") as e:
            start = time.perf_counter()
            # /usr/bin/time -f %M: the child's own peak RSS (a fork from this process would inherit ours)
            command = ["/usr/bin/time", "-o", str(Path(tmp) / "rss"), "-f", "%M", sys.executable, "-m", "pgaudit"]
            proc = subprocess.run([*command, *args], cwd=cwd, env=env, stdout=o, stderr=e)
            wall = time.perf_counter() - start
        rss_kb = int((Path(tmp) / "rss").read_text().split()[-1])
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
        forged = [
            line for line in (stdout + "\n" + stderr).replace("\r", "\n").split("\n")
            if line.lstrip().startswith("::")
            and (not line.lstrip().startswith(OURS) or line.lstrip().startswith("::warning file=forged.py"))
        ]
        first = next((line for line in stderr.splitlines() if line.startswith("pgaudit:")), "")
        return {
            "case": name,
            "bytes": size,
            "exit": proc.returncode,
            "wall": wall,
            "rss_mb": rss_kb / 1024,
            "marker": marker.exists(),
            "forged": len(forged),
            "crash": "Traceback" in stderr or "internal error" in stderr or proc.returncode not in (0, 1, 2),
            "message": first[:150].replace("|", "/"),
        }


def main() -> None:
    rows = [run_case(name, build) for name, build in CASES]
    print("| case | input bytes | exit | wall s | max RSS MB | marker | forged | crash | first error line |")
    print("|---|---:|---:|---:|---:|---|---:|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['bytes']:,} | {r['exit']} | {r['wall']:.2f} | {r['rss_mb']:.0f} | "
            f"{'YES' if r['marker'] else 'no'} | {r['forged']} | {'YES' if r['crash'] else 'no'} | {r['message']} |"
        )
    worst = max(rows, key=lambda r: r["wall"])
    print(f"\nslowest: {worst['case']} {worst['wall']:.2f} s; largest RSS {max(r['rss_mb'] for r in rows):.0f} MB")


if __name__ == "__main__":
    main()

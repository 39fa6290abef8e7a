"""The entry point's own parser for plain `check` command lines (pgaudit/launch.py): what it takes, what it
leaves to typer, and that both ways print and exit the same."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pgaudit.launch import check_arguments

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "examples/clean_score_first_ttt"


def test_plain_spellings_are_parsed_like_typer_would():
    kwargs = check_arguments([
        "check", "a", "--format", "json", "b", "-o", "out.json", "--env", "X=1", "--env=Y=2", "--select", "PG1",
        "--ignore", "PG101", "--no-logs", "--fail-on", "warning", "--config=pyproject.toml", "--no-config",
        "--exit-zero", "--hide-info", "-j", "2", "--strict", "--baseline", "b.json", "--write-baseline", "w.json",
        "--output-format", "concise",
    ])  # fmt: skip
    assert kwargs == {
        "paths": [Path("a"), Path("b")], "output_format": "json", "output": Path("out.json"),
        "env": ["X=1", "Y=2"], "select": ["PG1"], "ignore": ["PG101"], "no_logs": True, "fail_on": "warning",
        "config": Path("pyproject.toml"), "no_config": True, "exit_zero": True, "hide_info": True, "jobs": 2,
        "strict": True, "baseline": Path("b.json"), "write_baseline": Path("w.json"), "output_mode": "concise",
    }  # fmt: skip
    assert check_arguments(["check", "x"]) == {"paths": [Path("x")], "env": [], "select": [], "ignore": []}


@pytest.mark.parametrize("args", [
    [], ["--version"], ["rules"], ["check"], ["check", "--help"], ["check", "-h", "x"], ["check", "x", "--"],
    ["check", "-"], ["check", "x", "-fjson"], ["check", "x", "-f=json"], ["check", "x", "--strict=1"],
    ["check", "x", "--format", "json", "--format", "text"], ["check", "x", "--format"], ["check", "x", "--format", ""],
    ["check", "x", "-o", "-"], ["check", "x", "-j", "two"], ["check", "x", "-j", "-1"], ["check", "x", "-j", "08"],
    ["check", "x", "--unknown"], ["check", "x", "--form", "json"], ["check", "x", "--strict", "--strict"],
    ["check", "-x"],
])  # fmt: skip
def test_anything_else_is_left_to_typer(args):
    assert check_arguments(args) is None


def test_shell_completion_is_left_to_typer(monkeypatch):
    monkeypatch.setenv("_PGAUDIT_COMPLETE", "bash_source")
    assert check_arguments(["check", "x"]) is None


def _run(entry: str, args: list[str]) -> tuple[int, str, str]:
    code = f"import sys; sys.argv[0] = 'pgaudit'; from {entry} import main; main()"
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("args", [
    ["check", EXAMPLE, "--format", "json"],
    ["check", "examples/illegal_ngram_cache", "--output-format", "concise", "--select", "PG1"],
    ["check", EXAMPLE, "--format", "bogus"],
    ["check", EXAMPLE, "-j", "0"],
    ["check", "no/such/folder"],
])  # fmt: skip
def test_the_fast_path_prints_and_exits_as_typer_does(args):
    assert check_arguments(args) is not None
    assert _run("pgaudit.launch", args) == _run("pgaudit.cli", args)


def test_a_plain_check_does_not_import_typer_pydantic_or_rich():
    code = (
        "import sys; sys.argv = ['pgaudit', 'check', 'examples/clean_score_first_ttt', '--format', 'json']\n"
        "from pgaudit.launch import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'pydantic', 'rich', 'click')), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"

"""Every output format on the bundled examples and on a PR-shaped repository, against committed snapshots.

A changed output fails here. If the change is intended, regenerate and review the diff:

    PGAUDIT_UPDATE_SNAPSHOTS=1 python -m pytest -q tests/test_snapshots.py && git diff tests/snapshots
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.gitrepo import GitRepo, build_pr_repo

SNAPSHOTS = ROOT / "tests" / "snapshots"
UPDATE = os.environ.get("PGAUDIT_UPDATE_SNAPSHOTS") == "1"
EXAMPLES = sorted(p.name for p in (ROOT / "examples").iterdir() if p.is_dir())
SHA = "4908dc46f0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"


def assert_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no snapshot {name}; create it with PGAUDIT_UPDATE_SNAPSHOTS=1")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), name, "actual", n=2))
        pytest.fail(f"{name} changed (PGAUDIT_UPDATE_SNAPSHOTS=1 regenerates it if intended):\n{diff[:6000]}")


def output(*args: str, expect: int) -> str:
    proc = run_cli(*args)
    assert proc.returncode == expect, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(("fmt", "suffix"), [("text", "txt"), ("json", "json"), ("sarif", "sarif"),
                                             ("github", "github.txt"), ("markdown", "md")])
def test_check_examples(fmt: str, suffix: str):
    assert_snapshot(f"check_examples.{suffix}", output("check", "examples", "--format", fmt, expect=1))


@pytest.mark.parametrize("example", EXAMPLES)
def test_review_examples(example: str):
    illegal = example.startswith("illegal_")  # review exits like check: 1 on an error finding
    text = output("review", f"examples/{example}", "--repo", "openai/parameter-golf", "--sha", SHA, "--pr", "1",
                  expect=1 if illegal else 0)
    assert_snapshot(f"review_{example}.md", text)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> GitRepo:
    return build_pr_repo(tmp_path_factory.mktemp("snap-repo") / "parameter-golf")


@pytest.mark.parametrize("head", ["pr-wrapped", "pr-mixed"])
@pytest.mark.parametrize(("fmt", "suffix"), [("sarif", "sarif"), ("github", "github.txt"), ("markdown", "md")])
def test_ci_outputs(repo: GitRepo, head: str, fmt: str, suffix: str):
    text = output("ci", "--repo-root", str(repo.path), "--base", "main", "--head", head, "--format", fmt, expect=1)
    assert_snapshot(f"ci_{head}.{suffix}", text)


@pytest.mark.parametrize("head", ["pr-wrapped", "pr-mixed"])
def test_ci_review(repo: GitRepo, head: str, tmp_path: Path):
    out = tmp_path / "review.md"
    run_cli("ci", "--repo-root", str(repo.path), "--base", "main", "--head", head, "--review", str(out),
            "--repo", "openai/parameter-golf", "--pr", "2")
    assert_snapshot(f"ci_{head}_review.md", out.read_text())

"""Shared test helpers: temporary submissions, the CLI as a subprocess, the shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_RECORDS = ROOT / "tests" / "fixtures" / "records"


@pytest.fixture
def make_folder(tmp_path: Path):
    """Write {name: text or bytes} into a fresh folder and return it."""

    def make(files: dict[str, str | bytes], name: str = "sub") -> Path:
        folder = tmp_path / name
        for rel, content in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    return make


def run_cli(
    *args: str, cwd: Path | None = None, timeout: int = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m pgaudit ARGS` in a subprocess: exit codes and stderr exactly as a user sees them.

    The GitHub Actions variables of the machine running the tests are dropped; `env` adds variables.
    """
    base = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    env = {**base, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    env.pop("PGAUDIT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "pgaudit", *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli



@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """The lineage index cache (ci reviews, `review --records`) goes to a temporary folder, not ~/.cache."""
    if "PGAUDIT_CACHE_DIR" not in os.environ:
        os.environ["PGAUDIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("pgaudit-cache"))
    yield

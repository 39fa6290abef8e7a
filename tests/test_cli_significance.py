"""`pgaudit significance`: table, JSON, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pgaudit.cli import app
from pgaudit.errors import PgauditError
from tests.fixture_paths import PR549, PR1019, SEQ2048

runner = CliRunner()


def test_text_table_reports_both_policies() -> None:
    result = runner.invoke(app, ["significance", "--seeds-from", str(PR1019), "--against", str(PR549)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "1.11508120" in out and "train_seed314.log:84" in out
    assert "README" in out and "late (PR #1902)" in out
    assert "-11.83" in out and "3.31" in out and out.count("PASS") == 2
    assert "mean delta -0.00464 bpb / -0.00784 nats" in out


def test_json_output() -> None:
    result = runner.invoke(app, ["significance", "--seeds-from", str(PR1019), "--against", str(PR549),
                                 "--format", "json"])
    data = json.loads(result.output)
    assert round(data["late_policy"]["t"], 2) == -11.83 and data["late_policy"]["passes"] is True
    assert data["readme_policy"]["unit"] == "nats" and data["readme_policy"]["margin"] == 0.005
    assert data["candidate"]["seeds"] == [314, 42, 999]


def test_exit_code_1_when_no_policy_passes() -> None:
    result = runner.invoke(app, ["significance", "--seeds-from", str(PR549), "--against", str(PR1019)])
    assert result.exit_code == 1 and result.output.count("FAIL") == 2


def test_against_values() -> None:
    result = runner.invoke(app, ["significance", "--seeds-from", str(PR1019), "--against-values",
                                 "1.11922988,1.12002032,1.11888882", "--format", "json"])
    data = json.loads(result.output)
    assert data["readme_policy"]["unit"] == "bpb" and round(data["late_policy"]["t"], 2) == -11.83


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --against"),
        (["--against", str(PR549), "--against-values", "1.1"], "exactly one of --against"),
        (["--against-values", "1.1,x"], "comma-separated numbers"),
        (["--against", "/nonexistent/folder"], "no such folder"),
        (["--against", str(PR549), "--unit", "bits"], "--unit must be"),
    ],
)
def test_bad_input_raises_a_pgaudit_error(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["significance", "--seeds-from", str(PR1019), *args])
    assert isinstance(result.exception, PgauditError) and message in str(result.exception)
    assert result.exception.exit_code == 2


def test_bad_input_through_main_is_one_line_and_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "pgaudit", "significance", "--seeds-from", str(PR1019),
                           "--against-values", "1.1,x"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "comma-separated numbers" in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_early_readme_convention_reproduces_pr49() -> None:
    # 2026-03-18_LongContextSeq2048 README: one-sample vs 1.2243657 - 0.005 (margin in bpb): t=31.42, p=0.00051.
    result = runner.invoke(app, ["significance", "--seeds-from", str(SEQ2048), "--against-values", "1.2243657",
                                 "--margin-in-bpb", "--format", "json"])
    data = json.loads(result.output)["readme_policy"]
    assert round(data["t"], 2) == 31.42 and round(data["p"], 5) == 0.00051 and data["df"] == 2
    assert result.exit_code == 0

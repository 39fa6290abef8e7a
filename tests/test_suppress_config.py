"""Inline suppressions and [tool.pgaudit] configuration, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ROOT

NGRAM = (ROOT / "examples" / "illegal_ngram_cache" / "train_gpt.py").read_text()
KEY_LINE = "        full_key = ((ctx_hash ^ (tgt * PRIMES[0])) & mask).astype(np.int64)"


def findings(proc) -> list[dict]:
    return json.loads(proc.stdout)["findings"]


def script_folder(make_folder, code: str, extra: dict[str, str] | None = None) -> Path:
    return make_folder({"train_gpt.py": code, **(extra or {})})


def test_suppression_with_reason_keeps_the_finding_listed_but_inactive(cli, make_folder):
    code = NGRAM.replace(KEY_LINE, KEY_LINE + "  # pgaudit: ignore[PG101] -- research ablation, never submitted")
    proc = cli("check", str(script_folder(make_folder, code)), "--format", "json")
    assert proc.returncode == 0, proc.stdout
    [pg101] = [f for f in findings(proc) if f["code"] == "PG101"]
    assert pg101["suppressed"] is True and pg101["suppression_reason"] == "research ablation, never submitted"
    assert json.loads(proc.stdout)["summary"]["suppressed"] == 1


def test_suppression_on_the_line_above(cli, make_folder):
    code = NGRAM.replace(KEY_LINE, "        # pgaudit: ignore[PG1] -- prefix form, line above\n" + KEY_LINE)
    assert cli("check", str(script_folder(make_folder, code))).returncode == 0


def test_suppression_without_reason_is_malformed_and_suppresses_nothing(cli, make_folder):
    code = NGRAM.replace(KEY_LINE, KEY_LINE + "  # pgaudit: ignore[PG101]")
    proc = cli("check", str(script_folder(make_folder, code)), "--format", "json")
    assert proc.returncode == 1
    by_code = {f["code"]: f for f in findings(proc)}
    assert by_code["PG101"]["suppressed"] is False
    assert "a reason is required" in by_code["PG002"]["message"]


def test_unused_suppression_is_reported(cli, make_folder):
    code = NGRAM.replace("def main():", "def main():  # pgaudit: ignore[PG301] -- nothing to hide here")
    proc = cli("check", str(script_folder(make_folder, code)), "--format", "json")
    [unused] = [f for f in findings(proc) if f["code"] == "PG003"]
    assert "suppresses nothing" in unused["message"] and unused["severity"] == "warning"


def test_file_level_suppression(cli, make_folder):
    code = "# pgaudit: ignore-file[PG101] -- whole file is a documented negative example\n" + NGRAM
    assert cli("check", str(script_folder(make_folder, code))).returncode == 0


def test_config_select_ignore_severity_and_fail_on(cli, make_folder):
    folder = script_folder(
        make_folder,
        NGRAM,
        {"pyproject.toml": '[tool.pgaudit]\nfail-on = "warning"\n\n[tool.pgaudit.severity]\nPG101 = "warning"\n'},
    )
    proc = cli("check", str(folder), "--format", "json")
    assert [f["severity"] for f in findings(proc) if f["code"] == "PG101"] == ["warning"]
    assert proc.returncode == 1  # fail-on = warning
    assert cli("check", str(folder), "--fail-on", "error").returncode == 0  # the command line wins
    ignoring = script_folder(make_folder, NGRAM, {"pyproject.toml": '[tool.pgaudit]\nignore = ["PG1"]\n'})
    assert cli("check", str(ignoring)).returncode == 0
    assert cli("check", str(ignoring), "--no-config").returncode == 1


def test_policy_values_reach_the_validators(cli):
    root = ROOT / "examples" / "clean_score_first_ttt"
    # a 15,000,000-byte cap makes the example's 15.7 MB artifacts over the cap
    proc = cli("check", str(root), "--format", "json", "--config", str(ROOT / "tests" / "data" / "small_cap.toml"))
    assert any(f["code"] == "PG501" and f["severity"] == "error" for f in findings(proc))


def test_bad_config_is_a_one_line_usage_error(cli, make_folder, tmp_path: Path):
    folder = script_folder(make_folder, NGRAM, {"pyproject.toml": '[tool.pgaudit]\nselcet = ["PG1"]\n'})
    proc = cli("check", str(folder))
    assert proc.returncode == 2 and "unknown key(s) in [tool.pgaudit]: selcet" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[tool.pgaudit\n")
    proc = cli("check", str(folder), "--config", str(broken))
    assert proc.returncode == 2 and "invalid TOML" in proc.stderr

"""The gate the audited author cannot switch off: under `ci`, `review` and `check --strict`, inline
suppressions are reported (PG004) rather than honoured and configuration comes from the repository root
(ci: the base revision) or the command line; a baseline file accepts known findings explicitly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import ROOT, run_cli
from tests.gitrepo import GitRepo

EXAMPLES = ROOT / "examples"
TRACK = "records/track_10min_16mb"
KEY_LINE = "        full_key = ((ctx_hash ^ (tgt * PRIMES[0])) & mask).astype(np.int64)"
REASON = "research ablation, never submitted"
OWN_CONFIG = '[tool.pgaudit]\nignore = ["PG1"]\n\n[tool.pgaudit.severity]\nPG101 = "info"\n'


def hostile_folder(dest: Path) -> Path:
    """The illegal n-gram example with everything an author might try: its own pyproject.toml ignore list and
    severity override, and an inline suppression with a reason on the offending line."""
    shutil.copytree(EXAMPLES / "illegal_ngram_cache", dest)
    script = dest / "train_gpt.py"
    script.write_text(script.read_text().replace(KEY_LINE, KEY_LINE + f"  # pgaudit: ignore[PG101] -- {REASON}"))
    (dest / "pyproject.toml").write_text(OWN_CONFIG)
    return dest


def report(proc) -> dict:
    return json.loads(proc.stdout)


def test_check_honours_the_authors_own_suppression_and_config_and_says_so(tmp_path: Path):
    folder = hostile_folder(tmp_path / "rec")
    proc = run_cli("check", str(folder), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    data = report(proc)
    assert data["run_config"]["gate"] is False
    assert data["run_config"]["config"] == "rec/pyproject.toml"
    [listed] = data["suppressions"]
    assert listed["codes"] == ["PG101"] and listed["reason"] == REASON and listed["honoured"] is True


def test_strict_ignores_the_folders_config_and_reports_the_suppression(tmp_path: Path):
    folder = hostile_folder(tmp_path / "rec")
    proc = run_cli("check", "--strict", str(folder), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    data = report(proc)
    assert data["run_config"]["gate"] is True and data["run_config"]["config"] is None
    by_code = {f["code"]: f for f in data["findings"]}
    assert by_code["PG101"]["severity"] == "error" and by_code["PG101"]["suppressed"] is False
    attempt = by_code["PG004"]
    line = next(n for n, text in enumerate((folder / "train_gpt.py").read_text().split("\n"), 1) if "ignore[PG101]" in text)
    assert attempt["line"] == line and "PG101" in attempt["message"] and REASON in attempt["message"]
    assert f"PG101 at line {line}" in attempt["message"]
    assert data["suppressions"][0]["honoured"] is False


def test_strict_reads_the_repository_roots_config(tmp_path: Path):
    folder = hostile_folder(tmp_path / "records" / "rec")
    (tmp_path / "pyproject.toml").write_text('[tool.pgaudit]\n\n[tool.pgaudit.severity]\nPG101 = "warning"\n')
    proc = run_cli("check", "--strict", str(folder), "--format", "json", cwd=tmp_path)
    data = report(proc)
    assert data["run_config"]["config"] == "pyproject.toml"
    assert [f["severity"] for f in data["findings"] if f["code"] == "PG101"] == ["warning"]
    assert proc.returncode == 0  # the maintainers' own configuration is honoured


def test_text_and_markdown_list_what_applied(tmp_path: Path):
    folder = hostile_folder(tmp_path / "rec")
    text = run_cli("check", "--strict", str(folder), cwd=tmp_path).stdout
    assert "configuration: none (defaults); gate" in text and "NOT honoured (PG004)" in text and REASON in text
    markdown = run_cli("check", str(folder), "--format", "markdown", cwd=tmp_path).stdout
    assert "What applied" in markdown and "pyproject.toml" in markdown and "honoured" in markdown


def test_review_does_not_honour_suppressions(tmp_path: Path):
    folder = hostile_folder(tmp_path / TRACK / "2026-05-01_Ngram")
    proc = run_cli("review", str(folder), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # review exits like check: the error stands
    assert "ILLEGAL under C1" in proc.stdout and "PG004" in proc.stdout


def _pr_repo(tmp_path: Path, base_config: str | None = None) -> GitRepo:
    repo = GitRepo(tmp_path / "repo")
    repo.write("README.md", "# stand-in\n")
    if base_config is not None:
        repo.write("pyproject.toml", base_config)
    repo.commit("base")
    repo.branch("pr")
    hostile_folder(repo.path / TRACK / "2026-05-01_Ngram")
    repo.commit("submission with its own ignore list and an inline suppression")
    return repo


def test_ci_fails_the_hostile_folder_and_sarif_shows_the_attempt(tmp_path: Path):
    repo = _pr_repo(tmp_path)
    sarif = tmp_path / "out.sarif"
    proc = run_cli("ci", "--base", "main", "--head", "pr", "--repo-root", str(repo.path), "--format", "json",
                   "--sarif", str(sarif))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = report(proc)
    assert data["run_config"]["gate"] is True and data["run_config"]["config"] is None
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    pg101 = [r for r in results if r["ruleId"] == "PG101"]
    assert pg101 and all("suppressions" not in r and r["level"] == "error" for r in pg101)
    assert any(r["ruleId"] == "PG004" for r in results)


def test_ci_reads_config_from_the_base_revision_not_from_the_pull_request(tmp_path: Path):
    repo = _pr_repo(tmp_path, base_config='[tool.pgaudit]\n\n[tool.pgaudit.severity]\nPG101 = "warning"\n')
    proc = run_cli("ci", "--base", "main", "--head", "pr", "--repo-root", str(repo.path), "--format", "json")
    data = report(proc)
    assert data["run_config"]["config"].endswith(":pyproject.toml")
    assert {f["severity"] for f in data["findings"] if f["code"] == "PG101"} == {"warning"}
    # A pull request that rewrites the root config to ignore everything changes nothing but its own scope.
    repo.write("pyproject.toml", '[tool.pgaudit]\nignore = ["PG"]\n')
    repo.commit("and silence the gate")
    proc = run_cli("ci", "--base", "main", "--head", "pr", "--repo-root", str(repo.path), "--format", "json")
    codes = {f["code"] for f in report(proc)["findings"]}
    assert {"PG101", "PG004", "PG511"} <= codes and proc.returncode == 1


def test_baseline_accepts_listed_findings_across_line_shifts(tmp_path: Path):
    folder = tmp_path / "rec"
    shutil.copytree(EXAMPLES / "illegal_ngram_cache", folder)
    baseline = tmp_path / "baseline.json"
    written = run_cli("check", "--strict", str(folder), "--write-baseline", str(baseline), cwd=tmp_path)
    assert written.returncode == 0 and "wrote" in written.stderr
    entries = json.loads(baseline.read_text())["findings"]
    assert any(e["code"] == "PG101" for e in entries)
    script = folder / "train_gpt.py"
    script.write_text("# a new comment line\n# and another\n" + script.read_text())  # every line moves down
    proc = run_cli("check", "--strict", str(folder), "--baseline", str(baseline), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    data = report(proc)
    accepted = [f for f in data["findings"] if f["code"] == "PG101"]
    assert accepted and all(f["suppressed"] and f["suppression_kind"] == "external" for f in accepted)
    assert data["run_config"]["baseline"]["matched"] == len(entries)
    # An entry matches its own path only: the same finding in another folder is not accepted by it.
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    proc = run_cli("check", "--strict", str(other), "--baseline", str(baseline), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1 and report(proc)["run_config"]["baseline"]["matched"] == 0


def test_bad_baseline_is_a_one_line_usage_error(tmp_path: Path):
    bad = tmp_path / "b.json"
    bad.write_text('{"findings": 3}')
    proc = run_cli("check", str(EXAMPLES / "dead_ngram_disabled"), "--baseline", str(bad))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a pgaudit baseline" in proc.stderr


# --- logs are claims ---------------------------------------------------------------------------------------


def spoofed_log_folder(dest: Path) -> Path:
    """The disabled-cache example with the default flipped so the banned cache runs, its logs unchanged: they
    still say `ngram_cache:disabled`."""
    shutil.copytree(EXAMPLES / "dead_ngram_disabled", dest)
    script = dest / "train_gpt.py"
    text = script.read_text()
    assert 'os.environ.get("NGRAM_CACHE", "0")' in text
    script.write_text(text.replace('os.environ.get("NGRAM_CACHE", "0")', 'os.environ.get("NGRAM_CACHE", "1")'))
    assert "ngram_cache:disabled" in (dest / "train_seed1337.log").read_text()
    return dest


def test_a_log_line_cannot_turn_off_code_the_defaults_run(tmp_path: Path):
    folder = spoofed_log_folder(tmp_path / TRACK / "2026-05-01_Spoof")
    proc = run_cli("check", "--strict", str(folder), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    pg101 = [f for f in report(proc)["findings"] if f["code"] == "PG101"]
    assert pg101 and all(f["severity"] == "error" and f["reachable"] is True for f in pg101)
    [first] = pg101[:1]
    assert first["reachability"]["logged"] is False and first["reachability"]["default"] is True
    assert "ngram_cache:disabled" in first["reachability"]["detail"]
    assert "the logs and the code disagree" in first["reachability"]["detail"]


def test_the_documented_command_decides_and_logs_still_raise(tmp_path: Path):
    """A documented `NGRAM_CACHE=0` command turns the flipped default off again (the log agrees); the unflipped
    example whose log shows the cache enabled is an error (logs may show that code ran)."""
    folder = spoofed_log_folder(tmp_path / "a" / "rec")
    readme = folder / "README.md"
    readme.write_text(readme.read_text().replace("SEED=1337 torchrun", "NGRAM_CACHE=0 SEED=1337 torchrun"))
    proc = run_cli("check", "--strict", str(folder), "--format", "json", cwd=tmp_path)
    # not run as documented, but the defaults would run it: a warning, not an error
    assert {f["severity"] for f in report(proc)["findings"] if f["code"] == "PG101"} == {"warning"}
    assert proc.returncode == 0
    shown = tmp_path / "b" / "rec"
    shutil.copytree(EXAMPLES / "dead_ngram_disabled", shown)
    for log in shown.glob("*.log"):
        log.write_text(log.read_text().replace("ngram_cache:disabled", "ngram_cache:enabled"))
    proc = run_cli("check", "--strict", str(shown), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1 and "error" in {f["severity"] for f in report(proc)["findings"] if f["code"] == "PG101"}


def test_ci_fails_a_spoofed_log_line(tmp_path: Path):
    repo = GitRepo(tmp_path / "repo")
    repo.write("README.md", "# stand-in\n")
    repo.commit("base")
    repo.branch("pr")
    spoofed_log_folder(repo.path / TRACK / "2026-05-01_Spoof")
    repo.commit("the cache runs by default; the logs say it is disabled")
    proc = run_cli("ci", "--base", "main", "--head", "pr", "--repo-root", str(repo.path), "--format", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    pg101 = [f for f in report(proc)["findings"] if f["code"] == "PG101"]
    assert pg101 and {f["severity"] for f in pg101} == {"error"}
    assert any("the logs and the code disagree" in f["reachability"]["detail"] for f in pg101)

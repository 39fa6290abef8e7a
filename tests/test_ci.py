"""`pgaudit ci` on a git repository built here: one branch per pull-request shape, audited from git itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgaudit.ci import Git, read_scope, record_folder_of, run_ci
from pgaudit.engine import AuditOptions
from tests.conftest import run_cli
from tests.gitrepo import TRACK, GitRepo, build_pr_repo
from tests.test_cli import assert_one_line_error


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> GitRepo:
    return build_pr_repo(tmp_path_factory.mktemp("pr-repo") / "parameter-golf")


def ci(repo: GitRepo, head: str, *args: str, env: dict[str, str] | None = None):
    return run_cli("ci", "--repo-root", str(repo.path), "--base", "main", "--head", head, *args, env=env)


def ci_json(repo: GitRepo, head: str) -> tuple[int, dict]:
    proc = ci(repo, head, "--format", "json")
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def scope_codes(report: dict) -> list[tuple[str, str]]:
    return [(f["path"], f["severity"]) for f in report["findings"] if f["code"] == "PG511"]


# --- the verdicts per pull-request shape ---------------------------------------------------------------


def test_clean_submission_passes(repo):
    rc, report = ci_json(repo, "pr-clean")
    assert rc == 0
    assert report["findings"] == []
    ci_scope = report["run_config"]["ci"]
    assert ci_scope["kind"] == "records"
    assert ci_scope["folders"] == [
        {"path": f"{TRACK}/2026-05-01_CleanTTT", "new": True, "deleted": False, "files": 6, "audited": True}
    ]
    assert [f["path"] for f in report["files"]] == [f"{TRACK}/2026-05-01_CleanTTT/train_gpt.py"]


def test_illegal_submission_fails_with_repository_relative_line(repo):
    rc, report = ci_json(repo, "pr-illegal")
    assert rc == 1
    [finding] = report["findings"]
    assert (finding["code"], finding["severity"], finding["line"]) == ("PG101", "error", 64)
    assert finding["path"] == f"{TRACK}/2026-05-01_NgramCache/train_gpt.py"


def test_payload_finding_keeps_payload_and_wrapper_lines(repo):
    rc, report = ci_json(repo, "pr-wrapped")
    assert rc == 1
    [finding] = report["findings"]
    assert (finding["line"], finding["in_payload"], finding["wrapper_line"]) == (76, True, 2)


def test_root_files_in_a_records_pr_are_flagged(repo):
    rc, report = ci_json(repo, "pr-mixed")
    assert rc == 1
    assert scope_codes(report) == [("README.md", "error"), ("train_gpt.py", "error")]
    message = next(f["message"] for f in report["findings"] if f["path"] == "README.md")
    assert "adds the record folder" in message and "changes `README.md`" in message


def test_two_folders_in_one_pr_are_flagged(repo):
    rc, report = ci_json(repo, "pr-two-folders")
    assert rc == 1
    flagged = scope_codes(report)
    assert len(flagged) == 2 and all(sev == "error" for _, sev in flagged)
    assert all("changes 2 record folders" in f["message"] for f in report["findings"] if f["code"] == "PG511")
    assert len(report["run_config"]["ci"]["folders"]) == 2  # both are still audited
    assert sum(f["role"] == "entry" for f in report["files"]) == 2


def test_changing_a_merged_record_is_flagged(repo):
    rc, report = ci_json(repo, "pr-existing")
    assert rc == 1
    [finding] = report["findings"]
    assert finding["code"] == "PG511" and "already exists at the base revision" in finding["message"]
    assert finding["path"] == f"{TRACK}/2026-03-17_NaiveBaseline/README.md"


def test_renamed_folder_is_a_delete_and_an_add(repo):
    rc, report = ci_json(repo, "pr-rename")
    assert rc == 1
    folders = {f["path"]: f for f in report["run_config"]["ci"]["folders"]}
    assert folders[f"{TRACK}/2026-03-17_NaiveBaseline"]["deleted"] is True
    assert folders[f"{TRACK}/2026-03-17_Baseline"]["new"] is True
    messages = [f["message"] for f in report["findings"] if f["code"] == "PG511"]
    assert any("this pull request deletes it" in m for m in messages)
    assert any("changes 2 record folders" in m for m in messages)


def test_folder_name_with_spaces_and_comma(repo):
    rc, report = ci_json(repo, "pr-spaces")
    assert rc == 1
    [finding] = report["findings"]
    assert finding["path"] == f"{TRACK}/2026-05-01_int6 STE QAT, bigram/train_gpt.py"
    sarif = json.loads(ci(repo, "pr-spaces", "--format", "sarif").stdout)
    uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == f"{TRACK}/2026-05-01_int6%20STE%20QAT%2C%20bigram/train_gpt.py"
    github = ci(repo, "pr-spaces", "--format", "github").stdout.splitlines()[0]
    assert github.startswith(f"::error file={TRACK}/2026-05-01_int6 STE QAT%2C bigram/train_gpt.py,line=64,")


def test_glob_characters_and_a_symlink_in_the_folder(repo):
    folder = f"{TRACK}/2026-05-01_[x]*?"
    repo.branch("pr-glob")
    repo.copy_example("illegal_ngram_cache", folder)
    (repo.path / folder / "link.py").symlink_to("../../../train_gpt.py")
    repo.commit("glob characters and a symlink")
    repo.git("checkout", "-q", "main")
    rc, report = ci_json(repo, "pr-glob")
    assert rc == 1
    found = {(f["code"], f["severity"], f["path"]) for f in report["findings"]}
    assert ("PG101", "error", f"{folder}/train_gpt.py") in found
    assert ("PG511", "warning", f"{folder}/link.py") in found
    assert report["run_config"]["ci"]["folders"][0]["new"] is True


def test_folder_without_script(repo):
    rc, report = ci_json(repo, "pr-no-script")
    assert rc == 1
    [finding] = report["findings"]
    assert finding["code"] == "PG511" and "has no Python script" in finding["message"]


# --- core-code and other pull requests ----------------------------------------------------------------


def test_core_code_pr_within_the_line_limit(repo):
    proc = ci(repo, "pr-root-ok", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["findings"] == [] and report["run_config"]["ci"]["kind"] == "core-code"


def test_core_code_pr_over_the_line_limit_is_a_hard_error(repo):
    rc, report = ci_json(repo, "pr-root-long")
    assert rc == 1
    [finding] = report["findings"]
    # the record-folder validator's own PG505, at the root script's hard stop
    assert (finding["code"], finding["severity"], finding["path"], finding["line"]) == ("PG505", "error", "train_gpt.py", 1501)
    assert "1,600 lines" in finding["message"] and "R7" in finding["catalogue_ids"]


def test_no_record_folder_changed_exits_zero_with_a_message(repo):
    proc = ci(repo, "pr-docs")
    assert proc.returncode == 0
    assert "no record folder changed" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_same_commit_is_an_empty_diff(repo):
    proc = ci(repo, "main")
    assert proc.returncode == 0
    assert "no file changed" in proc.stderr


# --- bad input: one line, exit 2 ----------------------------------------------------------------------


def test_base_not_found(repo):
    proc = run_cli("ci", "--repo-root", str(repo.path), "--base", "no-such-branch")
    assert_one_line_error(proc, "--base no-such-branch", "revision not found")


def test_head_not_found(repo):
    assert_one_line_error(ci(repo, "deadbeef" * 5), "--head", "revision not found")


def test_option_looking_revision_is_not_an_option(repo):
    assert_one_line_error(ci(repo, "--output=/tmp/x"), "revision not found")


def test_not_a_git_repository(tmp_path: Path):
    proc = run_cli("ci", "--repo-root", str(tmp_path), "--base", "main")
    assert_one_line_error(proc, "not a git repository")


def test_unrelated_histories_have_no_merge_base(tmp_path: Path, repo):
    other = GitRepo(tmp_path / "other")
    other.write("x.txt", "x\n")
    other.commit("unrelated")
    repo.git("fetch", "-q", str(other.path), "main:unrelated")
    assert_one_line_error(ci(repo, "unrelated"), "no common ancestor")


def test_bad_format(repo):
    assert_one_line_error(ci(repo, "pr-clean", "--format", "xml"), "unknown --format 'xml'")


# --- outputs at once -------------------------------------------------------------------------------------


def test_outputs_at_once_under_github_actions(repo, tmp_path: Path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    sarif = tmp_path / "out" / "pgaudit.sarif"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    proc = ci(repo, "pr-illegal", "--sarif", str(sarif), env=env)
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"::error file={TRACK}/2026-05-01_NgramCache/train_gpt.py,line=64,")
    text = summary.read_text()
    assert text.startswith("earlier step\n## pgaudit: NOT clean")  # appended, not overwritten
    assert "**ILLEGAL under C1**" in text
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["PG101"]


def test_review_file_per_folder_with_permalinks(repo, tmp_path: Path):
    out = tmp_path / "review.md"
    proc = ci(repo, "pr-mixed", "--review", str(out), "--repo", "openai/parameter-golf", "--pr", "7")
    assert proc.returncode == 1
    head = repo.git("rev-parse", "pr-mixed").strip()
    text = out.read_text()
    assert text.startswith("## pgaudit review: BigramHash + score-first TTT (example) (claimed val_bpb 1.11891799)")
    assert "**Verdict: NEEDS FIXES.**" in text
    assert "| pull request scope (R29) | ❌ fail | PG511 at `README.md`, PG511 at `train_gpt.py`. |" in text
    assert f"https://github.com/openai/parameter-golf/blob/{head}/README.md" in text
    assert "[PR #7](https://github.com/openai/parameter-golf/pull/7)" in text


def test_review_file_for_a_folder_that_could_not_be_audited(repo, tmp_path: Path):
    out = tmp_path / "review.md"
    assert ci(repo, "pr-no-script", "--review", str(out)).returncode == 1
    text = out.read_text()
    assert text.startswith("## pgaudit review: 2026-05-01\\_OnlyReadme (no val_bpb claimed in submission.json)")
    assert "**Verdict: NEEDS FIXES.** 1 error: PG511 at `README.md`." in text
    assert "| C1 causality | ❔ not checked | No script could be audited. |" in text


def test_review_of_a_clean_pr_says_the_scope_check_passed(repo, tmp_path: Path):
    out = tmp_path / "review.md"
    assert ci(repo, "pr-clean", "--review", str(out)).returncode == 0
    assert "| pull request scope (R29) | ✅ pass | PG511 ran on the pull request: no problem found. |" in out.read_text()


def test_review_file_for_a_pr_that_only_deletes_a_record(repo, tmp_path: Path):
    repo.branch("pr-delete")
    repo.remove(f"{TRACK}/2026-03-17_NaiveBaseline")
    repo.commit("delete a merged record")
    repo.git("checkout", "-q", "main")
    out = tmp_path / "review.md"
    assert ci(repo, "pr-delete", "--review", str(out), "--repo", "o/n").returncode == 1
    text = out.read_text()
    assert text.startswith("## pgaudit review: pull request (no val_bpb claimed in submission.json)")
    assert "this pull request deletes it" in text
    assert f"**Where:** `{TRACK}/2026-03-17_NaiveBaseline/README.md`" in text  # no link to a deleted file


# --- the library: scope from git ---------------------------------------------------------------------------


def test_record_folder_of():
    assert record_folder_of(f"{TRACK}/x/train_gpt.py") == f"{TRACK}/x"
    assert record_folder_of(f"{TRACK}/x/logs/a.txt") == f"{TRACK}/x"
    assert record_folder_of(f"{TRACK}/README.md") is None
    assert record_folder_of("records/other/x/train_gpt.py") is None
    assert record_folder_of("train_gpt.py") is None


def test_scope_reads_deletions_and_additions(repo):
    scope = read_scope(Git(repo.path), "main", "pr-docs")
    assert [(c.status, c.path) for c in scope.changes] == [("D", "README.md"), ("A", "docs/notes.md")]
    assert scope.kind == "other" and scope.folders == []


def test_audit_uses_the_head_commit_not_the_working_tree(repo):
    repo.git("checkout", "-q", "main")  # the working tree has no submission at all
    result = run_ci(repo.path, "main", "pr-illegal", AuditOptions())
    assert [f.code for f in result.report.findings] == ["PG101"]

"""benchmarks/pr_sweep.py on a generated repository shaped like openai/parameter-golf with refs/pull/N/head.

Which folders count as added by a pull request, deduplication by tree, skipped large blobs, incremental
materialization, and a real audit of each distinct folder by the worker processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.gitrepo import build_pr_repo

SCRIPT = ROOT / "benchmarks" / "pr_sweep.py"
NON_RECORD = "records/track_non_record_16mb"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = build_pr_repo(tmp_path_factory.mktemp("mirror") / "repo")
    repo.branch("pr-big")
    repo.copy_example("clean_score_first_ttt", f"{NON_RECORD}/2026-05-02_Big")
    repo.write(f"{NON_RECORD}/2026-05-02_Big/weights.bin", b"\0" * 600_000)
    repo.commit("a record folder with a large blob")
    repo.git("checkout", "-q", "main")
    branches = ["pr-clean", "pr-illegal", "pr-wrapped", "pr-mixed", "pr-two-folders", "pr-existing", "pr-rename",
                "pr-spaces", "pr-root-ok", "pr-root-long", "pr-docs", "pr-no-script", "pr-big"]  # fmt: skip
    for number, branch in enumerate(branches, start=1):  # PR heads live under refs/pull/, as on GitHub
        repo.git("update-ref", f"refs/pull/{number}/head", branch)
    return repo.path


def sweep(mirror: Path, corpus: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--mirror", str(mirror), "--corpus", str(corpus),
                           "--max-bytes", "500000", "--jobs", "1", "--engine", "workers", *extra],
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_sweep_counts_dedupes_materializes_and_audits(mirror: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    done = sweep(mirror, corpus)
    assert done.returncode == 0, done.stderr
    data = json.loads((corpus / "sweep" / "results.json").read_text())
    meta = data["meta"]
    # Added: CleanTTT (PRs 1, 4, 5), NgramCache (2), PreQuantTTT (3), DeadNgram (5), the renamed Baseline (7),
    # the name with spaces (8), OnlyReadme (12), Big (13). CleanTTT and the renamed Baseline are copies of one
    # example (one tree), and so are NgramCache and the folder with spaces.
    assert meta["folders"] == 10
    assert meta["unique_trees"] == 6
    assert meta["existing_folders_changed"] == 1  # pr-existing edits a merged record: not an added folder
    assert meta["prs_adding_a_folder"] == 9
    assert meta["materialized"]["written_trees"] == 6 and meta["materialized"]["over_max_bytes"] == 1
    prs = corpus / "prs"
    assert (prs / "1" / "track_10min_16mb" / "2026-05-01_CleanTTT" / "train_gpt.py").is_file()
    assert not (prs / "4").exists()  # PR 4's folder is PR 1's tree: written and audited once
    assert not (prs / "8").exists()  # the folder with spaces is PR 2's tree
    big = prs / "13" / "track_non_record_16mb" / "2026-05-02_Big"
    assert (big / "train_gpt.py").is_file() and not (big / "weights.bin").exists()

    results = {Path(r["path"]).relative_to(prs).as_posix(): r for r in data["results"]}
    assert len(results) == 6
    assert not any(r["crash"] or r["timeout"] for r in results.values())
    assert "PG101" in results["2/track_10min_16mb/2026-05-01_NgramCache"]["codes"]["error"]
    only_readme = results["12/track_10min_16mb/2026-05-01_OnlyReadme"]
    assert only_readme["exit_code"] == 2 and only_readme["errors"]
    assert all(r["seconds"] > 0 and r["cpu_seconds"] > 0 for r in results.values())

    summary = (corpus / "sweep" / "summary.md").read_text()
    assert "crashes (tracebacks, internal errors, other exit codes): 0; timeouts: 0" in summary
    assert "1  no Python file to audit in this directory" in summary
    assert (corpus / "sweep" / "tracebacks.txt").read_text() == "no traceback\n"
    assert summary.strip() in done.stdout


def test_materialization_is_incremental(mirror: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    first = sweep(mirror, corpus, "--materialize-only")
    assert first.returncode == 0, first.stderr
    again = sweep(mirror, corpus, "--materialize-only")
    assert "'written_trees': 0, 'already_there': 6" in again.stderr


def test_error_kinds_blank_paths_quotes_and_numbers() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from pr_sweep import error_kind, percentile
    finally:
        sys.path.remove(str(SCRIPT.parent))
    one = error_kind("train_gpt.py: line 12: invalid syntax in 'x = ('")
    two = error_kind("records/a/b/train_gpt.py: line 7: invalid syntax in 'y ='")
    assert one == two
    assert (
        error_kind("no Python file to audit in this directory") == "no Python file to audit in this directory"
    )
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0 and percentile([1.0, 2.0, 10.0], 0.95) == 10.0


def test_jobs_engine_falls_back_to_the_workers_when_its_run_writes_no_report(
    mirror: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    done = sweep(mirror, corpus, "--engine", "jobs")
    assert done.returncode == 0, done.stderr
    data = json.loads((corpus / "sweep" / "results.json").read_text())
    jobs_run = data["jobs_run"]
    assert jobs_run is not None and jobs_run["exit_code"] is not None
    # Whether or not this pgaudit has --jobs (and whether one folder without a script stops the others),
    # every distinct folder ends up audited and timed by the workers: 6 is below the default time sample.
    assert len(data["results"]) == 6 and not any(r["crash"] for r in data["results"])
    summary = (corpus / "sweep" / "summary.md").read_text()
    assert ("FAILED: no report" in summary) == jobs_run["failed"]
    if jobs_run["failed"]:
        assert "(the --jobs run failed)" in summary

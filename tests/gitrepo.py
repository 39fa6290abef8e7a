"""A throwaway git repository shaped like openai/parameter-golf, with pull-request branches.

Commit dates, names and the default branch are fixed, so commit ids (and every output that names them) are
the same on every machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
TRACK = "records/track_10min_16mb"
_ENV = {
    "GIT_AUTHOR_NAME": "pgaudit tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "pgaudit tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_AUTHOR_DATE": "2026-05-01T12:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-05-01T12:00:00+00:00",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}

ROOT_SCRIPT = '"""The baseline (stand-in).\n\nHard stop: never longer than 1500 lines."""\n' + "x = 1\n" * 97


class GitRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        env = {**os.environ, **_ENV}
        proc = subprocess.run(["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=True)
        return proc.stdout

    def write(self, rel: str, content: str | bytes) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")

    def copy_example(self, example: str, folder: str) -> None:
        shutil.copytree(EXAMPLES / example, self.path / folder)

    def remove(self, rel: str) -> None:
        self.git("rm", "-q", "-r", "--", rel)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def branch(self, name: str, start: str = "main") -> None:
        self.git("checkout", "-q", "-B", name, start)


def build_pr_repo(path: Path) -> GitRepo:
    """main with the baseline and one merged record; one branch per pull-request shape the tests need."""
    repo = GitRepo(path)
    repo.write("README.md", "# Parameter Golf (test stand-in)\n")
    repo.write("train_gpt.py", ROOT_SCRIPT)
    repo.copy_example("clean_score_first_ttt", f"{TRACK}/2026-03-17_NaiveBaseline")
    repo.commit("base")

    repo.branch("pr-clean")
    repo.copy_example("clean_score_first_ttt", f"{TRACK}/2026-05-01_CleanTTT")
    repo.commit("clean submission")

    repo.branch("pr-illegal")
    repo.copy_example("illegal_ngram_cache", f"{TRACK}/2026-05-01_NgramCache")
    repo.commit("illegal n-gram cache submission")

    repo.branch("pr-wrapped")
    repo.copy_example("illegal_prequant_ttt_wrapped", f"{TRACK}/2026-05-01_PreQuantTTT")
    repo.commit("pre-quant TTT in a self-extracting wrapper")

    repo.branch("pr-mixed")
    repo.copy_example("clean_score_first_ttt", f"{TRACK}/2026-05-01_CleanTTT")
    repo.write("README.md", "# Parameter Golf (test stand-in)\n\nMy record is the best.\n")
    repo.write("train_gpt.py", ROOT_SCRIPT + "y = 2\n")
    repo.commit("submission that also edits root files")

    repo.branch("pr-two-folders")
    repo.copy_example("clean_score_first_ttt", f"{TRACK}/2026-05-01_CleanTTT")
    repo.copy_example("dead_ngram_disabled", "records/track_non_record_16mb/2026-05-01_DeadNgram")
    repo.commit("two submissions in one PR")

    repo.branch("pr-existing")
    repo.write(f"{TRACK}/2026-03-17_NaiveBaseline/README.md", "Edited after merge.\n")
    repo.commit("edit a merged record")

    repo.branch("pr-rename")
    repo.git("mv", f"{TRACK}/2026-03-17_NaiveBaseline", f"{TRACK}/2026-03-17_Baseline")
    repo.commit("rename a merged record")

    repo.branch("pr-spaces")
    repo.copy_example("illegal_ngram_cache", f"{TRACK}/2026-05-01_int6 STE QAT, bigram")
    repo.commit("folder name with spaces and a comma")

    repo.branch("pr-root-ok")
    repo.write("train_gpt.py", ROOT_SCRIPT + "y = 2\n")
    repo.write("README.md", "# Parameter Golf (test stand-in)\n\nClarified.\n")
    repo.commit("tune the baseline")

    repo.branch("pr-root-long")
    repo.write("train_gpt.py", ROOT_SCRIPT + "y = 2\n" * 1500)
    repo.commit("grow the baseline past the limit")

    repo.branch("pr-docs")
    repo.write("docs/notes.md", "notes\n")
    repo.remove("README.md")
    repo.commit("docs only")

    repo.branch("pr-no-script")
    repo.write(f"{TRACK}/2026-05-01_OnlyReadme/README.md", "I will add the script later.\n")
    repo.commit("folder without a script")

    repo.git("checkout", "-q", "main")
    return repo

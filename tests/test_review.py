"""`pgaudit review`: the comment a reviewer posts -- verdict, checks, permalinks, excerpts, determinism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.test_cli import assert_one_line_error

SHA = "4908dc46f0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
LINKS = ("--repo", "openai/parameter-golf", "--sha", SHA, "--pr", "123")


def review(*args: str, cwd: Path | None = None) -> str:
    proc = run_cli("review", *args, cwd=cwd)
    assert proc.returncode in (0, 1), proc.stderr  # exits like `check`: 1 when an error is found
    assert proc.stderr == ""
    return proc.stdout


@pytest.mark.parametrize(
    ("example", "verdict"),
    [
        ("clean_score_first_ttt", "**Verdict: LOOKS CLEAN.** No error or warning from the checks that ran."),
        ("dead_ngram_disabled", "**Verdict: LOOKS CLEAN.** No error or warning from the checks that ran "
                                "(1 informational note)."),
        ("illegal_ngram_cache", "**Verdict: ILLEGAL under C1.** 1 error: PG101 at `train_gpt.py:64`."),
        ("illegal_prequant_ttt_wrapped", "**Verdict: ILLEGAL under C3.** 1 error: PG301 at "
                                         "`train_gpt.py:76 (payload)`."),
    ],
)
def test_verdict_line_per_example(example: str, verdict: str):
    text = review(f"examples/{example}")
    assert text.splitlines()[4] == verdict
    claims = json.loads((ROOT / "examples" / example / "submission.json").read_text())
    assert text.startswith(f"## pgaudit review: {claims['name'].replace('+', '+')} (claimed val_bpb {claims['val_bpb']})")


def test_checks_table_says_pass_only_for_what_ran():
    text = review("examples/illegal_ngram_cache")
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1] for line in text.splitlines()
            if line.startswith("| ") and " | " in line and not line.startswith("| Check")}
    assert rows["C1 causality"] == "❌ fail"
    assert rows["C3 score before update"] == "✅ pass"  # PG301 ran on the script
    assert rows["C2 normalization"] == "✅ pass"  # PG201 ran on the script
    text = review("examples/illegal_ngram_cache", "--select", "PG1,PG2,PG3")  # no validator selected
    selected = {line.split(" | ")[0].strip("| "): line.split(" | ")[1] for line in text.splitlines()
                if line.startswith("| ") and " | " in line and not line.startswith("| Check")}
    assert selected["artifact size"] == selected["train time"] == "❔ not checked"
    assert selected["data access"] == "❔ not checked"  # PG4xx left out by --select
    assert rows["pull request scope (R29)"] == "❔ not checked"  # a folder alone has no pull request
    assert len(rows) == 12


def test_finding_has_permalink_excerpt_ruling_and_fix():
    text = review("examples/illegal_ngram_cache", *LINKS)
    url = f"https://github.com/openai/parameter-golf/blob/{SHA}/examples/illegal_ngram_cache/train_gpt.py#L64"
    assert f"**Where:** [`examples/illegal_ngram_cache/train_gpt.py:64`]({url})" in text
    assert "> 64 |         full_key = ((ctx_hash ^ (tgt * PRIMES[0])) & mask).astype(np.int64)" in text
    assert "**Ruling:** <https://github.com/openai/parameter-golf/pull/779#issuecomment-4145781641>" in text
    assert "**Fix:** Score every position" in text
    assert "[PR #123](https://github.com/openai/parameter-golf/pull/123)" in text


def test_payload_finding_explains_the_wrapper():
    text = review("examples/illegal_prequant_ttt_wrapped", *LINKS)
    url = f"https://github.com/openai/parameter-golf/blob/{SHA}/examples/illegal_prequant_ttt_wrapped/train_gpt.py#L2"
    assert f"[`examples/illegal_prequant_ttt_wrapped/train_gpt.py` line 2]({url}), the self-extracting wrapper" in text
    assert "line 76 of the 83-line code it decodes (b85decode+lzma(raw))" in text
    assert "> 76 |         prequant_ttt_adapt(args, model, val_tokens)" in text  # from the decoded code


def test_not_checked_section_names_the_reproduction():
    text = review("examples/clean_score_first_ttt")
    section = text.split("### Not checked", 1)[1]
    assert "No reproduction run" in section and "pull request scope (R29)" in section
    assert "C2 normalization" not in section  # PG201 ran


def test_same_input_same_comment_from_anywhere(tmp_path: Path):
    first = review("examples/illegal_prequant_ttt_wrapped", *LINKS)
    second = review(str(ROOT / "examples/illegal_prequant_ttt_wrapped"), *LINKS, cwd=tmp_path)
    assert first == second
    assert str(ROOT) not in first and str(tmp_path) not in first


def test_copy_outside_git_keeps_the_records_path(tmp_path: Path):
    folder = tmp_path / "checkout" / "records" / "track_10min_16mb" / "2026-05-01_X"
    shutil.copytree(ROOT / "examples/illegal_ngram_cache", folder)
    text = review(str(folder), *LINKS)
    assert f"/blob/{SHA}/records/track_10min_16mb/2026-05-01_X/train_gpt.py#L64" in text
    assert str(tmp_path) not in text


def test_untrusted_submission_text_is_escaped(tmp_path: Path):
    folder = tmp_path / "sub"
    shutil.copytree(ROOT / "examples/illegal_ngram_cache", folder)
    claims = json.loads((folder / "submission.json").read_text())
    claims["name"] = "<img src=x onerror=alert(1)> @octocat | [click](https://evil.example) ```"
    claims["author"] = "</sub><script>x</script>"
    (folder / "submission.json").write_text(json.dumps(claims))
    text = review(str(folder))
    title = text.splitlines()[0]
    assert "<img" not in title and "@octocat" not in title and "[click]" not in title and "```" not in title
    assert "<script>" not in text
    assert text.count("| Check | Result | Evidence |") == 1


def test_bad_options_and_inputs(tmp_path: Path):
    folder = "examples/illegal_ngram_cache"
    assert_one_line_error(run_cli("review", folder, "--repo", "not a repo", "--sha", SHA), "--repo expects OWNER/NAME")
    assert_one_line_error(run_cli("review", folder, "--repo", "o/n", "--sha", "xyz"), "--sha expects a commit id")
    assert_one_line_error(run_cli("review", folder, "--repo", "o/n"), "--repo and --sha go together")
    assert_one_line_error(run_cli("review", folder, "--pr", "0"), "--pr expects a pull request number")
    assert_one_line_error(run_cli("review", f"{folder}/train_gpt.py"), "review takes a record folder")
    assert_one_line_error(run_cli("review", "examples"), "holds 4 record folders")
    assert_one_line_error(run_cli("review", str(tmp_path / "missing")), "no such file or directory")


def test_output_file(tmp_path: Path):
    out = tmp_path / "comment.md"
    proc = run_cli("review", "examples/clean_score_first_ttt", "-o", str(out))
    assert proc.returncode == 0 and proc.stdout == ""
    assert out.read_text() == review("examples/clean_score_first_ttt")

"""One pipeline: `check`, `ci` and `review` share the driver and the options builder, so the same folder gets
the same findings, severities and exit code from all three; `--jobs` changes nothing but the speed; relative
and absolute targets are the same audit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.gitrepo import TRACK, GitRepo

EXAMPLES = ["clean_score_first_ttt", "dead_ngram_disabled", "illegal_ngram_cache", "illegal_prequant_ttt_wrapped"]
# The configuration all three commands must honour: PG101 demoted, PG103 ignored.
PYPROJECT = '[tool.pgaudit]\nignore = ["PG103"]\n\n[tool.pgaudit.severity]\nPG101 = "warning"\n'


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> GitRepo:
    repo = GitRepo(tmp_path_factory.mktemp("agree") / "parameter-golf")
    repo.write("README.md", "# parameter golf\n")
    repo.write("pyproject.toml", PYPROJECT)
    repo.commit("base")
    repo.git("checkout", "-q", "-b", "pr-all")
    for example in EXAMPLES:
        repo.copy_example(example, f"{TRACK}/{example}")
    repo.commit("four submissions")
    return repo


def keys(findings: list[dict], folder: str) -> set[tuple[str, int | None, str, str]]:
    prefix = f"{TRACK}/{folder}/"
    return {(f["path"].removeprefix(prefix), f["line"], f["code"], f["severity"])
            for f in findings if f["path"].startswith(prefix)}


def review_keys(text: str) -> set[tuple[str, str]]:
    """(code, severity) of every finding heading in a review comment."""
    return set(re.findall(r"^#### \d+\. (PG\d+) \S+: (\w+)", text, re.M))


def test_check_ci_and_review_agree_on_every_example(repo: GitRepo):
    checked = run_cli("check", TRACK, "--format", "json", "--jobs", "1", cwd=repo.path)
    assert checked.returncode == 1, checked.stderr
    check_findings = json.loads(checked.stdout)["findings"]
    gated = run_cli("ci", "--base", "main", "--head", "pr-all", "--format", "json", cwd=repo.path)
    assert gated.returncode == 1, gated.stderr
    ci_findings = [f for f in json.loads(gated.stdout)["findings"] if f["code"] != "PG511"]  # PR scope: ci only
    assert {f["code"] for f in check_findings} >= {"PG101", "PG301"}
    assert "PG103" not in {f["code"] for f in check_findings + ci_findings}  # ignored by [tool.pgaudit]
    for example in EXAMPLES:
        expected = keys(check_findings, example)
        assert keys(ci_findings, example) == expected, example
        folder = f"{TRACK}/{example}"
        reviewed = run_cli("review", folder, cwd=repo.path)
        alone = run_cli("check", folder, "--format", "json", cwd=repo.path)
        assert reviewed.returncode == alone.returncode, (example, reviewed.stderr)
        active = {(code, sev) for _, _, code, sev in expected}
        assert review_keys(reviewed.stdout) >= {k for k in active if k[1] != "info"}, example
    demoted = [f for f in check_findings + ci_findings if f["code"] == "PG101" and f["reachable"]]
    assert demoted and {f["severity"] for f in demoted} == {"warning"}  # the severity table applied everywhere


def test_illegal_example_exits_1_from_all_three_commands(repo: GitRepo, tmp_path: Path):
    folder = f"{TRACK}/illegal_prequant_ttt_wrapped"
    assert run_cli("check", folder, cwd=repo.path).returncode == 1
    assert run_cli("review", folder, cwd=repo.path).returncode == 1
    assert run_cli("review", folder, "--exit-zero", cwd=repo.path).returncode == 0
    assert run_cli("ci", "--base", "main", "--head", "pr-all", cwd=repo.path).returncode == 1


def _strip_timing(report: dict) -> dict:
    report.get("run_config", {}).pop("timing", None)
    return report


def test_jobs_gives_byte_identical_json():
    one = run_cli("check", "examples", "--format", "json", "--jobs", "1")
    two = run_cli("check", "examples", "--format", "json", "--jobs", "3")
    assert one.returncode == two.returncode == 1
    assert one.stdout == two.stdout
    assert _strip_timing(json.loads(one.stdout))["findings"]
    text_one = run_cli("check", "examples", "--jobs", "1").stdout
    assert text_one == run_cli("check", "examples", "--jobs", "2").stdout
    assert "\x1b[" not in text_one and "auditing" not in text_one  # nothing extra when piped


def test_jobs_must_be_positive():
    proc = run_cli("check", "examples", "--jobs", "0")
    assert proc.returncode == 2 and proc.stderr.startswith("pgaudit: --jobs") and "Traceback" not in proc.stderr


HELPER_VIA_FILE = '''import torch.nn.functional as F

exec(open(os.path.join(os.path.dirname(__file__), "ngram_helper.py")).read())
'''
HELPER = '''def score(tokens, table, mask):
    for t in range(1, len(tokens)):
        tgt = tokens[t]
        key = (tokens[t - 1] * 31 ^ tgt) & mask
        p = table[key]
    return p
'''


def test_relative_and_absolute_targets_find_a_helper_execd_through_file(tmp_path: Path):
    folder = tmp_path / "sub" / "submission"
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(HELPER_VIA_FILE)
    (folder / "ngram_helper.py").write_text(HELPER)
    relative = run_cli("check", "sub/submission", "--format", "json", cwd=tmp_path)
    absolute = run_cli("check", str(folder), "--format", "json", cwd=tmp_path)
    assert "Traceback" not in relative.stderr + absolute.stderr
    rel_files = [f["path"] for f in json.loads(relative.stdout)["files"]]
    abs_files = [f["path"] for f in json.loads(absolute.stdout)["files"]]
    assert "sub/submission/ngram_helper.py" in rel_files  # was missed when the folder was given relatively
    assert rel_files == abs_files
    rel, abs_ = json.loads(relative.stdout), json.loads(absolute.stdout)
    assert rel["target"] == "sub/submission" and abs_["target"] == str(folder)  # named as given
    assert {**rel, "target": ""} == {**abs_, "target": ""}
    assert [f["code"] for f in rel["findings"]] == ["PG405"]  # the exec'd helper is code the script runs


def test_concise_output_is_one_line_per_finding():
    full = json.loads(run_cli("check", "examples", "--format", "json").stdout)
    proc = run_cli("check", "examples", "--output-format", "concise")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    active = [f for f in full["findings"] if not f["suppressed"]]
    assert len(lines) == len(active) + 1  # one line each, then the summary
    for line, finding in zip(lines, sorted(active, key=lambda f: (f["path"], f["line"] or 0, f["code"])),
                             strict=False):
        committed = finding["wrapper_line"] if finding["in_payload"] else finding["line"]
        assert line.startswith(f"{finding['path']}:{committed or 1}:1: {finding['code']} {finding['severity']}: ")
    assert lines[-1].startswith("NOT clean:")


def test_full_text_is_wrapped_at_100_columns_when_piped():
    out = run_cli("check", "examples").stdout
    prose = [line for line in out.splitlines() if not line.lstrip().startswith("|")]
    assert max(len(line) for line in prose) <= 100
    assert all(line == line.rstrip() for line in out.splitlines())


def test_parse_cache_is_bounded_and_keeps_the_recently_used():
    from pgaudit.source import parse

    first = parse.parse_python("kept = 0\n", "kept.py")
    for i in range(parse.MAX_CACHED_TREES + 10):
        parse.parse_python(f"x_{i} = {i}\n", "x.py")
        assert parse.parse_python("kept = 0\n", "kept.py") is first  # used again: stays
    assert len(parse._CACHE) <= parse.MAX_CACHED_TREES
    assert parse.parse_python("x_0 = 0\n", "x.py") is not None  # evicted ones are parsed again


def test_readme_shows_the_text_output_that_really_happens():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### What a finding says"):]
    shown = section[section.index("```\n") + 4:section.index("\n```", section.index("```\n") + 4)]
    out = run_cli("check", "examples/illegal_ngram_cache").stdout
    assert out.startswith(shown + "\n")


def test_readme_says_where_the_cpu_build_of_torch_comes_from():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme


def test_the_audit_result_records_what_ran_per_folder():
    from pathlib import Path

    from pgaudit.engine import audit_paths
    from pgaudit.options import AuditOptions

    report = audit_paths([Path("examples")], AuditOptions(select=("PG1", "PG5")), jobs=1)
    assert [f.path for f in report.folders] == [f"examples/{e}" for e in EXAMPLES]
    for folder in report.folders:
        assert folder.programs == (f"{folder.path}/train_gpt.py",) and folder.scripts == 1
        assert folder.rules and all(code.startswith("PG1") for code in folder.rules)  # --select applied
        assert all(code.startswith("PG5") for code in folder.validators)
        assert folder.claims.get("val_bpb")  # the title's claims, read once by the driver
    assert set(report.codes) >= {"PG101", *report.folders[0].rules}
    assert report.codes["PG101"].condition == "C1"
    flagged = next(f for f in report.findings if f.code == "PG101" and f.severity.label == "error")
    assert any(number == flagged.location.line for number, _ in flagged.excerpt)


def test_progress_bar_on_a_terminal_only():
    """stderr a terminal: rich draws a progress bar there; stdout (piped) gets exactly the report."""
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import ROOT

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "pgaudit", "check", "examples", "--jobs", "2", "--format", "json"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    stdout, _ = proc.communicate(timeout=120)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    assert proc.returncode == 1
    assert b"auditing" in drawn or b"examples/" in drawn  # the bar names the folder being audited
    assert json.loads(stdout)["findings"]  # the report itself is untouched
    assert stdout.decode() == run_cli("check", "examples", "--jobs", "2", "--format", "json").stdout

"""action.yml, the example workflow in docs/ci.md and .pre-commit-hooks.yaml: valid for their consumers, and
the action's own shell steps run against a PR-shaped repository."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.gitrepo import build_pr_repo

yaml = pytest.importorskip("yaml")

ACTION = ROOT / "action.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
DOCS = ROOT / "docs" / "ci.md"


def vendored_schema(name: str) -> dict:
    """A schemastore schema as shipped by check-jsonschema (found without importing its CLI)."""
    spec = importlib.util.find_spec("check_jsonschema")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("check-jsonschema (dev extra) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "builtin_schemas" / "vendor" / f"{name}.json"
    return json.loads(path.read_text())


def schema_errors(document: dict, schema: dict) -> list[str]:
    from jsonschema import Draft7Validator

    return [f"{list(e.absolute_path)}: {e.message}" for e in Draft7Validator(schema).iter_errors(document)]


def action() -> dict:
    return yaml.safe_load(ACTION.read_text())


def test_action_is_a_valid_composite_action():
    doc = action()
    assert schema_errors(doc, vendored_schema("github-actions")) == []
    assert doc["runs"]["using"] == "composite"
    uses = [s.get("uses", "") for s in doc["runs"]["steps"]]
    assert uses[0].startswith("actions/setup-python@")
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)


def test_sarif_upload_is_current_and_reads_the_audited_checkout():
    steps = action()["runs"]["steps"]
    [upload] = [s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")]
    assert upload["uses"].endswith("@v4")
    assert upload["with"]["checkout_path"] == "${{ steps.audit.outputs.checkout-path }}"
    [cache] = [s for s in steps if s.get("uses", "").startswith("actions/cache@")]
    assert cache["with"]["key"] == "${{ steps.pip-cache.outputs.key }}"


def test_pip_cache_key_step_runs(tmp_path: Path):
    output = tmp_path / "output.txt"
    env = {"GITHUB_ACTION_PATH": str(ROOT), "GITHUB_OUTPUT": str(output), "RUNNER_OS": "Linux",
           "PYTHON_VERSION": "3.12.1", "PGAUDIT_PACKAGE": "", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = run_step(step_script(step_id="pip-cache"), tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert outputs["key"].startswith("pgaudit-pip-Linux-3.12.1-") and outputs["dir"]


def test_action_passes_a_baseline_from_the_repository_root():
    script = step_script(step_id="audit")
    assert 'args+=(--baseline "$REPO_ROOT/$BASELINE")' in script


def test_action_never_expands_expressions_inside_scripts():
    """Inputs reach the shell through env only, so no input can inject shell code (GitHub's hardening advice)."""
    for step in action()["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")


def test_example_workflow_in_the_docs_is_valid():
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    workflows = [yaml.safe_load(b) for b in blocks if "jobs:" in b]
    assert len(workflows) == 1
    [workflow] = workflows
    workflow["on"] = workflow.pop(True)  # PyYAML reads YAML 1.1, where `on` is a boolean; GitHub reads 1.2
    assert schema_errors(workflow, vendored_schema("github-workflows")) == []
    steps = workflow["jobs"]["audit"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    assert workflow["permissions"]["security-events"] == "write"


def test_pre_commit_hooks_run_real_commands():
    hooks = yaml.safe_load(HOOKS.read_text())
    assert [h["id"] for h in hooks] == ["pgaudit", "pgaudit-ci"]
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= set(hook) and hook["language"] == "python"
        command = hook["entry"].split()
        assert command[0] == "pgaudit"
        assert run_cli(command[1], "--help").returncode == 0
    pattern = re.compile(hooks[0]["files"])
    assert pattern.search("records/track_10min_16mb/2026-04-01_X/train_gpt.py")
    assert not pattern.search("train_gpt.py") and not pattern.search("records/track_10min_16mb/README.md")


def step_script(step_id: str | None = None, name: str | None = None) -> str:
    for step in action()["runs"]["steps"]:
        if (step_id and step.get("id") == step_id) or (name and step.get("name") == name):
            return step["run"]
    raise AssertionError(f"no step {step_id or name}")


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """A `pgaudit` executable on PATH that runs this checkout, as `pip install` would provide."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pgaudit"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m pgaudit "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def run_step(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A composite `shell: bash` step as the runner runs it: bash -e -o pipefail."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                          env={**base, **env}, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("head", "code"), [("pr-illegal", "1"), ("pr-clean", "0"), ("pr-docs", "0")])
def test_action_steps_on_a_pr_repository(tmp_path: Path, shim: Path, head: str, code: str):
    repo = build_pr_repo(tmp_path / "parameter-golf")
    github_output, summary = tmp_path / "output.txt", tmp_path / "summary.md"
    env = {
        "PATH": f"{shim}:{os.environ['PATH']}", "BASE": "main", "HEAD": head, "REPO_ROOT": ".", "FAIL_ON": "error",
        "SARIF_FILE": "pgaudit.sarif", "REVIEW_FILE": "review.md", "REPOSITORY": "openai/parameter-golf",
        "PR_NUMBER": "42", "GITHUB_OUTPUT": str(github_output), "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_ACTIONS": "true",
    }
    fetch = run_step(step_script(name="Fetch the commits the diff needs"), repo.path, env)
    assert fetch.returncode == 0, fetch.stderr
    audit = run_step(step_script(step_id="audit"), repo.path, env)
    assert audit.returncode == 0, audit.stderr  # the step records the code; the gate step fails the job
    outputs = dict(line.split("=", 1) for line in github_output.read_text().splitlines())
    assert outputs == {"exit-code": code, "checkout-path": str(repo.path.resolve())}
    sarif = json.loads((repo.path / "pgaudit.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert summary.read_text().startswith("## pgaudit: ")
    gate = run_step(step_script(name="Gate the pull request"), repo.path, {**env, "CODE": code})
    assert gate.returncode == int(code)
    if head == "pr-illegal":
        assert audit.stdout.startswith("::error file=records/track_10min_16mb/2026-05-01_NgramCache/train_gpt.py,")
        assert "[PR #42](https://github.com/openai/parameter-golf/pull/42)" in (repo.path / "review.md").read_text()

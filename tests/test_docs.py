"""README's first two commands are the contract with a fresh machine; CI must run the second one."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md must start with a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_setup_demo_and_test_commands():
    demo, tests = readme_commands()[:2]
    assert "pgaudit check examples/" in demo and "pip install" in demo
    assert "pytest" in tests and "torch==2.13.0" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_json_schema_doc_names_every_key_the_report_writes():
    import json

    from tests.conftest import run_cli

    report = json.loads(run_cli("check", "examples", "--format", "json").stdout)
    doc = (ROOT / "docs" / "json-schema.md").read_text()
    keys = set(report) | set(report["tool"]) | set(report["summary"]) | set(report["run_config"])
    keys |= {k for f in report["files"] for k in f} | {k for f in report["files"] if f["payload"] for k in f["payload"]}
    for finding in report["findings"]:
        keys |= set(finding) | set(finding["reachability"] or {}) | {k for r in finding["related"] for k in r}
    keys |= {k for e in report["errors"] for k in e}
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert not missing, f"docs/json-schema.md does not document {missing}"
    assert f"version {report['schema_version']})" in doc


def test_readme_codes_table_lists_every_code_with_its_severity():
    from pgaudit.codes import all_codes

    rows = re.findall(r"^\| (PG\d{3}) \| ([a-z-]+) \| (\w+) \|", (ROOT / "README.md").read_text(), re.M)
    table = {code: (name, severity) for code, name, severity in rows}
    codes = all_codes()
    assert set(table) == set(codes)
    for code, info in codes.items():
        assert table[code] == (info.name, info.severity.label), code


def test_every_code_summary_is_one_whole_sentence():
    from pgaudit.codes import all_codes

    for code, info in all_codes().items():
        assert info.summary.endswith("."), f"{code}: summary cut off: {info.summary!r}"

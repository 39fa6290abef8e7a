"""Every VALID and INVALID example of every rule, in one parametrized test.

INVALID examples must be reported by their rule at the pinned line (the `# <- expected` marker), with the
pinned message fragment and severity. VALID examples (the catalogue's legal look-alikes) must not get a
warning or an error from their rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgaudit.analysis.evidence import LogLine
from pgaudit.analysis.facts import Facts
from pgaudit.findings import Severity
from pgaudit.rules import REGISTRY, Example, Rule
from pgaudit.source.program import load_program

CASES = [
    pytest.param(cls, kind, ex, id=f"{code}-{kind}-{i}")
    for code, cls in REGISTRY.items()
    for kind in ("invalid", "valid")
    for i, ex in enumerate(getattr(cls, kind))
]


def run_rule(rule: type[Rule], example: Example, folder: Path) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_gpt.py").write_text(example.code, encoding="utf-8")
    for name, text in example.files.items():
        (folder / name).write_text(text, encoding="utf-8")
    program = load_program(folder / "train_gpt.py", folder)
    lines = [LogLine("train_seed1337.log", n, text) for n, text in enumerate(example.log.splitlines(), 1)]
    facts = Facts(program, dict(example.env), dict(example.logged), lines)
    return list(rule().check(facts))


def test_every_rule_has_examples_of_both_kinds():
    for code, cls in REGISTRY.items():
        assert cls.invalid and cls.valid, f"{code} needs VALID and INVALID examples"
        for ex in cls.invalid:
            assert ex.expected_line is not None, f"{code}: INVALID example {ex.title!r} pins no line"
            assert ex.message, f"{code}: INVALID example {ex.title!r} pins no message"


def test_every_rule_is_documented():
    for code, cls in REGISTRY.items():
        doc = cls.doc()
        for heading in ("What it does:", "Why is this bad:", "Example:", "Legal look-alikes:", "References:"):
            assert heading in doc, f"{code} docstring lacks {heading!r}"
        assert cls.ruling_urls and all(u.startswith("https://") for u in cls.ruling_urls)
        assert cls.catalogue_ids and cls.fix and cls.name == cls.name.lower() and " " not in cls.name


@pytest.mark.parametrize(("rule", "kind", "example"), CASES)
def test_example(rule: type[Rule], kind: str, example: Example, tmp_path: Path):
    findings = run_rule(rule, example, tmp_path / "sub")
    assert all(f.code == rule.code for f in findings)
    if kind == "invalid":
        expected_severity = example.severity or rule.severity
        at_line = [f for f in findings if f.location.line == example.expected_line]
        assert at_line, f"no {rule.code} finding at line {example.expected_line}: {[(f.location.line, f.message) for f in findings]}"
        finding = at_line[0]
        assert example.message in finding.message
        assert finding.severity == expected_severity, finding.message
        assert finding.reachability is not None and finding.reachability.detail
        if expected_severity == Severity.INFO and rule.severity > Severity.INFO:
            assert finding.reachable is False  # a rule above info reports only dead code at info
    else:
        serious = [(f.location.line, f.severity.label, f.message) for f in findings if f.severity >= Severity.WARNING]
        assert not serious, serious

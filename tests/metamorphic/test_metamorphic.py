"""Metamorphic tests: every rule example and every bundled example folder keeps its verdict under each
semantics-preserving rewrite (tests/metamorphic/rewrite.py).

The verdict of a rule example is the set of (code, severity, reachable) of its rule's findings; of a folder,
the same over the findings that decide `pgaudit check` (PG0xx-PG4xx and PG504, unsuppressed). Lines are not
compared: `split` adds lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgaudit.analysis.evidence import LogLine
from pgaudit.analysis.facts import Facts
from pgaudit.engine import AuditOptions, audit
from pgaudit.rules import REGISTRY, Example, Rule
from pgaudit.source.program import load_program
from tests.metamorphic.folders import rewrite_folder, rewrite_sources
from tests.metamorphic.rewrite import REWRITES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())

# Known gaps, each a verdict that still rests on a name (strict: fixing one makes its test fail until removed).
KNOWN_GAPS = {
    "PG103-valid-0-rename": "the BOS mask is recognised by its name (a warning, not a verdict)",
}


def _case(cls: type[Rule], ex: Example, kind: str, case_id: str):  # type: ignore[no-untyped-def]
    gap = KNOWN_GAPS.get(case_id)
    marks = [pytest.mark.xfail(reason=gap, strict=True)] if gap else []
    return pytest.param(cls, ex, kind, id=case_id, marks=marks)


RULE_CASES = [
    _case(cls, ex, kind, f"{code}-{label}-{i}-{kind}")
    for code, cls in REGISTRY.items()
    for label in ("invalid", "valid")
    for i, ex in enumerate(getattr(cls, label))
    for kind in REWRITES
]
FOLDER_CASES = [pytest.param(folder, kind, id=f"{folder.name}-{kind}") for folder in EXAMPLES for kind in REWRITES]

Verdict = set[tuple[str, str, bool | None]]


def rule_verdict(rule: type[Rule], example: Example, folder: Path, sources: dict[str, str]) -> Verdict:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (folder / name).write_text(text, encoding="utf-8")
    program = load_program(folder / "train_gpt.py", folder)
    lines = [LogLine("train_seed1337.log", n, text) for n, text in enumerate(example.log.splitlines(), 1)]
    facts = Facts(program, dict(example.env), dict(example.logged), lines)
    return {(f.code, f.severity.label, f.reachable) for f in rule().check(facts)}


def folder_verdict(folder: Path) -> Verdict:
    report = audit(folder, AuditOptions())
    return {
        (f.code, f.severity.label, f.reachable)
        for f in report.findings
        if not f.suppressed and (f.code[:3] in ("PG0", "PG1", "PG2", "PG3", "PG4") or f.code == "PG504")
    }


@pytest.mark.parametrize(("rule", "example", "kind"), RULE_CASES)
def test_rule_example_keeps_its_verdict(rule: type[Rule], example: Example, kind: str, tmp_path: Path):
    sources = {"train_gpt.py": example.code, **example.files}
    before = rule_verdict(rule, example, tmp_path / "before", sources)
    after_sources = rewrite_sources(sources, kind, REWRITES[kind])
    after = rule_verdict(rule, example, tmp_path / "after", after_sources)
    assert after == before, f"{kind}: {sorted(before)} -> {sorted(after)}\n{after_sources['train_gpt.py']}"


@pytest.mark.parametrize(("folder", "kind"), FOLDER_CASES)
def test_example_folder_keeps_its_verdict(folder: Path, kind: str, tmp_path: Path):
    before = folder_verdict(folder)
    after = folder_verdict(rewrite_folder(folder, tmp_path / folder.name, kind, REWRITES[kind]))
    assert after == before, f"{kind}: {sorted(before)} -> {sorted(after)}"


def test_the_rewrites_change_the_spelling():
    """Guard against a rewrite silently becoming the identity."""
    code = (
        "import numpy as np\n"
        "def keyed(ctx_hash, tgt):\n"
        "    h = ctx_hash\n"
        "    h ^= tgt * 2654435761\n"
        "    return np.asarray(h ^ tgt)\n"
        "val_tokens = np.fromfile('fineweb_val_000.bin')\n"
        "print(keyed(ctx_hash=val_tokens[:-1], tgt=val_tokens[1:]))\n"
    )
    renamed = REWRITES["rename"](code)
    for old in ("keyed", "ctx_hash", "tgt", "val_tokens"):
        assert old not in renamed, renamed
    assert "np.fromfile" in renamed and "print(" in renamed and "'fineweb_val_000.bin'" in renamed
    misled = REWRITES["mislead"](code)
    for old in ("keyed", "ctx_hash", "tgt", "val_tokens"):
        assert f"{old}(" not in misled and f"{old} =" not in misled and f"{old}=" not in misled, misled
    assert "'fineweb_val_000.bin'" in misled and any(w in misled for w in ("target_", "val_tokens_", "ctx_"))
    assert "bitwise_xor" in REWRITES["swap"](code)
    assert "h = h ^" in REWRITES["swap"](code)
    assert "tmp1 = " in REWRITES["split"]("import numpy as np\nkeys = np.asarray(np.arange(4) * 3)\n")
    assert "h ^= " in REWRITES["inplace"]("h = 0\nh = h ^ 3\n")


def test_rename_keeps_a_framework_method_whose_name_a_loop_variable_also_binds():
    """`def step(self)` of an optimizer subclass is what `opt.step()` runs; a training loop's `step` counter
    is renamed, the method is not (renaming it would make `opt.step()` run the base class's step)."""
    source = (
        "import torch\n"
        "class Opt(torch.optim.Optimizer):\n"
        "    def step(self, closure=None):\n        return None\n"
        "    def helper(self):\n        return 1\n"
        "def helper():\n    return 2\n"
        "def main(o):\n    for step in range(3):\n        o.step()\n        o.helper()\n"
    )
    out = REWRITES["rename"](source)
    assert "    def step(self" in out and "o.step()" not in out  # the receiver `o` is renamed, `.step()` kept
    assert ".step()" in out and "for step in" not in out
    method = out.split("    def ")[2].split("(")[0]
    assert method != "helper" and f".{method}()" in out  # the method and its call share one new name

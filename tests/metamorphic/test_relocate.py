"""Every rule example and every bundled example folder keeps its verdict when its code moves
(tests/metamorphic/relocate.py): into a sibling module that is imported or exec'd (rewrite b), or into a
self-extracting literal (rewrite c).

The verdict is the set of (code, severity, reachable) of the findings that decide `pgaudit check`
(PG0xx-PG4xx and PG504, unsuppressed); for a rule example, of its rule's findings. PG405 is left out of the
comparison for the relocations only: moving code into a sibling file is exactly what PG405 reports (R2
counts that file's bytes), so its appearance there is the correct verdict, not a change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pgaudit.analysis.evidence import LogLine
from pgaudit.analysis.facts import Facts
from pgaudit.engine import AuditOptions, audit
from pgaudit.rules import REGISTRY, Example, Rule
from pgaudit.source.program import load_program
from tests.metamorphic.relocate import RELOCATIONS, SIBLING, WRAPPINGS, relocate, unwrapped, wrap

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())
KINDS = [f"move-{h}" for h in RELOCATIONS] + [f"wrap-{h}" for h in WRAPPINGS]

Verdict = set[tuple[str, str, bool | None]]


def rewritten(sources: dict[str, str], kind: str) -> dict[str, str]:
    entry = sources["train_gpt.py"]
    if kind.startswith("move-"):
        return {**sources, **relocate(entry, kind[5:])}
    return {**sources, "train_gpt.py": wrap(entry, kind[5:])}


def _decides(code: str, kind: str) -> bool:
    return not (kind.startswith("move-") and code == "PG405")


def rule_verdict(rule: type[Rule], example: Example, folder: Path, sources: dict[str, str], kind: str) -> Verdict:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (folder / name).write_text(text, encoding="utf-8")
    program = load_program(folder / "train_gpt.py", folder)
    lines = [LogLine("train_seed1337.log", n, text) for n, text in enumerate(example.log.splitlines(), 1)]
    facts = Facts(program, dict(example.env), dict(example.logged), lines)
    return {(f.code, f.severity.label, f.reachable) for f in rule().check(facts) if _decides(f.code, kind)}


def folder_verdict(folder: Path, kind: str) -> Verdict:
    return {
        (f.code, f.severity.label, f.reachable)
        for f in audit(folder, AuditOptions()).findings
        if not f.suppressed
        and (f.code[:3] in ("PG0", "PG1", "PG2", "PG3", "PG4") or f.code == "PG504")
        and _decides(f.code, kind)
    }


RULE_CASES = [
    pytest.param(cls, ex, kind, id=f"{code}-{label}-{i}-{kind}")
    for code, cls in REGISTRY.items()
    for label in ("invalid", "valid")
    for i, ex in enumerate(getattr(cls, label))
    for kind in KINDS
]


@pytest.mark.parametrize(("rule", "example", "kind"), RULE_CASES)
def test_rule_example_keeps_its_verdict(rule: type[Rule], example: Example, kind: str, tmp_path: Path):
    sources = {"train_gpt.py": example.code, **example.files}
    before = rule_verdict(rule, example, tmp_path / "before", sources, kind)
    after_sources = rewritten(sources, kind)
    after = rule_verdict(rule, example, tmp_path / "after", after_sources, kind)
    assert after == before, f"{kind}: {sorted(before)} -> {sorted(after)}\n{after_sources['train_gpt.py'][:2000]}"


@pytest.mark.parametrize(("folder", "kind"), [pytest.param(f, k, id=f"{f.name}-{k}") for f in EXAMPLES for k in KINDS])
def test_example_folder_keeps_its_verdict(folder: Path, kind: str, tmp_path: Path):
    before = folder_verdict(folder, kind)
    dst = tmp_path / folder.name
    shutil.copytree(folder, dst)
    sources = {"train_gpt.py": (dst / "train_gpt.py").read_text(encoding="utf-8")}
    for rel, text in rewritten(sources, kind).items():
        (dst / rel).write_text(text, encoding="utf-8")
    after = folder_verdict(dst, kind)
    assert after == before, f"{kind}: {sorted(before)} -> {sorted(after)}"


def test_the_rewrites_move_the_code():
    """Guard against a rewrite silently becoming the identity."""
    code = REGISTRY["PG101"].invalid[0].code
    for how in RELOCATIONS:
        files = relocate(code, how)
        assert SIBLING in files and "def eval_ngram" in files[SIBLING]
        assert "def eval_ngram" not in files["train_gpt.py"]
    for how in WRAPPINGS:
        wrapped = wrap(code, how)
        assert "def eval_ngram" not in wrapped and unwrapped(wrapped) == code

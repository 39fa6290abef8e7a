"""The data-flow solver skips scopes that are settled (nothing they read changed since solving them last
changed nothing), and call sites whose callers' parameters did not change while parameters are propagated.
That is a speed-up only: with and without it, every environment, return summary, concrete
parameter, attribute provenance, target-keyed hash origin and target seed must be the same.

Run on every rule example (VALID and INVALID), the bundled examples and the reference trainer's modules,
so a new read of another scope's state in `Flow` that the skip does not know of shows up here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgaudit.analysis import dataflow
from pgaudit.analysis.index import ProgramIndex
from pgaudit.rules import REGISTRY
from pgaudit.source.program import Program, load_program

ROOT = Path(__file__).resolve().parents[1]


def _snapshot(flow: dataflow.Flow) -> tuple:
    def name(scope) -> str:  # type: ignore[no-untyped-def]
        return f"{scope.unit.label}:{scope.qualname}:{getattr(scope.node, 'lineno', 0)}"

    return (
        {name(fs.scope): (dict(fs.env), fs.ret_labels) for fs in flow.fs.values()},
        {name(s): dict(flow.concrete.get(id(s), {})) for s in flow.scopes},
        dict(flow.attr_env),
        [(name(s), type(n).__name__, getattr(n, "lineno", None), getattr(n, "col_offset", None))
         for s, n in flow.tkey_origins],
        {name(s): sorted(flow.targets.names.get(id(s), ())) for s in flow.scopes},
        {name(s): sorted(flow.targets.spellings.get(id(s), ())) for s in flow.scopes},
    )


def _both_ways(program: Program, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple, tuple]:
    out = []
    for skip in (False, True):
        monkeypatch.setattr(dataflow.Flow, "SKIP_SETTLED", skip)
        out.append(_snapshot(dataflow.Flow(ProgramIndex(program))))
    return out[0], out[1]


def _programs(tmp_path: Path) -> list[tuple[str, Program]]:
    programs = []
    for code, cls in REGISTRY.items():
        for kind in ("invalid", "valid"):
            for i, example in enumerate(getattr(cls, kind)):
                folder = tmp_path / f"{code}_{kind}_{i}"
                folder.mkdir()
                (folder / "train_gpt.py").write_text(example.code, encoding="utf-8")
                for name, text in example.files.items():
                    (folder / name).write_text(text, encoding="utf-8")
                programs.append((folder.name, load_program(folder / "train_gpt.py", folder)))
    for script in sorted((ROOT / "examples").glob("*/train_gpt.py")):
        programs.append((script.parent.name, load_program(script, script.parent)))
    for module in sorted((ROOT / "reference_trainer").glob("*.py")):
        programs.append((module.name, load_program(module, module.parent)))
    return programs


def test_skipping_settled_scopes_changes_no_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    programs = _programs(tmp_path)
    assert len(programs) > 50
    differing = [name for name, program in programs if (pair := _both_ways(program, monkeypatch))[0] != pair[1]]
    assert differing == []


def test_the_skip_happens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: on a real trainer the solver does skip settled scopes."""
    calls = {"solved": 0}
    original = dataflow.Flow._solve_env

    def counting(self, fs):  # type: ignore[no-untyped-def]
        if not self._settled_now(fs):
            calls["solved"] += 1
        return original(self, fs)

    monkeypatch.setattr(dataflow.Flow, "_solve_env", counting)
    script = ROOT / "examples" / "clean_score_first_ttt" / "train_gpt.py"
    program = load_program(script, script.parent)
    counts = []
    for skip in (False, True):
        monkeypatch.setattr(dataflow.Flow, "SKIP_SETTLED", skip)
        calls["solved"] = 0
        dataflow.Flow(ProgramIndex(program))
        counts.append(calls["solved"])
    assert counts[1] < counts[0]

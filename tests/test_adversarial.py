"""Adversarial submissions (tests/adversarial): each illegal folder gets a verdict, each legal twin none.

The verdict is what the judges compute from `pgaudit check FOLDER --format json`: an unsuppressed error,
reachable not False, among PG0xx-PG4xx and PG504. Native-code cases are counted apart: pgaudit audits Python
only, so the requirement there is a warning (or error) that names the native file on the scoring path.

Known failures are strict xfails whose reason names the capability that is missing and the helper whose area
it is (issue 15: flow = data flow, targets, effects; control = call sites, gates, scores, reachability;
roles = PG401-PG404 roles). Fixing one makes its test fail until the entry is removed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgaudit.engine import AuditOptions, audit
from tests.adversarial.cases import CASES, Case, build, write

# case -> (owner, what is missing) for illegal folders without a verdict
MISSES: dict[str, tuple[str, str]] = {}

# case -> (owner, why the legal twin gets an error)
FALSE_ERRORS: dict[str, tuple[str, str]] = {}

VERDICT_PREFIXES = ("PG0", "PG1", "PG2", "PG3", "PG4")


def verdict(folder: Path) -> list[str]:
    report = audit(folder, AuditOptions())
    return sorted({
        f.code for f in report.findings
        if not f.suppressed and f.severity.label == "error" and f.reachable is not False
        and (f.code[:3] in VERDICT_PREFIXES or f.code == "PG504")
    })  # fmt: skip


def _param(case: Case, table: dict[str, tuple[str, str]]):  # type: ignore[no-untyped-def]
    entry = table.get(case.name)
    marks = [pytest.mark.xfail(reason=f"[{entry[0]}] {entry[1]}", strict=True)] if entry else []
    return pytest.param(case, id=case.name, marks=marks)


SCORED = [c for c in CASES if not c.native]
NATIVE = [c for c in CASES if c.native]


@pytest.mark.parametrize("case", [_param(c, MISSES) for c in SCORED])
def test_illegal_folder_gets_a_verdict(case: Case, tmp_path: Path):
    assert verdict(write(case, False, tmp_path / case.name)), f"{case.name} ({case.family}, bullet {case.bullet}) was not caught"


@pytest.mark.parametrize("case", [_param(c, FALSE_ERRORS) for c in SCORED])
def test_legal_twin_gets_no_verdict(case: Case, tmp_path: Path):
    assert verdict(write(case, True, tmp_path / case.name)) == []


@pytest.mark.parametrize("case", NATIVE, ids=[c.name for c in NATIVE])
def test_native_code_on_the_scoring_path_is_a_warning_naming_it(case: Case, tmp_path: Path):
    folder = write(case, False, tmp_path / case.name)
    native = [Path(p).name for p in build(case, False) if p.endswith((".c", ".cpp", ".so", ".pyc"))]
    report = audit(folder, AuditOptions())
    named = [
        f for f in report.findings
        if f.severity.label in ("warning", "error") and any(n in f.message for n in native)
    ]  # fmt: skip
    assert named, f"no warning names {native}: {[f.code + ' ' + f.message[:80] for f in report.findings]}"


def test_every_bullet_and_family_has_cases():
    bullets = {c.bullet for c in CASES}
    assert bullets >= {"1", "2", "3", "4", "5", "6", "7", "8", "native"}
    families = {c.family for c in SCORED}
    assert families >= {
        "ngram_target_key", "prequant_ttt", "ttt_multiepoch_rescore", "two_pass_rescore", "slot", "gptq_val_calib",
        "gptq_after_cap", "val_in_training", "target_dependent_mixing", "unnormalized_mixture", "network_at_eval",
    }  # fmt: skip


def test_the_known_failures_name_existing_cases():
    names = {c.name for c in CASES}
    assert set(MISSES) <= names and set(FALSE_ERRORS) <= names


@pytest.mark.parametrize("case", [c for c in CASES if c.loader or c.wrap], ids=lambda c: c.name)
def test_the_evasion_hides_the_stage_from_the_entry_script(case: Case):
    """A loader or wrapper case really moves the evaluation out of the entry's readable text, and its twin
    differs from it only in the evaluation piece."""
    files = build(case, False)
    entry = str(files["train_gpt.py"])
    if case.wrap and not case.wrap_sibling:  # the whole script is inside the payload
        assert "def main(" not in entry
    else:
        assert f"def {case.piece(legal=False).exports[0]}(" not in entry
    twin = build(case, True)
    assert set(twin) - {"prepare_prior.py"} >= set(files) - {"prepare_prior.py"} - {"code.z"}
    assert twin != files


RELATIVE = [c for c in CASES if c.loader in ("spec", "runpy", "exec", "subprocess", "zip", "helper-loader", "parent-compile",
                                              "read-text-exec") and c.name not in MISSES]


@pytest.mark.parametrize("case", RELATIVE, ids=lambda c: c.name)
def test_paths_from_file_resolve_from_a_relative_folder_path(case: Case, tmp_path: Path, monkeypatch):
    """`__file__` is absolute at run time whatever path pgaudit was given: a relative folder path audits the
    same siblings as an absolute one."""
    write(case, False, tmp_path / case.name)
    monkeypatch.chdir(tmp_path)
    relative = audit(Path(case.name), AuditOptions())
    absolute = audit(tmp_path / case.name, AuditOptions())
    assert len(relative.files) == len(absolute.files) > 1
    assert verdict(Path(case.name)) == verdict(tmp_path / case.name) != []

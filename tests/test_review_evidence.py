"""What the review saw: numbers read per seed, the significance test, legal look-alikes, the recommendation."""

from __future__ import annotations

import shutil
from pathlib import Path

from pgaudit.findings import Confidence, Finding, Location, Report, Severity
from pgaudit.review_evidence import legal_lookalikes, numbers_read, recommendation
from tests.conftest import FIXTURE_RECORDS, ROOT

A2 = FIXTURE_RECORDS / "track_10min_16mb" / "2026-04-09_A2_Muon097_3Seed"
BASE = ROOT / "tests" / "fixtures" / "lineage" / "records" / "track_10min_16mb" / "2026-01-01_Base"


def _finding(code: str, severity: Severity) -> Finding:
    return Finding(code=code, name="x", severity=severity, confidence=Confidence.HIGH, message="m",
                   location=Location("a/train_gpt.py", 3))


def test_numbers_read_per_seed_from_the_logs():
    lines = numbers_read(A2, "records/x")
    table = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert len(table) == 3
    row = next(line for line in table if line.startswith("| 42 |"))
    # seed 42 of this record: score, artifact bytes, train and eval seconds, the log line they come from
    assert "1.07996676" in row and "15,992,995" in row and "588.0" in row and "train_seed42.log:" in row


def test_significance_against_the_ancestor_gives_t_df_p(tmp_path: Path):
    ancestor = tmp_path / "ancestor"
    ancestor.mkdir()
    for log in A2.glob("train_seed*.log"):
        shutil.copy(log, ancestor / log.name)
    lines = numbers_read(A2, "records/x", ancestor, "records/ancestor")
    significance = next(line for line in lines if line.startswith("- Significance"))
    # the same seeds on both sides: no improvement at all, so t = 0 and the one-sided p is 0.5
    assert "t = 0.000" in significance and "p = 0.5000" in significance and "does not pass p < 0.25" in significance
    assert "df = " in significance


def test_significance_needs_a_baseline():
    lines = numbers_read(A2, "records/x")
    assert any("no baseline seeds at hand" in line for line in lines)


def test_recommendation_line():
    illegal = recommendation("ILLEGAL under C3", [_finding("PG301", Severity.ERROR)])
    assert illegal[0].startswith("**Recommendation: close** (PG301")
    fixes = recommendation("NEEDS FIXES", [_finding("PG501", Severity.WARNING), _finding("PG103", Severity.INFO)])
    assert fixes[0] == "**Recommendation: needs changes** (PG501)."
    clean = recommendation("LOOKS CLEAN", [], "records/track_10min_16mb/2026-01-01_Base")
    assert clean[0].startswith("**Recommendation: merge pending checks** (the scoring path is identical to the "
                               "accepted record `records/track_10min_16mb/2026-01-01_Base`")


def test_score_first_ttt_is_named_as_a_legal_lookalike(tmp_path: Path):
    folder = tmp_path / "ttt"
    shutil.copytree(ROOT / "examples" / "clean_score_first_ttt", folder)
    found = legal_lookalikes(folder, Report(target="x"))
    ttt = [item for item in found if item.condition == "C3"]
    assert ttt and "before the update" in ttt[0].why
    # the same code, when a rule flagged it, is not offered as a legal look-alike
    flagged = Report(target="x", findings=[_finding("PG301", Severity.ERROR)])
    assert not [item for item in legal_lookalikes(folder, flagged) if item.condition == "C3"]


def test_no_lookalike_in_plain_code():
    assert legal_lookalikes(BASE, Report(target="x")) == []

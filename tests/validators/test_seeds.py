"""PG508 too-few-seeds and PG509 not-significant."""

from __future__ import annotations

from pgaudit.findings import Severity
from pgaudit.significance import sample_from_folder, sample_from_values
from pgaudit.submission import load_record_folder
from tests.fixture_paths import BASELINE, NON_RECORD, PR549, PR1019, PR1855, RECORD
from tests.validators.helpers import only, validate


def test_single_seed_record_gets_a_warning() -> None:
    (finding,) = only(validate(BASELINE), "PG508")
    assert finding.severity is Severity.WARNING and "1 scored run" in finding.message
    assert finding.location.path == "train.log" and finding.location.line == 448


def test_three_seeds_are_enough_and_duplicates_do_not_count() -> None:
    assert only(validate(PR1855), "PG508") == []
    assert only(validate(RECORD / "2026-03-18_FP16Embed_WD3600"), "PG508") != []  # two seeds


def test_non_record_submissions_are_not_ranked() -> None:
    assert only(validate(NON_RECORD / "2026-03-31_LegendreGPT"), "PG508") == []


def test_significance_needs_a_baseline() -> None:
    assert only(validate(PR1019), "PG509") == []


def test_significant_improvement_is_silent() -> None:
    against = sample_from_folder(load_record_folder(PR549))
    assert only(validate(PR1019, against=against), "PG509") == []


def test_not_significant_reports_both_tests() -> None:
    against = sample_from_folder(load_record_folder(PR1019))
    (finding,) = only(validate(PR549, against=against), "PG509")
    assert finding.severity is Severity.WARNING
    assert "README policy" in finding.message and "late policy" in finding.message
    assert "t=11.83" in finding.message and "fails" in finding.message
    assert finding.catalogue_ids == ("R8", "R9")


def test_passing_only_the_late_policy_is_information() -> None:
    # Slightly better than the baseline mean: p < 0.25 but far from a 0.005-nat margin.
    candidate = sample_from_folder(load_record_folder(PR1019))
    baseline = sample_from_values([v + 0.0004 for v in candidate.bpb[::-1]], "bpb", "near baseline")
    (finding,) = only(validate(PR1019, against=baseline), "PG509")
    assert finding.severity is Severity.INFO and "-> passes" in finding.message and "-> fails" in finding.message

"""Both significance policies on real record folders, units, and refusals."""

from __future__ import annotations

import pytest

from pgaudit.errors import UsageError
from pgaudit.policy import Policy
from pgaudit.significance import compare, parse_values, sample_from_folder, sample_from_values
from pgaudit.submission import load_record_folder
from tests.fixture_paths import PR549, PR1019, PR1493, PR1855, SEQ2048


def sample(path):
    return sample_from_folder(load_record_folder(path))


def test_pr1019_against_pr549_passes_both_policies() -> None:
    result = compare(sample(PR1019), sample(PR549), Policy())
    assert result.readme_unit == "nats"  # same tokenizer, val_loss logged: the README's own unit
    assert round(result.readme.improvement, 5) == 0.00784 and result.readme.margin == 0.005
    assert result.readme_passes and round(result.readme.p, 4) == 0.0072
    assert result.welch_unit == "bpb" and round(result.welch.t, 2) == -11.83 and round(result.welch.df, 2) == 3.31
    assert result.progression_passes
    assert round(result.delta_bpb, 5) == -0.00464 and round(result.delta_nats, 5) == -0.00784


def test_across_tokenizers_the_margin_is_converted_and_nats_are_refused() -> None:
    sp8192 = sample(PR1855)
    sp8192_plain = sample(PR1493)
    assert sp8192.tokenizer != sp8192_plain.tokenizer
    result = compare(sp8192, sp8192_plain, Policy())
    assert result.readme_unit == "bpb" and result.delta_nats is None
    assert result.readme.margin == pytest.approx(0.005 / 0.6931471805599453 * sp8192.tokens_per_byte)
    assert any("tokenizers differ" in note for note in result.notes)
    with pytest.raises(UsageError, match="refusing to compare nats across tokenizers"):
        compare(sp8192, sp8192_plain, Policy(), unit="nats")


def test_a_single_baseline_value_runs_only_the_readme_test() -> None:
    candidate = sample(SEQ2048)
    result = compare(candidate, sample_from_values([1.2243657]), Policy(), unit="bpb")
    assert result.welch is None and result.progression_passes is None
    assert result.readme is not None and result.readme.reference == 1.2243657
    # 0.005 nats is ~0.0030 bpb for SP1024, not the 0.005 bpb the 2026-03-18 README used.
    assert round(result.readme.margin, 4) == 0.0030 and result.readme_passes


def test_a_worse_candidate_fails_both() -> None:
    result = compare(sample(PR549), sample(PR1019), Policy())
    assert result.readme_passes is False and result.progression_passes is False


def test_values_parsing() -> None:
    assert parse_values("1.0810, 1.0812;1.0806") == [1.0810, 1.0812, 1.0806]
    with pytest.raises(UsageError):
        parse_values("1.08,abc")
    with pytest.raises(UsageError):
        sample_from_values([], "bpb")
    with pytest.raises(UsageError):
        sample_from_values([1.0], "bits")

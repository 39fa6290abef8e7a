"""Significance math, pinned on the worked examples of catalogue R8 to their printed precision."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgaudit.logs import read_log
from pgaudit.stats import (
    bpb_to_nats,
    nats_to_bpb,
    one_sample_from_summary,
    one_sample_improvement,
    sample_sd,
    tokens_per_byte,
    welch_from_summary,
    welch_improvement,
)
from tests.fixture_paths import BASELINE, PR549, PR1019, PR1855, SEQ2048, SEQ4096


def scored(folder, names):
    return [read_log(folder / n, n).scored for n in names]


def test_pr49_one_sample_against_sota_minus_margin() -> None:
    # 2026-03-18_LongContextSeq2048 README: t=31.42, df=2, p=0.00051 vs 1.2193657 (= 1.2243657 - 0.005, in bpb).
    values = [m.val_bpb for m in scored(SEQ2048, ["train.log", "train_seed1338.log", "train_seed1339.log"])]
    assert values == [1.20576485, 1.20617460, 1.20715923]  # read from the logs
    result = one_sample_improvement(values, reference=1.2243657, margin=0.005)
    assert round(result.mean, 8) == 1.20636623 and round(result.sd, 8) == 0.00071667
    assert round(result.t, 2) == 31.42 and result.df == 2 and round(result.p, 5) == 0.00051
    assert result.threshold == pytest.approx(1.2193657)


def test_pr52_one_sample() -> None:
    # README prints t=9.06, p=0.006; the printed inputs give t=9.04 (sd 0.00187), p rounds to the same 0.006.
    values = [m.val_bpb for m in scored(SEQ4096, ["train.log", "train_seed1338.log", "train_seed1339.log"])]
    result = one_sample_improvement(values, reference=1.21113611, margin=0.0)
    assert round(result.mean, 8) == 1.20136009 and round(result.sd, 5) == 0.00187
    assert round(result.p, 3) == 0.006 and round(result.t, 1) == 9.0


def test_pr1019_welch_against_pr549() -> None:
    new = scored(PR1019, ["train_seed314.log", "train_seed42.log", "train_seed999.log"])
    old = scored(PR549, ["train_seed1337.log", "train_seed42.log", "train_seed2025.log"])
    assert [m.val_bpb for m in new] == [1.11508120, 1.11437394, 1.11475014]
    assert sorted(m.val_bpb for m in old) == sorted([1.11922988, 1.12002032, 1.11888882])
    result = welch_improvement([m.val_bpb for m in new], [m.val_bpb for m in old])
    assert round(result.t, 2) == -11.83 and round(result.df, 2) == 3.31
    assert round(result.delta, 5) == -0.00464
    nats = welch_improvement([m.val_loss for m in new], [m.val_loss for m in old])
    assert round(nats.delta, 5) == -0.00784


def test_pr1915_one_sample_from_summary() -> None:
    result = one_sample_from_summary(1.06504520, 0.00073, 3, reference=1.0810, margin=0.0)
    assert round(result.p, 6) == 0.000349


def test_margin_conversion_uses_the_runs_tokens_per_byte() -> None:
    sp1024 = read_log(BASELINE / "train.log", "b").scored
    sp8192 = read_log(PR1855 / "train_seed42.log", "c").scored
    ratio_1024 = tokens_per_byte(sp1024.val_loss, sp1024.val_bpb)
    ratio_8192 = tokens_per_byte(sp8192.val_loss, sp8192.val_bpb)
    assert round(nats_to_bpb(0.005, ratio_1024), 4) == 0.0030  # catalogue R8: ~0.0030 bpb for SP1024
    assert round(nats_to_bpb(0.005, ratio_8192), 4) == 0.0023  # CaseOps SP8192 (plain SP8192 is ~0.0019)
    assert nats_to_bpb(0.005, ratio_1024) != pytest.approx(0.005 / math.log(2))  # the wrong 0.0072 conversion
    assert bpb_to_nats(nats_to_bpb(0.005, ratio_8192), ratio_8192) == pytest.approx(0.005)


def test_degenerate_inputs() -> None:
    with pytest.raises(ValueError):
        one_sample_improvement([1.0], 1.1, 0.0)
    with pytest.raises(ValueError):
        welch_improvement([1.0, 1.1], [1.2])
    assert math.isnan(sample_sd([1.0]))
    identical = one_sample_improvement([1.0, 1.0, 1.0], reference=1.1, margin=0.005)
    assert identical.t == math.inf and identical.p == 0.0
    same = welch_from_summary(1.0, 0.0, 3, 1.0, 0.0, 3)
    assert same.t == 0.0 and same.p == 0.5


@given(st.lists(st.floats(1.0, 1.3), min_size=2, max_size=6), st.lists(st.floats(1.0, 1.3), min_size=2, max_size=6))
def test_welch_is_antisymmetric(a: list[float], b: list[float]) -> None:
    if sample_sd(a) < 1e-9 or sample_sd(b) < 1e-9:
        return
    ab, ba = welch_improvement(a, b), welch_improvement(b, a)
    assert ab.t == pytest.approx(-ba.t) and ab.df == pytest.approx(ba.df)
    assert ab.p + ba.p == pytest.approx(1.0)

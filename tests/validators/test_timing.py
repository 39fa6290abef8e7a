"""PG502 train time, PG503 eval time, PG504 training data read after the cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgaudit.findings import Severity
from pgaudit.policy import Policy
from tests.fixture_paths import PR1019, PR1493, PR1855, RECORD
from tests.validators.helpers import README, SCRIPT, log_text, make_folder, only, validate

SCORE = "quantized_ttt val_loss:2.79 val_bpb:1.08000000 eval_time:300000ms"


def folder_with(tmp_path: Path, log: str, track: str = "track_10min_16mb") -> Path:
    return make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT, "train_seed42.log": log,
                                  "submission.json": {"author": "a", "val_bpb": 1.08}}, track=track)


@pytest.mark.parametrize(("train_ms", "expected"), [(600_000, []), (600_137, []), (600_138, ["warning"]),
                                                      (600_365, ["warning"]), (601_001, ["error"]),
                                                      (601_153, ["error"])])
def test_final_step_overshoot_up_to_the_accepted_maximum(tmp_path: Path, train_ms: int, expected: list) -> None:
    log = log_text(f"stopping_early: wallclock_cap train_time: {train_ms}ms step: 4650/20000", SCORE)
    findings = only(validate(folder_with(tmp_path, log)), "PG502")
    assert [f.severity.label for f in findings] == expected
    if expected:
        assert f"{train_ms:,} ms" in findings[0].message and "600,137" in findings[0].message
        assert findings[0].evidence[0].startswith("train_seed42.log:9: stopping_early")


def test_the_accepted_overshoot_is_a_policy_value(tmp_path: Path) -> None:
    log = log_text("stopping_early: wallclock_cap train_time: 600100ms step: 4650/20000", SCORE)
    folder = folder_with(tmp_path, log)
    strict = Policy(accepted_train_time_ms=600_000, train_time_warning_ms=600_000)
    assert [f.severity.label for f in only(validate(folder, strict), "PG502")] == ["error"]
    lenient = Policy(accepted_train_time_ms=600_000)
    assert [f.severity.label for f in only(validate(folder, lenient), "PG502")] == ["warning"]


def test_accepted_records_with_600_1xx_ms_are_clean() -> None:
    for folder in (PR1019, RECORD / "2026-03-23_LeakyReLU_LegalTTT_ParallelMuon"):
        assert only(validate(folder), "PG502") == []


def test_wallclock_disabled_or_raised_is_a_warning(tmp_path: Path) -> None:
    log = log_text("step:20000/20000 val_loss:2.0 val_bpb:1.2 train_time:590000ms", SCORE).replace(
        "max_wallclock_seconds: 600.0", "max_wallclock_seconds: 0")
    (finding,) = only(validate(folder_with(tmp_path, log)), "PG502")
    assert finding.severity is Severity.WARNING and "MAX_WALLCLOCK_SECONDS=0" in finding.message
    assert finding.location.line == 4


def test_step_count_stop_is_a_warning(tmp_path: Path) -> None:
    log = log_text("stopping_early: wallclock_cap train_time: 590000ms step: 4650/20000", SCORE,
                   extra_hp="  force_stop_step: 4650")
    (finding,) = only(validate(folder_with(tmp_path, log)), "PG502")
    assert finding.severity is Severity.WARNING and "force_stop_step=4650" in finding.message


def test_non_record_track_and_fewer_gpus_are_not_held_to_the_clock(tmp_path: Path) -> None:
    log = log_text("stopping_early: wallclock_cap train_time: 14400000ms step: 85242/5000000", SCORE)
    assert only(validate(folder_with(tmp_path / "a", log, "track_non_record_16mb")), "PG502") == []
    small = log_text("stopping_early: wallclock_cap train_time: 2400107ms step: 4650/20000", SCORE, world_size=2)
    assert only(validate(folder_with(tmp_path / "b", small)), "PG502") == []


def test_total_eval_time_over_the_cap_is_an_error(tmp_path: Path) -> None:
    log = log_text("stopping_early: wallclock_cap train_time: 590000ms step: 4650/20000", "beginning TTT eval timer",
                   "quantized_ttt_phased val_loss:2.3 val_bpb:1.06000000 eval_time:688000ms", "total_eval_time:688.0s")
    (finding,) = only(validate(folder_with(tmp_path, log)), "PG503")
    assert finding.severity is Severity.ERROR and "688 s" in finding.message and "PR #1972" in finding.message


def test_scored_eval_alone_over_the_cap_is_an_error(tmp_path: Path) -> None:
    log = log_text("legal_ttt val_loss:1.8898 val_bpb:1.1192 eval_time:607000ms",
                   "legal_ttt_exact val_loss:1.88976776 val_bpb:1.11922988")
    (finding,) = only(validate(folder_with(tmp_path, log)), "PG503")
    assert finding.severity is Severity.ERROR and "legal_ttt" in finding.message


def test_sum_of_passes_over_the_cap_without_a_total_is_a_warning(tmp_path: Path) -> None:
    log = log_text("final_int6_roundtrip_exact val_loss:1.93 val_bpb:1.14500000 eval_time:40000ms",
                   "final_int6_sliding_window_exact val_loss:1.89 val_bpb:1.12100000 eval_time:200000ms",
                   "legal_ttt_exact val_loss:1.88 val_bpb:1.11900000 eval_time:410000ms")
    (finding,) = only(validate(folder_with(tmp_path, log)), "PG503")
    assert finding.severity is Severity.WARNING and "650.0 s" in finding.message


def test_accepted_eval_times_are_clean() -> None:
    for folder in (PR1855, PR1493, RECORD / "2026-03-23_LeakyReLU_LegalTTT_ParallelMuon"):
        assert only(validate(folder), "PG503") == []


def test_hessians_from_training_data_after_the_cap_pr1855() -> None:
    # A reserve was configured (0.5 s) but too short: the merged record's known inconsistency, a warning.
    findings = only(validate(PR1855), "PG504")
    assert {f.severity for f in findings} == {Severity.WARNING} and len(findings) == 3
    seed42 = next(f for f in findings if f.location.path == "train_seed42.log")
    assert "599,592 ms" in seed42.message and "4.7 s" in seed42.message and "PR #1855" in seed42.message
    assert any("GPTQ:collected 67 Hessians in 4.7s" in e for e in seed42.evidence)
    assert any("gptq:reserving 0s" in e for e in seed42.evidence)


def test_training_data_after_the_cap_without_a_reserve_is_an_error(tmp_path: Path) -> None:
    # The pattern ruled on PR #1028: training ran to the cap, then calibration read training shards.
    log = log_text("stopping_early: wallclock_cap train_time: 600024ms step: 5000/20000",
                   "gptq:calibrating with training data...", "gptq:calibrated 68 layers in 3.6s", SCORE)
    findings = only(validate(folder_with(tmp_path, log)), "PG504")
    assert [f.severity for f in findings] == [Severity.ERROR]
    assert "PR #1028" in findings[0].message and "3.6 s past" in findings[0].message


def test_reserve_overrun_beyond_the_grace_is_an_error(tmp_path: Path) -> None:
    log = log_text("gptq:reserving 2s, effective=598000ms", "stopping_early: wallclock_cap train_time: 598010ms step: 5000/20000",
                   "GPTQ:collected 67 Hessians in 9.5s", SCORE)
    findings = only(validate(folder_with(tmp_path, log)), "PG504")
    assert [f.severity for f in findings] == [Severity.ERROR]


def test_small_overrun_with_a_reserve_is_a_warning_pr1493() -> None:
    findings = only(validate(PR1493), "PG504")
    assert findings and {f.severity for f in findings} == {Severity.WARNING}


def test_self_generated_calibration_and_rerun_with_reserve_are_clean() -> None:
    assert only(validate(PR1019), "PG504") == []  # 196.7 s after the cap, but no dataset is read
    support = only(validate(RECORD / "2026-04-29_SmearGateBOSFix_3Seed_1.06141"), "PG504")
    assert support and all("rerun" not in f.location.path for f in support)  # GPTQ_RESERVE_SECONDS=8 reruns pass

"""PG507 claims-mismatch: submission.json against the logs, within the printed precision."""

from __future__ import annotations

from pathlib import Path

from pgaudit.findings import Severity
from tests.fixture_paths import BASELINE, PR1019, PR1855, RECORD, SEQ2048, TERNARY
from tests.validators.helpers import README, SCRIPT, log_text, make_folder, only, validate


def test_consistent_records_are_clean() -> None:
    for folder in (BASELINE, SEQ2048, PR1019, PR1855, TERNARY):
        assert only(validate(folder), "PG507") == [], folder.name


def test_mean_over_seeds_and_rounding_match(tmp_path: Path) -> None:
    logs = {f"train_seed{s}.log": log_text(f"quantized val_loss:2.8 val_bpb:{v:.8f} eval_time:5000ms", seed=s)
            for s, v in ((1, 1.10000000), (2, 1.10200000), (3, 1.10400000))}
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT, **logs,
                                    "submission.json": {"author": "a", "val_bpb": 1.102, "seeds": [1, 2, 3]}})
    assert only(validate(folder), "PG507") == []


def test_claim_better_than_every_log_mlp3x_record() -> None:
    findings = only(validate(RECORD / "2026-03-19_MLP3x_QAT_Int6_SlidingWindow"), "PG507")
    score = next(f for f in findings if "val_bpb = 1.15015359" in f.message)
    assert score.severity is Severity.WARNING and score.confidence.label == "high"
    assert "better than every logged result" in score.message and "1.16660881" in score.message
    assert score.location.path == "submission.json" and score.location.line == 5
    seeds = next(f for f in findings if "lists seed(s)" in f.message)
    assert "42, 123" in seeds.message


def test_seed_label_that_the_log_contradicts_pr1626() -> None:
    findings = only(validate(RECORD / "2026-04-18_PR1626_CaseOps_Taper"), "PG507")
    relabeled = next(f for f in findings if "that score is logged by" in f.message)
    assert "for seed 0" in relabeled.message and "train_seed0.log under seed 1337" in relabeled.message
    assert "train_seed0.log:81: seed: 1337" in relabeled.evidence
    missing = next(f for f in findings if "lists seed(s) 0" in f.message)
    assert "named for seed 0 but logs another seed" in missing.message


def test_bpb_written_under_val_loss() -> None:
    findings = only(validate(RECORD / "2026-03-20_10L_Int5MLP_MuonWD04_SWA50"), "PG507")
    loss = next(f for f in findings if "val_loss = 1.14276" in f.message)
    assert "a bpb written under val_loss" in loss.message
    size = next(f for f in findings if "bytes_total = 15,900,000" in f.message)
    assert "understates the largest" in size.message


def test_seeds_with_different_configurations() -> None:
    findings = only(validate(RECORD / "2026-04-04_SP4096_DepthRecurrence_ParallelResid_MuonEqR"), "PG507")
    (config,) = [f for f in findings if "differ in configuration" in f.message]
    assert "ttt_enabled" in config.message and "train_seed42.log=True" in config.message
    assert len(config.evidence) == 3


def test_claim_matching_only_a_training_time_eval(tmp_path: Path) -> None:
    log = log_text("step:2979/20000 val_loss:2.0089 val_bpb:1.1898 train_time:600055ms",
                   "final_int8_zlib_roundtrip_exact val_loss:2.02000000 val_bpb:1.20000000")
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT, "train.log": log,
                                    "submission.json": {"author": "a", "val_bpb": 1.1898}})
    (finding,) = only(validate(folder), "PG507")
    assert "training-time eval" in finding.message and finding.severity is Severity.WARNING


def test_no_claims_or_no_logs_is_left_to_pg506(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT,
                                    "submission.json": {"author": "a", "val_bpb": 1.1}})
    assert only(validate(folder), "PG507") == []

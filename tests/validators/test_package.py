"""PG506 incomplete-package: the required files, found under their accepted nonstandard names."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgaudit.findings import Severity
from tests.fixture_paths import NON_RECORD, RECORD, TERNARY
from tests.validators.helpers import README, SCRIPT, log_text, make_folder, only, validate

LOG = log_text("quantized val_loss:2.8 val_bpb:1.10000000 eval_time:5000ms")
JSON = {"author": "a", "github_id": "a", "val_bpb": 1.1}


def test_complete_package_is_clean(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT, "train.log": LOG,
                                    "submission.json": JSON})
    assert only(validate(folder), "PG506") == []


def test_nonstandard_accepted_names_are_found(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt_cuda_ternary.py": SCRIPT,
                                    "logs/train0.txt": LOG, "submission_ternary.json": JSON})
    assert only(validate(folder), "PG506") == []
    assert only(validate(TERNARY), "PG506") == []


@pytest.mark.parametrize("missing", ["README.md", "train_gpt.py", "train.log", "submission.json"])
def test_each_missing_file_is_an_error_in_the_record_track(tmp_path: Path, missing: str) -> None:
    files = {"README.md": README, "train_gpt.py": SCRIPT, "train.log": LOG, "submission.json": JSON}
    del files[missing]
    (finding,) = only(validate(make_folder(tmp_path, files)), "PG506")
    assert finding.severity is Severity.ERROR and finding.catalogue_ids == ("R29",)


def test_missing_files_are_warnings_in_the_non_record_track() -> None:
    findings = only(validate(NON_RECORD / "2026-04-05_118M_XNOR-Net_FP8_1024D_10L"), "PG506")
    assert [(f.severity, "submission.json" in f.message) for f in findings] == [(Severity.WARNING, True)]


def test_malformed_json_is_a_finding(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT, "train.log": LOG,
                                    "submission.json": '{"val_bpb": 1.1,'})
    (finding,) = only(validate(folder), "PG506")
    assert finding.severity is Severity.ERROR and "not valid JSON" in finding.message


def test_accepted_variants_of_the_json_are_warnings() -> None:
    no_author = only(validate(RECORD / "2026-03-19_smeargate_orthoinit_muonwd"), "PG506")
    assert [f.severity for f in no_author] == [Severity.WARNING] and "author" in no_author[0].message
    bpb_under_val_loss = only(validate(RECORD / "2026-03-20_10L_Int5MLP_MuonWD04_SWA50"), "PG506")
    assert [f.severity for f in bpb_under_val_loss] == [Severity.WARNING]
    assert only(validate(RECORD / "2026-03-19_SlidingWindow_FP16Emb_10L_MuonWD_OvertoneInit"), "PG506") == []


def test_no_score_at_all_is_an_error(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT, "train.log": LOG,
                                    "submission.json": {"author": "a", "name": "x"}})
    (finding,) = only(validate(folder), "PG506")
    assert finding.severity is Severity.ERROR and "claims no score" in finding.message


def test_data_only_fixture_folders_need_only_their_data_files() -> None:
    assert only(validate(RECORD / "2026-04-27_SP8192_LQER_SparseGate_BOSSmearFix_9HpStack_1.0611"), "PG506") == []
    stray = only(validate(RECORD / "2026-03-19_int6_STE QAT_ MLP_bigram _U_Net"), "PG506")
    assert [f.severity for f in stray] == [Severity.ERROR] and "submission.json" in stray[0].message

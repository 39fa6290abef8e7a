"""PG501 artifact-over-cap: the logged total, the committed-file interpretation, helper code."""

from __future__ import annotations

import shutil
from pathlib import Path

from pgaudit.findings import Severity
from tests.fixture_paths import NON_RECORD, PR1855
from tests.validators.helpers import README, SCRIPT, log_text, make_folder, only, validate

# PR #1835 (https://github.com/openai/parameter-golf/pull/1835), seed 1337: numbers from its log.
PR1835_SIZES = ("Serialized model: 135431033 bytes", "Code size: 104721 bytes",
                "Serialized model quantized+brotli: 15966600 bytes",
                "Total submission size quantized+brotli: 16071321 bytes",
                "quantized_sliding_window_ttt val_loss:2.78770694 val_bpb:1.07942956 eval_time:420665ms")


def test_pr1835_over_cap_artifact_is_an_error(tmp_path: Path) -> None:
    log = log_text("stopping_early: wallclock_cap train_time: 598141ms step: 4650/20000", *PR1835_SIZES, seed=1337)
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT, "train_seed1337.log": log,
                                    "submission.json": {"author": "a", "val_bpb": 1.07942956}})
    (finding,) = only(validate(folder), "PG501")
    assert finding.severity is Severity.ERROR and finding.confidence.label == "high"
    assert "16,071,321" in finding.message and "71,321 over" in finding.message
    assert finding.location.path == "train_seed1337.log" and finding.location.line == 13
    assert any("Total submission size quantized+brotli: 16071321 bytes" in e for e in finding.evidence)
    assert finding.catalogue_ids == ("R1", "R2") and "pull/1835" in " ".join(finding.ruling_urls)
    assert finding.reachability is None and finding.fix


def test_a_run_logged_twice_is_reported_once(tmp_path: Path) -> None:
    # PR #1835 ships final_model_source.log, a copy of train_seed1337.log whose tail is printed twice.
    log = log_text("stopping_early: wallclock_cap train_time: 598141ms step: 4650/20000", *PR1835_SIZES, seed=1337)
    tail = "\n".join(["train_shards: 80", *log.splitlines()[6:]]) + "\n"
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT, "final_model_source.log": log + tail,
                                    "train_seed1337.log": log + tail,
                                    "submission.json": {"author": "a", "val_bpb": 1.07942956}})
    (finding,) = only(validate(folder), "PG501")
    assert finding.location.path == "train_seed1337.log" and finding.message.startswith("seed 1337:")


def test_pr1855_committed_file_interpretation_is_information(tmp_path: Path) -> None:
    # The real logs; a generated stand-in for the 158,429-byte readable train_gpt.py that was committed.
    script = "import os\n" + "# padding\n" * 10000
    script += "#" * (158_429 - len(script.encode()) - 1) + "\n"
    files: dict = {"README.md": README, "train_gpt.py": script}
    folder = make_folder(tmp_path, files)
    for log in PR1855.glob("*.log"):
        shutil.copy(log, folder / log.name)
    shutil.copy(PR1855 / "submission.json", folder / "submission.json")
    assert (folder / "train_gpt.py").stat().st_size == 158_429
    (finding,) = only(validate(folder), "PG501")  # one note for the folder, every seed's numbers in it
    assert finding.severity is Severity.INFO and finding.location.path == "train_seed0.log"
    assert "accepted in practice" in finding.message
    assert "seed 42: logged total 15,897,259; committed-file interpretation 16,023,689" in finding.message
    assert len(finding.related) == 2 and len(finding.evidence) == 9


def test_helper_code_on_the_scoring_path_is_a_warning(tmp_path: Path) -> None:
    entry = "import tilt_helper\n\nKERNEL = 'fused_kernel.cpp'\n\nprint(tilt_helper.X)\n"
    log = log_text("stopping_early: wallclock_cap train_time: 588000ms step: 4650/20000",
                   "Serialized model quantized+brotli: 15985000 bytes", "Code size: 10000 bytes",
                   "Total submission size quantized+brotli: 15995000 bytes",
                   "quantized_ttt val_loss:2.79 val_bpb:1.08000000 eval_time:300000ms")
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": entry, "train_seed42.log": log,
                                    "tilt_helper.py": "X = 1\n" + "#" * 8000 + "\n",
                                    "kernels/fused_kernel.cpp": "//" + "x" * 9000 + "\n",
                                    "submission.json": {"author": "a", "val_bpb": 1.08}})
    (finding,) = only(validate(folder), "PG501")
    assert finding.severity is Severity.WARNING and finding.confidence.label == "low"
    assert "tilt_helper.py" in finding.message and "kernels/fused_kernel.cpp" in finding.message


def test_non_record_over_cap_is_still_an_error_and_the_json_claim_too() -> None:
    findings = only(validate(NON_RECORD / "2026-03-23_DGAttention_DavidGao"), "PG501")
    assert [(f.severity, f.location.path) for f in findings] == [
        (Severity.ERROR, "submission.json"), (Severity.ERROR, "train.log")]
    assert "16,638,468" in findings[1].message


def test_under_cap_everywhere_is_silent(tmp_path: Path) -> None:
    log = log_text("Serialized model int8+zlib: 15815847 bytes", "Code size: 47642 bytes",
                   "Total submission size int8+zlib: 15863489 bytes",
                   "final_int8_zlib_roundtrip_exact val_loss:2.07269931 val_bpb:1.22436570")
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT, "train_seed42.log": log,
                                    "submission.json": {"author": "a", "val_bpb": 1.2243657}})
    assert only(validate(folder), "PG501") == []


def test_tokenizer_model_files_do_not_count(tmp_path: Path) -> None:
    log = log_text("Serialized model quantized+brotli: 15900000 bytes", "Code size: 90000 bytes",
                   "Total submission size quantized+brotli: 15990000 bytes",
                   "quantized val_loss:2.8 val_bpb:1.10000000 eval_time:5000ms")
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": SCRIPT, "train_seed42.log": log,
                                    "fineweb_8192_bpe.model": b"\x00" * 370_917,
                                    "submission.json": {"author": "a", "val_bpb": 1.1}})
    assert only(validate(folder), "PG501") == []

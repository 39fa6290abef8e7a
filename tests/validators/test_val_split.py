"""PG510 val-split-integrity: val token counts, doubled data paths, prep-script defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgaudit.findings import Severity
from pgaudit.policy import Policy
from tests.fixture_paths import BASELINE, PR1855, RECORD
from tests.validators.helpers import README, SCRIPT, make_folder, only, validate

SCORE = "final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.20000000"


def folder_with_tokens(tmp_path: Path, tokens: int, tokenizer: str, seq_len: int, extra: dict | None = None) -> Path:
    log = "\n".join([f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path=./data/tokenizers/{tokenizer}",
                     f"val_loader:shards pattern=./x/fineweb_val_*.bin tokens:{tokens}",
                     f"train_batch_tokens:524288 train_seq_len:{seq_len} iterations:20000", "seed:1", SCORE]) + "\n"
    files = {"README.md": README, "train_gpt.py": SCRIPT, "train.log": log, "submission.json": {"author": "a", "val_bpb": 1.2}}
    return make_folder(tmp_path, {**files, **(extra or {})})


@pytest.mark.parametrize(
    ("tokens", "tokenizer", "seq_len", "flagged"),
    [
        (62_021_632, "fineweb_1024_bpe.model", 1024, False),
        (61_997_056, "fineweb_1024_bpe.model", 32768, False),  # tail truncation at a long sequence length
        (63_779_840, "fineweb_1024_bpe.model", 1024, False),  # the 2026-03-17 baseline's count
        (40_548_352, "fineweb_8192_bpe.model", 2048, True),  # PR #1835's count: more than canonical
        (9_500_000, "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model", 2048, True),
        (45_508_608, "fineweb_4096_bpe.model", 2048, False),  # no canonical count known: not checked
    ],
)
def test_val_token_counts(tmp_path: Path, tokens: int, tokenizer: str, seq_len: int, flagged: bool) -> None:
    findings = only(validate(folder_with_tokens(tmp_path, tokens, tokenizer, seq_len)), "PG510")
    assert bool(findings) == flagged
    if flagged:
        assert findings[0].severity is Severity.WARNING and f"{tokens:,}" in findings[0].message


def test_canonical_counts_are_a_policy_value(tmp_path: Path) -> None:
    folder = folder_with_tokens(tmp_path, 45_508_608, "fineweb_4096_bpe.model", 2048)
    policy = Policy.from_mapping({"canonical_val_tokens": {"fineweb_4096_bpe.model": [45_514_752]}})
    assert [f.code for f in validate(folder, policy) if f.code == "PG510"] == ["PG510"]


def test_doubled_datasets_path_is_one_warning_per_folder() -> None:
    (finding,) = only(validate(RECORD / "2026-04-29_SmearGateBOSFix_3Seed_1.06141"), "PG510")
    # Only the submitted runs count: the claimed per-seed scores are the `*_original.log` runs; the
    # `*_rerun_gptq8s.log` compliance reruns of the same seeds are not the submitted runs.
    assert finding.severity is Severity.WARNING and "2 run(s)" in finding.message
    assert "rerun" not in finding.message.split(")")[0]
    assert finding.confidence.label == "low" and "val_tokens 47,851,520" in finding.message


def test_prep_script_default(tmp_path: Path) -> None:
    prep = 'import argparse\nap = argparse.ArgumentParser()\nap.add_argument("--val-docs", type=int, default=10_000)\n'
    clean = folder_with_tokens(tmp_path / "a", 62_021_632, "fineweb_1024_bpe.model", 1024, {"prepare_data.py": prep})
    (finding,) = only(validate(clean), "PG510")
    assert finding.severity is Severity.INFO and finding.location == type(finding.location)("prepare_data.py", 3)
    suspicious = folder_with_tokens(tmp_path / "b", 9_500_000, "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model",
                                    2048, {"prepare_data.py": prep})
    assert sorted(f.severity.label for f in only(validate(suspicious), "PG510")) == ["warning", "warning"]


def test_canonical_records_are_clean() -> None:
    for folder in (BASELINE, PR1855):
        assert only(validate(folder), "PG510") == []

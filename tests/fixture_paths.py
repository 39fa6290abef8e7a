"""Where the fixture records are: `tests/fixtures/records` (real data files of merged records, see its NOTICE.md)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "records"
RECORD = FIXTURES / "track_10min_16mb"
NON_RECORD = FIXTURES / "track_non_record_16mb"

# Folders of the records quoted by the catalogue (§13, R8).
BASELINE = RECORD / "2026-03-17_NaiveBaseline"
SEQ2048 = RECORD / "2026-03-18_LongContextSeq2048"  # PR #49
SEQ4096 = RECORD / "2026-03-19_TrainingOptSeq4096"  # PR #52
PR549 = RECORD / "2026-03-23_LeakyReLU_LegalTTT_ParallelMuon"
TERNARY = RECORD / "2026-03-24_74M_Ternary_UNet_FP8_10L_8192BPE_YaRN_NeoMuon"
PR1019 = RECORD / "2026-03-25_ValCalib_GPTQ_XSA_BigramHash3072"
PR1493 = RECORD / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT"
PR1855 = RECORD / "2026-04-27_SP8192_LQER_SparseGate_BOSSmearFix_9HpStack_1.0611"


def fixture_logs() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix in (".log", ".txt")
                  and not p.name.startswith("requirements"))


def fixture_folders() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("track_*/*") if p.is_dir())


def rel(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()

"""Byte accounting (R27/R28) on the real SentencePiece models of merged records, with generated text.

The 8192 BPE model is the plain FineWeb tokenizer; the CaseOps one is the lossless-case tokenizer of
PR #1729, whose operator pieces are not original bytes and need a per-token byte sidecar.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pgaudit import bytes_accounting as ba
from pgaudit import caseops, shards
from reference_trainer import corpus

RECORDS = Path(__file__).resolve().parent / "fixtures" / "records"
PLAIN_MODEL = (
    RECORDS
    / "track_10min_16mb/2026-03-24_74M_Ternary_UNet_FP8_10L_8192BPE_YaRN_NeoMuon/fineweb_8192_bpe.model"
)
CASEOPS_MODEL = (
    RECORDS
    / "track_10min_16mb/2026-04-19_SP8192_CaseOps_GatedAttn_QuantGate_Loop45_PhasedTTT/tokenizers"
    / "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model"
)
N_DOCS = 30


@dataclass(frozen=True)
class ValSet:
    dir: Path
    texts: list[str]  # original documents
    tokens: np.ndarray
    sidecar: np.ndarray  # correct per-token original bytes (0 for BOS)

    @property
    def val(self) -> str:
        return str(self.dir / "fineweb_val_*.bin")

    @property
    def original_bytes(self) -> int:
        return sum(len(t.encode("utf-8")) for t in self.texts)


def _token_original_bytes(sp: object, ids: list[int], transform: bool) -> list[int]:
    """Per-token bytes by decoding growing prefixes: slow, but independent of the byte tables."""
    out, before = [], 0
    for k in range(1, len(ids) + 1):
        text = sp.decode(ids[:k]).rstrip("\ufffd")  # a half-decoded UTF-8 sequence counts when complete
        if transform:
            text = caseops.decode(text, strict=False)
        now = len(text.encode("utf-8"))
        out.append(now - before)
        before = now
    return out


def _make_val(directory: Path, model: Path, transform: bool, seed: int = 11) -> ValSet:
    sp = ba.load_tokenizer(model)
    texts = list(corpus.documents(seed=seed, count=N_DOCS))
    tokens: list[int] = []
    sidecar: list[int] = []
    for text in texts:
        ids = sp.encode(caseops.encode(text) if transform else text)
        tokens += [sp.bos_id(), *ids]
        sidecar += [0, *_token_original_bytes(sp, ids, transform)]
    directory.mkdir(parents=True)
    shards.write_shard(directory / "fineweb_val_000000.bin", np.array(tokens))
    return ValSet(directory, texts, np.array(tokens, dtype=np.uint16), np.array(sidecar))


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> ValSet:
    return _make_val(tmp_path_factory.mktemp("plain") / "data", PLAIN_MODEL, transform=False)


@pytest.fixture(scope="module")
def cased(tmp_path_factory: pytest.TempPathFactory) -> ValSet:
    return _make_val(tmp_path_factory.mktemp("caseops") / "data", CASEOPS_MODEL, transform=True)


def _write_sidecar(values: np.ndarray, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    shards.write_shard(directory / "fineweb_val_bytes_000000.bin", values)
    return str(directory / "fineweb_val_bytes_*.bin")


def _check(report: ba.BpbReport, name: str) -> ba.Check:
    return next(c for c in report.checks if c.name == name)


# ---------------------------------------------------------------- the tables themselves


def test_tables_follow_the_baseline_rules() -> None:
    sp = ba.load_tokenizer(PLAIN_MODEL)
    t = ba.build_byte_tables(sp, table_size=9000)
    assert t.base_bytes.size == 9000 and t.is_boundary[8192:].all()
    for i in (sp.bos_id(), sp.eos_id(), sp.pad_id(), sp.unk_id()):
        assert t.is_boundary[i] and t.base_bytes[i] == 0
    byte_ids = [i for i in range(sp.vocab_size()) if sp.is_byte(i)]
    assert len(byte_ids) == 256 and (t.base_bytes[byte_ids] == 1).all()
    space = sp.piece_to_id("\u2581")
    assert t.has_leading_space[space] and t.base_bytes[space] == 0
    world = sp.piece_to_id("\u2581World")
    assert t.has_leading_space[world] and t.base_bytes[world] == 5


@pytest.mark.parametrize("model", [PLAIN_MODEL, CASEOPS_MODEL], ids=["sp8192", "sp8192-caseops"])
def test_formula_equals_utf8_bytes_of_decoded_text(model: Path) -> None:
    """Per document: sum of formula bytes over [BOS] + ids == UTF-8 bytes of sp.decode(ids)."""
    sp = ba.load_tokenizer(model)
    tables = ba.build_byte_tables(sp)
    for text in corpus.documents(seed=3, count=40):
        ids = [sp.bos_id(), *sp.encode(text)]
        counted = int(ba.target_bytes(np.array(ids), tables).sum())
        assert counted == len(sp.decode(ids[1:]).encode("utf-8")), text[:60]


def test_tiny_tokenizer_counts_match_decoded_text(tmp_path: Path) -> None:
    from reference_trainer.tinydata import train_tokenizer

    model = tmp_path / "tiny.model"
    train_tokenizer(corpus.documents(seed=5, count=300), model, vocab_size=512)
    sp = ba.load_tokenizer(model)
    tables = ba.build_byte_tables(sp)
    for text in corpus.documents(seed=6, count=40):
        ids = [sp.bos_id(), *sp.encode(text)]
        assert int(ba.target_bytes(np.array(ids), tables).sum()) == len(text.encode("utf-8"))


# ---------------------------------------------------------------- verify


def test_plain_tokenizer_counts_agree(plain: ValSet) -> None:
    report = ba.verify(PLAIN_MODEL, plain.val)
    assert not report.mismatch, report.checks
    assert report.documents == N_DOCS and report.transform == "none"
    assert report.formula_bytes == report.decoded_bytes == plain.original_bytes
    assert report.reencode_mismatch_docs == 0


def test_caseops_without_sidecar_is_flagged(cased: ValSet) -> None:
    report = ba.verify(CASEOPS_MODEL, cased.val)
    assert report.transform == "caseops" and report.mismatch
    assert report.decoded_bytes == cased.original_bytes
    assert report.formula_bytes > report.decoded_bytes  # operator pieces are 3 UTF-8 bytes each
    check = _check(report, "formula-equals-decoded")
    assert check.severity == "error" and "needs a per-token byte sidecar" in check.message


def test_caseops_with_true_sidecar_agrees(cased: ValSet, tmp_path: Path) -> None:
    report = ba.verify(CASEOPS_MODEL, cased.val, _write_sidecar(cased.sidecar, tmp_path / "side"))
    assert not report.mismatch, report.checks
    assert report.sidecar_bytes == report.decoded_bytes == cased.original_bytes
    assert _check(report, "formula-equals-decoded").severity == "info"


def test_caseops_sidecar_that_counts_operators_is_flagged(cased: ValSet, tmp_path: Path) -> None:
    tables = ba.build_byte_tables(ba.load_tokenizer(CASEOPS_MODEL))
    lut_sidecar = np.concatenate([[0], ba.target_bytes(cased.tokens, tables)])
    report = ba.verify(CASEOPS_MODEL, cased.val, _write_sidecar(lut_sidecar, tmp_path / "side"))
    assert report.mismatch
    assert "operator bytes counted" in _check(report, "sidecar-equals-decoded").message


@pytest.mark.parametrize(
    ("bug", "expected"),
    [
        ("double_space", "a leading space counted twice"),
        ("no_space", "leading spaces not counted at all"),
    ],
)
def test_sidecar_with_a_known_bug_is_named(plain: ValSet, tmp_path: Path, bug: str, expected: str) -> None:
    tables = ba.build_byte_tables(ba.load_tokenizer(PLAIN_MODEL))
    tok = plain.tokens.astype(np.int64)
    lead = np.concatenate([[False], tables.has_leading_space[tok[1:]]])
    after_boundary = np.concatenate([[False], tables.is_boundary[tok[:-1]]])
    values = plain.sidecar.copy()
    if bug == "double_space":
        values += lead
    else:
        values -= lead & ~after_boundary
    report = ba.verify(PLAIN_MODEL, plain.val, _write_sidecar(values, tmp_path / "side"))
    check = _check(report, "sidecar-equals-decoded")
    assert report.mismatch and not check.ok
    assert expected in check.message


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (12, "a leading space counted twice"),
        (36, "'▁' counted as its 3 UTF-8 bytes and the space added again"),
        (26, "'▁' counted as its 3 UTF-8 bytes instead of 1 space"),
        (2, "after a document boundary"),
        (-10, "leading spaces not counted at all"),
        (35, "byte-fallback tokens counted by their piece spelling"),
        (7, None),
    ],
)
def test_signature_names_each_known_bug(delta: int, expected: str | None) -> None:
    sig = ba._Signature(lead_after_text=10, lead_after_boundary=2, byte_tokens=7)
    text = sig.explain(1000 + delta, 1000)
    assert (expected in text) if expected else text == ""


def test_few_reencode_differences_are_a_warning_many_an_error() -> None:
    report = ba.BpbReport("m", 10, [], [], "none", documents=1000, reencode_mismatch_docs=5)
    assert ba._reencode_check(report).severity == "warning"
    report.reencode_mismatch_docs = 50
    assert ba._reencode_check(report).severity == "error"


def test_malformed_caseops_text_is_flagged(tmp_path: Path) -> None:
    sp = ba.load_tokenizer(CASEOPS_MODEL)
    ids = [sp.bos_id(), sp.piece_to_id(caseops.TITLE), *sp.encode(" 42 apples")]  # TITLE before a digit
    shards.write_shard(tmp_path / "fineweb_val_000000.bin", np.array(ids))
    report = ba.verify(CASEOPS_MODEL, str(tmp_path / "fineweb_val_*.bin"))
    assert report.mismatch and _check(report, "caseops-decodable").severity == "error"


def test_unknown_private_use_pieces_get_a_warning(tmp_path: Path) -> None:
    import sentencepiece as spm

    model = tmp_path / "pua.model"
    with open(model, "wb") as fh:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(list(corpus.documents(seed=2, count=200))), model_writer=fh,
            vocab_size=600, user_defined_symbols=["\ue0aa"], byte_fallback=True, minloglevel=2,
        )  # fmt: skip
    sp = ba.load_tokenizer(model)
    data = tmp_path / "data"
    data.mkdir()
    shards.write_shard(data / "fineweb_val_000000.bin", np.array([sp.bos_id(), *sp.encode("a \ue0aa b")]))
    report = ba.verify(model, str(data / "fineweb_val_*.bin"))
    check = _check(report, "text-transform")
    assert check.severity == "warning" and not report.mismatch and report.transform == "none"


def test_shards_from_another_tokenizer_are_flagged(plain: ValSet, cased: ValSet) -> None:
    for model, data in ((CASEOPS_MODEL, plain), (PLAIN_MODEL, cased)):
        report = ba.verify(model, data.val)
        check = _check(report, "tokenizer-matches-shards")
        assert report.mismatch and check.severity == "error", model


def test_token_ids_beyond_the_vocabulary_are_flagged(plain: ValSet, tmp_path: Path) -> None:
    from reference_trainer.tinydata import train_tokenizer

    model = tmp_path / "tiny.model"
    train_tokenizer(corpus.documents(seed=5, count=200), model, vocab_size=600)
    report = ba.verify(model, plain.val)
    assert report.mismatch and report.checks[0].name == "token-ids-in-vocabulary"


def test_a_stream_that_starts_mid_document_skips_that_part(plain: ValSet, tmp_path: Path) -> None:
    cut = tmp_path / "cut"
    cut.mkdir()
    shards.write_shard(cut / "fineweb_val_000000.bin", plain.tokens[5:])
    report = ba.verify(PLAIN_MODEL, str(cut / "fineweb_val_*.bin"))
    assert not report.mismatch
    assert report.documents == N_DOCS - 1 and report.skipped_prefix_tokens > 0
    assert report.formula_bytes_compared == report.decoded_bytes < report.formula_bytes


# ---------------------------------------------------------------- the CLI


def _run_cli(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    from pgaudit import cli

    monkeypatch.setattr(sys, "argv", ["pgaudit", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_cli_exit_0_with_table(
    plain: ValSet, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run_cli(["bpb", "--tokenizer", str(PLAIN_MODEL), "--val", plain.val], monkeypatch, capsys)
    assert code == 0
    assert "decoded UTF-8 bytes" in out and str(plain.original_bytes) in out and "byte counts agree" in out


def test_cli_json_and_exit_1_on_mismatch(
    cased: ValSet, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bpb", "--tokenizer", str(CASEOPS_MODEL), "--val", cased.val, "--format", "json"]
    code, out, _ = _run_cli(args, monkeypatch, capsys)
    data = json.loads(out)
    assert code == 1 and data["mismatch"] is True
    assert data["decoded_bytes"] == cased.original_bytes and data["transform"] == "caseops"


def _bad_inputs(tmp: Path, plain: ValSet) -> dict[str, list[str]]:
    bad_magic = tmp / "magic" / "fineweb_val_000000.bin"
    bad_magic.parent.mkdir()
    bad_magic.write_bytes(b"\x01" * 1100)
    short_side = _write_sidecar(np.zeros(3, dtype=np.uint16), tmp / "short_side")
    junk_side = tmp / "junk_side" / "fineweb_val_bytes_000000.bin"
    junk_side.parent.mkdir()
    junk_side.write_bytes(b"not a shard")
    model, val = str(PLAIN_MODEL), plain.val
    return {
        "missing model": ["--tokenizer", str(tmp / "nope.model"), "--val", val],
        "not a model": ["--tokenizer", str(bad_magic), "--val", val],
        "no shard": ["--tokenizer", model, "--val", str(tmp / "none_*.bin")],
        "bad header": ["--tokenizer", model, "--val", str(bad_magic)],
        "sidecar length": ["--tokenizer", model, "--val", val, "--sidecar", short_side],
        "sidecar header": ["--tokenizer", model, "--val", val, "--sidecar", str(junk_side)],
        "no sidecar": ["--tokenizer", model, "--val", val, "--sidecar", str(tmp / "none_*.bin")],
        "bad format": ["--tokenizer", model, "--val", val, "--format", "xml"],
    }


def test_cli_bad_input_is_one_line_and_exit_2(
    plain: ValSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for case, args in _bad_inputs(tmp_path, plain).items():
        code, out, err = _run_cli(["bpb", *args], monkeypatch, capsys)
        assert code == 2, case
        assert err.startswith("pgaudit: ") and err.count("\n") == 1 and "Traceback" not in err, (case, err)
        assert out == "", case


def test_byte_accounting_and_tiny_data_do_not_import_torch() -> None:
    import subprocess

    code = (
        "import sys, pgaudit.bytes_accounting, pgaudit.shards, pgaudit.cli, reference_trainer.tinydata;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

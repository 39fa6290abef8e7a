"""Log parser: pinned results on the real formats of §13, and coverage over every fixture log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgaudit.errors import InputError
from pgaudit.logs import parse_log, read_log
from tests.fixture_paths import (
    BASELINE,
    FIXTURES,
    NON_RECORD,
    PR549,
    PR1019,
    PR1493,
    PR1855,
    RECORD,
    TERNARY,
    fixture_logs,
    rel,
)


def load(path: Path):
    return read_log(path, path.name)


def test_fixtures_present() -> None:
    assert FIXTURES.is_dir(), f"fixture records missing: {FIXTURES}"
    assert len(fixture_logs()) > 100


# --- pinned formats (catalogue §13) ------------------------------------------------------------------


def test_baseline_int8_zlib_log() -> None:
    run = load(BASELINE / "train.log")
    assert [m.method for m in run.final_metrics] == ["final_int8_zlib_roundtrip"]
    scored = run.scored
    assert (scored.bpb_text, scored.loss_text, scored.exact) == ("1.22436570", "2.07269931", True)
    assert scored.eval_time_ms == 1401
    assert run.total_bytes.bytes == 15863489 and run.total_bytes.scheme == "int8+zlib"
    assert run.model_bytes.bytes == 15815847 and run.code_bytes.bytes == 47642
    assert [s.bytes for s in run.sizes_of("raw_total")] == [67272625]  # the uncompressed total is not the artifact
    assert run.train_time_ms == 600038 and run.stop_reason == "wallclock_cap" and run.stop_step == 13780
    assert run.val_tokens == 63779840 and run.tokenizer_path.endswith("fineweb_1024_bpe.model")
    assert run.seed == 1337 and run.world_size == 8
    assert run.hyperparameters["max_wallclock_seconds"] == "600.000"
    assert run.max_wallclock_seconds == (600.0, run.hyperparameter_lines["max_wallclock_seconds"])


def test_alias_line_repeats_the_sliding_score_pr549() -> None:
    run = load(PR549 / "train_seed1337.log")
    alias = run.metric("final_int8_zlib_roundtrip")
    assert alias.alias_of == "final_int6_sliding_window"
    assert run.scored.method == "legal_ttt" and run.scored.bpb_text == "1.11922988"
    assert run.scored.eval_time_ms == 410268  # from the rounded twin line
    assert run.train_time_ms == 600128
    assert run.total_bytes.scheme == "int6+lzma" and run.total_bytes.bytes == 15977386


def test_spaced_key_value_format_pr1493() -> None:
    run = load(PR1493 / "train_seed42.log")
    assert run.train_time_ms == 588047 and run.stop_step == 4550 and run.planned_steps == 20000
    assert run.scored.method == "quantized_ttt" and run.scored.bpb_text == "1.08079352"
    assert run.metric("quantized_sliding_window").eval_time_ms == 120961
    assert run.code_bytes.bytes == 16630
    assert (run.total_bytes.bytes, run.total_bytes.scheme) == (15991930, "quantized+brotli")
    assert run.hyperparameters["seed"] == "42" and run.seed == 42


def test_pergroup_log_with_compressed_code_and_gptq_pr1855() -> None:
    run = load(PR1855 / "train_seed42.log")
    assert run.val_tokens == 47851520 and run.train_shards == 80
    assert [(s.kind, s.bytes) for s in run.sizes if s.kind.startswith("code")] == [
        ("code_uncompressed", 157868), ("code_compressed", 31999)]
    assert run.code_bytes.bytes == 31999  # the compressed code is what the script counted
    assert run.total_bytes.bytes == 15897259 and run.model_bytes.bytes == 15865260
    assert run.train_time_ms == 599592
    (calibration,) = run.calibrations
    assert calibration.seconds == 4.7 and calibration.after_stop and calibration.source != "self-generated"
    assert run.gptq_reserve_evidence.text.startswith("gptq:reserving 0s")
    assert run.total_eval_time_s == 508.8 and run.eval_timer_evidence is not None
    assert run.scored.method == "quantized_ttt_phased" and run.scored.eval_time_ms == 508785
    assert [m.method for m in run.metrics if m.diagnostic] == [
        "diagnostic pre-quantization post-ema", "diagnostic quantized"]
    assert run.hyperparameters["ttt_enabled"] == "True" and run.hyperparameters["gptq_reserve_seconds"] == "0.5"


def test_self_generated_calibration_pr1019() -> None:
    run = load(PR1019 / "train_seed999.log")
    assert run.train_time_ms == 600137
    assert {c.source for c in run.calibrations} == {"self-generated"}
    assert any(c.seconds == 196.5 for c in run.calibrations)


def test_ternary_budget_line_and_one_line_dump() -> None:
    run = load(TERNARY / "ternary_log_42.txt")
    assert run.total_bytes.bytes == 15993853 and run.code_bytes.bytes == 70853
    assert run.seed == 42 and run.world_size == 8  # `seed=42` in the one-line dump, `ws:8` in the params line
    assert run.scored.method == "final_sliding" and run.scored.bpb_text == "1.1565"
    assert run.scored.eval_time_ms == 429311
    assert run.train_time_ms == 599652


def test_unix_time_prefixes_are_ignored() -> None:
    run = load(RECORD / "2026-04-13_VarLenAttn_PhasingTTT2000" / "logs" / "train2.txt")
    assert run.train_time_ms == 587175
    assert run.scored is not None and run.total_bytes is not None
    assert run.seed is not None


def test_several_runs_in_one_file() -> None:
    run = load(RECORD / "2026-03-19_MixedQuant_Int6Int8_SlidingWindow" / "train.log")
    assert len(run.all_runs) == 3
    assert [r.scored.bpb_text for r in run.all_runs] == ["1.19763674", "1.20840424", "1.16301431"]
    assert run.scored.method == "final_sliding_window_eval"  # `stride:64` between method and val_loss


def test_less_precise_twin_becomes_the_alias() -> None:
    run = load(RECORD / "2026-04-06_SP8192_QK5_LegalTTT_1.0828" / "train_seed42.log")
    assert run.metric("ttt_sliding").alias_of == "legal_ttt"  # 6 decimals vs the 8 of legal_ttt_exact
    assert run.scored.method == "legal_ttt"


def test_pipe_separated_sizes_and_no_seed() -> None:
    run = load(NON_RECORD / "2026-03-31_LegendreGPT" / "train.log")
    assert run.total_bytes.bytes == 15441941 and run.model_bytes.scheme == "INT7+zlib"
    assert run.code_bytes.bytes == 70969
    assert run.scored.method == "final_INT7_zlib_roundtrip"


def test_unlabeled_total_after_a_compressed_model_is_the_artifact() -> None:
    run = load(NON_RECORD / "2026-03-23_DGAttention_DavidGao" / "train.log")
    assert run.total_bytes.bytes == 16638468
    assert run.final_metrics == [] and run.last_step_eval.bpb_text == "1.1898"


def test_ttt_only_eval_log_keeps_eval_progress_out_of_the_hyperparameters() -> None:
    folder = RECORD / "2026-04-23_SP8192_CaseOps_SparseGate_QuantGate_Loop45_PhasedTTT_PolarNS_MinLR_FusedCE"
    run = load(folder / "ttt_pr1767" / "seed_0.log")
    assert run.hyperparameters["ttt_lora_alpha"] == "144.0"
    assert not {"t", "pd", "gd", "phase"} & set(run.hyperparameters)


def test_a_log_printed_twice_is_two_identical_runs() -> None:
    block = "\n".join([
        "train_shards: 80", "val_tokens: 40548352", "stopping_early: wallclock_cap train_time: 598091ms step: 4650/20000",
        "Code size: 104721 bytes", "Serialized model quantized+brotli: 15966544 bytes",
        "Total submission size quantized+brotli: 16071265 bytes",
        "quantized_sliding_window_ttt val_loss:2.79376886 val_bpb:1.08177680 eval_time:418828ms",
    ])
    run = parse_log(block + "\n" + block + "\n", "dup.log")
    assert len(run.all_runs) == 2
    assert run.total_bytes.evidence.line == 13 and run.earlier_runs[0].total_bytes.evidence.line == 6


# --- echoed source -----------------------------------------------------------------------------------

# An invented training script, echoed the way `log0(code)` does: its format strings and its docstring look
# like result lines with other numbers.
ECHO = '''"""Example trainer. A good run prints:
final_int8_zlib_roundtrip_exact val_loss:1.00000000 val_bpb:0.90000000
Total submission size int8+zlib: 99999999 bytes
"""
import os
import math
from pathlib import Path

def main():
    seed = int(os.environ.get("SEED", 7))
    print(f"stopping_early: wallclock_cap train_time:{1}ms step:{2}/{3}")
    print("seed:12345")
    print(f"final_int8_zlib_roundtrip_exact val_loss:{0.5:.8f} val_bpb:{0.4:.8f}")

if __name__ == "__main__":
    main()
'''


def _summary(run):
    return [(r.seed, [(m.method, m.bpb_text) for m in r.metrics], [(s.kind, s.bytes) for s in r.sizes],
             r.train_time_ms, dict(r.hyperparameters)) for r in run.all_runs]


@pytest.mark.parametrize("path", [BASELINE / "train.log", PR1855 / "train_seed42.log", TERNARY / "ternary_log_7.txt"],
                         ids=lambda p: p.parent.name)
def test_echoed_source_is_not_read_as_results(path: Path) -> None:
    text = path.read_text()
    original = parse_log(text, "x")
    echoed = parse_log(ECHO + "=" * 100 + "\n" + text, "x")
    assert _summary(echoed) == _summary(original)
    assert echoed.echo_lines >= original.echo_lines + ECHO.count("\n")


def test_echo_of_the_next_run_right_after_results_is_found() -> None:
    text = (BASELINE / "train.log").read_text()
    run = parse_log(text + ECHO + "=" * 100 + "\n" + text, "x")
    assert len(run.all_runs) == 2
    assert _summary(run)[0] == _summary(run)[1]  # the first run's results are kept, the echo is skipped


def test_echo_without_a_closing_separator_ends_with_its_main_block() -> None:
    body = "seed:42\nfinal_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:1.20000000\n"
    run = parse_log(ECHO + body, "x")
    assert run.seed == 42 and run.scored.bpb_text == "1.20000000"


# --- reading -----------------------------------------------------------------------------------------


def test_read_log_refuses_what_is_not_a_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "model.log"
    binary.write_bytes(b"PK\x03\x04\x00\x00weights")
    with pytest.raises(InputError, match="binary"):
        read_log(binary, "model.log")
    with pytest.raises(InputError, match="no such file"):
        read_log(tmp_path / "missing.log", "missing.log")
    garbage = tmp_path / "latin.log"
    garbage.write_bytes(bytes(range(128, 256)) * 50)
    with pytest.raises(InputError, match="UTF-8"):
        read_log(garbage, "latin.log")
    import pgaudit.logs as logs

    monkeypatch.setattr(logs, "MAX_LOG_BYTES", 10)
    big = tmp_path / "big.log"
    big.write_text("x" * 11)
    with pytest.raises(InputError, match="limit"):
        read_log(big, "big.log")


_TOKENS = ["a", "b", ":", "=", " ", "\n", "_", ".", "0", "1", "9", "/", '"', "val_loss", "val_bpb", "step", "ms",
           "import x\n", "def f(\n", "=" * 40 + "\n", "Hyperparameters:\n", "  k: v\n", "seed:", "bytes",
           "Total submission size x: ", "stopping_early: wallclock_cap train_time:", "_exact", '"""']


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=120).map("".join))
def test_parse_never_raises(text: str) -> None:
    run = parse_log(text, "fuzz.log")
    assert all(m.val_bpb == m.val_bpb for m in run.metrics)  # no NaN reaches a result


# --- coverage over every fixture log -------------------------------------------------------------------

_FINAL_LINE = re.compile(r"^(?:\d{9,11}\.\d+\s+)?([A-Za-z][^\n]*?)\bval_loss[:=]\s*(\d[\d.]*)[^\n]*?\bval_bpb[:=]\s*(\d[\d.]*)",
                         re.MULTILINE)
_NOT_FINAL = re.compile(r"^step\b|^step:|diagnostic|pre-?quant|^DIAGNOSTIC", re.IGNORECASE)
_TOTAL_LINE = re.compile(r"^(?:\d{9,11}\.\d+\s+)?Total submission size \S+: (\d+) bytes", re.MULTILINE)
_STOP_LINE = re.compile(r"^(?:\d{9,11}\.\d+\s+)?stopping_early: \w+ train_time: ?(\d+)ms", re.MULTILINE)


@pytest.mark.parametrize("path", fixture_logs(), ids=rel)
def test_every_fixture_log_yields_what_it_contains(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    run = read_log(path, rel(path))
    runs = run.all_runs
    finals = [m for m in _FINAL_LINE.finditer(text) if not _NOT_FINAL.search(m.group(1))]
    if finals:
        scored = [r.scored for r in runs if r.scored is not None]
        assert scored, "the log prints a final metric but none was parsed"
        printed = {m.group(3) for m in finals}
        assert all(s.bpb_text in printed for s in scored)
    totals = _TOTAL_LINE.findall(text)
    if totals:
        assert run.total_bytes is not None and str(run.total_bytes.bytes) == totals[-1]
    stops = _STOP_LINE.findall(text)
    if stops:
        assert run.train_time_ms == float(stops[-1])


def test_byte_sidecar_state() -> None:
    run = load(RECORD / "2026-04-18_PR1626_CaseOps_Taper" / "train_seed42.log")
    assert run.byte_sidecar is True and run.byte_sidecar_evidence.text == "val_bpb:byte_sidecar:enabled"
    assert run.tokenizer_path.endswith("fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model")
    assert parse_log("val_bpb:byte_sidecar:disabled\n", "x").byte_sidecar is False
    assert load(BASELINE / "train.log").byte_sidecar is None

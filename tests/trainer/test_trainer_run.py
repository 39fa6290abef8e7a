"""End-to-end CPU runs of the reference trainer on tiny data: learning, export, wall-clock cap, log lines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from pgaudit import logs  # noqa: E402
from reference_trainer import quant, runtime  # noqa: E402
from reference_trainer.config import Hyperparameters  # noqa: E402
from reference_trainer.train import TrainResult, train  # noqa: E402
from tests.trainer.conftest import tiny_env  # noqa: E402

BASELINE_LOG = (
    Path(__file__).resolve().parents[1]
    / "fixtures/records/track_10min_16mb/2026-03-17_NaiveBaseline/train.log"
)


# ---------------------------------------------------------------- the trainer's log, read by pgaudit.logs


@dataclass
class ParsedLog:
    stopped_early_at: int | None
    int8_zlib_bytes: int | None
    total_int8_zlib_bytes: int | None
    final_val_loss: float | None
    final_val_bpb: float | None
    last_step_eval: tuple[float | None, float] | None  # (val_loss, val_bpb) of the last `step:` eval
    val_points: list[tuple[int, float, float]]  # (step, val_loss, val_bpb): the curve, which pgaudit skips


def parse_log(text: str) -> ParsedLog:
    """What pgaudit's own log parser (the one the validators and `reproduce` use) reads from a log."""
    run = logs.parse_log(text, "train.log")
    final = next((m for m in run.final_metrics if m.method == "final_int8_zlib_roundtrip"), None)
    sizes = {s.kind: s.bytes for s in run.sizes if s.scheme in (None, "int8+zlib")}
    step = run.last_step_eval
    return ParsedLog(
        run.stop_step if run.stop_reason == "wallclock_cap" else None,
        sizes.get("model"),
        sizes.get("total"),
        final.val_loss if final else None,
        final.val_bpb if final else None,
        (step.val_loss, step.val_bpb) if step else None,
        [(int(m[1]), float(m[2]), float(m[3])) for m in re.finditer(
            r"^step:(\d+)/\d+ val_loss:([\d.]+) val_bpb:([\d.]+) train_time:", text, re.MULTILINE)],
    )


def test_parser_reads_the_official_baseline_log() -> None:
    parsed = parse_log(BASELINE_LOG.read_text(encoding="utf-8"))
    assert parsed.final_val_bpb == 1.2243657 and parsed.final_val_loss == 2.07269931
    assert parsed.int8_zlib_bytes == 15815847 and parsed.total_int8_zlib_bytes == 15863489
    assert parsed.stopped_early_at == 13780
    assert parsed.last_step_eval == (2.0606, 1.2172)


# ---------------------------------------------------------------- runs


def _run(env: dict[str, str]) -> TrainResult:
    """In-process run; every CUDA entry point the CPU path could reach raises if it is called."""

    def forbidden(name: str):  # one function object per API: dynamo refuses a shared one
        def call(*_: object, **__: object) -> None:
            raise AssertionError(f"the CPU path called torch.cuda.{name}")

        return call

    hp = Hyperparameters.from_env(env)
    with pytest.MonkeyPatch.context() as mp:
        for name in (
            "synchronize",
            "set_device",
            "max_memory_allocated",
            "max_memory_reserved",
            "get_device_name",
        ):
            mp.setattr(torch.cuda, name, forbidden(name))
        # One intra-op thread: on a small shared CPU, OpenMP threads waiting on each other made steps 20x slower.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return train(hp, runtime.setup(hp, env={}))
        finally:
            torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    out = tmp_path_factory.mktemp("run")
    return _run(tiny_env(tiny_data, out)), out


def test_val_bpb_falls(tiny_run: tuple[TrainResult, Path]) -> None:
    result, _ = tiny_run
    points = parse_log(result.log_path.read_text()).val_points
    assert [p[0] for p in points] == [0, 20, 40]
    bpbs = [p[2] for p in points]
    assert bpbs[0] > bpbs[1] > bpbs[2]
    assert bpbs[2] < 0.9 * bpbs[0]
    assert result.steps == 40


def test_int8_zlib_roundtrip_costs_under_one_percent(tiny_run: tuple[TrainResult, Path]) -> None:
    result, out = tiny_run
    container = torch.load(_decompressed(out / "final_model.int8.ptz"), map_location="cpu")
    per_row = [n for n, s in container["scales"].items() if s.ndim == 1]
    assert "tok_emb.weight" in per_row and any(".attn.c_q." in n for n in per_row)  # the int8 path ran
    change = abs(result.roundtrip.val_bpb - result.final.val_bpb) / result.final.val_bpb
    assert change < 0.01
    assert result.roundtrip.val_bpb != result.final.val_bpb  # the weights really went through int8


def _decompressed(path: Path) -> object:
    import io
    import zlib

    return io.BytesIO(zlib.decompress(path.read_bytes()))


def test_log_parses_and_matches_the_run(tiny_run: tuple[TrainResult, Path]) -> None:
    result, out = tiny_run
    parsed = parse_log(result.log_path.read_text())
    assert parsed.int8_zlib_bytes == result.artifact_bytes == (out / "final_model.int8.ptz").stat().st_size
    assert parsed.total_int8_zlib_bytes is not None and parsed.total_int8_zlib_bytes > parsed.int8_zlib_bytes
    assert parsed.final_val_bpb == pytest.approx(result.roundtrip.val_bpb, abs=5e-9)
    assert parsed.final_val_loss == pytest.approx(result.roundtrip.val_loss, abs=5e-9)
    assert parsed.stopped_early_at is None


def test_artifact_reloads_into_the_same_weights_as_the_roundtrip(tiny_run: tuple[TrainResult, Path]) -> None:
    _, out = tiny_run
    state = quant.from_bytes((out / "final_model.int8.ptz").read_bytes())
    raw = torch.load(out / "final_model.pt", map_location="cpu")
    assert state.keys() == raw.keys()
    for name, tensor in raw.items():
        assert state[name].dtype == tensor.dtype and state[name].shape == tensor.shape, name


def test_wallclock_cap_stops_the_run(tiny_data, tmp_path: Path) -> None:
    env = tiny_env(tiny_data, tmp_path, ITERATIONS=100000, MAX_WALLCLOCK_SECONDS=1.5, VAL_LOSS_EVERY=0,
                   WARMUP_STEPS=0, TRAIN_LOG_EVERY=50)  # fmt: skip
    result = _run(env)
    text = result.log_path.read_text()
    parsed = parse_log(text)
    assert parsed.stopped_early_at == result.steps and 0 < result.steps < 100000
    m = re.search(r"^stopping_early: wallclock_cap train_time:(\d+)ms step:(\d+)/100000$", text, re.MULTILINE)
    assert m and int(m[1]) >= 1500
    assert parsed.final_val_bpb is not None and parsed.val_points[-1][0] == result.steps

"""Unit tests of the trainer's parts: config, data loader, Muon, schedules, int8 export, tiny data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pgaudit import shards  # noqa: E402
from reference_trainer import quant, tinydata  # noqa: E402
from reference_trainer.config import Hyperparameters  # noqa: E402
from reference_trainer.data import RankBatcher, TokenStream, load_validation_tokens  # noqa: E402
from reference_trainer.model import GPT, ModelShape  # noqa: E402
from reference_trainer.optim import lr_scale, muon_momentum, newton_schulz  # noqa: E402

# ---------------------------------------------------------------- config


def test_defaults_are_the_baseline_run() -> None:
    hp = Hyperparameters.from_env({})
    assert (hp.num_layers, hp.model_dim, hp.num_heads, hp.num_kv_heads, hp.mlp_mult) == (9, 512, 8, 4, 2)
    assert (hp.vocab_size, hp.train_seq_len, hp.train_batch_tokens, hp.iterations) == (
        1024,
        1024,
        524_288,
        20000,
    )
    assert (hp.matrix_lr, hp.scalar_lr, hp.tied_embed_lr, hp.token_lr) == (0.04, 0.04, 0.05, 0.05)
    assert (hp.max_wallclock_seconds, hp.warmup_steps, hp.warmdown_iters, hp.logit_softcap) == (
        600.0,
        20,
        1200,
        30.0,
    )
    assert hp.tie_embeddings and hp.seed == 1337 and len(hp.run_id) == 36
    assert hp.int8_keep_float_fp32_name_patterns == hp.control_tensor_name_patterns
    assert hp.train_files.endswith("fineweb10B_sp1024/fineweb_train_*.bin")


def test_env_overrides_and_bad_values() -> None:
    hp = Hyperparameters.from_env(
        {"NUM_LAYERS": "3", "TIE_EMBEDDINGS": "0", "RUN_ID": "x", "MATRIX_LR": "0.1"}
    )
    assert (hp.num_layers, hp.tie_embeddings, hp.run_id, hp.matrix_lr, hp.token_lr) == (
        3,
        False,
        "x",
        0.1,
        0.6,
    )
    with pytest.raises(ValueError, match="NUM_LAYERS='nine'"):
        Hyperparameters.from_env({"NUM_LAYERS": "nine"})


def test_full_size_model_has_the_baseline_parameter_count() -> None:
    model = GPT(ModelShape.from_hparams(Hyperparameters.from_env({})))
    assert sum(p.numel() for p in model.parameters()) == 17_059_912  # model_params in the official log


# ---------------------------------------------------------------- data


def _write_stream(tmp: Path, sizes: list[int]) -> str:
    start = 0
    for k, n in enumerate(sizes):
        shards.write_shard(tmp / f"fineweb_train_{k:06d}.bin", np.arange(start, start + n) % 65536)
        start += n
    return str(tmp / "fineweb_train_*.bin")


def test_stream_crosses_shards_and_wraps(tmp_path: Path) -> None:
    stream = TokenStream(_write_stream(tmp_path, [5, 3]))
    assert stream.take(7).tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert stream.take(3).tolist() == [7, 0, 1]


def test_ranks_split_each_chunk_and_cover_what_one_rank_reads(tmp_path: Path) -> None:
    pattern = _write_stream(tmp_path, [1000])
    cpu = torch.device("cpu")
    one = RankBatcher(pattern, 0, 1, cpu)
    two = [RankBatcher(pattern, r, 2, cpu) for r in (0, 1)]
    singles = [one.next_batch(64, 4, 8) for _ in range(8)]  # 8 micro-batches of 8 tokens
    pairs = [[b.next_batch(64, 4, 4) for b in two] for _ in range(4)]
    flattened = [xy for pair in pairs for xy in pair]
    for (x1, y1), (x2, y2) in zip(singles, flattened, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x, y = singles[0]
    assert x.shape == (2, 4) and torch.equal(x.reshape(-1)[1:], y.reshape(-1)[:-1])


def test_batch_that_is_not_whole_sequences_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TRAIN_SEQ_LEN=64"):
        RankBatcher(_write_stream(tmp_path, [100]), 0, 1, torch.device("cpu")).next_batch(8 * 96, 64, 8)


def test_validation_tokens_skip_sidecars_and_cut_to_sequences(tmp_path: Path) -> None:
    shards.write_shard(tmp_path / "fineweb_val_000000.bin", np.arange(10))
    shards.write_shard(tmp_path / "fineweb_val_bytes_000000.bin", np.ones(10))
    tokens = load_validation_tokens(str(tmp_path / "fineweb_val_*.bin"), seq_len=4)
    assert tokens.tolist() == list(range(9))


def test_bad_shard_reaches_the_trainer_as_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "fineweb_val_000000.bin").write_bytes(b"\0" * 2048)
    with pytest.raises(shards.ShardFormatError, match="bad shard magic 0"):
        load_validation_tokens(str(tmp_path / "fineweb_val_*.bin"), seq_len=4)


# ---------------------------------------------------------------- optimizer


@pytest.mark.parametrize("shape", [(32, 96), (96, 32), (16, 512)])
def test_newton_schulz_makes_singular_values_close_to_one(shape: tuple[int, int]) -> None:
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    s = torch.linalg.svdvals(newton_schulz(g, steps=5, dtype=torch.float32))
    assert s.shape[0] == min(shape)
    assert float(s.min()) > 0.5 and float(s.max()) < 1.3


def test_lr_schedule_by_iterations_and_by_wallclock() -> None:
    by_steps = Hyperparameters.from_env(
        {"ITERATIONS": "100", "WARMDOWN_ITERS": "20", "MAX_WALLCLOCK_SECONDS": "0"}
    )
    assert lr_scale(by_steps, 79, 0.0) == 1.0
    assert lr_scale(by_steps, 80, 0.0) == 1.0 and lr_scale(by_steps, 90, 0.0) == 0.5
    capped = Hyperparameters.from_env({"WARMDOWN_ITERS": "20", "MAX_WALLCLOCK_SECONDS": "10"})
    assert lr_scale(capped, 10, 1000.0) == 1.0  # 100 ms/step: the warmdown is the last 2 s, 9 s are left
    assert lr_scale(capped, 10, 5000.0) == pytest.approx(0.5)  # 500 ms/step: 5 s left of a 10 s warmdown
    assert lr_scale(capped, 10, 12000.0) == 0.0


def test_muon_momentum_warms_up_linearly() -> None:
    hp = Hyperparameters.from_env({})
    assert muon_momentum(hp, 0) == 0.85 and muon_momentum(hp, 250) == pytest.approx(0.90)
    assert muon_momentum(hp, 500) == muon_momentum(hp, 9000) == 0.95


# ---------------------------------------------------------------- int8 export


def test_int8_export_rules_and_round_trip() -> None:
    g = torch.Generator().manual_seed(1)
    state = {
        "big.weight": torch.randn(300, 256, generator=g),
        "emb.weight": torch.randn(300, 256, generator=g).bfloat16(),
        "big.vector": torch.randn(70_000, generator=g),
        "blocks.0.attn_scale": torch.rand(256, generator=g),
        "small.weight": torch.randn(16, 16, generator=g),
        "step": torch.tensor(7),
    }
    container, stats = quant.quantize_state_dict(state, ("attn_scale",), keep_float_max_numel=65_536)
    assert set(container["quantized"]) == {"big.weight", "emb.weight", "big.vector"}
    assert (
        container["scales"]["big.weight"].dtype == torch.float16
        and container["scales"]["big.vector"].ndim == 0
    )
    assert container["passthrough"]["blocks.0.attn_scale"].dtype == torch.float32
    assert container["passthrough"]["small.weight"].dtype == torch.float16
    assert container["passthrough_orig_dtypes"] == {"small.weight": "float32"}
    assert stats.param_count == sum(t.numel() for t in state.values())

    blob, raw = quant.to_bytes(container)
    assert raw > len(blob) > 0
    back = quant.from_bytes(blob)
    for name, t in state.items():
        assert back[name].dtype == t.dtype and back[name].shape == t.shape
    row_scale = container["scales"]["big.weight"].float()[:, None]
    err = (back["big.weight"] - state["big.weight"]).abs()
    # Half a step of rounding plus the fp16 rounding of the scale (127 steps x 2^-11), except where a row's
    # extreme values were clipped.
    assert float((err <= row_scale * (0.5 + 127 / 2048) + 1e-6).float().mean()) > 0.999
    assert torch.equal(back["step"], state["step"]) and torch.equal(
        back["blocks.0.attn_scale"], state["blocks.0.attn_scale"]
    )


def test_dequantize_refuses_other_formats() -> None:
    with pytest.raises(ValueError, match="int8_clean_per_row_v1"):
        quant.dequantize_state_dict({"__quant_format__": "int6"})


# ---------------------------------------------------------------- tiny data


def test_tinydata_is_deterministic_and_official(tmp_path: Path) -> None:
    a = tinydata.build(tmp_path / "a", vocab_size=512, train_docs=200, val_docs=20, shard_tokens=20_000)
    b = tinydata.build(tmp_path / "b", vocab_size=512, train_docs=200, val_docs=20, shard_tokens=20_000)
    names = sorted(p.name for p in a.data_path.iterdir())
    assert (
        names[0] == "fineweb_train_000000.bin" and names[-1] == "fineweb_val_000000.bin" and len(names) >= 3
    )
    for p in a.data_path.iterdir():
        assert p.read_bytes() == (b.data_path / p.name).read_bytes()
    assert a.tokenizer_path.read_bytes() == b.tokenizer_path.read_bytes()
    val = shards.read_shard(a.data_path / "fineweb_val_000000.bin")
    assert val[0] == 1 and int((val == 1).sum()) == 20  # one BOS per document
    assert "sha256" in (a.root / "README.txt").read_text()
    assert math.isclose(a.val_tokens, val.size)

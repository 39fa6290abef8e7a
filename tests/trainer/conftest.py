"""Shared fixtures: tiny offline data (built once per session) and the env of a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_trainer import tinydata


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tinydata.TinyData:
    # Several small train shards so that the stream crosses shard boundaries.
    return tinydata.build(
        tmp_path_factory.mktemp("tinydata"),
        vocab_size=1024,
        train_docs=1500,
        val_docs=100,
        shard_tokens=1 << 17,
    )


def tiny_env(data: tinydata.TinyData, out_dir: Path, **overrides: object) -> dict[str, str]:
    """A 2-layer, width-64 model on sequences of 64: a few seconds for tens of steps on a CPU."""
    env = {
        "DATA_PATH": str(data.data_path),
        "TOKENIZER_PATH": str(data.tokenizer_path),
        "VOCAB_SIZE": str(data.vocab_size),
        "RUN_ID": "tiny",
        "OUT_DIR": str(out_dir),
        "DEVICE": "cpu",
        "NUM_LAYERS": "2",
        "MODEL_DIM": "64",
        "NUM_HEADS": "4",
        "NUM_KV_HEADS": "2",
        "TRAIN_SEQ_LEN": "64",
        "TRAIN_BATCH_TOKENS": "4096",
        "VAL_BATCH_SIZE": "16384",
        "ITERATIONS": "40",
        "VAL_LOSS_EVERY": "20",
        "TRAIN_LOG_EVERY": "10",
        "WARMUP_STEPS": "2",
        "WARMDOWN_ITERS": "10",
        "MAX_WALLCLOCK_SECONDS": "0",
        # Matrices of the tiny model are 64x64: below the official 65,536-element limit they would all be
        # kept as floats, and the int8 path would go untested.
        "INT8_KEEP_FLOAT_MAX_NUMEL": "1024",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env

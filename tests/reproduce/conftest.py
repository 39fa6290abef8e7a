"""Tiny data, a tiny record folder with claims, and one real 2-seed reproduction, each built once per session.

The record's `train_gpt.py` runs the reference trainer at a CPU test size. Its "submitted" logs are made by
the same trainer in this process (cheaper than two more torchrun launches), so a correct re-run agrees.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from reference_trainer import tinydata
from tests.conftest import ROOT, run_cli


@pytest.fixture(scope="session")
def torch_import_s() -> float:
    """Seconds `import torch` takes in a fresh interpreter here, measured once per session."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, timeout=600, capture_output=True)
    return time.monotonic() - start


@pytest.fixture(scope="session")
def startup_s(torch_import_s: float) -> int:
    """Seconds torchrun needs before a worker's first line, derived from the measured import time (the
    launcher imports torch, then starts the worker): three times it plus 2 s, never under 4 s. A loaded machine
    measures a slower import and so gets a longer allowance."""
    return max(4, math.ceil(3 * torch_import_s + 2))


SEEDS = (1337, 42)
TINY_ENV = {
    "VOCAB_SIZE": "1024", "NUM_LAYERS": "2", "MODEL_DIM": "64", "NUM_HEADS": "4", "NUM_KV_HEADS": "2",
    "TRAIN_SEQ_LEN": "64", "TRAIN_BATCH_TOKENS": "2048", "VAL_BATCH_SIZE": "16384", "ITERATIONS": "8",
    "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "2", "WARMUP_STEPS": "1", "WARMDOWN_ITERS": "3",
    "MAX_WALLCLOCK_SECONDS": "0", "INT8_KEEP_FLOAT_MAX_NUMEL": "1024", "DEVICE": "cpu",
}  # fmt: skip

TRAIN_GPT = f'''"""A tiny record for pgaudit's reproduction tests: the reference trainer at a CPU test size."""

import os

for key, value in {TINY_ENV!r}.items():
    os.environ.setdefault(key, value)

from reference_trainer.train import main  # noqa: E402

main()
'''


@dataclass(frozen=True)
class Record:
    folder: Path
    data: tinydata.TinyData
    claimed: dict[int, float]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tinydata.TinyData:
    return tinydata.build(tmp_path_factory.mktemp("repro_data"), vocab_size=1024, train_docs=600, val_docs=40,
                          shard_tokens=1 << 17)  # fmt: skip


def data_args(data: tinydata.TinyData) -> list[str]:
    return ["--data-path", str(data.data_path), "--tokenizer-path", str(data.tokenizer_path)]


def cpu_args(data: tinydata.TinyData, out: Path, *extra: str) -> list[str]:
    return ["--nproc", "1", "--device", "cpu", "--out", str(out), "--env", "OMP_NUM_THREADS=1",
            *data_args(data), *extra]  # fmt: skip


@pytest.fixture(scope="session")
def record(tiny: tinydata.TinyData, tmp_path_factory: pytest.TempPathFactory) -> Record:
    torch = pytest.importorskip("torch")
    from reference_trainer import runtime
    from reference_trainer.config import Hyperparameters
    from reference_trainer.train import train

    folder = tmp_path_factory.mktemp("records") / "2026-01-01_TinyReference"
    folder.mkdir()
    (folder / "train_gpt.py").write_text(TRAIN_GPT, encoding="utf-8")
    (folder / "README.md").write_text("# Tiny reference\n\nThe reference trainer at a test size.\n")
    claimed: dict[int, float] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for seed in SEEDS:
            run_dir = tmp_path_factory.mktemp(f"submitted_{seed}")
            env = {**TINY_ENV, "DATA_PATH": str(tiny.data_path), "TOKENIZER_PATH": str(tiny.tokenizer_path),
                   "SEED": str(seed), "RUN_ID": f"seed{seed}", "OUT_DIR": str(run_dir)}  # fmt: skip
            hp = Hyperparameters.from_env(env)
            result = train(hp, runtime.setup(hp, env={}))
            claimed[seed] = result.roundtrip.val_bpb
            shutil.copy(run_dir / "logs" / f"seed{seed}.txt", folder / f"train_seed{seed}.log")
    finally:
        torch.set_num_threads(threads)
    submission = {"author": "pgaudit tests", "name": "Tiny reference", "val_bpb": statistics.fmean(claimed.values()),
                  "seeds": list(SEEDS)}  # fmt: skip
    (folder / "submission.json").write_text(json.dumps(submission, indent=2) + "\n")
    return Record(folder, tiny, claimed)


@dataclass(frozen=True)
class GoodRun:
    out: Path
    rc: int
    stdout: str
    stderr: str
    seconds: float


@pytest.fixture(scope="session")
def good_run(record: Record, tmp_path_factory: pytest.TempPathFactory) -> GoodRun:
    import time

    out = tmp_path_factory.mktemp("good_run") / "out"
    start = time.monotonic()
    proc = run_cli("reproduce", str(record.folder), "--seeds", "2", *cpu_args(record.data, out), timeout=300)
    return GoodRun(out, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def script_folder(root: Path, name: str, body: str) -> Path:
    """A minimal record folder whose train_gpt.py is `body`."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(textwrap.dedent(body), encoding="utf-8")
    (folder / "submission.json").write_text(json.dumps({"author": "t", "val_bpb": 1.2, "seeds": [1337]}) + "\n")
    return folder


__all__ = ["ROOT", "SEEDS", "GoodRun", "Record", "cpu_args", "data_args", "script_folder"]

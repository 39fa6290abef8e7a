"""The CUDA path (NCCL, bf16 autocast, torch.compile) on a tiny model. Needs a GPU: skipped without one."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.trainer.conftest import tiny_env  # noqa: E402
from tests.trainer.test_trainer_gloo import _torchrun  # noqa: E402
from tests.trainer.test_trainer_run import parse_log  # noqa: E402

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA-only: the CPU path is tested elsewhere"
)


def test_compiled_bf16_run_on_one_gpu(tiny_data, tmp_path: Path) -> None:
    env = tiny_env(tiny_data, tmp_path, DEVICE="cuda", COMPILE="1", ITERATIONS=30, VAL_LOSS_EVERY=15)
    done = _torchrun(env, 1, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    parsed = parse_log((tmp_path / "logs" / "tiny.txt").read_text())
    assert parsed.val_points[-1][2] < parsed.val_points[0][2]
    assert parsed.final_val_bpb is not None
    assert abs(parsed.final_val_bpb - parsed.val_points[-1][2]) / parsed.val_points[-1][2] < 0.01
    assert "peak memory allocated:" in done.stdout

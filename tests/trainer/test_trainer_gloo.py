"""Two gloo processes under torchrun train the same model as one process with gradient accumulation.

The global batch is 8 micro-batches either way (2 ranks x 4, or 1 x 8) over the same tokens, so the weights
may differ only by float summation order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from reference_trainer import runtime  # noqa: E402
from reference_trainer.config import Hyperparameters  # noqa: E402
from reference_trainer.train import train  # noqa: E402
from tests.trainer.conftest import tiny_env  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240


def _torchrun(env: dict[str, str], nproc: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "reference_trainer"]  # fmt: skip
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # Own session: on a timeout the whole group (launcher and workers) is killed, nothing is left behind.
    proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def test_two_gloo_processes_match_one_process_with_accumulation(tiny_data, tmp_path: Path) -> None:
    settings = {"ITERATIONS": 8, "WARMUP_STEPS": 0, "VAL_LOSS_EVERY": 0, "WARMDOWN_ITERS": 4}
    one_dir, two_dir = tmp_path / "one", tmp_path / "two"
    two_dir.mkdir()
    done = _torchrun(tiny_env(tiny_data, two_dir, **settings), 2, two_dir)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "world_size:2 grad_accum_steps:4" in done.stdout

    env = tiny_env(tiny_data, one_dir, **settings)
    hp = Hyperparameters.from_env(env)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = train(hp, runtime.setup(hp, env={}))
    finally:
        torch.set_num_threads(threads)

    w1 = torch.load(one_dir / "final_model.pt", map_location="cpu")
    w2 = torch.load(two_dir / "final_model.pt", map_location="cpu")
    diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    scale = max(float(w1[k].abs().max()) for k in w1)
    # Measured ~1e-5 here; giving both ranks the same slice of the stream gives ~0.5.
    assert diff < 1e-4 * max(scale, 1.0), f"max weight difference {diff}"
    log2 = (two_dir / "logs" / "tiny.txt").read_text()
    exact = [line for line in log2.splitlines() if line.startswith("final_int8_zlib_roundtrip_exact")]
    loss2 = float(exact[0].split("val_loss:")[1].split()[0])
    assert loss2 == pytest.approx(single.roundtrip.val_loss, rel=1e-4)

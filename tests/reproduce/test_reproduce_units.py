"""Pure parts: seed choice, tolerance, progress parsing, the calibration arithmetic."""

from __future__ import annotations

import pytest

from pgaudit.reproduce.calibrate import OFFICIAL, TINY, ms_per_step, step_flops
from pgaudit.reproduce.compare import Claimed, tolerance
from pgaudit.reproduce.options import pick_seeds
from pgaudit.reproduce.status import Progress


def test_seed_choice() -> None:
    assert pick_seeds([], 3, []) == [1337, 42, 2025]
    assert pick_seeds([], 2, [7, 8, 9]) == [7, 8]
    assert pick_seeds([], 3, [7]) == [7, 1337, 42]
    assert pick_seeds([5, 6], 3, [7]) == [5, 6]


def test_tolerance_from_claimed_spread_with_a_floor() -> None:
    assert tolerance(Claimed(), 0.002, 3.0) == (0.002, None)
    tight = Claimed(per_seed_bpb={1: 1.2240, 2: 1.2241})
    assert tolerance(tight, 0.002, 3.0)[0] == 0.002
    wide = Claimed(per_seed_bpb={1: 1.20, 2: 1.21, 3: 1.22})
    tol, sd = tolerance(wide, 0.002, 3.0)
    assert sd == pytest.approx(0.01) and tol == pytest.approx(0.03)


def test_progress_reads_step_lines_in_both_styles() -> None:
    p = Progress(1337, started=0.0)
    p.feed("max_wallclock_seconds:600.0", 1.0)
    p.feed("step:100/20000 train_loss:3.2100 train_time:4354ms step_avg:43.54ms", 5.0)
    assert (p.step, p.total, p.train_loss, p.step_avg_ms) == (100, 20000, 3.21, 43.54)
    assert p.eta_s() == pytest.approx(600 - 4.354)  # the wallclock cap, not 19,900 steps, bounds the ETA
    p.feed("step: 200/4000 train_loss: 2.5 train_time: 8000ms step_avg: 40.0ms", 9.0)
    assert (p.step, p.train_loss) == (200, 2.5)
    p.feed("stopping_early: wallclock_cap train_time:600038ms step:13780/20000", 610.0)
    assert p.train_over_at == 610.0


def test_ms_per_step_and_flop_scaling() -> None:
    lines = [f"step:{i}/10 train_loss:1.0 train_time:{100 + 50 * i}ms step_avg:1ms" for i in range(1, 11)]
    assert ms_per_step(["step:1/10 train_loss:9 train_time:500ms step_avg:500ms", *lines[1:]]) == 50.0
    assert step_flops(OFFICIAL) / step_flops(TINY) > 1000


def test_live_board_renders_a_row_per_seed() -> None:
    import io

    from rich.console import Console

    from pgaudit.reproduce.status import StatusBoard

    board = StatusBoard([1337, 42], live=True)
    board.console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    with board:
        row = board.rows[1337]
        row.state, row.started = "running", 0.0
        row.feed("step:10/100 train_loss:4.5000 train_time:1000ms step_avg:100.00ms", 1.0)
        board.refresh()
        board.event("seed 1337: starting")
    text = board.console.file.getvalue()
    assert "10/100" in text and "4.5000" in text and "waiting" in text and "seed 1337: starting" in text


def test_launch_command_and_environment(tmp_path) -> None:
    from pgaudit.reproduce.launcher import build_argv, run_env
    from pgaudit.reproduce.options import ReproOptions

    opts = ReproOptions(record_dir=tmp_path, out_dir=tmp_path / "o", data_path=tmp_path, tokenizer_path=tmp_path / "t.model",
                        env={"SEED": "7", "NCCL_DEBUG": "INFO"}, device="cpu")  # fmt: skip
    assert build_argv(opts, ["torchrun"], "r", ["train_gpt.py"]) == [
        "torchrun", "--standalone", "--nproc_per_node=8", "train_gpt.py"]  # fmt: skip
    opts.nnodes, opts.rdzv_endpoint = 2, "10.0.0.1:29500"
    assert build_argv(opts, ["torchrun"], "r", ["train_gpt.py"])[1:4] == [
        "--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=10.0.0.1:29500"]  # fmt: skip
    env = run_env(opts, 1337, "r")
    assert env["SEED"] == "7" and env["RUN_ID"] == "r" and env["DEVICE"] == "cpu" and env["CUDA_VISIBLE_DEVICES"] == ""


def test_manifest_environment_allowlist_and_git(tmp_path) -> None:
    from pgaudit.reproduce.manifest import allowed_env, git_state
    from tests.gitrepo import GitRepo

    env = allowed_env({"SEED": "1", "NCCL_IB_DISABLE": "1", "HOME": "/root", "GITHUB_TOKEN": "x"}, {"MY_FLAG": "2"})
    assert env == {"MY_FLAG": "2", "NCCL_IB_DISABLE": "1", "SEED": "1"}
    assert git_state(tmp_path) is None
    repo = GitRepo(tmp_path / "repo")
    (repo.path / "train_gpt.py").write_text("x = 1\n")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "x")
    state = git_state(repo.path)
    assert state is not None and len(state["commit"]) == 40 and state["dirty"] is False


def _result(seed: int, bpb: float | None, measured: int | None, logged: int | None, status: str = "finished") -> dict:
    return {"seed": seed, "status": status, "returncode": 0, "log": f"seed_{seed}/log.txt",
            "console_log": f"seed_{seed}/console.log", "log_tail": ["last line"], "error_lines": [],
            "metric": None if bpb is None else {"val_bpb": bpb, "line": 9},
            "artifact": {"total_measured": measured, "total_logged": logged, "model_bytes": measured}}  # fmt: skip


def test_judge_artifact_and_missing_score() -> None:
    from pgaudit.reproduce.compare import judge

    claim = Claimed(per_seed_bpb={1: 1.22, 2: 1.22}, per_seed_bytes={1: 15_990_000, 2: 15_900_000}, mean_bpb=1.22)
    found = judge([_result(1, 1.2201, 16_010_000, 15_990_000), _result(2, None, None, None)], claim, 0.002, 0.005)
    messages = sorted((f.code, f.message) for f in found)
    assert [c for c, _ in messages] == ["PG602", "PG603", "PG603"]
    assert "finished without printing a final val_bpb" in messages[0][1]
    assert any("over the 16,000,000-byte cap" in m for _, m in messages)
    assert any("but the log printed 15,990,000" in m for _, m in messages)
    off = judge([_result(2, 1.22, 16_100_000, None)], Claimed(per_seed_bytes={2: 15_000_000}), 0.002, 0.005)
    assert [f.code for f in off] == ["PG603"] and "over the 16,000,000-byte cap" in off[0].message
    near = judge([_result(2, 1.22, 15_050_000, None)], Claimed(per_seed_bytes={2: 15_000_000}), 0.002, 0.005)
    assert near == []
    far = judge([_result(2, 1.22, 14_000_000, None)], Claimed(per_seed_bytes={2: 15_000_000}), 0.002, 0.005)
    assert [f.code for f in far] == ["PG603"] and "-6.67%" in far[0].message

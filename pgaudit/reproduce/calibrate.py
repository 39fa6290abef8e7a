"""`pgaudit reproduce --calibrate`: this machine's ms/step on the reference trainer against 43.54 on 8xH100 SXM.

On GPUs the official workload runs (9x512 model, 524,288 tokens per step). On a CPU that would take minutes
per step, so a tiny model runs and its time is scaled to the official workload by a FLOP count: an estimate,
labelled so in the output.
"""

from __future__ import annotations

import json
import re
import statistics
from itertools import pairwise
from pathlib import Path

from pgaudit.atomic import write_atomic
from pgaudit.errors import PgauditError, UsageError
from pgaudit.reproduce import manifest
from pgaudit.reproduce.launcher import build_argv, launch
from pgaudit.reproduce.options import ReproOptions, check_launch, resolve_launcher
from pgaudit.reproduce.status import Progress
from pgaudit.reproduce.timing import OFFICIAL_MS_PER_STEP, Calibration

_STEP_TIME = re.compile(r"^step:(\d+)/\d+ train_loss:\S+ train_time:(\d+(?:\.\d+)?)ms")

OFFICIAL = {"NUM_LAYERS": 9, "MODEL_DIM": 512, "NUM_HEADS": 8, "NUM_KV_HEADS": 4, "MLP_MULT": 2, "VOCAB_SIZE": 1024,
            "TRAIN_SEQ_LEN": 1024, "TRAIN_BATCH_TOKENS": 524_288}  # fmt: skip
TINY = {"NUM_LAYERS": 2, "MODEL_DIM": 64, "NUM_HEADS": 4, "NUM_KV_HEADS": 2, "MLP_MULT": 2, "VOCAB_SIZE": 1024,
        "TRAIN_SEQ_LEN": 64, "TRAIN_BATCH_TOKENS": 4096, "VAL_BATCH_SIZE": 16384,
        "INT8_KEEP_FLOAT_MAX_NUMEL": 1024}  # fmt: skip


def step_flops(cfg: dict[str, int]) -> float:
    """Training FLOPs of one step: 6 x (matrix parameters + tied head) per token, plus causal attention."""
    d, layers, seq = cfg["MODEL_DIM"], cfg["NUM_LAYERS"], cfg["TRAIN_SEQ_LEN"]
    kv = d // cfg["NUM_HEADS"] * cfg["NUM_KV_HEADS"]
    per_layer = 2 * d * d + 2 * d * kv + 2 * d * cfg["MLP_MULT"] * d
    per_token = 6 * (layers * per_layer + cfg["VOCAB_SIZE"] * d) + 6 * layers * seq * d
    return float(per_token * cfg["TRAIN_BATCH_TOKENS"])


def ms_per_step(log_lines: list[str]) -> float:
    """Median time of one step from consecutive `step:i/N ... train_time:Tms` lines, the first step left out."""
    points = [(int(m.group(1)), float(m.group(2))) for line in log_lines if (m := _STEP_TIME.match(line))]
    deltas = [(t2 - t1) / (s2 - s1) for (s1, t1), (s2, t2) in pairwise(points)
              if s2 > s1 and s1 >= 1]  # fmt: skip
    if not deltas:
        raise PgauditError("calibration run printed too few step lines to time (raise --calibrate-steps)")
    return statistics.median(deltas)


def calibrate(opts: ReproOptions, steps: int, workload: str) -> Calibration:
    check_launch(opts)
    if steps < 3:
        raise UsageError("--calibrate-steps must be at least 3")
    if workload not in ("auto", "official", "tiny"):
        raise UsageError(f"--workload must be auto, official or tiny, not {workload!r}")
    if workload == "auto":
        workload = "official" if opts.device == "cuda" else "tiny"
    launcher = resolve_launcher(" ".join(opts.launcher) if opts.launcher else None)
    cfg = OFFICIAL if workload == "official" else TINY
    out = opts.out_dir
    data, tokenizer = _data(opts, out)
    workdir = out / "calibration_run"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: str(v) for k, v in cfg.items()} | {
        "DATA_PATH": str(data.resolve()), "TOKENIZER_PATH": str(tokenizer.resolve()), "RUN_ID": "calibration",
        "ITERATIONS": str(steps), "WARMUP_STEPS": "3", "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "1",
        "MAX_WALLCLOCK_SECONDS": "0", "WARMDOWN_ITERS": "0", "SEED": "1337",
    }  # fmt: skip
    if opts.device == "cpu":
        env |= {"DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    env |= opts.env
    argv = build_argv(opts, launcher, "calibration", ["-m", "reference_trainer"])
    res = launch(opts, argv, env, "calibration", 0, workdir, workdir, Progress(0))
    lines = res.console_log.read_text(encoding="utf-8", errors="replace").splitlines()
    if res.status != "finished":
        tail = lines[-1] if lines else "no output"
        raise PgauditError(f"calibration run {res.status} (exit {res.returncode}): {tail} -- see {res.console_log}")
    measured = ms_per_step(lines)
    equivalent = measured * step_flops(OFFICIAL) / step_flops(cfg)
    hw = manifest.hardware()
    cal = Calibration(
        ms_per_step=round(measured, 3), official_equivalent_ms_per_step=round(equivalent, 3),
        factor=round(equivalent / OFFICIAL_MS_PER_STEP, 4),
        workload="official" if workload == "official" else "tiny (FLOP-scaled estimate)", steps=steps,
        device=opts.device, nproc=opts.nproc, host=hw["host"], cpu=hw["cpu"]["model"],
        gpus=[g.get("name", "") for g in hw["gpus"] or []],
    )  # fmt: skip
    write_atomic(out / "calibration.json", json.dumps(cal.to_dict(), indent=2) + "\n")
    return cal


def _data(opts: ReproOptions, out: Path) -> tuple[Path, Path]:
    """The given data, else generated tiny data (speed does not depend on which tokens are trained on)."""
    if opts.data_path is not None:
        if not opts.data_path.is_dir():
            raise UsageError(f"data path {opts.data_path} is not a folder")
        if opts.tokenizer_path is None or not opts.tokenizer_path.is_file():
            raise UsageError(f"tokenizer {opts.tokenizer_path} not found (pass --tokenizer-path)")
        return opts.data_path, opts.tokenizer_path
    from reference_trainer import tinydata

    built = tinydata.build(out / "calibration_data", vocab_size=1024, train_docs=600, val_docs=40,
                           shard_tokens=1 << 17)  # fmt: skip
    return built.data_path, built.tokenizer_path


def describe(cal: Calibration) -> str:
    official = cal.workload == "official"
    label = "" if official else " (estimate: tiny model scaled by FLOPs)"
    return (f"calibration: {cal.ms_per_step:.2f} ms/step measured on the {'official' if official else 'tiny'} workload, "
            f"{cal.official_equivalent_ms_per_step:,.1f} ms/step for the official workload{label}; "
            f"factor {cal.factor:.4g} x the official {OFFICIAL_MS_PER_STEP} ms/step on 8xH100 SXM")  # fmt: skip

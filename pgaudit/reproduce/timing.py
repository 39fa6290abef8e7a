"""Times of the re-runs, and their 8xH100 SXM estimates on other hardware.

A calibration (pgaudit reproduce --calibrate) measures this machine's ms/step on the reference trainer;
its ratio to the official 43.54 ms/step scales the measured times. Scaled times are estimates, and the
report says so: only a run on 8xH100 SXM measures the real thing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pgaudit.errors import InputError

OFFICIAL_MS_PER_STEP = 43.54  # the naive baseline on 8xH100 SXM (records/.../2026-03-17_NaiveBaseline)
TRAIN_CAP_S = 600.0
EVAL_CAP_S = 600.0


@dataclass(frozen=True)
class Calibration:
    ms_per_step: float  # measured here on the calibration workload
    official_equivalent_ms_per_step: float  # scaled to the official workload (equal when it was the workload)
    factor: float  # official_equivalent / 43.54: > 1 means slower than 8xH100 SXM
    workload: str  # "official" or "tiny (FLOP-scaled estimate)"
    steps: int
    device: str
    nproc: int
    host: str
    cpu: str | None
    gpus: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"official_ms_per_step": OFFICIAL_MS_PER_STEP}


def load_calibration(path: Path) -> Calibration:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        fields = {k: data[k] for k in Calibration.__dataclass_fields__}
        return Calibration(**fields)
    except FileNotFoundError:
        raise InputError(str(path), "no such calibration file (write one with pgaudit reproduce --calibrate)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(str(path), f"not a calibration file ({type(exc).__name__}: {exc})") from None


def timing_summary(results: list[dict[str, Any]], cal: Calibration | None, reference: bool) -> dict[str, Any]:
    """Per seed: log and external times; on other hardware with a calibration, scaled estimates and caps."""
    if reference:
        basis = "measured on 8xH100 SXM"
    elif cal is not None:
        basis = f"estimate: times divided by the calibration factor {cal.factor:.3g} of {cal.host}"
    else:
        basis = "measured on other hardware, no calibration given: not comparable with the 600 s caps"
    seeds = []
    for r in results:
        train_s = None if r["train_time_ms"] is None else r["train_time_ms"] / 1000
        row: dict[str, Any] = {"seed": r["seed"], "train_s_log": train_s, "eval_s_log": r["eval_time_s"],
                               "external": r["external"], "stop_step": r["stop_step"]}  # fmt: skip
        scale = 1.0 if reference else (cal.factor if cal is not None else None)
        if scale:
            est_train = None if train_s is None else train_s / scale
            est_eval = None if r["eval_time_s"] is None else r["eval_time_s"] / scale
            row |= {"train_s_8xh100": est_train, "eval_s_8xh100": est_eval, "estimate": not reference,
                    "within_caps": None if est_train is None or est_eval is None
                    else est_train <= TRAIN_CAP_S + 1 and est_eval <= EVAL_CAP_S}  # fmt: skip
        seeds.append(row)
    return {"basis": basis, "reference_hardware": reference,
            "calibration": None if cal is None else cal.to_dict(), "seeds": seeds}  # fmt: skip

"""PG502 train-time-over-cap (R4), PG503 eval-time-over-cap (R5), PG504 train-data-after-cap (R6).

Time limits bind the record track on 8xH100; the non-record track waives them (R32), and runs on fewer
GPUs (ablations shipped next to the record runs) are not held to the 8-GPU clock.
"""

from __future__ import annotations

from pgaudit.findings import Confidence, Finding, Location, Severity
from pgaudit.logs import RunLog, to_float
from pgaudit.validators.common import Context, finding, fmt_ms, log_location, quote, seed_label, unique_runs

TRAIN, TRAIN_NAME = "PG502", "train-time-over-cap"
EVAL, EVAL_NAME = "PG503", "eval-time-over-cap"
DATA, DATA_NAME = "PG504", "train-data-after-cap"
FULL_NODE_GPUS = 8
# Hyperparameter names of step-count stops that ignore the wallclock (PR #1908 used FORCE_STOP_STEP).
STEP_STOP_KEYS = ("force_stop_step", "FORCE_STOP_STEP", "stop_step")


def timed_runs(ctx: Context) -> list[RunLog]:
    """Runs held to the clock: the submitted runs of a record-track submission (the submission context: R32
    waives the caps for non-record submissions), not known to use fewer than 8 GPUs."""
    if not ctx.folder.context.time_caps_apply:
        return []
    return [r for r in unique_runs(ctx.folder) if r.world_size is None or r.world_size >= FULL_NODE_GPUS]


# --- PG502 -------------------------------------------------------------------------------------------


def check_train_time(ctx: Context) -> list[Finding]:
    policy = ctx.policy
    findings: list[Finding] = []
    for run in timed_runs(ctx):
        wallclock = _wallclock_setting(run)
        step_stop = _step_stop(run)
        if run.train_time_ms is not None and run.train_time_ms > policy.accepted_train_time_ms:
            findings.append(_over_cap(run, policy, wallclock, step_stop))
            continue
        if wallclock is not None:
            value, line = wallclock
            if value == 0 or value * 1000 > policy.train_time_cap_ms:
                findings.append(_clock_disabled(run, value, line, policy.train_time_cap_ms))
                continue
        if step_stop is not None:
            findings.append(_step_stop_finding(run, *step_stop))
    return findings


def _wallclock_setting(run: RunLog) -> tuple[float, int] | None:
    return run.max_wallclock_seconds


def _step_stop(run: RunLog) -> tuple[str, int] | None:
    for key in STEP_STOP_KEYS:
        raw = run.hyperparameters.get(key)
        if raw is None:
            continue
        value = to_float(raw)
        if value is not None and value > 0:
            return f"{key}={raw}", run.hyperparameter_lines[key]
    return None


def _over_cap(run: RunLog, policy, wallclock, step_stop) -> Finding:  # type: ignore[no-untyped-def]
    assert run.train_time_ms is not None
    cap_ms, accepted_ms = policy.train_time_cap_ms, policy.accepted_train_time_ms
    why = []
    if wallclock is not None and (wallclock[0] == 0 or wallclock[0] * 1000 > cap_ms):
        why.append(f"MAX_WALLCLOCK_SECONDS={wallclock[0]:g}")
    if step_stop is not None:
        why.append(f"a step-count stop ({step_stop[0]}) that ignores the clock")
    cause = f" The run used {' and '.join(why)}." if why else ""
    message = (
        f"{seed_label(run)}: train_time {fmt_ms(run.train_time_ms)} exceeds the {fmt_ms(cap_ms)} cap beyond the "
        f"final-step overshoot accepted in practice (up to {fmt_ms(accepted_ms)}, PR #1019 seed 999).{cause}"
    )
    severe = bool(why) or run.train_time_ms > policy.train_time_warning_ms
    if not severe:
        message += (f" It is within {fmt_ms(policy.train_time_warning_ms)}: PR #1120 (Rascal, 600,365 ms) stayed on "
                    "the leaderboard, so this is a warning.")
    evidence = quote(run, run.train_time_evidence,
                     run.evidence_at(wallclock[1]) if wallclock else None,
                     run.evidence_at(step_stop[1]) if step_stop else None)
    return finding(TRAIN, TRAIN_NAME, Severity.ERROR if severe else Severity.WARNING, Confidence.HIGH, message,
                   log_location(run, run.train_time_evidence), ("R4",),
                   "Keep MAX_WALLCLOCK_SECONDS=600 and stop on the clock; reserve time for post-training steps.",
                   evidence)


def _clock_disabled(run: RunLog, value: float, line: int, cap_ms: int) -> Finding:
    state = "disables the wallclock stop" if value == 0 else f"allows {value:g} s, over the {cap_ms / 1000:g} s cap"
    logged = f"; this run logged train_time {fmt_ms(run.train_time_ms)}" if run.train_time_ms is not None else ""
    message = (f"{seed_label(run)}: MAX_WALLCLOCK_SECONDS={value:g} {state}{logged}. A reproduction on slower "
               "hardware would not stop at 600 s.")
    return finding(TRAIN, TRAIN_NAME, Severity.WARNING, Confidence.HIGH, message,
                   Location(run.name, line), ("R4",),
                   "Run with MAX_WALLCLOCK_SECONDS=600 so that training stops on the clock.",
                   quote(run, run.evidence_at(line), run.train_time_evidence))


def _step_stop_finding(run: RunLog, setting: str, line: int) -> Finding:
    logged = f" (train_time {fmt_ms(run.train_time_ms)})" if run.train_time_ms is not None else ""
    message = (f"{seed_label(run)}: {setting} stops training by step count{logged}; such stops ignore the clock "
               "(PR #1908 seed 42 took 601,153 ms under FORCE_STOP_STEP).")
    return finding(TRAIN, TRAIN_NAME, Severity.WARNING, Confidence.MEDIUM, message,
                   Location(run.name, line), ("R4",),
                   "Stop on the wallclock cap for the submitted runs; keep step-count stops for internal sweeps.",
                   quote(run, run.evidence_at(line), run.train_time_evidence))


# --- PG503 -------------------------------------------------------------------------------------------


def check_eval_time(ctx: Context) -> list[Finding]:
    cap_ms = ctx.policy.eval_time_cap_s * 1000
    findings: list[Finding] = []
    for run in timed_runs(ctx):
        found = _eval_finding(run, cap_ms)
        if found:
            findings.append(found)
    return findings


def _eval_finding(run: RunLog, cap_ms: float) -> Finding | None:
    if run.total_eval_time_s is not None:
        if run.total_eval_time_s * 1000 <= cap_ms:
            return None  # the script's own timer over the scored path is under the cap
        message = (f"{seed_label(run)}: total_eval_time {run.total_eval_time_s:g} s exceeds the "
                   f"{cap_ms / 1000:g} s evaluation cap (PR #1972 was refused at ~688 s).")
        return finding(EVAL, EVAL_NAME, Severity.ERROR, Confidence.HIGH, message,
                       log_location(run, run.total_eval_evidence), ("R5",), _EVAL_FIX,
                       quote(run, run.eval_timer_evidence, run.total_eval_evidence))
    scored = run.scored
    timed = [m for m in run.final_metrics if m.eval_time_ms is not None]
    if scored is not None and scored.eval_time_ms is not None and scored.eval_time_ms > cap_ms:
        message = (f"{seed_label(run)}: the scored evaluation {scored.method} alone took "
                   f"{fmt_ms(scored.eval_time_ms)}, over the {cap_ms / 1000:g} s evaluation cap.")
        return finding(EVAL, EVAL_NAME, Severity.ERROR, Confidence.HIGH, message,
                       Location(run.name, scored.line), ("R5",), _EVAL_FIX,
                       [e.quote(run.name) for e in scored.evidence])
    total = sum(m.eval_time_ms for m in timed)  # type: ignore[misc]
    if len(timed) > 1 and total > cap_ms:
        parts = " + ".join(f"{m.method} {m.eval_time_ms / 1000:.1f} s" for m in timed)  # type: ignore[operator]
        message = (f"{seed_label(run)}: the evaluation passes logged after training sum to {total / 1000:.1f} s "
                   f"({parts}), over the {cap_ms / 1000:g} s cap. Only the passes on the scored path count; "
                   "no total_eval_time was logged to settle which.")
        return finding(EVAL, EVAL_NAME, Severity.WARNING, Confidence.MEDIUM, message,
                       Location(run.name, timed[-1].line), ("R5",), _EVAL_FIX,
                       [e.quote(run.name) for m in timed for e in m.evidence[-1:]])
    return None


_EVAL_FIX = ("Keep the scored evaluation path (roundtrip, sliding window, TTT and any precompute over "
             "validation tokens) under 600 s on 8xH100 and log its total time.")


# --- PG504 -------------------------------------------------------------------------------------------


def check_train_data_after_cap(ctx: Context) -> list[Finding]:
    policy = ctx.policy
    findings: list[Finding] = []
    for run in timed_runs(ctx):
        if run.train_time_ms is None:
            continue
        for calibration in run.calibrations:
            if calibration.source == "self-generated" or calibration.seconds is None:
                continue  # self-generated calibration reads no dataset (PR #1019, accepted)
            end_ms = run.train_time_ms + calibration.seconds * 1000
            overrun = end_ms - policy.train_data_cap_ms
            if overrun <= 0:
                continue
            reserved = _reserve_configured(run)
            grace = policy.reserved_train_data_grace_ms if reserved else policy.train_data_grace_ms
            findings.append(_data_finding(run, calibration, end_ms, overrun, grace, reserved))
    return findings


def _reserve_configured(run: RunLog) -> bool:
    """The run set time aside for GPTQ before the cap (`gptq:reserving ...` or a positive reserve knob)."""
    if run.gptq_reserve_evidence is not None:
        return True
    for key, value in run.hyperparameters.items():
        if "reserve" in key.lower():
            try:
                if float(value) > 0:
                    return True
            except ValueError:
                continue
    return False


def _data_finding(run: RunLog, calibration, end_ms: float, overrun: float, grace_ms: int, reserved: bool) -> Finding:  # type: ignore[no-untyped-def]
    assert run.train_time_ms is not None
    source = calibration.source
    if source == "unspecified calibration data":
        source = "calibration batches (read from the fineweb_train_* shards in the scripts that print this line)"
    severe = overrun > grace_ms
    message = (
        f"{seed_label(run)}: training stopped at {fmt_ms(run.train_time_ms)}, then GPTQ Hessians were collected "
        f"from {source} for {calibration.seconds:g} s: training data was read until about {end_ms / 1000:.1f} s, "
        f"{overrun / 1000:.1f} s past the 600 s training budget."
    )
    if severe:
        message += (" This is the pattern ruled illegal on PR #1028 (GPTQ calibration reading training data after "
                    "the 600 s cap); PR #1868 re-ran PR #1851 with GPTQ_RESERVE_SECONDS=8 to confirm compliance.")
    elif reserved:
        message += (f" A GPTQ reserve was configured but was too short; the overrun is within {grace_ms / 1000:g} s, "
                    "like the merged records PR #1787, PR #1855, PR #1868 and PR #2135 (accepted on PR #2146; the catalogue's "
                    "known inconsistency of R6), "
                    "so this is a warning. A strict reading of R6 makes any overrun a violation.")
    else:
        message += (f" The overrun is within {grace_ms / 1000:g} s; merged records with a GPTQ reserve show such "
                    "overruns (PR #1493).")
    return finding(
        DATA, DATA_NAME, Severity.ERROR if severe else Severity.WARNING, Confidence.MEDIUM, message,
        log_location(run, calibration.evidence), ("R6",),
        "Reserve enough of the 600 s for Hessian collection (GPTQ_RESERVE_SECONDS) or calibrate on "
        "self-generated data.",
        quote(run, run.gptq_reserve_evidence, run.train_time_evidence, calibration.evidence),
    )

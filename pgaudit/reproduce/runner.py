"""Orchestrate `pgaudit reproduce`: seeds in turn, per-seed results for --resume, then the comparison."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgaudit.atomic import write_atomic
from pgaudit.findings import Finding
from pgaudit.reproduce import compare, manifest
from pgaudit.reproduce.launcher import build_argv, launch, prepare_workdir, run_env
from pgaudit.reproduce.measure import summarize
from pgaudit.reproduce.options import ReproOptions, check_inputs, pick_seeds, resolve_launcher
from pgaudit.reproduce.status import StatusBoard
from pgaudit.reproduce.timing import Calibration, load_calibration, timing_summary
from pgaudit.submission import RecordFolder, load_record_folder


@dataclass
class Outcome:
    seeds: list[int]
    results: list[dict[str, Any]]
    findings: list[Finding]
    summary: dict[str, Any]
    interrupted: bool = False
    skipped: list[int] = field(default_factory=list)


def seed_dir(out: Path, seed: int) -> Path:
    return out / f"seed_{seed}"


def load_done(out: Path, seed: int, scripts: dict[str, str]) -> dict[str, Any] | None:
    """A finished seed's result, unless the folder's scripts changed since it ran."""
    path = seed_dir(out, seed) / "result.json"
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        man = json.loads((seed_dir(out, seed) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if result.get("status") != "finished" or man.get("scripts") != scripts:
        return None
    return result


def reproduce(opts: ReproOptions) -> Outcome:
    check_inputs(opts)
    launcher = resolve_launcher(" ".join(opts.launcher) if opts.launcher else None)
    folder = load_record_folder(opts.record_dir, opts.record_dir.name)
    claim = compare.claimed(folder)
    seeds = pick_seeds(opts.seeds, opts.n_seeds, _claimed_seeds(folder, claim))
    calibration = load_calibration(opts.calibration) if opts.calibration else None
    scripts = manifest.script_hashes(opts.record_dir)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, Any]] = {}
    skipped: list[int] = []
    interrupted = False
    with StatusBoard(seeds, opts.live) as board:
        for seed in seeds:
            done = load_done(opts.out_dir, seed, scripts) if opts.resume else None
            if done is not None:
                results[seed], board.rows[seed].state = done, "skipped"
                skipped.append(seed)
                board.event(f"seed {seed}: already complete in {seed_dir(opts.out_dir, seed)}, skipped (--resume)")
                continue
            results[seed] = _run_seed(opts, launcher, seed, scripts, board)
            if results[seed]["status"] == "interrupted":
                interrupted = True
                break
    ordered = [results[s] for s in seeds if s in results]
    findings, summary = evaluate(opts, folder, claim, ordered, calibration)
    summary["interrupted"] = interrupted
    summary["verdict"] = verdict(findings, ordered, seeds, interrupted, claim.mean_bpb is not None)
    return Outcome(seeds, ordered, findings, summary, interrupted, skipped)


def _claimed_seeds(folder: RecordFolder, claim: compare.Claimed) -> list[int]:
    if folder.claims is not None and folder.claims.seeds:
        return list(folder.claims.seeds)
    return sorted(claim.per_seed_bpb)


def _run_seed(opts: ReproOptions, launcher: list[str], seed: int, scripts: dict[str, str], board: StatusBoard) -> dict[str, Any]:
    sdir = seed_dir(opts.out_dir, seed)
    if sdir.exists():
        shutil.rmtree(sdir)
    sdir.mkdir(parents=True)
    board.event(f"seed {seed}: starting {opts.nproc} process(es) in {sdir / 'work'}")
    run_id = f"pgaudit_repro_seed{seed}"
    workdir = sdir / "work"
    prepare_workdir(opts.record_dir, workdir)
    argv = build_argv(opts, launcher, run_id, [opts.script])
    res = launch(opts, argv, run_env(opts, seed, run_id), run_id, seed, sdir, workdir, board.rows[seed], board.refresh)
    exit_info = res.exit_info() | {"time_limit_s": opts.time_limit_s}
    man = manifest.build(seed=seed, run_id=res.run_id, record_dir=opts.record_dir.resolve(), scripts=scripts,
                         argv=res.argv, env=manifest.allowed_env(res.env, opts.env), started_utc=res.started_utc,
                         wallclock_s=res.wallclock_s, exit_info=exit_info)  # fmt: skip
    write_atomic(sdir / "manifest.json", json.dumps(man, indent=2) + "\n")
    result = summarize(res, opts.record_dir, opts.script, opts.out_dir)
    # Written last: its presence is what --resume trusts.
    write_atomic(sdir / "result.json", json.dumps(result, indent=2) + "\n")
    metric = result["metric"]
    score = f"val_bpb {metric['val_bpb']:.8f}" if metric else "no final score"
    board.event(f"seed {seed}: {res.status} in {res.wallclock_s:.1f}s, {score}")
    return result


def evaluate(
    opts: ReproOptions, folder: RecordFolder, claim: compare.Claimed, results: list[dict[str, Any]],
    calibration: Calibration | None,
) -> tuple[list[Finding], dict[str, Any]]:  # fmt: skip
    tol, sd = compare.tolerance(claim, opts.tolerance_floor, opts.tolerance_k)
    findings = compare.judge(results, claim, tol, opts.bytes_tolerance)
    reference = manifest.is_reference_hardware(manifest.hardware())
    findings += validate_new_logs(opts, folder, results, timing_is_reference=reference)
    done = [r for r in results if r["status"] == "finished" and r["metric"]]
    mean = sum(r["metric"]["val_bpb"] for r in done) / len(done) if done else None
    summary = {
        "claimed": claim.to_dict(),
        "tolerance": {"val_bpb": tol, "claimed_seed_sd": sd, "floor": opts.tolerance_floor, "k": opts.tolerance_k,
                      "bytes_relative": opts.bytes_tolerance},
        "aggregate": {"seeds_finished": len(done), "seeds_requested": len(results),
                      "mean_val_bpb": mean, "claimed_mean_val_bpb": claim.mean_bpb,
                      "difference": None if mean is None or claim.mean_bpb is None else mean - claim.mean_bpb},
        "timing": timing_summary(results, calibration, reference),
    }  # fmt: skip
    return sorted(findings, key=Finding.sort_key), summary


# Validators that read a run's log; folder-level ones (package, seeds, significance) judge the submission.
LOG_VALIDATORS = ("PG501", "PG502", "PG503", "PG504", "PG510")
TIMING_CODES = ("PG502", "PG503", "PG504")


def validate_new_logs(
    opts: ReproOptions, folder: RecordFolder, results: list[dict[str, Any]], timing_is_reference: bool
) -> list[Finding]:
    from pgaudit.policy import Policy
    from pgaudit.reproduce.measure import parse_run
    from pgaudit.validators import validate_folder

    logs = [run for r in results if (run := parse_run(opts.out_dir / r["log"], r["log"])) is not None]
    if not logs:
        return []
    view = RecordFolder(root=folder.root, display=folder.display, track=folder.track, files=folder.files,
                        readme=folder.readme, claims=folder.claims, logs=logs, scripts=folder.scripts)  # fmt: skip
    keep = LOG_VALIDATORS if timing_is_reference else tuple(c for c in LOG_VALIDATORS if c not in TIMING_CODES)
    return [f for f in validate_folder(view, [], Policy()) if f.code in keep]


def verdict(
    findings: list[Finding], results: list[dict[str, Any]], seeds: list[int], interrupted: bool, has_claim: bool
) -> str:
    codes = {f.code for f in findings}
    if "PG601" in codes or "PG603" in codes:
        return "not-reproduced"
    if "PG602" in codes:
        return "run-failed"
    if interrupted or len(results) < len(seeds):
        return "incomplete"
    return "reproduced" if has_claim else "no-claim"  # ran fine, but nothing was claimed to compare with

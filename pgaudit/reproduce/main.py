"""The library side of the `reproduce` command: run, write the reports, print a summary, pick the exit code."""

from __future__ import annotations

from dataclasses import asdict

from rich.console import Console

from pgaudit.findings import Severity
from pgaudit.reproduce import report
from pgaudit.reproduce.options import ReproOptions
from pgaudit.reproduce.runner import reproduce

EXIT_INTERRUPTED = 130


def run(opts: ReproOptions) -> int:
    """0 reproduced, 1 not reproduced / failed / error findings / incomplete, 130 interrupted (2 is raised)."""
    outcome = reproduce(opts)
    settings = {k: str(v) if hasattr(v, "__fspath__") else v for k, v in asdict(opts).items()}
    data = report.to_dict(outcome, opts.record_dir, settings)
    json_path, md_path = report.write(opts.out_dir, data)
    out = Console(highlight=False, soft_wrap=True)
    agg = outcome.summary["aggregate"]
    mean = "-" if agg["mean_val_bpb"] is None else f"{agg['mean_val_bpb']:.8f}"
    claimed = "-" if agg["claimed_mean_val_bpb"] is None else f"{agg['claimed_mean_val_bpb']:.8f}"
    out.print(f"verdict: {outcome.summary['verdict']}  seeds finished {agg['seeds_finished']}/{len(outcome.seeds)}"
              f"  mean val_bpb {mean} (claimed {claimed}, tolerance {outcome.summary['tolerance']['val_bpb']:.5f})",
              markup=False)  # fmt: skip
    for f in outcome.findings:
        out.print(f"{f.code} {f.name} [{f.severity.label}] {f.location.display()}: {f.message}", markup=False)
    out.print(f"report: {json_path} and {md_path}", markup=False)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    errors = any(f.severity >= Severity.ERROR for f in outcome.findings)
    return 0 if outcome.summary["verdict"] == "reproduced" and not errors else 1


def calibrate(opts: ReproOptions, steps: int, workload: str) -> int:
    from pgaudit.reproduce.calibrate import calibrate as run_calibration
    from pgaudit.reproduce.calibrate import describe

    cal = run_calibration(opts, steps, workload)
    Console(highlight=False, soft_wrap=True).print(describe(cal), markup=False)
    Console(highlight=False, soft_wrap=True).print(f"written: {opts.out_dir / 'calibration.json'} (pass it with --calibration)",
                                   markup=False)  # fmt: skip
    return 0

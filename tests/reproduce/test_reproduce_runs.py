"""End to end on the CPU: a tiny record re-run with torchrun (1 process, 2 seeds) and judged against its claims."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pgaudit.reproduce.manifest import MANIFEST_KEYS
from tests.conftest import run_cli
from tests.reproduce.conftest import SEEDS, GoodRun, Record, cpu_args


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_tiny_record_is_reproduced(good_run: GoodRun, record: Record) -> None:
    assert good_run.rc == 0, (good_run.stdout, good_run.stderr)
    data = report(good_run.out)
    assert data["verdict"] == "reproduced"
    assert data["seeds"] == list(SEEDS)
    assert [r["status"] for r in data["results"]] == ["finished", "finished"]
    assert not [f for f in data["findings"] if f["code"].startswith("PG6")]
    for res in data["results"]:
        assert abs(res["metric"]["val_bpb"] - record.claimed[res["seed"]]) < 1e-3
        art = res["artifact"]
        model = good_run.out / art["model_file"]
        assert model.name == "final_model.int8.ptz" and art["model_bytes"] == model.stat().st_size
        assert art["total_measured"] == art["total_logged"]  # the trainer counts its own sources as code
        assert res["external"]["wallclock_s"] > 0 and res["train_time_ms"] > 0
    assert "verdict: reproduced" in good_run.stdout
    md = (good_run.out / "report.md").read_text()
    assert md.startswith("# pgaudit reproduce: reproduced") and "| 1337 | finished |" in md
    assert "seed 1337: finished" in good_run.stderr  # plain progress lines when stderr is not a terminal


def test_manifest_has_every_field(good_run: GoodRun, record: Record) -> None:
    for seed in SEEDS:
        man = json.loads((good_run.out / f"seed_{seed}" / "manifest.json").read_text())
        assert tuple(man) == MANIFEST_KEYS
        assert man["seed"] == seed and man["scripts"]["train_gpt.py"] and len(man["scripts"]["train_gpt.py"]) == 64
        assert "--nproc_per_node=1" in man["argv"] and man["argv"][-1] == "train_gpt.py"
        assert man["env"]["SEED"] == str(seed) and man["env"]["OMP_NUM_THREADS"] == "1"
        assert man["env"]["DATA_PATH"] == str(record.data.data_path.resolve())
        assert set(man["versions"]) >= {"python", "torch", "cuda", "cudnn", "nccl"} and man["versions"]["torch"]
        assert man["cpu"]["logical_cpus"] >= 1 and "model" in man["cpu"]
        assert man["gpus"] is None or isinstance(man["gpus"], list)
        assert man["exit"]["status"] == "finished" and man["exit"]["returncode"] == 0
        assert man["wallclock_s"] > 0 and man["started_utc"]


def _copy_out(good_run: GoodRun, dest: Path) -> Path:
    shutil.copytree(good_run.out, dest, symlinks=True)
    return dest


def test_resume_skips_finished_seeds_and_applies_a_calibration(good_run: GoodRun, record: Record, tmp_path: Path) -> None:
    out = _copy_out(good_run, tmp_path / "out")
    before = {s: (out / f"seed_{s}" / "result.json").stat().st_mtime_ns for s in SEEDS}
    cal = tmp_path / "calibration.json"
    cal.write_text(json.dumps({"ms_per_step": 10.0, "official_equivalent_ms_per_step": 435.4, "factor": 10.0,
                               "workload": "tiny (FLOP-scaled estimate)", "steps": 6, "device": "cpu", "nproc": 1,
                               "host": "test", "cpu": None, "gpus": []}))  # fmt: skip
    proc = run_cli("reproduce", str(record.folder), "--seeds", "2", "--resume", "--calibration", str(cal), *cpu_args(record.data, out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("skipped (--resume)") == 2 and "starting" not in proc.stderr
    assert {s: (out / f"seed_{s}" / "result.json").stat().st_mtime_ns for s in SEEDS} == before
    data = report(out)
    assert data["skipped_by_resume"] == list(SEEDS) and data["verdict"] == "reproduced"
    timing = data["summary"]["timing"]
    assert timing["basis"].startswith("estimate") and all(row["estimate"] for row in timing["seeds"])
    row = timing["seeds"][0]
    assert row["train_s_8xh100"] == row["train_s_log"] / 10.0


def test_resume_reruns_a_seed_whose_script_changed(good_run: GoodRun, record: Record, tmp_path: Path) -> None:
    from pgaudit.reproduce.runner import load_done

    out = _copy_out(good_run, tmp_path / "out")
    assert load_done(out, 1337, {"train_gpt.py": "0" * 64}) is None
    man = json.loads((out / "seed_1337" / "manifest.json").read_text())
    assert load_done(out, 1337, man["scripts"]) is not None


def test_claims_that_disagree_give_pg601(good_run: GoodRun, record: Record, tmp_path: Path) -> None:
    folder = tmp_path / record.folder.name
    shutil.copytree(record.folder, folder)
    sub = json.loads((folder / "submission.json").read_text())
    sub["val_bpb"] -= 0.2  # better than the configuration gives, beyond 3 sd of the tiny seeds (~0.05)
    (folder / "submission.json").write_text(json.dumps(sub))
    out = _copy_out(good_run, tmp_path / "out")  # the same scripts: the finished seeds are reused
    proc = run_cli("reproduce", str(folder), "--seeds", "2", "--resume", *cpu_args(record.data, out))
    assert proc.returncode == 1, proc.stderr
    data = report(out)
    assert data["verdict"] == "not-reproduced"
    pg601 = [f for f in data["findings"] if f["code"] == "PG601"]
    assert len(pg601) == 1 and "mean re-run val_bpb" in pg601[0]["message"] and pg601[0]["severity"] == "error"
    assert "PG601 not-reproduced" in proc.stdout


def test_calibration_on_this_cpu(tmp_path: Path) -> None:
    out = tmp_path / "cal"
    proc = run_cli("reproduce", "--calibrate", "--device", "cpu", "--nproc", "1", "--calibrate-steps", "5",
                   "--workload", "tiny", "--out", str(out), "--env", "OMP_NUM_THREADS=1", timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["ms_per_step"] > 0 and cal["official_ms_per_step"] == 43.54
    assert cal["factor"] == round(cal["official_equivalent_ms_per_step"] / 43.54, 4)
    assert cal["workload"] == "tiny (FLOP-scaled estimate)"
    assert "ms/step" in proc.stdout and "estimate" in proc.stdout

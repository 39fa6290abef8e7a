"""Bad input: one line on stderr, exit 2, never a traceback; and atomic report writing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.reproduce.conftest import cpu_args, data_args, script_folder
from tests.test_cli import assert_one_line_error


def test_missing_folder(tiny, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("reproduce", str(tmp_path / "nope"), *cpu_args(tiny, tmp_path / "o")), "no such folder")


def test_folder_without_script(tiny, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("reproduce", str(tmp_path / "empty"), *cpu_args(tiny, tmp_path / "o")),
                          "no train_gpt.py to run")  # fmt: skip


def test_missing_data_path(tmp_path: Path) -> None:
    folder = script_folder(tmp_path, "ok", "print('hi')\n")
    proc = run_cli("reproduce", str(folder), "--device", "cpu", "--nproc", "1", "--data-path", str(tmp_path / "none"))
    assert_one_line_error(proc, "data path", "is not a folder", "cached_challenge_fineweb.py")


def test_torchrun_missing(tiny, tmp_path: Path) -> None:
    folder = script_folder(tmp_path, "ok", "print('hi')\n")
    proc = run_cli("reproduce", str(folder), *cpu_args(tiny, tmp_path / "o", "--launcher", "no-such-torchrun"))
    assert_one_line_error(proc, "launcher 'no-such-torchrun' not found")


@pytest.mark.skipif(os.path.exists("/dev/nvidia0"), reason="this machine has a GPU")
def test_gpus_requested_without_cuda(tiny, tmp_path: Path) -> None:
    folder = script_folder(tmp_path, "ok", "print('hi')\n")
    proc = run_cli("reproduce", str(folder), *data_args(tiny), "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "8 GPU process(es) requested but no CUDA GPU found", "--device cpu")


def test_bad_env_and_options(tiny, tmp_path: Path) -> None:
    folder = script_folder(tmp_path, "ok", "print('hi')\n")
    assert_one_line_error(run_cli("reproduce", str(folder), *cpu_args(tiny, tmp_path / "o", "--env", "NOEQUALS")),
                          "--env expects KEY=VALUE")  # fmt: skip
    assert_one_line_error(run_cli("reproduce", str(folder), *cpu_args(tiny, tmp_path / "o", "--nnodes", "2")),
                          "--rdzv-endpoint")  # fmt: skip
    assert_one_line_error(run_cli("reproduce", *cpu_args(tiny, tmp_path / "o")), "give a RECORD_DIR")
    proc = run_cli("reproduce", str(folder), *cpu_args(tiny, tmp_path / "o", "--calibration", str(tmp_path / "x.json")))
    assert_one_line_error(proc, "no such calibration file")


def test_report_writing_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pgaudit.atomic
    from pgaudit.errors import PgauditError
    from pgaudit.reproduce import report

    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"old": true}\n')

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pgaudit.atomic.os, "fsync", broken_fsync)
    with pytest.raises(PgauditError, match="No space left"):
        report.write(out, {"verdict": "reproduced"})
    assert json.loads((out / "report.json").read_text()) == {"old": True}
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]  # no temporary file left behind

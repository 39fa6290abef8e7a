"""PG505 line-limit: hard error for the root scripts, information for records, payload lines counted."""

from __future__ import annotations

import base64
import lzma
from pathlib import Path

from pgaudit.findings import Severity
from pgaudit.source.program import load_program
from pgaudit.validators.line_limit import check_program, running_lines
from tests.validators.helpers import README, make_folder, only, validate


def long_script(lines: int) -> str:
    body = [f"x{i} = {i}" for i in range(lines - 1)]
    return "\n".join(["import os", *body]) + "\n"


def wrapper_for(code: str) -> str:
    blob = base64.b85encode(lzma.compress(code.encode(), format=lzma.FORMAT_RAW,
                                          filters=[{"id": lzma.FILTER_LZMA2}])).decode()
    return ('import lzma as L,base64 as B\n'
            f'exec(L.decompress(B.b85decode("{blob}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n')


def test_record_over_the_limit_is_information(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": long_script(1600)})
    (finding,) = only(validate(folder), "PG505")
    assert finding.severity is Severity.INFO and "1,600 lines" in finding.message
    assert finding.catalogue_ids == ("R7",)


def test_payload_lines_count_as_code_that_runs(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": wrapper_for(long_script(1700))})
    program = load_program(folder / "train_gpt.py", folder)
    assert running_lines(program) == (2, 1700, 1702)
    (finding,) = only(validate(folder), "PG505")
    assert "2 committed lines + 1,700 lines in its compressed payload" in finding.message


def test_root_script_over_the_limit_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "records").mkdir(parents=True)
    (root / "train_gpt.py").write_text(long_script(1501))
    program = load_program(root / "train_gpt.py", root)
    finding = check_program(program, 1500, root_script=True)
    assert finding.severity is Severity.ERROR and finding.location.line == 1501
    from pgaudit.policy import Policy
    from pgaudit.submission import load_record_folder
    from pgaudit.validators import validate_folder

    folder = load_record_folder(root)
    assert [f.severity for f in only(validate_folder(folder, [program], Policy()), "PG505")] == [Severity.ERROR]


def test_within_the_limit_is_silent(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, {"README.md": README, "train_gpt.py": long_script(1500)})
    assert only(validate(folder), "PG505") == []


def test_repository_root_checks_both_root_scripts_and_is_not_a_package(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "records").mkdir(parents=True)
    (root / "train_gpt.py").write_text(long_script(1126))
    (root / "train_gpt_mlx.py").write_text(long_script(1600))
    findings = validate(root)
    assert [(f.code, f.severity, f.location.path) for f in findings] == [
        ("PG505", Severity.ERROR, "train_gpt_mlx.py")]

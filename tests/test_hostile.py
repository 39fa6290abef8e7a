"""A hostile submission: pgaudit never runs its bytes, never trusts its decoding, never lets it speak for pgaudit.

Each test reproduces one problem found by an adversarial review (issue 14) or a measured crash (issue 11):
shadowing modules, workflow-command injection, decoding tricks, decoy entries, launch spellings, unbounded
evaluation, and bad inputs that must end in exit 2 with a one-line message naming the real problem.
"""

from __future__ import annotations

import ast
import base64
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pgaudit.analysis.config import MAX_INT_BITS, affordable
from pgaudit.analysis.runcmd import documented_env, launched_scripts
from pgaudit.errors import InputError, WorkflowSafeWriter, escape_workflow_line
from pgaudit.jsonsafe import loads_strict
from pgaudit.source import parse
from pgaudit.source.guards import decode_source
from pgaudit.source.program import find_entries
from tests.conftest import ROOT, run_cli

EXAMPLES = ROOT / "examples"
ILLEGAL = EXAMPLES / "illegal_ngram_cache" / "train_gpt.py"
CLEAN = EXAMPLES / "clean_score_first_ttt"


def one_line_input_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, no traceback, no internal error, and an error line containing every needle."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("pgaudit: ")]
    assert lines, proc.stderr
    for needle in needles:
        assert any(needle in line for line in lines), (needle, proc.stderr)
    return "\n".join(lines)


# --- 1. `python -m pgaudit` imports nothing from the working directory --------------------------------------

SHADOWS = ("json", "typer", "rich", "numpy", "tomllib", "scipy", "libcst", "click", "sentencepiece", "shlex")


def _shadowing_folder(root: Path, marker: Path) -> Path:
    folder = root / "records" / "track_10min_16mb" / "shadow"
    shutil.copytree(CLEAN, folder)
    payload = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for name in SHADOWS:
        (folder / f"{name}.py").write_text(payload, encoding="utf-8")
    for package in ("rules", "reference_trainer"):
        (folder / package).mkdir()
        (folder / package / "__init__.py").write_text(payload, encoding="utf-8")
    return folder


COMMANDS = [
    ("check", "."),
    ("check", ".", "--format", "github"),
    ("check", "train_gpt.py", "--format", "json"),
    ("review", "."),
    ("rules",),
    ("rules", "--format", "json"),
    ("explain", "PG101"),
    ("explain", "PG005"),
    ("ci", "--base", "HEAD~1"),
    ("bpb", "--tokenizer", "missing.model", "--val", "missing_*.bin"),
    ("significance", "--seeds-from", ".", "--against-values", "1.2,1.21,1.22"),
    ("--version",),
]


def test_python_m_pgaudit_runs_no_module_of_the_working_directory(tmp_path: Path):
    marker = tmp_path / "MARKER"
    folder = _shadowing_folder(tmp_path, marker)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "base"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "add"], cwd=tmp_path, check=True)
    for args in COMMANDS:
        proc = run_cli(*args, cwd=folder)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.returncode in (0, 1, 2), (args, proc.returncode, proc.stderr)
        assert not marker.exists(), (args, marker.read_text())
    proc = run_cli("check", ".", cwd=folder)  # and the audit itself still works from there
    assert proc.returncode == 0 and "clean" in proc.stdout, proc.stderr


def test_python_P_guards_even_a_pgaudit_package_in_the_working_directory(tmp_path: Path):
    marker = tmp_path / "MARKER"
    folder = _shadowing_folder(tmp_path, marker)
    (folder / "pgaudit").mkdir()
    (folder / "pgaudit" / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('pkg')\n")
    (folder / "pgaudit" / "__main__.py").write_text(f"open({str(marker)!r}, 'a').write('main')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "pgaudit", "check", "."], cwd=folder, env=env, capture_output=True, text=True
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert not marker.exists()


# --- 2. workflow-command injection -------------------------------------------------------------------------

INJECTION = "x\n::warning file=forged.py,line=1::forged%0A\r::stop-commands::tok"


def _forged_lines(text: str) -> list[str]:
    """Lines a runner would read as a command that pgaudit did not write itself."""
    ours = ("::error ", "::error::", "::warning ", "::warning::", "::notice ", "::notice::", "::group::",
            "::endgroup::", "::stop-commands::pgaudit-", "::pgaudit-")  # fmt: skip
    bad = []
    for line in text.replace("\r", "\n").split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("::") and not stripped.startswith(ours):
            bad.append(line)
        if "forged.py" in stripped and stripped.startswith("::warning file=forged.py"):
            bad.append(line)
    return bad


def test_error_lines_cannot_forge_workflow_commands(tmp_path: Path):
    folder = tmp_path / "sub"
    shutil.copytree(CLEAN, folder)
    (folder / f"{INJECTION}.log").write_bytes(b"\x00\x00binary")
    proc = run_cli("check", str(folder), "--format", "github")
    assert proc.returncode == 2
    assert "forged" in proc.stderr  # reported, escaped
    assert _forged_lines(proc.stderr) == [] and _forged_lines(proc.stdout) == []
    # outside --format github, GITHUB_ACTIONS=true escapes the error lines as well
    proc = run_cli("check", str(folder), env={"GITHUB_ACTIONS": "true"})
    assert _forged_lines(proc.stderr) == []


def test_escape_rules():
    assert escape_workflow_line("a%b\r\nc") == "a%25b%0D%0Ac"
    assert not escape_workflow_line("  ::error::x").lstrip().startswith("::")
    out: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            out.append(text)

        def flush(self) -> None:
            pass

    writer = WorkflowSafeWriter(Sink())
    writer.write("ok line\n:")
    writer.write(":warning::forged\n  ::error::x\rmore\n")
    writer.flush()
    text = "".join(out)
    assert text.splitlines()[0] == "ok line"
    assert not [line for line in text.replace("\r", "\n").split("\n") if line.lstrip().startswith("::")]


# --- 3. decoding exactly as CPython ----------------------------------------------------------------------

TRICKY = [
    b'x = 1\n# coding: unicode_escape\ny = "\\x22"\n',  # cookie on line 2 after code: CPython ignores it
    b'# coding: unicode_escape\ny = "\\x22"\n',  # honoured on line 1
    b'#!/usr/bin/env python\n# -*- coding: latin-1 -*-\nx = "\xe9"\n',
    b'\n# vim: set fileencoding=latin-1 :\nx = "\xe9"\n',
    b'\xef\xbb\xbfx = "\xc3\xa9"\n',  # BOM
    b'\xef\xbb\xbf# coding: utf-8-sig\nx = 1\n',
    b'\xef\xbb\xbf# coding: latin-1\nx = 1\n',  # BOM + conflicting cookie: CPython refuses
    b'# coding: bogus-codec\nx = 1\n',  # unknown codec: CPython refuses
    b'x = "\xe9"\n',  # latin-1 bytes, nothing declared: CPython refuses
    b'\x0c# coding: latin-1\nx = "\xe9"\n',
    b'import os\n\n\n# coding: latin-1\nx = "\xc3\xa9"\n',  # cookie on line 4: ignored
    b'# coding=utf8\r\nx = "\xc3\xa9"\r\n',
]


@pytest.mark.parametrize("data", TRICKY)
def test_decoded_text_is_what_cpython_compiles(data: bytes):
    try:
        expected = ast.dump(ast.parse(data))
    except SyntaxError:
        expected = None
    try:
        text = decode_source(data, "t.py").text
    except InputError as exc:
        assert expected is None, f"pgaudit refused what CPython accepts: {exc}"
        assert "\n" not in str(exc)
        return
    try:
        seen = ast.dump(ast.parse(text))
    except SyntaxError:  # e.g. unicode_escape turning "\x22" into a quote: CPython fails to parse too
        seen = None
    assert seen == expected


def test_unicode_escape_cookie_after_code_does_not_hide_a_call(tmp_path: Path):
    script = tmp_path / "train_gpt.py"
    script.write_bytes(b'x = 1\n# coding: unicode_escape\nname = "\\x22"\n')
    src = decode_source(script.read_bytes(), "train_gpt.py")
    assert '"\\x22"' in src.text  # the literal four characters CPython sees, not a quote


def test_utf16_is_named_not_binary(tmp_path: Path):
    script = tmp_path / "train_gpt.py"
    script.write_bytes("import os\nprint(os.name)\n".encode("utf-16"))
    message = one_line_input_error(run_cli("check", str(script)), "UTF-16")
    assert "binary" not in message


# --- 4 and 5. the entry is what the documented command launches; launch spellings --------------------------


def _decoy(tmp_path: Path, command: str) -> Path:
    folder = tmp_path / "records" / "track_10min_16mb" / "decoy"
    shutil.copytree(CLEAN, folder)
    shutil.copy(ILLEGAL, folder / "train_gpt_fast.py")
    (folder / "README.md").write_text(f"# Decoy\n\n```bash\n{command}\n```\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "command",
    [
        "SEED=1337 torchrun --standalone --nproc_per_node=8 train_gpt_fast.py",
        "torchrun --nproc-per-node 8 ./train_gpt_fast.py --lr 0.1",
        "python -m torch.distributed.run --nproc_per_node=gpu train_gpt_fast.py",
        "WORLD_SIZE=8 python3 train_gpt_fast.py",
    ],
)
def test_the_script_the_run_command_launches_is_audited(tmp_path: Path, command: str):
    folder = _decoy(tmp_path, command)
    assert folder / "train_gpt_fast.py" in find_entries(folder)
    proc = run_cli("check", str(folder), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert '"PG101"' in proc.stdout and '"PG005"' in proc.stdout
    assert "train_gpt_fast.py" in proc.stdout


@pytest.mark.parametrize(
    "command",
    [
        "torchrun --standalone --nproc_per_node=gpu train_gpt.py",
        "torchrun --standalone --nproc-per-node=8 train_gpt.py",
        "torchrun --standalone --nproc_per_node gpu train_gpt.py",
        "python -m torch.distributed.run --standalone --nproc_per_node=8 train_gpt.py",
        "WORLD_SIZE=8 python train_gpt.py",
    ],
)
def test_launch_spellings_mean_the_official_launch(tmp_path: Path, command: str):
    (tmp_path / "train_gpt.py").write_text("print(1)\n")
    (tmp_path / "README.md").write_text(f"```\n{command}\n```\n")
    env, sources = documented_env(tmp_path)
    assert sources == ["README.md:2"]
    assert env["WORLD_SIZE"] == "8" and env["LOCAL_WORLD_SIZE"] == "8"
    assert [p.name for p, _ in launched_scripts(tmp_path)] == ["train_gpt.py"]


def test_world_size_gate_runs_under_nproc_gpu(tmp_path: Path):
    """A `WORLD_SIZE == 8` gate around illegal code is reached by the submitted `--nproc_per_node=gpu` run."""
    folder = tmp_path / "records" / "track_10min_16mb" / "gate"
    shutil.copytree(CLEAN, folder)
    text = ILLEGAL.read_text().replace(
        'if __name__ == "__main__":', 'if __name__ == "__main__" and int(os.environ.get("WORLD_SIZE", "1")) == 8:'
    )
    assert "WORLD_SIZE" in text
    (folder / "train_gpt.py").write_text(text if "import os" in text else "import os\n" + text)
    (folder / "README.md").write_text("```\ntorchrun --standalone --nproc_per_node=gpu train_gpt.py\n```\n")
    proc = run_cli("check", str(folder), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert '"severity": "error"' in proc.stdout and '"PG101"' in proc.stdout


# --- 6. the static evaluator is bounded --------------------------------------------------------------------


def test_evaluator_refuses_to_compute_huge_values():
    assert not affordable(ast.Pow(), 7, 2_000_000_000)
    assert not affordable(ast.LShift(), 1, 10**9)
    assert not affordable(ast.Mult(), "x", 10**9)
    assert not affordable(ast.Mult(), 2**MAX_INT_BITS, 2**MAX_INT_BITS)
    assert not affordable(ast.Mod(), "%0999999999d", 1)
    assert affordable(ast.Pow(), 2, 20) and affordable(ast.Mult(), 3, 4) and affordable(ast.Pow(), 10, -3)


def test_power_expression_in_a_dead_branch_is_unknown_not_computed(tmp_path: Path):
    script = tmp_path / "train_gpt.py"
    text = ILLEGAL.read_text().replace('if __name__ == "__main__":', 'if __name__ == "__main__" and (7 ** 2000000000) < 3:')
    script.write_text(text)
    proc = run_cli("check", str(script), "--format", "json", timeout=60)
    assert proc.returncode == 1, proc.stderr  # reachability unknown: the finding stays an error
    assert '"PG101"' in proc.stdout


# --- 7. bad inputs: exit 2, one line that names the problem ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "needle"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "Infinity"), ("1e400", "1e400")]
)
@pytest.mark.parametrize("command", ["check", "review"])
def test_non_finite_json_numbers(tmp_path: Path, value: str, needle: str, command: str):
    folder = tmp_path / "sub"
    shutil.copytree(CLEAN, folder)
    claims = (folder / "submission.json").read_text()
    (folder / "submission.json").write_text(claims.replace('"bytes_total": 15721574', f'"bytes_total": {value}'))
    proc = run_cli(command, str(folder))
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    if command == "check":
        one_line_input_error(proc, "submission.json", needle)
    else:
            assert proc.returncode == 2 and needle in proc.stdout  # review exits like check; its comment names the problem


def test_deeply_nested_json(tmp_path: Path):
    folder = tmp_path / "sub"
    shutil.copytree(CLEAN, folder)
    (folder / "submission.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    one_line_input_error(run_cli("check", str(folder)), "submission.json", "nested")
    with pytest.raises(ValueError, match="nested"):
        loads_strict("[" * 1000 + "]" * 1000)
    assert loads_strict('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}


def test_symlink_loop_as_entry(tmp_path: Path):
    loop = tmp_path / "train_gpt.py"
    loop.symlink_to("train_gpt.py")
    one_line_input_error(run_cli("check", str(loop)), "symbolic link loop")
    one_line_input_error(run_cli("review", str(tmp_path)))


def test_symlink_loop_inside_a_folder_is_reported_for_that_file_and_the_run_goes_on(tmp_path: Path):
    records = tmp_path / "records" / "track_10min_16mb"
    for name in ("a", "b"):
        shutil.copytree(CLEAN, records / name)
    (records / "a" / "loop.log").symlink_to("loop.log")
    proc = run_cli("check", str(records), "--format", "json")
    message = one_line_input_error(proc, "a/loop.log: symbolic link loop")
    assert "escapes" not in message
    assert proc.stdout.count('"role": "entry"') == 2  # both folders were audited


def test_fifo_given_as_a_file(tmp_path: Path):
    fifo = tmp_path / "train_gpt.py"
    os.mkfifo(fifo)
    one_line_input_error(run_cli("check", str(fifo), timeout=30), "not a regular file")


def test_bad_file_in_one_folder_does_not_stop_the_others(tmp_path: Path):
    records = tmp_path / "records" / "track_10min_16mb"
    for name in ("a", "b"):
        shutil.copytree(CLEAN, records / name)
    (records / "a" / "train_gpt.py").write_bytes("x = 1\n".encode("utf-16"))
    proc = run_cli("check", str(records), "--format", "json")
    one_line_input_error(proc, "a/train_gpt.py", "UTF-16")
    assert "b/train_gpt.py" in proc.stdout


@pytest.mark.parametrize("depth", [201, 500, 1000, 10_000])
def test_nested_parentheses_are_too_deep_not_newer_syntax(tmp_path: Path, depth: int):
    script = tmp_path / "train_gpt.py"
    script.write_text("x = " + "(" * depth + "1" + ")" * depth + "\n")
    message = one_line_input_error(run_cli("check", str(script)), "too deeply nested")
    assert "newer" not in message


@pytest.mark.parametrize(
    "body",
    [
        "-" * 1000 + "1",
        "not " * 100_000 + "x",
        "x" + ".a" * 5000,
        "x" + "(0)" * 3000,
        "(-" * 150 + "1" + ")" * 150,
        'f"{' * 150 + "1" + '}"' * 150,
        "lambda: " * 5000 + "1",
    ],
)
def test_deep_nesting_of_any_kind_is_an_input_error(tmp_path: Path, body: str):
    script = tmp_path / "train_gpt.py"
    script.write_text("x = " + body + "\n")
    one_line_input_error(run_cli("check", str(script), timeout=60))


def test_deep_but_allowed_nesting_is_audited(tmp_path: Path):
    """Just under the depth limit every analysis still runs (no RecursionError anywhere)."""
    script = tmp_path / "train_gpt.py"
    levels = parse.MAX_AST_DEPTH // 2 - 5
    script.write_text("import os\nx = " + "-" * levels + "int(os.environ.get('A', '1'))\nif x:\n    print(x)\n")
    proc = run_cli("check", str(script))
    assert proc.returncode == 0, proc.stderr


def test_pep758_except_list_is_python_314_not_an_error(tmp_path: Path):
    script = tmp_path / "train_gpt.py"
    script.write_text("try:\n    pass\nexcept ValueError, TypeError:\n    pass\n")
    proc = run_cli("check", str(script))
    assert proc.returncode == 0, proc.stderr
    script.write_text("try:\n    pass\nexcept ValueError, TypeError as e:\n    pass\n")  # invalid in 3.14 too
    message = one_line_input_error(run_cli("check", str(script)), "syntax error at line 3")
    assert "newer" not in message


def _payload(code: bytes) -> str:
    return base64.b85encode(lzma.compress(code)).decode()


def test_many_payloads_share_one_decompression_budget(tmp_path: Path):
    blob = _payload(b"#" * (7 * 1024 * 1024) + b"\nx = 1\n")
    lines = ["import lzma, base64"] + [f'exec(lzma.decompress(base64.b85decode("{blob}")))' for _ in range(20)]
    script = tmp_path / "train_gpt.py"
    script.write_text("\n".join(lines) + "\n")
    one_line_input_error(run_cli("check", str(script)), "decompress to more than", "in total")


def test_line_budget(tmp_path: Path):
    script = tmp_path / "train_gpt.py"
    script.write_text("x = 1\n" * 200_000)
    one_line_input_error(run_cli("check", str(script)), "200,000 lines", "budget")


def test_folder_budget_is_an_input_error_and_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pgaudit.engine import AuditOptions, audit
    from pgaudit.source import guards

    records = tmp_path / "records" / "track_10min_16mb"
    shutil.copytree(CLEAN, records / "a")
    monkeypatch.setattr(guards, "_TICK_SECONDS", 0.001)  # check after every millisecond of CPU time
    monkeypatch.setattr(guards, "FOLDER_CPU_SECONDS", 0.0)
    report = audit(records / "a", AuditOptions())
    assert any("CPU time, the budget for one folder" in e.message for e in report.errors), report.errors
    monkeypatch.setattr(guards, "FOLDER_CPU_SECONDS", 1000.0)
    monkeypatch.setattr(guards, "FOLDER_MAX_RSS_BYTES", 1)
    report = audit(records / "a", AuditOptions())
    assert any("MB of memory, the budget for one folder" in e.message for e in report.errors), report.errors
    monkeypatch.setattr(guards, "FOLDER_MAX_RSS_BYTES", 10**12)
    report = audit(records / "a", AuditOptions())
    assert report.errors == [] and report.files


def test_budget_interrupts_a_long_computation():
    import time

    from pgaudit.source.guards import BudgetExceeded, folder_budget

    with pytest.raises(BudgetExceeded), folder_budget(cpu_seconds=0.3):
        end = time.process_time() + 30
        while time.process_time() < end:
            pass


def test_symlink_loop_as_a_folders_entry_is_reported_not_skipped(tmp_path: Path):
    records = tmp_path / "records" / "track_10min_16mb"
    for name in ("a", "b"):
        shutil.copytree(CLEAN, records / name)
    (records / "a" / "train_gpt.py").unlink()
    (records / "a" / "train_gpt.py").symlink_to("train_gpt.py")
    proc = run_cli("check", str(records), "--format", "json")
    message = one_line_input_error(proc, "a/train_gpt.py: symbolic link loop")
    assert message.count("symbolic link loop") == 1
    assert "b/train_gpt.py" in proc.stdout


def test_ci_output_cannot_forge_workflow_commands(tmp_path: Path):
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "base"], cwd=tmp_path, check=True)
    folder = tmp_path / "records" / "track_10min_16mb" / "::error::x"
    shutil.copytree(CLEAN, folder)
    (folder / f"{INJECTION}.log").write_bytes(b"\x00\x00binary")
    (folder / "train_seed9.log").write_text("::warning file=forged.py::forged\nval_bpb:1.0\n")
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "add"], cwd=tmp_path, check=True)
    for extra, env in (([], {"GITHUB_ACTIONS": "true"}), (["--format", "text"], {"GITHUB_ACTIONS": "true"}), ([], {})):
        proc = run_cli("ci", "--base", "HEAD~1", *extra, cwd=tmp_path, env=env)
        assert proc.returncode in (0, 1, 2) and "Traceback" not in proc.stderr, proc.stderr
        assert _forged_lines(proc.stdout) == [] and _forged_lines(proc.stderr) == [], (extra, env)

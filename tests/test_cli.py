"""`pgaudit check` as a user runs it: exit codes, bad input, output formats, the bundled examples."""

from __future__ import annotations

import base64
import json
import lzma
import os
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLEAN = "import os\n\ndef main():\n    print(os.environ.get('SEED', '1337'))\n\nif __name__ == '__main__':\n    main()\n"


def assert_one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert err.startswith("pgaudit: ") and err.count("\n") == 0, err
    for fragment in fragments:
        assert fragment in err, err


# --- bad input: each a one-line error and exit 2 -------------------------------------------------------


def test_empty_file(cli, make_folder):
    folder = make_folder({"train_gpt.py": ""})
    assert_one_line_error(cli("check", str(folder / "train_gpt.py")), "file is empty")


def test_binary_file(cli, make_folder):
    folder = make_folder({"train_gpt.py": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"})
    assert_one_line_error(cli("check", str(folder / "train_gpt.py")), "binary file")


def test_invalid_utf8(cli, make_folder):
    folder = make_folder({"train_gpt.py": b"x = 1\ny = '\xc3\x28'\n"})
    assert_one_line_error(cli("check", str(folder / "train_gpt.py")), "not valid utf-8")


def test_syntax_error_names_file_and_line(cli, make_folder):
    folder = make_folder({"train_gpt.py": "import os\n\ndef f(:\n    pass\n"})
    assert_one_line_error(cli("check", str(folder / "train_gpt.py")), "train_gpt.py: syntax error at line 3")


def test_decompression_bomb(cli, make_folder):
    blob = base64.b85encode(
        lzma.compress(b"\0" * (60 * 1024 * 1024), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    ).decode()
    code = f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{blob}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n'
    folder = make_folder({"train_gpt.py": code})
    assert_one_line_error(cli("check", str(folder)), "decompression bomb")


def test_payload_nested_too_deep(cli, make_folder):
    code = CLEAN
    for _ in range(6):
        blob = base64.b64encode(lzma.compress(code.encode())).decode()
        code = f'import lzma, base64\nexec(lzma.decompress(base64.b64decode("{blob}")))\n'
    folder = make_folder({"train_gpt.py": code})
    assert_one_line_error(cli("check", str(folder)), "nesting deeper than")


def test_missing_path(cli, tmp_path: Path):
    assert_one_line_error(cli("check", str(tmp_path / "no_such_folder")), "no such file or directory")


def test_directory_without_python(cli, make_folder):
    folder = make_folder({"README.md": "# nothing here\n", "train.log": "step:1/2\n"})
    assert_one_line_error(cli("check", str(folder)), "no Python file to audit")


def test_symlink_escaping_the_folder(cli, make_folder, tmp_path: Path):
    outside = tmp_path / "outside.py"
    outside.write_text(CLEAN)
    folder = make_folder({"README.md": "x\n"})
    os.symlink(outside, folder / "train_gpt.py")
    proc = cli("check", str(folder))
    assert proc.returncode == 2
    assert "escapes the audited folder" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_twenty_megabyte_file(cli, tmp_path: Path):
    big = tmp_path / "train_gpt.py"
    with big.open("wb") as handle:
        handle.truncate(20 * 1024 * 1024)
    assert_one_line_error(cli("check", str(big)), "over the 8,388,608-byte limit")


def test_not_a_python_file(cli, tmp_path: Path):
    log = tmp_path / "train.log"
    log.write_text("hello\n")
    assert_one_line_error(cli("check", str(log)), "not a Python file")


def test_bad_options(cli, make_folder):
    folder = make_folder({"train_gpt.py": CLEAN})
    assert_one_line_error(cli("check", str(folder), "--format", "xml"), "unknown --format 'xml'")
    assert_one_line_error(cli("check", str(folder), "--env", "NOEQUALS"), "--env expects KEY=VALUE")
    assert_one_line_error(cli("check", str(folder), "--fail-on", "fatal"), "unknown severity")
    assert_one_line_error(cli("explain", "PG999"), "unknown rule code")


# --- exit codes and formats ----------------------------------------------------------------------------


def test_clean_script_exits_zero(cli, make_folder):
    proc = cli("check", str(make_folder({"train_gpt.py": CLEAN})))
    assert proc.returncode == 0, proc.stderr
    assert "clean: 0 error(s)" in proc.stdout


def test_examples_end_to_end(cli):
    proc = cli("check", "examples", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    errors = {(f["path"], f["code"]) for f in report["findings"] if f["severity"] == "error"}
    assert ("examples/illegal_ngram_cache/train_gpt.py", "PG101") in errors
    assert ("examples/illegal_prequant_ttt_wrapped/train_gpt.py", "PG301") in errors
    assert not any(path.startswith(("examples/clean_", "examples/dead_")) for path, _ in errors)
    [dead] = [f for f in report["findings"] if f["path"].startswith("examples/dead_ngram_disabled/") and f["code"] == "PG101"]
    assert dead["severity"] == "info" and dead["reachable"] is False
    assert "ngram_cache:disabled" in dead["reachability"]["detail"]
    [payload] = [f for f in report["findings"] if f["code"] == "PG301"]
    assert payload["in_payload"] is True and payload["wrapper_line"] == 2
    assert payload["line"] == 76  # the line in the decoded code, not the two-line wrapper


def test_json_schema_fields(cli):
    proc = cli("check", "examples/illegal_ngram_cache", "--format", "json")
    report = json.loads(proc.stdout)
    assert report["schema_version"] == 1 and report["tool"]["name"] == "pgaudit"
    assert {"files", "findings", "errors", "summary"} <= set(report)
    finding = report["findings"][0]
    for key in ("code", "name", "severity", "confidence", "path", "line", "end_line", "in_payload", "reachable",
                "message", "catalogue_ids", "ruling_urls", "fix"):
        assert key in finding
    assert finding["code"] == "PG101" and finding["name"] == "target-in-hash-key"
    assert finding["ruling_urls"][0].startswith("https://github.com/openai/parameter-golf/")


def test_select_ignore_and_exit_zero(cli):
    target = "examples/illegal_ngram_cache"
    assert cli("check", target, "--ignore", "PG1").returncode == 0
    assert cli("check", target, "--select", "PG3").returncode == 0
    assert cli("check", target, "--select", "PG101").returncode == 1
    assert cli("check", target, "--exit-zero").returncode == 0


def test_fail_on_warning_and_info(cli):
    assert cli("check", "examples/dead_ngram_disabled").returncode == 0
    assert cli("check", "examples/dead_ngram_disabled", "--fail-on", "info").returncode == 1


def test_env_override_turns_dead_code_on(cli):
    proc = cli("check", "examples/dead_ngram_disabled", "--no-logs", "--env", "NGRAM_CACHE=1", "--format", "json")
    assert proc.returncode == 1
    assert [f["severity"] for f in json.loads(proc.stdout)["findings"] if f["code"] == "PG101"] == ["error"]


def test_output_file_written_atomically(cli, tmp_path: Path):
    out = tmp_path / "reports" / "report.json"
    proc = cli("check", "examples/clean_score_first_ttt", "--format", "json", "-o", str(out))
    assert proc.returncode == 0 and proc.stdout == ""
    assert json.loads(out.read_text())["findings"] == []
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_rules_and_explain(cli):
    proc = cli("rules", "--format", "json")
    codes = {r["code"]: r for r in json.loads(proc.stdout)}
    assert codes["PG101"]["catalogue_ids"] == ["R12", "R15", "R16"]
    assert codes["PG301"]["severity"] == "error"
    explained = cli("explain", "pg301")
    assert explained.returncode == 0 and "Legal look-alikes:" in explained.stdout and "Rulings:" in explained.stdout


def test_version_and_module_entry(cli):
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("pgaudit ")


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").iterdir() if p.is_dir()))
def test_every_example_audits_without_input_errors(cli, example: str):
    report = json.loads(cli("check", f"examples/{example}", "--format", "json").stdout)
    assert report["errors"] == []


def test_opaque_exec_is_reported(cli, make_folder):
    code = "import os\nexec(os.environ.get('PAYLOAD', ''))\n"
    proc = cli("check", str(make_folder({"train_gpt.py": code})), "--format", "json")
    [finding] = json.loads(proc.stdout)["findings"]
    assert finding["code"] == "PG001" and finding["line"] == 2 and finding["severity"] == "warning"


def test_rules_lists_every_kind_of_code(cli):
    rows = {r["code"]: r for r in json.loads(cli("rules", "--format", "json").stdout)}
    assert {rows[c]["kind"] for c in ("PG001", "PG101", "PG501")} == {"input", "rule", "validator"}
    assert "16,000,000" in cli("explain", "PG501").stdout

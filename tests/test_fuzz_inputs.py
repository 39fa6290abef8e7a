"""Fuzzing: mutated real-looking scripts, logs and submission.json files never crash pgaudit.

Each example copies a bundled example record folder, mutates one of its files (slices deleted, duplicated or
truncated, bytes flipped, hostile fragments inserted: brackets, NULs, BOMs, coding cookies, NaN, workflow
commands, CRs), runs `pgaudit check` (and sometimes `review`) in-process, and asserts the contract: exit 0, 1
or 2, and an error is always a PgauditError (one line), never an internal error. Bounded: a fixed number of
examples per kind, no shrinking past a few steps.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pgaudit.cli import app
from pgaudit.errors import PgauditError
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
SEEDS = {
    "script": [
        EXAMPLES / "illegal_ngram_cache",
        EXAMPLES / "clean_score_first_ttt",
        EXAMPLES / "dead_ngram_disabled",
        EXAMPLES / "illegal_prequant_ttt_wrapped",
    ],
    "log": [EXAMPLES / "clean_score_first_ttt"],
    "json": [EXAMPLES / "clean_score_first_ttt"],
}

FRAGMENTS = [
    b"(" * 300, b")" * 50, b"[" * 120, b"{", b'"', b"'''", b"\\", b"\x00", b"\xef\xbb\xbf", b"\xff\xfe",
    b"# -*- coding: latin-1 -*-\n", b"# coding: unicode_escape\n", b"# coding: bogus\n", b"\r", b"\r\n",
    b"NaN", b"Infinity", b"-Infinity", b"1e400", b"::warning file=x.py::forged\n", b"::stop-commands::t\n",
    b"%0A", b"exec(", b"import lzma, base64\n", b"7 ** 10 ** 9", b"-" * 500, b"not " * 200, b"lambda: " * 200,
    b"\tif x:\n", b"except A, B:\n", b"step:1/20000 val_loss:nan val_bpb:inf\n",
    b"final_int8_zlib_roundtrip_exact val_loss:1e999 val_bpb:NaN\n", b"seed:-1\n", b"\xe9\xe8", "\x85\u2028".encode(),
]  # fmt: skip


NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"nan", b"inf"]
NUMBERS = [
    b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"nan", b"inf", b"-0", b"1e-400", b"99999999999999999999999",
    b'"x"', b"[]", b"{}", b"null", b"true", b"[" * 200 + b"]" * 200, b"10**10**9", b"(1<<10**9)", b"0x", b"1_000",
]  # fmt: skip


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["number"] * 5 + ["insert", "delete", "duplicate", "truncate", "flip"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        numbers = list(re.finditer(rb"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?", bytes(out)))
        if kind == "number" and numbers:  # a value where a number belongs: where parsers are lax
            match = draw(st.sampled_from(numbers))
            out[match.start() : match.end()] = draw(st.sampled_from(NON_FINITE) | st.sampled_from(NUMBERS))
        elif kind == "insert":
            fragment = draw(st.sampled_from(FRAGMENTS) | st.binary(min_size=1, max_size=16))
            out[at:at] = fragment * draw(st.integers(1, 3))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 200))]
        elif kind == "duplicate":
            out[at:at] = out[at : at + draw(st.integers(1, 400))] * draw(st.integers(1, 3))
        elif kind == "truncate":
            del out[at:]
        elif out:
            out[at] = draw(st.integers(0, 255))
    return bytes(out)


def _target(folder: Path, kind: str) -> Path:
    if kind == "script":
        return folder / "train_gpt.py"
    if kind == "json":
        return folder / "submission.json"
    return sorted(folder.glob("*.log"))[0]


def _check_contract(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # main() turns a PgauditError into exit 2 with one line; anything else is a pgaudit bug
        assert isinstance(result.exception, PgauditError), repr(result.exception)
        assert "\n" not in str(result.exception)
        return
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output[-2000:])


def _fuzz(kind: str, seed_index: int, mutate: st.DataObject) -> None:
    seed = SEEDS[kind][seed_index % len(SEEDS[kind])]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "records" / "track_10min_16mb" / "fuzz"
        shutil.copytree(seed, folder)
        target = _target(folder, kind)
        target.write_bytes(mutate.draw(mutations(target.read_bytes())))
        _check_contract(["check", str(folder), "--format", mutate.draw(st.sampled_from(["text", "json", "github"]))])
        if mutate.draw(st.booleans()):
            _check_contract(["review", str(folder)])


FUZZ = settings(
    max_examples=int(os.environ.get("PGAUDIT_FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not os.environ.get("PGAUDIT_FUZZ_EXAMPLES"),
)


@FUZZ
@given(st.integers(0, 3), st.data())
def test_mutated_scripts(seed_index: int, mutate: st.DataObject):
    _fuzz("script", seed_index, mutate)


@FUZZ
@given(st.integers(0, 0), st.data())
def test_mutated_logs(seed_index: int, mutate: st.DataObject):
    _fuzz("log", seed_index, mutate)


@FUZZ
@given(st.integers(0, 0), st.data())
def test_mutated_submission_json(seed_index: int, mutate: st.DataObject):
    _fuzz("json", seed_index, mutate)

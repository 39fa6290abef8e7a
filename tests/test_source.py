"""Source loading: byte guards, static unwrapping of self-extracting scripts, parsing newer syntax."""

from __future__ import annotations

import ast
import base64
import bz2
import gzip
import lzma
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgaudit.errors import InputError
from pgaudit.source.guards import decode_source, read_source
from pgaudit.source.parse import parse_python
from pgaudit.source.program import load_program
from pgaudit.source.unwrap import MAX_NESTING, find_payloads

PAYLOAD = "import os\n\n\ndef main():\n    x = 1\n    return x\n\n\nif __name__ == '__main__':\n    main()\n"


def lzma_raw_b85(code: str | bytes) -> str:
    data = code.encode() if isinstance(code, str) else code
    blob = lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    return base64.b85encode(blob).decode()


def wrapper(code: str) -> str:
    return (
        "import lzma as L,base64 as B\n"
        f'exec(L.decompress(B.b85decode("{lzma_raw_b85(code)}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n'
    )


# --- guards ----------------------------------------------------------------------------------------


def test_bom_and_crlf_are_normalized():
    src = decode_source(b"\xef\xbb\xbfx = 1\r\ny = 2\r\n", "a.py")
    assert src.text == "x = 1\ny = 2\n"
    assert src.line_count == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "file is empty"),
        (b"  \n\n", "file is empty"),
        (b"\x7fELF\x02\x01\x00\x00", "binary file"),
        (b"x = '\xff\xfe'\n", "not valid utf-8 text (byte 0xff at offset 5)"),
    ],
)
def test_bad_bytes_are_refused_with_one_line(data: bytes, message: str):
    with pytest.raises(InputError) as info:
        decode_source(data, "train_gpt.py")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_declared_encoding_is_honoured():
    assert decode_source("# -*- coding: latin-1 -*-\nx = 'é'\n".encode("latin-1"), "a.py").text.endswith("'é'\n")


def test_huge_file_refused_before_reading(tmp_path: Path):
    big = tmp_path / "train_gpt.py"
    with big.open("wb") as handle:
        handle.truncate(20 * 1024 * 1024)  # 20 MB, never read into memory
    with pytest.raises(InputError, match="over the 8,388,608-byte limit"):
        read_source(big, "train_gpt.py")


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        read_source(tmp_path / "nope.py", "nope.py")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_decode_or_fail_cleanly(data: bytes):
    try:
        src = decode_source(data, "fuzz.py")
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert "\r" not in src.text


# --- parsing -----------------------------------------------------------------------------------------

PY312 = '''import os
def log(msg):
    print(msg)
cats = {"a": {"x", "y"}}
for cat in sorted(cats):
    log(f"  {cat}: {", ".join(sorted(cats[cat]))}")
def later():
    return os.environ.get("TTT_ENABLED", "0")
'''


def test_newer_fstrings_parse_with_lines_kept():
    tree = parse_python(PY312, "train_gpt.py")
    defs = {n.name: n.lineno for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert defs == {"log": 2, "later": 7}
    # the expressions inside the f-string are kept (they can call functions)
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"log", "sorted"} <= calls


def test_multiline_newer_fstring_keeps_following_lines():
    code = 'x = 1\ny = f"""a {",".join([\n"b"])}\nc"""\ndef f():\n    pass\n'
    tree = parse_python(code, "m.py")
    assert [n.lineno for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)] == [5]


def test_pep695_type_parameters_and_aliases_parse():
    code = "type Pair[T] = tuple[T, T]\ndef first[T](p: Pair[T]) -> T:\n    return p[0]\nclass Box[T]:\n    pass\n"
    tree = parse_python(code, "m.py")
    assert [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)] == ["first", "Box"]


def test_syntax_error_names_file_and_line():
    with pytest.raises(InputError) as info:
        parse_python("x = 1\ndef broken(:\n    pass\n", "train_gpt.py")
    assert str(info.value).startswith("train_gpt.py: syntax error at line 2")


# --- unwrapping ----------------------------------------------------------------------------------------


def test_lzma_raw_b85_wrapper_with_aliases():
    tree = ast.parse(wrapper(PAYLOAD))
    [payload] = find_payloads(tree, "train_gpt.py")
    assert payload.text == PAYLOAD
    assert payload.wrapper_line == 2
    assert payload.codec == "b85decode+lzma(raw)"


@pytest.mark.parametrize(
    ("imports", "expr"),
    [
        ("import zlib, base64", f'zlib.decompress(base64.b64decode("{base64.b64encode(zlib.compress(PAYLOAD.encode())).decode()}"))'),
        ("import gzip, base64", f"gzip.decompress(base64.a85decode({base64.a85encode(gzip.compress(PAYLOAD.encode())).decode()!r}))"),
        ("import bz2, base64", f'bz2.decompress(base64.b16decode("{base64.b16encode(bz2.compress(PAYLOAD.encode())).decode()}"))'),
        ("import lzma, base64", f'lzma.decompress(base64.b32decode("{base64.b32encode(lzma.compress(PAYLOAD.encode())).decode()}")).decode()'),
        ("from lzma import decompress as D\nfrom base64 import b85decode as E", f'D(E("{base64.b85encode(lzma.compress(PAYLOAD.encode())).decode()}"))'),
    ],
)
def test_codecs_and_import_forms(imports: str, expr: str):
    tree = ast.parse(f"{imports}\nexec({expr})\n")
    [payload] = find_payloads(tree, "t.py")
    assert payload.text == PAYLOAD


def test_eval_compile_form_and_module_constant():
    blob = base64.b64encode(zlib.compress(PAYLOAD.encode())).decode()
    tree = ast.parse(f'import zlib, base64\nBLOB = "{blob}"\neval(compile(zlib.decompress(base64.b64decode(BLOB)), "<x>", "exec"))\n')
    [payload] = find_payloads(tree, "t.py")
    assert payload.text == PAYLOAD and payload.wrapper_line == 3


def test_readable_exec_and_unknown_calls_are_not_payloads():
    tree = ast.parse('import os\nexec("x = 1")\nexec(open("other.py").read())\nexec(os.environ["CODE"])\n')
    assert find_payloads(tree, "t.py") == []


def test_decompression_bomb_refused():
    bomb = lzma_raw_b85(b"\0" * (60 * 1024 * 1024))
    tree = ast.parse(
        f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{bomb}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n'
    )
    with pytest.raises(InputError, match="decompresses to more than 8 MB"):
        find_payloads(tree, "train_gpt.py")


def test_corrupt_payload_refused():
    tree = ast.parse('import zlib, base64\nexec(zlib.decompress(base64.b64decode("aGVsbG8=")))\n')
    with pytest.raises(InputError, match="does not decompress"):
        find_payloads(tree, "t.py")


def test_nested_payloads_unwrap_and_map_to_payload_lines(tmp_path: Path):
    (tmp_path / "train_gpt.py").write_text(wrapper(wrapper(PAYLOAD)))
    program = load_program(tmp_path / "train_gpt.py", tmp_path)
    inner = [u for u in program.units if u.in_payload]
    assert len(inner) == 2 and inner[-1].text == PAYLOAD
    assert all(u.wrapper_line == 2 for u in inner)
    assert program.files[0].payload["lines"] == wrapper(PAYLOAD).count("\n")


def test_nesting_deeper_than_the_limit_refused(tmp_path: Path):
    code = PAYLOAD
    for _ in range(MAX_NESTING + 1):
        code = wrapper(code)
    (tmp_path / "train_gpt.py").write_text(code)
    with pytest.raises(InputError, match="nesting deeper than"):
        load_program(tmp_path / "train_gpt.py", tmp_path)


def test_payload_with_newer_syntax_is_parsed(tmp_path: Path):
    (tmp_path / "train_gpt.py").write_text(wrapper(PY312))
    program = load_program(tmp_path / "train_gpt.py", tmp_path)
    [inner] = [u for u in program.units if u.in_payload]
    assert inner.location(6).display() == "train_gpt.py:6 (inside the compressed payload exec'd at line 2)"

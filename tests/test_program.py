"""Whole-program resolution: the code that runs is audited wherever it lives.

Every wrapper below is written here, in the shapes public submissions use (multi-line and concatenated
literals, payloads assembled over several statements, a variable holding the decoded source, `compile` +
`exec`, `codecs`/`bytes.fromhex`, brotli/zstd, a compressed file beside the script, a module bundle), and
every loader spelling (`exec(open(...).read())`, `importlib`, `__import__`, `runpy`, paths from `__file__`).
"""

from __future__ import annotations

import base64
import bz2
import gzip
import json
import lzma
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import zstandard

from pgaudit.engine import AuditOptions, audit
from pgaudit.rules import REGISTRY
from pgaudit.source.program import load_program

# An n-gram cache keyed on the token being scored (PG101, an error): the code every wrapper below hides.
ILLEGAL = REGISTRY["PG101"].invalid[0].code


def lzma_raw(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])


def lines_of(text: str, width: int = 76) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)]


# --- wrapper shapes: each returns a script whose payload is `code` ---------------------------------------


def classic(code: str) -> str:
    blob = base64.b85encode(lzma_raw(code.encode())).decode()
    return (
        "import lzma as L,base64 as B\n"
        f'exec(L.decompress(B.b85decode("{blob}"),format=L.FORMAT_RAW,'
        "filters=[{'id':L.FILTER_LZMA2,'preset':9|L.PRESET_EXTREME}]))\n"
    )


def multiline_bytes(code: str) -> str:
    blob = base64.b85encode(lzma.compress(code.encode())).decode()
    body = "\n".join(lines_of(blob))
    return f'import lzma,base64\n_b=b"""\n{body}\n"""\nexec(lzma.decompress(base64.b85decode(_b.replace(b"\\n", b""))).decode())\n'


def implicit_concat(code: str) -> str:
    blob = base64.b85encode(lzma.compress(code.encode())).decode()
    chunks = "\n".join(f"    {c!r}" for c in lines_of(blob))
    return f'import base64 as B, lzma as L\n_DATA = (\n{chunks}\n)\nexec(L.decompress(B.b85decode("".join(_DATA))))\n'


def join_list(code: str) -> str:
    blob = base64.b64encode(zlib.compress(code.encode())).decode()
    parts = ",\n".join(f"    {c!r}" for c in lines_of(blob))
    return f"import zlib, base64\nparts = [\n{parts}\n]\nexec(zlib.decompress(base64.b64decode(''.join(parts))))\n"


def assembled(code: str) -> str:
    chunks = lines_of(base64.a85encode(gzip.compress(code.encode())).decode())
    body = f"p = {chunks[0]!r}\n" + "".join(f"p += {c!r}\n" for c in chunks[1:])
    return f"import gzip, base64\n{body}src = gzip.decompress(base64.a85decode(p))\nexec(src)\n"


def compile_var(code: str) -> str:
    blob = base64.b85encode(lzma_raw(code.encode())).decode()
    return (
        "import lzma as L,base64 as B,linecache as C\n"
        f"S=L.decompress(B.b85decode('{blob}'),format=L.FORMAT_RAW,filters=[{{'id':L.FILTER_LZMA2}}]).decode()\n"
        "F=__file__+'.src.py'\n"
        "C.cache[F]=(len(S),None,S.splitlines(True),F)\n"
        "exec(compile(S,F,'exec'))\n"
    )


def hex_codecs(code: str) -> str:
    blob = zlib.compress(code.encode()).hex()
    return f"import codecs, zlib\nexec(zlib.decompress(codecs.decode({blob!r}, 'hex')))\n"


def fromhex_bz2(code: str) -> str:
    blob = bz2.compress(code.encode()).hex()
    return f"import bz2\nexec(bz2.decompress(bytes.fromhex('{blob}')).decode('utf-8'))\n"


def b32_zstd(code: str) -> str:
    blob = base64.b32encode(zstandard.ZstdCompressor().compress(code.encode())).decode()
    return f"import base64, zstandard\nexec(zstandard.ZstdDecompressor().decompress(base64.b32decode('{blob}')))\n"


def codecs_base64_bz2(code: str) -> str:
    blob = base64.b64encode(bz2.compress(code.encode())).decode()
    return f"import codecs\nexec(codecs.decode(codecs.decode({blob!r}.encode(), 'base64'), 'bz2'))\n"


def from_import_eval(code: str) -> str:
    blob = base64.b85encode(zlib.compress(code.encode())).decode()
    return (
        "from zlib import decompress as D\nfrom base64 import b85decode\n"
        f"eval(compile(D(b85decode('{blob}')), '<payload>', 'exec'))\n"
    )


SHAPES = {
    f.__name__: f
    for f in (
        classic, multiline_bytes, implicit_concat, join_list, assembled, compile_var, hex_codecs, fromhex_bz2,
        b32_zstd, codecs_base64_bz2, from_import_eval,
    )
}  # fmt: skip


def codes(folder: Path) -> set[tuple[str, str]]:
    report = audit(folder, AuditOptions())
    return {(f.code, f.severity.label) for f in report.findings if not f.suppressed}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_wrapper_shape_decodes(shape: str, make_folder):
    folder = make_folder({"train_gpt.py": SHAPES[shape](ILLEGAL)})
    program = load_program(folder / "train_gpt.py", folder)
    payloads = [u for u in program.units if u.in_payload]
    assert [u.text for u in payloads] == [ILLEGAL], shape
    assert not program.opaque
    assert ("PG101", "error") in codes(folder)


def test_nested_wrappers_with_mixed_codecs_decode_to_the_innermost(make_folder):
    script = hex_codecs(assembled(classic(ILLEGAL)))
    folder = make_folder({"train_gpt.py": script})
    program = load_program(folder / "train_gpt.py", folder)
    assert [u.text for u in program.units if u.in_payload][-1] == ILLEGAL
    assert ("PG101", "error") in codes(folder)


def test_brotli_wrapper_decodes_or_is_reported(make_folder):
    brotli = pytest.importorskip("brotli")
    blob = base64.b85encode(brotli.compress(ILLEGAL.encode())).decode()
    folder = make_folder({"train_gpt.py": f"import brotli as B,base64 as b\nexec(B.decompress(b.b85decode('{blob}')))\n"})
    assert ("PG101", "error") in codes(folder)


def test_compressed_file_beside_the_script_is_read_through_file(make_folder):
    folder = make_folder(
        {
            "train_gpt.py": (
                "import lzma, pathlib\n"
                "_src = lzma.decompress(pathlib.Path(__file__).with_suffix('.py.xz').read_bytes())\n"
                "exec(compile(_src, __file__, 'exec'))\n"
            ),
            "train_gpt.py.xz": lzma.compress(ILLEGAL.encode()),
        }
    )
    assert ("PG101", "error") in codes(folder)


def test_json_bundle_in_a_compressed_sibling(make_folder):
    bundle = json.dumps({"runner.py": ILLEGAL, "notes.txt": "hello"}).encode()
    folder = make_folder(
        {
            "train_gpt.py": (
                "import lzma, json, os\n"
                "with open(os.path.join(os.path.dirname(__file__), 'code.lzma'), 'rb') as f:\n"
                "    bundle = json.loads(lzma.decompress(f.read()))\n"
                "exec(compile(bundle['runner.py'], 'runner.py', 'exec'))\n"
            ),
            "code.lzma": lzma.compress(bundle),
        }
    )
    assert ("PG101", "error") in codes(folder)


def test_bundled_modules_installed_by_a_helper_are_audited(make_folder):
    script = (
        "import sys, types\n"
        "def _install(name, source):\n"
        "    module = types.ModuleType(name)\n"
        "    sys.modules[name] = module\n"
        "    exec(compile(source, name + '.py', 'exec'), module.__dict__)\n"
        "_install('helpers.util', 'X = 1\\n')\n"
        f"_install('helpers.scoring', {ILLEGAL!r})\n"
        "import helpers.scoring\n"
    )
    folder = make_folder({"train_gpt.py": script})
    program = load_program(folder / "train_gpt.py", folder)
    assert ILLEGAL in [u.text for u in program.units if u.in_payload]
    assert not program.opaque
    assert ("PG101", "error") in codes(folder)


def test_sources_extracted_to_a_temporary_folder_are_audited(make_folder):
    bundle = "\n# ==== FILE ====\n".join(["print('runner')\n", ILLEGAL, "int main() { return 0; }\n"])
    blob = base64.b85encode(lzma.compress(bundle.encode())).decode()
    script = (
        "import lzma, base64, tempfile, os\n"
        f"_b = lzma.decompress(base64.b85decode({blob!r}))\n"
        "_p = _b.decode().split('\\n# ==== FILE ====\\n')\n"
        "_d = tempfile.mkdtemp()\n"
        "for _n, _c in zip(['_runner.py', 'scoring.py', 'kernel.cpp'], _p):\n"
        "    open(os.path.join(_d, _n), 'w').write(_c)\n"
        "exec(open(os.path.join(_d, '_runner.py')).read())\n"
    )
    folder = make_folder({"train_gpt.py": script})
    found = codes(folder)
    assert ("PG101", "error") in found
    assert ("PG001", "warning") in found  # which extracted file runs is still not known statically


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("import lzma,base64\nexec(lzma.decompress(base64.b85decode('not~a~payload')))\n", "does not b85decode"),
        (
            f"import zlib,base64\nexec(zlib.decompress(base64.b64decode({base64.b64encode(b'garbage').decode()!r})))\n",
            "does not decompress",
        ),
        (
            "import lzma,base64,os\nexec(lzma.decompress(base64.b85decode(os.environ['BLOB'])))\n",
            "not a literal pgaudit can rebuild",
        ),
        (f"import zlib\nexec(zlib.decompress(bytes.fromhex({zlib.compress(b'def broken(:').hex()!r})))\n", "not Python"),
    ],
)
def test_a_wrapper_that_does_not_decode_is_a_finding_naming_why(script: str, reason: str, make_folder):
    folder = make_folder({"train_gpt.py": "import numpy as np\n" + script})
    report = audit(folder, AuditOptions())
    assert not report.errors, report.errors  # the rest of the script is still audited
    pg001 = [f for f in report.findings if f.code == "PG001"]
    assert pg001 and pg001[0].severity.label == "warning"
    assert reason in pg001[0].message and "not audited" in pg001[0].message


# --- loaders and paths -------------------------------------------------------------------------------

LOADERS = {
    "exec-dirname-join": "import os\nexec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'scoring.py')).read())\n",
    "exec-here-variable": "import os\nHERE = os.path.dirname(__file__)\nexec(open(os.path.join(HERE, 'scoring.py')).read())\n",
    "exec-path-parent": "from pathlib import Path\nexec((Path(__file__).parent / 'scoring.py').read_text())\n",
    "exec-with-name": "from pathlib import Path\nexec(open(Path(__file__).with_name('scoring.py')).read())\n",
    "exec-with-open": "with open(__file__.replace('train_gpt.py', 'scoring.py')) as f:\n    code = f.read()\nexec(code)\n",
    "import-module": "import importlib\nmod = importlib.import_module('scoring')\n",
    "dunder-import": "mod = __import__('scoring')\n",
    "runpy-path": "import runpy, os\nrunpy.run_path(os.path.join(os.path.dirname(__file__), 'scoring.py'), run_name='__main__')\n",
    "sys-path-subdir": (
        "import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))\n"
        "from scoring import eval_ngram\n"
    ),
    "runpy-module": "import runpy\nrunpy.run_module('scoring', run_name='__main__')\n",
    "spec-from-file": (
        "import importlib.util\nfrom pathlib import Path\n"
        "spec = importlib.util.spec_from_file_location('scoring', Path(__file__).resolve().parent / 'scoring.py')\n"
        "mod = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(mod)\n"
    ),
}


@pytest.mark.parametrize("loader", LOADERS)
def test_every_loader_spelling_reaches_the_sibling(loader: str, make_folder):
    where = "lib/scoring.py" if "sys-path" in loader else "scoring.py"
    folder = make_folder({"train_gpt.py": LOADERS[loader], where: ILLEGAL})
    program = load_program(folder / "train_gpt.py", folder)
    assert where in [u.path for u in program.units], loader
    assert not program.opaque
    assert ("PG405", "info") in codes(folder)


def test_exec_file_inside_a_wrapper_reaches_the_sibling(make_folder):
    loader = "import os\nexec(open(os.path.join(os.path.dirname(__file__), 'scoring.py')).read())\n"
    folder = make_folder({"train_gpt.py": classic(loader), "scoring.py": ILLEGAL})
    program = load_program(folder / "train_gpt.py", folder)
    assert "scoring.py" in [u.path for u in program.units]


def test_an_unresolvable_loader_path_is_a_warning_naming_it(make_folder):
    script = "import importlib.util, os\nspec = importlib.util.spec_from_file_location('m', os.environ['HELPER'])\n"
    folder = make_folder({"train_gpt.py": script})
    pg001 = [f for f in audit(folder, AuditOptions()).findings if f.code == "PG001"]
    assert pg001 and "os.environ['HELPER']" in pg001[0].message


def test_exec_of_a_file_outside_the_folder_warns(make_folder):
    folder = make_folder({"train_gpt.py": "import os\nexec(open(os.path.join(os.path.dirname(__file__), '..', 'x.py')).read())\n"})
    found = [f for f in audit(folder, AuditOptions()).findings if f.code == "PG405"]
    assert found and found[0].severity.label == "warning" and "outside the record folder" in found[0].message


@pytest.mark.parametrize("absolute", [False, True])
def test_helper_exec_d_through_file_is_found_from_relative_and_absolute_paths(absolute: bool, make_folder):
    loader = "import os\nexec(open(os.path.join(os.path.dirname(__file__), 'scoring.py')).read())\n"
    folder = make_folder({"train_gpt.py": loader, "scoring.py": ILLEGAL})
    target = str(folder) if absolute else os.path.relpath(folder, folder.parent.parent)
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pgaudit", "check", target, "--format", "json"],
        cwd=folder.parent.parent, capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert any(f["code"] == "PG101" and f["path"].endswith("scoring.py") for f in findings)


def test_program_resolves_file_from_the_absolute_entry_path(make_folder, monkeypatch):
    loader = "import os\nexec(open(os.path.join(os.path.dirname(__file__), 'lib', 'scoring.py')).read())\n"
    folder = make_folder({"train_gpt.py": loader, "lib/scoring.py": ILLEGAL})
    monkeypatch.chdir(folder.parent)
    program = load_program(Path("sub/train_gpt.py"), Path("sub"))
    assert "lib/scoring.py" in [u.path for u in program.units]


def test_native_code_is_a_warning_naming_what_was_not_audited(make_folder):
    script = (
        "from torch.utils.cpp_extension import load, load_inline\n"
        "ext = load(name='k', sources=['kernel.cu'])\n"
        "inline = load_inline(name='j', cpp_sources=['int f() { return 1; }'])\n"
    )
    folder = make_folder({"train_gpt.py": script, "kernel.cu": "__global__ void k() {}\n"})
    findings = [f for f in audit(folder, AuditOptions()).findings if f.severity.label == "warning"]
    assert any(f.code == "PG405" and "`kernel.cu`" in f.message and "native code" in f.message for f in findings)
    assert any(f.code == "PG001" and "load_inline" in f.message and "native code" in f.message for f in findings)


# --- adversarial: every rule's INVALID example hidden behind a loader and a wrapper ----------------------


def _hidden(code: str) -> dict[str, str]:
    """The example's code in a sibling that is an assembled hex+zlib wrapper, run as __main__ via runpy from
    a path built from `__file__`."""
    blob = zlib.compress(code.encode()).hex()
    chunks = lines_of(blob, 120)
    wrapper = "import zlib as _z\n_h = ''\n" + "".join(f"_h += {c!r}\n" for c in chunks)
    wrapper += "exec(_z.decompress(bytes.fromhex(_h)).decode())\n"
    entry = (
        "import runpy\nfrom pathlib import Path\n"
        "runpy.run_path(str(Path(__file__).with_name('stage2.py')), run_name='__main__')\n"
    )
    return {"train_gpt.py": entry, "stage2.py": wrapper}


ADVERSARIAL = [
    pytest.param(cls, ex, id=f"{code}-invalid-{i}")
    for code, cls in REGISTRY.items()
    if code != "PG405"  # moving code into a sibling is what PG405 reports: its verdict changes by design
    for i, ex in enumerate(cls.invalid)
]


@pytest.mark.parametrize(("rule", "example"), ADVERSARIAL)
def test_invalid_examples_hidden_behind_runpy_and_a_wrapper_keep_their_verdict(rule, example, make_folder):
    from pgaudit.analysis.evidence import LogLine
    from pgaudit.analysis.facts import Facts

    def verdict(files: dict[str, str], name: str) -> set:
        folder = make_folder({**example.files, **files}, name)
        program = load_program(folder / "train_gpt.py", folder)
        lines = [LogLine("train_seed1337.log", n, t) for n, t in enumerate(example.log.splitlines(), 1)]
        facts = Facts(program, dict(example.env), dict(example.logged), lines)
        return {(f.code, f.severity.label, f.reachable) for f in rule().check(facts)}

    before = verdict({"train_gpt.py": example.code}, "plain")
    assert before  # the example is reported as written
    assert verdict(_hidden(example.code), "hidden") == before


def test_a_large_file_beside_the_script_is_never_decompressed(make_folder):
    """A model artifact is not a code payload: reading it stays off, so it can neither slow nor stop the audit."""
    script = "import lzma\nblob = lzma.decompress(open('final_model.ptz', 'rb').read())\nexec(blob)\n"
    folder = make_folder({"train_gpt.py": script, "final_model.ptz": lzma.compress(b"\0" * 64) + os.urandom(2 << 20)})
    report = audit(folder, AuditOptions())
    assert not report.errors
    assert [f.code for f in report.findings if f.code == "PG001"] == ["PG001"]

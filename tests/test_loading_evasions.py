"""Whole-program loading of the shapes adversarial submissions use to hide the code that runs (issue 15,
bullet 7): each test loads a small folder and checks which code units pgaudit audits, under which name,
and what it reports as not audited."""

from __future__ import annotations

import base64
import json
import lzma
import zipfile
import zlib
from pathlib import Path

from pgaudit.source.program import Program, load_program

BODY = "def score(tokens):\n    return sum(tokens)\n\n\nprint(score([1, 2, 3]))\n"


def _load(folder: Path) -> Program:
    return load_program(folder / "train_gpt.py", folder)


def _write(folder: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def _payload_texts(program: Program) -> list[str]:
    return [u.text for u in program.units if u.in_payload]


def _z64(text: str) -> str:
    return base64.b64encode(zlib.compress(text.encode())).decode()


def test_payload_assembled_with_append_and_extend(tmp_path: Path):
    blob = _z64(BODY)
    half = len(blob) // 2
    script = (
        "import base64, zlib\nparts = []\n"
        f'parts.append("{blob[:10]}")\nparts.extend(["{blob[10:half]}", "{blob[half:]}"])\n'
        'exec(zlib.decompress(base64.b64decode("".join(parts))))\n'
    )
    program = _load(_write(tmp_path, {"train_gpt.py": script}))
    assert _payload_texts(program) == [BODY]
    assert not program.opaque


def test_a_list_changed_by_an_unknown_method_is_forgotten(tmp_path: Path):
    blob = _z64(BODY)
    script = f'import base64, zlib\nparts = ["{blob}"]\nparts.reverse()\nexec(zlib.decompress(base64.b64decode("".join(parts))))\n'
    program = _load(_write(tmp_path, {"train_gpt.py": script}))
    assert _payload_texts(program) == []
    assert program.opaque  # not silently dropped: a PG001 warning says it was not audited


def test_codecs_reached_through_getattr_dunder_import_and_import_module(tmp_path: Path):
    blob = _z64(BODY)
    script = (
        "import importlib\n"
        '_d = getattr(__import__("base64"), "b64" + "decode")\n'
        '_z = importlib.import_module("zlib")\n'
        f'exec(_z.decompress(_d("{blob}")))\n'
    )
    assert _payload_texts(_load(_write(tmp_path, {"train_gpt.py": script}))) == [BODY]


def test_exec_spelled_through_an_alias_or_builtins(tmp_path: Path):
    blob = _z64(BODY)
    for i, call in enumerate(['_run = exec\n_run', 'getattr(__import__("builtins"), "ex" + "ec")', "import builtins\nbuiltins.exec"]):
        script = f'import base64, zlib\n{call}(zlib.decompress(base64.b64decode("{blob}")))\n'
        assert _payload_texts(_load(_write(tmp_path / str(i), {"train_gpt.py": script}))) == [BODY], call


def test_getattr_of_something_else_is_not_an_exec(tmp_path: Path):
    script = 'import json\nrun = getattr(json, "dumps")\nprint(run({"a": 1}))\n'
    program = _load(_write(tmp_path, {"train_gpt.py": script}))
    assert not program.opaque and len(program.units) == 1


def test_reversed_literal_and_payload_in_a_trailing_comment(tmp_path: Path):
    rev = _z64(BODY)[::-1]
    script = f'import base64, zlib\n_S = "{rev}"\nexec(zlib.decompress(base64.b64decode(_S[::-1])))\n'
    assert _payload_texts(_load(_write(tmp_path / "a", {"train_gpt.py": script}))) == [BODY]
    blob = base64.b85encode(lzma.compress(BODY.encode())).decode()
    script = f'import base64, lzma\nexec(lzma.decompress(base64.b85decode(open(__file__).read().rsplit("#~", 1)[1].strip())))\n#~{blob}\n'
    assert _payload_texts(_load(_write(tmp_path / "b", {"train_gpt.py": script}))) == [BODY]


def test_decompressor_objects_and_json_payload_files(tmp_path: Path):
    blob = _z64(BODY)
    script = f'import base64, zlib\nexec(zlib.decompressobj().decompress(base64.b64decode("{blob}")))\n'
    assert _payload_texts(_load(_write(tmp_path / "a", {"train_gpt.py": script}))) == [BODY]
    script = (
        "import base64, json, zlib\nfrom pathlib import Path\n"
        'with open(Path(__file__).with_name("assets.json")) as f:\n    assets = json.load(f)\n'
        'exec(zlib.decompress(base64.b64decode(assets["blob"])))\n'
    )
    folder = _write(tmp_path / "b", {"train_gpt.py": script, "assets.json": json.dumps({"blob": blob})})
    assert _payload_texts(_load(folder)) == [BODY]


def _loaded(program: Program) -> dict[str, str | None]:
    return {u.path: u.run_name for u in program.units if u.role == "module"}


def test_path_from_a_one_return_helper(tmp_path: Path):
    script = (
        "import os, runpy\n\n\ndef _here(name):\n    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)\n\n\n"
        'ns = runpy.run_path(_here("aux_ops.py"))\n'
    )
    program = _load(_write(tmp_path, {"train_gpt.py": script, "aux_ops.py": BODY}))
    assert "aux_ops.py" in _loaded(program)
    assert not program.opaque


def test_module_name_from_an_env_default(tmp_path: Path):
    script = 'import importlib, os\nmod = importlib.import_module(os.environ.get("SCORER", "aux_ops"))\n'
    program = _load(_write(tmp_path, {"train_gpt.py": script, "aux_ops.py": BODY}))
    assert _loaded(program) == {"aux_ops.py": "aux_ops"}


def test_scripts_launched_as_processes_run_as_main(tmp_path: Path):
    script = (
        "import os, subprocess, sys\n"
        'subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluate.py"), "--fast"], check=True)\n'
        'os.system("python report.py --out x")\n'
        'subprocess.run(["lrzip", "-d", "model.lrz"], check=True)\n'
    )
    folder = _write(tmp_path, {"train_gpt.py": script, "evaluate.py": BODY, "report.py": BODY})
    program = _load(folder)
    assert _loaded(program) == {"evaluate.py": "__main__", "report.py": "__main__"}
    assert {ref.target: ref.kind for ref in program.siblings} == {"evaluate.py": "run", "report.py": "run"}


def test_spec_from_file_location_with_keyword_arguments(tmp_path: Path):
    script = (
        "import importlib.util\nfrom pathlib import Path\n"
        'spec = importlib.util.spec_from_file_location(name="aux", location=str(Path(__file__).resolve().parent / "aux_ops.py"))\n'
        "mod = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(mod)\n"
    )
    program = _load(_write(tmp_path, {"train_gpt.py": script, "aux_ops.py": BODY}))
    assert "aux_ops.py" in _loaded(program)


def test_module_inside_a_zip_archive_on_sys_path(tmp_path: Path):
    buf = tmp_path / "bundle.zip"
    tmp_path.mkdir(exist_ok=True)
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("scoring.py", BODY)
        zf.writestr("pkg/__init__.py", "from .inner import score\n")
        zf.writestr("pkg/inner.py", BODY)
    script = (
        "import os, sys\n"
        'sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundle.zip"))\n'
        "import scoring\nimport pkg\n"
    )
    program = _load(_write(tmp_path, {"train_gpt.py": script}))
    assert set(_loaded(program)) == {"bundle.zip/scoring.py", "bundle.zip/pkg/__init__.py"}
    assert {f.path for f in program.files} >= {"bundle.zip/scoring.py"}


def test_compiled_modules_are_named_not_skipped(tmp_path: Path):
    script = "import fastmix\nimport scorer\nimport numpy\n"
    folder = _write(tmp_path, {
        "train_gpt.py": script,
        "fastmix.cpython-311-x86_64-linux-gnu.so": b"\x7fELF stub",
        "scorer.pyc": b"\x00\x00 bytecode stub",
    })  # fmt: skip
    program = _load(folder)
    assert [(r.kind, r.target) for r in program.siblings] == [("shared-library", "fastmix.cpython-311-x86_64-linux-gnu.so")]
    reasons = [program.opaque_reason(node) for _, node in program.opaque]  # type: ignore[arg-type]
    assert reasons and "scorer.pyc" in str(reasons[0])


def test_loaders_inside_helpers_resolve_per_call_site(tmp_path: Path):
    script = (
        "import importlib.util, os\n\n\n"
        "def load_module(name):\n"
        '    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), name + ".py"))\n'
        "    mod = importlib.util.module_from_spec(spec)\n    spec.loader.exec_module(mod)\n    return mod\n\n\n"
        "def include(name):\n"
        "    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name)) as fh:\n"
        "        exec(fh.read(), globals())\n\n\n"
        'a = load_module("aux_ops")\nb = load_module("more_ops")\ninclude("notes.txt")\n'
    )
    folder = _write(tmp_path, {"train_gpt.py": script, "aux_ops.py": BODY, "more_ops.py": BODY, "notes.txt": BODY})
    program = _load(folder)
    assert _loaded(program) == {"aux_ops.py": "aux_ops", "more_ops.py": "more_ops", "notes.txt": "__main__"}
    assert not program.opaque


def test_a_helper_called_with_a_runtime_value_stays_a_warning(tmp_path: Path):
    script = (
        "import importlib, sys\n\n\ndef load(name):\n    return importlib.import_module(name)\n\n\n"
        "mod = load(sys.argv[1])\n"
    )
    program = _load(_write(tmp_path, {"train_gpt.py": script, "aux_ops.py": BODY}))
    assert _loaded(program) == {}
    reasons = [program.opaque_reason(node) for _, node in program.opaque]  # type: ignore[arg-type]
    assert reasons == ["loads a module pgaudit cannot resolve statically (`name`)"]


def test_relative_import_of_a_sibling_inside_a_package(tmp_path: Path):
    folder = _write(tmp_path, {
        "train_gpt.py": "import scoring\n",
        "scoring/__init__.py": "from . import inner\n",
        "scoring/inner.py": BODY,
    })  # fmt: skip
    assert set(_loaded(_load(folder))) == {"scoring/__init__.py", "scoring/inner.py"}


def test_decoded_source_written_to_a_file_is_audited(tmp_path: Path):
    blob = _z64(BODY)
    script = (
        "import base64, sys, tempfile, zlib\n"
        f'src = zlib.decompress(base64.b64decode("{blob}")).decode()\n'
        'd = tempfile.mkdtemp()\nwith open(d + "/stage.py", "w") as f:\n    f.write(src)\n'
        "sys.path.insert(0, d)\nimport stage\n"
    )
    program = _load(_write(tmp_path, {"train_gpt.py": script}))
    assert _payload_texts(program) == [BODY]


def test_decoded_data_that_is_not_written_out_is_not_code(tmp_path: Path):
    blob = _z64("a table\nof numbers\n")
    script = f'import base64, zlib\ntable = zlib.decompress(base64.b64decode("{blob}")).decode()\nprint(len(table))\n'
    assert _payload_texts(_load(_write(tmp_path, {"train_gpt.py": script}))) == []


def test_payload_spelled_as_a_list_of_integers(tmp_path: Path):
    raw = ", ".join(str(b) for b in zlib.compress(BODY.encode()))
    script = f"import zlib\n_B = [{raw}]\nexec(zlib.decompress(bytes(_B)))\n"
    assert _payload_texts(_load(_write(tmp_path, {"train_gpt.py": script}))) == [BODY]


def test_the_name_a_payload_runs_under_follows_its_namespace(tmp_path: Path):
    blob = _z64(BODY)
    calls = {
        "exec(CODE)": "__main__",
        "exec(CODE, globals())": "__main__",
        'exec(CODE, {"__name__": "stage"})': "stage",
        "exec(CODE, {})": "builtins",  # `__name__` then comes from the builtins module
    }
    for i, (call, expected) in enumerate(calls.items()):
        code = f'zlib.decompress(base64.b64decode("{blob}"))'
        program = _load(_write(tmp_path / str(i), {"train_gpt.py": "import base64, zlib\n" + call.replace("CODE", code) + "\n"}))
        assert [u.run_name for u in program.units if u.in_payload] == [expected], call


def test_loops_over_static_lists_and_globs_follow_every_item(tmp_path: Path):
    script = (
        "import glob, os\nHERE = os.path.dirname(os.path.abspath(__file__))\n"
        'for f in sorted(glob.glob(os.path.join(HERE, "stage_*.py"))):\n    exec(open(f).read())\n'
        'for m in ["aux_a", "aux_b"]:\n    __import__(m)\n'
        'for g in glob.glob("/etc/*.conf"):\n    exec(open(g).read())\n'
    )
    files = {"train_gpt.py": script, "stage_1.py": BODY, "stage_2.py": BODY, "aux_a.py": BODY, "aux_b.py": BODY}
    program = _load(_write(tmp_path, files))
    assert _loaded(program) == {
        "stage_1.py": "__main__", "stage_2.py": "__main__", "aux_a.py": "aux_a", "aux_b.py": "aux_b",
    }  # fmt: skip
    assert len(program.opaque) == 1  # the glob outside the folder is not listed: a warning, not a read


def test_packages_with_parent_relative_imports_and_import_module_package(tmp_path: Path):
    folder = _write(tmp_path, {
        "train_gpt.py": 'import importlib\nimport stage.scoring.core\nextra = importlib.import_module(".extra", package="stage.scoring")\n',
        "stage/__init__.py": "",
        "stage/common.py": BODY,
        "stage/scoring/__init__.py": "",
        "stage/scoring/core.py": "from ..common import score\nfrom .. import helpers\n",
        "stage/helpers.py": BODY,
        "stage/scoring/extra.py": BODY,
    })  # fmt: skip
    assert set(_loaded(_load(folder))) >= {
        "stage/scoring/core.py", "stage/common.py", "stage/helpers.py", "stage/scoring/extra.py",
    }  # fmt: skip


def test_decoder_helpers_and_xor_masks(tmp_path: Path):
    raw = bytes(b ^ 0x5A for b in zlib.compress(BODY.encode()))
    blob = base64.b85encode(raw).decode()
    helper = (
        "import base64, zlib\n\n\ndef unmask(blob, key):\n    import base64\n    raw = base64.b85decode(blob)\n"
        "    return bytes(b ^ key for b in raw)\n\n\n"
    )
    script = helper + f'exec(zlib.decompress(unmask("{blob}", 0x5A)))\n'
    assert _payload_texts(_load(_write(tmp_path / "a", {"train_gpt.py": script}))) == [BODY]
    key = b"k3y"
    packed = zlib.compress(BODY.encode())
    masked = base64.b64encode(bytes(b ^ key[i % 3] for i, b in enumerate(packed))).decode()
    script = (
        f'import base64, zlib\nR = base64.b64decode("{masked}")\nK = b"k3y"\n'
        "exec(zlib.decompress(bytes([R[i] ^ K[i % len(K)] for i in range(len(R))])))\n"
    )
    assert _payload_texts(_load(_write(tmp_path / "b", {"train_gpt.py": script}))) == [BODY]


def test_a_helper_that_branches_is_not_evaluated(tmp_path: Path):
    blob = _z64(BODY)
    script = (
        "import base64, zlib, os\n\n\ndef pick(s):\n    if os.environ.get('X'):\n        return ''\n    return s\n\n\n"
        f'exec(zlib.decompress(base64.b64decode(pick("{blob}"))))\n'
    )
    program = _load(_write(tmp_path, {"train_gpt.py": script}))
    assert _payload_texts(program) == [] and len(program.opaque) == 1

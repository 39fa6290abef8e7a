"""How an adversarial case hides its evaluation code from a static check (issue 15, "What to build" 7).

- loaders: the definitions move into a sibling module loaded by `importlib.util.spec_from_file_location`,
  `__import__`, `runpy.run_path`, `exec(open(Path(__file__).with_name(...)).read())` or
  `importlib.import_module` after a `sys.path.insert`;
- wrappers: the script (or the sibling) becomes a self-extracting literal, in the shapes real records use
  and a few more: lzma/zlib/bz2/gzip with base85/base64/hex, multi-line and concatenated literals, payloads
  assembled over several statements, `codecs.decode`, `__import__` inside `compile`, a payload in a sibling
  data file, and wrappers nested three deep;
- guards: the stage runs behind an env default that is on, or a condition no static check can decide.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import json
import lzma
import zlib

SIBLING_HEADER = """import glob
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
"""

LOADERS = ("spec", "dunder", "runpy", "exec", "importlib", "helper-path", "env-module", "subprocess", "spec-kw", "zip", "helper-loader",
           "exec-helper-txt", "glob-exec")


def loader(how: str, exports: tuple[str, ...]) -> tuple[str, str, str]:
    """(imports for the entry, the loading statements, the sibling's path) for one loader form."""
    if how == "spec":
        lines = [
            '_spec = importlib.util.spec_from_file_location("aux_ops", Path(__file__).with_name("aux_ops.py"))',
            "_aux = importlib.util.module_from_spec(_spec)",
            "_spec.loader.exec_module(_aux)",
            *[f"{name} = _aux.{name}" for name in exports],
        ]
        return "import importlib.util\nfrom pathlib import Path", "\n".join(lines), "aux_ops.py"
    if how == "dunder":
        lines = ['_aux = __import__("aux_ops")', *[f'{name} = getattr(_aux, "{name}")' for name in exports]]
        return "", "\n".join(lines), "aux_ops.py"
    if how == "runpy":
        lines = [
            '_ns = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "aux_ops.py"))',
            *[f'{name} = _ns["{name}"]' for name in exports],
        ]
        return "import runpy", "\n".join(lines), "aux_ops.py"
    if how == "exec":
        return "from pathlib import Path", 'exec(open(Path(__file__).with_name("aux_ops.py")).read())', "aux_ops.py"
    if how == "importlib":
        lines = [
            'sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))',
            '_aux = importlib.import_module("scoring")',
            *[f"{name} = _aux.{name}" for name in exports],
        ]
        return "import importlib\nimport sys", "\n".join(lines), "lib/scoring.py"
    if how == "helper-path":
        lines = [
            "def _here(name):",
            "    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)",
            "",
            "",
            '_ns = runpy.run_path(_here("aux_ops.py"))',
            *[f'{name} = _ns["{name}"]' for name in exports],
        ]
        return "import runpy", "\n".join(lines), "aux_ops.py"
    if how == "spec-kw":
        lines = [
            "_spec = importlib.util.spec_from_file_location(",
            '    name="aux_ops", location=str(Path(__file__).resolve().parent / "aux_ops.py")',
            ")",
            "_aux = importlib.util.module_from_spec(_spec)",
            "_spec.loader.exec_module(_aux)",
            *[f"{name} = _aux.{name}" for name in exports],
        ]
        return "import importlib.util\nfrom pathlib import Path", "\n".join(lines), "aux_ops.py"
    if how == "zip":  # the module lives inside a zip archive on sys.path (zipimport)
        lines = [
            'sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundle.zip"))',
            "import scoring as _aux  # noqa: E402",
            *[f"{name} = _aux.{name}" for name in exports],
        ]
        return "import sys", "\n".join(lines), "bundle.zip/scoring.py"
    if how == "helper-loader":  # the loader is a helper function called with the module's name
        lines = [
            "def load_module(name):",
            '    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), name + ".py"))',
            "    mod = importlib.util.module_from_spec(spec)",
            "    spec.loader.exec_module(mod)",
            "    return mod",
            "",
            "",
            '_aux = load_module("aux_ops")',
            *[f"{name} = _aux.{name}" for name in exports],
        ]
        return "import importlib.util", "\n".join(lines), "aux_ops.py"
    if how == "exec-helper-txt":  # exec of a text file through a helper's parameter
        lines = [
            "def include(name):",
            "    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name)) as fh:",
            "        exec(fh.read(), globals())",
            "",
            "",
            'include("notes.txt")',
        ]
        return "", "\n".join(lines), "notes.txt"
    if how == "glob-exec":  # every stage file the folder holds, found by a glob at run time
        lines = [
            'for _p in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "stage_*.py"))):',
            "    exec(open(_p).read())",
        ]
        return "", "\n".join(lines), "stage_eval.py"
    if how == "env-module":
        lines = [
            '_aux = importlib.import_module(os.environ.get("SCORER_MODULE", "aux_ops"))',
            *[f"{name} = _aux.{name}" for name in exports],
        ]
        return "import importlib", "\n".join(lines), "aux_ops.py"
    raise ValueError(how)


# The evaluation as a separate script that main launches after export (`subprocess.run([sys.executable,
# evaluate.py])`): it imports the model from train_gpt.py, loads the artifact and the validation tokens.
EVAL_SCRIPT = """import io
import os
import time
import zlib

from train_gpt import GPT, Hyperparameters, dequantize_state_dict, load_validation_tokens, log0
{imports}
{defs}

def main():
    args = Hyperparameters()
    model = GPT(args)
    with open("final_model.int8.ptz", "rb") as f:
        blob = f.read()
    model.load_state_dict(dequantize_state_dict(torch.load(io.BytesIO(zlib.decompress(blob)))), strict=True)
    val_tokens = load_validation_tokens(args.val_files, args.train_seq_len)
{final}


if __name__ == "__main__":
    main()
"""

LAUNCH = """subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluate.py")], check=True)"""


WRAPPERS = (
    "lzma-b85", "zlib-b64-lines", "bz2-hex-parts", "gzip-b85-join", "codecs-hex-zlib", "compile-dunder",
    "blob-file", "nested3", "append-parts", "getattr-codec", "self-comment", "reversed-b64", "import-module-codec",
    "builtins-exec", "exec-alias", "decompressobj", "json-asset", "write-import", "readme-block",
    "namespace-call", "int-list", "split-files", "xor-helper", "xor-key-cycle",
)  # fmt: skip


def wrap(text: str, how: str) -> tuple[str, dict[str, bytes]]:
    """The code as a self-extracting script, plus any data file the wrapper reads."""
    data = text.encode("utf-8")
    if how == "lzma-b85":
        blob = base64.b85encode(lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]))
        return (
            "import lzma as L,base64 as B\n"
            f'exec(L.decompress(B.b85decode("{blob.decode()}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n'
        ), {}
    if how == "zlib-b64-lines":
        blob = base64.b64encode(zlib.compress(data, 9)).decode()
        chunks = "\n".join(f'    "{blob[i : i + 88]}"' for i in range(0, len(blob), 88))
        return f"import base64\nimport zlib\n\n_SRC = (\n{chunks}\n)\nexec(zlib.decompress(base64.b64decode(_SRC)).decode())\n", {}
    if how == "bz2-hex-parts":
        blob = bz2.compress(data).hex()
        step = 120
        parts = [blob[i : i + step] for i in range(0, len(blob), step)]
        body = [f'_p = "{parts[0]}"'] + [f'_p += "{p}"' for p in parts[1:]]
        return "import bz2\n" + "\n".join(body) + "\nexec(bz2.decompress(bytes.fromhex(_p)))\n", {}
    if how == "gzip-b85-join":
        blob = base64.b85encode(gzip.compress(data, mtime=0)).decode()
        items = ",\n".join(f'    "{blob[i : i + 100]}"' for i in range(0, len(blob), 100))
        return (
            f"import base64, gzip\n_CHUNKS = [\n{items},\n]\n"
            'exec(gzip.decompress(base64.b85decode("".join(_CHUNKS))).decode("utf-8"))\n'
        ), {}
    if how == "codecs-hex-zlib":
        blob = zlib.compress(data, 9).hex()
        return f'import codecs\n_h = b"{blob}"\nexec(codecs.decode(codecs.decode(_h, "hex"), "zlib"))\n', {}
    if how == "compile-dunder":
        blob = base64.b64encode(lzma.compress(data)).decode()
        return (
            f'exec(compile(__import__("lzma").decompress(__import__("base64").b64decode("{blob}")).decode("utf-8"), '
            '"train_gpt.py", "exec"))\n'
        ), {}
    if how == "blob-file":
        return (
            "import zlib\nfrom pathlib import Path\n\n"
            'exec(zlib.decompress(Path(__file__).with_name("code.z").read_bytes()).decode("utf-8"))\n'
        ), {"code.z": zlib.compress(data, 9)}
    if how == "append-parts":
        blob = base64.b85encode(zlib.compress(data, 9)).decode()
        adds = "\n".join(f'_parts.append("{blob[i : i + 100]}")' for i in range(0, len(blob), 100))
        return f'import base64\nimport zlib\n\n_parts = []\n{adds}\nexec(zlib.decompress(base64.b85decode("".join(_parts))))\n', {}
    if how == "getattr-codec":
        blob = base64.b64encode(zlib.compress(data, 9)).decode()
        return (
            '_d = getattr(__import__("base64"), "b64" + "decode")\n'
            '_z = getattr(__import__("zlib"), "decompress")\n'
            f'exec(_z(_d("{blob}")))\n'
        ), {}
    if how == "self-comment":
        blob = base64.b85encode(lzma.compress(data)).decode()
        return (
            "import base64\nimport lzma\n\n"
            'exec(lzma.decompress(base64.b85decode(open(__file__).read().rsplit("#~", 1)[1].strip())))\n'
            f"#~{blob}\n"
        ), {}
    if how == "reversed-b64":
        blob = base64.b64encode(zlib.compress(data, 9)).decode()[::-1]
        return f'import base64, zlib\n_S = "{blob}"\nexec(zlib.decompress(base64.b64decode(_S[::-1])))\n', {}
    if how == "import-module-codec":
        blob = base64.b85encode(lzma.compress(data)).decode()
        return (
            'import importlib\n_L = importlib.import_module("lzma")\n_B = importlib.import_module("base64")\n'
            f'exec(_L.decompress(_B.b85decode("{blob}")))\n'
        ), {}
    if how == "builtins-exec":
        blob = base64.b64encode(zlib.compress(data, 9)).decode()
        return (
            "import base64\nimport zlib\n\n"
            f'getattr(__import__("builtins"), "ex" + "ec")(zlib.decompress(base64.b64decode("{blob}")))\n'
        ), {}
    if how == "exec-alias":
        blob = base64.b85encode(lzma.compress(data)).decode()
        return f'import base64\nimport lzma\n\n_run = exec\n_run(lzma.decompress(base64.b85decode("{blob}")))\n', {}
    if how == "decompressobj":
        blob = base64.b64encode(zlib.compress(data, 9)).decode()
        return f'import base64\nimport zlib\n\nexec(zlib.decompressobj().decompress(base64.b64decode("{blob}")))\n', {}
    if how == "json-asset":
        blob = base64.b64encode(zlib.compress(data, 9)).decode()
        asset = json.dumps({"version": 3, "blob": blob}).encode()
        return (
            "import base64\nimport json\nimport zlib\nfrom pathlib import Path\n\n"
            'with open(Path(__file__).with_name("assets.json")) as _f:\n'
            "    _assets = json.load(_f)\n"
            'exec(zlib.decompress(base64.b64decode(_assets["blob"])))\n'
        ), {"assets.json": asset}
    if how == "write-import":  # decoded into a module file under /tmp, then imported from there
        blob = base64.b64encode(zlib.compress(data, 9)).decode()
        return (
            "import base64\nimport os\nimport sys\nimport tempfile\nimport zlib\n\n"
            f'_src = zlib.decompress(base64.b64decode("{blob}")).decode()\n'
            "_dir = tempfile.mkdtemp()\n"
            'with open(os.path.join(_dir, "stage_main.py"), "w") as _f:\n'
            "    _f.write(_src)\n"
            "sys.path.insert(0, _dir)\n"
            "import stage_main  # noqa: E402\n\n"
            "stage_main.main()\n"
        ), {}
    if how == "readme-block":  # the code is the README's second python block
        readme = "# Notes\n\n```python\nprint('example')\n```\n\n```python\n" + text + "```\n"
        return (
            "from pathlib import Path\n\n"
            '_doc = Path(__file__).with_name("NOTES.md").read_text()\n'
            'exec(_doc.split("```python")[2].split("```")[0])\n'
        ), {"NOTES.md": readme.encode()}
    if how == "namespace-call":  # exec'd into a fresh namespace, its main() called from there
        blob = base64.b85encode(lzma.compress(data)).decode()
        body = text.replace('if __name__ == "__main__":\n    main()', "")
        blob = base64.b85encode(lzma.compress(body.encode())).decode()
        return (
            "import base64\nimport lzma\n\n"
            '_ns = {"__name__": "stage", "__file__": __file__}\n'
            f'exec(lzma.decompress(base64.b85decode("{blob}")), _ns)\n'
            '_ns["main"]()\n'
        ), {}
    if how == "int-list":  # the compressed bytes as a list of integers
        raw = list(zlib.compress(data, 9))
        rows = ",\n".join("    " + ", ".join(str(b) for b in raw[i : i + 24]) for i in range(0, len(raw), 24))
        return f"import zlib\n\n_B = [\n{rows},\n]\nexec(zlib.decompress(bytes(_B)))\n", {}
    if how == "split-files":  # the compressed payload split over two data files, joined at run time
        raw = lzma.compress(data)
        half = len(raw) // 2
        return (
            "import lzma\nimport os\n\n_d = os.path.dirname(os.path.abspath(__file__))\n"
            'with open(os.path.join(_d, "w0.bin"), "rb") as a, open(os.path.join(_d, "w1.bin"), "rb") as b:\n'
            "    _raw = a.read() + b.read()\n"
            "exec(lzma.decompress(_raw))\n"
        ), {"w0.bin": raw[:half], "w1.bin": raw[half:]}
    if how == "xor-helper":  # a decoder function: base85, then every byte XORed with a constant
        raw = bytes(b ^ 0x5A for b in zlib.compress(data, 9))
        blob = base64.b85encode(raw).decode()
        return (
            "import base64\nimport zlib\n\n\n"
            "def _unmask(blob, key):\n"
            '    """Undo the byte mask applied at packaging time."""\n'
            "    raw = base64.b85decode(blob)\n"
            "    return bytes(b ^ key for b in raw)\n\n\n"
            f'exec(zlib.decompress(_unmask("{blob}", 0x5A)))\n'
        ), {}
    if how == "xor-key-cycle":  # XOR with a repeating key, indexed
        key = b"golf"
        packed = zlib.compress(data, 9)
        raw = bytes(b ^ key[i % len(key)] for i, b in enumerate(packed))
        blob = base64.b64encode(raw).decode()
        return (
            "import base64\nimport zlib\n\n"
            f'_R = base64.b64decode("{blob}")\n'
            '_K = b"golf"\n'
            "exec(zlib.decompress(bytes([_R[i] ^ _K[i % len(_K)] for i in range(len(_R))])))\n"
        ), {}
    if how == "nested3":
        inner, _ = wrap(text, "bz2-hex-parts")
        middle, _ = wrap(inner, "zlib-b64-lines")
        return wrap(middle, "lzma-b85")
    raise ValueError(how)


GUARDS = ("env-on", "env-off", "undecidable")


def guard(how: str) -> tuple[str, str]:
    """(hyperparameter line, condition) that gates the stage."""
    if how == "env-on":
        return '    fast_path = bool(int(os.environ.get("FAST_PATH", "1")))', "args.fast_path"
    if how == "env-off":
        return '    fast_path = bool(int(os.environ.get("FAST_PATH", "0")))', "args.fast_path"
    if how == "undecidable":
        return "", "os.path.isdir(args.data_path) and torch.get_num_threads() > 0"
    raise ValueError(how)

"""PG404 network-at-eval."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable
from fnmatch import fnmatch
from pathlib import PurePosixPath

from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import Scope, dotted
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import tree_nodes, walk
from pgaudit.source.program import ENTRY_GLOBS, ENTRY_NAMES, CodeUnit

from .base import Example, Rule, short

_RULINGS = (
    "https://github.com/openai/parameter-golf/blob/main/README.md",
    "https://github.com/openai/parameter-golf/pull/925",
)

# Fully qualified callables that reach the network.
_NETWORK_CALLS = {
    "urllib.request.urlopen", "urllib.request.urlretrieve", "urllib.urlopen", "urllib.urlretrieve",
    "http.client.HTTPConnection", "http.client.HTTPSConnection", "socket.create_connection",
    "torch.hub.load", "torch.hub.download_url_to_file", "torch.hub.load_state_dict_from_url",
    "torch.utils.model_zoo.load_url", "wget.download", "gdown.download",
}  # fmt: skip
_REQUESTS = re.compile(r"^(requests|httpx|aiohttp)\.(get|post|put|patch|head|delete|request|stream|Session|Client|AsyncClient|ClientSession)$")
_HF = re.compile(r"^huggingface_hub\.(\w*download\w*|\w*upload\w*|HfApi|HfFileSystem|list_repo_files|login)$")
_PUNCT = " ;&|/\"'"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SHELL = {"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output", "subprocess.Popen",
          "os.system", "os.popen", "os.execvp", "os.execv", "os.spawnlp"}  # fmt: skip
_SHELL_NET = re.compile(
    r"(^|[\s;&|/\"'])(wget|curl|aria2c|scp|rsync|ssh|gsutil)\b|pip3?\s+install|python3?\s+-m\s+pip\s+install|"
    r"uv\s+pip\s+install|git\s+(clone|fetch|pull)|huggingface-cli\s+download|\bhf\s+download|"
    r"cached_challenge_fineweb|snapshot_download|hf_hub_download"
)


class NetworkAtEval(Rule):
    """A download or network call in the script that runs for the score.

    What it does:
        Finds calls that reach the network in the training/evaluation program: `requests.*` / `httpx.*`,
        `urllib.request.urlopen` / `urlretrieve`, `http.client` connections, `socket.create_connection`,
        `huggingface_hub` downloads (`hf_hub_download`, `snapshot_download`), `datasets.load_dataset` of a hub
        dataset, `torch.hub` loads, and shell commands run through `subprocess` / `os.system` that download or
        install (`wget`, `curl`, `pip install`, `git clone`, `huggingface-cli download`). Import aliases are
        followed (`from huggingface_hub import hf_hub_download as dl`). Code that cannot run (a data-prep
        function never called, a helper module's `if __name__ == "__main__":` block) is reported at info.

    Why is this bad:
        "No external downloads, training dataset access, or network calls are allowed during evaluation. The
        artifact must be fully self-contained and reproducible." (README, R3). A download at run time brings
        in bytes that the 16,000,000-byte artifact does not pay for, and the run depends on a server.

    Example:
        path = hf_hub_download("someone/ngram-tables", "counts.bin")    # fetched during the run

    Legal look-alikes:
        Installed binaries run through subprocess (`nvidia-smi`, `torchrun`, `lrzip` for decompression,
        accepted in PR #1855); downloads inside a data-prep script (`cached_challenge_fineweb.py`) that the
        scored script does not run -- also when the README launches it as its own command (`python3
        cached_challenge_fineweb.py`): a launched script that is not a train* script and neither trains nor
        scores is reported at info; `torch.distributed` process-group setup (a local rendezvous, not a
        download); code under a `__main__` guard of a helper module.

    References:
        R3 of the catalogue; README "No external downloads ... or network calls"; PR #925 / #945 closures.
    """

    code = "PG404"
    name = "network-at-eval"
    severity = Severity.ERROR
    confidence = Confidence.HIGH
    catalogue_ids = ("R3",)
    ruling_urls = _RULINGS
    fix = (
        "Ship everything the run needs in the record folder (paid for in the 16 MB when it is model data) and "
        "keep downloads in a separate data-prep script that the scored run does not execute."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        aliases = {id(u): _import_aliases(u) for u in facts.program.units}
        prep = _data_prep_entry(facts)
        for scope in facts.index.scopes:
            alias = aliases.get(id(scope.unit), {})
            for call in facts.index.calls_in(scope):
                what = self._network(facts, scope, call, alias)
                if what is None:
                    continue
                if prep:
                    message = (
                        f"`{short(call)}` (line {call.lineno}) {what} in `{facts.program.entry}`, a separate script "
                        "the documented commands launch that neither trains nor scores: data preparation, which R3 "
                        "allows (only the scored run must be self-contained)."
                    )
                    yield self.finding(facts, scope.unit, call, message, severity=Severity.INFO, confidence=Confidence.MEDIUM)
                    continue
                message = f"`{short(call)}` (line {call.lineno}) {what} while the submission runs: R3 forbids downloads and network calls; the artifact must be self-contained."
                yield self.finding(facts, scope.unit, call, message)

    def _network(self, facts: Facts, scope: Scope, call: ast.Call, alias: dict[str, str]) -> str | None:
        def bound(node: ast.AST) -> ast.AST:
            return _bound_once(node, facts, scope)

        name = _qualified(bound(call.func), alias, bound)
        if not name:
            return None
        if name in _NETWORK_CALLS or _REQUESTS.match(name):
            return "makes a network request"
        if _HF.match(name):
            return "downloads from the Hugging Face Hub"
        if name in ("datasets.load_dataset", "datasets.load_dataset_builder"):
            first = call.args[0] if call.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and _HUB_ID.match(first.value):
                return "downloads a Hugging Face dataset"
            return None
        if name.rsplit(".", 1)[-1] in ("connect", "connect_ex") and isinstance(call.func, ast.Attribute):
            if "sock" in dotted(call.func.value).lower():
                return "opens a network socket"
            return None
        if name in _SHELL and call.args:
            text = " ".join(_strings(call.args[0], facts, scope))
            match = _SHELL_NET.search(text)
            if match:
                found = match.group(0).strip(_PUNCT)
                return f"runs a shell command that downloads or installs (`{found}`)"
        return None


def _data_prep_entry(facts: Facts) -> bool:
    """The audited program is a data-preparation script a README launches beside the training script
    (`python3 cached_challenge_fineweb.py`): not a train_gpt*/train* entry, and nothing in it trains weights or
    scores tokens."""
    name = PurePosixPath(facts.program.entry.replace("\\", "/")).name
    if name in ENTRY_NAMES or any(fnmatch(name, pattern) for pattern in ENTRY_GLOBS):
        return False
    return not any(facts.events.of(scope).all for scope in facts.flow.scopes)


def _import_aliases(unit: CodeUnit) -> dict[str, str]:
    """`import urllib.request as ur` -> {"ur": "urllib.request"}; `from requests import get` -> {"get": "requests.get"}."""
    out: dict[str, str] = {}
    for node in tree_nodes(unit.tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _qualified(func: ast.AST, alias: dict[str, str], bound: Callable[[ast.AST], ast.AST] = lambda n: n) -> str:
    # `getattr(importlib.import_module("urll" + "ib.request"), "url" + "open")`, `__import__("socket").socket`
    if isinstance(func, ast.Call) and dotted(func.func) == "getattr" and len(func.args) >= 2:
        module, attr = _module_of(bound(func.args[0]), alias, bound), _constant_text(func.args[1], bound)
        return f"{module}.{attr}" if module and attr else ""
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call):
        module = _module_of(func.value, alias, bound)
        return f"{module}.{func.attr}" if module else ""
    name = dotted(func)
    if not name or isinstance(func, ast.Call):
        return ""
    head, _, rest = name.partition(".")
    if head in alias:
        name = alias[head] + (f".{rest}" if rest else "")
    return name


def _bound_once(node: ast.AST, facts: Facts, scope: Scope) -> ast.AST:
    """`op = getattr(mod, "urlopen")` then `op(u)`: a local name bound once stands for its value."""
    if not isinstance(node, ast.Name):
        return node
    value = facts.flow.bound_once(node.id, scope)
    kinds = ast.Call | ast.Attribute | ast.Constant | ast.BinOp | ast.JoinedStr
    return value if isinstance(value, kinds) else node


def _module_of(node: ast.AST, alias: dict[str, str], bound: Callable[[ast.AST], ast.AST] = lambda n: n) -> str:
    """The module an expression names: an imported alias, or `importlib.import_module(TEXT)` /
    `__import__(TEXT)` with a constant text however it is spelled."""
    if isinstance(node, ast.Call) and node.args and _qualified(node.func, alias) in ("importlib.import_module", "__import__"):
        return _constant_text(node.args[0], bound)
    name = dotted(node)
    if name and not isinstance(node, ast.Call):
        head, _, rest = name.partition(".")
        return alias[head] + (f".{rest}" if rest else "") if head in alias else ""
    return ""


def _constant_text(node: ast.AST, bound: Callable[[ast.AST], ast.AST] = lambda n: n, depth: int = 0) -> str:
    """`"urll" + "ib.request"`, `f"url{'open'}"`, `"".join(["ur", "lopen"])`: the text, or "" when not constant."""
    if isinstance(node, ast.Name) and depth < 4:
        value = bound(node)
        return _constant_text(value, bound, depth + 1) if value is not node else ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _constant_text(node.left, bound, depth), _constant_text(node.right, bound, depth)
        return left + right if left and right else ""
    if isinstance(node, ast.JoinedStr):
        parts = [_constant_text(v.value if isinstance(v, ast.FormattedValue) else v, bound, depth) for v in node.values]
        return "".join(parts) if all(parts) else ""
    if (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
        and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)
        and len(node.args) == 1 and isinstance(node.args[0], ast.List | ast.Tuple)
    ):
        parts = [_constant_text(e, bound, depth) for e in node.args[0].elts]
        return node.func.value.value.join(parts) if all(parts) else ""
    return ""


def _strings(node: ast.AST, facts: Facts, scope: Scope, depth: int = 0) -> list[str]:
    """String pieces of a command: literals, list items, f-string parts, and a local variable's values."""
    if isinstance(node, ast.Name) and depth < 2:
        fs = facts.flow.fs.get(id(scope))
        values = [v for t, v, how in (fs.assigns if fs else []) if isinstance(t, ast.Name) and t.id == node.id and v is not None and how == "="]
        return [s for v in values for s in _strings(v, facts, scope, depth + 1)]
    return [n.value for n in walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


NetworkAtEval.invalid = (
    Example(
        title="the opener spelled through __import__ and getattr with assembled strings",
        code='''
import numpy as np

def fetch(u, dst):
    op = getattr(__import__("urllib" + ".request", fromlist=["x"]), "".join(["url", "open"]))
    with op(u) as r, open(dst, "wb") as f:  # <- expected
        f.write(r.read())
    return np.load(dst)

def main():
    table = fetch("https://example.org/t.npy", "t.npy")
    print(table.sum())

if __name__ == "__main__":
    main()
''',
        message="makes a network request",
    ),
    Example(
        title="n-gram tables downloaded from the Hugging Face Hub before the eval",
        code='''
import numpy as np
from huggingface_hub import hf_hub_download

def load_tables():
    path = hf_hub_download("someone/ngram-tables", "counts.bin")  # <- expected
    return np.fromfile(path, dtype=np.uint32)

def main():
    tables = load_tables()
    print(tables.sum())

if __name__ == "__main__":
    main()
''',
        message="downloads from the Hugging Face Hub",
    ),
    Example(
        title="a package installed with pip at run time",
        code='''
import subprocess

def setup():
    subprocess.run(["pip", "install", "flash-attn"], check=True)  # <- expected

setup()
''',
        message="runs a shell command that downloads or installs (`pip install`)",
    ),
    Example(
        title="a URL fetched with urllib through an import alias",
        code='''
import urllib.request as ur

def fetch():
    return ur.urlopen("https://example.com/prefix.bin").read()  # <- expected

if __name__ == "__main__":
    fetch()
''',
        message="makes a network request",
    ),
    Example(
        title="os.system with wget",
        code='''
import os
cmd = "wget -q https://example.com/tokenizer.model"
os.system(cmd)  # <- expected
''',
        message="(`wget`)",
    ),
)

NetworkAtEval.valid = (
    Example(
        title="installed binaries through subprocess: nvidia-smi, lrzip (PR #1855) and a torchrun child",
        code='''
import subprocess

def main():
    print(subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout)
    subprocess.run(["lrzip", "-d", "-f", "final_model.lrz"], check=True)
    subprocess.run("torchrun --standalone --nproc_per_node=8 train_gpt.py", shell=True)

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="a download helper that is never called: info at most",
        code='''
import requests

def fetch_data():
    return requests.get("https://example.com/data.bin").content

def main():
    print("train from local shards")

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="a helper module's __main__ block downloads data; only its functions are imported",
        code='''
from prep_utils import shard_count

print(shard_count())
''',
        files={
            "prep_utils.py": '''
from huggingface_hub import snapshot_download

def shard_count():
    return 80

if __name__ == "__main__":
    snapshot_download("willdepueoai/parameter-golf", repo_type="dataset")
''',
        },
    ),
    Example(
        title="a local dataset file and torch.distributed setup",
        code='''
import datasets
import torch.distributed as dist

def main():
    ds = datasets.load_dataset("json", data_files="local.jsonl")
    dist.init_process_group(backend="nccl")
    print(len(ds))

if __name__ == "__main__":
    main()
''',
    ),
)

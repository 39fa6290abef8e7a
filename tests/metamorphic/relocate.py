"""Metamorphic rewrites that move code without changing what runs (issue 15, rewrites b and c).

- `relocate(text, how)`: the script's leading definitions -- everything up to and including the top-level
  function that carries the `# <- expected` marker, else up to the last top-level function or class other
  than `main` -- move into a sibling module `moved_code.py`; the script gets, in their place,
  `from moved_code import <every name they bound>` (how="import") or
  `exec(open(os.path.join(os.path.dirname(__file__), "moved_code.py")).read())` (how="exec", which runs
  them in the script's own namespace). The moved statements run first in both forms, as before.
- `wrap(text, how)`: the script becomes a self-extracting literal: lzma (raw LZMA2) + base85 ("lzma-b85"),
  zlib + base64 ("zlib-b64"), or the first inside the second ("nested").

Each returns the rewritten files as {relative path: text}. A self-extracting script is unwrapped first
(the rewrites move Python code, not the literal that carries it).
"""

from __future__ import annotations

import ast
import base64
import lzma
import zlib

from pgaudit.source.parse import parse_python
from pgaudit.source.unwrap import find_payloads

SIBLING = "moved_code.py"
MARKER = "# <- expected"
RELOCATIONS = ("import", "exec")
WRAPPINGS = ("lzma-b85", "zlib-b64", "nested")


def unwrapped(text: str) -> str:
    """The code a self-extracting script runs when the script is its imports plus one exec; else `text`."""
    tree = parse_python(text, "train_gpt.py")
    payloads = find_payloads(tree, "train_gpt.py")
    rest = [
        s for s in tree.body
        if not isinstance(s, ast.Import | ast.ImportFrom)
        and not (isinstance(s, ast.Assign) and isinstance(s.value, ast.Constant))  # the literal's chunks
    ]  # fmt: skip
    if len(payloads) == 1 and len(rest) == 1:
        return unwrapped(payloads[0].text)
    return text


def relocate(text: str, how: str, entry: str = "train_gpt.py") -> dict[str, str]:
    """Move the leading definitions of the script into a sibling module, imported or exec'd."""
    assert how in RELOCATIONS
    text = unwrapped(text)
    tree = ast.parse(text)
    body = tree.body
    end = _split_index(text, body)
    if end is None:
        return {entry: text}
    lines = text.split("\n")
    moved_until = body[end].end_lineno or body[end].lineno
    head = lines[:moved_until]
    tail = lines[moved_until:]
    future = [s for s in body[: end + 1] if isinstance(s, ast.ImportFrom) and s.module == "__future__"]
    prologue = [ast.get_source_segment(text, s) or "" for s in future]
    if how == "exec":
        loader = ["import os as _os_for_moved", f"exec(open(_os_for_moved.path.join(_os_for_moved.path.dirname(__file__), {SIBLING!r})).read())"]
    else:
        names = sorted(_bound_names(body[: end + 1]))
        loader = [f"from {SIBLING[:-3]} import {', '.join(names)}"] if names else [f"import {SIBLING[:-3]}"]
    # keep every following line where it was: the loader replaces the moved lines, padded with blank lines
    pad = max(0, len(head) - len(prologue) - len(loader))
    script = "\n".join([*prologue, *loader, *([""] * pad), *tail])
    return {entry: script, SIBLING: "\n".join(head) + "\n"}


def wrap(text: str, how: str) -> str:
    """The script as a self-extracting literal."""
    assert how in WRAPPINGS
    text = unwrapped(text)
    if how == "nested":
        return wrap(wrap(text, "lzma-b85"), "zlib-b64")
    data = text.encode("utf-8")
    if how == "lzma-b85":
        blob = base64.b85encode(lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]))
        return (
            "import lzma as L,base64 as B\n"
            f'exec(L.decompress(B.b85decode("{blob.decode()}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n'
        )
    blob = base64.b64encode(zlib.compress(data, 9)).decode()
    chunks = "\n".join(f'    "{blob[i : i + 96]}"' for i in range(0, len(blob), 96))
    return f"import zlib, base64\n_payload = (\n{chunks}\n)\nexec(zlib.decompress(base64.b64decode(_payload)))\n"


def _split_index(text: str, body: list[ast.stmt]) -> int | None:
    """Index of the last statement to move, or None when nothing can move without changing behaviour."""
    marker_line = next((n for n, line in enumerate(text.split("\n"), 1) if MARKER in line), None)
    defs = [i for i, s in enumerate(body) if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    end = None
    if marker_line is not None:
        end = next((i for i in defs if body[i].lineno <= marker_line <= (body[i].end_lineno or 0)), None)
    if end is None:
        named = [i for i in defs if getattr(body[i], "name", "") != "main"]
        end = named[-1] if named else None
    if end is None:
        return None
    moved = body[: end + 1]
    for stmt in moved:  # code that asks for its own module name behaves differently elsewhere: keep it
        if any(isinstance(n, ast.Name) and n.id in ("__name__", "globals") for n in ast.walk(stmt)):
            return None
        if isinstance(stmt, ast.Global):
            return None
    return end


def _bound_names(stmts: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for stmt in stmts:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
                continue
            for alias in stmt.names:
                if alias.name != "*":
                    names.add(alias.asname or alias.name.split(".")[0])
        else:
            names |= _stored(stmt)
    return names


def _stored(node: ast.AST) -> set[str]:
    """Names a module-level statement binds (not those local to a comprehension or lambda)."""
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Store) else set()
    if isinstance(node, ast.comprehension | ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        return set()
    out: set[str] = set()
    for child in ast.iter_child_nodes(node):
        out |= _stored(child)
    return out

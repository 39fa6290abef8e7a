"""Apply a rewrite to every Python file of a submission folder (copied elsewhere; the original is untouched).

A self-extracting script (`exec(lzma.decompress(b85decode("...")))`) is replaced by the code it runs before
the rewrite, because the rewrites spell Python code, not the literal that carries it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from pgaudit.source.parse import parse_python
from pgaudit.source.unwrap import find_payloads

Rewrite = Callable[[str], str]


def unwrapped(text: str, display: str) -> str:
    """The code a self-extracting script runs when the whole script is one exec of a payload; else `text`."""
    tree = parse_python(text, display)
    payloads = find_payloads(tree, display)
    if len(payloads) == 1 and len([s for s in tree.body if not _is_import(s)]) == 1:
        return unwrapped(payloads[0].text, display)
    return text


def _is_import(stmt: object) -> bool:
    import ast

    return isinstance(stmt, ast.Import | ast.ImportFrom)


def rewrite_sources(sources: dict[str, str], kind: str, rewrite: Rewrite) -> dict[str, str]:
    """{relative path: code} -> rewritten; `rename` and `mislead` share one mapping over the files, so
    cross-module names stay consistent."""
    local = frozenset(Path(p).stem for p in sources if p.endswith(".py"))
    mapping: dict[str, str] = {}
    out = {}
    for path, code in sources.items():
        if not path.endswith(".py"):  # C/CUDA sources and data files ride along unchanged
            out[path] = code
            continue
        code = unwrapped(code, path)
        out[path] = rewrite(code, mapping, local) if kind in ("rename", "mislead") else rewrite(code)  # type: ignore[call-arg]
    return out


def rewrite_folder(src: Path, dst: Path, kind: str, rewrite: Rewrite) -> Path:
    """Copy `src` to `dst` with every `.py` file rewritten; returns `dst`."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    py = {str(p.relative_to(dst)): p.read_text(encoding="utf-8") for p in sorted(dst.rglob("*.py"))}
    for rel, code in rewrite_sources(py, kind, rewrite).items():
        (dst / rel).write_text(code, encoding="utf-8")
    return dst

"""PG405 extra-code-in-scoring-path."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from pgaudit.analysis.facts import Facts
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import tree_nodes
from pgaudit.source.program import CodeUnit, SiblingRef, inside

from .base import Example, Rule

_RULINGS = (
    "https://github.com/openai/parameter-golf/pull/1412",
    "https://github.com/openai/parameter-golf/pull/1514",
)
_NATIVE_SUFFIXES = (".c", ".cc", ".cpp", ".cu", ".cuh", ".h", ".hpp", ".so")
_HOW = {
    "import": "imported",
    "exec": "exec'd",
    "run": "run as a script (a separate process)",
    "c-source": "compiled at run time",
    "shared-library": "loaded as a shared library",
}


class ExtraCodeInScoringPath(Rule):
    """Code outside `train_gpt.py` that the scoring path runs: its bytes arguably count in the artifact.

    What it does:
        Lists the sibling files of the record folder that the running program uses -- modules it imports
        (`import ngram_tilt`, `from lossless_caps import ...`), files it execs (`exec(open(...).read())`),
        C/CUDA sources it compiles at run time (`torch.utils.cpp_extension.load(sources=[...])`, `load_inline`
        fed from a file) and shared libraries it loads (`ctypes.CDLL`) -- with the byte count of each, so that
        the artifact-size check (PG501) can add them. It is informational when the bytes are known, and a
        warning when a file is exec'd or loaded but its bytes cannot be determined (a path pgaudit cannot
        resolve statically, or a file missing from the folder). Native code (C/C++/CUDA sources, shared
        libraries) is a warning that names the file: pgaudit audits Python only.

    Why is this bad:
        "All counted code should live in the `train_gpt.py` script" (README). The artifact is code bytes plus
        compressed model bytes under 16,000,000; code that the scoring path runs from other files escapes the
        count unless it is added. PR #1412 re-packed its script because `exec(open("train_gpt_decode.py")
        .read())` made the readable helper the effective code. PR #1514 shipped imported helpers that it did
        not count; no maintainer ruling settles the question, hence info severity.

    Example:
        from ngram_tilt import build_tilt      # ngram_tilt.py, 8,624 bytes, used at eval

    Legal look-alikes:
        A readable copy (`train_gpt_human.py`, `train_gpt_decode.py`) that sits beside a self-contained
        `train_gpt.py` and is never imported or exec'd; data-prep scripts (`prepare_caseops_data.py`,
        `cached_challenge_fineweb.py`) that the training script does not run; tokenizer `.model` files;
        installed packages from `requirements.txt`.

    References:
        R2 of the catalogue; PR #1412 (exec'd helper counted), PR #1514 (imported helpers not counted).
    """

    code = "PG405"
    name = "extra-code-in-scoring-path"
    severity = Severity.INFO
    confidence = Confidence.HIGH
    catalogue_ids = ("R2",)
    ruling_urls = _RULINGS
    fix = (
        "Inline the helper code into train_gpt.py (a self-extracting LZMA wrapper keeps it small), or count the "
        "helper files' bytes in the reported artifact size."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        program = facts.program
        root = Path(program.root)
        loaded = {f.path: f.bytes for f in program.files}
        seen: set[str] = set()
        for ref in program.siblings:
            if ref.kind not in _HOW or ref.target in seen or ref.target == program.entry:
                continue
            seen.add(ref.target)
            located = _locate(program.units, ref)
            if located is None:
                continue
            unit, node = located
            size = loaded.get(ref.target)
            if size is None:
                size = _file_size(root, ref.target)
            yield self._report(facts, unit, node, ref.target, ref.kind, size)
        yield from self._named_native(facts, root, seen)

    def _named_native(self, facts: Facts, root: Path, seen: set[str]) -> Iterable[Finding]:
        """C/CUDA sources and libraries named by a string the code spells out in a path built elsewhere
        (`_HERE / "ngram" / "fused_expert_kernel.cpp"`), which the sibling resolution cannot follow."""
        try:
            candidates = [p for p in root.rglob("*") if p.suffix in _NATIVE_SUFFIXES and p.is_file()][:200]
        except OSError:
            return
        by_name: dict[str, Path] = {}
        for path in candidates:
            rel = path.relative_to(root).as_posix()
            if rel not in seen:
                by_name.setdefault(path.name, path)
        if not by_name:
            return
        for unit in facts.program.units:
            for node in tree_nodes(unit.tree):
                if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in by_name):
                    continue
                path = by_name.pop(node.value)
                rel = path.relative_to(root).as_posix()
                seen.add(rel)
                kind = "shared-library" if path.suffix == ".so" else "c-source"
                stmt = _statement(node)
                yield self._report(facts, unit, stmt, rel, kind, _file_size(root, rel))

    def _report(self, facts: Facts, unit: CodeUnit, node: ast.AST, target: str, kind: str, size: int | None) -> Finding:
        line = getattr(node, "lineno", "?")
        root = Path(facts.program.root)
        outside = target.startswith("..") or not inside(root / target, root)
        native = kind in ("c-source", "shared-library")
        if size is not None and not outside:
            message = (
                f"`{target}` ({size:,} bytes) is {_HOW[kind]} by the scoring path (line {line}): R2 counts code "
                "outside train_gpt.py in the artifact, so these bytes must be added to the code size "
                "(code + compressed model <= 16,000,000 bytes)."
            )
            if native:  # native code is never audited: say so at warning, never silently
                message += f" It is native code: pgaudit did not audit what `{target}` computes."
                return self.finding(facts, unit, node, message, severity=Severity.WARNING)
            return self.finding(facts, unit, node, message)
        why = "lies outside the record folder" if outside else "is not in the record folder or its path is not static"
        message = (
            f"`{target}` is {_HOW[kind]} by the scoring path (line {line}) but {why}, so its bytes cannot be "
            "counted: R2 requires counting code the scoring path runs in the artifact size."
        )
        return self.finding(facts, unit, node, message, severity=Severity.WARNING, confidence=Confidence.MEDIUM)


def _file_size(root: Path, rel: str) -> int | None:
    path = root / rel
    try:
        return path.stat().st_size if inside(path, root) and path.is_file() else None
    except OSError:
        return None


def _statement(node: ast.AST) -> ast.AST:
    cur: ast.AST | None = node
    while cur is not None and not isinstance(cur, ast.stmt):
        cur = getattr(cur, "pg_parent", None)
    return cur if cur is not None else node


def _locate(units: list[CodeUnit], ref: SiblingRef) -> tuple[CodeUnit, ast.AST] | None:
    """The unit and innermost statement at the reference's line (an import, an exec, a compile call)."""
    for unit in units:
        if unit.path != ref.unit_path or unit.in_payload != ref.in_payload:
            continue
        best: ast.AST | None = None
        for node in tree_nodes(unit.tree):
            if isinstance(node, ast.stmt) and node.lineno == ref.line:
                if best is None or _depth(node) > _depth(best):
                    best = node
        if best is not None:
            return unit, best
    return None


def _depth(node: ast.AST) -> int:
    depth = 0
    cur = getattr(node, "pg_parent", None)
    while cur is not None:
        depth += 1
        cur = getattr(cur, "pg_parent", None)
    return depth


_HELPER = '''
import numpy as np

def build_tilt(tokens, vocab_size):
    counts = np.bincount(tokens, minlength=vocab_size)
    return np.log(counts + 1.0)
'''

ExtraCodeInScoringPath.invalid = (
    Example(
        title="a sibling module imported and used at eval: its bytes must be counted",
        code='''
import numpy as np
from ngram_tilt import build_tilt  # <- expected

def main():
    tokens = np.zeros(16, dtype=np.int64)
    print(build_tilt(tokens, 8))

if __name__ == "__main__":
    main()
''',
        files={"ngram_tilt.py": _HELPER},
        message="bytes) is imported by the scoring path",
    ),
    Example(
        title="a readable helper exec'd by the wrapper: the helper is the effective code",
        code='''
import os
exec(open(os.path.join(os.path.dirname(__file__), "train_gpt_decode.py")).read())  # <- expected
''',
        files={"train_gpt_decode.py": "print('training')\n"},
        message="`train_gpt_decode.py` (18 bytes) is exec'd",
    ),
    Example(
        title="a CUDA kernel compiled at run time from a sibling source file",
        code='''
from torch.utils.cpp_extension import load

def fused_kernel():
    return load(name="fused", sources=["fused_expert_kernel.cu"])  # <- expected

if __name__ == "__main__":
    fused_kernel()
''',
        files={"fused_expert_kernel.cu": "__global__ void k() {}\n"},
        severity=Severity.WARNING,
        message="compiled at run time by the scoring path (line 5): R2 counts",
    ),
    Example(
        title="an exec'd helper that is not in the folder: its bytes cannot be counted",
        severity=Severity.WARNING,
        code='''
exec(open("helpers_missing.py").read())  # <- expected
''',
        message="its bytes cannot be counted",
    ),
)

ExtraCodeInScoringPath.valid = (
    Example(
        title="a self-contained train_gpt.py beside a readable copy and a data-prep script it never runs",
        code='''
import numpy as np

def main():
    print(np.zeros(4).sum())

if __name__ == "__main__":
    main()
''',
        files={
            "train_gpt_human.py": "print('readable copy, not run')\n",
            "prepare_caseops_data.py": "import urllib.request\nurllib.request.urlretrieve('https://x', 'y')\n",
        },
    ),
    Example(
        title="an imported helper whose only use is dead code: reported at info severity, never higher",
        code='''
import os

def legacy():
    import ngram_tilt
    return ngram_tilt.build_tilt

if __name__ == "__main__" and os.environ.get("NEVER", "0") == "1":
    legacy()
''',
        files={"ngram_tilt.py": _HELPER},
    ),
)

"""A script or record folder -> the program that runs: code units with their trees, payloads unwrapped.

A folder is audited as one program: the entry script plus the sibling modules it imports or execs
(`import ngram_tilt`, `exec(open(__file__.replace("train_gpt.py", "train_gpt_decode.py")).read())`).
Every unit keeps the path of the committed file it came from and, for payload code, the wrapper line.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path

from pgaudit.errors import InputError
from pgaudit.findings import AuditedFile, InputProblem, Location
from pgaudit.source.guards import count_lines, path_problem, payload_budget, read_source, source_text
from pgaudit.source.parse import parse_python, tree_nodes
from pgaudit.source.unwrap import MAX_NESTING, find_payloads, opaque_execs

# Entry scripts in the order a folder is searched; early records used nonstandard names (R29).
ENTRY_NAMES = ("train_gpt.py", "train_gpt_mlx.py")
ENTRY_GLOBS = ("train_gpt*.py", "train_*.py", "train*.py")
# Readable copies shipped beside a self-extracting train_gpt.py; audited only when the entry execs them.
READABLE_COPY_HINTS = ("_human", "_decode", "_decompressed", "_readable", "_src")


@dataclass
class CodeUnit:
    """One piece of Python that runs: a committed file, or a payload exec'd by one."""

    path: str  # display path of the committed file, relative to the audited folder
    text: str
    tree: ast.Module
    role: str  # "entry" or "module"
    in_payload: bool = False
    wrapper_line: int | None = None
    codec: str | None = None
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.lines:
            self.lines = self.text.split("\n")

    def location(self, node: ast.AST | int, end: ast.AST | None = None) -> Location:
        line = node if isinstance(node, int) else getattr(node, "lineno", None)
        end_line = getattr(end or node, "end_lineno", None) if not isinstance(node, int) else None
        return Location(self.path, line, end_line, self.in_payload, self.wrapper_line)

    def line_text(self, line: int | None) -> str:
        if line is None or not 1 <= line <= len(self.lines):
            return ""
        return self.lines[line - 1]

    @property
    def label(self) -> str:
        return f"{self.path} (payload)" if self.in_payload else self.path


@dataclass(frozen=True)
class SiblingRef:
    """A sibling file the program uses at run time (imported, exec'd, compiled or loaded)."""

    unit_path: str
    line: int
    kind: str  # "import", "exec", "c-source", "shared-library"
    target: str  # path relative to the folder
    in_payload: bool


@dataclass
class Program:
    root: Path  # the folder the paths are relative to
    entry: str
    units: list[CodeUnit] = field(default_factory=list)
    files: list[AuditedFile] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    siblings: list[SiblingRef] = field(default_factory=list)
    opaque: list[tuple[CodeUnit, ast.Call]] = field(default_factory=list)

    @property
    def entry_units(self) -> list[CodeUnit]:
        return [u for u in self.units if u.role == "entry"]


def find_entries(folder: Path) -> list[Path]:
    """The entry scripts of a record folder: train_gpt.py (else the accepted variants), plus every script the
    folder's documented run command launches (README / *.sh: `torchrun ... train_gpt_fast.py`)."""
    from pgaudit.analysis.runcmd import launched_scripts

    found = _named_entries(folder)
    return found + [path for path, _ in launched_scripts(folder) if path not in found]


def _named_entries(folder: Path) -> list[Path]:
    for name in ENTRY_NAMES:
        if _entry_like(folder / name):
            return [folder / name]
    for pattern in ENTRY_GLOBS:
        found = sorted(p for p in folder.glob(pattern) if _entry_like(p))
        found = [p for p in found if not any(h in p.stem for h in READABLE_COPY_HINTS)] or found
        if found:
            return found
    return sorted(p for p in folder.glob("*.py") if _entry_like(p))


def _entry_like(path: Path) -> bool:
    """A file, or a link that does not lead to one (a loop, dangling): loading reports it, never skips it."""
    return path.is_file() or path.is_symlink()


def load_program(entry: Path, root: Path) -> Program:
    """Load the entry script and everything it runs. Raises InputError if the entry itself is unusable."""
    program = Program(root=root, entry=_display(entry, root))
    with payload_budget():  # total decompressed bytes over the whole program, not per payload
        _load_file(program, entry, role="entry", seen=set())
    return program


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def inside(path: Path, root: Path) -> bool:
    """True if `path`, with symlinks resolved, stays inside `root`."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def _load_file(program: Program, path: Path, role: str, seen: set[Path]) -> None:
    display = _display(path, program.root)
    problem = path_problem(path)  # a link loop or FIFO: named as such, before resolve() or open() trip on it
    if problem:
        raise InputError(display, problem)
    resolved = path.resolve()
    if resolved in seen:
        return
    seen.add(resolved)
    if not inside(path, program.root):
        raise InputError(display, "path escapes the audited folder (symlink or '..'); refused")
    source = read_source(path, display)
    tree = parse_python(source.text, display)
    outer = CodeUnit(display, source.text, tree, role)
    program.units.append(outer)
    payload_info = _add_payloads(program, outer, depth=1)
    program.files.append(
        AuditedFile(display, source.sha256, source.line_count, source.raw_bytes, role, payload_info)
    )
    for unit in [outer, *[u for u in program.units if u.path == display and u.in_payload]]:
        refs = _sibling_refs(unit, path, program.root)
        resolved = {r.line for r in refs if r.kind == "exec"}
        program.opaque = [(u, c) for u, c in program.opaque if not (u is unit and c.lineno in resolved)]
        for ref in refs:
            program.siblings.append(ref)
            target = program.root / ref.target
            if ref.kind in ("import", "exec") and target.suffix == ".py" and target.is_file():
                try:
                    _load_file(program, target, role="module", seen=seen)
                except InputError as exc:
                    program.problems.append(InputProblem(exc.path, exc.detail))


def _add_payloads(program: Program, unit: CodeUnit, depth: int) -> dict | None:
    """Unwrap payloads of `unit` recursively; return the payload summary of the outermost one."""
    payloads = find_payloads(unit.tree, unit.label)
    program.opaque.extend((unit, call) for call in opaque_execs(unit.tree, {id(p.exec_node) for p in payloads}))
    summary = None
    for payload in payloads:
        if depth > MAX_NESTING:
            raise InputError(unit.path, f"payload nesting deeper than {MAX_NESTING} levels: refused")
        text = source_text(payload.text, None, f"{unit.path} (payload)").text  # already decoded as Python would
        wrapper_line = payload.wrapper_line if not unit.in_payload else unit.wrapper_line
        tree = parse_python(text, f"{unit.path} (payload at line {payload.wrapper_line})")
        inner = CodeUnit(unit.path, text, tree, unit.role, True, wrapper_line, payload.codec)
        program.units.append(inner)
        _add_payloads(program, inner, depth + 1)
        if summary is None:
            summary = {
                "wrapper_line": payload.wrapper_line,
                "codec": payload.codec,
                "lines": count_lines(text),
                "bytes": len(text.encode("utf-8")),
            }
    return summary


# --- sibling references -------------------------------------------------------------------------


def _sibling_refs(unit: CodeUnit, file_path: Path, root: Path) -> list[SiblingRef]:
    folder = file_path.parent
    refs: list[SiblingRef] = []

    def add(kind: str, name: str, node: ast.AST) -> None:
        target = folder / name
        if target.exists() or kind == "exec":
            refs.append(SiblingRef(unit.path, node.lineno, kind, _display(target, root), unit.in_payload))  # type: ignore[attr-defined]

    for node in tree_nodes(unit.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                mod = _module_file(folder, alias.name)
                if mod:
                    add("import", mod, node)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level in (0, 1):
            mod = _module_file(folder, node.module)
            if mod:
                add("import", mod, node)
        elif isinstance(node, ast.Call):
            _call_refs(node, file_path, add)
    _native_refs(unit, folder, add)
    return refs


def _module_file(folder: Path, dotted: str) -> str | None:
    parts = dotted.split(".")
    as_file = Path(*parts).with_suffix(".py")
    if (folder / as_file).is_file():
        return as_file.as_posix()
    as_pkg = Path(*parts) / "__init__.py"
    if (folder / as_pkg).is_file():
        return as_pkg.as_posix()
    return None


_C_SUFFIXES = (".c", ".cc", ".cpp", ".cu", ".cuh", ".h", ".hpp")


def _call_refs(node: ast.Call, file_path: Path, add) -> None:  # type: ignore[no-untyped-def]
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name in ("exec", "run_path") and node.args:
        path = _opened_path(node.args[0], file_path) if name == "exec" else static_path(node.args[0], file_path)
        if path:
            add("exec", path, node)


def _native_refs(unit: CodeUnit, folder: Path, add) -> None:  # type: ignore[no-untyped-def]
    """String literals naming a sibling C/CUDA source or shared library (compiled or loaded at run time)."""
    for node in tree_nodes(unit.tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 300):
            continue
        value = node.value
        kind = "c-source" if value.endswith(_C_SUFFIXES) else "shared-library" if value.endswith(".so") else None
        if kind is None or "\n" in value:
            continue
        for candidate in (value, Path(value).name):
            if not candidate.startswith(("/", "..")) and (folder / candidate).is_file():
                stmt = node
                while not hasattr(stmt, "lineno") and getattr(stmt, "pg_parent", None) is not None:
                    stmt = stmt.pg_parent  # type: ignore[attr-defined]
                add(kind, candidate, stmt)
                break


def _opened_path(node: ast.expr, file_path: Path) -> str | None:
    """`open(P).read()` / `Path(P).read_text()` -> P, when P is static."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("read", "read_text"):
        inner = node.func.value
        if isinstance(inner, ast.Call) and inner.args:
            callee = inner.func
            cname = callee.id if isinstance(callee, ast.Name) else callee.attr if isinstance(callee, ast.Attribute) else ""
            if cname in ("open", "Path"):
                return static_path(inner.args[0], file_path)
        if node.func.attr == "read_text":
            return static_path(inner, file_path)
    return None


def static_path(node: ast.expr, file_path: Path) -> str | None:
    """Evaluate simple path expressions relative to the script's folder; None when not static."""
    value = _path_value(node, file_path)
    if value is None:
        return None
    value = os.path.normpath(value)
    base = os.path.normpath(str(file_path.parent))
    if os.path.isabs(value):
        rel = os.path.relpath(value, base)
    else:
        rel = value
    return None if rel.startswith("..") else Path(rel).as_posix()


def _path_value(node: ast.expr, file_path: Path) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if len(node.value) < 300 else None
    if isinstance(node, ast.Name) and node.id == "__file__":
        return str(file_path)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = _path_value(node.left, file_path), _path_value(node.right, file_path)
        return os.path.join(left, right) if left is not None and right is not None else None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = _path_value(node.value, file_path)
        return os.path.dirname(inner) if inner is not None else None
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    args = [_path_value(a, file_path) for a in node.args]
    if isinstance(func, ast.Attribute):
        if func.attr == "replace" and len(args) == 2:
            base = _path_value(func.value, file_path)
            if base is not None and None not in args:
                return base.replace(args[0], args[1])  # type: ignore[arg-type]
        if func.attr == "with_name" and len(args) == 1 and args[0] is not None:
            base = _path_value(func.value, file_path)
            return os.path.join(os.path.dirname(base), args[0]) if base is not None else None
        if func.attr in ("dirname", "abspath", "realpath", "resolve") and len(node.args) <= 1:
            base = args[0] if node.args else _path_value(func.value, file_path)
            if base is None:
                return None
            return os.path.dirname(base) if func.attr == "dirname" else base
        if func.attr == "join" and args and None not in args:
            return os.path.join(*args)  # type: ignore[arg-type]
    if isinstance(func, ast.Name) and func.id in ("Path", "str") and len(args) == 1:
        return args[0]
    return None

"""A script or record folder -> the program that runs: code units with their trees, payloads unwrapped.

A folder is audited as one program: the entry script plus the sibling modules it imports or execs
(`import ngram_tilt`, `exec(open(__file__.replace("train_gpt.py", "train_gpt_decode.py")).read())`).
Every unit keeps the path of the committed file it came from and, for payload code, the wrapper line.
"""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pgaudit.errors import InputError
from pgaudit.findings import AuditedFile, InputProblem, Location
from pgaudit.source.guards import (
    SourceText,
    count_lines,
    decode_source,
    path_problem,
    payload_budget,
    read_source,
    source_text,
)
from pgaudit.source.parse import parse_python, tree_nodes
from pgaudit.source.staticval import NotStatic
from pgaudit.source.unwrap import MAX_NESTING, Unwrapped, unwrap

# Entry scripts in the order a folder is searched; early records used nonstandard names (R29).
ENTRY_NAMES = ("train_gpt.py", "train_gpt_mlx.py")
ENTRY_GLOBS = ("train_gpt*.py", "train_*.py", "train*.py")
# A compressed code file beside a wrapper is < 200 KB; model artifacts (MBs) are never read.
MAX_READ_BYTES = 1024 * 1024
# archives that zipimport reads modules from when they are on sys.path
_ZIP_SUFFIXES = (".zip", ".egg", ".whl", ".pyz")
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
    # `__name__` while the unit runs: "__main__" for the entry and for files it execs (exec shares the
    # namespace, so their main block is live), the module name for imports; None: unknown (may be main)
    run_name: str | None = "__main__"

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
    kind: str  # "import", "exec", "run" (a script launched as a process), "c-source", "shared-library", "unresolved"
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
    # why an opaque exec was not audited, by id of the call: a wrapper that does not decode says why
    opaque_reasons: dict[int, str] = field(default_factory=dict)

    def opaque_reason(self, call: ast.Call) -> str | None:
        return self.opaque_reasons.get(id(call))

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
    _listing.cache_clear()  # folder listings are cached for one load only: files may change between audits
    with payload_budget():  # total decompressed bytes over the whole program, not per payload
        _load_file(program, entry, role="entry", seen=set())
    return program


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        pass
    try:  # one side absolute (a path computed from `__file__`), the other as pgaudit was given it
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return path.name


def inside(path: Path, root: Path) -> bool:
    """True if `path`, with symlinks resolved, stays inside `root`."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def _load_file(program: Program, path: Path, role: str, seen: set[Path], run_name: str | None = "__main__") -> None:
    display = _display(path, program.root)
    member = _zip_member(path)
    if member is not None:  # a module inside a zip archive on sys.path (zipimport)
        _load_zip_member(program, member[0], member[1], role, seen, run_name)
        return
    problem = path_problem(path)  # a link loop or FIFO: named as such, before resolve() or open() trip on it
    if problem:
        raise InputError(display, problem)
    resolved = path.resolve()
    if resolved in seen:
        return
    seen.add(resolved)
    if not inside(path, program.root):
        raise InputError(display, "path escapes the audited folder (symlink or '..'); refused")
    _load_source(program, read_source(path, display), display, path, role, seen, run_name)


def _load_source(
    program: Program, source: SourceText, display: str, path: Path, role: str, seen: set[Path], run_name: str | None
) -> None:
    tree = parse_python(source.text, display)
    outer = CodeUnit(display, source.text, tree, role, run_name=run_name)
    program.units.append(outer)
    # `__file__` is the absolute path of the script, whatever path pgaudit was given (relative or not)
    found: list[tuple[CodeUnit, Unwrapped]] = []
    payload_info = _add_payloads(program, outer, Path(os.path.abspath(path)), depth=1, found=found)
    program.files.append(
        AuditedFile(display, source.sha256, source.line_count, source.raw_bytes, role, payload_info)
    )
    for unit, unwrapped in found:
        unseen: list[tuple[ast.AST, str]] = []
        refs = _sibling_refs(unit, unwrapped, Path(os.path.abspath(path)), program.root, unseen)
        for node, reason in unseen:
            program.opaque.append((unit, node))  # type: ignore[arg-type]
            program.opaque_reasons[id(node)] = reason
        for ref, name in refs:
            program.siblings.append(ref)
            target = program.root / ref.target
            # an imported module is a .py file; an exec'd or launched file runs whatever its name (`notes.txt`)
            runs = (ref.kind == "import" and target.suffix == ".py") or ref.kind in ("exec", "run")
            if runs and (target.is_file() or _zip_member(target) is not None):
                if name == "":  # exec'd: runs under the exec'ing unit's name
                    name = unit.run_name
                try:
                    _load_file(program, target, role="module", seen=seen, run_name=name)
                except InputError as exc:
                    program.problems.append(InputProblem(exc.path, exc.detail))


def _zip_member(path: Path) -> tuple[Path, str] | None:
    """(archive, member) when `path` names a file inside a zip archive (`bundle.zip/pkg/mod.py`)."""
    for parent in path.parents:
        if parent.suffix.lower() in _ZIP_SUFFIXES and parent.is_file():
            return parent, path.relative_to(parent).as_posix()
    return None


def _zip_names(archive: Path) -> set[str]:
    import zipfile  # only folders that put a zip on sys.path need it

    try:
        with zipfile.ZipFile(archive) as zf:
            return set(zf.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return set()


def _load_zip_member(
    program: Program, archive: Path, member: str, role: str, seen: set[Path], run_name: str | None
) -> None:
    display = f"{_display(archive, program.root)}/{member}"
    key = Path(f"{archive.resolve()}/{member}")
    if key in seen:
        return
    seen.add(key)
    if not inside(archive, program.root):
        raise InputError(display, "path escapes the audited folder (symlink or '..'); refused")
    import zipfile

    try:
        with zipfile.ZipFile(archive) as zf:
            info = zf.getinfo(member)
            if info.file_size > MAX_READ_BYTES:
                raise InputError(display, f"archive member is {info.file_size:,} bytes, over the limit for a script")
            with zf.open(info) as handle:
                data = handle.read(MAX_READ_BYTES + 1)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, RuntimeError, NotImplementedError) as exc:
        raise InputError(display, f"cannot read the archive member: {exc}") from None
    if len(data) > MAX_READ_BYTES:
        raise InputError(display, "archive member grew past the limit for a script while being read")
    _load_source(program, decode_source(data, display), display, archive / member, role, seen, run_name)


def _reader(root: Path) -> Callable[[str, bool], object]:
    """Read a file the code opens (a compressed payload beside the script): inside the folder, bounded."""

    def read(path: str, binary: bool) -> object:
        target = Path(path)
        if not target.is_absolute() or not inside(target, root) or not target.is_file():
            raise NotStatic
        try:
            if target.stat().st_size > MAX_READ_BYTES:
                raise NotStatic  # a model artifact, not a code payload: never decompress it
            data = target.read_bytes()
        except OSError:
            raise NotStatic from None
        if binary:
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise NotStatic from None

    def glob(pattern: str) -> list[str]:
        """`glob.glob(P)` for an absolute pattern inside the folder: the code files it would list."""
        import glob as globmod

        if not os.path.isabs(pattern) or not inside(Path(os.path.dirname(pattern)), root):
            raise NotStatic
        found = sorted(p for p in globmod.glob(pattern) if inside(Path(p), root))
        if len(found) > 64:
            raise NotStatic
        return found

    read.glob = glob  # type: ignore[attr-defined]
    return read


def _add_payloads(
    program: Program, unit: CodeUnit, file: Path, depth: int, found: list[tuple[CodeUnit, Unwrapped]]
) -> dict | None:
    """Unwrap payloads of `unit` recursively; return the payload summary of the outermost one."""
    unwrapped = unwrap(unit.tree, unit.label, str(file), _reader(program.root.resolve()))
    found.append((unit, unwrapped))
    program.opaque.extend((unit, call) for call in unwrapped.opaque)
    for call, kind, value in unwrapped.file_refs:
        if kind == "unresolved":
            program.opaque.append((unit, call))
            what = "a module" if isinstance(call.func, ast.Name) or "module" in ast.unparse(call.func) else "code from a path"
            program.opaque_reasons[id(call)] = f"loads {what} pgaudit cannot resolve statically (`{value}`)"
    for call, what in _inline_native(unit):
        program.opaque.append((unit, call))
        program.opaque_reasons[id(call)] = f"compiles {what} that pgaudit does not audit (native code)"
    for bad in unwrapped.undecodable:
        program.opaque.append((unit, bad.exec_node))
        program.opaque_reasons[id(bad.exec_node)] = bad.reason
    summary = None
    for stmt, codec, text in unwrapped.extracted:  # decoded sources written out and run by path at run time
        try:
            tree = parse_python(source_text(text, None, unit.path).text, unit.path)
        except InputError:
            continue  # not Python (a C++ source, a separator-joined bundle): the opaque exec still warns
        wrapper_line = stmt.lineno if not unit.in_payload else unit.wrapper_line
        program.units.append(CodeUnit(unit.path, text, tree, unit.role, True, wrapper_line, codec, run_name=None))
    for payload in unwrapped.payloads:
        if depth > MAX_NESTING:
            raise InputError(unit.path, f"payload nesting deeper than {MAX_NESTING} levels: refused")
        wrapper_line = payload.wrapper_line if not unit.in_payload else unit.wrapper_line
        try:
            text = source_text(payload.text, None, f"{unit.path} (payload)").text  # already decoded as Python would
            tree = parse_python(text, f"{unit.path} (payload at line {payload.wrapper_line})")
        except InputError as exc:  # a payload that is not Python: the wrapper did not yield auditable code
            program.opaque.append((unit, payload.exec_node))
            program.opaque_reasons[id(payload.exec_node)] = f"the decoded payload ({payload.codec}) is not Python: {exc.detail}"
            continue
        run_name = unit.run_name if payload.namespace_name is None else payload.namespace_name
        inner = CodeUnit(unit.path, text, tree, unit.role, True, wrapper_line, payload.codec, run_name=run_name)
        program.units.append(inner)
        _add_payloads(program, inner, file, depth + 1, found)
        if summary is None:
            summary = {
                "wrapper_line": payload.wrapper_line,
                "codec": payload.codec,
                "lines": count_lines(text),
                "bytes": len(text.encode("utf-8")),
            }
    return summary


# --- sibling references -------------------------------------------------------------------------


def _sibling_refs(
    unit: CodeUnit, unwrapped: Unwrapped, file_path: Path, root: Path, unseen: list[tuple[ast.AST, str]] | None = None
) -> list[tuple[SiblingRef, str | None]]:
    """Sibling files the unit runs, each with the `__name__` it runs under ("" = the exec'ing unit's).
    Imports that resolve to compiled code (an extension module's `.so`, bytecode without its source) are
    refs to native code or, for bytecode, appended to `unseen` as (node, reason): not audited, and said so."""
    folder = file_path.parent
    refs: list[tuple[SiblingRef, str | None]] = []
    unseen = [] if unseen is None else unseen

    def add(kind: str, name: str, node: ast.AST, run_name: str | None = None) -> None:
        target = Path(os.path.normpath(folder / name))
        if target.exists() or _zip_member(target) is not None or kind in ("exec", "unresolved"):
            ref = SiblingRef(unit.path, node.lineno, kind, _display(target, root), unit.in_payload)  # type: ignore[attr-defined]
            refs.append((ref, Path(name).stem if run_name is None else run_name))

    dirs = [folder, *[folder / d for d in (_relative(p, folder) for p in unwrapped.search_dirs) if d]]

    def module_file(dotted: str) -> str | None:  # the folder first, then what the code adds to sys.path
        for base in dirs:
            found = _module_file(base, dotted)
            if found:
                return (base.relative_to(folder) / found).as_posix() if base != folder else found
        return None

    def compiled(dotted: str, node: ast.AST) -> None:
        """No source for the module: an extension module or bytecode in the folder is what the import runs."""
        for base in dirs:
            found = _compiled_module(base, dotted)
            if found is None:
                continue
            rel = (base.relative_to(folder) / found).as_posix() if base != folder else found
            if rel.endswith((".pyc", ".pyo")):
                unseen.append((node, f"imports `{dotted}` from compiled bytecode `{rel}` without its source: pgaudit audits Python source only"))
            else:
                add("shared-library", rel, node)
            return

    def imported(dotted: str, node: ast.AST, kind: str, run_name: str | None) -> None:
        mod = module_file(dotted)
        if mod:
            add(kind, mod, node, run_name)
        else:
            compiled(dotted, node)

    for node in tree_nodes(unit.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported(alias.name, node, "import", alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level in (0, 1):
            imported(node.module, node, "import", node.module)
        elif isinstance(node, ast.ImportFrom) and node.module is None and node.level == 1:
            for alias in node.names:  # `from . import inner` inside a package
                if alias.name != "*":
                    imported(alias.name, node, "import", alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:  # `from ..common import x`: up the package
            up = folder
            for _ in range(node.level - 1):
                up = up.parent
            if not inside(up, root):
                continue
            names = [node.module] if node.module else [a.name for a in node.names if a.name != "*"]
            for dotted in names:
                found = _module_file(up, dotted)
                if found:
                    add("import", os.path.relpath(up / found, folder), node, dotted)

    for call, dotted, kind in unwrapped.module_refs:
        imported(dotted, call, "import" if kind == "import" else "exec", _run_name(kind, dotted))
    for call, kind, value in unwrapped.file_refs:
        if kind == "unresolved":
            continue  # reported as opaque by _add_payloads
        rel = _relative(value, folder)
        sibling_kind = {"import": "import", "process": "run"}.get(kind, "exec")
        if rel is not None:
            add(sibling_kind, rel, call, _run_name(kind, Path(rel).stem))
        else:  # outside the folder: PG405 names it as code whose bytes cannot be counted
            outside = os.path.relpath(os.path.normpath(value), folder)
            refs.append((SiblingRef(unit.path, call.lineno, sibling_kind, outside, unit.in_payload), None))
    _native_refs(unit, folder, lambda kind, name, node: add(kind, name, node, None))
    return refs


def _run_name(kind: str, module: str) -> str | None:
    if kind == "exec":
        return ""
    if kind == "process":  # `python P` runs P as a script
        return "__main__"
    if kind.startswith("run:"):
        return None if kind == "run:?" else kind[4:]
    return module


def _relative(value: str, folder: Path) -> str | None:
    """A path the code computed, relative to the script's folder; None when it leaves the folder."""
    value = os.path.normpath(value)
    rel = os.path.relpath(value, os.path.normpath(str(folder))) if os.path.isabs(value) else value
    return None if rel.startswith("..") else Path(rel).as_posix()


def _module_file(folder: Path, dotted: str) -> str | None:
    parts = dotted.split(".")
    if folder.suffix.lower() in _ZIP_SUFFIXES and folder.is_file():  # zipimport
        names = _zip_names(folder)
        for candidate in ("/".join(parts) + ".py", "/".join(parts) + "/__init__.py"):
            if candidate in names:
                return candidate
        return None
    as_file = Path(*parts).with_suffix(".py")
    if (folder / as_file).is_file():
        return as_file.as_posix()
    as_pkg = Path(*parts) / "__init__.py"
    if (folder / as_pkg).is_file():
        return as_pkg.as_posix()
    return None


def _compiled_module(folder: Path, dotted: str) -> str | None:
    """An extension module (`name.cpython-311-x86_64-linux-gnu.so`, `name.so`, `name.pyd`) or bytecode
    (`name.pyc`, `__pycache__/name.*.pyc`) that an import of `dotted` loads when no source exists."""
    parts = dotted.split(".")
    base = folder.joinpath(*parts[:-1]) if len(parts) > 1 else folder
    name = parts[-1]
    for sub in ("", "__pycache__"):
        for entry in _listing(base / sub if sub else base):
            stem, _, suffix = entry.partition(".")
            if stem != name or not suffix:
                continue
            if (sub == "" and suffix.endswith(("so", "pyd"))) or suffix.endswith("pyc"):
                return (base / sub / entry).relative_to(folder).as_posix() if sub else (base / entry).relative_to(folder).as_posix()
    return None


@functools.lru_cache(maxsize=256)
def _listing(folder: Path) -> tuple[str, ...]:
    """The names in a folder (cached: every library import of a script asks about the same folders)."""
    try:
        return tuple(sorted(os.listdir(folder)))
    except OSError:
        return ()


_C_SUFFIXES = (".c", ".cc", ".cpp", ".cu", ".cuh", ".h", ".hpp")


# APIs that compile native code from source strings in the script (no file to count or name)
_INLINE_NATIVE = {"load_inline": "inline C++/CUDA source (torch load_inline)", "RawKernel": "an inline CUDA kernel",
                  "RawModule": "an inline CUDA module", "SourceModule": "an inline CUDA module (pycuda)"}  # fmt: skip


def _inline_native(unit: CodeUnit) -> list[tuple[ast.Call, str]]:
    found = []
    for node in tree_nodes(unit.tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in _INLINE_NATIVE:
                found.append((node, _INLINE_NATIVE[name]))
    return found


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

"""Fingerprints of the code that runs: one per function, method, class body and module body.

The AST is normalised so that what does not change behaviour does not change the fingerprint:
- every identifier the program binds (locals, parameters, functions, classes, globals, attributes assigned on
  objects or declared in class bodies, keyword names of its own functions) is renamed canonically, by order
  of first occurrence within the entry (alpha-renaming);
- import aliases are replaced by what they import (`F.cross_entropy` -> `torch.nn.functional.cross_entropy`),
  and import statements themselves are dropped (their effect is in the uses);
- docstrings and annotations are dropped; comments and formatting are gone with the AST;
- definition order does not matter (each definition is its own entry; a module body is the sorted multiset
  of its normalised top-level statements);
- the exec of a self-extracting payload is dropped: the payload's code is fingerprinted instead.
What does count: constants, operators, calls and attributes of external names, control flow, decorators.

Each entry also carries a multiset of statement hashes with every bound name erased, so that a changed or
renamed function can still be paired with its closest counterpart (similarity, not identity).
"""

from __future__ import annotations

import ast
import hashlib
import re
import zlib
from dataclasses import dataclass, field

from pgaudit.source.parse import tree_nodes
from pgaudit.source.program import Program

FORMAT = 1  # bump when the normalisation changes: cached indexes are rebuilt

_HOLE = re.compile(r"\x01([^\x02]*)\x02")
_SKIP_FIELDS = {"ctx", "type_comment", "annotation", "returns", "type_params", "kind"}


@dataclass
class Entry:
    """One fingerprinted piece of running code."""

    key: str  # "train_gpt.py::GPT.forward" (path :: qualname), unique within a program
    path: str
    qualname: str  # "<module>" for a module body, "Cls" for a class body
    kind: str  # "function", "method", "class", "module"
    fingerprint: str
    lines: int
    line: int
    end_line: int
    in_payload: bool = False
    wrapper_line: int | None = None
    shingles: list[int] = field(default_factory=list)  # statement hashes, names erased, sorted

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    def to_dict(self) -> dict:
        return {
            "key": self.key, "path": self.path, "qualname": self.qualname, "kind": self.kind,
            "fingerprint": self.fingerprint, "lines": self.lines, "line": self.line, "end_line": self.end_line,
            "in_payload": self.in_payload, "wrapper_line": self.wrapper_line, "shingles": self.shingles,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Entry:
        return cls(**data)


@dataclass
class ProgramPrint:
    """The fingerprints of one program (a submission's entry script and everything it runs)."""

    entries: list[Entry] = field(default_factory=list)
    texts: dict[str, tuple[list[int], list[str]]] = field(default_factory=dict)  # key -> (numbers, lines)
    def_nodes: dict[int, str] = field(default_factory=dict)  # id(def node) -> key (not stored)

    @property
    def fingerprint(self) -> str:
        """The whole program: the sorted multiset of its entries' fingerprints."""
        return _digest("\n".join(sorted(e.fingerprint for e in self.entries)))

    @property
    def total_lines(self) -> int:
        return sum(e.lines for e in self.entries)

    def by_key(self) -> dict[str, Entry]:
        return {e.key: e for e in self.entries}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


# --- program-wide name tables -------------------------------------------------------------------------


@dataclass
class _Names:
    bound: set[str] = field(default_factory=set)  # names the program binds
    attrs: set[str] = field(default_factory=set)  # attribute names the program assigns or declares
    params: set[str] = field(default_factory=set)  # parameter names of the program's own functions
    aliases: dict[str, str] = field(default_factory=dict)  # import alias -> dotted origin (external only)


def _program_names(program: Program) -> _Names:
    names = _Names()
    sibling_modules = {u.path.rsplit("/", 1)[-1].removesuffix(".py") for u in program.units if u.role == "module"}
    interesting = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.Global, ast.Nonlocal,
                   ast.ExceptHandler, ast.Import, ast.ImportFrom)
    for unit in program.units:
        for node in tree_nodes(unit.tree):
            kind = type(node)
            if kind is ast.Name:
                if type(node.ctx) is not ast.Load:  # type: ignore[attr-defined]
                    names.bound.add(node.id)  # type: ignore[attr-defined]
                continue
            if kind is ast.Attribute:
                if type(node.ctx) is not ast.Load:  # type: ignore[attr-defined]
                    names.attrs.add(node.attr)  # type: ignore[attr-defined]
                continue
            if kind not in interesting:
                continue
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.bound.add(node.name)
                a = node.args
                for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                    if arg is not None:
                        names.bound.add(arg.arg)
                        names.params.add(arg.arg)
            elif isinstance(node, ast.Lambda):
                a = node.args
                for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                    if arg is not None:
                        names.bound.add(arg.arg)
            elif isinstance(node, ast.ClassDef):
                names.bound.add(node.name)
                for stmt in node.body:
                    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        names.attrs.add(stmt.name)
                    elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
                        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                        for t in targets:
                            for n in ast.walk(t):
                                if isinstance(n, ast.Name):
                                    names.attrs.add(n.id)
            elif isinstance(node, ast.Global | ast.Nonlocal):
                names.bound.update(node.names)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.bound.add(node.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    if top in sibling_modules:
                        names.bound.add(alias.asname or top)
                    elif alias.asname:
                        names.aliases[alias.asname] = alias.name
                    else:
                        names.aliases[top] = top
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                sibling = node.level > 0 or module.split(".")[0] in sibling_modules
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    local = alias.asname or alias.name
                    if sibling:
                        names.bound.add(local)
                    else:
                        names.aliases[local] = f"{module}.{alias.name}"
    # An import alias rebound by the program is the program's own name.
    for name in list(names.aliases):
        if name in names.bound:
            del names.aliases[name]
    return names


# --- normalisation ------------------------------------------------------------------------------------------


class _Dumper:
    """AST -> compact text with bound names as holes (`\\x01name\\x02`); statement hashes collected."""

    def __init__(self, names: _Names) -> None:
        self.names = names
        self.shingles: list[int] = []

    def name(self, ident: str) -> str:
        if ident in self.names.aliases:
            return "E:" + self.names.aliases[ident]
        if ident in self.names.bound:
            return f"\x01{ident}\x02"
        return ident

    def dump(self, node: ast.AST | None) -> str:
        if node is None:
            return "~"
        kind = type(node)
        special = _SPECIAL.get(kind)
        if special is not None:
            return special(self, node)
        fields = _FIELDS.get(kind)
        if fields is None:
            fields = _FIELDS[kind] = tuple(f for f in kind._fields if f not in _SKIP_FIELDS)
        parts = [kind.__name__, "("]
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                if value and isinstance(value[0], ast.stmt):
                    parts.append(self.body(value))
                else:
                    parts.append("[" + ",".join(self.dump(v) if isinstance(v, ast.AST) else repr(v) for v in value) + "]")
            elif isinstance(value, ast.AST):
                parts.append(self.dump(value))
            else:
                parts.append(repr(value))
            parts.append(",")
        parts.append(")")
        text = "".join(parts)
        if isinstance(node, ast.stmt):
            self.shingle(text)
        return text

    def shingle(self, text: str) -> None:
        self.shingles.append(zlib.crc32(_HOLE.sub("_", text).encode("utf-8", "surrogatepass")))

    def _name(self, node: ast.Name) -> str:
        return self.name(node.id)

    def _constant(self, node: ast.Constant) -> str:
        return f"{type(node.value).__name__}:{node.value!r}"

    def _attribute(self, node: ast.Attribute) -> str:
        attr = f"\x01.{node.attr}\x02" if node.attr in self.names.attrs else node.attr
        return f"{self.dump(node.value)}.{attr}"

    def _arg(self, node: ast.arg) -> str:
        return f"\x01{node.arg}\x02"

    def _keyword(self, node: ast.keyword) -> str:
        if node.arg is None:
            return f"**{self.dump(node.value)}"
        kw = f"\x01{node.arg}\x02" if node.arg in self.names.params else node.arg
        return f"{kw}={self.dump(node.value)}"

    def _def(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
        text = self.definition(node, with_name=True)
        self.shingle(text)
        return text

    def _annassign(self, node: ast.AnnAssign) -> str:  # the annotation is dropped: `x: int = 1` is `x = 1`
        text = f"Assign({self.dump(node.target)},{self.dump(node.value)})"
        self.shingle(text)
        return text

    def _import(self, node: ast.stmt) -> str:
        return "Import"

    def _global(self, node: ast.Global | ast.Nonlocal) -> str:
        return type(node).__name__ + "(" + ",".join(f"\x01{n}\x02" for n in node.names) + ")"

    def _except(self, node: ast.ExceptHandler) -> str:
        holder = f"\x01{node.name}\x02" if node.name else "~"
        return f"Except({self.dump(node.type)},{holder},{self.body(node.body)})"

    def body(self, stmts: list[ast.stmt]) -> str:
        return "{" + ";".join(self.dump(s) for s in _strip_docstring(stmts)) + "}"

    def definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, with_name: bool,
                   skip_defs: bool = False) -> str:
        decorators = ",".join(self.dump(d) for d in node.decorator_list)
        name = f"\x01{node.name}\x02" if with_name else ""
        if isinstance(node, ast.ClassDef):
            bases = ",".join(self.dump(b) for b in [*node.bases, *node.keywords])
            body = [s for s in node.body if not (skip_defs and isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))]
            return f"Class[{decorators}]{name}({bases}){self.body(body)}"
        kind = "AsyncDef" if isinstance(node, ast.AsyncFunctionDef) else "Def"
        return f"{kind}[{decorators}]{name}({self.dump(node.args)}){self.body(node.body)}"


_FIELDS: dict[type, tuple[str, ...]] = {}
_SPECIAL = {
    ast.Name: _Dumper._name, ast.Constant: _Dumper._constant, ast.Attribute: _Dumper._attribute,
    ast.arg: _Dumper._arg, ast.keyword: _Dumper._keyword, ast.FunctionDef: _Dumper._def,
    ast.AsyncFunctionDef: _Dumper._def, ast.ClassDef: _Dumper._def, ast.AnnAssign: _Dumper._annassign,
    ast.Import: _Dumper._import, ast.ImportFrom: _Dumper._import, ast.Global: _Dumper._global,
    ast.Nonlocal: _Dumper._global, ast.ExceptHandler: _Dumper._except,
}  # fmt: skip


def _dropped(stmt: ast.stmt, first: ast.stmt, wrapper: bool) -> bool:
    """Imports (their effect is in the uses), the module docstring, and a wrapper's exec of its payload."""
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return True
    if stmt is first and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return True
    return wrapper and _execs_decoded(stmt)


def _execs_decoded(stmt: ast.stmt) -> bool:
    """`exec(L.decompress(B.b85decode("...")))`: the exec of a payload, whose code is its own unit."""
    for node in ast.walk(stmt):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval"):
            if node.args and isinstance(node.args[0], ast.Call):
                return True
    return False


def _strip_docstring(stmts: list[ast.stmt]) -> list[ast.stmt]:
    if stmts and isinstance(stmts[0], ast.Expr) and isinstance(stmts[0].value, ast.Constant) and isinstance(stmts[0].value.value, str):
        return stmts[1:]
    return stmts


def canonical(text: str) -> str:
    """Replace each bound-name hole by its order of first occurrence: `_0`, `_1`, ... (attributes `._0`)."""
    order: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        ident = match.group(1)
        found = order.get(ident)
        if found is None:
            found = order[ident] = ("." if ident.startswith(".") else "") + f"_{len(order)}"
        return found

    return _HOLE.sub(rename, text)


# --- building the prints ---------------------------------------------------------------------------------


def fingerprint_program(program: Program) -> ProgramPrint:
    """Every function, method, class body and module body of the program's units (payloads unwrapped)."""
    names = _program_names(program)
    out = ProgramPrint()
    wrapped = {f.path for f in program.files if f.payload}
    for unit in program.units:
        wrapper = unit.path in wrapped
        top: list[tuple[str, ast.stmt]] = []
        shingles: list[int] = []
        module_lines = 0
        for stmt in unit.tree.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                _add_definition(out, unit, stmt, "", names)
            elif not _dropped(stmt, unit.tree.body[0], wrapper):
                dumper = _Dumper(names)
                top.append((_guarded(lambda d=dumper, s=stmt: d.dump(s), unit, stmt), stmt))
                shingles += dumper.shingles
                module_lines += (stmt.end_lineno or stmt.lineno) - stmt.lineno + 1
        if top:
            key = _unique(out, f"{unit.path}::<module>")
            first, last = top[0][1], top[-1][1]
            out.entries.append(Entry(
                key, unit.path, "<module>", "module", _digest("\n".join(sorted(t for t, _ in top))), module_lines,
                first.lineno, last.end_lineno or last.lineno, unit.in_payload, unit.wrapper_line, sorted(shingles),
            ))
            numbers = [n for _, s in top for n in range(s.lineno, (s.end_lineno or s.lineno) + 1)]
            out.texts[key] = (numbers, [unit.line_text(n) for n in numbers])
    return out


def _add_definition(out: ProgramPrint, unit, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,  # type: ignore[no-untyped-def]
                    prefix: str, names: _Names) -> None:
    qualname = prefix + node.name
    dumper = _Dumper(names)
    if isinstance(node, ast.ClassDef):
        text = _guarded(lambda: dumper.definition(node, with_name=False, skip_defs=True), unit, node)
        defs = [s for s in node.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
        own = [s for s in node.body if s not in defs]
        lines = 1 + sum((s.end_lineno or s.lineno) - s.lineno + 1 for s in own)
        kind = "class"
    else:
        text = _guarded(lambda: dumper.definition(node, with_name=False), unit, node)
        lines = (node.end_lineno or node.lineno) - _start(node) + 1
        kind = "method" if prefix else "function"
        defs = []
    key = _unique(out, f"{unit.path}::{qualname}")
    start, end = _start(node), node.end_lineno or node.lineno
    entry = Entry(key, unit.path, qualname, kind, _digest(text), lines, start, end, unit.in_payload,
                  unit.wrapper_line, sorted(dumper.shingles))
    out.entries.append(entry)
    out.def_nodes[id(node)] = key
    if isinstance(node, ast.ClassDef):
        out.texts[key] = _class_text(unit, node, defs)
    else:
        out.texts[key] = (list(range(start, end + 1)), [unit.line_text(n) for n in range(start, end + 1)])
    for sub in defs:
        _add_definition(out, unit, sub, qualname + ".", names)


def _guarded(dump, unit, node: ast.AST) -> str:  # type: ignore[no-untyped-def]
    """The canonical text; for code nested too deeply to walk, the source text itself (no renaming)."""
    try:
        return canonical(dump())
    except RecursionError:
        end = getattr(node, "end_lineno", None) or node.lineno  # type: ignore[attr-defined]
        return "raw:" + "\n".join(unit.line_text(n) for n in range(node.lineno, end + 1))  # type: ignore[attr-defined]


def _class_text(unit, node: ast.ClassDef, defs: list[ast.stmt]) -> tuple[list[int], list[str]]:  # type: ignore[no-untyped-def]
    skip: set[int] = set()
    for d in defs:
        skip.update(range(_start(d), (d.end_lineno or d.lineno) + 1))
    numbers = [n for n in range(_start(node), (node.end_lineno or node.lineno) + 1) if n not in skip]
    return numbers, [unit.line_text(n) for n in numbers]


def _start(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])  # type: ignore[attr-defined]


def _unique(out: ProgramPrint, key: str) -> str:
    """Conditional or repeated definitions (`if X: def f` / `else: def f`) get `#2`, `#3`."""
    taken = {e.key for e in out.entries}
    if key not in taken:
        return key
    n = 2
    while f"{key}#{n}" in taken:
        n += 1
    return f"{key}#{n}"

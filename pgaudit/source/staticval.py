"""A tiny static interpreter for the expressions that wrappers and loaders are built from.

Self-extracting scripts and sibling loaders compute what they run from literals: `p = "..."; p += "..."`,
`"".join(CHUNKS)`, `blob.replace(b"\\n", b"")`, `os.path.join(os.path.dirname(__file__), "x.py")`,
`Path(__file__).parent / "x.py"`. This module evaluates exactly those pure operations over literals, with
the names bound earlier in the same scope, and raises NotStatic for anything else. Codec calls are
delegated to a callback (unwrap.py owns them); nothing is imported, executed or written.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Callable
from typing import Any

from pgaudit.source.parse import tree_nodes

# Never let a literal computation grow past what a record could hold (a whole record is < 200 KB).
MAX_VALUE_CHARS = 64 * 1024 * 1024
MAX_CALL_SITES = 200


class NotStatic(Exception):
    """The expression is not a pure computation over literals and known bindings."""


class CodecFailure(Exception):
    """A decode or decompress step over literals failed: the wrapper is corrupt or uses a missing codec."""


class Failed:
    """A name bound to a computation whose codec step failed; using it re-raises the failure."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class PathValue(str):
    """A string that came from a `pathlib.Path` expression, so `/`, `.parent`, `.with_name` apply."""


class FileText(str):
    """The text of a file the code reads (`open(P).read()`): exec'ing it runs that file, a sibling."""

    path: str = ""


class ModuleRef(str):
    """A module or one of its functions reached without an import statement: `__import__("zlib")`,
    `importlib.import_module("lzma")`, `getattr(base64, "b64" + "decode")`. The string is the dotted name,
    and calling it is calling that function (only the known pure ones are ever evaluated)."""


class FileHandle:
    """`open(P, mode)` bound by `with ... as f` or assigned: `.read()` reads P (through the callback)."""

    def __init__(self, path: str, binary: bool) -> None:
        self.path = path
        self.binary = binary


# Modules whose members the interpreter knows (paths and codecs); other imports stay unknown.
KNOWN_MODULES = {
    "os", "os.path", "pathlib", "base64", "binascii", "lzma", "zlib", "gzip", "bz2", "codecs", "json",
    "zstandard", "zstd", "brotli", "importlib", "importlib.util", "runpy", "builtins", "subprocess", "sys", "glob",
}  # fmt: skip


def import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin for the known modules (`import lzma as L` -> {"L": "lzma"},
    `from os.path import join` -> {"join": "os.path.join"}), wherever the import statement is."""
    aliases: dict[str, str] = {}
    for node in tree_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in KNOWN_MODULES:
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module in KNOWN_MODULES and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    aliases.setdefault("os", "os")  # `os.path.join(...)` is read as such even where the import is elsewhere
    return aliases


def qualified(func: ast.expr, aliases: dict[str, str]) -> str | None:
    """`L.decompress` -> "lzma.decompress", `os.path.join` -> "os.path.join", `__import__("zlib").x`."""
    if isinstance(func, ast.Name):
        if func.id in aliases:
            return aliases[func.id]
        return func.id if func.id in ("open", "compile", "str", "bytes", "bytearray", "__import__") else None
    if isinstance(func, ast.Attribute):
        base = func.value
        if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "__import__":
            if base.args and isinstance(base.args[0], ast.Constant) and base.args[0].value in KNOWN_MODULES:
                return f"{base.args[0].value}.{func.attr}"
            return None
        if isinstance(base, ast.Name) and base.id in ("bytes", "bytearray") and func.attr == "fromhex":
            return "bytes.fromhex"
        if isinstance(base, ast.Call) and not base.args:  # `zstandard.ZstdDecompressor().decompress`
            maker = qualified(base.func, aliases)
            return f"{maker}.{func.attr}" if maker is not None else None
        inner = qualified(base, aliases)
        if inner is not None and (inner in KNOWN_MODULES or inner.rsplit(".", 1)[0] in KNOWN_MODULES):
            return f"{inner}.{func.attr}"
    return None


CodecHook = Callable[[str, ast.Call, list[Any], dict[str, Any]], Any]
ReadHook = Callable[[str, bool], Any]


class Interpreter:
    """Evaluates expressions in an environment of names bound earlier in the scope."""

    def __init__(self, aliases: dict[str, str], codec: CodecHook, read: ReadHook | None, file: str | None):
        self.aliases = aliases
        self.codec = codec  # (qualified name, call, args, kwargs) -> value, or raises NotStatic
        self.read = read  # (absolute path, binary) -> bytes/str, or raises NotStatic
        self.env: dict[str, Any] = {}
        # module-level helpers whose body is one `return <expr>` (`def here(n): return os.path.join(...)`)
        self.functions: dict[str, ast.FunctionDef] = {}
        self.depth = 0
        if file is not None:
            self.env["__file__"] = file

    def child(self) -> Interpreter:
        other = Interpreter(self.aliases, self.codec, self.read, None)
        other.env = dict(self.env)
        other.functions = dict(self.functions)
        other.depth = self.depth
        return other

    # --- statements -------------------------------------------------------------------------------

    def bind(self, stmt: ast.stmt) -> None:
        """Apply the bindings of one simple statement; a binding that cannot be evaluated forgets the name."""
        if isinstance(stmt, ast.Assign):
            value = self._try(stmt.value)
            for target in stmt.targets:
                self._assign(target, value)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self._assign(stmt.target, self._try(stmt.value))
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            name = stmt.target.id
            if name in self.env and isinstance(stmt.op, ast.Add):
                right = self._try(stmt.value)
                try:
                    self.env[name] = _checked(self.env[name] + right) if right is not _UNKNOWN else _UNKNOWN
                except TypeError:
                    self.env[name] = _UNKNOWN
            else:
                self.env[name] = _UNKNOWN
            if self.env[name] is _UNKNOWN:
                del self.env[name]
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                if item.optional_vars is not None:
                    self._assign(item.optional_vars, self._try(item.context_expr))
        elif isinstance(stmt, ast.For | ast.AsyncFor):
            for node in ast.walk(stmt.target):
                if isinstance(node, ast.Name):
                    self.env.pop(node.id, None)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.env.pop(stmt.name, None)
            self.functions.pop(stmt.name, None)
            if isinstance(stmt, ast.FunctionDef) and _straight_line(stmt) is not None:
                self.functions[stmt.name] = stmt
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self._mutate(stmt.value)

    def _mutate(self, call: ast.Call) -> None:
        """`parts.append("...")` / `parts.extend([...])` on a list bound in the scope: payloads assembled
        over several statements. Anything else a list's method does forgets the name."""
        func = call.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            return
        name = func.value.id
        if not isinstance(self.env.get(name), list):
            return
        if func.attr in ("append", "extend") and len(call.args) == 1 and not call.keywords:
            item = self._try(call.args[0])
            if item is _UNKNOWN or isinstance(item, Failed) or (func.attr == "extend" and not isinstance(item, list | tuple)):
                del self.env[name]
                return
            self.env[name] = _checked(self.env[name] + ([item] if func.attr == "append" else list(item)))
        elif func.attr not in ("copy", "count", "index"):
            del self.env[name]

    def _assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            if value is _UNKNOWN:
                self.env.pop(target.id, None)
            else:
                self.env[target.id] = value
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            # `mod.__file__ = join(HERE, "scoring.txt")` on a local object: read back as `mod.__file__`
            key = f"{target.value.id}.{target.attr}"
            if value is _UNKNOWN:
                self.env.pop(key, None)
            else:
                self.env[key] = value
        elif isinstance(target, ast.Tuple | ast.List):
            values = value if isinstance(value, list | tuple) and len(value) == len(target.elts) else None
            for i, elt in enumerate(target.elts):
                self._assign(elt, values[i] if values is not None else _UNKNOWN)

    def _try(self, node: ast.expr) -> Any:
        try:
            return self.eval(node)
        except NotStatic:
            return _UNKNOWN
        except CodecFailure as exc:
            return Failed(str(exc))

    # --- expressions ------------------------------------------------------------------------------

    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str | bytes | int | float | bool) or node.value is None:
                return node.value
            raise NotStatic
        if isinstance(node, ast.Name):
            if node.id in self.env:
                value = self.env[node.id]
                if isinstance(value, Failed):
                    raise CodecFailure(value.reason)
                return value
            if node.id in ("exec", "eval"):  # the builtins, bound to another name or passed around
                return ModuleRef(f"builtins.{node.id}")
            if node.id == "__builtins__":
                return ModuleRef("builtins")
            raise NotStatic
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.eval(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise NotStatic
            return {self.eval(k): self.eval(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self.eval(node.operand)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return -value if isinstance(node.op, ast.USub) else value
            raise NotStatic
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Attribute):
            return self._attribute(node)
        if isinstance(node, ast.JoinedStr):
            return "".join(self._fstring_part(v) for v in node.values)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.GeneratorExp | ast.ListComp):
            return self._comprehension(node)
        raise NotStatic

    def _comprehension(self, node: ast.GeneratorExp | ast.ListComp) -> list[Any]:
        """`(b ^ 0x5A for b in raw)`, `[chr(c - 3) for c in codes]`: one `for` over a static sequence, no `if`.
        Over bytes, the element is computed once per byte value (256 evaluations) and looked up."""
        if len(node.generators) != 1:
            raise NotStatic
        gen = node.generators[0]
        if gen.ifs or gen.is_async or not isinstance(gen.target, ast.Name):
            raise NotStatic
        items = self.eval(gen.iter)
        if isinstance(items, range):
            items = list(items)
        if not isinstance(items, bytes | bytearray | list | tuple | str) or len(items) > MAX_COMPREHENSION:
            raise NotStatic
        inner = self.child()
        name = gen.target.id
        if isinstance(items, bytes | bytearray) and len(items) > 256:
            table = []
            for value in range(256):
                inner.env[name] = value
                table.append(inner.eval(node.elt))
            return [table[b] for b in items]
        out = []
        for value in items:
            inner.env[name] = value
            out.append(inner.eval(node.elt))
        return out

    def _fstring_part(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.FormattedValue) and node.format_spec is None and node.conversion == -1:
            value = self.eval(node.value)
            if isinstance(value, str | int):
                return str(value)
        raise NotStatic

    def _binop(self, node: ast.BinOp) -> Any:
        left, right = self.eval(node.left), self.eval(node.right)
        try:
            if isinstance(node.op, ast.Add) and isinstance(left, str | bytes | list | tuple):
                return _checked(str(left) + right if isinstance(left, str) else left + right)
            if isinstance(node.op, ast.Div) and isinstance(left, PathValue) and isinstance(right, str):
                return PathValue(os.path.join(left, right))
            if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
                if type(node.op) in _INT_OPS and (type(node.op) is not ast.LShift or 0 <= right <= 64):
                    return _INT_OPS[type(node.op)](left, right)
        except TypeError:
            pass
        raise NotStatic

    def _subscript(self, node: ast.Subscript) -> Any:
        value = self.eval(node.value)
        if isinstance(node.slice, ast.Slice):
            parts = [self.eval(p) if p is not None else None for p in (node.slice.lower, node.slice.upper, node.slice.step)]
            if isinstance(value, str | bytes | list | tuple) and all(p is None or isinstance(p, int) for p in parts):
                return value[slice(*parts)]
            raise NotStatic
        key = self.eval(node.slice)
        try:
            return value[key]
        except (KeyError, IndexError, TypeError):
            raise NotStatic from None

    def _attribute(self, node: ast.Attribute) -> Any:
        if isinstance(node.value, ast.Name) and f"{node.value.id}.{node.attr}" in self.env:
            return self.env[f"{node.value.id}.{node.attr}"]
        qual = qualified(node, self.aliases)
        if qual in ("builtins.exec", "builtins.eval"):
            return ModuleRef(qual)
        if qual is not None and qual.startswith("lzma."):
            import lzma

            const = getattr(lzma, qual.split(".", 1)[1], None)
            if isinstance(const, int):
                return const  # FORMAT_RAW, FILTER_LZMA2, PRESET_EXTREME
        value = self.eval(node.value)
        if isinstance(value, ModuleRef):
            return _module_ref(f"{value}.{node.attr}")
        if isinstance(value, PathValue):
            if node.attr == "parent":
                return PathValue(os.path.dirname(value))
            if node.attr == "name":
                return os.path.basename(value)
            if node.attr == "stem":
                return os.path.splitext(os.path.basename(value))[0]
        raise NotStatic

    def _call(self, node: ast.Call) -> Any:
        if any(isinstance(a, ast.Starred) for a in node.args):
            node = self._spread(node)  # `join(HERE, *PARTS)`, `_source(*PARTS)` with PARTS a static tuple
        if any(k.arg is None for k in node.keywords):
            raise NotStatic
        func = node.func
        qual = qualified(func, self.aliases)
        if qual is not None:
            args = [self.eval(a) for a in node.args]
            kwargs = {k.arg: self.eval(k.value) for k in node.keywords if k.arg}
            return self._function(qual, node, args, kwargs)
        if isinstance(func, ast.Name) and func.id == "Path":
            args = [self.eval(a) for a in node.args]
            if args and all(isinstance(a, str) for a in args):
                return PathValue(os.path.join(*args))
            raise NotStatic
        if isinstance(func, ast.Name) and func.id in ("chr", "ord", "len", "range") and func.id not in self.env:
            args = [self.eval(a) for a in node.args]
            if node.keywords:
                raise NotStatic
            if func.id == "chr" and len(args) == 1 and isinstance(args[0], int) and 0 <= args[0] < 0x110000:
                return chr(args[0])
            if func.id == "ord" and len(args) == 1 and isinstance(args[0], str) and len(args[0]) == 1:
                return ord(args[0])
            if func.id == "len" and len(args) == 1 and isinstance(args[0], str | bytes | bytearray | list | tuple | dict):
                return len(args[0])
            if func.id == "range" and 1 <= len(args) <= 3 and all(isinstance(a, int) and not isinstance(a, bool) for a in args):
                span = range(*args)
                if len(span) <= MAX_COMPREHENSION:
                    return span
            raise NotStatic
        if isinstance(func, ast.Name) and func.id == "map" and "map" not in self.env and len(node.args) == 2:
            fn = node.args[0]  # `"".join(map(chr, data))`: characters rebuilt from decoded bytes
            if not (isinstance(fn, ast.Name) and fn.id in ("chr", "str") and fn.id not in self.env) or node.keywords:
                raise NotStatic
            items = self.eval(node.args[1])
            if not isinstance(items, bytes | bytearray | list | tuple) or len(items) > MAX_COMPREHENSION:
                raise NotStatic
            if fn.id == "chr":
                if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 0x110000 for v in items):
                    raise NotStatic
                return [chr(v) for v in items]
            return [str(v) for v in items]
        if isinstance(func, ast.Name) and func.id in ("sorted", "list", "tuple") and func.id not in self.env:
            if len(node.args) != 1 or node.keywords:
                raise NotStatic
            items = self.eval(node.args[0])
            if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
                raise NotStatic
            return sorted(items) if func.id == "sorted" else list(items) if func.id == "list" else tuple(items)
        if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) == 2 and not node.keywords:
            owner, attr = self.eval(node.args[0]), self.eval(node.args[1])
            if isinstance(owner, ModuleRef) and isinstance(attr, str):
                return _module_ref(f"{owner}.{attr}")
            raise NotStatic
        if isinstance(func, ast.Name) and func.id in self.env and isinstance(self.env[func.id], ModuleRef):
            args = [self.eval(a) for a in node.args]
            kwargs = {k.arg: self.eval(k.value) for k in node.keywords if k.arg}
            return self._function(str(self.env[func.id]), node, args, kwargs)
        if isinstance(func, ast.Name) and func.id in self.functions and func.id not in self.env:
            return self._helper(self.functions[func.id], node)
        if not isinstance(func, ast.Attribute):
            raise NotStatic
        receiver = self.eval(func.value)
        if isinstance(receiver, ModuleRef):
            args = [self.eval(a) for a in node.args]
            kwargs = {k.arg: self.eval(k.value) for k in node.keywords if k.arg}
            return self._function(f"{receiver}.{func.attr}", node, args, kwargs)
        args = [self.eval(a) for a in node.args]
        kwargs = {k.arg: self.eval(k.value) for k in node.keywords if k.arg}
        return self._method(receiver, func.attr, args, kwargs, node)

    def _spread(self, node: ast.Call) -> ast.Call:
        """The call with each `*xs` replaced by the static items of xs (a few strings or numbers)."""
        args: list[ast.expr] = []
        for a in node.args:
            if not isinstance(a, ast.Starred):
                args.append(a)
                continue
            items = self.eval(a.value)
            if not isinstance(items, list | tuple) or len(items) > MAX_LOOP_ITEMS or not all(
                isinstance(v, str | bytes | int) for v in items
            ):
                raise NotStatic
            args += [ast.copy_location(ast.Constant(value=v), a) for v in items]
        return ast.copy_location(ast.Call(func=node.func, args=args, keywords=node.keywords), node)

    def _function(self, qual: str, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if qual in ("pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath") and args and all(isinstance(a, str) for a in args):
            return PathValue(os.path.join(*args))
        if qual in ("os.path.join", "posixpath.join") and args and all(isinstance(a, str) for a in args):
            return os.path.join(*args)
        if qual in ("os.path.dirname", "os.path.abspath", "os.path.realpath", "os.path.normpath", "os.path.basename"):
            if len(args) == 1 and isinstance(args[0], str):
                fn = {"os.path.dirname": os.path.dirname, "os.path.basename": os.path.basename}.get(qual, os.path.normpath)
                return fn(args[0])
            raise NotStatic
        if qual == "os.getcwd":
            raise NotStatic
        if qual in ("glob.glob", "glob.iglob") and len(args) == 1 and isinstance(args[0], str):
            lister = getattr(self.read, "glob", None)  # files inside the audited folder only
            if lister is None:
                raise NotStatic
            return lister(args[0])
        if qual in ("__import__", "importlib.import_module") and len(args) == 1 and isinstance(args[0], str):
            if args[0] in KNOWN_MODULES:
                return ModuleRef(args[0].split(".")[0] if qual == "__import__" else args[0])
            raise NotStatic
        if qual in ("os.environ.get", "os.getenv") and len(args) == 2 and isinstance(args[0], str):
            if isinstance(args[1], str | int | float) or args[1] is None:
                return args[1]  # the default environment: the variable is unset, its default is what runs
            raise NotStatic
        if qual == "open":
            return self._open(args, kwargs)
        if qual == "compile" and args:
            return args[0]
        if qual == "str":
            if len(args) == 1 and isinstance(args[0], str):
                return args[0]
            if len(args) >= 2 and isinstance(args[0], bytes | bytearray):
                return self.codec("bytes.decode", node, [args[0], *args[1:]], kwargs)
            raise NotStatic
        if qual in ("bytes", "bytearray"):
            if len(args) >= 2 and isinstance(args[0], str):
                return args[0].encode(args[1])
            if len(args) == 1 and isinstance(args[0], bytes | bytearray):
                return bytes(args[0])
            if len(args) == 1 and isinstance(args[0], list | tuple) and all(
                isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in args[0]
            ):  # `bytes([120, 156, ...])`: a payload spelled as integers
                return bytes(args[0])
            raise NotStatic
        if qual == "json.load" and len(args) == 1 and isinstance(args[0], FileHandle):
            args = [self._read(args[0].path, args[0].binary)]
            qual = "json.loads"
        if qual == "json.loads" and len(args) == 1 and isinstance(args[0], str | bytes):
            try:
                return json.loads(args[0])
            except ValueError:
                raise NotStatic from None
        return self.codec(qual, node, args, kwargs)

    def _helper(self, fn: ast.FunctionDef, node: ast.Call) -> Any:
        """A call of a module-level `def f(a, b=...): return <expr>`, its parameters bound to the arguments."""
        if self.depth >= 4 or any(k.arg is None for k in node.keywords):
            raise NotStatic
        params = [*fn.args.posonlyargs, *fn.args.args]
        if fn.args.kwarg or fn.args.kwonlyargs or (len(node.args) > len(params) and not fn.args.vararg):
            raise NotStatic
        inner = self.child()
        inner.depth = self.depth + 1
        for p in [*params, *fn.args.kwonlyargs]:
            inner.env.pop(p.arg, None)
        if fn.args.vararg:  # `def _source(*names)`: the extra positional arguments as a tuple
            inner.env[fn.args.vararg.arg] = tuple(self.eval(a) for a in node.args[len(params) :])
        defaults = dict(zip([p.arg for p in params[len(params) - len(fn.args.defaults):]], fn.args.defaults, strict=True))
        for p, arg in zip(params, node.args, strict=False):
            inner.env[p.arg] = self.eval(arg)
        for kw in node.keywords:
            if kw.arg not in [p.arg for p in params]:
                raise NotStatic
            inner.env[kw.arg] = self.eval(kw.value)
        for name, default in defaults.items():
            if name not in inner.env:
                inner.env[name] = self.eval(default)
        if any(p.arg not in inner.env for p in params):
            raise NotStatic
        body = _straight_line(fn)
        if body is None:
            raise NotStatic
        for stmt in body[:-1]:
            inner.bind(stmt)
        return inner.eval(body[-1].value)  # type: ignore[attr-defined,arg-type]

    def _open(self, args: list[Any], kwargs: dict[str, Any]) -> FileHandle:
        if not args or not isinstance(args[0], str):
            raise NotStatic
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        if not isinstance(mode, str) or any(c in mode for c in "wax+"):
            raise NotStatic
        return FileHandle(str(args[0]), "b" in mode)

    def _method(self, receiver: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        if isinstance(receiver, FileHandle) and name == "read" and not args:
            return self._read(receiver.path, receiver.binary)
        if isinstance(receiver, PathValue):
            if name == "read_bytes":
                return self._read(receiver, True)
            if name == "read_text":
                return self._read(receiver, False)
            if name in ("resolve", "absolute", "expanduser") and not args:
                return receiver
            if name == "with_name" and len(args) == 1 and isinstance(args[0], str):
                return PathValue(os.path.join(os.path.dirname(receiver), args[0]))
            if name == "with_suffix" and len(args) == 1 and isinstance(args[0], str):
                return PathValue(os.path.splitext(receiver)[0] + args[0])
            if name == "joinpath" and args and all(isinstance(a, str) for a in args):
                return PathValue(os.path.join(receiver, *args))
            if name == "open":
                return self._open([str(receiver), *args], kwargs)
        if isinstance(receiver, str | bytes | bytearray):
            if name == "decode" and isinstance(receiver, bytes | bytearray):
                return self.codec("bytes.decode", node, [receiver, *args], kwargs)
            if name == "encode" and isinstance(receiver, str):
                encoding = args[0] if args else kwargs.get("encoding", "utf-8")
                try:
                    return receiver.encode(encoding)
                except (LookupError, UnicodeError, TypeError):
                    raise NotStatic from None
            if name in ("replace", "strip", "lstrip", "rstrip", "split", "rsplit", "partition", "rpartition", "splitlines",
                        "join", "removeprefix", "removesuffix"):
                try:
                    return _checked(getattr(receiver, name)(*args, **kwargs))
                except (TypeError, ValueError):
                    raise NotStatic from None
        if isinstance(receiver, dict) and name == "get" and args:
            return receiver.get(args[0], args[1] if len(args) > 1 else None)
        raise NotStatic

    def _read(self, path: str, binary: bool) -> Any:
        if self.read is None:
            raise NotStatic
        data = self.read(path, binary)
        if isinstance(data, str):
            data = FileText(data)
            data.path = path
        return data


_INT_OPS: dict[type, Callable[[int, int], int]] = {
    ast.BitOr: int.__or__, ast.BitAnd: int.__and__, ast.BitXor: int.__xor__, ast.Add: int.__add__,
    ast.Sub: int.__sub__, ast.Mult: int.__mul__, ast.Mod: int.__mod__, ast.FloorDiv: int.__floordiv__,
    ast.RShift: int.__rshift__, ast.LShift: int.__lshift__,
}  # fmt: skip
MAX_COMPREHENSION = 1024 * 1024  # elements: a whole record is < 200 KB compressed


def _module_ref(dotted: str) -> ModuleRef:
    """A dotted name under a known module; anything else is not followed."""
    if dotted.split(".")[0] not in {m.split(".")[0] for m in KNOWN_MODULES}:
        raise NotStatic
    return ModuleRef(dotted)


def _straight_line(fn: ast.FunctionDef) -> list[ast.stmt] | None:
    """The body of a helper that computes a value without branching: (a docstring,) imports and simple
    assignments, then one `return <expr>` -- `def unmask(s, k): raw = b85decode(s); return bytes(...)`.
    Imports are dropped (their names are known module-wide); None for anything else."""
    if fn.decorator_list:
        return None
    body = [s for s in fn.body if not isinstance(s, ast.Import | ast.ImportFrom)]
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) == 1 and isinstance(body[0], ast.With) and len(body[0].items) == 1:
        # `with open(p) as fh: return fh.read()`: the handle bound, then the same body
        item = body[0].items[0]
        if not isinstance(item.optional_vars, ast.Name):
            return None
        bind = ast.copy_location(ast.Assign(targets=[item.optional_vars], value=item.context_expr), body[0])
        body = [bind, *body[0].body]
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        return None
    if not all(isinstance(s, ast.Assign | ast.AnnAssign | ast.AugAssign) for s in body[:-1]):
        return None
    return body


class _Unknown:
    pass


_UNKNOWN: Any = _Unknown()


def _checked(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple) and len(value) > MAX_VALUE_CHARS:
        raise NotStatic
    return value


MAX_LOOP_ITEMS = 16


def _static_items(stmt: ast.stmt, interp: Interpreter) -> list[str] | None:
    """The items of a `for NAME in <static list of strings>:` loop (file names, module names), else None."""
    if not (isinstance(stmt, ast.For) and isinstance(stmt.target, ast.Name)):
        return None
    try:
        value = interp.eval(stmt.iter)
    except (NotStatic, CodecFailure):
        return None
    if isinstance(value, list | tuple) and 0 < len(value) <= MAX_LOOP_ITEMS and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def scope_walk(
    body: list[ast.stmt], interp: Interpreter, visit: Callable[[ast.stmt, Interpreter], None]
) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, Interpreter]]:
    """Walk a scope's statements in order: `visit` each statement with the bindings made before it, then
    apply its bindings. Compound statements are entered (both branches of an `if` bind, in order); function
    bodies are returned, to be walked later with the scope's final bindings."""
    functions: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, Interpreter]] = []
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            functions.append((stmt, interp))
            interp.bind(stmt)
            continue
        if isinstance(stmt, ast.ClassDef):
            for inner in stmt.body:
                if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                    functions.append((inner, interp))
            interp.bind(stmt)
            continue
        visit(stmt, interp)
        interp.bind(stmt)
        items = _static_items(stmt, interp)
        if items is not None:  # `for f in sorted(glob.glob(HERE + "/stage_*.py")):`: the body once per item
            target = stmt.target.id  # type: ignore[attr-defined]
            for i, item in enumerate(items):
                interp.env[target] = item
                found = scope_walk(stmt.body, interp, visit)  # type: ignore[attr-defined]
                functions += found if i == 0 else []
            interp.env.pop(target, None)
            functions += scope_walk(stmt.orelse, interp, visit)  # type: ignore[attr-defined]
            continue
        for field in ("body", "orelse", "finalbody"):
            block = getattr(stmt, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                functions += scope_walk(block, interp, visit)
        for handler in getattr(stmt, "handlers", []) or []:
            functions += scope_walk(handler.body, interp, visit)
        for case in getattr(stmt, "cases", []) or []:
            functions += scope_walk(case.body, interp, visit)
    return functions

"""Static unwrapping of self-extracting scripts.

Many records commit `train_gpt.py` as `exec(L.decompress(B.b85decode("..."), format=L.FORMAT_RAW,
filters=[{"id": L.FILTER_LZMA2}]))`: the code that runs is inside the literal. Real wrappers vary the shape:
multi-line and concatenated literals, payloads assembled over several statements (`p = "..."; p += "..."`,
`"".join(CHUNKS)`), a variable holding the decoded source then `exec(compile(S, F, "exec"))`, `codecs`,
`bytes.fromhex`, brotli/zstd, a compressed sibling file read through `__file__`, and bundles of modules
installed by a helper (`_install("pkg.mod", "<source>")` whose body execs its parameter). We recognise
decode and decompress calls by what the names are bound to (`import lzma as L`, `from zlib import
decompress`), evaluate only those whitelisted pure functions over literals (staticval.py), cap the output,
and never exec. A wrapper whose payload cannot be rebuilt (corrupt data, a codec pgaudit lacks, a payload
that is not Python) is reported as undecodable with the reason, never silently skipped.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import codecs as _codecs
import hashlib
import lzma
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pgaudit.errors import InputError
from pgaudit.source.guards import current_payload_budget, decode_source
from pgaudit.source.parse import tree_nodes
from pgaudit.source.staticval import (
    MAX_CALL_SITES,
    CodecFailure,
    FileText,
    Interpreter,
    NotStatic,
    import_aliases,
    qualified,
    scope_walk,
)

MAX_PAYLOAD_BYTES = 8 * 1024 * 1024  # a whole record is < 200 KB; past a script's size limit is a bomb
MAX_NESTING = 4

_DECODERS: dict[str, Callable[[Any], bytes]] = {
    "base64.b85decode": base64.b85decode,
    "base64.b64decode": base64.b64decode,
    "base64.standard_b64decode": base64.standard_b64decode,
    "base64.urlsafe_b64decode": base64.urlsafe_b64decode,
    "base64.a85decode": base64.a85decode,
    "base64.b16decode": base64.b16decode,
    "base64.b32decode": base64.b32decode,
    "base64.decodebytes": base64.decodebytes,
    "binascii.a2b_base64": binascii.a2b_base64,
    "binascii.unhexlify": binascii.unhexlify,
    "binascii.a2b_hex": binascii.a2b_hex,
    "bytes.fromhex": bytes.fromhex,
}
_DECOMPRESSORS = {
    "lzma.decompress", "zlib.decompress", "gzip.decompress", "bz2.decompress", "brotli.decompress",
    "zstandard.decompress", "zstd.decompress", "zstandard.ZstdDecompressor.decompress",
    "zlib.decompressobj.decompress", "lzma.LZMADecompressor.decompress", "bz2.BZ2Decompressor.decompress",
}  # fmt: skip
# a decompressor object made with no arguments decompresses like the module function
_OBJECT_DECOMPRESSORS = {
    "zlib.decompressobj.decompress": "zlib.decompress", "lzma.LZMADecompressor.decompress": "lzma.decompress",
    "bz2.BZ2Decompressor.decompress": "bz2.decompress",
}  # fmt: skip
# codecs.decode(data, name): the bytes-to-bytes codecs wrappers use, by their normalized name
_CODECS_DECODE = {
    "hex": "hex", "hex_codec": "hex", "base64": "base64", "base64_codec": "base64", "base_64": "base64",
    "zlib": "zlib", "zip": "zlib", "zlib_codec": "zlib", "bz2": "bz2", "bz2_codec": "bz2",
    "rot13": "rot13", "rot_13": "rot13",
}  # fmt: skip


@dataclass(frozen=True)
class Payload:
    """Code found inside an `exec(...)` of decoded literals."""

    text: str
    wrapper_line: int  # line of the exec call (or of the call site that hands the code to it)
    codec: str  # e.g. "b85decode+lzma(raw)"
    exec_node: ast.Call
    # `__name__` while it runs when the exec gives it a namespace of its own (`exec(code, {"__name__": "x"})`;
    # a dict without the key leaves `__name__` to the builtins module); None: the exec'ing unit's namespace
    namespace_name: str | None = None


@dataclass(frozen=True)
class Undecodable:
    """A wrapper-shaped exec whose payload pgaudit could not rebuild: the code it runs was not audited."""

    exec_node: ast.Call
    reason: str


@dataclass
class Unwrapped:
    payloads: list[Payload] = field(default_factory=list)
    undecodable: list[Undecodable] = field(default_factory=list)
    opaque: list[ast.Call] = field(default_factory=list)  # exec/eval of code that is neither
    # `exec(open(P).read())`, `runpy.run_path(P)`, `spec_from_file_location(n, P)`,
    # `subprocess.run([sys.executable, P])`: (node, kind, path), kind "exec" (runs in the exec'ing namespace),
    # "run:NAME" (runpy: runs as __name__ NAME), "process" (a separate Python process runs P as a script),
    # "import" or "unresolved" (then path is the expression's text)
    file_refs: list[tuple[ast.Call, str, str]] = field(default_factory=list)
    # `importlib.import_module("m")`, `__import__("m")`, `runpy.run_module("m")`: (node, dotted name, kind)
    module_refs: list[tuple[ast.Call, str, str]] = field(default_factory=list)
    # folders the code puts on sys.path (`sys.path.insert(0, os.path.join(HERE, "lib"))`): imports search them
    search_dirs: list[str] = field(default_factory=list)
    # sources a wrapper decodes into a variable without exec'ing it there (it writes them to files and runs
    # one through a path pgaudit cannot follow): (assignment, codec, text); audited when an exec stays opaque
    extracted: list[tuple[ast.stmt, str, str]] = field(default_factory=list)


_Undecodable = CodecFailure


ReadFile = Callable[[str, bool], Any]


def find_payloads(tree: ast.Module, display: str) -> list[Payload]:
    """Every exec/eval in the module whose argument decodes statically to code; raise InputError for a
    wrapper that does not decode (the loader reports those as findings instead: see `unwrap`)."""
    result = unwrap(tree, display)
    if result.undecodable:
        raise InputError(display, result.undecodable[0].reason)
    return result.payloads


def opaque_execs(tree: ast.Module, payload_nodes: set[int]) -> list[ast.Call]:
    """exec/eval calls whose code pgaudit cannot see (not a literal and not a decodable payload)."""
    return [c for c in unwrap(tree, "<module>").opaque if id(c) not in payload_nodes]


def unwrap(tree: ast.Module, display: str, file: str | None = None, read: ReadFile | None = None) -> Unwrapped:
    """Walk the module scope by scope, evaluating each exec/eval argument and each loader call with the
    names bound before it. `file` is the absolute path of the script (for `__file__`); `read` reads a
    sibling file (absolute path, binary) or raises NotStatic."""
    aliases = import_aliases(tree)
    out = Unwrapped()
    decoded_ids: set[int] = set()
    derived: set[str] = set()  # names holding decoded text

    # the walk may evaluate one call twice (binding, then exec): decode (and charge the budget) once per call;
    # the same literal at another call is another payload and is charged again
    memo: dict[tuple[int, str], Any] = {}

    def codec(qual: str, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Any:
        data = args[0] if args else None
        if not isinstance(data, str | bytes | bytearray):
            return _apply_codec(qual, args, kwargs, display)
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
        key = (id(node), hashlib.sha256(raw).hexdigest() + repr(args[1:]) + repr(sorted(kwargs.items(), key=str)))
        if key not in memo:
            memo[key] = _apply_codec(qual, args, kwargs, display)
        return memo[key]

    interesting, codec_stmts = _interesting_statements(tree, aliases)
    if not interesting:  # no exec/eval and no loader: nothing to unwrap or follow
        return out

    def visit(stmt: ast.stmt, interp: Interpreter) -> None:
        if id(stmt) in interesting:
            for call in _own_calls(stmt):
                _visit_call(call, interp, out, decoded_ids, aliases)
        if isinstance(stmt, ast.Assign) and (id(stmt) in codec_stmts or _uses(stmt.value, derived)):
            if _record_extracted(stmt, interp, out):
                derived.update(n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name))

    top = Interpreter(aliases, codec, read, file)
    doc = ast.get_docstring(tree, clean=False)
    if doc is not None:  # `exec(zlib.decompress(b64decode(__doc__)))`: a payload kept as the docstring
        top.env["__doc__"] = doc
    pending = scope_walk(tree.body, top, visit)
    functions: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, Interpreter]] = []
    while pending:
        fn, outer = pending.pop(0)
        functions.append((fn, outer))
        inner = outer.child()
        for arg in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]:
            inner.env.pop(arg.arg, None)
        pending += scope_walk(fn.body, inner, visit)
    _bundled_modules(tree, functions, top, out, decoded_ids, aliases)
    _per_call_site(tree, functions, top, out, decoded_ids, aliases, interesting)
    for call in out.opaque:
        if id(call) not in decoded_ids and _wrapper_shaped(call, aliases):
            out.undecodable.append(Undecodable(call, _shape_reason(call, aliases)))
    undecodable_ids = {id(u.exec_node) for u in out.undecodable}
    out.opaque = [c for c in out.opaque if id(c) not in decoded_ids and id(c) not in undecodable_ids]
    exec_texts = {p.text for p in out.payloads}
    keep = out.opaque or out.file_refs or _written(tree, derived)  # written to a file: imported or run from there
    out.extracted = [e for e in out.extracted if e[2] not in exec_texts] if keep else []
    return out


_LOADERS = {
    "runpy.run_path", "runpy.run_module", "importlib.util.spec_from_file_location", "importlib.import_module",
    "importlib.machinery.SourceFileLoader", "__import__",
}  # fmt: skip
# calls that start another process: a Python script among their arguments runs as `__main__`
_LAUNCHERS = {
    "subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output", "subprocess.Popen",
    "os.system", "os.popen", "os.execv", "os.execvp", "os.execl", "os.execlp", "os.spawnv", "os.spawnl",
}  # fmt: skip


def _interesting_statements(tree: ast.Module, aliases: dict[str, str]) -> tuple[set[int], set[int]]:
    """Ids of the statements holding an exec/eval or loader call (visited), and of those holding a codec
    call (their decoded values are kept). One pass over the cached node list keeps big scripts fast."""
    interesting: set[int] = set()
    codec_stmts: set[int] = set()
    exec_names: set[str] = set()  # `run = exec`: calls of such names are decided after the pass
    named_calls: list[ast.Call] = []
    for node in tree_nodes(tree):
        if isinstance(node, ast.Assign) and _exec_shaped(node.value, set()):
            exec_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        is_exec = _exec_shaped(func, set())
        if not is_exec and isinstance(func, ast.Name) and func.id not in aliases:
            named_calls.append(node)
        qual = None if is_exec else qualified(func, aliases)
        is_codec = qual is not None and (qual in _DECODERS or qual in _DECOMPRESSORS or qual == "codecs.decode")
        launches = qual in _LAUNCHERS and _may_launch_python(node)
        if not (is_exec or is_codec or qual in _LOADERS or launches or _is_sys_path_add(func)):
            continue
        _mark(node, codec_stmts if is_codec else interesting)
    for node in named_calls:
        if node.func.id in exec_names:  # type: ignore[attr-defined]
            _mark(node, interesting)
    return interesting, codec_stmts


def _mark(node: ast.AST, into: set[int]) -> None:
    """Add the id of the statement that holds `node`."""
    stmt: ast.AST | None = node
    while stmt is not None and not isinstance(stmt, ast.stmt):
        stmt = getattr(stmt, "pg_parent", None)
    if stmt is not None:
        into.add(id(stmt))


def _may_launch_python(call: ast.Call) -> bool:
    """A process launch that may run a Python script: a `.py` or `python` string or `sys.executable` in it
    (`subprocess.run(["lrzip", ...])` is not worth walking the scope for)."""
    for node in ast.walk(call):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (".py" in node.value or "python" in node.value):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "executable":
            return True
    return False


def _exec_shaped(func: ast.AST, names: set[str]) -> bool:
    """A callee that may be exec/eval: the names themselves or an alias, `builtins.exec`, or any
    `getattr(...)` (its string is evaluated at the call: `getattr(__import__("builtins"), "ex" + "ec")`)."""
    if isinstance(func, ast.Name):
        return func.id in ("exec", "eval") or func.id in names
    if isinstance(func, ast.Attribute):
        return func.attr in ("exec", "eval") and isinstance(func.value, ast.Name) and func.value.id in ("builtins", "__builtins__")
    return isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "getattr"


def _written(tree: ast.Module, names: set[str]) -> bool:
    """Decoded text written out (`f.write(src)`, `Path(p).write_text(src)`): it runs from that file later."""
    for node in tree_nodes(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("write", "write_text", "write_bytes", "writelines")
            and any(_uses(arg, names) for arg in node.args)
        ):
            return True
    return False


def _uses(node: ast.expr, names: set[str]) -> bool:
    return bool(names) and any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def _record_extracted(stmt: ast.Assign, interp: Interpreter, out: Unwrapped) -> bool:
    """`_b = lzma.decompress(b85decode("..."))`, `parts = _b.decode().split(SEP)`: keep the decoded texts."""
    steps: list[str] = []
    interp.codec = _recording(interp.codec, steps)
    try:
        value = interp.eval(stmt.value)
    except (NotStatic, CodecFailure):
        return False
    finally:
        interp.codec = interp.codec.__wrapped__  # type: ignore[attr-defined]
    items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list | tuple) else [value]
    for item in items[:64]:
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError:
                continue
        if isinstance(item, str) and "\n" in item:
            out.extracted.append((stmt, "+".join(steps) or "extracted", item))
    return True


def _own_calls(stmt: ast.stmt) -> list[ast.Call]:
    """The calls of one statement, not those of the statements nested in its blocks or in nested scopes."""
    calls: list[ast.Call] = []
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        for _name, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            for child in children:
                if not isinstance(child, ast.AST) or isinstance(child, ast.stmt | ast.excepthandler | ast.match_case):
                    continue
                if isinstance(child, ast.Lambda):
                    continue
                if isinstance(child, ast.Call):
                    calls.append(child)
                stack.append(child)
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    return calls


def _exec_argument(call: ast.Call) -> ast.expr:
    arg = call.args[0]
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "compile" and arg.args:
        return arg.args[0]
    return arg


def _is_exec(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id in ("exec", "eval") and bool(call.args)


def _runs_code(call: ast.Call, interp: Interpreter) -> bool:
    """exec/eval however spelled: the builtin names, or a callee that evaluates to them."""
    if _is_exec(call):
        return True
    if not call.args or (not _exec_shaped(call.func, set()) and not isinstance(call.func, ast.Name)):
        return False
    from pgaudit.source.staticval import ModuleRef

    try:
        callee = interp.eval(call.func)
    except (NotStatic, CodecFailure):
        return False
    return isinstance(callee, ModuleRef) and callee in ("builtins.exec", "builtins.eval")


def _visit_call(call: ast.Call, interp: Interpreter, out: Unwrapped, decoded: set[int], aliases: dict[str, str]) -> None:
    if _runs_code(call, interp):
        arg = _exec_argument(call)
        opened = _opened_file(arg, interp)
        if opened is not None:  # exec(open(P).read()): the sibling file runs; program.py loads it
            if (call, "exec", opened) not in out.file_refs:  # a loop over files execs several through one call
                out.file_refs.append((call, "exec", opened))
            decoded.add(id(call))
            return
        if id(call) in decoded:
            return
        _evaluate_exec(call, arg, interp, out, decoded, call.lineno)
        if id(call) not in decoded and call not in out.opaque:
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                out.opaque.append(call)
        return
    qual = qualified(call.func, aliases) or (call.func.id if isinstance(call.func, ast.Name) else None)
    if not call.args and not call.keywords:
        return
    if not call.args and qual not in ("importlib.util.spec_from_file_location", "runpy.run_path",
                                      "importlib.machinery.SourceFileLoader"):  # fmt: skip
        return
    if _is_sys_path_add(call.func):
        try:
            value = interp.eval(call.args[-1])
        except (NotStatic, CodecFailure):
            return
        if isinstance(value, str):
            out.search_dirs.append(value)
        return
    if qual in _LAUNCHERS:
        script = _launched_script(call, interp)
        if script is not None:
            out.file_refs.append((call, "process", script))
        return
    if qual in ("runpy.run_path", "importlib.util.spec_from_file_location", "importlib.machinery.SourceFileLoader"):
        index = 0 if qual == "runpy.run_path" else 1
        keyword = {"runpy.run_path": "path_name", "importlib.util.spec_from_file_location": "location"}.get(qual, "path")
        where = call.args[index] if len(call.args) > index else next((k.value for k in call.keywords if k.arg == keyword), None)
        if where is not None:
            try:
                value = interp.eval(where)
            except (NotStatic, _Undecodable):
                value = None
            if isinstance(value, str):
                out.file_refs.append((call, _run_kind(call, interp, "<run_path>") if index == 0 else "import", value))
            else:
                out.file_refs.append((call, "unresolved", ast.unparse(where)[:80]))
    elif qual in ("importlib.import_module", "__import__", "runpy.run_module"):
        try:
            value = interp.eval(call.args[0])
        except (NotStatic, _Undecodable):
            value = None
        if isinstance(value, str) and value.startswith(".") and qual == "importlib.import_module":
            value = _absolute_module(value, call, interp)
        if isinstance(value, str):
            kind = _run_kind(call, interp, value) if qual == "runpy.run_module" else "import"
            out.module_refs.append((call, value, kind))
        else:  # a module chosen at run time: say that it was not followed
            out.file_refs.append((call, "unresolved", ast.unparse(call.args[0])[:80]))


def _absolute_module(name: str, call: ast.Call, interp: Interpreter) -> str | None:
    """`import_module(".core", package="stage.eval")` -> "stage.eval.core"; None when the package is unknown."""
    where = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "package"), None)
    try:
        package = interp.eval(where) if where is not None else None
    except (NotStatic, CodecFailure):
        return None
    if not isinstance(package, str) or not package:
        return None
    level = len(name) - len(name.lstrip("."))
    parts = package.split(".")
    if level - 1 >= len(parts):
        return None
    base = ".".join(parts[: len(parts) - (level - 1)])
    rest = name[level:]
    return f"{base}.{rest}" if rest else base


def _launched_script(call: ast.Call, interp: Interpreter) -> str | None:
    """The first `.py` path among a launcher's arguments: `[sys.executable, P, ...]` (each element evaluated on
    its own, `sys.executable` is not static), `os.execv(sys.executable, [...])`, or a shell command string."""
    import shlex

    items: list[ast.expr] = []
    for arg in call.args:
        items.extend(arg.elts if isinstance(arg, ast.List | ast.Tuple) else [arg])
    for item in items:
        try:
            value = interp.eval(item)
        except (NotStatic, CodecFailure):
            continue
        if not isinstance(value, str):
            continue
        try:
            words = shlex.split(value) if " " in value.strip() else [value]
        except ValueError:
            continue
        for word in words:
            if word.endswith(".py") and not word.startswith("-"):
                return word
    return None


def _is_sys_path_add(func: ast.expr) -> bool:
    """`sys.path.insert(...)` / `sys.path.append(...)`."""
    return (
        isinstance(func, ast.Attribute)
        and func.attr in ("insert", "append")
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "path"
        and isinstance(func.value.value, ast.Name)
        and func.value.value.id == "sys"
    )


def _run_kind(call: ast.Call, interp: Interpreter, default: str) -> str:
    """`runpy.run_path(P, run_name="__main__")` runs P's main block; the default name does not."""
    for kw in call.keywords:
        if kw.arg == "run_name":
            try:
                name = interp.eval(kw.value)
            except (NotStatic, CodecFailure):
                return "run:?"  # unknown: the main block may run
            return f"run:{name}" if isinstance(name, str) else "run:?"
    return f"run:{default}"


def _opened_file(arg: ast.expr, interp: Interpreter) -> str | None:
    """`open(P).read()`, `Path(P).read_text()`, `f.read()` of a `with open(P) as f` -> P, read as text."""
    if not (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr in ("read", "read_text")):
        return None
    from pgaudit.source.staticval import FileHandle, PathValue

    try:
        receiver = interp.eval(arg.func.value)
    except (NotStatic, _Undecodable, InputError):
        return None
    if isinstance(receiver, FileHandle):
        return receiver.path
    if isinstance(receiver, PathValue) and arg.func.attr == "read_text":
        return str(receiver)
    return None


def _evaluate_exec(
    call: ast.Call, arg: ast.expr, interp: Interpreter, out: Unwrapped, decoded: set[int], line: int
) -> None:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return  # exec("x = 1") of a readable literal is already visible code
    steps: list[str] = []
    interp.codec = _recording(interp.codec, steps)
    try:
        value = interp.eval(arg)
    except NotStatic:
        return
    except _Undecodable as exc:
        out.undecodable.append(Undecodable(call, str(exc)))
        decoded.add(id(call))
        return
    finally:
        interp.codec = interp.codec.__wrapped__  # type: ignore[attr-defined]
    if isinstance(value, bytes | bytearray):  # exec(bytes) decodes like a file (BOM, coding cookie); exec(str) does not
        try:
            value = decode_source(bytes(value), "payload").text
        except InputError as exc:
            out.undecodable.append(Undecodable(call, f"the payload exec'd at line {line} is not Python source: {exc.detail}"))
            decoded.add(id(call))
            return
    if isinstance(value, FileText) and not steps:  # exec of a file's text read into a variable
        out.file_refs.append((call, "exec", value.path))
        decoded.add(id(call))
        return
    if isinstance(value, str):
        out.payloads.append(Payload(value, line, "+".join(steps) or "literal", call, _namespace_name(call, interp)))
        decoded.add(id(call))


def _namespace_name(call: ast.Call, interp: Interpreter) -> str | None:
    """`exec(code, {"__name__": "stage"})` -> "stage"; `exec(code, {})` -> "builtins" (what `__name__` then
    finds); `exec(code)`, `exec(code, globals())` or a namespace pgaudit cannot rebuild -> None."""
    namespace = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "globals"), None)
    if namespace is None:
        return None
    try:
        value = interp.eval(namespace)
    except (NotStatic, CodecFailure):
        return None
    if not isinstance(value, dict):
        return None
    name = value.get("__name__", "builtins")
    return name if isinstance(name, str) else None


def _recording(codec: Callable[..., Any], steps: list[str]) -> Callable[..., Any]:
    def hook(qual: str, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Any:
        value = codec(qual, node, args, kwargs)
        if qual != "bytes.decode":
            steps.append(_step_name(qual, args, kwargs))
        return value

    hook.__wrapped__ = codec  # type: ignore[attr-defined]
    return hook


def _step_name(qual: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    if qual == "lzma.decompress":
        fmt = kwargs.get("format", args[1] if len(args) > 1 else lzma.FORMAT_AUTO)
        return "lzma(raw)" if fmt == lzma.FORMAT_RAW else "lzma"
    if qual == "codecs.decode" and len(args) > 1:
        return f"codecs:{args[1]}"
    if qual == "bytes.fromhex":
        return "fromhex"
    return qual.split(".")[-1] if qual.split(".")[-1] not in ("decompress",) else qual.split(".")[0]


def _bundled_modules(
    tree: ast.Module,
    functions: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, Interpreter]],
    top: Interpreter,
    out: Unwrapped,
    decoded: set[int],
    aliases: dict[str, str],
) -> None:
    """A function whose body execs (code derived from) its parameter, called with literal sources:
    `def _install(name, source): ... exec(compile(source, name, "exec"), mod.__dict__)` then
    `_install("pkg.mod", "<source>")`. Each call site's argument is a payload of that exec."""
    owners: dict[int, list[ast.Call]] = {}  # enclosing function -> its opaque execs
    for call in out.opaque:
        cur: ast.AST | None = getattr(call, "pg_parent", None)
        while cur is not None and not isinstance(cur, ast.FunctionDef | ast.AsyncFunctionDef):
            cur = getattr(cur, "pg_parent", None)
        if cur is not None:
            owners.setdefault(id(cur), []).append(call)
    for fn, outer in functions:
        execs = owners.get(id(fn), [])
        if not execs:
            continue
        for site, interp in _call_site_environments(fn, outer, tree, top, (NotStatic, _Undecodable)):
            for call in execs:
                _evaluate_exec(call, _exec_argument(call), interp, out, decoded, site.lineno)
    out.opaque = [c for c in out.opaque if id(c) not in decoded]


def _per_call_site(
    tree: ast.Module,
    functions: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, Interpreter]],
    top: Interpreter,
    out: Unwrapped,
    decoded: set[int],
    aliases: dict[str, str],
    interesting: set[int],
) -> None:
    """A loader or exec inside a helper whose path comes from the helper's parameters
    (`def load_module(name): spec_from_file_location(name, join(HERE, name + ".py"))`, `def include(n): with
    open(join(HERE, n)) as fh: exec(fh.read())`): walk the helper's body again once per call site, its
    parameters bound to that site's arguments, and keep what resolves there."""
    unresolved = {id(c) for c in out.opaque} | {id(c) for c, kind, _ in out.file_refs if kind == "unresolved"}
    if not unresolved:
        return
    owned: dict[int, set[int]] = {}
    for node in tree_nodes(tree):
        if isinstance(node, ast.Call) and id(node) in unresolved:
            cur: ast.AST | None = getattr(node, "pg_parent", None)
            while cur is not None and not isinstance(cur, ast.FunctionDef | ast.AsyncFunctionDef):
                cur = getattr(cur, "pg_parent", None)
            if cur is not None:
                owned.setdefault(id(cur), set()).add(id(node))
    resolved: set[int] = set()
    texts = {p.text for p in out.payloads}
    for fn, outer in functions:
        calls = owned.get(id(fn))
        if not calls:
            continue
        for site, interp in _call_site_environments(fn, outer, tree, top, (NotStatic, CodecFailure)):
            sub = Unwrapped()

            def visit(stmt: ast.stmt, it: Interpreter, sub: Unwrapped = sub, calls: set[int] = calls) -> None:
                if id(stmt) in interesting:
                    for call in _own_calls(stmt):
                        if id(call) in calls:
                            _visit_call(call, it, sub, set(), aliases)

            scope_walk(fn.body, interp, visit)
            for ref in sub.file_refs:
                if ref[1] != "unresolved":
                    out.file_refs.append(ref)
                    resolved.add(id(ref[0]))
            for payload in sub.payloads:
                resolved.add(id(payload.exec_node))
                if payload.text not in texts:
                    texts.add(payload.text)
                    out.payloads.append(
                        Payload(payload.text, site.lineno, payload.codec, payload.exec_node, payload.namespace_name)
                    )
            out.module_refs.extend(sub.module_refs)
    if resolved:
        decoded.update(resolved)
        out.opaque = [c for c in out.opaque if id(c) not in resolved]
        out.file_refs = [r for r in out.file_refs if not (r[1] == "unresolved" and id(r[0]) in resolved)]


_SHAPE_CALLS = {q.split(".")[-1] for q in [*_DECODERS, *_DECOMPRESSORS]} | {"fromhex", "decode"}


def _wrapper_shaped(call: ast.Call, aliases: dict[str, str]) -> bool:
    """An exec whose argument decodes or decompresses something: a self-extracting wrapper."""
    for node in ast.walk(call.args[0]):
        if isinstance(node, ast.Call):
            qual = qualified(node.func, aliases)
            if qual is not None and (qual in _DECODERS or qual in _DECOMPRESSORS or qual == "codecs.decode"):
                return True
    return False


def _shape_reason(call: ast.Call, aliases: dict[str, str]) -> str:
    names = []
    for node in ast.walk(call.args[0]):
        if isinstance(node, ast.Call):
            qual = qualified(node.func, aliases)
            if qual is not None and qual not in names:
                names.append(qual)
    return (
        f"self-extracting wrapper at line {call.lineno} ({' + '.join(names) or 'decode'}) whose input is not a "
        "literal pgaudit can rebuild statically"
    )


# --- codecs ----------------------------------------------------------------------------------------


def _apply_codec(qual: str, args: list[Any], kwargs: dict[str, Any], display: str) -> Any:
    if qual == "bytes.decode":
        data, encoding = args[0], (args[1] if len(args) > 1 else kwargs.get("encoding", "utf-8"))
        if not isinstance(encoding, str):
            raise NotStatic
        try:
            return bytes(data).decode(encoding)
        except UnicodeDecodeError:
            raise _Undecodable(f"payload does not decode as {encoding} text") from None
        except LookupError:
            raise NotStatic from None
    if qual == "codecs.decode" and args:
        return _codecs_decode(args, kwargs)
    if not args:
        raise NotStatic
    data = args[0]
    if qual in _DECODERS:
        if not isinstance(data, str | bytes | bytearray):
            raise NotStatic
        try:
            return _DECODERS[qual](data)
        except (ValueError, binascii.Error, TypeError) as exc:
            raise _Undecodable(f"payload literal does not {qual.split('.')[-1]}: {exc}") from None
    if qual in _DECOMPRESSORS or qual.endswith(".ZstdDecompressor.decompress"):
        if not isinstance(data, bytes | bytearray):
            raise NotStatic
        if qual in _OBJECT_DECOMPRESSORS:  # `.decompress(data, max_length)`: the second argument is no format
            return _decompress(_OBJECT_DECOMPRESSORS[qual], bytes(data), {}, [], [], display)
        return _decompress(qual, bytes(data), kwargs, args[1:], [], display)
    raise NotStatic


def _codecs_decode(args: list[Any], kwargs: dict[str, Any]) -> Any:
    data = args[0]
    name = args[1] if len(args) > 1 else kwargs.get("encoding", "utf-8")
    if not isinstance(name, str):
        raise NotStatic
    kind = _CODECS_DECODE.get(name.lower().replace("-", "_"))
    try:
        if kind == "rot13" and isinstance(data, str):
            return _codecs.decode(data, "rot13")
        if kind is not None and isinstance(data, bytes | bytearray | str):
            raw = data.encode("ascii") if isinstance(data, str) else bytes(data)
            if kind in ("zlib", "bz2"):
                return _decompress(f"{kind}.decompress", raw, {}, [], [], "<payload>")
            return _codecs.decode(raw, f"{kind}_codec")
        if isinstance(data, bytes | bytearray):
            return bytes(data).decode(name)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _Undecodable(f"payload does not codecs.decode as {name}: {exc}") from None
    except LookupError:
        raise NotStatic from None
    raise NotStatic


def _decompress(qual: str, data: bytes, kwargs: dict[str, Any], extra: list[Any], steps: list[str], display: str) -> bytes:
    budget = current_payload_budget()  # shared by every payload of the program (guards.payload_budget)
    cap = min(MAX_PAYLOAD_BYTES, budget.remaining()) if budget is not None else MAX_PAYLOAD_BYTES
    module = qual.split(".")[0]
    try:
        if qual == "lzma.decompress":
            fmt = kwargs.get("format", extra[0] if extra else lzma.FORMAT_AUTO)
            filters = kwargs.get("filters")
            dec: Any = lzma.LZMADecompressor(format=fmt, filters=filters)
            out = dec.decompress(data, max_length=cap + 1)
        elif qual in ("zlib.decompress", "gzip.decompress"):
            wbits = kwargs.get("wbits", extra[0] if extra else zlib.MAX_WBITS)
            if qual == "gzip.decompress":
                wbits = 16 + zlib.MAX_WBITS
            zdec = zlib.decompressobj(wbits)
            out = zdec.decompress(data, cap + 1)
        elif module == "bz2":
            out = bz2.BZ2Decompressor().decompress(data, max_length=cap + 1)
        elif module in ("zstandard", "zstd"):
            out = _zstd(data, cap)
        elif module == "brotli":
            out = _brotli(data, cap)
        else:
            raise NotStatic
    except (lzma.LZMAError, zlib.error, OSError, ValueError, TypeError) as exc:
        raise _Undecodable(f"payload does not decompress ({qual}): {exc}") from None
    if budget is not None:
        budget.charge(len(out), display)
    if len(out) > cap:
        raise InputError(
            display,
            f"payload decompresses to more than {cap // (1024 * 1024)} MB: refused as a decompression bomb",
        )
    return out


def _zstd(data: bytes, cap: int) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(data)
    try:
        return reader.read(cap + 1)
    except zstandard.ZstdError as exc:
        raise ValueError(str(exc)) from None


def _brotli(data: bytes, cap: int) -> bytes:
    try:
        import brotli  # optional: wrappers that use it are rare; without it they are reported undecodable
    except ImportError:
        raise _Undecodable("payload is brotli-compressed and the brotli module is not installed") from None
    dec = brotli.Decompressor()
    out = b""
    step = 1 << 20
    for start in range(0, len(data), step):
        try:
            out += dec.process(data[start : start + step])
        except brotli.error as exc:
            raise ValueError(str(exc)) from None
        if len(out) > cap:
            break
    return out


def _call_site_environments(
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    outer: Interpreter,
    tree: ast.Module,
    top: Interpreter,
    skip: tuple[type[Exception], ...],
) -> Iterator[tuple[ast.Call, Interpreter]]:
    """For each call of `fn` by name (at most MAX_CALL_SITES), an interpreter of its body's environment with the
    parameters bound to what that call passes; a call whose arguments do not evaluate statically is skipped."""
    params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args]]
    if not params:
        return
    sites = [
        n for n in tree_nodes(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == fn.name
    ][:MAX_CALL_SITES]  # fmt: skip
    for site in sites:
        interp = outer.child()
        for name in params:
            interp.env.pop(name, None)
        try:
            for name, arg in zip(params, site.args, strict=False):
                interp.env[name] = top.eval(arg)
            for kw in site.keywords:
                if kw.arg in params:
                    interp.env[kw.arg] = top.eval(kw.value)
        except skip:
            continue
        yield site, interp

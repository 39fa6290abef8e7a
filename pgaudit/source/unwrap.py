"""Static unwrapping of self-extracting scripts.

Many records commit `train_gpt.py` as `exec(L.decompress(B.b85decode("..."), format=L.FORMAT_RAW,
filters=[{"id": L.FILTER_LZMA2}]))`: the code that runs is inside the literal. We recognise the decode and
decompress calls by what the names are bound to (so `import lzma as L` and `from zlib import decompress`
both work), evaluate only those whitelisted pure functions on literals, cap the output, and never exec.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import lzma
import zlib
from dataclasses import dataclass
from typing import Any

from pgaudit.errors import InputError
from pgaudit.source.guards import current_payload_budget, decode_source
from pgaudit.source.parse import tree_nodes

MAX_PAYLOAD_BYTES = 8 * 1024 * 1024  # a whole record is < 200 KB; past a script's size limit is a bomb
MAX_NESTING = 4

_DECODERS = {
    "base64.b85decode": base64.b85decode,
    "base64.b64decode": base64.b64decode,
    "base64.standard_b64decode": base64.standard_b64decode,
    "base64.urlsafe_b64decode": base64.urlsafe_b64decode,
    "base64.a85decode": base64.a85decode,
    "base64.b16decode": base64.b16decode,
    "base64.b32decode": base64.b32decode,
    "binascii.a2b_base64": binascii.a2b_base64,
    "binascii.unhexlify": binascii.unhexlify,
}
_DECOMPRESSORS = {"lzma.decompress", "zlib.decompress", "gzip.decompress", "bz2.decompress"}
_CODEC_MODULES = {"base64", "binascii", "lzma", "zlib", "gzip", "bz2", "codecs"}


@dataclass(frozen=True)
class Payload:
    """Code found inside an `exec(...)` of decoded literals."""

    text: str
    wrapper_line: int  # line of the exec call in the enclosing code
    codec: str  # e.g. "b85decode+lzma(raw)"
    exec_node: ast.Call


class NotStatic(Exception):
    """The expression is not a pure decode/decompress of literals."""


def find_payloads(tree: ast.Module, display: str) -> list[Payload]:
    """Every `exec`/`eval(compile(...))` in the module whose argument decodes statically to code."""
    aliases = _import_aliases(tree)
    constants = _module_constants(tree)
    found: list[Payload] = []
    for node in tree_nodes(tree):
        if not (isinstance(node, ast.Call) and _callee(node) in ("exec", "eval") and node.args):
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Call) and _callee(arg) == "compile" and arg.args:
            arg = arg.args[0]
        if _is_plain_literal(arg, constants):
            continue  # exec("x = 1") of a readable literal is already visible code
        steps: list[str] = []
        try:
            value = _evaluate(arg, aliases, constants, steps, display)
        except NotStatic:
            continue
        if isinstance(value, bytes):  # exec(bytes) decodes like a file (BOM, coding cookie); exec(str) does not
            try:
                value = decode_source(value, display).text
            except InputError as exc:
                raise InputError(display, f"payload exec'd at line {node.lineno}: {exc.detail}") from None
        if isinstance(value, str):
            found.append(Payload(value, node.lineno, "+".join(steps) or "literal", node))
    return found


def opaque_execs(tree: ast.Module, payload_nodes: set[int]) -> list[ast.Call]:
    """exec/eval calls whose code pgaudit cannot see (not a literal and not a decodable payload)."""
    constants = _module_constants(tree)
    out = []
    for node in tree_nodes(tree):
        if isinstance(node, ast.Call) and _callee(node) in ("exec", "eval") and node.args:
            if id(node) in payload_nodes or _is_plain_literal(node.args[0], constants):
                continue
            out.append(node)
    return out


def _callee(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else None


def _is_plain_literal(node: ast.expr, constants: dict[str, Any]) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    return isinstance(node, ast.Name) and isinstance(constants.get(node.id), str)


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin, for the codec modules only (`import lzma as L` -> {"L": "lzma"})."""
    aliases: dict[str, str] = {}
    for node in tree_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in _CODEC_MODULES:
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in _CODEC_MODULES and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _module_constants(tree: ast.Module) -> dict[str, Any]:
    """Top-level `NAME = <literal>` bindings, so `blob = "..."; exec(decompress(b85decode(blob)))` works."""
    consts: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str | bytes):
                consts[stmt.targets[0].id] = stmt.value.value
    return consts


def _qualified(func: ast.expr, aliases: dict[str, str]) -> str | None:
    if isinstance(func, ast.Name):
        return aliases.get(func.id)
    if isinstance(func, ast.Attribute):
        base = func.value
        if isinstance(base, ast.Name) and base.id in aliases:
            return f"{aliases[base.id]}.{func.attr}"
        if (
            isinstance(base, ast.Call)
            and isinstance(base.func, ast.Name)
            and base.func.id == "__import__"
            and base.args
            and isinstance(base.args[0], ast.Constant)
            and base.args[0].value in _CODEC_MODULES
        ):
            return f"{base.args[0].value}.{func.attr}"
    return None


def _evaluate(node: ast.expr, aliases: dict[str, str], consts: dict[str, Any], steps: list[str], display: str) -> Any:
    """Evaluate a whitelisted pure expression over literals; raise NotStatic for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes | int):
        return node.value
    if isinstance(node, ast.Name) and node.id in consts:
        return consts[node.id]
    if isinstance(node, ast.Attribute):
        qual = _qualified(node, aliases)
        if qual is not None and qual.split(".")[0] == "lzma" and hasattr(lzma, qual.split(".", 1)[1]):
            return getattr(lzma, qual.split(".", 1)[1])  # FORMAT_RAW, FILTER_LZMA2, ... (plain ints)
        raise NotStatic
    if isinstance(node, ast.List):
        return [_evaluate(e, aliases, consts, steps, display) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise NotStatic
        return {
            _evaluate(k, aliases, consts, steps, display): _evaluate(v, aliases, consts, steps, display)  # type: ignore[arg-type]
            for k, v in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _evaluate(node.left, aliases, consts, steps, display) + _evaluate(
            node.right, aliases, consts, steps, display
        )
    if not isinstance(node, ast.Call):
        raise NotStatic
    # `<bytes>.decode()` and `str(<bytes>, "utf-8")`
    if isinstance(node.func, ast.Attribute) and node.func.attr == "decode" and _qualified(node.func, aliases) is None:
        data = _evaluate(node.func.value, aliases, consts, steps, display)
        if not isinstance(data, bytes):
            raise NotStatic
        encoding = "utf-8"
        if node.args:
            encoding = _evaluate(node.args[0], aliases, consts, steps, display)
        return _decode_text(data, encoding, display)
    if isinstance(node.func, ast.Name) and node.func.id == "str" and len(node.args) == 2:
        data = _evaluate(node.args[0], aliases, consts, steps, display)
        return _decode_text(data, _evaluate(node.args[1], aliases, consts, steps, display), display)
    qual = _qualified(node.func, aliases)
    if qual is None or (qual not in _DECODERS and qual not in _DECOMPRESSORS):
        raise NotStatic
    if not node.args:
        raise NotStatic
    data = _evaluate(node.args[0], aliases, consts, steps, display)
    kwargs = {kw.arg: _evaluate(kw.value, aliases, consts, steps, display) for kw in node.keywords if kw.arg}
    extra = [_evaluate(a, aliases, consts, steps, display) for a in node.args[1:]]
    if qual in _DECODERS:
        steps.append(qual.split(".")[1])
        try:
            return _DECODERS[qual](data)
        except (ValueError, binascii.Error) as exc:
            raise InputError(display, f"payload literal does not {qual.split('.')[1]}: {exc}") from None
    if not isinstance(data, bytes):
        raise NotStatic
    return _decompress(qual, data, kwargs, extra, steps, display)


def _decode_text(data: Any, encoding: Any, display: str) -> str:
    if not isinstance(data, bytes) or not isinstance(encoding, str):
        raise NotStatic
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise InputError(display, "payload does not decode to text") from None


def _decompress(qual: str, data: bytes, kwargs: dict[str, Any], extra: list[Any], steps: list[str], display: str) -> bytes:
    budget = current_payload_budget()  # shared by every payload of the program (guards.payload_budget)
    cap = min(MAX_PAYLOAD_BYTES, budget.remaining()) if budget is not None else MAX_PAYLOAD_BYTES
    try:
        if qual == "lzma.decompress":
            fmt = kwargs.get("format", extra[0] if extra else lzma.FORMAT_AUTO)
            filters = kwargs.get("filters")
            steps.append("lzma(raw)" if fmt == lzma.FORMAT_RAW else "lzma")
            dec: Any = lzma.LZMADecompressor(format=fmt, filters=filters)
            out = dec.decompress(data, max_length=cap + 1)
        elif qual in ("zlib.decompress", "gzip.decompress"):
            wbits = kwargs.get("wbits", extra[0] if extra else zlib.MAX_WBITS)
            if qual == "gzip.decompress":
                wbits = 16 + zlib.MAX_WBITS
            steps.append(qual.split(".")[0])
            zdec = zlib.decompressobj(wbits)
            out = zdec.decompress(data, cap + 1)
        else:
            steps.append("bz2")
            out = bz2.BZ2Decompressor().decompress(data, max_length=cap + 1)
    except (lzma.LZMAError, zlib.error, OSError, ValueError, TypeError) as exc:
        raise InputError(display, f"payload does not decompress ({qual}): {exc}") from None
    if budget is not None:
        budget.charge(len(out), display)
    if len(out) > cap:
        raise InputError(
            display,
            f"payload decompresses to more than {cap // (1024 * 1024)} MB: refused as a decompression bomb",
        )
    return out

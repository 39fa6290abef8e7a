"""Text -> stdlib `ast` tree, independent of the host interpreter's grammar.

Why two parsers: every rule runs on the stdlib `ast` (0.08 s and line numbers for free on the largest record,
where libcst needs 0.6 s to parse, 0.5 s to walk and 1.0 s more for positions). But the host may be older
than the submission: merged records use Python 3.12 nested same-quote f-strings that `ast.parse` on 3.11
rejects. libcst's parser knows the newer grammar, so when the host parser fails we parse with libcst and
lower the few newer constructs (PEP 701 f-strings, PEP 750 t-strings, PEP 695 type parameters and `type`
aliases) to equivalent older syntax that keeps every line where it was, then parse that with `ast`.
Nothing is imported or executed.
"""

from __future__ import annotations

import ast
import hashlib
import re
import sys
import warnings
from collections import OrderedDict

from pgaudit.errors import InputError

# Real training scripts nest at most ~20 levels (expressions inside blocks); every analysis pass may recurse
# per level, so deeper trees are refused before they can exhaust the Python or the C stack.
MAX_AST_DEPTH = 100
# CPython's tokenizer refuses more than 200 nested brackets in every version (MAXLEVEL); libcst's parser
# would crash the process (C stack) on a few thousand, so the text is checked before libcst sees it.
MAX_BRACKETS = 200
MAX_OPERATOR_RUN = 100  # `- - - - x`, `not not ...`, `lambda: lambda: ...` chains: nesting without brackets
# Parsed trees kept for reuse (the whole bound on parse caches lives here): a long-running library user
# auditing thousands of folders must not keep every tree alive.
MAX_CACHED_TREES = 64

_CACHE: OrderedDict[str, ast.Module] = OrderedDict()


def tree_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node of a parsed tree, in `ast.walk` order; each node knows its parent (`node.pg_parent`).

    Computed once per tree: source loading, the index and the rules all reuse it.
    """
    nodes: list[ast.AST] | None = getattr(tree, "pg_nodes", None)  # kept on the tree: freed with it
    if nodes is None:
        nodes = [tree]
        if getattr(tree, "pg_children", None) is not None:  # linked at parse time: parents are set
            for node in nodes:  # breadth-first, like ast.walk, growing the list as it goes
                nodes += node.pg_children  # type: ignore[attr-defined]
        else:
            for node in nodes:
                for child in ast.iter_child_nodes(node):
                    child.pg_parent = node  # type: ignore[attr-defined]
                    nodes.append(child)
        tree.pg_nodes = nodes  # type: ignore[attr-defined]
    return nodes


def walk(node: ast.AST) -> list[ast.AST]:
    """Every node under `node`, itself first: what `ast.walk` yields, but in pre-order (source order) and as a
    slice of the list `parse_python` numbered once per tree. The analysis walks the same subtrees tens of
    thousands of times on a large record; `ast.walk` rebuilds each walk node by node in Python.

    A node outside a parsed tree (one the analysis built, e.g. an `AugAssign` standing for `h.xor_(v)`) is
    walked the ordinary way.
    """
    span = getattr(node, "pg_span", None)
    if span is None:
        return list(ast.walk(node))
    order, start, end = span
    return order[start:end]


def child_nodes(node: ast.AST) -> list[ast.AST]:
    """`list(ast.iter_child_nodes(node))`, same order, without its two generators (tree walks call it for
    every node). A parsed tree's nodes keep the children they got at parse time (`pg_children`): the same list
    is handed out each time, so callers read it and never change it."""
    kids: list[ast.AST] | None = getattr(node, "pg_children", None)
    if kids is not None:
        return kids
    out: list[ast.AST] = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            out.append(value)
        elif isinstance(value, list):
            out += [child for child in value if isinstance(child, ast.AST)]
    return out


def unparsed(node: ast.AST) -> str:
    """`ast.unparse(node)`, kept on the node: reachability describes the same guard for every call under it,
    in every run configuration."""
    text: str | None = getattr(node, "pg_unparsed", None)
    if text is None:
        text = node.pg_unparsed = ast.unparse(node)  # type: ignore[attr-defined]
    return text


def parse_python(text: str, display: str) -> ast.Module:
    """Parse source text; raise InputError naming file and line on a syntax error. Cached by content."""
    key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    cached = _CACHE.get(key)
    if cached is not None:
        _CACHE.move_to_end(key)
        return cached
    tree = _parse_uncached(text, display)
    _link_checking_depth(tree, display)
    while len(_CACHE) >= MAX_CACHED_TREES:  # least recently used first
        _CACHE.popitem(last=False)
    _CACHE[key] = tree
    return tree


def clear_caches() -> None:
    """Forget every cached tree (for library users between unrelated audits)."""
    _CACHE.clear()


def _link_checking_depth(tree: ast.Module, display: str) -> None:
    """One depth-first pass over a fresh tree (each pass over the largest record costs ~0.02 s): every node
    gets its parent (`pg_parent`), its children (`pg_children`) and its span in the pre-order list (`walk`).
    A tree deeper than MAX_AST_DEPTH is refused by `_check_depth` (which names the same line as always)
    before the recursion goes any deeper."""
    order: list[ast.AST] = []

    def visit(node: ast.AST, depth: int) -> None:
        if depth > MAX_AST_DEPTH:
            _check_depth(tree, display)  # raises
        start = len(order)
        order.append(node)
        kids: list[ast.AST] = []
        for name in node._fields:  # ast.iter_child_nodes, inlined
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                kids.append(value)
            elif isinstance(value, list):
                for child in value:
                    if isinstance(child, ast.AST):
                        kids.append(child)
        node.pg_children = kids  # type: ignore[attr-defined]  # `child_nodes` and `tree_nodes` read them
        for child in kids:
            child.pg_parent = node  # type: ignore[attr-defined]
            visit(child, depth + 1)
        node.pg_span = (order, start, len(order))  # type: ignore[attr-defined]

    visit(tree, 1)


def _check_depth(tree: ast.Module, display: str) -> None:
    """Refuse trees nested deeper than MAX_AST_DEPTH (iteratively: this check itself cannot overflow)."""
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_AST_DEPTH:
            line = getattr(node, "lineno", None)
            where = f" at line {line}" if line else ""
            raise InputError(
                display, f"too deeply nested{where}: over {MAX_AST_DEPTH} levels of nested expressions or blocks"
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_nesting_text(text: str, display: str) -> None:
    """Before libcst parses: refuse bracket or operator nesting that could overflow its C stack."""
    import io
    import tokenize

    depth = run = 0
    unary = {"-", "+", "~", "not", "lambda", "await", "*", "**", "if", "else", ":"}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
                if depth > MAX_BRACKETS:
                    raise InputError(display, _too_nested_brackets(tok.start[0]))
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth = max(depth - 1, 0)
            if tok.string in unary and tok.type in (tokenize.OP, tokenize.NAME):
                run += 1
                if run > MAX_OPERATOR_RUN:
                    raise InputError(display, f"too deeply nested at line {tok.start[0]}: a chain of over "
                                     f"{MAX_OPERATOR_RUN} operators or lambdas")
            elif tok.type not in (tokenize.NL, tokenize.COMMENT):
                run = 0
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return  # the parser reports the real error


def _too_nested_brackets(line: int | None) -> str:
    return (
        f"too deeply nested at line {line}: more than {MAX_BRACKETS} nested brackets, "
        "which Python refuses in every version"
    )


def _parse_uncached(text: str, display: str) -> ast.Module:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences etc. are the author's business
            return ast.parse(text, filename=display)
    except SyntaxError as host_error:
        if (host_error.msg or "").startswith("too many nested parentheses"):
            raise InputError(display, _too_nested_brackets(host_error.lineno)) from None
        if (host_error.msg or "").startswith("multiple exception types must be parenthesized"):
            return _parse_pep758(text, display, host_error)
        _check_nesting_text(text, display)
        try:
            lowered = _lower_statements(text, host_error) or _lower_with_libcst(text)
        except (RecursionError, MemoryError) as exc:
            raise InputError(display, f"too deeply nested or too large to parse ({type(exc).__name__})") from None
        if lowered is None:
            line = host_error.lineno or 0
            raise InputError(
                display, f"syntax error at line {line}: {host_error.msg} (pgaudit reads Python up to 3.14)"
            ) from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ast.parse(lowered, filename=display)
        except SyntaxError as exc:  # a construct newer than the lowering knows
            raise InputError(
                display, f"uses Python syntax newer than pgaudit supports (line {exc.lineno}: {exc.msg})"
            ) from None
        except (RecursionError, MemoryError) as exc:
            raise InputError(display, f"too deeply nested or too large to parse ({type(exc).__name__})") from None
    except (RecursionError, MemoryError) as exc:
        raise InputError(display, f"too deeply nested or too large to parse ({type(exc).__name__})") from None
    except ValueError as exc:
        raise InputError(display, f"cannot parse: {exc}") from None


_EXCEPT_LIST = re.compile(r"^(\s*except\*?\s+)([^:#]+?,[^:#]+?)(\s*:)")


def _parse_pep758(text: str, display: str, error: SyntaxError, attempts: int = 64) -> ast.Module:
    """Python 3.14 (PEP 758) allows `except A, B:`; older hosts and libcst do not. Parenthesize those clauses
    in place (same line, same meaning), then parse the rest as usual."""
    lines = text.split("\n")
    for _ in range(attempts):
        index = (error.lineno or 1) - 1
        match = _EXCEPT_LIST.match(lines[index]) if 0 <= index < len(lines) else None
        if match is None or re.search(r"\bas\b", match.group(2)):  # `except A, B as e:` is invalid in 3.14 too
            raise InputError(display, f"syntax error at line {error.lineno}: {error.msg}")
        lines[index] = f"{match.group(1)}({match.group(2)}){match.group(3)}" + lines[index][match.end():]
        candidate = "\n".join(lines)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ast.parse(candidate, filename=display)
        except SyntaxError as exc:
            if not (exc.msg or "").startswith("multiple exception types must be parenthesized"):
                return _parse_uncached(candidate, display)  # other newer syntax: the usual lowering
            error = exc
    raise InputError(
        display,
        f"uses Python 3.14 syntax (`except A, B:` without parentheses, PEP 758, at line {error.lineno}) that "
        f"neither this Python ({sys.version_info.major}.{sys.version_info.minor}) nor libcst can parse; "
        "run pgaudit under Python 3.14",
    )


def _lower_statements(text: str, error: SyntaxError, attempts: int = 64) -> str | None:
    """Lower just the top-level statements the host parser rejects, found by indentation.

    A top-level statement starts at an unindented line; each failing one is parsed and lowered by libcst
    on its own. None when that does not work out (the caller then lowers the whole module).
    """
    import libcst as cst

    lines = text.split("\n")
    for _ in range(attempts):
        start, end = _statement_span(lines, (error.lineno or 1) - 1)
        snippet = "\n".join(lines[start:end]) + "\n"
        try:
            module = cst.parse_module(snippet)
        except (cst.ParserSyntaxError, RecursionError, ValueError):
            return None
        lowered = module.visit(_Lowerer(module)).code.split("\n")[:-1]
        if len(lowered) != end - start or lowered == lines[start:end]:
            return None
        lines[start:end] = lowered
        candidate = "\n".join(lines)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ast.parse(candidate)
            return candidate
        except SyntaxError as exc:
            error = exc
    return None


def _statement_span(lines: list[str], index: int) -> tuple[int, int]:
    """[start, end) of the top-level statement holding line `index`: from the nearest unindented line above
    (with its decorators) to the next unindented line that is not a closing bracket or an `else`."""
    index = min(max(index, 0), len(lines) - 1)

    def opens(line: str) -> bool:
        return bool(line) and not line[0].isspace() and not line.startswith((")", "]", "}", "#"))

    start = index
    while start > 0 and not opens(lines[start]):
        start -= 1
    while start > 0 and lines[start - 1].startswith("@"):
        start -= 1
    end = index + 1
    while end < len(lines) and not (
        opens(lines[end]) and not lines[end].startswith(("else", "elif", "except", "finally", "@"))
    ):
        end += 1
    return start, end


def _lower_with_libcst(text: str) -> str | None:
    """Rewrite newer syntax into host-parseable syntax, line for line. None if libcst rejects the code too.

    Only the top-level statements the host parser stumbles on are rewritten: transforming a whole payload
    costs a second, one function a few milliseconds.
    """
    import libcst as cst  # imported lazily: most files never need it

    try:
        module = cst.parse_module(text)
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return None
    pieces = [module.code_for_node(stmt) for stmt in module.body]
    layout = _layout(text, pieces)
    if layout is None:  # an unexpected layout: lower everything to stay correct
        return module.visit(_Lowerer(module)).code
    head, footer, starts = layout
    lowered: set[int] = set()
    for _ in range(len(pieces) + 1):
        candidate = head + "".join(pieces) + footer
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ast.parse(candidate)
            return candidate
        except SyntaxError as exc:
            index = _statement_at(starts, exc.lineno or 0)
            if index is None or index in lowered:
                return module.visit(_Lowerer(module)).code
            lowered.add(index)
            pieces[index] = module.code_for_node(module.body[index].visit(_Lowerer(module)))
    return module.visit(_Lowerer(module)).code


def _layout(text: str, pieces: list[str]) -> tuple[str, str, list[int]] | None:
    """Split `text` into header, the statements' code (as libcst prints them) and footer."""
    if not pieces:
        return None
    at = text.find(pieces[0])
    if at < 0:
        return None
    head, pos, starts, line = text[:at], at, [], text[:at].count("\n") + 1
    for i, piece in enumerate(pieces):
        if not text.startswith(piece, pos):
            last = i == len(pieces) - 1
            if not (last and piece.endswith("\n") and text[pos:] == piece[:-1]):
                return None
            pieces[i] = piece[:-1]  # the file has no final newline; libcst adds one
            piece = pieces[i]
        starts.append(line)
        line += piece.count("\n")
        pos += len(piece)
    return head, text[pos:], starts


def _statement_at(starts: list[int], line: int) -> int | None:
    index = None
    for i, start in enumerate(starts):
        if start <= line:
            index = i
    return index


def _newlines(module, node) -> int:  # type: ignore[no-untyped-def]
    return module.code_for_node(node).count("\n")


class _Lowerer:
    """Built on first use so that libcst is only imported when needed."""

    def __new__(cls, module):  # type: ignore[no-untyped-def]
        import libcst as cst

        class Lowerer(cst.CSTTransformer):
            def _as_tuple(self, original: cst.CSTNode, parts: list[cst.BaseExpression]) -> cst.BaseExpression:
                # `(e1, e2,)` keeps the expressions an f-string evaluates (they can call functions),
                # padded with newlines inside the parentheses so later lines keep their numbers.
                empty = cst.Module(body=[])
                body = ", ".join(empty.code_for_node(p) for p in parts)
                pad = max(_newlines(module, original) - body.count("\n"), 0)
                return cst.parse_expression("(" + body + ("," if parts else "") + "\n" * pad + ")")

            def leave_FormattedString(self, original_node, updated_node):  # type: ignore[no-untyped-def]
                parts = [p.expression for p in updated_node.parts if isinstance(p, cst.FormattedStringExpression)]
                return self._as_tuple(original_node, parts)

            def leave_TemplatedString(self, original_node, updated_node):  # type: ignore[no-untyped-def]
                parts = [
                    p.expression for p in updated_node.parts if isinstance(p, cst.TemplatedStringExpression)
                ]
                return self._as_tuple(original_node, parts)

            def leave_ConcatenatedString(self, original_node, updated_node):  # type: ignore[no-untyped-def]
                pieces: list[cst.BaseExpression] = []

                def flatten(node: cst.BaseExpression) -> None:
                    if isinstance(node, cst.ConcatenatedString):
                        flatten(node.left)
                        flatten(node.right)
                    else:
                        pieces.append(node)

                flatten(updated_node)
                if all(isinstance(p, cst.SimpleString) for p in pieces):
                    return updated_node
                return self._as_tuple(original_node, pieces)

            def leave_FunctionDef(self, original_node, updated_node):  # type: ignore[no-untyped-def]
                return updated_node.with_changes(type_parameters=None) if updated_node.type_parameters else updated_node

            def leave_ClassDef(self, original_node, updated_node):  # type: ignore[no-untyped-def]
                return updated_node.with_changes(type_parameters=None) if updated_node.type_parameters else updated_node

            def leave_TypeAlias(self, original_node, updated_node):  # type: ignore[no-untyped-def]
                return cst.Assign(targets=[cst.AssignTarget(target=updated_node.name)], value=updated_node.value)

        return Lowerer()

"""Labels from the assignment that reaches a use, for names a big function binds more than once.

Flow labels are per name and per scope: when `main()` trains with `loss = model(x, y)` on training batches
and later runs an inline TTT loop with `loss = model(chunk[:-1], chunk[1:])` on validation tokens, `loss` is
{train, val} everywhere and neither backward pass looks validation-only. Here a name read at a use takes the
labels of the one plain assignment that reaches it (the last `name = value` before the use in the enclosing
blocks), and only when that is certain: a binding in a branch, a loop target, an augmented or subscript
store, or a later binding in an enclosing loop keeps the flow-insensitive labels. The result only narrows
the flow labels (it is intersected with them), so it can drop a mix, never add a label.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager

from pgaudit.analysis.dataflow import TRAIN, VAL, Flow, Labels
from pgaudit.analysis.index import Scope, parent
from pgaudit.source.parse import child_nodes, walk

_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_BLOCKS = ("body", "orelse", "finalbody", "handlers")
# in-place calls that rebind what a name holds (`xs.append(v)`, `x.copy_(v)`): not a plain assignment
_MUTATORS = {
    "append", "extend", "insert", "update", "add", "copy_", "set_", "fill_", "index_put_", "index_copy_",
    "scatter_", "masked_scatter_", "bitwise_xor_", "bitwise_or_", "add_", "sub_", "mul_", "div_",
}  # fmt: skip
_UNKNOWN = object()  # the name is bound here, but not by one plain assignment


def reaching_labels(flow: Flow, expr: ast.AST, scope: Scope, depth: int = 3) -> Labels:
    """Concrete labels of `expr`, its names read from their reaching assignments; only computed when the
    flow-insensitive labels mix validation and training data (otherwise they are returned as they are)."""
    base = flow.labels(expr, scope)
    if not (VAL in base and TRAIN in base):
        return base
    return base & flow.concretize(_symbolic(flow, expr, scope, depth), scope)


def _symbolic(flow: Flow, expr: ast.AST, scope: Scope, depth: int) -> Labels:
    fs = flow.fs.get(id(scope))
    if depth <= 0 or fs is None:
        return flow.symbolic(expr, scope)
    env = fs.env
    overrides: dict[str, Labels] = {}
    for name in dict.fromkeys(n.id for n in walk(expr) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)):
        if name not in env:
            continue
        value = reaching_value(name, expr, scope)
        if value is None:
            continue
        # the value's labels plus what every binding of the name gets (its use as a loss target)
        labs = _symbolic(flow, value, scope, depth - 1) | flow._used_as_target(scope, name)
        overrides[name] = labs & env[name]
    with _override(env, overrides):
        return flow.symbolic(expr, scope)


@contextmanager
def _override(env: dict[str, Labels], overrides: dict[str, Labels]) -> Iterator[None]:
    saved = {name: env[name] for name in overrides}
    env.update(overrides)
    try:
        yield
    finally:
        env.update(saved)


def reaching_value(name: str, use: ast.AST, scope: Scope) -> ast.expr | None:
    """The value of the single plain assignment `name = value` that every path to `use` goes through last,
    searching back through the enclosing blocks of `scope`; None when it is not certain."""
    child: ast.AST | None = use
    while child is not None and not isinstance(child, ast.stmt):
        child = parent(child)
    while child is not None:
        holder = parent(child)
        if holder is None or holder is scope.node:
            return None  # not bound before the use in this function: a parameter or a global
        block = _block_of(holder, child)
        if isinstance(holder, _LOOPS):
            # the loop target, or a binding from the use on that reaches the next iteration
            rest = block[block.index(child) :] if block is not None else [holder]
            if _binds_target(holder, name) or any(_binds(s, name) for s in rest):
                return None
        if isinstance(holder, ast.If | ast.While) and _binds(holder.test, name):
            return None
        if isinstance(holder, ast.Try | ast.TryStar) and block is not holder.body:
            # an except/else/finally block: the try body may have bound the name, or stopped before
            if any(_binds(s, name) for s in [*holder.body, *holder.handlers, *holder.orelse]):
                return None
        if block is not None:
            found = _last_binding(block[: block.index(child)], name)
            if found is _UNKNOWN:
                return None
            if found is not None:
                return found  # type: ignore[return-value]
        child = holder
    return None


def _block_of(holder: ast.AST, child: ast.AST) -> list[ast.stmt] | None:
    for field_name in _BLOCKS:
        block = getattr(holder, field_name, None)
        if isinstance(block, list) and any(s is child for s in block):
            return block
    return None


def _last_binding(stmts: list[ast.stmt], name: str) -> object:
    """The value of the last statement of `stmts` that binds `name`, _UNKNOWN when that statement is not a
    plain assignment (a `with` body is searched: it always runs), None when none binds it."""
    for stmt in reversed(stmts):
        if not _binds(stmt, name):
            continue
        if (
            isinstance(stmt, ast.Assign)
            and all(isinstance(t, ast.Name) for t in stmt.targets)
            and any(t.id == name for t in stmt.targets)  # type: ignore[attr-defined]
            and not _binds(stmt.value, name)
        ):
            return stmt.value
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name and stmt.value is not None and not _binds(stmt.value, name):
            return stmt.value
        if isinstance(stmt, ast.With | ast.AsyncWith) and not any(
            item.optional_vars is not None and _binds(item.optional_vars, name) for item in stmt.items
        ):
            return _last_binding(stmt.body, name) or _UNKNOWN
        return _UNKNOWN
    return None


def _binds(node: ast.AST, name: str) -> bool:
    """`node` (re)binds or mutates `name`: a store, a `del`, a subscript or attribute store on it, or an
    in-place method call on it. Nested functions and classes bind their own names."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if cur is not node and isinstance(cur, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(cur, ast.Name) and cur.id == name and isinstance(cur.ctx, ast.Store | ast.Del):
            return True
        if isinstance(cur, ast.Subscript | ast.Attribute) and isinstance(cur.ctx, ast.Store | ast.Del) and _root(cur) == name:
            return True
        if isinstance(cur, ast.Call) and isinstance(cur.func, ast.Attribute) and cur.func.attr in _MUTATORS and _root(cur.func.value) == name:
            return True
        if isinstance(cur, ast.Global | ast.Nonlocal) and name in cur.names:
            return True
        stack.extend(child_nodes(cur))
    return False


def _binds_target(loop: ast.AST, name: str) -> bool:
    target = getattr(loop, "target", None)
    return target is not None and _binds(target, name)


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Subscript | ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None

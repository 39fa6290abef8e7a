"""Streaming update-before-score: in a loop over positions, the state used to score token t already read t.

An online cache (counts, a running table, a hashed n-gram store) is legal when each position is scored from
the state before it, then the state is updated with that token. The illegal order writes the scored token
into the state first and then reads the state to score it:

    for i in range(n):
        a, z = seq[i], seq[i + 1]
        counts[a, z] += 1                      # the state reads z ...
        total -= log(counts[a, z] / counts[a].sum())   # ... then scores z from it

Recognised by shape, not names: in one loop body, a write into a table whose index or value uses a token
value that a later statement of the same body uses to index that table for a logged/negated score.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from pgaudit.analysis.dataflow import VAL, Flow
from pgaudit.analysis.index import ProgramIndex, Scope, call_name, dotted
from pgaudit.source.parse import walk

_LOG_CALLS = {"log", "log2", "log10", "log1p", "log_softmax", "cross_entropy", "nll_loss"}
_INDEXED_ADD = {"add.at", "index_add_", "scatter_add_", "index_put_", "put_"}


@dataclass(frozen=True)
class EarlyWrite:
    scope: Scope
    write: ast.stmt  # the statement that puts token t into the state
    score: ast.stmt  # the later statement that scores token t from that state
    table: str
    token: str


def _table_writes(stmt: ast.stmt) -> list[tuple[str, set[str]]]:
    """(table name, names the write's index and value read) for `T[k] += v`, `T[k] = T[k] + 1`,
    `np.add.at(T, k, 1)`, `T.index_add_(0, k, v)`."""
    out: list[tuple[str, set[str]]] = []
    for node in walk(stmt):
        if isinstance(node, ast.AugAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AugAssign) else node.targets
            for t in targets:
                if isinstance(t, ast.Subscript):
                    base = dotted(t.value)
                    if base:
                        names = {n.id for n in walk(t.slice) if isinstance(n, ast.Name)}
                        out.append((base, names))
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            if any(name.endswith(k) for k in ("add.at",)) and len(node.args) >= 2:
                base = dotted(node.args[0])
                if base:
                    out.append((base, {n.id for n in walk(node.args[1]) if isinstance(n, ast.Name)}))
            elif call_name(node) in ("index_add_", "scatter_add_", "index_put_") and isinstance(node.func, ast.Attribute):
                base = dotted(node.func.value)
                if base and len(node.args) >= 2:
                    idx = node.args[1] if call_name(node) != "index_put_" else node.args[0]
                    out.append((base, {n.id for n in walk(idx) if isinstance(n, ast.Name)}))
    return out


def _is_score_stmt(stmt: ast.stmt) -> bool:
    """An accumulation (`total -= log(p)`, `nll += -math.log(q)`) of a log-probability."""
    if not isinstance(stmt, ast.AugAssign) or not isinstance(stmt.op, ast.Add | ast.Sub):
        return False
    return any(isinstance(n, ast.Call) and call_name(n) in _LOG_CALLS for n in walk(stmt.value))


def _derived(body: list[ast.stmt], start: int, table: str) -> set[str]:
    """Names assigned, from `start` on in `body`, from values that read `table` (`row = counts[a] / ...`)."""
    names = {table}
    for stmt in body[start:]:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(n, ast.Name | ast.Attribute) and dotted(n) in names for n in walk(stmt.value)
        ):
            names |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
    return names


def _picked(node: ast.Subscript, table: str, state: set[str]) -> set[str]:
    """The token names a read picks its probability with: the last index of `table[a, z]`, or the index of a
    row derived from the table (`row[z]`). `table[a]` selects a context row: `a` is not what is scored."""
    base = {dotted(n) for n in walk(node.value) if isinstance(n, ast.Name | ast.Attribute)}
    if not base & state:
        return set()
    index = node.slice
    if isinstance(index, ast.Tuple) and index.elts:
        index = index.elts[-1]
    elif dotted(node.value) == table:
        return set()
    return {n.id for n in walk(index) if isinstance(n, ast.Name)}


def early_writes(index: ProgramIndex, flow: Flow, scope: Scope) -> list[EarlyWrite]:
    out: list[EarlyWrite] = []
    for loop in index.walk_scope(scope):
        if not isinstance(loop, ast.For | ast.While | ast.AsyncFor):
            continue
        body = loop.body
        for i, stmt in enumerate(body):
            if isinstance(stmt, ast.For | ast.While | ast.AsyncFor):
                continue  # an inner loop's writes are checked in its own body
            for table, keys in _table_writes(stmt):
                keys = {k for k in keys if VAL in flow.labels(ast.Name(id=k, ctx=ast.Load()), scope)}
                if not keys:
                    continue
                state = _derived(body, i + 1, table)
                for later in body[i + 1 :]:
                    if not _is_score_stmt(later):
                        continue
                    for node in walk(later):
                        if not isinstance(node, ast.Subscript):
                            continue
                        hit = _picked(node, table, state) & keys
                        if hit:
                            out.append(EarlyWrite(scope, stmt, later, table, sorted(hit)[0]))
                            break
                    else:
                        continue
                    break
    return out


def _write_indexes(stmt: ast.stmt) -> list[tuple[str, ast.AST]]:
    """(table, index expression) of the writes `_table_writes` recognises."""
    out: list[tuple[str, ast.AST]] = []
    for node in walk(stmt):
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Subscript) and dotted(node.target.value):
            out.append((dotted(node.target.value), node.target.slice))
        elif isinstance(node, ast.Call) and dotted(node.func).endswith("add.at") and len(node.args) >= 2 and dotted(node.args[0]):
            out.append((dotted(node.args[0]), node.args[1]))
        elif isinstance(node, ast.Call) and call_name(node) in ("index_add_", "scatter_add_") and isinstance(node.func, ast.Attribute):
            if dotted(node.func.value) and len(node.args) >= 2:
                out.append((dotted(node.func.value), node.args[1]))
    return out


def _ahead(index: ast.AST, var: str) -> bool:
    """`y[i : i + k]` with k >= 2, or `y[i + k]` with k >= 1: tokens after position i."""
    def plus(node: ast.AST | None, least: int) -> bool:
        return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.left, ast.Name) \
            and node.left.id == var and isinstance(node.right, ast.Constant) and isinstance(node.right.value, int) \
            and node.right.value >= least
    if isinstance(index, ast.Slice):
        return isinstance(index.lower, ast.Name) and index.lower.id == var and plus(index.upper, 2)
    return plus(index, 1)


def lookahead_writes(index: ProgramIndex, flow: Flow, scope: Scope) -> list[EarlyWrite]:
    """In a loop over positions `i`, the state is updated after scoring `y[i]` but with tokens after it
    (`counts.index_add_(0, y[i : i + 2], ...)`): the next iteration scores `y[i + 1]` from a state that has
    already read it."""
    out: list[EarlyWrite] = []
    for loop in index.walk_scope(scope):
        if not isinstance(loop, ast.For | ast.AsyncFor) or not isinstance(loop.target, ast.Name):
            continue
        var, body = loop.target.id, loop.body
        for i, stmt in enumerate(body):
            if isinstance(stmt, ast.For | ast.While | ast.AsyncFor):
                continue
            for table, key in _write_indexes(stmt):
                reads = [n for n in walk(key) if isinstance(n, ast.Subscript) and _ahead(n.slice, var)]
                if not reads or VAL not in flow.labels(reads[0].value, scope):
                    continue
                scored = f"{ast.unparse(reads[0].value)}[{var}]"
                state = _derived(body, 0, table)
                for earlier in body[:i]:
                    if _is_score_stmt(earlier) and any(
                        isinstance(n, ast.Subscript) and ast.unparse(n.slice) == scored
                        and {dotted(b) for b in walk(n.value) if isinstance(b, ast.Name | ast.Attribute)} & state
                        for n in walk(earlier)
                    ):
                        out.append(EarlyWrite(scope, stmt, earlier, table, ast.unparse(reads[0])))
                        break
    return out

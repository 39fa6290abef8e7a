"""Prediction targets from their use, whatever they are called.

A target is what a scoring operation is indexed with: the label argument of `cross_entropy`/`nll_loss`, the
index of a `gather` or subscript on (log-)probabilities (`p[arange(n), y]`, `-log(p[..., y])`), the value
compared with an argmax. From those sinks the seeds go back through value-preserving wrappers
(`torch.from_numpy(t).long()`), through the assignments that made them (`y = s[i + 1 : j + 1]` makes every
spelling `s[i + 1 : j + 1]` in that scope a target too), and from a helper's parameter to the arguments its
callers pass. The data-flow (dataflow.Flow) then carries the TARGET label forward from these seeds.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from pgaudit.analysis.index import ProgramIndex, Scope, call_name
from pgaudit.source.parse import walk

# Calls whose result is a (log-)probability over the vocabulary.
PROB_CALLS = frozenset({"softmax", "log_softmax", "sigmoid", "exp", "log", "log2", "logsumexp_normalize"})
LABEL_LOSSES = frozenset({"cross_entropy", "nll_loss"})
# Calls that return their argument's values in another dtype, device or shape.
_WRAPPERS = frozenset({
    "long", "int", "to", "cuda", "cpu", "unsqueeze", "squeeze", "view", "reshape", "flatten", "ravel",
    "contiguous", "astype", "from_numpy", "as_tensor", "tensor", "asarray", "array", "int64", "clone",
    "detach", "view_as", "reshape_as", "type", "numpy", "expand", "expand_as", "to_device",
})  # fmt: skip
# Index producers that enumerate candidates rather than name the observed next token.
_CANDIDATES = frozenset({"arange", "range", "topk", "argsort", "argmax", "nonzero", "multinomial", "sort", "where"})


@dataclass
class TargetSeeds:
    """Variables (per scope) and expression spellings (per scope) that hold target ids."""

    names: dict[int, set[str]] = field(default_factory=dict)
    spellings: dict[int, set[str]] = field(default_factory=dict)

    def has_name(self, scope: Scope, name: str) -> bool:
        return name in self.names.get(id(scope), ())

    def has_spelling(self, scope: Scope, node: ast.AST) -> bool:
        spelled = self.spellings.get(id(scope))
        return bool(spelled) and _spell(node) in spelled  # type: ignore[operator]


def _spell(node: ast.AST) -> str:
    """The spelling of an expression, with a constant moved to the right of `+` and `*` (`1 + i` is `i + 1`),
    so that aliases spelled with commuted offsets are the same target."""
    if not any(isinstance(n, ast.BinOp) and isinstance(n.left, ast.Constant) for n in walk(node)):
        return ast.unparse(node)
    fresh = ast.parse(ast.unparse(node), mode="eval").body  # a copy without the tree's parent links
    return ast.unparse(_Commute().visit(fresh))


class _Commute(ast.NodeTransformer):
    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Add | ast.Mult) and isinstance(node.left, ast.Constant) and not isinstance(node.right, ast.Constant):
            node.left, node.right = node.right, node.left
        return node


def unwrap(node: ast.AST) -> ast.AST:
    """`torch.from_numpy(t[i:j]).long().unsqueeze(-1)` -> `t[i:j]`."""
    for _ in range(8):
        if isinstance(node, ast.Subscript) and _adds_axes(node.slice):  # `y[:, None]`, `y[..., None]`
            node = node.value
            continue
        if isinstance(node, ast.Call) and call_name(node) in _WRAPPERS:
            if isinstance(node.func, ast.Attribute) and call_name(node) not in ("from_numpy", "as_tensor", "tensor", "asarray", "array", "int64"):
                node = node.func.value
                continue
            if node.args:
                node = node.args[0]
                continue
        return node
    return node


_SINK_NODES = (ast.Call, ast.Subscript, ast.BinOp, ast.Compare)  # where `_sink_indices` can find an index


def _minus_logsumexp(node: ast.AST) -> bool:
    """`x - logsumexp(x)`: log-probabilities computed by hand."""
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and isinstance(node.right, ast.Call) \
        and call_name(node.right) == "logsumexp"


def _adds_axes(index: ast.AST) -> bool:
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    full = all(
        (isinstance(p, ast.Slice) and p.lower is None and p.upper is None and p.step is None)
        or (isinstance(p, ast.Constant) and p.value in (None, Ellipsis))
        for p in parts
    )
    return full and any(isinstance(p, ast.Constant) and p.value is None for p in parts)


class TargetFinder:
    def __init__(self, index: ProgramIndex, scopes: list[Scope]) -> None:
        self.index = index
        self.scopes = scopes
        self.seeds = TargetSeeds()
        self._assigns: dict[int, list[tuple[ast.AST, ast.AST]]] = {}
        self._prob: dict[int, set[str]] = {}
        self._prob_funcs: set[str] = set()
        self._callers: dict[int, list[tuple[ast.Call, Scope]]] | None = None
        self._by_name: dict[int, dict[str, list[tuple[ast.AST, ast.AST]]]] = {}
        self._by_spelling: dict[int, dict[str, list[ast.AST]]] = {}
        self._mentions: dict[int, tuple[frozenset[str], frozenset[str]]] = {}  # value -> (call names, names)
        for scope in scopes:
            pairs = []
            for node in index.walk_scope(scope):
                if isinstance(node, ast.Assign):
                    pairs += [(t, node.value) for t in node.targets]
                elif isinstance(node, ast.AnnAssign) and node.value is not None:
                    pairs.append((node.target, node.value))
                elif isinstance(node, ast.For | ast.comprehension):
                    pairs.append((node.target, node.iter))
            self._assigns[id(scope)] = pairs
            by_name: dict[str, list[tuple[ast.AST, ast.AST]]] = {}
            by_spelling: dict[str, list[ast.AST]] = {}
            for target, value in pairs:
                if isinstance(target, ast.Subscript | ast.Attribute):
                    by_spelling.setdefault(_spell(target), []).append(value)
                else:
                    for n in walk(target):
                        if isinstance(n, ast.Name):
                            by_name.setdefault(n.id, []).append((target, value))
            self._by_name[id(scope)] = by_name
            self._by_spelling[id(scope)] = by_spelling
        self._probabilities()
        self._find()

    # --- which values are probabilities ----------------------------------------------------------

    def _is_prob(self, node: ast.AST, scope: Scope) -> bool:
        mentions = self._mentions.get(id(node))
        if mentions is None:
            calls, names = set(), set()
            for sub in walk(node):
                if isinstance(sub, ast.Call):
                    calls.add(call_name(sub))
                elif isinstance(sub, ast.Name):
                    names.add(sub.id)
            mentions = self._mentions[id(node)] = (frozenset(calls), frozenset(names))
        calls, names = mentions
        return bool(calls & PROB_CALLS or calls & self._prob_funcs or names & self._prob.get(id(scope), set())) \
            or _minus_logsumexp(node)

    def _probabilities(self) -> None:
        returned = {  # found once, not in every round
            id(s): [n.value for n in self.index.walk_scope(s) if isinstance(n, ast.Return) and n.value is not None]
            for s in self.scopes if not s.is_module
        }
        for _ in range(3):
            for scope in self.scopes:
                found = self._prob.setdefault(id(scope), set())
                for target, value in self._assigns[id(scope)]:
                    if isinstance(target, ast.Name) and target.id not in found and self._is_prob(value, scope):
                        found.add(target.id)
                if not scope.is_module and any(self._is_prob(value, scope) for value in returned[id(scope)]):
                    self._prob_funcs.add(scope.name)

    # --- sinks ------------------------------------------------------------------------------------

    def _find(self) -> None:
        for scope in self.scopes:
            for node in self.index.nodes_in(scope, _SINK_NODES):
                for expr in self._sink_indices(node, scope):
                    self._seed(expr, scope, 0)
        self._context_successors()

    def _context_successors(self) -> None:
        """`h = ctx_hash(s, L)` combining the windows `s[j : j + m]` for `j in range(L)`, then `s[L:]` in the same
        function: the token right after each length-L context is the one being predicted, whatever it is called."""
        helpers: dict[int, tuple[int, int]] = {}  # callee scope -> positions of (sequence, length) parameters
        windows = {id(scope): _window_loops(self.index, scope) for scope in self.scopes}
        for scope in self.scopes:
            params = [p for p in scope.params if p not in ("self", "cls")]
            for seq, length in windows[id(scope)]:
                if seq in params and length in params:
                    helpers[id(scope)] = (params.index(seq), params.index(length))
        for scope in self.scopes:
            pairs = set(windows[id(scope)])
            for call in self.index.calls_in(scope):
                for callee in self.index.resolve_call(call, scope):
                    at = helpers.get(id(callee))
                    if at and max(at) < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args):
                        pairs.add((ast.unparse(call.args[at[0]]), ast.unparse(call.args[at[1]])))
            if not pairs:
                continue
            for node in self.index.nodes_in(scope, (ast.Subscript,)):
                if (
                    isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and isinstance(node.slice, ast.Slice)
                    and node.slice.lower is not None and node.slice.upper is None and node.slice.step is None
                    and (ast.unparse(node.value), ast.unparse(node.slice.lower)) in pairs
                ):
                    self._seed(node, scope, 0)

    def _sink_indices(self, node: ast.AST, scope: Scope) -> list[ast.AST]:
        if isinstance(node, ast.Call):
            name = call_name(node)
            if name in LABEL_LOSSES:
                label = [kw.value for kw in node.keywords if kw.arg in ("target", "targets", "input2")]
                return label or node.args[1:2]
            if name in ("take_along_dim", "take_along_axis"):
                # torch.take_along_dim(logp, y[:, None], dim=-1), np.take_along_axis(p, y[:, None], axis=-1)
                if isinstance(node.func, ast.Attribute) and len(node.args) == 1 and self._is_prob(node.func.value, scope):
                    return [node.args[0]]
                if len(node.args) >= 2 and self._is_prob(node.args[0], scope):
                    return [node.args[1]]
                return []
            if name == "gather":
                if isinstance(node.func, ast.Attribute) and len(node.args) >= 2 and self._is_prob(node.func.value, scope):
                    return [node.args[1]]
                if len(node.args) >= 3 and self._is_prob(node.args[0], scope):
                    return [node.args[2]]
                index = [kw.value for kw in node.keywords if kw.arg == "index"]
                if index and isinstance(node.func, ast.Attribute) and self._is_prob(node.func.value, scope):
                    return index
            return []
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and self._is_prob(node.value, scope):
            index = node.slice
            if isinstance(index, ast.Tuple) and len(index.elts) >= 2:
                return [index.elts[-1]]
            if self._token_read(index, scope):  # `p[t]` with `t = int(u[i])`: one distribution, one token
                return [index]
            return []
        if _minus_logsumexp(node):  # `logits.gather(-1, y) - logits.logsumexp(-1)`: log-softmax by hand
            left = unwrap(node.left)  # type: ignore[attr-defined]
            if isinstance(left, ast.Call) and call_name(left) == "gather" and isinstance(left.func, ast.Attribute) and len(left.args) >= 2:
                return [left.args[1]]
            if isinstance(left, ast.Subscript) and isinstance(left.slice, ast.Tuple) and len(left.slice.elts) >= 2:
                return [left.slice.elts[-1]]
            return []
        if isinstance(node, ast.Compare) and len(node.comparators) == 1 and isinstance(node.ops[0], ast.Eq):
            left, right = node.left, node.comparators[0]
            for a, b in ((left, right), (right, left)):
                if isinstance(a, ast.Call) and call_name(a) == "argmax":
                    return [b]
        return []

    def _token_read(self, index: ast.AST, scope: Scope) -> bool:
        """A name every binding of which reads one element of a sequence (`t = int(u[i])`, `t = u[i]`):
        a token, not a position or a mask."""
        if not isinstance(index, ast.Name):
            return False
        values = [v for t, v in self._by_name[id(scope)].get(index.id, ()) if isinstance(t, ast.Name)]
        if not values:
            return False
        for value in values:
            read = unwrap(value)
            # one element of a named sequence at a computed position: not `np.nonzero(m)[0]`, not `xs[0]`
            if not (
                isinstance(read, ast.Subscript)
                and isinstance(read.value, ast.Name | ast.Attribute)
                and isinstance(read.slice, ast.Name | ast.BinOp)
            ):
                return False
        return True

    # --- seeds and their aliases ------------------------------------------------------------------

    def _candidate(self, node: ast.AST, scope: Scope) -> bool:
        """An index that enumerates candidates (`arange(V)`, a loop over `range(V)`, `topk`): not a target."""
        if isinstance(node, ast.Call):
            return call_name(node) in _CANDIDATES
        if isinstance(node, ast.Name):
            values = [v for t, v in self._by_name[id(scope)].get(node.id, ()) if isinstance(t, ast.Name)]
            return bool(values) and all(
                isinstance(v, ast.Call) and call_name(unwrap(v) if isinstance(unwrap(v), ast.Call) else v) in _CANDIDATES
                for v in values
            )
        return isinstance(node, ast.Constant | ast.Slice)

    def _seed(self, expr: ast.AST, scope: Scope, depth: int) -> None:
        if depth > 6:
            return
        node = unwrap(expr)
        if self._candidate(node, scope):
            return
        if isinstance(node, ast.Name):
            names = self.seeds.names.setdefault(id(scope), set())
            if node.id in names:
                return
            names.add(node.id)
            for target, value in self._by_name[id(scope)].get(node.id, ()):
                self._seed_from_assign(target, value, node.id, scope, depth)
            if node.id in scope.params:
                self._seed_callers(scope, node.id, depth)
        elif isinstance(node, ast.Subscript | ast.Attribute):
            spelled = self.seeds.spellings.setdefault(id(scope), set())
            text = _spell(node)
            if text in spelled:
                return
            spelled.add(text)
            for value in self._by_spelling[id(scope)].get(text, ()):
                self._seed(value, scope, depth + 1)

    def _seed_from_assign(self, target: ast.AST, value: ast.AST, name: str, scope: Scope, depth: int) -> None:
        if isinstance(target, ast.Name) and target.id == name:
            if not isinstance(getattr(target, "pg_parent", None), ast.For | ast.comprehension):
                self._seed(value, scope, depth + 1)
        elif isinstance(target, ast.Tuple | ast.List) and isinstance(value, ast.Tuple | ast.List):
            for t, v in zip(target.elts, value.elts, strict=False):
                self._seed_from_assign(t, v, name, scope, depth)

    def _seed_callers(self, callee: Scope, param: str, depth: int) -> None:
        params = [p for p in callee.params if p not in ("self", "cls")]
        if param not in params:
            return
        position = params.index(param)
        if self._callers is None:
            self._callers = {}
            for caller in self.scopes:
                for call in self.index.calls_in(caller):
                    for target in self.index.resolve_call(call, caller):
                        self._callers.setdefault(id(target), []).append((call, caller))
        for call, caller in self._callers.get(id(callee), []):
            if True:
                arg = next((kw.value for kw in call.keywords if kw.arg == param), None)
                if arg is None and position < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: position + 1]):
                    arg = call.args[position]
                if arg is not None:
                    self._seed(arg, caller, depth + 1)


def _window_loops(index: ProgramIndex, scope: Scope) -> list[tuple[str, str]]:
    """(sequence, length) for every `for j in range(L): ... s[j : j + m]` in `scope` (a loop or a comprehension):
    the L shifted windows of `s` that make up a length-L context at each position."""
    out = []
    for node in index.nodes_in(scope, (ast.For, ast.comprehension)):
        if not isinstance(node, ast.For | ast.comprehension):
            continue
        it, var = node.iter, node.target
        if not (
            isinstance(var, ast.Name) and isinstance(it, ast.Call) and call_name(it) == "range"
            and len(it.args) == 1 and isinstance(it.args[0], ast.Name)
        ):
            continue
        body = node.body if isinstance(node, ast.For) else [getattr(node, "pg_parent", node)]
        for sub in (n for stmt in body for n in walk(stmt)):
            if (
                isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Name) and isinstance(sub.slice, ast.Slice)
                and isinstance(sub.slice.lower, ast.Name) and sub.slice.lower.id == var.id and sub.slice.upper is not None
                and any(isinstance(n, ast.Name) and n.id == var.id for n in walk(sub.slice.upper))
            ):
                out.append((sub.value.id, it.args[0].id))
                break
    return out

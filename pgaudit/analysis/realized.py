"""Realized-symbol probabilities: values that hold one model's probability (or log-probability) of the symbol
that actually occurred -- the target token, or a byte of it -- and nothing about the alternatives.

A proper score is -log p_t(x_t) for a distribution p_t over the whole alphabet. Mixing two models is proper when
their full distributions are mixed (then read at x_t), or when both are normalized distributions read at the same
x_t. It is not when one side is not a distribution over that alphabet:
  - `count`: a count table read at the realized symbol (`d.get(x)`, `counts[ctx, y]`) and divided by anything
    but a sum over the alternatives (`counts[y] / tot` with a separately kept total, or no division at all);
  - `split`: a token's probability spread over its bytes (`logp[y] / n_bytes`, `p ** (1 / n_bytes)`), which is
    not a byte distribution (PR #1835 lineage: "does not sum to 1 over the byte alphabet").
Roles come from use: a realized read is a lookup keyed by a target (data-flow TARGET) or by an element of a
stream derived from the targets at the current position (`x = bs[i]`, `for b in token_bytes[t]`); a count table
is one the program increments by a constant; sources are label losses and reads of a distribution at the target.
Tags carry the source node, so a mixture is two operands with different sources.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field

from pgaudit.analysis.dataflow import TARGET, VALUE_METHODS, Flow
from pgaudit.analysis.index import ProgramIndex, Scope, call_name, dotted
from pgaudit.analysis.reaching import reaching_value
from pgaudit.analysis.targets import LABEL_LOSSES, unwrap
from pgaudit.source.parse import walk

NORM, COUNT, SPLIT, FREE = "norm", "count", "split", "free"
LOG, PROB = "log", "prob"
UNNORMALIZED = frozenset({COUNT, SPLIT, FREE})

_EXP = {"exp", "exp2", "expm1"}
_LOG = {"log", "log2", "log10", "log1p", "log_"}
_DIST = {"softmax", "log_softmax", "sigmoid"}
_NORMALIZERS = {"sum", "softmax", "log_softmax", "logsumexp", "nansum"}
_KEEP = set(VALUE_METHODS) | {
    "float", "double", "abs", "neg", "negative", "nan_to_num", "maximum_", "repeat_interleave",
    "cumsum", "asarray", "array", "tensor", "cat", "concatenate", "stack", "hstack", "vstack", "where", "clip",
    "clamp", "clamp_min", "clamp_", "repeat", "squeeze", "list", "tuple", "fromiter", "sorted", "mul", "multiply",
}  # fmt: skip
_COLLECTIVES = {"gather", "all_gather", "gather_object", "all_gather_object", "all_gather_into_tensor", "broadcast_object_list"}
_MAXES = {"max", "maximum", "fmax"}
_REDUCTIONS = {"sum", "mean", "nansum", "nanmean"}
_LIBS = {"np", "numpy", "torch", "F", "math", "dist", "nn", "os", "sys", "time", "random", "json", "re", "functools"}
_BUILTINS = {"len", "range", "print", "int", "float", "str", "bool", "zip", "enumerate", "min", "max", "sum", "abs",
             "round", "sorted", "list", "tuple", "dict", "set", "isinstance", "getattr", "hasattr", "open", "map",
             "filter", "any", "all", "bytes", "bytearray", "iter", "next", "divmod", "pow", "repr", "type", "id", "log"}  # fmt: skip
_NOT_MODEL = {"eq", "ne", "lt", "gt", "le", "ge", "add", "sub", "mul", "div", "masked_fill", "index_select",
              "where", "fill_", "zero_", "append", "extend", "format", "join", "encode", "decode", "get", "items",
              "keys", "values", "update", "split", "strip", "startswith", "endswith", "replace", "write", "read",
              "id_to_piece", "piece_to_id", "encode_as_ids", "decode_ids", "numel", "size", "dim", "bincount",
              "unique", "searchsorted", "isin", "new_zeros", "new_full", "new_tensor", "scatter_add_", "index_add_"}  # fmt: skip


@dataclass(frozen=True)
class Tag:
    """One source of a realized-symbol probability, in log or probability space."""

    origin: int  # id() of the source node
    kind: str  # NORM, COUNT or SPLIT
    space: str  # LOG or PROB


Tags = frozenset[Tag]
NONE: Tags = frozenset()


@dataclass
class Mixture:
    """Two models' realized-symbol probabilities combined: `how` is sum, logaddexp, max or logsumexp."""

    node: ast.AST
    scope: Scope
    how: str
    sides: tuple[ast.AST, ...]
    tags: Tags
    sources: list[ast.AST] = field(default_factory=list)

    @property
    def kinds(self) -> set[str]:
        return {t.kind for t in self.tags}


class Realized:
    """Tags for every expression of the live program, and the mixtures among them."""

    def __init__(self, index: ProgramIndex, flow: Flow) -> None:
        self.index = index
        self.flow = flow
        self.scopes = flow.scopes
        self.sources: dict[int, ast.AST] = {}
        self.env: dict[int, dict[str, Tags]] = {id(s): {} for s in self.scopes}
        self.params: dict[int, dict[str, Tags]] = {id(s): {} for s in self.scopes}
        self.rets: dict[int, Tags] = {}
        self.attrs: dict[str, Tags] = {}
        self.tdep: dict[int, set[str]] = {id(s): set() for s in self.scopes}
        self._values: dict[int, dict[str, list[ast.AST]]] = {}
        self._module: dict[int, Scope] = {}
        self._imports: set[str] = set()
        self._memo: dict[tuple[str, int, int], object] = {}
        self._param_keys: dict[str, tuple[Scope, str]] = {}  # root keys that are a function's parameter
        self._modules: dict[int, list[Scope]] = {}
        for s in self.scopes:
            if s.is_module:
                self._modules.setdefault(id(s.unit), []).append(s)
        self._tnames: dict[tuple[int, str], bool] = {}
        self._loads: dict[int, tuple[list[str], list[ast.Subscript]]] = {}  # realized / count_read / fname / distribution
        for scope in self.scopes:
            values: dict[str, list[ast.AST]] = {}
            for target, value, how in flow.fs[id(scope)].assigns:
                if how == "=" and isinstance(target, ast.Name) and value is not None:
                    values.setdefault(target.id, []).append(value)
            self._values[id(scope)] = values
            for node in index.walk_scope(scope):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    self._imports |= {(a.asname or a.name).split(".")[0] for a in node.names}
        self._sites = [
            (call, caller, callee)
            for caller in self.scopes
            for call in index.calls_in(caller)
            for callee in flow.resolve(call, caller)
        ]
        self._counted = self._count_tables()
        # Every real unnormalized mixture has an online count model (a PPM or n-gram table, a unigram cache):
        # without one there is nothing to solve, which keeps the common script as fast as before.
        self.active = bool(self._counted)
        if self.active:
            self._target_deps()
            self._solve()

    # --- which values derive from the targets ---------------------------------------------------

    def _target_deps(self) -> None:
        """Names whose values are computed from the targets in any way (the bytes of the target tokens)."""
        for _ in range(4):
            changed = False
            for scope in self.scopes:
                deps = self.tdep[id(scope)]
                for target, value, _how in self.flow.fs[id(scope)].assigns:
                    if value is None or not self._mentions_target(value, scope):
                        continue
                    for n in walk(target):
                        if isinstance(n, ast.Name) and n.id not in deps:
                            deps.add(n.id)
                            changed = True
            for call, caller, callee in self._sites:
                for param, arg in _bind(call, callee):
                    if param not in self.tdep[id(callee)] and self._mentions_target(arg, caller):
                        self.tdep[id(callee)].add(param)
                        changed = True
            if not changed:
                break

    def _is_tdep(self, name: str, scope: Scope) -> bool:
        cur: Scope | None = scope
        while cur is not None:
            if name in self.tdep.get(id(cur), ()):
                return True
            if name in self._values.get(id(cur), {}) or name in cur.params:
                return False
            cur = cur.parent
        return False

    def _mentions_target(self, node: ast.AST, scope: Scope) -> bool:
        loads = self._loads.get(id(node))
        if loads is None:
            names = list(dict.fromkeys(n.id for n in walk(node) if isinstance(n, ast.Name)))
            subs = [n for n in walk(node) if isinstance(n, ast.Subscript)]
            loads = self._loads[id(node)] = (names, subs)
        for name in loads[0]:
            if self._is_tdep(name, scope):
                return True
            key = (id(scope), name)
            if key not in self._tnames:
                self._tnames[key] = TARGET in self.flow.labels(ast.Name(id=name, ctx=ast.Load()), scope)
            if self._tnames[key]:
                return True
        return any(self.flow.targets.has_spelling(scope, n) for n in loads[1])

    def realized(self, key: ast.AST, scope: Scope, depth: int = 0) -> bool:
        """The symbol being scored: a target, or an element of a target-derived stream at the current position."""
        memo = ("realized", id(key), id(scope))
        if memo not in self._memo:
            self._memo[memo] = False  # a cycle through names reads as not realized
            self._memo[memo] = self._realized(key, scope, depth)
        return bool(self._memo[memo])

    def _realized(self, key: ast.AST, scope: Scope, depth: int) -> bool:
        key = unwrap(key)
        if depth > 4:
            return False
        if isinstance(key, ast.Tuple):
            return any(self.realized(e, scope, depth + 1) for e in key.elts)
        if isinstance(key, ast.Call) and call_name(key) in ("int", "bytes", "ord", "item") and key.args:
            return self.realized(key.args[0], scope, depth + 1)
        if isinstance(key, ast.Subscript):
            if isinstance(key.slice, ast.Slice) or _offset_back(key.slice):
                return False
            if self.flow.targets.has_spelling(scope, key):
                return True
            base = key.value
            return self._mentions_target(base, scope) and not _positional_constant(key.slice)
        if isinstance(key, ast.Name):
            for value in self._bound(key.id, scope):
                if value is not None and self.realized(value, scope, depth + 1):
                    return True
            if self._loop_over_target(key.id, scope):
                return True
            # a parameter, or a name bound only by effects, that the data-flow calls a target
            if (key.id in scope.params or not self._bound(key.id, scope)) and TARGET in self.flow.labels(key, scope):
                return True
            if key.id in scope.params and not self._bound(key.id, scope):  # what the callers pass
                return any(
                    param == key.id and self.realized(arg, caller, depth + 1)
                    for call, caller, callee in self._sites
                    if callee is scope
                    for param, arg in _bind(call, callee)
                )
            return False
        if isinstance(key, ast.BinOp):  # `prev * V + y`: a flat (context, target) key
            return self.realized(key.left, scope, depth + 1) or self.realized(key.right, scope, depth + 1)
        return False

    def _target_index(self, index: ast.AST, scope: Scope) -> bool:
        """The index of a distribution read: the targets (a window of them, `w[1:]`, counts too) or the realized
        symbol."""
        return TARGET in self.flow.labels(unwrap(index), scope) or self.realized(index, scope)

    def _loop_over_target(self, name: str, scope: Scope) -> bool:
        """`for b in token_bytes[t]:`, `for t, lp in zip(tgts, lps):`: a loop variable over target-derived values."""
        for node in self.index.walk_scope(scope):
            if not (isinstance(node, ast.For | ast.comprehension) and any(
                isinstance(n, ast.Name) and n.id == name for n in walk(node.target)
            )):
                continue
            it = node.iter
            if isinstance(it, ast.Call) and call_name(it) == "range":
                continue
            if isinstance(it, ast.Call) and call_name(it) in ("zip", "enumerate"):
                pos = _tuple_position(node.target, name)
                args = list(it.args)
                if call_name(it) == "enumerate":
                    args = [ast.Constant(0), *args]
                if pos is not None and pos < len(args):
                    if self._mentions_target(args[pos], scope):
                        return True
                    continue
            if self._mentions_target(it, scope):
                return True
        return False

    def _bound(self, name: str, scope: Scope) -> list[ast.AST]:
        return self._values.get(id(scope), {}).get(name, [])

    # --- count tables ---------------------------------------------------------------------------

    def root(self, node: ast.AST, scope: Scope, depth: int = 0) -> set[str]:
        """The tables a read goes back to: `d = e[2]`, `e = tabs[o].get(k)` -> `tabs` (every binding of a name
        reused for two tables counts)."""
        if depth > 6:
            return set()
        if isinstance(node, ast.Subscript):
            return self.root(node.value, scope, depth + 1)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
            call_name(node) in ("get", "setdefault", "reshape", "view", "flatten", "ravel", "__getitem__")
        ):
            return self.root(node.func.value, scope, depth + 1)
        if isinstance(node, ast.Attribute):
            return {"attr:" + node.attr}
        if isinstance(node, ast.Name):
            owner = self._owner(node.id, scope)
            found: set[str] = set()
            for value in self._values.get(id(owner), {}).get(node.id, []) if owner else []:
                follow = isinstance(value, ast.Subscript | ast.Attribute) or (
                    isinstance(value, ast.Call) and call_name(value) in ("get", "setdefault", "reshape", "view")
                )
                if follow:
                    found |= self.root(value, owner, depth + 1)  # type: ignore[arg-type]
            if found:
                return found
            key = f"{id(owner) if owner else 0}:{node.id}"
            if owner is not None and node.id in owner.params and node.id not in self._values.get(id(owner), {}):
                self._param_keys[key] = (owner, node.id)
            return {key}
        return set()

    def table_roots(self, node: ast.AST, scope: Scope, depth: int = 0) -> set[str]:
        """Roots of a table, through a helper's parameter to what its callers pass (`entry` <- `counts.get(key)`)."""
        found: set[str] = set()
        for key in self.root(node, scope):
            found.add(key)
            if key not in self._param_keys or depth > 2:
                continue
            owner, name = self._param_keys[key]
            for call, caller, callee in self._sites:
                if callee is owner:
                    for param, arg in _bind(call, callee):
                        if param == name:
                            found |= self.table_roots(arg, caller, depth + 1)
        return found

    def _owner(self, name: str, scope: Scope) -> Scope | None:
        cur: Scope | None = scope
        while cur is not None:
            if name in self._values.get(id(cur), {}) or name in cur.params:
                return cur
            cur = cur.parent
        for s in self._modules.get(id(scope.unit), []):
            if name in self._values.get(id(s), {}):
                return s
        return scope

    def _count_tables(self) -> set[str]:
        """Tables the program increments by a constant: `t[k] += 1`, `d[k] = d.get(k, 0) + 1`,
        `np.add.at(t, k, 1)`, `t.scatter_add_(0, k, ones)`, `Counter.update`."""
        found: set[str] = set()
        for scope in self.scopes:
            for node in self.index.nodes_in(scope, (ast.AugAssign, ast.Assign, ast.Call)):
                table: ast.AST | None = None
                if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) and isinstance(node.target, ast.Subscript):
                    if _unit(node.value, scope, self):
                        table = node.target
                elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript):
                    value = node.value
                    if isinstance(value, ast.Name):
                        value = next(iter(self._bound(value.id, scope)), value)
                    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
                        for const, read in ((value.right, value.left), (value.left, value.right)):
                            if _unit(const, scope, self) and isinstance(read, ast.Subscript | ast.Call) and (
                                self.root(read, scope) & self.root(node.targets[0], scope)
                            ):
                                table = node.targets[0]
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    name = call_name(node)
                    if name == "at" and len(node.args) >= 3 and _unit(node.args[2], scope, self):
                        table = node.args[0]
                    elif (name in ("scatter_add_", "index_add_") and len(node.args) >= 3 and _unit(node.args[2], scope, self)) or (
                        name == "index_put_" and any(k.arg == "accumulate" for k in node.keywords)
                    ):
                        table = node.func.value
                    elif name == "update" and isinstance(node.func.value, ast.Name) and any(
                        isinstance(v, ast.Call) and call_name(v) == "Counter" for v in self._bound(node.func.value.id, scope)
                    ):
                        table = node.func.value  # `c = Counter(); c.update([x])`
                if isinstance(table, ast.Subscript) and all(
                    isinstance(k, ast.Constant) for k in (table.slice.elts if isinstance(table.slice, ast.Tuple) else [table.slice])
                ):
                    continue  # `stats["bytes"] += 1`: a record of counters, not a table keyed by data
                if table is not None:
                    found |= self.root(table, scope)
        return found

    def count_read(self, node: ast.AST, scope: Scope) -> bool:
        """A read of a count table at the realized symbol."""
        memo = ("count", id(node), id(scope))
        if memo not in self._memo:
            self._memo[memo] = self._count_read(node, scope)
        return bool(self._memo[memo])

    def _count_read(self, node: ast.AST, scope: Scope) -> bool:
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            table, key = node.value, node.slice
        elif isinstance(node, ast.Call) and call_name(node) == "get" and node.args and isinstance(node.func, ast.Attribute):
            table, key = node.func.value, node.args[0]
        else:
            return False
        return bool(self.table_roots(table, scope) & self._counted) and self.realized(key, scope)

    # --- tags -----------------------------------------------------------------------------------

    def _solve(self) -> None:
        for _ in range(6):
            changed = False
            for scope in self.scopes:
                changed |= self._solve_scope(scope)
                fs = self.flow.fs[id(scope)]
                ret = _union(self.tags(r, scope) for r in fs.returns)
                if ret != self.rets.get(id(scope), NONE):
                    self.rets[id(scope)] = ret
                    changed = True
            for call, caller, callee in self._sites:
                for param, arg in _bind(call, callee):
                    tags = self.tags(arg, caller)
                    current = self.params[id(callee)].get(param, NONE)
                    if not tags <= current:
                        self.params[id(callee)][param] = current | tags
                        changed = True
            if not changed:
                break

    def _solve_scope(self, scope: Scope) -> bool:
        env = self.env[id(scope)]
        changed_any = False
        for _ in range(4):
            changed = False
            for target, value, how in self.flow.fs[id(scope)].assigns:
                if value is None:
                    continue
                if how == "aug":
                    tags = self._binop(value.target, value.op, value.value, scope, value)  # type: ignore[attr-defined]
                elif how == "iter" and isinstance(value, ast.Call) and call_name(value) == "zip" and isinstance(target, ast.Tuple):
                    for t, a in zip(target.elts, value.args, strict=False):
                        changed |= self._bind_target(env, t, self.tags(a, scope))
                    continue
                else:
                    tags = self.tags(value, scope)
                changed |= self._bind_target(env, target, tags)
            for call in self.index.calls_in(scope):  # `dist.gather(src, dst_list)` fills the list
                func = call.func
                if call_name(call) in _COLLECTIVES and isinstance(func, ast.Attribute) and dotted(func.value).split(".")[-1] in ("dist", "distributed"):
                    tags = _union(self.tags(a, scope) for a in call.args)
                    for a in call.args:
                        changed |= self._bind_target(env, a, tags)
            changed_any |= changed
            if not changed:
                break
        return changed_any

    def _bind_target(self, env: dict[str, Tags], target: ast.AST, tags: Tags) -> bool:
        if not tags:
            return False
        while isinstance(target, ast.Subscript | ast.Starred):
            target = target.value
        if isinstance(target, ast.Name):
            if not tags <= env.get(target.id, NONE):
                env[target.id] = env.get(target.id, NONE) | tags
                return True
            return False
        if isinstance(target, ast.Tuple | ast.List):
            return any([self._bind_target(env, t, tags) for t in target.elts])
        if isinstance(target, ast.Attribute) and not (isinstance(target.value, ast.Name) and target.value.id in _LIBS):
            if not tags <= self.attrs.get(target.attr, NONE):
                self.attrs[target.attr] = self.attrs.get(target.attr, NONE) | tags
                return True
        return False

    def _name(self, name: str, scope: Scope) -> Tags:
        cur: Scope | None = scope
        while cur is not None:
            env = self.env.get(id(cur), {})
            if name in env or name in cur.params:
                return env.get(name, NONE) | self.params.get(id(cur), {}).get(name, NONE)
            if name in self._values.get(id(cur), {}):
                return NONE
            cur = cur.parent
        for s in self._modules.get(id(scope.unit), []):
            if name in self.env.get(id(s), {}):
                return self.env[id(s)][name]
        return NONE

    def fname(self, call: ast.Call, scope: Scope) -> str:
        """The function a call names, through simple aliases (`_ln = math.log`, `log = math.log`)."""
        memo = ("fname", id(call), id(scope))
        if memo not in self._memo:
            self._memo[memo] = self._fname(call, scope)
        return str(self._memo[memo])

    def _fname(self, call: ast.Call, scope: Scope) -> str:
        name = call_name(call)
        if isinstance(call.func, ast.Name):
            owner = self._owner(name, scope)
            for value in self._values.get(id(owner), {}).get(name, []) if owner else []:
                if isinstance(value, ast.Attribute | ast.Name):
                    return dotted(value).split(".")[-1] or name
        return name

    def tags(self, node: ast.AST, scope: Scope) -> Tags:
        if isinstance(node, ast.Name):
            return self._name(node.id, scope)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in _LIBS:
                return NONE
            return self.attrs.get(node.attr, NONE)
        if isinstance(node, ast.Subscript):
            return self._subscript(node, scope)
        if isinstance(node, ast.BinOp):
            return self._binop(node.left, node.op, node.right, scope, node)
        if isinstance(node, ast.UnaryOp):
            return NONE if isinstance(node.op, ast.Not) else self.tags(node.operand, scope)
        if isinstance(node, ast.IfExp):
            return self.tags(node.body, scope) | self.tags(node.orelse, scope)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return _union(self.tags(e, scope) for e in node.elts)
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            return self.tags(node.elt, scope)
        if isinstance(node, ast.Starred | ast.NamedExpr):
            return self.tags(node.value, scope)
        return NONE

    def _source(self, node: ast.AST, kind: str, space: str) -> Tags:
        self.sources[id(node)] = node
        return frozenset({Tag(id(node), kind, space)})

    def _subscript(self, node: ast.Subscript, scope: Scope) -> Tags:
        base = self.tags(node.value, scope)
        if self.count_read(node, scope):
            return self._source(node, COUNT, PROB)
        if not base and self._distribution(node.value, scope):
            index = node.slice.elts[-1] if isinstance(node.slice, ast.Tuple) and node.slice.elts else node.slice
            if self._target_index(index, scope):
                return self._source(node, NORM, self._space_of_dist(node.value, scope))
        return base

    def _call(self, node: ast.Call, scope: Scope) -> Tags:
        name = self.fname(node, scope)
        func = node.func
        receiver = func.value if isinstance(func, ast.Attribute) else None
        args = list(node.args)
        if name in LABEL_LOSSES:
            return self._source(node, NORM, LOG)
        if name == "gather" and receiver is not None and dotted(receiver).split(".")[-1] not in ("dist", "distributed"):
            if isinstance(receiver, ast.Name) and receiver.id in _LIBS:  # torch.gather(input, dim, index)
                base, index = (args[0] if args else None), (args[2] if len(args) >= 3 else None)
            else:
                base, index = receiver, (args[1] if len(args) >= 2 else None)
            index = index or next((k.value for k in node.keywords if k.arg == "index"), None)
            if base is not None and index is not None and self._distribution(base, scope) and self._target_index(index, scope):
                return self._source(node, NORM, self._space_of_dist(base, scope))
            return self.tags(base, scope) if base is not None else NONE
        if name == "get" and self.count_read(node, scope):
            return self._source(node, COUNT, PROB)
        inner = _union(self.tags(a, scope) for a in args) | (self.tags(receiver, scope) if receiver is not None else NONE)
        if name in _REDUCTIONS and not (isinstance(receiver, ast.Name) and receiver.id in ("dist",)):
            return NONE  # a total over positions (a summed loss, mean weights) is no longer one symbol's probability
        if name in _EXP:
            return frozenset(Tag(t.origin, t.kind, PROB) for t in inner)
        if name in _LOG:
            return frozenset(Tag(t.origin, t.kind, LOG) for t in inner)
        if name in ("logaddexp", "logaddexp2", "logsumexp"):
            return frozenset(Tag(t.origin, t.kind, LOG) for t in inner)
        if name == "where" and len(args) == 3:
            return self.tags(args[1], scope) | self.tags(args[2], scope)
        if name == "pow" and len(args) == 2:
            return self._binop(args[0], ast.Pow(), args[1], scope, node)
        callees = self.flow.resolve(node, scope)
        if callees:
            return _union(self.rets.get(id(c), NONE) for c in callees)
        if self._model_score(node, scope):
            return self._source(node, NORM, LOG)
        if name in _KEEP or name in _MAXES or name in ("min", "minimum"):
            return inner
        return NONE

    def _model_score(self, node: ast.Call, scope: Scope) -> bool:
        """An unresolved callable (a compiled forward, a model passed in) given inputs and the targets: the
        model's loss on the targets."""
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in _BUILTINS or func.id in self._imports or func.id in _LIBS:
                return False
        elif isinstance(func, ast.Attribute):
            root = func.value
            while isinstance(root, ast.Attribute | ast.Call | ast.Subscript):
                root = root.func if isinstance(root, ast.Call) else root.value
            if call_name(node) in _NOT_MODEL or call_name(node) in _KEEP or (isinstance(root, ast.Name) and (root.id in self._imports or root.id in _LIBS)):
                return False
        else:
            return False
        return len(node.args) >= 2 and any(TARGET in self.flow.labels(a, scope) for a in node.args[1:])

    def _distribution(self, node: ast.AST, scope: Scope, depth: int = 0) -> bool:
        """A (log-)probability over the alphabet: softmax/log_softmax output or a value computed from one."""
        memo = ("dist", id(node), id(scope))
        if memo not in self._memo:
            self._memo[memo] = False
            self._memo[memo] = self._is_distribution(node, scope, depth)
        return bool(self._memo[memo])

    def _is_distribution(self, node: ast.AST, scope: Scope, depth: int) -> bool:
        for n in walk(node):
            if isinstance(n, ast.Call) and (self.fname(n, scope) in _DIST or call_name(n) in ("log", "exp")):
                return True
            if isinstance(n, ast.Name) and depth < 3:
                for value in self._bound(n.id, scope):
                    if self._distribution(value, scope, depth + 1):
                        return True
        return False

    def _space_of_dist(self, node: ast.AST, scope: Scope, depth: int = 0) -> str:
        """Log space when the outermost transform is a log (`log_softmax`, `p.log()`), else probabilities."""
        for n in walk(node):  # breadth first: outer calls before inner ones
            if isinstance(n, ast.Call):
                name = self.fname(n, scope)
                if name in ("log_softmax", "log", "log2", "log10"):
                    return LOG
                if name in ("softmax", "exp", "sigmoid"):
                    return PROB
            if isinstance(n, ast.Name) and depth < 3:
                for value in self._bound(n.id, scope):
                    if self._distribution(value, scope):
                        return self._space_of_dist(value, scope, depth + 1)
        return PROB

    def _binop(self, left: ast.AST, op: ast.operator, right: ast.AST, scope: Scope, node: ast.AST) -> Tags:
        a, b = self.tags(left, scope), self.tags(right, scope)
        if isinstance(op, ast.Div) and a and not b:
            if any(t.kind == COUNT for t in a) and self._normalizer(right, scope):
                return frozenset(Tag(t.origin, NORM if t.kind == COUNT else t.kind, t.space) for t in a)
            if any(t.space == LOG for t in a) and self._mentions_target(right, scope) and not isinstance(right, ast.Constant):
                return frozenset(Tag(t.origin, SPLIT, t.space) for t in a)  # a token's log-prob per byte
            return a
        if isinstance(op, ast.Pow):
            if a and not b and self._mentions_target(right, scope) and not isinstance(right, ast.Constant):
                return frozenset(Tag(t.origin, SPLIT, t.space) for t in a)  # p ** (1 / n_bytes)
            if b and not a:  # 2 ** logp
                return frozenset(Tag(t.origin, t.kind, PROB) for t in b)
            return a | b
        return a | b

    def _normalizer(self, node: ast.AST, scope: Scope, depth: int = 0) -> bool:
        """A sum over the alternatives in a denominator: `row.sum()`, `sum(counts.values())`."""
        for n in walk(node):
            if isinstance(n, ast.Call) and self.fname(n, scope) in _NORMALIZERS:
                return True
            if isinstance(n, ast.Name) and depth < 3:
                if any(self._normalizer(v, scope, depth + 1) for v in self._bound(n.id, scope)):
                    return True
        return False

    # --- mixtures -------------------------------------------------------------------------------

    def mixtures(self) -> list[Mixture]:
        found: list[Mixture] = []
        if not self.active:
            return found
        seen: set[int] = set()
        for scope in self.scopes:
            for node in self.index.nodes_in(scope, (ast.BinOp, ast.Call)):  # what `_mixture` can be
                mix = self._mixture(node, scope)
                if mix is not None and id(mix.node) not in seen:
                    seen.add(id(mix.node))
                    mix.sources = [self.sources[t.origin] for t in sorted(mix.tags, key=lambda t: t.origin) if t.origin in self.sources]
                    found.append(mix)
        return found

    def _at(self, expr: ast.AST, scope: Scope, depth: int = 2) -> Tags:
        """Tags of `expr` with its names read from the assignment that reaches it, when that is certain: a name
        reused in two branches (`lb` from a count table in one, a normalized pointer in the other) does not mix."""
        env = self.env.get(id(scope), {})
        overrides: dict[str, Tags] = {}
        if depth > 0:
            for name in dict.fromkeys(n.id for n in walk(expr) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)):
                if name in env:
                    value = reaching_value(name, expr, scope)
                    if value is not None:
                        overrides[name] = self._at(value, scope, depth - 1) & env[name]
        saved = {name: env[name] for name in overrides}
        env.update(overrides)
        try:
            return self.tags(expr, scope)
        finally:
            env.update(saved)

    def _mixture(self, node: ast.AST, scope: Scope) -> Mixture | None:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            a, b = self._at(node.left, scope), self._at(node.right, scope)
            if _two_models(_in(a, PROB), _in(b, PROB)) and self._scored(node, scope):
                return Mixture(node, scope, "sum", (node.left, node.right), _in(a, PROB) | _in(b, PROB))
            for side, other in ((node.left, node.right), (node.right, node.left)):  # max(a, c) + log1p(exp(-|a - c|))
                if isinstance(side, ast.Call) and self.fname(side, scope) in _MAXES and len(side.args) == 2:
                    x, y = _in(self._at(side.args[0], scope), LOG), _in(self._at(side.args[1], scope), LOG)
                    if _two_models(x, y, lenient=True) and _softplus(other, self, scope):
                        return Mixture(node, scope, "logaddexp", tuple(side.args[:2]), x | y)
            return None
        if not isinstance(node, ast.Call):
            return None
        name = self.fname(node, scope)
        if name in ("logaddexp", "logaddexp2") and len(node.args) >= 2:
            a, b = self._at(node.args[0], scope), self._at(node.args[1], scope)
            if _two_models(_in(a, LOG), _in(b, LOG), lenient=True):
                return Mixture(node, scope, "logaddexp", tuple(node.args[:2]), a | b)
        if name in _MAXES and len(node.args) >= 2:
            a, b = self._at(node.args[0], scope), self._at(node.args[1], scope)
            if _two_models(_in(a, PROB), _in(b, PROB)) and self._scored(node, scope):
                return Mixture(node, scope, "max", tuple(node.args[:2]), a | b)
        if name == "logsumexp" or name in _REDUCTIONS:  # over stacked experts: log space, or weighted probabilities
            func = node.func
            method = isinstance(func, ast.Attribute) and not (isinstance(func.value, ast.Name) and func.value.id in _LIBS)
            inner = func.value if method else node.args[0] if node.args else None  # type: ignore[union-attr]
            if inner is not None:
                space = LOG if name == "logsumexp" else PROB
                tags = _in(self._at(inner, scope), space)
                if space == LOG and tags:
                    tags = tags | self._free_experts(inner, scope)
                origins = {t.origin for t in tags}
                if len(origins) >= 2 and any(t.kind in UNNORMALIZED for t in tags) and (
                    space == LOG or self._scored(node, scope)
                ):
                    return Mixture(node, scope, "logsumexp" if space == LOG else "sum", (inner,), tags)
        return None

    def _free_experts(self, inner: ast.AST, scope: Scope) -> Tags:
        """Stacked "experts" that are no symbol's probability: a reduction of the model's whole distribution
        (its entropy, `-(p * logp).sum(-1)`) stacked beside target log-probs and log-sum-exp mixed as if it were
        one (hedge mixers): over the vocabulary it sums to V times its weight."""
        found: set[Tag] = set()
        for element, where in self._stack_elements(inner, scope, 0):
            while isinstance(element, ast.UnaryOp):  # `-entropy`
                element = element.operand
            values = [element]
            if isinstance(element, ast.Name):
                values = self._bound(element.id, where) or values
            for value in values:
                if self.tags(value, where):
                    continue
                reductions = [n for n in walk(value) if isinstance(n, ast.Call) and self.fname(n, where) in _REDUCTIONS]
                if any(self._distribution(r, where) for r in reductions) and not any(
                    isinstance(n, ast.Subscript | ast.Call) and (
                        (isinstance(n, ast.Call) and call_name(n) == "gather") or isinstance(n, ast.Subscript)
                    ) and self._target_index(n.slice if isinstance(n, ast.Subscript) else (n.args[-1] if n.args else n), where)
                    for n in walk(value)
                ):
                    self.sources[id(value)] = value
                    found.add(Tag(id(value), FREE, LOG))
        return frozenset(found)

    def _stack_elements(self, expr: ast.AST, scope: Scope, depth: int) -> list[tuple[ast.AST, Scope]]:
        """The elements of the `stack([...])` an expression holds, through names, arithmetic and returns."""
        if depth > 8:
            return []
        if isinstance(expr, ast.UnaryOp):
            return self._stack_elements(expr.operand, scope, depth + 1)
        if isinstance(expr, ast.BinOp):
            return self._stack_elements(expr.left, scope, depth + 1) + self._stack_elements(expr.right, scope, depth + 1)
        if isinstance(expr, ast.Name):
            if expr.id in scope.params and not self._bound(expr.id, scope):  # what the callers pass
                return [
                    e
                    for call, caller, callee in self._sites
                    if callee is scope
                    for param, arg in _bind(call, callee)
                    if param == expr.id
                    for e in self._stack_elements(arg, caller, depth + 1)
                ]
            return [e for v in self._bound(expr.id, scope) for e in self._stack_elements(v, scope, depth + 1)]
        if not isinstance(expr, ast.Call):
            return []
        if self.fname(expr, scope) in ("stack", "cat", "hstack", "vstack", "column_stack") and expr.args and isinstance(
            expr.args[0], ast.List | ast.Tuple
        ):
            return [(e, scope) for e in expr.args[0].elts]
        callees = self.flow.resolve(expr, scope)
        if callees:
            return [
                e for c in callees for r in self.flow.fs[id(c)].returns for e in self._stack_elements(r, c, depth + 1)
            ]
        if isinstance(expr.func, ast.Attribute):  # `.unsqueeze(0)`, `.to(...)`
            return self._stack_elements(expr.func.value, scope, depth + 1)
        return []

    def _scored(self, node: ast.AST, scope: Scope, depth: int = 0) -> bool:
        """The mixture's value reaches a log: `-log2(pm)`, `nll -= log(mix)` (the log-loss that is reported),
        in its function or, through its return, at the callers."""
        cur = getattr(node, "pg_parent", None)
        while cur is not None and not isinstance(cur, ast.stmt):
            if isinstance(cur, ast.Call) and (self.fname(cur, scope) in _LOG):
                return True
            cur = getattr(cur, "pg_parent", None)
        if isinstance(cur, ast.Return):
            return self._scored_by_callers(scope, depth)
        if not isinstance(cur, ast.Assign | ast.AnnAssign | ast.AugAssign):
            return False
        targets = cur.targets if isinstance(cur, ast.Assign) else [cur.target]
        names = {n.id for t in targets for n in walk(t) if isinstance(n, ast.Name)}
        for _ in range(2):
            more: set[str] = set()
            for s in self._scope_and_nested(scope):
                for n in self.index.walk_scope(s):
                    if isinstance(n, ast.Call) and self.fname(n, s) in _LOG and _mentions(n, names):
                        return True
                    if isinstance(n, ast.Assign) and _mentions(n.value, names):
                        more |= {x.id for t in n.targets for x in walk(t) if isinstance(x, ast.Name)}
                    if isinstance(n, ast.Return) and n.value is not None and _mentions(n.value, names) and s is scope:
                        if self._scored_by_callers(scope, depth):
                            return True
            names |= more
        return False

    def _scored_by_callers(self, scope: Scope, depth: int) -> bool:
        if depth >= 2:
            return False
        return any(callee is scope and self._scored(call, caller, depth + 1) for call, caller, callee in self._sites)

    def _scope_and_nested(self, scope: Scope) -> Iterable[Scope]:
        yield scope
        for s in self.scopes:
            if s.parent is scope:
                yield s


def _two_models(a: Tags, b: Tags, lenient: bool = False) -> bool:
    """Each side has a source the other lacks (for an explicit log-space mixture, `logaddexp(a, c)`, the sides
    differ: flow-insensitive tags can give one side the other's sources too), and one side is not a normalized
    distribution's value."""
    oa, ob = {t.origin for t in a}, {t.origin for t in b}
    apart = (bool(oa) and bool(ob) and oa != ob) if lenient else (bool(oa - ob) and bool(ob - oa))
    return apart and any(t.kind in UNNORMALIZED for t in a | b)


def _in(tags: Tags, space: str) -> Tags:
    return frozenset(t for t in tags if t.space == space)


def _union(items: Iterable[Tags]) -> Tags:
    out: set[Tag] = set()
    for item in items:
        out |= item
    return frozenset(out)


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in walk(node))


def _softplus(node: ast.AST, realized: Realized, scope: Scope) -> bool:
    """`log1p(exp(d))` or `log(1 + exp(d))`: the correction term of a hand-written logaddexp."""
    for n in walk(node):
        if isinstance(n, ast.Call) and realized.fname(n, scope) in _LOG:
            if any(isinstance(m, ast.Call) and realized.fname(m, scope) in _EXP for m in walk(n)):
                return True
    return False


def _offset_back(index: ast.AST) -> bool:
    """`s[i - k]`, `s[-1]`: a context position, not the current one."""
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    for p in parts:
        if isinstance(p, ast.BinOp) and isinstance(p.op, ast.Sub):
            return True
        if isinstance(p, ast.UnaryOp) and isinstance(p.op, ast.USub):
            return True
    return False


def _positional_constant(index: ast.AST) -> bool:
    """`e[0]`, `e[2]`: a field of a record, not a position in a stream."""
    return isinstance(index, ast.Constant)


def _tuple_position(target: ast.AST, name: str) -> int | None:
    if isinstance(target, ast.Tuple):
        for i, e in enumerate(target.elts):
            if isinstance(e, ast.Name) and e.id == name:
                return i
    return None


def _unit(node: ast.AST, scope: Scope, realized: Realized) -> bool:
    """An increment by a constant (a count): `1`, `ones`, `torch.ones(n)`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return True
    if isinstance(node, ast.Call) and call_name(node) in ("ones", "ones_like", "full_like"):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):  # `d.get(x, 0) + 1`
        return _unit(node.right, scope, realized) or _unit(node.left, scope, realized)
    if isinstance(node, ast.Name):
        return any(isinstance(v, ast.Call) and call_name(v) in ("ones", "ones_like") for v in realized._bound(node.id, scope))
    return False


def _bind(call: ast.Call, callee: Scope) -> list[tuple[str, ast.AST]]:
    from pgaudit.analysis.dataflow import _bind_args  # the same binding the data-flow uses

    return _bind_args(call, callee)

"""Data-flow labels: which values derive from validation tokens, training tokens, prediction targets, and
which are hash keys that mix a target into a context hash.

Labels are strings on expressions:
  `val`, `train`   provenance: what flows from the shards (literals like "fineweb_val_*.bin", folded
                   strings, loaders), never a name (`val_tokens` is whatever was assigned to it)
  `target`         the prediction target ids, from their use (the label of a loss, the index of a
                   probability, `chunk[1:]` of the scored window, the token after a context read from the same
                   validation stream), never from a name; and value-preserving transforms of them
  `tprop`          a property of the target (`is_boundary[tgt]`, `y == hint`)
  `hash`           hash arithmetic (multiplication by large constants or prime tables, XOR chains)
  `tkey@N`         a key that mixes a target into a context hash; N indexes `Flow.tkey_origins`
  `param:NAME`     (symbolic) whatever the caller passes as parameter NAME

Effects bind like assignments (`xs.append(v)`, `h ^= v`, `h.bitwise_xor_(v)`, `np.add.at(t, k, v)`, `d[k] = v`,
`setattr`); dicts, lists and local objects built from literals and constant keys are known field by field
(`d["ctx"]`, `xs[1]`, `ns.m`); loops over `zip`/`enumerate`/literal tuples bind element-wise; operators spelled
as calls (`operator.xor`, `functools.reduce`, `functools.partial`, lambdas, `getattr(np, "bitwise_" + "xor")`)
mix like the operator; keys joined from parts (`hash((c, t))`, f-strings, string concatenation, `%`,
`format`, `join`, `tobytes`) are target-keyed when a part is the target and another the context; string
constants are folded (`"fineweb_" + "va" + "l_*.bin"`, `f"{root}/fineweb_{SPLIT}_*.bin"`) before their data
kind is read.

The analysis is flow-insensitive inside a function (a variable carries the union of all its assignments) and
summary-based across functions: a function's return labels are computed with symbolic parameters and
substituted at each call site (so helpers like `hash_full(tokens, targets)` stay precise), while the
concrete labels of a function's parameters are the union over its live call sites.
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pgaudit.analysis.index import ProgramIndex, Scope, call_name, dotted
from pgaudit.analysis.names import literal_data_kind as _literal_data_kind
from pgaudit.analysis.targets import TargetFinder
from pgaudit.source.parse import walk

VAL, TRAIN, TARGET, HASH = "val", "train", "target", "hash"
TPROP = "tprop"  # a property of the target token (a table read at it, a comparison with it)
TKEY = "tkey@"
PARAM = "param:"
PROVENANCE = frozenset({VAL, TRAIN})
EMPTY: frozenset[str] = frozenset()

Labels = frozenset[str]

# Calls and methods that return the same values in another container, dtype or device.
VALUE_METHODS = {
    "astype", "to", "long", "int", "float", "double", "half", "bfloat16", "cpu", "cuda", "numpy", "view",
    "reshape", "flatten", "ravel", "contiguous", "clone", "detach", "squeeze", "unsqueeze", "expand",
    "expand_as", "repeat", "tolist", "item", "type", "copy", "pin_memory", "narrow", "t", "transpose",
    "permute", "flip", "roll", "view_as", "reshape_as", "unfold", "split", "chunk", "tensor_split",
    "__getitem__", "get", "pop", "index_select", "masked_select", "take", "gather", "share_memory_",
}  # fmt: skip
VALUE_FUNCS = {
    "asarray", "array", "as_tensor", "tensor", "from_numpy", "ascontiguousarray", "int64", "uint64", "int32",
    "uint32", "int16", "uint16", "LongTensor", "IntTensor", "list", "tuple", "concatenate", "cat", "stack",
    "hstack", "vstack", "clip", "clamp", "where", "int", "sorted", "reversed", "flatten", "ravel", "copy",
    "atleast_1d", "frombuffer", "fromfile", "memmap", "load", "next", "iter", "from_file", "str", "repr",
}  # fmt: skip
# Sizes, positions and metadata derived from data are not the data: a buffer sized by the validation set does
# not hold validation tokens.
_SIZE_CALLS = {
    "len", "numel", "nelement", "size", "dim", "ndimension", "range", "arange", "isinstance", "hasattr", "callable",
    "id", "type", "linspace", "get_rank", "get_world_size", "zeros", "ones", "empty", "full", "randn", "rand",
    "zeros_like", "ones_like", "empty_like", "randn_like",
}  # fmt: skip
_METADATA_ATTRS = {"shape", "ndim", "dtype", "device", "is_cuda", "requires_grad", "itemsize", "nbytes"}
MIX_FUNCS = {"bitwise_xor", "bitwise_or", "add", "logical_xor"}
# In-place effects: filling a container, or mixing into a tensor (`h.bitwise_xor_(v)` is `h ^= v`).
_CONTAINER_FILL = {"append", "extend", "insert", "add", "appendleft", "extendleft", "update", "put", "put_nowait", "setdefault"}
_INPLACE_MIX = {"bitwise_xor_", "bitwise_or_", "add_", "__ixor__", "__iadd__"}
_MIX_OPS = (ast.BitXor, ast.Add, ast.BitOr, ast.Sub, ast.Mult)
_HASH_PRIME_MIN = 1000


_CLOCK = itertools.count(1)  # stamps for "changed at" / "settled at" (speed only: see Flow._settled_now)


class _Stamped(dict):  # type: ignore[type-arg]
    """A dict that remembers when it last changed (environments, attribute provenance)."""

    changed_at = 0

    def _touch(self) -> None:
        self.changed_at = next(_CLOCK)

    def __setitem__(self, key, value):  # type: ignore[no-untyped-def]
        super().__setitem__(key, value)
        self._touch()

    def __delitem__(self, key):  # type: ignore[no-untyped-def]
        super().__delitem__(key)
        self._touch()

    def setdefault(self, key, default=None):  # type: ignore[no-untyped-def]
        if key not in self:
            self._touch()
        return super().setdefault(key, default)

    def update(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().update(*args, **kwargs)
        self._touch()

    def __ior__(self, other):  # type: ignore[no-untyped-def]
        self._touch()
        return super().__ior__(other)

    def pop(self, *args):  # type: ignore[no-untyped-def]
        self._touch()
        return super().pop(*args)

    def popitem(self):  # type: ignore[no-untyped-def]
        self._touch()
        return super().popitem()

    def clear(self) -> None:
        super().clear()
        self._touch()


class _KeyStamped(_Stamped):
    """A _Stamped dict that also remembers when each key last changed (attribute provenance: a scope that
    reads none of the attributes that changed is not unsettled by them)."""

    def __init__(self) -> None:
        super().__init__()
        self.key_changed_at: dict[str, int] = {}

    def __setitem__(self, key, value):  # type: ignore[no-untyped-def]
        super().__setitem__(key, value)
        self.key_changed_at[key] = self.changed_at

    def __delitem__(self, key):  # type: ignore[no-untyped-def]
        super().__delitem__(key)
        self.key_changed_at[key] = self.changed_at

    def setdefault(self, key, default=None):  # type: ignore[no-untyped-def]
        new = key not in self
        out = super().setdefault(key, default)
        if new:
            self.key_changed_at[key] = self.changed_at
        return out

    def _touch_all(self) -> None:
        # a change the key stamps do not follow (update, |=, pop, clear): every key counts as changed
        self.key_changed_at = dict.fromkeys(self.key_changed_at, 0)
        self.everything_changed_at = self.changed_at

    everything_changed_at = 0

    def update(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().update(*args, **kwargs)
        self._touch_all()

    def __ior__(self, other):  # type: ignore[no-untyped-def]
        out = super().__ior__(other)
        self._touch_all()
        return out

    def pop(self, *args):  # type: ignore[no-untyped-def]
        out = super().pop(*args)
        self._touch_all()
        return out

    def popitem(self):  # type: ignore[no-untyped-def]
        out = super().popitem()
        self._touch_all()
        return out

    def clear(self) -> None:
        super().clear()
        self._touch_all()

    def changed_since(self, keys: frozenset[str], at: int) -> bool:
        """Whether any of `keys` (or the whole dict, by a bulk change) changed after `at`."""
        if self.everything_changed_at > at:
            return True
        stamps = self.key_changed_at
        return any(stamps.get(k, 0) > at for k in keys)


@dataclass
class FlowScope:
    """Per-scope facts: the variable environment (symbolic in parameters) and where values are bound."""

    scope: Scope
    env: dict[str, Labels] = field(default_factory=_Stamped)
    assigns: list[tuple[ast.AST, ast.AST | None, str]] = field(default_factory=list)  # (target, value, how)
    returns: list[ast.expr] = field(default_factory=list)
    ret_labels: Labels = EMPTY
    ret_changed_at: int = 0
    # field-sensitive containers: `d["k"]`, `xs[1]`, `obj.attr` of a local built from literals and constant
    # stores, so that a dict holding both the context and the target does not blur them
    fields: dict[str, Labels] = field(default_factory=dict)
    imprecise: set[str] = field(default_factory=set)  # containers also filled at unknown keys
    parts: dict[str, list[ast.expr]] = field(default_factory=dict)  # elements a list was built from


# Statements and expressions `Flow._bindings` reads bindings, returns and effects from (the rest of a scope's
# nodes are reached through these).
_BINDING_NODES = (
    ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.comprehension, ast.withitem, ast.NamedExpr,
    ast.Return, ast.Yield, ast.YieldFrom, ast.Call,
)


class Flow:
    """Labels for every expression of a program, computed once and shared by all rules."""

    def __init__(
        self, index: ProgramIndex, live: Iterable[Scope] | None = None,
        key_of: Callable[[ast.expr, Scope], object] | None = None,
    ) -> None:
        self.index = index
        # the value a non-constant key has in the run being judged (`pools[args.pool]`, POOL defaulting to
        # "b"): None when unknown; a container known field by field then gives only that field
        self._key_of = key_of
        self._keys: dict[int, object] = {}
        self.scopes = list(live) if live is not None else list(index.scopes)
        self._live_ids = {id(s) for s in self.scopes}
        self.tkey_origins: list[tuple[Scope, ast.AST]] = []
        self._tkey_ids: dict[int, int] = {}
        self.fs: dict[int, FlowScope] = {}
        self.concrete: dict[int, dict[str, Labels]] = {}
        self._resolve_cache: dict[int, list[Scope]] = {}
        # targets from their use (the label of a loss, the index of a probability), whatever their names
        self.targets = TargetFinder(index, self.scopes).seeds
        self._hash_tables: dict[str, bool] = {}
        self._folded: dict[int, Labels] = {}
        self._carried: dict[int, bool] = {}
        self._module_strings: dict[tuple[str, bool], list[ast.expr]] | None = None
        self._synthetic: dict[tuple[int, str], ast.Call] = {}
        self._inlining: set[int] = set()
        self._imports: dict[int, frozenset[str]] = {}
        self._binding_modules: dict[tuple[str, int], list[Scope]] = {}
        self._self_reads: dict[int, frozenset[str]] = {}  # method -> attributes it reads on self
        self.attr_env: dict[str, Labels] = _KeyStamped()  # provenance of attributes, by attribute name (over-approximate)
        self._attrs_read: dict[int, frozenset[str]] = {}  # id(scope) -> attribute names solving it may read
        self._attrs_spelled_in: dict[int, frozenset[str]] = {}  # id(scope) -> attribute names in its own body
        self._settled: dict[int, int] = {}  # id(scope) -> when solving it last changed nothing
        self._between: dict[int, tuple] = {}  # id(scope) -> what it read that changes between _summaries
        self._deps: dict[int, tuple[list[FlowScope], list[FlowScope]]] = {}
        self._param_read_cache: dict[int, list[tuple[str, str, str]]] = {}
        for scope in self.scopes:
            self.fs[id(scope)] = self._bindings(scope)
        self._summaries()
        self._concrete_params()
        # second round: a helper's parameter that callers give targets is a target, and a shifted window of
        # what callers pass as validation tokens is the scored targets
        shifted = any(VAL in labs for params in self.concrete.values() for labs in params.values())
        again = self._context_successors() | self._passed_successors() | self._targets_from_callers() | shifted
        for _ in range(2):  # each round can make more parameters targets (bounded: rounds cost a full solve)
            if not again:
                break
            self._summaries()
            self._concrete_params()
            again = self._targets_from_callers()
        # solved: from here on labels never change, so rules asking again (nested loops) get them from here
        self._final: dict[tuple[ast.AST, Scope], Labels] = {}  # keyed by the objects: they stay alive

    # --- public --------------------------------------------------------------------------------

    def labels(self, expr: ast.AST, scope: Scope) -> Labels:
        """Concrete labels of `expr` in `scope`: symbolic parameters replaced by what callers pass."""
        final = self.__dict__.get("_final")
        if final is None:  # still solving
            return self.concretize(self.symbolic(expr, scope), scope)
        key = (expr, scope)
        found = final.get(key)
        if found is None:
            found = final[key] = self.concretize(self.symbolic(expr, scope), scope)
        return found

    def symbolic(self, expr: ast.AST, scope: Scope) -> Labels:
        return self._lab(expr, scope)

    def concretize(self, labels: Labels, scope: Scope) -> Labels:
        if not any(lab.startswith(PARAM) for lab in labels):
            return labels
        out = {lab for lab in labels if not lab.startswith(PARAM)}
        for lab in labels:
            if lab.startswith(PARAM):
                out |= self._param_labels(lab[len(PARAM) :], scope)
        return frozenset(o for o in out if not o.startswith(PARAM))

    def _param_labels(self, param: str, scope: Scope) -> Labels:
        """What `param` holds, seen from `scope`: its own parameter, else that of the nearest enclosing
        function (a closure such as an L-BFGS `closure()` reads the enclosing function's arguments)."""
        cur: Scope | None = scope
        while cur is not None:
            params = self.concrete.get(id(cur), {})
            if param in params:
                return params[param]
            cur = cur.parent
        return EMPTY

    def tkey_origin(self, labels: Labels) -> list[tuple[Scope, ast.AST]]:
        return [self.tkey_origins[int(lab[len(TKEY) :])] for lab in sorted(labels) if lab.startswith(TKEY)]

    def resolve(self, call: ast.Call, scope: Scope) -> list[Scope]:
        key = id(call)
        if key not in self._resolve_cache:
            found = self.index.resolve_call(call, scope)
            if not found and isinstance(call.func, ast.Name):
                method = self._bound_method(call.func.id, scope)
                if method is not None:  # `f = getattr(obj, "fo" + "ld")` or `f = obj.fold`, then `f(h, t)`
                    found = self.index.resolve_call(ast.Call(func=method, args=call.args, keywords=call.keywords), scope)
            if not found and isinstance(call.func, ast.Subscript) and isinstance(call.func.value, ast.Name):
                # `CHOOSERS[args.kind](pa, pb, y)` over `CHOOSERS = {"a": f, "b": g}`: the entry the run picks
                for entry in self._table_entries(call.func.value.id, call.func.slice, scope):
                    found = found + self.index.resolve_call(ast.Call(func=entry, args=call.args, keywords=call.keywords), scope)
            self._resolve_cache[key] = [s for s in found if id(s) in self._live_ids]
        return self._resolve_cache[key]

    def _table_entries(self, name: str, key: ast.expr, scope: Scope, kinds: type | tuple[type, ...] = (ast.Name, ast.Attribute)) -> list[ast.expr]:
        """The functions a dict of functions bound once (`{"a": f, "b": g}`) gives for `key`: the entry of the
        key's value in the run when it is decided, else every entry."""
        table = self._single_value(name, scope)
        if not isinstance(table, ast.Dict) or None in table.keys:
            return []
        decided = key.value if isinstance(key, ast.Constant) else self._key_of(key, scope) if self._key_of else None
        chosen = [v for k, v in zip(table.keys, table.values, strict=True) if isinstance(k, ast.Constant) and k.value == decided]
        return [v for v in (chosen or table.values) if isinstance(v, kinds)]

    def _bound_method(self, name: str, scope: Scope) -> ast.Attribute | None:
        """`obj.m` when `name` is bound once to `obj.m` or `getattr(obj, <constant string>)` of a local object."""
        bound = self._single_value(name, scope)
        if isinstance(bound, ast.Call) and call_name(bound) == "getattr" and len(bound.args) == 2:
            attr = self._fold(bound.args[1], scope, 0)
            if attr and "\x00" not in attr and attr.isidentifier():
                bound = ast.copy_location(ast.Attribute(value=bound.args[0], attr=attr, ctx=ast.Load()), bound)
        if isinstance(bound, ast.Attribute) and isinstance(bound.value, ast.Name) and bound.value.id not in _LIBRARY_ROOTS:
            return bound
        return None

    # --- bindings ------------------------------------------------------------------------------

    def _bindings(self, scope: Scope) -> FlowScope:
        fs = FlowScope(scope)
        for param in scope.params:
            if param in ("self", "cls"):
                continue
            fs.env[param] = frozenset({PARAM + param}) | self._used_as_target(scope, param)
        for node in self.index.nodes_in(scope, _BINDING_NODES):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    fs.assigns.append((target, node.value, "="))
                    _container_shape(fs, target, node.value)
            elif isinstance(node, ast.AugAssign):
                fs.assigns.append((node.target, node, "aug"))
                if isinstance(node.target, ast.Name) and isinstance(node.value, ast.List | ast.Tuple):
                    fs.parts.setdefault(node.target.id, []).extend(node.value.elts)  # `xs += [v]`
                else:
                    _container_shape(fs, node.target, None)
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                fs.assigns.append((node.target, node.value, "="))
            elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                fs.assigns.append((node.target, node.iter, "iter"))
                _container_shape(fs, node.target, None)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                fs.assigns.append((node.optional_vars, node.context_expr, "="))
            elif isinstance(node, ast.NamedExpr):
                fs.assigns.append((node.target, node.value, "="))
            elif isinstance(node, ast.Return | ast.Yield | ast.YieldFrom) and node.value is not None:
                fs.returns.append(node.value)  # a generator's items are what its callers iterate over
            elif isinstance(node, ast.Call):
                self._effect(fs, node)
        return fs

    def _effect(self, fs: FlowScope, call: ast.Call) -> None:
        """Calls that change a container or tensor in place bind it like an assignment would:
        `xs.append(v)`, `xs.extend(vs)`, `d.update(m)`, `h.bitwise_xor_(v)`, `t.copy_(v)`,
        `np.add.at(t, k, v)`, `np.bitwise_xor(h, v, out=h)`, `setattr(obj, "name", v)`."""
        func = call.func
        name = call_name(call)
        if isinstance(func, ast.Attribute) and call.args:
            receiver = func.value
            if name in _CONTAINER_FILL:
                fs.assigns.append((receiver, ast.List(elts=list(call.args), ctx=ast.Load()), "="))
                if isinstance(receiver, ast.Name):
                    if name in ("append", "appendleft", "insert", "add"):
                        fs.parts.setdefault(receiver.id, []).append(call.args[-1])
                    elif name in ("extend", "extendleft"):
                        arg = call.args[0]
                        fs.parts.setdefault(receiver.id, []).extend(arg.elts if isinstance(arg, ast.List | ast.Tuple) else [arg])
                    if name not in ("append", "extend", "add"):
                        fs.imprecise.add(receiver.id)  # keys or positions it changes are not known
                return
            if name in _INPLACE_MIX:
                op = ast.BitXor() if "xor" in name else ast.BitOr() if "or" in name else ast.Add()
                aug = ast.copy_location(ast.AugAssign(target=receiver, op=op, value=call.args[0]), call)
                aug.pg_parent = getattr(call, "pg_parent", None)  # type: ignore[attr-defined]
                fs.assigns.append((receiver, aug, "aug"))
                return
            if name in ("copy_", "set_", "fill_", "index_put_", "index_copy_", "scatter_", "masked_scatter_"):
                fs.assigns.append((receiver, ast.List(elts=list(call.args), ctx=ast.Load()), "="))
                return
            if name == "at" and len(call.args) >= 2 and isinstance(func.value, ast.Attribute):  # np.add.at(t, k, v)
                fs.assigns.append((call.args[0], ast.List(elts=list(call.args[1:]), ctx=ast.Load()), "="))
                op = _OPERATORS.get(func.value.attr)
                if op is not None and len(call.args) >= 3:  # accumulating v into t's entries mixes them: t op= v
                    aug = ast.copy_location(ast.AugAssign(target=call.args[0], op=op(), value=call.args[2]), call)
                    aug.pg_parent = getattr(call, "pg_parent", None)  # type: ignore[attr-defined]
                    fs.assigns.append((call.args[0], aug, "aug"))
                return
        for kw in call.keywords:
            if kw.arg == "out" and name in MIX_FUNCS and len(call.args) >= 2:
                fs.assigns.append((kw.value, call, "="))
        if isinstance(func, ast.Name) and func.id == "setattr" and len(call.args) == 3:
            key = call.args[1]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                attr = ast.Attribute(value=call.args[0], attr=key.value, ctx=ast.Store())
                fs.assigns.append((attr, call.args[2], "="))

    # Solving a scope reads the environments of its enclosing scopes and of module scopes, the return labels
    # of the functions its calls resolve to, and the provenance of the attribute names spelled in it and in its
    # enclosing and module scopes (`_attr_reads`); its own targets and concrete
    # parameters change only between calls of _summaries. While none of those changed since solving a scope
    # last changed nothing, solving it again (and recomputing its return labels) changes nothing: it is
    # skipped. Pure speed, the rounds and their results are the same (tests/test_flow_settled.py compares).
    SKIP_SETTLED = True

    def _unsettle_changed_between_calls(self) -> None:
        """Forget that a scope is settled when its targets or concrete parameters changed since last time."""
        for scope in self.scopes:
            key = id(scope)
            enclosing, cur = [], scope
            while cur is not None:  # a closure reads the enclosing functions' parameters (`_param_labels`)
                enclosing.append(dict(self.concrete.get(id(cur), {})))
                cur = cur.parent
            now = (
                enclosing,
                frozenset(self.targets.names.get(key, ())),
                frozenset(self.targets.spellings.get(key, ())),
            )
            if self._between.get(key) != now:
                self._settled.pop(key, None)
                self._between[key] = now

    def _attr_reads(self, scope: Scope) -> frozenset[str]:
        """Attribute names whose provenance solving `scope` may read: those spelled in its own body, in the
        bodies of its enclosing scopes and of every module scope (a lambda, `functools.partial` or key parts
        bound there are labelled in the scope that uses them)."""
        found = self._attrs_read.get(id(scope))
        if found is None:
            spelled = self._attrs_spelled
            names: set[str] = set(spelled(scope))
            cur = scope.parent
            while cur is not None:
                names |= spelled(cur)
                cur = cur.parent
            for module in self.index.module_scopes:
                names |= spelled(module)
            found = self._attrs_read[id(scope)] = frozenset(names)
        return found

    def _attrs_spelled(self, scope: Scope) -> frozenset[str]:
        found = self._attrs_spelled_in.get(id(scope))
        if found is None:
            found = self._attrs_spelled_in[id(scope)] = frozenset(
                n.attr for n in self.index.nodes_in(scope, (ast.Attribute,))  # type: ignore[attr-defined]
            )
        return found

    def _settled_now(self, fs: FlowScope) -> bool:
        at = self._settled.get(id(fs.scope))
        if at is None or not self.SKIP_SETTLED:
            return False
        if self.attr_env.changed_at > at and self.attr_env.changed_since(self._attr_reads(fs.scope), at):  # type: ignore[attr-defined]
            return False
        deps = self._deps.get(id(fs.scope))
        if deps is None:
            envs, scope = [], fs.scope
            while scope is not None:
                envs.append(scope)
                scope = scope.parent
            envs += self.index.module_scopes
            callees = [c for call in self.index.calls_in(fs.scope) for c in self.resolve(call, fs.scope)]
            deps = self._deps[id(fs.scope)] = (
                [self.fs[id(s)] for s in envs if id(s) in self.fs],
                [self.fs[id(c)] for c in callees if id(c) in self.fs],
            )
        envs_fs, callees_fs = deps
        return all(d.env.changed_at <= at for d in envs_fs) and all(c.ret_changed_at <= at for c in callees_fs)  # type: ignore[attr-defined]

    def _solve_env(self, fs: FlowScope) -> bool:
        """Iterate the scope's assignments to a fixpoint; True if anything changed."""
        if self._settled_now(fs):
            return False
        changed_any = False
        for _ in range(4):
            changed = False
            for target, value, how in fs.assigns:
                if value is None:
                    continue
                if how == "aug":
                    aug = value  # the AugAssign node: target op= value
                    labs = self._binop(aug.target, aug.op, aug.value, fs.scope, aug)  # type: ignore[attr-defined]
                elif how == "iter" and isinstance(target, ast.Tuple | ast.List):
                    changed |= self._bind_iter(fs, target, value)
                    continue
                else:
                    labs = self._lab(value, fs.scope)
                    if TARGET in labs and how == "=" and self._carried_target(target):
                        labs = labs - {TARGET}  # `prev = t` at the end of a step: the next step's context
                changed |= self._bind(fs, target, value if how == "=" else None, labs)
            changed_any |= changed
            if not changed:
                break
        if changed:
            self._settled.pop(id(fs.scope), None)
        else:
            self._settled[id(fs.scope)] = next(_CLOCK)
        return changed_any

    def _bind(self, fs: FlowScope, target: ast.AST, value: ast.AST | None, labs: Labels) -> bool:
        if isinstance(target, ast.Name):
            new = fs.env.get(target.id, EMPTY) | labs | self._used_as_target(fs.scope, target.id)
            changed = False
            if isinstance(value, ast.Dict):
                for k, v in zip(value.keys, value.values, strict=True):
                    if isinstance(k, ast.Constant):
                        changed |= self._bind_field(fs, f"{target.id}[{k.value!r}]", self._lab(v, fs.scope))
            elif isinstance(value, ast.List | ast.Tuple) and not any(isinstance(e, ast.Starred) for e in value.elts):
                for i, v in enumerate(value.elts):
                    changed |= self._bind_field(fs, f"{target.id}[{i!r}]", self._lab(v, fs.scope))
            stmt = getattr(target, "pg_parent", None)
            if isinstance(getattr(stmt, "pg_parent", None), ast.ClassDef):  # a class field, read as `obj.field`
                prov = frozenset(lab for lab in labs if lab in PROVENANCE)
                if prov and not prov <= self.attr_env.get(target.id, EMPTY):
                    self.attr_env[target.id] = self.attr_env.get(target.id, EMPTY) | prov
                    changed = True
            if new != fs.env.get(target.id):
                fs.env[target.id] = new
                return True
            return changed
        if isinstance(target, ast.Tuple | ast.List):
            # `x, y = chunk[:-1], chunk[1:]` binds element-wise; otherwise every name gets the whole.
            if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts):
                return any(
                    [self._bind(fs, t, v, self._lab(v, fs.scope)) for t, v in zip(target.elts, value.elts, strict=True)]
                )
            if isinstance(value, ast.Name) and not any(isinstance(t, ast.Starred) for t in target.elts):
                # `c, t = pair` where `pair = (ctx, tok)`: element-wise from the container's fields
                items = [self._field(value.id, f"{value.id}[{i!r}]", fs.scope) for i in range(len(target.elts))]
                if all(item is not None for item in items):
                    return any([self._bind(fs, t, None, item) for t, item in zip(target.elts, items, strict=True)])  # type: ignore[arg-type]
            return any([self._bind(fs, t, None, labs - {TARGET}) for t in target.elts])
        if isinstance(target, ast.Starred):
            return self._bind(fs, target.value, None, labs)
        if isinstance(target, ast.Subscript):
            # `x[b, :n] = toks[:-1]` fills a container: it now holds those values (not `self.table[k] = ...`)
            base = target.value
            while isinstance(base, ast.Subscript):
                base = base.value
            if isinstance(base, ast.Name) and base.id not in ("self", "cls"):
                changed = False
                key = target.slice
                if target.value is base and isinstance(key, ast.Constant) and isinstance(key.value, str | int):
                    changed = self._bind_field(fs, f"{base.id}[{key.value!r}]", labs)
                return self._bind(fs, base, None, labs) or changed
        if isinstance(target, ast.Attribute):
            field_changed = False
            if isinstance(target.value, ast.Name) and target.value.id not in ("self", "cls"):
                # `ns.m = v`, `setattr(ns, "m", v)` on a local object: read back as `ns.m` in this scope
                field_changed = self._bind_field(fs, f"{target.value.id}.{target.attr}", labs)
            # `self.tokens = load(pattern)`, `args.val_files = ...`: the attribute carries the data's provenance
            prov = frozenset(lab for lab in self.concretize(labs, fs.scope) if lab in PROVENANCE)
            if field_changed and not (prov and not prov <= self.attr_env.get(target.attr, EMPTY)):
                return True
            if prov and not prov <= self.attr_env.get(target.attr, EMPTY):
                self.attr_env[target.attr] = self.attr_env.get(target.attr, EMPTY) | prov
                return True
        return False

    def _carried_target(self, target: ast.AST) -> bool:
        # cached per Flow (a module-level cache keyed by nodes would keep every audited tree alive)
        found = self._carried.get(id(target))
        if found is None:
            found = self._carried[id(target)] = loop_carried(target)
        return found

    def _bind_field(self, fs: FlowScope, key: str, labs: Labels) -> bool:
        new = fs.fields.get(key, EMPTY) | labs
        if new != fs.fields.get(key):
            fs.fields[key] = new
            return True
        return False

    def _field(self, base: str, key: str, scope: Scope) -> Labels | None:
        """Labels stored at `key` (`d['k']`, `xs[1]`, `ns.m`) of the container `base` as seen from `scope`;
        None when the container is not known field by field (attributes are always stored by name)."""
        precise_only = not key.startswith(base + ".")
        cur: Scope | None = scope
        while cur is not None:
            fs = self.fs.get(id(cur))
            if fs is not None and base in fs.env:
                return None if precise_only and base in fs.imprecise else fs.fields.get(key)
            cur = cur.parent
        for module in self._modules_binding(base, scope):
            fs = self.fs.get(id(module))
            if fs is not None and base in fs.env:
                return None if precise_only and base in fs.imprecise else fs.fields.get(key)
        return None

    def _bind_iter(self, fs: FlowScope, target: ast.AST, it: ast.AST) -> bool:
        """`for a, b in zip(xs, ys)`, `for i, t in enumerate(ts)`, `for a, b in [(x, y)]`: element-wise."""
        if isinstance(target, ast.Tuple | ast.List) and not any(isinstance(t, ast.Starred) for t in target.elts):
            n = len(target.elts)
            if isinstance(it, ast.Call):
                name = call_name(it)
                args = it.args
                if name == "zip" and len(args) == n and not any(isinstance(a, ast.Starred) for a in args):
                    return any([self._bind_iter(fs, t, a) for t, a in zip(target.elts, args, strict=True)])
                if name == "enumerate" and n == 2 and args:
                    counter = self._bind(fs, target.elts[0], None, EMPTY)
                    return self._bind_iter(fs, target.elts[1], args[0]) or counter
            if isinstance(it, ast.List | ast.Tuple | ast.Set) and it.elts and all(
                isinstance(e, ast.Tuple | ast.List) and len(e.elts) == n for e in it.elts
            ):
                return any([self._bind(fs, target, e, self._lab(e, fs.scope)) for e in it.elts])
        return self._bind(fs, target, None, self._lab(it, fs.scope))

    def _used_as_target(self, scope: Scope, name: str) -> Labels:
        return frozenset({TARGET}) if self.targets.has_name(scope, name) else EMPTY

    # --- summaries -----------------------------------------------------------------------------

    def _summaries(self) -> None:
        """Return labels of every function, symbolic in its parameters, to a fixpoint over the call graph."""
        order = self.scopes
        self._unsettle_changed_between_calls()
        for _ in range(6):
            changed = False
            for scope in order:
                fs = self.fs[id(scope)]
                if self._settled_now(fs):  # its environment and so its return labels cannot change
                    continue
                self._solve_env(fs)
                ret = _union(self._returned(r, scope) for r in fs.returns)
                if ret != fs.ret_labels:
                    fs.ret_labels = ret
                    fs.ret_changed_at = next(_CLOCK)
                    changed = True
            if not changed:
                break
        for fs in self.fs.values():  # final environments with the final summaries
            self._solve_env(fs)

    def _returned(self, value: ast.expr, scope: Scope) -> Labels:
        """Labels of a returned or yielded value; a flag in a returned tuple (`(i, text, i < n_val)`) says
        which split an item belongs to, it does not put that split's tokens into the item."""
        if isinstance(value, ast.Tuple):
            return _union(self._lab(e, scope) for e in value.elts if not isinstance(e, ast.Compare | ast.BoolOp))
        return self._lab(value, scope)

    def _concrete_params(self) -> None:
        """What each parameter may hold: the union over live call sites of the arguments passed."""
        sites: list[tuple[ast.Call, Scope, Scope]] = []
        for scope in self.scopes:
            for node in self.index.calls_in(scope):
                for callee in self.resolve(node, scope):
                    sites.append((node, scope, callee))
        # An argument's labels read the caller's concrete parameters (and its enclosing functions', through
        # `concretize`); nothing else they read changes here. A site none of whose callers' parameters changed
        # since it was last done would add nothing: it is skipped (speed only, like the settled scopes).
        changed_at: dict[int, int] = {}  # id(scope) -> tick of its last concrete-parameter change
        done_at = [-1] * len(sites)
        tick = 0
        for _ in range(6):
            changed = False
            for i, (call, caller, callee) in enumerate(sites):
                if self.SKIP_SETTLED and done_at[i] >= 0 and not self._params_changed_since(caller, changed_at, done_at[i]):
                    continue
                tick += 1
                done_at[i] = tick
                for param, arg in _bind_args(call, callee):
                    labs = self.concretize(self._lab(arg, caller), caller)
                    current = self.concrete.setdefault(id(callee), {}).get(param, EMPTY)
                    if not labs <= current:
                        self.concrete[id(callee)][param] = current | labs
                        tick += 1
                        changed_at[id(callee)] = tick
                        changed = True
            if not changed:
                break

    @staticmethod
    def _params_changed_since(scope: Scope, changed_at: dict[int, int], at: int) -> bool:
        cur: Scope | None = scope
        while cur is not None:
            if changed_at.get(id(cur), 0) > at:
                return True
            cur = cur.parent
        return False

    def _context_successors(self) -> bool:
        """`T[j]` next to `T[j - k]` reads of the same validation stream: the token that follows the context
        `T[j - k]` is the one being predicted at j, so `T[j]` is the target, whatever it is called (n-gram
        caches keyed on `ctx_hash ^ T[j] * prime`). Only for streams that hold validation tokens only: a
        model's own input ids (BigramHash over `ids[i - 1]`, `ids[i]`) also see training data. Slices count by
        their start (`T[s:e]` next to `T[s - k : e - k]`), offsets through a name bound once (`o = s - n + k`;
        `T[o : o + m]`), a selection of positions stands for its positions (`jv = js[m]`; `T[jv - k]`
        is context before `js`), a loop variable is before its range's bound (`for j in range(n)`: `T[j]` is
        before `T[n]`), and a helper's reads of its stream parameter count at each call (`hash_ctx(T, n)`)."""
        added = False
        for scope in self.scopes:
            reads: dict[str, dict[str, list[ast.Subscript]]] = {}
            windows: set[tuple[str, str]] = set()  # (stream, end) of `T[i : i + k]` context windows
            for node in self.index.nodes_in(scope, (ast.Subscript,)):
                if not isinstance(node.ctx, ast.Load):  # type: ignore[attr-defined]
                    continue
                index = node.slice  # type: ignore[attr-defined]
                if isinstance(index, ast.Slice) and isinstance(index.lower, ast.Name) and isinstance(index.upper, ast.BinOp) \
                        and isinstance(index.upper.op, ast.Add) and isinstance(index.upper.left, ast.Name) \
                        and index.upper.left.id == index.lower.id:
                    windows.add((ast.unparse(node.value), ast.unparse(index.upper)))
                kinds = self._position_kinds(index, scope)
                if kinds:
                    by_kind = reads.setdefault(ast.unparse(node.value), {})
                    for kind in kinds:
                        by_kind.setdefault(kind, []).append(node)
            for call in self.index.calls_in(scope):  # `hash_ctx(T, n)` reading `T[j : ...]` for j in range(n)
                for callee in self.resolve(call, scope):
                    args = dict(_bind_args(call, callee))
                    for stream, kind, pos in self._param_reads(callee):
                        s_arg, p_arg = args.get(stream), args.get(pos)
                        if isinstance(s_arg, ast.Name) and isinstance(p_arg, ast.Name):
                            reads.setdefault(s_arg.id, {}).setdefault(f"{kind}:{p_arg.id}", [])
            for stream, by_kind in reads.items():
                found: list[ast.Subscript] = []
                for kind, nodes in by_kind.items():
                    if not kind.startswith("at:"):
                        continue
                    index_name = kind[len("at:") :]
                    # `T[j + 1]` read too: j is context and j + 1 the predicted position (a legal context hash)
                    if "before:" + index_name not in by_kind or "after:" + index_name in by_kind:
                        continue
                    found += nodes
                # `T[i + k]` next to the window `T[i : i + k]`: the token right after the context is predicted
                found += [n for key, ns in by_kind.items() if key.startswith("after:") for n in ns
                          if (stream, ast.unparse(n.slice)) in windows]
                for node in found:
                    labels = self.labels(node.value, scope)
                    if VAL not in labels or TRAIN in labels:
                        continue
                    spelled = self.targets.spellings.setdefault(id(scope), set())
                    text = ast.unparse(node)
                    if text not in spelled:
                        spelled.add(text)
                        added = True
        return added

    def _position_kinds(self, index: ast.AST, scope: Scope) -> set[str]:
        """How a subscript reads a stream relative to a position name: `at:j` (`T[j]`, `T[j:e]`), `before:j`
        (`T[j - k]`, `T[o:...]` with `o = j - n + k`), `after:j` (`T[j + 1]`)."""
        if isinstance(index, ast.Slice):
            if index.lower is None:
                return set()
            index = index.lower
        kinds: set[str] = set()
        if isinstance(index, ast.Name):
            kinds.add("at:" + index.id)
            bound = self._range_bound(index.id, scope)
            if bound is not None:
                kinds.add("before:" + bound)  # `for j in range(n)`: `T[j]` is before `T[n]`
            value = self._single_value(index.id, scope)
            if isinstance(value, ast.BinOp):
                kinds |= _relative_kinds(value)
        elif isinstance(index, ast.BinOp):
            if isinstance(index.left, ast.Name):
                side = "before:" if isinstance(index.op, ast.Sub) else "after:" if isinstance(index.op, ast.Add) else ""
                if side:
                    kinds.add(side + index.left.id)
            kinds |= _relative_kinds(index)
        for kind in [k for k in kinds if not k.startswith("at:")]:
            side, name = kind.split(":", 1)
            source = self._selected_from(name, scope)
            if source is not None:
                kinds.add(f"{side}:{source}")  # `jv = js[m]`: positions selected from js
        return kinds

    def _range_bound(self, name: str, scope: Scope) -> str | None:
        """N when `name` is only bound by loops over `range(N)` or `range(a, N)`."""
        fs = self.fs.get(id(scope))
        if fs is None or name not in fs.env:
            return None
        bounds = {
            v.args[-1].id if how == "iter" and isinstance(v, ast.Call) and call_name(v) == "range"
            and len(v.args) in (1, 2) and isinstance(v.args[-1], ast.Name) else None
            for t, v, how in fs.assigns if isinstance(t, ast.Name) and t.id == name
        }
        return next(iter(bounds)) if len(bounds) == 1 else None

    def _param_reads(self, scope: Scope) -> list[tuple[str, str, str]]:
        """(stream parameter, before/after, position parameter) for the reads of a function's parameter
        stream relative to another parameter (`T[j : j + m]` with j in range(n): (T, before, n))."""
        cached = self._param_read_cache.get(id(scope))
        if cached is None:
            cached = []
            params = set(scope.params)
            for node in self.index.nodes_in(scope, (ast.Subscript,)):
                if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name) \
                        and node.value.id in params:
                    for kind in self._position_kinds(node.slice, scope):
                        side, pos = kind.split(":", 1)
                        if side != "at" and pos in params and (node.value.id, side, pos) not in cached:
                            cached.append((node.value.id, side, pos))
            self._param_read_cache[id(scope)] = cached
        return cached

    def _selected_from(self, name: str, scope: Scope) -> str | None:
        """P when every binding of `name` in its scope is a selection `P[...]` of the same name P."""
        fs = self.fs.get(id(scope))
        if fs is None or name not in fs.env:
            return None
        sources = {
            v.value.id if how == "=" and isinstance(v, ast.Subscript) and isinstance(v.value, ast.Name) else None
            for t, v, how in fs.assigns if isinstance(t, ast.Name) and t.id == name
        }
        return next(iter(sources)) if len(sources) == 1 else None

    def _passed_successors(self) -> bool:
        """The same as `_context_successors` across calls: `helper(stream, pos, stream[pos])` where the helper
        (or a helper it passes the three on to) reads `stream[pos - 2 + k]`, the context before each position,
        makes the parameter given `stream[pos]` the target there, whatever the three are called."""
        added = False
        equiv: dict[tuple[int, str], tuple[str, str]] = {}  # (callee, param) -> (stream param, position param)
        for _ in range(3):
            grew = False
            for caller in self.scopes:
                for call in self.index.calls_in(caller):
                    if len(call.args) + len(call.keywords) < 3:
                        continue
                    for callee in self.resolve(call, caller):
                        binding = _bind_args(call, callee)
                        by_name = {arg.id: param for param, arg in binding if isinstance(arg, ast.Name)}
                        for param, arg in binding:
                            pair = self._indexed_pair(arg, caller, equiv)
                            if pair is None or (id(callee), param) in equiv:
                                continue
                            stream, pos = by_name.get(pair[0]), by_name.get(pair[1])
                            if stream is None or pos is None:
                                continue
                            labels = self.labels(ast.Name(id=pair[0], ctx=ast.Load()), caller)
                            if VAL not in labels or TRAIN in labels:
                                continue
                            equiv[(id(callee), param)] = (stream, pos)
                            grew = True
                            if self._reads_before(callee, stream, pos) and not self.targets.has_name(callee, param):
                                self.targets.names.setdefault(id(callee), set()).add(param)
                                fs = self.fs[id(callee)]
                                fs.env[param] = fs.env.get(param, EMPTY) | {TARGET}
                                added = True
            if not grew:
                break
        return added

    def _indexed_pair(self, arg: ast.AST, scope: Scope, equiv: dict[tuple[int, str], tuple[str, str]]) -> tuple[str, str] | None:
        """(X, Y) when `arg` is `X[Y]`, a name bound once to `X[Y]`, or a parameter known to be `X[Y]`."""
        if isinstance(arg, ast.Name):
            known = equiv.get((id(scope), arg.id))
            if known is not None:
                return known
            value = self._single_value(arg.id, scope)
            arg = value if value is not None else arg
        if isinstance(arg, ast.Subscript) and isinstance(arg.value, ast.Name) and isinstance(arg.slice, ast.Name):
            return arg.value.id, arg.slice.id
        return None

    def _reads_before(self, scope: Scope, stream: str, pos: str) -> bool:
        """`stream[pos - c ...]` is read in `scope` for a positive constant c: context before each position."""
        for node in self.index.nodes_in(scope, (ast.Subscript,)):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == stream:
                if _before(node.slice, pos):
                    return True
        return False

    def _targets_from_callers(self) -> bool:
        added = False
        for scope in self.scopes:
            for param, labs in self.concrete.get(id(scope), {}).items():
                if TARGET in labs and not self.targets.has_name(scope, param):
                    self.targets.names.setdefault(id(scope), set()).add(param)
                    fs = self.fs[id(scope)]
                    fs.env[param] = fs.env.get(param, EMPTY) | {TARGET}
                    added = True
        return added

    # --- expression labels ---------------------------------------------------------------------

    def _lab(self, node: ast.AST, scope: Scope) -> Labels:
        if isinstance(node, ast.Name):
            return self._name(node.id, scope)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                kind = literal_data_kind(node.value)
                return frozenset({kind}) if kind else EMPTY
            return EMPTY
        if isinstance(node, ast.Attribute):
            if node.attr in _METADATA_ATTRS:  # `x.shape`, `x.device`: facts about the data, not the data
                return EMPTY
            base = self._lab(node.value, scope)
            keep = base if node.attr in ("T", "data", "mT", "real") else _provenance(base)
            out = keep
            if isinstance(node.value, ast.Name) and node.value.id not in ("self", "cls"):
                out = out | (self._field(node.value.id, f"{node.value.id}.{node.attr}", scope) or EMPTY)
            # the object's own provenance first; the attribute's stores otherwise, except on `self`: a method's
            # result takes its provenance from the receiver at each call site
            self_read = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            # (a name hint does not hide what is stored: `args.train_files` assigned a val pattern holds val)
            if not (keep & PROVENANCE) and not self_read:
                out = out | self.attr_env.get(node.attr, EMPTY)
            if self.targets.has_spelling(scope, node):
                out = out | {TARGET}
            return out
        if isinstance(node, ast.Subscript):
            base = self._lab(node.value, scope)
            key = node.slice
            if isinstance(node.value, ast.Name) and isinstance(key, ast.Name | ast.Attribute | ast.Call):
                key = self._decided_key(node.value.id, key, scope)
            if isinstance(node.value, ast.Name) and isinstance(key, ast.Constant) and isinstance(key.value, str | int):
                stored = self._field(node.value.id, f"{node.value.id}[{key.value!r}]", scope)
                if stored is not None:  # `d["ctx"]`, `parts[1]`: what was stored there, not the whole container
                    base = stored
            if _is_shift_by_one(node.slice) and (VAL in base or VAL in self.concretize(base, scope)):
                base = base | {TARGET}
            if self.targets.has_spelling(scope, node):
                base = base | {TARGET}
            if TARGET not in base and TARGET in self._lab(node.slice, scope):
                base = base | {TPROP}  # `is_boundary[tgt]`: a table read at the target is a property of it
            return base
        if isinstance(node, ast.BinOp):
            out = self._binop(node.left, node.op, node.right, scope, node)
            if isinstance(node.op, ast.Add | ast.Mod):
                out = out | self._folded_kind(node, scope)
                text_parts = _string_parts(node)
                if text_parts is not None:  # `str(c) + "|" + str(t)`, `"%d|%d" % (c, t)`: a string key
                    out = out | self._joined_key(text_parts, scope, node)
            return out
        if isinstance(node, ast.UnaryOp):
            return self._lab(node.operand, scope)
        if isinstance(node, ast.Compare):
            parts = [self._lab(n, scope) for n in [node.left, *node.comparators]]
            out = frozenset().union(*(_provenance(p) for p in parts))
            return out | ({TPROP} if any(TARGET in p or TPROP in p for p in parts) else EMPTY)
        if isinstance(node, ast.BoolOp):
            return frozenset().union(*(_provenance(self._lab(v, scope)) for v in node.values))
        if isinstance(node, ast.IfExp):
            return self._lab(node.body, scope) | self._lab(node.orelse, scope)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return frozenset().union(*(self._lab(e, scope) for e in node.elts)) if node.elts else EMPTY
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            return self._lab(node.elt, scope) | self._selected_kind(node, scope)
        if isinstance(node, ast.DictComp):
            return self._lab(node.value, scope)
        if isinstance(node, ast.Starred | ast.NamedExpr | ast.keyword):
            return self._lab(node.value, scope)
        if isinstance(node, ast.JoinedStr):  # f"{ctx}|{t}": a string key built from its parts
            parts = [p for v in node.values if isinstance(v, ast.FormattedValue) for p in self._parts_of(v.value, scope)]
            return self._joined_key(parts, scope, node) | self._folded_kind(node, scope)
        if isinstance(node, ast.FormattedValue):
            return self._lab(node.value, scope)
        return EMPTY

    def _decided_key(self, base: str, key: ast.expr, scope: Scope) -> ast.expr:
        """`key` as a constant when the run decides it (an env default, a logged setting) and `base` is a
        container known field by field; `key` itself otherwise."""
        if self._key_of is None:
            return key
        cur: Scope | None = scope
        while cur is not None:
            fs = self.fs.get(id(cur))
            if fs is not None and base in fs.env:
                if base in fs.imprecise or not any(k.startswith(base + "[") for k in fs.fields):
                    return key
                break
            cur = cur.parent
        if cur is None:
            return key
        found = self._keys.get(id(key))
        if found is None:  # evaluated once per key expression
            value = self._key_of(key, scope)
            found = self._keys[id(key)] = value if isinstance(value, str | int) and not isinstance(value, bool) else ""
        return ast.Constant(value=found) if found != "" else key

    def _selected_kind(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp, scope: Scope) -> Labels:
        """Files picked by a filter naming the shards: `[f for f in os.listdir(d) if f.startswith("fineweb_val")]`,
        also with the prefix assembled or bound to a name (`prefix = "fineweb_" + split`)."""
        out: set[str] = set()
        for gen in node.generators:
            for cond in gen.ifs:
                for n in walk(cond):
                    if isinstance(n, ast.Constant) and isinstance(n.value, str):
                        kind = literal_data_kind(n.value)
                        if kind:
                            out.add(kind)
                    elif isinstance(n, ast.Call) and call_name(n) in ("startswith", "endswith", "match", "fnmatch") and n.args:
                        text = self._fold(n.args[-1], scope, 0)
                        kind = literal_data_kind(text) if text.strip("\x00") else None
                        out |= {kind} if kind else EMPTY
        return frozenset(out)

    def _parts_of(self, node: ast.AST, scope: Scope, depth: int = 0) -> list[ast.AST]:
        """The elements a key is joined from: a tuple or list literal, `tuple(xs)`/`str(xs)`, a list the
        scope built by literals, `append` and `+= [...]`, a name bound once to one of these; otherwise the
        value itself."""
        for _ in range(6):
            if isinstance(node, ast.Call) and call_name(node) in _JOIN_WRAPPERS and len(node.args) == 1:
                node = node.args[0]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and call_name(node) in _BYTES_METHODS:
                node = node.func.value  # `np.array([c, t]).tobytes()`, `key.encode()`
            else:
                break
        if isinstance(node, ast.Tuple | ast.List):
            return list(node.elts)
        if isinstance(node, ast.Name):
            cur: Scope | None = scope
            while cur is not None:
                fs = self.fs.get(id(cur))
                if fs is not None and node.id in fs.env:
                    built = fs.parts.get(node.id)
                    if built and len(built) > 1:
                        return list(built)
                    value = self._single_value(node.id, cur) if depth < 3 else None
                    if isinstance(value, ast.Call | ast.Tuple | ast.List):  # `tmp = tuple(w)`; `hash(tmp)`
                        parts = self._parts_of(value, cur, depth + 1)
                        if len(parts) > 1:
                            return parts
                    return [node]
                cur = cur.parent
        return [node]

    def _folded_kind(self, node: ast.AST, scope: Scope) -> Labels:
        """Data provenance of a string assembled from constants: `"fineweb_" + "va" + "l_*.bin"`,
        `f"{root}/fineweb_{SPLIT}_*.bin"` with `SPLIT = "val"`, `"%s_val_*.bin" % prefix`."""
        key = id(node)
        cached = self._folded.get(key)
        if cached is None:
            self._folded[key] = EMPTY  # cycles through names fold to nothing
            has_text = any(isinstance(n, ast.Constant) and isinstance(n.value, str) for n in walk(node))
            text = self._fold(node, scope, 0) if has_text else ""
            kind = literal_data_kind(text) if text and text.strip("\x00") else None
            cached = self._folded[key] = frozenset({kind}) if kind else EMPTY
        return cached

    def _fold(self, node: ast.AST, scope: Scope, depth: int) -> str:
        """The constant text of a string expression; unknown pieces become NUL characters."""
        if depth > 6:
            return "\x00"
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, str) else "\x00"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self._fold(node.left, scope, depth + 1) + self._fold(node.right, scope, depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
            values = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
            text = self._fold(node.left, scope, depth + 1)
            for v in values:
                text = re.sub(r"%[-+ #0-9.]*[sdr]", lambda _m, v=v: self._fold(v, scope, depth + 1), text, count=1)
            return text
        if isinstance(node, ast.JoinedStr):
            return "".join(self._fold(v, scope, depth + 1) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            return self._fold(node.value, scope, depth + 1)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Constant):
            if node.func.attr == "join" and len(node.args) == 1 and isinstance(node.args[0], ast.List | ast.Tuple):
                sep = self._fold(node.func.value, scope, depth + 1)
                return sep.join(self._fold(e, scope, depth + 1) for e in node.args[0].elts)
            if node.func.attr == "format":
                text = self._fold(node.func.value, scope, depth + 1)
                for v in node.args:
                    text = re.sub(r"\{[^{}]*\}", lambda _m, v=v: self._fold(v, scope, depth + 1), text, count=1)
                return text
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            # `{"tr": "train", "ho": "val"}[args.split]` through a name bound once to the dict
            table = self._single_value(node.value.id, scope)
            key = self._fold(node.slice, scope, depth + 1)
            if isinstance(table, ast.Dict) and "\x00" not in key:
                for k, v in zip(table.keys, table.values, strict=True):
                    if isinstance(k, ast.Constant) and k.value == key:
                        return self._fold(v, scope, depth + 1)
        if isinstance(node, ast.Name | ast.Attribute):
            value = self._constant_binding(node, scope)
            if value is not None:
                return self._fold(value, scope, depth + 1)
            if self._key_of is not None:  # `"fineweb_" + args.split + "_*.bin"`, SPLIT defaulting to "val"
                decided = self._key_of(node, scope)
                if isinstance(decided, str):
                    return decided
        return "\x00"

    def _constant_binding(self, node: ast.Name | ast.Attribute, scope: Scope) -> ast.expr | None:
        """The one value a name (or a class field read as `obj.field`) is bound to, when that is a string
        expression over constants."""
        values: list[ast.expr] = []
        if isinstance(node, ast.Name) and not scope.is_module:
            fs = self.fs.get(id(scope))
            values = [v for t, v, how in (fs.assigns if fs else []) if how == "=" and isinstance(t, ast.Name) and t.id == node.id]  # type: ignore[misc]
        if not values:
            if self._module_strings is None:
                self._module_strings = {}
                for module in self.index.module_scopes:
                    fs = self.fs.get(id(module))
                    for t, v, how in fs.assigns if fs else []:
                        if how == "=" and isinstance(t, ast.Name) and v is not None:
                            field_ = isinstance(getattr(getattr(t, "pg_parent", None), "pg_parent", None), ast.ClassDef)
                            self._module_strings.setdefault((t.id, field_), []).append(v)  # type: ignore[arg-type]
            name = node.id if isinstance(node, ast.Name) else node.attr
            values = self._module_strings.get((name, isinstance(node, ast.Attribute)), [])
        if len(values) == 1 and isinstance(values[0], ast.Constant | ast.JoinedStr | ast.BinOp):
            return values[0]
        return None

    def _joined_key(self, parts: list[ast.AST], scope: Scope, node: ast.AST) -> Labels:
        """A key made by joining values (an f-string, `hash((ctx, t))`): target-keyed when it joins the target
        with context tokens, whatever the parts are called."""
        labs = [self._lab(p, scope) for p in parts]
        out = _union(labs)
        for i, t in enumerate(labs):
            t_all = t | self.concretize(t, scope)
            if TARGET not in t_all:
                continue
            for j, c in enumerate(labs):
                c_all = c | self.concretize(c, scope)
                if j != i and TARGET not in c_all and (c_all & {VAL, TRAIN, HASH}):
                    return out | {HASH, self._tkey(scope, node)}
        return out

    def _name(self, name: str, scope: Scope) -> Labels:
        cur: Scope | None = scope
        while cur is not None:
            fs = self.fs.get(id(cur))
            if fs is not None and name in fs.env:
                return fs.env[name]
            cur = cur.parent
        for module in self._modules_binding(name, scope):
            fs = self.fs.get(id(module))
            if fs is not None and name in fs.env:
                return fs.env[name]
        return EMPTY

    def _modules_binding(self, name: str, scope: Scope) -> list[Scope]:
        """Module scopes where a global `name` of `scope` may be bound: its own unit's, then the units whose
        globals it sees: every other unit when it imports the name (`from moved_code import key_of`), and the
        units that share its namespace (`exec(open(p).read())` and payloads run as `__main__` in the
        exec'ing module's globals). Fixed by the program: kept per (name, unit)."""
        key = (name, id(scope.unit))
        found = self._binding_modules.get(key)
        if found is None:
            own = [m for m in self.index.module_scopes if m.unit is scope.unit]
            imported = any(name in self._imported_names(m) for m in own)
            shared = scope.unit.run_name == "__main__"
            found = self._binding_modules[key] = own + [
                m for m in self.index.module_scopes
                if m.unit is not scope.unit and (imported or (shared and m.unit.run_name == "__main__"))
            ]
        return found

    def _imported_names(self, module: Scope) -> frozenset[str]:
        cached = self._imports.get(id(module))
        if cached is None:
            cached = self._imports[id(module)] = frozenset(
                alias.asname or alias.name for stmt in module.body if isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names
            )
        return cached

    def _binop(self, left: ast.AST, op: ast.operator, right: ast.AST, scope: Scope, node: ast.AST) -> Labels:
        a, b = self._lab(left, scope), self._lab(right, scope)
        out = a | b
        if isinstance(op, ast.BitXor) or (isinstance(op, ast.Mult) and (self._hashy(left, scope) or self._hashy(right, scope))):
            out = out | {HASH}
        if isinstance(op, _MIX_OPS):
            out = out | self._mix(a, b, scope, node)
        return out

    def _hashy(self, node: ast.AST, scope: Scope) -> bool:
        """A hash multiplier: a large constant, or a table of large integer constants the program defines
        (`K = np.array([36313, 27191, ...])`; `K[i]`), whatever it is called; names like `PRIMES` also count."""
        if _hashy(node):
            return True
        base = node.value if isinstance(node, ast.Subscript) else node
        if not isinstance(base, ast.Name):
            return False
        cached = self._hash_tables.get(base.id)
        if cached is None:
            cached = False
            for module in self._modules_binding(base.id, scope):
                for stmt in module.body:
                    if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == base.id for t in stmt.targets):
                        ints = [n.value for n in walk(stmt.value) if isinstance(n, ast.Constant) and type(n.value) is int]
                        cached = cached or (len(ints) >= 2 and all(abs(v) >= _HASH_PRIME_MIN for v in ints[:4]))
            self._hash_tables[base.id] = cached
        return cached

    def _mix(self, a: Labels, b: Labels, scope: Scope, node: ast.AST) -> Labels:
        """A target combined with a context hash or context tokens: a target-keyed hash. A helper's
        parameters count with what its live callers pass (`key_of(ctx_hash, nxt)`)."""
        a, b = a | self.concretize(a, scope), b | self.concretize(b, scope)
        for t, c in ((a, b), (b, a)):
            t_has = TARGET in t or any(lab.startswith(TKEY) for lab in t)
            c_target = TARGET in c or any(lab.startswith(TKEY) for lab in c)
            if t_has and not c_target and (HASH in c or VAL in c or TRAIN in c) and (HASH in t or HASH in c):
                existing = [lab for lab in t if lab.startswith(TKEY)]
                if existing:
                    return frozenset(existing)
                return frozenset({self._tkey(scope, node)})
        return EMPTY

    def _tkey(self, scope: Scope, node: ast.AST) -> str:
        key = id(node)
        if key not in self._tkey_ids:
            self._tkey_ids[key] = len(self.tkey_origins)
            self.tkey_origins.append((scope, node))
        return f"{TKEY}{self._tkey_ids[key]}"

    def _functional(self, node: ast.Call, scope: Scope) -> Labels | None:
        """Operators spelled as calls: `operator.xor(a, b)`, `a.__xor__(b)`, `functools.reduce(operator.xor,
        [a, b])`, `np.bitwise_xor.reduce([a, b])`, `getattr(np, "bitwise_" + "xor")(a, b)`, a name bound to
        `functools.partial(f, a)` or to a lambda, called later. None when `node` is none of these."""
        func = node.func
        if isinstance(func, ast.Call) and call_name(func) == "getattr" and len(func.args) >= 2:
            attr = self._fold(func.args[1], scope, 0)
            if attr and "\x00" not in attr and attr.isidentifier():
                synth = self._synth(node, "getattr", lambda: ast.Call(
                    func=ast.Attribute(value=func.args[0], attr=attr, ctx=ast.Load()), args=node.args, keywords=node.keywords))
                return self._call(synth, scope)
            return None
        op_name = _operator_name(func)
        if op_name is not None and len(node.args) == 2:
            return self._binop(node.args[0], _OPERATORS[op_name](), node.args[1], scope, node)
        if isinstance(func, ast.Attribute) and func.attr in _DUNDER_OPS and len(node.args) == 1:
            return self._binop(func.value, _DUNDER_OPS[func.attr](), node.args[0], scope, node)
        name = call_name(node)
        if name == "reduce" and node.args:
            op: type[ast.operator] | None
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute | ast.Name) and dotted(func) != "functools.reduce":
                op, seq = _OPERATORS.get(func.value.attr if isinstance(func.value, ast.Attribute) else func.value.id), node.args[0]
            elif len(node.args) >= 2:  # functools.reduce(f, seq)
                fn, seq = node.args[0], node.args[1]
                op_name = _operator_name(fn)
                op = _OPERATORS[op_name] if op_name else None
                if op is None and isinstance(fn, ast.Lambda) and isinstance(fn.body, ast.BinOp):
                    op = type(fn.body.op)
            else:
                return None
            if op is None:
                return None
            elts = list(seq.elts) if isinstance(seq, ast.List | ast.Tuple) else self._window_columns(seq, scope)
            if len(elts) < 2:
                return self._lab(seq, scope)
            acc: ast.expr = elts[0]
            lam = node.args[0] if len(node.args) >= 2 and isinstance(node.args[0], ast.Lambda) else None
            for e in elts[1:]:  # fold left: a synthetic chain located at the call (the lambda itself when given)
                if lam is not None and len(lam.args.args) == 2:
                    acc = self._synth(node, f"reduce{id(e)}", lambda a=acc, e=e: ast.Call(func=lam, args=[a, e], keywords=[]))  # type: ignore[misc]
                else:
                    acc = self._synth(node, f"reduce{id(e)}", lambda a=acc, e=e, op=op: ast.BinOp(left=a, op=op(), right=e))  # type: ignore[misc]
            return self._lab(acc, scope)
        if isinstance(func, ast.Lambda):
            return self._inline_lambda(func, node, scope)
        if isinstance(func, ast.Subscript) and isinstance(func.value, ast.Name):  # `FOLDS["mix"](h, t, w)`
            lambdas = [e for e in self._table_entries(func.value.id, func.slice, scope, ast.Lambda) if isinstance(e, ast.Lambda)]
            if lambdas:
                return _union(self._inline_lambda(lam, node, scope) for lam in lambdas)
        if isinstance(func, ast.Name) and not self.resolve(node, scope):
            bound = self._single_value(func.id, scope)
            if isinstance(bound, ast.Lambda):
                return self._inline_lambda(bound, node, scope)
            if isinstance(bound, ast.Call) and call_name(bound) == "partial" and bound.args:
                synth = self._synth(node, "partial", lambda: ast.Call(
                    func=bound.args[0], args=[*bound.args[1:], *node.args], keywords=[*bound.keywords, *node.keywords]))
                return self._lab(synth, scope)
            is_getattr = isinstance(bound, ast.Call) and call_name(bound) == "getattr"
            library = isinstance(bound, ast.Attribute) and dotted(bound).split(".")[0] in _LIBRARY_ROOTS
            if is_getattr or library:
                # `mix = getattr(np, "bitwise_" + "xor")` or `mix = np.bitwise_xor`, then `mix(h, t)`
                synth = self._synth(node, "bound", lambda: ast.Call(func=bound, args=node.args, keywords=node.keywords))
                return self._lab(synth, scope)
        return None

    def _stored_from_outside(self, obj: str, callees: list[Scope], scope: Scope) -> Labels:
        """Provenance stored on a local object from outside its class (`stream.files = names`, then
        `stream.take(n)`) in an attribute the called method's class reads as `self.files`: the method works
        on what was stored there, as it would on what its constructor was given."""
        fields = self._fields_of(obj, scope)
        prefix = obj + "."
        if not fields or not any(key.startswith(prefix) for key in fields):  # nothing stored on it: most calls
            return EMPTY
        out: set[str] = set()
        for callee in callees:
            if not callee.cls:
                continue
            for attr in self._method_self_reads(callee):
                stored = fields.get(prefix + attr)
                if stored:
                    out |= _provenance(stored)
        return frozenset(out)

    def _fields_of(self, base: str, scope: Scope) -> dict[str, Labels] | None:
        """The fields of the scope that binds `base` as seen from `scope` (where `_field` reads them)."""
        cur: Scope | None = scope
        while cur is not None:
            fs = self.fs.get(id(cur))
            if fs is not None and base in fs.env:
                return fs.fields
            cur = cur.parent
        for module in self._modules_binding(base, scope):
            fs = self.fs.get(id(module))
            if fs is not None and base in fs.env:
                return fs.fields
        return None

    def _method_self_reads(self, method: Scope) -> frozenset[str]:
        """Attributes a method reads on `self`, also through the methods of its class it calls on `self`
        (`take` -> `self._advance()` -> `self.files`)."""
        found = self._self_reads.get(id(method))
        if found is None:
            reads: set[str] = set()
            todo, seen = [method], {id(method)}
            while todo:
                m = todo.pop()
                for n in self.index.nodes_in(m, (ast.Attribute,)):
                    if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self":
                        reads.add(n.attr)
                        for other in self.index.class_methods(m.cls or ""):
                            if other.name == n.attr and id(other) not in seen and len(seen) < 16:
                                seen.add(id(other))
                                todo.append(other)
            found = self._self_reads[id(method)] = frozenset(reads)
        return found

    def _window_columns(self, seq: ast.AST, scope: Scope) -> list[ast.expr]:
        """`cols = [rows[:, k] for k in range(W)]` over `rows = sliding_window_view(s, W)` (or `s.unfold(0, W, 1)`):
        every column, so the context columns and the last one, `rows[:, -1]` (the next token of each window),
        as two parts; [] for anything else."""
        comp = self._single_value(seq.id, scope) if isinstance(seq, ast.Name) else seq
        if not isinstance(comp, ast.ListComp | ast.GeneratorExp) or len(comp.generators) != 1:
            return []
        gen = comp.generators[0]
        elt = comp.elt
        while isinstance(elt, ast.Call) and isinstance(elt.func, ast.Attribute) and elt.func.attr in VALUE_METHODS:
            elt = elt.func.value  # `.astype(np.int64)`
        if not (isinstance(gen.target, ast.Name) and isinstance(gen.iter, ast.Call) and call_name(gen.iter) == "range"
                and len(gen.iter.args) == 1 and isinstance(elt, ast.Subscript) and isinstance(elt.value, ast.Name)
                and isinstance(elt.slice, ast.Tuple) and isinstance(elt.slice.elts[-1], ast.Name)
                and elt.slice.elts[-1].id == gen.target.id):
            return []
        made = self._single_value(elt.value.id, scope)
        if not (isinstance(made, ast.Call) and call_name(made) in ("sliding_window_view", "unfold") and len(made.args) >= 2):
            return []
        if ast.unparse(made.args[1]) != ast.unparse(gen.iter.args[0]):  # the window's width: every column
            return []
        head = elt.slice.elts[:-1]

        def column(last: ast.expr) -> ast.Subscript:
            return ast.Subscript(value=elt.value, slice=ast.Tuple(elts=[*head, last], ctx=ast.Load()), ctx=ast.Load())

        before = self._synth(seq, "window-context", lambda: column(ast.Slice(upper=ast.UnaryOp(op=ast.USub(), operand=ast.Constant(1)))))
        last = self._synth(seq, "window-last", lambda: column(ast.UnaryOp(op=ast.USub(), operand=ast.Constant(1))))
        return [before, last]

    def _synth(self, at: ast.AST, tag: str, make: object) -> ast.Call:
        """A synthetic node standing for `at` rewritten (kept once, located at `at`, so labels and hash-key
        origins are stable and point at real code)."""
        key = (id(at), tag)
        node = self._synthetic.get(key)
        if node is None:
            node = ast.copy_location(make(), at)  # type: ignore[operator]
            ast.fix_missing_locations(node)
            node.pg_parent = getattr(at, "pg_parent", None)  # type: ignore[attr-defined]
            self._synthetic[key] = node
        return node

    def bound_once(self, name: str, scope: Scope) -> ast.AST | None:
        """The value of `name` when the function (or module) that binds it binds it exactly once, by a plain
        `name = value`: no other assignment, augmentation, loop or `with` target. None otherwise (a parameter,
        a name rebound, unpacked or unknown)."""
        cur: Scope | None = scope
        while cur is not None:
            fs = self.fs.get(id(cur))
            if fs is not None and name in fs.env:
                binds = [
                    (t, v, how) for t, v, how in fs.assigns
                    if any(isinstance(n, ast.Name) and n.id == name for n in walk(t))
                ]
                if len(binds) == 1 and binds[0][2] == "=" and isinstance(binds[0][0], ast.Name):
                    return binds[0][1]
                return None
            cur = cur.parent
        return None

    def _single_value(self, name: str, scope: Scope) -> ast.AST | None:
        cur: Scope | None = scope
        while cur is not None:
            fs = self.fs.get(id(cur))
            if fs is not None and name in fs.env:
                values = [v for t, v, how in fs.assigns if how == "=" and isinstance(t, ast.Name) and t.id == name]
                return values[0] if len(values) == 1 else None
            cur = cur.parent
        return None

    def _inline_lambda(self, lam: ast.Lambda, call: ast.Call, scope: Scope) -> Labels:
        """A lambda's body with its parameters bound to the call's arguments."""
        if id(lam) in self._inlining or (not call.args and not call.keywords):
            return self._lab(lam.body, scope)
        fs = self.fs.get(id(scope))
        if fs is None:
            return EMPTY
        params = [a.arg for a in [*lam.args.posonlyargs, *lam.args.args]]
        binding = {p: self._lab(a, scope) for p, a in zip(params, call.args, strict=False) if not isinstance(a, ast.Starred)}
        binding |= {kw.arg: self._lab(kw.value, scope) for kw in call.keywords if kw.arg in params}
        saved = {p: fs.env.get(p) for p in binding}
        self._inlining.add(id(lam))
        try:
            fs.env.update(binding)
            return self._lab(lam.body, scope)
        finally:
            self._inlining.discard(id(lam))
            for p, old in saved.items():
                if old is None:
                    fs.env.pop(p, None)
                else:
                    fs.env[p] = old

    def _call(self, node: ast.Call, scope: Scope) -> Labels:
        func = node.func
        name = call_name(node)
        if name == "hash" and isinstance(func, ast.Name) and len(node.args) == 1:  # Python's hash() of a key
            return self._joined_key(self._parts_of(node.args[0], scope), scope, node) | {HASH}
        functional = self._functional(node, scope)
        if functional is not None:
            return functional
        if name == "join" and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Constant) and len(node.args) == 1:
            arg = node.args[0]  # "|".join(map(str, key_parts)) / "|".join([a, b])
            if isinstance(arg, ast.Call) and call_name(arg) == "map" and len(arg.args) == 2:
                arg = arg.args[1]
            return self._joined_key(self._parts_of(arg, scope), scope, node) | self._folded_kind(node, scope)
        if name == "format" and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Constant):
            return self._joined_key(list(node.args), scope, node) | self._folded_kind(node, scope)
        if name == "pack" and dotted(func) in ("struct.pack", "pack") and len(node.args) > 1:
            return self._joined_key(list(node.args[1:]), scope, node)  # `struct.pack("<4H", *ctx, t)`: bytes of a key
        if name == "ravel_multi_index" and node.args:  # one flat index from (ctx, t) index arrays
            return self._joined_key(self._parts_of(node.args[0], scope), scope, node) | {HASH}
        if name in _SIZE_CALLS and not self.resolve(node, scope):
            return EMPTY  # `len(val_tokens)`, `x.numel()`, `range(n)`: counts and positions, not tokens
        if name in ("get", "pop", "__getitem__") and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            key = node.args[0] if node.args else None
            if isinstance(key, ast.Constant) and isinstance(key.value, str | int):
                stored = self._field(func.value.id, f"{func.value.id}[{key.value!r}]", scope)
                if stored is not None:  # `d.get("ctx")`: what was stored under that key
                    return stored | _union(self._lab(a, scope) for a in node.args[1:])
        if name == "roll" and _shifts_back_by_one(node):
            # `torch.roll(w, -1)`: each position holds the token after it, the next-token targets of `w`
            base = self._lab(node.args[0] if isinstance(func, ast.Attribute) and dotted(func.value) in ("torch", "np", "numpy") else func.value, scope)  # type: ignore[union-attr]
            if VAL in base or VAL in self.concretize(base, scope):
                return base | {TARGET}
        if isinstance(func, ast.Attribute) and name in VALUE_METHODS:
            # (a parameter's provenance too: `torch.gather(p, 1, t)` in a helper holds what its callers pass)
            arg_labels = [self._lab(a, scope) for a in node.args]  # each argument labelled once
            out = self._lab(func.value, scope) | _union(_provenance(labs) for labs in arg_labels)
            if name in ("gather", "take", "index_select") and any(TARGET in labs for labs in arg_labels):
                out = out | {TPROP}  # `p.gather(-1, y[:, None])`: a distribution read at the target
            if isinstance(func.value, ast.Name) and func.value.id not in ("self", "cls"):  # a method of ours: `stream.take(n)`
                out = out | self._stored_from_outside(func.value.id, self.resolve(node, scope), scope)
            return out
        if name in MIX_FUNCS and len(node.args) >= 2 and "at" not in dotted(func).split("."):
            return self._binop(node.args[0], ast.BitXor() if "xor" in name else ast.Add(), node.args[1], scope, node)
        if name in VALUE_FUNCS and isinstance(func, ast.Name | ast.Attribute):
            out = _union(self._lab(a, scope) for a in node.args)
            receiver_labels: Labels | None = None  # the receiver labelled at most once
            if isinstance(func, ast.Attribute) and not (
                isinstance(func.value, ast.Name | ast.Attribute) and dotted(func.value).split(".")[0] in _LIBRARY_ROOTS
            ):
                receiver_labels = self._lab(func.value, scope)
                out = out | receiver_labels  # `p.clamp(min=1e-10)`, `x.clip(0, 1)`: the receiver's values
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id not in _LIBRARY_ROOTS:
                callees = self.resolve(node, scope)  # a method of ours named like a library call: `src.next(n)`
                if callees:
                    if receiver_labels is None:
                        receiver_labels = self._lab(func.value, scope)
                    out = out | _provenance(receiver_labels) | self._stored_from_outside(func.value.id, callees, scope)
            return out
        callees = self.resolve(node, scope)
        # provenance, and target-keyed hashes: whatever an unknown call computes from a key that mixes in the
        # target (`zlib.crc32(key.encode())`, `hashlib.md5(...)`) is still keyed on the target
        args_prov = _union(_carried(self._lab(a, scope)) for a in [*node.args, *node.keywords])
        receiver = EMPTY
        if isinstance(func, ast.Attribute):
            receiver_labels = self._lab(func.value, scope)
            receiver = _carried(receiver_labels)
            if name in _ELEMENTWISE:  # `-p_t.log()`: still the value at the target
                receiver = receiver | (receiver_labels & {TPROP})
        if name in _ELEMENTWISE and node.args and (
            isinstance(func, ast.Name) or (isinstance(func, ast.Attribute) and dotted(func.value) in _LIBRARY_ROOTS)
        ):  # `torch.log(p_t)`
            args_prov = args_prov | (self._lab(node.args[0], scope) & {TPROP})
        if not callees:
            return args_prov | receiver
        out = set(receiver)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id not in ("self", "cls"):
            out |= self._stored_from_outside(func.value.id, callees, scope)
        for callee in callees:
            if callee.name == "__init__":
                out |= args_prov  # a constructed loader carries its data's provenance
                continue
            fs = self.fs.get(id(callee))
            if fs is None:
                continue
            out |= _substitute(fs.ret_labels, dict(_bind_args(node, callee)), self, scope)
        return frozenset(out)


_OPERATORS: dict[str, type[ast.operator]] = {
    "xor": ast.BitXor, "ixor": ast.BitXor, "or": ast.BitOr, "ior": ast.BitOr, "or_": ast.BitOr,
    "add": ast.Add, "iadd": ast.Add, "mul": ast.Mult, "imul": ast.Mult, "sub": ast.Sub, "isub": ast.Sub,
    "bitwise_xor": ast.BitXor, "bitwise_or": ast.BitOr, "multiply": ast.Mult, "subtract": ast.Sub,
    "logical_xor": ast.BitXor,
}  # fmt: skip
_DUNDER_OPS = {"__xor__": ast.BitXor, "__rxor__": ast.BitXor, "__or__": ast.BitOr, "__add__": ast.Add,
               "__radd__": ast.Add, "__mul__": ast.Mult, "__rmul__": ast.Mult}  # fmt: skip
# Calls that hand over their argument's elements to be joined into a key: `hash(tuple(xs))`, `str(xs)`.
_JOIN_WRAPPERS = {"tuple", "list", "str", "repr", "bytes", "frozenset", "array", "asarray", "tensor"}
_BYTES_METHODS = {"tobytes", "tostring", "tolist", "encode"}


def loop_carried(target: ast.AST) -> bool:
    """`c = t` in a loop body where `c` is read earlier in the same body: the value is carried into the next
    iteration, so where `c` is read it holds the previous step's token, not this step's."""
    if not isinstance(target, ast.Name):
        return False
    stmt = getattr(target, "pg_parent", None)
    loop = getattr(stmt, "pg_parent", None)
    while loop is not None and not isinstance(loop, ast.For | ast.While | ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
        loop = getattr(loop, "pg_parent", None)
    if not isinstance(loop, ast.For | ast.While) or stmt is None:
        return False
    line = getattr(stmt, "lineno", 0)
    first_read, stores = _name_uses(loop).get(target.id, (None, ()))
    if first_read is None or first_read >= line:
        return False
    return not any(at <= first_read for at in stores)


def _name_uses(loop: ast.For | ast.While) -> dict[str, tuple[int | None, tuple[int, ...]]]:
    """name -> (first line the loop body reads it, lines it stores it), kept on the loop node (every
    assignment in a long loop asks)."""
    found: dict[str, tuple[int | None, tuple[int, ...]]] | None = getattr(loop, "pg_name_uses", None)
    if found is None:
        found = {}
        for n in (n for s in loop.body for n in walk(s)):
            if isinstance(n, ast.Name):
                first, stores = found.get(n.id, (None, ()))
                if isinstance(n.ctx, ast.Load):
                    first = n.lineno if first is None else min(first, n.lineno)
                elif isinstance(n.ctx, ast.Store):
                    stores = (*stores, n.lineno)
                found[n.id] = (first, stores)
        loop.pg_name_uses = found  # type: ignore[union-attr]
    return found


def _string_parts(node: ast.BinOp) -> list[ast.AST] | None:
    """The values a string expression joins (`str(c) + "|" + str(t)` -> [c, t], `"%d|%d" % (c, t)` -> [c, t]);
    None when it is not visibly a string."""
    if isinstance(node.op, ast.Mod):
        if isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            return list(node.right.elts) if isinstance(node.right, ast.Tuple) else [node.right]
        return None
    operands: list[ast.AST] = []
    stack: list[ast.AST] = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, ast.BinOp) and isinstance(cur.op, ast.Add):
            stack += [cur.right, cur.left]
        else:
            operands.append(cur)
    texty = any(
        (isinstance(o, ast.Constant) and isinstance(o.value, str))
        or isinstance(o, ast.JoinedStr)
        or (isinstance(o, ast.Call) and call_name(o) in ("str", "repr"))
        for o in operands
    )
    if not texty:
        return None
    return [o.args[0] if isinstance(o, ast.Call) and call_name(o) in ("str", "repr") and o.args else o
            for o in operands if not isinstance(o, ast.Constant)]


def _container_shape(fs: FlowScope, target: ast.AST, value: ast.AST | None) -> None:
    """Containers known field by field are those bound only to literals and filled at constant keys."""
    if isinstance(target, ast.Name):
        if not isinstance(value, ast.Dict | ast.List | ast.Tuple):
            fs.imprecise.add(target.id)
        elif isinstance(value, ast.List | ast.Tuple):
            fs.parts.setdefault(target.id, []).extend(value.elts)
    elif isinstance(target, ast.Tuple | ast.List):
        for elt in target.elts:
            _container_shape(fs, elt.value if isinstance(elt, ast.Starred) else elt, None)
    elif isinstance(target, ast.Subscript):
        base = target.value
        if isinstance(base, ast.Name) and not (isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str | int)):
            fs.imprecise.add(base.id)


# Element-wise math: the result at a position is a function of the input there (a property of the target
# stays one).
_ELEMENTWISE = frozenset({"log", "log2", "log10", "log1p", "exp", "neg", "abs", "sqrt", "square", "pow", "clamp_min", "clamp_max"})
_LIBRARY_ROOTS = frozenset({"np", "numpy", "torch", "operator", "math"})


def _operator_name(func: ast.AST) -> str | None:
    """`operator.xor`, `operator.__xor__`, `xor` imported from operator: the operator's name."""
    text = dotted(func)
    if text.startswith("operator."):
        leaf = text.split(".", 1)[1].strip("_")
        return leaf if leaf in _OPERATORS else None
    return None


def _substitute(labels: Labels, args: dict[str, ast.AST], flow: Flow, caller: Scope) -> Labels:
    out = {lab for lab in labels if not lab.startswith(PARAM)}
    for lab in labels:
        if lab.startswith(PARAM):
            arg = args.get(lab[len(PARAM) :])
            if arg is not None:
                out |= flow.symbolic(arg, caller)
    return frozenset(out)


def _bind_args(call: ast.Call, callee: Scope) -> list[tuple[str, ast.AST]]:
    params = [p for p in callee.params if p not in ("self", "cls")] if callee.cls else list(callee.params)
    if callee.name == "__init__" and params and params[0] == "self":
        params = params[1:]
    out: list[tuple[str, ast.AST]] = []
    args = list(call.args)
    passed_at = [i for i, a in enumerate(args) if (isinstance(a, ast.Name) and a.id == callee.name)
                 or (isinstance(a, ast.Attribute) and a.attr == callee.name and callee.cls is not None)]
    if passed_at and not (isinstance(call.func, ast.Name) and call.func.id == callee.name):
        # reached through a higher-order call (`timed("pre", fn, *args)`): the arguments after fn are fn's
        call = ast.Call(func=call.func, args=args[passed_at[0] + 1 :], keywords=[])
    for i, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
            break
        if i < len(params):
            out.append((params[i], arg))
    for kw in call.keywords:
        if kw.arg and kw.arg in callee.params:
            out.append((kw.arg, kw.value))
        elif kw.arg is None and isinstance(kw.value, ast.Dict):  # `f(**{"h": h, "extra": t})`
            for k, v in zip(kw.value.keys, kw.value.values, strict=True):
                if isinstance(k, ast.Constant) and k.value in callee.params:
                    out.append((k.value, v))
    return out


@functools.lru_cache(maxsize=65536)
def literal_data_kind(text: str) -> str | None:
    """names.literal_data_kind, cached: the same literals are read on every solving round."""
    return _literal_data_kind(text)


def _carried(labels: Labels) -> Labels:
    """What an unknown call keeps of its inputs' labels: provenance, parameters and target-keyed hashes."""
    return frozenset(lab for lab in labels if lab in PROVENANCE or lab.startswith((PARAM, TKEY)))


def _provenance(labels: Labels) -> Labels:
    return frozenset(lab for lab in labels if lab in PROVENANCE or lab.startswith(PARAM))


def _union(items: Iterable[Labels]) -> Labels:
    out: set[str] = set()
    for item in items:
        out |= item
    return frozenset(out)


def _hashy(node: ast.AST) -> bool:
    """A hash multiplier: a large integer constant, or something named like a prime table."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return abs(node.value) >= _HASH_PRIME_MIN
    if isinstance(node, ast.Call) and node.args:  # np.uint64(2654435761)
        return _hashy(node.args[0])
    text = dotted(node.value if isinstance(node, ast.Subscript) else node).lower()
    return "prime" in text or "mult" in text or "hash" in text


def _signed_terms(expr: ast.AST) -> list[tuple[ast.AST, int]]:
    """The terms of a sum with their signs: `j - n + k` -> [(j, 1), (n, -1), (k, 1)] (in some order)."""
    terms: list[tuple[ast.AST, int]] = []
    stack: list[tuple[ast.AST, int]] = [(expr, 1)]
    while stack:
        cur, sign = stack.pop()
        if isinstance(cur, ast.BinOp) and isinstance(cur.op, ast.Add | ast.Sub):
            stack.append((cur.left, sign))
            stack.append((cur.right, -sign if isinstance(cur.op, ast.Sub) else sign))
        else:
            terms.append((cur, sign))
    return terms


def _before(index: ast.AST, pos: str) -> bool:
    """`pos - 2`, `pos - 2 + k`, `pos + k - 1`: an offset back from `pos` (a constant subtracted, none added)."""
    terms = _signed_terms(index)
    has_pos = any(isinstance(t, ast.Name) and t.id == pos and sign == 1 for t, sign in terms)
    consts = [sign * t.value for t, sign in terms if isinstance(t, ast.Constant) and isinstance(t.value, int)]
    return has_pos and bool(consts) and sum(consts) < 0


def _relative_kinds(index: ast.AST) -> set[str]:
    """`j - k`, `j - n + k`: `before:j`; `j + 1`: `after:j` (the names added in a sum, by its sign)."""
    terms = _signed_terms(index)
    added = [t.id for t, sign in terms if isinstance(t, ast.Name) and sign == 1]
    const = sum(sign * t.value for t, sign in terms if isinstance(t, ast.Constant) and type(t.value) is int)
    back = const < 0 or any(sign < 0 and not isinstance(t, ast.Constant) for t, sign in terms)
    if back:
        return {"before:" + n for n in added}
    return {"after:" + n for n in added} if const > 0 else set()


def _shifts_back_by_one(call: ast.Call) -> bool:
    """`torch.roll(x, -1)`, `np.roll(x, -1, axis=-1)`, `x.roll(-1)`, `x.roll(shifts=-1, dims=1)`."""
    func = call.func
    args = list(call.args)
    if isinstance(func, ast.Attribute) and dotted(func.value) in ("torch", "np", "numpy"):
        args = args[1:]
    shift = args[0] if args else next((kw.value for kw in call.keywords if kw.arg in ("shifts", "shift")), None)
    return (
        isinstance(shift, ast.UnaryOp) and isinstance(shift.op, ast.USub)
        and isinstance(shift.operand, ast.Constant) and shift.operand.value == 1
    ) or (isinstance(shift, ast.Constant) and shift.value == -1)


def _offset_one(lower: ast.AST) -> bool:
    """A lower bound one past something: `1`, `i + 1`, `1 + i`, `i + 2 - 1`."""
    if isinstance(lower, ast.Constant):
        return lower.value == 1
    const = 0
    stack: list[tuple[ast.AST, int]] = [(lower, 1)]
    symbolic = False
    while stack:
        cur, sign = stack.pop()
        if isinstance(cur, ast.BinOp) and isinstance(cur.op, ast.Add | ast.Sub):
            stack.append((cur.left, sign))
            stack.append((cur.right, -sign if isinstance(cur.op, ast.Sub) else sign))
        elif isinstance(cur, ast.Constant) and isinstance(cur.value, int) and not isinstance(cur.value, bool):
            const += sign * cur.value
        else:
            symbolic = True
    return symbolic and const == 1


def _is_shift_by_one(index: ast.AST) -> bool:
    """`[1:]`, `[s + 1 : e + 1]`, `[:, 1:]`: the next-token shift that turns a window into its targets."""
    if isinstance(index, ast.Tuple) and index.elts:
        index = index.elts[-1]
    if not isinstance(index, ast.Slice) or index.lower is None:
        return False
    if not _offset_one(index.lower):
        return False
    # `[t - k + 1 : t]` is the k - 1 tokens of context before position t, not a shifted window: a lower bound
    # that subtracts a variable is a shift only when the upper bound is shifted too (`[e - n + 1 : e + 1]`)
    return not _subtracts_variable(index.lower) or index.upper is None or _offset_one(index.upper)


def _subtracts_variable(expr: ast.AST) -> bool:
    """`i - k + 1`: some non-constant term of the sum is subtracted."""
    stack: list[tuple[ast.AST, int]] = [(expr, 1)]
    while stack:
        cur, sign = stack.pop()
        if isinstance(cur, ast.BinOp) and isinstance(cur.op, ast.Add | ast.Sub):
            stack.append((cur.left, sign))
            stack.append((cur.right, -sign if isinstance(cur.op, ast.Sub) else sign))
        elif not isinstance(cur, ast.Constant) and sign < 0:
            return True
    return False

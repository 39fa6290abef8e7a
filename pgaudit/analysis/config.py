"""The run configuration: which values the script's knobs take, evaluated statically.

Submissions read their knobs from the environment (`int(os.environ.get("TTT_ENABLED", "0"))`) in classes
like `Hyperparameters`, at module level, or in helper functions. `Evaluator` computes such expressions
under a `RunConfig` -- the defaults, the official 8-GPU torchrun launch, or the hyperparameters a train log
printed -- with three-valued logic: anything it cannot know is `UNKNOWN`, never guessed.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pgaudit.analysis.index import ProgramIndex, Scope, ancestors, dotted
from pgaudit.source.parse import walk


class _Unknown:
    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()

# What torchrun --standalone --nproc_per_node=8 sets; RANK and LOCAL_RANK differ per process.
OFFICIAL_LAUNCH_ENV = {"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "8", "MASTER_ADDR": "127.0.0.1"}
PER_PROCESS_ENV = frozenset({"RANK", "LOCAL_RANK", "GROUP_RANK", "MASTER_PORT", "TORCHELASTIC_RUN_ID"})


@dataclass(frozen=True)
class RunConfig:
    """One way of running the script: environment variables set, and config attributes known from logs."""

    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    varying_env: frozenset[str] = frozenset()  # set, but to a per-process value
    attrs: Mapping[str, str] = field(default_factory=dict)  # attribute -> value printed in a log
    # False for the logged run: a variable the logs do not show may have been set to anything.
    complete_env: bool = True

    @classmethod
    def default(cls, overrides: Mapping[str, str] | None = None) -> RunConfig:
        return cls("default environment", dict(overrides or {}))

    @classmethod
    def official(cls, overrides: Mapping[str, str] | None = None) -> RunConfig:
        return cls("official 8-GPU launch", {**OFFICIAL_LAUNCH_ENV, **(overrides or {})}, PER_PROCESS_ENV)

    @classmethod
    def logged(
        cls,
        hyperparameters: Mapping[str, str],
        overrides: Mapping[str, str] | None = None,
        world_size: str | None = None,
        documented: Mapping[str, str] | None = None,
    ) -> RunConfig:
        """The submitted run: the documented run command's variables, then what the logs printed
        (UPPER_CASE keys are env vars, others config attributes), then `--env` overrides.

        Without a documented command, a variable the logs do not show is unknown, not its default.
        """
        env: dict[str, str] = dict(documented or {})
        attrs: dict[str, str] = {}
        for key, value in hyperparameters.items():
            if key.isupper():
                env[key] = value
            else:
                attrs[key] = value
        size = world_size or attrs.get("world_size")
        if size and size.isdigit():
            env["WORLD_SIZE"] = size
            env["LOCAL_WORLD_SIZE"] = size
        env.update(overrides or {})
        name = "submitted run configuration (logs" + (" and documented command)" if documented else ")")
        return cls(name, env, PER_PROCESS_ENV, attrs, complete_env=documented is not None)


@dataclass
class Trace:
    """Which knobs an evaluation read, to explain a verdict ("TTT_ENABLED defaults to '0'")."""

    reads: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        if text not in self.reads:
            self.reads.append(text)


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
}
_CMPOPS = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_PURE_BUILTINS = {"int": int, "float": float, "bool": bool, "str": str, "len": len, "abs": abs, "round": round}
_STR_METHODS = {"lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "replace", "casefold"}
_ENV_GETTERS = {"os.environ.get", "environ.get", "os.getenv", "getenv", "os.environ.setdefault"}
_MAX_DEPTH = 12


# Bounds on what the evaluator computes: a knob is a small number or a short string, and a submission must not
# make the auditor compute `7 ** 2_000_000_000` (a value past a bound is UNKNOWN, never computed).
MAX_INT_BITS = 4096
MAX_SEQUENCE = 100_000  # characters of a string, items of a tuple


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | tuple | list | frozenset) else None


def affordable(op: ast.operator, left: Any, right: Any) -> bool:
    """Whether `left op right` stays within the evaluator's bounds, judged before computing it."""
    ints = isinstance(left, int) and isinstance(right, int)
    if isinstance(op, ast.Pow) and ints:
        return right <= 0 or abs(left) <= 1 or left.bit_length() * right <= MAX_INT_BITS
    if isinstance(op, ast.LShift) and ints:
        return right <= MAX_INT_BITS and left.bit_length() + right <= MAX_INT_BITS
    if isinstance(op, ast.Mult):
        if ints:
            return left.bit_length() + right.bit_length() <= MAX_INT_BITS
        for seq, count in ((left, right), (right, left)):
            if _size(seq) is not None and isinstance(count, int):
                return _size(seq) * max(count, 0) <= MAX_SEQUENCE  # type: ignore[operator]
    if isinstance(op, ast.Add) and _size(left) is not None and _size(right) is not None:
        return _size(left) + _size(right) <= MAX_SEQUENCE  # type: ignore[operator]
    # printf-style formatting (`"%0999999999d" % 1`) can pad to any width
    return not (isinstance(op, ast.Mod) and isinstance(left, str | bytes))


def _replace_affordable(receiver: Any, args: list[Any]) -> bool:
    if not isinstance(receiver, str) or len(args) < 2 or not isinstance(args[1], str):
        return True
    return len(receiver) * max(len(args[1]), 1) <= MAX_SEQUENCE or len(args[1]) <= 1


def parse_printed(value: str) -> Any:
    """A value as a log printed it: True/False/None, numbers, else the string."""
    text = value.strip()
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


class ConfigAttributes:
    """Attributes of config-like classes (those that read the environment), by name."""

    def __init__(self, index: ProgramIndex) -> None:
        self.exprs: dict[str, list[tuple[ast.expr, Scope]]] = {}
        # Evaluator._assigns does not depend on the configuration: the evaluators of one program share it
        self.local_assigns: dict[int, dict[str, list[ast.expr]]] = {}
        self.call_sites: dict[str, list[tuple[ast.Call, Scope]]] | None = None  # Evaluator._param_value's, shared
        for infos in index.classes_by_name.values():
            for info in infos:
                self._collect(index, info)

    def _collect(self, index: ProgramIndex, info: Any) -> None:
        module_scope = index.scope_of(info.node) or index.module_scopes[0]
        found: list[tuple[str, ast.expr, Scope]] = []
        for stmt in info.node.body:
            if isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        found.append((target.id, stmt.value, module_scope))
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                found.append((stmt.target.id, stmt.value, module_scope))
        init = info.methods.get("__init__")
        if init is not None:
            for node in index.walk_scope(init):
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Attribute) and dotted(target.value) == "self":
                            found.append((target.attr, node.value, init))
        config_like = any(_reads_env(expr) for _, expr, _ in found) or any(
            word in info.name.lower() for word in ("hyper", "config", "args", "setting", "param")
        )
        if config_like:
            for name, expr, scope in found:
                self.exprs.setdefault(name, []).append((expr, scope))


# Methods that change a container in place: its value is no longer the literal it was bound to.
_MUTATORS = {
    "append", "extend", "insert", "update", "add", "pop", "popitem", "clear", "setdefault", "remove", "discard",
    "appendleft", "extendleft", "sort", "reverse",
}  # fmt: skip


def _reads_env(expr: ast.AST) -> bool:
    for node in walk(expr):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            return True
        if isinstance(node, ast.Name) and node.id in ("environ", "getenv"):
            return True
    return False


class Evaluator:
    """Evaluate expressions of a program under one RunConfig. Results are cached per (node, scope)."""

    def __init__(self, index: ProgramIndex, config: RunConfig, attributes: ConfigAttributes) -> None:
        self.index = index
        self.config = config
        self.attributes = attributes
        # Keyed by the node itself (not its id): a cached node stays alive, so keys are never reused.
        self._cache: dict[tuple[ast.AST, int], tuple[Any, tuple[str, ...]]] = {}
        self._active: set[tuple[ast.AST, int]] = set()
        self._local_assigns: dict[int, dict[str, list[ast.expr]]] = attributes.local_assigns
        self._call_sites: dict[str, list[tuple[ast.Call, Scope]]] | None = None

    # --- public ----------------------------------------------------------------------------------

    def value(self, expr: ast.expr, scope: Scope, trace: Trace | None = None) -> Any:
        key = (expr, id(scope))
        if key in self._cache:
            result, reads = self._cache[key]
            if trace is not None:
                for r in reads:
                    trace.add(r)
            return result
        if key in self._active or len(self._active) > _MAX_DEPTH:
            return UNKNOWN
        self._active.add(key)
        local = Trace()
        try:
            result = self._eval(expr, scope, local, {})
        except Exception:  # any Python error in the script's own expression: we cannot know
            result = UNKNOWN
        finally:
            self._active.discard(key)
        self._cache[key] = (result, tuple(local.reads))
        if trace is not None:
            for r in local.reads:
                trace.add(r)
        return result

    def truth(self, expr: ast.expr, scope: Scope, trace: Trace | None = None) -> bool | None:
        result = self.value(expr, scope, trace)
        if result is UNKNOWN:
            return None
        try:
            return bool(result)
        except Exception:
            return None

    # --- evaluation ------------------------------------------------------------------------------

    def _eval(self, node: ast.expr, scope: Scope, trace: Trace, bound: dict[str, Any]) -> Any:
        ev = lambda n: self._eval(n, scope, trace, bound)  # noqa: E731
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self._name(node.id, scope, trace, bound)
        if isinstance(node, ast.Attribute):
            return self._attribute(node, scope, trace)
        if isinstance(node, ast.Subscript) and dotted(node.value) in ("os.environ", "environ"):
            key = ev(node.slice)
            return self._env(key, None, trace, required=True)
        if isinstance(node, ast.BoolOp):
            return self._boolop(node, ev)
        if isinstance(node, ast.UnaryOp):
            operand = ev(node.operand)
            if operand is UNKNOWN:
                return UNKNOWN
            if isinstance(node.op, ast.Not):
                return not operand
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return +operand
            return UNKNOWN
        if isinstance(node, ast.BinOp):
            left, right = ev(node.left), ev(node.right)
            fn = _BINOPS.get(type(node.op))
            if UNKNOWN in (left, right) or fn is None or not affordable(node.op, left, right):
                return UNKNOWN
            return fn(left, right)
        if isinstance(node, ast.Compare):
            return self._compare(node, ev, trace)
        if isinstance(node, ast.IfExp):
            test = ev(node.test)
            if test is UNKNOWN:
                a, b = ev(node.body), ev(node.orelse)
                return a if a == b and a is not UNKNOWN else UNKNOWN
            return ev(node.body) if test else ev(node.orelse)
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = [ev(e) for e in node.elts]
            if UNKNOWN in items:
                return UNKNOWN
            return tuple(items) if not isinstance(node, ast.Set) else frozenset(items)
        if isinstance(node, ast.Call):
            return self._call(node, scope, trace, bound, ev)
        return UNKNOWN

    def _boolop(self, node: ast.BoolOp, ev: Any) -> Any:
        is_and = isinstance(node.op, ast.And)
        unknown = False
        result: Any = None
        for value in node.values:
            result = ev(value)
            if result is UNKNOWN:
                unknown = True
                continue
            if is_and and not result:
                return result
            if not is_and and result:
                return result
        return UNKNOWN if unknown else result

    def _compare(self, node: ast.Compare, ev: Any, trace: Trace) -> Any:
        # `"RANK" in os.environ`
        if (
            len(node.ops) == 1
            and isinstance(node.ops[0], ast.In | ast.NotIn)
            and dotted(node.comparators[0]) in ("os.environ", "environ")
        ):
            key = ev(node.left)
            if not isinstance(key, str):
                return UNKNOWN
            present = key in self.config.env or key in self.config.varying_env
            if not present and not self.config.complete_env:
                return UNKNOWN
            trace.add(f"{key} {'is set' if present else 'is not set'} ({self.config.name})")
            return present if isinstance(node.ops[0], ast.In) else not present
        left = ev(node.left)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = ev(comp)
            if left is UNKNOWN or right is UNKNOWN:
                return UNKNOWN
            if isinstance(op, ast.In):
                ok = left in right
            elif isinstance(op, ast.NotIn):
                ok = left not in right
            else:
                ok = _CMPOPS[type(op)](left, right)
            if not ok:
                return False
            left = right
        return True

    def _call(self, node: ast.Call, scope: Scope, trace: Trace, bound: dict[str, Any], ev: Any) -> Any:
        name = dotted(node.func)
        if name in _ENV_GETTERS and node.args:
            key = ev(node.args[0])
            default = ev(node.args[1]) if len(node.args) > 1 else None
            for kw in node.keywords:
                if kw.arg == "default":
                    default = ev(kw.value)
            return self._env(key, default, trace, required=False)
        if name.endswith("get_world_size") and not node.args:
            size = self.config.env.get("WORLD_SIZE")
            if size is not None and size.isdigit():
                trace.add(f"WORLD_SIZE={size} ({self.config.name})")
                return int(size)
            return UNKNOWN
        if name in ("getattr", "hasattr") and len(node.args) >= 2:
            return self._getattr(node, scope, trace, ev, name == "hasattr")
        if name in _PURE_BUILTINS:
            args = [ev(a) for a in node.args]
            if UNKNOWN in args or node.keywords:
                return UNKNOWN
            return _PURE_BUILTINS[name](*args)
        if name in ("max", "min") and node.args:
            args = [ev(a) for a in node.args]
            return UNKNOWN if UNKNOWN in args else (max if name == "max" else min)(*args)
        if isinstance(node.func, ast.Attribute) and node.func.attr in _STR_METHODS:
            receiver = ev(node.func.value)
            args = [ev(a) for a in node.args]
            if node.func.attr == "replace" and not _replace_affordable(receiver, args):
                return UNKNOWN
            if isinstance(receiver, str) and UNKNOWN not in args:
                return getattr(receiver, node.func.attr)(*args)
            return UNKNOWN
        if isinstance(node.func, ast.Name):
            return self._inline_helper(node, scope, trace, ev)
        return UNKNOWN

    def _getattr(self, node: ast.Call, scope: Scope, trace: Trace, ev: Any, has: bool) -> Any:
        """`getattr(args, "slot_enabled", False)`: the config attribute if the program defines it."""
        attr = ev(node.args[1])
        if not isinstance(attr, str):
            return UNKNOWN
        fake = ast.Attribute(value=node.args[0], attr=attr, ctx=ast.Load())
        known = attr in self.config.attrs or attr in self.attributes.exprs
        if has:
            return True if known else UNKNOWN
        if known:
            return self._attribute(fake, scope, trace)
        if len(node.args) >= 3:
            trace.add(f"`{attr}` is not a configuration attribute, so getattr returns its default")
            return ev(node.args[2])
        return UNKNOWN

    def _inline_helper(self, node: ast.Call, scope: Scope, trace: Trace, ev: Any) -> Any:
        """`env_int("X", 3)` where the helper is a one-expression function: evaluate its return."""
        targets = [s for s in self.index.resolve_name(node.func.id, scope) if s.cls is None]  # type: ignore[attr-defined]
        if len(targets) != 1 or node.keywords:
            return UNKNOWN
        helper = targets[0]
        body = [s for s in helper.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
            return UNKNOWN
        args = [ev(a) for a in node.args]
        params = helper.params
        fn_node = helper.node
        defaults = fn_node.args.defaults  # type: ignore[attr-defined]
        bound: dict[str, Any] = {}
        for i, param in enumerate(params):
            if i < len(args):
                bound[param] = args[i]
            else:
                offset = i - (len(params) - len(defaults))
                bound[param] = ev(defaults[offset]) if 0 <= offset < len(defaults) else UNKNOWN
        return self._eval(body[0].value, helper, trace, bound)

    def _env(self, key: Any, default: Any, trace: Trace, required: bool) -> Any:
        if not isinstance(key, str):
            return UNKNOWN
        if key in self.config.env:
            trace.add(f"{key}={self.config.env[key]!r} ({self.config.name})")
            return self.config.env[key]
        if key in self.config.varying_env:
            trace.add(f"{key} differs per process ({self.config.name})")
            return UNKNOWN
        logged = self.config.attrs.get(key.lower())
        if logged is not None:
            # a log prints `ttt_enabled:1` for the knob read from TTT_ENABLED, whatever the script's
            # attribute holding it is called
            trace.add(f"{key.lower()}={logged!r} ({self.config.name})")
            return {"True": "1", "False": "0", "true": "1", "false": "0"}.get(logged, logged)
        if required or default is UNKNOWN:
            return UNKNOWN
        if not self.config.complete_env:
            trace.add(f"the logs do not show {key}")
            return UNKNOWN
        trace.add(f"{key} defaults to {default!r}")
        return default

    def _name(self, name: str, scope: Scope, trace: Trace, bound: dict[str, Any]) -> Any:
        if name in bound:
            return bound[name]
        if name == "__name__":
            # program.py knows what each unit runs as (an exec'd file shares the exec'ing namespace); None: unknown
            run_name = getattr(scope.unit, "run_name", "__main__" if scope.unit.role == "entry" else None)
            return UNKNOWN if run_name is None else run_name
        if name in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[name]
        cur: Scope | None = scope
        while cur is not None:
            assigns = self._assigns(cur).get(name)
            if assigns:
                values = [self._eval_in(expr, cur, trace) for expr in assigns]
                first = values[0]
                return first if all(v == first and v is not UNKNOWN for v in values) else UNKNOWN
            if name in cur.params:
                return self._param_value(cur, name, trace)
            cur = cur.parent
        return UNKNOWN

    def _eval_in(self, expr: ast.expr, scope: Scope, trace: Trace) -> Any:
        return self.value(expr, scope, trace)

    def _attribute(self, node: ast.Attribute, scope: Scope, trace: Trace) -> Any:
        if node.attr in self.config.attrs:
            trace.add(f"{node.attr}={self.config.attrs[node.attr]} ({self.config.name})")
            return parse_printed(self.config.attrs[node.attr])
        exprs = self.attributes.exprs.get(node.attr)
        if not exprs:
            return UNKNOWN
        values = [self.value(expr, s, trace) for expr, s in exprs]
        first = values[0]
        return first if all(v == first and v is not UNKNOWN for v in values) else UNKNOWN

    def _assigns(self, scope: Scope) -> dict[str, list[ast.expr]]:
        cached = self._local_assigns.get(id(scope))
        if cached is not None:
            return cached
        found: dict[str, list[ast.expr]] = {}
        for node in self.index.walk_scope(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found.setdefault(target.id, []).append(node.value)
                    elif isinstance(target, ast.Tuple | ast.List):
                        for elt in target.elts:  # unpacking: value unknown, but the name is bound
                            if isinstance(elt, ast.Name):
                                found.setdefault(elt.id, []).append(ast.Constant(value=UNKNOWN))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                found.setdefault(node.target.id, []).append(node.value)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(
                node.func.value, ast.Name
            ) and node.func.attr in _MUTATORS:
                # `hits = []` then `hits.append(i)` in a loop: the list is not the constant it started as
                found.setdefault(node.func.value.id, []).append(ast.Constant(value=UNKNOWN))
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del) and isinstance(
                node.value, ast.Name
            ):
                found.setdefault(node.value.id, []).append(ast.Constant(value=UNKNOWN))
            elif isinstance(node, ast.AugAssign | ast.For | ast.NamedExpr) or (
                isinstance(node, ast.withitem) and node.optional_vars is not None
            ):
                target = node.target if not isinstance(node, ast.withitem) else node.optional_vars
                for sub in walk(target):  # type: ignore[arg-type]
                    if isinstance(sub, ast.Name):
                        found.setdefault(sub.id, []).append(ast.Constant(value=UNKNOWN))
        self._local_assigns[id(scope)] = found
        return found

    def _param_value(self, scope: Scope, name: str, trace: Trace) -> Any:
        """A parameter's value when every call site passes the same statically known value."""
        if self._call_sites is None and self.attributes.call_sites is not None:
            self._call_sites = self.attributes.call_sites
        if self._call_sites is None:
            self._call_sites = self.attributes.call_sites = {}
            for s in self.index.scopes:
                for node in self.index.calls_in(s):
                    if isinstance(node.func, ast.Name | ast.Attribute):
                        callee = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                        self._call_sites.setdefault(callee, []).append((node, s))
        position = scope.params.index(name)
        if scope.cls is not None:
            position -= 1  # self
        values = []
        for call, caller in self._call_sites.get(scope.name, []):
            if scope not in self.index.resolve_call(call, caller) or self._ruled_out(call, caller):
                continue
            arg: ast.expr | None = None
            for kw in call.keywords:
                if kw.arg == name:
                    arg = kw.value
            if arg is None and 0 <= position < len(call.args) and not any(
                isinstance(a, ast.Starred) for a in call.args[: position + 1]
            ):
                arg = call.args[position]
            if arg is None:
                defaults = scope.node.args.defaults  # type: ignore[attr-defined]
                offset = scope.params.index(name) - (len(scope.node.args.args) - len(defaults))  # type: ignore[attr-defined]
                if 0 <= offset < len(defaults):
                    arg = defaults[offset]
                else:
                    return UNKNOWN
                values.append(self.value(arg, scope, trace))
                continue
            values.append(self.value(arg, caller, trace))
        if not values or UNKNOWN in values:
            return UNKNOWN
        first = values[0]
        return first if all(v == first for v in values) else UNKNOWN

    def _ruled_out(self, call: ast.Call, caller: Scope) -> bool:
        """A call site under a branch this configuration rules out (`if args.ngram: f(use_ngram=True)` with the
        flag off) passes nothing: the parameter keeps the values of the calls that can run."""
        child: ast.AST = call
        for anc in ancestors(call):
            if anc is caller.node:
                break
            if isinstance(anc, ast.If | ast.IfExp) and child is not anc.test:
                in_body = child in anc.body if isinstance(anc.body, list) else child is anc.body
                truth = self.truth(anc.test, caller)
                if truth is not None and truth != in_body:
                    return True
            child = anc
        return False

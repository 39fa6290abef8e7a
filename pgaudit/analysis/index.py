"""The program index: every function and class of every code unit, parent links, and call resolution.

Built once per program with one walk per unit. Call resolution is by name, deliberately over-approximate
(a call `x.step()` may reach every method named `step`): rules use it to decide what *may* run, and an
over-approximation can only make code look reachable, never hide it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field

from pgaudit.source.parse import child_nodes, tree_nodes
from pgaudit.source.program import CodeUnit, Program

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


# Library calls that call a function passed to them before returning (`map(tuner.fit, chunks)` on each item).
_CALLS_ITS_ARGUMENT = frozenset({"step", "checkpoint", "map"})


@dataclass(eq=False)
class Scope:
    """A function body, or a unit's module-level code (node is the ast.Module)."""

    node: ast.AST
    unit: CodeUnit
    name: str
    qualname: str
    cls: str | None = None
    parent: Scope | None = None
    params: list[str] = field(default_factory=list)
    decorators: list[str] = field(default_factory=list)

    @property
    def is_module(self) -> bool:
        return isinstance(self.node, ast.Module)

    @property
    def body(self) -> list[ast.stmt]:
        return self.node.body  # type: ignore[attr-defined,no-any-return]

    def __repr__(self) -> str:
        return f"<Scope {self.unit.label}:{self.qualname}>"


@dataclass(eq=False)
class ClassInfo:
    node: ast.ClassDef
    unit: CodeUnit
    name: str
    bases: list[str]
    methods: dict[str, Scope] = field(default_factory=dict)


def dotted(node: ast.AST | None) -> str:
    """`torch.nn.functional.cross_entropy` for an Attribute chain or Name; "" otherwise."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if isinstance(node, ast.Call):  # torch.no_grad() used as a decorator/context
        inner = dotted(node.func)
        if inner:
            parts.append(inner)
            return ".".join(reversed(parts))
    return ""


def call_name(call: ast.Call) -> str:
    """The last component of the callee: `opt.step()` -> "step", `foo()` -> "foo"."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def parent(node: ast.AST) -> ast.AST | None:
    return getattr(node, "pg_parent", None)


def ancestors(node: ast.AST) -> Iterator[ast.AST]:
    cur = parent(node)
    while cur is not None:
        yield cur
        cur = parent(cur)


class ProgramIndex:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.scopes: list[Scope] = []
        self.module_scopes: list[Scope] = []
        self.functions_by_name: dict[str, list[Scope]] = {}
        self.classes_by_name: dict[str, list[ClassInfo]] = {}
        self.scope_of_def: dict[int, Scope] = {}
        self._scope_nodes: dict[int, list[ast.AST]] = {}
        self._scope_calls: dict[int, list[ast.Call]] = {}
        self._scope_typed: dict[tuple[int, tuple[type, ...]], list[ast.AST]] = {}
        self._resolved: dict[tuple[int, int], list[Scope]] = {}
        for unit in program.units:
            self._index_unit(unit)

    # --- building ------------------------------------------------------------------------------

    def _index_unit(self, unit: CodeUnit) -> None:
        tree_nodes(unit.tree)  # parent links
        module_scope = Scope(unit.tree, unit, "<module>", "<module>")
        self.scopes.append(module_scope)
        self.module_scopes.append(module_scope)
        self.scope_of_def[id(unit.tree)] = module_scope
        stack: list[tuple[ast.AST, Scope, str | None]] = [(unit.tree, module_scope, None)]
        while stack:
            node, scope, cls = stack.pop()
            for child in child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    inner = self._add_function(child, unit, scope, cls)
                    stack.append((child, inner, None))
                elif isinstance(child, ast.ClassDef):
                    self._add_class(child, unit)
                    stack.append((child, scope, child.name))
                else:
                    stack.append((child, scope, cls))

    def _add_function(self, node: FunctionNode, unit: CodeUnit, outer: Scope, cls: str | None) -> Scope:
        prefix = f"{cls}." if cls else ("" if outer.is_module else f"{outer.qualname}.")
        args = node.args
        params = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
        if args.vararg:
            params.append(args.vararg.arg)
        if args.kwarg:
            params.append(args.kwarg.arg)
        scope = Scope(
            node,
            unit,
            node.name,
            prefix + node.name,
            cls,
            outer,
            params,
            [dotted(d) for d in node.decorator_list],
        )
        self.scopes.append(scope)
        self.scope_of_def[id(node)] = scope
        self.functions_by_name.setdefault(node.name, []).append(scope)
        if cls:
            for info in self.classes_by_name.get(cls, []):
                if info.unit is unit:
                    info.methods[node.name] = scope
        return scope

    def _add_class(self, node: ast.ClassDef, unit: CodeUnit) -> None:
        info = ClassInfo(node, unit, node.name, [dotted(b) for b in node.bases])
        self.classes_by_name.setdefault(node.name, []).append(info)

    # --- queries -------------------------------------------------------------------------------

    def scope_of(self, node: ast.AST) -> Scope | None:
        """The innermost function (or module) whose body contains `node`."""
        for anc in ancestors(node):
            scope = self.scope_of_def.get(id(anc))
            if scope is not None:
                return scope
        return None

    def resolve_call(self, call: ast.Call, caller: Scope | None = None) -> list[Scope]:
        """Functions a call may reach, by name: functions, methods, constructors (`Cls(...)` -> __init__)."""
        key = (id(call), id(caller))
        found = self._resolved.get(key)
        if found is None:
            direct = self._resolve_call(call, caller)
            found = self._resolved[key] = direct + self._forwarded(call, direct, caller) + self._closures(call, caller)
        return found

    def _forwarded(self, call: ast.Call, callees: list[Scope], caller: Scope | None) -> list[Scope]:
        """Functions passed as arguments to a callee that calls that parameter:
        `timed_eval("final", eval_val, model, val_tokens)` with `def timed_eval(label, fn, *args): fn(*args)`
        reaches `eval_val` too."""
        found: list[Scope] = []
        for callee in callees:
            if not isinstance(callee.node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            called = {c.func.id for c in self.calls_in(callee) if isinstance(c.func, ast.Name)}
            spec = callee.node.args
            positional = [a.arg for a in [*spec.posonlyargs, *spec.args]]
            if callee.cls is not None and positional[:1] in (["self"], ["cls"]):
                positional = positional[1:]
            passed = [(positional[i], a) for i, a in enumerate(call.args) if i < len(positional)]
            passed += [(kw.arg, kw.value) for kw in call.keywords if kw.arg]
            for param, value in passed:
                if param in called and isinstance(value, ast.Name):
                    found += [s for s in self.resolve_name(value.id, caller) if s.name == value.id and s not in found]
        return found

    def _closures(self, call: ast.Call, caller: Scope | None) -> list[Scope]:
        """Functions of ours handed to a library call that calls them at once: `opt.step(closure)` (L-BFGS
        re-evaluates the loss through its closure), `checkpoint(fn, x)`."""
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name not in _CALLS_ITS_ARGUMENT:
            return []
        found: list[Scope] = []
        for value in [*call.args, *(kw.value for kw in call.keywords)]:
            if isinstance(value, ast.Name):
                found += [s for s in self.resolve_name(value.id, caller) if s.name == value.id and s not in found]
            elif isinstance(value, ast.Attribute) and name == "map":  # a bound method: `map(obj.fit, xs)`
                found += [s for s in self.functions_by_name.get(value.attr, []) if s.cls is not None and s not in found]
        return found

    def _resolve_call(self, call: ast.Call, caller: Scope | None) -> list[Scope]:
        func = call.func
        if isinstance(func, ast.Name):
            return self.resolve_name(func.id, caller, called=True)
        if isinstance(func, ast.Subscript) and isinstance(func.slice, ast.Constant) and isinstance(func.slice.value, str):
            # `ns["main"]()` after `exec(payload, ns)`: the module-level function of that name
            name = func.slice.value
            return [s for s in self.functions_by_name.get(name, []) if s.cls is None and s.parent is not None and s.parent.is_module]
        if isinstance(func, ast.Attribute):
            owner = func.value
            # `module.func(...)` of a sibling module, `self.method(...)`, `obj.method(...)`
            candidates = [s for s in self.functions_by_name.get(func.attr, []) if s.cls is not None]
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls") and caller and caller.cls:
                own = [s for s in candidates if s.cls == caller.cls]
                if own:
                    return own
            module_level = [s for s in self.functions_by_name.get(func.attr, []) if s.cls is None and s.parent and s.parent.is_module]
            if isinstance(owner, ast.Name) and self._is_sibling_module(owner.id):
                return module_level
            return candidates
        return []

    def resolve_name(self, name: str, caller: Scope | None, called: bool = False) -> list[Scope]:
        """A bare name used as a value or callee: nested function, module function, or class (__init__)."""
        # Closest enclosing definition first (nested functions shadow module ones).
        scope = caller
        while scope is not None:
            nested = [s for s in self.functions_by_name.get(name, []) if s.parent is scope and s.cls is None]
            if nested:
                return nested
            scope = scope.parent
        found = [s for s in self.functions_by_name.get(name, []) if s.cls is None and s.parent is not None and s.parent.is_module]
        for cls in self.classes_by_name.get(name, []):
            for method in ("__init__", "__post_init__", "forward", "__call__"):
                if method in cls.methods:
                    found.append(cls.methods[method])
        return found

    def class_methods(self, name: str) -> list[Scope]:
        return [m for cls in self.classes_by_name.get(name, []) for m in cls.methods.values()]

    def _is_sibling_module(self, name: str) -> bool:
        return any(u.path.rsplit("/", 1)[-1] == f"{name}.py" for u in self.program.units if u.role == "module")

    def walk_scope(self, scope: Scope) -> list[ast.AST]:
        """Nodes of a scope's own body (not nested function bodies), in source order; computed once."""
        cached = self._scope_nodes.get(id(scope))
        if cached is None:
            cached = self._scope_nodes[id(scope)] = list(self._walk_scope(scope))
        return cached

    def nodes_in(self, scope: Scope, types: tuple[type, ...]) -> list[ast.AST]:
        """The nodes of `walk_scope(scope)` that are instances of `types`, in the same order; kept per scope and
        types (a rule that asks about a few node kinds need not call its predicate on every node)."""
        key = (id(scope), types)
        found = self._scope_typed.get(key)
        if found is None:
            found = self._scope_typed[key] = [n for n in self.walk_scope(scope) if isinstance(n, types)]
        return found

    def calls_in(self, scope: Scope) -> list[ast.Call]:
        cached = self._scope_calls.get(id(scope))
        if cached is None:
            cached = self._scope_calls[id(scope)] = [n for n in self.walk_scope(scope) if isinstance(n, ast.Call)]
        return cached

    def _walk_scope(self, scope: Scope) -> Iterator[ast.AST]:
        if isinstance(scope.node, ast.Lambda):
            return iter(())
        if getattr(scope.node, "pg_span", None) is not None:  # numbered at parse time (source/parse.py)
            out: list[ast.AST] = []
            for stmt in scope.body:
                _scope_nodes_under(stmt, out)
            return iter(out)
        return self._walk_scope_slow(scope)

    def _walk_scope_slow(self, scope: Scope) -> Iterator[ast.AST]:
        stack = list(reversed(scope.body))
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                # decorators and defaults run in the enclosing scope, the body does not
                stack.extend(reversed(node.decorator_list))
                stack.extend(d for d in node.args.defaults if d is not None)
                stack.extend(d for d in node.args.kw_defaults if d is not None)
                continue
            if isinstance(node, ast.ClassDef):
                # a class body runs where the class is defined; its methods' bodies do not
                stack.extend(reversed([*node.decorator_list, *node.bases, *node.body]))
                continue
            stack.extend(reversed(child_nodes(node)))


def _scope_nodes_under(node: ast.AST, out: list[ast.AST]) -> None:
    """`ProgramIndex._walk_scope`'s nodes under `node`, in the same order, read off the tree's pre-order
    numbering (`walk`): runs of plain nodes are slices; a nested function contributes its decorators and
    defaults, a class its decorators, bases and body, as the stack walk visits them."""
    order, start, end = node.pg_span  # type: ignore[attr-defined]
    i = start
    while i < end:
        n = order[i]
        out.append(n)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            # the stack walk pushes reversed(decorators), then defaults, then kw_defaults: they pop as
            # kw_defaults and defaults last to first, then the decorators first to last
            inner = [d for d in n.args.kw_defaults if d is not None][::-1] + n.args.defaults[::-1] + n.decorator_list
            for d in inner:
                _scope_nodes_under(d, out)
            i = n.pg_span[2]  # type: ignore[attr-defined]
        elif isinstance(n, ast.ClassDef):
            for d in [*n.decorator_list, *n.bases, *n.body]:
                _scope_nodes_under(d, out)
            i = n.pg_span[2]  # type: ignore[attr-defined]
        else:
            i += 1

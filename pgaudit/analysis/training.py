"""The training loop and what it trains on, found from use: whatever the loop and its data are called.

The training loop is the first loop the program runs that differentiates a loss and steps an optimizer
(walking the entry in execution order through the calls it makes). What it trains on is what flows into
the loss it differentiates: the identifiers (names and attributes) that loss is computed from, followed
backwards through assignments, calls and loaders to where the data is chosen.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from pgaudit.analysis.dataflow import Labels
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import Scope, call_name, dotted
from pgaudit.analysis.reaching import reaching_labels
from pgaudit.source.parse import walk

_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_DEPTH = 5


@dataclass(frozen=True)
class TrainingLoop:
    scope: Scope
    loop: ast.For | ast.AsyncFor | ast.While
    losses: tuple[ast.AST, ...]  # what is differentiated (or handed to a function that differentiates it)
    path: tuple[tuple[Scope, ast.Call], ...] = ()  # the calls from the entry down to the loop's function

    def labels(self, facts: Facts) -> Labels:
        out: set[str] = set()
        for loss in self.losses:
            out |= reaching_labels(facts.flow, loss, self.scope)
        return frozenset(out)

    def sources(self, facts: Facts) -> list[tuple[Scope, ast.Assign | ast.AnnAssign]]:
        """The assignments that bind what the loop trains on: in the loop's function, the assignments of the
        names its loss is computed from (grown backwards: `x, y = loader.next_batch()` adds `loader`;
        `loader = Loader(args.files)` adds `args` and the attribute `files`); the parameters among them
        continue at the call that led here; attributes are bound wherever they are stored (`self.files = ...`,
        a class field `files = ...`)."""
        out: list[tuple[Scope, ast.Assign | ast.AnnAssign]] = []
        attrs: set[str] = set()
        exprs: list[ast.AST] = list(self.losses)
        scope = self.scope
        path = list(self.path)
        # only what runs before the data is used: a name `main()` rebinds after its training loop (an inline
        # eval reusing `x, y`) does not feed the loop
        until = getattr(self.loop, "end_lineno", None) or self.loop.lineno
        while True:
            names, found_attrs = _grow(facts, scope, exprs, until)
            attrs |= found_attrs
            out.extend((scope, a) for a in _assignments(facts, scope) if _bound_names(a) & names and a.lineno <= until)
            params = [p for p in scope.params if p in names]
            if not params or not path:
                break
            caller, call = path.pop()
            exprs = [arg for name, arg in _arguments(call, scope) if name in params]
            scope, until = caller, call.lineno
        for other in facts.flow.scopes:
            for a in _assignments(facts, other):
                if _bound_attrs(a) & attrs and (other, a) not in out:
                    out.append((other, a))
        return out


def first_training_loop(facts: Facts) -> TrainingLoop | None:
    """The first loop, in execution order from the entry, that runs backward passes and optimizer steps;
    code that does not run in the run being judged (reachability False) is skipped."""
    seen: set[int] = set()
    # the entry, then what runs as `__main__` from it (a payload, a `runpy.run_path(..., run_name="__main__")`)
    runs = [u for u in facts.program.units if u.role == "entry" or u.run_name == "__main__"]
    for unit in runs:
        for module in facts.index.module_scopes:
            if module.unit is unit:
                found = _first_in(facts, module, 0, seen)
                if found is not None:
                    return found
    return None


def _first_in(
    facts: Facts, scope: Scope, depth: int, seen: set[int], path: tuple[tuple[Scope, ast.Call], ...] = ()
) -> TrainingLoop | None:
    if id(scope) in seen:
        return None
    seen.add(id(scope))
    for node in facts.index.nodes_in(scope, (*_LOOPS, ast.Call)):
        if isinstance(node, _LOOPS):
            losses = _trained(facts, scope, node)
            # only code that surely runs: an eval-only branch (`if ttt_only: ...; return`) that may run is not
            # the training phase
            if losses and facts.reachability(node).effective is True:
                return TrainingLoop(scope, node, tuple(losses), path)
        elif isinstance(node, ast.Call) and depth < _DEPTH:
            callees = _followed(facts, scope, node)
            if not callees or facts.reachability(node).effective is not True:
                continue
            for callee in callees:
                found = _first_in(facts, callee, depth + 1, seen, (*path, (scope, node)))
                if found is not None:
                    return found
    return None


def _followed(facts: Facts, scope: Scope, call: ast.Call) -> list[Scope]:
    """Callees of a plain call; a method call only when it resolves to one method (name-based resolution of
    `x.m()` is over-approximate)."""
    callees = [c for c in facts.flow.resolve(call, scope) if c is not scope]
    if isinstance(call.func, ast.Name) or len(callees) == 1:
        return callees
    return []


def _trained(facts: Facts, scope: Scope, loop: ast.AST) -> list[ast.AST]:
    """What the loop differentiates, when it also steps an optimizer: the receivers of `.backward()` in the
    loop, else the arguments of calls to functions that both differentiate and step."""
    calls = [n for n in walk(loop) if isinstance(n, ast.Call)]
    backwards = [c.func.value for c in calls if call_name(c) == "backward" and isinstance(c.func, ast.Attribute)]
    backwards += [c.args[0] for c in calls if dotted(c.func) in ("torch.autograd.backward", "torch.autograd.grad") and c.args]
    steps = any(_is_step(c) for c in calls) or any(
        facts.events.of(callee).has_step for c in calls for callee in _followed(facts, scope, c)
    )
    if backwards and steps:
        return backwards
    out: list[ast.AST] = []
    for c in calls:
        for callee in _followed(facts, scope, c):
            if facts.events.of(callee).has_step and _differentiates(facts, callee):
                out.extend([*c.args, *(kw.value for kw in c.keywords)])
    return out


def _differentiates(facts: Facts, scope: Scope) -> bool:
    return any(call_name(c) == "backward" for c in facts.index.calls_in(scope))


def _is_step(call: ast.Call) -> bool:
    # an argument-less `.step()` (optimizers and LR schedulers), whatever the object is called
    return call_name(call) == "step" and isinstance(call.func, ast.Attribute) and not call.args


def _grow(
    facts: Facts, scope: Scope, exprs: list[ast.AST], until: int, rounds: int = 8
) -> tuple[set[str], set[str]]:
    """Local names and attribute names the expressions are computed from, grown backwards through the
    scope's assignments and in-place fills up to line `until`, for at most `rounds` rounds."""
    names: set[str] = set()
    attrs: set[str] = set()
    for e in exprs:
        _collect(e, names, attrs)
    fs = facts.flow.fs.get(id(scope))
    assigns = [
        (t, v) for t, v, _how in (fs.assigns if fs else []) if v is not None and getattr(t, "lineno", 0) <= until
    ]
    for _ in range(rounds):
        size = len(names) + len(attrs)
        for target, value in assigns:
            t_names: set[str] = set()
            t_attrs: set[str] = set()
            _collect(target, t_names, t_attrs, store=True)
            if t_names & names or t_attrs & attrs:
                _collect(value, names, attrs)
        if len(names) + len(attrs) == size:
            break
    # `feed(box)`: the attributes the program's own functions in the chain read (`box.src`), one level down
    for target, value in [(None, e) for e in exprs] + assigns:
        if target is not None and not (_stored(target) & names):
            continue
        for call in (n for n in walk(value) if isinstance(n, ast.Call)):
            for callee in facts.flow.resolve(call, scope):
                if callee is not scope:
                    attrs |= {n.attr for n in facts.index.nodes_in(callee, (ast.Attribute,))}  # type: ignore[attr-defined]
    return names, attrs


def _stored(target: ast.AST) -> set[str]:
    names: set[str] = set()
    _collect(target, names, set(), store=True)
    return names


def _collect(node: ast.AST, names: set[str], attrs: set[str], store: bool = False) -> None:
    """Names read by `node`, and attribute names (`args.files`, `self.loader`); for a store target, the
    names and attributes it binds."""
    if store and isinstance(node, ast.Attribute | ast.Subscript):
        # `box.src = v`, `box[k] = v` bind the attribute and change what the root object holds
        if isinstance(node, ast.Attribute):
            attrs.add(node.attr)
        root = _root(node)
        if root and root not in ("self", "cls"):
            names.add(root)
        return
    for n in walk(node):
        if isinstance(n, ast.Name) and n.id not in ("self", "cls"):
            names.add(n.id)
        elif isinstance(n, ast.Attribute):
            attrs.add(n.attr)


def _root(node: ast.AST) -> str:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _assignments(facts: Facts, scope: Scope) -> list[ast.Assign | ast.AnnAssign]:
    return [n for n in facts.index.nodes_in(scope, (ast.Assign, ast.AnnAssign)) if n.value is not None]  # type: ignore[attr-defined]


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def _bound_names(node: ast.Assign | ast.AnnAssign) -> set[str]:
    """Plain names bound outside a class body (a class field is an attribute of its instances)."""
    if isinstance(getattr(node, "pg_parent", None), ast.ClassDef):
        return set()
    return {n.id for t in _targets(node) for n in walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _bound_attrs(node: ast.Assign | ast.AnnAssign) -> set[str]:
    """Attributes bound: `x.files = ...`, or a class field `files = ...`."""
    out = {t.attr for t in _targets(node) if isinstance(t, ast.Attribute)}
    if isinstance(getattr(node, "pg_parent", None), ast.ClassDef):
        out |= {t.id for t in _targets(node) if isinstance(t, ast.Name)}
    return out


def _arguments(call: ast.Call, callee: Scope) -> list[tuple[str, ast.AST]]:
    params = list(callee.params)
    if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        params = params[1:]
    out = [(p, a) for p, a in zip(params, call.args, strict=False) if not isinstance(a, ast.Starred)]
    out += [(kw.arg, kw.value) for kw in call.keywords if kw.arg]
    return out

"""Reachability: which functions and branches may run from the entry point under a run configuration.

Per scope we precompute, once, the references it makes (calls, and function names used as values) and the
branch conditions that guard them. Each configuration then only evaluates the conditions and walks the
references: a reference under a branch whose condition is statically false does not make its target live.
Conditions that cannot be evaluated keep both branches live (may run).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from pgaudit.analysis.config import Evaluator, Trace
from pgaudit.analysis.index import ProgramIndex, Scope, ancestors
from pgaudit.source.parse import unparsed

Guard = tuple[ast.If | ast.While | ast.IfExp, bool]  # (condition node, branch taken: True=body, False=orelse)


@dataclass
class _ScopeRefs:
    refs: list[tuple[ast.AST, tuple[Guard, ...]]] = field(default_factory=list)


class ReferenceTable:
    """Configuration-independent: for every scope, what it references and under which guards."""

    def __init__(self, index: ProgramIndex) -> None:
        self.index = index
        self.by_scope: dict[int, _ScopeRefs] = {}
        self.method_names = {s.name for s in index.scopes if s.cls is not None}
        self.function_names = set(index.functions_by_name) | set(index.classes_by_name)
        for scope in index.scopes:
            self.by_scope[id(scope)] = self._collect(scope)

    def _collect(self, scope: Scope) -> _ScopeRefs:
        out = _ScopeRefs()
        for node in self.index.nodes_in(scope, (ast.Call, ast.Name, ast.Attribute)):
            if isinstance(node, ast.Call) or (
                isinstance(node, ast.Name) and node.id in self.function_names and isinstance(node.ctx, ast.Load)
            ) or (isinstance(node, ast.Attribute) and node.attr in self.method_names):
                out.refs.append((node, guards_of(node, scope)))
        return out


def guards_of(node: ast.AST, scope: Scope) -> tuple[Guard, ...]:
    """The branch conditions between `node` and the top of its scope, outermost first."""
    guards: list[Guard] = []
    child = node
    for anc in ancestors(node):
        if anc is scope.node:
            break
        if isinstance(anc, ast.If | ast.While | ast.IfExp) and child is not anc.test:
            in_body = child in anc.body if isinstance(anc.body, list) else child is anc.body
            guards.append((anc, in_body))
        child = anc
    return tuple(reversed(guards))


@dataclass(frozen=True)
class Verdict:
    live: bool | None  # None: depends on a condition pgaudit cannot evaluate
    detail: str


class Reach:
    """Live scopes and guard truth values under one configuration."""

    def __init__(
        self,
        index: ProgramIndex,
        refs: ReferenceTable,
        evaluator: Evaluator,
        evidence: dict[tuple[int, str], tuple[bool, Any]] | None = None,
    ) -> None:
        self.index = index
        self.refs = refs
        self.evaluator = evaluator
        self.evidence = evidence or {}
        self._truth: dict[int, tuple[bool | None, Trace]] = {}
        self.live: dict[int, Scope] = {}
        self.caller: dict[int, tuple[Scope, ast.AST]] = {}  # first live reference that made a scope live
        self.blocked: dict[int, str] = {}  # why a reference to a scope was ruled out (first reason seen)
        self._propagate()

    def guard_truth(self, guard_node: ast.If | ast.While | ast.IfExp, scope: Scope) -> tuple[bool | None, Trace]:
        key = id(guard_node)
        if key not in self._truth:
            seen = self.evidence.get((id(scope), unparsed(guard_node.test))) if self.evidence else None
            if seen is not None:
                truth, line = seen
                trace = Trace([f"the log shows `{line.text.strip()[:80]}` ({line.source}:{line.number})"])
                self._truth[key] = (truth, trace)
            else:
                trace = Trace()
                self._truth[key] = (self.evaluator.truth(guard_node.test, scope, trace), trace)
        return self._truth[key]

    def path_state(self, guards: tuple[Guard, ...], scope: Scope) -> tuple[bool | None, str]:
        """False if some guard rules the path out; None if some guard is unknown; True otherwise.

        The detail explains the deciding guard; for a live path it names guards the logs proved.
        """
        state: bool | None = True
        unknown_detail = ""
        proven: list[str] = []
        for guard_node, in_body in guards:
            truth, trace = self.guard_truth(guard_node, scope)
            if truth is None:
                if state is True:
                    state = None
                    unknown_detail = _describe(guard_node, scope, trace, None, in_body)
                continue
            if truth != in_body:
                return False, _describe(guard_node, scope, trace, truth, in_body)
            if any(r.startswith("the log shows") for r in trace.reads):
                proven.append(_describe(guard_node, scope, trace, truth, in_body))
        if state is None:
            return None, unknown_detail
        return True, "; ".join(proven)

    def _path_truth(self, guards: tuple[Guard, ...], scope: Scope) -> bool | None:
        """`path_state`'s truth value alone, without the sentences (propagation asks it for every reference)."""
        state: bool | None = True
        for guard_node, in_body in guards:
            truth = self.guard_truth(guard_node, scope)[0]
            if truth is None:
                state = None
            elif truth != in_body:
                return False
        return state

    def _propagate(self) -> None:
        work: list[Scope] = []
        for scope in self.index.module_scopes:
            self.live[id(scope)] = scope
            work.append(scope)
        while work:
            scope = work.pop()
            for node, guards in self.refs.by_scope[id(scope)].refs:
                state = self._path_truth(guards, scope) if guards else True
                if state is False:
                    targets = [t for t in self._targets(node, scope) if id(t) not in self.blocked]
                    if targets:
                        why = self.path_state(guards, scope)[1]
                        for target in targets:
                            self.blocked[id(target)] = f"the call at line {getattr(node, 'lineno', '?')} is {why}"
                    continue
                for target in self._targets(node, scope):
                    if id(target) not in self.live:
                        self.live[id(target)] = target
                        self.caller[id(target)] = (scope, node)
                        work.append(target)

    def _targets(self, node: ast.AST, scope: Scope) -> list[Scope]:
        if isinstance(node, ast.Call):
            return self.index.resolve_call(node, scope)
        if isinstance(node, ast.Name):
            return self.index.resolve_name(node.id, scope)
        if isinstance(node, ast.Attribute):
            return [s for s in self.index.functions_by_name.get(node.attr, []) if s.cls is not None]
        return []

    def verdict(self, node: ast.AST) -> Verdict:
        """Whether `node` may run: its scope must be live and no guard on the way may be false."""
        scope = self.index.scope_of(node)
        if scope is None:
            return Verdict(None, "")
        if id(scope) not in self.live:
            why = self._why_dead(scope)
            return Verdict(False, why)
        state, detail = self.path_state(guards_of(node, scope), scope)
        if state is False:
            return Verdict(False, detail)
        chain = self.call_chain(scope)
        return Verdict(state, "; ".join(p for p in (detail, chain) if p))

    def _why_dead(self, scope: Scope) -> str:
        cur: Scope | None = scope
        while cur is not None and not cur.is_module:
            if id(cur) in self.blocked:
                prefix = "" if cur is scope else f"`{cur.qualname}`, which contains it: "
                return f"`{scope.qualname}` is not called: {prefix}{self.blocked[id(cur)]}"
            if id(cur) in self.live:
                break
            cur = cur.parent
        return f"`{scope.qualname}` is never called on a path from the entry point"

    def call_chain(self, scope: Scope, limit: int = 4) -> str:
        """`called from main (line 1520) <- ...`: how the entry point reaches a scope."""
        steps = []
        cur = scope
        while id(cur) in self.caller and len(steps) < limit:
            caller, node = self.caller[id(cur)]
            if caller.is_module:
                steps.append(f"module level of {caller.unit.label} (line {node.lineno})")  # type: ignore[attr-defined]
                break
            steps.append(f"`{caller.qualname}` (line {node.lineno})")  # type: ignore[attr-defined]
            cur = caller
        return ("reached from " + " <- ".join(steps)) if steps else ""


def _describe(guard: ast.If | ast.While | ast.IfExp, scope: Scope, trace: Trace, truth: bool | None,
              in_body: bool = True) -> str:
    cond = unparsed(guard.test)
    if len(cond) > 90:
        cond = cond[:87] + "..."
    reads = "; ".join(trace.reads[:4])
    # Code in an `else` runs when the condition is False: say so, or "guarded by X, which is True" reads as live.
    where = f"guarded by `{cond}`" if in_body else f"in the `else` of `{cond}`"
    if truth is None:
        return f"{where} (line {guard.lineno}), which pgaudit cannot evaluate statically"
    because = f" because {reads}" if reads else ""
    return f"{where} (line {guard.lineno}), which is {truth}{because}"

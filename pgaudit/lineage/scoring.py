"""Which entries are on the scoring path: reachable from the evaluation that produces the reported metric.

Built on the analysis facts as they are today (reachability under the default environment and the score
events): the functions that score validation tokens, everything they call, and the live functions that lead
to them (`main`, the module body). An entry is a top-level function, method or class body, so a nested
helper marks the function that holds it.
"""

from __future__ import annotations

import ast

from pgaudit.lineage.fingerprint import ProgramPrint
from pgaudit.source.program import Program


def scoring_keys(program: Program, prints: ProgramPrint) -> set[str] | None:
    """Entry keys on the scoring path, or None when the analysis could not say (no score event found)."""
    from pgaudit.analysis.facts import Facts
    from pgaudit.analysis.index import Scope

    facts = Facts(program)
    index = facts.index
    live = facts.reach["default"].live
    events = facts.events
    aliases = _external_roots(program)
    evals = [s for s in index.scopes if any(e.kind == "score" for e in events.of(s).inline)]
    if not evals:
        return None
    # `model(x)` / `self.blocks[i](x)` call a module's forward: the type is unknown statically, so a call
    # of a local object that resolves to no function reaches every forward of the program's classes.
    forwards = [s for name in ("forward", "__call__") for s in index.functions_by_name.get(name, []) if s.cls]
    on_path: dict[int, Scope] = {}
    work = list(evals)
    while work:  # what the scoring functions call, transitively
        scope = work.pop()
        if id(scope) in on_path:
            continue
        on_path[id(scope)] = scope
        for call in index.calls_in(scope):
            targets = index.resolve_call(call, scope)
            work.extend(targets or (forwards if _object_call(call, aliases) else []))
    for scope in index.scopes:  # what leads to a score: main(), the module body
        if "score" in events.of(scope).kinds:
            on_path.setdefault(id(scope), scope)
    keys: set[str] = set()
    module_keys = {(e.path, e.in_payload, e.wrapper_line): e.key for e in prints.entries if e.kind == "module"}
    for scope in on_path.values():
        if id(scope) not in live and scope not in evals:
            continue
        key = _entry_key(scope, prints, module_keys)
        if key:
            keys.add(key)
    return keys


def _external_roots(program: Program) -> set[str]:
    """Names bound by imports (`torch`, `F`, `np`): calls through them are library calls, not modules."""
    roots: set[str] = set()
    for unit in program.units:
        for node in ast.walk(unit.tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                roots.update((a.asname or a.name).split(".")[0] for a in node.names)
    return roots


def _object_call(call: ast.Call, external: set[str]) -> bool:
    func = call.func
    while isinstance(func, ast.Attribute | ast.Subscript):
        func = func.value
    if isinstance(func, ast.Call):
        return False
    return isinstance(func, ast.Name) and func.id not in external and func.id not in _BUILTINS


_BUILTINS = set(dir(__import__("builtins")))


def _entry_key(scope, prints: ProgramPrint, module_keys: dict) -> str | None:  # type: ignore[no-untyped-def]
    """The entry holding a scope: the outermost function or method around it."""
    if scope.is_module:
        unit = scope.unit
        return module_keys.get((unit.path, unit.in_payload, unit.wrapper_line))
    cur = scope
    key = prints.def_nodes.get(id(cur.node))
    while cur.parent is not None and not cur.parent.is_module:
        cur = cur.parent
        key = prints.def_nodes.get(id(cur.node)) or key
    if key is None and isinstance(scope.node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    return key

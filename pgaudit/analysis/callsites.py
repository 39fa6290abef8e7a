"""Context-sensitive labels: a helper's value seen from each of its call sites.

Flow labels of a parameter are the union over every call site, so a helper called with training targets by a
dead or training-only caller and with validation targets by the live eval looks "mixed". Rules that would stay
silent on a mix ask here instead: with the helper's parameters bound to what one call passes, are the labels
validation-only, and does that call run?
"""

from __future__ import annotations

import ast

from pgaudit.analysis.dataflow import PARAM, Labels
from pgaudit.analysis.events import bind_params
from pgaudit.analysis.index import Scope


def call_sites(facts, callee: Scope) -> list[tuple[Scope, ast.Call]]:
    cache = facts.__dict__.setdefault("_call_sites", None)
    if cache is None:
        cache = {}
        for caller in facts.flow.scopes:
            for call in facts.index.calls_in(caller):
                for target in facts.flow.resolve(call, caller):
                    if target is not caller:
                        cache.setdefault(id(target), []).append((caller, call))
        facts.__dict__["_call_sites"] = cache
    return cache.get(id(callee), [])


def labels_at_sites(facts, expr: ast.AST, scope: Scope) -> list[tuple[Scope, ast.Call, Labels]]:
    """For each call of `scope`, the labels of what that call passes to the parameters `expr` is made of (the
    provenance and target-ness this call site contributes)."""
    symbolic = facts.flow.symbolic(expr, scope)
    params = {lab[len(PARAM):] for lab in symbolic if lab.startswith(PARAM)}
    if not params:
        return []
    out = []
    for caller, call in call_sites(facts, scope):
        bound = dict(bind_params(call, scope))
        labels: set[str] = set()
        for p in params & set(bound):
            labels |= facts.flow.labels(bound[p], caller)
        out.append((caller, call, frozenset(labels)))
    return out

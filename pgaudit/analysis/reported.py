"""The reported metric: which values a submission prints as its loss/bpb, and which functions compute them.

The score is what flows into the metric the logs report (`print(f"final val_loss:{vl} val_bpb:{vb}")`), not
what a `no_grad` block or an `eval*` name suggests. A function whose return value flows into such a print, or
into the return of another such function, computes the reported score whatever it is called (`train_step`
that adapts and then measures). A print is recognised by what it writes (a metric word in its fixed text),
never by the names of the variables it formats.
"""

from __future__ import annotations

import ast
import re

from pgaudit.analysis.evidence import LogLine, template
from pgaudit.analysis.index import ProgramIndex, Scope, call_name
from pgaudit.source.parse import walk

_PRINTERS = re.compile(r"(?i)(^print$|^log\w*$|^info$|^write$|^print0$|^log0$)")
# What a metric line writes: `val_bpb:1.12`, `final_exact val_loss ...`, `bits per byte`, `nll=`.
_METRIC_TEXT = re.compile(r"(?i)(bpb|loss|nll|bits|perplexity|ppl)")


def _literal_text(call: ast.Call) -> str:
    parts: list[str] = []
    for arg in call.args:
        for node in walk(arg):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                parts.append(node.value)
    return " ".join(parts)


def metric_prints(index: ProgramIndex, scope: Scope) -> list[ast.Call]:
    """Print/log calls in `scope` whose fixed text names a loss or bpb metric, or that print a record built
    in the scope with metric keys (`print(json.dumps({"val_loss": l, "val_bpb": b}))`, also through a name)."""
    records = {
        t.id for node in index.walk_scope(scope) if isinstance(node, ast.Assign) and _metric_record(node.value)
        for t in node.targets if isinstance(t, ast.Name)
    }
    return [
        node
        for node in index.walk_scope(scope)
        if isinstance(node, ast.Call)
        and _PRINTERS.search(call_name(node) or "")
        and node.args
        and (
            _METRIC_TEXT.search(_literal_text(node))
            or any(isinstance(n, ast.Name) and n.id in records for a in node.args for n in walk(a))
        )
    ]


def _metric_record(value: ast.AST) -> bool:
    return isinstance(value, ast.Dict) and any(
        isinstance(k, ast.Constant) and isinstance(k.value, str) and _METRIC_TEXT.search(k.value) for k in value.keys
    )


def _assigns(index: ProgramIndex, scope: Scope) -> list[tuple[set[str], ast.AST]]:
    out = []
    for node in index.walk_scope(scope):
        if isinstance(node, ast.Assign):
            names = {n.id for t in node.targets for n in walk(t) if isinstance(n, ast.Name)}
            out.append((names, node.value))
        elif isinstance(node, ast.AugAssign | ast.AnnAssign) and node.value is not None:
            names = {n.id for n in walk(node.target) if isinstance(n, ast.Name)}
            out.append((names, node.value))
    return out


# Calls that hand back (a transform of) their argument's value: `float(x)`, `x.item()`, `sum(xs)`.
_VALUE_WRAPPERS = {
    "float", "int", "round", "abs", "sum", "mean", "item", "tolist", "cpu", "detach", "double", "to", "sqrt",
    "exp", "log", "log2", "div", "mul", "add", "max", "min", "all_reduce", "tensor", "as_tensor", "dumps",
}  # fmt: skip


def value_parts(expr: ast.AST) -> list[ast.AST]:
    """The sub-expressions whose values make up `expr`: through arithmetic, tuples, subscripts, f-strings and
    value-preserving wrappers (`float(a / b)`), but not into the arguments of other calls (`f(model, x)`
    produces a new value: `f` itself is a part, `model` and `x` are its inputs)."""
    out: list[ast.AST] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, ast.Call):
            name = call_name(node)
            if name in _VALUE_WRAPPERS:
                stack.extend(node.args)
                if isinstance(node.func, ast.Attribute):
                    stack.append(node.func.value)
        elif isinstance(node, ast.Subscript | ast.Attribute):
            stack.append(node.value)
        elif isinstance(node, ast.BinOp):
            stack += [node.left, node.right]
        elif isinstance(node, ast.UnaryOp):
            stack.append(node.operand)
        elif isinstance(node, ast.IfExp):
            stack += [node.body, node.orelse]
        elif isinstance(node, ast.Tuple | ast.List):
            stack.extend(node.elts)
        elif isinstance(node, ast.Dict | ast.JoinedStr):  # a record of metrics, an f-string: their values
            stack.extend(node.values)
        elif isinstance(node, ast.FormattedValue):
            stack.append(node.value)
    return out


def sources_of(
    index: ProgramIndex, scope: Scope, roots: list[ast.AST], rounds: int = 6, broad: bool = False
) -> list[ast.AST]:
    """The value parts of `roots` inside `scope`, and of the values assigned to the names they are made of,
    grown backwards through the scope's assignments (the value chain, not every input of every call). `broad`
    also takes every sub-expression (a score computed in a lambda handed to a timing helper)."""
    parts_of = (lambda e: list(walk(e))) if broad else value_parts
    exprs: list[ast.AST] = [p for r in roots for p in parts_of(r)]
    names = {n.id for n in exprs if isinstance(n, ast.Name)}
    assigns = _assigns(index, scope)
    seen_values: set[int] = set()
    for _ in range(rounds):
        grown = False
        for targets, value in assigns:
            if targets & names and id(value) not in seen_values:
                seen_values.add(id(value))
                parts = parts_of(value)
                exprs += parts
                new = {n.id for n in parts if isinstance(n, ast.Name)} - names
                if new:
                    names |= new
                    grown = True
        if not grown:
            break
    return exprs


def reporting_scopes(index: ProgramIndex, resolve) -> set[int]:
    """Ids of the functions whose result flows into a printed loss/bpb metric, directly or through the return
    of another such function."""
    marked: set[int] = set()
    work: list[Scope] = []

    def mark_calls(scope: Scope, roots: list[ast.AST]) -> None:
        for node in sources_of(index, scope, roots):
            if isinstance(node, ast.Call):
                for callee in resolve(node, scope):
                    if id(callee) not in marked and callee is not scope:
                        marked.add(id(callee))
                        work.append(callee)

    for scope in index.scopes:
        prints = metric_prints(index, scope)
        if prints:
            mark_calls(scope, [a for p in prints for a in p.args])
    while work:
        scope = work.pop()
        returns = [n.value for n in index.walk_scope(scope) if isinstance(n, ast.Return) and n.value is not None]
        if returns:
            mark_calls(scope, returns)
    return marked


def result_reported(index: ProgramIndex, scope: Scope, call: ast.Call) -> bool:
    """The value `call` returns is printed as a metric in `scope` or returned from it: it is reported (or may
    be), not dropped."""
    prints = metric_prints(index, scope)
    roots: list[ast.AST] = [a for p in prints for a in p.args]
    roots += [n.value for n in index.walk_scope(scope) if isinstance(n, ast.Return) and n.value is not None]
    return any(call is node for node in sources_of(index, scope, roots))


def prints_of(index: ProgramIndex, scope: Scope, call: ast.AST) -> list[ast.Call]:
    """The metric prints in `scope` that format the value of `call` (broadly: through any call it is given to)."""
    return [
        p
        for p in metric_prints(index, scope)
        if any(call is node for node in sources_of(index, scope, list(p.args), broad=True))
    ]


def _lines_of(prints: list[ast.Call], lines: list[LogLine]) -> list[LogLine]:
    out = []
    for p in prints:
        pattern, anchor = template(p.args[0])
        if pattern is None:
            continue
        out += [ln for ln in lines if anchor in ln.text and pattern.search(ln.text)]
    return out


def printed_last(facts, later, earlier) -> bool:
    """The logs show the metric line printed from `later`'s value after the one printed from `earlier`'s, in
    the same log: the later number is the one the run ended on (what the submission reports)."""
    index, lines = facts.index, facts.log_lines
    if not lines:
        return False
    late = _lines_of(prints_of(index, later.scope, later.node), lines)
    early = _lines_of(prints_of(index, earlier.scope, earlier.node), lines)
    return any(ln.source == e.source and ln.number > e.number for ln in late for e in early)

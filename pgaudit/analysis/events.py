"""Score and update events: where the program scores validation tokens and where it adapts weights on them.

An *update* is a backward pass on a loss derived from validation tokens, in code that also steps an
optimizer (or updates parameters in place). A *score* is a loss/NLL computed on validation tokens without
gradients (or inside an eval function). Calls to functions that do either become events at the call site,
so `main()` reads as a sequence: `ttt_adapt(val)` (update) ... `eval_val_sliding(val)` (score).

Labels are "validation-only" when they carry `val` and not `train`. Flow labels are per name, so a big
`main()` that reuses `loss` in its training loop and in an inline TTT loop mixes both: losses take the labels
of the assignment that reaches them (analysis/reaching.py), and where that is not certain a mix stays a mix
and we stay silent rather than accuse.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from pgaudit.analysis.dataflow import TRAIN, VAL, Flow, Labels
from pgaudit.analysis.index import ProgramIndex, Scope, ancestors, call_name, dotted
from pgaudit.analysis.reaching import reaching_labels
from pgaudit.analysis.reported import reporting_scopes, sources_of, value_parts
from pgaudit.source.parse import walk

_NO_GRAD = re.compile(r"(no_grad|inference_mode)$")
_ENABLE_GRAD = re.compile(r"enable_grad$")
_OPTIMIZER_CTOR = re.compile(r"(?i)(adam|sgd|muon|optim|lamb|lion|rmsprop|adagrad|adadelta|shampoo|soap|adafactor|lbfgs|rprop)")
_OPTIMIZER_NAME = re.compile(r"(?i)(^|_)(opt|optim|optimizer|optimizers|opts)(\d*|_\w+)?$")
_LOSS_CALLS = {"cross_entropy", "nll_loss", "log_softmax", "binary_cross_entropy", "kl_div"}
_EVAL_FUNC = re.compile(r"(?i)^_*(eval|evaluate|score|compute_val|run_eval|val_)")
_INPLACE = {"add_", "sub_", "addcmul_", "addcdiv_", "copy_", "mul_", "lerp_"}


def val_only(labels: Labels) -> bool:
    return VAL in labels and TRAIN not in labels


@dataclass(frozen=True)
class Event:
    kind: str  # "update" or "score"
    scope: Scope
    node: ast.AST
    labels: Labels
    via: Scope | None = None  # the callee, for events at a call site
    updated: tuple[str, ...] = ()  # objects whose parameters the update changes, when known
    self_contained: bool = False  # the callee adapts only objects it creates and drops
    free_tensors: bool = False  # the update optimizes tensors created here (a SLOT delta), not a model

    @property
    def order(self) -> tuple[int, int]:
        return (getattr(self.node, "lineno", 0), getattr(self.node, "col_offset", 0))

    @property
    def line(self) -> int:
        return getattr(self.node, "lineno", 0)

    def loops(self) -> list[ast.For | ast.AsyncFor | ast.While]:
        """Enclosing loops inside the event's own scope, outermost first."""
        out = []
        for anc in ancestors(self.node):
            if anc is self.scope.node:
                break
            if isinstance(anc, ast.For | ast.AsyncFor | ast.While):
                out.append(anc)
        return list(reversed(out))


_PASS_NAME = re.compile(r"(?i)^_*(ep|epoch\w*|pass\w*|round\w*|rep\w*|iter\w*|trial\w*|run\w*|_)$")
_PASS_COUNT = re.compile(r"(?i)(epoch|pass|round|repeat|trial)")


def is_multi_pass_loop(loop: ast.AST) -> bool:
    """`for epoch in range(ttt_epochs)`: a loop that repeats the same work, its variable not selecting data.

    A chunk or document loop (`for ci, start in enumerate(starts)`, `chunk = tokens[ci * n:]`) uses its
    variable to pick what it processes, so its passes see different tokens.
    """
    if isinstance(loop, ast.While):
        return _counted_while(loop)
    if not isinstance(loop, ast.For | ast.AsyncFor):
        return False
    names = [n.id for n in walk(loop.target) if isinstance(n, ast.Name)]
    counted = _PASS_COUNT.search(ast.unparse(loop.iter)) is not None
    # by shape, whatever the names: a counted loop around another loop whose variable is used at most to
    # single out a pass (`for e in range(k): for c in chunks: ... if e == k - 1:`)
    wraps_loop = any(isinstance(n, ast.For | ast.AsyncFor | ast.While) for stmt in loop.body for n in walk(stmt))
    if wraps_loop and names:
        wraps_loop = all(_only_singles_out_a_pass(loop, {name}) or _only_reorders(loop, name) for name in names)
    if not (counted or wraps_loop or (names and all(_PASS_NAME.match(n) for n in names))):
        return False
    if not (isinstance(loop.iter, ast.Call) and call_name(loop.iter) == "range"):
        return False
    used_in_slices = any(
        isinstance(node, ast.Subscript) and any(isinstance(n, ast.Name) and n.id in names for n in walk(node.slice))
        for stmt in loop.body
        for node in walk(stmt)
    )
    return not used_in_slices


def while_counters(loop: ast.While) -> list[str]:
    """`while ep < k: ... ep += 1`: the names the test compares that the body steps."""
    tested = {n.id for n in walk(loop.test) if isinstance(n, ast.Name)}
    stepped = {
        stmt.target.id
        for body_stmt in loop.body
        for stmt in walk(body_stmt)
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name) and isinstance(stmt.op, ast.Add | ast.Sub)
    }
    return sorted(tested & stepped)


def _counted_while(loop: ast.While) -> bool:
    """A `while` pass counter around another loop, its counter used at most to single out a pass (the `while`
    spelling of `for epoch in range(k): for chunk in ...`)."""
    names = while_counters(loop)
    if not names:
        return False
    wraps_loop = any(isinstance(n, ast.For | ast.AsyncFor | ast.While) for stmt in loop.body for n in walk(stmt))
    if not wraps_loop:
        return False
    return _only_singles_out_a_pass(loop, names, loads_only=True)


def _only_reorders(loop: ast.For | ast.AsyncFor, name: str) -> bool:
    """Each pass walks the same work list in a rotated order (`k = p * len(xs) // n; xs = xs[k:] + xs[:k]`,
    then `for ... in xs`), and otherwise the counter is only tested (`if p > 0:`) or printed: every pass
    covers the same items."""
    body = [n for stmt in loop.body for n in walk(stmt)]
    offsets: set[str] = set()
    for n in body:  # `k = <expression of the counter>` whose `k` is used only as a rotation offset
        if (
            isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
            and any(isinstance(x, ast.Name) and x.id == name for x in walk(n.value))
        ):
            offsets.add(n.targets[0].id)
    rotations: set[int] = set()
    rotated: set[str] = set()
    for n in body:
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add) and isinstance(n.left, ast.Subscript) and isinstance(n.right, ast.Subscript):
            a, b = n.left.slice, n.right.slice
            if (
                isinstance(a, ast.Slice) and isinstance(b, ast.Slice) and a.upper is None and b.lower is None
                and isinstance(a.lower, ast.Name) and isinstance(b.upper, ast.Name) and a.lower.id == b.upper.id
                and ast.unparse(n.left.value) == ast.unparse(n.right.value)
            ):
                rotations.update({id(a.lower), id(b.upper)})
                rotated.add(ast.unparse(n.left.value))
    compared = {id(x) for n in body if isinstance(n, ast.Compare) for side in [n.left, *n.comparators] for x in walk(side)}
    printed = {id(x) for n in body if isinstance(n, ast.JoinedStr) for x in walk(n)}
    defining = {id(x) for n in body if isinstance(n, ast.Assign) and n.targets[0].__class__ is ast.Name
                and getattr(n.targets[0], "id", None) in offsets for x in walk(n.value)}
    for n in body:
        if not (isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)):
            continue
        if n.id == name and id(n) not in compared | printed | defining:
            return False
        if n.id in offsets and id(n) not in rotations | printed | compared:
            return False
    walked = {  # the inner loops' work lists: `for x in xs`, `for i, x in enumerate(xs)`
        ast.unparse(it.args[0] if isinstance(it, ast.Call) and call_name(it) == "enumerate" and it.args else it)
        for n in body if isinstance(n, ast.For | ast.AsyncFor) for it in [n.iter]
    }
    return bool(rotated & walked)


def _only_singles_out_a_pass(loop: ast.For | ast.AsyncFor | ast.While, names: set[str], loads_only: bool = False) -> bool:
    """Every use of the pass counters in the body is an (in)equality test (`if e == k - 1`); a `while` counter's
    own increments (`k += 1`) are not uses."""
    uses = [
        n for stmt in loop.body for n in walk(stmt)
        if isinstance(n, ast.Name) and n.id in names and (not loads_only or isinstance(n.ctx, ast.Load))
    ]
    tests = {
        id(side)
        for stmt in loop.body
        for n in walk(stmt)
        if isinstance(n, ast.Compare) and all(isinstance(op, ast.Eq | ast.NotEq) for op in n.ops)
        for side in [n.left, *n.comparators]
    }
    return all(id(u) in tests for u in uses)


@dataclass
class ScopeEvents:
    inline: list[Event] = field(default_factory=list)
    calls: list[Event] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)  # transitive: "update", "score"
    has_step: bool = False
    optimizer_objects: tuple[str, ...] = ()  # what this scope's optimizers update
    # updates whose data comes from parameters (`step_on(net, opt, a, b)`): (node, those parameters), made
    # concrete at each call site with the labels of what that call passes -- a training caller and a TTT caller
    # of the same helper each get their own verdict
    param_updates: list[tuple[ast.AST, frozenset[str]]] = field(default_factory=list)
    # the same for scores: `measure(net, a, b)` used to log a training loss and to score validation tokens
    param_scores: list[tuple[ast.AST, frozenset[str]]] = field(default_factory=list)

    @property
    def all(self) -> list[Event]:
        return sorted([*self.inline, *self.calls], key=lambda e: e.order)


class Events:
    def __init__(self, index: ProgramIndex, flow: Flow) -> None:
        self.index = index
        self.flow = flow
        self.by_scope: dict[int, ScopeEvents] = {id(s): ScopeEvents() for s in flow.scopes}
        # functions whose result is printed as the loss/bpb metric: what they compute on validation tokens is the
        # reported score, whatever they are called and whether or not gradients are on
        self.reporting = reporting_scopes(index, flow.resolve)
        for scope in flow.scopes:
            self._inline(scope)
        self._transitive()
        for scope in flow.scopes:
            self._call_events(scope)
        self._instantiate_param_updates()

    def of(self, scope: Scope) -> ScopeEvents:
        return self.by_scope.get(id(scope), ScopeEvents())

    # --- inline events ---------------------------------------------------------------------------

    def _inline(self, scope: Scope) -> None:
        se = self.by_scope[id(scope)]
        backwards: list[tuple[ast.Call, ast.AST]] = []
        loss_calls: list[ast.Call] = []
        optimizers: dict[str, ast.Call] = {}
        steps: list[tuple[int, str]] = []
        for node in self.index.nodes_in(scope, (ast.Assign, ast.AugAssign, ast.Call)):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                if _OPTIMIZER_CTOR.search(call_name(node.value)) and node.targets and isinstance(node.targets[0], ast.Name):
                    optimizers[node.targets[0].id] = node.value
            if not isinstance(node, ast.Call):
                if isinstance(node, ast.AugAssign) and _is_param_update(node.target, node.value):
                    se.has_step = True
                continue
            name = call_name(node)
            if name == "backward" and isinstance(node.func, ast.Attribute):
                backwards.append((node, node.func.value))
            elif dotted(node.func) in ("torch.autograd.backward", "torch.autograd.grad", "autograd.grad") and node.args:
                backwards.append((node, node.args[0]))
            elif name == "step" and isinstance(node.func, ast.Attribute):
                rname = dotted(node.func.value)
                # an optimizer made here, one named so, or any argument-less `.step()` (optimizer or scheduler)
                if rname in optimizers or not node.args or _OPTIMIZER_NAME.search(rname.rsplit(".", 1)[-1] or ""):
                    se.has_step = True
                    steps.append((node.lineno, rname))
            elif name in _INPLACE and isinstance(node.func, ast.Attribute) and _is_param_ref(node.func.value):
                se.has_step = True
            if name in _LOSS_CALLS or self._has_target_arg(node, scope):
                loss_calls.append(node)
        # Names holding a loss (`nll = cross_entropy(...)`): adding one into a total is accumulating a score,
        # whatever the total is called.
        loss_ids = {id(c) for c in loss_calls}
        loss_vars = {
            t.id
            for n in self.index.walk_scope(scope)
            if loss_ids and isinstance(n, ast.Assign) and any(id(c) in loss_ids for c in walk(n.value))
            for t in n.targets
            if isinstance(t, ast.Name)
        }

        def adds_loss(n: ast.AugAssign) -> bool:
            return isinstance(n.op, ast.Add) and (
                any(isinstance(v, ast.Name) and v.id in loss_vars for v in walk(n.value))
                or any(id(c) in loss_ids for c in walk(n.value))
            )

        augs = [n for n in self.index.nodes_in(scope, (ast.AugAssign,))]
        # a total that sums losses holds a loss: `batch += nll[...].sum()` then `total += batch` accumulates it
        # too, whatever either is called
        for _ in range(3):
            grown = {n.target.id for n in augs if isinstance(n.target, ast.Name) and adds_loss(n)} - loss_vars
            if not grown:
                break
            loss_vars |= grown
        accumulations = [n for n in augs if adds_loss(n) or self._into_out_param(n, scope)]
        assigns: dict[str, list[ast.AST]] = {}
        for target, value, how in self.flow.fs[id(scope)].assigns:
            if (isinstance(target, ast.Name) and value is not None and how == "=") or (isinstance(target, ast.Name) and how == "iter" and value is not None):
                assigns.setdefault(target.id, []).append(value)
        se.optimizer_objects = tuple(
            dict.fromkeys(o for ctor in optimizers.values() for o in _optimized_objects(ctor, assigns))
        )
        for call, loss in backwards:
            labels = reaching_labels(self.flow, loss, scope)  # `loss` reused by a training loop and a TTT loop
            if val_only(labels):
                stepped = _optimizer_after(call.lineno, steps, optimizers, assigns)
                free = bool(stepped) and all(_is_free_tensor(o, assigns) for o in stepped)
                se.inline.append(Event("update", scope, call, labels, updated=stepped, free_tensors=free))
            else:
                params = _param_deps(self.flow.symbolic(loss, scope))
                if params and TRAIN not in _concrete(self.flow.symbolic(loss, scope)):
                    se.param_updates.append((call, params))
        trained_names = self._feeding_names(scope, [loss for _, loss in backwards])
        in_backward = {id(n) for _, loss in backwards for n in walk(loss)}
        for call in loss_calls:
            if id(call) in in_backward:
                continue
            labels = self._scored_labels(call, scope)
            if not val_only(labels):
                if self._no_grad(call, scope) and not self._feeds_backward(call, trained_names):
                    sym = self.flow.symbolic(call, scope)
                    if _param_deps(sym) and TRAIN not in _concrete(sym):
                        se.param_scores.append((call, _param_deps(sym)))
                continue
            # a function whose result is printed as the metric scores with the losses that make up its result
            evaluates = _EVAL_FUNC.search(scope.name) or (
                (call_name(call) in _LOSS_CALLS or id(scope) in self.reporting) and self._feeds_return(call, scope)
            )
            if self._no_grad(call, scope) or (evaluates and not self._feeds_backward(call, trained_names)):
                se.inline.append(Event("score", scope, call, labels))
        scored_lines = {e.line for e in se.inline if e.kind == "score"}
        # the differentiated loss values themselves (`loss`, `nll` that `loss` is made of), not the inputs they
        # share with a fresh forward pass (`acc += ce(net(a), b)` after training on a, b is a new measurement)
        backward_names = {n.id for _, loss in backwards for n in walk(loss) if isinstance(n, ast.Name)}
        trained_losses = backward_names | (loss_vars & trained_names)
        returned = self._reported_names(scope) if id(scope) in self.reporting else set()
        for acc in accumulations:
            labels = reaching_labels(self.flow, acc.value, scope)
            if not val_only(labels) or acc.lineno in scored_lines:
                continue
            uses_trained = any(isinstance(n, ast.Name) and n.id in trained_losses for n in walk(acc.value))
            # a total the function returns as the printed metric is the reported score even when it sums the
            # training loss itself (`if epoch == last: acc += out.item()`)
            reported = any(isinstance(n, ast.Name) and n.id in returned for n in walk(acc.target))
            if self._no_grad(acc, scope) or not uses_trained or reported:  # not the logging of a training loss
                se.inline.append(Event("score", scope, acc, labels))
        if se.inline:
            se.kinds |= {e.kind for e in se.inline}

    def _into_out_param(self, node: ast.AugAssign, scope: Scope) -> bool:
        """`total += part[i, a:b].sum()` where `total` and `part` are parameters: a helper that adds a reduction
        of what the caller passes (per-token losses) into the caller's accumulator, whatever either is called.
        Its labels still have to be validation-only to make it a score."""
        if not (isinstance(node.op, ast.Add) and isinstance(node.target, ast.Name) and node.target.id in scope.params):
            return False
        if not any(isinstance(c, ast.Call) and call_name(c) == "sum" for c in walk(node.value)):
            return False
        names = self._names_flowing_into(scope, {n.id for n in walk(node.value) if isinstance(n, ast.Name)}, rounds=3)
        return any(p in names for p in scope.params if p != node.target.id)

    def _scored_labels(self, call: ast.Call, scope: Scope) -> Labels:
        """What a loss scores is decided by its labels: `cross_entropy(logits, y)` scores y's tokens, even when
        the logits mix in a table built from other data."""
        if call_name(call) in ("cross_entropy", "nll_loss") and len(call.args) >= 2:
            target = reaching_labels(self.flow, call.args[1], scope)
            if target & {VAL, TRAIN}:
                return target
        return reaching_labels(self.flow, call, scope)

    def _has_target_arg(self, call: ast.Call, scope: Scope) -> bool:
        """`model(x, y)`, `loss_fn(logits, targets)`: a call given the targets computes a loss."""
        if call_name(call) in ("__getitem__", "gather", "index_select", "take"):
            return False
        return any("target" in self.flow.symbolic(a, scope) for a in call.args[1:])

    def _feeding_names(self, scope: Scope, losses: list[ast.AST]) -> set[str]:
        """Names whose values flow into a differentiated loss (`per_tok = ce(...)`; `loss = (per_tok * w).sum()`)."""
        names = {n.id for loss in losses for n in walk(loss) if isinstance(n, ast.Name)}
        return self._names_flowing_into(scope, names, rounds=6)

    def _names_flowing_into(self, scope: Scope, names: set[str], rounds: int) -> set[str]:
        """`names` grown backwards through the scope's assignments and accumulations (`x = f(a, b)` adds a and b
        when x is in the set), for at most `rounds` rounds."""
        names = set(names)
        assigns = [
            (t, v) for t, v, how in self.flow.fs[id(scope)].assigns if v is not None and how in ("=", "aug")
        ]
        for _ in range(rounds):
            grown = False
            for target, value in assigns:
                if any(isinstance(n, ast.Name) and n.id in names for n in walk(target)):
                    for n in walk(value):
                        if isinstance(n, ast.Name) and n.id not in names:
                            names.add(n.id)
                            grown = True
            if not grown:
                break
        return names

    def _reported_names(self, scope: Scope) -> set[str]:
        """Names on the value chain into what the function returns (`return loss_sum / count`: loss_sum)."""
        returns = [n.value for n in self.index.walk_scope(scope) if isinstance(n, ast.Return) and n.value is not None]
        return {n.id for n in sources_of(self.index, scope, returns) if isinstance(n, ast.Name)}

    def _feeds_return(self, call: ast.Call, scope: Scope) -> bool:
        """The loss flows, through assignments and accumulations, into what the function returns: it computes
        the function's result (a reported metric), whatever the function is called."""
        if id(scope) in self.reporting:  # the value chain into the printed result, not every input of it
            returns = [n.value for n in self.index.walk_scope(scope) if isinstance(n, ast.Return) and n.value is not None]
            if any(call is n for n in sources_of(self.index, scope, returns)):
                return True
            stmt = _statement_of(call)
            if isinstance(stmt, ast.AugAssign) and any(
                isinstance(n, ast.Name) and n.id in {t.id for t in [stmt.target] if isinstance(t, ast.Name)}
                for n in sources_of(self.index, scope, returns)
            ):
                return call in value_parts(stmt.value)
        target = _assigned_name(call)
        if target is None:
            return False
        returned = {
            n.id
            for node in self.index.walk_scope(scope)
            if isinstance(node, ast.Return) and node.value is not None
            for n in walk(node.value)
            if isinstance(n, ast.Name)
        }
        return target in self._names_flowing_into(scope, returned, rounds=8)

    def _feeds_backward(self, call: ast.Call, trained_names: set[str]) -> bool:
        """The loss is assigned to a name that a backward pass later differentiates."""
        parent = getattr(call, "pg_parent", None)
        while parent is not None and not isinstance(parent, ast.stmt):
            parent = getattr(parent, "pg_parent", None)
        if isinstance(parent, ast.Assign):
            return any(isinstance(n, ast.Name) and n.id in trained_names for t in parent.targets for n in walk(t))
        return False

    def no_grad(self, node: ast.AST, scope: Scope) -> bool:
        """`node` runs with gradients off: under `torch.no_grad()`/`inference_mode()` or such a decorator."""
        return self._no_grad(node, scope)

    def _no_grad(self, node: ast.AST, scope: Scope) -> bool:
        for anc in ancestors(node):
            if isinstance(anc, ast.With | ast.AsyncWith):
                for item in anc.items:
                    name = dotted(item.context_expr)
                    if _ENABLE_GRAD.search(name):
                        return False
                    if _NO_GRAD.search(name) or _grad_disabled(item.context_expr):
                        return True
            if isinstance(anc, ast.FunctionDef | ast.AsyncFunctionDef):
                if any(_NO_GRAD.search(dotted(d)) for d in anc.decorator_list):
                    return True
        return False

    # --- transitive kinds and call events ----------------------------------------------------------

    def _transitive(self) -> None:
        for _ in range(8):
            changed = False
            for scope in self.flow.scopes:
                se = self.by_scope[id(scope)]
                for node in self.index.calls_in(scope):
                    for callee in self.flow.resolve(node, scope):
                        ce = self.by_scope.get(id(callee))
                        if ce is None:
                            continue
                        if ce.has_step and not se.has_step and callee.name not in ("__init__",):
                            se.has_step = True
                            changed = True
                        if not ce.kinds <= se.kinds:
                            se.kinds |= ce.kinds
                            changed = True
            if not changed:
                break
        # An update needs a step somewhere: drop backward passes that only compute gradients (saliency,
        # Hessians) in code that never changes a parameter.
        for scope in self.flow.scopes:
            se = self.by_scope[id(scope)]
            if not se.has_step and not self._parent_steps(scope):
                se.inline = [e for e in se.inline if e.kind != "update"]
                se.kinds = {e.kind for e in se.inline}
        for _ in range(8):  # recompute transitive kinds after dropping
            changed = False
            for scope in self.flow.scopes:
                se = self.by_scope[id(scope)]
                for node in self.index.calls_in(scope):
                    for callee in self.flow.resolve(node, scope):
                        ce = self.by_scope.get(id(callee))
                        if ce is not None and not ce.kinds <= se.kinds:
                            se.kinds |= ce.kinds
                            changed = True
            if not changed:
                break

    def _parent_steps(self, scope: Scope) -> bool:
        parent = scope.parent
        while parent is not None and not parent.is_module:
            if self.by_scope.get(id(parent), ScopeEvents()).has_step:
                return True
            parent = parent.parent
        return False

    def _call_events(self, scope: Scope) -> None:
        se = self.by_scope[id(scope)]
        for node in self.index.calls_in(scope):
            for callee in self.flow.resolve(node, scope):
                if callee is scope:
                    continue
                ce = self.by_scope.get(id(callee))
                if ce is None or not ce.kinds:
                    continue
                arg_labels = frozenset().union(*(self.flow.labels(a, scope) for a in [*node.args, *node.keywords])) if (node.args or node.keywords) else frozenset()
                inner = [e for e in self._transitive_events(callee)]
                labels = frozenset().union(*(e.labels for e in inner)) if inner else arg_labels
                updated, contained = self._updated_through(node, callee)
                for kind in sorted(ce.kinds):
                    se.calls.append(Event(kind, scope, node, labels, callee, updated, contained))
                break

    def _instantiate_param_updates(self) -> None:
        """Per call site: a helper whose update trains on (or whose score scores) its parameters does so on what
        this call passes."""
        for scope in self.flow.scopes:  # updates in code that never steps are gradient computations, not updates
            se = self.by_scope[id(scope)]
            if not se.has_step and not self._parent_steps(scope):
                se.param_updates = []
        for kind in ("update", "score"):
            for _ in range(5):
                changed = False
                for scope in self.flow.scopes:
                    changed |= self._instantiate_in(scope, kind)
                if not changed:
                    break

    @staticmethod
    def _pending(se: ScopeEvents, kind: str) -> list[tuple[ast.AST, frozenset[str]]]:
        return se.param_updates if kind == "update" else se.param_scores

    def _instantiate_in(self, scope: Scope, kind: str) -> bool:
        se = self.by_scope[id(scope)]
        have = {id(e.node) for e in se.calls if e.kind == kind}
        pending = {id(n) for n, _ in self._pending(se, kind)}
        changed = False
        for node in self.index.calls_in(scope):
            if id(node) in have or id(node) in pending:
                continue
            for callee in self.flow.resolve(node, scope):
                ce = self.by_scope.get(id(callee))
                if callee is scope or ce is None or not self._pending(ce, kind):
                    continue
                wanted = frozenset().union(*(p for _, p in self._pending(ce, kind)))
                sym = frozenset().union(
                    frozenset(), *(self.flow.symbolic(a, scope) for p, a in bind_params(node, callee) if p in wanted)
                )
                concrete = _concrete(sym)
                if val_only(concrete):
                    updated, contained = self._updated_through(node, callee) if kind == "update" else ((), False)
                    se.calls.append(Event(kind, scope, node, concrete, callee, updated, contained))
                    se.kinds.add(kind)
                    self._materialize(callee, concrete, set(), kind)
                    changed = True
                elif TRAIN not in concrete and _param_deps(sym):
                    self._pending(se, kind).append((node, _param_deps(sym)))
                    changed = True
                break
        return changed

    def _materialize(self, scope: Scope, labels: Labels, seen: set[int], kind: str = "update") -> None:
        """A live call passes validation tokens to `scope`: its parameter-driven updates (scores) train on
        (score) them, so they join its own timeline (where PG301/PG302 order them), down the chain of helpers."""
        if id(scope) in seen or len(seen) > 6:
            return
        seen.add(id(scope))
        se = self.by_scope[id(scope)]
        have = {id(e.node) for e in [*se.inline, *se.calls] if e.kind == kind}
        for node, _params in self._pending(se, kind):
            if id(node) in have:
                continue
            callees = self.flow.resolve(node, scope) if isinstance(node, ast.Call) and call_name(node) != "backward" else []
            callee = next((c for c in callees if c is not scope and self.by_scope.get(id(c))), None)
            if callee is None:
                se.inline.append(Event(kind, scope, node, labels))
            else:
                updated, contained = self._updated_through(node, callee) if kind == "update" else ((), False)  # type: ignore[arg-type]
                se.calls.append(Event(kind, scope, node, labels, callee, updated, contained))
                self._materialize(callee, labels, seen, kind)
            se.kinds.add(kind)

    def _transitive_events(self, scope: Scope, depth: int = 0, seen: set[int] | None = None) -> list[Event]:
        seen = seen if seen is not None else set()
        if id(scope) in seen or depth > 6:
            return []
        seen.add(id(scope))
        se = self.of(scope)
        out = list(se.inline)
        for ev in se.calls:
            if ev.via is not None:
                out.extend(self._transitive_events(ev.via, depth + 1, seen))
        return out

    def _updated_through(self, call: ast.Call, callee: Scope) -> tuple[tuple[str, ...], bool]:
        """Which caller objects a call adapts: callee optimizer objects that are its parameters, mapped to args.

        `contained` is True when the callee only adapts objects it creates itself and does not return
        (a throwaway adapter, e.g. a compile warm-up).
        """
        ce = self.of(callee)
        objs = ce.optimizer_objects
        if not objs:
            return (), False
        params = set(callee.params)
        bound = {p: a for p, a in bind_params(call, callee)}
        mapped = tuple(dotted(bound[o]) for o in objs if o in params and o in bound and dotted(bound[o]))
        local = [o for o in objs if o.split(".")[0] not in params]
        # what a return hands back, not what it calls (`return {"bpb": loss(probe(h))}` does not return `probe`)
        called = {id(n.func) for r in self.flow.fs[id(callee)].returns for n in walk(r) if isinstance(n, ast.Call)}
        returned = {
            n.id for r in self.flow.fs[id(callee)].returns for n in walk(r) if isinstance(n, ast.Name) and id(n) not in called
        }
        external = [o for o in objs if o.split(".")[0] in params or o.split(".")[0] in ("self", "cls")]
        contained = (
            bool(local)
            and not external
            and not any(o.split(".")[0] in returned for o in local)
            and ("score" not in ce.kinds or all(self._built_here(o, callee) for o in local))
        )
        return mapped, contained

    def _built_here(self, obj: str, scope: Scope) -> bool:
        """`probe = nn.Linear(d, V).to(device)`: a module the function constructs from sizes, not a copy or wrapper
        of a model it was handed (`copy.deepcopy(model)`, `LoRA(model)`): adapting it leaves the caller's weights
        as they were, even when the function also scores with it (a diagnostic probe)."""
        if "." in obj:
            return False
        values = [v for t, v, how in self.flow.fs[id(scope)].assigns if isinstance(t, ast.Name) and t.id == obj]
        if not values:
            return False
        for value in values:
            call = value
            while (  # `.to(device)`, `.cuda()`, `.float()` on the constructed module
                isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Call)
            ):
                call = call.func.value
            if not isinstance(call, ast.Call) or call_name(call) in ("deepcopy", "copy", "clone", "copy_"):
                return False
            args = [*call.args, *(kw.value for kw in call.keywords)]
            if any(isinstance(a, ast.Name | ast.Starred) or (dotted(a) or ".").split(".")[0] in scope.params for a in args):
                return False  # handed an object (`Wrapper(model)`, `Head(cfg.model)`): it may hold the model
        return True


def _param_deps(labels: Labels) -> frozenset[str]:
    return frozenset(label[len("param:"):] for label in labels if label.startswith("param:"))


def _concrete(labels: Labels) -> Labels:
    return frozenset(label for label in labels if not label.startswith("param:"))


_TENSOR_FACTORIES = {
    "zeros", "ones", "empty", "full", "randn", "rand", "zeros_like", "ones_like", "empty_like", "full_like",
    "randn_like", "tensor", "Parameter", "clone", "detach", "requires_grad_",
}  # fmt: skip


def _is_free_tensor(name: str, assigns: dict[str, list[ast.AST]]) -> bool:
    """`delta = torch.zeros(..., requires_grad=True)`: a tensor made here and optimized directly."""
    values = assigns.get(name, [])
    return bool(values) and all(isinstance(v, ast.Call) and call_name(v) in _TENSOR_FACTORIES for v in values)


def _optimizer_after(
    line: int, steps: list[tuple[int, str]], optimizers: dict[str, ast.Call], assigns: dict[str, list[ast.AST]]
) -> tuple[str, ...]:
    """The objects updated by the first optimizer step after a backward pass, when the optimizer is local."""
    following = sorted(s for s in steps if s[0] >= line)
    if not following:
        return ()
    ctor = optimizers.get(following[0][1])
    return tuple(_optimized_objects(ctor, assigns)) if ctor is not None else ()


def can_follow(first: ast.AST, later: ast.AST, scope: Scope) -> bool:
    """Whether `later` can run after `first`: not if every path from `first` leaves the function first
    (`if eval_only: ...; return` before the training loop that comes later in the source), nor if they sit
    in the two branches of one `if` (`if ttt: score_while_adapting() else: score()`): only one runs."""
    if _exclusive_branches(first, later) or _opposite_flags(first, later, scope):
        return False
    child: ast.AST = first
    for anc in ancestors(first):
        if anc is scope.node:
            break
        for field_name in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(anc, field_name, None)
            if not isinstance(block, list) or child not in block:
                continue
            tail = block[block.index(child) + 1 :]
            if any(_terminates(stmt) for stmt in tail) and not _contains(anc, later, field_name):
                return False
        child = anc
    return True


def _exclusive_branches(a: ast.AST, b: ast.AST) -> bool:
    """`a` in the body of an `if` and `b` in its `else` (or the other way round), with no loop around that `if`
    (in a loop, one iteration may take one branch and the next the other)."""
    path_a = {id(n) for n in ancestors(a)}
    child_b: ast.AST = b
    for anc in ancestors(b):
        if id(anc) in path_a:
            if not isinstance(anc, ast.If):
                return False
            if any(isinstance(n, ast.For | ast.AsyncFor | ast.While) for n in ancestors(anc)):
                return False
            chain_a = [a, *ancestors(a)]
            in_body_a = any(n is x for x in anc.body for n in chain_a)
            in_else_a = any(n is x for x in anc.orelse for n in chain_a)
            in_body_b = any(child_b is n for n in anc.body)
            in_else_b = any(child_b is n for n in anc.orelse)
            return (in_body_a and in_else_b) or (in_else_a and in_body_b)
        child_b = anc
    return False


def _flag_polarities(node: ast.AST, scope: Scope) -> dict[str, bool]:
    """The flags (`args.ttt_enabled`, `flag`) of the `if`s around `node` in its function, and which way each must
    go for `node` to run (`if not args.ttt_enabled:` requires False)."""
    out: dict[str, bool] = {}
    child = node
    for anc in ancestors(node):
        if anc is scope.node:
            break
        if isinstance(anc, ast.If) and child is not anc.test:
            test, taken = anc.test, any(child is n for n in anc.body)
            if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                test, taken = test.operand, not taken
            if isinstance(test, ast.Name | ast.Attribute) and dotted(test):
                out.setdefault(dotted(test), taken)
        child = anc
    return out


def _assigned_flags(scope: Scope) -> set[str]:
    """Attribute names the module reassigns (`args.x = ...` outside an `__init__`; any `setattr`): a config
    attribute defined in its class body or constructor and never set again keeps one value for the run."""
    root = scope.node
    for anc in ancestors(scope.node):
        root = anc
    cached = getattr(root, "pg_reassigned", None)  # kept on the tree: ids of freed trees are reused
    if cached is None:
        names: set[str] = set()
        for n in walk(root):
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store | ast.Del):
                if not any(isinstance(p, ast.FunctionDef) and p.name == "__init__" for p in ancestors(n)):
                    names.add(n.attr)
            elif isinstance(n, ast.Call) and call_name(n) == "setattr" and n.args:
                names.add("*" + (dotted(n.args[0]) or "").split(".")[0])  # `setattr(args, k, v)`: any of args
        root.pg_reassigned = cached = names  # type: ignore[attr-defined]
    return cached


def _opposite_flags(a: ast.AST, b: ast.AST, scope: Scope) -> bool:
    """`if cfg.ttt:` around one and `if not cfg.ttt:` around the other, in two separate `if`s, with the flag
    never reassigned after its definition: one run takes only one of them."""
    pa, pb = _flag_polarities(a, scope), _flag_polarities(b, scope)
    for flag in pa.keys() & pb.keys():
        if pa[flag] == pb[flag]:
            continue
        base, last = flag.split(".", 1)[0], flag.rsplit(".", 1)[-1]
        assigned = _assigned_flags(scope)
        if "*" + base not in assigned and "*" not in assigned and (
            last not in assigned if "." in flag else _bound_once(flag, scope, min(a.lineno, b.lineno))  # type: ignore[attr-defined]
        ):
            return True
    return False


def _bound_once(name: str, scope: Scope, before: int) -> bool:
    """`name` is a parameter never rebound, or bound once, outside loops, before line `before`."""
    stores = [
        n for n in walk(scope.node) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
    ]
    if not stores:
        return name in scope.params  # a parameter never rebound
    return (
        len(stores) == 1
        and stores[0].lineno < before
        and not any(isinstance(p, ast.For | ast.AsyncFor | ast.While) for p in ancestors(stores[0]))
    )


def _terminates(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Return | ast.Raise):
        return True
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and dotted(stmt.value.func) in ("sys.exit", "exit", "quit", "os._exit")
    )


def _contains(owner: ast.AST, node: ast.AST, field_name: str) -> bool:
    block = getattr(owner, field_name, [])
    return any(node is n for stmt in block for n in walk(stmt))


def bind_params(call: ast.Call, callee: Scope) -> list[tuple[str, ast.expr]]:
    params = [p for p in callee.params if p not in ("self", "cls")]
    args = list(call.args)
    passed_at = [i for i, a in enumerate(args) if _names_function(a, callee)]
    if passed_at:  # reached through a higher-order call (`timed(fn, *args)`): the arguments after fn are fn's
        args = args[passed_at[0] + 1:]
    out = [(params[i], a) for i, a in enumerate(args) if i < len(params) and not isinstance(a, ast.Starred)]
    out += [(kw.arg, kw.value) for kw in call.keywords if kw.arg]
    return out


def _names_function(arg: ast.AST, callee: Scope) -> bool:
    """`fn` or, for a method, `obj.fn`: the callee handed to a higher-order call (`map(obj.fit, xs)`)."""
    return (isinstance(arg, ast.Name) and arg.id == callee.name) or (
        isinstance(arg, ast.Attribute) and arg.attr == callee.name and callee.cls is not None
    )


def _optimized_objects(ctor: ast.Call, assigns: dict[str, list[ast.AST]] | None = None) -> list[str]:
    """The objects whose parameters an optimizer updates, followed through local assignments.

    `AdamW(lora.parameters())` -> ["lora"]; `AdamW([delta, bias])` -> ["delta", "bias"];
    `groups = [{"params": [p for p in model.parameters()]}]; AdamW(groups)` -> ["model"].
    """
    if not ctor.args:
        return []
    assigns = assigns or {}
    out: list[str] = []
    seen: set[str] = set()

    def visit(node: ast.AST, depth: int) -> None:
        if depth > 6:
            return
        if isinstance(node, ast.Call):
            name = call_name(node)
            if name in ("parameters", "named_parameters") and isinstance(node.func, ast.Attribute):
                base = dotted(node.func.value)
                if base:
                    out.append(base)
            elif name in ("list", "tuple", "chain", "filter", "sorted", "values"):
                for arg in node.args:
                    visit(arg, depth + 1)
            return  # any other call creates the object (e.g. a SLOT delta): the name that holds it counts
        if isinstance(node, ast.Name):
            if node.id in assigns and node.id not in seen:
                seen.add(node.id)
                before = len(out)
                for value in assigns[node.id]:
                    visit(value, depth + 1)
                if len(out) == before:
                    out.append(node.id)  # a tensor or module created here
            else:
                out.append(node.id)
            return
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            for elt in node.elts:
                visit(elt, depth + 1)
        elif isinstance(node, ast.Dict):
            for value in node.values:
                visit(value, depth + 1)
        elif isinstance(node, ast.ListComp | ast.GeneratorExp | ast.SetComp):
            for gen in node.generators:
                visit(gen.iter, depth + 1)
        elif isinstance(node, ast.BinOp):
            visit(node.left, depth + 1)
            visit(node.right, depth + 1)
        elif isinstance(node, ast.Subscript | ast.Starred):
            visit(node.value, depth + 1)

    visit(ctor.args[0], 0)
    return list(dict.fromkeys(out))


def _grad_disabled(expr: ast.expr) -> bool:
    """`torch.set_grad_enabled(False)`."""
    return (
        isinstance(expr, ast.Call)
        and call_name(expr) == "set_grad_enabled"
        and bool(expr.args)
        and isinstance(expr.args[0], ast.Constant)
        and expr.args[0].value is False
    )


def _is_param_ref(node: ast.AST) -> bool:
    """`p.data`, `param.data`, `p` / `param` (a loop variable over parameters, by convention)."""
    if isinstance(node, ast.Attribute) and node.attr == "data":
        return True
    return isinstance(node, ast.Name) and node.id in ("p", "param", "w", "weight")


def _is_param_update(target: ast.AST, value: ast.AST) -> bool:
    return _is_param_ref(target) and any(isinstance(n, ast.Attribute) and n.attr == "grad" for n in walk(value))


def _statement_of(node: ast.AST) -> ast.AST | None:
    parent = getattr(node, "pg_parent", None)
    while parent is not None and not isinstance(parent, ast.stmt):
        parent = getattr(parent, "pg_parent", None)
    return parent


def _assigned_name(call: ast.Call) -> str | None:
    """The single name a call's value is assigned to (`nll = ce(...).reshape(...)`), if any."""
    parent = getattr(call, "pg_parent", None)
    while parent is not None and not isinstance(parent, ast.stmt):
        parent = getattr(parent, "pg_parent", None)
    if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
        return parent.targets[0].id
    return None

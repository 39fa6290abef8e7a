"""PG102 target-dependent-mixing."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from pgaudit.analysis.callsites import call_sites
from pgaudit.analysis.dataflow import TARGET, TPROP, TRAIN, VAL, loop_carried
from pgaudit.analysis.events import bind_params
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import Scope, call_name, dotted
from pgaudit.analysis.targets import _adds_axes
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import child_nodes, walk

from .base import Example, Rule, short

_RULINGS = (
    "https://github.com/openai/parameter-golf/pull/779#issuecomment-4145781641",
    "https://github.com/openai/parameter-golf/issues/1017",
    "https://github.com/openai/parameter-golf/issues/677",
)


class TargetDependentMixing(Rule):
    """A mixing weight, gate, backoff choice or expert choice at eval computed from the target token.

    What it does:
        Finds blends of two validation-derived predictions -- `(1 - w) * a + w * b`, `torch.lerp(a, b, w)`,
        `np.where(gate, a, b)` -- whose weight or gate depends on the target token or on a property of it
        (`is_boundary[tgt]`, `word_start[y]`, `y == hint`), including a weight set under an `if` that tests
        the target (control dependence). Also finds oracle choices: which prediction scores position t decided
        by comparing two losses of the target (`where(lb < la, lb, la)`, `minimum(la, lb)`, the min over
        stacked expert losses, `if new_nll < old_nll: nll[t] = new_nll`), and a backoff order or expert
        picked by an `if` on the target (`if seen[ctx, z] > 0: q = cache_p else: q = model_p`).

    Why is this bad:
        C1: the distribution at position t may depend only on the artifact and the strict prefix. Choosing
        how to mix by looking at x_t (the "oracle safety gate" of PR #659, target-gated within-word experts)
        reads the answer before scoring it. Organizers ruled the oracle gate illegal and suggested
        entropy-based alpha instead.

    Example:
        alpha = np.where(is_word_start[tgt], 0.6, 0.1)
        p = (1 - alpha) * p_model + alpha * p_ngram

    Legal look-alikes:
        Entropy-adaptive alpha computed from the model's own distribution; weights from context tokens only;
        masking padded or ignored targets (`torch.where(y == -100, 0, nll)`); byte accounting that reads the
        byte LUT at the target (`if is_boundary[t]: nbytes += 1`); an expert chosen by its entropy; a backoff
        decided by how much context was seen; a running best kept for a report (`if loss < best: best = loss`).

    References:
        R12, R15 (oracle gate) of the catalogue; Issue #1017 (C1); PR #779 ruling.
    """

    code = "PG102"
    name = "target-dependent-mixing"
    severity = Severity.ERROR
    confidence = Confidence.MEDIUM
    catalogue_ids = ("R12", "R15")
    ruling_urls = _RULINGS
    condition = "C1"
    fix = (
        "Compute mixing weights and gates from the context only (previous tokens, the model's own "
        "distribution, e.g. its entropy), never from the token being scored."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        for scope in facts.flow.scopes:
            if not _sees_target(facts, scope):
                continue  # every gate, choice and weight judged below reads the target somewhere in the scope
            deps = _dependence(facts, scope)
            flagged: set[int] = set()
            for node in facts.index.walk_scope(scope):
                blend = _blend(node)
                if blend is None:
                    continue
                weight, a, b = blend
                finding = self._judge(facts, scope, node, weight, a, b, deps)
                if finding is None:
                    finding = self._judge_at_sites(facts, scope, node, weight, a, b)
                if finding is not None:
                    flagged.add(getattr(node, "lineno", 0))
                    yield finding
            for gate, name in deps.gated_predictions():
                if gate.lineno not in flagged:
                    flagged.add(gate.lineno)
                    test = gate.test if isinstance(gate, ast.If) else gate.targets[0].slice  # type: ignore[attr-defined]
                    what = f"`if {short(test, 50)}:`" if isinstance(gate, ast.If) else f"`{short(gate, 50)}`"
                    message = (
                        f"{what} (line {gate.lineno}) tests the target token and decides which "
                        f"prediction `{name}` scores it: the backoff order or expert used at position t is chosen "
                        "by looking at x_t (C1)."
                    )
                    yield self.finding(facts, scope.unit, gate, message)
            for node, why in deps.score_choices():
                if getattr(node, "lineno", 0) not in flagged:
                    flagged.add(getattr(node, "lineno", 0))
                    message = (
                        f"`{short(node)}` picks between two predictions by comparing their losses on the target "
                        f"token ({why}): the expert or mixture used at position t is chosen after seeing x_t, an "
                        "oracle gate (C1)."
                    )
                    yield self.finding(facts, scope.unit, node, message)

    def _judge_at_sites(
        self, facts: Facts, scope: Scope, node: ast.AST, weight: ast.AST, a: ast.AST, b: ast.AST
    ) -> Finding | None:
        """A helper that mixes with a weight it is given (`combine(pa, pb, y, w)`): judged at each call, with
        the weight that call passes, which may be an oracle weight in the caller, and the call's reachability."""
        if not (isinstance(weight, ast.Name) and weight.id in scope.params):
            return None
        for caller, call in call_sites(facts, scope):
            arg = dict(bind_params(call, scope)).get(weight.id)
            if arg is None:
                continue
            deps = _dependence(facts, caller)
            if not (deps.decided_by_target(arg) or deps.oracle_weight(arg)):
                continue
            if not any(VAL in facts.flow.labels(x, caller) for x in [*call.args, *(k.value for k in call.keywords)]):
                continue
            if facts.reachability(call).effective is False:
                continue
            message = (
                f"`{short(call)}` (line {call.lineno}) hands `{scope.qualname}` the mixing weight "
                f"`{short(arg, 50)}`, decided by the target token, and `{short(node)}` (line "
                f"{getattr(node, 'lineno', 0)}) mixes two predictions with it: how the score at position t is "
                "formed depends on x_t itself (C1)."
            )
            return self.finding(facts, caller.unit, call, message, related=[(scope.unit, node)])
        return None

    def _judge(
        self, facts: Facts, scope: Scope, node: ast.AST, weight: ast.AST, a: ast.AST, b: ast.AST,
        deps: TargetDependence | None = None,
    ) -> Finding | None:
        flow = facts.flow
        w_labels = _own_labels(facts, weight, scope)
        is_where = isinstance(node, ast.Call) and call_name(node) == "where"  # a choice: score_choices says why
        decided = deps is not None and (deps.decided_by_target(weight) or (not is_where and deps.oracle_weight(weight)))
        if TARGET not in w_labels and TPROP not in w_labels and not decided:
            return None
        if isinstance(node, ast.Call) and call_name(node) == "where" and not (
            _property_gate(weight, scope, facts) or decided
        ):
            return None  # `where(y == pad, 0, x)`-style masking compares the target with a constant
        sides = [flow.labels(side, scope) for side in (a, b)]
        if any(isinstance(side, ast.Constant) for side in (a, b)):
            return None
        if any(TRAIN in s for s in sides) or not any(VAL in s for s in sides):
            return None
        message = (
            f"`{short(node)}` mixes two predictions with a weight or gate computed from the target token "
            f"(`{short(weight, 50)}`): how the score at position t is formed depends on x_t itself (C1)."
        )
        return self.finding(facts, scope.unit, node, message)


class TargetDependence:
    """Which values in one function are decided by the target token: read from a table at the target
    (`starts[z]`), computed from such a value, or assigned under an `if` whose test is (control dependence);
    and which values are losses of the target (`cross_entropy(logits, z)`, `logp[i, z]`), so that picking the
    smaller of two of them is recognised as an oracle choice whatever the names."""

    def __init__(self, facts: Facts, scope: Scope) -> None:
        self.facts = facts
        self.scope = scope
        self.nodes = facts.index.walk_scope(scope)
        self.assigns: list[tuple[set[str], ast.AST, ast.stmt]] = []
        for node in self.nodes:
            if isinstance(node, ast.Assign):
                if all(loop_carried(t) for t in node.targets):
                    continue  # `prev = e.mean()` read earlier in the loop: the last step's value, not this one's
                names = {n for t in node.targets for n in _bound_names(t)}
                self.assigns.append((names, node.value, node))
            elif isinstance(node, ast.AugAssign | ast.AnnAssign) and node.value is not None:
                self.assigns.append((set(_bound_names(node.target)), node.value, node))
        self._value_reads: list[set[str]] | None = None
        self.target_names = self._grow(self._seed_target)
        self.prob_names = self._grow(_seed_prob)
        self.loss_names = self._grow(self._seed_loss)
        self.decided = self._control_dependent()

    # --- seeds ---------------------------------------------------------------------------------
    def _is_target(self, expr: ast.AST) -> bool:
        return TARGET in self.facts.flow.labels(expr, self.scope)

    def _seed_target(self, expr: ast.AST) -> bool:
        """A table read at the target, or a value derived from the target other than the target itself."""
        labels = _own_labels(self.facts, expr, self.scope)
        if TPROP in labels:
            return True
        return any(
            isinstance(n, ast.Subscript) and self._is_target(n.slice) and not self._is_target(n.value)
            for n in walk(expr)
        )

    def _prob(self, expr: ast.AST) -> bool:
        return _seed_prob(expr) or self._reads(expr, self.prob_names)

    def _seed_loss(self, expr: ast.AST) -> bool:
        """A loss or (log-)probability of the realized token: `cross_entropy(.., z)`, `logp[i, z]`,
        `probs.gather(-1, z)` where `logp`/`probs` come from a softmax or log. Count tables read at the target are
        not losses."""
        for n in walk(expr):
            if isinstance(n, ast.Call) and call_name(n) in ("cross_entropy", "nll_loss") and len(n.args) >= 2:
                if self._is_target(n.args[1]) or VAL in self.facts.flow.labels(n.args[1], self.scope):
                    return True
            if isinstance(n, ast.Call) and call_name(n) == "gather" and any(self._is_target(a) for a in n.args[1:]):
                if (isinstance(n.func, ast.Attribute) and self._prob(n.func.value)) or any(self._prob(a) for a in n.args[:1]):
                    return True
            if isinstance(n, ast.Subscript) and self._is_target(n.slice) and self._prob(n.value):
                return True
        return False

    def _grow(self, seed) -> set[str]:
        # the seed of each value is asked once (it reads flow labels), the names each value reads are shared
        seeded = [bool(targets) and seed(value) for targets, value, _stmt in self.assigns]
        if self._value_reads is None:
            self._value_reads = [_read_names(value) for _targets, value, _stmt in self.assigns]
        names: set[str] = set()
        for _ in range(6):
            grown = False
            for (targets, _value, _stmt), is_seed, reads in zip(self.assigns, seeded, self._value_reads, strict=True):
                if targets <= names:
                    continue
                if is_seed or reads & names:
                    names |= targets
                    grown = True
            if not grown:
                break
        return names

    def _reads(self, expr: ast.AST, names: set[str]) -> bool:
        return any(isinstance(n, ast.Name) and n.id in names for n in walk(expr))

    def test_reads_target(self, test: ast.AST) -> bool:
        """An `if`/`where` condition decided by the target: a table read at it or a value derived from it. A bare
        comparison of the target with a constant (`z == pad`, masking) is not a gate."""
        if self._seed_target(test):
            return True
        return self._reads(test, self.target_names)

    def _control_dependent(self) -> set[str]:
        names: set[str] = set()
        for node in self.nodes:
            if isinstance(node, ast.If) and self.test_reads_target(node.test):
                for stmt in [*node.body, *node.orelse]:
                    for n in walk(stmt):
                        if isinstance(n, ast.Assign):
                            names |= {t.id for t in n.targets if isinstance(t, ast.Name)}
        return names

    def decided_by_target(self, expr: ast.AST) -> bool:
        return self._seed_target(expr) or self._reads(expr, self.target_names | self.decided)

    # --- oracle choices ------------------------------------------------------------------------
    def _is_loss(self, expr: ast.AST) -> bool:
        """The value (not an index into it) is a loss of the target."""
        if isinstance(expr, ast.Constant):
            return False
        return self._seed_loss(expr) or bool(_value_names(expr) & self.loss_names)

    def _compares_losses(self, test: ast.AST, depth: int = 0, realized: bool = False) -> bool:
        """A comparison of two different losses of the target, here or in the value of a name it reads. With
        `realized`, any two values read at the target count (`tb > ta` with `ta = pa.gather(-1, y)` and
        `tb = counts_p.gather(-1, y)`): comparing two predictions of the realized token reads the answer."""
        if depth < 3:
            read = {n.id for n in walk(test) if isinstance(n, ast.Name)}
            for targets, value, _stmt in self.assigns:
                if targets & read and self._compares_losses(value, depth + 1, realized):
                    return True
        is_loss = self._at_target if realized else self._is_loss
        for n in walk(test):
            if isinstance(n, ast.Compare) and len(n.comparators) == 1 and isinstance(n.ops[0], ast.Lt | ast.LtE | ast.Gt | ast.GtE):
                left, right = n.left, n.comparators[0]
                if is_loss(left) and is_loss(right) and ast.unparse(left) != ast.unparse(right):
                    return True
        return False

    def _at_target(self, expr: ast.AST, depth: int = 0) -> bool:
        """A loss of the target, or a value some table or distribution holds at the target token."""
        if isinstance(expr, ast.Constant):
            return False
        if self._is_loss(expr) or self._seed_target(expr):
            return True
        for n in walk(expr):
            if isinstance(n, ast.Call) and call_name(n) in ("gather", "take_along_dim", "take_along_axis") and any(
                self._is_target(a) for a in n.args[1:]
            ):
                return True
        if depth < 3:
            names = _value_names(expr)
            return any(targets & names and self._at_target(value, depth + 1) for targets, value, _stmt in self.assigns)
        return False

    def oracle_weight(self, weight: ast.AST) -> bool:
        """A mixing weight set by comparing two predictions' probabilities of the target token, or computed
        from the model's own per-token loss on the token it scores (`w = (nll > 4).float()`)."""
        return self._compares_losses(weight, realized=True) or self._reads_own_loss(weight)

    def _reads_own_loss(self, expr: ast.AST, depth: int = 0) -> bool:
        """`expr` is computed, through names bound once, from a per-token loss of the target bound once here
        (`own = cross_entropy(logits, y, reduction="none")`), read whole: no slice, roll or running state, which
        is how a lagged (already scored) loss would be used."""
        for n in walk(expr):
            shifted = isinstance(n, ast.Call) and call_name(n) in ("roll", "cat", "pad")
            if shifted or (isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Slice)):
                return False
        for name in _value_names(expr):
            value = self.facts.flow.bound_once(name, self.scope)
            if value is None:
                continue
            if _per_token_loss(value) and self._seed_loss(value):
                return True
            if depth < 2 and self._reads_own_loss(value, depth + 1):
                return True
        return False

    def score_choices(self) -> list[tuple[ast.AST, str]]:
        """`if new_nll < old_nll: nll[t] = new_nll`, `where(la < lb, la, lb)`, `minimum(la, lb)`: the smaller of
        two losses on the target is kept, so the choice reads the answer."""
        out: list[tuple[ast.AST, str]] = []
        for node in self.nodes:
            if isinstance(node, ast.If) and self._compares_losses(node.test):
                stores = [
                    n for stmt in node.body for n in walk(stmt)
                    if isinstance(n, ast.Assign | ast.AugAssign) and self._is_loss(n.value)
                ]
                if stores and not self._only_tracks_best(node, stores):
                    out.append((node, f"`{short(node.test, 50)}`"))
            elif isinstance(node, ast.If) and node.orelse and self._compares_losses(node.test, realized=True):
                # `if tb[i] > ta[i]: out.append(mix_hi) else: out.append(mix_lo)`: both branches produce the
                # scored value at position i, and which one does is decided by comparing the target's probabilities
                body, orelse = self._choice_sinks(node.body), self._choice_sinks(node.orelse)
                if body & orelse:
                    out.append((node, f"`{short(node.test, 50)}`"))
            elif isinstance(node, ast.Call) and call_name(node) == "where" and len(node.args) == 3:
                if self._compares_losses(node.args[0]) and self._is_loss(node.args[1]) and self._is_loss(node.args[2]):
                    out.append((node, f"`{short(node.args[0], 50)}`"))
            elif isinstance(node, ast.Call) and call_name(node) in ("min", "max", "sorted") and any(
                kw.arg == "key" and isinstance(kw.value, ast.Lambda) and self._at_target(kw.value.body) for kw in node.keywords
            ):  # `min(range(n), key=lambda k: -experts[k][i, y[i]])`: the candidate that gives x_t the most
                out.append((node, "the candidate ranked by its value at the target"))
            elif isinstance(node, ast.Call) and call_name(node) in ("minimum", "fmin", "min", "amin", "nanmin"):
                operands = self._min_operands(node)
                if len(operands) >= 2 and all(self._is_loss(a) for a in operands) and len(
                    {ast.unparse(a) for a in operands}
                ) == len(operands):
                    out.append((node, "the smallest of the losses"))
        return [(n, why) for n, why in out if any(VAL in self.facts.flow.labels(a, self.scope) or self._reads(a, self.loss_names) for a in walk(n))]

    def _scored_names(self) -> set[str]:
        """Names on the way into a score: accumulated log-probabilities (`total -= log(q)`) and losses."""
        names: set[str] = set()
        for node in self.nodes:
            if (
                (isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add | ast.Sub)) or isinstance(node, ast.Return)
            ) and node.value is not None and any(
                isinstance(n, ast.Call) and call_name(n) in _SCORE_CALLS for n in walk(node.value)
            ):
                names |= _value_names(node.value)
        for _ in range(4):
            grown = False
            for targets, value, _stmt in self.assigns:
                if targets & names:
                    new = _value_names(value) - names
                    if new:
                        names |= new
                        grown = True
            if not grown:
                break
        return names

    def gated_predictions(self) -> list[tuple[ast.AST, str]]:
        """`if seen[ctx, z] > 0: q = cache_p else: q = model_p`, then `total -= log(q)`: which predictor scores
        position t is decided by a test on x_t (a backoff order or expert chosen by the target)."""
        scored = self._scored_names()
        out: list[tuple[ast.AST, str]] = []
        for node in self.nodes:
            # `p[sel] = alt[sel]` with `sel` read from a table at the target: a masked overwrite is a gate
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript):
                store = node.targets[0]
                base = dotted(store.value)
                if (
                    base in scored
                    and self.decided_by_target(store.slice)
                    and not isinstance(node.value, ast.Constant | ast.UnaryOp)
                    and bool(self.facts.flow.labels(node.value, self.scope) & {VAL, TARGET, TPROP})
                ):
                    out.append((node, base))
                    continue
            if not (isinstance(node, ast.If) and self._seed_target(node.test)):
                continue
            for stmt in [*node.body, *node.orelse]:
                for n in walk(stmt):
                    if not (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)):
                        continue
                    name = n.targets[0].id
                    if name in scored and not isinstance(n.value, ast.Constant) and (
                        VAL in self.facts.flow.labels(n.value, self.scope) or self._prob(n.value)
                    ):
                        out.append((node, name))
                        break
                else:
                    continue
                break
        return out

    def _min_operands(self, node: ast.Call) -> list[ast.AST]:
        """What a minimum is taken over: `minimum(a, b)`, `min(a, b)`, `torch.stack([a, b]).min(0)`,
        `torch.min(stacked, 0)` with `stacked = torch.stack([a, b])`."""
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        if receiver is not None and dotted(receiver) not in ("torch", "np", "numpy", "math", "builtins"):
            pool = receiver
        elif len(node.args) >= 2 and not isinstance(node.args[1], ast.Constant | ast.UnaryOp):
            return list(node.args[:2])
        elif node.args:
            pool = node.args[0]
        else:
            return []
        if isinstance(pool, ast.Name):
            values = [v for targets, v, _stmt in self.assigns if targets == {pool.id}]
            pool = values[0] if len(values) == 1 else pool
        if isinstance(pool, ast.Call) and call_name(pool) in ("stack", "cat", "vstack", "hstack", "concatenate", "array", "tensor"):
            if pool.args and isinstance(pool.args[0], ast.List | ast.Tuple):
                return list(pool.args[0].elts)
        if isinstance(pool, ast.List | ast.Tuple):
            return list(pool.elts)
        return []

    def _choice_sinks(self, stmts: list[ast.stmt]) -> set[str]:
        """Where a branch puts a value read at the target: the names it assigns, the lists it appends to."""
        sinks: set[str] = set()
        for stmt in stmts:
            for n in walk(stmt):
                if isinstance(n, ast.Assign) and self._at_target(n.value):
                    sinks |= {dotted(t) for t in n.targets if dotted(t)}
                elif isinstance(n, ast.Call) and call_name(n) in ("append", "extend") and n.args and isinstance(
                    n.func, ast.Attribute
                ) and self._at_target(n.args[0]):
                    sinks.add(dotted(n.func.value) + ".append")
        return sinks

    def _only_tracks_best(self, node: ast.If, stores: list[ast.AST]) -> bool:
        """`if loss < best: best = loss` (a running minimum kept for a report or a checkpoint): the stored name is
        only ever assigned inside this `if`, so it is not a per-token choice between two predictions."""
        assigned_here = {t.id for s in stores if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}
        if not assigned_here:
            return False
        outside = {
            name
            for targets, _value, stmt in self.assigns
            if not any(stmt is n for b in [*node.body, *node.orelse] for n in walk(b))
            for name in targets
        }
        return not (assigned_here & outside) or all(
            isinstance(n, ast.Name) and n.id in assigned_here
            for c in walk(node.test) if isinstance(c, ast.Compare) for n in c.comparators
        )


_PROB_CALLS = {"log_softmax", "softmax", "cross_entropy", "nll_loss"}
_SCORE_CALLS = {"log", "log2", "log10", "log1p", "cross_entropy", "nll_loss", "log_softmax"}


def _dependence(facts: Facts, scope: Scope) -> TargetDependence:
    """One TargetDependence per scope and program: a helper's callers are judged again at every blend."""
    cache = facts.__dict__.setdefault("_pg102_dependence", {})
    if id(scope) not in cache:
        cache[id(scope)] = TargetDependence(facts, scope)
    return cache[id(scope)]


def _sees_target(facts: Facts, scope: Scope) -> bool:
    """Some value of the scope holds the target or a property of it (a seed spelling, or a name's labels)."""
    seeds = facts.flow.targets
    if seeds.names.get(id(scope)) or seeds.spellings.get(id(scope)):
        return True
    fs = facts.flow.fs.get(id(scope))
    return fs is not None and any(
        facts.flow.labels(ast.Name(id=name, ctx=ast.Load()), scope) & {TARGET, TPROP} for name in fs.env
    )


def _per_token_loss(expr: ast.AST) -> bool:
    """`cross_entropy(..., reduction="none")`, `-log(p.gather(-1, y))`: one loss per position, not a mean."""
    for n in walk(expr):
        if isinstance(n, ast.Call) and call_name(n) in ("cross_entropy", "nll_loss"):
            return any(k.arg == "reduction" and isinstance(k.value, ast.Constant) and k.value.value == "none" for k in n.keywords)
    return any(isinstance(n, ast.Call) and call_name(n) in ("gather", "take_along_dim") for n in walk(expr))


def _seed_prob(expr: ast.AST) -> bool:
    """A model's distribution: the output of a softmax/log-softmax (a probability table, not counts)."""
    return any(isinstance(n, ast.Call) and call_name(n) in _PROB_CALLS for n in walk(expr))


def _value_names(expr: ast.AST) -> set[str]:
    """Names whose values make up `expr`, leaving out subscript indices (`counts[mask]` is made of counts)."""
    out: set[str] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Subscript):
            stack.append(node.value)
        else:
            stack.extend(child_nodes(node))
    return out


_SIZES = frozenset({"len", "numel", "nelement", "size", "dim"})
_SIZE_ATTRS = frozenset({"shape", "ndim", "dtype", "device", "nbytes"})


def _read_names(value: ast.AST) -> set[str]:
    """Names a value reads, except through a size (`len(bs)`, `x.shape`): a buffer sized by the target's bytes
    (`np.empty(len(bs))`) does not hold anything computed from the target."""
    out: set[str] = set()
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call) and call_name(node) in _SIZES:
            continue
        if isinstance(node, ast.Attribute) and node.attr in _SIZE_ATTRS:
            continue
        if isinstance(node, ast.Name):
            out.add(node.id)
        stack.extend(child_nodes(node))
    return out


def _bound_names(target: ast.AST) -> list[str]:
    """Names an assignment target binds: `x`, `a, b`; not the object of `self.x = ...` or `t[i] = ...`."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for e in target.elts for n in _bound_names(e)]
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return []


def _blend(node: ast.AST) -> tuple[ast.AST, ast.AST, ast.AST] | None:
    """(weight, a, b) for `(1 - w) * a + w * b` (either order), `lerp(a, b, w)`, `where(c, a, b)`."""
    if isinstance(node, ast.Call):
        name = call_name(node)
        if name == "lerp" and len(node.args) == 3:
            return node.args[2], node.args[0], node.args[1]
        if name == "where" and len(node.args) == 3:
            return node.args[0], node.args[1], node.args[2]
        return None
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
        return None
    for left, right in ((node.left, node.right), (node.right, node.left)):
        one_minus = _one_minus_factor(left)
        if one_minus is None:
            continue
        weight, a = one_minus
        other = _times(right, weight)
        if other is not None:
            return weight, a, other
    return None


def _one_minus_factor(node: ast.AST) -> tuple[ast.AST, ast.AST] | None:
    """`(1 - w) * a` -> (w, a)."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)):
        return None
    for factor, other in ((node.left, node.right), (node.right, node.left)):
        factor = _axes_stripped(factor)  # `(1 - w)[:, None] * p`: the weight broadcast over the vocabulary
        if (
            isinstance(factor, ast.BinOp)
            and isinstance(factor.op, ast.Sub)
            and isinstance(factor.left, ast.Constant)
            and factor.left.value in (1, 1.0)
        ):
            return factor.right, other
    return None


def _times(node: ast.AST, weight: ast.AST) -> ast.AST | None:
    """`w * b` (or `w * b * c`) -> the other factor(s), for the same weight expression."""
    factors = [_axes_stripped(f) for f in _factors(node)]
    text = ast.unparse(weight)
    rest = [f for f in factors if ast.unparse(f) != text]
    if len(factors) < 2 or len(rest) != len(factors) - 1:
        return None
    return rest[0] if len(rest) == 1 else ast.Tuple(elts=rest, ctx=ast.Load())


def _own_labels(facts: Facts, expr: ast.AST, scope: Scope) -> frozenset[str]:
    """Labels of `expr`; for a weight or gate the function is handed as a parameter, only what the function
    itself adds: such a value is judged at each call site, with that call's reachability (_judge_at_sites),
    since the union over every caller would blur a dead caller into the live one."""
    bare = _axes_stripped(expr)
    if isinstance(bare, ast.Name) and bare.id in scope.params:
        return frozenset(lab for lab in facts.flow.symbolic(bare, scope) if not lab.startswith("param:"))
    return facts.flow.labels(expr, scope)


def _axes_stripped(node: ast.AST) -> ast.AST:
    """`w[:, None]`, `w[..., None]`, `w.unsqueeze(-1)` -> `w`."""
    for _ in range(4):
        if isinstance(node, ast.Subscript) and _adds_axes(node.slice):
            node = node.value
        elif isinstance(node, ast.Call) and call_name(node) == "unsqueeze" and isinstance(node.func, ast.Attribute):
            node = node.func.value
        else:
            break
    return node


def _factors(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return [*_factors(node.left), *_factors(node.right)]
    return [node]


def _property_gate(gate: ast.AST, scope: Scope, facts: Facts) -> bool:
    """A gate that reads a table at the target (`is_bnd[tgt]`) or compares it with another token."""
    for node in walk(gate):
        if isinstance(node, ast.Subscript) and TARGET in facts.flow.labels(node.slice, scope):
            return True
        if isinstance(node, ast.Compare) and not any(isinstance(c, ast.Constant) for c in [node.left, *node.comparators]):
            return True
    return False


_SETUP = '''
import numpy as np
import torch
import torch.nn.functional as F

def load_validation_tokens(pattern):
    return torch.load(pattern).numpy()
'''

TargetDependentMixing.invalid = (
    Example(
        title="mixing weight read from a word-start table at the target",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_mix(model, val_np, p_ngram, is_word_start):
    x, tgt = val_np[:-1], val_np[1:]
    p_model = F.softmax(model(torch.from_numpy(x)), -1).numpy()[np.arange(len(tgt)), tgt]
    alpha = np.where(is_word_start[tgt], 0.6, 0.1)
    p = (1 - alpha) * p_model + alpha * p_ngram[x, tgt]  # <- expected
    return -np.log(p).sum()

if __name__ == "__main__":
    eval_val_mix(torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_0.bin"), np.ones((8, 8)) / 8, np.zeros(8, bool))
''',
        message="weight or gate computed from the target token",
    ),
    Example(
        title="expert chosen by a boundary table read at the target",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_experts(model, val_np, within_word_nll, is_boundary):
    x, y = val_np[:-1], val_np[1:]
    model_nll = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y), reduction="none").numpy()
    chosen = np.where(is_boundary[y], model_nll, within_word_nll + 0 * x)  # <- expected
    return chosen.sum()

if __name__ == "__main__":
    eval_val_experts(torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_0.bin"), np.zeros(7), np.zeros(8, bool))
''',
        message="computed from the target token",
    ),
)

TargetDependentMixing.valid = (
    Example(
        title="entropy-adaptive alpha from the model's own distribution; padding mask on the target",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_mix(model, val_tokens, p_ngram):
    x, y = val_tokens[:-1], val_tokens[1:]
    logp = F.log_softmax(model(x), -1)
    entropy = -(logp.exp() * logp).sum(-1)
    alpha = 0.05 + 0.5 / (1 + torch.exp(-2.0 * (entropy - 4.0)))
    p = (1 - alpha)[:, None] * logp.exp() + alpha[:, None] * p_ngram
    nll = -torch.log(p.gather(-1, y[:, None]).squeeze(-1))
    nll = torch.where(y == -100, 0.0, nll)
    return nll.sum()

if __name__ == "__main__":
    eval_val_mix(torch.nn.Embedding(8, 8), torch.load("fineweb_val_0.bin"), torch.ones(8) / 8)
''',
    ),
)

TargetDependentMixing.invalid += (
    Example(
        title="mixing weight set by an `if` on a table read at the target (control dependence)",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_stream(model, val_np, prior, starts):
    probs = F.softmax(model(torch.from_numpy(val_np[:-1])), -1)
    total = 0.0
    for i in range(len(val_np) - 1):
        z = int(val_np[i + 1])
        if starts[z]:
            w = 0.6
        else:
            w = 0.05
        p = (1 - w) * probs[i, z] + w * prior[z]  # <- expected
        total -= np.log(float(p))
    return total

if __name__ == "__main__":
    eval_val_stream(torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_0.bin"), np.ones(8) / 8, np.zeros(8, bool))
''',
        message="weight or gate computed from the target token",
    ),
    Example(
        title="oracle gate: the expert with the lower loss on the target is kept",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_experts(model, other, val_np):
    x, y = torch.from_numpy(val_np[:-1]), torch.from_numpy(val_np[1:])
    la = F.cross_entropy(model(x), y, reduction="none")
    lb = F.cross_entropy(other(x), y, reduction="none")
    keep_b = lb < la
    return torch.where(keep_b, lb, la).sum()  # <- expected

if __name__ == "__main__":
    eval_val_experts(torch.nn.Embedding(8, 8), torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_0.bin"))
''',
        message="comparing their losses on the target",
    ),
    Example(
        title="backoff chosen by whether the cache has seen the target",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_backoff(model, val_np, vocab=8):
    pairs = np.zeros((vocab, vocab))
    probs = F.softmax(model(torch.from_numpy(val_np[:-1])), -1)
    total = 0.0
    for i in range(len(val_np) - 1):
        a, z = int(val_np[i]), int(val_np[i + 1])
        if pairs[a, z] > 0:  # <- expected
            q = pairs[a, z] / pairs[a].sum()
        else:
            q = float(probs[i, z])
        total -= np.log(q)
        pairs[a, z] += 1
    return total

if __name__ == "__main__":
    eval_val_backoff(torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_0.bin"))
''',
        message="tests the target token",
    ),
)

TargetDependentMixing.valid += (
    Example(
        title="expert chosen by the model's own entropy; bytes counted from a table read at the target",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_experts(model, other, val_np, base_bytes, is_boundary):
    x, y = torch.from_numpy(val_np[:-1]), torch.from_numpy(val_np[1:])
    logits = model(x)
    la = F.cross_entropy(logits, y, reduction="none")
    lb = F.cross_entropy(other(x), y, reduction="none")
    logp = F.log_softmax(logits, -1)
    spread = -(logp.exp() * logp).sum(-1)
    nll = torch.where(spread > 4.0, lb, la)
    nbytes = 0
    for t in val_np[1:]:
        nbytes += base_bytes[t]
        if is_boundary[t]:
            nbytes += 1
    return nll.sum() / nbytes

if __name__ == "__main__":
    eval_val_experts(torch.nn.Embedding(8, 8), torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_0.bin"), np.ones(8), np.zeros(8, bool))
''',
    ),
    Example(
        title="backoff chosen by how much context the cache has seen (context only), best epoch kept for a report",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_backoff(model, val_np, vocab=8):
    pairs = np.zeros((vocab, vocab))
    probs = F.softmax(model(torch.from_numpy(val_np[:-1])), -1)
    total = 0.0
    for i in range(len(val_np) - 1):
        a, z = int(val_np[i]), int(val_np[i + 1])
        if pairs[a].sum() > 8:
            q = 0.5 * pairs[a, z] / pairs[a].sum() + 0.5 * float(probs[i, z])
        else:
            q = float(probs[i, z])
        total -= np.log(q)
        pairs[a, z] += 1
    return total

def report(model, val_np):
    best = None
    for _ in range(2):
        loss = eval_val_backoff(model, val_np)
        if best is None or loss < best:
            best = loss
    print("diagnostic best", best)

if __name__ == "__main__":
    report(torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_0.bin"))
''',
    ),
)

# How the examples below run their scoring function `a1(model, validation tokens, other prediction)`.
_RUN_A1 = '''
if __name__ == "__main__":
    a1(torch.nn.Embedding(8, 8), torch.load("fineweb_val_0.bin"), torch.ones(7, 8) / 8)
'''

# Oracle weights: the weight comes from the target's own probabilities or loss (compared, or thresholded),
# whatever the values are called. Each has a legal twin below.
TargetDependentMixing.invalid += (
    Example(
        title="weight from comparing the two predictions' probabilities of the target",
        code=_SETUP
        + '''
@torch.no_grad()
def a1(m, s, q):
    u, v = s[:-1], s[1:]
    pa = F.softmax(m(u), -1)
    ta = pa.gather(-1, v[:, None]).squeeze(-1)
    tb = q.gather(-1, v[:, None]).squeeze(-1)
    w = torch.where(tb > ta, 0.6, 0.05)
    e = -torch.log((1.0 - w) * ta + w * tb)  # <- expected
    return e.sum()

''' + _RUN_A1,
        message="weight or gate computed from the target token",
    ),
    Example(
        title="weight from the model's own per-token loss on the token it scores",
        code=_SETUP
        + '''
@torch.no_grad()
def a1(m, s, q):
    u, v = s[:-1], s[1:]
    lg = m(u)
    own = F.cross_entropy(lg, v, reduction="none")
    w = (own > 4.0).float() * 0.6
    r = (1.0 - w)[:, None] * F.softmax(lg, -1) + w[:, None] * q  # <- expected
    return -torch.log(r.gather(-1, v[:, None])).sum()

''' + _RUN_A1,
        message="weight or gate computed from the target token",
    ),
    Example(
        title="per-position branch on which prediction gave the target more probability",
        code=_SETUP
        + '''
@torch.no_grad()
def a1(m, s, q):
    u, v = s[:-1], s[1:]
    ta = F.softmax(m(u), -1).gather(-1, v[:, None]).squeeze(-1)
    tb = q.gather(-1, v[:, None]).squeeze(-1)
    out = []
    for i in range(ta.numel()):
        if tb[i] > ta[i]:  # <- expected
            out.append(0.4 * ta[i] + 0.6 * tb[i])
        else:
            out.append(0.95 * ta[i] + 0.05 * tb[i])
    return -torch.log(torch.stack(out)).sum()

''' + _RUN_A1,
        message="comparing their losses on the target",
    ),
)

TargetDependentMixing.valid += (
    Example(
        title="weight from the loss of tokens already scored (the previous window's mean loss)",
        code=_SETUP
        + '''
@torch.no_grad()
def a1(m, s, q):
    total, prev = 0.0, 3.0
    for j in range(0, s.numel() - 9, 8):
        u, v = s[j : j + 8], s[j + 1 : j + 9]
        lg = m(u)
        w = 0.6 if prev > 4.0 else 0.05
        r = (1.0 - w) * F.softmax(lg, -1) + w * q
        e = -torch.log(r.gather(-1, v[:, None]))
        total += e.sum().item()
        prev = e.mean().item()
    return total

if __name__ == "__main__":
    a1(torch.nn.Embedding(8, 8), torch.load("fineweb_val_0.bin"), torch.ones(8, 8) / 8)
''',
    ),
    Example(
        title="per-position branch on the model's confidence (its top probability), not on the target",
        code=_SETUP
        + '''
@torch.no_grad()
def a1(m, s, q):
    u, v = s[:-1], s[1:]
    pa = F.softmax(m(u), -1)
    top = pa.max(-1).values
    out = []
    for i in range(top.numel()):
        if top[i] > 0.5:
            out.append(pa[i, v[i]])
        else:
            out.append(0.5 * pa[i, v[i]] + 0.5 * q[i, v[i]])
    return -torch.log(torch.stack(out)).sum()

''' + _RUN_A1,
    ),
)

# A mixing helper given its weight by the caller: judged at each call that runs, with the weight it passes.
_HELPER_GATE = _SETUP + '''
import os

def a3(pa, pb, v, w):
    r = (1.0 - w)[:, None] * pa + w[:, None] * pb
    return -torch.log(r.gather(-1, v[:, None])).sum()

@torch.no_grad()
def a1(m, s, q):
    u, v = s[:-1], s[1:]
    pa = F.softmax(m(u), -1)
    k1 = torch.where(q.gather(-1, v[:, None]).squeeze(-1) > pa.gather(-1, v[:, None]).squeeze(-1), 0.6, 0.05)
    k2 = torch.where(-(pa * pa.clamp_min(1e-9).log()).sum(-1) > 3.0, 0.6, 0.05)
    if bool(int(os.environ.get("OLD_MIX", "0"))):
        return a3(pa, q, v, DEAD)
    return a3(pa, q, v, LIVE)  # <- expected

if __name__ == "__main__":
    a1(torch.nn.Embedding(8, 8), torch.load("fineweb_val_0.bin"), torch.ones(7, 8) / 8)
'''

TargetDependentMixing.invalid += (
    Example(
        title="a mixing helper handed an oracle weight by the call that runs (the other call is off)",
        code=_HELPER_GATE.replace("LIVE", "k1").replace("DEAD", "k2"),
        message="decided by the target token",
    ),
)

TargetDependentMixing.valid += (
    Example(
        title="the same helper handed the oracle weight only by a call the default environment skips",
        code=_HELPER_GATE.replace("LIVE", "k2").replace("DEAD", "k1").replace("  # <- expected", ""),
    ),
)

# An expert ranked by what it gives the target, whatever the ranking is spelled with.
_RANKED = _SETUP + '''
@torch.no_grad()
def a1(m, s, q):
    u, v = s[:-1], s[1:]
    pa = F.softmax(m(u), -1)
    experts = [pa, q]
    out = []
    for i in range(v.numel()):
        k = max(range(2), key=lambda j: KEY)  # EXPECT
        out.append(experts[k][i, v[i]])
    return -torch.log(torch.stack(out)).sum()

''' + _RUN_A1

TargetDependentMixing.invalid += (
    Example(
        title="per position, the expert that gives the target the most probability (`max(..., key=...)`)",
        code=_RANKED.replace("KEY", "float(experts[j][i, v[i]])").replace("  # EXPECT", "  # <- expected"),
        message="comparing their losses on the target",
    ),
)

TargetDependentMixing.valid += (
    Example(
        title="per position, the expert with the lower entropy (`max(..., key=...)` over its whole distribution)",
        code=_RANKED.replace("KEY", "-float((experts[j][i] * experts[j][i].clamp_min(1e-9).log()).sum())").replace(
            "  # EXPECT", ""
        ),
    ),
)

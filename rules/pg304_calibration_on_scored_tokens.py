"""PG304 calibration-on-scored-tokens."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from pgaudit.analysis.dataflow import TRAIN, VAL
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import Scope, call_name
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import walk

from .base import Example, Rule, short

_RULINGS = ("https://github.com/openai/parameter-golf/pull/1004", "https://github.com/openai/parameter-golf/issues/677")
# Routines that fit a calibration (`find_temp`, `calibrate_temperature`), not evals named "calibrated".
_CALIBRATOR = re.compile(r"(?i)^_*((find|fit|tune|search|optimi[sz]e)_?(best_)?(temp|temperature|tau|calib\w*|logit_bias|scale)|calibrate\w*)$")
_LOSSES = {"cross_entropy", "nll_loss", "log_softmax", "softmax", "kl_div"}


class CalibrationOnScoredTokens(Rule):
    """Temperature or other calibration fitted on validation tokens and applied to their scores.

    What it does:
        Finds (1) a grid search over candidate values (`for T in [0.9, 0.95, 1.0]:`, `np.linspace(...)`, or a
        comprehension over such a grid) whose body computes a loss on validation tokens with the logits scaled
        by the candidate, whatever the names, and (2) calls to calibration routines (`find_temp`,
        `calibrate_temperature`, `fit_logit_bias`...) given validation tokens, when the routine searches
        candidates or optimizes; a library routine known only by its name is a warning, and the program's own
        routine that tunes nothing is not reported.

    Why is this bad:
        The calibration parameter is chosen to minimize the loss of the very tokens that are then scored,
        which uses x_t for the score at t (C1/C3). PR #991's post-TTT temperature fitted on rescored val
        tokens was part of its closure; PR #1004: "temperature calibration on re-scored tokens was illegal".

    Example:
        best_t = min((eval_nll(logits / t, val_y), t) for t in (0.9, 0.95, 1.0, 1.05))[1]

    Legal look-alikes:
        The same grid on *training* tokens (the Ternary record's 5-point grid, merged); a fixed temperature
        from the hyperparameters; logit softcap.

    References:
        R20 of the catalogue; PR #991 / PR #1004.
    """

    code = "PG304"
    name = "calibration-on-scored-tokens"
    severity = Severity.ERROR
    confidence = Confidence.MEDIUM
    catalogue_ids = ("R20",)
    ruling_urls = _RULINGS
    condition = "C3"
    fix = "Fit temperature or calibration on training tokens during training, then keep it fixed for the eval."

    def check(self, facts: Facts) -> Iterable[Finding]:
        for scope in facts.flow.scopes:
            for node in facts.index.nodes_in(scope, _SEARCH_NODES):
                if _grid_loop(node):
                    finding = self._grid(facts, scope, node)  # type: ignore[arg-type]
                elif isinstance(node, ast.Call) and _CALIBRATOR.search(call_name(node) or ""):
                    finding = self._call(facts, scope, node)
                else:
                    continue
                if finding is not None:
                    yield finding

    def _grid(self, facts: Facts, scope: Scope, loop: ast.For | ast.GeneratorExp | ast.ListComp) -> Finding | None:
        """A loop (or comprehension, `min((loss(logits / t), t) for t in (0.9, 1.0))`) over candidate values
        whose body scales the logits by the candidate inside a loss on validation tokens."""
        if isinstance(loop, ast.For):
            names = {n.id for n in walk(loop.target) if isinstance(n, ast.Name)}
            body: list[ast.AST] = list(loop.body)
            head = f"for {ast.unparse(loop.target)} in {short(loop.iter, 40)}"
        else:
            grid = next(g for g in loop.generators if _is_grid(g.iter))
            names = {n.id for n in walk(grid.target) if isinstance(n, ast.Name)}
            body = [loop.elt]
            head = f"for {ast.unparse(grid.target)} in {short(grid.iter, 40)}"
        for node in (n for stmt in body for n in walk(stmt)):
            if not (isinstance(node, ast.Call) and call_name(node) in _LOSSES and node.args):
                continue
            scaled = any(
                isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div | ast.Mult)
                and any(isinstance(x, ast.Name) and x.id in names for x in (n.left, n.right))
                for n in walk(node.args[0])
            )
            labels = facts.flow.labels(node, scope)
            if scaled and VAL in labels and TRAIN not in labels:
                message = (
                    f"The loop `{head}` (line {loop.lineno}) picks a "
                    f"calibration value by the loss on validation tokens (`{short(node, 60)}`, line {node.lineno}): "
                    "the value is tuned on the tokens it is then used to score."
                )
                return self.finding(facts, scope.unit, loop, message, related=[(scope.unit, node)])
        return None

    def _call(self, facts: Facts, scope: Scope, call: ast.Call) -> Finding | None:
        args = [*call.args, *(kw.value for kw in call.keywords)]
        labels = frozenset().union(*(facts.flow.labels(a, scope) for a in args)) if args else frozenset()
        if VAL not in labels or TRAIN in labels:
            return None
        callees = facts.flow.resolve(call, scope)
        if callees and not any(_searches(facts, c) for c in callees):
            return None  # the program's own function, and it tunes nothing: the name was wrong
        message = (
            f"`{short(call)}` (line {call.lineno}) fits a calibration on validation tokens: the calibrated "
            "value is tuned on the tokens it is then used to score."
        )
        if not callees:  # a library routine known only by its name: the name raises a suspicion, no more
            return self.finding(facts, scope.unit, call, message, severity=Severity.WARNING, confidence=Confidence.LOW)
        return self.finding(facts, scope.unit, call, message, confidence=Confidence.LOW)


def _searches(facts: Facts, scope: Scope) -> bool:
    """The function tries candidate values (a grid loop or comprehension) or optimizes (an optimizer step,
    a backward pass)."""
    for node in facts.index.nodes_in(scope, _SEARCH_NODES):
        if _grid_loop(node):
            return True
        if isinstance(node, ast.Call) and call_name(node) in ("backward", "step", "minimize", "minimize_scalar"):
            return True
    return False


_SEARCH_NODES = (ast.For, ast.GeneratorExp, ast.ListComp, ast.Call)  # grid loops and optimizer calls


def _grid_loop(node: ast.AST) -> bool:
    """`for t in (0.9, 1.0):` or a comprehension over such a grid."""
    if isinstance(node, ast.For):
        return _is_grid(node.iter)
    return isinstance(node, ast.GeneratorExp | ast.ListComp) and any(_is_grid(g.iter) for g in node.generators)


def _is_grid(node: ast.AST) -> bool:
    if isinstance(node, ast.List | ast.Tuple):
        return len(node.elts) >= 2 and all(
            isinstance(e, ast.Constant) and isinstance(e.value, float) for e in node.elts
        )
    return isinstance(node, ast.Call) and call_name(node) in ("linspace", "logspace")


_SETUP = '''
import torch
import torch.nn.functional as F

def load_validation_tokens(pattern):
    return torch.load(pattern)
'''

CalibrationOnScoredTokens.invalid = (
    Example(
        title="temperature grid searched on the validation tokens, then used for the final score",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_calibrated(model, val_tokens):
    logits = model(val_tokens[:-1])
    best = (float("inf"), 1.0)
    for temp in [0.9, 0.95, 1.0, 1.05]:  # <- expected
        loss = F.cross_entropy(logits / temp, val_tokens[1:]).item()
        best = min(best, (loss, temp))
    return F.cross_entropy(logits / best[1], val_tokens[1:]).item()

if __name__ == "__main__":
    eval_val_calibrated(torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_0.bin"))
''',
        message="picks a calibration value by the loss on validation tokens",
    ),
    Example(
        title="neutral names: a comprehension over candidate scales picks the one that minimises the validation loss",
        code=_SETUP
        + '''
@torch.no_grad()
def settle(net, stream):
    out = net(stream[:-1])
    k = min((F.cross_entropy(out / c, stream[1:]).item(), c) for c in (0.85, 0.9, 1.0, 1.1))[1]  # <- expected
    return F.cross_entropy(out / k, stream[1:]).item()

if __name__ == "__main__":
    print(settle(torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_0.bin")))
''',
        message="picks a calibration value by the loss on validation tokens",
    ),
)

CalibrationOnScoredTokens.valid = (
    Example(
        title="the same grid on training tokens, the chosen temperature then fixed for the eval",
        code=_SETUP
        + '''
@torch.no_grad()
def pick_temperature(model, train_tokens):
    logits = model(train_tokens[:-1])
    return min((F.cross_entropy(logits / t, train_tokens[1:]).item(), t) for t in (0.85, 0.9, 1.0))[1]

@torch.no_grad()
def calibrate_on_train(model, train_tokens):
    logits = model(train_tokens[:-1])
    best = (float("inf"), 1.0)
    for temp in [0.9, 0.95, 1.0]:
        best = min(best, (F.cross_entropy(logits / temp, train_tokens[1:]).item(), temp))
    return best[1]

@torch.no_grad()
def eval_val(model, val_tokens, temperature):
    return F.cross_entropy(model(val_tokens[:-1]) / temperature, val_tokens[1:]).item()

def main():
    model = torch.nn.Embedding(8, 8)
    train_tokens = torch.load("fineweb_train_000000.bin")
    t = calibrate_on_train(model, train_tokens)
    print(eval_val(model, load_validation_tokens("fineweb_val_0.bin"), t))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="a routine named like a calibrator that only applies a fixed temperature to the validation logits",
        code=_SETUP
        + '''
@torch.no_grad()
def calibrate_temperature(model, val_tokens, temperature=0.95):
    return F.cross_entropy(model(val_tokens[:-1]) / temperature, val_tokens[1:]).item()

if __name__ == "__main__":
    print(calibrate_temperature(torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_0.bin")))
''',
    ),
)

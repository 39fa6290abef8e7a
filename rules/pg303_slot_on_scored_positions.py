"""PG303 slot-on-scored-positions."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from pgaudit.analysis.events import Event, can_follow, val_only
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import Scope
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import walk

from .base import Example, Rule, short

_RULINGS = (
    "https://github.com/openai/parameter-golf/issues/1336",
    "https://github.com/openai/parameter-golf/pull/1240",
    "https://github.com/openai/parameter-golf/issues/677",
)


class SlotOnScoredPositions(Rule):
    """Per-window optimization of a delta or logit bias against the targets that are then scored (SLOT).

    What it does:
        Finds tensors created during evaluation (`delta = torch.zeros(..., requires_grad=True)`, a logit bias)
        that an optimizer fits with a loss on validation targets, followed by a score of validation tokens in
        the same function. When the fitting loss only covers positions before the scored slice (a
        context-only, "causal" SLOT: `mask[:, :s]` against a score of `nll[:, s:]`) it is a warning.

    Why is this bad:
        The delta is fitted to x_t for the very positions it then scores, so the score at t depends on the
        target (C1) and comes after an update that used it (C3). PR #1240's flip test showed a 100% violation
        rate; no SLOT submission reached the leaderboard, and SLOT PRs were closed (#1229, #1329, #1350, ...).
        Context-only SLOT is undecided (Issue #1336) and high-risk.

    Example:
        delta = torch.zeros(1, 1, d, requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=args.slot_lr)
        for _ in range(args.slot_steps):
            F.cross_entropy(head(h + delta), y).backward(); opt.step()
        nll = F.cross_entropy(head(h + delta), y, reduction="none")   # scored

    Legal look-alikes:
        Score-first TTT that adapts model weights only on already-scored chunks (PG301 orders those); a
        delta fitted on training tokens; SLOT code switched off (`SLOT_ENABLED=0`) in the run (info).

    References:
        R21 of the catalogue; Issue #1336 (open question on causal SLOT); PR #1240 flip test; Issue #677.
    """

    code = "PG303"
    name = "slot-on-scored-positions"
    severity = Severity.ERROR
    confidence = Confidence.HIGH
    catalogue_ids = ("R21",)
    ruling_urls = _RULINGS
    condition = "C3"
    fix = (
        "Remove the per-window delta/logit-bias optimization, or fit it only on tokens that were already scored "
        "in earlier windows and never on the positions being scored."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        events = facts.events
        for scope in facts.flow.scopes:
            timeline = events.of(scope).all
            scores = [e for e in timeline if e.kind == "score" and val_only(e.labels)]
            for update in timeline:
                if update.kind != "update" or not update.free_tensors or not val_only(update.labels):
                    continue
                later = [
                    s
                    for s in scores
                    if s.order > update.order and s.node is not update.node and can_follow(update.node, s.node, scope)
                ]
                if later:
                    yield self._report(facts, scope, update, later[0])

    def _report(self, facts: Facts, scope: Scope, update: Event, score: Event) -> Finding:
        tensors = ", ".join(f"`{t}`" for t in update.updated)
        context_only = _context_only(facts, scope, update)
        message = (
            f"In `{scope.qualname}`, {tensors} (created here) is optimized against validation targets "
            f"(backward at line {update.line}), then `{short(score.node)}` at line {score.line} scores the "
            "validation tokens with it: "
        )
        if context_only:
            message += (
                "the fitting loss only covers positions before the scored slice (context-only SLOT), which is "
                "undecided (Issue #1336) and high-risk."
            )
            return self.finding(
                facts, scope.unit, update.node, message, severity=Severity.WARNING, confidence=Confidence.MEDIUM,
                related=[(scope.unit, score.node)],
            )
        message += "the score at each position depends on the target it was fitted to (SLOT; C1, C3)."
        return self.finding(facts, scope.unit, update.node, message, related=[(scope.unit, score.node)])


def _context_only(facts: Facts, scope: Scope, update: Event) -> bool:
    """The fitting loss slices positions `[:s]` while the scoring reads `[s:]` with the same bound `s`."""
    upper: set[str] = set()
    lower: set[str] = set()
    for node in facts.index.nodes_in(scope, (ast.Slice,)):
        if not isinstance(node, ast.Slice):
            continue
        if node.lower is None and isinstance(node.upper, ast.Name):
            upper.add(node.upper.id)
        if isinstance(node.lower, ast.Name) and node.lower.id not in ("None",):
            lower.add(node.lower.id)
    fitted = {n.id for n in walk(update.node) if isinstance(n, ast.Name)}
    receiver_slices = [
        n.upper.id
        for n in walk(update.node)
        if isinstance(n, ast.Slice) and n.lower is None and isinstance(n.upper, ast.Name)
    ]
    return bool(set(receiver_slices) & lower) or bool(fitted & upper & lower)



_SETUP = '''
import os
import torch
import torch.nn.functional as F

class Hyperparameters:
    slot_enabled = bool(int(os.environ.get("SLOT_ENABLED", "1")))
    slot_steps = int(os.environ.get("SLOT_STEPS", "8"))
    slot_lr = float(os.environ.get("SLOT_LR", "0.003"))

def load_validation_tokens(pattern):
    return torch.load(pattern)
'''

SlotOnScoredPositions.invalid = (
    Example(
        title="a fresh delta fitted on each window's targets, then the same window scored",
        code=_SETUP
        + '''
def eval_val_slot(args, model, head, val_tokens, window=1024):
    loss_sum = 0.0
    for start in range(0, len(val_tokens) - 1, window):
        piece = val_tokens[start : start + window + 1]
        x, y = piece[:-1], piece[1:]
        with torch.no_grad():
            hidden = model(x)
        delta = torch.zeros(1, hidden.size(-1), requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=args.slot_lr)
        for _ in range(args.slot_steps):
            opt.zero_grad()
            F.cross_entropy(head(hidden + delta), y).backward()  # <- expected
            opt.step()
        with torch.no_grad():
            loss_sum += F.cross_entropy(head(hidden + delta), y, reduction="sum").item()
    return loss_sum

if __name__ == "__main__":
    eval_val_slot(Hyperparameters(), torch.nn.Embedding(8, 8), torch.nn.Linear(8, 8), load_validation_tokens("fineweb_val_0.bin"))
''',
        message="the score at each position depends on the target it was fitted to",
    ),
    Example(
        title="context-only SLOT: the delta is fitted on positions before the scored slice (warning)",
        code=_SETUP
        + '''
def eval_val_slot(args, model, head, val_tokens, window=1024, stride=64):
    loss_sum = 0.0
    for start in range(0, len(val_tokens) - 1, stride):
        piece = val_tokens[start : start + window + 1]
        x, y = piece[:-1], piece[1:]
        s = max(len(y) - stride, 0)
        with torch.no_grad():
            hidden = model(x)
        bias = torch.zeros(hidden.size(-1), requires_grad=True)
        opt = torch.optim.AdamW([bias], lr=args.slot_lr)
        for _ in range(args.slot_steps):
            opt.zero_grad()
            F.cross_entropy(head(hidden + bias)[:s], y[:s]).backward()  # <- expected
            opt.step()
        with torch.no_grad():
            nll = F.cross_entropy(head(hidden + bias), y, reduction="none")
            loss_sum += nll[s:].sum().item()
    return loss_sum

if __name__ == "__main__":
    eval_val_slot(Hyperparameters(), torch.nn.Embedding(8, 8), torch.nn.Linear(8, 8), load_validation_tokens("fineweb_val_0.bin"))
''',
        message="context-only SLOT",
        severity=Severity.WARNING,
    ),
    Example(
        title="neutral names, no no_grad around the scoring loss: the result it returns makes it the score",
        code=_SETUP
        + '''
def f1(a1, m1, m2, t1, w1=1024):
    a2 = 0.0
    for a3 in range(0, len(t1) - 1, w1):
        a4 = t1[a3 : a3 + w1 + 1]
        a5, a6 = a4[:-1], a4[1:]
        with torch.no_grad():
            a7 = m1(a5)
        a8 = torch.zeros(1, a7.size(-1), requires_grad=True)
        a9 = torch.optim.AdamW([a8], lr=a1.slot_lr)
        for _ in range(a1.slot_steps):
            a9.zero_grad()
            a10 = F.cross_entropy(m2(a7 + a8), a6)
            a10.backward()  # <- expected
            a9.step()
        a11 = F.cross_entropy(m2(a7 + a8.detach()), a6, reduction="none")
        a12 = a11[1:]
        a2 += a12.sum().item()
    a13 = a2 / len(t1)
    return a13

if __name__ == "__main__":
    print(f1(Hyperparameters(), torch.nn.Embedding(8, 8), torch.nn.Linear(8, 8), load_validation_tokens("fineweb_val_0.bin")))
''',
        message="the score at each position depends on the target it was fitted to",
    ),
)

SlotOnScoredPositions.valid = (
    Example(
        title="plain sliding-window eval; a delta fitted on training tokens during training",
        code=_SETUP
        + '''
def fit_train_bias(head, hidden_train, y_train, steps=4):
    bias = torch.zeros(hidden_train.size(-1), requires_grad=True)
    opt = torch.optim.SGD([bias], lr=0.1)
    for _ in range(steps):
        F.cross_entropy(head(hidden_train + bias), y_train).backward()
        opt.step()
    return bias.detach()

@torch.inference_mode()
def eval_val(model, head, val_tokens, bias):
    return F.cross_entropy(head(model(val_tokens[:-1]) + bias), val_tokens[1:]).item()

def main():
    model, head = torch.nn.Embedding(8, 8), torch.nn.Linear(8, 8)
    train_tokens = torch.load("fineweb_train_000000.bin")
    with torch.no_grad():
        hidden_train = model(train_tokens[:-1])
    bias = fit_train_bias(head, hidden_train, train_tokens[1:])
    print(eval_val(model, head, load_validation_tokens("fineweb_val_0.bin"), bias))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="SLOT present but disabled by default and in the logged run",
        code=_SETUP.replace('"SLOT_ENABLED", "1"', '"SLOT_ENABLED", "0"')
        + '''
def eval_val(args, model, head, val_tokens):
    x, y = val_tokens[:-1], val_tokens[1:]
    with torch.no_grad():
        hidden = model(x)
    if args.slot_enabled:
        delta = torch.zeros(hidden.size(-1), requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=args.slot_lr)
        F.cross_entropy(head(hidden + delta), y).backward()
        opt.step()
        hidden = hidden + delta.detach()
    with torch.no_grad():
        return F.cross_entropy(head(hidden), y).item()

if __name__ == "__main__":
    eval_val(Hyperparameters(), torch.nn.Embedding(8, 8), torch.nn.Linear(8, 8), load_validation_tokens("fineweb_val_0.bin"))
''',
        logged={"slot_enabled": "False"},
    ),
    Example(
        title="neutral names: a delta fitted on training tokens, then a plain validation score it returns",
        code=_SETUP
        + '''
def f1(a1, m1, m2, t1, t2):
    a5, a6 = t2[:-1], t2[1:]
    with torch.no_grad():
        a7 = m1(a5)
    a8 = torch.zeros(a7.size(-1), requires_grad=True)
    a9 = torch.optim.AdamW([a8], lr=a1.slot_lr)
    for _ in range(a1.slot_steps):
        a9.zero_grad()
        a10 = F.cross_entropy(m2(a7 + a8), a6)
        a10.backward()
        a9.step()
    b1, b2 = t1[:-1], t1[1:]
    a11 = F.cross_entropy(m2(m1(b1) + a8.detach()), b2, reduction="none")
    a12 = a11.mean().item()
    return a12

if __name__ == "__main__":
    print(f1(Hyperparameters(), torch.nn.Embedding(8, 8), torch.nn.Linear(8, 8),
             load_validation_tokens("fineweb_val_0.bin"), torch.load("fineweb_train_000000.bin")))
''',
    ),
)

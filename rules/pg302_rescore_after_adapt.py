"""PG302 rescore-after-adapt."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from pgaudit.analysis.events import Event, can_follow, is_multi_pass_loop, val_only, while_counters
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import ancestors, call_name
from pgaudit.analysis.reported import printed_last, result_reported
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import walk

from .base import Example, Rule, short

_RULINGS = (
    "https://github.com/openai/parameter-golf/pull/568#issuecomment-4119903415",
    "https://github.com/openai/parameter-golf/issues/677",
    "https://github.com/openai/parameter-golf/issues/402",
)


class RescoreAfterAdapt(Rule):
    """Validation tokens scored again after the model adapted on them, and that later score reported.

    What it does:
        Finds two shapes. (1) A score and an update on validation tokens inside the same multi-pass loop
        (`for epoch in range(ttt_epochs)` whose variable does not select the data): from the second pass on,
        every score comes after training on those very tokens -- "scoring inside each TTT epoch with the
        last epoch reported", best-of-epochs or min-NLL trajectories. (2) A routine that scores and adapts
        (a TTT pass), followed in the same function by another score of the validation tokens with the
        adapted model: score, train, rescore. A score kept only on the last pass (`if epoch == epochs - 1:`)
        runs whenever that loop runs, so its reachability is the guard's, never "cannot evaluate the guard".
        A pass counter may be a `for` over `range` or a `while` loop that steps its counter. When the first
        pass's own score is printed as a metric too, the code does not say which number is submitted: shape
        (2) is then a warning, unless the logs end on the re-evaluation's line (printed after the first pass's).

    Why is this bad:
        C3/C4: each token is scored once, left to right, from the state before any update that used it.
        Valerio-oai closed PR #991 for "double-pass TTT (score, train, rescore same tokens)"; PR #568 was
        ruled "training on eval data" for scoring in every epoch and reporting the last; the 2026-03-27 wave
        named two-pass rescoring explicitly.

    Example:
        for epoch in range(args.ttt_epochs):
            for ci in range(num_chunks):
                ...
                if epoch == args.ttt_epochs - 1:
                    loss_sum += nll.sum()      # scored after earlier epochs trained on this chunk
                loss.backward(); opt.step()

    Legal look-alikes:
        Score-first TTT with several epochs on the already-scored chunk (the epoch loop inside the chunk loop,
        after the score); a score-first TTT whose printed score is its own, followed by a diagnostic
        re-evaluation (a warning without logs that show the re-evaluation is the final number);
        sliding-window eval whose windows overlap in context but score each token once;
        phased/per-document TTT whose adapter is discarded before any further eval; diagnostics before TTT.

    References:
        R19 of the catalogue; PR #568 ruling; PR #991 closure (via #140); Issue #677 (2026-03-27 wave).
    """

    code = "PG302"
    name = "rescore-after-adapt"
    severity = Severity.ERROR
    confidence = Confidence.HIGH
    catalogue_ids = ("R19",)
    ruling_urls = _RULINGS
    condition = "C4"
    fix = (
        "Report the score of the first, score-first pass only: score each chunk once before any update that "
        "uses it, keep extra epochs inside the chunk loop after the score, and do not re-evaluate the tokens "
        "with the adapted model."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        events = facts.events
        for scope in facts.flow.scopes:
            timeline = events.of(scope).all
            scores = [e for e in timeline if e.kind == "score" and val_only(e.labels)]
            updates = [e for e in timeline if e.kind == "update" and val_only(e.labels)]
            if not scores or not updates:
                continue
            reported: set[int] = set()
            for score in scores:
                finding = self._multi_pass(facts, score, updates) or self._second_pass(facts, score, timeline)
                if finding is not None and id(score.node) not in reported:
                    reported.add(id(score.node))
                    yield finding

    def _multi_pass(self, facts: Facts, score: Event, updates: list[Event]) -> Finding | None:
        score_loops = score.loops()
        for update in updates:
            for loop in update.loops():
                if loop in score_loops and is_multi_pass_loop(loop) and not _first_pass_only(score, loop):
                    guard = _last_pass_guard(score, loop)
                    last = " only in the last pass" if guard is not None else " in every pass"
                    message = (
                        f"`{short(score.node)}` (line {score.line}) scores validation tokens{last} of "
                        f"`{_loop_header(loop)}` (line {loop.lineno}), and the "
                        f"same loop trains on them (line {update.line}): from the second pass on, each score comes "
                        "after the model adapted on those tokens, so the reported score is not the single "
                        "score-first pass (C3, C4)."
                    )
                    # `if epoch == epochs - 1:` holds on the last pass of any loop that runs: the score runs when
                    # the guard is reached, so reachability is the guard's, not "cannot evaluate the guard".
                    return self.finding(
                        facts,
                        score.scope.unit,
                        score.node,
                        message,
                        related=[(update.scope.unit, update.node)],
                        reach_node=guard,
                    )
        return None

    def _second_pass(self, facts: Facts, score: Event, timeline: list[Event]) -> Finding | None:
        """A TTT routine (scores and adapts) earlier in the function, then this score of the same tokens."""
        if score.via is not None and "update" in facts.events.of(score.via).kinds:
            return None  # this score is itself a TTT pass; its own order is checked inside it
        for first in timeline:
            if first.order >= score.order or first.via is None or first.kind != "update":
                continue
            if not can_follow(first.node, score.node, score.scope) or _exclusive(first.node, score.node):
                continue
            kinds = facts.events.of(first.via).kinds
            if "score" not in kinds or first.self_contained:
                continue
            if _restored_between(facts, first, score):
                continue  # the weights saved before the adapting pass are loaded back: the rescore is not adapted
            message = (
                f"`{short(first.node)}` (line {first.line}) scores the validation tokens while adapting on them, "
                f"and `{short(score.node)}` at line {score.line} scores them again with the adapted model: "
                "score, train, rescore (C4 single pass). Only the first pass may be reported."
            )
            severity = None
            if (
                isinstance(first.node, ast.Call)
                and result_reported(facts.index, first.scope, first.node)
                and not printed_last(facts, score, first)
            ):
                # The first pass's own score is printed as a metric too (`Post-TTT bpb=...`, then a `FINAL`
                # re-evaluation): the code does not say which of the two numbers is the submission's score, so
                # this is a question for the reviewer, not an accusation.
                severity = Severity.WARNING
                message += (
                    f" The first pass's own score is printed as well (line {first.line}); report that one, and "
                    "make sure the re-evaluation is not the submitted number."
                )
            return self.finding(
                facts,
                score.scope.unit,
                score.node,
                message,
                severity=severity,
                confidence=Confidence.MEDIUM,
                related=[(first.scope.unit, first.node)],
            )
        return None


def _restored_between(facts: Facts, first: Event, score: Event) -> bool:
    """`saved = copy.deepcopy(model.state_dict())` before the adapting pass, `model.load_state_dict(saved)`
    after it and before the second score, in the same function: the second pass scores the weights as they
    were before adaptation."""
    if first.scope is not score.scope:
        return False
    before = [n for n in facts.index.walk_scope(score.scope) if isinstance(n, ast.Assign) and n.lineno < first.line]
    saved_before: set[str] = set()
    for _ in range(3):  # `sd = m.state_dict()` then `keep = copy.deepcopy(sd)`
        for n in before:
            if any(
                (isinstance(c, ast.Call) and call_name(c) == "state_dict") or (isinstance(c, ast.Name) and c.id in saved_before)
                for c in walk(n.value)
            ):
                saved_before |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    rebound_after = {
        t.id
        for n in facts.index.walk_scope(score.scope)
        if isinstance(n, ast.Assign) and n.lineno >= first.line
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    for n in facts.index.walk_scope(score.scope):
        if (
            isinstance(n, ast.Call) and call_name(n) == "load_state_dict" and n.args
            and first.line < n.lineno < score.line
            and isinstance(n.args[0], ast.Name) and n.args[0].id in saved_before - rebound_after
            and can_follow(first.node, n, score.scope) and can_follow(n, score.node, score.scope)
            and not _exclusive(n, score.node)
        ):
            return True
    return False


def _loop_header(loop: ast.AST) -> str:
    if isinstance(loop, ast.While):
        return f"while {short(loop.test, 40)}"
    return f"for {ast.unparse(loop.target)} in {short(loop.iter, 40)}"  # type: ignore[attr-defined]


def _exclusive(first: ast.AST, later: ast.AST) -> bool:
    """`first` and `later` sit in different branches of one `if` (TTT in the body, a plain sliding eval in the
    `else`): one run executes only one of them, so the second is not a rescore of the first."""
    child: ast.AST = first
    for anc in ancestors(first):
        if isinstance(anc, ast.If):
            for mine, other in (("body", "orelse"), ("orelse", "body")):
                if _holds(getattr(anc, mine), child) and _holds(getattr(anc, other), later):
                    return True
        child = anc
    return False


def _holds(block: list[ast.stmt], node: ast.AST) -> bool:
    return any(node is n for stmt in block for n in walk(stmt))


def _guards_in_loop(event: Event, loop: ast.AST) -> list[ast.expr]:
    tests = []
    child = event.node
    for anc in ancestors(event.node):
        if anc is loop:
            break
        if isinstance(anc, ast.If) and child is not anc.test:
            tests.append(anc.test)
        child = anc
    return tests


def _loop_names(loop: ast.For | ast.AsyncFor | ast.While) -> set[str]:
    if isinstance(loop, ast.While):
        return set(while_counters(loop))
    return {n.id for n in walk(loop.target) if isinstance(n, ast.Name)}


def _first_pass_only(event: Event, loop: ast.AST) -> bool:
    """Guarded by `if epoch == 0:` (scored on the first pass, before any update): legal."""
    names = _loop_names(loop)  # type: ignore[arg-type]
    return any(_is_first_pass_test(test, names) for test in _guards_in_loop(event, loop))


def _is_first_pass_test(test: ast.AST, names: set[str]) -> bool:
    """`ep == 0`, `0 == ep`, `not ep`, `ep < 1`, `ep <= 0` (and any conjunction holding one of them)."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_is_first_pass_test(v, names) for v in test.values)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return isinstance(test.operand, ast.Name) and test.operand.id in names
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    left, op, right = test.left, test.ops[0], test.comparators[0]
    if isinstance(left, ast.Constant) and isinstance(right, ast.Name):  # `0 == ep`
        left, right = right, left
        op = {ast.Lt: ast.Gt(), ast.Gt: ast.Lt(), ast.LtE: ast.GtE(), ast.GtE: ast.LtE()}.get(type(op), op)
    if not (isinstance(left, ast.Name) and left.id in names and isinstance(right, ast.Constant)):
        return False
    value = right.value
    return (
        (isinstance(op, ast.Eq | ast.Is | ast.LtE) and value == 0)
        or (isinstance(op, ast.Lt) and value == 1)
    )


def _last_pass_guard(event: Event, loop: ast.AST) -> ast.If | None:
    """The `if epoch == epochs - 1:` (last pass of `loop`) that guards the event, if any."""
    names = _loop_names(loop)  # type: ignore[arg-type]
    for test in _guards_in_loop(event, loop):
        text = ast.unparse(test)
        if any(n in text for n in names) and "- 1" in text:
            parent = getattr(test, "pg_parent", None)
            return parent if isinstance(parent, ast.If) else None
    return None



_SETUP = '''
import os
import torch
import torch.nn.functional as F

class Hyperparameters:
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", "3"))
    ttt_lr = float(os.environ.get("TTT_LR", "0.001"))

def load_validation_tokens(pattern):
    return torch.load(pattern)
'''

RescoreAfterAdapt.invalid = (
    Example(
        title="scores inside the epoch loop and keeps only the last epoch's score",
        code=_SETUP
        + '''
def eval_val_ttt(args, model, val_tokens, chunk=1024):
    opt = torch.optim.Adam(model.parameters(), lr=args.ttt_lr)
    num_chunks = (len(val_tokens) - 1) // chunk
    loss_sum = 0.0
    for epoch in range(args.ttt_epochs):
        for ci in range(num_chunks):
            piece = val_tokens[ci * chunk : (ci + 1) * chunk + 1]
            nll = F.cross_entropy(model(piece[:-1]), piece[1:], reduction="none")
            if epoch == args.ttt_epochs - 1:
                with torch.no_grad():
                    loss_sum += nll.detach().sum().item()  # <- expected
            nll.mean().backward()
            opt.step()
            opt.zero_grad()
    return loss_sum

if __name__ == "__main__":
    eval_val_ttt(Hyperparameters(), torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_000000.bin"))
''',
        message="only in the last pass",
    ),
    Example(
        title="score-first TTT, then the adapted model evaluated again and that number reported",
        code=_SETUP
        + '''
@torch.inference_mode()
def eval_val(model, val_tokens):
    return F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:]).item()

def eval_val_ttt(args, model, val_tokens, chunk=1024):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    total = 0.0
    for start in range(0, len(val_tokens) - 1, chunk):
        piece = val_tokens[start : start + chunk + 1]
        with torch.no_grad():
            total += F.cross_entropy(model(piece[:-1]), piece[1:], reduction="sum").item()
        loss = F.cross_entropy(model(piece[:-1]), piece[1:])
        loss.backward()
        opt.step()
    return total

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    first = eval_val_ttt(args, model, val_tokens)
    final = eval_val(model, val_tokens)  # <- expected
    print(f"legal_ttt {first} final_exact {final}")

if __name__ == "__main__":
    main()
''',
        message="score, train, rescore",
    ),
    Example(
        title="last-epoch scoring in a routine the default mode skips but the logged run selects",
        code=_SETUP
        + '''
class Modes:
    ttt_mode = os.environ.get("TTT_MODE", "none")
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", "3"))
    ttt_lr = float(os.environ.get("TTT_LR", "0.001"))

def eval_val_lora(args, model, val_tokens, chunk=1024):
    opt = torch.optim.Adam(model.parameters(), lr=args.ttt_lr)
    loss_sum = 0.0
    for epoch in range(args.ttt_epochs):
        for start in range(0, len(val_tokens) - 1, chunk):
            piece = val_tokens[start : start + chunk + 1]
            nll = F.cross_entropy(model(piece[:-1]), piece[1:], reduction="none")
            if epoch == args.ttt_epochs - 1:
                with torch.no_grad():
                    loss_sum += nll.detach().sum().item()  # <- expected
            nll.mean().backward()
            opt.step()
            opt.zero_grad()
    return loss_sum

def main():
    args = Modes()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    if args.ttt_mode == "lora":
        print("lora_ttt val_loss", eval_val_lora(args, model, val_tokens))

if __name__ == "__main__":
    main()
''',
        logged={"ttt_mode": "lora", "ttt_epochs": "2"},
        message="only in the last pass",
    ),
    Example(
        title="an optional TTT pass, then a plain eval after the if that overwrites the reported score",
        code=_SETUP
        + '''
@torch.inference_mode()
def eval_val(model, val_tokens):
    return F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:]).item()

def eval_val_ttt(args, model, val_tokens, chunk=1024):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    total = 0.0
    for start in range(0, len(val_tokens) - 1, chunk):
        piece = val_tokens[start : start + chunk + 1]
        with torch.no_grad():
            total += F.cross_entropy(model(piece[:-1]), piece[1:], reduction="sum").item()
        loss = F.cross_entropy(model(piece[:-1]), piece[1:])
        loss.backward()
        opt.step()
    return total

class Knobs(Hyperparameters):
    ttt_enabled = int(os.environ.get("TTT_ENABLED", "0"))

def main():
    args = Knobs()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    if args.ttt_enabled:
        print("legal_ttt:start chunked score-first pass")
        score = eval_val_ttt(args, model, val_tokens)
    score = eval_val(model, val_tokens)  # <- expected
    print(f"final_exact {score}")

if __name__ == "__main__":
    main()
''',
        log="legal_ttt:start chunked score-first pass\nfinal_exact 2.0\n",
        message="score, train, rescore",
    ),
)

RescoreAfterAdapt.valid = (
    Example(
        title="score-first TTT: the epoch loop sits inside the chunk loop, after the chunk was scored",
        code=_SETUP
        + '''
def eval_val_ttt(args, model, val_tokens, chunk=1024):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    starts = list(range(0, len(val_tokens) - 1, chunk))
    loss_sum = 0.0
    for ci, start in enumerate(starts):
        piece = val_tokens[start : start + chunk + 1]
        with torch.inference_mode():
            loss_sum += F.cross_entropy(model(piece[:-1]), piece[1:], reduction="sum").item()
        if ci == len(starts) - 1:
            continue
        for epoch in range(args.ttt_epochs):
            loss = F.cross_entropy(model(piece[:-1]), piece[1:])
            loss.backward()
            opt.step()
            opt.zero_grad()
    return loss_sum

if __name__ == "__main__":
    eval_val_ttt(Hyperparameters(), torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_000000.bin"))
''',
    ),
    Example(
        title="per-document adapters built and dropped inside the TTT pass, then a diagnostic eval first",
        code=_SETUP
        + '''
class LoRA(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(dim, dim))

@torch.inference_mode()
def eval_val(model, val_tokens):
    return F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:]).item()

def eval_val_doc_ttt(args, model, val_tokens, doc_len=512):
    total = 0.0
    for start in range(0, len(val_tokens) - 1, doc_len):
        doc = val_tokens[start : start + doc_len + 1]
        lora = LoRA(1024)
        opt = torch.optim.Adam(lora.parameters(), lr=args.ttt_lr)
        with torch.no_grad():
            total += F.cross_entropy(model(doc[:-1]) @ lora.a, doc[1:], reduction="sum").item()
        F.cross_entropy(model(doc[:-1]) @ lora.a, doc[1:]).backward()
        opt.step()
        del lora, opt
    return total

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    print("diagnostic", eval_val(model, val_tokens))
    print("ttt", eval_val_doc_ttt(args, model, val_tokens))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="the same last-epoch routine, not selected in the logged run (code present, not run: info)",
        code=_SETUP
        + '''
class Modes:
    ttt_mode = os.environ.get("TTT_MODE", "none")
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", "3"))
    ttt_lr = float(os.environ.get("TTT_LR", "0.001"))

def eval_val_lora(args, model, val_tokens, chunk=1024):
    opt = torch.optim.Adam(model.parameters(), lr=args.ttt_lr)
    loss_sum = 0.0
    for epoch in range(args.ttt_epochs):
        for start in range(0, len(val_tokens) - 1, chunk):
            piece = val_tokens[start : start + chunk + 1]
            nll = F.cross_entropy(model(piece[:-1]), piece[1:], reduction="none")
            if epoch == args.ttt_epochs - 1:
                with torch.no_grad():
                    loss_sum += nll.detach().sum().item()
            nll.mean().backward()
            opt.step()
            opt.zero_grad()
    return loss_sum

def main():
    args = Modes()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    if args.ttt_mode == "lora":
        print("lora_ttt val_loss", eval_val_lora(args, model, val_tokens))

if __name__ == "__main__":
    main()
''',
        logged={"ttt_mode": "none", "ttt_epochs": "2"},
    ),
    Example(
        title="TTT in the if-branch, the plain sliding eval in the else: one run takes only one of them",
        code=_SETUP
        + '''
@torch.inference_mode()
def eval_val(model, val_tokens):
    return F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:]).item()

def eval_val_ttt(args, model, val_tokens, chunk=1024):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    total = 0.0
    for start in range(0, len(val_tokens) - 1, chunk):
        piece = val_tokens[start : start + chunk + 1]
        with torch.no_grad():
            total += F.cross_entropy(model(piece[:-1]), piece[1:], reduction="sum").item()
        loss = F.cross_entropy(model(piece[:-1]), piece[1:])
        loss.backward()
        opt.step()
    return total

class Knobs(Hyperparameters):
    ttt_enabled = int(os.environ.get("TTT_ENABLED", "0"))

def main():
    args = Knobs()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    if args.ttt_enabled:
        print("legal_ttt:start chunked score-first pass")
        score = eval_val_ttt(args, model, val_tokens)
    else:
        score = eval_val(model, val_tokens)
    print(f"final_exact {score}")

if __name__ == "__main__":
    main()
''',
        log="legal_ttt:start chunked score-first pass\nfinal_exact 2.0\n",
    ),
)

RescoreAfterAdapt.valid += (
    Example(
        title="legal: score-first TTT in one branch, a plain score in the `else`: only one of them runs",
        code='''
import os
import torch
import torch.nn.functional as F

def fetch(spec):
    return torch.load(spec)

@torch.no_grad()
def score(net, s):
    return F.cross_entropy(net(s[:-1]), s[1:]).item()

def score_then_adapt(net, s, n=64):
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    total = 0.0
    for c in range(0, len(s) - n, n):
        part = s[c : c + n + 1]
        with torch.no_grad():
            total += F.cross_entropy(net(part[:-1]), part[1:]).item()
        F.cross_entropy(net(part[:-1]), part[1:]).backward()
        opt.step()
        opt.zero_grad()
    return total

def main():
    s = fetch("fineweb_val_000000.bin")
    net = torch.nn.Embedding(1024, 1024)
    if torch.cuda.is_available():  # not decidable statically: both branches may run, never both
        out = score_then_adapt(net, s)
    else:
        out = score(net, s)
    print(f"final val_loss:{out:.4f}")

if __name__ == "__main__":
    main()
''',
    ),
)

# Weights saved before the adapting pass and loaded back before the second score: the second pass scores the
# unadapted model (legal); saved after the pass, they are the adapted weights (illegal).
_SNAPSHOT = _SETUP + '''
import copy

@torch.inference_mode()
def a2(m, s):
    return F.cross_entropy(m(s[:-1]), s[1:]).item()

def a1(args, m, s, chunk=1024):
    opt = torch.optim.SGD(m.parameters(), lr=args.ttt_lr)
    total = 0.0
    for j in range(0, len(s) - 1, chunk):
        piece = s[j : j + chunk + 1]
        with torch.no_grad():
            total += F.cross_entropy(m(piece[:-1]), piece[1:], reduction="sum").item()
        F.cross_entropy(m(piece[:-1]), piece[1:]).backward()
        opt.step()
    return total

def main():
    args = Hyperparameters()
    m = torch.nn.Embedding(1024, 1024)
    s = load_validation_tokens("data/fineweb_val_000000.bin")
    SAVE_BEFORE
    first = a1(args, m, s)
    SAVE_AFTER
    m.load_state_dict(keep)
    final = a2(m, s)  # <- expected
    print(f"final_exact {final}")

if __name__ == "__main__":
    main()
'''

RescoreAfterAdapt.invalid += (
    Example(
        title="weights saved after the adapting pass and loaded back: the rescore is still of adapted weights",
        code=_SNAPSHOT.replace("    SAVE_BEFORE\n", "").replace("SAVE_AFTER", "keep = copy.deepcopy(m.state_dict())"),
        message="score, train, rescore",
    ),
)

RescoreAfterAdapt.valid += (
    Example(
        title="weights saved before the adapting pass are loaded back before the second evaluation",
        code=_SNAPSHOT.replace("SAVE_BEFORE", "keep = copy.deepcopy(m.state_dict())").replace("    SAVE_AFTER\n", ""),
    ),
)

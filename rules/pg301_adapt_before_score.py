"""PG301 adapt-before-score."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from pgaudit.analysis.dataflow import VAL
from pgaudit.analysis.events import Event, can_follow, val_only
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import dotted
from pgaudit.analysis.reported import sources_of
from pgaudit.analysis.streaming import early_writes, lookahead_writes
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import walk

from .base import Example, Rule, short

_RULINGS = (
    "https://github.com/openai/parameter-golf/issues/402",
    "https://github.com/openai/parameter-golf/pull/1972",
    "https://github.com/openai/parameter-golf/issues/677",
)


class AdaptBeforeScore(Rule):
    """Weights are trained on validation tokens before those tokens are scored.

    What it does:
        Orders, inside each function, the places that *update* weights from validation tokens (a backward
        pass on a loss derived from them, in code that steps an optimizer or changes parameters in place,
        directly or through the functions it calls) and the places that *score* validation tokens (a loss
        computed without gradients, or a call to a function that does). An update that comes before a
        score -- multi-epoch fine-tuning on `val_tokens` before quantization or before the final eval, or
        training on a chunk before scoring that chunk -- is reported at the update. A score is also what a
        function returns into the printed loss/bpb metric, whatever the function is called and whether or not
        gradients are on; a helper that trains on its parameters (`step(net, opt, x, y)`) trains on what each
        call site passes, so a training caller does not hide a TTT caller. Streaming caches: a table written
        with token t (`counts[a, z] += 1`) before the same loop iteration scores z from it is reported too.

    Why is this bad:
        The README allows test-time training only "on validation set tokens you've already evaluated your
        model on". A score computed after adapting on the same tokens uses a state that saw x_t (C3,
        score-before-update). Pre-quant TTT lineages were closed for exactly this (PR #771, #1376, #1972:
        "score-after-adapt on validation data").

    Example:
        ttt_adapt(args, model, val_tokens, epochs=6)   # backward + optimizer.step() on val tokens
        val_loss, val_bpb = eval_val(args, model, val_tokens)

    Legal look-alikes:
        Score-first chunked TTT (each chunk scored under no_grad/inference_mode first, then trained, the
        last chunk not trained); periodic `eval_val` during training; TTT on training shards during the
        training budget; TTT code switched off by default and off in the logged run (info). Updates on
        validation tokens whose parameters are thrown away before any scoring (a compile warm-up with a
        throwaway adapter, PR #1530) are a warning, not an error.

    References:
        R17, R18 of the catalogue; README (2026-03-20); Issue #402; PR #1972 (cocohearts); Issue #677.
    """

    code = "PG301"
    name = "adapt-before-score"
    severity = Severity.ERROR
    confidence = Confidence.HIGH
    catalogue_ids = ("R17", "R18")
    ruling_urls = _RULINGS
    condition = "C3"
    fix = (
        "Score every chunk of validation tokens under torch.no_grad()/inference_mode() before training on it "
        "(score-first TTT: score chunk i, then adapt on chunk i, never re-score it), or remove the adaptation "
        "on validation tokens."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        events = facts.events
        for scope in facts.flow.scopes:
            timeline = events.of(scope).all
            scores = [e for e in timeline if e.kind == "score" and val_only(e.labels)]
            if not scores:
                continue
            for update in timeline:
                if update.kind != "update" or not val_only(update.labels) or update.free_tensors:
                    continue  # optimizing a fresh delta against the scored targets is SLOT: PG303
                if update.via is not None and "score" in events.of(update.via).kinds:
                    continue  # a TTT routine that scores as it adapts: its own order is checked inside it
                later = [
                    s
                    for s in scores
                    if s.order > update.order and s.node is not update.node and can_follow(update.node, s.node, scope)
                ]
                later = [s for s in later if not held_out_split(facts, update, s)]
                later = later or [s for s in scores if s.order < update.order and _trains_ahead(facts, update, s)]
                if not later:
                    continue
                yield self._report(facts, update, later[0])
        yield from self._streaming(facts)

    def _streaming(self, facts: Facts) -> Iterable[Finding]:
        """An online table updated with token t before the same loop iteration scores t from it."""
        for scope in facts.flow.scopes:
            for early in early_writes(facts.index, facts.flow, scope):
                message = (
                    f"In `{scope.qualname}`, `{short(early.write)}` (line {early.write.lineno}) puts `{early.token}` "
                    f"into `{early.table}`, and line {early.score.lineno} of the same loop iteration then scores "
                    f"`{early.token}` from that state: the state used at position t has already read token t (C3)."
                )
                yield self.finding(
                    facts, scope.unit, early.write, message, confidence=Confidence.MEDIUM,
                    related=[(scope.unit, early.score)],
                )
            for ahead in lookahead_writes(facts.index, facts.flow, scope):
                message = (
                    f"In `{scope.qualname}`, `{short(ahead.write)}` (line {ahead.write.lineno}) puts `{ahead.token}`, "
                    f"tokens after the one line {ahead.score.lineno} scores, into `{ahead.table}`: the next "
                    "iterations score those tokens from a state that has already read them (C3)."
                )
                yield self.finding(
                    facts, scope.unit, ahead.write, message, confidence=Confidence.MEDIUM,
                    related=[(scope.unit, ahead.score)],
                )

    def _report(self, facts: Facts, update: Event, score: Event) -> Finding:
        unit = update.scope.unit
        related: list[tuple] = [(score.scope.unit, score.node)]
        inner = self._inner_backward(facts, update)
        if update.via is not None:
            where = f" (backward pass at line {inner.line} in `{inner.scope.qualname}`)" if inner else ""
            what = f"`{short(update.node)}` (line {update.line}) trains on validation tokens{where}"
            if inner is not None:
                related.append((inner.scope.unit, inner.node))
        else:
            what = f"a backward pass on a loss computed from validation tokens (line {update.line}) updates weights"
        message = (
            f"In `{update.scope.qualname}`, {what}, and `{short(score.node)}` at line {score.line} then scores "
            "validation tokens: the score comes from a model already adapted on the tokens it predicts (C3)."
        )
        if throwaway(facts, update, score):
            message += (
                " The adapted parameters are discarded before that score (a throwaway warm-up adapter), so "
                "this is a borderline practice rather than a violation (accepted in PR #1530)."
            )
            return self.finding(facts, unit, update.node, message, severity=Severity.WARNING, confidence=Confidence.MEDIUM, related=related)
        return self.finding(facts, unit, update.node, message, related=related)

    @staticmethod
    def _inner_backward(facts: Facts, update: Event) -> Event | None:
        if update.via is None:
            return None
        for event in facts.events._transitive_events(update.via):
            if event.kind == "update":
                return event
        return None


def held_out_split(facts: Facts, update: Event, score: Event) -> bool:
    """`a, b = x[:k], x[k:]`, fit on `a`, score `b`: the update saw only tokens before the scored ones (a held-out
    probe on a validation split), so no score uses a state that saw its own token. Every validation value in the
    update's loss must come from `X[:k]` and every one in the score from `X[k:]`, with one `k` for all."""
    if update.scope is not score.scope or not isinstance(update.node, ast.Call):
        return False
    scope = update.scope
    func = update.node.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
        return False
    slices: dict[str, tuple[str, str, str]] = {}  # name -> (sequence, "head"/"tail", split point)
    losses: list[ast.AST] = []
    for node in facts.index.walk_scope(scope):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = (
                zip(target.elts, node.value.elts, strict=False)
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                else [(target, node.value)]
            )
            for t, v in pairs:
                if isinstance(t, ast.Name):
                    if t.id == func.value.id:
                        losses.append(v)
                    part = _split_part(v)
                    if part:
                        slices[t.id] = part
    if len(losses) != 1:
        return False

    def sides(expr: ast.AST) -> set[tuple[str, str, str]] | None:
        found = set()
        for n in walk(expr):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and VAL in facts.flow.labels(n, scope):
                if n.id not in slices:
                    return None  # validation data that is not one side of the split
                found.add(slices[n.id])
        return found

    fit, scored = sides(losses[0]), sides(score.node)
    if not fit or not scored:
        return False
    points = {p for _, _, p in fit | scored}
    return len(points) == 1 and {h for _, h, _ in fit} == {"head"} and {h for _, h, _ in scored} == {"tail"}


def _split_part(value: ast.AST) -> tuple[str, str, str] | None:
    """`x[:k]` -> (x, "head", k); `x[k:]` -> (x, "tail", k), through `.to(device)`-style calls."""
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and not value.args[1:]:
        value = value.func.value
    if not (isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Slice) and value.slice.step is None):
        return None
    lo, hi = value.slice.lower, value.slice.upper
    if lo is None and hi is not None:
        return (ast.unparse(value.value), "head", ast.unparse(hi))
    if hi is None and lo is not None:
        return (ast.unparse(value.value), "tail", ast.unparse(lo))
    return None


def _trains_ahead(facts: Facts, update: Event, score: Event) -> bool:
    """In one loop over `i`, the score reads `C[i]` and the later update trains on `C[i + k]` (k > 0) of the
    same container: the chunk trained on now is scored k iterations later, after the adaptation, whatever
    the statement order says."""
    common = [loop for loop in update.loops() if loop in score.loops() and isinstance(loop, ast.For | ast.AsyncFor)]
    if not common or not isinstance(common[-1].target, ast.Name):
        return False
    var = common[-1].target.id
    def offsets(node: ast.AST) -> set[tuple[str, int]]:
        out = set()
        for n in sources_of(facts.index, update.scope, [node], broad=True):
            if not isinstance(n, ast.Subscript):
                continue
            k = n.slice
            if isinstance(k, ast.Name) and k.id == var:
                out.add((ast.unparse(n.value), 0))
            elif isinstance(k, ast.BinOp) and isinstance(k.op, ast.Add) and isinstance(k.left, ast.Name) and k.left.id == var \
                    and isinstance(k.right, ast.Constant) and isinstance(k.right.value, int) and k.right.value > 0:
                out.add((ast.unparse(n.value), k.right.value))
        return out
    scored = {c for c, k in offsets(score.node) if k == 0}
    return any(k > 0 and c in scored for c, k in offsets(update.node))


def throwaway(facts: Facts, update: Event, score: Event) -> bool:
    """The updated objects are local, deleted between the update and the score, and unused by the score."""
    if update.self_contained:
        return True
    if not update.updated:
        return False
    scope = update.scope
    assigned = set(facts.flow.fs[id(scope)].env)
    score_names = {n.id for n in walk(score.node) if isinstance(n, ast.Name)}
    deleted: set[str] = set()
    exported: set[str] = set()  # `sd = ttt_model.state_dict()` before the `del`: the adapted weights live on
    for node in facts.index.walk_scope(scope):
        if isinstance(node, ast.Delete) and update.line <= node.lineno <= score.line:
            deleted |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        if (
            isinstance(node, ast.Call)
            and update.line < node.lineno <= score.line
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "state_dict"
        ):
            exported.add(dotted(node.func.value).split(".")[0])
    for obj in update.updated:
        base = obj.split(".")[0]
        if base in scope.params or base not in assigned or base in score_names or base not in deleted or base in exported:
            return False
    return True



_SETUP = '''
import copy
import os
import torch
import torch.nn.functional as F

class Hyperparameters:
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "1")))
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", "3"))
    ttt_lr = float(os.environ.get("TTT_LR", "0.0005"))

def load_validation_tokens(pattern):
    return torch.load(pattern)

@torch.inference_mode()
def eval_val(model, val_tokens):
    x, y = val_tokens[:-1], val_tokens[1:]
    return F.cross_entropy(model(x), y).item()
'''

AdaptBeforeScore.invalid = (
    Example(
        title="pre-quant TTT: several epochs of AdamW on the validation tokens, then the final eval",
        code=_SETUP
        + '''
def ttt_adapt(args, model, val_tokens):
    opt = torch.optim.AdamW(model.parameters(), lr=args.ttt_lr)
    for epoch in range(args.ttt_epochs):
        for start in range(0, len(val_tokens) - 1, 1024):
            chunk = val_tokens[start : start + 1025]
            loss = F.cross_entropy(model(chunk[:-1]), chunk[1:])
            loss.backward()
            opt.step()
            opt.zero_grad()

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    if args.ttt_enabled:
        ttt_adapt(args, model, val_tokens)  # <- expected
    print("final val_loss", eval_val(model, val_tokens))

if __name__ == "__main__":
    main()
''',
        message="trains on validation tokens (backward pass at line",
    ),
    Example(
        title="one function: fine-tune on the validation stream, then score it",
        code=_SETUP
        + '''
def adapt_then_eval(model, val_tokens, epochs=2):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(epochs):
        loss = F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:])
        loss.backward()  # <- expected
        opt.step()
    with torch.no_grad():
        return F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:]).item()

if __name__ == "__main__":
    adapt_then_eval(torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_000000.bin"))
''',
        message="a backward pass on a loss computed from validation tokens",
    ),
    Example(
        title="chunked TTT that trains on each chunk before scoring it",
        code=_SETUP
        + '''
def eval_val_ttt(model, val_tokens, chunk=1024):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    nll = 0.0
    for start in range(0, len(val_tokens) - 1, chunk):
        piece = val_tokens[start : start + chunk + 1]
        loss = F.cross_entropy(model(piece[:-1]), piece[1:])
        loss.backward()  # <- expected
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            nll += F.cross_entropy(model(piece[:-1]), piece[1:], reduction="sum").item()
    return nll

if __name__ == "__main__":
    eval_val_ttt(torch.nn.Embedding(8, 8), load_validation_tokens("fineweb_val_000000.bin"))
''',
        message="a backward pass on a loss computed from validation tokens",
    ),
    Example(
        title="switched off by default, switched on in the logged run: an error",
        code=_SETUP.replace('"TTT_ENABLED", "1"', '"TTT_ENABLED", "0"')
        + '''
def ttt_adapt(args, model, val_tokens):
    opt = torch.optim.AdamW(model.parameters(), lr=args.ttt_lr)
    for epoch in range(args.ttt_epochs):
        loss = F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:])
        loss.backward()
        opt.step()

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    if args.ttt_enabled:
        ttt_adapt(args, model, val_tokens)  # <- expected
    print("final val_loss", eval_val(model, val_tokens))

if __name__ == "__main__":
    main()
''',
        message="trains on validation tokens",
        logged={"ttt_enabled": "True"},
    ),
    Example(
        title="the same code with TTT off by default and no logs: info, reachable false",
        code=_SETUP.replace('"TTT_ENABLED", "1"', '"TTT_ENABLED", "0"')
        + '''
def ttt_adapt(args, model, val_tokens):
    opt = torch.optim.AdamW(model.parameters(), lr=args.ttt_lr)
    for epoch in range(args.ttt_epochs):
        loss = F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:])
        loss.backward()
        opt.step()

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    if args.ttt_enabled:
        ttt_adapt(args, model, val_tokens)  # <- expected
    print("final val_loss", eval_val(model, val_tokens))

if __name__ == "__main__":
    main()
''',
        message="does not run under this configuration",
        severity=Severity.INFO,
    ),
    Example(
        title="compile warm-up on validation tokens with a throwaway adapter, deleted before scoring: warning",
        code=_SETUP
        + '''
class LoRA(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(dim, dim))

def eval_val_ttt(model, val_tokens):
    total = 0.0
    for start in range(0, len(val_tokens) - 1, 1024):
        piece = val_tokens[start : start + 1025]
        with torch.no_grad():
            total += F.cross_entropy(model(piece[:-1]), piece[1:]).item()
    return total

def run_eval(model, val_tokens):
    warm = LoRA(1024)
    warm_opt = torch.optim.AdamW(warm.parameters(), lr=1e-3)
    x, y = val_tokens[:64], val_tokens[1:65]
    (F.cross_entropy(model(x) @ warm.a, y)).backward()  # <- expected
    warm_opt.step()
    del warm, warm_opt
    return eval_val_ttt(model, val_tokens)

if __name__ == "__main__":
    run_eval(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"))
''',
        message="throwaway warm-up adapter",
        severity=Severity.WARNING,
    ),
    Example(
        title="the final eval reached through a timing helper that calls the function it is given",
        code=_SETUP
        + '''
def timed(label, fn, *args):
    value = fn(*args)
    print(label, value)
    return value

def adapt_on(model, tokens, epochs):
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    for _ in range(epochs):
        F.cross_entropy(model(tokens[:-1]), tokens[1:]).backward()
        opt.step()

def main():
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("fineweb_val_000000.bin")
    timed("pre", eval_val, model, val_tokens)
    adapt_on(model, val_tokens, 8)  # <- expected
    timed("post-ttt", eval_val, model, val_tokens)

if __name__ == "__main__":
    main()
''',
        message="`timed('post-ttt', eval_val, model, val_tokens)` at line",
    ),
    Example(
        title="`loss` reused by the training loop and an inline TTT loop in main; the adapted weights are exported",
        code=_SETUP
        + '''
def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    train_tokens = torch.load("data/fineweb_train_000000.bin")
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    opt = torch.optim.AdamW(model.parameters())
    for step in range(100):
        x, y = train_tokens[step : step + 1024], train_tokens[step + 1 : step + 1025]
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    state = model.state_dict()
    if args.ttt_enabled:
        ttt_model = torch.nn.Embedding(1024, 1024)
        ttt_model.load_state_dict(state)
        ttt_opt = torch.optim.AdamW(ttt_model.parameters(), lr=args.ttt_lr)
        for epoch in range(args.ttt_epochs):
            for start in range(0, val_tokens.numel() - 1025, 1024):
                chunk = val_tokens[start : start + 1025]
                ttt_opt.zero_grad()
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                    loss = F.cross_entropy(ttt_model(chunk[:-1]), chunk[1:])
                loss.backward()  # <- expected
                ttt_opt.step()
        state = ttt_model.state_dict()
        del ttt_model, ttt_opt
    final = torch.nn.Embedding(1024, 1024)
    final.load_state_dict(state)
    print("final val_loss", eval_val(final, val_tokens))

if __name__ == "__main__":
    main()
''',
        message="a backward pass on a loss computed from validation tokens (line",
    ),
)

AdaptBeforeScore.valid = (
    Example(
        title="score-first chunked TTT: score under no_grad, then train on the scored chunk, never the last",
        code=_SETUP
        + '''
def eval_val_sliding_ttt(args, model, val_tokens, chunk=1024):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    starts = list(range(0, len(val_tokens) - 1, chunk))
    loss_sum = 0.0
    for ci, start in enumerate(starts):
        piece = val_tokens[start : start + chunk + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(piece[:-1]), piece[1:], reduction="sum").item()
        is_last_chunk = ci == len(starts) - 1
        if not is_last_chunk and args.ttt_epochs > 0:
            for _ in range(args.ttt_epochs):
                loss = F.cross_entropy(model(piece[:-1]), piece[1:])
                loss.backward()
                opt.step()
                opt.zero_grad()
    return loss_sum

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    print("legal_ttt", eval_val_sliding_ttt(args, model, val_tokens))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="periodic eval_val during training, training on training shards",
        code=_SETUP
        + '''
def main():
    model = torch.nn.Embedding(1024, 1024)
    opt = torch.optim.AdamW(model.parameters())
    train_tokens = torch.load("data/fineweb_train_000000.bin")
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    for step in range(100):
        x, y = train_tokens[step : step + 1024], train_tokens[step + 1 : step + 1025]
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 10 == 0:
            print("val_loss", eval_val(model, val_tokens))
    print("final", eval_val(model, val_tokens))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="TTT on training shards during the training budget, then the final eval",
        code=_SETUP
        + '''
def ttt_on_train(model, train_tokens, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(epochs):
        loss = F.cross_entropy(model(train_tokens[:-1]), train_tokens[1:])
        loss.backward()
        opt.step()

def main():
    model = torch.nn.Embedding(1024, 1024)
    train_tokens = torch.load("data/fineweb_train_000001.bin")
    ttt_on_train(model, train_tokens, 2)
    print(eval_val(model, load_validation_tokens("data/fineweb_val_000000.bin")))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="pre-eval TTT present but disabled by default, and the logs show it off",
        code=_SETUP.replace('"TTT_ENABLED", "1"', '"TTT_ENABLED", "0"')
        + '''
def ttt_adapt(args, model, val_tokens):
    opt = torch.optim.AdamW(model.parameters(), lr=args.ttt_lr)
    for epoch in range(args.ttt_epochs):
        loss = F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:])
        loss.backward()
        opt.step()

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    if args.ttt_enabled:
        ttt_adapt(args, model, val_tokens)
    print("final val_loss", eval_val(model, val_tokens))

if __name__ == "__main__":
    main()
''',
        logged={"ttt_enabled": "False"},
    ),
    Example(
        title="`loss` reused in one loop: a no-grad validation loss, then the training loss that is differentiated",
        code=_SETUP
        + '''
def main():
    model = torch.nn.Embedding(1024, 1024)
    opt = torch.optim.AdamW(model.parameters())
    train_tokens = torch.load("data/fineweb_train_000000.bin")
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    for step in range(100):
        if step % 10 == 0:
            with torch.no_grad():
                loss = F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:])
            print("val_loss", loss.item())
        x, y = train_tokens[step : step + 1024], train_tokens[step + 1 : step + 1025]
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    print("final", eval_val(model, val_tokens))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="TTT-with-scoring in the if, a plain eval in its else: only one of them runs",
        code=_SETUP
        + '''
def adapt(args, model, val_tokens):
    opt = torch.optim.AdamW(model.parameters(), lr=args.ttt_lr)
    for epoch in range(args.ttt_epochs):
        loss = F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:])
        loss.backward()
        opt.step()

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    if args.ttt_enabled:
        adapt(args, model, val_tokens)
    else:
        print("final val_loss", eval_val(model, val_tokens))

if __name__ == "__main__":
    main()
''',
    ),
)

# Streaming caches (analysis/streaming.py): the order inside one loop iteration decides.
_STREAM = '''
import math
import numpy as np

def load_validation_tokens(pattern):
    return np.fromfile(pattern, dtype=np.uint16).astype(np.int64)

def online_bpb(seq, vocab=1024):
    counts = np.ones((vocab, vocab))
    total = 0.0
    for i in range(len(seq) - 1):
        a, z = int(seq[i]), int(seq[i + 1])
{body}
    return total / (len(seq) - 1) / math.log(2)

if __name__ == "__main__":
    print("final val_bpb", online_bpb(load_validation_tokens("fineweb_val_000000.bin")))
'''

AdaptBeforeScore.invalid += (
    Example(
        title="an online count table updated with the token before the same iteration scores it",
        code=_STREAM.replace("{body}", '''        counts[a, z] += 1  # <- expected
        row = counts[a] / counts[a].sum()
        total -= math.log(row[z])'''),
        message="has already read token t",
    ),
)

AdaptBeforeScore.valid += (
    Example(
        title="the same table, scored from the state before the token, then updated with it",
        code=_STREAM.replace("{body}", '''        row = counts[a] / counts[a].sum()
        total -= math.log(row[z])
        counts[a, z] += 1'''),
    ),
)

# Token ranges, not statement order: each chunk is scored before the step, but the step trains on the next
# chunk, which the following iteration scores.
_AHEAD = _SETUP + '''
def chunked(model, val_tokens, span=1024):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    parts = [val_tokens[s : s + span + 1] for s in range(0, len(val_tokens) - span - 1, span)]
    total = 0.0
    for ci in range(len(parts) - 1):
        with torch.no_grad():
            total += F.cross_entropy(model(parts[ci][:-1]), parts[ci][1:]).item()
        part = {PART}
        loss = F.cross_entropy(model(part[:-1]), part[1:])
        loss.backward()  # EXPECT
        opt.step()
        opt.zero_grad()
    return total / (len(parts) - 1)

if __name__ == "__main__":
    print("final val_loss", chunked(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin")))
'''

_UNIGRAM = _STREAM.split("def online_bpb")[0] + '''def online_bpb(seq, vocab=1024):
    counts = np.ones(vocab)
    total = 0.0
    for i in range(len(seq) - 2):
        p = counts / counts.sum()
        total -= math.log(p[seq[i]])
        np.add.at(counts, seq[i : {STOP}], 1)  # EXPECT
    return total / (len(seq) - 2) / math.log(2)

if __name__ == "__main__":
    print("final val_bpb", online_bpb(load_validation_tokens("fineweb_val_000000.bin")))
'''

AdaptBeforeScore.invalid += (
    Example(
        title="score chunk i, then train on chunk i + 1, which the next iteration scores",
        code=_AHEAD.replace("{PART}", "parts[ci + 1]").replace("  # EXPECT", "  # <- expected"),
        message="scores validation tokens: the score comes from a model already adapted",
    ),
    Example(
        title="an online unigram table updated after scoring t, but with the token after t too",
        code=_UNIGRAM.replace("{STOP}", "i + 2").replace("  # EXPECT", "  # <- expected"),
        message="tokens after the one line",
    ),
)

AdaptBeforeScore.valid += (
    Example(
        title="score chunk i, then train on chunk i (score-first)",
        code=_AHEAD.replace("{PART}", "parts[ci]").replace("  # EXPECT", ""),
    ),
    Example(
        title="the same table updated after scoring t with t only",
        code=_UNIGRAM.replace("{STOP}", "i + 1").replace("  # EXPECT", ""),
    ),
)

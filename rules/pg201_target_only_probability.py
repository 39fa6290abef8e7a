"""PG201 target-only-probability."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from pgaudit.analysis.dataflow import TARGET, TPROP, TRAIN, VAL
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import Scope, call_name
from pgaudit.analysis.realized import COUNT, FREE, SPLIT, Mixture, Realized
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import walk

from .base import Example, Rule, short

_RULINGS = (
    "https://github.com/openai/parameter-golf/pull/982",
    "https://github.com/openai/parameter-golf/pull/886",
    "https://github.com/openai/parameter-golf/pull/978",
    "https://github.com/openai/parameter-golf/issues/1872",
)
_NORMALIZERS = {"sum", "softmax", "log_softmax", "logsumexp", "norm"}


class TargetOnlyProbability(Rule):
    """A scored probability built for the target entry only, not normalized over the whole vocabulary.

    What it does:
        Finds eval-time ratios whose numerator reads a count table *at the target* (`pair[ctx, y]`,
        `counts[(prev, y)]`, `table[prev * V + y]`) and whose denominator is a context count (plus a
        smoothing constant) rather than a sum over all V candidates. Such a ratio is then blended into the
        target's probability.
        Also finds mixtures of two models' probabilities of the realized symbol only -- a weighted sum,
        `logaddexp` (or its hand-written `max(a, c) + log1p(exp(-|a - c|))`), `max`, or a log-sum-exp over
        stacked experts -- where one side is not a distribution over the alphabet: a count table read at the
        realized token or byte (a PPM or n-gram cache) without a sum over the alternatives, the token's
        probability spread over its bytes (`logp[y] / n_bytes`, `p ** (1 / n_bytes)`), or a stacked "expert"
        that is no symbol's probability at all (a hedge mixer's entropy expert, `-(p * logp).sum(-1)`). Roles come from use
        (pgaudit/analysis/realized.py): the realized symbol is the target or an element of the byte stream built
        from the targets at the current position; a count table is one the program increments; the target's
        log-probability is followed into helpers as an array.

    Why is this bad:
        C2: the score must be -log p_t(x_t) for a distribution p_t over the whole vocabulary, fixed before
        x_t is known. Evaluating the cache only at the target and "normalizing" by the context count implies
        a distribution that does not sum to one -- PR #886: "sums to ~277, not 1"; PR #978 reran #972 with
        full-vocab normalization and lost the gain (1.5134 bpb). Closed in the 2026-03-27 wave ("do not
        renormalize correctly"). Byte-level PPM mixtures of the #1795/#1835 lineage mix `exp(logp[y] / n)`,
        which "does not sum to 1 over the byte alphabet", with the PPM's probability of the actual byte; issue
        #1872 ("do the probabilities for all of these token ids ... sum to 1? (hint: no)"), PR #1933 withdrawn.

    Example:
        p_cache = pair_counts[prev, y] / (ctx_counts[prev] + beta)
        nll = -np.log((1 - lam) * p_model_y + lam * p_cache)
        p = lam * np.exp(token_logp / n_bytes) + (1 - lam) * ppm_counts[byte] / total

    Legal look-alikes:
        A cache distribution built for every candidate and divided by its own sum over the vocabulary
        (`pair_counts[prev] / pair_counts[prev].sum()`), then read at the target; full-vocab logit bias or
        exponential tilt followed by softmax or its exact normalizer; logit softcap. Byte mixtures of full
        256-way distributions (the model's next-byte distribution from its whole softmax, the PPM's over every
        byte) read at the realized byte; two normalized models each read at the target and mixed; a PPM scored
        on its own beside the model. No PPM mixture has been ruled legal; PR #1916's audited "Path B" mixes
        dense 256-way distributions.

    References:
        R13, R16 of the catalogue; PR #886 RFC; PR #978; PR #982 closure; issue #1872; PR #1933.
    """

    code = "PG201"
    name = "target-only-probability"
    severity = Severity.ERROR
    confidence = Confidence.MEDIUM
    catalogue_ids = ("R13", "R16")
    ruling_urls = _RULINGS
    condition = "C2"
    fix = (
        "Build the cache distribution for all V candidate tokens (one row per context) and normalize it by "
        "its sum over the vocabulary before reading the target's probability; for byte mixtures, mix the "
        "model's and the PPM's full 256-way next-byte distributions, then read the realized byte."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        flow = facts.flow
        for scope in flow.scopes:
            for node in facts.index.walk_scope(scope):
                if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
                    continue
                numerator = _target_lookup(node.left, scope, facts)
                if numerator is None or not _context_count(node.right, scope, facts):
                    continue
                labels = flow.labels(_key(numerator), scope)  # the key says whose tokens these are
                if VAL not in labels or TRAIN in labels:
                    continue
                message = (
                    f"`{short(node)}` reads a count table at the target (`{short(numerator, 50)}`) and divides "
                    "by a context count instead of a sum over the vocabulary: the probability is computed for "
                    "the target entry only and the implied distribution does not sum to one (C2)."
                )
                yield self.finding(facts, scope.unit, node, message)
        yield from self._mixtures(facts)

    def _mixtures(self, facts: Facts) -> Iterable[Finding]:
        """Two models' probabilities of the realized symbol mixed, one of them not a distribution over the alphabet
        (a byte-level PPM mixed with the token probability spread over its bytes, a count read at the target)."""
        realized: Realized | None = getattr(facts, "_pg201_realized", None)
        if realized is None:
            realized = Realized(facts.index, facts.flow)
            facts._pg201_realized = realized  # type: ignore[attr-defined]  # computed once per program
        for mix in realized.mixtures():
            yield self.finding(facts, mix.scope.unit, mix.node, _mixture_message(mix))


def _mixture_message(mix: Mixture) -> str:
    sides = ", ".join(f"`{short(s, 40)}`" for s in mix.sides[:2])
    why = []
    if SPLIT in mix.kinds:
        why.append("a token's probability spread over its bytes is not a distribution over the 256 byte values")
    if COUNT in mix.kinds:
        why.append("a count table read at the realized symbol is not normalized over the alphabet")
    if FREE in mix.kinds:
        why.append(
            "a stacked 'expert' that is no symbol's probability (a reduction of the whole distribution, such as "
            "its entropy) is mixed as if it were the target's"
        )
    how = {"sum": "adds", "logaddexp": "log-adds", "max": "takes the larger of", "logsumexp": "log-sum-exps"}[mix.how]
    return (
        f"`{short(mix.node)}` {how} two models' probabilities of the realized symbol only ({sides}); "
        + "; ".join(why)
        + ". Nothing is normalized over the alternatives, so the mixture does not sum to one and the reported "
        "score is not the log-loss of a distribution (C2)."
    )


def _lookups(node: ast.AST) -> list[ast.Subscript | ast.Call]:
    return [
        n
        for n in walk(node)
        if isinstance(n, ast.Subscript) or (isinstance(n, ast.Call) and call_name(n) == "get" and n.args)
    ]


def _key(lookup: ast.Subscript | ast.Call) -> ast.AST:
    return lookup.slice if isinstance(lookup, ast.Subscript) else lookup.args[0]


def _target_lookup(node: ast.AST, scope: Scope, facts: Facts) -> ast.AST | None:
    """A count-table read whose key mixes a context value with the target."""
    for lookup in _lookups(node):
        key = _key(lookup)
        key_labels = facts.flow.labels(key, scope)
        if TARGET not in key_labels:
            continue
        parts = key.elts if isinstance(key, ast.Tuple) else [key]
        if len(parts) == 1 and isinstance(key, ast.BinOp):
            parts = [key.left, key.right]
        context = [p for p in parts if TARGET not in facts.flow.labels(p, scope) and VAL in facts.flow.labels(p, scope)]
        if context and _count_table(lookup, facts):
            return lookup
    return None


def _count_table(lookup: ast.Subscript | ast.Call, facts: Facts | None = None) -> bool:
    """A table of counts: one the program increments (`t[k] += 1`, `np.add.at(t, k, 1)`,
    `t.index_put_(..., accumulate=True)`, `t.scatter_add_`), whatever it is called; names like `counts` also
    count."""
    base = lookup.value if isinstance(lookup, ast.Subscript) else lookup.func
    if isinstance(lookup, ast.Call) and isinstance(base, ast.Attribute):
        base = base.value  # `t.get(k)` reads `t`
    text = ast.unparse(base)
    if facts is not None and text in _incremented(facts):
        return True
    text = text.lower()
    return any(word in text for word in ("count", "cnt", "freq", "table", "pair", "bigram", "trigram", "ngram", "hits"))


def _incremented(facts: Facts) -> set[str]:
    found: set[str] | None = getattr(facts, "_pg201_incremented", None)
    if found is None:
        found = set()
        for scope in facts.index.scopes:
            for node in facts.index.walk_scope(scope):
                if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
                    target = node.target
                    if isinstance(target, ast.Subscript):
                        found.add(ast.unparse(target.value))
                elif isinstance(node, ast.Call):
                    name = call_name(node)
                    if name == "at" and node.args and isinstance(node.func, ast.Attribute):
                        found.add(ast.unparse(node.args[0]))
                    elif name in ("index_put_", "scatter_add_", "index_add_", "put_") and isinstance(node.func, ast.Attribute):
                        found.add(ast.unparse(node.func.value))
        facts._pg201_incremented = found  # type: ignore[attr-defined]  # computed once per program
    return found


def _context_count(node: ast.AST, scope: Scope, facts: Facts) -> bool:
    """A denominator that is a context-keyed count (optionally smoothed), not a vocabulary sum."""
    if any(isinstance(n, ast.Call) and call_name(n) in _NORMALIZERS for n in walk(node)):
        return False
    lookups = _lookups(node)
    return bool(lookups) and all(
        TARGET not in facts.flow.labels(_key(lk), scope) and TPROP not in facts.flow.labels(_key(lk), scope)
        for lk in lookups
    ) and any(_count_table(lk, facts) for lk in lookups)


_SETUP = '''
import numpy as np
import torch
import torch.nn.functional as F

def load_validation_tokens(pattern):
    return torch.load(pattern).numpy()
'''

TargetOnlyProbability.invalid = (
    Example(
        title="bigram cache read at (context, target) and divided by the context count",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_cache(model, val_np, lam=0.2, beta=0.5, V=1024):
    pair_counts = np.zeros((V, V))
    ctx_counts = np.zeros(V)
    nll = 0.0
    for t in range(1, len(val_np)):
        prev, y = val_np[t - 1], val_np[t]
        p_model = F.softmax(model(torch.tensor([prev])), -1)[0, y].item()
        p_cache = pair_counts[prev, y] / (ctx_counts[prev] + beta)  # <- expected
        nll -= np.log((1 - lam) * p_model + lam * p_cache)
        pair_counts[prev, y] += 1
        ctx_counts[prev] += 1
    return nll

if __name__ == "__main__":
    eval_val_cache(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"))
''',
        message="does not sum to one",
    ),
    Example(
        title="byte-level PPM mixed with the token's log-probability spread over its bytes, in a helper given "
        "the gathered target log-probs",
        code=_SETUP
        + '''
def byte_mixture_bits(targets, token_logp, pieces, order=3, lam=0.7):
    stream, nn_logp = [], []
    for tok, lp in zip(targets, token_logp):
        raw = pieces[int(tok)]
        for byte in raw:
            stream.append(byte)
            nn_logp.append(lp / len(raw))
    tables = [dict() for _ in range(order + 1)]
    bits = 0.0
    for i, byte in enumerate(stream):
        p_ctx = 1.0 / 256
        for k in range(min(order, i), -1, -1):
            seen = tables[k].get(bytes(stream[i - k:i]))
            if seen and byte in seen:
                p_ctx = seen[byte] / (sum(seen.values()) + len(seen))
                break
        p = lam * np.exp(nn_logp[i]) + (1 - lam) * p_ctx  # <- expected
        bits -= np.log2(p)
        for k in range(min(order, i) + 1):
            row = tables[k].setdefault(bytes(stream[i - k:i]), {})
            row[byte] = row.get(byte, 0) + 1
    return bits / len(stream)

@torch.no_grad()
def eval_val_bytes(model, val_tokens, pieces, seq=256):
    lps, tgts = [], []
    for s in range(0, len(val_tokens) - seq - 1, seq):
        chunk = torch.as_tensor(val_tokens[s:s + seq + 1]).long()
        x, y = chunk[:-1], chunk[1:]
        logp = F.log_softmax(model(x[None]), -1)[0]
        lps.append(logp.gather(-1, y[:, None])[:, 0])
        tgts.append(y)
    bpb = byte_mixture_bits(torch.cat(tgts).numpy(), torch.cat(lps).numpy(), pieces)
    print(f"final val_bpb:{bpb:.4f}")
    return bpb

if __name__ == "__main__":
    pieces = [bytes([i % 256]) * (1 + i % 3) for i in range(1024)]
    eval_val_bytes(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"), pieces)
''',
        message="spread over its bytes",
    ),
    Example(
        title="log-space mixture (logaddexp) of the model's target log-prob and a bigram count read at the target",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_logmix(model, val_tokens, lam=0.3, V=1024):
    pair = np.zeros((V, V))
    seen = np.zeros(V)
    total = 0.0
    for t in range(1, len(val_tokens)):
        ctx, nxt = int(val_tokens[t - 1]), int(val_tokens[t])
        nn = -F.cross_entropy(model(torch.tensor([ctx])), torch.tensor([nxt])).item()
        cache = np.log((pair[ctx, nxt] + 0.5) / (seen[ctx] + 0.5))
        total -= np.logaddexp(np.log(1 - lam) + nn, np.log(lam) + cache)  # <- expected
        pair[ctx, nxt] += 1
        seen[ctx] += 1
    return total / (len(val_tokens) - 1)

if __name__ == "__main__":
    eval_val_logmix(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"))
''',
        message="count table read at the realized symbol",
    ),
    Example(
        title="experts' target log-probs stacked by a method and log-sum-exp mixed; one expert is a smoothed "
        "unigram count over a separately kept total",
        code=_SETUP
        + '''
class ExpertMix:
    def __init__(self, V=1024):
        self.uni = torch.zeros(V)
        self.n = 0.0
        self.w = torch.zeros(2)

    def expert_logp(self, logits, y):
        nn = F.log_softmax(logits, -1).gather(-1, y[:, None])[:, 0]
        freq = torch.log((self.uni[y] + 1.0) / (self.n + 1.0))
        return torch.stack([nn, freq], -1)

    def score(self, logits, y):
        lp = self.expert_logp(logits, y)
        nll = -(lp + torch.log_softmax(self.w, 0)).logsumexp(-1)  # <- expected
        self.uni.index_add_(0, y, torch.ones_like(y, dtype=torch.float))
        self.n += len(y)
        return nll.sum()

@torch.no_grad()
def eval_val_experts(model, val_tokens, seq=128):
    mixer = ExpertMix()
    total = 0.0
    for s in range(0, len(val_tokens) - seq - 1, seq):
        chunk = torch.as_tensor(val_tokens[s:s + seq + 1]).long()
        total += float(mixer.score(model(chunk[:-1][None])[0], chunk[1:]))
    return total / (len(val_tokens) - 1)

if __name__ == "__main__":
    eval_val_experts(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"))
''',
        message="log-sum-exps two models",
    ),
    Example(
        title="the larger of the model's and a trigram cache's probability of the target",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_best(model, val_tokens):
    hits = {}
    nll = 0.0
    for t in range(2, len(val_tokens)):
        ctx = (int(val_tokens[t - 2]), int(val_tokens[t - 1]))
        tok = int(val_tokens[t])
        p_nn = torch.softmax(model(torch.tensor([ctx[1]])), -1)[0, tok].item()
        p_hit = hits.get(ctx + (tok,), 0) / (hits.get(ctx, 0) + 1)
        nll -= np.log(max(p_nn, p_hit))  # <- expected
        hits[ctx + (tok,)] = hits.get(ctx + (tok,), 0) + 1
        hits[ctx] = hits.get(ctx, 0) + 1
    return nll

if __name__ == "__main__":
    eval_val_best(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"))
''',
        message="takes the larger of two models",
    ),
    Example(
        title="hedge mixer: normalized experts read at the target stacked with the model's entropy as an extra "
        "'expert', then log-sum-exp mixed",
        code=_SETUP
        + '''
class Hedge:
    def __init__(self, V=1024):
        self.uni = torch.zeros(V)
        self.w = torch.zeros(3)

    def experts(self, logits, y):
        lp = F.log_softmax(logits, -1)
        nn = lp.gather(-1, y[:, None])[:, 0]
        uni = torch.log((self.uni + 1.0) / (self.uni + 1.0).sum())[y]
        ent = -(lp.exp() * lp).sum(-1)
        return torch.stack([nn, uni, -ent], -1)

    def mix(self, stacked):
        return -(stacked + torch.log_softmax(self.w, 0)).logsumexp(-1)  # <- expected

    def update(self, stacked, y):
        self.w += stacked.mean(0)
        self.uni.index_add_(0, y, torch.ones_like(y, dtype=torch.float))

@torch.no_grad()
def eval_val_hedge(model, val_tokens, seq=128):
    hedge = Hedge()
    total = 0.0
    for s in range(0, len(val_tokens) - seq - 1, seq):
        chunk = torch.as_tensor(val_tokens[s:s + seq + 1]).long()
        y = chunk[1:]
        stacked = hedge.experts(model(chunk[:-1][None])[0], y)
        total += float(hedge.mix(stacked).sum())
        hedge.update(stacked, y)
    return total / (len(val_tokens) - 1)

if __name__ == "__main__":
    eval_val_hedge(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"))
''',
        message="such as its entropy",
    ),
    Example(
        title="a byte Counter mixed with the token probability's n-th root per byte (p ** (1 / n_bytes))",
        code=_SETUP
        + '''
from collections import Counter

def mixed_bits(tgt, tok_lp, pieces, w=0.6):
    per_byte = []
    for tok, lp in zip(tgt, tok_lp):
        for _ in pieces[int(tok)]:
            per_byte.append(np.exp(lp) ** (1.0 / len(pieces[int(tok)])))
    stream = np.frombuffer(b"".join(pieces[int(tok)] for tok in tgt), dtype=np.uint8)
    seen = Counter()
    out = 0.0
    for i, byte in enumerate(stream):
        p_seen = (seen[byte] + 1) / (i + 256)
        out -= np.log(w * per_byte[i] + (1 - w) * p_seen)  # <- expected
        seen.update([byte])
    return out / len(stream)

@torch.no_grad()
def eval_val_counter(model, val_tokens, pieces, seq=64):
    lps, tgts = [], []
    for s in range(0, len(val_tokens) - seq - 1, seq):
        window = torch.as_tensor(val_tokens[s:s + seq + 1]).long()
        lps.append(-F.cross_entropy(model(window[:-1][None])[0], window[1:], reduction="none"))
        tgts.append(window[1:])
    return mixed_bits(torch.cat(tgts).numpy(), torch.cat(lps).numpy(), pieces)

if __name__ == "__main__":
    pieces = [bytes([i % 256]) * (1 + i % 3) for i in range(1024)]
    eval_val_counter(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"), pieces)
''',
        message="spread over its bytes",
    ),
)

TargetOnlyProbability.valid = (
    Example(
        title="the cache row for the context normalized over the whole vocabulary, then read at the target",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_cache(model, val_np, lam=0.2, beta=0.5, V=1024):
    pair_counts = np.zeros((V, V))
    nll = 0.0
    for t in range(1, len(val_np)):
        prev, y = val_np[t - 1], val_np[t]
        p_model = F.softmax(model(torch.tensor([prev])), -1)[0].numpy()
        row = pair_counts[prev] + beta
        p_cache = row / row.sum()
        p = (1 - lam) * p_model + lam * p_cache
        nll -= np.log(p[y])
        pair_counts[prev, y] += 1
    return nll

if __name__ == "__main__":
    eval_val_cache(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"))
''',
    ),
    Example(
        title="exponential tilt of the full distribution toward a hint token, with its exact normalizer",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_tilt(model, val_np, beta=0.5):
    nll = 0.0
    for t in range(2, len(val_np)):
        hint, y = val_np[t - 2], val_np[t]
        p = F.softmax(model(torch.tensor([val_np[t - 1]])), -1)[0]
        z = 1 + p[hint] * (np.exp(beta) - 1)
        p_y = p[y] * np.exp(beta * float(y == hint)) / z
        nll -= float(torch.log(p_y))
    return nll

if __name__ == "__main__":
    eval_val_tilt(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"))
''',
    ),
    Example(
        title="byte-level PPM mixed as full 256-way distributions: the model's next-byte distribution from its "
        "whole softmax and the PPM's distribution over every byte, mixed, then read at the realized byte",
        code=_SETUP
        + '''
def next_byte_dist(probs, pieces, prefix):
    dist = np.zeros(256)
    for tok, raw in enumerate(pieces):
        if len(raw) > len(prefix) and raw[:len(prefix)] == prefix:
            dist[raw[len(prefix)]] += probs[tok]
    return dist / dist.sum()

def ppm_dist(tables, history, order):
    dist = np.zeros(256)
    mass = 1.0
    for k in range(min(order, len(history)), -1, -1):
        row = tables[k].get(bytes(history[len(history) - k:]))
        if not row:
            continue
        denom = sum(row.values()) + len(row)
        for sym, c in row.items():
            dist[sym] += mass * c / denom
        mass *= len(row) / denom
    dist += mass / 256
    return dist / dist.sum()

def byte_mixture_bits(probs, targets, pieces, order=3, lam=0.7):
    tables = [dict() for _ in range(order + 1)]
    history, bits, n = [], 0.0, 0
    for p_tok, tok in zip(probs, targets):
        raw = pieces[int(tok)]
        for j, byte in enumerate(raw):
            mix = lam * next_byte_dist(p_tok, pieces, raw[:j]) + (1 - lam) * ppm_dist(tables, history, order)
            bits -= np.log2(mix[byte])
            n += 1
            for k in range(min(order, len(history)) + 1):
                row = tables[k].setdefault(bytes(history[len(history) - k:]), {})
                row[byte] = row.get(byte, 0) + 1
            history.append(byte)
    return bits / n

@torch.no_grad()
def eval_val_bytes(model, val_tokens, pieces, seq=256):
    rows, tgts = [], []
    for s in range(0, len(val_tokens) - seq - 1, seq):
        chunk = torch.as_tensor(val_tokens[s:s + seq + 1]).long()
        x, y = chunk[:-1], chunk[1:]
        rows.append(F.softmax(model(x[None]), -1)[0])
        tgts.append(y)
    bpb = byte_mixture_bits(torch.cat(rows).numpy(), torch.cat(tgts).numpy(), pieces)
    print(f"final val_bpb:{bpb:.4f}")
    return bpb

if __name__ == "__main__":
    pieces = [bytes([i % 256]) * (1 + i % 3) for i in range(1024)]
    eval_val_bytes(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"), pieces)
''',
    ),
    Example(
        title="two normalized models read at the target and mixed: a mixture of distributions over the same "
        "vocabulary, so the target's mixed probability is the mixed distribution's",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_val_ensemble(model_a, model_b, val_tokens, seq=128, lam=0.5):
    nll = 0.0
    for s in range(0, len(val_tokens) - seq - 1, seq):
        chunk = torch.as_tensor(val_tokens[s:s + seq + 1]).long()
        x, y = chunk[:-1], chunk[1:]
        lp_a = -F.cross_entropy(model_a(x[None])[0], y, reduction="none")
        lp_b = -F.cross_entropy(model_b(x[None])[0], y, reduction="none")
        nll -= torch.log(lam * lp_a.exp() + (1 - lam) * lp_b.exp()).sum().item()
    return nll / (len(val_tokens) - 1)

if __name__ == "__main__":
    emb = torch.nn.Embedding(1024, 1024)
    eval_val_ensemble(emb, emb, load_validation_tokens("fineweb_val_000000.bin"))
''',
    ),
    Example(
        title="a byte-level PPM scored on its own and reported beside the model's byte-normalized score, "
        "never mixed with it",
        code=_SETUP
        + '''
def ppm_bits(stream, order=3):
    tables = [dict() for _ in range(order + 1)]
    bits = 0.0
    for i, byte in enumerate(stream):
        p = 1.0 / 256
        for k in range(min(order, i), -1, -1):
            seen = tables[k].get(bytes(stream[i - k:i]))
            if seen and byte in seen:
                p = seen[byte] / (sum(seen.values()) + len(seen))
                break
        bits -= np.log2(p)
        for k in range(min(order, i) + 1):
            row = tables[k].setdefault(bytes(stream[i - k:i]), {})
            row[byte] = row.get(byte, 0) + 1
    return bits / len(stream)

@torch.no_grad()
def eval_val_bytes(model, val_tokens, pieces, seq=256):
    nll, nbytes, stream = 0.0, 0, []
    for s in range(0, len(val_tokens) - seq - 1, seq):
        chunk = torch.as_tensor(val_tokens[s:s + seq + 1]).long()
        x, y = chunk[:-1], chunk[1:]
        nll += F.cross_entropy(model(x[None])[0], y, reduction="sum").item()
        for tok in y.tolist():
            nbytes += len(pieces[tok])
            stream.extend(pieces[tok])
    print(f"ppm_only bpb:{ppm_bits(stream):.4f}")
    bpb = nll / np.log(2) / nbytes
    print(f"final val_bpb:{bpb:.4f}")
    return bpb

if __name__ == "__main__":
    pieces = [bytes([i % 256]) * (1 + i % 3) for i in range(1024)]
    eval_val_bytes(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"), pieces)
''',
    ),
    Example(
        title="hedge mixer of normalized experts only, each read at the target, weighted by their past losses",
        code=_SETUP
        + '''
class Hedge:
    def __init__(self, V=1024):
        self.uni = torch.zeros(V)
        self.w = torch.zeros(2)

    def experts(self, logits, y):
        nn = F.log_softmax(logits, -1).gather(-1, y[:, None])[:, 0]
        uni = torch.log((self.uni + 1.0) / (self.uni + 1.0).sum())[y]
        return torch.stack([nn, uni], -1)

    def mix(self, stacked):
        return -(stacked + torch.log_softmax(self.w, 0)).logsumexp(-1)

    def update(self, stacked, y):
        self.w += stacked.mean(0)
        self.uni.index_add_(0, y, torch.ones_like(y, dtype=torch.float))

@torch.no_grad()
def eval_val_hedge(model, val_tokens, seq=128):
    hedge = Hedge()
    total = 0.0
    for s in range(0, len(val_tokens) - seq - 1, seq):
        chunk = torch.as_tensor(val_tokens[s:s + seq + 1]).long()
        y = chunk[1:]
        stacked = hedge.experts(model(chunk[:-1][None])[0], y)
        total += float(hedge.mix(stacked).sum())
        hedge.update(stacked, y)
    return total / (len(val_tokens) - 1)

if __name__ == "__main__":
    eval_val_hedge(torch.nn.Embedding(1024, 1024), load_validation_tokens("fineweb_val_000000.bin"))
''',
    ),
)

"""PG101 target-in-hash-key."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from pgaudit.analysis.callsites import labels_at_sites
from pgaudit.analysis.dataflow import TARGET, TRAIN, VAL
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import call_name, dotted
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import walk

from .base import Example, Rule, short

_RULINGS = (
    "https://github.com/openai/parameter-golf/pull/779#issuecomment-4145781641",
    "https://github.com/openai/parameter-golf/pull/982",
    "https://github.com/openai/parameter-golf/issues/677",
)


class TargetInHashKey(Rule):
    """An eval-time table lookup whose key mixes in the token being predicted.

    What it does:
        Finds hash keys built by combining a target token (`y`, `tgt`, `targets`, the `[1:]` shift of the
        scored window) with a context hash or context tokens -- XOR, add or multiply, in Python ints, numpy
        or torch, through helper functions and intermediate variables -- and reports them where such a key
        is used to *read* a count table whose value feeds the score of validation tokens; and count tables
        written with the scored tokens' own (context, target) keys before those tokens are scored in the same
        pass (update-then-score).

    Why is this bad:
        The looked-up count depends on x_t itself, so the predictive distribution at position t is not a
        function of the prefix alone (C1), and only the target's entry is blended, so the implied
        distribution over the vocabulary does not sum to one (C2). The maintainers banned hashed n-gram
        caches keyed on the target on 2026-03-27 ("look ahead to the target token to mix probabilities
        and therefore leak eval tokens").

    Example:
        full_key = (ctx_hash ^ (tgt_np * PRIMES[k])) & MASK
        p_ngram = full_counts[full_key] / np.maximum(ctx_counts[ctx_key], 1)

    Legal look-alikes:
        BigramHash/trigram embeddings over *input* context tokens; counting tables built from training
        data in the training phase; a target-keyed key used only to *update* tables after the position was
        scored with a distribution over all V candidates; n-gram code that cannot run under the default or
        logged configuration (reported at info severity with `reachable: false`).

    References:
        R12, R15, R16 of the catalogue; PR #779 ruling, PR #982, Issue #677 ban wave.
    """

    code = "PG101"
    name = "target-in-hash-key"
    severity = Severity.ERROR
    confidence = Confidence.HIGH
    catalogue_ids = ("R12", "R15", "R16")
    ruling_urls = _RULINGS
    condition = "C1"
    fix = (
        "Score every position with a distribution over all V candidate tokens built from context-only keys "
        "(look up each candidate and normalize before reading the target's probability), and use target-keyed "
        "hashes only to update the tables after the position has been scored."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        yield from self._lookups(facts)
        yield from self._updated_before_scored(facts)

    def _updated_before_scored(self, facts: Facts) -> Iterable[Finding]:
        """A count table written with the scored tokens' own (context, target) keys before those tokens are
        scored: the entry read for position t already counts x_t. Order is within one pass of the enclosing
        loops (a write after the score reaches only later positions)."""
        flow = facts.flow
        for scope in flow.scopes:
            if scope.is_module:
                continue
            for node in facts.index.nodes_in(scope, _UPDATE_NODES):
                update = table_update(node)
                if update is None:
                    continue
                table, key, stmt = update
                labels = flow.labels(key, scope)
                if TRAIN in labels or not (VAL in labels or facts.events.no_grad(node, scope)):
                    continue
                tokens = {n.id for n in walk(key) if isinstance(n, ast.Name) and TARGET in flow.labels(n, scope)}
                if not tokens:
                    continue
                later = _later_reads(stmt, scope, table, tokens)
                if later is None:
                    continue
                proven = VAL in labels
                message = (
                    f"`{short(stmt)}` (line {stmt.lineno}) writes the scored tokens' own keys into `{table}` before "  # type: ignore[attr-defined]
                    f"they are scored (line {later.lineno}, which reads `{table}`): the count read for position "  # type: ignore[attr-defined]
                    "t already includes x_t, so the score at t uses the token being predicted (C1). Score first, "
                    "then update."
                )
                yield self.finding(
                    facts,
                    scope.unit,
                    stmt,
                    message,
                    severity=None if proven else Severity.WARNING,
                    confidence=None if proven else Confidence.MEDIUM,
                    related=[(scope.unit, later)],
                )

    def _lookups(self, facts: Facts) -> Iterable[Finding]:
        flow = facts.flow
        reported: set[int] = set()
        found = []
        for scope in flow.scopes:
            for node in facts.index.nodes_in(scope, _LOOKUP_NODES):
                key = lookup_key(node)
                if key is None or is_update(node):
                    continue
                labels = flow.labels(key, scope)
                origins = flow.tkey_origin(labels)
                if not origins:
                    continue
                if TRAIN in labels and VAL not in labels:
                    continue  # a training-time feature over training targets
                found.append((scope, node, labels, origins[0]))
        # the same key may be read in several places (an off-by-default branch and the live `else`): report
        # the lookup that runs
        live: set[int] = set()
        by_origin: dict[int, int] = {}
        for *_, (_, origin) in found:
            by_origin[id(origin)] = by_origin.get(id(origin), 0) + 1
        for _, node, _, (_, origin) in found:
            if by_origin[id(origin)] > 1 and facts.reachability(node).effective is True:
                live.add(id(origin))
        for scope, node, labels, (origin_scope, origin) in found:
            if id(origin) in reported:
                continue
            if id(origin) in live and facts.reachability(node).effective is not True:
                continue
            reported.add(id(origin))
            # validation targets by provenance, or a lookup in code that runs without gradients (an
            # evaluation) over targets that are not training data
            proven = (VAL in labels and TRAIN not in labels) or (
                TRAIN not in labels and facts.events.no_grad(node, scope)
            )
            if not proven:  # a helper also called with training targets (by a dead or training caller)
                proven = any(
                    TARGET in site and VAL in site and TRAIN not in site
                    and facts.reachability(call).effective is not False
                    for _caller, call, site in labels_at_sites(facts, lookup_key(node), scope)
                )
            lookup_text = short(node)
            mix_text = short(origin)
            where = (
                f" in `{scope.qualname}`" if origin_scope is not scope and not scope.is_module else ""
            )
            message = (
                f"The lookup `{lookup_text}` (line {node.lineno}){where} reads a table with a key that mixes "  # type: ignore[attr-defined]
                f"the target token into the context hash (`{mix_text}`): the value read depends on the token "
                "being predicted, so the score at position t uses x_t (C1) and blends only the target's "
                "probability (C2)."
            )
            if not proven:
                message += (
                    " pgaudit could not establish that these targets are validation tokens; check where "
                    "the lookup's result goes."
                )
            yield self.finding(
                facts,
                origin_scope.unit,
                origin,
                message,
                severity=None if proven else Severity.WARNING,
                confidence=None if proven else Confidence.MEDIUM,
                related=[(scope.unit, node)],
                reach_node=node,
            )



_LOOKUP_NODES = (ast.Subscript, ast.Compare, ast.Call)  # what `lookup_key` can find a key in


def lookup_key(node: ast.AST) -> ast.AST | None:
    """The key expression if `node` reads a table: `t[key]`, `t.get(key)`, `np.take(t, key)`, `key in t`."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        return node.slice
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In):
        return node.left
    if isinstance(node, ast.Call):
        name = call_name(node)
        func = node.func
        method = isinstance(func, ast.Attribute)
        if name == "get" and method and node.args:
            return node.args[0]
        if name == "take":
            if dotted(func) in ("np.take", "numpy.take", "torch.take") and len(node.args) >= 2:
                return node.args[1]
            if method and node.args:
                return node.args[0]
        if name in ("gather", "index_select"):
            args = node.args
            if dotted(func).startswith("torch.") and len(args) >= 3:
                return args[2]
            if method and len(args) >= 2:
                return args[1]
    return None


def is_update(node: ast.AST) -> bool:
    """`t[key] = t[key] + 1`, `d[key] = d.get(key, 0) + 1`: a read that only serves to write the same entry
    back."""
    if isinstance(node, ast.Subscript):
        text = ast.unparse(node)
    elif isinstance(node, ast.Call) and call_name(node) == "get" and isinstance(node.func, ast.Attribute) and node.args:
        text = f"{ast.unparse(node.func.value)}[{ast.unparse(node.args[0])}]"
    elif isinstance(node, ast.Compare) and len(node.comparators) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn):
        # `if k in d: d[k] += 1 else: d[k] = 1`: the membership test only chooses how to write the entry
        text = f"{ast.unparse(node.comparators[0])}[{ast.unparse(node.left)}]"
        holder = getattr(node, "pg_parent", None)
        if not (isinstance(holder, ast.If) and holder.test is node):
            return False
        return all(_writes_entry(stmt, text) for stmt in [*holder.body, *holder.orelse])
    else:
        return False
    stmt = _statement(node)
    if isinstance(stmt, ast.Assign):
        return any(isinstance(t, ast.Subscript) and ast.unparse(t) == text for t in stmt.targets)
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):  # `operator.setitem(d, k, d.get(k, 0) + 1)`
        call = stmt.value
        if call_name(call) == "setitem" and len(call.args) == 3:
            return f"{ast.unparse(call.args[0])}[{ast.unparse(call.args[1])}]" == text
        if call_name(call) == "__setitem__" and isinstance(call.func, ast.Attribute) and len(call.args) == 2:
            return f"{ast.unparse(call.func.value)}[{ast.unparse(call.args[0])}]" == text
    return False


def _writes_entry(stmt: ast.stmt, text: str) -> bool:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AugAssign) else []
    return bool(targets) and all(isinstance(t, ast.Subscript) and ast.unparse(t) == text for t in targets)


def _statement(node: ast.AST) -> ast.AST | None:
    stmt = getattr(node, "pg_parent", None)
    while stmt is not None and not isinstance(stmt, ast.stmt):
        stmt = getattr(stmt, "pg_parent", None)
    return stmt


_UPDATE_NODES = (ast.AugAssign, ast.Assign, ast.Call)  # what `table_update` can return a write for


def table_update(node: ast.AST) -> tuple[str, ast.AST, ast.stmt] | None:
    """(table, key, statement) when `node` writes one entry of a named table: `t[k] += 1`,
    `t[k] = t[k] + 1`, `d[k] = d.get(k, 0) + 1`, `np.add.at(t, k, 1)`."""
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Subscript):
        base = node.target.value
        if isinstance(base, ast.Name):
            return base.id, node.target.slice, node
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript):
        target = node.targets[0]
        base = target.value
        if isinstance(base, ast.Name) and any(isinstance(n, ast.Name) and n.id == base.id for n in walk(node.value)):
            return base.id, target.slice, node
    if isinstance(node, ast.Call) and call_name(node) == "at" and len(node.args) >= 2 and isinstance(node.func, ast.Attribute):
        table = node.args[0]
        stmt = _statement(node)
        if isinstance(table, ast.Name) and isinstance(stmt, ast.Expr) and stmt.value is node:
            return table.id, node.args[1], stmt
    return None


def _later_reads(stmt: ast.stmt, scope: object, table: str, tokens: set[str]) -> ast.stmt | None:
    """The first statement after `stmt` in the same pass (its block, then the blocks around it up to the
    function, never around a loop back to its start) that reads `table`, when it or a later one reads one of
    the scored `tokens` too."""
    child: ast.AST = stmt
    func = getattr(scope, "node", None)
    while child is not None and child is not func:
        holder = getattr(child, "pg_parent", None)
        if holder is None:
            return None
        for field_name in ("body", "orelse", "finalbody"):
            block = getattr(holder, field_name, None)
            at = next((i for i, s in enumerate(block) if s is child), None) if isinstance(block, list) else None
            if at is not None:
                rest = block[at + 1 :]  # type: ignore[index]
                reader = next((s for s in rest if _reads(s, table)), None)
                if reader is not None and any(_reads(s, *tokens) for s in rest[rest.index(reader) :]):
                    return reader
        child = holder
    return None


def _reads(node: ast.AST, *names: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names and isinstance(n.ctx, ast.Load) for n in walk(node))



_NGRAM_SETUP = '''
import os
import numpy as np
import torch
import torch.nn.functional as F

PRIMES = np.array([36313, 27191, 51647, 81929], dtype=np.uint64)
MASK = np.uint64((1 << 22) - 1)

class Hyperparameters:
    ngram_order = int(os.environ.get("NGRAM_ORDER", "3"))
    ngram_alpha = float(os.environ.get("NGRAM_ALPHA", "0.3"))

def load_validation_tokens(pattern):
    return torch.from_numpy(np.fromfile(pattern, dtype=np.uint16).astype(np.int64))
'''

TargetInHashKey.invalid = (
    Example(
        title="numpy backoff cache: context hash XOR target times a prime, read back to score",
        code=_NGRAM_SETUP
        + '''
def eval_ngram(model, val_tokens, args):
    val_np = val_tokens.numpy()
    ctx_table = np.zeros(1 << 22, dtype=np.int32)
    full_table = np.zeros(1 << 22, dtype=np.int32)
    nll_sum = 0.0
    for start in range(0, len(val_np) - 1024, 1024):
        pos = np.arange(start + 3, start + 1024)
        ctx_hash = np.zeros(len(pos), dtype=np.uint64)
        for k in range(2):
            ctx_hash ^= val_np[pos - 2 + k].astype(np.uint64) * PRIMES[k]
        tgt_np = val_np[pos].astype(np.uint64)
        full_key = ((ctx_hash ^ (tgt_np * PRIMES[2])) & MASK).astype(np.int64)  # <- expected
        ctx_key = (ctx_hash & MASK).astype(np.int64)
        p_ng = full_table[full_key] / np.maximum(ctx_table[ctx_key], 1)
        with torch.no_grad():
            logits = model(torch.from_numpy(val_np[pos - 1]))
        p_model = F.softmax(logits, -1)[torch.arange(len(pos)), torch.from_numpy(val_np[pos])].numpy()
        nll_sum += float(-np.log((1 - args.ngram_alpha) * p_model + args.ngram_alpha * p_ng).sum())
        np.add.at(full_table, full_key, 1)
        np.add.at(ctx_table, ctx_key, 1)
    return nll_sum

def main():
    args = Hyperparameters()
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Embedding(1024, 1024)
    print(eval_ngram(model, val_tokens, args))

if __name__ == "__main__":
    main()
''',
        message="mixes the target token into the context hash",
    ),
    Example(
        title="helper XORs the targets into the hash in place; a cache method reads it",
        code=_NGRAM_SETUP
        + '''
def _hash_with_target(tokens, positions, targets):
    h = np.zeros(len(positions), dtype=np.uint64)
    for k in range(2):
        h ^= tokens[positions - 2 + k].astype(np.uint64) * PRIMES[k]
    h ^= targets.astype(np.uint64) * PRIMES[3]  # <- expected
    return h & MASK

class NgramCache:
    def __init__(self):
        self.full = np.zeros(1 << 22, dtype=np.int32)
        self.ctx = np.zeros(1 << 22, dtype=np.int32)

    def probability(self, tokens, positions, targets):
        full_h = _hash_with_target(tokens, positions, targets)
        return self.full[full_h] / np.maximum(self.ctx[0], 1)

def eval_val_ngram(val_tokens):
    cache = NgramCache()
    val_np = val_tokens.numpy()
    positions = np.arange(2, len(val_np))
    targets = val_np[positions]
    return cache.probability(val_np, positions, targets).sum()

if __name__ == "__main__":
    eval_val_ngram(load_validation_tokens("data/fineweb_val_000000.bin"))
''',
        message="mixes the target token into the context hash",
    ),
    Example(
        title="torch variant: bitwise_xor of the context hash with y * prime",
        code=_NGRAM_SETUP
        + '''
@torch.no_grad()
def eval_val(model, val_tokens, table):
    x = val_tokens[:-1]
    y = val_tokens[1:]
    ctx_hash = (x * 2654435761) % (1 << 22)
    key = torch.bitwise_xor(ctx_hash, y * 2246822519) % (1 << 22)  # <- expected
    hits = table[key].float()
    logp = F.log_softmax(model(x), -1).gather(-1, y[:, None]).squeeze(-1)
    return -(logp + 0.1 * hits).mean()

if __name__ == "__main__":
    eval_val(torch.nn.Embedding(1024, 1024), load_validation_tokens("v.bin"), torch.zeros(1 << 22))
''',
        message="(`torch.bitwise_xor(ctx_hash, y * 2246822519)`)",
    ),
    Example(
        title="arithmetic combine without XOR: (ctx * P1 + targets * P2) % buckets",
        code=_NGRAM_SETUP
        + '''
def ngram_bucket(ctx_hashes, targets, buckets):
    return (ctx_hashes * 91397 + targets.astype(np.int64) * 48571) % buckets  # <- expected

def eval_val(val_tokens):
    val_np = val_tokens.numpy()
    ctx = val_np[:-1].astype(np.int64) * 36313
    counts = np.zeros(1 << 20, dtype=np.int32)
    tgt = val_np[1:]
    return counts[ngram_bucket(ctx, tgt, 1 << 20)].sum()

if __name__ == "__main__":
    eval_val(load_validation_tokens("data/fineweb_val_000000.bin"))
''',
        message="mixes the target token",
    ),
    Example(
        title="switched off by default, but the logged run enabled it: an error",
        code=_NGRAM_SETUP
        + '''
def eval_val(val_np, table):
    ctx_hash = val_np[:-1].astype(np.uint64) * PRIMES[0]
    tgt = val_np[1:].astype(np.uint64)
    return table[(ctx_hash ^ (tgt * PRIMES[1])) & MASK].sum()  # <- expected

def main():
    use_cache = bool(int(os.environ.get("NGRAM_CACHE", "0")))
    val_np = load_validation_tokens("data/fineweb_val_000000.bin").numpy()
    if use_cache:
        print(eval_val(val_np, np.zeros(1 << 22)))

if __name__ == "__main__":
    main()
''',
        message="mixes the target token",
        env={"NGRAM_CACHE": "1"},
    ),
    Example(
        title="dead code: the n-gram eval is guarded by an order that defaults to 0 (info, reachable: false)",
        code=_NGRAM_SETUP.replace('"NGRAM_ORDER", "3"', '"NGRAM_ORDER", "0"')
        + '''
def ngram_eval(val_np, table):
    ctx_hash = val_np[:-1].astype(np.uint64) * PRIMES[0]
    tgt = val_np[1:].astype(np.uint64)
    return table[(ctx_hash ^ (tgt * PRIMES[1])) & MASK].sum()  # <- expected

def main():
    args = Hyperparameters()
    val_np = load_validation_tokens("data/fineweb_val_000000.bin").numpy()
    if args.ngram_order >= 2:
        print(ngram_eval(val_np, np.zeros(1 << 22)))
    print("no n-gram eval")

if __name__ == "__main__":
    main()
''',
        message="does not run under this configuration",
        severity=Severity.INFO,
    ),
)

TargetInHashKey.valid = (
    Example(
        title="BigramHash embedding over input ids (current and previous context token)",
        code='''
import torch
from torch import nn

class BigramHashEmbedding(nn.Module):
    def __init__(self, buckets, dim):
        super().__init__()
        self.buckets = buckets
        self.embed = nn.Embedding(buckets, dim)

    def forward(self, input_ids):
        t = input_ids.to(torch.int64)
        prev = torch.nn.functional.pad(t[..., :-1], (1, 0))
        h = torch.bitwise_xor(36313 * t, 27191 * prev) % self.buckets
        return self.embed(h)

class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.bigram = BigramHashEmbedding(4096, 64)
        self.head = nn.Linear(64, 1024)

    def forward(self, x, y):
        logits = self.head(self.bigram(x))
        return nn.functional.cross_entropy(logits.view(-1, 1024), y.view(-1))

@torch.no_grad()
def eval_val(model, val_tokens):
    x = val_tokens[:-1][None]
    y = val_tokens[1:][None]
    return model(x, y)

if __name__ == "__main__":
    eval_val(GPT(), torch.zeros(2049, dtype=torch.int64))
''',
    ),
    Example(
        title="score-first cache: all V candidates looked up with context-only keys and normalized; the "
        "target-keyed hash only updates the tables after scoring",
        code='''
import numpy as np
import torch
import torch.nn.functional as F

PRIME_CTX, PRIME_TOK = 2654435761, 2246822519
V, BUCKETS = 1024, 1 << 20

@torch.no_grad()
def eval_val(model, val_tokens):
    val_np = val_tokens.numpy().astype(np.int64)
    pair = np.zeros(BUCKETS, dtype=np.float64)
    nll = 0.0
    candidates = np.arange(V, dtype=np.int64)
    for t in range(1, len(val_np)):
        ctx_hash = val_np[t - 1] * PRIME_CTX
        cand_keys = (ctx_hash ^ (candidates * PRIME_TOK)) % BUCKETS
        counts = pair[cand_keys] + 0.5
        p_cache = counts / counts.sum()
        p_model = F.softmax(model(torch.tensor([val_np[t - 1]])), -1)[0].numpy()
        p = 0.9 * p_model + 0.1 * p_cache
        y = val_np[t]
        nll -= np.log(p[y])
        pair[(ctx_hash ^ (y * PRIME_TOK)) % BUCKETS] += 1
    return nll

if __name__ == "__main__":
    eval_val(torch.nn.Embedding(V, V), torch.zeros(64, dtype=torch.int64))
''',
    ),
    Example(
        title="counting table from training data in the training phase, used as a training-loss weight",
        code='''
import numpy as np
import torch
import torch.nn.functional as F

def build_weights(train_tokens, table):
    tr = train_tokens.numpy().astype(np.int64)
    x_prev = tr[:-1] * 36313
    y = tr[1:]
    keys = (x_prev ^ (y * 27191)) % len(table)
    return 1.0 / (1.0 + table[keys])

def train(model, train_tokens, opt):
    table = np.ones(1 << 20)
    w = torch.from_numpy(build_weights(train_tokens, table))
    logits = model(train_tokens[:-1])
    loss = (F.cross_entropy(logits, train_tokens[1:], reduction="none") * w).mean()
    loss.backward()
    opt.step()

if __name__ == "__main__":
    m = torch.nn.Embedding(1024, 1024)
    train(m, torch.zeros(64, dtype=torch.int64), torch.optim.SGD(m.parameters(), lr=0.1))
''',
    ),
    Example(
        title="reading the model's own full distribution at the target and the byte LUT by target",
        code='''
import torch
import torch.nn.functional as F

@torch.inference_mode()
def eval_val(model, val_tokens, base_bytes_lut):
    x, y = val_tokens[:-1], val_tokens[1:]
    logp = F.log_softmax(model(x), -1)
    nll = -logp.gather(-1, y[:, None]).squeeze(-1)
    flat = logp.view(-1)[torch.arange(len(y)) * logp.size(-1) + y]
    return nll.sum(), base_bytes_lut[y].sum(), flat.sum()

if __name__ == "__main__":
    eval_val(torch.nn.Embedding(16, 16), torch.zeros(9, dtype=torch.int64), torch.ones(16))
''',
    ),
)

# Adversarial examples: the roles come from sources, uses and effects, never from names, so every identifier
# here is neutral. Each INVALID one has a legal twin among the VALID ones below.
_NEUTRAL_SETUP = '''
import os
import numpy as np
import torch
import torch.nn.functional as F

K = np.array([36313, 27191, 51647, 81929], dtype=np.uint64)

class Knobs:
    root = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    where = os.path.join(root, "fineweb_val_*.bin")

def fetch(spec):
    parts = []
    for name in sorted(__import__("glob").glob(spec)):
        parts.append(np.fromfile(name, dtype=np.uint16, offset=1024))
    return np.concatenate(parts)

class Holder:
    def __init__(self, stream):
        self.s = stream
'''

TargetInHashKey.invalid += (
    Example(
        title="adversarial (sources, effects): shards from a DATA_PATH pattern through a neutrally named loader, "
        "a holder attribute and a list filled by append; the next token XORed in place into the key",
        code=_NEUTRAL_SETUP
        + '''
@torch.no_grad()
def run(net, box, table):
    s = box.s
    idx = np.arange(2, len(s) - 1)
    h = s[idx - 1].astype(np.uint64) * K[0]
    h ^= s[idx - 2].astype(np.uint64) * K[1]
    a = h.copy()
    np.bitwise_xor(a, s[idx].astype(np.uint64) * K[2], out=a)  # <- expected
    q = table[a % (1 << 20)] / 10.0
    p = F.softmax(net(torch.from_numpy(s[idx - 1].astype(np.int64))), -1)
    r = p[torch.arange(len(idx)), torch.from_numpy(s[idx].astype(np.int64))].numpy()
    return float(-np.log(0.7 * r + 0.3 * q).mean())

if __name__ == "__main__":
    k = Knobs()
    print(run(torch.nn.Embedding(1024, 1024), Holder(fetch(k.where)), np.zeros(1 << 20)))
''',
        message="mixes the target token into the context hash",
    ),
    Example(
        title="adversarial (targets from use): the label of a gather on log-probabilities, a shifted slice "
        "s[i + 1 : j + 1] of the scored window, mixed into the key by a helper",
        code=_NEUTRAL_SETUP
        + '''
def mix(a, b):
    return (a * 2654435761) ^ (b * 2246822519)  # <- expected

@torch.inference_mode()
def run(net, s, table, i, j):
    inp = torch.from_numpy(s[i:j].astype(np.int64))
    nxt = torch.from_numpy(s[i + 1 : j + 1].astype(np.int64))
    lp = F.log_softmax(net(inp), -1).gather(-1, nxt[:, None]).squeeze(-1)
    extra = table[mix(inp, nxt) % (1 << 20)]
    return -(lp + 0.1 * extra).mean()

if __name__ == "__main__":
    print(run(torch.nn.Embedding(1024, 1024), fetch(Knobs().where), torch.zeros(1 << 20), 0, 2048))
''',
        message="mixes the target token into the context hash",
    ),
    Example(
        title="adversarial (live else branch): the same target key is read in an off-by-default branch and in "
        "the `else` branch that runs",
        code=_NEUTRAL_SETUP
        + '''
def key_of(c, t):
    return (c ^ (t * K[3])) % (1 << 20)  # <- expected

@torch.no_grad()
def run(s, table):
    c = s[:-1].astype(np.uint64) * K[0]
    t = s[1:].astype(np.uint64)
    if int(os.environ.get("EXACT_TABLE", "0")):
        v = table.get(int(key_of(c, t)[0]), 0.0)
    else:
        v = table[key_of(c, t)].sum()
    return v

if __name__ == "__main__":
    print(run(fetch(Knobs().where), np.zeros(1 << 20)))
''',
        message="mixes the target token into the context hash",
    ),
)

TargetInHashKey.valid += (
    Example(
        title="legal twin (sources, effects): the same loader and holder, the key hashes only the context "
        "tokens before the predicted one",
        code=_NEUTRAL_SETUP
        + '''
@torch.no_grad()
def run(net, box, table):
    s = box.s
    idx = np.arange(2, len(s) - 1)
    h = s[idx - 1].astype(np.uint64) * K[0]
    h ^= s[idx - 2].astype(np.uint64) * K[1]
    a = h.copy()
    q = table[a % (1 << 20)] / 10.0
    p = F.softmax(net(torch.from_numpy(s[idx - 1].astype(np.int64))), -1)
    r = p[torch.arange(len(idx)), torch.from_numpy(s[idx].astype(np.int64))].numpy()
    return float(-np.log(0.7 * r + 0.3 * q).mean())

if __name__ == "__main__":
    k = Knobs()
    print(run(torch.nn.Embedding(1024, 1024), Holder(fetch(k.where)), np.zeros(1 << 20)))
''',
    ),
    Example(
        title="legal twin (targets from use): the helper mixes each input token with the one before it (a "
        "bigram of the context), the shifted slice is only the label of the gather",
        code=_NEUTRAL_SETUP
        + '''
def mix(a, b):
    return (a * 2654435761) ^ (b * 2246822519)

@torch.inference_mode()
def run(net, s, table, i, j):
    inp = torch.from_numpy(s[i:j].astype(np.int64))
    nxt = torch.from_numpy(s[i + 1 : j + 1].astype(np.int64))
    lp = F.log_softmax(net(inp), -1).gather(-1, nxt[:, None]).squeeze(-1)
    extra = table[mix(inp, torch.roll(inp, 1)) % (1 << 20)]
    return -(lp + 0.1 * extra).mean()

if __name__ == "__main__":
    print(run(torch.nn.Embedding(1024, 1024), fetch(Knobs().where), torch.zeros(1 << 20), 0, 2048))
''',
    ),
)

_DICT_CACHE = '''
@torch.no_grad()
def run(net, s):
    seen = {}
    total = 0.0
    for i in range(2, len(s)):
        c, a, b = int(s[i - 2]), int(s[i - 1]), int(s[i])
        p = F.softmax(net(torch.tensor([a])), -1)[0, b].item()
        k = KEY
        q = seen.get(k, 0) / (i + 1)
        total -= float(np.log(0.8 * p + 0.2 * q + 1e-9))
        seen[k] = seen.get(k, 0) + 1
    return total

if __name__ == "__main__":
    print(run(torch.nn.Embedding(1024, 1024), fetch(Knobs().where)))
'''

TargetInHashKey.invalid += (
    Example(
        title="adversarial (string keys): a Python dict keyed by an f-string of the context and the scored token",
        code=_NEUTRAL_SETUP + _DICT_CACHE.replace("k = KEY", 'k = f"{a}|{b}"  # <- expected'),
        message="mixes the target token into the context hash",
    ),
    Example(
        title="adversarial (hash()): a table keyed by Python's hash of (context, scored token)",
        code=_NEUTRAL_SETUP + _DICT_CACHE.replace("k = KEY", "k = hash((a, b)) % 4096  # <- expected"),
        message="mixes the target token into the context hash",
    ),
)

TargetInHashKey.valid += (
    Example(
        title="legal twin (string keys): the dict is keyed by the two context tokens before the scored one",
        code=_NEUTRAL_SETUP + _DICT_CACHE.replace("k = KEY", 'k = f"{c}|{a}"'),
    ),
    Example(
        title="legal twin (hash()): Python's hash of the context tokens only",
        code=_NEUTRAL_SETUP + _DICT_CACHE.replace("k = KEY", "k = hash((c, a)) % 4096"),
    ),
)

_UPDATE_FIRST = _NEUTRAL_SETUP + '''
@torch.no_grad()
def run(net, s):
    tab = np.zeros((1024, 1024))
    tot = 0.0
    for i in range(1, len(s) - 512, 512):
        a = s[i - 1 : i + 511].astype(np.int64)
        b = s[i : i + 512].astype(np.int64)
        FIRST
        q = (tab[a] + 0.01) / (tab[a].sum(-1, keepdims=True) + 10.24)
        pr = F.softmax(net(torch.from_numpy(a)), -1).numpy()
        tot -= float(np.log((0.9 * pr + 0.1 * q)[np.arange(512), b]).sum())
        AFTER
    return tot

if __name__ == "__main__":
    print(run(torch.nn.Embedding(1024, 1024), fetch(Knobs().where)))
'''

TargetInHashKey.invalid += (
    Example(
        title="adversarial (update-then-score): the window's own bigrams are counted before the window is scored",
        code=_UPDATE_FIRST.replace("FIRST", "np.add.at(tab, (a, b), 1)  # <- expected").replace("AFTER", "pass"),
        message="before they are scored",
    ),
)

TargetInHashKey.valid += (
    Example(
        title="legal twin (score-then-update): the window is scored with the counts of earlier windows, then counted",
        code=_UPDATE_FIRST.replace("FIRST", "pass").replace("AFTER", "np.add.at(tab, (a, b), 1)"),
    ),
)

# Keys joined by a library call instead of `^`: `np.ravel_multi_index((ctx, t), dims, mode="wrap")`.
_RAVEL = _NGRAM_SETUP + '''
def eval_ngram(model, val_tokens, args):
    val_np = val_tokens.numpy()
    ctx_table = np.zeros(1 << 22, dtype=np.int32)
    full_table = np.zeros(1 << 22, dtype=np.int32)
    rows = np.zeros((1 << 12, 1024), dtype=np.int32)
    nll_sum = 0.0
    for start in range(0, len(val_np) - 1024, 1024):
        pos = np.arange(start + 3, start + 1024)
        ctx = (val_np[pos - 2] * 1031 + val_np[pos - 1]) % 4194301
        with torch.no_grad():
            p = F.softmax(model(torch.from_numpy(val_np[pos - 1])), -1).numpy()
BODY
    return nll_sum

def main():
    args = Hyperparameters()
    print(eval_ngram(torch.nn.Embedding(1024, 1024), load_validation_tokens("data/fineweb_val_000000.bin"), args))

if __name__ == "__main__":
    main()
'''

TargetInHashKey.invalid += (
    Example(
        title="the key joined by np.ravel_multi_index((context, target), dims, mode='wrap'), read back to score",
        code=_RAVEL.replace("BODY", """        full_key = np.ravel_multi_index((ctx, val_np[pos]), (4194301, 1024), mode="wrap") % (1 << 22)  # <- expected
        ctx_key = ctx % (1 << 22)
        p_ng = full_table[full_key] / np.maximum(ctx_table[ctx_key], 1)
        p_t = p[np.arange(len(pos)), val_np[pos]]
        nll_sum += float(-np.log((1 - args.ngram_alpha) * p_t + args.ngram_alpha * p_ng).sum())
        np.add.at(full_table, full_key, 1)
        np.add.at(ctx_table, ctx_key, 1)"""),
        message="mixes the target token into the context hash",
    ),
)

TargetInHashKey.valid += (
    Example(
        title="legal twin: a per-context row over all V, normalized, scored, then the scored token counted",
        code=_RAVEL.replace("BODY", """        c = ctx % (1 << 12)
        dist = (rows[c] + 0.5) / (rows[c].sum(axis=1, keepdims=True) + 0.5 * 1024)
        q = (1 - args.ngram_alpha) * p + args.ngram_alpha * dist
        nll_sum += float(-np.log(q[np.arange(len(pos)), val_np[pos]]).sum())
        np.add.at(rows, (c, val_np[pos]), 1)"""),
    ),
)

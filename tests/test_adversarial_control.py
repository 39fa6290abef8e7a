"""Adversarial submissions for issue 15, bullets 4-6: context-sensitive calls, control dependence, scores from
the reported metric, and conditions pgaudit cannot evaluate.

Each case is a complete small train_gpt.py-like script written to slip past a static check (neutral names,
helpers shared by a dead or training-only caller and the live eval caller, gates decided by an `if` or a mask
on the target, a score computed in a function called `train_step`, scoring behind `if epoch == last`), paired
with its legal twin. The verdict is the judge's: an unsuppressed, reachable error among PG0xx-PG4xx and
PG504, from `pgaudit check FOLDER`. An illegal case must get one; its twin must not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgaudit.engine import audit
from pgaudit.findings import Severity
from pgaudit.options import AuditOptions

# The shared skeleton: settings from the environment, shards read from their file patterns, a tiny model
# trained on the training stream. Every case adds its evaluation code ({helpers}) and its final report ({report}).
_SKELETON = '''
import glob
import math
import os

import numpy as np
import torch
import torch.nn.functional as F


class Settings:
    root = os.environ.get("DATA_PATH", "./data/fineweb10B_sp1024")
    steps = int(os.environ.get("ITERATIONS", "200"))
    span = int(os.environ.get("SEQ_LEN", "256"))
    lr = float(os.environ.get("LR", "0.01"))
    inner_lr = float(os.environ.get("TTT_LR", "0.001"))
    rounds = int(os.environ.get("TTT_EPOCHS", "3"))
    vocab = 1024


def read_shard(path):
    raw = np.fromfile(path, dtype=np.uint16, offset=1024)
    return torch.from_numpy(raw.astype(np.int64))


def load(pattern):
    return torch.cat([read_shard(p) for p in sorted(glob.glob(pattern))])


class Net(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, 64)
        self.head = torch.nn.Linear(64, vocab)

    def forward(self, ids):
        return self.head(self.emb(ids))


def fit(cfg, net, stream):
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    for step in range(cfg.steps):
        i = step * cfg.span
        a, b = stream[i : i + cfg.span], stream[i + 1 : i + cfg.span + 1]
        loss = F.cross_entropy(net(a), b)
        loss.backward()
        opt.step()
        opt.zero_grad()

{helpers}

def main():
    cfg = Settings()
    train_stream = load(os.path.join(cfg.root, "fineweb_train_*.bin"))
    stream = load(os.path.join(cfg.root, "fineweb_val_*.bin"))
    net = Net(cfg.vocab)
    fit(cfg, net, train_stream)
{report}


if __name__ == "__main__":
    main()
'''


def script(helpers: str, report: str) -> str:
    return _SKELETON.replace("{helpers}", helpers.strip("\n") + "\n").replace("{report}", report.rstrip("\n"))


def _verdict_code(code: str) -> bool:
    return code[:3] in ("PG0", "PG1", "PG2", "PG3", "PG4") or code == "PG504"


def verdict(tmp_path: Path, code: str, log: str | None = None) -> set[str]:
    """The judge's verdict codes for a folder holding `code` as train_gpt.py (and `log` as its train log)."""
    folder = tmp_path / "submission"
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(code, encoding="utf-8")
    if log is not None:
        (folder / "train_seed1337.log").write_text(log, encoding="utf-8")
    report = audit(folder, AuditOptions())
    return {
        f.code
        for f in report.findings
        if not f.suppressed and f.severity == Severity.ERROR and f.reachable is not False and _verdict_code(f.code)
    }


# --- 4. context-sensitive calls ----------------------------------------------------------------------------

_HASH_HELPERS = '''
def bucket(left, right):
    return ((left * 2654435761) ^ (right * 40503)) & 1048575


def count_pairs(table, stream):
    # training-time statistics: the key holds the next token of the TRAINING stream (legal)
    for i in range(len(stream) - 2):
        table[bucket(stream[i], stream[i + 1])] += 1


@torch.no_grad()
def assess(cfg, net, stream, table):
    cur, nxt = stream[:-1], stream[1:]
    logp = F.log_softmax(net(cur), -1)
    model_p = logp.gather(-1, nxt[:, None]).squeeze(-1).exp()
    hits = table[bucket(cur, {key_arg})].float()
    p = 0.9 * model_p + 0.1 * hits / (hits + 1.0)
    return -torch.log(p).mean().item()
'''

_HASH_REPORT = '''
    table = torch.zeros(1 << 20)
{extra}
    loss = assess(cfg, net, stream, table)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''

# (id, illegal script, legal twin)
CONTEXT_CASES = [
    pytest.param(
        script(_HASH_HELPERS.replace("{key_arg}", "nxt"),
               _HASH_REPORT.replace("{extra}", "    if os.environ.get(\"PAIR_STATS\", \"0\") == \"1\":\n"
                                    "        count_pairs(table, train_stream)")),
        script(_HASH_HELPERS.replace("{key_arg}", "cur"),
               _HASH_REPORT.replace("{extra}", "    if os.environ.get(\"PAIR_STATS\", \"0\") == \"1\":\n"
                                    "        count_pairs(table, train_stream)")),
        id="shared-hash-helper-dead-training-caller",
    ),
    pytest.param(
        script(_HASH_HELPERS.replace("{key_arg}", "nxt"),
               _HASH_REPORT.replace("{extra}", "    count_pairs(table, train_stream)")),
        script(_HASH_HELPERS.replace("{key_arg}", "cur"),
               _HASH_REPORT.replace("{extra}", "    count_pairs(table, train_stream)")),
        id="shared-hash-helper-live-training-caller",
    ),
    pytest.param(
        script('''
def pick(stream, at):
    return stream[at]


def key_of(h, tok):
    return (h * 1000003 ^ tok) % 4194304


@torch.no_grad()
def assess(cfg, net, stream, seen):
    total = 0.0
    n = min(len(stream) - 1, 4096)
    logp = F.log_softmax(net(stream[:n]), -1)
    for i in range(1, n):
        h = pick(stream, i)
        nxt = pick(stream, i + 1)
        k = key_of(h, nxt)
        bonus = seen[k] / (seen[k] + 4.0)
        total += -math.log(0.9 * logp[i, nxt].exp().item() + 0.1 * bonus)
        seen[key_of(h, nxt)] += 1
    return total / (n - 1)


def warm(seen, stream):
    for i in range(1, 1000):
        seen[key_of(pick(stream, i), pick(stream, i - 1))] += 1
''', '''
    seen = np.zeros(4194304)
    warm(seen, train_stream)
    loss = assess(cfg, net, stream, seen)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script('''
def pick(stream, at):
    return stream[at]


def key_of(h, tok):
    return (h * 1000003 ^ tok) % 4194304


@torch.no_grad()
def assess(cfg, net, stream, seen):
    total = 0.0
    n = min(len(stream) - 1, 4096)
    logp = F.log_softmax(net(stream[:n]), -1)
    for i in range(1, n):
        h = pick(stream, i)
        nxt = pick(stream, i + 1)
        k = key_of(h, pick(stream, i - 1))
        bonus = seen[k] / (seen[k] + 4.0)
        total += -math.log(logp[i, nxt].exp().item()) + 0.0 * bonus
    return total / (n - 1)


def warm(seen, stream):
    for i in range(1, 1000):
        seen[key_of(pick(stream, i), pick(stream, i + 1))] += 1
''', '''
    seen = np.zeros(4194304)
    warm(seen, train_stream)
    loss = assess(cfg, net, stream, seen)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="accessor-helper-used-for-context-and-target",
    ),
]


_LOOKUP_HELPERS = '''
def lookup(table, left, right):
    return table[((left * 2654435761) ^ (right * 40503)) & 1048575]


def train_pairs(table, stream):
    cur, nxt = stream[:-1], stream[1:]
    hits = lookup(table, cur, nxt)
    return F.cross_entropy(torch.randn(len(nxt), 1024) * hits[:, None], nxt)


@torch.no_grad()
def assess(cfg, net, stream, table):
    cur, nxt = stream[:-1], stream[1:]
    logp = F.log_softmax(net(cur), -1)
    model_p = logp.gather(-1, nxt[:, None]).squeeze(-1).exp()
    hits = lookup(table, cur, {key_arg}).float()
    p = 0.9 * model_p + 0.1 * hits / (hits + 1.0)
    return -torch.log(p).mean().item()
'''

_LOOKUP_REPORT = '''
    table = torch.zeros(1 << 20)
    if os.environ.get("PAIR_LOSS", "0") == "1":
        train_pairs(table, train_stream)
    loss = assess(cfg, net, stream, table)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''

CONTEXT_CASES += [
    pytest.param(
        script(_LOOKUP_HELPERS.replace("{key_arg}", "nxt"), _LOOKUP_REPORT),
        script(_LOOKUP_HELPERS.replace("{key_arg}", "cur"), _LOOKUP_REPORT),
        id="lookup-inside-a-helper-with-a-dead-training-caller",
    ),
]

_MEASURE_HELPERS = '''
@torch.no_grad()
def measure(net, a, b):
    return F.cross_entropy(net(a), b).item()


def fit_logged(cfg, net, stream):
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    for step in range(cfg.steps):
        i = step * cfg.span
        a, b = stream[i : i + cfg.span], stream[i + 1 : i + cfg.span + 1]
        F.cross_entropy(net(a), b).backward()
        opt.step()
        opt.zero_grad()
        if step % 50 == 0:
            print(f"step:{step} train_loss:{measure(net, a, b):.4f}")


def refine(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    for r in range(cfg.rounds):
        F.cross_entropy(net(stream[:-1]), stream[1:]).backward()
        opt.step()
        opt.zero_grad()
'''

CONTEXT_CASES += [
    pytest.param(
        script(_MEASURE_HELPERS, '''
    fit_logged(cfg, net, train_stream)
    refine(cfg, net, stream)
    loss = measure(net, stream[:-1], stream[1:])
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script(_MEASURE_HELPERS, '''
    fit_logged(cfg, net, train_stream)
    refine(cfg, net, train_stream)
    loss = measure(net, stream[:-1], stream[1:])
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="scoring-helper-shared-with-training-loss-logging",
    ),
]

_STEP_HELPERS = '''
def step_on(net, opt, a, b):
    F.cross_entropy(net(a), b).backward()
    opt.step()
    opt.zero_grad()


def warmup(cfg, net, stream):
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    for i in range(0, 64 * cfg.span, cfg.span):
        step_on(net, opt, stream[i : i + cfg.span], stream[i + 1 : i + cfg.span + 1])


@torch.no_grad()
def assess(net, stream):
    return F.cross_entropy(net(stream[:-1]), stream[1:]).item()


def online(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    acc, n = 0.0, (len(stream) - 1) // cfg.span
    for c in range(n):
        a = stream[c * cfg.span : (c + 1) * cfg.span]
        b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
        with torch.no_grad():
            acc += F.cross_entropy(net(a), b).item()
        step_on(net, opt, a, b)
    return acc / max(n, 1)
'''

CONTEXT_CASES += [
    pytest.param(
        script(_STEP_HELPERS, '''
    warmup(cfg, net, train_stream)
    warmup(cfg, net, stream)
    loss = assess(net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script(_STEP_HELPERS, '''
    warmup(cfg, net, train_stream)
    loss = online(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="update-helper-shared-by-training-and-a-pre-eval-pass",
    ),
    pytest.param(
        script(_STEP_HELPERS.replace('''        with torch.no_grad():
            acc += F.cross_entropy(net(a), b).item()
        step_on(net, opt, a, b)''', '''        step_on(net, opt, a, b)
        with torch.no_grad():
            acc += F.cross_entropy(net(a), b).item()'''), '''
    warmup(cfg, net, train_stream)
    loss = online(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script(_STEP_HELPERS, '''
    warmup(cfg, net, train_stream)
    loss = online(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="update-helper-shared-by-training-and-a-ttt-loop-that-adapts-first",
    ),
]


# --- 5. control dependence ---------------------------------------------------------------------------------

_MIX_REPORT = '''
    prior = torch.full((cfg.vocab,), 1.0 / cfg.vocab)
    starts = torch.zeros(cfg.vocab, dtype=torch.bool)
    starts[::7] = True
    loss = assess(cfg, net, stream, prior, starts)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''

CONTROL_CASES = [
    pytest.param(
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    n = min(len(stream) - 1, 2048)
    probs = F.softmax(net(stream[:n]), -1)
    total = 0.0
    for i in range(n):
        z = int(stream[i + 1])
        if starts[z]:
            w = 0.6
        else:
            w = 0.05
        p = (1 - w) * probs[i, z] + w * prior[z]
        total -= math.log(p.item())
    return total / n
''', _MIX_REPORT),
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    n = min(len(stream) - 1, 2048)
    probs = F.softmax(net(stream[:n]), -1)
    total = 0.0
    for i in range(n):
        z = int(stream[i + 1])
        if starts[int(stream[i])]:
            w = 0.6
        else:
            w = 0.05
        p = (1 - w) * probs[i, z] + w * prior[z]
        total -= math.log(p.item())
    return total / n
''', _MIX_REPORT),
        id="mixing-weight-chosen-by-if-on-target",
    ),
    pytest.param(
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    cur, z = stream[:-1], stream[1:]
    probs = F.softmax(net(cur), -1)
    flag = starts[z].float() > 0.5
    w = torch.where(flag, torch.full_like(z, 6, dtype=torch.float) / 10, torch.full_like(z, 1, dtype=torch.float) / 20)
    p_a = probs.gather(-1, z[:, None]).squeeze(-1)
    p_b = prior[z]
    p = w * p_b + (1 - w) * p_a
    return -torch.log(p).mean().item()
''', _MIX_REPORT),
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    cur, z = stream[:-1], stream[1:]
    probs = F.softmax(net(cur), -1)
    flag = starts[cur].float() > 0.5
    w = torch.where(flag, torch.full_like(z, 6, dtype=torch.float) / 10, torch.full_like(z, 1, dtype=torch.float) / 20)
    p_a = probs.gather(-1, z[:, None]).squeeze(-1)
    p_b = prior[z]
    p = w * p_b + (1 - w) * p_a
    return -torch.log(p).mean().item()
''', _MIX_REPORT),
        id="mixing-weight-from-where-on-target-mask",
    ),
    pytest.param(
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    cur, z = stream[:-1], stream[1:]
    p = F.softmax(net(cur), -1).gather(-1, z[:, None]).squeeze(-1)
    alt = prior[z]
    sel = starts[z]
    p[sel] = alt[sel]
    return -torch.log(p).mean().item()
''', _MIX_REPORT),
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    cur, z = stream[:-1], stream[1:]
    p = F.softmax(net(cur), -1).gather(-1, z[:, None]).squeeze(-1)
    alt = prior[z]
    sel = starts[cur]
    p[sel] = alt[sel]
    return -torch.log(p).mean().item()
''', _MIX_REPORT),
        id="prediction-overwritten-where-a-target-mask-holds",
    ),
    pytest.param(
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    cur, z = stream[:-1], stream[1:]
    logits = net(cur)
    la = F.cross_entropy(logits, z, reduction="none")
    lb = F.cross_entropy(torch.log(prior).expand_as(logits), z, reduction="none")
    use_b = lb < la
    per_tok = torch.where(use_b, lb, la)
    return per_tok.mean().item()
''', _MIX_REPORT),
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    cur, z = stream[:-1], stream[1:]
    logits = net(cur)
    la = F.cross_entropy(logits, z, reduction="none")
    lb = F.cross_entropy(torch.log(prior).expand_as(logits), z, reduction="none")
    logp = F.log_softmax(logits, -1)
    spread = -(logp.exp() * logp).sum(-1)
    use_b = spread > 6.0
    per_tok = torch.where(use_b, lb, la)
    return per_tok.mean().item()
''', _MIX_REPORT),
        id="expert-chosen-by-its-own-loss-on-target",
    ),
    pytest.param(
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    pairs = torch.zeros(cfg.vocab, cfg.vocab)
    n = min(len(stream) - 1, 4096)
    probs = F.softmax(net(stream[:n]), -1)
    total = 0.0
    for i in range(1, n):
        a, z = int(stream[i]), int(stream[i + 1])
        if pairs[a, z] > 0:
            q = pairs[a, z] / pairs[a].sum()
        else:
            q = probs[i, z]
        total -= math.log(float(q))
        pairs[a, z] += 1
    return total / n
''', _MIX_REPORT),
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    pairs = torch.zeros(cfg.vocab, cfg.vocab)
    n = min(len(stream) - 1, 4096)
    probs = F.softmax(net(stream[:n]), -1)
    total = 0.0
    for i in range(1, n):
        a, z = int(stream[i]), int(stream[i + 1])
        if pairs[a].sum() > 8:
            q = 0.5 * pairs[a, z] / pairs[a].sum() + 0.5 * probs[i, z]
        else:
            q = probs[i, z]
        total -= math.log(float(q))
        pairs[a, z] += 1
    return total / n
''', _MIX_REPORT),
        id="backoff-order-chosen-by-whether-the-target-was-seen",
    ),
    pytest.param(
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    counts = torch.ones(cfg.vocab, cfg.vocab)
    n = min(len(stream) - 1, 4096)
    total = 0.0
    for i in range(n):
        a, z = int(stream[i]), int(stream[i + 1])
        counts[a, z] += 1
        row = counts[a] / counts[a].sum()
        total -= math.log(row[z].item())
    return total / n
''', _MIX_REPORT),
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    counts = torch.ones(cfg.vocab, cfg.vocab)
    n = min(len(stream) - 1, 4096)
    total = 0.0
    for i in range(n):
        a, z = int(stream[i]), int(stream[i + 1])
        row = counts[a] / counts[a].sum()
        total -= math.log(row[z].item())
        counts[a, z] += 1
    return total / n
''', _MIX_REPORT),
        id="streaming-counts-updated-before-the-score",
    ),
]


# --- 6. scores from the reported metric --------------------------------------------------------------------

REPORTED_CASES = [
    pytest.param(
        script('''
def train_step(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    n = (len(stream) - 1) // cfg.span
    for r in range(cfg.rounds):
        for c in range(n):
            a = stream[c * cfg.span : (c + 1) * cfg.span]
            b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
            F.cross_entropy(net(a), b).backward()
            opt.step()
            opt.zero_grad()
    acc, cnt = 0.0, 0
    for c in range(n):
        a = stream[c * cfg.span : (c + 1) * cfg.span]
        b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
        acc += float(F.cross_entropy(net(a), b, reduction="sum"))
        cnt += b.numel()
    return acc / cnt
''', '''
    loss = train_step(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script('''
def train_step(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    n = (len(stream) - 1) // cfg.span
    acc, cnt = 0.0, 0
    for c in range(n):
        a = stream[c * cfg.span : (c + 1) * cfg.span]
        b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
        acc += float(F.cross_entropy(net(a), b, reduction="sum").detach())
        cnt += b.numel()
        if c == n - 1:
            break
        for r in range(cfg.rounds):
            F.cross_entropy(net(a), b).backward()
            opt.step()
            opt.zero_grad()
    return acc / cnt
''', '''
    loss = train_step(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="adapt-then-score-in-a-function-named-train-step",
    ),
    pytest.param(
        script('''
class Scorer(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, a, b):
        return F.cross_entropy(self.net(a), b, reduction="sum")


def refine(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    for r in range(cfg.rounds):
        F.cross_entropy(net(stream[:-1]), stream[1:]).backward()
        opt.step()
        opt.zero_grad()


def measure(scorer, stream):
    return float(scorer(stream[:-1], stream[1:])) / (len(stream) - 1)
''', '''
    refine(cfg, net, stream)
    loss = measure(Scorer(net), stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script('''
class Scorer(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, a, b):
        return F.cross_entropy(self.net(a), b, reduction="sum")


def refine(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    for r in range(cfg.rounds):
        F.cross_entropy(net(stream[:-1]), stream[1:]).backward()
        opt.step()
        opt.zero_grad()


def measure(scorer, stream):
    return float(scorer(stream[:-1], stream[1:])) / (len(stream) - 1)
''', '''
    refine(cfg, net, train_stream)
    loss = measure(Scorer(net), stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="adapt-on-val-then-measure-through-a-module-call",
    ),
    pytest.param(
        script('''
def sweep(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    n = (len(stream) - 1) // cfg.span
    acc = 0.0
    for epoch in range(cfg.rounds):
        for c in range(n):
            a = stream[c * cfg.span : (c + 1) * cfg.span]
            b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
            out = F.cross_entropy(net(a), b)
            if epoch == cfg.rounds - 1:
                acc += out.item()
            out.backward()
            opt.step()
            opt.zero_grad()
    return acc / n
''', '''
    loss = sweep(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script('''
def sweep(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    n = (len(stream) - 1) // cfg.span
    acc = 0.0
    for c in range(n):
        a = stream[c * cfg.span : (c + 1) * cfg.span]
        b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
        with torch.no_grad():
            acc += F.cross_entropy(net(a), b).item()
        for epoch in range(cfg.rounds):
            if epoch == cfg.rounds - 1 and c == n - 1:
                break
            F.cross_entropy(net(a), b).backward()
            opt.step()
            opt.zero_grad()
    return acc / n
''', '''
    loss = sweep(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="score-behind-last-epoch-guard-may-run",
    ),
    pytest.param(
        script('''
def adapt(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    for r in range(cfg.rounds):
        F.cross_entropy(net(stream[:-1]), stream[1:]).backward()
        opt.step()
        opt.zero_grad()


@torch.no_grad()
def assess(net, stream):
    return F.cross_entropy(net(stream[:-1]), stream[1:]).item()
''', '''
    if os.environ.get("ADAPT_MODE", "off") in open(os.path.join(cfg.root, "modes.txt")).read().split():
        adapt(cfg, net, stream)
    loss = assess(net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script('''
def adapt(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    for r in range(cfg.rounds):
        F.cross_entropy(net(stream[:-1]), stream[1:]).backward()
        opt.step()
        opt.zero_grad()


@torch.no_grad()
def assess(net, stream):
    return F.cross_entropy(net(stream[:-1]), stream[1:]).item()
''', '''
    if os.environ.get("ADAPT_MODE", "off") in open(os.path.join(cfg.root, "modes.txt")).read().split():
        adapt(cfg, net, train_stream)
    loss = assess(net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="adaptation-behind-an-env-guard-pgaudit-cannot-evaluate",
    ),
]

REPORTED_CASES += [
    pytest.param(
        script('''
def sweep(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    n = (len(stream) - 1) // cfg.span
    acc, ep = 0.0, 0
    while ep < cfg.rounds:
        for c in range(n):
            a = stream[c * cfg.span : (c + 1) * cfg.span]
            b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
            out = F.cross_entropy(net(a), b)
            if ep == cfg.rounds - 1:
                acc += out.item()
            out.backward()
            opt.step()
            opt.zero_grad()
        ep += 1
    return acc / n
''', '''
    loss = sweep(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script('''
def sweep(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    n = (len(stream) - 1) // cfg.span
    acc = 0.0
    for c in range(n):
        a = stream[c * cfg.span : (c + 1) * cfg.span]
        b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
        with torch.no_grad():
            acc += F.cross_entropy(net(a), b).item()
        ep = 0
        while ep < cfg.rounds:
            F.cross_entropy(net(a), b).backward()
            opt.step()
            opt.zero_grad()
            ep += 1
    return acc / n
''', '''
    loss = sweep(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="last-pass-score-in-a-while-loop",
    ),
    pytest.param(
        script('''
import json


def adapt(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    for r in range(cfg.rounds):
        F.cross_entropy(net(stream[:-1]), stream[1:]).backward()
        opt.step()
        opt.zero_grad()


@torch.no_grad()
def assess(net, stream):
    return F.cross_entropy(net(stream[:-1]), stream[1:]).item()
''', '''
    conf = json.load(open(os.path.join(os.path.dirname(__file__), "run.json")))
    if conf.get("refine") and os.path.exists(os.path.join(cfg.root, "ready.flag")):
        adapt(cfg, net, stream)
    loss = assess(net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script('''
import json


def adapt(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    for r in range(cfg.rounds):
        F.cross_entropy(net(stream[:-1]), stream[1:]).backward()
        opt.step()
        opt.zero_grad()


@torch.no_grad()
def assess(net, stream):
    return F.cross_entropy(net(stream[:-1]), stream[1:]).item()
''', '''
    conf = json.load(open(os.path.join(os.path.dirname(__file__), "run.json")))
    if conf.get("refine") and os.path.exists(os.path.join(cfg.root, "ready.flag")):
        adapt(cfg, net, train_stream)
    loss = assess(net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="adaptation-behind-a-config-file-and-file-exists-guard",
    ),
]

CONTROL_CASES += [
    pytest.param(
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    cur, z = stream[:-1], stream[1:]
    logits = net(cur)
    la = F.cross_entropy(logits, z, reduction="none")
    lb = F.cross_entropy(torch.log(prior).expand_as(logits), z, reduction="none")
    both = torch.stack([la, lb], 0)
    return both.min(0).values.mean().item()
''', _MIX_REPORT),
        script('''
@torch.no_grad()
def assess(cfg, net, stream, prior, starts):
    cur, z = stream[:-1], stream[1:]
    logits = net(cur)
    la = F.cross_entropy(logits, z, reduction="none")
    lb = F.cross_entropy(torch.log(prior).expand_as(logits), z, reduction="none")
    both = torch.stack([la, lb], 0)
    return both.mean(0).mean().item()
''', _MIX_REPORT),
        id="min-over-stacked-expert-losses",
    ),
]


REPORTED_CASES += [
    pytest.param(
        script('''
def sweep(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    n = (len(stream) - 1) // cfg.span
    acc = 0.0
    for c in range(n):
        a = stream[c * cfg.span : (c + 1) * cfg.span]
        b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
        for ep in range(cfg.rounds):
            out = F.cross_entropy(net(a), b)
            if ep:
                acc += out.item()
            out.backward()
            opt.step()
            opt.zero_grad()
    return acc / n
''', '''
    loss = sweep(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script('''
def sweep(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    n = (len(stream) - 1) // cfg.span
    acc = 0.0
    for c in range(n):
        a = stream[c * cfg.span : (c + 1) * cfg.span]
        b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
        for ep in range(cfg.rounds):
            out = F.cross_entropy(net(a), b)
            if not ep:
                acc += out.item()
            out.backward()
            opt.step()
            opt.zero_grad()
    return acc / n
''', '''
    loss = sweep(cfg, net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="score-on-a-later-pass-vs-the-first-pass-of-an-inner-epoch-loop",
    ),
]


# Score-first TTT whose own first-pass score is printed, followed by a re-evaluation of the adapted model
# (DEV pr1077's shape): with no log, which number is reported is not known -- at most a warning. Its
# illegal twin prints only the re-evaluation: the first pass's score is dropped, so the rescore is reported.
_TTT_HELPERS = '''
def score_first(cfg, net, stream):
    opt = torch.optim.SGD(net.parameters(), lr=cfg.inner_lr)
    n = (len(stream) - 1) // cfg.span
    acc = 0.0
    for c in range(n):
        a = stream[c * cfg.span : (c + 1) * cfg.span]
        b = stream[c * cfg.span + 1 : (c + 1) * cfg.span + 1]
        with torch.no_grad():
            acc += F.cross_entropy(net(a), b).item()
        for r in range(cfg.rounds):
            F.cross_entropy(net(a), b).backward()
            opt.step()
            opt.zero_grad()
    return acc / max(n, 1)


@torch.no_grad()
def assess(net, stream):
    return F.cross_entropy(net(stream[:-1]), stream[1:]).item()
'''

RESCORE_CASES = [
    pytest.param(
        script(_TTT_HELPERS, '''
    score_first(cfg, net, stream)
    loss = assess(net, stream)
    print(f"final val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        script(_TTT_HELPERS, '''
    first = score_first(cfg, net, stream)
    print(f"post_ttt val_loss:{first:.6f} val_bpb:{first / math.log(2):.6f}")
    loss = assess(net, stream)
    print(f"diagnostic val_loss:{loss:.6f} val_bpb:{loss / math.log(2):.6f}")
'''),
        id="rescore-after-score-first-ttt",
    ),
]


@pytest.mark.parametrize(("illegal", "legal"), CONTEXT_CASES + CONTROL_CASES + REPORTED_CASES + RESCORE_CASES)
def test_illegal_case_gets_a_verdict_and_its_twin_does_not(illegal: str, legal: str, tmp_path: Path):
    caught = verdict(tmp_path / "illegal", illegal)
    falsely = verdict(tmp_path / "legal", legal)
    assert caught, "the illegal submission got no reachable error"
    assert not falsely, f"the legal twin got {sorted(falsely)}"

"""Adversarial submissions for issue 15 bullets 1-3: validation data from its sources, targets from their
use, effects rather than assignments.

Every case is a small but complete train_gpt.py-like script with neutral identifiers, where an illegal
pattern (PG101 a target-keyed cache lookup, PG301 adapting on validation tokens before scoring them, PG401
validation tokens in the training stream) is hidden behind one item of a bullet, next to its legal twin.
Each runs through the whole pipeline (`pgaudit.engine.audit` on a folder), as written and after the
metamorphic `rename`, `split` and `mislead` (role-suggestive names handed out in turn) rewrites. The
verdict is the judge's: an unsuppressed error among PG0xx-PG4xx and PG504 whose reachability is not False.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgaudit.engine import AuditOptions, audit
from pgaudit.findings import Severity
from tests.metamorphic.rewrite import REWRITES, rename

_PRE = '''
import functools
import glob
import math
import operator
import os
import types
from collections import Counter, defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

B = 1 << 20


class Cfg:
    root = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    pa = os.path.join(root, "fineweb_train_*.bin")
    pb = PB
    steps = int(os.environ.get("ITERATIONS", 200))
    n = int(os.environ.get("TRAIN_SEQ_LEN", 1024))
    vocab = 1024
    dim = 64


def one(f):
    head = np.fromfile(f, dtype="<i4", count=256)
    return torch.from_numpy(np.fromfile(f, dtype="<u2", offset=1024, count=int(head[2])).astype(np.int64))


def pull(spec):
    return torch.cat([one(f) for f in sorted(glob.glob(spec))])


class Net(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.e = nn.Embedding(c.vocab, c.dim)
        self.o = nn.Linear(c.dim, c.vocab)

    def forward(self, a):
        return self.o(self.e(a))

EXTRA

SCORE

def main():
    c = Cfg()
    torch.manual_seed(0)
    net = Net(c)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    LOAD
    LOOP
    r = score(net, s)
    print(f"final_exact val_loss:{r:.8f} val_bpb:{r / math.log(2.0) * 0.41:.8f}")


if __name__ == "__main__":
    main()
'''

_PB = 'os.path.join(root, "fineweb_val_" + "*.bin")'
_LOAD = "tr = pull(c.pa)\n    s = pull(c.pb)"

_SCORE = '''
@torch.no_grad()
def score(net, s):
    tot, cnt = 0.0, 0
    for i in range(0, s.numel() - 1, 1024):
        w = s[i : i + 1025]
        tot += F.cross_entropy(net(w[:-1]), w[1:], reduction="sum").item()
        cnt += w.numel() - 1
    return tot / max(cnt, 1)
'''


def _indent(code: str, n: int) -> str:
    return code.replace("\n", "\n" + " " * n)


_LOOP = """for k in range(c.steps):
        o = (k * c.n) % (SRC.numel() - c.n - 1)
        a = SRC[o : o + c.n]
        b = SRC[o + 1 : o + c.n + 1]
        loss = F.cross_entropy(net(a), b)
        loss.backward()
        opt.step()
        opt.zero_grad()"""


def script(
    *, pb: str = _PB, load: str = _LOAD, src: str = "tr", score: str = _SCORE, extra: str = "", loop: str = _LOOP
) -> str:
    return (
        _PRE.replace("PB", pb, 1)
        .replace("EXTRA", extra, 1)
        .replace("SCORE", score, 1)
        .replace("LOAD", load, 1)
        .replace("LOOP", loop, 1)
        .replace("SRC", src)
    )


_STEP = "loss = F.cross_entropy(net(a), b)\nloss.backward()\nopt.step()\nopt.zero_grad()"
_LOADER_CLASS = """class Feed:
    def __init__(self, spec, n):
        self.t = pull(spec)
        self.n = n
        self.o = 0

    def take(self):
        w = self.t[self.o : self.o + self.n + 1]
        self.o = (self.o + self.n) % (self.t.numel() - self.n - 1)
        return w[:-1], w[1:]
"""
_LOADER_GEN = """def feed(spec, n):
    t = pull(spec)
    o = 0
    while True:
        yield t[o : o + n], t[o + 1 : o + n + 1]
        o = (o + n) % (t.numel() - n - 1)
"""
_LOADER_HELPER = """def steps(net, opt, t, c):
    for k in range(c.steps):
        o = (k * c.n) % (t.numel() - c.n - 1)
        a, b = t[o : o + c.n], t[o + 1 : o + c.n + 1]
        STEP
""".replace("STEP", _STEP.replace("\n", "\n        "))


# --- bullet 1: validation data from its sources, into the training stream (PG401) -------------------------

_SOURCES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    # illegal: the training loop reads the validation stream; legal: the training stream
    "glob-join-concat": ({"src": "s"}, {}),
    "env-default-pattern": (
        {"load": 'tr = pull(c.pa)\n    s = pull(os.environ.get("HOLD", "./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin"))', "src": "s"},
        {"load": 'tr = pull(c.pa)\n    s = pull(os.environ.get("HOLD", "./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin"))'},
    ),
    "split-constant": (
        {"pb": 'os.path.join(root, "fineweb_" + "va" + "l_*.bin")', "src": "s"},
        {"pb": 'os.path.join(root, "fineweb_" + "va" + "l_*.bin")'},
    ),
    "fstring-constant": (
        {"pb": 'f"{root}/fineweb_{SPLIT}_*.bin"', "extra": 'SPLIT = "val"', "src": "s"},
        {"pb": 'f"{root}/fineweb_{SPLIT}_*.bin"', "extra": 'SPLIT = "val"'},
    ),
    "listdir-filter": (
        {"load": "tr = pull(c.pa)\n    s = torch.cat([one(os.path.join(c.root, f)) for f in sorted(os.listdir(c.root)) "
         'if f.startswith("fineweb_val")])', "src": "s"},
        {"load": "tr = pull(c.pa)\n    s = torch.cat([one(os.path.join(c.root, f)) for f in sorted(os.listdir(c.root)) "
         'if f.startswith("fineweb_val")])'},
    ),
    "memmap": (
        {
            "extra": "def mm(spec):\n    return torch.from_numpy(np.concatenate([np.array(np.memmap(f, dtype=np.uint16, "
            'mode="r", offset=1024)) for f in sorted(glob.glob(spec))]).astype(np.int64))',
            "load": "tr = pull(c.pa)\n    s = mm(c.pb)",
            "src": "s",
        },
        {
            "extra": "def mm(spec):\n    return torch.from_numpy(np.concatenate([np.array(np.memmap(f, dtype=np.uint16, "
            'mode="r", offset=1024)) for f in sorted(glob.glob(spec))]).astype(np.int64))',
            "load": "tr = mm(c.pa)\n    s = mm(c.pb)",
        },
    ),
    "fromfile-inline": (
        {"load": "tr = pull(c.pa)\n    s = torch.from_numpy(np.fromfile(sorted(glob.glob(c.pb))[0], dtype=np.uint16, offset=1024).astype(np.int64))", "src": "s"},
        {"load": "tr = pull(c.pa)\n    s = torch.from_numpy(np.fromfile(sorted(glob.glob(c.pb))[0], dtype=np.uint16, offset=1024).astype(np.int64))"},
    ),
    "torch-from-file": (
        {"load": "tr = pull(c.pa)\n    s = torch.from_file(sorted(glob.glob(c.pb))[0], size=1 << 20, dtype=torch.int16).long()", "src": "s"},
        {"load": "tr = torch.from_file(sorted(glob.glob(c.pa))[0], size=1 << 20, dtype=torch.int16).long()\n    s = torch.from_file(sorted(glob.glob(c.pb))[0], size=1 << 20, dtype=torch.int16).long()"},
    ),
    "class-attribute": (
        {
            "extra": "class Store:\n    def __init__(self, spec):\n        self.t = pull(spec)",
            "load": "st_a = Store(c.pa)\n    st_b = Store(c.pb)\n    tr = st_a.t\n    s = st_b.t",
            "src": "st_b.t",
        },
        {
            "extra": "class Store:\n    def __init__(self, spec):\n        self.t = pull(spec)",
            "load": "st_a = Store(c.pa)\n    st_b = Store(c.pb)\n    tr = st_a.t\n    s = st_b.t",
            "src": "st_a.t",
        },
    ),
    "dict-container": (
        {"load": 'dd = {"p": pull(c.pa), "q": pull(c.pb)}\n    s = dd["q"]', "src": 'dd["q"]'},
        {"load": 'dd = {"p": pull(c.pa), "q": pull(c.pb)}\n    s = dd["q"]', "src": 'dd["p"]'},
    ),
    "list-container": (
        {"load": "ll = [pull(c.pa), pull(c.pb)]\n    s = ll[1]", "src": "ll[1]"},
        {"load": "ll = [pull(c.pa), pull(c.pb)]\n    s = ll[1]", "src": "ll[0]"},
    ),
    "cat-slice": (
        {"load": _LOAD + "\n    mix = torch.cat([tr, s[: s.numel() // 2]])", "src": "mix"},
        {"load": _LOAD + "\n    mix = torch.cat([tr[: tr.numel() // 2], tr[tr.numel() // 2 :]])", "src": "mix"},
    ),
    "device-dtype": (
        {"load": _LOAD + '\n    mix = s.to("cpu").long().contiguous()', "src": "mix"},
        {"load": _LOAD + '\n    mix = tr.to("cpu").long().contiguous()', "src": "mix"},
    ),
    "inplace-copy": (
        {"load": _LOAD + "\n    mix = torch.zeros(1 << 20, dtype=torch.long)\n    mix.copy_(s[: 1 << 20])", "src": "mix"},
        {"load": _LOAD + "\n    mix = torch.zeros(1 << 20, dtype=torch.long)\n    mix.copy_(tr[: 1 << 20])", "src": "mix"},
    ),
    "loader-class-method": (
        {"extra": _LOADER_CLASS, "loop": "fd = Feed(c.pb, c.n)\n    for k in range(c.steps):\n        a, b = fd.take()\n        "
         + _indent(_STEP, 8)},
        {"extra": _LOADER_CLASS, "loop": "fd = Feed(c.pa, c.n)\n    for k in range(c.steps):\n        a, b = fd.take()\n        "
         + _indent(_STEP, 8)},
    ),
    "loader-generator": (
        {"extra": _LOADER_GEN, "loop": "for k, (a, b) in zip(range(c.steps), feed(c.pb, c.n)):\n        " + _indent(_STEP, 8)},
        {"extra": _LOADER_GEN, "loop": "for k, (a, b) in zip(range(c.steps), feed(c.pa, c.n)):\n        " + _indent(_STEP, 8)},
    ),
    "loader-helper-function": (
        {"extra": _LOADER_HELPER, "loop": "steps(net, opt, s, c)"},
        {"extra": _LOADER_HELPER, "loop": "steps(net, opt, tr, c)"},
    ),
    "append-list": (
        {"load": _LOAD + "\n    parts = [tr]\n    parts.append(s)\n    mix = torch.cat(parts)", "src": "mix"},
        {"load": _LOAD + "\n    parts = [tr]\n    parts.append(tr.flip(0))\n    mix = torch.cat(parts)", "src": "mix"},
    ),
}


# --- bullets 2 and 3: target-keyed cache lookups (PG101) ---------------------------------------------------

# A numpy streaming cache: the key mixes context hash `h` with X; `KEY` binds `k`.
_LOOP_BAD = '''
@torch.no_grad()
def score(net, s):
    u = s.numpy().astype(np.int64)
    full = TABLE
    ctx = np.zeros(B)
    st = types.SimpleNamespace()
    tot = 0.0
    for i in range(2, len(u)):
        p = F.softmax(net(torch.tensor([u[i - 1]])), -1)[0].numpy()
        t = u[i]
        h = (u[i - 1] * 36313) ^ (u[i - 2] * 27191)
        KEY
        q = full[k % B] / max(ctx[h % B], 1.0)
        tot -= float(np.log(0.9 * p[t] + 0.1 * q + 1e-9))
        full[k % B] += 1
        ctx[h % B] += 1
    return tot / max(len(u) - 2, 1)
'''
# Its legal twin: the same key over every candidate token, normalized, then the target's probability read;
# the target-keyed entry is only written after the position is scored.
_LOOP_GOOD = '''
@torch.no_grad()
def score(net, s):
    u = s.numpy().astype(np.int64)
    full = TABLE
    st = types.SimpleNamespace()
    tot = 0.0
    for i in range(2, len(u)):
        p = F.softmax(net(torch.tensor([u[i - 1]])), -1)[0].numpy()
        t = u[i]
        h = (u[i - 1] * 36313) ^ (u[i - 2] * 27191)
        cnt = np.zeros(1024)
        for v in range(1024):
            KEY
            cnt[v] = full[k % B] + 0.5
        q = cnt / cnt.sum()
        tot -= float(np.log(0.9 * p[t] + 0.1 * q[t] + 1e-9))
        full[(h ^ (t * 51647)) % B] += 1
    return tot / max(len(u) - 2, 1)
'''

_KEYS: dict[str, str] = {
    "xor-plain": "k = h ^ (X * 51647)",
    "aug-xor": "k = h * 1\nk ^= X * 51647",
    "bitwise-xor-inplace": "k = torch.tensor(h)\nk.bitwise_xor_(torch.tensor(X) * 51647)\nk = int(k)",
    "np-bitwise-xor-out": "k = np.array([h])\nnp.bitwise_xor(k, np.array([X]) * 51647, out=k)\nk = int(k[0])",
    "append-hash": "w = [int(u[i - 1]), int(u[i - 2])]\nw.append(int(X))\nk = hash(tuple(w))",
    "plus-list-hash": "w = [int(u[i - 1])]\nw += [int(X)]\nk = hash(tuple(w))",
    "np-add-at": "z = np.zeros(1, dtype=np.int64)\nnp.add.at(z, 0, h)\nnp.add.at(z, 0, X * 51647)\nk = int(z[0])",
    "dict-store": 'd = {}\nd["c"] = h\nd["t"] = X * 51647\nk = d["c"] ^ d["t"]',
    "dict-get": 'd = {"c": h, "t": X}\nk = d.get("c") ^ (d.get("t") * 51647)',
    "setattr": 'setattr(st, "m", X * 51647)\nk = h ^ st.m',
    "tuple-unpack": "pr = (h, X)\nc0, x0 = pr\nk = c0 ^ (x0 * 51647)",
    "zip": "for c0, x0 in zip([h], [X]):\n    k = c0 ^ (x0 * 51647)",
    "enumerate": "for j0, x0 in enumerate([X]):\n    k = h ^ (x0 * 51647) ^ j0",
    "listcomp": "k = [c0 ^ (x0 * 51647) for c0, x0 in [(h, X)]][0]",
    "generator": "k = next(c0 ^ (x0 * 51647) for c0, x0 in zip([h], [X]))",
    "reduce-xor": "k = functools.reduce(operator.xor, [h, X * 51647])",
    "partial": "f0 = functools.partial(operator.xor, h)\nk = f0(X * 51647)",
    "lambda": "mk = lambda c0, x0: c0 ^ (x0 * 51647)\nk = mk(h, X)",
    "getattr-const": 'k = getattr(np, "bitwise_" + "xor")(h, X * 51647)',
    "getattr-bound": 'mx = getattr(np, "bitwise_" + "xor")\nk = mx(h, X * 51647)',
    "alias-bound": "mx = np.bitwise_xor\nk = mx(h, X * 51647)",
    "hash-tuple": "k = hash((int(h), int(X)))",
    "str-concat": 'k = hash(str(h) + "|" + str(X))',
    "percent-format": 'k = hash("%d|%d" % (h, X))',
    "str-format": 'k = hash("{}|{}".format(h, X))',
    "join-map-str": 'k = hash("|".join(map(str, (h, X))))',
    "tobytes": "k = hash(np.array([h, X]).tobytes())",
    "crc32-encoded": 'k = __import__("zlib").crc32(f"{h}|{X}".encode())',
    "dunder-xor": "k = h.__xor__(X * 51647)",
    "operator-call": "k = operator.xor(h, operator.mul(X, 51647))",
    "np-reduce": "k = np.bitwise_xor.reduce([h, X * 51647])",
    "fstring-hash": 'k = hash(f"{h}|{X}")',
}
_TABLES = {"zeros": "np.zeros(B)", "counter": "Counter()", "defaultdict": "defaultdict(float)"}


def _loop_case(key: str, table: str = "np.zeros(B)") -> tuple[dict[str, str], dict[str, str]]:
    bad = _LOOP_BAD.replace("TABLE", table).replace("KEY", _indent(key.replace("X", "t"), 8))
    good = _LOOP_GOOD.replace("TABLE", table).replace("KEY", _indent(key.replace("X", "v"), 12))
    return {"score": bad}, {"score": good}


# Targets from their use: vectorized windows where the scored tokens are an offset of the input.
_VEC = '''
@torch.inference_mode()
def score(net, s):
    tab = torch.zeros(B)
    tot, cnt = 0.0, 0
    for i in range(0, s.numel() - 1025, 1024):
        j = i + 1024
        BODY
        tot += float(-(lp + 0.1 * tab[kk % B]).sum())
        cnt += lp.numel()
    return tot / max(cnt, 1)
'''
_TARGET_CASES: dict[str, tuple[str, str]] = {
    # (illegal body, legal body): both bind lp (log-probability of the scored tokens) and kk (a table key)
    "offset-slices": (
        "inp = s[i:j]\nnx = s[i + 1 : j + 1]\nlp = F.log_softmax(net(inp), -1).gather(-1, nx[:, None]).squeeze(-1)\n"
        "kk = (inp * 2654435761) ^ (nx * 2246822519)",
        "inp = s[i:j]\nnx = s[i + 1 : j + 1]\nlp = F.log_softmax(net(inp), -1).gather(-1, nx[:, None]).squeeze(-1)\n"
        "kk = (inp * 2654435761) ^ (s[i - 1 : j - 1] * 2246822519)",
    ),
    "roll": (
        "w = s[i : j + 1]\nz = torch.roll(w, -1)[:-1]\nlp = -F.cross_entropy(net(w[:-1]), z, reduction='none')\n"
        "kk = (w[:-1] * 2654435761) ^ (z * 2246822519)",
        "w = s[i : j + 1]\nz = torch.roll(w, -1)[:-1]\nlp = -F.cross_entropy(net(w[:-1]), z, reduction='none')\n"
        "kk = (w[:-1] * 2654435761) ^ (torch.roll(w, 1)[:-1] * 2246822519)",
    ),
    "ellipsis-shift": (
        "w = s[i : j + 1][None]\nlp = -F.cross_entropy(net(w[..., :-1])[0], w[0, 1:], reduction='none')\n"
        "kk = ((w[..., :-1] * 2654435761) ^ (w[..., 1:] * 2246822519))[0]",
        "w = s[i : j + 1][None]\nlp = -F.cross_entropy(net(w[..., :-1])[0], w[0, 1:], reduction='none')\n"
        "kk = ((w[..., :-1] * 2654435761) ^ (torch.roll(w[..., :-1], 1, -1) * 2246822519))[0]",
    ),
    "commuted-offset": (
        "inp = s[i:j]\nlp = -F.cross_entropy(net(inp), s[i + 1 : j + 1], reduction='none')\n"
        "kk = (inp * 2654435761) ^ (s[1 + i : 1 + j] * 2246822519)",
        "inp = s[i:j]\nlp = -F.cross_entropy(net(inp), s[i + 1 : j + 1], reduction='none')\n"
        "kk = (inp * 2654435761) ^ (s[i - 1 : j - 1] * 2246822519)",
    ),
    "index-array-alias": (
        "idx = torch.arange(i, j)\nlp = -F.cross_entropy(net(s[idx]), s[idx + 1], reduction='none')\n"
        "kk = (s[idx] * 2654435761) ^ (s[1 + idx] * 2246822519)",
        "idx = torch.arange(i, j)\nlp = -F.cross_entropy(net(s[idx]), s[idx + 1], reduction='none')\n"
        "kk = (s[idx] * 2654435761) ^ (s[idx - 1] * 2246822519)",
    ),
    "model-loss-label": (
        "idx = torch.arange(i, j)\nnx = s.index_select(0, idx + 1)\nlp = -net.o.weight.new_tensor(0.0) - ln(net, s[idx], nx)\n"
        "kk = (s[idx] * 2654435761) ^ (nx * 2246822519)",
        "idx = torch.arange(i, j)\nnx = s.index_select(0, idx + 1)\nlp = -net.o.weight.new_tensor(0.0) - ln(net, s[idx], nx)\n"
        "kk = (s[idx] * 2654435761) ^ (s.index_select(0, idx - 1) * 2246822519)",
    ),
    "roll-alias": (
        "w = s[i : j + 1]\nlp = -F.cross_entropy(net(w[:-1]), w[1:], reduction='none')\n"
        "kk = (w[:-1] * 2654435761) ^ (torch.roll(w, -1)[:-1] * 2246822519)",
        "w = s[i : j + 1]\nlp = -F.cross_entropy(net(w[:-1]), w[1:], reduction='none')\n"
        "kk = (w[:-1] * 2654435761) ^ (torch.roll(w, 1)[:-1] * 2246822519)",
    ),
    "take-along-axis": (
        "idx = torch.arange(i, j)\nnx = s[idx + 1]\nlo = F.log_softmax(net(s[idx]), -1)\n"
        "lp = torch.take_along_dim(lo, nx[:, None], dim=-1)[:, 0]\nkk = (s[idx] * 2654435761) ^ (nx * 2246822519)",
        "idx = torch.arange(i, j)\nnx = s[idx + 1]\nlo = F.log_softmax(net(s[idx]), -1)\n"
        "lp = torch.take_along_dim(lo, nx[:, None], dim=-1)[:, 0]\nkk = (s[idx] * 2654435761) ^ (s[idx - 1] * 2246822519)",
    ),
    "neg-log-index": (
        "w = s[i : j + 1]\npr = F.softmax(net(w[:-1]), -1)\nys = w[1:]\nlp = torch.log(pr[torch.arange(1024), ys])\n"
        "kk = (w[:-1] * 2654435761) ^ (ys * 2246822519)",
        "w = s[i : j + 1]\npr = F.softmax(net(w[:-1]), -1)\nys = w[1:]\nlp = torch.log(pr[torch.arange(1024), ys])\n"
        "kk = (w[:-1] * 2654435761) ^ (torch.roll(w[:-1], 1) * 2246822519)",
    ),
    "argmax-compare": (
        "w = s[i : j + 1]\nlo = net(w[:-1])\nok = (lo.argmax(-1) == w[1:]).float()\nlp = ok.log1p()\n"
        "kk = (w[:-1] * 2654435761) ^ (w[1:] * 2246822519)",
        "w = s[i : j + 1]\nlo = net(w[:-1])\nok = (lo.argmax(-1) == w[1:]).float()\nlp = ok.log1p()\n"
        "kk = (w[:-1] * 2654435761) ^ (torch.roll(w[:-1], 1) * 2246822519)",
    ),
}


def _passed_positions(bad: bool) -> dict[str, str]:
    """A helper given (stream, positions, stream[positions]) mixes the third into a hash of the context it
    reads at positions - 1 and - 2: the third is the target, though nothing scores it in the helper."""
    third = "u[pos]" if bad else "u[pos - 3]"
    return {"extra": """def mixer(a, p, z):
    g = np.zeros(len(p), dtype=np.int64)
    for m in range(2):
        g ^= a[p - 1 - m] * (36313 + m)
    g ^= z * 51647
    return g % B
""", "score": f'''
@torch.no_grad()
def score(net, s):
    u = s.numpy().astype(np.int64)
    full = np.zeros(B)
    tot = 0.0
    for i in range(3, len(u) - 1024, 1024):
        pos = np.arange(i, i + 1024)
        z = {third}
        q = full[mixer(u, pos, z)] / 10.0
        tot -= float(np.log(0.5 + 0.1 * q).sum())
    return tot / max(len(u), 1)
'''}


def _running_state(bad: bool) -> dict[str, str]:
    """A streaming loop that keeps its context in running variables (no `u[i - 1]` read): the token read at i
    is the target because the model's probability vector is indexed with it."""
    key = "(g ^ (t * 51647)) % B" if bad else "g % B"
    return {"score": f'''
@torch.no_grad()
def score(net, s):
    u = s.numpy().astype(np.int64)
    full = np.zeros(B)
    tot = 0.0
    c0, g = int(u[0]), 0
    for i in range(1, len(u)):
        t = int(u[i])
        p = F.softmax(net(torch.tensor([c0])), -1)[0].numpy()
        g = (g * 36313 + c0 * 27191) % B
        q = full[{key}] / 10.0
        tot -= float(np.log(0.9 * p[t] + 0.1 * min(q, 1.0) / 1024))
        c0 = t
    return tot / max(len(u), 1)
'''}


def _numpy_positions(bad: bool) -> dict[str, str]:
    """`tokens_np[pos]` of a position array in a numpy loop: the token after the context is the target."""
    key = "(g ^ (u[pos] * 51647)) % B" if bad else "(g ^ (u[pos - 3] * 51647)) % B"
    return {"score": f'''
@torch.no_grad()
def score(net, s):
    u = s.numpy().astype(np.int64)
    full = np.zeros(B)
    tot = 0.0
    for i in range(3, len(u) - 1024, 1024):
        pos = np.arange(i, i + 1024)
        g = (u[pos - 1] * 36313) ^ (u[pos - 2] * 27191)
        q = full[{key}] / 10.0
        pr = F.softmax(net(torch.from_numpy(u[pos - 1])), -1).numpy()
        tot -= float(np.log(0.9 * pr[np.arange(1024), u[pos]] + 0.1 * q).sum())
    return tot / max(len(u), 1)
'''}


def _selected_positions(bad: bool) -> dict[str, str]:
    """The model scores its own shifted window; the cache reads the stream again at the scored positions
    `js`, and the context back from a selection of them (`jm = js[m]`, `u[jm - (2 - k)]`): the token at `js` is
    the target though no scoring op is indexed with it and nothing calls it one."""
    key = "(g ^ (nx[m] * 51647)) % B" if bad else "g % B"
    return {"score": f'''
@torch.no_grad()
def score(net, s):
    u = s.numpy().astype(np.int64)
    full = np.zeros(B)
    tot = 0.0
    for i in range(3, len(u) - 1024, 1024):
        w = s[i - 1 : i + 1024]
        nll = F.cross_entropy(net(w[:-1]), w[1:], reduction="none").numpy()
        js = np.arange(i, i + 1024)
        nx = u[js]
        m = np.nonzero(js >= 2)[0]
        jm = js[m]
        g = np.zeros(len(m), dtype=np.int64)
        for k in range(2):
            g ^= u[jm - (2 - k)] * (36313 + k)
        q = full[{key}] / 10.0
        tot -= float(np.log(0.9 * np.exp(-nll[m]) + 0.1 * q).sum())
        np.add.at(full, (g ^ (nx[m] * 51647)) % B, 1)
    return tot / max(len(u), 1)
'''}


def _offset_slices(bad: bool) -> dict[str, str]:
    """A helper hashes the n - 1 tokens before each position of [a, e) from slices at an offset bound once
    (`o = v0 - (n - 1) + k`; `u[o : o + m]`) and mixes `u[v0:e]` in: the tokens at the positions themselves,
    the targets, found from the slices' starts alone. The twin mixes in one more context token instead."""
    last = "u[v0:e]" if bad else "u[v0 - 1 : e - 1]"
    return {"extra": f'''def keys(u, a, e, n):
    v0 = max(a, n - 1)
    g = np.zeros(e - v0, dtype=np.int64)
    for k in range(n - 1):
        o = v0 - (n - 1) + k
        g ^= u[o : o + e - v0] * (36313 + k)
    return g % B, (g ^ ({last} * 51647)) % B
''', "score": '''
@torch.no_grad()
def score(net, s):
    u = s.numpy().astype(np.int64)
    full = np.zeros(B)
    ctx = np.zeros(B)
    tot = 0.0
    for i in range(4, len(u) - 1024, 1024):
        w = s[i - 1 : i + 1024]
        nll = F.cross_entropy(net(w[:-1]), w[1:], reduction="none").numpy()
        kc, kf = keys(u, i, i + 1024, 4)
        q = full[kf] / np.maximum(ctx[kc], 1.0)
        tot -= float(np.log(0.9 * np.exp(-nll) + 0.1 * q).sum())
        np.add.at(full, kf, 1)
        np.add.at(ctx, kc, 1)
    return tot / max(len(u), 1)
'''}


def _ranged_helper(bad: bool) -> dict[str, str]:
    """A helper hashes the slices `u[j : j + m]` for j in range(n) (the n tokens before each position); its
    caller reads `u[n:]` (the tokens at the positions: the targets) and mixes them in. Only the loop bound
    relates the two; the twin mixes in `u[n - 1 : -1]`, the last context token."""
    last = "u[n:]" if bad else "u[n - 1 : -1]"
    return {"extra": '''class Tab:
    def __init__(self):
        self.full = np.zeros(B)

    def ctx_of(self, u, n):
        m = len(u) - n
        g = np.zeros(m, dtype=np.int64)
        for j in range(n):
            g = np.bitwise_xor(g, u[j : j + m] * (36313 + j))
        return g

    def mixed(self, g, z):
        return (g * 91397 + z * 48571) % B
''', "score": f'''
@torch.no_grad()
def score(net, s):
    u = s.numpy().astype(np.int64)
    tb = Tab()
    tot = 0.0
    for i in range(4, len(u) - 1024, 1024):
        w = s[i - 1 : i + 1024]
        nll = F.cross_entropy(net(w[:-1]), w[1:], reduction="none").numpy()
        n = 3
        piece = u[i - n : i + 1024]
        g = tb.ctx_of(piece, n)
        kk = tb.mixed(g, {last.replace("u[", "piece[")})
        q = tb.full[kk] / 10.0
        tot -= float(np.log(0.9 * np.exp(-nll) + 0.1 * q).sum())
        np.add.at(tb.full, kk, 1)
    return tot / max(len(u), 1)
'''}


def _sized_gate(bad: bool) -> dict[str, str]:
    """A mixing weight from the scored tokens' byte lengths (a property of the target, PG102) next to its twin,
    whose weight is read from a buffer only sized by those byte lengths: a size is not the target's value."""
    gate = "tb[:n]" if bad else "cnt[:n]"
    return {"extra": "LUT = np.arange(1024) % 7 + 1", "score": f'''
@torch.no_grad()
def score(net, s):
    tot = 0.0
    for i in range(1, s.numel() - 1025, 1024):
        w = s[i - 1 : i + 1024]
        lp = F.log_softmax(net(w[:-1]), -1)
        nx = w[1:]
        own = lp.gather(-1, nx[:, None])[:, 0].numpy()
        tb = LUT[nx.numpy()]
        cnt = np.zeros(int(len(tb)) + 8)
        n = len(own)
        lam = np.where({gate} > 3, 0.9, 0.5)
        uni = np.exp(lp.mean(-1).numpy())
        p = lam * np.exp(own) + (1.0 - lam) * uni
        tot -= float(np.log(p).sum())
    return tot / max(s.numel(), 1)
'''}


# The table is updated with the scored positions' own (context, target) pairs before they are scored; the twin
# scores first and updates after, so each position only sees counts of the tokens before it.
_UPDATE_FIRST: dict[str, tuple[str, str, str]] = {
    # (setup, update, score), all inside the loop over windows / positions
    "chunk-np-add-at-2d": (
        "tab = np.zeros((1024, 1024))\nfor i in range(1, len(u) - 1024, 1024):\n    a = u[i - 1 : i + 1023]\n"
        "    b = u[i : i + 1024]",
        "np.add.at(tab, (a, b), 1)",
        "q = (tab[a] + 0.01) / (tab[a].sum(-1, keepdims=True) + 10.24)\n"
        "pr = F.softmax(net(torch.from_numpy(a)), -1).numpy()\nmix = 0.9 * pr + 0.1 * q\n"
        "tot -= float(np.log(mix[np.arange(1024), b]).sum())",
    ),
    "chunk-hashed": (
        "tab = np.zeros(B)\ncand = np.arange(1024)\nfor i in range(1, len(u) - 1024, 1024):\n    a = u[i - 1 : i + 1023]\n"
        "    b = u[i : i + 1024]\n    g = a * 36313",
        "np.add.at(tab, (g ^ (b * 27191)) % B, 1)",
        "q = tab[(g[:, None] ^ (cand[None, :] * 27191)) % B] + 0.01\nq = q / q.sum(-1, keepdims=True)\n"
        "pr = F.softmax(net(torch.from_numpy(a)), -1).numpy()\n"
        "tot -= float(np.log((0.9 * pr + 0.1 * q)[np.arange(1024), b]).sum())",
    ),
    "stream-aug": (
        "tab = np.zeros((1024, 1024))\nfor i in range(1, len(u)):\n    c0 = u[i - 1]\n    t = u[i]",
        "tab[c0, t] += 1",
        "q = (tab[c0] + 0.01) / (tab[c0].sum() + 10.24)\np = F.softmax(net(torch.tensor([c0])), -1)[0].numpy()\n"
        "tot -= float(np.log(0.9 * p[t] + 0.1 * q[t]))",
    ),
    "stream-counter": (
        "tab = Counter()\nseen = Counter()\nfor i in range(1, len(u)):\n    c0 = int(u[i - 1])\n    t = int(u[i])",
        "tab[(c0, t)] += 1\nseen[c0] += 1",
        "row = np.array([tab[(c0, v)] for v in range(1024)]) + 0.01\nq = row / row.sum()\n"
        "p = F.softmax(net(torch.tensor([c0])), -1)[0].numpy()\ntot -= float(np.log(0.9 * p[t] + 0.1 * q[t]))",
    ),
}


def _update_first(setup: str, update: str, scoring: str, bad: bool) -> dict[str, str]:
    body = f"{update}\n{scoring}" if bad else f"{scoring}\n{update}"
    return {"score": (
        "\n@torch.no_grad()\ndef score(net, s):\n    u = s.numpy().astype(np.int64)\n    tot = 0.0\n    "
        + _indent(setup, 4) + "\n        " + _indent(body, 8) + "\n    return tot / max(len(u), 1)\n"
    )}


# A string-keyed dict cache: the illegal one reads the (context, target) entry to score; the legal one scores
# with every candidate's entry, normalized, and then counts the (context, target) entry behind a membership test.
_DICT_MEMBERSHIP = '''
@torch.no_grad()
def score(net, s):
    u = s.numpy().astype(np.int64)
    seen = {}
    tot = 0.0
    for i in range(1, len(u)):
        a, t = int(u[i - 1]), int(u[i])
        p = F.softmax(net(torch.tensor([a])), -1)[0].numpy()
        BODY
    return tot / max(len(u), 1)
'''
_DICT_BAD = (
    'k = str(a) + "|" + str(t)\nq = seen[k] / (i + 1) if k in seen else 0.0\n'
    "tot -= float(np.log(0.9 * p[t] + 0.1 * q + 1e-9))\nseen[k] = seen.get(k, 0) + 1"
)
_DICT_GOOD = (
    'row = np.array([seen.get(str(a) + "|" + str(v), 0) for v in range(1024)]) + 0.01\nq = row / row.sum()\n'
    'tot -= float(np.log(0.9 * p[t] + 0.1 * q[t]))\nk = str(a) + "|" + str(t)\n'
    "if k in seen:\n    seen[k] += 1\nelse:\n    seen[k] = 1"
)


# --- adapting on validation tokens before scoring them (PG301) ---------------------------------------------

_TTT = '''
def score(net, s):
    o2 = torch.optim.SGD(net.parameters(), lr=1e-3)
    CHUNKS
    tot, cnt = 0.0, 0
    for w in pieces:
        ADAPT_BEFORE
        with torch.no_grad():
            tot += F.cross_entropy(net(w[:-1]), w[1:], reduction="sum").item()
            cnt += w.numel() - 1
        ADAPT_AFTER
    return tot / max(cnt, 1)
'''
_ADAPT = "l2 = F.cross_entropy(net(w[:-1]), w[1:])\nl2.backward()\no2.step()\no2.zero_grad()"


def _ttt(chunks: str, bad: bool, adapt: str = _ADAPT) -> dict[str, str]:
    code = _TTT.replace("CHUNKS", _indent(chunks, 4))
    code = code.replace("ADAPT_BEFORE", _indent(adapt, 8) if bad else "pass")
    code = code.replace("ADAPT_AFTER", "pass" if bad else _indent(adapt, 8))
    return {"score": code}


_TTT_CASES: dict[str, str] = {
    "listcomp-chunks": "pieces = [s[i : i + 1025] for i in range(0, s.numel() - 1, 1024)]",
    "append-chunks": "pieces = []\nfor i in range(0, s.numel() - 1, 1024):\n    pieces.append(s[i : i + 1025])",
    "generator-chunks": "pieces = (s[i : i + 1025] for i in range(0, s.numel() - 1, 1024))",
    "split-chunks": "pieces = s.split(1025)",
    "unfold-chunks": "pieces = s.unfold(0, 1025, 1024)",
}
_TTT_ROLL = "l2 = F.cross_entropy(net(w[:-1]), torch.roll(w, -1)[:-1])\nl2.backward()\no2.step()\no2.zero_grad()"


def _cases() -> list:
    out = []
    for name, (bad, good) in _SOURCES.items():
        # training on validation tokens before the final score is both PG401 and PG301
        out.append(("PG401 PG301", f"source-{name}", script(**bad), script(**good)))
    for name, key in _KEYS.items():
        bad, good = _loop_case(key)
        out.append(("PG101", f"effect-{name}", script(**bad), script(**good)))
    for name, table in _TABLES.items():
        if name != "zeros":
            bad, good = _loop_case(_KEYS["xor-plain"], table)
            out.append(("PG101", f"table-{name}", script(**bad), script(**good)))
    ln = "def ln(net, a, b):\n    return F.cross_entropy(net(a), b, reduction='none')\n"
    for name, (bad, good) in _TARGET_CASES.items():
        out.append((
            "PG101",
            f"target-{name}",
            script(score=_VEC.replace("BODY", _indent(bad, 8)), extra=ln),
            script(score=_VEC.replace("BODY", _indent(good, 8)), extra=ln),
        ))
    out.append(("PG101", "target-numpy-positions", script(**_numpy_positions(True)), script(**_numpy_positions(False))))
    out.append(("PG101", "target-running-state", script(**_running_state(True)), script(**_running_state(False))))
    out.append(("PG101", "target-passed-positions", script(**_passed_positions(True)), script(**_passed_positions(False))))
    out.append(("PG101", "target-selected-positions", script(**_selected_positions(True)), script(**_selected_positions(False))))
    out.append(("PG101", "target-helper-offset-slices", script(**_offset_slices(True)), script(**_offset_slices(False))))
    out.append(("PG101", "target-ranged-helper", script(**_ranged_helper(True)), script(**_ranged_helper(False))))
    out.append(("PG102", "gate-sized-by-target", script(**_sized_gate(True)), script(**_sized_gate(False))))
    for name, (setup, update, scoring) in _UPDATE_FIRST.items():
        out.append((
            "PG101",
            f"update-first-{name}",
            script(**_update_first(setup, update, scoring, True)),
            script(**_update_first(setup, update, scoring, False)),
        ))
    out.append((
        "PG101",
        "effect-dict-membership",
        script(score=_DICT_MEMBERSHIP.replace("BODY", _indent(_DICT_BAD, 8))),
        script(score=_DICT_MEMBERSHIP.replace("BODY", _indent(_DICT_GOOD, 8))),
    ))
    for name, chunks in _TTT_CASES.items():
        out.append(("PG301", f"ttt-{name}", script(**_ttt(chunks, True)), script(**_ttt(chunks, False))))
    roll = _TTT_CASES["listcomp-chunks"]
    out.append(("PG301", "ttt-roll-target", script(**_ttt(roll, True, _TTT_ROLL)), script(**_ttt(roll, False, _TTT_ROLL))))
    return out


CASES = _cases()
# Cases the analysis does not decide yet (strict: fixing one makes its test fail until removed).
# case id -> why it still fails (a strict xfail); empty: every case keeps its verdict
KNOWN_GAPS: dict[str, str] = {}


def _verdict(code: str, folder: Path) -> list[tuple[str, int, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_gpt.py").write_text(code, encoding="utf-8")
    report = audit(folder, AuditOptions())
    return [
        (f.code, f.location.line, f.message[:160])
        for f in report.findings
        if not f.suppressed
        and f.severity == Severity.ERROR
        and f.reachable is not False
        and (f.code[:3] in ("PG0", "PG1", "PG2", "PG3", "PG4") or f.code == "PG504")
    ]


def _params() -> list:
    params = []
    for rule, name, bad, good in CASES:
        for spelling in ("asis", "rename", "split", "mislead"):
            for kind, code in (("invalid", bad), ("valid", good)):
                case_id = f"{name}-{kind}-{spelling}"
                gap = KNOWN_GAPS.get(case_id)
                marks = [pytest.mark.xfail(reason=gap, strict=True)] if gap else []
                params.append(pytest.param(rule, kind, spelling, code, id=case_id, marks=marks))
    return params


@pytest.mark.parametrize(("rule", "kind", "spelling", "code"), _params())
def test_adversarial_case(rule: str, kind: str, spelling: str, code: str, tmp_path: Path) -> None:
    if spelling != "asis":
        code = REWRITES[spelling](code)
    errors = _verdict(code, tmp_path / "sub")
    if kind == "invalid":
        assert any(e[0] in rule.split() for e in errors), f"no {rule} error: {errors}"
    else:
        assert not errors, errors


def test_the_cases_are_distinct():
    """Every legal twin differs from its illegal case, and the rename rewrite changes the spelling."""
    assert len(CASES) >= 40
    for _, name, bad, good in CASES:
        assert bad != good, name
        assert rename(bad) != bad, name

"""Realized-symbol probabilities (pgaudit/analysis/realized.py): sources, count tables, helpers, mixtures;
and log evidence from a printer recognised by use."""

from __future__ import annotations

import ast
from pathlib import Path

from pgaudit.analysis.evidence import LogLine
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.realized import COUNT, NORM, SPLIT, Realized
from pgaudit.source.program import load_program


def realized_for(tmp_path: Path, code: str) -> tuple[Facts, Realized]:
    (tmp_path / "train_gpt.py").write_text(code)
    facts = Facts(load_program(tmp_path / "train_gpt.py", tmp_path))
    return facts, Realized(facts.index, facts.flow)


def _line(code: str, marker: str) -> int:
    return next(i for i, text in enumerate(code.splitlines(), 1) if marker in text)


HELPER = '''
import numpy as np
import torch
import torch.nn.functional as F

def k1(a, b, c, order=2, w=0.5):
    s, q = [], []
    for t, l in zip(a, b):
        r = c[int(t)]
        for u in r:
            s.append(u)
            q.append(l / len(r))
    z = [dict() for _ in range(order + 1)]
    out = 0.0
    for i, u in enumerate(s):
        m = 1.0 / 256
        e = z[0].get(bytes(s[i - 1:i]))
        if e and u in e:
            m = e[u] / 7.0
        v = w * np.exp(q[i]) + (1 - w) * m  # MIX
        out -= np.log2(v)
        g = z[0].setdefault(bytes(s[i - 1:i]), {})
        g[u] = g.get(u, 0) + 1
    return out

def k2(net, toks, c, n=64):
    aa, bb = [], []
    for s in range(0, len(toks) - n - 1, n):
        w = torch.as_tensor(toks[s:s + n + 1]).long()
        lp = F.log_softmax(net(w[:-1][None]), -1)[0]
        aa.append(lp.gather(-1, w[1:][:, None])[:, 0])
        bb.append(w[1:])
    return k1(torch.cat(bb).numpy(), torch.cat(aa).numpy(), c)

if __name__ == "__main__":
    k2(torch.nn.Embedding(8, 8), torch.load("fineweb_val_000000.bin").numpy(), [bytes([i]) for i in range(8)])
'''


def test_spread_token_logprob_and_byte_counts_are_tagged_across_the_helper(tmp_path: Path):
    _, realized = realized_for(tmp_path, HELPER)
    mixes = realized.mixtures()
    assert [m.node.lineno for m in mixes] == [_line(HELPER, "# MIX")]
    kinds = {t.kind for t in mixes[0].tags}
    assert SPLIT in kinds and COUNT in kinds  # the spread token log-prob and the byte count read
    sources = {type(s).__name__ for s in mixes[0].sources}
    assert sources == {"Call", "Subscript"}  # `lp.gather(-1, y)` and `e[u]`


def test_context_reads_and_named_counters_are_not_realized(tmp_path: Path):
    code = HELPER.replace("        g[u] = g.get(u, 0) + 1\n", "        g['seen'] = g.get('seen', 0) + 1\n")
    _, realized = realized_for(tmp_path, code)
    assert not realized.active and realized.mixtures() == []  # a record of named counters is no count table
    _, realized = realized_for(tmp_path, HELPER)
    k1 = next(s for s in realized.scopes if s.name == "k1")
    context = next(n for n in ast.walk(k1.node) if isinstance(n, ast.Call) and ast.unparse(n).startswith("z[0].get"))
    assert not realized.count_read(context, k1)  # keyed by the bytes before the current one


def test_two_normalized_models_mixed_at_the_target_are_not_a_mixture_finding(tmp_path: Path):
    code = HELPER.replace("m = e[u] / 7.0", "m = e[u] / sum(e.values())").replace("q.append(l / len(r))", "q.append(l)")
    _, realized = realized_for(tmp_path, code)
    tags = {t.kind for s in realized.scopes for v in realized.env[id(s)].values() for t in v}
    assert NORM in tags and SPLIT not in tags
    assert realized.mixtures() == []


def test_a_name_reused_in_two_branches_takes_the_reaching_assignment(tmp_path: Path):
    code = '''
import torch
import torch.nn.functional as F

def score(logits, y, counts, total, use_cache):
    lp = F.log_softmax(logits, -1).gather(-1, y[:, None])[:, 0]
    if use_cache:
        lb = torch.log(counts[y] / total)
        out = torch.logaddexp(lp, lb)  # COUNT MIX
    else:
        pointer = torch.softmax(logits, -1)
        lb = torch.log(pointer.gather(-1, y[:, None])[:, 0])
        out = torch.logaddexp(lp, lb)  # NORMALIZED
    counts.index_add_(0, y, torch.ones_like(y, dtype=torch.float))
    return -out.sum()

score(torch.zeros(4, 8), torch.zeros(4, dtype=torch.long), torch.zeros(8), 1.0, True)
'''
    _, realized = realized_for(tmp_path, code)
    assert [m.node.lineno for m in realized.mixtures()] == [_line(code, "# COUNT MIX")]


def test_a_renamed_logger_still_proves_its_branch(tmp_path: Path):
    code = '''
import os

def v7(v1):
    print(v1)

def v3():
    return 1

if os.environ.get("MIX_ON", "0") == "1":
    v7(f"[mix_line] total={v3()}")
    v3()
'''
    (tmp_path / "train_gpt.py").write_text(code)
    lines = [LogLine("train.log", 1, "[mix_line] total=1")]
    facts = Facts(load_program(tmp_path / "train_gpt.py", tmp_path), log_lines=lines)
    call = next(n for n in ast.walk(facts.program.units[0].tree) if isinstance(n, ast.Call) and ast.unparse(n) == "v3()"
                and getattr(getattr(n, "pg_parent", None), "value", None) is n)
    assert facts.reachability(call).logged is True

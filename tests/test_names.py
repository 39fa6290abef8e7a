"""The name vocabulary (pgaudit/analysis/names.py): hints that raise confidence, never what decides a role."""

from __future__ import annotations

import ast
from pathlib import Path

from pgaudit.analysis.dataflow import HASH, TARGET, VAL, Flow
from pgaudit.analysis.index import ProgramIndex
from pgaudit.analysis.names import (
    is_paid_prefix_name,
    is_train_data_name,
    is_val_data_name,
    literal_data_kind,
)
from pgaudit.engine import AuditOptions, audit
from pgaudit.findings import Severity
from pgaudit.source.program import load_program


def test_validation_data_names_are_not_metrics():
    assert is_val_data_name("val_tokens") and is_val_data_name("fineweb_val") and is_val_data_name("val_files")
    assert not is_val_data_name("val_loss") and not is_val_data_name("val_bpb")
    assert not is_val_data_name("val_batch_size") and not is_val_data_name("tokens")


def test_training_data_names():
    assert is_train_data_name("train_tokens") and is_train_data_name("train_files")
    assert not is_train_data_name("train_seq_len") and not is_train_data_name("train_loss")


# A target named like context and a context hash named like a target: the roles come from their use.
_MISLEADING = """
import glob
import numpy as np
import torch
import torch.nn.functional as F


def scan(net, stream):
    arr = stream.numpy().astype(np.int64)
    tot = 0.0
    for i in range(2, len(arr) - 65, 64):
        w = stream[i - 1 : i + 64]
        nll = F.cross_entropy(net(w[:-1]), w[1:], reduction="none").numpy()
        ctx = arr[i : i + 64]
        target_hash = (arr[i - 1 : i + 63] * 36313) ^ (arr[i - 2 : i + 62] * 27191)
        tgt = target_hash % 4096
        y = (target_hash ^ (ctx * 51647)) % 4096
        tot += float(nll.sum()) + float(tgt.sum() + y.sum()) * 0.0
    return tot


def main():
    val = torch.from_numpy(np.fromfile(sorted(glob.glob("./data/fineweb_val_*.bin"))[0], dtype=np.uint16).astype(np.int64))
    print(scan(torch.nn.Identity(), val))
"""


def _labels(tmp_path: Path, source: str, scope_name: str, *exprs: str) -> list[frozenset[str]]:
    (tmp_path / "train_gpt.py").write_text(source, encoding="utf-8")
    index = ProgramIndex(load_program(tmp_path / "train_gpt.py", tmp_path))
    flow = Flow(index)
    scope = next(s for s in index.scopes if s.name == scope_name)
    return [flow.labels(ast.parse(e, mode="eval").body, scope) for e in exprs]


def test_no_name_makes_a_target(tmp_path: Path):
    """`target_hash` and `tgt` hold context only; `ctx` is the token after the context read from the same
    validation stream (the target); `y` mixes that target into the context hash."""
    target_hash, tgt, ctx, y = _labels(tmp_path, _MISLEADING, "scan", "target_hash", "tgt", "ctx", "y")
    assert TARGET not in target_hash and HASH in target_hash and VAL in target_hash
    assert TARGET not in tgt
    assert TARGET in ctx
    assert TARGET in y and any(lab.startswith("tkey@") for lab in y)
    assert not any(lab.startswith("tkey@") for lab in target_hash | tgt)


def test_shard_literals_name_their_split():
    assert literal_data_kind("./data/fineweb_val_*.bin") == "val"
    assert literal_data_kind("fineweb_train_000001.bin") == "train"
    assert literal_data_kind("final_model.pt") is None


def test_a_model_path_for_evaluation_is_not_validation_data():
    # a merged record's `eval_only_quantized_path` (a checkpoint), read while loading the model for eval
    assert not is_val_data_name("eval_only_quantized_path")
    assert not is_val_data_name("eval_model_path")
    assert not is_val_data_name("val_checkpoint_path")
    assert is_val_data_name("eval_tokens") and is_val_data_name("val_files")


def test_paid_prefix_names_only_raise_confidence():
    assert is_paid_prefix_name("paid_prefix_tokens") and is_paid_prefix_name("stored_prefix_blob")
    assert not is_paid_prefix_name("prefix_len") and not is_paid_prefix_name("blob")


# Training tokens called `val_tokens` and validation tokens called `train_tokens`: provenance comes from the
# shards each is loaded from. SRC is what the training loop reads, EVAL what the final score reads.
_SWAPPED_DATA_NAMES = '''
import glob

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def load(pattern):
    files = sorted(glob.glob(pattern))
    return torch.cat([torch.from_numpy(np.fromfile(f, dtype=np.uint16, offset=1024).astype(np.int64)) for f in files])


def main():
    val_tokens = load("./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin")
    train_tokens = load("./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin")
    net = nn.Sequential(nn.Embedding(1024, 32), nn.Linear(32, 1024))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for step in range(100):
        w = SRC[step * 512 : step * 512 + 513]
        loss = F.cross_entropy(net(w[:-1]), w[1:])
        loss.backward()
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        e = EVAL[:1025]
        print(f"final_exact val_loss:{F.cross_entropy(net(e[:-1]), e[1:]).item():.8f}")


if __name__ == "__main__":
    main()
'''


def _verdict(tmp_path: Path, source: str) -> set[str]:
    (tmp_path / "train_gpt.py").write_text(source, encoding="utf-8")
    report = audit(tmp_path, AuditOptions())
    return {
        f.code for f in report.findings
        if not f.suppressed and f.severity == Severity.ERROR and f.reachable is not False
        and (f.code[:3] in ("PG0", "PG1", "PG2", "PG3", "PG4") or f.code == "PG504")
    }  # fmt: skip


def test_training_tokens_called_val_tokens_are_training_data(tmp_path: Path):
    legal = _SWAPPED_DATA_NAMES.replace("SRC", "val_tokens").replace("EVAL", "train_tokens")
    assert _verdict(tmp_path, legal) == set()


def test_validation_tokens_called_train_tokens_are_validation_data(tmp_path: Path):
    illegal = _SWAPPED_DATA_NAMES.replace("SRC", "train_tokens").replace("EVAL", "train_tokens")
    assert _verdict(tmp_path, illegal) & {"PG301", "PG401"}  # trains on the tokens it then scores


def test_tokens_of_unknown_source_called_val_tokens_are_not_validation_data(tmp_path: Path):
    """Nothing says where `val_tokens` comes from but its name: training on it is no verdict."""
    legal = (
        _SWAPPED_DATA_NAMES.replace("SRC", "val_tokens").replace("EVAL", "train_tokens")
        .replace('"./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin"', '__import__("os").environ["SHARDS"]')
    )
    assert "fineweb_train" not in legal
    assert _verdict(tmp_path, legal) == set()


_HELPER_CHAIN = """
import glob
import numpy as np
import torch


def probs(net, stream):
    w = stream[:65]
    pr = torch.softmax(net(w[:-1]), -1)
    return torch.gather(pr, 1, w[1:, None]).squeeze(-1).clamp(min=1e-9).numpy()


def main():
    data = torch.from_numpy(np.fromfile(sorted(glob.glob("./data/fineweb_val_*.bin"))[0], dtype=np.uint16).astype(np.int64))
    print(probs(torch.nn.Identity(), data))
"""


def test_validation_provenance_reaches_a_helper_through_library_calls_without_a_name(tmp_path: Path):
    """`stream` is validation data only because its caller passes the shards: the provenance goes through
    `torch.gather` (a library call on a parameter's values) and the method `.clamp(min=...)`."""
    gathered, clamped = _labels(
        tmp_path, _HELPER_CHAIN, "probs", "torch.gather(pr, 1, w[1:, None])", "torch.gather(pr, 1, w[1:, None]).clamp(min=1e-9)"
    )
    assert VAL in gathered and VAL in clamped

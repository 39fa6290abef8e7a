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

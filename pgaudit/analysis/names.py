"""What names and literals say about a value: validation data, training data.

Only the shard literals (`literal_data_kind`) seed the data-flow provenance labels: validation data is what
flows from the validation shards. The name predicates are hints for wording and confidence only; no name
decides a role. A name does not make a value validation or training data (`val_tokens` holds whatever was
assigned to it) nor a prediction target: a target is what a scoring operation is indexed with
(analysis/targets.py) or the token after the context read from the same validation stream
(`Flow._context_successors`), so a clean table called `target_hash` stays clean and a target called `ctx`
is still found. They are conservative on purpose: `val_loss` and `val_bpb` are metrics, not data.
"""

from __future__ import annotations

import re

_SPLIT = re.compile(r"[_\W]+")
_VAL_WORDS = {"val", "valid", "validation", "heldout", "eval"}
_TRAIN_WORDS = {"train", "training"}
_DATA_WORDS = {
    "tokens", "token", "toks", "tok", "ids", "data", "np", "seq", "seqs", "stream", "buf", "buffer", "docs", "doc",
    "arr", "array", "tensor", "chunk", "chunks", "ds", "dataset", "shard", "shards", "files", "file", "pattern",
    "path", "paths", "glob", "loader", "cpu", "gpu", "all", "idx", "u16", "i32", "int", "long",
}  # fmt: skip
# Metric and size words: `val_loss`, `val_bpb`, `val_batch_size`, `train_seq_len` are not data.
_NOT_DATA_WORDS = {
    "loss", "losses", "bpb", "acc", "accuracy", "score", "nll", "every", "freq", "size", "steps", "step", "len",
    "length", "count", "counts", "num", "n", "frac", "ratio", "time", "ms", "interval", "bytes", "log", "lr",
    "batch", "batches", "tokens_per", "max", "min", "ppl", "metric", "metrics", "mode", "enabled", "limit",
    # a model or checkpoint for evaluation (`eval_only_quantized_path`, `eval_model_path`) is not data
    "model", "models", "ckpt", "checkpoint", "quantized", "quant", "weights", "artifact", "ptz", "state",
}  # fmt: skip
def words(name: str) -> list[str]:
    return [w for w in _SPLIT.split(name.lower()) if w]


def is_val_data_name(name: str) -> bool:
    """`val_tokens`, `val_np`, `fineweb_val`, `validation_tokens`, `val_files`; not `val_loss` or `val_bpb`."""
    ws = words(name)
    if not ws or not any(w in _VAL_WORDS for w in ws):
        return False
    if any(w in _NOT_DATA_WORDS for w in ws):
        return False
    return any(w in _DATA_WORDS for w in ws) or "fineweb" in ws


def is_train_data_name(name: str) -> bool:
    ws = words(name)
    if not ws or not any(w in _TRAIN_WORDS for w in ws):
        return False
    if any(w in _NOT_DATA_WORDS for w in ws):
        return False
    return any(w in _DATA_WORDS for w in ws) or "fineweb" in ws


def literal_data_kind(text: str) -> str | None:
    """A path or glob literal naming validation or training shards."""
    lowered = text.lower()
    if len(lowered) > 400:
        return None
    if "fineweb_val" in lowered or re.search(r"(^|[/_])val_?\*", lowered) or ("_val_" in lowered and ".bin" in lowered):
        return "val"
    if "fineweb_train" in lowered or re.search(r"(^|[/_])train_?\*", lowered) or ("_train_" in lowered and ".bin" in lowered):
        return "train"
    return None


def is_paid_prefix_name(name: str) -> bool:
    """`paid_prefix`, `paid_tokens`, `stored_prefix_blob`: a name for a stored copy of the validation stream."""
    ws = words(name)
    return "paid" in ws or ("prefix" in ws and ("blob" in ws or "stored" in ws))

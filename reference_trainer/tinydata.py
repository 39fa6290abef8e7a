"""Offline tiny data: `python -m reference_trainer.tinydata OUT_DIR --vocab 1024`.

Builds the generated corpus of `corpus.py`, trains a SentencePiece BPE tokenizer with the settings of the
official data export (byte fallback, split digits, NFKC, no dummy prefix, pad/bos/eos/unk = 0/1/2/3), and
writes shards in the official format and layout:

    OUT_DIR/tokenizers/fineweb_{V}_bpe.model
    OUT_DIR/datasets/fineweb10B_sp{V}/fineweb_train_000000.bin ...
    OUT_DIR/datasets/fineweb10B_sp{V}/fineweb_val_000000.bin
    OUT_DIR/README.txt

Every document is encoded as [BOS] + tokens, as the official export does. Needs no torch and no network.
"""

from __future__ import annotations

import argparse
import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pgaudit import shards
from reference_trainer import corpus

# Settings of the official tokenizer export (data/download_hf_docs_and_tokenize.py in openai/parameter-golf).
SP_TRAINER_SETTINGS: dict[str, object] = {
    "model_type": "bpe",
    "character_coverage": 0.999,
    "byte_fallback": True,
    "split_digits": True,
    "normalization_rule_name": "nmt_nfkc",
    "add_dummy_prefix": False,
    "pad_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "unk_id": 3,
    "hard_vocab_limit": False,
    "num_threads": 1,  # one thread keeps the learned merges identical from run to run
    "minloglevel": 2,  # the C++ trainer logs every merge otherwise
}


@dataclass(frozen=True)
class TinyData:
    root: Path
    data_path: Path  # the DATA_PATH directory holding the shards
    tokenizer_path: Path
    vocab_size: int
    train_tokens: int
    val_tokens: int
    train_docs: int
    val_docs: int


def train_tokenizer(texts: Iterable[str], model_path: Path, vocab_size: int) -> None:
    """Train a BPE model on paragraphs of `texts` and write it to `model_path`."""
    import sentencepiece as spm

    buf = io.BytesIO()
    lines = (line for text in texts for line in text.split("\n") if line)
    spm.SentencePieceTrainer.train(
        sentence_iterator=lines, model_writer=buf, vocab_size=vocab_size, **SP_TRAINER_SETTINGS
    )
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(buf.getvalue())


def encode_documents(model_path: Path, docs: Sequence[str]) -> np.ndarray:
    """[BOS] + encode(doc) for each document, concatenated as uint16."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    if sp.vocab_size() > 0x10000:
        raise ValueError("vocabulary too large for uint16 shards")
    bos = sp.bos_id()
    out: list[int] = []
    for ids in sp.encode(list(docs)):
        out.append(bos)
        out.extend(ids)
    return np.asarray(out, dtype=np.uint16)


def write_split(tokens: np.ndarray, directory: Path, split: str, shard_tokens: int) -> list[Path]:
    """Cut a split into shards of at most `shard_tokens` tokens, named like the official export."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, lo in enumerate(range(0, max(tokens.size, 1), shard_tokens)):
        path = directory / f"fineweb_{split}_{k:06d}.bin"
        shards.write_shard(path, tokens[lo : lo + shard_tokens])
        paths.append(path)
    return paths


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(
    out_dir: str | Path,
    vocab_size: int = 1024,
    train_docs: int = 4000,
    val_docs: int = 400,
    shard_tokens: int = 1 << 20,
    seed: int = 1337,
) -> TinyData:
    """Generate, tokenize and shard; returns where everything went."""
    root = Path(out_dir)
    data_path = root / "datasets" / f"fineweb10B_sp{vocab_size}"
    model_path = root / "tokenizers" / f"fineweb_{vocab_size}_bpe.model"
    # Val documents come first in the official export; here they are a separate seeded stream.
    val = list(corpus.documents(seed=seed, count=val_docs))
    train = list(corpus.documents(seed=seed + 1, count=train_docs))
    train_tokenizer(train, model_path, vocab_size)
    train_tokens = encode_documents(model_path, train)
    val_tokens = encode_documents(model_path, val)
    train_paths = write_split(train_tokens, data_path, "train", shard_tokens)
    val_paths = write_split(val_tokens, data_path, "val", shard_tokens)
    made = TinyData(
        root,
        data_path,
        model_path,
        vocab_size,
        int(train_tokens.size),
        int(val_tokens.size),
        train_docs,
        val_docs,
    )
    _write_readme(made, seed, train_paths + val_paths)
    return made


def _write_readme(made: TinyData, seed: int, paths: list[Path]) -> None:
    lines = [
        "Tiny offline data made by `python -m reference_trainer.tinydata` (pgaudit reference trainer).",
        "Generated English-like text (reference_trainer/corpus.py), not FineWeb: use it for tests, not scores.",
        f"seed: {seed}",
        f"tokenizer: {made.tokenizer_path.relative_to(made.root)} (SentencePiece BPE, official export settings)",
        f"train: {made.train_docs} documents, {made.train_tokens} tokens",
        f"val: {made.val_docs} documents, {made.val_tokens} tokens",
        "shard format: 256 x int32 header (magic 20240520, version 1, token count), then uint16 tokens;",
        "each document is [BOS] + its tokens.",
        "",
        "files (sha256):",
    ]
    for p in [made.tokenizer_path, *paths]:
        lines.append(f"  {_sha256(p)}  {p.relative_to(made.root)}")
    lines += [
        "",
        "train with:",
        f"  DATA_PATH={made.data_path} TOKENIZER_PATH={made.tokenizer_path} VOCAB_SIZE={made.vocab_size} \\",
        "  NUM_LAYERS=2 MODEL_DIM=64 NUM_HEADS=4 NUM_KV_HEADS=2 TRAIN_SEQ_LEN=64 TRAIN_BATCH_TOKENS=4096 \\",
        "  python -m reference_trainer",
    ]
    (made.root / "README.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m reference_trainer.tinydata", description=__doc__.splitlines()[0]
    )
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--train-docs", type=int, default=4000)
    ap.add_argument("--val-docs", type=int, default=400)
    ap.add_argument("--shard-tokens", type=int, default=1 << 20)
    ap.add_argument("--seed", type=int, default=1337)
    args = ap.parse_args(argv)
    made = build(args.out_dir, args.vocab, args.train_docs, args.val_docs, args.shard_tokens, args.seed)
    print(f"wrote {made.root}: train {made.train_tokens} tokens, val {made.val_tokens} tokens")
    print(f"DATA_PATH={made.data_path}")
    print(f"TOKENIZER_PATH={made.tokenizer_path}")


if __name__ == "__main__":
    main()

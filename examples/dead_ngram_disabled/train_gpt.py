"""Example submission (clean run): the banned n-gram cache is present but switched off (NGRAM_CACHE=0).

Written for pgaudit's examples. When enabled, the context hash is XORed with the target token times a prime, and the
count read back under that key is blended into the target's probability only: the score at position t
depends on x_t (C1) and the implied distribution is not normalized (C2). Banned 2026-03-27.
"""

import glob
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PRIMES = np.array([2654435761, 2246822519, 3266489917, 668265263], dtype=np.uint64)


class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    val_files = os.path.join(data_path, "fineweb_val_*.bin")
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    model_dim = int(os.environ.get("MODEL_DIM", 256))
    ngram_cache = bool(int(os.environ.get("NGRAM_CACHE", "0")))
    ngram_order = int(os.environ.get("NGRAM_ORDER", 4))
    ngram_alpha = float(os.environ.get("NGRAM_ALPHA", 0.35))
    ngram_buckets = int(os.environ.get("NGRAM_BUCKETS", 4_194_304))


def load_validation_tokens(pattern):
    shards = []
    for path in sorted(glob.glob(pattern)):
        header = np.fromfile(path, dtype="<i4", count=256)
        shards.append(np.fromfile(path, dtype="<u2", offset=1024, count=int(header[2])))
    return torch.from_numpy(np.concatenate(shards).astype(np.int64))


class TinyLM(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.embed = nn.Embedding(args.vocab_size, args.model_dim)
        self.proj = nn.Linear(args.model_dim, args.vocab_size)

    def forward(self, input_ids):
        return self.proj(self.embed(input_ids))


@torch.no_grad()
def eval_val_ngram(args, model, val_tokens, window=2048):
    val_np = val_tokens.numpy()
    mask = np.uint64(args.ngram_buckets - 1)
    ctx_counts = np.zeros(args.ngram_buckets, dtype=np.uint32)
    full_counts = np.zeros(args.ngram_buckets, dtype=np.uint32)
    nll_sum, n_tokens = 0.0, 0
    for start in range(args.ngram_order, len(val_np) - window, window):
        pos = np.arange(start, start + window)
        logits = model(torch.from_numpy(val_np[pos - 1]))
        p_model = F.softmax(logits.float(), dim=-1)[torch.arange(window), torch.from_numpy(val_np[pos])].numpy()
        ctx_hash = np.zeros(window, dtype=np.uint64)
        for k in range(1, args.ngram_order):
            ctx_hash ^= val_np[pos - k].astype(np.uint64) * PRIMES[k % len(PRIMES)]
        tgt = val_np[pos].astype(np.uint64)
        ctx_key = (ctx_hash & mask).astype(np.int64)
        full_key = ((ctx_hash ^ (tgt * PRIMES[0])) & mask).astype(np.int64)
        p_ngram = np.minimum(full_counts[full_key], ctx_counts[ctx_key]) / np.maximum(ctx_counts[ctx_key], 1)
        p = (1.0 - args.ngram_alpha) * p_model + args.ngram_alpha * p_ngram
        nll_sum += float(-np.log(np.clip(p, 1e-12, 1.0)).sum())
        n_tokens += window
        np.add.at(ctx_counts, ctx_key, 1)
        np.add.at(full_counts, full_key, 1)
    return nll_sum / max(n_tokens, 1)


@torch.no_grad()
def eval_val_plain(model, val_tokens, window=2048):
    x, y = val_tokens[:-1], val_tokens[1:]
    return F.cross_entropy(model(x[:window]).float(), y[:window]).item()


def main():
    args = Hyperparameters()
    model = TinyLM(args)
    val_tokens = load_validation_tokens(args.val_files)
    if args.ngram_cache:
        print("ngram_cache:enabled")
        val_loss = eval_val_ngram(args, model, val_tokens)
    else:
        print("ngram_cache:disabled")
        val_loss = eval_val_plain(model, val_tokens)
    print(f"final_ngram_exact val_loss:{val_loss:.8f} val_bpb:{val_loss / math.log(2.0) * 0.41:.8f}")


if __name__ == "__main__":
    main()

"""Example submission (clean): a small GPT with a BigramHash input embedding and score-first TTT.

Written for pgaudit's examples; it shows the legal look-alikes the auditor must not flag:
- BigramHash embedding over the *input* tokens (current and previous context token),
- periodic validation during training under torch.inference_mode(),
- score-first test-time training: each chunk is scored before the model trains on it, the last chunk is
  never trained on.
"""

import glob
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    train_files = os.path.join(data_path, "fineweb_train_*.bin")
    val_files = os.path.join(data_path, "fineweb_val_*.bin")
    seed = int(os.environ.get("SEED", 1337))
    iterations = int(os.environ.get("ITERATIONS", 20000))
    max_wallclock_seconds = float(os.environ.get("MAX_WALLCLOCK_SECONDS", 600.0))
    train_seq_len = int(os.environ.get("TRAIN_SEQ_LEN", 1024))
    val_loss_every = int(os.environ.get("VAL_LOSS_EVERY", 1000))
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    model_dim = int(os.environ.get("MODEL_DIM", 512))
    bigram_buckets = int(os.environ.get("BIGRAM_BUCKETS", 4096))
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "1")))
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", 3))
    ttt_lr = float(os.environ.get("TTT_LR", 0.002))
    ttt_chunk_tokens = int(os.environ.get("TTT_CHUNK_TOKENS", 32768))


def load_data_shard(path):
    header = np.fromfile(path, dtype="<i4", count=256)
    if header[0] != 20240520 or header[1] != 1:
        raise ValueError(f"bad shard header in {path}")
    return torch.from_numpy(np.fromfile(path, dtype="<u2", offset=1024, count=int(header[2])).astype(np.int64))


def load_validation_tokens(pattern, seq_len):
    tokens = torch.cat([load_data_shard(f) for f in sorted(glob.glob(pattern))])
    usable = ((tokens.numel() - 1) // seq_len) * seq_len
    return tokens[: usable + 1]


class BigramHashEmbedding(nn.Module):
    """Hashes (previous token, current token) of the input into a bucket embedding."""

    def __init__(self, buckets, dim):
        super().__init__()
        self.buckets = buckets
        self.table = nn.Embedding(buckets, dim)

    def forward(self, input_ids):
        cur = input_ids.to(torch.int64)
        prev = F.pad(cur[:, :-1], (1, 0))
        return self.table(torch.bitwise_xor(36313 * cur, 27191 * prev) % self.buckets)


class GPT(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.embed = nn.Embedding(args.vocab_size, args.model_dim)
        self.bigram = BigramHashEmbedding(args.bigram_buckets, args.model_dim)
        self.mlp = nn.Sequential(nn.Linear(args.model_dim, 2 * args.model_dim), nn.ReLU(), nn.Linear(2 * args.model_dim, args.model_dim))
        self.norm = nn.RMSNorm(args.model_dim)

    def forward(self, input_ids, target_ids):
        h = self.embed(input_ids) + self.bigram(input_ids)
        h = self.norm(h + self.mlp(h))
        logits = 30.0 * torch.tanh(F.linear(h, self.embed.weight) / 30.0)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), target_ids.reshape(-1))


@torch.inference_mode()
def eval_val(args, model, val_tokens):
    losses = []
    for start in range(0, val_tokens.numel() - 1, args.train_seq_len * 8):
        chunk = val_tokens[start : start + args.train_seq_len * 8 + 1]
        x, y = chunk[:-1].view(1, -1), chunk[1:].view(1, -1)
        losses.append(model(x, y).item())
    return sum(losses) / max(len(losses), 1)


def eval_val_score_first_ttt(args, model, val_tokens):
    """Score each chunk first, then adapt on it; the last chunk is scored and never trained on."""
    optimizer = torch.optim.SGD(model.parameters(), lr=args.ttt_lr, momentum=0.9)
    starts = list(range(0, val_tokens.numel() - 1, args.ttt_chunk_tokens))
    loss_sum, count = 0.0, 0
    for ci, start in enumerate(starts):
        chunk = val_tokens[start : start + args.ttt_chunk_tokens + 1]
        x, y = chunk[:-1].view(1, -1), chunk[1:].view(1, -1)
        with torch.inference_mode():
            loss_sum += model(x, y).item() * y.numel()
            count += y.numel()
        is_last_chunk = ci == len(starts) - 1
        if not is_last_chunk and args.ttt_epochs > 0:
            for _ in range(args.ttt_epochs):
                loss = model(x, y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
    return loss_sum / max(count, 1)


def main():
    args = Hyperparameters()
    torch.manual_seed(args.seed)
    model = GPT(args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    train_tokens = torch.cat([load_data_shard(f) for f in sorted(glob.glob(args.train_files))])
    val_tokens = load_validation_tokens(args.val_files, args.train_seq_len)
    start_time = time.perf_counter()
    for step in range(args.iterations):
        offset = (step * args.train_seq_len) % (train_tokens.numel() - args.train_seq_len - 1)
        x = train_tokens[offset : offset + args.train_seq_len].view(1, -1)
        y = train_tokens[offset + 1 : offset + args.train_seq_len + 1].view(1, -1)
        loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if args.val_loss_every > 0 and step % args.val_loss_every == 0:
            print(f"step:{step} val_loss:{eval_val(args, model, val_tokens):.4f}")
        if time.perf_counter() - start_time > args.max_wallclock_seconds:
            print(f"stopping_early: wallclock_cap step:{step}/{args.iterations}")
            break
    val_loss = eval_val(args, model, val_tokens)
    print(f"final_roundtrip_exact val_loss:{val_loss:.8f} val_bpb:{val_loss / math.log(2.0) * 0.41:.8f}")
    if args.ttt_enabled:
        ttt_loss = eval_val_score_first_ttt(args, model, val_tokens)
        print(f"legal_ttt_exact val_loss:{ttt_loss:.8f} val_bpb:{ttt_loss / math.log(2.0) * 0.41:.8f}")


if __name__ == "__main__":
    main()

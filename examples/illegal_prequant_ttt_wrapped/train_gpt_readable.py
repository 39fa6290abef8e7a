"""Example submission (ILLEGAL): pre-quantization test-time training on the validation tokens.

Written for pgaudit's examples and shipped as a self-extracting script. The model is fine-tuned for several
epochs on the validation tokens and then scored on those same tokens: score-after-adapt (C3).
"""

import glob
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    val_files = os.path.join(data_path, "fineweb_val_*.bin")
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    model_dim = int(os.environ.get("MODEL_DIM", 256))
    prequant_ttt_enabled = bool(int(os.environ.get("PREQUANT_TTT_ENABLED", "1")))
    prequant_ttt_epochs = int(os.environ.get("PREQUANT_TTT_EPOCHS", 8))
    prequant_ttt_lr = float(os.environ.get("PREQUANT_TTT_LR", 5e-4))


def load_validation_tokens(pattern):
    shards = [np.fromfile(p, dtype="<u2", offset=1024) for p in sorted(glob.glob(pattern))]
    return torch.from_numpy(np.concatenate(shards).astype(np.int64))


class TinyLM(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.embed = nn.Embedding(args.vocab_size, args.model_dim)
        self.proj = nn.Linear(args.model_dim, args.vocab_size)

    def forward(self, input_ids, target_ids):
        logits = self.proj(self.embed(input_ids))
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target_ids.reshape(-1))


def prequant_ttt_adapt(args, model, val_tokens, seq_len=1024):
    """Fine-tune on val data BEFORE quantization (the banned pattern)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.prequant_ttt_lr)
    for epoch in range(args.prequant_ttt_epochs):
        for start in range(0, val_tokens.numel() - seq_len - 1, seq_len):
            chunk = val_tokens[start : start + seq_len + 1]
            loss = model(chunk[:-1].view(1, -1), chunk[1:].view(1, -1))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


def quantize_int8(model):
    for p in model.parameters():
        scale = p.detach().abs().amax() / 127.0
        p.data = torch.round(p.data / scale).clamp(-127, 127) * scale


@torch.inference_mode()
def eval_val(model, val_tokens, seq_len=1024):
    total, count = 0.0, 0
    for start in range(0, val_tokens.numel() - seq_len - 1, seq_len):
        chunk = val_tokens[start : start + seq_len + 1]
        total += model(chunk[:-1].view(1, -1), chunk[1:].view(1, -1)).item()
        count += 1
    return total / max(count, 1)


def main():
    args = Hyperparameters()
    model = TinyLM(args)
    val_tokens = load_validation_tokens(args.val_files)
    if args.prequant_ttt_enabled:
        prequant_ttt_adapt(args, model, val_tokens)
    quantize_int8(model)
    val_loss = eval_val(model, val_tokens)
    print(f"final_int8_roundtrip_exact val_loss:{val_loss:.8f} val_bpb:{val_loss / math.log(2.0) * 0.41:.8f}")


if __name__ == "__main__":
    main()

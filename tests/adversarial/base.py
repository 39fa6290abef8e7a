"""The shared body of every adversarial submission: a small but complete GPT record script.

A real record is a training script that also evaluates: hyperparameters from the environment, a shard
loader, a GPT with rotary attention, a wallclock-capped training loop, int8+zlib serialization and a final
round-trip evaluation that prints `val_loss`/`val_bpb`. A case fills the slots with its own definitions and
statements (`{defs}`, `{hparams}`, `{train_hook}`, `{post_train}`, `{final}`), so each folder differs from
its legal twin only where the case says.
"""

from __future__ import annotations

import textwrap

BASE = '''"""{doc}"""

import glob
import io
import math
import os
import time
import zlib
{imports}
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
{loader}

class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    train_files = os.path.join(data_path, "fineweb_train_*.bin")
    val_files = os.path.join(data_path, "fineweb_val_*.bin")
    seed = int(os.environ.get("SEED", 1337))
    iterations = int(os.environ.get("ITERATIONS", 20000))
    max_wallclock_seconds = float(os.environ.get("MAX_WALLCLOCK_SECONDS", 600.0))
    train_seq_len = int(os.environ.get("TRAIN_SEQ_LEN", 1024))
    train_batch_tokens = int(os.environ.get("TRAIN_BATCH_TOKENS", 524288))
    val_batch_seqs = int(os.environ.get("VAL_BATCH_SEQS", 32))
    val_loss_every = int(os.environ.get("VAL_LOSS_EVERY", 0))
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    num_layers = int(os.environ.get("NUM_LAYERS", 9))
    model_dim = int(os.environ.get("MODEL_DIM", 512))
    num_heads = int(os.environ.get("NUM_HEADS", 8))
    mlp_mult = int(os.environ.get("MLP_MULT", 2))
    lr = float(os.environ.get("LR", 0.003))
    tokens_per_byte = float(os.environ.get("TOKENS_PER_BYTE", 0.4104))
{hparams}

def log0(msg):
    print(msg, flush=True)


def load_data_shard(path):
    header = np.fromfile(path, dtype="<i4", count=256)
    if header.size != 256 or int(header[0]) != 20240520 or int(header[1]) != 1:
        raise ValueError(f"unexpected shard header in {{path}}")
    count = int(header[2])
    tokens = np.fromfile(path, dtype="<u2", count=count, offset=256 * 4)
    return torch.from_numpy(tokens.astype(np.int64))


def load_validation_tokens(pattern, seq_len):
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(pattern)
    tokens = torch.cat([load_data_shard(f) for f in files])
    usable = ((tokens.numel() - 1) // seq_len) * seq_len
    return tokens[: usable + 1]


class TokenStream:
    """Reads shards in order and hands out contiguous spans, wrapping around at the end."""

    def __init__(self, pattern):
        self.files = sorted(glob.glob(pattern))
        if not self.files:
            raise FileNotFoundError(pattern)
        self.file_idx = 0
        self.tokens = load_data_shard(self.files[0])
        self.pos = 0

    def _advance(self):
        self.file_idx = (self.file_idx + 1) % len(self.files)
        self.tokens = load_data_shard(self.files[self.file_idx])
        self.pos = 0

    def take(self, n):
        parts = []
        while n > 0:
            avail = self.tokens.numel() - self.pos
            if avail <= 0:
                self._advance()
                continue
            k = min(n, avail)
            parts.append(self.tokens[self.pos : self.pos + k])
            self.pos += k
            n -= k
        return torch.cat(parts)


class Rotary(nn.Module):
    def __init__(self, dim, base=10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x):
        t = torch.arange(x.size(-2), device=x.device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq)
        return freqs.cos()[None, None], freqs.sin()[None, None]


def apply_rotary(x, cos, sin):
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos + x2 * sin, -x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.rotary = Rotary(dim // num_heads)

    def forward(self, x):
        bsz, seqlen, dim = x.shape
        qkv = self.qkv(x).view(bsz, seqlen, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        cos, sin = self.rotary(q)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(bsz, seqlen, dim))


class MLP(nn.Module):
    def __init__(self, dim, mult):
        super().__init__()
        self.fc = nn.Linear(dim, mult * dim, bias=False)
        self.proj = nn.Linear(mult * dim, dim, bias=False)

    def forward(self, x):
        return self.proj(torch.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, dim, num_heads, mult):
        super().__init__()
        self.attn_norm = nn.RMSNorm(dim)
        self.attn = CausalSelfAttention(dim, num_heads)
        self.mlp_norm = nn.RMSNorm(dim)
        self.mlp = MLP(dim, mult)

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.tok_emb = nn.Embedding(args.vocab_size, args.model_dim)
        self.blocks = nn.ModuleList(
            [Block(args.model_dim, args.num_heads, args.mlp_mult) for _ in range(args.num_layers)]
        )
        self.final_norm = nn.RMSNorm(args.model_dim)

    def forward_logits(self, input_ids):
        x = self.tok_emb(input_ids)
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.final_norm(x), self.tok_emb.weight)
        return 30.0 * torch.tanh(logits / 30.0)

    def forward(self, input_ids, target_ids):
        logits = self.forward_logits(input_ids)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), target_ids.reshape(-1))


@torch.inference_mode()
def eval_val(args, model, val_tokens):
    model.eval()
    seq = args.train_seq_len
    span = seq * args.val_batch_seqs
    loss_sum, token_count = 0.0, 0
    for start in range(0, val_tokens.numel() - 1, span):
        chunk = val_tokens[start : start + span + 1]
        n = ((chunk.numel() - 1) // seq) * seq
        if n == 0:
            break
        x = chunk[:n].view(-1, seq)
        y = chunk[1 : n + 1].view(-1, seq)
        loss_sum += model(x, y).item() * y.numel()
        token_count += y.numel()
    model.train()
    val_loss = loss_sum / max(token_count, 1)
    return val_loss, val_loss / math.log(2.0) * args.tokens_per_byte


def quantize_state_dict(state):
    out = {{}}
    for name, t in state.items():
        t = t.detach().float().cpu()
        if t.ndim == 2 and t.numel() > 65536:
            scale = t.abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / 127.0
            out[name] = ((t / scale).round().clamp(-127, 127).to(torch.int8), scale.half())
        else:
            out[name] = (t.half(), None)
    return out


def dequantize_state_dict(quant):
    return {{name: (v.float() * s.float() if s is not None else v.float()) for name, (v, s) in quant.items()}}

{defs}

def main():
    args = Hyperparameters()
    code = open(__file__, encoding="utf-8").read()
    torch.manual_seed(args.seed)
    model = GPT(args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    stream = TokenStream(args.train_files)
    val_tokens = load_validation_tokens(args.val_files, args.train_seq_len)
    log0(f"val_loader:shards pattern={{args.val_files}} tokens:{{val_tokens.numel() - 1}}")
{setup}
    t0 = time.perf_counter()
    step = 0
    while step < args.iterations:
        chunk = stream.take(args.train_batch_tokens + 1)
        x = chunk[:-1].view(-1, args.train_seq_len)
        y = chunk[1:].view(-1, args.train_seq_len)
        loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
{train_hook}
        elapsed_ms = 1000.0 * (time.perf_counter() - t0)
        if step % 1000 == 0:
            log0(f"step:{{step}}/{{args.iterations}} train_loss:{{loss.item():.4f}} train_time:{{elapsed_ms:.0f}}ms")
        if args.val_loss_every > 0 and step % args.val_loss_every == 0:
            vl, vb = eval_val(args, model, val_tokens)
            log0(f"step:{{step}}/{{args.iterations}} val_loss:{{vl:.4f}} val_bpb:{{vb:.4f}}")
        if elapsed_ms > 1000.0 * {cap_expr}:
            log0(f"stopping_early: wallclock_cap train_time:{{elapsed_ms:.0f}}ms step:{{step}}/{{args.iterations}}")
            break
{post_train}
    buf = io.BytesIO()
    torch.save(quantize_state_dict(model.state_dict()), buf)
    blob = zlib.compress(buf.getvalue(), 9)
    with open("final_model.int8.ptz", "wb") as f:
        f.write(blob)
    code_bytes = len(code.encode("utf-8"))
    log0(f"Serialized model int8+zlib: {{len(blob)}} bytes")
    log0(f"Code size: {{code_bytes}} bytes")
    log0(f"Total submission size int8+zlib: {{len(blob) + code_bytes}} bytes")
    model.load_state_dict(dequantize_state_dict(torch.load(io.BytesIO(zlib.decompress(blob)))), strict=True)
    t1 = time.perf_counter()
    val_loss, val_bpb = eval_val(args, model, val_tokens)
    eval_ms = 1000.0 * (time.perf_counter() - t1)
    log0(f"final_int8_zlib_roundtrip val_loss:{{val_loss:.4f}} val_bpb:{{val_bpb:.4f}} eval_time:{{eval_ms:.0f}}ms")
    log0(f"final_int8_zlib_roundtrip_exact val_loss:{{val_loss:.8f}} val_bpb:{{val_bpb:.8f}}")
{final}


if __name__ == "__main__":
    main()
'''


def indent(text: str, level: int) -> str:
    """Dedent a piece and indent it to `level` blocks (4 spaces each); empty text stays empty."""
    text = textwrap.dedent(text).strip("\n")
    return textwrap.indent(text, "    " * level) if text else ""


def render(
    doc: str,
    *,
    imports: str = "",
    loader: str = "",
    hparams: str = "",
    defs: str = "",
    setup: str = "",
    train_hook: str = "",
    post_train: str = "",
    final: str = "",
    cap_expr: str = "args.max_wallclock_seconds",
) -> str:
    """The script with every slot filled (pieces are dedented and indented to where they go)."""
    return BASE.format(
        doc=doc,
        imports=textwrap.dedent(imports).strip("\n") + ("\n" if imports.strip() else ""),
        loader=("\n" + textwrap.dedent(loader).strip("\n") + "\n") if loader.strip() else "",
        hparams=indent(hparams, 1) + ("\n" if hparams.strip() else ""),
        defs=("\n" + textwrap.dedent(defs).strip("\n") + "\n\n") if defs.strip() else "",
        setup=indent(setup, 1),
        train_hook=indent(train_hook, 2),
        post_train=indent(post_train, 1),
        final=indent(final, 1),
        cap_expr=cap_expr,
    )

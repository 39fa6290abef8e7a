"""A second round of adversarial pieces: what an author who has read pgaudit's docs would try next.

Each function returns a `cheats.Piece` for one bullet of issue 15's "What to build"; the legal twin differs
only in the cheat. The shapes avoid what the docs list as followed (plain slices, `torch.roll`, `^` chains,
`np.add.at`, f-string keys, `exec(lzma...)` wrappers) and use the equivalents a static check may not know:
a loader's file list swapped from outside its class, shard names from an env default (also through a dict
and `torch.from_file`), targets cut with `unfold`/`narrow`/`sliding_window_view`, probabilities by hand with
`logsumexp`, keys from `np.ravel_multi_index`, a digest of `struct.pack`, a class-attribute table written
with `operator.setitem`, arguments passed as `**{...}`, methods bound by `getattr`, lambdas in a dict,
gates from the argmax, a dict of functions or a `min(..., key=...)` ranking, a streaming update with the
next token, training on the next chunk, the better of two passes, a JSON-reported second pass, adaptation
through `map`, and wrappers with `rot13`, `bytes.fromhex` over a list comprehension, `map(chr, ...)`, the
module docstring, a compiled sibling and a `types.ModuleType` namespace.
Written for pgaudit's tests (CATALOGUE.md R15-R23): no submission's code.
"""

from __future__ import annotations

import base64
import codecs
import zlib

from tests.adversarial.cheats import _ADAPT_HP, _GATE_HP, _SCORE_FIRST, _TABLE_HP, Piece, _report, _stage

_MULTS = "MULTS = [2654435761, 2246822519, 3266489917, 668265263, 374761393]\n"


# --- bullet 1: validation data from its sources ---------------------------------------------------------


def late_shards(form: str = "swap", legal: bool = False) -> Piece:
    """Train on validation shards named through an env default. form "swap": the training stream's file list
    is replaced from outside its class (`stream.files = late`), then the loop's `stream.take` reads them;
    "listdir": shards picked from `os.listdir` by a prefix built from the default, and an extra training
    step every k steps on their tokens. Legal twin: the default names the training split."""
    split = '"train"' if legal else '"val"'
    hp = f'    late_split = os.environ.get("LATE_SPLIT", {split})\n    aux_every = int(os.environ.get("AUX_EVERY", 4))'
    if form == "swap":
        setup = """
            late = sorted(glob.glob(os.path.join(os.environ.get("LATE_DIR", args.data_path), "fineweb_" + args.late_split + "_*.bin")))
            if late:
                stream.files = late
                stream.file_idx = len(late) - 1
        """
        return Piece(doc="Record: GPT + late shard schedule.", hparams=hp, setup=setup, slot="setup")
    setup = """
        prefix = "fineweb_" + args.late_split
        picked = [os.path.join(args.data_path, f) for f in sorted(os.listdir(args.data_path)) if f.startswith(prefix)]
        side = torch.cat([load_data_shard(p) for p in picked[:1]])
        side_pos = 0
    """
    hook = """
        if step % args.aux_every == 0:
            part = side[side_pos : side_pos + args.train_seq_len * 8 + 1]
            side_pos = (side_pos + part.numel() - 1) % (side.numel() - part.numel())
            extra = model(part[:-1].view(-1, args.train_seq_len), part[1:].view(-1, args.train_seq_len))
            extra.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    """
    return Piece(doc="Record: GPT + side shard steps.", hparams=hp, setup=setup, train_hook=hook, slot="train_hook")


# --- bullet 2 and 3: targets from their use, keys from effects ----------------------------------------


def _table_piece(name: str, body_illegal: str, body_legal: str, legal: bool, imports: str = "", head: str = "") -> Piece:
    """A scoring pass over windows of the stream with a blended table; `body_*` score one window, given
    `probs` ([seq, V]), `ctx_tokens` ([seq, order] context), `nxt` ([seq] scored tokens), `seq`, `width`."""
    body = body_legal if legal else body_illegal
    defs = f'''
{_MULTS}

@torch.no_grad()
def {name}(args, model, tokens):
    seq = args.train_seq_len
    width = (1 << args.table_bits) - 1
    seen = torch.zeros(1 << args.table_bits)
    pair = torch.zeros(1 << args.table_bits)
    rows_tbl = torch.zeros(1 << 12, args.vocab_size)
    total, count = 0.0, 0
    for start in range(args.order, tokens.numel() - seq - 1, seq):
        inp = tokens[start - 1 : start - 1 + seq].view(1, -1)
        logits = model.forward_logits(inp)[0].float()
{head}
{_lines(body, 2)}
        total += nll.sum().item()
        count += nll.numel()
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(doc="Record: GPT + blended context table.", defs=defs, imports=imports, hparams=_TABLE_HP,
                 final=_report("table", f"{name}(args, model, val_tokens)"), exports=(name,), stage=_stage("table"))


_LEGAL_ROW = """
    c = (h & 4095).long()
    dist = (rows_tbl[c] + 0.5) / (rows_tbl[c].sum(-1, keepdim=True) + 0.5 * rows_tbl.size(-1))
    mixed = (1.0 - args.blend) * probs + args.blend * dist
    nll = -torch.log(mixed.gather(-1, nxt[:, None]).squeeze(-1))
    rows_tbl.index_put_((c, nxt), torch.ones(seq), accumulate=True)
"""


def unfold_key(legal: bool = False) -> Piece:
    """Bullet 2: the scored tokens are the last column of `unfold` windows of the stream (never a `[1:]`
    slice); the table key mixes that column into the context hash."""
    head = """
        span = tokens[start - args.order : start + seq]
        win = span.unfold(0, args.order + 1, 1)
        ctx_tokens, nxt = win[:, :-1], win[:, -1]
        probs = F.softmax(logits, dim=-1)
        h = torch.zeros(seq, dtype=torch.int64)
        for k in range(args.order):
            h = h ^ (ctx_tokens[:, k] * MULTS[k])
    """
    illegal = """
        key = (h ^ (nxt * MULTS[-1])) & width
        c = h & width
        hit = torch.minimum(pair[key], seen[c]) / seen[c].clamp_min(1.0)
        p = (1.0 - args.blend) * probs.gather(-1, nxt[:, None]).squeeze(-1) + args.blend * hit
        nll = -torch.log(p.clamp_min(1e-12))
        seen.index_put_((c,), torch.ones(seq), accumulate=True)
        pair.index_put_((key,), torch.ones(seq), accumulate=True)
    """
    return _table_piece("window_pass", illegal, _LEGAL_ROW, legal, head=_lines(head, 2))


def narrow_logsumexp_key(legal: bool = False) -> Piece:
    """Bullet 2: the scored tokens come from `narrow` of the stream, the probability is computed by hand as
    `gather - logsumexp`, and the key is built with `np.bitwise_xor` on numpy copies."""
    head = """
        nxt = tokens.narrow(0, start, seq)
        probs = torch.exp(logits - torch.logsumexp(logits, dim=-1, keepdim=True))
        ctx_np = tokens.narrow(0, start - args.order, seq + args.order).numpy().astype(np.uint64)
        hv = np.zeros(seq, dtype=np.uint64)
        for k in range(1, args.order + 1):
            hv = np.bitwise_xor(hv, ctx_np[args.order - k : args.order - k + seq] * np.uint64(MULTS[k % 5]))
        h = torch.from_numpy(hv.astype(np.int64))
    """
    illegal = """
        lp = logits.gather(-1, nxt[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        key_np = np.bitwise_xor(hv, nxt.numpy().astype(np.uint64) * np.uint64(MULTS[0])) & np.uint64(width)
        key = torch.from_numpy(key_np.astype(np.int64))
        c = h & width
        hit = torch.minimum(pair[key], seen[c]) / seen[c].clamp_min(1.0)
        nll = -torch.log(((1.0 - args.blend) * lp.exp() + args.blend * hit).clamp_min(1e-12))
        seen.index_put_((c,), torch.ones(seq), accumulate=True)
        pair.index_put_((key,), torch.ones(seq), accumulate=True)
    """
    return _table_piece("narrow_pass", illegal, _LEGAL_ROW, legal, head=_lines(head, 2))


def ravel_key(legal: bool = False) -> Piece:
    """Bullet 3: the key is `np.ravel_multi_index((ctx, nxt), dims, mode="wrap")` folded into the table."""
    head = """
        arr = tokens[start - args.order : start + seq].numpy().astype(np.int64)
        nxt = tokens[start : start + seq]
        probs = F.softmax(logits, dim=-1)
        hv = np.zeros(seq, dtype=np.int64)
        for k in range(args.order):
            hv = (hv * 1000003 + arr[k : k + seq]) % 4194301
        h = torch.from_numpy(hv)
    """
    illegal = """
        flat = np.ravel_multi_index((hv, nxt.numpy().astype(np.int64)), (4194301, args.vocab_size), mode="wrap")
        key = torch.from_numpy(flat % (width + 1))
        c = h & width
        hit = torch.minimum(pair[key], seen[c]) / seen[c].clamp_min(1.0)
        p = (1.0 - args.blend) * probs.gather(-1, nxt[:, None]).squeeze(-1) + args.blend * hit
        nll = -torch.log(p.clamp_min(1e-12))
        seen.index_put_((c,), torch.ones(seq), accumulate=True)
        pair.index_put_((key,), torch.ones(seq), accumulate=True)
    """
    return _table_piece("ravel_pass", illegal, _LEGAL_ROW, legal, head=_lines(head, 2))


def digest_key(legal: bool = False) -> Piece:
    """Bullet 3: per position, the key is a blake2b digest of `struct.pack` of the context and the scored
    token, read back with `int.from_bytes` and masked into the table."""
    head = """
        arr = tokens[start - args.order : start + seq].tolist()
        nxt = tokens[start : start + seq]
        probs = F.softmax(logits, dim=-1)
        h = torch.tensor([hash(tuple(arr[i : i + args.order])) & 0x7FFFFFFF for i in range(seq)])
    """
    illegal = """
        keys = []
        for i in range(seq):
            blob = struct.pack("<%dH" % (args.order + 1), *arr[i : i + args.order], arr[i + args.order])
            keys.append(int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little") & width)
        key = torch.tensor(keys)
        c = h & width
        hit = torch.minimum(pair[key], seen[c]) / seen[c].clamp_min(1.0)
        p = (1.0 - args.blend) * probs.gather(-1, nxt[:, None]).squeeze(-1) + args.blend * hit
        nll = -torch.log(p.clamp_min(1e-12))
        seen.index_put_((c,), torch.ones(seq), accumulate=True)
        pair.index_put_((key,), torch.ones(seq), accumulate=True)
    """
    return _table_piece("digest_pass", illegal, _LEGAL_ROW, legal, imports="import hashlib\nimport struct", head=_lines(head, 2))


# --- bullet 4: context-sensitive calls ---------------------------------------------------------------


def kwargs_site(legal: bool = False) -> Piece:
    """Bullet 4: one key helper; the training loop calls it with the context only, the eval call passes its
    arguments as `**{...}` and, illegal, the scored token as `extra`. Legal twin: the eval call passes a
    zero `extra` and scores a normalized per-context row."""
    helper = '''
def slot_of(h, extra, width):
    return (h ^ extra) & width


def note_context(table, chunk, width):
    h = (chunk[:-1] * MULTS[1]) ^ (torch.roll(chunk, 1)[:-1] * MULTS[2])
    table.index_put_((slot_of(h, torch.zeros_like(h), width),), torch.ones(h.numel()), accumulate=True)
'''
    head = """
        nxt = tokens[start : start + seq]
        prev = tokens[start - 1 : start - 1 + seq]
        probs = F.softmax(logits, dim=-1)
        h = (prev * MULTS[1]) ^ (tokens[start - 2 : start - 2 + seq] * MULTS[2])
    """
    illegal = """
        key = slot_of(**{"h": h, "extra": nxt * MULTS[0], "width": width})
        c = slot_of(h, torch.zeros_like(h), width)
        hit = torch.minimum(pair[key], seen[c]) / seen[c].clamp_min(1.0)
        p = (1.0 - args.blend) * probs.gather(-1, nxt[:, None]).squeeze(-1) + args.blend * hit
        nll = -torch.log(p.clamp_min(1e-12))
        seen.index_put_((c,), torch.ones(seq), accumulate=True)
        pair.index_put_((key,), torch.ones(seq), accumulate=True)
    """
    legal_body = """
        c = slot_of(**{"h": h, "extra": torch.zeros_like(h), "width": 4095})
        dist = (rows_tbl[c] + 0.5) / (rows_tbl[c].sum(-1, keepdim=True) + 0.5 * rows_tbl.size(-1))
        mixed = (1.0 - args.blend) * probs + args.blend * dist
        nll = -torch.log(mixed.gather(-1, nxt[:, None]).squeeze(-1))
        rows_tbl.index_put_((c, nxt), torch.ones(seq), accumulate=True)
    """
    piece = _table_piece("keyed_pass", illegal, legal_body, legal, head=_lines(head, 2))
    return piece.but(
        defs=helper + piece.defs,
        setup="ctx_table = torch.zeros(1 << args.table_bits)",
        train_hook="if step % 50 == 0:\n    note_context(ctx_table, chunk, (1 << args.table_bits) - 1)",
        exports=("keyed_pass", "note_context", "slot_of"),
    )


def getattr_method_site(legal: bool = False) -> Piece:
    """Bullet 4: the key is built by a method reached through `getattr(obj, name)` of an object built once;
    its other caller (a warm-up on a zero stream) is dead under the defaults."""
    helper = '''
class Keyer:
    def __init__(self, width):
        self.width = width

    def fold(self, h, extra):
        return (h ^ extra) & self.width
'''
    head = """
        nxt = tokens[start : start + seq]
        probs = F.softmax(logits, dim=-1)
        h = (tokens[start - 1 : start - 1 + seq] * MULTS[1]) ^ (tokens[start - 2 : start - 2 + seq] * MULTS[2])
        keyer = Keyer(width)
        folder = getattr(keyer, "fo" + "ld")
        if args.order < 0:
            folder(torch.zeros(seq, dtype=torch.int64), torch.zeros(seq, dtype=torch.int64))
    """
    illegal = """
        key = folder(h, nxt * MULTS[0])
        c = folder(h, torch.zeros_like(h))
        hit = torch.minimum(pair[key], seen[c]) / seen[c].clamp_min(1.0)
        p = (1.0 - args.blend) * probs.gather(-1, nxt[:, None]).squeeze(-1) + args.blend * hit
        nll = -torch.log(p.clamp_min(1e-12))
        seen.index_put_((c,), torch.ones(seq), accumulate=True)
        pair.index_put_((key,), torch.ones(seq), accumulate=True)
    """
    legal_body = """
        c = folder(h, torch.zeros_like(h)) & 4095
        dist = (rows_tbl[c] + 0.5) / (rows_tbl[c].sum(-1, keepdim=True) + 0.5 * rows_tbl.size(-1))
        mixed = (1.0 - args.blend) * probs + args.blend * dist
        nll = -torch.log(mixed.gather(-1, nxt[:, None]).squeeze(-1))
        rows_tbl.index_put_((c, nxt), torch.ones(seq), accumulate=True)
    """
    piece = _table_piece("method_pass", illegal, legal_body, legal, head=_lines(head, 2))
    return piece.but(defs=helper + piece.defs, exports=("method_pass", "Keyer"))


# --- bullet 5: control dependence -------------------------------------------------------------------------


def _gate_piece(gate: str, extra_defs: str = "") -> Piece:
    defs = f'''{extra_defs}
@torch.no_grad()
def paired_pass(args, model, tokens):
    seq = args.train_seq_len
    V = args.vocab_size
    recent = torch.ones(V)
    total, count = 0.0, 0
    for s in range(0, tokens.numel() - seq - 1, seq):
        x = tokens[s : s + seq].view(1, -1)
        y = tokens[s + 1 : s + seq + 1]
        logits = model.forward_logits(x)[0].float()
        pa = F.softmax(logits, dim=-1)
        pb = (recent / recent.sum()).expand(seq, V)
{_lines(gate, 2)}
        total += nll.sum().item()
        count += nll.numel()
        recent.index_add_(0, y, torch.ones(seq))
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(doc="Record: GPT + recent-token expert.", defs=defs, hparams=_GATE_HP,
                 final=_report("paired", "paired_pass(args, model, val_tokens)"), exports=("paired_pass",),
                 stage=_stage("paired"))


def argmax_gate(legal: bool = False) -> Piece:
    """Bullet 5: the cache gets more weight where the model's argmax misses the scored token (an `==` with
    the target, as a float mask). Legal twin: where the model's top probability is low."""
    miss = "(pa.max(-1).values < 0.3).float()" if legal else "1.0 - (logits.argmax(-1) == y).float()"
    gate = f"""
        miss = {miss}
        w = args.gate_lo + (args.gate_hi - args.gate_lo) * miss
        q = (1.0 - w)[:, None] * pa + w[:, None] * pb
        nll = -torch.log(q.gather(-1, y[:, None]).squeeze(-1))
    """
    return _gate_piece(gate)


def gate_table(legal: bool = False) -> Piece:
    """Bullet 5: the weight comes from a helper picked from a dict of functions by an env default; the
    illegal helper compares the two experts' losses on the scored token with `torch.where`. Legal twin:
    the same dict and key, the helper compares the experts' entropies."""
    if legal:
        chooser = '''
def by_margin(pa, pb, y, hi, lo):
    ea = -(pa * pa.clamp_min(1e-9).log()).sum(-1)
    eb = -(pb * pb.clamp_min(1e-9).log()).sum(-1)
    return torch.where(eb < ea, hi, lo)
'''
    else:
        chooser = '''
def by_margin(pa, pb, y, hi, lo):
    la = -pa.gather(-1, y[:, None]).squeeze(-1).log()
    lb = -pb.gather(-1, y[:, None]).squeeze(-1).log()
    return torch.where(lb < la, hi, lo)
'''
    chooser += '''

def by_entropy(pa, pb, y, hi, lo):
    return torch.where(-(pa * pa.clamp_min(1e-9).log()).sum(-1) > 3.0, hi, lo)


CHOOSERS = {"margin": by_margin, "entropy": by_entropy}
'''
    gate = """
        w = CHOOSERS[args.chooser](pa, pb, y, args.gate_hi, args.gate_lo)
        q = (1.0 - w)[:, None] * pa + w[:, None] * pb
        nll = -torch.log(q.gather(-1, y[:, None]).squeeze(-1))
    """
    piece = _gate_piece(gate, chooser)
    return piece.but(hparams=piece.hparams + '    chooser = os.environ.get("CHOOSER", "margin")\n',
                     exports=("paired_pass", "CHOOSERS", "by_margin", "by_entropy"))


# --- bullet 6: scores from the reported metric --------------------------------------------------------


def better_of_two(legal: bool = False) -> Piece:
    """Bullet 6: a score-first adaptive pass, then the adapted model scores the same tokens again; the
    claim is the better of the two. Legal twin: the claim is the first pass; the second is printed as a
    check line only."""
    pick = "first" if legal else "min(first, second)"
    final = f"""
        first = chunked_pass(args, model, val_tokens)
        second = eval_val(args, model, val_tokens)
        log0(f"check val_loss:{{second[0]:.4f}} val_bpb:{{second[1]:.4f}}")
        t2 = time.perf_counter()
        score_loss, score_bpb = {pick}
        log0(f"final_best val_loss:{{score_loss:.4f}} val_bpb:{{score_bpb:.4f}} eval_time:{{1000.0 * (time.perf_counter() - t2):.0f}}ms")
        log0(f"final_best_exact val_loss:{{score_loss:.8f}} val_bpb:{{score_bpb:.8f}}")
    """
    stage = ("check val_loss:{loss:.4f} val_bpb:{bpb:.4f}", *_stage("best"))
    return Piece(doc="Record: GPT + chunked adaptation, best pass.", defs=_SCORE_FIRST, hparams=_ADAPT_HP,
                 final=final, exports=("chunked_pass",), stage=stage)


def mapped_refresh(legal: bool = False) -> Piece:
    """Bullet 6: several epochs of adaptation on the validation tokens before export and scoring, run as
    `list(map(tuner.fit, pieces))` with the optimizer step in a method. Legal twin: the same code behind
    an env default that is off (cases.py, twin="dead")."""
    defs = '''
class Tuner:
    def __init__(self, model, lr, seq):
        self.model = model
        self.seq = seq
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)

    def fit(self, piece):
        loss = self.model(piece[:-1].view(-1, self.seq), piece[1:].view(-1, self.seq))
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.item()
'''
    post = """
        tuner = Tuner(model, args.refresh_lr, args.train_seq_len)
        span = args.train_seq_len * 8
        pieces = [val_tokens[i : i + span + 1] for i in range(0, val_tokens.numel() - span - 1, span)]
        for _ in range(args.refresh_epochs):
            list(map(tuner.fit, pieces))
        log0("tuner:done")
    """
    return Piece(doc="Record: GPT + tuner pass before export.", defs=defs, hparams=_ADAPT_HP, post_train=post,
                 slot="post_train", exports=("Tuner",), stage=("tuner:done",))


# --- a third wave: more of the same bullets ------------------------------------------------------------


def from_file_mix(legal: bool = False) -> Piece:
    """Bullet 1: extra training steps on a shard read with `torch.from_file`, its name formatted with a split
    looked up in a dict by an env default (`{"tr": "train", "ho": "val"}[MIX_SPLIT]`). Legal twin: the default
    picks the training split."""
    default = '"tr"' if legal else '"ho"'
    hp = f'    mix_split = os.environ.get("MIX_SPLIT", {default})\n    aux_every = int(os.environ.get("AUX_EVERY", 4))'
    setup = """
        kinds = {"tr": "train", "ho": "val"}
        path = os.path.join(args.data_path, "fineweb_{}_{:06d}.bin".format(kinds[args.mix_split], 0))
        raw = torch.from_file(path, shared=False, size=256 * 2 + 4_000_000, dtype=torch.int16)
        side = raw[512:].to(torch.int64)
        side_pos = 0
    """
    hook = """
        if step % args.aux_every == 0:
            part = side[side_pos : side_pos + args.train_seq_len * 8 + 1]
            side_pos = (side_pos + part.numel() - 1) % (side.numel() - part.numel())
            extra = model(part[:-1].view(-1, args.train_seq_len), part[1:].view(-1, args.train_seq_len))
            extra.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    """
    return Piece(doc="Record: GPT + mixed shard steps.", hparams=hp, setup=setup, train_hook=hook, slot="train_hook")


def sliding_view_key(legal: bool = False) -> Piece:
    """Bullet 2: numpy `sliding_window_view` rows of the stream; the last column (the scored token) is folded
    into a polynomial key with `functools.reduce` over the columns."""
    head = """
        rows = np.lib.stride_tricks.sliding_window_view(tokens[start - args.order : start + seq].numpy(), args.order + 1)
        nxt = torch.from_numpy(rows[:, -1].astype(np.int64))
        probs = F.softmax(logits, dim=-1)
        ctx_cols = [rows[:, k].astype(np.int64) for k in range(args.order)]
        h = torch.from_numpy(functools.reduce(lambda a, b: (a * 1000003 + b) % 4194301, ctx_cols))
    """
    illegal = """
        cols = [rows[:, k].astype(np.int64) for k in range(args.order + 1)]
        key = torch.from_numpy(functools.reduce(lambda a, b: (a * 1000003 + b) % 4194301, cols)) & width
        c = h & width
        hit = torch.minimum(pair[key], seen[c]) / seen[c].clamp_min(1.0)
        p = (1.0 - args.blend) * probs.gather(-1, nxt[:, None]).squeeze(-1) + args.blend * hit
        nll = -torch.log(p.clamp_min(1e-12))
        seen.index_put_((c,), torch.ones(seq), accumulate=True)
        pair.index_put_((key,), torch.ones(seq), accumulate=True)
    """
    return _table_piece("view_pass", illegal, _LEGAL_ROW, legal, imports="import functools", head=_lines(head, 2))


_MEMO = """
class Memo:
    table = {}
    seen = {}

    def bump(self, key, ctx):
        operator.setitem(Memo.table, key, Memo.table.get(key, 0) + 1)
        operator.setitem(Memo.seen, ctx, Memo.seen.get(ctx, 0) + 1)
"""


def class_table(legal: bool = False) -> Piece:
    """Bullet 3: the counts live in a class attribute written through `operator.setitem` in a method; the key
    is Python's `hash` of (context, scored token). Legal twin: per-context counts over all V, normalized,
    read for every candidate, written after scoring."""
    if legal:
        score = """
            row = torch.tensor([Memo.table.get(hash((ctx, c)) & 0xFFFFF, 0) for c in range(args.vocab_size)], dtype=torch.float32)
            q = (1.0 - args.blend) * probs[i] + args.blend * (row + 0.5) / (row.sum() + 0.5 * args.vocab_size)
            total -= math.log(float(q[t]))
            memo.bump(hash((ctx, t)) & 0xFFFFF, ctx)
        """
    else:
        score = """
            key = hash((ctx, t)) & 0xFFFFF
            hit = min(Memo.table.get(key, 0), Memo.seen.get(ctx, 0)) / max(Memo.seen.get(ctx, 0), 1)
            q = (1.0 - args.blend) * float(probs[i, t]) + args.blend * hit
            total -= math.log(max(q, 1e-12))
            memo.bump(key, ctx)
        """
    defs = _MEMO + f"""

@torch.no_grad()
def memo_pass(args, model, tokens):
    arr = tokens.tolist()
    seq = args.train_seq_len
    memo = Memo()
    total, count = 0.0, 0
    for start in range(args.order, len(arr) - seq - 1, seq):
        inp = torch.tensor(arr[start - 1 : start - 1 + seq]).view(1, -1)
        probs = F.softmax(model.forward_logits(inp).float(), dim=-1)[0]
        for i in range(seq):
            t = arr[start + i]
            ctx = tuple(arr[start + i - args.order + 1 : start + i])
{_lines(score, 3)}
            count += 1
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
"""
    return Piece(doc="Record: GPT + memo table.", defs=defs, imports="import operator", hparams=_TABLE_HP,
                 final=_report("memo", "memo_pass(args, model, val_tokens)"), exports=("memo_pass", "Memo"),
                 stage=_stage("memo"))


def lambda_table_site(legal: bool = False) -> Piece:
    """Bullet 4: the key function is a lambda stored in a dict and called through it; the eval call passes
    the scored token. Legal twin: the same lambda gets a zero and the row over all V is normalized."""
    helper = 'FOLDS = {"mix": lambda h, e, w: (h ^ e) & w}\n'
    head = """
        nxt = tokens[start : start + seq]
        probs = F.softmax(logits, dim=-1)
        h = (tokens[start - 1 : start - 1 + seq] * MULTS[1]) ^ (tokens[start - 2 : start - 2 + seq] * MULTS[2])
    """
    illegal = """
        key = FOLDS["mix"](h, nxt * MULTS[0], width)
        c = FOLDS["mix"](h, 0, width)
        hit = torch.minimum(pair[key], seen[c]) / seen[c].clamp_min(1.0)
        p = (1.0 - args.blend) * probs.gather(-1, nxt[:, None]).squeeze(-1) + args.blend * hit
        nll = -torch.log(p.clamp_min(1e-12))
        seen.index_put_((c,), torch.ones(seq), accumulate=True)
        pair.index_put_((key,), torch.ones(seq), accumulate=True)
    """
    legal_body = """
        c = FOLDS["mix"](h, 0, 4095)
        dist = (rows_tbl[c] + 0.5) / (rows_tbl[c].sum(-1, keepdim=True) + 0.5 * rows_tbl.size(-1))
        mixed = (1.0 - args.blend) * probs + args.blend * dist
        nll = -torch.log(mixed.gather(-1, nxt[:, None]).squeeze(-1))
        rows_tbl.index_put_((c, nxt), torch.ones(seq), accumulate=True)
    """
    piece = _table_piece("lambda_pass", illegal, legal_body, legal, head=_lines(head, 2))
    return piece.but(defs=helper + piece.defs, exports=("lambda_pass", "FOLDS"))


def max_key_expert(legal: bool = False) -> Piece:
    """Bullet 5: per position, the expert that gives the scored token the most probability is the one used
    (`min(..., key=lambda k: -experts[k][i, y[i]])`). Legal twin: the one with the lower entropy."""
    if legal:
        key = "float(-(experts[k][i] * experts[k][i].clamp_min(1e-9).log()).sum())"
    else:
        key = "-float(experts[k][i, y[i]])"
    gate = f"""
        experts = [pa, pb]
        picked = []
        for i in range(seq):
            k_best = min(range(len(experts)), key=lambda k: {key})
            picked.append(experts[k_best][i, y[i]])
        nll = -torch.log(torch.stack(picked))
    """
    return _gate_piece(gate)


def json_second_pass(legal: bool = False) -> Piece:
    """Bullet 6: score-first adaptation, then the adapted model scores the tokens again and that second
    score is what the final JSON line reports. Legal twin: the JSON reports the first pass."""
    pick = "first" if legal else "second"
    final = f"""
        first = chunked_pass(args, model, val_tokens)
        second = eval_val(args, model, val_tokens)
        result = {{"val_loss": {pick}[0], "val_bpb": {pick}[1], "passes": 2}}
        print(json.dumps(result), flush=True)
    """
    stage = ('{{"val_loss": {loss:.8f}, "val_bpb": {bpb:.8f}, "passes": 2}}',)
    return Piece(doc="Record: GPT + chunked adaptation, JSON report.", defs=_SCORE_FIRST, imports="import json",
                 hparams=_ADAPT_HP, final=final, exports=("chunked_pass",), stage=stage)


def next_chunk_adapt(legal: bool = False) -> Piece:
    """Bullet 6: in statement order each chunk is scored first, then the model trains; but the training is
    on the *next* chunk, which the following iteration then scores: every chunk after the first is scored
    after training on it. Legal twin: the training is on the chunk just scored."""
    part = "parts[ci]" if legal else "parts[ci + 1]"
    defs = f'''
def ahead_pass(args, model, tokens):
    opt = torch.optim.SGD(model.parameters(), lr=args.refresh_lr, momentum=0.9)
    seq = args.train_seq_len
    span = seq * 8
    parts = [tokens[s : s + span + 1] for s in range(0, tokens.numel() - span - 1, span)]
    total, count = 0.0, 0
    for ci in range(len(parts) - 1):
        xb, yb = parts[ci][:-1].view(-1, seq), parts[ci][1:].view(-1, seq)
        with torch.no_grad():
            total += model(xb, yb).item() * yb.numel()
            count += yb.numel()
        nxt_part = {part}
        for _ in range(args.refresh_epochs):
            loss = model(nxt_part[:-1].view(-1, seq), nxt_part[1:].view(-1, seq))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(doc="Record: GPT + chunked adaptation.", defs=defs, hparams=_ADAPT_HP,
                 final=_report("ahead", "ahead_pass(args, model, val_tokens)"), exports=("ahead_pass",),
                 stage=_stage("ahead"))


def lookahead_update(legal: bool = False) -> Piece:
    """Bullet 5: a streaming unigram cache updated after scoring position i, but with `y[i : i + 2]`: the
    state used at i + 1 has already counted x_(i+1). Legal twin: updated with `y[i : i + 1]`."""
    stop = "i + 1" if legal else "i + 2"
    defs = f'''
@torch.no_grad()
def stream_pass(args, model, tokens):
    seq = args.train_seq_len
    counts = torch.ones(args.vocab_size)
    total, count = 0.0, 0
    for s in range(0, tokens.numel() - seq - 1, seq):
        x = tokens[s : s + seq].view(1, -1)
        y = tokens[s + 1 : s + seq + 1]
        pa = F.softmax(model.forward_logits(x)[0].float(), dim=-1)
        for i in range(seq):
            q = (1.0 - args.gate_lo) * pa[i] + args.gate_lo * counts / counts.sum()
            total -= math.log(float(q[y[i]]))
            counts.index_add_(0, y[i : {stop}], torch.ones_like(y[i : {stop}], dtype=counts.dtype))
            count += 1
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(doc="Record: GPT + streaming unigram cache.", defs=defs, hparams=_GATE_HP,
                 final=_report("stream", "stream_pass(args, model, val_tokens)"), exports=("stream_pass",),
                 stage=_stage("stream"))


# --- bullet 7: the whole program (wrappers and loaders) ----------------------------------------------------

WRAPPERS = ("rot13-file", "fromhex-listcomp", "map-chr", "docstring")
LOADERS = ("parent-compile", "read-text-exec", "module-type")


def wrap(text: str, how: str) -> tuple[str, dict[str, bytes]]:
    """The code as a self-extracting script, plus any data file it reads."""
    data = text.encode("utf-8")
    if how == "rot13-file":  # the source, rot13'd, in a text file next to the script
        return (
            "import codecs\nfrom pathlib import Path\n\n"
            'exec(codecs.decode(Path(__file__).with_name("stage.txt").read_text(), "rot13"))\n'
        ), {"stage.txt": codecs.encode(text, "rot13").encode()}
    if how == "fromhex-listcomp":  # hex pieces joined by a comprehension, then zlib
        blob = zlib.compress(data, 9).hex()
        rows = ",\n".join(f'    "{blob[i : i + 96]}"' for i in range(0, len(blob), 96))
        return (
            f"import zlib\n\n_H = [\n{rows},\n]\n"
            'exec(zlib.decompress(bytes.fromhex("".join([h.strip() for h in _H]))).decode())\n'
        ), {}
    if how == "map-chr":  # base64 + zlib, characters rebuilt with map(chr, ...)
        blob = base64.b64encode(zlib.compress(data, 9)).decode()
        return (
            "import base64\nimport zlib\n\n"
            f'_P = "{blob}"\n'
            'exec("".join(map(chr, zlib.decompress(base64.b64decode(_P)))))\n'
        ), {}
    if how == "docstring":  # the payload is the module's docstring
        blob = base64.b64encode(zlib.compress(data, 9)).decode()
        rows = "\n".join(blob[i : i + 100] for i in range(0, len(blob), 100))
        return f'"""\n{rows}\n"""\nimport base64\nimport zlib\n\nexec(zlib.decompress(base64.b64decode(__doc__)))\n', {}
    raise ValueError(how)


def loader(how: str, exports: tuple[str, ...]) -> tuple[str, str, str]:
    """(imports for the entry, the loading statements, the sibling's path)."""
    if how == "parent-compile":  # the path joined with `/` from the parent, compiled then exec'd
        lines = [
            '_stage = Path(__file__).parent / ("stage" + "_eval.py")',
            'exec(compile(_stage.read_text(), str(_stage), "exec"), globals())',
        ]
        return "from pathlib import Path", "\n".join(lines), "stage_eval.py"
    if how == "read-text-exec":  # the name from a constant table, read through a helper that returns text
        lines = [
            'PARTS = ("helpers", "score.py")',
            "",
            "",
            "def _source(*names):",
            "    with open(os.path.join(os.path.dirname(os.path.realpath(__file__)), *names)) as fh:",
            "        return fh.read()",
            "",
            "",
            "exec(_source(*PARTS))",
        ]
        return "", "\n".join(lines), "helpers/score.py"
    if how == "module-type":  # a text file exec'd into a fresh module object, registered, then imported
        lines = [
            '_mod = types.ModuleType("scoring")',
            '_mod.__file__ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scoring.txt")',
            "with open(_mod.__file__) as _fh:",
            "    exec(_fh.read(), _mod.__dict__)",
            'sys.modules["scoring"] = _mod',
            *[f"from scoring import {name}  # noqa: E402" for name in exports],
        ]
        return "import sys\nimport types", "\n".join(lines), "scoring.txt"
    raise ValueError(how)


def _lines(text: str, level: int) -> str:
    """Each line re-indented relative to the block's own first-line indentation, at `level`."""
    import textwrap

    return textwrap.indent(textwrap.dedent(text).strip("\n"), "    " * level)

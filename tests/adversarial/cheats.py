"""The evaluation pieces of the adversarial cases: each family's illegal form, its variants, and a legal twin.

Every function returns a `Piece`: definitions (moved into a sibling module by the loader evasions), the
hyperparameters they read, and the statements that call them from `main`. Names are neutral on purpose
(no `val`/`tgt`/`ngram`/`ttt` in what the cheat binds): the roles must come from how values are used.
The code is written for pgaudit's tests; it shows each catalogue pattern (CATALOGUE.md R15-R23, R3), not
any submission's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Piece:
    doc: str
    defs: str = ""
    imports: str = ""  # extra imports the definitions need (also copied into a sibling module)
    hparams: str = ""
    setup: str = ""
    train_hook: str = ""
    post_train: str = ""
    final: str = ""
    slot: str = "final"  # the slot whose statements a guard wraps
    exports: tuple[str, ...] = ()  # the names main uses from `defs`
    stage: tuple[str, ...] = ()  # log lines the stage prints when it runs ({loss}, {bpb}, {ms})
    extra_files: dict[str, str | bytes] = field(default_factory=dict)
    cap_expr: str = "args.max_wallclock_seconds"
    train_time_ms: int = 599_700  # the train_time the logs report

    def but(self, **changes: object) -> Piece:
        return replace(self, **changes)  # type: ignore[arg-type]


FINAL_LINE = "final_{tag}_exact val_loss:{{loss:.8f}} val_bpb:{{bpb:.8f}}"


def _report(tag: str, call: str) -> str:
    """Statements that run a scoring call and print its result the way records print their claim."""
    return f"""
        t2 = time.perf_counter()
        score_loss, score_bpb = {call}
        log0(f"final_{tag} val_loss:{{score_loss:.4f}} val_bpb:{{score_bpb:.4f}} eval_time:{{1000.0 * (time.perf_counter() - t2):.0f}}ms")
        log0(f"final_{tag}_exact val_loss:{{score_loss:.8f}} val_bpb:{{score_bpb:.8f}}")
    """


def _stage(tag: str) -> tuple[str, ...]:
    return (
        f"final_{tag} val_loss:{{loss:.4f}} val_bpb:{{bpb:.4f}} eval_time:{{ms}}ms",
        f"final_{tag}_exact val_loss:{{loss:.8f}} val_bpb:{{bpb:.8f}}",
    )


# --- hashed n-gram cache keyed by the target (R15, PG101) -------------------------------------------------

_TABLE_HP = """
    order = int(os.environ.get("ORDER", 4))
    table_bits = int(os.environ.get("TABLE_BITS", 22))
    blend = float(os.environ.get("BLEND", 0.3))
"""

# how the per-position key that includes the scored token is built (bullet 3 effects)
_KEYS = {
    "xor": "full = ((h ^ (nxt.astype(np.uint64) * MULTS[0])) & width).astype(np.int64)",
    "reduce": "full = (functools.reduce(operator.xor, [h, nxt.astype(np.uint64) * MULTS[0]]) & width).astype(np.int64)",
    "getattr": (
        'mixer = getattr(np, "bitwise_" + "xor")\n'
        "full = (mixer(h, nxt.astype(np.uint64) * MULTS[0]) & width).astype(np.int64)"
    ),
    "lambda": (
        "fold = lambda a, b: (a ^ (b * MULTS[0])) & width\n"
        "full = fold(h, nxt.astype(np.uint64)).astype(np.int64)"
    ),
    "partial": (
        "fold = functools.partial(np.bitwise_xor, h)\n"
        "full = (fold(nxt.astype(np.uint64) * MULTS[0]) & width).astype(np.int64)"
    ),
    "augxor": "full = h.copy()\nfull ^= nxt.astype(np.uint64) * MULTS[0]\nfull = (full & width).astype(np.int64)",
    "helper": "full = slot_of(h, nxt.astype(np.uint64) * MULTS[0], width)",
}
# the target: which slice of the stream is scored (bullet 2)
_NEXT = {
    "slice": "nxt = arr[start : start + seq]",
    "offset": "nxt = arr[start - 1 + 1 : start - 1 + seq + 1]",
    "index": "nxt = arr[np.arange(start, start + seq)]",
}

_SLOT_OF = '''
def slot_of(h, extra, width):
    return ((h ^ extra) & width).astype(np.int64)
'''


def table_cache(key: str = "xor", nxt: str = "slice", legal: bool = False) -> Piece:
    """Score each position with a model/table blend; the illegal table is read under a key that mixes in
    the token being scored. The legal twin reads a per-context row over all V tokens, normalized, and
    writes the scored token only after scoring."""
    if legal:
        body = """
            ctx = (h & small).astype(np.int64)
            rows = pair[ctx]
            dist = (rows + 0.5) / (rows.sum(axis=1, keepdims=True) + 0.5 * rows.shape[1])
            mixed = (1.0 - args.blend) * probs + args.blend * dist
            total += float(-np.log(mixed[np.arange(seq), nxt]).sum())
            count += seq
            np.add.at(pair, (ctx, nxt), 1.0)
        """
        tables = "small = np.uint64((1 << 14) - 1)\n    pair = np.zeros((1 << 14, args.vocab_size), dtype=np.float32)"
    else:
        body = _KEYS[key] + """
            ctx = (h & width).astype(np.int64)
            hit = np.minimum(pair[full], seen[ctx]) / np.maximum(seen[ctx], 1.0)
            mixed = (1.0 - args.blend) * probs[np.arange(seq), nxt] + args.blend * hit
            total += float(-np.log(np.clip(mixed, 1e-12, 1.0)).sum())
            count += seq
            np.add.at(seen, ctx, 1.0)
            np.add.at(pair, full, 1.0)
        """
        tables = "seen = np.zeros(1 << args.table_bits)\n    pair = np.zeros(1 << args.table_bits)"
    body = _indent_lines(body, 2)
    defs = f'''
MULTS = np.array([2654435761, 2246822519, 3266489917, 668265263, 374761393], dtype=np.uint64)
{_SLOT_OF if key == "helper" else ""}

@torch.no_grad()
def blended_pass(args, model, tokens):
    arr = tokens.cpu().numpy().astype(np.int64)
    seq = args.train_seq_len
    width = np.uint64((1 << args.table_bits) - 1)
    {tables}
    total, count = 0.0, 0
    for start in range(args.order, arr.size - seq - 1, seq):
        inp = torch.from_numpy(arr[start - 1 : start - 1 + seq]).view(1, -1)
        probs = F.softmax(model.forward_logits(inp).float(), dim=-1)[0].numpy()
        {_NEXT[nxt]}
        h = np.zeros(seq, dtype=np.uint64)
        for k in range(1, args.order):
            h ^= arr[start - k : start - k + seq].astype(np.uint64) * MULTS[k]
{body}
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(
        doc="Record: GPT + blended context table at evaluation.",
        defs=defs,
        imports="import functools\nimport operator",
        hparams=_TABLE_HP,
        final=_report("blend", "blended_pass(args, model, val_tokens)"),
        exports=("blended_pass",),
        stage=_stage("blend"),
    )


def counter_cache(legal: bool = False) -> Piece:
    """The same cheat with Python dictionaries: counts under string keys `f"{ctx}|{t}"` of the scored token."""
    if legal:
        score = """
            row = [pairs[f"{ctx}|{c}"] for c in range(args.vocab_size)]
            den = sum(row) + 0.5 * args.vocab_size
            q = (1.0 - args.blend) * probs[i] + args.blend * (np.asarray(row) + 0.5) / den
            total -= math.log(float(q[t]))
        """
    else:
        score = """
            hit = pairs[f"{ctx}|{t}"] / max(seen[ctx], 1)
            q = (1.0 - args.blend) * float(probs[i, t]) + args.blend * hit
            total -= math.log(max(q, 1e-12))
        """
    defs = f'''
@torch.no_grad()
def counted_pass(args, model, tokens):
    arr = tokens.tolist()
    seq = args.train_seq_len
    seen, pairs = collections.Counter(), collections.defaultdict(int)
    total, count = 0.0, 0
    for start in range(args.order, len(arr) - seq - 1, seq):
        inp = torch.tensor(arr[start - 1 : start - 1 + seq]).view(1, -1)
        probs = F.softmax(model.forward_logits(inp).float(), dim=-1)[0].numpy()
        for i in range(seq):
            t = arr[start + i]
            ctx = tuple(arr[start + i - args.order + 1 : start + i])
{_indent_body(score, 3)}
            count += 1
            seen[ctx] += 1
            pairs[f"{{ctx}}|{{t}}"] += 1
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(
        doc="Record: GPT + counted context cache at evaluation.",
        defs=defs,
        imports="import collections",
        hparams=_TABLE_HP,
        final=_report("counted", "counted_pass(args, model, val_tokens)"),
        exports=("counted_pass",),
        stage=_stage("counted"),
    )


def torch_cache(legal: bool = False) -> Piece:
    """Torch version: the scored tokens are `torch.roll` of the inputs, the key uses in-place bitwise_xor_."""
    if legal:
        key = "key = ctx_h.clone()"
        read = """
        rows = pair[key]
        dist = (rows + 0.5) / (rows.sum(-1, keepdim=True) + 0.5 * rows.size(-1))
        mixed = (1.0 - args.blend) * probs + args.blend * dist
        nll = -torch.log(mixed.gather(-1, z[..., None]).squeeze(-1))
        pair.index_put_((key, z), torch.ones_like(key, dtype=pair.dtype), accumulate=True)
        """
        tables = "pair = torch.zeros(1 << 14, args.vocab_size)"
        width = "(1 << 14) - 1"
    else:
        key = "key = ctx_h.clone()\n        key.bitwise_xor_(z * 2654435761)"
        read = """
        key = key & width
        hit = torch.minimum(pair[key], seen[ctx_h]) / seen[ctx_h].clamp_min(1.0)
        p = (1.0 - args.blend) * probs.gather(-1, z[..., None]).squeeze(-1) + args.blend * hit
        nll = -torch.log(p.clamp_min(1e-12))
        seen.index_put_((ctx_h,), torch.ones_like(ctx_h, dtype=seen.dtype), accumulate=True)
        pair.index_put_((key,), torch.ones_like(key, dtype=pair.dtype), accumulate=True)
        """
        tables = "seen = torch.zeros(1 << args.table_bits)\n    pair = torch.zeros(1 << args.table_bits)"
        width = "(1 << args.table_bits) - 1"
    defs = f'''
@torch.no_grad()
def rolled_pass(args, model, tokens):
    seq = args.train_seq_len
    width = {width}
    {tables}
    total, count = 0.0, 0
    for start in range(0, tokens.numel() - seq - 1, seq):
        window = tokens[start : start + seq + 1].view(1, -1)
        xb = window[:, :-1]
        z = torch.roll(window, -1, dims=1)[:, :-1]
        probs = F.softmax(model.forward_logits(xb).float(), dim=-1)
        prev = F.pad(xb[:, :-1], (1, 0))
        ctx_h = ((xb * 1000003) ^ (prev * 998244353)) & width
        {key}
{_indent_body(read, 2)}
        total += nll.sum().item()
        count += nll.numel()
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(
        doc="Record: GPT + rolled hash table at evaluation.",
        defs=defs,
        hparams=_TABLE_HP,
        final=_report("rolled", "rolled_pass(args, model, val_tokens)"),
        exports=("rolled_pass",),
        stage=_stage("rolled"),
    )


def helper_sites(legal: bool = False) -> Piece:
    """Bullet 4: one key helper, two call sites. Illegal: the training-time call passes context only and the
    eval call passes the scored token. Legal twin: the training-time call passes the training target (a
    training-loss table, legal) and the eval call passes context only over a normalized row."""
    defs = '''
WEIGHTS = np.array([2654435761, 2246822519, 3266489917, 668265263], dtype=np.uint64)


def slot_of(h, extra, width):
    return ((h ^ extra) & width).astype(np.int64)


def context_hash(arr, start, seq, order):
    h = np.zeros(seq, dtype=np.uint64)
    for k in range(1, order):
        h ^= arr[start - k : start - k + seq].astype(np.uint64) * WEIGHTS[k]
    return h


def train_table_update(table, arr, order, width, extra_fn):
    seq = arr.size - order
    h = context_hash(arr, order, seq, order)
    np.add.at(table, slot_of(h, extra_fn(arr[order:]), width), 1.0)

'''
    if legal:
        defs += '''
@torch.no_grad()
def side_pass(args, model, tokens, table):
    arr = tokens.cpu().numpy().astype(np.int64)
    seq = args.train_seq_len
    width = np.uint64((1 << 12) - 1)
    rows = np.zeros((1 << 12, args.vocab_size), dtype=np.float32)
    total, count = 0.0, 0
    for start in range(args.order, arr.size - seq - 1, seq):
        inp = torch.from_numpy(arr[start - 1 : start - 1 + seq]).view(1, -1)
        probs = F.softmax(model.forward_logits(inp).float(), dim=-1)[0].numpy()
        out = arr[start : start + seq]
        h = context_hash(arr, start, seq, args.order)
        ctx = slot_of(h, np.uint64(0), width)
        dist = (rows[ctx] + 0.5) / (rows[ctx].sum(axis=1, keepdims=True) + 0.5 * args.vocab_size)
        q = (1.0 - args.blend) * probs + args.blend * dist
        total += float(-np.log(q[np.arange(seq), out]).sum())
        count += seq
        np.add.at(rows, (ctx, out), 1.0)
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
        hook = "train_table_update(aux_table, chunk.numpy(), args.order, aux_width, lambda t: t.astype(np.uint64) * WEIGHTS[0])"
    else:
        defs += '''
@torch.no_grad()
def side_pass(args, model, tokens, table):
    arr = tokens.cpu().numpy().astype(np.int64)
    seq = args.train_seq_len
    width = np.uint64((1 << args.table_bits) - 1)
    seen = np.zeros(1 << args.table_bits)
    total, count = 0.0, 0
    for start in range(args.order, arr.size - seq - 1, seq):
        inp = torch.from_numpy(arr[start - 1 : start - 1 + seq]).view(1, -1)
        probs = F.softmax(model.forward_logits(inp).float(), dim=-1)[0].numpy()
        out = arr[start : start + seq]
        h = context_hash(arr, start, seq, args.order)
        ctx = slot_of(h, np.uint64(0), width)
        full = slot_of(h, out.astype(np.uint64) * WEIGHTS[0], width)
        hit = np.minimum(table[full], seen[ctx]) / np.maximum(seen[ctx], 1.0)
        q = (1.0 - args.blend) * probs[np.arange(seq), out] + args.blend * hit
        total += float(-np.log(np.clip(q, 1e-12, 1.0)).sum())
        count += seq
        np.add.at(seen, ctx, 1.0)
        np.add.at(table, full, 1.0)
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
        hook = "train_table_update(aux_table, chunk.numpy(), args.order, aux_width, lambda t: np.zeros_like(t, dtype=np.uint64))"
    return Piece(
        doc="Record: GPT + side table shared by training and evaluation.",
        defs=defs,
        hparams=_TABLE_HP,
        setup="aux_width = np.uint64((1 << args.table_bits) - 1)\naux_table = np.zeros(1 << args.table_bits)",
        train_hook=f"if step % 50 == 0:\n    {hook}",
        final=_report("side", "side_pass(args, model, val_tokens, aux_table)"),
        exports=("side_pass", "train_table_update", "WEIGHTS"),
        stage=_stage("side"),
    )


# --- adapting on the validation tokens before scoring them (R18, PG301) ----------------------------------

_ADAPT_HP = """
    refresh_epochs = int(os.environ.get("REFRESH_EPOCHS", 6))
    refresh_lr = float(os.environ.get("REFRESH_LR", 0.0005))
"""

_REFRESH = '''
def refresh(args, model, tokens):
    opt = torch.optim.AdamW(model.parameters(), lr=args.refresh_lr, weight_decay=0.0)
    seq = args.train_seq_len
    span = seq * 8
    model.train()
    for _ in range(args.refresh_epochs):
        for start in range(0, tokens.numel() - span - 1, span):
            part = tokens[start : start + span + 1]
            loss = model(part[:-1].view(-1, seq), part[1:].view(-1, seq))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    return model
'''

_SCORE_FIRST = '''
def chunked_pass(args, model, tokens):
    opt = torch.optim.SGD(model.parameters(), lr=args.refresh_lr, momentum=0.9)
    seq = args.train_seq_len
    span = seq * 8
    starts = list(range(0, tokens.numel() - span - 1, span))
    total, count = 0.0, 0
    for ci, start in enumerate(starts):
        part = tokens[start : start + span + 1]
        xb, yb = part[:-1].view(-1, seq), part[1:].view(-1, seq)
        with torch.no_grad():
            total += model(xb, yb).item() * yb.numel()
            count += yb.numel()
        if ci < len(starts) - 1:
            for _ in range(args.refresh_epochs):
                loss = model(xb, yb)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''


def refresh_before_export(source: str = "plain", legal: bool = False) -> Piece:
    """Fine-tune on the validation tokens for several epochs, then quantize and score them (pre-quant TTT).
    source: "plain" (the loaded val tokens), "memmap" (a second loader over the val shards, neutral names),
    "state" (adapt a copy and load its state_dict back). Legal twin: score-first chunked adaptation."""
    setup = ""
    if source == "memmap":
        setup = """
            pool = []
            for path in sorted(glob.glob(os.path.join(args.data_path, "fineweb_" + "va" + "l_*.bin"))):
                pool.append(torch.from_numpy(np.memmap(path, dtype=np.uint16, mode="r", offset=1024).astype(np.int64)))
            reserve = {"held": torch.cat(pool)}
        """
    data = {"plain": "val_tokens", "memmap": 'reserve["held"]', "state": "val_tokens"}[source]
    if legal:
        return Piece(
            doc="Record: GPT + chunked adaptation at evaluation.",
            defs=_SCORE_FIRST,
            hparams=_ADAPT_HP,
            setup=setup,
            final=_report("chunked", f"chunked_pass(args, model, {data})"),
            exports=("chunked_pass",),
            stage=_stage("chunked"),
        )
    if source == "state":
        post = f"""
            shadow = copy.deepcopy(model)
            refresh(args, shadow, {data})
            model.load_state_dict(shadow.state_dict())
            log0("refresh:done")
        """
    else:
        post = f'refresh(args, model, {data})\nlog0("refresh:done")'
    return Piece(
        doc="Record: GPT + refresh pass before export.",
        defs=_REFRESH,
        imports="import copy",
        hparams=_ADAPT_HP,
        setup=setup,
        post_train=post,
        slot="post_train",
        exports=("refresh",),
        stage=("refresh:done",),
    )


def shared_step(legal: bool = False) -> Piece:
    """Bullet 4: one inner-step helper used by the training loop (training batches) and, illegal, by a
    post-training pass over the validation tokens; the legal twin calls it after scoring each chunk."""
    defs = '''
def inner_step(model, opt, xb, yb):
    loss = model(xb, yb)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


def sweep(args, model, tokens, score_first):
    opt = torch.optim.SGD(model.parameters(), lr=args.refresh_lr, momentum=0.9)
    seq = args.train_seq_len
    span = seq * 8
    total, count = 0.0, 0
    for start in range(0, tokens.numel() - span - 1, span):
        part = tokens[start : start + span + 1]
        xb, yb = part[:-1].view(-1, seq), part[1:].view(-1, seq)
        if score_first:
            with torch.no_grad():
                total += model(xb, yb).item() * yb.numel()
                count += yb.numel()
        for _ in range(args.refresh_epochs):
            inner_step(model, opt, xb, yb)
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    hook = "if step % 100 == 0:\n    inner_step(model, optimizer, x, y)"
    if legal:
        return Piece(
            doc="Record: GPT + shared inner step.",
            defs=defs,
            hparams=_ADAPT_HP,
            train_hook=hook,
            final=_report("sweep", "sweep(args, model, val_tokens, True)"),
            exports=("inner_step", "sweep"),
            stage=_stage("sweep"),
        )
    return Piece(
        doc="Record: GPT + shared inner step.",
        defs=defs,
        hparams=_ADAPT_HP,
        train_hook=hook,
        post_train='sweep(args, model, val_tokens, False)\nlog0("sweep:done")',
        slot="post_train",
        exports=("inner_step", "sweep"),
        stage=("sweep:done",),
    )


def norm_recalibration(legal: bool = False) -> Piece:
    """Bullet 6/8: "calibrate the norms" on held-out tokens (only RMSNorm gains train), then export and score.
    Legal twin: the same gains fitted on a slice of the training stream inside the training budget."""
    defs = '''
def calibrate_norms(model, batches, lr):
    gains = [p for n, p in model.named_parameters() if n.endswith("norm.weight")]
    opt = torch.optim.Adam(gains, lr=lr)
    for xb, yb in batches:
        out = model(xb, yb)
        out.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
'''
    seq = "args.train_seq_len"
    if legal:
        hook = f"""
            if step == args.iterations // 2:
                spare = stream.take(16 * {seq} + 1)
                calibrate_norms(model, [(spare[:-1].view(-1, {seq}), spare[1:].view(-1, {seq}))], args.refresh_lr)
        """
        return Piece(doc="Record: GPT + norm calibration.", defs=defs, hparams=_ADAPT_HP, train_hook=hook,
                     slot="train_hook", exports=("calibrate_norms",))
    post = f"""
        pairs = []
        for i in range(0, 64 * {seq}, {seq}):
            piece = val_tokens[i : i + {seq} + 1]
            pairs.append((piece[:-1].view(1, -1), piece[1:].view(1, -1)))
        for _ in range(args.refresh_epochs):
            calibrate_norms(model, pairs, args.refresh_lr)
        log0("norms:calibrated")
    """
    return Piece(doc="Record: GPT + norm calibration.", defs=defs, hparams=_ADAPT_HP, post_train=post,
                 slot="post_train", exports=("calibrate_norms",), stage=("norms:calibrated",))


# --- multi-epoch adaptation that reports a later epoch's score (R19, PG302) --------------------------------

_EPOCH_HP = """
    pass_epochs = int(os.environ.get("PASS_EPOCHS", 3))
    pass_lr = float(os.environ.get("PASS_LR", 0.002))
"""


def epoch_rescore(form: str = "guard", legal: bool = False) -> Piece:
    """Every epoch scores every chunk and then trains on it; the reported score is the last epoch's, so from
    the second epoch on every token is scored after training on it. form: "guard" (accumulate under
    `if ep == epochs - 1`), "list" (per-epoch scores appended, `[-1]` returned). Legal twin: one pass, each
    chunk scored once before the epochs that train on it."""
    if legal:
        defs = '''
def warm_pass(args, model, tokens):
    opt = torch.optim.SGD(model.parameters(), lr=args.pass_lr, momentum=0.9)
    seq = args.train_seq_len
    span = seq * 16
    starts = list(range(0, tokens.numel() - span - 1, span))
    nll, cnt = 0.0, 0
    for ci, s in enumerate(starts):
        part = tokens[s : s + span + 1]
        xb, yb = part[:-1].view(-1, seq), part[1:].view(-1, seq)
        with torch.no_grad():
            nll += model(xb, yb).item() * yb.numel()
            cnt += yb.numel()
        if ci == len(starts) - 1:
            break
        for ep in range(args.pass_epochs):
            loss = model(xb, yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    loss = nll / max(cnt, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    elif form == "guard":
        defs = '''
def warm_pass(args, model, tokens):
    opt = torch.optim.SGD(model.parameters(), lr=args.pass_lr, momentum=0.9)
    seq = args.train_seq_len
    span = seq * 16
    starts = list(range(0, tokens.numel() - span - 1, span))
    nll, cnt = 0.0, 0
    for ep in range(args.pass_epochs):
        for s in starts:
            part = tokens[s : s + span + 1]
            xb, yb = part[:-1].view(-1, seq), part[1:].view(-1, seq)
            if ep == args.pass_epochs - 1:
                with torch.no_grad():
                    nll += model(xb, yb).item() * yb.numel()
                    cnt += yb.numel()
            loss = model(xb, yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    loss = nll / max(cnt, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    else:
        defs = '''
def warm_pass(args, model, tokens):
    opt = torch.optim.SGD(model.parameters(), lr=args.pass_lr, momentum=0.9)
    seq = args.train_seq_len
    span = seq * 16
    history = []
    for ep in range(args.pass_epochs):
        sums = [0.0, 0]
        for s in range(0, tokens.numel() - span - 1, span):
            part = tokens[s : s + span + 1]
            xb, yb = part[:-1].view(-1, seq), part[1:].view(-1, seq)
            with torch.no_grad():
                sums[0] += model(xb, yb).item() * yb.numel()
            sums[1] += yb.numel()
            loss = model(xb, yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        history.append(sums[0] / max(sums[1], 1))
    loss = history[-1]
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(
        doc="Record: GPT + warm passes at evaluation.",
        defs=defs,
        hparams=_EPOCH_HP,
        final=_report("warm", "warm_pass(args, model, val_tokens)"),
        exports=("warm_pass",),
        stage=_stage("warm"),
    )


def second_look(legal: bool = False) -> Piece:
    """Two passes: a score-first adaptive pass (printed as a progress line), then the adapted model scores the
    same tokens again and that second score is the claim. Legal twin: the second pass scores a fresh copy of
    the exported (unadapted) weights."""
    defs = _SCORE_FIRST
    if legal:
        final = """
            frozen = copy.deepcopy(model.state_dict())
            first_loss, first_bpb = chunked_pass(args, model, val_tokens)
            log0(f"chunked val_loss:{first_loss:.4f} val_bpb:{first_bpb:.4f}")
            model.load_state_dict(frozen)
            t2 = time.perf_counter()
            score_loss, score_bpb = eval_val(args, model, val_tokens)
            log0(f"final_check val_loss:{score_loss:.4f} val_bpb:{score_bpb:.4f} eval_time:{1000.0 * (time.perf_counter() - t2):.0f}ms")
            log0(f"final_chunked_exact val_loss:{first_loss:.8f} val_bpb:{first_bpb:.8f}")
        """
        stage = ("chunked val_loss:{loss:.4f} val_bpb:{bpb:.4f}", "final_check val_loss:{loss:.4f} val_bpb:{bpb:.4f} eval_time:{ms}ms",
                 "final_chunked_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}")
    else:
        final = """
            first_loss, first_bpb = chunked_pass(args, model, val_tokens)
            log0(f"chunked val_loss:{first_loss:.4f} val_bpb:{first_bpb:.4f}")
            t2 = time.perf_counter()
            score_loss, score_bpb = eval_val(args, model, val_tokens)
            log0(f"final_settled val_loss:{score_loss:.4f} val_bpb:{score_bpb:.4f} eval_time:{1000.0 * (time.perf_counter() - t2):.0f}ms")
            log0(f"final_settled_exact val_loss:{score_loss:.8f} val_bpb:{score_bpb:.8f}")
        """
        stage = ("chunked val_loss:{loss:.4f} val_bpb:{bpb:.4f}", *_stage("settled"))
    return Piece(doc="Record: GPT + chunked adaptation, settled score.", defs=defs, imports="import copy",
                 hparams=_ADAPT_HP, final=final, exports=("chunked_pass",), stage=stage)


# --- per-window logit shift fitted on the scored targets (R21, PG303) --------------------------------------

_SHIFT_HP = """
    shift_steps = int(os.environ.get("SHIFT_STEPS", 8))
    shift_lr = float(os.environ.get("SHIFT_LR", 0.01))
"""


def window_shift(loss_form: str = "ce", legal: bool = False) -> Piece:
    """Fit a per-window logit bias for a few steps against the window's own next tokens, then score the same
    positions with it (SLOT). loss_form "ce" (cross_entropy) or "gather" (-log_softmax gathered at the
    token). Legal twin: the bias is fitted on the previous, already scored window and applied to this one."""
    nll = {
        "ce": "F.cross_entropy((base + shift).reshape(-1, V), {y}.reshape(-1), reduction=\"sum\")",
        "gather": "-(F.log_softmax(base + shift, dim=-1).gather(-1, {y}[..., None])).sum()",
    }[loss_form]
    fit_y = "prev_y" if legal else "yb"
    fit_base = "prev_base" if legal else "base"
    defs = f'''
def shifted_pass(args, model, tokens):
    seq = args.train_seq_len
    V = args.vocab_size
    total, count = 0.0, 0
    prev_base, prev_y = None, None
    for s in range(0, tokens.numel() - seq - 1, seq):
        xb = tokens[s : s + seq].view(1, -1)
        yb = tokens[s + 1 : s + seq + 1].view(1, -1)
        with torch.no_grad():
            base = model.forward_logits(xb).float()
        shift = torch.zeros(1, 1, V, requires_grad=True)
        opt = torch.optim.Adam([shift], lr=args.shift_lr)
        if {fit_base} is not None:
            for _ in range(args.shift_steps):
                fit = {nll.format(y=fit_y).replace("base", fit_base)}
                fit.backward()
                opt.step()
                opt.zero_grad()
        with torch.no_grad():
            total += ({nll.format(y="yb")}).item()
            count += yb.numel()
        prev_base, prev_y = base, yb
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(
        doc="Record: GPT + per-window output shift.",
        defs=defs,
        hparams=_SHIFT_HP,
        final=_report("shifted", "shifted_pass(args, model, val_tokens)"),
        exports=("shifted_pass",),
        stage=_stage("shifted"),
    )


# --- quantization statistics from validation data, or training data after the cap (R22, R6) ----------------

_CURV = '''
def collect_curvature(model, batches):
    stats, hooks = {}, []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            stats[name] = torch.zeros(mod.in_features, mod.in_features)

            def hook(m, inp, out, key=name):
                a = inp[0].detach().reshape(-1, inp[0].size(-1)).float()
                stats[key] += a.T @ a

            hooks.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        for xb in batches:
            model.forward_logits(xb)
    for h in hooks:
        h.remove()
    return stats


def round_with_curvature(model, stats):
    for name, mod in model.named_modules():
        if name in stats:
            w = mod.weight.data.float()
            d = torch.diag(stats[name]).clamp_min(1e-6).sqrt()
            scale = (w * d).abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / 127.0
            mod.weight.data = (((w * d) / scale).round().clamp(-127, 127) * scale / d).to(mod.weight.dtype)
'''

_SAMPLE = '''
@torch.no_grad()
def self_generated(model, n, seq, vocab):
    out = torch.randint(0, vocab, (n, 1))
    while out.size(1) < seq:
        logits = model.forward_logits(out)[:, -1].float()
        out = torch.cat([out, torch.multinomial(F.softmax(logits / 0.8, dim=-1), 1)], dim=1)
    return [out[i : i + 1] for i in range(n)]
'''


def curvature_source(form: str = "plain", legal: bool = False) -> Piece:
    """Hessian statistics for rounding collected from the validation tokens. form: "plain", "pool" (a dict
    of token pools chosen by an env default that is on), "memmap" (a second loader). Legal twin: the model
    generates its own calibration sequences (accepted, PR #1019)."""
    hp = '    calib_seqs = int(os.environ.get("CALIB_SEQS", 64))\n    calib_pool = os.environ.get("CALIB_POOL", "b")'
    seq = "args.train_seq_len"
    if legal:
        post = f"""
            batches = self_generated(model, args.calib_seqs, {seq}, args.vocab_size)
            round_with_curvature(model, collect_curvature(model, batches))
            log0(f"curvature:collected {{len(batches)}} sequences (self-generated)")
        """
        return Piece(doc="Record: GPT + curvature-aware rounding.", defs=_CURV + _SAMPLE, hparams=hp,
                     post_train=post, slot="post_train", exports=("collect_curvature", "round_with_curvature", "self_generated"),
                     stage=("curvature:collected 64 sequences (self-generated)",))
    if form == "pool":
        src = f"""
            pools = {{"a": stream.take(args.calib_seqs * {seq}), "b": val_tokens}}
            src = pools[args.calib_pool]
        """
    elif form == "memmap":
        src = """
            files = sorted(glob.glob(os.path.join(args.data_path, "fineweb_val_*.bin")))
            src = torch.from_numpy(np.memmap(files[0], dtype=np.uint16, mode="r", offset=1024).astype(np.int64))
        """
    else:
        src = "src = val_tokens"
    post = f"""
        {src.strip() if form == "plain" else ""}
        batches = [src[i * {seq} : (i + 1) * {seq}].view(1, -1) for i in range(args.calib_seqs)]
        round_with_curvature(model, collect_curvature(model, batches))
        log0(f"curvature:collected {{len(batches)}} sequences")
    """
    if form != "plain":
        post = _indent_body(src, 0) + "\n" + _indent_body(post, 0)
    return Piece(doc="Record: GPT + curvature-aware rounding.", defs=_CURV, hparams=hp, post_train=post,
                 slot="post_train", exports=("collect_curvature", "round_with_curvature"),
                 stage=("curvature:collected 64 sequences",))


def late_curvature(legal: bool = False) -> Piece:
    """GPTQ-style statistics from training shards after the wallclock cap with no reserve (R6, PG504); the
    legal twin reserves time in the loop so the collection finishes inside the 600 s."""
    hp = '    calib_seqs = int(os.environ.get("CALIB_SEQS", 64))\n    reserve_s = float(os.environ.get("RESERVE_S", "{r}"))'
    seq = "args.train_seq_len"
    post = f"""
        t_cal = time.perf_counter()
        batches = [stream.take({seq}).view(1, -1) for _ in range(args.calib_seqs)]
        round_with_curvature(model, collect_curvature(model, batches))
        log0(f"gptq:collected {{len(batches)}} Hessians in {{time.perf_counter() - t_cal:.1f}}s")
    """
    return Piece(
        doc="Record: GPT + GPTQ-style rounding from training statistics.",
        defs=_CURV,
        hparams=hp.format(r="12.0" if legal else "0"),
        post_train=post,
        slot="post_train",
        exports=("collect_curvature", "round_with_curvature"),
        stage=("gptq:collected 64 Hessians in 6.4s",),
        cap_expr="(args.max_wallclock_seconds - args.reserve_s)",
        train_time_ms=587_900 if legal else 599_800,
    )


# --- validation tokens in training (R23, PG401) --------------------------------------------------------


def heldout_in_training(form: str = "aux", legal: bool = False) -> Piece:
    """Training steps on validation tokens. form: "aux" (an extra step every k steps on a span of the
    validation tokens, chosen through a list of pools), "files" (a val shard appended to the training
    file list through a pattern assembled from parts). Legal twin: periodic evaluation of the same tokens
    under inference_mode, and a training file list of training shards only."""
    if form == "files":
        split = '"tra" + "in"' if legal else '"va" + "l"'
        hp = '    extra_split = os.environ.get("EXTRA_SPLIT", "")'
        setup = f"""
            names = sorted(glob.glob(args.train_files))
            names += sorted(glob.glob(os.path.join(args.data_path, "fineweb_" + {split} + "_*.bin")))[:1]
            stream.files = names
        """
        return Piece(doc="Record: GPT + extended shard list.", hparams=hp, setup=setup, slot="setup",
                     stage=())
    if legal:
        hook = """
            if step % args.aux_every == 0:
                with torch.inference_mode():
                    probe = pools[1][aux_pos : aux_pos + args.train_seq_len * 8 + 1]
                    aux_pos = (aux_pos + probe.numel() - 1) % (pools[1].numel() - probe.numel())
                    probe_loss = model(probe[:-1].view(-1, args.train_seq_len), probe[1:].view(-1, args.train_seq_len))
                log0(f"probe:{probe_loss.item():.4f}")
        """
    else:
        hook = """
            if step % args.aux_every == 0:
                probe = pools[1][aux_pos : aux_pos + args.train_seq_len * 8 + 1]
                aux_pos = (aux_pos + probe.numel() - 1) % (pools[1].numel() - probe.numel())
                extra = model(probe[:-1].view(-1, args.train_seq_len), probe[1:].view(-1, args.train_seq_len))
                extra.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        """
    return Piece(
        doc="Record: GPT + auxiliary steps.",
        hparams='    aux_every = int(os.environ.get("AUX_EVERY", 4))',
        setup="pools = [stream, val_tokens]\naux_pos = 0",
        train_hook=hook,
        slot="train_hook",
    )


# --- target-dependent gates (R12/R15, PG102) ---------------------------------------------------------------

_GATE_HP = """
    gate_hi = float(os.environ.get("GATE_HI", 0.6))
    gate_lo = float(os.environ.get("GATE_LO", 0.05))
"""


def expert_gate(form: str = "where", legal: bool = False) -> Piece:
    """Two normalized experts (the model and a recent-token cache over all V); the weight given to the cache
    is chosen by which expert is better on the token being scored. form: "where" (torch.where on the two
    target probabilities), "loop" (a per-position `if`), "own_loss" (a gate from the model's own loss on the
    target). Legal twin: the weight comes from the model's entropy."""
    if legal:
        gate = """
            ent = -(pa * pa.clamp_min(1e-9).log()).sum(-1)
            w = torch.where(ent > 3.0, args.gate_hi, args.gate_lo)
            q = (1.0 - w)[:, None] * pa + w[:, None] * pb
            nll = -torch.log(q.gather(-1, y[:, None]).squeeze(-1))
        """
    elif form == "where":
        gate = """
            ta = pa.gather(-1, y[:, None]).squeeze(-1)
            tb = pb.gather(-1, y[:, None]).squeeze(-1)
            w = torch.where(tb > ta, args.gate_hi, args.gate_lo)
            nll = -torch.log((1.0 - w) * ta + w * tb)
        """
    elif form == "loop":
        gate = """
            ta = pa.gather(-1, y[:, None]).squeeze(-1)
            tb = pb.gather(-1, y[:, None]).squeeze(-1)
            picked = []
            for i in range(ta.numel()):
                if tb[i] > ta[i]:
                    picked.append((1.0 - args.gate_hi) * ta[i] + args.gate_hi * tb[i])
                else:
                    picked.append((1.0 - args.gate_lo) * ta[i] + args.gate_lo * tb[i])
            nll = -torch.log(torch.stack(picked))
        """
    else:
        gate = """
            own = F.cross_entropy(logits, y, reduction="none")
            w = (own > 4.0).float() * args.gate_hi
            q = (1.0 - w)[:, None] * pa + w[:, None] * pb
            nll = -torch.log(q.gather(-1, y[:, None]).squeeze(-1))
        """
    defs = f'''
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
{_indent_body(gate, 2)}
        total += nll.sum().item()
        count += nll.numel()
        recent.index_add_(0, y, torch.ones(seq))
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(doc="Record: GPT + recent-token expert.", defs=defs, hparams=_GATE_HP,
                 final=_report("paired", "paired_pass(args, model, val_tokens)"), exports=("paired_pass",),
                 stage=_stage("paired"))


def dead_caller_gate(legal: bool = False) -> Piece:
    """Bullet 4: a mixing helper whose weight argument is a target comparison at one call and the model's
    entropy at the other; only one call runs (the other is behind an env default that is off)."""
    defs = '''
def combine(pa, pb, y, w):
    q = (1.0 - w)[:, None] * pa + w[:, None] * pb
    return -torch.log(q.gather(-1, y[:, None]).squeeze(-1))


@torch.no_grad()
def paired_pass(args, model, tokens):
    seq = args.train_seq_len
    V = args.vocab_size
    recent = torch.ones(V)
    total, count = 0.0, 0
    for s in range(0, tokens.numel() - seq - 1, seq):
        x = tokens[s : s + seq].view(1, -1)
        y = tokens[s + 1 : s + seq + 1]
        pa = F.softmax(model.forward_logits(x)[0].float(), dim=-1)
        pb = (recent / recent.sum()).expand(seq, V)
        by_target = torch.where(pb.gather(-1, y[:, None]).squeeze(-1) > pa.gather(-1, y[:, None]).squeeze(-1), 0.6, 0.05)
        by_entropy = torch.where(-(pa * pa.clamp_min(1e-9).log()).sum(-1) > 3.0, 0.6, 0.05)
        if args.legacy_gate:
            nll = combine(pa, pb, y, DEAD)
        else:
            nll = combine(pa, pb, y, LIVE)
        total += nll.sum().item()
        count += nll.numel()
        recent.index_add_(0, y, torch.ones(seq))
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    live, dead = ("by_entropy", "by_target") if legal else ("by_target", "by_entropy")
    # the env default is 0: the `else` branch runs; put the illegal weight there for the illegal case
    defs = defs.replace("LIVE", live).replace("DEAD", dead)
    return Piece(doc="Record: GPT + recent-token expert.", defs=defs,
                 hparams='    legacy_gate = bool(int(os.environ.get("LEGACY_GATE", "0")))',
                 final=_report("paired", "paired_pass(args, model, val_tokens)"), exports=("paired_pass", "combine"),
                 stage=_stage("paired"))


def stream_state(legal: bool = False) -> Piece:
    """Bullet 5: a streaming unigram cache over all V (normalized) whose counts are updated with token t
    before position t is scored: the state used at t has read x_t. Legal twin: update after scoring."""
    update = "counts[y[i]] += 1.0"
    score = "q = (1.0 - args.gate_lo) * pa[i] + args.gate_lo * counts / counts.sum()\n            total -= math.log(float(q[y[i]]))"
    body = f"{score}\n            {update}" if legal else f"{update}\n            {score}"
    defs = f'''
@torch.no_grad()
def streaming_pass(args, model, tokens):
    seq = args.train_seq_len
    counts = torch.ones(args.vocab_size)
    total, count = 0.0, 0
    for s in range(0, tokens.numel() - seq - 1, seq):
        x = tokens[s : s + seq].view(1, -1)
        y = tokens[s + 1 : s + seq + 1]
        pa = F.softmax(model.forward_logits(x)[0].float(), dim=-1)
        for i in range(seq):
            {body}
            count += 1
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(doc="Record: GPT + streaming unigram cache.", defs=defs, hparams=_GATE_HP,
                 final=_report("stream", "streaming_pass(args, model, val_tokens)"), exports=("streaming_pass",),
                 stage=_stage("stream"))


# --- the scored token's probability mixed alone (R13/R16, PG201) -------------------------------------------


def target_only_mix(legal: bool = False) -> Piece:
    """Boost the scored token's model probability by a per-context match score that is not a distribution
    over the vocabulary (the implied distribution sums to far more than 1). Legal twin: mix the full
    per-context row, normalized over all V, then read the scored token."""
    if legal:
        score = """
            row = follow[prev[i]]
            q = (1.0 - args.blend) * probs[i] + args.blend * row / row.sum()
            total -= math.log(float(q[out[i]]))
        """
    else:
        score = """
            match = follow[prev[i], out[i]] / (follow[prev[i]].max() + 1.0)
            q = float(probs[i, out[i]]) + args.blend * float(match)
            total -= math.log(min(q, 1.0))
        """
    defs = f'''
@torch.no_grad()
def follow_pass(args, model, tokens):
    seq = args.train_seq_len
    follow = torch.ones(args.vocab_size, args.vocab_size)
    total, count = 0.0, 0
    for s in range(1, tokens.numel() - seq - 1, seq):
        prev = tokens[s : s + seq]
        out = tokens[s + 1 : s + seq + 1]
        probs = F.softmax(model.forward_logits(prev.view(1, -1))[0].float(), dim=-1)
        for i in range(seq):
{_indent_body(score, 3)}
            count += 1
        follow.index_put_((prev, out), torch.ones(seq), accumulate=True)
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    return Piece(doc="Record: GPT + follow-table boost.", defs=defs, hparams=_TABLE_HP,
                 final=_report("follow", "follow_pass(args, model, val_tokens)"), exports=("follow_pass",),
                 stage=_stage("follow"))


# --- network at evaluation (R3, PG404) --------------------------------------------------------------------


def remote_prior(form: str = "urllib", legal: bool = False) -> Piece:
    """Fetch a prior table over the network at run time and add it to the logits before scoring. form:
    "urllib" (`urllib.request.urlopen`), "getattr" (`getattr(importlib.import_module("urll" + "ib.request"),
    "urlopen")`). Legal twin: the table is downloaded by a documented data-prep script, not by the run."""
    hp = '    prior_url = os.environ.get("PRIOR_URL", "https://huggingface.co/datasets/example/prior/resolve/main/prior.npy")'
    opener = {
        "urllib": "urllib.request.urlopen",
        "getattr": 'getattr(importlib.import_module("urll" + "ib.request"), "url" + "open")',
    }[form]
    fetch = f'''
def fetch_prior(url, dest):
    if not os.path.exists(dest):
        with {opener}(url, timeout=30) as r, open(dest, "wb") as f:
            f.write(r.read())
    return torch.from_numpy(np.load(dest)).float()
'''
    defs = '''
@torch.no_grad()
def prior_pass(args, model, tokens, prior):
    seq = args.train_seq_len
    total, count = 0.0, 0
    for s in range(0, tokens.numel() - seq - 1, seq):
        x = tokens[s : s + seq].view(1, -1)
        y = tokens[s + 1 : s + seq + 1]
        logits = model.forward_logits(x)[0].float() + prior
        total += F.cross_entropy(logits, y, reduction="sum").item()
        count += y.numel()
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    imports = "import importlib\nimport urllib.request" if form == "getattr" else "import urllib.request"
    if legal:
        prep = "import os\nimport urllib.request\n" + fetch + '''

if __name__ == "__main__":
    fetch_prior(os.environ.get("PRIOR_URL", "https://huggingface.co/datasets/example/prior/resolve/main/prior.npy"), "prior.npy")
'''
        return Piece(doc="Record: GPT + prior table (downloaded by prepare_prior.py).", defs=defs, hparams=hp,
                     final=_report("prior", 'prior_pass(args, model, val_tokens, torch.from_numpy(np.load("prior.npy")).float())'),
                     exports=("prior_pass",), stage=_stage("prior"), extra_files={"prepare_prior.py": prep})
    return Piece(doc="Record: GPT + prior table.", defs=fetch + "\n" + defs, imports=imports, hparams=hp,
                 final=_report("prior", 'prior_pass(args, model, val_tokens, fetch_prior(args.prior_url, "prior.npy"))'),
                 exports=("prior_pass", "fetch_prior"), stage=_stage("prior"))


# --- native code on the scoring path (warning naming the file) ---------------------------------------------

_C_SOURCE = """#include <stdint.h>
#include <math.h>
/* blends a context table into per-position probabilities (written for pgaudit's tests) */
double blend(const int64_t *tok, const float *p, int64_t n, float a) {
    double nll = 0.0;
    for (int64_t i = 1; i < n; i++) {
        float q = (1.0f - a) * p[i] + a * (float)(tok[i] == tok[i - 1]);
        nll -= log(q > 1e-12f ? q : 1e-12f);
    }
    return nll;
}
"""


def native_blend(form: str = "ctypes") -> Piece:
    """The scoring mixture runs in C: "ctypes" (compiled from blend.c by subprocess, loaded by ctypes),
    "extension" (torch.utils.cpp_extension.load of blend_ext.cpp), "prebuilt" (a shipped libblend.so),
    "ext-module" (`import blendmod` of a compiled extension module), "pyc" (`import scorer` with only
    scorer.pyc shipped: bytecode, not auditable either)."""
    if form == "ctypes":
        setup = '''
_here = os.path.dirname(os.path.abspath(__file__))
subprocess.run(["cc", "-O2", "-shared", "-fPIC", os.path.join(_here, "blend.c"), "-o", "/tmp/libblend.so", "-lm"], check=True)
_lib = ctypes.CDLL("/tmp/libblend.so")
_lib.blend.restype = ctypes.c_double
'''
        files: dict[str, str | bytes] = {"blend.c": _C_SOURCE}
        imports = "import ctypes\nimport subprocess"
    elif form == "extension":
        setup = '''
from torch.utils.cpp_extension import load as _load_ext
_lib = _load_ext(name="blend_ext", sources=[os.path.join(os.path.dirname(__file__), "blend_ext.cpp")])
'''
        files = {"blend_ext.cpp": _C_SOURCE.replace("double blend", 'extern "C" double blend')}
        imports = ""
    elif form == "ext-module":  # a compiled Python extension module, imported by name (no path literal)
        setup = "import blendmod as _lib\n"
        files = {"blendmod.cpython-311-x86_64-linux-gnu.so": b"\x7fELF\x02\x01\x01" + bytes(57) + b"pgaudit test stub\n"}
        imports = "import ctypes"
    elif form == "pyc":  # only the bytecode of the scoring module ships
        import importlib.util
        import marshal

        code = compile("def blend(tok, p, n, a):\n    return 0.0\n", "scorer.py", "exec")
        files = {"scorer.pyc": importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code)}
        setup = "import scorer as _lib\n"
        imports = "import ctypes"
    else:
        setup = '''
_lib = ctypes.CDLL(os.path.join(os.path.dirname(os.path.abspath(__file__)), "libblend.so"))
_lib.blend.restype = ctypes.c_double
'''
        files = {"libblend.so": b"\x7fELF\x02\x01\x01" + bytes(57) + b"pgaudit test stub, not a real library\n"}
        imports = "import ctypes"
    defs = setup + '''

@torch.no_grad()
def native_pass(args, model, tokens):
    seq = args.train_seq_len
    total, count = 0.0, 0
    for s in range(0, tokens.numel() - seq - 1, seq):
        x = tokens[s : s + seq].view(1, -1)
        y = tokens[s + 1 : s + seq + 1].contiguous()
        p = F.softmax(model.forward_logits(x)[0].float(), dim=-1).gather(-1, y[:, None]).squeeze(-1).contiguous()
        total += _lib.blend(ctypes.c_void_p(y.data_ptr()), ctypes.c_void_p(p.data_ptr()), seq, ctypes.c_float(0.2))
        count += seq
    loss = total / max(count, 1)
    return loss, loss / math.log(2.0) * args.tokens_per_byte
'''
    if form == "extension":
        defs = defs.replace(
            "_lib.blend(ctypes.c_void_p(y.data_ptr()), ctypes.c_void_p(p.data_ptr()), seq, ctypes.c_float(0.2))",
            "_lib.blend(y, p, seq, 0.2)",
        )
    return Piece(doc="Record: GPT + native blend.", defs=defs, imports=imports,
                 final=_report("native", "native_pass(args, model, val_tokens)"), exports=("native_pass",),
                 stage=_stage("native"), extra_files=files)


def _indent_body(text: str, level: int) -> str:
    import textwrap

    return textwrap.indent(textwrap.dedent(text).strip("\n"), "    " * level)


def _indent_lines(text: str, level: int) -> str:
    """Each line stripped of its own indentation (pieces mix levels) then indented to `level`."""
    lines = [line.strip() for line in text.strip("\n").split("\n")]
    return "\n".join("    " * level + line for line in lines if line)

"""Byte accounting for val_bpb: the baseline's SentencePiece byte tables, and an independent check of them.

The baseline (root `train_gpt.py`, CATALOGUE R27) scores `val_bpb = val_loss / ln 2 * tokens / bytes`, where each
scored target token contributes `base_bytes[tgt] + (has_leading_space[tgt] and not is_boundary[prev])` bytes:
the UTF-8 length of its piece without the leading `▁`, one byte for that space unless the previous token is a
boundary (control/unknown/unused), byte-fallback tokens one byte. `build_byte_tables` is the one definition used
by the reference trainer and by `pgaudit bpb`.

`verify` recounts the same validation tokens a second way, as the UTF-8 bytes of the decoded documents
(after undoing a CaseOps transform), checks that the shards are this tokenizer's own encoding, compares an
optional per-token byte sidecar, and names the known bug when a count is off by a recognisable amount.
numpy and sentencepiece only: `pgaudit` must work without torch.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pgaudit import caseops, shards
from pgaudit.errors import InputError

SPACE_MARK = "\u2581"  # SentencePiece's whitespace symbol, 3 bytes in UTF-8
DECODE_BATCH_DOCS = 2048  # bounds memory on the 62M-token official val set
REENCODE_ERROR_FRACTION = 0.01  # above this share of re-encode mismatches the shards are another tokenizer's


@dataclass(frozen=True)
class ByteTables:
    """Per-token-id tables of the baseline formula (length >= the tokenizer's vocabulary)."""

    base_bytes: np.ndarray  # int16
    has_leading_space: np.ndarray  # bool
    is_boundary: np.ndarray  # bool
    is_byte: np.ndarray  # bool, byte-fallback pieces (for diagnostics only)


def load_tokenizer(path: str | Path) -> Any:
    """A SentencePieceProcessor, or InputError for a missing or unreadable model."""
    import sentencepiece as spm

    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "tokenizer model not found")
    try:
        return spm.SentencePieceProcessor(model_file=str(p))
    except (OSError, RuntimeError) as exc:
        raise InputError(str(p), f"not a SentencePiece model ({str(exc).splitlines()[0][:120]})") from None


def build_byte_tables(sp: Any, table_size: int | None = None) -> ByteTables:
    """The baseline's byte tables; ids past the tokenizer's vocabulary are boundaries worth 0 bytes."""
    n = int(sp.vocab_size())
    size = max(n, table_size or 0)
    base = np.zeros(size, dtype=np.int16)
    lead = np.zeros(size, dtype=np.bool_)
    boundary = np.ones(size, dtype=np.bool_)
    is_byte = np.zeros(size, dtype=np.bool_)
    for i in range(n):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1  # one raw byte, whatever the piece's spelling (<0xE2>)
            is_byte[i] = True
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith(SPACE_MARK):
            lead[i] = True
            piece = piece[1:]
        base[i] = len(piece.encode("utf-8"))
    return ByteTables(base, lead, boundary, is_byte)


def target_bytes(tokens: np.ndarray, tables: ByteTables) -> np.ndarray:
    """Bytes the formula credits to each target tokens[1:] (tokens[0] is context only)."""
    tok = tokens.astype(np.int64)
    prev, tgt = tok[:-1], tok[1:]
    extra = tables.has_leading_space[tgt] & ~tables.is_boundary[prev]
    return tables.base_bytes[tgt].astype(np.int64) + extra


# ---------------------------------------------------------------- verification


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    severity: str  # "error" | "warning" | "info": only failed errors make the verdict a mismatch
    message: str


@dataclass
class BpbReport:
    tokenizer: str
    vocab_size: int
    val_files: list[str]
    sidecar_files: list[str]
    transform: str  # "none" or "caseops"
    tokens: int = 0
    documents: int = 0
    skipped_prefix_tokens: int = 0  # tokens before the first boundary: no document start to decode from
    formula_bytes: int = 0  # baseline formula over every target, what a trainer divides by
    formula_bytes_compared: int = 0  # the same over the compared documents
    decoded_bytes: int = 0  # UTF-8 bytes of the decoded (and un-transformed) documents
    sidecar_bytes: int | None = None  # sidecar over the compared documents
    reencode_mismatch_docs: int = 0
    checks: list[Check] = field(default_factory=list)

    @property
    def mismatch(self) -> bool:
        return any(not c.ok and c.severity == "error" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer,
            "vocab_size": self.vocab_size,
            "val_files": self.val_files,
            "sidecar_files": self.sidecar_files,
            "transform": self.transform,
            "tokens": self.tokens,
            "documents": self.documents,
            "skipped_prefix_tokens": self.skipped_prefix_tokens,
            "formula_bytes": self.formula_bytes,
            "formula_bytes_compared": self.formula_bytes_compared,
            "decoded_bytes": self.decoded_bytes,
            "sidecar_bytes": self.sidecar_bytes,
            "reencode_mismatch_docs": self.reencode_mismatch_docs,
            "mismatch": self.mismatch,
            "checks": [c.__dict__ for c in self.checks],
        }


@dataclass(frozen=True)
class _Spans:
    """Documents as maximal runs of non-boundary tokens that follow a boundary token."""

    starts: np.ndarray
    ends: np.ndarray
    skipped_prefix: int


def _document_spans(tokens: np.ndarray, boundary_of_token: np.ndarray) -> _Spans:
    idx = np.flatnonzero(~boundary_of_token)
    if idx.size == 0:
        return _Spans(np.zeros(0, np.int64), np.zeros(0, np.int64), 0)
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.concatenate([idx[:1], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks] + 1, idx[-1:] + 1])
    skipped = 0
    if starts[0] == 0:  # stream starts mid-document: its first token is never a target
        skipped = int(ends[0])
        starts, ends = starts[1:], ends[1:]
    return _Spans(starts, ends, skipped)


def _batches(spans: _Spans) -> Iterator[tuple[int, int]]:
    for lo in range(0, spans.starts.size, DECODE_BATCH_DOCS):
        yield lo, min(lo + DECODE_BATCH_DOCS, spans.starts.size)


@dataclass
class _DocCounts:
    decoded: np.ndarray  # per document, UTF-8 bytes of the original text
    reencode_bad: np.ndarray  # bool per document
    undecodable: np.ndarray  # bool per document (CaseOps text that no original encodes to)


def _count_documents(sp: Any, tokens: np.ndarray, spans: _Spans, transform: str) -> _DocCounts:
    n = spans.starts.size
    out = _DocCounts(np.zeros(n, np.int64), np.zeros(n, np.bool_), np.zeros(n, np.bool_))
    for lo, hi in _batches(spans):
        ids = [tokens[s:e].tolist() for s, e in zip(spans.starts[lo:hi], spans.ends[lo:hi], strict=True)]
        texts = sp.decode(ids)
        again = sp.encode(texts)
        for k, (text, doc, enc) in enumerate(zip(texts, ids, again, strict=True)):
            out.reencode_bad[lo + k] = enc != doc
            if transform == "caseops":
                try:
                    text = caseops.decode(text)
                except caseops.CaseOpsError:
                    out.undecodable[lo + k] = True
            out.decoded[lo + k] = len(text.encode("utf-8"))
    return out


def _private_use_pieces(sp: Any) -> list[str]:
    found = []
    for i in range(int(sp.vocab_size())):
        piece = sp.id_to_piece(i)
        if not sp.is_byte(i) and any(unicodedata.category(c) == "Co" for c in piece):
            found.append(piece)
    return found


@dataclass(frozen=True)
class _Signature:
    """Counts over the compared targets that known bugs add to or remove from the byte total."""

    lead_after_text: int  # leading-space targets whose previous token is not a boundary
    lead_after_boundary: int
    byte_tokens: int

    def known_bugs(self) -> list[tuple[str, int]]:
        lead = self.lead_after_text + self.lead_after_boundary
        return [
            ("a leading space counted twice (space kept in the piece length and added again)", lead),
            ("'▁' counted as its 3 UTF-8 bytes and the space added again", 3 * lead),
            ("'▁' counted as its 3 UTF-8 bytes instead of 1 space", 3 * lead - self.lead_after_text),
            ("the leading space counted after a document boundary", self.lead_after_boundary),
            ("leading spaces not counted at all", -self.lead_after_text),
            ("byte-fallback tokens counted by their piece spelling (<0xNN>, 6 bytes)", 5 * self.byte_tokens),
        ]

    def explain(self, count: int, reference: int) -> str:
        diff = count - reference
        for name, delta in self.known_bugs():
            if delta != 0 and delta == diff:
                return f"; the difference ({diff:+d}) is exactly {name}"
        return ""


def _signature(tokens: np.ndarray, tables: ByteTables, spans: _Spans) -> _Signature:
    mark = np.zeros(tokens.size + 1, np.int64)
    mark[spans.starts] += 1
    mark[spans.ends] -= 1
    compared = (np.cumsum(mark)[: tokens.size] > 0)[1:]  # per target position 1..N-1
    tok = tokens.astype(np.int64)
    prev, tgt = tok[:-1], tok[1:]
    lead = tables.has_leading_space[tgt] & compared
    after_boundary = tables.is_boundary[prev]
    return _Signature(
        lead_after_text=int((lead & ~after_boundary).sum()),
        lead_after_boundary=int((lead & after_boundary).sum()),
        byte_tokens=int((tables.is_byte[tgt] & compared).sum()),
    )


def _per_document(values: np.ndarray, spans: _Spans) -> np.ndarray:
    """Sum per-target values over each document's targets (target i is values[i - 1])."""
    cs = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    return cs[spans.ends - 1] - cs[spans.starts - 1]


def _first_difference(a: np.ndarray, b: np.ndarray, spans: _Spans) -> str:
    bad = np.flatnonzero(a != b)
    if bad.size == 0:
        return ""
    d = int(bad[0])
    return (
        f"; {bad.size} of {a.size} documents differ, first is document {d} "
        f"(tokens {int(spans.starts[d])}..{int(spans.ends[d])}: {int(a[d])} vs {int(b[d])} bytes)"
    )


def _load_sidecar(pattern: str, n_tokens: int) -> tuple[list[Path], np.ndarray]:
    paths = shards.expand(pattern)
    if not paths:
        raise InputError(pattern, "no sidecar file matches this pattern")
    values = shards.read_many(paths)
    if values.size != n_tokens:
        raise InputError(pattern, f"sidecar holds {values.size} values for {n_tokens} validation tokens")
    return paths, values


def verify(tokenizer_path: str | Path, val_pattern: str, sidecar_pattern: str | None = None) -> BpbReport:
    """Recount the validation bytes from the tokenizer's tables, the decoded text and the sidecar."""
    sp = load_tokenizer(tokenizer_path)
    val_paths = shards.expand(val_pattern, exclude_sidecars=True)
    if not val_paths:
        raise InputError(val_pattern, "no validation shard matches this pattern")
    tokens = shards.read_many(val_paths)
    if tokens.size < 2:
        raise InputError(val_pattern, f"validation shards hold {tokens.size} tokens; need at least 2")
    sidecar_paths, sidecar = _load_sidecar(sidecar_pattern, tokens.size) if sidecar_pattern else ([], None)

    pieces = {sp.id_to_piece(i) for i in range(int(sp.vocab_size()))}
    transform = "caseops" if caseops.is_caseops_vocabulary(pieces) else "none"
    report = BpbReport(
        tokenizer=str(tokenizer_path),
        vocab_size=int(sp.vocab_size()),
        val_files=[str(p) for p in val_paths],
        sidecar_files=[str(p) for p in sidecar_paths],
        transform=transform,
        tokens=int(tokens.size),
    )
    max_id = int(tokens.max())
    if max_id >= report.vocab_size:
        report.checks.append(
            Check(
                "token-ids-in-vocabulary",
                False,
                "error",
                f"token id {max_id} is outside the tokenizer's {report.vocab_size} ids: "
                "the shards were not tokenized with this tokenizer",
            )
        )
        return report

    tables = build_byte_tables(sp)
    per_target = target_bytes(tokens, tables)
    spans = _document_spans(tokens, tables.is_boundary[tokens.astype(np.int64)])
    docs = _count_documents(sp, tokens, spans, transform)
    formula_docs = _per_document(per_target, spans)
    report.documents = int(spans.starts.size)
    report.skipped_prefix_tokens = spans.skipped_prefix
    report.formula_bytes = int(per_target.sum())
    report.formula_bytes_compared = int(formula_docs.sum())
    report.decoded_bytes = int(docs.decoded.sum())
    report.reencode_mismatch_docs = int(docs.reencode_bad.sum())
    signature = _signature(tokens, tables, spans)

    report.checks.append(_reencode_check(report))
    if docs.undecodable.any():
        report.checks.append(
            Check(
                "caseops-decodable",
                False,
                "error",
                f"{int(docs.undecodable.sum())} documents are not valid CaseOps text (dangling case operator)",
            )
        )
    formula = _formula_check(report, formula_docs, docs.decoded, spans, signature, sidecar is not None)
    beside = [p for p in shards.expand(val_pattern) if shards.SIDECAR_MARKER in p.name]
    if not formula.ok and formula.severity == "error" and transform == "caseops" and beside:
        formula = Check(
            formula.name,
            False,
            "error",
            formula.message + f"; {len(beside)} sidecar files match the --val glob: pass them with --sidecar",
        )
    report.checks.append(formula)
    if sidecar is not None:
        sidecar_docs = _per_document(sidecar[1:].astype(np.int64), spans)
        report.sidecar_bytes = int(sidecar_docs.sum())
        report.checks.append(
            _sidecar_check(report, sidecar_docs, docs.decoded, formula_docs, spans, signature)
        )
    elif transform == "none":
        unknown = _private_use_pieces(sp)
        if unknown:
            report.checks.append(
                Check(
                    "text-transform",
                    False,
                    "warning",
                    f"the vocabulary holds {len(unknown)} private-use pieces ({', '.join(map(ascii, unknown[:4]))}); "
                    "if the text was transformed before tokenizing, decoded bytes are not the original bytes (R28)",
                )
            )
    if spans.skipped_prefix:
        report.checks.append(
            Check(
                "starts-at-document",
                False,
                "info",
                f"the stream does not start with a boundary token; its first {spans.skipped_prefix} tokens "
                "(a partial document) are left out of the comparison",
            )
        )
    return report


def _reencode_check(report: BpbReport) -> Check:
    bad, total = report.reencode_mismatch_docs, max(report.documents, 1)
    if bad == 0:
        return Check(
            "tokenizer-matches-shards",
            True,
            "info",
            "every document re-encodes to the same tokens with this tokenizer",
        )
    severity = "error" if bad / total > REENCODE_ERROR_FRACTION else "warning"
    return Check(
        "tokenizer-matches-shards",
        False,
        severity,
        f"{bad} of {total} documents re-encode to different tokens: the shards look tokenized "
        "with another tokenizer (its piece table would give other byte counts)",
    )


def _formula_check(
    report: BpbReport,
    formula_docs: np.ndarray,
    decoded_docs: np.ndarray,
    spans: _Spans,
    signature: _Signature,
    has_sidecar: bool,
) -> Check:
    f, t = report.formula_bytes_compared, report.decoded_bytes
    if f == t and np.array_equal(formula_docs, decoded_docs):
        return Check(
            "formula-equals-decoded",
            True,
            "info",
            f"the baseline formula counts {f} bytes, the UTF-8 bytes of the decoded documents",
        )
    detail = f"the baseline formula counts {f} bytes, the decoded documents hold {t}" + _first_difference(
        formula_docs, decoded_docs, spans
    )
    if report.transform == "caseops":
        if has_sidecar:
            return Check(
                "formula-equals-decoded",
                False,
                "info",
                detail + "; expected with CaseOps (operators are not original bytes): the sidecar decides",
            )
        return Check(
            "formula-equals-decoded",
            False,
            "error",
            detail + "; a CaseOps tokenizer needs a per-token byte sidecar (fineweb_val_bytes_*.bin, R28)",
        )
    return Check("formula-equals-decoded", False, "error", detail + signature.explain(f, t))


def _sidecar_check(
    report: BpbReport,
    sidecar_docs: np.ndarray,
    decoded_docs: np.ndarray,
    formula_docs: np.ndarray,
    spans: _Spans,
    signature: _Signature,
) -> Check:
    s, t = int(sidecar_docs.sum()), report.decoded_bytes
    if np.array_equal(sidecar_docs, decoded_docs):
        return Check(
            "sidecar-equals-decoded",
            True,
            "info",
            f"the sidecar counts {s} bytes, the original bytes of the decoded documents",
        )
    detail = f"the sidecar counts {s} bytes, the decoded documents hold {t}" + _first_difference(
        sidecar_docs, decoded_docs, spans
    )
    if report.transform == "caseops" and np.array_equal(sidecar_docs, formula_docs):
        detail += "; the sidecar equals the formula over the transformed text (operator bytes counted)"
    else:
        detail += signature.explain(s, t)
    return Check("sidecar-equals-decoded", False, "error", detail)


# ---------------------------------------------------------------- rendering


def render_text(report: BpbReport, console: Any = None) -> None:
    """A rich table of the counts, then one line per check, then the verdict."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    console.print(f"tokenizer: {report.tokenizer}", highlight=False, soft_wrap=True)
    table = Table()
    table.add_column("count")
    table.add_column("value", justify="right")
    rows = [
        ("validation shards", len(report.val_files)),
        ("tokens", report.tokens),
        ("documents compared", report.documents),
        ("text transform", report.transform),
        ("baseline formula bytes (all targets)", report.formula_bytes),
        ("baseline formula bytes (compared)", report.formula_bytes_compared),
        ("decoded UTF-8 bytes", report.decoded_bytes),
        ("sidecar bytes", "-" if report.sidecar_bytes is None else report.sidecar_bytes),
        ("documents that re-encode differently", report.reencode_mismatch_docs),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    marks = {
        True: "[green]ok[/]",
        False: {"error": "[red]FAIL[/]", "warning": "[yellow]warn[/]", "info": "note"},
    }
    for check in report.checks:
        mark = marks[True] if check.ok else marks[False][check.severity]
        console.print(f"{mark} {check.name}: {check.message}", markup=True, highlight=False, soft_wrap=True)
    verdict = "[red]mismatch[/]" if report.mismatch else "[green]byte counts agree[/]"
    console.print(f"verdict: {verdict}")

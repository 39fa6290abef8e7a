"""PG103 document-boundary-leak."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import Scope, call_name, dotted
from pgaudit.findings import Confidence, Finding, Severity

from .base import Example, Rule, short

_RULINGS = ("https://github.com/openai/parameter-golf/pull/1797#issuecomment-4322526174",)
_BOUNDARY = re.compile(r"(?i)(bos|boundar|doc_start|doc_id|docs|cu_seqlens|seq_start|reset_mask|segment|not_first)")


class DocumentBoundaryLeak(Rule):
    """Previous-token mixing (SmearGate-style shift) without a BOS / document-boundary mask.

    What it does:
        Finds a one-position shift along the sequence (`F.pad(x[:, :-1], (0, 0, 1, 0))`,
        `torch.cat([zeros, x[:, :-1]], 1)`, `torch.roll(x, 1, 1)`) mixed into the current position, in a
        function that never refers to a BOS/document boundary (`bos`, `boundary`, `cu_seqlens`, `doc`...).

    Why is this bad:
        The validation stream is documents packed back to back. Without a mask, the last token of document
        N is mixed into the BOS position of document N+1, so the start of a document sees another document
        (cocohearts' audit of PR #1797: "SmearGate 1-token causal lookback does not mask BOS positions");
        with reordered or batched documents the "previous" document is not a true prefix. PR #1797 was
        excluded; the fix (`not_bos` mask in forward_logits and forward_ttt) was accepted in #1851/#1855.

    Example:
        prev = F.pad(x[:, :-1], (0, 0, 1, 0))
        x = x + self.gate(x) * prev

    Legal look-alikes:
        The same shift multiplied by a `not_bos` / boundary mask; varlen attention with `cu_seqlens`;
        causal convolution over the embedding sequence with a document reset.

    References:
        R24 of the catalogue; cocohearts' audit of PR #1797.
    """

    code = "PG103"
    name = "document-boundary-leak"
    severity = Severity.WARNING
    confidence = Confidence.MEDIUM
    catalogue_ids = ("R24",)
    ruling_urls = _RULINGS
    condition = "C1"
    fix = (
        "Zero the previous-token contribution at document starts, e.g. "
        "`prev = prev * (input_ids != BOS_ID).unsqueeze(-1)`, in every forward used for scoring (and TTT)."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        for scope in facts.flow.scopes:
            if scope.is_module:
                continue
            nodes = facts.index.walk_scope(scope)
            shifts = [n for n in nodes if _is_shift(n)]
            if not shifts or _mentions_boundary(scope, nodes):
                continue
            shift = shifts[0]
            message = (
                f"`{short(shift)}` in `{scope.qualname}` mixes each position with the previous one, and "
                "nothing in this function masks document boundaries (BOS): in the packed validation stream the "
                "last token of one document leaks into the first position of the next."
            )
            yield self.finding(facts, scope.unit, shift, message)


def _is_shift(node: ast.AST) -> bool:
    """A one-step shift along the sequence axis."""
    if not isinstance(node, ast.Call):
        return False
    name = call_name(node)
    if name == "pad" and len(node.args) > 1 and _drops_last(node.args[0]):
        # `(0, 0, 1, 0)` pads the sequence axis of [B, T, D] hidden states; `(1, 0)` pads token ids (a
        # BigramHash input, a listed look-alike), which is not a hidden-state mix.
        pad = node.args[1]
        return isinstance(pad, ast.Tuple | ast.List) and len(pad.elts) >= 4 and not _names_ids(node.args[0])
    if name == "cat" and node.args and isinstance(node.args[0], ast.List | ast.Tuple):
        elts = node.args[0].elts
        return len(elts) == 2 and _drops_last(elts[1]) and not _names_ids(elts[1])
    return name == "roll" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value == 1


def _names_ids(node: ast.AST) -> bool:
    """The shifted tensor is token ids (`input_ids[:, :-1]`, `tokens[:, :-1]`), not hidden states."""
    base = node.value if isinstance(node, ast.Subscript) else node
    return bool(re.search(r"(?i)(ids|tok|input|idx|target)", dotted(base)))


def _drops_last(node: ast.AST) -> bool:
    """`x[:, :-1]` / `x[..., :-1, :]`: everything but the last position on a non-leading axis."""
    if not isinstance(node, ast.Subscript) or not isinstance(node.slice, ast.Tuple):
        return False
    for elt in node.slice.elts[1:]:
        if (
            isinstance(elt, ast.Slice)
            and elt.lower is None
            and isinstance(elt.upper, ast.UnaryOp)
            and isinstance(elt.upper.operand, ast.Constant)
            and elt.upper.operand.value == 1
        ):
            return True
    return False


def _mentions_boundary(scope: Scope, nodes: list[ast.AST]) -> bool:
    for node in nodes:
        text = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if text is None and isinstance(node, ast.arg):
            text = node.arg
        if text and _BOUNDARY.search(text):
            return True
    return any(_BOUNDARY.search(p) for p in scope.params) or any(_BOUNDARY.search(dotted(d)) for d in scope.decorators)


_SETUP = '''
import torch
import torch.nn.functional as F
from torch import nn

BOS_ID = 1
'''

DocumentBoundaryLeak.invalid = (
    Example(
        title="SmearGate-style lookback with no BOS mask",
        code=_SETUP
        + '''
class SmearGate(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gate = nn.Linear(dim, 1)

    def forward(self, x):
        prev = F.pad(x[:, :-1], (0, 0, 1, 0))  # <- expected
        return x + torch.sigmoid(self.gate(x)) * prev

if __name__ == "__main__":
    SmearGate(8)(torch.zeros(2, 4, 8))
''',
        message="nothing in this function masks document boundaries",
    ),
)

DocumentBoundaryLeak.valid = (
    Example(
        title="the same lookback zeroed at BOS positions",
        code=_SETUP
        + '''
class SmearGate(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gate = nn.Linear(dim, 1)

    def forward(self, x, input_ids):
        prev = F.pad(x[:, :-1], (0, 0, 1, 0))
        not_bos = (input_ids != BOS_ID).unsqueeze(-1).to(x.dtype)
        return x + torch.sigmoid(self.gate(x)) * prev * not_bos

if __name__ == "__main__":
    SmearGate(8)(torch.zeros(2, 4, 8), torch.ones(2, 4, dtype=torch.long))
''',
    ),
)

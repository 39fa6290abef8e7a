"""The CaseOps text transform (`lossless_caps_caseops_v1`, PR #1729), needed to count original bytes.

CaseOps tokenizers see lower-cased text with four private-use operators: TITLE (next letter upper), ALLCAPS
(the whole next ASCII word upper), CAPNEXT (next letter upper, inside a word) and ESC (next character is
literal, used when the text itself holds an operator character). The transform is bijective, so the
original text, and its true byte count, can be recovered from the decoded token stream.
"""

from __future__ import annotations

TITLE = "\ue001"
ALLCAPS = "\ue002"
CAPNEXT = "\ue003"
ESC = "\ue004"
OPERATORS = (TITLE, ALLCAPS, CAPNEXT, ESC)


class CaseOpsError(ValueError):
    """Transformed text that no original text encodes to (a dangling or misplaced operator)."""


def _is_ascii_alpha(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _encode_word(word: str) -> str:
    if word.islower():
        return word
    lower = word.lower()
    if len(word) >= 2 and word.isupper():
        return ALLCAPS + lower
    parts = [TITLE + lower[0] if word[0].isupper() else lower[0]]
    parts += [CAPNEXT + low if orig.isupper() else low for orig, low in zip(word[1:], lower[1:], strict=True)]
    return "".join(parts)


def encode(text: str) -> str:
    """Original text -> the form a CaseOps tokenizer is fed (used to build test data)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if not _is_ascii_alpha(ch):
            out.append(ESC + ch if ch in OPERATORS else ch)
            i += 1
            continue
        j = i
        while j < len(text) and _is_ascii_alpha(text[j]):
            j += 1
        out.append(_encode_word(text[i:j]))
        i = j
    return "".join(out)


def decode(text: str, *, strict: bool = True) -> str:
    """Transformed text -> the original text; raises CaseOpsError on malformed input.

    `strict=False` accepts a prefix that ends in a pending marker (it stands for no bytes yet), which is
    what per-token byte counting over growing prefixes needs.
    """
    out: list[str] = []
    escaped = upper_next = upper_word = False
    for ch in text:
        if escaped:
            out.append(ch)
            escaped = upper_word = False
        elif ch == ESC:
            escaped = True
        elif ch in (TITLE, CAPNEXT):
            if upper_next:
                raise CaseOpsError("two capitalisation markers in a row")
            upper_next = True
        elif ch == ALLCAPS:
            upper_word = True
        elif _is_ascii_alpha(ch):
            out.append(ch.upper() if upper_next or upper_word else ch)
            upper_next = False
        else:
            if upper_next:
                raise CaseOpsError(f"capitalisation marker before non-letter {ch!r}")
            out.append(ch)
            upper_word = False
    if strict and (escaped or upper_next):
        raise CaseOpsError("dangling marker at end of text")
    return "".join(out)


def is_caseops_vocabulary(pieces: set[str]) -> bool:
    """A tokenizer that reserves all four operators as pieces was built for CaseOps text."""
    return all(op in pieces for op in OPERATORS)

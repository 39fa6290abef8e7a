"""The CaseOps inverse transform that `pgaudit bpb` uses to count original bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgaudit import caseops
from pgaudit.caseops import ALLCAPS, CAPNEXT, ESC, TITLE


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("hello world", "hello world"),
        ("Hello NASA", f"{TITLE}hello {ALLCAPS}nasa"),
        ("iPhone", f"i{CAPNEXT}phone"),
        ("McDonald A", f"{TITLE}mc{CAPNEXT}donald {TITLE}a"),
        (f"x{TITLE}y", f"x{ESC}{TITLE}y"),
        ("Café", f"{TITLE}café"),
    ],
)
def test_known_encodings(text: str, encoded: str) -> None:
    assert caseops.encode(text) == encoded
    assert caseops.decode(encoded) == text


@given(st.text(alphabet=st.sampled_from(list("aBcDxYZ é-.\n") + list(caseops.OPERATORS)), max_size=60))
def test_decode_inverts_encode(text: str) -> None:
    assert caseops.decode(caseops.encode(text)) == text


@pytest.mark.parametrize("bad", [f"a{TITLE}", f"{TITLE} x", f"{CAPNEXT}{CAPNEXT}a", ESC])
def test_malformed_text_is_rejected(bad: str) -> None:
    with pytest.raises(caseops.CaseOpsError):
        caseops.decode(bad)


def test_lenient_decode_accepts_a_pending_marker() -> None:
    assert caseops.decode(f"ab {TITLE}", strict=False) == "ab "

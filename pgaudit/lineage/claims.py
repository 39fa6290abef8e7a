"""The lineage a submission states: "Built on PR #549", "builds on <record folder>", `"base_pr": 1394`.

Only phrases that say where the code comes from count (built/based on, on top of, started from, changes
from, a "Previous: ... -> this" chain, a base PR field); a PR named as the score to beat ("beats PR #1493",
"merged SOTA (PR #1019)") is a comparison, not a lineage.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

VERSION = 2  # bump when what is read changes: cached records re-read their claims

MAX_README_BYTES = 512 * 1024

_PR = r"(?:PR\s*#?\s*(?=\d)|#(?=\d\d)|/pull/)(\d{1,6})"
_PR_PATTERN = _PR
_BASE_PHRASE = re.compile(
    r"(?i)\b(?:built|builds?|building|based|basing|stacked|layered)\s+(?:directly\s+|heavily\s+)?(?:on|upon|off)\b"
    r"|\bon\s+top\s+of\b|\b(?:started|starts|starting|forked|derived|adapted|branched|evolved)\s+(?:\w+\s+){0,3}?from\b"
    r"|\bchanges?\s+(?:from|vs\.?|versus|over|relative\s+to)\b|\bfork\s+of\b|\bextends\b"
    r"|\bbase(?:line)?\s*(?:submission|record|pr|stack)?\s*[:(]|\bour\s+base\b"
    r"|\breproduction\s+(?:and\s+\w+\s+(?:package\W*)?)?(?:of|for)\b"
)
# "(PR #1586, our direct baseline)": the base named before the phrase
_BASE_AFTER = re.compile(
    _PR_PATTERN + r"[^.\n#]{0,40}?\b(?:our\s+|the\s+)?(?:direct\s+)?(?:base(?:line)?|predecessor|parent)\b(?!\s*[:(])", re.I
)
_PREVIOUS_CHAIN = re.compile(r"(?i)previous\s*:(?P<chain>.{0,600}?)(?:→|->)\s*this\b")
_RECORD_PATH = re.compile(r"records/(track_[A-Za-z0-9_]+)/([^/\s)\]\"'`>]+)")
_WINDOW = 200  # characters after the phrase where the named base may appear


@dataclass(frozen=True)
class BaseClaim:
    kind: str  # "pr" or "record"
    value: str  # "1394" or "records/track_10min_16mb/<name>"
    source: str  # "README.md" or "submission.json"
    text: str  # the phrase, shortened

    def label(self) -> str:
        return f"PR #{self.value}" if self.kind == "pr" else f"`{self.value}`"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "value": self.value, "source": self.source, "text": self.text}

    @classmethod
    def from_dict(cls, data: dict) -> BaseClaim:
        return cls(data["kind"], data["value"], data["source"], data["text"])


def read_claims(folder: Path, own_prs: set[int] | None = None) -> list[BaseClaim]:
    """The bases the folder's README and submission.json name; the folder's own PR numbers excluded."""
    own = {str(n) for n in own_prs or ()}
    claims: list[BaseClaim] = []
    for claim in [*_json_claims(folder / "submission.json"), *readme_claims(_read(folder / "README.md"))]:
        if claim.kind == "pr" and claim.value in own:
            continue
        if claim not in claims and all((c.kind, c.value) != (claim.kind, claim.value) for c in claims):
            claims.append(claim)
    return claims


def readme_claims(text: str) -> list[BaseClaim]:
    found: list[BaseClaim] = []
    for match in _PREVIOUS_CHAIN.finditer(text):
        prs = re.findall(_PR, match.group("chain"))
        if prs:
            found.append(BaseClaim("pr", str(int(prs[-1])), "README.md", _short(match.group(0))))
    for match in _BASE_AFTER.finditer(text):
        found.append(BaseClaim("pr", str(int(match.group(1))), "README.md", _short(match.group(0))))
    for match in _BASE_PHRASE.finditer(text):
        window = text[match.start() : match.end() + _WINDOW]
        window = re.split(r"\n\s*\n|(?<=[.!?])\s+(?=[A-Z])", window, maxsplit=1)[0]
        after = window[match.end() - match.start() :]
        for ref in _refs(after)[:3]:
            found.append(BaseClaim(ref[0], ref[1], "README.md", _short(window)))
    return found


def _refs(text: str) -> list[tuple[str, str]]:
    """PRs and record folders named in `text`, in order (a PR link's number counts once)."""
    found: list[tuple[int, str, str]] = []
    for m in _RECORD_PATH.finditer(text):
        found.append((m.start(), "record", f"records/{m.group(1)}/{m.group(2)}"))
    for m in re.finditer(_PR, text):
        found.append((m.start(), "pr", str(int(m.group(1)))))
    out: list[tuple[str, str]] = []
    for _, kind, value in sorted(found):
        if (kind, value) not in out:
            out.append((kind, value))
    return out


def _json_claims(path: Path) -> list[BaseClaim]:
    text = _read(path)
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    out = []
    for key in ("base_pr", "based_on_pr", "parent_pr", "base_pull_request"):
        value = data.get(key)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v.strip().lstrip("#").isdigit()):
                out.append(BaseClaim("pr", str(int(str(v).strip().lstrip("#"))), "submission.json", f'"{key}": {v}'))
    return out


def _read(path: Path) -> str:
    try:
        if not path.is_file() or path.stat().st_size > MAX_README_BYTES:
            return ""
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

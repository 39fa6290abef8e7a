"""Markdown that submission text cannot break: escaped prose, safe code spans and fences, table cells.

Submission text (quoted code, paths, JSON keys) is untrusted. Outside code it is backslash-escaped, HTML
characters become entities, newlines become spaces and `@` gets a zero-width space so it cannot ping anyone.
Code goes into spans or fences whose backtick runs are longer than any run inside, so it cannot close them.
Inside table cells `|` is escaped even in code spans (GFM splits cells before it parses spans).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from pgaudit.render.meta import clean

_SPECIAL = re.compile(r"([\\`*_\[\]{}|~!#])")
_SPAN = re.compile(r"`([^`\n]+)`")
_ZWSP = "\u200b"


def _prose(value: str) -> str:
    flat = re.sub(r"\s+", " ", clean(value))
    out = _SPECIAL.sub(r"\\\1", flat)
    return out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("@", "@" + _ZWSP)


def text(value: str) -> str:
    """Plain prose on one line, every Markdown and HTML special neutralized (safe in table cells too)."""
    return _prose(value).strip()


def code(value: str, cell: bool = False) -> str:
    """An inline code span that holds `value` verbatim (on one line)."""
    flat = " ".join(clean(value).split()) or " "
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    span = f"{fence}{pad}{flat}{pad}{fence}"
    return span.replace("|", "\\|") if cell else span


def inline(value: str, cell: bool = False) -> str:
    """A message that quotes code between backticks: the quoted parts as code spans, the rest as prose."""
    out: list[str] = []
    pos = 0
    for match in _SPAN.finditer(value):
        out.append(_prose(value[pos : match.start()]))
        out.append(code(match.group(1), cell))
        pos = match.end()
    out.append(_prose(value[pos:]))
    return "".join(out).strip()


def fence(lines: list[str], lang: str = "") -> str:
    """A fenced code block that no line of `lines` can close."""
    body = [clean(line) for line in lines]
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    marker = "`" * max(3, longest + 1)
    return "\n".join([f"{marker}{lang}", *body, marker])


def link(label_md: str, url: str) -> str:
    """A link whose label is already-safe Markdown and whose URL we built (never submission text)."""
    return f"[{label_md}]({url.replace(' ', '%20').replace(')', '%29')})"


def blob_url(repo: str, sha: str, path: str, line: int | None = None) -> str:
    """A permalink to a file (and line) at a commit on GitHub."""
    url = f"https://github.com/{repo}/blob/{sha}/{quote(path, safe='/-._~')}"
    return f"{url}#L{line}" if line else url

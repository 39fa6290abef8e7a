"""Bytes -> text, with the guards every input passes before anything parses it."""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pgaudit.errors import InputError

# The largest merged record script is 158 KB; anything past this is not a training script.
MAX_SOURCE_BYTES = 8 * 1024 * 1024
_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


@dataclass(frozen=True)
class SourceText:
    text: str  # newlines normalized to "\n", BOM removed
    raw_bytes: int
    sha256: str

    @property
    def line_count(self) -> int:
        return count_lines(self.text)


def count_lines(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def read_source(path: Path, display: str, max_bytes: int = MAX_SOURCE_BYTES) -> SourceText:
    """Read a Python source file, refusing what cannot be a readable script."""
    try:
        if not path.exists():
            raise InputError(display, "no such file")
        if path.is_dir():
            raise InputError(display, "is a directory, expected a Python file")
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(display, f"file is {size:,} bytes, over the {max_bytes:,}-byte limit for a script")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(display, f"cannot read: {exc.strerror or exc}") from None
    return decode_source(data, display)


def decode_source(data: bytes, display: str) -> SourceText:
    """Decode script bytes (also used for decompressed payloads)."""
    digest = hashlib.sha256(data).hexdigest()
    if not data.strip():
        raise InputError(display, "file is empty")
    if b"\x00" in data:
        raise InputError(display, "binary file (contains NUL bytes), not Python source")
    body = data[3:] if data.startswith(codecs.BOM_UTF8) else data
    encoding = _declared_encoding(body)
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(
            display, f"not valid {encoding} text (byte 0x{body[exc.start]:02x} at offset {exc.start})"
        ) from None
    except LookupError:
        raise InputError(display, f"declares an unknown encoding {encoding!r}") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return SourceText(text=text, raw_bytes=len(data), sha256=digest)


def _declared_encoding(data: bytes) -> str:
    """PEP 263: a coding cookie on one of the first two lines; UTF-8 otherwise."""
    for line in data.split(b"\n", 2)[:2]:
        match = _CODING_RE.match(line)
        if match:
            name = match.group(1).decode("ascii", "replace").lower()
            return "utf-8" if name in ("utf-8", "utf8", "utf-8-sig") else name
    return "utf-8"

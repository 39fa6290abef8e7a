"""Bytes -> text, with the guards every input passes before anything parses it.

Decoding follows CPython exactly (`tokenize.detect_encoding`, the reference implementation of PEP 263): a BOM,
else a coding cookie on line 1, or on line 2 only when line 1 is blank or a comment; a cookie anywhere else is
an ordinary comment. pgaudit must audit the characters Python executes, so any file CPython would refuse to
decode is refused here too (one-line input error), never decoded some other way.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import stat
import tokenize
from dataclasses import dataclass
from pathlib import Path

from pgaudit.errors import InputError

# The largest merged record script is 158 KB (about 3,500 lines); past these budgets a file is not a
# training script, and auditing it would cost more time and memory than a folder is given.
MAX_SOURCE_BYTES = 8 * 1024 * 1024
MAX_SOURCE_LINES = 20_000  # the longest merged record has 3,753 lines; 20,000 real lines audit in ~20 s


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
        if not path.exists() and not path.is_symlink():
            raise InputError(display, "no such file")
        info = path.stat()  # follows links: a link loop or a dangling link raises here
        if stat.S_ISDIR(info.st_mode):
            raise InputError(display, "is a directory, expected a Python file")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(display, "not a regular file (a FIFO, socket or device); refused")
        if info.st_size > max_bytes:
            raise InputError(
                display, f"file is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit for a script"
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except InputError:
        raise
    except RuntimeError:  # pathlib reports some symlink loops this way
        raise InputError(display, "symbolic link loop; refused") from None
    except OSError as exc:
        raise InputError(display, os_error_text(exc)) from None
    if len(data) > max_bytes:
        raise InputError(display, f"file grew past the {max_bytes:,}-byte limit for a script while being read")
    return decode_source(data, display)


def os_error_text(exc: OSError) -> str:
    """A one-line reason for an OS error on an input path (symlink loops named as such)."""
    import errno

    if exc.errno == errno.ELOOP:
        return "symbolic link loop; refused"
    if exc.errno == errno.ENOENT:
        return "no such file (dangling symbolic link?)"
    return f"cannot read: {exc.strerror or exc}"


def decode_source(data: bytes, display: str) -> SourceText:
    """Decode the bytes of a script (or of a payload exec'd as bytes) exactly as CPython would."""
    digest = hashlib.sha256(data).hexdigest()
    if not data.strip():
        raise InputError(display, "file is empty")
    wide = _wide_unicode(data)
    if wide:
        raise InputError(
            display,
            f"{wide} text: not valid UTF-8 and no encoding declaration Python can use (save it as UTF-8)",
        )
    if b"\x00" in data:
        raise InputError(display, "binary file (contains NUL bytes), not Python source")
    encoding = python_encoding(data, display)
    body = data[len(codecs.BOM_UTF8):] if encoding == "utf-8-sig" else data
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        name = "utf-8" if codec == "utf-8" else codec
        raise InputError(
            display, f"not valid {name} text (byte 0x{body[exc.start]:02x} at offset {exc.start})"
        ) from None
    except (LookupError, ValueError, TypeError) as exc:  # a codec that does not turn bytes into text
        raise InputError(display, f"declares the encoding {encoding!r}, which cannot decode it ({exc})") from None
    if not isinstance(text, str):
        raise InputError(display, f"declares the encoding {encoding!r}, which does not produce text")
    return source_text(text, data, display, digest)


def source_text(text: str, data: bytes | None, display: str, digest: str | None = None) -> SourceText:
    """Normalize already-decoded source (a payload exec'd as a str: Python ignores its coding cookie)."""
    raw = data if data is not None else text.encode("utf-8", "surrogatepass")
    if "\x00" in text:
        raise InputError(display, "source contains NUL characters, which Python refuses")
    if not text.strip():
        raise InputError(display, "file is empty")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = count_lines(text)
    if lines > MAX_SOURCE_LINES:
        raise InputError(display, f"{lines:,} lines, over the {MAX_SOURCE_LINES:,}-line budget for a script")
    return SourceText(text=text, raw_bytes=len(raw), sha256=digest or hashlib.sha256(raw).hexdigest())


def python_encoding(data: bytes, display: str) -> str:
    """The encoding CPython uses for these source bytes ("utf-8-sig" when there is a BOM).

    `tokenize.detect_encoding` is CPython's own rule; it raises SyntaxError exactly where the interpreter
    would refuse the file (unknown codec, a BOM that contradicts the cookie, undecodable first lines).
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        reason = str(exc.msg if exc.msg else exc)
        if data.startswith(codecs.BOM_UTF8):
            reason = "a UTF-8 byte-order mark with a coding cookie for another encoding"
        elif reason.startswith("invalid or missing"):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as bad:
                raise InputError(
                    display,
                    f"not valid utf-8 text (byte 0x{data[bad.start]:02x} at offset {bad.start}) "
                    "and no encoding declared",
                ) from None
        raise InputError(display, f"Python would refuse to decode this file: {reason}") from None
    return encoding


def _wide_unicode(data: bytes) -> str | None:
    """'UTF-16' / 'UTF-32' when the bytes are such text (BOM, or NUL-interleaved ASCII), else None."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    head = data[:512]
    if len(head) >= 8 and b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        for zeros, other in ((even, odd), (odd, even)):
            if zeros.count(0) >= 0.9 * len(zeros) and other.count(0) == 0 and other.isascii():
                return "UTF-16"
    return None


def path_problem(path: Path) -> str | None:
    """Why an input path cannot be audited at all (a link loop, a dangling link, a FIFO or device), or None.

    Checked before anything resolves the path: `Path.resolve()` raises on a loop, and opening a FIFO blocks.
    """
    import errno
    import os

    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop; refused"
        if os.path.islink(path):
            return "broken symbolic link"
        return "no such file or directory" if exc.errno == errno.ENOENT else f"cannot read: {exc.strerror or exc}"
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        return "not a regular file (a FIFO, socket or device); refused"
    return None


# --- decompression budget ---------------------------------------------------------------------------
# A record's code is at most a few hundred KB once decompressed; a program is given this much decompressed
# payload in total (over every payload of every file it loads), so twenty 45 MB bombs cost one budget.
MAX_PROGRAM_PAYLOAD_BYTES = 32 * 1024 * 1024


class PayloadBudget:
    """Decompressed bytes left to the program being loaded (see `payload_budget`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def charge(self, size: int, display: str) -> None:
        self.used += size
        if self.used > self.limit:
            raise InputError(
                display,
                f"payloads decompress to more than {self.limit // (1024 * 1024)} MB in total: refused as a "
                "decompression bomb",
            )


_budget: PayloadBudget | None = None


def current_payload_budget() -> PayloadBudget | None:
    return _budget


class payload_budget:
    """`with payload_budget():` -- every decompression inside shares one budget."""

    def __init__(self, limit: int = MAX_PROGRAM_PAYLOAD_BYTES) -> None:
        self.budget = PayloadBudget(limit)

    def __enter__(self) -> PayloadBudget:
        global _budget
        self._saved = _budget
        _budget = self.budget
        return self.budget

    def __exit__(self, *exc: object) -> None:
        global _budget
        _budget = self._saved


# --- per-folder budget ------------------------------------------------------------------------------
# Every limit above bounds one input; this bounds one record folder as a whole, whatever the cause: past
# FOLDER_CPU_SECONDS of CPU time or FOLDER_MAX_RSS_BYTES of resident memory the folder is reported as an input
# error and the run goes on. CPU time, not wall time, so a loaded machine does not fail honest folders
# (the largest merged record takes about 1.5 s). Checked from a SIGPROF timer, so only in the main thread.
FOLDER_CPU_SECONDS = 20.0
FOLDER_MAX_RSS_BYTES = 768 * 1024 * 1024
_TICK_SECONDS = 0.25


class BudgetExceeded(Exception):
    """Raised inside an audit that went past its folder budget."""


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as handle:
            import os

            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class folder_budget:
    """`with folder_budget():` -- raise BudgetExceeded inside the block past the CPU or memory budget."""

    def __init__(self, cpu_seconds: float | None = None, max_rss: int | None = None) -> None:
        self.cpu_seconds = FOLDER_CPU_SECONDS if cpu_seconds is None else cpu_seconds
        self.max_rss = FOLDER_MAX_RSS_BYTES if max_rss is None else max_rss
        self._armed = False

    def __enter__(self) -> folder_budget:
        import signal
        import threading
        import time

        if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
            return self
        self._start = time.process_time()
        self._saved_handler = signal.signal(signal.SIGPROF, self._tick)
        self._saved_timer = signal.setitimer(signal.ITIMER_PROF, _TICK_SECONDS, _TICK_SECONDS)
        self._armed = True
        return self

    def _tick(self, signum: int, frame: object) -> None:
        import time

        spent = time.process_time() - self._start
        if spent > self.cpu_seconds:
            self._disarm()
            raise BudgetExceeded(
                f"auditing it took over {self.cpu_seconds:g} s of CPU time, the budget for one folder; refused"
            )
        rss = _rss_bytes()
        if rss is not None and rss > self.max_rss:
            self._disarm()
            raise BudgetExceeded(
                f"auditing it needed over {self.max_rss // (1024 * 1024):,} MB of memory, the budget for one "
                "folder; refused"
            )

    def _disarm(self) -> None:
        import signal

        if self._armed:
            signal.setitimer(signal.ITIMER_PROF, *self._saved_timer)
            signal.signal(signal.SIGPROF, self._saved_handler)
            self._armed = False

    def __exit__(self, *exc: object) -> None:
        self._disarm()

"""Errors that end a command with a one-line message and exit code 2."""

from __future__ import annotations


class PgauditError(Exception):
    """Base class: the CLI prints `pgaudit: <message>` and exits 2, never a traceback."""

    exit_code = 2


class InputError(PgauditError):
    """The input cannot be audited: missing, unreadable, binary, too large, malformed, unsafe."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.detail = message


class UsageError(PgauditError):
    """The command line or configuration is wrong."""


# --- printing errors --------------------------------------------------------------------------------------
# In a GitHub Actions job every line a step prints is scanned for workflow commands (`::warning ...`,
# `::stop-commands::`). Error lines quote submission-controlled text (file names, JSON, log lines), so with
# `--format github`, in `pgaudit ci`, and whenever GITHUB_ACTIONS=true they are escaped: one physical line,
# `%`, CR and LF encoded as GitHub does, and never starting with `::`.
_workflow_escaping = False


def enable_workflow_escaping() -> None:
    global _workflow_escaping
    _workflow_escaping = True


def workflow_escaping() -> bool:
    import os

    return _workflow_escaping or os.environ.get("GITHUB_ACTIONS") == "true"


def escape_workflow_line(text: str) -> str:
    """`text` as one line that a workflow runner cannot read as a command."""
    import re

    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]", "", text)
    if text.lstrip().startswith("::"):
        text = text.replace("::", "%3A%3A", 1)
    return text


def error_line(message: str) -> str:
    """The line every error is printed as: `pgaudit: <message>`, escaped when a workflow runner reads it."""
    line = f"pgaudit: {message}"
    return escape_workflow_line(line) if workflow_escaping() else line.replace("\r", " ").replace("\n", " ")


class WorkflowSafeWriter:
    """A line-buffered text stream wrapper for reports printed in a workflow job (`pgaudit ci` in text form):
    a line that would start with `::` is escaped, and a bare CR (a line break to the runner) is encoded.
    `%` stays readable: outside a command the runner does not decode it."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        lines = (self._pending + text).replace("\r\n", "\n").split("\n")
        self._pending = lines.pop()
        for line in lines:
            self._stream.write(self._safe(line) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(self._safe(self._pending))
            self._pending = ""
        self._stream.flush()

    @staticmethod
    def _safe(line: str) -> str:
        line = line.replace("\r", "%0D")
        return line.replace("::", "%3A%3A", 1) if line.lstrip().startswith("::") else line

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._stream, name)

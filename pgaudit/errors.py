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

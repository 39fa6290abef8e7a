"""Writing a record folder out of the head commit: blobs to a temporary tree laid out like the repository
(so finding paths come out repository-relative), with findings for what could not be written or read."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pgaudit.ci.git import Git, printable
from pgaudit.ci.scope import scope_finding
from pgaudit.findings import Finding, Severity

MAX_BLOB_BYTES = 64 * 1024 * 1024  # larger files are not audited (a whole artifact is capped at 16 MB)
AUDITED_SUFFIXES = (".py", ".log", ".txt", ".json", ".md", ".sh")  # what the rules and validators read


def materialize(git: Git, commit: str, folder: str, root: Path) -> list[Finding]:
    """Write the folder as it is at `commit` under `root` (same relative path); report what was left out."""
    entries = git.tree(commit, folder)
    findings: list[Finding] = []
    files = [e for e in entries if e.is_file and _safe_relative(e.path) and printable(e.path) == e.path]
    for entry in entries:
        if entry.is_file and printable(entry.path) != entry.path:
            findings.append(scope_finding(
                f"`{printable(entry.path)}` has a name that is not valid UTF-8; it was not audited.",
                entry.path,
                "Rename the file with a UTF-8 name.",
            ))
        elif not entry.is_file:
            what = "a submodule" if entry.kind == "commit" else "a symbolic link"
            findings.append(scope_finding(
                f"`{printable(entry.path)}` is {what}; pgaudit does not follow it, and a record folder must hold "
                "its files itself (R29: the script and its dependencies run from the records folder).",
                entry.path,
                "Commit the file itself instead of a link.",
                severity=Severity.WARNING,
            ))
    sizes = git.sizes(e.sha for e in files)
    for entry in files:
        if entry.sha not in sizes and PurePosixPath(entry.path).suffix in AUDITED_SUFFIXES:
            findings.append(scope_finding(
                f"`{printable(entry.path)}` is not in this clone (a partial or shallow fetch?); it was not audited.",
                entry.path,
                "Fetch the head commit with its blobs (actions/checkout with fetch-depth: 0, no blob filter).",
                severity=Severity.WARNING,
            ))
    for entry in files:
        if sizes.get(entry.sha, 0) > MAX_BLOB_BYTES and PurePosixPath(entry.path).suffix in AUDITED_SUFFIXES:
            findings.append(scope_finding(
                f"`{printable(entry.path)}` is {sizes[entry.sha]:,} bytes, over the {MAX_BLOB_BYTES:,}-byte limit "
                "of what pgaudit reads; it was not audited.",
                entry.path,
                "Keep scripts and logs small enough to review (the whole artifact is capped at 16,000,000 bytes).",
                severity=Severity.WARNING,
            ))
    small = [e for e in files if e.sha in sizes and sizes[e.sha] <= MAX_BLOB_BYTES]
    blobs = git.blobs(e.sha for e in small)
    for entry in small:
        target = root.joinpath(*PurePosixPath(entry.path).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blobs[entry.sha])
    return findings


def _safe_relative(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not PurePosixPath(path).is_absolute() and ".." not in parts

"""git plumbing for `pgaudit ci`: a subprocess with a timeout, literal NUL-separated paths, blobs by id.

Everything comes from git itself (`git diff --name-status --no-renames -z` against the merge base, `ls-tree`,
`cat-file`), never from the working tree, so the audit sees exactly the head commit whatever is checked out.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pgaudit.errors import InputError, PgauditError, UsageError

GIT_TIMEOUT_S = 120


class GitError(PgauditError):
    """git failed or is missing: one line, exit 2."""


@dataclass(frozen=True)
class Change:
    status: str  # git's letter: A added, D deleted, M modified, T type changed (renames come as D + A)
    path: str


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str  # "blob" or "commit" (a submodule)
    sha: str
    path: str

    @property
    def is_file(self) -> bool:
        return self.kind == "blob" and self.mode in ("100644", "100755")


class Git:
    """git in a subprocess, with a timeout; paths are literal (no pathspec magic) and NUL-separated."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.env = {**os.environ, "GIT_LITERAL_PATHSPECS": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}

    def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        try:
            proc = subprocess.run(
                ["git", "-C", str(self.repo), *args],
                input=stdin,
                capture_output=True,
                env=self.env,
                timeout=GIT_TIMEOUT_S,
                check=False,
            )
        except FileNotFoundError:
            raise GitError("git is not installed (pgaudit ci reads the pull request from git)") from None
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s in {self.repo}") from None
        if proc.returncode != 0:
            raise GitError(f"git {args[0]} failed: {_first_line(proc.stderr)}")
        return proc.stdout

    def ok(self, *args: str) -> bool:
        try:
            self.run(*args)
            return True
        except GitError:
            return False

    def commit(self, rev: str, option: str) -> str:
        """The commit a revision names, or one line saying it is not in this repository."""
        if not rev.strip():
            raise UsageError(f"{option} must name a revision")
        try:
            out = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
        except GitError:
            raise InputError(
                f"{option} {rev}", f"revision not found in {self.repo} (fetch it first, e.g. git fetch origin {rev})"
            ) from None
        return out.decode().strip()

    def merge_base(self, base: str, head: str) -> str:
        try:
            return self.run("merge-base", base, head).decode().strip()
        except GitError:
            raise InputError(
                f"{base[:12]}...{head[:12]}",
                "no common ancestor (a shallow clone? check out with fetch-depth: 0)",
            ) from None

    def changes(self, base: str, head: str) -> list[Change]:
        out = self.run("diff", "--name-status", "--no-renames", "--no-ext-diff", "-z", base, head, "--")
        fields = out.split(b"\0")
        changes = []
        for status, raw in zip(fields[0::2], fields[1::2], strict=False):
            if status:
                changes.append(Change(status.decode()[:1], _decode_path(raw)))
        return changes

    def tree(self, rev: str, path: str) -> list[TreeEntry]:
        out = self.run("ls-tree", "-r", "-z", "--full-tree", rev, "--", path)
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw = record.partition(b"\t")
            mode, kind, sha = meta.decode().split()
            entries.append(TreeEntry(mode, kind, sha, _decode_path(raw)))
        return entries

    def exists(self, rev: str, path: str) -> bool:
        return bool(self.run("ls-tree", "-z", "--full-tree", rev, "--", path).strip(b"\0"))

    def sizes(self, shas: Iterable[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        out = self.run("cat-file", "--batch-check", stdin=("\n".join(wanted) + "\n").encode())
        sizes = {}
        for line in out.decode().splitlines():
            fields = line.split()
            if len(fields) == 3:  # "<sha> missing" for an object this clone does not have
                sizes[fields[0]] = int(fields[2])
        return sizes

    def blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """Blob contents by id, read in one `git cat-file --batch`."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        out = self.run("cat-file", "--batch", stdin=("\n".join(wanted) + "\n").encode())
        blobs: dict[str, bytes] = {}
        pos = 0
        for _ in wanted:
            end = out.index(b"\n", pos)
            sha, _kind, size = out[pos:end].decode().split()
            start = end + 1
            blobs[sha] = out[start : start + int(size)]
            pos = start + int(size) + 1
        return blobs


def _first_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def _decode_path(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def printable(path: str) -> str:
    """A path that came from git as it can be shown (undecodable bytes replaced)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")

"""`pgaudit ci`: a pull request's git diff -> the record folders it adds, their audit, and its scope (R29).

Everything comes from git itself (`git diff --name-status --no-renames -z` against the merge base, `ls-tree`,
`cat-file`), never from the working tree, so the audit sees exactly the head commit whatever is checked out.
Each changed record folder is copied out of the head commit into a temporary directory laid out like the
repository, so finding paths come out repository-relative (`records/track_10min_16mb/<folder>/train_gpt.py`).

Scope findings use PG511 pr-scope (R29: "a pull request that only adds a new folder to the appropriate
/records subfolder"). A core-code PR (only the root `train_gpt.py` / `train_gpt_mlx.py`, the README's "PRs on
Core Code") is allowed, under the 1,500-line hard stop of the root scripts (R7). That line-limit check lives
here, as PG511, until the validators' PG505 can be called on a root script.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pgaudit import __version__
from pgaudit.engine import AuditOptions, audit_folder, plan, selected
from pgaudit.errors import InputError, PgauditError, UsageError
from pgaudit.findings import Confidence, Finding, Location, Report, Severity
from pgaudit.review import Links

GIT_TIMEOUT_S = 120
MAX_BLOB_BYTES = 64 * 1024 * 1024  # larger files are not audited (a whole artifact is capped at 16 MB)
ROOT_SCRIPTS = ("train_gpt.py", "train_gpt_mlx.py")
ROOT_LINE_LIMIT = 1500
MAX_OUTSIDE_FINDINGS = 50
AUDITED_SUFFIXES = (".py", ".log", ".txt", ".json", ".md", ".sh")  # what the rules and validators read

CODE, NAME = "PG511", "pr-scope"
README_URL = "https://github.com/openai/parameter-golf/blob/main/README.md"
ROOT_SCRIPT_URL = "https://github.com/openai/parameter-golf/blob/main/train_gpt.py"
_VERBS = {"A": "adds", "D": "deletes", "M": "changes", "T": "changes the type of"}


class GitError(PgauditError):
    """git failed or is missing: one line, exit 2."""


# --- git ---------------------------------------------------------------------------------------------------


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


# --- the pull request's shape ------------------------------------------------------------------------------


@dataclass
class FolderChange:
    path: str  # records/track_*/<name>
    changes: list[Change] = field(default_factory=list)
    existed_at_base: bool = False
    exists_at_head: bool = True
    audited: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": printable(self.path),
            "new": not self.existed_at_base,
            "deleted": not self.exists_at_head,
            "files": len(self.changes),
            "audited": self.audited,
        }


@dataclass
class PullRequestScope:
    base: str
    head: str
    base_commit: str
    head_commit: str
    merge_base: str
    changes: list[Change]
    folders: list[FolderChange]
    outside: list[Change]  # changes that are not inside a record folder

    @property
    def kind(self) -> str:
        """"records" (a submission PR), "core-code", "other" (no record folder touched) or "empty"."""
        if not self.changes:
            return "empty"
        if self.folders or any(c.path.startswith("records/") for c in self.changes):
            return "records"
        if any(_is_root_script(c.path) for c in self.changes):
            return "core-code"
        return "other"

    def summary(self) -> str:
        kind = self.kind
        if kind == "empty":
            return "no file changed between base and head: nothing to audit."
        if kind == "other":
            return "no record folder changed: nothing to audit."
        if kind == "core-code":
            return "a core-code pull request (root scripts): no record folder to audit; the 1,500-line limit applies."
        new = [f for f in self.folders if not f.existed_at_base]
        text = f"{len(self.folders)} record folder(s) changed, {len(new)} new"
        if self.outside:
            text += f"; {len(self.outside)} path(s) changed outside any record folder"
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "base_commit": self.base_commit,
            "head_commit": self.head_commit,
            "merge_base": self.merge_base,
            "kind": self.kind,
            "summary": self.summary(),
            "folders": [f.to_dict() for f in self.folders],
            "outside": [{"status": c.status, "path": printable(c.path)} for c in self.outside],
        }


def record_folder_of(path: str) -> str | None:
    """`records/track_*/<name>` for a file inside a record folder, else None."""
    parts = PurePosixPath(path).parts
    if len(parts) >= 4 and parts[0] == "records" and parts[1].startswith("track_"):
        return "/".join(parts[:3])
    return None


def _is_root_script(path: str) -> bool:
    return path in ROOT_SCRIPTS


def read_scope(git: Git, base: str, head: str) -> PullRequestScope:
    base_commit = git.commit(base, "--base")
    head_commit = git.commit(head, "--head")
    merge_base = git.merge_base(base_commit, head_commit)
    changes = git.changes(merge_base, head_commit)
    folders: dict[str, FolderChange] = {}
    outside: list[Change] = []
    for change in changes:
        folder = record_folder_of(change.path)
        if folder is None:
            outside.append(change)
        else:
            folders.setdefault(folder, FolderChange(folder)).changes.append(change)
    for folder in folders.values():
        folder.existed_at_base = git.exists(merge_base, folder.path)
        folder.exists_at_head = git.exists(head_commit, folder.path)
    return PullRequestScope(base, head, base_commit, head_commit, merge_base, changes,
                            sorted(folders.values(), key=lambda f: f.path), outside)


# --- scope findings (PG511) --------------------------------------------------------------------------------


def _scope_finding(message: str, path: str, fix: str, *, line: int | None = None,
                   severity: Severity = Severity.ERROR, ids: tuple[str, ...] = ("R29",),
                   rulings: tuple[str, ...] = (README_URL,), evidence: tuple[str, ...] = ()) -> Finding:
    return Finding(
        code=CODE,
        name=NAME,
        severity=severity,
        confidence=Confidence.HIGH,
        message=message,
        location=Location(printable(path), line),
        catalogue_ids=ids,
        ruling_urls=rulings,
        fix=fix,
        evidence=evidence,
    )


def scope_findings(scope: PullRequestScope) -> list[Finding]:
    """R29: a submission PR adds exactly one new folder under records/track_*/ and touches nothing else."""
    if scope.kind != "records":
        return []
    findings: list[Finding] = []
    names = ", ".join(f"`{printable(f.path)}`" for f in scope.folders)
    if len(scope.folders) > 1:
        for folder in scope.folders:
            findings.append(_scope_finding(
                f"This pull request changes {len(scope.folders)} record folders ({names}); a submission pull "
                "request adds exactly one new folder under records/track_*/ (R29).",
                folder.changes[0].path,
                "Split the pull request: one pull request per submission, each adding one folder.",
            ))
    for folder in scope.folders:
        if folder.existed_at_base:
            findings.append(_existing_folder(folder))
    findings += _outside_findings(scope, names)
    return findings


def _existing_folder(folder: FolderChange) -> Finding:
    verbs = sorted({_VERBS.get(c.status, "changes") for c in folder.changes})
    what = "deletes" if not folder.exists_at_head else " and ".join(verbs)
    listed = ", ".join(f"`{printable(c.path.rsplit('/', 1)[-1])}`" for c in folder.changes[:5])
    more = f" and {len(folder.changes) - 5} more" if len(folder.changes) > 5 else ""
    return _scope_finding(
        f"`{printable(folder.path)}` already exists at the base revision and this pull request {what} it "
        f"({listed}{more}). A submission pull request only adds a new folder (R29); a merged record is changed "
        "by the maintainers, or by a new submission in a new folder.",
        folder.changes[0].path,
        "Put the new submission in a new folder (records/track_*/YYYY-MM-DD_description/) and leave existing "
        "records untouched.",
    )


def _outside_findings(scope: PullRequestScope, names: str) -> list[Finding]:
    adds = f"adds the record folder {names} and also" if names else "touches records/ and also"
    findings = []
    for change in scope.outside[:MAX_OUTSIDE_FINDINGS]:
        verb = _VERBS.get(change.status, "changes")
        where = ("which is not inside a record folder (records/track_*/<name>/)"
                 if change.path.startswith("records/") else "outside any record folder")
        findings.append(_scope_finding(
            f"This pull request {adds} {verb} `{printable(change.path)}`, {where}. A submission pull request "
            "only adds one new folder under records/track_*/ (README: \"only adds a new folder to the "
            "appropriate /records subfolder\").",
            change.path,
            "Drop this change from the submission, or send it as its own pull request (changes to the root "
            "train_gpt.py / train_gpt_mlx.py are core-code pull requests).",
        ))
    rest = len(scope.outside) - MAX_OUTSIDE_FINDINGS
    if rest > 0:
        findings.append(_scope_finding(
            f"... and {rest} more path(s) outside the record folder (not listed one by one).",
            scope.outside[MAX_OUTSIDE_FINDINGS].path,
            "Drop these changes from the submission pull request.",
        ))
    return findings


def root_script_findings(git: Git, scope: PullRequestScope, workdir: Path) -> list[Finding]:
    """R7: the root train_gpt.py / train_gpt_mlx.py a core-code PR changes must stay within 1,500 lines."""
    if scope.kind != "core-code":
        return []
    findings = []
    for change in scope.changes:
        if not _is_root_script(change.path) or change.status == "D":
            continue
        entry = next((e for e in git.tree(scope.head_commit, change.path) if e.path == change.path), None)
        if entry is None or not entry.is_file:
            continue
        target = workdir / "root" / change.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(git.blobs([entry.sha])[entry.sha])
        committed, payload = running_lines(target)
        total = committed + payload
        if total <= ROOT_LINE_LIMIT:
            continue
        detail = f"{committed:,} committed lines" + (f" + {payload:,} in its compressed payload" if payload else "")
        findings.append(_scope_finding(
            f"`{change.path}` has {total:,} lines that run ({detail}); the root {change.path} must never be "
            f"longer than {ROOT_LINE_LIMIT:,} lines (hard stop in its docstring, R7). Core-code pull requests "
            "are the one exception to the records-only rule (R29), and this limit is what they must keep.",
            change.path,
            f"Move code out of the root {change.path} (a record folder is the place for bigger scripts) until it "
            f"is at most {ROOT_LINE_LIMIT:,} lines.",
            line=ROOT_LINE_LIMIT + 1,
            ids=("R7", "R29"),
            rulings=(ROOT_SCRIPT_URL, README_URL),
            evidence=(f"{change.path}: {detail}" + (f" = {total:,} lines" if payload else ""),),
        ))
    return findings


def running_lines(script: Path) -> tuple[int, int]:
    """(committed lines, lines of unwrapped payloads) of a script; raw lines if it cannot be parsed."""
    from pgaudit.source.program import load_program

    try:
        program = load_program(script, script.parent)
    except InputError:
        text = script.read_bytes().decode("utf-8", "replace")
        return _count(text.split("\n")), 0
    units = [u for u in program.units if u.path == program.entry]
    committed = sum(_count(u.lines) for u in units if not u.in_payload)
    payload = sum(_count(u.lines) for u in units if u.in_payload)
    return committed, payload


def _count(lines: list[str]) -> int:
    return len(lines) - (1 if lines and lines[-1] == "" else 0)


# --- materialize and audit ---------------------------------------------------------------------------------


def materialize(git: Git, commit: str, folder: str, root: Path) -> list[Finding]:
    """Write the folder as it is at `commit` under `root` (same relative path); report what was left out."""
    entries = git.tree(commit, folder)
    findings: list[Finding] = []
    files = [e for e in entries if e.is_file and _safe_relative(e.path) and printable(e.path) == e.path]
    for entry in entries:
        if entry.is_file and printable(entry.path) != entry.path:
            findings.append(_scope_finding(
                f"`{printable(entry.path)}` has a name that is not valid UTF-8; it was not audited.",
                entry.path,
                "Rename the file with a UTF-8 name.",
            ))
        elif not entry.is_file:
            what = "a submodule" if entry.kind == "commit" else "a symbolic link"
            findings.append(_scope_finding(
                f"`{printable(entry.path)}` is {what}; pgaudit does not follow it, and a record folder must hold "
                "its files itself (R29: the script and its dependencies run from the records folder).",
                entry.path,
                "Commit the file itself instead of a link.",
                severity=Severity.WARNING,
            ))
    sizes = git.sizes(e.sha for e in files)
    for entry in files:
        if entry.sha not in sizes and PurePosixPath(entry.path).suffix in AUDITED_SUFFIXES:
            findings.append(_scope_finding(
                f"`{printable(entry.path)}` is not in this clone (a partial or shallow fetch?); it was not audited.",
                entry.path,
                "Fetch the head commit with its blobs (actions/checkout with fetch-depth: 0, no blob filter).",
                severity=Severity.WARNING,
            ))
    for entry in files:
        if sizes.get(entry.sha, 0) > MAX_BLOB_BYTES and PurePosixPath(entry.path).suffix in AUDITED_SUFFIXES:
            findings.append(_scope_finding(
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


@dataclass
class CiResult:
    report: Report
    scope: PullRequestScope
    reviews: dict[str, str] = field(default_factory=dict)  # record folder -> review comment (when asked)


def run_ci(repo: Path, base: str, head: str, options: AuditOptions, review: Links | None = None) -> CiResult:
    """Audit the record folders a pull request (base...head) adds, with its scope findings, into one Report.

    With `review`, also compose each audited folder's review comment (while its files are still on disk).
    """
    if not repo.is_dir():
        raise UsageError(f"--repo-root {repo}: not a directory")
    git = Git(repo)
    if not git.ok("rev-parse", "--git-dir"):
        raise UsageError(f"--repo-root {repo}: not a git repository")
    scope = read_scope(git, base, head)
    report = Report(target=f"{base}...{head}", tool_version=__version__)
    with tempfile.TemporaryDirectory(prefix="pgaudit-ci-") as tmp:
        workdir = Path(tmp)
        found = scope_findings(scope) + root_script_findings(git, scope, workdir)
        for folder in scope.folders:
            if folder.exists_at_head:
                found += _audit_folder(git, scope, folder, workdir / "tree", options, report)
        report.findings.extend(f for f in found if selected(f.code, options))
        report.run_config = {
            "env": dict(options.env),
            "select": list(options.select),
            "ignore": list(options.ignore),
            "ci": scope.to_dict(),
        }
        reviews = {}
        if review is not None:
            deleted = frozenset(printable(c.path) for c in scope.changes if c.status == "D")
            links = dataclasses.replace(review, sha=scope.head_commit, absent=deleted)  # head SHA always named
            ran = (CODE,) if selected(CODE, options) else ()
            reviews = _reviews(report, scope, workdir / "tree", links, ran, _lineage_index(repo, scope))
    return CiResult(report, scope, reviews)


def _lineage_index(repo: Path, scope: PullRequestScope):  # type: ignore[no-untyped-def]
    """The accepted records at the base revision, fingerprinted (and cached) for the reviews' lineage."""
    if not scope.folders:
        return None
    from pgaudit.lineage.review import index_at

    return index_at(repo, scope.base_commit)


def _reviews(report: Report, scope: PullRequestScope, root: Path, links: Links, ran: tuple[str, ...],
             index=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """One comment per record folder present at the head: its findings plus the PR-level ones (scope, root
    scripts). A records PR with no such folder left gets one comment with the PR-level findings."""
    from pgaudit.lineage.review import view_for
    from pgaudit.review import compose

    present = [f.path for f in scope.folders if f.exists_at_head]
    pr_level = [f for f in report.findings if not any(_under(f.location.path, p) for p in present)]
    out = {}
    for path in present:
        mine = [f for f in report.findings if _under(f.location.path, path)]
        errors = [e for e in report.errors if _under(e.path, path)]
        local = root.joinpath(*PurePosixPath(path).parts)
        view = view_for(local, index, links.repo)
        out[path] = compose(report, local, path, links, findings=mine + pr_level, errors=errors, also_ran=ran,
                            lineage=view)
    if not present and pr_level:
        out[""] = compose(report, root, "", links, findings=pr_level, errors=report.errors, also_ran=ran)
    return out


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder + "/")


def _audit_folder(git: Git, scope: PullRequestScope, folder: FolderChange, root: Path, options: AuditOptions,
                  report: Report) -> list[Finding]:
    found = materialize(git, scope.head_commit, folder.path, root)
    local = root.joinpath(*PurePosixPath(folder.path).parts)
    try:
        planned, _ = plan(local)
    except InputError:
        readme = next((c.path for c in folder.changes if c.status != "D"), folder.path)
        return [*found, _scope_finding(
            f"The record folder `{printable(folder.path)}` has no Python script at the head commit: nothing to "
            "audit. R29 requires train_gpt.py (and every dependency) to run from the records folder.",
            readme,
            "Add the train_gpt.py that produced the logs to the folder.",
        )]
    for sub, entries in planned:
        audit_folder(sub, entries, options, report, root)
    folder.audited = True
    return found

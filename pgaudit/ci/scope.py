"""A pull request's shape (the record folders it changes, what it changes outside them) and PG511 pr-scope.

R29: "a pull request that only adds a new folder to the appropriate /records subfolder". A core-code PR (only
the root `train_gpt.py` / `train_gpt_mlx.py`, the README's "PRs on Core Code") is allowed; its line limit is
PG505 (pgaudit.ci.lines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from pgaudit import codes
from pgaudit.ci.git import Change, Git, printable
from pgaudit.findings import Confidence, Finding, Location, Severity

ROOT_SCRIPTS = ("train_gpt.py", "train_gpt_mlx.py")
MAX_OUTSIDE_FINDINGS = 50
CODE = "PG511"
NAME = codes.name(CODE)
README_URL = "https://github.com/openai/parameter-golf/blob/main/README.md"
_VERBS = {"A": "adds", "D": "deletes", "M": "changes", "T": "changes the type of"}


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
        if any(is_root_script(c.path) for c in self.changes):
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


def is_root_script(path: str) -> bool:
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


def scope_finding(message: str, path: str, fix: str, *, line: int | None = None,
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
            findings.append(scope_finding(
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
    return scope_finding(
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
        findings.append(scope_finding(
            f"This pull request {adds} {verb} `{printable(change.path)}`, {where}. A submission pull request "
            "only adds one new folder under records/track_*/ (README: \"only adds a new folder to the "
            "appropriate /records subfolder\").",
            change.path,
            "Drop this change from the submission, or send it as its own pull request (changes to the root "
            "train_gpt.py / train_gpt_mlx.py are core-code pull requests).",
        ))
    rest = len(scope.outside) - MAX_OUTSIDE_FINDINGS
    if rest > 0:
        findings.append(scope_finding(
            f"... and {rest} more path(s) outside the record folder (not listed one by one).",
            scope.outside[MAX_OUTSIDE_FINDINGS].path,
            "Drop these changes from the submission pull request.",
        ))
    return findings

"""`pgaudit ci`: a pull request's git diff -> the record folders it adds, their audit, and its scope (R29).

The orchestration: read the pull request's shape from git (pgaudit.ci.scope), write each changed record folder
out of the head commit (pgaudit.ci.blobs), audit them with the shared driver (pgaudit.engine) into one Report,
add the scope findings (PG511) and, for a core-code PR, the root scripts' line limit (PG505, pgaudit.ci.lines).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pgaudit import __version__
from pgaudit.baseline import apply as apply_baseline
from pgaudit.ci.blobs import materialize
from pgaudit.ci.git import Git, printable
from pgaudit.ci.lines import root_script_findings
from pgaudit.ci.scope import CODE, FolderChange, PullRequestScope, read_scope, scope_finding, scope_findings
from pgaudit.config import Config, apply_config, config_from_text
from pgaudit.engine import audit_paths, describe_codes, plan, selected_rules, with_severity
from pgaudit.errors import InputError, UsageError
from pgaudit.findings import Finding, FolderAudit, Report
from pgaudit.options import AuditOptions, selected
from pgaudit.review import Links


@dataclass
class CiResult:
    report: Report
    scope: PullRequestScope
    reviews: dict[str, str] = field(default_factory=dict)  # record folder -> review comment (when asked)


def run_ci(repo: Path, base: str, head: str, options: AuditOptions, review: Links | None = None,
           jobs: int = 1, *, settings: Config | None = None, use_config: bool = True,
           baseline: Counter | None = None, baseline_label: str | None = None) -> CiResult:
    """Audit the record folders a pull request (base...head) adds, with its scope findings, into one Report.

    With `review`, also compose each audited folder's review comment from that Report.
    Configuration is `settings` (--config), else the base revision's root pyproject.toml (the repository as
    its maintainers have it; a pull request cannot configure its own gate); `baseline` marks accepted findings.
    """
    if not repo.is_dir():
        raise UsageError(f"--repo-root {repo}: not a directory")
    git = Git(repo)
    if not git.ok("rev-parse", "--git-dir"):
        raise UsageError(f"--repo-root {repo}: not a git repository")
    scope = read_scope(git, base, head)
    if use_config and settings is None:
        settings = base_config(git, scope.base_commit)
    if use_config and settings is not None:
        options = apply_config(options, settings)
    report = Report(target=f"{base}...{head}", tool_version=__version__)
    with tempfile.TemporaryDirectory(prefix="pgaudit-ci-") as tmp:
        workdir = Path(tmp)
        found = scope_findings(scope) + root_script_findings(git, scope, workdir, options.policy)
        for folder in scope.folders:
            if folder.exists_at_head:
                found += _audit_folder(git, scope, folder, workdir / "tree", options, report, jobs)
        report.findings.extend(with_severity(f, options) for f in found if selected(f.code, options))
        describe_codes(report, (CODE,) if selected(CODE, options) else ())
        report.run_config = {
            "env": dict(options.env),
            "select": list(options.select),
            "ignore": list(options.ignore),
            "ci": scope.to_dict(),
            "gate": True,
            "config": str(settings.source) if settings is not None and settings.source else None,
            "baseline": None,
        }
        if baseline is not None:
            matched = apply_baseline(report, baseline, baseline_label or "baseline")
            report.run_config["baseline"] = {"path": baseline_label, "entries": sum(baseline.values()),
                                             "matched": matched}
        reviews = {}
        if review is not None:
            deleted = frozenset(printable(c.path) for c in scope.changes if c.status == "D")
            links = dataclasses.replace(review, sha=scope.head_commit if review.repo else None, absent=deleted)
            ran = (CODE,) if selected(CODE, options) else ()
            reviews = _reviews(report, scope, links, ran)
    return CiResult(report, scope, reviews)


def base_config(git: Git, commit: str) -> Config | None:
    """[tool.pgaudit] of the root pyproject.toml at the base revision, if there is one."""
    if not git.exists(commit, "pyproject.toml"):
        return None
    entry = next((e for e in git.tree(commit, "pyproject.toml") if e.path == "pyproject.toml" and e.is_file), None)
    if entry is None:
        return None
    text = git.blobs([entry.sha])[entry.sha].decode("utf-8", "replace")
    return config_from_text(text, f"{commit[:12]}:pyproject.toml")


def _reviews(report: Report, scope: PullRequestScope, links: Links, ran: tuple[str, ...]) -> dict[str, str]:
    """One comment per record folder present at the head: its findings plus the PR-level ones (scope, root
    scripts). A records PR with no such folder left gets one comment with the PR-level findings."""
    from pgaudit.review import compose

    present = [f.path for f in scope.folders if f.exists_at_head]
    pr_level = [f for f in report.findings if not any(_under(f.location.path, p) for p in present)]
    out = {}
    for path in present:
        mine = [f for f in report.findings if _under(f.location.path, path)]
        errors = [e for e in report.errors if _under(e.path, path)]
        out[path] = compose(report, path, links, findings=mine + pr_level, errors=errors, also_ran=ran)
    if not present and pr_level:
        out[""] = compose(report, "", links, findings=pr_level, errors=report.errors, also_ran=ran)
    return out


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder + "/")


def _audit_folder(git: Git, scope: PullRequestScope, folder: FolderChange, root: Path, options: AuditOptions,
                  report: Report, jobs: int) -> list[Finding]:
    found = materialize(git, scope.head_commit, folder.path, root)
    local = root.joinpath(*PurePosixPath(folder.path).parts)
    try:
        planned, _ = plan(local)
    except InputError:
        # The rules were to run on the folder's scripts and found none: the review says so, check by check.
        report.folders.append(FolderAudit(printable(folder.path), rules=selected_rules(options)))
        readme = next((c.path for c in folder.changes if c.status != "D"), folder.path)
        return [*found, scope_finding(
            f"The record folder `{printable(folder.path)}` has no Python script at the head commit: nothing to "
            "audit. R29 requires train_gpt.py (and every dependency) to run from the records folder.",
            readme,
            "Add the train_gpt.py that produced the logs to the folder.",
        )]
    del planned
    report.merge(audit_paths([local], options, jobs=jobs, root=root))
    folder.audited = True
    return found

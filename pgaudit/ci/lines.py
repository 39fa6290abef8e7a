"""R7 on a core-code pull request: the root train_gpt.py / train_gpt_mlx.py it changes must stay within the
1,500-line hard stop. The count and the finding are the record-folder validator's own PG505 (one
implementation), called on the root script as the head commit has it."""

from __future__ import annotations

from pathlib import Path

from pgaudit.ci.git import Git
from pgaudit.ci.scope import PullRequestScope, is_root_script
from pgaudit.errors import InputError
from pgaudit.findings import Finding
from pgaudit.policy import Policy
from pgaudit.source.program import load_program
from pgaudit.validators.line_limit import check_program


def root_script_findings(git: Git, scope: PullRequestScope, workdir: Path, policy: Policy) -> list[Finding]:
    if scope.kind != "core-code":
        return []
    findings = []
    root = workdir / "root"
    for change in scope.changes:
        if not is_root_script(change.path) or change.status == "D":
            continue
        entry = next((e for e in git.tree(scope.head_commit, change.path) if e.path == change.path), None)
        if entry is None or not entry.is_file:
            continue
        target = root / change.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(git.blobs([entry.sha])[entry.sha])
        try:
            program = load_program(target, root)
        except InputError:
            continue  # an unparsable root script is not a record submission; nothing to count reliably
        found = check_program(program, policy.line_limit, root_script=True)
        if found is not None:
            findings.append(found)
    return findings

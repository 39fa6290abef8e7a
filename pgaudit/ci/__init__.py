"""`pgaudit ci`, split by job: git plumbing (git), the pull request's shape and PG511 (scope), the root
scripts' line limit (lines), writing folders out of the head commit (blobs), and the orchestration (run)."""

from pgaudit.ci.git import Git, GitError
from pgaudit.ci.run import CiResult, run_ci
from pgaudit.ci.scope import PullRequestScope, read_scope, record_folder_of

__all__ = ["CiResult", "Git", "GitError", "PullRequestScope", "read_scope", "record_folder_of", "run_ci"]

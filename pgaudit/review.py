"""`pgaudit review DIR`: the Markdown review comment for one record folder.

In the spirit of the community reviews the challenge received, but deterministic: the same folder (and the same
--repo/--sha/--pr) gives the same comment, byte for byte -- no dates, no absolute paths, findings in a fixed
order. A title with the submission's name and claimed score, one verdict line, a table of the checks with
pass/fail/n.a. and the evidence, each finding with a permalink, a short excerpt, the ruling and the fix, and
what the audit did not check. Every string from the submission goes through `render.mdtext`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pgaudit import __version__
from pgaudit.engine import AuditOptions, audit_paths, plan
from pgaudit.errors import UsageError
from pgaudit.excerpts import flagged_end
from pgaudit.findings import Finding, FolderAudit, InputProblem, Location, Report
from pgaudit.render import mdtext as md
from pgaudit.render.meta import committed_line
from pgaudit.verdict import CheckResult, check_results, review_order, verdict

MAX_LINE_CHARS = 160
_STATUS = {"pass": "✅ pass", "fail": "❌ fail", "warn": "⚠️ warn", "n.a.": "➖ n.a.", "not checked": "❔ not checked"}
_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


@dataclass(frozen=True)
class Links:
    """Where the folder lives on GitHub, for permalinks; all optional."""

    repo: str | None = None  # OWNER/NAME
    sha: str | None = None
    pr: int | None = None
    absent: frozenset[str] = frozenset()  # paths not in the linked commit (deleted by the PR): no link

    @classmethod
    def parse(cls, repo: str | None, sha: str | None, pr: int | None, *, sha_later: bool = False) -> Links:
        """Validated links; `sha_later` when the commit is filled in afterwards (`pgaudit ci` uses --head)."""
        if repo is not None and not _REPO.match(repo):
            raise UsageError(f"--repo expects OWNER/NAME, got {repo!r}")
        if sha is not None and not _SHA.match(sha.lower()):
            raise UsageError(f"--sha expects a commit id (7 to 64 hex digits), got {sha!r}")
        if not sha_later and (repo is None) != (sha is None):
            raise UsageError("--repo and --sha go together (permalinks need both)")
        if pr is not None and pr < 1:
            raise UsageError(f"--pr expects a pull request number, got {pr}")
        return cls(repo, sha.lower() if sha else None, pr)

    def blob(self, path: str, line: int | None = None) -> str | None:
        if not (self.repo and self.sha) or path in self.absent:
            return None
        return md.blob_url(self.repo, self.sha, path, line)


# --- the command -------------------------------------------------------------------------------------------


def review_folder(folder: Path, links: Links, options: AuditOptions | None = None,
                  prepare: Callable[[Report], None] | None = None) -> tuple[str, Report]:
    """Audit one record folder with the shared driver and compose its review comment from the result
    (`prepare` sees the result first: the gate's config and baseline)."""
    options = options or AuditOptions()
    if folder.is_file() or (not folder.exists() and folder.suffix == ".py"):
        raise UsageError(f"{folder}: review takes a record folder, not a file")
    planned, _ = plan(folder)
    if len(planned) > 1:
        raise UsageError(f"{folder}: holds {len(planned)} record folders; review one at a time")
    root = repository_root(folder)
    shown = _relative(folder, root)
    report = audit_paths([folder], options, root=root, label=shown)
    if prepare is not None:
        prepare(report)
    return compose(report, shown, links), report


def repository_root(folder: Path) -> Path:
    """What paths are relative to: the git work tree holding the folder, else the parent of `records/`, else
    the folder's parent -- so links and paths read `records/track_*/<name>/...` wherever the copy lives."""
    resolved = folder.resolve()
    try:
        out = subprocess.run(
            ["git", "-C", str(resolved), "rev-parse", "--show-toplevel"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            top = Path(out.stdout.strip()).resolve()
            if resolved.is_relative_to(top):
                return top
    except (OSError, subprocess.TimeoutExpired):
        pass
    parts = resolved.parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "records" and parts[i + 1].startswith("track_"):
            return Path(*parts[:i])
    return resolved.parent


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


# --- composing the comment ---------------------------------------------------------------------------------


def compose(report: Report, folder_path: str, links: Links, *, findings: list[Finding] | None = None,
            errors: list[InputProblem] | None = None, also_ran: tuple[str, ...] = ()) -> str:
    """The comment for the record folder shown as `folder_path`, from the audit result alone.

    `findings`/`errors` restrict the report to this folder (and the PR-level findings) under `pgaudit ci`;
    `also_ran` names the PR-level checks that ran there (PG511).
    """
    findings = sorted(report.findings if findings is None else findings, key=Finding.sort_key)
    errors = report.errors if errors is None else errors
    audited = [f for f in report.folders if f.path == folder_path or _inside(f.path, folder_path)]
    rules = tuple(dict.fromkeys(code for f in audited for code in f.rules))
    validators = tuple(dict.fromkeys(code for f in audited for code in f.validators))
    scripts = sum(f.scripts for f in audited)
    results = check_results(findings, rules, validators, scripts, also_ran)
    judged = verdict(findings, len(errors))
    active = review_order(f for f in findings if not f.suppressed)
    lines = [*_title(audited[0] if audited else FolderAudit(folder_path), folder_path, links), ""]
    lines += [f"**Verdict: {judged.label}.** {md.inline(judged.reason)}", ""]
    lines += _checks_table(results)
    if active:
        lines += ["### Findings", ""]
        for number, finding in enumerate(active, start=1):
            lines += _finding(number, finding, links, report)
    lines += _input_errors(errors)
    lines += _not_checked(results, findings)
    lines.append(f"<sub>pgaudit {md.text(__version__)}: static audit of the committed files, nothing was "
                 "executed; the same input gives the same comment.</sub>")
    return "\n".join(lines) + "\n"


def _inside(path: str, folder_path: str) -> bool:
    return not folder_path or path.startswith(folder_path.rstrip("/") + "/")


def _title(folder: FolderAudit, folder_path: str, links: Links) -> list[str]:
    claims = folder.claims
    name = claims.get("name") or PurePosixPath(folder_path).name or "pull request"
    score = claims.get("val_bpb")
    claimed = f"claimed val_bpb {md.text(score)}" if score else "no val_bpb claimed in submission.json"
    meta = [md.code(folder_path)] if folder_path else []
    if claims.get("author"):
        meta.append(f"by {md.text(claims['author'])}")
    if links.pr is not None:
        pr = f"PR #{links.pr}"
        meta.append(md.link(pr, f"https://github.com/{links.repo}/pull/{links.pr}") if links.repo else pr)
    if links.sha:
        meta.append(f"commit {md.code(links.sha[:12])}")
    meta.append(f"pgaudit {md.text(__version__)}")
    return [f"## pgaudit review: {md.text(name)} ({claimed})", "", " · ".join(meta)]


def _checks_table(results: list[CheckResult]) -> list[str]:
    lines = ["| Check | Result | Evidence |", "|---|---|---|"]
    for result in results:
        lines.append(f"| {result.check.title} | {_STATUS[result.status]} | {md.inline(result.evidence, cell=True)} |")
    return [*lines, ""]


def _finding(number: int, f: Finding, links: Links, report: Report) -> list[str]:
    tags = "; ".join(t for t in (f.condition, ", ".join(f.catalogue_ids)) if t)
    head = f"#### {number}. {f.code} {md.text(f.name)}: {f.severity.label}" + (f" ({md.text(tags)})" if tags else "")
    lines = [head, "", f"**Where:** {_where(f, links, report)}", ""]
    excerpt = _excerpt(f)
    if excerpt:
        lines += [md.fence(excerpt, "python" if f.location.path.endswith(".py") else "text"), ""]
    elif f.evidence:
        lines += [md.fence([e[:MAX_LINE_CHARS] for e in f.evidence[:3]], "text"), ""]
    lines += [md.inline(f.message), ""]
    if f.reachability is not None:
        detail = f.reachability.detail or {True: "runs", False: "does not run", None: "undetermined"}[f.reachable]
        lines += [f"**Reachability:** {md.inline(detail)}", ""]
    if f.related:
        lines += ["**See also:** " + ", ".join(_loc_link(r, links) for r in f.related[:4]), ""]
    if f.fix:
        lines += [f"**Fix:** {md.inline(f.fix)}", ""]
    if f.ruling_urls:
        lines += ["**Ruling:** " + ", ".join(f"<{url}>" for url in f.ruling_urls), ""]
    return lines


def _where(f: Finding, links: Links, report: Report) -> str:
    loc = f.location
    url = links.blob(loc.path, committed_line(f))
    if loc.in_payload:
        payload = next((a.payload for a in report.files if a.path == loc.path and a.payload), None) or {}
        size = f"{payload['lines']}-line " if payload.get("lines") else ""
        codec = f" ({md.text(payload['codec'])})" if payload.get("codec") else ""
        label = f"{md.code(loc.path)} line {loc.wrapper_line}"
        target = md.link(label, url) if url else label
        return (f"{target}, the self-extracting wrapper. The flagged code is line {loc.line} of the {size}code it "
                f"decodes{codec} and exec's: the committed file shows only the compressed payload, so the excerpt "
                "below is from the decoded code.")
    label = md.code(loc.path + (f":{loc.line}" if loc.line else ""))
    return md.link(label, url) if url else label


def _loc_link(loc: Location, links: Links) -> str:
    line = loc.wrapper_line if loc.in_payload else loc.line
    text = f"line {loc.line}" + (" of the decoded payload" if loc.in_payload else "")
    url = links.blob(loc.path, line)
    return md.link(text, url) if url else f"{md.code(loc.path)} {text}"


def _input_errors(errors: list[InputProblem]) -> list[str]:
    if not errors:
        return []
    lines = ["### Could not be audited", ""]
    lines += [f"- {md.code(e.path)}: {md.text(e.message)}" for e in errors]
    return [*lines, ""]


def _not_checked(results: list[CheckResult], findings: list[Finding]) -> list[str]:
    lines = ["### Not checked", ""]
    lines.append("- No reproduction run: scores, sizes and times are what the submission's logs say, not "
                 "re-measured on 8xH100 SXM.")
    for status, why in (("not checked", "nothing in this pgaudit run covers them"),
                        ("n.a.", "their validators reported nothing, which is not a pass")):
        titles = [r.check.title for r in results if r.status == status]
        if titles:
            lines.append(f"- {', '.join(titles)}: {why} (see the table).")
    lines.append("- Tokenizer byte accounting (R27), training-data provenance (R25), seed selection (R30) and the "
                 "README's claims beyond the logged numbers are left to the reviewer.")
    for f in (f for f in findings if f.suppressed):
        reason = md.text(f.suppression_reason or "no reason given")
        who = "Accepted in the baseline" if f.suppression_kind == "external" else "Suppressed by the author"
        lines.append(f"- {who}: {f.code} at {md.code(_plain_where(f.location))}: {reason}")
    return [*lines, ""]


def _plain_where(loc: Location) -> str:
    return loc.path + (f":{loc.line}" if loc.line else "")


# --- excerpts ---------------------------------------------------------------------------------------------


def _excerpt(f: Finding) -> list[str]:
    """The numbered lines the driver cut around the finding, the flagged ones marked with `>`."""
    if not f.excerpt or f.location.line is None:
        return []
    first, end = f.location.line, flagged_end(f.location)
    width = len(str(f.excerpt[-1][0]))
    out = []
    for number, text in f.excerpt:
        mark = ">" if first <= number <= end else " "
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " ..."
        out.append(f"{mark} {number:>{width}} | {text}")
    return out

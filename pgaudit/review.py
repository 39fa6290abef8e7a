"""`pgaudit review DIR`: the Markdown review comment for one record folder.

In the spirit of the community reviews the challenge received, but deterministic: the same folder (and the same
--repo/--sha/--pr) gives the same comment, byte for byte -- no dates, no absolute paths, findings in a fixed
order. A title with the submission's name and claimed score, one verdict line, a table of the checks with
pass/fail/n.a. and the evidence, each finding with a permalink, a short excerpt, the ruling and the fix, and
what the audit did not check. Every string from the submission goes through `render.mdtext`.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pgaudit import __version__
from pgaudit.engine import AuditOptions, audit_folder, plan
from pgaudit.errors import InputError, UsageError
from pgaudit.findings import Finding, InputProblem, Location, Report
from pgaudit.lineage.review import ReviewLineage, ancestor_of, precedent
from pgaudit.lineage.review import lead as lineage_lead
from pgaudit.render import mdtext as md
from pgaudit.render.meta import committed_line
from pgaudit.render.verdict import CheckResult, check_results, review_order, validators_available, verdict
from pgaudit.review_evidence import recommendation, what_the_review_saw

EXCERPT_CONTEXT = 2  # lines shown before and after the flagged line
MAX_EXCERPT_LINES = 9
MAX_LINE_CHARS = 160
MAX_JSON_BYTES = 1024 * 1024
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
                  lineage: ReviewLineage | None = None) -> str:
    """Audit one record folder and compose its review comment (led by its lineage, when given)."""
    options = options or AuditOptions()
    if folder.is_file() or (not folder.exists() and folder.suffix == ".py"):
        raise UsageError(f"{folder}: review takes a record folder, not a file")
    planned, _ = plan(folder)
    if len(planned) > 1:
        raise UsageError(f"{folder}: holds {len(planned)} record folders; review one at a time")
    root = repository_root(folder)
    report = Report(target=_relative(folder, root), tool_version=__version__)
    for sub, entries in planned:
        audit_folder(sub, entries, options, report, root)
    report.run_config = {"env": dict(options.env), "select": list(options.select), "ignore": list(options.ignore)}
    return compose(report, folder, _relative(folder, root), links, validators_ran=options.validators,
                   lineage=lineage)


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


def compose(report: Report, folder: Path, folder_path: str, links: Links, *, validators_ran: bool = True,
            findings: list[Finding] | None = None, errors: list[InputProblem] | None = None,
            also_ran: tuple[str, ...] = (), lineage: ReviewLineage | None = None) -> str:
    """The comment for the record folder `folder` (shown as `folder_path`), from `report`'s findings.

    `findings`/`errors` restrict the report to this folder (and the PR-level findings) under `pgaudit ci`;
    `also_ran` names the PR-level checks that ran there (PG511).
    """
    findings = sorted(report.findings if findings is None else findings, key=Finding.sort_key)
    errors = report.errors if errors is None else errors
    source = _Source(folder, folder_path)
    scripts = sum(1 for f in report.files if f.role == "entry" and _inside(f.path, folder_path))
    ran = validators_ran and validators_available()
    results = check_results(report, findings, scripts, ran, also_ran)
    judged = verdict(findings, len(errors))
    active = review_order(f for f in findings if not f.suppressed)
    lines = [*_title(source, folder_path, links), ""]
    lines += lineage_lead(lineage, folder_path, links.blob)
    lines += [f"**Verdict: {judged.label}.** {md.inline(judged.reason)}", ""]
    ancestor, ancestor_path, unchanged_from = ancestor_of(lineage)
    lines += recommendation(judged.label, findings, unchanged_from)
    lines += _checks_table(results)
    lines += what_the_review_saw(report, folder, folder_path, ancestor, ancestor_path)  # type: ignore[arg-type]
    if active:
        lines += ["### Findings", ""]
        for number, finding in enumerate(active, start=1):
            lines += _finding(number, finding, source, links, report)
            lines += precedent(lineage, finding, folder_path)
    lines += _input_errors(errors)
    lines += _not_checked(results, findings)
    lines.append(f"<sub>pgaudit {md.text(__version__)}: static audit of the committed files, nothing was "
                 "executed; the same input gives the same comment.</sub>")
    return "\n".join(lines) + "\n"


def _inside(path: str, folder_path: str) -> bool:
    return not folder_path or path.startswith(folder_path.rstrip("/") + "/")


def _title(source: _Source, folder_path: str, links: Links) -> list[str]:
    claims = source.claims()
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


def _finding(number: int, f: Finding, source: _Source, links: Links, report: Report) -> list[str]:
    tags = "; ".join(t for t in (f.condition, ", ".join(f.catalogue_ids)) if t)
    head = f"#### {number}. {f.code} {md.text(f.name)}: {f.severity.label}" + (f" ({md.text(tags)})" if tags else "")
    lines = [head, "", f"**Where:** {_where(f, links, report)}", ""]
    excerpt = source.excerpt(f.location)
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
        lines.append(f"- Suppressed by the author: {f.code} at {md.code(_plain_where(f.location))}: {reason}")
    return [*lines, ""]


def _plain_where(loc: Location) -> str:
    return loc.path + (f":{loc.line}" if loc.line else "")


# --- the folder's files: claims and excerpts ----------------------------------------------------------------


class _Source:
    """Reads the folder's files for the title and the excerpts; display paths -> files on disk."""

    def __init__(self, folder: Path, folder_path: str) -> None:
        self.folder = folder
        self.prefix = folder_path.rstrip("/") + "/" if folder_path else ""
        self._payloads: dict[str, list] = {}

    def claims(self) -> dict[str, str]:
        path = self.folder / "submission.json"
        try:
            if not path.is_file() or path.stat().st_size > MAX_JSON_BYTES:
                return {}
            data = json.loads(path.read_bytes().decode("utf-8", "replace"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        out = {}
        for key in ("name", "val_bpb", "author"):
            value = data.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                out[key] = str(value)[:200]
        return out

    def excerpt(self, loc: Location) -> list[str]:
        """A few numbered lines around the finding, from the committed file or the decoded payload."""
        if loc.line is None or not loc.path.startswith(self.prefix):
            return []
        relative = loc.path[len(self.prefix):]
        lines = self._payload_lines(relative, loc.wrapper_line) if loc.in_payload else self._file_lines(relative)
        if not lines or not 1 <= loc.line <= len(lines):
            return []
        end = min(max(loc.end_line or loc.line, loc.line), loc.line + MAX_EXCERPT_LINES - 2 * EXCERPT_CONTEXT - 1)
        first, last = max(1, loc.line - EXCERPT_CONTEXT), min(len(lines), end + EXCERPT_CONTEXT)
        width = len(str(last))
        out = []
        for number in range(first, last + 1):
            mark = ">" if loc.line <= number <= end else " "
            text = lines[number - 1].rstrip()
            if len(text) > MAX_LINE_CHARS:
                text = text[:MAX_LINE_CHARS] + " ..."
            out.append(f"{mark} {number:>{width}} | {text}")
        return out

    def _file_lines(self, relative: str) -> list[str]:
        path = self.folder.joinpath(*PurePosixPath(relative).parts)
        try:
            if not path.is_file() or path.stat().st_size > 64 * 1024 * 1024:
                return []
            return path.read_bytes().decode("utf-8", "replace").split("\n")
        except OSError:
            return []

    def _payload_lines(self, relative: str, wrapper_line: int | None) -> list[str]:
        from pgaudit.source.program import load_program

        if relative not in self._payloads:
            try:
                program = load_program(self.folder.joinpath(*PurePosixPath(relative).parts), self.folder)
                self._payloads[relative] = [u for u in program.units if u.in_payload and u.path == relative]
            except InputError:
                self._payloads[relative] = []
        units = self._payloads[relative]
        unit = next((u for u in units if u.wrapper_line == wrapper_line), units[0] if units else None)
        return unit.lines if unit else []


"""The review's lead paragraph: where the submission comes from and what of its scoring path changed.

"Descends from <record> (N% of running functions identical). The scoring path differs in: ..." with
permalinks to the changed lines, the README's stated lineage against the code, and, per finding, whether
the flagged code is identical in an accepted record (precedent).
"""

from __future__ import annotations

from dataclasses import dataclass

from pgaudit.findings import Finding
from pgaudit.lineage.index import Index, Record
from pgaudit.lineage.lookup import Lineage
from pgaudit.render import mdtext as md

MAX_LISTED = 8
MIN_DESCENT = 0.3  # below this share of identical lines (and half the functions), the nearest is no ancestor


@dataclass
class ReviewLineage:
    """What the review needs: the lineage of the folder and the index it was found in."""

    lineage: Lineage
    index: Index
    repo: str | None = None  # OWNER/NAME of the challenge repository, for links to the ancestor's PR


def _record_md(record: Record, repo: str | None) -> str:
    label = md.code(record.path)
    prs = [md.link(f"PR #{n}", f"https://github.com/{repo}/pull/{n}") if repo else f"PR #{n}" for n in record.prs]
    return label + (f" ({', '.join(prs)})" if prs else "")


def lead(view: ReviewLineage | None, folder_path: str, blob) -> list[str]:  # type: ignore[no-untyped-def]
    """Markdown lines for the top of the review; `blob(path, line)` gives a permalink or None."""
    if view is None:
        return []
    lineage = view.lineage
    comparison, nearest = lineage.comparison, lineage.nearest
    if comparison is None or nearest is None:
        return [f"**Lineage:** no accepted record in the index ({len(view.index.records)} records) to compare "
                "with.", ""]
    shares = (f"{comparison.share_functions:.0%} of running functions identical, {comparison.functions_identical} "
              f"of {comparison.functions_total}; {comparison.share_lines:.0%} of lines")
    if comparison.share_lines < MIN_DESCENT and comparison.share_functions < 0.5:
        lines = [f"**Lineage:** the nearest accepted record is {_record_md(nearest, view.repo)} ({shares}): too "
                 "little shared code to call it the ancestor, so the whole submission is new code to review.", ""]
        return lines + [f"- {md.inline(s)}" for s in lineage.claim_sentences()[:4]] + (
            [""] if lineage.claims else [])
    text = f"**Descends from {_record_md(nearest, view.repo)}** ({shares})."
    if lineage.scoring is None:
        text += " The scoring path could not be traced (no score event found), so every change below matters."
    else:
        changed = lineage.scoring_changes()
        if not changed:
            text += " **The scoring path is unchanged** from that record."
        else:
            links = [_entry_link(lineage, key, folder_path, blob) for key in changed[:MAX_LISTED]]
            more = f" and {len(changed) - MAX_LISTED} more" if len(changed) > MAX_LISTED else ""
            text += " The scoring path differs in: " + ", ".join(links) + more + "."
    lines = [text, ""]
    sentences = lineage.claim_sentences()
    lines += [f"- {md.inline(sentence)}" for sentence in sentences[:4]]
    if sentences:
        lines.append("")
    lines += _details(lineage, nearest, folder_path, blob)
    return lines


def _entry_link(lineage: Lineage, key: str, folder_path: str, blob) -> str:  # type: ignore[no-untyped-def]
    entry = lineage.prints.by_key()[key]
    pair = lineage.comparison.pair_of(key) if lineage.comparison else None
    d = lineage.diffs.get(key)
    line = d.changed_lines[0] if d and d.changed_lines else entry.line
    path = f"{folder_path.rstrip('/')}/{entry.path}" if folder_path else entry.path
    url = blob(path, entry.wrapper_line if entry.in_payload else line)
    status = "new" if pair is not None and pair.status == "new" else "changed"
    label = md.code(entry.qualname if entry.kind != "module" else f"{entry.path} module body")
    label = md.link(label, url) if url else label
    return f"{label} ({status}" + (f", line {line} of the decoded payload" if entry.in_payload else "") + ")"


def _details(lineage: Lineage, nearest: Record, folder_path: str, blob) -> list[str]:  # type: ignore[no-untyped-def]
    comparison = lineage.comparison
    if comparison is None:
        return []
    moved = [p for p in comparison.pairs if p.status != "unchanged"]
    if not moved:
        return []
    lines = ["<details><summary>What changed against the ancestor "
             f"({sum(p.status == 'changed' for p in moved)} changed, {sum(p.status == 'new' for p in moved)} new, "
             f"{sum(p.status == 'removed' for p in moved)} removed)</summary>", ""]
    for pair in moved[:40]:
        entry = pair.entry
        scoring = " (scoring path)" if lineage.scoring and pair.new is not None and pair.new.key in lineage.scoring else ""
        was = f", was {md.code(pair.old.qualname)}" if pair.renamed and pair.old else ""
        lines.append(f"- {pair.status}: {md.code(entry.qualname)} {md.code(entry.path)}:{entry.line}{was}{scoring}")
        d = lineage.diffs.get(pair.new.key) if pair.new is not None else None
        if d is not None and d.lines:
            lines += ["", md.fence(d.lines[:25], "diff"), ""]
    if len(moved) > 40:
        lines.append(f"- ... {len(moved) - 40} more")
    return [*lines, "", "</details>", ""]


def precedent(view: ReviewLineage | None, finding: Finding, folder_path: str) -> list[str]:
    """A finding in code identical to an accepted record's says so, and which record."""
    if view is None or finding.location.line is None:
        return []
    loc = finding.location
    prefix = folder_path.rstrip("/") + "/" if folder_path else ""
    path = loc.path[len(prefix):] if loc.path.startswith(prefix) else loc.path
    entry = next((e for e in view.lineage.prints.entries
                  if e.path == path and e.in_payload == loc.in_payload and e.line <= loc.line <= e.end_line
                  and e.kind != "module"), None)
    if entry is None:
        return []
    holder = view.lineage.first_holder(entry.fingerprint, view.index)
    if holder is None:
        return [f"**Precedent:** {md.code(entry.qualname)} is not identical to any accepted record's code.", ""]
    others = sum(1 for r in view.index.records if r is not holder
                 and any(e.fingerprint == entry.fingerprint for e in r.entries))
    also = f" (and {others} later record{'s' if others != 1 else ''})" if others else ""
    return [f"**Precedent:** this code is in {md.code(entry.qualname)}, identical in the accepted record "
            f"{_record_md(holder, view.repo)}{also}.", ""]


def view_for(folder, index: Index | None, repo: str | None = None) -> ReviewLineage | None:  # type: ignore[no-untyped-def]
    """The lineage of a folder for its review; None when there is no index or the folder cannot be read
    (the audit reports unreadable code itself)."""
    from pgaudit.errors import PgauditError
    from pgaudit.lineage.lookup import lineage_of

    if index is None:
        return None
    try:
        return ReviewLineage(lineage_of(folder, index), index, repo)
    except PgauditError:
        return None


def index_at(repo_root, rev: str, jobs: int | None = None) -> Index | None:  # type: ignore[no-untyped-def]
    """The index of the accepted records at `rev` (cached), or None when that tree has no records/."""
    from pgaudit.errors import PgauditError
    from pgaudit.lineage.index import Cache, index_from_git

    try:
        return index_from_git(repo_root, rev, Cache.default(), jobs)
    except PgauditError:
        return None


def review_lineage(folder, records, repo: str | None) -> ReviewLineage | None:  # type: ignore[no-untyped-def]
    """`pgaudit review --records PATH`: the index of PATH/records/ (cached); bad input is a one-line error."""
    from pgaudit.lineage.command import load_index
    from pgaudit.lineage.lookup import lineage_of

    index = load_index(records, None, None, False, None)
    return ReviewLineage(lineage_of(folder, index), index, repo)


def ancestor_of(view: ReviewLineage | None) -> tuple[object, str | None, str | None]:
    """(the nearest record's folder on disk or None, its path, the path when the scoring path is unchanged)."""
    if view is None or view.lineage.nearest is None:
        return None, None, None
    nearest = view.lineage.nearest
    folder = view.index.root / nearest.path if view.index.root is not None else None
    unchanged = view.lineage.scoring is not None and not view.lineage.scoring_changes()
    return folder, nearest.path, nearest.path if unchanged else None

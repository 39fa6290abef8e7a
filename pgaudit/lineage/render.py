"""Lineage as text (terminal) and JSON (versioned: `pgaudit.lineage/1`)."""

from __future__ import annotations

import json

from pgaudit.lineage.compare import Pair
from pgaudit.lineage.lookup import Lineage

SCHEMA = "pgaudit.lineage/1"


def _scoring(lineage: Lineage, pair: Pair) -> bool | None:
    if pair.new is None or lineage.scoring is None:
        return None
    return pair.new.key in lineage.scoring


def _where(entry) -> str:  # type: ignore[no-untyped-def]
    span = f"{entry.line}-{entry.end_line}" if entry.end_line != entry.line else str(entry.line)
    return f"{entry.path}:{span}" + (f" (payload at line {entry.wrapper_line})" if entry.in_payload else "")


def headline(lineage: Lineage) -> str:
    comparison = lineage.comparison
    nearest = lineage.nearest
    if nearest is None or comparison is None:
        return f"{lineage.folder}: no accepted record to compare with"
    return (f"Descends from {nearest.label()}: {comparison.share_functions:.0%} of running functions identical "
            f"({comparison.functions_identical} of {comparison.functions_total}), {comparison.share_lines:.0%} of "
            f"lines ({comparison.lines_identical:,} of {comparison.lines_total:,}).")


def render_text(lineage: Lineage, show_unchanged: bool = False) -> str:
    out = [lineage.folder, "  " + headline(lineage)]
    if len(lineage.candidates) > 1:
        others = ", ".join(f"{c.record.label()} {c.lines_share:.0%}" for c in lineage.candidates[1:])
        out.append(f"  next closest (identical lines): {others}")
    for sentence in lineage.claim_sentences():
        out.append("  README: " + sentence.replace("`", ""))
    comparison = lineage.comparison
    if comparison is None:
        return "\n".join(out) + "\n"
    if lineage.scoring is None:
        out.append("  scoring path: unknown (no score event found by the analysis)")
    else:
        changed = lineage.scoring_changes()
        out.append(f"  scoring path: {len(changed)} changed or new entr{'y' if len(changed) == 1 else 'ies'}"
                   + (f": {', '.join(k.split('::', 1)[1] for k in changed)}" if changed else ""))
    out.append("")
    counts = {s: sum(1 for p in comparison.pairs if p.status == s) for s in ("unchanged", "changed", "new", "removed")}
    out.append("  " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for pair in comparison.pairs:
        if pair.status == "unchanged" and not show_unchanged:
            continue
        scoring = {True: "scoring", False: "", None: ""}[_scoring(lineage, pair)]
        entry = pair.entry
        name = entry.qualname if entry.kind != "module" else f"<module body of {entry.path}>"
        was = ""
        if pair.renamed and pair.old is not None:
            was = f" (was {pair.old.qualname}, {pair.similarity:.0%} similar)"
        out.append(f"  {pair.status:<9} {scoring:<8} {name}{was}  {_where(entry)}")
        d = lineage.diffs.get(pair.new.key) if pair.new is not None else None
        if d is not None:
            out += ["      " + line[:160] for line in d.lines]
            if d.truncated:
                out.append(f"      ... {d.truncated} more diff lines")
    return "\n".join(out) + "\n"


def to_dict(lineage: Lineage) -> dict:
    comparison = lineage.comparison
    data: dict = {
        "schema": SCHEMA,
        "folder": lineage.folder,
        "fingerprint": lineage.prints.fingerprint,
        "ancestors": [
            {
                "record": c.record.path, "prs": c.record.prs, "date": c.record.date,
                "lines_identical_share": round(c.lines_share, 4), "statements_shared": round(c.statement_share, 4),
                **({"weighted_share": round(c.weighted, 4)} if c.comparison is not None else {}),
                **(_shares(c.comparison) if c.comparison is not None else {}),
            }
            for c in lineage.candidates
        ],
        "claims": [
            {**c.claim.to_dict(), "records": [r.path for r in c.records], "agrees": c.agrees,
             "lines_identical_share": None if c.share is None else round(c.share, 4), "sentence": c.sentence}
            for c in lineage.claims
        ],
        "scoring_path_known": lineage.scoring is not None,
        "functions": [],
    }
    if comparison is not None:
        for pair in comparison.pairs:
            entry = pair.entry
            d = lineage.diffs.get(pair.new.key) if pair.new is not None else None
            data["functions"].append({
                "status": pair.status, "key": entry.key, "path": entry.path, "qualname": entry.qualname,
                "kind": entry.kind, "scoring": _scoring(lineage, pair), "line": entry.line,
                "end_line": entry.end_line, "in_payload": entry.in_payload, "wrapper_line": entry.wrapper_line,
                "lines": entry.lines, "similarity": round(pair.similarity, 4),
                "ancestor": None if pair.old is None else {"key": pair.old.key, "qualname": pair.old.qualname,
                                                           "line": pair.old.line, "end_line": pair.old.end_line},
                "diff": None if d is None else {"lines": d.lines, "changed_lines": d.changed_lines,
                                                "truncated": d.truncated},
            })  # fmt: skip
    return data


def _shares(comparison) -> dict:  # type: ignore[no-untyped-def]
    return {
        "functions_identical": comparison.functions_identical, "functions_total": comparison.functions_total,
        "lines_identical": comparison.lines_identical, "lines_total": comparison.lines_total,
        "share_functions": round(comparison.share_functions, 4), "share_lines": round(comparison.share_lines, 4),
    }  # fmt: skip


def render_json(lineage: Lineage) -> str:
    return json.dumps(to_dict(lineage), indent=2) + "\n"

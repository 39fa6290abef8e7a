"""`pgaudit lineage FOLDER`: the accepted records a submission is closest to, and how it differs from the nearest.

Candidates are ranked by the share of the submission's lines in entries identical to one of theirs, then by
the share of statements in common (names erased), so a descendant whose every function changed a little
still finds its parent. The nearest is then compared entry by entry, with diffs of what changed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pgaudit.errors import InputError, PgauditError
from pgaudit.lineage.claims import BaseClaim, read_claims
from pgaudit.lineage.compare import Comparison, Diff, compare, diff, quick_score
from pgaudit.lineage.fingerprint import ProgramPrint, fingerprint_program
from pgaudit.lineage.index import Index, Record, _date

TOP = 3
RERANK = 6
STATEMENT_WEIGHT = 0.5  # ranking: identical-line share + this x statement share


@dataclass
class Candidate:
    record: Record
    lines_share: float
    statement_share: float
    weighted: float = 0.0
    comparison: Comparison | None = None

    @property
    def rank(self) -> float:
        return self.lines_share + STATEMENT_WEIGHT * self.statement_share


@dataclass
class ClaimCheck:
    claim: BaseClaim
    records: list[Record]  # the accepted records the claim names (empty: not an accepted record here)
    agrees: bool | None  # None: cannot be checked
    share: float | None  # identical-line share with the named record
    sentence: str


@dataclass
class Lineage:
    folder: str
    prints: ProgramPrint
    scoring: set[str] | None
    candidates: list[Candidate] = field(default_factory=list)
    comparison: Comparison | None = None
    diffs: dict[str, Diff] = field(default_factory=dict)
    claims: list[ClaimCheck] = field(default_factory=list)

    @property
    def nearest(self) -> Record | None:
        return self.candidates[0].record if self.candidates else None

    def scoring_changes(self) -> list[str]:
        """Keys of changed or new entries on the scoring path."""
        if self.comparison is None or not self.scoring:
            return []
        return [p.new.key for p in self.comparison.pairs
                if p.new is not None and p.status in ("changed", "new") and p.new.key in self.scoring]

    def claim_sentences(self) -> list[str]:
        """The README's stated bases against the code: one sentence per checked claim, one for the rest."""
        checked = [c.sentence for c in self.claims if c.agrees is not None]
        unknown = [c.claim.label() for c in self.claims if c.agrees is None]
        if unknown:
            names = ", ".join(unknown)
            plural = len(unknown) > 1
            checked.append(f"The README names {names} as its base; {'none is' if plural else 'it is not'} an "
                           "accepted record in the index, so the claim cannot be checked against the code.")
        return checked

    def first_holder(self, fingerprint: str, index: Index) -> Record | None:
        """The earliest accepted record with an identical entry (precedent for a finding there)."""
        holders = [r for r in index.records if any(e.fingerprint == fingerprint for e in r.entries)]
        if not holders:
            return None
        return min(holders, key=lambda r: (r.order if r.order is not None else 10**9, r.date, r.path))


def load_submission(folder: Path) -> tuple[ProgramPrint, list]:
    """The submission's prints (every entry script merged) and its programs (for the scoring path)."""
    from pgaudit.source.program import find_entries, load_program

    if not folder.is_dir():
        raise InputError(str(folder), "not a folder (lineage takes a record folder)")
    folder = folder.resolve()  # exec'd siblings are found relative to an absolute folder
    merged = ProgramPrint()
    programs = []
    errors = []
    for entry in find_entries(folder):
        try:
            program = load_program(entry, folder)
        except PgauditError as exc:
            errors.append(exc)
            continue
        programs.append(program)
        prints = fingerprint_program(program)
        taken = {e.key for e in merged.entries}
        for e in prints.entries:
            if e.key not in taken:
                merged.entries.append(e)
                merged.texts[e.key] = prints.texts[e.key]
        merged.def_nodes.update(prints.def_nodes)
    if not merged.entries:
        if errors:
            raise errors[0]
        raise InputError(str(folder), "no Python script to fingerprint")
    return merged, programs


def lineage_of(folder: Path, index: Index, *, earlier_only: bool = False, scoring: bool = True,
               top: int = TOP, display: str | None = None) -> Lineage:
    prints, programs = load_submission(folder)
    keys: set[str] | None = None
    if scoring:
        from pgaudit.lineage.scoring import scoring_keys

        found = [scoring_keys(p, prints) for p in programs]
        keys = set().union(*[k for k in found if k]) if any(k is not None for k in found) else None
    me = _relative_record(folder)
    mine = next((r for r in index.records if r.path == me), None)
    date = _date(folder)
    result = Lineage(display or folder.as_posix(), prints, keys)
    new_shingles = Counter(s for e in prints.entries for s in e.shingles)
    for record in index.records:
        if not record.entries or _same(record, folder, index, me):
            continue
        if earlier_only and not _earlier(record, mine, date):
            continue
        old_shingles = Counter(s for e in record.entries for s in e.shingles)
        lines, statements = quick_score(prints.entries, record.prints(), old_shingles, new_shingles)
        result.candidates.append(Candidate(record, lines, statements))
    result.candidates.sort(key=lambda c: (-c.rank, c.record.path))
    # The closest few by the cheap score are compared entry by entry: a changed function counts by its
    # statement overlap, so a parent whose functions the submission edited beats a sibling that shares less.
    for candidate in result.candidates[:RERANK]:
        candidate.comparison = compare(prints.entries, candidate.record.entries, candidate.record.path)
        candidate.weighted = candidate.comparison.weighted_share
    result.candidates[:RERANK] = sorted(result.candidates[:RERANK], key=lambda c: (-c.weighted, -c.rank, c.record.path))
    result.candidates = result.candidates[:top]
    nearest = result.nearest
    if nearest is not None:
        result.comparison = result.candidates[0].comparison or compare(prints.entries, nearest.entries, nearest.path)
        old_texts = None
        for pair in result.comparison.pairs:
            if pair.status == "changed" and pair.new is not None and pair.old is not None:
                old_texts = old_texts if old_texts is not None else index.texts(nearest)
                result.diffs[pair.new.key] = diff(prints.texts.get(pair.new.key), old_texts.get(pair.old.key))
    claims = read_claims(folder, set(mine.prs) if mine else set())
    result.claims = [_check_claim(c, index, prints, nearest) for c in claims]
    return result


def _relative_record(folder: Path) -> str | None:
    parts = folder.resolve().parts
    for i in range(len(parts) - 3, -1, -1):
        if parts[i] == "records" and parts[i + 1].startswith("track_"):
            return "/".join(parts[i : i + 3])
    return None


def _same(record: Record, folder: Path, index: Index, me: str | None) -> bool:
    if index.root is not None:
        try:
            if (index.root / record.path).resolve() == folder.resolve():
                return True
        except OSError:
            pass
    return me is not None and index.root is not None and record.path == me and _inside(folder, index.root)


def _inside(folder: Path, root: Path) -> bool:
    try:
        folder.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _earlier(record: Record, mine: Record | None, date: str) -> bool:
    if mine is not None:
        return record.earlier_than(mine)
    return bool(record.date and date and record.date < date)


def _check_claim(claim: BaseClaim, index: Index, prints: ProgramPrint, nearest: Record | None) -> ClaimCheck:
    named = index.by_pr(int(claim.value)) if claim.kind == "pr" else [r for r in index.records if r.path == claim.value]
    if not named:
        what = "is not an accepted record in the index" if claim.kind == "pr" else "is not in the index"
        return ClaimCheck(claim, [], None, None, f"The README names {claim.label()} as its base; it {what}, so "
                          "the claim cannot be checked against the code.")
    shares = {r.path: quick_score(prints.entries, r.prints())[0] for r in named}
    best = max(named, key=lambda r: shares[r.path])
    agrees = nearest is not None and any(r.path == nearest.path for r in named)
    pct = f"{shares[best.path]:.0%}"
    if agrees:
        sentence = (f"The README names {claim.label()} as its base: accepted record `{best.path}`, the nearest "
                    f"ancestor by code ({pct} of lines in identical functions). The code agrees.")
    else:
        near = f"`{nearest.path}`" if nearest else "no accepted record"
        sentence = (f"The README names {claim.label()} as its base (`{best.path}`, {pct} of lines in identical "
                    f"functions), but the nearest ancestor by code is {near}. The code does not confirm the claim.")
    return ClaimCheck(claim, named, agrees, shares[best.path], sentence)

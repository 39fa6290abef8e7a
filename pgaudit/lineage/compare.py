"""A submission against accepted records: nearest ancestors, and per entry unchanged / changed / new / removed.

Entries pair up across versions by fingerprint first (so a renamed or moved function that is identical is
unchanged), then by name, then by the most similar statements (so a renamed function that also changed still
pairs up). Identity shares count the submission's entries: functions, and their lines.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field

from pgaudit.lineage.fingerprint import Entry

MIN_SIMILARITY = 0.5  # statement overlap for an unnamed pairing
MAX_DIFF_LINES = 40


@dataclass
class Pair:
    status: str  # "unchanged", "changed", "new", "removed"
    new: Entry | None
    old: Entry | None
    similarity: float = 1.0

    @property
    def entry(self) -> Entry:
        return self.new or self.old  # type: ignore[return-value]

    @property
    def renamed(self) -> bool:
        return bool(self.new and self.old and self.new.qualname != self.old.qualname)


@dataclass
class Comparison:
    """The submission against one accepted record."""

    record: str  # records/track_*/<name>
    pairs: list[Pair] = field(default_factory=list)

    @property
    def functions_total(self) -> int:
        return sum(1 for p in self.pairs if p.new is not None)

    @property
    def functions_identical(self) -> int:
        return sum(1 for p in self.pairs if p.status == "unchanged")

    @property
    def lines_total(self) -> int:
        return sum(p.new.lines for p in self.pairs if p.new is not None)

    @property
    def lines_identical(self) -> int:
        return sum(p.new.lines for p in self.pairs if p.status == "unchanged" and p.new is not None)

    @property
    def share_functions(self) -> float:
        return self.functions_identical / self.functions_total if self.functions_total else 0.0

    @property
    def share_lines(self) -> float:
        return self.lines_identical / self.lines_total if self.lines_total else 0.0

    @property
    def weighted_share(self) -> float:
        """Lines of the submission, each counted by how much of its entry the record shares."""
        total = self.lines_total
        same = sum(p.new.lines * (1.0 if p.status == "unchanged" else p.similarity)
                   for p in self.pairs if p.new is not None and p.status in ("unchanged", "changed"))
        return same / total if total else 0.0

    def pair_of(self, key: str) -> Pair | None:
        return next((p for p in self.pairs if p.new is not None and p.new.key == key), None)


def similarity(a: Entry, b: Entry) -> float:
    """Overlap of two entries' statement multisets (names erased): |a & b| / max(|a|, |b|)."""
    if not a.shingles or not b.shingles:
        return 1.0 if a.fingerprint == b.fingerprint else 0.0
    common = sum((Counter(a.shingles) & Counter(b.shingles)).values())
    return common / max(len(a.shingles), len(b.shingles))


def compare(new: list[Entry], old: list[Entry], record: str = "") -> Comparison:
    pairs: list[Pair] = []
    left = list(new)
    right = list(old)
    # 1. identical code, preferring the same name
    by_print: dict[str, list[Entry]] = {}
    for entry in right:
        by_print.setdefault(entry.fingerprint, []).append(entry)
    rest: list[Entry] = []
    for entry in sorted(left, key=lambda e: e.key):
        options = by_print.get(entry.fingerprint)
        if not options:
            rest.append(entry)
            continue
        match = next((o for o in options if o.qualname == entry.qualname), options[0])
        options.remove(match)
        pairs.append(Pair("unchanged", entry, match))
    used = {id(p.old) for p in pairs}
    right = [e for e in right if id(e) not in used]
    # 2. the same name: the same file and qualified name first, then the qualified name in another file
    for same_file in (True, False):
        left = []
        for entry in rest:
            match = next((o for o in right if (o.key == entry.key if same_file else
                                               o.qualname == entry.qualname and o.kind == entry.kind)), None)
            if match is None:
                left.append(entry)
                continue
            right.remove(match)
            pairs.append(Pair("changed", entry, match, similarity(entry, match)))
        rest = left
    # 3. the most similar statements, greedily
    scored = sorted(
        ((similarity(a, b), i, j) for i, a in enumerate(left) for j, b in enumerate(right) if _compatible(a, b)),
        reverse=True,
    )
    taken_left: set[int] = set()
    taken_right: set[int] = set()
    for score, i, j in scored:
        if score < MIN_SIMILARITY:
            break
        if i in taken_left or j in taken_right:
            continue
        taken_left.add(i)
        taken_right.add(j)
        pairs.append(Pair("changed", left[i], right[j], score))
    pairs += [Pair("new", e, None, 0.0) for i, e in enumerate(left) if i not in taken_left]
    pairs += [Pair("removed", None, e, 0.0) for j, e in enumerate(right) if j not in taken_right]
    pairs.sort(key=lambda p: (p.entry.path, p.entry.in_payload, p.entry.line, p.entry.key))
    return Comparison(record, pairs)


def _compatible(a: Entry, b: Entry) -> bool:
    callable_kinds = {"function", "method"}
    return a.kind == b.kind or (a.kind in callable_kinds and b.kind in callable_kinds)


# --- ranking candidates ---------------------------------------------------------------------------------


def quick_score(new: list[Entry], old_prints: Counter[str], old_shingles: Counter[int] | None = None,
                new_shingles: Counter[int] | None = None) -> tuple[float, float]:
    """(share of lines in identical entries, share of statements in common): cheap, for ranking."""
    available = Counter(old_prints)
    same = total = 0
    for entry in new:
        total += entry.lines
        if available[entry.fingerprint] > 0:
            available[entry.fingerprint] -= 1
            same += entry.lines
    lines = same / total if total else 0.0
    if old_shingles is None or new_shingles is None or not new_shingles:
        return lines, 0.0
    common = sum((new_shingles & old_shingles).values())
    return lines, common / max(sum(new_shingles.values()), 1)


# --- diffs ---------------------------------------------------------------------------------------------


@dataclass
class Diff:
    lines: list[str]  # unified-diff body lines ("-old", "+new", " context", "@@ ...")
    changed_lines: list[int]  # submission line numbers that changed (for permalinks)
    truncated: int = 0  # diff lines left out


def diff(new_text: tuple[list[int], list[str]] | None, old_text: tuple[list[int], list[str]] | None,
         limit: int = MAX_DIFF_LINES) -> Diff:
    """A compact unified diff of two entries' source (blank and comment-only lines dropped)."""
    new_nums, new_lines = _clean(new_text)
    old_nums, old_lines = _clean(old_text)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    out: list[str] = []
    changed: list[int] = []
    for group in matcher.get_grouped_opcodes(1):
        first = group[0]
        new_start = new_nums[first[3]] if first[3] < len(new_nums) else (new_nums[-1] if new_nums else 0)
        old_start = old_nums[first[1]] if first[1] < len(old_nums) else (old_nums[-1] if old_nums else 0)
        out.append(f"@@ -{old_start} +{new_start} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line for line in new_lines[j1:j2]]
                continue
            out += ["-" + line for line in old_lines[i1:i2]]
            out += ["+" + line for line in new_lines[j1:j2]]
            changed += new_nums[j1:j2]
    truncated = max(0, len(out) - limit)
    return Diff(out[:limit], changed, truncated)


def _clean(text: tuple[list[int], list[str]] | None) -> tuple[list[int], list[str]]:
    if not text:
        return [], []
    nums: list[int] = []
    lines: list[str] = []
    for number, line in zip(*text, strict=False):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        nums.append(number)
        lines.append(line.rstrip())
    return nums, lines

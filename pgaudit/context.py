"""The submission context: one object, built once per record folder, that every validator and rule reads.

It answers what a maintainer settles before judging a folder:
- **the track** (R32): from the README when it declares one (the README governs: "time limits are waived
  if the README says so"), else `submission.json`'s `track`, else the path (`records/track_*/`). A
  non-record folder checked outside `records/` (an author checking before the pull request) is still
  non-record when its README or JSON says so;
- **the policy of that track**: the record track's 600 s train and eval caps; the non-record track waives
  them and keeps the 16,000,000-byte cap;
- **which logs are the submitted runs**: content first -- a log whose score matches a value submission.json
  claims (per seed, or the headline value) is a submitted run; a log of a claimed seed whose score differs
  from that seed's claim, or of a seed the claims do not list, is not (a rerun, an ablation, an earlier
  version); without such evidence a log under an ablation/sweep/experiment/old-version name or folder is
  not, and every other log is;
- **the current run command**: fenced commands of the README's current text (pgaudit.readme: not under a
  retracted/original/deprecated heading, not in a comment) and `*.sh` files;
- **retraction**: `"val_bpb": null`, a withdrawn/retracted status, or a README that says the submission was
  withdrawn: reported as retracted (PG512, info) and not audited as a claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from pgaudit.logs import RunLog
from pgaudit.readme import current_lines
from pgaudit.submission import NON_RECORD_TRACK, RECORD_TRACK, RecordFolder, track_from_path

MAX_README_BYTES = 1024 * 1024
# Lines of a README that may declare the track in prose (title, badge line, first paragraph).
_HEAD_LINES = 15
_NON_RECORD = re.compile(r"(?i)\bnon[- _]?record\b|\bunlimited[- ]compute\b")
_NOT_OURS = re.compile(r"(?i)\b(?:my|our|an?|the)\s+(?:other|earlier|previous|separate)\b[^.]{0,40}$")
_UNCONSTRAINED = re.compile(r"(?i)\bunconstrained\b|\bno (?:time|wall-?clock) (?:limit|cap)\b")
_TRACK_LINE = re.compile(r"(?i)^[\s>*_\-|]*track\b[\s*_]*[:|]")
_RECORD_TRACK = re.compile(r"(?i)\b10[- ]?min(?:ute)?s?\b|\brecord track\b|\b10min_16mb\b")
_URL = re.compile(r"\(?https?://\S+\)?|\[[^\]]*\]\([^)]*\)")
_RETRACTED_WORD = re.compile(r"(?i)\b(retracted|withdrawn)\b")
_RETRACTED_SENTENCE = re.compile(
    r"(?i)\b(?:this|the)\s+(?:submission|record|pr|pull request|claim|result|entry)s?\s+(?:is|are|has been|have been|"
    r"was|were)\s+(?:retracted|withdrawn)\b|^\W*(?:\[|\()?(?:retracted|withdrawn)\b"
)
_WITHDRAWN_STATUS = ("withdrawn", "retracted", "invalid", "invalidated")
# Names of logs that are not the submitted runs, when the content does not settle it.
_OTHER_NAME = re.compile(
    r"(?i)(?:^|[/_\-.])(?:ablations?|sweeps?|experiments?|exps?|explor\w*|old|older|prev(?:ious)?|earlier|"
    r"superseded|deprecated|debug|smoke|probe|scratch|wip|draft|v0|pre[_\-]?fix|before[_\-]?fix)(?:$|[/_\-.\d])"
)


@dataclass(frozen=True)
class LogRole:
    log: str  # the log's path in the folder
    seed: int | None
    submitted: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"log": self.log, "seed": self.seed, "submitted": self.submitted, "why": self.why}


@dataclass
class SubmissionContext:
    track: str | None  # RECORD_TRACK, NON_RECORD_TRACK or None (unknown: the record track's rules apply)
    track_source: str  # "README.md:3", "submission.json", "path" or "" when nothing says
    track_quote: str = ""
    retracted: bool = False
    retracted_why: str = ""
    retracted_at: tuple[str, int | None] = ("", None)
    roles: dict[int, LogRole] = field(default_factory=dict)  # id(run) -> role
    run_command: dict[str, str] = field(default_factory=dict)
    run_command_sources: list[str] = field(default_factory=list)

    @property
    def is_record_track(self) -> bool:
        return self.track != NON_RECORD_TRACK

    @property
    def time_caps_apply(self) -> bool:
        """R4/R5 600 s caps: the record track only (R32 waives them for non-record submissions)."""
        return self.is_record_track

    @property
    def size_cap_applies(self) -> bool:
        """R1's 16,000,000-byte cap binds every track (R32: "must satisfy the 16 MB cap")."""
        return True

    def submitted(self, run: RunLog) -> bool:
        role = self.roles.get(id(run))
        return role is None or role.submitted

    def to_dict(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "track_source": self.track_source,
            "time_caps_apply": self.time_caps_apply,
            "retracted": self.retracted,
            "retracted_why": self.retracted_why or None,
            "logs": [r.to_dict() for r in self.roles.values()],
            "run_command": {"env": self.run_command, "sources": self.run_command_sources},
        }


def build(folder: RecordFolder) -> SubmissionContext:
    readme = _readme_text(folder)
    track, source, quote = _track(folder, readme)
    context = SubmissionContext(track, source, quote)
    _retraction(folder, readme, context)
    _classify_logs(folder, context)
    _run_command(folder, context)
    return context


# --- track -------------------------------------------------------------------------------------------


def _readme_text(folder: RecordFolder) -> str:
    if folder.readme is None:
        return ""
    path = folder.root / folder.readme
    try:
        if path.stat().st_size > MAX_README_BYTES:
            return ""
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


def readme_track(text: str, name: str = "README.md") -> tuple[str | None, str, str]:
    """The track a README declares: (track, "README.md:LINE", the line) or (None, "", "")."""
    live = current_lines(text)
    for number, raw in enumerate(text.split("\n"), start=1):
        if not live[number - 1]:
            continue
        line = _URL.sub(" ", raw)
        track_line = bool(_TRACK_LINE.match(line))
        if not track_line and number > _HEAD_LINES and not re.match(r"^\s*(?:[-*]\s*\[[xX ]\]|#)", line):
            continue
        for match in _NON_RECORD.finditer(line):
            if not _NOT_OURS.search(line[: match.start()]):
                return NON_RECORD_TRACK, f"{name}:{number}", raw.strip()[:200]
        if track_line and _RECORD_TRACK.search(line):
            return RECORD_TRACK, f"{name}:{number}", raw.strip()[:200]
    return None, "", ""


def _track(folder: RecordFolder, readme: str) -> tuple[str | None, str, str]:
    if readme:
        track, source, quote = readme_track(readme, folder.readme or "README.md")
        if track is not None:
            return track, source, quote
    if folder.claims is not None and folder.claims.track is not None:
        return folder.claims.track, folder.claims.path, str(folder.claims.data.get("track", ""))[:200]
    if folder.claims is not None and not folder.claims.error:
        for key in ("blurb", "description", "name", "notes"):  # "trained 100k steps unconstrained"
            value = folder.claims.data.get(key)
            if isinstance(value, str) and (_NON_RECORD.search(value) or _UNCONSTRAINED.search(value)):
                return NON_RECORD_TRACK, f"{folder.claims.path} {key}", value[:200]
    by_path = track_from_path(folder.root)
    if by_path is not None:
        return by_path, "path", ""
    return None, "", ""


# --- retraction ------------------------------------------------------------------------------------------


def _retraction(folder: RecordFolder, readme: str, context: SubmissionContext) -> None:
    claims = folder.claims
    if claims is not None and not claims.error:
        data = claims.data
        if "val_bpb" in data and data["val_bpb"] is None:
            context.retracted, context.retracted_why = True, f"{claims.path} sets \"val_bpb\": null"
            context.retracted_at = (claims.path, _line_of(folder, claims.path, '"val_bpb"'))
            return
        for key in ("status", "submission_type", "state"):
            value = data.get(key)
            if isinstance(value, str) and any(w in value.lower() for w in _WITHDRAWN_STATUS):
                context.retracted, context.retracted_why = True, f"{claims.path}: \"{key}\": \"{value[:80]}\""
                context.retracted_at = (claims.path, _line_of(folder, claims.path, f'"{key}"'))
                return
    if not readme:
        return
    for number, raw in enumerate(readme.split("\n")[:_HEAD_LINES], start=1):
        line = _URL.sub(" ", raw)
        heading = line.lstrip().startswith("#")
        if (heading and _RETRACTED_WORD.search(line) and number <= 3) or _RETRACTED_SENTENCE.search(line.strip("*_> ")):
            context.retracted = True
            context.retracted_why = f"{folder.readme}:{number}: {raw.strip()[:160]}"
            context.retracted_at = (folder.readme or "README.md", number)
            return


def _line_of(folder: RecordFolder, rel: str, needle: str) -> int | None:
    try:
        text = (folder.root / rel).read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    for number, line in enumerate(text.split("\n"), start=1):
        if needle in line:
            return number
    return None


# --- which logs are the submitted runs ----------------------------------------------------------------------


def _classify_logs(folder: RecordFolder, context: SubmissionContext) -> None:
    from pgaudit.evidence import metric_matches, seed_in_file_name, seed_of_run

    claims = folder.claims if folder.claims is not None and not folder.claims.error else None
    runs = folder.runs()
    claimed_seeds = set(claims.seeds) if claims is not None else set()
    per_seed = claims.per_seed if claims is not None else {}
    headline = claims.val_bpb if claims is not None else None

    def own_claim(seed: int | None):  # type: ignore[no-untyped-def]
        entry = per_seed.get(seed) if seed is not None else None
        return entry.val_bpb if entry is not None else None

    def matches_own(run: RunLog) -> bool:
        own = own_claim(seed_of_run(run)[0])
        return own is not None and any(metric_matches(own, m) for m in run.final_metrics)

    # Seeds whose claimed score a training run reproduces: another training run of that seed with another
    # score is a rerun or an earlier version. (An eval-only log matching the claim, e.g. a TTT re-evaluation
    # of the saved artifact, does not retire the training run that produced the artifact.)
    reproduced = {seed_of_run(r)[0] for r in runs if r.train_time_ms is not None and matches_own(r)}
    for run in runs:
        seed, _ = seed_of_run(run)
        finals = run.final_metrics
        name = run.name
        own = own_claim(seed)
        # A file named for a claimed seed whose log prints another seed (PR #1626's train_seed0.log logs
        # seed 1337) is still that seed's submitted run: PG507 reports the contradiction.
        named_claimed = seed_in_file_name(PurePosixPath(name).name) in claimed_seeds
        if own is not None and matches_own(run):
            role = LogRole(name, seed, True, f"its score matches the claimed {own.key} = {own.value}")
        elif (seed is None or named_claimed) and any(sc.val_bpb is not None and metric_matches(sc.val_bpb, m)
                                  for sc in per_seed.values() for m in finals):
            role = LogRole(name, seed, True, "its score matches a claimed per-seed value")
        elif headline is not None and len(claimed_seeds) <= 1 and any(metric_matches(headline, m) for m in finals):
            role = LogRole(name, seed, True, f"its score matches the claimed {headline.key} = {headline.value}")
        elif own is not None and finals and seed in reproduced and run.train_time_ms is not None:
            shown = run.scored.bpb_text if run.scored else finals[-1].bpb_text
            role = LogRole(name, seed, False, f"seed {seed} is claimed with {own.key} = {own.value}, which another "
                           f"training log of that seed shows; this one ends at {shown}: a rerun or an earlier version")
        elif seed is not None and claimed_seeds and seed not in claimed_seeds and finals and not named_claimed:
            role = LogRole(name, seed, False, f"seed {seed} is not among the claimed seeds "
                           f"({', '.join(str(s) for s in sorted(claimed_seeds))}) and its score matches no claim")
        elif _OTHER_NAME.search(PurePosixPath(name).as_posix()):
            role = LogRole(name, seed, False, "named as an ablation, sweep, experiment or earlier version, and its "
                           "score matches no claim")
        else:
            role = LogRole(name, seed, True, "no claim or name says otherwise")
        context.roles[id(run)] = role
    if runs and not any(r.submitted for r in context.roles.values()):
        # Nothing matched: judge every log rather than none (the claims may be stale, not the logs fake).
        for run in runs:
            old = context.roles[id(run)]
            context.roles[id(run)] = LogRole(old.log, old.seed, True, old.why + "; kept, as no log matched the claims")


# --- the current run command -------------------------------------------------------------------------------


def _run_command(folder: RecordFolder, context: SubmissionContext) -> None:
    from pgaudit.analysis.runcmd import documented_env

    env, sources = documented_env(folder.root)
    context.run_command = env
    context.run_command_sources = sources

"""A record folder: its files, track, claims (submission.json) and run logs (catalogue R29).

Early accepted records used nonstandard names (`train.log`, `train_seed*.log`, `logs/train0.txt`,
`ternary_log_42.txt`, `train_v0.txt`, `submission_ternary.json`, `train_gpt_cuda_ternary.py`), so files are
found by pattern and by content rather than by exact name.

Bad inputs and how they surface (never a traceback):
- the folder itself missing or not a directory: `InputError` (one line, exit 2);
- a malformed or non-object submission JSON: kept as `Claims.error`, reported by PG506 as a finding, so
  the logs are still audited;
- an unreadable, binary or oversized log: an `InputProblem` in `RecordFolder.problems` (the report's
  errors), the other logs are still audited.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgaudit.errors import InputError
from pgaudit.findings import InputProblem
from pgaudit.jsonpos import JsonPath, key_lines
from pgaudit.jsonsafe import loads_strict
from pgaudit.logs import RunLog, read_log
from pgaudit.source.guards import path_problem
from pgaudit.source.program import find_entries, inside

if TYPE_CHECKING:
    from pgaudit.context import SubmissionContext

RECORD_TRACK = "track_10min_16mb"
NON_RECORD_TRACK = "track_non_record_16mb"

MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_FILES = 5_000
# Folders deeper than this below the record folder are not searched for logs.
MAX_LOG_DEPTH = 2
_LOG_SUFFIXES = (".log", ".txt")
_NOT_LOGS = re.compile(r"^(?:requirements|readme|license|notes?|changelog)\b", re.IGNORECASE)
_SUBMISSION_JSON = re.compile(r"^submission[\w\-]*\.json$", re.IGNORECASE)
_README = re.compile(r"^readme(?:\.md|\.markdown|\.txt)?$", re.IGNORECASE)

# Claim keys seen in accepted submission.json files, most specific first.
VAL_BPB_KEYS = ("val_bpb", "mean_val_bpb", "val_bpb_mean", "mean_bpb")
VAL_LOSS_KEYS = ("val_loss", "mean_val_loss", "val_loss_nats", "mean_val_loss_nats")
TOTAL_BYTES_KEYS = ("bytes_total", "total_submission_bytes_max", "artifact_bytes_max", "artifact_bytes",
                    "artifact_size_bytes")
CODE_BYTES_KEYS = ("bytes_code", "code_bytes")
AUTHOR_KEYS = ("author", "github_id", "authors", "github", "github_user", "user")
SEED_RESULT_KEYS = ("seed_results", "seeds", "per_seed", "results")
PER_SEED_BPB_KEYS = ("val_bpb", "bpb", "final_val_bpb")
PER_SEED_LOSS_KEYS = ("val_loss", "loss")
PER_SEED_BYTES_KEYS = ("artifact_bytes", "bytes_total", "total_bytes", "bytes")
METHOD_KEYS = ("val_bpb_method", "eval_method")


@dataclass(frozen=True)
class Claim:
    """One value claimed in submission.json, with where it is written."""

    key: str  # dotted path as written: "val_bpb", "seed_results.42.val_bpb"
    value: Any
    line: int | None
    text: str  # the JSON line, for evidence

    def quote(self, path: str) -> str:
        where = f"{path}:{self.line}" if self.line else path
        text = self.text.strip()
        if text and len(text) <= 200:
            return f"{where}: {text}"
        return f"{where}: \"{self.key}\": {json.dumps(self.value)[:200]}"  # a minified or very long line


@dataclass(frozen=True)
class SeedClaim:
    seed: int
    val_bpb: Claim | None
    val_loss: Claim | None
    total_bytes: Claim | None


@dataclass
class Claims:
    path: str  # relative to the folder
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why the file could not be read as a JSON object
    val_bpb: Claim | None = None
    val_loss: Claim | None = None
    total_bytes: Claim | None = None
    code_bytes: Claim | None = None
    author: Claim | None = None
    method: Claim | None = None
    seeds: list[int] = field(default_factory=list)
    seeds_claim: Claim | None = None
    per_seed: dict[int, SeedClaim] = field(default_factory=dict)
    track: str | None = None


@dataclass
class RecordFolder:
    root: Path
    display: str
    track: str | None  # RECORD_TRACK, NON_RECORD_TRACK, or None when neither the path nor the JSON says
    files: list[str] = field(default_factory=list)
    readme: str | None = None
    claims: Claims | None = None
    extra_claims: list[Claims] = field(default_factory=list)  # further submission*.json files
    logs: list[RunLog] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    data_only: bool = False  # a fixture tree that kept only data files (no README, no scripts)

    @property
    def is_record_track(self) -> bool:
        """Record-track rules apply unless the submission context says non-record (README, JSON, path: R32)."""
        return self.context.is_record_track

    @cached_property
    def context(self) -> SubmissionContext:
        """The one submission context (track, policy, submitted runs, run command, retraction): pgaudit.context."""
        from pgaudit.context import build

        return build(self)

    def runs(self) -> list[RunLog]:
        """Every run of every log (a file may hold several runs)."""
        return [run for log in self.logs for run in log.all_runs]

    def submitted_runs(self) -> list[RunLog]:
        """The runs the submission claims: not the ablations, sweeps, reruns and earlier versions next to them."""
        return [run for run in self.runs() if self.context.submitted(run)]


# --- loading -----------------------------------------------------------------------------------------


def load_record_folder(path: Path, display: str | None = None) -> RecordFolder:
    if not path.exists():
        raise InputError(display or str(path), "no such folder")
    if not path.is_dir():
        raise InputError(display or str(path), "not a folder (expected a record folder)")
    root = path
    folder = RecordFolder(root=root, display=display or path.name, track=track_from_path(root))
    folder.files = _list_files(folder)
    folder.data_only = is_data_only_tree(root)
    folder.readme = next((f for f in folder.files if "/" not in f and _README.match(f)), None)
    folder.scripts = [p.relative_to(root).as_posix() for p in find_entries(root)] if not folder.data_only else []
    json_files = [f for f in folder.files if "/" not in f and _SUBMISSION_JSON.match(f)]
    json_files.sort(key=lambda f: (f.lower() != "submission.json", f))
    if json_files:
        folder.claims = read_claims(root / json_files[0], json_files[0])
        folder.extra_claims = [read_claims(root / f, f) for f in json_files[1:]]
        for claims in [folder.claims, *folder.extra_claims]:  # bad input: also an input error (exit 2)
            if claims.error:
                folder.problems.append(InputProblem(claims.path, claims.error))
    if folder.track is None and folder.claims is not None:
        folder.track = folder.claims.track
    _load_logs(folder)
    return folder


def track_from_path(path: Path) -> str | None:
    for part in reversed(path.resolve().parts):
        if part.startswith("track_"):
            return NON_RECORD_TRACK if "non_record" in part else RECORD_TRACK if part == RECORD_TRACK else part
    return None


def is_data_only_tree(path: Path) -> bool:
    """True under a fixture tree whose INDEX.json says only data files were copied."""
    for parent in list(path.resolve().parents)[:4]:
        index = parent / "INDEX.json"
        if index.is_file():
            try:
                source = json.loads(index.read_text(encoding="utf-8")).get("source", "")
            except (OSError, ValueError, AttributeError):
                return False
            return "data files only" in str(source)
    return False


def _list_files(folder: RecordFolder) -> list[str]:
    """Regular files up to MAX_LOG_DEPTH below the folder; links that leave it are refused."""
    root = folder.root
    out = []
    for p in sorted(_walk(root, MAX_LOG_DEPTH)):
        rel = p.relative_to(root).as_posix()
        problem = path_problem(p)
        if problem and problem != "not a regular file (a FIFO, socket or device); refused":
            folder.problems.append(InputProblem(rel, problem))
        elif not inside(p, root):
            folder.problems.append(InputProblem(rel, "path escapes the audited folder (symlink); refused"))
        elif p.is_file():
            out.append(rel)
        if len(out) >= MAX_FILES:
            folder.problems.append(InputProblem(".", f"more than {MAX_FILES:,} files; the rest were not read"))
            break
    return out


def _walk(root: Path, depth: int) -> list[Path]:
    out: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return out
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            if depth > 0:
                out.extend(_walk(entry, depth - 1))
        else:
            out.append(entry)
    return out


def _load_logs(folder: RecordFolder) -> None:
    for rel in folder.files:
        name = rel.rsplit("/", 1)[-1]
        if not name.lower().endswith(_LOG_SUFFIXES) or _NOT_LOGS.match(name):
            continue
        try:
            run = read_log(folder.root / rel, rel)
        except InputError as exc:
            folder.problems.append(InputProblem(rel, exc.detail))
            continue
        if any(_is_train_log(r) for r in run.all_runs):
            folder.logs.append(run)


def _is_train_log(run: RunLog) -> bool:
    return bool(run.metrics or run.sizes or run.train_time_ms is not None or run.hyperparameters)


# --- claims ------------------------------------------------------------------------------------------


def read_claims(path: Path, display: str) -> Claims:
    claims = Claims(path=display)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            claims.error = f"{size:,} bytes, over the {MAX_JSON_BYTES:,}-byte limit for submission JSON"
            return claims
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        claims.error = f"cannot read: {exc.strerror or exc}"
        return claims
    except UnicodeDecodeError:
        claims.error = "not UTF-8 text"
        return claims
    try:
        data = loads_strict(text)
    except ValueError as exc:
        claims.error = f"not valid JSON ({exc})"
        return claims
    if not isinstance(data, dict):
        claims.error = f"expected a JSON object, got {type(data).__name__}"
        return claims
    claims.data = data
    _extract_claims(claims, text)
    return claims


def _extract_claims(claims: Claims, text: str) -> None:
    positions = key_lines(text)
    lines = text.split("\n")
    data = claims.data

    def claim(path: JsonPath) -> Claim | None:
        value: Any = data
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        line = positions.get(path)
        line_text = lines[line - 1] if line and line <= len(lines) else ""
        return Claim(".".join(str(p) for p in path), value, line, line_text)

    def first(keys: tuple[str, ...], numeric: bool = False, base: JsonPath = ()) -> Claim | None:
        for key in keys:
            found = claim((*base, key))
            if found is not None and (not numeric or _is_number(found.value)):
                return found
        return None

    claims.val_bpb = first(VAL_BPB_KEYS, numeric=True)
    claims.val_loss = first(VAL_LOSS_KEYS, numeric=True)
    claims.total_bytes = first(TOTAL_BYTES_KEYS, numeric=True)
    claims.code_bytes = first(CODE_BYTES_KEYS, numeric=True)
    claims.author = next((c for c in (claim((k,)) for k in AUTHOR_KEYS) if c and str(c.value).strip()), None)
    claims.method = first(METHOD_KEYS)
    claims.track = _normalize_track(data.get("track"))
    _extract_seeds(claims, claim)


def _extract_seeds(claims: Claims, claim) -> None:  # type: ignore[no-untyped-def]
    data = claims.data
    for key in SEED_RESULT_KEYS:
        table = data.get(key)
        if isinstance(table, dict):
            for seed_key, entry in table.items():
                seed = _seed_of(seed_key)
                if seed is None or not isinstance(entry, dict):
                    continue
                base = (key, seed_key)
                claims.per_seed[seed] = SeedClaim(
                    seed,
                    _first_numeric(claim, base, PER_SEED_BPB_KEYS),
                    _first_numeric(claim, base, PER_SEED_LOSS_KEYS),
                    _first_numeric(claim, base, PER_SEED_BYTES_KEYS),
                )
            if claims.per_seed:
                claims.seeds_claim = claim((key,))
                break
    listed = data.get("seeds")
    if isinstance(listed, list) and all(_seed_of(s) is not None for s in listed):
        claims.seeds = [_seed_of(s) for s in listed]  # type: ignore[misc]
        claims.seeds_claim = claim(("seeds",))
    elif claims.per_seed:
        claims.seeds = list(claims.per_seed)
    elif _seed_of(data.get("seed")) is not None:
        claims.seeds = [_seed_of(data["seed"])]  # type: ignore[list-item]
        claims.seeds_claim = claim(("seed",))


def _first_numeric(claim, base: JsonPath, keys: tuple[str, ...]) -> Claim | None:  # type: ignore[no-untyped-def]
    for key in keys:
        found = claim((*base, key))
        if found is not None and _is_number(found.value):
            return found
    return None


def _seed_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(?:seed[_\- ]?)?(-?\d+)\s*", value, re.IGNORECASE)
        return int(match.group(1)) if match else None
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _normalize_track(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.lower().replace("-", "_")
    if "non_record" in text or "unlimited" in text:
        return NON_RECORD_TRACK
    if "10min" in text:
        return RECORD_TRACK
    return None

"""The index of accepted records: fingerprints of every record under `PATH/records/`, cached on disk.

The cache lives in `--cache-dir`, else `$PGAUDIT_CACHE_DIR`, else `$XDG_CACHE_HOME/pgaudit`, else
`~/.cache/pgaudit`. A whole index is keyed by the records tree's git id (when read from git) or by the
content of every record; each record is also cached by its own content, so a new commit re-fingerprints only
the records it changed. Nothing is executed: records are loaded with `load_program` (payloads unwrapped,
imported and exec'd siblings followed) and parsed.

PR numbers and merge order come from git when PATH is a clone: the first-parent history of `records/`
names the pull request that added each folder ("Merge pull request #N", "Merge PR #N:", "... (#N)").
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pgaudit.errors import InputError, PgauditError
from pgaudit.lineage.claims import VERSION as CLAIMS_VERSION
from pgaudit.lineage.claims import BaseClaim, read_claims
from pgaudit.lineage.fingerprint import FORMAT, Entry, ProgramPrint, fingerprint_program

INDEX_SCHEMA = "pgaudit.lineage-index/1"
_HASHED = ("README.md", "submission.json")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")
_PR_SUBJECT = re.compile(r"(?:Merge pull request #|Merge PR #|\(#)(\d+)")
MAX_FILE_BYTES = 8 * 1024 * 1024
GIT_TIMEOUT_S = 120


@dataclass
class Record:
    path: str  # records/track_*/<name>
    content: str  # hash of the files that decide its prints and claims
    date: str = ""
    order: int | None = None  # merge position in the history (0 = first), when known
    prs: list[int] = field(default_factory=list)
    claims: list[BaseClaim] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def label(self) -> str:
        prs = ", ".join(f"PR #{n}" for n in self.prs)
        return f"{self.path}" + (f" ({prs})" if prs else "")

    def earlier_than(self, other: Record) -> bool:
        if self.order is not None and other.order is not None:
            return self.order < other.order
        return bool(self.date and other.date and self.date < other.date)

    def prints(self) -> Counter[str]:
        return Counter(e.fingerprint for e in self.entries)

    def to_dict(self) -> dict:
        return {
            "path": self.path, "content": self.content, "date": self.date, "order": self.order, "prs": self.prs,
            "claims": [c.to_dict() for c in self.claims], "entries": [e.to_dict() for e in self.entries],
            "error": self.error,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        return cls(
            data["path"], data["content"], data.get("date", ""), data.get("order"), list(data.get("prs", [])),
            [BaseClaim.from_dict(c) for c in data.get("claims", [])],
            [Entry.from_dict(e) for e in data.get("entries", [])], data.get("error"),
        )  # fmt: skip


@dataclass
class Index:
    key: str
    records: list[Record]
    cache: Cache | None = None
    root: Path | None = None  # where the records' files are, while they exist

    def by_path(self) -> dict[str, Record]:
        return {r.path: r for r in self.records}

    def by_pr(self, number: int) -> list[Record]:
        return [r for r in self.records if number in r.prs]

    def texts(self, record: Record) -> dict[str, tuple[list[int], list[str]]]:
        """The record's entry sources, for diffs: from the cache, else re-read from the files."""
        if self.cache is not None:
            cached = self.cache.load_record(record.content)
            try:
                if cached is not None:
                    return {k: (list(v[0]), list(v[1])) for k, v in cached.get("texts", {}).items()}
            except (TypeError, KeyError, IndexError, AttributeError):
                pass
        if self.root is not None:
            _, prints = _fingerprint_folder(self.root / record.path)
            if prints is not None:
                return prints.texts
        return {}

    def to_dict(self) -> dict:
        return {"schema": INDEX_SCHEMA, "format": FORMAT, "key": self.key,
                "records": [r.to_dict() for r in self.records]}


# --- the cache ------------------------------------------------------------------------------------------


class Cache:
    def __init__(self, directory: Path) -> None:
        self.dir = directory / f"lineage-v{FORMAT}"

    @classmethod
    def default(cls, override: Path | None = None) -> Cache | None:
        if override is not None:
            return cls(override)
        env = os.environ.get("PGAUDIT_CACHE_DIR")
        if env:
            return cls(Path(env))
        xdg = os.environ.get("XDG_CACHE_HOME")
        try:
            base = Path(xdg) if xdg else Path.home() / ".cache"
        except RuntimeError:  # no home folder: no cache
            return None
        return cls(base / "pgaudit")

    def _read(self, path: Path) -> dict | None:
        try:
            data = json.loads(gzip.decompress(path.read_bytes()))
        except (OSError, ValueError, EOFError):
            return None
        return data if isinstance(data, dict) else None

    def _write(self, path: Path, data: dict) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            tmp.write_bytes(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), compresslevel=5))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs time

    def load_index(self, key: str) -> Index | None:
        data = self._read(self.dir / f"index-{key}.json.gz")
        if data is None or data.get("schema") != INDEX_SCHEMA:
            return None
        try:
            return Index(key, [Record.from_dict(r) for r in data["records"]], self)
        except (KeyError, TypeError):
            return None

    def store_index(self, index: Index) -> None:
        self._write(self.dir / f"index-{index.key}.json.gz", index.to_dict())

    def load_record(self, content: str) -> dict | None:
        return self._read(self.dir / "records" / f"{content}.json.gz")

    def store_record(self, content: str, data: dict) -> None:
        self._write(self.dir / "records" / f"{content}.json.gz", data)


# --- building ---------------------------------------------------------------------------------------------


def record_folders(records: Path) -> list[Path]:
    """`records/<track>/<name>/` folders holding a Python script."""
    if not records.is_dir():
        raise InputError(str(records), "no records/ folder here (give the root of a clone of the challenge repository)")
    out = []
    for track in sorted(p for p in records.iterdir() if p.is_dir() and not p.is_symlink()):
        for folder in sorted(p for p in track.iterdir() if p.is_dir() and not p.is_symlink()):
            if any(folder.glob("*.py")):
                out.append(folder)
    return out


def content_hash(folder: Path) -> str:
    digest = hashlib.sha256(f"format {FORMAT} claims {CLAIMS_VERSION}\n".encode())
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                   and (p.suffix == ".py" or p.name in _HASHED))
    for path in files:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        digest.update(f"{path.relative_to(folder).as_posix()}\0{len(data)}\0".encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:32]


def build_index(root: Path, cache: Cache | None = None, jobs: int | None = None, git_rev: str | None = None,
                key: str | None = None) -> Index:
    """Fingerprint every record under `root/records/` (cached). `git_rev`: read PRs and merge order from git."""
    folders = record_folders(root / "records")
    history = git_history(root, git_rev or "HEAD") if _is_git(root) or git_rev else {}
    hashes = {f: content_hash(f) for f in folders}
    if key is None:
        digest = hashlib.sha256(f"{INDEX_SCHEMA} {FORMAT}\n".encode())
        for folder in folders:
            rel = folder.relative_to(root).as_posix()
            digest.update(f"{rel}\0{hashes[folder]}\0{history.get(rel)}\n".encode())
        key = "c" + digest.hexdigest()[:32]
    if cache is not None:
        found = cache.load_index(key)
        if found is not None:
            found.root = root
            return found
    records: dict[Path, Record] = {}
    todo: list[Path] = []
    for folder in folders:
        rel = folder.relative_to(root).as_posix()
        order, prs = history.get(rel, (None, []))
        date = _date(folder)
        records[folder] = Record(rel, hashes[folder], date, order, prs)
        cached = cache.load_record(hashes[folder]) if cache is not None else None
        try:
            if cached is None:
                raise ValueError("not cached")
            _fill(records[folder], cached)
        except (ValueError, TypeError, KeyError):  # absent or damaged: fingerprint again
            todo.append(folder)
    for folder, data in _fingerprint_all(todo, jobs):
        _fill(records[folder], data)
        if cache is not None:
            cache.store_record(hashes[folder], data)
    for record in records.values():  # claims name the record's own PR too ("PR #363 | Non-record")
        record.claims = [c for c in record.claims if not (c.kind == "pr" and int(c.value) in record.prs)]
    index = Index(key, list(records.values()), cache, root)
    if cache is not None:
        cache.store_index(index)
    return index


def _fill(record: Record, data: dict) -> None:
    record.entries = [Entry.from_dict(e) for e in data.get("entries", [])]
    record.claims = [BaseClaim.from_dict(c) for c in data.get("claims", [])]
    record.error = data.get("error")


def _date(folder: Path) -> str:
    match = _DATE.match(folder.name)
    return match.group(1) if match else ""


def _fingerprint_all(folders: list[Path], jobs: int | None) -> list[tuple[Path, dict]]:
    jobs = jobs or min(os.cpu_count() or 1, 8)
    if jobs <= 1 or len(folders) < 4:
        return [(f, _record_data(f)) for f in folders]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(zip(folders, pool.map(_record_data, folders, chunksize=2), strict=True))


def _record_data(folder: Path) -> dict:
    error, prints = _fingerprint_folder(folder)
    return {
        "entries": [e.to_dict() for e in prints.entries] if prints else [],
        "texts": {k: [v[0], v[1]] for k, v in prints.texts.items()} if prints else {},
        "claims": [c.to_dict() for c in read_claims(folder)],
        "error": error,
    }


def _fingerprint_folder(folder: Path) -> tuple[str | None, ProgramPrint | None]:
    """The prints of every entry script of the folder, merged (a module two entries share counts once)."""
    from pgaudit.source.program import find_entries, load_program

    folder = folder.resolve()
    merged = ProgramPrint()
    errors = []
    for entry in find_entries(folder):
        try:
            program = load_program(entry, folder)
        except PgauditError as exc:
            errors.append(str(exc))
            continue
        prints = fingerprint_program(program)
        keys = {e.key for e in merged.entries}
        for e in prints.entries:
            if e.key not in keys:
                merged.entries.append(e)
                merged.texts[e.key] = prints.texts.get(e.key, ([], []))
    if not merged.entries:
        return ("; ".join(errors) or "no Python entry script"), None
    return ("; ".join(errors) or None), merged


# --- git ------------------------------------------------------------------------------------------------


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    env = {**os.environ, "GIT_LITERAL_PATHSPECS": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(["git", "-C", str(root), "-c", "core.quotePath=false", *args], input=stdin,
                              capture_output=True, env=env, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(str(root), f"git {args[0]} failed: {exc}") from None
    if proc.returncode != 0:
        line = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(str(root), f"git {args[0]} failed: {line[0] if line else proc.returncode}")
    return proc.stdout


def _is_git(root: Path) -> bool:
    try:
        return _git(root, "rev-parse", "--show-toplevel").decode().strip() == str(root.resolve())
    except InputError:
        return False


def git_history(root: Path, rev: str) -> dict[str, tuple[int, list[int]]]:
    """records/track/name -> (merge position, PR numbers) from the first-parent history of `rev`."""
    try:
        out = _git(root, "log", "--format=%x01%s", "--name-only", "--diff-filter=A", "-m", "--first-parent",
                   "--end-of-options", rev, "--", "records/").decode("utf-8", "replace")
    except InputError:
        return {}
    commits = [c for c in out.split("\x01") if c.strip()]
    found: dict[str, tuple[int, list[int]]] = {}
    for position, chunk in enumerate(reversed(commits)):  # oldest first
        subject, _, files = chunk.partition("\n")
        prs = [int(n) for n in _PR_SUBJECT.findall(subject)][:1]
        for line in files.splitlines():
            parts = line.strip().split("/")
            if len(parts) >= 4 and parts[0] == "records":
                folder = "/".join(parts[:3])
                if folder not in found:
                    found[folder] = (position, prs)
    return found


def index_from_git(repo: Path, rev: str, cache: Cache | None = None, jobs: int | None = None) -> Index:
    """The index of the records tree at `rev` of a git repository (bare or not), read with `git archive`."""
    tree = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}:records").decode().strip()
    key = f"g{tree[:40]}"
    if cache is not None:
        found = cache.load_index(key)
        if found is not None:
            return found
    data = _git(repo, "archive", "--format=tar", "--end-of-options", rev, "records")
    with tempfile.TemporaryDirectory(prefix="pgaudit-lineage-") as tmp:
        root = Path(tmp)
        _extract(data, root)
        history = git_history(repo, rev)
        index = _build_with_history(root, history, cache, jobs, key)
        index.root = None  # the files go with the temporary folder
        return index


def _build_with_history(root: Path, history: dict, cache: Cache | None, jobs: int | None, key: str) -> Index:
    index = build_index(root, cache=None, jobs=jobs, key=key) if cache is None else None
    if index is None:
        index = build_index(root, cache=_RecordOnlyCache(cache), jobs=jobs, key=key)
    for record in index.records:
        order, prs = history.get(record.path, (None, []))
        record.order, record.prs = order, prs
        record.claims = [c for c in record.claims if not (c.kind == "pr" and int(c.value) in prs)]
    if cache is not None:
        index.cache = cache
        cache.store_index(index)
    return index


class _RecordOnlyCache(Cache):
    """Per-record caching while an index is built; the index itself is stored once its history is known."""

    def __init__(self, inner: Cache) -> None:
        self.dir = inner.dir

    def load_index(self, key: str) -> Index | None:
        return None

    def store_index(self, index: Index) -> None:
        pass


def _extract(data: bytes, root: Path) -> None:
    """Regular files and folders only, never outside `root` (a tree from git is still untrusted input)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            parts = Path(member.name).parts
            if member.name.startswith("/") or ".." in parts:
                continue
            target = root.joinpath(*parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile() and member.size <= MAX_FILE_BYTES * 4:
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(handle.read())

"""The one findings model every rule, validator and renderer shares.

A `Report` is the one audit result the driver (`pgaudit.engine`) produces for `check`, `ci` and `review`:
findings, input errors, the files read, and per record folder what ran (`FolderAudit`: rules, validators,
scripts, the claims the title needs, the submission-context slot). Renderers (text, json, sarif, github,
markdown) and the review only read it. The JSON form is versioned by `SCHEMA_VERSION` and documented in
docs/json-schema.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


class Severity(enum.IntEnum):
    """Ordered so that `severity >= Severity.WARNING` reads naturally."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (expected error, warning or info)") from None


class Confidence(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Location:
    """Where a finding is, in the code that actually runs.

    `path` is relative to the audited folder (or the file name for a single file). For code inside a
    self-extracting payload, `line` is the payload's own line and `wrapper_line` the line of the
    `exec(...)` in the committed file that carries it.
    """

    path: str
    line: int | None = None
    end_line: int | None = None
    in_payload: bool = False
    wrapper_line: int | None = None

    def display(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        if self.in_payload:
            where += f" (inside the compressed payload exec'd at line {self.wrapper_line})"
        return where


@dataclass(frozen=True)
class Reachability:
    """Whether the code runs, under the default environment and under the logged run configuration.

    `None` means "not determined" (no logs, or a condition that is not a constant).
    """

    default: bool | None
    logged: bool | None = None
    detail: str = ""
    official: bool | None = None  # under the official 8-GPU torchrun launch (WORLD_SIZE=8)
    documented: bool | None = None  # with the documented run command's variables over the defaults
    # `logged` is None only because of conditions on values the program computes as it runs (`epoch == last`,
    # a rank): the submitted run reaches the code as far as its configuration goes, so it may run
    runtime_only: bool = False

    @property
    def effective(self) -> bool | None:
        """The verdict that decides severity. What runs is decided by the code's defaults plus the documented run
        command; logs are claims: they may show that code ran (raise) or settle what the code cannot (explain),
        but never turn off code that the defaults or the documented command run. Code the logged run reaches
        up to a condition no configuration decides may run, whatever the defaults say."""
        base = self.documented if self.documented is not None else self.default
        if self.logged is True or base is True:
            return True
        if self.logged is False:
            return False
        if self.logged is None and self.runtime_only:
            return None
        return base

    @property
    def logs_disagree(self) -> bool:
        """The logs say it did not run, but the code's defaults (or the documented command) run it."""
        base = self.documented if self.documented is not None else self.default
        return self.logged is False and base is True


@dataclass
class Finding:
    code: str
    name: str
    severity: Severity
    confidence: Confidence
    message: str
    location: Location
    catalogue_ids: tuple[str, ...] = ()
    ruling_urls: tuple[str, ...] = ()
    fix: str = ""
    condition: str | None = None  # C1..C4 of the field guide, when the rule enforces one
    reachability: Reachability | None = None  # None for findings about files rather than code
    evidence: tuple[str, ...] = ()  # quoted code or log lines that back the finding
    related: tuple[Location, ...] = ()  # other places that make up the pattern
    suppressed: bool = False
    suppression_reason: str | None = None
    # Numbered source lines around the finding, taken by the driver from the code it audited (the decoded
    # payload for payload code), so renderers never re-read files or re-unwrap payloads. Not in the JSON.
    excerpt: tuple[tuple[int, str], ...] = ()
    suppression_kind: str | None = None  # "inSource" (a `# pgaudit: ignore` directive) or "external" (baseline)

    @property
    def reachable(self) -> bool | None:
        return None if self.reachability is None else self.reachability.effective

    def sort_key(self) -> tuple[Any, ...]:
        return (self.location.path, self.location.line or 0, self.code)

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.label,
            "confidence": self.confidence.label,
            "path": loc.path,
            "line": loc.line,
            "end_line": loc.end_line,
            "in_payload": loc.in_payload,
            "wrapper_line": loc.wrapper_line,
            "reachable": self.reachable,
            "reachability": None
            if self.reachability is None
            else {
                "default": self.reachability.default,
                "logged": self.reachability.logged,
                "official_launch": self.reachability.official,
                "documented": self.reachability.documented,
                "detail": self.reachability.detail,
            },
            "condition": self.condition,
            "message": self.message,
            "catalogue_ids": list(self.catalogue_ids),
            "ruling_urls": list(self.ruling_urls),
            "fix": self.fix,
            "evidence": list(self.evidence),
            "related": [{"path": r.path, "line": r.line, "in_payload": r.in_payload} for r in self.related],
            "suppressed": self.suppressed,
            "suppression_reason": self.suppression_reason,
            "suppression_kind": self.suppression_kind,
        }


@dataclass(frozen=True)
class AuditedFile:
    """A file that was read, with what the audit learned about its form."""

    path: str
    sha256: str
    lines: int
    bytes: int
    role: str  # "entry", "module", "log", "json", ...
    payload: dict[str, Any] | None = None  # {"wrapper_line", "codec", "lines", "bytes"} when unwrapped

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "lines": self.lines,
            "bytes": self.bytes,
            "role": self.role,
            "payload": self.payload,
        }


@dataclass(frozen=True)
class InputProblem:
    """An input that could not be audited (the run still reports what it could)."""

    path: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message}


@dataclass
class FolderAudit:
    """What the audit of one record folder (or one script) did: the facts renderers and the review need."""

    path: str  # display path of the folder ("" when it is the display root)
    scripts: int = 0  # entry programs the rules ran on
    programs: tuple[str, ...] = ()  # their entry scripts' display paths
    rules: tuple[str, ...] = ()  # static rule codes run on each of those programs
    validators: tuple[str, ...] = ()  # PG5xx validator codes run on the folder (empty: not a record folder)
    claims: dict[str, str] = field(default_factory=dict)  # name, val_bpb, author from submission.json
    context: Any = None  # submission context (track, policy, run command...), filled by pgaudit.submission


@dataclass
class Report:
    target: str
    files: list[AuditedFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[InputProblem] = field(default_factory=list)
    run_config: dict[str, Any] = field(default_factory=dict)
    tool_version: str = ""
    folders: list[FolderAudit] = field(default_factory=list)
    # Catalogue entries (pgaudit.codes.CodeInfo) of every code that ran or was found, filled by the driver:
    # what renderers say about a code. Not in the JSON (the codes are documented by `pgaudit rules`).
    codes: dict[str, Any] = field(default_factory=dict)

    def merge(self, other: Report) -> None:
        """Append another (one folder's) result, in order: how `--jobs` workers' results are joined."""
        self.files.extend(other.files)
        self.findings.extend(other.findings)
        self.errors.extend(other.errors)
        self.folders.extend(other.folders)
        self.suppressions.extend(other.suppressions)
        self.submissions.update(other.submissions)

    def folder(self, path: str) -> FolderAudit | None:
        return next((f for f in self.folders if f.path == path), None)
    # Every inline suppression met, honoured or not (the gate does not honour them), and what applied.
    suppressions: list[dict[str, Any]] = field(default_factory=list)
    # Per record folder: the submission context the validators read (track and its source, retraction, which
    # logs are the submitted runs and why, the current run command).
    submissions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def active(self) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed]

    def worst(self) -> Severity | None:
        active = self.active()
        return max((f.severity for f in active), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "pgaudit", "version": self.tool_version},
            "target": self.target,
            "run_config": self.run_config,
            "files": [f.to_dict() for f in self.files],
            "findings": [f.to_dict() for f in sorted(self.findings, key=Finding.sort_key)],
            "errors": [e.to_dict() for e in self.errors],
            "suppressions": self.suppressions,
            "submissions": self.submissions,
        }

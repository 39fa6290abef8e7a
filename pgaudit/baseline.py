"""A baseline file of accepted findings (as semgrep's and bandit's): `--write-baseline FILE` records a report's
active findings, `--baseline FILE` marks the findings it lists as accepted (suppressed, kind "external").

A repository keeps the findings its maintainers accepted on merged records there, explicitly, instead of
letting them turn into noise. Entries match by code, path and a fingerprint of the flagged line's content
(or of the message with its numbers blanked), never by line number, so unrelated edits above a finding do
not break the match; identical entries are matched as many times as they are listed. The baseline is a
repository input: it is given on the command line (the root's maintainers), never read from an audited folder.

    {"pgaudit_baseline": 1, "findings": [{"code": "PG509", "path": "...", "fingerprint": "...", "line": 12,
                                          "message": "..."}]}
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

from pgaudit.errors import UsageError
from pgaudit.findings import Finding, Report

VERSION = 1
MAX_BYTES = 16 * 1024 * 1024
_QUOTE_PREFIX = re.compile(r"^\S+?:\d+:\s*")  # "train.log:123: " in front of a quoted log line


def fingerprint(finding: Finding) -> str:
    """What stays put when lines move: the flagged code text or quoted log text, else the message sans numbers."""
    if finding.evidence:
        context = " ".join(_QUOTE_PREFIX.sub("", finding.evidence[0]).split())
    else:
        context = re.sub(r"\d+", "#", finding.message)
    material = "\0".join((finding.code, finding.location.path, str(finding.location.in_payload), context))
    return hashlib.sha256(material.encode("utf-8", "replace")).hexdigest()[:32]


def _key(code: str, path: str, fp: str) -> tuple[str, str, str]:
    return (code.upper(), path, fp)


def write(report: Report, path: Path) -> int:
    """Write the report's active findings as a baseline; returns how many."""
    from pgaudit.atomic import write_atomic

    entries = [
        {"code": f.code, "path": f.location.path, "fingerprint": fingerprint(f), "line": f.location.line,
         "message": f.message[:200]}
        for f in sorted(report.active(), key=Finding.sort_key)
    ]
    write_atomic(path, json.dumps({"pgaudit_baseline": VERSION, "findings": entries}, indent=2) + "\n")
    return len(entries)


def load(path: Path) -> Counter[tuple[str, str, str]]:
    """The baseline's entries (a multiset); a bad file is a one-line usage error."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UsageError(f"{path}: baseline over {MAX_BYTES:,} bytes")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such baseline file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not a pgaudit baseline ({exc})") from None
    if not isinstance(data, dict) or data.get("pgaudit_baseline") != VERSION or not isinstance(data.get("findings"), list):
        raise UsageError(f"{path}: not a pgaudit baseline (expected {{\"pgaudit_baseline\": 1, \"findings\": [...]}})")
    entries: Counter[tuple[str, str, str]] = Counter()
    for item in data["findings"]:
        if not (isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("code", "path", "fingerprint"))):
            raise UsageError(f"{path}: every baseline entry needs string code, path and fingerprint")
        entries[_key(item["code"], item["path"], item["fingerprint"])] += 1
    return entries


def apply(report: Report, entries: Counter[tuple[str, str, str]], label: str) -> int:
    """Mark the report's findings the baseline lists as accepted; returns how many matched."""
    left = Counter(entries)
    matched = 0
    for finding in sorted(report.active(), key=Finding.sort_key):
        key = _key(finding.code, finding.location.path, fingerprint(finding))
        if left[key] > 0:
            left[key] -= 1
            finding.suppressed = True
            finding.suppression_kind = "external"
            finding.suppression_reason = f"accepted in the baseline {label}"
            matched += 1
    return matched

"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF consumers.

Locations are the paths of the report (repository-relative under `pgaudit ci`), URI-encoded, relative to
`%SRCROOT%`, with 1-based lines. A finding inside a self-extracting payload points at the committed wrapper
line (the only line a viewer can show) and names the decoded line in its message and properties.
`partialFingerprints` hash what stays put when unrelated lines move: code, path and the flagged code text
(or the message with its numbers blanked when no code is quoted), plus an ordinal among identical ones.
Suppressed findings (an honoured inline directive, or a baseline entry) are results with `suppressions`
(kind `inSource` or `external`, the reason as `justification`), so a consumer sees what was accepted and why.
The invocation's properties name the gate mode, the configuration file and the baseline. No timestamps or machine paths: the same report gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from typing import Any
from urllib.parse import quote

from pgaudit.findings import Finding, Report
from pgaudit.render.meta import (
    RuleMeta,
    clean,
    committed_line,
    doc_markdown,
    payload_note,
    precision,
    rule_meta,
    sarif_level,
)

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "pgaudit/v1"


def render_sarif(report: Report) -> str:
    return json.dumps(sarif_log(report), indent=2, ensure_ascii=False) + "\n"


def sarif_log(report: Report) -> dict[str, Any]:
    active = sorted(report.findings, key=Finding.sort_key)
    by_code: dict[str, list[Finding]] = defaultdict(list)
    for finding in active:
        by_code[finding.code].append(finding)
    metas = [rule_meta(code, found, report.codes.get(code)) for code, found in sorted(by_code.items())]
    index = {meta.code: i for i, meta in enumerate(metas)}
    fingerprints = _fingerprints(active)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "pgaudit",
                "version": report.tool_version,
                "semanticVersion": report.tool_version,
                "rules": [_rule(meta) for meta in metas],
            }
        },
        "invocations": [_invocation(report)],
        "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The repository root."}}},
        "results": [_result(f, index[f.code], fp) for f, fp in zip(active, fingerprints, strict=True)],
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _rule(meta: RuleMeta) -> dict[str, Any]:
    help_lines = [meta.help_text]
    if meta.fix:
        help_lines.append(f"Fix: {meta.fix}")
    if meta.rulings:
        help_lines.append("Rulings: " + " ".join(meta.rulings))
    help_md = [doc_markdown(meta.help_text)]
    if meta.fix:
        help_md.append(f"**Fix:** {meta.fix}")
    if meta.rulings:
        help_md.append("**Rulings:** " + ", ".join(f"<{url}>" for url in meta.rulings))
    return {
        "id": meta.code,
        "name": meta.name,
        "shortDescription": {"text": meta.short},
        "fullDescription": {"text": meta.full},
        "help": {"text": "\n\n".join(help_lines), "markdown": "\n\n".join(help_md)},
        "helpUri": meta.rulings[0],
        "defaultConfiguration": {"level": sarif_level(meta.severity)},
        "properties": {
            "tags": meta.tags,
            "precision": precision(meta.confidence),
            "problem.severity": {"error": "error", "warning": "warning", "note": "recommendation"}[
                sarif_level(meta.severity)
            ],
        },
    }


def _invocation(report: Report) -> dict[str, Any]:
    notes = [
        {"level": "error", "message": {"text": clean(f"{e.path}: {e.message}")}, "descriptor": {"id": "input-error"}}
        for e in report.errors
    ]
    invocation: dict[str, Any] = {"executionSuccessful": not report.errors}
    applied = {key: report.run_config[key] for key in ("gate", "config", "baseline") if key in report.run_config}
    if report.suppressions:
        applied["suppressions"] = report.suppressions
    if applied:
        invocation["properties"] = applied
    if notes:
        invocation["toolExecutionNotifications"] = notes
    return invocation


def _result(finding: Finding, rule_index: int, fingerprint: str) -> dict[str, Any]:
    loc = finding.location
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(loc.path), "uriBaseId": "%SRCROOT%"}}
    line = committed_line(finding)
    if line is not None and line >= 1:
        region: dict[str, Any] = {"startLine": line}
        if not loc.in_payload and loc.end_line and loc.end_line > line:
            region["endLine"] = loc.end_line
        physical["region"] = region
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": sarif_level(finding.severity),
        "message": {"text": _message(finding)},
        "locations": [{"physicalLocation": physical}],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
        "properties": _properties(finding),
    }
    related = [_related(i, r) for i, r in enumerate(finding.related)]
    if related:
        result["relatedLocations"] = related
    if finding.suppressed:
        result["suppressions"] = [{"kind": finding.suppression_kind or "inSource",
                                   "justification": clean(finding.suppression_reason or "")}]
    return result


def _message(finding: Finding) -> str:
    parts = [finding.message]
    note = payload_note(finding)
    if note:
        parts.append(note)
    if finding.fix:
        parts.append(f"Fix: {finding.fix}")
    return clean(" ".join(parts))


def _properties(finding: Finding) -> dict[str, Any]:
    props: dict[str, Any] = {
        "confidence": finding.confidence.label,
        "precision": precision(finding.confidence),
        "catalogueIds": list(finding.catalogue_ids),
    }
    if finding.condition:
        props["condition"] = finding.condition
    if finding.reachable is not None:
        props["reachable"] = finding.reachable
    if finding.location.in_payload:
        props["payloadLine"] = finding.location.line
        props["wrapperLine"] = finding.location.wrapper_line
    if finding.evidence:
        props["evidence"] = [clean(e) for e in finding.evidence]
    return props


def _related(i: int, loc: Any) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(loc.path), "uriBaseId": "%SRCROOT%"}}
    line = loc.wrapper_line if loc.in_payload else loc.line
    if line:
        physical["region"] = {"startLine": line}
    text = f"line {loc.line} of the decoded payload" if loc.in_payload else f"line {loc.line}"
    return {"id": i, "physicalLocation": physical, "message": {"text": text}}


def artifact_uri(path: str) -> str:
    """A relative URI reference for a repository path: spaces and other specials percent-encoded."""
    return quote(path, safe="/-._~")


def _fingerprints(findings: list[Finding]) -> list[str]:
    """One stable hash per finding; identical ones (same code, path, context) get ordinals in order."""
    seen: dict[str, int] = defaultdict(int)
    out = []
    for finding in findings:
        base = _identity(finding)
        ordinal = seen[base]
        seen[base] += 1
        out.append(f"{base}:{ordinal}")
    return out


def _identity(finding: Finding) -> str:
    if finding.evidence:
        context = " ".join(finding.evidence[0].split())
    else:
        context = re.sub(r"\d+", "#", finding.message)  # line numbers and counts move; the claim does not
    material = "\0".join((finding.code, finding.location.path, str(finding.location.in_payload), context))
    return hashlib.sha256(material.encode("utf-8", "replace")).hexdigest()[:32]

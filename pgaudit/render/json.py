"""`--format json`: the versioned report schema (docs/json-schema.md)."""

from __future__ import annotations

import json

from pgaudit.findings import Report, Severity


def render_json(report: Report) -> str:
    data = report.to_dict()
    active = report.active()
    data["summary"] = {
        "errors": sum(f.severity == Severity.ERROR for f in active),
        "warnings": sum(f.severity == Severity.WARNING for f in active),
        "info": sum(f.severity == Severity.INFO for f in active),
        "suppressed": sum(f.suppressed for f in report.findings),
        "input_errors": len(report.errors),
    }
    return json.dumps(data, indent=2, sort_keys=False) + "\n"

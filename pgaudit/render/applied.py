"""What applied to a run, for every report: the gate mode, the configuration file, the baseline, and each
inline suppression met (honoured, or reported as PG004 under the gate). Plain sentences; renderers escape."""

from __future__ import annotations

from pgaudit.findings import Report


def applied_lines(report: Report) -> list[str]:
    config = report.run_config
    if "gate" not in config and not report.suppressions:
        return []
    mode = ("gate (inline suppressions reported, not honoured)" if config.get("gate")
            else "inline suppressions honoured")
    lines = [f"configuration: {config.get('config') or 'none (defaults)'}; {mode}"]
    baseline = config.get("baseline")
    if baseline:
        lines.append(f"baseline: {baseline['path']} ({baseline['matched']} of {baseline['entries']} entries matched)")
    for s in report.suppressions:
        where = f"{s['path']}:{s['line']}"
        state = "honoured" if s["honoured"] else "NOT honoured (PG004)"
        lines.append(f"suppression {where} ignore[{', '.join(s['codes'])}] {state}: {s['reason']}")
    return lines

"""What the review saw: the code and logs it read, the legal look-alikes it found and why each is legal, the
numbers it read (artifact bytes, train and eval seconds per seed, the significance test), and a
recommendation line.

Human reviews of the challenge are trusted because they say what they looked at; a clean verdict that does
not say what was examined is not. Everything here is read statically from the committed files and logs.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from pathlib import Path

from pgaudit.errors import PgauditError
from pgaudit.findings import Finding, Report
from pgaudit.render import mdtext as md

MAX_LOOKALIKES = 6


@dataclass(frozen=True)
class LookAlike:
    condition: str  # "C1", "C3", "data access"
    what: str  # prose with backticked code
    why: str


# --- the recommendation -----------------------------------------------------------------------------------


def recommendation(label: str, findings: list[Finding], scoring_unchanged_from: str | None = None) -> list[str]:
    """`**Recommendation:** merge pending checks / needs changes / close`, with the reason."""
    active = [f for f in findings if not f.suppressed]
    if label.startswith("ILLEGAL"):
        first = next((f for f in active if f.severity.label == "error"), None)
        reason = f"{first.code} {first.name} breaks {label.removeprefix('ILLEGAL under ')}" if first else label
        head, why = "close", f"{reason}; a fixed resubmission is a new pull request"
    elif label == "NEEDS FIXES":
        codes = sorted({f.code for f in active if f.severity.label in ("error", "warning")})
        head, why = "needs changes", ", ".join(codes) or "inputs that could not be audited"
    else:
        basis = (f"the scoring path is identical to the accepted record `{scoring_unchanged_from}`"
                 if scoring_unchanged_from else "no rule or validator found a problem")
        head = "merge pending checks"
        why = f"{basis}; pending: a reproduction run of the claimed score and sizes, which a static review does not do"
    return [f"**Recommendation: {head}** ({md.inline(why)}).", ""]


# --- what was read ------------------------------------------------------------------------------------------


def what_the_review_saw(report: Report, folder: Path, folder_path: str, ancestor: Path | None = None,
                        ancestor_label: str | None = None) -> list[str]:
    lines = ["### What the review saw", ""]
    lines += _code_read(report, folder_path)
    lookalikes = legal_lookalikes(folder, report)
    if lookalikes:
        lines += ["", "Legal look-alikes found (flagged shapes that these are not):", ""]
        lines += [f"- {c}: {md.inline(item.what)}: {md.inline(item.why)}" for c, item in
                  ((i.condition, i) for i in lookalikes[:MAX_LOOKALIKES])]
    lines += ["", *numbers_read(folder, folder_path, ancestor, ancestor_label)]
    return [*lines, ""]


def _code_read(report: Report, folder_path: str) -> list[str]:
    prefix = folder_path.rstrip("/") + "/" if folder_path else ""
    files = [f for f in report.files if not prefix or f.path.startswith(prefix)]
    code = [f for f in files if f.role in ("entry", "module")]
    logs = [f for f in files if f.role == "log"]
    parts = []
    for f in code:
        name = md.code(f.path[len(prefix):])
        what = f"{name} ({f.lines:,} lines" + (", imported or exec'd" if f.role == "module" else "")
        if f.payload:
            what += (f"; a self-extracting payload at line {f.payload.get('wrapper_line')}, "
                     f"{md.text(str(f.payload.get('codec', '')))}, decoded to {f.payload.get('lines', 0):,} lines")
        parts.append(what + ")")
    text = "- Code: " + (", ".join(parts) if parts else "none") + "."
    if logs:
        text += f" Logs: {', '.join(md.code(f.path[len(prefix):]) for f in logs[:6])}" + (
            f" and {len(logs) - 6} more" if len(logs) > 6 else "") + "."
    return [text]


# --- legal look-alikes ---------------------------------------------------------------------------------------


def legal_lookalikes(folder: Path, report: Report) -> list[LookAlike]:
    """Shapes the rules examined and did not flag, with the reason the rule gives for it being legal."""
    from pgaudit.source.program import find_entries, load_program

    flagged = {f.code for f in report.findings if not f.suppressed}
    found: list[LookAlike] = []
    folder = folder.resolve()
    for entry in find_entries(folder)[:2]:
        try:
            program = load_program(entry, folder)
        except PgauditError:
            continue
        if "PG101" not in flagged and "PG102" not in flagged:
            found += _hash_lookups(program)
        if not flagged & {"PG301", "PG302"}:
            found += _score_first_ttt(program)
    found += _calibration_from_logs(folder)
    seen: set[str] = set()
    unique = []
    for item in found:
        if item.what not in seen:
            seen.add(item.what)
            unique.append(item)
    return unique


def _hash_lookups(program) -> list[LookAlike]:  # type: ignore[no-untyped-def]
    """Token hashing (`(prev * 36313) ^ cur` mod a table size): legal when the key is built from context
    tokens only, which PG101 (target in hash key) checked."""
    out = []
    for unit in program.units:
        for node in ast.walk(unit.tree):
            if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor)):
                continue
            big = [n for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, int)
                   and not isinstance(n.value, bool) and n.value > 1000]
            if not big:
                continue
            where = f"{unit.label}:{node.lineno}"
            out.append(LookAlike("C1", f"token hashing at `{where}` (`{_short(ast.unparse(node))}`)",
                                 "PG101 traced the hashed values and found no target token in the key, so the "
                                 "lookup reads context tokens only (a BigramHash-style embedding is legal)"))
            break
    return out


def _score_first_ttt(program) -> list[LookAlike]:  # type: ignore[no-untyped-def]
    """Test-time training that scores each chunk before adapting on it (PG301/PG302 found no violation)."""
    from pgaudit.analysis.facts import Facts

    try:
        facts = Facts(program)
        events = facts.events
        index = facts.index
    except (RecursionError, ValueError):
        return []
    out = []
    for scope in index.scopes:
        mine = events.of(scope).inline
        updates = [e for e in mine if e.kind == "update"]
        scores = [e for e in mine if e.kind == "score"]
        if not updates or not scores:
            continue
        first_update = min(updates, key=lambda e: e.order)
        before = [s for s in scores if s.order < first_update.order]
        if not before:
            continue
        guard = _last_chunk_guard(first_update.node)
        tail = f"; the update is guarded by `{guard}`, so the last chunk is not adapted" if guard else ""
        out.append(LookAlike(
            "C3", f"test-time training in `{scope.qualname}` ({scope.unit.label} lines {before[0].line} and "
            f"{first_update.line})",
            f"it scores validation tokens at line {before[0].line} before the update at line {first_update.line}"
            f"{tail}; PG301 (adapt before score) and PG302 (rescoring) found no violation"))
    return out


def _last_chunk_guard(node: ast.AST) -> str | None:
    cur = getattr(node, "pg_parent", None)
    while cur is not None and not isinstance(cur, ast.FunctionDef | ast.AsyncFunctionDef):
        if isinstance(cur, ast.If):
            text = ast.unparse(cur.test)
            if "- 1" in text or "last" in text.lower():
                return _short(text)
        cur = getattr(cur, "pg_parent", None)
    return None


def _calibration_from_logs(folder: Path) -> list[LookAlike]:
    from pgaudit.submission import load_record_folder

    try:
        record = load_record_folder(folder)
    except PgauditError:
        return []
    out = []
    for run in record.runs():
        for cal in run.calibrations:
            if cal.source in ("training data", "self-generated"):
                out.append(LookAlike(
                    "data access", f"GPTQ/Hessian calibration on {cal.source} (`{run.name}` line {cal.evidence.line})",
                    "quantization statistics from training or self-generated tokens are legal; only validation "
                    "data is not (R22, PG402)"))
                return out
    return out


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- numbers read ---------------------------------------------------------------------------------------------


def numbers_read(folder: Path, folder_path: str, ancestor: Path | None = None,
                 ancestor_label: str | None = None) -> list[str]:
    """Per seed: score, artifact bytes, train and eval seconds, with the log they come from; then the
    significance test against the ancestor's seeds when its logs are at hand."""
    from pgaudit.evidence import seed_runs
    from pgaudit.submission import load_record_folder

    try:
        record = load_record_folder(folder, folder_path or folder.name)
    except PgauditError:
        return ["- Numbers: the folder's logs could not be read."]
    runs = seed_runs(record)
    if not runs:
        return ["- Numbers: no log with a final score, so no artifact size, time or seed was read."]
    lines = [f"Numbers read from the logs ({len(runs)} seed{'s' if len(runs) != 1 else ''}):", "",
             "| seed | val_bpb | artifact bytes | train s | eval s | log |", "|---|---|---|---|---|---|"]
    for run in runs:
        total = next((s for s in reversed(run.run.sizes) if s.kind == "total"), None)
        train = f"{run.run.train_time_ms / 1000:.1f}" if run.run.train_time_ms is not None else "not logged"
        eval_s = run.run.total_eval_time_s
        if eval_s is None and run.metric.eval_time_ms is not None:
            eval_s = run.metric.eval_time_ms / 1000
        lines.append(
            f"| {run.seed if run.seed is not None else '?'} | {md.text(run.metric.bpb_text)} | "
            f"{f'{total.bytes:,}' if total else 'not logged'} | {train} | "
            f"{f'{eval_s:.1f}' if eval_s is not None else 'not logged'} | {md.code(f'{run.log_name}:{run.metric.line}', cell=True)} |")
    lines.append("")
    lines += _significance(record, ancestor, ancestor_label)
    return lines


def _significance(record, ancestor: Path | None, label: str | None) -> list[str]:  # type: ignore[no-untyped-def]
    from pgaudit.policy import Policy
    from pgaudit.significance import compare, sample_from_folder
    from pgaudit.submission import load_record_folder

    if ancestor is None or not ancestor.is_dir():
        return ["- Significance: no baseline seeds at hand (the nearest ancestor's logs are read when `pgaudit review` is given a clone with `--records`)."]
    try:
        candidate = sample_from_folder(record)
        baseline = sample_from_folder(load_record_folder(ancestor, label or ancestor.name))
    except PgauditError:
        return ["- Significance: the ancestor's logs could not be read."]
    if candidate.n < 2 or baseline.n < 2:
        return [f"- Significance: {candidate.n} seed(s) here and {baseline.n} in the ancestor: too few for a test."]
    try:
        result = compare(candidate, baseline, Policy())
    except PgauditError as exc:
        return [f"- Significance: {md.text(str(exc))}"]
    parts = []
    if result.welch is not None and all(math.isfinite(v) for v in (result.welch.t, result.welch.df, result.welch.p)):
        w = result.welch
        parts.append(f"Welch one-sided against the ancestor {md.code(label or ancestor.name)} ({result.welch_unit}): "
                     f"t = {w.t:.3f}, df = {w.df:.1f}, p = {w.p:.4f}, "
                     f"{'passes' if result.progression_passes else 'does not pass'} p < {result.progression_p}")
    if result.readme is not None and all(math.isfinite(v) for v in (result.readme.t, result.readme.p)):
        r = result.readme
        parts.append(f"README test (improvement of at least {r.margin:.4f} {result.readme_unit}): t = {r.t:.3f}, "
                     f"df = {r.df}, p = {r.p:.4f}, {'passes' if result.readme_passes else 'does not pass'} "
                     f"p < {result.readme_p}")
    if not parts:
        return ["- Significance: the test could not be computed (identical or constant scores)."]
    return [f"- Significance: {'; '.join(parts)}."]

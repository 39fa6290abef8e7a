"""PG510 val-split-integrity (R25, R26): was the model scored on the canonical validation set, untouched?

- The logged val token count must be a canonical count for the tokenizer, up to the tail truncation to a
  multiple of the run's sequence length (R26: 47,851,520 is accepted for CaseOps).
- A doubled `datasets/datasets` data path is the fingerprint of data regenerated with a shipped prep script;
  cocohearts excluded PR #2130 on it (PR #2146).
- A shipped prep script whose `--val-docs` default is not 50,000 moves validation documents into the
  training shards when used (Issue #2127: the CaseOps default 10,000 puts 40,000 val docs in training).
All are warnings: the logs fingerprint the data, they do not prove what it contained.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from pgaudit.findings import Confidence, Finding, Location, Severity
from pgaudit.logs import RunLog
from pgaudit.validators.common import Context, finding, quote, unique_runs

CODE, NAME = "PG510", "val-split-integrity"
SEQ_LEN_KEYS = ("eval_seq_len", "train_seq_len", "seq_len", "max_seq_len")
UNKNOWN_SEQ_LEN = 32_768  # the longest sequence length seen in merged records' logs
_VAL_DOCS_DEFAULT = re.compile(r"""["']--val[-_]docs["'][^)]*?default\s*=\s*([\d_]+)""")
_DOUBLED = "datasets/datasets"
MAX_PREP_BYTES = 2 * 1024 * 1024


def check(ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    findings.extend(_check_token_counts(ctx))
    doubled = _check_doubled_paths(ctx)
    findings.extend(doubled)
    findings.extend(_check_prep_defaults(ctx, suspicious=bool(findings)))
    return findings


def _seq_len(run: RunLog) -> int:
    values = [int(v) for k in SEQ_LEN_KEYS if (v := run.hyperparameters.get(k, "")).isdigit()]
    return max(values) if values else UNKNOWN_SEQ_LEN


def _check_token_counts(ctx: Context) -> list[Finding]:
    table = ctx.policy.canonical_val_tokens
    findings = []
    reported: set[tuple[str, int]] = set()
    for run in unique_runs(ctx.folder):
        if run.val_tokens is None or not run.tokenizer_path:
            continue
        tokenizer = PurePosixPath(run.tokenizer_path).name
        canonical = table.get(tokenizer)
        if not canonical or (tokenizer, run.val_tokens) in reported:
            continue
        seq_len = _seq_len(run)
        if any(0 <= c - run.val_tokens < seq_len for c in canonical):
            continue
        reported.add((tokenizer, run.val_tokens))
        expected = " or ".join(f"{c:,}" for c in canonical)
        relation = "more than" if run.val_tokens > max(canonical) else "fewer than"
        message = (f"{run.name}: val_tokens {run.val_tokens:,} for {tokenizer}, {relation} the canonical {expected} "
                   f"(allowing the tail truncation to a multiple of seq_len {seq_len:,}). The validation set is not "
                   "the canonical first-50k-document split, or only part of it is scored.")
        findings.append(finding(CODE, NAME, Severity.WARNING, Confidence.MEDIUM, message,
                                Location(run.name, run.val_tokens_evidence.line if run.val_tokens_evidence else None),
                                ("R25", "R26"),
                                "Score the canonical validation shards of the tokenizer (all 50,000 documents).",
                                quote(run, run.tokenizer_evidence, run.val_tokens_evidence)))
    return findings


def _check_doubled_paths(ctx: Context) -> list[Finding]:
    """One finding per folder: the logs whose data path has a doubled `datasets/datasets`."""
    hits: list[tuple[RunLog, str]] = []
    for run in unique_runs(ctx.folder):
        key = next((k for k, v in run.hyperparameters.items() if _DOUBLED in v), None)
        if key is not None:
            hits.append((run, key))
    if not hits:
        return []
    run, key = hits[0]
    canonical = _canonical_fingerprints(ctx, [r for r, _ in hits])
    names = ", ".join(sorted({r.name for r, _ in hits}))
    message = (f"The data path of {len(hits)} run(s) ({names}) has a doubled 'datasets/datasets' "
               f"({run.hyperparameters[key]}), a fingerprint cocohearts checked for non-canonical, regenerated data "
               "(PR #2130 was excluded on it, PR #2146).")
    if canonical:
        message += f" The other fingerprints are canonical ({canonical}), so this alone proves little."
    evidence = [e.quote(r.name) for r, k in hits[:3] if (e := r.evidence_at(r.hyperparameter_lines[k]))]
    evidence += quote(run, run.val_tokens_evidence)
    return [finding(CODE, NAME, Severity.WARNING, Confidence.LOW if canonical else Confidence.MEDIUM, message,
                    Location(run.name, run.hyperparameter_lines[key]), ("R25",),
                    "Train and score on the canonical export (for CaseOps romeerp/parameter-golf-caseops-v1, "
                    "docs_val=50000) and say so in the README.", evidence)]


def _canonical_fingerprints(ctx: Context, runs: list[RunLog]) -> str:
    """Describe the val_tokens / train_shards fingerprints when every run shows canonical values."""
    table = ctx.policy.canonical_val_tokens
    tokens_ok = all(
        r.val_tokens is not None and r.tokenizer_path
        and r.val_tokens in table.get(PurePosixPath(r.tokenizer_path).name, ())
        for r in runs
    )
    if not tokens_ok:
        return ""
    shards = sorted({r.train_shards for r in runs if r.train_shards is not None})
    return f"val_tokens {runs[0].val_tokens:,}" + (f", train_shards {', '.join(map(str, shards))}" if shards else "")


def _check_prep_defaults(ctx: Context, suspicious: bool) -> list[Finding]:
    folder = ctx.folder
    canonical = ctx.policy.canonical_val_docs
    findings = []
    for rel in folder.files:
        if not rel.endswith(".py"):
            continue
        path = folder.root / rel
        try:
            if path.stat().st_size > MAX_PREP_BYTES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.split("\n"), start=1):
            match = _VAL_DOCS_DEFAULT.search(line)
            if not match:
                continue
            default = int(match.group(1).replace("_", ""))
            if default == canonical:
                continue
            message = (f"{rel} defaults --val-docs to {default:,} (canonical {canonical:,}): regenerating the data "
                       f"with it starts the training shards at document {default:,}, putting validation documents "
                       "into training (Issue #2127).")
            if suspicious:
                message += " The logs also show a non-canonical data fingerprint (see PG510 above)."
            else:
                message += " The logs show canonical validation data, so the runs did not use this default."
            findings.append(finding(CODE, NAME, Severity.WARNING if suspicious else Severity.INFO, Confidence.MEDIUM,
                                    message, Location(rel, number), ("R25",),
                                    f"Set the --val-docs default to {canonical:,} in the shipped prep script.",
                                    [f"{rel}:{number}: {line.strip()}"]))
    return findings

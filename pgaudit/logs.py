"""Train log -> RunLog: seed, hyperparameters, final metric per eval method, sizes, times (catalogue §13).

Formats differ across the challenge's history (`key:value` vs `key: value`, `int8+zlib` vs
`quantized+pergroup`, unix-time prefixes, several runs in one file), and most logs begin with the whole
training script echoed by `log0(code)`; the format strings in that echo look like result lines, so echoed
source is found first and never read as results. Every parsed value keeps its 1-based line number so that
findings can quote `file:line` evidence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path

from pgaudit.errors import InputError

# The largest merged-record log with its echoed source is ~1 MB; anything past this is not a train log.
MAX_LOG_BYTES = 32 * 1024 * 1024
MAX_LOG_LINE_CHARS = 16_384

NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"

# --- line shapes -------------------------------------------------------------------------------------

# Prefixes some launchers add to every line: unix time (`1776143353.675 `), wall-clock stamps.
_PREFIX = re.compile(r"^(?:\d{9,11}\.\d+\s+|\[\d{2}:\d{2}:\d{2}(?:\.\d+)?\]\s+)")
_SEPARATOR = re.compile(r"^\s*={20,}\s*$")
_FIXTURE_MARKER = re.compile(r"^\[pgaudit-fixture: (\d+) lines of echoed source code removed\]$")
_CODE_SIGNATURE = re.compile(
    r"^(?:import [\w.]+|from [\w.]+ import |def \w+\s*\(|async def \w+|class \w+\s*[(:]|if __name__ ==)"
)

_METRIC = re.compile(
    rf"^(?P<method>[A-Za-z][^\s]*(?:\s+(?!val_loss)[A-Za-z][\w\-+.]*)*?)"
    rf"(?P<pre>(?:\s+[A-Za-z_]\w*[:=]\S+)*)"
    rf"\s+(?:sliding\s+)?val_loss[:=]\s*(?P<loss>{NUM})"
    rf"[,\s]+(?:sliding\s+)?val_bpb[:=]\s*(?P<bpb>{NUM})(?P<rest>.*)$"
)
_EVAL_MS = re.compile(rf"\b(?:eval_time|time)[:=]\s*(?P<v>{NUM})ms\b")
_EVAL_S = re.compile(rf"\b(?:elapsed|eval_time|time)[:=]\s*(?P<v>{NUM})s\b")
_DIAGNOSTIC = re.compile(
    r"diagnostic|pre[-_ ]?quant|^(?:post[-_ ]?ema|ema|swa|raw|float|fp32|bf16|pre[-_ ]?ttt)$", re.IGNORECASE
)

_STOP = re.compile(
    rf"^stopping_early:\s*(?P<reason>[A-Za-z_]+)?\s*train_time:\s*(?P<ms>{NUM})ms"
    rf"(?:\s+step:\s*(?P<step>\d+)\s*/\s*(?P<total>\d+))?"
)
_STEP_TIME = re.compile(
    rf"^(?:step:\s*)?(?P<step>\d+)\s*/\s*(?P<total>\d+)\b.*?\btrain_time:\s*(?P<ms>{NUM})ms\b"
)
_PROGRESS = re.compile(r"^(?:step:\s*\d+\s*/|\d+\s*/\s*\d+\s|warmup(?:_step)?:\s*\d+\s*/|loop_warmup_step:)")
# Evaluation progress lines (TTT chunks, phases, sliding windows): the header is over when they start.
_EVAL_PROGRESS = re.compile(r"^(?:ttp|ttpp|ttpr|tttg|ttt|ttt_\w+|sliding_eval|eval):\S|^(?:ttp|ttpp|ttpr|tttg):\s|^\s*(?:ttt_chunk|sliding_eval)\b")

_SERIALIZED = re.compile(r"^Serialized model(?:\s+(?P<scheme>[^:]+?))?:\s*(?P<n>\d+) bytes\b")
_CODE_SIZE = re.compile(r"^Code size(?:\s*\((?P<kind>compressed|uncompressed)\))?:\s*(?P<n>\d+) bytes\b")
_TOTAL = re.compile(r"^Total submission size(?:\s+(?P<scheme>[^:]+?))?:\s*(?P<n>\d+) bytes\b")
_ARTIFACT_MB = re.compile(r"^artifact:\s*[\d.]+MB\b.*\bcode:(?P<code>\d+)\b")
_BUDGET = re.compile(r"^budget:(?P<n>\d+)/(?P<cap>\d+)\b")
_PIPE_RAW = re.compile(r"^Raw model: (?P<model>\d+) bytes \| Code: (?P<code>\d+) bytes \| Total: (?P<total>\d+)")
_PIPE_MODEL = re.compile(r"^(?P<scheme>\S+) model: (?P<model>\d+) bytes \| Total submission: (?P<total>\d+) bytes")
_SUMMARY_BYTES = re.compile(r"^artifact_bytes:\s+(?P<n>\d+)\s*$")

_TOTAL_EVAL = re.compile(rf"^total_eval_time:\s*(?P<v>{NUM})s\b")
_EVAL_TIMER = re.compile(r"^beginning (?:TTT )?eval timer\b", re.IGNORECASE)
_GPTQ_RESERVE = re.compile(rf"^gptq:reserving\s+(?P<v>{NUM})(?P<unit>ms|s)\b")
_HESSIAN_DONE = re.compile(
    rf"^(?:GPTQ:collected \d+ Hessians in (?P<a>{NUM})s"
    rf"|gptq:collected hessians for \d+ layers(?: in (?P<b>{NUM})s)?"
    rf"|gptq:calibrated \d+ layers in (?P<c>{NUM})s)",
    re.IGNORECASE,
)
_SELF_GEN = re.compile(r"autoregressive|self[-_ ]?gen|AR self", re.IGNORECASE)
_GENERATED = re.compile(rf"^gptq:generated \d+ (?:sequences|seqs) in (?P<v>{NUM})s")

_VAL_TOKENS = re.compile(r"^(?:val_tokens:\s*(?P<a>\d+)\b|val_loader:.*\btokens:\s*(?P<b>\d+)\b)")
_TOKENIZER = re.compile(r"\btokenizer_path[=:]\s*(?P<p>\S+)")
_SIDECAR = re.compile(r"^val_bpb:byte_sidecar:(?P<state>\w+)")
_TRAIN_SHARDS = re.compile(r"\btrain_shards:\s*(?P<n>\d+)\b")

_HP_HEADER = re.compile(r"^Hyperparameters:\s*$")
_HP_INDENTED = re.compile(r"^\s{2,}(?P<k>[A-Za-z_]\w*):\s?(?P<v>.*)$")
_HP_ONELINE_HEADER = re.compile(r"^-{2,}\s*Hyperparameters\s*-{2,}\s*$", re.IGNORECASE)
_HEADER_TOKEN = re.compile(r"^(?P<k>[A-Za-z_][\w.]*)[:=](?P<v>\S*)$")
_HEADER_PAIR = re.compile(r"^(?P<k>[A-Za-z_]\w*):\s(?P<v>\S+)$")

# Lines that open a run; seen after a run already finished, they start the next run in the same file.
_RUN_START = re.compile(
    r"^(?:Hyperparameters:|-{2,}\s*Hyperparameters|val_bpb:enabled|train_shards:|train_loader:|val_tokens:"
    r"|val_loader:|model_params:|Running Python)"
)

SEED_KEYS = ("seed",)
WORLD_SIZE_KEYS = ("world_size", "ws")


# --- parsed values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """One log line: its 1-based number and its text as printed."""

    line: int
    text: str

    def quote(self, name: str) -> str:
        return f"{name}:{self.line}: {self.text.strip()}"


@dataclass(frozen=True)
class Metric:
    """The final result of one eval method in one run (`*_exact` line preferred over the rounded one)."""

    method: str  # "_exact" removed: "final_int8_zlib_roundtrip", "legal_ttt", "quantized_ttt_phased"
    val_loss: float | None
    val_bpb: float
    loss_text: str | None
    bpb_text: str
    exact: bool
    eval_time_ms: float | None
    evidence: tuple[Evidence, ...]  # the rounded and the exact line, in log order
    diagnostic: bool = False
    alias_of: str | None = None  # a compatibility line that repeats another method's numbers

    @property
    def line(self) -> int:
        return self.evidence[-1].line

    @property
    def bpb_decimals(self) -> int:
        return decimals(self.bpb_text)

    @property
    def loss_decimals(self) -> int:
        return decimals(self.loss_text) if self.loss_text else 0


@dataclass(frozen=True)
class SizeLine:
    kind: str  # "model", "raw_model", "total", "raw_total", "code", "code_compressed", "code_uncompressed"
    bytes: int
    scheme: str | None
    evidence: Evidence


@dataclass(frozen=True)
class Calibration:
    """Post-training GPTQ/Hessian work seen in the log."""

    source: str  # "training data", "self-generated", "unspecified calibration data"
    seconds: float | None
    evidence: Evidence
    after_stop: bool  # printed after the training stop line (i.e. outside the timed training loop)


@dataclass
class RunLog:
    name: str
    seed: int | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)
    hyperparameter_lines: dict[str, int] = field(default_factory=dict)
    world_size: int | None = None
    metrics: list[Metric] = field(default_factory=list)
    sizes: list[SizeLine] = field(default_factory=list)
    train_time_ms: float | None = None
    train_time_evidence: Evidence | None = None
    stop_reason: str | None = None  # "wallclock_cap", "iterations" (ran all steps), or as printed
    stop_step: int | None = None
    planned_steps: int | None = None
    total_eval_time_s: float | None = None
    total_eval_evidence: Evidence | None = None
    eval_timer_evidence: Evidence | None = None
    calibrations: list[Calibration] = field(default_factory=list)
    gptq_reserve_evidence: Evidence | None = None
    val_tokens: int | None = None
    val_tokens_evidence: Evidence | None = None
    tokenizer_path: str | None = None
    tokenizer_evidence: Evidence | None = None
    byte_sidecar: bool | None = None
    byte_sidecar_evidence: Evidence | None = None
    train_shards: int | None = None
    echo_lines: int = 0  # echoed source lines recognized and skipped (incl. lines a fixture cut out)
    first_line: int = 1
    last_line: int = 0
    last_step_eval: Metric | None = None  # the last training-time `step:N/M val_loss val_bpb` line
    earlier_runs: list[RunLog] = field(default_factory=list)  # other runs in the same file, oldest first

    # --- derived views --------------------------------------------------------------------------

    @property
    def final_metrics(self) -> list[Metric]:
        """Metrics that can be a reported score: not diagnostics, not compatibility aliases."""
        return [m for m in self.metrics if not m.diagnostic and m.alias_of is None]

    @property
    def scored(self) -> Metric | None:
        """The score the run reports: the last final metric printed (catalogue §13 parsing guidance)."""
        finals = self.final_metrics
        return max(finals, key=lambda m: m.line) if finals else None

    def metric(self, method: str) -> Metric | None:
        base = _base_method(method)
        return next((m for m in self.metrics if m.method == base), None)

    def sizes_of(self, kind: str) -> list[SizeLine]:
        return [s for s in self.sizes if s.kind == kind]

    def last_size(self, *kinds: str) -> SizeLine | None:
        found = [s for s in self.sizes if s.kind in kinds]
        return found[-1] if found else None

    @property
    def total_bytes(self) -> SizeLine | None:
        """The artifact total the run printed (compressed model + code, as the script counted it)."""
        return self.last_size("total")

    @property
    def model_bytes(self) -> SizeLine | None:
        return self.last_size("model")

    @property
    def code_bytes(self) -> SizeLine | None:
        """Counted code bytes: the compressed size when the script printed both."""
        return self.last_size("code_compressed") or self.last_size("code")

    @property
    def max_wallclock_seconds(self) -> tuple[float, int] | None:
        for key in ("max_wallclock_seconds", "MAX_WALLCLOCK_SECONDS"):
            raw = self.hyperparameters.get(key)
            if raw is not None:
                value = to_float(raw)
                if value is not None:
                    return value, self.hyperparameter_lines[key]
        return None

    @property
    def all_runs(self) -> list[RunLog]:
        return [*self.earlier_runs, self]

    def evidence_at(self, line: int | None) -> Evidence | None:
        return None if line is None else self._lines.get(line)

    def output_lines(self) -> list[Evidence]:
        """The lines this run printed, in order; echoed source lines are not among them."""
        return [self._lines[n] for n in sorted(self._lines)]

    _lines: dict[int, Evidence] = field(default_factory=dict, repr=False)


# --- helpers -----------------------------------------------------------------------------------------


def decimals(text: str | None) -> int:
    """Digits after the decimal point as printed ("1.22436570" -> 8, "15863489" -> 0)."""
    if not text:
        return 0
    mantissa = text.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def to_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _base_method(method: str) -> str:
    method = method.strip()
    for suffix in ("_exact", ":done"):
        if method.endswith(suffix):
            method = method[: -len(suffix)]
    method = re.sub(r"_exact(?=\s)", "", method)
    return method


# --- reading -----------------------------------------------------------------------------------------


def read_log(path: Path, display: str) -> RunLog:
    """Read and parse a log file; InputError for what cannot be a text log."""
    try:
        if not path.is_file():
            raise InputError(display, "no such file" if not path.exists() else "not a regular file")
        size = path.stat().st_size
        if size > MAX_LOG_BYTES:
            raise InputError(display, f"log is {size:,} bytes, over the {MAX_LOG_BYTES:,}-byte limit")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(display, f"cannot read: {exc.strerror or exc}") from None
    if b"\x00" in data[:65536]:
        raise InputError(display, "binary file (contains NUL bytes), not a train log")
    text = data.decode("utf-8", errors="replace")
    if text.count("\ufffd") > max(16, len(text) // 100):
        raise InputError(display, "not UTF-8 text (too many undecodable bytes), not a train log")
    return parse_log(text, display)


def parse_log(text: str, name: str) -> RunLog:
    """Parse the text of a train log. Never raises on odd content: unknown lines are ignored."""
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # A log line longer than this is not one a training script printed; parsing all of it would let one
    # 30 MB line cost minutes of regex backtracking and hundreds of MB (hostile input).
    lines = [_PREFIX.sub("", line[:MAX_LOG_LINE_CHARS].rstrip()) for line in raw_lines]
    echo, echo_counts = _echo_mask(lines)
    runs: list[RunLog] = []
    current = _new_run(name, 1)
    state = _RunState()
    for index, line in enumerate(lines):
        number = index + 1
        if echo[index]:
            if echo_counts.get(index) and state.finished:
                runs.append(_finish(current, state))
                current, state = _new_run(name, number), _RunState()
            current.echo_lines += echo_counts.get(index, 0)
            continue
        if state.finished and _RUN_START.match(line):
            runs.append(_finish(current, state))
            current, state = _new_run(name, number), _RunState()
        evidence = Evidence(number, raw_lines[index][:MAX_LOG_LINE_CHARS].rstrip())
        current._lines[number] = evidence
        current.last_line = number
        _parse_line(current, state, line, evidence)
    runs.append(_finish(current, state))
    runs = [r for r in runs if _has_content(r)] or runs[-1:]
    _inherit_configuration(runs)
    last = runs[-1]
    last.earlier_runs = runs[:-1]
    return last


def _inherit_configuration(runs: list[RunLog]) -> None:
    """A run that printed no seed of its own (a log whose tail was printed twice, without the header) is the
    same process as the run before it: it takes the configuration keys it lacks from that run."""
    for previous, run in pairwise(runs):
        if run.seed is not None or previous.seed is None:
            continue
        for key, value in previous.hyperparameters.items():
            if key not in run.hyperparameters:
                run.hyperparameters[key] = value
                line = previous.hyperparameter_lines[key]
                run.hyperparameter_lines[key] = line
                if line in previous._lines:
                    run._lines.setdefault(line, previous._lines[line])
        run.seed = previous.seed
        run.world_size = run.world_size if run.world_size is not None else previous.world_size


def _new_run(name: str, first_line: int) -> RunLog:
    return RunLog(name=name, first_line=first_line)


def _has_content(run: RunLog) -> bool:
    return bool(run.metrics or run.sizes or run.train_time_ms is not None or run.hyperparameters)


# --- echoed source -----------------------------------------------------------------------------------


def _echo_mask(lines: list[str]) -> tuple[list[bool], dict[int, int]]:
    """Mark lines that are echoed Python source; return the mask and, per echo start, its source-line count.

    Scripts echo their source (`log0(code)`) and then a line of '=' characters, so the log is split at those
    separators; a segment with several top-level Python statements holds source. The source starts at its
    module docstring or first statement (the previous run's results may precede it in the same segment) and
    runs to the separator, or, when no separator closes it, to the end of its last top-level block.
    """
    mask = [False] * len(lines)
    counts: dict[int, int] = {}
    for start, end, closed in _segments(lines):
        segment = lines[start:end]
        markers = [i for i, line in enumerate(segment) if _FIXTURE_MARKER.match(line)]
        signatures = [i for i, line in enumerate(segment) if _CODE_SIGNATURE.match(line)]
        if len(signatures) < 3 and not markers:
            continue
        first = min([*markers, *([_code_start(segment, signatures[0])] if signatures else [])])
        stop = end if closed else start + _code_end(segment)
        for i in range(start + first, stop):
            mask[i] = True
        removed = sum(int(_FIXTURE_MARKER.match(segment[i]).group(1)) for i in markers)  # type: ignore[union-attr]
        counts[start + first] = (stop - start - first - len(markers)) + removed
    return mask, counts


def _code_start(segment: list[str], first_statement: int) -> int:
    """Walk back from the first statement over comments, blank lines and the module docstring."""
    i = first_statement
    while i > 0:
        previous = segment[i - 1].strip()
        if not previous or previous.startswith("#"):
            i -= 1
            continue
        if _closes_docstring(previous):
            opening = _docstring_opening(segment, i - 1)
            if opening is None:
                break
            i = opening
            continue
        break
    # Trailing blank lines before the code belong to the log, not the source.
    while i < first_statement and not segment[i].strip():
        i += 1
    return i


def _closes_docstring(line: str) -> bool:
    return line.endswith(('"""', "'''")) or line.startswith(('"""', "'''"))


def _docstring_opening(segment: list[str], closing: int) -> int | None:
    """Index of the line that opens the docstring closed at `closing` (a one-line docstring opens itself)."""
    line = segment[closing].strip()
    quote = '"""' if '"""' in line else "'''"
    if line.count(quote) >= 2:
        return closing
    for j in range(closing - 1, max(-1, closing - 400), -1):
        if quote in segment[j]:
            return j
    return None


def _segments(lines: list[str]) -> Iterator[tuple[int, int, bool]]:
    start = 0
    for i, line in enumerate(lines):
        if _SEPARATOR.match(line):
            yield start, i, True
            start = i + 1
    yield start, len(lines), False


def _code_end(segment: list[str]) -> int:
    """Index just past the echoed code in an unclosed segment."""
    last = 0
    for i, line in enumerate(segment):
        if _CODE_SIGNATURE.match(line) or _FIXTURE_MARKER.match(line):
            last = i + 1
    # Extend over the body of the last statement (indented or blank lines).
    while last < len(segment) and (not segment[last].strip() or segment[last][:1] in (" ", "\t")):
        last += 1
    return last


# --- one line at a time ------------------------------------------------------------------------------


@dataclass
class _RunState:
    finished: bool = False  # a stop line or a final metric was seen: a new header starts a new run
    in_preamble: bool = True  # before the first training step
    hp_block: bool = False  # inside an indented `Hyperparameters:` dump
    hp_oneline: bool = False  # the line after `--- Hyperparameters ---`
    seen_compressed_model: bool = False
    stop_seen: bool = False
    last_step: tuple[int, int, float, Evidence] | None = None
    calibration_hint: str | None = None
    pending: dict[str, Metric] = field(default_factory=dict)


def _parse_line(run: RunLog, state: _RunState, line: str, ev: Evidence) -> None:
    if state.hp_block:
        match = _HP_INDENTED.match(line)
        if match:
            _set_hp(run, match["k"], match["v"].strip(), ev.line, explicit=True)
            return
        state.hp_block = False
    if state.hp_oneline:
        state.hp_oneline = False
        if _parse_header_tokens(run, line, ev.line, explicit=True):
            return
    if _HP_HEADER.match(line):
        state.hp_block = True
        return
    if _HP_ONELINE_HEADER.match(line):
        state.hp_oneline = True
        return
    if _PROGRESS.match(line):
        state.in_preamble = False
        _parse_step_time(state, line, ev)
        _parse_step_eval(run, line, ev)
        return
    if _EVAL_TIMER.match(line) or _EVAL_PROGRESS.match(line):
        state.in_preamble = False
    if _parse_stop(run, state, line, ev):
        return
    if _parse_metric(run, state, line, ev):
        return
    if _parse_size(run, state, line, ev):
        return
    if _parse_timing(run, state, line, ev):
        return
    if _parse_data(run, line, ev):
        return
    if state.in_preamble:
        _parse_header_tokens(run, line, ev.line, explicit=False) or _parse_header_pair(run, line, ev.line)


def _set_hp(run: RunLog, key: str, value: str, line: int, explicit: bool) -> None:
    if key in run.hyperparameters and not explicit:
        return  # an explicit dump wins over a header line that repeats the key
    run.hyperparameters[key] = value
    run.hyperparameter_lines[key] = line


def _parse_header_tokens(run: RunLog, line: str, number: int, explicit: bool) -> bool:
    """`seed:1337`, `world_size:8 grad_accum_steps:1`, `seed=42 vocab_size=8192 ...` (all tokens key:value)."""
    tokens = line.split()
    if not tokens:
        return False
    matches = [_HEADER_TOKEN.match(t) for t in tokens]
    if not all(matches):
        return False
    for match in matches:
        _set_hp(run, match["k"], match["v"], number, explicit)  # type: ignore[index]
    return True


def _parse_header_pair(run: RunLog, line: str, number: int) -> bool:
    """`train_shards: 80`, `val_tokens: 47851520` (one `key: value` pair on a line of its own)."""
    match = _HEADER_PAIR.match(line)
    if match:
        _set_hp(run, match["k"], match["v"], number, explicit=False)
    return bool(match)


def _parse_step_time(state: _RunState, line: str, ev: Evidence) -> None:
    match = _STEP_TIME.match(line)
    if match:
        value = to_float(match["ms"])
        if value is not None:
            state.last_step = (int(match["step"]), int(match["total"]), value, ev)


_STEP_EVAL = re.compile(rf"\bval_loss[:=]\s*(?P<loss>{NUM})[,\s]+val_bpb[:=]\s*(?P<bpb>{NUM})")


def _parse_step_eval(run: RunLog, line: str, ev: Evidence) -> None:
    """Training-time evals are not results, but some claims quote them (pre-quantization scores)."""
    match = _STEP_EVAL.search(line)
    bpb = to_float(match["bpb"]) if match else None
    if match and bpb is not None:
        run.last_step_eval = Metric("training-time eval", to_float(match["loss"]), bpb, match["loss"], match["bpb"],
                                    False, None, (ev,), diagnostic=True)


def _parse_stop(run: RunLog, state: _RunState, line: str, ev: Evidence) -> bool:
    match = _STOP.match(line)
    if not match:
        return False
    run.train_time_ms = to_float(match["ms"])
    run.train_time_evidence = ev
    run.stop_reason = match["reason"] or "stopped"
    run.stop_step = int(match["step"]) if match["step"] else None
    run.planned_steps = int(match["total"]) if match["total"] else None
    state.stop_seen = state.finished = True
    state.in_preamble = False
    return True


def _parse_metric(run: RunLog, state: _RunState, line: str, ev: Evidence) -> bool:
    match = _METRIC.match(line)
    if not match:
        return False
    method_text = match["method"]
    if method_text.lower().startswith("step") or "/" in method_text:
        return False  # training progress (`step:N/M val_loss:...`), not a final result
    bpb = to_float(match["bpb"])
    if bpb is None:
        return False
    method = _base_method(method_text)
    metric = Metric(
        method=method,
        val_loss=to_float(match["loss"]),
        val_bpb=bpb,
        loss_text=match["loss"],
        bpb_text=match["bpb"],
        exact="_exact" in method_text,
        eval_time_ms=_eval_ms(match["rest"]),
        evidence=(ev,),
        diagnostic=bool(_DIAGNOSTIC.search(method)),
    )
    previous = state.pending.get(method)
    if previous is not None and _twins(previous, metric):
        metric = _merge_twins(previous, metric)
    state.pending[method] = metric  # a later result of the same method supersedes the earlier one
    if not metric.diagnostic:
        state.finished = True
    state.in_preamble = False
    return True


def _twins(previous: Metric, current: Metric) -> bool:
    """The rounded line and its `_exact` twin, printed next to each other."""
    return (
        len(previous.evidence) == 1
        and previous.exact != current.exact
        and current.evidence[0].line - previous.evidence[0].line <= 3
    )


def _merge_twins(a: Metric, b: Metric) -> Metric:
    exact, rounded = (a, b) if a.exact else (b, a)
    eval_ms = exact.eval_time_ms if exact.eval_time_ms is not None else rounded.eval_time_ms
    return replace(exact, eval_time_ms=eval_ms, evidence=(*a.evidence, *b.evidence))


def _eval_ms(rest: str) -> float | None:
    match = _EVAL_MS.search(rest)
    if match:
        return to_float(match["v"])
    match = _EVAL_S.search(rest)
    if match:
        seconds = to_float(match["v"])
        return None if seconds is None else seconds * 1000.0
    return None


def _parse_size(run: RunLog, state: _RunState, line: str, ev: Evidence) -> bool:
    def add(kind: str, value: str | int, scheme: str | None = None) -> None:
        run.sizes.append(SizeLine(kind, int(value), scheme.strip() if scheme else None, ev))

    if match := _SERIALIZED.match(line):
        if match["scheme"]:
            add("model", match["n"], match["scheme"])
            state.seen_compressed_model = True
        else:
            add("raw_model", match["n"])
    elif match := _CODE_SIZE.match(line):
        add({"compressed": "code_compressed", "uncompressed": "code_uncompressed"}.get(match["kind"] or "", "code"),
            match["n"])
    elif match := _TOTAL.match(line):
        # An unlabeled total is the raw (uncompressed) one unless a compressed model line preceded it.
        if match["scheme"]:
            add("total", match["n"], match["scheme"])
        else:
            add("total" if state.seen_compressed_model else "raw_total", match["n"])
    elif match := _ARTIFACT_MB.match(line):
        add("code", match["code"])
    elif match := _BUDGET.match(line):
        add("total", match["n"])
    elif match := _PIPE_RAW.match(line):
        add("raw_model", match["model"])
        add("code", match["code"])
        add("raw_total", match["total"])
    elif match := _PIPE_MODEL.match(line):
        add("model", match["model"], match["scheme"])
        add("total", match["total"], match["scheme"])
    elif match := _SUMMARY_BYTES.match(line):
        add("total", match["n"])
    else:
        return False
    return True


def _parse_timing(run: RunLog, state: _RunState, line: str, ev: Evidence) -> bool:
    if match := _TOTAL_EVAL.match(line):
        run.total_eval_time_s = to_float(match["v"])
        run.total_eval_evidence = ev
    elif _EVAL_TIMER.match(line):
        run.eval_timer_evidence = ev
    elif _GPTQ_RESERVE.match(line):
        run.gptq_reserve_evidence = ev
    elif match := _GENERATED.match(line):
        seconds = to_float(match["v"])
        run.calibrations.append(Calibration("self-generated", seconds, ev, state.stop_seen))
        state.calibration_hint = "self-generated"
    elif match := _HESSIAN_DONE.match(line):
        seconds_text = match["a"] or match["b"] or match["c"]
        seconds = to_float(seconds_text) if seconds_text else None
        source = _calibration_source(state.calibration_hint, line)
        run.calibrations.append(Calibration(source, seconds, ev, state.stop_seen))
        state.calibration_hint = None
    elif re.match(r"^gptq:|^GPTQ:", line):
        if _SELF_GEN.search(line):
            state.calibration_hint = "self-generated"
        elif "training data" in line.lower():
            state.calibration_hint = "training data"
        elif "calibration data" in line.lower():
            state.calibration_hint = state.calibration_hint or "unspecified calibration data"
        return False  # other gptq lines may still carry header tokens
    else:
        return False
    return True


def _calibration_source(hint: str | None, line: str) -> str:
    if _SELF_GEN.search(line):
        return "self-generated"
    return hint or "unspecified calibration data"


def _parse_data(run: RunLog, line: str, ev: Evidence) -> bool:
    matched = False
    if match := _VAL_TOKENS.match(line):
        run.val_tokens = int(match["a"] or match["b"])
        run.val_tokens_evidence = ev
        matched = True
    if match := _SIDECAR.match(line):
        run.byte_sidecar = match["state"].lower() in ("enabled", "on", "true", "1")
        run.byte_sidecar_evidence = ev
        return True
    if (match := _TOKENIZER.search(line)) and line.startswith("val_bpb:enabled"):
        run.tokenizer_path = match["p"]
        run.tokenizer_evidence = ev
    if match := _TRAIN_SHARDS.search(line):
        run.train_shards = int(match["n"])
    return matched


# --- end of run --------------------------------------------------------------------------------------


def _finish(run: RunLog, state: _RunState) -> RunLog:
    run.metrics = _mark_aliases(sorted(state.pending.values(), key=lambda m: m.line))
    if run.train_time_ms is None and state.last_step is not None:
        step, total, ms, ev = state.last_step
        run.train_time_ms, run.train_time_evidence = ms, ev
        run.stop_step, run.planned_steps = step, total
        run.stop_reason = "iterations" if step >= total else None
    hp = run.hyperparameters
    if run.tokenizer_path is None and "tokenizer_path" in hp:
        run.tokenizer_path = hp["tokenizer_path"] or None
        run.tokenizer_evidence = run._lines.get(run.hyperparameter_lines["tokenizer_path"])
    if run.val_tokens is None and (hp.get("val_tokens") or "").isdigit():
        run.val_tokens = int(hp["val_tokens"])
        run.val_tokens_evidence = run._lines.get(run.hyperparameter_lines["val_tokens"])
    run.seed = _int_hp(hp, SEED_KEYS)
    run.world_size = _int_hp(hp, WORLD_SIZE_KEYS)
    return run


def _int_hp(hp: dict[str, str], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        raw = hp.get(key, "")
        if re.fullmatch(r"-?\d+", raw.strip()):
            return int(raw)
    return None


def _mark_aliases(metrics: list[Metric]) -> list[Metric]:
    """A method whose numbers repeat another method's (at the coarser printed precision) is an alias.

    The more precise line is kept as the real one; at equal precision the later line is the alias, as with
    the `final_int8_zlib_roundtrip_exact` compatibility line that repeats the sliding-window score.
    """
    out: list[Metric] = []
    for metric in metrics:
        twin = next((m for m in out if m.alias_of is None and not m.diagnostic and _same_numbers(m, metric)), None)
        if twin is None or metric.diagnostic:
            out.append(metric)
            continue
        if metric.bpb_decimals > twin.bpb_decimals:
            out[out.index(twin)] = _alias(twin, metric.method)
            out.append(metric)
        else:
            out.append(_alias(metric, twin.method))
    return out


def _alias(metric: Metric, of: str) -> Metric:
    return replace(metric, alias_of=of)


def _same_numbers(a: Metric, b: Metric) -> bool:
    places = min(a.bpb_decimals, b.bpb_decimals)
    if places < 4 or round(a.val_bpb, places) != round(b.val_bpb, places):
        return False
    if a.val_loss is None or b.val_loss is None:
        return True
    lp = min(a.loss_decimals, b.loss_decimals)
    return round(a.val_loss, lp) == round(b.val_loss, lp)

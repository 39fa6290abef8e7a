"""PG403 training-data-at-eval."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from pgaudit.analysis.dataflow import TRAIN, VAL, Labels
from pgaudit.analysis.events import can_follow
from pgaudit.analysis.evidence import LogLine
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import Scope, call_name, dotted
from pgaudit.analysis.names import is_train_data_name
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import tree_nodes, walk

from .base import Example, Rule, short

_RULINGS = (
    "https://github.com/openai/parameter-golf/pull/1047",
    "https://github.com/openai/parameter-golf/issues/677",
    "https://github.com/openai/parameter-golf/pull/925",
)
# Calls that read or consume data (loaders, shard readers, calibration and table builders).
_READER = re.compile(
    r"(?i)(load|loader|stream|read|shard|fromfile|memmap|glob|^open$|next_batch|batch|calib|hessian|collect|"
    r"prefill|fill|build|count|fit|sample|^take$|^next$|^iter$)"
)
_CALIBRATION = re.compile(r"(?i)(calib|hessian|gptq|collect)")
_CAP_STOP = re.compile(r"stopping_early:\s*wallclock_cap\s+train_time:\s*(\d+)ms")
_CALIBRATION_LOG = re.compile(r"(?i)\b(gptq|hessian|calibrat)")
_CALIBRATING = re.compile(r"(?i)(calibrat|hessian|collect)")
CAP_MS = 600_000
# A time slice reserved before the cap for post-training calibration (GPTQ_RESERVE_SECONDS, gptq_reserve_ms).
_RESERVE = re.compile(r"(?i)((gptq|calib\w*|hessian\w*)_?reserve|reserve_?(gptq|calib|hessian)|^reserve_(seconds|ms|s)$)")
_OPT_STEP = re.compile(r"(?i)(^|_)(opt|optim|optimizer|optimizers|opts)(\d*|_\w+)?$")


class TrainingDataAtEval(Rule):
    """Training shards read after the training loop has ended: in the evaluation phase, or after the cap.

    What it does:
        Finds the training loop (a loop that differentiates a loss or steps an optimizer and reads training
        data) and reports reads of training data (`fineweb_train_*`, `train_loader`, `train_files`) that can
        run after it ends: a loader built over the training shards, GPTQ/Hessian calibration fed by them, an
        n-gram table prefilled from them. It is an error when an evaluation function (one that scores
        validation tokens) reads them; a warning when only the timing decides -- post-training calibration on
        training shards is legal if it finishes inside the 600 s training budget, which the logs show
        (`stopping_early: ... train_time:...ms` plus `gptq:collected ... in Xs` / `gptq:calibrated ... in Xs`
        must stay within 600 s; PG504 checks those lines). It is an error again when the folder's log settles
        it: the run stopped at or past the cap (`stopping_early: wallclock_cap train_time:600067ms`) and then
        printed calibration lines, so the calibration read training data after the budget however long it
        took. It is an error too when the code settles it: the training loop compares the elapsed wall-clock time
        (whatever holds it) with exactly 600 s / 600,000 ms in the run's configuration, so it stops only at the
        full cap (unless a log shows it stopped earlier). Info when the program reserves time for it
        (`GPTQ_RESERVE_SECONDS`, `gptq_reserve_ms`).

    Why is this bad:
        "You aren't allowed to access any training data during evaluation, unless you pay for those bits in
        the <16MB limit" (README, R3). The maintainers read this as: any computation that reads training data
        must finish inside the 600 s training budget; PR #1028 was flagged because "GPTQ calibration read
        training data after the 600s wallclock cap" (R6), and eval-time n-gram oracles prefilled from the
        training shards (PR #925, #945) were closed.

    Example:
        # after `while True: ... if stop: break` has used the full 600 s
        calib_loader = DistributedTokenLoader(args.train_files, rank, world_size, device)
        hessians = collect_hessians(model, calib_loader, num_batches=256)

    Legal look-alikes:
        Calibration on training shards inside a reserved slice of the 600 s (`GPTQ_RESERVE_SECONDS`, PR #1047,
        PR #2135), reported at info; self-generated calibration after the cap (PR #1019: the model's own
        samples read no dataset); counts built from training data during training and stored in the artifact
        ("paid for", PR #1047's TrainNgramOracle); reads of training shards before or inside the training
        loop (warm-up steps, loader construction).

    References:
        R3 and R6 of the catalogue; PR #1047 (GPTQ_RESERVE_MS fix for #1028), Issue #677, PR #925 / #945.
    """

    code = "PG403"
    name = "training-data-at-eval"
    severity = Severity.ERROR
    confidence = Confidence.MEDIUM
    catalogue_ids = ("R3", "R6")
    ruling_urls = _RULINGS
    fix = (
        "Read training shards only inside the 600 s training budget: stop the training loop early with a "
        "reserve (GPTQ_RESERVE_SECONDS) that covers calibration, calibrate on self-generated tokens, or store "
        "what evaluation needs from training data in the artifact."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        index, flow = facts.index, facts.flow
        loops = {id(s): self._training_loops(facts, s) for s in flow.scopes}
        training = {id(s) for s in flow.scopes if loops[id(s)]}
        if not training:
            return
        for _ in range(8):  # scopes that (transitively) run a training loop
            grown = False
            for scope in flow.scopes:
                if id(scope) in training:
                    continue
                if any(id(c) in training for call in index.calls_in(scope) for c in flow.resolve(call, scope) if c is not scope):
                    training.add(id(scope))
                    grown = True
            if not grown:
                break
        reserve = _reserve_knob(facts)
        self._cap = _full_cap_stop(facts, [(s, loop) for s in flow.scopes for loop in loops[id(s)]])
        for scope in flow.scopes:
            if id(scope) not in training:
                continue
            finding = self._after_training(facts, scope, loops[id(scope)], training, reserve)
            if finding is not None:
                yield finding

    # --- the training loop ---------------------------------------------------------------------

    def _training_loops(self, facts: Facts, scope: Scope) -> list[ast.AST]:
        out = []
        for node in facts.index.walk_scope(scope):
            if not isinstance(node, ast.For | ast.While | ast.AsyncFor):
                continue
            calls = [n for n in walk(node) if isinstance(n, ast.Call)]
            steps = any(_is_step(c) for c in calls) or any(
                facts.events.of(callee).has_step for c in calls for callee in facts.flow.resolve(c, scope) if callee is not scope
            )
            if steps and any(_train_only(facts.flow.labels(c, scope)) for c in calls):
                if facts.reachability(node).effective is False:
                    continue  # a disabled phase (`if args.distill_steps > 0:` with the default 0) does not end training
                out.append(node)
        return out

    def _training_end(self, facts: Facts, scope: Scope, loops: list[ast.AST], training: set[int]) -> ast.AST | None:
        marks: list[ast.AST] = list(loops)
        for call in facts.index.calls_in(scope):
            if any(id(c) in training and c is not scope for c in facts.flow.resolve(call, scope)):
                marks.append(call)
        if not marks:
            return None
        return max(marks, key=lambda n: (getattr(n, "end_lineno", 0) or 0))

    # --- reads after it ------------------------------------------------------------------------

    def _after_training(
        self, facts: Facts, scope: Scope, loops: list[ast.AST], training: set[int], reserve: str | None
    ) -> Finding | None:
        end = self._training_end(facts, scope, loops, training)
        if end is None:
            return None
        end_line = getattr(end, "end_lineno", 0) or 0
        for call in facts.index.calls_in(scope):
            if call.lineno <= end_line or not can_follow(end, call, scope):
                continue
            callees = [c for c in facts.flow.resolve(call, scope) if c is not scope]
            if any(id(c) in training for c in callees):
                continue
            direct = _reader(facts, scope, call)
            inner = None if direct else self._reads_inside(facts, _followed(facts, scope, call), training)
            if not direct and inner is None:
                continue
            scoring = any("score" in facts.events.of(c).kinds for c in callees) or (
                inner is not None and "score" in facts.events.of(inner[0]).kinds
            )
            return self._report(facts, scope, call, end, inner, scoring, reserve)
        return None

    def _reads_inside(self, facts: Facts, callees: list[Scope], training: set[int]) -> tuple[Scope, ast.Call] | None:
        """A training-data read inside a function called after training (two levels deep)."""
        work = [(c, 0) for c in callees]
        seen: set[int] = set()
        while work:
            scope, depth = work.pop(0)
            if id(scope) in seen or id(scope) in training or depth > 2:
                continue
            seen.add(id(scope))
            for call in facts.index.calls_in(scope):
                if _reader(facts, scope, call, symbolic=True):
                    return scope, call
                work.extend((c, depth + 1) for c in _followed(facts, scope, call))
        return None

    def _report(
        self, facts: Facts, scope: Scope, call: ast.Call, end: ast.AST, inner: tuple[Scope, ast.Call] | None,
        scoring: bool, reserve: str | None,
    ) -> Finding:
        where = f"`{short(call)}` (line {call.lineno})"
        if inner is not None:
            where += f", which reads them at `{short(inner[1], 50)}` ({inner[0].qualname}, line {inner[1].lineno})"
        head = f"{where} reads training data after the training loop ends (line {getattr(end, 'end_lineno', '?')})"
        related = [(inner[0].unit, inner[1])] if inner is not None else []
        if scoring:
            message = (
                f"{head}, in the evaluation phase: training data may not be accessed during evaluation unless "
                "its bits are paid for in the 16 MB artifact (R3)."
            )
            return self.finding(facts, scope.unit, call, message, related=related)
        calibration = _CALIBRATION.search(
            " ".join([call_name(call), call_name(inner[1]) if inner else "", *_assigned_names(call)])
        )
        kind = "calibration" if calibration else "this read"
        timing = (
            f"{kind} is legal only if it finishes inside the 600 s training budget: in the logs, the "
            "`stopping_early: ... train_time:...ms` value plus the `gptq:collected ... in Xs` / "
            "`gptq:calibrated ... in Xs` time must stay within 600 s (PG504 checks these lines; PR #1028 was "
            "flagged for calibration on training data after the cap)."
        )
        temperature = _feeds_temperature(facts, scope, call)
        if temperature:
            message = (
                f"{head} to fit a temperature (`{temperature}`): a scalar calibrated on training tokens is a legal "
                "look-alike (R20; the Ternary record with a post-training temperature grid was merged), but the read "
                "still happens after the training loop and its time is not counted in train_time."
            )
            return self.finding(facts, scope.unit, call, message, severity=Severity.INFO, related=related)
        if reserve:
            message = f"{head}; the program reserves training time for it (`{reserve}`), so {timing}"
            return self.finding(facts, scope.unit, call, message, severity=Severity.INFO, related=related)
        # the log says calibration ran after the cap: this read after training is it, whatever it is called
        shown = _calibrated_after_cap(facts)
        if shown is not None:
            stop, after = shown
            message = (
                f"{head} and no time reserve is configured. The log shows training stopped at the cap "
                f"(`{stop.text.strip()}`, {stop.source}:{stop.number}) and calibration ran after it "
                f"(`{after.text.strip()[:80]}`, {after.source}:{after.number}): however long it took, it read "
                "training data after the 600 s training budget (R6; PR #1028 was flagged for this)."
            )
            return self.finding(facts, scope.unit, call, message, related=related)
        # the code settles it: the loop stops only at the full 600 s cap, so anything after it is past the budget
        cap = None if _stopped_below_cap(facts) else getattr(self, "_cap", None)
        if cap is not None:
            loop_scope, compare = cap
            message = (
                f"{head} and no time reserve is configured. The training loop stops at the full 600 s cap "
                f"(`{short(compare, 60)}`, line {compare.lineno}, compares the elapsed time with "
                f"{_cap_value(facts, loop_scope, compare)}), so {kind} reads training data after the 600 s training "
                "budget, however long it takes (R6; PR #1028 was flagged for this)."
            )
            return self.finding(facts, scope.unit, call, message, related=[*related, (loop_scope.unit, compare)])
        message = f"{head} and no time reserve is configured; {timing}"
        return self.finding(facts, scope.unit, call, message, severity=Severity.WARNING, related=related)


_TIME_CALLS = {"perf_counter", "time", "monotonic", "perf_counter_ns", "monotonic_ns", "time_ns"}
_CAP_VALUES = (600.0, 600_000.0)


def _full_cap_stop(facts: Facts, loops: list[tuple[Scope, ast.AST]]) -> tuple[Scope, ast.Compare] | None:
    """A comparison inside a training loop of elapsed wall-clock time (whatever holds it: a value computed from
    `time.perf_counter()`) with exactly 600 s or 600,000 ms in the run's configuration: the loop runs to the
    whole budget, no slice reserved (a reserve shows as a smaller cap, `max_ms - reserve_ms`)."""
    config = "logged" if "logged" in facts.configs else "default"
    evaluator = facts.evaluator(config)
    for scope, loop in loops:
        timed = _time_names(facts, scope)
        for node in walk(loop):
            if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Gt | ast.GtE | ast.Lt | ast.LtE)):
                continue
            left, right = node.left, node.comparators[0]
            elapsed, cap = (left, right) if isinstance(node.ops[0], ast.Gt | ast.GtE) else (right, left)
            if not _is_elapsed(elapsed, timed):
                continue
            value = evaluator.value(cap, scope)
            if isinstance(value, int | float) and not isinstance(value, bool) and float(value) in _CAP_VALUES:
                return scope, node
    return None


def _cap_value(facts: Facts, scope: Scope, compare: ast.Compare) -> str:
    config = "logged" if "logged" in facts.configs else "default"
    side = compare.comparators[0] if isinstance(compare.ops[0], ast.Gt | ast.GtE) else compare.left
    where = "in the submitted run configuration" if config == "logged" else "with the default environment"
    return f"{facts.evaluator(config).value(side, scope):g} {where}"


def _time_names(facts: Facts, scope: Scope) -> set[str]:
    """Local names holding elapsed time: assigned (or accumulated) from a clock read or from such names."""
    fs = facts.flow.fs.get(id(scope))
    assigns = [(t.id, v) for t, v, _how in (fs.assigns if fs else []) if isinstance(t, ast.Name) and v is not None]
    out: set[str] = set()
    for _ in range(4):
        grown = {name for name, value in assigns if name not in out and _is_elapsed(value, out)}
        if not grown:
            break
        out |= grown
    return out


def _is_elapsed(expr: ast.AST, timed: set[str]) -> bool:
    for n in walk(expr):
        if isinstance(n, ast.Call) and call_name(n) in _TIME_CALLS and dotted(n.func).startswith("time"):
            return True
        if isinstance(n, ast.Name) and n.id in timed:
            return True
    return False


def _stopped_below_cap(facts: Facts) -> bool:
    """The logs show the run stopped before 600,000 ms (a launch that set a smaller cap)."""
    stops = [int(m[1]) for line in facts.log_lines if (m := _CAP_STOP.search(line.text))]
    return bool(stops) and max(stops) < CAP_MS


def _assigned_names(call: ast.Call) -> list[str]:
    """Names the statement holding `call` assigns (`calib_loader = Loader(...)` says what the read is for)."""
    node: ast.AST | None = call
    while node is not None and not isinstance(node, ast.stmt):
        node = getattr(node, "pg_parent", None)
    if not isinstance(node, ast.Assign | ast.AnnAssign):
        return []
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [n.id for t in targets for n in walk(t) if isinstance(n, ast.Name)]


def _calibrated_after_cap(facts: Facts) -> tuple[LogLine, LogLine] | None:
    """A logged run that stopped at or past 600,000 ms and then printed calibration lines: the time of that
    calibration is outside the budget whatever it was, so the logs settle what the code alone cannot."""
    stop: LogLine | None = None
    after: list[LogLine] = []
    for line in facts.log_lines:
        match = _CAP_STOP.search(line.text)
        if match:
            if after:
                break
            stop = line if int(match[1]) >= CAP_MS else None
        elif stop is not None and line.source == stop.source and _CALIBRATION_LOG.search(line.text):
            after.append(line)
    if stop is None or not after:
        return None
    # Quote the line that names the calibration itself, not a `gptq:` housekeeping line.
    return stop, next((a for a in after if _CALIBRATING.search(a.text)), after[0])


def _followed(facts: Facts, scope: Scope, call: ast.Call) -> list[Scope]:
    """Callees worth looking into: a direct call by name, or a method call that resolves to one method.

    Name-based resolution of `x.method()` (and `super().__init__()`) is over-approximate: following every
    candidate would blame a function for what an unrelated class's method reads.
    """
    callees = [c for c in facts.flow.resolve(call, scope) if c is not scope]
    if isinstance(call.func, ast.Name):
        return callees
    if len(callees) == 1 and callees[0].name != "__init__":
        return callees
    return []


_TEMPERATURE = re.compile(r"(?i)(^|_)(temp|temperature|tau)(_|$)")


def _feeds_temperature(facts: Facts, scope: Scope, call: ast.Call) -> str:
    """`calib = train_loader.stream.take(n)` later passed to `find_temp(..., calib, ...)`: the callee's name."""
    stmt = getattr(call, "pg_parent", None)
    while stmt is not None and not isinstance(stmt, ast.stmt):
        stmt = getattr(stmt, "pg_parent", None)
    if not isinstance(stmt, ast.Assign):
        return ""
    names = {n.id for t in stmt.targets for n in walk(t) if isinstance(n, ast.Name)}
    for later in facts.index.calls_in(scope):
        if later.lineno < stmt.lineno or not _TEMPERATURE.search(call_name(later)):
            continue
        args = [*later.args, *(kw.value for kw in later.keywords)]
        if any(isinstance(n, ast.Name) and n.id in names for a in args for n in walk(a)):
            return call_name(later)
    return ""


def _is_step(call: ast.Call) -> bool:
    if call_name(call) == "backward" and isinstance(call.func, ast.Attribute):
        return True
    if call_name(call) == "step" and isinstance(call.func, ast.Attribute):
        # `opt.step()` by its name, or any argument-less `.step()` (optimizers and LR schedulers), whatever
        # the object is called
        return not call.args or _OPT_STEP.search(dotted(call.func.value).rsplit(".", 1)[-1] or "") is not None
    return False


def _train_only(labels: Labels) -> bool:
    return TRAIN in labels and VAL not in labels


def _reader(facts: Facts, scope: Scope, call: ast.Call, symbolic: bool = False) -> bool:
    """A call that reads or consumes training data: a reader-like name given training data (or on it)."""
    # a reader by its (library) name, or one of the program's own functions, whatever it is called
    own = bool(facts.flow.resolve(call, scope))
    if not _READER.search(call_name(call)) and not own:
        return False
    parts: list[ast.AST] = [*call.args, *(kw.value for kw in call.keywords)]
    label = facts.flow.symbolic if symbolic else facts.flow.labels
    if isinstance(call.func, ast.Attribute):
        # `train_loader.next_batch()`: the receiver holds training data only; a reused handle (`f`) carries
        # the union of everything it was ever bound to. A name saying so is required only of library methods.
        receiver = dotted(call.func.value)
        named = any(is_train_data_name(part) for part in receiver.split("."))
        if (named or own) and _train_only(label(call.func.value, scope)):
            return True
    return any(_train_only(label(p, scope)) for p in parts)


def _reserve_knob(facts: Facts) -> str | None:
    """The first name or env key of a calibration time reserve in the program, with a nonzero default."""
    for unit in facts.program.units:
        for node in tree_nodes(unit.tree):
            text = ""
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 60:
                text = node.value
            elif isinstance(node, ast.Name | ast.arg):
                text = node.id if isinstance(node, ast.Name) else node.arg
            elif isinstance(node, ast.Attribute):
                text = node.attr
            if text and _RESERVE.search(text) and not _zero_default(node):
                return text
    return None


def _zero_default(node: ast.AST) -> bool:
    """`os.environ.get("GPTQ_RESERVE_MS", "0")`: a reserve that is off unless the launch sets it."""
    parent = getattr(node, "pg_parent", None)
    if isinstance(parent, ast.Call) and call_name(parent) in ("get", "getenv") and len(parent.args) >= 2:
        default = parent.args[1]
        if isinstance(default, ast.Constant):
            try:
                return float(default.value) == 0  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False
    return False


_SETUP = '''
import glob
import os
import time
import numpy as np
import torch
import torch.nn.functional as F

class TokenLoader:
    def __init__(self, pattern):
        self.files = sorted(glob.glob(pattern))
        self.tokens = torch.from_numpy(np.fromfile(self.files[0], dtype=np.uint16).astype(np.int64))
        self.pos = 0

    def next_batch(self, n):
        chunk = self.tokens[self.pos:self.pos + n + 1]
        self.pos += n
        return chunk[:-1], chunk[1:]

def collect_hessians(model, loader, n_batches=4):
    hessians = {}
    for _ in range(n_batches):
        x, _y = loader.next_batch(64)
        h = model(x).float()
        hessians["emb"] = hessians.get("emb", 0) + h.T @ h
    return hessians

@torch.no_grad()
def eval_val(model, val_tokens):
    return F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:]).item()
'''

_TRAIN_LOOP = '''
    train_loader = TokenLoader("./data/fineweb_train_*.bin")
    model = torch.nn.Embedding(1024, 1024)
    opt = torch.optim.Adam(model.parameters())
    t0 = time.time()
    while True:
        x, y = train_loader.next_batch(64)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        if time.time() - t0 > stop_after:
            break
'''

# After the loop: Hessians from the training loader, then the final eval.
_CALIBRATE_AFTER = '''
    hessians = collect_hessians(model, train_loader)  # <- expected
    val_tokens = TokenLoader("./data/fineweb_val_*.bin").tokens
    print(len(hessians), eval_val(model, val_tokens))

if __name__ == "__main__":
    main()
'''

TrainingDataAtEval.invalid = (
    Example(
        title="training-shard Hessians after the loop, and a log showing training stopped at the cap before: error",
        code=_SETUP
        + '''
def main():
    stop_after = 600.0
'''
        + _TRAIN_LOOP
        + '''
    print("gptq:collecting hessians from training data")'''
        + _CALIBRATE_AFTER,
        log="step:4876/20000 train_loss:2.4410 train_time:599911ms\n"
        "stopping_early: wallclock_cap train_time:600067ms step:4876/20000\n"
        "gptq:collecting hessians from training data\n"
        "final_int6_roundtrip_exact val_loss:1.90000000 val_bpb:1.12500000\n",
        message="calibration ran after it (`gptq:collecting hessians from training data`, train_seed1337.log:3)",
    ),
    Example(
        title="a log that stops before the cap (570,093 ms) does not settle it: the calibration time decides",
        severity=Severity.WARNING,
        code=_SETUP
        + '''
def main():
    stop_after = 570.0
'''
        + _TRAIN_LOOP
        + _CALIBRATE_AFTER,
        log="stopping_early: wallclock_cap train_time:570093ms step:4700/20000\n"
        "gptq:loop-aware calibrated 41 layers in 11.5s\n",
        message="must stay within 600 s (PG504 checks these lines",
    ),
    Example(
        title="GPTQ Hessians from the training shards after a loop that stops only at the full 600 s (PR #639/#1028)",
        code=_SETUP
        + '''
def main():
    stop_after = float(os.environ.get("MAX_WALLCLOCK_SECONDS", 600.0))
'''
        + _TRAIN_LOOP
        + _CALIBRATE_AFTER,
        message="The training loop stops at the full 600 s cap",
    ),
    Example(
        title="an eval-time n-gram table prefilled from the training shards (PR #925 pattern)",
        code=_SETUP
        + '''
@torch.no_grad()
def eval_with_oracle(model, val_tokens, train_pattern):
    table = torch.zeros(1024, 1024)
    oracle_tokens = TokenLoader(train_pattern).tokens
    table.index_put_((oracle_tokens[:-1], oracle_tokens[1:]), torch.ones(oracle_tokens.numel() - 1), accumulate=True)
    logits = model(val_tokens[:-1]) + torch.log1p(table[val_tokens[:-1]])
    return F.cross_entropy(logits, val_tokens[1:]).item()

def main():
    stop_after = 600.0
'''
        + _TRAIN_LOOP
        + '''
    val_tokens = TokenLoader("./data/fineweb_val_*.bin").tokens
    print(eval_with_oracle(model, val_tokens, "./data/fineweb_train_*.bin"))  # <- expected

if __name__ == "__main__":
    main()
''',
        message="in the evaluation phase",
    ),
)

TrainingDataAtEval.valid = (
    Example(
        title="training stops early to leave a GPTQ reserve, then calibrates on training shards (PR #1047)",
        code=_SETUP
        + '''
def main():
    gptq_reserve_seconds = float(os.environ.get("GPTQ_RESERVE_SECONDS", 12.0))
    stop_after = 600.0 - gptq_reserve_seconds
'''
        + _TRAIN_LOOP
        + '''
    hessians = collect_hessians(model, train_loader)
    print(len(hessians))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="self-generated calibration after the cap (PR #1019) and periodic eval inside the loop",
        code=_SETUP
        + '''
@torch.no_grad()
def generate_calib(model, n=64):
    seq = torch.zeros(1, dtype=torch.long)
    for _ in range(n):
        seq = torch.cat([seq, model(seq[-1:]).argmax(-1)])
    return seq

def main():
    stop_after = 600.0
    val_tokens = TokenLoader("./data/fineweb_val_*.bin").tokens
'''
        + _TRAIN_LOOP.replace("            break", "            break\n        print(eval_val(model, val_tokens))")
        + '''
    calib = generate_calib(model)
    print(calib.numel(), eval_val(model, val_tokens))

if __name__ == "__main__":
    main()
''',
    ),
)

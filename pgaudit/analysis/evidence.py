"""Log evidence: which guarded branches the logged run actually executed.

A branch that prints `log0(f"ngram_cache:enabled orders={lo}-{hi}")` leaves `ngram_cache:enabled orders=2-7`
in the train log. When such a line is in the logs, every condition guarding that print was true (or false,
for an `else`) in the logged run, whatever the environment was: the strongest reachability evidence there
is. Lines of an echoed script (logs often begin with the source) are not evidence.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pgaudit.analysis.index import ProgramIndex, call_name
from pgaudit.analysis.reach import guards_of
from pgaudit.source.parse import walk

_PRINTERS = re.compile(r"(?i)(print|log)")
_OUTPUT_CALLS = frozenset({"print", "write", "info", "warning"})
_MIN_LITERAL = 8  # a template needs this much fixed text to be recognisable in a log
_CODE_LINE = re.compile(r"""(\bf["']|\bprint\(|\blog\w*\(|\bdef |\bimport |\breturn |\bif .*:\s*$|^\s*#)""")
# A text _CODE_LINE can match contains one of these (its alternatives' fixed parts): most log lines contain
# none, and checking them is ten times faster than the regex (logs have thousands of lines).
_CODE_PIECES = ('f"', "f'", "print(", "log", "def ", "import ", "return ", "if ", "#")


def _code_line(text: str) -> bool:
    return any(piece in text for piece in _CODE_PIECES) and _CODE_LINE.search(text) is not None


@dataclass(frozen=True)
class LogLine:
    source: str  # display path of the log
    number: int
    text: str


def world_size_from_logs(lines: Sequence[LogLine]) -> str | None:
    for line in lines:
        match = re.match(r"\s*world_size\s*[:=]\s*(\d+)\b", line.text)
        if match and not _code_line(line.text):
            return match.group(1)
    return None


def guard_evidence(index: ProgramIndex, lines: Sequence[LogLine]) -> dict[tuple[int, str], tuple[bool, LogLine]]:
    """(scope id, condition text) -> (truth in the logged run, the log line that proves it).

    Keyed by the condition's text within its function: `if use_ngram:` guarding the print and another
    `if use_ngram:` guarding the lookup are the same fact.
    """
    if not lines:
        return {}
    text = "\n".join(line.text for line in lines if not _code_line(line.text))
    evidence: dict[tuple[int, str], tuple[bool, LogLine]] = {}
    printers = _printer_scopes(index)
    ran: dict[int, tuple[object, LogLine]] = {}  # functions a log line proves ran
    hits: list[tuple[object, ast.Call, LogLine, str]] = []
    printed_by: dict[str, list[int]] = {}  # template -> the scopes of the prints that write it
    for scope in index.scopes:
        for node in index.calls_in(scope):
            if not (isinstance(node, ast.Call) and node.args and _prints(node, scope, index, printers)):
                continue
            pattern, anchor = template(node.args[0])
            if pattern is None or anchor not in text:
                continue
            hit = _first_match(pattern, anchor, lines, _indented(node.args[0]))
            if hit is None:
                continue
            printed_by.setdefault(pattern.pattern, []).append(id(scope))
            hits.append((scope, node, hit, pattern.pattern))
    # A line two prints write (`if not flag: log(X)`, and `log(X)` under `if flag:`) does not say which ran: it
    # proves only the conditions every one of those prints sits under, the same way.
    proven: dict[str, set[tuple[tuple[int, str], bool]]] = {}
    for scope, node, _hit, key in hits:
        held = {(condition_key(guard, scope), in_body) for guard, in_body in guards_of(node, scope)}
        proven[key] = held if key not in proven else proven[key] & held
    for scope, node, hit, key in hits:
        for guard, in_body in guards_of(node, scope):
            if (condition_key(guard, scope), in_body) in proven[key]:
                evidence.setdefault(condition_key(guard, scope), (in_body, hit))
        if not scope.is_module and len(set(printed_by[key])) == 1:
            ran.setdefault(id(scope), (scope, hit))
    _call_site_evidence(index, ran, evidence)
    return evidence


def _prints(call: ast.Call, scope: object, index: ProgramIndex, printers: set[int]) -> bool:
    """`print(...)`, `log0(...)`, or a call of a function of ours that prints its argument, whatever it is called."""
    if _PRINTERS.search(call_name(call)):
        return True
    return any(id(s) in printers for s in index.resolve_call(call, scope))  # type: ignore[arg-type]


def _printer_scopes(index: ProgramIndex) -> set[int]:
    """Functions (ids of their scopes) that write their first parameter somewhere: they hand it to print, a
    logger, `.write`, or another such function. `def v430(msg): print(msg, file=f)` is the script's `log0`."""
    first: dict[int, str] = {}
    for scope in index.scopes:
        if isinstance(scope.node, ast.FunctionDef | ast.AsyncFunctionDef):
            params = [a.arg for a in scope.node.args.args if a.arg not in ("self", "cls")]
            if params:
                first[id(scope)] = params[0]
    printers: set[int] = set()
    for _ in range(4):
        grew = False
        for scope in index.scopes:
            param = first.get(id(scope))
            if param is None or id(scope) in printers:
                continue
            for call in index.calls_in(scope):
                outputs = call_name(call) in _OUTPUT_CALLS or _PRINTERS.search(call_name(call)) or any(
                    id(s) in printers for s in index.resolve_call(call, scope)
                )
                if outputs and any(isinstance(n, ast.Name) and n.id == param for a in call.args for n in walk(a)):
                    printers.add(id(scope))
                    grew = True
                    break
        if not grew:
            break
    return printers


def _call_site_evidence(
    index: ProgramIndex, ran: dict[int, tuple[object, LogLine]], evidence: dict[tuple[int, str], tuple[bool, LogLine]]
) -> None:
    """A function that printed a logged line ran: when it has a single call site, the guards on the way to that
    call held too (`if args.ttt_mode == "lora": eval_val_ttt_lora(...)` with `lora_ttt:starting` in the log),
    and so on up its callers. With several call sites the log does not say which one ran."""
    if not ran:
        return
    sites: dict[int, list[tuple[object, ast.Call]]] = {}
    for caller in index.scopes:
        for call in index.calls_in(caller):
            for callee in index.resolve_call(call, caller):
                if callee is not caller:
                    sites.setdefault(id(callee), []).append((caller, call))
    work = list(ran.values())
    seen: set[int] = set()
    while work:
        scope, hit = work.pop()
        if id(scope) in seen:
            continue
        seen.add(id(scope))
        callers = sites.get(id(scope), [])
        if len(callers) != 1:
            continue
        caller, call = callers[0]
        for guard, in_body in guards_of(call, caller):  # type: ignore[arg-type]
            evidence.setdefault(condition_key(guard, caller), (in_body, hit))
        if not getattr(caller, "is_module", True):
            work.append((caller, hit))


def condition_key(guard: ast.If | ast.While | ast.IfExp, scope: object) -> tuple[int, str]:
    return (id(scope), ast.unparse(guard.test))


def template(arg: ast.expr) -> tuple[re.Pattern[str] | None, str]:
    """A regex for the line a print produces, and its longest fixed piece (a fast pre-filter)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        pieces: list[str | None] = [arg.value]
    elif isinstance(arg, ast.JoinedStr):
        pieces = [v.value if isinstance(v, ast.Constant) else None for v in arg.values]  # type: ignore[misc]
    else:
        return None, ""
    literal = [p for p in pieces if p]
    if sum(len(p.strip()) for p in literal) < _MIN_LITERAL:
        return None, ""
    first_line = []
    for piece in pieces:
        if piece is None:
            first_line.append(".*?")
            continue
        head, newline, _ = piece.partition("\n")
        first_line.append(re.escape(head))
        if newline:
            break
    anchor = max((p.partition("\n")[0] for p in literal), key=len).strip()
    if len(anchor) < 4:
        return None, ""
    try:
        return re.compile("".join(first_line).strip()), anchor
    except re.error:
        return None, ""


def _first_match(pattern: re.Pattern[str], anchor: str, lines: Sequence[LogLine], indented: bool = False) -> LogLine | None:
    for line in lines:
        if line.text[:1].isspace() and not indented:
            # `  ttt_weight_decay: 0.5` in the indented hyperparameter dump is not the output of an unindented
            # `log(f"ttt_weight_decay: {wd}")` inside a branch: the dump lists every setting, run or not
            continue
        if anchor in line.text and not _code_line(line.text) and pattern.search(line.text):
            return line
    return None


def _indented(arg: ast.expr) -> bool:
    """The printed line starts with whitespace."""
    first = arg.values[0] if isinstance(arg, ast.JoinedStr) and arg.values else arg
    return isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value[:1].isspace()

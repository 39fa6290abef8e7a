"""PG401 validation-data-in-training."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from pgaudit.analysis.dataflow import TARGET, TRAIN, VAL, Labels
from pgaudit.analysis.events import val_only
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import Scope, ancestors, call_name, dotted
from pgaudit.analysis.names import is_paid_prefix_name, is_train_data_name, literal_data_kind, words
from pgaudit.analysis.training import TrainingLoop, first_training_loop
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import walk

from .base import Example, Rule, short

_RULINGS = (
    "https://github.com/openai/parameter-golf/blob/main/README.md",
    "https://github.com/openai/parameter-golf/pull/168",
)
# Serializers whose output is a file or a blob (the model file, a compressed artifact).
_SERIALIZERS = {
    "torch.save", "np.save", "numpy.save", "np.savez", "np.savez_compressed", "numpy.savez", "numpy.savez_compressed",
    "pickle.dump", "pickle.dumps", "lzma.compress", "zlib.compress", "bz2.compress", "brotli.compress",
    "zstd.compress", "zstandard.compress", "gzip.compress", "save_file", "safetensors.torch.save_file",
}  # fmt: skip
_ARTIFACT_CONTAINER = re.compile(r"(?i)(state_dict|^sd$|_sd$|^sd_|artifact|blob|payload|export|quant_obj|packed)")


class ValidationDataInTraining(Rule):
    """Validation tokens used to train the model or packed into the artifact ("paid prefix").

    What it does:
        Finds (1) training data taken from validation data, by use: the training loop is the first loop the
        entry surely runs that differentiates a loss and steps an optimizer (not one that scores validation
        tokens as it goes: test-time training is PG301/PG302's business); what it trains on is what that loss
        is computed from, followed back through assignments, attributes, loaders and the caller's arguments to
        where the validation shards enter (a `fineweb_val_*` pattern, a switch the run sets to it); also a
        stream joined from training and validation tokens (`torch.cat([train, val])`), whatever it is called.
        A name alone (`train_tokens` holding validation data that no training loop is shown to use) is a
        warning. (2) validation tokens serialized into a file or blob (`torch.save`, `np.save`,
        `lzma.compress`, a state-dict entry, `register_buffer`), i.e. packed into the artifact; (3) a "paid
        prefix": validation targets compared with tokens decoded from a stored, compressed blob, so the stored
        copy of the validation stream decides the loss.

    Why is this bad:
        "You CANNOT access validation data during training, e.g. by compressing it into your 16mb with 'paid
        prefix'." and "You can't cheat by training on the validation set before you evaluate on the validation
        set." (README, 2026-03-20). PR #168 (paid prefix) is kept only as an example of why this is invalid.

    Example:
        train_files = os.path.join(data_path, "fineweb_val_*.bin")       # the training loader reads val

    Legal look-alikes:
        Periodic read-only evaluation during training (`VAL_LOSS_EVERY`, `eval_val` under
        `torch.inference_mode()`), which is excluded from train_time; score-first test-time training on
        validation chunks after training (PG301/PG302 judge its ordering), including a training mask built from
        document lengths (`dl >= min_len`: flags and sizes, not tokens); saving metrics such as `val_bpb`;
        counting tokens in the logs.

    References:
        R23 of the catalogue; README "paid prefix" clause (2026-03-20); PR #168.
    """

    code = "PG401"
    name = "validation-data-in-training"
    severity = Severity.ERROR
    confidence = Confidence.HIGH
    catalogue_ids = ("R23",)
    ruling_urls = _RULINGS
    fix = "Train only on fineweb_train_* shards and keep validation tokens out of the saved model and artifact."

    def check(self, facts: Facts) -> Iterable[Finding]:
        flow = facts.flow
        training, sources = _training_on_val(facts)
        feeding = {id(a) for _scope, a in sources}
        reported = False
        for scope in flow.scopes:
            for node in facts.index.walk_scope(scope):
                finding = None
                if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                    finding = self._assignment(facts, scope, node, training, feeding)
                elif isinstance(node, ast.AugAssign):
                    finding = self._extended(facts, scope, node)
                elif isinstance(node, ast.Call):
                    finding = self._serialized(facts, scope, node)
                elif isinstance(node, ast.Compare):
                    finding = self._paid_prefix(facts, scope, node)
                if finding is not None:
                    reported = reported or (finding.code == self.code and finding.severity == Severity.ERROR)
                    yield finding
        if training is not None and not reported and val_only(training.labels(facts)):
            loss = training.losses[0]
            message = (
                f"The training loop (line {training.loop.lineno}) differentiates a loss on validation data "
                f"(`{short(loss, 60)}`, line {getattr(loss, 'lineno', training.loop.lineno)}) and steps the "
                "optimizer: the model trains on the tokens it is then scored on."
            )
            yield self.finding(facts, training.scope.unit, loss, message)

    def _assignment(
        self, facts: Facts, scope: Scope, node: ast.Assign | ast.AnnAssign, training: TrainingLoop | None,
        feeding: set[int],
    ) -> Finding | None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        labels = facts.flow.labels(node.value, scope)  # type: ignore[arg-type]
        if VAL not in labels:
            return None
        for target in targets:
            name = _leaf(target)
            mixed = " mixed with training data" if TRAIN in labels else ""
            if _concatenates_train_and_val(facts, scope, node.value):  # type: ignore[arg-type]
                message = (
                    f"The training data `{ast.unparse(target)}` (line {node.lineno}) is taken from validation data"
                    f" mixed with training data (`{short(node.value, 60)}` joins tokens of both): the model trains on "
                    "the tokens it is then scored on."
                )
                return self.finding(facts, scope.unit, node, message)
            if training is not None and id(node) in feeding:
                if _decided_branches(facts, scope, node.value):  # type: ignore[arg-type]
                    mixed = ", the side of its switch the run takes,"
                message = (
                    f"The training data `{ast.unparse(target)}` (line {node.lineno}) is taken from validation data"
                    f"{mixed} (`{short(node.value, 60)}`), and the training loop (line {training.loop.lineno}) trains on "
                    "it: the model trains on the tokens it is then scored on."
                )
                return self.finding(facts, scope.unit, node, message)
            if (
                name
                and is_train_data_name(name)
                and _training_source(name, node.value, labels)  # type: ignore[arg-type]
                and not _flags_only(facts, scope, node.value)  # type: ignore[arg-type]
            ):
                # the name alone says "training data": no training loop is shown to use it
                message = (
                    f"`{ast.unparse(target)}` (line {node.lineno}) is named as training data and is taken from "
                    f"validation data{mixed} (`{short(node.value, 60)}`), but no training loop is shown to train on "
                    "it: check that the model never trains on the tokens it is scored on."
                )
                return self.finding(
                    facts, scope.unit, node, message, severity=Severity.WARNING, confidence=Confidence.MEDIUM
                )
            if isinstance(target, ast.Subscript) and _ARTIFACT_CONTAINER.search(_leaf(target.value) or "") and val_only(labels):
                message = (
                    f"Validation tokens are stored in `{short(target, 50)}` (line {node.lineno}), which is saved with "
                    "the model: validation data packed into the artifact (\"paid prefix\")."
                )
                return self.finding(facts, scope.unit, node, message)
        return None

    def _extended(self, facts: Facts, scope: Scope, node: ast.AugAssign) -> Finding | None:
        """`files = sorted(glob(train_pattern))` then `files += sorted(glob(val_pattern))[:1]`: one list joined
        from training and validation data over two statements, like `torch.cat([train, val])`."""
        if not isinstance(node.op, ast.Add) or not isinstance(node.target, ast.Name):
            return None
        if _part_kind(facts, scope, node.value) != "val":
            return None
        fs = facts.flow.fs.get(id(scope))
        bound = [v for t, v, how in (fs.assigns if fs else []) if how == "=" and isinstance(t, ast.Name)
                 and t.id == node.target.id and v is not None]
        if not bound or any(_part_kind(facts, scope, v) != "train" for v in bound):
            return None
        message = (
            f"`{short(node)}` (line {node.lineno}) extends `{node.target.id}`, taken from training data, with "
            f"validation data (`{short(node.value, 60)}`): one stream of both, so the model trains on tokens it "
            "is then scored on."
        )
        return self.finding(facts, scope.unit, node, message)

    def _serialized(self, facts: Facts, scope: Scope, call: ast.Call) -> Finding | None:
        name = dotted(call.func)
        leaf = call_name(call)
        if leaf == "register_buffer" and len(call.args) >= 2:
            data = call.args[1]
        elif leaf == "tofile" and isinstance(call.func, ast.Attribute):
            data = call.func.value
        elif name in _SERIALIZERS or leaf == "save_file":
            if not call.args:
                return None
            data = call.args[0]
        else:
            return None
        labels = facts.flow.labels(data, scope)
        if not val_only(labels) or _is_metric(data):
            return None
        message = (
            f"`{short(call)}` (line {call.lineno}) writes validation tokens into a saved file or blob: validation "
            "data packed into the artifact (\"paid prefix\") is forbidden."
        )
        return self.finding(facts, scope.unit, call, message)

    def _paid_prefix(self, facts: Facts, scope: Scope, node: ast.Compare) -> Finding | None:
        if len(node.comparators) != 1 or not isinstance(node.ops[0], ast.Eq | ast.NotEq):
            return None
        sides = [node.left, node.comparators[0]]
        for target_side, other in (sides, sides[::-1]):
            if TARGET not in facts.flow.labels(target_side, scope):
                continue
            if TARGET in facts.flow.labels(other, scope):
                continue
            origin = _paid_origin(facts, scope, other)
            if origin:
                message = (
                    f"`{short(node)}` (line {node.lineno}) compares the validation targets with `{short(other, 40)}`, "
                    f"tokens decoded from a stored blob (`{origin}`): a copy of the validation stream shipped with the "
                    "submission (\"paid prefix\") decides the loss."
                )
                # a name that says "paid prefix" raises the confidence; the decoded blob decides
                confidence = Confidence.HIGH if _named_paid(other) else Confidence.MEDIUM
                return self.finding(facts, scope.unit, node, message, confidence=confidence)
        return None


_SOURCE_WORDS = {"files", "file", "pattern", "path", "paths", "glob", "loader", "shard", "shards", "dataset", "ds", "stream"}
_READ_CALL = re.compile(r"(?i)(load|read|fromfile|memmap|loader|stream|glob|open)")


def _training_source(name: str, value: ast.AST, labels: frozenset[str]) -> bool:
    """Where the training data comes from: a file pattern or loader (`train_files`, `train_loader`), tokens read
    from files, or training tokens concatenated with validation tokens. A slice of validation tokens bound to a
    name like `train_tokens` inside test-time training is PG301's business, not a training-phase leak."""
    if set(words(name)) & _SOURCE_WORDS:
        return True
    if TRAIN in labels:
        return True
    return isinstance(value, ast.Call) and _READ_CALL.search(call_name(value)) is not None


def _training_on_val(facts: Facts) -> tuple[TrainingLoop | None, list[tuple[Scope, ast.Assign | ast.AnnAssign]]]:
    """The program's training loop when it trains on validation data, and the assignments that put validation
    data into what it trains on. A first loop that scores validation tokens on every pass is test-time
    training of an eval-only script (PG301/PG302 judge its order), not the training phase."""
    training = first_training_loop(facts)
    if training is None:
        return None, []
    labels = training.labels(facts)
    if val_only(labels) and any("score" in facts.events.of(s).kinds for s in facts.flow.scopes):
        return None, []  # adapting on validation tokens, then scoring them: PG301's adapt-before-score
    events = facts.events.of(training.scope)
    for event in events.all:
        # it scores validation tokens as it trains on them (inline, or a call on every pass, not a periodic
        # eval under `if step % every == 0`): test-time training of an eval-only script
        if event.kind == "score" and (_inside(event.node, training.loop) if event.via is None else _every_pass(event.node, training.loop)):
            return None, []
    sources = [
        (scope, a)
        for scope, a in training.sources(facts)
        if a.value is not None and _selects_val(facts, scope, a.value) and not _flags_only(facts, scope, a.value)
    ]
    origins = _origins(facts, sources)
    # the loss carries validation data, or the chain reaches an assignment of the validation shards' pattern
    # (a generator or loader the flow labels do not cross)
    # (the fallback only when the flow knows nothing of the loss's data: field by field, a dict holding both
    # the training and the validation stream gives the loop only the training one)
    unknown = not labels & {VAL, TRAIN}
    if (VAL in labels and sources) or val_only(labels) or (unknown and any(_names_val_shards(a) for _scope, a in origins)):
        return training, origins
    return None, []


def _origins(
    facts: Facts, sources: list[tuple[Scope, ast.Assign | ast.AnnAssign]]
) -> list[tuple[Scope, ast.Assign | ast.AnnAssign]]:
    """Where validation data enters what the loop trains on: the assignments that name the validation shards
    (a path literal, a switch set to them), else the first of the chain; not every copy along the way."""
    named = [(scope, a) for scope, a in sources if _names_val_shards(a)]
    return named or sources[:1]


def _names_val_shards(node: ast.Assign | ast.AnnAssign) -> bool:
    return node.value is not None and any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and literal_data_kind(n.value) == "val"
        for n in walk(node.value)
    )


def _inside(node: ast.AST, loop: ast.AST) -> bool:
    return any(anc is loop for anc in ancestors(node))


def _every_pass(node: ast.AST, loop: ast.AST) -> bool:
    """`node` lies in `loop` and no `if` inside the loop guards it."""
    for anc in ancestors(node):
        if anc is loop:
            return True
        if isinstance(anc, ast.If | ast.IfExp):
            return False
    return False


def _decided_branches(facts: Facts, scope: Scope, expr: ast.AST) -> list[tuple[ast.expr, ast.expr]]:
    """(taken, not taken) for every conditional expression in `expr` whose condition the logged run, else the
    default environment, decides (`"fineweb_val_*" if TRAIN_ON_VAL else "fineweb_train_*"`)."""
    out = []
    for node in walk(expr):
        if not isinstance(node, ast.IfExp):
            continue
        for config in ("logged", "default"):
            if config not in facts.configs:
                continue
            truth = facts.evaluator(config).truth(node.test, scope)
            if truth is not None:
                out.append((node.body, node.orelse) if truth else (node.orelse, node.body))
                break
    return out


def _selects_val(facts: Facts, scope: Scope, value: ast.expr) -> bool:
    """The value is validation data in the run: validation data only, or a switch the run sets to the
    validation side."""
    labels = facts.flow.labels(value, scope)
    for taken, other in _decided_branches(facts, scope, value):
        taken_labels, other_labels = facts.flow.labels(taken, scope), facts.flow.labels(other, scope)
        if val_only(taken_labels):
            return True
        if VAL in other_labels and VAL not in taken_labels:
            return False  # the validation side of the switch is not the one that runs
    return val_only(labels)


_JOINS = {"cat", "concatenate", "concat", "hstack", "vstack", "column_stack", "row_stack", "chain", "append"}


def _concatenates_train_and_val(facts: Facts, scope: Scope, value: ast.expr) -> bool:
    """One stream joined from training tokens and validation tokens (`torch.cat([train, val])`,
    `np.concatenate([train] + long_val_docs)`): whatever the result is called, it trains on validation data
    or hands it on as training data. Flags and sizes of validation data (a length mask) are not tokens."""
    fs = facts.flow.fs.get(id(scope))
    lists: dict[str, list[ast.AST]] = {}  # `parts = [train] + val_docs` then `torch.cat(parts)`
    for target, v, how in fs.assigns if fs else []:
        if how == "=" and isinstance(target, ast.Name) and isinstance(v, ast.List | ast.Tuple | ast.BinOp):
            lists.setdefault(target.id, []).append(v)

    def expand(arg: ast.AST) -> list[ast.AST]:
        if isinstance(arg, ast.Name) and len(lists.get(arg.id, [])) == 1:
            return _parts(lists[arg.id][0])
        return _parts(arg)

    for node in walk(value):
        parts: list[ast.AST] = []
        if isinstance(node, ast.Call) and call_name(node) in _JOINS and node.args:
            if call_name(node) in ("chain", "append"):
                parts = [p for a in node.args for p in expand(a)]
            else:
                parts = expand(node.args[0])
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and _is_list(node):
            parts = _parts(node)
        kinds = {_part_kind(facts, scope, p) for p in parts}
        if "train" in kinds and "val" in kinds:
            return True
    return False


def _is_list(node: ast.BinOp) -> bool:
    return any(isinstance(side, ast.List | ast.ListComp) for side in (node.left, node.right))


def _parts(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.List | ast.Tuple):
        return [p for e in node.elts for p in _parts(e)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and _is_list(node):
        return [*_parts(node.left), *_parts(node.right)]
    if isinstance(node, ast.Starred):
        return _parts(node.value)
    return [node]


def _part_kind(facts: Facts, scope: Scope, part: ast.AST) -> str:
    if isinstance(part, ast.IfExp) or _is_metric(part) or _scalar(part):
        return ""
    labels: Labels = facts.flow.labels(part, scope)
    if val_only(labels):
        return "" if _flags_only(facts, scope, part) else "val"
    return "train" if TRAIN in labels and VAL not in labels else ""


def _scalar(node: ast.AST) -> bool:
    """A loss or metric value, not tokens: `.item()`, a loss call."""
    return any(
        isinstance(n, ast.Call) and call_name(n) in ("item", "cross_entropy", "nll_loss", "mean", "sum", "tolist")
        for n in walk(node)
    )


# Calls that wrap (constructors: their first argument) or move (methods: their receiver) a value without
# changing what its elements are.
_CONSTRUCTORS = {"tensor", "as_tensor", "from_numpy", "array", "asarray", "list", "tuple"}
_MOVES = {"to", "float", "bool", "int", "long", "half", "cuda", "cpu", "contiguous", "clone", "detach"}
_SIZES = {"len", "numel", "size"}


def _flags_only(facts: Facts, scope: Scope, expr: ast.AST) -> bool:
    """Whether the value holds only flags or sizes derived from validation data (a per-document length mask,
    `dl >= min_len`), never token values: such a value selects what test-time training may use, it does not
    put validation tokens into training. Follows local assignments three hops."""
    fs = facts.flow.fs.get(id(scope))
    assigns: dict[str, list[ast.AST]] = {}
    for target, value, how in fs.assigns if fs else []:
        if isinstance(target, ast.Name) and value is not None and how == "=":
            assigns.setdefault(target.id, []).append(value)

    def flags(e: ast.AST, depth: int) -> bool:
        if isinstance(e, ast.Compare | ast.Constant):
            return True
        if isinstance(e, ast.BoolOp):
            return all(flags(v, depth) for v in e.values)
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
            return flags(e.operand, depth)
        if isinstance(e, ast.ListComp | ast.GeneratorExp | ast.SetComp):
            return flags(e.elt, depth)
        if isinstance(e, ast.List | ast.Tuple):
            return all(flags(v, depth) for v in e.elts)
        if isinstance(e, ast.Call):
            leaf = call_name(e)
            if leaf in _SIZES:
                return True
            if leaf in _CONSTRUCTORS and e.args:
                return flags(e.args[0], depth)
            if leaf in _MOVES and isinstance(e.func, ast.Attribute):
                return flags(e.func.value, depth)
            return False
        if isinstance(e, ast.Name) and depth < 3:
            values = assigns.get(e.id, [])
            return bool(values) and all(flags(v, depth + 1) for v in values)
        return False

    return flags(expr, 0)


def _leaf(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _is_metric(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr | ast.Dict | ast.Constant)


_DECOMPRESS = {"decompress", "decompressobj", "decode_blob"}
_DESERIALIZE = {"load", "loads", "load_state_dict"}


def _paid_origin(facts: Facts, scope: Scope, expr: ast.AST) -> str:
    """Where the expression's values come from when they are tokens decoded from a stored, compressed blob
    (`np.frombuffer(lzma.decompress(f.read()), dtype=np.uint16)`), followed through local assignments,
    the arguments the function's callers pass, and the returns of the program's own functions; "" when
    they are not. Shards are never compressed, and a blob that `torch.load` turns into weights is the model."""
    callers: dict[int, list[tuple[Scope, ast.Call]]] = {}

    def call_sites(callee: Scope) -> list[tuple[Scope, ast.Call]]:
        if not callers:
            for s in facts.flow.scopes:
                for c in facts.index.calls_in(s):
                    for target in facts.flow.resolve(c, s):
                        callers.setdefault(id(target), []).append((s, c))
        return callers.get(id(callee), [])

    seen: set[int] = set()

    def origin(e: ast.AST, sc: Scope, depth: int) -> str:
        if depth > 4 or id(e) in seen:
            return ""
        seen.add(id(e))
        fs = facts.flow.fs.get(id(sc))
        for n in walk(e):
            if isinstance(n, ast.Call):
                if call_name(n) in _DESERIALIZE:
                    return ""
                if call_name(n) in _DECOMPRESS:
                    return short(n, 50)
                for callee in facts.flow.resolve(n, sc):
                    if callee is sc:
                        continue
                    for ret in (r for r in facts.index.walk_scope(callee) if isinstance(r, ast.Return) and r.value):
                        found = origin(ret.value, callee, depth + 1)
                        if found:
                            return found
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                for target, value, how in fs.assigns if fs else []:
                    if how == "=" and value is not None and isinstance(target, ast.Name) and target.id == n.id:
                        found = origin(value, sc, depth + 1)
                        if found:
                            return found
                if n.id in sc.params:
                    for caller, call in call_sites(sc):
                        for param, arg in _call_arguments(call, sc):
                            if param == n.id:
                                found = origin(arg, caller, depth + 1)
                                if found:
                                    return found
        return ""

    return origin(expr, scope, 0)


def _call_arguments(call: ast.Call, callee: Scope) -> list[tuple[str, ast.AST]]:
    params = list(callee.params)
    if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        params = params[1:]
    out = [(p, a) for p, a in zip(params, call.args, strict=False) if not isinstance(a, ast.Starred)]
    return out + [(kw.arg, kw.value) for kw in call.keywords if kw.arg]


def _named_paid(expr: ast.AST) -> bool:
    return any(is_paid_prefix_name(_leaf(n)) for n in walk(expr) if isinstance(n, ast.Name | ast.Attribute))


_SETUP = '''
import glob
import os
import numpy as np
import torch
import torch.nn.functional as F

def load_tokens(pattern):
    return torch.from_numpy(np.concatenate([np.fromfile(f, dtype=np.uint16) for f in sorted(glob.glob(pattern))]))
'''

ValidationDataInTraining.invalid = (
    Example(
        title="the training file pattern points at the validation shards",
        code=_SETUP
        + '''
class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    train_files = os.path.join(data_path, "fineweb_val_*.bin")  # <- expected
    val_files = os.path.join(data_path, "fineweb_val_*.bin")

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    opt = torch.optim.Adam(model.parameters())
    tokens = load_tokens(args.train_files)
    for step in range(10):
        x, y = tokens[step * 64:(step + 1) * 64].long(), tokens[step * 64 + 1:(step + 1) * 64 + 1].long()
        F.cross_entropy(model(x), y).backward()
        opt.step()

if __name__ == "__main__":
    main()
''',
        message="The training data `train_files` (line",
    ),
    Example(
        title="validation tokens mixed into the training stream",
        code=_SETUP
        + '''
def main():
    val_tokens = load_tokens("./data/fineweb_val_*.bin")
    train_tokens = torch.cat([load_tokens("./data/fineweb_train_*.bin"), val_tokens])  # <- expected
    print(train_tokens.numel())

if __name__ == "__main__":
    main()
''',
        message="is taken from validation data mixed with training data",
    ),
    Example(
        title="a prefix of the validation stream compressed into the artifact",
        code=_SETUP
        + '''
import lzma

def main():
    val_tokens = load_tokens("./data/fineweb_val_*.bin")
    blob = lzma.compress(val_tokens[:1_000_000].numpy().tobytes())  # <- expected
    with open("final_model.ptz", "ab") as f:
        f.write(blob)

if __name__ == "__main__":
    main()
''',
        message="writes validation tokens into a saved file or blob",
    ),
    Example(
        title="a stored paid-prefix blob compared with the validation targets to zero their loss",
        code=_SETUP
        + '''
import lzma

def load_paid_prefix(path):
    with open(path, "rb") as f:
        return torch.from_numpy(np.frombuffer(lzma.decompress(f.read()), dtype=np.uint16).astype(np.int64))

@torch.no_grad()
def eval_val(model, val_tokens, paid_prefix_tokens):
    x, y = val_tokens[:-1].long(), val_tokens[1:].long()
    nll = F.cross_entropy(model(x), y, reduction="none")
    n = min(paid_prefix_tokens.numel(), y.numel())
    stored = paid_prefix_tokens[:n]
    hit = stored == y[:n]  # <- expected
    nll[:n] = nll[:n] * (~hit).float()
    return nll.mean().item()

def main():
    model = torch.nn.Embedding(1024, 1024)
    print(eval_val(model, load_tokens("./data/fineweb_val_*.bin"), load_paid_prefix("prefix.xz")))

if __name__ == "__main__":
    main()
''',
        message="tokens decoded from a stored blob",
    ),
    Example(
        title="long validation documents selected by a length mask and appended to the training stream",
        code=_SETUP
        + '''
def split_docs(tokens, bos=1):
    starts = (tokens == bos).nonzero().flatten().tolist() + [tokens.numel()]
    return [tokens[a:b] for a, b in zip(starts[:-1], starts[1:])]

def main():
    train_tokens = load_tokens("./data/fineweb_train_*.bin")
    val_docs = split_docs(load_tokens("./data/fineweb_val_*.bin"))
    long_docs = [d for d in val_docs if d.numel() >= 256]
    train_doc_tokens = torch.cat([train_tokens] + long_docs)  # <- expected
    print(train_doc_tokens.numel())

if __name__ == "__main__":
    main()
''',
        message="is taken from validation data mixed with training data",
    ),
    Example(
        title="neutral names: a holder object's attribute points at the validation shards, a generator feeds the loop",
        code=_SETUP
        + '''
class Box:
    pass

def feed(box, n=64):
    stream = load_tokens(box.src)
    for i in range(10):
        yield stream[i * n:(i + 1) * n].long(), stream[i * n + 1:(i + 1) * n + 1].long()

def main():
    box = Box()
    box.src = os.path.join(os.environ.get("ROOT", "./data"), "fineweb_val_*.bin")  # <- expected
    net = torch.nn.Embedding(1024, 1024)
    upd = torch.optim.Adam(net.parameters())
    for a, b in feed(box):
        F.cross_entropy(net(a), b).backward()
        upd.step()
        upd.zero_grad()

if __name__ == "__main__":
    main()
''',
        message="and the training loop (line",
    ),
    Example(
        title="neutral names: the trainer receives validation tokens as a parameter",
        code=_SETUP
        + '''
def fit(net, source, n=64):
    upd = torch.optim.SGD(net.parameters(), lr=0.1)
    for i in range(100):
        a, b = source[i * n:(i + 1) * n].long(), source[i * n + 1:(i + 1) * n + 1].long()  # <- expected
        F.cross_entropy(net(a), b).backward()
        upd.step()
        upd.zero_grad()

def main():
    net = torch.nn.Embedding(1024, 1024)
    fit(net, load_tokens("./data/fineweb_val_*.bin"))

if __name__ == "__main__":
    main()
''',
        message="and the training loop (line",
    ),
    Example(
        title="a loader's file list replaced from outside its class by shards an env default names as validation",
        code=_SETUP
        + '''
class Shards:
    def __init__(self, pattern):
        self.names = sorted(glob.glob(pattern))
        self.k = 0

    def next(self, n):
        part = torch.from_numpy(np.fromfile(self.names[self.k % len(self.names)], dtype=np.uint16)[: n + 1])
        self.k += 1
        return part.long()

def main():
    root = os.environ.get("ROOT", "./data")
    part = os.environ.get("LATE", "val")
    src = Shards(os.path.join(root, "fineweb_train_*.bin"))
    late = sorted(glob.glob(os.path.join(root, "fineweb_" + part + "_*.bin")))  # <- expected
    src.names = late
    net = torch.nn.Embedding(1024, 1024)
    upd = torch.optim.Adam(net.parameters())
    for step in range(100):
        c = src.next(64)
        F.cross_entropy(net(c[:-1]), c[1:]).backward()
        upd.step()
        upd.zero_grad()

if __name__ == "__main__":
    main()
''',
        message="and the training loop (line",
    ),
    Example(
        title="the training file list extended with a validation shard",
        code=_SETUP
        + '''
def main():
    root = os.environ.get("ROOT", "./data")
    names = sorted(glob.glob(os.path.join(root, "fineweb_train_*.bin")))
    names += sorted(glob.glob(os.path.join(root, "fineweb_val_*.bin")))[:1]  # <- expected
    tokens = torch.cat([torch.from_numpy(np.fromfile(f, dtype=np.uint16)) for f in names]).long()
    net = torch.nn.Embedding(1024, 1024)
    upd = torch.optim.Adam(net.parameters())
    for i in range(100):
        F.cross_entropy(net(tokens[i * 64:(i + 1) * 64]), tokens[i * 64 + 1:(i + 1) * 64 + 1]).backward()
        upd.step()
        upd.zero_grad()

if __name__ == "__main__":
    main()
''',
        message="extends `names`, taken from training data, with",
    ),
)

ValidationDataInTraining.valid = (
    Example(
        title="a loader's file list replaced from outside its class by more training shards",
        code=_SETUP
        + '''
class Shards:
    def __init__(self, pattern):
        self.names = sorted(glob.glob(pattern))
        self.k = 0

    def next(self, n):
        part = torch.from_numpy(np.fromfile(self.names[self.k % len(self.names)], dtype=np.uint16)[: n + 1])
        self.k += 1
        return part.long()

def main():
    root = os.environ.get("ROOT", "./data")
    part = os.environ.get("LATE", "train")
    src = Shards(os.path.join(root, "fineweb_train_*.bin"))
    late = sorted(glob.glob(os.path.join(root, "fineweb_" + part + "_*.bin")))
    src.names = late
    net = torch.nn.Embedding(1024, 1024)
    upd = torch.optim.Adam(net.parameters())
    for step in range(100):
        c = src.next(64)
        F.cross_entropy(net(c[:-1]), c[1:]).backward()
        upd.step()
        upd.zero_grad()

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="the training file list extended with one more training shard",
        code=_SETUP
        + '''
def main():
    root = os.environ.get("ROOT", "./data")
    names = sorted(glob.glob(os.path.join(root, "fineweb_train_*.bin")))
    names += sorted(glob.glob(os.path.join(root, "fineweb_train_*.bin")))[:1]
    tokens = torch.cat([torch.from_numpy(np.fromfile(f, dtype=np.uint16)) for f in names]).long()
    net = torch.nn.Embedding(1024, 1024)
    upd = torch.optim.Adam(net.parameters())
    for i in range(100):
        F.cross_entropy(net(tokens[i * 64:(i + 1) * 64]), tokens[i * 64 + 1:(i + 1) * 64 + 1]).backward()
        upd.step()
        upd.zero_grad()

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="periodic read-only eval during training (VAL_LOSS_EVERY), metrics saved, score-first TTT after training",
        code=_SETUP
        + '''
class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    train_files = os.path.join(data_path, "fineweb_train_*.bin")
    val_files = os.path.join(data_path, "fineweb_val_*.bin")
    val_loss_every = int(os.environ.get("VAL_LOSS_EVERY", 1000))

@torch.inference_mode()
def eval_val(model, val_tokens):
    return F.cross_entropy(model(val_tokens[:-1].long()), val_tokens[1:].long()).item()

def ttt_score_first(model, val_tokens, chunk=64):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    total = 0.0
    for start in range(0, val_tokens.numel() - chunk - 1, chunk):
        x = val_tokens[start:start + chunk].long()
        y = val_tokens[start + 1:start + chunk + 1].long()
        with torch.no_grad():
            total += F.cross_entropy(model(x), y).item()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    return total

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    opt = torch.optim.Adam(model.parameters())
    train_tokens = load_tokens(args.train_files)
    val_tokens = load_tokens(args.val_files)
    for step in range(100):
        x = train_tokens[step * 64:(step + 1) * 64].long()
        y = train_tokens[step * 64 + 1:(step + 1) * 64 + 1].long()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if args.val_loss_every > 0 and step % args.val_loss_every == 0:
            print(f"val_loss:{eval_val(model, val_tokens):.4f}")
    torch.save(model.state_dict(), "final_model.pt")
    val_bpb = ttt_score_first(model, val_tokens)
    torch.save({"val_bpb": val_bpb, "val_tokens": val_tokens.numel()}, "metrics.pt")
    with open("train.log", "a") as f:
        f.write(f"val_tokens:{val_tokens.numel()}\\n")

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="score-first per-document TTT whose training mask comes from document lengths (flags, not tokens)",
        code=_SETUP
        + '''
def split_docs(tokens, bos=1):
    starts = (tokens == bos).nonzero().flatten().tolist() + [tokens.numel()]
    return [tokens[a:b] for a, b in zip(starts[:-1], starts[1:])]

def eval_docs_ttt(model, val_tokens, min_len=256, batch=4):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    docs = split_docs(val_tokens)
    total, count = 0.0, 0
    for i in range(0, len(docs), batch):
        doc_lens = [d.numel() for d in docs[i:i + batch]]
        train_doc_allowed = [min_len <= 0 or dl >= min_len for dl in doc_lens]
        train_doc_mask_t = torch.tensor(train_doc_allowed, dtype=torch.float32).to("cpu")
        for j, d in enumerate(docs[i:i + batch]):
            x, y = d[:-1].long(), d[1:].long()
            with torch.no_grad():
                total += F.cross_entropy(model(x), y, reduction="sum").item()
                count += y.numel()
            (F.cross_entropy(model(x), y) * train_doc_mask_t[j]).backward()
            opt.step()
            opt.zero_grad()
    return total / max(count, 1)

def main():
    model = torch.nn.Embedding(1024, 1024)
    opt = torch.optim.Adam(model.parameters())
    train_tokens = load_tokens("./data/fineweb_train_*.bin")
    for step in range(100):
        x = train_tokens[step * 64:(step + 1) * 64].long()
        F.cross_entropy(model(x), train_tokens[step * 64 + 1:(step + 1) * 64 + 1].long()).backward()
        opt.step()
    print(f"val_loss:{eval_docs_ttt(model, load_tokens('./data/fineweb_val_*.bin')):.4f}")

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="the same holder object and generator over the training shards; validation read only to score",
        code=_SETUP
        + '''
class Box:
    pass

def feed(box, n=64):
    stream = load_tokens(box.src)
    for i in range(10):
        yield stream[i * n:(i + 1) * n].long(), stream[i * n + 1:(i + 1) * n + 1].long()

def main():
    box = Box()
    box.src = os.path.join(os.environ.get("ROOT", "./data"), "fineweb_train_*.bin")
    box.other = os.path.join(os.environ.get("ROOT", "./data"), "fineweb_val_*.bin")
    net = torch.nn.Embedding(1024, 1024)
    upd = torch.optim.Adam(net.parameters())
    for a, b in feed(box):
        F.cross_entropy(net(a), b).backward()
        upd.step()
        upd.zero_grad()
    held = load_tokens(box.other)
    with torch.no_grad():
        print(F.cross_entropy(net(held[:-1].long()), held[1:].long()).item())

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="the same trainer given training tokens, then a neutrally named score-first pass over validation",
        code=_SETUP
        + '''
def fit(net, source, n=64):
    upd = torch.optim.SGD(net.parameters(), lr=0.1)
    for i in range(100):
        a, b = source[i * n:(i + 1) * n].long(), source[i * n + 1:(i + 1) * n + 1].long()
        F.cross_entropy(net(a), b).backward()
        upd.step()
        upd.zero_grad()

def pass_over(net, source, n=64):
    upd = torch.optim.SGD(net.parameters(), lr=0.01)
    total = 0.0
    for i in range(0, source.numel() - n - 1, n):
        a, b = source[i:i + n].long(), source[i + 1:i + n + 1].long()
        with torch.no_grad():
            total += F.cross_entropy(net(a), b).item()
        F.cross_entropy(net(a), b).backward()
        upd.step()
        upd.zero_grad()
    return total

def main():
    net = torch.nn.Embedding(1024, 1024)
    fit(net, load_tokens("./data/fineweb_train_*.bin"))
    print(pass_over(net, load_tokens("./data/fineweb_val_*.bin")))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="an eval-only script: score-first test-time training whose scoring is a helper call on every chunk",
        code=_SETUP
        + '''
@torch.no_grad()
def judge(net, a, b):
    return F.cross_entropy(net(a), b, reduction="sum").item()

def run(net, source, n=64):
    upd = torch.optim.SGD(net.parameters(), lr=0.01)
    total = 0.0
    for i in range(0, source.numel() - n - 1, n):
        a, b = source[i:i + n].long(), source[i + 1:i + n + 1].long()
        total += judge(net, a, b)
        F.cross_entropy(net(a), b).backward()
        upd.step()
        upd.zero_grad()
    return total

def main():
    net = torch.nn.Embedding(1024, 1024)
    net.load_state_dict(torch.load("final_model.pt"))
    print(f"val_loss:{run(net, load_tokens('./data/fineweb_val_*.bin')):.4f}")

if __name__ == "__main__":
    main()
''',
    ),
)

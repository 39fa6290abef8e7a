"""PG402 validation-calibrated-quantization."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterable

from pgaudit.analysis.dataflow import EMPTY, Labels
from pgaudit.analysis.events import val_only
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import Scope, call_name
from pgaudit.analysis.names import words
from pgaudit.findings import Confidence, Finding, Severity
from pgaudit.source.parse import walk

from .base import Example, Rule, short

_RULINGS = (
    "https://github.com/openai/parameter-golf/pull/728",
    "https://github.com/openai/parameter-golf/issues/677",
)
# Routines that collect quantization statistics from data: GPTQ Hessians, activation ranges, AWQ scales.
_COLLECTOR = re.compile(
    r"(?i)(hessian|calib|collect_(act|stat|input)|act(ivation)?_?(stat|range|scale)|awq|smoothquant|gptq_?collect)"
)
# Not quantization: temperature/logit calibration is PG304's business.
_NOT_QUANT = re.compile(r"(?i)(temp|tau|logit|bias|softcap)")
_CALIB_WORDS = {"calib", "calibration", "hessian", "hessians", "gptq", "awq"}


class ValidationCalibratedQuantization(Rule):
    """GPTQ Hessians or other quantization statistics collected from validation tokens.

    What it does:
        Finds (1) calls to calibration/statistics collectors (`collect_hessians`, `gptq_calibrate`,
        `collect_activation_stats`, ...) or to routines that accumulate Gram matrices of hooked activations
        (`H += x.T @ x`, also in a nested forward wrapper), whatever they are called, given validation data
        (`val_tokens`, a loader over `fineweb_val_*`), (2) calibration data (`calib_tokens`, `calib_loader`,
        `hessian_batches`) taken from validation data and handed to such a collector (the name only says
        where to point, the use decides), and (3) a collector function that reads validation data by itself (a closure over `val_tokens`).
        Labels come from the shared data-flow facts; a value that mixes training and validation data is not
        reported, unless it is a conditional (`val_files if CALIB_SOURCE == "val" else train_files`) whose
        condition the logged run, or else the default environment, decides: then only the taken branch counts.

    Why is this bad:
        The quantized weights are fitted to the exact activations of the tokens that are then scored, so the
        score at position t depends on x_t and later tokens (C1). Eval-time GPTQ calibration on validation
        tokens was banned around 2026-03-22 (PRs #569, #576, #593); valerio-oai on PR #728: val-calibrated
        GPTQ "breaks autoregressivity".

    Example:
        hessians = collect_hessians(model, val_tokens[: 64 * 2048])

    Legal look-alikes:
        Calibration on tokens the model generates itself (AR self-generated GPTQ, PR #1019, merged),
        calibration on training shards (`collect_hessians(model, train_loader, ...)`, within the 600 s
        budget: see PG403/PG504 for timing), random-token calibration, and temperature calibration (PG304).

    References:
        R22 of the catalogue; PR #728 (valerio-oai), PR #1019 (self-generated calibration, merged).
    """

    code = "PG402"
    name = "validation-calibrated-quantization"
    severity = Severity.ERROR
    confidence = Confidence.HIGH
    catalogue_ids = ("R22",)
    ruling_urls = _RULINGS
    fix = (
        "Calibrate GPTQ on training shards inside the training budget (reserve time with GPTQ_RESERVE_SECONDS) "
        "or on sequences the model generates itself."
    )

    def check(self, facts: Facts) -> Iterable[Finding]:
        flow = facts.flow
        reported_callees: set[int] = set()
        collectors: list[Scope] = []
        by_shape = _statistics_gatherers(facts)
        # a routine whose nested closure accumulates the Gram matrices (a forward wrapper made by a factory
        # inside it) collects them too when it is called with data
        called = by_shape | _gram_owners(facts)
        for scope in flow.scopes:
            if _is_collector(scope.name) or id(scope) in by_shape:
                collectors.append(scope)
            for node in facts.index.walk_scope(scope):
                if isinstance(node, ast.Call) and (
                    _is_collector(call_name(node)) or any(id(c) in called for c in flow.resolve(node, scope))
                ):
                    labels = _arg_labels(facts, node, scope)
                    if val_only(labels):
                        reported_callees.update(id(c) for c in flow.resolve(node, scope))
                        message = (
                            f"`{short(node)}` (line {node.lineno}) collects quantization statistics from validation "
                            "data: the quantized weights are fitted to the tokens that are then scored."
                        )
                        yield self.finding(facts, scope.unit, node, message)
                elif isinstance(node, ast.Assign) and _calib_target(node.targets):
                    # the name only says where to point; what decides is that the value is handed to a collector
                    labels = _labels(facts, node.value, scope)
                    if val_only(labels) and _fed_to_collector(facts, scope, node, called):
                        target = ast.unparse(node.targets[0])
                        message = (
                            f"The calibration data `{target}` (line {node.lineno}) is taken from validation data "
                            f"(`{short(node.value, 60)}`): quantization fitted on the tokens that are then scored."
                        )
                        yield self.finding(facts, scope.unit, node, message)
        for scope in collectors:
            if id(scope) in reported_callees:
                continue
            finding = self._reads_val(facts, scope)
            if finding is not None:
                yield finding

    def _reads_val(self, facts: Facts, scope: Scope) -> Finding | None:
        """A collector that reads validation data itself (a closure or global, not a parameter)."""
        for node in facts.index.calls_in(scope):
            if not node.args and not node.keywords:
                continue
            symbolic = frozenset().union(*(facts.flow.symbolic(a, scope) for a in [*node.args, *node.keywords]))
            if val_only(symbolic):  # validation data named inside the collector, whatever callers pass
                message = (
                    f"`{scope.qualname}` collects quantization statistics and feeds the model validation data "
                    f"(`{short(node)}`, line {node.lineno}): the quantized weights are fitted to the scored tokens."
                )
                return self.finding(facts, scope.unit, node, message, confidence=Confidence.MEDIUM)
        return None


def _statistics_gatherers(facts: Facts) -> set[int]:
    """Functions (ids of their scopes) that collect quantization statistics, whatever they are called: they
    accumulate Gram matrices of activations, or hook layer inputs (`register_forward_hook`) in their own body
    or a nested hook."""
    found = _gram_scopes(facts)
    for scope in facts.flow.scopes:
        if scope.is_module or not any(
            isinstance(n, ast.Call) and call_name(n) in ("register_forward_hook", "register_forward_pre_hook")
            for n in facts.index.walk_scope(scope)
        ):
            continue
        while scope is not None and not scope.is_module:
            found.add(id(scope))
            scope = scope.parent
    return found


def _gram_scopes(facts: Facts) -> set[int]:
    """Functions that accumulate Gram matrices of activations (`H += x.T @ x`, `H.addmm_(x.t(), x)`), and the
    function a hook doing so is defined in: quantization-statistics collectors, whatever they are called."""
    found: set[int] = set()
    for scope in facts.flow.scopes:
        if scope.is_module or not any(_is_gram(n) and _accumulated(n) for n in facts.index.nodes_in(scope, _GRAM_NODES)):
            continue
        found.add(id(scope))
        if scope.parent is not None and not scope.parent.is_module:
            found.add(id(scope.parent))
    return found


def _gram_owners(facts: Facts) -> set[int]:
    """Every function enclosing a Gram accumulation, however deeply it is nested."""
    found: set[int] = set()
    for scope in facts.flow.scopes:
        if scope.is_module or not any(_is_gram(n) and _accumulated(n) for n in facts.index.nodes_in(scope, _GRAM_NODES)):
            continue
        while scope is not None and not scope.is_module:
            found.add(id(scope))
            scope = scope.parent
    return found


def _accumulated(node: ast.AST) -> bool:
    """The Gram product is summed into a store (`H += g`, `acc[k] = acc.get(k, 0) + g`, `H.add_(g)`,
    `H.addmm_(x.t(), x)`), not used once as in an attention score or an orthogonalization step."""
    if isinstance(node, ast.Call) and call_name(node) == "addmm_":
        return True
    parent = getattr(node, "pg_parent", None)
    while parent is not None and not isinstance(parent, ast.stmt):
        if isinstance(parent, ast.Call) and call_name(parent) in ("add_", "addmm_"):
            return True
        parent = getattr(parent, "pg_parent", None)
    if isinstance(parent, ast.AugAssign):
        return True
    return isinstance(parent, ast.Assign) and any(isinstance(t, ast.Subscript | ast.Attribute) for t in parent.targets)


def _transposed(node: ast.AST) -> ast.AST | None:
    """`v` for `v.T`, `v.mT`, `v.t()`, `v.transpose(...)`."""
    if isinstance(node, ast.Attribute) and node.attr in ("T", "mT"):
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("t", "transpose"):
        return node.func.value
    return None


def _gram_pair(left: ast.AST, right: ast.AST) -> bool:
    inner = _transposed(left)
    if inner is not None and ast.unparse(inner) == ast.unparse(right):
        return True
    inner = _transposed(right)
    return inner is not None and ast.unparse(inner) == ast.unparse(left)


_GRAM_NODES = (ast.BinOp, ast.Call)  # what `_is_gram` can hold for


def _is_gram(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        return _gram_pair(node.left, node.right)
    if isinstance(node, ast.Call) and call_name(node) in ("mm", "matmul", "addmm", "addmm_"):
        args = node.args
        return any(_gram_pair(a, b) for a, b in itertools.pairwise(args))
    return False


def _is_collector(name: str) -> bool:
    return bool(name) and _COLLECTOR.search(name) is not None and _NOT_QUANT.search(name) is None and "quantize_weight" not in name


def _fed_to_collector(facts: Facts, scope: Scope, node: ast.Assign, called: set[int]) -> bool:
    """The assigned name reaches the arguments of a statistics collector in the same function, directly or
    through one local binding (`batches = calib[:n]`, `collect(model, batches)`)."""
    names = {n.id for t in node.targets for n in walk(t) if isinstance(n, ast.Name)}
    fs = facts.flow.fs.get(id(scope))
    for target, value, how in fs.assigns if fs else []:
        if how == "=" and value is not None and any(isinstance(n, ast.Name) and n.id in names for n in walk(value)):
            names |= {n.id for n in walk(target) if isinstance(n, ast.Name)}
    for call in facts.index.calls_in(scope):
        if not (_is_collector(call_name(call)) or any(id(c) in called for c in facts.flow.resolve(call, scope))):
            continue
        args = [*call.args, *(kw.value for kw in call.keywords)]
        if any(isinstance(n, ast.Name) and n.id in names for a in args for n in walk(a)):
            return True
    return False


def _calib_target(targets: list[ast.expr]) -> bool:
    if len(targets) != 1 or not isinstance(targets[0], ast.Name):
        return False
    return any(w in _CALIB_WORDS for w in words(targets[0].id)) and _NOT_QUANT.search(targets[0].id) is None


def _arg_labels(facts: Facts, call: ast.Call, scope: Scope) -> Labels:
    args = [*call.args, *(kw.value for kw in call.keywords)]
    return frozenset().union(*(_labels(facts, a, scope) for a in args)) if args else EMPTY


def _chosen(facts: Facts, expr: ast.expr, scope: Scope) -> ast.expr:
    """The branch of a conditional expression the run takes (`VAL if SOURCE == "val" else TRAIN`, decided by
    the logged run, else the defaults); the expression itself when the condition cannot be decided."""
    while isinstance(expr, ast.IfExp):
        truth = None
        for config in ("logged", "default"):
            if config in facts.configs:
                truth = facts.evaluator(config).truth(expr.test, scope)
                if truth is not None:
                    break
        if truth is None:
            return expr
        expr = expr.body if truth else expr.orelse
    return expr


def _labels(facts: Facts, expr: ast.expr, scope: Scope, depth: int = 0) -> Labels:
    """Labels of the data that runs: a decided conditional contributes only its taken branch, also as an
    argument of a loader call (`Loader(val_files if calib_source == "val" else train_files, rank)`)."""
    chosen = _chosen(facts, expr, scope)
    if chosen is not expr:
        return _labels(facts, chosen, scope, depth)
    if isinstance(expr, ast.Call):
        args = [*expr.args, *(kw.value for kw in expr.keywords)]
        if any(_chosen(facts, a, scope) is not a for a in args):
            return frozenset().union(*(_labels(facts, a, scope) for a in args))
    if isinstance(expr, ast.Name) and depth < 2:
        # `loader = Loader(val if source == "val" else train)` then `collect(model, loader)`: the one local
        # binding of the name decides, when it holds a decidable conditional.
        fs = facts.flow.fs.get(id(scope))
        values = [v for t, v, how in (fs.assigns if fs else []) if isinstance(t, ast.Name) and t.id == expr.id and how == "="]
        if len(values) == 1 and values[0] is not None and _has_decided(facts, values[0], scope):
            return _labels(facts, values[0], scope, depth + 1)
    return facts.flow.labels(expr, scope)


def _has_decided(facts: Facts, expr: ast.expr, scope: Scope) -> bool:
    if _chosen(facts, expr, scope) is not expr:
        return True
    if isinstance(expr, ast.Call):
        return any(_chosen(facts, a, scope) is not a for a in [*expr.args, *(kw.value for kw in expr.keywords)])
    return False


_SETUP = '''
import glob
import numpy as np
import torch

def load_validation_tokens(pattern):
    return torch.from_numpy(np.concatenate([np.fromfile(f, dtype=np.uint16) for f in sorted(glob.glob(pattern))]))

def load_train_tokens(pattern):
    return torch.from_numpy(np.fromfile(sorted(glob.glob(pattern))[0], dtype=np.uint16))

def collect_hessians(model, tokens, n_batches=8, seq_len=64):
    hessians = {}
    def hook(mod, inp, out, name=None):
        x = inp[0].reshape(-1, inp[0].shape[-1]).float()
        hessians[name] = hessians.get(name, 0) + x.T @ x
    for i in range(n_batches):
        model(tokens[i * seq_len:(i + 1) * seq_len].long()[None])
    return hessians
'''

ValidationCalibratedQuantization.invalid = (
    Example(
        title="GPTQ Hessians collected on the validation tokens",
        code=_SETUP
        + '''
def main():
    model = torch.nn.Embedding(1024, 16)
    val_tokens = load_validation_tokens("./data/fineweb_val_*.bin")
    hessians = collect_hessians(model, val_tokens)  # <- expected
    print(len(hessians))

if __name__ == "__main__":
    main()
''',
        message="collects quantization statistics from validation data",
    ),
    Example(
        title="calibration batches sliced from the validation stream",
        code=_SETUP
        + '''
def main():
    model = torch.nn.Embedding(1024, 16)
    val_tokens = load_validation_tokens("./data/fineweb_val_*.bin")
    calib_tokens = val_tokens[: 8 * 64]  # <- expected
    print(len(collect_hessians(model, calib_tokens)))

if __name__ == "__main__":
    main()
''',
        message="The calibration data `calib_tokens`",
    ),
    Example(
        title="the calibration source switch defaults to the validation shards",
        code=_SETUP
        + '''
import os

def load_shards(pattern):
    return torch.from_numpy(np.concatenate([np.fromfile(f, dtype=np.uint16) for f in sorted(glob.glob(pattern))]))

class Hyperparameters:
    train_files = "./data/fineweb_train_*.bin"
    val_files = "./data/fineweb_val_*.bin"
    calib_source = os.environ.get("GPTQ_CALIB_SOURCE", "val")

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 16)
    calib_tokens = load_shards(args.val_files if args.calib_source == "val" else args.train_files)  # <- expected
    print(len(collect_hessians(model, calib_tokens)))

if __name__ == "__main__":
    main()
''',
        message="The calibration data `calib_tokens`",
    ),
    Example(
        title="a neutrally named hook routine accumulating x.T @ x, fed the validation tokens",
        code=_SETUP
        + '''
def accumulate_moments(net, stream, n_batches=4, seq_len=64):
    acc = {}

    def hook(mod, inp, out):
        x = inp[0].reshape(-1, inp[0].shape[-1]).float()
        acc[id(mod)] = acc.get(id(mod), 0) + x.T @ x

    handle = net.register_forward_hook(hook)
    for i in range(n_batches):
        net(stream[i * seq_len:(i + 1) * seq_len].long()[None])
    handle.remove()
    return acc

def main():
    net = torch.nn.Linear(16, 16)
    stream = load_validation_tokens("./data/fineweb_val_*.bin")
    moments = accumulate_moments(net, stream)  # <- expected
    print(len(moments))

if __name__ == "__main__":
    main()
''',
        message="collects quantization statistics from validation data",
    ),
    Example(
        title="neutral names: a loader bound once from a conditional that defaults to val, fed to an x.T @ x hook",
        code=_SETUP
        + '''
import os

def read_shards(pattern):
    return torch.from_numpy(np.concatenate([np.fromfile(f, dtype=np.uint16) for f in sorted(glob.glob(pattern))]))

def pile_up(net, stream, n=4, width=64):
    acc = {}

    def on_forward(mod, inp, out):
        z = inp[0].reshape(-1, inp[0].shape[-1]).float()
        acc[id(mod)] = acc.get(id(mod), 0) + z.T @ z

    handle = net.register_forward_hook(on_forward)
    for i in range(n):
        net(stream[i * width:(i + 1) * width].float()[None])
    handle.remove()
    return acc

A = "./data/fineweb_train_*.bin"
B = "./data/fineweb_val_*.bin"
K = os.environ.get("Q_SRC", "v")

def main():
    net = torch.nn.Linear(64, 64)
    src = read_shards(B if K == "v" else A)
    out = pile_up(net, src)  # <- expected
    print(len(out))

if __name__ == "__main__":
    main()
''',
        message="collects quantization statistics from validation data",
    ),
    Example(
        title="neutral names: validation batches gathered in a list on a holder object, replayed through a hooked net",
        code=_SETUP
        + '''
class Pool:
    def __init__(self, stream, n=4, width=64):
        self.items = [stream[i * width:(i + 1) * width].float()[None] for i in range(n)]

def replay(net, pool):
    acc = {}

    def seen(mod, inp, out):
        z = inp[0].reshape(-1, inp[0].shape[-1])
        acc[id(mod)] = acc.get(id(mod), 0) + z.T @ z

    handle = net.register_forward_hook(seen)
    for item in pool.items:
        net(item)
    handle.remove()
    return acc

def main():
    net = torch.nn.Linear(64, 64)
    pool = Pool(load_validation_tokens("./data/fineweb_val_*.bin"))
    print(len(replay(net, pool)))  # <- expected
    print(net(load_train_tokens("./data/fineweb_train_*.bin")[:64].float()).sum())

if __name__ == "__main__":
    main()
''',
        message="collects quantization statistics from validation data",
    ),
)

ValidationCalibratedQuantization.valid = (
    Example(
        title="AR self-generated calibration (PR #1019) and training-shard calibration",
        code=_SETUP
        + '''
@torch.no_grad()
def generate_autoregressive_calib(model, n_seqs=4, seq_len=64, temperature=0.8):
    seqs = torch.randint(0, 1024, (n_seqs, 1))
    for _ in range(seq_len - 1):
        logits = model(seqs)[:, -1] / temperature
        seqs = torch.cat([seqs, torch.multinomial(torch.softmax(logits, -1), 1)], dim=1)
    return seqs.flatten()

def main():
    model = torch.nn.Embedding(1024, 16)
    ar_tokens = generate_autoregressive_calib(model)
    h_self = collect_hessians(model, ar_tokens)
    train_tokens = load_train_tokens("./data/fineweb_train_*.bin")
    h_train = collect_hessians(model, train_tokens)
    calib_tokens = torch.randint(0, 1024, (512,))
    h_rand = collect_hessians(model, calib_tokens)
    val_tokens = load_validation_tokens("./data/fineweb_val_*.bin")
    print(len(h_self), len(h_train), len(h_rand), model(val_tokens[:64].long()).sum())

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="temperature calibration on training tokens is not quantization (PG304's business)",
        code=_SETUP
        + '''
def calibrate_temperature(model, tokens):
    return 1.0

def main():
    model = torch.nn.Embedding(1024, 16)
    train_tokens = load_train_tokens("./data/fineweb_train_*.bin")
    print(calibrate_temperature(model, train_tokens))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="the same calibration source switch, defaulting to the training shards",
        code=_SETUP
        + '''
import os

def load_shards(pattern):
    return torch.from_numpy(np.concatenate([np.fromfile(f, dtype=np.uint16) for f in sorted(glob.glob(pattern))]))

class Hyperparameters:
    train_files = "./data/fineweb_train_*.bin"
    val_files = "./data/fineweb_val_*.bin"
    calib_source = os.environ.get("GPTQ_CALIB_SOURCE", "train")

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 16)
    calib_tokens = load_shards(args.val_files if args.calib_source == "val" else args.train_files)
    print(len(collect_hessians(model, calib_tokens)))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="the same x.T @ x routine fed training tokens",
        code=_SETUP
        + '''
def accumulate_moments(net, stream, n_batches=4, seq_len=64):
    acc = {}

    def hook(mod, inp, out):
        x = inp[0].reshape(-1, inp[0].shape[-1]).float()
        acc[id(mod)] = acc.get(id(mod), 0) + x.T @ x

    handle = net.register_forward_hook(hook)
    for i in range(n_batches):
        net(stream[i * seq_len:(i + 1) * seq_len].long()[None])
    handle.remove()
    return acc

def main():
    net = torch.nn.Linear(16, 16)
    stream = load_train_tokens("./data/fineweb_train_*.bin")
    moments = accumulate_moments(net, stream)
    print(len(moments), net(load_validation_tokens("./data/fineweb_val_*.bin")[:16].float()).sum())

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="the same neutral-named code with the conditional defaulting to the training shards",
        code=_SETUP
        + '''
import os

def read_shards(pattern):
    return torch.from_numpy(np.concatenate([np.fromfile(f, dtype=np.uint16) for f in sorted(glob.glob(pattern))]))

def pile_up(net, stream, n=4, width=64):
    acc = {}

    def on_forward(mod, inp, out):
        z = inp[0].reshape(-1, inp[0].shape[-1]).float()
        acc[id(mod)] = acc.get(id(mod), 0) + z.T @ z

    handle = net.register_forward_hook(on_forward)
    for i in range(n):
        net(stream[i * width:(i + 1) * width].float()[None])
    handle.remove()
    return acc

A = "./data/fineweb_train_*.bin"
B = "./data/fineweb_val_*.bin"
K = os.environ.get("Q_SRC", "t")

def main():
    net = torch.nn.Linear(64, 64)
    src = read_shards(B if K == "v" else A)
    out = pile_up(net, src)
    print(len(out))

if __name__ == "__main__":
    main()
''',
    ),
    Example(
        title="the same holder and hooked replay over training batches; a calibration-named validation slice only scored",
        code=_SETUP
        + '''
class Pool:
    def __init__(self, stream, n=4, width=64):
        self.items = [stream[i * width:(i + 1) * width].float()[None] for i in range(n)]

def replay(net, pool):
    acc = {}

    def seen(mod, inp, out):
        z = inp[0].reshape(-1, inp[0].shape[-1])
        acc[id(mod)] = acc.get(id(mod), 0) + z.T @ z

    handle = net.register_forward_hook(seen)
    for item in pool.items:
        net(item)
    handle.remove()
    return acc

def main():
    net = torch.nn.Linear(64, 64)
    pool = Pool(load_train_tokens("./data/fineweb_train_*.bin"))
    print(len(replay(net, pool)))
    calib_tokens = load_validation_tokens("./data/fineweb_val_*.bin")[:64]
    print(net(calib_tokens.float()).sum())

if __name__ == "__main__":
    main()
''',
    ),
)

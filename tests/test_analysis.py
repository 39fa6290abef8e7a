"""Analysis facts: run configuration, reachability, log evidence, documented run commands, data-flow labels."""

from __future__ import annotations

import ast
from pathlib import Path

from pgaudit.analysis.config import UNKNOWN, RunConfig
from pgaudit.analysis.evidence import LogLine
from pgaudit.analysis.facts import Facts
from pgaudit.analysis.index import call_name
from pgaudit.analysis.reaching import reaching_labels
from pgaudit.analysis.runcmd import documented_env
from pgaudit.source.program import load_program

CONFIG = '''
import os

def env_int(name, default):
    return int(os.environ.get(name, default))

class Hyperparameters:
    ngram_order = int(os.environ.get("NGRAM_ORDER", "0"))
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "0")))
    mode = os.environ.get("EVAL_MODE", "sliding").lower()
    layers = env_int("NUM_LAYERS", 9)

def ngram_eval():
    return 1

def ttt():
    return 2

def plain(world_size):
    use_cache = bool(int(os.environ.get("NGRAM_CACHE", "1" if world_size > 1 else "0")))
    if use_cache:
        return ngram_eval()
    return 0

def main():
    args = Hyperparameters()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if args.ngram_order >= 2:
        ngram_eval()
    if args.ttt_enabled and args.mode == "sliding":
        ttt()
    plain(world_size)

if __name__ == "__main__":
    main()
'''


def facts_for(tmp_path: Path, code: str, **kwargs) -> Facts:
    (tmp_path / "train_gpt.py").write_text(code)
    return Facts(load_program(tmp_path / "train_gpt.py", tmp_path), **kwargs)


def node_where(facts: Facts, predicate) -> ast.AST:
    for unit in facts.program.units:
        for node in ast.walk(unit.tree):
            if predicate(node):
                return node
    raise AssertionError("node not found")


def scope_named(facts: Facts, name: str):
    return next(s for s in facts.index.scopes if s.name == name)


def attr_value(facts: Facts, attr: str, config: str = "default"):
    """Evaluate `args.<attr>` as if written in main()."""
    expr = ast.parse(f"args.{attr}", mode="eval").body
    return facts.evaluator(config).value(expr, scope_named(facts, "main"))


def call_in(facts: Facts, caller: str, callee: str) -> ast.Call:
    scope = scope_named(facts, caller)
    return next(
        n
        for n in facts.index.walk_scope(scope)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == callee
    )


def test_env_defaults_helpers_and_overrides(tmp_path: Path):
    facts = facts_for(tmp_path, CONFIG)
    assert attr_value(facts, "ngram_order") == 0
    assert attr_value(facts, "ttt_enabled") is False
    assert attr_value(facts, "mode") == "sliding"
    assert attr_value(facts, "layers") == 9  # through the one-line env_int helper
    facts = facts_for(tmp_path, CONFIG, env_overrides={"NGRAM_ORDER": "3", "NUM_LAYERS": "11"})
    assert attr_value(facts, "ngram_order") == 3 and attr_value(facts, "layers") == 11


def test_logged_attributes_win_and_unshown_env_is_unknown(tmp_path: Path):
    facts = facts_for(tmp_path, CONFIG, logged_hyperparameters={"ttt_enabled": "True"})
    assert attr_value(facts, "ttt_enabled", "logged") is True
    assert attr_value(facts, "ngram_order", "logged") is UNKNOWN  # not printed, no documented command


def test_reachability_of_guarded_calls(tmp_path: Path):
    facts = facts_for(tmp_path, CONFIG)
    ngram_call = call_in(facts, "main", "ngram_eval")
    reach = facts.reachability(ngram_call)
    assert reach.default is False and reach.official is False
    assert "`args.ngram_order >= 2`" in reach.detail and "NGRAM_ORDER defaults to '0'" in reach.detail
    facts = facts_for(tmp_path, CONFIG, env_overrides={"NGRAM_ORDER": "4"})
    assert facts.reachability(call_in(facts, "main", "ngram_eval")).default is True


def test_code_in_an_else_branch_says_so(tmp_path: Path):
    code = CONFIG.replace("    if args.ttt_enabled and args.mode == \"sliding\":\n        ttt()\n",
                          "    if args.ngram_order == 0:\n        pass\n    else:\n        ttt()\n")
    facts = facts_for(tmp_path, code)
    reach = facts.reachability(call_in(facts, "main", "ttt"))
    assert reach.default is False
    assert "in the `else` of `args.ngram_order == 0` (line" in reach.detail and "which is True" in reach.detail


def test_world_size_gated_code_differs_under_the_official_launch(tmp_path: Path):
    facts = facts_for(tmp_path, CONFIG)
    reach = facts.reachability(call_in(facts, "plain", "ngram_eval"))
    assert reach.default is False and reach.official is True
    assert "WORLD_SIZE defaults to '1'" in reach.detail


def test_log_lines_printed_under_a_guard_prove_it_ran(tmp_path: Path):
    code = CONFIG.replace("        ngram_eval()\n", '        print(f"ngram_eval:enabled order={args.ngram_order}")\n        ngram_eval()\n')
    lines = [LogLine("train.log", 7, "ngram_eval:enabled order=5")]
    facts = facts_for(tmp_path, code, log_lines=lines)
    reach = facts.reachability(call_in(facts, "main", "ngram_eval"))
    assert reach.logged is True and reach.default is False
    assert "the log shows `ngram_eval:enabled order=5` (train.log:7)" in reach.detail


def test_a_line_two_branches_print_proves_neither_branch(tmp_path: Path):
    # `if not flag: log(X)` and, under `if flag:`, the same `log(X)`: the logged X does not say which ran.
    code = CONFIG.replace(
        "        ngram_eval()\n",
        '        print(f"final_exact val_bpb:{1.0}")\n        ngram_eval()\n'
        '    if not args.ngram_order >= 2:\n        print(f"final_exact val_bpb:{1.0}")\n',
        1,
    )
    facts = facts_for(tmp_path, code, log_lines=[LogLine("train.log", 7, "final_exact val_bpb:1.0")])
    reach = facts.reachability(call_in(facts, "main", "ngram_eval"))
    assert reach.logged is not True and "the log shows" not in reach.detail


def test_a_call_site_the_configuration_rules_out_passes_no_value(tmp_path: Path):
    # `f(use=True)` only under a flag that is off: the parameter takes the value of the calls that can run.
    code = CONFIG.replace(
        "def ttt():\n    return 2\n",
        "def ttt(use=False):\n    if use:\n        return ngram_eval()\n    return 2\n",
    ).replace("        ttt()\n", "        ttt(use=True)\n").replace("    plain(world_size)\n", "    ttt(use=False)\n    plain(world_size)\n")
    facts = facts_for(tmp_path, code)
    inner = call_in(facts, "ttt", "ngram_eval")
    assert facts.reachability(inner).default is False
    facts = facts_for(tmp_path, code, env_overrides={"TTT_ENABLED": "1"})
    assert facts.reachability(inner).default is None  # both call sites run: `use` is True or False


def test_a_print_through_a_helper_of_any_name_proves_it_ran(tmp_path: Path):
    """`v7(f"...")` where `v7` writes its argument to a file: the output is evidence whatever v7 is called."""
    helper = "def v7(m):\n    with open('run.txt', 'a') as fh:\n        fh.write(m + '\\n')\n\n"
    code = helper + CONFIG.replace("        ngram_eval()\n", '        v7(f"ngram_eval:enabled order={args.ngram_order}")\n        ngram_eval()\n')
    lines = [LogLine("train.log", 7, "ngram_eval:enabled order=5")]
    facts = facts_for(tmp_path, code, log_lines=lines)
    assert facts.reachability(call_in(facts, "main", "ngram_eval")).logged is True
    silent = code.replace("fh.write(m + '\\n')", "fh.flush()")  # a function that writes nothing is no evidence
    quiet = facts_for(tmp_path, silent, log_lines=lines)
    assert quiet.reachability(call_in(quiet, "main", "ngram_eval")).logged is not True


def test_echoed_source_in_logs_is_not_evidence(tmp_path: Path):
    code = CONFIG.replace("        ngram_eval()\n", '        print(f"ngram_eval:enabled order={args.ngram_order}")\n        ngram_eval()\n')
    lines = [LogLine("train.log", 3, '        print(f"ngram_eval:enabled order={args.ngram_order}")')]
    facts = facts_for(tmp_path, code, log_lines=lines)
    assert facts.reachability(call_in(facts, "main", "ngram_eval")).logged is not True


def test_documented_run_command(tmp_path: Path):
    (tmp_path / "README.md").write_text(
        "# run\n```bash\nexport DATA_PATH=/data\nSEED=1 NGRAM_CACHE=1 \\\n  torchrun --standalone --nproc_per_node=8 train_gpt.py\n"
        "SEED=2 NGRAM_CACHE=1 torchrun --standalone --nproc_per_node=8 train_gpt.py\n```\n"
    )
    env, sources = documented_env(tmp_path)
    assert env == {"DATA_PATH": "/data", "NGRAM_CACHE": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "8"}
    assert sources == ["README.md:4", "README.md:6"]  # SEED differs between commands: not fixed


def test_documented_command_decides_the_submitted_run(tmp_path: Path):
    facts = facts_for(tmp_path, CONFIG, documented_env={"NGRAM_ORDER": "3"})
    reach = facts.reachability(call_in(facts, "main", "ngram_eval"))
    assert reach.logged is True and reach.default is False


def test_logged_config_names():
    cfg = RunConfig.logged({"TTT_ENABLED": "1", "ngram_order": "2"}, world_size="8")
    assert cfg.env["TTT_ENABLED"] == "1" and cfg.env["WORLD_SIZE"] == "8" and cfg.attrs == {"ngram_order": "2"}
    assert not cfg.complete_env


FLOW = '''
import numpy as np

PRIMES = np.array([2654435761, 2246822519], dtype=np.uint64)

def hash_full(tokens, positions, targets):
    h = tokens[positions - 1].astype(np.uint64) * PRIMES[0]
    h ^= targets.astype(np.uint64) * PRIMES[1]
    return h

def lookup(val_tokens, table):
    val_np = val_tokens.numpy()
    pos = np.arange(1, len(val_np)); nx = pos + 1
    key = hash_full(val_np, nx, val_np[nx])
    bigram = (val_np[pos - 1] * 36313) ^ (val_np[pos] * 27191)
    return table[key], table[bigram], val_np[pos + 1]

def main():
    lookup(np.fromfile("fineweb_val_000000.bin", dtype=np.uint16), np.zeros(1 << 20))
'''

# The same hash of the bigram without a later read: `val_np[pos]` follows the context `val_np[pos - 1]` of a
# validation stream, so it is the token being predicted, whatever it is called.
SUCCESSOR = FLOW.replace(", val_np[pos + 1]", "").replace("nx = pos + 1", "nx = pos").replace("val_np[nx]", "val_np[pos - 1]")


def test_labels_track_validation_targets_and_target_keys(tmp_path: Path):
    facts = facts_for(tmp_path, FLOW)
    flow = facts.flow
    lookup = next(s for s in facts.index.scopes if s.name == "lookup")
    ret = next(n for n in facts.index.walk_scope(lookup) if isinstance(n, ast.Return))
    keyed, bigram, _ = ret.value.elts  # type: ignore[union-attr]
    key_labels = flow.labels(keyed.slice, lookup)
    # the helper reads the context before `positions`, so what its caller passes as `val_np[nx]` is the target
    assert "val" in key_labels and flow.tkey_origin(key_labels)
    [(origin_scope, origin)] = flow.tkey_origin(key_labels)
    assert origin_scope.name == "hash_full" and origin.lineno == 8
    # `val_np[pos + 1]` is read too: the bigram (pos - 1, pos) is the context of pos + 1, not a target key
    assert not flow.tkey_origin(flow.labels(bigram.slice, lookup))


def test_the_token_after_a_validation_context_is_a_target(tmp_path: Path):
    facts = facts_for(tmp_path, SUCCESSOR)
    lookup = next(s for s in facts.index.scopes if s.name == "lookup")
    ret = next(n for n in facts.index.walk_scope(lookup) if isinstance(n, ast.Return))
    _, bigram = ret.value.elts  # type: ignore[union-attr]
    [(origin_scope, origin)] = facts.flow.tkey_origin(facts.flow.labels(bigram.slice, lookup))
    assert origin_scope is lookup and origin.lineno == 15


REUSED = '''
import torch

def main(model, opt):
    train_tokens = torch.load("fineweb_train_000000.bin")
    val_tokens = torch.load("fineweb_val_000000.bin")
    for step in range(10):
        loss = model(train_tokens[step:])
        loss.backward()
    for step in range(10):
        with torch.autocast("cuda"):
            loss = model(val_tokens[step:])
        loss.backward()
    for step in range(10):
        loss.backward()
        loss = model(val_tokens[step:])
    if step:
        loss = model(val_tokens[step:])
    loss.backward()
'''


def test_a_reused_name_takes_the_labels_of_the_assignment_that_reaches_it(tmp_path: Path):
    facts = facts_for(tmp_path, REUSED)
    main = next(s for s in facts.index.scopes if s.name == "main")
    uses = [n.func.value for n in facts.index.walk_scope(main) if isinstance(n, ast.Call) and call_name(n) == "backward"]
    assert [u.lineno for u in uses] == [9, 13, 15, 19]
    assert facts.flow.labels(uses[0], main) >= {"train", "val"}  # flow-insensitive: every `loss` of main
    assert {"train", "val"} & reaching_labels(facts.flow, uses[0], main) == {"train"}
    assert {"train", "val"} & reaching_labels(facts.flow, uses[1], main) == {"val"}  # through the `with` body
    # the previous iteration's binding reaches the top of the loop; a binding in a branch may not run: unknown
    assert reaching_labels(facts.flow, uses[2], main) >= {"train", "val"}
    assert reaching_labels(facts.flow, uses[3], main) >= {"train", "val"}


def test_an_indented_hyperparameter_dump_line_is_not_the_output_of_a_guarded_print(tmp_path: Path):
    code = CONFIG.replace("        ngram_eval()\n", '        print(f"ngram_order_used: {args.ngram_order}")\n        ngram_eval()\n')
    dump = [LogLine("train.log", 2, "Hyperparameters:"), LogLine("train.log", 3, "  ngram_order_used: 5")]
    facts = facts_for(tmp_path, code, log_lines=dump)
    assert facts.reachability(call_in(facts, "main", "ngram_eval")).logged is not True
    facts = facts_for(tmp_path, code, log_lines=[*dump, LogLine("train.log", 9, "ngram_order_used: 5")])
    reach = facts.reachability(call_in(facts, "main", "ngram_eval"))
    assert reach.logged is True and "(train.log:9)" in reach.detail


LAST_PASS = '''
import os

class Hyperparameters:
    ttt_mode = os.environ.get("TTT_MODE", "none")
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", "4"))

def report(total):
    print(total)

def adapt(args):
    total = 0.0
    for epoch in range(args.ttt_epochs):
        if epoch == args.ttt_epochs - 1:
            report(total)

def main():
    args = Hyperparameters()
    if args.ttt_mode == "lora":
        adapt(args)

if __name__ == "__main__":
    main()
'''


def test_a_condition_on_a_runtime_value_in_code_the_logged_run_reaches_means_may_run(tmp_path: Path):
    facts = facts_for(tmp_path, LAST_PASS, logged_hyperparameters={"ttt_mode": "lora"})
    reach = facts.reachability(call_in(facts, "adapt", "report"))
    assert reach.default is False and reach.logged is None
    assert reach.runtime_only and reach.effective is None  # may run: the logged run enters the loop
    # a setting the logs leave out is not a runtime value: the defaults decide, as before
    facts = facts_for(tmp_path, LAST_PASS, logged_hyperparameters={"ttt_epochs": "2"})
    reach = facts.reachability(call_in(facts, "adapt", "report"))
    assert reach.effective is False and not reach.runtime_only


LBFGS_CLOSURE = '''
import torch
import torch.nn.functional as F

def a1(m, w, s):
    h = m(s[:-1].unsqueeze(0)).detach()
    nxt = s[1:].reshape(-1)
    d = torch.zeros(1, 1, h.size(-1), requires_grad=True)
    o = torch.optim.LBFGS([d], lr=0.1, max_iter=5)
    def q():
        o.zero_grad()
        e = F.cross_entropy((h + d) @ w.T, nxt)
        e.backward()
        return e
    o.step(q)
    with torch.no_grad():
        return F.cross_entropy((h + d) @ w.T, nxt).item()

def main():
    s = torch.from_file("fineweb_val_000000.bin", size=1024, dtype=torch.int16).long()
    m = torch.nn.Embedding(1024, 64)
    print(f"val_loss:{a1(m, m.weight, s):.4f}")

if __name__ == "__main__":
    main()
'''


def test_a_closure_handed_to_an_optimizer_step_is_an_update_on_the_enclosing_arguments(tmp_path: Path):
    facts = facts_for(tmp_path, LBFGS_CLOSURE)
    closure = scope_named(facts, "q")
    assert [e.kind for e in facts.events.of(closure).inline] == ["update"]
    assert "val" in facts.events.of(closure).inline[0].labels  # `s` is the enclosing function's argument
    outer = [e.kind for e in facts.events.of(scope_named(facts, "a1")).all]
    assert "update" in outer and outer.index("update") < outer.index("score")


def test_training_loop_is_found_by_use_and_its_data_by_the_chain(tmp_path):
    """The first loop that differentiates and steps, whatever it is called, and the assignment that chose
    its shards; a later eval that rebinds the same names does not feed it."""
    from pgaudit.analysis.facts import Facts
    from pgaudit.analysis.training import first_training_loop
    from pgaudit.source.program import load_program

    code = (
        "import glob, os, numpy as np, torch\n"
        "import torch.nn.functional as F\n"
        "def rd(p):\n"
        "    return torch.from_numpy(np.fromfile(sorted(glob.glob(p))[0], dtype=np.uint16).astype(np.int64))\n"
        "class K:\n"
        "    a = os.path.join('./d', 'fineweb_train_*.bin')\n"
        "    b = os.path.join('./d', 'fineweb_val_*.bin')\n"
        "def go():\n"
        "    k = K()\n"
        "    net = torch.nn.Embedding(8, 8)\n"
        "    u = torch.optim.SGD(net.parameters(), lr=0.1)\n"
        "    s = rd(k.a)\n"
        "    for i in range(3):\n"
        "        p, q = s[i:i + 4], s[i + 1:i + 5]\n"
        "        F.cross_entropy(net(p), q).backward()\n"
        "        u.step()\n"
        "    s = rd(k.b)\n"
        "    p, q = s[:-1], s[1:]\n"
        "    print(F.cross_entropy(net(p), q).item())\n"
        "if __name__ == '__main__':\n"
        "    go()\n"
    )
    (tmp_path / "train_gpt.py").write_text(code)
    facts = Facts(load_program(tmp_path / "train_gpt.py", tmp_path), {}, {}, [])
    loop = first_training_loop(facts)
    assert loop is not None and loop.scope.name == "go" and loop.loop.lineno == 13
    origins = [a.lineno for _scope, a in loop.sources(facts)]
    assert 6 in origins and 7 not in origins  # k.a feeds the loop; k.b (read after it) does not


def test_a_context_window_ending_before_the_scored_token_is_not_a_shifted_target_window():
    from pgaudit.analysis.dataflow import _is_shift_by_one

    def shifted(text: str) -> bool:
        return _is_shift_by_one(ast.parse(f"s[{text}]", mode="eval").body.slice)

    assert shifted("i + 1 : j + 1") and shifted("1:") and shifted("e - n + 1 : e + 1")
    assert not shifted("t - k + 1 : t")  # the k - 1 tokens before position t: context, whatever the names
    assert not shifted("i : j")


def test_adapting_under_a_flag_and_scoring_under_its_negation_never_follow(tmp_path: Path):
    # `if args.ttt:` adapts (and scores as it goes); a later `if not args.ttt:` runs the plain eval: one run
    # takes one of the two, so the plain eval is not a score after adaptation. Rebinding the flag in between
    # (`args.ttt = False`) makes both possible again.
    from pgaudit.rules.pg301_adapt_before_score import AdaptBeforeScore

    code = """
import os
import torch
import torch.nn.functional as F

class Hyperparameters:
    ttt = bool(int(os.environ.get("TTT", "1")))

def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(8, 8)
    val_tokens = torch.load("data/fineweb_val_000000.bin")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    if args.ttt:
        loss = F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:])
        loss.backward()
        opt.step()
    {rebind}
    if not args.ttt:
        with torch.no_grad():
            print("val_loss", F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:]).item())

if __name__ == "__main__":
    main()
"""
    facts = facts_for(tmp_path, code.replace("{rebind}", "pass"))
    assert not list(AdaptBeforeScore().check(facts))
    facts = facts_for(tmp_path, code.replace("{rebind}", "args.ttt = False"))
    assert [f.code for f in AdaptBeforeScore().check(facts)] == ["PG301"]


def test_a_probe_built_and_scored_inside_a_helper_does_not_adapt_the_callers_model(tmp_path: Path):
    # The helper trains a head it constructs from sizes and scores with it (a diagnostic); the caller's model
    # is unchanged, so the caller's eval is not a rescore after adaptation. A head that wraps the model
    # (`Head(model)`) may train the model's weights, and stays a rescore.
    from pgaudit.rules.pg302_rescore_after_adapt import RescoreAfterAdapt

    code = """
import torch
import torch.nn.functional as F

class Head(torch.nn.Module):
    def __init__(self, *parts):
        super().__init__()
        self.parts = torch.nn.ModuleList([p for p in parts if isinstance(p, torch.nn.Module)])

def probe_bpb(model, val_tokens):
    hidden = model(val_tokens[:-1]).detach()
    probe = {ctor}
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
    for _ in range(10):
        loss = F.cross_entropy(probe(hidden), val_tokens[1:])
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        return {"probe": F.cross_entropy(probe(hidden), val_tokens[1:]).item()}

def main():
    model = torch.nn.Embedding(8, 8)
    val_tokens = torch.load("data/fineweb_val_000000.bin")
    diag = probe_bpb(model, val_tokens)
    print(f"probe_bpb:{diag['probe']:.4f}")
    with torch.no_grad():
        print("val_loss", F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:]).item())

if __name__ == "__main__":
    main()
"""
    facts = facts_for(tmp_path, code.replace("{ctor}", "Head(torch.nn.Linear(8, 8))"))
    assert not list(RescoreAfterAdapt().check(facts))
    facts = facts_for(tmp_path, code.replace("{ctor}", "Head(model)"))
    assert [f.code for f in RescoreAfterAdapt().check(facts)] == ["PG302"]


def test_passes_that_rotate_the_same_work_list_are_passes_whatever_their_names(tmp_path: Path):
    # Each outer iteration re-walks the same windows in a rotated order, scores them and, after the first,
    # trains on them: a multi-pass rescore even with no `epoch`/`pass` in any name. An outer loop whose
    # counter picks different windows (`xs[v3 * 4:]`) is a chunk loop, not a pass.
    from pgaudit.rules.pg302_rescore_after_adapt import RescoreAfterAdapt

    code = """
import torch
import torch.nn.functional as F

def main():
    v1 = torch.nn.Embedding(8, 8)
    v2 = torch.load("data/fineweb_val_000000.bin")
    v9 = torch.optim.SGD(v1.parameters(), lr=0.1)
    v8 = torch.zeros(len(v2))
    v7 = int("3")
    for v3 in range(v7):
        v4 = list(range(0, len(v2) - 9, 8))
        {pick}
        for v5 in v4:
            v6 = v2[v5 : v5 + 9]
            with torch.no_grad():
                v8[v5 : v5 + 8] = F.cross_entropy(v1(v6[:-1]), v6[1:], reduction="none")
            if v3 > 0:
                F.cross_entropy(v1(v6[:-1]), v6[1:]).backward()
                v9.step()
        print(f"pass {v3} done")
    print("val_loss", v8.mean().item())

if __name__ == "__main__":
    main()
"""
    rotated = "v10 = (v3 * len(v4)) // v7\n        v4 = v4[v10:] + v4[:v10]"
    facts = facts_for(tmp_path, code.replace("{pick}", rotated))
    assert "PG302" in [f.code for f in RescoreAfterAdapt().check(facts)]
    facts = facts_for(tmp_path, code.replace("{pick}", "v4 = v4[v3 * 4 :]"))
    assert not [f for f in RescoreAfterAdapt().check(facts) if "in every pass" in f.message]


def test_the_slice_after_a_hashed_context_window_is_the_target_whatever_its_names(tmp_path: Path):
    # A helper hashes the L shifted windows `s[j : j + n - L]`; its caller keys a count table with
    # `s[L:]`, the token after each context: the lookup reads the target (PR #769's shape, renamed).
    from pgaudit.rules.pg101_target_in_hash_key import TargetInHashKey

    code = """
import numpy as np
import torch

class C:
    def __init__(self):
        self.a = np.zeros(1024, dtype=np.int64)
        self.b = np.zeros(1024, dtype=np.int64)

    def h(self, s, k):
        m = len(s) - k
        out = np.zeros(m, dtype=np.int64)
        for j in range(k):
            out = np.bitwise_xor(out, s[j : j + m].astype(np.int64) * 31)
        return out % 1024

    def q(self, s, k):
        c = self.h(s, k)
        w = {succ}
        return self.b[(c * 7 + w * 13) % 1024] / np.maximum(self.a[c], 1)

def main():
    s = torch.load("data/fineweb_val_000000.bin").numpy()
    c = C()
    p = c.q(s, 3)
    print("val_loss", float(-np.log(np.maximum(p, 1e-9)).mean()))

if __name__ == "__main__":
    main()
"""
    facts = facts_for(tmp_path, code.replace("{succ}", "s[k:]"))
    assert "PG101" in [f.code for f in TargetInHashKey().check(facts)]
    facts = facts_for(tmp_path, code.replace("{succ}", "s[: len(s) - k]"))  # a context token, not the next one
    assert "PG101" not in [f.code for f in TargetInHashKey().check(facts)]


def test_a_probe_fit_on_the_head_of_a_split_and_scored_on_its_tail_is_not_adapt_before_score(tmp_path: Path):
    # `a, b = h[:k], h[k:]`: fitting on `a` and scoring `b` never scores a token the fit saw. Fitting on all
    # of `h` and scoring its tail does.
    from pgaudit.rules.pg301_adapt_before_score import AdaptBeforeScore

    code = """
import torch
import torch.nn.functional as F

def main():
    model = torch.nn.Embedding(8, 8)
    val_tokens = torch.load("data/fineweb_val_000000.bin")
    with torch.no_grad():
        h = model(val_tokens[:-1])
    t = val_tokens[1:]
    k = int(0.8 * h.shape[0])
    h_a, h_b = {fit}, h[k:]
    t_a, t_b = t[:k], t[k:]
    probe = torch.nn.Linear(8, 8)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
    for _ in range(10):
        loss = F.cross_entropy(probe(h_a), t_a)
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        print("probe_loss", F.cross_entropy(probe(h_b), t_b).item())

if __name__ == "__main__":
    main()
"""
    facts = facts_for(tmp_path, code.replace("{fit}", "h[:k]"))
    assert not list(AdaptBeforeScore().check(facts))
    facts = facts_for(tmp_path, code.replace("{fit}", "h"))
    assert [f.code for f in AdaptBeforeScore().check(facts)] == ["PG301"]

"""The numbered walks (source/parse.walk, ProgramIndex.walk_scope read off the pre-order numbering) visit
exactly what the plain walks visit: `walk` the nodes of `ast.walk`, `walk_scope` the same nodes in the same
order as the stack walk it replaces. Speed must not change what any rule sees."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgaudit.analysis.index import ProgramIndex
from pgaudit.source.parse import child_nodes, parse_python, walk
from pgaudit.source.program import load_program

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "examples").glob("*/train_gpt.py")) + sorted((ROOT / "reference_trainer").glob("*.py"))

NESTED = '''
import functools

def deco(f):
    return f

@deco
@functools.lru_cache(maxsize=None)
def outer(a, b=len("x"), *, c=max(1, 2), d=None, **kw):
    def inner(x=a + 1):
        return lambda y=x: [z * y for z in range(x) if z]
    class Box(dict, metaclass=type):
        field = inner(2)
        def method(self, k=field):
            return {k: v for k, v in self.items()}
    return Box, inner

class Top:
    @staticmethod
    def s(q=sum(i for i in range(3))):
        return q
    value = Top = (lambda: outer(1))()

if __name__ == "__main__":
    total = 0
    for i, (u, v) in enumerate(zip("ab", "cd")):
        total ^= hash(u + v)
'''


def _numbered(text: str) -> ast.Module:
    return parse_python(text, "<test>")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_walk_visits_what_ast_walk_visits(script: Path) -> None:
    tree = _numbered(script.read_text())
    for node in ast.walk(tree):
        assert {id(n) for n in walk(node)} == {id(n) for n in ast.walk(node)}
        assert walk(node)[0] is node
        assert child_nodes(node) == list(ast.iter_child_nodes(node))


def _walk_scope_equals_stack_walk(program_path: Path) -> int:
    index = ProgramIndex(load_program(program_path, program_path.parent))
    checked = 0
    for scope in index.scopes:
        if isinstance(scope.node, ast.Lambda):
            continue
        fast = list(index._walk_scope(scope))
        slow = list(index._walk_scope_slow(scope))
        assert [id(n) for n in fast] == [id(n) for n in slow], scope.qualname
        checked += 1
    return checked


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_walk_scope_order_unchanged(script: Path) -> None:
    assert _walk_scope_equals_stack_walk(script) > 0


def test_walk_scope_order_with_decorators_defaults_classes(tmp_path: Path) -> None:
    path = tmp_path / "train_gpt.py"
    path.write_text(NESTED)
    assert _walk_scope_equals_stack_walk(path) >= 6  # module, outer, inner, method, s, deco


def test_node_outside_a_parsed_tree_walks_the_plain_way() -> None:
    tree = _numbered("x = f(a) ^ g(b)\n")
    call = tree.body[0].value.left  # type: ignore[attr-defined]
    made = ast.BinOp(left=call, op=ast.Add(), right=ast.Constant(1))  # what the analysis builds
    assert {id(n) for n in walk(made)} == {id(n) for n in ast.walk(made)}


_NAMES = st.sampled_from(["a", "b", "t", "h"])
_EXPRS = st.recursive(
    _NAMES | st.integers(0, 9).map(str),
    lambda inner: st.tuples(inner, st.sampled_from(["+", "^", "*"]), inner).map(" ".join)
    | st.tuples(_NAMES, inner).map(lambda p: f"{p[0]}({p[1]})")
    | inner.map(lambda e: f"[{e} for a in b]")
    | inner.map(lambda e: f"(lambda a=1: {e})"),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_NAMES, _EXPRS), min_size=1, max_size=5), st.booleans())
def test_walk_scope_order_on_generated_functions(tmp_path_factory: pytest.TempPathFactory, body: list, decorate: bool) -> None:
    lines = ["def d(f):", "    return f", ""]
    lines += ["@d" if decorate else "", f"def fn(a, b={body[0][1]}, *, t={body[-1][1]}):"]
    lines += [f"    {name} = {expr}" for name, expr in body] + ["    return a", ""]
    lines += [f"{name} = {expr}" for name, expr in body]
    path = tmp_path_factory.mktemp("gen") / "train_gpt.py"
    path.write_text("\n".join(lines) + "\n")
    assert _walk_scope_equals_stack_walk(path) >= 2

"""Lineage: fingerprints survive renaming, reordering and self-extracting wrapping; behaviour changes show.

Built on the small synthetic tree in tests/fixtures/lineage (Base, an unrelated Other, and Child = Base with a
3x MLP, a lower learning rate and a warmdown helper).
"""

from __future__ import annotations

import ast
import base64
import builtins
import json
import lzma
import shutil
from pathlib import Path

import pytest

from pgaudit.lineage.claims import readme_claims
from pgaudit.lineage.compare import compare
from pgaudit.lineage.index import Cache, build_index, index_from_git
from pgaudit.lineage.lookup import lineage_of, load_submission
from tests.conftest import ROOT, run_cli
from tests.gitrepo import GitRepo

TREE = ROOT / "tests" / "fixtures" / "lineage"
TRACK = "records/track_10min_16mb"
BASE = TREE / TRACK / "2026-01-01_Base"
CHILD = TREE / TRACK / "2026-01-05_Child"


def _prints(folder: Path):
    return load_submission(folder)[0]


def _variant(tmp_path: Path, source: str, name: str = "variant") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(source, encoding="utf-8")
    return folder


# --- rewrites that must not change a fingerprint -------------------------------------------------------------


class _RenameEverything(ast.NodeTransformer):
    """Rename every identifier the module binds (and every attribute it assigns), consistently."""

    def __init__(self, tree: ast.Module) -> None:
        imported = set()
        bound = set()
        attrs = set()  # attributes the module owns: assigned on objects, or declared in class bodies
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                attrs.update(t.id for s in node.body if isinstance(s, ast.Assign) for t in s.targets
                             if isinstance(t, ast.Name))
                attrs.update(s.name for s in node.body if isinstance(s, ast.FunctionDef))
            if isinstance(node, ast.Import | ast.ImportFrom):
                imported.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                bound.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
                bound.add(node.attr)
                attrs.add(node.attr)
        keep = imported | set(dir(builtins)) | {"self", "__init__", "forward", "__name__"}
        self.map = {name: f"q{i}_{name[::-1].strip('_')}" for i, name in enumerate(sorted(bound - keep))}
        self.attrs = attrs - keep

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.map.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self.map.get(node.arg, node.arg)
        node.annotation = None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self.map.get(node.name, node.name)
        node.returns = None
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.map.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if node.attr in self.attrs:
            node.attr = self.map.get(node.attr, node.attr)
        self.generic_visit(node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        # keyword names are parameters of the callee: renamed for the module's own functions only
        callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if callee in self.map:
            for kw in node.keywords:
                if kw.arg is not None:
                    kw.arg = self.map.get(kw.arg, kw.arg)
        self.generic_visit(node)
        return node


def _renamed(source: str) -> str:
    tree = ast.parse(source)
    renamer = _RenameEverything(tree)
    assert len(renamer.map) > 20  # the rewrite really renames
    return ast.unparse(renamer.visit(tree))


def _self_extracting(source: str) -> str:
    blob = base64.b85encode(lzma.compress(source.encode(), format=lzma.FORMAT_RAW,
                                          filters=[{"id": lzma.FILTER_LZMA2}])).decode()
    return ('import lzma as L,base64 as B\n'
            f'exec(L.decompress(B.b85decode("{blob}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n')


def test_a_record_compared_with_itself_is_identical():
    prints = _prints(BASE)
    result = compare(prints.entries, _prints(BASE).entries)
    assert result.share_functions == 1.0 and result.share_lines == 1.0
    assert {p.status for p in result.pairs} == {"unchanged"}
    assert result.functions_total == len(prints.entries) >= 10


def test_renaming_every_identifier_and_rewrapping_keeps_it_identical(tmp_path: Path):
    original = (BASE / "train_gpt.py").read_text()
    renamed = _renamed(original)
    assert "eval_val" not in renamed and "Hyperparameters" not in renamed
    folder = _variant(tmp_path, _self_extracting(renamed))
    assert "def " not in (folder / "train_gpt.py").read_text()  # only the payload holds the code
    base, variant = _prints(BASE), _prints(folder)
    result = compare(variant.entries, base.entries)
    assert result.share_functions == 1.0, [(p.status, p.entry.qualname) for p in result.pairs if p.status != "unchanged"]
    assert base.fingerprint == variant.fingerprint
    assert all(e.in_payload for e in variant.entries)
    # the renamed functions still pair with their originals
    pair = next(p for p in result.pairs if p.old is not None and p.old.qualname == "eval_val")
    assert pair.renamed and pair.new is not None and pair.new.qualname != "eval_val"


def test_reordered_definitions_comments_and_docstrings_change_nothing(tmp_path: Path):
    tree = ast.parse((BASE / "train_gpt.py").read_text())
    defs = [s for s in tree.body if isinstance(s, ast.FunctionDef | ast.ClassDef)]
    rest = [s for s in tree.body if s not in defs]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and not ast.get_docstring(node):
            node.body.insert(0, ast.Expr(ast.Constant("A docstring added by the test.")))
    tree.body = [*rest[:-1], *reversed(defs), rest[-1]]
    source = "# a comment on top\n" + ast.unparse(tree).replace("\n\n", "\n\n# spacing comment\n\n")
    folder = _variant(tmp_path, source)
    base, variant = _prints(BASE), _prints(folder)
    assert base.fingerprint == variant.fingerprint
    assert compare(variant.entries, base.entries).share_functions == 1.0


# --- changes that must show --------------------------------------------------------------------------------


def test_one_changed_constant_in_the_eval_function_is_reported_there(tmp_path: Path):
    source = (BASE / "train_gpt.py").read_text()
    changed = source.replace("return total / max(count, 1) / math.log(2.0)", "return total / max(count, 1) / math.log(2.5)")
    assert changed != source
    folder = _variant(tmp_path, changed)
    root = tmp_path / "clone"
    shutil.copytree(TREE, root)
    index = build_index(root, cache=None, jobs=1)
    lineage = lineage_of(folder, index)
    assert lineage.nearest is not None and lineage.nearest.name == "2026-01-01_Base"
    moved = [p for p in lineage.comparison.pairs if p.status != "unchanged"]
    assert [(p.status, p.entry.qualname) for p in moved] == [("changed", "eval_val")]
    assert lineage.scoring is not None and moved[0].new.key in lineage.scoring
    assert lineage.scoring_changes() == ["train_gpt.py::eval_val"]
    d = lineage.diffs["train_gpt.py::eval_val"]
    assert any(line.startswith("-") and "2.0" in line for line in d.lines)
    assert any(line.startswith("+") and "2.5" in line for line in d.lines)
    line = changed.splitlines().index("    return total / max(count, 1) / math.log(2.5)") + 1
    assert d.changed_lines == [line]


@pytest.mark.parametrize(("old", "new"), [
    ("h = h + self.mlp(", "h = h - self.mlp("),  # operator
    ("F.cross_entropy(logits.view", "F.nll_loss(logits.view"),  # external call
    ('reduction="sum"', 'reduction="mean"'),  # keyword constant
    ("with torch.no_grad():", "with torch.enable_grad():"),  # context
    ("for start in range(0, val_tokens.numel() - seq_len - 1, seq_len):",
     "for start in range(0, val_tokens.numel() - seq_len - 1, seq_len // 2):"),  # control flow
])
def test_behaviour_changes_change_the_fingerprint(tmp_path: Path, old: str, new: str):
    source = (BASE / "train_gpt.py").read_text()
    assert old in source
    folder = _variant(tmp_path, source.replace(old, new, 1))
    result = compare(_prints(folder).entries, _prints(BASE).entries)
    assert sum(p.status == "changed" for p in result.pairs) == 1
    assert result.functions_identical == result.functions_total - 1


def test_a_renamed_and_edited_function_still_pairs_up(tmp_path: Path):
    source = (BASE / "train_gpt.py").read_text().replace("def load_tokens(", "def read_tokens(")
    source = source.replace("load_tokens(os.path", "read_tokens(os.path").replace("np.uint16", "np.uint32")
    result = compare(_prints(_variant(tmp_path, source)).entries, _prints(BASE).entries)
    pair = next(p for p in result.pairs if p.new is not None and p.new.qualname == "read_tokens")
    assert pair.status == "changed" and pair.old is not None and pair.old.qualname == "load_tokens"
    assert not [p for p in result.pairs if p.status in ("new", "removed")]


# --- the index, its cache, nearest ancestors and claims -------------------------------------------------------


def test_child_descends_from_base_with_its_changes(tmp_path: Path):
    index = build_index(TREE, cache=Cache(tmp_path / "cache"), jobs=1)
    lineage = lineage_of(CHILD, index)
    assert [c.record.name for c in lineage.candidates] == ["2026-01-01_Base", "2026-01-03_Other"]
    statuses = {p.entry.qualname: p.status for p in lineage.comparison.pairs if p.status != "unchanged"}
    assert statuses == {"Hyperparameters": "changed", "MLP.__init__": "changed", "train": "changed", "warmdown": "new"}
    assert lineage.scoring_changes() == []  # eval and forward passes are Base's
    assert 0.5 < lineage.comparison.share_functions < 1.0


def test_index_cache_is_reused_and_keyed_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "clone"
    shutil.copytree(TREE, root)
    cache = Cache(tmp_path / "cache")
    first = build_index(root, cache=cache, jobs=1)
    import pgaudit.lineage.index as index_module

    real = index_module._record_data

    def boom(folder):
        raise AssertionError(f"re-fingerprinted {folder}")

    monkeypatch.setattr(index_module, "_record_data", boom)
    again = build_index(root, cache=cache, jobs=1)
    assert again.key == first.key
    assert [r.to_dict() for r in again.records] == [r.to_dict() for r in first.records]
    # an edit changes the key, and only the edited record is fingerprinted again
    child = root / TRACK / "2026-01-05_Child" / "train_gpt.py"
    child.write_text(child.read_text().replace("0.005", "0.004"))
    seen = []
    monkeypatch.setattr(index_module, "_record_data", lambda f: seen.append(f.name) or real(f))
    changed = build_index(root, cache=cache, jobs=1)
    assert changed.key != first.key and seen == ["2026-01-05_Child"]


def test_readme_claims_name_bases_not_comparisons():
    claims = readme_claims("Built on [PR #549](https://github.com/openai/parameter-golf/pull/549).\n\n"
                           "Beats PR #1493 (1.0810) and the merged SOTA (PR #1019).\n")
    assert [(c.kind, c.value) for c in claims] == [("pr", "549")]
    chain = readme_claims("Previous: [PR #70](x) (9L) → [PR #164](y) (9L) → this\n")
    assert [(c.kind, c.value) for c in chain] == [("pr", "164")]
    folder = readme_claims("This script builds on the [record](https://github.com/openai/parameter-golf/blob/main/"
                           "records/track_10min_16mb/2026-03-17_NaiveBaseline/train_gpt.py).")
    assert [(c.kind, c.value) for c in folder] == [("record", "records/track_10min_16mb/2026-03-17_NaiveBaseline")]
    assert readme_claims("A 3x MLP beats the #1 entry; see section #2.") == []


def _git_tree(tmp_path: Path) -> GitRepo:
    """The fixture tree as history: Base merged as PR #11, Other as #12, Child as #13."""
    repo = GitRepo(tmp_path / "repo")
    repo.write("README.md", "# stand-in\n")
    repo.commit("root")
    for number, name in ((11, "2026-01-01_Base"), (12, "2026-01-03_Other"), (13, "2026-01-05_Child")):
        repo.branch(f"pr-{number}")
        shutil.copytree(TREE / TRACK / name, repo.path / TRACK / name)
        repo.commit(f"add {name}")
        repo.git("checkout", "-q", "main")
        repo.git("merge", "-q", "--no-ff", "-m", f"Merge pull request #{number} from tests/{name}", f"pr-{number}")
    return repo


def test_index_from_git_maps_prs_and_checks_the_readme_claim(tmp_path: Path):
    repo = _git_tree(tmp_path)
    index = index_from_git(repo.path, "main", Cache(tmp_path / "cache"), jobs=1)
    assert {r.name: r.prs for r in index.records} == {"2026-01-01_Base": [11], "2026-01-03_Other": [12],
                                                       "2026-01-05_Child": [13]}
    assert [r.name for r in sorted(index.records, key=lambda r: r.order)] == [
        "2026-01-01_Base", "2026-01-03_Other", "2026-01-05_Child"]
    lineage = lineage_of(CHILD, index, earlier_only=True)
    assert lineage.nearest is not None and lineage.nearest.prs == [11]
    [claim] = [c for c in lineage.claims if c.claim.value == "11"]
    assert claim.agrees is True and "The code agrees" in claim.sentence
    assert not [c for c in lineage.claims if c.claim.value == "12"]  # "Beats PR #12" is no lineage claim
    # the same revision again comes from the cache, with the history
    again = index_from_git(repo.path, "main", Cache(tmp_path / "cache"), jobs=1)
    assert again.key == index.key and {r.name: r.prs for r in again.records} == {r.name: r.prs for r in index.records}


def test_a_readme_claim_the_code_contradicts(tmp_path: Path):
    repo = _git_tree(tmp_path)
    index = index_from_git(repo.path, "main", None, jobs=1)
    folder = tmp_path / "sub"
    shutil.copytree(CHILD, folder)
    (folder / "README.md").write_text("# Sub\n\nBuilt on PR #12, the bigram table.\n")
    lineage = lineage_of(folder, index)
    [claim] = lineage.claims
    assert claim.agrees is False and "does not confirm" in claim.sentence
    assert lineage.nearest is not None and lineage.nearest.prs == [13]  # the copy's own record, not #12
    assert lineage.comparison.share_functions == 1.0


# --- the command line ----------------------------------------------------------------------------------------


def test_cli_json_and_text(tmp_path: Path):
    cache = str(tmp_path / "cache")
    done = run_cli("lineage", str(CHILD), "--records", str(TREE), "--format", "json", "--cache-dir", cache)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["schema"] == "pgaudit.lineage/1"
    assert data["ancestors"][0]["record"] == f"{TRACK}/2026-01-01_Base"
    changed = {f["qualname"]: f for f in data["functions"] if f["status"] != "unchanged"}
    assert changed["MLP.__init__"]["diff"]["changed_lines"]
    assert changed["warmdown"]["status"] == "new"
    text = run_cli("lineage", str(CHILD), "--records", str(TREE), "--cache-dir", cache)
    assert text.returncode == 0 and "Descends from records/track_10min_16mb/2026-01-01_Base" in text.stdout
    index = run_cli("lineage", "index", str(TREE), "--cache-dir", cache)
    assert index.returncode == 0 and index.stdout.startswith("indexed 3 records")


@pytest.mark.parametrize("args", [
    ("lineage", "nowhere", "--records", "."),
    ("lineage", "tests", "--records", "nowhere"),
    ("lineage", "tests"),
    ("lineage", "index"),
    ("lineage", "index", "tests"),  # no records/ there
    ("lineage", "tests", "--records", ".", "--format", "xml"),
])
def test_cli_bad_input_is_one_line_exit_2(args: tuple[str, ...]):
    done = run_cli(*args, cwd=ROOT)
    assert done.returncode == 2, done.stdout
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_review_leads_with_the_lineage(tmp_path: Path):
    done = run_cli("review", str(CHILD), "--records", str(TREE), "--repo", "openai/parameter-golf", "--sha", "abc1234", "--exit-zero",
                   env={"PGAUDIT_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    body = done.stdout
    lead = body.index("**Descends from `records/track_10min_16mb/2026-01-01_Base`**")
    assert lead < body.index("**Verdict:")
    assert "The scoring path is unchanged" in body
    assert "```diff" in body and "+        self.fc = nn.Linear(dim, 3 * dim)" in body


def test_deeply_nested_code_still_gets_a_fingerprint(tmp_path: Path):
    import inspect
    import sys

    from pgaudit.lineage.fingerprint import fingerprint_program
    from pgaudit.source.program import load_program

    # 90 nested additions: under the loader's nesting bound (source/parse.py), over this recursion limit.
    deep = "def f(v):\n    return " + " + ".join(["v"] * 90) + "\n"
    folder = _variant(tmp_path, deep + "f(1)\n")
    program = load_program(folder / "train_gpt.py", folder)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 40)  # far less than 90 nested additions need
    try:
        prints = fingerprint_program(program)
    finally:
        sys.setrecursionlimit(limit)
    assert {e.qualname for e in prints.entries} == {"f", "<module>"}
    assert compare(prints.entries, fingerprint_program(program).entries).functions_identical == 1  # f: raw text


def test_hostile_readme_is_read_in_linear_time():
    text = "Previous: " * 20000 + "x" * 100000
    assert readme_claims(text) == []


def test_a_finding_in_code_identical_to_an_accepted_record_names_the_precedent(tmp_path: Path):
    clone = tmp_path / "clone"
    accepted = clone / TRACK / "2026-01-01_Ngram"
    shutil.copytree(ROOT / "examples" / "illegal_ngram_cache", accepted)
    submission = tmp_path / "submission"
    shutil.copytree(ROOT / "examples" / "illegal_ngram_cache", submission)
    done = run_cli("review", str(submission), "--records", str(clone), env={"PGAUDIT_CACHE_DIR": str(tmp_path / "c")})
    assert done.returncode == 1, done.stderr  # the illegal finding stands: review exits like check
    assert "PG101" in done.stdout
    assert "**Precedent:** this code is in `" in done.stdout
    assert f"identical in the accepted record `{TRACK}/2026-01-01_Ngram`" in done.stdout
    assert "**The scoring path is unchanged** from that record." in done.stdout


def test_a_damaged_cache_is_rebuilt(tmp_path: Path):
    cache = Cache(tmp_path / "cache")
    first = build_index(TREE, cache=cache, jobs=1)
    for path in (cache.dir / "records").iterdir():
        path.write_bytes(b"\x1f\x8b not gzip")
    for path in cache.dir.glob("index-*"):
        path.unlink()
    again = build_index(TREE, cache=cache, jobs=1)
    assert [r.to_dict() for r in again.records] == [r.to_dict() for r in first.records]


def test_same_file_pairs_before_a_namesake_elsewhere(tmp_path: Path):
    folder = tmp_path / "two"
    folder.mkdir()
    source = (BASE / "train_gpt.py").read_text().replace("    main()\n", "    main()\nSEED = 7\n")
    (folder / "train_gpt.py").write_text("import helper\n" + source)
    (folder / "helper.py").write_text("TABLE = [1, 2, 3]\nprint(TABLE)\n")
    result = compare(_prints(folder).entries, _prints(BASE).entries)
    statuses = {p.entry.key: p.status for p in result.pairs if p.status != "unchanged"}
    assert statuses == {"train_gpt.py::<module>": "changed", "helper.py::<module>": "new"}

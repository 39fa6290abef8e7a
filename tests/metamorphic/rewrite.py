"""Semantics-preserving rewrites of a submission script, for metamorphic tests and the renamed DEV corpus.

Every rewrite keeps what the program does and changes only how it is spelled, so a verdict that changes
under one of them came from the spelling, not from the code:

- `rename`: every identifier the script binds (functions, classes, parameters, locals, globals, class fields,
  attributes it assigns on `self`, keyword arguments at calls of its own functions, names inside f-strings)
  becomes a neutral `vN`; imported modules, library attributes, builtins, dunders and `self`/`cls` stay.
- `mislead`: the same renaming with role-suggestive names (`target_1`, `val_tokens_2`, `ctx_4`, ...) handed
  out in turn, so clean values are called targets or validation data and real targets context.
- `split`: an argument of a call on the right of an assignment moves into a fresh variable the line before.
- `swap`: equivalent operators and APIs: `a ^ b` <-> `np.bitwise_xor(a, b)` / `torch.bitwise_xor(a, b)`,
  `h ^= v` -> `h = h ^ v`, `h = h ^ v` -> `h ^= v`.

libcst keeps comments (suppressions, `# <- expected` markers) and layout; new lines are only added by
`split`, so line pins are compared by verdict, not by line number.
"""

from __future__ import annotations

import builtins
import keyword
from collections.abc import Callable

import libcst as cst

# Methods a framework calls by name: renaming them would change what runs.
FRAMEWORK_HOOKS = frozenset({
    "forward", "backward", "step", "zero_grad", "train", "eval", "parameters", "named_parameters", "buffers",
    "named_buffers", "state_dict", "load_state_dict", "reset_parameters", "extra_repr", "apply", "to", "cuda",
    "cpu", "setup_context", "children", "modules", "named_modules", "register_buffer", "register_parameter",
    "add_param_group", "param_groups", "state", "defaults", "jvp", "vjp", "run", "get", "items", "keys",
    "values", "update", "append", "extend", "format", "main", "half", "float", "double", "bfloat16",
})  # fmt: skip
# Attributes that library objects carry under the same name: `self.weight = ...` in a module of ours must not
# rename `.weight` of an `nn.Linear`.
LIBRARY_ATTRS = frozenset({
    "weight", "bias", "data", "grad", "shape", "dtype", "device", "T", "training", "eps", "in_features",
    "out_features", "num_embeddings", "embedding_dim", "requires_grad", "is_cuda", "ndim", "size", "real",
    "imag", "mT", "name", "value", "args", "kwargs", "lr", "momentum", "betas", "weight_decay", "params",
    "normalized_shape", "elementwise_affine", "padding_idx", "max_norm", "inference_mode", "mode", "path",
    "stem", "parent", "suffix", "text", "id", "type", "index", "count", "start", "stop",
})  # fmt: skip
KEEP = frozenset({"self", "cls", "_"}) | frozenset(dir(builtins)) | frozenset(keyword.kwlist)


def _name_of(node: cst.BaseExpression | None) -> str | None:
    return node.value if isinstance(node, cst.Name) else None


def _target_names(node: cst.CSTNode, out: set[str]) -> None:
    """Names bound by an assignment target (`a`, `a, (b, *c)`, not `a.b` or `a[i]`)."""
    if isinstance(node, cst.Name):
        out.add(node.value)
    elif isinstance(node, cst.Tuple | cst.List):
        for el in node.elements:
            _target_names(el.value, out)
    elif isinstance(node, cst.StarredElement):
        _target_names(node.value, out)


class _Binders(cst.CSTVisitor):
    """What the script binds: names (any scope, flat) and attributes (on `self`, class fields, methods)."""

    def __init__(self, local_modules: frozenset[str] = frozenset()) -> None:
        self.local_modules = local_modules
        self.names: set[str] = set()
        self.attrs: set[str] = set()
        self.imported: set[str] = set()
        self.own_callables: set[str] = set()
        self._class_depth = 0
        self._func_depth = 0

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            bound = alias.asname.name if alias.asname else alias.name
            top = bound
            while isinstance(top, cst.Attribute):
                top = top.value
            if isinstance(top, cst.Name):
                self.imported.add(top.value)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        local = _module_name(node) in self.local_modules
        for alias in node.names:
            bound = alias.asname.name if alias.asname else alias.name
            if isinstance(bound, cst.Name):
                # a name imported from a sibling module of the submission is the script's own
                (self.names if local else self.imported).add(bound.value)
                if local and isinstance(alias.name, cst.Name):
                    self.names.add(alias.name.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.names.add(node.name.value)
        self.own_callables.add(node.name.value)
        self._class_depth += 1

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._class_depth -= 1

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        name = node.name.value
        in_class = self._class_depth > 0 and self._func_depth == 0
        if in_class:
            if name not in FRAMEWORK_HOOKS and not name.startswith("__"):
                self.attrs.add(name)
                self.own_callables.add(name)
        else:
            self.names.add(name)
            self.own_callables.add(name)
        self._func_depth += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._func_depth -= 1

    def visit_Param(self, node: cst.Param) -> None:
        self.names.add(node.name.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._store(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._store(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._store(node.target)

    def visit_For(self, node: cst.For) -> None:
        _target_names(node.target, self.names)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        _target_names(node.target, self.names)

    def visit_AsName(self, node: cst.AsName) -> None:
        parent_is_import = False  # import aliases are recorded by visit_Import*; with/except names are ours
        if not parent_is_import:
            _target_names(node.name, self.names)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        _target_names(node.target, self.names)

    def _store(self, target: cst.BaseExpression) -> None:
        in_class_body = self._class_depth > 0 and self._func_depth == 0
        if in_class_body and isinstance(target, cst.Name):
            self.attrs.add(target.value)  # a class field: read as `obj.field`
            self.names.add(target.value)
            return
        _target_names(target, self.names)
        if isinstance(target, cst.Attribute) and _name_of(target.value) == "self":
            self.attrs.add(target.attr.value)

    def finish(self) -> tuple[set[str], set[str], set[str]]:
        def ok(n: str) -> bool:
            return n not in KEEP and not (n.startswith("__") and n.endswith("__")) and n not in self.imported

        names = {n for n in self.names if ok(n)}
        attrs = {a for a in self.attrs if ok(a) and a not in LIBRARY_ATTRS and a not in FRAMEWORK_HOOKS}
        return names, attrs, self.own_callables


class _Renamer(cst.CSTTransformer):
    def __init__(
        self, names: set[str], attrs: set[str], own: set[str], mapping: dict[str, str], local_modules: frozenset[str]
    ) -> None:
        self.names, self.attrs, self.own, self.mapping = names, attrs, own, mapping
        self.local_modules = local_modules
        self._skip: set[int] = set()  # Name nodes that are attribute members, import parts or foreign kwargs

    def _new(self, old: str) -> str:
        return self.mapping.setdefault(old, f"v{len(self.mapping) + 1}")

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._skip.add(id(node.attr))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        # a method's name is an attribute of its class (leave_FunctionDef renames it as one), not the plain
        # name `step` a training loop may also bind: renaming it with that name would change which `step` runs
        for stmt in node.body.body:
            if isinstance(stmt, cst.FunctionDef):
                self._skip.add(id(stmt.name))

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if isinstance(node.module, cst.CSTNode):
            self._skip.update(id(n) for n in _names_in(node.module))
        return _module_name(node) in self.local_modules

    def visit_Call(self, node: cst.Call) -> None:
        callee = node.func
        last = callee.attr.value if isinstance(callee, cst.Attribute) else _name_of(callee)
        for arg in node.args:
            if arg.keyword is not None and last not in self.own:
                self._skip.add(id(arg.keyword))

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        attr = original_node.attr.value
        if attr in self.attrs:
            return updated_node.with_changes(attr=cst.Name(self._new(attr)))
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        # getattr(obj, "field") / setattr / hasattr with a renamed attribute spelled as a string
        if _name_of(original_node.func) in ("getattr", "setattr", "hasattr") and len(updated_node.args) >= 2:
            lit = updated_node.args[1].value
            if isinstance(lit, cst.SimpleString) and lit.value[:1] in "'\"":
                text = lit.value[1:-1]
                if text in self.attrs:
                    args = list(updated_node.args)
                    args[1] = args[1].with_changes(value=cst.SimpleString(repr(self._new(text))))
                    return updated_node.with_changes(args=args)
        return updated_node

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        name = original_node.name.value
        if name in self.attrs:  # a method of one of the script's classes (one mapping: same new name as a plain name)
            return updated_node.with_changes(name=cst.Name(self._new(name)))
        return updated_node

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        if id(original_node) in self._skip:
            return updated_node
        if original_node.value in self.names:
            return updated_node.with_changes(value=self._new(original_node.value))
        return updated_node


def rename(source: str, mapping: dict[str, str] | None = None, local_modules: frozenset[str] = frozenset()) -> str:
    """Consistently rename every identifier the script binds to `v1`, `v2`, ... (see module docstring).

    `mapping` (old -> new) is filled in and may be shared between the files of one submission, so a name a
    sibling module defines and the script imports gets the same new name in both; `local_modules` names those
    sibling modules (names imported from them are renamed, names from libraries are not).
    """
    tree = cst.parse_module(source)
    binders = _Binders(local_modules)
    tree.visit(binders)
    names, attrs, own = binders.finish()
    mapping = {} if mapping is None else mapping
    used = _all_names(tree)
    taken = set(mapping.values()) | used
    # fresh names must not collide with anything the script already spells
    counter = [len(mapping)]

    def fresh(old: str) -> str:
        while True:
            counter[0] += 1
            cand = f"v{counter[0]}"
            if cand not in taken:
                taken.add(cand)
                return cand

    for old in sorted(names | attrs):
        if old not in mapping:
            mapping[old] = fresh(old)
    return tree.visit(_Renamer(names, attrs, own, mapping, local_modules)).code


# Role-suggestive names, handed out in turn by `mislead`: whatever a value is, most names it gets tell a wrong
# story (a clean table called `target_3`, a target called `ctx_4`, training tokens called `val_tokens_2`).
MISLEADING = (
    "target", "val_tokens", "tgt", "ctx", "history", "y", "labels", "prev_tok", "train_tokens", "next_tokens",
    "val_np", "target_hash", "context", "tgt_np", "eval_tokens", "gold",
)  # fmt: skip


def mislead(source: str, mapping: dict[str, str] | None = None, local_modules: frozenset[str] = frozenset()) -> str:
    """`rename` with role-suggestive names instead of neutral ones (`target_1`, `val_tokens_2`, `ctx_4`, ...):
    names may raise or lower confidence, never decide, so no verdict may change."""
    probe: dict[str, str] = {}
    rename(source, probe, local_modules)  # which names the script binds
    mapping = {} if mapping is None else mapping
    taken = set(mapping.values()) | _all_names(cst.parse_module(source))
    n = len(mapping)
    for old in sorted(probe):
        if old in mapping:
            continue
        while True:
            n += 1
            cand = f"{MISLEADING[n % len(MISLEADING)]}_{n}"
            if cand not in taken:
                break
        taken.add(cand)
        mapping[old] = cand
    return rename(source, mapping, local_modules)


def _module_name(node: cst.ImportFrom) -> str:
    return cst.Module([]).code_for_node(node.module) if node.module is not None and not node.relative else ""


def _names_in(node: cst.CSTNode) -> list[cst.Name]:
    out: list[cst.Name] = []

    class _V(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            out.append(n)

    node.visit(_V())
    return out


def _all_names(tree: cst.Module) -> set[str]:
    found: set[str] = set()

    class _V(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            found.add(node.value)

    tree.visit(_V())
    return found


# --- (e) equivalent operators and APIs ---------------------------------------------------------------


class _Swap(cst.CSTTransformer):
    """`a ^ b` -> `LIB.bitwise_xor(a, b)` where LIB is an imported numpy or torch; `h ^= v` -> `h = h ^ v`."""

    def __init__(self, lib: str | None) -> None:
        self.lib = lib
        self.count = 0

    def leave_BinaryOperation(
        self, original_node: cst.BinaryOperation, updated_node: cst.BinaryOperation
    ) -> cst.BaseExpression:
        if isinstance(updated_node.operator, cst.BitXor) and self.lib:
            self.count += 1
            return cst.Call(
                func=cst.Attribute(cst.Name(self.lib), cst.Name("bitwise_xor")),
                args=[cst.Arg(_unparen(updated_node.left)), cst.Arg(_unparen(updated_node.right))],
            )
        return updated_node

    def leave_AugAssign(
        self, original_node: cst.AugAssign, updated_node: cst.AugAssign
    ) -> cst.BaseSmallStatement:
        # only for plain names: `t[i] ^= v` on an array is in place and `t[i] = t[i] ^ v` evaluates t[i] twice
        if isinstance(updated_node.operator, cst.BitXorAssign) and isinstance(updated_node.target, cst.Name):
            self.count += 1
            value = cst.BinaryOperation(updated_node.target, cst.BitXor(), _paren(updated_node.value))
            return cst.Assign(targets=[cst.AssignTarget(updated_node.target)], value=value)
        return updated_node


def _paren(expr: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(expr, cst.Name | cst.Integer | cst.Call | cst.Attribute | cst.Subscript) or expr.lpar:
        return expr
    return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _unparen(expr: cst.BaseExpression) -> cst.BaseExpression:
    return expr.with_changes(lpar=[], rpar=[]) if getattr(expr, "lpar", None) else expr


def _array_lib(tree: cst.Module) -> str | None:
    """The local name of numpy (preferred) or torch, if the script imports one as a module."""
    found: dict[str, str] = {}

    class _V(cst.CSTVisitor):
        def visit_Import(self, node: cst.Import) -> None:
            for alias in node.names:
                full = cst.Module([]).code_for_node(alias.name)
                if full in ("numpy", "torch"):
                    local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else full
                    found.setdefault(full, local)

    tree.visit(_V())
    return found.get("numpy") or found.get("torch")


def swap_operators(source: str) -> str:
    """`^` -> np/torch.bitwise_xor and in-place `^=` -> `x = x ^ v` (applied in that order, so an expanded
    in-place form keeps its operator)."""
    tree = cst.parse_module(source)
    lib = _array_lib(tree)
    tree = tree.visit(_Swap(lib))
    return tree.code


class _Inplace(cst.CSTTransformer):
    """`h = h ^ v` -> `h ^= v` (the other direction of the in-place swap)."""

    def leave_Assign(self, original_node: cst.Assign, updated_node: cst.Assign) -> cst.BaseSmallStatement:
        if len(updated_node.targets) != 1:
            return updated_node
        target = updated_node.targets[0].target
        value = updated_node.value
        if (
            isinstance(target, cst.Name)
            and isinstance(value, cst.BinaryOperation)
            and isinstance(value.operator, cst.BitXor)
            and isinstance(value.left, cst.Name)
            and value.left.value == target.value
        ):
            return cst.AugAssign(target=target, operator=cst.BitXorAssign(), value=_unparen(value.right))
        return updated_node


def to_inplace(source: str) -> str:
    return cst.parse_module(source).visit(_Inplace()).code


# --- (d) split intermediate values -----------------------------------------------------------------


class _Split(cst.CSTTransformer):
    """`x = f(g(y), z)` -> `_t1 = g(y)` then `x = f(_t1, z)`: the first nested call or operation that is a
    positional argument of a call on the right of a simple assignment moves into a fresh variable."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.n = 0
        self._depth = 0  # inside lambdas / comprehensions a hoist would change scope or evaluation count

    def _fresh(self) -> str:
        while True:
            self.n += 1
            cand = f"tmp{self.n}"
            if cand not in self.taken:
                self.taken.add(cand)
                return cand

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.BaseStatement]:
        if len(updated_node.body) != 1 or not isinstance(updated_node.body[0], cst.Assign):
            return updated_node
        assign = updated_node.body[0]
        value = assign.value
        if not isinstance(value, cst.Call):
            return updated_node
        for i, arg in enumerate(value.args):
            if arg.keyword is None and not arg.star and isinstance(arg.value, cst.Call | cst.BinaryOperation):
                if _has_scope_change(arg.value):
                    return updated_node
                name = self._fresh()
                hoisted = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], arg.value)])
                args = list(value.args)
                args[i] = arg.with_changes(value=cst.Name(name))
                new_assign = assign.with_changes(value=value.with_changes(args=args))
                return cst.FlattenSentinel([hoisted, updated_node.with_changes(body=[new_assign])])
        return updated_node


def _has_scope_change(expr: cst.CSTNode) -> bool:
    found = [False]

    class _V(cst.CSTVisitor):
        def visit_Lambda(self, node: cst.Lambda) -> None:
            found[0] = True

        def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
            found[0] = True

        def visit_Await(self, node: cst.Await) -> None:
            found[0] = True

        def visit_Yield(self, node: cst.Yield) -> None:
            found[0] = True

    expr.visit(_V())
    return found[0]


def split_intermediates(source: str) -> str:
    tree = cst.parse_module(source)
    return tree.visit(_Split(_all_names(tree))).code


REWRITES: dict[str, Callable[[str], str]] = {
    "rename": rename,
    "mislead": mislead,
    "split": split_intermediates,
    "swap": swap_operators,
    "inplace": to_inplace,
}

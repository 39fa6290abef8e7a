"""Which self-extracting wrappers in public submissions stay opaque to pgaudit's loader.

Step 1 (`collect`) lists every record folder that any pull-request head of a clone of openai/parameter-golf
adds, dedupes the Python scripts by blob sha, keeps those that look like wrappers (exec/eval with a
decode/decompress call, or a string literal over 2,000 characters) and materializes only those blobs under
.corpus/wrappers/ (git-ignored; their code is never committed). Step 2 (`measure`, the default) loads each
materialized script with `load_program` and lists those whose exec stays opaque or whose payload fails to
decode. Nothing is executed.

    python benchmarks/wrapper_survey.py collect --mirror PATH/TO/parameter-golf.git
    python benchmarks/wrapper_survey.py measure [--list]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(".corpus/wrappers")
_EXEC = re.compile(rb"(?<![.\w])(exec|eval)\s*\(")
_CODEC = re.compile(rb"decompress|b85decode|b64decode|a85decode|b32decode|b16decode|fromhex|unhexlify|codecs\.|a2b_base64")
# scripts, and the compressed files a wrapper may read beside itself
_KEEP = (".py", ".lzma", ".xz", ".zst", ".br", ".gz", ".bz2", ".b85", ".b64", ".bin")
_LONG = re.compile(rb"[A-Za-z0-9+/=!#$%&()*;<>?@^_`{|}~-]{2000,}")


def _git(mirror: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(mirror), *args], check=True, capture_output=True).stdout


def collect(mirror: Path) -> None:
    refs = _git(mirror, "for-each-ref", "refs/pull", "--format=%(refname)").decode().split()
    # (PR, record folder) -> {script path inside the folder: blob sha}, for folders the PR adds or changes
    folders: dict[str, dict[str, str]] = {}
    for ref in refs:
        if not ref.endswith("/head"):
            continue
        number = ref.split("/")[2]
        try:
            base = _git(mirror, "merge-base", "main", ref).decode().strip()
        except subprocess.CalledProcessError:
            continue
        changed = _git(mirror, "diff-tree", "-r", "--name-only", "--diff-filter=AM", base, ref, "--", "records/")
        touched = {"/".join(p.split("/")[:3]) for p in changed.decode(errors="replace").split() if p.count("/") >= 3}
        for folder in sorted(touched):
            out = _git(mirror, "ls-tree", "-r", ref, folder + "/").decode(errors="replace")
            files = {}
            for line in out.splitlines():
                meta, _, path = line.partition("\t")
                if path.endswith(_KEEP) and meta.split()[1] == "blob":
                    files[path[len(folder) + 1 :]] = meta.split()[2]
            folders[f"#{number} {folder}"] = files
    blobs = {sha for files in folders.values() for path, sha in files.items() if path.endswith(".py")}
    print(f"{len(folders)} record folders, {len(blobs)} distinct .py blobs", file=sys.stderr)
    (OUT / "blobs").mkdir(parents=True, exist_ok=True)
    wrapper_like = {sha for sha in blobs if _looks_wrapped(_blob(mirror, sha))}
    index = {f: files for f, files in folders.items() if wrapper_like & set(files.values())}
    needed = {sha for files in index.values() for sha in files.values()}
    for sha in sorted(needed):
        target = OUT / "blobs" / sha
        if not target.exists():
            target.write_bytes(_blob(mirror, sha))
    meta = {"folders": len(folders), "wrapper_like": sorted(wrapper_like), "index": index}
    (OUT / "INDEX.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    print(f"{len(wrapper_like)} wrapper-like blobs in {len(index)} folders -> {OUT}", file=sys.stderr)


def _blob(mirror: Path, sha: str) -> bytes:
    return _git(mirror, "cat-file", "blob", sha)


def _looks_wrapped(body: bytes) -> bool:
    return bool(_EXEC.search(body) and (_CODEC.search(body) or _LONG.search(body)))


def _view(files: dict[str, str]) -> Path:
    """The folder as files on disk: hard links to the materialized blobs, one view per distinct content."""
    key = hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()[:16]
    view = OUT / "views" / key
    if not view.exists():
        for rel, sha in files.items():
            target = view / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(OUT / "blobs" / sha, target)
    return view


def _status(view: Path) -> list[tuple[str, str]]:
    """(category, description) for each exec or loader in the folder's entry programs whose code pgaudit
    did not audit. Categories: "wrapper" (a self-extracting wrapper not decoded), "native" (inline C++/CUDA),
    "loader" (a module path not static), "exec" (code built at run time). Empty: everything audited."""
    from pgaudit.errors import InputError
    from pgaudit.source.program import find_entries, load_program

    out = []
    for entry in find_entries(view):
        try:
            program = load_program(entry, view)
        except InputError as exc:
            if "payload" in exc.detail or "decompress" in exc.detail:
                out.append(("wrapper", f"{entry.name}: error: {exc.detail}"))
            continue
        why = getattr(program, "opaque_reason", lambda call: None)  # absent before the whole-program loader
        for unit, call in program.opaque:
            reason = why(call) or ""
            if "native code" in reason:
                category = "native"
            elif "cannot resolve statically" in reason:
                category = "loader"
            elif reason or _is_wrapper(call, unit.tree):
                category = "wrapper"
            else:
                category = "exec"
            out.append((category, f"{unit.label}:{call.lineno}: {(reason or 'opaque')[:90]} | {ast.unparse(call)[:60]}"))
    return out


def _is_wrapper(call: ast.Call, tree: ast.Module) -> bool:
    """An exec of decoded data (a wrapper), as opposed to an exec of code built at run time."""
    names = {"decompress", "b85decode", "b64decode", "a85decode", "fromhex", "unhexlify", "decode", "compile"}
    return any(isinstance(n, ast.Attribute | ast.Name) and getattr(n, "attr", getattr(n, "id", "")) in names
               for n in ast.walk(call))


def measure(show: bool) -> None:
    meta = json.loads((OUT / "INDEX.json").read_text())
    index: dict[str, dict[str, str]] = meta["index"]
    status: dict[Path, list[tuple[str, str]]] = {}
    per_category: dict[str, list[tuple[str, str]]] = {k: [] for k in ("wrapper", "exec", "loader", "native")}
    for folder, files in sorted(index.items()):
        view = _view(files)
        if view not in status:
            status[view] = _status(view)
        for category in per_category:
            lines = [line for cat, line in status[view] if cat == category]
            per_category[category] += [(folder, line) for line in lines]
    folders = {k: len({f for f, _ in v}) for k, v in per_category.items()}
    print(
        f"{meta['folders']} record folders; {len(index)} hold a wrapper-like script ({len(meta['wrapper_like'])} "
        f"distinct blobs, {len(status)} distinct folder contents). Folders whose entry programs run code pgaudit "
        f"did not audit: {folders['wrapper']} through a self-extracting wrapper it does not decode, "
        f"{folders['exec']} through an exec of code built at run time, {folders['loader']} through a loader "
        f"path that is not static, {folders['native']} through inline native source."
    )
    if show:
        for category, rows in per_category.items():
            for folder, line in rows:
                print(f"[{category}] {folder}  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", nargs="?", default="measure", choices=("collect", "measure"))
    parser.add_argument("--mirror", type=Path)
    parser.add_argument("--list", action="store_true", help="list each opaque script with its folder")
    args = parser.parse_args()
    if args.step == "collect":
        if args.mirror is None:
            parser.error("collect needs --mirror")
        collect(args.mirror)
    else:
        measure(args.list)


if __name__ == "__main__":
    main()

"""The documented run command: `NGRAM_CACHE=1 TTT_ENABLED=1 torchrun --nproc_per_node=8 train_gpt.py`.

Record READMEs (and run.sh scripts) show how the submitted numbers were produced. The variables set on that
command line, and the process count, are part of the submitted run configuration: together with the train
logs they decide which code paths ran.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_MAX_BYTES = 1024 * 1024


# torchrun's process count spelled as a word: `gpu` (one per GPU) and `auto` on the official 8xH100 machine.
OFFICIAL_NPROC = "8"
_NPROC_WORDS = {"gpu": OFFICIAL_NPROC, "auto": OFFICIAL_NPROC, "cuda": OFFICIAL_NPROC}
_LAUNCH_MODULES = ("torch.distributed.run", "torch.distributed.launch")


@dataclass
class RunCommand:
    env: dict[str, str] = field(default_factory=dict)
    source: str = ""  # "README.md:42"
    scripts: list[str] = field(default_factory=list)  # the .py files the command runs, as written


def launched_scripts(folder: Path) -> list[tuple[Path, str]]:
    """Scripts in `folder` that a documented run command launches, with where the command is written.

    The script the documented command runs is the submission's entry, whatever its name: a README that runs
    `torchrun ... train_gpt_fast.py` next to a clean `train_gpt.py` must get `train_gpt_fast.py` audited.
    """
    out: list[tuple[Path, str]] = []
    for cmd in _all_commands(folder):
        for written in cmd.scripts:
            path = _in_folder(folder, written)
            if path is not None and all(path != p for p, _ in out):
                out.append((path, cmd.source))
    return out


def _in_folder(folder: Path, written: str) -> Path | None:
    """The file a written script path names inside the folder (`./x.py`, `records/.../name/x.py`, `x.py`)."""
    import os

    rel = os.path.normpath(written)
    candidates = [rel] if not os.path.isabs(rel) and not rel.startswith("..") else []
    candidates.append(os.path.basename(rel))
    for candidate in candidates:
        path = folder / candidate
        try:
            if path.is_file() and not path.is_symlink() and path.suffix == ".py":
                return path
        except OSError:
            continue
    return None


def documented_env(folder: Path) -> tuple[dict[str, str], list[str]]:
    """Variables every documented run command agrees on, and where the commands are."""
    commands = _all_commands(folder)
    if not commands:
        return {}, []
    merged = dict(commands[0].env)
    for cmd in commands[1:]:
        for key in list(merged):
            if cmd.env.get(key) != merged[key]:
                del merged[key]  # commands disagree (e.g. one per seed): not a fixed value
    return merged, [c.source for c in commands]


def _all_commands(folder: Path) -> list[RunCommand]:
    commands: list[RunCommand] = []
    for path in sorted([folder / "README.md", *folder.glob("*.sh")]):
        try:
            if not path.is_file() or path.stat().st_size > _MAX_BYTES:
                continue
        except OSError:  # a link loop or unreadable entry: not a run command
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        blocks = _code_blocks(text) if path.suffix.lower() == ".md" else [(1, text.split("\n"))]
        for start, lines in blocks:
            commands.extend(_commands(lines, f"{path.name}", start))
    return commands


def _code_blocks(text: str) -> list[tuple[int, list[str]]]:
    """Fenced blocks of the README's current text: not under a retracted/original/deprecated heading, not in
    an HTML comment (pgaudit.readme) -- only the current run command documents the submitted run."""
    from pgaudit.readme import current_lines

    live = current_lines(text)
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    start = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if _FENCE.match(line):
            if current is None:
                current, start = [], number + 1
            else:
                if live[start - 2]:
                    blocks.append((start, current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _commands(lines: list[str], name: str, first_line: int) -> list[RunCommand]:
    exported: dict[str, str] = {}
    out: list[RunCommand] = []
    logical, begin = "", None
    for offset, raw in enumerate(lines):
        line = raw.rstrip()
        if begin is None:
            begin = first_line + offset
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        cmd = _parse(logical.strip(), exported)
        if cmd is not None:
            cmd.source = f"{name}:{begin}"
            out.append(cmd)
        logical, begin = "", None
    return out


def _parse(line: str, exported: dict[str, str]) -> RunCommand | None:
    if not line or line.startswith("#"):
        return None
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    if words[:1] == ["export"]:
        for word in words[1:]:
            match = _ASSIGN.match(word)
            if match:
                exported[match.group(1)] = match.group(2)
        return None
    env = dict(exported)
    i = 0
    while i < len(words) and (words[i] == "env" or _ASSIGN.match(words[i])):
        match = _ASSIGN.match(words[i])
        if match:
            env[match.group(1)] = match.group(2)
        i += 1
    rest = words[i:]
    python = bool(rest) and re.match(r"python\d?(\.\d+)?$", Path(rest[0]).name) is not None
    launcher = any(w.endswith("torchrun") for w in rest) or (
        python and any(rest[j] == "-m" and rest[j + 1] in _LAUNCH_MODULES for j in range(len(rest) - 1))
    )
    is_run = launcher or (python and any(w.endswith(".py") for w in rest))
    if not is_run:
        return None
    for j, word in enumerate(rest):
        if word.startswith(("--nproc_per_node", "--nproc-per-node")):
            value = word.split("=", 1)[1] if "=" in word else (rest[j + 1] if j + 1 < len(rest) else "")
            value = _NPROC_WORDS.get(value.strip().lower(), value)
            if value.isdigit():
                env["WORLD_SIZE"] = value
                env["LOCAL_WORLD_SIZE"] = value
    if "WORLD_SIZE" in env and "LOCAL_WORLD_SIZE" not in env and env["WORLD_SIZE"].isdigit():
        env["LOCAL_WORLD_SIZE"] = env["WORLD_SIZE"]  # `WORLD_SIZE=8 python train_gpt.py`: one machine
    script = next((w for w in rest[1:] if w.endswith(".py") and not w.startswith("-")), None)
    return RunCommand(env, scripts=[script] if script else [])

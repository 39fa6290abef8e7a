"""PG505 line-limit (R7): the root train_gpt.py / train_gpt_mlx.py must stay within 1,500 lines.

The hard stop is written in the root scripts' docstring and concerns PRs on core code. Record scripts run far
past it in accepted records (3,753 lines in the 2026-04-27 record), so for records the count is information.
The count is of the code that runs: a self-extracting wrapper counts its unwrapped payload lines too.
"""

from __future__ import annotations

from pathlib import Path

from pgaudit.errors import InputError
from pgaudit.findings import Confidence, Finding, Location, Severity
from pgaudit.source.program import Program, load_program
from pgaudit.validators.common import Context, finding

CODE, NAME = "PG505", "line-limit"
ROOT_SCRIPTS = ("train_gpt.py", "train_gpt_mlx.py")


def check(ctx: Context) -> list[Finding]:
    root = is_repository_root(ctx.folder.root) and ctx.folder.track is None
    findings = []
    for program in [*ctx.programs, *(_other_root_scripts(ctx) if root else [])]:
        found = check_program(program, ctx.policy.line_limit, root_script=root)
        if found:
            findings.append(found)
    return findings


def is_repository_root(folder: Path) -> bool:
    """The challenge repository's root holds `records/` next to the root scripts."""
    return (folder / "records").is_dir()


def _other_root_scripts(ctx: Context) -> list[Program]:
    """At the repository root both root scripts are held to the limit, not only the entry found first."""
    loaded = {p.entry for p in ctx.programs}
    out = []
    for name in ROOT_SCRIPTS:
        path = ctx.folder.root / name
        if name not in loaded and path.is_file():
            try:
                out.append(load_program(path, ctx.folder.root))
            except InputError:
                continue  # the static rules report unreadable scripts
    return out


def running_lines(program: Program) -> tuple[int, int, int]:
    """(committed lines, payload lines, total) of the entry script's code that runs."""
    units = [u for u in program.units if u.path == program.entry]
    committed = sum(_count(u.lines) for u in units if not u.in_payload)
    payload = sum(_count(u.lines) for u in units if u.in_payload)
    return committed, payload, committed + payload


def _count(lines: list[str]) -> int:
    return len(lines) - (1 if lines and lines[-1] == "" else 0)


def check_program(program: Program, limit: int, root_script: bool) -> Finding | None:
    committed, payload, total = running_lines(program)
    if total <= limit:
        return None
    name = program.entry.rsplit("/", 1)[-1]
    detail = f"{committed:,} committed lines" + (f" + {payload:,} lines in its compressed payload" if payload else "")
    evidence = [f"{program.entry}: {detail} = {total:,} lines that run"]
    if root_script and name in ROOT_SCRIPTS:
        message = (f"{program.entry} has {total:,} lines ({detail}); the root {name} must never be longer than "
                   f"{limit:,} lines (hard stop in its docstring).")
        return finding(CODE, NAME, Severity.ERROR, Confidence.HIGH, message, Location(program.entry, limit + 1),
                       ("R7",), f"Move code out of the root {name} until it is at most {limit:,} lines.", evidence)
    message = (f"{program.entry} has {total:,} lines that run ({detail}), over the {limit:,}-line limit of the root "
               "scripts. Accepted record scripts run past it (up to 3,753 lines); this is informational.")
    return finding(CODE, NAME, Severity.INFO, Confidence.HIGH, message, Location(program.entry, None), ("R7",),
                   "No action needed for a record; keep the script readable.", evidence)

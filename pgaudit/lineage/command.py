"""`pgaudit lineage`: the command, registered by cli.py. Heavy imports happen inside, on use."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

HELP = (
    "Which accepted record a submission descends from, and what it changed.\n\n"
    "`pgaudit lineage FOLDER --records PATH`: the nearest accepted records and the per-function differences. "
    "`pgaudit lineage index PATH`: build (and cache) the index of PATH/records/. PATH is the root of a clone "
    "of the challenge repository (with --rev: any git repository holding records/ at that revision). "
    "Nothing is executed."
)


def lineage_command(
    args: list[str] = typer.Argument(..., help="FOLDER (a record folder), or `index PATH`.", show_default=False),
    records: Path | None = typer.Option(None, "--records", help="Root of a clone of the challenge repository."),
    rev: str | None = typer.Option(None, "--rev", help="Read records/ from git at this revision (no checkout needed)."),
    output_format: str = typer.Option("text", "--format", "-f", help="text or json."),
    earlier: bool = typer.Option(False, "--earlier", help="Only records merged (or dated) before FOLDER."),
    top: int = typer.Option(3, "--top", help="How many nearest records to list."),
    show_all: bool = typer.Option(False, "--all", help="List unchanged functions too (text)."),
    no_scoring: bool = typer.Option(False, "--no-scoring", help="Skip the scoring-path analysis (faster)."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Cache folder (default: $XDG_CACHE_HOME/pgaudit)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the cache."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="Processes for indexing (default: CPU count, at most 8)."),
) -> None:
    from pgaudit.errors import UsageError

    if output_format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {output_format!r}")
    if top < 1:
        raise UsageError("--top must be at least 1")
    if args[0] == "index":
        if len(args) != 2:
            raise UsageError("usage: pgaudit lineage index PATH")
        _index(Path(args[1]), rev, output_format, cache_dir, no_cache, jobs)
        return
    if len(args) != 1:
        raise UsageError("usage: pgaudit lineage FOLDER --records PATH (or: pgaudit lineage index PATH)")
    if records is None:
        raise UsageError("--records PATH is required: the root of a clone of the challenge repository")
    from pgaudit.lineage.lookup import lineage_of
    from pgaudit.lineage.render import render_json, render_text

    index = load_index(records, rev, cache_dir, no_cache, jobs)
    result = lineage_of(Path(args[0]), index, earlier_only=earlier, scoring=not no_scoring, top=top,
                        display=args[0].rstrip("/"))
    sys.stdout.write(render_json(result) if output_format == "json" else render_text(result, show_all))


def load_index(root: Path, rev: str | None, cache_dir: Path | None, no_cache: bool, jobs: int | None):  # type: ignore[no-untyped-def]
    from pgaudit.errors import InputError
    from pgaudit.lineage.index import Cache, build_index, index_from_git

    cache = None if no_cache else Cache.default(cache_dir)
    if not root.is_dir():
        raise InputError(str(root), "not a folder")
    if rev is not None:
        return index_from_git(root, rev, cache, jobs)
    return build_index(root, cache, jobs)


def _index(root: Path, rev: str | None, output_format: str, cache_dir: Path | None, no_cache: bool,
           jobs: int | None) -> None:
    import json

    start = time.perf_counter()
    index = load_index(root, rev, cache_dir, no_cache, jobs)
    seconds = time.perf_counter() - start
    failed = [r for r in index.records if not r.entries]
    summary = {
        "key": index.key,
        "records": len(index.records),
        "entries": sum(len(r.entries) for r in index.records),
        "not_fingerprinted": [{"record": r.path, "error": r.error} for r in failed],
        "seconds": round(seconds, 3),
        "cache": None if index.cache is None else str(index.cache.dir),
    }
    if output_format == "json":
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"indexed {summary['records']} records ({summary['entries']:,} functions) in {seconds:.2f} s; "
               f"key {index.key}" + (f"; cache {summary['cache']}" if summary["cache"] else ""))
    for item in summary["not_fingerprinted"]:
        typer.echo(f"  not fingerprinted: {item['record']}: {item['error']}")

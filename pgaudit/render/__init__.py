"""Renderers: one findings model (`pgaudit.findings.Report`), many output formats.

`text` prints with rich; the others are functions Report -> str, imported only when used.
"""

from __future__ import annotations

from collections.abc import Callable

from pgaudit.findings import Report

FORMATS = ("text", "json", "sarif", "github", "markdown")


def string_renderer(name: str) -> Callable[[Report], str]:
    """The Report -> str renderer of a non-text format."""
    if name == "json":
        from pgaudit.render.json import render_json

        return render_json
    if name == "sarif":
        from pgaudit.render.sarif import render_sarif

        return render_sarif
    if name == "github":
        from pgaudit.render.github import render_github

        return render_github
    if name == "markdown":
        from pgaudit.render.markdown import render_markdown

        return render_markdown
    raise ValueError(f"no string renderer for {name!r}")

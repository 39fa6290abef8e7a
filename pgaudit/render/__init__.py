"""Renderers: one findings model (`pgaudit.findings.Report`), many output formats."""

from __future__ import annotations

FORMATS = ("text", "json")

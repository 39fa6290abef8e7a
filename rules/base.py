"""The rule base class. A rule is a class with a stable code, a kebab-case name, a severity, a confidence,
the catalogue IDs it enforces, the rulings it rests on, and VALID/INVALID examples that the test suite runs.

Docstrings use the fixed headings *What it does / Why is this bad / Example / Legal look-alikes /
References*; `pgaudit explain CODE` prints them.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from pgaudit.analysis.facts import Facts
from pgaudit.findings import Confidence, Finding, Location, Reachability, Severity
from pgaudit.source.program import CodeUnit


@dataclass(frozen=True)
class Example:
    """A code sample a rule must (INVALID) or must not (VALID) flag.

    `line` and `message` pin an INVALID finding: the reported line and a substring of its message.
    `files` adds sibling files (name -> source) for folder examples; `logged` gives logged hyperparameters;
    `log` the text of a train log.
    """

    code: str
    line: int | None = None
    message: str = ""
    severity: Severity | None = None  # expected severity, when not the rule's default
    title: str = ""
    files: Mapping[str, str] = field(default_factory=dict)
    logged: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    log: str = ""  # a train log of the submitted run (its lines are evidence, as a folder's logs are)

    MARKER: ClassVar[str] = "# <- expected"

    @property
    def expected_line(self) -> int | None:
        """The pinned line: `line` if given, else the line carrying the `# <- expected` marker."""
        if self.line is not None:
            return self.line
        for number, text in enumerate(self.code.split("\n"), start=1):
            if self.MARKER in text:
                return number
        return None


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity] = Severity.ERROR
    confidence: ClassVar[Confidence] = Confidence.HIGH
    catalogue_ids: ClassVar[tuple[str, ...]] = ()
    ruling_urls: ClassVar[tuple[str, ...]] = ()
    condition: ClassVar[str | None] = None
    fix: ClassVar[str] = ""
    valid: ClassVar[tuple[Example, ...]] = ()
    invalid: ClassVar[tuple[Example, ...]] = ()

    def check(self, facts: Facts) -> Iterable[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        return cls.doc().split("\n", 1)[0]

    # --- building findings ---------------------------------------------------------------------

    def finding(
        self,
        facts: Facts,
        unit: CodeUnit,
        node: ast.AST,
        message: str,
        *,
        severity: Severity | None = None,
        confidence: Confidence | None = None,
        related: Iterable[tuple[CodeUnit, ast.AST]] = (),
        reach_node: ast.AST | None = None,
        fix: str | None = None,
    ) -> Finding:
        """A finding at `node`, with reachability and the severity it implies."""
        reach = facts.reachability(reach_node if reach_node is not None else node)
        base = severity or self.severity
        sev, note = severity_for(base, reach)
        conf = confidence or self.confidence
        if reach.effective is None and conf > Confidence.MEDIUM:
            conf = Confidence.MEDIUM
        loc = unit.location(node)
        excerpt = unit.line_text(loc.line).strip()
        return Finding(
            code=self.code,
            name=self.name,
            severity=sev,
            confidence=conf,
            message=message + (f" {note}" if note else ""),
            location=loc,
            catalogue_ids=self.catalogue_ids,
            ruling_urls=self.ruling_urls,
            fix=fix or self.fix,
            condition=self.condition,
            reachability=reach,
            evidence=(excerpt,) if excerpt else (),
            related=tuple(_related(u, n) for u, n in related),
        )


def short(node: ast.AST, limit: int = 70) -> str:
    """One line of source for a message: `ctx_hash ^ tgt * PRIMES[0]`, cut at `limit` characters."""
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _related(unit: CodeUnit, node: ast.AST) -> Location:
    return unit.location(node)


def severity_for(base: Severity, reach: Reachability) -> tuple[Severity, str]:
    """Dead code is never an error: info when it cannot run, a warning when another launch would run it."""
    effective = reach.effective
    if effective is False:
        others = [v for v in (reach.default, reach.official) if v]
        if others:
            return min(base, Severity.WARNING), (
                "It did not run in the submitted run, but it would run with the defaults or the official launch."
                if reach.logged is False
                else "It does not run with the defaults, but it would under the official 8-GPU torchrun launch."
            )
        return Severity.INFO, "The code is present but does not run under this configuration."
    return base, ""

"""Facts computed once per program and shared by every rule: index, run configurations, reachability,
data-flow labels and score/update events. Each is built on first use, so a rule that needs none of the
expensive ones does not pay for them.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cached_property

from pgaudit.analysis.config import UNKNOWN, ConfigAttributes, Evaluator, RunConfig
from pgaudit.analysis.dataflow import Flow
from pgaudit.analysis.events import Events
from pgaudit.analysis.evidence import LogLine, guard_evidence, world_size_from_logs
from pgaudit.analysis.index import ProgramIndex, Scope
from pgaudit.analysis.reach import Reach, ReferenceTable, Verdict, guards_of
from pgaudit.findings import Reachability
from pgaudit.source.program import CodeUnit, Program


class Facts:
    def __init__(
        self,
        program: Program,
        env_overrides: Mapping[str, str] | None = None,
        logged_hyperparameters: Mapping[str, str] | None = None,
        log_lines: Sequence[LogLine] = (),
        documented_env: Mapping[str, str] | None = None,
    ) -> None:
        self.program = program
        self.env_overrides = dict(env_overrides or {})
        self.logged_hyperparameters = dict(logged_hyperparameters or {})
        self.log_lines = list(log_lines)
        self.documented_env = None if documented_env is None else dict(documented_env)

    @cached_property
    def index(self) -> ProgramIndex:
        return ProgramIndex(self.program)

    @cached_property
    def attributes(self) -> ConfigAttributes:
        return ConfigAttributes(self.index)

    @cached_property
    def references(self) -> ReferenceTable:
        return ReferenceTable(self.index)

    @cached_property
    def configs(self) -> dict[str, RunConfig]:
        configs = {
            "default": RunConfig.default(self.env_overrides),
            "official": RunConfig.official(self.env_overrides),
        }
        if self.documented_env:  # the documented run command over the defaults, without the logs' claims
            configs["documented"] = RunConfig.default({**self.documented_env, **self.env_overrides})
        if self.logged_hyperparameters or self.log_lines or self.documented_env is not None:
            configs["logged"] = RunConfig.logged(
                self.logged_hyperparameters,
                self.env_overrides,
                world_size_from_logs(self.log_lines),
                self.documented_env,
            )
        return configs

    def evaluator(self, config: str = "default") -> Evaluator:
        return self._evaluators[config]

    @cached_property
    def _evaluators(self) -> dict[str, Evaluator]:
        return {name: Evaluator(self.index, cfg, self.attributes) for name, cfg in self.configs.items()}

    @cached_property
    def reach(self) -> dict[str, Reach]:
        evidence = guard_evidence(self.index, self.log_lines) if self.log_lines else {}
        return {
            name: Reach(self.index, self.references, ev, evidence if name == "logged" else None)
            for name, ev in self._evaluators.items()
        }

    @cached_property
    def flow(self) -> Flow:
        return Flow(self.index, key_of=self._decided_value)

    def _decided_value(self, expr: ast.expr, scope: Scope) -> object:
        """The value of `expr` in the logged run, else under the defaults; None when neither decides it."""
        for config in ("logged", "default"):
            if config in self.configs:
                value = self.evaluator(config).value(expr, scope)
                if value is not UNKNOWN:
                    return value
        return None

    @cached_property
    def events(self) -> Events:
        return Events(self.index, self.flow)

    # --- helpers for rules ---------------------------------------------------------------------

    def scope_of(self, node: ast.AST) -> Scope | None:
        return self.index.scope_of(node)

    def unit_of(self, node: ast.AST) -> CodeUnit | None:
        scope = self.index.scope_of(node)
        return scope.unit if scope else None

    def reachability(self, node: ast.AST) -> Reachability:
        """Whether `node` runs under the defaults, the official launch and the submitted run (if known)."""
        verdicts: dict[str, Verdict] = {name: r.verdict(node) for name, r in self.reach.items()}
        documented = verdicts.pop("documented", None)
        default, official, logged = verdicts["default"], verdicts["official"], verdicts.get("logged")
        where = {
            "logged": "in the submitted run configuration",
            "default": "with the default environment",
            "official": "under the official 8-GPU torchrun launch",
        }
        order = ["logged", "default", "official"] if logged is not None else ["default", "official"]
        groups: list[tuple[Verdict, list[str]]] = []
        for name in order:
            verdict = verdicts[name]
            for seen, names in groups:
                if seen.live == verdict.live and (seen.detail == verdict.detail or verdict.live is True):
                    names.append(name)
                    break
            else:
                groups.append((verdict, [name]))
        parts = [_sentence(_join([where[n] for n in names], verdict.live is not False), verdict) for verdict, names in groups]
        reach = Reachability(
            default=default.live,
            logged=None if logged is None else logged.live,
            detail="; ".join(p for p in parts if p),
            official=official.live,
            documented=None if documented is None else documented.live,
            runtime_only=logged is not None and logged.live is None and self._runtime_only(node),
        )
        if reach.logs_disagree:  # logs are claims: say so when they contradict what the code runs
            by = "the documented run command" if reach.documented is not None else "the code's defaults"
            reach = replace(reach, detail=reach.detail + (
                f"; the logs and the code disagree: {by} run it, and logs can show that code ran but never turn "
                "off code that runs by default, so it counts as running"))
        return reach

    def _runtime_only(self, node: ast.AST) -> bool:
        """Every guard the logged run cannot decide is undecidable with the defaults too: it tests a value the
        program computes (a loop counter, a rank, a file's existence), not a setting the logs leave out."""
        scope = self.index.scope_of(node)
        if scope is None:
            return False
        logged, default = self.reach["logged"], self.reach["default"]
        undecided = []
        seen: set[int] = set()
        at: ast.AST | None = node
        while at is not None and scope is not None and id(scope) not in seen:  # the node, then the calls that reach it
            seen.add(id(scope))
            undecided += [(g, scope) for g, _ in guards_of(at, scope) if logged.guard_truth(g, scope)[0] is None]
            scope, at = logged.caller.get(id(scope), (None, None))
        return bool(undecided) and all(default.guard_truth(g, s)[0] is None for g, s in undecided)


def _join(phrases: list[str], positive: bool) -> str:
    if len(phrases) < 2:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + (" and " if positive else " or ") + phrases[-1]


def _sentence(where: str, verdict: Verdict) -> str:
    if verdict.live is True:
        return f"runs {where}" + (f" ({verdict.detail})" if verdict.detail else "")
    if verdict.live is False:
        return f"does not run {where}: {verdict.detail}"
    return f"may run {where}: {verdict.detail}"

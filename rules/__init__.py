"""Static rules, one module per rule, registered by code.

A module named `pgNNN_<name>.py` defines one `Rule` subclass; `REGISTRY` maps codes to rule classes.
Renamed codes keep a redirect in `REDIRECTS`.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Example, Rule

REDIRECTS: dict[str, str] = {}


def _discover() -> dict[str, type[Rule]]:
    found: dict[str, type[Rule]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("pg"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Rule) and value is not Rule and value.__module__ == module.__name__:
                if value.code in found:
                    raise RuntimeError(f"duplicate rule code {value.code}")
                found[value.code] = value
    return dict(sorted(found.items()))


REGISTRY: dict[str, type[Rule]] = _discover()


def get(code: str) -> type[Rule] | None:
    code = code.upper()
    return REGISTRY.get(REDIRECTS.get(code, code))


__all__ = ["REDIRECTS", "REGISTRY", "Example", "Rule", "get"]

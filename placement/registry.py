"""The one list of methods. The CLI, the API, `compare` and the tests all read it.

Methods are imported on first use, so that ``placement methods`` and the CLI start fast
and a method's solver library is only loaded when that method runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .errors import MethodError
from .method import Method

#: name -> "module:Class". Add a method here and every suite, table and command gets it.
METHODS: dict[str, str] = {
    "single": "heuristics.single:Single",
    "heft": "heuristics.heft:Heft",
    "dp": "heuristics.dp:DynamicProgramming",
    "local": "heuristics.local:LocalSearch",
    "cpsat": "solvers.cpsat:CpSat",
    "milp": "solvers.milp:Milp",
    "brute": "solvers.brute:Brute",
}

_cache: dict[str, Method] = {}


def method_names() -> list[str]:
    return list(METHODS)


def get_method(name: str) -> Method:
    """The method registered as ``name``; an unknown name is a `MethodError` listing the valid ones."""
    if name not in METHODS:
        raise MethodError(f"unknown method '{name}': expected one of {', '.join(METHODS)}")
    if name not in _cache:
        module, cls = METHODS[name].split(":")
        try:
            _cache[name] = getattr(importlib.import_module(module), cls)()
        except (ImportError, AttributeError) as exc:
            raise MethodError(f"method '{name}' is registered but not available: {exc}") from None
    return _cache[name]


@dataclass(frozen=True)
class MethodInfo:
    name: str
    kind: str
    guarantee: str
    objectives: tuple[str, ...]
    summary: str
    options: dict[str, str]

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "guarantee": self.guarantee,
                "objectives": list(self.objectives), "summary": self.summary, "options": self.options}


def methods() -> list[MethodInfo]:
    """Every registered method with its kind, guarantee and supported objectives."""
    out = []
    for name in METHODS:
        try:
            m = get_method(name)
        except MethodError as exc:
            out.append(MethodInfo(name, "unavailable", str(exc), (), "", {}))
            continue
        out.append(MethodInfo(name, m.kind, m.guarantee, tuple(sorted(m.objectives)), m.summary,
                              dict(m.options)))
    return out


def supporting(objective: str) -> list[str]:
    """Names of the methods that support an objective name."""
    return [i.name for i in methods() if objective in i.objectives]

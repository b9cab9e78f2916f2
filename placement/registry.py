"""The one list of methods. The CLI, the API, `compare` and the tests all read it.

Methods are imported on first use, so that ``placement methods`` and the CLI start fast
and a method's solver library is only loaded when that method runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .errors import MethodError, UnsupportedFeatureError
from .method import FEATURES, Method

#: name -> "module:Class". Add a method here and every suite, table and command gets it.
#: (What a method supports -- objectives, features, options -- it declares in its class.)
METHODS: dict[str, str] = {
    "single": "heuristics.single:Single",
    "heft": "heuristics.heft:Heft",
    "dp": "heuristics.dp:DynamicProgramming",
    "local": "heuristics.local:LocalSearch",
    "cpsat": "solvers.cpsat:CpSat",
    "milp": "solvers.milp:Milp",
    "brute": "solvers.brute:Brute",
}

#: the heuristics the exact solvers' warm start runs, in this order, with the share of the
#: time left that each gets (`solvers._warmstart`).
WARM_START: dict[str, float] = {"single": 0.02, "heft": 0.05, "dp": 0.05, "local": 0.08}
#: the same with split choices (SPEC 6): heft and local search the degrees too, which takes
#: them longer, and their plan is most of what the exact model has on a large union (on
#: mobilevit_s over 4 Pis, 10^20 choices, cpsat's 60 s gave heft 3 s and ended 9 % above
#: heft's own 30 s plan); they stop early on small problems (at the bound, or when their
#: search is done), so there the exact model keeps its time.
WARM_START_SPLIT: dict[str, float] = {"single": 0.02, "heft": 0.3, "dp": 0.05, "local": 0.2}

_cache: dict[str, Method] = {}


def method_names() -> list[str]:
    return list(METHODS)


def warm_start_methods(split_choice: bool = False) -> tuple[tuple[str, float], ...]:
    """(name, share of the time left) of the warm start's heuristics, in order (with
    ``split_choice``: for a problem whose split degrees are to be chosen)."""
    table = WARM_START_SPLIT if split_choice else WARM_START
    return tuple((name, share) for name, share in table.items() if name in METHODS)


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
    #: name -> one line: type, default, range and help (from the method's `Option` list).
    options: dict[str, str]
    #: feature -> supported (every name of `placement.method.FEATURES`).
    features: dict[str, bool]

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "guarantee": self.guarantee,
                "objectives": list(self.objectives), "summary": self.summary, "options": self.options,
                "features": self.features}


def methods() -> list[MethodInfo]:
    """Every registered method with its kind, guarantee and supported objectives."""
    out = []
    for name in METHODS:
        try:
            m = get_method(name)
        except MethodError as exc:
            out.append(MethodInfo(name, "unavailable", str(exc), (), "", {}, {f: False for f in FEATURES}))
            continue
        out.append(MethodInfo(name, m.kind, m.guarantee, tuple(sorted(m.objectives)), m.summary,
                              {o.name: o.describe() for o in m.options},
                              {f: f in m.features for f in FEATURES}))
    return out


def supporting(objective: str) -> list[str]:
    """Names of the methods that support an objective name."""
    return [i.name for i in methods() if objective in i.objectives]


def supporting_feature(feature: str) -> list[str]:
    """Names of the methods that support a problem feature (SPEC section 8)."""
    return [i.name for i in methods() if i.features.get(feature)]


def check_features(method: Method, used: frozenset[str] | set[str]) -> list[str]:
    """Refuse a problem whose features ``method`` does not support: `UnsupportedFeatureError`
    naming the feature and the methods that support it. Split choices are the exception
    (SPEC section 6): a method that cannot choose plans with ``max(ways)``; the returned
    notes say so (for the plan's message)."""
    notes = []
    for feature in sorted(used):
        if feature in method.features:
            continue
        if feature == "split_choice":
            notes.append(f"{method.name} cannot choose split ways: it plans every split block with max(ways)")
            continue
        others = supporting_feature(feature)
        raise UnsupportedFeatureError(
            f"method '{method.name}' does not support {feature} (SPEC section 8); methods that do: "
            + (", ".join(others) or "none yet"), feature)
    return notes

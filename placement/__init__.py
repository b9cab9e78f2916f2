"""placement: split a vision model's blocks across edge devices, and prove how good the plan is.

The API (SPEC section 9)::

    import placement
    problem = placement.load("examples/quickstart.json")
    plan = placement.solve(problem, method="cpsat", time_limit=10)
    print(plan.status, plan.value, plan.gap, plan.metrics["latency_s"])

Every figure in a plan comes from the one evaluator (`placement.evaluator`).
"""

from __future__ import annotations

from typing import Any

from .api import evaluate, methods, solve
from .errors import InputError, MethodError, PlacementError, PlanError, ProblemError
from .generator import generate
from .loader import load
from .plan import Plan, Status
from .problem import Problem

__version__ = "0.1.0"


def compare(*args: Any, **kwargs: Any):
    """Run methods on problems and tabulate value, bound, gap and time (see `placement.comparator`)."""
    from .comparator import compare as _compare
    return _compare(*args, **kwargs)


def pareto(*args: Any, **kwargs: Any):
    """The Pareto front of plans over two or three metrics (see `placement.pareto_front`)."""
    from .pareto_front import pareto as _pareto
    return _pareto(*args, **kwargs)


def show(*args: Any, **kwargs: Any):
    """Draw a plan: Gantt chart of its schedule and the block graph coloured by device."""
    from .plots import show as _show
    return _show(*args, **kwargs)


def run(*args: Any, **kwargs: Any):
    """Execute a plan on one worker process per device and measure it (see `placement.runtime`)."""
    from .runtime import run as _run
    return _run(*args, **kwargs)


__all__ = ["run", "load", "solve", "evaluate", "methods", "generate", "compare", "pareto", "show",
           "Plan", "Status", "Problem", "PlacementError", "InputError", "ProblemError",
           "PlanError", "MethodError", "__version__"]

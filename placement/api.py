"""The Python API (SPEC section 9): ``solve``, ``evaluate``, ``methods``.

Every plan returned here was scored by `placement.evaluator`; a method's own arithmetic
never reaches the user.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from typing import Any, Callable, Mapping

import numpy as np

from . import bounds, feasibility, registry
from .errors import InputError, MethodError, PlanError
from .evaluator import Evaluation, evaluate_ids
from .evaluator import evaluate as evaluate_indices
from .loader import load
from .method import Candidate, Context
from .plan import Plan, Status, gap_of
from .problem import Problem

#: default wall-clock limit of a solve, seconds (the CLI's ``--time-limit`` default too).
DEFAULT_TIME_LIMIT_S = 60.0
#: default method when none is named.
DEFAULT_METHOD = "local"
#: a method's "optimal" claim is kept only when the evaluator's value is within this relative
#: distance of the proven bound (else the status becomes "feasible": e.g. CP-SAT proved
#: optimality of its rounded-time model, not of the real-valued one).
OPTIMAL_TOLERANCE = 1e-6


def _objective_problem(problem: Any, objective: Any) -> Problem:
    p = load(problem)
    if objective is not None:
        if isinstance(objective, str) and objective not in ("latency", "throughput", "energy"):
            raise InputError(f"--objective: expected latency, throughput or energy, found '{objective}'")
        p = p.with_objective(objective)
    return p


def solve(problem: Any, method: str = DEFAULT_METHOD, *, objective: str | Mapping[str, float] | None = None,
          time_limit: float | None = DEFAULT_TIME_LIMIT_S, seed: int = 0,
          progress: Callable[[float | None, float | None], None] | None = None,
          **options: Any) -> Plan:
    """Place ``problem`` (a `Problem`, dict, or path) with ``method``.

    ``time_limit`` is wall-clock seconds (None: no limit); the method returns its best plan so
    far when it runs out, with status ``time_limit``. ``options`` are the method's own (see
    ``placement methods``). The problem is never changed. Returns a `Plan` whose value,
    metrics and schedule come from the evaluator.
    """
    p = _objective_problem(problem, objective)
    m = registry.get_method(method)
    obj = p.objective.name
    if obj not in m.objectives:
        raise MethodError(f"method '{method}' does not support the {obj} objective; methods that do: "
                          + ", ".join(registry.supporting(obj)))
    unknown = set(options) - set(m.options)
    if unknown:
        raise MethodError(f"method '{method}' has no option {sorted(unknown)}; it takes: "
                          + (", ".join(m.options) or "none"))
    if time_limit is not None and (not math.isfinite(time_limit) or time_limit < 0):
        raise InputError(f"time_limit: expected a number of seconds >= 0, found {time_limit}")

    t0 = time.perf_counter()
    reasons = feasibility.infeasibility_reasons(p)
    if reasons:
        return _empty_plan(p, method, Status.INFEASIBLE, "; ".join(reasons[:5]),
                           time.perf_counter() - t0)
    ctx = Context(time_limit=time_limit, seed=seed, options=dict(options), progress=progress)
    try:
        cand = m.solve(p, ctx)
    except InputError:
        raise
    except Exception as exc:  # a bug in a method: an honest "error" plan, not a crash
        if os.environ.get("PLACEMENT_DEBUG"):
            raise
        return _empty_plan(p, method, Status.ERROR, f"{type(exc).__name__}: {exc}",
                           time.perf_counter() - t0, stats={"traceback": traceback.format_exc()})
    elapsed = time.perf_counter() - t0
    return plan_from_candidate(p, method, cand, elapsed)


def plan_from_candidate(p: Problem, method: str, cand: Candidate, solve_time_s: float) -> Plan:
    """Re-score a method's candidate with the evaluator and build the honest `Plan`."""
    cheap = bounds.lower_bound(p)
    bound = cheap if cand.bound is None else max(cand.bound, cheap)
    if cand.assignment is None:
        status = cand.status if cand.status in (Status.INFEASIBLE, Status.NO_SOLUTION, Status.ERROR) \
            else Status.NO_SOLUTION
        plan = _empty_plan(p, method, status, cand.message or "no plan found", solve_time_s,
                           stats=cand.stats)
        plan.bound = None if status == Status.INFEASIBLE else bound
        return plan
    ev = evaluate_indices(p, np.asarray(cand.assignment, dtype=np.int64), cand.order)
    status = cand.status
    message = cand.message
    gap = gap_of(ev.value, bound)
    if not ev.feasible:
        status = Status.NO_SOLUTION
        message = (message + "; " if message else "") + "best plan found breaks: " + str(ev.violations[0])
    elif status == Status.OPTIMAL and (gap is None or gap > OPTIMAL_TOLERANCE):
        status = Status.FEASIBLE
        message = (message + "; " if message else "") + (
            "the method proved optimality of its own model; against the real-valued bound the gap is "
            + ("unknown" if gap is None else f"{gap:.3g}"))
    elif status in (Status.INFEASIBLE, Status.NO_SOLUTION, Status.ERROR):
        status = Status.FEASIBLE
    if status in (Status.FEASIBLE, Status.TIME_LIMIT) and gap is not None and gap <= OPTIMAL_TOLERANCE:
        # the plan meets a proven lower bound: it is optimal, whoever found it
        status = Status.OPTIMAL
        message = (message + "; " if message else "") + "value meets the proven lower bound"
    plan = plan_from_evaluation(p, ev, method=method, status=status, bound=bound,
                                solve_time_s=solve_time_s, message=message, stats=cand.stats)
    return plan


def plan_from_evaluation(p: Problem, ev: Evaluation, *, method: str, status: Status,
                         bound: float | None, solve_time_s: float, message: str = "",
                         stats: dict[str, Any] | None = None) -> Plan:
    devices = [d.id for d in p.devices]
    blocks = [b.id for b in p.blocks]
    return Plan(
        problem=p.name, method=method, objective=p.objective.to_json(), status=status,
        value=ev.value, bound=bound, solve_time_s=solve_time_s,
        assignment={blocks[b]: devices[d] for b, d in enumerate(ev.assignment)},
        order={devices[d]: [blocks[b] for b in o] for d, o in enumerate(ev.order) if o},
        schedule={blocks[b]: {"device": devices[ev.assignment[b]], "start_s": float(ev.start[b]),
                              "end_s": float(ev.end[b])} for b in range(p.n_blocks)},
        metrics=ev.metrics(p), violations=[str(v) for v in ev.violations], message=message,
        stats=dict(stats or {}))


def _empty_plan(p: Problem, method: str, status: Status, message: str, solve_time_s: float,
                stats: dict | None = None) -> Plan:
    return Plan(problem=p.name, method=method, objective=p.objective.to_json(), status=status,
                value=None, bound=None, solve_time_s=solve_time_s, assignment={}, message=message,
                stats=dict(stats or {}))


def evaluate(problem: Any, plan: Plan | Mapping[str, Any] | str | os.PathLike[str], *,
             objective: str | Mapping[str, float] | None = None) -> Plan:
    """Re-score a plan (a `Plan`, dict, or path to a plan file) on ``problem``.

    Returns a new `Plan` with the evaluator's value, metrics, schedule and violations; the
    plan's order is kept when it has one (else the list rule decides). Its status is
    ``feasible`` (or the plan's own ``optimal``/``time_limit`` claim) when no rule is broken,
    ``no_solution`` when one is.
    """
    p = _objective_problem(problem, objective)
    if isinstance(plan, (str, os.PathLike)):
        plan = Plan.load(plan)
    elif not isinstance(plan, Plan):
        plan = Plan.from_dict(plan)
    if not plan.assignment:
        raise PlanError("assignment: expected a block -> device mapping, found an empty one "
                        f"(plan status {plan.status.value}: {plan.message or 'no plan'})")
    ev = evaluate_ids(p, plan.assignment, plan.order)
    # A plan file's own bound and status are claims this function cannot check. Its bound is
    # kept only for the problem and objective it was solved for, and never above the value
    # the evaluator finds; "optimal" is re-derived from the bound, never taken on trust.
    same = plan.objective == p.objective.to_json() and plan.problem in ("", p.name)
    claimed = plan.bound if same and isinstance(plan.bound, (int, float)) else None
    message = plan.message
    if claimed is not None and claimed > ev.value * (1 + OPTIMAL_TOLERANCE):
        message = (message + "; " if message else "") + (
            f"the plan's bound {claimed:.6g} is above its value and was ignored")
        claimed = None
    cheap = bounds.lower_bound(p)
    bound = cheap if claimed is None else max(claimed, cheap)
    gap = gap_of(ev.value, bound)
    if not ev.feasible:
        status = Status.NO_SOLUTION
    elif gap is not None and gap <= OPTIMAL_TOLERANCE:
        status = Status.OPTIMAL
    elif same and plan.status == Status.TIME_LIMIT:
        status = Status.TIME_LIMIT
    else:
        status = Status.FEASIBLE
    return plan_from_evaluation(p, ev, method=plan.method, status=status, bound=bound,
                                solve_time_s=plan.solve_time_s, message=message, stats=plan.stats)


def methods() -> list[registry.MethodInfo]:
    """The registered methods, with kind, guarantee and supported objectives (SPEC section 8)."""
    return registry.methods()

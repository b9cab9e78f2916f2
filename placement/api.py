"""The Python API (SPEC section 9): ``solve``, ``evaluate``, ``methods``.

Every plan returned here was scored by `placement.evaluator`; a method's own arithmetic
never reaches the user.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from dataclasses import replace
from typing import Any, Callable, Mapping

import numpy as np

from . import feasibility, registry
from .errors import InputError, MethodError, PlanError
from .evaluator import Evaluation, evaluate_ids, plan_problem
from .evaluator import evaluate as evaluate_indices
from .loader import load
from .method import Candidate, Context, check_options
from .plan import Plan, Status, gap_of
from .problem import Problem

#: default wall-clock limit of a solve, seconds (the CLI's ``--time-limit`` default too).
DEFAULT_TIME_LIMIT_S = 60.0
#: default method when none is named.
#: (heft: milliseconds on every example, same value as local there; local may take seconds)
DEFAULT_METHOD = "heft"
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

    ``time_limit`` is wall-clock seconds (None: no limit; 0: return at once with the best
    plan so far, or none); the method returns its best plan so far when it runs out, with
    status ``time_limit``. ``options`` are the method's own (see ``placement methods``):
    checked against its declaration before it runs (an unknown name is a `MethodError`, a
    bad value an `InputError` naming the option). A problem feature the method does not
    support is refused (`UnsupportedFeatureError`). The problem is never changed. Returns a
    `Plan` whose value, metrics and schedule come from the evaluator and whose status comes
    from `derive_status`.
    """
    p = _objective_problem(problem, objective)
    m = registry.get_method(method)
    obj = p.objective.name
    if obj not in m.objectives:
        raise MethodError(f"method '{method}' does not support the {obj} objective; methods that do: "
                          + ", ".join(registry.supporting(obj)))
    typed = check_options(m, options)
    notes = registry.check_features(m, p.features)
    if time_limit is not None and (not math.isfinite(time_limit) or time_limit < 0):
        raise InputError(f"time_limit: expected a number of seconds >= 0, found {time_limit}")

    m.warm_up()                       # compiled kernels: before the clock starts
    t0 = time.perf_counter()
    started = time.monotonic()
    reasons = feasibility.infeasibility_reasons(p)
    if reasons:
        return _empty_plan(p, method, Status.INFEASIBLE, "; ".join(reasons[:5]),
                           time.perf_counter() - t0)
    # the cheap bound every plan reports is under the clock (issue 14): computed (and cached on
    # the problem) before the method, whose deadline counts from the call's start
    p.lower_bound()
    # with split choices the plan is tidied after the method (split_merge): that gets the
    # last MERGE_RESERVE_S of the limit (at most 5 % of it), so the call keeps its limit
    reserve = 0.0
    if "split_choice" in p.features and time_limit:
        reserve = min(MERGE_RESERVE_S, 0.05 * time_limit)
    ctx = Context(time_limit=None if time_limit is None else time_limit - reserve, seed=seed, options=typed,
                  progress=progress, started=started)
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
    if "split_choice" in p.features and "split_choice" not in m.features and cand.bound is not None:
        # it planned one expansion (max ways): its bound need not hold for the other choices
        cand = replace(cand, bound=None, split=None)
    from . import interrupt
    if interrupt.requested():
        # stopped by Ctrl-C: a plan in hand is a time_limit plan (unless proven optimal)
        notes = [*notes, interrupt.MESSAGE]
        if cand.status in (Status.FEASIBLE, Status.NO_SOLUTION) and cand.assignment is not None:
            cand = replace(cand, status=Status.TIME_LIMIT)
    if notes:
        cand = replace(cand, message="; ".join(([cand.message] if cand.message else []) + notes))
    deadline = math.inf if time_limit is None else started + time_limit
    return plan_from_candidate(p, method, cand, elapsed, deadline=deadline)


#: seconds of a limit kept for tidying a plan with split choices (`split_merge`)
MERGE_RESERVE_S = 0.5


def _join(message: str, note: str) -> str:
    return (message + "; " if message else "") + note


def derive_status(p: Problem, ev: Evaluation | None, *, claimed: Status = Status.FEASIBLE,
                  bound: float | None = None) -> tuple[Status, float | None, str]:
    """The one rule for a plan's status and bound, used by `solve` and `evaluate`.

    Inputs: the evaluator's verdict ``ev`` on the plan (None: no plan), what the method
    claims (``claimed``: ``optimal`` = proved optimal, ``infeasible`` = proved infeasible,
    ``time_limit``, ...; `evaluate` passes ``feasible``: a plan file proves nothing) and a
    bound the method proved (None: none; `evaluate` passes None: a plan file's bound is
    never trusted). The bound reported is the larger of that and the package's own
    `Problem.lower_bound`. Returns (status, bound, note for the message):

    * no plan: the claim if it is ``infeasible``/``no_solution``/``error``, else
      ``no_solution``; the bound is None when infeasibility was proved;
    * a plan the evaluator finds infeasible: ``no_solution``, bound None (no gap);
    * an ``optimal`` claim whose value is not within `OPTIMAL_TOLERANCE` of the bound:
      ``feasible`` (e.g. CP-SAT proved optimality of its rounded model only);
    * a feasible plan claimed ``infeasible``/``no_solution``/``error``: ``feasible``;
    * a ``feasible`` or ``time_limit`` plan that meets the bound: ``optimal``.
    """
    cheap = p.lower_bound()
    bound = cheap if bound is None else max(bound, cheap)
    if ev is None:
        status = claimed if claimed in (Status.INFEASIBLE, Status.NO_SOLUTION, Status.ERROR) \
            else Status.NO_SOLUTION
        return status, (None if status == Status.INFEASIBLE else bound), ""
    if not ev.feasible:
        return Status.NO_SOLUTION, None, "best plan found breaks: " + str(ev.violations[0])
    gap = gap_of(ev.value, bound)
    status, note = claimed, ""
    if status == Status.OPTIMAL and (gap is None or gap > OPTIMAL_TOLERANCE):
        status = Status.FEASIBLE
        note = ("the method proved optimality of its own model; against the real-valued bound the gap is "
                + ("unknown" if gap is None else f"{gap:.3g}"))
    elif status in (Status.INFEASIBLE, Status.NO_SOLUTION, Status.ERROR):
        status = Status.FEASIBLE
    if status in (Status.FEASIBLE, Status.TIME_LIMIT) and gap is not None and gap <= OPTIMAL_TOLERANCE:
        # the plan meets a proven lower bound: it is optimal, whoever found it
        status, note = Status.OPTIMAL, _join(note, "value meets the proven lower bound")
    return status, bound, note


def plan_from_candidate(p: Problem, method: str, cand: Candidate, solve_time_s: float,
                        deadline: float = math.inf) -> Plan:
    """Re-score a method's candidate with the evaluator and build the honest `Plan` (on the
    expansion of the candidate's split choice, when it made one; split blocks whose shards
    share one device made whole where no worse, `split_merge`, until ``deadline``)."""
    ev = None
    q = p
    if getattr(cand, "split", None) is not None:
        try:
            q = plan_problem(p, cand.split)
        except PlanError as exc:     # a method's bug, not the user's input
            return _empty_plan(p, method, Status.ERROR, f"method returned a bad split choice: {exc}",
                               solve_time_s, stats=cand.stats)
    if cand.assignment is not None:
        ev = evaluate_indices(q, np.asarray(cand.assignment, dtype=np.int64), cand.order,
                              getattr(cand, "medium_order", None))
        if getattr(cand, "split", None) is not None and not p.scenarios:
            # shards all on one device buy nothing: those blocks run whole (split_merge)
            from .split_merge import merge_colocated
            merged = merge_colocated(p, cand.split, q, ev, deadline=deadline)
            if merged is not None:
                from .split import describe
                n = sum(1 for b, w in merged[0].items() if w != cand.split.get(b))
                choice, q, ev = merged
                # the method's message names its choice ("split ways ..."): the plan's now
                text = cand.message.replace(describe(cand.split), describe(choice))
                cand = replace(cand, split=choice, message=_join(
                    text, f"{n} split block(s) whose shards shared one device run whole"))
    status, bound, note = derive_status(p, ev, claimed=cand.status, bound=cand.bound)
    if ev is None:
        return _empty_plan(q, method, status, cand.message or "no plan found", solve_time_s,
                           stats=cand.stats, bound=bound)
    return plan_from_evaluation(q, ev, method=method, status=status, bound=bound,
                                solve_time_s=solve_time_s, message=_join(cand.message, note) if note
                                else cand.message, stats=cand.stats)


def plan_from_evaluation(p: Problem, ev: Evaluation, *, method: str, status: Status,
                         bound: float | None, solve_time_s: float, message: str = "",
                         stats: dict[str, Any] | None = None) -> Plan:
    devices = [d.id for d in p.devices]
    blocks = [b.id for b in p.blocks]
    medium_order, transfers = None, []
    if p.media:
        from .media import transfer_names, transfers as media_transfers
        names = transfer_names(p)
        lat = media_transfers(p, ev.assignment).lat
        medium_order = {mid: [list(names[t]) for t in o] for (mid, _), o in
                        zip(p.media, ev.medium_order or [()] * len(p.media))}
        for (mid, _), o in zip(p.media, ev.medium_order):
            for t in o:
                end = float(ev.transfer_end[t])
                transfers.append({"medium": mid, "src": names[t][0], "dst": names[t][1],
                                  "start_s": float(ev.transfer_start[t]), "end_s": end,
                                  "arrival_s": end + float(lat[t])})
    return Plan(
        problem=p.name, method=method, objective=p.objective.to_json(), status=status,
        value=ev.value, bound=bound, solve_time_s=solve_time_s,
        assignment={blocks[b]: devices[d] for b, d in enumerate(ev.assignment)},
        order={devices[d]: [blocks[b] for b in o] for d, o in enumerate(ev.order) if o},
        schedule={blocks[b]: {"device": devices[ev.assignment[b]], "start_s": float(ev.start[b]),
                              "end_s": float(ev.end[b])} for b in range(p.n_blocks)},
        metrics=ev.metrics(p), violations=[str(v) for v in ev.violations], message=message,
        stats=dict(stats or {}), medium_order=medium_order, transfers=transfers,
        split=dict(p.split) if p.split_options else None)


def _empty_plan(p: Problem, method: str, status: Status, message: str, solve_time_s: float,
                stats: dict | None = None, bound: float | None = None) -> Plan:
    return Plan(problem=p.name, method=method, objective=p.objective.to_json(), status=status,
                value=None, bound=bound, solve_time_s=solve_time_s, assignment={}, message=message,
                stats=dict(stats or {}), split=dict(p.split) if p.split_options else None)


def evaluate(problem: Any, plan: Plan | Mapping[str, Any] | str | os.PathLike[str], *,
             objective: str | Mapping[str, float] | None = None) -> Plan:
    """Re-score a plan (a `Plan`, dict, or path to a plan file) on ``problem``.

    Returns a new `Plan` with the evaluator's value, metrics, schedule and violations; the
    plan's order is kept when it has one (else the list rule decides). A plan with a
    ``split`` choice is scored on ``problem.expand(split)`` (a bad choice, or blocks of
    another expansion, is a `PlanError` naming the block). The plan file's own
    ``bound`` and ``status`` are never read (`derive_status` with no claim): the status is
    ``optimal`` when the value meets the package's own lower bound, ``feasible`` otherwise,
    ``no_solution`` (bound None) when a rule is broken.
    """
    p = _objective_problem(problem, objective)
    where = ""
    if isinstance(plan, (str, os.PathLike)):
        where = f"{plan}: "  # every error about the plan names its file
        plan = Plan.load(plan)
    elif not isinstance(plan, Plan):
        plan = Plan.from_dict(plan)
    if not plan.assignment:
        raise PlanError(f"{where}assignment: expected a block -> device mapping, found an empty one "
                        f"(plan status {plan.status.value}: {plan.message or 'no plan'})")
    try:
        q = plan_problem(p, plan.split)
        ev = evaluate_ids(q, plan.assignment, plan.order, plan.medium_order)
    except PlanError as exc:
        if where and not str(exc).startswith(where):
            raise PlanError(where + str(exc)) from None
        raise
    # A plan file's bound and status are claims this function cannot check: neither is read.
    status, bound, note = derive_status(p, ev)
    message = _join(plan.message, note) if note else plan.message
    return plan_from_evaluation(q, ev, method=plan.method, status=status, bound=bound,
                                solve_time_s=plan.solve_time_s, message=message, stats=plan.stats)


def methods() -> list[registry.MethodInfo]:
    """The registered methods, with kind, guarantee and supported objectives (SPEC section 8)."""
    return registry.methods()

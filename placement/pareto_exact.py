"""The exact Pareto front: an epsilon-constraint search on an adaptive grid, every point
lexicographically optimal, for two or three objectives.

Objectives ``f_1, ..., f_k`` (k = 2 or 3; ``f_1`` is the first one named). A *cell* is an
upper bound ``u_j`` (possibly +inf) on each of ``f_2 .. f_k``. Solving a cell is
``k`` exact solves, one per stage, each on a copy of the problem with extra constraints
(``Problem.with_constraints``; the problem's own constraints stay):

1. minimise ``f_1`` subject to ``f_j <= u_j * (1 - STEP_TOL)`` for every finite ``u_j``
   (strictly below the bound, by a relative step);
2. minimise ``f_2`` subject to the same and ``f_1 <=`` the value found in stage 1;
3. (three objectives) minimise ``f_3`` subject to the same and ``f_1, f_2 <=`` the values
   found so far.

The plan of the last stage is the cell's point: lexicographically optimal, hence Pareto
optimal (no plan is at least as good on every metric and better on one), not merely
weakly optimal as a plain epsilon-constraint solve would be. A cell whose stage 1 is
proven infeasible is empty.

The grid is the one of Laumanns, Thiele & Zitzler (2006, "An efficient, adaptive parameter
variation scheme for metaheuristics based on the epsilon-constraint method"): the cells are
every combination of ``{+inf} U {f_j of each point found}`` over ``j = 2..k``, and it grows
as points are found. Cells are taken in decreasing order of their bounds, so a cell's
super-cells come first; a cell is not solved when a solved super-cell's point already
lies strictly inside it (it is then that cell's lexicographic optimum too) or a super-cell
is empty (the bypass of AUGMECON2). The search ends when every cell of the grid is
resolved. Then the front is **complete**: a non-dominated point ``z`` missing from it
would lie strictly inside the cell whose bounds are the smallest grid values above its
coordinates, and that cell's lexicographic optimum would have to be dominated by ``z`` or
beat it on a coordinate that is itself a grid value below ``z``'s: both impossible. With
two objectives this is exactly the stepping epsilon-constraint method (minimise ``f_1``
with ``f_2`` strictly below the last point's ``f_2``).

Honesty:

* a point is ``proven`` when every stage's solve came back ``optimal`` (the API keeps that
  status only when the evaluator's value is within 1e-6 of a proven bound); a solve that
  stopped at its time limit gives a point that is only ``feasible``;
* the search is ``complete`` only when every cell was resolved by proven solves (or proven
  infeasibility). A time limit, the ``max_points`` cap, or a solve that found nothing
  leaves it incomplete, and ``open_cells`` says where points may be missing.

Tolerances: ``STEP_TOL`` (1e-6 relative) is the step below a bound, so two front points
whose values of ``f_j`` differ by less than 1e-6 relative are taken as one (the solvers'
own rounding, about 2e-7 relative for CP-SAT, is below it). The lexicographic stages bound
the earlier objectives by the found values themselves (the loader's 1e-9 relative
tolerance applies).
"""

from __future__ import annotations

import dataclasses

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import InputError, MethodError
from .pareto_quality import METRIC, same

#: relative step below a cell's bound (module docstring).
STEP_TOL = 1e-6
#: a solve is not started with less than this many seconds left.
MIN_SOLVE_S = 0.05

#: units shown in labels
_UNIT = {"latency_s": "s", "period_s": "s", "energy_j": "J"}


@dataclass
class Found:
    """A plan on the front's candidate list, scored by the evaluator on the original problem."""

    plan: Any                       # placement.Plan
    vector: tuple[float, ...]       # the chosen metrics, in the order of the objectives
    method: str
    how: str
    proven: bool
    source: str                     # "exact" or "heuristic"


@dataclass
class ExactSearch:
    method: str | None
    points: list[Found] = field(default_factory=list)
    candidates: list[Found] = field(default_factory=list)
    complete: bool = False
    reason: str = ""
    solves: int = 0
    cells_solved: int = 0
    cells_skipped: int = 0
    open_cells: list[dict[str, float | None]] = field(default_factory=list)
    #: the last solve that ended with neither a plan nor a proof, and why
    note: str = ""
    note_hit_limit: bool = False


def time_limit_for(deadline: float, cap: float | None = None) -> float:
    """Seconds to give a solve so that it returns by ``deadline`` (``time.monotonic()``),
    allowing for the documented overrun of a method (1 s plus 5 % of its limit)."""
    left = deadline - time.monotonic()
    limit = max(0.0, (left - min(1.0, 0.25 * left)) / 1.05)
    return limit if cap is None else min(limit, cap)


def _label(metric: str, value: float) -> str:
    return f"{metric} < {value:.6g} {_UNIT[metric]}"


def exact_front(base: Any, objs: list[str], methods: list[str], deadline: float, *,
                max_points: int, seed: int = 0, solve_cap: float | None = None, warm: bool = True,
                say: Callable[[str], None] = lambda _m: None) -> ExactSearch:
    """Run the adaptive-grid search (module docstring) with the first of ``methods`` that
    accepts the problem (a method that refuses it, e.g. ``brute`` above its size, passes to
    the next), until ``deadline`` (a ``time.monotonic()`` value). ``solve_cap``: at most
    this many seconds per solve. ``warm=False`` turns off a method's own heuristic warm start
    where it has a ``warm`` option (on small problems the heuristics cost more than they
    save: they run on a share of the time left at every solve)."""
    from .registry import get_method
    from . import api
    from .plan import Status

    k = len(objs)
    metrics = [METRIC[o] for o in objs]
    objective_problem = base.with_objective(objs[0])
    todo = list(methods)
    search = ExactSearch(method=todo[0] if todo else None)
    if not todo:
        search.reason = "no exact method supports " + ", ".join(objs)
        return search
    proven_all = True

    def solve(p, obj: str, how: str):
        """(status, plan scored on the original problem or None); status None: not run."""
        nonlocal todo
        retried = False
        while todo:
            limit = time_limit_for(deadline, solve_cap)
            if limit < MIN_SOLVE_S:
                return None, None
            search.solves += 1
            say(f"{todo[0]}: {how}")
            try:
                opts = {} if warm or "warm" not in get_method(todo[0]).options else {"warm": False}
                plan = api.solve(p, todo[0], objective=obj, time_limit=limit, seed=seed, **opts)
            except (InputError, MethodError) as exc:
                if search.points or search.candidates or len(todo) == 1:
                    raise
                say(f"{todo[0]} refused ({exc}); next exact method")
                todo = todo[1:]
                search.method = todo[0]
                continue
            if not plan.feasible and plan.status != Status.INFEASIBLE and not retried \
                    and time_limit_for(deadline, solve_cap) >= max(MIN_SOLVE_S, limit):
                # no plan and no proof, yet time is left (a cold start, the first solve
                # paying for the solver's imports): once more with the time now left
                retried = True
                continue
            if not plan.feasible:
                if plan.status != Status.INFEASIBLE:
                    search.note = f"{how}: {plan.status.value} ({plan.message or 'no plan'})"
                    # too little time rather than a failure: a short limit, or most of it used
                    search.note_hit_limit = limit < 1.0 or plan.solve_time_s >= 0.9 * limit
                return plan.status, None
            scored = api.evaluate(objective_problem, plan.to_dict())
            if not scored.feasible:   # cannot happen: the stage problem is stricter
                return Status.NO_SOLUTION, None
            scored = dataclasses.replace(scored, method=todo[0])  # plans are frozen
            return plan.status, scored
        return None, None

    def lexicographic(bounds: dict[str, float], order: list[int]) -> tuple[str, Found | None]:
        """Minimise the objectives in ``order``, each subject to ``bounds`` and to the ones
        before it staying at their values: ('point', Found) | ('empty', None) | ('unknown', None)."""
        nonlocal proven_all
        where = ", ".join(_label(m, v) for m, v in bounds.items())
        first = objs[order[0]]
        how = f"min {first}" + (f" s.t. {where}" if where else "")
        status, plan = solve(base.with_constraints(bounds) if bounds else base, first, how)
        if plan is None:
            if status == Status.INFEASIBLE:
                return "empty", None
            proven_all = False
            return "unknown", None
        proven = status == Status.OPTIMAL
        best, best_how = plan, how
        fixed = dict(bounds)
        for n in range(1, k):
            before = [metrics[i] for i in order[:n]]
            for m in before:
                fixed[m] = min(fixed.get(m, math.inf), best.metrics[m])
            stage_how = best_how + f", then min {objs[order[n]]}"
            status, plan = solve(base.with_constraints(fixed), objs[order[n]], stage_how)
            if plan is None or any(plan.metrics[m] > best.metrics[m] * (1 + 1e-9) for m in before):
                proven = False
                break
            proven = proven and status == Status.OPTIMAL
            best, best_how = plan, stage_how
        vec = tuple(float(best.metrics[m]) for m in metrics)
        found = Found(best, vec, search.method or "", best_how, proven, "exact")
        search.candidates.append(found)
        if not proven:
            proven_all = False
        return "point", found

    def solve_cell(cell: tuple[float, ...]) -> tuple[str, Found | None]:
        bounds = {metrics[j + 1]: u * (1 - STEP_TOL) for j, u in enumerate(cell) if math.isfinite(u)}
        return lexicographic(bounds, list(range(k)))

    # The other end points first (lexicographic with f_j first): a front cut by the time
    # limit then spans every objective's range. They only add values to the grid; which
    # cells exist and how each is resolved does not depend on where a grid value came from.
    for j in range(1, k):
        kind, f = lexicographic({}, [j] + [i for i in range(k) if i != j])
        if kind == "point" and not any(same(p.vector, f.vector) for p in search.points):
            search.points.append(f)
        if kind != "point":
            break

    def inside(vec: tuple[float, ...], cell: tuple[float, ...]) -> bool:
        return all(not math.isfinite(u) or vec[j + 1] <= u * (1 - STEP_TOL) for j, u in enumerate(cell))

    results: dict[tuple[float, ...], tuple[str, Found | None]] = {}
    solved: list[tuple[tuple[float, ...], str, Found | None]] = []
    capped = False
    stopped = False
    while True:
        grids = [sorted({math.inf} | {p.vector[j] for p in search.points}, reverse=True)
                 for j in range(1, k)]
        pending = None
        for cell in itertools.product(*grids):
            if cell in results:
                continue
            for sup, kind, f in solved:
                if all(s >= c for s, c in zip(sup, cell)):
                    if kind == "empty" or (kind == "point" and inside(f.vector, cell)):
                        results[cell] = (kind, f)
                        search.cells_skipped += 1
                        break
            else:
                pending = cell
                break
        if pending is None:
            break
        if len(search.points) >= max_points:
            capped = True
            break
        kind, f = solve_cell(pending)
        if kind == "unknown":
            stopped = True
            break
        search.cells_solved += 1
        results[pending] = (kind, f)
        solved.append((pending, kind, f))
        if kind == "point" and not any(same(p.vector, f.vector) for p in search.points):
            search.points.append(f)
    if pending is not None:
        # every cell not resolved yet is open: points may be missing inside it
        grids = [sorted({math.inf} | {p.vector[j] for p in search.points}, reverse=True)
                 for j in range(1, k)]
        for cell in itertools.product(*grids):
            if cell not in results:
                search.open_cells.append({metrics[j + 1]: (u if math.isfinite(u) else None)
                                          for j, u in enumerate(cell)})
    search.points.sort(key=lambda f: f.vector)
    search.complete = pending is None and proven_all
    n = len(search.points)
    if search.complete:
        search.reason = (f"complete: every cell of the grid solved to proven optimality or proven "
                         f"empty ({search.cells_solved} cells solved, {search.cells_skipped} implied)")
    elif capped:
        search.reason = f"incomplete: stopped at the cap of {max_points} points; more may exist"
    elif stopped and search.note and not search.note_hit_limit:
        search.reason = (f"incomplete: a solve ended with neither a plan nor a proof ({search.note}); "
                         f"{len(search.open_cells)} grid cells not explored, points may be missing there")
    elif stopped:
        search.reason = (f"incomplete: the time limit was reached after {search.solves} solves and "
                         f"{n} points; {len(search.open_cells)} grid cells not explored, points may "
                         "be missing there")
    else:
        search.reason = ("incomplete: some solves stopped at their time limit, so some points are "
                         "only feasible (not proven optimal) and points may be missing")
    return search

"""What the exact solvers share: the warm start (best heuristic plan), the horizon derived
from it, the metrics the model must represent, and the final choice among plans.

The warm start runs the registered heuristics (``single``, ``heft``, ``dp``, ``local``) on a
share of the time limit, plus a cheap memory-aware greedy of its own, scores every plan with
the evaluator, and keeps the best feasible one. The exact solvers hint it to their backend,
derive big-M / horizon values from it, and return it when they find nothing better: they are
never worse than it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from placement import bounds
from placement.evaluator import Evaluation, evaluate
from placement.method import Candidate, Context
from placement.plan import Status
from placement.problem import Problem

from placement.problem import TOLERANCE
from placement.registry import warm_start_methods

#: heuristics tried for the warm start, with the share of the time left each gets (the
#: registry's list: `placement.registry.WARM_START`).
WARM_METHODS: tuple[tuple[str, float], ...] = warm_start_methods()


def warm_up() -> None:
    """Compile (or load) the warm start's heuristics' kernels, outside any timed solve."""
    from placement.registry import get_method

    for name, _ in WARM_METHODS:
        get_method(name).warm_up()


@dataclass
class WarmStart:
    best: Evaluation | None
    source: str = ""
    tried: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: the split choice whose expansion ``best`` is a plan of (None: the problem as given;
    #: a heuristic that chooses ways returns its choice, SPEC 6)
    split: dict[str, int] | None = None


def greedy(p: Problem) -> np.ndarray | None:
    """Memory-aware earliest-finish greedy in topological order (ignores device contention
    beyond a running busy time). Returns an assignment or None when a block fits nowhere."""
    B, D = p.n_blocks, p.n_devices
    a = np.full(B, -1, dtype=np.int64)
    weights = np.zeros(D)
    peak = np.zeros(D)
    busy = np.zeros(D)
    finish = np.zeros(B)
    for b in p.topo:
        best, best_t = -1, math.inf
        for d in np.nonzero(p.allowed[b])[0]:
            if weights[d] + p.params[b] + max(peak[d], p.activation[b]) > p.memory_cap[d]:
                continue
            ready = float(p.input_arrival(b)[d]) if not p.preds[b] else 0.0
            ok = True
            for u, k in p.preds[b]:
                if not p.reachable[a[u], d]:
                    ok = False
                    break
                ready = max(ready, finish[u] + p.transfer_time(p.edge_bytes[k], int(a[u]), int(d)))
            if not ok:
                continue
            t = max(ready, busy[d]) + p.compute_time[b, d]
            if t < best_t:
                best, best_t = int(d), t
        if best < 0:
            return None
        a[b] = best
        weights[best] += p.params[b]
        peak[best] = max(peak[best], p.activation[b])
        busy[best] = best_t
        finish[b] = best_t
    return a


#: moves without improvement that `local` anneals for in a warm start, per block x device
#: (its own default, 5,000, is for a user's standalone run)
WARM_PATIENCE_PER_CELL = 10
WARM_PATIENCE_MIN = 100


def warm_options(name: str, p: Problem) -> dict[str, int]:
    """Options of a warm start's heuristic: `local` anneals for a patience that grows with
    the problem (``10 x blocks x devices`` moves, 100 to its default): on a 5-block problem
    its default 5,000 moves took 1.5 s of a solve that CP-SAT then closes in milliseconds
    (a Pareto front makes dozens of such solves); from 500 block-devices on it is the
    default, so the warm start of large problems is unchanged."""
    if name != "local":
        return {}
    from heuristics.local import PATIENCE
    cells = p.n_blocks * p.n_devices
    return {"patience": int(min(PATIENCE, max(WARM_PATIENCE_MIN, WARM_PATIENCE_PER_CELL * cells)))}


def warm_start(p: Problem, ctx: Context, methods: tuple[tuple[str, float], ...] | None = None
               ) -> WarmStart:
    """The best feasible plan of the heuristics (by the evaluator's value), or None.
    ``methods`` defaults to the registry's (`placement.registry.warm_start_methods`, whose
    shares are larger when the split degrees are to be chosen)."""
    if methods is None:
        methods = warm_start_methods(split_choice="split_choice" in p.features)
    from placement.errors import MethodError
    from placement.registry import get_method

    t0 = time.monotonic()
    out = WarmStart(None)

    def consider(name: str, ev: Evaluation, split: dict[str, int] | None = None) -> None:
        out.tried[name] = ev.value if ev.feasible else "infeasible"
        if ev.feasible and (out.best is None or ev.value < out.best.value):
            out.best, out.source, out.split = ev, name, split

    a = greedy(p)
    if a is not None:
        consider("greedy", evaluate(p, a))
    for name, share in methods:
        if ctx.expired():
            break
        try:
            m = get_method(name)
            if p.objective.name not in m.objectives:
                continue
            cand = m.solve(p, ctx.sub(share, **warm_options(name, p)))
        except MethodError as exc:   # not written yet, or unavailable
            out.tried[name] = f"unavailable: {exc}"
            continue
        except Exception as exc:  # a heuristic's bug must not sink the exact solver
            out.tried[name] = f"error: {type(exc).__name__}: {exc}"
            continue
        if cand.assignment is None:
            out.tried[name] = "no plan"
            continue
        a = np.asarray(cand.assignment, dtype=np.int64)
        split = getattr(cand, "split", None)
        q = p if split is None else p.expand(split)     # a plan of its own choice's expansion
        split = None if q is p else dict(q.split)
        # with its own sending order on each shared medium (heft and local plan one): scored
        # without it, the medium's first-come order could make the plan look worse
        consider(name, evaluate(q, a, cand.order, getattr(cand, "medium_order", None)), split)
        if cand.order is not None:
            consider(name + "+list", evaluate(q, a), split)
    out.seconds = time.monotonic() - t0
    return out


def stopped_early(best: Evaluation | None, stats: dict) -> Candidate:
    """What an exact solver returns when its time is up before its model is built: the warm
    start's plan (``time_limit``) or nothing (``no_solution``)."""
    if best is None:
        return Candidate(None, status=Status.NO_SOLUTION, stats=stats,
                         message="time limit reached before the model was built; no plan yet")
    return Candidate(best.assignment, best.order, status=Status.TIME_LIMIT, stats=stats,
                     message="time limit reached before the model was built: the warm start's plan",
                     medium_order=[list(o) for o in best.medium_order] or None)


def proven_by_the_bound(p: Problem, best: Evaluation | None, stats: dict) -> Candidate | None:
    """The warm start's plan as ``optimal`` when it already meets the package's lower bound
    (nothing for a model to prove; at 1,000 blocks x 32 devices building the MILP alone took
    longer than the plan was worth), else None."""
    if best is None or not best.feasible:
        return None
    from placement.api import OPTIMAL_TOLERANCE
    lb = p.lower_bound()
    if best.value > 0 and (best.value - lb) / best.value > OPTIMAL_TOLERANCE:
        return None
    if best.value <= 0 and lb < best.value:
        return None
    return Candidate(best.assignment, best.order, status=Status.OPTIMAL, stats=stats,
                     message="the warm start's plan meets the proven lower bound: no model needed",
                     medium_order=[list(o) for o in best.medium_order] or None)


def too_large(best: Evaluation | None, stats: dict, n_vars: int, seconds_per_var: float,
              time_left: float, solver: str) -> Candidate | None:
    """The warm start (``time_limit``) when a model of ``n_vars`` variables could not be built,
    handed to the solver and read back in ``time_left`` seconds (``seconds_per_var``: measured
    on this package's models), so that the limit holds with model building under the clock;
    else None."""
    if not math.isfinite(time_left) or n_vars * seconds_per_var <= time_left:
        return None
    stats = {**stats, "estimated_variables": int(n_vars)}
    note = (f"{solver}: a model of about {n_vars:,} variables does not fit in the {time_left:.3g} s "
            "left; ")
    if best is None:
        return Candidate(None, status=Status.NO_SOLUTION, stats=stats, message=note + "no plan yet")
    return Candidate(best.assignment, best.order, status=Status.TIME_LIMIT, stats=stats,
                     message=note + "the warm start's plan",
                     medium_order=[list(o) for o in best.medium_order] or None)


# --------------------------------------------------------------------------- model facts
def period_cap(p: Problem) -> float | None:
    """The largest period a feasible plan may have (from period_s / throughput_per_s), or None."""
    caps = []
    if "period_s" in p.constraints:
        caps.append(p.constraint_cap("period_s"))
    if p.constraints.get("throughput_per_s", 0) > 0:
        caps.append(1.0 / (p.constraints["throughput_per_s"] * (1 - TOLERANCE)))
    return min(caps) if caps else None


def serial_horizon(p: Problem) -> float:
    """An upper bound on the latency of every ASAP schedule of every plan: the binding chain
    of an ASAP schedule covers [0, latency] with compute intervals and transfers, each at most
    once, so their worst-case sum bounds it."""
    ct = np.where(p.allowed, p.compute_time, 0.0)
    total = float(np.sum(np.max(ct, axis=1)))
    for k in range(p.n_edges):
        tm = p.transfer_matrix(p.edge_bytes[k])
        total += float(np.max(np.where(np.isfinite(tm), tm, 0.0)))
    for b in p.input_blocks:
        v = p.input_arrival(b)
        total += float(np.max(np.where(np.isfinite(v), v, 0.0)))
    for b in p.output_blocks:
        v = p.output_delivery(b)
        total += float(np.max(np.where(np.isfinite(v), v, 0.0)))
    return total


def latency_horizon(p: Problem, incumbent: Evaluation | None, serial: float | None = None) -> float:
    """A latency no optimal plan exceeds: the serial bound (``serial`` when given: e.g. the
    union of every split choice's, which bounds every expansion's), the latency constraint,
    and, when latency is weighted, what the incumbent's value leaves for it after the other
    metrics' cheap bounds (of ``p``: over every split choice)."""
    h = serial_horizon(p) if serial is None else serial
    if "latency_s" in p.constraints:
        h = min(h, p.constraint_cap("latency_s"))
    w = p.objective.weights
    if incumbent is not None and w.get("latency"):
        rest = 0.0
        if w.get("throughput"):
            rest += w["throughput"] * bounds.period_bound(p)
        if w.get("energy"):
            rest += w["energy"] * bounds.energy_bound(p)
        h = min(h, (incumbent.value - rest) / w["latency"] * (1 + 1e-9) + 1e-12)
        h = max(h, incumbent.latency_s)
    return h


def incomparable_pairs(p: Problem) -> list[tuple[int, int]]:
    """Block pairs (a < b) with no path between them in the block graph (only these can
    compete for a device: a path already orders the others)."""
    B = p.n_blocks
    anc = p.ancestors
    out = []
    for a in range(B):
        for b in range(a + 1, B):
            if not (anc[b] >> a) & 1 and not (anc[a] >> b) & 1:
                if np.any(p.allowed[a] & p.allowed[b]):
                    out.append((a, b))
    return out


def orders_from_starts(p: Problem, assignment: np.ndarray, start: np.ndarray) -> list[list[int]]:
    """Per-device orders by start time (ties: topological position)."""
    pos = np.empty(p.n_blocks, dtype=np.int64)
    pos[list(p.topo)] = np.arange(p.n_blocks)
    order: list[list[int]] = [[] for _ in range(p.n_devices)]
    for b in sorted(range(p.n_blocks), key=lambda b: (start[b], pos[b])):
        order[int(assignment[b])].append(b)
    return order


def best_plan(p: Problem, plans: list[tuple],
              incumbent: Evaluation | None) -> Evaluation | None:
    """The best feasible of ``plans`` (each also tried with the list rule) and the incumbent.
    A plan is (assignment, order) or, with shared media, (assignment, order, medium_order),
    the latter also tried first come first served."""
    best = incumbent
    for a, order, *rest in plans:
        morder = rest[0] if rest else None
        tries = [(order, None)] if order is not None else []
        if morder is not None and order is not None:
            tries.insert(0, (order, morder))
        tries.append((None, None))
        for o, mo in tries:
            ev = evaluate(p, a, o, mo)
            if ev.feasible and (best is None or ev.value < best.value * (1 - 1e-12)):
                best = ev
    return best

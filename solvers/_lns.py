"""Large-neighbourhood search: re-solve windows of blocks exactly with CP-SAT.

From an incumbent plan, repeatedly choose a **window** of ``size`` blocks, fix every block
outside it to its incumbent device, and let CP-SAT re-solve the window's assignment together
with the order of every block (the model of `solvers.cpsat`, on the problem whose
``allowed`` matrix is narrowed to the incumbent's device outside the window; symmetry
breaking between identical devices is left out, since fixed blocks name devices), hinted
with the incumbent and under a small limit. The window's plan is re-scored by the
evaluator and replaces the incumbent only when strictly better (memory and constraints
first, then the value), so the search never ends worse than it started.

Windows, taken in turn:

* ``chain``: consecutive blocks of the incumbent's schedule order (blocks that run near one
  another in time: where reordering and moving pays);
* ``graph``: a breadth-first neighbourhood of a random block in the block graph (a block,
  its producers and consumers: where transfers are decided);
* ``devices``: blocks of two devices, one of them the most loaded in memory or time (where
  memory binds, the blocks that must trade places).

Each window's CP-SAT run is deterministic (one worker, a deterministic time limit, the
seed), so a run that is not cut by the wall clock gives the same plan every time. It stops
at the deadline, when ``patience`` windows in a row brought nothing, or when a window that
covers every block was solved to optimality (the plan is then optimal).

Used by `local` (its closing phase) and by `cpsat` (a phase before the full model on
problems too large to close). Needs OR-Tools; `available()` says whether it is there.
"""

from __future__ import annotations

import functools
import math
import random
import time
from dataclasses import dataclass, field

import numpy as np

from placement.evaluator import Evaluation, evaluate
from placement.problem import Problem

#: blocks per window.
WINDOW = 12
#: windows in a row without improvement before the search stops.
PATIENCE = 8
#: CP-SAT deterministic time per window (about that many seconds of one core).
WINDOW_DTIME = 0.25
#: the largest number of windows one search solves (with no deadline).
MAX_WINDOWS = 60
#: above this many blocks the search is not run: a window's model still schedules every block
#: (1-2 s a window at 150 x 16; at 1,000 x 32 one window overran a 2 s limit of `local`)
MAX_BLOCKS = 400


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """OR-Tools' CP-SAT can be imported (importing it takes seconds: `local.warm_up` does it
    before the clock starts)."""
    try:
        from ortools.sat.python import cp_model  # noqa: F401
    except ImportError:
        return False
    return True


def supports(p: Problem) -> str | None:
    """None when the search can run on ``p``, else why not (scenarios have their own model
    builder, whose read-back this search does not do; shared media are in the window's
    model, its sending order read back as cpsat does)."""
    if not available():
        return "OR-Tools is not installed"
    if p.scenarios:
        return "scenarios"
    if p.n_blocks == 0:
        return "no blocks"
    if p.n_blocks > MAX_BLOCKS:
        return f"more than {MAX_BLOCKS} blocks (a window's model covers every block's schedule)"
    return None


def _key(p: Problem, ev: Evaluation) -> tuple[float, float]:
    from heuristics._common import violation_size
    return (violation_size(p, ev), ev.value if math.isfinite(ev.value) else math.inf)


def window_problem(p: Problem, a: np.ndarray, window) -> Problem:
    """``p`` with every block outside ``window`` allowed only on its device in ``a``."""
    allowed = np.zeros_like(p.allowed)
    allowed[np.arange(p.n_blocks), a] = True
    w = np.asarray(sorted(window), dtype=np.int64)
    allowed[w] = p.allowed[w]
    allowed.setflags(write=False)
    q = p._replaced(allowed=allowed)
    # the cheap bounds of ``p`` are valid for ``q`` (a restriction of it): seed q's cache with
    # them rather than recompute them for every window (the model's lower ends use them)
    from placement import bounds
    cache = bounds.bound_cache(q)
    w = p.objective.weights
    for key, fn, need in (("latency", bounds.latency_bound, p.needs_schedule() or bool(w.get("latency"))),
                          ("period", bounds.period_bound, bool(w.get("throughput"))),
                          ("energy", bounds.energy_bound, bool(w.get("energy")))):
        if need and key not in cache:
            cache[key] = fn(p)
    return q


def solve_window(p: Problem, inc: Evaluation, window, deadline: float, seed: int = 0,
                 dtime: float = WINDOW_DTIME) -> tuple[Evaluation | None, str]:
    """CP-SAT on ``window`` with the rest of ``inc`` fixed. Returns (the window's best plan
    re-scored by the evaluator on ``p``, or None; CP-SAT's status name)."""
    from ortools.sat.python import cp_model

    from . import _warmstart as ws
    from ._scale import DEFAULT_PRECISION
    from .cpsat import BuildTimeout, _CpSatModel

    class _WindowModel(_CpSatModel):
        def _symmetry(self) -> None:         # fixed blocks name devices: no symmetry to break
            self.symmetry_groups = []

    q = window_problem(p, np.asarray(inc.assignment, dtype=np.int64), window)
    try:
        m = _WindowModel(q, inc, DEFAULT_PRECISION, deadline=deadline)
    except BuildTimeout:
        return None, "build_timeout"
    left = deadline - time.monotonic()
    if left <= 0.02:
        return None, "no_time"
    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.num_workers = 1
    prm.random_seed = int(seed) % (2 ** 31)
    prm.max_deterministic_time = float(dtime)
    prm.max_time_in_seconds = max(0.02, min(left, 20.0 * dtime))
    prm.presolve_inclusion_work_limit = 0        # as cpsat (an OR-Tools 9.15 presolve bug)
    # CP-SAT's own SIGINT handler would take the user's Ctrl-C (placement.interrupt): the
    # window solves as cpsat does, in a thread that a Ctrl-C stops
    from solvers.cpsat import _solve_interruptibly
    status = _solve_interruptibly(solver, m.model, None, deadline)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, name
    a = np.full(p.n_blocks, -1, dtype=np.int64)
    for (b, d), var in m.x.items():
        if solver.boolean_value(var):
            a[b] = d
    order = None
    if m.s is not None:
        s = np.array([solver.value(v) for v in m.s], dtype=float)
        order = ws.orders_from_starts(p, a, s)
    cands = [evaluate(p, a, order)]
    if m.ts:        # shared media: the window's sending order on the air, and first come first served
        from .cpsat import _medium_order
        ts = {t: solver.value(v) for t, v in m.ts.items()}
        cands.insert(0, evaluate(p, a, order, _medium_order(p, a, ts)))
    return min(cands, key=lambda ev: _key(p, ev)), name


@dataclass
class LnsResult:
    best: Evaluation
    improved: bool = False
    optimal: bool = False          # a window covering every block was solved to optimality
    stats: dict = field(default_factory=dict)


def _windows(p: Problem, ev: Evaluation, size: int, rng: random.Random, kind: str,
             turn: int = 0) -> list[int]:
    """The ``turn``-th window of ``kind`` (module docstring). Chain windows sweep the schedule
    order from its end backwards, half a window a turn (so every block is in one within
    ``2 B / size`` of them); the others are drawn at random."""
    B, D = p.n_blocks, p.n_devices
    if size >= B:
        return list(range(B))
    a = np.asarray(ev.assignment, dtype=np.int64)
    if kind == "chain":
        seq = np.lexsort((np.asarray(ev.end), np.asarray(ev.start))).tolist()
        step = max(1, size // 2)
        n_pos = (B - size + step - 1) // step + 1
        i = max(0, B - size - (turn % n_pos) * step)
        return seq[i:i + size]
    if kind == "graph":
        b = rng.randrange(B)
        out, seen, frontier = [b], {b}, [b]
        while frontier and len(out) < size:
            c = frontier.pop(0)
            nb = [u for u, _ in p.preds[c]] + [v for v, _ in p.succs[c]]
            rng.shuffle(nb)
            for n in nb:
                if n not in seen and len(out) < size:
                    seen.add(n)
                    out.append(n)
                    frontier.append(n)
        while len(out) < size:                       # a small component: add random blocks
            n = rng.randrange(B)
            if n not in seen:
                seen.add(n)
                out.append(n)
        return out
    # devices: the blocks of the most loaded device (memory share or compute) and another
    mem = p.memory_use(a) / p.memory
    busy = np.bincount(a, weights=p.compute_time[np.arange(B), a], minlength=D)
    first = int(np.argmax(mem if rng.random() < 0.5 else busy))
    others = [d for d in range(D) if d != first]
    second = rng.choice(others) if others else first
    blocks = [b for b in range(B) if a[b] in (first, second)]
    rng.shuffle(blocks)
    out = blocks[:size]
    if len(out) < size:
        rest = [b for b in range(B) if b not in set(out)]
        rng.shuffle(rest)
        out += rest[:size - len(out)]
    return out


def search(p: Problem, start: Evaluation, deadline: float = math.inf, *, size: int = WINDOW,
           patience: int = PATIENCE, max_windows: int = MAX_WINDOWS, seed: int = 0,
           dtime: float = WINDOW_DTIME, progress=None) -> LnsResult:
    """The search from ``start`` (module docstring) until ``deadline`` (``time.monotonic()``)."""
    t0 = time.monotonic()
    best, best_key = start, _key(p, start)
    rng = random.Random(seed * 7_919 + 17)
    kinds = ("chain", "graph", "devices")
    stats = {"windows": 0, "improvements": 0, "size": min(size, p.n_blocks), "statuses": {}}
    res = LnsResult(best, stats=stats)
    since = 0
    for i in range(max_windows):
        if time.monotonic() >= deadline or since >= patience:
            break
        kind = kinds[i % len(kinds)]
        window = _windows(p, best, size, rng, kind, turn=i // len(kinds))
        ev, status = solve_window(p, best, window, deadline, seed=seed + i, dtime=dtime)
        stats["windows"] += 1
        stats["statuses"][status] = stats["statuses"].get(status, 0) + 1
        since += 1
        if ev is not None:
            k = _key(p, ev)
            if k[0] < best_key[0] or (k[0] == best_key[0] and k[1] < best_key[1] * (1 - 1e-9)):
                best, best_key = ev, k
                since = 0
                stats["improvements"] += 1
                res.improved = True
                if progress is not None and k[0] == 0:
                    progress(k[1], None)
        if len(window) >= p.n_blocks:
            # the whole problem was the window: optimal if CP-SAT proved it, else a retry
            # of the same window cannot do better than a longer single solve
            res.optimal = status == "OPTIMAL" and best_key[0] == 0
            break
    res.best = best
    stats["time_s"] = round(time.monotonic() - t0, 4)
    return res


__all__ = ["available", "supports", "search", "solve_window", "window_problem", "LnsResult"]

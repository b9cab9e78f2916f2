"""The heuristic front: anchors from every heuristic method, then NSGA-II on the assignment.

1. **Anchors.** Every registered method that is not exact (``placement.methods()``; kind
   ``heuristic`` or ``baseline``) and supports an objective minimises that objective alone,
   sharing ``ANCHOR_SHARE`` of the time left.
2. **NSGA-II** (pymoo) on the assignment: one integer gene per block, the index of its
   device among the block's allowed devices (pins and ``allowed_devices`` hold by
   construction). The first population holds the anchors, every plan handed in (the exact
   search's points, in the anytime regime) and random assignments. Operators: uniform
   crossover and a mutation that moves each block to a random allowed device with
   probability ``1 / blocks`` (at least one block per child). Each child is scored by the
   evaluator (`placement.evaluate`: the list rule orders each device), and a plan that breaks
   a rule (memory, reachability, the problem's constraints) counts as a constraint violation.
   It runs until the deadline, or until the archive has not changed for ``STALL_GENERATIONS``
   generations.

Every feasible plan scored joins an archive of non-dominated plans; the archive, not the last
population, is the heuristic front. No point here is proven.
"""

from __future__ import annotations

import dataclasses

import time
from typing import Any, Callable

import numpy as np

from .errors import InputError, MethodError
from .pareto_exact import MIN_SOLVE_S, Found, time_limit_for
from .pareto_quality import METRIC, dominates, same

#: share of the heuristic budget the anchors get (split over methods x objectives).
ANCHOR_SHARE = 0.3
#: NSGA-II population size (bounded by the problem's size for tiny problems).
POPULATION = 60
#: stop when the archive has not changed for this many generations.
STALL_GENERATIONS = 25
#: a penalty value for the metrics of infeasible plans (pymoo needs finite numbers).
_BIG = 1e30


def heuristic_methods(objs: list[str]) -> list[str]:
    from . import api
    return [i.name for i in api.methods() if i.kind not in ("exact", "unavailable")
            and any(o in i.objectives for o in objs)]


class _Archive:
    """Non-dominated feasible plans seen so far (assignment index vectors)."""

    def __init__(self) -> None:
        self.vectors: list[tuple[float, ...]] = []
        self.genes: list[np.ndarray] = []
        self.changes = 0

    def add(self, vec: tuple[float, ...], genes: np.ndarray) -> None:
        if any(dominates(v, vec) or same(v, vec) for v in self.vectors):
            return
        keep = [i for i, v in enumerate(self.vectors) if not dominates(vec, v)]
        self.vectors = [self.vectors[i] for i in keep] + [vec]
        self.genes = [self.genes[i] for i in keep] + [genes.copy()]
        self.changes += 1


def heuristic_front(base: Any, objs: list[str], deadline: float, *, seed: int = 0,
                    methods: list[str] | None = None, seeds: list[Found] | None = None,
                    say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Anchors and NSGA-II (module docstring) until ``deadline`` (``time.monotonic()``).
    Returns ``{"points": [Found], "anchors": [Found], "solves", "evaluations", "generations",
    "stopped"}``; the points are the non-dominated archive (metrics from the evaluator)."""
    from . import api

    metrics = [METRIC[o] for o in objs]
    objective_problem = base.with_objective(objs[0])
    block_ids = [b.id for b in base.blocks]
    device_ids = [d.id for d in base.devices]
    allowed = [np.flatnonzero(np.asarray(base.allowed[b])) for b in range(base.n_blocks)]
    n_allowed = np.array([len(a) for a in allowed])
    index_of = [{int(d): i for i, d in enumerate(a)} for a in allowed]
    names = methods if methods is not None else heuristic_methods(objs)

    anchors: list[Found] = []
    solves = 0
    from .registry import get_method
    jobs = [(m, o) for o in objs for m in names if o in get_method(m).objectives]
    t0 = time.monotonic()
    anchor_end = t0 + ANCHOR_SHARE * max(0.0, deadline - t0)
    for n, (m, o) in enumerate(jobs):
        limit = time_limit_for(anchor_end) / max(1, len(jobs) - n)
        limit = max(limit, min(MIN_SOLVE_S, time_limit_for(deadline)))
        if limit < MIN_SOLVE_S / 2:
            break
        solves += 1
        say(f"{m}: min {o}")
        try:
            plan = api.solve(base, m, objective=o, time_limit=limit, seed=seed)
        except (InputError, MethodError):   # a heuristic that refuses the problem: skip it
            continue
        if plan.feasible:
            scored = api.evaluate(objective_problem, plan.to_dict())
            if scored.feasible:
                scored = dataclasses.replace(scored, method=m)  # plans are frozen
                anchors.append(Found(scored, tuple(float(scored.metrics[k]) for k in metrics), m,
                                     f"{m}: min {o}", False, "heuristic"))

    def genes_of(plan) -> np.ndarray | None:
        try:
            g = [index_of[b][base.device_index[plan.assignment[bid]]] for b, bid in enumerate(block_ids)]
        except KeyError:
            return None
        return np.array(g, dtype=np.int64)

    def score(g: np.ndarray):
        a = {bid: device_ids[int(allowed[b][int(g[b])])] for b, bid in enumerate(block_ids)}
        return api.evaluate(objective_problem, {"assignment": a})

    archive = _Archive()
    initial = []
    for f in list(seeds or []) + anchors:
        g = genes_of(f.plan)
        if g is not None:
            initial.append(g)
            archive.add(f.vector, g)
    evaluations = 0
    generations = 0
    stopped = "deadline"
    rng = np.random.default_rng(seed)
    B = base.n_blocks
    if time.monotonic() < deadline - MIN_SOLVE_S and n_allowed.prod(dtype=float) > 1:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.evaluator import Evaluator
        from pymoo.core.mutation import Mutation
        from pymoo.core.problem import Problem as PymooProblem
        from pymoo.operators.crossover.ux import UX
        from pymoo.problems.static import StaticProblem

        class Reassign(Mutation):
            def _do(self, problem, X, *args, random_state=None, **kwargs):
                r = random_state if random_state is not None else rng
                X = np.rint(np.asarray(X, dtype=float)).astype(np.int64)
                mask = r.random(X.shape) < 1.0 / B
                force = r.integers(0, B, size=len(X))
                mask[np.arange(len(X)), force] = True
                new = np.floor(r.random(X.shape) * n_allowed).astype(np.int64)
                X[mask] = new[mask]
                return X

        pop_size = int(min(POPULATION, max(8, n_allowed.prod(dtype=float))))
        X0 = [g for g in initial][:pop_size]
        while len(X0) < pop_size:
            X0.append(np.floor(rng.random(B) * n_allowed).astype(np.int64))
        problem = PymooProblem(n_var=B, n_obj=len(objs), n_ieq_constr=1, xl=np.zeros(B),
                               xu=(n_allowed - 1).astype(float), vtype=int)
        algo = NSGA2(pop_size=pop_size, sampling=np.array(X0, dtype=float), crossover=UX(),
                     mutation=Reassign(), eliminate_duplicates=True)
        algo.setup(problem, termination=("n_gen", 10**9), seed=seed, verbose=False)
        last_change, last_count = 0, archive.changes
        while time.monotonic() < deadline:
            pop = algo.ask()
            if pop is None or len(pop) == 0:   # pymoo finds no new assignment to try
                stopped = "no new assignment to try"
                break
            X = np.rint(np.asarray(pop.get("X"), dtype=float)).astype(np.int64)
            F = np.full((len(X), len(objs)), _BIG)
            G = np.ones((len(X), 1))
            for i, g in enumerate(X):
                if time.monotonic() >= deadline:
                    break
                pl = score(g)
                evaluations += 1
                if pl.feasible:
                    vec = tuple(float(pl.metrics[k]) for k in metrics)
                    F[i] = vec
                    G[i] = -1.0
                    archive.add(vec, g)
                else:
                    G[i] = float(len(pl.violations) or 1)
            Evaluator().eval(StaticProblem(problem, F=F, G=G), pop)
            algo.tell(infills=pop)
            generations += 1
            if archive.changes != last_count:
                last_change, last_count = generations, archive.changes
            elif generations - last_change >= STALL_GENERATIONS:
                stopped = f"archive unchanged for {STALL_GENERATIONS} generations"
                break
            if generations % 5 == 0:
                say(f"NSGA-II: generation {generations}, {len(archive.vectors)} plans on its front")
    points = []
    for vec, g in zip(archive.vectors, archive.genes):
        match = next((f for f in anchors if same(f.vector, vec)), None)
        if match is not None:
            points.append(match)
            continue
        pl = score(g)
        pl = dataclasses.replace(pl, method="nsga2")
        points.append(Found(pl, tuple(float(pl.metrics[k]) for k in metrics), "nsga2",
                            "NSGA-II on the assignment", False, "heuristic"))
    points.sort(key=lambda f: f.vector)
    return {"points": points, "anchors": anchors, "solves": solves, "evaluations": evaluations,
            "generations": generations, "stopped": stopped}

"""`milp`: the placement problem as a mixed-integer linear program.

Backends: PuLP with CBC (default), or ``backend=highs|scip`` through OR-Tools' MPSolver. The
model is written once as sparse rows (`_Rows`) and emitted to either backend.

Variables and constraints (times in units of ``tau`` seconds, energy in units of ``eps``
joules, memory in units of the largest device's memory, so that every coefficient is
O(1)-O(1e4) and solver tolerances stay far below the 1e-6 the API checks):

* ``x[b,d]`` binary per allowed pair, ``sum_d x[b,d] = 1``.
* pair variables ``y[k,d1,d2]`` in [0, 1] per edge and per allowed end pair (a
  transportation linearisation, exact for binary x and tighter than the usual three
  inequalities): ``sum_d2 y[k,d1,d2] = x[u,d1]``, ``sum_d1 y[k,d1,d2] = x[v,d2]``; pairs
  that no link joins are left out, which forbids them.
* memory: ``sum_b params_b x[b,d] + peak_d <= memory_d``, ``peak_d >= act_b x[b,d]``.
* symmetry between identical devices: prefix variables as in `solvers.cpsat`.
* latency: starts ``s_b``; ``s_v >= s_u + sum_d ct[u,d] x[u,d] + sum transfer[d1,d2]
  y[k,d1,d2]`` per edge; inputs wait for ``source``; ``L >= s_b + ct + delivery`` for
  outputs; for every pair of blocks with no path between them that may share a device,
  an order binary ``o`` and a same-device variable ``z >= x[a,d] + x[b,d] - 1`` with
  ``s_b >= e_a - M (2 - o - z)`` and ``s_a >= e_b - M (1 + o - z)``; ``M`` is the latency
  horizon derived from the warm start's plan (`solvers._warmstart.latency_horizon`), not a
  constant. ``L >= load_d`` (redundant).
* throughput: ``T >= load_d`` and ``T >=`` each directed link's load (pairs, input, output).
* energy: linear in ``x`` and ``y``; idle energy with ``used_d >= x[b,d]``,
  ``UL_d >= L - M (1 - used_d)`` and ``power_idle_d (UL_d - load_d)``.

* split choices (SPEC 6, `Milp._solve_over_choices`): the model of the union of every
  expansion (`Problem.split_union`); ``z[b,w]`` binary per split block and way, ``sum_w z = 1``;
  a shard's ``sum_d x = z[b,w]`` (its columns are zero without its way); an edge at a choice
  has ``sum_d2 y <= x[u,d1]``, ``sum_d1 y <= x[v,d2]`` and ``sum y >= z_u + z_v - 1`` (its
  pairs exist only with both ways); precedence and makespan rows of a shard are relaxed by
  ``H (1 - z)`` without its way; no order pair between shards of two ways of one block;
  shard k's device index at most shard k+1's. Bounds over every choice.

Warm start: the best heuristic plan gives every variable an initial value (CBC's MIP start
through PuLP ``warmStart=True``; MPSolver hints), the horizon and the fallback plan.

Files: this one builds the model (`_MilpModel`) and reads the plan back; the backend-neutral
rows and the backends (CBC with its watchdog, MPSolver in a child) are `solvers._milp_backends`.
"""

from __future__ import annotations

import math
import time

import numpy as np

from placement import bounds
from placement.method import Candidate, Context, Method, Option
from placement.plan import Status
from placement.problem import TOLERANCE, Problem

from . import _warmstart as ws
from ._milp_backends import READ_BACK_S, _add, _Rows, _solve_cbc, _solve_mpsolver

BACKENDS = ("cbc", "highs", "scip")
#: a backend's bound is lowered by this relative amount to absorb its tolerances.
BOUND_SAFETY = 1e-8


class Milp(Method):
    name = "milp"
    kind = "exact"
    guarantee = ("optimal when it says so (MILP with gap 1e-9); else best plan and the backend's "
                 "proven bound at the time limit")
    summary = "MILP: assignment, pair linearisation, disjunctive ordering; PuLP/CBC or HiGHS/SCIP"
    #: split choices (SPEC 6): the union model (`_solve_over_choices`). No media, no scenarios.
    features = frozenset({"split_choice"})
    options = (
        Option("backend", str, "cbc", "cbc (PuLP), highs or scip (OR-Tools MPSolver)", choices=BACKENDS),
        Option("warm", bool, True, "run the heuristics for a warm start"),
        Option("cbc_options", str, "", "extra CBC options, e.g. 'preprocess off' (cbc backend)"),
    )

    def warm_up(self) -> None:
        ws.warm_up()

    def _run_backend(self, m: "_MilpModel", ctx: Context, backend: str, stats: dict):
        """Solve ``m``'s rows with the chosen backend; its statistics go into ``stats``.
        Returns the result and the proven bound in objective units (None without one)."""
        if backend == "cbc":
            res = _solve_cbc(m.rows, ctx.deadline, ctx.seed, self.option(ctx, "cbc_options"))
        else:
            res = _solve_mpsolver(m.rows, ctx.deadline, backend)
        stats.update(res.stats)
        bound = None
        if res.bound is not None and math.isfinite(res.bound) and m.has_objective:
            bound = max(0.0, res.bound * m.v_unit * (1 - BOUND_SAFETY))
        return res, bound

    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        if "split_choice" in problem.features:
            return self._solve_over_choices(problem, ctx)
        t0 = time.monotonic()
        p = problem
        backend = self.option(ctx, "backend")
        warm = ws.warm_start(p, ctx) if self.option(ctx, "warm") else ws.WarmStart(None)
        inc = warm.best
        base = {"backend": backend, "warm_start": warm.source or None, "warm_tried": warm.tried}
        if ctx.expired():                   # e.g. --time-limit 0: the best so far, at once
            return ws.stopped_early(inc, base)
        done = ws.proven_by_the_bound(p, inc, base)
        if done is not None:                # nothing left to prove: no model to build
            return done
        # model building, writing it for CBC and reading the answer back are under the clock:
        # a model that cannot make it in the time left is not started (issue 14)
        big = ws.too_large(inc, base, _estimated_variables(p), SECONDS_PER_VARIABLE, ctx.time_left(), "milp")
        if big is not None:
            return big
        mb = time.monotonic()
        try:
            m = _MilpModel(p, inc, deadline=ctx.deadline - READ_BACK_S)
        except BuildTimeout:
            return ws.stopped_early(inc, {**base, "model_build_s": round(time.monotonic() - mb, 3)})
        stats = {"backend": backend, "warm_start": warm.source or None,
                 "warm_value": None if inc is None else inc.value, "warm_tried": warm.tried,
                 "warm_start_s": round(warm.seconds, 3), "model_build_s": round(time.monotonic() - mb, 3),
                 "variables": len(m.rows.names), "constraints": len(m.rows.rows),
                 "time_unit_s": m.tau, "energy_unit_j": m.eps, "objective_unit": m.v_unit,
                 "horizon_s": m.horizon_s}
        res, bound = self._run_backend(m, ctx, backend, stats)
        if res.status == "infeasible":
            if inc is not None:
                return Candidate(inc.assignment, inc.order, status=Status.FEASIBLE, stats=stats,
                                 message=f"milp: backend reported infeasible although a plan exists ({res.raw})")
            return Candidate(None, status=Status.INFEASIBLE, stats=stats,
                             message="milp proved that no plan meets memory, links"
                             + (" and the constraints " + ", ".join(
                                 f"{k} {v:g}" for k, v in p.constraints.items()) if p.constraints else ""))
        plans = []
        if res.values is not None:
            a, order = m.read_plan(res.values)
            if a is not None:
                plans.append((a, order))
        best = ws.best_plan(p, plans, inc)
        stats["total_s"] = round(time.monotonic() - t0, 3)
        if best is None:
            return Candidate(None, status=Status.NO_SOLUTION, bound=bound, stats=stats,
                             message=f"milp: no plan found ({res.raw})")
        if res.status == "optimal":
            st = Status.OPTIMAL
            if bound is None and m.has_objective:
                st = Status.FEASIBLE
        else:
            st = Status.TIME_LIMIT
        return Candidate(best.assignment, best.order, status=st, bound=bound, stats=stats,
                         message=f"{backend}: {res.raw}")


    def _solve_over_choices(self, p: Problem, ctx: Context) -> Candidate:
        """Exact over the split choices (module docstring): the union model, read back as a
        plan of the chosen expansion (``Candidate.split``)."""
        t0 = time.monotonic()
        backend = self.option(ctx, "backend")
        warm = ws.warm_start(p, ctx) if self.option(ctx, "warm") else ws.WarmStart(None)
        inc = warm.best
        inc_choice = dict(p.split) if warm.split is None else dict(warm.split)
        base = {"backend": backend, "warm_start": warm.source or None, "warm_tried": warm.tried,
                "split_choices": p.n_split_combinations}

        def chosen(c: Candidate) -> Candidate:
            if c.assignment is not None:
                c.split = inc_choice
            return c

        if ctx.expired():
            return chosen(ws.stopped_early(inc, base))
        done = ws.proven_by_the_bound(p, inc, base)
        if done is not None:
            return chosen(done)
        U = p.split_union()
        big = ws.too_large(inc, base, _estimated_variables(U), SECONDS_PER_VARIABLE, ctx.time_left(), "milp")
        if big is not None:
            return chosen(big)
        from .cpsat import _UnionIncumbent
        inc_u = _UnionIncumbent.of(p, U, inc, inc_choice)
        mb = time.monotonic()
        try:
            m = _MilpModel(U, inc_u, deadline=ctx.deadline - READ_BACK_S, split_of=p)
        except BuildTimeout:
            return chosen(ws.stopped_early(inc, {**base, "model_build_s": round(time.monotonic() - mb, 3)}))
        stats = {**base, "warm_value": None if inc is None else inc.value,
                 "warm_start_s": round(warm.seconds, 3), "model_build_s": round(time.monotonic() - mb, 3),
                 "union_blocks": U.n_blocks, "variables": len(m.rows.names), "constraints": len(m.rows.rows),
                 "time_unit_s": m.tau, "energy_unit_j": m.eps, "objective_unit": m.v_unit,
                 "horizon_s": m.horizon_s}
        res, bound = self._run_backend(m, ctx, backend, stats)
        if res.status == "infeasible":
            if inc is not None:
                return chosen(Candidate(inc.assignment, inc.order, status=Status.FEASIBLE, stats=stats,
                                        message=f"milp: backend reported infeasible although a plan exists ({res.raw})"))
            return Candidate(None, status=Status.INFEASIBLE, stats=stats,
                             message="milp proved that no plan of any split choice meets memory, links"
                             + (" and the constraints " + ", ".join(
                                 f"{k} {v:g}" for k, v in p.constraints.items()) if p.constraints else ""))
        best, best_choice = inc, inc_choice
        if res.values is not None:
            a_u, s_u = m.read_union(res.values)
            choice = p.union_choice(U, a_u)
            idx = p.from_union(U, choice)
            q = p.expand(choice)
            a = a_u[idx]
            if not (a < 0).any():
                order = ws.orders_from_starts(q, a, s_u[idx]) if s_u is not None else None
                ev = ws.best_plan(q, [(a, order)], None)
                if ev is not None and (best is None or ev.value < best.value * (1 - 1e-12)):
                    best, best_choice = ev, choice
        stats["total_s"] = round(time.monotonic() - t0, 3)
        if best is None:
            return Candidate(None, status=Status.NO_SOLUTION, bound=bound, stats=stats,
                             message=f"milp: no plan found ({res.raw})")
        if res.status == "optimal":
            st = Status.OPTIMAL
            if bound is None and m.has_objective:
                st = Status.FEASIBLE
        else:
            st = Status.TIME_LIMIT
        return Candidate(best.assignment, best.order, status=st, bound=bound, stats=stats,
                         message=f"{backend}: {res.raw}", split=best_choice)


#: seconds per model variable to build the model, write it for the backend and read the
#: answer back (measured: 1.26e6 variables, 1,000 blocks x 32 devices, took 35 s with CBC)
SECONDS_PER_VARIABLE = 1.5e-5


def _estimated_variables(p: Problem) -> int:
    """About how many variables `_MilpModel` makes: block x device, and edge x device pair."""
    D = p.n_devices
    allowed = int(p.allowed.sum())
    return allowed + p.n_edges * D * D


class BuildTimeout(Exception):
    """The time limit came while the model was being built."""


class _MilpModel:
    def __init__(self, p: Problem, inc, deadline: float = math.inf, split_of: Problem | None = None):
        """Data and units, then one builder per part of the model (module docstring), in order.
        ``split_of``: ``p`` is that problem's `Problem.split_union` (split choices); its bounds
        (over every choice) stand for ``p``'s."""
        self.deadline = deadline
        self.p = p
        self.split_of = split_of
        bp = self.bp = split_of if split_of is not None else p
        self.z: dict = {}
        B, D = p.n_blocks, p.n_devices
        allowed = p.allowed
        w = {k: v for k, v in p.objective.weights.items() if v}
        R = self.rows = _Rows()
        ct = np.where(allowed, p.compute_time, 0.0)
        sched = p.needs_schedule()
        period = p.needs_period() or "throughput" in w
        energy = p.needs_energy() or "energy" in w
        # ---- units
        lat_ref = bounds.latency_bound(bp) if sched else 0.0
        per_ref = bounds.period_bound(bp) if period else 0.0
        if inc is not None:
            lat_ref = max(lat_ref, inc.latency_s if sched else 0.0)
            per_ref = max(per_ref, inc.period_s if period else 0.0)
        self.tau = max(lat_ref, per_ref, 1e-12) / 1000.0
        en_ref = max(bounds.energy_bound(bp) if energy else 0.0,
                     inc.energy_j if (inc is not None and energy) else 0.0, 1e-12)
        self.eps = en_ref / 1000.0
        v_ref = max(bp.lower_bound(), inc.value if inc is not None else 0.0, 1e-12)
        self.v_unit = v_ref / 1000.0
        tau, eps = self.tau, self.eps
        mem_unit = float(max(p.memory.max(), 1.0))

        self.x = x = {(b, d): R.var(f"x_{b}_{d}", 0, 1, True)
                      for b in range(B) for d in range(D) if allowed[b, d]}
        self._split_ways(R, inc)
        for b in range(B):
            zb = self._present(b)
            if zb is None:
                R.row({x[b, d]: 1.0 for d in range(D) if allowed[b, d]}, 1.0, 1.0)
            else:                        # a shard of a way: on one device iff its way is chosen
                coefs = {x[b, d]: 1.0 for d in range(D) if allowed[b, d]}
                coefs[zb] = -1.0
                R.row(coefs, 0.0, 0.0)
        a_inc = None if inc is None else inc.assignment
        if a_inc is not None:
            for (b, d), v in x.items():
                R.start[v] = float(a_inc[b] == d)
        obj: dict[int, float] = {}
        self.s = None
        self.horizon_s = None
        self.inc = inc
        self._v_B, self._v_D, self._v_R, self._v_x, self._v_ct = B, D, R, x, ct
        self._v_sched, self._v_period, self._v_energy, self._v_tau = sched, period, energy, tau
        self._v_eps = eps
        self._v_mem_unit, self._v_a_inc, self._v_w, self._v_allowed = mem_unit, a_inc, w, allowed
        self._v_obj = obj
        self._v_L, self._v_H, self._v_y, self._v_y_of = None, 0.0, None, None
        self._memory()
        self._reach()
        self._pairs()
        self._symmetry()
        self._split_symmetry()
        self._latency()
        self._period()
        self._energy()
        self.has_objective = bool(obj)
        R.objective = {k: v / self.v_unit for k, v in obj.items()}


    def _tick(self) -> None:
        """Model building is under the clock: past the deadline, stop building (the caller
        returns the warm start's plan)."""
        if time.monotonic() > self.deadline:
            raise BuildTimeout

    def _present(self, b: int):
        """The column of "block b runs" (its way's ``z``), None for a block that always runs."""
        if not self.z:
            return None
        mem = self.p.union_members[b]
        return None if mem is None else self.z[mem[0], mem[1]]

    def _split_ways(self, R, inc) -> None:
        """Split choices: ``z[b,w]`` binary per split block with several ways and way,
        ``sum_w z[b,w] = 1`` (started at the warm start's choice)."""
        if self.split_of is None:
            return
        for b, ways in self.split_of.split_options.items():
            if len(ways) < 2:
                continue
            for w in ways:
                self.z[b, w] = R.var(f"zw_{len(self.z)}", 0, 1, True)
                if inc is not None:
                    R.start[self.z[b, w]] = float(inc.choice.get(b) == w)
            R.row({self.z[b, w]: 1.0 for w in ways}, 1.0, 1.0)

    def _split_symmetry(self) -> None:
        """Shards of one way are interchangeable: shard k's device index is at most shard
        k+1's (see `solvers.cpsat._CpSatModel._split_symmetry` for why it keeps an optimum)."""
        if not self.z:
            return
        R, x, D = self._v_R, self._v_x, self._v_D
        groups: dict[tuple[str, int], list[int]] = {}
        for b, mem in enumerate(self.p.union_members):
            if mem is not None and mem[1] > 1:
                groups.setdefault((mem[0], mem[1]), []).append(b)
        for members in groups.values():
            for b1, b2 in zip(members, members[1:]):
                coefs = {x[b1, d]: float(d) for d in range(1, D) if (b1, d) in x}
                for d in range(1, D):
                    if (b2, d) in x:
                        coefs[x[b2, d]] = coefs.get(x[b2, d], 0.0) - float(d)
                R.row(coefs, hi=0.0)

    def _exclusive(self, a_: int, b_: int) -> bool:
        """True for shards of two different ways of one block (never both placed)."""
        if not self.z:
            return False
        ma, mb = self.p.union_members[a_], self.p.union_members[b_]
        return ma is not None and mb is not None and ma[0] == mb[0] and ma[1] != mb[1]

    def read_union(self, values: np.ndarray):
        """A union solution: device per union block (-1: its way not chosen) and starts."""
        p = self.p
        a = np.full(p.n_blocks, -1, dtype=np.int64)
        best = np.full(p.n_blocks, 0.5)
        for (b, d), var in self.x.items():
            if values[var] > best[b]:
                best[b], a[b] = values[var], d
        s = np.array([values[v] for v in self.s]) if self.s is not None else None
        return a, s

    def _memory(self) -> None:
        """The model's part: memory."""
        p = self.p
        B, D, R, x, mem_unit = self._v_B, self._v_D, self._v_R, self._v_x, self._v_mem_unit
        a_inc, allowed = self._v_a_inc, self._v_allowed
        # ---- memory
        for d in range(D):
            blocks = [b for b in range(B) if allowed[b, d]]
            if not blocks or p.params[blocks].sum() + p.activation[blocks].max() <= p.memory[d]:
                continue
            peak = R.var(f"peak_{d}", 0, float(p.activation[blocks].max()) / mem_unit)
            for b in blocks:
                if p.activation[b] > 0:
                    R.row({peak: 1.0, x[b, d]: -p.activation[b] / mem_unit}, lo=0.0)
            coefs = {x[b, d]: p.params[b] / mem_unit for b in blocks}
            coefs[peak] = 1.0
            R.row(coefs, hi=p.memory_cap[d] / mem_unit)
            if a_inc is not None:
                R.start[peak] = float(max((p.activation[b] for b in blocks if a_inc[b] == d), default=0.0)) / mem_unit

    def _reach(self) -> None:
        """The model's part: input / output blocks on devices that source / sink cannot reach."""
        p = self.p
        D, R, x, allowed = self._v_D, self._v_R, self._v_x, self._v_allowed
        # ---- input / output blocks on devices that source / sink cannot reach
        for b in p.input_blocks:
            for d in range(D):
                if allowed[b, d] and not p.reachable[p.source, d]:
                    R.ub[x[b, d]] = 0.0
        for b in p.output_blocks:
            for d in range(D):
                if allowed[b, d] and not p.reachable[d, p.sink]:
                    R.ub[x[b, d]] = 0.0

    def _pairs(self) -> None:
        """The model's part: pair variables."""
        p = self.p
        D, R, x, y, y_of = self._v_D, self._v_R, self._v_x, self._v_y, self._v_y_of
        a_inc, allowed = self._v_a_inc, self._v_allowed
        # ---- pair variables
        self.y = y = {}
        for k in range(p.n_edges):
            self._tick()
            uu, vv = int(p.edge_src[k]), int(p.edge_dst[k])
            for d1 in range(D):
                for d2 in range(D):
                    if allowed[uu, d1] and allowed[vv, d2] and p.reachable[d1, d2]:
                        y[k, d1, d2] = R.var(f"y_{k}_{d1}_{d2}", 0, 1)
                        if a_inc is not None:
                            R.start[y[k, d1, d2]] = float(a_inc[uu] == d1 and a_inc[vv] == d2)
            zu, zv = self._present(uu), self._present(vv)
            lo = -math.inf if (zu is not None or zv is not None) else 0.0   # split choices: <=
            for d1 in range(D):
                if allowed[uu, d1]:
                    coefs = {y[k, d1, d2]: 1.0 for d2 in range(D) if (k, d1, d2) in y}
                    coefs[x[uu, d1]] = coefs.get(x[uu, d1], 0.0) - 1.0
                    R.rows.append((coefs, lo, 0.0))
            for d2 in range(D):
                if allowed[vv, d2]:
                    coefs = {y[k, d1, d2]: 1.0 for d1 in range(D) if (k, d1, d2) in y}
                    coefs[x[vv, d2]] = coefs.get(x[vv, d2], 0.0) - 1.0
                    R.rows.append((coefs, lo, 0.0))
            if lo < 0:               # the edge's pair exists when both ends run
                coefs = {y[key]: 1.0 for key in y if key[0] == k}
                ends = [z for z in (zu, zv) if z is not None]
                for z in ends:
                    coefs[z] = coefs.get(z, 0.0) - 1.0
                R.row(coefs, lo=1.0 - len(ends))

        y_of: dict[int, list[tuple[int, int, int]]] = {k: [] for k in range(p.n_edges)}
        for (k, d1, d2), var in y.items():
            y_of[k].append((d1, d2, var))
        self._v_y, self._v_y_of = y, y_of

    def _symmetry(self) -> None:
        """The model's part: symmetry."""
        p = self.p
        B, R, x, a_inc, allowed = self._v_B, self._v_R, self._v_x, self._v_a_inc, self._v_allowed
        # ---- symmetry
        for group in p.identical_device_groups():
            group = sorted(group)
            prefix: dict[tuple[int, int], int] = {}
            for d in group[:-1]:
                prev = None
                for b in range(B):
                    if allowed[b, d]:
                        h = R.var(f"h_{b}_{d}", 0, 1)
                        R.row({h: 1.0, x[b, d]: -1.0}, lo=0.0)
                        if prev is not None:
                            R.row({h: 1.0, prev: -1.0}, lo=0.0)
                            R.row({h: 1.0, prev: -1.0, x[b, d]: -1.0}, hi=0.0)
                        else:
                            R.row({h: 1.0, x[b, d]: -1.0}, hi=0.0)
                        if a_inc is not None:
                            R.start[h] = float(any(a_inc[c] == d for c in range(b + 1)))
                        prev = h
                    prefix[b, d] = prev
            for d_prev, d_next in zip(group, group[1:]):
                for b in range(B):
                    if not allowed[b, d_next]:
                        continue
                    earlier = prefix.get((b - 1, d_prev)) if b > 0 else None
                    if earlier is None:
                        R.ub[x[b, d_next]] = 0.0
                    else:
                        R.row({x[b, d_next]: 1.0, earlier: -1.0}, hi=0.0)

    def _latency(self) -> None:
        """The model's part: latency."""
        p, inc = self.p, self.inc
        B, D, R, x, y_of = self._v_B, self._v_D, self._v_R, self._v_x, self._v_y_of
        ct, sched, tau, w, obj = self._v_ct, self._v_sched, self._v_tau, self._v_w, self._v_obj
        L, H, allowed = self._v_L, self._v_H, self._v_allowed
        # ---- latency
        if sched:
            # 1e-4 of slack: with the incumbent optimal, the horizon is tight at the optimum and
            # CBC's preprocessing then "proved" the model infeasible (10 x 6 hybrid, iot, mesh)
            h = (ws.latency_horizon(self.bp, inc, serial=ws.serial_horizon(p)) if self.z
                 else ws.latency_horizon(p, inc)) * (1 + 1e-4)
            self.horizon_s = h
            H = h / tau
            ctu = ct / tau
            self.s = s = [R.var(f"s_{b}", 0, H) for b in range(B)]
            L = R.var("latency", bounds.latency_bound(self.bp) / tau * (1 - 1e-9), H)
            for b in p.input_blocks:
                arr = p.input_arrival(b)
                coefs = {s[b]: 1.0}
                for d in range(D):
                    if allowed[b, d] and np.isfinite(arr[d]) and arr[d] > 0:
                        coefs[x[b, d]] = -arr[d] / tau
                R.row(coefs, lo=0.0)
            for k in range(p.n_edges):
                self._tick()
                uu, vv = int(p.edge_src[k]), int(p.edge_dst[k])
                tt = p.transfer_matrix(p.edge_bytes[k]) / tau
                coefs = {s[vv]: 1.0, s[uu]: -1.0}
                for d in range(D):
                    if allowed[uu, d]:
                        coefs[x[uu, d]] = -ctu[uu, d]
                for d1, d2, var in y_of[k]:
                    if d1 != d2 and tt[d1, d2] > 0:
                        coefs[var] = -tt[d1, d2]
                zv = self._present(vv)
                if zv is not None:       # relaxed by H (1 - z) when v's way is not chosen
                    coefs[zv] = -H
                R.row(coefs, lo=0.0 if zv is None else -H)
            for b in p.output_blocks:
                dv = p.output_delivery(b) / tau
                coefs = {L: 1.0, s[b]: -1.0}
                for d in range(D):
                    if allowed[b, d]:
                        coefs[x[b, d]] = -(ctu[b, d] + (dv[d] if np.isfinite(dv[d]) else 0.0))
                zb = self._present(b)
                if zb is not None:
                    coefs[zb] = -H
                R.row(coefs, lo=0.0 if zb is None else -H)
            for d in range(D):
                coefs = {x[b, d]: -ctu[b, d] for b in range(B) if allowed[b, d]}
                if coefs:
                    coefs[L] = 1.0
                    R.row(coefs, lo=0.0)
            pairs = [(a_, b_) for a_, b_ in ws.incomparable_pairs(p) if not self._exclusive(a_, b_)]
            self.n_pairs = len(pairs)
            for a_, b_ in pairs:
                o = R.var(f"o_{a_}_{b_}", 0, 1, True)
                z = R.var(f"z_{a_}_{b_}", 0, 1)
                for d in range(D):
                    if allowed[a_, d] and allowed[b_, d]:
                        R.row({z: 1.0, x[a_, d]: -1.0, x[b_, d]: -1.0}, lo=-1.0)
                # s_b >= s_a + ct_a - M (2 - o - z)   ->  s_b - s_a - ct_a - M o - M z >= -2M
                c1 = {s[b_]: 1.0, s[a_]: -1.0, o: -H, z: -H}
                for d in range(D):
                    if allowed[a_, d]:
                        c1[x[a_, d]] = c1.get(x[a_, d], 0.0) - ctu[a_, d]
                R.row(c1, lo=-2 * H)
                # s_a >= s_b + ct_b - M (1 + o - z)  ->  s_a - s_b - ct_b + M o - M z >= -M
                c2 = {s[a_]: 1.0, s[b_]: -1.0, o: H, z: -H}
                for d in range(D):
                    if allowed[b_, d]:
                        c2[x[b_, d]] = c2.get(x[b_, d], 0.0) - ctu[b_, d]
                R.row(c2, lo=-H)
                if inc is not None:
                    same = inc.assignment[a_] == inc.assignment[b_]
                    R.start[z] = float(same)
                    R.start[o] = float(inc.start[a_] <= inc.start[b_])
            if inc is not None:
                for b in range(B):
                    R.start[s[b]] = min(float(inc.start[b]) / tau, H)
                R.start[L] = min(inc.latency_s / tau, H)
            if w.get("latency"):
                _add(obj, L, w["latency"] * tau)
            if "latency_s" in p.constraints:
                R.ub[L] = min(R.ub[L], p.constraints["latency_s"] * (1 + TOLERANCE) / tau)
        self._v_L, self._v_H = L, H

    def _period(self) -> None:
        """The model's part: period."""
        p, inc = self.p, self.inc
        B, D, R, x, y = self._v_B, self._v_D, self._v_R, self._v_x, self._v_y
        ct, period, tau, w, obj = self._v_ct, self._v_period, self._v_tau, self._v_w, self._v_obj
        allowed = self._v_allowed
        # ---- period
        if period:
            T = R.var("period", 0.0)
            for d in range(D):
                coefs = {x[b, d]: -ct[b, d] / tau for b in range(B) if allowed[b, d]}
                if coefs:
                    coefs[T] = 1.0
                    R.row(coefs, lo=0.0)
            links: dict[tuple[int, int], dict[int, float]] = {}
            for (k, d1, d2), var in y.items():
                if d1 != d2:
                    tx = p.edge_bytes[k] * p.inv_bandwidth[d1, d2] / tau
                    if tx > 0:
                        _add(links.setdefault((d1, d2), {}), var, tx)
            for b in p.input_blocks:
                for d in range(D):
                    if allowed[b, d] and d != p.source:
                        tx = p.in_bytes[b] * p.inv_bandwidth[p.source, d] / tau
                        if tx > 0:
                            _add(links.setdefault((p.source, d), {}), x[b, d], tx)
            for b in p.output_blocks:
                for d in range(D):
                    if allowed[b, d] and d != p.sink:
                        tx = p.out_bytes[b] * p.inv_bandwidth[d, p.sink] / tau
                        if tx > 0:
                            _add(links.setdefault((d, p.sink), {}), x[b, d], tx)
            for coefs in links.values():
                coefs = {k_: -v for k_, v in coefs.items()}
                coefs[T] = 1.0
                R.row(coefs, lo=0.0)
            cap = ws.period_cap(p)
            if cap is not None:
                R.ub[T] = cap / tau
            if inc is not None:
                R.start[T] = inc.period_s / tau
            if w.get("throughput"):
                _add(obj, T, w["throughput"] * tau)

    def _energy(self) -> None:
        """The model's part: energy."""
        p, inc = self.p, self.inc
        B, D, R, x, y = self._v_B, self._v_D, self._v_R, self._v_x, self._v_y
        ct, energy, tau, eps, w = self._v_ct, self._v_energy, self._v_tau, self._v_eps, self._v_w
        obj, L, H, allowed = self._v_obj, self._v_L, self._v_H, self._v_allowed
        # ---- energy
        if energy:
            E = R.var("energy", 0.0)
            coefs = {E: 1.0}
            for (b, d), var in x.items():
                e = p.node_energy[b, d]
                if not p.preds[b] and d != p.source:
                    e += p.radio_power[p.source, d] * p.in_bytes[b] * p.inv_bandwidth[p.source, d]
                if not p.succs[b] and d != p.sink:
                    e += p.radio_power[d, p.sink] * p.out_bytes[b] * p.inv_bandwidth[d, p.sink]
                _add(coefs, var, -e / eps)
            for (k, d1, d2), var in y.items():
                if d1 != d2:
                    e = p.radio_power[d1, d2] * p.edge_bytes[k] * p.inv_bandwidth[d1, d2]
                    _add(coefs, var, -e / eps)
            if p.count_idle and L is not None:
                for d in range(D):
                    blocks = [b for b in range(B) if allowed[b, d]]
                    if p.power_idle[d] <= 0 or not blocks:
                        continue
                    used = R.var(f"used_{d}", 0, 1)
                    ul = R.var(f"ul_{d}", 0, H)
                    for b in blocks:
                        R.row({used: 1.0, x[b, d]: -1.0}, lo=0.0)
                    R.row({ul: 1.0, L: -1.0, used: -H}, lo=-H)   # ul >= L - H (1 - used)
                    _add(coefs, ul, -p.power_idle[d] * tau / eps)
                    for b in blocks:
                        _add(coefs, x[b, d], p.power_idle[d] * ct[b, d] / eps)
                    if inc is not None:
                        u_ = bool(np.any(inc.assignment == d))
                        R.start[used] = float(u_)
                        R.start[ul] = min(inc.latency_s / tau, H) if u_ else 0.0
            R.row(coefs, lo=0.0)   # E >= the energy expression
            if "energy_j" in p.constraints:
                R.ub[E] = p.constraints["energy_j"] * (1 + TOLERANCE) / eps
            if inc is not None:
                R.start[E] = inc.energy_j / eps
            if w.get("energy"):
                _add(obj, E, w["energy"] * eps)

    def read_plan(self, values: np.ndarray):
        p = self.p
        a = np.full(p.n_blocks, -1, dtype=np.int64)
        best = np.full(p.n_blocks, -1.0)
        for (b, d), var in self.x.items():
            if values[var] > best[b]:
                best[b], a[b] = values[var], d
        if np.any(a < 0):
            return None, None
        order = None
        if self.s is not None:
            order = ws.orders_from_starts(p, a, np.array([values[v] for v in self.s]))
        return a, order

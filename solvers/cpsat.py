"""`cpsat`: assignment plus per-device scheduling with OR-Tools CP-SAT, all objectives.

Model (integers in per-problem units, see `solvers._scale`; every quantity rounded down so
that the model is a relaxation and its proven bound is valid for the real problem):

* ``x[b,d]`` boolean for every allowed (block, device) pair (pins and ``allowed_devices``
  are in ``problem.allowed``); exactly one per block.
* memory: ``sum_b params_b x[b,d] + peak_d <= memory_d`` with ``peak_d >= activation_b x[b,d]``.
* unreachable pairs: ``x[u,d1] + x[v,d2] <= 1`` for every edge whose ends cannot talk.
* symmetry between identical devices ``d_1 < d_2 < ...`` (``problem.identical_device_groups``):
  the lowest-index block on ``d_{i+1}`` comes after the lowest-index block on ``d_i``
  (prefix booleans ``h[b,d]`` = "d holds a block of index <= b").
* latency (when the objective, a constraint or idle energy needs it): a start ``s_b`` and,
  for each allowed device, an optional interval of the block's compute time present iff
  ``x[b,d]``; ``no_overlap`` per device; for an edge ``u -> v`` and each device ``d1`` of u:
  ``s_v >= s_u + ct[u,d1] + sum_d2 transfer[d1,d2] x[v,d2]`` enforced by ``x[u,d1]`` (the
  delay depends on both ends); inputs wait for ``source``; the makespan ``L`` waits for each
  output's delivery to ``sink``; ``L >= load_d`` (redundant, helps the bound).
* throughput: ``T >= load_d`` for every device and ``T >=`` every directed link's load, the
  latter through pair booleans ``y[k,d1,d2] >= x[u,d1] + x[v,d2] - 1``.
* energy: compute energy linear in ``x``; radio energy of an edge ``en_k >= sum_d2
  e[d1,d2] x[v,d2]`` enforced by ``x[u,d1]``; input/output radio linear in ``x``; with
  ``count_idle``: ``z_d >= L - load_d`` enforced by "d holds a block", ``z_d >= 0``, paying
  ``power_idle_d * z_d``.
* objective: the integer weighted sum of the metrics; constraints bound the same variables.
* shared media (SPEC 5a, `_media`): every transfer (input, edge, output) that can be on a
  medium gets a send start ``ts_t``; for each device pair (d1, d2) of that medium a
  presence literal (``x[u,d1] and x[v,d2]``; the source's or sink's side is fixed) and an
  optional interval of ``n / bandwidth`` at ``ts_t``, all of one medium under one
  ``no_overlap``; when present, ``ts_t >=`` the producer's end and the consumer starts (or
  ``L`` waits) at ``ts_t + n / bandwidth + latency``. The period gets ``T >=`` each
  medium's load. The sending order read back is ``ts`` (ties: transfer index).

* split choices (SPEC 6, `_solve_over_choices`): the model is built on the union of every
  expansion (`Problem.split_union`: every way's shards, every pair of ways' edges); one
  boolean ``z[b,w]`` per split block and way, exactly one per block; a shard's
  ``sum_d x[shard,d] = z[b,w]`` (absent: on no device), so its optional intervals, memory,
  loads, energy and transfers are present only with its way (an edge's precedence is
  enforced by its producer's ``x`` and its consumer's ``z``; makespan terms by the output's
  ``z``; the pair linearisation is left out for edges at a choice); shards of one way are
  interchangeable, so shard k's device index is at most shard k+1's (`_split_symmetry`).
  Bounds over every choice (`placement.bounds`). Shared media go into the union model as
  they are (`_media` on the union: a shard not chosen has no transfers, its optional
  intervals are absent); the medium order is read back through `_union_ts`. With scenarios
  the choices are enumerated instead (`_solve_by_enumeration`: this model on each
  expansion, the best plan, the least bound), refused above `ENUMERATE_CHOICES_MAX` choices.

Warm start: the best heuristic plan (`solvers._warmstart`) is hinted, bounds the latency
horizon, and is returned if CP-SAT finds nothing better (by the evaluator's value).
"""

from __future__ import annotations

import math
import time

import numpy as np

from placement import bounds
from placement.method import Candidate, Context, Method, Option
from placement.plan import Status
from placement.problem import Problem

from . import _warmstart as ws
from ._scale import DEFAULT_PRECISION, choose_units, floor_units

#: largest edges x devices^2 for which the latency model also gets the pair linearisation.
LP_PAIRS_MAX = 80_000
#: seconds kept back from the limit for reading the solution back and re-scoring it.
READ_BACK_S = 0.3


class CpSat(Method):
    name = "cpsat"
    kind = "exact"
    guarantee = ("optimal when it says so (proven bound of a rounded-down relaxation, valid for "
                 "the real problem); else best plan and proven bound at the time limit")
    summary = "OR-Tools CP-SAT: assignment, optional intervals and no-overlap per device, all objectives"
    #: scenarios (SPEC 10): `_CpSatModel._scenarios` (one schedule per scenario, shared order);
    #: media (5a): `_CpSatModel._media`. Not both at once (the loader refuses that).
    #: split choices (SPEC 6): `_solve_over_choices` (the union model; with scenarios or media,
    #: one model per choice).
    features = frozenset({"scenarios", "media", "split_choice"})
    options = (
        Option("precision", float, DEFAULT_PRECISION, "worst-case relative rounding error of the integer model",
               low=1e-9, high=0.5),
        Option("workers", int, 2, "CP-SAT search workers", low=1, high=64),
        Option("warm", bool, True, "run the heuristics for a warm start"),
        Option("lp_pairs", bool, None, "add the pair linearisation of transfers for the LP (none: when "
               f"edges x devices^2 <= {LP_PAIRS_MAX:,})"),
        Option("params", str, None, "extra CP-SAT parameters 'key:value ...', e.g. 'linearization_level:2'"),
    )

    def warm_up(self) -> None:
        ws.warm_up()

    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        if "split_choice" in problem.features:
            return self._solve_over_choices(problem, ctx)
        t0 = time.monotonic()
        p = problem
        warm = ws.warm_start(p, ctx) if self.option(ctx, "warm") else ws.WarmStart(None)
        inc = warm.best
        if ctx.expired():                   # e.g. --time-limit 0: the best so far, at once
            return ws.stopped_early(inc, {"warm_start": warm.source or None, "warm_tried": warm.tried})
        done = ws.proven_by_the_bound(p, inc, {"warm_start": warm.source or None, "warm_tried": warm.tried})
        if done is not None:                # nothing left to prove: no model to build
            return done
        precision = self.option(ctx, "precision")
        model_t0 = time.monotonic()
        base = {"warm_start": warm.source or None, "warm_tried": warm.tried}
        try:
            m = _CpSatModel(p, inc, precision, self.option(ctx, "lp_pairs"),
                            deadline=ctx.deadline - READ_BACK_S)
        except BuildTimeout:
            return ws.stopped_early(inc, {**base, "model_build_s": round(time.monotonic() - model_t0, 3)})
        model_s = time.monotonic() - model_t0
        # loading and presolving a model is not interruptible: one too large for the time left
        # is not handed to CP-SAT (measured: 1.7e6 variables took 16 s to load)
        big = ws.too_large(inc, {**base, "model_build_s": round(model_s, 3)}, len(m.model.proto.variables),
                           LOAD_SECONDS_PER_VARIABLE, ctx.time_left() - READ_BACK_S, "cpsat")
        if big is not None:
            return big
        stats = {"warm_start": warm.source or None, "warm_value": None if inc is None else inc.value,
                 "warm_tried": warm.tried, "warm_start_s": round(warm.seconds, 3),
                 "model_build_s": round(model_s, 3), **m.units.as_dict(),
                 "horizon_s": m.horizon_s, "variables": len(m.model.proto.variables),
                 "constraints": len(m.model.proto.constraints)}
        from ortools.sat.python import cp_model

        solver = cp_model.CpSolver()
        left = ctx.time_left() - READ_BACK_S
        solver.parameters.max_time_in_seconds = max(0.05, left) if math.isfinite(left) else 1e9
        solver.parameters.num_workers = self.option(ctx, "workers")
        solver.parameters.random_seed = int(ctx.seed)
        # OR-Tools 9.15: the inclusion-detection presolve turned a model with idle energy into a
        # wrong "optimal" (a stretched schedule, objective 47x the true optimum, bound above it;
        # tests/test_exact.py seed 22 against brute). Off: the tests pass and the bound is honest.
        solver.parameters.presolve_inclusion_work_limit = 0
        if self.option(ctx, "params"):
            _set_params(solver.parameters, self.option(ctx, "params"))
        cb = _Collector(m, ctx)
        status = _solve_interruptibly(solver, m.model, cb, ctx.deadline - READ_BACK_S / 2)
        stats.update({"solver_status": solver.status_name(status), "wall_s": round(solver.wall_time, 3),
                      "branches": solver.num_branches, "conflicts": solver.num_conflicts,
                      "objective_units": solver.objective_value if cb.solutions else None,
                      "bound_units": solver.best_objective_bound,
                      "solutions": cb.count})
        bound = None
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) or (status == cp_model.UNKNOWN and m.has_objective):
            b = solver.best_objective_bound
            if math.isfinite(b):
                bound = max(0.0, (b - m.idle_slack) * m.units.r_obj / m.obj_div * (1 - 1e-9))
        if status == cp_model.INFEASIBLE:
            if inc is not None:  # cannot happen for a relaxation; say so rather than lie
                return Candidate(inc.assignment, inc.order, status=Status.FEASIBLE, stats=stats,
                                 message="cpsat: model reported infeasible although a plan exists")
            return Candidate(None, status=Status.INFEASIBLE, stats=stats, message=(
                "cpsat proved that no plan meets " + _what(p)))
        best = ws.best_plan(p, cb.plans(), inc)
        stats["total_s"] = round(time.monotonic() - t0, 3)
        if best is None:
            return Candidate(None, status=Status.NO_SOLUTION, bound=bound, stats=stats,
                             message=f"cpsat: no plan found ({solver.status_name(status)})")
        if status == cp_model.OPTIMAL:
            st = Status.OPTIMAL
            if not m.has_objective:
                bound = None
        else:
            st = Status.TIME_LIMIT
        return Candidate(best.assignment, best.order, status=st, bound=bound, stats=stats,
                         medium_order=[list(o) for o in best.medium_order] or None)


    # ------------------------------------------------------------- split choices
    def _solve_over_choices(self, p: Problem, ctx: Context) -> Candidate:
        """Exact over the split choices (module docstring): the model of the union of every
        expansion, read back as a plan of the chosen expansion (``Candidate.split``)."""
        if p.scenarios:
            return self._solve_by_enumeration(p, ctx)
        from ortools.sat.python import cp_model

        t0 = time.monotonic()
        warm = ws.warm_start(p, ctx) if self.option(ctx, "warm") else ws.WarmStart(None)
        inc = warm.best
        inc_choice = dict(p.split) if warm.split is None else dict(warm.split)
        base = {"warm_start": warm.source or None, "warm_tried": warm.tried,
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
        inc_u = _UnionIncumbent.of(p, U, inc, inc_choice)
        model_t0 = time.monotonic()
        try:
            m = _CpSatModel(U, inc_u, self.option(ctx, "precision"), self.option(ctx, "lp_pairs"),
                            deadline=ctx.deadline - READ_BACK_S, split_of=p)
        except BuildTimeout:
            return chosen(ws.stopped_early(inc, {**base, "model_build_s": round(time.monotonic() - model_t0, 3)}))
        model_s = time.monotonic() - model_t0
        big = ws.too_large(inc, {**base, "model_build_s": round(model_s, 3)}, len(m.model.proto.variables),
                           LOAD_SECONDS_PER_VARIABLE, ctx.time_left() - READ_BACK_S, "cpsat")
        if big is not None:
            return chosen(big)
        stats = {**base, "warm_value": None if inc is None else inc.value,
                 "warm_start_s": round(warm.seconds, 3), "model_build_s": round(model_s, 3),
                 **m.units.as_dict(), "horizon_s": m.horizon_s,
                 "union_blocks": U.n_blocks, "variables": len(m.model.proto.variables),
                 "constraints": len(m.model.proto.constraints)}
        solver = cp_model.CpSolver()
        left = ctx.time_left() - READ_BACK_S
        solver.parameters.max_time_in_seconds = max(0.05, left) if math.isfinite(left) else 1e9
        solver.parameters.num_workers = self.option(ctx, "workers")
        solver.parameters.random_seed = int(ctx.seed)
        solver.parameters.presolve_inclusion_work_limit = 0      # see `solve`
        if self.option(ctx, "params"):
            _set_params(solver.parameters, self.option(ctx, "params"))
        cb = _Collector(m, ctx)
        status = _solve_interruptibly(solver, m.model, cb, ctx.deadline - READ_BACK_S / 2)
        stats.update({"solver_status": solver.status_name(status), "wall_s": round(solver.wall_time, 3),
                      "branches": solver.num_branches, "conflicts": solver.num_conflicts,
                      "bound_units": solver.best_objective_bound, "solutions": cb.count})
        bound = None
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) or (status == cp_model.UNKNOWN and m.has_objective):
            b = solver.best_objective_bound
            if math.isfinite(b):
                bound = max(0.0, (b - m.idle_slack) * m.units.r_obj / m.obj_div * (1 - 1e-9))
        if status == cp_model.INFEASIBLE:
            if inc is not None:
                return chosen(Candidate(inc.assignment, inc.order, status=Status.FEASIBLE, stats=stats,
                                        message="cpsat: model reported infeasible although a plan exists"))
            return Candidate(None, status=Status.INFEASIBLE, stats=stats, message=(
                "cpsat proved that no plan of any split choice meets " + _what(p)))
        best, best_choice = inc, inc_choice
        for a_u, s_u, ts_u in cb.solutions:
            choice = p.union_choice(U, a_u)
            idx = p.from_union(U, choice)
            q = p.expand(choice)
            a = a_u[idx]
            if (a < 0).any():        # cannot happen: every chosen shard is placed
                continue
            order = ws.orders_from_starts(q, a, s_u[idx]) if s_u is not None else None
            plan = (a, order) if ts_u is None else (a, order, _medium_order(q, a, _union_ts(U, q, idx, ts_u)))
            ev = ws.best_plan(q, [plan], None)
            if ev is not None and (best is None or ev.value < best.value * (1 - 1e-12)):
                best, best_choice = ev, choice
        stats["total_s"] = round(time.monotonic() - t0, 3)
        if best is None:
            return Candidate(None, status=Status.NO_SOLUTION, bound=bound, stats=stats,
                             message=f"cpsat: no plan found ({solver.status_name(status)})")
        st = Status.OPTIMAL if status == cp_model.OPTIMAL else Status.TIME_LIMIT
        if st == Status.OPTIMAL and not m.has_objective:
            bound = None
        return Candidate(best.assignment, best.order, status=st, bound=bound, stats=stats,
                         medium_order=[list(o) for o in best.medium_order] or None, split=best_choice)

    def _solve_by_enumeration(self, p: Problem, ctx: Context) -> Candidate:
        """Split choices with scenarios: this model on each expansion in turn (each
        a problem with its choice fixed), a share of the time left each; the best plan by
        the evaluator's value; the least of the expansions' bounds (valid over every choice).
        Above `ENUMERATE_CHOICES_MAX` choices: refused, naming the combination."""
        from placement.errors import InputError

        n = p.n_split_combinations
        if n > ENUMERATE_CHOICES_MAX:
            raise InputError("cpsat: split choices with scenarios are solved one choice at a time, "
                             f"and this problem has {n} choices (limit {ENUMERATE_CHOICES_MAX}): fix "
                             "some blocks' ways, or use brute or a heuristic")
        choices = list(p.split_combinations())
        best = None          # (value, choice, candidate)
        bounds_, all_optimal, stats = [], True, {"split_choices": n, "per_choice": []}
        from placement.evaluator import evaluate as _evaluate
        for i, choice in enumerate(choices):
            if ctx.expired():
                all_optimal = False
                bounds_.append(None)
                break
            q = p.expand(choice).fixed_split()
            cand = self.solve(q, ctx.sub(1.0 / (n - i)))
            stats["per_choice"].append({"split": choice, "status": cand.status.value,
                                        "bound": cand.bound})
            if cand.status not in (Status.OPTIMAL, Status.INFEASIBLE):
                all_optimal = False
            # this expansion's bound: the model's, else (e.g. the warm start met it) the cheap one
            own = max(cand.bound if cand.bound is not None else -math.inf, q.lower_bound())
            bounds_.append(own if cand.status != Status.INFEASIBLE else math.inf)
            if cand.assignment is None:
                continue
            ev = _evaluate(q, cand.assignment, cand.order, cand.medium_order)
            if ev.feasible and (best is None or ev.value < best[0]):
                best = (ev.value, choice, cand)
        complete = len(bounds_) == n and all(b is not None for b in bounds_)
        bound = min(bounds_) if complete else None
        if bound is not None and not math.isfinite(bound):
            bound = None
        if best is None:
            infeasible = complete and all(c["status"] == "infeasible" for c in stats["per_choice"])
            return Candidate(None, status=Status.INFEASIBLE if infeasible else Status.NO_SOLUTION,
                             bound=None if infeasible else bound, stats=stats,
                             message="cpsat: no plan of any split choice"
                             + (" (each proven infeasible)" if infeasible else ""))
        value, choice, cand = best
        st = Status.OPTIMAL if all_optimal and complete else Status.TIME_LIMIT
        return Candidate(cand.assignment, cand.order, status=st, bound=bound, stats=stats,
                         medium_order=cand.medium_order, split=choice,
                         message=f"cpsat: {n} split choices solved one at a time (scenarios)")


#: most split choices `CpSat._solve_by_enumeration` solves one at a time (scenarios).
ENUMERATE_CHOICES_MAX = 16


class _UnionIncumbent:
    """The warm start as a plan of the union of every expansion (-1: a shard not chosen)."""

    def __init__(self, assignment, start, value, latency_s, choice, period_s=None, energy_j=None):
        self.assignment, self.start, self.value, self.latency_s = assignment, start, value, latency_s
        self.choice = choice
        self.period_s, self.energy_j = period_s, energy_j

    @classmethod
    def of(cls, p, U, inc, choice) -> "_UnionIncumbent | None":
        """Warm start ``inc`` (a plan of ``p.expand(choice)``) placed on union ``U`` (cpsat and
        milp over split choices); None without one."""
        if inc is None:
            return None
        idx = p.from_union(U, choice)
        a_u = np.full(U.n_blocks, -1, dtype=np.int64)
        a_u[idx] = inc.assignment
        start_u = np.zeros(U.n_blocks)
        start_u[idx] = inc.start
        return cls(a_u, start_u, inc.value, inc.latency_s, choice, inc.period_s, inc.energy_j)


#: CP-SAT's load and presolve time per model variable (1.7e6 variables, 6.8e6 constraints: 16 s)
LOAD_SECONDS_PER_VARIABLE = 1.0e-5


def _solve_interruptibly(solver, model, callback, deadline: float = math.inf):
    """``solver.solve`` in a worker thread, so that the main thread keeps running Python and a
    Ctrl-C (`placement.interrupt`) can stop the search: CP-SAT then returns its best solution
    as at its time limit. CP-SAT's own SIGINT handler is off (it swallowed the signal).
    Past ``deadline`` (``time.monotonic()``) the search is stopped as well: CP-SAT's own
    limit counts from its start and, on a loaded machine, was seen to run over by 1.5 s."""
    import threading

    from placement import interrupt

    solver.parameters.catch_sigint_signal = False
    out: dict = {}

    def run():
        try:
            out["status"] = solver.solve(model, callback)
        except BaseException as exc:  # re-raised in the caller's thread
            out["error"] = exc

    t = threading.Thread(target=run, name="cpsat-solve", daemon=True)
    t.start()
    stopped = False
    while t.is_alive():
        t.join(0.05)
        if not stopped and (interrupt.requested() or time.monotonic() > deadline):
            solver.stop_search()
            stopped = True
    if "error" in out:
        raise out["error"]
    return out["status"]


def _set_params(params, text: str) -> None:
    """``key:value`` pairs separated by spaces or commas; ``a|b`` for a repeated field."""
    for item in text.replace(",", " ").split():
        key, _, value = item.partition(":")
        if "|" in value:
            getattr(params, key).extend(value.split("|"))
            continue
        current = getattr(params, key)
        if isinstance(current, bool):
            setattr(params, key, value.lower() in ("1", "true"))
        elif isinstance(current, int):
            setattr(params, key, int(value))
        elif isinstance(current, float):
            setattr(params, key, float(value))
        else:
            setattr(params, key, value)


def _what(p: Problem) -> str:
    parts = ["memory", "links"]
    if p.constraints:
        parts.append("the constraints " + ", ".join(f"{k} {v:g}" for k, v in p.constraints.items()))
    return ", ".join(parts) + " (every plan breaks one)"


class _Collector:
    """Keeps the last few solutions (assignment, starts) and reports progress."""

    def __new__(cls, m: "_CpSatModel", ctx: Context):
        from ortools.sat.python import cp_model

        class Collector(cp_model.CpSolverSolutionCallback):
            def __init__(self) -> None:
                super().__init__()
                self.solutions: list[tuple[np.ndarray, np.ndarray | None]] = []
                self.count = 0

            def on_solution_callback(self) -> None:
                self.count += 1
                a = np.full(m.p.n_blocks, -1, dtype=np.int64)
                for (b, d), var in m.x.items():
                    if self.boolean_value(var):
                        a[b] = d
                s = None
                if m.s is not None:
                    s = np.array([self.value(v) for v in m.s], dtype=float)
                ts = None
                if m.ts:
                    ts = {t: self.value(v) for t, v in m.ts.items()}
                self.solutions.append((a, s, ts))
                del self.solutions[:-4]
                if m.has_objective:
                    ctx.report(self.objective_value * m.units.r_obj / m.obj_div,
                               self.best_objective_bound * m.units.r_obj / m.obj_div)

            def plans(self):
                out = []
                for a, s, ts in self.solutions:
                    order = ws.orders_from_starts(m.p, a, s) if s is not None else None
                    out.append((a, order, _medium_order(m.p, a, ts) if ts is not None else None))
                return out

        return Collector()


class BuildTimeout(Exception):
    """The time limit came while the model was being built."""


class _CpSatModel:
    """The CP-SAT model of one problem (module docstring), with the variables to read back."""

    def __init__(self, p: Problem, inc, precision: float, lp_pairs: bool | None = None,
                 deadline: float = math.inf, split_of: Problem | None = None):
        """Data, then one builder per part of the model (module docstring), in order.
        Raises `BuildTimeout` past ``deadline`` (``time.monotonic()``). ``split_of``: ``p``
        is that problem's `Problem.split_union` (split choices, `_split_ways`); its bounds
        (over every choice) then stand for ``p``'s."""
        from ortools.sat.python import cp_model

        self.p, self.inc, self.deadline = p, inc, deadline
        self.split_of = split_of
        self.bp = split_of if split_of is not None else p     # whose bounds the model may use
        self.z: dict = {}
        D = p.n_devices
        self.w = {k: v for k, v in p.objective.weights.items() if v}
        self.units = choose_units(p, None if inc is None else inc.value, precision, bound_problem=self.bp)
        self.model = cp_model.CpModel()
        #: add the pair linearisation for the LP when it stays small (edges x devices^2)
        self.lp_pairs = lp_pairs if lp_pairs is not None else p.n_edges * D * D <= LP_PAIRS_MAX
        self.idle_slack = 0   # objective units the idle-cost rounding may add (given back in the bound)
        self.s = self.horizon_s = self.L = self.H = self.T = None
        self.ts: dict = {}
        self.objective: list = []
        self._split_ways()
        self._assignment()
        self._memory()
        self._links()
        self._symmetry()
        self._split_symmetry()
        self.obj_div = 1      # objective units per r_obj (scenarios: probabilities as integers)
        if p.scenarios:
            self._scenarios()   # SPEC 10: its own builder (one schedule per scenario)
        else:
            self._latency()
            self._period()
            if p.media:
                self._media()
            self._energy()
        self.has_objective = bool(self.objective)
        if self.objective:
            self.model.minimize(sum(self.objective))
        self._hint()

    def _tick(self) -> None:
        """Model building is under the clock: past the deadline, stop building (the caller
        returns the warm start's plan)."""
        if time.monotonic() > self.deadline:
            raise BuildTimeout

    def _assignment(self) -> None:
        """x[b, d]: block b on device d, exactly one allowed device per block."""
        p, mdl = self.p, self.model
        B, D = p.n_blocks, p.n_devices
        allowed = p.allowed
        self.x = x = {(b, d): mdl.new_bool_var(f"x[{b},{d}]")
                      for b in range(B) for d in range(D) if allowed[b, d]}
        on = [[x[b, d] for d in range(D) if allowed[b, d]] for b in range(B)]
        for b in range(B):
            present = self._present(b)
            if present is None:
                mdl.add_exactly_one(on[b])
            else:                       # a shard of a way: on one device iff its way is chosen
                mdl.add(sum(on[b]) == present)

    def _present(self, b: int):
        """The literal "block b runs" (a shard's way boolean ``z``), None for a block that
        always runs."""
        if not self.z:
            return None
        mem = self.p.union_members[b]
        return None if mem is None else self.z[mem[0], mem[1]]

    def _split_ways(self) -> None:
        """Split choices: ``z[b,w]`` for every split block with several ways and each of its
        ways, exactly one per block (hinted with the warm start's choice)."""
        if self.split_of is None:
            return
        mdl, sp = self.model, self.split_of
        for b, ways in sp.split_options.items():
            if len(ways) < 2:
                continue
            zs = [mdl.new_bool_var(f"z[{b},{w}]") for w in ways]
            self.z.update({(b, w): z for w, z in zip(ways, zs)})
            mdl.add_exactly_one(zs)
            if self.inc is not None:
                for w, z in zip(ways, zs):
                    mdl.add_hint(z, int(self.inc.choice.get(b) == w))

    def _split_symmetry(self) -> None:
        """The shards of one way are interchangeable (same costs, same edges to every shard of
        their neighbours): shard k's device index is at most shard k+1's. Any plan becomes
        one that satisfies it by renumbering the shards, which keeps the devices' first-use
        order (the device symmetry of `_symmetry`) since a way's shards have consecutive indices."""
        if not self.z:
            return
        mdl, x, D = self.model, self.x, self.p.n_devices
        groups: dict[tuple[str, int], list[int]] = {}
        for b, mem in enumerate(self.p.union_members):
            if mem is not None and mem[1] > 1:
                groups.setdefault((mem[0], mem[1]), []).append(b)
        for members in groups.values():
            for b1, b2 in zip(members, members[1:]):
                lhs = [d * x[b1, d] for d in range(1, D) if (b1, d) in x]
                rhs = [d * x[b2, d] for d in range(1, D) if (b2, d) in x]
                mdl.add(sum(lhs) <= sum(rhs))

    def _memory(self) -> None:
        """Weights plus the largest working memory per device, within its cap."""
        p, mdl, x, allowed = self.p, self.model, self.x, self.p.allowed
        B, D = self.p.n_blocks, self.p.n_devices
        # ---- memory (bytes, rounded down: a relaxation)
        params = np.floor(p.params).astype(np.int64)
        act = np.floor(p.activation).astype(np.int64)
        for d in range(D):
            blocks = [b for b in range(B) if allowed[b, d]]
            if not blocks:
                continue
            cap = int(math.floor(p.memory_cap[d]))
            if params[blocks].sum() + act[blocks].max() <= cap:
                continue  # everything fits: no constraint needed
            peak = mdl.new_int_var(0, int(act[blocks].max()), f"peak[{d}]")
            for b in blocks:
                if act[b] > 0:
                    mdl.add(peak >= int(act[b]) * x[b, d])
            mdl.add(sum(int(params[b]) * x[b, d] for b in blocks) + peak <= cap)

    def _links(self) -> None:
        """No transfer over a pair without a link (edges, input, output)."""
        p, mdl, x, allowed = self.p, self.model, self.x, self.p.allowed
        D = self.p.n_devices
        # ---- links that do not exist
        for k in range(p.n_edges):
            self._tick()
            uu, vv = int(p.edge_src[k]), int(p.edge_dst[k])
            for d1 in range(D):
                for d2 in range(D):
                    if allowed[uu, d1] and allowed[vv, d2] and not p.reachable[d1, d2]:
                        mdl.add_bool_or([~x[uu, d1], ~x[vv, d2]])
        for b in p.input_blocks:
            for d in range(D):
                if allowed[b, d] and not p.reachable[p.source, d]:
                    mdl.add(x[b, d] == 0)
        for b in p.output_blocks:
            for d in range(D):
                if allowed[b, d] and not p.reachable[d, p.sink]:
                    mdl.add(x[b, d] == 0)

    def _symmetry(self) -> None:
        """Identical devices used in order (lexicographic prefix booleans)."""
        p, mdl, x, allowed = self.p, self.model, self.x, self.p.allowed
        B = self.p.n_blocks
        # ---- symmetry between identical devices
        self.symmetry_groups = p.identical_device_groups()
        for group in self.symmetry_groups:
            group = sorted(group)
            prefix = {}
            for d in group[:-1]:
                prev = None
                for b in range(B):
                    if not allowed[b, d]:
                        h = prev
                    else:
                        h = mdl.new_bool_var(f"h[{b},{d}]")
                        mdl.add_implication(x[b, d], h)
                        if prev is not None:
                            mdl.add_implication(prev, h)
                            mdl.add_bool_or([~h, prev, x[b, d]])
                        else:
                            mdl.add_implication(h, x[b, d])
                    prefix[b, d] = h
                    prev = h
            for d_prev, d_next in zip(group, group[1:]):
                for b in range(B):
                    if not allowed[b, d_next]:
                        continue
                    earlier = prefix.get((b - 1, d_prev)) if b > 0 else None
                    if earlier is None:
                        mdl.add(x[b, d_next] == 0)
                    else:
                        mdl.add_implication(x[b, d_next], earlier)

    def _latency(self) -> None:
        """Start times, optional intervals, no-overlap per device, precedence with transfers, L."""
        p, mdl, x, u, inc, objective, allowed = (self.p, self.model, self.x,
                                                 self.units, self.inc, self.objective, self.p.allowed)
        B, D = self.p.n_blocks, self.p.n_devices
        # ---- latency: schedule
        L = H = None
        if p.needs_schedule():
            r = u.r_lat
            h = (ws.latency_horizon(self.bp, inc, serial=ws.serial_horizon(p)) if self.z
                 else ws.latency_horizon(p, inc))
            self.horizon_s = h
            H = int(floor_units(h, r))
            ct = np.where(allowed, p.compute_time, 0.0)
            ct_u = floor_units(ct, r)
            self.s = s = [mdl.new_int_var(0, H, f"s[{b}]") for b in range(B)]
            per_device = [[] for _ in range(D)]
            for (b, d), var in x.items():
                if ct_u[b, d] > 0:
                    per_device[d].append(mdl.new_optional_fixed_size_interval_var(
                        s[b], int(ct_u[b, d]), var, f"i[{b},{d}]"))
                    mdl.add(s[b] + int(ct_u[b, d]) <= H).only_enforce_if(var)
            for d in range(D):
                if len(per_device[d]) > 1:
                    mdl.add_no_overlap(per_device[d])
            for b in p.input_blocks:
                arr = floor_units(np.where(np.isfinite(p.input_arrival(b)), p.input_arrival(b), 0.0), r)
                terms = [int(arr[d]) * x[b, d] for d in range(D) if allowed[b, d] and arr[d] > 0]
                if terms:
                    mdl.add(s[b] >= sum(terms))
            for k in range(p.n_edges):
                self._tick()
                uu, vv = int(p.edge_src[k]), int(p.edge_dst[k])
                tt = p.transfer_matrix(p.edge_bytes[k])
                tt_u = floor_units(np.where(np.isfinite(tt), tt, 0.0), r)
                pv = self._present(vv)
                for d1 in range(D):
                    if not allowed[uu, d1]:
                        continue
                    terms = [int(tt_u[d1, d2]) * x[vv, d2] for d2 in range(D)
                             if d2 != d1 and allowed[vv, d2] and tt_u[d1, d2] > 0]
                    mdl.add(s[vv] >= s[uu] + int(ct_u[uu, d1]) + sum(terms)).only_enforce_if(
                        [x[uu, d1]] if pv is None else [x[uu, d1], pv])
                if self.lp_pairs and pv is None and self._present(uu) is None:
                    # the MILP's transportation linearisation, for CP-SAT's LP relaxation: pair
                    # booleans y with sum_d2 y[d1,d2] = x[u,d1], sum_d1 y[d1,d2] = x[v,d2], and
                    # a linear (not enforced) precedence through them
                    yk = {(d1, d2): mdl.new_bool_var(f"p[{k},{d1},{d2}]")
                          for d1 in range(D) for d2 in range(D)
                          if allowed[uu, d1] and allowed[vv, d2] and p.reachable[d1, d2]}
                    for d1 in range(D):
                        if allowed[uu, d1]:
                            mdl.add(sum(v for (a_, _), v in yk.items() if a_ == d1) == x[uu, d1])
                    for d2 in range(D):
                        if allowed[vv, d2]:
                            mdl.add(sum(v for (_, b_), v in yk.items() if b_ == d2) == x[vv, d2])
                    mdl.add(s[vv] >= s[uu] + sum(int(ct_u[uu, d]) * x[uu, d] for d in range(D) if allowed[uu, d])
                            + sum(int(tt_u[d1, d2]) * v for (d1, d2), v in yk.items() if d1 != d2 and tt_u[d1, d2] > 0))
                    if inc is not None:
                        for (d1, d2), v in yk.items():
                            mdl.add_hint(v, int(inc.assignment[uu] == d1 and inc.assignment[vv] == d2))
            lo = int(min(floor_units(bounds.latency_bound(self.bp), r), H))
            L = mdl.new_int_var(lo, H, "latency")
            for b in p.output_blocks:
                dv = p.output_delivery(b)
                out_u = floor_units(np.where(np.isfinite(dv), dv, 0.0), r)
                c = mdl.add(L >= s[b] + sum(int(ct_u[b, d] + out_u[d]) * x[b, d]
                                            for d in range(D) if allowed[b, d]))
                if self._present(b) is not None:
                    c.only_enforce_if(self._present(b))
            for d in range(D):
                terms = [int(ct_u[b, d]) * x[b, d] for b in range(B) if allowed[b, d] and ct_u[b, d] > 0]
                if terms:
                    mdl.add(L >= sum(terms))
            if "latency_s" in p.constraints:
                mdl.add(L <= int(floor_units(p.constraint_cap("latency_s"), r)))
            if u.c_lat:
                objective.append(u.c_lat * L)
        self.L, self.H = L, H

    def _period(self) -> None:
        """The period: busiest device or directed link (pair booleans for link loads)."""
        p, mdl, x, u, w, objective, allowed = (self.p, self.model, self.x,
                                               self.units, self.w, self.objective, self.p.allowed)
        B, D = self.p.n_blocks, self.p.n_devices
        # ---- pair booleans (throughput link loads)
        if p.needs_period() or w.get("throughput"):
            r = u.r_per
            ctp = floor_units(np.where(allowed, p.compute_time, 0.0), r)
            upper = int(max(ctp.sum(axis=0).max(), 1))
            link_terms: dict[tuple[int, int], list] = {}
            link_max: list[int] = []
            for k in range(p.n_edges):
                self._tick()
                uu, vv = int(p.edge_src[k]), int(p.edge_dst[k])
                tx = floor_units(p.transmission_matrix(p.edge_bytes[k]), r)
                link_max.append(int(tx.max(initial=0)))
                for d1 in range(D):
                    for d2 in range(D):
                        if d1 == d2 or not (allowed[uu, d1] and allowed[vv, d2]) or tx[d1, d2] <= 0:
                            continue
                        y = mdl.new_bool_var(f"y[{k},{d1},{d2}]")
                        mdl.add_bool_or([~x[uu, d1], ~x[vv, d2], y])
                        link_terms.setdefault((d1, d2), []).append(int(tx[d1, d2]) * y)
            for b in p.input_blocks:
                tx = floor_units(p.transmission_matrix(p.in_bytes[b])[p.source], r)
                link_max.append(int(tx.max(initial=0)))
                for d in range(D):
                    if d != p.source and allowed[b, d] and tx[d] > 0:
                        link_terms.setdefault((p.source, d), []).append(int(tx[d]) * x[b, d])
            for b in p.output_blocks:
                tx = floor_units(p.transmission_matrix(p.out_bytes[b])[:, p.sink], r)
                link_max.append(int(tx.max(initial=0)))
                for d in range(D):
                    if d != p.sink and allowed[b, d] and tx[d] > 0:
                        link_terms.setdefault((d, p.sink), []).append(int(tx[d]) * x[b, d])
            upper += int(sum(link_max))
            cap = ws.period_cap(p)
            hi = int(floor_units(cap, r)) if cap is not None else None
            T = mdl.new_int_var(0, upper if hi is None else max(min(hi, upper), 0), "period")
            for d in range(D):
                terms = [int(ctp[b, d]) * x[b, d] for b in range(B) if allowed[b, d] and ctp[b, d] > 0]
                if terms:
                    mdl.add(T >= sum(terms))
            for terms in link_terms.values():
                mdl.add(T >= sum(terms))
            self.T = T
            if u.c_per:
                objective.append(u.c_per * T)

    def _energy(self) -> None:
        """Compute, radio and idle energy; the energy constraint."""
        p, mdl, x, u, w, objective, allowed = (self.p, self.model, self.x,
                                               self.units, self.w, self.objective, self.p.allowed)
        B, D = self.p.n_blocks, self.p.n_devices
        # ---- energy
        L, H = self.L, self.H
        if p.needs_energy() or w.get("energy"):
            r = u.r_en
            terms = []
            ec = floor_units(np.where(allowed, p.node_energy, 0.0), r)
            for (b, d), var in x.items():
                extra = 0.0
                if not p.preds[b] and d != p.source:
                    extra += p.radio_power[p.source, d] * p.in_bytes[b] * p.inv_bandwidth[p.source, d]
                if not p.succs[b] and d != p.sink:
                    extra += p.radio_power[d, p.sink] * p.out_bytes[b] * p.inv_bandwidth[d, p.sink]
                c = int(ec[b, d]) + int(floor_units(extra, r))
                if c > 0:
                    terms.append(c * var)
            for k in range(p.n_edges):
                self._tick()
                uu, vv = int(p.edge_src[k]), int(p.edge_dst[k])
                tx = p.transmission_matrix(p.edge_bytes[k])
                e = floor_units(p.radio_power * tx, r)
                np.fill_diagonal(e, 0)
                top = int(e[np.ix_(allowed[uu], allowed[vv])].max(initial=0))
                if top <= 0:
                    continue
                en = mdl.new_int_var(0, top, f"en[{k}]")
                for d1 in range(D):
                    if not allowed[uu, d1]:
                        continue
                    row = [int(e[d1, d2]) * x[vv, d2] for d2 in range(D)
                           if d2 != d1 and allowed[vv, d2] and e[d1, d2] > 0]
                    if row:
                        mdl.add(en >= sum(row)).only_enforce_if(x[uu, d1])
                terms.append(en)
            energy = sum(terms) if terms else 0
            idle_obj, idle_en = [], []
            if p.count_idle and L is not None:
                ctu_up = np.ceil(np.where(allowed, p.compute_time, 0.0) / u.r_lat).astype(np.int64)
                for d in range(D):
                    if p.power_idle[d] <= 0 or not allowed[:, d].any():
                        continue
                    used = mdl.new_bool_var(f"used[{d}]")
                    for b in range(B):
                        if allowed[b, d]:
                            mdl.add_implication(x[b, d], used)
                    z = mdl.new_int_var(0, H, f"idle[{d}]")
                    load_up = sum(int(ctu_up[b, d]) * x[b, d] for b in range(B) if allowed[b, d])
                    mdl.add(z >= L - load_up).only_enforce_if(used)
                    if u.c_idle_real[d] > 0 and w.get("energy"):
                        # idle cost in objective units = c_real * z with c_real not an integer:
                        # q * cost >= floor(c_real * q) * z, q a power of ten as large as int64
                        # headroom allows; ceil() may overshoot by < 1 unit, which the bound
                        # gives back (self.idle_slack).
                        top = float(u.c_idle_real.max()) * max(H, 1)
                        q = 10 ** max(0, min(6, int(math.floor(math.log10(1e17 / max(top, 1.0))))))
                        pq = int(math.floor(u.c_idle_real[d] * q))
                        cost = mdl.new_int_var(0, int(math.ceil(u.c_idle_real[d] * H)) + 1, f"idle_cost[{d}]")
                        mdl.add(q * cost >= pq * z)
                        idle_obj.append(cost)
                        self.idle_slack += 1
                    if u.c_idle_en[d] > 0:
                        idle_en.append(int(u.c_idle_en[d]) * z)
            if "energy_j" in p.constraints:
                cap = int(floor_units(p.constraint_cap("energy_j"), r))
                mdl.add(energy + sum(idle_en) <= cap)
            if u.c_en:
                objective.append(u.c_en * energy)
                objective.extend(idle_obj)

    def _scenarios(self) -> None:
        """Scenarios (SPEC section 10): the assignment ``x`` and memory are shared; one
        pairwise order literal ``o[i,j]`` (i before j when on one device) for every pair of
        blocks no path orders, shared by every scenario; ``sd[i,j]`` is forced to 1 when
        both are on one device. Each scenario k gets its own starts ``s_k`` on its reduced
        problem (precedence with transfers, input from ``source``, outputs -- incl. blocks
        whose successors are all skipped -- to ``sink``) and its latency ``L_k``; a further
        schedule with every block running keeps the shared order acyclic (the evaluator's
        rule) and is read back as the plan's order. Expected latency ``sum_k p_k L_k``,
        expected loads (period) and expected energy use the probabilities as integers
        ``floor(p_k Q)`` with the objective unit divided by Q (rounded down: still a
        relaxation). ``latency_max_s`` bounds every ``L_k``. Idle energy (``count_idle``):
        per scenario k and device d that holds one of k's blocks, ``z_kd >= L_k - load_kd``
        (load rounded up, so z_kd never exceeds the true idle time), paid ``p_k`` times
        the idle power, coefficients rounded down (`_scenario_idle`)."""
        from placement.scenarios import plain

        p, mdl, x, u, w, objective, allowed = (self.p, self.model, self.x, self.units, self.w,
                                               self.objective, self.p.allowed)
        B, D = p.n_blocks, p.n_devices
        idle = bool(p.count_idle and (w.get("energy") or "energy_j" in p.constraints))
        scen = [(sc.probability, *p.scenario_problem(k)) for k, sc in enumerate(p.scenarios)]
        # Q as large as int64 headroom allows (the bound loses < 1/(p_k Q) relatively)
        coef = max([u.c_lat, u.c_per, u.c_en, 1])
        if idle:  # idle cost per latency unit, in objective and in energy units
            coef = max(coef, float(np.max(u.c_idle_real, initial=0.0)) * (D + 1),
                       float(np.max(p.power_idle, initial=0.0)) * u.r_lat / u.r_en * (D + 1))
        top = 1.0
        if p.needs_schedule():
            top = max(top, float(floor_units(max(ws.serial_horizon(q) for _, q, _ in scen), u.r_lat)))
        if p.needs_period() or w.get("throughput"):
            top = max(top, float(np.sum(np.where(allowed, p.compute_time, 0.0))) / u.r_per)
        if p.needs_energy() or w.get("energy"):
            top = max(top, float(np.sum(np.where(allowed, p.node_energy, 0.0))) / u.r_en * 4)
        Q = 10 ** int(min(12, max(1, math.floor(math.log10(1e17 / (coef * top * (len(scen) + 2)))))))
        self.obj_div = Q
        P = np.zeros(B)               # probability that block b runs
        P_out = np.zeros(B)           # ... that it sends its output to sink
        for pk, q, keep in scen:
            P[keep] += pk
            P_out[keep[list(q.output_blocks)]] += pk
        if p.needs_schedule():
            r = u.r_lat
            ct_u = floor_units(np.where(allowed, p.compute_time, 0.0), r)
            dur = [sum(int(ct_u[b, d]) * x[b, d] for d in range(D) if allowed[b, d] and ct_u[b, d] > 0)
                   for b in range(B)]
            pairs = ws.incomparable_pairs(p)
            lit = {}
            for i, j in pairs:
                self._tick()
                sd = mdl.new_bool_var(f"sd[{i},{j}]")
                for d in np.nonzero(allowed[i] & allowed[j])[0]:
                    mdl.add_bool_or([~x[i, int(d)], ~x[j, int(d)], sd])
                lit[i, j] = (sd, mdl.new_bool_var(f"o[{i},{j}]"))
            full = plain(p)
            schedules = [(None, full, np.arange(B, dtype=np.int64))] + list(scen)
            latencies = []
            idle_terms: list = []   # (p_k, kept blocks, L_k, its horizon) for idle energy
            for n, (pk, q, keep) in enumerate(schedules):
                h = ws.serial_horizon(q)
                if pk is not None and "latency_max_s" in p.constraints:
                    h = min(h, p.constraint_cap("latency_max_s"))
                H = int(floor_units(h, r))
                s = {int(b): mdl.new_int_var(0, H, f"s{n}[{b}]") for b in keep}
                for b in keep:
                    b = int(b)
                    for d in range(D):
                        if allowed[b, d]:
                            mdl.add(s[b] + int(ct_u[b, d]) <= H).only_enforce_if(x[b, d])
                for qb in q.input_blocks:
                    b = int(keep[qb])
                    arr = q.input_arrival(qb)
                    arr = floor_units(np.where(np.isfinite(arr), arr, 0.0), r)
                    terms = [int(arr[d]) * x[b, d] for d in range(D) if allowed[b, d] and arr[d] > 0]
                    if terms:
                        mdl.add(s[b] >= sum(terms))
                for k in range(q.n_edges):
                    self._tick()
                    uu, vv = int(keep[q.edge_src[k]]), int(keep[q.edge_dst[k]])
                    tt = q.transfer_matrix(q.edge_bytes[k])
                    tt_u = floor_units(np.where(np.isfinite(tt), tt, 0.0), r)
                    for d1 in range(D):
                        if not allowed[uu, d1]:
                            continue
                        terms = [int(tt_u[d1, d2]) * x[vv, d2] for d2 in range(D)
                                 if d2 != d1 and allowed[vv, d2] and tt_u[d1, d2] > 0]
                        mdl.add(s[vv] >= s[uu] + int(ct_u[uu, d1]) + sum(terms)).only_enforce_if(x[uu, d1])
                for (i, j), (sd, o) in lit.items():
                    if i in s and j in s:
                        mdl.add(s[j] >= s[i] + dur[i]).only_enforce_if([sd, o])
                        mdl.add(s[i] >= s[j] + dur[j]).only_enforce_if([sd, ~o])
                L = mdl.new_int_var(0, H, f"latency{n}")
                for qb in q.output_blocks:
                    b = int(keep[qb])
                    dv = q.output_delivery(qb)
                    out_u = floor_units(np.where(np.isfinite(dv), dv, 0.0), r)
                    mdl.add(L >= s[b] + sum(int(ct_u[b, d] + out_u[d]) * x[b, d]
                                            for d in range(D) if allowed[b, d]))
                for d in range(D):
                    terms = [int(ct_u[b, d]) * x[int(b), d] for b in keep if allowed[b, d] and ct_u[b, d] > 0]
                    if terms:
                        mdl.add(L >= sum(terms))
                if n == 0:
                    self.s = [s[b] for b in range(B)]
                    self.horizon_s, self.H = h, H
                else:
                    latencies.append((int(math.floor(pk * Q)), L))
                    if idle:
                        idle_terms.append((pk, keep, L, H))
            expected = sum(c * L for c, L in latencies if c > 0)
            if "latency_s" in p.constraints:
                mdl.add(expected <= int(math.floor(p.constraint_cap("latency_s") / r * Q)))
            if u.c_lat:
                objective.append(u.c_lat * expected)
        if p.needs_period() or w.get("throughput"):
            r = u.r_per
            loads: dict[tuple[int, int], list] = {}
            for (b, d), var in x.items():
                c = int(math.floor(Q * P[b] * p.compute_time[b, d] / r))
                if c > 0:
                    loads.setdefault((d, d), []).append((c, var))
            for k in range(p.n_edges):
                self._tick()
                uu, vv = int(p.edge_src[k]), int(p.edge_dst[k])
                tx = p.transmission_matrix(p.edge_bytes[k])
                for d1 in range(D):
                    for d2 in range(D):
                        if d1 == d2 or not (allowed[uu, d1] and allowed[vv, d2]):
                            continue
                        c = int(math.floor(Q * P[vv] * tx[d1, d2] / r))
                        if c > 0:
                            y = mdl.new_bool_var(f"y[{k},{d1},{d2}]")
                            mdl.add_bool_or([~x[uu, d1], ~x[vv, d2], y])
                            loads.setdefault((d1, d2), []).append((c, y))
            for (b, d), var in x.items():
                if not p.preds[b] and d != p.source:
                    c = int(math.floor(Q * P[b] * p.in_bytes[b] * p.inv_bandwidth[p.source, d] / r))
                    if c > 0:
                        loads.setdefault((p.source, d), []).append((c, var))
                if P_out[b] > 0 and d != p.sink:
                    c = int(math.floor(Q * P_out[b] * p.blocks[b].output_bytes * p.inv_bandwidth[d, p.sink] / r))
                    if c > 0:
                        loads.setdefault((d, p.sink), []).append((c, var))
            top = max([sum(c for c, _ in t) for t in loads.values()] + [1])
            T = mdl.new_int_var(0, int(top), "period")
            cap = ws.period_cap(p)
            if cap is not None:
                mdl.add(T <= int(math.floor(cap / r * Q)))
            for terms in loads.values():
                mdl.add(T >= sum(c * v for c, v in terms))
            if u.c_per:
                objective.append(u.c_per * T)
        if p.needs_energy() or w.get("energy"):
            r = u.r_en
            terms = []
            for (b, d), var in x.items():
                e = P[b] * p.node_energy[b, d]
                if not p.preds[b] and d != p.source:
                    e += P[b] * p.radio_power[p.source, d] * p.in_bytes[b] * p.inv_bandwidth[p.source, d]
                if P_out[b] > 0 and d != p.sink:
                    e += P_out[b] * p.radio_power[d, p.sink] * p.blocks[b].output_bytes * p.inv_bandwidth[d, p.sink]
                c = int(math.floor(Q * e / r))
                if c > 0:
                    terms.append(c * var)
            for k in range(p.n_edges):
                self._tick()
                uu, vv = int(p.edge_src[k]), int(p.edge_dst[k])
                e = P[vv] * p.radio_power * p.transmission_matrix(p.edge_bytes[k])
                for d1 in range(D):
                    for d2 in range(D):
                        if d1 == d2 or not (allowed[uu, d1] and allowed[vv, d2]):
                            continue
                        c = int(math.floor(Q * e[d1, d2] / r))
                        if c > 0:
                            y = mdl.new_bool_var(f"ey[{k},{d1},{d2}]")
                            mdl.add_bool_or([~x[uu, d1], ~x[vv, d2], y])
                            terms.append(c * y)
            energy = sum(terms) if terms else 0
            idle_obj, idle_en = self._scenario_idle(idle_terms, Q) if idle else ([], [])
            if "energy_j" in p.constraints:
                mdl.add(energy + sum(idle_en) <= int(math.floor(p.constraint_cap("energy_j") / r * Q)))
            if u.c_en:
                objective.append(u.c_en * energy)
                objective.extend(idle_obj)

    def _scenario_idle(self, idle_terms, Q: int) -> tuple[list, list]:
        """Expected idle energy under scenarios (SPEC 10 with ``count_idle``): scenario k's
        device d idles ``L_k - load_kd`` when it holds one of k's blocks. Returns the
        objective terms (objective units x Q) and the energy terms (energy units x Q), each
        coefficient rounded down and the load rounded up: a relaxation."""
        p, mdl, x, u, allowed = self.p, self.model, self.x, self.units, self.p.allowed
        ctu_up = np.ceil(np.where(allowed, p.compute_time, 0.0) / u.r_lat).astype(np.int64)
        obj, en = [], []
        for k, (pk, keep, L, H) in enumerate(idle_terms):
            for d in range(p.n_devices):
                here = [int(b) for b in keep if allowed[b, d]]
                if p.power_idle[d] <= 0 or not here:
                    continue
                self._tick()
                used = mdl.new_bool_var(f"used{k}[{d}]")
                for b in here:
                    mdl.add_implication(x[b, d], used)
                z = mdl.new_int_var(0, H, f"idle{k}[{d}]")
                mdl.add(z >= L - sum(int(ctu_up[b, d]) * x[b, d] for b in here)).only_enforce_if(used)
                c_obj = int(math.floor(pk * Q * u.c_idle_real[d]))
                if c_obj > 0 and self.w.get("energy"):
                    obj.append(c_obj * z)
                c_en = int(math.floor(pk * Q * p.power_idle[d] * u.r_lat / u.r_en))
                if c_en > 0:
                    en.append(c_en * z)
        return obj, en

    def _media(self) -> None:
        """Shared media (module docstring): transfer intervals under no-overlap per medium,
        their precedence when the latency is modelled, each medium's load in the period."""
        from placement import media as md

        p, mdl, x, u, allowed = self.p, self.model, self.x, self.units, self.p.allowed
        D, M = p.n_devices, len(p.media)
        I, E, _ = md.transfer_count(p)
        nbytes = np.concatenate([p.in_bytes[list(p.input_blocks)], p.edge_bytes,
                                 p.out_bytes[list(p.output_blocks)]])
        sched = self.s is not None
        r = u.r_lat if sched else None
        ct_u = floor_units(np.where(allowed, p.compute_time, 0.0), r) if sched else None
        intervals: list[list] = [[] for _ in range(M)]
        loads: list[list] = [[] for _ in range(M)]
        lit_cache: dict = {}
        for t, (pu, cv) in enumerate(md.transfer_endpoints(p)):
            self._tick()
            tx = p.transmission_matrix(float(nbytes[t]))
            pairs = []
            for d1 in ([p.source] if pu < 0 else [d for d in range(D) if allowed[pu, d]]):
                for d2 in ([p.sink] if cv < 0 else [d for d in range(D) if allowed[cv, d]]):
                    if d1 != d2 and p.medium_of[d1, d2] >= 0:
                        pairs.append((d1, d2))
            if not pairs:
                continue
            ts = None
            if sched:
                ts = self.ts[t] = mdl.new_int_var(0, self.H, f"ts[{t}]")
            for d1, d2 in pairs:
                m = int(p.medium_of[d1, d2])
                if pu < 0:
                    lit = x[cv, d2]
                elif cv < 0:
                    lit = x[pu, d1]
                else:
                    key = (t, d1, d2)
                    lit = lit_cache[key] = mdl.new_bool_var(f"mt[{t},{d1},{d2}]")
                    mdl.add_bool_or([~x[pu, d1], ~x[cv, d2], lit])
                if self.T is not None:
                    txp = int(floor_units(tx[d1, d2], u.r_per))
                    if txp > 0:
                        loads[m].append(txp * lit)
                if not sched:
                    continue
                tx_u = int(floor_units(tx[d1, d2], r))
                lat_u = int(floor_units(p.latency[d1, d2], r))
                if tx_u > 0:
                    intervals[m].append(mdl.new_optional_fixed_size_interval_var(
                        ts, tx_u, lit, f"mi[{t},{d1},{d2}]"))
                if pu >= 0:
                    mdl.add(ts >= self.s[pu] + int(ct_u[pu, d1])).only_enforce_if(lit)
                if cv >= 0:
                    mdl.add(self.s[cv] >= ts + tx_u + lat_u).only_enforce_if(lit)
                else:
                    mdl.add(self.L >= ts + tx_u + lat_u).only_enforce_if(lit)
        for m in range(M):
            if len(intervals[m]) > 1:
                mdl.add_no_overlap(intervals[m])
            if loads[m] and self.T is not None:
                mdl.add(self.T >= sum(loads[m]))

    def _hint(self) -> None:
        """The warm start as a hint."""
        mdl, x, u, inc = self.model, self.x, self.units, self.inc
        B = self.p.n_blocks
        # ---- hint: the warm start
        if inc is not None:
            for (b, d), var in x.items():
                mdl.add_hint(var, int(inc.assignment[b] == d))
            if self.s is not None:
                starts = floor_units(inc.start, u.r_lat)
                for b in range(B):
                    mdl.add_hint(self.s[b], int(min(starts[b], self.s[b].proto.domain[-1])))


def _union_ts(U: Problem, q: Problem, idx: np.ndarray, ts_u: dict) -> dict:
    """The send starts of the union model's transfers (``ts_u``, by `Problem.split_union`'s
    transfer index) as those of expansion ``q`` (``idx``: q's block -> U's block): a transfer
    is the same one when its endpoints are (the source / sink: -1)."""
    from placement import media as md

    of_u = {ends: t for t, ends in enumerate(md.transfer_endpoints(U))}
    out = {}
    for t, (qu, qv) in enumerate(md.transfer_endpoints(q)):
        tu = of_u.get((int(idx[qu]) if qu >= 0 else -1, int(idx[qv]) if qv >= 0 else -1))
        if tu is not None and tu in ts_u:
            out[t] = ts_u[tu]
    return out


def _medium_order(p: Problem, a: np.ndarray, ts: dict) -> list[list[int]]:
    """Each medium's transfers for assignment ``a`` by their send start (ties: index)."""
    from placement import media as md

    tr = md.transfers(p, a)
    return [sorted(md.on_medium(tr, m), key=lambda t: (ts.get(t, 0), t)) for m in range(len(p.media))]

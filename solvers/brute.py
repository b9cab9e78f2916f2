"""`brute`: exhaustive enumeration, the oracle of the tests.

What is enumerated
  * every assignment of blocks to devices with ``problem.allowed`` (pins and
    ``allowed_devices`` included), as one numpy array; assignments that break memory or
    need an unreachable pair are dropped at once (they are infeasible whatever the order);
  * when the objective's value or feasibility depends on the per-device order (a latency
    weight, a ``latency_s`` constraint, or ``count_idle`` energy in the objective or in an
    ``energy_j`` constraint), every combination of per-device orders: for each device, every
    linear extension of the block graph's precedence restricted to that device's blocks
    (orders that contradict the graph would deadlock; combinations that deadlock across
    devices are recognised by the simulation and skipped). Blocks start as early as their
    device and inputs allow (the evaluator's rule), which is optimal for a fixed order
    because latency and idle energy only grow with start times.
  * with shared media (SPEC 5a) and an order-dependent objective, also every sending order
    of the transfers on each medium that can be followed (`_medium_orders`: a transfer goes
    after every transfer its producer depends on; other orders would deadlock; combinations
    that still deadlock across devices and media are skipped), simulated by
    `placement.media.simulate_media`; the candidate count multiplies by their number.

Scoring
  Order-independent objectives are scored with `placement.evaluator.evaluate`. With
  orders, the order-independent part of a plan (period, energy without idle time, memory)
  is scored once per assignment (`placement.evaluator.plan_costs`), and each order is then
  simulated by the one simulator (`placement.simulator.simulate_orders`), the constraints
  checked by `Problem.constraint_excess`; the winner is re-scored by `evaluate`.

Size limit (documented, enforced before any work)
  at most ``MAX_ASSIGNMENTS`` = 1,000,000 assignments allowed by ``problem.allowed``, and at
  most ``MAX_CANDIDATES`` = 200,000 scored (assignment, orders) candidates after the memory
  and reachability filter. Beyond either, ``solve`` raises `InputError` with
  "brute refuses: ...". At about 30-150 microseconds per candidate the limit means well under
  a minute. It also honours the time limit (best plan so far, status ``time_limit``).
  With split choices (SPEC 6) it enumerates every choice's expansion in turn, and both
  limits count all of them together (the assignments of every expansion; the candidates
  scored so far plus those of the next expansion).
"""

from __future__ import annotations

import math
from functools import reduce
from itertools import product
from operator import mul

import numpy as np

from placement.errors import InputError
from placement.evaluator import evaluate, idle_energy, plan_costs, throughput_of
from placement.simulator import makespan, simulate_orders
from placement.method import Candidate, Context, Method
from placement.plan import Status
from placement.problem import Problem

#: largest number of assignments (product of allowed devices per block) brute enumerates.
MAX_ASSIGNMENTS = 1_000_000
#: largest number of (assignment, per-device orders) candidates brute scores.
MAX_CANDIDATES = 200_000
#: how many candidates between two looks at the clock.
_CHECK_EVERY = 256


def _approx(count: float | int) -> str:
    """A count for a message; exact integers may be far beyond float range (8**1000)."""
    if isinstance(count, int) and count >= 10**15:
        return f"10^{len(str(count)) - 1}"
    return f"{count:.3g}"


def _refuse(p: Problem, count: float | int, limit: int, what: str) -> InputError:
    return InputError(
        f"brute refuses: {p.n_blocks} blocks x {p.n_devices} devices means ~{_approx(count)} {what}, "
        f"limit {limit:,} (use cpsat or milp for problems this size)")


def enumerate_assignments(p: Problem) -> np.ndarray:
    """(N, B) array of every assignment allowed by ``p.allowed`` (N may be 0).
    Raises `InputError` ("brute refuses") when N exceeds `MAX_ASSIGNMENTS`."""
    B = p.n_blocks
    choices = [np.nonzero(p.allowed[b])[0] for b in range(B)]
    count = reduce(mul, (len(c) for c in choices), 1)
    if count > MAX_ASSIGNMENTS:
        raise _refuse(p, count, MAX_ASSIGNMENTS, "assignments")
    if count == 0 or B == 0:
        return np.zeros((count if B else 1, B), dtype=np.int64)
    # mixed-radix counting: block 0 varies slowest
    idx = np.arange(count, dtype=np.int64)
    out = np.empty((count, B), dtype=np.int64)
    for b in range(B - 1, -1, -1):
        k = len(choices[b])
        out[:, b] = choices[b][idx % k]
        idx //= k
    return out


def structurally_feasible(p: Problem, A: np.ndarray) -> np.ndarray:
    """(N,) bool: memory fits on every device and every transfer has a link (order-free rules)."""
    N = A.shape[0]
    ok = np.ones(N, dtype=bool)
    for d in range(p.n_devices):
        on = A == d
        weights = on @ p.params
        peak = np.max(np.where(on, p.activation[None, :], 0.0), axis=1, initial=0.0)
        ok &= weights + peak <= p.memory_cap[d]
    if p.n_edges:
        ok &= np.all(p.reachable[A[:, p.edge_src], A[:, p.edge_dst]], axis=1)
    if p.input_blocks:
        ok &= np.all(p.reachable[p.source, A[:, list(p.input_blocks)]], axis=1)
    if p.output_blocks:
        ok &= np.all(p.reachable[A[:, list(p.output_blocks)], p.sink], axis=1)
    return ok


def _medium_orders(p: Problem, transfers: list[int], ends, cap: int) -> list[tuple[int, ...]] | None:
    """Every sending order of ``transfers`` (one medium) that can be followed: transfer t1
    goes before t2 whenever t2's producer is t1's consumer or one of its descendants (any other
    order deadlocks). None if there are more than ``cap``."""
    anc = p.ancestors
    n = len(transfers)
    before = [0] * n                    # bit i set in before[j]: transfers[i] must precede transfers[j]
    for i, t1 in enumerate(transfers):
        c1 = ends[t1][1]
        if c1 < 0:
            continue
        for j, t2 in enumerate(transfers):
            p2 = ends[t2][0]
            if i != j and p2 >= 0 and (p2 == c1 or (anc[p2] >> c1) & 1):
                before[j] |= 1 << i
    out: list[tuple[int, ...]] = []

    def rec(prefix: list[int], placed: int) -> bool:
        if len(prefix) == n:
            out.append(tuple(transfers[i] for i in prefix))
            return len(out) <= cap
        for j in range(n):
            if (placed >> j) & 1 or before[j] & ~placed:
                continue
            prefix.append(j)
            if not rec(prefix, placed | (1 << j)):
                return False
            prefix.pop()
        return True

    return out if rec([], 0) else None


class _Orders:
    """Linear extensions of the block graph restricted to a set of blocks, memoised by set."""

    def __init__(self, p: Problem, cap: int):
        self.cap = cap
        self.anc = p.ancestors
        self.memo: dict[int, list[tuple[int, ...]] | None] = {}

    def of(self, blocks: list[int]) -> list[tuple[int, ...]] | None:
        """Every precedence-respecting order of ``blocks``; None if there are more than ``cap``."""
        key = 0
        for b in blocks:
            key |= 1 << b
        if key in self.memo:
            return self.memo[key]
        out: list[tuple[int, ...]] = []
        anc = self.anc

        def rec(prefix: list[int], placed: int, left: list[int]) -> bool:
            if not left:
                out.append(tuple(prefix))
                return len(out) <= self.cap
            for i, b in enumerate(left):
                if (anc[b] & key) & ~placed:
                    continue  # an ancestor on this device has not run yet
                prefix.append(b)
                if not rec(prefix, placed | (1 << b), left[:i] + left[i + 1:]):
                    return False
                prefix.pop()
            return True

        complete = rec([], 0, sorted(blocks))
        self.memo[key] = out if complete else None
        return self.memo[key]



def _device_orders(p: Problem, orders, a, D: int, limit: int = MAX_CANDIDATES) -> tuple[list, int]:
    """Each device's candidate orders of its blocks under assignment ``a``, and how many
    combinations they make; a device with too many orders is brute's size refusal."""
    lists, count = [], 1
    for d in range(D):
        ext = orders.of([int(b) for b in np.nonzero(a == d)[0]])
        if ext is None:
            raise _refuse(p, float(limit + 1), limit, "candidates")
        lists.append(ext)
        count *= len(ext)
    return lists, count

class Brute(Method):
    name = "brute"
    kind = "exact"
    guarantee = ("optimal (exhaustive over assignments and per-device orders); refuses more than "
                 f"{MAX_ASSIGNMENTS:,} assignments or {MAX_CANDIDATES:,} candidates")
    summary = "exhaustive enumeration: the oracle of the tests, for tiny problems only"
    #: scenarios (SPEC 10): every (assignment, orders) candidate is scored by the evaluator's
    #: expectation over the scenarios (one order per device, restricted per scenario); media
    #: (5a): it enumerates the medium orders too. Not both at once (the loader refuses that).
    #: split choices (SPEC 6): every choice's expansion is enumerated in turn; the limits
    #: count the assignments and candidates of all of them together.
    features = frozenset({"scenarios", "media", "split_choice"})

    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        if "split_choice" in problem.features:
            return self._over_choices(problem, ctx)
        return self._solve_one(problem, ctx)

    def _over_choices(self, p: Problem, ctx: Context) -> Candidate:
        """Every split choice in turn (`Problem.split_combinations`): the best plan over all
        of them, optimal when every expansion was enumerated to the end."""
        # the refusal is decided before anything is listed: every expansion assigns at least
        # the blocks whose ways are not a choice, so n choices mean at least n times their
        # assignments (a 100-block problem with 30 split blocks has 3^30 choices: listing them
        # ran out of memory)
        n = p.n_split_combinations
        fixed = [b for b, blk in enumerate(p.blocks)
                 if blk.origin is None or len(p.split_options.get(blk.origin, ())) < 2]
        least = n * reduce(mul, (int(p.allowed[b].sum()) for b in fixed), 1)
        if least > MAX_ASSIGNMENTS:
            raise InputError(
                f"brute refuses: {_approx(n)} split choices x {p.n_devices} devices mean at least "
                f"~{_approx(least)} assignments in all, limit {MAX_ASSIGNMENTS:,} (use cpsat or milp "
                "for problems this size)")
        choices = list(p.split_combinations())
        expansions = [p.expand(c) for c in choices]
        total = sum(reduce(mul, (int(q.allowed[b].sum()) for b in range(q.n_blocks)), 1)
                    for q in expansions)
        if total > MAX_ASSIGNMENTS:
            raise InputError(
                f"brute refuses: {len(choices)} split choices x {p.n_devices} devices mean "
                f"~{_approx(total)} assignments in all, limit {MAX_ASSIGNMENTS:,} (use cpsat or milp "
                "for problems this size)")
        best = None       # (value, choice, candidate)
        used, stats, stopped, all_infeasible, whys = 0, {"split_choices": len(choices)}, False, True, []
        for choice, q in zip(choices, expansions):
            if ctx.expired():
                stopped = True
                break
            cand = self._solve_one(q, ctx, MAX_CANDIDATES - used)
            used += int(cand.stats.get("candidates", 0))
            for key in ("assignments", "structurally_feasible", "scored"):
                stats[key] = stats.get(key, 0) + int(cand.stats.get(key, 0))
            if cand.status == Status.TIME_LIMIT or (cand.status == Status.NO_SOLUTION):
                stopped = True
            if cand.status != Status.INFEASIBLE:
                all_infeasible = False
            elif cand.message:
                whys.append(cand.message)
            if cand.assignment is None:
                if stopped:
                    break
                continue
            ev = evaluate(q, cand.assignment, cand.order, cand.medium_order)
            if ev.feasible and (best is None or ev.value < best[0]):
                best = (ev.value, choice, cand)
            if stopped:
                break
        stats["candidates"] = used
        if best is None:
            if all_infeasible and not stopped:
                return Candidate(None, status=Status.INFEASIBLE, stats=stats, message=(
                    f"brute: no plan of any of the {len(choices)} split choices is feasible"
                    + (f" (e.g. {whys[0]})" if whys else "")))
            return Candidate(None, status=Status.NO_SOLUTION, stats=stats,
                             message="brute: time limit before a feasible plan of any split choice")
        value, choice, cand = best
        if stopped:
            return Candidate(cand.assignment, cand.order, status=Status.TIME_LIMIT, stats=stats,
                             medium_order=cand.medium_order, split=choice,
                             message="brute: time limit before every split choice was enumerated")
        return Candidate(cand.assignment, cand.order, status=Status.OPTIMAL, bound=float(value),
                         stats=stats, medium_order=cand.medium_order, split=choice)

    def _solve_one(self, problem: Problem, ctx: Context, limit: int = MAX_CANDIDATES) -> Candidate:
        p = problem
        A = enumerate_assignments(p)
        n_all = A.shape[0]
        A = A[structurally_feasible(p, A)]
        stats = {"assignments": int(n_all), "structurally_feasible": int(A.shape[0])}
        if A.shape[0] == 0:
            return Candidate(None, status=Status.INFEASIBLE, stats=stats, message=(
                f"brute: none of the {n_all} allowed assignments fits every device's memory "
                "and has a link for every transfer"))
        if p.needs_schedule():
            return self._with_orders(p, ctx, A, stats, limit)
        return self._without_orders(p, ctx, A, stats, limit)

    # ------------------------------------------------------------------------------------
    def _without_orders(self, p: Problem, ctx: Context, A: np.ndarray, stats: dict,
                        limit: int = MAX_CANDIDATES) -> Candidate:
        if A.shape[0] > limit:
            raise _refuse(p, float(A.shape[0]), limit, "candidates")
        stats["candidates"] = int(A.shape[0])
        best, best_value, scored, why = None, math.inf, 0, None
        for i, a in enumerate(A):
            if i % _CHECK_EVERY == 0 and ctx.expired():
                return self._stopped(best, best_value, scored, stats)
            ev = evaluate(p, a)
            scored += 1
            if ev.feasible:
                if ev.value < best_value:
                    best, best_value = ev, ev.value
            elif why is None:
                why = str(ev.violations[0])
        return self._finish(p, best, best_value, scored, stats, why)

    def _with_orders(self, p: Problem, ctx: Context, A: np.ndarray, stats: dict,
                     limit: int = MAX_CANDIDATES) -> Candidate:
        D = p.n_devices
        if p.media:
            return self._with_media(p, ctx, A, stats, limit)
        orders = _Orders(p, limit)
        per_assignment: list[list[list[tuple[int, ...]]]] = []
        total = 0
        for a in A:
            lists, count = _device_orders(p, orders, a, D, limit)
            total += count
            if total > limit:
                # finish counting cheaply for an honest message (bounded work)
                raise _refuse(p, float(total) * A.shape[0] / (len(per_assignment) + 1),
                              limit, "(assignment, order) candidates")
            per_assignment.append(lists)
        stats["candidates"] = int(total)

        best, best_value, scored, why = None, math.inf, 0, None
        for a, lists in zip(A, per_assignment):
            base = evaluate(p, a)           # the rules no order changes: pins, devices, links
            if any(v.kind != "constraint" for v in base.violations):
                why = why or str(base.violations[0])
                continue
            c = plan_costs(p, a)            # the cost pieces of this assignment
            energy_busy = c.energy_j        # compute + radio energy; idle energy is per order
            for combo in product(*lists):
                if scored % _CHECK_EVERY == 0 and ctx.expired():
                    return self._stopped(best, best_value, scored, stats)
                scored += 1
                order = [list(o) for o in combo]
                if p.scenarios:         # SPEC 10: the evaluator's expectation, nothing else
                    ev = evaluate(p, a, order)
                    if any(v.kind == "order" for v in ev.violations):
                        continue
                    if not ev.feasible:
                        why = why or str(ev.violations[0])
                        continue
                    if ev.value < best_value:
                        best_value = ev.value
                        best = (a.copy(), order)
                    continue
                start, end, deadlock = simulate_orders(p, a, order, c.ct, c.edge_time, c.in_time)
                if deadlock:
                    continue
                latency = makespan(end, c.out_time)
                energy = energy_busy
                if p.count_idle:
                    energy += idle_energy(p, a, latency, c.load)
                values = {"latency_s": latency, "latency_max_s": latency, "period_s": c.period_s,
                          "throughput_per_s": throughput_of(c.period_s), "energy_j": energy}
                if p.constraint_excess(values):
                    why = why or "constraint: no order meets the constraints"
                    continue
                value = p.objective.value(values)
                if value < best_value:
                    best_value = value
                    best = (a.copy(), order)
        if best is not None:
            ev = evaluate(p, best[0], best[1])
            if not ev.feasible:  # the fast path and the evaluator disagree: a bug, say so
                raise RuntimeError(f"brute: evaluator rejects the best plan: {ev.violations[0]}")
            return self._finish(p, ev, ev.value, scored, stats, why)
        return self._finish(p, None, math.inf, scored, stats, why)

    def _with_media(self, p: Problem, ctx: Context, A: np.ndarray, stats: dict,
                    limit: int = MAX_CANDIDATES) -> Candidate:
        """`_with_orders` with shared media: per-device orders times per-medium sending orders."""
        from placement import media as md

        D, M = p.n_devices, len(p.media)
        ends = md.transfer_endpoints(p)
        orders = _Orders(p, limit)
        per_assignment = []
        total = 0
        for i, a in enumerate(A):
            lists, count = _device_orders(p, orders, a, D, limit)
            tr = md.transfers(p, a)
            on = []
            for m in range(M):
                ext = _medium_orders(p, md.on_medium(tr, m), ends, limit)
                if ext is None:
                    raise _refuse(p, float(limit + 1), limit, "medium orders")
                on.append(ext)
                count *= len(ext)
            total += count
            if total > limit:
                raise _refuse(p, float(total) * A.shape[0] / (i + 1), limit,
                              "(assignment, order, medium order) candidates")
            per_assignment.append((lists, on, tr))
        stats["candidates"] = int(total)

        best, best_value, scored, why = None, math.inf, 0, None
        for a, (lists, on, tr) in zip(A, per_assignment):
            base = evaluate(p, a)
            if any(v.kind != "constraint" for v in base.violations):
                why = why or str(base.violations[0])
                continue
            c = plan_costs(p, a)
            period = float(max(c.period_s, md.medium_loads(p, a, tr).max(initial=0.0)))
            for combo in product(*lists):
                order = [list(o) for o in combo]
                for mcombo in product(*on):
                    if scored % _CHECK_EVERY == 0 and ctx.expired():
                        return self._stopped(best, best_value, scored, stats)
                    scored += 1
                    morder = [list(o) for o in mcombo]
                    sch = md.simulate_media(p, a, order, c.ct, morder, tr)
                    if sch.deadlock:
                        continue
                    energy = c.energy_j
                    if p.count_idle:
                        energy += idle_energy(p, a, sch.latency, c.load)
                    values = {"latency_s": sch.latency, "period_s": period,
                              "throughput_per_s": throughput_of(period), "energy_j": energy}
                    if p.constraint_excess(values):
                        why = why or "constraint: no order meets the constraints"
                        continue
                    value = p.objective.value(values)
                    if value < best_value:
                        best_value = value
                        best = (a.copy(), order, morder)
        if best is not None:
            ev = evaluate(p, *best)
            if not ev.feasible:
                raise RuntimeError(f"brute: evaluator rejects the best plan: {ev.violations[0]}")
            return self._finish(p, ev, ev.value, scored, stats, why)
        return self._finish(p, None, math.inf, scored, stats, why)

    # ------------------------------------------------------------------------------------
    @staticmethod
    def _stopped(best, best_value, scored, stats) -> Candidate:
        stats["scored"] = scored
        if best is None:
            return Candidate(None, status=Status.NO_SOLUTION, stats=stats,
                             message=f"brute: time limit after {scored} candidates, none feasible")
        morder = None
        if isinstance(best, tuple):
            a, order, *rest = best
            morder = rest[0] if rest else None
        else:
            a, order = best.assignment, best.order
            morder = [list(o) for o in best.medium_order] or None
        return Candidate(np.asarray(a), order, status=Status.TIME_LIMIT, stats=stats,
                         message=f"brute: time limit after {scored} candidates", medium_order=morder)

    @staticmethod
    def _finish(p: Problem, best, best_value, scored, stats, why) -> Candidate:
        stats["scored"] = scored
        if best is None:
            return Candidate(None, status=Status.INFEASIBLE, stats=stats, message=(
                f"brute: no plan among {scored} candidates is feasible"
                + (f" (e.g. {why})" if why else "")))
        return Candidate(best.assignment, best.order, status=Status.OPTIMAL, bound=float(best_value),
                         stats=stats, medium_order=[list(o) for o in best.medium_order] or None)

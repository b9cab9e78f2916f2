"""`local`: simulated annealing over plans, started from the best constructive plan.

Start: the best plan (evaluator-scored, feasible first) among `heft`'s variants (which
include the single-device plans) and `dp`'s paths and pipelines.

State: an assignment and a **priority** per block that is a linear extension of the block
graph (a block's priority lies strictly between its predecessors' and successors'). Each
device runs its blocks in priority order, so no state can deadlock, and the schedule is
simulated in one pass over the blocks in priority order -- the evaluator's semantics (start
= max(device free, inputs arrived)), checked equal to `placement.evaluator.evaluate` in the
tests.

Moves (probabilities adapt to the objective):
  * **move** one block to another allowed device (half the time a device that one of its
    neighbours is on, which keeps transfers few; else any allowed device);
  * **group move**: a connected group of 2 to 6 blocks that share a device moves to
    another device together (crossing a slow link one block at a time is uphill);
  * **swap** the devices of two blocks;
  * **reorder** (only when the value depends on the order: latency, or idle energy): a new
    priority for a block, drawn between its predecessors' and successors'.

Score of a state: the objective (weights over the raw metrics) plus a penalty for memory
overflow and broken constraints, ``penalty * value_of_start * relative excess``, so that
the search may cross infeasible states; the best *feasible* state is what is kept (best
infeasible only while no feasible one is known). Acceptance is Metropolis on the relative
change, with a geometric cooling schedule over epochs of ``max(200, 10 * blocks)`` moves and
a reheat from the best plan when an epoch finds nothing.

Evaluation: period, energy and memory are recomputed with vectorised numpy from the
assignment (they are sums over blocks and edges); when latency matters (latency weight or
constraint, or idle energy) the schedule is re-simulated from the first block whose
position, device or inputs changed onwards (earlier blocks keep their times).

Restarts: ``chains`` (default 6) annealing chains run one after the other, each from the
best plan so far with its own random stream (a chain that is trapped in one basin is
common on high-communication instances; six independent chains rarely all are).

Stopping (the default budget is the search's own): at the time limit (status
``time_limit``), when a feasible plan meets the cheap lower bound (`placement.bounds`: it
is optimal), or on convergence, when every chain has stopped because its best had not
improved for ``max(patience, moves it took to find its best)`` moves (status ``feasible``). The
stopping rule counts moves, not seconds, so a run that converges before its time limit is
deterministic for a seed. The returned plan is never worse than the start: the final best
is re-scored by the evaluator and the start is returned if it is not strictly better.

Split choices (SPEC section 6; `_solve_with_split_choice`): heft's degree search
(`heuristics._split_choice`) picks an expansion; the search above runs on it, on the max
expansion and on the never-split one, and from the best plan a **degree move** per split block
and way re-expands the problem, maps the other blocks' devices over (the block's new shards
on its old shards' devices, or one each on the fastest devices) and searches briefly; a move
is kept when its plan is better. Never worse than the search on the max or never-split
expansion alone.
"""

from __future__ import annotations

import math
import random
import time

import numpy as np

from placement.evaluator import evaluate, idle_energy, makespan, metric_values, plan_costs, throughput_of
from placement.method import Candidate, Context, Method, Option
from placement.plan import Status
from placement.problem import TOLERANCE, Problem
from placement.simulator import simulate_sequence
from placement.split import shard_id

from ._common import (Pool, masked_ct, order_by, schedule_order, topo_position, upward_rank_mean,
                      violation_size)
from . import _split_choice
from .heft import _NoRoom, construct, list_schedule

#: moves without improvement of the best before the search stops (at least).
PATIENCE = 5000
#: independent annealing chains, each from the best plan so far (different random streams).
CHAINS = 6
#: annealing temperatures (relative worsening accepted with probability 1/e), hot and cold.
T_START, T_END = 0.02, 1e-4
#: at most this many evaluations in the descent that opens every chain.
DESCENT_EVALS = 5000
#: weight of the mean block end time added to the latency during the search (not to the
#: value kept): a tie-breaker that makes moves off the critical path informative.
SMOOTH = 0.0
#: weight of the relative memory/constraint excess, in units of the start's value.
PENALTY = 10.0
#: the closing LNS (`solvers._lns`): windows in a row without improvement before it stops,
#: and blocks per window.
LNS_PATIENCE = 6
LNS_WINDOW = 16
#: under a time limit, the most of the time left after the start plan that the LNS, which
#: runs first, may take (the annealing chains get the rest, and at least this much).
LNS_SHARE = 0.5


class Scorer:
    """Repeated scoring of (assignment, priority): the evaluator's `plan_costs` for everything
    that no order changes, plus the one simulator (`placement.simulator.simulate_sequence`)
    resumed from the first block whose inputs changed (tested equal to the evaluator)."""

    def __init__(self, p: Problem):
        self.p = p
        B, D = p.n_blocks, p.n_devices
        self.B, self.D = B, D
        self.ed = p.edge_dst
        self.preds = [list(x) for x in p.preds]
        self.cap = p.memory_cap
        w = p.objective.weights
        self.weights = {k: v for k, v in w.items() if v}
        self.needs_latency = p.needs_schedule()
        self.needs_order = self.needs_latency

    def score(self, a: np.ndarray, seq: np.ndarray | None, cache: dict | None = None):
        """(metrics dict, memory excess, constraint excess) of assignment ``a`` with blocks
        run in ``seq`` order (a linear extension). ``cache`` (from a previous call with
        ``start``/``end``/``seq``/``a``) lets the latency simulation resume where they differ."""
        p = self.p
        if p.scenarios:                   # SPEC 10: the evaluator's expectation over scenarios
            return self._score_scenarios(a, seq)
        c = plan_costs(p, a)              # the evaluator's own order-free arithmetic
        latency = math.nan
        energy = c.energy_j
        start = end = None
        period = c.period_s
        if p.media:
            # shared media (SPEC 5a): the evaluator's media simulation, first come first served
            # on each medium, devices in ``seq`` order; the media loads join the period
            from placement import media as md
            tr = md.transfers(p, a)
            period = float(max(period, md.medium_loads(p, a, tr).max(initial=0.0)))
            if self.needs_latency:
                order: list[list[int]] = [[] for _ in range(self.D)]
                for b in np.asarray(seq).tolist():
                    order[a[b]].append(b)
                sch = md.simulate_media(p, a, order, c.ct, None, tr)
                start, end, latency = sch.start, sch.end, sch.latency
                if p.count_idle:
                    energy += idle_energy(p, a, latency, c.load)
        elif self.needs_latency:
            start, end = self._simulate(a, seq, c.ct, c.edge_time, c.in_time, cache)
            latency = makespan(end, c.out_time)
            if p.count_idle:
                energy += idle_energy(p, a, latency, c.load)
        mem_excess = float(np.sum(np.maximum(c.memory_bytes - self.cap, 0.0) / p.memory))
        metrics = {"latency_s": latency, "latency_max_s": latency, "period_s": period, "energy_j": energy,
                   "throughput_per_s": throughput_of(period)}
        con = float(sum(p.constraint_excess(metrics).values()))
        return metrics, mem_excess, con, (start, end)

    def _score_scenarios(self, a: np.ndarray, seq: np.ndarray | None):
        p = self.p
        order = None
        if seq is not None:
            order = [[] for _ in range(self.D)]
            for b in np.asarray(seq).tolist():
                order[a[b]].append(b)
        ev = evaluate(p, a, order)
        mem_excess = float(np.sum(np.maximum(ev.memory_bytes - self.cap, 0.0) / p.memory))
        metrics = metric_values(ev)
        con = float(sum(p.constraint_excess(metrics).values()))
        return metrics, mem_excess, con, (np.asarray(ev.start), np.asarray(ev.end))

    def _simulate(self, a, seq, ctb, edge_time, in_time, cache):
        B = self.B
        j0 = 0
        if cache is not None and cache.get("start") is not None:
            old_a, old_seq = cache["a"], cache["seq"]
            old_ctb, old_et, old_it = cache["ctb"], cache["edge_time"], cache["in_time"]
            # first position where the block, its device, its time or an input changed
            changed = (seq != old_seq) | (a[seq] != old_a[seq]) | (ctb[seq] != old_ctb[seq]) \
                | (in_time[seq] != old_it[seq])
            ek = np.nonzero(edge_time != old_et)[0]
            pos = np.empty(B, dtype=np.int64)
            pos[seq] = np.arange(B)
            first = int(np.argmax(changed)) if changed.any() else B
            if len(ek):
                first = min(first, int(pos[self.ed[ek]].min()))
            j0 = first
            start, end = cache["start"], cache["end"]
        else:
            start = end = None
        # the one simulator, resumed after the unchanged prefix
        return simulate_sequence(self.p, a, seq, ctb, edge_time, in_time, first=j0, start=start, end=end)


def _start_plan(p: Problem, ctx: Context) -> tuple[Pool, dict]:
    from .dp import DynamicProgramming, wants_pipeline

    # dp first (cheap, and the right plan on chains), then heft's variants with the time left:
    # under a short limit heft's construction may be cut, dp's plan must not be
    cand, cand_stats = None, {}
    try:
        # a throughput objective wants dp's pipeline DP, which takes 0.1-0.3 s on 100 blocks x
        # 16 devices here and several times that on a loaded 2-core machine: give it half
        share = 0.5 if wants_pipeline(p) else 0.3
        cand = DynamicProgramming().solve_fixed(p, ctx.sub(share))  # this expansion
    except Exception as exc:  # dp is a start only; its failure must not stop the search
        cand_stats["dp_error"] = f"{type(exc).__name__}: {exc}"
    pool, stats = construct(p, ctx)
    cand_stats["heft"] = pool.best_label
    if cand is not None and cand.assignment is not None:
        pool.add(cand.assignment, cand.order, "dp:" + cand.stats.get("chosen", ""))
    cand_stats["start"] = pool.best_label
    return pool, cand_stats


class LocalSearch(Method):
    name = "local"
    kind = "heuristic"
    guarantee = "never worse than the best constructive plan (heft, dp, single); deterministic per seed"
    #: scenarios (SPEC 10): every move is scored by the evaluator's expectation; media (5a): its
    #: Scorer simulates the media (FCFS) as the evaluator does. Not both at once (loader).
    #: split choices (6): heft's degree search, the search on the chosen, max and whole
    #: expansions, then degree moves (`_solve_with_split_choice`).
    features = frozenset({"scenarios", "media", "split_choice"})
    summary = ("simulated annealing over block moves, swaps and per-device reorders, started from "
               "the best of heft and dp; stops at convergence or the time limit")
    options = (Option("patience", int, PATIENCE, "moves without improvement before stopping", low=1),
               Option("chains", int, CHAINS, "annealing chains run one after the other from the best so far",
                      low=1),
               Option("max_moves", int, None, "stop each chain after this many moves (none: no cap)", low=1),
               Option("lns", int, LNS_PATIENCE, "closing large-neighbourhood search: CP-SAT re-solves windows "
                      "of blocks; stop after this many windows without improvement (0: off)", low=0),
               Option("lns_size", int, LNS_WINDOW, "blocks per LNS window", low=1))

    def warm_up(self) -> None:
        from placement.registry import get_method
        get_method("heft").warm_up()        # local starts from heft's plans
        from solvers import _lns
        _lns.available()                    # import OR-Tools (seconds) before the clock starts
        try:                                # the bounds' LP (local stops at the cheap bound)
            import scipy.optimize  # noqa: F401
            import scipy.sparse  # noqa: F401
        except ImportError:
            pass

    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        if _split_choice.choosable(problem):
            return _solve_with_split_choice(self, problem, ctx)
        return self.solve_fixed(problem, ctx)

    def solve_fixed(self, problem: Problem, ctx: Context) -> Candidate:
        """The search on ``problem``'s own expansion (no split choice)."""
        p = problem
        t0 = time.perf_counter()
        pool, stats = _start_plan(p, ctx)
        start_ev = pool.best
        if start_ev is None:
            return Candidate(None, status=Status.NO_SOLUTION, stats=stats,
                             message="no constructive plan fits memory (heft, dp, memory-first fill)")
        # a plan that meets the cheap lower bound is optimal: nothing to search for
        target = p.lower_bound() * (1 + TOLERANCE)
        if start_ev.feasible and start_ev.value <= target:
            stats.update(moves=0, chains_run=0, time_s=round(time.perf_counter() - t0, 4),
                         start_value=start_ev.value, improved=False)
            return Candidate(start_ev.assignment, start_ev.order, status=Status.FEASIBLE, stats=stats,
                             medium_order=_medium_order(p, start_ev),
                             message=f"start {stats['start']} meets the lower bound")
        patience = self.option(ctx, "patience")
        max_moves = self.option(ctx, "max_moves")
        chains = self.option(ctx, "chains")
        sc_needs_order = Scorer(p).needs_order
        lns_patience = self.option(ctx, "lns")
        lns_why = _lns_unsupported(p) if lns_patience else "off"
        final = start_ev
        timed_out = False
        stats["moves"] = 0
        if lns_why is not None:
            stats["lns"] = "not run: " + lns_why
        elif not ctx.expired():
            # the LNS first (exact windows: on small and mid-size problems it finds in a few
            # windows what annealing may not), then the chains from its plan
            final, stats["lns"] = _lns_phase(p, final, ctx, lns_patience, self.option(ctx, "lns_size"))
            if final.feasible and final.value <= target:
                chains = 0
        # chains start from the best plan so far, except that the middle ones start from the
        # next-best distinct constructive plans (another basin)
        others = [ev for _, ev in pool.ranked()[1:] if violation_size(p, ev) == 0]
        for chain in range(chains):
            sub: dict = {}
            origin = final
            if 0 < chain < chains - 1 and chain - 1 < len(others):
                origin = others[chain - 1]
            best_a, best_seq, timed_out = _anneal(p, origin, ctx, patience,
                                                  int(max_moves) if max_moves else None, sub,
                                                  rng_seed=ctx.seed * 1_000_003 + chain,
                                                  target=target)
            stats["moves"] += sub.get("moves", 0)
            if best_a is not None:
                order = order_by(best_a, np.argsort(best_seq), p.n_devices)
                for ev in (evaluate(p, best_a, order), *_reschedule(p, best_a, sc_needs_order)):
                    if (violation_size(p, ev), ev.value) < (violation_size(p, final), final.value):
                        final = ev
                        stats["best_chain"] = chain
            if timed_out or (final.feasible and final.value <= target):
                break
        stats["chains_run"] = chain + 1 if chains else 0
        timed_out = timed_out or ctx.expired()
        stats["time_s"] = round(time.perf_counter() - t0, 4)
        stats["start_value"] = start_ev.value
        stats["improved"] = final is not start_ev
        status = Status.TIME_LIMIT if timed_out else Status.FEASIBLE
        return Candidate(final.assignment, final.order, status=status, stats=stats,
                         medium_order=_medium_order(p, final),
                         message=f"start {stats['start']} at {start_ev.value:.6g}; "
                         f"{stats.get('moves', 0)} moves")


def _anneal(p: Problem, start_ev, ctx: Context, patience: int, max_moves: int | None, stats: dict,
            rng_seed: int = 0, target: float = -math.inf):
    """Simulated annealing from ``start_ev``. Returns (best assignment, best priority-sorted
    sequence, stopped by time)."""
    B = p.n_blocks
    sc = Scorer(p)
    rng = random.Random(rng_seed)
    allowed = [np.nonzero(p.allowed[b])[0].tolist() for b in range(B)]
    movable = [b for b in range(B) if len(allowed[b]) > 1]
    if not movable and not sc.needs_order:
        stats["moves"] = 0
        return None, None, False
    neighbours = [[u for u, _ in p.preds[b]] + [v for v, _ in p.succs[b]] for b in range(B)]
    succ_l = [[v for v, _ in p.succs[b]] for b in range(B)]
    pred_l = [[u for u, _ in p.preds[b]] for b in range(B)]

    a = np.array(start_ev.assignment, dtype=np.int64)
    # priority from the start's schedule (start, end, topological position): a linear
    # extension whose per-device orders are the start's own
    seq = schedule_order(start_ev.start, start_ev.end, topo_position(p))
    prio = np.empty(B)
    prio[seq] = np.arange(B, dtype=float)

    w_lat = sc.weights.get("latency", 0.0)

    def value_of(metrics, mem_x, con_x, scale, end=None):
        v = sum(w * metrics[{"latency": "latency_s", "throughput": "period_s",
                             "energy": "energy_j"}[k]] for k, w in sc.weights.items())
        f = v + PENALTY * scale * (mem_x + con_x)
        if w_lat and end is not None and SMOOTH:
            # a small pull towards earlier ends everywhere: moves off the critical path are
            # then not blind, and the next critical-path improvement gets closer
            f += SMOOTH * w_lat * float(end.mean())
        return v, f, (mem_x + con_x) > 0

    metrics, mx, cx, (st, en) = sc.score(a, seq)
    scale = abs(value_of(metrics, 0, 0, 1)[0]) or 1.0
    cur_v, cur_f, cur_bad = value_of(metrics, mx, cx, scale, en)
    cache = {"a": a.copy(), "seq": seq.copy(), "start": st, "end": en}
    if sc.needs_latency:
        cache.update(_latency_inputs(sc, a))
    # descent first: every single-block move (random order, first improvement), repeated
    # while it improves; a budget of evaluations keeps it short on large problems
    pairs = [(b, y) for b in movable for y in allowed[b]]
    budget = DESCENT_EVALS
    moves = 0
    improved = True
    while improved and budget > 0 and not ctx.expired():
        improved = False
        rng.shuffle(pairs)
        for b, y in pairs:
            if budget <= 0 or (moves % 64 == 0 and ctx.expired()):
                break
            if a[b] == y:
                continue
            budget -= 1
            moves += 1
            new_a = a.copy()
            new_a[b] = y
            metrics, mx, cx, (st, en) = sc.score(new_a, seq, cache if sc.needs_latency else None)
            v, f, bad = value_of(metrics, mx, cx, scale, en)
            if f < cur_f - 1e-12 * abs(cur_f):
                a, cur_v, cur_f, cur_bad = new_a, v, f, bad
                improved = True
                if sc.needs_latency:
                    cache = {"a": a.copy(), "seq": seq.copy(), "start": st, "end": en}
                    cache.update(_latency_inputs(sc, a))
    best = (cur_bad, cur_v if not cur_bad else cur_f)
    best_a, best_seq = a.copy(), seq.copy()
    # annealing: hot to cold over about two thirds of the patience, then reheat from the best
    epoch = max(50, patience // 30)
    t_start, t_end = T_START, T_END
    cool = (t_end / t_start) ** (1.0 / 20)        # 20 epochs from hot to cold, then reheat
    temp = t_start
    since = found_at = 0
    moves0 = moves
    p_reorder = 0.25 if sc.needs_order else 0.0
    p_group = 0.15
    p_swap = 0.15
    timed_out = False
    while True:
        if moves % 64 == 0 and ctx.expired():
            timed_out = True
            break
        if max_moves is not None and moves >= max_moves:
            break
        if since >= max(patience, found_at - moves0) or (not best[0] and best[1] <= target):
            break
        moves += 1
        since += 1
        r = rng.random()
        new_a, new_prio = a, prio
        if r < p_reorder:
            b = rng.randrange(B)
            lo = max((prio[u] for u in pred_l[b]), default=-1.0)
            hi = min((prio[v] for v in succ_l[b]), default=float(B))
            if hi - lo <= 1e-9:
                continue
            new_prio = prio.copy()
            new_prio[b] = lo + (hi - lo) * (0.05 + 0.9 * rng.random())
        elif r < p_reorder + p_group and movable:
            # a connected group of blocks on one device moves together: crossing a costly
            # link one block at a time is uphill, together it may not be
            b = rng.choice(movable)
            x = a[b]
            size = rng.randint(2, 6)
            group, frontier = [b], [b]
            seen = {b}
            while frontier and len(group) < size:
                c = frontier.pop(rng.randrange(len(frontier)))
                for n in neighbours[c]:
                    if n not in seen and a[n] == x and len(group) < size:
                        seen.add(n)
                        group.append(n)
                        frontier.append(n)
            y = rng.choice(allowed[b])
            if y == x or len(group) < 2 or not all(p.allowed[g, y] for g in group):
                continue
            new_a = a.copy()
            new_a[group] = y
        elif r < p_reorder + p_group + p_swap and len(movable) > 1:
            b, c = rng.choice(movable), rng.choice(movable)
            if a[b] == a[c] or not p.allowed[b, a[c]] or not p.allowed[c, a[b]]:
                continue
            new_a = a.copy()
            new_a[b], new_a[c] = a[c], a[b]
        else:
            if not movable:
                continue
            b = rng.choice(movable)
            nb = neighbours[b]
            if nb and rng.random() < 0.5:
                y = int(a[rng.choice(nb)])
                if not p.allowed[b, y]:
                    continue
            else:
                y = rng.choice(allowed[b])
            if y == a[b]:
                continue
            new_a = a.copy()
            new_a[b] = y
        new_seq = np.argsort(new_prio, kind="stable") if new_prio is not prio else seq
        metrics, mx, cx, (st, en) = sc.score(new_a, new_seq, cache if sc.needs_latency else None)
        v, f, bad = value_of(metrics, mx, cx, scale, en)
        delta = (f - cur_f) / max(abs(cur_f), 1e-300)
        if delta <= 0 or rng.random() < math.exp(-delta / temp):
            a, prio, seq = new_a, new_prio, new_seq
            cur_v, cur_f, cur_bad = v, f, bad
            if sc.needs_latency:
                cache = {"a": a.copy(), "seq": seq.copy(), "start": st, "end": en}
                cache.update(_latency_inputs(sc, a))
            key = (bad, v if not bad else f)
            if key[0] < best[0] or (key[0] == best[0] and key[1] < best[1] - 1e-12 * abs(best[1])):
                best = key
                best_a, best_seq = a.copy(), seq.copy()
                found_at, since = moves, 0
                ctx.report(v if not bad else None, None)
        if moves % epoch == 0:
            temp *= cool
            if temp < t_end:                         # reheat from the best plan
                temp = t_start / 2
                a, seq = best_a.copy(), best_seq.copy()
                prio = np.empty(B)
                prio[seq] = np.arange(B, dtype=float)
                metrics, mx, cx, (st, en) = sc.score(a, seq)
                cur_v, cur_f, cur_bad = value_of(metrics, mx, cx, scale, en)
                if sc.needs_latency:
                    cache = {"a": a.copy(), "seq": seq.copy(), "start": st, "end": en}
                    cache.update(_latency_inputs(sc, a))
    stats["moves"] = moves
    stats["best_found_at_move"] = found_at
    return best_a, best_seq, timed_out


# ------------------------------------------------------------------ split choices (SPEC 6)
#: share of the time left that heft's degree search (the first start) may take.
SPLIT_SEARCH_SHARE = 0.25
#: share of the time left after it that the searches of the starts take together; the rest
#: goes to the band moves and the degree moves.
STARTS_SHARE = 0.7
#: moves of the short search after a degree move (at most; each block x device at least once).
DEGREE_MOVE_MOVES = 2000


def _solve_with_split_choice(method: "LocalSearch", p: Problem, ctx: Context) -> Candidate:
    """`local` when split blocks offer several ways: the search runs on the expansion chosen
    by heft's degree search (`heuristics._split_choice`), on the max expansion and on the
    never-split one (each with a share of the time left), and the best plan then tries the
    **degree moves**: per split block, every other way, the other blocks' devices mapped
    over (`_mapped_assignments`), each followed by a short search; a move is kept when its plan
    is better. The result is never worse than `local` on the max or the never-split expansion
    alone (both are searched exactly as `solve_fixed` would)."""
    from .heft import _planned as heft_planned
    t0 = time.perf_counter()
    found = _split_choice.search(p, ctx.sub(SPLIT_SEARCH_SHARE),
                                 lambda q, c: heft_planned(q, c, "all", None))
    starts = []
    for c in (found["choice"], _split_choice.max_choice(p), _split_choice.whole_choice(p)):
        if c not in starts:
            starts.append(c)
    # a plan that meets the bound over every choice is optimal: nothing left to search
    target = p.lower_bound() * (1 + TOLERANCE)
    runs = []
    for i, c in enumerate(starts):
        if runs and (ctx.expired() or min(r[0] for r in runs) <= (0, target)):
            break
        q = p.expand(c)
        cand = method.solve_fixed(q, ctx.sub(STARTS_SHARE / (len(starts) - i)))
        runs.append((_cand_key(q, cand), i, c, q, cand))
    key, _, choice, q, cand = min(runs, key=lambda r: (r[0], r[1]))
    stats = {**cand.stats, "split": {**found["stats"], "searched": [_split_choice.describe(c) for c in starts],
                                     "values": [r[0][1] if r[0][0] == 0 else None for r in runs]}}
    timed_out = cand.status == Status.TIME_LIMIT
    if cand.assignment is not None and not ctx.expired() and key > (0, target):
        banded = _band_moves(p, ctx, choice, q, cand, key, target)
        stats["split"]["band_moves"] = banded["tried"]
        if banded["kept"]:
            stats["split"]["band_moves_kept"] = banded["kept"]
            choice, q, cand, key = banded["choice"], banded["problem"], banded["cand"], banded["key"]
    if cand.assignment is not None and not ctx.expired() and key > (0, target):
        moved = _degree_moves(p, ctx, choice, q, cand, key, target)
        stats["split"]["degree_moves"] = moved["tried"]
        if moved["choice"] != choice:
            stats["split"]["degree_moves_kept"] = moved["kept"]
            choice, q, cand, key = moved["choice"], moved["problem"], moved["cand"], moved["key"]
    stats["split"]["chosen"] = _split_choice.describe(choice)
    stats["time_s"] = round(time.perf_counter() - t0, 4)
    status = Status.TIME_LIMIT if (timed_out or ctx.expired()) else cand.status
    if cand.assignment is None:
        return Candidate(None, status=Status.NO_SOLUTION, stats=stats, message=cand.message)
    return Candidate(cand.assignment, cand.order, status=status, stats=stats, split=choice,
                     message=f"{cand.message}; split ways {_split_choice.describe(choice)}")


def _cand_key(q: Problem, cand: Candidate) -> tuple[float, float]:
    if cand.assignment is None:
        return (math.inf, math.inf)
    return _key(q, evaluate(q, np.asarray(cand.assignment, dtype=np.int64), cand.order))


def _shards(q: Problem, block: str) -> list[int]:
    """Indices of the blocks of expansion ``q`` that ``block`` of the file became (in shard order)."""
    return [i for i, b in enumerate(q.blocks) if (b.origin or b.id) == block]


def _mapped_assignments(q: Problem, a: np.ndarray, q2: Problem, block: str) -> list[np.ndarray]:
    """Assignments of expansion ``q2`` (``block`` at another degree) from assignment ``a`` of
    ``q``: every other block keeps its device; ``block``'s new shards either take its old
    shards' devices in turn (``keep``) or go to the fastest devices allowed for them, one each
    (``spread``). A device a shard may not use is replaced by its fastest allowed one."""
    a2 = np.zeros(q2.n_blocks, dtype=np.int64)
    for i, b in enumerate(q2.blocks):
        j = q.block_index.get(b.id)
        if j is not None:
            a2[i] = a[j]
    old = [int(a[j]) for j in _shards(q, block)]
    new = _shards(q2, block)
    ct = masked_ct(q2)
    out = []
    keep = a2.copy()
    for k, i in enumerate(new):
        keep[i] = old[k * len(old) // len(new)]
    out.append(keep)
    fastest = [int(d) for d in np.argsort(ct[new[0]], kind="stable") if np.isfinite(ct[new[0], d])]
    if fastest:
        spread = a2.copy()
        for k, i in enumerate(new):
            spread[i] = fastest[k % len(fastest)]
        out.append(spread)
    for cand in out:
        for i in new:
            if not q2.allowed[i, cand[i]]:
                cand[i] = int(np.argmin(ct[i]))
    return out


def _degree_moves(p: Problem, ctx: Context, choice: dict, q: Problem, cand: Candidate,
                  key: tuple[float, float], target: float = -math.inf) -> dict:
    """One pass of degree moves over the split blocks (topological order) from ``cand`` on
    expansion ``q`` of ``choice``: each other way of a block, the plan mapped over and
    searched briefly (`_anneal`, at most `DEGREE_MOVE_MOVES` moves); the best kept. Stops
    once the best plan's value meets ``target`` (the bound over every choice)."""
    opts = _split_choice.split_options(p)
    best = {"choice": dict(choice), "problem": q, "cand": cand, "key": key, "tried": 0, "kept": []}
    for block in _split_choice.choosable(p):
        for w in opts[block]:
            if w == best["choice"][block] or ctx.expired() or best["key"] <= (0, target):
                continue
            c2 = {**best["choice"], block: w}
            q2 = p.expand(c2)
            cur_q, cur_a = best["problem"], np.asarray(best["cand"].assignment, dtype=np.int64)
            for a2 in _mapped_assignments(cur_q, cur_a, q2, block):
                if ctx.expired():
                    break
                best["tried"] += 1
                _search_briefly(q2, evaluate(q2, a2), ctx, best, c2, f"{block}:{w}")
    return best


def _key(q: Problem, ev) -> tuple[float, float]:
    """The evaluator's ordering key of a plan: (violation size, value)."""
    return (violation_size(q, ev), ev.value if math.isfinite(ev.value) else math.inf)


def _search_briefly(q2: Problem, ev, ctx: Context, best: dict, c2: dict, label: str) -> None:
    """A short search (`_anneal`, at most `DEGREE_MOVE_MOVES` moves) from the plan ``ev`` of
    expansion ``q2`` (choice ``c2``); ``best`` (a move's running best) takes ``ev`` or the
    search's plan when one is better, and ``label`` is noted as kept."""
    moves = min(DEGREE_MOVE_MOVES, max(200, 2 * q2.n_blocks * q2.n_devices))
    ba, bseq, _ = _anneal(q2, ev, ctx, moves, moves, {}, rng_seed=ctx.seed, target=-math.inf)
    evs = [ev]
    if ba is not None:
        evs.append(evaluate(q2, ba, order_by(ba, np.argsort(bseq), q2.n_devices)))
    for e in evs:
        k2 = _key(q2, e)
        if _split_choice._better(k2, best["key"]):
            best.update(choice=c2, problem=q2, key=k2, cand=Candidate(e.assignment, e.order, status=Status.FEASIBLE))
            best["kept"].append(label)


def _band_layouts(q2: Problem, run: list[str], w: int) -> list[list[int]]:
    """Device per shard index (0..w-1) for the blocks of ``run`` split ``w`` ways in ``q2``:
    for k = 2.. min(w, devices), the k devices fastest on the run (stable: the first listed
    first among equals), holding contiguous bands in proportion to their speed (largest
    remainders, at least one band each)."""
    ct = masked_ct(q2)
    rows = [q2.block_index[shard_id(b, 0)] for b in run]
    total = ct[rows].sum(axis=0)
    fast = [int(d) for d in np.argsort(total, kind="stable") if np.isfinite(total[d])]
    out = []
    for k in range(2, min(w, len(fast)) + 1):
        devs = fast[:k]
        speed = 1.0 / total[devs]
        share = w * speed / speed.sum()
        counts = np.maximum(1, np.floor(share)).astype(int)
        while counts.sum() > w:
            counts[int(np.argmax(counts - share))] -= 1
        while counts.sum() < w:
            counts[int(np.argmax(share - counts))] += 1
        out.append([d for d, c in zip(devs, counts.tolist()) for _ in range(c)])
    return out


#: band moves searched further (`_anneal`) per round, after every layout was scored as laid
#: out; rounds (each from the best plan so far) while one improves, at most `BAND_ROUNDS`.
BAND_MOVES_SEARCHED = 4
BAND_ROUNDS = 3


def _band_moves(p: Problem, ctx: Context, choice: dict, q: Problem, cand: Candidate,
                key: tuple[float, float], target: float = -math.inf) -> dict:
    """Band moves (`_split_choice.spatial_runs`): a run of spatially split blocks set to one
    way and one band partition over the fastest devices (`_band_layouts`), so that each band
    stays on its device through the run and only halos cross; every other block keeps its
    device. Every such layout is scored as laid out; the `BAND_MOVES_SEARCHED` best are each
    followed by a short search (`_anneal`, as `_degree_moves`); the best plan is kept when
    better. The per-block degree moves cannot reach these: they change one block at a time,
    and a lone block split over devices pays to scatter and gather its whole tensor."""
    best = {"choice": dict(choice), "problem": q, "cand": cand, "key": key, "tried": 0, "kept": []}
    runs = _split_choice.spatial_runs(p)
    for _ in range(BAND_ROUNDS):
        before = best["key"]
        _band_round(p, ctx, best, runs, target)
        if not _split_choice._better(best["key"], before) or ctx.expired():
            break
    return best


def _band_round(p: Problem, ctx: Context, best: dict, runs: list, target: float) -> None:
    """One round of `_band_moves` over ``runs`` from ``best`` (updated in place)."""
    choice, cur_q = best["choice"], best["problem"]
    cur_a = np.asarray(best["cand"].assignment, dtype=np.int64)
    laid: list[tuple[tuple[float, float], int, str, dict, Problem, object]] = []
    for run, w in runs:
        if ctx.expired():
            break
        c2 = {**choice, **{b: w for b in run}}
        q2 = p.expand(c2)
        # every block keeps its device; the blocks new in q2 are the run's shards, all laid
        # out below
        base = np.zeros(q2.n_blocks, dtype=np.int64)
        for i, blk in enumerate(q2.blocks):
            j = cur_q.block_index.get(blk.id)
            if j is not None:
                base[i] = cur_a[j]
        for layout in _band_layouts(q2, run, w):
            a2 = base.copy()
            for b in run:
                for k, d in enumerate(layout):
                    a2[q2.block_index[shard_id(b, k)]] = d
            if not q2.allowed[np.arange(q2.n_blocks), a2].all():
                continue
            best["tried"] += 1
            ev = evaluate(q2, a2)
            laid.append((_key(q2, ev), len(laid), f"{run[0]}..{run[-1]}:{w}x{len(set(layout))}", c2, q2, ev))
    laid.sort(key=lambda t: (t[0], t[1]))
    for _, _, label, c2, q2, ev in laid[:BAND_MOVES_SEARCHED]:
        if ctx.expired() or best["key"] <= (0, target):
            break
        _search_briefly(q2, ev, ctx, best, c2, label)


def _lns_unsupported(p: Problem) -> str | None:
    """Why the closing LNS cannot run on ``p`` (None: it can)."""
    from solvers import _lns
    return _lns.supports(p)


def _lns_phase(p: Problem, final, ctx: Context, patience: int, size: int):
    """`solvers._lns.search` from ``final`` until ``patience`` windows in a row bring nothing
    or, under a time limit, `LNS_SHARE` of the time left has passed; its plan replaces
    ``final`` only if strictly better."""
    from solvers import _lns
    deadline = ctx.deadline
    if math.isfinite(deadline):
        deadline = time.monotonic() + LNS_SHARE * max(0.0, ctx.time_left()) - LNS_READ_BACK_S
    r = _lns.search(p, final, deadline, size=size, patience=patience, seed=ctx.seed, progress=ctx.report)
    return (r.best if r.improved else final), r.stats


#: seconds kept back from the deadline by the closing LNS (re-scoring its plan).
LNS_READ_BACK_S = 0.05


def _reschedule(p: Problem, a: np.ndarray, needs_order: bool) -> list:
    """Other orders for the same assignment: the evaluator's list rule, and HEFT's insertion
    schedule with the devices fixed (upward rank, gaps filled). Cheap; sometimes shorter."""
    if not needs_order or p.n_blocks * p.n_devices > 20_000:
        return []
    out = [evaluate(p, a)]
    ct = masked_ct(p)
    try:
        _, s, e = list_schedule(p, ct, upward_rank_mean(p, ct), None, force=a)
        out.append(evaluate(p, a, order_by(a, np.argsort(schedule_order(s, e, topo_position(p))),
                                           p.n_devices)))
    except _NoRoom:
        pass
    return out


def _medium_order(p: Problem, ev) -> list[list[int]] | None:
    """The sending order on each medium of an evaluated plan (heft's start may carry its own,
    not first come first served), so that the returned plan re-scores to the same value."""
    return [list(o) for o in ev.medium_order] if p.media else None


def _latency_inputs(sc: Scorer, a: np.ndarray) -> dict:
    c = plan_costs(sc.p, a)
    return {"ctb": c.ct, "edge_time": c.edge_time, "in_time": c.in_time}


__all__ = ["LocalSearch", "Scorer"]

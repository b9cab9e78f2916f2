"""`dp`: dynamic programming over contiguous segments (the Neurosurgeon / PipeEdge family).

Latency and energy (and weighted sums of the two): a shortest path over (block, device)
along a linear order of the blocks, ``O(n d^2)``:

    cost[i, d] = min_d' cost[i-1, d'] + move(d' -> d, bytes live at cut i) + run(block i on d)

where ``run`` is compute time (latency), compute energy (energy) or their weighted sum, and
``move`` the transfer time (link latency + bytes / bandwidth) or the radio energy
``(tx + rx) * bytes / bandwidth``. The input comes from ``source``; the last block's output
goes to ``sink``. **On a chain without binding memory this is exact** (the status is then
``optimal``): nothing runs in parallel on a chain, so latency and energy are sums along the
path. It is not exact with ``count_idle`` energy or constraints (then a small sweep of
latency/energy weights is scored by the evaluator and the best feasible plan kept).

Memory (the documented approximation): each (block, device) state keeps only its best
path, and that path's memory use per device; a transition is allowed only if the block fits
beside what that path already put on the device (pinned blocks' weights reserved up front).
The plan is therefore always memory-feasible, but when memory binds a better path may be
discarded (the best label per state is kept, not all of them): a heuristic then.

Throughput: pipeline partitioning as in PipeEdge -- contiguous stages, each on a distinct
device; the period is the largest stage compute time or link transmission (input from
``source``, bytes between consecutive stages, output to ``sink``), memory checked per
stage. Interchangeable devices are grouped into types (``Problem.identical_device_groups``)
and the DP state is (blocks placed, devices used per type, type of the last stage), so many
identical devices stay tractable. When that state space is too large the DP keeps only the
fastest devices that fit the budget (documented in ``docs/heuristics.md``). The DP is exact
among plans of contiguous stages on distinct devices for a chain; tests check it against
`brute` restricted that way.

DAGs: the blocks are laid out in a depth-first topological order (branches kept together)
and treated as a chain, with every tensor alive across a cut counted as moving at that cut
(input tensors start on ``source``, outputs end on ``sink``). A heuristic there: the
evaluator scores the real plan.

Split choices (SPEC section 6): a split block's shards are parallel, which a path over one
linear order cannot express, so ways are not a DP state. ``dp`` plans the max expansion and
the never-split one (every block whole where ``1`` is allowed, on a chain a chain again) and
keeps the better plan; it is then never claimed optimal (the path DP is exact over one
expansion only). `heuristics._split_choice` says how.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from placement.method import Candidate, Context, Method
from placement.plan import Status
from placement.problem import Problem

from . import _split_choice
from ._common import Memory, Pool, masked_ct, order_by, pack_fallback


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b

#: largest number of array cells (keys x types x units^2) the pipeline DP may touch.
PIPELINE_BUDGET = 300_000_000
#: at most this many cut positions for the pipeline DP (larger models are cut into runs).
MAX_UNITS = 120


def wants_pipeline(p: Problem) -> bool:
    """The objective or a constraint is about the period: the plan a throughput objective
    wants is the pipeline DP's (`pipeline_dp`)."""
    return bool(p.objective.weights.get("throughput") or "period_s" in p.constraints
                or "throughput_per_s" in p.constraints)


def is_chain(p: Problem) -> bool:
    """One input block, one output block, every block at most one predecessor and successor."""
    return (len(p.input_blocks) == 1 and len(p.output_blocks) == 1
            and all(len(x) <= 1 for x in p.preds) and all(len(x) <= 1 for x in p.succs))


def linear_order(p: Problem) -> np.ndarray:
    """A depth-first topological order: a block's successors follow it as soon as they are
    ready (most recently enabled first), so branches stay contiguous and few tensors are
    alive across a cut. For a chain it is the chain."""
    waiting = [len(x) for x in p.preds]
    stack = [b for b in reversed(range(p.n_blocks)) if not waiting[b]]
    out = []
    while stack:
        b = stack.pop()
        out.append(b)
        for v, _ in reversed(p.succs[b]):
            waiting[v] -= 1
            if not waiting[v]:
                stack.append(v)
    return np.array(out, dtype=np.int64)


def live_bytes(p: Problem, seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bytes alive across each cut of ``seq``: ``cut[i]`` between positions i-1 and i
    (``cut[0]``: the model input, from ``source``), ``cut[n]``: outputs to ``sink``.
    Also ``last_cut``: the bytes of outputs of blocks before the last one (carried along)."""
    n = len(seq)
    pos = np.empty(p.n_blocks, dtype=np.int64)
    pos[seq] = np.arange(n)
    diff = np.zeros(n + 2)
    for k in range(p.n_edges):
        i, j = pos[p.edge_src[k]], pos[p.edge_dst[k]]
        diff[i + 1] += p.edge_bytes[k]
        diff[j + 1] -= p.edge_bytes[k]
    for b in p.input_blocks:                 # from a virtual producer at position -1
        diff[0] += p.in_bytes[b]
        diff[pos[b] + 1] -= p.in_bytes[b]
    for b in p.output_blocks:                # to a virtual consumer at position n
        diff[pos[b] + 1] += p.out_bytes[b]
        diff[n + 1] -= p.out_bytes[b]
    return np.cumsum(diff)[: n + 1], pos


def path_dp(p: Problem, ct: np.ndarray, seq: np.ndarray, w_time: float, w_energy: float):
    """Shortest path over (position, device) with memory tracked along each state's path.
    Returns (assignment or None, cost, memory_masked) -- ``memory_masked`` is True when a
    memory check removed a transition that was otherwise possible (then not exact)."""
    B, D = ct.shape
    cut, _ = live_bytes(p, seq)
    inv = p.inv_bandwidth
    radio = p.radio_power
    base = Memory(p)
    cap = base.cap

    def move(nbytes):                                   # (D, D) cost of moving nbytes
        t = np.where(np.eye(D, dtype=bool), 0.0, p.transfer_matrix(nbytes))
        m = np.zeros((D, D))
        if w_time:
            m += w_time * t
        if w_energy:
            m += w_energy * radio * (nbytes * inv)
        return np.where(p.reachable, m, np.inf)

    def run(b):
        c = ct[b]
        r = np.zeros(D)
        if w_time:
            r = r + w_time * c
        if w_energy:
            r = r + w_energy * np.where(np.isfinite(c), p.node_energy[b], 0.0)
        return np.where(np.isfinite(c), r, np.inf)

    back = np.zeros((B, D), dtype=np.int64)
    b0 = int(seq[0])
    cost = move(cut[0])[p.source] + run(b0)
    P = np.tile(base.params, (D, 1))                     # P[d, x]: weights on x along path to d
    A = np.tile(base.act, (D, 1))
    extra0 = 0.0 if base.reserved[b0] else p.params[b0]
    fit0 = base.params + extra0 + np.maximum(base.act, p.activation[b0]) <= cap
    masked = bool((~fit0 & np.isfinite(cost)).any())
    cost = np.where(fit0, cost, np.inf)
    idx = np.arange(D)
    P[idx, idx] += extra0
    A[idx, idx] = np.maximum(A[idx, idx], p.activation[b0])
    for i in range(1, B):
        b = int(seq[i])
        extra = 0.0 if base.reserved[b] else p.params[b]
        # fit[d', d]: block b fits on d beside the path ending at (i-1, d')
        fit = P + extra + np.maximum(A, p.activation[b]) <= cap[None, :]
        C = cost[:, None] + move(cut[i]) + run(b)[None, :]
        Cm = np.where(fit, C, np.inf)
        best = np.argmin(Cm, axis=0)
        new = Cm[best, idx]
        if not masked:
            with np.errstate(invalid="ignore"):
                masked = bool((np.min(C, axis=0) < new - 1e-15 * np.abs(new)).any())
        back[i] = best
        P, A = P[best].copy(), A[best].copy()
        P[idx, idx] += extra
        A[idx, idx] = np.maximum(A[idx, idx], p.activation[b])
        cost = new
    final = cost + move(cut[B])[:, p.sink]
    d = int(np.argmin(final))
    if not np.isfinite(final[d]):
        return None, math.inf, masked
    a = np.empty(B, dtype=np.int64)
    for i in range(B - 1, -1, -1):
        a[seq[i]] = d
        d = int(back[i, d])
    return a, float(final.min()), masked


def _device_types(p: Problem, ct: np.ndarray, keep: np.ndarray) -> list[list[int]]:
    groups = [g for g in p.identical_device_groups()]
    grouped = {d for g in groups for d in g}
    types = [[d for d in g if keep[d]] for g in groups]
    types += [[d] for d in range(p.n_devices) if d not in grouped and keep[d]]
    return [t for t in types if t]


def _units(p: Problem, ct: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Cut positions in ``seq`` that the pipeline DP may use: every position when there are
    at most ``MAX_UNITS`` blocks, else about ``MAX_UNITS`` runs of equal minimum compute
    (pinned blocks get runs of their own)."""
    n = len(seq)
    if n <= MAX_UNITS:
        return np.arange(n + 1)
    w = np.nan_to_num(np.nanmin(np.where(np.isfinite(ct[seq]), ct[seq], np.nan), axis=1)) + 1e-12
    cum = np.concatenate([[0.0], np.cumsum(w)])
    cuts = set(np.searchsorted(cum, np.linspace(0, cum[-1], MAX_UNITS + 1)).tolist())
    pos = np.empty(p.n_blocks, dtype=np.int64)
    pos[seq] = np.arange(n)
    for b in p.pinned:
        cuts |= {int(pos[b]), int(pos[b]) + 1}
    cuts |= {0, n}
    return np.array(sorted(c for c in cuts if 0 <= c <= n), dtype=np.int64)


def pipeline_dp(p: Problem, ct: np.ndarray, seq: np.ndarray, ctx: Context | None = None):
    """PipeEdge-style partition of ``seq`` into contiguous stages on distinct devices that
    minimises the period. Returns (assignment or None, period, note)."""
    B, D = ct.shape
    cut, _ = live_bytes(p, seq)
    cuts = _units(p, ct, seq)
    U = len(cuts) - 1
    notes = []
    if U < B:
        notes.append(f"stages cut only at {U} of {B} positions (runs of equal compute)")
    keep = np.ones(D, dtype=bool)
    types = _device_types(p, ct, keep)

    def work(types):
        combos = 1
        for t in types:
            combos = min(combos * (len(t) + 1), 10 ** 9)
        return combos * len(types) * len(types) * U * (U + 1)

    if work(types) > PIPELINE_BUDGET:
        # keep the fastest devices (and source, sink and pinned ones) within the budget
        speed = np.nansum(np.where(np.isfinite(ct), 1.0 / np.maximum(ct, 1e-30), 0.0), axis=0)
        must = {p.source, p.sink, *p.pinned.values()}
        ranked = [d for d in np.argsort(-speed, kind="stable").tolist() if d not in must]
        for k in range(len(ranked), -1, -1):
            keep[:] = False
            keep[list(must)] = True
            keep[ranked[:k]] = True
            types = _device_types(p, ct, keep)
            if work(types) <= PIPELINE_BUDGET:
                break
        notes.append(f"restricted to the {int(keep.sum())} fastest of {D} devices (state budget)")
    T = len(types)
    rep = [t[0] for t in types]
    counts = [len(t) for t in types]
    inv = p.inv_bandwidth
    link = np.full((T, T), np.inf)                 # s/byte from a stage on x to one on y
    for x in range(T):
        for y in range(T):
            if x == y:
                if len(types[x]) > 1:
                    link[x, y] = inv[types[x][0], types[x][1]]
            elif p.reachable[rep[x], rep[y]]:
                link[x, y] = inv[rep[x], rep[y]]
    src_link = np.array([0.0 if p.source in t else (inv[p.source, t[0]] if p.reachable[p.source, t[0]]
                                                     else np.inf) for t in types])
    snk_link = np.array([0.0 if p.sink in t else (inv[t[0], p.sink] if p.reachable[t[0], p.sink]
                                                   else np.inf) for t in types])
    cut_u = cut[cuts]                               # (U+1,) bytes alive at each usable cut
    # per-type stage cost matrix over unit ranges [i, k)
    cts = ct[seq][:, rep]
    fin = np.isfinite(cts)
    pre = np.vstack([np.zeros(T), np.cumsum(np.where(fin, cts, 0.0), axis=0)])[cuts]   # (U+1, T)
    bad = np.vstack([np.zeros(T), np.cumsum(~fin, axis=0)])[cuts]
    ppre = np.concatenate([[0.0], np.cumsum(p.params[seq])])[cuts]
    acts = p.activation[seq]
    unit_act = np.array([acts[cuts[u]:cuts[u + 1]].max() for u in range(U)])
    act_rng = np.full((U + 1, U + 1), np.inf)
    for i in range(U):
        act_rng[i, i + 1:] = np.maximum.accumulate(unit_act[i:])
    upper = np.triu(np.ones((U + 1, U + 1), dtype=bool), 1)
    mem_need = np.where(upper, ppre[None, :] - ppre[:, None] + act_rng, np.inf)
    seg = []
    for t in range(T):
        ok = upper & (bad[None, :, t] == bad[:, None, t]) & (mem_need <= p.memory_cap[rep[t]])
        seg.append(np.where(ok, pre[None, :, t] - pre[:, None, t], np.inf)[:U])   # (U, U+1)
    # transfer time into the first unit of a stage on type t after a stage on `last` (-1: the
    # source), per cut: one row per (last, t), computed once rather than once per state
    into_rows = {(last, t): np.nan_to_num(cut_u[:U] * (src_link[t] if last < 0 else link[last, t]), nan=np.inf)
                 for last in range(-1, T) for t in range(T)}
    # V[key][k]: best period with the first k units placed; key = (usage per type, last type)
    start = (tuple([0] * T), -1)
    V = {start: np.concatenate([[0.0], np.full(U, np.inf)])}
    back: dict = {}
    level = [start]
    cols = np.arange(U + 1)
    while level:
        nxt: dict = {}
        for key in level:
            usage, last = key
            vals = V[key]
            if not np.isfinite(vals[:U]).any():
                continue
            for t in range(T):
                if usage[t] >= counts[t]:
                    continue
                if ctx is not None and ctx.expired():
                    return None, math.inf, "time limit inside the pipeline DP"
                base = np.maximum(vals[:U], into_rows[last, t])
                M = np.maximum(base[:, None], seg[t])
                M[:, U] = np.maximum(M[:, U], cut_u[U] * snk_link[t])
                bi = np.argmin(M, axis=0)
                val = M[bi, cols]
                if not np.isfinite(val).any():
                    continue
                nu = list(usage)
                nu[t] += 1
                nk = (tuple(nu), t)
                if nk not in V:
                    V[nk] = np.full(U + 1, np.inf)
                    back[nk] = (np.zeros(U + 1, dtype=np.int64), [None] * (U + 1))
                    nxt[nk] = True
                better = val < V[nk]
                if better.any():
                    V[nk] = np.where(better, val, V[nk])
                    bi_arr, bk = back[nk]
                    for k in np.nonzero(better)[0].tolist():
                        bi_arr[k] = bi[k]
                        bk[k] = key
        level = list(nxt)
    finals = [(V[k][U], k) for k in V if k != start and np.isfinite(V[k][U])]
    note = "; ".join(notes)
    if not finals:
        return None, math.inf, note or "no pipeline of distinct devices fits memory"
    period, key = min(finals, key=lambda x: x[0])
    stages = []
    k = U
    while key != start:
        bi_arr, bk = back[key]
        i = int(bi_arr[k])
        stages.append((cuts[i], cuts[k], key[1]))
        key, k = bk[k], i
    stages.reverse()
    used = [0] * T
    a = np.empty(B, dtype=np.int64)
    for i, k, t in stages:
        a[seq[i:k]] = types[t][used[t]]
        used[t] += 1
    return a, float(period), note


def dag_message(p: Problem) -> str:
    """What `dp` says on a problem that is not a chain (SPEC 8: a method says what it does not
    do): how many blocks branch or join, and that the plan treats the model as a chain."""
    forks = sum(len(x) > 1 for x in p.succs)
    joins = sum(len(x) > 1 for x in p.preds)
    return (f"dp is for chains: this model is a DAG ({forks} block(s) with several consumers, "
            f"{joins} with several producers, {len(p.input_blocks)} input(s), "
            f"{len(p.output_blocks)} output(s)); it was planned as a chain in a depth-first "
            "order (parallel branches one after another, every tensor alive across a cut moved "
            "at that cut), so the plan is a heuristic one; heft, local and cpsat run branches "
            "in parallel")


class DynamicProgramming(Method):
    name = "dp"
    kind = "heuristic"
    guarantee = ("for chains: optimal for latency, energy and their weighted sums without binding "
                 "memory, constraints or idle energy, a heuristic otherwise; on a DAG a heuristic that "
                 "runs the model as a chain (branches one after another): use heft, local or cpsat there")
    summary = ("DP over contiguous segments: shortest path over block x device (latency, energy), "
               "PipeEdge pipeline partitioning over device types (throughput); DAGs linearised")

    #: split choices (SPEC 6): the better of the max and the never-split expansions (`solve`)
    features = frozenset({"split_choice"})

    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        """With split choices: the DP on the max expansion and on the never-split one (every
        block whole where ``1`` is allowed), the better plan kept (evaluator key). A path DP
        over one expansion proves nothing about the others, so the result is then never
        claimed optimal and carries no bound."""
        if not _split_choice.choosable(problem):
            return self.solve_fixed(problem, ctx)
        found = _split_choice.search(problem, ctx, self._planned, passes=0)
        cand = found["payload"]
        status = Status.TIME_LIMIT if ctx.expired() else (
            Status.FEASIBLE if cand.status == Status.OPTIMAL else cand.status)
        return replace(cand, status=status, bound=None, split=found["choice"],
                       stats={**cand.stats, "split": found["stats"]},
                       message=_join(cand.message.replace("exact: ", "exact on this expansion: "),
                                     f"split ways {_split_choice.describe(found['choice'])} "
                                     "(the better of max(ways) and whole)"))

    def _planned(self, q: Problem, ctx: Context):
        from ._common import violation_size
        from placement.evaluator import evaluate
        cand = self.solve_fixed(q, ctx)
        if cand.assignment is None:
            return (math.inf, math.inf), cand
        ev = evaluate(q, np.asarray(cand.assignment, dtype=np.int64), cand.order)
        return (violation_size(q, ev), ev.value if math.isfinite(ev.value) else math.inf), cand

    def solve_fixed(self, problem: Problem, ctx: Context) -> Candidate:
        """The DP on ``problem``'s own expansion (no split choice)."""
        p = problem
        ct = masked_ct(p)
        w = p.objective.weights
        w_lat, w_thr, w_en = w.get("latency", 0.0), w.get("throughput", 0.0), w.get("energy", 0.0)
        chain = is_chain(p)
        seqs = [linear_order(p)]
        if not chain:
            topo = np.array(p.topo, dtype=np.int64)
            if not np.array_equal(topo, seqs[0]):
                seqs.append(topo)
        pool = Pool(p)
        stats: dict = {"chain": chain}
        exact = False
        t0 = time.perf_counter()
        # weight pairs for the path DP: the objective's own, then a sweep when constraints,
        # idle energy or a throughput term make the objective not a path sum
        pairs = []
        if w_lat or w_en:
            pairs.append((w_lat, w_en))
        sweep = bool(p.constraints) or p.count_idle or w_thr or not (w_lat or w_en)
        if sweep:
            from placement import bounds
            sl = max(bounds.latency_bound(p), 1e-12)
            se = max(bounds.energy_bound(p), 1e-12)
            for alpha in (1.0, 0.0, 0.5, 0.9, 0.1, 0.97, 0.03, 0.7, 0.3):
                pairs.append((alpha / sl, (1 - alpha) / se))
        for si, seq in enumerate(seqs):
            if wants_pipeline(p):
                # the pipeline DP first: it is the plan a throughput objective wants, and the
                # path sweep below must not use up a short limit before it runs
                a, period, note = pipeline_dp(p, ct, seq, ctx)
                if note:
                    stats["pipeline"] = note
                if a is not None:
                    pool.add(a, None, f"pipeline[{si}]")
            for wt, we in pairs:
                if ctx.expired() and pool.has_plan:
                    break
                a, cost, masked = path_dp(p, ct, seq, wt, we)
                if a is None:
                    continue
                label = f"path[{si}] w=({wt:.3g},{we:.3g})"
                ev = pool.add(a, order_by(a, np.argsort(seq), p.n_devices), label)
                if p.n_blocks * p.n_devices <= 20_000:       # the list rule costs O(B D) steps
                    pool.add(a, None, label + " list-rule")
                if (chain and (wt, we) == (w_lat, w_en) and not masked and not w_thr
                        and not p.constraints and not p.count_idle and ev is not None and ev.feasible):
                    exact = True
                    stats["dp_cost"] = cost
        if not pool.feasible:
            pool.add(pack_fallback(p, ct, np.array(p.topo, dtype=np.int64)), None, "memory-fill")
        stats["time_s"] = round(time.perf_counter() - t0, 4)
        stats["chosen"] = pool.best_label
        ev = pool.best
        if ev is None:
            return Candidate(None, status=Status.NO_SOLUTION, stats=stats,
                             message="no memory-feasible path over the linear order of the blocks")
        if exact and pool.feasible:
            return Candidate(ev.assignment, ev.order, status=Status.OPTIMAL,
                             bound=min(stats["dp_cost"], ev.value),
                             message="exact: chain, path objective, memory never binding", stats=stats)
        status = Status.TIME_LIMIT if ctx.expired() else Status.FEASIBLE
        message = f"best variant: {pool.best_label}"
        if not chain:
            message = dag_message(p) + "; " + message
        return Candidate(ev.assignment, ev.order, status=status, stats=stats, message=message)


__all__ = ["DynamicProgramming", "path_dp", "pipeline_dp", "linear_order", "is_chain"]

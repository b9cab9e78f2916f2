"""`heft`: communication- and memory-aware list scheduling of the HEFT family.

Latency (and any objective with a latency term) -- blocks in decreasing priority, each put
on the device where it finishes earliest:

* priority: HEFT's upward rank (mean compute, mean communication) or PEFT's rank (mean of
  the optimistic cost table); both are topological orders (ties by topological position);
* earliest finish time with **insertion** into idle gaps of a device, link latency plus
  bytes / bandwidth for every edge, ``model.input_bytes`` from ``source`` for input blocks,
  and the delivery of the output to ``sink`` counted in an output block's finish time;
* **memory**: a device is a candidate only if the block's weights and working memory fit
  beside what it holds already (pinned blocks' weights are reserved up front), so a plan
  never overflows; pins and ``allowed_devices`` narrow the candidates;
* **ties** are broken by the effect on successors -- the optimistic cost table of PEFT
  (shortest remaining path from the block's end on that device to ``sink``). Without it a
  zero-cost first block ties on every device, lands on the first (perhaps slowest) one, and
  communication then keeps the whole chain there (SAGA's HEFT ends 5x from the optimum);
* a **lookahead** variant (PEFT selection) minimises finish time plus that optimistic cost.

The variants are computed (vectorised over devices) and the evaluator picks the best (on a
latency-only problem through the one simulator's `placement.simulator.SequenceSim`, the
evaluator's own rule without numpy per call). Then, for latency-only problems, `polish`: a
first-improvement descent that moves blocks of the critical chain (alone or with a
neighbour) between devices, scored by the compiled twin (`heuristics._polish`) of the
simulator's insertion rule, from the best, best single-device and best list plans,
within a deterministic budget of candidates (option ``polish``; 0 turns it off).

Throughput: blocks in topological order and in decreasing work (LPT), each on the device
that keeps the busiest resource -- device compute or directed link transmission, incl.
input from ``source`` and output to ``sink`` -- lowest (ties: least added work).
Energy: each block on the device that adds the least compute plus radio energy given the
blocks already placed. Weighted sums and constraints: every variant above is scored by the
evaluator on the problem's own objective and constraints, and the best feasible kept.

If memory leaves no device for some block, a memory-first fill (topological order, stay on
a device while it fits) is tried; if that fails too the result is ``no_solution``, with
the block that found no room.
"""

from __future__ import annotations

import heapq
import math
import time

import numpy as np

from placement.method import Candidate, Context, Method, Option
from placement.plan import Status
from placement.problem import Problem
from placement.simulator import GAP_SLACK

from . import _polish
from ._common import (Memory, Pool, masked_ct, optimistic_cost_table, pack_fallback, schedule_order,
                      topo_position, upward_rank_mean)

_EPS = GAP_SLACK        # a block fits an idle gap up to float noise (the simulator's rule)


class _Expired(Exception):
    """The deadline passed inside a list pass (only raised when a plan is already known)."""


class _NoRoom(Exception):
    def __init__(self, block: int):
        self.block = block


def _ready_order(p: Problem, priority: np.ndarray, deadline: float):
    """The list-scheduling order: repeatedly the highest-priority block whose predecessors
    have all been yielded (ties: topological position). Raises `_Expired` past ``deadline``
    (checked every 64 blocks). Shared by both list-scheduling passes."""
    pos = topo_position(p).tolist()
    waiting = [len(x) for x in p.preds]
    prio = priority.tolist()
    heap = [(-prio[b], pos[b], b) for b in range(p.n_blocks) if not waiting[b]]
    heapq.heapify(heap)
    steps = 0
    while heap:
        b = heapq.heappop(heap)[2]
        steps += 1
        if steps % 64 == 0 and time.monotonic() > deadline:
            raise _Expired()
        yield b                      # the caller places b before its successors are released
        for v, _ in p.succs[b]:
            waiting[v] -= 1
            if not waiting[v]:
                heapq.heappush(heap, (-prio[v], pos[v], v))


def _occupy(intervals: list, avail, maxgap, d: int, s: float, e: float) -> None:
    """Record [s, e) on device d: its busy intervals (sorted), the end of the last one
    (``avail``) and the longest idle gap before it (``maxgap``, to skip devices where no
    gap can fit a block). ``avail`` and ``maxgap`` are lists or arrays."""
    iv = intervals[d]
    iv.append((s, e))
    if s < avail[d]:
        iv.sort()
    avail[d] = max(avail[d], e)
    prev, g = 0.0, 0.0
    for x, y in iv:
        g = max(g, x - prev)
        prev = y
    maxgap[d] = g


def list_schedule(p: Problem, ct: np.ndarray, priority: np.ndarray, oct_: np.ndarray | None,
                  lookahead: bool = False, insertion: bool = True, force: np.ndarray | None = None,
                  deadline: float = math.inf):
    """One HEFT-family pass. ``priority``: higher first (must respect precedence, ties broken
    by topological position). ``oct_``: optimistic cost table for tie-breaks (and, with
    ``lookahead``, added to the finish time). Returns (assignment, start, end); raises
    `_NoRoom` when memory leaves no device for a block. ``force[b] >= 0`` puts b on that
    device when it may run and fits there (CPoP's critical-path processor)."""
    B, D = ct.shape
    if D <= SMALL_D:
        return _list_schedule_small(p, ct, priority, oct_, lookahead, insertion, force, deadline)
    a = np.full(B, -1, dtype=np.int64)
    start = np.zeros(B)
    end = np.zeros(B)
    mem = Memory(p)
    avail = np.zeros(D)                                   # end of the last interval
    intervals: list[list[tuple[float, float]]] = [[] for _ in range(D)]
    maxgap = np.zeros(D)                                  # longest idle gap before avail
    lat, inv = p.latency, p.inv_bandwidth
    src_arrival = {b: p.input_arrival(b) for b in p.input_blocks}
    delivery = {b: p.output_delivery(b) for b in p.output_blocks}
    reach_sink = p.reachable[:, p.sink]
    for b in _ready_order(p, priority, deadline):
        preds = p.preds[b]
        if preds:
            ready = np.zeros(D)
            for u, k in preds:
                du = a[u]
                arr = end[u] + lat[du] + p.edge_bytes[k] * inv[du]
                arr[du] = end[u]
                np.maximum(ready, arr, out=ready)
        else:
            ready = src_arrival[b].copy()
        c = ct[b]
        ok = np.isfinite(ready) & np.isfinite(c) & mem.fits(b)
        if not p.succs[b]:
            ok &= reach_sink
        if not ok.any():
            raise _NoRoom(b)
        if force is not None and force[b] >= 0 and ok[force[b]]:
            ok = np.zeros(D, dtype=bool)
            ok[force[b]] = True
        est = np.maximum(ready, avail)
        if insertion:
            for d in np.nonzero(ok & (maxgap >= c - _EPS) & (ready < avail))[0].tolist():
                prev = 0.0
                for s, e in intervals[d]:
                    t = max(prev, ready[d])
                    if t + c[d] <= s + _EPS:
                        est[d] = t
                        break
                    prev = e
        eft = est + c
        score = eft + delivery[b] if b in delivery else eft
        if lookahead and oct_ is not None:
            score = eft + oct_[b]
        score = np.where(ok, score, np.inf)
        best = score.min()
        ties = np.nonzero(score <= best + 1e-9 * max(abs(best), 1e-12))[0]
        if len(ties) > 1 and oct_ is not None:
            look = (eft + oct_[b])[ties]
            ties = ties[look <= look.min() + 1e-9 * max(abs(look.min()), 1e-12)]
        if len(ties) > 1:                                # then the fastest device for b
            ties = ties[np.argsort(c[ties], kind="stable")]
        d = int(ties[0])
        a[b], start[b], end[b] = d, est[d], eft[d]
        mem.add(b, d)
        _occupy(intervals, avail, maxgap, d, est[d], eft[d])
    return a, start, end


#: up to this many devices, `list_schedule` runs on Python lists (numpy's per-call overhead
#: dominates on short vectors); above it, vectorised over devices. Both give the same plan.
SMALL_D = 16


def _list_schedule_small(p: Problem, ct: np.ndarray, priority: np.ndarray, oct_: np.ndarray | None,
                         lookahead: bool = False, insertion: bool = True,
                         force: np.ndarray | None = None, deadline: float = math.inf):
    """`list_schedule` on Python lists, for few devices: same rules, same arithmetic order."""
    B, D = ct.shape
    a = [-1] * B
    start = [0.0] * B
    end = [0.0] * B
    mem = Memory(p)
    mp, ma, cap = mem.params.tolist(), mem.act.tolist(), mem.cap.tolist()
    reserved = mem.reserved.tolist()
    params, acts = p.params.tolist(), p.activation.tolist()
    avail = [0.0] * D
    intervals: list[list[tuple[float, float]]] = [[] for _ in range(D)]
    maxgap = [0.0] * D
    lat, inv = p.latency.tolist(), p.inv_bandwidth.tolist()
    ebytes = p.edge_bytes.tolist()
    ctl = ct.tolist()
    octl = oct_.tolist() if oct_ is not None else None
    src_arrival = {b: p.input_arrival(b).tolist() for b in p.input_blocks}
    delivery = {b: p.output_delivery(b).tolist() for b in p.output_blocks}
    reach_sink = p.reachable[:, p.sink].tolist()
    inf = math.inf
    devs = range(D)
    for b in _ready_order(p, priority, deadline):
        preds = p.preds[b]
        if preds:
            ready = [0.0] * D
            for u, k in preds:
                du, eu, nb = a[u], end[u], ebytes[k]
                lrow, irow = lat[du], inv[du]
                for d in devs:
                    x = eu if d == du else eu + lrow[d] + nb * irow[d]
                    if x > ready[d]:
                        ready[d] = x
        else:
            ready = list(src_arrival[b])
        c = ctl[b]
        extra = 0.0 if reserved[b] else params[b]
        actb = acts[b]
        out = b in delivery
        dl = delivery.get(b)
        ob = octl[b] if octl is not None else None
        score = [inf] * D
        est = [0.0] * D
        eft = [0.0] * D
        any_ok = False
        fd = int(force[b]) if force is not None else -1
        if fd >= 0:
            r, cd = ready[fd], c[fd]
            if (r == inf or cd == inf or mp[fd] + extra + max(ma[fd], actb) > cap[fd]
                    or (out and not reach_sink[fd])):
                fd = -1
        for d in (devs if fd < 0 else (fd,)):
            r, cd = ready[d], c[d]
            if r == inf or cd == inf or mp[d] + extra + max(ma[d], actb) > cap[d]:
                continue
            if out and not reach_sink[d]:
                continue
            any_ok = True
            t0 = r if r > avail[d] else avail[d]
            if insertion and maxgap[d] >= cd - _EPS and r < avail[d]:
                prev = 0.0
                for s_, e_ in intervals[d]:
                    t = prev if prev > r else r
                    if t + cd <= s_ + _EPS:
                        t0 = t
                        break
                    prev = e_
            est[d] = t0
            f = t0 + cd
            eft[d] = f
            if lookahead and ob is not None:
                score[d] = f + ob[d]
            else:
                score[d] = f + dl[d] if out else f
        if not any_ok:
            raise _NoRoom(b)
        best = min(score)
        tol = best + 1e-9 * max(abs(best), 1e-12)
        ties = [d for d in devs if score[d] <= tol]
        if len(ties) > 1 and ob is not None:
            look = [eft[d] + ob[d] for d in ties]
            lm = min(look)
            ltol = lm + 1e-9 * max(abs(lm), 1e-12)
            ties = [d for d, x in zip(ties, look) if x <= ltol]
        d = min(ties, key=lambda x: c[x]) if len(ties) > 1 else ties[0]
        a[b], start[b], end[b] = d, est[d], eft[d]
        if not reserved[b]:
            mp[d] += params[b]
        ma[d] = max(ma[d], actb)
        _occupy(intervals, avail, maxgap, d, est[d], eft[d])
    return np.array(a, dtype=np.int64), np.array(start), np.array(end)


def throughput_greedy(p: Problem, ct: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Place blocks in ``seq`` on the device that keeps the busiest resource (device
    compute, directed link transmission) lowest; ties: least added busy time."""
    B, D = ct.shape
    a = np.full(B, -1, dtype=np.int64)
    load = np.zeros(D)
    link = np.zeros((D, D))
    mem = Memory(p)
    inv = p.inv_bandwidth
    period = 0.0
    src, snk = p.source, p.sink
    for b in seq.tolist():
        ok = np.isfinite(ct[b]) & mem.fits(b)
        # link increments on (x -> d) for placed producers and (d -> y) for placed consumers
        into: dict[int, float] = {}
        outof: dict[int, float] = {}
        for u, k in p.preds[b]:
            if a[u] >= 0:
                into[a[u]] = into.get(a[u], 0.0) + p.edge_bytes[k]
                ok &= p.reachable[a[u]]
        for v, k in p.succs[b]:
            if a[v] >= 0:
                outof[a[v]] = outof.get(a[v], 0.0) + p.edge_bytes[k]
                ok &= p.reachable[:, a[v]]
        if not p.preds[b]:
            into[src] = into.get(src, 0.0) + p.in_bytes[b]
            ok &= p.reachable[src]
        if not p.succs[b]:
            outof[snk] = outof.get(snk, 0.0) + p.out_bytes[b]
            ok &= p.reachable[:, snk]
        if not ok.any():
            raise _NoRoom(b)
        worst = load + ct[b]
        added = ct[b].copy()
        for x, nbytes in into.items():
            t = nbytes * inv[x]
            t[x] = 0.0
            np.maximum(worst, link[x] + t, out=worst)
            added += t
        for y, nbytes in outof.items():
            t = nbytes * inv[:, y]
            t[y] = 0.0
            np.maximum(worst, link[:, y] + t, out=worst)
            added += t
        score = np.where(ok, np.maximum(worst, period), np.inf)
        best = score.min()
        ties = np.nonzero(score <= best * (1 + 1e-9))[0]
        d = int(ties[np.argmin(added[ties])])
        a[b] = d
        mem.add(b, d)
        load[d] += ct[b, d]
        for x, nbytes in into.items():
            if x != d:
                link[x, d] += nbytes * inv[x, d]
        for y, nbytes in outof.items():
            if y != d:
                link[d, y] += nbytes * inv[d, y]
        period = max(period, float(worst[d]))
    return a


def energy_greedy(p: Problem, ct: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Place blocks in ``seq`` on the device that adds the least compute plus radio energy
    given the blocks placed so far (input from ``source``, output to ``sink`` included)."""
    B, D = ct.shape
    a = np.full(B, -1, dtype=np.int64)
    mem = Memory(p)
    inv, radio = p.inv_bandwidth, p.radio_power
    for b in seq.tolist():
        ok = np.isfinite(ct[b]) & mem.fits(b)
        cost = np.where(np.isfinite(ct[b]), p.node_energy[b], 0.0)
        for u, k in p.preds[b]:
            if a[u] >= 0:
                x = a[u]
                cost = cost + radio[x] * p.edge_bytes[k] * inv[x]
                ok &= p.reachable[x]
        for v, k in p.succs[b]:
            if a[v] >= 0:
                y = a[v]
                cost = cost + radio[:, y] * p.edge_bytes[k] * inv[:, y]
                ok &= p.reachable[:, y]
        if not p.preds[b]:
            cost = cost + radio[p.source] * p.in_bytes[b] * inv[p.source]
            ok &= p.reachable[p.source]
        if not p.succs[b]:
            cost = cost + radio[:, p.sink] * p.out_bytes[b] * inv[:, p.sink]
            ok &= p.reachable[:, p.sink]
        if not ok.any():
            raise _NoRoom(b)
        score = np.where(ok, cost, np.inf)
        ties = np.nonzero(score <= score.min() * (1 + 1e-9) + 1e-300)[0]
        d = int(ties[np.argmin(ct[b, ties])])
        a[b] = d
        mem.add(b, d)
    return a


def cpop_critical_path(p: Problem, ct: np.ndarray, up: np.ndarray):
    """CPoP (Topcuoglu et al. 2002): priority = upward + downward rank; the blocks of the
    critical path go to the one device that runs all of them fastest. Returns (priority,
    force) with ``force[b]`` that device on the path and -1 elsewhere (force None if no
    device may run the whole path)."""
    from ._common import mean_transfer

    fin = np.where(np.isfinite(ct), ct, np.nan)
    w = np.nan_to_num(np.nanmean(fin, axis=1), nan=0.0)
    lat, inv = mean_transfer(p)
    down = np.zeros(p.n_blocks)
    for b in p.topo:
        for u, k in p.preds[b]:
            down[b] = max(down[b], down[u] + w[u] + lat + p.edge_bytes[k] * inv)
    prio = up + down
    cp_len = prio.max(initial=0.0)
    tol = 1e-9 * max(cp_len, 1e-12)
    entry = [b for b in p.input_blocks if prio[b] >= cp_len - tol]
    if not entry:
        return prio, None
    path = [entry[0]]
    while p.succs[path[-1]]:
        nxt = [v for v, _ in p.succs[path[-1]] if prio[v] >= cp_len - tol]
        if not nxt:
            break
        path.append(nxt[0])
    total = ct[path].sum(axis=0)
    if not np.isfinite(total).any():
        return prio, None
    force = np.full(p.n_blocks, -1, dtype=np.int64)
    force[path] = int(np.argmin(total))
    return prio, force


#: the polish scores at most `POLISH_PER_CELL` candidate plans per block x device, at least
#: `POLISH_MIN`, and at most `POLISH_WORK` / blocks (a candidate costs a schedule of every
#: block: about a microsecond at 30 blocks, two milliseconds at 2,000 x 64).
POLISH_PER_CELL = 20
POLISH_MIN = 2_000
POLISH_WORK = 500_000
#: work between two looks at the clock, in candidates x blocks x (1 + blocks / devices) (a
#: block may scan its device's idle gaps): at most ~0.1 s.
POLISH_CHUNK_WORK = 2_000_000


def polish_budget(p: Problem) -> int:
    B = max(p.n_blocks, 1)
    return int(min(POLISH_WORK // B, max(POLISH_MIN, POLISH_PER_CELL * B * p.n_devices)))


class _Kernel:
    """The problem as the arrays of the compiled kernels (`heuristics._polish`)."""

    def __init__(self, p: Problem):
        B, D = p.n_blocks, p.n_devices
        self.p = p
        self.ct = np.array(masked_ct(p), dtype=float)
        pu, pb, nb = [], [], []
        self.pind = np.zeros(B + 1, dtype=np.int64)
        self.nind = np.zeros(B + 1, dtype=np.int64)
        for b in range(B):
            for u, k in p.preds[b]:
                pu.append(u)
                pb.append(p.edge_bytes[k])
            self.pind[b + 1] = len(pu)
            nb += [u for u, _ in p.preds[b]] + [v for v, _ in p.succs[b]]
            self.nind[b + 1] = len(nb)
        self.pu = np.array(pu, dtype=np.int64)
        self.pbytes = np.array(pb, dtype=float)
        self.nbr = np.array(nb, dtype=np.int64)
        self.inp = np.array([p.input_arrival(b) for b in range(B)]).reshape(B, D)
        self.outd = np.array([p.output_delivery(b) for b in range(B)]).reshape(B, D)
        self.cap = np.array(p.memory_cap, dtype=float)
        # writable float64 / bool copies: the types the kernels were compiled for
        self.lat, self.inv = np.array(p.latency, dtype=float), np.array(p.inv_bandwidth, dtype=float)
        self.allowed = np.array(p.allowed, dtype=np.bool_)
        self.params, self.act = np.array(p.params, dtype=float), np.array(p.activation, dtype=float)
        self.work = (np.zeros((D, B)), np.zeros((D, B)), np.zeros((D, B), dtype=np.int64),
                     np.zeros(D, dtype=np.int64), np.zeros(B), np.zeros(B), np.zeros(B, dtype=np.int64))

    def descend(self, a: np.ndarray, seq: np.ndarray, pairs: bool, max_evals: int, skip: int):
        return _polish.descend(a, seq, self.ct, self.pind, self.pu, self.pbytes, self.lat, self.inv,
                               self.inp, self.outd, self.allowed, self.nind, self.nbr, self.params,
                               self.act, self.cap, pairs, max_evals, skip, *self.work)

    @property
    def start(self) -> np.ndarray:
        """Start times of the last schedule the kernel built."""
        return self.work[4]

    @property
    def end(self) -> np.ndarray:
        return self.work[5]


def polish(p: Problem, pool: Pool, ctx: Context | None, budget: int, pairs: bool = True) -> dict:
    """A descent after the constructive variants, for latency-only problems: from the best
    plan, the best single-device plan and the best list plan (when distinct), move a block
    of the critical chain -- alone, or with a neighbour on its device -- to another device
    while that shortens the makespan (first improvement; the chain is recomputed after each
    move). Candidates are scored by the compiled insertion schedule (`heuristics._polish`)
    in the start plan's block order, so a block that waits for a moved predecessor leaves
    its idle gap to later blocks; memory stays within capacity. ``budget`` caps the
    candidates scored in all (deterministic); the deadline is checked after about
    `POLISH_CHUNK_WORK` units of work, and a run cut there resumes its scan where it
    stopped, so the plan does not depend on where the cuts fall. Plans that break only a
    latency bound are starts too (the descent may bring them under it). Improved plans
    join the pool, which keeps the best."""
    out = {"evaluations": 0, "improved": []}
    if pool.sim is None or budget <= 0 or p.n_blocks == 0:
        return out
    # feasible plans first; plans that break only a latency bound can be mended by the search
    entries = [e for e in pool.entries() if math.isfinite(e[0][0]) and math.isfinite(e[0][1])]
    if not entries:
        return out
    starts = [entries[0]]
    for want_single in (True, False):
        for e in entries[1:]:
            if e[1].startswith("single-") == want_single:
                starts.append(e)
                break
    kernel = _Kernel(p)
    pos = topo_position(p)
    # a candidate costs a pass over the blocks, each scanning its device's idle gaps
    chunk = max(1, int(POLISH_CHUNK_WORK // (p.n_blocks * (1 + p.n_blocks / p.n_devices))))
    used = 0
    for (_, value0), label, a0, start0, end0 in starts:
        seq = schedule_order(start0, end0, pos).astype(np.int64)
        a = np.array(a0, dtype=np.int64)
        skip = 0
        while True:
            mk, n, converged, skip = kernel.descend(a, seq, pairs, min(chunk, budget - used), skip)
            used += n
            if converged or used >= budget or (ctx is not None and ctx.expired()):
                break
        if mk < value0 * (1 - _polish.IMPROVE):
            value, _ = pool.add_schedule(a, kernel.start.copy(), "polish:" + label, end=kernel.end.copy())
            out["improved"].append({"from": label, "start_value": value0, "value": value})
        if used >= budget or (ctx is not None and ctx.expired()):
            break
    out["evaluations"] = used
    return out


def construct(p: Problem, ctx: Context | None = None, *, variants: str = "all",
              polish_evals: int | None = None) -> tuple[Pool, dict]:
    """Run the HEFT-family variants that serve ``p``'s objective and keep the best plan
    (scored by the evaluator). Returns the pool and per-variant statistics."""
    ct = masked_ct(p)
    pool = Pool(p)
    stats: dict = {}
    weights = p.objective.weights
    want_latency = bool(weights.get("latency")) or "latency_s" in p.constraints or p.count_idle
    want_period = bool(weights.get("throughput")) or "period_s" in p.constraints \
        or "throughput_per_s" in p.constraints
    want_energy = bool(weights.get("energy")) or "energy_j" in p.constraints
    if variants == "all":
        want_latency = True          # cheap, and a good start for every objective
    no_room: list[int] = []

    def run(label, fn):
        """``fn`` returns (assignment, start times, end times) of a schedule, (assignment,
        a precedence-respecting priority, None), or (assignment, None, None) for the
        evaluator's list rule."""
        if ctx is not None and ctx.expired() and pool.has_plan:
            return
        t0 = time.perf_counter()
        try:
            a, key, end = fn()
        except _NoRoom as exc:
            no_room.append(exc.block)
            stats[label] = "no room for block " + p.blocks[exc.block].id
            return
        except _Expired:
            stats[label] = "stopped by the time limit"
            return
        if a is None:
            return
        if key is None:
            ev = pool.add(a, None, label)
            value, feasible = ev.value, ev.feasible
        else:
            value, feasible = pool.add_schedule(a, key, label, end=end)
        stats[label] = {"value": value, "feasible": bool(feasible),
                        "time_s": round(time.perf_counter() - t0, 4)}

    oct_ = None
    if want_latency:
        oct_ = optimistic_cost_table(p, ct)
        rank_heft = upward_rank_mean(p, ct)
        fin = np.where(np.isfinite(ct), ct, np.nan)
        rank_peft = np.nanmean(np.where(np.isfinite(oct_), oct_, np.nan), axis=1) \
            + np.nan_to_num(np.nanmean(fin, axis=1))
        prio_cp, force = cpop_critical_path(p, ct, rank_heft)
        for label, prio, look, fc, tie in (("heft-lookahead", rank_heft, True, None, oct_),
                                           ("heft", rank_heft, False, None, oct_),
                                           ("peft", rank_peft, True, None, oct_),
                                           ("cpop", prio_cp, False, force, oct_)):
            if fc is None and label.startswith("cpop"):
                continue
            def fn(prio=prio, look=look, fc=fc, tie=tie):
                deadline = ctx.deadline if (ctx is not None and pool.has_plan) else math.inf
                return list_schedule(p, ct, prio, tie, lookahead=look, force=fc, deadline=deadline)
            run(label, fn)
    topo = np.array(p.topo, dtype=np.int64)
    if want_period:
        lpt = np.argsort(-np.nan_to_num(np.nanmin(np.where(np.isfinite(ct), ct, np.nan), axis=1)),
                         kind="stable")
        run("balance-topo", lambda: (throughput_greedy(p, ct, topo), None, None))
        run("balance-lpt", lambda: (throughput_greedy(p, ct, lpt), None, None))
    if want_energy:
        run("energy-topo", lambda: (energy_greedy(p, ct, topo), None, None))
    # the whole model on one device, where it fits (the `single` plans): cheap and sometimes best
    need = p.params.sum() + p.activation.max(initial=0.0)
    whole = np.nonzero(np.isfinite(ct).all(axis=0) & (p.memory_cap >= need))[0]
    for d in whole[np.argsort(ct[:, whole].sum(axis=0))][:2].tolist():
        # one device runs its blocks back to back in any topological order: give one
        # (the evaluator's list rule would find the same latency, at more cost)
        run(f"single-{p.devices[d].id}", lambda d=d: (
            np.full(p.n_blocks, d, dtype=np.int64), topo_position(p), None))
    if not (ctx is not None and ctx.expired()):
        budget = polish_budget(p) if polish_evals is None else int(polish_evals)
        t0 = time.perf_counter()
        stats["polish"] = polish(p, pool, ctx, budget)
        stats["polish"]["time_s"] = round(time.perf_counter() - t0, 4)
    if not pool.feasible:
        run("memory-fill", lambda: (pack_fallback(p, ct, topo), None, None))
    stats["chosen"] = pool.best_label
    if no_room:
        stats["no_room"] = sorted({p.blocks[b].id for b in no_room})
    return pool, stats


class Heft(Method):
    name = "heft"
    kind = "heuristic"
    guarantee = "none (list scheduling); never overflows memory; milliseconds to seconds"
    summary = ("HEFT-family list scheduling: upward/PEFT rank, insertion, earliest finish with "
               "successor-aware ties and lookahead, then a compiled critical-chain descent (latency); "
               "load balancing for throughput; greedy energy")
    options = (Option("variants", str, "all", "'all' or 'objective' (only the variants of the objective)",
                      choices=("all", "objective")),
               Option("polish", int, None, "candidate plans the closing descent may score (none: "
                      f"{POLISH_PER_CELL} x blocks x devices, at least {POLISH_MIN}, at most "
                      f"{POLISH_WORK:,} / blocks; 0 turns it off)", low=0))

    def warm_up(self) -> None:
        _polish.warm_up()

    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        p = problem
        variants = self.option(ctx, "variants")
        polish_evals = self.option(ctx, "polish")
        pool, stats = construct(p, ctx, variants=variants, polish_evals=polish_evals)
        best = pool.best_plan
        if best is None:
            blocks = stats.get("no_room", [])
            return Candidate(None, status=Status.NO_SOLUTION, stats=stats, message=(
                "memory leaves no device for block(s) " + ", ".join(map(repr, blocks[:5]))
                + " in every list-scheduling variant and in the memory-first fill"))
        status = Status.FEASIBLE
        message = f"best variant: {pool.best_label}"
        if ctx.expired():                 # variants were cut or skipped by the limit
            status = Status.TIME_LIMIT
        return Candidate(best[0], best[1], status=status, message=message, stats=stats)


__all__ = ["Heft", "construct", "list_schedule", "throughput_greedy", "energy_greedy"]

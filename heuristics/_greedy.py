"""`heft`'s greedy constructions for the other objectives, and CPoP's critical path:
`throughput_greedy` (keep the busiest resource lowest), `energy_greedy` (least added
compute plus radio energy, from `Problem.node_energy` and `Problem.radio_power`) and
`cpop_critical_path` (Topcuoglu et al. 2002)."""

from __future__ import annotations

import math
import time

import numpy as np

from placement.problem import Problem

from ._common import Memory
from ._list_schedule import _NoRoom

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



# ---------------------------------------------------------------- descents (throughput, energy)
#: passes over the blocks a descent may make (each pass tries every block once).
DESCENT_PASSES = 6
#: `dp`'s pipeline partition is a `heft` variant only up to this many blocks x devices (it
#: took 2.5 s at 150 x 16 and 2 s at 100 x 8 on a loaded machine; heft plans in milliseconds)
DP_PIPELINE_CELLS = 400
#: on a chain, where the pipeline partition is the right plan shape, up to this many
DP_PIPELINE_CELLS_CHAIN = 2_000


class _DeviceMemory:
    """Weights and peak working memory per device of a full assignment, with removal (the
    descents move blocks off a device): SPEC 4's rule, as `Memory` and the evaluator."""

    def __init__(self, p: Problem, a: np.ndarray):
        self.p, self.a = p, a
        D = p.n_devices
        self.params = np.bincount(a, weights=p.params, minlength=D).astype(float)
        self.act = np.zeros(D)
        np.maximum.at(self.act, a, p.activation)
        self.cap = p.memory_cap

    def fits_without(self, b: int) -> np.ndarray:
        """(D,) bool: devices that can take b once b has left its device."""
        p, a = self.p, self.a
        x = a[b]
        params = self.params.copy()
        act = self.act.copy()
        params[x] -= p.params[b]
        others = (a == x)
        others[b] = False
        act[x] = p.activation[others].max(initial=0.0)
        return params + p.params[b] + np.maximum(act, p.activation[b]) <= self.cap

    def move(self, b: int, y: int) -> None:
        p, a = self.p, self.a
        x = a[b]
        self.params[x] -= p.params[b]
        self.params[y] += p.params[b]
        a[b] = y
        self.act[x] = p.activation[a == x].max(initial=0.0)
        self.act[y] = max(self.act[y], p.activation[b])


def _neighbour_bytes(p: Problem, a: np.ndarray, b: int):
    """Bytes b receives per producer device and sends per consumer device (input from
    ``source``, output to ``sink`` included), and the devices b may run on given the links."""
    into: dict[int, float] = {}
    outof: dict[int, float] = {}
    ok = np.ones(p.n_devices, dtype=bool)
    for u, k in p.preds[b]:
        into[a[u]] = into.get(a[u], 0.0) + p.edge_bytes[k]
        ok &= p.reachable[a[u]]
    for v, k in p.succs[b]:
        outof[a[v]] = outof.get(a[v], 0.0) + p.edge_bytes[k]
        ok &= p.reachable[:, a[v]]
    if not p.preds[b]:
        into[p.source] = into.get(p.source, 0.0) + p.in_bytes[b]
        ok &= p.reachable[p.source]
    if not p.succs[b]:
        outof[p.sink] = outof.get(p.sink, 0.0) + p.out_bytes[b]
        ok &= p.reachable[:, p.sink]
    return into, outof, ok


def _descend(p: Problem, ct: np.ndarray, a: np.ndarray, passes: int, deadline: float, choose) -> np.ndarray:
    """The loop both descents share: up to ``passes`` first-improvement passes over the blocks
    with more than one allowed device, changing ``a`` in place. For block ``b`` on ``x``,
    ``choose(b, x, into, outof, ok)`` returns the device it goes to (``x`` to stay); ``ok`` marks
    the devices allowed (memory and links permitting; ``x`` always). Stops at ``deadline``."""
    mem = _DeviceMemory(p, a)
    movable = [b for b in range(ct.shape[0]) if np.isfinite(ct[b]).sum() > 1]
    for _ in range(passes):
        changed = False
        for b in movable:
            if time.monotonic() > deadline:
                return a
            x = int(a[b])
            into, outof, ok = _neighbour_bytes(p, a, b)
            ok &= np.isfinite(ct[b]) & mem.fits_without(b)
            ok[x] = True
            y = choose(b, x, into, outof, ok)
            if y != x:
                mem.move(b, y)
                changed = True
        if not changed:
            break
    return a


def balance_descent(p: Problem, ct: np.ndarray, a0: np.ndarray, passes: int = DESCENT_PASSES,
                    deadline: float = math.inf) -> np.ndarray:
    """First-improvement descent on the period from assignment ``a0``: each block in turn
    goes to the allowed device (memory and links permitting) that gives the lowest
    (period, busiest resource it touches); a move is taken when that pair is strictly lower
    than staying. The loads are `throughput_greedy`'s (device compute, directed link
    transmission incl. input and output); the evaluator scores the result."""
    B, D = ct.shape
    a = np.array(a0, dtype=np.int64)
    inv = p.inv_bandwidth
    load = np.bincount(a, weights=ct[np.arange(B), a], minlength=D)
    link = np.zeros((D, D))
    for k in range(p.n_edges):
        x, y = a[p.edge_src[k]], a[p.edge_dst[k]]
        if x != y:
            link[x, y] += p.edge_bytes[k] * inv[x, y]
    for b in p.input_blocks:
        if a[b] != p.source:
            link[p.source, a[b]] += p.in_bytes[b] * inv[p.source, a[b]]
    for b in p.output_blocks:
        if a[b] != p.sink:
            link[a[b], p.sink] += p.out_bytes[b] * inv[a[b], p.sink]

    def shift(b, x, into, outof, sign):  # put b on x (sign 1) or take it off (sign -1)
        load[x] += sign * ct[b, x]
        for z, n in into.items():
            if z != x:
                link[z, x] += sign * n * inv[z, x]
        for w, n in outof.items():
            if w != x:
                link[x, w] += sign * n * inv[x, w]

    def choose(b, x, into, outof, ok):
        shift(b, x, into, outof, -1.0)
        rest = max(load.max(initial=0.0), link.max(initial=0.0))
        worst = load + np.where(np.isfinite(ct[b]), ct[b], 0.0)
        for z, n in into.items():
            t = n * inv[z]
            t[z] = 0.0
            np.maximum(worst, link[z] + t, out=worst)
        for w, n in outof.items():
            t = n * inv[:, w]
            t[w] = 0.0
            np.maximum(worst, link[:, w] + t, out=worst)
        period = np.where(ok, np.maximum(worst, rest), np.inf)
        y = int(np.lexsort((worst, period))[0])
        if not (period[y] < period[x] * (1 - 1e-12)
                or (period[y] <= period[x] and worst[y] < worst[x] * (1 - 1e-12))):
            y = x
        shift(b, y, into, outof, 1.0)
        return y

    return _descend(p, ct, a, passes, deadline, choose)


def energy_descent(p: Problem, ct: np.ndarray, a0: np.ndarray, passes: int = DESCENT_PASSES,
                   deadline: float = math.inf) -> np.ndarray:
    """First-improvement descent on compute plus radio energy from assignment ``a0``: each
    block in turn goes to the allowed device (memory and links permitting) where its own
    compute energy and the radio energy of its transfers are least (`energy_greedy`'s terms,
    with every neighbour placed): an exact decrease of that sum. The evaluator scores it."""
    inv, radio = p.inv_bandwidth, p.radio_power

    def choose(b, x, into, outof, ok):
        cost = np.where(np.isfinite(ct[b]), p.node_energy[b], np.inf)
        for z, n in into.items():
            cost = cost + radio[z] * n * inv[z]
        for w, n in outof.items():
            cost = cost + radio[:, w] * n * inv[:, w]
        cost = np.where(ok, cost, np.inf)
        y = int(np.argmin(cost))
        return y if y != x and cost[y] < cost[x] * (1 - 1e-12) else x

    return _descend(p, ct, np.array(a0, dtype=np.int64), passes, deadline, choose)


def dp_variants(p: Problem, ct: np.ndarray, want_period: bool, want_energy: bool,
                ctx=None) -> list[tuple[str, np.ndarray]]:
    """`dp`'s constructions as extra `heft` variants for throughput and energy (cheap, and on
    memory-bound DAGs often a far better start for the descents than the one-pass greedies):
    the energy shortest path over a depth-first linear order, and the pipeline partition."""
    from .dp import is_chain, linear_order, path_dp, pipeline_dp

    out: list[tuple[str, np.ndarray]] = []
    seq = linear_order(p)
    if want_energy:
        a, _, _ = path_dp(p, ct, seq, 0.0, 1.0)
        if a is not None:
            out.append(("dp-energy-path", a))
    cells = DP_PIPELINE_CELLS_CHAIN if is_chain(p) else DP_PIPELINE_CELLS
    if want_period and p.n_blocks * p.n_devices <= cells:
        a, _, _ = pipeline_dp(p, ct, seq, ctx)
        if a is not None:
            out.append(("dp-pipeline", a))
    return out


def descent_variants(p: Problem, ct: np.ndarray, pool, want_period: bool, want_energy: bool,
                     deadline: float = math.inf, starts: int = 3) -> list[tuple[str, np.ndarray]]:
    """`heft`'s closing descents for throughput and energy: from each of the ``starts`` best
    distinct plans of ``pool`` (any variant: a latency schedule is often the best start), the
    period descent (``want_period``) and the energy descent (``want_energy``, not with idle
    energy, which is not a sum over blocks). Returns labelled assignments for the pool
    (the evaluator scores them; the best feasible is kept)."""
    out: list[tuple[str, np.ndarray]] = []
    seen: set[bytes] = set()
    for e in pool.entries():
        if len(seen) >= starts or time.monotonic() > deadline:
            break
        if e.key[0] > 0 or e.a.tobytes() in seen:     # feasible starts only
            continue
        seen.add(e.a.tobytes())
        if want_period:
            out.append(("descent-period:" + e.label, balance_descent(p, ct, e.a, deadline=deadline)))
        if want_energy and not p.count_idle:
            out.append(("descent-energy:" + e.label, energy_descent(p, ct, e.a, deadline=deadline)))
    return out


__all__ = ["descent_variants", "dp_variants", "throughput_greedy", "energy_greedy", "cpop_critical_path", "balance_descent", "energy_descent"]

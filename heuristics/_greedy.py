"""`heft`'s greedy constructions for the other objectives, and CPoP's critical path:
`throughput_greedy` (keep the busiest resource lowest), `energy_greedy` (least added
compute plus radio energy, from `Problem.node_energy` and `Problem.radio_power`) and
`cpop_critical_path` (Topcuoglu et al. 2002)."""

from __future__ import annotations

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



__all__ = ["throughput_greedy", "energy_greedy", "cpop_critical_path"]

"""Shared media (SPEC section 5a): which transfers are on a medium, their load, and the
latency simulation with the media as non-preemptive resources.

Only problems whose network declares ``media`` take this code path (`Problem.media`
non-empty); every other problem is scored by `placement.simulator` exactly as before.

**Transfers** are indexed once per problem, independently of the assignment, in the SPEC's
tie order: input transfers (``source`` -> each input block, in block order), then the
edges in the order of the expanded problem, then output transfers (each output block ->
``sink``, in block order). A transfer is *on* medium ``m`` when its two ends sit on two
different devices that are both in ``m`` (`Problem.medium_of`).

**The simulation** (`simulate_media`): devices run their blocks in the given per-device
orders; a transfer on a medium becomes ready when its producer ends (an input transfer at
0), each medium sends one transfer at a time without preemption, in the plan's
``medium_order`` for that medium when given, else first come first served (smallest ready
time, ties by transfer index); a transfer that starts sending at ``t`` arrives at
``t + n / bandwidth + latency_s``. Transfers off every medium arrive at ``ready +
latency_s + n / bandwidth`` as in section 4. It is an event simulation: block starts are
fixed by their device order as soon as their inputs are known; the medium decision taken
next is the one that starts earliest over all media (ties: the lower medium index), so a
transfer is only committed when nothing still unknown could become ready before it.

Corner case (documented in docs/choices.md): a transfer that becomes ready at exactly the
instant another one is committed, through a chain of zero-length blocks and zero-length
transfers, is not seen by that decision.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .problem import Problem


@dataclass(frozen=True)
class Transfers:
    """The transfers of one assignment: (T,) arrays in the transfer index order."""

    src: np.ndarray          # device sending
    dst: np.ndarray          # device receiving
    tx: np.ndarray           # transmission time n / bandwidth (0 on one device)
    lat: np.ndarray          # propagation latency (0 on one device)
    medium: np.ndarray       # medium index, -1 when off every medium


def transfer_count(p: Problem) -> tuple[int, int, int]:
    """(inputs, edges, outputs): the transfer index ranges are [0, I), [I, I+E), [I+E, T)."""
    return len(p.input_blocks), p.n_edges, len(p.output_blocks)


def transfer_endpoints(p: Problem) -> list[tuple[int, int]]:
    """Per transfer, (producer block, consumer block), -1 standing for source/sink."""
    out = [(-1, b) for b in p.input_blocks]
    out += list(zip(p.edge_src.tolist(), p.edge_dst.tolist()))
    out += [(b, -1) for b in p.output_blocks]
    return out


def transfer_names(p: Problem) -> list[tuple[str, str]]:
    """Per transfer, its plan-file name: [producer id or "input", consumer id or "output"]."""
    ids = [b.id for b in p.blocks]
    return [("input" if u < 0 else ids[u], "output" if v < 0 else ids[v]) for u, v in transfer_endpoints(p)]


def transfers(p: Problem, a) -> Transfers:
    """The transfers of assignment ``a`` with their devices, times and media."""
    a = np.asarray(a, dtype=np.int64)
    inb = np.asarray(p.input_blocks, dtype=np.int64)
    outb = np.asarray(p.output_blocks, dtype=np.int64)
    src = np.concatenate([np.full(len(inb), p.source, dtype=np.int64), a[p.edge_src], a[outb]])
    dst = np.concatenate([a[inb], a[p.edge_dst], np.full(len(outb), p.sink, dtype=np.int64)])
    nbytes = np.concatenate([p.in_bytes[inb], p.edge_bytes, p.out_bytes[outb]])
    cross = src != dst
    tx = np.where(cross, nbytes * p.inv_bandwidth[src, dst], 0.0)
    lat = np.where(cross, p.latency[src, dst], 0.0)
    med = np.where(cross, p.medium_of[src, dst], -1)
    return Transfers(src=src, dst=dst, tx=tx, lat=lat, medium=med)


def medium_loads(p: Problem, a, tr: Transfers | None = None) -> np.ndarray:
    """(M,) summed transmission time of the transfers on each medium (its period term)."""
    tr = transfers(p, a) if tr is None else tr
    on = tr.medium >= 0
    return np.bincount(tr.medium[on], weights=tr.tx[on], minlength=len(p.media))


def on_medium(tr: Transfers, m: int) -> list[int]:
    """The transfers on medium ``m``, in transfer index order."""
    return np.nonzero(tr.medium == m)[0].tolist()


def _wiring(p: Problem, a, tr: Transfers | None):
    """What both event simulations start from: the assignment as a list, each transfer's
    medium, transmission and latency times (``tr``, or `transfers` of ``a``), its (producer,
    consumer) blocks, and per block how many transfers it waits for and which it starts."""
    tr = transfers(p, a) if tr is None else tr
    ends = transfer_endpoints(p)
    waits = [0] * p.n_blocks
    outgoing: list[list[int]] = [[] for _ in range(p.n_blocks)]
    for t, (u, v) in enumerate(ends):
        if v >= 0:
            waits[v] += 1
        if u >= 0:
            outgoing[u].append(t)
    return (np.asarray(a, dtype=np.int64).tolist(), tr.medium.tolist(), tr.tx.tolist(), tr.lat.tolist(),
            ends, waits, outgoing)


@dataclass
class MediaSchedule:
    start: np.ndarray          # (B,) block starts
    end: np.ndarray            # (B,) block ends
    deadlock: bool
    latency: float
    t_start: np.ndarray        # (T,) when each transfer on a medium starts sending (nan off media)
    t_end: np.ndarray          # (T,) when it stops sending (arrival is t_end + latency)
    medium_order: list[list[int]]   # per medium, its transfers in sending order (as sent)


def simulate_media(p: Problem, a, order: Sequence[Sequence[int]], ct,
                   medium_order: Sequence[Sequence[int] | None] | None = None,
                   tr: Transfers | None = None) -> MediaSchedule:
    """The latency rule with shared media (module docstring). ``order[d]``: device d's
    blocks in run order; ``ct[b]``: compute time of b on its device; ``medium_order[m]``:
    medium m's transfers (indices) in sending order, or None for first come first served."""
    B, D, M = p.n_blocks, p.n_devices, len(p.media)
    ctl = np.asarray(ct, dtype=float).tolist()
    al, med, tx, lat, ends, waits, outgoing = _wiring(p, a, tr)
    I, E, _ = transfer_count(p)
    T = len(med)
    ready_in = [0.0] * B            # latest known input arrival of each block
    arrive = [math.nan] * T
    t_start, t_end = [math.nan] * T, [math.nan] * T
    start, end = [0.0] * B, [0.0] * B
    done = [False] * B
    pos, free = [0] * D, [0.0] * D
    mfree = [0.0] * M
    given = [None] * M if medium_order is None else [None if o is None else list(o) for o in medium_order]
    mpos = [0] * M
    pending: list[list[tuple[float, int]]] = [[] for _ in range(M)]    # FCFS heaps (ready, index)
    tready = [math.nan] * T
    sent: list[list[int]] = [[] for _ in range(M)]
    orders = [list(o) for o in order]
    n_done = 0

    def arrived(t: int, x: float, stack: list[int]) -> None:
        arrive[t] = x
        v = ends[t][1]
        if v >= 0:
            if x > ready_in[v]:
                ready_in[v] = x
            waits[v] -= 1
            if waits[v] == 0:
                stack.append(al[v])

    def became_ready(t: int, r: float, stack: list[int]) -> None:
        m = med[t]
        if m < 0:
            arrived(t, r + (lat[t] + tx[t]) if tx[t] or lat[t] else r, stack)
        else:
            tready[t] = r
            if given[m] is None:
                heapq.heappush(pending[m], (r, t))

    stack: list[int] = list(range(D))
    for t in range(I):
        became_ready(t, 0.0, stack)
    while True:
        while stack:                      # run every block whose inputs are all known
            d = stack.pop()
            while pos[d] < len(orders[d]):
                b = orders[d][pos[d]]
                if waits[b] > 0:
                    break
                s = free[d] if free[d] > ready_in[b] else ready_in[b]
                start[b] = s
                end[b] = free[d] = s + ctl[b]
                done[b] = True
                n_done += 1
                pos[d] += 1
                for t in outgoing[b]:
                    became_ready(t, end[b], stack)
        best = None                       # (start, medium, transfer)
        for m in range(M):
            if given[m] is not None:
                if mpos[m] < len(given[m]):
                    t = given[m][mpos[m]]
                    if not math.isnan(tready[t]):
                        s = max(mfree[m], tready[t])
                        if best is None or s < best[0]:
                            best = (s, m, t)
            elif pending[m]:
                r, t = pending[m][0]
                s = max(mfree[m], r)
                if best is None or s < best[0]:
                    best = (s, m, t)
        if best is None:
            break
        s, m, t = best
        if given[m] is None:
            heapq.heappop(pending[m])
        else:
            mpos[m] += 1
        sent[m].append(t)
        t_start[t] = s
        t_end[t] = mfree[m] = s + tx[t]
        arrived(t, t_end[t] + lat[t], stack)
    deadlock = n_done < B or any(math.isnan(arrive[t]) for t in range(T))
    if deadlock:
        latency = math.inf
    else:
        latency = max(max(end, default=0.0), max((arrive[t] for t in range(I + E, T)), default=0.0))
    return MediaSchedule(start=np.array(start), end=np.array(end), deadlock=deadlock, latency=float(latency),
                         t_start=np.array(t_start), t_end=np.array(t_end), medium_order=sent)


def list_rule_media(p: Problem, a, ct, edge_time, out_time, tr: Transfers | None = None) -> list[list[int]]:
    """The evaluator's list rule (`placement.simulator.list_rule_order`) with the air: the
    per-device orders of a plan that has none, for a problem with shared media.

    An event simulation in which the devices and the media decide together: a free device
    starts, among its blocks whose inputs have all *arrived*, the one whose inputs arrived
    first (ties: the larger upward rank with the plan's contention-free times, then the
    lower block index), exactly as without media; each medium sends first come first
    served (SPEC 5a), so an input's arrival includes its wait for the air. The next
    decision is always the one that starts earliest over every device and medium (ties: a
    device before a medium, lower index first). The rule never leaves a device idle while
    one of its blocks has its inputs. Returns the orders; `simulate_media` with them (and
    first come first served on the air) gives this simulation's times."""
    from .simulator import upward_rank

    B, D, M = p.n_blocks, p.n_devices, len(p.media)
    ctf = np.asarray(ct, dtype=float)
    ctl = ctf.tolist()
    rank = upward_rank(p, np.where(np.isfinite(ctf), ctf, 0.0),
                       np.where(np.isfinite(edge_time), edge_time, 0.0),
                       np.where(np.isfinite(out_time), out_time, 0.0)).tolist()
    al, med, tx, lat, ends, waits, outgoing = _wiring(p, a, tr)
    I, _, _ = transfer_count(p)
    data_ready = [0.0] * B
    heaps: list[list[tuple[float, float, int]]] = [[] for _ in range(D)]
    pending: list[list[tuple[float, int]]] = [[] for _ in range(M)]
    free, mfree = [0.0] * D, [0.0] * M
    order: list[list[int]] = [[] for _ in range(D)]

    def arrived(t: int, x: float) -> None:
        v = ends[t][1]
        if v >= 0:
            if x > data_ready[v]:
                data_ready[v] = x
            waits[v] -= 1
            if waits[v] == 0:
                heapq.heappush(heaps[al[v]], (data_ready[v], -rank[v], v))

    def became_ready(t: int, r: float) -> None:
        if med[t] < 0:
            arrived(t, r + (lat[t] + tx[t]) if tx[t] or lat[t] else r)
        else:
            heapq.heappush(pending[med[t]], (r, t))

    for b in range(B):                       # blocks with no transfer in at all
        if waits[b] == 0:
            heapq.heappush(heaps[al[b]], (0.0, -rank[b], b))
    for t in range(I):
        became_ready(t, 0.0)
    while True:
        best_s, kind, best_x = math.inf, -1, -1
        for d in range(D):
            if heaps[d]:
                s = free[d] if free[d] > heaps[d][0][0] else heaps[d][0][0]
                if kind < 0 or s < best_s:
                    best_s, kind, best_x = s, 0, d
        for m in range(M):
            if pending[m]:
                s = mfree[m] if mfree[m] > pending[m][0][0] else pending[m][0][0]
                if kind < 0 or s < best_s:
                    best_s, kind, best_x = s, 1, m
        if kind < 0:
            break
        if kind == 0:
            b = heapq.heappop(heaps[best_x])[2]
            order[best_x].append(b)
            e = free[best_x] = best_s + ctl[b]
            for t in outgoing[b]:
                became_ready(t, e)
        else:
            _, t = heapq.heappop(pending[best_x])
            mfree[best_x] = best_s + tx[t]
            arrived(t, mfree[best_x] + lat[t])
    return order


__all__ = ["Transfers", "transfers", "transfer_count", "transfer_endpoints", "transfer_names", "medium_loads",
           "on_medium", "MediaSchedule", "simulate_media", "list_rule_media"]

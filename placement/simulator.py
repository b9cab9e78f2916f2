"""The one latency simulator (SPEC section 5, latency). Every method that needs start
times gets them here; the evaluator reports them.

The rule: each device runs one block at a time, without preemption, in its order; a
block starts when its device is free and every input has arrived (the producer's end plus
the edge's transfer time, 0 on one device; an input block waits for ``input_bytes`` from
``source``); latency is when the last output reaches ``sink``.

Entry points (all the same rule, the same float operations in the same order, so their
results are equal to the last bit -- tested):

* `simulate_orders` -- fixed per-device orders (a plan's ``order``); finds a deadlock
  (orders that contradict the block graph). The evaluator's entry.
* `simulate_sequence` -- a linear extension ``seq`` of the block graph: each device runs
  its blocks in ``seq`` order. It can **resume** from a prefix: blocks before position
  ``first`` keep their times (local search re-simulates from the first changed block).
* `SequenceSim` -- `simulate_sequence` for many assignments of one problem, without numpy
  per call (heft scores its variants of a few dozen blocks here).
* `list_rule_order` -- the per-device orders of a plan that has none (the list rule, below).
* `insertion_schedule` -- HEFT's insertion rule with the devices fixed: blocks in ``seq``
  order, each in the earliest idle gap of its device that fits after its inputs arrive.
  `heuristics._polish.schedule` is its compiled twin (numba), tested bit for bit.

The per-block and per-edge times come from `placement.evaluator.plan_costs` (the problem's
cost pieces): ``ct[b]`` compute time on b's device, ``edge_time[k]`` transfer time of edge
k (0 on one device), ``in_time[b]`` arrival of the model input, ``out_time[b]`` delivery
to ``sink``.

**The list rule**, for a plan without an order, is what a runtime with a queue per device
does: whenever a device is free it starts, among its blocks whose inputs have all arrived,
the one whose inputs arrived first (first come, first served); ties go to the larger upward
rank (longest remaining path, with the plan's own compute and transfer times), then to the
lower block index. The rule never leaves a device idle while one of its blocks is ready.
"""

from __future__ import annotations

import heapq
import math
from typing import Sequence

import numpy as np

from .problem import Problem

#: a block fits an idle gap when it ends at most this long (s) after the gap closes (float noise).
GAP_SLACK = 1e-12


def _run(seq, dev, ct, preds, edge_t, in_t, free, start, end) -> None:
    """The rule itself, on Python lists: blocks in ``seq`` order, each at max(device free,
    input arrival, every producer's end plus the edge's time). Fills ``start``/``end``."""
    for b in seq:
        d = dev[b]
        t = free[d]
        x = in_t[b]
        if x > t:
            t = x
        for u, k in preds[b]:
            x = end[u] + edge_t[k]
            if x > t:
                t = x
        start[b] = t
        end[b] = free[d] = t + ct[b]


def makespan(end, out_time) -> float:
    """Latency: when the last output reaches ``sink`` (0 for no block)."""
    return float(np.max(np.asarray(end) + np.asarray(out_time))) if len(end) else 0.0


def sequence_of_orders(p: Problem, order: Sequence[Sequence[int]]) -> tuple[list[int], bool]:
    """A linear extension of the block graph plus the device chains of ``order``; returns
    (sequence, deadlock) -- deadlock when the orders contradict the graph (the sequence
    then holds only the blocks that could run)."""
    B = p.n_blocks
    nxt = [-1] * B
    indeg = [len(x) for x in p.preds]
    for blocks in order:
        for x, y in zip(blocks, blocks[1:]):
            nxt[x] = y
            indeg[y] += 1
    ready = [b for b in range(B) if indeg[b] == 0]
    seq: list[int] = []
    succs = p.succs
    while ready:
        b = ready.pop()
        seq.append(b)
        for v, _ in succs[b]:
            indeg[v] -= 1
            if indeg[v] == 0:
                ready.append(v)
        n = nxt[b]
        if n >= 0:
            indeg[n] -= 1
            if indeg[n] == 0:
                ready.append(n)
    return seq, len(seq) < B


def simulate_orders(p: Problem, a, order: Sequence[Sequence[int]], ct, edge_time, in_time):
    """Start and end times (s) for fixed per-device orders ``order[d]``; ``a[b]`` is block
    b's device. Returns (start, end, deadlock); on a deadlock the blocks that never ran keep
    times 0."""
    seq, deadlock = sequence_of_orders(p, order)
    B = p.n_blocks
    start, end = [0.0] * B, [0.0] * B
    _run(seq, np.asarray(a).tolist(), np.asarray(ct).tolist(), p.preds, np.asarray(edge_time).tolist(),
         np.asarray(in_time).tolist(), [0.0] * p.n_devices, start, end)
    return np.array(start), np.array(end), deadlock


def simulate_sequence(p: Problem, a, seq, ct, edge_time, in_time, *, first: int = 0,
                      start=None, end=None):
    """Start and end times (s) when each device runs its blocks in the order of ``seq`` (a
    linear extension of the block graph). With ``first > 0``, the blocks ``seq[:first]``
    keep the times given in ``start``/``end`` (a previous call whose inputs agree on that
    prefix) and only the rest is simulated. Returns (start, end) as new arrays."""
    B = p.n_blocks
    seq = np.asarray(seq)
    a = np.asarray(a)
    al = a.tolist()
    if first > 0:
        end = np.asarray(end, dtype=float)
        before = seq[:first]
        free_at = np.zeros(p.n_devices)          # each device is free when its last prefix block ends
        np.maximum.at(free_at, a[before], end[before])
        startl, endl, free = np.asarray(start, dtype=float).tolist(), end.tolist(), free_at.tolist()
    else:
        startl, endl, free = [0.0] * B, [0.0] * B, [0.0] * p.n_devices
    _run(seq[first:].tolist(), al, np.asarray(ct).tolist(), p.preds, np.asarray(edge_time).tolist(),
         np.asarray(in_time).tolist(), free, startl, endl)
    return np.array(startl), np.array(endl)


class SequenceSim:
    """`simulate_sequence` for many assignments of one problem, on Python lists prepared
    once: ``fixed(a, seq)`` takes an assignment and a linear extension as lists and returns
    (latency, start, end). The per-edge and input times are the cost pieces' own formulas
    (`Problem.transfer_time` arithmetic: latency plus bytes times s/byte), so the result is
    bit-equal to `placement.evaluator.evaluate` on the same plan (tested)."""

    def __init__(self, p: Problem):
        self.p = p
        self.D = p.n_devices
        self.ct = np.where(p.allowed, p.compute_time, np.inf).tolist()
        self.preds = p.preds
        self.edges = list(zip(p.edge_src.tolist(), p.edge_dst.tolist(), p.edge_bytes.tolist()))
        self.lat = p.latency.tolist()
        self.inv = p.inv_bandwidth.tolist()
        B = p.n_blocks
        self.inp = [p.input_arrival(b).tolist() if not p.preds[b] else None for b in range(B)]
        self.outs = [(b, p.output_delivery(b).tolist()) for b in p.output_blocks]

    def fixed(self, a: list[int], seq: list[int]) -> tuple[float, list[float], list[float]]:
        lat, inv, ct = self.lat, self.inv, self.ct
        edge_t = [0.0 if a[u] == a[v] else lat[a[u]][a[v]] + nb * inv[a[u]][a[v]]
                  for u, v, nb in self.edges]
        in_t = [0.0 if ib is None else ib[a[b]] for b, ib in enumerate(self.inp)]
        ctb = [row[d] for row, d in zip(ct, a)]
        B = len(a)
        start, end = [0.0] * B, [0.0] * B
        _run(seq, a, ctb, self.preds, edge_t, in_t, [0.0] * self.D, start, end)
        return max((end[b] + o[a[b]] for b, o in self.outs), default=0.0), start, end


def upward_rank(p: Problem, ct, edge_time, out_time) -> np.ndarray:
    """Longest path (s) from each block to the sink with the given per-block and per-edge times."""
    rank = np.zeros(p.n_blocks)
    et = np.asarray(edge_time).tolist()
    for b in reversed(p.topo):
        best = out_time[b]
        for v, k in p.succs[b]:
            best = max(best, et[k] + rank[v])
        rank[b] = ct[b] + best
    return rank


def list_rule_order(p: Problem, a: np.ndarray, ct, edge_time, in_time, out_time) -> list[list[int]]:
    """The list rule (module docstring): per-device orders for assignment ``a``."""
    B, D = p.n_blocks, p.n_devices
    rank = upward_rank(p, np.where(np.isfinite(ct), ct, 0.0), np.where(np.isfinite(edge_time), edge_time, 0.0),
                       np.where(np.isfinite(out_time), out_time, 0.0))
    waiting = np.array([len(x) for x in p.preds], dtype=np.int64)
    data_ready = np.array(in_time, dtype=float)
    free = [0.0] * D
    heaps: list[list[tuple[float, float, int]]] = [[] for _ in range(D)]
    for b in range(B):
        if waiting[b] == 0:
            heapq.heappush(heaps[a[b]], (data_ready[b], -rank[b], b))
    order: list[list[int]] = [[] for _ in range(D)]
    end = np.zeros(B)
    for _ in range(B):
        best_d, best_t = -1, math.inf
        for d in range(D):
            if heaps[d]:
                t = max(free[d], heaps[d][0][0])
                if t < best_t or (best_d < 0):
                    best_d, best_t = d, t
        if best_d < 0:
            break
        _, _, b = heapq.heappop(heaps[best_d])
        order[best_d].append(b)
        end[b] = best_t + ct[b]
        free[best_d] = end[b]
        for v, k in p.succs[b]:
            data_ready[v] = max(data_ready[v], end[b] + edge_time[k])
            waiting[v] -= 1
            if waiting[v] == 0:
                heapq.heappush(heaps[a[v]], (data_ready[v], -rank[v], v))
    return order


def insertion_schedule(p: Problem, a, seq) -> tuple[float, int, np.ndarray, np.ndarray, np.ndarray]:
    """HEFT's insertion rule with the devices fixed: blocks in ``seq`` order (a linear
    extension), each placed in the earliest idle gap of its device that fits after its
    inputs have arrived (else after the device's last block). Returns (latency, the block
    whose delivery ends last, start, end, why) -- ``why[b]`` is the block b waited for (a
    producer, or the block before it on its device; -1 for none).

    The schedule is one the cost model allows, so `simulate_orders` given its per-device
    orders (by start) finds at most this latency. `heuristics._polish.schedule` is this
    function compiled (numba, same operations in the same order; tested bit for bit)."""
    B, D = p.n_blocks, p.n_devices
    al = np.asarray(a).tolist()
    ct = np.where(p.allowed, p.compute_time, np.inf).tolist()
    lat, inv = p.latency.tolist(), p.inv_bandwidth.tolist()
    ebytes = p.edge_bytes.tolist()
    inp = [p.input_arrival(b).tolist() for b in range(B)]
    outd = [p.output_delivery(b).tolist() for b in range(B)]
    ivs: list[list[tuple[float, float, int]]] = [[] for _ in range(D)]   # (start, end, block) sorted
    start, end, why = [0.0] * B, [0.0] * B, [-1] * B
    for b in np.asarray(seq).tolist():
        d = al[b]
        r = inp[b][d]
        w = -1
        for u, k in p.preds[b]:
            du = al[u]
            x = end[u]
            if du != d:
                x += lat[du][d] + ebytes[k] * inv[du][d]
            if x > r:
                r, w = x, u
        c = ct[b][d]
        iv = ivs[d]
        n = len(iv)
        avail = iv[-1][1] if n else 0.0
        pos, t, tw = n, r, w
        if r < avail:
            prev, pb, found = 0.0, -1, False
            for i in range(n):
                t, tw = (prev, pb) if prev > r else (r, w)
                if t + c <= iv[i][0] + GAP_SLACK:
                    pos, found = i, True
                    break
                prev, pb = iv[i][1], iv[i][2]
            if not found:
                t, tw = avail, iv[n - 1][2]
        iv.insert(pos, (t, t + c, b))
        start[b], end[b], why[b] = t, t + c, tw
    mk, last = 0.0, -1
    for b in range(B):
        x = end[b] + outd[b][al[b]]
        if x > mk:
            mk, last = x, b
    return mk, last, np.array(start), np.array(end), np.array(why, dtype=np.int64)


__all__ = ["simulate_orders", "simulate_sequence", "SequenceSim", "list_rule_order", "upward_rank",
           "insertion_schedule", "makespan", "sequence_of_orders"]

"""Shared pieces of the heuristics: the problem's cost views as plain arrays, memory
bookkeeping, choosing the best of several candidate plans with the evaluator, and the
memory-first fallback plans used when a greedy construction runs out of memory.

Nothing here reports a figure to the user: every plan is re-scored by `placement.evaluator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from placement.evaluator import TOLERANCE, Evaluation, evaluate
from placement.problem import Problem


def masked_ct(p: Problem) -> np.ndarray:
    """(B, D) compute time, ``inf`` where the block may not run (allowed devices and pins)."""
    return np.where(p.allowed, p.compute_time, np.inf)


def topo_position(p: Problem) -> np.ndarray:
    pos = np.empty(p.n_blocks, dtype=np.int64)
    pos[list(p.topo)] = np.arange(p.n_blocks)
    return pos


def mean_transfer(p: Problem) -> tuple[float, float]:
    """Average link latency and s/byte over ordered pairs of distinct reachable devices,
    scaled by the chance (D-1)/D that two blocks land on different devices: HEFT's mean
    communication cost is ``lat + bytes * inv``."""
    D = p.n_devices
    if D < 2:
        return 0.0, 0.0
    off = p.reachable & ~np.eye(D, dtype=bool)
    if not off.any():
        return 0.0, 0.0
    lat = float(p.latency[off].mean()) * (D - 1) / D
    inv = float(p.inv_bandwidth[off].mean()) * (D - 1) / D
    return lat, inv


def upward_rank_mean(p: Problem, ct: np.ndarray) -> np.ndarray:
    """HEFT's upward rank with mean compute over allowed devices and mean communication;
    output blocks add their mean delivery to ``sink``."""
    fin = np.where(np.isfinite(ct), ct, np.nan)
    w = np.nan_to_num(np.nanmean(fin, axis=1), nan=0.0)
    lat, inv = mean_transfer(p)
    rank = np.zeros(p.n_blocks)
    for b in reversed(p.topo):
        best = (lat + p.out_bytes[b] * inv) if not p.succs[b] else 0.0
        for v, k in p.succs[b]:
            best = max(best, lat + p.edge_bytes[k] * inv + rank[v])
        rank[b] = w[b] + best
    return rank


def optimistic_cost_table(p: Problem, ct: np.ndarray) -> np.ndarray:
    """PEFT's optimistic cost table: ``oct[b, d]`` is the shortest time from the end of b on
    d to the last result at ``sink``, each successor on its best device and no contention.
    It is what the choice of device costs the successors (our tie-break and lookahead)."""
    B, D = ct.shape
    oct_ = np.zeros((B, D))
    for b in reversed(p.topo):
        if not p.succs[b]:
            row = p.output_delivery(b).copy()
        else:
            row = np.zeros(D)
        for v, k in p.succs[b]:
            tail = oct_[v] + ct[v]                                  # (D',)
            cost = np.min(p.transfer_matrix(p.edge_bytes[k]) + tail[None, :], axis=1)
            np.maximum(row, cost, out=row)
        oct_[b] = row
    return oct_


class Memory:
    """Per-device memory in use (weights plus the largest working memory), with pinned
    blocks' weights reserved up front so that greedy choices leave room for them."""

    def __init__(self, p: Problem, reserve_pinned: bool = True):
        self.p = p
        D = p.n_devices
        self.params = np.zeros(D)
        self.act = np.zeros(D)
        self.reserved = np.zeros(p.n_blocks, dtype=bool)
        if reserve_pinned:
            for b, d in p.pinned.items():
                self.params[d] += p.params[b]
                self.act[d] = max(self.act[d], p.activation[b])
                self.reserved[b] = True
        self.cap = p.memory * (1 + TOLERANCE)

    def fits(self, b: int) -> np.ndarray:
        """(D,) bool: devices that can take block b now."""
        p = self.p
        extra = 0.0 if self.reserved[b] else p.params[b]
        return self.params + extra + np.maximum(self.act, p.activation[b]) <= self.cap

    def add(self, b: int, d: int) -> None:
        if not self.reserved[b]:
            self.params[d] += self.p.params[b]
        self.act[d] = max(self.act[d], self.p.activation[b])


def order_by(a: np.ndarray, key: np.ndarray, D: int) -> list[list[int]]:
    """Per-device orders: each device's blocks sorted by ``key`` (a start time or priority)."""
    idx = np.lexsort((np.arange(len(a)), key))
    order: list[list[int]] = [[] for _ in range(D)]
    for b in idx.tolist():
        order[a[b]].append(b)
    return order


def violation_size(p: Problem, ev: Evaluation) -> float:
    """How far an infeasible plan is from feasible (relative excess over memory and
    constraints; inf for a broken pin, device or link)."""
    if ev.feasible:
        return 0.0
    hard = [v for v in ev.violations if v.kind not in ("memory", "constraint")]
    if hard:
        return math.inf
    over = np.maximum(ev.memory_bytes - p.memory, 0.0) / p.memory
    total = float(over.sum())
    vals = {"latency_s": ev.latency_s, "period_s": ev.period_s, "energy_j": ev.energy_j,
            "throughput_per_s": ev.throughput_per_s}
    for metric, bound in p.constraints.items():
        got = vals[metric]
        if metric == "throughput_per_s":
            total += max(0.0, bound - got) / max(bound, 1e-300)
        else:
            total += max(0.0, got - bound) / max(bound, 1e-300)
    return total


@dataclass
class Pool:
    """Candidate plans scored by the evaluator; keeps the best (feasible first)."""

    p: Problem
    best: Evaluation | None = None
    best_label: str = ""
    best_key: tuple = (math.inf, math.inf)
    tried: dict[str, float] = field(default_factory=dict)
    #: every evaluated plan, best first after `ranked()` (local search starts chains from them)
    plans: list = field(default_factory=list)
    _seen: dict = field(default_factory=dict)

    def add(self, a: np.ndarray | None, order: list[list[int]] | None, label: str) -> Evaluation | None:
        if a is None:
            return None
        # variants often build the same plan: score each distinct plan once
        sig = (np.asarray(a, dtype=np.int64).tobytes(),
               None if order is None else tuple(map(tuple, order)))
        seen = self._seen.get(sig)
        if seen is not None:
            self.tried[label] = self.tried[seen[0]]
            return seen[1]
        ev = evaluate(self.p, a, order)
        self._seen[sig] = (label, ev)
        key = (violation_size(self.p, ev), ev.value if math.isfinite(ev.value) else math.inf)
        self.tried[label] = ev.value if ev.feasible else math.inf
        self.plans.append((key, len(self.plans), label, ev))
        if key < self.best_key:
            self.best, self.best_key, self.best_label = ev, key, label
        return ev

    def ranked(self) -> list:
        """Distinct evaluated plans (by assignment and order), best first: (label, evaluation)."""
        out, seen = [], set()
        for key, _, label, ev in sorted(self.plans, key=lambda x: (x[0], x[1])):
            sig = (ev.assignment.tobytes(), tuple(map(tuple, ev.order)))
            if sig not in seen:
                seen.add(sig)
                out.append((label, ev))
        return out

    @property
    def feasible(self) -> bool:
        return self.best is not None and self.best.feasible


def pack_fallback(p: Problem, ct: np.ndarray, order: np.ndarray) -> np.ndarray | None:
    """A memory-first plan: walk blocks in ``order`` (a topological order) and keep filling
    the current device while it fits, else move to the fastest device with room (pinned
    blocks go to their pin). Contiguous runs keep transfers few. None if some block fits
    nowhere."""
    mem = Memory(p)
    a = np.full(p.n_blocks, -1, dtype=np.int64)
    cur = -1
    speed = -np.nanmean(np.where(np.isfinite(ct), ct, np.nan), axis=0)
    for b in order.tolist():
        ok = mem.fits(b) & np.isfinite(ct[b])
        for u, _ in p.preds[b]:
            ok &= p.reachable[a[u]]
        if not p.succs[b]:
            ok &= p.reachable[:, p.sink]
        if not p.preds[b]:
            ok &= p.reachable[p.source]
        if not ok.any():
            return None
        if cur >= 0 and ok[cur]:
            d = cur
        else:
            cand = np.nonzero(ok)[0]
            d = int(cand[np.argmax(speed[cand])])
        a[b] = d
        mem.add(b, d)
        cur = d
    return a

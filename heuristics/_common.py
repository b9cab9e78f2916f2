"""Shared pieces of the heuristics: the problem's cost views as plain arrays, memory
bookkeeping, choosing the best of several candidate plans with the evaluator, and the
memory-first fallback plans used when a greedy construction runs out of memory.

Nothing here reports a figure to the user: every plan is re-scored by `placement.evaluator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from placement.evaluator import Evaluation, evaluate, metric_values
from placement.problem import Problem
from placement.simulator import SequenceSim


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
        self.cap = p.memory_cap

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
    """Per-device orders: each device's blocks sorted by ``key`` (a priority that respects
    precedence; for a schedule's times use `schedule_order`), ties by index."""
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
    for x in p.constraint_excess(metric_values(ev), tolerance=0.0).values():
        total += x
    return total


class Scored(NamedTuple):
    """A plan in the pool: its ranking key (violation size, value), label, assignment and
    schedule (start and end times)."""

    key: tuple[float, float]
    label: str
    a: np.ndarray
    start: np.ndarray
    end: np.ndarray


class _Entry:
    __slots__ = ("a", "order", "start", "end", "ev", "medium_order")

    def __init__(self, a, order, start, end, ev=None, medium_order=None):
        self.a, self.order, self.start, self.end, self.ev = a, order, start, end, ev
        self.medium_order = medium_order     # shared media (SPEC 5a): None is first come first served


def schedule_order(start, end, pos: np.ndarray) -> np.ndarray:
    """Blocks by start time, then end time, then topological position ``pos``: a linear
    extension of the block graph that reproduces a schedule's per-device orders (a block of
    zero duration goes before the block that starts when it ends)."""
    return np.lexsort((pos, np.asarray(end, dtype=float), np.asarray(start, dtype=float)))


def latency_only(p: Problem) -> bool:
    """The objective is latency alone and no constraint but a latency bound."""
    return p.latency_only()


@dataclass
class Pool:
    """Candidate plans, ranked by the evaluator's key (violation size, value); keeps the best
    (feasible first).

    Plans added with their schedule (`add_schedule`) of a latency-only problem are scored by
    the one simulator (`placement.simulator.SequenceSim`, the evaluator's own) when they fit
    memory, meet the latency bound and use reachable links; the evaluator itself then runs
    only on the plans that are asked for (`best`, `ranked`). Every other plan goes through
    the evaluator at once."""

    p: Problem
    best_label: str = ""
    best_key: tuple = (math.inf, math.inf)
    tried: dict[str, float] = field(default_factory=dict)
    #: every scored plan: (key, n, label, entry); best first after `ranked()`
    plans: list = field(default_factory=list)
    _seen: dict = field(default_factory=dict)
    _best: _Entry | None = None
    _sim: SequenceSim | None = None
    _pos: np.ndarray | None = None

    def __post_init__(self):
        if latency_only(self.p) and self.p.n_blocks and not self.p.media:   # media: evaluator
            self._sim = SequenceSim(self.p)
            self._pos = topo_position(self.p)

    @property
    def sim(self) -> SequenceSim | None:
        """The pure-Python simulator when the problem is latency-only, else None."""
        return self._sim

    def _evaluated(self, e: _Entry) -> Evaluation:
        if e.ev is None:
            e.ev = evaluate(self.p, e.a, e.order, e.medium_order)
        return e.ev

    @property
    def best(self) -> Evaluation | None:
        return None if self._best is None else self._evaluated(self._best)

    @property
    def best_plan(self) -> tuple[np.ndarray, list[list[int]] | None] | None:
        """(assignment, order) of the best plan, without running the evaluator."""
        e = self._best
        return None if e is None else (e.a, e.ev.order if e.ev is not None else e.order)

    @property
    def best_medium_order(self) -> list[list[int]] | None:
        """The best plan's sending order on each medium (None: first come first served, or no
        media), for the `Candidate`."""
        e = self._best
        if e is None or not self.p.media:
            return None
        if e.ev is not None:
            return [list(o) for o in e.ev.medium_order]
        return None if e.medium_order is None else [list(o) for o in e.medium_order]

    @property
    def has_plan(self) -> bool:
        return self._best is not None

    def _record(self, key: tuple, label: str, e: _Entry, sig) -> None:
        self._seen[sig] = (label, key, e)
        self.tried[label] = key[1] if key[0] == 0 else math.inf
        self.plans.append((key, len(self.plans), label, e))
        if key < self.best_key:
            self._best, self.best_key, self.best_label = e, key, label

    def add(self, a: np.ndarray | None, order: list[list[int]] | None, label: str,
            medium_order: list[list[int]] | None = None) -> Evaluation | None:
        """Score a plan with the evaluator (``order`` None: the list rule; ``medium_order``
        None: first come first served on every medium)."""
        if a is None:
            return None
        a = np.asarray(a, dtype=np.int64)
        # variants often build the same plan: score each distinct plan once
        sig = (a.tobytes(), None if order is None else tuple(map(tuple, order)))
        if medium_order is not None:
            sig += (tuple(map(tuple, medium_order)),)
        seen = self._seen.get(sig)
        if seen is not None:
            self.tried[label] = self.tried[seen[0]]
            return self._evaluated(seen[2])
        ev = evaluate(self.p, a, order, medium_order)
        key = (violation_size(self.p, ev), ev.value if math.isfinite(ev.value) else math.inf)
        self._record(key, label, _Entry(a, order, ev.start, ev.end, ev, medium_order), sig)
        return ev

    def add_schedule(self, a: np.ndarray, start, label: str, end=None,
                     medium_order: list[list[int]] | None = None) -> tuple[float, bool]:
        """Score a plan given by a schedule's start (and end) times: each device runs its
        blocks in `schedule_order`. Without ``end``, ``start`` may be any priority that
        respects precedence. ``medium_order``: the schedule's sending order on each medium
        (shared media; None: first come first served). Returns (value, feasible)."""
        p = self.p
        a = np.asarray(a, dtype=np.int64)
        seq = schedule_order(start, start if end is None else end,
                             self._pos if self._pos is not None else topo_position(p))
        order: list[list[int]] = [[] for _ in range(p.n_devices)]
        for b in seq.tolist():
            order[a[b]].append(b)
        if self._sim is None:
            ev = self.add(a, order, label, medium_order)
            return ev.value, ev.feasible
        sig = (a.tobytes(), tuple(map(tuple, order)))
        seen = self._seen.get(sig)
        if seen is not None:
            self.tried[label] = self.tried[seen[0]]
            return seen[1][1], seen[1][0] == 0
        value, fixed_start, fixed_end = self._sim.fixed(a.tolist(), seq.tolist())
        if (not math.isfinite(value) or np.any(p.memory_use(a) > p.memory_cap)
                or value > p.constraint_cap("latency_s")):
            ev = self.add(a, order, label)          # the evaluator names what breaks
            return ev.value, ev.feasible
        self._record((0.0, value), label, _Entry(a, order, np.array(fixed_start), np.array(fixed_end)), sig)
        return value, True

    def ranked(self) -> list:
        """Distinct scored plans (by assignment and order), best first: (label, evaluation)."""
        out, seen = [], set()
        for key, _, label, e in sorted(self.plans, key=lambda x: (x[0], x[1])):
            ev = self._evaluated(e)
            sig = (ev.assignment.tobytes(), tuple(map(tuple, ev.order)), tuple(map(tuple, ev.medium_order)))
            if sig not in seen:
                seen.add(sig)
                out.append((label, ev))
        return out

    def entries(self) -> list["Scored"]:
        """Scored plans, best first, without running the evaluator."""
        return [Scored(key, label, e.a, e.start, e.end)
                for key, _, label, e in sorted(self.plans, key=lambda x: (x[0], x[1]))]

    @property
    def feasible(self) -> bool:
        """The best plan is feasible (a zero violation size is exactly the evaluator's
        feasibility, and fast-scored plans are checked for memory and the latency bound)."""
        return self._best is not None and self.best_key[0] == 0


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

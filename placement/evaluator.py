"""The evaluator: the one implementation of SPEC sections 4 and 5.

Every plan the package reports is scored here; solvers may compute internally whatever
they like, but the figures they report come from `evaluate`.

Latency is found by simulation. With an order per device, each block starts when its
device has finished the block before it in that order and all its inputs have arrived
(producer's end plus transfer time; input blocks wait for ``input_bytes`` from
``source``); latency is when the last output reaches ``sink``. A plan without an order
is scheduled by the **list rule**, which is what a runtime with a queue per device
does: whenever a device is free it starts, among its blocks whose inputs have all
arrived, the one whose inputs arrived first (first come, first served); ties go to the
larger upward rank (longest remaining path, with the plan's own compute and transfer
times), then to the lower block index. The rule never leaves a device idle while one
of its blocks is ready, and produces the order that the plan then records.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .problem import Problem

#: relative tolerance on constraints and memory (float noise, not slack).
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Violation:
    """Why a plan is infeasible: ``kind`` is one of memory, pinned, device, unreachable,
    order, constraint, assignment."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class Evaluation:
    """The evaluator's verdict on one plan (indices, not ids; `Plan` turns them into ids)."""

    assignment: np.ndarray            # (B,) device index per block
    order: list[list[int]]            # per device, its blocks in run order
    start: np.ndarray                 # (B,) seconds
    end: np.ndarray                   # (B,) seconds
    latency_s: float
    period_s: float
    energy_j: float
    memory_bytes: np.ndarray          # (D,)
    transfer_bytes: float
    value: float
    violations: list[Violation] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def throughput_per_s(self) -> float:
        return 1.0 / self.period_s if self.period_s > 0 else math.inf

    def metrics(self, problem: Problem) -> dict[str, Any]:
        """The metrics dict of SPEC section 7 (ids, SI units)."""
        used = sorted(set(int(d) for d in self.assignment))
        return {
            "latency_s": self.latency_s,
            "period_s": self.period_s,
            "throughput_per_s": self.throughput_per_s,
            "energy_j": self.energy_j,
            "memory_bytes": {problem.devices[d].id: float(self.memory_bytes[d]) for d in used},
            "transfer_bytes": self.transfer_bytes,
        }


def metric_values(ev: Evaluation) -> dict[str, float]:
    return {"latency_s": ev.latency_s, "period_s": ev.period_s,
            "throughput_per_s": ev.throughput_per_s, "energy_j": ev.energy_j}


def evaluate(problem: Problem, assignment: Sequence[int] | np.ndarray,
             order: Sequence[Sequence[int]] | None = None) -> Evaluation:
    """Score a plan given by indices: ``assignment[b]`` is block b's device; ``order[d]``
    lists device d's blocks in run order (None: the list rule decides).

    Never raises for an infeasible plan: every broken rule is a `Violation`, and
    quantities that cannot be computed (a block on a device that cannot run it, an
    unreachable pair) are ``inf``.
    """
    p = problem
    B, D = p.n_blocks, p.n_devices
    a = np.asarray(assignment, dtype=np.int64)
    violations: list[Violation] = []
    if a.shape != (B,) or (B and (a.min() < 0 or a.max() >= D)):
        raise ValueError(f"assignment must be {B} device indices in [0, {D})")

    ct = p.compute_time[np.arange(B), a]                       # (B,)
    eu, ev_, eb = p.edge_src, p.edge_dst, p.edge_bytes
    ea, ec = a[eu], a[ev_]
    edge_tx = eb * p.inv_bandwidth[ea, ec]                    # transmission time, 0 on-device
    edge_time = np.where(ea == ec, 0.0, p.latency[ea, ec] + edge_tx)
    in_tx = p.in_bytes * p.inv_bandwidth[p.source, a]
    in_time = np.where(a == p.source, 0.0, p.latency[p.source, a] + in_tx)
    has_in = np.zeros(B, dtype=bool)
    has_in[list(p.input_blocks)] = True
    in_time = np.where(has_in, in_time, 0.0)
    in_tx = np.where(has_in, in_tx, 0.0)
    has_out = np.zeros(B, dtype=bool)
    has_out[list(p.output_blocks)] = True
    out_tx = np.where(has_out, p.out_bytes * p.inv_bandwidth[a, p.sink], 0.0)
    out_time = np.where(has_out & (a != p.sink), p.latency[a, p.sink] + out_tx, 0.0)

    _check_placement(p, a, ct, ea, ec, has_in, has_out, violations)

    # ---- latency: simulate
    if order is None:
        order = list_rule_order(p, a, ct, edge_time, in_time, out_time)
    else:
        order = [list(map(int, o)) for o in order]
        _check_order(p, a, order, violations)
    start, end, deadlock = _simulate(p, order, ct, edge_time, in_time)
    if deadlock:
        violations.append(Violation("order", "the per-device orders contradict the block graph "
                                    "(a block waits for one that runs after it on its device)"))
        latency = math.inf
    else:
        latency = float(np.max(end + out_time)) if B else 0.0

    # ---- period: busiest device or directed link
    load = np.bincount(a, weights=ct, minlength=D)
    link = np.zeros((D, D))
    cross = ea != ec
    np.add.at(link, (ea[cross], ec[cross]), edge_tx[cross])
    src_cross = has_in & (a != p.source)
    np.add.at(link, (np.full(int(src_cross.sum()), p.source), a[src_cross]), in_tx[src_cross])
    snk_cross = has_out & (a != p.sink)
    np.add.at(link, (a[snk_cross], np.full(int(snk_cross.sum()), p.sink)), out_tx[snk_cross])
    period = float(max(load.max(initial=0.0), link.max(initial=0.0)))

    # ---- energy
    energy = float(np.sum(p.power_active[a] * ct))
    energy += float(np.sum((p.tx_power[ea] + p.rx_power[ec])[cross] * edge_tx[cross]))
    energy += float(np.sum((p.tx_power[p.source] + p.rx_power[a[src_cross]]) * in_tx[src_cross]))
    energy += float(np.sum((p.tx_power[a[snk_cross]] + p.rx_power[p.sink]) * out_tx[snk_cross]))
    if p.count_idle:
        used = np.unique(a)
        energy += float(np.sum(p.power_idle[used] * np.maximum(latency - load[used], 0.0)))

    # ---- memory: weights of all blocks plus the largest working memory
    mem = np.bincount(a, weights=p.params, minlength=D)
    peak = np.zeros(D)
    np.maximum.at(peak, a, p.activation)
    mem = mem + peak
    for d in np.nonzero(mem > p.memory * (1 + TOLERANCE))[0]:
        blocks_here = int(np.sum(a == d))
        violations.append(Violation("memory", (
            f"device '{p.devices[d].id}' needs {mem[d]:.4g} bytes for its {blocks_here} block(s), "
            f"holds {p.memory[d]:.4g}")))

    transfer_bytes = float(eb[cross].sum() + p.in_bytes[src_cross].sum() + p.out_bytes[snk_cross].sum())
    ev = Evaluation(assignment=a, order=order, start=start, end=end, latency_s=latency,
                    period_s=period, energy_j=energy, memory_bytes=mem,
                    transfer_bytes=transfer_bytes, value=math.nan, violations=violations)
    _check_constraints(p, ev)
    values = metric_values(ev)
    ev.value = p.objective.value(values)
    return ev


def _check_placement(p: Problem, a, ct, ea, ec, has_in, has_out, out: list[Violation]) -> None:
    for b in np.nonzero(~np.isfinite(ct))[0]:
        blk, dev = p.blocks[b], p.devices[a[b]]
        why = ("not in its allowed_devices" if blk.allowed_devices is not None
               and dev.id not in blk.allowed_devices else "no measured time and no flops rate")
        out.append(Violation("device", f"block '{blk.id}' cannot run on '{dev.id}' ({why})"))
    for b, d in p.pinned.items():
        if a[b] != d:
            out.append(Violation("pinned", f"block '{p.blocks[b].id}' is pinned to "
                                 f"'{p.devices[d].id}', placed on '{p.devices[a[b]].id}'"))
    bad = ~p.reachable[ea, ec]
    for k in np.nonzero(bad)[0]:
        u, v = p.edge_src[k], p.edge_dst[k]
        out.append(Violation("unreachable", f"edge {p.blocks[u].id} -> {p.blocks[v].id}: no link "
                             f"from '{p.devices[ea[k]].id}' to '{p.devices[ec[k]].id}'"))
    for b in np.nonzero(has_in & ~p.reachable[p.source, a])[0]:
        out.append(Violation("unreachable", f"input of block '{p.blocks[b].id}': no link from "
                             f"source '{p.devices[p.source].id}' to '{p.devices[a[b]].id}'"))
    for b in np.nonzero(has_out & ~p.reachable[a, p.sink])[0]:
        out.append(Violation("unreachable", f"output of block '{p.blocks[b].id}': no link from "
                             f"'{p.devices[a[b]].id}' to sink '{p.devices[p.sink].id}'"))


def _check_order(p: Problem, a: np.ndarray, order: list[list[int]], out: list[Violation]) -> None:
    if len(order) != p.n_devices:
        raise ValueError(f"order must have one list per device ({p.n_devices})")
    seen = np.zeros(p.n_blocks, dtype=np.int64)
    for d, blocks in enumerate(order):
        for b in blocks:
            seen[b] += 1
            if a[b] != d:
                out.append(Violation("order", f"block '{p.blocks[b].id}' is in the order of "
                                     f"'{p.devices[d].id}' but assigned to '{p.devices[a[b]].id}'"))
    for b in np.nonzero(seen != 1)[0]:
        what = "missing from" if seen[b] == 0 else "repeated in"
        out.append(Violation("order", f"block '{p.blocks[b].id}' is {what} the device orders"))


def _simulate(p: Problem, order: list[list[int]], ct, edge_time, in_time):
    """Start/end times for fixed per-device orders. Returns (start, end, deadlock)."""
    B = p.n_blocks
    start = np.zeros(B)
    end = np.zeros(B)
    nxt = np.full(B, -1, dtype=np.int64)       # next block on the same device
    indeg = np.array([len(x) for x in p.preds], dtype=np.int64)
    first = []
    for blocks in order:
        if blocks:
            first.append(blocks[0])
        for x, y in zip(blocks, blocks[1:]):
            nxt[x] = y
            indeg[y] += 1
    on_device = np.zeros(B, dtype=bool)
    for blocks in order:
        on_device[blocks[1:]] = True
    dev_ready = np.zeros(B)                     # when the previous block on the device ended
    ready = [b for b in range(B) if indeg[b] == 0]
    ct_l, et_l, it_l = ct.tolist(), edge_time.tolist(), in_time.tolist()
    done = 0
    while ready:
        b = ready.pop()
        done += 1
        t = max(dev_ready[b], it_l[b])
        for u, k in p.preds[b]:
            t = max(t, end[u] + et_l[k])
        start[b] = t
        end[b] = t + ct_l[b]
        for v, _ in p.succs[b]:
            indeg[v] -= 1
            if indeg[v] == 0:
                ready.append(v)
        n = nxt[b]
        if n >= 0:
            dev_ready[n] = end[b]
            indeg[n] -= 1
            if indeg[n] == 0:
                ready.append(int(n))
    return start, end, done < B


def upward_rank(p: Problem, ct: np.ndarray, edge_time: np.ndarray, out_time: np.ndarray) -> np.ndarray:
    """Longest path from each block to the sink with the given per-block and per-edge times."""
    rank = np.zeros(p.n_blocks)
    et = edge_time.tolist()
    for b in reversed(p.topo):
        best = out_time[b]
        for v, k in p.succs[b]:
            best = max(best, et[k] + rank[v])
        rank[b] = ct[b] + best
    return rank


def list_rule_order(p: Problem, a: np.ndarray, ct, edge_time, in_time, out_time) -> list[list[int]]:
    """The documented list rule (module docstring): per-device orders for an assignment."""
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


def _check_constraints(p: Problem, ev: Evaluation) -> None:
    values = metric_values(ev)
    for metric, bound in p.constraints.items():
        got = values[metric]
        if metric == "throughput_per_s":
            broken = got < bound * (1 - TOLERANCE)
            sense = "at least"
        else:
            broken = got > bound * (1 + TOLERANCE) + 1e-15
            sense = "at most"
        if broken:
            ev.violations.append(Violation("constraint", f"{metric} is {got:.6g}, must be {sense} {bound:.6g}"))


def evaluate_ids(problem: Problem, assignment: Mapping[str, str],
                 order: Mapping[str, Sequence[str]] | None = None) -> Evaluation:
    """`evaluate` for a plan given by ids (as in a plan file). Unknown or missing ids raise
    `PlanError` naming them."""
    from .errors import PlanError

    p = problem
    missing = [b.id for b in p.blocks if b.id not in assignment]
    if missing:
        raise PlanError(f"assignment: expected every block of the problem, missing {missing[:5]}"
                        + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    extra = [b for b in assignment if b not in p.block_index]
    if extra:
        raise PlanError(f"assignment: expected block ids of the problem, found unknown {extra[:5]}")
    bad = {b: d for b, d in assignment.items() if d not in p.device_index}
    if bad:
        raise PlanError(f"assignment: expected device ids of the problem, found {bad}")
    a = np.array([p.device_index[assignment[b.id]] for b in p.blocks], dtype=np.int64)
    idx_order = None
    if order is not None:
        unknown = [d for d in order if d not in p.device_index]
        if unknown:
            raise PlanError(f"order: expected device ids of the problem, found {unknown}")
        idx_order = [[] for _ in p.devices]
        for d, blocks in order.items():
            for b in blocks:
                if b not in p.block_index:
                    raise PlanError(f"order.{d}: expected block ids of the problem, found '{b}'")
            idx_order[p.device_index[d]] = [p.block_index[b] for b in blocks]
    return evaluate(p, a, idx_order)

"""`heft`'s closing descent (`polish`): moves of the critical chain's blocks, scored by the
compiled twin (`heuristics._polish`) of the simulator's insertion rule, from the best,
best single-device and best list plans of the pool."""

from __future__ import annotations

import math

import numpy as np

from placement.method import Context
from placement.problem import Problem

from . import _polish
from ._common import Pool, masked_ct, schedule_order, topo_position
from ._list_schedule import _Expired, list_schedule_media

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
    entries = [e for e in pool.entries() if math.isfinite(e.key[0]) and math.isfinite(e.key[1])]
    if not entries:
        return out
    starts = [entries[0]]
    for want_single in (True, False):
        for e in entries[1:]:
            if e.label.startswith("single-") == want_single:
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



#: with shared media the descent runs on the Python path (`polish_media`): at most this many
#: block placements in all (candidates x blocks; a candidate is one media list pass, about
#: 20-200 microseconds a block on the loaded 2-core host), so 0.2-1.6 s at most.
MEDIA_POLISH_WORK = 8_000


def polish_media(p: Problem, pool: Pool, ctx: Context | None, budget: int) -> dict:
    """heft's closing descent on a problem with shared media, for a latency-only objective:
    the compiled kernel (`heuristics._polish`) is the twin of the contention-free insertion
    schedule, so media problems take this Python path instead. From the pool's best plan,
    move one block to another allowed device (blocks in the plan's schedule order, first
    improvement, repeated while it improves), each candidate scored by the media list pass
    with the devices fixed (`list_schedule_media` with ``force``: every block at its
    device's earliest idle gap, every transfer on the air at its medium's, blocks in the
    start plan's order). At most ``budget`` candidates and `MEDIA_POLISH_WORK` / blocks;
    deterministic; the deadline is checked inside every pass. An improved plan joins the
    pool (with its medium order), which re-scores it with the evaluator."""
    out = {"evaluations": 0, "improved": []}
    B = p.n_blocks
    if not p.latency_only() or budget <= 0 or B == 0:
        return out
    entries = [e for e in pool.entries() if math.isfinite(e.key[0]) and math.isfinite(e.key[1])]
    if not entries:
        return out
    (_, value0), label, a0, start0, end0 = entries[0]
    budget = min(budget, max(1, MEDIA_POLISH_WORK // B))
    ct = masked_ct(p)
    seq = schedule_order(start0, end0, topo_position(p))
    prio = np.empty(B)
    prio[seq] = -np.arange(B, dtype=float)          # the start plan's order, first highest
    deadline = ctx.deadline if ctx is not None else math.inf

    def score(a):
        mk: list = []
        res = list_schedule_media(p, ct, prio, None, force=a, deadline=deadline, latency=mk)
        return mk[0], res

    movable = [(b, np.nonzero(p.allowed[b])[0].tolist()) for b in seq.tolist()]
    used = 0
    mk, best = math.inf, None
    try:
        mk, best = score(np.array(a0, dtype=np.int64))
        improved = True
        while improved and used < budget:
            improved = False
            a = best[0]
            for b, devs in movable:
                for d in devs:
                    if d == a[b]:
                        continue
                    cand = a.copy()
                    cand[b] = d
                    used += 1
                    v, res = score(cand)
                    if v < mk * (1 - _polish.IMPROVE):
                        mk, best, improved = v, res, True
                        break
                    if used >= budget:
                        break
                if improved or used >= budget:
                    break
    except _Expired:
        pass
    out["evaluations"] = used
    if best is not None and mk < value0 * (1 - _polish.IMPROVE):
        a, s, e, mo = best
        value, _ = pool.add_schedule(a, s, "polish-air:" + label, end=e, medium_order=mo)
        out["improved"].append({"from": label, "start_value": value0, "value": value})
    return out


__all__ = ["polish", "polish_budget", "polish_media"]

"""`heft`'s list scheduler: one HEFT-family pass (priority order, earliest finish time with
insertion into idle gaps, memory-aware candidates, successor-aware ties, lookahead).

Two implementations of the same pass, the same rules in the same arithmetic order (tested
to give the same plan): vectorised over devices, and on Python lists for few devices
(`SMALL_D`), where numpy's per-call overhead dominates. The times they use are the cost
model's (`Problem.input_arrival`, link latency plus bytes times s/byte,
`Problem.output_delivery`); the idle-gap rule is the simulator's (`GAP_SLACK`).
"""

from __future__ import annotations

import bisect
import heapq
import math
import time

import numpy as np

from placement.problem import Problem
from placement.simulator import GAP_SLACK

from ._common import Memory, topo_position

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
                  deadline: float = math.inf, reserve: bool = False):
    """One HEFT-family pass. ``priority``: higher first (must respect precedence, ties broken
    by topological position). ``oct_``: optimistic cost table for tie-breaks (and, with
    ``lookahead``, added to the finish time). Returns (assignment, start, end); raises
    `_NoRoom` when memory leaves no device for a block. ``force[b] >= 0`` puts b on that
    device when it may run and fits there (CPoP's critical-path processor). ``reserve``:
    refuse device choices that leave the blocks still to come no room (`Reserve`)."""
    B, D = ct.shape
    if D <= SMALL_D:
        return _list_schedule_small(p, ct, priority, oct_, lookahead, insertion, force, deadline, reserve)
    a = np.full(B, -1, dtype=np.int64)
    start = np.zeros(B)
    end = np.zeros(B)
    mem = Memory(p)
    res = reserve_for(p, mem, reserve)
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
        if res is not None:
            ok = res.mask(b, ok)
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

        def pick(score, b=b, eft=eft, c=c):
            best = score.min()
            ties = np.nonzero(score <= best + 1e-9 * max(abs(best), 1e-12))[0]
            if len(ties) > 1 and oct_ is not None:
                look = (eft + oct_[b])[ties]
                ties = ties[look <= look.min() + 1e-9 * max(abs(look.min()), 1e-12)]
            if len(ties) > 1:                            # then the fastest device for b
                ties = ties[np.argsort(c[ties], kind="stable")]
            return int(ties[0])
        d = pick(score)
        if res is not None:
            d = reserve_pick(res, b, d, score, pick)
        a[b], start[b], end[b] = d, est[d], eft[d]
        mem.add(b, d)
        _occupy(intervals, avail, maxgap, d, est[d], eft[d])
    return a, start, end


#: how many of the largest blocks still to place `Reserve` checks one by one.
RESERVE_TOP = 16


def memory_binds(p: Problem) -> bool:
    """Some device cannot hold every block that may run on it (else no memory check can
    ever refuse a device, and `Reserve` is skipped)."""
    allowed = p.allowed
    need = (allowed * p.params[:, None]).sum(axis=0) + np.max(
        np.where(allowed, p.activation[:, None], 0.0), axis=0, initial=0.0)
    return bool(np.any(need > p.memory_cap))


class Reserve:
    """Room for the blocks still to come (bin-packing aware list scheduling).

    Two tests, both on memory only (weights plus the largest working memory per device,
    SPEC 4), pinned blocks' weights reserved up front as in `Memory`:

    * **witness packing**: a packing of every block not yet placed into the room the
      placed ones leave (best-fit decreasing at the start: blocks by weights plus working
      memory, largest first, each on the allowed device it leaves least room on). A device
      choice for a block is accepted when the witness can be repaired to agree with it:
      the block goes there, and the blocks the witness had on that device that no longer
      fit move, largest first, to other allowed devices with room (best fit). The witness
      is a certificate: while one exists, the blocks still to come have room (memory-wise;
      links are not in it), and the choice the witness itself makes is always accepted, so
      a list pass that starts with a witness never runs out of memory on a fully linked
      network. `accept` says whether a choice is accepted (and commits it);
    * when no witness packing is found at the start, a **relaxation** instead (`mask`):
      (1) the weights still to place fit the room left on all devices, each keeping the
      working memory of the smallest block still to come; (2) each of the `RESERVE_TOP`
      largest blocks still to come still fits on some allowed device by itself. A choice
      after which the relaxation has no solution is refused (no completion exists after
      it); a test that already fails before the choice refuses nothing.
    """

    def __init__(self, p: Problem, mem: Memory):
        self.p = p
        self.P = mem.params.copy()
        self.A = mem.act.copy()
        self.cap = np.asarray(p.memory_cap, dtype=float)
        self.peff = np.where(mem.reserved, 0.0, p.params)       # weights still to be added
        self.act = np.asarray(p.activation, dtype=float)
        self.allowed = p.allowed
        self.left = np.ones(p.n_blocks, dtype=bool)
        self.W = float(self.peff.sum())
        need = self.peff + self.act
        self.by_need = np.argsort(-need, kind="stable").tolist()
        self._head = 0
        self.wit = self._witness()          # device per block still to come, or None
        if self.wit is not None:
            D = p.n_devices
            self.members: list[set[int]] = [set() for _ in range(D)]
            self.WP = np.zeros(D)
            for r, d in enumerate(self.wit):
                self.members[d].add(r)
                self.WP[d] += self.peff[r]

    # ---------------------------------------------------------------- witness packing
    def _witness(self) -> list[int] | None:
        """A packing of all blocks (pins first, then by weights plus working memory, largest
        first): best fit, else worst fit (the allowed device with most room left), else best
        fit by weights alone; None if all three fail."""
        p = self.p
        if not p.n_devices:
            return None
        pinned = list(p.pinned)
        by_params = np.argsort(-self.peff, kind="stable").tolist()
        for order, worst in ((self.by_need, False), (self.by_need, True), (by_params, False)):
            P, A = self.P.copy(), self.A.copy()
            wit = [-1] * p.n_blocks
            for r in pinned + [r for r in order if r not in p.pinned]:
                room = self.cap - (P + self.peff[r]) - np.maximum(A, self.act[r])
                fit = self.allowed[r] & (room >= 0)
                if not fit.any():
                    break
                d = int(np.argmax(np.where(fit, room, -np.inf)) if worst
                        else np.argmin(np.where(fit, room, np.inf)))
                wit[r] = d
                P[d] += self.peff[r]
                A[d] = max(A[d], self.act[r])
            else:
                return wit
        return None

    def _load(self, d: int, P: float, A: float, members) -> float:
        peak = max([A] + [self.act[r] for r in members])
        return P + self.WP[d] + peak

    def accept(self, b: int, d: int) -> bool:
        """Can block ``b`` go to device ``d`` with a witness packing of the blocks still to
        come kept? If so, commit the choice (and the repaired witness) and return True."""
        if self.wit is None:
            self.place(b, d)
            return True
        cap, act, peff = self.cap, self.act, self.peff
        old = self.wit[b]
        self.members[old].discard(b)
        self.WP[old] -= peff[b]
        Pd, Ad = self.P[d] + peff[b], max(self.A[d], act[b])
        if self._load(d, Pd, Ad, self.members[d]) <= cap[d]:
            self._commit(b, d)
            return True
        # repair: move the witness's blocks on d elsewhere, largest first, until d fits
        moved: list[tuple[int, int]] = []
        for r in sorted(self.members[d], key=lambda r: -(peff[r] + act[r])):
            best, best_room = -1, math.inf
            for e in np.nonzero(self.allowed[r])[0].tolist():
                if e == d:
                    continue
                room = cap[e] - self._load(e, self.P[e] + peff[r], max(self.A[e], act[r]), self.members[e])
                if 0 <= room < best_room:
                    best, best_room = e, room
            if best < 0:
                continue
            self.members[d].discard(r)
            self.WP[d] -= peff[r]
            self.members[best].add(r)
            self.WP[best] += peff[r]
            self.wit[r] = best
            moved.append((r, best))
            if self._load(d, Pd, Ad, self.members[d]) <= cap[d]:
                self._commit(b, d)
                return True
        for r, e in reversed(moved):                # no repair: undo
            self.members[e].discard(r)
            self.WP[e] -= peff[r]
            self.members[d].add(r)
            self.WP[d] += peff[r]
            self.wit[r] = d
        self.members[old].add(b)
        self.WP[old] += peff[b]
        return False

    def _commit(self, b: int, d: int) -> None:
        self.wit[b] = d
        self.place(b, d)

    # ---------------------------------------------------------------- relaxation
    def _top(self, skip: int) -> list[int]:
        while self._head < len(self.by_need) and not self.left[self.by_need[self._head]]:
            self._head += 1
        out = []
        for r in self.by_need[self._head:]:
            if self.left[r] and r != skip:
                out.append(r)
                if len(out) >= RESERVE_TOP:
                    break
        return out

    def mask(self, b: int, ok: np.ndarray) -> np.ndarray:
        """Of the candidate devices ``ok`` for block ``b``, those after which the blocks still
        to come keep room by the relaxation; ``ok`` itself when it refuses all of them, or
        when a witness packing is kept (`accept` decides then)."""
        cand = np.nonzero(ok)[0]
        if len(cand) == 0 or self.wit is not None:
            return ok
        P, A, cap = self.P, self.A, self.cap
        self.left[b] = False
        try:
            if not self.left.any():
                return ok
            amin = float(self.act[self.left].min())
            W = self.W - self.peff[b]
            free = np.maximum(cap - P - np.maximum(A, amin), 0.0)
            tot = float(free.sum())
            Pn = P[cand] + self.peff[b]
            An = np.maximum(A[cand], self.act[b])
            free_n = np.maximum(cap[cand] - Pn - np.maximum(An, amin), 0.0)
            keep = np.ones(len(cand), dtype=bool)
            slack = 1e-9 * max(W, 1.0)
            if tot + slack >= W:                       # (1) holds now: keep it holding
                keep &= tot - free[cand] + free_n + slack >= W
            top = self._top(b)
            if top:
                allowed = self.allowed[top]                                     # (K, D)
                pr, ar = self.peff[top][:, None], self.act[top][:, None]
                fits = allowed & (P[None, :] + pr + np.maximum(A[None, :], ar) <= cap[None, :])
                cnt = fits.sum(axis=1)                                          # (K,)
                fits_n = allowed[:, cand] & (Pn[None, :] + pr + np.maximum(An[None, :], ar)
                                             <= cap[cand][None, :])
                after = cnt[:, None] - fits[:, cand] + fits_n                   # (K, C)
                keep &= np.all((after >= 1) | (cnt[:, None] == 0), axis=0)
        finally:
            self.left[b] = True
        if not keep.any():
            return ok
        out = np.zeros_like(ok)
        out[cand[keep]] = True
        return out

    def place(self, b: int, d: int) -> None:
        self.P[d] += self.peff[b]
        self.A[d] = max(self.A[d], self.act[b])
        self.W -= self.peff[b]
        self.left[b] = False


def reserve_pick(res: Reserve, b: int, d: int, score, pick) -> int:
    """The device for ``b``: ``d`` (the pass's own choice) if the reservation accepts it,
    else the pass's next choice that it accepts (``pick`` applied to ``score`` with the
    refused devices removed). If it accepts none, ``d`` and the reservation gives up its
    witness (from then on only the relaxation's refusals apply). Commits the choice."""
    if res.wit is None:
        res.place(b, d)
        return d
    first = d
    sc = None
    while True:
        if res.accept(b, d):
            return d
        if sc is None:
            sc = np.array(score, dtype=float)
        sc[d] = math.inf
        if not np.isfinite(sc).any():
            res.wit = None
            res.place(b, first)
            return first
        d = pick(sc if isinstance(score, np.ndarray) else sc.tolist())


def reserve_for(p: Problem, mem: Memory, reserve: bool) -> Reserve | None:
    """A `Reserve` when asked for and memory can bind, else None (nothing to reserve)."""
    if not reserve or not memory_binds(p):
        return None
    return Reserve(p, mem)


#: up to this many devices, `list_schedule` runs on Python lists (numpy's per-call overhead
#: dominates on short vectors); above it, vectorised over devices. Both give the same plan.
SMALL_D = 16


def _list_schedule_small(p: Problem, ct: np.ndarray, priority: np.ndarray, oct_: np.ndarray | None,
                         lookahead: bool = False, insertion: bool = True,
                         force: np.ndarray | None = None, deadline: float = math.inf,
                         reserve: bool = False):
    """`list_schedule` on Python lists, for few devices: same rules, same arithmetic order."""
    B, D = ct.shape
    a = [-1] * B
    start = [0.0] * B
    end = [0.0] * B
    mem = Memory(p)
    res = reserve_for(p, mem, reserve)
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
        rm = None if res is None else _reserve_mask_small(res, b, ready, c, mp, ma, cap, extra, actb,
                                                           out, reach_sink)
        if fd >= 0 and rm is not None and not rm[fd]:
            fd = -1
        if fd >= 0:
            r, cd = ready[fd], c[fd]
            if (r == inf or cd == inf or mp[fd] + extra + max(ma[fd], actb) > cap[fd]
                    or (out and not reach_sink[fd])):
                fd = -1
        for d in (devs if fd < 0 else (fd,)):
            r, cd = ready[d], c[d]
            if r == inf or cd == inf or mp[d] + extra + max(ma[d], actb) > cap[d]:
                continue
            if rm is not None and not rm[d]:
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

        def pick(score, eft=eft, ob=ob, c=c):
            best = min(score)
            tol = best + 1e-9 * max(abs(best), 1e-12)
            ties = [d for d in devs if score[d] <= tol]
            if len(ties) > 1 and ob is not None:
                look = [eft[d] + ob[d] for d in ties]
                lm = min(look)
                ltol = lm + 1e-9 * max(abs(lm), 1e-12)
                ties = [d for d, x in zip(ties, look) if x <= ltol]
            return min(ties, key=lambda x: c[x]) if len(ties) > 1 else ties[0]
        d = pick(score)
        if res is not None:
            d = reserve_pick(res, b, d, score, pick)
        a[b], start[b], end[b] = d, est[d], eft[d]
        if not reserved[b]:
            mp[d] += params[b]
        ma[d] = max(ma[d], actb)
        _occupy(intervals, avail, maxgap, d, est[d], eft[d])
    return np.array(a, dtype=np.int64), np.array(start), np.array(end)


# ---------------------------------------------------------------- shared media (SPEC 5a)
def _air_gap(starts: list, ends: list, r: float, c: float, insertion: bool) -> float:
    """Earliest start at or after ``r`` of a transmission of ``c`` seconds on a medium busy
    over the sorted intervals (``starts``, ``ends``): the first idle gap that holds it (the
    simulator's `GAP_SLACK`, as for a block on a device), else after the last interval."""
    n = len(starts)
    if n == 0:
        return r
    last = ends[-1]
    if r >= last or not insertion:
        return r if r > last else last
    i = bisect.bisect_right(ends, r)
    prev = ends[i - 1] if i > 0 else 0.0
    for j in range(i, n):
        t = prev if prev > r else r
        if t + c <= starts[j] + _EPS:
            return t
        prev = ends[j]
    return prev if prev > r else r

def _reserve_mask_small(res: Reserve, b: int, ready, c, mp, ma, cap, extra, actb, out, reach_sink):
    """`Reserve.mask` for the list version: the devices that may take ``b`` (the same test
    as the pass's own), narrowed by the reservation; a list of bools."""
    inf = math.inf
    ok = np.array([not (ready[d] == inf or c[d] == inf or mp[d] + extra + max(ma[d], actb) > cap[d]
                        or (out and not reach_sink[d])) for d in range(len(c))], dtype=bool)
    return res.mask(b, ok).tolist()



def _air_gap_with(lists: tuple, extra: list, m: int, r: float, c: float, insertion: bool) -> float:
    """`_air_gap` on medium m with the candidate's own tentative transfers ``extra`` (m, t,
    start, end) busy too: the earliest start that fits both (a start that overlaps a
    tentative interval moves past it; no valid start is skipped, since any earlier one
    would already fit before that interval)."""
    starts, ends, _ = lists
    while True:
        t = _air_gap(starts, ends, r, c, insertion)
        for mm, _, s0, e0 in extra:
            if mm != m:
                continue
            overlap = (t < e0 and s0 < t + c - _EPS) if c > 0 else (s0 < t < e0)
            if overlap:
                r = e0
                break
        else:
            return t


def _air_take(air: list, m: int, s: float, e: float, t: int) -> None:
    """Occupy medium m over [s, e) with transfer t (the interval lists stay sorted)."""
    starts, ends, ids = air[m]
    i = bisect.bisect_right(starts, s)
    starts.insert(i, s)
    ends.insert(i, e)
    ids.insert(i, t)


def list_schedule_media(p: Problem, ct: np.ndarray, priority: np.ndarray, oct_: np.ndarray | None,
                        lookahead: bool = False, insertion: bool = True, force: np.ndarray | None = None,
                        deadline: float = math.inf, latency: list | None = None):
    """`list_schedule` with the shared media of SPEC 5a as resources: each medium is one
    more timeline, and a transfer on it (producer and consumer on two different devices of
    the medium, the input from ``source``, an output to ``sink``) is inserted into the
    medium's earliest idle gap after it becomes ready, as a block is on its device. For a
    candidate device of block b, the transfers b waits for that would cross a medium are
    inserted (tentatively) in the order they become ready (ties: transfer index), their
    arrival is the gap's start plus ``n / bandwidth`` plus the link latency, and b's
    earliest start and finish follow; an output block's score is the arrival of its output
    at ``sink``, its transfer inserted after b's finish. The chosen device's transfers are
    then committed. The same rules otherwise (priority order, memory, pins, ties, lookahead,
    ``force``) as `_list_schedule_small`, on Python lists.

    Returns (assignment, start, end, medium_order): ``medium_order[m]`` lists medium m's
    transfers (`placement.media` indices) by their send start in this schedule. The schedule
    obeys the cost model with those orders, so the evaluator given them (and the per-device
    orders by start) finds at most this latency, which is appended to ``latency`` when a
    list is given."""
    from placement import media as md

    B, D = ct.shape
    M = len(p.media)
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
    medium_of = p.medium_of.tolist()
    ebytes = p.edge_bytes.tolist()
    ctl = ct.tolist()
    octl = oct_.tolist() if oct_ is not None else None
    src, snk = p.source, p.sink
    I, E, _ = md.transfer_count(p)
    in_t = {b: i for i, b in enumerate(p.input_blocks)}          # transfer index of b's input
    out_t = {b: I + E + i for i, b in enumerate(p.output_blocks)}
    in_bytes, out_bytes = p.in_bytes.tolist(), p.out_bytes.tolist()
    src_arrival = {b: p.input_arrival(b).tolist() for b in p.input_blocks}
    delivery = {b: p.output_delivery(b).tolist() for b in p.output_blocks}
    reach_sink = p.reachable[:, p.sink].tolist()
    air: list = [([], [], []) for _ in range(M)]
    t_start: dict[int, float] = {}
    t_end: dict[int, float] = {}
    inf = math.inf
    devs = range(D)
    for b in _ready_order(p, priority, deadline):
        preds = sorted(p.preds[b], key=lambda x: (end[x[0]], I + x[1]))   # ready order on the air
        c = ctl[b]
        extra = 0.0 if reserved[b] else params[b]
        actb = acts[b]
        out = b in delivery
        dl = delivery.get(b)
        ob = octl[b] if octl is not None else None
        score = [inf] * D
        est = [0.0] * D
        eft = [0.0] * D
        sent: list = [None] * D              # per candidate: its transfers on the air (m, t, s, e)
        any_ok = False
        fd = int(force[b]) if force is not None else -1
        if fd >= 0:
            if (c[fd] == inf or mp[fd] + extra + max(ma[fd], actb) > cap[fd]
                    or (out and not reach_sink[fd])):
                fd = -1
        for d in (devs if fd < 0 else (fd,)):
            cd = c[d]
            if cd == inf or mp[d] + extra + max(ma[d], actb) > cap[d]:
                continue
            if out and not reach_sink[d]:
                continue
            mine: list = []
            if preds:
                r = 0.0
                for u, k in preds:
                    du, eu = a[u], end[u]
                    if du == d:
                        x = eu
                    else:
                        m = medium_of[du][d]
                        if m < 0:
                            x = eu + lat[du][d] + ebytes[k] * inv[du][d]
                        else:
                            txk = ebytes[k] * inv[du][d]
                            s0 = _air_gap_with(air[m], mine, m, eu, txk, insertion)
                            mine.append((m, I + k, s0, s0 + txk))
                            x = s0 + txk + lat[du][d]
                    if x > r:
                        r = x
            else:
                m = medium_of[src][d]
                if m < 0:
                    r = src_arrival[b][d]
                else:
                    txk = in_bytes[b] * inv[src][d]
                    s0 = _air_gap(air[m][0], air[m][1], 0.0, txk, insertion)
                    mine.append((m, in_t[b], s0, s0 + txk))
                    r = s0 + txk + lat[src][d]
            if r == inf:
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
            arrive = f + dl[d] if out else f          # the output at sink
            if out and d != snk and medium_of[d][snk] >= 0:
                m = medium_of[d][snk]
                txk = out_bytes[b] * inv[d][snk]
                s0 = _air_gap_with(air[m], mine, m, f, txk, insertion)
                mine.append((m, out_t[b], s0, s0 + txk))
                arrive = s0 + txk + lat[d][snk]
            if lookahead and ob is not None:
                score[d] = arrive if out else f + ob[d]
            else:
                score[d] = arrive
            sent[d] = mine
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
        for m, t, s0, e0 in sent[d]:
            _air_take(air, m, s0, e0, t)
            t_start[t], t_end[t] = s0, e0
        if not reserved[b]:
            mp[d] += params[b]
        ma[d] = max(ma[d], actb)
        _occupy(intervals, avail, maxgap, d, est[d], eft[d])
    medium_order = [sorted(ids, key=lambda t: (t_start[t], t_end[t], t)) for _, _, ids in air]
    if latency is not None:               # when the last result reaches sink (SPEC 5a)
        mk = max(end, default=0.0)
        for b in p.output_blocks:
            t = out_t[b]
            x = t_end[t] + lat[a[b]][snk] if t in t_end else end[b] + delivery[b][a[b]]
            if x > mk:
                mk = x
        latency.append(mk)
    return np.array(a, dtype=np.int64), np.array(start), np.array(end), medium_order


__all__ = ["list_schedule", "list_schedule_media", "SMALL_D", "Reserve", "memory_binds"]

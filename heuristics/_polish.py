"""Compiled kernels (numba) of `heft`'s closing descent: the insertion schedule of a fixed
assignment, and a first-improvement descent over moves of the critical chain's blocks.

A descent scores hundreds to thousands of candidate plans; in plain Python each costs
~30 microseconds at 30 blocks, compiled ~1. The kernels are compiled once per machine
(``cache=True`` keeps the machine code beside this file) by an explicit `warm_up` (heft's
``warm_up``, which the API calls before a solve's clock starts), so planning time never
includes compilation; importing this module compiles nothing.

`schedule` is the **compiled twin** of `placement.simulator.insertion_schedule` (the one
simulator's insertion rule: blocks in ``seq`` order, each at the earliest idle gap of its
device that fits after its inputs have arrived): the same operations in the same order,
tested bit for bit. A cost rule changes there first, then here. Inputs come from
``source`` (``inp[b, d]``, `Problem.input_arrival`) and from predecessors (``end[u]`` plus
link latency and bytes / bandwidth when the devices differ); the makespan adds each output
block's delivery to ``sink`` (``outd[b, d]``, `Problem.output_delivery`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from placement.simulator import GAP_SLACK

#: a move must shorten the makespan by this relative amount to be taken (float noise).
IMPROVE = 1e-12


def _jit(fn):
    """Compile with numba, caching the machine code beside this file or in numba's
    user-wide cache; where neither can be written, compile in memory (each process then
    pays the compilation once, at import)."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:                 # "cannot cache function ...: no locator available"
        return njit(nogil=True)(fn)


@_jit
def schedule(a, seq, ct, pind, pu, pbytes, lat, inv, inp, outd, iv_s, iv_e, iv_b, cnt, start, end, why):
    """Insertion schedule of assignment ``a`` in ``seq`` order; fills ``start``, ``end`` and
    ``why`` (the block each one waited for: a predecessor or the previous block on its
    device, -1 for none). ``iv_*`` (D, B) and ``cnt`` (D,) are workspace. Returns
    (makespan, the block whose delivery ends last)."""
    B = a.shape[0]
    D = ct.shape[1]
    for d in range(D):
        cnt[d] = 0
    for j in range(B):
        b = seq[j]
        d = a[b]
        r = inp[b, d]
        w = -1
        for q in range(pind[b], pind[b + 1]):
            u = pu[q]
            du = a[u]
            x = end[u]
            if du != d:
                x += lat[du, d] + pbytes[q] * inv[du, d]
            if x > r:
                r = x
                w = u
        c = ct[b, d]
        n = cnt[d]
        avail = iv_e[d, n - 1] if n > 0 else 0.0
        pos = n
        t = r
        tw = w
        if r < avail:
            prev = 0.0
            pb = -1
            found = False
            for i in range(n):
                if prev > r:
                    t = prev
                    tw = pb
                else:
                    t = r
                    tw = w
                if t + c <= iv_s[d, i] + GAP_SLACK:
                    pos = i
                    found = True
                    break
                prev = iv_e[d, i]
                pb = iv_b[d, i]
            if not found:
                t = avail
                tw = iv_b[d, n - 1]
        for i in range(n, pos, -1):
            iv_s[d, i] = iv_s[d, i - 1]
            iv_e[d, i] = iv_e[d, i - 1]
            iv_b[d, i] = iv_b[d, i - 1]
        iv_s[d, pos] = t
        iv_e[d, pos] = t + c
        iv_b[d, pos] = b
        cnt[d] = n + 1
        start[b] = t
        end[b] = t + c
        why[b] = tw
    mk = 0.0
    last = -1
    for b in range(B):
        x = end[b] + outd[b, a[b]]
        if x > mk:
            mk = x
            last = b
    return mk, last


@_jit
def _memory(a, params, act, mp, ma):
    """Per device: the weights (``mp``) and the largest working memory (``ma``) of ``a``."""
    mp[:] = 0.0
    ma[:] = 0.0
    for b in range(a.shape[0]):
        mp[a[b]] += params[b]
        ma[a[b]] = max(ma[a[b]], act[b])


@_jit
def _fits(mp, ma, params, act, cap, d, b, n):
    """Memory on d after adding block b (and block n when n >= 0)."""
    extra = params[b]
    peak = max(ma[d], act[b])
    if n >= 0:
        extra += params[n]
        peak = max(peak, act[n])
    return mp[d] + extra + peak <= cap[d]


@_jit
def _try(a, b, n, d, mk, mp, ma, params, act, seq, ct, pind, pu, pbytes, lat, inv, inp, outd,
         iv_s, iv_e, iv_b, cnt, start, end, why):
    """Move block b (and block n when n >= 0) to device d; keep the move (and recount the
    memory) if the makespan drops below ``mk``, else undo it. Returns whether it was kept."""
    old = a[b]
    a[b] = d
    if n >= 0:
        a[n] = d
    v, _ = schedule(a, seq, ct, pind, pu, pbytes, lat, inv, inp, outd, iv_s, iv_e, iv_b, cnt, start, end, why)
    if v < mk * (1 - IMPROVE):
        _memory(a, params, act, mp, ma)
        return True
    a[b] = old
    if n >= 0:
        a[n] = old
    return False


@_jit
def descend(a, seq, ct, pind, pu, pbytes, lat, inv, inp, outd, allowed, nind, nbr,
            params, act, cap, pairs, max_evals, skip, iv_s, iv_e, iv_b, cnt, start, end, why):
    """First-improvement descent from assignment ``a`` (changed in place), blocks in ``seq``
    order. Moves: one block of the critical chain to another allowed device (devices of its
    neighbours in the block graph first), and with ``pairs`` the block together with a
    neighbour on its device. Memory stays within ``cap`` (weights plus the largest working
    memory per device). Stops at a local optimum or after ``max_evals`` candidates.

    ``skip``: candidates of the first scan already scored, without improvement, by a
    previous call on the same ``a`` (a run cut into calls to look at the clock scores the
    same candidates in the same order as one call). Returns (makespan, candidates scored,
    reached a local optimum, candidates of the current scan scored so far -- the next
    call's ``skip``); ``start`` holds the final schedule."""
    B = a.shape[0]
    D = ct.shape[1]
    mp = np.zeros(D)
    ma = np.zeros(D)
    _memory(a, params, act, mp, ma)
    chain = np.empty(B, dtype=np.int64)
    near = np.zeros(D, dtype=np.bool_)
    evals = 0
    mk, last = schedule(a, seq, ct, pind, pu, pbytes, lat, inv, inp, outd, iv_s, iv_e, iv_b, cnt, start, end, why)
    while True:
        scanned = 0
        L = 0
        x = last
        while x >= 0:
            chain[L] = x
            L += 1
            x = why[x]
        improved = False
        for ci in range(L):
            b = chain[ci]
            old = a[b]
            for d in range(D):
                near[d] = False
            for q in range(nind[b], nind[b + 1]):
                near[a[nbr[q]]] = True
            for phase in range(2):
                for d in range(D):
                    if d == old or not allowed[b, d] or near[d] != (phase == 0):
                        continue
                    if not _fits(mp, ma, params, act, cap, d, b, -1):
                        continue
                    scanned += 1
                    if scanned <= skip:
                        continue
                    evals += 1
                    improved = _try(a, b, -1, d, mk, mp, ma, params, act, seq, ct, pind, pu, pbytes, lat,
                                    inv, inp, outd, iv_s, iv_e, iv_b, cnt, start, end, why)
                    if improved or evals >= max_evals:
                        break
                if improved or evals >= max_evals:
                    break
            if pairs and not improved and evals < max_evals:
                for q in range(nind[b], nind[b + 1]):
                    n = nbr[q]
                    if a[n] != old:
                        continue
                    for d in range(D):
                        if d == old or not allowed[b, d] or not allowed[n, d]:
                            continue
                        if not _fits(mp, ma, params, act, cap, d, b, n):
                            continue
                        scanned += 1
                        if scanned <= skip:
                            continue
                        evals += 1
                        improved = _try(a, b, n, d, mk, mp, ma, params, act, seq, ct, pind, pu, pbytes,
                                        lat, inv, inp, outd, iv_s, iv_e, iv_b, cnt, start, end, why)
                        if improved or evals >= max_evals:
                            break
                    if improved or evals >= max_evals:
                        break
            if improved or evals >= max_evals:
                break
        if improved:
            skip = 0
            scanned = 0
        mk, last = schedule(a, seq, ct, pind, pu, pbytes, lat, inv, inp, outd, iv_s, iv_e, iv_b, cnt, start, end, why)
        if evals >= max_evals:
            return mk, evals, False, scanned
        if not improved:
            return mk, evals, True, scanned


_warmed = False


def warm_up() -> None:
    """Compile (or load from the cache) for the argument types `heft` passes -- writable C
    arrays of float64, int64 and bool -- so that no plan's time includes it. Called by
    `heft`'s ``warm_up`` (the API calls it before a solve's clock starts); once per process."""
    global _warmed
    if _warmed:
        return
    B, D = 2, 2
    f = np.zeros((B, D))
    i = np.zeros(B, dtype=np.int64)
    descend(i.copy(), np.arange(B, dtype=np.int64), f + 1.0, np.zeros(B + 1, dtype=np.int64),
            np.zeros(0, dtype=np.int64), np.zeros(0), f.copy(), f.copy(), f.copy(), f.copy(),
            np.ones((B, D), dtype=np.bool_), np.zeros(B + 1, dtype=np.int64), np.zeros(0, dtype=np.int64),
            np.zeros(B), np.zeros(B), np.ones(D), True, 10, 0,
            np.zeros((D, B)), np.zeros((D, B)), np.zeros((D, B), dtype=np.int64), np.zeros(D, dtype=np.int64),
            np.zeros(B), np.zeros(B), np.zeros(B, dtype=np.int64))
    _warmed = True

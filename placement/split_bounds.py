"""Bounds over every split choice that keep what splitting costs (docs/bounds.md, "Phases").

`placement.bounds.split_relaxation` relaxes each block with several ways to ONE shard's
worth of everything: valid over every choice, but it drops the other shards' work and every
transfer that splitting adds, so on a real profile (10^5 choices) it proves little. These
bounds keep the blocks of the FILE (before expansion) and minimise over each block's ways
inside the bound, so they see what a choice costs:

- **latency, the phase DP** (`phase_latency`). Every shard of a block ``v`` waits for every
  shard of each predecessor ``u`` (the split transform joins every pair of shards, even
  with 0 bytes). For each block, way ``w`` and device ``d``, ``H[v][w][d]`` bounds when
  the last of ``v``'s shards ends, over the plans where that shard is on ``d``; two kinds of
  plan are told apart, ``v``'s shards all on ``d`` (``conc``) or on two devices or more
  (``spread``). The last shard of ``u`` on ``d`` sends to every shard of ``v`` (its least
  shard-to-shard bytes), and when ``u`` is spread every device of ``v`` also waits for a
  shard of ``u`` on another device. ``v``'s shards on a device run one after the other
  (at most as many as fit there), so the least makespan of ``w`` identical shards with
  those release times (the ``w`` smallest of ``release_e + k t_e``) bounds ``v``'s end.
  With shared media (SPEC 5a) the shards that ``u``'s last device feeds over a medium wait
  for one transfer each, sent one at a time: ``c`` of them end no earlier than ``c``
  transmissions after it. Plus the least total work spread over the devices.
- **period**: the busiest block (its ``w`` shards spread at best over the devices) and the
  least total work spread over the devices.
- **energy**: every block's least compute energy over its ways (``w`` shards of the least
  energy each; radio and idle energy only add).

Each holds for every choice; `placement.bounds` takes the largest of them and the
relaxation's. Not used with scenarios (a skipped block does not run, the DP assumes every
block does)."""

from __future__ import annotations

import numpy as np

from .problem import Problem
from .split import pair_bytes, shard_id

_NEG = -np.inf


class _Family:
    """The file's blocks with, per block and way, one shard's quantities read from the
    expansion that gives the block that way: compute time where the shard fits alone
    (``ct``, (D,)), how many such shards a device holds at once (``kmax``: their weights
    plus the largest working memory, section 3), the input from ``source`` (``arrival``)
    and the output to ``sink`` (``delivery``) of one shard, and the active energy."""

    def __init__(self, p: Problem):
        from .bounds import memory_view

        src = p._split_source
        self.p = p
        self.ids = [b["id"] for b in src["blocks"]]
        self.spec = {b["id"]: b for b in src["blocks"]}
        self.ways = {b: tuple(p.split_options.get(b, (1,))) for b in self.ids}
        self.preds: dict[str, list[tuple[str, float]]] = {b: [] for b in self.ids}
        self.succs: dict[str, list[str]] = {b: [] for b in self.ids}
        for u, v, n in src["edges"]:
            self.preds[v].append((u, float(n)))
            self.succs[u].append(v)
        D = p.n_devices
        self.ct: dict[tuple[str, int], np.ndarray] = {}
        self.kmax: dict[tuple[str, int], np.ndarray] = {}
        self.arrival: dict[tuple[str, int], np.ndarray] = {}
        self.delivery: dict[tuple[str, int], np.ndarray] = {}
        self.in_bytes: dict[tuple[str, int], float] = {}
        self.out_bytes: dict[tuple[str, int], float] = {}
        for w in sorted({w for ws in self.ways.values() for w in ws}):
            q = p.expand({b: (w if w in ws else max(ws)) for b, ws in p.split_options.items()})
            mv = memory_view(q)
            for b in self.ids:
                if w not in self.ways[b]:
                    continue
                i = q.block_index[b if w == 1 else shard_id(b, 0)]
                ct = mv.ct[i]
                par, act = float(q.params[i]), float(q.activation[i])
                with np.errstate(divide="ignore", invalid="ignore"):
                    k = np.floor((mv.cap - act) / par + 1e-9) if par > 0 else np.full(D, float(w))
                self.ct[b, w] = ct
                self.kmax[b, w] = np.where(np.isfinite(ct), np.clip(k, 0, w), 0).astype(np.int64)
                self.arrival[b, w] = q.input_arrival(i)
                self.delivery[b, w] = q.output_delivery(i)
                self.in_bytes[b, w] = float(q.in_bytes[i])
                self.out_bytes[b, w] = float(q.out_bytes[i])
        self.order = self._topo()

    def _topo(self) -> list[str]:
        indeg = {b: len(self.preds[b]) for b in self.ids}
        ready = [b for b in self.ids if indeg[b] == 0]
        out = []
        while ready:
            b = ready.pop(0)
            out.append(b)
            for v in self.succs[b]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    ready.append(v)
        return out

    def mode(self, b: str) -> tuple[str | None, float]:
        sp = self.spec[b].get("split")
        return (sp["mode"], float(sp["halo_bytes"])) if sp else (None, 0.0)

    def edge_bytes(self, u: str, v: str, n: float, wu: int, wv: int) -> tuple[float, float, float]:
        """For an edge of ``n`` bytes, ``u`` split ``wu`` ways and ``v`` ``wv`` ways: the least
        bytes one shard of ``u`` sends one shard of ``v``; the least over v's shards of the
        most one shard of ``u`` sends it; the least over v's shards of all it receives."""
        mu, _ = self.mode(u)
        mv, hv = self.mode(v)
        m = np.array([[pair_bytes(n, wu, wv, mv, hv, ku, kv, mu) for kv in range(wv)] for ku in range(wu)])
        return float(m.min()), float(m.max(axis=0).min()), float(m.sum(axis=0).min())


def _finish_times(release: np.ndarray, ct: np.ndarray, kmax: np.ndarray, w: int) -> np.ndarray:
    """(D, w): ``release_e + k ct_e`` for the k-th shard on e (k = 1..w), inf past ``kmax_e``."""
    k = np.arange(1, w + 1)
    vals = release[:, None] + k[None, :] * ct[:, None]
    return np.where(k[None, :] <= kmax[:, None], vals, np.inf)


def _spread_makespan(release: np.ndarray, ct: np.ndarray, kmax: np.ndarray, w: int) -> np.ndarray:
    """(D,): the least makespan of ``w`` identical shards (device e: release ``release_e``,
    each ``ct_e``, at most ``kmax_e``) that use device d and at least one other device: the
    first shard on d, the first on some e != d, and the ``w - 2`` smallest other finish times
    (greedy: the least makespan of identical jobs is the ``w``-th smallest finish time)."""
    D = len(release)
    vals = _finish_times(release, ct, kmax, w)
    flat = vals.ravel()
    order = np.argsort(flat, kind="stable")
    S = flat[order]
    rank = np.empty(len(flat), dtype=np.int64)
    rank[order] = np.arange(len(flat))
    r1 = rank[np.arange(D) * w]
    v1 = vals[:, 0]
    j = w - 2
    if j == 0:
        rest = np.full((D, D), _NEG)
    else:
        lo = np.minimum(r1[:, None], r1[None, :])
        hi = np.maximum(r1[:, None], r1[None, :])
        idx = (j - 1) + (lo <= j - 1)
        idx = idx + (hi <= idx)
        rest = np.where(idx < len(S), S[np.minimum(idx, len(S) - 1)], np.inf)
    M = np.maximum(np.maximum(v1[:, None], v1[None, :]), rest)
    np.fill_diagonal(M, np.inf)
    return M.min(axis=1)


def _kth_smallest(vals: np.ndarray, w: int) -> np.ndarray:
    """(w + 1,): entry c is the c-th smallest of ``vals`` (-inf for c = 0, inf past the end)."""
    s = np.sort(vals.ravel())
    out = np.full(w + 1, np.inf)
    out[0] = _NEG
    n = min(w, len(s))
    out[1:n + 1] = s[:n]
    return out


def _minmax_merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(w + 1,): entry c is the least over c1 + c2 = c of max(a[c1], b[c2])."""
    w = len(a) - 1
    out = np.full(w + 1, np.inf)
    for c in range(w + 1):
        out[c] = np.min(np.maximum(a[:c + 1], b[c::-1]))
    return out


def _phase_offsets(p: Problem, ct: np.ndarray, kmax: np.ndarray, w: int, nbytes: float,
                   total: float | None = None, lead: np.ndarray | None = None) -> np.ndarray:
    """(D,): for a release at device d (time 0; the data of ``nbytes`` per shard is on d),
    a lower bound on the end of ``w`` shards (``ct``, ``kmax``) placed anywhere: the shards on
    d start at 0, the others get one transfer each from d, contention-free off every medium
    and one at a time on a medium (c of them no earlier than c transmissions plus the least
    latency and compute time among that medium's devices); shards on one device run one after
    the other (`_kth_smallest` of the finish times per group). Least over how many shards
    each group takes (`_minmax_merge`). ``total``, ``lead``: when every byte a shard needs
    (``total``) is on d, sent from ``-lead[d]`` on (the earliest a producer there ends), a
    medium also carries c times ``total`` from then."""
    D = p.n_devices
    T = p.transfer_matrix(nbytes)
    tx = p.transmission_matrix(nbytes)
    tx_all = p.transmission_matrix(total) if total is not None else None
    out = np.full(D, np.inf)
    cs = np.arange(w + 1)
    for d in range(D):
        if not np.isfinite(T[d]).any():
            continue
        rel = np.where(p.reachable[d], T[d], np.inf)
        vals = _finish_times(rel, ct, kmax, w)
        groups = p.medium_of[d].copy()
        groups[d] = -2                                   # d itself
        best = None
        for g in np.unique(groups):
            members = np.nonzero((groups == g) & np.isfinite(rel))[0]
            if len(members) == 0:
                continue
            f = _kth_smallest(vals[members], w)
            if g >= 0:                                   # a medium: one transfer at a time
                lat = float(np.min(p.latency[d, members]))
                air = float(np.min(tx[d, members]))
                low = float(np.min(ct[members]))
                serial = cs * air + lat + low
                if tx_all is not None and np.isfinite(lead[d]):
                    serial = np.maximum(serial, cs * float(np.min(tx_all[d, members])) + lat + low - lead[d])
                serial[0] = _NEG
                f = np.maximum(f, serial)
            best = f if best is None else _minmax_merge(best, f)
        if best is not None:
            out[d] = best[w]
    return out


def phase_latency(p: Problem) -> float:
    """The phase DP (module docstring) and the least work spread over the devices: a lower
    bound on the latency of every plan over every split choice of ``p``."""
    fam = _Family(p)
    D = p.n_devices
    eye = np.eye(D, dtype=bool)
    H: dict[str, dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    released: dict[tuple[str, int], np.ndarray] = {}
    for v in fam.order:
        H[v] = {}
        for wv in fam.ways[v]:
            ct, kmax = fam.ct[v, wv], fam.kmax[v, wv]
            if not fam.preds[v]:
                ready = fam.arrival[v, wv].copy()
                whole = float(np.min(_phase_offsets(p, ct, kmax, wv, fam.in_bytes[v, wv])[[p.source]]))
            else:
                ready = np.zeros(D)
                whole = 0.0
                for u, n in fam.preds[v]:
                    arrive = np.full(D, np.inf)
                    lo = np.inf
                    for wu, (Hc, Hs, first) in H[u].items():
                        nb, most, total = fam.edge_bytes(u, v, n, wu, wv)
                        T = np.where(p.reachable, p.transfer_matrix(nb), np.inf)
                        Tm = np.where(p.reachable, p.transfer_matrix(most), np.inf)
                        # u all on d: v's shards elsewhere also wait for their largest message,
                        # sent no earlier than u's first shard there ends
                        arrive = np.minimum(arrive, np.min(np.maximum(Hc[:, None] + T, first[:, None] + Tm), axis=0))
                        with np.errstate(invalid="ignore"):
                            lead = np.where(np.isfinite(Hc), Hc - first, np.inf)
                        lo = min(lo, float(np.min(Hc + _phase_offsets(p, ct, kmax, wv, nb, total, lead))))
                        off = _phase_offsets(p, ct, kmax, wv, nb)
                        if wu > 1:
                            other = np.min(np.where(eye, np.inf, first[:, None] + T), axis=0)
                            arrive = np.minimum(arrive, np.maximum(np.min(Hs[:, None] + T, axis=0), other))
                            lo = min(lo, float(np.min(Hs + off)))
                    np.maximum(ready, arrive, out=ready)
                    whole = max(whole, lo)
            first = ready + ct
            Hc = np.where(kmax >= wv, ready + wv * ct, np.inf)
            Hs = _spread_makespan(ready, ct, kmax, wv) if wv > 1 else np.full(D, np.inf)
            H[v][wv] = (np.maximum(Hc, whole), np.maximum(Hs, whole), first)
            released[v, wv] = ready
    done = 0.0
    for v in fam.ids:
        if fam.succs[v]:
            continue
        # every shard of an output block sends its result to sink: the least makespan of its
        # shards with each device's delivery added (the w-th smallest), and the last one's
        best = np.inf
        for wv, (Hc, Hs, first) in H[v].items():
            out = fam.delivery[v, wv]
            each = _finish_times(released[v, wv], fam.ct[v, wv], fam.kmax[v, wv], wv) + out[:, None]
            last = min(float(np.min(Hc + out)), float(np.min(Hs + out)))
            best = min(best, max(last, float(_kth_smallest(each, wv)[wv])))
        done = max(done, best)
    return float(max(done, _work(fam) / D))


def _work(fam: _Family) -> float:
    """The least total compute time over every choice: per block, ``w`` shards each on its
    fastest device, least over the ways."""
    return float(sum(min(w * float(np.min(fam.ct[b, w])) for w in fam.ways[b]) for b in fam.ids))


def phase_period(p: Problem) -> float:
    """The busiest block (its ``w`` shards at best spread: the ``w``-th smallest of ``k
    t_e``) and the least work spread over the devices: a lower bound on every plan's period
    over every split choice."""
    fam = _Family(p)
    busiest = 0.0
    for b in fam.ids:
        busiest = max(busiest, min(float(_kth_smallest(_finish_times(np.zeros(p.n_devices), fam.ct[b, w],
                                                                     fam.kmax[b, w], w), w)[w])
                                   for w in fam.ways[b]))
    return float(max(busiest, _work(fam) / p.n_devices))


def phase_energy(p: Problem) -> float:
    """Every block's least compute energy over its ways (``w`` shards, each on the device
    where it costs the least active energy): a lower bound on every plan's energy over
    every split choice."""
    fam = _Family(p)
    total = 0.0
    for b in fam.ids:
        total += min(w * float(np.min(np.where(np.isfinite(fam.ct[b, w]), p.power_active * fam.ct[b, w], np.inf)))
                     for w in fam.ways[b])
    return float(total)


PHASE_BOUNDS = {"latency": phase_latency, "throughput": phase_period, "energy": phase_energy}

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
- **latency with one medium, phases and air** (`air_phase_latency`, on chains of blocks
  whose devices all share one medium): states ``(w, e, j, x)`` (the last shard on e, which
  holds j, and x shards on a fixed device X, the source or the sink); along a sequence of
  states the sum of the phases and the air across the cut around X both bound the latency,
  and the air through an edge is sent before its consumer's last shard starts; the least
  over sequences of their maximum, on Pareto labels.
- **period**: the busiest block (its ``w`` shards spread at best over the devices) and the
  least total work spread over the devices.
- **energy**: every block's least compute energy over its ways (``w`` shards of the least
  energy each; radio and idle energy only add).

Each holds for every choice; `placement.bounds` takes the largest of them and the
relaxation's. Not used with scenarios (a skipped block does not run, the DP assumes every
block does)."""

from __future__ import annotations

import numpy as np

from .problem import Problem, _topological_order
from .split import pair_bytes, shard_id

_NEG = -np.inf


class _Family:
    """The file's blocks with, per block and way, one shard's quantities read from the
    expansion that gives the block that way: compute time where the shard fits alone
    (``ct``, (D,)), how many such shards a device holds at once (``kmax``: their weights
    plus the largest working memory, section 3), the input from ``source`` (``arrival``)
    and the output to ``sink`` (``delivery``) of one shard, and their bytes (``in_bytes``,
    ``out_bytes``); ``order``, the file's blocks in topological order."""

    def __init__(self, p: Problem):
        from .bounds import memory_view

        src = p._split_source
        self._pair_cache: dict[tuple, np.ndarray] = {}
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
        index = {b: i for i, b in enumerate(self.ids)}
        preds = [[(index[u], 0) for u, _ in self.preds[b]] for b in self.ids]
        succs = [[(index[v], 0) for v in self.succs[b]] for b in self.ids]
        self.order = [self.ids[i] for i in _topological_order(len(self.ids), preds, succs)]

    def mode(self, b: str) -> tuple[str | None, float]:
        sp = self.spec[b].get("split")
        return (sp["mode"], float(sp["halo_bytes"])) if sp else (None, 0.0)

    def edge_bytes(self, u: str, v: str, n: float, wu: int, wv: int) -> tuple[float, float, float]:
        """For an edge of ``n`` bytes, ``u`` split ``wu`` ways and ``v`` ``wv`` ways: the least
        bytes one shard of ``u`` sends one shard of ``v``; the least over v's shards of the
        most one shard of ``u`` sends it; the least over v's shards of all it receives."""
        m = self._pairs(u, v, n, wu, wv)
        return float(m.min()), float(m.max(axis=0).min()), float(m.sum(axis=0).min())

    def largest_message(self, u: str, v: str, n: float, wu: int, wv: int) -> float:
        """The least over ``u``'s shards of the largest message one of them sends a shard of
        ``v``: every shard of ``u`` sends some shard of ``v`` at least this many bytes."""
        return float(self._pairs(u, v, n, wu, wv).max(axis=1).min())

    def _pairs(self, u: str, v: str, n: float, wu: int, wv: int) -> np.ndarray:
        """(wu, wv): the bytes shard ``ku`` of ``u`` sends shard ``kv`` of ``v`` (section 6),
        built once per edge and pair of ways (`edge_bytes` and `largest_message` both read it)."""
        key = (u, v, n, wu, wv)
        m = self._pair_cache.get(key)
        if m is None:
            mu, _ = self.mode(u)
            mv, hv = self.mode(v)
            m = np.array([[pair_bytes(n, wu, wv, mv, hv, ku, kv, mu) for kv in range(wv)] for ku in range(wu)])
            self._pair_cache[key] = m
        return m


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
    M = np.maximum(a[:, None], b[None, :])
    idx = np.add.outer(np.arange(w + 1), np.arange(w + 1))
    out = np.full(2 * w + 1, np.inf)
    np.minimum.at(out, idx.ravel(), M.ravel())
    return out[:w + 1]


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


def _gather(release: np.ndarray, ct: np.ndarray, kmax: np.ndarray, w: int, T: np.ndarray) -> np.ndarray:
    """(D,): when the data of all ``w`` shards of a block (release ``release_e``, ``ct_e``
    each, at most ``kmax_e`` on e) can be on device e, each shard sending a message of
    transfer time at least ``T[d, e]`` (0 on e itself): least over how many, c, run on e of
    the larger of their makespan there and the (w - c)-th smallest finish time elsewhere
    plus the quickest transfer into e (F2; the last of the shards elsewhere ends no earlier
    than that and then sends)."""
    D = len(release)
    fin = _finish_times(release, ct, kmax, w)                 # (D, w)
    into = np.min(np.where(np.eye(D, dtype=bool), np.inf, T), axis=0)
    out = np.full(D, np.inf)
    devs = np.arange(D)
    for e in range(D):
        on = np.concatenate(([_NEG], fin[e]))                  # c shards on e: (w + 1,)
        off = _kth_smallest(fin[devs != e], w)                  # the k-th smallest elsewhere
        with np.errstate(invalid="ignore"):
            sent = np.where(np.arange(w + 1) == 0, _NEG, off + into[e])
        out[e] = float(np.min(np.maximum(on, sent[::-1])))
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
                whole = float(_phase_offsets(p, ct, kmax, wv, fam.in_bytes[v, wv])[p.source])
            else:
                ready = np.zeros(D)
                whole = 0.0
                conc = np.zeros(D)       # a floor on H_c alone (all of v's shards on d)
                for u, n in fam.preds[v]:
                    arrive = np.full(D, np.inf)
                    arrive_c = np.full(D, np.inf)
                    lo = np.inf
                    for wu, (Hc, Hs, first) in H[u].items():
                        nb, most, total = fam.edge_bytes(u, v, n, wu, wv)
                        T = np.where(p.reachable, p.transfer_matrix(nb), np.inf)
                        Tm = np.where(p.reachable, p.transfer_matrix(most), np.inf)
                        # every shard of u, wherever it is, sends one to each of v's (F1)
                        g = _gather(released[u, wu], fam.ct[u, wu], fam.kmax[u, wu], wu, T)
                        # u all on d: v's shards elsewhere also wait for their largest message,
                        # sent no earlier than u's first shard there ends
                        a_conc = np.maximum(np.min(np.maximum(Hc[:, None] + T, first[:, None] + Tm), axis=0), g)
                        arrive = np.minimum(arrive, a_conc)
                        arrive_c = np.minimum(arrive_c, a_conc + wv * ct)
                        with np.errstate(invalid="ignore"):
                            lead = np.where(np.isfinite(Hc), Hc - first, np.inf)
                        lo = min(lo, float(np.min(Hc + _phase_offsets(p, ct, kmax, wv, nb, total, lead))))
                        if wu > 1:
                            other = np.min(np.where(eye, np.inf, first[:, None] + T), axis=0)
                            a_spread = np.maximum(np.maximum(np.min(Hs[:, None] + T, axis=0), other), g)
                            arrive = np.minimum(arrive, a_spread)
                            # u spread: a shard of u off d sends its largest message to a
                            # shard of v, which is on d when all of v is (docs/bounds.md)
                            Tl = np.where(p.reachable, p.transfer_matrix(fam.largest_message(u, v, n, wu, wv)), np.inf)
                            late = np.min(np.where(eye, np.inf, first[:, None] + Tl), axis=0) + ct
                            arrive_c = np.minimum(arrive_c, np.maximum(a_spread + wv * ct, late))
                            lo = min(lo, float(np.min(Hs + _phase_offsets(p, ct, kmax, wv, nb))))
                    np.maximum(ready, arrive, out=ready)
                    np.maximum(conc, arrive_c, out=conc)
                    whole = max(whole, lo)
            first = ready + ct
            Hc = np.where(kmax >= wv, ready + wv * ct, np.inf)
            if fam.preds[v]:
                Hc = np.maximum(Hc, conc)
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
    return float(max(done, _work(fam) / D, air_phase_latency(p, fam)))


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


# ------------------------------------------------------ the air of one medium, on chains
#: label transitions (labels times states) that `_air_phase_cut` may spend: a
#: deterministic budget, about a second; past it the cut gives 0 (no bound, still valid)
AIR_WORK = 3e6
#: labels (time, air) kept per state of `air_phase_latency`: the air is grouped into this
#: many bands of the largest air any label could reach; within a band the least time and the
#: least air stand for the band (smaller in both: still a bound)
AIR_BANDS = 256


def _one_medium(p: Problem) -> bool:
    """True when every pair of distinct devices is on one shared medium (SPEC 5a): then
    every transfer between two devices occupies it."""
    if len(p.media) != 1 or p.n_devices < 2:
        return False
    off = ~np.eye(p.n_devices, dtype=bool)
    return bool(np.all(p.medium_of[off] == 0))


def _is_chain(fam: _Family) -> bool:
    """The topological order is a path of edges: each block but the first reads the block
    before it (so two chains side by side are not one). Other edges (skips: MobileViT's
    shortcut into its fusion block, a residual across blocks) may exist; the air DP ignores
    them, which leaves its bound valid: it drops transfers and dependencies, never adds."""
    order = fam.order
    return (bool(order) and not fam.preds[order[0]]
            and all(any(x == u for x, _ in fam.preds[v]) for u, v in zip(order, order[1:])))


def _cut_bytes(fam: _Family, u: str | None, v: str, n: float, wu: int, wv: int, k: int, m: int) -> float:
    """The least bytes that cross between one device X and the others on the edge ``u ->
    v`` of ``n`` bytes when X holds ``k`` of u's ``wu`` shards and ``m`` of v's ``wv``
    (``u`` None: the input from ``source``, X the source, ``n`` one shard's input). Between
    two spatially split blocks, the rows X computes of u and the rows it needs of v differ by
    at least ``|m / wv - k / wu|`` of the tensor, and when X holds some of v's bands but not
    all, each row of the halo window around a border between X's bands and the others' is
    needed on both sides of it (``halo_bytes`` in all): the larger of the two crosses.
    Otherwise every shard pair carries the same bytes (section 6), so the pairs across the
    cut carry ``k (wv - m) + (wu - k) m`` times them."""
    if u is None:
        return (wv - m) * n
    mu, _ = fam.mode(u)
    mv_, hv = fam.mode(v)
    if wu > 1 and wv > 1 and mu == "spatial" and mv_ == "spatial":
        border = min(hv, n) if 0 < m < wv else 0.0
        return max(abs(m / wv - k / wu) * n, border)
    each = pair_bytes(n, wu, wv, mv_, hv, 0, 0, mu)
    return (k * (wv - m) + (wu - k) * m) * each


def air_phase_latency(p: Problem, fam: _Family | None = None) -> float:
    """With every device on one medium, on a chain of blocks: the larger over X in
    (``source``, ``sink``) of `_air_phase_cut` around X. 0 when the chain or the medium
    condition does not hold."""
    if not _one_medium(p):
        return 0.0
    fam = fam or _Family(p)
    if not _is_chain(fam):
        return 0.0
    return max(_air_phase_cut(p, fam, x) for x in sorted({p.source, p.sink}))


def _device_classes(p: Problem, fam: _Family, fixed: set[int]) -> np.ndarray:
    """(D,): each device's representative, the least index of its class of interchangeable
    devices: swapping two of them (their rows and columns of bandwidth, latency, reachability
    and media) changes no matrix of ``p`` and no per-device quantity of ``fam``, and neither is
    in ``fixed`` (the cut's device, source and sink). Every quantity of `_air_phase_cut` is
    then the same after the swap, so its labels on one of them are those on the other."""
    D = p.n_devices
    per_device = np.stack([a for table in (fam.ct, fam.kmax, fam.arrival, fam.delivery)
                           for a in table.values()], axis=1) if fam.ct else np.zeros((D, 0))
    mats = [p.bandwidth, p.latency, p.reachable, p.medium_of]
    rep = np.arange(D)
    for e in range(D):
        if e in fixed or rep[e] != e:
            continue
        for f in range(e + 1, D):
            if f in fixed or rep[f] != f or not np.array_equal(per_device[e], per_device[f]):
                continue
            perm = np.arange(D)
            perm[e], perm[f] = f, e
            if all(np.array_equal(m, m[np.ix_(perm, perm)]) for m in mats):
                rep[f] = e
    return rep


def _air_phase_cut(p: Problem, fam: _Family, X: int) -> float:
    """A lower bound on the latency that sees both the phases and the air around device X
    (docs/bounds.md, "Phases and air"). A state of block v is ``(w, e, j, x)``: v split ``w``
    ways, its last shard to end on device e, which holds j of them, and x of them on X.
    Over a path of states, ``P``, the sum of the phases (each block's end after its
    predecessor's last shard, from the two states alone), and ``A``, the air of the
    transfers across the cut around X (`_cut_bytes` at X's best bandwidth; every transfer
    between two devices is on the medium, one at a time), both bound the latency. The least
    over paths of ``max(P, A)``, on Pareto labels (`AIR_BANDS`). Labels are computed on one
    device of each class of interchangeable ones (`_device_classes`) and copied to the others."""
    D = p.n_devices
    off = ~np.eye(D, dtype=bool)
    # a transfer with d at one end runs at most at d's best bandwidth
    bw = np.array([float(np.max(p.bandwidth[x][off[x]])) for x in range(D)])
    lat = float(np.min(p.latency[off]))
    src, snk = p.source, p.sink
    devs = np.arange(D)
    rep = _device_classes(p, fam, {X, src, snk})
    members = {e: np.nonzero(rep == e)[0].tolist() for e in np.unique(rep).tolist()}

    def states(v: str):
        out = []
        for w in fam.ways[v]:
            ct, km = fam.ct[v, w], fam.kmax[v, w]
            for e in range(D):
                if not np.isfinite(ct[e]):
                    continue
                for j in range(1, int(min(w, km[e])) + 1):
                    if e == X:
                        out.append((w, e, j, j))
                        continue
                    for x in range(0, int(min(w - j, km[X])) + 1):
                        free = (devs != e) & (devs != X) & (km > 0)
                        if w - j - x == 0 or free.any():
                            out.append((w, e, j, x))
        return out

    def deltas(v: str, w: int, nb: float) -> dict:
        """Per state (e, j, x) of v at ``w``: (D,) the phase after data of ``nb`` bytes per
        shard leaves each device d (its predecessor's last shard there): j shards on e after
        the transfer, x on X after theirs, the rest at best on the other devices, and the
        shards surely off d fed one transfer at a time from d."""
        ct, km = fam.ct[v, w], fam.kmax[v, w]
        T = np.where(p.reachable, p.transfer_matrix(nb), np.inf)
        low = np.array([float(np.min(ct[off[d]])) for d in range(D)])
        out = {}
        rests = {}
        for (w_, e, j, x) in states_of[v]:
            if w_ != w or rep[e] != e:
                continue
            own = T[:, e] + j * ct[e]
            xterm = T[:, X] + x * ct[X] if (e != X and x > 0) else np.full(D, _NEG)
            c = w - j - (x if e != X else 0)
            if c > 0:
                if e not in rests:             # (D, w + 1): the c-th smallest, per d
                    mask = (devs != e) & (devs != X) if e != X else (devs != e)
                    k = np.arange(1, w + 1)
                    vals = T[:, mask][:, :, None] + k[None, None, :] * ct[mask][None, :, None]
                    vals = np.where(k[None, None, :] <= km[mask][None, :, None], vals, np.inf)
                    srt = np.sort(vals.reshape(D, -1), axis=1)
                    pad = np.full((D, w + 1), np.inf)
                    n = min(w, srt.shape[1])
                    pad[:, 1:n + 1] = srt[:, :n]
                    rests[e] = pad
                rest = rests[e][:, c]
            else:
                rest = np.full(D, _NEG)
            sent = np.where(devs == e, w - j, j + (x if e != X else 0) * (devs != X))
            serial = np.where(sent > 0, sent * nb / bw + lat + low, _NEG)
            out[e, j, x] = np.maximum(np.maximum(own, rest), np.maximum(xterm, serial))
        return out

    def cut_air(u, v, n, wu, xu, w, x) -> float:
        if u is None:                     # the input: from source, X's cut when X is source
            return ((w - x) if X == src else x) * n / bw[X]
        return _cut_bytes(fam, u, v, n, wu, w, xu, x) / bw[X]

    states_of = {v: states(v) for v in fam.order}
    n_rep = {v: sum(1 for st in states_of[v] if rep[st[1]] == st[1]) for v in fam.order}
    first = fam.order[0]
    scale = max(1e-12, _air_scale(fam, p))
    band = scale / AIR_BANDS
    # labels of the states after projection to (w, e, x): flat arrays with their owner
    by_w = {}
    for w in fam.ways[first]:
        nb = fam.in_bytes[first, w]
        by_w[w] = deltas(first, w, nb)
    merged: dict[tuple[int, int, int], tuple[list, list]] = {}
    for (w, e, j, x) in states_of[first]:
        if rep[e] != e:
            continue
        P = float(by_w[w][e, j, x][src])
        if not np.isfinite(P):
            continue
        A = cut_air(None, first, fam.in_bytes[first, w], 1, 0, w, x)
        if A > 0:
            P = max(P, A + lat + float(np.min(fam.ct[first, w])))
        merged.setdefault((w, e, x), ([], []))
        merged[w, e, x][0].append(P)
        merged[w, e, x][1].append(A)

    def flatten(merged):
        P_all, A_all, ow, od, ox = [], [], [], [], []
        for (w, e, x), (Ps, As) in merged.items():
            P, A = _pareto(np.asarray(Ps, dtype=float).ravel(), np.asarray(As, dtype=float).ravel(), band)
            for m in members[e]:                 # e's interchangeable devices: the same labels
                P_all.append(P)
                A_all.append(A)
                ow.append(np.full(len(P), w))
                od.append(np.full(len(P), m))
                ox.append(np.full(len(P), x))
        if not P_all:
            return None
        return tuple(np.concatenate(a) for a in (P_all, A_all, ow, od, ox))

    flat = flatten(merged)
    prev = first
    work = 0.0
    for v in fam.order[1:]:
        if flat is None:
            return 0.0
        u, n = next((x, n) for x, n in fam.preds[v] if x == prev)   # the path's edge; skips ignored
        P_u, A_u, w_u, d_u, x_u = flat
        work += len(P_u) * n_rep[v]
        if work > AIR_WORK:
            return 0.0
        low_ct = {w: float(np.min(fam.ct[v, w])) for w in fam.ways[v]}
        ways_u = sorted(set(w_u.tolist()))
        merged = {}
        for w in fam.ways[v]:
            by_bytes: dict[float, dict] = {}        # predecessors' ways that send the same bytes
            tabs = {}
            for wu in ways_u:
                nb = fam.edge_bytes(u, v, n, wu, w)[0]
                if nb not in by_bytes:
                    by_bytes[nb] = deltas(v, w, nb)
                tabs[wu] = by_bytes[nb]
            xs = sorted({x for (w_, e, j, x) in states_of[v] if w_ == w})
            air = {(wu, x): np.array([cut_air(u, v, n, wu, xu, w, x) for xu in range(wu + 1)])
                   for wu in ways_u for x in xs}
            for (w_, e, j, x) in states_of[v]:
                if w_ != w or rep[e] != e:
                    continue
                dP = np.empty(len(P_u))
                dA = np.empty(len(P_u))
                for wu in ways_u:
                    sel = w_u == wu
                    dP[sel] = tabs[wu][e, j, x][d_u[sel]]
                    dA[sel] = air[wu, x][x_u[sel]]
                ok = np.isfinite(dP)
                if not ok.any():
                    continue
                # the air so far is sent before v's last shard starts: a transfer of this
                # edge arrives before its shard's compute, the earlier ones before theirs
                A_new = A_u[ok] + dA[ok]
                P_new = np.maximum(P_u[ok] + dP[ok], A_new + np.where(dA[ok] > 0, lat + low_ct[w], 0.0))
                merged.setdefault((w, e, x), ([], []))
                merged[w, e, x][0].append(P_new)
                merged[w, e, x][1].append(A_new)
        merged = {k: (np.concatenate(a), np.concatenate(b)) for k, (a, b) in merged.items()}
        flat = flatten(merged)
        prev = v
    if flat is None:
        return 0.0
    P_u, A_u, w_u, d_u, x_u = flat
    best = np.inf
    for i in range(len(P_u)):
        w, e, x = int(w_u[i]), int(d_u[i]), int(x_u[i])
        # every shard off sink sends its result there: x of them on X's cut
        off_x = (w - x) if X == snk else x
        ends = P_u[i] + float(fam.delivery[prev, w][e])
        airs = A_u[i] + off_x * fam.out_bytes[prev, w] / bw[X]
        best = min(best, max(ends, airs))
    return float(best) if np.isfinite(best) else 0.0


def _air_scale(fam: _Family, p: Problem) -> float:
    """A time scale for `AIR_BANDS`: every block whole on its fastest device, plus every
    edge and the input sent once at the slowest reachable bandwidth."""
    D = p.n_devices
    off = ~np.eye(D, dtype=bool)
    bw = p.bandwidth[off]
    slow = float(np.min(bw[bw > 0])) if (bw > 0).any() else 1.0
    total = sum(float(np.min(fam.ct[b, min(fam.ways[b])])) for b in fam.ids)
    total += sum(n for b in fam.ids for _, n in fam.preds[b]) / slow
    total += sum(fam.in_bytes[b, min(fam.ways[b])] for b in fam.ids if not fam.preds[b]) / slow
    return total


def _pareto(P: np.ndarray, A: np.ndarray, band: float) -> tuple[np.ndarray, np.ndarray]:
    """The labels not dominated (less time and less air), after merging each air band to
    (least time, least air) of its labels."""
    key = np.floor(A / band)
    order = np.lexsort((P, key))
    P, A, key = P[order], A[order], key[order]
    first = np.ones(len(P), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.nonzero(first)[0]
    Pb = np.minimum.reduceat(P, starts)
    Ab = np.minimum.reduceat(A, starts)
    run = np.minimum.accumulate(Pb)
    keep = np.ones(len(Pb), dtype=bool)
    keep[1:] = Pb[1:] < run[:-1]
    return Pb[keep], Ab[keep]

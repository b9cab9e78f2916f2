"""Valid lower bounds for every objective, cheap ones that see memory, and stronger ones.

Every function here returns a number that no plan the evaluator accepts can beat: it
relaxes the problem (contention, integrality, or both) and never adds a restriction that a
feasible plan could break. Every plan reports ``bound = max(method's proven bound,
lower_bound(problem))``. The proofs are in ``docs/bounds.md``; in short:

- **Memory view** (`_MemoryView`). A block only runs where it fits alone (``params +
  activation <= memory``, with the evaluator's 1e-9 tolerance); a device holding any block
  has room for at most ``memory - alpha_d`` bytes of weights (``alpha_d``: the least working
  memory of a block that fits there), and at most ``memory - act_b`` when it holds block b;
  blocks that one device holds fit there together. `_Prices` charges Lagrangian prices on
  these knapsacks (any prices >= 0 give a valid bound; `_ascent` looks for good ones).
- **latency** (`latency_bound`): the largest of the contention-free earliest-finish DP over
  the block graph (memory-feasible pairs only); the least work spread over the devices; the
  **runs DP** along the heaviest input-to-output path: its blocks cut into runs on one device
  each that fit there together, consecutive runs on different devices paying the transfer
  (off-loading that memory forces), with prices for revisited devices and the blocks off the
  path; and a Lagrangian of ``theta * len_P(a) + sum_d lambda_d load_d(a)`` with prices.
- **period** (`period_bound`): the busiest single block (with its input / output
  transmission), every edge's best pair, the load-balancing LP with the weights knapsacks
  (HiGHS, when small) and its Lagrangian with prices, and the runs DP in bottleneck form
  (each run's compute, each crossing edge's transmission).
- **energy** (`energy_bound`): an exact tree DP over a maximum-bytes spanning forest
  (other edges' radio energy dropped), with and without prices, and the runs DP along the
  path with the most bytes (the radio energy of off-loading).
- **shared media** (SPEC 5a; `_forced_air`): the transfers that every feasible plan must
  send on a medium (their ends forced onto two devices of it) load it: the sum of their
  least transmission times bounds the period, and a one-machine bound (least head + that
  sum + least tail, over sets of them) bounds the latency.
- **split choices** (SPEC 6; `split_bound`, `choice_bound`): the least over the expansions
  when there are few, else the relaxation of every choice at once, and the bounds of
  `placement.split_bounds` that keep what splitting costs (the phase DP over each block's
  ways and devices, with one medium the phases and the air together).
- **weighted sums**: the weighted sum of the above; **constraints** are dropped (a
  relaxation). ``lower_bound(p, strength="strong", time_limit=...)``: the same relaxations
  with a larger work budget.

Costs are capped by deterministic work budgets (array entries touched), not clocks: the
same problem gets the same bound on every machine. The per-metric values are cached per
problem (`bound_cache`; they depend on neither the objective nor the constraints, so
problems made by ``with_objective`` / ``with_constraints`` share them).
"""

from __future__ import annotations

import weakref

import numpy as np

from .problem import Problem

#: the evaluator's relative memory tolerance (placement/evaluator.py TOLERANCE), plus float noise
_MEM_SLACK = 1e-9 + 1e-12

#: element operations (numpy array entries touched) that one part of a cheap bound may spend:
#: a deterministic budget (the same bound on every machine), about 0.1 s. Parts that would
#: need more are shortened (ascents) or skipped (run DPs); the strong bound allows more.
CHEAP_WORK = 2e7
#: element operations per second of ``time_limit`` for the strong bound
STRONG_WORK_PER_S = 1e8


# ---------------------------------------------------------------- memory view
class _MemoryView:
    """What memory allows, as relaxations valid for every feasible plan.

    ``fits[b, d]``: b may run on d and fits there alone. Two families of knapsacks hold for
    every feasible assignment (``W_d`` = weights on d): ``W_d <= cap_w[d]`` (``cap_w = memory
    - alpha_d``, ``alpha_d`` the smallest working memory of a block that may run on d: a
    device holding any block holds one working memory) and, per block b on d, ``W_d +
    act_b <= cap[d]`` (the largest working memory is at least b's). ``binds``: whether some
    device could be asked for more than it holds (when not, prices are useless and skipped)."""

    def __init__(self, p: Problem):
        cap = p.memory * (1 + _MEM_SLACK)
        alone = (p.params + p.activation)[:, None] <= cap[None, :]
        fits = p.allowed & alone
        if p.n_blocks and not fits.any(axis=1).all():
            # some block fits nowhere: the problem is infeasible (feasibility.py says so);
            # keep the memory-free bound so that callers still get a finite number
            fits = p.allowed.copy()
            self.infeasible = True
        else:
            self.infeasible = False
        act = np.where(fits, p.activation[:, None], np.inf)
        alpha = act.min(axis=0, initial=np.inf) if p.n_blocks else np.zeros(p.n_devices)
        alpha = np.where(np.isfinite(alpha), alpha, 0.0)
        self.fits = fits
        self.cap = cap
        self.cap_w = np.maximum(cap - alpha, 0.0)
        self.w = p.params
        self.act = p.activation
        self.ct = np.where(fits, p.compute_time, np.inf)
        demand = (fits * self.w[:, None]).sum(axis=0) if p.n_blocks else np.zeros(p.n_devices)
        demand = demand + np.where(fits, p.activation[:, None], 0.0).max(axis=0, initial=0.0)
        self.binds = (not self.infeasible) and bool(np.any(demand > cap))
        self.scale = float(max(cap.max(initial=0.0), 1.0))


class _Prices:
    """Lagrangian prices on the knapsacks of a `_MemoryView`: ``sigma_d >= 0`` on ``W_d <=
    cap_w[d]`` and ``rho_bd >= 0`` on ``W_d + act_b [b on d] <= cap[d]``. For any prices and
    any feasible assignment the priced term ``sum_d mu_d W_d + sum_bd rho_bd act_b [b on d] -
    const`` (``mu_d = sigma_d + sum_b rho_bd``) is <= 0, so adding it to a quantity and
    minimising over all assignments gives a lower bound. The variables are scaled
    (``unit`` seconds or joules per byte) so that a step of 1 is one problem-sized price."""

    def __init__(self, mv: _MemoryView, unit: float):
        self.mv, self.unit = mv, unit
        self.B, self.D = mv.fits.shape
        self.n = self.D + self.B * self.D
        self.mask = mv.fits.astype(float)

    def penalty(self, z: np.ndarray) -> tuple[np.ndarray, float]:
        """(B, D) per-pair price and the constant to subtract."""
        mv, D = self.mv, self.D
        sigma = z[:D] * self.unit
        rho = z[D:].reshape(self.B, D) * self.unit * self.mask
        mu = sigma + rho.sum(axis=0)
        pen = mu[None, :] * mv.w[:, None] + rho * mv.act[:, None]
        const = float(sigma @ mv.cap_w + rho.sum(axis=0) @ mv.cap)
        return pen, const

    def grad(self, a: np.ndarray) -> np.ndarray:
        mv, D = self.mv, self.D
        wts = np.bincount(a, weights=mv.w, minlength=D)
        g_sigma = wts - mv.cap_w
        g_rho = np.broadcast_to(wts - mv.cap, (self.B, D)).copy()
        g_rho[np.arange(self.B), a] += mv.act
        g_rho *= self.mask
        return np.concatenate([g_sigma, g_rho.ravel()]) * self.unit


def memory_view(p: Problem) -> _MemoryView:
    return _cached(p, "memory_view", lambda: _MemoryView(p))


_CACHES: dict[int, dict] = {}


def bound_cache(p: Problem) -> dict:
    """The bound cache of ``p`` and of every problem made from it by ``with_objective`` /
    ``with_constraints``: keyed by its compute-time array, which those share (read-only),
    and dropped when that array is freed. The cached values depend on neither the
    objective nor the constraints."""
    arr = p.compute_time
    per_array = _CACHES.get(id(arr))
    if per_array is None:
        per_array = _CACHES[id(arr)] = {}
        weakref.finalize(arr, _CACHES.pop, id(arr), None)
    # every other input of the bounds too, should a variant ever replace one of them
    key = tuple(id(x) for x in (p.allowed, p.memory, p.params, p.activation, p.latency,
                                p.inv_bandwidth, p.edge_bytes, p.power_active, p.tx_power,
                                p.rx_power, p.in_bytes, p.out_bytes, p.medium_of)) + (p.source, p.sink)
    return per_array.setdefault(key, {})


def _cached(p: Problem, key: str, make):
    cache = bound_cache(p)
    if key not in cache:
        cache[key] = make()
    return cache[key]


# ------------------------------------------------------------- dual ascent
def _project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto {x >= 0, sum x = 1}."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    k = np.arange(1, len(v) + 1)
    cond = u - css / k > 0
    r = k[cond][-1]
    return np.maximum(v - css[r - 1] / r, 0.0)


def _ascent(oracle, z0: np.ndarray, project, max_iter: int) -> float:
    """Maximise a concave dual function by projected subgradient steps (Polyak steps
    towards a target a little above the best value, the target shrinking when progress
    stalls). ``oracle(z) -> (value, subgradient)``; every value is a valid bound, so the
    best one is returned whatever the convergence."""
    z = z0
    best = -np.inf
    delta, stall = 0.25, 0
    for _ in range(max_iter):
        g, s = oracle(z)
        if not np.isfinite(g):
            break
        if best == -np.inf or g > best + 1e-12 * abs(best):
            best, stall = g, 0
        else:
            stall += 1
            if stall >= 3:
                delta, stall = delta / 2, 0
        nrm = float(s @ s)
        if nrm <= 0 or delta < 1e-4:
            break
        target = best + delta * max(abs(best), 1e-300)
        z = project(z + (target - g) / nrm * s)
    return float(best)


# --------------------------------------------------------------------- latency
def _dp_latency(p: Problem, ct: np.ndarray) -> tuple[float, np.ndarray]:
    """Earliest-finish DP: (bound, F) with F[b, d] a lower bound on when b can end on d.
    Each predecessor's data arrives at its earliest (contention-free), and every pair of a
    block's predecessors either shares a device (they run one after the other there) or
    does not (then at most one is on b's device): `_pair_ready`, docs/bounds.md section 1b."""
    B, D = ct.shape
    F = np.full((B, D), np.inf)
    cols = np.arange(D)
    for b in p.topo:
        ready = p.input_arrival(b).copy()
        arr = []
        for u, k in p.preds[b]:
            # earliest the data of edge k can be on each device d, from each device of u
            T = p.transfer_matrix(p.edge_bytes[k])
            A = F[u][:, None] + T
            np.maximum(ready, np.min(A, axis=0), out=ready)
            arr.append((u, T, A))
        if D > 1:
            for i in range(len(arr)):
                for j in range(i + 1, len(arr)):
                    np.maximum(ready, _pair_ready(ct, F, arr[i], arr[j], cols), out=ready)
        F[b] = ready + ct[b]
    done = np.max([np.min(F[b] + p.output_delivery(b)) for b in range(B)])
    return float(done), F


def _pair_ready(ct: np.ndarray, F: np.ndarray, one, two, cols: np.ndarray) -> np.ndarray:
    """(D,): a lower bound on when the data of both predecessors ``one`` and ``two`` (each
    (block, transfer matrix T, arrival matrix A[d', d] = F[u, d'] + T[d', d])) is on each
    device d. On two different devices d1 != d2: max(A1[d1, d], A2[d2, d]), least over the
    pairs (the two smallest of each column suffice). On one device d': they run one after
    the other, so the later ends no earlier than G = max(F1, F2, min(S1, S2) + c1 + c2)
    (S = F - c, the earliest start there), and its data then needs min(T1, T2)[d', d]."""
    (u1, T1, A1), (u2, T2, A2) = one, two
    i1, i2 = np.argmin(A1, axis=0), np.argmin(A2, axis=0)
    m1, m2 = A1[i1, cols], A2[i2, cols]
    s1, s2 = np.partition(A1, 1, axis=0)[1], np.partition(A2, 1, axis=0)[1]
    apart = np.where(i1 != i2, np.maximum(m1, m2),
                     np.minimum(np.maximum(m1, s2), np.maximum(s1, m2)))
    c1, c2 = ct[u1], ct[u2]
    ok = np.isfinite(c1) & np.isfinite(c2)
    with np.errstate(invalid="ignore"):
        first = np.minimum(F[u1] - c1, F[u2] - c2)
        G = np.where(ok, np.maximum(np.maximum(F[u1], F[u2]), first + c1 + c2), np.inf)
    together = np.min(G[:, None] + np.minimum(T1, T2), axis=0)
    return np.minimum(apart, together)


def _heaviest_path(p: Problem, ct: np.ndarray) -> list[int]:
    """An input-to-output path with the largest sum of least compute times (a path whose
    length every plan pays)."""
    w = np.min(ct, axis=1)
    w = np.where(np.isfinite(w), w, 0.0)
    best = np.zeros(p.n_blocks)
    nxt = np.full(p.n_blocks, -1)
    for b in reversed(p.topo):
        tail, arg = 0.0, -1
        for v, _ in p.succs[b]:
            if best[v] > tail or arg < 0:
                tail, arg = best[v], v
        best[b] = w[b] + tail
        nxt[b] = arg
    start = max(p.input_blocks, key=lambda b: best[b])
    path = [start]
    while nxt[path[-1]] >= 0:
        path.append(int(nxt[path[-1]]))
    return path


class _PathLagrangian:
    """``theta * len_P(a) + sum_d lambda_d load_d(a) + priced knapsacks`` minimised over all
    assignments: a chain DP along the path P, a per-block minimum for the other blocks.
    Variables ``z = [theta, lambda (D), prices]``."""

    def __init__(self, p: Problem, mv: _MemoryView, path: list[int], t_scale: float):
        self.p, self.mv, self.path = p, mv, path
        D = p.n_devices
        self.D = D
        on = np.zeros(p.n_blocks, dtype=bool)
        on[path] = True
        self.off = np.nonzero(~on)[0]
        self.prices = _Prices(mv, t_scale / mv.scale)
        self.tr = []                              # transfer matrices along the path
        for x, y in zip(path, path[1:]):
            k = next(k for v, k in p.succs[x] if v == y)
            self.tr.append(np.where(p.reachable, p.transfer_matrix(p.edge_bytes[k]), np.inf))
        self.first = p.input_arrival(path[0])
        self.last = p.output_delivery(path[-1])
        self.n = 1 + D + self.prices.n

    def __call__(self, z: np.ndarray):
        with np.errstate(invalid="ignore"):
            return self._solve(z)

    def _solve(self, z: np.ndarray):
        p, mv, D = self.p, self.mv, self.D
        theta, lam = z[0], z[1:D + 1]
        pen, const = self.prices.penalty(z[D + 1:])
        ct, fits = mv.ct, mv.fits
        cost = np.where(fits, lam[None, :] * ct + pen, np.inf)
        # blocks off the path: cheapest device for the priced load and weights
        a = np.zeros(p.n_blocks, dtype=np.int64)
        val = -const
        if len(self.off):
            c = cost[self.off]
            a[self.off] = np.argmin(c, axis=1)
            val += float(c[np.arange(len(self.off)), a[self.off]].sum())
        # the path: chain DP with theta-weighted times
        path = self.path
        tct = np.where(fits, theta * ct, 0.0)
        G = np.where(np.isfinite(self.first), theta * self.first, np.inf) + cost[path[0]] + tct[path[0]]
        args = []
        for i, tr in enumerate(self.tr):
            M = G[:, None] + np.where(np.isfinite(tr), theta * tr, np.inf)
            arg = np.argmin(M, axis=0)
            args.append(arg)
            b = path[i + 1]
            G = M[arg, np.arange(D)] + cost[b] + tct[b]
        end = G + np.where(np.isfinite(self.last), theta * self.last, np.inf)
        d = int(np.argmin(end))
        val += float(end[d])
        if not np.isfinite(val):
            return -np.inf, np.zeros_like(z)
        a[path[-1]] = d
        for i in range(len(args) - 1, -1, -1):
            d = int(args[i][d])
            a[path[i]] = d
        # subgradient: len_P(a), load_d(a), the knapsacks' excess
        cta = ct[np.arange(p.n_blocks), a]
        length = float(self.first[a[path[0]]] + self.last[a[path[-1]]] + cta[path].sum()
                       + sum(tr[a[x], a[y]] for tr, x, y in zip(self.tr, path, path[1:])))
        load = np.bincount(a, weights=cta, minlength=D)
        grad = np.concatenate([[length], load, self.prices.grad(a)])
        return val, grad


def _project_simplex_then_positive(k: int):
    """Projection onto {z[:k] in the simplex, z[k:] >= 0}."""
    def project(z: np.ndarray) -> np.ndarray:
        out = np.empty_like(z)
        out[:k] = _project_simplex(z[:k])
        out[k:] = np.maximum(z[k:], 0.0)
        return out
    return project


def _freeze_prices(oracle, k: int):
    """The oracle with the price part of the subgradient zeroed (memory cannot bind)."""
    def frozen(z):
        g, s = oracle(z)
        s = s.copy()
        s[k:] = 0.0
        return g, s
    return frozen


def _latency_path_bound(p: Problem, mv: _MemoryView, t_scale: float, work: float) -> float:
    path = _heaviest_path(p, mv.ct)
    D = p.n_devices
    lag = _PathLagrangian(p, mv, path, t_scale)
    z0 = np.zeros(lag.n)
    z0[0] = 1.0
    oracle = lag if mv.binds else _freeze_prices(lag, D + 1)
    per_step = (len(path) * D * D + 8 * p.n_blocks * D) * 4
    max_iter = int(min(60 if work <= CHEAP_WORK else 2000, work // per_step))
    if max_iter < 1:
        return -np.inf
    return _ascent(oracle, z0, _project_simplex_then_positive(D + 1), max_iter)


def _segment_starts(mv: _MemoryView, path: list[int]) -> np.ndarray:
    """(P, D): for each position j of the path and device d, the first position i such that
    path blocks i..j may all run on d and fit there together (weights plus the largest
    working memory); j + 1 when block j itself cannot run on d."""
    P = len(path)
    D = mv.fits.shape[1]
    w = mv.w[path]
    act = mv.act[path]
    pre = np.concatenate([[0.0], np.cumsum(w)])
    # sparse table for range maxima of act
    table = [act]
    while (1 << len(table)) <= P:
        h = 1 << (len(table) - 1)
        prev = table[-1]
        table.append(np.maximum(prev[:-h], prev[h:]))

    def range_max(i: np.ndarray, j: np.ndarray) -> np.ndarray:   # i <= j, arrays
        k = np.floor(np.log2(np.maximum(j - i + 1, 1))).astype(int)
        out = np.empty(i.shape)
        for level in np.unique(k):
            m = k == level
            t = table[level]
            out[m] = np.maximum(t[i[m]], t[j[m] - (1 << level) + 1])
        return out

    # first position from which every block up to j may run on d
    ok = mv.fits[path]                                  # (P, D)
    idx = np.arange(P)[:, None]
    last_bad = np.maximum.accumulate(np.where(~ok, idx, -1), axis=0)
    lo_allowed = last_bad + 1                           # (P, D), j + 1 when j itself is bad
    # binary search the smallest i in [lo_allowed, j] with weights + max act <= cap
    J = np.broadcast_to(idx, (P, D))
    valid = lo_allowed <= J
    # prefix differences carry rounding of the order of the total: forgive it (a larger
    # capacity only relaxes)
    cap = np.broadcast_to(mv.cap[None, :] + 8 * np.finfo(float).eps * pre[-1], (P, D))

    def fits(i):
        ii, jj = np.minimum(i, J), J
        need = pre[jj + 1] - pre[ii] + range_max(ii.ravel(), jj.ravel()).reshape(ii.shape)
        return need <= cap

    # the block alone fits (mv.fits), so i = j always works where valid
    lo = np.where(valid, lo_allowed, J + 1)
    hi = np.where(valid, J, J + 1)
    while True:
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        f = fits(mid)
        hi = np.where(active & f, mid, hi)
        lo = np.where(active & ~f, mid + 1, lo)
    return lo


def _chain_dp(node: np.ndarray, hops: list[np.ndarray], first: np.ndarray, last: np.ndarray,
              starts: np.ndarray, bottleneck: bool) -> tuple[float, np.ndarray] | None:
    """The path's least cost with no memory limit on runs (one device per block, hops free on
    the same device) and its assignment, when that assignment's runs all fit (then the run
    DP has the same optimum); else None."""
    if bottleneck:     # a run's compute adds up on its device: no state-free shortcut
        return None
    P, D = node.shape
    G = first + node[0]
    args = []
    for i, hop in enumerate(hops):
        M = G[:, None] + hop
        arg = np.argmin(M, axis=0)
        args.append(arg)
        G = M[arg, np.arange(D)] + node[i + 1]
    end = G + last
    d = int(np.argmin(end))
    value = float(end[d])
    if not np.isfinite(value):
        return None
    a = [d]
    for arg in reversed(args):
        d = int(arg[d])
        a.append(d)
    a.reverse()
    # the runs of this assignment
    i = 0
    for j in range(1, P + 1):
        if j == P or a[j] != a[i]:
            if starts[j - 1, a[i]] > i:
                return None
            i = j
    return value, np.array(a, dtype=np.int64)


def _runs_cost(starts: np.ndarray) -> float:
    """Array entries a run DP over ``starts`` touches (its work-budget cost)."""
    P, D = starts.shape
    return float(np.sum(np.arange(P) - np.minimum(starts.min(axis=1), np.arange(P)) + 1)) * D * 6 + 4 * P * D * D


def _runs_cost_bound(mv: _MemoryView, path: list[int]) -> float:
    """An upper bound on `_runs_cost` of the path's `_segment_starts`, without computing them:
    the widest window any device can have is at most the one of the largest memory counting
    weights only (O(P log P))."""
    P, D = len(path), mv.fits.shape[1]
    pre = np.concatenate([[0.0], np.cumsum(mv.w[path])])
    lo = np.searchsorted(pre, pre[1:] - mv.cap.max(), side="left")
    return float(np.sum(np.arange(P) - np.minimum(lo, np.arange(P)) + 1)) * D * 6 + 4 * P * D * D


def _runs_dp(node: np.ndarray, hops: list[np.ndarray], first: np.ndarray, last: np.ndarray,
             starts: np.ndarray) -> tuple[float, np.ndarray | None]:
    """`_segment_dp` (sum form) that also returns the argmin assignment of the path."""
    free = _chain_dp(node, hops, first, last, starts, False)
    if free is not None:
        return free
    P, D = node.shape
    S = np.vstack([np.zeros(D), np.cumsum(np.where(np.isfinite(node), node, 0.0), axis=0)])
    V = np.full((P, D), np.inf)
    G = np.full((P, D), np.inf)
    arg_start = np.zeros((P, D), dtype=np.int64)
    prev_dev = np.zeros((P, D), dtype=np.int64)
    off_diag = ~np.eye(D, dtype=bool)
    cols = np.arange(D)
    for j in range(P):
        if j == 0:
            inn = first.copy()
        else:
            M = np.where(off_diag, G[j - 1][:, None] + hops[j - 1], np.inf)
            prev_dev[j] = np.argmin(M, axis=0)
            inn = M[prev_dev[j], cols]
        V[j] = inn - S[j]
        lo = starts[j]
        lmin = int(lo.min())
        if lmin > j:
            continue
        rows = np.arange(lmin, j + 1)[:, None]
        win = np.where(rows >= lo[None, :], V[lmin:j + 1], np.inf)
        k = np.argmin(win, axis=0)
        arg_start[j] = lmin + k
        G[j] = np.where(lo <= j, win[k, cols] + S[j + 1], np.inf)
    end = G[P - 1] + last
    d = int(np.argmin(end))
    value = float(end[d])
    if not np.isfinite(value):
        return value, None
    a = np.zeros(P, dtype=np.int64)
    j = P - 1
    while j >= 0:
        i = int(arg_start[j, d])
        a[i:j + 1] = d
        if i == 0:
            break
        d = int(prev_dev[i, d])
        j = i - 1
    return value, a


def _priced_runs(p: Problem, mv: _MemoryView, path: list[int], node: np.ndarray,
                 hops: list[np.ndarray], first: np.ndarray, last: np.ndarray, off_cost: np.ndarray,
                 scale: float, work: float) -> float:
    """The runs DP along ``path`` plus every other block at its cheapest device, with the
    memory prices of `_Prices` on every block (so the weights of revisited devices and of the
    blocks off the path count too), maximised over the prices by `_ascent`. ``node`` is
    (B, D) (only the path's rows are read), ``off_cost`` (B, D) for the other blocks. The
    first step (prices 0) is the plain runs DP. -inf when the budget does not allow one DP."""
    if _runs_cost_bound(mv, path) > work:
        return -np.inf
    starts = _segment_starts(mv, path)
    cost = _runs_cost(starts) + 12 * p.n_blocks * p.n_devices
    max_iter = int(min(60 if work <= CHEAP_WORK else 2000, work // cost))
    if max_iter < 1:
        return -np.inf
    prices = _Prices(mv, scale / mv.scale)
    on = np.zeros(p.n_blocks, dtype=bool)
    on[path] = True
    off = np.nonzero(~on)[0]
    fits = mv.fits

    def oracle(z):
        pen, const = prices.penalty(z)
        val, ap = _runs_dp(np.where(fits[path], node[path] + pen[path], np.inf), hops, first, last, starts)
        if ap is None:
            return -np.inf, np.zeros_like(z)
        a = np.zeros(p.n_blocks, dtype=np.int64)
        a[path] = ap
        if len(off):
            c = np.where(fits[off], off_cost[off] + pen[off], np.inf)
            a[off] = np.argmin(c, axis=1)
            val += float(c[np.arange(len(off)), a[off]].sum())
        return val - const, prices.grad(a)

    return _ascent(oracle, np.zeros(prices.n), lambda z: np.maximum(z, 0.0), max_iter)


def _segment_dp(path: list[int], node: np.ndarray, hops: list[np.ndarray], first: np.ndarray,
                last: np.ndarray, starts: np.ndarray, work: float, bottleneck: bool = False) -> float:
    """The least cost of running the path as runs of consecutive blocks, each run on one
    device where it fits (see `_segment_starts`), consecutive runs on different devices:
    ``first[d0] + sum of node costs + hop costs between runs + last[d_end]`` (with
    ``bottleneck``: the largest of ``first``, each run's summed node costs, each hop and
    ``last``). Every feasible plan's runs along the path are such a decomposition, so this
    is a lower bound of the same quantity over the plan. ``node`` is (P, D), ``hops[i]``
    (D, D) for the edge from position i to i + 1 (inf where unreachable). -inf when the
    budget runs out."""
    P, D = node.shape
    free = _chain_dp(node, hops, first, last, starts, bottleneck)
    if free is not None:
        return free[0]
    if _runs_cost(starts) > work:
        return -np.inf
    S = np.vstack([np.zeros(D), np.cumsum(np.where(np.isfinite(node), node, 0.0), axis=0)])
    V = np.full((P, D), np.inf)       # sum: In[i, d] - S[i, d]; bottleneck: In[i, d]
    G = np.full((P, D), np.inf)       # G[j, d]: best cost with a run on d ending at j
    off_diag = ~np.eye(D, dtype=bool)
    for j in range(P):
        if j == 0:
            inn = first.copy()
        else:
            M = G[j - 1][:, None] + hops[j - 1] if not bottleneck else \
                np.maximum(G[j - 1][:, None], hops[j - 1])
            M = np.where(off_diag, M, np.inf)
            inn = M.min(axis=0)
        V[j] = inn if bottleneck else inn - S[j]
        lo = starts[j]
        lmin = int(lo.min())
        if lmin > j:
            continue
        rows = np.arange(lmin, j + 1)[:, None]
        if bottleneck:
            win = np.maximum(V[lmin:j + 1], S[j + 1][None, :] - S[lmin:j + 1])
            G[j] = np.where(rows >= lo[None, :], win, np.inf).min(axis=0)
        else:
            win = V[lmin:j + 1]
            G[j] = np.where(rows >= lo[None, :], win, np.inf).min(axis=0) + S[j + 1]
        G[j] = np.where(lo <= j, G[j], np.inf)
    end = np.maximum(G[P - 1], last) if bottleneck else G[P - 1] + last
    return float(np.min(end))


def _latency_segments(p: Problem, mv: _MemoryView, path: list[int], scale: float, work: float) -> float:
    """The path's length with memory-feasible runs (`_segment_dp`), with memory prices
    (`_priced_runs`; the blocks off the path cost only their prices): every plan's latency is
    at least the length of any input-to-output path under its assignment."""
    hops = []
    for x, y in zip(path, path[1:]):
        k = next(k for v, k in p.succs[x] if v == y)
        hops.append(np.where(p.reachable, p.transfer_matrix(p.edge_bytes[k]), np.inf))
    return _priced_runs(p, mv, path, mv.ct, hops, p.input_arrival(path[0]), p.output_delivery(path[-1]),
                        np.zeros_like(mv.ct), scale, work)


def latency_bound(p: Problem) -> float:
    """A lower bound on every feasible plan's latency, in seconds (see the module docstring);
    with split choices, over every choice (`split_bound`)."""
    if has_split_choice(p):
        return max(split_bound(p, latency_bound), choice_bound(p, "latency"))
    return _cached(p, "latency", lambda: _latency_bound(p, CHEAP_WORK))


def _latency_bound(p: Problem, work: float) -> float:
    if p.scenarios:
        return scenario_bound(p, _latency_bound, "latency", work)
    mv = memory_view(p)
    ct = mv.ct
    B, D = ct.shape
    if B == 0:
        return 0.0
    done, F = _dp_latency(p, ct)
    spread = float(np.sum(np.min(ct, axis=1)) / D)
    best = max(done, spread)
    if p.media:                           # shared media (SPEC 5a): the air's forced transfers
        best = max(best, _media_latency_bound(p, mv, F))
    if not np.isfinite(best) or best <= 0:
        return float(best)
    lag = _latency_path_bound(p, mv, best, work)
    seg = -np.inf
    if mv.binds:
        path = _heaviest_path(p, ct)
        seg = _latency_segments(p, mv, path, best, work)
    return float(max(best, lag, seg))


# ---------------------------------------------------------------------- period
def _load_lp(ct: np.ndarray, mv: _MemoryView | None) -> float | None:
    """min T such that the blocks, split fractionally over devices, keep every device's load
    at most T (and, with ``mv``, every device's weights at most its capacity): the LP
    relaxation of the period without links. None when HiGHS does not solve it."""
    from scipy.sparse import coo_matrix, hstack

    B, D = ct.shape
    rows, cols = np.nonzero(np.isfinite(ct))
    n = len(rows)
    scale = float(np.max(np.min(ct, axis=1)))
    scale = scale if scale > 0 else 1.0
    # variables: x (n), T; min T; sum_b ct_bd x_bd - T <= 0
    c = np.zeros(n + 1)
    c[-1] = 1.0
    load = hstack([coo_matrix((ct[rows, cols] / scale, (cols, np.arange(n))), shape=(D, n)),
                   coo_matrix(-np.ones((D, 1)))])
    v = _assignment_lp(B, D, rows, cols, c, load, np.zeros(D), mv)
    return None if v is None else v * scale


def _assignment_lp(B: int, D: int, rows: np.ndarray, cols: np.ndarray, c: np.ndarray, a_ub, b_ub,
                   mv: _MemoryView | None) -> float | None:
    """min c.(x, extra) over fractional assignments ``x`` of the (block, device) pairs
    ``(rows, cols)`` (sum_d x_bd = 1, x >= 0), the rows ``a_ub . (x, extra) <= b_ub`` and, with
    ``mv``, every device's weights within ``mv.cap_w`` (`_MemoryView`'s first knapsack); the
    columns past ``x`` are the caller's extra variables. The optimum less a margin for HiGHS's
    tolerances; None when HiGHS does not solve it."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, hstack, vstack

    n = len(rows)
    extra = len(c) - n
    a_eq = hstack([coo_matrix((np.ones(n), (rows, np.arange(n))), shape=(B, n)),
                   coo_matrix((B, extra))]).tocsr()
    blocks_ub, rhs = [], []
    if a_ub is not None:
        blocks_ub.append(a_ub)
        rhs.append(b_ub)
    if mv is not None:
        blocks_ub.append(hstack([coo_matrix((mv.w[rows] / mv.scale, (cols, np.arange(n))), shape=(D, n)),
                                 coo_matrix((D, extra))]))
        rhs.append(mv.cap_w / mv.scale)
    a = vstack(blocks_ub).tocsr() if blocks_ub else None
    res = linprog(c, A_ub=a, b_ub=np.concatenate(rhs) if rhs else None, A_eq=a_eq, b_eq=np.ones(B),
                  bounds=(0, None), method="highs")
    if res.status != 0:
        return None
    return float(res.fun) * (1 - 1e-7)


def _energy_lp(e: np.ndarray, mv: _MemoryView) -> float | None:
    """The least node energy (compute, and the radio of inputs and outputs, `_node_energy`)
    over fractional assignments whose weights fit every device (docs/bounds.md, energy): memory
    forcing blocks onto hungrier devices raises it. None when HiGHS does not solve it."""
    B, D = e.shape
    rows, cols = np.nonzero(np.isfinite(e))
    scale = float(np.max(np.min(e, axis=1)))
    scale = scale if scale > 0 else 1.0
    v = _assignment_lp(B, D, rows, cols, e[rows, cols] / scale, None, None, mv)
    return None if v is None else v * scale


class _LoadLagrangian:
    """``sum_d lambda_d load_d(a) + priced knapsacks`` minimised over all assignments
    (separable per block). ``z = [lambda (D), prices]``."""

    def __init__(self, mv: _MemoryView, t_scale: float):
        self.mv = mv
        self.prices = _Prices(mv, t_scale / mv.scale)
        self.rows = np.arange(mv.ct.shape[0])
        self.n = mv.ct.shape[1] + self.prices.n

    def __call__(self, z: np.ndarray):
        mv = self.mv
        D = mv.ct.shape[1]
        pen, const = self.prices.penalty(z[D:])
        with np.errstate(invalid="ignore"):
            c = np.where(mv.fits, z[:D][None, :] * mv.ct + pen, np.inf)
        a = np.argmin(c, axis=1)
        val = float(c[self.rows, a].sum() - const)
        cta = mv.ct[self.rows, a]
        load = np.bincount(a, weights=cta, minlength=D)
        return val, np.concatenate([load, self.prices.grad(a)])


def _load_bound(mv: _MemoryView, t_scale: float, work: float) -> float:
    """The load-balancing relaxation with memory: exact LP when small, else the Lagrangian."""
    ct = mv.ct
    B, D = ct.shape
    lp = -np.inf
    if B * D <= 20_000:
        # the exact LP with the weights-only knapsacks (the per-block working-memory ones
        # are left to the Lagrangian below, which the LP's value also bounds from below)
        lp = _load_lp(ct, mv if mv.binds else None)
        lp = -np.inf if lp is None else lp
        if not mv.binds:
            return lp
    lag = _LoadLagrangian(mv, t_scale)
    z0 = np.zeros(lag.n)
    z0[:D] = 1.0 / D
    oracle = lag if mv.binds else _freeze_prices(lag, D)
    max_iter = int(min(80 if work <= CHEAP_WORK else 3000, work // (25 * B * D)))
    return max(lp, _ascent(oracle, z0, _project_simplex_then_positive(D), max(max_iter, 1)))


def _edge_period_bound(p: Problem, ct: np.ndarray) -> float:
    """max over edges u -> v of min over (du, dv) of the busiest of: device du (ct_u, plus
    ct_v when dv == du), device dv, and the link du -> dv."""
    D = p.n_devices
    if p.n_edges == 0 or D == 0:
        return 0.0
    best = 0.0
    diag = np.eye(D, dtype=bool)
    for k in range(p.n_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        tx = p.transmission_matrix(p.edge_bytes[k])
        m = np.maximum(np.maximum(ct[u][:, None], ct[v][None, :]), tx)
        m = np.where(p.reachable, m, np.inf)
        m[diag] = ct[u] + ct[v]
        best = max(best, float(m.min()))
    return best


def period_bound(p: Problem) -> float:
    """A lower bound on every feasible plan's period, in seconds (see the module docstring);
    with split choices, over every choice (`split_bound`)."""
    if has_split_choice(p):
        return max(split_bound(p, period_bound), choice_bound(p, "throughput"))
    return _cached(p, "period", lambda: _period_bound(p, CHEAP_WORK))


def _period_bound(p: Problem, work: float) -> float:
    if p.scenarios:
        return scenario_bound(p, _period_bound, "throughput", work)
    mv = memory_view(p)
    ct = mv.ct
    if ct.size == 0:
        return 0.0
    # each block alone: its compute, and the transmission of its input / output on the link
    own = ct.copy()
    for b in p.input_blocks:
        t = p.transmission_matrix(p.in_bytes[b])[p.source]
        own[b] = np.maximum(own[b], np.where(p.reachable[p.source], t, np.inf))
    for b in p.output_blocks:
        t = p.transmission_matrix(p.out_bytes[b])[:, p.sink]
        own[b] = np.maximum(own[b], np.where(p.reachable[:, p.sink], t, np.inf))
    per_block = float(np.max(np.min(own, axis=1)))
    spread = float(np.sum(np.min(ct, axis=1)) / ct.shape[1])
    best = max(per_block, _edge_period_bound(p, ct), spread)
    if p.media:                           # shared media (SPEC 5a): each medium is a resource
        best = max(best, max((float(x.sum()) for _, x, _, _ in _forced_air(p, mv)), default=0.0))
    if not np.isfinite(best) or best <= 0:
        return float(best)
    return float(max(best, _load_bound(mv, best, work), _period_segments(p, mv, work)))


def _period_segments(p: Problem, mv: _MemoryView, work: float) -> float:
    """The bottleneck of the heaviest path in memory-feasible runs (`_segment_dp`): every
    plan's period is at least each device's compute on any run of the path it holds, and
    each link's transmission of any path edge that crosses it (and of the input / output)."""
    if not mv.binds:
        return -np.inf
    path = _heaviest_path(p, mv.ct)
    hops = []
    for x, y in zip(path, path[1:]):
        k = next(k for v, k in p.succs[x] if v == y)
        hops.append(np.where(p.reachable, p.transmission_matrix(p.edge_bytes[k]), np.inf))
    src, snk = p.source, p.sink
    first = np.where(p.reachable[src], p.transmission_matrix(p.in_bytes[path[0]])[src], np.inf)
    last = np.where(p.reachable[:, snk], p.transmission_matrix(p.out_bytes[path[-1]])[:, snk], np.inf)
    if _runs_cost_bound(mv, path) > work:
        return -np.inf
    value = _segment_dp(path, mv.ct[path], hops, first, last, _segment_starts(mv, path), work,
                        bottleneck=True)
    # no decomposition at all means no feasible plan: report nothing rather than infinity
    return value if np.isfinite(value) else -np.inf


# ---------------------------------------------------------------------- energy
def _spanning_forest(p: Problem) -> list[int]:
    """Edge indices of a maximum-bytes spanning forest of the (undirected) block graph."""
    parent = list(range(p.n_blocks))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    keep = []
    for k in np.argsort(-p.edge_bytes, kind="stable").tolist():
        ru, rv = find(int(p.edge_src[k])), find(int(p.edge_dst[k]))
        if ru != rv:
            parent[ru] = rv
            keep.append(k)
    return keep


def _node_energy(p: Problem, ct: np.ndarray) -> np.ndarray:
    """(B, D) compute energy of each block on each device plus, for input and output
    blocks, the radio energy of the input from source / output to sink; inf where not allowed."""
    with np.errstate(invalid="ignore"):
        e = np.where(np.isfinite(ct), p.power_active[None, :] * ct, np.inf)
    src, snk = p.source, p.sink
    for b in p.input_blocks:
        t = (p.tx_power[src] + p.rx_power) * p.transmission_matrix(p.in_bytes[b])[src]
        e[b] += np.where(p.reachable[src], t, np.inf)
    for b in p.output_blocks:
        t = (p.tx_power + p.rx_power[snk]) * p.transmission_matrix(p.out_bytes[b])[:, snk]
        e[b] += np.where(p.reachable[:, snk], t, np.inf)
    return e


class _TreeEnergy:
    """The exact minimum over assignments of node costs plus the radio energy of the edges
    of a spanning forest, by DP over (block, device), with the argmin assignment."""

    def __init__(self, p: Problem, forest: list[int]):
        B = p.n_blocks
        adj: list[list[int]] = [[] for _ in range(B)]
        for k in forest:
            adj[int(p.edge_src[k])].append(k)
            adj[int(p.edge_dst[k])].append(k)
        self.p = p
        self.radio = p.tx_power[:, None] + p.rx_power[None, :]
        self.roots: list[int] = []
        self.steps: list[tuple[int, int, bool, int]] = []   # (x, parent, x consumes, edge)
        seen = np.zeros(B, dtype=bool)
        for root in range(B):
            if seen[root]:
                continue
            self.roots.append(root)
            order, parent_edge, stack = [], {root: -1}, [root]
            seen[root] = True
            while stack:
                x = stack.pop()
                order.append(x)
                for k in adj[x]:
                    y = int(p.edge_dst[k]) if int(p.edge_src[k]) == x else int(p.edge_src[k])
                    if not seen[y]:
                        seen[y] = True
                        parent_edge[y] = k
                        stack.append(y)
            for x in reversed(order):
                k = parent_edge[x]
                if k < 0:
                    continue
                u, v = int(p.edge_src[k]), int(p.edge_dst[k])
                # x consumes from its parent u, or produces for its parent v
                self.steps.append((x, u, True, k) if x == v else (x, v, False, k))
        self.B, self.D = B, p.n_devices

    def solve(self, node: np.ndarray) -> tuple[float, np.ndarray]:
        p = self.p
        cost = node.copy()
        D = self.D
        args = []
        inv_bw = p.inv_bandwidth
        for x, parent, consumes, k in self.steps:
            # [producer device, consumer device]; unreachable pairs are impossible
            pe = np.where(p.reachable, self.radio * (p.edge_bytes[k] * inv_bw), np.inf)
            if not consumes:
                pe = pe.T
            M = pe + cost[x][None, :]          # [parent device, x device]
            arg = np.argmin(M, axis=1)
            args.append(arg)
            cost[parent] = cost[parent] + M[np.arange(D), arg]
        a = np.zeros(self.B, dtype=np.int64)
        total = 0.0
        for r in self.roots:
            a[r] = int(np.argmin(cost[r]))
            total += float(cost[r][a[r]])
        for (x, parent, _, _), arg in zip(reversed(self.steps), reversed(args)):
            a[x] = int(arg[a[parent]])
        return total, a


def _heaviest_bytes_path(p: Problem) -> list[int]:
    """An input-to-output path with the most bytes on its edges."""
    best = np.zeros(p.n_blocks)
    nxt = np.full(p.n_blocks, -1)
    for b in reversed(p.topo):
        tail, arg = 0.0, -1
        for v, k in p.succs[b]:
            if arg < 0 or best[v] + p.edge_bytes[k] > tail:
                tail, arg = best[v] + p.edge_bytes[k], v
        best[b] = tail
        nxt[b] = arg
    start = max(p.input_blocks, key=lambda b: best[b])
    path = [start]
    while nxt[path[-1]] >= 0:
        path.append(int(nxt[path[-1]]))
    return path


def _energy_segments(p: Problem, mv: _MemoryView, e: np.ndarray, scale: float, work: float) -> float:
    """Node energy of every block (off the path at its cheapest feasible device) plus the
    radio energy of the path's edges, the path run in memory-feasible runs, with memory
    prices (`_priced_runs`)."""
    if not mv.binds or p.n_edges == 0:
        return -np.inf
    path = _heaviest_bytes_path(p)
    radio = p.tx_power[:, None] + p.rx_power[None, :]
    hops = []
    for x, y in zip(path, path[1:]):
        k = next(k for v, k in p.succs[x] if v == y)
        hops.append(np.where(p.reachable, radio * p.transmission_matrix(p.edge_bytes[k]), np.inf))
    zero = np.zeros(p.n_devices)
    return _priced_runs(p, mv, path, e, hops, zero, zero, e, scale, work)


def energy_bound(p: Problem) -> float:
    """A lower bound on every feasible plan's energy, in joules (see the module docstring);
    with split choices, over every choice (`split_bound`)."""
    if has_split_choice(p):
        return max(split_bound(p, energy_bound), choice_bound(p, "energy"))
    return _cached(p, "energy", lambda: _energy_bound(p, CHEAP_WORK))


#: the energy bound's exact LP (node energy with the weights knapsacks) up to this many
#: (block, device) cells; beyond, the Lagrangian over the same knapsacks stands for it
ENERGY_LP_CELLS = 20_000


def _energy_bound(p: Problem, work: float) -> float:
    if p.scenarios:
        return scenario_bound(p, _energy_bound, "energy", work)
    mv = memory_view(p)
    ct = mv.ct
    B, D = ct.shape
    if B == 0:
        return 0.0
    e = _node_energy(p, ct)
    node_only = float(np.sum(np.min(e, axis=1)))
    forest = _spanning_forest(p)
    tree = _TreeEnergy(p, forest)
    base, _ = tree.solve(e)
    best = max(node_only, base)
    if not mv.binds or not np.isfinite(best) or best <= 0:
        return float(best)
    seg = _energy_segments(p, mv, e, best, work)
    best = max(best, seg)
    if B * D <= ENERGY_LP_CELLS:
        lp = _energy_lp(e, mv)
        best = max(best, lp if lp is not None else -np.inf)
    prices = _Prices(mv, best / mv.scale)

    def oracle(z):
        pen, const = prices.penalty(z)
        val, a = tree.solve(e + pen)
        return val - const, prices.grad(a)

    # a tree DP costs about E D^2; fewer steps on large problems, within the budget
    per_step = 4 * (len(forest) * D * D + 8 * B * D)
    max_iter = int(min(60 if work <= CHEAP_WORK else 2000, work // per_step))
    if max_iter < 1:
        return float(best)
    lag = _ascent(oracle, np.zeros(prices.n), lambda z: np.maximum(z, 0.0), max_iter)
    return float(max(best, lag))


def scenario_bound(p: Problem, fn, metric: str, work: float) -> float:
    """A metric's bound with scenarios (SPEC section 10; proof in docs/bounds.md): each
    scenario's bound ``LB_k`` on its reduced problem (fewer weights: a relaxation of the
    memory rule, so still a bound for the same plan's scenario-k metric). Latency and
    energy are expectations: ``sum_k p_k LB_k``. The period is the busiest resource's
    expected load ``max_r sum_k p_k load_k(r) >= p_k max_r load_k(r) >= p_k LB_k`` for
    every k: ``max_k p_k LB_k``."""
    vals = []
    for k, sc in enumerate(p.scenarios):
        q, _keep = p.scenario_problem(k)
        vals.append(sc.probability * float(fn(q, work)))
    if not vals:
        return 0.0
    return float(max(vals)) if metric == "throughput" else float(sum(vals))


# ---------------------------------------------------------------- shared media (SPEC 5a)
def _forced_air(p: Problem, mv: _MemoryView) -> list:
    """The transfers that must cross each medium whatever the plan, given what the problem
    forces (pins, ``allowed_devices``, blocks that fit only on some devices, ``source`` and
    ``sink``). A transfer from a block (or ``source``) that may be on the devices ``U`` to
    one (or ``sink``) on ``V`` is on medium m in every feasible plan when every reachable
    pair (du, dv) of ``U x V`` has du != dv and both in m; it then occupies m for at least
    ``min n / bandwidth`` over those pairs. Per medium with such transfers: (m, transmission
    times, producer indices (-1 for source), consumer indices (-1 for sink)) as arrays, and
    the ``U x V`` pairs of each (for heads and tails)."""
    fits, mo = mv.fits, p.medium_of
    ends = [(p.source, -1, b, float(p.in_bytes[b])) for b in p.input_blocks]
    ends += [(-1, int(u), int(v), float(n)) for u, v, n in zip(p.edge_src, p.edge_dst, p.edge_bytes)]
    ends += [(-1, b, -2, float(p.out_bytes[b])) for b in p.output_blocks]
    per: dict[int, list] = {}
    for src_dev, u, v, n in ends:
        U = np.array([src_dev]) if u < 0 else np.nonzero(fits[u])[0]
        V = np.array([p.sink]) if v == -2 else np.nonzero(fits[v])[0]
        if not len(U) or not len(V) or np.intersect1d(U, V).size:
            continue                       # a shared device: the transfer may vanish
        pair_m = mo[np.ix_(U, V)]
        reach = p.reachable[np.ix_(U, V)]
        if not reach.any():
            continue                       # no feasible plan: leave it to the other bounds
        ms = np.unique(pair_m[reach])
        if len(ms) != 1 or ms[0] < 0:
            continue                       # some pair off the medium (or on another one)
        tx = n * p.inv_bandwidth[np.ix_(U, V)]
        t_min = float(np.min(np.where(reach, tx, np.inf)))
        if t_min > 0:
            per.setdefault(int(ms[0]), []).append((t_min, u, v, U, V, reach))
    out = []
    for m, rows in sorted(per.items()):
        out.append((m, np.array([r[0] for r in rows]), [r[1:3] for r in rows], [r[3:] for r in rows]))
    return out


def _tail_after(p: Problem, ct: np.ndarray) -> np.ndarray:
    """(B, D) the least time from the end of block b on device d to the last result at
    ``sink`` (each successor on its best device, no contention): every plan's latency is at
    least b's end plus this."""
    B, D = ct.shape
    R = np.zeros((B, D))
    for b in reversed(p.topo):
        row = p.output_delivery(b).copy() if not p.succs[b] else np.zeros(D)
        for v, k in p.succs[b]:
            tail = ct[v] + R[v]
            cost = np.min(np.where(p.reachable, p.transfer_matrix(p.edge_bytes[k]), np.inf) + tail[None, :], axis=1)
            np.maximum(row, cost, out=row)
        R[b] = row
    return R


def _media_latency_bound(p: Problem, mv: _MemoryView, F: np.ndarray) -> float:
    """One machine per medium (docs/bounds.md, shared media): a medium sends its forced
    transfers one at a time, so for any set S of them latency >= min_S head + sum_S
    transmission + min_S tail, with head the earliest its producer can end (`_dp_latency`'s
    F; 0 for an input) and tail the least time from the end of the transmission to the last
    result (link latency, the consumer's compute and `_tail_after`; the latency alone for an
    output). S ranges over the sets of transfers with a head at least h (every h), and with a
    tail at least q (every q)."""
    forced = _forced_air(p, mv)
    if not forced:
        return 0.0
    ct = mv.ct
    R = _tail_after(p, ct)
    best = 0.0
    for m, tx, uv, pairs in forced:
        heads, tails = [], []
        for (u, v), (U, V, reach) in zip(uv, pairs):
            heads.append(0.0 if u < 0 else float(np.min(F[u][U])))
            after = p.latency[np.ix_(U, V)].copy()
            if v >= 0:
                after += (ct[v][V] + R[v][V])[None, :]
            tails.append(float(np.min(np.where(reach, after, np.inf))))
        h, q = np.array(heads), np.array(tails)
        for key, other in ((h, q), (q, h)):
            idx = np.argsort(-key, kind="stable")          # largest first: growing sets
            k_sorted, o_sorted, t_sorted = key[idx], other[idx], tx[idx]
            run_sum = np.cumsum(t_sorted)
            run_min = np.minimum.accumulate(o_sorted)
            # the set of the transfers with key >= k_sorted[j]: its min key is k_sorted[j]
            vals = k_sorted + run_sum + run_min
            vals = vals[np.isfinite(vals)]
            if len(vals):
                best = max(best, float(vals.max()))
    return best


METRIC_BOUNDS = {"latency": latency_bound, "throughput": period_bound, "energy": energy_bound}


def lower_bound(p: Problem, strength: str = "cheap", time_limit: float = 10.0) -> float:
    """A valid lower bound on ``p``'s objective value: the weighted sum of the per-metric
    bounds (constraints relaxed). ``strength="cheap"`` (the default, what every plan
    reports): milliseconds, a few tenths of a second at 2,000 blocks x 64 devices, cached on
    the problem. ``strength="strong"``: the same relaxations with a work budget sized by
    ``time_limit`` seconds (longer ascents, run DPs on long paths, the load LP at any size),
    never below the cheap bound. Deterministic: the same problem gives the same number."""
    if strength == "cheap":
        fns = METRIC_BOUNDS         # each holds over every split choice (`split_bound`)
    elif strength == "strong":
        fns = {k: (lambda q, k=k: strong_metric_bound(q, k, time_limit)) for k in METRIC_BOUNDS}
    else:
        raise ValueError(f"strength: expected 'cheap' or 'strong', found {strength!r}")
    return float(sum(w * fns[k](p) for k, w in p.objective.weights.items() if w))


def strong_metric_bound(p: Problem, metric: str, time_limit: float = 10.0) -> float:
    """The strong bound of one metric (``latency``, ``throughput`` or ``energy``), never
    below the cheap one; its work budget is ``time_limit`` x `STRONG_WORK_PER_S` (with
    split choices, shared by the expansions, `split_bound`)."""
    if has_split_choice(p):
        n = p.n_split_combinations if p.n_split_combinations <= SPLIT_ENUMERATION_LIMIT else 1
        return max(split_bound(p, lambda q: strong_metric_bound(q, metric, time_limit / n)),
                   choice_bound(p, metric))
    work = max(CHEAP_WORK, float(time_limit) * STRONG_WORK_PER_S)
    cheap = METRIC_BOUNDS[metric](p)
    fn = {"latency": _latency_bound, "throughput": _period_bound, "energy": _energy_bound}[metric]
    value = _cached(p, f"strong-{metric}-{work:.6g}", lambda: fn(p, work))
    if metric == "throughput" and not p.scenarios:
        mv = memory_view(p)
        if p.n_blocks and np.isfinite(mv.ct.min(axis=1)).all():
            lp = _cached(p, "strong-load-lp", lambda: _load_lp(mv.ct, mv if mv.binds else None))
            value = max(value, lp if lp is not None else -np.inf)
    return float(max(cheap, value))


# ------------------------------------------------------------ split choices
#: with split choices (SPEC section 6), a bound is the least over the expansions when there
#: are at most this many choices, else the bound of the relaxation of every choice at once.
SPLIT_ENUMERATION_LIMIT = 8


def has_split_choice(p: Problem) -> bool:
    """True when ``p`` is one expansion of a problem whose split blocks offer choices: its
    bound must then hold for every choice, not only for this expansion."""
    return "split_choice" in p.features and p.__dict__.get("_split_source") is not None


def split_relaxation(p: Problem) -> Problem:
    """The relaxation of every split choice at once (`placement.split.relaxed`; proof in
    docs/bounds.md): each block with several ways is one block with the least of every
    quantity over its ways. A valid bound of it is valid for every choice. ``p`` itself
    without choices. Built once per problem family; carries ``p``'s objective."""
    if not has_split_choice(p):
        return p
    base = p.__dict__.get("_split_relaxation")
    if base is None:
        from .loader import assemble
        relax = frozenset(b for b, w in p.split_options.items() if len(w) > 1)
        base = assemble(p._split_source, None, relax=relax)
        p.__dict__["_split_relaxation"] = base
    if base.objective != p.objective:
        base = base._replaced(objective=p.objective)
    return base


def choice_bound(p: Problem, metric: str) -> float:
    """The bound of ``metric`` over every split choice that keeps what splitting costs
    (`placement.split_bounds`: the phase DP for latency, the busiest block and the work
    spread for the period, the least compute energy); 0 with scenarios (it assumes every
    block runs). Computed once per family of expansions (`Problem.expand`)."""
    if p.scenarios or not has_split_choice(p):
        return 0.0
    from .split_bounds import PHASE_BOUNDS
    family = p.__dict__.setdefault("_family_bounds", {})     # shared by the expansions
    if metric not in family:
        family[metric] = float(PHASE_BOUNDS[metric](p))
    return family[metric]


def split_bound(p: Problem, fn) -> float:
    """A bound valid over every split choice of ``p`` from a one-expansion bound ``fn``: the
    least of ``fn`` over the expansions (at most `SPLIT_ENUMERATION_LIMIT` of them), else
    ``fn`` of `split_relaxation`. ``fn`` is called on problems without choices in the
    sense of `has_split_choice`, so it bounds that one expansion."""
    if p.n_split_combinations <= SPLIT_ENUMERATION_LIMIT:
        vals = []
        for choice in p.split_combinations():
            q = p.expand(choice)
            vals.append(float(fn(_one_expansion(q))))
        return float(min(vals))
    return float(fn(split_relaxation(p)))


def _one_expansion(q: Problem) -> Problem:
    """``q`` seen as a problem of its own expansion only (bounds of this expansion): a
    shallow copy without the split source, cached on ``q``."""
    one = q.__dict__.get("_one_expansion")
    if one is None or one.objective != q.objective:
        one = q._replaced(_split_source=None)
        one.__dict__.pop("_one_expansion", None)
        q.__dict__["_one_expansion"] = one
    return one

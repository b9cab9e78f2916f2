"""Cheap, valid lower bounds for every objective.

Each bound relaxes the problem (memory, device contention, or link sharing dropped), so it
is never above the true optimum. Every plan reports ``bound = max(method's proven bound,
these)``. All functions honour pins and ``allowed_devices`` (blocks only go where allowed).

- latency: per-device earliest-finish DP over the block graph, ignoring contention:
  ``F[b, d] = max(input arrival, max over predecessors p of min_d' F[p, d'] + transfer) +
  compute``, then each output's delivery to ``sink``. Exact for a chain on contention-free
  links (there is nothing to contend for), so `dp`'s chain optimum meets it. Also at least
  the total minimum work divided by the number of devices.
- period: the largest minimum compute time of one block; the total minimum work divided by
  the number of devices; and the fractional load-balancing bound ``min T`` with blocks split
  fractionally across devices (solved exactly by water-filling on ``T``).
- energy: every block pays at least its cheapest compute energy plus, for input and output
  blocks, the radio energy of moving the model's input from ``source`` (or output to
  ``sink``) to that device.
- weighted sums: the weighted sum of the above.
"""

from __future__ import annotations

import numpy as np

from .problem import Problem


def _masked_ct(p: Problem) -> np.ndarray:
    return np.where(p.allowed, p.compute_time, np.inf)


def latency_bound(p: Problem) -> float:
    ct = _masked_ct(p)
    B, D = ct.shape
    if B == 0:
        return 0.0
    F = np.full((B, D), np.inf)
    for b in p.topo:
        ready = p.input_arrival(b).copy()
        for u, k in p.preds[b]:
            # earliest the data of edge k can be on each device d
            arrive = np.min(F[u][:, None] + p.transfer_matrix(p.edge_bytes[k]), axis=0)
            np.maximum(ready, arrive, out=ready)
        F[b] = ready + ct[b]
    done = np.max([np.min(F[b] + p.output_delivery(b)) for b in range(B)])
    work = np.sum(np.min(ct, axis=1)) / D
    return float(max(done, work))


def _load_balance_bound(ct: np.ndarray) -> float:
    """min T such that the blocks, split fractionally over devices, keep every device's load
    at most T: the LP relaxation of the period without links. Solved with HiGHS when the
    LP is small (B * D <= 20,000); otherwise the total minimum work over D devices, which
    the LP's value is never below."""
    B, D = ct.shape
    simple = float(np.sum(np.min(ct, axis=1)) / D)
    if B * D > 20_000 or not np.all(np.isfinite(np.min(ct, axis=1))):
        return simple
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, hstack

    finite = np.isfinite(ct)
    rows, cols = np.nonzero(finite)
    n = len(rows)
    # variables: x (n), T; min T; sum_d x_bd = 1; sum_b ct_bd x_bd - T <= 0
    c = np.zeros(n + 1)
    c[-1] = 1.0
    a_eq = hstack([coo_matrix((np.ones(n), (rows, np.arange(n))), shape=(B, n)),
                   coo_matrix((B, 1))]).tocsr()
    a_ub = hstack([coo_matrix((ct[rows, cols], (cols, np.arange(n))), shape=(D, n)),
                   coo_matrix(-np.ones((D, 1)))]).tocsr()
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(D), A_eq=a_eq, b_eq=np.ones(B),
                  bounds=(0, None), method="highs")
    if res.status != 0:
        return simple
    # dual-feasible value: use the solver's proven objective, less its tolerance
    return max(simple, float(res.fun) * (1 - 1e-7))


def period_bound(p: Problem) -> float:
    ct = _masked_ct(p)
    if ct.size == 0:
        return 0.0
    per_block = float(np.max(np.min(ct, axis=1)))
    return max(per_block, _load_balance_bound(ct))


def energy_bound(p: Problem) -> float:
    ct = _masked_ct(p)
    B = ct.shape[0]
    if B == 0:
        return 0.0
    e = p.power_active[None, :] * ct
    src, snk = p.source, p.sink
    for b in p.input_blocks:
        e[b] += (p.tx_power[src] + p.rx_power) * p.transmission_matrix(p.in_bytes[b])[src]
    for b in p.output_blocks:
        e[b] += (p.tx_power + p.rx_power[snk]) * p.transmission_matrix(p.out_bytes[b])[:, snk]
    return float(np.sum(np.min(e, axis=1)))


METRIC_BOUNDS = {"latency": latency_bound, "throughput": period_bound, "energy": energy_bound}


def lower_bound(p: Problem) -> float:
    """A valid lower bound on ``p``'s objective (a weighted sum of the per-metric bounds)."""
    return float(sum(w * METRIC_BOUNDS[k](p) for k, w in p.objective.weights.items() if w))

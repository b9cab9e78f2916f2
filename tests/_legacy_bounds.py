"""Cheap, valid lower bounds for every objective.

Each bound relaxes the problem (memory, device contention, or link sharing dropped), so it
is never above the true optimum. Every plan reports ``bound = max(method's proven bound,
these)``. All functions honour pins and ``allowed_devices`` (blocks only go where allowed).

- latency: per-device earliest-finish DP over the block graph, ignoring contention:
  ``F[b, d] = max(input arrival, max over predecessors p of min_d' F[p, d'] + transfer) +
  compute``, then each output's delivery to ``sink``. Exact for a chain on contention-free
  links (there is nothing to contend for), so `dp`'s chain optimum meets it. Also at least
  the total minimum work divided by the number of devices.
- period: the largest minimum compute time of one block (with, for input and output
  blocks, the transmission of the input from ``source`` / output to ``sink`` on its link);
  for every edge, the least over device pairs of the busiest of the two devices and the
  link (both blocks' compute summed when co-located); the total minimum work divided by
  the number of devices; and the fractional load-balancing LP (HiGHS) when it is small.
- energy: the compute energy of every block plus, for input and output blocks, the radio
  energy of the input from ``source`` / output to ``sink`` (node costs), and the radio
  energy of the edges of a maximum-bytes spanning forest of the block graph: dropping the
  other edges (their cost is >= 0) and memory leaves a tree-structured problem solved
  exactly by dynamic programming over (block, device) in ``O(E D^2)``. On a chain that is
  the exact energy optimum without memory.
- weighted sums: the weighted sum of the above.
"""

from __future__ import annotations

import numpy as np

from placement.problem import Problem


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
    ct = _masked_ct(p)
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
    return max(per_block, _edge_period_bound(p, ct), _load_balance_bound(ct))


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


def energy_bound(p: Problem) -> float:
    ct = _masked_ct(p)
    B, D = ct.shape
    if B == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        e = np.where(np.isfinite(ct), p.power_active[None, :] * ct, np.inf)
    src, snk = p.source, p.sink
    for b in p.input_blocks:
        t = (p.tx_power[src] + p.rx_power) * p.transmission_matrix(p.in_bytes[b])[src]
        e[b] += np.where(p.reachable[src], t, np.inf)
    for b in p.output_blocks:
        t = (p.tx_power + p.rx_power[snk]) * p.transmission_matrix(p.out_bytes[b])[:, snk]
        e[b] += np.where(p.reachable[:, snk], t, np.inf)
    node_only = float(np.sum(np.min(e, axis=1)))
    # tree DP over a spanning forest: cost[b, d] = node + sum over children of the cheapest
    # (child subtree + edge radio energy) given b on d
    forest = _spanning_forest(p)
    if not forest:
        return node_only
    adj: list[list[int]] = [[] for _ in range(B)]
    for k in forest:
        adj[int(p.edge_src[k])].append(k)
        adj[int(p.edge_dst[k])].append(k)
    radio = p.tx_power[:, None] + p.rx_power[None, :]
    cost = e.copy()
    seen = np.zeros(B, dtype=bool)
    total = 0.0
    for root in range(B):
        if seen[root]:
            continue
        # iterative DFS: order of visit, then children before parents
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
            pe = radio * p.transmission_matrix(p.edge_bytes[k])
            pe = np.where(p.reachable, pe, np.inf)
            if x == v:     # x consumes from its parent u: parent on rows
                add = np.min(pe + cost[x][None, :], axis=1)
                parent = u
            else:          # x produces for its parent v: parent on columns
                add = np.min(pe + cost[x][:, None], axis=0)
                parent = v
            cost[parent] = cost[parent] + add
        total += float(np.min(cost[root]))
    return max(node_only, total)


METRIC_BOUNDS = {"latency": latency_bound, "throughput": period_bound, "energy": energy_bound}


def lower_bound(p: Problem) -> float:
    """A valid lower bound on ``p``'s objective (a weighted sum of the per-metric bounds)."""
    return float(sum(w * METRIC_BOUNDS[k](p) for k, w in p.objective.weights.items() if w))

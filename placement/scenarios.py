"""Conditional execution (SPEC section 10): a plan scored over the problem's scenarios.

A scenario is scored as its reduced problem (`Problem.scenario_problem`: skipped blocks
and their edges removed, a block whose successors are all skipped sends its output to
``sink``) under the same plan: the assignment, and the per-device orders restricted to
the blocks that run. This module is a wrapper around the one evaluator: each scenario is
`placement.evaluator.evaluate` of the reduced problem, nothing is re-derived here but the
expectations:

* ``latency_s``, ``energy_j``, ``transfer_bytes``: the probability-weighted sums;
* ``period_s``: the busiest resource's EXPECTED load per inference -- per device the
  expected compute time, per directed link the expected transmission time (the scenarios'
  loads weighted by probability), then the maximum;
* ``latency_max_s``: the worst scenario's latency;
* memory: the full problem's (every block's weights are held in every scenario).

Decisions where the SPEC leaves room (docs/choices.md):

* A plan without an order gets the list rule's orders on the problem with every block
  running, restricted per scenario (one order per device, as the SPEC asks; a runtime
  that queues per device may do better in a given scenario).
* The orders must be consistent with the whole block graph (no deadlock with every block
  running); their restriction to any scenario then cannot deadlock either.
* The plan's ``schedule`` gives each block its times in the most probable scenario that
  runs it (ties: the first in the file); each scenario's own times are in
  ``Evaluation.scenario_evals``.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Sequence

import numpy as np

from .problem import Problem


def plain(p: Problem) -> Problem:
    """``p`` with every block running and no constraints: the structural checks
    (devices, pins, links, memory, order) and the list rule read it. Built once."""
    q = p.__dict__.get("_plain_problem")
    if q is None:
        q = p._replaced(scenarios=(), constraints=MappingProxyType({}),
                        spec={**(p.spec or {}), "constraints": {}})
        for key in ("features", "_scenario_problems", "_plain_problem"):
            q.__dict__.pop(key, None)
        p.__dict__["_plain_problem"] = q
    return q


def restrict_order(order: Sequence[Sequence[int]], keep: np.ndarray, B: int) -> list[list[int]]:
    """Per device, the blocks of ``order`` that run (full indices ``keep``), renumbered to
    the reduced problem's indices, order kept."""
    new = np.full(B, -1, dtype=np.int64)
    new[keep] = np.arange(len(keep))
    return [[int(new[b]) for b in o if new[b] >= 0] for o in order]


def resource_loads(q: Problem, a: np.ndarray, ct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(D,) compute load per device and (D, D) transmission load per directed link of
    assignment ``a`` on problem ``q`` (SPEC section 5, throughput; the same sums as
    `evaluator.plan_costs`' period)."""
    D = q.n_devices
    load = np.bincount(a, weights=ct, minlength=D)
    link = np.zeros((D, D))
    ea, ec = a[q.edge_src], a[q.edge_dst]
    cross = ea != ec
    np.add.at(link, (ea[cross], ec[cross]), (q.edge_bytes * q.inv_bandwidth[ea, ec])[cross])
    for b in q.input_blocks:
        if a[b] != q.source:
            link[q.source, a[b]] += q.in_bytes[b] * q.inv_bandwidth[q.source, a[b]]
    for b in q.output_blocks:
        if a[b] != q.sink:
            link[a[b], q.sink] += q.out_bytes[b] * q.inv_bandwidth[a[b], q.sink]
    return load, link


def evaluate_scenarios(p: Problem, assignment, order=None):
    """The evaluation of a plan on a problem with scenarios (module docstring)."""
    from .evaluator import Evaluation, constraint_violations, evaluate, throughput_of

    B, D = p.n_blocks, p.n_devices
    a = np.array(assignment, dtype=np.int64)
    if a.shape != (B,) or (B and (a.min() < 0 or a.max() >= D)):
        raise ValueError(f"assignment must be {B} device indices in [0, {D})")
    full = evaluate(plain(p), a, order)          # devices, pins, links, memory, order, deadlock
    order = full.order
    violations = [v for v in full.violations if v.kind != "constraint"]
    deadlock = any(v.kind == "order" and "contradict" in v.message for v in violations)

    subs = []
    latency = energy = tbytes = 0.0
    latency_max = 0.0
    load = np.zeros(D)
    link = np.zeros((D, D))
    start = np.full(B, math.nan)
    end = np.full(B, math.nan)
    best_p = np.full(B, -1.0)
    for k, sc in enumerate(p.scenarios):
        q, keep = p.scenario_problem(k)
        qa = a[keep]
        ev = evaluate(q, qa, restrict_order(order, keep, B) if not deadlock else None)
        if deadlock:
            ev_lat = math.inf
        else:
            ev_lat = ev.latency_s
        subs.append((sc.name, sc.probability, ev, keep))
        latency += sc.probability * ev_lat
        latency_max = max(latency_max, ev_lat)
        energy += sc.probability * ev.energy_j
        tbytes += sc.probability * ev.transfer_bytes
        ql, qk = resource_loads(q, qa, q.compute_time[np.arange(q.n_blocks), qa])
        load += sc.probability * ql
        link += sc.probability * qk
        better = sc.probability > best_p[keep]
        idx = keep[better]
        start[idx] = ev.start[better]
        end[idx] = ev.end[better]
        best_p[idx] = sc.probability
    period = float(max(load.max(initial=0.0), link.max(initial=0.0)))
    if not np.all(np.isfinite(p.compute_time[np.arange(B), a])):
        period = math.inf

    values = {"latency_s": latency, "latency_max_s": latency_max, "period_s": period,
              "throughput_per_s": throughput_of(period), "energy_j": energy}
    violations += constraint_violations(p, values)
    return Evaluation(assignment=a, order=order, start=start, end=end, latency_s=latency,
                      period_s=period, energy_j=energy, memory_bytes=full.memory_bytes,
                      transfer_bytes=tbytes, value=p.objective.value(values),
                      violations=tuple(violations), latency_max_s=latency_max,
                      scenario_evals=tuple(subs))


def scenario_metrics(p: Problem, ev) -> dict[str, dict]:
    """``metrics.scenarios``: per scenario by name, its probability and the reduced
    problem's latency, period, throughput, energy and transfer bytes."""
    out = {}
    for name, prob, sub, _keep in ev.scenario_evals:
        out[name] = {"probability": prob, "latency_s": sub.latency_s, "period_s": sub.period_s,
                     "throughput_per_s": sub.throughput_per_s, "energy_j": sub.energy_j,
                     "transfer_bytes": sub.transfer_bytes}
    return out


__all__ = ["evaluate_scenarios", "plain", "restrict_order", "resource_loads", "scenario_metrics"]

"""The cheap lower bounds never exceed `brute`'s optimum, on many tiny problems: chains,
DAGs, hybrids, split blocks, pins, binding memory, constraints, idle energy, every objective.
And they are tight where they claim to be: the latency and energy bounds equal the optimum
on chains without binding memory."""

from __future__ import annotations

import time

import pytest

import placement
from placement import bounds
from placement.plan import Status

OBJECTIVES = ["latency", "throughput", "energy", {"latency": 1.0, "energy": 0.2},
              {"throughput": 1.0, "energy": 0.1}]


def _case(i: int) -> dict:
    shape = ("chain", "dag", "hybrid")[i % 3]
    split = i % 4 == 0
    d = placement.generate(shape, 5, 2 if split else 3, device_set=("homogeneous", "iot", "edge")[i // 3 % 3],
                           network=("star", "mesh", "tiers")[i // 9 % 3], seed=i,
                           objective=OBJECTIVES[i % len(OBJECTIVES)],
                           split=0.2 if split else 0.0)             # 1 block -> 4 shards
    if i % 5 == 1:
        d["pinned"] = {"b1": d["devices"][i % len(d["devices"])]["id"]}
    if i % 7 == 2:
        d["count_idle"] = True
    if i % 6 == 3:
        for dev in d["devices"]:
            dev["memory_bytes"] = 1e13
    if i % 8 == 5:
        d["sink"] = d["devices"][-1]["id"]
    return d


@pytest.mark.parametrize("i", range(40))
def test_bounds_never_exceed_brute(i):
    d = _case(i)
    p = placement.load(d)
    assert p.n_blocks <= 8
    opt = placement.solve(p, "brute", time_limit=60)
    assert opt.status in (Status.OPTIMAL, Status.NO_SOLUTION, Status.INFEASIBLE)
    if opt.status != Status.OPTIMAL:
        return
    tol = 1 + 1e-9
    assert bounds.lower_bound(p) <= opt.value * tol
    m = opt.metrics
    assert bounds.latency_bound(p) <= m["latency_s"] * tol
    assert bounds.period_bound(p) <= m["period_s"] * tol
    assert bounds.energy_bound(p) <= m["energy_j"] * tol
    # each metric's own optimum, too (the bound of a metric holds for every plan)
    for name, fn in (("latency", bounds.latency_bound), ("throughput", bounds.period_bound),
                     ("energy", bounds.energy_bound)):
        best = placement.solve(p.with_objective(name), "brute", time_limit=60)
        if best.status == Status.OPTIMAL:
            assert fn(p) <= best.value * tol, name


@pytest.mark.parametrize("i", range(12))
def test_bounds_with_constraints_stay_valid(i):
    d = _case(i)
    p0 = placement.load(d)
    free = placement.solve(p0.with_objective("energy"), "brute", time_limit=60)
    if free.status != Status.OPTIMAL:
        return
    d["constraints"] = {"latency_s": free.metrics["latency_s"] * 0.9, "energy_j": free.value * 3}
    p = placement.load(d)
    opt = placement.solve(p, "brute", time_limit=60)
    if opt.status == Status.OPTIMAL:
        assert bounds.lower_bound(p) <= opt.value * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_bounds_are_tight_on_roomy_chains(seed, objective):
    d = placement.generate("chain", 5, 3, device_set="iot", network=("star", "mesh", "tiers")[seed % 3],
                           seed=seed, objective=objective)
    for dev in d["devices"]:
        dev["memory_bytes"] = 1e13
    p = placement.load(d)
    opt = placement.solve(p, "brute", time_limit=60)
    assert bounds.lower_bound(p) == pytest.approx(opt.value, rel=1e-9)


def test_bounds_are_fast_at_2000_blocks_64_devices():
    p = placement.load(placement.generate("dag", 2000, 64, device_set="iot", network="mesh", seed=1))
    t0 = time.perf_counter()
    for name in ("latency", "throughput", "energy"):
        assert bounds.lower_bound(p.with_objective(name)) > 0
    assert time.perf_counter() - t0 < 5.0

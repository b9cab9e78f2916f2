"""`brute` is the oracle of the tests, so it is itself checked against a dumber oracle: every
assignment times every per-device permutation (not only the precedence-respecting ones),
each scored by `placement.evaluate` alone."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import placement
from placement.errors import InputError
from placement.evaluator import evaluate
from placement.method import Context
from placement.plan import Status
from solvers.brute import MAX_ASSIGNMENTS, Brute, enumerate_assignments

from .conftest import diamond_dict


def _naive_optimum(p) -> float:
    """min over all assignments and all per-device permutations of the evaluator's value."""
    B, D = p.n_blocks, p.n_devices
    best = math.inf
    for a in itertools.product(*[np.nonzero(p.allowed[b])[0] for b in range(B)]):
        a = np.array(a, dtype=np.int64)
        on = [[b for b in range(B) if a[b] == d] for d in range(D)]
        for combo in itertools.product(*[itertools.permutations(x) for x in on]):
            ev = evaluate(p, a, [list(o) for o in combo])
            if ev.feasible:
                best = min(best, ev.value)
    return best


def _small_dag(seed: int, objective, **extra) -> dict:
    d = placement.generate("dag", 5, 2, device_set="iot", network="mesh", seed=seed, objective=objective)
    d.update(extra)
    return d


OBJECTIVES = ["latency", "throughput", "energy", {"latency": 1.0, "energy": 0.2}]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=["latency", "throughput", "energy", "weighted"])
@pytest.mark.parametrize("seed", [0, 1])
def test_brute_matches_naive_enumeration(objective, seed):
    d = _small_dag(seed, objective)
    p = placement.load(d)
    plan = placement.solve(d, "brute", time_limit=60)
    assert plan.status == Status.OPTIMAL
    assert plan.value == pytest.approx(_naive_optimum(p), rel=1e-12)
    assert plan.bound == pytest.approx(plan.value, rel=1e-12)


def test_brute_diamond_order_matters():
    """The diamond's two branches on one device: the order decides the latency."""
    d = diamond_dict()
    p = placement.load(d)
    plan = placement.solve(d, "brute", time_limit=60)
    assert plan.value == pytest.approx(_naive_optimum(p), rel=1e-12)


def test_brute_count_idle_energy_uses_orders():
    d = _small_dag(3, "energy", count_idle=True)
    for dev in d["devices"]:
        dev["power_idle_w"] = 5.0  # idle time matters a lot
    p = placement.load(d)
    assert p.needs_schedule()
    plan = placement.solve(d, "brute", time_limit=60)
    assert plan.status == Status.OPTIMAL
    assert plan.value == pytest.approx(_naive_optimum(p), rel=1e-12)


def test_brute_latency_constraint_and_infeasible_proof():
    d = _small_dag(4, "energy")
    free = placement.solve(d, "brute", time_limit=60)
    fastest = placement.solve(d, "brute", objective="latency", time_limit=60)
    # a latency constraint between the fastest plan and the energy optimum's latency
    d["constraints"] = {"latency_s": 0.5 * (fastest.value + free.metrics["latency_s"])}
    p = placement.load(d)
    plan = placement.solve(d, "brute", time_limit=60)
    assert plan.status == Status.OPTIMAL
    assert plan.metrics["latency_s"] <= d["constraints"]["latency_s"] * (1 + 1e-9)
    assert plan.value == pytest.approx(_naive_optimum(p), rel=1e-12)
    assert plan.value >= free.value * (1 - 1e-12)
    # just under the fastest possible latency: no plan; the cheap bound may or may not see it
    d["constraints"] = {"latency_s": fastest.value * (1 - 1e-6)}
    plan = placement.solve(d, "brute", time_limit=60)
    assert plan.status == Status.INFEASIBLE
    assert plan.message


def test_brute_memory_binding_and_pins():
    d = _small_dag(5, "latency")
    blocks = d["model"]["blocks"]
    weights = sum(b["params_bytes"] for b in blocks)
    peak = max(b["activation_bytes"] for b in blocks)
    for dev in d["devices"]:
        dev["memory_bytes"] = peak + 0.6 * weights
    d["pinned"] = {"b4": d["devices"][1]["id"]}
    p = placement.load(d)
    plan = placement.solve(d, "brute", time_limit=60)
    assert plan.status == Status.OPTIMAL
    assert plan.assignment["b4"] == d["devices"][1]["id"]
    assert len(set(plan.assignment.values())) == 2  # nobody holds the whole model
    assert plan.value == pytest.approx(_naive_optimum(p), rel=1e-12)


def test_brute_refuses_large_problems_with_a_clear_message():
    d = placement.generate("hybrid", 40, 8)
    with pytest.raises(InputError, match=r"brute refuses: 40 blocks x 8 devices means ~.* assignments, "
                                         r"limit 1,000,000"):
        placement.solve(d, "brute")
    # many orders: a wide DAG on 2 devices passes the assignment limit, not the candidate one
    d = placement.generate("dag", 18, 2, seed=1)
    p = placement.load(d)
    assert enumerate_assignments(p).shape[0] <= MAX_ASSIGNMENTS
    with pytest.raises(InputError, match=r"brute refuses: 18 blocks x 2 devices means .*candidates"):
        placement.solve(d, "brute")


def test_brute_honours_time_limit():
    d = placement.generate("chain", 11, 3, seed=2, objective="throughput")
    p = placement.load(d)
    cand = Brute().solve(p, Context(time_limit=0.0))
    assert cand.status in (Status.TIME_LIMIT, Status.NO_SOLUTION)


def test_refusal_of_a_huge_problem_names_the_size():
    """8**1000 assignments is beyond float range: the refusal must still be a clear InputError."""
    d = placement.generate("hybrid", 1000, 8, seed=1)
    with pytest.raises(InputError, match=r"brute refuses: 1000 blocks x 8 devices means ~10\^903 assignments, limit 1,000,000"):
        placement.solve(d, "brute", time_limit=5)

"""The contract every registered method keeps (fed from the registry: a new method gets it
for free): every block placed once, memory, pins and allowed devices respected, the
reported value is the evaluator's, the bound is below it, the time limit is honoured,
results are deterministic for a seed, and the input is never changed."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest

import placement
from placement.errors import InputError
from placement.method import TIME_LIMIT_MARGIN_FRACTION, TIME_LIMIT_MARGIN_S
from placement.plan import Status
from placement.registry import METHODS, get_method

from .conftest import diamond_dict


def _tiny(objective) -> dict:
    """6 blocks on 3 devices with memory binding, a pin and an allowed_devices entry."""
    d = placement.generate("hybrid", 6, 3, device_set="iot", network="mesh", seed=5, objective=objective)
    d["pinned"] = {"b0": d["devices"][0]["id"]}
    d["model"]["blocks"][3]["allowed_devices"] = [d["devices"][1]["id"], d["devices"][2]["id"]]
    blocks = d["model"]["blocks"]
    weights = sum(b["params_bytes"] for b in blocks)
    peak = max(b["activation_bytes"] for b in blocks)
    for dev in d["devices"]:
        dev["memory_bytes"] = peak + 0.6 * weights  # no device holds the whole model
    return d


OBJECTIVES = ["latency", "throughput", "energy", {"latency": 1.0, "energy": 0.2}]
CASES = [(name, i) for name in METHODS for i in range(len(OBJECTIVES))]


def _objective_name(objective) -> str:
    return objective if isinstance(objective, str) else "weighted"


@pytest.fixture(scope="module")
def oracle_values():
    """The optimum of each tiny case, by brute force (the oracle)."""
    return {}


@pytest.mark.parametrize("method, k", CASES, ids=[f"{m}-{_objective_name(OBJECTIVES[k])}" for m, k in CASES])
def test_contract_on_tiny_problem(method, k):
    objective = OBJECTIVES[k]
    m = get_method(method)
    if _objective_name(objective) not in m.objectives:
        pytest.skip(f"{method} does not support {_objective_name(objective)} (registry says so)")
    d = _tiny(objective)
    before = copy.deepcopy(d)
    plan = placement.solve(d, method, time_limit=10, seed=3)
    assert d == before, "solve() changed its input"
    p = placement.load(d)
    if method == "single":
        assert plan.status == Status.NO_SOLUTION and "no single device" in plan.message
        return
    assert plan.status in (Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT), plan.message
    assert plan.violations == []
    assert sorted(plan.assignment) == sorted(b.id for b in p.blocks)          # every block once
    assert plan.assignment["b0"] == d["pinned"]["b0"]
    assert plan.assignment["b3"] in d["model"]["blocks"][3]["allowed_devices"]
    for dev, used in plan.metrics["memory_bytes"].items():
        assert used <= p.memory[p.device_index[dev]] * (1 + 1e-9)
    again = placement.evaluate(d, plan)                                        # the evaluator's value
    assert plan.value == pytest.approx(again.value, rel=1e-9)
    assert plan.metrics == again.metrics
    assert plan.bound is not None and plan.bound <= plan.value * (1 + 1e-9)
    assert plan.gap == pytest.approx((plan.value - plan.bound) / plan.value)
    if method != "brute":
        brute = placement.solve(d, "brute", time_limit=60)
        assert brute.status == Status.OPTIMAL
        assert plan.value >= brute.value * (1 - 1e-9), "better than the proven optimum"
        assert plan.bound <= brute.value * (1 + 1e-9), "bound above the proven optimum"
        if m.kind == "exact" and plan.status == Status.OPTIMAL:
            assert plan.value == pytest.approx(brute.value, rel=1e-6)
    # deterministic for a seed
    again = placement.solve(d, method, time_limit=10, seed=3)
    assert again.assignment == plan.assignment


@pytest.mark.parametrize("method", list(METHODS))
def test_contract_diamond_pins(method):
    d = diamond_dict()
    d["pinned"] = {"t": "B"}
    plan = placement.solve(d, method, time_limit=10)
    assert plan.feasible, plan.message
    assert plan.assignment["t"] == "B"


@pytest.mark.parametrize("method", list(METHODS))
def test_contract_time_limit(method):
    """A problem too large to finish: the method returns by the limit plus the documented margin,
    with a plan (or, for a method that refuses the size, a clear InputError)."""
    d = placement.generate("hybrid", 60, 8, device_set="iot", network="mesh", seed=2)
    limit = 2.0
    t0 = time.monotonic()
    try:
        plan = placement.solve(d, method, time_limit=limit)
    except InputError as exc:
        assert "refuse" in str(exc)
        return
    wall = time.monotonic() - t0
    assert wall <= limit + TIME_LIMIT_MARGIN_S + TIME_LIMIT_MARGIN_FRACTION * limit + 1.0  # +1 s: load, bound
    assert plan.solve_time_s <= limit + TIME_LIMIT_MARGIN_S + TIME_LIMIT_MARGIN_FRACTION * limit
    if plan.status == Status.OPTIMAL:
        assert plan.gap is not None and plan.gap <= 1e-6
    assert plan.status != Status.ERROR, plan.message


def test_registry_is_the_one_list():
    from placement.cli import main  # noqa: F401  (the CLI reads the same registry)
    assert [i.name for i in placement.methods()] == list(METHODS)
    for info in placement.methods():
        assert info.kind in ("exact", "heuristic", "baseline"), info
        assert set(info.objectives) <= {"latency", "throughput", "energy", "weighted"}
        assert info.guarantee


def test_unknown_method_lists_valid_names():
    with pytest.raises(placement.MethodError, match=r"unknown method 'nope': expected one of single, heft, dp, local, cpsat, milp, brute"):
        placement.solve(diamond_dict(), "nope")


def test_assignment_arrays_are_device_indices():
    p = placement.load(diamond_dict())
    cand = get_method("single").solve(p, placement.method.Context(time_limit=5))
    assert isinstance(cand.assignment, np.ndarray) and cand.assignment.shape == (4,)

"""The API's honesty rules: whatever a method claims, the plan says what the evaluator found."""

from __future__ import annotations

import numpy as np
import pytest

import placement
from placement import registry
from placement.method import Candidate, Method
from placement.plan import Status

from .conftest import diamond_dict


class _Fake(Method):
    """A method that returns whatever the test tells it to."""

    name = "fake"
    kind = "heuristic"
    guarantee = "none"
    summary = "test double"
    options = {"answer": "the Candidate to return", "boom": "raise this"}

    def solve(self, problem, ctx):
        if "boom" in ctx.options:
            raise RuntimeError(ctx.options["boom"])
        return ctx.options["answer"]


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(registry.METHODS, "fake", "tests.test_api:_Fake")
    registry._cache.pop("fake", None)
    yield "fake"
    registry._cache.pop("fake", None)


def test_a_crashing_method_gives_an_error_plan(fake, monkeypatch):
    monkeypatch.delenv("PLACEMENT_DEBUG", raising=False)
    plan = placement.solve(diamond_dict(), fake, boom="solver exploded")
    assert plan.status == Status.ERROR and "RuntimeError: solver exploded" in plan.message
    assert "Traceback" in plan.stats["traceback"]


def test_an_infeasible_candidate_becomes_no_solution(fake):
    d = diamond_dict()
    d["devices"][0]["memory_bytes"] = 1000
    plan = placement.solve(d, fake, answer=Candidate(np.zeros(4, dtype=int), status=Status.OPTIMAL))
    assert plan.status == Status.NO_SOLUTION
    assert "best plan found breaks: memory: device 'A' needs" in plan.message
    assert plan.violations and not plan.feasible


def test_an_optimal_claim_far_from_the_bound_is_downgraded(fake):
    # everything on A: latency 0.8; the true optimum is lower, and the bound says so
    plan = placement.solve(diamond_dict(), fake, answer=Candidate(np.zeros(4, dtype=int), status=Status.OPTIMAL))
    assert plan.value == pytest.approx(0.8)
    assert plan.status == Status.FEASIBLE and "gap is" in plan.message


def test_a_methods_bound_is_combined_with_the_cheap_one(fake):
    low = placement.solve(diamond_dict(), fake, answer=Candidate(np.zeros(4, dtype=int), bound=0.0))
    assert low.bound > 0.0                      # the cheap bound is larger than a useless 0
    high = placement.solve(diamond_dict(), fake, answer=Candidate(np.zeros(4, dtype=int), bound=0.7))
    assert high.bound == pytest.approx(0.7)
    assert high.gap == pytest.approx((0.8 - 0.7) / 0.8)


def test_no_assignment_is_no_solution_with_the_methods_reason(fake):
    plan = placement.solve(diamond_dict(), fake, answer=Candidate(None, message="gave up"))
    assert plan.status == Status.NO_SOLUTION and plan.message == "gave up" and plan.assignment == {}
    proven = placement.solve(diamond_dict(), fake, answer=Candidate(None, status=Status.INFEASIBLE, message="proof"))
    assert proven.status == Status.INFEASIBLE and proven.bound is None


def test_solve_accepts_problem_dict_and_path(tmp_path):
    import json
    f = tmp_path / "d.json"
    f.write_text(json.dumps(diamond_dict()))
    values = {placement.solve(x, "single").value for x in (diamond_dict(), str(f), f, placement.load(f))}
    assert len(values) == 1


def test_objective_override_and_input_checks():
    plan = placement.solve(diamond_dict(), "single", objective="throughput")
    assert plan.objective == "throughput" and plan.value == plan.metrics["period_s"]
    with pytest.raises(placement.InputError, match=r"time_limit: expected a number of seconds >= 0, found -1"):
        placement.solve(diamond_dict(), "single", time_limit=-1)
    with pytest.raises(placement.MethodError, match=r"method 'single' has no option \['depth'\]; it takes: none"):
        placement.solve(diamond_dict(), "single", depth=3)


def test_constraint_lower_bound_proves_infeasibility():
    d = diamond_dict()
    d["constraints"] = {"latency_s": 0.01}       # the critical path alone takes longer
    plan = placement.solve(d, "single")
    assert plan.status == Status.INFEASIBLE
    assert "latency_s must be at most 0.01, but no plan can do better than" in plan.message


def test_a_plan_that_meets_the_proven_bound_is_optimal(fake):
    plan = placement.solve(diamond_dict(), fake, answer=Candidate(np.zeros(4, dtype=int), bound=0.8))
    assert plan.value == pytest.approx(0.8) and plan.status == Status.OPTIMAL
    assert "value meets the proven lower bound" in plan.message

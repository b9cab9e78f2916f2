"""The API's honesty rules: whatever a method claims, the plan says what the evaluator found."""

from __future__ import annotations

import numpy as np
import pytest

import placement
from placement import registry
from placement.method import Candidate, Method, Option
from placement.plan import Status

from .conftest import diamond_dict


class _Fake(Method):
    """A method that returns whatever the test tells it to."""

    name = "fake"
    kind = "heuristic"
    guarantee = "none"
    summary = "test double"
    options = (Option("answer", object, None, "the Candidate to return"),
               Option("boom", str, None, "raise this"))

    def solve(self, problem, ctx):
        if ctx.options["boom"]:
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


def test_evaluate_does_not_trust_a_plan_files_bound_or_status():
    d = placement.generate("dag", 4, 3, seed=0)
    p = placement.load(d)
    claimed = placement.solve(d, "single").to_dict()
    assert claimed["value"] > p.lower_bound() * (1 + 1e-3)         # single is not provably optimal here
    for lie in (1e9, claimed["value"]):                              # above the value, and at it
        claimed["status"], claimed["bound"] = "optimal", lie
        r = placement.evaluate(d, claimed)
        assert r.bound == p.lower_bound()                            # the package's own bound only
        assert r.status == Status.FEASIBLE


def test_an_optimal_claim_does_not_survive_a_change_of_objective():
    d = placement.generate("dag", 4, 3, seed=0)
    best_latency = placement.solve(d, "brute", time_limit=30)
    assert best_latency.status == Status.OPTIMAL
    r = placement.evaluate(d, best_latency.to_dict(), objective="energy")
    energy = placement.load(d).with_objective("energy")
    assert r.bound == energy.lower_bound()              # neither the latency plan's bound nor its status
    assert r.status == (Status.OPTIMAL if r.value <= energy.lower_bound() * (1 + 1e-6) else Status.FEASIBLE)
    assert r.status == Status.FEASIBLE                  # here the latency optimum is not energy-optimal


def test_an_infeasible_plan_has_no_bound_and_no_gap(fake):
    d = diamond_dict()
    d["devices"][0]["memory_bytes"] = 1000                           # everything on A overflows it
    plan = placement.solve(d, fake, answer=Candidate(np.zeros(4, dtype=int), bound=0.8))
    assert plan.status == Status.NO_SOLUTION and plan.bound is None and plan.gap is None
    r = placement.evaluate(d, plan.to_dict())
    assert r.status == Status.NO_SOLUTION and r.bound is None and r.gap is None


def test_memory_precheck_uses_the_evaluators_tolerance():
    d = {"model": {"blocks": [{"id": "a", "flops": 1.0, "params_bytes": 1e9}]},
         "devices": [{"id": "x", "flops_per_s": 1.0, "memory_bytes": 1e9 * (1 - 5e-10)}]}
    plan = placement.solve(d, "single")
    assert plan.status != Status.INFEASIBLE and plan.feasible


def test_split_ways_are_bounded():
    from .conftest import diamond_dict
    d = diamond_dict()
    d["model"]["blocks"][0]["split"] = {"ways": [1_000_000], "mode": "tensor"}
    with pytest.raises(placement.ProblemError, match=r"model\.blocks\[0\]\.split\.ways\[0\]: expected a number <= 64"):
        placement.load(d)


def test_gap_is_not_clamped():
    from placement.plan import gap_of
    assert gap_of(1.0, 2.0) == pytest.approx(-1.0)      # an invalid bound shows


def test_objective_typo_names_the_closest_metric():
    with pytest.raises(placement.InputError, match=r"^objective: expected one of latency, throughput, "
                       r"energy, found 'energi' \(did you mean 'energy'\?\)$"):
        placement.solve(diamond_dict(), "heft", objective={"latency": 1.0, "energi": 0.2})


@pytest.mark.parametrize("weights", [{"latency": 0.0}, {"latency": 0, "energy": 0.0}])
def test_all_zero_weights_are_rejected(weights):
    with pytest.raises(placement.InputError, match=r"^objective: expected at least one positive weight"):
        placement.solve(diamond_dict(), "heft", objective=weights)
    with pytest.raises(placement.InputError, match=r"^objective: expected at least one positive weight"):
        placement.load(diamond_dict()).with_objective(weights)


def test_a_negative_weight_is_rejected():
    with pytest.raises(placement.InputError, match=r"^objective.energy: expected a finite weight >= 0, found -1"):
        placement.solve(diamond_dict(), "heft", objective={"latency": 1.0, "energy": -1})


def test_lower_bound_is_cached_per_objective():
    p = placement.load(diamond_dict())
    from placement import bounds
    assert p.lower_bound() == bounds.lower_bound(p)
    e = p.with_objective("energy")
    assert e.lower_bound() == bounds.lower_bound(e) != p.lower_bound()
    assert p.with_constraints({"latency_s": 10.0}).__dict__.get("_cached_lower_bound") is None

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
    """The optimum of each tiny case by brute force (the oracle), solved once per objective."""
    cache: dict[int, placement.Plan] = {}

    def optimum(k: int) -> placement.Plan:
        if k not in cache:
            cache[k] = placement.solve(_tiny(OBJECTIVES[k]), "brute", time_limit=60)
            assert cache[k].status == Status.OPTIMAL, cache[k].message
        return cache[k]
    return optimum


@pytest.mark.parametrize("method, k", CASES, ids=[f"{m}-{_objective_name(OBJECTIVES[k])}" for m, k in CASES])
def test_contract_on_tiny_problem(method, k, oracle_values):
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
        brute = oracle_values(k)
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
    with pytest.raises(placement.MethodError, match=r"unknown method 'nope': expected one of "
                       + ", ".join(METHODS) + "$"):
        placement.solve(diamond_dict(), "nope")


def test_assignment_arrays_are_device_indices():
    """A candidate's assignment is device indices in problem order: on the diamond, single
    puts all four blocks on B (index 1: twice A's speed, room for all), and the evaluator
    scores exactly that plan."""
    p = placement.load(diamond_dict())
    cand = get_method("single").solve(p, placement.method.Context(time_limit=5))
    assert isinstance(cand.assignment, np.ndarray) and cand.assignment.dtype.kind == "i"
    assert cand.assignment.tolist() == [p.device_index["B"]] * 4
    plan = placement.solve(diamond_dict(), "single")
    assert plan.assignment == {"s": "B", "l": "B", "r": "B", "t": "B"}


@pytest.mark.parametrize("method", list(METHODS))
def test_contract_time_limit_zero_returns_at_once(method):
    """``time_limit=0``: every method returns at once (well within the margin) with its best
    plan so far or none -- never an error, never a plan that breaks a rule."""
    d = placement.generate("hybrid", 30, 6, device_set="iot", network="mesh", seed=4)
    get_method(method).warm_up()
    t0 = time.monotonic()
    try:
        plan = placement.solve(d, method, time_limit=0)
    except InputError as exc:                     # brute refusing the size, before any work
        assert "refuse" in str(exc)
        return
    assert time.monotonic() - t0 <= TIME_LIMIT_MARGIN_S + 1.0     # + 1 s: load, bound
    assert plan.solve_time_s <= 0.5, "a limit of 0 is a limit"    # cpsat built its model: 1.9 s
    assert plan.status in (Status.TIME_LIMIT, Status.NO_SOLUTION, Status.FEASIBLE, Status.OPTIMAL), plan.message
    assert not plan.violations


@pytest.mark.parametrize("method", [m for m in METHODS if get_method(m).options])
def test_a_bad_option_value_names_the_option(method):
    """Every declared option is typed: a value of the wrong type is an InputError naming the
    method, the option and what was expected, before the method runs (CLI exit 2)."""
    for opt in get_method(method).options:
        bad = "abc" if opt.type in (int, float, bool) else None
        if opt.choices is not None:
            bad = "no-such-choice"
        if bad is None:
            continue
        with pytest.raises(InputError, match=rf"^{method} option {opt.name}: expected .*, found 'abc'$"
                           .replace("'abc'", repr(bad))):
            placement.solve(diamond_dict(), method, time_limit=5, **{opt.name: bad})


def test_cli_bad_option_exits_2_naming_it(tmp_path, capsys):
    from placement.cli import main

    path = tmp_path / "d.json"
    path.write_text(__import__("json").dumps(diamond_dict()))
    assert main(["solve", str(path), "-m", "local", "--option", "patience=abc"]) == 2
    err = capsys.readouterr().err
    assert "local option patience: expected a whole number >= 1, found 'abc'" in err
    assert "Traceback" not in err


def test_unknown_option_names_the_closest():
    with pytest.raises(placement.MethodError, match=r"method 'local' has no option \['patiense'\] "
                       r"\(did you mean 'patience'\?\); it takes: patience, chains, max_moves"):
        placement.solve(diamond_dict(), "local", patiense=3)


def test_registry_declares_every_feature_for_every_method():
    from placement.method import FEATURES

    for info in placement.methods():
        assert set(info.features) == set(FEATURES), info.name
        assert all(isinstance(v, bool) for v in info.features.values())


def test_a_feature_a_method_does_not_support_is_refused(monkeypatch):
    """SPEC section 8: a problem that uses a feature the method lacks is refused with a
    message naming the feature and the methods that support it; split choices are planned
    with max(ways) and said so."""
    from placement.errors import UnsupportedFeatureError
    from placement.problem import Problem

    p = placement.load(diamond_dict())
    monkeypatch.setattr(Problem, "features", frozenset({"media"}))
    # since issue 15: single, heft, local, cpsat and brute model media; dp and milp do not
    with pytest.raises(UnsupportedFeatureError, match=r"method 'dp' does not support media "
                       r"\(SPEC section 8\); methods that do: single, heft, local, cpsat, brute$") as exc:
        placement.solve(p, "dp", time_limit=5)
    assert exc.value.feature == "media"
    with pytest.raises(UnsupportedFeatureError, match=r"method 'milp' does not support media"):
        placement.solve(p, "milp", time_limit=5)
    assert placement.solve(p, "heft", time_limit=5).feasible
    monkeypatch.setattr(Problem, "features", frozenset({"split_choice"}))
    # (every registered method chooses the ways since issue 13: one made not to)
    from placement.registry import get_method
    heft = get_method("heft")
    monkeypatch.setattr(type(heft), "features", heft.features - {"split_choice"})
    plan = placement.solve(p, "heft", time_limit=5)
    assert "heft cannot choose split ways: it plans every split block with max(ways)" in plan.message


def test_readme_methods_table_is_the_registry():
    """The README's table of methods lists exactly the registered methods, in registry order,
    each with the kind the method declares (the lead writes the README; this keeps it true)."""
    import re

    from .conftest import ROOT

    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", (ROOT / "README.md").read_text(), re.M)
    table = [(name, kind.strip()) for name, kind in rows if name in METHODS]
    assert [name for name, _ in table] == list(METHODS)       # each once, in registry order
    for name, kind in table:
        assert kind.split(",")[0] == get_method(name).kind, (name, kind)

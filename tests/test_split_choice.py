"""Split degree as a decision of the plan (issue 13, SPEC sections 6 and 7).

The problem model (`Problem.split_options`, `split`, `expand`, `split_combinations`), plan
files that carry the choice, the evaluator on a plan's choice, bounds valid over every
choice, and the exact methods against the fixed-choice problems: on seeded tiny problems
with ``ways: [1, 2]`` the optimum over the choices equals the best of the problems written
with every choice fixed (for one split block: the better of never split and always split).
"""

from __future__ import annotations

import copy
import json
import re

import pytest

import placement
from placement import bounds
from placement.cli import main
from placement.errors import PlanError, ProblemError
from placement.plan import Plan, Status

from .conftest import diamond_dict

OBJECTIVES = ["latency", "throughput", "energy", {"latency": 1.0, "energy": 0.5}]
TOL = 1e-6


def _diamond(ways=(1, 2), mode="tensor", block="r", **extra) -> dict:
    d = diamond_dict()
    for b in d["model"]["blocks"]:
        if b["id"] == block:
            b["split"] = {"ways": list(ways), "mode": mode, **extra}
    return d


def _seeded(seed: int, n_split: int = 1) -> dict:
    """A tiny generated DAG (4 blocks, 2 devices, no medium) whose ``n_split`` heaviest
    blocks may run whole or in 2 shards."""
    shape = ("chain", "dag", "hybrid")[seed % 3]
    d = placement.generate(shape, 4, 2, seed=seed, media=False, split=n_split / 4,
                           device_set=("homogeneous", "iot", "edge")[seed % 3])
    modes = ("tensor", "spatial")
    k = 0
    for b in d["model"]["blocks"]:
        if b.get("split"):
            b["split"] = {"ways": [1, 2], "mode": modes[(seed + k) % 2],
                          "overhead_flops": b["flops"] * 0.05 * (seed % 2),
                          "halo_bytes": 1000.0 * (seed % 3)}
            k += 1
    assert k == n_split
    return d


def _fixed(d: dict, choice: dict[str, int]) -> dict:
    """The problem file with every split block's choice fixed (``ways: [w]``)."""
    out = copy.deepcopy(d)
    for b in out["model"]["blocks"]:
        if b["id"] in choice:
            b["split"]["ways"] = [choice[b["id"]]]
    return out


_BRUTE: dict[str, tuple[float, dict]] = {}


def _brute_value(d, objective) -> tuple[float, dict]:
    """brute's optimum (cached: the fixed-choice problems are shared by the methods)."""
    key = json.dumps([d, objective], sort_keys=True)
    if key not in _BRUTE:
        plan = placement.solve(d, "brute", objective=objective, time_limit=60)
        assert plan.status == Status.OPTIMAL, plan.message
        _BRUTE[key] = (plan.value, plan.split)
    return _BRUTE[key]


# ------------------------------------------------------------------ problem model
def test_problem_model_of_choices():
    p = placement.load(_diamond((4, 1, 2)))
    assert dict(p.split_options) == {"r": (1, 2, 4)}
    assert dict(p.split) == dict(p.default_split) == {"r": 4}
    assert [b.id for b in p.blocks] == ["s", "l", "r#0", "r#1", "r#2", "r#3", "t"]
    assert "split_choice" in p.features and p.n_split_combinations == 3
    assert list(p.split_combinations()) == [{"r": 1}, {"r": 2}, {"r": 4}]
    whole = p.expand({"r": 1})
    assert [b.id for b in whole.blocks] == ["s", "l", "r", "t"] and dict(whole.split) == {"r": 1}
    assert whole.expand(None) is p and p.expand({}) is p and p.expand({"r": 4}) is p
    assert p.expand({"r": 1}) is whole                          # cached per choice
    assert whole.split_options == p.split_options and "split_choice" in whole.features
    # the expansion is the same problem: objective and constraints carried
    q = p.with_objective("energy").with_constraints({"latency_s": 9.0})
    e = q.expand({"r": 2})
    assert e.objective.name == "energy" and dict(e.constraints) == {"latency_s": 9.0}
    assert [b.id for b in e.blocks] == ["s", "l", "r#0", "r#1", "t"]
    # a single option is no choice, but it is listed
    one = placement.load(_diamond((2,)))
    assert dict(one.split_options) == {"r": (2,)} and "split_choice" not in one.features
    none = placement.load(diamond_dict())
    assert dict(none.split_options) == {} and dict(none.split) == {} and none.n_split_combinations == 1
    assert list(none.split_combinations()) == [{}] and none.expand(None) is none


def test_bad_choice_names_the_block_and_the_ways():
    p = placement.load(_diamond((1, 2)))
    with pytest.raises(ProblemError, match=r"split\.r: expected one of the ways \[1, 2\] of block 'r', found 3"):
        p.expand({"r": 3})
    with pytest.raises(ProblemError, match=r"split\.x: expected a block with split ways \(the problem's: r\)"):
        p.expand({"x": 1})


def test_expansion_equals_the_file_written_with_that_choice():
    d = _diamond((1, 2, 4), mode="spatial", halo_bytes=500.0, overhead_flops=1e6)
    p = placement.load(d)
    for w in (1, 2, 4):
        q, f = p.expand({"r": w}), placement.load(_fixed(d, {"r": w}))
        assert [b.id for b in q.blocks] == [b.id for b in f.blocks]
        assert (q.compute_time == f.compute_time).all() and (q.edge_bytes == f.edge_bytes).all()
        assert (q.params == f.params).all() and (q.in_bytes == f.in_bytes).all()


# ------------------------------------------------------------------------- plans
def test_choices_round_trip_in_plan_files(tmp_path):
    d = _seeded(3)
    plan = placement.solve(d, "brute", time_limit=60)
    assert plan.status == Status.OPTIMAL and set(plan.split) == set(placement.load(d).split_options)
    f = tmp_path / "plan.json"
    plan.save(f)
    data = json.loads(f.read_text())
    assert data["split"] == plan.split
    back = Plan.load(f)
    assert back.split == plan.split and back.to_dict() == plan.to_dict()
    again = placement.evaluate(d, f)
    assert again.split == plan.split and again.value == pytest.approx(plan.value, rel=1e-12)
    assert set(again.assignment) == set(plan.assignment)


def test_methods_that_cannot_choose_carry_the_default_split(monkeypatch):
    # every method chooses since split-use (single keeps blocks whole): one made not to
    from heuristics.single import Single
    monkeypatch.setattr(Single, "features", Single.features - {"split_choice"})
    monkeypatch.setattr(Single, "solve", Single.solve_fixed)
    d = _diamond((1, 2))
    plan = placement.solve(d, "single", time_limit=10)
    assert plan.split == {"r": 2} and "r#1" in plan.assignment
    assert "cannot choose split ways" in plan.message
    # and a problem with a single-option split block still writes it
    assert placement.solve(_diamond((2,)), "single", time_limit=10).split == {"r": 2}
    assert placement.solve(diamond_dict(), "single", time_limit=10).split is None


def test_evaluator_on_plan_split_equals_the_fixed_problem():
    d = _diamond((1, 2, 4), mode="spatial", halo_bytes=2000.0)
    p = placement.load(d)
    for choice in p.split_combinations():
        q = p.expand(choice)
        # a plan for that expansion: every block on the fastest device B but the shards spread
        assignment = {b.id: ("A" if b.id.endswith("#1") or b.id == "l" else "B") for b in q.blocks}
        plan = {"assignment": assignment, "split": choice}
        got = placement.evaluate(d, plan)
        ref = placement.evaluate(_fixed(d, choice), {"assignment": assignment})
        assert got.split == choice and ref.split == choice
        assert got.value == pytest.approx(ref.value, rel=1e-12)
        assert got.metrics == ref.metrics and got.schedule == ref.schedule


def test_bad_choices_in_plan_files_exit_2_naming_the_block(tmp_path, capsys):
    d = _diamond((1, 2))
    prob = tmp_path / "p.json"
    prob.write_text(json.dumps(d))
    whole = {"s": "A", "l": "A", "r": "B", "t": "A"}
    cases = {
        "bad_way": ({"assignment": whole, "split": {"r": 3}}, r"split\.r: block 'r' may be split \[1, 2\] ways, the plan chooses 3"),
        "unknown": ({"assignment": whole, "split": {"r": 1, "q": 2}}, r"split\.q: 'q' is not a split block of the problem"),
        "not_int": ({"assignment": whole, "split": {"r": "two"}}, r"split: expected an object of split block id -> number of ways"),
        # no choice: max(ways) = 2, but the assignment names the whole block
        "other_expansion": ({"assignment": whole}, r"shards of another expansion of split block 'r' \(split 2 ways here"),
        "shards_of_2_with_choice_1": ({"assignment": {"s": "A", "l": "A", "r#0": "B", "r#1": "A", "t": "A"},
                                       "split": {"r": 1}}, r"split block 'r' \(split 1 ways here, the plan names 'r#0', 'r#1'"),
    }
    for name, (plan, pattern) in cases.items():
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(plan))
        assert main(["evaluate", str(prob), str(f)]) == 2, name
        err = capsys.readouterr().err
        assert str(f) in err and "Traceback" not in err, (name, err)
        assert re.search(pattern, err), (name, err)
        with pytest.raises(PlanError, match=pattern):
            placement.evaluate(d, f)
    # the same plans, fixed, evaluate fine
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"assignment": whole, "split": {"r": 1}}))
    assert main(["evaluate", str(prob), str(ok)]) == 0


def test_split_violations_are_kind_split():
    from placement.evaluator import split_violations
    p = placement.load(_diamond((1, 2)))
    v = split_violations(p, {"r": 4, "z": 1})
    assert [x.kind for x in v] == ["split", "split"]
    assert "split.r" in v[0].message and "[1, 2]" in v[0].message and "split.z" in v[1].message
    assert split_violations(p, {"r": 1}) == [] and split_violations(p, None) == []


# ------------------------------------------------------------------------- bounds
@pytest.mark.parametrize("seed", range(6))
def test_bounds_hold_over_every_choice(seed, monkeypatch):
    """The cheap bound (least over the expansions) and the relaxation of every choice at
    once (forced: enumeration limit 0) never exceed the optimum over the choices; the
    relaxation is never above the least over the expansions' bounds."""
    d = _seeded(seed, n_split=1 + seed % 2)
    for obj in ("latency", "throughput", "energy"):
        best, _ = _brute_value(d, obj)
        p = placement.load(d).with_objective(obj)
        lb = bounds.lower_bound(p)
        assert lb <= best * (1 + 1e-9), (obj, lb, best)
        # a fresh problem (no cached bound), relaxation forced
        monkeypatch.setattr(bounds, "SPLIT_ENUMERATION_LIMIT", 0)
        q = placement.load(copy.deepcopy(d)).with_objective(obj)
        relaxed = bounds.lower_bound(q)
        monkeypatch.setattr(bounds, "SPLIT_ENUMERATION_LIMIT", 8)
        assert relaxed <= best * (1 + 1e-9), (obj, relaxed, best)
        assert relaxed > 0


def test_bound_is_at_least_the_least_over_the_expansions():
    """The bound over every choice is no weaker than the least of the expansions' own
    bounds (0.38 s, r split 4 ways); the phase DP over the choices is stronger here (0.41 s:
    a consumer waits for the last shard of r off its device, `split_bounds._gather`); it
    stays below the optimum over every choice (0.48 s, r whole), and every expansion of the
    family reports the same bound."""
    d = _diamond((1, 2, 4))
    p = placement.load(d)
    each = [bounds.lower_bound(placement.load(_fixed(d, c))) for c in p.split_combinations()]
    best = placement.solve(d, "brute", time_limit=60)
    assert min(each) == pytest.approx(0.38, rel=1e-12) and best.value == pytest.approx(0.48, rel=TOL)
    assert p.lower_bound() == pytest.approx(0.41, rel=1e-12)
    assert min(each) <= p.lower_bound() <= best.value * (1 + 1e-9)
    assert p.expand({"r": 1}).lower_bound() == pytest.approx(p.lower_bound(), rel=1e-12)


def test_infeasibility_is_judged_over_every_choice():
    """Spatial shards replicate the weights: 4 shards of r exceed every device, the whole
    block fits. The cheap checks must not call that problem infeasible."""
    d = _diamond((1, 4), mode="spatial")
    for b in d["model"]["blocks"]:
        if b["id"] == "r":
            b["params_bytes"] = 6e5
    for dev in d["devices"]:
        dev["memory_bytes"] = 1e6
    plan = placement.solve(d, "brute", time_limit=60)
    assert plan.status == Status.OPTIMAL and plan.split == {"r": 1}
    assert placement.solve(_fixed(d, {"r": 4}), "brute", time_limit=60).status == Status.INFEASIBLE


# ------------------------------------------------------------ exact over choices
EXACT = ["brute", "cpsat", "milp"]


@pytest.mark.parametrize("method", EXACT)
@pytest.mark.parametrize("seed", range(8))
def test_exact_over_choices_equals_best_fixed_choice(method, seed):
    """The optimum over the choices (cpsat and milp: their model alone, no warm start) is
    the best of the problems written with each choice fixed; seeds add a second split
    block, idle energy, a latency cap, or a block with ways [1, 2, 4]."""
    d = _seeded(seed, n_split=1 + (seed % 4 == 3))
    if seed % 4 == 1:
        d["count_idle"] = True
    if seed % 4 == 2:
        d["constraints"] = {"latency_s": 10.0}
    if seed == 6:
        for b in d["model"]["blocks"]:
            if b.get("split"):
                b["split"]["ways"] = [1, 2, 4]
    p = placement.load(d)
    choices = list(p.split_combinations())
    options = {} if method == "brute" else {"warm": False}
    for obj in OBJECTIVES:
        fixed = [_brute_value(_fixed(d, c), obj)[0] for c in choices]
        plan = placement.solve(d, method, objective=obj, time_limit=20, **options)
        assert plan.status == Status.OPTIMAL, (method, obj, plan.message)
        assert plan.value == pytest.approx(min(fixed), rel=TOL), (method, obj, plan.value, fixed)
        assert plan.bound <= min(fixed) * (1 + 1e-9)
        assert plan.split in choices
        # the plan is a plan of its own choice's expansion
        assert set(plan.assignment) == {b.id for b in p.expand(plan.split).blocks}


def test_brute_refusal_counts_the_choices(monkeypatch):
    from solvers import brute
    d = _diamond((1, 2, 4))
    monkeypatch.setattr(brute, "MAX_ASSIGNMENTS", 2 ** 7)   # each expansion fits alone (2^4, 2^5, 2^7), not all 176
    with pytest.raises(placement.InputError, match=r"brute refuses: 3 split choices x 2 devices mean ~176 assignments in all"):
        placement.solve(d, "brute", time_limit=10)


def _with_media(seed: int) -> dict:
    d = _seeded(seed)
    ids = [dev["id"] for dev in d["devices"]]
    d["network"]["media"] = [{"id": "air", "devices": ids}]
    return d


def _with_scenarios(seed: int) -> dict:
    from placement.generator import add_scenarios
    d = _seeded(seed)
    return add_scenarios(d, 2, seed)


@pytest.mark.parametrize("make", [_with_media, _with_scenarios], ids=["media", "scenarios"])
@pytest.mark.parametrize("seed", [0, 1])
def test_cpsat_over_choices_with_media_and_scenarios_equals_brute(make, seed):
    d = make(seed)
    assert {"split_choice"} < placement.load(d).features
    for obj in ("latency", "energy"):
        ref = placement.solve(d, "brute", objective=obj, time_limit=60)
        assert ref.status == Status.OPTIMAL, ref.message
        plan = placement.solve(d, "cpsat", objective=obj, time_limit=20)
        # optimal, or proved optimal on its integer time grid only: then `solve` honestly says
        # feasible, with the grid's rounding as the gap (a few 1e-6 at most)
        assert plan.status == Status.OPTIMAL or (
            plan.status == Status.FEASIBLE and "proved optimality of its own model" in plan.message
            and plan.gap < 1e-5), (obj, plan.status, plan.message)
        assert plan.value == pytest.approx(ref.value, rel=TOL), (obj, plan.value, ref.value)
        assert plan.bound <= ref.value * (1 + 1e-9)


def test_cpsat_refuses_many_choices_with_scenarios_naming_the_combination(monkeypatch):
    from solvers import cpsat
    monkeypatch.setattr(cpsat, "ENUMERATE_CHOICES_MAX", 1)
    with pytest.raises(placement.InputError, match=r"cpsat: split choices with scenarios are solved one "
                       r"choice at a time, and this problem has 2 choices \(limit 1\)"):
        placement.solve(_with_scenarios(0), "cpsat", time_limit=5)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_cpsat_union_model_with_media_equals_brute_and_orders_the_air(seed):
    """Split choices with a shared medium go through the union model (one no-overlap per
    medium over optional transfer intervals), not one choice at a time: equal to brute on
    every objective, and the plan's medium order is the one the evaluator scores."""
    d = _with_media(seed)
    for obj in ("latency", "throughput", "energy"):
        ref = placement.solve(d, "brute", objective=obj, time_limit=60)
        plan = placement.solve(d, "cpsat", objective=obj, time_limit=20)
        assert "one at a time" not in (plan.message or "")
        assert plan.value == pytest.approx(ref.value, rel=TOL), (obj, plan.value, ref.value)
        assert plan.bound <= ref.value * (1 + 1e-9)
        # the plan file (its split choice and medium order) re-scores to the same value
        again = placement.evaluate(d, plan.to_dict(), objective=obj)
        assert again.value == pytest.approx(plan.value, rel=1e-12), (obj, again.value, plan.value)


def test_show_draws_the_plan_of_its_own_choice(tmp_path):
    d = _diamond((1, 2))
    q = placement.load(d).expand({"r": 1})
    plan = {"assignment": {b.id: "B" for b in q.blocks}, "split": {"r": 1}}
    drawn = placement.show(d, plan, tmp_path / "whole.png")
    assert drawn["bars"] == 4                                   # s, l, r, t: r whole
    plan2 = {"assignment": {b.id: "B" for b in placement.load(d).blocks}}    # default: 2 shards
    assert placement.show(d, plan2, tmp_path / "split.png")["bars"] == 5


def test_bytes_between_two_spatially_split_blocks_follow_the_bands():
    """Aligned bands (split.pair_bytes): u#k sends v#j the rows of its band that j's band plus
    halo reads; every consumer shard receives bytes / w + halo in all, as from a whole u."""
    from placement.split import pair_bytes
    n, halo = 1000.0, 50.0                       # h = 0.05 of the tensor, 0.025 each side
    # 2 x 2: own band 500 + the outer halo's 25 (counted as from a whole producer: the
    # transform's per-shard halo); the other side's shard sends the 25 rows across the cut
    assert pair_bytes(n, 2, 2, "spatial", halo, 0, 0, "spatial") == pytest.approx(525.0)
    assert pair_bytes(n, 2, 2, "spatial", halo, 1, 0, "spatial") == pytest.approx(25.0)
    assert pair_bytes(n, 2, 2, "spatial", halo, 0, 1, "spatial") == pytest.approx(25.0)
    # 4 -> 4: band 0 never reaches shard 2 or 3
    assert pair_bytes(n, 4, 4, "spatial", halo, 0, 2, "spatial") == 0.0
    assert pair_bytes(n, 4, 4, "spatial", halo, 0, 1, "spatial") == pytest.approx(25.0)
    for wu, wv in ((2, 2), (4, 4), (2, 4), (4, 2), (3, 2)):
        for kv in range(wv):
            total = sum(pair_bytes(n, wu, wv, "spatial", halo, ku, kv, "spatial") for ku in range(wu))
            assert total == pytest.approx(n / wv + halo)
    # a tensor producer's shards each hold a full-size partial: a spatial consumer shard gets
    # its band of every partial, plus the halo, from each
    assert pair_bytes(n, 2, 2, "spatial", halo, 0, 1, "tensor") == pytest.approx(n / 2 + halo)
    assert pair_bytes(n, 2, 4, "tensor", 0.0, 1, 3, "tensor") == pytest.approx(n)   # the all-reduce
    assert pair_bytes(n, 4, 1, None, 0.0, 2, None, "tensor") == pytest.approx(n)    # gather by a whole block


def test_brute_refuses_astronomically_many_choices_without_listing_them():
    """100 blocks with 30 split blocks of ways [1, 2, 4]: 3^30 choices. brute must refuse at
    once, by counting (listing the choices ran the scaling study out of memory)."""
    import time
    d = placement.generate("hybrid", 100, 8, seed=0, split=0.3)
    for blk in d["model"]["blocks"]:
        if "split" in blk:
            blk["split"]["ways"] = [1, 2, 4]
    p = placement.load(d)
    assert p.n_split_combinations == 3 ** 30
    t0 = time.monotonic()
    with pytest.raises(placement.InputError, match=r"brute refuses: 2.06e\+14 split choices x 8 devices mean at least ~10\^77 assignments"):
        placement.solve(p, "brute", time_limit=10)
    assert time.monotonic() - t0 < 5


# ------------------------------------------------------------------ co-located shards
def test_shards_on_one_device_run_whole_when_no_worse():
    """A method's plan with every block of the diamond on B, the spatial ``r`` as two shards
    (overhead flops: the shards cost more than the block): the API returns it with ``r``
    whole on B, which the evaluator scores better (hand-worked: 2 x (2e8 + 1e7) flops on B
    is 0.21 s, whole 0.2 s), and says so. (With ``s`` on A instead, the shards are better:
    r#0 computes while r#1's half of the input is on the link, and the merge is refused.)"""
    from placement.method import Candidate
    from placement.split_merge import merge_colocated

    d = _diamond((1, 2), mode="spatial", overhead_flops=1e7, halo_bytes=0)
    p = placement.load(d)
    q = p.expand({"r": 2})
    idx = q.block_index
    a = [1] * q.n_blocks
    ev = placement.evaluator.evaluate(q, a)
    choice, q2, ev2 = merge_colocated(p, {"r": 2}, q, ev)
    assert choice == {"r": 1} and "r" in q2.block_index
    assert ev2.assignment[q2.block_index["r"]] == 1
    assert ev2.value == pytest.approx(ev.value - 0.01, abs=1e-9)     # 10 ms less on B
    # through the API: a method's candidate is merged before it is scored
    from placement import api
    plan = api.plan_from_candidate(p, "test", Candidate(a, split={"r": 2}, message="split ways r:2"), 0.0)
    assert plan.split == {"r": 1} and plan.assignment["r"] == "B" and "shared one device" in plan.message
    assert "split ways r:1" in plan.message and "r:2" not in plan.message   # the message names the plan's ways
    assert plan.value == pytest.approx(ev2.value)
    a[idx["s"]] = 0
    assert merge_colocated(p, {"r": 2}, q, placement.evaluator.evaluate(q, a)) is None


@pytest.mark.parametrize("seed", range(6))
def test_solved_plans_keep_co_located_shards_only_where_whole_is_worse(seed):
    """After `placement.solve` every split block whose shards share one device is one that
    could not run whole without making the plan worse (merged alone, in either order)."""
    from placement.split_merge import _rewrite, colocated

    d = _seeded(seed, n_split=2)
    for method in ("heft", "local", "cpsat"):
        plan = placement.solve(d, method, time_limit=5)
        p = placement.load(d)
        q = p.expand(plan.split)
        ev = placement.evaluator.evaluate_ids(q, plan.assignment, plan.order)
        assert ev.value == pytest.approx(plan.value, rel=1e-9)
        for o, dev in colocated(q, ev.assignment, p.split_options).items():
            assert _rewrite(p, plan.split, q, ev, {o: dev}) is None, (method, o)

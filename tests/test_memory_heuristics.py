"""Heuristics that plan memory (issue 14): list scheduling that reserves room for the blocks
still to come, the period and energy descents, the CP-SAT window search (LNS) of `local`,
`dp`'s honesty on DAGs, and every method's time limit on a large problem."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest

import placement
from placement.evaluator import evaluate
from placement.plan import Status
from placement.registry import get_method

from heuristics._common import masked_ct, optimistic_cost_table, order_by, pack_fallback, schedule_order, \
    topo_position, upward_rank_mean
from heuristics._greedy import balance_descent, energy_descent
from heuristics._list_schedule import Reserve, _NoRoom, list_schedule, memory_binds
from heuristics._common import Memory

#: seeded IoT problems (generator arguments, memory scale) on which the plain HEFT pass (upward
#: rank, lookahead) runs out of memory although a memory-feasible plan exists (found by a
#: CP-SAT packing model when they were chosen; the reserving pass's own plan proves it here)
PLAIN_FAILS = [(4, "hybrid", 15, 4, 0.65), (16, "hybrid", 15, 3, 0.65), (18, "dag", 30, 3, 0.65),
               (19, "hybrid", 40, 3, 0.65), (40, "hybrid", 15, 5, 0.8), (52, "hybrid", 15, 4, 0.65)]


def _scaled(shape, blocks, devices, seed, scale, network="mesh", objective="latency"):
    d = placement.generate(shape, blocks, devices, device_set="iot", network=network, seed=seed,
                           media=False, objective=objective)
    d = copy.deepcopy(d)
    for dev in d["devices"]:
        dev["memory_bytes"] *= scale
    return placement.load(d)


def _pass(p, reserve, lookahead=True):
    ct = masked_ct(p)
    a, s, e = list_schedule(p, ct, upward_rank_mean(p, ct), optimistic_cost_table(p, ct),
                            lookahead=lookahead, reserve=reserve)
    return evaluate(p, a, order_by(a, np.argsort(schedule_order(s, e, topo_position(p))), p.n_devices))


@pytest.mark.parametrize("seed,shape,blocks,devices,scale", PLAIN_FAILS)
def test_reserving_pass_finds_room_where_the_plain_pass_fails(seed, shape, blocks, devices, scale):
    p = _scaled(shape, blocks, devices, seed, scale)
    assert memory_binds(p)
    with pytest.raises(_NoRoom):
        _pass(p, reserve=False)
    ev = _pass(p, reserve=True)
    assert ev.feasible, ev.violations                   # the evaluator: memory holds
    assert np.all(p.memory_use(ev.assignment) <= p.memory_cap)
    plan = placement.solve(p, "heft")
    assert plan.status == Status.FEASIBLE and plan.value is not None
    assert plan.value <= ev.value * (1 + 1e-9)         # heft keeps the best of its variants


def test_a_pass_with_a_witness_packing_never_runs_out_of_memory():
    """While the witness packing exists every choice keeps it (or takes the witness's own
    device), so on a fully linked network the pass cannot run out of memory."""
    checked = 0
    for seed in range(24):
        shape = ("dag", "hybrid", "chain")[seed % 3]
        for scale in (0.8, 0.65):
            p = _scaled(shape, (15, 20, 30)[seed % 3], (3, 4, 5)[(seed // 3) % 3], seed, scale)
            if Reserve(p, Memory(p)).wit is None:
                continue
            checked += 1
            for look in (True, False):
                ev = _pass(p, reserve=True, lookahead=look)
                assert ev.feasible, (seed, scale, ev.violations)
    assert checked >= 5


def test_reservation_changes_nothing_where_memory_does_not_bind():
    d = placement.generate("dag", 30, 5, device_set="edge", network="mesh", seed=2, media=False)
    for dev in d["devices"]:
        dev["memory_bytes"] = 1e12
    p = placement.load(d)
    assert not memory_binds(p)
    a, b = _pass(p, reserve=False), _pass(p, reserve=True)
    assert np.array_equal(a.assignment, b.assignment) and a.value == b.value


@pytest.mark.parametrize("seed", range(4))
def test_descents_never_worsen_and_keep_memory(seed):
    p = _scaled(("dag", "hybrid")[seed % 2], 30, 5, 300 + seed, 0.8)
    ct = masked_ct(p)
    e0 = _pass(p, reserve=True)
    assert e0.feasible
    start = e0.assignment
    for fn, metric in ((balance_descent, "period_s"), (energy_descent, "energy_j")):
        a = fn(p, ct, start)
        ev = evaluate(p, a)
        assert ev.feasible, ev.violations
        assert getattr(ev, metric) <= getattr(e0, metric) * (1 + 1e-9)


@pytest.mark.parametrize("shape,blocks,devices,network,seed,objective", [
    ("dag", 14, 3, "tiers", 1, "throughput"),        # heft was 2.49x the optimum before the descent
    ("dag", 20, 5, "mesh", 6, "throughput"),         # 2.72x
])
def test_heft_throughput_with_descent_reaches_the_optimum(shape, blocks, devices, network, seed, objective):
    p = placement.load(placement.generate(shape, blocks, devices, device_set="iot", network=network,
                                          seed=seed, media=False)).with_objective(objective)
    exact = placement.solve(p, "cpsat", time_limit=30)
    assert exact.status == Status.OPTIMAL
    heft = placement.solve(p, "heft")
    assert heft.value <= exact.value * 1.01


# ------------------------------------------------------------------ LNS
def test_lns_improves_a_poor_start_never_worse_and_within_its_deadline():
    from solvers import _lns
    if _lns.supports(placement.load(placement.generate("chain", 3, 2, media=False))):
        pytest.skip("OR-Tools missing")
    p = _scaled("hybrid", 24, 4, 7, 0.8)
    ct = masked_ct(p)
    start = evaluate(p, pack_fallback(p, ct, np.array(p.topo, dtype=np.int64)))
    assert start.feasible
    t0 = time.monotonic()
    r = _lns.search(p, start, time.monotonic() + 4.0, size=10, patience=12, max_windows=12)
    assert time.monotonic() - t0 <= 4.0 * 1.05 + 1.0
    again = evaluate(p, r.best.assignment, r.best.order)     # the result is the evaluator's
    assert again.feasible and again.value == pytest.approx(r.best.value, rel=1e-12)
    assert r.best.value <= start.value
    assert r.improved and r.best.value < start.value * 0.99   # a memory-fill plan is far from good


def test_lns_window_covering_every_block_matches_brute():
    from solvers import _lns
    p = _scaled("dag", 6, 3, 11, 0.8)
    if _lns.supports(p):
        pytest.skip(_lns.supports(p))
    brute = placement.solve(p, "brute", time_limit=60)
    assert brute.status == Status.OPTIMAL
    ct = masked_ct(p)
    start = evaluate(p, pack_fallback(p, ct, np.array(p.topo, dtype=np.int64)))
    r = _lns.search(p, start, time.monotonic() + 20, size=6, dtime=5.0)
    assert r.best.value == pytest.approx(brute.value, rel=1e-5)


def test_local_with_lns_never_worse_than_its_start_and_within_the_limit():
    p = _scaled("dag", 40, 5, 21, 0.8)
    get_method("local").warm_up()
    t0 = time.monotonic()
    plan = placement.solve(p, "local", time_limit=3.0)
    assert time.monotonic() - t0 <= 3.0 * 1.05 + 1.0
    assert plan.value is not None and plan.value <= plan.stats["start_value"] * (1 + 1e-12)
    assert "lns" in plan.stats


# ------------------------------------------------------------------ dp honesty
def test_dp_says_it_is_for_chains():
    dag = placement.load(placement.generate("dag", 20, 4, device_set="iot", network="mesh", seed=1, media=False))
    chain = placement.load(placement.generate("chain", 20, 4, device_set="iot", network="mesh", seed=1,
                                              media=False))
    on_dag = placement.solve(dag, "dp")
    assert on_dag.status != Status.OPTIMAL and "dp is for chains" in on_dag.message
    assert "dp is for chains" not in placement.solve(chain, "dp").message
    info = next(m for m in placement.methods() if m.name == "dp")
    assert "chain" in info.guarantee and "DAG" in info.guarantee


# ------------------------------------------------------------------ time limits
@pytest.fixture
def large():
    p = placement.load(placement.generate("hybrid", 300, 16, device_set="iot", network="mesh", seed=5,
                                          media=False))
    # not cached: `placement.solve` computes the cheap bound under the clock (docs/choices.md)
    return p


# milp writes its MPS straight from its rows and checks the deadline before CBC starts
# (PuLP's model and writeMPS took 3-5 s here, outside the clock)
@pytest.mark.parametrize("method", ["single", "heft", "dp", "local", "cpsat", "milp"])
def test_every_method_keeps_a_2_s_limit_on_300_blocks_x_16_devices(method, large):
    p = large
    get_method(method).warm_up()                  # compilation and imports are not planning time
    t0 = time.monotonic()
    plan = placement.solve(p, method, time_limit=2.0)
    wall = time.monotonic() - t0
    # where the time went, should this fail again (CI once saw cpsat at 3.6 s)
    phases = {k: v for k, v in plan.stats.items() if k.endswith("_s") and isinstance(v, (int, float))}
    assert wall <= 2.0 * 1.05 + 1.0, (method, wall, plan.status, phases)
    assert plan.solve_time_s <= 2.0 * 1.05 + 1.0
    # single has no plan here (no board holds the model: an honest no_solution); the rest do
    assert plan.value is not None or (method == "single" and plan.status == Status.NO_SOLUTION)


@pytest.mark.parametrize("shape,blocks,devices,seed,scale", [("chain", 60, 8, 13, 0.7), ("chain", 100, 16, 7, 1.0),
                                                            ("dag", 150, 16, 8, 1.0)])
def test_local_starts_from_the_pipeline_plan_under_a_short_limit(shape, blocks, devices, seed, scale):
    """local's start (dp, then heft's variants) must reach dp's pipeline within 2 s: the latency
    list passes used to run first and left local 33-46 % above heft and dp on throughput."""
    p = _scaled(shape, blocks, devices, seed, scale, objective="throughput")
    p.lower_bound()
    for m in ("heft", "dp", "local"):
        get_method(m).warm_up()
    local = placement.solve(p, "local", time_limit=2.0)
    best = min(placement.solve(p, m, time_limit=2.0).value for m in ("heft", "dp"))
    assert local.value <= best * (1 + 1e-9), (local.value, best, local.stats.get("start"))


def test_local_reaches_the_optimum_of_the_issues_example_on_its_shared_medium():
    """Issue 14's example (`placement generate --shape hybrid --blocks 40 --devices 6
    --device-set iot --seed 3`, one shared Wi-Fi medium): heft is 3.8 % off; local's LNS
    re-solves windows with the medium in the model and reaches cpsat's proven optimum (the
    LNS used to refuse shared media, and local returned heft's plan)."""
    p = placement.load(placement.generate("hybrid", 40, 6, device_set="iot", seed=3))
    assert p.media
    opt = placement.solve(p, "cpsat", time_limit=30)
    assert opt.status == Status.OPTIMAL
    heft = placement.solve(p, "heft", time_limit=10)
    local = placement.solve(p, "local", time_limit=10)
    assert heft.value > opt.value * 1.02
    assert isinstance(local.stats.get("lns"), dict) and local.stats["lns"]["windows"] > 0
    assert local.value <= opt.value * (1 + 1e-6), (local.value, opt.value)

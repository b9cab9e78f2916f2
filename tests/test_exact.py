"""The exact solvers against the oracle (`brute`) on many random tiny problems, and their
promises: bound never above the optimum, infeasibility proved and explained, time limit
honoured, never worse than the warm start, symmetry breaking that keeps the optimum."""

from __future__ import annotations

import copy
import subprocess
import sys
import time

import numpy as np
import pytest

import placement
from placement.errors import InputError
from placement.method import TIME_LIMIT_MARGIN_FRACTION, TIME_LIMIT_MARGIN_S, Context
from placement.plan import Status
from solvers import _warmstart as ws
from solvers._scale import choose_units

from .conftest import ROOT

def _generate(*args, **kw):
    """`placement.generate` without a shared medium: these tests check contention-free
    rules and methods (star networks put devices on a medium by default since issue 15;
    media are tested in tests/test_media.py)."""
    return placement.generate(*args, **{"media": False, **kw})


OBJECTIVES = ["latency", "throughput", "energy", {"latency": 1.0, "energy": 0.2}]


def _tiny(seed: int) -> dict:
    """A random tiny problem (seeded): shape, sizes, objective and one of the twists."""
    rng = np.random.default_rng(seed)
    shape = ["chain", "dag", "hybrid"][seed % 3]
    objective = OBJECTIVES[(seed // 3) % 4]
    twist = ["memory", "pin", "split", "constraint", "idle", "plain"][seed % 6]
    blocks = int(rng.integers(4, 7)) if twist != "split" else 3
    devices = int(rng.integers(2, 4))
    d = _generate(shape, blocks, devices, device_set=["iot", "edge", "homogeneous"][seed % 3],
                           network=["mesh", "star", "tiers"][(seed // 2) % 3], seed=seed,
                           split=0.34 if twist == "split" else 0.0, objective=objective)
    blk = d["model"]["blocks"]
    if twist == "memory":
        weights = sum(b["params_bytes"] for b in blk)
        peak = max(b["activation_bytes"] + b["params_bytes"] for b in blk)
        for dev in d["devices"]:
            dev["memory_bytes"] = peak + 0.55 * weights
    elif twist == "pin":
        d["pinned"] = {blk[-1]["id"]: d["devices"][-1]["id"]}
        blk[1]["allowed_devices"] = [dev["id"] for dev in d["devices"][:2]]
    elif twist == "constraint":
        d["constraints"] = {"energy_j": 1e9} if objective != "energy" else {"latency_s": 1e9}
    elif twist == "idle":
        d["count_idle"] = True
    d["name"] = f"tiny-{seed}-{shape}-{twist}"
    return d


def _tighten(d: dict) -> dict:
    """Make the 'constraint' twist bind: a bound between the unconstrained optimum's metric and
    the best possible value of that metric."""
    if "constraints" not in d:
        return d
    (metric,) = d["constraints"]
    other = "energy" if metric == "energy_j" else "latency"
    free = placement.solve(d, "brute", time_limit=60)
    best = placement.solve(d, "brute", objective=other, time_limit=60)
    d["constraints"] = {metric: 0.5 * (free.metrics[metric] + best.value)}
    return d


SEEDS = list(range(24))


@pytest.fixture(scope="module")
def oracle():
    cache = {}

    def get(seed):
        if seed not in cache:
            d = _tighten(_tiny(seed))
            cache[seed] = (d, placement.solve(d, "brute", time_limit=60))
        return cache[seed]
    return get


def _check_against_brute(plan, brute):
    assert brute.status == Status.OPTIMAL, brute.message
    assert plan.status in (Status.OPTIMAL, Status.FEASIBLE), plan.message
    assert plan.violations == []
    assert plan.value == pytest.approx(brute.value, rel=1e-6), (plan.value, brute.value, plan.stats)
    assert plan.bound <= brute.value * (1 + 1e-9), "bound above the proven optimum"


@pytest.mark.parametrize("seed", SEEDS)
def test_cpsat_model_reaches_brute_optimum(seed, oracle):
    d, brute = oracle(seed)
    plan = placement.solve(d, "cpsat", time_limit=20, warm=False)   # the model alone, no heuristic
    _check_against_brute(plan, brute)
    assert plan.status == Status.OPTIMAL, plan.message    # rounding small enough to prove it


@pytest.mark.parametrize("seed", SEEDS)
def test_milp_cbc_model_reaches_brute_optimum(seed, oracle):
    d, brute = oracle(seed)
    plan = placement.solve(d, "milp", time_limit=20, warm=False)
    _check_against_brute(plan, brute)
    assert plan.status == Status.OPTIMAL, plan.message


@pytest.mark.parametrize("backend", ["highs", "scip"])
@pytest.mark.parametrize("seed", [1, 4, 8, 11])
def test_milp_mpsolver_backends_reach_brute_optimum(backend, seed, oracle):
    d, brute = oracle(seed)
    plan = placement.solve(d, "milp", time_limit=20, backend=backend, warm=False)
    _check_against_brute(plan, brute)
    assert plan.stats["backend"] == backend


@pytest.mark.parametrize("method", ["cpsat", "milp"])
@pytest.mark.parametrize("seed", [0, 5, 9, 13])
def test_warm_started_solvers_reach_brute_optimum(method, seed, oracle):
    d, brute = oracle(seed)
    plan = placement.solve(d, method, time_limit=20)
    _check_against_brute(plan, brute)


def test_cpsat_bound_stays_valid_with_coarse_units():
    """Rounding durations down keeps the integer model a relaxation: even at 5 % precision
    the bound is below the optimum, and the plan is re-scored by the evaluator."""
    for seed in (2, 3, 7):
        d = _tiny(seed)
        brute = placement.solve(d, "brute", time_limit=60)
        plan = placement.solve(d, "cpsat", time_limit=20, warm=False, precision=0.05)
        assert plan.bound <= brute.value * (1 + 1e-9)
        assert plan.value >= brute.value * (1 - 1e-9)
        assert plan.violations == []


def test_units_give_integer_objective_coefficients():
    d = _tiny(3)
    d["count_idle"] = True
    p = placement.load(d).with_objective({"latency": 1.0, "energy": 0.2})
    u = choose_units(p, None)
    assert u.c_lat >= 1 and u.c_en >= 1
    # the latency unit in objective units is exactly c_lat (no hidden rounding of weights)
    assert u.c_lat * u.r_obj == pytest.approx(1.0 * u.r_lat, rel=1e-12)
    assert u.c_en * u.r_obj == pytest.approx(0.2 * u.r_en, rel=1e-12)
    assert np.all(u.c_idle[p.power_idle > 0] >= 1000)


@pytest.mark.parametrize("method", ["cpsat", "milp"])
def test_symmetry_breaking_keeps_the_optimum(method):
    d = _generate("dag", 6, 3, device_set="homogeneous", network="star", seed=4)
    d["source"] = d["devices"][0]["id"]
    p = placement.load(d)
    assert p.identical_device_groups(), "the test needs interchangeable devices"
    brute = placement.solve(d, "brute", time_limit=60)
    plan = placement.solve(d, method, time_limit=20, warm=False)
    _check_against_brute(plan, brute)


def _infeasible_by_constraint() -> dict:
    """Passes the cheap checks, but no plan meets the latency constraint (brute says so)."""
    d = _generate("dag", 5, 2, device_set="iot", network="mesh", seed=4, objective="energy")
    fastest = placement.solve(d, "brute", objective="latency", time_limit=60)
    d["constraints"] = {"latency_s": fastest.value * (1 - 1e-4)}
    from placement.feasibility import infeasibility_reasons
    assert not infeasibility_reasons(placement.load(d)), "the cheap checks must not see it"
    return d


@pytest.mark.parametrize("method, options", [("cpsat", {}), ("milp", {}), ("milp", {"backend": "highs"})])
def test_solvers_prove_infeasibility_and_say_why(method, options):
    d = _infeasible_by_constraint()
    plan = placement.solve(d, method, time_limit=20, **options)
    assert plan.status == Status.INFEASIBLE, (plan.status, plan.message)
    assert "latency_s" in plan.message and "no plan" in plan.message


def test_cli_exits_3_with_the_reason(tmp_path):
    import json
    path = tmp_path / "infeasible.json"
    path.write_text(json.dumps(_infeasible_by_constraint()))
    out = subprocess.run([sys.executable, "-m", "placement.cli", "solve", str(path), "--method", "cpsat",
                          "--time-limit", "20", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 3, out.stderr
    plan = json.loads(out.stdout)
    assert plan["status"] == "infeasible" and "latency_s" in plan["message"]


def test_cheap_infeasibility_is_reported_before_solving():
    d = _generate("chain", 4, 2, seed=1)
    d["model"]["blocks"][2]["params_bytes"] = 1e15
    for method in ("cpsat", "milp"):
        plan = placement.solve(d, method, time_limit=5)
        assert plan.status == Status.INFEASIBLE and "b2" in plan.message


@pytest.mark.parametrize("method, options", [("cpsat", {}), ("milp", {}), ("milp", {"backend": "highs"})])
def test_time_limit_gives_best_plan_and_bound_never_worse_than_warm_start(method, options):
    d = _generate("dag", 60, 8, device_set="iot", network="mesh", seed=2)
    limit = 4.0
    t0 = time.monotonic()
    plan = placement.solve(d, method, time_limit=limit, **options)
    wall = time.monotonic() - t0
    assert plan.solve_time_s <= limit + TIME_LIMIT_MARGIN_S + TIME_LIMIT_MARGIN_FRACTION * limit
    assert wall <= limit + TIME_LIMIT_MARGIN_S + TIME_LIMIT_MARGIN_FRACTION * limit + 1.0
    assert plan.status in (Status.TIME_LIMIT, Status.OPTIMAL, Status.FEASIBLE), plan.message
    assert plan.violations == []
    assert plan.bound is not None and plan.bound <= plan.value
    warm = plan.stats["warm_value"]
    assert warm is not None and plan.value <= warm * (1 + 1e-12)


def test_warm_start_picks_the_best_feasible_heuristic():
    d = _generate("hybrid", 12, 4, device_set="iot", network="mesh", seed=1)
    p = placement.load(d)
    w = ws.warm_start(p, Context(time_limit=10))
    assert w.best is not None and w.best.feasible
    values = [v for v in w.tried.values() if isinstance(v, float)]
    assert w.best.value == pytest.approx(min(values))


def test_latency_horizon_covers_the_optimum():
    for seed in (0, 1, 6):
        d = _tiny(seed)
        p = placement.load(d).with_objective("latency")
        brute = placement.solve(d, "brute", objective="latency", time_limit=60)
        assert ws.serial_horizon(p) >= brute.value
        inc = ws.warm_start(p, Context(time_limit=5)).best
        assert ws.latency_horizon(p, inc) >= brute.value * (1 - 1e-12)


def test_milp_rejects_an_unknown_backend():
    with pytest.raises(InputError, match=r"milp option backend: expected one of cbc, highs, scip, found 'gurobi'"):
        placement.solve(_generate("chain", 3, 2), "milp", backend="gurobi")


def test_solvers_do_not_change_their_input():
    d = _tiny(4)
    before = copy.deepcopy(d)
    for method in ("cpsat", "milp"):
        placement.solve(d, method, time_limit=10)
    assert d == before


def test_cli_json_stays_clean_with_highs(tmp_path):
    """HiGHS prints a banner on stdout; the child process keeps it out of --json output."""
    import json
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_tiny(1)))
    out = subprocess.run([sys.executable, "-m", "placement.cli", "solve", str(path), "--method", "milp",
                          "--backend", "highs", "--time-limit", "20", "--json"], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["status"] == "optimal" and plan["stats"]["backend"] == "highs"


def test_milp_highs_from_a_plain_script(tmp_path):
    """A script with no main guard (the backend's child process must not re-import it)."""
    script = tmp_path / "plain.py"
    script.write_text("import placement\n"
                      "d = placement.generate('chain', 4, 2, seed=1, media=False)\n"
                      "plan = placement.solve(d, 'milp', backend='highs', time_limit=20)\n"
                      "print('STATUS', plan.status.value)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "STATUS optimal" in out.stdout


def test_cbc_watchdog_stops_cbc_at_the_deadline():
    """CBC's own -sec limit is not checked during the root's cuts; the watchdog sends it
    SIGINT at the deadline, and milp returns within its margin with the plan in hand."""
    from placement.method import TIME_LIMIT_MARGIN_FRACTION, TIME_LIMIT_MARGIN_S
    p = placement.load(placement.generate("dag", 120, 16, device_set="edge", seed=1, media=False))
    placement.solve(p, "milp", time_limit=0)   # imports, untimed
    limit = 4.0
    plan = placement.solve(p, "milp", time_limit=limit)
    assert plan.solve_time_s <= limit + TIME_LIMIT_MARGIN_S + TIME_LIMIT_MARGIN_FRACTION * limit
    assert plan.feasible and plan.status.value == "time_limit"
    assert "watchdog" in plan.message, plan.message


@pytest.mark.parametrize("method", ["cpsat", "milp"])
def test_time_limit_holds_at_1000_blocks_x_32_devices_with_model_building_under_the_clock(method):
    """Model building, loading and read-back are under the clock (issue 14): at 1,000 blocks
    x 32 devices building either model takes longer than a 3 s limit, and the method returns
    the warm start's plan within its margin instead (before: cpsat 65 s, milp 35 s at 5 s)."""
    from placement.method import TIME_LIMIT_MARGIN_FRACTION, TIME_LIMIT_MARGIN_S
    p = placement.load(placement.generate("dag", 1000, 32, device_set="iot", seed=1, media=False))
    placement.solve(p, method, time_limit=0)   # imports, untimed
    limit = 3.0
    plan = placement.solve(p, method, time_limit=limit)
    assert plan.solve_time_s <= limit + TIME_LIMIT_MARGIN_S + TIME_LIMIT_MARGIN_FRACTION * limit
    assert plan.feasible and plan.status.value in ("time_limit", "optimal")


def test_cbc_reads_every_bound_and_row_kind_as_written():
    """milp writes CBC's MPS itself (solvers._milp_backends.write_mps): a hand-worked MILP with
    an integer column without upper bound (COIN would read it as binary), a free and a
    negative-bounded column, a fixed column, ranged, equality and one-sided rows."""
    import math as _m
    import time as _t

    from solvers._milp_backends import _Rows, _solve_cbc

    R = _Rows()
    n = R.var("n", 0, _m.inf, integer=True)     # integer, unbounded above
    b = R.var("b", 0, 1, integer=True)          # binary
    f = R.var("f", -_m.inf, _m.inf)             # free
    g = R.var("g", -3.0, 5.0)                   # negative lower bound
    x = R.var("x", 2.0, 2.0)                    # fixed
    R.row({n: 1.0}, 2.5, 7.0)                   # ranged: n in {3..7}
    R.row({f: 1.0, g: 1.0}, -1.0, -1.0)         # equality
    R.row({f: 1.0, b: -10.0}, -_m.inf, 1.5)     # f <= 1.5 + 10 b
    R.objective = {n: 1.0, f: -1.0, b: 4.0, x: 1.0}
    res = _solve_cbc(R, _t.monotonic() + 30, seed=0)
    # min n - f + 4 b + x: n = 3; f = -1 - g <= 2 (g >= -3); b = 0 caps f at 1.5 -> 3 - 1.5 + 2
    assert res.status == "optimal"
    assert res.values[n] == pytest.approx(3.0) and res.values[b] == pytest.approx(0.0)
    assert res.values[f] == pytest.approx(1.5) and res.values[g] == pytest.approx(-2.5)
    assert res.values[x] == pytest.approx(2.0)
    assert res.bound == pytest.approx(3.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_cbc_on_a_written_model_equals_brute_force(seed):
    """A random covering MILP of 12 binaries, 3 integers and 400 rows (row names of one to
    three digits) written by `write_mps` and solved by CBC equals enumeration."""
    import itertools
    import time as _t

    from solvers._milp_backends import _Rows, _solve_cbc

    rng = np.random.default_rng(seed)
    R = _Rows()
    for i in range(12):
        R.var(f"b{i}", 0, 1, integer=True)          # columns 0-11: binaries
    for i in range(3):
        R.var(f"n{i}", 0, 2, integer=True)          # columns 12-14: integers 0..2
    cost = rng.integers(1, 20, size=15).astype(float)
    A = rng.integers(0, 4, size=(400, 15)).astype(float)
    rhs = np.floor(A.sum(axis=1) * 0.3)
    for r in range(400):
        R.row({v: A[r, v] for v in range(15)}, rhs[r], np.inf)
    R.objective = {v: cost[v] for v in range(15)}
    best = np.inf
    for xb in itertools.product((0, 1), repeat=12):
        for xi in itertools.product((0, 1, 2), repeat=3):
            x = np.array(xb + xi, dtype=float)
            if (A @ x >= rhs - 1e-9).all():
                best = min(best, float(cost @ x))
    res = _solve_cbc(R, _t.monotonic() + 60, seed=0)
    assert res.status == "optimal", res.raw
    assert float(np.dot(cost, res.values)) == pytest.approx(best)
    assert res.bound == pytest.approx(best)


def test_cbc_reads_milps_model_of_a_profiled_split_problem_without_errors(tmp_path, monkeypatch):
    """The union model of efficientformer_l1 with split choices (30,669 columns, 21,470 rows),
    as `write_mps` writes it, is read by CBC with 0 errors: written with unpadded fields,
    CBC misread its first column ('Bad image') and returned no solution at all."""
    import json
    import subprocess as sp
    from pathlib import Path

    from placement.errors import InputError
    from solvers import _milp_backends as mb
    from solvers import milp as M

    root = Path(__file__).resolve().parent.parent
    d = json.loads((root / "examples" / "models" / "efficientformer_l1.splits.json").read_text())
    d["network"].pop("media", None)
    p = placement.load(d)
    seen = {}

    def grab(R, deadline, seed, extra=""):
        seen["R"] = R
        raise InputError("stop here")          # only the model is wanted

    monkeypatch.setattr(M, "_solve_cbc", grab)
    with pytest.raises(InputError):
        placement.solve(p, "milp", time_limit=60, warm=False)
    mps = tmp_path / "m.mps"
    mb.write_mps(seen["R"], str(mps))
    out = sp.run([mb._cbc_path(), str(mps), "-quit"], capture_output=True, text=True, timeout=60).stdout
    assert "read with 0 errors" in out and "Bad image" not in out, out[-2000:]

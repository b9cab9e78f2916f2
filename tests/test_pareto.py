"""The Pareto front: its points are non-dominated, on the true front where it is exact, and
re-scored by the evaluator."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

import placement
from placement import registry
from placement.errors import InputError, MethodError
from placement.evaluator import evaluate
from placement.pareto_front import dominates, non_dominated, pareto, plot_front

from .conftest import ROOT


def exact_available() -> list[str]:
    out = []
    for n in ("cpsat", "milp", "brute"):
        try:
            if registry.get_method(n).kind == "exact":
                out.append(n)
        except MethodError:
            pass
    return out


def true_front(problem, metrics):
    """Every assignment and every per-device order of a tiny problem, scored by the evaluator."""
    p = placement.load(problem)
    vectors = []
    for a in itertools.product(range(p.n_devices), repeat=p.n_blocks):
        a = np.array(a)
        per = [[b for b in p.topo if a[b] == d] for d in range(p.n_devices)]
        for orders in itertools.product(*[list(itertools.permutations(o)) for o in per]):
            ev = evaluate(p, a, [list(o) for o in orders])
            if ev.feasible:
                m = {"latency_s": ev.latency_s, "period_s": ev.period_s, "energy_j": ev.energy_j}
                vectors.append([m[k] for k in metrics])
    return [vectors[i] for i in non_dominated(vectors)]


def check_front(front, problem):
    p = placement.load(problem)
    vec = [[pt[m] for m in front["metrics"]] for pt in front["points"]]
    assert vec, "a front has at least one plan"
    for i, a in enumerate(vec):
        assert not any(dominates(b, a) for j, b in enumerate(vec) if j != i)
    assert vec == sorted(vec)
    for pt in front["points"]:  # every figure from the evaluator, on the original problem
        plan = placement.evaluate(p, pt["plan"])
        assert plan.feasible
        for m in ("latency_s", "period_s", "energy_j"):
            assert plan.metrics[m] == pytest.approx(pt[m], rel=1e-12)


def test_dominance_helpers():
    assert dominates([1, 2], [1, 3]) and not dominates([1, 3], [1, 3]) and not dominates([0, 4], [1, 3])
    assert non_dominated([[1, 3], [2, 2], [2, 3], [1, 3], [3, 1]]) == [0, 1, 4]


def test_exact_front_points_are_on_the_true_front(diamond):
    exact = exact_available()
    if not exact:
        pytest.fail("no exact method loads (registry says so)")
    front = pareto(diamond, "latency,energy", time_limit=10)
    assert front["approach"].startswith("epsilon-constraint")
    check_front(front, diamond)
    truth = true_front(diamond, ["latency_s", "energy_j"])
    for pt in front["points"]:
        v = [pt["latency_s"], pt["energy_j"]]
        assert not any(dominates(t, v, tol=1e-7) for t in truth), (v, truth)
    # both ends of the front are found: the best latency and the best energy
    assert min(pt["latency_s"] for pt in front["points"]) == pytest.approx(min(t[0] for t in truth))
    assert min(pt["energy_j"] for pt in front["points"]) == pytest.approx(min(t[1] for t in truth))


def test_constraint_sweep_does_not_change_the_problem(diamond):
    if not exact_available():
        pytest.fail("no exact method loads (registry says so)")
    p = placement.load(diamond)
    before = dict(p.constraints)
    pareto(p, "latency,throughput", time_limit=10)
    assert dict(p.constraints) == before


def test_weighted_sum_regime_on_a_larger_problem():
    d = placement.generate("hybrid", 20, 4, seed=2, name="ws")
    front = pareto(d, ["latency", "energy"], points=3, time_limit=1, exact_max_cells=0)
    assert front["approach"].startswith("weighted sums")
    check_front(front, d)
    assert front["solves"] >= 2 * 1 + 3
    # the front's best latency is no worse than any single heuristic's latency plan
    single = placement.solve(d, "single", objective="latency")
    assert min(pt["latency_s"] for pt in front["points"]) <= single.metrics["latency_s"] * (1 + 1e-9)


def test_three_objectives_plot_and_json(tmp_path):
    d = placement.generate("dag", 7, 3, seed=4, name="three")
    f = tmp_path / "three.json"
    f.write_text(json.dumps(d))
    out = subprocess.run([sys.executable, "-m", "placement.cli", "pareto", str(f), "--objectives",
                          "latency,throughput,energy", "--points", "4", "-t", "3", "-o",
                          str(tmp_path / "front.json")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    front = json.loads((tmp_path / "front.json").read_text())
    assert front["metrics"] == ["latency_s", "period_s", "energy_j"]
    check_front(front, d)
    png = tmp_path / "front.png"
    assert png.stat().st_size > 20_000
    from matplotlib.image import imread
    h, w = imread(png).shape[:2]
    assert w > 2.2 * h, "three side-by-side projections"
    info = plot_front(front, tmp_path / "again.svg")
    assert info["panels"] == 3 and info["points"] == len(front["points"])


def test_bad_objectives_and_exit_codes(tmp_path, diamond):
    with pytest.raises(InputError, match="two or three different names"):
        pareto(diamond, "latency")
    with pytest.raises(InputError, match="two or three different names"):
        pareto(diamond, "latency,latency")
    with pytest.raises(InputError, match="points: expected at least 2"):
        pareto(diamond, "latency,energy", points=1)
    for dev in diamond["devices"]:
        dev["memory_bytes"] = 10.0
    f = tmp_path / "tiny.json"
    f.write_text(json.dumps(diamond))
    out = subprocess.run([sys.executable, "-m", "placement.cli", "pareto", str(f), "-t", "2"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 3 and "no feasible plan" in out.stderr

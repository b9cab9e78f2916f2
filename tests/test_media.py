"""Shared media (SPEC 5a): hand-worked schedules, medium orders, plan files, the period.

The problem of every hand-worked case: s -> {l, r} -> t, three devices A, B, C at 1e9
flop/s (every block 0.1 s), every pair 1e6 B/s and 10 ms latency, all three on medium
``w``; s sends 1e5 B to l (0.1 s on the air) and 2e5 B to r (0.2 s); l, r and t send 1e4 B
(0.01 s). Source and sink: A. Transfer indices: 0 = [input, s], 1 = [s, l], 2 = [s, r],
3 = [l, t], 4 = [r, t], 5 = [t, output].
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import placement
from placement.errors import PlanError
from placement.evaluator import evaluate, evaluate_ids
from placement.media import transfer_names


def fan(media=True, input_bytes=0.0) -> dict:
    blk = lambda i, out: {"id": i, "flops": 1e8, "params_bytes": 1, "activation_bytes": 1, "output_bytes": out}
    d = {"name": "fan", "model": {"name": "fan", "input_bytes": input_bytes,
                                  "blocks": [blk("s", 0), blk("l", 1e4), blk("r", 1e4), blk("t", 1e4)],
                                  "edges": [{"src": "s", "dst": "l", "bytes": 1e5},
                                            {"src": "s", "dst": "r", "bytes": 2e5},
                                            ["l", "t"], ["r", "t"]]},
         "devices": [{"id": x, "flops_per_s": 1e9, "memory_bytes": 1e9} for x in "ABC"],
         "network": {"default": {"bandwidth_bytes_per_s": 1e6, "latency_s": 0.01}}}
    if media:
        d["network"]["media"] = [{"id": "w", "devices": ["A", "B", "C"]}]
    return d


A, B, C = 0, 1, 2


def test_transfer_names_follow_the_tie_order():
    p = placement.load(fan())
    assert transfer_names(p) == [("input", "s"), ("s", "l"), ("s", "r"), ("l", "t"), ("r", "t"), ("t", "output")]
    assert p.features == {"media"}
    assert p.medium_of[A, B] == 0 and p.medium_of[A, A] == -1


def test_a_tie_goes_to_the_lower_transfer_index():
    p = placement.load(fan())
    ev = evaluate(p, [A, B, C, A])
    # s 0-0.1; [s,l] and [s,r] both ready at 0.1: [s,l] (index 1) first, 0.1-0.2, arrives 0.21;
    # [s,r] 0.2-0.4, arrives 0.41; l 0.21-0.31; r 0.41-0.51; [l,t] ready 0.31, the air is busy
    # until 0.4: 0.4-0.41 (arr 0.42); [r,t] 0.51-0.52 (arr 0.53); t 0.53-0.63.
    assert ev.feasible
    assert ev.medium_order == ((1, 2, 3, 4),)
    np.testing.assert_allclose(ev.start, [0.0, 0.21, 0.41, 0.53])
    np.testing.assert_allclose(ev.transfer_start[[1, 2, 3, 4]], [0.1, 0.2, 0.4, 0.51])
    np.testing.assert_allclose(ev.transfer_end[[1, 2, 3, 4]], [0.2, 0.4, 0.41, 0.52])
    assert ev.latency_s == pytest.approx(0.63)
    # without the medium r would get its input at 0.31 and t would end at 0.53
    free = evaluate(placement.load(fan(media=False)), [A, B, C, A])
    assert free.latency_s == pytest.approx(0.53)
    # period: the medium carries 0.1 + 0.2 + 0.01 + 0.01 s, more than any device (0.2 s on A)
    assert ev.period_s == pytest.approx(0.32)
    assert free.period_s == pytest.approx(0.2)
    assert ev.energy_j == free.energy_j


def test_a_given_medium_order_is_followed():
    p = placement.load(fan())
    ev = evaluate(p, [A, B, C, A], medium_order=[[2, 1, 4, 3]])
    # [s,r] 0.1-0.3 (arr 0.31), [s,l] 0.3-0.4 (arr 0.41); r 0.31-0.41, l 0.41-0.51;
    # [r,t] 0.41-0.42 (arr 0.43), [l,t] 0.51-0.52 (arr 0.53); t 0.53-0.63
    assert ev.feasible
    np.testing.assert_allclose(ev.start, [0.0, 0.41, 0.31, 0.53])
    np.testing.assert_allclose(ev.transfer_start[[1, 2, 3, 4]], [0.3, 0.1, 0.51, 0.41])
    assert ev.medium_order == ((2, 1, 4, 3),)
    # [l,t] before [r,t] holds the medium idle until l ends (0.51): same latency here, a later send
    ev2 = evaluate(p, [A, B, C, A], medium_order=[[2, 1, 3, 4]])
    np.testing.assert_allclose(ev2.transfer_start[[3, 4]], [0.51, 0.52])
    assert ev2.latency_s == pytest.approx(0.64)


def test_contention_with_different_ready_times_and_an_output_on_the_medium():
    p = placement.load(fan())
    ev = evaluate(p, [A, B, A, C])
    # s on A 0-0.1, then on A the list rule runs r (the longer branch)... fix the order instead:
    ev = evaluate(p, [A, A, B, C], order=[[0, 1], [2], [3]])
    # s 0-0.1, l 0.1-0.2 on A; [s,r] 0.1-0.3 (arr 0.31); [l,t] ready 0.2, waits: 0.3-0.31 (arr 0.32);
    # r 0.31-0.41; [r,t] 0.41-0.42 (arr 0.43); t 0.43-0.53; [t,output] C -> A 0.53-0.54, arrives 0.55
    assert ev.medium_order == ((2, 3, 4, 5),)
    np.testing.assert_allclose(ev.transfer_start[[2, 3, 4, 5]], [0.1, 0.3, 0.41, 0.53])
    np.testing.assert_allclose(ev.start, [0.0, 0.1, 0.31, 0.43])
    assert ev.latency_s == pytest.approx(0.55)


def test_an_input_transfer_on_the_medium():
    p = placement.load(fan(input_bytes=5e4))
    ev = evaluate(p, [B, C, C, B], order=[[], [0, 3], [1, 2]])
    # [input,s] A -> B 0-0.05 (arr 0.06); s 0.06-0.16; [s,l] B -> C 0.16-0.26 (arr 0.27), [s,r]
    # 0.26-0.46 (arr 0.47); l 0.27-0.37, r 0.47-0.57; [l,t] ready 0.37, sent 0.46-0.47; [r,t] 0.57-0.58
    # (arr 0.59); t 0.59-0.69; [t,output] B -> A 0.69-0.70, arrives 0.71
    assert ev.medium_order == ((0, 1, 2, 3, 4, 5),)
    np.testing.assert_allclose(ev.transfer_start, [0.0, 0.16, 0.26, 0.46, 0.57, 0.69])
    assert ev.latency_s == pytest.approx(0.71)


def test_transfers_off_the_medium_stay_contention_free():
    d = fan()
    d["network"]["media"] = [{"id": "w", "devices": ["A", "B"]}]     # C is wired
    p = placement.load(d)
    ev = evaluate(p, [A, B, C, A])
    # [s,l] A -> B and [l,t] B -> A on w; [s,r] A -> C and [r,t] off: both at 0.1, no waiting
    assert ev.medium_order == ((1, 3),)
    np.testing.assert_allclose(ev.start, [0.0, 0.21, 0.31, 0.43])
    assert ev.latency_s == pytest.approx(0.53)
    assert np.isnan(ev.transfer_start[2])


def test_bad_medium_orders_are_violations():
    p = placement.load(fan())
    ev = evaluate(p, [A, B, C, A], medium_order=[[2, 1, 4]])
    assert not ev.feasible and "missing" in str(ev.violations[0])
    ev = evaluate(p, [A, B, C, A], medium_order=[[2, 1, 4, 3, 5]])     # [t,output] is on A itself
    assert not ev.feasible and "not on this medium" in str(ev.violations[0])
    # [r,t] before [s,r]: r cannot send before it has its input -- a deadlock
    ev = evaluate(p, [A, B, C, A], medium_order=[[4, 2, 1, 3]])
    assert not ev.feasible and ev.violations[0].kind == "order" and ev.latency_s == float("inf")


def test_plan_files_carry_medium_order_and_transfers(tmp_path):
    p = placement.load(fan())
    plan = placement.evaluate(p, {"assignment": {"s": "A", "l": "B", "r": "C", "t": "A"},
                                  "medium_order": {"w": [["s", "r"], ["s", "l"], ["r", "t"], ["l", "t"]]}})
    d = plan.to_dict()
    assert d["medium_order"] == {"w": [["s", "r"], ["s", "l"], ["r", "t"], ["l", "t"]]}
    assert [(t["src"], t["dst"]) for t in d["transfers"]] == [("s", "r"), ("s", "l"), ("r", "t"), ("l", "t")]
    assert d["transfers"][0] == pytest.approx({"medium": "w", "src": "s", "dst": "r", "start_s": 0.1,
                                                "end_s": 0.3, "arrival_s": 0.31})
    again = placement.evaluate(p, placement.Plan.from_dict(d))
    assert again.to_dict()["transfers"] == d["transfers"] and again.value == plan.value
    # FCFS written out when the plan has no order
    plain = placement.evaluate(p, {"assignment": {"s": "A", "l": "B", "r": "C", "t": "A"}})
    assert plain.medium_order == {"w": [["s", "l"], ["s", "r"], ["l", "t"], ["r", "t"]]}


@pytest.mark.parametrize("mo,match", [
    ({"x": []}, r"medium_order: expected medium ids of the problem \(w\), found 'x'"),
    ({"w": [["s", "q"]]}, r"medium_order\.w\[0\]: expected a transfer \[producer, consumer\]"),
    ({"w": [["s", "t"]]}, r"medium_order\.w\[0\]: expected a transfer"),
])
def test_bad_medium_order_ids_are_plan_errors(mo, match):
    p = placement.load(fan())
    with pytest.raises(PlanError, match=match):
        evaluate_ids(p, {"s": "A", "l": "B", "r": "C", "t": "A"}, None, mo)


def test_bad_medium_order_shape_is_a_plan_error():
    with pytest.raises(PlanError, match=r"medium_order: expected an object of medium id"):
        placement.Plan.from_dict({"assignment": {"s": "A"}, "medium_order": {"w": ["s", "l"]}})


def test_cli_evaluate_exits_2_naming_the_field(tmp_path):
    prob, plan = tmp_path / "p.json", tmp_path / "plan.json"
    prob.write_text(json.dumps(fan()))
    plan.write_text(json.dumps({"assignment": {"s": "A", "l": "B", "r": "C", "t": "A"},
                                "medium_order": {"w": [["s", "nope"]]}}))
    r = subprocess.run([sys.executable, "-m", "placement.cli", "evaluate", str(prob), str(plan)],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "medium_order.w[0]" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- exact methods with media
MEDIA_OBJECTIVES = ["latency", "throughput", {"latency": 1.0, "energy": 0.2}, "energy"]


def tiny_media(seed: int) -> dict:
    """A seeded tiny problem on a star network whose access point is one medium (the
    generator's default), sometimes with a wired device (off the medium)."""
    rng = np.random.default_rng(seed)
    d = placement.generate(["chain", "dag", "hybrid"][seed % 3], int(rng.integers(3, 5)),
                           int(rng.integers(2, 4)), device_set=["iot", "edge", "homogeneous"][seed % 3],
                           network="star", seed=seed, objective=MEDIA_OBJECTIVES[(seed // 3) % 4],
                           media=True)
    d["network"]["default"]["bandwidth_bytes_per_s"] = 2e6     # transfers matter
    if seed % 4 == 3 and len(d["devices"]) > 2:
        d["network"]["media"][0]["devices"] = d["network"]["media"][0]["devices"][:2]
    if seed % 5 == 4:
        d["count_idle"] = True
    d["name"] = f"tiny-media-{seed}"
    return d


@pytest.mark.parametrize("seed", range(12))
def test_cpsat_equals_brute_with_media(seed):
    d = tiny_media(seed)
    brute = placement.solve(d, "brute", time_limit=60)
    assert brute.status.value == "optimal", brute.message
    plan = placement.solve(d, "cpsat", time_limit=20, warm=False)
    assert plan.violations == []
    assert plan.value == pytest.approx(brute.value, rel=1e-6), (plan.value, brute.value)
    assert plan.bound <= brute.value * (1 + 1e-9)
    # the written medium order re-evaluates to the same value
    again = placement.evaluate(d, plan.to_dict())
    assert again.value == pytest.approx(plan.value, rel=1e-12)
    # and the cheap bound is valid with media
    assert placement.load(d).lower_bound() <= brute.value * (1 + 1e-9)


def test_brute_beats_first_come_first_served_when_the_order_matters():
    # [s,l] has the lower index but [s,r] feeds the longer branch: sending it first wins
    d = fan()
    d["model"]["blocks"][2]["flops"] = 3e8          # r: 0.3 s
    d["pinned"] = {"s": "A", "l": "B", "r": "C", "t": "A"}
    p = placement.load(d)
    fcfs = evaluate(p, [A, B, C, A])
    best = placement.solve(p, "brute")
    assert best.medium_order["w"][:2] == [["s", "r"], ["s", "l"]]
    assert best.value < fcfs.latency_s - 0.05
    cp = placement.solve(p, "cpsat", warm=False, time_limit=20)
    assert cp.value == pytest.approx(best.value)


@pytest.mark.parametrize("seed", range(6))
def test_cpsat_equals_brute_on_random_fans_where_the_air_binds(seed):
    rng = np.random.default_rng(seed)
    d = fan(input_bytes=float(rng.uniform(0, 1e5)))
    for b in d["model"]["blocks"]:
        b["flops"] = float(rng.uniform(2e7, 3e8))
    for e in d["model"]["edges"][:2]:
        e["bytes"] = float(rng.uniform(2e4, 3e5))
    for x, dev in zip(rng.uniform(0.5, 3, 3), d["devices"]):
        dev["flops_per_s"] = float(x * 1e9)
    d["objective"] = ["latency", {"latency": 1.0, "throughput": 1.0}][seed % 2]
    p = placement.load(d)
    brute = placement.solve(p, "brute", time_limit=60)
    blind = placement.solve(placement.load(fan(media=False) | {"model": d["model"], "devices": d["devices"],
                                                               "objective": d["objective"]}), "brute")
    plan = placement.solve(p, "cpsat", time_limit=20, warm=False)
    assert plan.value == pytest.approx(brute.value, rel=1e-6), (plan.value, brute.value)
    assert brute.value >= blind.value * (1 - 1e-12)        # the air never helps
    assert p.lower_bound() <= brute.value * (1 + 1e-9)


def test_show_draws_each_medium_as_a_gantt_row(tmp_path):
    from placement.plots import show
    plan = {"assignment": {"s": "A", "l": "B", "r": "C", "t": "A"}}
    info = show(fan(), plan, tmp_path / "g.svg", dag=False)
    assert info["media"] == 1 and info["medium_transfers"] == 4
    svg = (tmp_path / "g.svg").read_text()
    assert "medium:w:s--r" in svg and "medium w" in svg


def test_emulated_medium_serialises_senders_across_processes(tmp_path):
    from placement.runtime.emulation import Link, Medium
    path = str(tmp_path / "medium-w.time")
    med = Medium(path)
    a = Link(0.01, 1e6, 1.0, medium=med)
    b = Link(0.01, 1e6, 1.0, medium=Medium(path))          # another link on the same air
    assert a.reserve(100.0, 100_000) == pytest.approx(100.11)      # sends 100.0-100.1, +10 ms
    assert b.reserve(100.05, 200_000) == pytest.approx(100.31)     # waits for the air: 100.1-100.3
    # a worker in another process sees the same air
    code = (f"from placement.runtime.emulation import Medium; "
            f"print(Medium({path!r}).reserve(100.2, 0.05))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__('os').environ}, check=True).stdout
    assert float(out) == pytest.approx(100.3)
    # a link off the air is contention-free for a single inference
    c = Link(0.01, 1e6, 1.0)
    assert c.reserve(100.0, 100_000) == pytest.approx(100.11)


def test_blocks_called_input_or_output_are_refused_with_media():
    d = fan()
    d["model"]["blocks"][3]["id"] = "output"
    d["model"]["edges"][2:] = [["l", "output"], ["r", "output"]]
    with pytest.raises(placement.errors.ProblemError, match=r"model\.blocks\[3\]\.id: expected a block id other"):
        placement.load(d)
    del d["network"]["media"]
    placement.load(d)          # without media the name is free

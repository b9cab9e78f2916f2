"""The evaluator against schedules worked out by hand, and properties (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import placement
from placement.evaluator import evaluate, evaluate_ids

from .conftest import diamond_dict

def _generate(*args, **kw):
    """`placement.generate` without a shared medium: these tests check contention-free
    rules and methods (star networks put devices on a medium by default since issue 15;
    media are tested in tests/test_media.py)."""
    return placement.generate(*args, **{"media": False, **kw})


A, B = 0, 1
S, L, R, T = 0, 1, 2, 3


def test_diamond_by_hand(diamond):
    """s, l, t on A (source and sink); r on B. Link: 10 ms + bytes / 1e6 B/s.

    s: input is already on A          -> runs 0.00 .. 0.10 (1e8 / 1e9)
    l: after s on A                   -> runs 0.10 .. 0.30
    r: s's 1e5 B reach B at 0.10 + 0.01 + 0.10 = 0.21 -> runs 0.21 .. 0.41 (4e8 / 2e9)
    t: A free at 0.30; l's data local; r's 3e4 B arrive 0.41 + 0.01 + 0.03 = 0.45
                                      -> runs 0.45 .. 0.55; output already on the sink
    latency 0.55. Period: A busy 0.4, B 0.2, link A->B 0.1, B->A 0.03 -> 0.4.
    Energy: compute 2 W x 0.4 + 4 W x 0.2 = 1.6; s->r (0.5 + 0.5) W x 0.1 s = 0.1;
    r->t (1.0 + 0.25) W x 0.03 s = 0.0375 -> 1.7375.
    """
    p = placement.load(diamond)
    ev = evaluate(p, [A, A, B, A], [[S, L, T], [R]])
    np.testing.assert_allclose(ev.start, [0.0, 0.1, 0.21, 0.45])
    np.testing.assert_allclose(ev.end, [0.1, 0.3, 0.41, 0.55])
    assert ev.latency_s == pytest.approx(0.55)
    assert ev.period_s == pytest.approx(0.4)
    assert ev.energy_j == pytest.approx(1.7375)
    assert ev.transfer_bytes == pytest.approx(1.3e5)
    # memory: weights of all blocks + the largest working memory
    assert ev.memory_bytes[A] == pytest.approx(100 + 200 + 100 + 3000)
    assert ev.memory_bytes[B] == pytest.approx(400 + 2000)
    assert ev.feasible and ev.value == pytest.approx(0.55)


def test_diamond_with_idle_energy(diamond):
    """count_idle adds idle power x (latency - busy): A 1 W x 0.15, B 0.5 W x 0.35."""
    diamond["count_idle"] = True
    p = placement.load(diamond)
    ev = evaluate(p, [A, A, B, A], [[S, L, T], [R]])
    assert ev.energy_j == pytest.approx(1.7375 + 0.15 + 0.175)


def test_diamond_input_and_output_transfers(diamond):
    """Source and sink on B: the 2e5 B input reaches A at 0.01 + 0.2 = 0.21.

    s 0.21 .. 0.31; l 0.31 .. 0.51; r: data at 0.31 + 0.11 = 0.42 -> 0.42 .. 0.62;
    t: r's data at 0.62 + 0.04 = 0.66 -> 0.66 .. 0.76; output 1e4 B to B: 0.01 + 0.01
    -> latency 0.78. Links: B->A carries input 0.2 + r->t 0.03 = 0.23; A->B 0.1 + output 0.01.
    Energy adds input (1.0 + 0.25) x 0.2 and output (0.5 + 0.5) x 0.01.
    """
    diamond["source"] = "B"
    p = placement.load(diamond)
    assert p.sink == B
    ev = evaluate(p, [A, A, B, A], [[S, L, T], [R]])
    np.testing.assert_allclose(ev.start, [0.21, 0.31, 0.42, 0.66])
    assert ev.latency_s == pytest.approx(0.78)
    assert ev.period_s == pytest.approx(0.4)
    assert ev.energy_j == pytest.approx(1.7375 + 1.25 * 0.2 + 1.0 * 0.01)
    assert ev.transfer_bytes == pytest.approx(1.3e5 + 2e5 + 1e4)


def test_order_matters_and_list_rule(diamond):
    """l and r both on B: order [s] on A, B runs r then l or l then r.

    s 0 .. 0.1 on A; data reaches B at 0.21. Order r, l: r 0.21 .. 0.41, l 0.41 .. 0.51;
    t waits for l: 0.51 + 0.01 + 0.02 = 0.54 -> 0.54 .. 0.64.
    Order l, r: l 0.21 .. 0.31, r 0.31 .. 0.51, t: 0.51 + 0.04 = 0.55 -> 0.65.
    The list rule (both ready at 0.21, tie on arrival -> larger upward rank: r) picks r first.
    """
    p = placement.load(diamond)
    rl = evaluate(p, [A, B, B, A], [[S, T], [R, L]])
    lr = evaluate(p, [A, B, B, A], [[S, T], [L, R]])
    assert rl.latency_s == pytest.approx(0.64)
    assert lr.latency_s == pytest.approx(0.65)
    auto = evaluate(p, [A, B, B, A])
    assert auto.order == [[S, T], [R, L]]
    assert auto.latency_s == pytest.approx(0.64)


def test_violations_are_reported(diamond):
    diamond["pinned"] = {"t": "A"}
    diamond["devices"][1]["memory_bytes"] = 1000.0
    diamond["model"]["blocks"][0]["allowed_devices"] = ["A"]
    diamond["constraints"] = {"latency_s": 0.1, "throughput_per_s": 100.0}
    p = placement.load(diamond)
    ev = evaluate(p, [B, B, B, B])
    kinds = sorted(v.kind for v in ev.violations)
    assert kinds == ["constraint", "constraint", "device", "memory", "pinned"]
    text = " | ".join(map(str, ev.violations))
    assert "block 's' cannot run on 'B' (not in its allowed_devices)" in text
    assert "block 't' is pinned to 'A', placed on 'B'" in text
    assert "device 'B' needs 3.8 kB (3800 bytes) for its 4 blocks, holds 1 kB" in text
    assert "latency_s is inf, must be at most 0.1" in text
    assert not ev.feasible and math.isinf(ev.latency_s)


def test_unreachable_pairs_and_bad_orders(diamond):
    diamond["network"] = {}
    p = placement.load(diamond)
    ev = evaluate(p, [A, B, A, A])
    # exactly the two edges that cross A -> B and B -> A; input and output stay on A
    assert sorted(str(v) for v in ev.violations) == [
        "unreachable: edge l -> t: no link from 'B' to 'A'",
        "unreachable: edge s -> l: no link from 'A' to 'B'"]
    assert math.isinf(ev.latency_s) and not ev.feasible
    p2 = placement.load(diamond_dict())
    deadlock = evaluate(p2, [A, A, A, A], [[T, S, L, R], []])
    assert any(v.kind == "order" and "contradict" in v.message for v in deadlock.violations)
    missing = evaluate(p2, [A, A, B, A], [[S, L, T], []])
    assert any("block 'r' is missing from the device orders" in str(v) for v in missing.violations)
    wrong = evaluate(p2, [A, A, B, A], [[S, L, T, R], []])
    assert any("block 'r' is in the order of 'A' but assigned to 'B'" in str(v) for v in wrong.violations)


def test_evaluate_ids_errors(diamond):
    p = placement.load(diamond)
    with pytest.raises(placement.PlanError, match=r"assignment: expected every block of the problem, missing \['t'\]"):
        evaluate_ids(p, {"s": "A", "l": "A", "r": "A"})
    with pytest.raises(placement.PlanError, match=r"assignment: expected device ids of the problem, found \{'t': 'C'\}"):
        evaluate_ids(p, {"s": "A", "l": "A", "r": "A", "t": "C"})
    with pytest.raises(placement.PlanError, match=r"expected block ids of the problem, found unknown \['x'\]"):
        evaluate_ids(p, {"s": "A", "l": "A", "r": "A", "t": "A", "x": "A"})


def test_objective_values(diamond):
    diamond["objective"] = {"latency": 1.0, "energy": 0.5}
    p = placement.load(diamond)
    ev = evaluate(p, [A, A, B, A], [[S, L, T], [R]])
    assert ev.value == pytest.approx(0.55 + 0.5 * 1.7375)
    assert evaluate(p.with_objective("throughput"), [A, A, B, A]).value == pytest.approx(0.4)
    assert evaluate(p.with_objective("energy"), [A, A, B, A]).value == pytest.approx(1.7375)


# ---------------------------------------------------------------- properties
problems = st.builds(
    lambda shape, n, d, net, seed, split: placement.load(_generate(
        shape, n, d, device_set="iot", network=net, seed=seed, split=split)),
    st.sampled_from(["chain", "dag", "hybrid"]), st.integers(1, 14), st.integers(1, 5),
    st.sampled_from(["star", "mesh", "tiers"]), st.integers(0, 10_000), st.sampled_from([0.0, 0.3]))

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _random_assignment(p, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, p.n_devices, size=p.n_blocks)


@SETTINGS
@given(problems, st.integers(0, 10_000))
def test_one_device_latency_is_io_plus_sum_of_compute(p, seed):
    d = int(np.random.default_rng(seed).integers(p.n_devices))
    ev = evaluate(p, np.full(p.n_blocks, d))
    work = float(p.compute_time[:, d].sum())
    arrivals = [float(p.input_arrival(b)[d]) for b in p.input_blocks]
    delivery = [float(p.output_delivery(b)[d]) for b in p.output_blocks]
    # all data is local: once every input is there the device never idles (the list rule)
    assert min(arrivals) + work + min(delivery) <= ev.latency_s * (1 + 1e-12)
    assert ev.latency_s <= (max(arrivals) + work + max(delivery)) * (1 + 1e-12)
    if len(set(arrivals)) == 1:          # one arrival time: compute ends exactly at arrival + work
        assert float(ev.end.max()) == pytest.approx(arrivals[0] + work, rel=1e-12)
        if len(delivery) == 1:
            assert ev.latency_s == pytest.approx(arrivals[0] + work + delivery[0], rel=1e-12)


@SETTINGS
@given(problems, st.integers(0, 10_000))
def test_latency_at_least_critical_path_at_fastest_speeds(p, seed):
    ev = evaluate(p, _random_assignment(p, seed))
    fastest = p.compute_time.min(axis=1)
    longest = np.zeros(p.n_blocks)
    for b in p.topo:
        longest[b] = fastest[b] + max((longest[u] for u, _ in p.preds[b]), default=0.0)
    assert ev.latency_s >= longest.max() * (1 - 1e-12)
    # and each block starts after all its inputs have arrived
    for k in range(p.n_edges):
        u, v = p.edge_src[k], p.edge_dst[k]
        assert ev.start[v] >= ev.end[u] + p.transfer_time(p.edge_bytes[k], ev.assignment[u], ev.assignment[v]) - 1e-12


@SETTINGS
@given(problems, st.integers(0, 10_000))
def test_period_is_the_busiest_resource(p, seed):
    a = _random_assignment(p, seed)
    ev = evaluate(p, a)
    # SPEC section 5, written out again by hand: the busiest device or directed link
    busy = {("dev", d): 0.0 for d in range(p.n_devices)}
    for b in range(p.n_blocks):
        busy[("dev", int(a[b]))] += float(p.compute_time[b, a[b]])

    def send(x, y, nbytes):
        if x != y:
            bw = p.bandwidth[x, y]
            busy[(x, y)] = busy.get((x, y), 0.0) + (nbytes / bw if bw > 0 else math.inf)

    for k in range(p.n_edges):
        send(int(a[p.edge_src[k]]), int(a[p.edge_dst[k]]), float(p.edge_bytes[k]))
    for b in p.input_blocks:
        send(p.source, int(a[b]), float(p.in_bytes[b]))
    for b in p.output_blocks:
        send(int(a[b]), p.sink, float(p.out_bytes[b]))
    expected = max(busy.values())
    if math.isfinite(expected):
        assert ev.period_s == pytest.approx(expected, rel=1e-12)
    assert ev.throughput_per_s == pytest.approx(1 / ev.period_s)
    # no device runs two blocks at once
    for blocks in ev.order:
        for x, y in zip(blocks, blocks[1:]):
            assert ev.start[y] >= ev.end[x] - 1e-12


@SETTINGS
@given(problems, st.integers(0, 10_000))
def test_given_order_reproduces_list_rule(p, seed):
    a = _random_assignment(p, seed)
    auto = evaluate(p, a)
    again = evaluate(p, a, auto.order)
    assert again.latency_s == pytest.approx(auto.latency_s)
    assert again.energy_j == pytest.approx(auto.energy_j)

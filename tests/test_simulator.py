"""The one simulator (`placement.simulator`): its entry points agree to the last bit, and
the numba kernel of heft's descent is its compiled twin.

Bit-equality matters: a plan exactly at a latency bound must be feasible for every caller
or for none (found in review, when heft's scorer summed a transfer in another order).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import placement
from heuristics._common import order_by
from placement.evaluator import evaluate, plan_costs
from placement.simulator import (SequenceSim, insertion_schedule, simulate_orders, simulate_sequence)

from .test_heuristics import NETWORKS, SETS, _random_linear_extension

def _generate(*args, **kw):
    """`placement.generate` without a shared medium: these tests check contention-free
    rules and methods (star networks put devices on a medium by default since issue 15;
    media are tested in tests/test_media.py)."""
    return placement.generate(*args, **{"media": False, **kw})



def _problem(seed, blocks=14, zero_first=None):
    d = _generate(("chain", "dag", "hybrid")[seed % 3], blocks, (2, 3, 5)[seed % 3],
                           device_set=SETS[seed % 3], network=NETWORKS[seed // 3 % 3], seed=seed,
                           split=0.25 if seed % 4 == 0 else 0.0)
    if seed % 2 if zero_first is None else zero_first:       # a zero-cost block ties on start times
        d["model"]["blocks"][0]["flops"] = 0.0
        d["model"]["blocks"][0].pop("time_s", None)
    return placement.load(d)


def _random_plan(p, rng):
    return np.array([rng.choice(np.nonzero(p.allowed[b])[0]) for b in range(p.n_blocks)], dtype=np.int64)


@pytest.mark.parametrize("seed", range(10))
def test_sequence_entry_points_equal_the_evaluator_bit_for_bit(seed):
    """`SequenceSim.fixed` (heft's variants) and `simulate_sequence` (local search) give the
    evaluator's latency, start and end times to the last bit, for random plans and orders --
    input from source, output to sink, link latency, unreachable pairs (inf), zero-cost
    blocks."""
    p = _problem(seed)
    sim = SequenceSim(p)
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(8):
        a = _random_plan(p, rng)
        seq = _random_linear_extension(p, rng)
        value, start, end = sim.fixed(a.tolist(), seq.tolist())
        ev = evaluate(p, a, order_by(a, np.argsort(seq), p.n_devices))
        c = plan_costs(p, a)
        s2, e2 = simulate_sequence(p, a, seq, c.ct, c.edge_time, c.in_time)
        if math.isinf(ev.latency_s):
            assert math.isinf(value)
            continue
        assert value == ev.latency_s
        assert start == ev.start.tolist() and end == ev.end.tolist()
        assert s2.tolist() == start and e2.tolist() == end
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("seed", range(6))
def test_resume_from_a_prefix_equals_a_full_simulation(seed):
    """Local search resumes after the first changed position: moving one block to another
    device and re-simulating from its position gives the full simulation's times exactly."""
    p = _problem(seed, blocks=16)
    rng = np.random.default_rng(100 + seed)
    for _ in range(10):
        a = _random_plan(p, rng)
        seq = _random_linear_extension(p, rng)
        c = plan_costs(p, a)
        start, end = simulate_sequence(p, a, seq, c.ct, c.edge_time, c.in_time)
        j = int(rng.integers(0, p.n_blocks))
        b = int(seq[j])
        choices = np.nonzero(p.allowed[b])[0]
        a2 = a.copy()
        a2[b] = int(rng.choice(choices))
        c2 = plan_costs(p, a2)
        # the first position whose block, device or inputs changed: no earlier than b's own
        # position or any of its predecessors' edges (their consumer is b)
        first = j
        for v, k in p.succs[b]:
            first = min(first, int(np.nonzero(seq == v)[0][0]))
        full = simulate_sequence(p, a2, seq, c2.ct, c2.edge_time, c2.in_time)
        part = simulate_sequence(p, a2, seq, c2.ct, c2.edge_time, c2.in_time, first=first,
                                 start=start, end=end)
        assert full[0].tolist() == part[0].tolist() and full[1].tolist() == part[1].tolist()


@pytest.mark.parametrize("seed", range(6))
def test_fixed_orders_detect_a_deadlock(seed):
    """Orders that contradict the block graph deadlock: the evaluator reports an order
    violation and infinite latency; consistent orders never deadlock."""
    p = _problem(seed, zero_first=False)
    B = p.n_blocks
    d = int(np.nonzero(p.allowed.all(axis=0))[0][0])      # a device that may run every block
    a = np.full(B, d, dtype=np.int64)
    order = [[] for _ in range(p.n_devices)]
    order[d] = list(p.topo)
    c = plan_costs(p, a)
    assert not simulate_orders(p, a, order, c.ct, c.edge_time, c.in_time)[2]
    order[d] = list(reversed(p.topo))
    assert simulate_orders(p, a, order, c.ct, c.edge_time, c.in_time)[2]
    ev = evaluate(p, a, order)
    assert math.isinf(ev.latency_s) and any(v.kind == "order" for v in ev.violations)


@pytest.mark.parametrize("seed", range(10))
def test_compiled_insertion_schedule_is_the_simulators_twin_bit_for_bit(seed):
    """`heuristics._polish.schedule` (numba) equals `placement.simulator.insertion_schedule`
    to the last bit: makespan, last block, start, end and the block each one waited for."""
    from heuristics import _polish
    from heuristics._descent import _Kernel

    _polish.warm_up()
    p = _problem(seed, blocks=16)
    k = _Kernel(p)
    rng = np.random.default_rng(7 + seed)
    for _ in range(8):
        a = _random_plan(p, rng)
        seq = _random_linear_extension(p, rng).astype(np.int64)
        mk, last = _polish.schedule(a, seq, k.ct, k.pind, k.pu, k.pbytes, k.lat, k.inv, k.inp, k.outd, *k.work)
        mk2, last2, start, end, why = insertion_schedule(p, a, seq)
        if math.isinf(mk):
            assert math.isinf(mk2)
            continue
        assert (mk, last) == (mk2, last2)
        assert k.start.tolist() == start.tolist() and k.end.tolist() == end.tolist()
        assert k.work[6].tolist() == why.tolist()


def test_importing_heft_compiles_nothing():
    """The kernels compile on an explicit warm-up (called by the API before the clock
    starts), not as a side effect of an import."""
    import subprocess
    import sys

    code = ("import heuristics.heft, heuristics.local, solvers._warmstart\n"
            "from heuristics import _polish\n"
            "assert not _polish._warmed\n"
            "assert not _polish.descend.signatures, _polish.descend.signatures\n"
            "_polish.warm_up()\n"
            "assert _polish._warmed and _polish.descend.signatures\n")
    subprocess.run([sys.executable, "-c", code], check=True)

"""The shared-media term of the lower bounds (placement/bounds.py `_forced_air`,
`_media_latency_bound`; proof in docs/bounds.md): valid against brute's optimum on seeded
tiny media problems whose pins force transfers onto the air, and tight on a hand-worked one."""

from __future__ import annotations

import numpy as np
import pytest

import placement
from placement import bounds
from tests.test_media import fan
from tests.test_media_heft import three


def test_the_air_term_meets_the_optimum_when_pins_force_every_transfer_onto_it():
    # fan pinned s A, l B, r C, t A: [s,l] (0.1 s), [s,r] (0.2 s), [l,t], [r,t] (0.01 s each)
    # must cross the air. One machine: the two sends from s have head 0.1 (s ends) and tail
    # 0.23 (10 ms latency + 0.1 s compute + 10 ms + 10 ms + t's 0.1 s), so latency >= 0.1 +
    # 0.3 + 0.23 = 0.63 -- brute's optimum; without the medium the bounds give 0.53.
    d = fan()
    d["pinned"] = {"s": "A", "l": "B", "r": "C", "t": "A"}
    p = placement.load(d)
    assert bounds.latency_bound(p) == pytest.approx(0.63)
    assert bounds.period_bound(p) == pytest.approx(0.32)         # the medium's load
    best = placement.solve(p, "brute")
    assert best.value == pytest.approx(0.63)
    assert placement.solve(p.with_objective("throughput"), "brute").value == pytest.approx(0.32)
    free = placement.load({**d, "network": {"default": d["network"]["default"]}})
    assert bounds.latency_bound(free) == pytest.approx(0.53)
    assert bounds.period_bound(free) == pytest.approx(0.2)


def test_a_transfer_that_may_stay_on_one_device_or_leave_the_air_is_not_forced():
    d = fan()
    d["pinned"] = {"s": "A", "t": "A"}                              # l and r may run on A
    p = placement.load(d)
    assert bounds._forced_air(p, bounds.memory_view(p)) == []
    d["pinned"] = {"s": "A", "l": "B", "r": "C", "t": "A"}
    d["network"]["media"] = [{"id": "w", "devices": ["A", "B"]}]     # C is wired
    p = placement.load(d)
    ((m, tx, uv, _),) = bounds._forced_air(p, bounds.memory_view(p))
    assert m == 0 and sorted(tx.tolist()) == pytest.approx([0.01, 0.1])   # [s,l] and [l,t]


def _random(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    d = fan(input_bytes=float(rng.uniform(0, 1e5))) if seed % 3 else three()
    if seed % 3 == 0:
        d["devices"] = d["devices"][:3]
        d["network"]["media"][0]["devices"] = list("ABC")
    ids = [b["id"] for b in d["model"]["blocks"]]
    devs = [x["id"] for x in d["devices"]]
    for b in d["model"]["blocks"]:
        b["flops"] = float(rng.uniform(2e7, 3e8))
        b["output_bytes"] = float(rng.uniform(1e3, 2e5))
    for e in d["model"]["edges"]:
        if isinstance(e, dict):
            e["bytes"] = float(rng.uniform(1e4, 3e5))
    for x, dev in zip(rng.uniform(0.5, 3, len(devs)), d["devices"]):
        dev["flops_per_s"] = float(x * 1e9)
    # pins (and sometimes allowed devices) that force some transfers onto the air
    d["pinned"] = {b: str(rng.choice(devs)) for b in ids if rng.random() < 0.6}
    if seed % 4 == 1:
        free = [b for b in ids if b not in d["pinned"]]
        if free:
            d["model"]["blocks"][ids.index(free[0])]["allowed_devices"] = [devs[1], devs[2]]
    if seed % 5 == 2:
        d["sink"] = devs[1]
    if seed % 6 == 5:
        d["network"]["media"][0]["devices"] = devs[:2]
    d["objective"] = ["latency", "throughput", {"latency": 1.0, "throughput": 2.0}][seed % 3]
    return d


@pytest.mark.parametrize("seed", range(24))
def test_bounds_with_the_air_term_never_exceed_brutes_optimum(seed):
    d = _random(seed)
    p = placement.load(d)
    best = placement.solve(p, "brute", time_limit=60)
    assert best.status.value == "optimal", best.message
    for metric, key in (("latency", "latency_s"), ("throughput", "period_s")):
        opt = placement.solve(p.with_objective(metric), "brute", time_limit=60).value
        assert bounds.METRIC_BOUNDS[metric](p) <= opt * (1 + 1e-9), (metric, seed)
        assert bounds.strong_metric_bound(p, metric, 1.0) <= opt * (1 + 1e-9)
    assert p.lower_bound() <= best.value * (1 + 1e-9)


def test_the_air_term_binds_on_some_seeded_problems():
    """The term is not vacuous: on several of the seeded problems it is what the bound is."""
    raised = 0
    for seed in range(48):      # 12 of them since the DP's predecessor pairs (docs/bounds.md 1b)
        d = _random(seed)
        p = placement.load(d)
        mv = bounds.memory_view(p)
        if not bounds._forced_air(p, mv):
            continue
        free = placement.load({**d, "network": {k: v for k, v in d["network"].items() if k != "media"}})
        if bounds.latency_bound(p) > bounds.latency_bound(free) * (1 + 1e-9) \
                or bounds.period_bound(p) > bounds.period_bound(free) * (1 + 1e-9):
            raised += 1
    assert raised >= 8

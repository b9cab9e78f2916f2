"""Bounds over every split choice that keep what splitting costs (`placement.split_bounds`,
docs/bounds.md "Phases"): never above brute force's optimum over the choices, on seeded
tiny problems with and without a shared medium; equal to a hand-worked optimum where the
one-shard relaxation is not."""

from __future__ import annotations

import copy
import json
import math

import numpy as np

import pytest

import placement
from placement import bounds, split_bounds
from placement.plan import Status

from .test_split_choice import TOL


def _three_ways(seed: int, media: bool) -> dict:
    """`_seeded` with 3 devices and ways [1, 2, 3] on its split blocks (chain, DAG and
    hybrid shapes; tensor and spatial modes; halos and overheads by seed); with a medium, one
    split block (brute's medium orders grow fast)."""
    shape = ("chain", "dag", "hybrid")[seed % 3]
    d = placement.generate(shape, 4, 3, seed=seed, media=False, split=0.25 + 0.25 * (seed % 2 and not media),
                           device_set=("homogeneous", "iot", "edge")[seed % 3])
    k = 0
    for b in d["model"]["blocks"]:
        if b.get("split"):
            b["split"] = {"ways": [1, 2, 3] if k == 0 else [1, 2], "mode": ("tensor", "spatial")[(seed + k) % 2],
                          "overhead_flops": b["flops"] * 0.05 * (seed % 2), "halo_bytes": 1000.0 * (seed % 3)}
            k += 1
    if media:
        d["network"]["media"] = [{"id": "air", "devices": [dev["id"] for dev in d["devices"]]}]
    return d


_OPT: dict[str, float] = {}


def _optimum(d: dict, objective: str) -> float:
    """brute's optimum over every choice (cpsat's where brute refuses the size)."""
    key = json.dumps([d, objective], sort_keys=True)
    if key not in _OPT:
        try:
            plan = placement.solve(d, "brute", objective=objective, time_limit=120)
        except placement.InputError as e:         # brute's size refusal (medium orders):
            assert "brute refuses" in str(e)        # cpsat, checked against brute with media
            plan = placement.solve(d, "cpsat", objective=objective, time_limit=60)
        assert plan.status == Status.OPTIMAL, plan.message
        _OPT[key] = plan.value
    return _OPT[key]


@pytest.mark.parametrize("media", [False, True], ids=["free", "media"])
@pytest.mark.parametrize("seed", range(6))
def test_phase_bounds_never_exceed_the_optimum_over_every_choice(seed, media):
    d = _three_ways(seed, media)
    p = placement.load(d)
    assert p.n_split_combinations > 1
    for metric in ("latency", "throughput", "energy"):
        best = _optimum(d, metric)
        q = p.with_objective(metric)
        phase = split_bounds.PHASE_BOUNDS[metric](q)
        assert 0 < phase <= best * (1 + 1e-9), (metric, phase, best)
        # and what every plan reports, from any expansion of the family
        for choice in list(p.split_combinations())[:3]:
            assert bounds.lower_bound(q.expand(choice)) <= best * (1 + 1e-9), (metric, choice)


def _one_block(latency_s: float = 0.1) -> dict:
    """One tensor block b (ways [1, 2]), 1 s whole on either of two identical devices A
    (source and sink) and B; the link costs ``latency_s`` each way and no bytes. Whole on A:
    1 s. Split, one shard each: B's shard gets its input at 0.1 s, ends at 0.6 s and its
    partial is at A at 0.7 s: the optimum, 0.7 s."""
    dev = {"type": "pi", "flops_per_s": 1e9, "memory_bytes": 1e9, "power_active_w": 2.0,
           "power_idle_w": 1.0, "tx_power_w": 0.5, "rx_power_w": 0.25}
    return {
        "name": "one-block",
        "model": {"name": "one", "input_bytes": 0,
                  "blocks": [{"id": "b", "flops": 1e9, "params_bytes": 0, "activation_bytes": 0,
                              "output_bytes": 0, "split": {"ways": [1, 2], "mode": "tensor"}}],
                  "edges": []},
        "devices": [{"id": "A", **dev}, {"id": "B", **dev}],
        "network": {"default": {"bandwidth_bytes_per_s": 1e6, "latency_s": latency_s}},
        "source": "A", "sink": "A",
    }


def test_phase_latency_is_the_hand_worked_optimum_where_the_relaxation_is_not():
    d = _one_block()
    p = placement.load(d)
    assert _optimum(d, "latency") == pytest.approx(0.7, rel=TOL)
    assert split_bounds.phase_latency(p) == pytest.approx(0.7, rel=1e-12)
    assert bounds.latency_bound(p) == pytest.approx(0.7, rel=1e-12)
    # the relaxation of every choice keeps one shard of b: 0.5 s
    assert bounds.latency_bound(bounds.split_relaxation(p)) == pytest.approx(0.5, rel=1e-12)
    # every method's plan now reports the proof
    plan = placement.solve(d, "heft", time_limit=5)
    assert plan.value == pytest.approx(0.7, rel=TOL) and plan.status == Status.OPTIMAL


def test_phase_latency_counts_one_transfer_at_a_time_on_a_medium():
    """Four spatial shards of a 4 s block, fed from the source A over one medium: input 4 MB
    at 1 MB/s, no latency, four devices. A shard off A gets its 1 MB one transfer after the
    other: the first ends at 1 + 1 s, the second at 2 + 1 s. Best: two shards on A (2 s), one
    each on B and C (2 s, 3 s): 3 s. Contention-free, the three remote shards get their MB at
    once: 2 s."""
    d = _one_block(0.0)
    d["devices"] = [{"id": x, **{k: v for k, v in d["devices"][0].items() if k != "id"}} for x in "ABCD"]
    d["model"]["input_bytes"] = 4e6
    d["model"]["blocks"][0].update(flops=4e9, split={"ways": [1, 2, 4], "mode": "spatial"})
    free = placement.load(copy.deepcopy(d))
    d["network"]["media"] = [{"id": "air", "devices": list("ABCD")}]
    air = placement.load(d)
    # contention-free, the three remote shards get their MB at once: 2 s
    assert split_bounds.phase_latency(free) == pytest.approx(2.0, rel=1e-9)
    assert _optimum(d, "latency") == pytest.approx(3.0, rel=TOL)
    assert split_bounds.phase_latency(air) == pytest.approx(3.0, rel=1e-9)


def _profiled(model: str, types: list[str], network: str, media: bool) -> dict:
    """A problem from a shipped ``--splits auto`` profile (as `benchmarks/bench_splits.py`
    builds its problems; no torch)."""
    import pathlib

    import profiles

    root = pathlib.Path(__file__).resolve().parent.parent
    example = json.loads((root / "examples" / "models" / f"{model}.splits.json").read_text())
    return profiles.make_problem(example["model"], types, network,
                                 reference=example["meta"]["calibration"]["reference"],
                                 name=f"{model}-test", media=media)


@pytest.mark.parametrize("model", ["mobilevit_s", "deit_tiny_patch16_224"])
def test_a_profiled_model_gets_its_proven_best_choice_on_edge_and_server_over_wifi(model):
    """The profiled model on a Pi (the camera), a Jetson Nano, a laptop and an edge GPU on
    one Wi-Fi channel, with every ``--splits auto`` choice (10^4 or more): the best plan
    sends the input whole to the server, and the bound over every choice proves it, so the
    exact methods (and heft) return it as optimal."""
    d = _profiled(model, ["rpi4", "jetson-nano", "laptop", "edge-gpu"], "wifi5", True)
    p = placement.load(d)
    assert p.n_split_combinations >= 10 ** 4
    for method in ("heft", "cpsat"):
        plan = placement.solve(d, method, time_limit=20)
        assert plan.status == Status.OPTIMAL, (method, plan.status, plan.gap, plan.message)
        assert set(plan.split.values()) == {1}
    assert bounds.lower_bound(p) == pytest.approx(plan.value, rel=1e-9)


def test_two_chains_side_by_side_are_not_one_chain():
    """Two independent split blocks on one medium: every block has at most one predecessor
    and one successor, yet they are two paths, not one; the air DP (chains only) must not
    read the second as the first's successor. The bound holds and nothing raises."""
    d = _one_block(0.01)
    twin = copy.deepcopy(d["model"]["blocks"][0])
    twin["id"] = "c"
    d["model"]["blocks"].append(twin)
    d["network"]["media"] = [{"id": "air", "devices": ["A", "B"]}]
    p = placement.load(d)
    assert split_bounds.air_phase_latency(p) == 0.0
    best = _optimum(d, "latency")
    assert 0 < bounds.lower_bound(p) <= best * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_a_chain_with_a_skip_edge_keeps_the_air_bound_and_it_holds(seed):
    """A 4-block chain with a skip edge from its first block into its last (MobileViT's
    shortcut into its fusion block, opened with --splits auto) on one medium: the air DP
    applies (the topological order is still a path of edges; the skip is ignored, which
    drops transfers and dependencies only) and stays below the optimum over every choice."""
    d = placement.generate("chain", 4, 3, seed=seed, media=False, split=0.5, device_set="iot")
    blocks = d["model"]["blocks"]
    k = 0
    for b in blocks:
        if b.get("split"):
            b["split"] = {"ways": [1, 2], "mode": ("spatial", "tensor")[(seed + k) % 2], "overhead_flops": 0.0,
                          "halo_bytes": 500.0 * (seed % 2)}
            k += 1
    edges = d["model"]["edges"]
    first, last = blocks[0]["id"], blocks[-1]["id"]
    edges.append({"src": first, "dst": last, "bytes": 2e4} if isinstance(edges[0], dict) else [first, last])
    d["network"]["media"] = [{"id": "air", "devices": [dev["id"] for dev in d["devices"]]}]
    p = placement.load(d)
    fam = split_bounds._Family(p)
    assert split_bounds._is_chain(fam) and any(len(fam.preds[v]) == 2 for v in fam.order)
    air = split_bounds.air_phase_latency(p)
    best = _optimum(d, "latency")
    assert 0 < air <= best * (1 + 1e-9), (air, best)


def _two_bands() -> dict:
    """Two spatial blocks u -> v (ways [1, 2] each, 2 GFLOP each) on a slow camera A (1
    GFLOP/s, source and sink) and a fast server B (100 GFLOP/s); the link moves 1 MB/s with
    no latency; the input and the edge are 2 MB, the output nothing. Best: u split in two on
    B, each half of the input sent at once (1 s), its shards 1.00-1.01-1.02 s, v on B to 1.04
    s. Were one shard of u on A (it ends at 1 s), its band (1 MB) would reach B at 2 s."""
    d = _one_block(0.0)
    d["devices"][1]["flops_per_s"] = 1e11
    spatial = {"ways": [1, 2], "mode": "spatial"}
    d["model"]["input_bytes"] = 2e6
    d["model"]["blocks"] = [{"id": b, "flops": 2e9, "params_bytes": 0, "activation_bytes": 0,
                             "output_bytes": 2e6 if b == "u" else 0, "split": dict(spatial)} for b in "uv"]
    d["model"]["edges"] = [{"src": "u", "dst": "v", "bytes": 2e6}]
    return d


def test_a_spread_producer_sends_its_band_before_a_consumer_all_on_one_device():
    """Between two spatial blocks two bands may not touch (0 bytes between them). With u on
    A and B and all of v on B, v's last shard still waits for A's band (its largest message,
    1 MB). The bound that let v start 0 s after A's band (the least shard-to-shard bytes, 0)
    said 1.03 s; the optimum, and now the bound, is 1.04 s."""
    d = _two_bands()
    p = placement.load(d)
    assert _optimum(d, "latency") == pytest.approx(1.04, rel=TOL)
    assert split_bounds.phase_latency(p) == pytest.approx(1.04, rel=1e-9)
    plan = placement.solve(d, "heft", time_limit=5)
    assert plan.status == Status.OPTIMAL and plan.value == pytest.approx(1.04, rel=TOL)


def _split_chain(seed: int, media: bool) -> dict:
    """A chain u -> v -> w on three devices of seeded speeds, whose first two blocks are
    split (ways [1, 2] and [1, 2, 3]), mostly in one mode (spatial or tensor by seed), with
    halos by seed, on links fast enough that splitting pays: the edges between two split
    blocks that `_three_ways` (modes alternating) never has."""
    r = np.random.default_rng(seed)
    d = _one_block(float(r.choice([0.0, 0.002, 0.01])))
    dev = {k: v for k, v in d["devices"][0].items() if k != "id"}
    d["devices"] = [{"id": x, **dev, "flops_per_s": float(f)}
                    for x, f in zip("ABC", [r.uniform(1e9, 4e9), r.uniform(1e9, 8e9), r.uniform(1e9, 8e9)])]
    d["network"]["default"]["bandwidth_bytes_per_s"] = float(r.choice([2e7, 5e7, 2e8]))
    mode = str(r.choice(["spatial", "tensor"]))
    d["model"]["input_bytes"] = float(r.uniform(1e5, 2e6))
    blocks = []
    for k, b in enumerate("uvw"):
        blk = {"id": b, "flops": float(r.uniform(2e8, 2e9)), "params_bytes": 0, "activation_bytes": 0,
               "output_bytes": float(r.uniform(1e5, 2e6)) if b != "w" else 1e3}
        if k < 2:
            m = mode if r.random() < 0.8 else ("tensor" if mode == "spatial" else "spatial")
            blk["split"] = {"ways": [1, 2] if k == 0 else [1, 2, 3], "mode": m,
                            "halo_bytes": float(r.choice([0.0, 0.03 * blk["output_bytes"]]))}
        blocks.append(blk)
    d["model"]["blocks"] = blocks
    d["model"]["edges"] = [{"src": "u", "dst": "v", "bytes": blocks[0]["output_bytes"]},
                           {"src": "v", "dst": "w", "bytes": blocks[1]["output_bytes"]}]
    if media:
        d["network"]["media"] = [{"id": "air", "devices": list("ABC")}]
    return d


def _optimum_without_the_phase_bounds(d: dict) -> float:
    """The least latency over every choice, proven without `split_bounds`: brute over the
    choices, or (with a medium, where brute refuses the size) cpsat on each expansion fixed
    (`fixed_split`: that expansion's own bounds only), the least of them."""
    p = placement.load(d)
    try:
        plan = placement.solve(d, "brute", time_limit=120)
        assert plan.status == Status.OPTIMAL, plan.message
        return plan.value
    except placement.InputError as e:
        assert "brute refuses" in str(e)
    best = math.inf
    for choice in p.split_combinations():
        plan = placement.solve(p.expand(choice).fixed_split(), "cpsat", time_limit=30)
        assert plan.status == Status.OPTIMAL, (choice, plan.message)
        best = min(best, plan.value)
    return best


@pytest.mark.parametrize("media", [False, True], ids=["free", "media"])
@pytest.mark.parametrize("seed", range(8))
def test_phase_latency_holds_between_two_split_blocks(seed, media):
    d = _split_chain(seed, media)
    p = placement.load(d)
    fam = split_bounds._Family(p)
    u, v = fam.order[:2]
    assert any(x == u for x, _ in fam.preds[v]) and len(fam.ways[u]) > 1 and len(fam.ways[v]) > 1
    best = _optimum_without_the_phase_bounds(d)
    phase = split_bounds.phase_latency(p)
    assert 0 < phase <= best * (1 + 1e-9), (phase, best)


def test_the_air_dp_on_interchangeable_devices_equals_the_dp_on_every_device(monkeypatch):
    """mobilevit_s on four identical Pis (the first the camera) on one Wi-Fi channel: the air
    DP computes its labels on one Pi of the three that are not the camera and copies them
    (`_device_classes`); the bound is the one computed on every device, to the last bit."""
    d = _profiled("mobilevit_s", ["rpi4"] * 4, "wifi5", True)
    p = placement.load(d)
    fam = split_bounds._Family(p)
    rep = split_bounds._device_classes(p, fam, {p.source, p.sink})
    assert sorted(set(rep.tolist())) == [0, 1] and p.source == 0
    fast = split_bounds._air_phase_cut(p, fam, p.source)
    monkeypatch.setattr(split_bounds, "_device_classes", lambda p, fam, fixed: np.arange(p.n_devices))
    assert split_bounds._air_phase_cut(p, fam, p.source) == fast > 0
    # a Pi nearer the camera (a faster link to it) is no longer interchangeable with the others
    monkeypatch.undo()
    cam, near = d["devices"][0]["id"], d["devices"][2]["id"]
    link = next(x for x in d["network"]["links"] if {x["src"], x["dst"]} == {cam, near})
    link["bandwidth_bytes_per_s"] *= 2
    q = placement.load(d)
    rep = split_bounds._device_classes(q, split_bounds._Family(q), {q.source, q.sink})
    assert rep.tolist() == [0, 1, 2, 1]


def test_a_consumer_waits_for_the_last_shard_of_its_producer_elsewhere():
    """A tensor block u (1 s whole, ways [1, 4]) then a 1 ms block v on two 1 GFLOP/s boards
    A (source and sink) and B, 0.1 s of link latency and no bytes. Best: two shards of u on
    each (A's end at 0.25 and 0.5 s; B's, fed at 0.1 s, at 0.35 and 0.6 s), v on B at 0.6 s
    (A's partials arrive then), its result at A at 0.701 s. The DP that let v wait only for
    the first shard elsewhere (0.35 + 0.1 s) said 0.601 s; with the gather (the shards off
    v's device, the last of them ends no earlier than the (w - c)-th smallest finish time
    there, then sends) it is the optimum."""
    d = _one_block(0.1)
    d["model"]["blocks"][0]["split"]["ways"] = [1, 4]
    d["model"]["blocks"].append({"id": "v", "flops": 1e6, "params_bytes": 0, "activation_bytes": 0,
                                 "output_bytes": 0})
    d["model"]["edges"] = [{"src": "b", "dst": "v", "bytes": 0}]
    p = placement.load(d)
    best = _optimum(d, "latency")
    assert best == pytest.approx(0.701, rel=TOL)
    assert split_bounds.phase_latency(p) == pytest.approx(0.701, rel=1e-9)

"""The split transform (SPEC section 6), the plan file (section 7), and the generator."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import placement
from placement.plan import Plan, Status, gap_of, write_json_atomic


# ------------------------------------------------------------------------- split
def _split_diamond(diamond, block, ways, mode, **extra):
    idx = {b["id"]: i for i, b in enumerate(diamond["model"]["blocks"])}
    diamond["model"]["blocks"][idx[block]]["split"] = {"ways": ways, "mode": mode, **extra}
    return placement.load(diamond)


def test_tensor_split_rules(diamond):
    p = _split_diamond(diamond, "r", [2, 4], "tensor")
    ids = [b.id for b in p.blocks]
    assert ids == ["s", "l", "r#0", "r#1", "r#2", "r#3", "t"]
    shard = p.blocks[2]
    assert shard.flops == pytest.approx(1e8)               # 4e8 / 4
    assert shard.params_bytes == pytest.approx(100)        # weights divided
    assert shard.activation_bytes == pytest.approx(500)
    assert shard.output_bytes == pytest.approx(30000)      # a full-size partial sum
    assert shard.origin == "r" and shard.kind == "attention"
    edges = {(p.blocks[u].id, p.blocks[v].id): b for u, v, b in zip(p.edge_src, p.edge_dst, p.edge_bytes)}
    assert edges[("s", "r#2")] == pytest.approx(1e5)       # input replicated
    assert edges[("r#3", "t")] == pytest.approx(30000)     # each partial sent whole, summed at t
    assert len(edges) == 2 + 4 + 4


def test_spatial_split_rules_with_halo_and_overhead(diamond):
    p = _split_diamond(diamond, "r", [2], "spatial", halo_bytes=1000, overhead_flops=5e6)
    shard = p.blocks[2]
    assert shard.flops == pytest.approx(2e8 + 5e6)
    assert shard.params_bytes == pytest.approx(400)        # weights replicated
    edges = {(p.blocks[u].id, p.blocks[v].id): b for u, v, b in zip(p.edge_src, p.edge_dst, p.edge_bytes)}
    assert edges[("s", "r#1")] == pytest.approx(5e4 + 1000)  # input partitioned, plus halo


def test_split_input_block_pins_and_times(diamond):
    diamond["pinned"] = {"s": "A"}
    diamond["model"]["blocks"][0]["time_s"] = {"A": 0.4}
    p = _split_diamond(diamond, "s", 2, "spatial")
    assert [b.id for b in p.blocks[:2]] == ["s#0", "s#1"]
    assert p.pinned == {0: 0, 1: 0}
    assert p.in_bytes[0] == pytest.approx(1e5)             # the model input, partitioned
    assert p.compute_time[0, 0] == pytest.approx(0.2)      # measured time scaled with flops
    assert p.input_blocks == (0, 1)


def test_split_both_ends(diamond):
    idx = {b["id"]: i for i, b in enumerate(diamond["model"]["blocks"])}
    diamond["model"]["blocks"][idx["s"]]["split"] = {"ways": [2], "mode": "tensor"}
    p = _split_diamond(diamond, "r", [2], "spatial")
    edges = {(p.blocks[u].id, p.blocks[v].id): b for u, v, b in zip(p.edge_src, p.edge_dst, p.edge_bytes)}
    # each tensor s shard holds a full-size partial of s's output; a spatial r shard needs
    # its half of that partial, a whole l all of it
    assert edges[("s#0", "r#1")] == pytest.approx(1e5 / 2)
    assert edges[("s#1", "l")] == pytest.approx(1e5)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["chain", "dag", "hybrid"]), st.integers(2, 20))
def test_splitting_conserves_flops_and_output(seed, shape, n):
    d = placement.generate(shape, n, 3, seed=seed, split=0.4)
    whole = placement.load({**d, "model": {**d["model"], "blocks": [
        {k: v for k, v in b.items() if k != "split"} for b in d["model"]["blocks"]]}})
    split = placement.load(d)
    assert split.flops.sum() == pytest.approx(whole.flops.sum())
    # spatial shards partition the output; every tensor shard holds a full-size partial sum
    expected = 0.0
    for i, b in enumerate(d["model"]["blocks"]):
        sp = b.get("split")
        w = max(sp["ways"]) if sp else 1
        expected += whole.out_bytes[i] * (w if sp and sp["mode"] == "tensor" and w > 1 else 1)
    assert split.out_bytes.sum() == pytest.approx(expected)
    for b in split.blocks:
        if b.origin:
            assert b.id.startswith(b.origin + "#")


# -------------------------------------------------------------------------- plan
def test_plan_round_trip_and_atomic_write(tmp_path, diamond):
    plan = placement.solve(diamond, "single", time_limit=5)
    f = tmp_path / "sub" / "plan.json"
    plan.save(f)
    assert not [x for x in os.listdir(f.parent) if x.endswith(".tmp")]
    back = Plan.load(f)
    assert back.to_dict() == plan.to_dict()
    data = json.loads(f.read_text())
    assert data["status"] == "feasible" and data["method"] == "single"
    assert set(data["metrics"]) == {"latency_s", "period_s", "throughput_per_s", "energy_j",
                                    "memory_bytes", "transfer_bytes"}
    assert data["gap"] == pytest.approx((data["value"] - data["bound"]) / data["value"])


def test_json_has_no_infinities(tmp_path):
    f = tmp_path / "x.json"
    write_json_atomic(f, {"a": float("inf"), "b": [float("nan"), 1.0]})
    assert json.loads(f.read_text()) == {"a": None, "b": [None, 1.0]}


def test_plan_file_errors(tmp_path):
    with pytest.raises(placement.PlanError, match=r"assignment: expected an object of block id -> device id"):
        Plan.from_dict({"assignment": ["s"]})
    with pytest.raises(placement.PlanError, match=r"status: expected one of \[.*'optimal'.*\], found \"great\""):
        Plan.from_dict({"assignment": {}, "status": "great"})
    with pytest.raises(placement.PlanError, match=r"order: expected an object of device id -> list of block ids"):
        Plan.from_dict({"assignment": {}, "order": {"A": "s"}})
    with pytest.raises(placement.PlanError, match=r"missing\.json: \(file\): expected an existing plan file"):
        Plan.load(tmp_path / "missing.json")


def test_gap_formula():
    assert gap_of(2.0, 1.5) == pytest.approx(0.25)
    assert gap_of(0.0, 0.0) == 0.0
    assert gap_of(None, 1.0) is None and gap_of(1.0, None) is None
    assert Status.TIME_LIMIT.has_plan and not Status.NO_SOLUTION.has_plan


def test_evaluate_rescoring_a_hand_written_plan(diamond):
    plan = placement.evaluate(diamond, {"assignment": {"s": "A", "l": "A", "r": "B", "t": "A"},
                                        "order": {"A": ["s", "l", "t"], "B": ["r"]}})
    assert plan.value == pytest.approx(0.55) and plan.status == Status.FEASIBLE
    assert plan.schedule["r"] == {"device": "B", "start_s": pytest.approx(0.21), "end_s": pytest.approx(0.41)}
    assert plan.metrics["memory_bytes"] == {"A": pytest.approx(3400), "B": pytest.approx(2400)}
    # a plan that lies about its value is re-scored
    lying = placement.evaluate(diamond, {"assignment": {"s": "A", "l": "A", "r": "B", "t": "A"},
                                         "value": 0.001, "metrics": {"latency_s": 0.001}})
    assert lying.value == pytest.approx(0.55)


# --------------------------------------------------------------------- generator
@pytest.mark.parametrize("shape", ["chain", "dag", "hybrid"])
@pytest.mark.parametrize("devices", ["homogeneous", "iot", "edge"])
@pytest.mark.parametrize("network", ["star", "mesh", "tiers"])
def test_generator_shapes_load(shape, devices, network):
    d = placement.generate(shape, 25, 5, device_set=devices, network=network, seed=3)
    p = placement.load(d)
    assert p.n_blocks == 25 and p.n_devices == 5
    assert len(p.topo) == 25                              # acyclic, connected order
    assert len(p.output_blocks) == 1
    assert np.all(p.reachable)
    from placement.feasibility import infeasibility_reasons
    assert infeasibility_reasons(p) == []                 # every block fits somewhere
    # memory binds: the source device cannot hold the whole model; in the edge set the
    # near-edge server (its last device) can, and some edge device cannot
    need = p.params.sum() + p.activation.max()
    if devices == "edge":
        assert need <= p.memory[-1] and need > p.memory[:-1].min()
    else:
        assert need > p.memory[0]


def test_generator_is_reproducible_and_seeded():
    a = placement.generate("hybrid", 40, 6, seed=11, split=0.2)
    b = placement.generate("hybrid", 40, 6, seed=11, split=0.2)
    c = placement.generate("hybrid", 40, 6, seed=12, split=0.2)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(a, sort_keys=True) != json.dumps(c, sort_keys=True)


def test_hybrid_has_attention_and_skip_edges():
    p = placement.load(placement.generate("hybrid", 30, 4, seed=1))
    kinds = {b.kind for b in p.blocks}
    assert {"conv", "attention", "mlp", "head"} <= kinds
    skips = [(u, v) for u, v in zip(p.edge_src, p.edge_dst) if v - u > 1]
    assert len(skips) >= 2


def test_generator_errors():
    with pytest.raises(placement.InputError, match=r"shape: expected one of chain, dag, hybrid, found \"tree\""):
        placement.generate("tree")
    with pytest.raises(placement.InputError, match=r"blocks: expected 1 to 20,000, found 0"):
        placement.generate("chain", 0, 2)
    # a size that would hang the generator (and no method could plan) is refused at once
    with pytest.raises(placement.InputError, match=r"blocks: expected 1 to 20,000, found 100,000,000"):
        placement.generate("chain", 10**8, 2)
    with pytest.raises(placement.InputError, match=r"devices: expected 1 to 512, found 100,000"):
        placement.generate("chain", 3, 100_000)
    with pytest.raises(placement.InputError, match=r"split: expected a fraction in \[0, 1\], found 2"):
        placement.generate("chain", 3, 2, split=2)


def test_expanded_spec_loads_back_and_problems_pickle(diamond):
    import pickle
    diamond["model"]["blocks"][0]["split"] = {"ways": [2], "mode": "spatial"}
    p = placement.load(diamond).with_objective({"latency": 1.0, "energy": 0.5})
    again = placement.load(p.spec)                       # shards are ordinary blocks now
    assert [b.id for b in again.blocks] == [b.id for b in p.blocks]
    np.testing.assert_allclose(again.in_bytes, p.in_bytes)
    assert again.objective == p.objective
    copy_ = pickle.loads(pickle.dumps(p))
    a = np.zeros(p.n_blocks, dtype=int)
    from placement.evaluator import evaluate
    assert evaluate(copy_, a).value == pytest.approx(evaluate(p, a).value)
    assert copy_.objective.weights == {"latency": 1.0, "energy": 0.5}
    with pytest.raises(ValueError):
        copy_.compute_time[0, 0] = 1.0


def test_with_constraints_keeps_the_stricter_bound(diamond):
    diamond["constraints"] = {"latency_s": 1.0, "throughput_per_s": 2.0}
    p = placement.load(diamond)
    q = p.with_constraints({"latency_s": 2.0, "throughput_per_s": 5.0, "energy_j": 3.0})
    assert dict(q.constraints) == {"latency_s": 1.0, "throughput_per_s": 5.0, "energy_j": 3.0}
    assert dict(p.constraints) == {"latency_s": 1.0, "throughput_per_s": 2.0}
    assert placement.load(q.spec).constraints == q.constraints
    with pytest.raises(placement.InputError, match=r"constraints: expected latency_s, latency_max_s, period_s, throughput_per_s or energy_j, found 'latency'"):
        p.with_constraints({"latency": 1.0})

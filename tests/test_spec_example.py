"""SPEC section 3's example problem and section 7's example plan.

The spec's example has an edge ``attn1 -> head`` but no block ``head``, which its own
rules reject; ``tests/data/spec_example.json`` is the example with only that block added.
"""

from __future__ import annotations

import json

import pytest

import placement

from .conftest import ROOT

DATA = ROOT / "tests" / "data"


def test_spec_example_as_written_is_rejected_for_the_missing_block():
    d = json.loads((DATA / "spec_example.json").read_text())
    d["model"]["blocks"] = [b for b in d["model"]["blocks"] if b["id"] != "head"]
    with pytest.raises(placement.ProblemError, match=r"model\.edges\[1\]\.dst: expected the id of a block, found \"head\""):
        placement.load(d)


def test_spec_example_loads_with_its_rules():
    p = placement.load(DATA / "spec_example.json")
    assert p.devices[1].type == "jetson-nano"
    j = p.device_index["jetson"]
    attn = p.block_index["attn1"]
    assert p.compute_time[attn, j] == 0.004                                  # measured, by id
    cam = p.device_index["cam"]
    assert p.compute_time[attn, cam] == pytest.approx(4.0e8 / (6e9 * 0.6))   # flops / (rate x efficiency)
    assert p.edge_bytes[0] == 8.0e5                                         # pair: producer's output
    assert p.edge_bytes[1] == 2.0e5
    assert p.transfer_time(1e6, cam, j) == pytest.approx(0.005 + 1e6 / 6e6)
    assert p.transfer_time(1e6, j, cam) == pytest.approx(0.005 + 1e6 / 6e6)  # symmetric
    assert p.sink == p.source == cam and p.pinned == {p.block_index["stem"]: cam}
    assert dict(p.constraints) == {"latency_s": 0.25, "energy_j": 3.0}


def test_spec_example_plan_is_rescored():
    plan = json.loads((DATA / "spec_plan.json").read_text())
    plan["assignment"]["head"] = "cam"
    plan["order"]["cam"].append("head")
    scored = placement.evaluate(DATA / "spec_example.json", plan)
    # stem on cam 2.1e8 / 6e9 = 0.035 s; 8e5 B to the jetson: 0.005 + 8e5 / 6e6;
    # attn1 0.004 s (measured); 2e5 B back: 0.005 + 2e5 / 6e6; head on cam 1e6 / 6e9.
    expected = 0.035 + (0.005 + 8e5 / 6e6) + 0.004 + (0.005 + 2e5 / 6e6) + 1e6 / 6e9
    assert scored.metrics["latency_s"] == pytest.approx(expected)
    assert scored.value == pytest.approx(expected)
    assert scored.schedule["stem"] == {"device": "cam", "start_s": 0.0, "end_s": pytest.approx(0.035)}

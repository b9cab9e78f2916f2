"""One test per loader rule (SPEC section 3); every message is matched."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

import placement
from placement.errors import ProblemError

from .conftest import diamond_dict


def load_with(edit) -> placement.Problem:
    d = diamond_dict()
    edit(d)
    return placement.load(d)


def test_loads_and_precomputes(diamond):
    p = placement.load(diamond)
    assert (p.n_blocks, p.n_devices, p.n_edges) == (4, 2, 4)
    # compute time: flops / rate, with B's efficiency default 1.0
    np.testing.assert_allclose(p.compute_time[:, 0], [0.1, 0.2, 0.4, 0.1])
    np.testing.assert_allclose(p.compute_time[:, 1], [0.05, 0.1, 0.2, 0.05])
    assert p.topo.index(0) < p.topo.index(1) < p.topo.index(3)
    assert p.input_blocks == (0,) and p.output_blocks == (3,)
    # pairs carry the producer's output_bytes
    np.testing.assert_allclose(p.edge_bytes, [1e5, 1e5, 2e4, 3e4])
    assert p.source == 0 and p.sink == 0      # source defaults to the first device, sink to source
    assert p.transfer_time(1e5, 0, 1) == pytest.approx(0.11)
    assert p.transfer_time(1e5, 1, 1) == 0.0


def test_problem_is_immutable_and_input_unchanged(diamond):
    before = copy.deepcopy(diamond)
    p = placement.load(diamond)
    assert diamond == before
    with pytest.raises(ValueError):
        p.compute_time[0, 0] = 1.0


def test_measured_time_by_id_then_type_and_efficiency(diamond):
    diamond["model"]["blocks"][0]["time_s"] = {"jetson": 0.3, "A": 0.7}
    diamond["devices"][0]["efficiency"] = {"attention": 0.5}
    p = placement.load(diamond)
    assert p.compute_time[0, 0] == 0.7            # by id
    assert p.compute_time[0, 1] == 0.3            # by type
    assert p.compute_time[2, 0] == pytest.approx(4e8 / (1e9 * 0.5))


def test_allowed_devices_narrow(diamond):
    diamond["model"]["blocks"][1]["allowed_devices"] = ["B"]
    p = placement.load(diamond)
    assert math.isinf(p.compute_time[1, 0]) and not p.allowed[1, 0] and p.allowed[1, 1]


def test_pins_restrict_allowed(diamond):
    diamond["pinned"] = {"r": "B"}
    p = placement.load(diamond)
    assert p.pinned == {2: 1}
    assert list(p.allowed[2]) == [False, True]


def test_links_most_specific_first(diamond):
    diamond["devices"].append({"id": "C", "flops_per_s": 1e9, "memory_bytes": 1e6})
    diamond["network"]["links"] = [
        {"src": "A", "dst": "B", "bandwidth_bytes_per_s": 2e6, "latency_s": 0.001},      # mirrored
        {"src": "B", "dst": "C", "bandwidth_bytes_per_s": 4e6, "latency_s": 0.002, "symmetric": False},
        {"src": "C", "dst": "A", "bandwidth_bytes_per_s": 5e6, "latency_s": 0.003},
        {"src": "A", "dst": "C", "bandwidth_bytes_per_s": 8e6, "latency_s": 0.004},      # beats C->A's mirror
    ]
    p = placement.load(diamond)
    A, B, C = 0, 1, 2
    assert p.transfer_time(2e6, A, B) == pytest.approx(1.001)
    assert p.transfer_time(2e6, B, A) == pytest.approx(1.001)      # symmetric defaults to true
    assert p.transfer_time(4e6, B, C) == pytest.approx(1.002)
    assert p.transfer_time(1e6, C, B) == pytest.approx(1.01)       # not mirrored: default
    assert p.transfer_time(5e6, C, A) == pytest.approx(1.003)
    assert p.transfer_time(8e6, A, C) == pytest.approx(1.004)


def test_no_default_means_unreachable(diamond):
    diamond["network"] = {"links": [{"src": "A", "dst": "B", "bandwidth_bytes_per_s": 1e6}]}
    diamond["devices"].append({"id": "C", "flops_per_s": 1e9, "memory_bytes": 1e6})
    p = placement.load(diamond)
    assert p.reachable[0, 1] and p.reachable[1, 0] and not p.reachable[0, 2]
    assert math.isinf(p.transfer_time(1.0, 0, 2))


# ------------------------------------------------------------------ each rule's message
@pytest.mark.parametrize("edit, match", [
    (lambda d: d["model"]["blocks"][1].update(id="s"),
     r"model\.blocks\[1\]\.id: expected a unique id, found \"s\" \(also model\.blocks\[0\]\.id\)"),
    (lambda d: d["devices"][1].update(id="A"),
     r"devices\[1\]\.id: expected a unique id, found \"A\""),
    (lambda d: d["model"]["blocks"][0].update(id=""),
     r"model\.blocks\[0\]\.id: expected a non-empty string"),
    (lambda d: d["model"]["edges"].append(["t", "x"]),
     r"model\.edges\[4\]\[1\]: expected the id of a block, found \"x\""),
    (lambda d: d["model"]["edges"].append({"src": "ss", "dst": "t"}),
     r"model\.edges\[4\]\.src: expected the id of a block, found \"ss\" \(did you mean 's'\?\)"),
    (lambda d: d["model"]["edges"].append(["t", "s"]),
     r"model\.edges: expected an acyclic block graph \(cycle: s -> \w -> t -> s\)"),
    (lambda d: d["model"]["edges"].append(["s", "s"]),
     r"model\.edges: expected an acyclic block graph \(cycle: s -> s\)"),
    (lambda d: d["model"]["edges"].append(["s", "l"]),
     r"model\.edges\[4\]: expected each edge once, found \[\"s\", \"l\"\] \(repeats model\.edges\[0\]\)"),
    (lambda d: d["model"]["blocks"][3].update(flops=-1.0),
     r"model\.blocks\[3\]\.flops: expected a finite number >= 0, found -1"),
    (lambda d: d["model"]["blocks"][3].update(flops=float("nan")),
     r"model\.blocks\[3\]\.flops: expected a finite number, found NaN"),
    (lambda d: d["model"]["blocks"][3].update(output_bytes=float("inf")),
     r"model\.blocks\[3\]\.output_bytes: expected a finite number, found Infinity"),
    (lambda d: d["model"]["blocks"][3].update(flops="1e8"),
     r"model\.blocks\[3\]\.flops: expected a number, found \"1e8\""),
    (lambda d: d["model"]["blocks"][3].update(flops=True),
     r"model\.blocks\[3\]\.flops: expected a number, found true"),
    (lambda d: d["model"]["blocks"][3].pop("flops"),
     r"model\.blocks\[3\]\.flops: expected a value \(the field is required\)"),
    (lambda d: d["devices"][0].update(flops_per_s=0),
     r"devices\[0\]\.flops_per_s: expected a finite number > 0, found 0"),
    (lambda d: d["devices"][1].update(memory_bytes=0),
     r"devices\[1\]\.memory_bytes: expected a finite number > 0, found 0"),
    (lambda d: d["network"]["default"].update(bandwidth_bytes_per_s=0),
     r"network\.default\.bandwidth_bytes_per_s: expected a finite number > 0, found 0"),
    (lambda d: d["network"]["default"].update(bandwidth_bytes_per_s="100Mbps"),
     r"network\.default\.bandwidth_bytes_per_s: expected a number, found \"100Mbps\""),
    (lambda d: d["network"].update(contention="wifi"),
     r"network: expected no 'contention' key, found \"contention\" \(shared air is declared as 'media'"),
    (lambda d: d.update(source="X"), r"source: expected the id of a device, found \"X\""),
    (lambda d: d.update(sink="b"), r"sink: expected the id of a device, found \"b\" \(did you mean 'B'\?\)"),
    (lambda d: d.update(pinned={"q": "A"}), r"pinned\.q: expected the id of a block \(as key\), found \"q\""),
    (lambda d: d.update(pinned={"s": "Z"}), r"pinned\.s: expected the id of a device, found \"Z\""),
    (lambda d: d["network"].update(links=[{"src": "A", "dst": "Q", "bandwidth_bytes_per_s": 1.0}]),
     r"network\.links\[0\]\.dst: expected the id of a device, found \"Q\""),
    (lambda d: d["network"].update(links=[{"src": "A", "dst": "A", "bandwidth_bytes_per_s": 1.0}]),
     r"network\.links\[0\]: expected a link between two different devices, found \"A\""),
    (lambda d: d["network"].update(links=[{"src": "A", "dst": "B", "bandwidth_bytes_per_s": 1.0},
                                          {"src": "A", "dst": "B", "bandwidth_bytes_per_s": 2.0}]),
     r"network\.links\[1\]: expected one entry per directed device pair"),
    (lambda d: d["model"]["blocks"][0].update(flop=1),
     r"model\.blocks\[0\]: expected only known keys, found \"flop\" \(did you mean 'flops'\?"),
    (lambda d: d.update(devicez=[]), r"\(top level\): expected only known keys, found \"devicez\" \(did you mean 'devices'\?"),
    (lambda d: d["devices"][0].update(memory=1), r"devices\[0\]: expected only known keys, found \"memory\" \(did you mean 'memory_bytes'\?"),
    (lambda d: d["model"]["blocks"][0].update(allowed_devices=["C"]),
     r"model\.blocks\[0\]\.allowed_devices\[0\]: expected the id of a device, found \"C\""),
    (lambda d: d["model"]["blocks"][0].update(time_s={"jetsn": 0.1}),
     r"model\.blocks\[0\]\.time_s: expected keys that are device ids or types, found \"jetsn\" \(did you mean 'jetson'\?\)"),
    (lambda d: d["model"]["blocks"][0].update(split={"ways": [2], "mode": "pipeline"}),
     r"model\.blocks\[0\]\.split\.mode: expected one of 'tensor' or 'spatial'"),
    (lambda d: d["model"]["blocks"][0].update(split={"ways": [0]}),
     r"model\.blocks\[0\]\.split\.ways\[0\]: expected a finite number >= 1"),
    (lambda d: d.update(objective="speed"), r"objective: expected one of 'latency', 'throughput' or 'energy'"),
    (lambda d: d.update(objective={"latency": 0}), r"objective: expected at least one positive weight"),
    (lambda d: d.update(constraints={"latency": 1}), r"constraints: expected only known keys, found \"latency\" \(did you mean 'latency_s'\?"),
    (lambda d: d["model"].update(blocks=[]), r"model\.blocks: expected at least 1 item"),
    (lambda d: d.update(devices=[]), r"devices: expected at least 1 item"),
])
def test_rule_messages(edit, match):
    with pytest.raises(ProblemError, match=match):
        load_with(edit)


def test_shard_id_collision_is_reported(diamond):
    diamond["model"]["blocks"][1]["id"] = "s#0"
    diamond["model"]["edges"] = [["s", "s#0"], ["s", "r"], ["s#0", "t"], ["r", "t"]]
    diamond["model"]["blocks"][0]["split"] = {"ways": 2}
    with pytest.raises(ProblemError, match=r"model\.blocks: expected shard ids '<id>#<k>' not already used, found \"s#0\""):
        placement.load(diamond)


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ProblemError, match=r"nope\.json: \(file\): expected an existing problem file"):
        placement.load(missing)
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": {,}}')
    with pytest.raises(ProblemError, match=r"bad\.json: \(line 1, column 12\): expected valid JSON"):
        placement.load(bad)
    wrong = tmp_path / "wrong.json"
    d = diamond_dict()
    d["model"]["blocks"][2]["flops"] = -5
    wrong.write_text(json.dumps(d))
    with pytest.raises(ProblemError, match=r"wrong\.json: model\.blocks\[2\]\.flops: expected a finite number >= 0"):
        placement.load(str(wrong))
    top = tmp_path / "list.json"
    top.write_text("[1, 2]")
    with pytest.raises(ProblemError, match=r"list\.json: \(top level\): expected a JSON object, found an array"):
        placement.load(top)


def test_load_accepts_problem_path_string_and_json_text(tmp_path, diamond):
    f = tmp_path / "p.json"
    f.write_text(json.dumps(diamond))
    p1 = placement.load(f)
    p2 = placement.load(str(f))
    p3 = placement.load(json.dumps(diamond))
    assert p1.n_blocks == p2.n_blocks == p3.n_blocks == 4
    assert placement.load(p1) is p1
    assert p1.path == str(f)

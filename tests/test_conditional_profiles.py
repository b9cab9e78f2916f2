"""Conditional models from profiles (issue 16): a generalist with experts, early exits.

The builders are checked against the loader's scenario rules (SPEC section 10); the exit
heads are real torch modules profiled on the block's real output shape.
"""

from __future__ import annotations

import pytest

from placement.errors import InputError
from placement.loader import check_scenarios
from profiles import conditional as C


def chain(name: str, n: int, out=1000.0) -> dict:
    blocks = [{"id": f"b{i}", "flops": 1e6 * (i + 1), "params_bytes": 100.0, "activation_bytes": 10.0,
               "output_bytes": out, "kind": "conv", "meta": {}} for i in range(n)]
    blocks[-1]["output_bytes"] = 4000.0  # 1000 logits
    edges = [{"src": f"b{i}", "dst": f"b{i + 1}", "bytes": out} for i in range(n - 1)]
    return {"name": name, "input_bytes": 5e4, "blocks": blocks, "edges": edges, "meta": {}}


def _valid(section) -> list:
    bidx = {b["id"]: i for i, b in enumerate(section["blocks"])}
    edges = [(e["src"], e["dst"], e["bytes"]) for e in section["edges"]]
    return check_scenarios({"scenarios": section["scenarios"]}, bidx, edges)


def test_generalist_and_experts_follow_the_scenario_rules():
    sec = C.combine_experts(chain("gen", 3), [chain("exp", 4), chain("exp", 4)], [0.6, 0.25, 0.15])
    scen = {name: (p, skip) for name, p, skip in _valid(sec)}
    assert set(scen) == {"edge-only", "expert-1", "expert-2"}
    e1 = {b["id"] for b in sec["blocks"] if b["id"].startswith("e1/")}
    e2 = {b["id"] for b in sec["blocks"] if b["id"].startswith("e2/")}
    assert scen["edge-only"] == (0.6, frozenset(e1 | e2))
    assert scen["expert-1"] == (0.25, frozenset(e2)) and scen["expert-2"] == (0.15, frozenset(e1))
    # the router follows the generalist's head and hands the image to each expert's first block
    assert {"src": "g/b2", "dst": "router", "bytes": 4000.0} in sec["edges"]
    assert {"src": "router", "dst": "e1/b0", "bytes": 5e4 + C.ROUTER_OUTPUT_BYTES} in sec["edges"]
    assert next(b for b in sec["blocks"] if b["id"] == "e2/b3")["meta"] == {"model": "exp", "block": "b3",
                                                                          "source": "e2"}
    # the image reaches the router from the source (it forwards the image to the expert)
    assert {"src": "input", "dst": "router", "bytes": 5e4} in sec["edges"]
    assert {"src": "input", "dst": "g/b0", "bytes": 5e4} in sec["edges"]
    assert sec["meta"]["sources"] == {"g": "gen", "e1": "exp", "e2": "exp"}


def test_early_exits_follow_the_scenario_rules():
    heads = {x: {"flops": 1e3, "params_bytes": 8.0, "activation_bytes": 4.0, "output_bytes": 40.0, "meta": {}}
             for x in ("b1", "b3")}
    sec = C.add_exits(chain("m", 5), {"b1": 0.3, "b3": 0.2}, heads)
    scen = {name: (p, skip) for name, p, skip in _valid(sec)}
    assert scen["exit@b1"] == (0.3, frozenset({"b2", "b3", "b4", "exit@b3"}))
    assert scen["exit@b3"] == (0.2, frozenset({"b4"}))
    assert scen["full"][0] == pytest.approx(0.5) and scen["full"][1] == frozenset()
    assert {"src": "b3", "dst": "exit@b3", "bytes": 1000.0} in sec["edges"]


@pytest.mark.parametrize("call,match", [
    (lambda: C.parse_route("0.6,0.5", 1), "sum to 1"),
    (lambda: C.parse_route("0.6,0.4", 2), "expected 3 probabilities"),
    (lambda: C.parse_route("1,0", 1), "probabilities > 0"),
    (lambda: C.parse_exits("b1:0.6,b2:0.5"), "sum to 1.1"),
    (lambda: C.parse_exits("b1"), "BLOCK:PROBABILITY"),
    (lambda: C.parse_experts("x:0"), "MODEL or MODEL:COUNT"),
    (lambda: C.add_exits(chain("m", 3), {"b9": 0.2}, {}), "'b9' is not a block of the model"),
])
def test_bad_conditional_arguments_are_named(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_parse_experts_counts():
    assert C.parse_experts("deit_small_patch16_224:2,resnet18") == ["deit_small_patch16_224"] * 2 + ["resnet18"]


def test_exit_heads_are_profiled_on_the_real_output_shapes():
    pytest.importorskip("torch", reason="the 'profile' extra (torch) is not installed")
    pytest.importorskip("fvcore", reason="the 'profile' extra (fvcore) is not installed")
    from torch import nn

    from profiles import profile_model

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
            self.stage1 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
            self.stage2 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

        def forward(self, x):
            return self.head(self.stage2(self.stage1(self.stem(x))))

    model = Tiny().eval()
    section = profile_model(model, (1, 3, 32, 32), "stage", warmup=0, repeats=1)
    ids = [b["id"] for b in section["blocks"]]
    assert "stage1" in ids
    heads = C.exit_head_costs(model, section, ["stage1"], (1, 3, 32, 32), warmup=0, repeats=1)
    h = heads["stage1"]
    # LayerNorm(16) + Linear(16, 10): 2*16 + 16*10 + 10 weights, 4 bytes each
    assert h["params_bytes"] == 4 * (2 * 16 + 16 * 10 + 10)
    assert h["meta"]["exit_head"]["input_shape"] == [1, 16, 16, 16] and h["output_bytes"] == 40
    assert h["flops"] >= 16 * 10
    sec = C.add_exits(section, {"stage1": 0.4}, heads)
    assert {n for n, _, _ in _valid(sec)} == {"exit@stage1", "full"}

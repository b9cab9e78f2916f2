"""`placement run` on conditional models (SPEC sections 10 and 11, issue 16): real gloo workers
on loopback run one scenario per inference, only the scenario's blocks compute and send, and
the sink's result equals the reference computation of that scenario on the unsplit models.

No timing asserts (CI has 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("psutil")
from torch import nn  # noqa: E402

import placement  # noqa: E402

GEN = "tests.test_runtime_scenarios:small_generalist"
EXPERT = "tests.test_runtime_scenarios:small_expert"
EXITS_MODEL = "tests.test_runtime_scenarios:small_generalist"
SHAPE = (1, 3, 32, 32)


class Net(nn.Module):
    """A small CNN classifier: stem, two stages, head (10 classes)."""

    def __init__(self, width: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.stage1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10))

    def forward(self, x):
        return self.head(self.stage2(self.stage1(self.stem(x))))


def small_generalist() -> nn.Module:
    return Net(8)


def small_expert() -> nn.Module:
    return Net(16)


def _section(spec: str, model: nn.Module) -> dict:
    from profiles import profile_model

    sec = profile_model(model, SHAPE, "block", name=spec.split(":")[-1], measure_time=False)
    sec["meta"]["source_model"] = spec   # as 'placement profile' records it
    return sec


def experts_problem() -> dict:
    from profiles import make_problem
    from profiles.conditional import combine_experts

    gsec = _section(GEN, small_generalist())
    esec = _section(EXPERT, small_expert())
    section = combine_experts(gsec, [esec, esec], [0.5, 0.3, 0.2], name="ask-small")
    prob = make_problem(section, ["rpi4", "jetson-nano", "laptop"], "wifi5", name="ask-small")
    prob["network"] = {"default": {"bandwidth_bytes_per_s": 1e9, "latency_s": 1e-4}}
    return prob


def exits_problem() -> dict:
    from profiles import make_problem
    from profiles.conditional import add_exits, exit_head_costs

    model = small_generalist()
    sec = _section(EXITS_MODEL, model)
    heads = exit_head_costs(model, sec, ["stage1"], SHAPE, warmup=0, repeats=1)
    section = add_exits(sec, {"stage1": 0.4}, heads)
    prob = make_problem(section, ["rpi4", "jetson-nano", "laptop"], "wifi5", name="exits-small")
    prob["network"] = {"default": {"bandwidth_bytes_per_s": 1e9, "latency_s": 1e-4}}
    return prob


def plain_problem() -> dict:
    from profiles import make_problem

    prob = make_problem(_section(GEN, small_generalist()), ["rpi4", "laptop"], "wifi5", name="plain-small")
    prob["network"] = {"default": {"bandwidth_bytes_per_s": 1e9, "latency_s": 1e-4}}
    return prob


def _by_prefix(prob: dict, where: dict[str, str]) -> dict:
    """A hand-made plan: each block on the device of the longest matching id prefix."""
    out = {}
    for b in prob["model"]["blocks"]:
        keys = [k for k in where if b["id"].startswith(k)]
        out[b["id"]] = where[max(keys, key=len)]
    return {"assignment": out}


# the generalist on the camera (rpi4) but its head and the router on the laptop (so the image
# travels to the router), expert 1 on the Jetson, expert 2 on the laptop (no message from the
# router: same device)
ASK_PLAN = {"": "rpi4", "g/head": "laptop", "router": "laptop", "e1/": "jetson-nano", "e2/": "laptop"}
# the exit head on the Jetson, the later stages on the laptop
EXITS_PLAN = {"": "rpi4", "exit@": "jetson-nano", "stage2": "laptop", "head": "laptop"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("scenarios")
    out = {"dir": d}
    for name, prob, where in (("ask", experts_problem(), ASK_PLAN), ("exits", exits_problem(), EXITS_PLAN),
                              ("plain", plain_problem(), {"": "rpi4", "head": "laptop"})):
        (d / f"{name}.json").write_text(json.dumps(prob))
        (d / f"{name}-plan.json").write_text(json.dumps(_by_prefix(prob, where)))
        out[name] = (d / f"{name}.json", d / f"{name}-plan.json")
    return out


def _active(problem_path: Path) -> dict[str, set[str]]:
    p = placement.load(str(problem_path))
    ids = [b.id for b in p.blocks]
    return {sc.name: {ids[i] for i in p.scenario_problem(k)[1]} for k, sc in enumerate(p.scenarios)}


def _check_scenario_run(d: dict, problem_path: Path, plan_path: Path, n: int) -> None:
    """What every scenario run must show: each scenario that ran has its output equal to the
    reference; a block computed in exactly the inferences whose scenario runs it; the
    evaluator's predictions per scenario and in expectation."""
    runs = {s["name"]: s["runs"] for s in d["scenarios"]}
    active = _active(problem_path)
    assert sum(runs.values()) == (len(runs) if d["scenario"] is None else 1) + 2 * n  # warm-up, singles, stream
    for s in d["scenarios"]:
        if s["runs"]:
            assert s["output_matches"] is True and 0.0 <= s["max_abs_error"] <= 1e-5, s
        else:
            assert s["output_matches"] is None
    assert d["output_matches"] is True
    for b in d["blocks"]:
        assert b["runs"] == sum(runs[s] for s, blocks in active.items() if b["id"] in blocks), b
        assert (b["measured_s"] is None) == (b["runs"] == 0 or all(
            s["inferences"] == 0 for s in d["scenarios"] if b["id"] in active[s["name"]]))
    ev = placement.evaluate(str(problem_path), str(plan_path))
    for s in d["scenarios"]:
        assert s["predicted"]["latency_s"] == pytest.approx(ev.metrics["scenarios"][s["name"]]["latency_s"])
    if d["scenario"] is None:
        assert d["predicted"]["latency_s"] == pytest.approx(ev.metrics["latency_s"])
        assert d["predicted"]["latency_max_s"] == pytest.approx(ev.metrics["latency_max_s"])
    else:
        assert d["predicted"]["latency_s"] == pytest.approx(ev.metrics["scenarios"][d["scenario"]]["latency_s"])
    assert d["predicted"]["period_s"] > 0 and d["measured"]["period_s"] > 0


def test_references_are_the_unsplit_models_scenario_by_scenario(files):
    """The reference each run is checked against, computed here by hand: the router on the
    seeded generalist's logits, each expert as a whole model with its own seed, the exit
    head on the unsplit model's stage1 output."""
    from placement.runtime import conditional as RC
    from profiles.conditional import ROUTER_TOP_K, _ExitHead

    seed = 3
    x = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        torch.manual_seed(seed)
        logits = small_generalist().eval()(x)
        prob = torch.softmax(logits, dim=-1)
        decision = torch.tensor([[float(prob.argmax()), float(prob.topk(ROUTER_TOP_K).values.sum())]])
        experts = []
        for k in (1, 2):
            torch.manual_seed(seed + k)
            experts.append(small_expert().eval()(x))
        torch.manual_seed(seed)
        m = small_generalist().eval()
        feats = {}
        m.stage1.register_forward_hook(lambda mod, i, o: feats.setdefault("stage1", o))
        final = m(x)
        torch.manual_seed(seed + 200_000)
        exit_logits = _ExitHead(4, 8, 10).eval()(feats["stage1"])
    assert not torch.allclose(experts[0], experts[1])   # two experts of one architecture differ

    def refs(path):
        p = placement.load(str(path))
        sources, descs = RC.describe(p, None)
        blocks, built = RC.build_blocks(sources, descs, [b.id for b in p.blocks], seed)
        names = {b: {"inputs": blocks[b].inputs, "outputs": blocks[b].outputs,
                     "results": RC.descs_results(descs, b, built, blocks[b].outputs)} for b in blocks}
        return {s: r[0] for s, r in RC.references(p, descs, built, names, [x], seed).items()}

    r = refs(files["ask"][0])
    assert set(r) == {"edge-only", "expert-1", "expert-2"}
    assert set(r["edge-only"]) == {"router"} and torch.allclose(r["edge-only"]["router"][0], decision)
    assert set(r["expert-1"]) == {"e1/head"} and torch.allclose(r["expert-1"]["e1/head"][0], experts[0])
    assert set(r["expert-2"]) == {"e2/head"} and torch.allclose(r["expert-2"]["e2/head"][0], experts[1])
    r = refs(files["exits"][0])
    assert set(r["exit@stage1"]) == {"exit@stage1"}
    assert torch.allclose(r["exit@stage1"]["exit@stage1"][0], exit_logits)
    assert set(r["full"]) == {"exit@stage1", "head"}
    assert torch.allclose(r["full"]["head"][0], final) and torch.allclose(r["full"]["exit@stage1"][0], exit_logits)


def test_ask_the_expert_sampled_scenarios_cli(files):
    """Three workers: each inference's scenario sampled; every scenario's output equals its
    reference (the warm-up runs each once); only the scenario's blocks compute and only its
    messages travel."""
    import subprocess
    import sys

    prob, plan = files["ask"]
    n = 6
    r = subprocess.run([sys.executable, "-c", "import sys; from placement.cli import main; sys.exit(main())",
                        "run", str(prob), str(plan), "-n", str(n), "--seed", "1", "--json"],
                       capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout)
    assert {"problem", "plan", "emulation", "inferences", "output_matches", "max_abs_error", "predicted",
            "measured", "error", "blocks", "transfers", "scenario", "scenarios"} == set(d)
    assert d["scenario"] is None and d["inferences"] == n
    _check_scenario_run(d, prob, plan, n)
    runs = {s["name"]: s["runs"] for s in d["scenarios"]}
    t = {(x["src"], x["dst"]): x for x in d["transfers"]}
    # the image goes to the router's device in every inference; the decision to the sink only
    # when no expert runs; the image with the decision to expert 1's device only for expert 1
    assert t[("input", "router")]["messages"] == sum(runs.values())
    assert t[("router", "output")]["messages"] == runs["edge-only"]
    assert t[("router", "e1/stem")]["messages"] == runs["expert-1"]
    assert ("router", "e2/stem") not in t                     # same device: no transfer
    assert t[("e2/head", "output")]["messages"] == runs["expert-2"]
    assert all(x["messages"] == 0 for x in d["transfers"] if x["measured_s"] is None)


def test_early_exit_sampled_scenarios_emulated(files):
    """Three workers, emulated devices and links: the exit head's output when the inference
    exits, the exit head's and the final head's when it does not; the later stages compute
    only in the inferences that go on."""
    prob, plan = files["exits"]
    n = 4
    rep = placement.run(str(prob), str(plan), inferences=n, emulate=True, seed=2)
    d = rep.to_dict()
    assert d["emulation"] == "throttle" and rep.emulated
    _check_scenario_run(d, prob, plan, n)
    assert {s["name"] for s in d["scenarios"] if s["output_matches"]} == {"exit@stage1", "full"}
    runs = {s["name"]: s["runs"] for s in d["scenarios"]}
    blocks = {b["id"]: b for b in d["blocks"]}
    assert blocks["stage2"]["runs"] == blocks["head"]["runs"] == runs["full"]
    assert blocks["exit@stage1"]["runs"] == blocks["stem"]["runs"] == sum(runs.values())


def test_one_scenario_for_every_inference(files):
    """``scenario``: every inference runs it, the other expert never computes and its device
    receives nothing; the totals are that scenario's prediction."""
    prob, plan = files["ask"]
    n = 3
    rep = placement.run(str(prob), str(plan), scenario="expert-1", inferences=n)
    d = rep.to_dict()
    assert d["scenario"] == "expert-1"
    _check_scenario_run(d, prob, plan, n)
    runs = {s["name"]: s["runs"] for s in d["scenarios"]}
    assert runs == {"edge-only": 0, "expert-1": 1 + 2 * n, "expert-2": 0}
    for b in d["blocks"]:
        assert b["runs"] == (0 if b["id"].startswith("e2/") else 1 + 2 * n)
    assert d["error"]["period"] is not None
    e1 = next(s for s in d["scenarios"] if s["name"] == "expert-1")
    assert e1["measured"]["period_s"] == d["measured"]["period_s"]


def test_bad_scenario_arguments_exit_2_before_any_worker(files):
    import subprocess
    import sys

    prob, plan = files["ask"]
    cmd = [sys.executable, "-c", "import sys; from placement.cli import main; sys.exit(main())", "run"]
    r = subprocess.run(cmd + [str(prob), str(plan), "--scenario", "expert-3"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "'expert-3' is not a scenario" in r.stderr and "expert-1" in r.stderr
    assert "Traceback" not in r.stderr
    pprob, pplan = files["plain"]
    with pytest.raises(placement.errors.InputError, match="has no scenarios"):
        placement.run(str(pprob), str(pplan), GEN, scenario="edge-only")
    with pytest.raises(placement.errors.InputError, match="--model"):
        placement.run(str(pprob), str(pplan))


def test_a_block_nobody_can_rebuild_is_named(files):
    from placement.runtime.conditional import describe

    raw = json.loads(files["ask"][0].read_text())
    raw["model"]["meta"]["sources"].pop("e2")
    for b in raw["model"]["blocks"]:
        if b["id"].startswith("e2/"):
            b["meta"].pop("model")
    with pytest.raises(placement.errors.InputError, match="block 'e2/stem' cannot be rebuilt: no model"):
        describe(placement.load(raw), None)
    raw["model"]["blocks"][1]["fx_nodes"] = []
    with pytest.raises(placement.errors.InputError, match="block 'g/stem' cannot be rebuilt: the problem gives no"):
        describe(placement.load(raw), None)


def test_scenarios_are_sampled_by_their_probabilities():
    from placement.runtime.conditional import scenario_sequence

    p = placement.load(json.loads(json.dumps(_tiny_scenarios())))
    seq, warm = scenario_sequence(p, None, 10_000, 10_000, seed=5)
    assert warm == 3 and seq[:3] == ["a", "b", "c"]              # the warm-up runs each scenario once
    freq = {s: seq[3:].count(s) / 20_000 for s in "abc"}
    assert freq == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.1}, abs=0.015)
    assert scenario_sequence(p, None, 50, 50, seed=5) == scenario_sequence(p, None, 50, 50, seed=5)
    assert scenario_sequence(p, None, 50, 50, seed=5) != scenario_sequence(p, None, 50, 50, seed=6)
    assert scenario_sequence(p, "b", 4, 4, seed=5) == (["b"] * 9, 1)


def _tiny_scenarios() -> dict:
    blocks = [{"id": i, "flops": 1e6, "params_bytes": 1.0, "activation_bytes": 1.0, "output_bytes": 1.0}
              for i in ("x", "y", "z")]
    return {"name": "tiny", "model": {"input_bytes": 1.0, "blocks": blocks, "edges": [["x", "y"], ["x", "z"]],
                                      "scenarios": [{"name": "a", "probability": 0.6, "skip": ["y", "z"]},
                                                    {"name": "b", "probability": 0.3, "skip": ["z"]},
                                                    {"name": "c", "probability": 0.1, "skip": ["y"]}]},
            "devices": [{"id": "d", "type": "t", "flops_per_s": 1e9, "memory_bytes": 1e9}],
            "network": {"default": {"bandwidth_bytes_per_s": 1e6, "latency_s": 0.0}}}


def test_the_stream_mix_period_is_the_expected_period_at_the_drawn_frequencies():
    from placement.runtime.conditional_report import sampled_period

    raw = _tiny_scenarios()
    raw["devices"].append({"id": "e", "type": "t", "flops_per_s": 2e9, "memory_bytes": 1e9})
    p = placement.load(raw)
    plan = {"assignment": {"x": "d", "y": "e", "z": "d"}}
    scored = placement.evaluate(p, plan)
    # the drawn frequencies equal to the probabilities: the evaluator's expected period
    drawn = ["a"] * 6 + ["b"] * 3 + ["c"]
    assert sampled_period(p, scored, drawn) == pytest.approx(scored.metrics["period_s"])
    # one scenario only: that scenario's period
    assert sampled_period(p, scored, ["b"] * 4) == pytest.approx(scored.metrics["scenarios"]["b"]["period_s"])
    # by hand: x (1 ms) and z (1 ms) on d, y (0.5 ms) on e; the link d->e carries x's 1 byte
    # at 1e6 B/s (1 us); mix of a and c half each: d's load 1 + 0.5 * 1 ms
    assert sampled_period(p, scored, ["a", "c"]) == pytest.approx(1.5e-3)


def test_problems_written_before_the_image_block_still_rebuild(files):
    """A file like the shipped examples/ask_the_expert.json (no image block, no
    meta.sources): the sources come from the blocks' meta, the router reads the image from
    the source, a message the problem has no edge for; every scenario reproduces its
    reference (checked while the run is prepared, before any worker)."""
    from placement.runtime.blocks import SOURCE
    from placement.runtime.conditional import build_scenario_run
    from placement.runtime.prepare import check_plan

    raw = json.loads(files["ask"][0].read_text())
    m = raw["model"]
    m["blocks"] = [b for b in m["blocks"] if b["id"] != "input"]
    m["edges"] = [e for e in m["edges"] if e["src"] != "input"]
    m["meta"].pop("sources")
    for b in m["blocks"]:
        b.get("meta", {}).pop("source", None)
        if b["id"].startswith(("g/", "e1/", "e2/")):
            b["meta"]["model"] = {"g": GEN}.get(b["id"][:1], EXPERT)
    raw["pinned"] = {}
    plan = _by_prefix(raw, ASK_PLAN)
    p, scored = check_plan(raw, plan)
    spec, keep = build_scenario_run(p, scored, None, scenario=None, inferences=2, emulate=False, time_scale=None,
                                    threads=1, seed=0, timeout_s=60)
    to_router = [c for c in spec["channels"] if c["producer"] == SOURCE and c["dst"] == "laptop"]
    assert [c["names"] for c in to_router] == [["@image"]]
    assert set(keep["references"]) == {"edge-only", "expert-1", "expert-2"}

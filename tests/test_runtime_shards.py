"""Shards of split blocks (issue 13, runtime part): gathered shards equal the unsplit block.

Spatial shards of real convolution blocks (resnet18, mobilevit_s) and tensor shards of real
attention and MLP modules and whole transformer blocks (deit_tiny), all timm with
``pretrained=False``, are checked with ``torch.allclose`` against the block they come from;
efficientformer_l1's ``MetaBlock1d`` halves (attention ``token_mixer``) are checked the same
way; deit_tiny, efficientformer_l1 and mobilevit_s profiled with ``--splits auto`` run split
plans on real gloo workers with the unsplit model's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from placement.runtime import shards as S  # noqa: E402
from placement.runtime.blocks import rebuild, run_block, trace_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _chain(model_name: str, input_shape):
    """(traced model, rebuilt blocks by id, the values of every fx node on one input, problem blocks)."""
    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False).eval()
    spec = json.loads((ROOT / "examples" / "models" / f"{model_name}.block.json").read_text())
    gm = trace_model(model)
    blocks = rebuild(gm, [(b["id"], b["fx_nodes"]) for b in spec["model"]["blocks"]])
    ph = next(n.name for n in gm.graph.nodes if n.op == "placeholder")
    values = {ph: torch.randn(*input_shape)}
    for b in spec["model"]["blocks"]:
        values.update(run_block(blocks[b["id"]], values))
    return model, gm, blocks, values, {b["id"]: b for b in spec["model"]["blocks"]}


@pytest.fixture(scope="module")
def resnet18():
    return _chain("resnet18", (1, 3, 224, 224))


@pytest.fixture(scope="module")
def mobilevit_s():
    return _chain("mobilevit_s", (1, 3, 256, 256))


def _spatial_check(blocks, values, bid, w):
    blk = blocks[bid]
    full = run_block(blk, values)[blk.outputs[0]]
    ins = [values[n] for n in blk.inputs]
    parts, rows_sent = [], 0
    for k in range(w):
        sh = S.spatial_shard(blk.module, blk.inputs, ins, k, w, bid)
        sliced = [sh.slice_input(n, values[n]) for n in blk.inputs]
        rows_sent += sum(x.shape[2] for x in sliced)
        (out,) = sh(*sliced)
        assert out.shape[2] == sh.out_rows[1] - sh.out_rows[0]
        parts.append(out)
    got = S.gather("spatial", parts)
    assert got.shape == full.shape
    assert torch.allclose(got, full, rtol=1e-5, atol=1e-5), float((got - full).abs().max())
    return rows_sent, sum(x.shape[2] for x in ins)


@pytest.mark.parametrize("bid,w", [("stem", 2), ("maxpool", 4), ("layer1.0", 2), ("layer2.0", 4), ("layer4.0", 2)])
def test_resnet18_conv_blocks_spatial_shards_equal_the_block(resnet18, bid, w):
    _, _, blocks, values, _ = resnet18
    sent, rows = _spatial_check(blocks, values, bid, w)
    # each shard gets its band plus a halo, not the whole input: the bands overlap by the halo only
    assert rows < sent < w * rows


@pytest.mark.parametrize("bid", ["stages.0.0", "stages.1.0", "stages.4.0"])
def test_mobilevit_conv_blocks_spatial_shards_equal_the_block(mobilevit_s, bid):
    _, _, blocks, values, _ = mobilevit_s
    sent, rows = _spatial_check(blocks, values, bid, 2)
    assert sent < 2 * rows


def test_halo_is_the_receptive_field(resnet18):
    """layer1.0 (two 3x3 convolutions, stride 1): each inner band edge needs 2 rows beyond it."""
    _, _, blocks, values, _ = resnet18
    blk = blocks["layer1.0"]
    x = values[blk.inputs[0]]
    H = x.shape[2]
    s0 = S.spatial_shard(blk.module, blk.inputs, [x], 0, 2, "layer1.0")
    s1 = S.spatial_shard(blk.module, blk.inputs, [x], 1, 2, "layer1.0")
    assert s0.in_rows[blk.inputs[0]] == (0, H // 2 + 2)
    assert s1.in_rows[blk.inputs[0]] == (H // 2 - 2, H)


def test_attention_blocks_are_not_split_spatially(mobilevit_s):
    _, _, blocks, values, _ = mobilevit_s
    blk = blocks["stages.2.1"]  # a MobileViT block: unfold into patches, attention over all of them
    with pytest.raises(S.ShardError, match="stages.2.1"):
        S.spatial_shard(blk.module, blk.inputs, [values[n] for n in blk.inputs], 0, 2, "stages.2.1")


@pytest.fixture(scope="module")
def deit():
    torch.manual_seed(0)
    model = timm.create_model("deit_tiny_patch16_224", pretrained=False).eval()
    x = torch.randn(1, 197, model.embed_dim)
    return model, x


def test_deit_attention_tensor_shards_by_heads(deit):
    model, x = deit
    attn = model.blocks[3].attn
    with torch.no_grad():
        full = attn(x)
        parts = [S.tensor_shard(attn, k, 3)(x) for k in range(3)]  # DeiT-Tiny has 3 heads
    got = S.gather("tensor", parts)
    assert torch.allclose(got, full, rtol=1e-5, atol=1e-5), float((got - full).abs().max())
    # each shard holds a third of the weights
    n = sum(p.numel() for p in S.tensor_shard(attn, 0, 3).parameters())
    assert n < sum(p.numel() for p in attn.parameters()) / 2
    with pytest.raises(S.ShardError, match="heads"):
        S.tensor_shard(attn, 0, 2)


@pytest.mark.parametrize("w", [2, 8])
def test_deit_mlp_tensor_shards_by_hidden_units(deit, w):
    model, x = deit
    mlp = model.blocks[5].mlp
    with torch.no_grad():
        full = mlp(x)
        shards = [S.tensor_shard(mlp, k, w) for k in range(w)]
        got = S.gather("tensor", [s(x) for s in shards])
    assert torch.allclose(got, full, rtol=1e-5, atol=1e-5), float((got - full).abs().max())
    assert shards[0].fc2.bias is not None and all(s.fc2.bias is None for s in shards[1:])  # bias once
    assert shards[1].fc1.out_features == mlp.fc1.out_features // w


def test_deit_whole_block_two_step_tensor_shards(deit):
    model, x = deit
    blk = model.blocks[7]
    with torch.no_grad():
        full = blk(x)
    got = S.gather("tensor", S.block_partials(blk, x, 3))
    assert torch.allclose(got, full, rtol=1e-5, atol=1e-5), float((got - full).abs().max())
    # without the sum between attention and MLP the shards are wrong: the all-reduce is needed
    shards = [S.BlockShard(blk, k, 3) for k in range(3)]
    wrong = S.gather("tensor", [s.mlp_partial(s.attention_partial(x)) for s in shards])
    assert not torch.allclose(wrong, full, rtol=1e-3, atol=1e-3)


def test_unknown_modules_have_no_tensor_split(deit):
    model, _ = deit
    with pytest.raises(S.ShardError, match="no tensor split"):
        S.tensor_shard(model.blocks[0].norm1, 0, 2)


def test_gather_rejects_unknown_mode():
    with pytest.raises(ValueError):
        S.gather("diagonal", [torch.zeros(1)])


def test_whole_transformer_blocks_are_refused_by_the_runtime(deit):
    """deit's unhalved block-granularity 'blocks.0' is attention then MLP: its shards would
    need an all-reduce in between that no edge carries: refused by name (``--splits auto``
    cuts it into halves instead, see the end-to-end tests)."""
    model, _ = deit
    spec = json.loads((ROOT / "examples" / "models" / "deit_tiny_patch16_224.block.json").read_text())
    nodes = next(b["fx_nodes"] for b in spec["model"]["blocks"] if b["id"] == "blocks.0")
    gm = trace_model(model)
    with pytest.raises(S.ShardError, match="whole transformer block"):
        S.tensor_module_of(model, nodes, gm, "blocks.0")


def test_transformer_block_halves_shards_sum_to_the_block(deit):
    """The profiler's halves of deit's blocks.0 (cut with ``halves``), each run as shards
    (attention by heads, MLP by hidden units) and summed, equal the whole block."""
    from profiles import graph as G

    model, _ = deit
    gm = trace_model(model)
    segs = {s.id: s for s in G.cut(model, gm, "block", halves=True)}
    assert "blocks.0" not in segs and {"blocks.0:attn", "blocks.0:mlp"} <= set(segs)
    blk = model.blocks[0]
    x = torch.randn(1, 197, 192)
    for half, w in (("attn", 3), ("mlp", 2), ("mlp", 8)):
        path, mod, got_half = S.tensor_module_of(model, [n.name for n in segs[f"blocks.0:{half}"].nodes], gm)
        assert (path, got_half) == ("blocks.0", half) and mod is blk
    with torch.no_grad():
        x1 = x + blk.ls1(blk.attn(blk.norm1(x)))
        want = x1 + blk.ls2(blk.mlp(blk.norm2(x1)))
        got1 = S.gather("tensor", [S.half_shard(blk, "attn", k, 3)(x) for k in range(3)])
        assert torch.allclose(got1, x1, rtol=1e-5, atol=1e-5)
        for w in (2, 8):
            got = S.gather("tensor", [S.half_shard(blk, "mlp", k, w)(got1) for k in range(w)])
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-5)


def efficientformer_l1_unscaled() -> "torch.nn.Module":
    """timm's efficientformer_l1 (``pretrained=False``) whose last block ``stages.3.blocks.4``
    (a ``MetaBlock1d``) has layer scales 1 and random attention position biases: at timm's
    init (scales 1e-5, biases 0) an error in its attention or MLP shards would vanish below
    any tolerance; here it shows in the block's output and the model's."""
    model = timm.create_model("efficientformer_l1", pretrained=False).eval()
    blk = model.stages[3].blocks[4]
    g = torch.Generator().manual_seed(13)
    with torch.no_grad():
        blk.ls1.gamma.fill_(1.0)
        blk.ls2.gamma.fill_(1.0)
        blk.token_mixer.attention_biases.copy_(torch.randn(blk.token_mixer.attention_biases.shape, generator=g))
    return model


EFF_MODEL = "tests.test_runtime_shards:efficientformer_l1_unscaled"


@pytest.fixture(scope="module")
def efficientformer():
    from profiles import graph as G

    torch.manual_seed(0)
    model = efficientformer_l1_unscaled()
    gm = trace_model(model)
    segs = {s.id: s for s in G.cut(model, gm, "block", halves=True)}
    return model, gm, segs


def test_efficientformer_metablock_halves_shards_sum_to_the_half(efficientformer):
    """efficientformer_l1's ``stages.3.blocks.4`` (``MetaBlock1d``, attention ``token_mixer``
    with a per-head ``[q | k | v]`` qkv layout and position biases) is cut into halves; the
    sum of the ``w`` shard partials equals the unsplit half, run as the profiler's own block
    (its fx GraphModule) and as the module's forward, for every allowed ``w``."""
    from profiles import graph as G
    from profiles.splits import tensor_split

    model, gm, segs = efficientformer
    bid = "stages.3.blocks.4"
    assert bid not in segs and {f"{bid}:attn", f"{bid}:mlp"} <= set(segs)
    blk = model.get_submodule(bid)
    assert type(blk).__name__ == "MetaBlock1d" and G.is_prenorm_block(blk)
    assert not G.is_prenorm_block(model.stages[3].blocks[0])  # MetaBlock2d: pooling, no attention
    attn, hidden = blk.token_mixer, blk.mlp.fc1.out_features
    ways = {"attn": tensor_split(attn.num_heads, "attention heads")["ways"],
            "mlp": tensor_split(hidden, "hidden units")["ways"]}
    assert ways == {"attn": [1, 2, 4, 8], "mlp": [1, 2, 4, 7, 8]}  # 8 heads, 1792 hidden units
    x = torch.randn(1, 49, 448)
    with torch.no_grad():
        x1 = x + blk.ls1(attn(blk.norm1(x)))
        want = {"attn": x1, "mlp": x1 + blk.ls2(blk.mlp(blk.norm2(x1)))}
    assert torch.allclose(want["mlp"], blk(x))
    for half, inp in (("attn", x), ("mlp", x1)):
        nodes = [n.name for n in segs[f"{bid}:{half}"].nodes]
        path, mod, got_half = S.tensor_module_of(model, nodes, gm, f"{bid}:{half}")
        assert (path, got_half) == (bid, half) and mod is blk
        whole = G.extract_block(gm, nodes)
        with torch.no_grad():
            (ref,) = whole.module(inp)
        assert torch.allclose(ref, want[half], rtol=1e-5, atol=1e-5)
        S.check_tensor_block(whole.module, blk, [inp], f"{bid}:{half}", half)
        for w in ways[half]:
            with torch.no_grad():
                got = S.gather("tensor", [S.half_shard(blk, half, k, w)(inp) for k in range(w)])
            assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5), (half, w, float((got - ref).abs().max()))
    # the attention shards: the efficientformer class, a contiguous run of qkv rows per shard,
    # the heads' position-bias rows, val_dim proj columns per head, proj's bias in shard 0 only
    shards = [S.half_shard(blk, "attn", k, 4).__self__.attn for k in range(4)]
    assert all(isinstance(s, S.EfficientFormerAttentionShard) for s in shards)
    per_head = 2 * attn.key_dim + attn.val_dim
    assert torch.equal(shards[1].qkv.weight, attn.qkv.weight[2 * per_head:4 * per_head])
    assert torch.equal(shards[3].attention_biases, attn.attention_biases[6:8])
    assert shards[2].proj.weight.shape == (448, 2 * attn.val_dim)
    assert shards[0].proj.bias is not None and all(s.proj.bias is None for s in shards[1:])
    with pytest.raises(S.ShardError, match="heads"):
        S.half_shard(blk, "attn", 0, 3)
    # the whole block in two steps (the all-reduce between the halves) too
    got = S.gather("tensor", S.block_partials(blk, x, 2))
    assert torch.allclose(got, want["mlp"], rtol=1e-5, atol=1e-5)


def test_efficientformer_attention_alone_is_sharded_by_its_own_class(efficientformer):
    """``tensor_shard`` of the ``token_mixer`` module itself picks the same shard class."""
    model, _, _ = efficientformer
    attn = model.stages[3].blocks[4].token_mixer
    x = torch.randn(1, 49, 448)
    with torch.no_grad():
        full = attn(x)
        parts = [S.tensor_shard(attn, k, 8)(x) for k in range(8)]
    assert isinstance(S.tensor_shard(attn, 0, 2), S.EfficientFormerAttentionShard)
    got = S.gather("tensor", parts)
    assert torch.allclose(got, full, rtol=1e-5, atol=1e-5), float((got - full).abs().max())


# --------------------------------------------------------------------------------------
# end to end: `placement run` with shards on real gloo workers


from torch import nn  # noqa: E402


class ShardNet(nn.Module):
    """conv stem and a residual conv stage (spatial splits), then attention and an MLP on the
    tokens (tensor splits): every kind of producer and consumer of shards."""

    def __init__(self):
        super().__init__()
        from timm.layers import Attention, Mlp

        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.stage1 = _Residual(16)
        self.attn = Attention(16, num_heads=4, qkv_bias=True)
        self.mlp = Mlp(16, 32)
        self.head = nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 10))

    def forward(self, x):
        x = self.stage1(self.stem(x)).flatten(2).transpose(1, 2)
        return self.head(self.mlp(self.attn(x)).mean(1))


class _Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(torch.relu(self.bn(self.conv1(x))))


def shard_model() -> nn.Module:
    return ShardNet()


SHARD_MODEL = "tests.test_runtime_shards:shard_model"


def _shard_problem(ways=(1, 2)) -> dict:
    from profiles import make_problem, profile_model
    from profiles.splits import split_candidates

    torch.manual_seed(0)
    model = ShardNet().eval()
    section = profile_model(model, (1, 3, 32, 32), "block", name="shardnet", measure_time=False)
    cands = split_candidates(model, section, (1, 3, 32, 32))
    assert {"stem", "stage1", "attn", "mlp"} <= set(cands)
    for b in section["blocks"]:
        if b["id"] in cands:
            entry = {k: v for k, v in cands[b["id"]].items() if k != "meta"}
            b["split"] = dict(entry, ways=list(ways))
    prob = make_problem(section, ["rpi4", "jetson-nano", "laptop"], "wifi5", name="shardnet-split")
    for d in prob["devices"]:
        if d["id"] == "rpi4":
            d["flops_per_s"] = 1e7
    prob["network"] = {"default": {"bandwidth_bytes_per_s": 1e8, "latency_s": 2e-4}}
    return prob


def _shard_plan(p) -> dict:
    """Shard k on device k of (jetson-nano, laptop); the rest on the laptop."""
    devs = ["jetson-nano", "laptop"]
    return {"assignment": {b.id: devs[int(b.id.rsplit("#", 1)[1]) % 2] if b.origin else "laptop"
                           for b in p.blocks}}


def test_run_split_plan_on_gloo_workers_equals_the_unsplit_model(tmp_path):
    import subprocess
    import sys

    import placement
    from placement.runtime.prepare import predicted_transfers

    prob = _shard_problem()
    path = tmp_path / "p.json"
    path.write_text(json.dumps(prob))
    # the plan's own split choice (SPEC 6): the MLP stays whole, the others run as 2 shards
    choice = {"stem": 2, "stage1": 2, "attn": 2, "mlp": 1}
    p = placement.load(str(path)).expand(choice)
    assert {b.origin for b in p.blocks if b.origin} == {"stem", "stage1", "attn"} and "mlp" in p.block_index
    plan = dict(_shard_plan(p), split=choice)
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    env = dict(__import__("os").environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", "import sys; from placement.cli import main; sys.exit(main())",
                          "run", str(path), str(plan_path), "--model", SHARD_MODEL, "--inferences", "2",
                          "--emulate", "--json", "--calibrate", str(tmp_path / "cal.json")],
                         capture_output=True, text=True, env=env, cwd=str(ROOT),
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    d = json.loads(res.stdout)
    (tmp_path / "report.json").write_text(res.stdout)
    assert d["output_matches"] is True and d["max_abs_error"] <= 1e-5
    # every shard ran where the plan put it, and was measured beside its prediction
    assert {b["id"]: b["device"] for b in d["blocks"]} == plan["assignment"]
    assert all(b["measured_s"] is not None and b["measured_s"] > 0 for b in d["blocks"])
    assert all(b["predicted_s"] > 0 for b in d["blocks"] if b["id"].startswith(("stem#", "attn#", "mlp")))
    # every transfer the evaluator counts (shard to shard too) was measured
    pred = predicted_transfers(p, plan["assignment"])
    assert len(d["transfers"]) == len(pred) and all(t["measured_s"] for t in d["transfers"])
    assert any("#" in t["src"] and "#" in t["dst"] for t in d["transfers"])
    assert d["error"]["latency"] is not None and d["error"]["period"] is not None
    # --calibrate writes a split block's time back from its shards (rescaled to the whole block)
    cal = {b["id"]: b for b in json.loads((tmp_path / "cal.json").read_text())["model"]["blocks"]}
    stem = next(b for b in prob["model"]["blocks"] if b["id"] == "stem")
    scale = (stem["flops"] / 2 + stem["split"]["overhead_flops"]) / stem["flops"]
    for k, dev in enumerate(("jetson-nano", "laptop")):
        shard = next(b for b in d["blocks"] if b["id"] == f"stem#{k}")
        assert cal["stem"]["time_s"][dev] == pytest.approx(shard["measured_s"] / scale, rel=1e-9)
    mlp = next(b for b in d["blocks"] if b["id"] == "mlp")
    assert cal["mlp"]["time_s"]["laptop"] == pytest.approx(mlp["measured_s"], rel=1e-9)


def test_run_refuses_a_split_that_cannot_run_as_shards(tmp_path):
    import placement
    from placement.errors import InputError

    prob = _shard_problem(ways=(2,))
    head = next(b for b in prob["model"]["blocks"] if b["id"] == "head")
    head["split"] = {"ways": [2], "mode": "spatial", "overhead_flops": 0, "halo_bytes": 0}
    p = placement.load(prob)
    with pytest.raises(InputError, match="split block 'head' cannot run as shards"):
        placement.run(prob, _shard_plan(p), SHARD_MODEL, inferences=2)


def _profile_cli(tmp_path, model: str, extra=()) -> dict:
    import subprocess
    import sys

    out = tmp_path / f"{model}.json"
    env = dict(__import__("os").environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", "import sys; from placement.cli import main; sys.exit(main())",
                          "profile", model, "--splits", "auto", "--devices", "laptop,laptop", "--warmup", "0",
                          "--repeats", "1", "-o", str(out), *extra],
                         capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(out.read_text())


def _run_cli(tmp_path, prob: dict, choice: dict, model: str) -> dict:
    """`placement run` of ``choice`` (split block -> ways) with shard k on device k % 2 and
    every other block on the first device; the run's report."""
    import subprocess
    import sys

    import placement

    path = tmp_path / "p.json"
    path.write_text(json.dumps(prob))
    p = placement.load(str(path)).expand(choice)
    devs = [d.id for d in p.devices][:2]
    plan = {"assignment": {b.id: devs[int(b.id.rsplit("#", 1)[1]) % 2] if b.origin else devs[0]
                           for b in p.blocks}, "split": choice}
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    env = dict(__import__("os").environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", "import sys; from placement.cli import main; sys.exit(main())",
                          "run", str(path), str(plan_path), "--model", model, "--inferences", "2", "--json"],
                         capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    d = json.loads(res.stdout)
    assert {b["id"]: b["device"] for b in d["blocks"]} == plan["assignment"]
    return d


def test_deit_profiled_with_splits_auto_runs_its_halves_split(tmp_path):
    """`placement profile deit_tiny --splits auto` cuts every block into attention and MLP
    halves, each a tensor split candidate; a plan splitting halves 2 ways and the most ways
    runs on gloo workers with the unsplit model's output."""
    model = "deit_tiny_patch16_224"
    prob = _profile_cli(tmp_path, model)
    blocks = {b["id"]: b for b in prob["model"]["blocks"]}
    assert "blocks.0" not in blocks
    for i in range(12):
        assert blocks[f"blocks.{i}:attn"]["split"]["mode"] == "tensor"
        assert blocks[f"blocks.{i}:attn"]["split"]["ways"] == [1, 3]  # deit_tiny has 3 heads
        assert blocks[f"blocks.{i}:mlp"]["split"]["ways"] == [1, 2, 3, 4, 6, 8]  # 768 hidden units
    # the halves' edge carries the residual stream (197 tokens x 192 channels, float32)
    edges = prob["model"]["edges"]
    e = next(e for e in edges if e["src"] == "blocks.0:attn" and e["dst"] == "blocks.0:mlp")
    assert e["bytes"] == 197 * 192 * 4
    choice = {"blocks.0:attn": 3, "blocks.0:mlp": 2, "blocks.1:attn": 3, "blocks.1:mlp": 8}
    d = _run_cli(tmp_path, prob, choice, model)
    assert d["output_matches"] is True and d["max_abs_error"] <= 1e-4


def test_efficientformer_profiled_with_splits_auto_runs_its_halves_split(tmp_path):
    """efficientformer_l1 with ``--splits auto``: its last block ``stages.3.blocks.4``
    (``MetaBlock1d``) is cut into halves marked by tensor (8 heads, 1792 hidden units); a plan
    splitting the stem 2 ways (spatial), the attention half 8 ways and the MLP half 7 ways
    runs on gloo workers with the unsplit model's output (the model with that block's layer
    scales at 1, `efficientformer_l1_unscaled`, so that a wrong shard would show)."""
    prob = _profile_cli(tmp_path, EFF_MODEL)
    blocks = {b["id"]: b for b in prob["model"]["blocks"]}
    bid = "stages.3.blocks.4"
    assert bid not in blocks
    assert blocks[f"{bid}:attn"]["split"] == {"ways": [1, 2, 4, 8], "mode": "tensor", "overhead_flops": 0.0}
    assert blocks[f"{bid}:mlp"]["split"] == {"ways": [1, 2, 4, 7, 8], "mode": "tensor", "overhead_flops": 0.0}
    # the gathers: the partial sums are the residual stream, 49 tokens x 448 channels, float32
    edges = {(e["src"], e["dst"]): e["bytes"] for e in prob["model"]["edges"]}
    assert edges[(f"{bid}:attn", f"{bid}:mlp")] == 49 * 448 * 4 == blocks[f"{bid}:attn"]["output_bytes"]
    assert edges[(f"{bid}:mlp", "head")] == 49 * 448 * 4
    assert blocks["stem"]["split"]["mode"] == "spatial"
    choice = {"stem": 2, f"{bid}:attn": 8, f"{bid}:mlp": 7}
    d = _run_cli(tmp_path, prob, choice, EFF_MODEL)
    assert d["output_matches"] is True and d["max_abs_error"] <= 1e-4
    assert {b["id"] for b in d["blocks"]} >= {f"{bid}:attn#7", f"{bid}:mlp#6"}


def test_mobilevit_profiled_with_splits_auto_opens_its_blocks_and_runs_them_split(tmp_path):
    """mobilevit_s with ``--splits auto``: each MobileViT block (a leaf for timm's tracer) is
    opened (`profiles.graph.trace`) into its local convs, unfold, transformer halves, fold
    and fusion; the halves are marked by tensor (4 heads, 288 hidden units), the convs by
    rows, and the shortcut is an edge into the fusion block. A plan splitting a conv stem
    2 ways, the local convs 4 ways (rows), an attention half 4 ways (heads), an MLP half 3
    ways (hidden units) and the fusion 2 ways (rows, over the folded map and the shortcut)
    runs on gloo workers with the unsplit model's output."""
    model = "mobilevit_s"
    prob = _profile_cli(tmp_path, model)
    assert prob["model"]["meta"]["open_blocks"] == ["stages.2.1", "stages.3.1", "stages.4.1"]
    blocks = {b["id"]: b for b in prob["model"]["blocks"]}
    assert "stages.2.1" not in blocks
    p = "stages.2.1"
    assert blocks[f"{p}.transformer.0:attn"]["split"] == {"ways": [1, 2, 4], "mode": "tensor", "overhead_flops": 0.0}
    assert blocks[f"{p}.transformer.1:mlp"]["split"]["ways"] == [1, 2, 3, 4, 6, 8]
    assert blocks[f"{p}:local"]["split"]["mode"] == blocks[f"{p}:fusion"]["split"]["mode"] == "spatial"
    assert not blocks[f"{p}:unfold"].get("split") and not blocks[f"{p}:fold"].get("split")
    edges = {(e["src"], e["dst"]): e["bytes"] for e in prob["model"]["edges"]}
    # the shortcut: stages.2.0's output (96 channels x 32 x 32, float32) read by the fusion
    assert edges[("stages.2.0", f"{p}:fusion")] == 96 * 32 * 32 * 4
    # the tokens between the halves: 4 patch pixels x 256 patches x 144 channels
    assert edges[(f"{p}.transformer.0:attn", f"{p}.transformer.0:mlp")] == 4 * 256 * 144 * 4
    choice = {"stem": 2, f"{p}:local": 4, f"{p}.transformer.0:attn": 4, f"{p}.transformer.0:mlp": 3,
              f"{p}:fusion": 2, "stages.4.1.transformer.2:mlp": 8}
    d = _run_cli(tmp_path, prob, choice, model)
    assert d["output_matches"] is True and d["max_abs_error"] <= 1e-4
    assert {b["id"] for b in d["blocks"]} >= {f"{p}.transformer.0:attn#3", f"{p}:fusion#1"}

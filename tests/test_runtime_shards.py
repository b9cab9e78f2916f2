"""Shards of split blocks (issue 13, runtime part): gathered shards equal the unsplit block.

Spatial shards of real convolution blocks (resnet18, mobilevit_s) and tensor shards of real
attention and MLP modules and whole transformer blocks (deit_tiny), all timm with
``pretrained=False``, are checked with ``torch.allclose`` against the block they come from.
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


@pytest.mark.parametrize("bid", ["stem", "maxpool", "layer1.0", "layer2.0", "layer3.1", "layer4.0"])
@pytest.mark.parametrize("w", [2, 4])
def test_resnet18_conv_blocks_spatial_shards_equal_the_block(resnet18, bid, w):
    _, _, blocks, values, _ = resnet18
    sent, rows = _spatial_check(blocks, values, bid, w)
    # each shard gets its band plus a halo, not the whole input: the bands overlap by the halo only
    assert rows < sent < w * rows


@pytest.mark.parametrize("bid", ["stem", "stages.0.0", "stages.1.0", "stages.1.1", "stages.4.0", "final_conv"])
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


@pytest.mark.parametrize("w", [2, 4, 8])
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

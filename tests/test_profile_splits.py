"""Split candidates from real shapes (issue 13's profiler part, `profiles/splits.py`)."""

from __future__ import annotations

import pytest

from profiles.splits import spatial_split, tensor_split


def test_spatial_split_hand_worked():
    # two 3x3 convs, stride 1 then 2, on a 1x8x32x32 input: receptive field 1 + 2 + 2*1 = 5
    # rows, stride 2: each band needs 5 - 2 = 3 extra input rows (32 wide, 8 channels, fp32)
    layers = [(3, 1, 1, 1000.0, 32), (3, 2, 1, 500.0, 16)]
    s = spatial_split(layers, (1, 8, 32, 32), out_rows=16)
    assert s["mode"] == "spatial" and s["ways"] == [1, 2, 4, 8]
    assert s["meta"]["receptive_field_rows"] == 5 and s["meta"]["stride_rows"] == 2
    assert s["halo_bytes"] == 3 * 32 * 8 * 4
    # the first conv recomputes (3 - 2) = 1 extra row of its 32 at each band edge; the last none
    assert s["overhead_flops"] == pytest.approx(1000.0 * 1 / 32)
    # a map too short to cut into bands of two rows
    assert spatial_split([(3, 1, 1, 10.0, 3)], (1, 1, 3, 3), out_rows=3) is None
    assert spatial_split([(3, 1, 1, 10.0, 6)], (1, 1, 6, 6), out_rows=6)["ways"] == [1, 2]


def test_tensor_split_follows_the_divisors():
    assert tensor_split(3, "heads")["ways"] == [1, 3]
    assert tensor_split(12, "heads")["ways"] == [1, 2, 3, 4, 6]
    assert tensor_split(7, "heads") is None or tensor_split(7, "heads")["ways"] == [1, 7]
    assert tensor_split(5, "x") == {"ways": [1, 5], "mode": "tensor", "overhead_flops": 0.0,
                                    "meta": {"split_by": "x", "units": 5}}


def test_real_models_get_candidates_that_load():
    pytest.importorskip("torch", reason="the 'profile' extra (torch) is not installed")
    timm = pytest.importorskip("timm", reason="the 'profile' extra (timm) is not installed")
    from torch import nn

    import placement
    from profiles import make_problem, profile_model
    from profiles.splits import add_splits, split_candidates

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

        def forward(self, x):
            return self.head(self.stem(x))

    model = Tiny().eval()
    sec = profile_model(model, (1, 3, 32, 32), "stage", warmup=0, repeats=1, measure_time=False)
    cands = split_candidates(model, sec, (1, 3, 32, 32))
    assert set(cands) == {"stem"}
    assert cands["stem"]["halo_bytes"] == (5 - 2) * 32 * 3 * 4  # input: 3 channels, 32 wide
    deit = timm.create_model("deit_tiny_patch16_224", pretrained=False).eval()
    # a whole transformer block (attention then MLP) is not marked: the runtime cannot shard it
    whole = profile_model(deit, (1, 3, 224, 224), "block", warmup=0, repeats=1, measure_time=False)
    assert split_candidates(deit, whole, (1, 3, 224, 224)) == {}
    # cut into halves (as --splits auto does), each half is a tensor candidate
    dsec = profile_model(deit, (1, 3, 224, 224), "block", warmup=0, repeats=1, measure_time=False, halves=True)
    dc = split_candidates(deit, dsec, (1, 3, 224, 224))
    want = {f"blocks.{i}:attn": [1, 3] for i in range(12)}  # 3 heads
    want.update({f"blocks.{i}:mlp": [1, 2, 3, 4, 6, 8] for i in range(12)})  # 768 hidden units
    assert {k: v["ways"] for k, v in dc.items()} == want
    problem = make_problem(add_splits(dsec, dc), ["rpi4", "laptop"], "ethernet")
    p = placement.load(problem)
    assert p.n_blocks > len(dsec["blocks"])  # the split blocks are shards now


def test_efficientformer_metablock_halves_are_tensor_candidates():
    """efficientformer_l1's last block ``stages.3.blocks.4`` (timm ``MetaBlock1d``: its attention
    is ``token_mixer``) is cut into halves as deit's blocks are; the attention half is marked by
    heads (8: ways 1, 2, 4, 8), the MLP half by hidden units (1792 = 2^8 x 7: ways 1, 2, 4, 7,
    8); the conv blocks before it keep their spatial candidates."""
    pytest.importorskip("torch", reason="the 'profile' extra (torch) is not installed")
    timm = pytest.importorskip("timm", reason="the 'profile' extra (timm) is not installed")

    import placement
    from profiles import make_problem, profile_model
    from profiles.splits import add_splits, split_candidates

    model = timm.create_model("efficientformer_l1", pretrained=False).eval()
    sec = profile_model(model, (1, 3, 224, 224), "block", warmup=0, repeats=1, measure_time=False, halves=True)
    blocks = {b["id"]: b for b in sec["blocks"]}
    bid = "stages.3.blocks.4"
    assert bid not in blocks and blocks[f"{bid}:attn"]["kind"] == "attention"
    assert blocks[f"{bid}:mlp"]["kind"] == "mlp"
    cands = split_candidates(model, sec, (1, 3, 224, 224))
    assert cands[f"{bid}:attn"] == {"ways": [1, 2, 4, 8], "mode": "tensor", "overhead_flops": 0.0,
                                    "meta": {"split_by": "attention heads", "units": 8}}
    assert cands[f"{bid}:mlp"] == {"ways": [1, 2, 4, 7, 8], "mode": "tensor", "overhead_flops": 0.0,
                                   "meta": {"split_by": "hidden units", "units": 1792}}
    assert {b for b, c in cands.items() if c["mode"] == "tensor"} == {f"{bid}:attn", f"{bid}:mlp"}
    assert "stages.3.blocks.3" not in cands  # the Flat between the stages' conv and 1d blocks
    # what the shards' partials are summed into: the residual stream, 49 tokens x 448 float32
    edges = {(e["src"], e["dst"]): e["bytes"] for e in sec["edges"]}
    assert edges[(f"{bid}:attn", f"{bid}:mlp")] == 49 * 448 * 4 == blocks[f"{bid}:mlp"]["output_bytes"]
    p = placement.load(make_problem(add_splits(sec, cands), ["rpi4", "laptop"], "ethernet"))
    assert f"{bid}:attn#7" in p.block_index and f"{bid}:mlp#7" in p.block_index  # expanded by max(ways)

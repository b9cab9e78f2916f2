"""Profiling real torch models into blocks: FLOPs, parameters, DAG, edge bytes, user models.

Needs the ``profile`` extra (torch, torchvision, timm, fvcore); skipped with that reason when
it is not installed. Small inputs and one timed run keep it fast.
"""

from __future__ import annotations

import json
import sys
import textwrap
from argparse import Namespace

import pytest

torch = pytest.importorskip("torch", reason="the 'profile' extra (torch) is not installed: pip install '.[profile]'")
pytest.importorskip("fvcore", reason="the 'profile' extra (fvcore) is not installed: pip install '.[profile]'")
timm = pytest.importorskip("timm", reason="the 'profile' extra (timm) is not installed: pip install '.[profile]'")

import networkx as nx  # noqa: E402

import placement  # noqa: E402
from placement.errors import InputError  # noqa: E402
from profiles import graph as G  # noqa: E402
from profiles import measure as M  # noqa: E402
from profiles import profile_model  # noqa: E402

FAST = {"warmup": 0, "repeats": 1}
SHAPE = (1, 3, 64, 64)


def _resnet18():
    return timm.create_model("resnet18", pretrained=False).eval()


@pytest.fixture(scope="module")
def resnet_layers():
    model = _resnet18()
    return model, profile_model(model, SHAPE, "layer", **FAST)


@pytest.fixture(scope="module")
def resnet_blocks():
    model = _resnet18()
    return model, profile_model(model, SHAPE, "block", **FAST)


def _dag(section):
    g = nx.DiGraph()
    g.add_nodes_from(b["id"] for b in section["blocks"])
    g.add_edges_from((e["src"], e["dst"]) for e in section["edges"])
    return g


def _fvcore_total(model, shape):
    from fvcore.nn import FlopCountAnalysis

    torch.manual_seed(0)
    a = FlopCountAnalysis(model, (torch.randn(*shape),))
    a.unsupported_ops_warnings(False)
    a.uncalled_modules_warnings(False)
    return a.total()


@pytest.mark.parametrize("which", ["resnet_layers", "resnet_blocks"])
def test_block_flops_add_up_to_fvcore_total(which, request):
    model, section = request.getfixturevalue(which)
    total = _fvcore_total(model, SHAPE)
    assert total > 0
    assert sum(b["flops"] for b in section["blocks"]) == pytest.approx(total, rel=0.01)


@pytest.mark.parametrize("which", ["resnet_layers", "resnet_blocks"])
def test_block_parameters_add_up_to_the_models_own(which, request):
    model, section = request.getfixturevalue(which)
    assert sum(b["meta"]["params"] for b in section["blocks"]) == sum(p.numel() for p in model.parameters())
    state = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert sum(b["params_bytes"] for b in section["blocks"]) == state


def test_layer_dag_is_acyclic_and_has_the_residual_skip_edges(resnet_layers):
    _, section = resnet_layers
    g = _dag(section)
    assert nx.is_directed_acyclic_graph(g)
    assert nx.is_weakly_connected(g)
    # resnet18 has 8 residual blocks: each one's input fans out to its conv path and to the add
    fan_out = [n for n in g if g.out_degree(n) >= 2]
    assert len(fan_out) >= 8
    # the skip of layer1.0: from the max-pool straight to the block that adds the residual
    (pool,) = [b["id"] for b in section["blocks"] if b["id"] == "maxpool"]
    targets = set(g.successors(pool))
    assert "layer1.0.conv1" in targets
    assert any(t != "layer1.0.conv1" and t.startswith("layer1.0") for t in targets)
    # a skip edge jumps over blocks: its source is not the immediate predecessor of its target
    order = [b["id"] for b in section["blocks"]]
    assert any(order.index(e["dst"]) - order.index(e["src"]) > 1 for e in section["edges"])


def test_block_dag_of_resnet_is_the_chain_of_its_blocks(resnet_blocks):
    _, section = resnet_blocks
    ids = [b["id"] for b in section["blocks"]]
    assert ids[0] == "stem" and ids[-1] == "head"
    assert [i for i in ids if i.startswith("layer")] == [f"layer{s}.{k}" for s in range(1, 5) for k in range(2)]
    assert nx.is_directed_acyclic_graph(_dag(section))
    kinds = {b["id"]: b["kind"] for b in section["blocks"]}
    assert kinds["layer1.0"] == "conv" and kinds["head"] == "head"


def test_edge_bytes_equal_the_real_tensor_sizes(resnet_layers):
    model, section = resnet_layers
    gm = G.trace(model)
    torch.manual_seed(0)
    x = torch.randn(*SHAPE)
    values = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            values[n.name] = out
            return out

    with torch.no_grad():
        Recorder(gm).run(x)
    owner = {name: b["id"] for b in section["blocks"] for name in b["fx_nodes"]}
    expected: dict[tuple[str, str], int] = {}
    for b in section["blocks"]:
        for inp in b["meta"]["inputs"]:
            if inp["from"] == "input":
                continue
            v = values[inp["fx_node"]]
            assert owner[inp["fx_node"]] == inp["from"]
            key = (inp["from"], b["id"])
            expected[key] = expected.get(key, 0) + v.numel() * v.element_size()
    got = {(e["src"], e["dst"]): e["bytes"] for e in section["edges"]}
    assert got == expected
    assert section["input_bytes"] == x.numel() * x.element_size()


def test_each_block_runs_alone_and_the_split_reproduces_the_model(resnet_blocks):
    model, section = resnet_blocks
    assert section["meta"]["split_output_max_abs_error"] == 0.0
    gm = G.trace(model)
    b = next(b for b in section["blocks"] if b["id"] == "layer2.0")
    block = G.extract_block(gm, b["fx_nodes"])
    assert block.inputs == [i["fx_node"] for i in b["meta"]["inputs"]]
    (inp,) = block.inputs
    arg = torch.randn(1, 64, 16, 16)  # layer1's output at 64x64 input
    with torch.no_grad():
        (out,) = block.module(arg)
        ref = model.layer2[0](arg)
    assert torch.equal(out, ref)
    assert b["output_bytes"] == out.numel() * out.element_size()


def test_measured_memory_and_time_are_recorded(resnet_blocks):
    _, section = resnet_blocks
    for b in section["blocks"]:
        assert b["activation_bytes"] >= b["output_bytes"] > 0
        assert b["meta"]["time_host_s"] > 0
        assert b["modules"] and b["fx_nodes"]
    rec = section["meta"]["measurement"]
    assert rec["threads"] == 1 and rec["repeats"] == 1 and rec["torch"] == torch.__version__


def test_peak_memory_counts_live_intermediates():
    x = torch.randn(1, 8, 32, 32)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1)

    def fn():
        y = conv(x)
        z = torch.relu(y)
        return z * 2  # y, z and the result are alive together, with the input

    n = x.numel() * 4
    assert M.peak_working_bytes(fn, [x]) == n + 3 * n

    def fn_freeing():
        y = torch.relu(conv(x))  # conv's output dies as soon as relu has read it
        return y * 2

    assert M.peak_working_bytes(fn_freeing, [x]) == n + 2 * n


USER_MODEL = textwrap.dedent('''
    import torch
    from torch import nn

    class Tiny(nn.Module):
        """A conv stem, a residual block with a functional add, and a head."""
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.blocks = nn.Sequential(Res(8), Res(8))
            self.head = nn.Linear(8, 10)

        def forward(self, x):
            x = self.blocks(self.stem(x))
            return self.head(x.mean((2, 3)))

    class Res(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1)

        def forward(self, x):
            return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))

    def build():
        return Tiny()
''')


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    (tmp_path / "tiny_user_model.py").write_text(USER_MODEL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "tiny_user_model:build"
    sys.modules.pop("tiny_user_model", None)


def test_user_model_given_as_module_callable_profiles(user_module):
    from profiles.models import load_model

    model, name = load_model(user_module)
    assert name == "build"
    section = profile_model(model, (1, 3, 32, 32), "block", **FAST)
    ids = [b["id"] for b in section["blocks"]]
    assert ids == ["stem", "blocks.0", "blocks.1", "head"]
    assert sum(b["flops"] for b in section["blocks"]) == pytest.approx(_fvcore_total(model, (1, 3, 32, 32)), rel=0.01)
    layers = profile_model(model, (1, 3, 32, 32), "layer", **FAST)
    g = _dag(layers)
    assert nx.is_directed_acyclic_graph(g) and any(g.out_degree(n) >= 2 for n in g)


def test_cli_profiles_a_user_model_into_a_loadable_problem(user_module, tmp_path):
    from profiles import cli

    out = tmp_path / "out" / "tiny.json"
    args = Namespace(model=user_module, devices="rpi4,rpi4,laptop", granularity="block", input_shape="1x3x32x32",
                     network="wifi6", threads=1, warmup=0, repeats=1, name=None, output=str(out))
    assert cli.run(args) == 0
    problem = placement.load(str(out))
    assert [d.id for d in problem.devices] == ["rpi4-0", "rpi4-1", "laptop"]
    raw = json.loads(out.read_text())
    assert raw["source"] == raw["sink"] == "rpi4-0"
    assert raw["meta"]["profile"]["measurement"]["threads"] == 1
    assert set(raw["model"]["blocks"][0]["time_s"]) == {"rpi4", "laptop"}
    assert not list(out.parent.glob(".profile-*"))  # the temporary file was renamed away


@pytest.mark.parametrize("spec, message", [
    ("resnet_eighteen", "unknown timm model 'resnet_eighteen'"),
    ("no_such_module_xyz:build", "cannot import module 'no_such_module_xyz'"),
    ("profiles.models:nothing_here", "has no attribute 'nothing_here'"),
])
def test_bad_model_names_are_input_errors(spec, message):
    from profiles.models import load_model

    with pytest.raises(InputError, match=message):
        load_model(spec)


def test_cli_rejects_an_unknown_device_before_profiling():
    from profiles import cli

    args = Namespace(model="resnet18", devices="rpi4,toaster", granularity="block", input_shape=None,
                     network="wifi5", threads=1, warmup=0, repeats=1, name=None, output=None)
    with pytest.raises(InputError, match="unknown device type 'toaster'"):
        cli.run(args)


def test_attention_blocks_of_a_vit_are_attention_and_counted():
    model = timm.create_model("deit_tiny_patch16_224", pretrained=False, img_size=64).eval()
    section = profile_model(model, SHAPE, "block", **FAST)
    blocks = {b["id"]: b for b in section["blocks"]}
    assert blocks["blocks.0"]["kind"] == "attention"
    # fused scaled-dot-product attention is counted (fvcore alone would count 0 for it)
    tokens, dim = 17, 192
    assert blocks["blocks.0"]["meta"]["flops_by_kind"]["attention"] >= 4 * tokens * dim * dim + 2 * tokens * tokens * dim
    assert sum(b["flops"] for b in section["blocks"]) == section["meta"]["model_flops_fvcore"]


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("mobilevit_s", 256), ("coatnet_0_rw_224", 224), ("levit_128s", 224)])
def test_hybrid_models_at_layer_granularity(name, size):
    model = timm.create_model(name, pretrained=False).eval()
    section = profile_model(model, (1, 3, size, size), "layer", **FAST)
    assert section["meta"]["block_flops_sum"] == section["meta"]["model_flops_fvcore"]
    assert section["meta"]["split_output_max_abs_error"] < 1e-4
    g = _dag(section)
    assert nx.is_directed_acyclic_graph(g) and any(g.out_degree(n) >= 2 for n in g)


@pytest.mark.parametrize("shape", [(1, 3, 128, 128), (1, 3, 100, 132)])
def test_open_blocks_traces_through_mobilevit_blocks_with_the_models_output(shape):
    """``open_blocks`` (``--splits auto``): timm's MobileVitBlock, a leaf of timm's tracer, is
    traced through: its convs and transformer layers are nodes of the graph, the output is
    the model's on square maps and on maps that are not whole patches (100 x 132: timm
    resizes them around the transformer), and the model's own forward is back afterwards."""
    torch.manual_seed(0)
    model = timm.create_model("mobilevit_xxs", pretrained=False).eval()
    x = torch.randn(*shape)
    closed = G.trace(model)
    assert any(n.op == "call_module" and str(n.target) == "stages.2.1" for n in closed.graph.nodes)
    gm = G.trace(model, shape, open_blocks=True)
    targets = {str(n.target) for n in gm.graph.nodes if n.op == "call_module"}
    assert "stages.2.1" not in targets and "stages.2.1.transformer.0.attn.qkv" in targets
    assert sum(n.target is G.mobilevit_fold for n in gm.graph.nodes) == 3
    with torch.no_grad():
        want = model(x)
        assert torch.allclose(gm(x), want, rtol=1e-5, atol=1e-5)
    assert "forward" not in vars(model.stages[2][1])
    segs = {s.id for s in G.cut(model, gm, "block", halves=True)}
    assert {"stages.2.1:local", "stages.2.1:unfold", "stages.2.1.transformer.1:mlp", "stages.2.1:fold",
            "stages.2.1:fusion"} <= segs

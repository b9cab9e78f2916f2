"""Split candidates from a model's real shapes (``placement profile --splits auto``).

A block that can run as ``w`` shards on several devices gets a ``split`` entry (SPEC section 6)
whose costs follow from the real layers and tensors of the block:

- **Convolutional blocks, spatially** (``mode: spatial``): the output's rows are cut into ``w``
  bands. Along the block's chain of spatial layers (convolutions and pooling, in execution
  order) the receptive field ``R`` and the stride product ``J`` give the rows of input a band
  needs beyond its own share: ``R - J`` rows, so ``halo_bytes = (R - J) x width x channels x
  element size`` of the block's input. The intermediate layers recompute rows at every band
  edge: layer ``l`` computes ``R_l - J_l`` extra output rows (``R_l``, ``J_l``: receptive field
  and stride of the layers after it, in ``l``'s output rows), so ``overhead_flops`` is the sum
  over layers of ``flops_l x (R_l - J_l) / H_l``. A block with parallel branches (a residual
  block) is treated as the chain of all its spatial layers: the receptive field is then an
  upper bound, and halo and overhead are over-counted, never under. A block with several
  inputs of one height (MobileViT's fusion block reads the folded map and the shortcut) gets
  the halo of its widest input: ``halo_bytes`` is one figure for every edge in (SPEC 6), so it
  is over-counted on the narrower. Ways: 2 and 4 (and 8 for tall maps), each band at least
  two output rows.
- **Attention blocks, by heads** (``mode: tensor``): ways are the divisors of the number of
  heads (up to 8); each shard holds its heads' weights (and the MLP's hidden units in the same
  proportion), receives the whole input and produces its part of the output, gathered by the
  consumer (the gather bytes are the real output's, SPEC section 6).
- **MLP blocks, by hidden units** (``mode: tensor``): ways that divide the hidden width.
- **Pre-norm transformer blocks** (timm ``vision_transformer.Block`` and blocks with the same
  ``norm1 / attn / ls1 / norm2 / mlp / ls2`` parts, efficientformer's ``MetaBlock1d`` too,
  whose attention is ``token_mixer``): with ``--splits auto`` the profiler cuts each into its
  attention half ``<path>:attn`` and its MLP half ``<path>:mlp`` (`profiles.graph.cut`), each
  split by tensor as above (ways from the attention's ``num_heads``, from ``fc1``'s outputs);
  the edge between the halves is the all-reduce between their shards, its bytes the real
  output's. A tensor entry is written only for a block the runtime can
  shard (``placement.runtime.shards.tensor_module_of``): a whole block with attention and MLP
  (any block not cut into halves) is not marked.
- **MobileViT blocks** (timm ``MobileVitBlock``, a leaf for timm's tracer): with ``--splits
  auto`` the trace goes through them (`profiles.graph.trace`, ``open_blocks``), so each is
  cut into ``<path>:local`` (its kxk and 1x1 convs, split by rows), ``<path>:unfold``, its
  transformer layers (halves, split by heads and hidden units as above), ``<path>:fold``
  (norm and fold) and ``<path>:fusion`` (conv_proj and the fusion conv over the concat with
  the shortcut, split by rows); the shortcut is an edge from the block's input to the
  fusion block.

``1`` is always allowed (keep the block whole). Blocks of other kinds (embeddings, norms,
heads, glue) are not split: their work is too small to pay for a gather.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: the most shards a split candidate allows
MAX_WAYS = 8
#: rows each spatial band keeps at least
MIN_ROWS_PER_BAND = 2


def _module_of(model, node):
    try:
        return model.get_submodule(str(node.target)) if node.op == "call_module" else None
    except AttributeError:
        return None


def _attribute_near(model, nodes, attr: str):
    """``attr`` (e.g. ``num_heads``) of the first module that a node calls, contains, or sits
    inside (an fx trace goes through timm's Attention into its Linear layers)."""
    for node in nodes:
        if node.op != "call_module":
            continue
        path = str(node.target).split(".")
        for cut in range(len(path), 0, -1):
            try:
                m = model.get_submodule(".".join(path[:cut]))
            except AttributeError:
                continue
            for sub in [m, *m.modules()] if cut == len(path) else [m]:
                if hasattr(sub, attr) and isinstance(getattr(sub, attr), int):
                    return int(getattr(sub, attr))
    return None


def _pair(x) -> int:
    return int(x[0] if isinstance(x, (tuple, list)) else x)


def spatial_split(layers: Sequence[tuple[int, int, int, float, int]], in_shape: Sequence[int],
                  out_rows: int, elem: int = 4) -> dict[str, Any] | None:
    """The spatial split entry of a chain of spatial layers.

    ``layers``: (kernel rows, stride, dilation, flops, output rows) per layer, in order;
    ``in_shape``: the block's input (N, C, H, W). None when the map is too short to cut."""
    ways = [w for w in (2, 4, 8) if out_rows >= MIN_ROWS_PER_BAND * w and w <= MAX_WAYS]
    if not ways or not layers:
        return None
    rf, jump = 1, 1
    for k, s, d, _, _ in layers:
        rf += (k - 1) * d * jump
        jump *= s
    halo_rows = max(0, rf - jump)
    n, c, _, w = (list(in_shape) + [1, 1, 1, 1])[:4]
    halo_bytes = float(halo_rows * w * c * n * elem)
    overhead = 0.0
    for i, (_, _, _, flops, rows) in enumerate(layers):
        r, j = 1, 1
        for k, s, d, _, _ in layers[i + 1:]:
            r += (k - 1) * d * j
            j *= s
        if rows > 0:
            overhead += flops * max(0, r - j) / rows
    return {"ways": [1] + ways, "mode": "spatial", "overhead_flops": float(overhead),
            "halo_bytes": halo_bytes,
            "meta": {"split_by": "output rows", "receptive_field_rows": rf, "stride_rows": jump,
                     "halo_rows": halo_rows}}


def tensor_split(units: int, what: str) -> dict[str, Any] | None:
    """The tensor split entry of a block with ``units`` heads or hidden units."""
    ways = [w for w in range(2, MAX_WAYS + 1) if units % w == 0]
    if not ways:
        return None
    return {"ways": [1] + ways, "mode": "tensor", "overhead_flops": 0.0,
            "meta": {"split_by": what, "units": int(units)}}


def _runtime_can_shard(model, fx_nodes, gm) -> bool:
    """Whether the runtime shards this block by tensor (a timm Attention, efficientformer's
    Attention, a timm Mlp, or one half of a pre-norm transformer block as `profiles.graph.cut`
    makes with ``halves``)."""
    from placement.runtime.shards import ShardError, tensor_module_of

    try:
        tensor_module_of(model, fx_nodes, gm)
    except ShardError:
        return False
    return True


def split_candidates(model: Any, section: Mapping[str, Any], input_shape: Sequence[int]) -> dict[str, dict]:
    """Block id -> the ``split`` entry for each block of ``section`` (from `profile_model` on
    ``model``) that can be split; see the module docstring. Imports torch."""
    import torch
    from torch import nn
    from torch.fx.passes.shape_prop import ShapeProp

    from . import graph as G

    gm = G.trace(model, **G.trace_options(section.get("meta")))
    ShapeProp(gm).propagate(torch.randn(*input_shape))
    nodes = {n.name: n for n in gm.graph.nodes}

    def shape(name: str):
        tm = nodes[name].meta.get("tensor_meta") if name in nodes else None
        return tuple(tm.shape) if tm is not None and hasattr(tm, "shape") else None

    out: dict[str, dict] = {}
    for b in section["blocks"]:
        kind = b.get("kind")
        names = [n for n in b.get("fx_nodes") or [] if n in nodes]
        mods = [(nodes[n], _module_of(model, nodes[n])) for n in names]
        mods = [(n, m) for n, m in mods if m is not None]
        meta = b.get("meta") or {}
        if kind == "conv":
            ins = [i["fx_node"] for i in meta.get("inputs") or []]
            outs = meta.get("outputs") or []
            in_shapes = [shape(i) for i in ins]
            out_shape = shape(outs[0]) if len(outs) == 1 else None
            if (not in_shapes or not out_shape or len(out_shape) != 4
                    or any(not sh or len(sh) != 4 or sh[2] != in_shapes[0][2] for sh in in_shapes)):
                continue
            # several inputs of one height (MobileViT's fusion: the folded map and the
            # shortcut): one halo_bytes serves every edge in (SPEC 6), the largest input's
            in_shape = max(in_shapes, key=lambda sh: sh[0] * sh[1] * sh[3])
            layers = []
            for node, m in mods:
                o = shape(node.name)
                if isinstance(m, nn.Conv2d) and o and len(o) == 4:
                    flops = (m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
                             * m.out_channels * o[2] * o[3] * o[0])
                    layers.append((m.kernel_size[0], m.stride[0], m.dilation[0], float(flops), o[2]))
                elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) and o and len(o) == 4:
                    layers.append((_pair(m.kernel_size), _pair(m.stride or m.kernel_size),
                                   _pair(getattr(m, "dilation", 1)), 0.0, o[2]))
            entry = spatial_split(layers, in_shape, out_shape[2])
        elif kind == "attention":
            heads = _attribute_near(model, [n for n, _ in mods] or [nodes[x] for x in names], "num_heads")
            entry = tensor_split(heads, "attention heads") if heads else None
        elif kind == "mlp":
            hidden = next((m.out_features for _, m in mods if isinstance(m, nn.Linear)), None)
            if hidden is None:
                hidden = next((m.out_channels for _, m in mods if isinstance(m, nn.Conv2d)
                               and m.kernel_size == (1, 1)), None)
            entry = tensor_split(hidden, "hidden units") if hidden else None
        else:
            entry = None
        if entry and entry["mode"] == "tensor" and not _runtime_can_shard(model, names, gm):
            entry = None  # marked only when 'placement run' can run its shards
        if entry:
            out[b["id"]] = entry
    return out


def add_splits(section: dict[str, Any], candidates: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``section`` with each candidate's ``split`` entry set, its derivation in the block's
    ``meta.split`` (a new dict; the input is kept)."""
    import copy
    out = copy.deepcopy(section)
    for b in out["blocks"]:
        if b["id"] in candidates:
            entry = dict(candidates[b["id"]])
            # how the costs were derived goes with the block's meta (a split entry has no meta)
            b["meta"] = dict(b.get("meta") or {}, split=entry.pop("meta", {}))
            b["split"] = entry
    out["meta"] = dict(out.get("meta") or {}, splits="auto", split_blocks=sorted(candidates))
    return out

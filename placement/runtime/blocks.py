"""Rebuild a problem's blocks from the model and the profile's block-to-module mapping.

A block of a profiled problem carries ``fx_nodes``: the names of the torch.fx nodes it is
made of, in the graph `profiles.graph.trace` makes of the model. Tracing the same model
again gives the same names, so `profiles.graph.extract_block` cuts each block out as a
GraphModule of its own that holds only the parameters and buffers it reads (as
`torch.distributed.pipelining` cuts stages from a traced graph).

Every process that builds the model seeds torch's generator first (`build_model`), so a
model with random weights (a timm name, ``pretrained=False``) has the same weights in the
supervisor, in every worker and on every machine with the same torch and timm versions;
the run's output check (`torch.allclose` against the unsplit model) catches any
difference.

This module imports torch: only the runtime imports it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import fx

from ..errors import InputError

#: producer name of the model input when no block of the problem carries it.
SOURCE = "@source"


class RebuildError(InputError):
    """A block cannot be rebuilt from the mapping: the message names the block and why."""


@dataclasses.dataclass
class RuntimeBlock:
    """One block, ready to run: ``module(*inputs)`` returns one value per name in ``outputs``."""

    id: str
    module: Any
    inputs: list[str]
    outputs: list[str]


def build_model(spec: str, seed: int) -> torch.nn.Module:
    """The model named by ``spec`` (timm name or ``package.module:callable``) in eval mode,
    its random initialisation seeded by ``seed``."""
    from profiles.models import load_model

    torch.manual_seed(seed)
    model, _ = load_model(spec)
    return model.eval()


def trace_model(model: torch.nn.Module, **options: Any) -> fx.GraphModule:
    """The model's fx graph as the profiler traced it: ``options`` are the profile's
    (`profiles.graph.trace_options` of its meta: MobileViT's blocks opened with
    ``--splits auto``), so that the blocks' ``fx_nodes`` name nodes of this graph."""
    from profiles.graph import TraceError, trace

    try:
        return trace(model, **options)
    except TraceError as exc:
        raise RebuildError(f"--model: {exc}") from None


def placeholder_name(gm: fx.GraphModule) -> str:
    phs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(phs) != 1:
        raise RebuildError(f"--model: the traced model takes {len(phs)} inputs, the runtime feeds one image")
    return phs[0].name


def output_names(gm: fx.GraphModule) -> tuple[Any, list[str]]:
    """(the output node's argument structure with node names in place of nodes, the names)."""
    from torch.utils._pytree import tree_map

    out = next(n for n in gm.graph.nodes if n.op == "output")
    names = [a.name for a in out.all_input_nodes]
    structure = tree_map(lambda a: ("@node", a.name) if isinstance(a, fx.Node) else a, out.args[0])
    return structure, names


def fill_structure(structure: Any, values: Mapping[str, Any]) -> Any:
    """The model output from the output node's structure and the values by node name."""
    if isinstance(structure, tuple) and len(structure) == 2 and structure[0] == "@node":
        return values[structure[1]]
    if isinstance(structure, (list, tuple)):
        return type(structure)(fill_structure(s, values) for s in structure)
    if isinstance(structure, dict):
        return {k: fill_structure(v, values) for k, v in structure.items()}
    return structure


def rebuild(gm: fx.GraphModule, blocks: Iterable[tuple[str, Sequence[str]]]) -> dict[str, RuntimeBlock]:
    """Cut the blocks ``(id, fx_nodes)`` out of the traced model ``gm``.

    A block made only of the model's input placeholder (the profiler's ``input`` block) is
    the identity. Raises `RebuildError` naming the block when its nodes are not in the graph.
    """
    from profiles.graph import extract_block

    in_name = placeholder_name(gm)
    names = {n.name for n in gm.graph.nodes}
    out: dict[str, RuntimeBlock] = {}
    for bid, fx_nodes in blocks:
        fx_nodes = list(fx_nodes)
        if not fx_nodes:
            raise RebuildError(f"block '{bid}' cannot be rebuilt: the problem gives no fx_nodes for it "
                               "(profile the model with 'placement profile' to get the mapping)")
        if fx_nodes == [in_name]:
            out[bid] = RuntimeBlock(bid, _identity, [in_name], [in_name])
            continue
        missing = [n for n in fx_nodes if n not in names]
        if missing:
            raise RebuildError(
                f"block '{bid}' cannot be rebuilt: its fx nodes {missing[:3]}"
                f"{' and more' if len(missing) > 3 else ''} are not in the traced model (was the problem "
                "profiled from this model, with the same torch and timm versions?)")
        try:
            bg = extract_block(gm, fx_nodes)
        except Exception as exc:  # fx raises many types when a cut is not a graph
            raise RebuildError(f"block '{bid}' cannot be rebuilt: {type(exc).__name__}: {exc}") from None
        out[bid] = RuntimeBlock(bid, bg.module, list(bg.inputs), list(bg.outputs))
    return out


def _identity(x):
    return (x,)


def run_block(block: RuntimeBlock, values: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``block`` on the values it reads; its outputs by name."""
    with torch.no_grad():
        outs = block.module(*[values[n] for n in block.inputs])
    return dict(zip(block.outputs, outs))


# --------------------------------------------------------------------------------------
# messages: the values one block sends to one device, packed into one byte tensor


def value_layout(value: Any) -> tuple:
    """How a value travels: ("tensor", dtype, shape) or ("object",) (pickled)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", str(value.dtype).replace("torch.", ""), tuple(value.shape))
    return ("object",)


def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def pack(names: Sequence[str], layout: Sequence[tuple], object_bytes: int, values: Mapping[str, Any]) -> torch.Tensor:
    """One uint8 tensor with the tensors of ``names`` (in order), then the pickled
    non-tensor values padded to ``object_bytes``; its size is fixed by the layout, so the
    receiver can post its receive before the message exists."""
    import pickle

    parts: list[torch.Tensor] = []
    objects = {}
    for name, lay in zip(names, layout):
        v = values[name]
        if lay[0] == "tensor":
            if not isinstance(v, torch.Tensor) or tuple(v.shape) != lay[2]:
                raise RuntimeError(f"value '{name}' changed shape between inferences")
            parts.append(v.detach().contiguous().reshape(-1).view(torch.uint8))
        else:
            objects[name] = v
    if object_bytes:
        blob = pickle.dumps(objects)
        if len(blob) > object_bytes:
            raise RuntimeError(f"non-tensor values {sorted(objects)} grew beyond their layout")
        raw = torch.zeros(object_bytes, dtype=torch.uint8)
        raw[: len(blob)] = torch.frombuffer(bytearray(blob), dtype=torch.uint8)
        parts.append(raw)
    if not parts or sum(x.numel() for x in parts) == 0:
        return torch.zeros(1, dtype=torch.uint8)  # a signal without data still travels (an empty band)
    return torch.cat(parts) if len(parts) > 1 else parts[0].clone()


def message_bytes(layout: Sequence[tuple], object_bytes: int) -> int:
    n = 0
    for lay in layout:
        if lay[0] == "tensor":
            numel = 1
            for s in lay[2]:
                numel *= s
            n += numel * torch.empty((), dtype=_dtype(lay[1])).element_size()
    n += object_bytes
    return max(n, 1)


def unpack(buf: torch.Tensor, names: Sequence[str], layout: Sequence[tuple], object_bytes: int) -> dict[str, Any]:
    """The values of a message packed by `pack` (tensors are views of ``buf``)."""
    import pickle

    out: dict[str, Any] = {}
    off = 0
    for name, lay in zip(names, layout):
        if lay[0] != "tensor":
            continue
        dt = _dtype(lay[1])
        numel = 1
        for s in lay[2]:
            numel *= s
        nb = numel * torch.empty((), dtype=dt).element_size()
        out[name] = buf[off: off + nb].view(dt).reshape(lay[2])
        off += nb
    if object_bytes:
        out.update(pickle.loads(bytes(buf[off: off + object_bytes].numpy().tobytes())))
    return out


def object_bytes_for(names: Sequence[str], values: Mapping[str, Any]) -> int:
    """Bytes to reserve for the non-tensor values of a message (pickled, with headroom)."""
    import pickle

    objects = {n: values[n] for n in names if not isinstance(values[n], torch.Tensor)}
    if not objects:
        return 0
    return len(pickle.dumps(objects)) + 64

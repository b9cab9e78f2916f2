"""Cut a torch model into blocks along its real data flow (torch.fx).

The model is traced once with `torch.fx` (timm's non-traceable modules and functions are
kept as leaves, as timm's own feature extraction does). Every fx node remembers the stack
of modules it was created in (``node.meta["nn_module_stack"]``). A *granularity* chooses
which modules are units; the traced node list, which is in execution order, is then cut
into contiguous runs:

* a run of nodes that belong to one unit is one block;
* a run of nodes that belong to no unit ("glue": a residual add in a parent's forward, the
  class-token concat of a ViT, ...) is a block of its own, except that a run made only of
  no-op nodes (``nn.Identity``, dropout in eval mode) joins the block that follows it.

Because every block is a contiguous run of a topological order, the block graph is acyclic
by construction. Edges are the fx values that one block produces and another consumes
(residual and skip connections included); their bytes are measured on the real tensors in
`profiles.measure`.

This module imports torch: import it only through `profiles.profile_model` or directly.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn

GRANULARITIES = ("stage", "block", "layer")

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_NOOP_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


_TORCH_LAYERS = (nn.Linear, nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
                 nn.Embedding)


@dataclasses.dataclass
class Segment:
    """One block before measurement: a contiguous run of fx nodes."""

    id: str
    nodes: list[fx.Node]
    unit: str | None  # the unit's module path, None for glue
    modules: list[str] = dataclasses.field(default_factory=list)


class _Tracer(fx.Tracer):
    """fx tracer with timm's leaf modules and autowrapped functions, when timm is present."""

    def __init__(self, leaf_types: tuple = (), autowrap: tuple = ()):
        super().__init__(autowrap_functions=autowrap)
        self._leaf_types = leaf_types

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if self._leaf_types and isinstance(m, self._leaf_types):
            return True
        # subclasses of torch's own layers (timm's LayerNorm, Linear variants, ...) stay one
        # layer, as torch's are, when they hold no submodules
        if isinstance(m, _TORCH_LAYERS) and not list(m.children()):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def _timm_leaves() -> tuple[tuple, tuple]:
    try:
        import timm.models  # noqa: F401  (registers every model's non-traceable parts)
        from timm.layers import get_notrace_functions, get_notrace_modules
    except ImportError:  # pragma: no cover - timm is part of the profile extra
        return (), ()
    return tuple(get_notrace_modules()), tuple(f for f in get_notrace_functions() if callable(f))


def trace(model: nn.Module, input_shape: Sequence[int] | None = None, open_blocks: bool = False) -> fx.GraphModule:
    """Symbolically trace ``model`` (in eval mode) into a GraphModule, dead code removed.

    ``open_blocks`` (``--splits auto``): the timm blocks that timm keeps as leaves but whose
    parts can be split (`openable`: MobileViT's ``MobileVitBlock``) are traced through, by
    a forward of the same arithmetic (`_mobilevit_forward`) whose unfold and fold are one fx
    node each; their sizes are fixed by a run on ``input_shape`` (default: the model's own,
    `profiles.models.default_input_shape`). A profile made so records it in its meta
    (`trace_options`), and the runtime traces the same way.

    Raises `TraceError` when the model cannot be traced by torch.fx.
    """
    leaves, autowrap = _timm_leaves()
    opened = openable(model) if open_blocks else {}
    if opened:
        leaves = tuple(t for t in leaves if not any(isinstance(m, t) for m in opened.values()))
    tracer = _Tracer(leaves, autowrap)
    _clear_caches(model)
    try:
        if opened:
            _open(model, opened, input_shape)
        graph = tracer.trace(model, concrete_args=_default_args(model) or None)
    except Exception as exc:  # fx raises many types (TraceError, TypeError, ...)
        raise TraceError(f"torch.fx cannot trace {type(model).__name__}: {type(exc).__name__}: {exc}") from exc
    finally:
        for m in opened.values():
            m.__dict__.pop("forward", None)
            m.__dict__.pop("_open_hw", None)
        _clear_caches(model)
    gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    _inline_placeholders(gm, _default_args(model))
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


# --------------------------------------------------------------------------------------
# blocks traced through on request (open_blocks)


def openable(model: nn.Module) -> dict[str, nn.Module]:
    """Path -> module of every block `trace` opens with ``open_blocks``: timm's
    ``MobileVitBlock`` with its fusion conv (MobileViT v1; without one the shortcut is not
    read and the block stays whole)."""
    try:
        from timm.models.mobilevit import MobileVitBlock
    except ImportError:  # pragma: no cover - timm is part of the profile extra
        return {}
    found = {path: m for path, m in model.named_modules() if isinstance(m, MobileVitBlock)}
    if any(m.conv_fusion is None for m in found.values()):
        return {}           # the leaf type stays a leaf for every instance, or for none
    return found


def trace_options(meta: dict | None) -> dict[str, Any]:
    """The `trace` arguments a profile's ``meta`` records (its blocks' fx names are those of
    that trace): ``open_blocks`` and the ``input_shape`` it was made on."""
    meta = meta or {}
    if not meta.get("open_blocks"):
        return {}
    shape = meta.get("input_shape")
    return {"open_blocks": True, "input_shape": list(shape) if shape else None}


def _open(model: nn.Module, opened: dict[str, nn.Module], input_shape: Sequence[int] | None) -> None:
    """Give each opened block its traceable forward, with the map size its unfold sees on
    ``input_shape`` (one run of the model)."""
    import types

    from .models import default_input_shape

    shape = tuple(input_shape) if input_shape else default_input_shape(model)
    seen: dict[str, tuple[int, int]] = {}

    def hook(path):
        def record(mod, args, out):          # returns None: the output is kept
            seen.setdefault(path, (int(out.shape[-2]), int(out.shape[-1])))
        return record

    hooks = [m.conv_1x1.register_forward_hook(hook(path)) for path, m in opened.items()]
    try:
        with torch.no_grad():
            model(torch.zeros(*shape))
    finally:
        for h in hooks:
            h.remove()
    for path, m in opened.items():
        if path not in seen:
            raise TraceError(f"block '{path}' did not run on an input of {list(shape)}")
        m._open_hw = seen[path]
        m.forward = types.MethodType(_mobilevit_forward, m)


def mobilevit_unfold(x: torch.Tensor, patch_h: int, patch_w: int) -> torch.Tensor:
    """timm ``MobileVitBlock``'s unfold: [B, C, H, W] -> [B * P, N, C] (P patch pixels, N
    patches; the map resized up to whole patches as timm does). One fx node (`torch.fx.wrap`)."""
    B, C, H, W = x.shape
    new_h, new_w = math.ceil(H / patch_h) * patch_h, math.ceil(W / patch_w) * patch_w
    nh, nw = new_h // patch_h, new_w // patch_w
    if new_h != H or new_w != W:
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
    x = x.reshape(B * C * nh, patch_h, nw, patch_w).transpose(1, 2)
    return x.reshape(B, C, nh * nw, patch_h * patch_w).transpose(1, 3).reshape(B * patch_h * patch_w, nh * nw, -1)


def mobilevit_fold(x: torch.Tensor, patch_h: int, patch_w: int, H: int, W: int) -> torch.Tensor:
    """timm ``MobileVitBlock``'s fold, the inverse of `mobilevit_unfold` for a map of
    ``H`` x ``W``: [B * P, N, C] -> [B, C, H, W]. One fx node."""
    P = patch_h * patch_w
    nh, nw = math.ceil(H / patch_h), math.ceil(W / patch_w)
    BP, N, C = x.shape
    B = BP // P
    x = x.contiguous().view(B, P, N, -1)
    x = x.transpose(1, 3).reshape(B * C * nh, nw, patch_h, patch_w)
    x = x.transpose(1, 2).reshape(B, C, nh * patch_h, nw * patch_w)
    if nh * patch_h != H or nw * patch_w != W:
        x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
    return x


fx.wrap("mobilevit_unfold")
fx.wrap("mobilevit_fold")


def _mobilevit_forward(self, x: torch.Tensor) -> torch.Tensor:
    """timm ``MobileVitBlock.forward`` (timm 1.0), with its shape arithmetic inside
    `mobilevit_unfold` and `mobilevit_fold` so that torch.fx traces through the block: its
    convs, transformer layers and fusion become nodes of the model's graph."""
    shortcut = x
    x = self.conv_kxk(x)
    x = self.conv_1x1(x)
    ph, pw = self.patch_size
    x = mobilevit_unfold(x, ph, pw)
    x = self.transformer(x)
    x = self.norm(x)
    x = mobilevit_fold(x, ph, pw, *self._open_hw)
    x = self.conv_proj(x)
    return self.conv_fusion(torch.cat((shortcut, x), dim=1))


def _opened_unit(path: str, stack: Sequence[str], node: fx.Node) -> str:
    """The unit of a node inside the opened MobileViT block ``path``: ``<path>:local``
    (conv_kxk, conv_1x1), ``<path>:unfold``, ``<path>.transformer.<i>`` (each a pre-norm
    transformer block, cut into halves with ``--splits auto``), ``<path>:fold`` (norm, fold)
    and ``<path>:fusion`` (conv_proj, the concat with the shortcut, conv_fusion)."""
    inner = {p[len(path) + 1:].split(".")[0] for p in stack if p.startswith(path + ".")}
    if "conv_kxk" in inner or "conv_1x1" in inner:
        return f"{path}:local"
    if "transformer" in inner:
        layer = next((p for p in stack if p.startswith(path + ".transformer.")), None)
        if layer is not None:
            return ".".join(layer.split(".")[: path.count(".") + 3])
    if "norm" in inner or node.target is mobilevit_fold:
        return f"{path}:fold"
    if node.target is mobilevit_unfold:
        return f"{path}:unfold"
    return f"{path}:fusion"


def _clear_caches(model: nn.Module) -> None:
    """Empty the eval-mode caches some models keep (timm's LeViT caches its attention biases
    per device): a trace would leave its symbolic values there, and the next trace of the
    same model would find another graph's nodes in its own."""
    for m in model.modules():
        for name, value in list(vars(m).items()):
            if name.endswith("_cache") and isinstance(value, dict):
                value.clear()


def _inline_placeholders(gm: fx.GraphModule, constants: dict[str, Any]) -> None:
    """Replace the placeholders of fixed arguments by their values: the block graph then has
    one input, the image."""
    from torch.utils._pytree import tree_map

    phs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for ph in phs[1:]:
        name = str(ph.target)
        if name not in constants:
            name = re.sub(r"_\d+$", "", name)  # fx renames concrete args "attn_mask_1"
        if name not in constants:
            continue
        value = constants[name]
        for user in list(ph.users):
            user.args = tree_map(lambda a: value if a is ph else a, user.args)
            user.kwargs = tree_map(lambda a: value if a is ph else a, user.kwargs)
        gm.graph.erase_node(ph)


def _default_args(model: nn.Module) -> dict[str, Any]:
    """Arguments of ``forward`` after the image that have defaults: fixed to their defaults,
    so that ``forward(x, attn_mask=None)`` traces as ``forward(x)``."""
    import inspect

    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    out = {}
    for p in params[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is not p.empty:
            out[p.name] = p.default
    return out


class TraceError(RuntimeError):
    """The model is not traceable by torch.fx."""


# --------------------------------------------------------------------------------------
# units of each granularity


def _is_container(m: nn.Module) -> bool:
    return isinstance(m, _CONTAINERS)


def _children(model: nn.Module, path: str) -> list[tuple[str, nn.Module]]:
    m = model.get_submodule(path) if path else model
    return [(f"{path}.{n}" if path else n, c) for n, c in m.named_children()]


def stage_modules(model: nn.Module) -> list[str]:
    """The module paths that end each stage, in order.

    timm models declare them (``model.feature_info``); for any other model, the direct
    children of the root (a child that is a container contributes its children).
    """
    info = getattr(model, "feature_info", None)
    if isinstance(info, (list, tuple)) and info and all(isinstance(f, dict) and "module" in f for f in info):
        paths = [f["module"] for f in info]
        names = dict(model.named_modules())
        if all(p in names for p in paths):
            # a stage held in a container (``stages.3``) brings its siblings along: timm
            # leaves some out of feature_info (mobilevit's ``stages.4``)
            out: list[str] = []
            for p in paths:
                parent = p.rsplit(".", 1)[0] if "." in p else ""
                if parent and _is_container(names[parent]):
                    out.extend(q for q, _ in _children(model, parent) if q not in out)
                if p not in out:
                    out.append(p)
            return out
    out = []
    for path, child in _children(model, ""):
        if not list(child.children()):
            continue  # a single layer at the root (a stem conv, a classifier) is no stage
        grandchildren = _children(model, path)
        if _is_container(child) and all(list(c.children()) for _, c in grandchildren):
            out.extend(p for p, _ in grandchildren)  # a sequence of stages or blocks
        else:
            out.append(path)
    return out


def _block_units(model: nn.Module, stage: str) -> list[str]:
    """The building blocks inside one stage module (see docs/profiles.md, "block")."""
    m = model.get_submodule(stage)

    def expand(path: str, mod: nn.Module) -> list[str]:
        if _is_container(mod):
            out: list[str] = []
            for p, c in _children(model, path):
                out.extend(expand(p, c))
            return out
        # a module without submodules is a layer, not a building block
        return [path] if list(mod.children()) and not isinstance(mod, _NOOP_MODULES) else []

    if _is_container(m):
        return expand(stage, m)
    kids = _children(model, stage)
    if any(_is_container(c) and len(c) > 0 for _, c in kids):
        out: list[str] = []
        for p, c in kids:
            out.extend(expand(p, c))
        return out
    # a stage that is a single leaf module (resnet's "act1", the end of its stem) is no
    # building block: its nodes stay glue and form the stem with what precedes them.
    return [stage] if list(m.children()) else []


def _stack(node: fx.Node) -> list[str]:
    """Module paths enclosing ``node``, outermost first (the leaf itself for call_module)."""
    stack = node.meta.get("nn_module_stack") or {}
    paths = []
    for key, val in stack.items():
        path = val[0] if isinstance(val, tuple) else key
        paths.append(_clean_path(str(path)))
    if node.op == "call_module" and (not paths or paths[-1] != node.target):
        paths.append(str(node.target))
    return paths


def _clean_path(path: str) -> str:
    # fx may record paths like "L['self'].layer1" in some versions: keep the dotted module path.
    path = re.sub(r"^L\['self'\]\.?", "", path)
    return path.replace("._modules['", ".").replace("']", "")


def _compute_nodes(gm: fx.GraphModule) -> list[fx.Node]:
    return [n for n in gm.graph.nodes if n.op in ("call_module", "call_function", "call_method")]


def _is_noop(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(str(node.target)), _NOOP_MODULES)
    return False


def cut(model: nn.Module, gm: fx.GraphModule, granularity: str, halves: bool = False) -> list[Segment]:
    """Cut the traced ``gm`` of ``model`` into segments at ``granularity``.

    ``halves`` (``--splits auto``): every segment that is one timm pre-norm transformer
    block (`is_prenorm_block`: ViT's ``Block``, efficientformer's ``MetaBlock1d``) is cut in
    two, its attention half ``<path>:attn`` (``x + ls1(attn(norm1(x)))``, the attention being
    ``attn`` or ``token_mixer``) and its MLP half ``<path>:mlp`` (``x1 + ls2(mlp(norm2(x1)))``),
    so that each half can be split by tensor and the all-reduce between them is an edge.

    ``stage``: one segment per stage module (`stage_modules`), cut after the stage's last
    node, plus ``head`` for what follows the last stage. ``block``: the stages further cut at
    the boundaries of their building blocks. ``layer``: one segment per leaf-module call,
    and one per run of functional nodes between them.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    nodes = _compute_nodes(gm)
    if not nodes:
        raise TraceError("the traced model has no operations")
    stacks = {n: _stack(n) for n in nodes}

    # stage boundaries: index of the last node of each stage module
    stages = stage_modules(model)
    last_of: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for p in stacks[n]:
            last_of[p] = i
    first_of: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for p in stacks[n]:
            first_of.setdefault(p, i)
    ends: list[tuple[int, str]] = []
    present = [p for p in stages if p in last_of]
    if present:
        first = min(present, key=lambda p: last_of[p])
        # what runs before a real first stage (one with submodules) is the stem
        if list(model.get_submodule(first).children()) and first_of[first] > 0 and first != "stem":
            ends.append((first_of[first] - 1, "stem"))
    for path in sorted((p for p in stages if p in last_of), key=lambda p: last_of[p]):
        if ends and last_of[path] <= ends[-1][0]:
            continue  # nested in, or called inside, an earlier stage
        ends.append((last_of[path], path))
    stage_of: list[str] = []
    stage_ids: list[str] = []
    prev = -1
    for k, (last, path) in enumerate(ends):
        sid = path
        if k == 0 and path != "stem":
            first_stage_mod = model.get_submodule(path)
            if not list(first_stage_mod.children()) and not path.startswith("stem"):
                sid = "stem"
        stage_ids.append(sid)
        stage_of.extend([sid] * (last - prev))
        prev = last
    if len(stage_of) < len(nodes):
        stage_of.extend(["head"] * (len(nodes) - len(stage_of)))
        stage_ids.append("head")

    if granularity == "stage":
        unit_of = list(stage_of)
        segs = _runs(gm, nodes, unit_of, stacks, glue_ids={})
    else:
        if granularity == "block":
            units: set[str] = set()
            for _, path in ends:
                if path == "stem":
                    continue  # the stem is one block, whatever modules it is made of
                units.update(_block_units(model, path))
            # MobileViT blocks traced through (trace's open_blocks): their parts are units
            can_open = openable(model)
            opened = {p for p in units if p in can_open
                      and any(str(n.target).startswith(p + ".") for n in nodes if n.op == "call_module")}
            unit_of = []
            for n in nodes:
                u = next((p for p in stacks[n] if p in units), None)
                if u in opened:
                    u = _opened_unit(u, stacks[n], n)
                unit_of.append(u)
        else:  # layer
            unit_of = [str(n.target) if n.op == "call_module" and not _is_noop(gm, n) else None for n in nodes]
        # glue never spans two stages
        unit_or_glue = [u if u is not None else ("\x00glue", stage_of[i]) for i, u in enumerate(unit_of)]
        segs = _runs(gm, nodes, unit_or_glue, stacks, glue_ids={"first": stage_ids[0] if stage_ids else "stem"})
    if halves:
        segs = [h for s in segs for h in _halves(model, s, stacks)]
    _uniquify(segs)
    return segs


def is_prenorm_block(module: nn.Module) -> bool:
    """A timm pre-norm transformer block: its forward is ``x + ls1(attn(norm1(x)))`` then
    ``x1 + ls2(mlp(norm2(x1)))``, with an attention that has ``qkv`` and ``num_heads`` (timm's
    ``Attention`` as ``attn`` in ``vision_transformer.Block``, efficientformer's as
    ``token_mixer`` in ``MetaBlock1d``) and a timm ``Mlp`` (``fc1``, ``fc2``). The runtime's own
    test (`placement.runtime.shards.prenorm_attention`), so the profiler cuts exactly the
    blocks whose halves the runtime can shard."""
    from placement.runtime.shards import prenorm_attention

    return prenorm_attention(module) is not None


def _halves(model: nn.Module, seg: Segment, stacks) -> list[Segment]:
    """``seg`` cut into its attention and MLP halves when it is one pre-norm transformer
    block, else ``[seg]``. The cut is before the first node inside ``norm2``; the halves
    must then be exactly attention (norm1/attn/ls1 + the residual add) and MLP."""
    if seg.unit is None:
        return [seg]
    try:
        mod = model.get_submodule(seg.unit)
    except AttributeError:
        return [seg]
    from placement.runtime.shards import prenorm_attention

    attn = prenorm_attention(mod)           # its attention's attribute name, or None
    if attn is None:
        return [seg]
    first = {f"{seg.unit}.{p}" for p in ("norm1", attn, "ls1", "drop_path1")}
    second = {f"{seg.unit}.{p}" for p in ("norm2", "mlp", "ls2", "drop_path2")}

    def part(n):
        ps = set(stacks[n])
        return 1 if ps & first else 2 if ps & second else 0

    parts = [part(n) for n in seg.nodes]
    cut_at = next((i for i, p in enumerate(parts) if p == 2), None)
    if cut_at is None or any(p == 2 for p in parts[:cut_at]) or any(p == 1 for p in parts[cut_at:]):
        return [seg]
    a = Segment(id=f"{seg.unit}:attn", nodes=seg.nodes[:cut_at], unit=f"{seg.unit}:attn",
                modules=_top_paths({p for n in seg.nodes[:cut_at] for p in stacks[n]}))
    b = Segment(id=f"{seg.unit}:mlp", nodes=seg.nodes[cut_at:], unit=f"{seg.unit}:mlp",
                modules=_top_paths({p for n in seg.nodes[cut_at:] for p in stacks[n]}))
    return [a, b]


def _runs(gm, nodes, keys, stacks, glue_ids) -> list[Segment]:
    """Group consecutive nodes with equal keys into segments; merge no-op glue forward."""
    segs: list[Segment] = []
    cur: list[fx.Node] = []
    cur_key: Any = object()
    for n, k in zip(nodes, keys):
        if cur and k == cur_key:
            cur.append(n)
            continue
        if cur:
            segs.append(_segment(cur, cur_key, stacks))
        cur, cur_key = [n], k
    if cur:
        segs.append(_segment(cur, cur_key, stacks))

    # a glue run made only of no-op modules joins its successor (or its predecessor at the end)
    merged: list[Segment] = []
    carry: list[fx.Node] = []
    for s in segs:
        if s.unit is None and all(_is_noop(gm, n) for n in s.nodes):
            carry.extend(s.nodes)
            continue
        if carry:
            s.nodes[:0] = carry
            carry = []
        merged.append(s)
    if carry:
        if merged:
            merged[-1].nodes.extend(carry)
        else:
            merged.append(_segment(carry, None, stacks))

    # name the glue runs: before any unit -> "stem", after the last unit -> "head",
    # otherwise the deepest module path common to the run's nodes.
    first_unit = next((i for i, s in enumerate(merged) if s.unit is not None), None)
    last_unit = max((i for i, s in enumerate(merged) if s.unit is not None), default=None)
    for i, s in enumerate(merged):
        paths = sorted({p for n in s.nodes for p in stacks[n]})
        s.modules = _top_paths(paths)
        if s.unit is not None:
            s.id = s.unit
            continue
        if i == 0 and (first_unit is None or first_unit > 0):
            s.id = "stem"
        elif i == len(merged) - 1 and last_unit is not None and i > last_unit:
            s.id = "head"
        else:
            common = _common_path([stacks[n] for n in s.nodes])
            s.id = common or s.nodes[0].name
            if common and any(m.unit == common for m in merged):
                s.id = f"{common}:{s.nodes[0].name}"
    return merged


def _segment(nodes: list[fx.Node], key: Any, stacks) -> Segment:
    unit = key if isinstance(key, str) else None
    return Segment(id="", nodes=list(nodes), unit=unit)


def _common_path(stacks: Sequence[Sequence[str]]) -> str:
    if not stacks:
        return ""
    common = list(stacks[0])
    for st in stacks[1:]:
        k = 0
        while k < len(common) and k < len(st) and common[k] == st[k]:
            k += 1
        common = common[:k]
    return common[-1] if common else ""


def _top_paths(paths: Iterable[str]) -> list[str]:
    """The outermost paths of a set: drop every path that has an ancestor in the set."""
    ps = sorted(set(p for p in paths if p))
    out: list[str] = []
    for p in ps:
        if not any(p.startswith(q + ".") for q in out):
            out.append(p)
    return out


def _uniquify(segs: list[Segment]) -> None:
    seen: dict[str, int] = {}
    for s in segs:
        base = s.id
        if base in seen:
            seen[base] += 1
            s.id = f"{base}#{seen[base]}"
        else:
            seen[base] = 1


# --------------------------------------------------------------------------------------
# one block as a module of its own


@dataclasses.dataclass
class BlockGraph:
    """A block as a standalone GraphModule.

    ``module(*inputs)`` returns a tuple with one value per name in ``outputs``. ``inputs``
    are the fx node names (of the whole-model graph) whose values the block consumes, in
    argument order; ``outputs`` the names of the values it produces for other blocks or
    for the model's output.
    """

    module: fx.GraphModule
    inputs: list[str]
    outputs: list[str]


def extract_block(gm: fx.GraphModule, node_names: Sequence[str]) -> BlockGraph:
    """Build the block made of the fx nodes ``node_names`` of ``gm`` as a GraphModule.

    Parameters and buffers the block reads (``get_attr`` nodes) are copied into it, so a
    runtime can build it alone from the model and feed it the values named in ``inputs``.
    """
    by_name = {n.name: n for n in gm.graph.nodes}
    missing = [n for n in node_names if n not in by_name]
    if missing:
        raise KeyError(f"fx nodes not in the graph: {', '.join(missing[:5])}")
    members = [by_name[n] for n in node_names]
    member_set = set(members)
    inputs: list[fx.Node] = []
    for n in members:
        for a in n.all_input_nodes:
            if a not in member_set and a.op != "get_attr" and a not in inputs:
                inputs.append(a)
    # placeholders first, in first-use order
    g2 = fx.Graph()
    env2: dict[fx.Node, fx.Node] = {}
    for a in inputs:
        env2[a] = g2.placeholder(a.name)
    for n in members:
        for a in n.all_input_nodes:
            if a.op == "get_attr" and a not in env2:
                env2[a] = g2.node_copy(a)
        env2[n] = g2.node_copy(n, lambda x: env2[x])
    outputs = [n for n in members if any(u not in member_set for u in n.users)]
    g2.output(tuple(env2[o] for o in outputs))
    sub = fx.GraphModule(gm, g2, "Block")
    return BlockGraph(sub, [a.name for a in inputs], [o.name for o in outputs])


def leaf_modules_of(gm: fx.GraphModule, nodes: Iterable[fx.Node]) -> list[tuple[str, nn.Module]]:
    """The leaf modules called by ``nodes`` (path, module)."""
    out = []
    for n in nodes:
        if n.op == "call_module":
            out.append((str(n.target), gm.get_submodule(str(n.target))))
    return out


def tensors_bytes(value: Any) -> int:
    """Bytes of every tensor in ``value`` (nested tuples/lists/dicts); 8 per Python number."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(tensors_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(tensors_bytes(v) for v in value.values())
    if isinstance(value, (int, float, bool)):
        return 8
    if isinstance(value, torch.Size):
        return 8 * len(value)
    return 0

"""Shards of a split block (SPEC section 6) as the runtime executes them, and their gather.

A block split ``w`` ways runs as ``w`` shard blocks ``<id>#0`` ... ``<id>#<w-1>``; this module
computes shard ``k`` from the block's own torch code and puts the shards' outputs back
together, so that the gathered output equals the unsplit block's (tests/test_runtime_shards.py
checks it with ``torch.allclose`` on real timm blocks).

**Spatial** (``mode: spatial``, convolution blocks; `SpatialShard`): shard ``k`` produces
the band ``[k * H // w, (k + 1) * H // w)`` of the output's rows (NCHW, dim 2). Which input
rows it needs follows from the block's fx graph, walked backwards from the band: a
convolution or pooling of kernel ``k``, stride ``s``, padding ``p`` and dilation ``d`` needs
rows ``[a*s - p, (b-1)*s - p + d*(k-1) + 1)`` of its input for rows ``[a, b)`` of its output;
elementwise and per-channel layers (norms, activations, adds of a residual) need the same
rows; branches take the union. That is the receptive field's halo, exactly. The shard
receives those rows (start aligned down to the block's stride, so that every layer's row
grid stays the model's), runs the block's own GraphModule on them (the layers' zero padding
is then right at the image's edges, and the wrong rows at the crop's inner edges lie
outside the band) and keeps its band. The gather concatenates the bands along the rows.
A node that mixes rows (a reshape, attention, global pooling) is refused by name
(`ShardError`): such a block is not row-local.

**Tensor** (``mode: tensor``, `TensorShard`): by the known module types of timm:

* attention (``timm.layers.Attention``, `AttentionShard`): heads ``[k*h/w, (k+1)*h/w)``: the
  q, k and v rows of ``qkv`` of those heads, the matching columns of ``proj``; the shard's
  output is its partial projection, ``proj``'s bias in shard 0 only;
* efficientformer's attention (``timm.models.efficientformer.Attention``,
  `EfficientFormerAttentionShard`): the same by heads, but its ``qkv`` output is laid out per
  head (``[q_h | k_h | v_h]``, ``key_dim, key_dim, val_dim`` wide), so a shard's ``qkv`` rows
  are one contiguous run; with them its heads' rows of ``attention_biases`` (the learned
  position bias added to the scores) and ``val_dim`` columns per head of ``proj``;
* MLP (``timm.layers.Mlp``): hidden units ``[k*n/w, (k+1)*n/w)``: those rows of ``fc1``
  (and its bias), the matching columns of ``fc2``, ``fc2``'s bias in shard 0 only;
* a whole pre-norm transformer block (``vision_transformer.Block``: ``x + attn(norm1(x))``
  then ``x + mlp(norm2(x))``; efficientformer's ``MetaBlock1d`` is the same with its attention
  called ``token_mixer``, see `prenorm_attention`), heads and hidden units in the same
  proportion: it needs the attention's partials summed before the MLP (one all-reduce
  between the shards, as in Megatron-LM), so `block_partials` computes it in two steps with
  that sum in between;
* one half of such a block (the profiler's ``<path>:attn`` / ``<path>:mlp`` blocks of
  ``--splits auto``, `half_shard`): ``x + ls1(attn(norm1(x)))`` by heads, or
  ``x1 + ls2(mlp(norm2(x1)))`` by hidden units, the residual in shard 0 only; the edge
  between the halves carries the all-reduce.

The gather sums the partials (`gather`). The module's input is replicated to every shard.

Imports torch: only the runtime imports it.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from typing import Any, Mapping, Sequence

import torch
from torch import fx, nn

from ..errors import InputError


class ShardError(InputError):
    """A block cannot be run as shards in the requested mode: the message says why."""


ROW_DIM = 2


def band(rows: int, k: int, w: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of shard ``k`` of ``w`` over ``rows`` rows (as even as possible)."""
    return k * rows // w, (k + 1) * rows // w


def gather(mode: str, parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """The block's output from its shards' outputs, in shard order: spatial bands are
    concatenated along the rows, tensor partials summed."""
    if mode == "spatial":
        return torch.cat(list(parts), dim=ROW_DIM)
    if mode == "tensor":
        out = parts[0].clone()
        for p in parts[1:]:
            out = out + p
        return out
    raise ValueError(f"unknown split mode {mode!r}")


# ======================================================================================
# spatial


#: modules that act on every row alone (norms in eval mode, activations, identity, dropout)
_ROWWISE_MODULES: tuple[type, ...] = (
    nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid,
    nn.Tanh, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.Mish, nn.Identity, nn.Dropout, nn.Dropout2d,
)
_ROWWISE_FUNCTIONS = {
    operator.add, operator.mul, operator.sub, operator.truediv, operator.neg,
    torch.add, torch.mul, torch.sub, torch.relu, torch.sigmoid, torch.tanh,
    nn.functional.relu, nn.functional.relu6, nn.functional.silu, nn.functional.gelu,
    nn.functional.hardswish, nn.functional.hardsigmoid, nn.functional.sigmoid, nn.functional.leaky_relu,
    nn.functional.batch_norm, nn.functional.dropout, nn.functional.mish, nn.functional.elu,
}
_ROWWISE_METHODS = {"relu", "relu_", "sigmoid", "add", "mul", "sub", "div", "contiguous", "clone", "tanh", "neg"}


def _window(m: nn.Module) -> tuple[int, int, int, int] | None:
    """(kernel, stride, padding, dilation) along the rows of a convolution or pooling."""
    def first(x):
        return int(x[0] if isinstance(x, (tuple, list)) else x)

    if isinstance(m, nn.Conv2d):
        if isinstance(m.padding, str):
            if m.padding == "valid":
                return first(m.kernel_size), first(m.stride), 0, first(m.dilation)
            return None  # "same": asymmetric for even kernels
        return first(m.kernel_size), first(m.stride), first(m.padding), first(m.dilation)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        if getattr(m, "ceil_mode", False):
            return None
        stride = m.stride if m.stride is not None else m.kernel_size
        return (first(m.kernel_size), first(stride), first(m.padding), first(getattr(m, "dilation", 1)))
    return None


def _shape(node: fx.Node):
    tm = node.meta.get("tensor_meta")
    return tuple(tm.shape) if tm is not None and hasattr(tm, "shape") else None


@dataclasses.dataclass
class SpatialShard:
    """Shard ``k`` of ``w`` of a row-local block (see the module docstring).

    ``in_rows[name]``: the rows ``[lo, hi)`` of each input the shard reads (what the
    producer sends it); ``out_rows``: the band of the output it produces; calling it with the
    inputs' row slices (in ``inputs`` order) returns its band of every output.
    """

    block: fx.GraphModule
    inputs: list[str]
    outputs: list[str]
    k: int
    w: int
    in_rows: dict[str, tuple[int, int]]
    out_rows: tuple[int, int]
    #: output row of the crop's first output row
    out_offset: int

    def __call__(self, *sliced: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            outs = self.block(*sliced)
        lo, hi = self.out_rows[0] - self.out_offset, self.out_rows[1] - self.out_offset
        res = []
        for o in outs:
            if o.shape[ROW_DIM] < hi:
                raise RuntimeError(f"shard {self.k} of {self.w}: the crop gave {o.shape[ROW_DIM]} rows, "
                                   f"the band needs rows up to {hi}")
            res.append(o[:, :, lo:hi])
        return tuple(res)

    def slice_input(self, name: str, value: torch.Tensor) -> torch.Tensor:
        lo, hi = self.in_rows[name]
        return value[:, :, lo:hi]


def spatial_shard(block: fx.GraphModule, inputs: Sequence[str], example: Sequence[Any], k: int, w: int,
                  block_id: str = "block") -> SpatialShard:
    """Shard ``k`` of ``w`` of ``block`` (a GraphModule whose placeholders are ``inputs``),
    from its shapes on ``example`` (the full inputs). Raises `ShardError` naming the node
    when the block is not row-local."""
    from torch.fx.passes.shape_prop import ShapeProp

    if not 0 <= k < w:
        raise ValueError(f"shard {k} of {w}")
    gm = fx.GraphModule(block, block.graph)  # ShapeProp writes node meta: not on the caller's graph
    ShapeProp(gm).propagate(*example)
    nodes = list(gm.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    out_node = next(n for n in nodes if n.op == "output")
    outs = list(out_node.all_input_nodes)

    def fail(why: str):
        raise ShardError(f"block '{block_id}' cannot be split spatially: {why}")

    # which nodes depend on an input (the rest are constants: parameters, their views)
    live: set[fx.Node] = set(placeholders)
    for n in nodes:
        if n.op not in ("placeholder", "output") and any(a in live for a in n.all_input_nodes):
            live.add(n)
    oshapes = [_shape(o) for o in outs]
    if not outs or any(s is None or len(s) != 4 for s in oshapes):
        fail("every output must be one NCHW tensor")
    H = oshapes[0][ROW_DIM]
    if any(s[ROW_DIM] != H for s in oshapes):
        fail("its outputs have different heights")
    if H < w:
        fail(f"its output has {H} rows, fewer than {w} shards")
    a, b = band(H, k, w)
    need: dict[fx.Node, tuple[int, int]] = {o: (a, b) for o in outs}
    # scale: rows of a node per output row (an integer for the layers before a stride)
    scale: dict[fx.Node, int] = {o: 1 for o in outs}

    def want(m: fx.Node, lo: int, hi: int, f: int, via: fx.Node):
        if m not in live:
            return
        sh = _shape(m)
        if sh is None or len(sh) != 4:
            fail(f"node '{via.name}' reads '{m.name}', which is not an NCHW tensor")
        hm = sh[ROW_DIM]
        lo, hi = max(0, lo), min(hm, hi)
        if m in need:
            if scale[m] != f:
                fail(f"node '{m.name}' is read at two row scales ({scale[m]} and {f})")
            plo, phi = need[m]
            lo, hi = min(lo, plo), max(hi, phi)
        need[m], scale[m] = (lo, hi), f

    for n in reversed(nodes):
        if n not in need or n.op == "placeholder":
            continue
        lo, hi = need[n]
        f = scale[n]
        ins = [m for m in n.all_input_nodes if m in live]
        if n.op == "call_module":
            mod = gm.get_submodule(str(n.target))
            win = _window(mod)
            if win is not None:
                kk, s, p, d = win
                for m in ins:
                    want(m, lo * s - p, (hi - 1) * s - p + d * (kk - 1) + 1, f * s, n)
                continue
            if not isinstance(mod, _ROWWISE_MODULES):
                fail(f"node '{n.name}' ({type(mod).__name__}) mixes rows or is not known to be row-local")
        elif n.op == "call_function":
            if n.target is torch.cat:
                dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
                if dim not in (1, -3):
                    fail(f"node '{n.name}' concatenates along dim {dim}")
            elif n.target not in _ROWWISE_FUNCTIONS:
                fail(f"node '{n.name}' ({getattr(n.target, '__name__', n.target)}) mixes rows or is not "
                     "known to be row-local")
        elif n.op == "call_method":
            if n.target not in _ROWWISE_METHODS:
                fail(f"node '{n.name}' (.{n.target}) mixes rows or is not known to be row-local")
        else:
            continue
        hn = _shape(n)[ROW_DIM] if _shape(n) is not None and len(_shape(n)) == 4 else None
        for m in ins:
            sh = _shape(m)
            if sh is not None and len(sh) == 4 and sh[ROW_DIM] == 1 and hn not in (None, 1):
                # broadcast over the rows (a squeeze-excite scale): it needs every row above
                fail(f"node '{n.name}' broadcasts '{m.name}' over the rows (a global reduction)")
            if sh is not None and len(sh) == 4 and hn is not None and sh[ROW_DIM] != hn:
                fail(f"node '{n.name}' combines maps of {sh[ROW_DIM]} and {hn} rows")
            want(m, lo, hi, f, n)

    # the crop: one output row offset for every input (their row grids stay the model's)
    off = b
    for ph in placeholders:
        if ph not in need:
            continue
        off = min(off, need[ph][0] // scale[ph])
    in_rows: dict[str, tuple[int, int]] = {}
    for ph in placeholders:
        sh = _shape(ph)
        if ph not in need:
            if ph in live and sh is not None and len(sh) == 4:
                in_rows[ph.name] = (0, 0)
            else:
                fail(f"input '{ph.name}' is not an NCHW tensor")
            continue
        f = scale[ph]
        lo = off * f
        hi = need[ph][1]
        hi = min(sh[ROW_DIM], lo + math.ceil((hi - lo) / f) * f)  # a whole number of strides
        in_rows[ph.name] = (lo, hi)
    names = [ph.name for ph in placeholders]
    return SpatialShard(block, list(inputs) if inputs else names, [o.name for o in outs], k, w,
                        {inp: in_rows[ph] for inp, ph in zip(inputs or names, names)}, (a, b), off)


# ======================================================================================
# tensor


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        lin.weight.copy_(weight)
        if bias is not None:
            lin.bias.copy_(bias)
    return lin.eval()


def _units(total: int, k: int, w: int, what: str) -> slice:
    if total % w:
        raise ShardError(f"{total} {what} do not divide into {w} shards")
    n = total // w
    return slice(k * n, (k + 1) * n)


class AttentionShard(nn.Module):
    """Heads ``[k*h/w, (k+1)*h/w)`` of a timm ``Attention``: its output is the partial
    projection of those heads (``proj``'s bias in shard 0 only); the partials sum to the
    module's output."""

    def __init__(self, attn: nn.Module, k: int, w: int):
        super().__init__()
        if getattr(attn, "gate", None) is not None:
            raise ShardError("gated attention is not sharded")
        if not isinstance(attn.norm, nn.Identity):
            raise ShardError("attention with a norm over all heads (scale_norm) is not sharded by heads")
        h, hd = attn.num_heads, attn.head_dim
        heads = _units(h, k, w, "heads")
        self.heads, self.head_dim, self.scale = heads.stop - heads.start, hd, attn.scale
        W, B = attn.qkv.weight, attn.qkv.bias
        rows = torch.cat([torch.arange(j * h * hd + heads.start * hd, j * h * hd + heads.stop * hd)
                          for j in range(3)])
        self.qkv = _linear(W[rows], None if B is None else B[rows])
        self.q_norm, self.k_norm = attn.q_norm, attn.k_norm
        cols = slice(heads.start * hd, heads.stop * hd)
        pb = attn.proj.bias
        self.proj = _linear(attn.proj.weight[:, cols], pb if (pb is not None and k == 0) else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        x = nn.functional.scaled_dot_product_attention(q, k, v)
        x = x.transpose(1, 2).reshape(B, N, self.heads * self.head_dim)
        return self.proj(x)


class EfficientFormerAttentionShard(nn.Module):
    """Heads ``[k*h/w, (k+1)*h/w)`` of efficientformer's ``Attention``
    (``timm.models.efficientformer``): its ``qkv`` output is ``num_heads`` runs of
    ``[q_h | k_h | v_h]`` (``key_dim``, ``key_dim``, ``val_dim`` rows), so the shard's rows are
    the contiguous run of its heads; its heads' rows of ``attention_biases`` (indexed by the
    module's ``attention_bias_idxs``); the matching ``val_dim`` columns per head of ``proj``
    (its bias in shard 0 only). The partials sum to the module's output."""

    def __init__(self, attn: nn.Module, k: int, w: int):
        super().__init__()
        heads = _units(attn.num_heads, k, w, "heads")
        self.heads, self.key_dim, self.val_dim, self.scale = (heads.stop - heads.start, attn.key_dim,
                                                              attn.val_dim, attn.scale)
        per_head = 2 * attn.key_dim + attn.val_dim
        if attn.qkv.out_features != attn.num_heads * per_head:
            raise ShardError(f"efficientformer attention: qkv has {attn.qkv.out_features} outputs, not "
                             f"{attn.num_heads} heads x {per_head}")
        rows = slice(heads.start * per_head, heads.stop * per_head)
        W, B = attn.qkv.weight, attn.qkv.bias
        self.qkv = _linear(W[rows], None if B is None else B[rows])
        self.attention_biases = nn.Parameter(attn.attention_biases[heads].detach().clone(), requires_grad=False)
        self.register_buffer("attention_bias_idxs", attn.attention_bias_idxs.clone(), persistent=False)
        cols = slice(heads.start * attn.val_dim, heads.stop * attn.val_dim)
        pb = attn.proj.bias
        self.proj = _linear(attn.proj.weight[:, cols], pb if (pb is not None and k == 0) else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, self.heads, -1).permute(0, 2, 1, 3)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.val_dim], dim=3)
        attn = (q @ k.transpose(-2, -1)) * self.scale + self.attention_biases[:, self.attention_bias_idxs]
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, N, self.heads * self.val_dim)
        return self.proj(x)


class MlpShard(nn.Module):
    """Hidden units ``[k*n/w, (k+1)*n/w)`` of a timm ``Mlp``: rows of ``fc1``, columns of
    ``fc2`` (its bias in shard 0 only); the partials sum to the module's output."""

    def __init__(self, mlp: nn.Module, k: int, w: int):
        super().__init__()
        if not isinstance(mlp.norm, nn.Identity):
            raise ShardError("an MLP with a norm over its hidden units is not sharded by hidden units")
        if not isinstance(mlp.fc1, nn.Linear) or not isinstance(mlp.fc2, nn.Linear):
            raise ShardError("only an MLP of Linear layers is sharded by hidden units")
        units = _units(mlp.fc1.out_features, k, w, "hidden units")
        b1 = mlp.fc1.bias
        self.fc1 = _linear(mlp.fc1.weight[units], None if b1 is None else b1[units])
        self.act = mlp.act
        b2 = mlp.fc2.bias
        self.fc2 = _linear(mlp.fc2.weight[:, units], b2 if (b2 is not None and k == 0) else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _is(module: nn.Module, name: str) -> bool:
    return any(c.__name__ == name and c.__module__.startswith("timm") for c in type(module).__mro__)


def _attention_shard_class(attn: nn.Module) -> type[nn.Module] | None:
    """The shard class of an attention module, by its type: efficientformer's ``Attention``
    (per-head qkv layout, position biases) or timm's ``Attention`` (``(3, heads, head_dim)``);
    None for any other module."""
    if not (_is(attn, "Attention") and hasattr(attn, "qkv") and hasattr(attn, "num_heads")):
        return None
    if type(attn).__module__ == "timm.models.efficientformer":
        return EfficientFormerAttentionShard
    return AttentionShard


def attention_shard(attn: nn.Module, k: int, w: int) -> nn.Module:
    """Shard ``k`` of ``w`` (by heads) of an attention module, its class picked by
    `_attention_shard_class`; `ShardError` for a module that is none of them."""
    cls = _attention_shard_class(attn)
    if cls is None:
        raise ShardError(f"{type(attn).__name__} has no tensor split by heads: the runtime shards timm's "
                         "Attention and efficientformer's Attention")
    return cls(attn, k, w).eval()


#: attribute names of the attention in a pre-norm transformer block: timm's ViT ``Block``
#: (``attn``) and efficientformer's ``MetaBlock1d`` (``token_mixer``)
ATTENTION_NAMES = ("attn", "token_mixer")


def prenorm_attention(block: nn.Module) -> str | None:
    """The attribute name of the attention of ``block`` when it is a pre-norm transformer
    block, ``x + ls1(<attn>(norm1(x)))`` then ``x1 + ls2(mlp(norm2(x1)))`` with an attention
    the runtime shards by heads and an ``Mlp`` (``fc1``); None otherwise."""
    if not all(hasattr(block, p) for p in ("norm1", "ls1", "norm2", "mlp", "ls2")):
        return None
    if not hasattr(block.mlp, "fc1"):
        return None
    for name in ATTENTION_NAMES:
        attn = getattr(block, name, None)
        if isinstance(attn, nn.Module) and hasattr(attn, "qkv") and hasattr(attn, "num_heads"):
            return name
    return None


def tensor_shard(module: nn.Module, k: int, w: int) -> nn.Module:
    """Shard ``k`` of ``w`` of a timm ``Attention`` (either kind, `attention_shard`) or ``Mlp``
    module (see the classes)."""
    if _attention_shard_class(module) is not None:
        return attention_shard(module, k, w)
    if _is(module, "Mlp") and hasattr(module, "fc1"):
        return MlpShard(module, k, w).eval()
    raise ShardError(f"{type(module).__name__} has no tensor split: the runtime shards timm's Attention "
                     "(by heads) and Mlp (by hidden units)")


class BlockShard:
    """Shard ``k`` of ``w`` of a timm pre-norm transformer block (ViT's ``Block``,
    efficientformer's ``MetaBlock1d``; `prenorm_attention`): heads and hidden units in the
    same proportion. `attention_partial` then, on the summed attention (see `block_partials`),
    `mlp_partial`; the block's output is the sum of the MLP partials."""

    def __init__(self, block: nn.Module, k: int, w: int):
        self._shard(block, k, w, ("norm1", "attn", "ls1", "norm2", "mlp", "ls2"))

    def _shard(self, block: nn.Module, k: int, w: int, parts: Sequence[str]) -> None:
        """Check that ``block`` has ``parts`` and shard its attention / MLP among them;
        ``"attn"`` stands for the block's attention whatever its attribute name
        (`prenorm_attention`), sharded by the class its type calls for (`attention_shard`)."""
        name = prenorm_attention(block)        # checks every part a half or the block needs
        if name is None:
            raise ShardError(f"{type(block).__name__} is not a pre-norm transformer block (norm1, attn or "
                             "token_mixer with qkv and num_heads, ls1, norm2, mlp with fc1, ls2)")
        self.block, self.k, self.w = block, k, w
        if "attn" in parts:
            self.attn = attention_shard(getattr(block, name), k, w)
        if "mlp" in parts:
            self.mlp = MlpShard(block.mlp, k, w).eval()

    def attention_partial(self, x: torch.Tensor) -> torch.Tensor:
        """This shard's part of ``x + ls1(attn(norm1(x)))`` (``x`` itself in shard 0)."""
        b = self.block
        with torch.no_grad():
            y = b.ls1(self.attn(b.norm1(x)))
            return x + y if self.k == 0 else y

    def mlp_partial(self, x1: torch.Tensor) -> torch.Tensor:
        """This shard's part of ``x1 + ls2(mlp(norm2(x1)))`` (``x1`` itself in shard 0)."""
        b = self.block
        with torch.no_grad():
            y = b.ls2(self.mlp(b.norm2(x1)))
            return x1 + y if self.k == 0 else y


def block_partials(block: nn.Module, x: torch.Tensor, w: int) -> list[torch.Tensor]:
    """The ``w`` partial outputs of a transformer block split ``w`` ways (their sum is the
    block's output): each shard's attention partial, summed (the all-reduce between the
    shards), then each shard's MLP partial."""
    shards = [BlockShard(block, k, w) for k in range(w)]
    x1 = gather("tensor", [s.attention_partial(x) for s in shards])
    return [s.mlp_partial(x1) for s in shards]


def module_of_block(model: nn.Module, fx_nodes: Sequence[str], gm: fx.GraphModule) -> tuple[str, nn.Module]:
    """The one module of ``model`` that a block's call_module nodes all lie in (the
    deepest common path), e.g. ``blocks.3.attn``."""
    paths = []
    by = {n.name: n for n in gm.graph.nodes}
    for name in fx_nodes:
        n = by.get(name)
        if n is not None and n.op == "call_module":
            paths.append(str(n.target).split("."))
    if not paths:
        raise ShardError("the block calls no module")
    common = paths[0]
    for p in paths[1:]:
        i = 0
        while i < min(len(common), len(p)) and common[i] == p[i]:
            i += 1
        common = common[:i]
    if len(paths) == 1:
        common = common[:-1] if len(common) > 1 else common
    path = ".".join(common)
    try:
        return path, model.get_submodule(path) if path else model
    except AttributeError as exc:
        raise ShardError(f"module '{path}': {exc}") from None


def _half_of(fx_nodes: Sequence[str], gm: fx.GraphModule, path: str, attn_name: str = "attn") -> str | None:
    """"attn" / "mlp" when the block's modules inside the transformer block ``path`` are
    only its attention half (norm1, its attention ``attn_name``, ls1) or only its MLP half
    (norm2, mlp, ls2)."""
    by = {n.name: n for n in gm.graph.nodes}
    seen = set()
    for name in fx_nodes:
        n = by.get(name)
        if n is not None and n.op == "call_module" and str(n.target).startswith(path + "."):
            seen.add(str(n.target)[len(path) + 1:].split(".")[0])
    if seen and seen <= {"norm1", attn_name, "ls1", "drop_path1"}:
        return "attn"
    if seen and seen <= {"norm2", "mlp", "ls2", "drop_path2"}:
        return "mlp"
    return None


def tensor_module_of(model: nn.Module, fx_nodes: Sequence[str], gm: fx.GraphModule,
                     block_id: str = "block") -> tuple[str, nn.Module, str | None]:
    """(path, module, half) of a tensor-split block: a timm ``Attention`` or ``Mlp`` module
    (half None), or one half ("attn" / "mlp") of a pre-norm transformer ``Block`` (the
    profiler's ``<path>:attn`` and ``<path>:mlp`` blocks, run by `BlockShard`); walking up
    from the common path of its layers. `ShardError` otherwise."""
    path, mod = module_of_block(model, fx_nodes, gm)
    parts = path.split(".") if path else []
    while True:
        if _attention_shard_class(mod) is not None or (_is(mod, "Mlp") and hasattr(mod, "fc1")):
            return path, mod, None
        attn_name = prenorm_attention(mod)
        if attn_name is not None:
            half = _half_of(fx_nodes, gm, path, attn_name)
            if half is not None:
                return path, mod, half
            raise ShardError(f"block '{block_id}' is a whole transformer block ('{path}'): its tensor shards "
                             "would need the attention's partial outputs summed before the MLP; profile with "
                             "'--splits auto', which cuts such blocks into attention and MLP halves")
        if not parts:
            break
        parts = parts[:-1]
        path = ".".join(parts)
        mod = model.get_submodule(path) if path else model
    raise ShardError(f"block '{block_id}' has no tensor split the runtime can run: it is not one timm "
                     "Attention (by heads) or Mlp (by hidden units), nor one half of a pre-norm "
                     "transformer block")


def half_shard(block: nn.Module, half: str, k: int, w: int):
    """Shard ``k`` of ``w`` of one half of a transformer block: a callable ``x -> partial``
    (residual in shard 0 only; the consumer sums the partials)."""
    bs = _AttnHalf(block, k, w) if half == "attn" else _MlpHalf(block, k, w)
    return bs.attention_partial if half == "attn" else bs.mlp_partial


class _MlpHalf(BlockShard):
    """A `BlockShard` that shards only the MLP (the MLP half's ways need not divide the heads)."""

    def __init__(self, block: nn.Module, k: int, w: int):
        self._shard(block, k, w, ("norm2", "mlp", "ls2"))


class _AttnHalf(BlockShard):
    """A `BlockShard` that shards only the attention (the attention half's ways divide the heads)."""

    def __init__(self, block: nn.Module, k: int, w: int):
        self._shard(block, k, w, ("norm1", "attn", "ls1"))


def check_tensor_block(block: fx.GraphModule, module: nn.Module, example: Sequence[Any],
                       block_id: str = "block", half: str | None = None) -> None:
    """A tensor-split block must compute exactly its module (or its half of a transformer
    block): one input, one output, equal."""
    if len(example) != 1:
        raise ShardError(f"block '{block_id}' reads {len(example)} values; a tensor shard reads one")
    with torch.no_grad():
        got = block(*example)
        want = module(example[0]) if half is None else half_shard(module, half, 0, 1)(example[0])
    if len(got) != 1 or got[0].shape != want.shape or not torch.allclose(got[0], want, rtol=1e-5, atol=1e-6):
        raise ShardError(f"block '{block_id}' is more than its module {type(module).__name__} (extra "
                         "operations around it): its tensor shards would not reproduce it")


def shard_ways(mapping: Mapping[str, Any]) -> tuple[int, int]:
    """(k, w) of a shard block's ``meta`` (the loader writes ``shard`` and ``ways``)."""
    return int(mapping["shard"]), int(mapping["ways"])


# ======================================================================================
# the runtime's side: shard blocks, the values that cross devices, and where they are made
#
# Value names: a shard ``b#k`` of a block with output ``o`` produces ``o@b#k`` (its band or
# partial); ``o`` itself is then a *gather* (``("cat", parts)`` or ``("sum", parts)``),
# made by the device that consumes it once every part has arrived. A spatial shard reads
# ``n[lo:hi]``, a *slice* (``("rows", base, lo, hi)``) that the producer of ``base`` cuts
# before sending; a slice of a gathered value is the gather of the parts' slices, so every
# part is cut where it was made. Recipes live in the run description (``derived``).


def slice_name(base: str, lo: int, hi: int) -> str:
    return f"{base}[{lo}:{hi}]"


def part_name(value: str, shard: str) -> str:
    return f"{value}@{shard}"


def _rows_of(name: str, lo: int, hi: int, derived: dict[str, tuple]) -> str:
    """The name of rows ``[lo, hi)`` of value ``name``, its recipe added to ``derived``."""
    rec = derived.get(name)
    if rec is not None and rec[0] in ("cat", "sum"):
        parts = []
        if rec[0] == "sum":
            parts = [_rows_of(p, lo, hi, derived) for p in rec[1]]
        else:
            for p, (r0, r1) in zip(rec[1], rec[2]):
                a, b = max(lo, r0), min(hi, r1)
                parts.append(_rows_of(p, a - r0, max(a, b) - r0, derived))
        out = slice_name(name, lo, hi)
        if rec[0] == "cat":
            sub = []
            for r0, r1 in rec[2]:
                a = max(lo, r0) - lo
                sub.append((a, max(a, min(hi, r1) - lo)))
            derived[out] = ("cat", parts, sub)
        else:
            derived[out] = ("sum", parts, [])
        return out
    out = slice_name(name, lo, hi)
    derived[out] = ("rows", name, lo, hi)
    return out


def resolvable(name: str, have, derived: Mapping[str, tuple]) -> bool:
    """Whether ``name`` can be made from the values in ``have`` (a container of names)."""
    if name in have:
        return True
    rec = derived.get(name)
    if rec is None:
        return False
    if rec[0] == "rows":
        return resolvable(rec[1], have, derived)
    return all(resolvable(p, have, derived) for p in rec[1])


def resolve(name: str, get, put, derived: Mapping[str, tuple]):
    """The value ``name``: ``get(name)`` (KeyError when absent), else made from its recipe,
    its ingredients first, and stored with ``put(name, value, ingredients)``."""
    try:
        return get(name)
    except KeyError:
        pass
    rec = derived[name]
    if rec[0] == "rows":
        base = resolve(rec[1], get, put, derived)
        v = base[:, :, rec[2]:rec[3]]
        put(name, v, [rec[1]])
        return v
    parts = [resolve(p, get, put, derived) for p in rec[1]]
    v = gather("spatial" if rec[0] == "cat" else "tensor", parts)
    put(name, v, list(rec[1]))
    return v


def wires(name: str, producer: Mapping[str, str], derived: Mapping[str, tuple]) -> list[tuple[str, str]]:
    """(producer block, value name) of every value that must reach a device to make
    ``name`` there: a gather needs its parts, a slice is cut by its base's producer."""
    rec = derived.get(name)
    if rec is None:
        return [(producer[name], name)]
    if rec[0] == "rows":
        base = rec[1]
        while base in derived and derived[base][0] == "rows":
            base = derived[base][1]
        return [(producer[base], name)]
    out: list[tuple[str, str]] = []
    for p in rec[1]:
        for x in wires(p, producer, derived):
            if x not in out:
                out.append(x)
    return out


class _Call:
    """A shard as a block module: ``(*inputs) -> tuple of outputs`` (picklable parts only)."""

    def __init__(self, fn, n_out: int = 1):
        self.fn, self.n_out = fn, n_out

    def __call__(self, *xs):
        with torch.no_grad():
            out = self.fn(*xs)
        return out if isinstance(out, tuple) else (out,)


def runtime_shard(whole, desc: Mapping[str, Any], model: nn.Module | None):
    """The `RuntimeBlock` of one shard from its whole block's (``whole``) and the shard's
    description ``desc`` (made by `plan_shards`; ``model``: the model, for tensor shards)."""
    from .blocks import RuntimeBlock

    sid, k, w = desc["id"], desc["k"], desc["w"]
    if desc["mode"] == "spatial":
        sh = SpatialShard(whole.module, list(whole.inputs), list(whole.outputs), k, w,
                          {n: tuple(r) for n, r in desc["in_rows"].items()}, tuple(desc["out_rows"]),
                          desc["out_offset"])
        return RuntimeBlock(sid, _Call(sh), list(desc["inputs"]), list(desc["outputs"]))
    if model is None:
        raise ShardError(f"shard '{sid}': a tensor shard needs the model")
    if desc.get("half"):
        fn = half_shard(model.get_submodule(desc["module"]), desc["half"], k, w)
        return RuntimeBlock(sid, _Call(fn), list(desc["inputs"]), list(desc["outputs"]))
    mod = tensor_shard(model.get_submodule(desc["module"]), k, w)
    return RuntimeBlock(sid, _Call(mod), list(desc["inputs"]), list(desc["outputs"]))


def plan_shards(origin: str, shard_ids: Sequence[str], mode: str, whole, values: Mapping[str, Any],
                model: nn.Module, gm: fx.GraphModule, fx_nodes: Sequence[str],
                derived: dict[str, tuple]) -> dict[str, dict[str, Any]]:
    """The description of every shard of block ``origin`` (``whole``: its `RuntimeBlock`,
    ``values``: every value on one input, so the full inputs' shapes are known), and the
    recipes of the values they read and of the block's outputs (added to ``derived``).
    Raises `ShardError` when the block cannot be split in ``mode``."""
    w = len(shard_ids)
    ins = [values[n] for n in whole.inputs]
    descs: dict[str, dict[str, Any]] = {}
    if mode == "spatial":
        bands = []
        for k, sid in enumerate(shard_ids):
            sh = spatial_shard(whole.module, whole.inputs, ins, k, w, origin)
            inputs = [_rows_of(n, *sh.in_rows[n], derived) for n in whole.inputs]
            descs[sid] = {"id": sid, "origin": origin, "mode": mode, "k": k, "w": w,
                          "in_rows": {n: list(r) for n, r in sh.in_rows.items()}, "out_rows": list(sh.out_rows),
                          "out_offset": sh.out_offset, "inputs": inputs,
                          "outputs": [part_name(o, sid) for o in whole.outputs]}
            bands.append(sh.out_rows)
        for o in whole.outputs:
            derived[o] = ("cat", [part_name(o, s) for s in shard_ids], [tuple(b) for b in bands])
    elif mode == "tensor":
        path, mod, half = tensor_module_of(model, fx_nodes, gm, origin)
        check_tensor_block(whole.module, mod, ins, origin, half)
        # refuses ways that do not divide the heads / hidden units
        tensor_shard(mod, 0, w) if half is None else half_shard(mod, half, 0, w)
        for k, sid in enumerate(shard_ids):
            descs[sid] = {"id": sid, "origin": origin, "mode": mode, "k": k, "w": w, "module": path, "half": half,
                          "inputs": list(whole.inputs), "outputs": [part_name(o, sid) for o in whole.outputs]}
        for o in whole.outputs:
            derived[o] = ("sum", [part_name(o, s) for s in shard_ids], [])
    else:
        raise ShardError(f"block '{origin}': unknown split mode {mode!r}")
    return descs


def calibration_times(raw: Mapping[str, Any], blocks: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``--calibrate`` for shards: split block id -> {device id: its whole time}. A shard's
    measured time is rescaled to the whole block by the inverse of the split transform's
    factor (``placement/split.py``: a shard takes ``(flops / w + overhead_flops) / flops`` of
    the block's time), the median over the block's shards on each device."""
    import statistics

    raw_blocks = {b["id"]: b for b in (raw.get("model") or {}).get("blocks", ())}
    shards: dict[str, list[Mapping[str, Any]]] = {}
    for b in blocks:
        if "#" in b["id"] and b.get("measured_s") is not None:
            origin = b["id"].rsplit("#", 1)[0]
            if origin in raw_blocks and raw_blocks[origin].get("split"):
                shards.setdefault(origin, []).append(b)
    out: dict[str, dict[str, float]] = {}
    for origin, rows in shards.items():
        rb = raw_blocks[origin]
        w = len(rows)
        flops = float(rb.get("flops") or 0.0)
        over = float((rb.get("split") or {}).get("overhead_flops") or 0.0)
        scale = (flops / w + over) / flops if flops > 0 else 1.0 / w
        per_dev: dict[str, list[float]] = {}
        for r in rows:
            per_dev.setdefault(r["device"], []).append(float(r["measured_s"]) / scale)
        out[origin] = {d: float(statistics.median(ts)) for d, ts in per_dev.items()}
    return out

"""Measure blocks on this machine: FLOPs (fvcore), time, peak working memory, tensor bytes.

Imports torch and fvcore: use it through `profiles.profile_model`.
"""

from __future__ import annotations

import gc
import re
import statistics
import time
import warnings
import weakref
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


# --------------------------------------------------------------------------------------
# FLOPs


def fvcore_flops(module: nn.Module, inputs: tuple) -> tuple[int, dict[str, int]]:
    """fvcore's FLOP count of ``module(*inputs)``: (total, per submodule path).

    fvcore's convention: one fused multiply-add counts as one flop; element-wise ops that
    fvcore does not model (add, activation, softmax...) count zero.
    """
    from fvcore.nn import FlopCountAnalysis

    wrapper = _TensorOnly(module, inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(wrapper, wrapper.tensor_args)
        analysis.set_op_handle(**EXTRA_FLOP_HANDLES)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        total = int(analysis.total())
        by_module = {}
        for k, v in analysis.by_module().items():
            if k == "" or k == "inner":
                by_module[""] = int(v)
            elif k.startswith("inner."):
                by_module[k[len("inner."):]] = int(v)
    return total, by_module


def _sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """FLOPs of scaled dot-product attention (fvcore convention: multiply-adds).

    q @ k^T costs B*H*Lq*Lk*E and attn @ v costs B*H*Lq*Lk*Ev. fvcore 0.1.5 has no handle
    for the fused op, so without this a timm transformer would count zero for it.
    """
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(inputs[i]) for i in range(3))
    lq, e = q[-2], q[-1]
    lk, ev = k[-2], v[-1]
    batch = 1
    for d in q[:-2]:
        batch *= d
    return int(batch * lq * lk * (e + ev))


#: fvcore handles added to its defaults, for the whole model and for each block alike.
EXTRA_FLOP_HANDLES = {
    "aten::scaled_dot_product_attention": _sdpa_flop_jit,
}


def model_fvcore_flops(model: nn.Module, x: torch.Tensor) -> int:
    """fvcore's total for the whole model on input ``x`` (with `EXTRA_FLOP_HANDLES`)."""
    return fvcore_flops(model, (x,))[0]


class _TensorOnly(nn.Module):
    """Adapter for jit tracing: tensor arguments only, tensor outputs only.

    A block may take or return Python numbers (e.g. a shape computed in one block and used
    in another); those are closed over / dropped, which does not change any FLOP count.
    """

    def __init__(self, inner: nn.Module, args: Sequence[Any]):
        super().__init__()
        self.inner = inner
        self._args = list(args)
        self._tensor_pos = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        self.tensor_args = tuple(args[i] for i in self._tensor_pos)

    def forward(self, *tensors):
        args = list(self._args)
        for i, t in zip(self._tensor_pos, tensors):
            args[i] = t
        out = self.inner(*args)
        flat = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        return tuple(flat)


# --------------------------------------------------------------------------------------
# peak working memory


class PeakMemory(TorchDispatchMode):
    """Tracks the bytes of tensor storages alive while a block runs.

    Every storage created by an aten op is counted from its creation until it is freed
    (a weak reference on the storage tells when); storages that existed before (the block's
    inputs, parameters) are not new allocations. ``peak`` is the largest sum of live new
    storages seen after any op. Scratch buffers a kernel allocates and frees inside one op
    (e.g. im2col) are not visible at this level.
    """

    def __init__(self, preexisting: Sequence[torch.Tensor] = ()):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._known: set[int] = set()
        for t in preexisting:
            self._known.add(t.untyped_storage().data_ptr())

    def _track(self, t: torch.Tensor) -> None:
        s = t.untyped_storage()
        key = s.data_ptr()
        n = s.nbytes()
        if n == 0 or key in self._known:
            return
        self._known.add(key)
        self.live += n
        self.peak = max(self.peak, self.live)
        weakref.finalize(s, self._freed, key, n)

    def _freed(self, key: int, n: int) -> None:
        self._known.discard(key)
        self.live -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                self._track(t)
        return out


def peak_working_bytes(fn: Callable[[], Any], inputs: Sequence[torch.Tensor]) -> int:
    """Peak working memory of ``fn()``: its inputs plus the peak of its live new tensors.

    The result the block returns is part of that peak (it is alive at the end).
    """
    ins = [t for t in inputs if isinstance(t, torch.Tensor)]
    in_bytes = sum(_storage_bytes(ins))
    gc.collect()
    with torch.no_grad(), PeakMemory(ins) as pm:
        out = fn()
        peak = pm.peak
    del out
    return int(in_bytes + peak)


def _storage_bytes(tensors: Sequence[torch.Tensor]) -> list[int]:
    seen: dict[int, int] = {}
    for t in tensors:
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
    return list(seen.values())


# --------------------------------------------------------------------------------------
# time


def median_time(fn: Callable[[], Any], *, warmup: int, repeats: int,
                prepare: Callable[[], Any] | None = None) -> tuple[float, list[float]]:
    """Median wall time of ``fn(prepared)`` over ``repeats`` runs after ``warmup`` runs (s).

    ``prepare()`` runs before each call, outside the timed region (e.g. to clone inputs that
    the block modifies in place). Returns (median, all timed samples).
    """
    samples: list[float] = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            arg = prepare() if prepare else None
            t0 = time.perf_counter()
            fn(arg)
            dt = time.perf_counter() - t0
            if i >= warmup:
                samples.append(dt)
    return statistics.median(samples), samples


def clone_values(values: Sequence[Any]) -> list[Any]:
    """Deep copies of tensors in ``values`` (so that in-place ops do not leak across runs)."""
    out = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(v.clone())
        elif isinstance(v, (list, tuple)):
            out.append(type(v)(clone_values(v)))
        else:
            out.append(v)
    return out


# --------------------------------------------------------------------------------------
# kinds

KINDS = ("conv", "attention", "mlp", "norm", "pool", "embed", "head", "act", "other")

_ATTN = re.compile(r"attn|attention|mha|selfatt|transformer", re.I)
_MLP = re.compile(r"mlp|ffn|feedforward", re.I)
_EMBED = re.compile(r"embed|stem", re.I)
_HEAD = re.compile(r"^(head|fc|classifier|last_linear)(\.|$)|\.(head|fc|classifier)(\.|$)", re.I)


def leaf_kind(module: nn.Module, path: str, enclosing: Sequence[str]) -> str:
    """Kind of one leaf module, from its type and the names of the modules around it.

    ``enclosing`` holds the class names of the modules it sits in (outermost first).
    """
    name = type(module).__name__
    ctx = " ".join(enclosing)
    if _HEAD.search(path) and not _ATTN.search(ctx):
        return "head"
    if isinstance(module, nn.MultiheadAttention) or _ATTN.search(name):
        return "attention"
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)) or "Conv" in name:
        if _EMBED.search(ctx) and not _ATTN.search(ctx):
            return "embed" if "PatchEmbed" in ctx else "conv"
        if _ATTN.search(ctx):
            return "attention"
        return "conv"
    if isinstance(module, nn.Linear) or "Linear" in name:
        if _ATTN.search(ctx) and not _MLP.search(_innermost(enclosing)):
            return "attention"
        if _EMBED.search(ctx):
            return "embed"
        return "mlp"
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)) or "Norm" in name:
        return "norm"
    if "Pool" in name:
        return "pool"
    if isinstance(module, (nn.ReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
                           nn.ReLU6, nn.LeakyReLU, nn.Mish, nn.Softmax)) or "Act" in name:
        return "act"
    if "Embed" in name:
        return "embed"
    return "other"


def _innermost(enclosing: Sequence[str]) -> str:
    return enclosing[-1] if enclosing else ""


def flops_by_kind(model: nn.Module, by_module: dict[str, int], has_matmul: bool) -> dict[str, int]:
    """Split a block's FLOPs by kind, using fvcore's per-module counts.

    fvcore attributes every op to the innermost module that ran it (deeper than fx's leaves:
    a timm ``MobileVitBlock`` is one fx leaf but fvcore sees its attention). The FLOPs a
    module runs itself (its count minus its children's) get that module's kind: `leaf_kind`
    for modules without children, the class name for composites (an ``Attention`` module's
    own matmuls are attention), and for the block's own functional ops ("" in fvcore),
    attention if the block has a matmul node, else other.
    """
    paths = [p for p in by_module if p]
    children: dict[str, int] = {}
    for p in paths:
        parent = p.rsplit(".", 1)[0] if "." in p else ""
        # the nearest ancestor present in by_module
        while parent and parent not in by_module:
            parent = parent.rsplit(".", 1)[0] if "." in parent else ""
        children[parent] = children.get(parent, 0) + by_module[p]
    out: dict[str, int] = {}
    for p, total in by_module.items():
        own = total - children.get(p, 0)
        if own <= 0:
            continue
        if p == "":
            k = "attention" if has_matmul else "other"
        else:
            k = _module_kind(model, p)
        out[k] = out.get(k, 0) + own
    return out


def _module_kind(model: nn.Module, path: str) -> str:
    try:
        mod = model.get_submodule(path)
    except AttributeError:
        return "other"
    parts = path.split(".")
    enclosing = []
    for i in range(1, len(parts)):
        try:
            enclosing.append(type(model.get_submodule(".".join(parts[:i]))).__name__)
        except AttributeError:
            pass
    if list(mod.children()):
        name = type(mod).__name__
        if _ATTN.search(name):
            return "attention"
        if _MLP.search(name):
            return "mlp"
    return leaf_kind(mod, path, enclosing)


#: a block whose attention FLOPs reach this share of its FLOPs is of kind "attention"
ATTENTION_SHARE = 0.2


def block_kind(kind_flops: dict[str, int], kind_count: dict[str, int], has_matmul: bool) -> str:
    """A block's kind: "attention" if attention has at least `ATTENTION_SHARE` of its
    FLOPs, else the kind with most FLOPs; for a block without FLOPs, the most frequent leaf
    kind ("attention" if it multiplies two activations)."""
    total = sum(kind_flops.values())
    if total > 0:
        if kind_flops.get("attention", 0) >= ATTENTION_SHARE * total:
            return "attention"
        return max(kind_flops.items(), key=lambda kv: kv[1])[0]
    if has_matmul:
        return "attention"
    if kind_count:
        return max(kind_count.items(), key=lambda kv: kv[1])[0]
    return "other"


_MATMUL_TARGETS = {"matmul", "bmm", "baddbmm", "einsum", "scaled_dot_product_attention", "mm", "__matmul__"}


def is_matmul_node(node) -> bool:
    tgt = node.target
    name = tgt if isinstance(tgt, str) else getattr(tgt, "__name__", str(tgt))
    return name in _MATMUL_TARGETS

"""`profile_model`: a torch model -> the ``model`` section of a problem file, measured here.

Imports torch: reach it through `profiles.profile_model`, which imports it lazily.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from typing import Any, Sequence

import torch
from torch import fx, nn

from . import graph as G
from . import measure as M

#: block-meta and model-meta keys written here and read by `profiles.problem`.
HOST_TIME_KEY = "time_host_s"


def profile_model(model: nn.Module, input_shape: Sequence[int] = (1, 3, 224, 224), granularity: str = "block",
                  *, name: str | None = None, threads: int = 1, warmup: int = 3, repeats: int = 10,
                  measure_time: bool = True, seed: int = 0, check_output: bool = True,
                  halves: bool = False) -> dict[str, Any]:
    """Cut ``model`` into blocks at ``granularity`` and measure every block on this machine.

    Returns the ``model`` section of a problem file (SPEC section 3): ``name``,
    ``input_bytes``, ``blocks`` and ``edges`` (dict form, with the bytes of the real tensors
    that cross each edge), and ``meta`` with the profiling record. Per block: ``flops``
    (fvcore's count: one multiply-add is one flop), ``params_bytes`` (parameters and
    buffers it reads, bytes), ``activation_bytes`` (its peak working memory measured while
    it runs: inputs plus live intermediate tensors, bytes), ``output_bytes`` (bytes of the
    values it hands to other blocks or to the model output), ``kind``, ``modules``,
    ``fx_nodes``, and in ``meta`` the time measured here (``time_host_s``: median of
    ``repeats`` runs after ``warmup`` runs, with ``threads`` intra-op threads), the fx names
    of its inputs and outputs, and its FLOPs by kind. ``time_s`` is left empty: calibrated
    device times are added by `profiles.make_problem`. ``halves`` (``--splits auto``): timm
    pre-norm transformer blocks are cut into attention and MLP halves (`profiles.graph.cut`).

    The model is put in eval mode; inputs are random (seeded by ``seed``), dtype float32.
    Raises `profiles.graph.TraceError` when torch.fx cannot trace the model.
    """
    if granularity not in G.GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(G.GRANULARITIES)}, not {granularity!r}")
    shape = tuple(int(s) for s in input_shape)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _profile(model, shape, granularity, name=name, threads=threads, warmup=warmup, repeats=repeats,
                        measure_time=measure_time, seed=seed, check_output=check_output, halves=halves)
    finally:
        torch.set_num_threads(old_threads)


def _profile(model, shape, granularity, *, name, threads, warmup, repeats, measure_time, seed, check_output,
             halves=False):
    model.eval()
    torch.manual_seed(seed)
    x = torch.randn(*shape)
    # --splits auto opens MobileViT's blocks (`profiles.graph.trace`): their transformer
    # layers become blocks that can be split by heads, their convs by rows
    opened = sorted(G.openable(model)) if halves else []
    gm = G.trace(model, shape, open_blocks=bool(opened))
    segs = G.cut(model, gm, granularity, halves=halves)

    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise G.TraceError(f"the model's forward must take one input tensor, it takes {len(placeholders)}")
    in_name = placeholders[0].name
    seg_of: dict[str, str] = {}
    for s in segs:
        for n in s.nodes:
            seg_of[n.name] = s.id

    # whole model: the reference totals
    with torch.no_grad():
        reference_out = model(x)
    model_flops, _ = M.fvcore_flops(model, (x,))
    n_params = sum(p.numel() for p in model.parameters())
    model_time = None
    if measure_time:
        model_time, _ = M.median_time(lambda _: model(x), warmup=warmup, repeats=repeats)

    values: dict[str, Any] = {in_name: x}
    blocks: list[dict[str, Any]] = []
    edge_bytes: dict[tuple[str, str], int] = {}
    input_users: list[str] = []
    graph_out = next(n for n in gm.graph.nodes if n.op == "output")
    attr_owner = _attr_tensors(gm)

    for s in segs:
        bg = G.extract_block(gm, [n.name for n in s.nodes])
        ins = [values[a] for a in bg.inputs]
        # the one real run: in execution order, on the real tensors (in-place ops behave as in
        # the model), with its peak working memory measured
        holder: dict[str, Any] = {}

        def run_real(bg=bg, ins=ins, holder=holder):
            holder["out"] = bg.module(*ins)
            return holder["out"]

        act_bytes = M.peak_working_bytes(run_real, [t for t in _flat(ins) if isinstance(t, torch.Tensor)])
        outs = holder.pop("out")
        for oname, oval in zip(bg.outputs, outs):
            values[oname] = oval

        flops, by_mod = M.fvcore_flops(bg.module, tuple(M.clone_values(ins)))
        t_host = None
        samples: list[float] = []
        if measure_time:
            t_host, samples = M.median_time(lambda a, m=bg.module: m(*a), warmup=warmup, repeats=repeats,
                                            prepare=lambda ins=ins: M.clone_values(ins))

        # data flow into this block
        for a in bg.inputs:
            if a == in_name:
                input_users.append(s.id)
                continue
            src = seg_of[a]
            edge_bytes[(src, s.id)] = edge_bytes.get((src, s.id), 0) + G.tensors_bytes(values[a])

        # weights it reads
        p_bytes, p_count, b_bytes = _weights(gm, s.nodes, attr_owner)
        # kind
        kind_count: dict[str, int] = {}
        for n in s.nodes:
            if n.op == "call_module":
                path = str(n.target)
                k = M._module_kind(model, path)
                kind_count[k] = kind_count.get(k, 0) + 1
        has_mm = any(M.is_matmul_node(n) for n in s.nodes)
        kind_flops = M.flops_by_kind(model, by_mod, has_mm)
        kind = M.block_kind(kind_flops, kind_count, has_mm)
        if s.id == "head" and kind in ("mlp", "pool", "norm", "other"):
            kind = "head"

        out_bytes = sum(G.tensors_bytes(values[o]) for o in bg.outputs)
        meta: dict[str, Any] = {
            "inputs": [{"fx_node": a, "from": ("input" if a == in_name else seg_of[a])} for a in bg.inputs],
            "outputs": bg.outputs,
            "params": p_count,
            "buffers_bytes": b_bytes,
            "flops_by_kind": {k: v for k, v in sorted(kind_flops.items()) if v},
        }
        if t_host is not None:
            meta[HOST_TIME_KEY] = t_host
            meta["time_host_samples_s"] = [round(v, 9) for v in samples]
        blocks.append({
            "id": s.id,
            "flops": flops,
            "params_bytes": p_bytes,
            "activation_bytes": act_bytes,
            "output_bytes": out_bytes,
            "kind": kind,
            "modules": s.modules,
            "fx_nodes": [n.name for n in s.nodes],
            "meta": meta,
        })
        # free values no later block needs
        del ins

    max_err = None
    if check_output:
        final = [values[a.name] for a in graph_out.all_input_nodes]
        if len(final) == 1 and isinstance(final[0], torch.Tensor) and isinstance(reference_out, torch.Tensor):
            max_err = float((final[0] - reference_out).abs().max())

    in_bytes = x.numel() * x.element_size()
    edges = [{"src": a, "dst": b, "bytes": v} for (a, b), v in edge_bytes.items()]
    # The raw input reaches a block from the source device only if that block has no other
    # predecessor (SPEC section 4). Otherwise an explicit zero-cost "input" block carries it.
    has_pred = {b for (_, b) in edge_bytes}
    if len(input_users) > 1 or any(u in has_pred for u in input_users):
        blocks.insert(0, {"id": "input", "flops": 0, "params_bytes": 0, "activation_bytes": in_bytes,
                          "output_bytes": in_bytes, "kind": "other", "modules": [], "fx_nodes": [in_name],
                          "meta": {"note": "the model input, consumed by several blocks"}})
        edges[:0] = [{"src": "input", "dst": u, "bytes": in_bytes} for u in input_users]

    sum_block_flops = sum(b["flops"] for b in blocks)
    host_times = [b["meta"].get(HOST_TIME_KEY) for b in blocks if HOST_TIME_KEY in b["meta"]]
    meta = {
        "profiled_by": "profiles.profile_model",
        "granularity": granularity,
        "input_shape": list(shape),
        **({"open_blocks": opened} if opened else {}),
        "input_dtype": "float32",
        "flops_convention": "fvcore: one fused multiply-add counts as one flop",
        "model_flops_fvcore": model_flops,
        "block_flops_sum": sum_block_flops,
        "model_params": n_params,
        "model_params_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "model_buffers_bytes": sum(b.numel() * b.element_size() for b in model.buffers()),
        "n_blocks": len(blocks),
        "split_output_max_abs_error": max_err,
        "measurement": host_record(threads, warmup, repeats) if measure_time else None,
    }
    if measure_time:
        meta["model_time_host_s"] = model_time
        meta["block_time_host_sum_s"] = float(sum(host_times))
    return {
        "name": name or type(model).__name__,
        "input_bytes": in_bytes,
        "blocks": blocks,
        "edges": edges,
        "meta": meta,
    }


def _flat(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.extend(_flat(v))
        else:
            out.append(v)
    return out


def _stack_classes(node: fx.Node) -> list[tuple[str, type]]:
    stack = node.meta.get("nn_module_stack") or {}
    out = []
    for key, val in stack.items():
        if isinstance(val, tuple) and len(val) == 2 and isinstance(val[1], type):
            out.append((str(val[0]), val[1]))
    return out


def _attr_tensors(gm: fx.GraphModule) -> dict[str, Any]:
    out = {}
    for n in gm.graph.nodes:
        if n.op == "get_attr":
            obj: Any = gm
            for part in str(n.target).split("."):
                obj = getattr(obj, part)
            out[n.name] = obj
    return out


def _weights(gm: fx.GraphModule, nodes: Sequence[fx.Node], attrs: dict[str, Any]) -> tuple[int, int, int]:
    """(parameter + buffer bytes, parameter count, buffer bytes) that ``nodes`` read."""
    seen: dict[int, torch.Tensor] = {}
    is_param: dict[int, bool] = {}
    for n in nodes:
        if n.op == "call_module":
            mod = gm.get_submodule(str(n.target))
            for p in mod.parameters():
                seen[id(p)] = p
                is_param[id(p)] = True
            for b in mod.buffers():
                seen.setdefault(id(b), b)
                is_param.setdefault(id(b), False)
        for a in n.all_input_nodes:
            if a.op == "get_attr":
                t = attrs.get(a.name)
                if isinstance(t, torch.Tensor):
                    seen.setdefault(id(t), t)
                    is_param.setdefault(id(t), isinstance(t, nn.Parameter))
    p_bytes = sum(t.numel() * t.element_size() for i, t in seen.items() if is_param[i])
    p_count = sum(t.numel() for i, t in seen.items() if is_param[i])
    b_bytes = sum(t.numel() * t.element_size() for i, t in seen.items() if not is_param[i])
    return p_bytes + b_bytes, p_count, b_bytes


def host_record(threads: int, warmup: int, repeats: int) -> dict[str, Any]:
    """Where and how the times were measured: machine, software, thread count, date."""
    import sys

    rec: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "threads": threads,
        "interop_threads": torch.get_num_interop_threads(),
        "warmup": warmup,
        "repeats": repeats,
        "statistic": "median",
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu": _cpu_name(),
        "logical_cpus": os.cpu_count(),
    }
    for mod in ("timm", "fvcore", "torchvision"):
        try:
            rec[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional packages: record what is there
            pass
    return rec


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

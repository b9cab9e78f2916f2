"""Check a plan against its problem and turn both, with the model, into a run description.

Everything here happens before any worker starts, so every mistake in the inputs is an
`InputError` (exit 2): a plan that names an unknown block or device, misses a block, or
is infeasible; a problem whose blocks carry no ``fx_nodes`` or are shards of a split block;
a model whose blocks cannot be rebuilt from the mapping (the message names the block).
"""

from __future__ import annotations

import math
import os
import socket
from typing import Any, Mapping

import numpy as np

from ..errors import InputError, PlanError
from ..problem import Problem


def check_plan(problem: Any, plan: Any):
    """(Problem, the evaluator's re-scored Plan). Raises `PlanError` / `ProblemError`."""
    from .. import api
    from ..loader import load

    p = load(problem)
    if p.scenarios:
        # SPEC 10 is planned and scored, not executed: running every block of every scenario
        # would measure an inference that never happens (issue 16, runtime part not built)
        raise InputError(f"problem '{p.name}' has scenarios (model.scenarios): the runtime does not "
                         "execute conditional models yet (no --scenario); plan and evaluate them with "
                         "'placement solve' / 'placement evaluate'")
    scored = api.evaluate(p, plan)
    if scored.split:                     # split choices (SPEC 6): the plan's own expansion
        p = p.expand(scored.split)
    if scored.violations:
        raise PlanError(f"the plan is infeasible on problem '{p.name}': " + "; ".join(scored.violations[:3]))
    for b in p.blocks:
        if b.origin is not None:
            raise InputError(f"block '{b.id}' is a shard of split block '{b.origin}': the runtime executes "
                             "whole blocks only (plan without splitting: ways [1])")
        if not b.fx_nodes:
            raise InputError(f"block '{b.id}' cannot be rebuilt: the problem gives no fx_nodes for it "
                             "(profile the model with 'placement profile' to get the block-to-module mapping)")
    return p, scored


def predicted_transfers(p: Problem, assignment: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every transfer between two devices that the evaluator counts, with its predicted time
    (SPEC section 4: ``latency_s + bytes / bandwidth``), from the problem's matrices: the
    edges, the inputs from ``source`` (``src: "input"``) and the outputs to ``sink``
    (``dst: "output"``). The evaluator exposes block times only, so this is the one place
    the runtime reads transfer times."""
    a = np.array([p.device_index[assignment[b.id]] for b in p.blocks], dtype=np.int64)
    out = []
    for b in p.input_blocks:
        if a[b] != p.source:
            out.append({"src": "input", "dst": p.blocks[b].id, "from_device": p.devices[p.source].id,
                        "to_device": p.devices[a[b]].id, "bytes": float(p.in_bytes[b]),
                        "predicted_s": float(p.input_arrival(b)[a[b]])})
    for k in range(p.n_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        if a[u] != a[v]:
            out.append({"src": p.blocks[u].id, "dst": p.blocks[v].id, "from_device": p.devices[a[u]].id,
                        "to_device": p.devices[a[v]].id, "bytes": float(p.edge_bytes[k]),
                        "predicted_s": p.transfer_time(float(p.edge_bytes[k]), int(a[u]), int(a[v]))})
    for b in p.output_blocks:
        if a[b] != p.sink:
            out.append({"src": p.blocks[b].id, "dst": "output", "from_device": p.devices[a[b]].id,
                        "to_device": p.devices[p.sink].id, "bytes": float(p.out_bytes[b]),
                        "predicted_s": float(p.output_delivery(b)[a[b]])})
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def input_shape(p: Problem, model) -> list[int]:
    meta = (p.spec.get("model") or {}).get("meta") or {}
    shape = meta.get("input_shape")
    if isinstance(shape, list) and shape and all(isinstance(s, int) and s > 0 for s in shape):
        return shape
    from profiles.models import default_input_shape
    return list(default_input_shape(model))


def build_run(p: Problem, scored, model_spec: str, *, inferences: int, emulate: bool, time_scale: float | None,
              threads: int, seed: int, timeout_s: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the run description every worker reads, what the supervisor keeps: the model's
    reference outputs and the host times of the blocks).

    Builds the model, rebuilds every block from the mapping, runs them in the problem's
    order on the first input and checks that they reproduce the model's output; the values
    that cross devices fix each message's layout.
    """
    import time

    import torch

    from .blocks import (SOURCE, build_model, message_bytes, object_bytes_for, output_names, placeholder_name,
                         rebuild, run_block, trace_model, value_layout)

    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = build_model(model_spec, seed)
        gm = trace_model(model)
        in_name = placeholder_name(gm)
        structure, out_names = output_names(gm)
        blocks = rebuild(gm, [(b.id, b.fx_nodes) for b in p.blocks])
        shape = input_shape(p, model)
        g = torch.Generator().manual_seed(seed + 1000)
        inputs = [torch.randn(*shape, generator=g) for _ in range(inferences)]
        # the chain of rebuilt blocks on the first input: values, producers, host times
        values: dict[str, Any] = {in_name: inputs[0]}
        producer: dict[str, str] = {in_name: SOURCE}
        host_s: dict[str, float] = {}
        with torch.no_grad():
            for b in p.blocks:
                blk = blocks[b.id]
                missing = [n for n in blk.inputs if n not in values]
                if missing:
                    raise InputError(f"block '{b.id}' cannot be rebuilt: it reads {missing[:3]}, which no "
                                     "earlier block of the problem produces (the blocks are not in execution order)")
                run_block(blk, values)  # warm-up
                t0 = time.perf_counter()
                outs = run_block(blk, values)
                host_s[b.id] = time.perf_counter() - t0
                for n, v in outs.items():
                    values[n] = v
                    producer[n] = b.id
            from .blocks import fill_structure
            chained = fill_structure(structure, values)
            references = [model(x) for x in inputs]
        err = max_abs_error(chained, references[0])
        if err is None or not math.isfinite(err) or err > 1e-4 * (1 + _max_abs(references[0])):
            raise InputError(f"the blocks rebuilt from the mapping do not reproduce the model "
                             f"'{model_spec}' (max abs error {err}): was the problem profiled from this model?")
    finally:
        torch.set_num_threads(old_threads)

    assign = scored.assignment
    src_dev, snk_dev = p.devices[p.source].id, p.devices[p.sink].id
    dev_of = {b: assign[b] for b in assign}
    dev_of[SOURCE] = src_dev
    # what each device needs from each producer: one channel per (producer, consumer device)
    need: dict[tuple[str, str], list[str]] = {}
    consumers: dict[tuple[str, str], list[str]] = {}
    for b in p.blocks:
        for n in blocks[b.id].inputs:
            prod = producer[n]
            if dev_of[prod] != assign[b.id]:
                key = (prod, assign[b.id])
                if n not in need.setdefault(key, []):
                    need[key].append(n)
                consumers.setdefault(key, []).append(b.id)
    for n in out_names:
        prod = producer[n]
        if dev_of[prod] != snk_dev:
            key = (prod, snk_dev)
            if n not in need.setdefault(key, []):
                need[key].append(n)
            consumers.setdefault(key, []).append("@output")
    used = {assign[b] for b in assign} | {src_dev, snk_dev}
    world = [d.id for d in p.devices if d.id in used]
    channels = []
    for k, ((prod, dst), names) in enumerate(need.items()):
        src = dev_of[prod]
        layout = [value_layout(values[n]) for n in names]
        ob = object_bytes_for(names, values)
        ia, ic = p.device_index[src], p.device_index[dst]
        channels.append({"id": k, "producer": prod, "src": src, "dst": dst, "names": names,
                         "consumers": sorted(set(consumers[(prod, dst)])), "layout": layout, "object_bytes": ob,
                         "nbytes": message_bytes(layout, ob), "latency_s": float(p.latency[ia, ic]),
                         "bandwidth_bytes_per_s": float(p.bandwidth[ia, ic]),
                         "medium": p.media[int(p.medium_of[ia, ic])][0] if p.medium_of[ia, ic] >= 0 else None})

    ct = {b.id: float(p.compute_time[i, p.device_index[assign[b.id]]]) for i, b in enumerate(p.blocks)}
    if emulate and time_scale is None:
        time_scale = auto_time_scale(ct, host_s)
    order = {d: list(bs) for d, bs in (scored.order or {}).items()}
    spec = {
        "model": model_spec, "seed": seed, "threads": threads, "input_shape": shape, "in_name": in_name,
        "output_structure": structure, "output_names": out_names, "world": world,
        "source": src_dev, "sink": snk_dev, "order": order,
        "blocks": {b.id: {"device": assign[b.id], "fx_nodes": list(b.fx_nodes), "compute_s": ct[b.id]}
                   for b in p.blocks},
        "channels": channels, "emulate": emulate, "time_scale": float(time_scale or 1.0),
        "n_single": inferences + 1, "n_stream": inferences, "n_inputs": inferences,
        "timeout_s": timeout_s,
        "master_addr": os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "master_port": int(os.environ.get("MASTER_PORT") or free_port()),
    }
    keep = {"references": references, "host_s": host_s}
    return spec, keep


#: headroom of the automatic time scale: the slowest block (relative to its device) uses at
#: most this share of its emulated time on the host, so CPU sharing between workers and the
#: host's own jitter stay inside the wait.
AUTO_SCALE_HEADROOM = 3.0
#: the automatic scale never exceeds this: a block predicted in microseconds on a fast
#: device would otherwise slow the whole run by thousands; such a block then runs longer
#: than predicted, and the report shows it block by block.
AUTO_SCALE_MAX = 50.0


def auto_time_scale(compute_s: Mapping[str, float], host_s: Mapping[str, float]) -> float:
    """The smallest scale >= 1 at which every block's host time fits, with
    `AUTO_SCALE_HEADROOM`, in its emulated time (at most `AUTO_SCALE_MAX`)."""
    need = 1.0
    for b, t in compute_s.items():
        h = host_s.get(b, 0.0)
        if t > 0:
            need = max(need, AUTO_SCALE_HEADROOM * h / t)
        elif h > 0:
            need = max(need, 1.0)
    return float(min(round(need, 2), AUTO_SCALE_MAX)) if need > 1 else 1.0


def _max_abs(x) -> float:
    import torch
    leaves = [t for t in torch.utils._pytree.tree_leaves(x) if isinstance(t, torch.Tensor)]
    return max((float(t.abs().max()) for t in leaves if t.numel()), default=0.0)


def max_abs_error(out, ref) -> float | None:
    """Largest absolute difference between two outputs (tensors, possibly nested); None when
    their structure differs."""
    import torch
    a = torch.utils._pytree.tree_leaves(out)
    b = torch.utils._pytree.tree_leaves(ref)
    if len(a) != len(b):
        return None
    err = 0.0
    for x, y in zip(a, b):
        if isinstance(x, torch.Tensor) != isinstance(y, torch.Tensor):
            return None
        if isinstance(x, torch.Tensor):
            if x.shape != y.shape:
                return None
            if x.numel():
                err = max(err, float((x.double() - y.double()).abs().max()))
        elif x != y:
            return None
    return err


def outputs_close(out, ref) -> bool:
    import torch
    a = torch.utils._pytree.tree_leaves(out)
    b = torch.utils._pytree.tree_leaves(ref)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, torch.Tensor):
            if not isinstance(y, torch.Tensor) or x.shape != y.shape or not torch.allclose(x, y, rtol=1e-5, atol=1e-6):
                return False
        elif x != y:
            return False
    return True

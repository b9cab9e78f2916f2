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
    """(Problem, the evaluator's re-scored Plan). Raises `PlanError` / `ProblemError`.
    A problem with scenarios has its blocks checked by `conditional.describe` (routers and
    exit heads carry no fx nodes)."""
    from .. import api
    from ..loader import load

    p = load(problem)
    scored = api.evaluate(p, plan)
    if scored.split:                     # split choices (SPEC 6): the plan's own expansion
        p = p.expand(scored.split)
    if scored.violations:
        raise PlanError(f"the plan is infeasible on problem '{p.name}': " + "; ".join(scored.violations[:3]))
    p = _expanded_by_plan(p, scored)
    if p.scenarios:
        return p, scored
    for b in p.blocks:
        if not b.fx_nodes:
            raise InputError(f"block '{b.id}' cannot be rebuilt: the problem gives no fx_nodes for it "
                             "(profile the model with 'placement profile' to get the block-to-module mapping)")
    return p, scored


def _expanded_by_plan(p: Problem, scored) -> Problem:
    """The problem expanded by the plan's split choice (SPEC 6) when the problem model has
    choices (``Problem.expand``, issue 13); else the problem as loaded (max ways)."""
    split = getattr(scored, "split", None)
    if split and hasattr(p, "expand"):
        return p.expand(split)
    return p


def _shard_mode(p: Problem, b) -> str:
    """The split mode of shard block ``b`` (the loader keeps it in the block's meta)."""
    for raw in (p.spec.get("model") or {}).get("blocks", ()):
        if raw.get("id") == b.id:
            mode = (raw.get("meta") or {}).get("mode")
            if mode:
                return mode
    raise InputError(f"block '{b.id}': a shard of '{b.origin}' without its split mode")


def _prepare_shards(p: Problem, b, blocks: dict, values: dict, model, gm, derived: dict, descs: dict) -> None:
    """Replace the rebuilt whole block of every shard of ``b.origin`` by its shard (see
    `shards.plan_shards`), once, at its first shard; the values the shards read and the
    block's outputs become recipes in ``derived``."""
    from . import shards as SH

    if b.id in descs:
        return
    sids = [x.id for x in p.blocks if x.origin == b.origin]
    whole = blocks[b.id]
    for n in whole.inputs:
        if n not in values and SH.resolvable(n, values, derived):
            SH.resolve(n, values.__getitem__, lambda k, v, _: values.__setitem__(k, v), derived)
    missing = [n for n in whole.inputs if n not in values]
    if missing:
        raise InputError(f"block '{b.origin}' cannot be rebuilt: it reads {missing[:3]}, which no "
                         "earlier block of the problem produces (the blocks are not in execution order)")
    try:
        made = SH.plan_shards(b.origin, sids, _shard_mode(p, b), whole, values, model, gm, b.fx_nodes, derived)
    except SH.ShardError as exc:
        raise InputError(f"split block '{b.origin}' cannot run as shards: {exc}") from None
    for sid, desc in made.items():
        descs[sid] = desc
        blocks[sid] = SH.runtime_shard(blocks[sid], desc, model)


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
        from profiles.graph import trace_options
        traced_as = trace_options((p.spec.get("model") or {}).get("meta"))
        gm = trace_model(model, **traced_as)
        in_name = placeholder_name(gm)
        structure, out_names = output_names(gm)
        blocks = rebuild(gm, [(b.id, b.fx_nodes) for b in p.blocks])
        derived: dict[str, tuple] = {}      # split blocks: slices and gathers (runtime/shards.py)
        shard_desc: dict[str, dict] = {}
        shape = input_shape(p, model)
        g = torch.Generator().manual_seed(seed + 1000)
        inputs = [torch.randn(*shape, generator=g) for _ in range(inferences)]
        # the chain of rebuilt blocks on the first input: values, producers, host times
        values: dict[str, Any] = {in_name: inputs[0]}
        producer: dict[str, str] = {in_name: SOURCE}
        host_s: dict[str, float] = {}
        with torch.no_grad():
            for b in p.blocks:
                if b.origin is not None:
                    _prepare_shards(p, b, blocks, values, model, gm, derived, shard_desc)
                blk = blocks[b.id]
                _resolve_all(blk.inputs, values, derived)
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
            _resolve_all(out_names, values, derived)
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
    # what each consumer needs from each producer on another device: one channel per
    # (producer, consumer), as the evaluator counts one transfer per edge (SPEC 4: each timed
    # from its own ready time in a single inference, each adding to its link's load in the
    # period); a channel per (producer, device) sent the bands of two co-located shards as
    # one message, twice as long as the two the model times (bench_runtime_shards, 53 %)
    need: dict[tuple[str, str], list[str]] = {}
    dst_of: dict[tuple[str, str], str] = {}
    from .shards import wires
    for b in p.blocks:
        for prod, n in (x for m in blocks[b.id].inputs for x in wires(m, producer, derived)):
            if dev_of[prod] != assign[b.id]:
                key = (prod, b.id)
                dst_of[key] = assign[b.id]
                if n not in need.setdefault(key, []):
                    need[key].append(n)
    for prod, n in (x for m in out_names for x in wires(m, producer, derived)):
        if dev_of[prod] != snk_dev:
            key = (prod, "@output")
            dst_of[key] = snk_dev
            if n not in need.setdefault(key, []):
                need[key].append(n)
    used = {assign[b] for b in assign} | {src_dev, snk_dev}
    world = [d.id for d in p.devices if d.id in used]
    channels = []
    for k, ((prod, consumer), names) in enumerate(need.items()):
        src, dst = dev_of[prod], dst_of[(prod, consumer)]
        layout = [value_layout(values[n]) for n in names]
        ob = object_bytes_for(names, values)
        ia, ic = p.device_index[src], p.device_index[dst]
        channels.append({"id": k, "producer": prod, "src": src, "dst": dst, "names": names,
                         "consumer": consumer, "consumers": [consumer], "layout": layout, "object_bytes": ob,
                         "nbytes": message_bytes(layout, ob), "latency_s": float(p.latency[ia, ic]),
                         "bandwidth_bytes_per_s": float(p.bandwidth[ia, ic]),
                         "medium": p.media[int(p.medium_of[ia, ic])][0] if p.medium_of[ia, ic] >= 0 else None})

    medium_sequence = _medium_sequence(scored, channels)
    ct = {b.id: float(p.compute_time[i, p.device_index[assign[b.id]]]) for i, b in enumerate(p.blocks)}
    if emulate and time_scale is None:
        time_scale = auto_time_scale(ct, host_s)
    order = {d: list(bs) for d, bs in (scored.order or {}).items()}
    spec = {
        "model": model_spec, "seed": seed, "threads": threads, "input_shape": shape, "in_name": in_name,
        "trace": traced_as,
        "output_structure": structure, "output_names": out_names, "world": world,
        "source": src_dev, "sink": snk_dev, "order": order,
        "blocks": {b.id: {"device": assign[b.id], "fx_nodes": list(b.fx_nodes), "compute_s": ct[b.id],
                          **({"shard": shard_desc[b.id]} if b.id in shard_desc else {})}
                   for b in p.blocks},
        "derived": derived,
        "channels": channels, "medium_sequence": medium_sequence,
        "emulate": emulate, "time_scale": float(time_scale or 1.0),
        "n_single": inferences + 1, "n_stream": inferences, "n_inputs": inferences,
        "timeout_s": timeout_s,
        "master_addr": os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "master_port": int(os.environ.get("MASTER_PORT") or free_port()),
    }
    keep = {"references": references, "host_s": host_s}
    return spec, keep


def channel_key(src: str, dst: str) -> tuple[str, str]:
    """The (producer, consumer) key of the channel of a transfer named as the evaluator
    names it (``input`` for the source's image, ``output`` for the sink)."""
    from .blocks import SOURCE
    return SOURCE if src == "input" else src, "@output" if dst == "output" else dst


def _medium_sequence(scored, channels: list[dict]) -> dict[str, list[int]]:
    """Per shared medium, the channels in the plan's sending order (SPEC 5a: the plan's
    ``medium_order``, or the evaluator's first-come-first-served order it re-scored with):
    a transfer ``[producer, consumer]`` travels in the channel of that pair
    (`channel_key`). Single inferences send in this order (`emulation.Medium`), as the
    prediction assumes."""
    by_key = {(c["producer"], c["consumer"]): c for c in channels}
    out: dict[str, list[int]] = {}
    for mid, transfers in (scored.medium_order or {}).items():
        seq: list[int] = []
        for prod, cons in transfers:
            c = by_key.get(channel_key(prod, cons))
            if c is not None and c.get("medium") == mid and c["id"] not in seq:
                seq.append(c["id"])
        if seq:
            out[mid] = seq
    return out


def _resolve_all(names, values: dict, derived: dict) -> None:
    """Make the slices and gathers among ``names`` whose ingredients are in ``values``."""
    from .shards import resolvable, resolve

    for n in names:
        if n not in values and n in derived and resolvable(n, values, derived):
            resolve(n, values.__getitem__, lambda k, v, _: values.__setitem__(k, v), derived)


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

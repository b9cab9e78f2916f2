"""Running conditional models (SPEC section 10): one scenario per inference.

A problem with ``model.scenarios`` (built by `profiles.conditional`) has blocks of several
source models (a generalist ``g/...`` and experts ``e1/...``, or one model with exit heads
``exit@X``), a ``router`` block, and profiled exit heads. Each block is rebuilt from what
the profiler recorded (`describe`):

* a block of a source model: the model named by ``model.meta.sources[block.meta.source]``
  (a timm name with ``pretrained=False``, or ``package.module:callable``), built with its
  own seed (`source_seed`: the same seed in every process, a different one per expert so
  that experts of one architecture are different models), traced, and cut out by the
  block's ``fx_nodes`` (as for any profiled model, `placement.runtime.blocks`). Its values
  are named ``<source>/<fx node>``; the image is `IMAGE`, or `ROUTER_IMAGE` for a source
  fed by the router (an expert);
* the image block (``meta.image``, id ``input``): the image at the source (`IMAGE`), sent
  to the generalist and the router (problems profiled before it existed have the router
  read the image from the source, a message their problem has no edge for);
* the router: top-k confidence over the generalist's logits (``meta.top_k``); its output
  `ROUTER_DECISION` is two float32 (top-1 class, confidence), sent with the image it
  forwards (`ROUTER_IMAGE`) to the chosen expert, or to ``sink`` when no expert runs;
* an exit head (``meta.exit_head``): pool, LayerNorm, Linear (`profiles.conditional`'s
  ``ExitHead``), seeded by its index, on the output of the block it follows.

**Which scenario runs.** The scenario of every inference is fixed before the workers start
(``--scenario NAME``, else sampled from the probabilities with ``--seed``) and written in the
run description: the router computes its real confidence, but with random weights that
confidence decides nothing worth measuring, so the branch taken is the scenario's. Every
worker reads it, so a skipped block neither computes nor receives, and nothing is sent for
it: a message travels only where the scenario's reduced problem (SPEC 10) has a transfer,
plus the messages that problem has no edge for (listed as such in the report).

**Output check.** For each inference, the sink's result (the results of the scenario's
output blocks by block id: a final head's logits, the router's decision, an exit head's
logits) is compared with the reference computation of that scenario on the unsplit models:
the whole source models (their output, or the value of the node an exit head reads, taken
from one whole-graph run), then the router or the exit head on it (`references`).

This module imports torch only inside functions that need it.
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InputError

#: value names of the image at the source, and of the image and decision the router forwards
IMAGE = "@image"
IMAGE_BLOCK_OUT = "input/image"     # the value of the image block (``meta.image``: the image at the source)
ROUTER_IMAGE = "router/image"
ROUTER_DECISION = "router/decision"


# ----------------------------------------------------------------------------------------
# what each block is rebuilt from


def source_key(bid: str, meta: Mapping[str, Any]) -> str:
    """The source model a block comes from: ``meta.source``, else the id's prefix
    (``g/stem`` -> ``g``; problems written before ``meta.source``), else ``""`` (the one
    model of an early-exit problem)."""
    if "source" in meta:
        return str(meta["source"])
    if "model" in meta and "/" in bid:
        return bid.split("/", 1)[0]
    return ""


def source_seed(seed: int, key: str) -> int:
    """The weights' seed of source model ``key``: ``seed`` for the generalist and an
    early-exit model, ``seed + k`` for expert ``e<k>``, another fixed offset otherwise."""
    if key in ("", "g"):
        return seed
    if key[:1] == "e" and key[1:].isdigit():
        return seed + int(key[1:])
    return seed + 1 + zlib.crc32(key.encode()) % 100_000


def exit_seed(seed: int, index: int) -> int:
    return seed + 200_000 + index


def describe(p, model: str | None) -> tuple[dict[str, dict], dict[str, dict]]:
    """(sources: key -> {"model", "seed_key"}, blocks: id -> how to rebuild it).

    Raises `InputError` naming the block when the problem does not say what a block is
    (no ``fx_nodes`` and not a router or exit head, or a source model nobody names)."""
    meta = (p.spec.get("model") or {}).get("meta") or {}
    named = dict(meta.get("sources") or {})
    by_id = {b.id: b for b in p.blocks}
    preds: dict[str, list[str]] = {b.id: [] for b in p.blocks}
    for k in range(p.n_edges):
        preds[p.blocks[int(p.edge_dst[k])].id].append(p.blocks[int(p.edge_src[k])].id)
    sources: dict[str, dict] = {}
    blocks: dict[str, dict] = {}
    exits = 0
    raw = {b.get("id"): b.get("meta") or {} for b in (p.spec.get("model") or {}).get("blocks") or ()}
    for b in p.blocks:
        bm = raw.get(b.id) or {}
        if b.origin is not None:
            raise InputError(f"block '{b.id}' is a shard of split block '{b.origin}': the runtime executes "
                             "whole blocks only (plan without splitting: ways [1])")
        if "image" in bm:
            blocks[b.id] = {"kind": "image", "preds": preds[b.id]}
            continue
        if "router" in bm:
            blocks[b.id] = {"kind": "router", "top_k": int(bm.get("top_k") or 5), "preds": preds[b.id]}
            continue
        if "exit_head" in bm:
            eh = bm["exit_head"]
            after = eh.get("after")
            if after not in by_id:
                raise InputError(f"block '{b.id}': meta.exit_head.after names no block of the problem ({after!r})")
            blocks[b.id] = {"kind": "exit", "after": after, "input_node": eh.get("input_node"),
                            "rank": len(eh["input_shape"]), "in_features": int(eh["in_features"]),
                            "num_classes": int(eh["num_classes"]), "index": exits, "preds": preds[b.id]}
            exits += 1
            continue
        if not b.fx_nodes:
            raise InputError(f"block '{b.id}' cannot be rebuilt: the problem gives no fx_nodes for it and it is "
                             "neither a router nor an exit head (profile it with 'placement profile')")
        key = source_key(b.id, bm)
        if key not in sources:
            # --model names the one model of an early-exit problem; experts come from meta.sources,
            # or from the blocks' meta.model (a timm name) in files written before it
            spec = (model if key == "" and model else None) or named.get(key) or bm.get("model")
            if not spec:
                raise InputError(f"block '{b.id}' cannot be rebuilt: no model is named for its source "
                                 f"'{key}' (model.meta.sources), give --model")
            sources[key] = {"model": str(spec)}
        blocks[b.id] = {"kind": "model", "source": key, "fx_nodes": list(b.fx_nodes), "preds": preds[b.id]}
    images = {bid for bid, d in blocks.items() if d["kind"] == "image"}
    routers = {bid for bid, d in blocks.items() if d["kind"] == "router"}
    for d in blocks.values():
        d["image_fed"] = any(x in images for x in d["preds"])
        d["router_fed"] = any(x in routers for x in d["preds"])
    for key, s in sources.items():  # which image a source reads: the image block's, the router's, or the source's
        mine = [d for d in blocks.values() if d.get("source") == key]
        s["image"] = IMAGE_BLOCK_OUT if any(d["image_fed"] for d in mine) else \
            ROUTER_IMAGE if any(d["router_fed"] for d in mine) else IMAGE
    return sources, blocks


# ----------------------------------------------------------------------------------------
# modules (torch)


class _Named:
    """A rebuilt block with the run's value names: ``module(*inputs) -> outputs``."""

    def __init__(self, fn, n_used: int):
        self.fn = fn
        self.n_used = n_used

    def __call__(self, *xs):
        return self.fn(*xs[: self.n_used])


def router_module(top_k: int):
    import torch

    def route(logits, image):
        with torch.no_grad():
            prob = torch.softmax(logits.float().reshape(logits.shape[0], -1), dim=-1)
            k = min(top_k, prob.shape[-1])
            top = prob.topk(k, dim=-1)
            decision = torch.stack([top.indices[:, 0].float(), top.values.sum(dim=-1)], dim=-1)
        return decision, image
    return route


def exit_module(desc: Mapping[str, Any], seed: int):
    import torch

    from profiles.conditional import _ExitHead

    torch.manual_seed(exit_seed(seed, desc["index"]))
    head = _ExitHead(desc["rank"], desc["in_features"], desc["num_classes"]).eval()

    def run(x):
        with torch.no_grad():
            return (head(x),)
    return run, head


class _Source:
    """One source model, built and traced once per process."""

    def __init__(self, key: str, spec: Mapping[str, Any], seed: int):
        from .blocks import build_model, output_names, placeholder_name, trace_model

        self.key = key
        self.model = build_model(spec["model"], source_seed(seed, key))
        self.gm = trace_model(self.model)
        self.in_name = placeholder_name(self.gm)
        self.structure, self.out_names = output_names(self.gm)
        self.ext_in = spec.get("image", IMAGE)

    def name(self, n: str) -> str:
        return f"{self.key}/{n}"


def build_blocks(sources: Mapping[str, dict], descs: Mapping[str, dict], want: Sequence[str], seed: int,
                 names: Mapping[str, dict] | None = None) -> tuple[dict[str, Any], dict[str, _Source]]:
    """The `RuntimeBlock` of every block in ``want``, with the run's value names, and the
    source models built for them. A router's or exit head's input is named from the model
    it reads, or from ``names`` (the supervisor's, in a worker that does not build that
    model). Raises `RebuildError` naming the block."""
    from .blocks import RebuildError, RuntimeBlock, rebuild

    built: dict[str, _Source] = {}
    out: dict[str, Any] = {}
    for key in dict.fromkeys(descs[b]["source"] for b in want if descs[b]["kind"] == "model"):
        if key not in built:
            built[key] = _Source(key, sources[key], seed)
    identity = {key: any(d["kind"] == "model" and d["source"] == key and d["fx_nodes"] == [built[key].in_name]
                         for d in descs.values()) for key in built}
    for bid in want:
        d = descs[bid]
        if d["kind"] == "image":
            out[bid] = RuntimeBlock(bid, _identity, [IMAGE], [IMAGE_BLOCK_OUT])
            continue
        if d["kind"] == "router":
            logits = names[bid]["inputs"][:1] if names else \
                [r for p_ in d["preds"] if descs[p_]["kind"] == "model" for r in descs_results(descs, p_, built)]
            if not logits:
                raise RebuildError(f"block '{bid}' (the router) cannot be rebuilt: no block feeds it the logits")
            # the image: from the image block (problems profiled with it), else from the source
            image = IMAGE_BLOCK_OUT if d["image_fed"] else IMAGE
            out[bid] = RuntimeBlock(bid, router_module(d["top_k"]), [logits[0], image],
                                    [ROUTER_DECISION, ROUTER_IMAGE])
            continue
        if d["kind"] == "exit":
            fn, _ = exit_module(d, seed)
            src_in = names[bid]["inputs"][0] if names else exit_input(descs, bid, built)
            out[bid] = RuntimeBlock(bid, fn, [src_in], [f"{bid}/logits"])
            continue
        src = built[d["source"]]
        raw = rebuild(src.gm, [(bid, d["fx_nodes"])])[bid]
        is_identity = d["fx_nodes"] == [src.in_name]

        def name_in(n: str, src=src, is_identity=is_identity) -> str:
            if n == src.in_name and (is_identity or not identity[src.key]):
                return src.ext_in
            return src.name(n)
        inputs = [name_in(n) for n in raw.inputs]
        outputs = [src.name(n) for n in raw.outputs]
        if is_identity:
            outputs = [src.name(src.in_name)]
        n_used = len(inputs)
        if src.ext_in in inputs and src.ext_in == ROUTER_IMAGE:
            inputs.append(ROUTER_DECISION)   # carried with the image, as the problem's edge counts it
        out[bid] = RuntimeBlock(bid, _Named(raw.module, n_used), inputs, outputs)
    return out, built


def _identity(x):
    return (x,)


def descs_results(descs: Mapping[str, dict], bid: str, built: Mapping[str, _Source],
                  outputs: Sequence[str] = ()) -> list[str]:
    """The values a block delivers as its result (to ``sink`` when it ends a scenario, to the
    router): a source model's outputs for its final block, the router's decision, an exit
    head's logits; for any other block that ends a scenario, its ``outputs``."""
    d = descs[bid]
    if d["kind"] == "image":
        return [IMAGE_BLOCK_OUT]
    if d["kind"] == "router":
        return [ROUTER_DECISION]
    if d["kind"] == "exit":
        return [f"{bid}/logits"]
    src = built[d["source"]]
    mine = set(d["fx_nodes"])
    return [src.name(n) for n in src.out_names if n in mine] or list(outputs)


def exit_input(descs: Mapping[str, dict], bid: str, built: Mapping[str, _Source]) -> str:
    d = descs[bid]
    after = descs[d["after"]]
    if after["kind"] != "model":
        from .blocks import RebuildError
        raise RebuildError(f"block '{bid}' cannot be rebuilt: it follows '{d['after']}', not a model block")
    src = built[after["source"]]
    node = d.get("input_node")
    if not node:  # problems profiled before input_node was recorded: the block's first output
        from profiles.graph import extract_block
        node = extract_block(src.gm, after["fx_nodes"]).outputs[0]
    return src.name(node)


def rebuild_for_worker(spec: Mapping[str, Any], mine: Sequence[str]) -> dict[str, Any]:
    """A worker's blocks (`placement.runtime.worker.Worker.setup`)."""
    import gc

    cond = spec["conditional"]
    out, built = build_blocks(cond["sources"], cond["blocks"], mine, spec["seed"], cond["names"])
    need = {b: (cond["names"][b]["inputs"], cond["names"][b]["outputs"]) for b in mine}
    for b, blk in out.items():
        if (blk.inputs, blk.outputs) != tuple(map(list, need[b])):
            raise RuntimeError(f"block '{b}' rebuilt with other value names than the supervisor's")
    del built
    gc.collect()
    return out


# ----------------------------------------------------------------------------------------
# the supervisor's side: scenarios per inference, references, channels


def scenario_sequence(p, scenario: str | None, n_single: int, n_stream: int, seed: int) -> tuple[list[str], int]:
    """(the scenario of every inference id, the number of warm-up inferences first).

    Warm-up: one single inference per scenario that the run uses (so every block has run
    once before it is measured); then ``n_single`` single inferences and ``n_stream``
    stream inputs, all of ``scenario``, or each sampled from the probabilities with
    ``seed``."""
    names = [s.name for s in p.scenarios]
    if scenario is not None:
        return [scenario] * (1 + n_single + n_stream), 1
    probs = np.array([s.probability for s in p.scenarios], dtype=float)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(names), size=n_single + n_stream, p=probs / probs.sum())
    return names + [names[k] for k in drawn], len(names)


def _capture(gm, x, names: set[str]) -> dict[str, Any]:
    """The values of the nodes ``names`` in one whole run of the traced model on ``x``."""
    import torch
    from torch import fx

    got: dict[str, Any] = {}

    class Grab(fx.Interpreter):
        def run_node(self, n):
            v = super().run_node(n)
            if n.name in names:
                got[n.name] = v
            return v
    with torch.no_grad():
        Grab(gm).run(x)
    return got


def references(p, descs, built: Mapping[str, _Source], names, inputs, seed: int) -> dict[str, list[dict]]:
    """scenario -> per input, the reference result: block id -> tuple of its result values,
    for the scenario's output blocks, computed on the unsplit models (module docstring)."""
    import torch

    outs_by_s = scenario_outputs(p)
    per_input = []
    heads = {b: exit_module(d, seed)[1] for b, d in descs.items() if d["kind"] == "exit"}
    for x in inputs:
        vals: dict[str, Any] = {}
        with torch.no_grad():
            for key, src in built.items():
                wanted = {n for n in src.out_names}
                wanted |= {v.split("/", 1)[1] for b, d in descs.items() if d["kind"] == "exit"
                           for v in [names[b]["inputs"][0]] if v.startswith(key + "/")}
                # an output block of a scenario that is not a model's last block: its outputs
                for b in names:
                    if descs[b]["kind"] == "model" and descs[b]["source"] == key:
                        wanted |= {o.split("/", 1)[1] for o in names[b]["results"]}
                got = _capture(src.gm, x, wanted)
                if len(src.out_names) == 1 and src.structure == ("@node", src.out_names[0]):
                    got[src.out_names[0]] = src.model(x)   # the unsplit nn.Module itself
                vals.update({src.name(n): v for n, v in got.items()})
            for b, d in descs.items():
                if d["kind"] == "router":
                    vals[ROUTER_DECISION] = router_module(d["top_k"])(vals[names[b]["inputs"][0]], x)[0]
                elif d["kind"] == "exit":
                    vals[f"{b}/logits"] = heads[b](vals[names[b]["inputs"][0]])
        per_input.append(vals)
    return {s: [{b: tuple(v[n] for n in names[b]["results"]) for b in outs} for v in per_input]
            for s, outs in outs_by_s.items()}


def scenario_outputs(p) -> dict[str, list[str]]:
    """scenario -> its output blocks (no successor that runs: their results go to ``sink``)."""
    out = {}
    for k, sc in enumerate(p.scenarios):
        q, _ = p.scenario_problem(k)
        out[sc.name] = [q.blocks[b].id for b in q.output_blocks]
    return out


def build_scenario_run(p, scored, model: str | None, *, scenario: str | None, inferences: int, emulate: bool,
                       time_scale: float | None, threads: int, seed: int, timeout_s: float):
    """(the run description every worker reads, what the supervisor keeps), as
    `prepare.build_run` for a plain problem."""
    import os
    import time

    import torch

    from .blocks import SOURCE, message_bytes, object_bytes_for, run_block, value_layout
    from .prepare import auto_time_scale, free_port, input_shape, max_abs_error

    names_s = [s.name for s in p.scenarios]
    if scenario is not None and scenario not in names_s:
        from ..errors import did_you_mean
        hint = did_you_mean(scenario, names_s)
        raise InputError(f"--scenario: '{scenario}' is not a scenario of problem '{p.name}'"
                         + (f" ({hint})" if hint else "") + f"; its scenarios: {', '.join(names_s)}")
    sources, descs = describe(p, model)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ids = [b.id for b in p.blocks]
        blocks, built = build_blocks(sources, descs, ids, seed)
        names = {b: {"inputs": list(blocks[b].inputs), "outputs": list(blocks[b].outputs),
                     "results": descs_results(descs, b, built, blocks[b].outputs)} for b in ids}
        shape = input_shape(p, next(iter(built.values())).model)   # the generalist's, or the one model's
        g = torch.Generator().manual_seed(seed + 1000)
        inputs = [torch.randn(*shape, generator=g) for _ in range(inferences)]
        # every block on the first input (the router forwards the image to every expert)
        values: dict[str, Any] = {IMAGE: inputs[0]}
        producer: dict[str, str] = {IMAGE: SOURCE}
        host_s: dict[str, float] = {}
        for b in p.blocks:
            blk = blocks[b.id]
            missing = [n for n in blk.inputs if n not in values]
            if missing:
                raise InputError(f"block '{b.id}' cannot be rebuilt: it reads {missing[:3]}, which no earlier "
                                 "block of the problem produces")
            run_block(blk, values)
            t0 = time.perf_counter()
            outs = run_block(blk, values)
            host_s[b.id] = time.perf_counter() - t0
            for n, v in outs.items():
                values[n] = v
                producer.setdefault(n, b.id)
        refs = references(p, descs, built, names, inputs, seed)
        for s, per in refs.items():
            chained = {b: tuple(values[n] for n in names[b]["results"]) for b in per[0]}
            err = max_abs_error(chained, per[0])
            if err is None or not math.isfinite(err) or err > 1e-4 * (1 + _max_abs(per[0])):
                raise InputError(f"scenario '{s}': the blocks rebuilt from the mapping do not reproduce the "
                                 f"unsplit models (max abs error {err}): was the problem profiled from "
                                 f"{', '.join(sorted({v['model'] for v in sources.values()}))}?")
    finally:
        torch.set_num_threads(old_threads)
    del built

    assign = scored.assignment
    src_dev, snk_dev = p.devices[p.source].id, p.devices[p.sink].id
    dev_of = dict(assign)
    dev_of[SOURCE] = src_dev
    outs_by_s = scenario_outputs(p)
    runs: dict[str, list[str]] = {}
    # (producer, consumer device, names) -> the scenarios that use it and its consumers
    need: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
    for k, sc in enumerate(p.scenarios):
        _, keep = p.scenario_problem(k)
        active = [ids[i] for i in keep]
        runs[sc.name] = active
        per: dict[tuple[str, str], dict[str, list[str]]] = {}
        for b in active:
            for n in blocks[b].inputs:
                prod = producer[n]
                if dev_of[prod] != assign[b]:
                    e = per.setdefault((prod, assign[b]), {"names": [], "consumers": []})
                    if n not in e["names"]:
                        e["names"].append(n)
                    e["consumers"].append(b)
        for b in outs_by_s[sc.name]:
            if assign[b] != snk_dev:
                e = per.setdefault((b, snk_dev), {"names": [], "consumers": []})
                e["names"] += [n for n in names[b]["results"] if n not in e["names"]]
                e["consumers"].append("@output")
        for (prod, dst), e in per.items():
            c = need.setdefault((prod, dst, tuple(e["names"])), {"scenarios": [], "consumers": set()})
            c["scenarios"].append(sc.name)
            c["consumers"] |= set(e["consumers"])
    used = {assign[b] for b in assign} | {src_dev, snk_dev}
    world = [d.id for d in p.devices if d.id in used]
    channels = []
    for k, ((prod, dst, nms), e) in enumerate(need.items()):
        src = dev_of[prod]
        layout = [value_layout(values[n]) for n in nms]
        ob = object_bytes_for(nms, values)
        ia, ic = p.device_index[src], p.device_index[dst]
        channels.append({"id": k, "producer": prod, "src": src, "dst": dst, "names": list(nms),
                         "consumers": sorted(e["consumers"]), "scenarios": e["scenarios"], "layout": layout,
                         "object_bytes": ob, "nbytes": message_bytes(layout, ob),
                         "latency_s": float(p.latency[ia, ic]), "bandwidth_bytes_per_s": float(p.bandwidth[ia, ic]),
                         "medium": p.media[int(p.medium_of[ia, ic])][0] if p.medium_of[ia, ic] >= 0 else None})

    ct = {b.id: float(p.compute_time[i, p.device_index[assign[b.id]]]) for i, b in enumerate(p.blocks)}
    if emulate and time_scale is None:
        time_scale = auto_time_scale(ct, host_s)
    seq, n_warm = scenario_sequence(p, scenario, inferences, inferences, seed)
    order = {d: list(bs) for d, bs in (scored.order or {}).items()}
    spec = {
        "model": None, "seed": seed, "threads": threads, "input_shape": list(shape), "in_name": IMAGE,
        "output_structure": None, "output_names": [], "world": world,
        "source": src_dev, "sink": snk_dev, "order": order,
        "blocks": {b.id: {"device": assign[b.id], "fx_nodes": list(b.fx_nodes or ()), "compute_s": ct[b.id]}
                   for b in p.blocks},
        "channels": channels, "emulate": emulate, "time_scale": float(time_scale or 1.0),
        "n_single": n_warm + inferences, "n_stream": inferences, "n_inputs": inferences,
        "timeout_s": timeout_s,
        "master_addr": os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "master_port": int(os.environ.get("MASTER_PORT") or free_port()),
        # scenarios (worker: Worker._tasks / _active / _output_names / _output_value)
        "conditional": {"sources": sources, "blocks": descs, "names": names},
        "scenario": scenario, "scenario_of": seq, "n_warmup": n_warm,
        "scenarios": {s: {"run": runs[s], "results": {b: names[b]["results"] for b in outs_by_s[s]},
                          "output_names": [n for b in outs_by_s[s] for n in names[b]["results"]]}
                      for s in names_s},
    }
    keep = {"references": refs, "host_s": host_s}
    return spec, keep


def _max_abs(x) -> float:
    from .prepare import _max_abs as m
    return m(x)

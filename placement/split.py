"""The split transform of SPEC section 6: a block with ``"split"`` becomes ``w`` shards.

Applied by the loader, so solvers only ever see ordinary blocks. The rules, for a block
``b`` split ``w`` ways (``w`` one of its ``ways``: the plan's choice, ``max(ways)`` when
the plan names none, SPEC section 6; ``w = 1`` keeps the block whole under its own id):

=====================  ===============================  ===============================
quantity (per shard)   ``mode: "tensor"``               ``mode: "spatial"``
=====================  ===============================  ===============================
flops                  ``flops / w + overhead_flops``   same
measured ``time_s``    scaled by shard flops / flops    same
params_bytes           ``params / w`` (weights divided) ``params`` (weights replicated)
activation_bytes       ``activation / w``               ``activation / w``
output_bytes           ``output`` (a full-size partial) ``output / w``
input (each edge in)   the whole tensor (replicated)    ``bytes / w + halo_bytes``
=====================  ===============================  ===============================

A tensor shard's output is a partial sum of the block's whole output (heads' share of the
attention projection, hidden units' share of the MLP's second layer, as the runtime computes
them: `placement.runtime.shards`): full size, summed by the consumer.

Edges: every edge ``u -> b`` becomes ``u -> b#k`` for every shard ``k``; every edge
``b -> v`` becomes ``b#k -> v``. When both ends are split the bytes multiply out: a spatial
shard of ``u`` sends its ``1/w_u`` part of the tensor, a tensor shard of ``u`` its whole
partial; of that, a spatial shard of ``v`` needs the ``1/w_v`` share (plus its halo's share),
a tensor shard all of it (tensor to tensor is then ``w_u x w_v`` full-size messages: the
all-reduce, done naively, each consumer shard summing the producer's partials); between
two SPATIAL blocks the bands are aligned instead, so shard ``k`` of ``u`` sends shard
``j`` of ``v`` the rows of its band that ``j``'s band plus halo reads (`pair_bytes`: its
own band's share to the shard over it, halo rows to the neighbours, nothing to the rest).
A split input block receives ``model.input_bytes`` the same way; a split output block
sends its shard's output (``output / w`` spatial, ``output`` tensor) per shard to ``sink``. Pins and ``allowed_devices`` apply to every
shard. Shard ids are ``"<id>#<k>"``.

How many ways is a decision of the plan (SPEC section 6): `expand` takes the choice,
``choice.get(id, max(ways))`` per split block; `placement.problem.Problem.expand` gives the
problem expanded by another choice, `Problem.split_combinations` lists them all. Every
per-shard quantity above is non-increasing in ``w`` (flops, time, weights, working memory,
output and every edge's bytes; a tensor shard's output and out-edges are constant in
``w``), which is what the bound over every choice relies on
(`placement.bounds`, docs/bounds.md). ``ways`` is at most 64
(`placement.schema.MAX_SPLIT_WAYS`).
"""

from __future__ import annotations

import math
from typing import Any, Collection, Mapping


def shard_id(block_id: str, k: int) -> str:
    return f"{block_id}#{k}"


def describe(choice: Mapping[str, int]) -> str:
    """``"a:2 b:1"``: a split choice in one short line (stats and messages)."""
    return " ".join(f"{b}:{w}" for b, w in choice.items())


def options(blocks: list[dict[str, Any]]) -> dict[str, tuple[int, ...]]:
    """Every block with a ``split`` entry -> its sorted, distinct ways (also one-option ones)."""
    return {b["id"]: tuple(sorted(set(b["split"]["ways"]))) for b in blocks if b.get("split")}


def pair_bytes(nbytes: float, wu: int, wv: int, mode_v: str | None, halo_v: float,
               ku: int | None = None, kv: int | None = None, mode_u: str | None = None) -> float:
    """Bytes shard ``ku`` of ``u`` (split ``wu`` ways, ``mode_u``; 1: whole) sends to shard
    ``kv`` of ``v`` (``wv`` ways, ``mode_v``, ``halo_v``) for an edge of ``nbytes`` (module
    docstring). Between two spatially split blocks the bands are aligned: ``v#kv`` needs rows
    ``[kv/wv - h/2, (kv+1)/wv + h/2)`` of the tensor (``h = halo_v / nbytes``), and ``u#ku``
    holds rows ``[ku/wu, (ku+1)/wu)`` (the first and last bands open-ended, so that every
    consumer shard receives ``nbytes / wv + halo_v`` in all, as from a whole producer); the
    edge carries their overlap, 0 for bands that do not touch. Otherwise every pair carries
    the same share: a whole or spatial producer's shard its ``1/wu`` part, a TENSOR producer's
    shard its whole partial sum (full size, module docstring), of which a spatial consumer
    shard takes its ``1/wv`` band plus the halo."""
    tensor_u = wu > 1 and mode_u == "tensor"
    fu = 1.0 if tensor_u else 1.0 / wu
    spatial_v = wv > 1 and mode_v == "spatial"
    if spatial_v and wu > 1 and mode_u == "spatial" and ku is not None and kv is not None and nbytes > 0:
        h = halo_v / nbytes
        lo = max(ku / wu if ku > 0 else -math.inf, kv / wv - h / 2)
        hi = min((ku + 1) / wu if ku < wu - 1 else math.inf, (kv + 1) / wv + h / 2)
        return nbytes * max(0.0, hi - lo)
    fv = 1.0 / wv if spatial_v else 1.0
    halo = halo_v * fu if spatial_v else 0.0
    return nbytes * fu * fv + halo


def expand(blocks: list[dict[str, Any]], edges: list[tuple[str, str, float]],
           pinned: dict[str, str], input_bytes: float, choice: Mapping[str, int] | None = None
           ) -> tuple[list[dict[str, Any]], list[tuple[str, str, float]], dict[str, str]]:
    """Expand split blocks, block ``b`` by ``choice.get(b, max(ways))`` ways (the caller
    checks that a choice is one of the block's ways: `placement.problem.Problem.expand`).
    ``blocks`` are validated block dicts (every field present), ``edges`` are ``(src, dst,
    bytes)``. Returns new lists; the inputs are not changed. Every block of the result has
    an ``input_bytes`` entry (what it gets from ``source`` if it has no predecessor)."""
    choice = choice or {}
    has_pred = {v for _, v, _ in edges}
    ways: dict[str, int] = {}
    modes: dict[str, str] = {}
    halos: dict[str, float] = {}
    out_blocks: list[dict[str, Any]] = []
    for blk in blocks:
        split = blk.get("split")
        w = int(choice.get(blk["id"], max(split["ways"]))) if split else 1
        base = {k: v for k, v in blk.items() if k != "split"}
        if base.get("input_bytes") is None:
            base["input_bytes"] = input_bytes
        if w <= 1:
            out_blocks.append(base)
            continue
        mode = split["mode"]
        ways[blk["id"]], modes[blk["id"]], halos[blk["id"]] = w, mode, split["halo_bytes"]
        shard_flops = blk["flops"] / w + split["overhead_flops"]
        scale = shard_flops / blk["flops"] if blk["flops"] > 0 else 1.0 / w
        for k in range(w):
            shard = dict(base)
            shard.update(
                id=shard_id(blk["id"], k),
                flops=shard_flops,
                params_bytes=blk["params_bytes"] / w if mode == "tensor" else blk["params_bytes"],
                activation_bytes=blk["activation_bytes"] / w,
                output_bytes=blk["output_bytes"] if mode == "tensor" else blk["output_bytes"] / w,
                time_s={key: t * scale for key, t in blk["time_s"].items()},
                origin=blk["id"],
                meta={**blk.get("meta", {}), "split_of": blk["id"], "shard": k, "ways": w,
                      "mode": mode},
            )
            if blk["id"] not in has_pred and mode == "spatial":
                shard["input_bytes"] = base["input_bytes"] / w + split["halo_bytes"]
            out_blocks.append(shard)
    if not ways:
        return out_blocks, list(edges), dict(pinned)

    def shards(b: str) -> list[str]:
        return [shard_id(b, k) for k in range(ways[b])] if b in ways else [b]

    out_edges: list[tuple[str, str, float]] = []
    for u, v, nbytes in edges:
        for ku, su in enumerate(shards(u)):
            for kv, sv in enumerate(shards(v)):
                out_edges.append((su, sv, pair_bytes(nbytes, ways.get(u, 1), ways.get(v, 1), modes.get(v),
                                                     halos.get(v, 0.0), ku, kv, modes.get(u))))
    out_pinned: dict[str, str] = {}
    for b, d in pinned.items():
        for s in shards(b):
            out_pinned[s] = d
    return out_blocks, out_edges, out_pinned


def relaxed(blocks: list[dict[str, Any]], edges: list[tuple[str, str, float]],
            pinned: dict[str, str], input_bytes: float, relax: Collection[str]
            ) -> tuple[list[dict[str, Any]], list[tuple[str, str, float]], dict[str, str]]:
    """The relaxation of every split choice at once (for lower bounds, docs/bounds.md): each
    block of ``relax`` is ONE block under its own id whose every quantity (flops, measured
    times, weights, working memory, output, input from ``source``) and every edge's bytes is
    the least over its ``ways`` of what one shard of that expansion has; the other split
    blocks expand by ``max(ways)`` as in `expand`. The blocks of any expansion map one to
    one onto a superset of this graph's (shard 0 standing for a relaxed block) at no lower
    cost, so no plan of any expansion beats the relaxation's optimum."""
    relax = set(relax)
    out_blocks, _, out_pinned = expand(blocks, edges, pinned, input_bytes, {b: 1 for b in relax})
    spec = {b["id"]: b for b in blocks}
    has_pred = {v for _, v, _ in edges}
    considered: dict[str, tuple[int, ...]] = {}
    for b in blocks:
        if b.get("split"):
            considered[b["id"]] = (tuple(sorted(set(b["split"]["ways"]))) if b["id"] in relax
                                   else (max(b["split"]["ways"]),))
    for blk in out_blocks:
        if blk["id"] not in relax:
            continue
        src = spec[blk["id"]]
        sp = src["split"]
        tensor = sp["mode"] == "tensor"
        qty: dict[str, list[float]] = {k: [] for k in ("flops", "scale", "params", "act", "out", "inp")}
        for w in considered[blk["id"]]:
            f = src["flops"] if w == 1 else src["flops"] / w + sp["overhead_flops"]
            qty["flops"].append(f)
            qty["scale"].append(f / src["flops"] if src["flops"] > 0 else 1.0 / w)
            qty["params"].append(src["params_bytes"] / w if tensor else src["params_bytes"])
            qty["act"].append(src["activation_bytes"] / w)
            qty["out"].append(src["output_bytes"] if tensor or w == 1 else src["output_bytes"] / w)
            spatial_in = not tensor and w > 1 and blk["id"] not in has_pred
            qty["inp"].append(blk["input_bytes"] / w + sp["halo_bytes"] if spatial_in else blk["input_bytes"])
        scale = min(qty["scale"])
        blk.update(flops=min(qty["flops"]), params_bytes=min(qty["params"]),
                   activation_bytes=min(qty["act"]), output_bytes=min(qty["out"]),
                   input_bytes=min(qty["inp"]),
                   time_s={key: t * scale for key, t in src["time_s"].items()},
                   meta={**src.get("meta", {}), "relaxed_split": list(considered[blk["id"]])})

    def n_shards(b: str) -> int:
        return 1 if b in relax or b not in considered else considered[b][0]

    def shards(b: str) -> list[str]:
        n = n_shards(b)
        return [shard_id(b, k) for k in range(n)] if n > 1 else [b]

    def mode_halo(v: str) -> tuple[str | None, float]:
        sp = spec[v].get("split")
        return (sp["mode"], sp["halo_bytes"]) if sp else (None, 0.0)

    out_edges: list[tuple[str, str, float]] = []
    for u, v, nbytes in edges:
        least = min(pair_bytes(nbytes, wu, wv, *mode_halo(v), ku, kv, mode_halo(u)[0])
                    for wu in considered.get(u, (1,)) for wv in considered.get(v, (1,))
                    for ku in range(wu) for kv in range(wv))
        for su in shards(u):
            for sv in shards(v):
                out_edges.append((su, sv, least))
    return out_blocks, out_edges, out_pinned


#: separator of the union's shard ids (``<id>@<ways>#<k>``, `union`).
UNION_SEP = "@"


def union(blocks: list[dict[str, Any]], edges: list[tuple[str, str, float]],
          pinned: dict[str, str], input_bytes: float, choose: Collection[str]
          ) -> tuple[list[dict[str, Any]], list[tuple[str, str, float]], dict[str, str],
                     list[tuple[str, int, int] | None]]:
    """The union of every expansion, for exact methods over the choices: each block of
    ``choose`` appears with the shards of EVERY one of its ways (ids ``<id>@<w>#<k>``, the
    whole block as ``<id>@1#0``), each exactly as `expand` makes it for that way; every edge
    ``u -> v`` appears once per pair of ways, shard to shard, with that pair's bytes. The
    other split blocks expand by ``max(ways)``. A choice selects the shards of its ways; the
    edges between selected shards are exactly that expansion's. Returns blocks, edges, pins,
    and per block of the result ``(block, ways, shard)`` for a shard of a choice, else None."""
    choose = set(choose)
    spec = {b["id"]: b for b in blocks}
    base_blocks, _, _ = expand(blocks, [], {}, input_bytes, {b: 1 for b in choose})
    has_pred = {v for _, v, _ in edges}
    out_blocks: list[dict[str, Any]] = []
    members: list[tuple[str, int, int] | None] = []
    nodes: dict[str, list[tuple[str, int, int]]] = {}    # file block -> [(node id, ways, shard)]
    for blk in base_blocks:
        origin = blk.get("origin") or blk["id"]
        if origin not in choose:
            out_blocks.append(blk)
            members.append(None)
            w = max(spec[origin]["split"]["ways"]) if spec[origin].get("split") else 1
            k = int(blk["id"].rsplit("#", 1)[1]) if blk.get("origin") else 0
            nodes.setdefault(origin, []).append((blk["id"], w, k))
            continue
        src = dict(spec[origin])
        if origin not in has_pred:
            src["input_bytes"] = blk["input_bytes"]
        for w in sorted(set(src["split"]["ways"])):
            shards, _, _ = expand([src], [], {}, input_bytes, {origin: w})
            for k, shard in enumerate(shards):
                shard = dict(shard, id=f"{origin}{UNION_SEP}{w}#{k}", origin=origin)
                if origin in has_pred:
                    shard["input_bytes"] = blk["input_bytes"]
                out_blocks.append(shard)
                members.append((origin, w, k))
                nodes.setdefault(origin, []).append((shard["id"], w, k))
    out_edges: list[tuple[str, str, float]] = []
    for u, v, nbytes in edges:
        sp = spec[v].get("split")
        mode, halo = (sp["mode"], sp["halo_bytes"]) if sp else (None, 0.0)
        mode_u = (spec[u].get("split") or {}).get("mode")
        for su, wu, ku in nodes[u]:
            for sv, wv, kv in nodes[v]:
                out_edges.append((su, sv, pair_bytes(nbytes, wu, wv, mode, halo, ku, kv, mode_u)))
    out_pinned = {node: d for b, d in pinned.items() for node, _, _ in nodes[b]}
    return out_blocks, out_edges, out_pinned, members

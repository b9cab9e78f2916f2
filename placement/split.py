"""The split transform of SPEC section 6: a block with ``"split"`` becomes ``w`` shards.

Applied by the loader, so solvers only ever see ordinary blocks. The rules, for a block
``b`` split ``w`` ways (``w = max(ways)``; see below why the largest):

=====================  ===============================  ===============================
quantity (per shard)   ``mode: "tensor"``               ``mode: "spatial"``
=====================  ===============================  ===============================
flops                  ``flops / w + overhead_flops``   same
measured ``time_s``    scaled by shard flops / flops    same
params_bytes           ``params / w`` (weights divided) ``params`` (weights replicated)
activation_bytes       ``activation / w``               ``activation / w``
output_bytes           ``output / w`` (output gathered) ``output / w``
input (each edge in)   the whole tensor (replicated)    ``bytes / w + halo_bytes``
=====================  ===============================  ===============================

Edges: every edge ``u -> b`` becomes ``u -> b#k`` for every shard ``k``; every edge
``b -> v`` becomes ``b#k -> v``. When both ends are split the bytes multiply out: a shard
of ``u`` sends its ``1/w_u`` part of the tensor, of which a spatial shard of ``v`` needs
the ``1/w_v`` share (plus its halo's ``1/w_u`` share), a tensor shard all of it.
A split input block receives ``model.input_bytes`` the same way; a split output block
sends ``output / w`` per shard to ``sink``. Pins and ``allowed_devices`` apply to every
shard. Shard ids are ``"<id>#<k>"``.

Why the largest ``w`` of ``ways``: a plan that co-locates shards approximates a smaller
split (4 shards on 2 devices acts as a 2-way split), at a cost that is never lower than the
real smaller split's: co-located shards still pay ``w`` times ``overhead_flops`` and ``w``
halos, a co-located ``tensor`` consumer's shards each receive the whole input, and
``spatial`` shards each count the replicated weights in the memory rule. So every plan's
cost and memory are conservative (a plan found is feasible and no better than reported),
but an exact method is optimal over the ``w``-way expansion, not over every listed way.
``ways`` is at most 64 (`placement.schema.MAX_SPLIT_WAYS`).
"""

from __future__ import annotations

from typing import Any


def shard_id(block_id: str, k: int) -> str:
    return f"{block_id}#{k}"


def expand(blocks: list[dict[str, Any]], edges: list[tuple[str, str, float]],
           pinned: dict[str, str], input_bytes: float
           ) -> tuple[list[dict[str, Any]], list[tuple[str, str, float]], dict[str, str]]:
    """Expand split blocks. ``blocks`` are validated block dicts (every field present),
    ``edges`` are ``(src, dst, bytes)``. Returns new lists; the inputs are not changed.
    Every block of the result has an ``input_bytes`` entry (what it gets from ``source``
    if it has no predecessor)."""
    has_pred = {v for _, v, _ in edges}
    ways: dict[str, int] = {}
    modes: dict[str, str] = {}
    halos: dict[str, float] = {}
    out_blocks: list[dict[str, Any]] = []
    for blk in blocks:
        split = blk.get("split")
        w = max(split["ways"]) if split else 1
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
                output_bytes=blk["output_bytes"] / w,
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
        fu = 1.0 / ways[u] if u in ways else 1.0
        spatial_v = modes.get(v) == "spatial"
        fv = 1.0 / ways[v] if spatial_v else 1.0
        halo = halos[v] * fu if spatial_v else 0.0
        for su in shards(u):
            for sv in shards(v):
                out_edges.append((su, sv, nbytes * fu * fv + halo))
    out_pinned: dict[str, str] = {}
    for b, d in pinned.items():
        for s in shards(b):
            out_pinned[s] = d
    return out_blocks, out_edges, out_pinned

"""Shards that a plan keeps on one device, made one whole block again (SPEC 6).

A method that chooses split degrees may return a plan in which every shard of a split block
runs on the same device: the split then buys nothing (no work runs in parallel) and costs
the recomputed halo rows of a spatial split, and `placement run` would run ``w`` shards and
their gather where one block does. `merge_colocated` rewrites such a plan with those blocks
whole (where ``1`` is one of their ways), on the same devices, and keeps the rewrite only
when the evaluator scores it feasible and no worse: the plan's ``split`` then says which
blocks really run in parallel.

The rewritten plan needs a device order and, with shared media, a sending order on each
medium. The merged block takes the place of its first or of its last shard in its device's
order (whichever the evaluator scores better; the first keeps every consumer after it, the
last every producer before it); the medium orders keep their transfers in sequence, each
shard's transfer renamed to its block's, repeats dropped.
"""

from __future__ import annotations

import math
import time
from typing import Mapping

import numpy as np

from .evaluator import Evaluation, evaluate, plan_problem
from .problem import Problem


def colocated(q: Problem, assignment, options: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    """Split block -> device, for each block of the expansion ``q`` whose shards all run on
    one device under ``assignment`` and that may be whole (``1`` in its ``options``)."""
    devs: dict[str, set[int]] = {}
    for i, b in enumerate(q.blocks):
        if b.origin is not None:
            devs.setdefault(b.origin, set()).add(int(assignment[i]))
    return {o: next(iter(s)) for o, s in devs.items() if len(s) == 1 and 1 in options.get(o, ())}


def merge_colocated(p: Problem, choice: Mapping[str, int], q: Problem, ev: Evaluation,
                    deadline: float = math.inf) -> tuple[dict[str, int], Problem, Evaluation] | None:
    """(new choice, its expansion, its evaluation) of the plan ``ev`` on ``q = p.expand(choice)``
    with co-located split blocks whole, or None when none can be (module docstring). All of
    them at once first; when that scores worse, one at a time, each kept when the plan stays
    feasible and no worse (shards on one device can still pay: a consumer elsewhere starts on
    the first band while the next is computed). No rewrite starts past ``deadline``
    (``time.monotonic()``); those made stand."""
    if not ev.feasible or time.monotonic() >= deadline:
        return None
    merged = colocated(q, ev.assignment, p.split_options)
    if not merged:
        return None
    best = _rewrite(p, choice, q, ev, merged)
    if best is None and len(merged) > 1:
        cur_choice, cur_q, cur_ev = dict(choice), q, ev
        for o, d in merged.items():
            if time.monotonic() >= deadline:
                break
            got = _rewrite(p, cur_choice, cur_q, cur_ev, {o: d})
            if got is not None:
                cur_choice, cur_q, cur_ev = got
        if cur_q is not q:
            best = cur_choice, cur_q, cur_ev
    return best


def _rewrite(p: Problem, choice: Mapping[str, int], q: Problem, ev: Evaluation,
             merged: Mapping[str, int]) -> tuple[dict[str, int], Problem, Evaluation] | None:
    """The plan ``ev`` on ``q`` with the blocks of ``merged`` (block -> its shards' device)
    whole, if feasible and no worse; else None."""
    new_choice = {**dict(choice), **{o: 1 for o in merged}}
    q2 = plan_problem(p, new_choice)

    def rename(block_id: str) -> str:
        base = q.blocks[q.block_index[block_id]].origin if block_id in q.block_index else None
        return base if base in merged else block_id

    dev_of = {q.blocks[i].id: int(d) for i, d in enumerate(ev.assignment)}
    a2 = np.array([merged[b.id] if b.id in merged else dev_of[b.id] for b in q2.blocks], dtype=np.int64)
    mo2 = _medium_orders(q, q2, ev, rename)
    best = None
    for where in ("first", "last"):
        ev2 = evaluate(q2, a2, _orders(q, q2, ev, rename, where), mo2)
        if ev2.feasible and (best is None or ev2.value < best.value):
            best = ev2
    if best is None or best.value > ev.value * (1 + 1e-12):
        return None
    return new_choice, q2, best


def _orders(q: Problem, q2: Problem, ev: Evaluation, rename, where: str) -> list[list[int]]:
    """Each device's order with the shards renamed to their block, kept at the first (or,
    read backwards, the last) shard's place."""
    out = []
    for seq in ev.order:
        ids = [rename(q.blocks[b].id) for b in seq]
        kept = list(dict.fromkeys(ids)) if where == "first" else list(dict.fromkeys(ids[::-1]))[::-1]
        out.append([q2.block_index[x] for x in kept])
    return out


def _medium_orders(q: Problem, q2: Problem, ev: Evaluation, rename):
    if not q.media or not ev.medium_order:
        return None
    from .media import transfer_names

    names = transfer_names(q)
    index2 = {pair: t for t, pair in enumerate(transfer_names(q2))}

    def ren(x: str) -> str:
        return x if x in ("input", "output") else rename(x)

    out = []
    for seq in ev.medium_order:
        got = [index2.get((ren(names[t][0]), ren(names[t][1]))) for t in seq]
        if None in got:
            return None                 # cannot happen: every merged transfer exists in q2
        out.append(list(dict.fromkeys(got)))   # in sequence, repeats dropped
    return out


__all__ = ["colocated", "merge_colocated"]

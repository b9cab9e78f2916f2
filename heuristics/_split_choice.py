"""How many ways to split each block, for the heuristics (SPEC section 6, issue 13).

A problem whose split blocks offer several ``ways`` leaves the split degree to the plan. The
heuristics choose it the same way: a plan is built for one expansion
(`placement.problem.Problem.expand`) by the method's own construction, and the choices are
compared by that plan's evaluator key ``(violation size, value)``:

1. the **max** expansion (every block at ``max(ways)``, what a method that cannot choose
   plans on) and the **whole** expansion (every block kept whole, ``1``, where ``ways``
   allows it, else its smallest way) are both planned, and the better one is the start (on
   a tie, the one with fewer shards);
2. a **coordinate descent over the blocks**: per split block, in topological order, every
   other way of that block is planned with the other blocks' choices fixed, and the degree
   whose plan is best (for latency: finishes earliest) is kept; passes repeat while one
   improves (at most `MAX_PASSES`), each plan looked at once (a cache by choice).

The search stops once a plan meets the bound over every choice (`Problem.lower_bound`):
that plan is optimal. The result is never worse than the method's plan of the max expansion nor than its plan of
the whole expansion (both are among the candidates, scored by the same evaluator). The clock
is read before every plan; a plan started before the deadline is the method's own, which
honours ``ctx.deadline``.

Nothing here scores a plan: every key comes from the method's pool, i.e. from the evaluator.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping

from placement.method import Context
from placement.problem import Problem, TOLERANCE
from placement.split import describe       # heft, dp and local call it as _split_choice.describe

#: at most this many passes of the per-block descent over the split degrees.
MAX_PASSES = 3


def split_options(p: Problem) -> dict[str, tuple[int, ...]]:
    """Block id -> its sorted ways, for every block of the file with a ``split``."""
    return {b: tuple(sorted(w)) for b, w in (getattr(p, "split_options", None) or {}).items()}


def choosable(p: Problem) -> list[str]:
    """The split blocks with more than one way, in a topological order of the file's blocks
    (the order of their first shard, or of the block itself, in ``p.topo``)."""
    opts = split_options(p)
    multi = {b for b, w in opts.items() if len(w) > 1}
    out: list[str] = []
    for i in p.topo:
        blk = p.blocks[i]
        b = blk.origin or blk.id
        if b in multi and b not in out:
            out.append(b)
    return out + sorted(multi - set(out))


def spatial_runs(p: Problem) -> list[tuple[list[str], int]]:
    """Runs of spatially split blocks to lay out as one band partition (DeepThings' and
    AOFL's tiles, here without fusing: each block still trades its halo): per way ``w`` above
    1, the maximal sequences, in the file's topological order, of two or more blocks with the
    ``spatial`` mode that allow ``w``, each reading the one before it. With one partition for
    the run, a band stays on its device from block to block and only the halos cross. Empty
    without split choices."""
    src = getattr(p, "_split_source", None)
    opts = split_options(p)
    if not src or not opts:
        return []
    spatial = {b["id"] for b in src["blocks"] if (b.get("split") or {}).get("mode") == "spatial"}
    reads = {(u, v) for u, v, *_ in src["edges"]}
    topo = choosable(p)
    out = []
    for w in sorted({w for ws in opts.values() for w in ws if w > 1}):
        run: list[str] = []
        for b in topo + [None]:
            if b is not None and b in spatial and w in opts[b] and (not run or (run[-1], b) in reads):
                run.append(b)
                continue
            if len(run) >= 2:
                out.append((run, w))
            run = [b] if (b is not None and b in spatial and w in opts[b]) else []
    return out


def max_choice(p: Problem) -> dict[str, int]:
    """Every split block at ``max(ways)`` (a plan that names no choice)."""
    return {b: max(w) for b, w in split_options(p).items()}


def whole_choice(p: Problem) -> dict[str, int]:
    """Every split block kept whole (``1``) where its ``ways`` allow it, else its fewest ways:
    the problem as if nothing were split."""
    return {b: (1 if 1 in w else min(w)) for b, w in split_options(p).items()}


def _frozen(choice: Mapping[str, int]) -> tuple:
    return tuple(sorted(choice.items()))


Planner = Callable[[Problem, Context], tuple[tuple[float, float], Any]]


def search(p: Problem, ctx: Context, plan: Planner, *, passes: int = MAX_PASSES,
           starts: tuple[Mapping[str, int], ...] | None = None) -> dict[str, Any]:
    """Choose the split degrees of ``p`` for the construction ``plan``.

    ``plan(q, ctx)`` plans the expansion ``q`` and returns ``(key, payload)``: the evaluator's
    ``(violation size, value)`` of its best plan (``(inf, inf)`` when it has none) and
    whatever the caller needs back (its pool, its candidate). Returns a dict with ``choice``
    (the best choice), ``problem`` (its expansion), ``key``, ``payload``, the payloads of the
    ``max`` and ``whole`` starts (``max_payload``, ``whole_payload``) and ``stats``
    (JSON-friendly: plans built, passes, the start, the values of the starts, time).
    """
    t0 = time.perf_counter()
    blocks = choosable(p)
    opts = split_options(p)
    seen: dict[tuple, tuple[tuple[float, float], Any]] = {}

    def run(choice: Mapping[str, int]):
        k = _frozen(choice)
        if k not in seen:
            q = p.expand(dict(choice))
            seen[k] = plan(q, ctx)
        return seen[k][0]

    first = [max_choice(p), whole_choice(p)] if starts is None else [dict(c) for c in starts]
    keys = []
    for c in first:
        if keys and ctx.expired():
            break
        keys.append((run(c), c))
    # on a tie the choice with fewer shards (fewer transfers to get wrong at run time)
    best_key, cur = min(keys, key=lambda kc: (kc[0], sum(kc[1].values())))
    cur = dict(cur)
    start = describe(cur)
    n_pass = 0
    # a plan that meets the bound over every choice is optimal: no other choice can beat it
    proven = (0, p.lower_bound() * (1 + TOLERANCE))
    improved = best_key > proven
    while improved and n_pass < passes and not ctx.expired():
        improved = False
        n_pass += 1
        for b in blocks:
            for w in opts[b]:
                if w == cur[b]:
                    continue
                if ctx.expired():
                    break
                c = {**cur, b: w}
                key = run(c)
                if _better(key, best_key):
                    best_key, cur, improved = key, c, True
                    if best_key <= proven:
                        improved = False
                        break
            if best_key <= proven:
                break
    best = seen[_frozen(cur)]
    stats = {"chosen": describe(cur), "start": start, "plans": len(seen), "passes": n_pass,
             "max_value": _value(seen.get(_frozen(first[0]))),
             "time_s": round(time.perf_counter() - t0, 4)}
    if len(first) > 1:
        stats["whole_value"] = _value(seen.get(_frozen(first[1])))
    return {"choice": cur, "problem": p.expand(dict(cur)), "key": best[0], "payload": best[1],
            "max_payload": seen[_frozen(first[0])][1],
            "whole_payload": seen.get(_frozen(first[1]), (None, None))[1] if len(first) > 1 else None,
            "stats": stats}


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """``a`` strictly better than ``b`` (violation size first; float noise is no improvement)."""
    if a[0] != b[0]:
        return a[0] < b[0]
    return a[1] < b[1] - 1e-12 * abs(b[1])


def _value(entry) -> float | None:
    if entry is None:
        return None
    (viol, value), _ = entry
    return float(value) if viol == 0 and math.isfinite(value) else None


__all__ = ["choosable", "describe", "max_choice", "search", "split_options", "whole_choice"]

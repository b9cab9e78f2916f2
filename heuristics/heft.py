"""`heft`: communication- and memory-aware list scheduling of the HEFT family.

Latency (and any objective with a latency term) -- blocks in decreasing priority, each put
on the device where it finishes earliest:

* priority: HEFT's upward rank (mean compute, mean communication) or PEFT's rank (mean of
  the optimistic cost table); both are topological orders (ties by topological position);
* earliest finish time with **insertion** into idle gaps of a device, link latency plus
  bytes / bandwidth for every edge, ``model.input_bytes`` from ``source`` for input blocks,
  and the delivery of the output to ``sink`` counted in an output block's finish time;
* **memory**: a device is a candidate only if the block's weights and working memory fit
  beside what it holds already (pinned blocks' weights are reserved up front), so a plan
  never overflows; pins and ``allowed_devices`` narrow the candidates;
* **ties** are broken by the effect on successors -- the optimistic cost table of PEFT
  (shortest remaining path from the block's end on that device to ``sink``). Without it a
  zero-cost first block ties on every device, lands on the first (perhaps slowest) one, and
  communication then keeps the whole chain there (SAGA's HEFT ends 5x from the optimum);
* a **lookahead** variant (PEFT selection) minimises finish time plus that optimistic cost.

The variants are computed (vectorised over devices) and the evaluator picks the best (on a
latency-only problem through the one simulator's `placement.simulator.SequenceSim`, the
evaluator's own rule without numpy per call). Then, for latency-only problems, `polish`: a
first-improvement descent that moves blocks of the critical chain (alone or with a
neighbour) between devices, scored by the compiled twin (`heuristics._polish`) of the
simulator's insertion rule, from the best, best single-device and best list plans,
within a deterministic budget of candidates (option ``polish``; 0 turns it off).

Throughput: blocks in topological order and in decreasing work (LPT), each on the device
that keeps the busiest resource -- device compute or directed link transmission, incl.
input from ``source`` and output to ``sink`` -- lowest (ties: least added work).
Energy: each block on the device that adds the least compute plus radio energy given the
blocks already placed. Weighted sums and constraints: every variant above is scored by the
evaluator on the problem's own objective and constraints, and the best feasible kept.

Shared media (SPEC 5a): each medium is one more resource of the list schedules -- a
transfer on it is inserted into its earliest idle gap, as a block on a device
(`heuristics._list_schedule.list_schedule_media`) -- and the plan carries the schedule's
``medium_order``; the closing descent runs on a Python path (`heuristics._descent.polish_media`).

If memory leaves no device for some block, a memory-first fill (topological order, stay on
a device while it fits) is tried; if that fails too the result is ``no_solution``, with
the block that found no room.

Split choices (SPEC section 6): when split blocks offer several ``ways``, the variants above
are run on the expansion of each choice that `heuristics._split_choice.search` looks at: the
max and the whole expansions, then, per split block in topological order, each of its ways
with the others fixed, keeping the degree whose plan is best (for latency: finishes
earliest), for at most three passes. The plan is never worse than heft's plan of the max
expansion or of the never-split one; its ``split`` is the choice.

Files: this one chooses and runs the variants (`construct`) and is the method; the list
scheduler is `heuristics._list_schedule`, the greedies and CPoP's path `heuristics._greedy`,
the closing descent `heuristics._descent` (its compiled kernels `heuristics._polish`).
"""


from __future__ import annotations

import math
import time

import numpy as np

from placement.method import Candidate, Context, Method, Option
from placement.plan import Status
from placement.problem import Problem

from . import _polish, _split_choice
from ._common import Pool, masked_ct, optimistic_cost_table, pack_fallback, topo_position, upward_rank_mean
from ._descent import POLISH_MIN, POLISH_PER_CELL, POLISH_WORK, polish, polish_budget, polish_media
from ._greedy import cpop_critical_path, descent_variants, dp_variants, energy_greedy, throughput_greedy
from ._list_schedule import _Expired, _NoRoom, list_schedule, list_schedule_media, memory_binds  # noqa: F401 (local imports them here)


def construct(p: Problem, ctx: Context | None = None, *, variants: str = "all",
              polish_evals: int | None = None) -> tuple[Pool, dict]:
    """Run the HEFT-family variants that serve ``p``'s objective and keep the best plan
    (scored by the evaluator). Returns the pool and per-variant statistics."""
    ct = masked_ct(p)
    pool = Pool(p)
    stats: dict = {}
    weights = p.objective.weights
    want_latency = bool(weights.get("latency")) or "latency_s" in p.constraints or p.count_idle
    want_period = bool(weights.get("throughput")) or "period_s" in p.constraints \
        or "throughput_per_s" in p.constraints
    want_energy = bool(weights.get("energy")) or "energy_j" in p.constraints
    if variants == "all":
        want_latency = True          # cheap, and a good start for every objective
    no_room: list[int] = []

    def run(label, fn):
        """``fn`` returns (assignment, start times, end times) of a schedule, (assignment,
        a precedence-respecting priority, None), or (assignment, None, None) for the
        evaluator's list rule."""
        if ctx is not None and ctx.expired() and pool.has_plan:
            return
        t0 = time.perf_counter()
        try:
            a, key, end, *air = fn()          # shared media: the schedule's medium order too
        except _NoRoom as exc:
            no_room.append(exc.block)
            stats[label] = "no room for block " + p.blocks[exc.block].id
            return
        except _Expired:
            stats[label] = "stopped by the time limit"
            return
        if a is None:
            return
        if key is None:
            ev = pool.add(a, None, label)
            value, feasible = ev.value, ev.feasible
        else:
            value, feasible = pool.add_schedule(a, key, label, end=end, medium_order=air[0] if air else None)
        stats[label] = {"value": value, "feasible": bool(feasible),
                        "time_s": round(time.perf_counter() - t0, 4)}

    def run_dp_variants():
        if (want_period or want_energy) and not (ctx is not None and ctx.expired()):
            for label, a_dp in dp_variants(p, ct, want_period, want_energy, ctx):
                run(label, lambda a_dp=a_dp: (a_dp, None, None))

    # with no latency term, dp's pipeline and energy path come first: they are the plans the
    # objective wants on chains, and the latency passes below must not use up a short limit
    # before they run (local's start at 100 x 16 under load, issue 14)
    dp_first = not weights.get("latency")
    if dp_first:
        run_dp_variants()
    oct_ = None
    if want_latency:
        oct_ = optimistic_cost_table(p, ct)
        rank_heft = upward_rank_mean(p, ct)
        fin = np.where(np.isfinite(ct), ct, np.nan)
        rank_peft = np.nanmean(np.where(np.isfinite(oct_), oct_, np.nan), axis=1) \
            + np.nan_to_num(np.nanmean(fin, axis=1))
        prio_cp, force = cpop_critical_path(p, ct, rank_heft)
        # where memory binds, each variant also runs with room reserved for the blocks still
        # to come (`_list_schedule.Reserve`); both are scored and the best kept
        reserves = (False, True) if memory_binds(p) else (False,)
        for label, prio, look, fc, tie in (("heft-lookahead", rank_heft, True, None, oct_),
                                           ("heft", rank_heft, False, None, oct_),
                                           ("peft", rank_peft, True, None, oct_),
                                           ("cpop", prio_cp, False, force, oct_)):
            if fc is None and label.startswith("cpop"):
                continue
            for rsv in reserves:
                def fn(prio=prio, look=look, fc=fc, tie=tie, rsv=rsv):
                    deadline = ctx.deadline if (ctx is not None and pool.has_plan) else math.inf
                    if p.media and not rsv:   # the air as a resource (the reserving pass is air-blind)
                        return list_schedule_media(p, ct, prio, tie, lookahead=look, force=fc,
                                                   deadline=deadline)
                    return list_schedule(p, ct, prio, tie, lookahead=look, force=fc, deadline=deadline,
                                         reserve=rsv)
                run(label + ("-reserve" if rsv else ""), fn)
    topo = np.array(p.topo, dtype=np.int64)
    if want_period:
        lpt = np.argsort(-np.nan_to_num(np.nanmin(np.where(np.isfinite(ct), ct, np.nan), axis=1)),
                         kind="stable")
        run("balance-topo", lambda: (throughput_greedy(p, ct, topo), None, None))
        run("balance-lpt", lambda: (throughput_greedy(p, ct, lpt), None, None))
    if want_energy:
        run("energy-topo", lambda: (energy_greedy(p, ct, topo), None, None))
    # the whole model on one device, where it fits (the `single` plans): cheap and sometimes best
    need = p.params.sum() + p.activation.max(initial=0.0)
    whole = np.nonzero(np.isfinite(ct).all(axis=0) & (p.memory_cap >= need))[0]
    for d in whole[np.argsort(ct[:, whole].sum(axis=0))][:2].tolist():
        # one device runs its blocks back to back in any topological order: give one
        # (the evaluator's list rule would find the same latency, at more cost)
        run(f"single-{p.devices[d].id}", lambda d=d: (
            np.full(p.n_blocks, d, dtype=np.int64), topo_position(p), None))
    if not dp_first:
        run_dp_variants()
    if (want_period or want_energy) and not (ctx is not None and ctx.expired()):
        # closing descents on the period / energy from the best plans so far (`_greedy`)
        for label, a_desc in descent_variants(p, ct, pool, want_period, want_energy,
                                              ctx.deadline if ctx is not None else math.inf):
            run(label, lambda a_desc=a_desc: (a_desc, None, None))
    if not (ctx is not None and ctx.expired()):
        budget = polish_budget(p) if polish_evals is None else int(polish_evals)
        t0 = time.perf_counter()
        # shared media: the Python path (the compiled kernel is the contention-free twin)
        stats["polish"] = (polish_media if p.media else polish)(p, pool, ctx, budget)
        stats["polish"]["time_s"] = round(time.perf_counter() - t0, 4)
    if not pool.feasible:
        run("memory-fill", lambda: (pack_fallback(p, ct, topo), None, None))
    stats["chosen"] = pool.best_label
    if no_room:
        stats["no_room"] = sorted({p.blocks[b].id for b in no_room})
    return pool, stats


class Heft(Method):
    name = "heft"
    kind = "heuristic"
    guarantee = "none (list scheduling); never overflows memory; milliseconds to seconds"
    summary = ("HEFT-family list scheduling: upward/PEFT rank, insertion, earliest finish with "
               "successor-aware ties and lookahead, then a compiled critical-chain descent (latency); "
               "load balancing for throughput; greedy energy")
    #: scenarios (SPEC 10): the variants are built on the problem with every block running
    #: and every candidate is scored by the evaluator's expectation over the scenarios; shared
    #: media (5a): its list schedules reserve the air (`list_schedule_media`), its descent
    #: takes the Python path (`polish_media`), every plan is scored by the evaluator
    #: (docs/heuristics.md).
    #: split choices (6): per split block the degree whose plan is best (`heuristics._split_choice`).
    features = frozenset({"scenarios", "media", "split_choice"})
    options = (Option("variants", str, "all", "'all' or 'objective' (only the variants of the objective)",
                      choices=("all", "objective")),
               Option("polish", int, None, "candidate plans the closing descent may score (none: "
                      f"{POLISH_PER_CELL} x blocks x devices, at least {POLISH_MIN}, at most "
                      f"{POLISH_WORK:,} / blocks; 0 turns it off)", low=0))

    def warm_up(self) -> None:
        _polish.warm_up()

    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        p = problem
        variants = self.option(ctx, "variants")
        polish_evals = self.option(ctx, "polish")
        choice = None
        if _split_choice.choosable(p):
            # SPEC 6: the split degree is the plan's; per split block, the degree whose plan
            # (the same variants on that expansion) is best, from the better of max and whole
            found = _split_choice.search(p, ctx, lambda q, c: _planned(q, c, variants, polish_evals))
            p, choice = found["problem"], found["choice"]
            pool, stats = found["payload"]
            stats = {**stats, "split": found["stats"]}
        else:
            pool, stats = construct(p, ctx, variants=variants, polish_evals=polish_evals)
        return _candidate(p, ctx, pool, stats, choice)

    def solve_fixed(self, problem: Problem, ctx: Context) -> Candidate:
        """The variants on ``problem``'s own expansion (no split choice)."""
        pool, stats = construct(problem, ctx, variants=self.option(ctx, "variants"),
                                polish_evals=self.option(ctx, "polish"))
        return _candidate(problem, ctx, pool, stats, None)


def _candidate(p: Problem, ctx: Context, pool: Pool, stats: dict, choice: dict | None) -> Candidate:
    """The method's answer from its pool: the best plan, or why there is none."""
    best = pool.best_plan
    if best is None:
        blocks = stats.get("no_room", [])
        return Candidate(None, status=Status.NO_SOLUTION, stats=stats, message=(
            "memory leaves no device for " + ("block " if len(blocks) == 1 else "blocks ")
            + ", ".join(map(repr, blocks[:5]))
            + " in every list-scheduling variant and in the memory-first fill"))
    status = Status.FEASIBLE
    message = f"best variant: {pool.best_label}"
    if choice is not None:
        message += f"; split ways {_split_choice.describe(choice)}"
    if ctx.expired():                 # variants were cut or skipped by the limit
        status = Status.TIME_LIMIT
    return Candidate(best[0], best[1], status=status, message=message, stats=stats,
                     medium_order=pool.best_medium_order, **({} if choice is None else {"split": choice}))


def _planned(q: Problem, ctx: Context, variants: str, polish_evals: int | None):
    """`construct` on one expansion, as `_split_choice.search` wants it: (key, (pool, stats))."""
    pool, stats = construct(q, ctx, variants=variants, polish_evals=polish_evals)
    return pool.best_key, (pool, stats)


__all__ = ["Heft", "construct", "list_schedule", "throughput_greedy", "energy_greedy"]

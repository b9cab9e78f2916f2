"""Infeasibility that can be seen cheaply, before any solver runs.

Each check is a proof: when it fires, no plan satisfies the problem, and the reason says
why in the user's words (block, bytes, device). `placement.api.solve` returns status
``infeasible`` with that reason (CLI exit code 3) without calling the method.
"""

from __future__ import annotations

import numpy as np

from . import bounds
from .errors import fmt_bytes
from .problem import TOLERANCE, Problem


def infeasibility_reasons(p: Problem) -> list[str]:
    """Reasons why ``p`` has no feasible plan (empty: none found cheaply). With split
    choices, over every choice: the block and memory checks read the relaxation of every
    choice (`placement.bounds.split_relaxation`), the bounds hold for every choice."""
    reasons: list[str] = []
    constraints = p.constraints
    p = bounds.split_relaxation(p)
    need = p.params + p.activation
    for b, blk in enumerate(p.blocks):
        can = np.nonzero(p.allowed[b])[0]
        if b in p.pinned and not np.isfinite(p.compute_time[b, p.pinned[b]]):
            reasons.append(f"block '{blk.id}' is pinned to '{p.devices[p.pinned[b]].id}', "
                           "which cannot run it")
            continue
        if len(can) == 0:
            reasons.append(f"block '{blk.id}' can run on no device (no measured time or rate, "
                           "or allowed_devices excludes all)")
            continue
        fits = can[p.memory_cap[can] >= need[b]]                # the evaluator's tolerance
        if len(fits) == 0:
            best = can[np.argmax(p.memory[can])]
            reasons.append(f"block '{blk.id}' needs {fmt_bytes(need[b])} ({need[b]:.4g} bytes), the "
                           f"largest device it may run on ('{p.devices[best].id}') holds "
                           f"{fmt_bytes(p.memory[best])}")
    if not reasons and p.params.sum() > p.memory.sum() * (1 + TOLERANCE):
        reasons.append(f"the model's weights need {fmt_bytes(p.params.sum())} ({p.params.sum():.4g} "
                       f"bytes), all devices together hold {fmt_bytes(p.memory.sum())}")
    if reasons:
        return reasons
    # constraints against the cheap bounds of the metrics
    checks = {"latency_s": bounds.latency_bound, "period_s": bounds.period_bound,
              "energy_j": bounds.energy_bound}
    for metric, bound_fn in checks.items():
        if metric in constraints:
            lb = bound_fn(p)
            if lb > constraints[metric] * (1 + TOLERANCE):
                reasons.append(f"{metric} must be at most {constraints[metric]:.6g}, but no plan "
                               f"can do better than {lb:.6g}")
    if "throughput_per_s" in constraints and constraints["throughput_per_s"] > 0:
        lb = bounds.period_bound(p)
        if lb > 0 and 1.0 / lb < constraints["throughput_per_s"] * (1 - TOLERANCE):
            reasons.append(f"throughput_per_s must be at least {constraints['throughput_per_s']:.6g}, "
                           f"but no plan can exceed {1.0 / lb:.6g}")
    return reasons

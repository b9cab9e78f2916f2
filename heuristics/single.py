"""`single`: the no-split baseline. Every block on one device.

Tries each device that can run every block, hold the whole model, and reach ``source``
and ``sink``, scores each with the evaluator, and keeps the best for the objective.
Optimal among single-device plans; the reference every split plan is compared against.
"""

from __future__ import annotations

import numpy as np

from placement.evaluator import evaluate
from placement.method import Candidate, Context, Method
from placement.plan import Status
from placement.problem import Problem


class Single(Method):
    name = "single"
    kind = "baseline"
    guarantee = "optimal among plans that put every block on one device"
    summary = "no split: every block on the one device that fits and is best for the objective"
    #: scenarios (SPEC 10) and media (5a): each device's plan is scored by the evaluator
    features = frozenset({"scenarios", "media"})

    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        p = problem
        best, best_value, tried = None, np.inf, []
        whole = p.params.sum() + p.activation.max(initial=0.0)
        for d in range(p.n_devices):
            if not p.allowed[:, d].all():
                tried.append(f"'{p.devices[d].id}' cannot run every block")
                continue
            a = np.full(p.n_blocks, d, dtype=np.int64)
            ev = evaluate(p, a)
            if ev.feasible and ev.value < best_value:
                best, best_value = ev, ev.value
            elif not ev.feasible:
                tried.append(f"'{p.devices[d].id}': {ev.violations[0]}")
        if best is None:
            largest = int(np.argmax(p.memory))
            message = (f"no single device can run the whole model (it needs {whole:.4g} bytes, the "
                       f"largest device '{p.devices[largest].id}' holds {p.memory[largest]:.4g}); "
                       + "; ".join(tried[:3]))
            return Candidate(None, status=Status.NO_SOLUTION, message=message)
        return Candidate(best.assignment, best.order, status=Status.FEASIBLE)

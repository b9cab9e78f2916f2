"""`single`: the no-split baseline. Every block on one device.

Tries each device that can run every block, hold the whole model, and reach ``source``
and ``sink``, scores each with the evaluator, and keeps the best for the objective.
Optimal among single-device plans; the reference every split plan is compared against.

Split blocks (SPEC section 6) are kept whole where their ``ways`` allow ``1`` (else at their
fewest ways): on one device shards only add their overhead, halos and replicated weights.
"""

from __future__ import annotations

import numpy as np

from placement.evaluator import evaluate
from placement.method import Candidate, Context, Method
from placement.plan import Status
from placement.problem import Problem

from . import _split_choice


class Single(Method):
    name = "single"
    kind = "baseline"
    guarantee = "optimal among plans that put every block on one device"
    summary = "no split: every block on the one device that fits and is best for the objective"
    #: scenarios (SPEC 10) and media (5a): each device's plan is scored by the evaluator
    #: split choices (6): every block whole where 1 is allowed (one device gains nothing from shards)
    features = frozenset({"scenarios", "media", "split_choice"})

    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        choice = _split_choice.whole_choice(problem) if _split_choice.split_options(problem) else None
        return self._solve(problem if choice is None else problem.expand(choice), choice)

    def solve_fixed(self, problem: Problem, ctx: Context) -> Candidate:
        """The single-device plans of ``problem``'s own expansion (no split choice)."""
        return self._solve(problem, None)

    def _solve(self, p: Problem, choice: dict | None) -> Candidate:
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
        if choice is None:
            return Candidate(best.assignment, best.order, status=Status.FEASIBLE)
        return Candidate(best.assignment, best.order, status=Status.FEASIBLE, split=choice)

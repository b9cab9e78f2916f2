"""The base class every method implements, and what it returns.

A method is called once per solve, in this order:

1. `placement.api.solve` loads the problem, sets the objective, checks the method
   supports it, and runs the cheap infeasibility checks (`placement.feasibility`).
2. ``method.solve(problem, ctx)`` runs. It reads the problem's precomputed matrices
   (never its own cost arithmetic for what it reports), honours ``ctx.deadline``, and
   returns a `Candidate`: an assignment (device index per block), optionally an order
   per device, its status claim and a proven lower ``bound`` if it has one.
3. The API re-scores the candidate with the evaluator; the plan's value, metrics and
   schedule come from there. A candidate the evaluator finds infeasible is reported as
   ``no_solution`` with its violations, whatever the method claimed.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from .plan import Status
from .problem import Problem

#: objective names a method may support ("weighted" is any weighted sum).
ALL_OBJECTIVES = frozenset({"latency", "throughput", "energy", "weighted"})

#: how far past its time limit a method may return: the limit plus this many seconds plus
#: ``TIME_LIMIT_MARGIN_FRACTION`` of the limit (model building and the final read-back).
TIME_LIMIT_MARGIN_S = 1.0
TIME_LIMIT_MARGIN_FRACTION = 0.05


@dataclass
class Candidate:
    """What a method returns. ``assignment`` is None when it found nothing."""

    assignment: np.ndarray | None
    order: list[list[int]] | None = None
    status: Status = Status.FEASIBLE
    bound: float | None = None
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What a method gets besides the problem: its deadline, seed and options."""

    time_limit: float | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    #: called with (incumbent value or None, bound or None) when a method improves; the CLI
    #: shows it. Optional.
    progress: Callable[[float | None, float | None], None] | None = None

    @property
    def deadline(self) -> float:
        """``time.monotonic()`` value by which the method must return (inf: no limit)."""
        return self.started + self.time_limit if self.time_limit is not None else float("inf")

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def report(self, value: float | None = None, bound: float | None = None) -> None:
        if self.progress is not None:
            self.progress(value, bound)

    def sub(self, fraction: float = 1.0, **options: Any) -> "Context":
        """A context for a helper run (e.g. a warm start) with a share of the time left."""
        left = self.time_left()
        limit = None if left == float("inf") else max(0.0, left * fraction)
        return Context(time_limit=limit, seed=self.seed, options={**self.options, **options},
                       progress=None)


class Method(ABC):
    """One placement method. Subclasses set the class attributes and implement `solve`."""

    #: registry name (SPEC section 8).
    name: ClassVar[str]
    #: "exact", "heuristic" or "baseline".
    kind: ClassVar[str]
    #: what the result is guaranteed to be, in one line (shown by ``placement methods``).
    guarantee: ClassVar[str]
    #: one line on what it is.
    summary: ClassVar[str]
    #: objectives it supports (subset of ALL_OBJECTIVES).
    objectives: ClassVar[frozenset[str]] = ALL_OBJECTIVES
    #: options it accepts (name -> one-line help), passed as ``solve(..., name=value)``.
    options: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        """Place ``problem``'s blocks by ``ctx.deadline``; never mutate ``problem``."""

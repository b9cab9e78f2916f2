"""The base class every method implements, and what it returns.

A method is called once per solve, in this order:

1. `placement.api.solve` loads the problem, sets the objective, checks the method
   supports it and every feature the problem uses (``features``), checks the options
   against the method's declared `Option` list (a bad value is an `InputError` naming the
   option, before the method runs), calls ``method.warm_up()`` (compiles kernels: not
   timed), and runs the cheap infeasibility checks (`placement.feasibility`).
2. ``method.solve(problem, ctx)`` runs; ``ctx.options`` holds every declared option, typed,
   with its default where none was given. It reads the problem's precomputed matrices
   (never its own cost arithmetic for what it reports), honours ``ctx.deadline``, and
   returns a `Candidate`: an assignment (device index per block), optionally an order
   per device, its status claim and a proven lower ``bound`` if it has one.
3. The API re-scores the candidate with the evaluator; the plan's value, metrics and
   schedule come from there. A candidate the evaluator finds infeasible is reported as
   ``no_solution`` with its violations, whatever the method claimed.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from .plan import Status
from .problem import Problem

#: objective names a method may support ("weighted" is any weighted sum).
ALL_OBJECTIVES = frozenset({"latency", "throughput", "energy", "weighted"})

#: problem features a method may support (SPEC section 8): split choices (section 6),
#: shared media (5a), scenarios (10). A method lists the ones it supports in ``features``.
FEATURES = ("split_choice", "media", "scenarios")

#: how far past its time limit a method may return: the limit plus this many seconds plus
#: ``TIME_LIMIT_MARGIN_FRACTION`` of the limit (model building and the final read-back).
TIME_LIMIT_MARGIN_S = 1.0
TIME_LIMIT_MARGIN_FRACTION = 0.05


_TYPE_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false",
               object: "any Python value (API only)"}


@dataclass(frozen=True)
class Option:
    """One option of a method: its name, type (int, float, str, bool; object: any value,
    passed through, for the API only), default (None: not
    set), allowed range (``low``/``high``, inclusive) or ``choices``, and one line of help.
    `parse` turns a given value (a Python value, or the text of ``--option key=value``)
    into that type or raises `InputError` naming the option and what was expected."""

    name: str
    type: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None

    def expected(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        what = _TYPE_NAMES[self.type]
        if self.low is not None and self.high is not None:
            return f"{what} from {self.low:g} to {self.high:g}"
        if self.low is not None:
            return f"{what} >= {self.low:g}"
        if self.high is not None:
            return f"{what} <= {self.high:g}"
        return what

    def describe(self) -> str:
        """``name (type, default X, range): help`` for ``placement methods``."""
        default = "none" if self.default is None else str(self.default).lower() \
            if isinstance(self.default, bool) else str(self.default)
        return f"{self.name} ({self.expected()}; default {default}): {self.help}"

    def parse(self, value: Any, method: str) -> Any:
        from .errors import InputError

        bad = InputError(f"{method} option {self.name}: expected {self.expected()}, found {value!r}")
        v = value
        if self.type is bool:
            if isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "yes", "no"):
                v = v.lower() in ("true", "1", "yes")
            elif not isinstance(v, bool):
                raise bad
        elif self.type in (int, float):
            if isinstance(v, str):                 # the text of --option key=value
                try:
                    v = self.type(v.strip())
                except ValueError:
                    raise bad from None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad
            if self.type is int and not float(v).is_integer():
                raise bad
            v = self.type(v)
        elif self.type is str:
            v = str(v)
        if self.choices is not None:
            match = [c for c in self.choices if str(c).lower() == str(v).lower()]
            if not match:
                raise bad
            v = match[0]
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise bad
        return v


def check_options(method: "Method", given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` checked against ``method.options``: every declared option, typed, with its
    default where none was given. An unknown name is a `MethodError` listing the valid ones
    (with the closest); a bad value an `InputError` naming the option."""
    from .errors import MethodError, did_you_mean

    declared = {o.name: o for o in method.options}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        hint = did_you_mean(unknown[0], declared)
        raise MethodError(f"method '{method.name}' has no option {unknown}"
                          + (f" ({hint})" if hint else "") + "; it takes: " + (", ".join(declared) or "none"))
    out = {}
    for name, opt in declared.items():
        if name in given and given[name] is not None:
            out[name] = opt.parse(given[name], method.name)
        else:
            out[name] = opt.default
    return out


@dataclass
class Candidate:
    """What a method returns. ``assignment`` is None when it found nothing."""

    assignment: np.ndarray | None
    order: list[list[int]] | None = None
    status: Status = Status.FEASIBLE
    bound: float | None = None
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    #: shared media (SPEC 5a): per medium, its transfers (indices) in sending order, or
    #: None (first come first served); None for every medium when omitted.
    medium_order: list[list[int] | None] | None = None
    #: split choices (SPEC 6): the choice (block -> ways) whose expansion ``assignment`` and
    #: ``order`` index, ``problem.expand(split)``; None: the problem as given (a method
    #: without ``split_choice`` in its ``features`` leaves it None).
    split: dict[str, int] | None = None


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
        """``time.monotonic()`` value by which the method must return (inf: no limit). A stop
        request (Ctrl-C, `placement.interrupt`) moves it to the moment of the request, so
        every method stops as at its time limit and returns its best plan so far."""
        from . import interrupt
        limit = self.started + self.time_limit if self.time_limit is not None else float("inf")
        return min(limit, interrupt.requested_at())

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
    #: problem features it supports (subset of FEATURES); the API refuses the others.
    features: ClassVar[frozenset[str]] = frozenset()
    #: options it accepts, passed as ``solve(..., name=value)``; checked by the API.
    options: ClassVar[tuple[Option, ...]] = ()

    def option(self, ctx: "Context", name: str) -> Any:
        """The value of option ``name`` in ``ctx`` (typed by its declaration), else its default."""
        opt = next(o for o in self.options if o.name == name)
        value = ctx.options.get(name)
        return opt.default if value is None else opt.parse(value, self.name)

    def warm_up(self) -> None:
        """Prepare what a first solve would otherwise pay for (compiled kernels); called
        by the API before the clock starts. Default: nothing."""

    @abstractmethod
    def solve(self, problem: Problem, ctx: Context) -> Candidate:
        """Place ``problem``'s blocks by ``ctx.deadline``; never mutate ``problem``."""

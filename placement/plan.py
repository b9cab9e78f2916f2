"""The plan (SPEC section 7): what a method returns, what `placement solve -o` writes.

Everything in ``metrics``, ``value`` and ``schedule`` comes from the evaluator; only
``status``, ``bound`` and ``solve_time_s`` come from the method. ``gap`` is derived:
``(value - bound) / value``.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import PlanError, _short, json_kind


class Status(str, enum.Enum):
    """SPEC section 7. ``infeasible`` means *proven* infeasible; ``no_solution`` means the
    method found no feasible plan (a heuristic's failure, or an exact method stopped by its
    time limit before finding one); ``time_limit`` means a feasible plan, not proven optimal."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"
    NO_SOLUTION = "no_solution"
    ERROR = "error"

    @property
    def has_plan(self) -> bool:
        return self in (Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT)

    def __str__(self) -> str:
        return self.value


def gap_of(value: float | None, bound: float | None) -> float | None:
    """``(value - bound) / value``, 0 when both are 0, None when either is unknown. Not
    clamped: a negative gap means a bound above the value, i.e. an invalid bound, and shows."""
    if value is None or bound is None or not math.isfinite(value) or not math.isfinite(bound):
        return None
    if value <= 0:
        return 0.0 if bound == value else None
    return (value - bound) / value


def _clean(x: Any) -> Any:
    """JSON has no inf/nan: write them as null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


@dataclass(frozen=True)
class Plan:
    """A plan (SPEC section 7), built by `placement.api` from the evaluator's verdict and
    `placement.api.derive_status`. Not frozen yet: `placement.pareto_front` sets ``method``
    on a plan it re-scores (use ``dataclasses.replace`` there, then freeze this class)."""

    problem: str
    method: str
    objective: str | dict[str, float]
    status: Status
    value: float | None
    bound: float | None
    solve_time_s: float
    assignment: dict[str, str]
    order: dict[str, list[str]] | None = None
    schedule: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: broken rules, as ``"kind: message"`` (empty for a feasible plan).
    violations: list[str] = field(default_factory=list)
    #: one line on why: the reason for infeasible/no_solution, the backend's raw status, ...
    message: str = ""
    #: the method's own statistics (solver wall time, nodes, backend, seed, ...).
    stats: dict[str, Any] = field(default_factory=dict)
    #: shared media (SPEC 5a, 7): medium id -> its transfers [producer, consumer] in sending
    #: order ("input"/"output" for source/sink); None without media.
    medium_order: dict[str, list[list[str]]] | None = None
    #: the schedule of the transfers on media: {"medium", "src", "dst", "start_s", "end_s",
    #: "arrival_s"} each, in sending order per medium (docs/format.md); empty without media.
    transfers: list[dict[str, Any]] = field(default_factory=list)
    #: split choices (SPEC 6, 7): split block -> the ways the plan uses, for every split block
    #: of the problem (None: the problem splits nothing, or a hand-written plan that names no
    #: choice, which takes max(ways)); assignment, order and schedule name the blocks of
    #: ``problem.expand(split)``.
    split: dict[str, int] | None = None

    @property
    def gap(self) -> float | None:
        return gap_of(self.value, self.bound)

    @property
    def feasible(self) -> bool:
        return self.status.has_plan and not self.violations

    def to_dict(self) -> dict[str, Any]:
        out = {
            "problem": self.problem, "method": self.method, "objective": self.objective,
            "status": self.status.value, "value": self.value, "bound": self.bound, "gap": self.gap,
            "solve_time_s": self.solve_time_s, "assignment": self.assignment,
            "order": self.order, "schedule": self.schedule, "metrics": self.metrics,
        }
        if self.split is not None:
            out["split"] = dict(self.split)
        if self.medium_order is not None:
            out["medium_order"] = self.medium_order
        if self.transfers or self.medium_order is not None:    # every plan of a media problem
            out["transfers"] = self.transfers
        if self.violations:
            out["violations"] = self.violations
        if self.message:
            out["message"] = self.message
        if self.stats:
            out["stats"] = self.stats
        return _clean(out)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], file: str | None = None) -> "Plan":
        """Read a plan dict. Only ``assignment`` is required (a hand-written plan may give
        just that); everything else has a neutral default."""
        where = f"{file}: " if file else ""
        if not isinstance(d, Mapping):
            raise PlanError(f"{where}(top level): expected a JSON object, found {json_kind(d)}")
        assignment = d.get("assignment")
        if not isinstance(assignment, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in assignment.items()):
            raise PlanError(f"{where}assignment: expected an object of block id -> device id")
        order = d.get("order")
        if order is not None and (not isinstance(order, Mapping) or not all(
                isinstance(v, list) and all(isinstance(b, str) for b in v) for v in order.values())):
            raise PlanError(f"{where}order: expected an object of device id -> list of block ids")
        medium_order = d.get("medium_order")
        if medium_order is not None and (not isinstance(medium_order, Mapping) or not all(
                isinstance(k, str) and isinstance(v, list) and all(
                    isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in v)
                for k, v in medium_order.items())):
            raise PlanError(f"{where}medium_order: expected an object of medium id -> list of "
                            f"[producer, consumer] block id pairs ('input'/'output' for source/sink)")
        split = d.get("split")
        if split is not None and (not isinstance(split, Mapping) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
                for k, v in split.items())):
            raise PlanError(f"{where}split: expected an object of split block id -> number of ways "
                            f"(a whole number >= 1), found {_short(split)}")
        status = d.get("status", "feasible")
        try:
            status = Status(status)
        except ValueError:
            raise PlanError(f"{where}status: expected one of {[s.value for s in Status]}, "
                            f"found {_short(status)}") from None
        return cls(problem=str(d.get("problem", "")), method=str(d.get("method", "")),
                   objective=d.get("objective", "latency"), status=status,
                   value=d.get("value"), bound=d.get("bound"),
                   solve_time_s=float(d.get("solve_time_s") or 0.0),
                   assignment=dict(assignment), order=None if order is None else dict(order),
                   schedule=dict(d.get("schedule") or {}), metrics=dict(d.get("metrics") or {}),
                   violations=list(d.get("violations") or []), message=str(d.get("message", "")),
                   stats=dict(d.get("stats") or {}),
                   medium_order=None if medium_order is None else {k: [list(t) for t in v]
                                                                   for k, v in medium_order.items()},
                   transfers=list(d.get("transfers") or []),
                   split=None if split is None else dict(split))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the plan as JSON atomically (a reader never sees half a file)."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Plan":
        from .loader import read_json
        from .errors import ProblemError
        try:
            data = read_json(str(path), what="plan")
        except ProblemError as exc:
            raise PlanError(str(exc)) from None
        return cls.from_dict(data, file=str(path))


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON to a temporary file beside ``path``, fsync, then rename over it."""
    write_text_atomic(path, json.dumps(_clean(data), indent=2) + "\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_path(path: str | os.PathLike[str], what: str = "output") -> None:
    """Raise `InputError` unless a file can be written at ``path``: not a folder, and its
    nearest existing parent folder accepts a new file (tried for real, so that read-only
    mounts and root's permissions are judged as the write will be). Called before any work
    whose result would otherwise be lost."""
    from .errors import InputError
    target = Path(path)
    if str(path) == "" or target.is_dir():
        raise InputError(f"{path or '(empty)'}: the {what} path is a folder; expected a file name")
    parent = target.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{path}: cannot write the {what}: {parent} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the {what} in {parent}: "
                         f"{exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync, then rename over it. The
    file gets the permissions a plain ``open(path, "w")`` would give (0666 less the umask)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside ``path`` for a writer (a figure's ``savefig``, say); on
    success it gets an ordinary file's mode (0666 less the umask; ``mkstemp`` makes 0600) and
    is renamed over ``path``, so a reader never sees half a file; on failure it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix,
                               dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise

"""The evaluator: the one implementation of SPEC sections 4 and 5.

Every plan the package reports is scored here; solvers may compute internally whatever
they like, but the figures they report come from `evaluate`.

Where each rule lives (docs/cost_model.md lists them all): the per-block, per-edge and
per-device cost pieces (compute time, transfer and transmission time, node and radio
energy, memory use, the tolerance, the constraint check) are on `placement.problem.Problem`;
the order-free costs of one assignment (period, energy, memory) are `plan_costs` here;
latency -- start times for fixed per-device orders, and the **list rule** that gives a
plan without an order its orders -- is `placement.simulator`, the one simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import fmt_bytes
from .problem import TOLERANCE, Problem  # TOLERANCE re-exported: it lives on problem.py
from .simulator import list_rule_order, makespan, simulate_orders
from .simulator import upward_rank  # re-exported


@dataclass(frozen=True)
class Violation:
    """Why a plan is infeasible: ``kind`` is one of memory, pinned, device, unreachable,
    order, constraint, assignment, split (`split_violations`)."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def throughput_of(period_s: float) -> float:
    """Inferences per second of a period (inf for a period of 0)."""
    return 1.0 / period_s if period_s > 0 else math.inf


@dataclass(frozen=True)
class Evaluation:
    """The evaluator's verdict on one plan (indices, not ids; `Plan` turns them into ids).
    Frozen: a verdict is not edited after the fact (its arrays are read-only)."""

    assignment: np.ndarray            # (B,) device index per block
    order: list[list[int]]            # per device, its blocks in run order
    start: np.ndarray                 # (B,) seconds
    end: np.ndarray                   # (B,) seconds
    latency_s: float
    period_s: float
    energy_j: float
    memory_bytes: np.ndarray          # (D,)
    transfer_bytes: float
    value: float
    violations: tuple[Violation, ...] = ()
    #: with scenarios (SPEC section 10): the worst scenario's latency, and per scenario
    #: (name, probability, evaluation of its reduced problem, its blocks' full indices).
    latency_max_s: float | None = None
    scenario_evals: tuple = ()
    #: shared media (SPEC 5a; empty without media): per medium, its transfers (indices of
    #: `placement.media.transfer_names`) in sending order, and each transfer's send start
    #: and end (nan for a transfer off every medium).
    medium_order: tuple[tuple[int, ...], ...] = ()
    transfer_start: np.ndarray | None = None
    transfer_end: np.ndarray | None = None

    def __post_init__(self):
        for a in (self.assignment, self.start, self.end, self.memory_bytes, self.transfer_start,
                  self.transfer_end):
            if isinstance(a, np.ndarray):
                a.setflags(write=False)

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def throughput_per_s(self) -> float:
        return throughput_of(self.period_s)

    def metrics(self, problem: Problem) -> dict[str, Any]:
        """The metrics dict of SPEC section 7 (ids, SI units)."""
        used = sorted(set(int(d) for d in self.assignment))
        out = {
            "latency_s": self.latency_s,
            "period_s": self.period_s,
            "throughput_per_s": self.throughput_per_s,
            "energy_j": self.energy_j,
            "memory_bytes": {problem.devices[d].id: float(self.memory_bytes[d]) for d in used},
            "transfer_bytes": self.transfer_bytes,
        }
        if self.scenario_evals:
            from .scenarios import scenario_metrics
            out["latency_max_s"] = self.latency_max_s
            out["scenarios"] = scenario_metrics(problem, self)
        return out


def metric_values(ev: Evaluation) -> dict[str, float]:
    return {"latency_s": ev.latency_s, "period_s": ev.period_s,
            "throughput_per_s": ev.throughput_per_s, "energy_j": ev.energy_j,
            "latency_max_s": ev.latency_s if ev.latency_max_s is None else ev.latency_max_s}


@dataclass
class Costs:
    """The parts of a plan's cost that do not depend on the per-device orders (SPEC 4, 5).

    Local search re-uses it to score many assignments; latency (and idle energy, which
    needs latency) come from a simulation on top of it."""

    ct: np.ndarray             # (B,) compute time of each block on its device
    edge_time: np.ndarray      # (E,) transfer time of each edge, 0 when both ends share a device
    in_time: np.ndarray        # (B,) arrival of the input from source (0 if local or not an input block)
    out_time: np.ndarray       # (B,) delivery of the output to sink (0 if local or not an output block)
    load: np.ndarray           # (D,) compute busy time per device
    period_s: float            # busiest device or directed link
    energy_j: float            # compute plus radio energy, without idle energy
    memory_bytes: np.ndarray   # (D,) weights plus the largest working memory
    transfer_bytes: float
    edge_ends: tuple[np.ndarray, np.ndarray]   # (E,) devices of each edge's producer and consumer
    has_in: np.ndarray         # (B,) bool: receives the model input
    has_out: np.ndarray        # (B,) bool: sends an output to sink


def memory_bytes(p: Problem, a: np.ndarray) -> np.ndarray:
    """(D,) memory each device needs for assignment ``a`` (`Problem.memory_use`)."""
    return p.memory_use(a)


def plan_costs(p: Problem, a: np.ndarray) -> Costs:
    """Everything about assignment ``a`` that no order changes: compute and transfer times,
    device and link loads (period), compute and radio energy, memory per device."""
    B, D = p.n_blocks, p.n_devices
    ct = p.compute_time[np.arange(B), a]
    eb = p.edge_bytes
    ea, ec = a[p.edge_src], a[p.edge_dst]
    edge_tx = eb * p.inv_bandwidth[ea, ec]                    # transmission time, 0 on-device
    cross = ea != ec
    edge_time = np.where(cross, p.latency[ea, ec] + edge_tx, 0.0)
    has_in = np.zeros(B, dtype=bool)
    has_in[list(p.input_blocks)] = True
    has_out = np.zeros(B, dtype=bool)
    has_out[list(p.output_blocks)] = True
    src_cross = has_in & (a != p.source)
    snk_cross = has_out & (a != p.sink)
    in_tx = np.where(src_cross, p.in_bytes * p.inv_bandwidth[p.source, a], 0.0)
    in_time = np.where(src_cross, p.latency[p.source, a] + in_tx, 0.0)
    out_tx = np.where(snk_cross, p.out_bytes * p.inv_bandwidth[a, p.sink], 0.0)
    out_time = np.where(snk_cross, p.latency[a, p.sink] + out_tx, 0.0)

    load = np.bincount(a, weights=ct, minlength=D)
    link = np.zeros((D, D))
    np.add.at(link, (ea[cross], ec[cross]), edge_tx[cross])
    np.add.at(link, (np.full(int(src_cross.sum()), p.source), a[src_cross]), in_tx[src_cross])
    np.add.at(link, (a[snk_cross], np.full(int(snk_cross.sum()), p.sink)), out_tx[snk_cross])
    period = float(max(load.max(initial=0.0), link.max(initial=0.0)))

    energy = float(np.sum(p.power_active[a] * ct))
    energy += float(np.sum(p.radio_power[ea, ec][cross] * edge_tx[cross]))
    energy += float(np.sum(p.radio_power[p.source, a[src_cross]] * in_tx[src_cross]))
    energy += float(np.sum(p.radio_power[a[snk_cross], p.sink] * out_tx[snk_cross]))

    transfer_bytes = float(eb[cross].sum() + p.in_bytes[src_cross].sum() + p.out_bytes[snk_cross].sum())
    return Costs(ct=ct, edge_time=edge_time, in_time=in_time, out_time=out_time, load=load,
                 period_s=period, energy_j=energy, memory_bytes=p.memory_use(a),
                 transfer_bytes=transfer_bytes, edge_ends=(ea, ec), has_in=has_in, has_out=has_out)


def idle_energy(p: Problem, a: np.ndarray, latency: float, load: np.ndarray) -> float:
    """``power_idle_w * (latency - busy)`` summed over the devices that hold a block."""
    used = np.unique(a)
    return float(np.sum(p.power_idle[used] * np.maximum(latency - load[used], 0.0)))


def constraint_excess(p: Problem, values: Mapping[str, float]) -> dict[str, float]:
    """Each broken constraint's relative excess (0 < x); empty when all hold
    (`Problem.constraint_excess`, the one constraint check)."""
    return p.constraint_excess(values)



def constraint_violations(p: Problem, values: Mapping[str, float]) -> list["Violation"]:
    """A violation for each constraint of ``p`` that the metrics ``values`` break (the one
    check, `Problem.constraint_excess`, worded for the plan's report)."""
    out = []
    for metric in p.constraint_excess(values):
        sense = "at least" if metric == "throughput_per_s" else "at most"
        out.append(Violation("constraint", f"{metric} is {values[metric]:.6g}, must be "
                             f"{sense} {p.constraints[metric]:.6g}"))
    return out

def evaluate(problem: Problem, assignment: Sequence[int] | np.ndarray,
             order: Sequence[Sequence[int]] | None = None,
             medium_order: Sequence[Sequence[int] | None] | None = None) -> Evaluation:
    """Score a plan given by indices: ``assignment[b]`` is block b's device; ``order[d]``
    lists device d's blocks in run order (None: the list rule decides); with shared media,
    ``medium_order[m]`` lists medium m's transfers in sending order (None, or None for a
    medium: first come first served, SPEC 5a; `_evaluate_media`).

    Never raises for an infeasible plan: every broken rule is a `Violation`, and
    quantities that cannot be computed (a block on a device that cannot run it, an
    unreachable pair) are ``inf``.
    """
    p = problem
    if p.scenarios:                            # SPEC section 10: a wrapper over this function
        from .scenarios import evaluate_scenarios
        return evaluate_scenarios(p, assignment, order)
    B, D = p.n_blocks, p.n_devices
    a = np.array(assignment, dtype=np.int64)   # a copy: the evaluation freezes it
    violations: list[Violation] = []
    if a.shape != (B,) or (B and (a.min() < 0 or a.max() >= D)):
        raise ValueError(f"assignment must be {B} device indices in [0, {D})")
    c = plan_costs(p, a)
    _check_placement(p, a, c.ct, *c.edge_ends, c.has_in, c.has_out, violations)
    if p.media:
        return _evaluate_media(p, a, c, order, medium_order, violations)

    # ---- latency: simulate
    if order is None:
        order = list_rule_order(p, a, c.ct, c.edge_time, c.in_time, c.out_time)
    else:
        order = [list(map(int, o)) for o in order]
        _check_order(p, a, order, violations)
    start, end, deadlock = simulate_orders(p, a, order, c.ct, c.edge_time, c.in_time)
    if deadlock:
        violations.append(Violation("order", "the per-device orders contradict the block graph "
                                    "(a block waits for one that runs after it on its device)"))
        latency = math.inf
    else:
        latency = makespan(end, c.out_time)

    return _finish(p, a, c, order, start, end, latency, c.period_s, violations)


def _finish(p: Problem, a, c: Costs, order, start, end, latency: float, period: float,
            violations: list[Violation], **media) -> Evaluation:
    """Energy, memory and constraints on top of the schedule; the `Evaluation`."""
    energy = c.energy_j + (idle_energy(p, a, latency, c.load) if p.count_idle else 0.0)
    mem = c.memory_bytes
    for d in np.nonzero(mem > p.memory_cap)[0]:
        blocks_here = int(np.sum(a == d))
        violations.append(Violation("memory", (
            f"device '{p.devices[d].id}' needs {fmt_bytes(mem[d])} ({mem[d]:.4g} bytes) for its "
            f"{blocks_here} block{'s' if blocks_here != 1 else ''}, holds {fmt_bytes(p.memory[d])}")))

    values = {"latency_s": latency, "latency_max_s": latency, "period_s": period,
              "throughput_per_s": throughput_of(period), "energy_j": energy}
    violations += constraint_violations(p, values)
    return Evaluation(assignment=a, order=order, start=start, end=end, latency_s=latency,
                      period_s=period, energy_j=energy, memory_bytes=mem,
                      transfer_bytes=c.transfer_bytes, value=p.objective.value(values),
                      violations=tuple(violations), **media)


def _evaluate_media(p: Problem, a: np.ndarray, c: Costs, order, medium_order,
                    violations: list[Violation]) -> Evaluation:
    """`evaluate` for a problem with shared media (SPEC 5a, `placement.media`): the
    per-device orders a plan's own, else the list rule with the air (`list_rule_media`),
    each medium's order the plan's or first come first served;
    the period also counts each medium's load."""
    from . import media as md

    tr = md.transfers(p, a)
    if order is None:                    # the list rule with the air (`media.list_rule_media`)
        order = md.list_rule_media(p, a, c.ct, c.edge_time, c.out_time, tr)
    else:
        order = [list(map(int, o)) for o in order]
        _check_order(p, a, order, violations)
    M = len(p.media)
    given: list[list[int] | None] = [None] * M
    if medium_order is not None:
        if len(medium_order) != M:
            raise ValueError(f"medium_order must have one entry (or None) per medium ({M})")
        names = md.transfer_names(p)
        for m, mo in enumerate(medium_order):
            if mo is None:
                continue
            mo = [int(t) for t in mo]
            mid = p.media[m][0]
            on = set(md.on_medium(tr, m))
            bad = False
            for t in mo:
                if t not in on:
                    bad = True
                    violations.append(Violation("medium_order", (
                        f"medium '{mid}': transfer {list(names[t])} is not on this medium for this "
                        "assignment")))
            missing = sorted(on - set(mo))
            repeated = sorted({t for t in mo if mo.count(t) > 1})
            if missing or repeated:
                bad = True
                what = [list(names[t]) for t in (missing or repeated)]
                violations.append(Violation("medium_order", (
                    f"medium '{mid}': transfers {what[:5]} " + ("missing from" if missing else "repeated in")
                    + " its order")))
            if not bad:
                given[m] = mo
    sch = md.simulate_media(p, a, order, c.ct, given, tr)
    if sch.deadlock:
        violations.append(Violation("order", "the per-device and medium orders contradict the block graph "
                                    "(a block or transfer waits for one sent or run after it)"))
    period = c.period_s
    if M:
        period = float(max(period, md.medium_loads(p, a, tr).max(initial=0.0)))
    return _finish(p, a, c, order, sch.start, sch.end, sch.latency, period, violations,
                   medium_order=tuple(tuple(o) for o in sch.medium_order),
                   transfer_start=sch.t_start, transfer_end=sch.t_end)


def _check_placement(p: Problem, a, ct, ea, ec, has_in, has_out, out: list[Violation]) -> None:
    for b in np.nonzero(~np.isfinite(ct))[0]:
        blk, dev = p.blocks[b], p.devices[a[b]]
        why = ("not in its allowed_devices" if blk.allowed_devices is not None
               and dev.id not in blk.allowed_devices else "no measured time and no flops rate")
        out.append(Violation("device", f"block '{blk.id}' cannot run on '{dev.id}' ({why})"))
    for b, d in p.pinned.items():
        if a[b] != d:
            out.append(Violation("pinned", f"block '{p.blocks[b].id}' is pinned to "
                                 f"'{p.devices[d].id}', placed on '{p.devices[a[b]].id}'"))
    bad = ~p.reachable[ea, ec]
    for k in np.nonzero(bad)[0]:
        u, v = p.edge_src[k], p.edge_dst[k]
        out.append(Violation("unreachable", f"edge {p.blocks[u].id} -> {p.blocks[v].id}: no link "
                             f"from '{p.devices[ea[k]].id}' to '{p.devices[ec[k]].id}'"))
    for b in np.nonzero(has_in & ~p.reachable[p.source, a])[0]:
        out.append(Violation("unreachable", f"input of block '{p.blocks[b].id}': no link from "
                             f"source '{p.devices[p.source].id}' to '{p.devices[a[b]].id}'"))
    for b in np.nonzero(has_out & ~p.reachable[a, p.sink])[0]:
        out.append(Violation("unreachable", f"output of block '{p.blocks[b].id}': no link from "
                             f"'{p.devices[a[b]].id}' to sink '{p.devices[p.sink].id}'"))


def _check_order(p: Problem, a: np.ndarray, order: list[list[int]], out: list[Violation]) -> None:
    if len(order) != p.n_devices:
        raise ValueError(f"order must have one list per device ({p.n_devices})")
    seen = np.zeros(p.n_blocks, dtype=np.int64)
    for d, blocks in enumerate(order):
        for b in blocks:
            seen[b] += 1
            if a[b] != d:
                out.append(Violation("order", f"block '{p.blocks[b].id}' is in the order of "
                                     f"'{p.devices[d].id}' but assigned to '{p.devices[a[b]].id}'"))
    for b in np.nonzero(seen != 1)[0]:
        what = "missing from" if seen[b] == 0 else "repeated in"
        out.append(Violation("order", f"block '{p.blocks[b].id}' is {what} the device orders"))


def split_violations(p: Problem, split: Mapping[str, Any] | None) -> list[Violation]:
    """The broken rules of a plan's split choice (SPEC 6, 7), kind ``split``: a block that
    is not a split block of ``p``, or a number of ways not among its ``ways``. Empty when
    the choice is valid (None: no choice, every split block at max(ways))."""
    out = []
    for b, w in (split or {}).items():
        if b not in p.split_options:
            known = ", ".join(f"'{x}'" for x in p.split_options) or "none"
            out.append(Violation("split", f"split.{b}: '{b}' is not a split block of the problem "
                                 f"(its split blocks: {known})"))
        elif isinstance(w, bool) or not isinstance(w, (int, np.integer)) or int(w) not in p.split_options[b]:
            out.append(Violation("split", f"split.{b}: block '{b}' may be split "
                                 f"{list(p.split_options[b])} ways, the plan chooses {w!r}"))
    return out


def plan_problem(p: Problem, split: Mapping[str, Any] | None) -> Problem:
    """The expansion of ``p`` a plan with this ``split`` names the blocks of (SPEC 6):
    ``p.expand(split)``, every block the plan does not name at max(ways). A bad choice is a
    `PlanError` listing its `split_violations` (``placement evaluate``: exit 2 naming the
    block)."""
    from .errors import PlanError

    bad = split_violations(p, split)
    if bad:
        raise PlanError("; ".join(str(v) for v in bad))
    return p.expand(split)


def _other_expansion(p: Problem, ids: Sequence[str]) -> str:
    """Why block ids of a plan are not ``p``'s when they belong to another expansion of a
    split block: a note naming the block(s), else empty."""
    hits: dict[str, list[str]] = {}
    for x in ids:
        base = x.rsplit("#", 1)[0] if "#" in x else x
        if base in p.split_options:
            hits.setdefault(base, []).append(x)
    if not hits:
        return ""
    parts = [f"'{b}' (split {p.split.get(b, max(p.split_options[b]))} ways here, the plan names "
             f"{', '.join(repr(x) for x in xs[:4])})" for b, xs in hits.items()]
    return ("; they are shards of another expansion of split block " + ", ".join(parts)
            + ": give the plan's 'split' choice for that block")


def evaluate_ids(problem: Problem, assignment: Mapping[str, str],
                 order: Mapping[str, Sequence[str]] | None = None,
                 medium_order: Mapping[str, Sequence[Sequence[str]]] | None = None) -> Evaluation:
    """`evaluate` for a plan given by ids (as in a plan file), on ``problem`` as expanded
    (a plan with a split choice: ``evaluate_ids(plan_problem(p, plan.split), ...)``).
    Unknown or missing ids raise `PlanError` naming them (ids of another expansion of a
    split block name that block); so does a ``medium_order`` naming an unknown medium, a
    block id that does not exist, or a pair that is no transfer of the problem (a transfer
    of the problem that is not on that medium for this assignment is a violation)."""
    from .errors import PlanError

    p = problem
    extra = [b for b in assignment if b not in p.block_index]
    if extra and p.split_options:
        note = _other_expansion(p, extra)
        if note:
            raise PlanError(f"assignment: expected the blocks of the plan's split expansion, found "
                            f"{extra[:5]}{note}")
    missing = [b.id for b in p.blocks if b.id not in assignment]
    if missing:
        raise PlanError(f"assignment: expected every block of the problem, missing {missing[:5]}"
                        + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    extra = [b for b in assignment if b not in p.block_index]
    if extra:
        raise PlanError(f"assignment: expected block ids of the problem, found unknown {extra[:5]}")
    bad = {b: d for b, d in assignment.items() if d not in p.device_index}
    if bad:
        raise PlanError(f"assignment: expected device ids of the problem, found {bad}")
    a = np.array([p.device_index[assignment[b.id]] for b in p.blocks], dtype=np.int64)
    idx_order = None
    if order is not None:
        unknown = [d for d in order if d not in p.device_index]
        if unknown:
            raise PlanError(f"order: expected device ids of the problem, found {unknown}")
        idx_order = [[] for _ in p.devices]
        for d, blocks in order.items():
            for b in blocks:
                if b not in p.block_index:
                    raise PlanError(f"order.{d}: expected block ids of the problem, found '{b}'")
            idx_order[p.device_index[d]] = [p.block_index[b] for b in blocks]
    return evaluate(p, a, idx_order, medium_order_indices(p, medium_order))


def medium_order_indices(p: Problem, medium_order: Mapping[str, Sequence[Sequence[str]]] | None):
    """A plan file's ``medium_order`` (medium id -> [[producer, consumer], ...], SPEC 7) as
    transfer indices per medium (None for a medium it does not name); `PlanError` naming the
    field for anything that is not a transfer of the problem."""
    from .errors import PlanError
    from .media import transfer_names

    if medium_order is None:
        return None
    if not p.media:
        if medium_order:
            raise PlanError(f"medium_order: expected none (the problem declares no shared media), "
                            f"found media {sorted(medium_order)[:5]}")
        return None
    mids = {m: i for i, (m, _) in enumerate(p.media)}
    index = {pair: t for t, pair in enumerate(transfer_names(p))}
    out: list[list[int] | None] = [None] * len(p.media)
    for mid, seq in medium_order.items():
        if mid not in mids:
            raise PlanError(f"medium_order: expected medium ids of the problem ({', '.join(mids)}), "
                            f"found '{mid}'")
        got = []
        for j, pair in enumerate(seq):
            key = tuple(pair) if isinstance(pair, (list, tuple)) and len(pair) == 2 else None
            if key is None or key not in index:
                raise PlanError(f"medium_order.{mid}[{j}]: expected a transfer [producer, consumer] of the "
                                f"problem ('input'/'output' for source/sink), found {pair!r}")
            got.append(index[key])
        out[mids[mid]] = got
    return out


__all__ = ["TOLERANCE", "Violation", "Evaluation", "Costs", "evaluate", "evaluate_ids", "plan_costs",
           "split_violations", "plan_problem",
           "memory_bytes", "idle_energy", "constraint_excess", "metric_values", "throughput_of",
           "list_rule_order", "upward_rank", "makespan", "medium_order_indices"]

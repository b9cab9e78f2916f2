"""The problem model: blocks, devices, links, objective, with the numeric views that
every solver and the evaluator read (precomputed once, read-only).

Build one with `placement.load` (file, path or dict). A `Problem` is immutable: its
arrays are flagged read-only and `with_objective` returns a new object.

Index conventions: blocks are ``0..B-1`` in the order of the (split-expanded) file,
devices ``0..D-1`` in file order, edges ``0..E-1``.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Iterator, Mapping

import numpy as np

from .schema import OBJECTIVE_METRIC

#: relative tolerance on constraints and memory (float noise, not slack). The one tolerance:
#: read it through `Problem.memory_cap` and `Problem.constraint_excess`.
TOLERANCE = 1e-9
#: absolute slack added to a maximum's bound (a bound of 0 and float noise).
ABS_SLACK = 1e-15


@dataclass(frozen=True)
class Block:
    id: str
    flops: float
    params_bytes: float
    activation_bytes: float
    output_bytes: float
    kind: str = "other"
    time_s: Mapping[str, float] = field(default_factory=dict)
    allowed_devices: tuple[str, ...] | None = None
    #: bytes this block receives from ``source`` when it has no predecessor.
    input_bytes: float = 0.0
    #: for a shard made by the split transform: the id of the block it came from.
    origin: str | None = None
    modules: tuple[str, ...] = ()
    fx_nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Device:
    id: str
    type: str
    flops_per_s: float
    memory_bytes: float
    power_active_w: float = 0.0
    power_idle_w: float = 0.0
    tx_power_w: float = 0.0
    rx_power_w: float = 0.0
    efficiency: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """One way an inference can go (SPEC section 10): its name, probability, and ``runs``,
    a (B,) read-only bool mask over the EXPANDED blocks (a skipped split block skips its
    shards). `Problem.scenario_problem` gives the reduced problem it is scored on."""

    name: str
    probability: float
    runs: np.ndarray

    def __post_init__(self):
        self.runs.setflags(write=False)


@dataclass(frozen=True)
class Objective:
    """Weights over the raw metrics; ``{"latency": 1.0}`` is the plain latency objective."""

    weights: Mapping[str, float]

    def __reduce__(self):
        return (Objective.parse, (dict(self.weights),))

    @classmethod
    def parse(cls, value: str | Mapping[str, float]) -> "Objective":
        """An objective from its file form: a metric name or weights over metric names.
        An unknown name is an `InputError` naming the closest valid one; weights must be
        finite numbers >= 0, at least one of them positive."""
        from .errors import InputError, did_you_mean

        weights = {value: 1.0} if isinstance(value, str) else dict(value)
        for key, w in weights.items():
            if key not in OBJECTIVE_METRIC:
                hint = did_you_mean(str(key), OBJECTIVE_METRIC)
                hint = f" ({hint})" if hint else ""
                raise InputError(f"objective: expected one of {', '.join(OBJECTIVE_METRIC)}, "
                                 f"found '{key}'{hint}")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise InputError(f"objective.{key}: expected a finite weight >= 0, found {w!r}")
        if not any(w > 0 for w in weights.values()):
            raise InputError(f"objective: expected at least one positive weight, found {weights}")
        return cls(MappingProxyType({k: float(w) for k, w in weights.items()}))

    @property
    def name(self) -> str:
        """``latency``, ``throughput``, ``energy``, or ``weighted``."""
        if len(self.weights) == 1:
            ((key, weight),) = self.weights.items()
            if weight == 1.0:
                return key
        return "weighted"

    def to_json(self) -> str | dict[str, float]:
        name = self.name
        return name if name != "weighted" else dict(self.weights)

    def value(self, metrics: Mapping[str, Any]) -> float:
        """The objective's value from the evaluator's metrics."""
        return float(sum(w * metrics[OBJECTIVE_METRIC[k]] for k, w in self.weights.items() if w))


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


class Problem:
    """A placement problem, with precomputed matrices. Do not build by hand: use `placement.load`.

    Attributes (all read-only):
      blocks, devices: tuples of `Block`, `Device`.
      compute_time: (B, D) seconds of block b on device d; ``inf`` where b cannot run on d
        (no measured time and no flops rate, or not in ``allowed_devices``).
      allowed: (B, D) bool, finite compute time and consistent with ``pinned``.
      latency: (D, D) link latency in s, 0 on the diagonal, ``inf`` where unreachable.
      inv_bandwidth: (D, D) s/byte, 0 on the diagonal and where unreachable.
      reachable: (D, D) bool.
      edge_src, edge_dst: (E,) block indices; edge_bytes: (E,) bytes.
      preds[b], succs[b]: tuples of (other block, edge index).
      topo: a topological order (tuple of block indices).
      input_blocks / output_blocks: blocks with no predecessor / no successor.
      in_bytes[b]: bytes b receives from ``source`` (0 unless b is an input block).
      out_bytes[b]: bytes b sends to ``sink`` (0 unless b is an output block).
      params, activation: (B,) bytes; memory: (D,) bytes.
      power_active, power_idle, tx_power, rx_power: (D,) watts.
      source, sink: device indices; pinned: {block index: device index}.
      media: tuple of (medium id, device indices) (SPEC 5a; empty without media);
      medium_of: (D, D) medium index of a transfer a -> c, -1 when off every medium.
    """

    def __init__(self, *, name: str, objective: Objective, constraints: Mapping[str, float],
                 count_idle: bool, model_name: str, input_bytes: float,
                 blocks: tuple[Block, ...], devices: tuple[Device, ...],
                 edges: tuple[tuple[int, int, float], ...],
                 link_latency: np.ndarray, link_bandwidth: np.ndarray,
                 source: int, sink: int, pinned: Mapping[int, int],
                 spec: Mapping[str, Any], path: str | None = None,
                 scenarios: tuple["Scenario", ...] = (),
                 media: tuple[tuple[str, tuple[int, ...]], ...] = (),
                 split_options: Mapping[str, tuple[int, ...]] | None = None,
                 split: Mapping[str, int] | None = None,
                 split_source: Mapping[str, Any] | None = None):
        self.name = name
        #: SPEC section 6: every block of the FILE that has a ``split``, with its sorted ways
        #: (single-option ones too); empty when nothing is split.
        self.split_options = MappingProxyType({b: tuple(w) for b, w in (split_options or {}).items()})
        #: the split choice this object is expanded by (block -> ways; a loaded problem:
        #: `default_split`). `expand` gives the problem expanded by another choice.
        self.split = MappingProxyType(dict(split or {}))
        # the validated file, to expand by another choice (`placement.loader.assemble`)
        self._split_source = split_source
        #: SPEC section 10: the ways one inference can go (empty: every block always runs).
        self.scenarios = tuple(scenarios)
        self.objective = objective
        self.constraints = MappingProxyType(dict(constraints))
        self.count_idle = count_idle
        self.model_name = model_name
        self.input_bytes = input_bytes
        self.blocks = blocks
        self.devices = devices
        self.source = source
        self.sink = sink
        self.pinned = MappingProxyType(dict(pinned))
        self.spec = spec  # the validated, split-expanded dict (for round trips)
        self.path = path
        self.block_index = MappingProxyType({b.id: i for i, b in enumerate(blocks)})
        self.device_index = MappingProxyType({d.id: i for i, d in enumerate(devices)})
        B = len(blocks)

        self.edge_src = _frozen(np.array([e[0] for e in edges], dtype=np.int64))
        self.edge_dst = _frozen(np.array([e[1] for e in edges], dtype=np.int64))
        self.edge_bytes = _frozen(np.array([e[2] for e in edges], dtype=float))
        preds: list[list[tuple[int, int]]] = [[] for _ in range(B)]
        succs: list[list[tuple[int, int]]] = [[] for _ in range(B)]
        for k, (u, v, _) in enumerate(edges):
            preds[v].append((u, k))
            succs[u].append((v, k))
        self.preds = tuple(tuple(p) for p in preds)
        self.succs = tuple(tuple(s) for s in succs)
        self.topo = _topological_order(B, self.preds, self.succs)
        self.input_blocks = tuple(b for b in range(B) if not preds[b])
        self.output_blocks = tuple(b for b in range(B) if not succs[b])
        self.in_bytes = _frozen(np.array(
            [blocks[b].input_bytes if not preds[b] else 0.0 for b in range(B)], dtype=float))
        self.out_bytes = _frozen(np.array(
            [blocks[b].output_bytes if not succs[b] else 0.0 for b in range(B)], dtype=float))

        self.params = _frozen(np.array([b.params_bytes for b in blocks], dtype=float))
        self.activation = _frozen(np.array([b.activation_bytes for b in blocks], dtype=float))
        self.flops = _frozen(np.array([b.flops for b in blocks], dtype=float))
        self.memory = _frozen(np.array([d.memory_bytes for d in devices], dtype=float))
        self.flops_per_s = _frozen(np.array([d.flops_per_s for d in devices], dtype=float))
        self.power_active = _frozen(np.array([d.power_active_w for d in devices], dtype=float))
        self.power_idle = _frozen(np.array([d.power_idle_w for d in devices], dtype=float))
        self.tx_power = _frozen(np.array([d.tx_power_w for d in devices], dtype=float))
        self.rx_power = _frozen(np.array([d.rx_power_w for d in devices], dtype=float))

        self.compute_time = _frozen(_compute_times(blocks, devices))
        allowed = np.isfinite(self.compute_time)
        for b, d in self.pinned.items():
            keep = allowed[b, d]
            allowed[b, :] = False
            allowed[b, d] = keep
        self.allowed = _frozen(allowed)

        reachable = np.isfinite(link_bandwidth) & (link_bandwidth > 0)
        np.fill_diagonal(reachable, True)
        lat = np.where(reachable, link_latency, np.inf)
        safe_bw = np.where(reachable & (link_bandwidth > 0), link_bandwidth, 1.0)
        inv_bw = np.where(reachable, 1.0 / safe_bw, 0.0)
        np.fill_diagonal(lat, 0.0)
        np.fill_diagonal(inv_bw, 0.0)
        self.reachable = _frozen(reachable)
        self.latency = _frozen(lat)
        self.inv_bandwidth = _frozen(inv_bw)
        bandwidth = np.where(reachable, link_bandwidth, 0.0)
        np.fill_diagonal(bandwidth, np.inf)
        self.bandwidth = _frozen(bandwidth)

        # shared media (SPEC 5a): (id, device indices) each; medium_of[a, c] is the medium
        # a transfer a -> c is on (-1: none, and always -1 on the diagonal)
        self.media = tuple((str(m), tuple(int(x) for x in devs)) for m, devs in media)
        medium_of = np.full((len(devices), len(devices)), -1, dtype=np.int64)
        for m, (_, devs) in enumerate(self.media):
            for x in devs:
                for y in devs:
                    if x != y:
                        medium_of[x, y] = m
        self.medium_of = _frozen(medium_of)

    # ------------------------------------------------------------------ sizes
    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    @property
    def n_edges(self) -> int:
        return len(self.edge_src)

    # ------------------------------------------------------------- cost views
    def transfer_time(self, nbytes: float, a: int, c: int) -> float:
        """Seconds to move ``nbytes`` from device a to device c (SPEC section 4); inf if unreachable."""
        if a == c:
            return 0.0
        return float(self.latency[a, c] + nbytes * self.inv_bandwidth[a, c])

    def transfer_matrix(self, nbytes: float) -> np.ndarray:
        """(D, D) transfer times of ``nbytes`` for every device pair (0 on the diagonal)."""
        return self.latency + nbytes * self.inv_bandwidth

    def transmission_matrix(self, nbytes: float) -> np.ndarray:
        """(D, D) pure transmission times ``nbytes / bandwidth`` (no latency; period and energy)."""
        return nbytes * self.inv_bandwidth

    def input_arrival(self, b: int) -> np.ndarray:
        """(D,) time at which block b's input from ``source`` is on each device (0 if not an input block)."""
        if self.preds[b]:
            return np.zeros(self.n_devices)
        return self.latency[self.source] + self.in_bytes[b] * self.inv_bandwidth[self.source]

    def output_delivery(self, b: int) -> np.ndarray:
        """(D,) time for block b's output to reach ``sink`` from each device (0 if not an output block)."""
        if self.succs[b]:
            return np.zeros(self.n_devices)
        return self.latency[:, self.sink] + self.out_bytes[b] * self.inv_bandwidth[:, self.sink]

    @functools.cached_property
    def node_energy(self) -> np.ndarray:
        """(B, D) compute energy in J of block b on device d (``power_active_w * time``);
        ``inf`` where b cannot run on d."""
        ct = self.compute_time
        return _frozen(np.where(np.isfinite(ct), self.power_active[None, :] * ct, np.inf))

    @functools.cached_property
    def radio_power(self) -> np.ndarray:
        """(D, D) watts of a transfer from a to c: sender's ``tx_power_w`` plus receiver's
        ``rx_power_w`` (times the transmission time: its energy)."""
        return _frozen(self.tx_power[:, None] + self.rx_power[None, :])

    @functools.cached_property
    def memory_cap(self) -> np.ndarray:
        """(D,) the most memory a device may use: its ``memory_bytes`` with `TOLERANCE`."""
        return _frozen(self.memory * (1 + TOLERANCE))

    def memory_use(self, a: np.ndarray) -> np.ndarray:
        """(D,) bytes each device needs for assignment ``a``: its blocks' weights plus the
        largest working memory among them (SPEC section 4)."""
        mem = np.bincount(a, weights=self.params, minlength=self.n_devices)
        peak = np.zeros(self.n_devices)
        np.maximum.at(peak, a, self.activation)
        return mem + peak

    def exceeds(self, metric: str, got: float, bound: float, tolerance: float = TOLERANCE) -> float:
        """Relative excess (> 0) of ``got`` over a constraint ``bound`` on ``metric``, 0
        when it holds. ``throughput_per_s`` is a minimum, the others maxima; ``tolerance``
        (default `TOLERANCE`) forgives float noise, 0 gives the raw excess."""
        if metric == "throughput_per_s":
            if got < bound * (1 - tolerance):
                return (bound - got) / max(bound, 1e-300)
        elif got > bound * (1 + tolerance) + (ABS_SLACK if tolerance else 0.0):
            return (got - bound) / max(bound, 1e-300)
        return 0.0

    def constraint_excess(self, values: Mapping[str, float], tolerance: float = TOLERANCE) -> dict[str, float]:
        """The one constraint check: each broken constraint's relative excess (0 < x) given
        the metric ``values``; empty when all hold."""
        out = {}
        for metric, bound in self.constraints.items():
            x = self.exceeds(metric, values[metric], bound, tolerance)
            if x > 0:
                out[metric] = x
        return out

    def constraint_cap(self, metric: str) -> float:
        """The largest value of a maximum-bounded metric that meets its constraint (inf
        when it has none): the bound with `TOLERANCE` and `ABS_SLACK`."""
        bound = self.constraints.get(metric)
        return math.inf if bound is None else bound * (1 + TOLERANCE) + ABS_SLACK

    def lower_bound(self) -> float:
        """The package's cheap lower bound on the objective (`placement.bounds.lower_bound`),
        computed once per problem and objective (the problem is immutable). With split
        choices it holds for EVERY choice (the problem's meaning, SPEC section 6), whichever
        expansion this object is."""
        lb = self.__dict__.get("_cached_lower_bound")
        if lb is None:
            from . import bounds
            lb = self.__dict__["_cached_lower_bound"] = float(bounds.lower_bound(self))
        return lb

    @functools.cached_property
    def ancestors(self) -> tuple[int, ...]:
        """Per block, the set of its ancestors in the block graph as a bitmask (bit u set when
        u -> ... -> b). Two blocks with neither in the other's set can run in either order."""
        anc = [0] * self.n_blocks
        for b in self.topo:
            m = 0
            for u, _ in self.preds[b]:
                m |= anc[u] | (1 << u)
            anc[b] = m
        return tuple(anc)

    # ------------------------------------------------------------ model facts
    def needs_schedule(self) -> bool:
        """True when the objective's value or a constraint depends on start times, i.e. on the
        per-device orders: latency in the objective or a ``latency_s`` constraint, or idle
        energy (``count_idle``) in the objective or an ``energy_j`` constraint."""
        w = self.objective.weights
        return bool(w.get("latency") or "latency_s" in self.constraints
                    or "latency_max_s" in self.constraints
                    or (self.count_idle and (w.get("energy") or "energy_j" in self.constraints)))

    def needs_period(self) -> bool:
        """True when the period matters (throughput objective, or a period/throughput constraint)."""
        return bool(self.objective.weights.get("throughput") or "period_s" in self.constraints
                    or "throughput_per_s" in self.constraints)

    @functools.cached_property
    def features(self) -> frozenset[str]:
        """The problem features of SPEC section 8 this problem uses (names of
        `placement.method.FEATURES`): ``media`` when the network declares shared media,
        ``scenarios`` when the problem has scenarios, ``split_choice`` when a split block
        offers more than one way (`split_options`). A method's support is its ``features``."""
        spec = self.spec or {}
        used = set()
        if self.__dict__.get("media") or (spec.get("network") or {}).get("media"):
            used.add("media")
        if self.scenarios:
            used.add("scenarios")
        if any(len(w) > 1 for w in self.__dict__.get("split_options", {}).values()):
            used.add("split_choice")
        return frozenset(used)

    def latency_only(self) -> bool:
        """The objective is latency alone and no constraint but a latency bound (and no
        scenarios: their expected latency is the evaluator's, not one simulation's)."""
        return (self.objective.name == "latency" and set(self.constraints) <= {"latency_s"}
                and not self.scenarios)

    def needs_energy(self) -> bool:
        """True when energy matters (energy objective or an ``energy_j`` constraint)."""
        return bool(self.objective.weights.get("energy") or "energy_j" in self.constraints)

    def identical_device_groups(self) -> list[list[int]]:
        """Groups of interchangeable devices: same type, speeds, memory, powers, links to every
        other device, and no pin or ``allowed_devices``/``time_s`` entry naming one by id.
        Solvers use it to break symmetry."""
        named = {d for b in self.blocks for d in (b.allowed_devices or ())}
        named |= {k for b in self.blocks for k in b.time_s}
        named |= {self.devices[d].id for d in self.pinned.values()}
        named |= {self.devices[self.source].id, self.devices[self.sink].id}
        groups: dict[Any, list[int]] = {}
        for d, dev in enumerate(self.devices):
            if dev.id in named:
                continue
            key = (dev.type, dev.flops_per_s, dev.memory_bytes, dev.power_active_w, dev.power_idle_w,
                   dev.tx_power_w, dev.rx_power_w, tuple(sorted(dev.efficiency.items())))
            groups.setdefault(key, []).append(d)
        out = []
        for members in groups.values():
            # same links to every device outside the group, and among themselves
            while members:
                first, rest = members[0], members[1:]
                same = [first] + [d for d in rest if _same_links(self, first, d)]
                out.append(same)
                members = [d for d in rest if d not in same]
        return [g for g in out if len(g) > 1]

    # ---------------------------------------------------------- split choices
    @property
    def default_split(self) -> Mapping[str, int]:
        """Every split block at ``max(ways)`` (what a plan that names no choice takes)."""
        return MappingProxyType({b: max(w) for b, w in self.split_options.items()})

    @property
    def n_split_combinations(self) -> int:
        """How many split choices there are (1 without choices)."""
        return math.prod(len(w) for w in self.split_options.values())

    def split_combinations(self) -> Iterator[dict[str, int]]:
        """Every split choice (block -> ways), in file order of the blocks, the ways of the
        last block varying fastest; one empty dict when nothing is split."""
        names = list(self.split_options)
        for combo in itertools.product(*(self.split_options[b] for b in names)):
            yield dict(zip(names, combo))

    def check_split(self, split: Mapping[str, int] | None) -> dict[str, int]:
        """The full choice ``split`` stands for (missing blocks: ``max(ways)``); a choice for
        an unknown block, or a way not in the block's ``ways``, is a `ProblemError` naming
        ``split.<block>`` and the allowed ways."""
        from .errors import ProblemError, did_you_mean

        split = dict(split or {})
        for b, w in split.items():
            if b not in self.split_options:
                known = ", ".join(self.split_options) or "none: the problem splits no block"
                hint = did_you_mean(str(b), self.split_options) if self.split_options else None
                raise ProblemError(f"split.{b}", f"a block with split ways (the problem's: {known})",
                                   b, detail=hint or None)
            ways = self.split_options[b]
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or int(w) not in ways:
                raise ProblemError(f"split.{b}", f"one of the ways {list(ways)} of block '{b}'", w)
        return {b: int(split.get(b, max(w))) for b, w in self.split_options.items()}

    def expand(self, split: Mapping[str, int] | None) -> "Problem":
        """The same problem (objective, constraints, count_idle, scenarios, media, path)
        expanded by the split choice ``split`` (missing blocks: ``max(ways)``; None: the
        default). ``self`` when the choice is this object's own; built once per choice.
        A bad choice is a `ProblemError` (`check_split`)."""
        full = self.check_split(split)
        if full == dict(self.split):
            return self
        cache = self.__dict__.setdefault("_expansions", {})
        key = tuple(sorted(full.items()))
        cache.setdefault(tuple(sorted(self.split.items())), self)
        if key not in cache:
            from .loader import assemble
            q = assemble(self._split_source, full)
            spec = {**q.spec, "objective": self.spec.get("objective"),
                    "constraints": self.spec.get("constraints")}
            q = q._replaced(name=self.name, objective=self.objective, constraints=self.constraints,
                            count_idle=self.count_idle, path=self.path, spec=spec)
            q.__dict__["_expansions"] = cache            # one family: one cache
            q.__dict__["_family_bounds"] = self.__dict__.setdefault("_family_bounds", {})
            cache[key] = q
        return cache[key]

    def fixed_split(self) -> "Problem":
        """This expansion as a problem of its own, with no choice left (each split block's
        ``split_options`` is its chosen way): for a method that plans one expansion at a
        time (its bound is this expansion's). ``self`` without choices."""
        if "split_choice" not in self.features:
            return self
        one = self.__dict__.get("_fixed_split")
        if one is None or one.objective != self.objective:
            one = self._replaced(split_options=MappingProxyType({b: (w,) for b, w in self.split.items()}),
                                 _split_source=None)
            one.__dict__.pop("features", None)
            one.__dict__.pop("_fixed_split", None)
            self.__dict__["_fixed_split"] = one
        return one

    def split_union(self) -> "Problem":
        """The union of every expansion (`placement.split.union`), for exact methods over the
        split choices: the shards of every way of every block with several ways, the edges
        of every pair of ways. ``union_members[b]`` is ``(block, ways, shard)`` for such a
        shard, None for the other blocks. Same objective, constraints and shared media (the
        transfers of shards not chosen are simply absent); no scenarios; its blocks do not all run (a choice selects its ways' shards), so no bound
        of it is a bound of this problem. Built once per problem."""
        u = self.__dict__.get("_split_union")
        if u is None or u.objective != self.objective or dict(u.constraints) != dict(self.constraints):
            from .loader import assemble
            choose = frozenset(b for b, w in self.split_options.items() if len(w) > 1)
            u = assemble({**self._split_source, "scenarios": []}, None, union=choose)
            u = u._replaced(objective=self.objective, constraints=self.constraints,
                            union_members=u.union_members)
            self.__dict__["_split_union"] = u
        return u

    def union_choice(self, union: "Problem", a: np.ndarray) -> dict[str, int]:
        """The split choice of an assignment ``a`` of `split_union` (device index per union
        block, -1 for a block not placed): each choice block's ways whose shards are placed."""
        choice = dict(self.split)
        for b, mem in enumerate(union.union_members):
            if mem is not None and a[b] >= 0:
                choice[mem[0]] = mem[1]
        return choice

    def from_union(self, union: "Problem", choice: Mapping[str, int]) -> np.ndarray:
        """(B_q,) for the expansion ``q = self.expand(choice)``: the union block index of
        each of q's blocks (its shard of that way, or the same block)."""
        q = self.expand(choice)
        index = {}
        for b, mem in enumerate(union.union_members):
            if mem is None:
                index[union.blocks[b].id] = b
            elif mem[1] == choice[mem[0]]:
                from .split import shard_id
                index[mem[0] if mem[1] == 1 else shard_id(mem[0], mem[2])] = b
        return np.array([index[blk.id] for blk in q.blocks], dtype=np.int64)

    def scenario_problem(self, k: int) -> tuple["Problem", np.ndarray]:
        """The reduced problem of scenario ``k`` (SPEC section 10) and the (B_k,) full block
        index of each of its blocks: skipped blocks and their edges removed, a block whose
        successors are all skipped sends its ``output_bytes`` to ``sink``; same devices,
        links, objective, pins; no constraints and no scenarios (the caller checks the
        constraints on the expected and worst metrics; memory is the full problem's).
        Built once per problem and scenario (the problem is immutable)."""
        cache = self.__dict__.setdefault("_scenario_problems", {})
        if k not in cache:
            cache[k] = _reduced_problem(self, self.scenarios[k])
        return cache[k]

    def _replaced(self, **attrs: Any) -> "Problem":
        """A shallow copy with some attributes replaced (the arrays are shared: read-only)."""
        new = object.__new__(Problem)
        new.__dict__.update(self.__dict__)
        new.__dict__.pop("_cached_lower_bound", None)     # depends on objective and constraints
        new.__dict__.pop("_scenario_problems", None)      # carry the objective
        new.__dict__.pop("_plain_problem", None)
        new.__dict__.pop("_expansions", None)             # carry the objective too
        new.__dict__.pop("_split_union", None)
        new.__dict__.pop("_fixed_split", None)
        new.__dict__.update(attrs)
        return new

    def with_objective(self, objective: str | Mapping[str, float] | Objective | None) -> "Problem":
        """A copy with another objective (None: this problem)."""
        if objective is None:
            return self
        obj = objective if isinstance(objective, Objective) else Objective.parse(objective)
        return self._replaced(objective=obj, spec={**self.spec, "objective": obj.to_json()})

    def with_constraints(self, constraints: Mapping[str, float]) -> "Problem":
        """A copy whose constraints are tightened by ``constraints``: each metric keeps the
        stricter of its old and new bound (the larger for ``throughput_per_s``, a lower
        bound; the smaller for the others)."""
        cons = dict(self.constraints)
        for metric, bound in constraints.items():
            if metric not in ("latency_s", "latency_max_s", "period_s", "throughput_per_s", "energy_j"):
                from .errors import InputError
                raise InputError(f"constraints: expected latency_s, latency_max_s, period_s, "
                                 f"throughput_per_s or energy_j, found '{metric}'")
            stricter = max if metric == "throughput_per_s" else min
            if metric == "latency_max_s" and not self.scenarios:
                metric = "latency_s"       # one scenario: the worst latency is the latency
            cons[metric] = stricter(cons[metric], bound) if metric in cons else bound
        return self._replaced(constraints=MappingProxyType(cons), spec={**self.spec, "constraints": cons})

    # Problems go to worker processes (compare --workers, Ray): mapping proxies do not pickle.
    def __getstate__(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, MappingProxyType) else v for k, v in self.__dict__.items()
                if k not in _REBUILT}                      # rebuilt on demand

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key in ("constraints", "pinned", "block_index", "device_index", "split_options", "split"):
            state[key] = MappingProxyType(state.get(key) or {})
        state.setdefault("_split_source", None)
        for value in state.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (f"Problem({self.name!r}, {self.n_blocks} blocks, {self.n_edges} edges, "
                f"{self.n_devices} devices, objective={self.objective.to_json()!r})")


#: caches of other problems that a pickled problem leaves out (rebuilt on demand)
_REBUILT = frozenset({"_expansions", "_split_union", "_fixed_split", "_split_relaxation", "_one_expansion"})


def _same_links(p: Problem, a: int, b: int) -> bool:
    others = [d for d in range(p.n_devices) if d not in (a, b)]
    return (np.array_equal(p.latency[a, others], p.latency[b, others])
            and np.array_equal(p.latency[others, a], p.latency[others, b])
            and np.array_equal(p.inv_bandwidth[a, others], p.inv_bandwidth[b, others])
            and np.array_equal(p.inv_bandwidth[others, a], p.inv_bandwidth[others, b])
            and p.latency[a, b] == p.latency[b, a]
            and p.inv_bandwidth[a, b] == p.inv_bandwidth[b, a])


def _reduced_problem(p: Problem, sc: Scenario) -> tuple[Problem, np.ndarray]:
    keep = np.nonzero(sc.runs)[0].astype(np.int64)
    new_index = {int(b): i for i, b in enumerate(keep)}
    edges = tuple((new_index[int(u)], new_index[int(v)], float(n))
                  for u, v, n in zip(p.edge_src, p.edge_dst, p.edge_bytes)
                  if int(u) in new_index and int(v) in new_index)
    blocks = tuple(p.blocks[int(b)] for b in keep)
    spec = dict(p.spec or {})
    model = dict(spec.get("model") or {})
    ids = {b.id for b in blocks}
    model["blocks"] = [b for b in model.get("blocks", ()) if b.get("id") in ids]
    model["edges"] = [e for e in model.get("edges", ())
                      if isinstance(e, dict) and e.get("src") in ids and e.get("dst") in ids]
    model["scenarios"] = []
    spec.update(model=model, constraints={},
                pinned={b: d for b, d in (spec.get("pinned") or {}).items() if b in ids})
    sub = Problem(name=f"{p.name}[{sc.name}]", objective=p.objective, constraints={},
                  count_idle=p.count_idle, model_name=p.model_name, input_bytes=p.input_bytes,
                  blocks=blocks, devices=p.devices, edges=edges,
                  link_latency=p.latency, link_bandwidth=p.bandwidth, source=p.source,
                  sink=p.sink, pinned={new_index[b]: d for b, d in p.pinned.items() if b in new_index},
                  spec=spec, path=p.path)
    keep.setflags(write=False)
    return sub, keep


def _compute_times(blocks: tuple[Block, ...], devices: tuple[Device, ...]) -> np.ndarray:
    """SPEC section 4, compute time: measured (by device id, then type), else flops/rate."""
    B, D = len(blocks), len(devices)
    rate = np.array([d.flops_per_s for d in devices], dtype=float)
    flops = np.array([b.flops for b in blocks], dtype=float)
    eff = np.ones((B, D))
    kinds = {b.kind for b in blocks}
    for j, dev in enumerate(devices):
        if dev.efficiency:
            for kind in kinds & set(dev.efficiency):
                mask = np.fromiter((b.kind == kind for b in blocks), dtype=bool, count=B)
                eff[mask, j] = dev.efficiency[kind]
    times = flops[:, None] / (rate[None, :] * eff)
    ids = [d.id for d in devices]
    types = [d.type for d in devices]
    for i, blk in enumerate(blocks):
        if blk.time_s:
            for j in range(D):
                measured = blk.time_s.get(ids[j], blk.time_s.get(types[j]))
                if measured is not None:
                    times[i, j] = measured
        if blk.allowed_devices is not None:
            allowed = set(blk.allowed_devices)
            for j in range(D):
                if ids[j] not in allowed:
                    times[i, j] = math.inf
    return times


def _topological_order(B: int, preds, succs) -> tuple[int, ...]:
    indeg = [len(p) for p in preds]
    ready = [b for b in range(B) if indeg[b] == 0]
    order: list[int] = []
    head = 0
    while head < len(ready):
        b = ready[head]
        head += 1
        order.append(b)
        for s, _ in succs[b]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return tuple(order)


__all__ = ["Block", "Device", "Objective", "Problem", "Scenario", "TOLERANCE", "replace"]

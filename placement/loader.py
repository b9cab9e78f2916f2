"""Problem file (or dict) -> `Problem`, enforcing every rule of SPEC section 3.

Shape and signs are checked by `placement.schema`; the rules between fields are
checked here. Every failure is one `ProblemError` that names the file, the field path,
what was expected and what was found. Nothing is changed in the caller's dict.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import networkx as nx
import numpy as np

from . import schema, split
from .errors import ProblemError, did_you_mean, json_kind
from .problem import Block, Device, Objective, Problem, Scenario


def load(source: Any) -> Problem:
    """Load a problem from a `Problem` (returned as is), a dict, a path, or a JSON string.

    Raises `ProblemError` (an `InputError`) for any rule of SPEC section 3 that fails.
    """
    if isinstance(source, Problem):
        return source
    if isinstance(source, Mapping):
        return from_dict(source)
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        if isinstance(source, str) and text.lstrip().startswith("{"):
            return from_dict(_parse_json(text, "<string>"), file="<string>")
        return from_dict(read_json(text, what="problem"), file=text)
    raise ProblemError("(argument)", "a Problem, a dict, or a path to a JSON file",
                       json_kind(source))


def read_json(path: str, what: str = "file") -> Any:
    """Read a JSON file; a missing or malformed file is a `ProblemError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise ProblemError("(file)", f"an existing {what} file", str(path), file=str(path))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError("(file)", f"a readable UTF-8 {what} file", None, file=str(path),
                           detail=str(exc)) from None
    return _parse_json(text, str(path))


def _parse_json(text: str, file: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProblemError(f"(line {exc.lineno}, column {exc.colno})", "valid JSON", None,
                           file=file, detail=exc.msg) from None


def from_dict(raw: Mapping[str, Any], file: str | None = None) -> Problem:
    """Validate a problem dict and build the `Problem` (split blocks expanded)."""
    try:
        # pydantic builds new objects: the caller's dict is read, never changed (tested)
        spec = schema.validate(dict(raw) if isinstance(raw, Mapping) else raw, file=file)
        return _build(spec.model_dump(), file)
    except ProblemError as exc:
        raise exc.in_file(file) from None


def _unique(items: list[dict], where: str, key: str = "id", what: str = "a unique id") -> dict[str, int]:
    """name -> index of ``items`` by ``key``; a repeated name is a `ProblemError` naming both."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item[key] in seen:
            raise ProblemError(f"{where}[{i}].{key}", what, item[key],
                               detail=f"also {where}[{seen[item[key]]}].{key}")
        seen[item[key]] = i
    return seen


def _need(name: str, known: Mapping[str, int], field: str, what: str) -> None:
    if name not in known:
        raise ProblemError(field, f"the id of {what}", name, detail=did_you_mean(name, known))


def _acyclic(n: int, edges: list[tuple[int, int]]) -> bool:
    """Kahn's algorithm: True when the graph on ``n`` nodes has no cycle."""
    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        succ[u].append(v)
        indeg[v] += 1
    ready = [b for b in range(n) if indeg[b] == 0]
    seen = 0
    while ready:
        b = ready.pop()
        seen += 1
        for v in succ[b]:
            indeg[v] -= 1
            if indeg[v] == 0:
                ready.append(v)
    return seen == n


#: problem features the loader accepts: validated AND modelled by the evaluator. A feature
#: that is validated but not yet modelled is refused with a message naming it, never ignored.
MODELLED_FEATURES: frozenset[str] = frozenset({"scenarios", "media"})
#: probabilities of a model's scenarios must sum to 1 within this (SPEC section 10)
PROBABILITY_TOLERANCE = 1e-9


def check_media(net: dict[str, Any], didx: Mapping[str, int]) -> list[tuple[str, tuple[int, ...]]]:
    """SPEC section 5a: ids unique, each medium lists at least two existing devices, each once,
    and a pair of devices shares at most one medium. Returns (id, device indices) per medium."""
    out: list[tuple[str, tuple[int, ...]]] = []
    _unique(net["media"], "network.media", what="a unique medium id")
    pair_medium: dict[tuple[int, int], int] = {}
    for m, medium in enumerate(net["media"]):
        where = f"network.media[{m}]"
        members: list[int] = []
        for j, dev in enumerate(medium["devices"]):
            _need(dev, didx, f"{where}.devices[{j}]", "a device")
            if didx[dev] in members:
                raise ProblemError(f"{where}.devices[{j}]", "each device once", dev,
                                   detail=f"also {where}.devices[{members.index(didx[dev])}]")
            members.append(didx[dev])
        for i, a in enumerate(members):
            for c in members[i + 1:]:
                pair = (min(a, c), max(a, c))
                if pair in pair_medium:
                    other = net["media"][pair_medium[pair]]["id"]
                    names = sorted((medium["devices"][members.index(a)], medium["devices"][members.index(c)]))
                    raise ProblemError(f"{where}.devices", "a pair of devices in at most one medium",
                                       names, detail=f"both are in medium '{other}' too")
                pair_medium[pair] = m
        out.append((medium["id"], tuple(members)))
    return out


def check_scenarios(model: dict[str, Any], bidx: Mapping[str, int],
                    edges: list[tuple[str, str, float]]) -> list[tuple[str, float, frozenset[str]]]:
    """SPEC section 10: names unique, probabilities > 0 summing to 1, skipped blocks named
    and closed under successors, every block runs in some scenario. Returns (name,
    probability, skipped block ids) per scenario, ids as in the file (a split block's id
    stands for all its shards)."""
    scenarios = model["scenarios"]
    if not scenarios:
        return []
    out: list[tuple[str, float, frozenset[str]]] = []
    _unique(scenarios, "model.scenarios", key="name", what="a unique scenario name")
    for k, sc in enumerate(scenarios):
        where = f"model.scenarios[{k}]"
        skip: list[str] = []
        for j, b in enumerate(sc["skip"]):
            _need(b, bidx, f"{where}.skip[{j}]", "a block")
            if b in skip:
                raise ProblemError(f"{where}.skip[{j}]", "each block once", b)
            skip.append(b)
        skipped = frozenset(skip)
        for u, v, _ in edges:
            if u in skipped and v not in skipped:
                raise ProblemError(f"{where}.skip", "the successors of every skipped block skipped too",
                                   v, detail=f"'{v}' runs but its input from '{u}' is skipped in "
                                   f"scenario '{sc['name']}'")
        if len(skipped) == len(bidx):
            raise ProblemError(f"{where}.skip", "at least one block that runs", None,
                               detail=f"scenario '{sc['name']}' skips every block")
        out.append((sc["name"], float(sc["probability"]), skipped))
    total = sum(pr for _, pr, _ in out)
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        raise ProblemError("model.scenarios", "probabilities that sum to 1", round(total, 12),
                           detail="within 1e-9")
    never = [b for b in bidx if all(b in sk for _, _, sk in out)]
    if never:
        raise ProblemError("model.scenarios", "every block to run in at least one scenario", never[0],
                           detail=f"'{never[0]}' is skipped in every scenario"
                           + (f" (and {len(never) - 1} more blocks)" if len(never) > 1 else ""))
    return out


def _gate(feature: str, field: str, what: str) -> None:
    if feature not in MODELLED_FEATURES:
        raise ProblemError(field, f"a problem without {what}", None,
                           detail=f"the file's {what} are valid, but the evaluator does not model "
                           f"them yet, and a plan that ignored them would mislead: remove the key")


def _build(d: dict[str, Any], file: str | None) -> Problem:
    model = d["model"]
    blocks = model["blocks"]
    devices = d["devices"]
    bidx = _unique(blocks, "model.blocks")
    didx = _unique(devices, "devices")
    dtypes = {dev["type"] or dev["id"] for dev in devices}

    # edges: every end names a block; pairs carry the producer's output_bytes
    edges: list[tuple[str, str, float]] = []
    seen_edges: dict[tuple[str, str], int] = {}
    for k, e in enumerate(model["edges"]):
        if isinstance(e, dict):
            src, dst, nbytes, fs, fd = e["src"], e["dst"], e["bytes"], ".src", ".dst"
        else:
            (src, dst), nbytes, fs, fd = e, None, "[0]", "[1]"
        _need(src, bidx, f"model.edges[{k}]{fs}", "a block")
        _need(dst, bidx, f"model.edges[{k}]{fd}", "a block")
        if (src, dst) in seen_edges:
            raise ProblemError(f"model.edges[{k}]", "each edge once", [src, dst],
                               detail=f"repeats model.edges[{seen_edges[src, dst]}]")
        seen_edges[src, dst] = k
        edges.append((src, dst, blocks[bidx[src]]["output_bytes"] if nbytes is None else nbytes))

    cycle = None
    if not _acyclic(len(blocks), [(bidx[u], bidx[v]) for u, v, _ in edges]):
        graph = nx.DiGraph()                   # only now: to name the blocks on a cycle
        graph.add_nodes_from(bidx)
        graph.add_edges_from((u, v) for u, v, _ in edges)
        cycle = nx.find_cycle(graph)
    if cycle:
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise ProblemError("model.edges", "an acyclic block graph", None, detail=f"cycle: {path}")

    for i, blk in enumerate(blocks):
        for j, dev in enumerate(blk["allowed_devices"] or ()):
            _need(dev, didx, f"model.blocks[{i}].allowed_devices[{j}]", "a device")
        for key in blk["time_s"]:
            if key not in didx and key not in dtypes:
                raise ProblemError(f"model.blocks[{i}].time_s", "keys that are device ids or types",
                                   key, detail=did_you_mean(key, list(didx) + sorted(dtypes)))

    source = d["source"] if d["source"] is not None else devices[0]["id"]
    sink = d["sink"] if d["sink"] is not None else source
    _need(source, didx, "source", "a device")
    _need(sink, didx, "sink", "a device")
    for b, dev in d["pinned"].items():
        _need(b, bidx, f"pinned.{b}", "a block (as key)")
        _need(dev, didx, f"pinned.{b}", "a device")

    objective = d["objective"]
    if isinstance(objective, dict) and not any(w > 0 for w in objective.values()):
        raise ProblemError("objective", "at least one positive weight", objective)

    # network: default for every pair, then mirrors of symmetric links, then listed links
    D = len(devices)
    net = d["network"]
    lat = np.full((D, D), np.inf)
    bw = np.zeros((D, D))
    if net["default"] is not None:
        lat[:] = net["default"]["latency_s"]
        bw[:] = net["default"]["bandwidth_bytes_per_s"]
    listed: dict[tuple[int, int], int] = {}
    for k, link in enumerate(net["links"]):
        _need(link["src"], didx, f"network.links[{k}].src", "a device")
        _need(link["dst"], didx, f"network.links[{k}].dst", "a device")
        a, c = didx[link["src"]], didx[link["dst"]]
        if a == c:
            raise ProblemError(f"network.links[{k}]", "a link between two different devices",
                               link["src"])
        if (a, c) in listed:
            raise ProblemError(f"network.links[{k}]", "one entry per directed device pair",
                               [link["src"], link["dst"]], detail=f"repeats network.links[{listed[a, c]}]")
        listed[a, c] = k
    for k, link in enumerate(net["links"]):
        a, c = didx[link["src"]], didx[link["dst"]]
        if link["symmetric"] and (c, a) not in listed:
            lat[c, a], bw[c, a] = link["latency_s"], link["bandwidth_bytes_per_s"]
    for k, link in enumerate(net["links"]):
        a, c = didx[link["src"]], didx[link["dst"]]
        lat[a, c], bw[a, c] = link["latency_s"], link["bandwidth_bytes_per_s"]

    media = check_media(net, didx)
    if media:
        _gate("media", "network.media", "shared media")
        for name in ("input", "output"):     # they name source and sink in medium_order (SPEC 7)
            if name in bidx:
                raise ProblemError(f"model.blocks[{bidx[name]}].id", "a block id other than 'input' and "
                                   "'output' in a problem with shared media", name,
                                   detail="medium_order uses them for source and sink")
    scenarios = check_scenarios(model, bidx, edges)
    if scenarios:
        _gate("scenarios", "model.scenarios", "scenarios")
    if scenarios and media:
        # each is modelled, and each method that supports one was checked against brute on
        # it; the two together were not (scenario evaluation of a medium's schedule): refuse
        raise ProblemError("network.media", "a problem without shared media when the model has "
                           "scenarios", None, detail="shared media and scenarios are each modelled, "
                           "but not together yet: remove one (placement profile and generate: --no-media)")

    constraints = {k: v for k, v in d["constraints"].items() if v is not None}
    if not scenarios and "latency_max_s" in constraints:
        # one scenario: its latency is the worst one; every method reads the latency_s bound
        worst = constraints.pop("latency_max_s")
        constraints["latency_s"] = min(constraints.get("latency_s", worst), worst)
    source_data = {
        "d": d, "file": file, "blocks": blocks, "edges": edges, "pinned": d["pinned"],
        "input_bytes": model["input_bytes"], "lat": lat, "bw": bw, "source": didx[source],
        "sink": didx[sink], "scenarios": scenarios, "media": tuple(media),
        "constraints": constraints, "objective": Objective.parse(objective),
    }
    return assemble(source_data, None)


def assemble(src: Mapping[str, Any], choice: Mapping[str, int] | None,
             relax: frozenset[str] | None = None, union: frozenset[str] | None = None) -> Problem:
    """The `Problem` of a validated file (``src``, as `_build` keeps it) expanded by the
    split ``choice`` (block -> ways, every split block at ``max(ways)`` where it names
    none; the caller checked it: `Problem.expand`). ``relax``: the blocks to build as the
    relaxation of every choice (`placement.split.relaxed`, for bounds) instead; ``union``:
    the blocks whose every way's shards the union of every expansion holds
    (`placement.split.union`, for exact methods; ``Problem.union_members`` maps them)."""
    d, file, blocks = src["d"], src["file"], src["blocks"]
    model = d["model"]
    options = split.options(blocks)
    chosen = {b: int((choice or {}).get(b, max(w))) for b, w in options.items()}
    # split transform (SPEC section 6); shard ids must not collide with existing ids
    members = None
    if union:
        new_blocks, new_edges, pinned, members = split.union(blocks, src["edges"], src["pinned"],
                                                             src["input_bytes"], union)
    elif relax:
        new_blocks, new_edges, pinned = split.relaxed(blocks, src["edges"], src["pinned"],
                                                      src["input_bytes"], relax)
    else:
        new_blocks, new_edges, pinned = split.expand(blocks, src["edges"], src["pinned"],
                                                     src["input_bytes"], chosen)
    if len(new_blocks) != len(blocks):
        seen: set[str] = set()
        for blk in new_blocks:
            if blk["id"] in seen:
                raise ProblemError("model.blocks", "shard ids '<id>#<k>' not already used",
                                   blk["id"], detail="rename the block that uses it")
            seen.add(blk["id"])
    nidx = {b["id"]: i for i, b in enumerate(new_blocks)}
    didx = {v["id"]: i for i, v in enumerate(d["devices"])}

    block_objs = tuple(Block(
        id=b["id"], flops=b["flops"], params_bytes=b["params_bytes"],
        activation_bytes=b["activation_bytes"], output_bytes=b["output_bytes"], kind=b["kind"],
        time_s=dict(b["time_s"]),
        allowed_devices=tuple(b["allowed_devices"]) if b["allowed_devices"] is not None else None,
        input_bytes=b["input_bytes"], origin=b.get("origin"), modules=tuple(b["modules"]),
        fx_nodes=tuple(b["fx_nodes"])) for b in new_blocks)
    device_objs = tuple(Device(
        id=v["id"], type=v["type"] or v["id"], flops_per_s=v["flops_per_s"],
        memory_bytes=v["memory_bytes"], power_active_w=v["power_active_w"],
        power_idle_w=v["power_idle_w"], tx_power_w=v["tx_power_w"], rx_power_w=v["rx_power_w"],
        efficiency=dict(v["efficiency"])) for v in d["devices"])

    expanded = dict(d)
    expanded["model"] = dict(model, blocks=[{k: v for k, v in b.items() if k not in ("origin",)}
                                            for b in new_blocks],
                             edges=[{"src": u, "dst": v, "bytes": n} for u, v, n in new_edges])
    expanded["pinned"] = pinned
    constraints = dict(src["constraints"])
    special = bool(relax or union)
    out = Problem(
        name=d["name"], objective=src["objective"],
        constraints=constraints,
        count_idle=d["count_idle"], model_name=model["name"], input_bytes=model["input_bytes"],
        blocks=block_objs, devices=device_objs,
        edges=tuple((nidx[u], nidx[v], n) for u, v, n in new_edges),
        link_latency=src["lat"], link_bandwidth=src["bw"], source=src["source"], sink=src["sink"],
        pinned={nidx[b]: didx[v] for b, v in pinned.items()}, spec=expanded, path=file,
        scenarios=tuple(Scenario(name, prob, np.array(
            [(blk.origin or blk.id) not in skipped for blk in block_objs], dtype=bool))
            for name, prob, skipped in src["scenarios"]),
        media=tuple(src["media"]),
        split_options={} if special else options, split={} if special else chosen,
        split_source=None if special else src)
    if members is not None:
        out.__dict__["union_members"] = tuple(members)
    return out

"""Reproducible synthetic problems: the same arguments and seed give the same file.

Model shapes
  ``chain``   a sequence of conv blocks, spatial size shrinking and weights growing with depth.
  ``dag``     layers of 1 to 3 parallel blocks, random edges between consecutive layers and
              skip edges across two layers.
  ``hybrid``  MobileViT-like: a conv stem, conv stages (inverted-residual units with skip
              edges), then attention stages (local conv, ``L`` pairs of attention + MLP
              blocks, fusion conv with a skip edge from the stage input), then a head.
  With ``split > 0`` that fraction of the heaviest blocks gets ``"split": {"ways": [2, 4]}``
  (``spatial`` for conv blocks, ``tensor`` for attention and MLP).

Device sets
  ``homogeneous``  identical Raspberry Pi 4-class boards.
  ``iot``          a heterogeneous swarm of Pi 3 / Pi 4 / Pi 5 / Jetson Nano-class boards.
  ``edge``         phones, Jetsons, laptops and Pi 5s, plus one near-edge GPU server (last).
  Speeds, powers and per-kind efficiencies are round figures of the device classes
  (see ``profiles/catalog`` for sourced ones). ``memory_bytes`` is the memory budget for the
  model, set *relative to the model's size*: the largest working memory plus a fraction of
  all the weights (0.35 for a Pi 3 up to 3 for a laptop, 20 for the server), and never less
  than 1.1 x the largest single block, so that every block fits somewhere while small
  boards cannot hold the whole model: memory binds at every model size, as in the
  settings this package is for.

Networks
  ``star``   every pair talks through one Wi-Fi access point: two hops, so half the
             AP's bandwidth and twice its latency (one ``network.default``); the devices
             share the AP's air (one medium ``ap``, SPEC 5a) when the package models shared
             media, unless ``media=False`` (``--no-media``).
  ``mesh``   a listed, symmetric link for every pair, bandwidths and latencies drawn per pair.
  ``tiers``  two tiers: a fast LAN inside each tier, a slower uplink between them (with the
             ``edge`` set the server is the upper tier, reached over a 5G-class uplink).

Device 0 is ``source`` and ``sink`` (the camera).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SHAPES = ("chain", "dag", "hybrid")
DEVICE_SETS = ("homogeneous", "iot", "edge")
NETWORKS = ("star", "mesh", "tiers")
#: the largest problems the generator writes: beyond these a problem file is tens of MB and
#: no method here plans it in useful time (a mesh of 512 devices has 261,632 links).
MAX_BLOCKS = 20_000
MAX_DEVICES = 512

# type: flops_per_s (effective), memory factor (x model bytes), active, idle, tx, rx (W),
# efficiency per kind
_TYPES: dict[str, tuple[float, float, float, float, float, float, dict[str, float]]] = {
    "rpi3": (2.5e9, 0.35, 4.0, 1.9, 1.0, 0.8, {"attention": 0.6}),
    "rpi4": (6.0e9, 0.5, 6.4, 2.7, 1.2, 0.9, {"attention": 0.6}),
    "rpi5": (1.5e10, 0.7, 8.0, 3.0, 1.2, 0.9, {"attention": 0.7}),
    "jetson-nano": (4.0e10, 0.9, 10.0, 1.5, 1.5, 1.0, {"attention": 0.5, "conv": 1.2}),
    "jetson-orin-nano": (2.0e11, 1.5, 15.0, 3.0, 1.5, 1.0, {"attention": 0.7}),
    "phone": (3.0e10, 0.8, 5.0, 0.5, 1.0, 0.8, {"attention": 0.8}),
    "laptop": (1.0e11, 3.0, 30.0, 8.0, 2.0, 1.5, {}),
    "server": (2.0e12, 20.0, 250.0, 60.0, 5.0, 5.0, {"attention": 1.2}),
}


def _sig(x: float, digits: int = 3) -> float:
    """Round to a few significant digits so files stay readable."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{digits}g}")


def _conv_block(rng, i: int, res: float, ch: float, kind: str = "conv") -> dict[str, Any]:
    out = res * res * ch * 4
    flops = 2 * res * res * ch * ch * 9 * rng.uniform(0.5, 1.5) / 4
    params = ch * ch * 9 * 4 * rng.uniform(0.5, 1.5) / 4
    return {"id": f"b{i}", "kind": kind, "flops": _sig(flops), "params_bytes": _sig(params),
            "activation_bytes": _sig(out * rng.uniform(2.0, 3.0)), "output_bytes": _sig(out)}


def _token_block(rng, i: int, tokens: float, dim: float, kind: str) -> dict[str, Any]:
    out = tokens * dim * 4
    if kind == "attention":
        flops = 4 * tokens * dim * dim * 2 + 2 * tokens * tokens * dim
        params = 4 * dim * dim * 4
        act = out * 3 + tokens * tokens * 4 * 4
    else:
        flops = 2 * tokens * dim * dim * 4 * 2
        params = 8 * dim * dim * 4
        act = out * 5
    f = rng.uniform(0.7, 1.3)
    return {"id": f"b{i}", "kind": kind, "flops": _sig(flops * f), "params_bytes": _sig(params * f),
            "activation_bytes": _sig(act), "output_bytes": _sig(out)}


def _chain(rng, n: int) -> tuple[list[dict], list]:
    blocks, edges = [], []
    for i in range(n):
        depth = i / max(1, n - 1)
        res = 112 / 2 ** int(depth * 4)
        ch = 16 * 2 ** int(depth * 4)
        blocks.append(_conv_block(rng, i, res, ch))
        if i:
            edges.append([f"b{i - 1}", f"b{i}"])
    blocks[-1]["kind"] = "head"
    return blocks, edges


def _dag(rng, n: int) -> tuple[list[dict], list]:
    layers: list[list[int]] = []
    i = 0
    while i < n:
        width = 1 if (not layers or n - i == 1) else int(min(rng.integers(1, 4), n - i))
        layers.append(list(range(i, i + width)))
        i += width
    if len(layers[-1]) > 1:  # a single output block, as a classifier has
        last = layers[-1].pop()
        layers.append([last])
    blocks = []
    for depth, layer in enumerate(layers):
        frac = depth / max(1, len(layers) - 1)
        for b in layer:
            blk = _conv_block(rng, b, 112 / 2 ** int(frac * 4), 16 * 2 ** int(frac * 4))
            blk["flops"] = _sig(blk["flops"] / len(layer))
            blocks.append(blk)
    edges: set[tuple[int, int]] = set()
    for up, down in zip(layers, layers[1:]):
        for v in down:
            for u in rng.choice(up, size=min(len(up), int(rng.integers(1, 3))), replace=False):
                edges.add((int(u), v))
        for u in up:
            if not any(e[0] == u for e in edges):
                edges.add((u, int(rng.choice(down))))
    for k in range(len(layers) - 2):
        if rng.random() < 0.3:
            edges.add((int(rng.choice(layers[k])), int(rng.choice(layers[k + 2]))))
    blocks[-1]["kind"] = "head"
    return blocks, [[f"b{u}", f"b{v}"] for u, v in sorted(edges)]


def _hybrid(rng, n: int) -> tuple[list[dict], list]:
    if n < 8:
        blocks, edges = _chain(rng, n)
        for k, blk in enumerate(blocks[1:-1], start=1):
            if k % 2 == 0:
                blk["kind"] = "attention"
        return blocks, edges
    blocks: list[dict] = []
    edges: list[list] = []

    def add(blk: dict, pred: int | None) -> int:
        blocks.append(blk)
        i = len(blocks) - 1
        if pred is not None:
            edges.append([f"b{pred}", f"b{i}"])
        return i

    body = n - 2                                   # stem and head
    n_conv = max(2, int(round(body * 0.4)))
    n_trans = body - n_conv
    stages = max(1, min(3, n_trans // 6))          # attention stages of >= 6 blocks
    prev = add(_conv_block(rng, 0, 128, 16), None)
    res, ch = 64.0, 32.0
    unit_in = prev
    for k in range(n_conv):
        if k and k % max(1, n_conv // 3) == 0:
            res, ch = res / 2, ch * 1.5
        prev = add(_conv_block(rng, len(blocks), res, ch), prev)
        if k % 2 == 1 and prev - unit_in == 2:     # inverted-residual unit: skip over the pair
            edges.append([f"b{unit_in}", f"b{prev}"])
        if k % 2 == 1:
            unit_in = prev
    sizes = [n_trans // stages + (1 if s < n_trans % stages else 0) for s in range(stages)]
    tokens, dim = (res / 2) ** 2, 96.0
    for size in sizes:
        stage_in = prev
        prev = add(_conv_block(rng, len(blocks), res, ch), prev)            # local representation
        pairs = (size - 2) // 2
        for j in range(pairs):
            prev = add(_token_block(rng, len(blocks), tokens, dim, "attention"), prev)
            prev = add(_token_block(rng, len(blocks), tokens, dim, "mlp"), prev)
        if (size - 2) % 2:
            prev = add(_token_block(rng, len(blocks), tokens, dim, "norm"), prev)
            blocks[-1]["flops"] = _sig(blocks[-1]["flops"] / 50)
            blocks[-1]["params_bytes"] = _sig(dim * 8)
        prev = add(_conv_block(rng, len(blocks), res, ch), prev)            # fusion
        edges.append([f"b{stage_in}", f"b{prev}"])                          # concat with input
        res, ch, tokens, dim = res / 2, ch * 1.5, tokens / 4, dim * 1.33
    head = _conv_block(rng, len(blocks), 1, ch * 4, kind="head")
    head["output_bytes"] = 4000.0
    add(head, prev)
    return blocks, edges


def _devices(rng, kind: str, n: int, total_params: float, max_act: float, max_block: float
             ) -> list[dict[str, Any]]:
    if kind == "homogeneous":
        types = ["rpi4"] * n
    elif kind == "iot":
        types = list(rng.choice(["rpi3", "rpi4", "rpi5", "jetson-nano"], size=n))
    else:
        types = list(rng.choice(["phone", "jetson-nano", "jetson-orin-nano", "laptop", "rpi5"],
                                size=max(1, n - 1)))
        types = (types + ["server"])[:n] if n > 1 else ["server"]
    out = []
    for i, t in enumerate(types):
        rate, memf, act, idle, tx, rx, eff = _TYPES[t]
        jitter = 1.0 if kind == "homogeneous" else rng.uniform(0.85, 1.15)
        memory = max(1.1 * max_block, max_act + memf * jitter * total_params)
        out.append({"id": f"{t}-{i}", "type": t, "flops_per_s": _sig(rate * jitter),
                    "memory_bytes": _sig(memory),
                    "power_active_w": act, "power_idle_w": idle, "tx_power_w": tx, "rx_power_w": rx,
                    "efficiency": dict(eff)})
    return out


def _network(rng, kind: str, devices: list[dict], device_set: str, media: bool) -> dict[str, Any]:
    if kind == "star":
        net: dict[str, Any] = {"default": {"bandwidth_bytes_per_s": 1.5e7, "latency_s": 0.004}}
        if media and len(devices) >= 2:  # one access point: one channel, shared air
            net["media"] = [{"id": "ap", "devices": [d["id"] for d in devices]}]
        return net
    if kind == "mesh":
        links = []
        for i in range(len(devices)):
            for j in range(i + 1, len(devices)):
                links.append({"src": devices[i]["id"], "dst": devices[j]["id"],
                              "bandwidth_bytes_per_s": _sig(rng.uniform(5e6, 6e7)),
                              "latency_s": _sig(rng.uniform(0.001, 0.006)), "symmetric": True})
        return {"links": links}
    # tiers
    if device_set == "edge" and len(devices) > 1:
        upper = {devices[-1]["id"]}
    else:
        upper = {d["id"] for d in devices[len(devices) // 2:]} if len(devices) > 1 else set()
    links = []
    for i, a in enumerate(devices):
        for b in devices[i + 1:]:
            if (a["id"] in upper) != (b["id"] in upper):
                links.append({"src": a["id"], "dst": b["id"], "bandwidth_bytes_per_s": 1.25e7,
                              "latency_s": 0.015, "symmetric": True})
    return {"default": {"bandwidth_bytes_per_s": 1.0e8, "latency_s": 0.0005}, "links": links}


def generate(shape: str = "hybrid", blocks: int = 20, devices: int = 4, *,
             device_set: str = "edge", network: str = "star", seed: int = 0,
             split: float = 0.0, objective: str | dict[str, float] = "latency",
             name: str | None = None, media: bool | None = None) -> dict[str, Any]:
    """A synthetic problem as a dict (a problem file's content; `placement.load` takes it).

    ``shape`` in chain, dag, hybrid; ``blocks`` >= 1 and ``devices`` >= 1 are exact counts
    (before any split); ``device_set`` in homogeneous, iot, edge; ``network`` in star,
    mesh, tiers; ``split`` is the fraction of the heaviest blocks given a ``split`` entry.
    The same arguments give the same problem on every machine.
    """
    from .errors import InputError, _short

    for value, allowed, what in ((shape, SHAPES, "shape"), (device_set, DEVICE_SETS, "device_set"),
                                 (network, NETWORKS, "network")):
        if value not in allowed:
            raise InputError(f"{what}: expected one of {', '.join(allowed)}, found {_short(value)}")
    if not 1 <= blocks <= MAX_BLOCKS:
        raise InputError(f"blocks: expected 1 to {MAX_BLOCKS:,}, found {blocks:,}")
    if not 1 <= devices <= MAX_DEVICES:
        raise InputError(f"devices: expected 1 to {MAX_DEVICES:,}, found {devices:,}")
    if not 0.0 <= split <= 1.0:
        raise InputError(f"split: expected a fraction in [0, 1], found {split}")
    rng = np.random.default_rng([seed, SHAPES.index(shape), blocks, devices])
    blks, edges = {"chain": _chain, "dag": _dag, "hybrid": _hybrid}[shape](rng, blocks)
    assert len(blks) == blocks, (shape, blocks, len(blks))
    if split > 0:
        heavy = np.argsort([-b["flops"] for b in blks], kind="stable")[: int(round(split * blocks))]
        for i in heavy:
            mode = "spatial" if blks[i]["kind"] == "conv" else "tensor"
            blks[int(i)]["split"] = {"ways": [2, 4], "mode": mode}
    total_params = sum(b["params_bytes"] for b in blks)
    max_act = max(b["activation_bytes"] for b in blks)
    max_block = max(b["params_bytes"] + b["activation_bytes"] for b in blks)
    devs = _devices(rng, device_set, devices, total_params, max_act, max_block)
    from .loader import MODELLED_FEATURES
    media = ("media" in MODELLED_FEATURES) if media is None else media
    net = _network(rng, network, devs, device_set, media)
    return {
        "name": name or f"{shape}-{blocks}b-{devices}d-{device_set}-{network}-s{seed}",
        "objective": objective,
        "model": {"name": f"synthetic-{shape}", "input_bytes": 602112.0, "blocks": blks,
                  "edges": edges},
        "devices": devs,
        "network": net,
        "source": devs[0]["id"],
        "meta": {"generator": {"shape": shape, "blocks": blocks, "devices": devices,
                               "device_set": device_set, "network": network, "seed": seed,
                               "split": split}},
    }


def add_scenarios(problem: dict[str, Any], scenarios: int = 3, seed: int = 0) -> dict[str, Any]:
    """A copy of a problem dict with ``scenarios`` random scenarios (SPEC section 10), seeded:
    each skips a random block and everything after it (closed under successors: a cut of
    the graph), probabilities from a Dirichlet draw; when some block would run in no
    scenario the last one skips nothing. For tests and benchmarks."""
    import copy

    out = copy.deepcopy(problem)
    model = out["model"]
    ids = [b["id"] for b in model["blocks"]]
    succ: dict[str, list[str]] = {b: [] for b in ids}
    for e in model["edges"]:
        u, v = (e["src"], e["dst"]) if isinstance(e, dict) else e
        succ[u].append(v)
    rng = np.random.default_rng([seed, len(ids), scenarios, 16])
    skips = []
    for _ in range(scenarios):
        start = ids[int(rng.integers(len(ids)))] if rng.random() < 0.8 else None
        skip: set[str] = set()
        stack = [start] if start is not None else []
        while stack:
            b = stack.pop()
            if b not in skip:
                skip.add(b)
                stack.extend(succ[b])
        if len(skip) == len(ids):
            skip = set()
        skips.append(skip)
    if any(all(b in s for s in skips) for b in ids):
        skips[-1] = set()
    prob = rng.dirichlet(np.ones(scenarios))
    prob = [float(x) for x in prob]
    prob[-1] = 1.0 - sum(prob[:-1])
    model["scenarios"] = [{"name": f"s{k}", "probability": prob[k], "skip": sorted(skips[k])}
                          for k in range(scenarios)]
    # shared media and scenarios are not modelled together (placement.loader): the air goes
    out.get("network", {}).pop("media", None)
    return out


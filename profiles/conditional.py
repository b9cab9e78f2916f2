"""Conditional models: a generalist with experts ("Ask the Expert"), or early exits.

Both build one ``model`` section with ``scenarios`` (SPEC section 10) from real profiled
sections (`profiles.profile_model`); the probabilities are the user's (see
docs/profiles.md: measure them from a confidence threshold on your own data).

- `combine_experts(generalist, experts, route)`: an ``input`` block (the image at the
  source), the generalist's blocks (ids prefixed ``g/``), a small ``router`` block after its
  output blocks (top-k confidence over the logits; it also reads the image), and each
  expert's blocks (``e1/``, ``e2/``, ...), whose input blocks receive the image, with the
  router's decision, from the router's device. Scenario ``edge-only`` (probability ``route[0]``) skips
  every expert; scenario ``expert-k`` (``route[k]``) skips the others. An expert is a whole
  model that may sit on a near-edge server; every expert's weights stay loaded (SPEC 10).
- `add_exits(section, exits, heads)`: an exit head block ``exit@X`` after each named block
  ``X``; scenario ``exit@X`` (its probability) skips every block that only the later stages
  need; scenario ``full`` runs everything (the exit heads included: each one is evaluated to
  decide, then the inference goes on).

The pure-dict builders need no torch; `exit_head_costs` profiles the real exit heads (torch).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Mapping, Sequence

#: the router: top-k over the generalist's logits, a few flops per class (its cost is real but
#: tiny next to any block; it exists so that the scenarios branch at a block).
ROUTER_FLOPS_PER_LOGIT = 8.0
#: the router's decision: the generalist's top-1 class and its top-k confidence (two float32),
#: sent with the image to the chosen expert, or to ``sink`` as the answer when no expert runs
ROUTER_OUTPUT_BYTES = 8.0
#: k of the router's top-k confidence (the summed softmax of the k largest logits)
ROUTER_TOP_K = 5
#: probabilities must sum to 1 within this (as the loader checks)
_TOL = 1e-9


def _error(message: str):
    from placement.errors import InputError
    return InputError(message)


def _check_probabilities(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if any(not math.isfinite(v) or v <= 0 for v in out):
        raise _error(f"{what}: expected probabilities > 0, found {', '.join(map(str, values))}")
    return out


def parse_route(text: str, n_experts: int) -> list[float]:
    """``"0.6,0.1,0.1,0.1,0.1"``: the edge-only probability, then each expert's (sum 1)."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise _error(f"--route: expected comma-separated probabilities, found '{text}'") from None
    if len(values) != n_experts + 1:
        raise _error(f"--route: expected {n_experts + 1} probabilities (edge-only, then one per expert), "
                     f"found {len(values)}")
    values = _check_probabilities(values, "--route")
    if abs(sum(values) - 1.0) > _TOL:
        raise _error(f"--route: expected probabilities that sum to 1, found {sum(values):.12g}")
    return values


def parse_experts(text: str) -> list[str]:
    """``"deit_small_patch16_224:4"`` (four experts of that model) or ``"a,b,c"``."""
    out: list[str] = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        name, _, count = item.rpartition(":") if item.rsplit(":", 1)[-1].isdigit() else (item, "", "1")
        if not count.isdigit() or int(count) < 1:
            raise _error(f"--experts: expected MODEL or MODEL:COUNT, found '{item}'")
        out += [name] * int(count)
    if not out:
        raise _error("--experts: expected at least one expert model")
    return out


def parse_exits(text: str) -> dict[str, float]:
    """``"stage2:0.3,stage3:0.3"``: block id -> the probability that the inference exits there."""
    out: dict[str, float] = {}
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        block, sep, prob = item.rpartition(":")
        try:
            p = float(prob)
        except ValueError:
            p = math.nan
        if not sep or not block or not math.isfinite(p) or not 0 < p < 1:
            raise _error(f"--exits: expected BLOCK:PROBABILITY with 0 < PROBABILITY < 1, found '{item}'")
        out[block] = p
    if not out:
        raise _error("--exits: expected at least one BLOCK:PROBABILITY")
    if sum(out.values()) >= 1.0:
        raise _error(f"--exits: the exit probabilities sum to {sum(out.values()):.6g}; expected less than 1 "
                     "(the rest is the full model)")
    return out


def _prefixed(section: Mapping[str, Any], prefix: str, model_name: str) -> tuple[list[dict], list[dict]]:
    blocks = []
    for b in section["blocks"]:
        nb = copy.deepcopy(dict(b))
        nb["id"] = prefix + b["id"]
        # what the runtime rebuilds the block from (placement/runtime/conditional.py): the
        # source model (a key of the section's ``meta.sources``) and the block's id there
        nb["meta"] = dict(nb.get("meta") or {}, model=model_name, block=b["id"], source=prefix.rstrip("/"))
        blocks.append(nb)
    edges = []
    for e in section["edges"]:
        if isinstance(e, Mapping):
            edges.append({"src": prefix + e["src"], "dst": prefix + e["dst"], "bytes": e.get("bytes")})
        else:
            edges.append({"src": prefix + e[0], "dst": prefix + e[1], "bytes": None})
    for e in edges:
        if e["bytes"] is None:
            e["bytes"] = next(b["output_bytes"] for b in blocks if b["id"] == e["src"])
    return blocks, edges


def source_model(section: Mapping[str, Any]) -> str:
    """What `placement run` builds a profiled section's blocks from: the MODEL the profiler
    was given (``meta.source_model``: a timm name or ``package.module:callable``), else the
    section's name (a timm name for the shipped examples)."""
    return str((section.get("meta") or {}).get("source_model") or section.get("name", ""))


def _ends(blocks: Sequence[Mapping], edges: Sequence[Mapping]) -> tuple[list[str], list[str]]:
    has_in = {e["dst"] for e in edges}
    has_out = {e["src"] for e in edges}
    return ([b["id"] for b in blocks if b["id"] not in has_in],
            [b["id"] for b in blocks if b["id"] not in has_out])


def combine_experts(generalist: Mapping[str, Any], experts: Sequence[Mapping[str, Any]],
                    route: Sequence[float], *, name: str | None = None) -> dict[str, Any]:
    """One model section: generalist, router, experts, and the scenarios of `route`
    (``route[0]``: edge-only; ``route[k]``: expert k). See the module docstring."""
    if len(route) != len(experts) + 1:
        raise _error(f"route: expected {len(experts) + 1} probabilities, found {len(route)}")
    route = _check_probabilities(route, "route")
    if abs(sum(route) - 1.0) > _TOL:
        raise _error(f"route: expected probabilities that sum to 1, found {sum(route):.12g}")
    gname = generalist.get("name", "generalist")
    blocks, edges = _prefixed(generalist, "g/", gname)
    g_in, g_out = _ends(blocks, edges)
    input_bytes = float(generalist["input_bytes"])
    # The image is read by the generalist and by the router, which forwards it to the chosen
    # expert: an explicit zero-cost "input" block at the source (pinned there by make_problem,
    # as the profiler does for any model whose input several blocks read) sends it to both,
    # so a router away from the image pays for the image's transfer.
    blocks.insert(0, {"id": "input", "flops": 0.0, "params_bytes": 0.0, "activation_bytes": input_bytes,
                      "output_bytes": input_bytes, "kind": "other", "modules": [], "fx_nodes": [],
                      "meta": {"image": "the input image at the source, read by the generalist's first "
                                        "blocks and by the router"}})
    edges[:0] = [{"src": "input", "dst": i, "bytes": input_bytes} for i in g_in]
    logits = sum(next(b for b in blocks if b["id"] == o)["output_bytes"] for o in g_out) / 4.0
    router = {"id": "router", "kind": "head", "flops": ROUTER_FLOPS_PER_LOGIT * max(logits, 1.0),
              "params_bytes": 0.0, "activation_bytes": 4.0 * max(logits, 1.0),
              "output_bytes": ROUTER_OUTPUT_BYTES,
              "meta": {"router": "top-k confidence over the generalist's logits",
                       "logits": int(logits), "top_k": ROUTER_TOP_K}}
    blocks.append(router)
    for o in g_out:
        edges.append({"src": o, "dst": "router",
                      "bytes": next(b for b in blocks if b["id"] == o)["output_bytes"]})
    edges.append({"src": "input", "dst": "router", "bytes": input_bytes})
    expert_ids: list[list[str]] = []
    for k, ex in enumerate(experts, start=1):
        eb, ee = _prefixed(ex, f"e{k}/", ex.get("name", f"expert{k}"))
        e_in, _ = _ends(eb, ee)
        blocks += eb
        edges += ee
        # the chosen expert gets the image from the router's device (the decision travels with it)
        for i in e_in:
            edges.append({"src": "router", "dst": i, "bytes": float(ex["input_bytes"]) + ROUTER_OUTPUT_BYTES})
        expert_ids.append([b["id"] for b in eb])
    scenarios = [{"name": "edge-only", "probability": route[0],
                  "skip": [b for ids in expert_ids for b in ids]}]
    for k, ids in enumerate(expert_ids, start=1):
        scenarios.append({"name": f"expert-{k}", "probability": route[k],
                          "skip": [b for j, other in enumerate(expert_ids, start=1) if j != k for b in other]})
    meta = {"conditional": "experts", "generalist": gname,
            "experts": [ex.get("name", f"expert{k}") for k, ex in enumerate(experts, start=1)],
            "route": list(route),
            # the runtime's rebuild: each block's meta.source is a key here
            "sources": {"g": source_model(generalist),
                        **{f"e{k}": source_model(ex) for k, ex in enumerate(experts, start=1)}}}
    shape = (generalist.get("meta") or {}).get("input_shape")
    if shape:
        meta["input_shape"] = list(shape)
    return {"name": name or f"{gname}+{len(experts)}experts", "input_bytes": input_bytes,
            "blocks": blocks, "edges": edges, "scenarios": scenarios, "meta": meta}


def add_exits(section: Mapping[str, Any], exits: Mapping[str, float],
              heads: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``section`` with an exit head after each block of ``exits`` (block id -> probability of
    exiting there) and the scenarios ``exit@X`` and ``full``. ``heads[X]`` is the exit head's
    block (flops, params_bytes, activation_bytes, output_bytes, meta; see `exit_head_costs`)."""
    out = copy.deepcopy(dict(section))
    ids = [b["id"] for b in out["blocks"]]
    succ: dict[str, list[str]] = {i: [] for i in ids}
    for e in out["edges"]:
        s, d = (e["src"], e["dst"]) if isinstance(e, Mapping) else (e[0], e[1])
        succ[s].append(d)
    unknown = [x for x in exits if x not in succ]
    if unknown:
        from placement.errors import did_you_mean
        raise _error(f"--exits: '{unknown[0]}' is not a block of the model"
                     + (f" ({did_you_mean(unknown[0], ids)})" if did_you_mean(unknown[0], ids) else "")
                     + f"; blocks: {', '.join(ids[:12])}{' ...' if len(ids) > 12 else ''}")
    _check_probabilities(list(exits.values()), "--exits")

    # ancestors: an exit's scenario keeps every block that feeds it or an earlier exit
    pred: dict[str, list[str]] = {i: [] for i in ids}
    for s, ds in succ.items():
        for d in ds:
            pred[d].append(s)

    def before(x: str) -> set[str]:
        seen, stack = {x}, list(pred[x])
        while stack:
            b = stack.pop()
            if b not in seen:
                seen.add(b)
                stack += pred[b]
        return seen

    scenarios = []
    for x, p in exits.items():
        head = dict(heads[x])
        hid = f"exit@{x}"
        head.update(id=hid, kind="head")
        out["blocks"].append(head)
        out["edges"].append({"src": x, "dst": hid, "bytes": next(
            b["output_bytes"] for b in out["blocks"] if b["id"] == x)})
        succ[hid] = []
        pred[hid] = [x]
    for x, p in exits.items():
        keep = before(x) | {f"exit@{y}" for y in exits if y in before(x)}
        skip = [b for b in succ if b not in keep]
        scenarios.append({"name": f"exit@{x}", "probability": p, "skip": skip})
    scenarios.append({"name": "full", "probability": 1.0 - sum(exits.values()), "skip": []})
    out["scenarios"] = scenarios
    out["meta"] = dict(out.get("meta") or {}, conditional="exits", exits=dict(exits),
                       sources={"": source_model(section)})
    return out


def exit_head_costs(model: Any, section: Mapping[str, Any], blocks: Sequence[str], input_shape: Sequence[int],
                    *, num_classes: int | None = None, threads: int = 1, warmup: int = 3,
                    repeats: int = 10) -> dict[str, dict[str, Any]]:
    """Profile a real exit head after each of ``blocks`` (torch): pool the block's output
    (over H x W for a feature map, over the tokens for a sequence), LayerNorm, Linear to the
    model's classes. Returns block id -> an exit head block (flops by fvcore, weights, working
    memory, output bytes, time measured here in ``meta.time_host_s``)."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    from . import graph as G
    from . import measure as M
    from .profile import HOST_TIME_KEY

    gm = G.trace(model)
    x = torch.randn(*input_shape)
    ShapeProp(gm).propagate(x)
    shapes = {n.name: tuple(n.meta["tensor_meta"].shape) for n in gm.graph.nodes
              if isinstance(n.meta.get("tensor_meta"), object) and hasattr(n.meta.get("tensor_meta"), "shape")}
    by_id = {b["id"]: b for b in section["blocks"]}
    if num_classes is None:
        with torch.no_grad():
            num_classes = int(model(x).shape[-1])
    out: dict[str, dict[str, Any]] = {}
    for bid in blocks:
        outputs = (by_id[bid].get("meta") or {}).get("outputs") or []
        node = next((o for o in outputs if o in shapes), None)
        shape = shapes[node] if node is not None else None
        if shape is None or len(shape) not in (3, 4):
            raise _error(f"--exits: block '{bid}' has no single feature-map or token output to attach a head to")
        channels = shape[1] if len(shape) == 4 else shape[-1]
        head = _ExitHead(len(shape), channels, num_classes).eval()
        t = torch.randn(*shape)
        with torch.no_grad():
            flops, _ = M.fvcore_flops(head, (t,))
            act = M.peak_working_bytes(lambda: head(t), [t])
            t_host, _ = M.median_time(lambda _: head(t), warmup=warmup, repeats=repeats)
        params = sum(p.numel() * p.element_size() for p in head.parameters())
        out[bid] = {"flops": float(flops), "params_bytes": float(params), "activation_bytes": float(act),
                    "output_bytes": float(4 * num_classes),
                    "meta": {HOST_TIME_KEY: t_host, "exit_head": {
                        "after": bid, "input_node": node, "input_shape": list(shape), "in_features": int(channels),
                        "num_classes": int(num_classes)}}}
    return out


def _exit_head_class():
    from torch import nn

    class ExitHead(nn.Module):
        """Pool, LayerNorm, Linear: the usual shape of an early-exit classifier."""

        def __init__(self, rank: int, channels: int, num_classes: int):
            super().__init__()
            self.rank = rank
            self.norm = nn.LayerNorm(channels)
            self.fc = nn.Linear(channels, num_classes)

        def forward(self, x):
            x = x.mean(dim=(2, 3)) if self.rank == 4 else x.mean(dim=1)
            return self.fc(self.norm(x))

    return ExitHead


def _ExitHead(rank: int, channels: int, num_classes: int):
    return _exit_head_class()(rank, channels, num_classes)

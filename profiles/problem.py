"""A profiled model + catalog devices + a catalog network -> a complete problem file (no torch)."""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

from . import calibration, catalog

HOST_TIME_KEY = "time_host_s"


def make_problem(model: Mapping[str, Any], device_types: Sequence[str], network: str = "wifi5", *,
                 reference: Mapping[str, Any] | None = None, name: str | None = None,
                 source: str | None = None, objective: Any = "latency",
                 media: bool | None = None) -> dict[str, Any]:
    """Assemble a problem (SPEC section 3) from the ``model`` section `profile_model` returned.

    ``device_types`` are catalog types (repeats allowed: ids become ``rpi4-0``, ``rpi4-1``).
    ``reference`` is the host reference measurement (`calibration.measure_host_reference`);
    with it, every block gets ``time_s[type]``, its calibrated time on each device type in
    the problem; without it (or for blocks profiled without timing), devices fall back to
    ``flops / (flops_per_s * efficiency[kind])``. ``source`` is the id of the camera device
    (default: the first device); the sink is the source. ``media``: see `catalog.network`
    (a Wi-Fi network shares its air when the package models shared media). The input is not
    changed.
    """
    model = copy.deepcopy(dict(model))
    host_rate = float(reference["rate_flops_per_s"]) if reference else None
    devs = catalog.devices(device_types, host_rate=host_rate)
    ids = [d["id"] for d in devs]
    src = source or ids[0]
    if src not in ids:
        raise catalog._input_error(f"source '{src}' is not one of the devices: {', '.join(ids)}")
    if media is None and model.get("scenarios"):
        media = False   # shared media and scenarios are not modelled together (placement.loader)
    net = catalog.network(network, devs, media=media)

    types_seen: list[dict[str, Any]] = []
    for d in devs:
        if d["type"] not in [t["type"] for t in types_seen]:
            types_seen.append(d)
    if reference:
        for b in model["blocks"]:
            t_host = (b.get("meta") or {}).get(HOST_TIME_KEY)
            if t_host is None:
                continue
            fbk = (b.get("meta") or {}).get("flops_by_kind") or {}
            b["time_s"] = {d["type"]: calibration.device_time(t_host, b.get("kind", "other"), fbk, host_rate, d)
                           for d in types_seen}
    pinned = {}
    if any(b["id"] == "input" and not b.get("flops") for b in model["blocks"]):
        pinned["input"] = src  # the raw image is where the camera is

    meta: dict[str, Any] = {
        "generated_by": "placement profile (profiles.make_problem)",
        "devices_requested": list(device_types),
        "network": network,
        "profile": model.get("meta", {}),
    }
    if reference:
        meta["calibration"] = calibration.record(reference, devs)
    else:
        meta["calibration"] = {"method": "none: no host reference; devices use flops / (flops_per_s * efficiency)"}
    problem = {
        "name": name or f"{model.get('name', 'model')}-{len(devs)}dev",
        "objective": objective,
        "model": model,
        "devices": devs,
        "network": net,
        "source": src,
        "sink": src,
        "pinned": pinned,
        "meta": meta,
    }
    return problem

"""From a time measured on this machine to a time on a catalog device.

For block ``b`` measured here in ``t_host(b)`` seconds, its time on device ``d`` is

    t_d(b) = overhead_d + t_host(b) * (R_host / R_d) * rho(b, d)

* ``R_host``: this machine's effective rate, measured in the same run: fvcore FLOPs of a
  fixed reference workload (torchvision ``resnet18`` at 1x3x224x224, random weights) divided
  by its median time, with the same thread count as the blocks;
* ``R_d``: the device's effective rate from the catalog (``flops_per_s``, same flop
  convention, conv-dominated workloads);
* ``rho(b, d) = sum_k share_k(b) * e_host[k] / e_d[k]``: the kind mix of the block (its
  FLOPs by kind) weighs how much better or worse the device does on each kind than on
  convolutions, relative to this machine (a CPU, efficiency profile ``cpu``); for a block
  without FLOPs, its kind alone;
* ``overhead_d``: a fixed per-block cost of the device (kernel launch on GPUs).

The block's own measured time carries what FLOPs miss (memory-bound ops, reshapes, a
block that runs below the reference's efficiency); the ratio of rates moves it to the
device. Everything used is written into the problem's ``meta.calibration``.

The module imports torch only inside `measure_host_reference`.
"""

from __future__ import annotations

from typing import Any, Mapping

from . import catalog

REFERENCE = {"model": "torchvision.models.resnet18", "weights": None, "input_shape": [1, 3, 224, 224]}
HOST_CLASS = "cpu"

_cache: dict[tuple, dict[str, Any]] = {}


def measure_host_reference(threads: int = 1, warmup: int = 3, repeats: int = 10) -> dict[str, Any]:
    """Measure this machine's effective rate on the reference workload (flops/s).

    Returns ``{"model", "input_shape", "flops", "time_host_s", "rate_flops_per_s",
    "threads", "warmup", "repeats"}``. Cached per (threads, warmup, repeats) in the process.
    """
    key = (threads, warmup, repeats)
    if key in _cache:
        return dict(_cache[key])
    import torch
    import torchvision

    from . import measure as M

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = torchvision.models.resnet18(weights=None).eval()
        x = torch.randn(*REFERENCE["input_shape"])
        flops = M.model_fvcore_flops(model, x)
        t, samples = M.median_time(lambda _: model(x), warmup=warmup, repeats=repeats)
    finally:
        torch.set_num_threads(old)
    rec = {**REFERENCE, "flops": flops, "time_host_s": t, "time_host_samples_s": samples,
           "rate_flops_per_s": flops / t, "threads": threads, "warmup": warmup, "repeats": repeats}
    _cache[key] = rec
    return dict(rec)


def kind_ratio(kind: str, flops_by_kind: Mapping[str, float], host_eff: Mapping[str, float],
               dev_eff: Mapping[str, float]) -> float:
    """``rho``: the block's kind mix, weighted e_host[k] / e_dev[k] (1 when both agree)."""
    total = sum(v for v in flops_by_kind.values() if v > 0)
    if total <= 0:
        return host_eff.get(kind, 1.0) / dev_eff.get(kind, 1.0)
    return sum((v / total) * host_eff.get(k, 1.0) / dev_eff.get(k, 1.0) for k, v in flops_by_kind.items() if v > 0)


def device_time(t_host: float, kind: str, flops_by_kind: Mapping[str, float], host_rate: float,
                device: Mapping[str, Any]) -> float:
    """Calibrated time (s) on ``device`` (a problem-file device entry from `catalog.devices`)."""
    meta = device.get("meta") or {}
    if device.get("type") == catalog.HOST:
        return float(t_host)
    rho = kind_ratio(kind, flops_by_kind, catalog.efficiency_profile(HOST_CLASS), device.get("efficiency") or {})
    overhead = float(meta.get("per_block_overhead_s", 0.0))
    return overhead + float(t_host) * (host_rate / float(device["flops_per_s"])) * rho


def record(reference: Mapping[str, Any], devices: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``meta.calibration`` entry of a problem: the method and every number it used."""
    host_rate = float(reference["rate_flops_per_s"])
    per_type: dict[str, Any] = {}
    for d in devices:
        t = d.get("type") or d["id"]
        if t in per_type:
            continue
        meta = d.get("meta") or {}
        per_type[t] = {
            "flops_per_s": d["flops_per_s"],
            "time_scale": 1.0 if t == catalog.HOST else host_rate / float(d["flops_per_s"]),
            "per_block_overhead_s": meta.get("per_block_overhead_s", 0.0),
            "efficiency_class": meta.get("class"),
            "rate_source": (meta.get("sources") or {}).get("flops_per_s"),
        }
    return {
        "method": "t_device = overhead + t_host * (R_host / R_device) * rho(kind mix); docs/profiles.md",
        "host_class": HOST_CLASS,
        "host_efficiency": catalog.efficiency_profile(HOST_CLASS),
        "reference": {k: v for k, v in reference.items() if k != "time_host_samples_s"},
        "block_times_from": "model.blocks[*].meta.time_host_s (median of the repeats on this machine)",
        "devices": per_type,
    }

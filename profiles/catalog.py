"""The device and network catalogs (data files in ``profiles/catalog/``), without torch.

`devices(["rpi4", "rpi4", "laptop"])` gives problem-file device entries with unique ids
(``rpi4-0``, ``rpi4-1``, ``laptop``); `network("wifi5", devices)` the matching ``network``
section, with links capped by each device's radio. Each entry keeps its catalog citations
in ``meta``.
"""

from __future__ import annotations

import copy
import json
import os
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

#: the pseudo-device "this machine": its rate is the measured host reference rate.
HOST = "host"


def _read(name: str) -> dict[str, Any]:
    text = resources.files("profiles").joinpath("catalog", name).read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def _devices_file() -> dict[str, Any]:
    return _read("devices.json")


@lru_cache(maxsize=None)
def _networks_file() -> dict[str, Any]:
    return _read("networks.json")


def device_types() -> list[str]:
    """The device types of the catalog (``rpi4``, ``jetson-nano``, ...), plus ``host``."""
    return list(_devices_file()["devices"]) + [HOST]


def network_names() -> list[str]:
    """The networks of the catalog (``wifi5``, ``ethernet``, ...)."""
    return list(_networks_file()["networks"])


def device_spec(device_type: str) -> dict[str, Any]:
    """The catalog entry of ``device_type`` (a copy), with its ``sources``."""
    try:
        return copy.deepcopy(_devices_file()["devices"][device_type])
    except KeyError:
        raise _input_error(f"unknown device type '{device_type}'; the catalog has: "
                           + ", ".join(device_types())) from None


def network_spec(name: str) -> dict[str, Any]:
    """The catalog entry of network ``name`` (a copy), with its ``sources``."""
    try:
        return copy.deepcopy(_networks_file()["networks"][name])
    except KeyError:
        raise _input_error(f"unknown network '{name}'; the catalog has: " + ", ".join(network_names())) from None


def efficiency_profile(device_class: str) -> dict[str, float]:
    """Per-kind efficiency multipliers of a device class (``cpu``, ``gpu``, ``mcu``)."""
    return dict(_devices_file()["efficiency_profiles"][device_class]["values"])


def parse_device_list(text: str) -> list[str]:
    """``"rpi4,rpi4, laptop"`` -> ``["rpi4", "rpi4", "laptop"]``; each name must be in the catalog."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise _input_error("--devices: expected a comma-separated list of device types, found nothing")
    known = set(device_types())
    for n in names:
        if n not in known:
            raise _input_error(f"--devices: unknown device type '{n}'; the catalog has: " + ", ".join(device_types()))
    return names


def device_ids(types: Sequence[str]) -> list[str]:
    """Unique ids for a list of types: a type that appears once keeps its name, a repeated
    type is numbered ``rpi4-0``, ``rpi4-1`` in order."""
    counts: dict[str, int] = {}
    for t in types:
        counts[t] = counts.get(t, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for t in types:
        if counts[t] == 1:
            out.append(t)
        else:
            out.append(f"{t}-{seen.get(t, 0)}")
            seen[t] = seen.get(t, 0) + 1
    return out


def devices(types: Sequence[str], *, host_rate: float | None = None) -> list[dict[str, Any]]:
    """Problem-file device entries (SPEC section 3) for catalog ``types``, ids unique.

    ``host`` (this machine) needs ``host_rate``, the measured effective rate in flops/s.
    """
    out = []
    for dev_id, t in zip(device_ids(types), types):
        if t == HOST:
            out.append(_host_device(dev_id, host_rate))
            continue
        spec = device_spec(t)
        out.append({
            "id": dev_id,
            "type": t,
            "flops_per_s": float(spec["flops_per_s"]),
            "memory_bytes": float(spec["memory_bytes"]),
            "power_active_w": float(spec["power_active_w"]),
            "power_idle_w": float(spec["power_idle_w"]),
            "tx_power_w": float(spec["tx_power_w"]),
            "rx_power_w": float(spec["rx_power_w"]),
            "efficiency": efficiency_profile(spec["class"]),
            "meta": {
                "catalog": "profiles/catalog/devices.json",
                "name": spec["name"],
                "class": spec["class"],
                "radio": spec.get("radio"),
                "per_block_overhead_s": spec.get("per_block_overhead_s", 0.0),
                "sources": spec["sources"],
            },
        })
    return out


def _host_device(dev_id: str, host_rate: float | None) -> dict[str, Any]:
    if not host_rate:
        raise _input_error("device 'host' needs the host's measured rate: profile with timing on")
    mem = _host_memory()
    return {
        "id": dev_id, "type": HOST, "flops_per_s": float(host_rate), "memory_bytes": float(mem),
        "efficiency": efficiency_profile("cpu"),
        "meta": {"name": "this machine (where the blocks were measured)", "class": "cpu",
                 "radio": None, "per_block_overhead_s": 0.0,
                 "sources": {"flops_per_s": "measured: the calibration reference run (problem meta.calibration)",
                             "memory_bytes": "this machine's physical memory (os.sysconf)",
                             "power": "not known: 0"}},
    }


def _host_memory() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8.0e9


def media_by_default() -> bool:
    """Whether a shared network puts its devices on a medium when not told: yes exactly when
    the package models shared media (a medium that nothing models would be refused on load)."""
    try:
        from placement.loader import MODELLED_FEATURES
    except ImportError:  # pragma: no cover - profiles used without the core
        return False
    return "media" in MODELLED_FEATURES


def network(name: str, devs: Sequence[dict[str, Any]], media: bool | None = None) -> dict[str, Any]:
    """The ``network`` section: ``name``'s default link, and one link per device pair whose
    radio (either end) is slower than that default, at the slower radio's rate (not on a
    ``wired`` network, Ethernet, which the radios do not carry). A network
    with ``shared_medium`` (Wi-Fi) also puts all its devices on one medium named after it
    (SPEC section 5a); ``media=False`` leaves them contention-free, ``None`` follows
    `media_by_default`."""
    spec = network_spec(name)
    bw = float(spec["bandwidth_bytes_per_s"])
    lat = float(spec["latency_s"])
    links = []
    caps = {}
    for d in devs:
        radio = (d.get("meta") or {}).get("radio")
        if radio and not spec.get("wired") and float(radio["bandwidth_bytes_per_s"]) < bw:
            caps[d["id"]] = float(radio["bandwidth_bytes_per_s"])
    ids = [d["id"] for d in devs]
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            cap = min(caps.get(a, bw), caps.get(b, bw))
            if cap < bw:
                links.append({"src": a, "dst": b, "bandwidth_bytes_per_s": cap, "latency_s": lat,
                              "symmetric": True})
    out_media = []
    if (media_by_default() if media is None else media) and spec.get("shared_medium") and len(ids) >= 2:
        out_media = [{"id": name, "devices": ids}]
    return {
        "default": {"bandwidth_bytes_per_s": bw, "latency_s": lat},
        "links": links,
        **({"media": out_media} if out_media else {}),
        "meta": {"catalog": "profiles/catalog/networks.json", "network": name, "name": spec["name"],
                 "sources": spec["sources"],
                 "radio_caps": ("none: a wired network, the radios do not carry it" if spec.get("wired") else
                                "links touching a device whose radio is slower than the network run at that "
                                "radio's rate (devices.json 'radio')")},
    }


def _input_error(message: str) -> Exception:
    try:
        from placement.errors import InputError
    except ImportError:  # pragma: no cover - profiles used without the core
        return ValueError(message)
    return InputError(message)

"""Shared fixtures: small problems as dicts (tests copy and edit them)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def diamond_dict() -> dict:
    """The hand-worked diamond: s -> {l, r} -> t on two devices A (source, sink) and B.

    A runs 1e9 flop/s, B 2e9; every pair: 10 ms latency, 1e6 B/s.
    """
    return {
        "name": "diamond",
        "model": {
            "name": "diamond",
            "input_bytes": 2e5,
            "blocks": [
                {"id": "s", "flops": 1e8, "params_bytes": 100, "activation_bytes": 1000, "output_bytes": 1e5},
                {"id": "l", "flops": 2e8, "params_bytes": 200, "activation_bytes": 3000, "output_bytes": 2e4},
                {"id": "r", "flops": 4e8, "params_bytes": 400, "activation_bytes": 2000, "output_bytes": 3e4,
                 "kind": "attention"},
                {"id": "t", "flops": 1e8, "params_bytes": 100, "activation_bytes": 500, "output_bytes": 1e4},
            ],
            "edges": [["s", "l"], ["s", "r"], ["l", "t"], ["r", "t"]],
        },
        "devices": [
            {"id": "A", "type": "rpi4", "flops_per_s": 1e9, "memory_bytes": 1e6, "power_active_w": 2.0,
             "power_idle_w": 1.0, "tx_power_w": 0.5, "rx_power_w": 0.25},
            {"id": "B", "type": "jetson", "flops_per_s": 2e9, "memory_bytes": 1e6, "power_active_w": 4.0,
             "power_idle_w": 0.5, "tx_power_w": 1.0, "rx_power_w": 0.5},
        ],
        "network": {"default": {"bandwidth_bytes_per_s": 1e6, "latency_s": 0.01}},
    }


@pytest.fixture
def diamond() -> dict:
    return copy.deepcopy(diamond_dict())


# Test files whose tests start gloo worker processes (torch.distributed): under pytest-xdist
# (addopts -n 2 --dist loadgroup) they share one group, so one xdist worker runs them one after
# the other; two sets of gloo workers at once would contend for the 2 cores their timeouts assume.
_GLOO_FILES = {"test_runtime.py", "test_runtime_scenarios.py", "test_runtime_shards.py",
               "test_media_run.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in _GLOO_FILES:
            item.add_marker(pytest.mark.xdist_group("gloo"))

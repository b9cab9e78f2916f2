"""Band moves of `local` (`heuristics.local._band_moves`, `heuristics._split_choice.spatial_runs`):
a run of spatially split blocks laid out as one band partition, so that each band stays on
its device from block to block and only halos cross (DeepThings' and AOFL's tiles)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import placement
from heuristics import _split_choice, local
from placement.method import Candidate, Context
from placement.plan import Status

from .test_split_choice import TOL


def _three_convs(ways=(1, 2), halo: float = 1e4) -> dict:
    """Three 1 GFLOP conv stages b1 -> b2 -> b3 (1 s each on either of two 1 GFLOP/s boards A,
    the camera, and B), 1 MB tensors, spatial ways ``ways`` with a ``halo`` of 10 kB; the
    link moves 100 MB/s after 1 ms."""
    dev = {"type": "pi", "flops_per_s": 1e9, "memory_bytes": 1e9, "power_active_w": 2.0,
           "power_idle_w": 1.0, "tx_power_w": 0.5, "rx_power_w": 0.25}
    split = {"ways": list(ways), "mode": "spatial", "halo_bytes": halo}
    return {
        "name": "three-convs",
        "model": {"name": "convs", "input_bytes": 1e6,
                  "blocks": [{"id": b, "flops": 1e9, "params_bytes": 0, "activation_bytes": 0,
                              "output_bytes": 1e6, "split": dict(split)} for b in ("b1", "b2", "b3")],
                  "edges": [{"src": "b1", "dst": "b2", "bytes": 1e6}, {"src": "b2", "dst": "b3", "bytes": 1e6}]},
        "devices": [{"id": "A", **dev}, {"id": "B", **dev}],
        "network": {"default": {"bandwidth_bytes_per_s": 1e8, "latency_s": 1e-3}},
        "source": "A", "sink": "A",
    }


def test_spatial_runs_are_the_chains_of_spatial_blocks_per_way():
    d = _three_convs((1, 2, 4))
    d["model"]["blocks"][2]["split"]["ways"] = [1, 2]
    p = placement.load(d)
    assert _split_choice.spatial_runs(p) == [(["b1", "b2", "b3"], 2), (["b1", "b2"], 4)]
    d["model"]["blocks"][1]["split"]["mode"] = "tensor"      # a tensor block breaks the run
    assert _split_choice.spatial_runs(placement.load(d)) == []


def test_a_band_move_lays_a_run_out_over_two_boards_in_one_step():
    """From every block whole on A (3 s), one band move splits the run in two bands, one per
    board: 1.5 s of compute, the halos (10 kB) at each border and the halves of the input and
    the output. It is brute's optimum."""
    d = _three_convs()
    p = placement.load(d)
    best = placement.solve(d, "brute", time_limit=60)
    assert best.status == Status.OPTIMAL and best.split == {"b1": 2, "b2": 2, "b3": 2}
    whole = {"b1": 1, "b2": 1, "b3": 1}
    q = p.expand(whole)
    cand = Candidate(np.zeros(q.n_blocks, dtype=np.int64), None, status=Status.FEASIBLE)
    key = local._cand_key(q, cand)
    assert key[1] == pytest.approx(3.0, rel=TOL)
    ctx = Context(time_limit=30.0, seed=0, options={}, progress=None, started=time.monotonic())
    moved = local._band_moves(p, ctx, whole, q, cand, key)
    assert moved["choice"] == {"b1": 2, "b2": 2, "b3": 2} and moved["kept"] == ["b1..b3:2x2"]
    assert moved["key"][0] == 0 and moved["key"][1] == pytest.approx(best.value, rel=TOL)
    assert best.value < 1.53
    # and local returns it
    plan = placement.solve(d, "local", time_limit=10)
    assert plan.value == pytest.approx(best.value, rel=TOL)

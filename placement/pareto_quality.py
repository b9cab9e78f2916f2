"""Dominance and hypervolume of Pareto fronts (every metric minimised).

The hypervolume of a front is measured in *normalised* coordinates so that a figure in
seconds and one in joules weigh the same: each metric ``m`` maps to
``(m - ideal_m) / (ref_m - ideal_m)``, where ``ideal`` is the best value of each metric on
the *reference front* and the reference point is ``ref = nadir + 0.1 * (nadir - ideal)``
(``nadir``: the worst value of each metric on that front; a metric with no spread gets
``ref = nadir + 0.1 * |nadir|``, or ``+ 1e-12`` when that is 0). The normalised hypervolume
is then the share of the box ``[ideal, ref]`` that the front dominates: at most 1, and a
perfect single point (the ideal itself) scores 1. Points beyond ``ref`` in some metric
add nothing. The reference front is the exact front when one exists, else the reported
front; the heuristic front is always measured against the same box, so the ratio of the
two is a like-for-like figure. The volume itself is pymoo's exact hypervolume indicator.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: objective name -> the metric it minimises (throughput: the period).
METRIC = {"latency": "latency_s", "energy": "energy_j", "throughput": "period_s"}
#: relative tolerance of the dominance test.
DOMINANCE_TOL = 1e-9
#: the reference point lies this share of the ideal-nadir range beyond the nadir.
REFERENCE_MARGIN = 0.1


def dominates(a: Sequence[float], b: Sequence[float], tol: float = DOMINANCE_TOL) -> bool:
    """True when ``a`` is at least as good as ``b`` on every metric (minimised) and better on one."""
    no_worse = all(x <= y + tol * max(abs(y), 1e-300) for x, y in zip(a, b))
    better = any(x < y - tol * max(abs(y), 1e-300) for x, y in zip(a, b))
    return no_worse and better


def same(a: Sequence[float], b: Sequence[float], tol: float = DOMINANCE_TOL) -> bool:
    return all(abs(x - y) <= tol * max(abs(y), 1e-300) for x, y in zip(a, b))


def non_dominated(vectors: Sequence[Sequence[float]], tol: float = DOMINANCE_TOL) -> list[int]:
    """Indices of the non-dominated vectors (first of each group of equal vectors)."""
    keep: list[int] = []
    for i, v in enumerate(vectors):
        if any(dominates(vectors[j], v, tol) for j in range(len(vectors)) if j != i):
            continue
        if any(same(vectors[k], v, tol) for k in keep):
            continue
        keep.append(i)
    return keep


def reference_box(vectors: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """``(ideal, ref)`` of a reference front (module docstring)."""
    v = np.asarray(vectors, dtype=float)
    ideal, nadir = v.min(axis=0), v.max(axis=0)
    spread = nadir - ideal
    pad = np.where(spread > 0, REFERENCE_MARGIN * spread, REFERENCE_MARGIN * np.abs(nadir))
    pad = np.where(pad > 0, pad, 1e-12)
    return ideal, nadir + pad


def hypervolume(vectors: Sequence[Sequence[float]], ideal: np.ndarray, ref: np.ndarray) -> float:
    """Normalised hypervolume of ``vectors`` in the box ``[ideal, ref]`` (module docstring)."""
    if not len(vectors):
        return 0.0
    v = (np.asarray(vectors, dtype=float) - ideal) / (ref - ideal)
    v = v[np.all(v < 1.0, axis=1)]
    if not len(v):
        return 0.0
    from pymoo.indicators.hv import HV
    return float(HV(ref_point=np.ones(v.shape[1]))(v))

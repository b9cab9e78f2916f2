"""Integer units for CP-SAT (and the fixed-point arithmetic of its model).

CP-SAT needs integers. Every duration, transfer, energy term and memory amount of the
model is the real quantity divided by its unit and rounded DOWN. Rounding down makes the
integer model a *relaxation* of the real problem: take any feasible real plan and schedule,
map each start ``s`` to ``floor(s / r)``; since ``floor(x + y) >= floor(x) + floor(y)``
every precedence, no-overlap and deadline constraint still holds with rounded-down
durations, every rounded load and energy sum is at most the real one over its unit, and so
the integer optimum (times the objective unit) is at most the real optimum. Hence CP-SAT's
proven bound, times the objective unit, is a valid lower bound of the real-valued problem,
whatever the rounding. The plan it finds is re-scored by the evaluator; its real value is
above the integer one by at most the rounding error of the terms it uses.

Units are chosen per problem so that that error is small: the worst-case error of the
objective (every term of a critical path or of a sum rounded down by almost one unit) is at
most ``precision`` (default 2e-7) times a cheap lower bound of the optimum. The objective
is ``sum_k c_k * metric_k`` with integer ``c_k``; a cross term (idle energy paid per unit of
latency) gets the coefficient rounded down, and the objective unit is refined until these
coefficients are at least 1000 (so their rounding costs at most 0.1 % of the idle-energy
term of the bound, never its validity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from placement import bounds
from placement.problem import Problem


#: default worst-case relative rounding error of the integer model.
DEFAULT_PRECISION = 2e-7
#: largest magnitude we let an integer model quantity reach (int64 is 9.2e18; keep headroom).
MAX_UNITS = 1e15


@dataclass
class Units:
    """Seconds per latency unit (r_lat), per period unit (r_per), joules per energy unit
    (r_en), objective value per objective unit (r_obj), and the integer objective
    coefficients."""

    r_lat: float = 1.0
    r_per: float = 1.0
    r_en: float = 1.0
    r_obj: float = 1.0
    c_lat: int = 0
    c_per: int = 0
    c_en: int = 0
    c_idle: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: idle energy per latency unit in objective units, unrounded (the model rounds it as a ratio)
    c_idle_real: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: idle energy per latency unit, in energy units (for an energy_j constraint)
    c_idle_en: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def as_dict(self) -> dict[str, float]:
        return {"latency_unit_s": self.r_lat, "period_unit_s": self.r_per,
                "energy_unit_j": self.r_en, "objective_unit": self.r_obj,
                "c_latency": self.c_lat, "c_period": self.c_per, "c_energy": self.c_en}


def floor_units(x, r: float):
    """``floor(x / r)`` as int64 (x >= 0, finite), elementwise."""
    return np.floor(np.asarray(x, dtype=float) / r).astype(np.int64)


def choose_units(p: Problem, reference: float | None, precision: float = DEFAULT_PRECISION,
                 bound_problem: Problem | None = None) -> Units:
    """Units for ``p`` (module docstring). ``reference``: a plan's value (the incumbent's),
    used when the cheap bound is 0. ``bound_problem``: whose cheap bounds scale the units
    (default ``p``; the union of every split choice passes the problem it came from)."""
    B, D, E = p.n_blocks, p.n_devices, p.n_edges
    bp = p if bound_problem is None else bound_problem
    w = {k: v for k, v in p.objective.weights.items() if v}
    n_lat = 2 * B + 2
    n_sum = B + E + 2 * B + 1
    lb = {}
    if p.needs_schedule():
        lb["latency"] = bounds.latency_bound(bp)
    if p.needs_period() or "throughput" in w:
        lb["throughput"] = bounds.period_bound(bp)
    if p.needs_energy() or "energy" in w:
        lb["energy"] = bounds.energy_bound(bp)
    v_lb = sum(w[k] * lb.get(k, 0.0) for k in w)
    v_ref = max(v_lb, (reference or 0.0) * 1e-2, 1e-12)
    n_of = {"latency": n_lat, "throughput": n_sum, "energy": n_sum}
    target: dict[str, float] = {}
    for k in ("latency", "throughput", "energy"):
        if k in w:
            target[k] = precision * v_ref / len(w) / (w[k] * n_of[k])
        elif k in lb:
            ref = max(lb[k], 1e-12)
            cap = {"latency": p.constraints.get("latency_s"), "energy": p.constraints.get("energy_j")}.get(k)
            if cap:
                ref = max(ref, 1e-3 * cap)
            target[k] = precision * ref / n_of[k]
    u = Units()
    if w:
        u.r_obj = min(w[k] * target[k] for k in w)
    idle = p.power_idle.astype(float) if p.count_idle else np.zeros(D)
    for _ in range(8):  # refine the objective unit for the idle cross term
        c = {k: int(math.floor(w[k] * target[k] / u.r_obj + 1e-9)) for k in w}
        r = {k: (c[k] * u.r_obj / w[k] if k in w else target[k]) for k in target}
        c_idle = np.zeros(D, dtype=np.int64)
        real = np.zeros(D)
        if "energy" in w and "latency" in r:
            real = w["energy"] * idle * r["latency"] / u.r_obj
            c_idle = np.floor(real + 1e-9).astype(np.int64)
            pos = real[idle > 0]
            if pos.size and pos.min() < 1000 and v_ref / u.r_obj < MAX_UNITS / 1e3:
                u.r_obj /= math.ceil(1000 / max(pos.min(), 1e-9))
                continue
        break
    u.c_lat, u.c_per, u.c_en = c.get("latency", 0), c.get("throughput", 0), c.get("energy", 0)
    u.r_lat = r.get("latency", 1.0)
    u.r_per = r.get("throughput", 1.0)
    u.r_en = r.get("energy", 1.0)
    u.c_idle = c_idle
    u.c_idle_real = real
    u.c_idle_en = (np.floor(idle * u.r_lat / u.r_en + 1e-9).astype(np.int64)
                   if "latency" in r and "energy" in r else np.zeros(D, dtype=np.int64))
    return u

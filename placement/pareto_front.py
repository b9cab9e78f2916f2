"""``placement pareto``: the Pareto front of plans over two or three metrics.

Objectives and the metric each minimises: ``latency`` -> ``latency_s``, ``energy`` ->
``energy_j``, ``throughput`` -> ``period_s`` (a shorter period is a higher throughput; the
plot shows ``throughput_per_s``, higher is better, as ParetoPipe does).

Two regimes, chosen per problem (``approach`` in the output says which ran):

- **epsilon-constraint with an exact solver** when it is tractable: the exact method
  (``cpsat``, else ``milp``) is available and ``blocks x devices <= EXACT_MAX_CELLS``. First
  the anchors: minimise each objective alone. Then, for the first objective A and every
  other objective B, sweep ``eps`` over ``points`` values from B's optimum to B's value at
  A's optimum, and minimise A subject to ``B <= eps`` (added to the problem's
  ``constraints``, tightening any it already has). With three objectives the sweep is a
  grid over the two others.
- **weighted sums plus local search** otherwise: the anchors come from every available
  heuristic (``single``, ``heft``, ``dp``, ``local``) on each objective alone; then ``local``
  minimises ``sum_i w_i * metric_i / anchor_i`` for ``points`` interior weight vectors
  (normalised by each metric's best anchor, so the weights mean shares, not units).

Every candidate is re-scored by the evaluator on the *original* problem (its own
constraints kept) and the dominated ones are dropped: a plan stays when no other plan is at
least as good on every chosen metric and better on one (relative tolerance 1e-9; equal
points are kept once). Weighted sums miss non-convex parts of the front; the
epsilon-constraint method does not, which is why it is used wherever it is affordable.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import InputError, MethodError

#: objective name -> the metric it minimises (throughput: the period).
METRIC = {"latency": "latency_s", "energy": "energy_j", "throughput": "period_s"}
#: the exact regime runs when blocks x devices is at most this (a CP-SAT model of that size
#: solves in about a second; the sweep makes ~10-20 of them).
EXACT_MAX_CELLS = 120
#: exact methods to try, in order, and the heuristics whose plans seed the heuristic regime.
EXACT_METHODS = ("cpsat", "milp", "brute")
HEURISTICS = ("single", "heft", "dp", "local")
#: relative slack on an epsilon so that a solver's rounded model is not made infeasible by it.
EPS_SLACK = 1e-6
#: relative tolerance of the dominance test.
DOMINANCE_TOL = 1e-9


class _Refused(InputError):
    """A method refused the problem (e.g. brute above its size limit)."""


def _available(name: str, objective: str) -> bool:
    from .registry import get_method
    try:
        return objective in get_method(name).objectives
    except MethodError:
        return False


def parse_objectives(objectives: Any) -> list[str]:
    items = [x.strip() for x in objectives.split(",")] if isinstance(objectives, str) else list(objectives)
    items = [x for x in items if x]
    bad = [x for x in items if x not in METRIC]
    if bad or not 2 <= len(items) <= 3 or len(set(items)) != len(items):
        raise InputError("--objectives: expected two or three different names among latency, "
                         f"throughput, energy (e.g. latency,energy), found '{','.join(map(str, items))}'")
    return items


def dominates(a: Sequence[float], b: Sequence[float], tol: float = DOMINANCE_TOL) -> bool:
    """True when ``a`` is at least as good as ``b`` on every metric (minimised) and better on one."""
    no_worse = all(x <= y + tol * max(abs(y), 1e-300) for x, y in zip(a, b))
    better = any(x < y - tol * max(abs(y), 1e-300) for x, y in zip(a, b))
    return no_worse and better


def non_dominated(vectors: Sequence[Sequence[float]], tol: float = DOMINANCE_TOL) -> list[int]:
    """Indices of the non-dominated vectors (first of each group of equal vectors)."""
    keep: list[int] = []
    for i, v in enumerate(vectors):
        if any(dominates(vectors[j], v, tol) for j in range(len(vectors)) if j != i):
            continue
        if any(all(abs(x - y) <= tol * max(abs(y), 1e-300) for x, y in zip(vectors[k], v)) for k in keep):
            continue
        keep.append(i)
    return keep


def pareto(problem: Any, objectives: Any = ("latency", "energy"), *, points: int = 7,
           time_limit: float = 10.0, method: str | None = None, seed: int = 0,
           exact_max_cells: int = EXACT_MAX_CELLS,
           progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The Pareto front of plans of ``problem`` over ``objectives`` (two or three of latency,
    throughput, energy). ``points``: epsilon values per swept objective (or weight vectors);
    ``time_limit``: seconds per solve; ``method``: force a method (exact names force the
    epsilon-constraint regime, others the weighted-sum one). Returns::

        {"problem", "objectives", "metrics", "approach", "solves", "solve_time_s",
         "points": [{"latency_s", "period_s", "throughput_per_s", "energy_j", "method",
                     "how", "status", "plan": plan dict}, ...],   # sorted by the first metric
         "dominated": [{metrics, "method", "how"}, ...]}

    Every metric comes from the evaluator on the original problem. The problem is not changed.
    """
    from . import api
    from .loader import load

    objs = parse_objectives(objectives)
    if points < 2:
        raise InputError(f"points: expected at least 2, found {points}")
    base = load(problem)
    metrics = [METRIC[o] for o in objs]
    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    solves = 0
    cands: list[tuple[Any, str, str]] = []   # (plan re-scored on base, method, how)

    def run(p, obj: Any, m: str, how: str) -> Any:
        nonlocal solves
        solves += 1
        say(f"{m}: {how}")
        try:
            plan = api.solve(p, m, objective=obj, time_limit=time_limit, seed=seed)
        except MethodError:
            return None
        except InputError as exc:   # a method refusing the size (brute): not this method
            raise _Refused(str(exc)) from None
        if not plan.feasible:
            return None
        scored = api.evaluate(base, plan.to_dict(), objective=obj if isinstance(obj, str) else None)
        if not scored.feasible:
            return None
        scored.method = m
        cands.append((scored, m, how))
        return scored

    exact = None
    heur = [m for m in HEURISTICS if all(_available(m, o) for o in objs)]
    if method is not None:
        from .registry import get_method
        m = get_method(method)
        exact = method if m.kind == "exact" else None
        if exact is None:
            heur = [method]
    else:
        if base.n_blocks * base.n_devices <= exact_max_cells:
            exact = next((m for m in EXACT_METHODS if all(_available(m, o) for o in objs)), None)
    anchors: dict[str, Any] = {}
    if exact is not None:
        try:
            anchors = {o: run(base, o, exact, f"min {o}") for o in objs}
        except _Refused:
            if method is not None:
                raise
            cands.clear()
            rest = [m for m in EXACT_METHODS[EXACT_METHODS.index(exact) + 1:]
                    if all(_available(m, o) for o in objs)]
            exact = None
            for m in rest:
                try:
                    anchors = {o: run(base, o, m, f"min {o}") for o in objs}
                    exact = m
                    break
                except _Refused:
                    cands.clear()
    if exact is not None:
        approach = f"epsilon-constraint ({exact})"
        primary, others = objs[0], objs[1:]
        ranges = []
        for o in others:
            met = METRIC[o]
            lo = anchors[o].metrics[met] if anchors[o] else None
            hi_plans = [pl for pl in anchors.values() if pl is not None]
            hi = max(pl.metrics[met] for pl in hi_plans) if hi_plans else None
            ranges.append(None if lo is None or hi is None else (lo, hi))
        if all(r is not None for r in ranges):
            k = points if len(others) == 1 else max(2, int(math.ceil(math.sqrt(points))) + 1)
            grids = [np.unique(np.linspace(lo, hi, k)) for lo, hi in ranges]
            for combo in itertools.product(*grids):
                extra = {METRIC[o]: float(e) * (1 + EPS_SLACK) for o, e in zip(others, combo)}
                how = "min " + primary + " s.t. " + ", ".join(f"{METRIC[o]} <= {e:.4g}"
                                                             for o, e in zip(others, combo))
                try:
                    run(base.with_constraints(extra), primary, exact, how)
                except _Refused:
                    continue
    else:
        if not heur:
            raise InputError("pareto: no available method supports the objectives "
                             f"{', '.join(objs)} (see 'placement methods')")
        searcher = heur[-1] if method is None else method
        approach = f"weighted sums ({searcher})"
        anchors = {}
        for o in objs:
            for m in (heur if method is None else [method]):
                try:
                    pl = run(base, o, m, f"min {o}")
                except _Refused:
                    continue
                if pl is not None and (anchors.get(o) is None or
                                       pl.metrics[METRIC[o]] < anchors[o].metrics[METRIC[o]]):
                    anchors[o] = pl
        ref = {o: (anchors[o].metrics[METRIC[o]] if anchors.get(o) else 1.0) or 1.0 for o in objs}
        if _available(searcher, "weighted"):
            for w in _weights(len(objs), points):
                weights = {o: float(wi) / ref[o] for o, wi in zip(objs, w) if wi > 0}
                how = "min " + " + ".join(f"{wi:.2f}·{o}/{ref[o]:.3g}" for o, wi in zip(objs, w) if wi > 0)
                try:
                    run(base, weights, searcher, how)
                except _Refused:
                    continue

    vectors = [[c[0].metrics[m] for m in metrics] for c in cands]
    keep = non_dominated(vectors)
    keep.sort(key=lambda i: vectors[i])
    front = [_point(cands[i]) for i in keep]
    dominated = [{k: v for k, v in _point(cands[i]).items() if k != "plan"}
                 for i in range(len(cands)) if i not in keep]
    return {"problem": base.name, "objectives": objs, "metrics": metrics, "approach": approach,
            "solves": solves, "time_limit": time_limit, "solve_time_s": time.perf_counter() - t_start,
            "points": front, "dominated": dominated}


def _weights(n: int, points: int) -> list[tuple[float, ...]]:
    """Interior weight vectors (every weight > 0) on the simplex: ``points`` for two
    objectives, a grid of about ``points`` for three."""
    if n == 2:
        return [(w, 1 - w) for w in np.linspace(0, 1, points + 2)[1:-1]]
    k = max(3, int(round(math.sqrt(2 * points))) + 2)
    out = []
    for i in range(1, k):
        for j in range(1, k - i):
            out.append((i / k, j / k, (k - i - j) / k))
    return out


def _point(c) -> dict[str, Any]:
    plan, m, how = c
    mm = plan.metrics
    return {"latency_s": mm["latency_s"], "period_s": mm["period_s"],
            "throughput_per_s": mm["throughput_per_s"], "energy_j": mm["energy_j"],
            "method": m, "how": how, "status": plan.status.value, "plan": plan.to_dict()}


# ------------------------------------------------------------------------------ plot
_AXIS = {"latency_s": ("latency_s", "latency (s)"), "energy_j": ("energy_j", "energy per inference (J)"),
         "period_s": ("throughput_per_s", "throughput (inferences/s, higher is better)")}


def plot_front(front: dict[str, Any], output: str | os.PathLike[str], dpi: int = 120) -> dict[str, Any]:
    """Draw a front (the dict `pareto` returns) to a PNG/SVG: a scatter with the staircase of
    the front for two metrics, the three pairwise projections for three. Returns counts."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(output)
    if out.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--plot {output}: expected a .png or .svg file")
    metrics = front["metrics"]
    pairs = [(0, 1)] if len(metrics) == 2 else [(0, 1), (0, 2), (1, 2)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.5 * len(pairs), 5), squeeze=False)
    methods = sorted({p["method"] for p in front["points"]} | {p["method"] for p in front["dominated"]})
    cmap = matplotlib.colormaps["tab10"]
    colour = {m: cmap(i % 10) for i, m in enumerate(methods)}
    n_front = len(front["points"])
    for ax, (i, j) in zip(axes[0], pairs):
        kx, lx = _AXIS[metrics[i]]
        ky, ly = _AXIS[metrics[j]]
        if front["dominated"]:
            ax.scatter([d[kx] for d in front["dominated"]], [d[ky] for d in front["dominated"]],
                       marker="x", color="#aaaaaa", s=25, label="dominated candidates", zorder=2)
        for m in methods:
            pts = [p for p in front["points"] if p["method"] == m]
            if pts:
                ax.scatter([p[kx] for p in pts], [p[ky] for p in pts], color=colour[m], s=45,
                           edgecolors="black", linewidths=0.5, label=f"front: {m}", zorder=4)
        if len(metrics) == 2 and n_front:
            pts = sorted(front["points"], key=lambda p: p[kx])
            ax.step([p[kx] for p in pts], [p[ky] for p in pts], where="post", color="#333333",
                    linewidth=1.0, zorder=3)
        ax.set_xlabel(lx)
        ax.set_ylabel(ly)
        ax.grid(linestyle=":", linewidth=0.5)
    axes[0][0].legend(fontsize=8, loc="best")
    names = ", ".join(front["objectives"])
    fig.suptitle(f"{front['problem']}: Pareto front over {names} · {n_front} plans · "
                 f"{front['approach']} · {front['solves']} solves", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    import tempfile
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {"files": [str(out)], "points": n_front, "dominated": len(front["dominated"]),
            "panels": len(pairs)}


# ------------------------------------------------------------------------------- CLI
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("problem", help="problem file (JSON)")
    p.add_argument("--objectives", default="latency,energy",
                   help="two or three of latency, throughput, energy (default latency,energy)")
    p.add_argument("--points", type=int, default=7,
                   help="epsilon values per swept objective, or weight vectors (default 7)")
    p.add_argument("-t", "--time-limit", type=float, default=10.0, help="seconds per solve (default 10)")
    p.add_argument("-m", "--method", help="force a method (an exact one: epsilon-constraint; "
                   "a heuristic: weighted sums); default: chosen by size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", help="write the front as JSON here (and its plot beside it as .png "
                   "unless --plot is given)")
    p.add_argument("--plot", help="write the plot here (.png or .svg)")
    p.add_argument("--json", action="store_true", help="print the front as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    from .cli import EXIT_NO_PLAN, EXIT_OK
    from .plan import write_json_atomic
    from .report import console
    from rich.console import Console
    from rich.table import Table

    err = Console(stderr=True, highlight=False)
    if args.json:
        front = pareto(args.problem, args.objectives, points=args.points, time_limit=args.time_limit,
                       method=args.method, seed=args.seed)
    else:
        with err.status("pareto") as status:
            front = pareto(args.problem, args.objectives, points=args.points, time_limit=args.time_limit,
                           method=args.method, seed=args.seed,
                           progress=lambda msg: status.update(f"pareto · {msg}"))
    if args.output:
        write_json_atomic(args.output, front)
    plot = args.plot or (str(Path(args.output).with_suffix(".png")) if args.output else None)
    if plot and front["points"]:
        plot_front(front, plot)
    if args.json:
        print(json.dumps(front, indent=2))
    else:
        t = Table(title=f"{front['problem']}: Pareto front ({front['approach']}, {front['solves']} solves, "
                  f"{front['solve_time_s']:.1f} s)")
        for col in ("latency s", "throughput /s", "energy J", "devices", "method", "how"):
            t.add_column(col, justify="right" if col not in ("method", "how") else "left")
        for p in front["points"]:
            t.add_row(f"{p['latency_s']:.4g}", f"{p['throughput_per_s']:.4g}", f"{p['energy_j']:.4g}",
                      str(len(set(p["plan"]["assignment"].values()))), p["method"], p["how"])
        console().print(t)
        for f in (args.output, plot if front["points"] else None):
            if f:
                console().print(f"wrote {f}")
    if not front["points"]:
        err.print("placement pareto: no feasible plan found (see 'placement solve' for the reason)")
        return EXIT_NO_PLAN
    return EXIT_OK

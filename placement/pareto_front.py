"""``placement pareto``: the Pareto front of plans over two or three metrics.

Objectives and the metric each minimises: ``latency`` -> ``latency_s``, ``energy`` ->
``energy_j``, ``throughput`` -> ``period_s`` (a shorter period is a higher throughput; the
plot shows ``throughput_per_s``, higher is better).

Regimes (``regime`` in the output), chosen by size unless forced:

- ``exact`` (an exact method supports the objectives and ``blocks x devices <=
  EXACT_MAX_CELLS``): the adaptive-grid epsilon-constraint search of `placement.pareto_exact`,
  every point lexicographically optimal; within the time limit the front is **complete**
  (the output says so, or says which points are only feasible and where points may be
  missing). Then, with what is left of the time (at most ``CHECK_SHARE`` of it), the
  heuristic front of `placement.pareto_anytime`, whose hypervolume is reported as a share of
  the exact front's.
- ``anytime`` (larger problems): the same exact search with ``EXACT_SHARE`` of the time, each
  solve capped (the exact methods warm-start from the heuristics themselves), then the
  heuristic front (anchors, NSGA-II seeded with the exact plans) until the time limit; the
  reported front is the non-dominated union, each point marked ``proven`` or ``found``.
- ``heuristic`` (no exact method, or forced): the heuristic front alone.

``time_limit`` is the TOTAL for the whole front (every solve gets what is left), honoured to
the methods' documented margin. Every figure comes from the evaluator on the original
problem (its own constraints kept; the search's constraints are a device only). The
hypervolume of the reported front (`placement.pareto_quality`: normalised, against the box of
the exact front when complete, else of the reported front) is in ``quality``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

from .errors import InputError
from .pareto_exact import STEP_TOL, Found, exact_front
from .pareto_quality import (DOMINANCE_TOL, METRIC, dominates, hypervolume, non_dominated,  # noqa: F401
                             reference_box)

#: the exact regime runs when blocks x devices is at most this.
EXACT_MAX_CELLS = 120
#: default and largest number of front points the exact search looks for.
DEFAULT_POINTS = 100
MAX_POINTS = 1000
#: default total time limit, seconds.
DEFAULT_TIME_LIMIT_S = 60.0
#: exact regime: the heuristic check gets at most this share of the time limit.
CHECK_SHARE = 0.1
#: anytime regime: share of the time limit for the exact search, and its cap per solve.
EXACT_SHARE = 0.5
ANYTIME_SOLVES = 4
REGIMES = ("auto", "exact", "anytime", "heuristic")
#: figure formats, by file extension.
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def parse_objectives(objectives: Any) -> list[str]:
    items = [x.strip() for x in objectives.split(",")] if isinstance(objectives, str) else list(objectives)
    items = [x for x in items if x]
    bad = [x for x in items if x not in METRIC]
    if bad or not 2 <= len(items) <= 3 or len(set(items)) != len(items):
        raise InputError("--objectives: expected two or three different names among latency, "
                         f"throughput, energy (e.g. latency,energy), found '{','.join(map(str, items))}'")
    return items


def pareto(problem: Any, objectives: Any = ("latency", "energy"), *, points: int = DEFAULT_POINTS,
           time_limit: float = DEFAULT_TIME_LIMIT_S, method: str | None = None, regime: str = "auto",
           seed: int = 0, exact_max_cells: int = EXACT_MAX_CELLS, check: bool = True,
           progress: Callable[[str, float], None] | None = None) -> dict[str, Any]:
    """The Pareto front of plans of ``problem`` (a `Problem`, dict or path) over
    ``objectives`` (two or three of latency, throughput, energy).

    ``points``: most front points the exact search looks for (1..MAX_POINTS); ``time_limit``:
    total seconds for the whole front; ``method``: an exact method for the search, or a
    heuristic (then the heuristic regime with that method's anchors); ``regime``: auto,
    exact, anytime or heuristic; ``check``: in the exact regime, also build the heuristic
    front and report its hypervolume ratio; ``progress(message, elapsed_s)`` is called as the
    search goes. Returns a dict (see docs/pareto.md): ``points`` sorted by the first metric,
    each with its metrics, ``proven`` and its plan; ``complete`` and ``completeness``;
    ``quality`` with the hypervolume. The problem is not changed.
    """
    from . import api
    from .loader import load
    from .pareto_anytime import heuristic_front, heuristic_methods

    objs = parse_objectives(objectives)
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= MAX_POINTS:
        raise InputError(f"--points: expected a whole number from 1 to {MAX_POINTS} (the most front "
                         f"points the exact search looks for), found {points}")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) \
            or not math.isfinite(time_limit) or time_limit <= 0:
        raise InputError(f"--time-limit: expected a number of seconds > 0 (the total for the whole "
                         f"front), found {time_limit}")
    if regime not in REGIMES:
        raise InputError(f"--regime: expected one of {', '.join(REGIMES)}, found '{regime}'")
    base = load(problem)
    metrics = [METRIC[o] for o in objs]
    from .registry import get_method
    infos = {i.name: i for i in api.methods()}   # loads every method: the clock starts after
    t_start = time.monotonic()
    deadline = t_start + float(time_limit)

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg, time.monotonic() - t_start)

    exact = [n for n, i in infos.items() if i.kind == "exact" and all(o in i.objectives for o in objs)]
    heuristics = heuristic_methods(objs)
    if method is not None:
        if get_method(method).kind == "exact":
            if not all(o in get_method(method).objectives for o in objs):
                raise InputError(f"--method {method}: it does not support every objective of "
                                 f"{', '.join(objs)}")
            exact = [method]
        else:
            exact, heuristics = [], [method]
            if regime in ("exact", "anytime"):
                raise InputError(f"--method {method} is a heuristic: the {regime} regime needs an "
                                 "exact method")
            regime = "heuristic"
    if regime == "auto":
        if not exact:
            regime = "heuristic"
        else:
            regime = "exact" if base.n_blocks * base.n_devices <= exact_max_cells else "anytime"
    if regime in ("exact", "anytime") and not exact:
        raise InputError(f"--regime {regime}: no available exact method supports {', '.join(objs)} "
                         "(see 'placement methods')")
    if regime == "heuristic" and not heuristics:
        raise InputError(f"pareto: no available method supports {', '.join(objs)} (see 'placement methods')")

    search = None
    heur = None
    if regime == "exact":
        reserve = CHECK_SHARE * time_limit if check else 0.0
        search = exact_front(base, objs, exact, deadline - reserve, max_points=points, seed=seed, warm=False,
                             say=say)
        if check or not search.complete:
            end = deadline if not search.complete else min(deadline, time.monotonic() + CHECK_SHARE * time_limit)
            heur = heuristic_front(base, objs, end, seed=seed, methods=heuristics,
                                   seeds=[] if search.complete else search.points, say=say)
    elif regime == "anytime":
        search = exact_front(base, objs, exact, t_start + EXACT_SHARE * time_limit, max_points=points,
                             seed=seed, solve_cap=EXACT_SHARE * time_limit / ANYTIME_SOLVES, say=say)
        heur = heuristic_front(base, objs, deadline, seed=seed, methods=heuristics, seeds=search.points,
                               say=say)
    else:
        heur = heuristic_front(base, objs, deadline, seed=seed, methods=heuristics, say=say)

    exact_points = search.points if search else []
    heur_points = heur["points"] if heur else []
    complete = bool(search and search.complete)
    if complete:
        chosen = list(exact_points)
    else:
        pool = list(exact_points) + heur_points
        chosen = [pool[i] for i in non_dominated([f.vector for f in pool])]
    chosen.sort(key=lambda f: f.vector)
    chosen_ids = {id(f) for f in chosen}
    tried = (search.candidates if search else []) + (heur["anchors"] if heur else [])
    dominated = [f for f in tried if id(f) not in chosen_ids
                 and any(dominates(c.vector, f.vector) or c.vector == f.vector for c in chosen)]

    quality = _quality(chosen, exact_points if complete else None, heur_points, metrics)
    if complete:
        completeness = search.reason + "; every point proven (lexicographically optimal)"
    elif search is not None:
        n_proven = sum(f.proven for f in chosen)
        if n_proven == len(chosen):
            completeness = (f"{search.reason}. The front is an approximation: all {n_proven} points "
                            "are proven, but points may be missing")
        else:
            completeness = (f"{search.reason}. The front is an approximation: {n_proven} of "
                            f"{len(chosen)} points proven, the others found by heuristics or by "
                            "solves that stopped at their limit")
    else:
        completeness = "heuristic front: no point is proven and points may be missing"
    approach = {
        "exact": f"exact: adaptive-grid epsilon-constraint, lexicographic points ({search.method})"
        if search else "",
        "anytime": f"anytime: time-capped exact solves ({search.method}), then anchors and NSGA-II"
        if search else "",
        "heuristic": "heuristic: anchors from " + ", ".join(heuristics) + ", then NSGA-II",
    }[regime]
    out: dict[str, Any] = {
        "problem": base.name, "objectives": objs, "metrics": metrics, "regime": regime,
        "approach": approach, "exact_method": search.method if search else None,
        "complete": complete, "completeness": completeness,
        "tolerance": {"step_relative": STEP_TOL, "dominance_relative": DOMINANCE_TOL},
        "solves": (search.solves if search else 0) + (heur["solves"] if heur else 0),
        "time_limit": float(time_limit), "solve_time_s": time.monotonic() - t_start,
        "points": [_point(f) for f in chosen],
        "dominated": [{k: v for k, v in _point(f).items() if k != "plan"} for f in dominated],
        "quality": quality,
    }
    if search is not None:
        out["grid"] = {"kind": "adaptive: +inf and the values of " + ", ".join(metrics[1:])
                       + " at the points found (Laumanns, Thiele & Zitzler 2006)",
                       "cells_solved": search.cells_solved, "cells_implied": search.cells_skipped,
                       "open_cells": search.open_cells[:50], "open_cells_total": len(search.open_cells)}
    if heur is not None:
        out["heuristic"] = {"methods": heuristics, "anchors": len(heur["anchors"]),
                            "evaluations": heur["evaluations"], "generations": heur["generations"],
                            "stopped": heur["stopped"], "points": len(heur_points),
                            "front": [{k: v for k, v in _point(f).items() if k != "plan"}
                                      for f in heur_points]}
    return out


def _quality(front: list[Found], exact: list[Found] | None, heur: list[Found],
             metrics: list[str]) -> dict[str, Any]:
    if not front:
        return {"reference": None, "hypervolume": None}
    ref_front = exact if exact else front
    ideal, ref = reference_box([f.vector for f in ref_front])
    q: dict[str, Any] = {
        "reference": "the exact front" if exact else "the reported front",
        "ideal": dict(zip(metrics, map(float, ideal))),
        "reference_point": dict(zip(metrics, map(float, ref))),
        "hypervolume": hypervolume([f.vector for f in front], ideal, ref),
        "heuristic_hypervolume": None, "heuristic_ratio": None,
    }
    if heur:
        q["heuristic_hypervolume"] = hypervolume([f.vector for f in heur], ideal, ref)
        if exact and q["hypervolume"] > 0:
            q["heuristic_ratio"] = q["heuristic_hypervolume"] / q["hypervolume"]
    return q


def _point(f: Found) -> dict[str, Any]:
    mm = f.plan.metrics
    return {"latency_s": mm["latency_s"], "period_s": mm["period_s"],
            "throughput_per_s": mm["throughput_per_s"], "energy_j": mm["energy_j"],
            "proven": f.proven, "point": "proven" if f.proven else "found", "source": f.source,
            "method": f.method, "how": f.how, "status": f.plan.status.value, "plan": f.plan.to_dict()}


def plot_front(front: dict[str, Any], output: str | os.PathLike[str], dpi: int = 300) -> dict[str, Any]:
    """Draw a front (the dict `pareto` returns); see `placement.pareto_plot`."""
    from .pareto_plot import plot_front as _plot
    return _plot(front, output, dpi=dpi)


# ------------------------------------------------------------------------------- CLI
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("problem", help="problem file (JSON)")
    p.add_argument("--objectives", default="latency,energy",
                   help="two or three of latency, throughput, energy (default latency,energy)")
    p.add_argument("--points", type=int, default=DEFAULT_POINTS,
                   help=f"most front points the exact search looks for (default {DEFAULT_POINTS}, "
                   f"at most {MAX_POINTS}); the output says when the cap cut the front")
    p.add_argument("-t", "--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S,
                   help=f"seconds for the WHOLE front, every solve included (default {DEFAULT_TIME_LIMIT_S:g})")
    p.add_argument("-m", "--method", help="an exact method for the search (default: the first exact one "
                   "in 'placement methods' that accepts the problem), or a heuristic (heuristic regime)")
    p.add_argument("--regime", choices=REGIMES, default="auto",
                   help=f"auto (default: exact up to {EXACT_MAX_CELLS} blocks x devices, else anytime), "
                   "exact, anytime or heuristic")
    p.add_argument("--no-check", action="store_true",
                   help="exact regime: skip the heuristic front (and its hypervolume ratio)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the solvers and of NSGA-II (default 0); the same seed gives the same "
                   "front when no time limit cuts it")
    p.add_argument("-o", "--output", help="write the front here: .json (the figure beside it as .png "
                   "unless --plot is given), or a figure (.png, .pdf, .svg)")
    p.add_argument("--plot", help="write the figure here (.png, .pdf or .svg)")
    p.add_argument("--json", action="store_true", help="print the front as JSON on stdout")


def _check_output(path: str, what: str, suffixes: tuple[str, ...]) -> Path:
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise InputError(f"{what} {path}: expected a file ending in {', '.join(suffixes)}")
    if out.is_dir():
        raise InputError(f"{what} {path}: is a directory, expected a file")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{what} {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise InputError(f"{what} {path}: cannot be written (permission denied)")
    if out.exists() and out.suffix.lower() == ".json" and not _is_front_file(out):
        raise InputError(f"{what} {path}: exists and is not a front written by 'placement pareto'; "
                         "refusing to overwrite it (name a new file)")
    return out


def _is_front_file(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "objectives" in data and "points" in data and "metrics" in data


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from .cli import EXIT_NO_PLAN, EXIT_OK
    from .plan import write_json_atomic
    from .report import console

    err = Console(stderr=True, highlight=False)
    json_out = plot = None
    if args.output:
        out = _check_output(args.output, "-o", (".json",) + FIGURE_SUFFIXES)
        if out.suffix.lower() == ".json":
            json_out = str(out)
            plot = str(out.with_suffix(".png"))
        else:
            plot = str(out)
    if args.plot:
        plot = str(_check_output(args.plot, "--plot", FIGURE_SUFFIXES))
    elif plot and json_out:
        _check_output(plot, "-o (its figure)", FIGURE_SUFFIXES)
    kwargs = dict(points=args.points, time_limit=args.time_limit, method=args.method, regime=args.regime,
                  seed=args.seed, check=not args.no_check)
    if args.json or not err.is_terminal:
        front = pareto(args.problem, args.objectives, **kwargs)
    else:
        with Progress(TextColumn("pareto"), BarColumn(), TextColumn("{task.fields[elapsed]}"),
                      TimeElapsedColumn(), TextColumn("{task.description}"), console=err,
                      transient=True) as bar:
            task = bar.add_task("", total=float(args.time_limit), elapsed=f"of {args.time_limit:g} s")

            def show(msg: str, elapsed: float) -> None:
                bar.update(task, completed=min(elapsed, float(args.time_limit)), description=msg)

            front = pareto(args.problem, args.objectives, progress=show, **kwargs)
    if json_out:
        write_json_atomic(json_out, front)
    if plot and front["points"]:
        plot_front(front, plot)
    if args.json:
        print(json.dumps(front, indent=2))
    else:
        q = front["quality"]
        t = Table(title=f"{front['problem']}: Pareto front over {', '.join(front['objectives'])} "
                  f"({front['regime']}, {front['solves']} solves, {front['solve_time_s']:.1f} s)")
        for col in ("latency (s)", "throughput (1/s)", "energy (J)", "point"):
            t.add_column(col, justify="left" if col == "point" else "right", no_wrap=True)
        t.add_column("how", overflow="fold")
        for p in front["points"]:
            how = p["how"] if p["method"] == "nsga2" or p["how"].startswith(p["method"]) \
                else f"{p['method']}: {p['how']}"
            t.add_row(f"{p['latency_s']:.6g}", f"{p['throughput_per_s']:.6g}", f"{p['energy_j']:.6g}",
                      p["point"], how)
        c = console()
        c.print(t)
        c.print(("[bold]complete[/bold]: " if front["complete"] else "[bold]approximation[/bold]: ")
                + front["completeness"], highlight=False)
        if q.get("hypervolume") is not None:
            line = (f"hypervolume {q['hypervolume']:.4f} (normalised, box of {q['reference']}: reference "
                    "point " + ", ".join(f"{k} {v:.6g}" for k, v in q["reference_point"].items()) + ")")
            if q.get("heuristic_ratio") is not None:
                line += f"; heuristic front: {q['heuristic_ratio']:.2%} of the exact front's hypervolume"
            c.print(line, highlight=False)
        for f in (json_out, plot if front["points"] else None):
            if f:
                c.print(f"wrote {f}", highlight=False)
    if not front["points"]:
        err.print("placement pareto: no feasible plan found (see 'placement solve' for the reason)")
        return EXIT_NO_PLAN
    return EXIT_OK

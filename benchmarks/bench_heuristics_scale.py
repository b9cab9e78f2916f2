"""`heft`, `dp` and `local` at growing sizes, up to 2,000 blocks x 64 devices.

    python benchmarks/bench_heuristics_scale.py            # resumable; --fresh to restart

For each size, shape and objective: planning time, value, the cheap bound and the gap, and
the status (``local`` stops on convergence or at its time limit, ``LOCAL_LIMIT_S``).
Writes ``benchmarks/results/heuristics_scale.csv`` (rewritten atomically after every row)
and ``heuristics_scale.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import placement  # noqa: E402
from benchmarks._rows import read_rows, write_rows  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
CSV = OUT / "heuristics_scale.csv"
SIZES = [(200, 8), (500, 16), (1000, 32), (2000, 64)]
SHAPES = ["dag", "hybrid"]
OBJECTIVES = ["latency", "throughput", "energy"]
METHODS = ["heft", "dp", "local"]
LOCAL_LIMIT_S = 30.0
FIELDS = ["blocks", "devices", "shape", "objective", "method", "status", "value", "bound", "gap",
          "solve_time_s", "variant"]


def main(fresh: bool) -> None:
    from rich.progress import track

    rows = [] if fresh else read_rows(CSV)
    done = {(r["blocks"], r["devices"], r["shape"], r["objective"], r["method"]) for r in rows}
    jobs = [(b, d, s, o, m) for b, d in SIZES for s in SHAPES for o in OBJECTIVES for m in METHODS
            if (str(b), str(d), s, o, m) not in done]
    problems: dict = {}
    for b, d, s, o, m in track(jobs, description="heuristics at scale"):
        key = (b, d, s, o)
        if key not in problems:
            problems.clear()
            problems[key] = placement.load(placement.generate(s, b, d, device_set="iot", network="mesh",
                                                              seed=1, objective=o))
        p = problems[key]
        t0 = time.perf_counter()
        plan = placement.solve(p, m, time_limit=LOCAL_LIMIT_S if m == "local" else 120.0)
        rows.append({"blocks": b, "devices": d, "shape": s, "objective": o, "method": m,
                     "status": plan.status.value, "value": plan.value, "bound": plan.bound,
                     "gap": plan.gap if hasattr(plan, "gap") else None,
                     "solve_time_s": round(plan.solve_time_s, 4),
                     "variant": plan.stats.get("chosen", plan.stats.get("start", ""))})
        write_rows(CSV, rows, FIELDS)
        print(f"{b}x{d} {s} {o} {m}: {plan.status.value} value {plan.value:.5g} "
              f"bound {plan.bound:.5g} in {time.perf_counter() - t0:.2f} s", flush=True)
    plot()


def plot() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_rows(CSV)
    fig, axes = plt.subplots(1, len(OBJECTIVES), figsize=(14, 4), sharey=True)
    for ax, obj in zip(axes, OBJECTIVES):
        for m, mk in zip(METHODS, "os^"):
            for s, ls in zip(SHAPES, ("-", "--")):
                pts = sorted((int(r["blocks"]), float(r["solve_time_s"])) for r in rows
                             if r["objective"] == obj and r["method"] == m and r["shape"] == s)
                if pts:
                    ax.plot(*zip(*pts), marker=mk, ls=ls, label=f"{m} ({s})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("blocks (devices 8, 16, 32, 64)")
        ax.set_title(obj)
    axes[0].set_ylabel("planning time (s)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "heuristics_scale.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", action="store_true")
    main(ap.parse_args().fresh)

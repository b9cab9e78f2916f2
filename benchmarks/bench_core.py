"""Load and evaluate time of the core at growing sizes, up to 2,000 blocks x 64 devices.

    python benchmarks/bench_core.py            # writes benchmarks/results/core_load_evaluate.csv

For each size: generate (not timed), then the median of 5 runs of `placement.load` on the
dict, of `evaluate` with the list rule (no order), and of `evaluate` with a given order, on
random assignments. Also the cheap lower bound, which every solve computes.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from rich.progress import track

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import placement  # noqa: E402
from placement.bounds import lower_bound  # noqa: E402
from placement.evaluator import evaluate  # noqa: E402
from placement.plan import write_text_atomic  # noqa: E402

SIZES = [(100, 8), (500, 16), (1000, 32), (2000, 64)]
REPEATS = 5
OUT = ROOT / "benchmarks" / "results" / "core_load_evaluate.csv"


def median_time(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    rows = []
    for blocks, devices in track(SIZES, description="load + evaluate"):
        d = placement.generate("hybrid", blocks, devices, device_set="iot", network="mesh", seed=1, split=0.1)
        p = placement.load(d)
        a = np.random.default_rng(0).integers(0, devices, size=p.n_blocks)
        order = evaluate(p, a).order
        rows.append({
            "blocks": p.n_blocks, "devices": devices, "edges": p.n_edges,
            "load_s": median_time(lambda: placement.load(d)),
            "evaluate_list_rule_s": median_time(lambda: evaluate(p, a)),
            "evaluate_given_order_s": median_time(lambda: evaluate(p, a, order)),
            "lower_bound_s": median_time(lambda: lower_bound(p), repeats=3),
        })
    lines = [",".join(rows[0])] + [",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in r.values())
                                   for r in rows]
    write_text_atomic(OUT, "\n".join(lines) + "\n")
    for r in rows:
        print(r)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

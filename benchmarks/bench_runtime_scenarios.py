"""Ask the Expert, executed: predicted against measured per scenario, ``placement run --emulate``.

    python benchmarks/bench_runtime_scenarios.py            # profile (once), plan, run, tables, plot
    python benchmarks/bench_runtime_scenarios.py -n 10 --methods heft
    python benchmarks/bench_runtime_scenarios.py --plot     # only redraw from runtime_scenarios.json

Problem (cached in ``benchmarks/results/runtime_scenarios_problem.json``; ``--fresh`` profiles
again): ``placement profile --generalist deit_tiny_patch16_224 --experts
deit_tiny_patch16_224:2 --route 0.6,0.2,0.2 --devices jetson-nano,edge-gpu,edge-gpu
--network wifi5`` (small models, to keep it quick: the shipped example has four deit_small
experts). The camera is the Jetson Nano (source and sink); the two near-edge servers are
GPU boxes.

Plans: ``cpsat`` and ``heft`` (latency objective: the expected latency), and the edge-only
baseline ``single`` (every block on the Jetson). Each plan runs once with each inference's
scenario sampled from the probabilities (``--seed``): every scenario's single inferences give
its measured latency (median), set beside the evaluator's ``metrics.scenarios``; the stream of
sampled scenarios gives the period against the expected period; the expectation row is the
probability-weighted sum of the scenarios' medians against the evaluator's expected latency.
With ``--per-scenario`` every plan also runs each scenario alone (``--scenario NAME``) for the
scenario's period.

Emulation: devices paced to their predicted block times, links throttled at the sender, the
whole world slowed by ``--time-scale`` (default 150: the servers' predicted block times are
about 25 times shorter than this host's, and 6 workers share 2 cores here); reported figures
are divided by it again.

Writes ``benchmarks/results/runtime_scenarios.json`` (every report), ``runtime_scenarios.csv``
and ``runtime_scenarios.png``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
PROBLEM = RESULTS / "runtime_scenarios_problem.json"
PROFILE = ["--generalist", "deit_tiny_patch16_224", "--experts", "deit_tiny_patch16_224:2",
           "--route", "0.6,0.2,0.2", "--devices", "jetson-nano,edge-gpu,edge-gpu", "--network", "wifi5"]


def problem(fresh: bool) -> dict:
    if fresh or not PROBLEM.exists():
        RESULTS.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-c", "import sys; from placement.cli import main; sys.exit(main())",
               "profile", *PROFILE, "-o", str(PROBLEM)]
        subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(PROBLEM.read_text())


def plans(prob: dict, methods, time_limit: float):
    import placement

    out = []
    for m in methods:
        plan = placement.solve(prob, method=m, time_limit=time_limit)
        same = next((name for name, q in out if q.assignment == plan.assignment), None)
        if same:  # not run twice
            print(f"{m}: the same assignment as {same}, not run again", file=sys.stderr)
            continue
        out.append((m, plan))
    return out


def rows_of(method: str, rep, wall_s: float) -> list[dict]:
    d = rep.to_dict()
    rows = []
    for s in d["scenarios"]:
        rows.append({"method": method, "scenario": s["name"], "probability": s["probability"],
                     "singles": s["inferences"], "output_matches": s["output_matches"],
                     "predicted_latency_s": s["predicted"]["latency_s"], "measured_latency_s": s["measured"]["latency_s"],
                     "latency_error": s["error"]["latency"], "predicted_period_s": s["predicted"]["period_s"],
                     "measured_period_s": s["measured"]["period_s"], "period_error": s["error"]["period"],
                     "time_scale": rep.time_scale, "wall_s": wall_s})
    if d["scenario"] is None:
        rows.append({"method": method, "scenario": "expectation", "probability": 1.0, "singles": d["inferences"],
                     "output_matches": d["output_matches"], "predicted_latency_s": d["predicted"]["latency_s"],
                     "measured_latency_s": d["measured"]["latency_s"], "latency_error": d["error"]["latency"],
                     "predicted_period_s": d["predicted"]["period_s"], "measured_period_s": d["measured"]["period_s"],
                     "period_error": d["error"]["period"], "time_scale": rep.time_scale, "wall_s": wall_s})
        rows.append({"method": method, "scenario": "stream's mix", "probability": None, "singles": d["inferences"],
                     "output_matches": d["output_matches"], "predicted_latency_s": None, "measured_latency_s": None,
                     "latency_error": None, "predicted_period_s": d["predicted"]["period_sample_s"],
                     "measured_period_s": d["measured"]["period_s"], "period_error": d["error"]["period_sample"],
                     "time_scale": rep.time_scale, "wall_s": wall_s})
        rows.append({"method": method, "scenario": "worst", "probability": None, "singles": d["inferences"],
                     "output_matches": d["output_matches"], "predicted_latency_s": d["predicted"]["latency_max_s"],
                     "measured_latency_s": d["measured"]["latency_max_s"], "latency_error": d["error"]["latency_max"],
                     "predicted_period_s": None, "measured_period_s": None, "period_error": None,
                     "time_scale": rep.time_scale, "wall_s": wall_s})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--inferences", type=int, default=20)
    ap.add_argument("--methods", default="cpsat,heft,single")
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--time-scale", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-scenario", action="store_true", help="also run each scenario alone (its period)")
    ap.add_argument("--fresh", action="store_true", help="profile the models again")
    ap.add_argument("--plot", action="store_true", help="only redraw from runtime_scenarios.json")
    args = ap.parse_args(argv)
    if args.plot:
        data = json.loads((RESULTS / "runtime_scenarios.json").read_text())
        write_tables(data)
        plot(data)
        return 0
    import placement

    prob = problem(args.fresh)
    data = {"host": platform.node(), "python": platform.python_version(), "command": " ".join(sys.argv),
            "profile": "placement profile " + " ".join(PROFILE), "rows": [], "reports": []}
    for method, plan in plans(prob, [m.strip() for m in args.methods.split(",") if m.strip()], args.time_limit):
        runs = [None] + ([s["name"] for s in prob["model"]["scenarios"]] if args.per_scenario else [])
        for scenario in runs:
            t0 = time.perf_counter()
            rep = placement.run(prob, plan.to_dict(), scenario=scenario, inferences=args.inferences, emulate=True,
                                time_scale=args.time_scale, seed=args.seed)
            wall = time.perf_counter() - t0
            rows = rows_of(method, rep, wall)
            if scenario is not None:
                rows = [dict(r, scenario=f"{r['scenario']} (alone)") for r in rows if r["scenario"] == scenario]
            data["rows"] += rows
            data["reports"].append({"method": method, "scenario": scenario, "report": rep.to_dict(),
                                    "assignment": plan.assignment})
            for r in rows:
                print(_line(r), file=sys.stderr)
    from placement.plan import write_json_atomic
    write_json_atomic(RESULTS / "runtime_scenarios.json", data)
    write_tables(data)
    plot(data)
    return 0


def _fmt(x) -> str:
    return "-" if x is None else f"{x * 1e3:.2f}"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _line(r) -> str:
    return (f"{r['method']:6s} {r['scenario']:18s} p={r['probability'] if r['probability'] is not None else '-'} "
            f"latency {_fmt(r['predicted_latency_s'])} -> {_fmt(r['measured_latency_s'])} ms "
            f"({_pct(r['latency_error'])}), period {_fmt(r['predicted_period_s'])} -> "
            f"{_fmt(r['measured_period_s'])} ms ({_pct(r['period_error'])}), output {r['output_matches']}")


def write_tables(data) -> None:
    from placement.plan import write_text_atomic

    keys = list(data["rows"][0]) if data["rows"] else []
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for r in data["rows"]:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    write_text_atomic(RESULTS / "runtime_scenarios.csv", buf.getvalue())
    print("| plan | scenario | p | singles | latency predicted ms | measured ms | error | period predicted ms "
          "| measured ms | error | output |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in data["rows"]:
        print(f"| {r['method']} | {r['scenario']} | {r['probability'] if r['probability'] is not None else ''} | "
              f"{r['singles']} | {_fmt(r['predicted_latency_s'])} | {_fmt(r['measured_latency_s'])} | "
              f"{_pct(r['latency_error'])} | {_fmt(r['predicted_period_s'])} | {_fmt(r['measured_period_s'])} | "
              f"{_pct(r['period_error'])} | {'yes' if r['output_matches'] else 'NO' if r['output_matches'] is False else '-'} |")


def plot(data) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in data["rows"] if r["measured_latency_s"] is not None]
    labels = [f"{r['method']}\n{r['scenario']}" for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 0.7 * len(rows) + 2), 4.5))
    pred = [r["predicted_latency_s"] * 1e3 for r in rows]
    meas = [r["measured_latency_s"] * 1e3 for r in rows]
    ax.bar(x - 0.2, pred, 0.4, label="predicted (evaluator, per scenario / expected)", color="#4e79a7")
    ax.bar(x + 0.2, meas, 0.4, label="measured (placement run --emulate)", color="#f28e2b")
    for xi, p, m in zip(x, pred, meas):
        ax.text(xi + 0.2, m, f"{100 * (m / p - 1):+.0f}%", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7, rotation=50, ha="right")
    ax.set_ylabel("latency of one inference, ms")
    ax.grid(axis="y", linestyle=":", linewidth=0.5)
    ax.legend(fontsize=8)
    ax.set_title("Ask the Expert (deit_tiny + 2 deit_tiny experts), emulated jetson-nano + 2 edge-gpu, Wi-Fi 5",
                 fontsize=9)
    fig.tight_layout()
    from placement.plan import atomic_output
    with atomic_output(RESULTS / "runtime_scenarios.png") as tmp:
        fig.savefig(tmp, format="png", dpi=130)


if __name__ == "__main__":
    sys.exit(main())

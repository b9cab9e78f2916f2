"""Predicted against measured: plans executed by ``placement run --emulate``.

    python benchmarks/bench_runtime.py                 # run every row, then tables and plot
    python benchmarks/bench_runtime.py --plot          # only redraw from runtime.json
    python benchmarks/bench_runtime.py -n 5 --models levit_128s
    python benchmarks/bench_runtime.py --gantt         # predicted-above-measured Gantt charts

Problems: the committed block-granularity profiles ``examples/models/<model>.block.json``
(mobilevit_s, efficientformer_l1, levit_128s) restricted to three catalog devices, rpi4 (the
camera: source and sink), jetson-nano and laptop, on the profile's Wi-Fi 5 network. Plans:
``single``, ``heft`` and ``cpsat`` (10 s limit) for the latency objective, and ``heft`` and
``cpsat`` for the throughput objective (these split the model over devices; a plan equal
to an earlier row's is not run twice, the row says which it equals); with the camera on
the rpi4 every one of them keeps the whole model on the Jetson (the rpi4's radio makes the
input transfer the busiest resource, which no split relieves), so each model also gets a
hand-made ``split`` row (`split_plan`: jetson-nano then laptop) whose transfers between
blocks cross a throttled link. Each plan is executed with
``placement.run(..., emulate=True)`` (`inferences` single inferences after a warm-up, then a
stream of as many inputs): devices paced to their predicted block times, links throttled at
the sender (this kernel has no netem).

Second table: each model's problem calibrated with the measured block times of all its
runs (``time_s[device id]``), re-planned with ``cpsat`` for each objective and executed
again: whether the plan changed, the objective's metric of the old plan as predicted before
and on the calibrated problem, the new plan's prediction and its measurement.

Writes ``benchmarks/results/runtime.json`` (every report, with the largest block and
transfer differences of each row), ``runtime.csv``, ``runtime_calibrated.csv`` and
``runtime.png``.
"""

from __future__ import annotations

import dataclasses

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("mobilevit_s", "efficientformer_l1", "levit_128s")
DEVICES = ("rpi4", "jetson-nano", "laptop")
#: (method, objective): the latency plans the issue names, and the throughput plans of the
#: same methods, which split the model across devices (pipelining) where latency plans
#: often keep it on the fastest device.
PLANS = (("single", "latency"), ("heft", "latency"), ("cpsat", "latency"),
         ("heft", "throughput"), ("cpsat", "throughput"))
GOAL = 0.10


def problem_for(model: str) -> dict:
    p = json.loads((ROOT / "examples" / "models" / f"{model}.block.json").read_text())
    p["devices"] = [d for d in p["devices"] if d["type"] in DEVICES]
    ids = {d["id"] for d in p["devices"]}
    types = {d["type"] for d in p["devices"]}
    for b in p["model"]["blocks"]:
        b["time_s"] = {k: v for k, v in (b.get("time_s") or {}).items() if k in ids | types}
    net = p.get("network") or {}
    net["links"] = [lk for lk in net.get("links", []) if lk["src"] in ids and lk["dst"] in ids]
    if not net["links"]:
        net.pop("links")
    p["name"] = f"{model}-3dev"
    return p


def split_plan(problem: dict):
    """A hand-made split, so that every model has a row with transfers between blocks: the
    blocks in order, the first ones on jetson-nano and the rest on laptop, cut where
    jetson-nano has done about three quarters of the work (it is ~3x faster)."""
    import placement

    p = placement.load(problem)
    j = p.device_index["jetson-nano"]
    total = float(sum(p.compute_time[b, j] for b in range(p.n_blocks)))
    acc, assignment = 0.0, {}
    for b in range(p.n_blocks):
        acc += float(p.compute_time[b, j])
        assignment[p.blocks[b].id] = "jetson-nano" if acc <= 0.75 * total or b == 0 else "laptop"
    for b, d in p.pinned.items():
        assignment[p.blocks[b].id] = p.devices[d].id
    plan = placement.evaluate(p, {"assignment": assignment, "method": "split"})
    return dataclasses.replace(plan, method="split")  # plans are frozen


def draw_gantts(n: int) -> None:
    """``runtime_gantt_levit_128s_<plan>.png``: the evaluator's schedule above the measured one."""
    import placement
    from placement.plots import show_measured

    problem = problem_for("levit_128s")
    for name, plan in (("heft", placement.solve(problem, "heft", time_limit=10)), ("split", split_plan(problem))):
        rep = placement.run(problem, plan.to_dict(), "levit_128s", inferences=n, emulate=True)
        out = RESULTS / f"runtime_gantt_levit_128s_{name}.png"
        show_measured(problem, plan.to_dict(), rep.trace(), out)
        print(f"wrote {out}", flush=True)


def contributors(rep, k: int = 3) -> list[dict]:
    """The blocks and transfers whose measured time differs most from the prediction."""
    rows = [{"what": f"block {b['id']} on {b['device']}", "diff_s": b["measured_s"] - b["predicted_s"]}
            for b in rep.blocks if b["measured_s"] is not None]
    rows += [{"what": f"transfer {t['src']} -> {t['dst']}", "diff_s": t["measured_s"] - t["predicted_s"]}
             for t in rep.transfers if t["measured_s"] is not None]
    rows.sort(key=lambda r: -abs(r["diff_s"]))
    return rows[:k]


def run_row(problem: dict, plan, model: str, method: str, n: int, phase: str) -> dict:
    import placement

    problem = {**problem, "objective": plan.objective}
    t0 = time.perf_counter()
    rep = placement.run(problem, plan.to_dict(), model, inferences=n, emulate=True)
    wall = time.perf_counter() - t0
    d = rep.to_dict()
    return {"model": model, "method": method, "objective": plan.objective, "phase": phase, "devices_used": sorted({b["device"] for b in rep.blocks}),
            "time_scale": rep.time_scale, "wall_s": wall, "report": d,
            "sum_block_diff_s": sum(b["measured_s"] - b["predicted_s"] for b in rep.blocks if b["measured_s"]),
            "contributors": contributors(rep), "_rep": rep}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--inferences", type=int, default=4)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--plot", action="store_true", help="only redraw from runtime.json")
    ap.add_argument("--gantt", action="store_true",
                    help="only draw predicted-above-measured Gantt charts of levit_128s's heft plan and split")
    ap.add_argument("--split-only", action="store_true",
                    help="only (re)run the hand-made split rows and merge them into runtime.json")
    args = ap.parse_args(argv)
    out_json = RESULTS / "runtime.json"
    if args.gantt:
        draw_gantts(args.inferences)
        return 0
    if args.split_only:
        data = json.loads(out_json.read_text())
        data["rows"] = [r for r in data["rows"] if r["method"] != "split"]
        for model in args.models.split(","):
            problem = problem_for(model)
            row = run_row(problem, split_plan(problem), model, "split", args.inferences, "profiled")
            row.pop("_rep")
            data["rows"].append(row)
            print(_line(row), flush=True)
        data["meta"]["command_split_rows"] = "python benchmarks/bench_runtime.py --split-only"
        from placement.plan import write_json_atomic
        write_json_atomic(out_json, data)
    elif not args.plot:
        import placement
        from placement.plan import write_json_atomic
        from placement.runtime.report import calibrated_problem

        rows, cal_rows = [], []
        for model in args.models.split(","):
            problem = problem_for(model)
            reps, seen = [], {}
            for method, objective in PLANS:
                plan = placement.solve(problem, method, time_limit=10, objective=objective)
                key = json.dumps([plan.assignment, plan.order], sort_keys=True)
                if key in seen:
                    row = {**seen[key], "method": method, "objective": objective,
                           "same_plan_as": f"{seen[key]['method']} ({seen[key]['objective']})"}
                    rows.append(row)
                    print(f"{model:>20} {method:>6} {objective}: same plan as {row['same_plan_as']}", flush=True)
                    continue
                row = run_row(problem, plan, model, method, args.inferences, "profiled")
                reps.append(row.pop("_rep"))
                rows.append(row)
                seen[key] = row
                print(_line(row), flush=True)
            row = run_row(problem, split_plan(problem), model, "split", args.inferences, "profiled")
            reps.append(row.pop("_rep"))
            rows.append(row)
            print(_line(row), flush=True)
            # calibrate with every run of this model, re-plan, run again
            cal = problem
            for rep in reps:
                cal = calibrated_problem(cal, rep)
            for objective in ("latency", "throughput"):
                before = placement.solve(problem, "cpsat", time_limit=10, objective=objective)
                after = placement.solve(cal, "cpsat", time_limit=10, objective=objective)
                row = run_row(cal, after, model, "cpsat", args.inferences, "calibrated")
                row.pop("_rep")
                metric = "latency_s" if objective == "latency" else "period_s"
                row["plan_changed"] = after.assignment != before.assignment
                row["before_predicted"] = before.metrics[metric]
                row["before_on_calibrated"] = placement.evaluate(cal, before.to_dict()).metrics[metric]
                row["after_on_calibrated"] = after.metrics[metric]
                cal_rows.append(row)
                print(_line(row), flush=True)
        meta = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.machine(),
                "cpus": __import__("os").cpu_count(), "inferences": args.inferences, "devices": DEVICES,
                "command": "python benchmarks/bench_runtime.py " + " ".join(argv or sys.argv[1:])}
        write_json_atomic(out_json, {"meta": meta, "rows": rows, "calibrated": cal_rows})
    data = json.loads(out_json.read_text())
    write_tables(data)
    plot(data)
    return 0


def _line(row) -> str:
    r = row["report"]
    return (f"{row['model']:>20} {row['method']:>6} {row['objective']:>10} {row['phase']:>10} "
            f"{'+'.join(row['devices_used'])}: latency {r['predicted']['latency_s']:.4g} -> "
            f"{r['measured']['latency_s']:.4g} ({100 * r['error']['latency']:.1f}%), period "
            f"{r['predicted']['period_s']:.4g} -> {r['measured']['period_s']:.4g} ({100 * r['error']['period']:.1f}%), "
            f"match {r['output_matches']}, scale {row['time_scale']:g}, {row['wall_s']:.0f} s")


def write_tables(data) -> None:
    from placement.plan import write_text_atomic

    def table(rows, extra=()):
        cols = ["model", "method", "objective", "same_plan_as", "devices_used", "predicted_latency_s", "measured_latency_s", "latency_p90_s",
                "latency_error", "predicted_period_s", "measured_period_s", "period_error", "within_goal",
                "output_matches", "max_abs_error", "time_scale", *extra]
        out = []
        for row in rows:
            r = row["report"]
            rec = {"model": row["model"], "method": row["method"], "objective": row.get("objective", "latency"),
                   "same_plan_as": row.get("same_plan_as", ""), "devices_used": "+".join(row["devices_used"]),
                   "predicted_latency_s": r["predicted"]["latency_s"], "measured_latency_s": r["measured"]["latency_s"],
                   "latency_p90_s": r["measured"]["latency_p90_s"], "latency_error": r["error"]["latency"],
                   "predicted_period_s": r["predicted"]["period_s"], "measured_period_s": r["measured"]["period_s"],
                   "period_error": r["error"]["period"],
                   "within_goal": r["error"]["latency"] <= GOAL and r["error"]["period"] <= GOAL,
                   "output_matches": r["output_matches"], "max_abs_error": r["max_abs_error"],
                   "time_scale": row["time_scale"]}
            for e in extra:
                rec[e] = row.get(e)
            out.append(rec)
        return cols, out

    import io
    for name, rows, extra in (("runtime.csv", data["rows"], ()),
                              ("runtime_calibrated.csv", data["calibrated"],
                               ("plan_changed", "before_predicted", "before_on_calibrated", "after_on_calibrated"))):
        cols, recs = table(rows, extra)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        for rec in recs:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in rec.items()})
        write_text_atomic(RESULTS / name, buf.getvalue())


def plot(data) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in data["rows"] if not r.get("same_plan_as")] + data["calibrated"]
    short = {"latency": "lat", "throughput": "thr"}
    labels = [f"{r['model']}\n{r['method']}/{short.get(r.get('objective'), '?')}"
              f"{' (cal.)' if r['phase'] == 'calibrated' else ''}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.8))
    x = np.arange(len(rows))
    for ax, key, title in ((axes[0], "latency_s", "latency of one inference (median)"),
                           (axes[1], "period_s", "period of the pipelined stream")):
        pred = [r["report"]["predicted"][key] * 1e3 for r in rows]
        meas = [r["report"]["measured"][key] * 1e3 for r in rows]
        ax.bar(x - 0.2, pred, 0.4, label="predicted (evaluator)", color="#4e79a7")
        ax.bar(x + 0.2, meas, 0.4, label="measured (placement run --emulate)", color="#f28e2b")
        for xi, p, m in zip(x, pred, meas):
            ax.text(xi + 0.2, m, f"{100 * (m / p - 1):+.0f}%", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=6.5, rotation=60, ha="right")
        ax.set_ylabel("ms")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", linestyle=":", linewidth=0.5)
    axes[0].legend(fontsize=8)
    fig.suptitle("split inference on emulated rpi4 + jetson-nano + laptop (Wi-Fi 5): predicted vs measured",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(RESULTS / "runtime.png", dpi=130)


if __name__ == "__main__":
    sys.exit(main())

"""Exact solvers as the problem grows: solve time and final gap of ``cpsat``, ``milp`` (CBC)
and ``milp --backend highs`` on generated hybrid (CNN + ViT) models.

    python benchmarks/bench_exact.py            # run (resumable) and plot
    python benchmarks/bench_exact.py --plot     # only redraw the plots and the summary

Problems: ``placement.generate("hybrid", B, D, device_set="iot", network="mesh", seed=0)``
(a heterogeneous swarm of Pi 3/4/5 and Jetson Nano boards, a link with its own bandwidth and
latency for every pair, memory that binds: no board holds the whole model), objective
latency.

Sweeps: ``blocks`` 10 ... 200 on 6 devices; ``devices`` 2 ... 32 with 30 blocks. The two goal
points of issue 4 (30 x 6: prove optimality within 60 s; 200 x 16: gap <= 5 % within 60 s)
run first with a 60 s limit; the other points use ``--time-limit`` (default 30 s).

Rows go to ``benchmarks/results/exact_scaling.csv`` as they finish (the file is rewritten
atomically per row); a rerun skips rows already there. Plots: ``exact_vs_blocks.png`` and
``exact_vs_devices.png`` (solve time and gap, one line per solver); summary:
``exact_summary.md``. Each solve runs in a child process (a backend crash costs one row,
not the run) that is killed 30 s past its limit.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._rows import read_rows  # noqa: E402
from benchmarks._rows import write_rows as write_csv  # noqa: E402
RESULTS = ROOT / "benchmarks" / "results"
ROWS = RESULTS / "exact_scaling.csv"
SUMMARY = RESULTS / "exact_summary.md"

SOLVERS = {"cpsat": ("cpsat", {}), "milp-cbc": ("milp", {"backend": "cbc"}),
           "milp-highs": ("milp", {"backend": "highs"})}
GOALS = [(30, 6), (200, 16)]
GOAL_LIMIT = 60.0
BLOCKS = (10, 20, 30, 50, 100, 200)
FIXED_DEVICES = 6
DEVICES = (2, 4, 6, 8, 16, 32)
FIXED_BLOCKS = 30
COLUMNS = ["sweep", "blocks", "devices", "solver", "time_limit_s", "status", "value", "bound", "gap",
           "solve_time_s", "wall_s", "warm_value", "warm_start", "variables", "constraints",
           "ratio_to_best", "message"]


def problem(blocks: int, devices: int) -> dict:
    import placement
    return placement.generate("hybrid", blocks, devices, device_set="iot", network="mesh", seed=0)


def _child(q, blocks, devices, solver, limit):
    try:
        import placement
        method, options = SOLVERS[solver]
        t0 = time.monotonic()
        plan = placement.solve(problem(blocks, devices), method, time_limit=limit, seed=0, **options)
        wall = time.monotonic() - t0
        st = plan.stats
        q.put({"status": plan.status.value, "value": plan.value, "bound": plan.bound, "gap": plan.gap,
               "solve_time_s": plan.solve_time_s, "wall_s": wall, "warm_value": st.get("warm_value"),
               "warm_start": st.get("warm_start"), "variables": st.get("variables"),
               "constraints": st.get("constraints"), "message": plan.message[:200]})
    except Exception as exc:  # recorded as a row, not a crash of the run
        q.put({"status": "error", "message": f"{type(exc).__name__}: {exc}"[:200]})


def run_one(blocks: int, devices: int, solver: str, limit: float) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_child, args=(q, blocks, devices, solver, limit))
    t0 = time.monotonic()
    proc.start()
    proc.join(limit + 30.0)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"status": "error", "message": f"killed {limit + 30:.0f} s after start",
                "wall_s": time.monotonic() - t0}
    try:
        return q.get(timeout=1.0)
    except Exception:
        return {"status": "error", "message": f"child died (exit code {proc.exitcode})",
                "wall_s": time.monotonic() - t0}


def write_rows(rows: list[dict]) -> None:
    """Rewrite the table (atomically), with each row's value over the best for its size."""
    best: dict[tuple, float] = {}
    for r in rows:
        try:
            v = float(r["value"])
        except (TypeError, ValueError):
            continue
        key = (r["blocks"], r["devices"])
        best[key] = min(best.get(key, v), v)
    for r in rows:
        try:
            r["ratio_to_best"] = f"{float(r['value']) / best[(r['blocks'], r['devices'])]:.6f}"
        except (TypeError, ValueError, KeyError, ZeroDivisionError):
            r["ratio_to_best"] = ""
    write_csv(ROWS, rows, COLUMNS, extra="ignore")


def plan_points(limit: float) -> list[tuple[str, int, int, float]]:
    pts = [("goal", b, d, GOAL_LIMIT) for b, d in GOALS]
    pts += [("blocks", b, FIXED_DEVICES, GOAL_LIMIT if (b, FIXED_DEVICES) in GOALS else limit) for b in BLOCKS]
    pts += [("devices", FIXED_BLOCKS, d, GOAL_LIMIT if (FIXED_BLOCKS, d) in GOALS else limit) for d in DEVICES]
    return pts


def run(limit: float, solvers: list[str]) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    rows = read_rows(ROWS)
    done = {(r["blocks"], r["devices"], r["solver"], r["time_limit_s"]) for r in rows}
    todo = []
    seen = set()
    for sweep, b, d, lim in plan_points(limit):
        for s in solvers:
            key = (str(b), str(d), s, f"{lim:g}")
            if key in done or key in seen:
                continue
            seen.add(key)
            todo.append((sweep, b, d, s, lim))
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn()) as progress:
        task = progress.add_task("exact solvers", total=len(todo))
        for sweep, b, d, s, lim in todo:
            progress.update(task, description=f"{s:10s} {b:4d} blocks x {d:2d} devices ({lim:g} s)")
            res = run_one(b, d, s, lim)
            row = {"sweep": sweep, "blocks": str(b), "devices": str(d), "solver": s,
                   "time_limit_s": f"{lim:g}", **{k: ("" if v is None else v) for k, v in res.items()}}
            rows.append(row)
            write_rows(rows)
            gap = row.get("gap")
            progress.console.print(f"{s:10s} {b:4d}x{d:<2d} {row['status']:10s} gap "
                                   f"{float(gap) * 100 if gap not in ('', None) else float('nan'):.3f}% "
                                   f"in {float(row.get('wall_s') or 0):.1f} s")
            progress.advance(task)


def _rows_for(rows, axis: str, fixed_key: str, fixed: int, solver: str):
    pts = {}
    for r in rows:
        if r["solver"] != solver or int(r[fixed_key]) != fixed or r["status"] == "error":
            continue
        x = int(r[axis])
        # the goal limit where both ran at that point: keep the longest limit
        if x in pts and float(pts[x]["time_limit_s"]) >= float(r["time_limit_s"]):
            continue
        pts[x] = r
    return [pts[x] for x in sorted(pts)]


def plot() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = read_rows(ROWS)
    for axis, fixed_key, fixed, name in (("blocks", "devices", FIXED_DEVICES, "exact_vs_blocks.png"),
                                         ("devices", "blocks", FIXED_BLOCKS, "exact_vs_devices.png")):
        fig, (ax_t, ax_g) = plt.subplots(1, 2, figsize=(11, 4.2))
        for solver in SOLVERS:
            pts = _rows_for(rows, axis, fixed_key, fixed, solver)
            if not pts:
                continue
            xs = [int(r[axis]) for r in pts]
            ts = [float(r["solve_time_s"] or r["wall_s"] or "nan") for r in pts]
            gs = [100 * float(r["gap"]) if r["gap"] not in ("", None) else float("nan") for r in pts]
            ax_t.plot(xs, ts, marker="o", label=solver)
            ax_g.plot(xs, gs, marker="o", label=solver)
            for x, t, r in zip(xs, ts, pts):
                if r["status"] == "optimal":
                    ax_t.annotate("opt", (x, t), textcoords="offset points", xytext=(0, 5), fontsize=7,
                                  ha="center")
        if axis == "blocks":  # the 200 x 16 goal point, off the 6-device sweep: stars
            for i, solver in enumerate(SOLVERS):
                pts = [r for r in rows if r["solver"] == solver and (int(r["blocks"]), int(r["devices"]))
                       == GOALS[1] and r["status"] != "error"]
                if pts:
                    r = pts[-1]
                    color = f"C{i}"
                    ax_t.plot([int(r["blocks"])], [float(r["solve_time_s"] or "nan")], marker="*", ms=12,
                              ls="none", color=color, label=f"{solver} 200 x 16 (goal)")
                    if r["gap"] not in ("", None):
                        ax_g.plot([int(r["blocks"])], [100 * float(r["gap"])], marker="*", ms=12, ls="none",
                                  color=color, label=f"{solver} 200 x 16 (goal)")
        ax_t.set_xscale("log")
        ax_t.set_yscale("log")
        ax_t.set_xlabel(axis)
        ax_t.set_ylabel("solve time (s), limit 30-60 s")
        ax_t.set_title(f"solve time vs {axis} ({fixed_key} = {fixed})")
        ax_g.set_xscale("log")
        ax_g.set_xlabel(axis)
        ax_g.set_ylabel("final gap (%)  (value - bound) / value")
        ax_g.axhline(5.0, color="grey", lw=0.8, ls="--")
        ax_g.set_title(f"final gap vs {axis}")
        ticks = BLOCKS if axis == "blocks" else DEVICES
        for ax in (ax_t, ax_g):
            ax.set_xticks(list(ticks))
            ax.set_xticklabels([str(t) for t in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(RESULTS / name, dpi=110)
        plt.close(fig)
    summary(rows)


def summary(rows: list[dict]) -> None:
    from placement.plan import write_text_atomic
    lines = ["# Exact solvers: scaling (generated by benchmarks/bench_exact.py)", "",
             f"Machine: {platform.platform()}, {os.cpu_count()} cores shared with other jobs; "
             "CP-SAT with 2 workers, CBC and HiGHS single-threaded.", "",
             "| blocks x devices | solver | limit s | status | value s | bound s | gap | time s | warm start |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    seen = set()
    for r in sorted(rows, key=lambda r: (int(r["blocks"]), int(r["devices"]), r["solver"],
                                         float(r["time_limit_s"]))):
        key = (r["blocks"], r["devices"], r["solver"], r["time_limit_s"])
        if key in seen:
            continue
        seen.add(key)
        gap = f"{100 * float(r['gap']):.3g}%" if r["gap"] not in ("", None) else "-"
        val = f"{float(r['value']):.5g}" if r["value"] not in ("", None) else "-"
        bnd = f"{float(r['bound']):.5g}" if r["bound"] not in ("", None) else "-"
        t = f"{float(r['solve_time_s']):.3g}" if r.get("solve_time_s") not in ("", None) else "-"
        lines.append(f"| {r['blocks']} x {r['devices']} | {r['solver']} | {r['time_limit_s']} | {r['status']} | "
                     f"{val} | {bnd} | {gap} | {t} | {r.get('warm_start') or '-'} |")
    lines += ["", "## Against the goals of issue 4", ""]
    for (b, d), goal in zip(GOALS, ("proved optimal within 60 s", "gap <= 5 % within 60 s")):
        for solver in SOLVERS:
            got = [r for r in rows if (int(r["blocks"]), int(r["devices"])) == (b, d) and r["solver"] == solver
                   and float(r["time_limit_s"]) == GOAL_LIMIT]
            if not got:
                continue
            r = got[-1]
            gap = float(r["gap"]) if r["gap"] not in ("", None) else float("nan")
            ok = (r["status"] == "optimal") if b == 30 else (gap <= 0.05)
            lines.append(f"- {b} x {d}, {solver}: {r['status']}, gap {100 * gap:.3g}% in "
                         f"{float(r['solve_time_s']):.3g} s: goal ({goal}) {'met' if ok else 'NOT met'}")
    lines += ["", "Command: `python benchmarks/bench_exact.py --time-limit 30` (rows resumable; "
              "`--plot` redraws). Problems: `placement.generate(\"hybrid\", B, D, device_set=\"iot\", "
              "network=\"mesh\", seed=0)`, objective latency."]
    write_text_atomic(SUMMARY, "\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--time-limit", type=float, default=30.0, help="seconds per solve off the goal points")
    ap.add_argument("--solvers", default=",".join(SOLVERS), help="comma-separated: " + ", ".join(SOLVERS))
    ap.add_argument("--plot", action="store_true", help="only redraw plots and summary")
    args = ap.parse_args()
    if not args.plot:
        run(args.time_limit, [s for s in args.solvers.split(",") if s])
    plot()


if __name__ == "__main__":
    main()

"""Conditional execution (issue 16, SPEC section 10): plans by expected cost against the
deployments one would make by hand.

    python benchmarks/bench_scenarios.py                  # both settings, 60 s per cpsat solve
    python benchmarks/bench_scenarios.py --time-limit 20

Settings
  * Ask the Expert: ``examples/ask_the_expert.json`` (a deit_tiny generalist on a Jetson Nano,
    the camera; four deit_small experts; two edge-gpu servers holding two experts each; Wi-Fi 5;
    the router sends 60 % of inputs nowhere, 10 % to each expert).
  * Early exits: deit_tiny on the Jetson Nano and one edge-gpu, exit heads after blocks 3, 7
    (30 % and 30 % of inputs leave there), profiled here with
    ``placement profile deit_tiny_patch16_224 --exits blocks.3:0.3,blocks.7:0.3`` into
    ``benchmarks/results/early_exit_problem.json`` (kept when present).

Plans, for the latency and the energy objective: ``cpsat`` (the exact model; status and
proven bound reported) and ``heft`` / ``local`` (heuristics by expected cost), against

  * ``edge-only``: every block on the camera's device;
  * ``offload``: every block on the servers (experts two per server, first fit), but the
    pinned ones (the image's ``input`` block stays at the camera);
  * ``greedy-experts`` (Ask the Expert only): the generalist on the edge device, each expert
    whole on the server with the most free memory (the paper's deployment).

Figures are the evaluator's expectations (``latency_s``, ``energy_j``) and the worst
scenario (``latency_max_s``). Writes ``benchmarks/results/scenarios.csv``,
``scenarios.json`` and ``scenarios.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import placement  # noqa: E402
from placement.evaluator import evaluate  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def early_exit_problem() -> Path:
    out = RESULTS / "early_exit_problem.json"
    if not out.exists():
        subprocess.run([sys.executable, "-m", "placement.cli", "profile", "deit_tiny_patch16_224",
                        "--exits", "blocks.3:0.3,blocks.7:0.3", "--devices", "jetson-nano,edge-gpu",
                        "--network", "wifi5", "--no-media", "--repeats", "5", "--name", "early_exit",
                        "-o", str(out)], check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT),
                                                                   "PATH": "/usr/bin:/bin"})
    return out


def group_of(block_id: str) -> str:
    """'e3/blocks.4' -> 'e3'; a generalist or single-model block -> 'g'."""
    head = block_id.split("/", 1)[0]
    return head if "/" in block_id and head.startswith("e") and head[1:].isdigit() else "g"


def first_fit(p, groups: dict[str, list[int]], order: list[str], devices: list[int],
              a: np.ndarray) -> np.ndarray | None:
    """Place each group whole on the device (of ``devices``) with the most free memory."""
    used = p.memory_use(a) if (a >= 0).all() else None
    free = {d: p.memory_cap[d] for d in devices}
    for g in order:
        blocks = groups[g]
        need = float(p.params[blocks].sum())
        d = max(free, key=lambda d: free[d])
        if free[d] < need + float(p.activation.max()):
            return None
        a[blocks] = d
        free[d] -= need
    del used
    return a


def baselines(p) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for i, b in enumerate(p.blocks):
        groups.setdefault(group_of(b.id), []).append(i)
    edge = p.source
    servers = [d for d in range(p.n_devices) if d != edge]
    out = {"edge-only": np.full(p.n_blocks, edge, dtype=np.int64)}
    experts = sorted(g for g in groups if g != "g")
    a = np.full(p.n_blocks, -1, dtype=np.int64)
    a = first_fit(p, groups, ["g"] + experts, servers, a)
    if a is not None:
        # blocks with no group of their own (the router) run where the generalist does;
        # pinned blocks (the image's ``input`` block, at the camera) stay on their device
        for b, d in p.pinned.items():
            a[b] = d
        out["offload"] = a
    if experts:
        a = np.full(p.n_blocks, -1, dtype=np.int64)
        a[groups["g"]] = edge
        a = first_fit(p, groups, experts, servers, a)
        if a is not None:
            out["greedy-experts"] = a
    return out


def row(setting, objective, plan, ev, p, status="", bound=None, wall=None):
    return {"setting": setting, "objective": objective, "plan": plan, "status": status,
            "feasible": ev.feasible, "latency_s": ev.latency_s, "latency_max_s": ev.latency_max_s,
            "energy_j": ev.energy_j, "period_s": ev.period_s, "bound": bound, "solve_s": wall,
            "devices": {p.devices[d].id: int(np.sum(ev.assignment == d)) for d in range(p.n_devices)}}


def run(time_limit: float) -> list[dict]:
    rows = []
    settings = [("ask-the-expert", ROOT / "examples" / "ask_the_expert.json"),
                ("early-exit", early_exit_problem())]
    for setting, path in settings:
        base = placement.load(str(path))
        for objective in ("latency", "energy"):
            p = base.with_objective(objective)
            for name, a in baselines(p).items():
                rows.append(row(setting, objective, name, evaluate(p, a), p))
            for method, limit in (("heft", 10.0), ("local", 10.0), ("cpsat", time_limit)):
                t0 = time.monotonic()
                r = placement.solve(p, method=method, time_limit=limit)
                wall = time.monotonic() - t0
                a = np.array([p.device_index[r.assignment[b.id]] for b in p.blocks])
                order = [[p.block_index[b] for b in r.order.get(d.id, [])] for d in p.devices]
                ev = evaluate(p, a, order)
                rows.append(row(setting, objective, method, ev, p, r.status.value, r.bound, round(wall, 2)))
                print(f"{setting} {objective} {method}: {ev.value:.6g} ({r.status.value}, "
                      f"bound {r.bound}) {wall:.1f}s", flush=True)
    return rows


def summary(rows: list[dict]) -> list[str]:
    lines = []
    for setting in sorted({r["setting"] for r in rows}):
        for objective, metric in (("latency", "latency_s"), ("energy", "energy_j")):
            rs = {r["plan"]: r for r in rows if r["setting"] == setting and r["objective"] == objective}
            best = rs["cpsat"]
            for ref in ("edge-only", "offload", "greedy-experts"):
                if ref in rs:
                    gain = 1 - best[metric] / rs[ref][metric]
                    lines.append(f"{setting}: cpsat's {objective} plan: {metric} {best[metric]:.4g} vs "
                                 f"{ref} {rs[ref][metric]:.4g} -> {100 * gain:.1f} % less")
    return lines


def plot(rows: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = sorted({r["setting"] for r in rows})
    fig, axes = plt.subplots(len(settings), 2, figsize=(11, 3.4 * len(settings)), squeeze=False)
    for i, setting in enumerate(settings):
        for j, (objective, metric, unit) in enumerate((("latency", "latency_s", "ms"), ("energy", "energy_j", "mJ"))):
            rs = [r for r in rows if r["setting"] == setting and r["objective"] == objective]
            ax = axes[i][j]
            vals = [1e3 * r[metric] for r in rs]
            ax.barh([r["plan"] for r in rs], vals, color=["#999" if r["plan"] in ("edge-only", "offload",
                    "greedy-experts") else "#3b7" for r in rs])
            ax.set_title(f"{setting}: {objective} objective, expected {metric} ({unit})", fontsize=9)
            for k, v in enumerate(vals):
                ax.text(v, k, f" {v:.3g}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "scenarios.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0, help="cpsat's limit per solve (s)")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = run(args.time_limit)
    lines = summary(rows)
    print("\n".join(lines))
    from placement.plan import write_json_atomic, write_text_atomic
    write_json_atomic(RESULTS / "scenarios.json", {"rows": rows, "summary": lines,
                                                   "time_limit_s": args.time_limit})
    import io
    buf = io.StringIO()
    keys = [k for k in rows[0] if k != "devices"] + ["devices"]
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for r in rows:
        w.writerow({**r, "devices": json.dumps(r["devices"])})
    write_text_atomic(RESULTS / "scenarios.csv", buf.getvalue())
    plot(rows)


if __name__ == "__main__":
    main()

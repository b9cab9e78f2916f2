"""`heft` and `local` against SAGA's HEFT and CPoP, side by side, on problems inside SAGA's model.

    /work/saga-venv/bin/python benchmarks/bench_saga.py          # resumable; --fresh to restart
    /work/saga-venv/bin/python benchmarks/bench_saga.py --analyse  # tables and plots only

SAGA (``anrg-saga``, a benchmark-only peer, never a dependency) lives in its own venv with
this package installed editable beside it.

SAGA's model is speeds only, a full mesh of links, no memory, no link latency, no input or
output transfer. Our problems are mapped into it faithfully, and both sides see the same
instance: block cost = ``flops``, device speed = ``flops_per_s`` (no per-kind efficiency),
edge weight = bytes, link speed = ``bandwidth_bytes_per_s`` (symmetric); on our side memory
is unlimited, link latency 0, ``model.input_bytes`` 0 and output blocks send 0 bytes to
``sink``. SAGA's schedules are converted to plans (assignment + per-device order by start)
and scored by OUR evaluator; the row records SAGA's own makespan beside it
(``saga_*_own``), and the two must agree (``mismatch`` counts rows where they do not).

Instances: generated chains, DAGs and hybrids of 8 to 30 blocks on 3 to 8 heterogeneous
devices (iot and edge sets, mesh links), and the pathological chains (a zero-cost first
block on several slow devices and one fast one). Planning time is the method's wall time:
``solve_time_s`` of our plan, the ``schedule()`` call for SAGA (PYTHONHASHSEED is fixed so
that SAGA's set iteration order, which decides its ties, is reproducible).

Writes ``benchmarks/results/saga_comparison.csv`` (one row per instance, rewritten
atomically after each), ``saga_summary.json`` (goal checks) and ``saga_*.png``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import placement  # noqa: E402
from benchmarks._rows import read_rows, write_rows  # noqa: E402
from placement.evaluator import evaluate  # noqa: E402
from placement.plan import write_text_atomic  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
CSV = OUT / "saga_comparison.csv"
FIELDS = ["instance", "kind", "shape", "blocks", "devices", "device_set", "seed", "ccr",
          "heft", "local", "saga_heft", "saga_cpop", "saga_heft_own", "saga_cpop_own",
          "heft_variant", "best", "bound", "t_heft", "t_local", "t_saga_heft", "t_saga_cpop", "local_status"]
LOCAL_LIMIT_S = 10.0


# ------------------------------------------------------------------ instances
def to_saga_model(d: dict, ccr: float | None = None) -> dict:
    """The same problem inside SAGA's model (see the module docstring). With ``ccr``, every
    bandwidth is scaled by one factor so that the mean transfer time of an edge over the mean
    compute time of a block is ``ccr`` (the communication-to-computation ratio of SAGA's
    own benchmarks)."""
    d = copy.deepcopy(d)
    d["objective"] = "latency"
    d.pop("constraints", None)
    d.pop("pinned", None)
    d["count_idle"] = False
    m = d["model"]
    m["input_bytes"] = 0.0
    by_id = {b["id"]: b for b in m["blocks"]}
    edges = []
    for e in m["edges"]:
        src, dst = (e[0], e[1]) if isinstance(e, list) else (e["src"], e["dst"])
        nbytes = by_id[src]["output_bytes"] if isinstance(e, list) else e["bytes"]
        edges.append({"src": src, "dst": dst, "bytes": float(nbytes)})
    m["edges"] = edges
    has_succ = {e["src"] for e in edges}
    for b in m["blocks"]:
        b.pop("time_s", None)
        b.pop("allowed_devices", None)
        b.pop("split", None)
        if b["id"] not in has_succ:
            b["output_bytes"] = 0.0
    for dev in d["devices"]:
        dev["memory_bytes"] = 1e18
        dev.pop("efficiency", None)
    devs = [dev["id"] for dev in d["devices"]]
    net = d["network"]
    default = net.get("default")
    links = {}
    for ln in net.get("links", []):
        links[(ln["src"], ln["dst"])] = ln["bandwidth_bytes_per_s"]
        links[(ln["dst"], ln["src"])] = ln["bandwidth_bytes_per_s"]
    full = []
    for i, a in enumerate(devs):
        for b in devs[i + 1:]:
            bw = links.get((a, b), default["bandwidth_bytes_per_s"] if default else None)
            full.append({"src": a, "dst": b, "bandwidth_bytes_per_s": bw, "latency_s": 0.0,
                         "symmetric": True})
    if ccr is not None and edges:
        speed = np.mean([dev["flops_per_s"] for dev in d["devices"]])
        comp = np.mean([b["flops"] for b in m["blocks"]]) / speed
        comm = np.mean([e["bytes"] for e in edges]) / np.mean([ln["bandwidth_bytes_per_s"] for ln in full])
        factor = comm / (ccr * comp)
        for ln in full:
            ln["bandwidth_bytes_per_s"] = float(f"{ln['bandwidth_bytes_per_s'] * factor:.4g}")
    d["network"] = {"links": full}
    return d


def pathological_chain(n: int, slow: int, seed: int) -> dict:
    """A zero-cost first block that ties everywhere; ``slow`` 1 Gflop/s boards and one
    10 Gflop/s board; each tensor takes 2 s on a link (the trap of plain HEFT)."""
    rng = np.random.default_rng(seed)
    blocks = [{"id": "b0", "flops": 0.0, "params_bytes": 1, "activation_bytes": 1, "output_bytes": 2e7}]
    blocks += [{"id": f"b{i}", "flops": float(rng.uniform(0.5e9, 1.5e9)), "params_bytes": 1,
                "activation_bytes": 1, "output_bytes": 2e7} for i in range(1, n)]
    devices = [{"id": f"slow{i}", "type": "slow", "flops_per_s": 1e9, "memory_bytes": 1e9}
               for i in range(slow)]
    devices.append({"id": "fast", "type": "fast", "flops_per_s": 1e10, "memory_bytes": 1e9})
    return {"name": f"pathological-chain-{n}b-{slow + 1}d-s{seed}",
            "model": {"name": "chain", "input_bytes": 0.0, "blocks": blocks,
                      "edges": [[f"b{i}", f"b{i + 1}"] for i in range(n - 1)]},
            "devices": devices, "network": {"default": {"bandwidth_bytes_per_s": 1e7, "latency_s": 0.0}},
            "source": "slow0"}


def random_layered_dag(blocks: int, devices: int, ccr: float, seed: int) -> dict:
    """A SAGA-style random instance: layers of 1 to 4 tasks, each task fed by 1 to 3 tasks of
    the layer above; costs, data sizes and speeds drawn uniformly; one bandwidth scale chosen
    so that the communication-to-computation ratio is ``ccr``; links drawn per pair."""
    rng = np.random.default_rng([seed, blocks, devices, int(ccr * 100)])
    layers, i = [], 0
    while i < blocks:
        w = 1 if not layers or blocks - i == 1 else int(min(rng.integers(1, 5), blocks - i))
        layers.append(list(range(i, i + w)))
        i += w
    bl = [{"id": f"t{b}", "flops": float(f"{rng.uniform(0.2e9, 2e9):.4g}"), "params_bytes": 1.0,
           "activation_bytes": 1.0, "output_bytes": 0.0} for b in range(blocks)]
    edges = []
    for up, down in zip(layers, layers[1:]):
        for v in down:
            for u in rng.choice(up, size=min(len(up), int(rng.integers(1, 4))), replace=False):
                edges.append({"src": f"t{u}", "dst": f"t{v}", "bytes": float(f"{rng.uniform(0.2e6, 2e6):.4g}")})
        for u in up:
            if not any(e["src"] == f"t{u}" for e in edges):
                edges.append({"src": f"t{u}", "dst": f"t{int(rng.choice(down))}",
                              "bytes": float(f"{rng.uniform(0.2e6, 2e6):.4g}")})
    devs = [{"id": f"n{k}", "type": f"n{k}", "flops_per_s": float(f"{rng.uniform(1e9, 4e9):.4g}"),
             "memory_bytes": 1e18} for k in range(devices)]
    links = [{"src": f"n{a}", "dst": f"n{b}", "bandwidth_bytes_per_s": float(f"{rng.uniform(0.5e6, 1.5e6):.4g}"),
              "latency_s": 0.0} for a in range(devices) for b in range(a + 1, devices)]
    d = {"name": f"layered-{blocks}b-{devices}d-s{seed}-ccr{ccr:g}",
         "model": {"name": "layered", "input_bytes": 0.0, "blocks": bl, "edges": edges},
         "devices": devs, "network": {"links": links}}
    return to_saga_model(d, ccr)


def instances():
    for n, slow, seed in ((8, 4, 0), (12, 4, 1), (20, 2, 2), (30, 6, 3)):
        d = pathological_chain(n, slow, seed)
        yield d["name"], "pathological", "chain", n, slow + 1, "slow+fast", seed, "", to_saga_model(d)
    for ccr in (0.1, 1.0, 5.0):
        for blocks in (8, 15, 20, 30):
            for devices in (3, 5, 8):
                for seed in range(2):
                    d = random_layered_dag(blocks, devices, ccr, seed)
                    yield d["name"], "layered", "dag", blocks, devices, "random", seed, ccr, d
        for shape in ("chain", "dag", "hybrid"):
            for k, blocks in enumerate((8, 15, 20, 30)):
                for devices in (3, 5, 8):
                    dset = ("homogeneous", "iot")[(k + devices) % 2]
                    d = placement.generate(shape, blocks, devices, device_set=dset, network="mesh", seed=k)
                    yield (f"{d['name']}-ccr{ccr:g}", "generated", shape, blocks, devices, dset, k,
                           ccr, to_saga_model(d, ccr))


# ------------------------------------------------------------------ SAGA side
def saga_schedule(p, which: str):
    from saga import Network, TaskGraph
    from saga.schedulers import CpopScheduler, HeftScheduler

    tasks = [(b.id, float(b.flops)) for b in p.blocks]
    deps = [(p.blocks[int(u)].id, p.blocks[int(v)].id, float(n))
            for u, v, n in zip(p.edge_src, p.edge_dst, p.edge_bytes)]
    nodes = [(d.id, float(d.flops_per_s)) for d in p.devices]
    links = []
    for i in range(p.n_devices):
        for j in range(i + 1, p.n_devices):
            links.append((p.devices[i].id, p.devices[j].id, float(p.bandwidth[i, j])))
    import logging
    logging.disable(logging.WARNING)                # "adding super source" notes
    tg = TaskGraph.create(tasks=tasks, dependencies=deps)
    net = Network.create(nodes=nodes, edges=links)
    sched = HeftScheduler() if which == "heft" else CpopScheduler()
    t0 = time.perf_counter()
    s = sched.schedule(net, tg)
    elapsed = time.perf_counter() - t0
    a = np.zeros(p.n_blocks, dtype=np.int64)
    order: list[list[int]] = [[] for _ in range(p.n_devices)]
    for node, items in s.items():
        for task in sorted(items, key=lambda t: (t.start, t.end)):
            if task.name.startswith("__super_"):
                continue
            b = p.block_index[task.name]
            a[b] = p.device_index[node]
            order[a[b]].append(b)
    ev = evaluate(p, a, order)
    return ev.value, float(s.makespan), elapsed


# ------------------------------------------------------------------ run / analyse
def run(fresh: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    rows = [] if fresh else read_rows(CSV)
    done = {r["instance"] for r in rows}
    todo = [x for x in instances() if x[0] not in done]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn()) as bar:
        task = bar.add_task("instances", total=len(todo) + len(done), completed=len(done))
        for name, kind, shape, blocks, devices, dset, seed, ccr, d in todo:
            bar.update(task, description=name)
            p = placement.load(d)
            heft = placement.solve(p, "heft", time_limit=60)
            local = placement.solve(p, "local", time_limit=LOCAL_LIMIT_S, seed=0)
            sh, sh_own, t_sh = saga_schedule(p, "heft")
            sc, sc_own, t_sc = saga_schedule(p, "cpop")
            best = min(heft.value, local.value, sh, sc)
            rows.append({"instance": name, "kind": kind, "shape": shape, "blocks": blocks,
                         "devices": devices, "device_set": dset, "seed": seed, "ccr": ccr,
                         "heft": heft.value, "local": local.value, "saga_heft": sh, "saga_cpop": sc,
                         "saga_heft_own": sh_own, "saga_cpop_own": sc_own,
                         "heft_variant": heft.stats.get("chosen", ""), "best": best,
                         "bound": heft.bound, "t_heft": heft.solve_time_s, "t_local": local.solve_time_s,
                         "t_saga_heft": t_sh, "t_saga_cpop": t_sc, "local_status": local.status.value})
            write_rows(CSV, rows, FIELDS)
            bar.advance(task)
    analyse()


def analyse() -> None:
    rows = read_rows(CSV)
    if not rows:
        print("no rows yet")
        return
    f = lambda r, k: float(r[k])  # noqa: E731
    n = len(rows)
    heft_ok = sum(f(r, "heft") <= f(r, "saga_heft") * (1 + 1e-9) for r in rows)
    local_ok = sum(f(r, "local") <= min(f(r, "saga_heft"), f(r, "saga_cpop")) * (1 + 1e-9) for r in rows)
    mismatch = sum(abs(f(r, "saga_heft") - f(r, "saga_heft_own")) > 1e-9 * f(r, "saga_heft_own")
                   or abs(f(r, "saga_cpop") - f(r, "saga_cpop_own")) > 1e-9 * f(r, "saga_cpop_own")
                   for r in rows)
    faster = sum(f(r, "t_heft") < f(r, "t_saga_heft") for r in rows)
    mid = [r for r in rows if r["kind"] != "pathological" and 15 <= int(r["blocks"]) <= 30]
    ratio = {m: [f(r, m) / f(r, "best") for r in rows] for m in ("heft", "local", "saga_heft", "saga_cpop")}
    mid_ratio = {m: [f(r, m) / f(r, "best") for r in mid] for m in ("heft", "local", "saga_heft", "saga_cpop")}
    patho = [r for r in rows if r["kind"] == "pathological"]
    summary = {
        "instances": n,
        "heft_no_worse_than_saga_heft": f"{heft_ok}/{n} ({100 * heft_ok / n:.1f}%, goal >= 90%)",
        "heft_faster_than_saga_heft": f"{faster}/{n}",
        "median_planning_time_s": {m: float(np.median([f(r, "t_" + m) for r in rows]))
                                   for m in ("heft", "local", "saga_heft", "saga_cpop")},
        "local_no_worse_than_best_saga": f"{local_ok}/{n} (goal: all)",
        "mid_size_instances": len(mid),
        "mid_size_worst_ratio_to_best": {m: max(v) if v else None for m, v in mid_ratio.items()},
        "mid_size_mean_ratio_to_best": {m: float(np.mean(v)) if v else None for m, v in mid_ratio.items()},
        "goals_mid_size": {"local_within_3pct": bool(mid_ratio["local"] and max(mid_ratio["local"]) <= 1.03),
                           "heft_within_10pct": bool(mid_ratio["heft"] and max(mid_ratio["heft"]) <= 1.10)},
        "all_worst_ratio_to_best": {m: max(v) for m, v in ratio.items()},
        "pathological": {r["instance"]: {m: round(f(r, m) / f(r, "best"), 3)
                                         for m in ("heft", "local", "saga_heft", "saga_cpop")} for r in patho},
        "saga_schedule_scored_differently_by_our_evaluator": mismatch,
        "command": "/work/saga-venv/bin/python benchmarks/bench_saga.py",
    }
    write_text_atomic(OUT / "saga_summary.json", json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    _plots(rows, ratio)


def _plots(rows, ratio) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = ("heft", "local", "saga_heft", "saga_cpop")
    labels = {"heft": "heft (ours)", "local": "local (ours)", "saga_heft": "SAGA HEFT", "saga_cpop": "SAGA CPoP"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    data = [np.array(ratio[m]) for m in methods]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(methods) + 1), [labels[m] for m in methods])
    ax.set_yscale("log")
    ax.set_ylabel("makespan / best of the four (log)")
    ax.set_title(f"Makespan relative to the best plan ({len(rows)} instances)")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax = axes[1]
    for m, mk in zip(methods, "os^v"):
        ax.scatter([int(r["blocks"]) + (methods.index(m) - 1.5) * 0.3 for r in rows],
                   [float(r["t_" + m]) for r in rows], s=12, marker=mk, label=labels[m])
    ax.set_yscale("log")
    ax.set_xlabel("blocks")
    ax.set_ylabel("planning time (s, log)")
    ax.set_title("Planning time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "saga_comparison.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":      # SAGA breaks ties by set order: fix it
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", action="store_true", help="ignore rows already in the CSV")
    ap.add_argument("--analyse", action="store_true", help="only tabulate and plot the CSV")
    args = ap.parse_args()
    if args.analyse:
        analyse()
    else:
        run(args.fresh)

"""Shards of split blocks executed for real: predicted against measured (issue 13, runtime).

    python benchmarks/bench_runtime_shards.py               # every row, then table and plot
    python benchmarks/bench_runtime_shards.py --plot        # only redraw from runtime_shards.json
    python benchmarks/bench_runtime_shards.py -n 3 --models mobilevit_s
    python benchmarks/bench_runtime_shards.py --models mobilevit_s+auto   # opened MobileViT blocks

Problems: ``bench_runtime.problem_for`` (the committed block profile on an emulated rpi4 camera,
jetson-nano and laptop, Wi-Fi 5) with split entries from ``profiles/splits.py`` (what
``placement profile --splits auto`` writes, computed from the model's real shapes) on the
convolution blocks, 2 ways, spatial (row bands with the receptive field's halo). Attention
blocks stay whole here (the committed block profiles are uncut: mobilevit_s's are whole
MobileViT blocks, efficientformer_l1's last one a whole MetaBlock1d; their tensor-split
halves, from ``--splits auto``, are run and checked in tests/test_runtime_shards.py and
planned in bench_splits). ``ways`` is ``[2]``: every conv block
is split, so each row measures as many shards as the model has conv blocks (the runtime runs
any plan's own choice, ``Plan.split``; choosing is the methods' part of issue 13).
``mobilevit_s+auto`` is the exception (`auto_problem`): the ``--splits auto`` profile, whose
MobileViT blocks are opened, with their transformer halves split by tensor (2 ways: heads,
hidden units) and their local and fusion convs by rows, the rest whole.

Plans, both run with ``placement.run(..., emulate=True)``:
* ``shards-apart``: shard 0 of every split block on jetson-nano, shard 1 on laptop, the other
  blocks on jetson-nano: every split block scatters and gathers over a throttled link;
* ``heft``: heft on the expanded problem (it places the shards as it likes; it may keep
  both on one device).

Writes ``benchmarks/results/runtime_shards.json`` (every report, the largest block and
transfer differences of each row), ``runtime_shards.csv`` and ``runtime_shards.png``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_runtime import GOAL, contributors, problem_for  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: ``<model>+auto``: the model as ``placement profile --splits auto`` cuts it
#: (``examples/models/<model>.splits.json``), `auto_problem`
AUTO = "+auto"
MODELS = ("mobilevit_s", "efficientformer_l1", "mobilevit_s" + AUTO)
WAYS = 2


def auto_problem(model: str) -> tuple[dict, list[str]]:
    """The 3-device problem of ``<model>+auto``: its ``--splits auto`` profile (mobilevit_s:
    MobileViT blocks opened into local convs, unfold, transformer halves, fold and fusion)
    with every block of an opened MobileViT block that may be split (halves by heads and
    hidden units, local and fusion convs by rows) at 2 ways, the other blocks whole."""
    from bench_runtime import DEVICES

    base = model[: -len(AUTO)]
    p = json.loads((ROOT / "examples" / "models" / f"{base}.splits.json").read_text())
    p["devices"] = [d for d in p["devices"] if d["type"] in DEVICES]
    ids = {d["id"] for d in p["devices"]}
    net = p.get("network") or {}
    net["links"] = [lk for lk in net.get("links", []) if lk["src"] in ids and lk["dst"] in ids]
    for m in net.get("media", []):
        m["devices"] = [d for d in m["devices"] if d in ids]
    opened = tuple(p["model"]["meta"].get("open_blocks") or ())
    split = []
    for b in p["model"]["blocks"]:
        b["time_s"] = {k: v for k, v in (b.get("time_s") or {}).items() if k in ids}
        s = b.pop("split", None)
        if s and b["id"].startswith(opened) and WAYS in s["ways"]:
            b["split"] = dict(s, ways=[WAYS])
            split.append(b["id"])
    p["name"] = f"{base}-3dev-opened-shards"
    return p, split


def split_problem(model: str) -> tuple[dict, list[str]]:
    """The 3-device problem of ``model`` with spatial 2-way splits on its conv blocks."""
    import torch

    from placement.runtime.blocks import build_model
    from placement.runtime.prepare import input_shape
    from profiles.splits import split_candidates
    import placement

    prob = problem_for(model)
    m = build_model(model, 0)
    shape = input_shape(placement.load(prob), m)
    with torch.no_grad():
        cands = split_candidates(m, prob["model"], shape)
    split = []
    for b in prob["model"]["blocks"]:
        c = cands.get(b["id"])
        if c and c["mode"] == "spatial" and WAYS in c["ways"]:
            b["split"] = {k: v for k, v in c.items() if k != "meta"}
            b["split"]["ways"] = [WAYS]
            split.append(b["id"])
    prob["name"] = f"{model}-3dev-shards"
    return prob, split


def apart_plan(problem: dict):
    import dataclasses

    import placement

    p = placement.load(problem)
    devs = ("jetson-nano", "laptop")
    assignment = {b.id: devs[int(b.id.rsplit("#", 1)[1]) % 2] if b.origin else "jetson-nano" for b in p.blocks}
    for b, d in p.pinned.items():
        assignment[p.blocks[b].id] = p.devices[d].id
    return dataclasses.replace(placement.evaluate(p, {"assignment": assignment, "method": "shards-apart"}),
                               method="shards-apart")


def run_row(problem, plan, model, method, n, split) -> dict:
    import placement

    t0 = time.perf_counter()
    rep = placement.run(problem, plan.to_dict(), model.removesuffix(AUTO), inferences=n, emulate=True)
    wall = time.perf_counter() - t0
    shard_blocks = [b for b in rep.blocks if "#" in b["id"]]
    apart = sorted({b["id"].rsplit("#", 1)[0] for b in shard_blocks}
                   - {o for o in split if len({x["device"] for x in shard_blocks
                                                if x["id"].rsplit("#", 1)[0] == o}) < 2})
    return {"model": model, "method": method, "objective": plan.objective, "split_blocks": split,
            "split_blocks_apart": apart, "devices_used": sorted({b["device"] for b in rep.blocks}),
            "time_scale": rep.time_scale, "wall_s": wall, "report": rep.to_dict(),
            "shard_block_error": _sum_err(shard_blocks), "contributors": contributors(rep, 4)}


def _sum_err(blocks) -> float | None:
    pred = sum(b["predicted_s"] for b in blocks)
    meas = sum(b["measured_s"] for b in blocks if b["measured_s"] is not None)
    return abs(meas / pred - 1) if pred else None


def _line(row) -> str:
    r = row["report"]
    return (f"{row['model']:>20} {row['method']:>12}: {len(row['split_blocks'])} split blocks, "
            f"{len(row['split_blocks_apart'])} with shards on 2 devices; latency "
            f"{r['predicted']['latency_s'] * 1e3:.2f} -> {r['measured']['latency_s'] * 1e3:.2f} ms "
            f"({100 * r['error']['latency']:.1f}%), period {r['predicted']['period_s'] * 1e3:.2f} -> "
            f"{r['measured']['period_s'] * 1e3:.2f} ms ({100 * r['error']['period']:.1f}%), match "
            f"{r['output_matches']} (max abs error {r['max_abs_error']:.2g}), scale {row['time_scale']:g}, "
            f"{row['wall_s']:.0f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--inferences", type=int, default=4)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--plot", action="store_true")
    args = ap.parse_args(argv)
    out_json = RESULTS / "runtime_shards.json"
    if not args.plot:
        import placement
        from placement.plan import write_json_atomic

        models = args.models.split(",")
        # the rows of models not run this time are kept (one model can be rerun alone)
        old = json.loads(out_json.read_text()) if out_json.exists() else {"rows": []}
        rows = [r for r in old["rows"] if r["model"] not in models]
        for model in models:
            problem, split = auto_problem(model) if model.endswith(AUTO) else split_problem(model)
            heft = placement.solve(problem, "heft", time_limit=10)
            for method, plan in (("shards-apart", apart_plan(problem)), ("heft", heft)):
                row = run_row(problem, plan, model, method, args.inferences, split)
                rows.append(row)
                print(_line(row), flush=True)
        meta = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.machine(),
                "cpus": __import__("os").cpu_count(), "inferences": args.inferences, "ways": WAYS,
                "command": "python benchmarks/bench_runtime_shards.py " + " ".join(argv or sys.argv[1:])}
        write_json_atomic(out_json, {"meta": meta, "rows": rows})
    data = json.loads(out_json.read_text())
    write_table(data)
    plot(data)
    return 0


def write_table(data) -> None:
    from placement.plan import write_text_atomic

    cols = ["model", "method", "split_blocks", "split_blocks_apart", "devices_used", "predicted_latency_s",
            "measured_latency_s", "latency_error", "predicted_period_s", "measured_period_s", "period_error",
            "shard_block_error", "within_goal", "output_matches", "max_abs_error", "time_scale"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for row in data["rows"]:
        r = row["report"]
        rec = {"model": row["model"], "method": row["method"], "split_blocks": len(row["split_blocks"]),
               "split_blocks_apart": len(row["split_blocks_apart"]), "devices_used": "+".join(row["devices_used"]),
               "predicted_latency_s": r["predicted"]["latency_s"], "measured_latency_s": r["measured"]["latency_s"],
               "latency_error": r["error"]["latency"], "predicted_period_s": r["predicted"]["period_s"],
               "measured_period_s": r["measured"]["period_s"], "period_error": r["error"]["period"],
               "shard_block_error": row["shard_block_error"],
               "within_goal": r["error"]["latency"] <= GOAL and r["error"]["period"] <= GOAL,
               "output_matches": r["output_matches"], "max_abs_error": r["max_abs_error"],
               "time_scale": row["time_scale"]}
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in rec.items()})
    write_text_atomic(RESULTS / "runtime_shards.csv", buf.getvalue())


def plot(data) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = data["rows"]
    labels = [f"{r['model']}\n{r['method']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    x = np.arange(len(rows))
    for ax, key, title in ((axes[0], "latency_s", "latency of one inference (median)"),
                           (axes[1], "period_s", "period of the pipelined stream")):
        pred = [r["report"]["predicted"][key] * 1e3 for r in rows]
        meas = [r["report"]["measured"][key] * 1e3 for r in rows]
        ax.bar(x - 0.2, pred, 0.4, label="predicted (evaluator)", color="#4e79a7")
        ax.bar(x + 0.2, meas, 0.4, label="measured (placement run --emulate)", color="#f28e2b")
        for xi, p, m in zip(x, pred, meas):
            ax.text(xi + 0.2, m, f"{100 * (m / p - 1):+.1f}%", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("ms")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", linestyle=":", linewidth=0.5)
    axes[0].legend(fontsize=8)
    fig.suptitle("conv blocks split 2 ways (spatial shards) on emulated rpi4 + jetson-nano + laptop",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(RESULTS / "runtime_shards.png", dpi=130)


if __name__ == "__main__":
    sys.exit(main())

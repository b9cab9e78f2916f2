"""Where splitting a block pays (issue 13): latency with split choices vs without, per method.

Models: mobilevit_s, efficientformer_l1, deit_tiny (block granularity), with the split
candidates of ``placement profile MODEL --splits auto`` (`profiles.splits`: conv blocks by
row bands with their real halos and recomputed rows, attention blocks by heads, MLP blocks by
hidden units; the ways follow from the shapes). Device sets (catalog, `profiles/catalog`):

* ``edge+server``: rpi4 (camera: source and sink), jetson-nano, laptop, edge-gpu, over wifi5;
* ``swarm4`` / ``swarm8``: 4 / 8 Raspberry Pi 4 over wifi5 (DeepThings' and AOFL's setting);
* ``swarm4-eth``: 4 Raspberry Pi 4 over ethernet (a wired cluster, CoEdge's best case);
* Wi-Fi sets share the air (SPEC 5a, the catalog's default); ``edge+server-free`` and
  ``swarm4-free`` are the same without the shared medium (contention-free links: every
  transfer at full bandwidth at once, which shards exploit; an upper bound).

Three steps (SAGA's prepare / run / analyse):

1. **prepare** (no torch; a second): the shipped ``examples/models/<model>.splits.json``
   (made by `SPLITS_COMMAND`, ``placement profile MODEL --splits auto``: block times measured
   on this machine, transformer blocks cut into attention and MLP halves, split candidates
   marked with their real halo, recompute and gather costs, `profiles.splits`) gives the
   model section and its calibration reference; the problems of every device set are
   assembled from it (`profiles.make_problem`). Written to ``benchmarks/results/splits/*.json``.
2. **run**: ``placement.compare`` with ``splits="choose,none"``: per problem and method, a row
   with split choices (the methods that choose the ways choose them) and a row with every
   block whole, each with its solve time. Rows in ``benchmarks/results/bench_splits.csv``
   (rewritten after every row; ``--resume`` continues).
3. **analyse**: ``bench_splits.json`` (per problem: best latency with and without choices,
   the gain, the method and the ways that gave it) and ``bench_splits.png`` (latency per
   method, with vs without choices, per model and device set); after a run, two Gantt charts
   of plans that split (``bench_splits_gantt_*.png``, `GALLERY`).

Run (about 15 minutes on 2 shared cores with the default limits)::

    nice -n 10 python -m benchmarks.bench_splits               # all three steps
    python -m benchmarks.bench_splits --analyse-only           # redo the table and the figure
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"
PROBLEMS = OUT / "splits"
MODELS = {"mobilevit_s": "mobilevit_s", "efficientformer_l1": "efficientformer_l1",
          "deit_tiny": "deit_tiny_patch16_224"}
#: name -> (device types, network, shared medium). On Wi-Fi every device shares the air
#: (SPEC 5a: one transfer at a time); the ``-free`` sets drop the medium, so that links carry
#: transfers concurrently at full bandwidth: the contention-free model, where the many small
#: transfers between shards all overlap (an upper bound on what splitting can gain).
DEVICE_SETS = {
    "edge+server": (["rpi4", "jetson-nano", "laptop", "edge-gpu"], "wifi5", True),
    "edge+server-free": (["rpi4", "jetson-nano", "laptop", "edge-gpu"], "wifi5", False),
    "swarm4": (["rpi4"] * 4, "wifi5", True),
    "swarm4-free": (["rpi4"] * 4, "wifi5", False),
    "swarm8": (["rpi4"] * 8, "wifi5", True),
    "swarm4-eth": (["rpi4"] * 4, "ethernet", False),
}
METHODS = ("single", "dp", "heft", "local", "cpsat", "milp")
#: how the shipped ``examples/models/<model>.splits.json`` were made (measured block times
#: on this machine, calibrated to the catalog; split candidates with their real costs)
SPLITS_COMMAND = ("placement profile {model} --splits auto --devices rpi4,jetson-nano,laptop,edge-gpu "
                  "-o examples/models/{model}.splits.json")
#: seconds per solve (cpsat: with split choices its model grows with the ways)
TIME_LIMITS = {"single": 10.0, "dp": 20.0, "heft": 30.0, "local": 20.0, "cpsat": 60.0, "milp": 30.0}


def prepare(models=MODELS, device_sets=DEVICE_SETS) -> list[Path]:
    """Problem files with split candidates for every model and device set, from the shipped
    ``examples/models/<model>.splits.json`` (`SPLITS_COMMAND`: profiled with ``--splits
    auto``, so transformer blocks come as attention and MLP halves). No torch needed."""
    import profiles

    PROBLEMS.mkdir(parents=True, exist_ok=True)
    files = []
    for short, name in models.items():
        example = json.loads((ROOT / "examples" / "models" / f"{name}.splits.json").read_text())
        section = example["model"]
        reference = example["meta"]["calibration"]["reference"]
        n_split = sum(1 for b in section["blocks"] if b.get("split"))
        print(f"{short}: {n_split} of {len(section['blocks'])} blocks may be split", file=sys.stderr)
        for set_name, (types, network, media) in device_sets.items():
            problem = profiles.make_problem(section, types, network, reference=reference,
                                            name=f"{short}@{set_name}", media=media)
            problem.setdefault("meta", {})["bench_splits"] = {
                "model": name, "device_set": set_name, "devices": types, "network": network,
                "shared_medium": bool(problem["network"].get("media")),
                "from": f"examples/models/{name}.splits.json ({SPLITS_COMMAND.format(model=name)})"}
            f = PROBLEMS / f"{short}@{set_name}.json"
            f.write_text(json.dumps(problem, indent=1) + "\n")
            files.append(f)
    return files


def run(files, methods=METHODS, resume: bool = True, time_scale: float = 1.0) -> list[dict]:
    """`placement.compare` with and without split choices; rows in bench_splits.csv."""
    import placement
    limits = {m: TIME_LIMITS.get(m, 30.0) * time_scale for m in methods}
    out = OUT / "bench_splits.csv"
    return placement.compare([str(f) for f in files], ",".join(methods), time_limits=limits,
                             time_limit=30.0 * time_scale, splits="choose,none", results=out,
                             resume=resume, progress=sys.stderr.isatty())


def analyse(rows=None) -> dict:
    """Best latency with and without choices per problem; the JSON summary and the figure."""
    from placement.comparator import ResultsFile
    if rows is None:
        rows = ResultsFile(OUT / "bench_splits.csv").read()
    ok = [r for r in rows if r["status"] in ("optimal", "feasible", "time_limit") and r["value"] is not None]
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    summary = {}
    for name in problems:
        mine = [r for r in ok if r["problem"] == name]
        best = {mode: min((r for r in mine if r["splits"] == mode), key=lambda r: r["value"], default=None)
                for mode in ("choose", "none")}
        if not best["choose"] or not best["none"]:
            continue
        c, n = best["choose"], best["none"]
        # the proof over every choice: the best bound any method reports with choices
        bound = max((r["bound"] for r in mine if r["splits"] == "choose" and r["bound"] is not None),
                    default=None)
        gap = None if bound is None else max(0.0, (c["value"] - bound) / c["value"])
        proven_by = [r["method"] for r in mine if r["splits"] == "choose" and r["status"] == "optimal"
                     and r["value"] <= c["value"] * (1 + 1e-9)]
        summary[name] = {
            "latency_with_choices_s": c["value"], "method_with": c["method"], "ways": c["split_ways"],
            "bound_over_choices_s": bound, "gap_over_choices": gap, "proven_by": proven_by,
            "latency_whole_s": n["value"], "method_whole": n["method"],
            "gain": n["value"] / c["value"],
            "blocks_split": sum(1 for x in (c["split_ways"] or "").split() if not x.endswith(":1")),
            "per_method": {r["method"]: {"with_s": r["value"], "solve_s": r["solve_time_s"],
                                         "status": r["status"],
                                         "gain_vs_whole": r["gain_vs_whole"], "ways": r["split_ways"]}
                           for r in mine if r["splits"] == "choose"},
            "per_method_whole": {r["method"]: {"whole_s": r["value"], "solve_s": r["solve_time_s"],
                                               "status": r["status"]}
                                 for r in mine if r["splits"] == "none"},
        }
    from placement.plan import write_json_atomic
    write_json_atomic(OUT / "bench_splits.json", {
        "command": "python -m benchmarks.bench_splits", "time_limits_s": TIME_LIMITS,
        "problems": summary})
    _figure(rows, OUT / "bench_splits.png")
    return summary


def _figure(rows, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    problems = list(dict.fromkeys(r["problem"] for r in rows))
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    cols = 3
    n_rows = math.ceil(len(problems) / cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(5.2 * cols, 3.2 * n_rows), squeeze=False)
    for ax, name in zip(axes.flat, problems):
        x = np.arange(len(methods))
        for j, (mode, colour, label) in enumerate((("none", "#bab0ac", "every block whole"),
                                                   ("choose", "#4e79a7", "split choices"))):
            vals = []
            for m in methods:
                r = next((r for r in rows if r["problem"] == name and r["method"] == m
                          and r["splits"] == mode), None)
                ok = r is not None and r["status"] in ("optimal", "feasible", "time_limit") and r["value"]
                vals.append(r["value"] * 1e3 if ok else np.nan)
            ax.bar(x + (j - 0.5) * 0.38, vals, 0.38, color=colour, label=label)
            for xi, v in zip(x, vals):
                if np.isnan(v) and j == 0:        # e.g. dp refuses a shared medium
                    ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=7, color="#777777")
        best_whole = min((r["value"] for r in rows if r["problem"] == name and r["splits"] == "none"
                          and r["value"]), default=None)
        best_with = min((r["value"] for r in rows if r["problem"] == name and r["splits"] == "choose"
                         and r["value"]), default=None)
        if best_whole and best_with:
            ax.text(0.99, 0.97, f"best: x{best_whole / best_with:.2f}", transform=ax.transAxes,
                    ha="right", va="top", fontsize=8)
        ax.set_xticks(x, methods, fontsize=8)
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylabel("latency (ms)", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(problems):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, frameon=False)
    fig.suptitle("latency with split choices vs every block whole (lower is better; n/a: the method "
                 "refuses a shared medium); python -m benchmarks.bench_splits", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    from placement.plan import atomic_output
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


#: (problem, method) drawn by `gallery` (a plan that splits, as `placement show` draws it)
GALLERY = (("mobilevit_s@swarm4-eth", "heft"), ("deit_tiny@swarm4", "local"))


def gallery(time_scale: float = 1.0) -> list[Path]:
    """Gantt charts of plans that split (shards hatched, ``<block>#<k>/<ways>``)."""
    import placement
    out = []
    for name, method in GALLERY:
        f = PROBLEMS / f"{name}.json"
        if not f.exists():
            continue
        plan = placement.solve(str(f), method, time_limit=TIME_LIMITS[method] * time_scale)
        stem = OUT / f"bench_splits_gantt_{name.replace('@', '_at_').replace('+', '_')}"
        plan.save(f"{stem}.plan.json")
        placement.show(str(f), plan, f"{stem}.png", hide_idle=True)
        out.append(Path(f"{stem}.png"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--analyse-only", action="store_true", help="only rebuild the JSON and the figure")
    ap.add_argument("--no-prepare", action="store_true", help="use the problems in benchmarks/results/splits")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--sets", default=",".join(DEVICE_SETS))
    ap.add_argument("--time-scale", type=float, default=1.0, help="multiply every time limit")
    ap.add_argument("--fresh", action="store_true", help="start a new results file")
    args = ap.parse_args(argv)
    models = {k: MODELS[k] for k in args.models.split(",")}
    sets = {k: DEVICE_SETS[k] for k in args.sets.split(",")}
    if not args.analyse_only:
        if args.no_prepare:
            files = [PROBLEMS / f"{m}@{s}.json" for m in models for s in sets]
        else:
            files = prepare(models, sets)
        if args.fresh and (OUT / "bench_splits.csv").exists():
            (OUT / "bench_splits.csv").unlink()
        run(files, tuple(args.methods.split(",")), resume=True, time_scale=args.time_scale)
        gallery(args.time_scale)
    summary = analyse()
    for name, s in summary.items():
        gap = "n/a" if s["gap_over_choices"] is None else f"{s['gap_over_choices']:.1%}"
        print(f"{name:28s} whole {s['latency_whole_s'] * 1e3:8.2f} ms ({s['method_whole']}) -> "
              f"with choices {s['latency_with_choices_s'] * 1e3:8.2f} ms ({s['method_with']}): "
              f"x{s['gain']:.2f}, {s['blocks_split']} blocks split; gap to the bound over every "
              f"choice {gap}, proven by {','.join(s['proven_by']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

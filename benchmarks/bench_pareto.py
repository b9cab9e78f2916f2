"""Exact Pareto fronts at scale: time to the complete exact front, and how good the heuristic
front is (its hypervolume as a share of the exact front's).

    python benchmarks/bench_pareto.py            # run (resumable: rows already there are kept)
    python benchmarks/bench_pareto.py --fresh    # re-measure everything
    python benchmarks/bench_pareto.py --plot     # only redraw the figures and the summary

Cases:

* every real-model example ``examples/models/*.block.json`` (11-21 blocks, 6 devices), over
  latency-energy and latency-throughput;
* generated hybrid (CNN + ViT) models, ``placement.generate("hybrid", B, 4, device_set="iot",
  network="mesh", seed=0)`` for B = 30, 100, 300 (120 to 1,200 blocks x devices), and
  B = 10, 20 (whose latency-throughput fronts are rich and complete within the limit, so
  that the heuristic's hypervolume ratio is measured against a true front), same two pairs
  of objectives;
* one three-objective front (``mobilevit_s.block``, latency-throughput-energy).

For each case: ``placement.pareto(..., regime="exact")`` with a total limit of ``EXACT_LIMIT``
seconds (``LONG_CASES``: 300 s for the 30-block latency-throughput front, to see how long
the complete front really takes) (whether the front is complete, the time it took, points, proven points, solves), then
``regime="heuristic"`` with ``HEUR_LIMIT`` seconds (anchors from every heuristic, then
NSGA-II). Both fronts are measured in the same normalised box (`placement.pareto_quality`):
that of the exact front when it is complete, else that of the union of both fronts, so the
ratio ``hv_ratio = HV(heuristic) / HV(exact)`` is a like-for-like figure; it is a share of the
true front only where the exact front is complete (``exact_complete`` true).

Rows: ``benchmarks/results/pareto_bench.csv``; summary: ``pareto_summary.md``; figures:
``pareto_bench.png`` (time to the complete front and HV ratio per case) and
``pareto_bench_front.pdf``/``.png`` (one front: exact points against the heuristic front).
The whole run takes about 13-15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._rows import read_rows, write_rows  # noqa: E402
from placement.plan import write_json_atomic, write_text_atomic  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ROWS = RESULTS / "pareto_bench.csv"
SUMMARY = RESULTS / "pareto_summary.md"
FRONT_CASE = "hybrid-b30-d4 latency,throughput"
EXACT_LIMIT = 60.0
HEUR_LIMIT = 15.0
PAIRS = ("latency,energy", "latency,throughput")
BLOCKS = (30, 100, 300)
#: smaller generated problems whose latency-throughput fronts are rich and complete in time
SMALL_BLOCKS = (10, 20)
#: cases given a longer exact limit: how long the complete front really takes
LONG_CASES = {"hybrid-b30-d4 latency,throughput": 300.0}
COLUMNS = ["case", "problem", "blocks", "devices", "objectives", "exact_limit_s", "exact_complete", "exact_time_s",
           "exact_points", "exact_proven", "exact_solves", "exact_hv", "heur_time_s", "heur_points",
           "heur_hv", "hv_ratio", "box", "exact_method", "completeness"]


def cases() -> list[tuple[str, object, str]]:
    import placement
    out = []
    for f in sorted((ROOT / "examples" / "models").glob("*.block.json")):
        for o in PAIRS:
            out.append((f"{f.name.removesuffix('.json')} {o}", str(f), o))
    for b in SMALL_BLOCKS + BLOCKS:
        d = placement.generate("hybrid", b, 4, device_set="iot", network="mesh", seed=0,
                               name=f"hybrid-b{b}-d4")
        for o in PAIRS:
            out.append((f"hybrid-b{b}-d4 {o}", d, o))
    out.append(("mobilevit_s.block latency,throughput,energy",
                str(ROOT / "examples" / "models" / "mobilevit_s.block.json"), "latency,throughput,energy"))
    return out


def measure(name: str, problem, objectives: str) -> tuple[dict, dict, dict]:
    import placement
    from placement.pareto_quality import hypervolume, reference_box

    t0 = time.monotonic()
    limit = LONG_CASES.get(name, EXACT_LIMIT)
    exact = placement.pareto(problem, objectives, regime="exact", time_limit=limit, check=False)
    exact_s = time.monotonic() - t0
    t0 = time.monotonic()
    heur = placement.pareto(problem, objectives, regime="heuristic", time_limit=HEUR_LIMIT)
    heur_s = time.monotonic() - t0
    mets = exact["metrics"]
    ev = [[p[m] for m in mets] for p in exact["points"]]
    hv_ = [[p[m] for m in mets] for p in heur["points"]]
    box = "exact front" if exact["complete"] else "union of both fronts"
    ideal, ref = reference_box(ev if exact["complete"] else ev + hv_)
    e_hv, h_hv = hypervolume(ev, ideal, ref), hypervolume(hv_, ideal, ref)
    p = placement.load(problem)
    row = {"case": name, "problem": p.name, "blocks": p.n_blocks, "devices": p.n_devices,
           "objectives": objectives, "exact_limit_s": limit, "exact_complete": exact["complete"], "exact_time_s": round(exact_s, 2),
           "exact_points": len(exact["points"]), "exact_proven": sum(q["proven"] for q in exact["points"]),
           "exact_solves": exact["solves"], "exact_hv": round(e_hv, 5), "heur_time_s": round(heur_s, 2),
           "heur_points": len(heur["points"]), "heur_hv": round(h_hv, 5),
           "hv_ratio": round(h_hv / e_hv, 4) if e_hv > 0 else "", "box": box,
           "exact_method": exact["exact_method"], "completeness": exact["completeness"]}
    return row, exact, heur


def plot(rows: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["objectives"] in PAIRS]
    labels = [r["case"].replace(" latency,", "\n").replace(".block", "") for r in rows]
    x = range(len(rows))
    with plt.rc_context({"font.size": 7, "xtick.labelsize": 5.5, "ytick.labelsize": 6.5}):
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(7.2, 4.6), sharex=True)
        for i, r in zip(x, rows):
            done = str(r["exact_complete"]) == "True"
            a1.bar(i, float(r["exact_time_s"]), color="black" if done else "white", edgecolor="black",
                   hatch="" if done else "///", linewidth=0.6)
            if r["hv_ratio"] not in ("", None):
                ratio = float(r["hv_ratio"])
                a2.bar(i, min(ratio, 1.05), color="#555555" if done else "white", edgecolor="black",
                       hatch="" if done else "///", linewidth=0.6)
                if ratio > 1.05:   # the heuristic front beats an incomplete exact one: say by how much
                    a2.text(i, 0.5, f"{ratio:.2f}", rotation=90, ha="center", va="center", fontsize=6,
                            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
        a1.axhline(EXACT_LIMIT, color="#c0392b", linewidth=0.6, linestyle="--")
        a1.set_ylabel("exact front: time (s)\n(hatched: not complete\nby the limit)")
        a2.set_ylabel("HV heuristic / exact\n(hatched: exact front\nincomplete)")
        a2.set_ylim(0, 1.05)
        a2.set_xticks(list(x), labels, rotation=90)
        for a in (a1, a2):
            a.grid(axis="y", linestyle=":", linewidth=0.4)
        fig.tight_layout(pad=0.4)
        for ext in ("png",):
            out = RESULTS / f"pareto_bench.{ext}"
            fig.savefig(out, dpi=200, bbox_inches="tight")
        plt.close(fig)


def summary(rows: list[dict], meta: dict) -> None:
    lines = ["# Pareto fronts: time to the complete exact front, HV of the heuristic front", "",
             f"Command: `python benchmarks/bench_pareto.py` (exact limit {EXACT_LIMIT:g} s, heuristic "
             f"limit {HEUR_LIMIT:g} s, total per front). Machine: {meta.get('machine', '')}.", "",
             "| case | blocks x devices | exact limit (s) | complete | exact time (s) | points (proven) | "
             "HV exact | HV heuristic | ratio | box |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['blocks']} x {r['devices']} | {r['exact_limit_s']} | "
                     f"{r['exact_complete']} | "
                     f"{r['exact_time_s']} | {r['exact_points']} ({r['exact_proven']}) | {r['exact_hv']} | "
                     f"{r['heur_hv']} | {r['hv_ratio']} | {r['box']} |")
    write_text_atomic(SUMMARY, "\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fresh", action="store_true", help="re-measure every case")
    ap.add_argument("--plot", action="store_true", help="only redraw the figures and the summary")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = [] if args.fresh else read_rows(ROWS)
    meta = {"machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
            "exact_limit_s": EXACT_LIMIT, "heuristic_limit_s": HEUR_LIMIT}
    if not args.plot:
        done = {r["case"] for r in rows}
        for name, problem, objectives in cases():
            if name in done:
                continue
            print(f"{name} ...", flush=True)
            row, exact, heur = measure(name, problem, objectives)
            print(f"  complete {row['exact_complete']} in {row['exact_time_s']} s, {row['exact_points']} "
                  f"points, HV ratio {row['hv_ratio']}", flush=True)
            rows.append(row)
            write_rows(ROWS, rows, COLUMNS)
            if name == FRONT_CASE:
                from placement.pareto_front import plot_front
                exact = dict(exact)
                exact["heuristic"] = {"front": [{k: v for k, v in p.items() if k != "plan"}
                                                for p in heur["points"]]}
                write_json_atomic(RESULTS / "pareto_bench_front.json",
                                  {k: v for k, v in exact.items() if k != "points"} |
                                  {"points": [{k: v for k, v in p.items() if k != "plan"}
                                              for p in exact["points"]]})
                for ext in ("pdf", "png"):
                    plot_front(exact, RESULTS / f"pareto_bench_front.{ext}", dpi=200)
    plot(rows)
    summary(rows, meta)
    print(f"wrote {ROWS}, {SUMMARY}, {RESULTS / 'pareto_bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``placement show``: pictures of a plan.

Two panels in one figure (``-o plan.png`` or ``.svg``; ``--no-dag`` keeps the Gantt only):

- **Gantt chart** of the schedule: one row per device (every device of the problem, so an
  idle one is visible), one bar per block from its start to its end, coloured by the
  block's ``kind`` (legend); block ids are written in the bars wide enough to hold them.
  Every edge between two devices is an arrow from the producer's end (on its row) to the
  moment the data has arrived (producer end + transfer time, on the consumer's row); the
  model's input is an arrow from ``source`` at t = 0 to each input block's device (a
  marker when it is already there), and each output is an arrow to ``sink`` ending when it
  is delivered. A dashed line marks the latency. Title: method, objective value, latency.
- **Block graph** (DAG) laid out by topological depth (left to right), nodes coloured by
  device, edges that cross devices drawn in red.

``.html`` writes a self-contained page (the figure as inline SVG, then the schedule as a
table): no script, no network.

The schedule comes from the evaluator: the plan is re-scored with `placement.evaluate`
before drawing (a plan file with only an ``assignment`` is drawn with the list rule's order).
Every drawn element has an SVG id (``block:<id>``, ``transfer:<u>--<v>``, ``input:<id>``,
``output:<id>``), so a test or a script can count them; `show` returns the counts.
"""

from __future__ import annotations

import argparse
import html
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

#: fixed colours for the kinds the profiler and generator use; others get the next free one.
KIND_COLOURS = {"conv": "#4e79a7", "attention": "#e15759", "mlp": "#f28e2b", "norm": "#76b7b2",
                "pool": "#59a14f", "embed": "#edc948", "head": "#b07aa1", "other": "#9c9c9c",
                "shard": "#ff9da7", "linear": "#9c755f"}
_EXTRA = ["#bab0ac", "#86bcb6", "#d37295", "#fabfd2", "#b6992d", "#499894", "#8cd17d", "#f1ce63"]
#: label a bar with its block id when the bar is at least this many points wide per character.
_POINTS_PER_CHAR = 5.5


def _kind_colours(kinds: list[str]) -> dict[str, str]:
    out, extra = {}, iter(_EXTRA * 10)
    for k in sorted(set(kinds)):
        out[k] = KIND_COLOURS.get(k) or next(extra)
    return out


def _device_colours(n: int) -> list:
    import matplotlib
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _rescored(problem: Any, plan: Any):
    """(Problem, Plan re-scored by the evaluator) for a problem and a plan (objects, dicts or paths)."""
    from . import api
    from .loader import load
    from .plan import Plan

    p = load(problem)
    if isinstance(plan, (str, os.PathLike)):
        plan = Plan.load(plan)
    elif not isinstance(plan, Plan):
        plan = Plan.from_dict(plan)
    objective = plan.objective if plan.objective else None
    if isinstance(objective, str) and objective not in ("latency", "throughput", "energy"):
        objective = None
    p = p.with_objective(objective)
    return p, api.evaluate(p, plan)


def show(problem: Any, plan: Any, output: str | os.PathLike[str], *, dag: bool = True,
         title: str | None = None, dpi: int = 120) -> dict[str, Any]:
    """Draw ``plan`` on ``problem`` to ``output`` (.png, .svg or .html; see the module doc).

    ``problem``/``plan``: objects, dicts or file paths. Returns what was drawn:
    ``{"files": [...], "bars": blocks drawn, "transfers": cross-device edge arrows, "inputs":
    input arrows or markers, "outputs": output arrows or markers, "dag_nodes", "dag_edges",
    "dag_cross_edges", "devices": rows}``. Raises `InputError` for an unknown extension.
    """
    out = Path(output)
    ext = out.suffix.lower()
    if ext not in (".png", ".svg", ".html", ".htm"):
        raise InputError(f"-o {output}: expected a file ending in .png, .svg or .html, found "
                         f"'{ext or 'no extension'}'")
    p, scored = _rescored(problem, plan)
    import matplotlib
    matplotlib.use("Agg", force=False)
    fig, info = _figure(p, scored, dag=dag, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if ext in (".png", ".svg"):
            _save_atomic(fig, out, ext[1:], dpi)
        else:
            buf = io.StringIO()
            fig.savefig(buf, format="svg", bbox_inches="tight")
            from .plan import write_text_atomic
            write_text_atomic(out, _html_page(p, scored, _strip_xml_header(buf.getvalue())))
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)
    info["files"] = [str(out)]
    return info


def _save_atomic(fig, out: Path, fmt: str, dpi: int) -> None:
    import tempfile
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=f".{fmt}", dir=out.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _strip_xml_header(svg: str) -> str:
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _figure(p, plan, *, dag: bool, title: str | None):
    import matplotlib.pyplot as plt
    D = p.n_devices
    h_gantt = min(2.0 + 0.45 * D, 18.0)
    widest = max(np.bincount([int(x) for x, _ in dag_layout(p).values()]).max(initial=1), 1) if p.n_blocks else 1
    h_dag = min(2.2 + 0.3 * widest, 8.0) if dag else 0.0
    width = 14.0
    if dag:
        fig, (ax_g, ax_d) = plt.subplots(2, 1, figsize=(width, h_gantt + h_dag),
                                         gridspec_kw={"height_ratios": [h_gantt, h_dag]})
    else:
        fig, ax_g = plt.subplots(1, 1, figsize=(width, h_gantt))
        ax_d = None
    info = _gantt(ax_g, p, plan, width_pt=width * 72 * 0.85)
    if ax_d is not None:
        info.update(_dag(ax_d, p, plan))
    m = plan.metrics
    obj = plan.objective if isinstance(plan.objective, str) else "weighted"
    value = "" if obj == "latency" else f"{obj} = {plan.value:.4g} · "   # latency is shown next
    head = title or (f"{p.name} · {plan.method or 'plan'} · {value}"
                     f"status {plan.status.value} · latency {m.get('latency_s', math.nan):.4g} s · period "
                     f"{m.get('period_s', math.nan):.4g} s · energy {m.get('energy_j', math.nan):.4g} J")
    if plan.violations:
        head += f"\nINFEASIBLE: {plan.violations[0]}"
    ax_g.set_title(head, fontsize=10, loc="left", color="black" if not plan.violations else "red")
    fig.tight_layout()
    return fig, info


def _gantt(ax, p, plan, width_pt: float, arrivals: dict[tuple[str, str], float] | None = None) -> dict[str, Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, Patch

    blocks = [b.id for b in p.blocks]
    a = np.array([p.device_index[plan.assignment[b]] for b in blocks], dtype=np.int64)
    start = np.array([plan.schedule[b]["start_s"] for b in blocks], dtype=float)
    end = np.array([plan.schedule[b]["end_s"] for b in blocks], dtype=float)
    latency = float(plan.metrics.get("latency_s", float(end.max(initial=0.0))))
    horizon = latency if math.isfinite(latency) and latency > 0 else float(end.max(initial=1.0)) or 1.0
    colours = _kind_colours([b.kind for b in p.blocks])
    bar_h = 0.56

    n_bars = 0
    # a block of microseconds on a fast server would vanish: draw every bar at least ~1.5
    # points wide (the true times are in the schedule, the HTML table and the plan file)
    min_w = 1.5 / max(width_pt, 1.0) * horizon
    for i, b in enumerate(p.blocks):
        y = a[i]
        (bar,) = ax.barh(y, max(end[i] - start[i], min_w), left=start[i], height=bar_h,
                         color=colours[b.kind], edgecolor="black", linewidth=0.4, zorder=3)
        bar.set_gid(f"block:{b.id}")
        n_bars += 1
        if (end[i] - start[i]) / horizon * width_pt >= _POINTS_PER_CHAR * len(b.id) + 2:
            ax.text((start[i] + end[i]) / 2, y, b.id, ha="center", va="center", fontsize=7,
                    color="white" if b.kind in ("conv", "attention", "head") else "black", zorder=4,
                    clip_on=True)

    def arrow(x0, y0, x1, y1, gid, colour, style="-"):
        dy = 0.0 if y0 == y1 else (bar_h / 2 if y1 > y0 else -bar_h / 2)
        patch = FancyArrowPatch((x0, y0 + dy), (x1, y1 - dy), arrowstyle="-|>", mutation_scale=8,
                                color=colour, linewidth=0.8, linestyle=style, alpha=0.8, zorder=5,
                                shrinkA=0, shrinkB=0)
        patch.set_gid(gid)
        ax.add_patch(patch)

    n_tr = 0
    for k in range(p.n_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        if a[u] == a[v]:
            continue
        arrival = end[u] + p.transfer_time(float(p.edge_bytes[k]), int(a[u]), int(a[v]))
        if arrivals is not None:
            arrival = arrivals.get((blocks[u], blocks[v]), arrival)
        arrow(end[u], a[u], arrival, a[v], f"transfer:{blocks[u]}--{blocks[v]}", "#333333")
        n_tr += 1
    n_in = n_out = 0
    src, snk = p.source, p.sink
    for b in p.input_blocks:
        if a[b] != src:
            arrival = float(p.input_arrival(b)[a[b]])
            if arrivals is not None:
                arrival = arrivals.get(("input", blocks[b]), arrival)
            arrow(0.0, src, arrival, a[b], f"input:{blocks[b]}", "#2ca02c", "--")
        else:
            mk = ax.plot([0.0], [src], marker=">", color="#2ca02c", markersize=7, zorder=6,
                         clip_on=False)[0]
            mk.set_gid(f"input:{blocks[b]}")
        n_in += 1
    for b in p.output_blocks:
        delivered = end[b] + float(p.output_delivery(b)[a[b]])
        if arrivals is not None:
            delivered = arrivals.get((blocks[b], "output"), delivered)
        if a[b] != snk:
            arrow(end[b], a[b], delivered, snk, f"output:{blocks[b]}", "#d62728", "--")
        else:
            mk = ax.plot([end[b]], [snk], marker="s", color="#d62728", markersize=5, zorder=6)[0]
            mk.set_gid(f"output:{blocks[b]}")
        n_out += 1
    if math.isfinite(latency):
        ax.axvline(latency, color="#d62728", linestyle=":", linewidth=1.0, zorder=2)
    ax.set_yticks(range(p.n_devices))
    labels = []
    for i, d in enumerate(p.devices):
        tag = " (source)" if i == src and i == snk else (" (source)" if i == src else (" (sink)" if i == snk else ""))
        shown = d.type and d.type != d.id and not d.id.startswith(d.type)
        labels.append(f"{d.id} [{d.type}]{tag}" if shown else f"{d.id}{tag}")
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(p.n_devices - 0.5, -0.5)
    ax.set_xlim(-0.01 * horizon, horizon * 1.04)
    ax.set_xlabel("time (s)")
    ax.grid(axis="x", linestyle=":", linewidth=0.5, zorder=0)
    handles = [Patch(facecolor=c, edgecolor="black", linewidth=0.4, label=k) for k, c in colours.items()]
    handles += [Line2D([], [], color="#333333", marker=">", markersize=5, label="transfer (arrival)"),
                Line2D([], [], color="#2ca02c", linestyle="--", label="input from source"),
                Line2D([], [], color="#d62728", linestyle="--", label="output to sink"),
                Line2D([], [], color="#d62728", linestyle=":", label="latency")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)
    return {"bars": n_bars, "transfers": n_tr, "inputs": n_in, "outputs": n_out,
            "devices": p.n_devices}


def dag_layout(p) -> dict[int, tuple[float, float]]:
    """Block index -> (x, y): x is the longest path from an input block (topological depth),
    y spreads the blocks of one depth evenly around 0."""
    depth = np.zeros(p.n_blocks, dtype=np.int64)
    for b in p.topo:
        for u, _ in p.preds[b]:
            depth[b] = max(depth[b], depth[u] + 1)
    pos: dict[int, tuple[float, float]] = {}
    layers: dict[int, list[int]] = {}
    for b in p.topo:
        layers.setdefault(int(depth[b]), []).append(b)
    for x, members in layers.items():
        n = len(members)
        for j, b in enumerate(members):
            pos[b] = (float(x), (n - 1) / 2.0 - j)
    return pos


def _dag(ax, p, plan) -> dict[str, Any]:
    import networkx as nx
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    g = nx.DiGraph()
    g.add_nodes_from(range(p.n_blocks))
    g.add_edges_from((int(u), int(v)) for u, v in zip(p.edge_src, p.edge_dst))
    pos = dag_layout(p)
    a = np.array([p.device_index[plan.assignment[b.id]] for b in p.blocks], dtype=np.int64)
    cols = _device_colours(p.n_devices)
    n_cross = 0
    if g.number_of_edges() <= 800:
        # one arrow per edge; an edge that skips layers (or stays in one) bends, so it is
        # not hidden behind the straight edges of a chain
        from matplotlib.patches import FancyArrowPatch
        for u, v in g.edges:
            crossing = a[u] != a[v]
            n_cross += crossing
            (x0, y0), (x1, y1) = pos[u], pos[v]
            rad = 0.0 if (x1 - x0 == 1 or y0 != y1) else -0.25
            patch = FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=6,
                                    connectionstyle=f"arc3,rad={rad}", shrinkA=4, shrinkB=4,
                                    color="#d62728" if crossing else "#999999",
                                    linewidth=1.1 if crossing else 0.6, zorder=2 if crossing else 1)
            patch.set_gid(f"dag-edge:{p.blocks[u].id}--{p.blocks[v].id}")
            ax.add_patch(patch)
    else:
        same = [(pos[u], pos[v]) for u, v in g.edges if a[u] == a[v]]
        cross = [(pos[u], pos[v]) for u, v in g.edges if a[u] != a[v]]
        n_cross = len(cross)
        for segs, colour, lw, gid in ((same, "#999999", 0.5, "dag-edges-same"),
                                      (cross, "#d62728", 0.9, "dag-edges-cross")):
            if segs:
                lc = LineCollection(segs, colors=colour, linewidths=lw, zorder=1)
                lc.set_gid(gid)
                ax.add_collection(lc)
    size = 160 if p.n_blocks <= 40 else (40 if p.n_blocks <= 300 else 8)
    handles = []
    for d in range(p.n_devices):
        members = [b for b in range(p.n_blocks) if a[b] == d]
        if not members:
            continue
        xy = np.array([pos[b] for b in members])
        sc = ax.scatter(xy[:, 0], xy[:, 1], s=size, color=cols[d], edgecolors="black",
                        linewidths=0.4, zorder=3)
        sc.set_gid(f"dag-nodes:{p.devices[d].id}")
        handles.append(Line2D([], [], marker="o", linestyle="", color=cols[d], markeredgecolor="black",
                              label=p.devices[d].id))
    if p.n_blocks <= 40:
        for b in range(p.n_blocks):
            ax.annotate(p.blocks[b].id, pos[b], textcoords="offset points", xytext=(0, 8),
                        ha="center", fontsize=7, zorder=4)
    handles.append(Line2D([], [], color="#d62728", label="edge across devices"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7,
              frameon=False, title="device", title_fontsize=8)
    ax.autoscale_view()
    xs = [x for x, _ in pos.values()] or [0.0]
    ys = [y for _, y in pos.values()] or [0.0]
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.set_xlabel("topological depth")
    ax.set_yticks([])
    ax.set_title(f"block graph: {p.n_blocks} blocks, {p.n_edges} edges, {n_cross} across devices",
                 fontsize=9, loc="left")
    for s in ("top", "right", "left"):
        ax.spines[s].set_visible(False)
    return {"dag_nodes": p.n_blocks, "dag_edges": p.n_edges, "dag_cross_edges": int(n_cross)}


def _html_page(p, plan, svg: str) -> str:
    m = plan.metrics
    rows = []
    for b in p.blocks:
        s = plan.schedule[b.id]
        rows.append(f"<tr><td>{html.escape(b.id)}</td><td>{html.escape(b.kind)}</td>"
                    f"<td>{html.escape(s['device'])}</td><td>{s['start_s']:.6g}</td>"
                    f"<td>{s['end_s']:.6g}</td></tr>")
    facts = (f"method <b>{html.escape(str(plan.method))}</b> · status {plan.status.value} · "
             f"value {plan.value:.6g} · latency {m.get('latency_s', math.nan):.6g} s · period "
             f"{m.get('period_s', math.nan):.6g} s · energy {m.get('energy_j', math.nan):.6g} J")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(p.name)}: plan</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} td:first-child{{text-align:left}}
svg{{max-width:100%;height:auto}}</style></head>
<body><h1>{html.escape(p.name)}</h1><p>{facts}</p>
{svg}
<h2>Schedule (from the evaluator)</h2>
<table><tr><th>block</th><th>kind</th><th>device</th><th>start s</th><th>end s</th></tr>
{''.join(rows)}
</table></body></html>
"""


# ------------------------------------------------------------------------------- CLI
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("problem", help="problem file (JSON)")
    p.add_argument("plan", help="plan file (JSON; only 'assignment' is required)")
    p.add_argument("-o", "--output", required=True,
                   help="picture to write: .png or .svg (Gantt above, block graph below) or .html "
                   "(self-contained page)")
    p.add_argument("--no-dag", action="store_true", help="draw the Gantt chart only")
    p.add_argument("--title", help="title instead of the default (method, value, latency)")
    p.add_argument("--measured", metavar="TRACE.json",
                   help="a trace of 'placement run --trace': draw the predicted Gantt chart above the "
                        "measured one (same time axis) instead of the block graph")


def run(args: argparse.Namespace) -> int:
    from .cli import EXIT_OK
    if getattr(args, "measured", None):
        info = show_measured(args.problem, args.plan, args.measured, args.output, title=args.title)
        print(f"wrote {args.output}: predicted and measured schedules of {info['bars']} blocks on "
              f"{info['devices']} devices")
        return EXIT_OK
    info = show(args.problem, args.plan, args.output, dag=not args.no_dag, title=args.title)
    print(f"wrote {args.output}: {info['bars']} blocks on {info['devices']} devices, "
          f"{info['transfers']} transfers between devices")
    return EXIT_OK


def show_measured(problem: Any, plan: Any, trace: Any, output: str | os.PathLike[str], *,
                  title: str | None = None, dpi: int = 120) -> dict[str, Any]:
    """Two Gantt charts on one time axis: the evaluator's schedule of ``plan`` above, the
    schedule measured by ``placement run`` below (``trace``: the file ``--trace`` wrote, or
    its dict: the median single inference, in the problem's seconds). Writes .png or .svg."""
    import json

    from .plan import Plan

    out = Path(output)
    ext = out.suffix.lower()
    if ext not in (".png", ".svg"):
        raise InputError(f"-o {output}: expected a file ending in .png or .svg with --measured, found "
                         f"'{ext or 'no extension'}'")
    if isinstance(trace, (str, os.PathLike)):
        try:
            trace = json.loads(Path(trace).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"--measured {trace}: expected a trace written by 'placement run --trace' ({exc})") from None
    if not isinstance(trace, dict) or not isinstance(trace.get("schedule"), dict):
        raise InputError("--measured: expected a trace with a 'schedule' (written by 'placement run --trace')")
    p, scored = _rescored(problem, plan)
    missing = [b.id for b in p.blocks if b.id not in trace["schedule"]]
    if missing:
        raise InputError(f"--measured: the trace has no measured times for blocks {missing[:5]} (another plan?)")
    arrivals: dict[tuple[str, str], float] = {}
    for t in trace.get("transfers") or []:
        if t.get("arrival_s") is None:
            continue
        src = "input" if t["producer"] == "@source" else t["producer"]
        for c in t.get("consumers") or []:
            arrivals[(src, "output" if c == "@output" else c)] = float(t["arrival_s"])
    ends = [float(v["end_s"]) for v in trace["schedule"].values()] + list(arrivals.values())
    measured_latency = float(trace.get("latency_s") or max(ends, default=0.0))
    measured = Plan(problem=scored.problem, method=scored.method, objective=scored.objective,
                    status=scored.status, value=scored.value, bound=scored.bound,
                    solve_time_s=scored.solve_time_s, assignment=scored.assignment, order=scored.order,
                    schedule={b: dict(v) for b, v in trace["schedule"].items()},
                    metrics={**scored.metrics, "latency_s": measured_latency})
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    D = p.n_devices
    h = min(2.0 + 0.45 * D, 18.0)
    fig, (ax_p, ax_m) = plt.subplots(2, 1, figsize=(14.0, 2 * h), sharex=True)
    info = _gantt(ax_p, p, scored, width_pt=14.0 * 72 * 0.85)
    _gantt(ax_m, p, measured, width_pt=14.0 * 72 * 0.85, arrivals=arrivals)
    horizon = max(float(scored.metrics.get("latency_s") or 0.0), measured_latency, max(ends, default=0.0))
    ax_m.set_xlim(-0.01 * horizon, horizon * 1.04)
    emu = trace.get("emulation", "")
    scale = trace.get("time_scale", 1.0)
    ax_p.set_title(title or f"{p.name} · {scored.method or 'plan'} · predicted by the evaluator: latency "
                   f"{scored.metrics.get('latency_s', math.nan):.4g} s", fontsize=10, loc="left")
    ax_m.set_title(f"measured by placement run ({'emulated, ' + emu + ' links, time scale ' + format(scale, 'g') if emu and emu != 'none' else 'host speed'}): "
                   f"median single inference, latency {measured_latency:.4g} s", fontsize=10, loc="left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        _save_atomic(fig, out, ext[1:], dpi)
    finally:
        plt.close(fig)
    info["files"] = [str(out)]
    return info

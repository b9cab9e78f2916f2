"""``placement show``: pictures of a plan.

Two panels in one figure (``-o plan.png``, ``.svg`` or ``.pdf``; ``--no-dag`` keeps the Gantt
only; ``--hide-idle`` drops the rows of devices that run nothing):

- **Gantt chart** of the schedule: one row per device (every device of the problem, so an
  idle one is visible, unless ``--hide-idle``), the time axis in ms below a second, one bar per block from its start to its end, coloured by the
  block's ``kind`` (legend); block ids are written in the bars wide enough to hold them.
  Every edge between two devices is an arrow from the producer's end (on its row) to the
  moment the data has arrived (producer end + transfer time, on the consumer's row); the
  model's input is an arrow from ``source`` at t = 0 to each input block's device (a
  marker when it is already there), and each output is an arrow to ``sink`` ending when it
  is delivered. A dashed line marks the latency. Title: method, objective value, latency.
  Split blocks (SPEC section 6): the plan's ``split`` picks the expansion drawn; a shard's
  bar is hatched and labelled ``<block>#<k>/<ways>``, and the title says which blocks were
  split how many ways (the HTML schedule has a ``shard`` column: ``k of w``).
- **Block graph** (DAG) laid out by topological depth (left to right), nodes coloured by
  device, edges that cross devices drawn in red. Devices have their own palette (square
  markers), apart from the block kinds' colours of the Gantt chart, so that no colour means two
  things.

``.html`` writes a self-contained page: the figure as inline SVG with a tooltip on every block
and transfer, then tables of the schedule, the transfers and each device's memory; one header,
no script, no network.

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


#: devices' colours: none of them is a block kind's colour (Tableau 10 above), so the block
#: graph (by device) and the Gantt chart (by kind) never share a meaning for one colour.
DEVICE_COLOURS = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#5254a3", "#8ca252",
                  "#bd9e39", "#ad494a", "#a55194", "#6b6ecf", "#b5cf6b", "#e7ba52", "#d6616b",
                  "#ce6dbd", "#9c9ede", "#cedb9c", "#e7cb94", "#e7969c", "#de9ed6"]


def _device_colours(n: int) -> list:
    return [DEVICE_COLOURS[i % len(DEVICE_COLOURS)] for i in range(n)]


def time_axis(horizon_s: float) -> tuple[float, str]:
    """(factor, unit) for a time axis that ends at ``horizon_s``: ms below a second, else s."""
    from .report import time_unit
    return time_unit(horizon_s)


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
    scored = api.evaluate(p, plan)
    return _expanded(p, scored), scored


def _expanded(p, plan):
    """The expansion of ``p`` that ``plan`` names (SPEC section 6: its ``split``), whose blocks
    are the plan's assignment and schedule; ``p`` itself without split blocks."""
    split = getattr(plan, "split", None)
    if split and hasattr(p, "expand"):
        return p.expand(dict(split))
    return p


def shard_info(p) -> dict[int, tuple[int, int]]:
    """Block index -> (shard k, ways w) for every shard of a split block in ``p`` (SPEC
    section 6: ``<id>#<k>``); blocks kept whole are not in it."""
    ways: dict[str, int] = {}
    for b in p.blocks:
        if b.origin is not None:
            ways[b.origin] = ways.get(b.origin, 0) + 1
    out = {}
    for i, b in enumerate(p.blocks):
        if b.origin is not None:
            k = b.id.rsplit("#", 1)[-1]
            out[i] = (int(k) if k.isdigit() else 0, ways[b.origin])
    return out


def split_summary(p, plan) -> str:
    """``"split: a x4, b x2, c whole"`` for a plan of a problem with split blocks, else ""."""
    split = getattr(plan, "split", None)
    if not split:
        return ""
    cut = [f"{b} x{w}" for b, w in split.items() if w > 1]
    whole = [b for b, w in split.items() if w <= 1]
    if len(cut) > 4:              # many: count the blocks per degree
        per: dict[int, int] = {}
        for w in split.values():
            if w > 1:
                per[w] = per.get(w, 0) + 1
        cut = [f"{n} block{'s' if n > 1 else ''} x{w}" for w, n in sorted(per.items())]
    parts = cut + ([f"{len(whole)} whole" if len(whole) > 3 else ", ".join(whole) + " whole"]
                   if whole else [])
    return "split: " + ", ".join(parts)


#: picture formats by extension
FORMATS = (".png", ".svg", ".pdf", ".html", ".htm")


def _scenario_view(p, scored, scenario: str):
    """(reduced problem, its re-scored plan) of one scenario (SPEC section 10): the plan's
    assignment and orders restricted to the blocks that run in it."""
    names = [sc.name for sc in p.scenarios]
    if scenario not in names:
        from .errors import did_you_mean
        hint = did_you_mean(scenario, names) if names else None
        raise InputError(f"--scenario: expected one of the problem's scenarios ({', '.join(names) or 'it has none'}), "
                         f"found '{scenario}'" + (f" ({hint})" if hint else ""))
    q, _keep = p.scenario_problem(names.index(scenario))
    runs = set(q.block_index)
    plan = {"assignment": {b: d for b, d in scored.assignment.items() if b in runs},
            "order": {d: [b for b in o if b in runs] for d, o in (scored.order or {}).items()},
            "method": f"{scored.method or 'plan'} [{scenario}]", "objective": scored.objective}
    return _rescored(q, plan)


def show(problem: Any, plan: Any, output: str | os.PathLike[str], *, dag: bool = True,
         title: str | None = None, dpi: int = 120, hide_idle: bool = False,
         scenario: str | None = None) -> dict[str, Any]:
    """Draw ``plan`` on ``problem`` to ``output`` (.png, .svg, .pdf or .html; see the module doc).

    ``problem``/``plan``: objects, dicts or file paths. Returns what was drawn:
    ``{"files": [...], "bars": blocks drawn, "transfers": cross-device edge arrows, "inputs":
    input arrows or markers, "outputs": output arrows or markers, "dag_nodes", "dag_edges",
    "dag_cross_edges", "devices": rows drawn, "devices_used": devices that run a block}``.
    ``hide_idle`` drops the rows of devices that run nothing (source and sink stay). Raises
    `InputError` for an unknown extension or a path that cannot be written.
    """
    from .plan import check_output_path
    out = Path(output)
    ext = out.suffix.lower()
    if ext not in FORMATS:
        raise InputError(f"-o {output}: expected a file ending in .png, .svg, .pdf or .html, found "
                         f"'{ext or 'no extension'}'")
    check_output_path(out, what="picture")
    p, scored = _rescored(problem, plan)
    if scenario is not None:          # SPEC 10: that scenario's schedule under the same plan
        p, scored = _scenario_view(p, scored, scenario)
    import matplotlib
    matplotlib.use("Agg", force=False)
    page = ext in (".html", ".htm")
    fig, info = _figure(p, scored, dag=dag, title=title, hide_idle=hide_idle, page=page)
    try:
        if not page:
            _save_atomic(fig, out, ext[1:], dpi)
        else:
            buf = io.StringIO()
            fig.savefig(buf, format="svg", bbox_inches="tight")
            from .plan import write_text_atomic
            svg = _with_tooltips(p, scored, _strip_xml_header(buf.getvalue()))
            write_text_atomic(out, _html_page(p, scored, svg))
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)
    info["files"] = [str(out)]
    return info


def _save_atomic(fig, out: Path, fmt: str, dpi: int) -> None:
    from .plan import atomic_output
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")


def _strip_xml_header(svg: str) -> str:
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _rows(p, plan, hide_idle: bool) -> list[int]:
    """The devices drawn as Gantt rows, in problem order: all, or those that run a block plus
    source and sink."""
    if not hide_idle:
        return list(range(p.n_devices))
    used = {p.device_index[d] for d in plan.assignment.values()} | {p.source, p.sink}
    return [d for d in range(p.n_devices) if d in used]


def _figure(p, plan, *, dag: bool, title: str | None, hide_idle: bool = False, page: bool = False):
    import matplotlib.pyplot as plt
    rows = _rows(p, plan, hide_idle)
    D = len(rows)
    h_gantt = min(2.0 + 0.45 * (D + len(getattr(p, "media", ()))), 18.0)
    widest = max(np.bincount([int(x) for x, _ in dag_layout(p).values()]).max(initial=1), 1) if p.n_blocks else 1
    h_dag = min(2.2 + 0.3 * widest, 8.0) if dag else 0.0
    width = 14.0
    if dag:
        fig, (ax_g, ax_d) = plt.subplots(2, 1, figsize=(width, h_gantt + h_dag),
                                         gridspec_kw={"height_ratios": [h_gantt, h_dag]})
    else:
        fig, ax_g = plt.subplots(1, 1, figsize=(width, h_gantt))
        ax_d = None
    info = _gantt(ax_g, p, plan, width_pt=width * 72 * 0.85, rows=rows)
    if ax_d is not None:
        info.update(_dag(ax_d, p, plan))
    m = plan.metrics
    obj = plan.objective if isinstance(plan.objective, str) else "weighted"
    value = "" if obj == "latency" else f"{obj} = {plan.value:.4g} · "   # latency is shown next
    head = title or (f"{p.name} · {plan.method or 'plan'} · {value}"
                     f"status {plan.status.value} · latency {m.get('latency_s', math.nan):.4g} s · period "
                     f"{m.get('period_s', math.nan):.4g} s · energy {m.get('energy_j', math.nan):.4g} J")
    split = split_summary(p, plan)
    if split and not title:
        head += f"\n{split} (hatched bars: shards, labelled <block>#<k>/<ways>)"
    if plan.violations:
        head += f"\nINFEASIBLE: {plan.violations[0]}"
    if not page or title:  # the HTML page has its own header with these facts
        ax_g.set_title(head, fontsize=10, loc="left", color="black" if not plan.violations else "red")
    fig.tight_layout()
    return fig, info


def _gantt(ax, p, plan, width_pt: float, rows: list[int] | None = None,
           arrivals: dict[tuple[str, str], float] | None = None) -> dict[str, Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, Patch
    from matplotlib.ticker import FuncFormatter

    rows = list(range(p.n_devices)) if rows is None else rows
    row_of = np.full(p.n_devices, -1, dtype=np.int64)
    row_of[rows] = np.arange(len(rows))
    blocks = [b.id for b in p.blocks]
    dev = np.array([p.device_index[plan.assignment[b]] for b in blocks], dtype=np.int64)
    a = row_of[dev]  # the Gantt row of each block
    start = np.array([plan.schedule[b]["start_s"] for b in blocks], dtype=float)
    end = np.array([plan.schedule[b]["end_s"] for b in blocks], dtype=float)
    latency = float(plan.metrics.get("latency_s", float(end.max(initial=0.0))))
    horizon = latency if math.isfinite(latency) and latency > 0 else float(end.max(initial=1.0)) or 1.0
    colours = _kind_colours([b.kind for b in p.blocks])
    bar_h = 0.56
    # shared media (SPEC 5a): one more row per medium with its transfers; arrows arrive when
    # the plan's transfer schedule says (a transfer on a medium may wait for the air)
    medium_tr = [t for t in (getattr(plan, "transfers", None) or []) if t.get("start_s") is not None]
    media_ids = [m for m, _ in getattr(p, "media", ())]
    on_air = {(t["src"], t["dst"]): t["arrival_s"] for t in medium_tr if t.get("arrival_s") is not None}
    if on_air:
        arrivals = {**on_air, **(arrivals or {})}

    n_bars = 0
    # a block of microseconds on a fast server would vanish: draw every bar at least ~1.5
    # points wide (the true times are in the schedule, the HTML table and the plan file)
    min_w = 1.5 / max(width_pt, 1.0) * horizon
    shards = shard_info(p)          # SPEC 6: shards are hatched and labelled <id>/<ways>
    for i, b in enumerate(p.blocks):
        y = a[i]
        (bar,) = ax.barh(y, max(end[i] - start[i], min_w), left=start[i], height=bar_h,
                         color=colours[b.kind], edgecolor="black", linewidth=0.4, zorder=3,
                         hatch="////" if i in shards else None)
        bar.set_gid(f"block:{b.id}")
        n_bars += 1
        label = f"{b.id}/{shards[i][1]}" if i in shards else b.id
        if (end[i] - start[i]) / horizon * width_pt >= _POINTS_PER_CHAR * len(label) + 2:
            light = b.kind in ("conv", "attention", "head") and i not in shards
            ax.text((start[i] + end[i]) / 2, y, label, ha="center", va="center", fontsize=7,
                    color="white" if light else "black", zorder=4, clip_on=True,
                    bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=0.6)
                    if i in shards else None)

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
        if dev[u] == dev[v]:
            continue
        arrival = end[u] + p.transfer_time(float(p.edge_bytes[k]), int(dev[u]), int(dev[v]))
        if arrivals is not None:
            arrival = arrivals.get((blocks[u], blocks[v]), arrival)
        arrow(end[u], a[u], arrival, a[v], f"transfer:{blocks[u]}--{blocks[v]}", "#333333")
        n_tr += 1
    n_in = n_out = 0
    src, snk = int(row_of[p.source]), int(row_of[p.sink])
    for b in p.input_blocks:
        if dev[b] != p.source:
            arrival = float(p.input_arrival(b)[dev[b]])
            if arrivals is not None:
                arrival = arrivals.get(("input", blocks[b]), arrival)
            arrow(0.0, src, arrival, a[b], f"input:{blocks[b]}", "#2ca02c", "--")
        else:
            mk = ax.plot([0.0], [src], marker=">", color="#2ca02c", markersize=7, zorder=6,
                         clip_on=False)[0]
            mk.set_gid(f"input:{blocks[b]}")
        n_in += 1
    for b in p.output_blocks:
        delivered = end[b] + float(p.output_delivery(b)[dev[b]])
        if arrivals is not None:
            delivered = arrivals.get((blocks[b], "output"), delivered)
        if dev[b] != p.sink:
            arrow(end[b], a[b], delivered, snk, f"output:{blocks[b]}", "#d62728", "--")
        else:
            mk = ax.plot([end[b]], [snk], marker="s", color="#d62728", markersize=5, zorder=6)[0]
            mk.set_gid(f"output:{blocks[b]}")
        n_out += 1
    n_air = 0
    for t in medium_tr:
        if t["medium"] not in media_ids:
            continue
        y = len(rows) + media_ids.index(t["medium"])
        s0, s1 = float(t["start_s"]), float(t["end_s"])
        (bar,) = ax.barh(y, max(s1 - s0, min_w), left=s0, height=bar_h * 0.8, color="#9ecae1",
                         edgecolor="#08519c", linewidth=0.4, zorder=3)
        bar.set_gid(f"medium:{t['medium']}:{t['src']}--{t['dst']}")
        label = f"{t['src']}→{t['dst']}"
        if (s1 - s0) / horizon * width_pt >= _POINTS_PER_CHAR * len(label) + 2:
            ax.text((s0 + s1) / 2, y, label, ha="center", va="center", fontsize=6, zorder=4, clip_on=True)
        n_air += 1
    if math.isfinite(latency):
        ax.axvline(latency, color="#d62728", linestyle=":", linewidth=1.0, zorder=2)
    ax.set_yticks(range(len(rows) + len(media_ids)))
    labels = []
    for i in rows:
        d = p.devices[i]
        tag = " (source, sink)" if i == p.source == p.sink else (
            " (source)" if i == p.source else (" (sink)" if i == p.sink else ""))
        shown = d.type and d.type != d.id and not d.id.startswith(d.type)
        labels.append(f"{d.id} [{d.type}]{tag}" if shown else f"{d.id}{tag}")
    labels += [f"medium {m}" for m in media_ids]
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(len(rows) + len(media_ids) - 0.5, -0.5)
    ax.set_xlim(-0.01 * horizon, horizon * 1.04)
    factor, unit = time_axis(horizon)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x * factor:g}"))
    ax.set_xlabel(f"time ({unit})")
    ax.grid(axis="x", linestyle=":", linewidth=0.5, zorder=0)
    handles = [Patch(facecolor=c, edgecolor="black", linewidth=0.4, label=k) for k, c in colours.items()]
    handles += [Line2D([], [], color="#333333", marker=">", markersize=5, label="transfer (arrival)"),
                Line2D([], [], color="#2ca02c", linestyle="--", label="input from source"),
                Line2D([], [], color="#d62728", linestyle="--", label="output to sink"),
                Line2D([], [], color="#d62728", linestyle=":", label="latency")]
    if media_ids:
        handles.append(Patch(facecolor="#9ecae1", edgecolor="#08519c", linewidth=0.4,
                             label="on the air (medium)"))
    if shards:
        handles.append(Patch(facecolor="white", edgecolor="black", linewidth=0.4, hatch="////",
                             label="shard <block>#<k>/<ways>"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)
    return {"bars": n_bars, "transfers": n_tr, "inputs": n_in, "outputs": n_out,
            "devices": len(rows), "devices_used": len(set(dev.tolist())),
            "media": len(media_ids), "medium_transfers": n_air, "shards": len(shards)}


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
                        linewidths=0.4, zorder=3, marker="s")
        sc.set_gid(f"dag-nodes:{p.devices[d].id}")
        handles.append(Line2D([], [], marker="s", linestyle="", color=cols[d], markeredgecolor="black",
                              label=p.devices[d].id))
    if p.n_blocks <= 40:
        shards = shard_info(p)
        for b in range(p.n_blocks):
            label = p.blocks[b].id + (f"/{shards[b][1]}" if b in shards else "")
            ax.annotate(label, pos[b], textcoords="offset points", xytext=(0, 8),
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


def _transfers(p, plan) -> list[dict[str, Any]]:
    """Every transfer between devices, with its bytes, start (producer's end) and arrival."""
    a = {b.id: p.device_index[plan.assignment[b.id]] for b in p.blocks}
    out = []
    for k in range(p.n_edges):
        u, v = p.blocks[int(p.edge_src[k])].id, p.blocks[int(p.edge_dst[k])].id
        if a[u] == a[v]:
            continue
        t0 = plan.schedule[u]["end_s"]
        n = float(p.edge_bytes[k])
        out.append({"id": f"transfer:{u}--{v}", "src": u, "dst": v, "from": p.devices[a[u]].id,
                    "to": p.devices[a[v]].id, "bytes": n, "start_s": t0,
                    "arrival_s": t0 + p.transfer_time(n, a[u], a[v])})
    return out


def _with_tooltips(p, plan, svg: str) -> str:
    """Add an SVG ``<title>`` (a browser's tooltip) to every block bar and transfer arrow."""
    import re
    from .report import fmt_bytes
    tips: dict[str, str] = {}
    for b in p.blocks:
        s = plan.schedule[b.id]
        tips[f"block:{b.id}"] = (f"{b.id} ({b.kind}) on {s['device']}: {s['start_s'] * 1e3:.4g} to "
                                 f"{s['end_s'] * 1e3:.4g} ms ({(s['end_s'] - s['start_s']) * 1e3:.4g} ms)")
    for t in _transfers(p, plan):
        tips[t["id"]] = (f"{t['src']} -> {t['dst']}: {fmt_bytes(t['bytes'])} from {t['from']} to {t['to']}, "
                         f"{t['start_s'] * 1e3:.4g} to {t['arrival_s'] * 1e3:.4g} ms")

    def add(m: "re.Match[str]") -> str:
        tip = tips.get(html.unescape(m.group(2)))
        return m.group(0) + (f"<title>{html.escape(tip)}</title>" if tip else "")
    return re.sub(r'(<g id="([^"]+)"[^>]*>)', add, svg)


def _html_page(p, plan, svg: str) -> str:
    from .report import describe_objective, fmt_bytes
    m = plan.metrics
    rows = []
    shards = shard_info(p)
    for i, b in enumerate(p.blocks):
        s = plan.schedule[b.id]
        shard = f"{shards[i][0]} of {shards[i][1]}" if i in shards else ""
        rows.append(f"<tr><td>{html.escape(b.id)}</td><td>{shard}</td><td>{html.escape(b.kind)}</td>"
                    f"<td>{html.escape(s['device'])}</td><td>{s['start_s'] * 1e3:.6g}</td>"
                    f"<td>{s['end_s'] * 1e3:.6g}</td><td>{(s['end_s'] - s['start_s']) * 1e3:.6g}</td></tr>")
    transfers = [f"<tr><td>{html.escape(t['src'])}</td><td>{html.escape(t['dst'])}</td>"
                 f"<td>{html.escape(t['from'])}</td><td>{html.escape(t['to'])}</td>"
                 f"<td>{fmt_bytes(t['bytes'])}</td><td>{t['start_s'] * 1e3:.6g}</td>"
                 f"<td>{t['arrival_s'] * 1e3:.6g}</td></tr>" for t in _transfers(p, plan)]
    memory = [f"<tr><td>{html.escape(d.id)}</td><td>{html.escape(d.type or '')}</td>"
              f"<td>{fmt_bytes(m.get('memory_bytes', {}).get(d.id, 0.0))}</td>"
              f"<td>{fmt_bytes(d.memory_bytes)}</td></tr>"
              for d in p.devices if d.id in m.get("memory_bytes", {})]
    value = "-" if plan.value is None else f"{plan.value:.6g}"
    facts = (f"method <b>{html.escape(str(plan.method or '(plan file)'))}</b> · objective "
             f"{html.escape(describe_objective(plan.objective))} · status {plan.status.value} · "
             f"value {value} · latency {m.get('latency_s', math.nan):.6g} s · period "
             f"{m.get('period_s', math.nan):.6g} s · energy {m.get('energy_j', math.nan):.6g} J")
    if split_summary(p, plan):
        facts += "<br>" + html.escape(split_summary(p, plan))
    if plan.violations:
        facts += "<br><b>infeasible</b>: " + html.escape(plan.violations[0])
    none = "<tr><td colspan=7>none: every block's input is on its device</td></tr>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(p.name)}: plan</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:12px;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} td:first-child,th:first-child{{text-align:left}}
svg{{max-width:100%;height:auto}}</style></head>
<body><h1>{html.escape(p.name)}</h1><p>{facts}</p>
<p>Hover over a block or a transfer for its times.</p>
{svg}
<h2>Schedule (from the evaluator)</h2>
<table><tr><th>block</th><th>shard</th><th>kind</th><th>device</th><th>start ms</th><th>end ms</th><th>duration ms</th></tr>
{''.join(rows)}
</table>
<h2>Transfers between devices</h2>
<table><tr><th>from block</th><th>to block</th><th>from device</th><th>to device</th><th>bytes</th><th>start ms</th><th>arrival ms</th></tr>
{''.join(transfers) or none}
</table>
<h2>Memory</h2>
<table><tr><th>device</th><th>type</th><th>used</th><th>capacity</th></tr>
{''.join(memory)}
</table></body></html>
"""


# ------------------------------------------------------------------------------- CLI
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("problem", help="problem file (JSON)")
    p.add_argument("plan", help="plan file (JSON; only 'assignment' is required)")
    p.add_argument("-o", "--output", required=True,
                   help="picture to write: .png, .svg or .pdf (Gantt above, block graph below) or "
                   ".html (self-contained page with tooltips and tables)")
    p.add_argument("--no-dag", action="store_true", help="draw the Gantt chart only")
    p.add_argument("--hide-idle", action="store_true",
                   help="leave out the rows of devices that run no block (source and sink stay)")
    p.add_argument("--dpi", type=int, default=120, help="resolution of a .png (default 120)")
    p.add_argument("--title", help="title instead of the default (method, value, latency)")
    p.add_argument("--scenario", metavar="NAME",
                   help="draw this scenario's schedule (SPEC section 10: the plan restricted to the "
                        "blocks that run in it)")
    p.add_argument("--measured", metavar="TRACE.json",
                   help="a trace of 'placement run --trace': draw the predicted Gantt chart above the "
                        "measured one (same time axis) instead of the block graph")


def run(args: argparse.Namespace) -> int:
    from .cli import EXIT_OK
    from .report import plural
    if getattr(args, "measured", None):
        info = show_measured(args.problem, args.plan, args.measured, args.output, title=args.title,
                             dpi=args.dpi)
        print(f"wrote {args.output}: predicted and measured schedules of {plural(info['bars'], 'block')} "
              f"on {plural(info['devices'], 'device')}")
        return EXIT_OK
    info = show(args.problem, args.plan, args.output, dag=not args.no_dag, title=args.title,
                dpi=args.dpi, hide_idle=args.hide_idle, scenario=getattr(args, "scenario", None))
    print(f"wrote {args.output}: {plural(info['bars'], 'block')} on "
          f"{plural(info['devices_used'], 'device')} (of {info['devices']} drawn), "
          f"{plural(info['transfers'], 'transfer')} between devices")
    return EXIT_OK


def show_measured(problem: Any, plan: Any, trace: Any, output: str | os.PathLike[str], *,
                  title: str | None = None, dpi: int = 120) -> dict[str, Any]:
    """Two Gantt charts on one time axis: the evaluator's schedule of ``plan`` above, the
    schedule measured by ``placement run`` below (``trace``: the file ``--trace`` wrote, or
    its dict: the median single inference, in the problem's seconds). Writes .png, .svg or .pdf."""
    import json

    from .plan import Plan

    out = Path(output)
    ext = out.suffix.lower()
    if ext not in (".png", ".svg", ".pdf"):
        raise InputError(f"-o {output}: expected a file ending in .png, .svg or .pdf with --measured, found "
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

"""The Pareto figure, at print size (one column for two metrics, a page width for three).

Proven points (every lexicographic stage solved to proven optimality) are filled black
circles joined by the front's staircase; points found but not proven (a solve stopped at its
limit, or a heuristic found them) are open triangles; in the exact regime the heuristic
front (built apart, for the hypervolume ratio) is drawn in grey crosses on top. Time axes are in ms below 1 s, energy in mJ
below 0.1 J; throughput is drawn as inferences per second (higher is better).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import InputError

FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
#: figure widths in inches: one column (two metrics), a full page width (three).
WIDTH_ONE = 3.5
WIDTH_THREE = 7.2


def _axis(metric: str, values: list[float]) -> tuple[str, float, str]:
    """(key of the point dict, scale, label) for a metric's axis."""
    if metric == "period_s":
        return "throughput_per_s", 1.0, "throughput (1/s, higher is better)"
    big = max(values) if values else 1.0
    if metric == "latency_s":
        return ("latency_s", 1e3, "latency (ms)") if big < 1.0 else ("latency_s", 1.0, "latency (s)")
    return ("energy_j", 1e3, "energy per inference (mJ)") if big < 0.1 else \
        ("energy_j", 1.0, "energy per inference (J)")


def plot_front(front: dict[str, Any], output: str | os.PathLike[str], dpi: int = 300) -> dict[str, Any]:
    """Draw a front (the dict `placement.pareto` returns) to a PNG, PDF or SVG file, written
    atomically. Returns ``{"files", "points", "proven", "panels"}``."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(output)
    if out.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError(f"--plot {output}: expected a .png, .pdf or .svg file")
    metrics = front["metrics"]
    pts = front["points"]
    # the heuristic front is drawn apart only where it was built apart: in the exact regime
    heur = ((front.get("heuristic") or {}).get("front") or []) if front.get("regime") == "exact" else []
    pairs = [(0, 1)] if len(metrics) == 2 else [(0, 1), (0, 2), (1, 2)]
    width = WIDTH_ONE if len(pairs) == 1 else WIDTH_THREE
    rc = {"font.size": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
          "legend.fontsize": 6.5, "axes.titlesize": 8, "lines.linewidth": 0.8}
    with plt.rc_context(rc):
        fig, axes = plt.subplots(1, len(pairs), figsize=(width, 2.6 if len(pairs) == 1 else 2.5),
                                 squeeze=False)
        for ax, (i, j) in zip(axes[0], pairs):
            kx, sx, lx = _axis(metrics[i], [p[metrics[i]] for p in pts])
            ky, sy, ly = _axis(metrics[j], [p[metrics[j]] for p in pts])
            if heur:
                ax.scatter([h[kx] * sx for h in heur], [h[ky] * sy for h in heur], marker="x", s=14,
                           color="#888888", linewidths=0.6, label="heuristic front", zorder=6)
            if len(metrics) == 2 and pts:
                s = sorted(pts, key=lambda p: p[kx] * (1 if kx != "throughput_per_s" else -1))
                ax.step([p[kx] * sx for p in s], [p[ky] * sy for p in s],
                        where="post" if kx != "throughput_per_s" else "pre",
                        color="#444444", linewidth=0.7, zorder=3)
            proven = [p for p in pts if p.get("proven")]
            found = [p for p in pts if not p.get("proven")]
            if proven:
                ax.scatter([p[kx] * sx for p in proven], [p[ky] * sy for p in proven], marker="o", s=16,
                           color="black", label="proven", zorder=4)
            if found:
                ax.scatter([p[kx] * sx for p in found], [p[ky] * sy for p in found], marker="^", s=18,
                           facecolors="white", edgecolors="#c0392b", linewidths=0.8,
                           label="found (not proven)", zorder=5)
            ax.set_xlabel(lx)
            ax.set_ylabel(ly)
            ax.grid(linestyle=":", linewidth=0.4)
            ax.tick_params(length=2.5, width=0.6)
            ax.locator_params(nbins=5)
        axes[0][0].legend(loc="best", frameon=False, handletextpad=0.3)
        q = front.get("quality") or {}
        hv = q.get("hypervolume")
        title = f"{front['problem']}: {len(pts)} points, " + ("complete" if front.get("complete")
                                                              else "approximation")
        if hv is not None:
            title += f", HV {hv:.3f}"
        if q.get("heuristic_ratio") is not None:
            title += f" (heuristic {q['heuristic_ratio']:.1%})"
        fig.suptitle(title, fontsize=8)
        fig.tight_layout(pad=0.4)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, out)
        finally:
            plt.close(fig)
            if os.path.exists(tmp):
                os.unlink(tmp)
    return {"files": [str(out)], "points": len(pts), "proven": sum(bool(p.get("proven")) for p in pts),
            "panels": len(pairs)}

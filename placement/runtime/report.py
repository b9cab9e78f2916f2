"""The measurements of a run, beside the evaluator's predictions (SPEC section 11).

Figures are in the problem's seconds: emulated runs are divided by their time scale.

* a block's measured time: the median, over the single inferences (warm-up excluded), of
  the time from its start to its end on its worker, the emulation's wait included;
* a transfer's measured time: the median of (arrival at the receiver - end of the
  producer), the arrival being taken by the receiving thread when the message is in its
  buffer (same machine: one monotonic clock); across machines, the sender's (send done -
  producer end);
* latency: the median (and the 90th percentile) over the single inferences of (the last
  output at the sink - the input at the source);
* period: of the pipelined stream, (last output - first output) / (n - 1).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class RunReport:
    """What `placement.run` returns; `to_dict` is the SPEC's JSON, exactly its keys."""

    problem: str
    plan: str
    emulation: str
    inferences: int
    output_matches: bool
    max_abs_error: float | None
    predicted: dict[str, float]
    measured: dict[str, float]
    error: dict[str, float]
    blocks: list[dict[str, Any]]
    transfers: list[dict[str, Any]]
    #: beyond the SPEC's keys (in the table and the trace, not in --json)
    time_scale: float = 1.0
    emulated: bool = False
    netem: str = ""
    schedule: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfer_times: list[dict[str, Any]] = field(default_factory=list)
    host_s: dict[str, float] = field(default_factory=dict)
    unmodelled: list[dict[str, Any]] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"problem": self.problem, "plan": self.plan, "emulation": self.emulation,
                "inferences": self.inferences, "output_matches": self.output_matches,
                "max_abs_error": self.max_abs_error, "predicted": self.predicted, "measured": self.measured,
                "error": self.error, "blocks": self.blocks, "transfers": self.transfers}

    def trace(self) -> dict[str, Any]:
        """The measured schedule of the median single inference (for ``placement show --measured``)."""
        return {"problem": self.problem, "plan": self.plan, "time_scale": self.time_scale,
                "emulation": self.emulation, "latency_s": self.measured.get("latency_s"),
                "period_s": self.measured.get("period_s"), "schedule": self.schedule,
                "transfers": self.transfer_times, "latencies_s": self.latencies_s,
                "host_s": self.host_s, "report": self.to_dict()}


def _rel(measured: float | None, predicted: float | None) -> float | None:
    if measured is None or predicted is None or not predicted:
        return None
    return abs(measured / predicted - 1.0)


def _median(xs):
    return float(statistics.median(xs)) if xs else None


def analyse(spec: dict[str, Any], records: dict[str, Any], *, problem, scored, predicted_transfers,
            plan_name: str, emulation: str, references, host_s) -> RunReport:
    from .prepare import max_abs_error, outputs_close

    S = spec["time_scale"] if spec["emulate"] else 1.0
    workers = [w for w in records["workers"] if w]
    n_single = spec["n_single"]
    singles = list(range(1, n_single))  # 0 is the warm-up
    stream = list(range(n_single, n_single + spec["n_stream"]))
    t_in = {i: t for w in workers for i, t in w["inputs"]}
    t_out = {i: t for w in workers for i, t in w["outputs"]}
    lat = [(t_out[i] - t_in[i]) / S for i in singles if i in t_out and i in t_in]
    outs = sorted(t_out[i] for i in stream if i in t_out)
    period = (outs[-1] - outs[0]) / (len(outs) - 1) / S if len(outs) >= 2 else None

    # output check: every inference, against the unsplit model on the same input
    outputs = records["outputs"]
    matches, err = True, 0.0
    for i, out in outputs.items():
        ref = references[i % len(references)]
        e = max_abs_error(out, ref)
        if e is None:
            matches, err = False, None
            break
        err = max(err, e)
        matches = matches and outputs_close(out, ref)

    # blocks
    rows = {}
    for w in workers:
        for i, b, t0, t1, t2 in w["blocks"]:
            rows.setdefault(b, {"dur": {}, "host": {}, "start": {}, "end": {}})
            rows[b]["dur"][i] = (t2 - t0) / S
            rows[b]["host"][i] = t1 - t0
            rows[b]["start"][i] = t0
            rows[b]["end"][i] = t2
    blocks = []
    for b in problem.blocks:
        r = rows.get(b.id, {"dur": {}, "host": {}})
        blocks.append({"id": b.id, "device": scored.assignment[b.id],
                       "predicted_s": float(scored.schedule[b.id]["end_s"] - scored.schedule[b.id]["start_s"]),
                       "measured_s": _median([r["dur"][i] for i in singles if i in r["dur"]])})

    # channels -> the problem's transfers
    from .prepare import channel_key
    ch_by = {(c["producer"], c["consumer"]): c for c in spec["channels"]}
    hosts = {w["device"]: w["host"] for w in workers}
    ready: dict[tuple[int, int], float] = {}
    sent: dict[tuple[int, int], float] = {}
    arrive: dict[tuple[int, int], float] = {}
    for w in workers:
        for cid, i, t_r, _t_s, t_e in w["sends"]:
            ready[(cid, i)] = t_r
            sent[(cid, i)] = t_e
        for cid, i, t in w["recvs"]:
            arrive[(cid, i)] = t

    def chan_time(c, i):
        same = hosts.get(c["src"]) == hosts.get(c["dst"])
        end = arrive.get((c["id"], i)) if same else sent.get((c["id"], i))
        if end is None or (c["id"], i) not in ready:
            return None
        return (end - ready[(c["id"], i)]) / S

    transfers, used = [], set()
    for t in predicted_transfers:
        c = ch_by.get(channel_key(t["src"], t["dst"]))
        meas = None
        if c is not None:
            used.add(c["id"])
            meas = _median([x for x in (chan_time(c, i) for i in singles) if x is not None])
        transfers.append({"src": t["src"], "dst": t["dst"], "predicted_s": t["predicted_s"], "measured_s": meas})
    unmodelled = [{"producer": c["producer"], "to_device": c["dst"], "bytes": c["nbytes"],
                   "measured_s": _median([x for x in (chan_time(c, i) for i in singles) if x is not None])}
                  for c in spec["channels"] if c["id"] not in used]

    # the median single inference, for the measured Gantt chart
    schedule, ttimes = {}, []
    if lat:
        med = singles[int(np.argsort(lat)[len(lat) // 2])] if len(lat) else None
        schedule, ttimes = measured_schedule(problem, scored, spec, rows, med, t_in, ready, arrive, sent, S)

    pred = {"latency_s": float(scored.metrics["latency_s"]), "period_s": float(scored.metrics["period_s"])}
    meas_lat = _median(lat)
    p90 = float(np.percentile(lat, 90)) if lat else None
    measured = {"latency_s": meas_lat, "latency_p90_s": p90, "period_s": period}
    error = {"latency": _rel(meas_lat, pred["latency_s"]), "period": _rel(period, pred["period_s"])}
    return RunReport(problem=problem.name, plan=plan_name, emulation=emulation, inferences=len(singles),
                     output_matches=bool(matches), max_abs_error=err, predicted=pred, measured=measured,
                     error=error, blocks=blocks, transfers=transfers, time_scale=S, emulated=spec["emulate"],
                     schedule=schedule, transfer_times=ttimes, host_s=dict(host_s), unmodelled=unmodelled,
                     latencies_s=lat)


def print_report(rep: RunReport, out) -> None:
    """The rich tables: totals, then block by block and transfer by transfer."""
    from rich.table import Table

    from ..report import fmt

    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}%"

    def signed(m, p):
        if m is None or not p:
            return "-"
        return f"{100 * (m / p - 1):+.1f}%"

    ok = "[green]yes[/]" if rep.output_matches else "[bold red]NO[/]"
    how = (f"emulated ({rep.emulation} links, devices paced, time scale {rep.time_scale:g})"
           if rep.emulated else "host speed, real links (no emulation)")
    out.print(f"[bold]{rep.problem}[/] · plan {rep.plan} · {how} · {rep.inferences} single inferences")
    if rep.emulated and rep.netem:
        out.print(f"[dim]links: in-process sender throttle; kernel shaping probe: {rep.netem}[/]")
    out.print(f"output equals the unsplit model: {ok} (max abs error {fmt(rep.max_abs_error)})")
    t = Table(show_edge=False, pad_edge=False, title="totals")
    for col in ("", "predicted s", "measured s", "error"):
        t.add_column(col, justify="right" if col else "left")
    t.add_row("latency (median)", fmt(rep.predicted["latency_s"]), fmt(rep.measured["latency_s"]),
              pct(rep.error["latency"]))
    t.add_row("latency p90", "", fmt(rep.measured["latency_p90_s"]), "")
    t.add_row("period (stream)", fmt(rep.predicted["period_s"]), fmt(rep.measured["period_s"]),
              pct(rep.error["period"]))
    out.print(t)
    def compared(title: str, first: str, second: str, rows, a: str, b: str) -> None:
        t = Table(show_edge=False, pad_edge=False, title=title)
        for col in (first, second, "predicted s", "measured s", "diff"):
            t.add_column(col, justify="left" if col in (first, second) else "right", overflow="fold")
        for x in rows:
            t.add_row(x[a], x[b], fmt(x["predicted_s"]), fmt(x["measured_s"]),
                      signed(x["measured_s"], x["predicted_s"]))
        out.print(t)

    compared("blocks", "block", "device", rep.blocks, "id", "device")
    if rep.transfers:
        compared("transfers", "from", "to", rep.transfers, "src", "dst")
    for u in rep.unmodelled:
        out.print(f"[yellow]a message the problem has no edge for[/]: {u['producer']} -> device "
                  f"{u['to_device']}, {u['bytes']} bytes, measured {fmt(u['measured_s'])} s")


def calibrated_problem(raw: dict[str, Any], rep: RunReport) -> dict[str, Any]:
    """A copy of the problem dict with each block's measured time as ``time_s[device id]``."""
    import copy

    out = copy.deepcopy(raw)
    measured = {b["id"]: (b["device"], b["measured_s"]) for b in rep.blocks if b["measured_s"] is not None}
    for blk in out["model"]["blocks"]:
        if blk["id"] in measured:
            dev, t = measured[blk["id"]]
            ts = dict(blk.get("time_s") or {})
            ts[dev] = float(t)
            blk["time_s"] = ts
    from .shards import calibration_times   # split blocks: their shards' times, rescaled
    for blk in out["model"]["blocks"]:
        for dev, t in calibration_times(raw, rep.blocks).get(blk["id"], {}).items():
            blk["time_s"] = {**(blk.get("time_s") or {}), dev: t}
    meta = dict(out.get("meta") or {})
    meta["runtime_calibration"] = {
        "from_plan": rep.plan, "emulation": rep.emulation, "emulated": rep.emulated,
        "time_scale": rep.time_scale, "inferences": rep.inferences,
        "note": "time_s[device id] = median measured block time of 'placement run' (docs/runtime.md)"}
    out["meta"] = meta
    return out


def is_finite(x) -> bool:
    return x is not None and math.isfinite(x)


def measured_schedule(problem, scored, spec, rows, med, t_in, ready, arrive, sent, S):
    """The measured Gantt chart of inference ``med``: block start/end and each channel's ready
    and arrival times, from the inference's input, divided by the time scale ``S``."""
    schedule, ttimes = {}, []
    t0 = t_in.get(med, 0.0)
    for b in problem.blocks:
        r = rows.get(b.id)
        if r and med in r["start"]:
            schedule[b.id] = {"device": scored.assignment[b.id], "start_s": (r["start"][med] - t0) / S,
                              "end_s": (r["end"][med] - t0) / S}
    for c in spec["channels"]:
        key = (c["id"], med)
        if key in ready:
            end = arrive.get(key, sent.get(key))
            ttimes.append({"producer": c["producer"], "src": c["src"], "dst": c["dst"],
                           "ready_s": (ready[key] - t0) / S, "arrival_s": (end - t0) / S if end else None,
                           "consumers": c["consumers"]})
    return schedule, ttimes

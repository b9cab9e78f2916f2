"""The report of a scenario run (SPEC sections 10 and 11): measured against predicted per
scenario and in expectation.

The SPEC's keys keep their meaning for the whole run (docs/runtime.md, "Scenarios"):

* with ``--scenario NAME`` every inference runs NAME, and ``predicted`` / ``measured`` /
  ``error`` are that scenario's (the evaluator's ``metrics.scenarios[NAME]``);
* without it, each inference's scenario is sampled from the probabilities: ``predicted`` is
  the evaluator's expectation (``latency_s``, ``period_s``, ``latency_max_s``); ``measured``
  ``latency_s`` is the probability-weighted sum of the scenarios' median latencies (None,
  with a note, when the sample missed a scenario: raise ``--inferences``), ``latency_mean_s``
  the plain mean of the sampled single inferences, ``latency_max_s`` the worst scenario's
  median, ``period_s`` that of the pipelined stream of sampled scenarios; ``predicted``
  also has ``period_sample_s``, the period the evaluator predicts for the stream's own mix
  (the sample's frequencies in place of the probabilities), and ``error.period_sample``.

``scenarios`` (beyond the SPEC's keys) lists every scenario: its probability, how many
measured single inferences ran it (``inferences``) and how many inferences in all (``runs``:
warm-up, single and stream), the output check of all of them, and predicted against
measured latency (and period when the stream ran that scenario alone). Each block row has
``runs`` (the inferences that ran it) and each transfer row ``scenarios`` (where the
reduced problem has it) and ``messages`` (the messages that carried it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .report import RunReport, _median, _rel, measured_schedule


@dataclass
class ScenarioRunReport(RunReport):
    """A `RunReport` with the scenario of the run and one entry per scenario."""

    scenario: str | None = None
    scenarios: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["scenario"] = self.scenario
        d["scenarios"] = self.scenarios
        return d


def analyse_scenarios(spec: dict[str, Any], records: dict[str, Any], *, problem, scored, plan_name: str,
                      emulation: str, references, host_s) -> ScenarioRunReport:
    from .blocks import SOURCE
    from .prepare import max_abs_error, outputs_close, predicted_transfers

    S = spec["time_scale"] if spec["emulate"] else 1.0
    seq = spec["scenario_of"]
    workers = [w for w in records["workers"] if w]
    n_single = spec["n_single"]
    singles = list(range(spec["n_warmup"], n_single))
    stream = list(range(n_single, n_single + spec["n_stream"]))
    t_in = {i: t for w in workers for i, t in w["inputs"]}
    t_out = {i: t for w in workers for i, t in w["outputs"]}
    lat = {i: (t_out[i] - t_in[i]) / S for i in singles if i in t_out and i in t_in}
    outs = sorted(t_out[i] for i in stream if i in t_out)
    period = (outs[-1] - outs[0]) / (len(outs) - 1) / S if len(outs) >= 2 else None

    # output check per inference, against its scenario's reference on the same input
    check: dict[str, dict[str, Any]] = {}
    for i, out in records["outputs"].items():
        s = seq[i]
        ref = references[s][i % spec["n_inputs"]]
        c = check.setdefault(s, {"matches": True, "err": 0.0})
        e = max_abs_error(out, ref)
        if e is None:
            c["matches"], c["err"] = False, None
            continue
        if c["err"] is not None:
            c["err"] = max(c["err"], e)
        c["matches"] = c["matches"] and outputs_close(out, ref)
    errs = [c["err"] for c in check.values()]
    matches = bool(check) and all(c["matches"] for c in check.values())
    err = None if any(e is None for e in errs) else max(errs, default=0.0)

    # blocks: the median over the single inferences that ran them
    rows: dict[str, dict[str, dict[int, float]]] = {}
    for w in workers:
        for i, b, t0, _t1, t2 in w["blocks"]:
            r = rows.setdefault(b, {"dur": {}, "start": {}, "end": {}})
            r["dur"][i], r["start"][i], r["end"][i] = (t2 - t0) / S, t0, t2
    blocks = []
    for b in problem.blocks:
        r = rows.get(b.id, {"dur": {}})
        blocks.append({"id": b.id, "device": scored.assignment[b.id],
                       "predicted_s": float(scored.schedule[b.id]["end_s"] - scored.schedule[b.id]["start_s"]),
                       "measured_s": _median([r["dur"][i] for i in singles if i in r["dur"]]),
                       "runs": len(r["dur"])})   # inferences that ran it: warm-up, single and stream

    # transfers: the union of the scenarios' reduced problems' transfers
    hosts = {w["device"]: w["host"] for w in workers}
    ready, sent, arrive = {}, {}, {}
    n_sent: dict[int, int] = {}
    for w in workers:
        for cid, i, t_r, _t_s, t_e in w["sends"]:
            ready[(cid, i)], sent[(cid, i)] = t_r, t_e
            n_sent[cid] = n_sent.get(cid, 0) + 1
        for cid, i, t in w["recvs"]:
            arrive[(cid, i)] = t

    def chan_time(c, i):
        same = hosts.get(c["src"]) == hosts.get(c["dst"])
        end = arrive.get((c["id"], i)) if same else sent.get((c["id"], i))
        if end is None or (c["id"], i) not in ready:
            return None
        return (end - ready[(c["id"], i)]) / S

    chans: dict[tuple[str, str, str], dict] = {}
    for c in spec["channels"]:
        for s in c["scenarios"]:
            chans[(c["producer"], c["dst"], s)] = c
    pred_t: dict[tuple[str, str], dict[str, Any]] = {}
    used: set[int] = set()
    for k, sc in enumerate(problem.scenarios):
        q, _ = problem.scenario_problem(k)
        firsts = {q.blocks[b].id for b in q.input_blocks}
        for t in predicted_transfers(q, scored.assignment):
            row = pred_t.setdefault((t["src"], t["dst"]), {**t, "scenarios": []})
            row["scenarios"].append(sc.name)
            # "input" is the source's image, or the block of that name (the image block)
            from_source = t["src"] == "input" and t["dst"] in firsts
            c = chans.get((SOURCE if from_source else t["src"], t["to_device"], sc.name))
            if c is not None:
                used.add(c["id"])
                row.setdefault("_chan", {})[sc.name] = c
    transfers = []
    for (src, dst), t in pred_t.items():
        by = t.get("_chan", {})
        xs = [chan_time(by[seq[i]], i) for i in singles if seq[i] in by]
        transfers.append({"src": src, "dst": dst, "predicted_s": t["predicted_s"],
                          "measured_s": _median([x for x in xs if x is not None]), "scenarios": t["scenarios"],
                          "messages": sum(n_sent.get(c["id"], 0) for c in {id(c): c for c in by.values()}.values())})
    unmodelled = []
    for c in spec["channels"]:
        if c["id"] not in used:
            xs = [chan_time(c, i) for i in singles if seq[i] in c["scenarios"]]
            unmodelled.append({"producer": c["producer"], "to_device": c["dst"], "bytes": c["nbytes"],
                               "scenarios": c["scenarios"], "measured_s": _median([x for x in xs if x is not None]),
                               "messages": n_sent.get(c["id"], 0)})

    # per scenario, and in expectation
    ms = scored.metrics.get("scenarios") or {}
    fixed = spec.get("scenario")
    per = []
    for sc in problem.scenarios:
        xs = [lat[i] for i in singles if seq[i] == sc.name and i in lat]
        m = ms.get(sc.name, {})
        pred = {"latency_s": m.get("latency_s"), "period_s": m.get("period_s"), "energy_j": m.get("energy_j")}
        meas = {"latency_s": _median(xs), "latency_p90_s": float(np.percentile(xs, 90)) if xs else None,
                "period_s": period if fixed == sc.name else None}
        c = check.get(sc.name)
        per.append({"name": sc.name, "probability": sc.probability, "inferences": len(xs),
                    "runs": sum(1 for x in seq if x == sc.name),
                    "output_matches": None if c is None else bool(c["matches"]),
                    "max_abs_error": None if c is None else c["err"], "predicted": pred, "measured": meas,
                    "error": {"latency": _rel(meas["latency_s"], pred["latency_s"]),
                              "period": _rel(meas["period_s"], pred["period_s"])}})
    all_lat = list(lat.values())
    notes = []
    if fixed is not None:
        entry = next(e for e in per if e["name"] == fixed)
        predicted = {"latency_s": entry["predicted"]["latency_s"], "period_s": entry["predicted"]["period_s"],
                     "energy_j": entry["predicted"]["energy_j"]}
        measured = {"latency_s": entry["measured"]["latency_s"], "latency_p90_s": entry["measured"]["latency_p90_s"],
                    "period_s": period}
    else:
        predicted = {"latency_s": float(scored.metrics["latency_s"]), "period_s": float(scored.metrics["period_s"]),
                     "latency_max_s": float(scored.metrics.get("latency_max_s", scored.metrics["latency_s"])),
                     "energy_j": float(scored.metrics["energy_j"])}
        missing = [e["name"] for e in per if not e["inferences"]]
        if missing:
            notes.append(f"no single inference sampled scenario(s) {', '.join(missing)}: the measured expectation "
                         "is not given (raise --inferences, or run each with --scenario)")
        weighted = None if missing else float(sum(e["probability"] * e["measured"]["latency_s"] for e in per))
        measured = {"latency_s": weighted,
                    "latency_p90_s": float(np.percentile(all_lat, 90)) if all_lat else None,
                    "latency_mean_s": float(np.mean(all_lat)) if all_lat else None,
                    "latency_max_s": None if missing else max(e["measured"]["latency_s"] for e in per),
                    "period_s": period}
    if fixed is None:
        predicted["period_sample_s"] = sampled_period(problem, scored, [seq[i] for i in stream])
    error = {"latency": _rel(measured["latency_s"], predicted["latency_s"]),
             "period": _rel(measured["period_s"], predicted["period_s"])}
    if fixed is None:
        error["latency_max"] = _rel(measured["latency_max_s"], predicted["latency_max_s"])
        error["period_sample"] = _rel(measured["period_s"], predicted["period_sample_s"])

    # the measured Gantt chart: the median single inference of the run's most frequent scenario
    schedule, ttimes = {}, []
    if lat:
        common = max(per, key=lambda e: e["inferences"])["name"]
        ids = [i for i in singles if seq[i] == common and i in lat]
        med = ids[int(np.argsort([lat[i] for i in ids])[len(ids) // 2])]
        schedule, ttimes = measured_schedule(problem, scored, spec, rows, med, t_in, ready, arrive, sent, S)
    return ScenarioRunReport(
        problem=problem.name, plan=plan_name, emulation=emulation, inferences=len(singles),
        output_matches=matches, max_abs_error=err, predicted=predicted, measured=measured, error=error,
        blocks=blocks, transfers=transfers, time_scale=S, emulated=spec["emulate"], schedule=schedule,
        transfer_times=ttimes, host_s=dict(host_s), unmodelled=unmodelled, latencies_s=all_lat,
        scenario=fixed, scenarios=per, notes=notes)


def sampled_period(problem, scored, drawn) -> float | None:
    """The period the evaluator predicts for the stream's own mix of scenarios: the busiest
    resource's mean load over the scenarios drawn (`placement.scenarios.resource_loads`, as
    the expected period with the sample's frequencies in place of the probabilities)."""
    from ..scenarios import resource_loads

    if not drawn:
        return None
    a = np.array([problem.device_index[scored.assignment[b.id]] for b in problem.blocks], dtype=np.int64)
    D = problem.n_devices
    load, link = np.zeros(D), np.zeros((D, D))
    for k, sc in enumerate(problem.scenarios):
        w = sum(1 for s in drawn if s == sc.name) / len(drawn)
        if w:
            q, keep = problem.scenario_problem(k)
            qa = a[keep]
            ql, qk = resource_loads(q, qa, q.compute_time[np.arange(q.n_blocks), qa])
            load += w * ql
            link += w * qk
    return float(max(load.max(initial=0.0), link.max(initial=0.0)))


def print_scenario_report(rep: ScenarioRunReport, out) -> None:
    """`report.print_report`'s tables, then one row per scenario and the expectation."""
    from rich.table import Table

    from ..report import fmt
    from .report import print_report

    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}%"

    print_report(rep, out)
    how = f"every inference runs '{rep.scenario}'" if rep.scenario else "scenarios sampled by their probabilities"
    t = Table(show_edge=False, pad_edge=False, title=f"scenarios ({how})")
    for col in ("scenario", "p", "singles", "output", "predicted latency s", "measured s", "error",
                "predicted period s", "measured s ", "error "):
        t.add_column(col, justify="left" if col in ("scenario", "output") else "right")
    for e in rep.scenarios:
        ok = "-" if e["output_matches"] is None else ("yes" if e["output_matches"] else "[bold red]NO[/]")
        t.add_row(e["name"], f"{e['probability']:g}", str(e["inferences"]), ok,
                  fmt(e["predicted"]["latency_s"]), fmt(e["measured"]["latency_s"]), pct(e["error"]["latency"]),
                  fmt(e["predicted"]["period_s"]), fmt(e["measured"]["period_s"]), pct(e["error"]["period"]))
    if rep.scenario is None:
        t.add_row("[bold]expectation[/]", "1", str(rep.inferences), "", fmt(rep.predicted["latency_s"]),
                  fmt(rep.measured["latency_s"]), pct(rep.error["latency"]), fmt(rep.predicted["period_s"]),
                  fmt(rep.measured["period_s"]), pct(rep.error["period"]))
        t.add_row("[dim]the stream's own mix[/]", "", "", "", "", "", "", fmt(rep.predicted["period_sample_s"]),
                  fmt(rep.measured["period_s"]), pct(rep.error["period_sample"]))
        t.add_row("[bold]worst[/]", "", "", "", fmt(rep.predicted["latency_max_s"]),
                  fmt(rep.measured["latency_max_s"]), pct(rep.error.get("latency_max")), "", "", "")
    out.print(t)
    for n in rep.notes:
        out.print(f"[yellow]{n}[/]")

"""``placement compare`` on the command line: arguments, the results table, exit codes.

The work is `placement.comparator.compare`; this module only reads arguments and prints.
Vocabulary (shared with ``solve``): ``--methods``/``--method``, ``--objectives``/``--objective``,
``--seeds``/``--seed``, ``--option [METHOD.]KEY=VALUE``; ``--json`` is a flag (rows on stdout),
the results file is ``-o FILE``; the table's columns carry the CSV's names.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from .comparator import COLUMNS, compare, no_plan_problems
from .errors import InputError
from .results import SUFFIXES, _jsonable


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("problems", nargs="+", metavar="PROBLEM", help="problem files (JSON)")
    p.add_argument("-m", "--methods", "--method", dest="methods", required=True,
                   help="comma-separated method names (see 'placement methods')")
    p.add_argument("-t", "--time-limit", type=float, default=60.0,
                   help="wall-clock limit per solve, seconds (default 60)")
    p.add_argument("--objectives", "--objective", dest="objective",
                   help="latency, throughput, energy, JSON weights, or a comma list of names "
                   "(default: each problem's own)")
    p.add_argument("--seeds", "--seed", dest="seeds", default="0",
                   help="comma-separated seeds (default 0)")
    p.add_argument("--option", action="append", metavar="[METHOD.]KEY=VALUE",
                   help="a method option (repeatable): milp.backend=highs for one method, "
                   "or KEY=VALUE for every listed method that takes KEY")
    p.add_argument("-w", "--workers", type=int, default=1,
                   help="parallel solves (default 1: in this process, honest time limits)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local process pool (default) or a Ray cluster (cluster extra)")
    p.add_argument("--address", default=None,
                   help="Ray address: auto, local (start one here), or ray://host:port")
    p.add_argument("-o", "--output", "--csv", dest="output", metavar="FILE",
                   help="results file (.csv, or JSON Lines for .jsonl), rewritten atomically after "
                   "every row; an existing file that is not placement's results is never overwritten")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="FILE",
                   help="add to the rows already in the results file (-o FILE, or FILE here), "
                   "skipping the ones it has and running interrupted ones again")
    p.add_argument("--splits", default="choose", metavar="MODES",
                   help="problems with split blocks (SPEC section 6): choose (default: the problem as "
                   "it is; methods that choose the ways choose them, the others use max(ways)), max "
                   "(every split block fixed at max(ways)), none (every block kept whole: ways 1 where "
                   "allowed), a comma list of these, or all; one row per mode, column 'splits', and "
                   "gain_vs_whole = the 'none' row's value / the row's value")
    p.add_argument("--json", action="store_true", help="print the rows as JSON on stdout at the end")


def _parse_value(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def cli_options(pairs: Sequence[str] | None, methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``METHOD.KEY=VALUE`` for one method, ``KEY=VALUE`` for every method in ``methods`` that
    declares option KEY (an option no listed method takes is an `InputError`)."""
    from .registry import get_method
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise InputError(f"--option: expected [METHOD.]KEY=VALUE, found '{pair}'")
        key, value = pair.split("=", 1)
        method, _, name = key.rpartition(".")
        if method:
            out.setdefault(method, {})[name] = _parse_value(value)
            continue
        takers = [m for m in methods if name in get_method(m).options]
        if not takers:
            raise InputError(f"--option {name}: none of {', '.join(methods)} takes an option '{name}' "
                             "(see 'placement methods')")
        for m in takers:
            out.setdefault(m, {})[name] = _parse_value(value)
    return out


def run(args: argparse.Namespace) -> int:
    from .cli import EXIT_NO_PLAN, EXIT_OK
    from .comparator import _parse_list
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds: expected comma-separated integers, found '{args.seeds}'") from None
    for f in args.problems:  # the old '--json FILE' spelling now leaves FILE among the problems
        if Path(f).suffix.lower() in SUFFIXES:
            raise InputError(f"{f}: looks like a results file, not a problem; results go to -o FILE")
    if isinstance(args.resume, str):
        if args.output and Path(args.output).resolve() != Path(args.resume).resolve():
            raise InputError(f"--resume {args.resume} and -o {args.output}: expected one results file")
        args.output = args.resume
    if args.resume and not args.output:
        raise InputError("--resume: needs the results file, -o FILE")
    methods = _parse_list(args.methods, "--methods")
    # Ctrl-C (placement.cli runs this under interrupt.handling_sigint): the running row ends
    # 'interrupted', is written, and the study stops with exit 130
    rows = compare(args.problems, methods, time_limit=args.time_limit, objective=args.objective,
                   seeds=seeds, workers=args.workers, executor=args.executor, address=args.address,
                   results=args.output, resume=bool(args.resume),
                   options=cli_options(args.option, methods), progress=not args.json,
                   splits=getattr(args, "splits", "choose"))
    if args.json:
        print(json.dumps([{k: _jsonable(r[k]) for k in COLUMNS} for r in rows], indent=2))
    else:
        from .report import console, plural
        console().print(table(rows))
        if args.output:
            console().print(f"{plural(len(rows), 'row')} in {args.output}")
    missing = no_plan_problems(rows)
    if missing:
        print(f"placement compare: no method found a plan for {', '.join(missing)}", file=sys.stderr)
        return EXIT_NO_PLAN
    return EXIT_OK


def table(rows: Sequence[Mapping[str, Any]], title: str = "placement compare"):
    """A rich table of rows: value, bound, gaps, ratio to the best, time."""
    from rich import box
    from rich.table import Table

    from .plan import Status
    from .report import _STATUS_STYLE

    t = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)

    def fmt(x: Any) -> str:
        return "-" if x is None else f"{x:.4g}"

    def pct(x: Any) -> str:
        if x is None:
            return "-"
        return f"[red]{100 * x:.1f}%[/]" if x < 0 else f"{100 * x:.1f}%"

    # problems with scenarios (SPEC 10): the expected and the worst scenario's latency
    conditional = any(r.get("latency_max_s") is not None and r.get("latency_s") is not None
                      and r["latency_max_s"] > r["latency_s"] * (1 + 1e-9) for r in rows)
    cols = [("problem", "left"), ("objective", "left"), ("method", "left"), ("status", "left"),
            ("value", "right"), ("bound", "right"), ("gap", "right"), ("gap_best", "right"),
            ("ratio_best", "right")]
    if conditional:
        cols += [("latency_s", "right"), ("latency_max_s", "right")]
    # split blocks (SPEC 6): the --splits mode of each row, the ways its plan used, the gain
    split_rows = any(r.get("splits") for r in rows)
    if split_rows:
        cols[3:3] = [("splits", "left")]
        cols += [("split_ways", "left"), ("gain_vs_whole", "right")]
    for col, just in cols + [("solve_time_s", "right")]:
        if col == "problem":  # on a narrow terminal, shorten the name rather than fold it
            t.add_column(col, justify=just, overflow="ellipsis", no_wrap=True, min_width=12)
        else:
            t.add_column(col, justify=just, overflow="fold", no_wrap=True)
    t.caption_justify = "left"
    t.caption = ("value, bound: the objective's unit (latency/period s, energy J) · gap: against the "
                 "method's own bound · gap_best: against the best bound any method proved\n"
                 "ratio_best: value / best value · !: past the time limit + margin"
                 + ("\nsplits: choose (the problem as it is), max (ways fixed at max), none (blocks "
                    "whole) · split_ways: blocks split > 1 way (block:ways) · gain_vs_whole: the none "
                    "row's value / this row's" if split_rows else "")
                 + ("\nlatency_s: expected over the scenarios · latency_max_s: the worst scenario's"
                    if conditional else ""))
    for r in rows:
        try:
            style = _STATUS_STYLE.get(Status(r["status"]), "")
        except ValueError:
            style = "dim"
        status = f"[{style}]{r['status']}[/]" if style else r["status"]
        limit_ok = r.get("within_limit")
        st = r.get("solve_time_s")
        tm = ("-" if st is None else f"{st:.2f}") + ("" if limit_ok in (None, True) else " [red]![/]")
        cells = [r["problem"], r["objective"], r["method"], status, fmt(r.get("value")),
                 fmt(r.get("bound")), pct(r.get("gap")), pct(r.get("gap_best")),
                 "-" if r.get("ratio_best") is None else f"{r['ratio_best']:.3f}"]
        if conditional:
            cells += [fmt(r.get("latency_s")), fmt(r.get("latency_max_s"))]
        if split_rows:
            cells[3:3] = [r.get("splits") or "-"]
            cells += [_short_ways(r.get("split_ways")),
                      "-" if r.get("gain_vs_whole") is None else f"{r['gain_vs_whole']:.3f}x"]
        t.add_row(*cells, tm)
    return t


def _short_ways(text: Any, most: int = 4) -> str:
    """The split blocks a plan cut into shards (``b:w`` with ``w > 1``), at most ``most`` of
    them, then a count; ``whole`` when it cut none, ``-`` without split blocks."""
    if not text:
        return "-"
    cut = [x for x in str(text).split() if not x.endswith(":1")]
    if not cut:
        return "whole"
    return " ".join(cut[:most]) + (f" +{len(cut) - most}" if len(cut) > most else "")

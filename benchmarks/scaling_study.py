"""Scaling study: which method, at what size, how far from optimal.

    python benchmarks/scaling_study.py prepare   # write the problems (seeded, reproducible)
    python benchmarks/scaling_study.py run       # solve them; resumable, one solve at a time
    python benchmarks/scaling_study.py analyse   # CSV -> plots and the headline table
    python benchmarks/scaling_study.py all       # the three in a row
    python benchmarks/scaling_study.py splits    # split rows: with and without split choices

Sweeps (objective: latency, the problems' own):

- ``blocks``: hybrid CNN/ViT models of 10, 30, 100, 300, 1000, 2000 blocks on 8 devices;
- ``devices``: 100 blocks on 2, 4, 8, 16, 32, 64 devices;
- ``models``: the real-model problems in ``examples/models/*.json`` (profiled torch models,
  stage and block granularity, 6 devices);
- ``limits``: time limits at scale (issue 14): memory-bound IoT problems of 300 x 16 and
  1,000 x 32 (``LIMIT_PROBLEMS``), every method with short limits (``LIMIT_SECONDS``); the
  table in ``scaling_summary.md`` gives each solve's wall time against its limit
  x 1.05 + 1 s.

Synthetic problems: ``placement.generate("hybrid", B, D, device_set="edge",
network="tiers", seed=0)``.

Every registered *available* method runs on every problem with a per-solve time limit
(``TIME_LIMITS``). Each (problem, method) is one ``placement compare --resume`` call in a
child process, so that (1) the study can be stopped at any moment and resumed (the rows
file is rewritten atomically per row) and (2) a method that overruns its limit by far (a
model too big to build) is killed after ``HARD_TIMEOUT_S`` past its limit and recorded as
an ``error`` row saying so, instead of stalling the study. A method that refuses a size
(brute) gives a ``skipped`` row with its reason.

Outputs in ``benchmarks/results/``: ``scaling_rows.csv`` (one row per problem x method,
the comparator's columns plus nothing), ``scaling_time_vs_blocks.png``,
``scaling_gap_vs_blocks.png``, ``scaling_time_vs_devices.png``, ``scaling_gap_vs_devices.png``,
``scaling_models.png``, ``scaling_summary.md`` (the headline table) and
``scaling_meta.json`` (what ran, when, on what).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PROBLEMS = RESULTS / "scaling_problems"          # generated, not committed (prepare rewrites them)
ROWS = RESULTS / "scaling_rows.csv"
META = RESULTS / "scaling_meta.json"

BLOCKS = (10, 30, 100, 300, 1000, 2000)
FIXED_DEVICES = 8
DEVICES = (2, 4, 8, 16, 32, 64)
FIXED_BLOCKS = 100
#: seconds per solve. Exact methods and local search get 15 s (the CLI's limit for "a quick
#: answer"); constructive heuristics are given the same, they return long before it.
TIME_LIMITS = {"cpsat": 15.0, "milp": 15.0, "brute": 15.0, "local": 10.0}
DEFAULT_LIMIT = 15.0
#: a child that has not returned this long after its limit (+ the documented margin) is killed.
HARD_TIMEOUT_S = 90.0
#: the ``limits`` sweep: (shape, blocks, devices) on the iot device set, mesh network, no
#: shared media (so that every method runs), and the limits each method gets there.
LIMIT_PROBLEMS = (("hybrid", 300, 16), ("dag", 1000, 32), ("hybrid", 1000, 32))
LIMIT_SECONDS = (2.0, 5.0)


def limit_name(shape: str, blocks: int, devices: int) -> str:
    return f"limits-{shape}-b{blocks}-d{devices}"


def limits_of(sweep: str, method: str) -> tuple[float, ...]:
    """The time limits a method gets on a sweep's problems."""
    if sweep == "limits":
        return LIMIT_SECONDS
    return (TIME_LIMITS.get(method, DEFAULT_LIMIT),)


#: synthetic families: name prefix -> (device set, network). ``edge`` has a near-edge GPU
#: server that can hold the whole model (splitting rarely pays); ``iot`` is a swarm of
#: boards none of which holds the model (memory forces a split; 2 boards may not suffice).
FAMILIES = {"hybrid": ("edge", "tiers"), "iot": ("iot", "mesh")}


def synthetic_name(blocks: int, devices: int, family: str = "hybrid") -> str:
    return f"{family}-b{blocks}-d{devices}"


def family_of(problem: str) -> str | None:
    head = problem.split("-b", 1)[0]
    return head if head in FAMILIES and problem.startswith(head + "-b") else None


def problem_files() -> list[tuple[str, Path]]:
    """(sweep, file) for every problem of the study."""
    out: list[tuple[str, Path]] = []
    for f in sorted((ROOT / "examples" / "models").glob("*.json")):
        out.append(("models", f))
    for fam in FAMILIES:
        tag = "" if fam == "hybrid" else f"-{fam}"
        for b in BLOCKS:
            out.append((f"blocks{tag}", PROBLEMS / f"{synthetic_name(b, FIXED_DEVICES, fam)}.json"))
        for d in DEVICES:
            if d != FIXED_DEVICES:
                out.append((f"devices{tag}", PROBLEMS / f"{synthetic_name(FIXED_BLOCKS, d, fam)}.json"))
    for shape, b, d in LIMIT_PROBLEMS:
        out.append(("limits", PROBLEMS / f"{limit_name(shape, b, d)}.json"))
    return out


def prepare() -> None:
    import placement
    from placement.plan import write_json_atomic
    PROBLEMS.mkdir(parents=True, exist_ok=True)
    pairs = [(b, FIXED_DEVICES) for b in BLOCKS] + [(FIXED_BLOCKS, d) for d in DEVICES if d != FIXED_DEVICES]
    for fam, (device_set, network) in FAMILIES.items():
        for b, d in pairs:
            f = PROBLEMS / f"{synthetic_name(b, d, fam)}.json"
            if not f.exists():
                spec = placement.generate("hybrid", b, d, device_set=device_set, network=network,
                                          seed=0, name=synthetic_name(b, d, fam))
                placement.load(spec)
                write_json_atomic(f, spec)
    for shape, b, d in LIMIT_PROBLEMS:
        f = PROBLEMS / f"{limit_name(shape, b, d)}.json"
        if not f.exists():
            spec = placement.generate(shape, b, d, device_set="iot", network="mesh", seed=0,
                                      media=False, name=limit_name(shape, b, d))
            placement.load(spec)
            write_json_atomic(f, spec)
    print(f"{len(pairs) * len(FAMILIES) + len(LIMIT_PROBLEMS)} synthetic problems in {PROBLEMS}")


def available_methods() -> list[str]:
    from placement.registry import METHODS, get_method
    from placement.errors import MethodError
    out = []
    for name in METHODS:
        try:
            get_method(name)
            out.append(name)
        except MethodError:
            pass
    return out


def _size(f: Path) -> int:
    import placement
    p = placement.load(f)
    return p.n_blocks * p.n_devices


def run(methods: list[str] | None, sweeps: list[str], budget_s: float | None,
        redo: list[str] = ()) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    import placement
    from placement.comparator import ResultsFile, problem_sha
    from placement.method import TIME_LIMIT_MARGIN_FRACTION, TIME_LIMIT_MARGIN_S

    prepare()
    methods = methods or available_methods()
    files = [(s, f) for s, f in problem_files() if s in sweeps]
    files.sort(key=lambda sf: (_size(sf[1]), sf[1].name))
    store = ResultsFile(ROWS)
    if redo:  # drop rows of these statuses (or every row with "all") of the chosen methods on the
        # chosen sweeps' problems: run again (the other sweeps' rows stay)
        from placement.comparator import finish_rows
        old = store.read()
        in_sweeps = {placement.load(f).name for _, f in files}
        keep = [r for r in old if not (r["method"] in methods and r["problem"] in in_sweeps
                                       and ("all" in redo or r["status"] in redo))]
        if len(keep) != len(old):
            store.write(finish_rows(keep))
            print(f"--redo: {len(old) - len(keep)} rows dropped to be run again")
    # a row counts as done only for the problem content it was computed on (the real-model
    # examples may be re-measured between two runs): compare drops and reruns stale rows
    done = {(r["problem"], r["problem_sha"], r["method"], r["time_limit"]) for r in store.read()}
    loaded = {f: placement.load(f) for _, f in files}
    names = {f: p.name for f, p in loaded.items()}
    shas = {f: problem_sha(p) for f, p in loaded.items()}
    todo = [(s, f, m, lim) for s, f in files for m in methods for lim in limits_of(s, m)
            if (names[f], shas[f], m, lim) not in done]
    meta = json.loads(META.read_text()) if META.exists() else {"runs": []}
    meta["runs"].append({"started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                         "methods": methods, "sweeps": sweeps, "tasks": len(todo),
                         "time_limits": {m: TIME_LIMITS.get(m, DEFAULT_LIMIT) for m in methods},
                         "machine": f"{platform.machine()}, {os.cpu_count()} cpus (shared)",
                         "python": platform.python_version(), "commit": _commit(),
                         "load_average_at_start": [round(x, 2) for x in os.getloadavg()]})
    from placement.plan import write_json_atomic
    write_json_atomic(META, meta)
    console = Console(stderr=True)
    t0 = time.monotonic()
    with Progress(TextColumn("[bold]scaling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console) as bar:
        tid = bar.add_task("", total=len(todo))
        for sweep, f, m, limit in todo:
            if budget_s is not None and time.monotonic() - t0 > budget_s:
                console.print(f"[yellow]budget of {budget_s:.0f} s spent: stopping; run again to resume[/]")
                break
            bar.update(tid, description=f"{names[f]} · {m} (limit {limit:g} s)")
            hard = limit + TIME_LIMIT_MARGIN_S + TIME_LIMIT_MARGIN_FRACTION * limit + HARD_TIMEOUT_S
            cmd = [sys.executable, "-m", "placement.cli", "compare", str(f.relative_to(ROOT)), "--methods",
                   m, "-t", str(limit), "--resume", str(ROWS.relative_to(ROOT))]
            started = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
            try:
                _, err = proc.communicate(timeout=hard)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                err = ""
                _add_row(store, f, names[f], m, limit, "error",
                         f"killed by the study after {time.monotonic() - started:.0f} s "
                         f"(time limit {limit:g} s + margin + {HARD_TIMEOUT_S:g} s)",
                         time.monotonic() - started)
            if proc.returncode not in (0, 3, -9) and err:
                console.print(f"[red]{names[f]} · {m}: exit {proc.returncode}: {err.strip()[-300:]}[/]")
            bar.advance(tid)
    rows = store.read()
    console.print(f"{len(rows)} rows in {ROWS}")


def _add_row(store, f: Path, name: str, method: str, limit: float, status: str, message: str,
             wall: float) -> None:
    import placement
    from placement.comparator import COLUMNS, finish_rows, problem_sha, sort_rows
    p = placement.load(f)
    rows = [r for r in store.read() if not (r["problem"] == name and r["problem_sha"] not in (None, problem_sha(p)))]
    row = {k: None for k in COLUMNS}
    row.update(problem=name, file=str(f.relative_to(ROOT)), problem_sha=problem_sha(p), method=method, objective=p.objective.name, time_limit=limit,
               seed=0, status=status, message=message, wall_s=wall, within_limit=False,
               n_blocks=p.n_blocks, n_devices=p.n_devices)
    rows.append(row)
    store.write(sort_rows(finish_rows(rows)))


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ------------------------------------------------------------------------- analyse
METHOD_STYLE = {"single": ("#7f7f7f", "o"), "heft": ("#1f77b4", "s"), "dp": ("#2ca02c", "^"),
                "local": ("#ff7f0e", "D"), "cpsat": ("#d62728", "v"), "milp": ("#9467bd", "P"),
                "brute": ("#8c564b", "X")}
HAS_PLAN = ("optimal", "feasible", "time_limit")


def analyse() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from placement.comparator import ResultsFile
    rows = ResultsFile(ROWS).read()
    if not rows:
        sys.exit(f"no rows in {ROWS}: run first")
    methods = [m for m in METHOD_STYLE if any(r["method"] == m for r in rows)]
    methods += sorted({r["method"] for r in rows} - set(methods))

    def sweep_rows(kind: str, fam: str):
        if kind == "blocks":
            names = {synthetic_name(b, FIXED_DEVICES, fam): b for b in BLOCKS}
        else:
            names = {synthetic_name(FIXED_BLOCKS, d, fam): d for d in DEVICES}
        return [(names[r["problem"]], r) for r in rows if r["problem"] in names]

    written = []
    fams = [f for f in FAMILIES if any(family_of(r["problem"]) == f for r in rows)]
    for kind, xlabel in (("blocks", f"blocks (on {FIXED_DEVICES} devices)"),
                         ("devices", f"devices (for {FIXED_BLOCKS} blocks)")):
        if not any(sweep_rows(kind, f) for f in fams):
            continue
        for what in ("time", "gap"):
            fig, axes = plt.subplots(1, len(fams), figsize=(6.5 * len(fams), 5), squeeze=False,
                                     sharey=(what == "time"))
            for ax, fam in zip(axes[0], fams):
                data = sweep_rows(kind, fam)
                for m in methods:
                    if what == "time":
                        pts = sorted((x, r["solve_time_s"]) for x, r in data if r["method"] == m
                                     and r["status"] not in ("skipped", "error") and r["solve_time_s"])
                    else:
                        pts = sorted((x, 100 * r["gap_best"]) for x, r in data if r["method"] == m
                                     and r["status"] in HAS_PLAN and r["gap_best"] is not None)
                    if pts:
                        c, mk = METHOD_STYLE.get(m, ("black", "o"))
                        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=mk, color=c, label=m,
                                alpha=0.85)
                ax.set_xscale("log")
                from matplotlib.ticker import NullFormatter, ScalarFormatter
                ax.set_xticks(list(BLOCKS if kind == "blocks" else DEVICES))
                ax.xaxis.set_major_formatter(ScalarFormatter())
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.set_xlabel(xlabel)
                ds, net = FAMILIES[fam]
                ax.set_title(f"{fam}: '{ds}' devices, '{net}' network", fontsize=10)
                ax.grid(which="both", linestyle=":", linewidth=0.5)
                if what == "time":
                    ax.set_yscale("log")
                    for lim in sorted({r["time_limit"] for _, r in data if r["time_limit"]}):
                        ax.axhline(lim, color="#999999", linestyle="--", linewidth=0.8)
                    ax.set_ylabel("solve time (s, wall clock; dashed: limits)")
                else:
                    ax.set_ylim(bottom=0)
                    ax.set_ylabel("gap to the best proven bound (%)")
                ax.legend(fontsize=8)
            fig.suptitle(("solve time" if what == "time" else
                          "(value - best bound) / value: at most this far from optimal")
                         + f" vs {kind} · latency objective · hybrid CNN/ViT models", fontsize=11)
            fig.tight_layout()
            out = RESULTS / f"scaling_{what}_vs_{kind}.png"
            fig.savefig(out, dpi=120)
            plt.close(fig)
            written.append(out)

    model_rows = [r for r in rows if family_of(r["problem"]) is None]
    if model_rows:
        probs = sorted({r["problem"] for r in model_rows})
        fig, ax = plt.subplots(figsize=(max(8, 0.7 * len(probs)), 5))
        width = 0.8 / max(1, len(methods))
        for i, m in enumerate(methods):
            xs, ys = [], []
            for j, pname in enumerate(probs):
                r = next((r for r in model_rows if r["problem"] == pname and r["method"] == m), None)
                if r and r["status"] in HAS_PLAN and r["ratio_best"] is not None:
                    xs.append(j + (i - (len(methods) - 1) / 2) * width)
                    ys.append(r["ratio_best"])
            c, _ = METHOD_STYLE.get(m, ("black", "o"))
            ax.bar(xs, ys, width=width, color=c, label=m)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(probs)))
        ax.set_xticklabels(probs, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel("latency / best latency found (1 = best)")
        ax.set_yscale("log")
        ax.set_title("real models (examples/models): latency relative to the best method")
        ax.legend(fontsize=8, ncol=4)
        ax.grid(axis="y", which="both", linestyle=":", linewidth=0.5)
        fig.tight_layout()
        out = RESULTS / "scaling_models.png"
        fig.savefig(out, dpi=120)
        plt.close(fig)
        written.append(out)

    limit_rows = [r for r in rows if str(r["problem"]).startswith("limits-")]
    summary = summary_table([r for r in rows if not str(r["problem"]).startswith("limits-")], methods)
    summary += limits_table(limit_rows, methods)
    (RESULTS / "scaling_summary.md").write_text(summary)
    written.append(RESULTS / "scaling_summary.md")
    print(summary)
    for w in written:
        print(f"wrote {w}")


def _median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def limits_table(rows, methods) -> str:
    """The ``limits`` sweep (markdown): per problem, method and limit, the solve's time (the
    method's clock: the reported bound, model building, presolve and read-back included)
    against limit x 1.05 + 1 s; wall s adds loading the file and the warm-up (compiled
    kernels, imports), which `placement.solve` does before the clock starts."""
    if not rows:
        return ""
    from placement.method import TIME_LIMIT_MARGIN_FRACTION, TIME_LIMIT_MARGIN_S
    lines = ["", "## Time limits at scale (the `limits` sweep, issue 14)", "",
             "Every method on memory-bound IoT problems with short limits; `within` = the solve "
             f"(model building, presolve, read-back and the reported bound included) returned within "
             f"limit x {1 + TIME_LIMIT_MARGIN_FRACTION:g} + {TIME_LIMIT_MARGIN_S:g} s; wall s adds loading "
             "the file and the warm-up before the clock (compiled kernels, imports); skipped = the "
             "method refuses the size (brute).", "",
             "| problem | blocks x devices | method | limit s | solve s | wall s | status | within |",
             "| --- | --- | --- | ---: | ---: | ---: | --- | --- |"]
    order = {m: i for i, m in enumerate(methods)}
    for r in sorted(rows, key=lambda r: (r["n_blocks"] or 0, r["problem"], order.get(r["method"], 99),
                                         r["time_limit"] or 0)):
        lim = float(r["time_limit"] or 0)
        wall = r["wall_s"]
        st = r["solve_time_s"]
        ok = st is not None and float(st) <= lim * (1 + TIME_LIMIT_MARGIN_FRACTION) + TIME_LIMIT_MARGIN_S
        lines.append(f"| {r['problem']} | {r['n_blocks']} x {r['n_devices']} | {r['method']} | {lim:g} | "
                     f"{'' if st is None else f'{float(st):.2f}'} | {'' if wall is None else f'{float(wall):.2f}'} | "
                     f"{r['status']} | {'n/a' if r['status'] == 'skipped' else 'yes' if ok else 'NO'} |")
    n_ok = sum(1 for ln in lines if ln.endswith("| yes |"))
    n_all = sum(1 for r in rows if r["status"] != "skipped")
    lines += ["", f"{n_ok}/{n_all} solves within the margin (skipped rows not counted). Measured on a "
              "shared 2-core machine (the load of each run: `os.getloadavg()` in scaling_meta.json)."]
    return "\n".join(lines) + "\n"


def summary_table(rows, methods) -> str:
    """The headline table (markdown): per method, over every problem of the study."""
    lines = ["| method | rows | plan found | proven optimal | best value | median gap* | max gap* "
             "| median time s | max time s | within limit | skipped / error |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        plan = [r for r in rs if r["status"] in HAS_PLAN]
        gaps = [r["gap_best"] for r in plan if r["gap_best"] is not None]
        times = [r["solve_time_s"] for r in rs if r["solve_time_s"] is not None]
        best = [r for r in plan if r["ratio_best"] is not None and r["ratio_best"] <= 1 + 1e-6]
        within = [r for r in rs if r["within_limit"] is True]
        ran = [r for r in rs if r["status"] not in ("skipped",)]
        other = [r for r in rs if r["status"] in ("skipped", "error")]
        pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"
        num = lambda x: "-" if x is None else f"{x:.3g}"
        lines.append(f"| {m} | {len(rs)} | {len(plan)} | {sum(r['status'] == 'optimal' for r in rs)} | "
                     f"{len(best)} | {pct(_median(gaps))} | {pct(max(gaps) if gaps else None)} | "
                     f"{num(_median(times))} | {num(max(times) if times else None)} | "
                     f"{len(within)}/{len(ran)} | {len(other)} |")
    lines.append("")
    lines.append("gap* = (value - best bound any method proved for the problem) / value; best value = "
                 "rows where the method's latency is the best found for that problem (within 1e-6).")
    # per-problem detail: gap* by method
    size = {r["problem"]: (family_of(r["problem"]) or "", (r["n_blocks"] or 0) * (r["n_devices"] or 0),
                           r["n_blocks"] or 0, r["problem"]) for r in rows}
    probs = sorted(size, key=size.get)
    lines += ["", "| problem | blocks x devices | " + " | ".join(methods) + " |",
              "| --- | --- | " + " | ".join("---:" for _ in methods) + " |"]
    for pname in probs:
        rs = {r["method"]: r for r in rows if r["problem"] == pname}
        any_r = next(iter(rs.values()))
        cells = []
        for m in methods:
            r = rs.get(m)
            if r is None:
                cells.append("")
            elif r["status"] in HAS_PLAN:
                g = r["gap_best"]
                cells.append(f"{'-' if g is None else f'{100 * g:.1f}%'} ({r['solve_time_s']:.2g} s)"
                             + (" opt" if r["status"] == "optimal" else ""))
            else:
                cells.append(r["status"])
        lines.append(f"| {pname} | {any_r['n_blocks']} x {any_r['n_devices']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("cell: gap* (solve time); opt = proven optimal; skipped = the method refused the size "
                 "(brute) or the objective; error = killed past its limit or crashed (see the CSV message).")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------- split rows (issue 13)
#: the split sweep: hybrid models of these sizes on 8 devices, both families, a third of the
#: heaviest blocks splittable ``ways: [1, 2, 4]`` (the generator's [2, 4] plus whole).
SPLIT_BLOCKS = (10, 30, 100)
SPLIT_FRACTION = 0.3
SPLIT_ROWS = RESULTS / "scaling_splits.csv"


def split_problem_files() -> list[Path]:
    import placement
    from placement.plan import write_json_atomic
    PROBLEMS.mkdir(parents=True, exist_ok=True)
    out = []
    for fam, (device_set, network) in FAMILIES.items():
        for b in SPLIT_BLOCKS:
            name = f"{synthetic_name(b, FIXED_DEVICES, fam)}-split"
            f = PROBLEMS / f"{name}.json"
            if not f.exists():
                spec = placement.generate("hybrid", b, FIXED_DEVICES, device_set=device_set,
                                          network=network, seed=0, split=SPLIT_FRACTION, name=name)
                for blk in spec["model"]["blocks"]:
                    if "split" in blk:
                        blk["split"]["ways"] = [1, 2, 4]
                placement.load(spec)
                write_json_atomic(f, spec)
            out.append(f)
    return out


def run_splits(methods: list[str] | None) -> None:
    """Every method on the split sweep, with split choices and with every block whole
    (``compare --splits choose,none``), in ``scaling_splits.csv`` (kept apart from the
    headline rows: two rows per problem and method); resumable."""
    import placement
    methods = methods or available_methods()
    files = split_problem_files()
    placement.compare([str(f) for f in files], ",".join(methods), time_limit=DEFAULT_LIMIT,
                      time_limits=TIME_LIMITS, splits="choose,none", results=SPLIT_ROWS,
                      resume=True, progress=sys.stderr.isatty())
    analyse_splits()


def analyse_splits() -> None:
    """``scaling_splits.md``: per problem and method, latency whole -> with choices, the gain,
    the solve time and the gap with choices."""
    from placement.comparator import ResultsFile
    rows = ResultsFile(SPLIT_ROWS).read()
    if not rows:
        return
    methods = [m for m in METHOD_STYLE if any(r["method"] == m for r in rows)]
    lines = ["| problem | " + " | ".join(methods) + " |", "| --- | " + " | ".join("---:" for _ in methods) + " |"]
    for pname in dict.fromkeys(r["problem"] for r in rows):
        cells = []
        for m in methods:
            c = next((r for r in rows if r["problem"] == pname and r["method"] == m and r["splits"] == "choose"), None)
            n = next((r for r in rows if r["problem"] == pname and r["method"] == m and r["splits"] == "none"), None)
            if c is None or n is None or c["value"] is None or n["value"] is None:
                cells.append((c or n or {}).get("status", "") or "")
                continue
            gap = "" if c.get("gap") is None else f", gap {c['gap']:.1%}"
            cells.append(f"{n['value'] * 1e3:.4g} -> {c['value'] * 1e3:.4g} ms (x{n['value'] / c['value']:.2f}, "
                         f"{c['solve_time_s']:.2g} s{gap})")
        lines.append(f"| {pname} | " + " | ".join(cells) + " |")
    lines += ["", "cell: latency with every block whole -> with split choices (gain, solve time with "
              "choices, gap to the bound over every choice). Methods without split_choice plan every split block at max(ways) in the "
              "second figure. `python benchmarks/scaling_study.py splits`"]
    (RESULTS / "scaling_splits.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


# ------------------------------------------------------------------------- gallery
#: (problem file, method, time limit) drawn as Gantt charts (problems whose best plan splits),
#: and (problem file, objectives) whose Pareto fronts are computed.
GALLERY_PLANS = (("examples/models/deit_tiny_patch16_224.block.json", "cpsat", 15.0),
                 ("examples/models/levit_128s.block.json", "cpsat", 15.0),
                 ("benchmarks/results/scaling_problems/iot-b100-d16.json", "cpsat", 15.0))
GALLERY_FRONTS = (("examples/models/deit_tiny_patch16_224.block.json", "latency,energy"),
                  ("examples/models/deit_tiny_patch16_224.block.json", "latency,throughput"),
                  ("benchmarks/results/scaling_problems/iot-b30-d8.json", "latency,energy"),
                  ("benchmarks/results/scaling_problems/iot-b30-d8.json", "latency,throughput,energy"))


def gallery() -> None:
    """Gantt pictures of good plans and Pareto fronts, for the README."""
    import placement
    from placement.pareto_front import pareto, plot_front
    from placement.plan import write_json_atomic
    prepare()
    have = set(available_methods())
    for rel, method, limit in GALLERY_PLANS:
        f = ROOT / rel
        if not f.exists():
            continue
        m = method if method in have else ("local" if "local" in have else "heft")
        plan = placement.solve(str(f), m, time_limit=limit)
        stem = RESULTS / f"gantt_{placement.load(f).name}"
        plan.save(f"{stem}.plan.json")
        for ext in (".png", ".html"):
            info = placement.show(str(f), plan, f"{stem}{ext}")
        print(f"wrote {stem}.png/.html ({m}, {plan.status.value}, latency "
              f"{plan.metrics['latency_s']:.4g} s): {info['bars']} bars, {info['transfers']} transfers")
    for rel, objectives in GALLERY_FRONTS:
        f = ROOT / rel
        if not f.exists():
            continue
        front = pareto(str(f), objectives, time_limit=60.0)  # a total limit for the whole front
        stem = RESULTS / f"pareto_{front['problem']}_{objectives.replace(',', '_')}"
        write_json_atomic(f"{stem}.json", front)
        plot_front(front, f"{stem}.png")
        print(f"wrote {stem}.json/.png: {len(front['points'])} points, {front['approach']}, "
              f"{front['solves']} solves, {front['solve_time_s']:.1f} s")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=("prepare", "run", "analyse", "all", "gallery", "splits"))
    ap.add_argument("--methods", help="comma list (default: every available method)")
    ap.add_argument("--sweeps", default="models,blocks,devices,blocks-iot,devices-iot,limits",
                    help="default models,blocks,devices,blocks-iot,devices-iot,limits")
    ap.add_argument("--redo", default="", help="comma list of statuses (or 'all') whose rows of the "
                    "chosen methods are run again, e.g. --redo error after a method's bug is fixed")
    ap.add_argument("--budget", type=float, default=None,
                    help="stop starting new solves after this many seconds (resume later)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    methods = [m for m in args.methods.split(",") if m] if args.methods else None
    sweeps = [s for s in args.sweeps.split(",") if s]
    if args.step in ("prepare", "all"):
        prepare()
    if args.step in ("run", "all"):
        run(methods, sweeps, args.budget, [x for x in args.redo.split(",") if x])
    if args.step in ("analyse", "all"):
        analyse()
    if args.step == "gallery":
        gallery()
    if args.step == "splits":      # issue 13: rows with and without split choices
        run_splits(methods)


if __name__ == "__main__":
    main()

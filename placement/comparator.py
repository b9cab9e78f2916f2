"""``placement compare``: run methods on problems and tabulate value, bound, gap and time.

One **row** per (problem, method, objective, seed). Every figure in a row comes from
`placement.solve` (so from the evaluator); the comparator adds only what needs every
method's row of the same problem:

- ``best_bound``: the largest lower bound any method proved for that (problem, objective);
  every bound is a valid lower bound, so the largest is the tightest;
- ``gap_best = (value - best_bound) / value``: how far from optimal at most, judged with
  everybody's proofs (``gap`` uses only the method's own bound);
- ``ratio_best = value / best value`` over the methods of that (problem, objective);
- ``gain_vs_whole``: with ``--splits`` (problems with split blocks, SPEC section 6), the
  same method's value with every block kept whole over the row's value (> 1: splitting
  pays). Each ``--splits`` mode (``choose``, ``max``, ``none``) is its own group for the
  columns above: a bound proved with the ways fixed is no bound when they are free.

Results file (``-o FILE``; CSV, or JSON Lines for ``.jsonl``, by the extension;
`placement.results`): the **whole file is rewritten atomically after every row**, so a
reader, a crash or a ``kill -9`` never leaves half a row, and the cross-row columns in the
file are always up to date. A path that exists and is not a results file of this tool is
never overwritten (exit 2 naming it); one that holds rows is added to only with
``--resume``, which skips every (problem, method, objective, time_limit, seed) already
there. A row cut by Ctrl-C is written as ``interrupted``, the study stops, and ``--resume``
runs that row again.

Executors (`placement.executors`): in this process (default), a process pool
(``--workers N``) or a Ray cluster (``--executor ray``). The command line is in
`placement.compare_cli`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import InputError, MethodError
from . import executors, results
from .method import TIME_LIMIT_MARGIN_FRACTION, TIME_LIMIT_MARGIN_S

#: the columns of a row, in file order, with their types (for reading a CSV back).
COLUMNS: dict[str, type] = {
    "problem": str, "file": str, "problem_sha": str, "method": str, "objective": str, "time_limit": float,
    "seed": int, "splits": str, "status": str, "value": float, "bound": float, "gap": float,
    "best_bound": float, "gap_best": float, "ratio_best": float, "split_ways": str,
    "gain_vs_whole": float, "solve_time_s": float,
    "wall_s": float, "within_limit": bool, "latency_s": float, "latency_max_s": float,
    "period_s": float,
    "throughput_per_s": float, "energy_j": float, "transfer_bytes": float,
    "devices_used": int, "n_blocks": int, "n_devices": int, "message": str,
}
#: what a results file's rows must have (its header is recognised by these columns).
KEY = ("problem", "method", "objective", "time_limit", "seed")
#: what identifies a row: ``--resume`` skips a task whose key is already in the file (a row
#: written before ``splits`` existed has "" there: the problem as it is).
ROW_KEY = KEY + ("splits",)
#: ``--splits`` modes (SPEC section 6): ``choose`` the problem as it is (methods that choose
#: the ways choose them, the others plan with max(ways)); ``max`` every split block fixed at
#: max(ways); ``none`` every split block kept whole (ways 1 where allowed, else its fewest).
SPLIT_MODES = ("choose", "max", "none")
#: statuses that carry a plan (Status.has_plan).
PLAN_STATUSES = ("optimal", "feasible", "time_limit")
#: a row for a method that does not support the task's objective or a feature of its problem.
UNSUPPORTED = "unsupported"
#: a row for a method that refused the task's problem (e.g. brute above its size limit).
SKIPPED = "skipped"
#: a row cut by Ctrl-C: written, and run again by ``--resume``.
INTERRUPTED = "interrupted"
#: |gap_best| below this is float noise and written as 0.
_EPS = 1e-9


def time_limit_margin(limit: float | None) -> float:
    """Seconds past ``limit`` a method may take (SPEC section 8; `placement.method`)."""
    return math.inf if limit is None else TIME_LIMIT_MARGIN_S + TIME_LIMIT_MARGIN_FRACTION * limit


def problem_sha(problem) -> str:
    """A short fingerprint of a problem's content (its validated, expanded spec): a row keeps
    it, so that ``--resume`` notices a problem file that changed since its rows were written."""
    import hashlib
    text = json.dumps(problem.spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def objective_key(objective: Any) -> str:
    """The objective as it is written in a row: a name, or sorted JSON weights."""
    if isinstance(objective, Mapping):
        return json.dumps({k: float(v) for k, v in sorted(objective.items())}, sort_keys=True)
    return str(objective)


def _objective_value(key: str) -> Any:
    return json.loads(key) if key.startswith("{") else key


# ------------------------------------------------------------------------------ tasks
@dataclass(frozen=True)
class Task:
    """One solve: picklable, so that a process pool or a Ray worker can run it."""

    problem: str                 # problem name (unique within a comparison)
    file: str                    # path it came from, "" for a dict / Problem
    source: Any                  # the validated problem dict (spec) or a Problem (in-process)
    method: str
    objective: str               # objective_key
    time_limit: float | None
    seed: int
    options: tuple[tuple[str, Any], ...] = ()
    sha: str = ""
    #: "" for a problem without split blocks, else one of `SPLIT_MODES`
    splits: str = ""

    @property
    def key(self) -> tuple:
        return (self.problem, self.method, self.objective, _tl(self.time_limit), int(self.seed),
                self.splits)


def _tl(x: Any) -> float | None:
    return None if x is None or x == "" else float(x)


def run_task(task: Task) -> dict[str, Any]:
    """Solve one task and return its row (without the cross-row columns).

    Never raises for a method's failure: an unsupported objective or a size the method
    refuses gives a ``skipped`` row, a crash an ``error`` row, each with the reason.
    """
    from . import api
    from .loader import load

    t0 = time.perf_counter()
    row: dict[str, Any] = {k: None for k in COLUMNS}
    row.update(problem=task.problem, file=task.file, problem_sha=task.sha, method=task.method,
               objective=task.objective, time_limit=_tl(task.time_limit), seed=int(task.seed), message="",
               splits=task.splits)
    try:
        problem = load(task.source)
        row.update(n_blocks=problem.n_blocks, n_devices=problem.n_devices)
        plan = api.solve(problem, task.method, objective=_objective_value(task.objective),
                         time_limit=task.time_limit, seed=task.seed, **dict(task.options))
    except KeyboardInterrupt:
        row.update(status=INTERRUPTED, message="interrupted (Ctrl-C)", wall_s=time.perf_counter() - t0)
        return row
    except MethodError as exc:          # objective or problem feature not supported
        row.update(status=UNSUPPORTED, message=str(exc), wall_s=time.perf_counter() - t0)
        return row
    except InputError as exc:           # e.g. brute refusing a problem above its size
        row.update(status=SKIPPED, message=str(exc), wall_s=time.perf_counter() - t0)
        return row
    except Exception as exc:            # a bug somewhere: an honest error row, the study goes on
        row.update(status="error", message=f"{type(exc).__name__}: {exc}",
                   wall_s=time.perf_counter() - t0)
        return row
    m = plan.metrics or {}
    row.update(
        status=plan.status.value, value=plan.value if plan.feasible else None,
        bound=plan.bound, gap=plan.gap if plan.feasible else None,
        solve_time_s=plan.solve_time_s, wall_s=time.perf_counter() - t0,
        within_limit=(plan.solve_time_s <= (task.time_limit or 0) + time_limit_margin(task.time_limit)
                      if task.time_limit is not None else True),
        latency_s=m.get("latency_s") if plan.feasible else None,
        # scenarios (SPEC 10): latency_s is the expectation, latency_max_s the worst scenario;
        # a problem without scenarios is one scenario, so the two are equal
        latency_max_s=m.get("latency_max_s", m.get("latency_s")) if plan.feasible else None,
        period_s=m.get("period_s") if plan.feasible else None,
        throughput_per_s=m.get("throughput_per_s") if plan.feasible else None,
        energy_j=m.get("energy_j") if plan.feasible else None,
        transfer_bytes=m.get("transfer_bytes") if plan.feasible else None,
        devices_used=len(set(plan.assignment.values())) if plan.feasible else None,
        split_ways=_ways_text(getattr(plan, "split", None)) if plan.feasible else "",
        message=(plan.message or "").splitlines()[0][:300] if plan.message else "")
    if "interrupted" in (plan.message or ""):
        row["status"] = INTERRUPTED
    for k in ("value", "bound", "gap", "latency_s", "latency_max_s", "period_s", "throughput_per_s", "energy_j"):
        if isinstance(row[k], float) and not math.isfinite(row[k]):
            row[k] = None
    return row


def _ways_text(split: Mapping[str, int] | None) -> str:
    """A plan's split choice as one cell: ``"a:2 b:1"`` ("" without split blocks)."""
    return " ".join(f"{b}:{w}" for b, w in (split or {}).items())


def restrict_splits(raw: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """A copy of the problem dict ``raw`` (its file form) whose split blocks offer one way
    only: ``max`` their largest, ``none`` ``1`` where allowed (else their fewest); ``choose``
    the dict unchanged. A split with only ``ways: [1]`` is what ``none`` means: whole."""
    if mode not in SPLIT_MODES:
        raise InputError(f"--splits: expected {', '.join(SPLIT_MODES)} or all, found '{mode}'")
    out = json.loads(json.dumps(raw))
    if mode == "choose":
        return out
    for blk in (out.get("model") or {}).get("blocks") or ():
        split = blk.get("split") if isinstance(blk, dict) else None
        if not isinstance(split, dict) or "ways" not in split:
            continue
        ways = split["ways"] if isinstance(split["ways"], list) else [split["ways"]]
        if not ways:
            continue
        split["ways"] = [max(ways)] if mode == "max" else [1 if 1 in ways else min(ways)]
    return out


def _split_modes(value: Any) -> list[str]:
    """``"choose"``, ``"max"``, ``"none"``, a comma list of them, or ``"all"`` (the three)."""
    items = _parse_list(value, "splits") if value is not None else ["choose"]
    if any(x.lower() == "all" for x in items):
        return list(SPLIT_MODES)
    out = []
    for x in items:
        if x.lower() not in SPLIT_MODES:
            raise InputError(f"--splits: expected {', '.join(SPLIT_MODES)} or all, found '{x}'")
        if x.lower() not in out:
            out.append(x.lower())
    return out


def _has_split_blocks(p) -> bool:
    return bool(getattr(p, "split_options", None)) or any(
        b.origin is not None for b in p.blocks)


# ------------------------------------------------------------------ cross-row columns
def _group(row: Mapping[str, Any]) -> tuple:
    # a bound proved with one --splits mode is not a bound of another (fixing the ways
    # removes plans), and ratio_best compares plans of one problem: one group per mode
    return (row["problem"], row["objective"], row.get("splits") or "")


def finish_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill ``best_bound``, ``gap_best`` and ``ratio_best`` of every row from all the rows of
    its (problem, objective). Returns new dicts; the inputs are not changed."""
    best_bound: dict[tuple, float] = {}
    best_value: dict[tuple, float] = {}
    for r in rows:
        g = _group(r)
        if isinstance(r.get("bound"), (int, float)) and math.isfinite(r["bound"]):
            best_bound[g] = max(best_bound.get(g, -math.inf), float(r["bound"]))
        if r.get("status") in PLAN_STATUSES and isinstance(r.get("value"), (int, float)):
            best_value[g] = min(best_value.get(g, math.inf), float(r["value"]))
    out = []
    for r in rows:
        r = dict(r)
        g = _group(r)
        bb = best_bound.get(g)
        r["best_bound"] = bb
        v = r.get("value") if r.get("status") in PLAN_STATUSES else None
        if v is None or bb is None:
            r["gap_best"] = None
        elif v > 0:
            gb = (v - bb) / v
            # a negative gap means some method's "bound" is above another's plan: a bug we show
            r["gap_best"] = 0.0 if abs(gb) < _EPS else gb
        else:
            r["gap_best"] = 0.0
        bv = best_value.get(g)
        r["ratio_best"] = (v / bv if bv and bv > 0 else (1.0 if v == bv else None)) if v is not None else None
        out.append(r)
    # gain_vs_whole: the same method's value with every block whole over this row's value
    def same_task(r):
        return (r["problem"], r.get("method"), r["objective"], _tl(r.get("time_limit")), r.get("seed"))
    whole = {same_task(r): r.get("value") for r in out
             if r.get("splits") == "none" and r.get("status") in PLAN_STATUSES}
    for r in out:
        w = whole.get(same_task(r))
        v = r.get("value") if r.get("status") in PLAN_STATUSES else None
        r["gain_vs_whole"] = (w / v if v else None) if (w is not None and v is not None
                                                         and r.get("splits") != "none") else None
    return out


def sort_rows(rows: Sequence[dict[str, Any]], problems: Sequence[str] = (),
              methods: Sequence[str] = (), objectives: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows in (problem, objective, method, seed) order, each in the order given (then by name)."""
    p_rank = {p: i for i, p in enumerate(problems)}
    m_rank = {m: i for i, m in enumerate(methods)}
    o_rank = {o: i for i, o in enumerate(objectives)}
    s_rank = {s: i for i, s in enumerate(("",) + SPLIT_MODES)}
    return sorted(rows, key=lambda r: (p_rank.get(r["problem"], len(p_rank)), r["problem"],
                                       o_rank.get(r["objective"], len(o_rank)), r["objective"],
                                       m_rank.get(r["method"], len(m_rank)),
                                       r["method"], s_rank.get(r.get("splits") or "", len(s_rank)),
                                       r["time_limit"] or 0.0, r["seed"]))


# ------------------------------------------------------------------------- the file
class ResultsFile(results.ResultsFile):
    """The comparator's results file: `COLUMNS`, keyed by `KEY`."""

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__(path, COLUMNS, KEY)


def _error_row(task: Task, message: str) -> dict[str, Any]:
    row: dict[str, Any] = {k: None for k in COLUMNS}
    row.update(problem=task.problem, file=task.file, problem_sha=task.sha, method=task.method,
               objective=task.objective, time_limit=_tl(task.time_limit), seed=task.seed,
               status="error", message=message, splits=task.splits)
    return row


# ------------------------------------------------------------------------------- API
def _load_problems(problems: Iterable[Any]) -> list[tuple[str, str, Any, Any]]:
    """(name, file, Problem, raw dict or None) for each input; names must be unique (they key
    the rows). The raw dict is what a process pool or a Ray worker loads (a `Problem` does
    not pickle, and its split-expanded ``spec`` is not a loadable file)."""
    from .loader import load, read_json
    out, seen = [], {}
    for src in problems:
        p = load(src)
        is_path = isinstance(src, (str, os.PathLike)) and not str(src).lstrip().startswith("{")
        file = str(src) if is_path else (p.path or "")
        if isinstance(src, Mapping):
            raw = json.loads(json.dumps(src))
        elif is_path or p.path:
            raw = read_json(file, what="problem")
        elif isinstance(src, str):
            raw = json.loads(src)
        else:
            raw = None
        if p.name in seen:
            raise InputError(f"problem names must be unique in a comparison: '{p.name}' is the name of "
                             f"both {seen[p.name] or 'a dict'} and {file or 'a dict'}")
        seen[p.name] = file
        out.append((p.name, file, p, raw))
    return out


def _parse_list(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        items = [x.strip() for x in value.split(",") if x.strip()]
    else:
        items = [str(x) for x in value]
    if not items:
        raise InputError(f"{what}: expected at least one name")
    return items


def _objectives(objective: Any) -> list[Any]:
    """None (each problem's own), a name, a weights dict, or a list of those / "a,b"."""
    if objective is None:
        return [None]
    if isinstance(objective, Mapping):
        return [dict(objective)]
    if isinstance(objective, str):
        if objective.lstrip().startswith("{"):
            from .cli import _objective_arg
            return [_objective_arg(objective)]
        objective = [x.strip() for x in objective.split(",") if x.strip()]
    out = []
    for o in objective:
        if isinstance(o, str) and o not in ("latency", "throughput", "energy"):
            raise InputError(f"objective: expected latency, throughput, energy or weights, found '{o}'")
        out.append(o)
    return out or [None]


def compare(problems: Any, methods: Any, *, time_limit: float | None = 60.0,
            objective: Any = None, seeds: Sequence[int] | int = (0,), workers: int = 1,
            executor: str = "local", address: str | None = None,
            results: str | os.PathLike[str] | None = None, resume: bool | str | os.PathLike[str] = False,
            options: Mapping[str, Mapping[str, Any]] | None = None,
            time_limits: Mapping[str, float] | None = None,
            on_row: Callable[[dict[str, Any]], None] | None = None,
            progress: bool = False, splits: Any = "choose") -> list[dict[str, Any]]:
    """Run every method on every problem and return one row per (problem, method, objective, seed).

    ``problems``: paths, dicts or `Problem`s (or one of them); ``methods``: names or "a,b,c"
    (each must be registered and available). ``time_limit``: wall-clock seconds per solve
    (``time_limits`` overrides it per method). ``objective``: None (each problem's own), a name,
    weights, or a list / "latency,energy" for several. ``results``: a ``.csv``/``.jsonl`` file
    rewritten atomically after every row; ``resume=True`` (or a path, which then is the
    results file) first reads it and skips the rows already there. ``options``: per-method
    options, ``{"milp": {"backend": "highs"}}``. ``workers`` > 1: a process pool;
    ``executor="ray"``: a Ray cluster at ``address`` ("auto", "local", "ray://host:port").
    ``splits`` (SPEC section 6; `SPLIT_MODES`): for problems with split blocks, ``"choose"``
    (default: the problem as it is), ``"max"`` (ways fixed at max), ``"none"`` (blocks kept
    whole), a list / ``"choose,none"`` of them, or ``"all"``: one row per mode, in column
    ``splits``; ``gain_vs_whole`` is then the ``none`` row's value over the row's value.

    Rows are returned sorted (problem order, objective, method order, seed), with the
    cross-row columns ``best_bound``, ``gap_best`` and ``ratio_best`` filled in. Row values
    come from the evaluator; ``solve_time_s`` is the method's wall time, ``wall_s`` adds loading.
    """
    from .loader import load
    from .registry import get_method

    if isinstance(problems, (str, os.PathLike, Mapping)) or not isinstance(problems, Iterable):
        problems = [problems]
    loaded = _load_problems(problems)
    if not loaded:
        raise InputError("problems: expected at least one problem file")
    names = _parse_list(methods, "methods")
    for n in names:
        get_method(n)  # unknown or unavailable: a MethodError listing the valid ones
    seeds = [int(seeds)] if isinstance(seeds, int) else [int(s) for s in seeds]
    if time_limit is not None and (not math.isfinite(time_limit) or time_limit < 0):
        raise InputError(f"time_limit: expected a number of seconds >= 0, found {time_limit}")
    if workers < 1:
        raise InputError(f"workers: expected at least 1, found {workers}")
    if executor not in ("local", "ray"):
        raise InputError(f"executor: expected local or ray, found '{executor}'")
    options = {k: dict(v) for k, v in (options or {}).items()}
    time_limits = dict(time_limits or {})
    modes = _split_modes(splits)

    if resume not in (False, None, True) and results is None:
        results = resume
    if resume and results is None:
        raise InputError("resume: needs a results file (results=... or resume=PATH)")
    if results is not None:
        target = Path(results).resolve()
        if any(f and Path(f).resolve() == target for _, f, _, _ in loaded):
            raise InputError(f"{results}: the results file is also a problem file; refusing to "
                             "overwrite it: give the results another name")
    store = ResultsFile(results) if results is not None else None
    warn = (lambda msg: print(f"placement compare: warning: {msg}", file=sys.stderr))
    rows: list[dict[str, Any]] = []
    if store is not None:
        store.check_writable()  # a folder, a foreign file, an unwritable place: before any solve
        rows = store.read(warn)
        if rows and not resume:
            raise InputError(f"{store.path}: already holds {len(rows)} row{'s' if len(rows) != 1 else ''}; "
                             "pass --resume to add to them, or give a new file")
        cut = [r for r in rows if r["status"] == INTERRUPTED]
        if cut:
            rows = [r for r in rows if r["status"] != INTERRUPTED]  # run again
    file_order = [r["problem"] for r in rows]
    if rows:
        # a problem whose content changed since its rows were written: those rows are stale
        shas = {name: problem_sha(p) for name, _, p, _ in loaded}
        stale = [r for r in rows if r["problem"] in shas and r.get("problem_sha")
                 and r["problem_sha"] != shas[r["problem"]]]
        if stale:
            names_stale = sorted({r["problem"] for r in stale})
            n = len(stale)
            warn(f"{', '.join(names_stale)} changed since {n} row{'s' if n != 1 else ''} "
                 f"{'was' if n == 1 else 'were'} written: {'it is' if n == 1 else 'they are'} "
                 "dropped and run again")
            rows = [r for r in rows if r not in stale]
    done = {(r["problem"], r["method"], r["objective"], _tl(r["time_limit"]), r["seed"],
             r.get("splits") or "") for r in rows}

    tasks: list[Task] = []
    order_o: list[str] = []
    for name, file, p, raw in loaded:
        sha = problem_sha(p)
        if raw is None and not (workers == 1 and executor == "local"):
            raise InputError(f"problem '{name}': a Problem object without a file runs only in-process "
                             "(workers=1); pass its path or its dict to use a pool or Ray")
        # (mode, in-process source, plain dict) per --splits mode; one "" entry without split blocks
        variants: list[tuple[str, Any, Any]] = [("", p, raw)]
        if _has_split_blocks(p):
            variants = []
            for mode in modes:
                if mode == "choose":
                    variants.append((mode, p, raw))
                    continue
                if raw is None:
                    raise InputError(f"problem '{name}': --splits {mode} needs the problem's file or "
                                     "dict (a Problem object is already expanded)")
                fixed = restrict_splits(raw, mode)
                variants.append((mode, load(fixed) if (workers == 1 and executor == "local") else None,
                                 fixed))
        for obj in _objectives(objective):
            okey = objective_key(p.objective.to_json() if obj is None else obj)
            if okey not in order_o:
                order_o.append(okey)
            for m in names:
                limit = time_limits.get(m, time_limit)
                for mode, local_src, plain in variants:
                    for s in seeds:
                        # in-process we pass the Problem itself; a pool or Ray gets the plain dict
                        src = local_src if (workers == 1 and executor == "local") else plain
                        t = Task(name, file, src, m, okey, limit, s,
                                 tuple(sorted(options.get(m, {}).items())), sha, mode)
                        if t.key not in done:
                            tasks.append(t)
                            done.add(t.key)

    stream = executors.stream(tasks, run_task, executor=executor, workers=workers, address=address,
                              error_row=_error_row)

    # file order: what the file already had (its order), then the new problems / methods
    order_p = list(dict.fromkeys(file_order + [n for n, _, _, _ in loaded]))
    names = list(dict.fromkeys([r["method"] for r in rows] + names))
    order_o = list(dict.fromkeys([r["objective"] for r in rows] + order_o))

    def add(row: dict[str, Any]) -> None:
        rows.append(row)
        if store is not None:
            store.write(sort_rows(finish_rows(rows), order_p, names, order_o))
        if on_row is not None:
            on_row(row)
        if row["status"] == INTERRUPTED:
            # the row is saved as interrupted; --resume runs it again
            raise KeyboardInterrupt

    if progress and tasks:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)
        from rich.console import Console
        with Progress(TextColumn("[bold]compare"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("{task.description}"),
                      console=Console(stderr=True), transient=True) as bar:
            tid = bar.add_task("", total=len(tasks))
            for t, row in stream:
                add(row)
                bar.update(tid, advance=1, description=f"{t.problem} · {t.method}: {row['status']}")
    else:
        for _, row in stream:
            add(row)
    if store is not None and not tasks and rows:
        store.write(sort_rows(finish_rows(rows), order_p, names, order_o))
    return sort_rows(finish_rows(rows), order_p, names, order_o)


def no_plan_problems(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Problems for which no method found any plan (exit code 3)."""
    has = {}
    for r in rows:
        has[r["problem"]] = has.get(r["problem"], False) or r["status"] in PLAN_STATUSES
    return [p for p, ok in has.items() if not ok]



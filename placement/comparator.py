"""``placement compare``: run methods on problems and tabulate value, bound, gap and time.

One **row** per (problem, method, objective, seed). Every figure in a row comes from
`placement.solve` (so from the evaluator); the comparator adds only what needs every
method's row of the same problem:

- ``best_bound``: the largest lower bound any method proved for that (problem, objective);
  every bound is a valid lower bound, so the largest is the tightest;
- ``gap_best = (value - best_bound) / value``: how far from optimal at most, judged with
  everybody's proofs (``gap`` uses only the method's own bound);
- ``ratio_best = value / best value`` over the methods of that (problem, objective).

Results file (``--csv FILE``, ``--json FILE``, ``--resume FILE``; CSV or JSON Lines by the
file's extension): the **whole file is rewritten atomically after every row** (temporary
file beside it, fsync, ``os.replace``), so a reader, a crash or a ``kill -9`` never leaves
half a row, and the cross-row columns (``best_bound``, ``gap_best``, ``ratio_best``) in the
file are always up to date. ``--resume FILE`` reads the rows already there and skips every
(problem, method, objective, time_limit, seed) they cover; a file written by another tool
with a torn last line is tolerated (that line is dropped with a warning).

Executors: ``--workers 1`` (default) runs in this process, one solve at a time, so that a
time limit measures the method and not a neighbour; ``--workers N`` uses a local
``ProcessPoolExecutor``; ``--executor ray --address auto|local|ray://host:port`` runs the
same tasks on a Ray cluster (the ``cluster`` extra; Ray is imported only on that path).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from .errors import InputError, MethodError
from .method import TIME_LIMIT_MARGIN_FRACTION, TIME_LIMIT_MARGIN_S

#: the columns of a row, in file order, with their types (for reading a CSV back).
COLUMNS: dict[str, type] = {
    "problem": str, "file": str, "problem_sha": str, "method": str, "objective": str, "time_limit": float,
    "seed": int, "status": str, "value": float, "bound": float, "gap": float,
    "best_bound": float, "gap_best": float, "ratio_best": float, "solve_time_s": float,
    "wall_s": float, "within_limit": bool, "latency_s": float, "period_s": float,
    "throughput_per_s": float, "energy_j": float, "transfer_bytes": float,
    "devices_used": int, "n_blocks": int, "n_devices": int, "message": str,
}
#: what identifies a row: ``--resume`` skips a task whose key is already in the file.
KEY = ("problem", "method", "objective", "time_limit", "seed")
#: statuses that carry a plan (Status.has_plan).
PLAN_STATUSES = ("optimal", "feasible", "time_limit")
#: a row for a method that cannot run that task (objective not supported, size refused).
SKIPPED = "skipped"
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

    @property
    def key(self) -> tuple:
        return (self.problem, self.method, self.objective, _tl(self.time_limit), int(self.seed))


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
               objective=task.objective, time_limit=_tl(task.time_limit), seed=int(task.seed), message="")
    try:
        problem = load(task.source)
        row.update(n_blocks=problem.n_blocks, n_devices=problem.n_devices)
        plan = api.solve(problem, task.method, objective=_objective_value(task.objective),
                         time_limit=task.time_limit, seed=task.seed, **dict(task.options))
    except MethodError as exc:          # objective not supported, unknown option
        row.update(status=SKIPPED, message=str(exc), wall_s=time.perf_counter() - t0)
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
        period_s=m.get("period_s") if plan.feasible else None,
        throughput_per_s=m.get("throughput_per_s") if plan.feasible else None,
        energy_j=m.get("energy_j") if plan.feasible else None,
        transfer_bytes=m.get("transfer_bytes") if plan.feasible else None,
        devices_used=len(set(plan.assignment.values())) if plan.feasible else None,
        message=(plan.message or "").splitlines()[0][:300] if plan.message else "")
    for k in ("value", "bound", "gap", "latency_s", "period_s", "throughput_per_s", "energy_j"):
        if isinstance(row[k], float) and not math.isfinite(row[k]):
            row[k] = None
    return row


# ------------------------------------------------------------------ cross-row columns
def _group(row: Mapping[str, Any]) -> tuple:
    return (row["problem"], row["objective"])


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
    return out


def sort_rows(rows: Sequence[dict[str, Any]], problems: Sequence[str] = (),
              methods: Sequence[str] = (), objectives: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows in (problem, objective, method, seed) order, each in the order given (then by name)."""
    p_rank = {p: i for i, p in enumerate(problems)}
    m_rank = {m: i for i, m in enumerate(methods)}
    o_rank = {o: i for i, o in enumerate(objectives)}
    return sorted(rows, key=lambda r: (p_rank.get(r["problem"], len(p_rank)), r["problem"],
                                       o_rank.get(r["objective"], len(o_rank)), r["objective"],
                                       m_rank.get(r["method"], len(m_rank)),
                                       r["method"], r["time_limit"] or 0.0, r["seed"]))


# ------------------------------------------------------------------------- the file
class ResultsFile:
    """A results file (``.csv``, or JSON Lines for ``.jsonl``/``.json``), rewritten atomically
    with every row. See the module docstring for why rewriting rather than appending."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".csv", ".jsonl", ".json", ".ndjson"):
            raise InputError(f"{path}: expected a results file ending in .csv or .jsonl, found '{suffix or 'no extension'}'")
        self.format = "csv" if suffix == ".csv" else "jsonl"

    def read(self, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
        """The rows already in the file ([] when it does not exist). A torn or malformed line
        (left by an appending writer that was killed) is dropped, with a warning."""
        self._clean_stale_temporaries()
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        rows, dropped = [], 0
        if self.format == "jsonl":
            for line in text.splitlines():
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    if not isinstance(raw, dict):
                        raise ValueError("not an object")
                    rows.append(_typed(raw))
                except (ValueError, KeyError):
                    dropped += 1
        else:
            complete = text if text.endswith("\n") or not text else text[: text.rfind("\n") + 1]
            dropped += text != complete
            reader = csv.DictReader(io.StringIO(complete))
            missing = [k for k in KEY if k not in (reader.fieldnames or [])]
            if reader.fieldnames and missing:
                raise InputError(f"{self.path}: expected a results file with columns {', '.join(KEY)}, "
                                 f"missing {', '.join(missing)}")
            for raw in reader:
                if None in raw or any(raw.get(k) in (None, "") for k in ("problem", "method")):
                    dropped += 1
                    continue
                try:
                    rows.append(_typed(raw))
                except (ValueError, KeyError):
                    dropped += 1
        if dropped and warn:
            warn(f"{self.path}: dropped {dropped} incomplete line(s)")
        return rows

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        from .plan import write_text_atomic
        if self.format == "jsonl":
            text = "".join(json.dumps({k: _jsonable(r.get(k)) for k in COLUMNS}) + "\n" for r in rows)
        else:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
            w.writeheader()
            for r in rows:
                w.writerow({k: _csv_cell(r.get(k)) for k in COLUMNS})
            text = buf.getvalue()
        write_text_atomic(self.path, text)

    def _clean_stale_temporaries(self) -> None:
        # write_text_atomic's temporaries are ".<name>.<random>.tmp"; a kill -9 can leave one
        if self.path.parent.is_dir():
            for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                try:
                    tmp.unlink()
                except OSError:
                    pass


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _csv_cell(x: Any) -> Any:
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x) if math.isfinite(x) else ""
    return x


def _typed(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A row read back from a file, with the types of `COLUMNS` (floats round-trip exactly)."""
    out: dict[str, Any] = {}
    for k, t in COLUMNS.items():
        x = raw.get(k)
        if x is None or x == "":
            out[k] = "" if t is str and k in ("file", "message") else None
        elif t is bool:
            out[k] = x if isinstance(x, bool) else str(x).lower() == "true"
        elif t is str:
            out[k] = str(x)
        else:
            out[k] = t(float(x)) if t is int else float(x)
    for k in ("problem", "method", "objective", "status"):
        if not out.get(k):
            raise KeyError(k)
    return out


# -------------------------------------------------------------------------- executors
def _iter_local(tasks: Sequence[Task]) -> Iterator[tuple[Task, dict]]:
    for t in tasks:
        yield t, run_task(t)


def _iter_pool(tasks: Sequence[Task], workers: int) -> Iterator[tuple[Task, dict]]:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_task, t): t for t in tasks}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        finally:
            for f in futures:
                f.cancel()


def _iter_ray(tasks: Sequence[Task], address: str | None) -> Iterator[tuple[Task, dict]]:
    try:
        import ray  # the ``cluster`` extra; imported only here
    except ImportError as exc:
        raise InputError(f"--executor ray: Ray is not installed ({exc}); install the cluster extra: "
                         "pip install 'placement[cluster]'") from None
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address in (None, "", "local"):
            ray.init(**kwargs)
        else:
            ray.init(address=address, **kwargs)
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        pending = {remote.remote(t): t for t in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                t = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as exc:  # a worker died: an error row, the study goes on
                    row = {k: None for k in COLUMNS}
                    row.update(problem=t.problem, file=t.file, problem_sha=t.sha, method=t.method,
                               objective=t.objective,
                               time_limit=_tl(t.time_limit), seed=t.seed, status="error",
                               message=f"ray: {type(exc).__name__}: {exc}"[:300])
                yield t, row
    finally:
        if started_here:
            ray.shutdown()


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
            progress: bool = False) -> list[dict[str, Any]]:
    """Run every method on every problem and return one row per (problem, method, objective, seed).

    ``problems``: paths, dicts or `Problem`s (or one of them); ``methods``: names or "a,b,c"
    (each must be registered and available). ``time_limit``: wall-clock seconds per solve
    (``time_limits`` overrides it per method). ``objective``: None (each problem's own), a name,
    weights, or a list / "latency,energy" for several. ``results``: a ``.csv``/``.jsonl`` file
    rewritten atomically after every row; ``resume=True`` (or a path, which then is the
    results file) first reads it and skips the rows already there. ``options``: per-method
    options, ``{"milp": {"backend": "highs"}}``. ``workers`` > 1: a process pool;
    ``executor="ray"``: a Ray cluster at ``address`` ("auto", "local", "ray://host:port").

    Rows are returned sorted (problem order, objective, method order, seed), with the
    cross-row columns ``best_bound``, ``gap_best`` and ``ratio_best`` filled in. Row values
    come from the evaluator; ``solve_time_s`` is the method's wall time, ``wall_s`` adds loading.
    """
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

    if resume not in (False, None, True) and results is None:
        results = resume
    store = ResultsFile(results) if results is not None else None
    if resume and store is None:
        raise InputError("resume: needs a results file (results=... or resume=PATH)")
    if store is not None:
        target = store.path.resolve()
        clash = [f for _, f, _, _ in loaded if f and Path(f).resolve() == target]
        if clash:
            raise InputError(f"results file {store.path} is also a problem file: give the results another "
                             "name (with --json, put FILE right after it: --json rows.jsonl)")
    warn = (lambda msg: print(f"placement compare: warning: {msg}", file=sys.stderr))
    rows: list[dict[str, Any]] = store.read(warn) if (store is not None and resume) else []
    file_order = [r["problem"] for r in rows]
    if rows:
        # a problem whose content changed since its rows were written: those rows are stale
        shas = {name: problem_sha(p) for name, _, p, _ in loaded}
        stale = [r for r in rows if r["problem"] in shas and r.get("problem_sha")
                 and r["problem_sha"] != shas[r["problem"]]]
        if stale:
            names_stale = sorted({r["problem"] for r in stale})
            warn(f"{', '.join(names_stale)} changed since {len(stale)} row(s) were written: "
                 "those rows are dropped and run again")
            rows = [r for r in rows if r not in stale]
    done = {(r["problem"], r["method"], r["objective"], _tl(r["time_limit"]), r["seed"]) for r in rows}

    tasks: list[Task] = []
    order_o: list[str] = []
    for name, file, p, raw in loaded:
        sha = problem_sha(p)
        if raw is None and not (workers == 1 and executor == "local"):
            raise InputError(f"problem '{name}': a Problem object without a file runs only in-process "
                             "(workers=1); pass its path or its dict to use a pool or Ray")
        for obj in _objectives(objective):
            okey = objective_key(p.objective.to_json() if obj is None else obj)
            if okey not in order_o:
                order_o.append(okey)
            for m in names:
                limit = time_limits.get(m, time_limit)
                for s in seeds:
                    # in-process we pass the Problem itself; a pool or Ray gets the plain dict
                    src = p if (workers == 1 and executor == "local") else raw
                    t = Task(name, file, src, m, okey, limit, s, tuple(sorted(options.get(m, {}).items())), sha)
                    if t.key not in done:
                        tasks.append(t)
                        done.add(t.key)

    if executor == "ray":
        stream = _iter_ray(tasks, address)
    elif workers > 1:
        stream = _iter_pool(tasks, workers)
    else:
        stream = _iter_local(tasks)

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


# ------------------------------------------------------------------------------- CLI
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("problems", nargs="+", metavar="PROBLEM", help="problem files (JSON)")
    p.add_argument("-m", "--methods", required=True,
                   help="comma-separated method names (see 'placement methods')")
    p.add_argument("-t", "--time-limit", type=float, default=60.0,
                   help="wall-clock limit per solve, seconds (default 60)")
    p.add_argument("--objective", help="latency, throughput, energy, JSON weights, or a comma list "
                   "of names for several (default: each problem's own)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--option", action="append", metavar="METHOD.KEY=VALUE",
                   help="a method option, e.g. --option milp.backend=highs (repeatable)")
    p.add_argument("-w", "--workers", type=int, default=1,
                   help="parallel solves (default 1: in this process, honest time limits)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local process pool (default) or a Ray cluster (cluster extra)")
    p.add_argument("--address", default=None,
                   help="Ray address: auto, local (start one here), or ray://host:port")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", nargs="?", const="-", metavar="FILE",
                     help="results as JSON Lines in FILE (rewritten atomically per row); "
                     "without FILE: print the rows as JSON on stdout at the end")
    out.add_argument("--csv", metavar="FILE", help="results as CSV in FILE (rewritten atomically per row)")
    p.add_argument("--resume", metavar="FILE",
                   help="skip the rows already in FILE and add the new ones to it")


def _cli_options(pairs: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs or ():
        if "=" not in pair or "." not in pair.split("=", 1)[0]:
            raise InputError(f"--option: expected METHOD.KEY=VALUE, found '{pair}'")
        key, value = pair.split("=", 1)
        method, name = key.split(".", 1)
        try:
            out.setdefault(method, {})[name] = json.loads(value)
        except json.JSONDecodeError:
            out.setdefault(method, {})[name] = value
    return out


def run(args: argparse.Namespace) -> int:
    from .cli import EXIT_NO_PLAN, EXIT_OK
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds: expected comma-separated integers, found '{args.seeds}'") from None
    stdout_json = args.json == "-"
    results = args.csv or (args.json if args.json not in (None, "-") else None)
    if args.resume and results and Path(results).resolve() != Path(args.resume).resolve():
        raise InputError("--resume FILE is the results file too: give either --resume or --csv/--json FILE, "
                         "or the same file to both")
    rows = compare(args.problems, args.methods, time_limit=args.time_limit, objective=args.objective,
                   seeds=seeds, workers=args.workers, executor=args.executor, address=args.address,
                   results=results or args.resume, resume=bool(args.resume),
                   options=_cli_options(args.option), progress=not stdout_json)
    if stdout_json:
        print(json.dumps([{k: _jsonable(r[k]) for k in COLUMNS} for r in rows], indent=2))
    else:
        from .report import console
        console().print(table(rows))
        if results or args.resume:
            console().print(f"{len(rows)} rows in {results or args.resume}")
    missing = no_plan_problems(rows)
    if missing:
        print(f"placement compare: no method found a plan for {', '.join(missing)}", file=sys.stderr)
        return EXIT_NO_PLAN
    return EXIT_OK


def table(rows: Sequence[Mapping[str, Any]], title: str = "placement compare"):
    """A rich table of rows: value, bound, gaps, ratio to the best, time, metrics."""
    from rich.table import Table
    from .report import _STATUS_STYLE
    from .plan import Status

    from rich import box
    t = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)

    def fmt(x: Any) -> str:
        return "-" if x is None else f"{x:.3g}"

    for col, just in (("problem", "left"), ("obj", "left"), ("method", "left"), ("status", "left"),
                      ("value", "right"), ("bound", "right"), ("gap", "right"), ("gap*", "right"),
                      ("×best", "right"), ("time s", "right")):
        if col == "problem":  # on a narrow terminal, shorten the name rather than fold it
            t.add_column(col, justify=just, overflow="ellipsis", no_wrap=True, min_width=12)
        else:
            t.add_column(col, justify=just, overflow="fold", no_wrap=True)
    t.caption_justify = "left"
    t.caption = ("gap: own bound · gap*: best bound of any method\n×best: value / best value · !: past limit + margin")
    def pct(x: Any) -> str:
        if x is None:
            return "-"
        return f"[red]{100 * x:.1f}%[/]" if x < 0 else f"{100 * x:.1f}%"

    for r in rows:
        try:
            style = _STATUS_STYLE.get(Status(r["status"]), "")
        except ValueError:
            style = "dim"
        status = f"[{style}]{r['status']}[/]" if style else r["status"]
        limit_ok = r.get("within_limit")
        st = r.get("solve_time_s")
        tm = ("-" if st is None else f"{st:.2f}") + ("" if limit_ok in (None, True) else " [red]![/]")
        t.add_row(r["problem"], r["objective"], r["method"], status, fmt(r.get("value")),
                  fmt(r.get("bound")), pct(r.get("gap")), pct(r.get("gap_best")),
                  "-" if r.get("ratio_best") is None else f"{r['ratio_best']:.3f}",
                  tm)
    return t

"""Every method's value at two commits, side by side (a refactor must not change a plan's value).

    python benchmarks/compare_commits.py run --base f04a64a --head WORKTREE   # resumable; --fresh
    python benchmarks/compare_commits.py analyse                              # summary only

Each side is a tree: a commit (exported with ``git archive`` into a temporary folder) or
``WORKTREE`` (this checkout as it is on disk). One worker process per side imports that
tree's ``placement`` and solves what it is sent; the rows alternate which side goes first,
so that both sides share the machine's load and the timing ratio is measured side by side,
in one run.

Instances: every problem of the scaling study (``benchmarks/results/scaling_problems/``,
regenerate with ``python benchmarks/scaling_study.py prepare``), the SAGA-benchmark
instances (built by ``benchmarks/bench_saga.py``'s own generator, which does not need
anrg-saga), and 50 generated problems whose memory binds (each device holds about
``1.3 / devices`` of the model's weights). Methods: the heuristics on every instance; the
exact methods on instances of at most ``EXACT_MAX_BLOCKS`` blocks, with a short limit.

Writes ``benchmarks/results/cost_model_values.csv`` (one row per instance and method) and
``cost_model_summary.json``: per method, how many values are equal (relative 1e-9), better
or worse at head, and the median head/base ratio of ``solve_time_s`` for heft and local.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "results"
CSV = OUT / "cost_model_values.csv"
SUMMARY = OUT / "cost_model_summary.json"
FIELDS = ["instance", "suite", "method", "blocks", "base_status", "head_status", "base_value",
          "head_value", "verdict", "base_t", "head_t", "base_error", "head_error"]
HEURISTIC_LIMIT_S = 20.0
EXACT_LIMIT_S = 5.0
EXACT_MAX_BLOCKS = 30
#: a value counts as the same when within this relative distance (float noise of summation order)
SAME = 1e-9


# ------------------------------------------------------------------ instances
def memory_bound_problems(n: int = 50):
    """``n`` small generated problems on which memory binds: each device holds about
    1.3 / devices of the model's weights (plus the largest working memory)."""
    import placement

    shapes = ("chain", "dag", "hybrid")
    sets = ("edge", "iot", "homogeneous")
    for i in range(n):
        shape, dset = shapes[i % 3], sets[(i // 3) % 3]
        blocks, devices = 6 + i % 4, 3 + (i // 4) % 2
        d = placement.generate(shape, blocks, devices, device_set=dset, network="mesh", seed=100 + i)
        total = sum(b["params_bytes"] for b in d["model"]["blocks"])
        act = max(b["activation_bytes"] for b in d["model"]["blocks"])
        for dev in d["devices"]:
            dev["memory_bytes"] = 1.3 * total / devices + act
        d["name"] = f"mem-{d['name']}"
        yield d["name"], d


def instances():
    """(name, suite, problem dict) for every instance of the comparison."""
    from benchmarks.bench_saga import instances as saga_instances

    folder = OUT / "scaling_problems"
    if not folder.is_dir() or not any(folder.glob("*.json")):
        raise SystemExit(f"{folder} is empty: run python benchmarks/scaling_study.py prepare")
    for f in sorted(folder.glob("*.json")):
        yield f.stem, "scaling", json.loads(f.read_text())
    for name, *_, d in saga_instances():
        yield name, "saga", d
    for name, d in memory_bound_problems():
        yield name, "memory", d


# ------------------------------------------------------------------ workers
def worker() -> None:
    """Read one JSON job a line (problem, method, time limit); answer one JSON line."""
    import placement
    from placement import registry

    print(json.dumps({"methods": registry.method_names()}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        try:
            plan = placement.solve(job["problem"], job["method"], time_limit=job["limit"], seed=0)
            out = {"status": plan.status.value, "value": plan.value, "t": plan.solve_time_s, "error": ""}
        except Exception as exc:  # a refusal (MethodError) or a bug: recorded, not fatal
            out = {"status": "refused", "value": None, "t": None, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(out), flush=True)


class Side:
    """A worker process running one tree's code."""

    def __init__(self, rev: str):
        self.rev = rev
        self._tmp = None
        if rev == "WORKTREE":
            tree = ROOT
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="placement-base-")
            tree = Path(self._tmp.name)
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "worker"],
                                     cwd=str(tree), env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.methods = json.loads(self.proc.stdout.readline())["methods"]

    def solve(self, problem: dict, method: str, limit: float) -> dict:
        self.proc.stdin.write(json.dumps({"problem": problem, "method": method, "limit": limit}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker of {self.rev} died")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        if self._tmp is not None:
            self._tmp.cleanup()


def verdict(base: dict, head: dict) -> str:
    bv, hv = base["value"], head["value"]
    if bv is None and hv is None:
        return "same" if base["status"] == head["status"] else "status"
    if bv is None:
        return "better"
    if hv is None:
        return "worse"
    if abs(hv - bv) <= SAME * max(abs(bv), 1e-300):
        return "same"
    return "better" if hv < bv else "worse"


def run(base_rev: str, head_rev: str, fresh: bool, suites=None, max_rows=None, only=None) -> None:
    from benchmarks._rows import read_rows, write_rows

    if only:                 # a re-run of some methods: rows of their own, beside the main table
        _use_tables("cost_model_values_" + "_".join(only))

    rows = [] if fresh or not CSV.exists() else read_rows(CSV)
    done = {(r["instance"], r["method"]) for r in rows}
    base, head = Side(base_rev), Side(head_rev)
    try:
        methods = [m for m in head.methods if m in base.methods and (not only or m in only)]
        heuristics = {"single", "heft", "dp", "local"}
        k = 0
        for name, suite, problem in instances():
            if suites and suite not in suites:
                continue
            if max_rows is not None and k >= max_rows:
                break
            blocks = len(problem["model"]["blocks"])
            for method in methods:
                if (name, method) in done:
                    continue
                exact = method not in heuristics
                if exact and (blocks > EXACT_MAX_BLOCKS or suite == "saga"):
                    continue
                limit = EXACT_LIMIT_S if exact else HEURISTIC_LIMIT_S
                k += 1
                pair = (base, head) if k % 2 else (head, base)
                res = {side.rev: side.solve(problem, method, limit) for side in pair}
                b, h = res[base.rev], res[head.rev]
                rows.append({"instance": name, "suite": suite, "method": method, "blocks": blocks,
                             "base_status": b["status"], "head_status": h["status"],
                             "base_value": b["value"], "head_value": h["value"], "verdict": verdict(b, h),
                             "base_t": b["t"], "head_t": h["t"], "base_error": b["error"],
                             "head_error": h["error"]})
                write_rows(CSV, rows, FIELDS)
                print(f"{name:40s} {method:7s} {rows[-1]['verdict']:7s} {b['value']} {h['value']}", flush=True)
    finally:
        base.close()
        head.close()
    analyse(base_rev, head_rev)


def _use_tables(stem: str) -> None:
    global CSV, SUMMARY
    CSV = OUT / f"{stem}.csv"
    SUMMARY = OUT / f"{stem.replace('values', 'summary')}.json"


def analyse(base_rev: str = "", head_rev: str = "") -> None:
    from benchmarks._rows import read_rows
    from placement.plan import write_json_atomic

    rows = read_rows(CSV)
    out: dict = {"command": f"python benchmarks/compare_commits.py run --base {base_rev or 'f04a64a'} "
                            f"--head {head_rev or 'WORKTREE'}",
                 "base": base_rev, "head": head_rev, "rows": len(rows), "methods": {}}
    for method in sorted({r["method"] for r in rows}):
        mine = [r for r in rows if r["method"] == method]
        counts = {v: sum(r["verdict"] == v for r in mine) for v in ("same", "better", "worse", "status")}
        # a cut run (time limit) of an exact method is not deterministic: count it apart
        cut = [r for r in mine if r["verdict"] != "same"
               and "time_limit" in (r["base_status"], r["head_status"])]
        entry = {**counts, "differ_with_a_time_limit": len(cut),
                 "differ": [{k: r[k] for k in ("instance", "base_status", "head_status", "base_value",
                                               "head_value")} for r in mine if r["verdict"] != "same"][:20]}
        ratios = [float(r["head_t"]) / float(r["base_t"]) for r in mine
                  if r["base_t"] not in (None, "") and r["head_t"] not in (None, "") and float(r["base_t"]) > 0]
        if ratios:
            entry["median_time_ratio_head_over_base"] = round(statistics.median(ratios), 4)
        out["methods"][method] = entry
    write_json_atomic(SUMMARY, out)
    print(json.dumps({m: {k: v for k, v in e.items() if k != "differ"} for m, e in out["methods"].items()},
                     indent=1))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--base", default="f04a64a")
    r.add_argument("--head", default="WORKTREE")
    r.add_argument("--fresh", action="store_true")
    r.add_argument("--suite", action="append", help="scaling, saga or memory (repeatable; default all)")
    r.add_argument("--max-rows", type=int, help="stop after this many new rows (a smoke test)")
    r.add_argument("--method", action="append", help="only this method (repeatable; default all)")
    sub.add_parser("analyse")
    sub.add_parser("worker")
    args = ap.parse_args(argv)
    if args.cmd == "worker":
        worker()
    elif args.cmd == "run":
        run(args.base, args.head, args.fresh, args.suite, args.max_rows, args.method)
    else:
        analyse()


if __name__ == "__main__":
    main()

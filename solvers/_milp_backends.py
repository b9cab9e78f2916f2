"""The backends of `milp`: a backend-neutral model (`_Rows`: variables with bounds and kinds,
rows ``lo <= a.x <= hi``) and the two ways to solve it -- CBC through PuLP with a watchdog
(`_solve_cbc`), and OR-Tools' MPSolver (HiGHS, SCIP) in a child process (`_solve_mpsolver`,
`solvers._mpworker`). Each returns a `_Result` (status, values, bound, the backend's raw
status and statistics); `solvers.milp` builds the model and reads the plan back."""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

#: seconds kept back from the limit for writing the model, reading back and re-scoring.
READ_BACK_S = 0.5
#: relative MIP gap asked of every backend (HiGHS defaults to 1e-4, far too loose here).
MIP_GAP = 1e-9


@dataclass
class _Rows:
    """A backend-neutral MILP: variables with bounds and kinds, rows ``lo <= a.x <= hi``."""

    names: list[str] = field(default_factory=list)
    lb: list[float] = field(default_factory=list)
    ub: list[float] = field(default_factory=list)
    integer: list[bool] = field(default_factory=list)
    start: dict[int, float] = field(default_factory=dict)
    rows: list[tuple[dict[int, float], float, float]] = field(default_factory=list)
    objective: dict[int, float] = field(default_factory=dict)

    def var(self, name: str, lb: float = 0.0, ub: float = math.inf, integer: bool = False) -> int:
        self.names.append(name)
        self.lb.append(lb)
        self.ub.append(ub)
        self.integer.append(integer)
        return len(self.names) - 1

    def row(self, coefs: dict[int, float], lo: float = -math.inf, hi: float = math.inf) -> None:
        coefs = {k: v for k, v in coefs.items() if v != 0.0}
        if coefs:
            self.rows.append((coefs, lo, hi))


def _add(coefs: dict[int, float], var: int, c: float) -> None:
    coefs[var] = coefs.get(var, 0.0) + c


@dataclass
class _Result:
    status: str                      # optimal, feasible, infeasible, none
    values: np.ndarray | None
    bound: float | None
    raw: str
    stats: dict


def _limit(deadline: float, overhead: float = 0.0) -> float | None:
    """Seconds to give a backend that must stop by ``deadline`` (monotonic): what is left, less
    the read-back time, the backend's fixed ``overhead`` past its own limit, and 7 % for its
    proportional overrun (HiGHS through MPSolver overran by ~0.9 s + 5 % here)."""
    left = deadline - time.monotonic() - READ_BACK_S - overhead
    return max(0.1, left * 0.93) if math.isfinite(left) else None


def _wait_or_stop(proc, deadline: float) -> bool:
    """Wait for ``proc`` until ``deadline`` (``time.monotonic()``) or a stop request
    (`placement.interrupt`); True if it ended by itself."""
    import subprocess

    from placement import interrupt
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or interrupt.requested():
            return proc.poll() is not None
        try:
            proc.wait(timeout=min(0.1, max(0.01, left)))
            return True
        except subprocess.TimeoutExpired:
            continue


def _cbc_path() -> str:
    """The CBC binary that PuLP bundles (``pulp.PULP_CBC_CMD``)."""
    import pulp
    return pulp.PULP_CBC_CMD(msg=False).path


def _g(v: float) -> str:
    return "% .12e" % v                # PuLP's number format (the model CBC read before)


def write_mps(R: _Rows, path: str) -> int:
    """Write ``R`` as a fixed-format MPS file (columns ``X<j>``, rows ``C<i>``, fields padded
    to 8 as PuLP writes them: CBC reads short names in fixed columns) straight from its arrays: PuLP's variables and writeMPS cost 2.8 s at 300 x 16 and were not under the clock
    (issue 14). Integer columns come first, in one INTORG block; every integer column has an
    explicit lower bound (COIN reads an integer column with no bounds as binary). Ranged rows
    are written as two rows, as PuLP did. Returns the number of rows written."""
    n = len(R.names)
    col = [f"{'X%d' % j:<8}" for j in range(n)]          # column names, padded
    row_lines = []
    rhs_lines = []
    entries: list[list[str]] = [[] for _ in range(n)]
    r = 0
    for coefs, lo, hi in R.rows:
        parts = []
        if lo == hi:
            parts.append(("E", lo))
        else:
            if math.isfinite(lo):
                parts.append(("G", lo))
            if math.isfinite(hi):
                parts.append(("L", hi))
        for sense, rhs in parts:
            name = f"C{r}"
            row_lines.append(f" {sense}  {name}\n")
            if rhs != 0.0:
                rhs_lines.append(f"    RHS       {name:<8}  {_g(rhs)}\n")
            for k, c in coefs.items():
                entries[k].append(f"    {col[k]}  {name:<8}  {_g(c)}\n")
            r += 1
    for k, c in R.objective.items():
        if c != 0.0:
            entries[k].append(f"    {col[k]}  OBJ       {_g(c)}\n")
    def lines(j):           # a column without entries still appears (CBC needs every column)
        return entries[j] or [f"    {col[j]}  OBJ       {_g(0.0)}\n"]

    ints = [j for j in range(n) if R.integer[j]]
    cols: list[str] = []
    if ints:
        cols.append("    MARK      'MARKER'                 'INTORG'\n")
        cols.extend(x for j in ints for x in lines(j))
        cols.append("    MARK      'MARKER'                 'INTEND'\n")
    cols.extend(x for j in range(n) if not R.integer[j] for x in lines(j))
    bnd: list[str] = []
    for j in range(n):
        lo, hi, it = R.lb[j], R.ub[j], R.integer[j]
        if math.isfinite(lo) and lo == hi:
            bnd.append(f" FX BND       {col[j]}  {_g(lo)}\n")
            continue
        if it and lo == 0.0 and hi == 1.0:
            bnd.append(f" BV BND       {col[j]}\n")
            continue
        if math.isfinite(lo):
            if lo != 0.0 or it:
                bnd.append(f" LO BND       {col[j]}  {_g(lo)}\n")
        elif math.isfinite(hi):
            bnd.append(f" MI BND       {col[j]}\n")
        else:
            bnd.append(f" FR BND       {col[j]}\n")
        if math.isfinite(hi):
            bnd.append(f" UP BND       {col[j]}  {_g(hi)}\n")
    with open(path, "w") as f:
        f.write("*SENSE:Minimize\nNAME          placement\nROWS\n N  OBJ\n")
        f.writelines(row_lines)
        f.write("COLUMNS\n")
        f.writelines(cols)
        f.write("RHS\n")
        f.writelines(rhs_lines)
        f.write("BOUNDS\n")
        f.writelines(bnd)
        f.write("ENDATA\n")
    return r


def write_start(R: _Rows, path: str) -> None:
    """CBC's ``-mips`` start file: every column, its start value or 0 (as PuLP writes it)."""
    with open(path, "w") as f:
        f.write("Stopped on time - objective value 0\n")
        f.writelines(f"{j:>7} X{j} {float(R.start.get(j, 0.0))!r:>15} {0:>23}\n" for j in range(len(R.names)))


def read_solution(path: str, n: int) -> tuple[str, np.ndarray | None]:
    """CBC's solution file: (its status line, the column values, or None without a solution).
    A solution is there when the status is Optimal or a stop that names an objective value
    ("Stopped on time - objective value ..."), as PuLP reads it."""
    with open(path) as f:
        head = f.readline().strip()
        words = head.split()
        has = bool(words) and (words[0] == "Optimal" or (
            words[0] == "Stopped" and len(words) >= 5 and words[4] == "objective"))
        if not has:
            return head, None
        values = np.zeros(n)
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                break
            if parts[0] == "**":
                parts = parts[1:]
            name = parts[1]
            if name[0] == "X" and name[1:].isdigit():
                values[int(name[1:])] = float(parts[2])
    return head, values


def _solve_cbc(R: _Rows, deadline: float, seed: int, extra: str = "") -> _Result:
    """CBC (PuLP's bundled binary) on ``R``, written and read back directly, with a watchdog:
    CBC's own ``-sec`` limit is not checked during the root's cuts, and it overran a 26 s limit
    by 14 s on a 200-block model. At the deadline the watchdog sends SIGINT (CBC stops and
    writes its best solution), then kills it."""
    import signal
    import subprocess

    stopped = False
    t = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="placement-cbc-") as tmp:
        mps, sol, mst, log = (os.path.join(tmp, f) for f in ("model.mps", "model.sol", "start.mst", "cbc.log"))
        write_mps(R, mps)
        if time.monotonic() >= deadline - READ_BACK_S:
            stats = {"wall_s": round(time.monotonic() - t, 3), "nodes": None,
                     "raw_status": "not started: writing the model used the time"}
            return _Result("none", None, None, stats["raw_status"], stats)
        # preprocessing off: with it, CBC's root cuts overshot the optimum by 1e-4 and the final
        # LP then called the problem "proven infeasible" (10 x 6 and 30 x 32 hybrid, iot, mesh);
        # without it the same models solve to optimality, as fast or faster.
        args = [_cbc_path(), mps]
        if R.start:
            write_start(R, mst)
            args += ["-mips", mst]
        limit = _limit(deadline)
        if limit is not None:
            args += ["-sec", str(limit)]
        opts = ["preprocess off", f"ratio {MIP_GAP}", "timeMode elapsed"] + ([f"randomCbcSeed {seed + 1}"] if seed else [])
        opts += [extra] if extra else []
        for option in opts:
            args += ("-" + option).split()
        args += ["-solve", "-printingOptions", "all", "-solution", sol]
        with open(log, "w") as pipe:
            proc = subprocess.Popen(args, stdout=pipe, stderr=pipe, stdin=subprocess.DEVNULL)
            if not _wait_or_stop(proc, deadline - READ_BACK_S):
                # the deadline or a stop request (Ctrl-C): CBC stops at SIGINT and writes its
                # best solution (a terminal's Ctrl-C also reaches it directly)
                stopped = True
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        head, values = read_solution(sol, len(R.names)) if os.path.exists(sol) else ("", None)
        wall = time.monotonic() - t
        text = open(log, encoding="utf-8", errors="replace").read() if os.path.exists(log) else ""
    if stopped:
        text += "\nResult - Stopped by the watchdog at the deadline\n"
    result = re.search(r"Result - (.*)", text)
    raw = result.group(1).strip() if result else (head or "no solution file")
    obj = re.search(r"Objective value:\s*([-+0-9.eE]+)", text)
    lower = re.search(r"Lower bound:\s*([-+0-9.eE]+)", text)
    nodes = re.search(r"Enumerated nodes:\s*(\d+)", text)
    stats = {"wall_s": round(wall, 3), "nodes": int(nodes.group(1)) if nodes else None, "raw_status": raw,
             "solution_status": head}
    if "infeasible" in raw.lower():
        return _Result("infeasible", None, None, raw, stats)
    bound = None
    if "Optimal solution found" in raw and obj:
        bound = float(obj.group(1))
        status = "optimal"
    else:
        status = "feasible" if values is not None else "none"
        if lower:
            bound = float(lower.group(1))
        else:  # stopped by the watchdog: the last bound CBC printed (root LP, then tree)
            seen = [float(v) for v in re.findall(r"best possible ([-+0-9.eE]+)", text)]
            seen += [float(v) for v in re.findall(r"Continuous objective value is ([-+0-9.eE]+)", text)]
            if seen:
                bound = max(seen)
    stats["objective_units"] = float(obj.group(1)) if obj else None
    stats["bound_units"] = bound
    return _Result(status, values, bound, raw, stats)


def _solve_mpsolver(R: _Rows, deadline: float, backend: str) -> _Result:
    """Run the MPSolver backend in a child process (`python -m solvers._mpworker`, the model
    pickled on its stdin): OR-Tools 9.15's HiGHS crashed this process (segmentation fault) on
    hints and, now and then, on tiny models, and always in a forked child (which inherits
    scipy's HiGHS threads); multiprocessing's spawn re-imports the caller's ``__main__``, which
    hangs a plain script without a main guard. A crash or an overrun past the deadline costs
    the backend's answer (the warm start is kept), never the caller."""
    import pickle
    import subprocess

    t = time.monotonic()
    payload = pickle.dumps((R, deadline, backend), protocol=pickle.HIGHEST_PROTOCOL)
    proc = subprocess.Popen([sys.executable, "-m", "solvers._mpworker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    res = None
    from placement import interrupt
    send: bytes | None = payload
    while True:
        # short waits, so that a stop request (Ctrl-C) ends the child as the deadline does
        step = min(0.2, max(0.1, deadline - time.monotonic() - READ_BACK_S / 2))
        try:
            out, err = proc.communicate(send, timeout=step)
            if proc.returncode == 0 and out:
                res = pickle.loads(out)
            break
        except subprocess.TimeoutExpired:
            send = None
            if interrupt.requested() or time.monotonic() >= deadline - READ_BACK_S / 2:
                proc.kill()
                proc.communicate()
                break
    if isinstance(res, Exception):
        raise res
    if res is None:
        what = (f"{backend} crashed (exit code {proc.returncode})" if proc.returncode not in (None, 0, -9)
                else f"{backend} stopped at the deadline")
        return _Result("none", None, None, what, {"wall_s": round(time.monotonic() - t, 3), "raw_status": what})
    return res


def _mpsolver_solve(R: _Rows, deadline: float, backend: str) -> _Result:
    from ortools.linear_solver import pywraplp

    solver = pywraplp.Solver.CreateSolver(backend.upper())
    if solver is None:
        from placement.errors import InputError
        raise InputError(f"--backend: OR-Tools has no {backend} solver in this installation")
    inf = solver.infinity()
    vs = []
    for n, lo, hi, it in zip(R.names, R.lb, R.ub, R.integer):
        lo = lo if math.isfinite(lo) else -inf
        hi = hi if math.isfinite(hi) else inf
        vs.append(solver.IntVar(lo, hi, n) if it else solver.NumVar(lo, hi, n))
    for coefs, lo, hi in R.rows:
        c = solver.RowConstraint(lo if math.isfinite(lo) else -inf, hi if math.isfinite(hi) else inf, "")
        for k, v in coefs.items():
            c.SetCoefficient(vs[k], v)
    objective = solver.Objective()
    for k, v in R.objective.items():
        objective.SetCoefficient(vs[k], v)
    objective.SetMinimization()
    # OR-Tools' HiGHS interface takes no MIP start (a hint crashes OR-Tools 9.15 with HiGHS 1.12:
    # a segmentation fault); HiGHS still gets the incumbent's big-M, and the incumbent is kept.
    if R.start and backend != "highs":
        keys = sorted(R.start)
        solver.SetHint([vs[k] for k in keys], [R.start[k] for k in keys])
    limit = _limit(deadline, overhead=1.0 if backend == "highs" else 0.3)
    if limit is not None:
        solver.SetTimeLimit(int(limit * 1000))
    solver.SetNumThreads(1)
    solver.SuppressOutput()
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, MIP_GAP)
    t = time.monotonic()
    code = solver.Solve(params)
    wall = time.monotonic() - t
    names = {pywraplp.Solver.OPTIMAL: "OPTIMAL", pywraplp.Solver.FEASIBLE: "FEASIBLE",
             pywraplp.Solver.INFEASIBLE: "INFEASIBLE", pywraplp.Solver.UNBOUNDED: "UNBOUNDED",
             pywraplp.Solver.ABNORMAL: "ABNORMAL", pywraplp.Solver.NOT_SOLVED: "NOT_SOLVED"}
    raw = names.get(code, str(code))
    #: backend code -> our status (the raw code is kept in the message)
    status = {"OPTIMAL": "optimal", "FEASIBLE": "feasible", "INFEASIBLE": "infeasible"}.get(raw, "none")
    stats = {"wall_s": round(wall, 3), "raw_status": raw, "nodes": solver.nodes()}
    values = None
    bound = None
    if status in ("optimal", "feasible"):
        values = np.array([v.solution_value() for v in vs])
        bound = objective.BestBound()
        stats["objective_units"] = objective.Value()
    elif status == "none":
        try:
            bound = objective.BestBound()
        except Exception:  # some backends have none before a solution
            bound = None
    stats["bound_units"] = bound
    return _Result(status, values, bound, raw, stats)

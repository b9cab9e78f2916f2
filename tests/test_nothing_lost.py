"""Nothing lost (issue 18): no command overwrites a file it does not own, an output path
that cannot be written is refused before the work, files follow the umask, a closed pipe
ends quietly, and the schemas the package prints accept the files it writes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

import placement
from placement.cli import main
from placement.comparator import ResultsFile
from placement.errors import InputError
from placement.plan import check_output_path, write_json_atomic

from .conftest import ROOT

def _generate(*args, **kw):
    """`placement.generate` without a shared medium: these tests check contention-free
    rules and methods (star networks put devices on a medium by default since issue 15;
    media are tested in tests/test_media.py)."""
    return placement.generate(*args, **{"media": False, **kw})



def _files(tmp_path, diamond, n=2):
    out = []
    for i in range(n):
        d = json.loads(json.dumps(diamond))
        d["name"] = f"p{i}"
        f = tmp_path / f"P{i}.json"
        f.write_text(json.dumps(d, indent=2))
        out.append(f)
    return out


def test_compare_json_is_a_flag_and_never_swallows_a_problem_file(tmp_path, diamond, capsys):
    p1, p2 = _files(tmp_path, diamond)
    before = p1.read_text(), p2.read_text()
    # before the fix, --json took P1.json as its FILE and wrote a results row over it
    assert main(["compare", "--json", str(p1), "--methods", "single", str(p2), "-t", "5"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["problem"] for r in rows} == {"p0", "p1"}
    assert (p1.read_text(), p2.read_text()) == before


@pytest.mark.parametrize("flag", ["--csv", "-o", "--resume"])
def test_compare_never_overwrites_a_file_that_is_not_its_results(tmp_path, diamond, capsys, flag):
    p1, p2 = _files(tmp_path, diamond)
    foreign = tmp_path / "notes.csv"
    foreign.write_text("name,score\nalice,3\n")
    for target in (p1, foreign):
        before = target.read_text()
        code = main(["compare", str(p2), "--methods", "single", "-t", "5", flag, str(target)])
        assert code == 2
        err = capsys.readouterr().err
        assert str(target) in err and "Traceback" not in err
        assert target.read_text() == before


def test_compare_keeps_existing_rows_unless_resumed(tmp_path, diamond, capsys):
    (p1,) = _files(tmp_path, diamond, n=1)
    rows = tmp_path / "rows.csv"
    assert main(["compare", str(p1), "--methods", "single", "-t", "5", "-o", str(rows)]) == 0
    before = rows.read_text()
    assert main(["compare", str(p1), "--methods", "heft", "-t", "5", "-o", str(rows)]) == 2
    assert "pass --resume" in capsys.readouterr().err and rows.read_text() == before
    assert main(["compare", str(p1), "--methods", "heft", "-t", "5", "-o", str(rows), "--resume"]) == 0
    assert [r["method"] for r in ResultsFile(rows).read()] == ["single", "heft"]


def test_interrupted_rows_run_again_on_resume(tmp_path, diamond):
    (p1,) = _files(tmp_path, diamond, n=1)
    rows = tmp_path / "rows.jsonl"
    store = ResultsFile(rows)
    placement.compare([str(p1)], ["single", "heft"], time_limit=5, results=rows)
    cut = [dict(r, status="interrupted", value=None) if r["method"] == "heft" else r for r in store.read()]
    store.write(cut)
    again = placement.compare([str(p1)], ["single", "heft"], time_limit=5, results=rows, resume=True)
    assert {r["method"]: r["status"] for r in again} == {"single": "feasible", "heft": "feasible"} or \
        all(r["status"] in ("feasible", "optimal") for r in again)
    assert len(again) == 2


@pytest.mark.parametrize("make", ["file-as-folder", "folder", "proc"])
def test_unwritable_output_paths_are_refused_before_solving(tmp_path, diamond, capsys, make):
    (p1,) = _files(tmp_path, diamond, n=1)
    if make == "file-as-folder":
        target = p1 / "plan.json"           # a problem file used as a folder
    elif make == "folder":
        target = tmp_path                    # a folder
    else:
        target = "/proc/placement-plan.json"  # no file can be made there, not even by root
    for cmd in (["solve", str(p1), "-m", "single", "-o", str(target)],
                ["generate", "--blocks", "3", "-o", str(target)],
                ["compare", str(p1), "--methods", "single", "-o", str(target) + ".csv"]):
        if make == "folder" and cmd[0] == "compare":
            continue  # 'folder.csv' is a fine new file name
        code = main(cmd)
        err = capsys.readouterr().err
        assert code == 2, (cmd, err)
        assert str(target) in err and "internal error" not in err
    # the check itself: a new file in a new folder is fine and leaves nothing behind
    check_output_path(tmp_path / "new" / "deeper" / "plan.json")
    assert not (tmp_path / "new").exists()
    with pytest.raises(InputError, match="is a folder"):
        check_output_path(tmp_path)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, diamond, umask, mode):
    old = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "a.json", {"x": 1})
        plan = placement.solve(diamond, method="single", time_limit=5)
        plan.save(tmp_path / "plan.json")
        placement.compare([diamond], ["single"], time_limit=5, results=tmp_path / "rows.csv")
    finally:
        os.umask(old)
    for name in ("a.json", "plan.json", "rows.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_closed_pipe_ends_quietly():
    cmd = [sys.executable, "-m", "placement.cli", "generate", "--blocks", "2000", "--devices", "8"]
    gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    gen.stdout.read(100)
    gen.stdout.close()                  # what 'head' does
    _, err = gen.communicate(timeout=60)
    assert gen.returncode == 141, err
    assert b"BrokenPipe" not in err and b"internal error" not in err


def test_the_printed_schemas_accept_the_files_the_package_writes(tmp_path, capsys):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the printed schema")
    assert main(["schema", "problem"]) == 0
    problem_schema = json.loads(capsys.readouterr().out)
    assert main(["schema", "plan"]) == 0
    plan_schema = json.loads(capsys.readouterr().out)
    quick = json.loads((ROOT / "examples" / "quickstart.json").read_text())
    jsonschema.validate(quick, problem_schema)
    for f in sorted((ROOT / "examples" / "models").glob("*.json"))[:4]:
        jsonschema.validate(json.loads(f.read_text()), problem_schema)
    bad = dict(quick, objectiv="latency")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, problem_schema)
    plan = placement.solve(quick, method="heft", time_limit=5).to_dict()
    jsonschema.validate(plan, plan_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"status": "optimal"}, plan_schema)  # no assignment


# ------------------------------------------------------------- exit 1 and the study's rows
class _Crash(placement.method.Method):
    """A method with a bug: it raises."""

    name = "crash"
    kind = "baseline"
    guarantee = "none"
    summary = "raises ZeroDivisionError"

    def solve(self, problem, ctx):
        return 1 / 0


class _LatencyOnly(_Crash):
    name = "latency-only"
    objectives = frozenset({"latency"})

    def solve(self, problem, ctx):
        from placement import registry
        return registry.get_method("single").solve(problem, ctx)


_CRASH_CLI = ("import sys; from placement import registry; "
              "registry.METHODS['crash'] = 'tests.test_nothing_lost:_Crash'; "
              "from placement.cli import main; sys.exit(main(sys.argv[1:]))")


def test_a_bug_exits_1_in_one_line_and_placement_debug_shows_the_traceback(tmp_path, diamond):
    (p1,) = _files(tmp_path, diamond, n=1)
    env = {k: v for k, v in os.environ.items() if k != "PLACEMENT_DEBUG"}
    res = subprocess.run([sys.executable, "-c", _CRASH_CLI, "solve", str(p1), "-m", "crash"],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert res.returncode == 1, res.stderr
    assert "ZeroDivisionError" in res.stdout + res.stderr and "Traceback" not in res.stderr
    dbg = subprocess.run([sys.executable, "-c", _CRASH_CLI, "solve", str(p1), "-m", "crash"],
                         capture_output=True, text=True, cwd=ROOT, env={**env, "PLACEMENT_DEBUG": "1"})
    assert dbg.returncode != 0 and "Traceback" in dbg.stderr and "ZeroDivisionError" in dbg.stderr


def test_compare_rows_for_errors_unsupported_objectives_and_refused_sizes(tmp_path, diamond, monkeypatch):
    from placement import registry
    monkeypatch.setitem(registry.METHODS, "crash", "tests.test_nothing_lost:_Crash")
    registry._cache.pop("crash", None)
    rows = placement.compare([diamond], ["crash", "single"], time_limit=5)
    by = {r["method"]: r for r in rows}
    assert by["crash"]["status"] == "error" and "ZeroDivisionError" in by["crash"]["message"]
    assert by["single"]["status"] in ("feasible", "optimal")
    # an objective a method does not declare is an 'unsupported' row naming it
    monkeypatch.setitem(registry.METHODS, "latency-only", "tests.test_nothing_lost:_LatencyOnly")
    registry._cache.pop("latency-only", None)
    rows = placement.compare([diamond], ["latency-only", "single"], objective="energy", time_limit=5)
    row = next(r for r in rows if r["method"] == "latency-only")
    assert row["status"] == "unsupported" and "energy" in row["message"]
    assert next(r for r in rows if r["method"] == "single")["status"] in ("feasible", "optimal")
    # brute refuses a size: 'skipped' with the reason
    big = _generate("chain", 40, 6, seed=0, name="big")
    row = placement.compare([big], ["brute"], time_limit=5)[0]
    assert row["status"] == "skipped" and row["message"]


def test_compare_seeds_workers_and_per_method_options(tmp_path, diamond, capsys):
    p1, p2 = _files(tmp_path, diamond)
    out = tmp_path / "rows.csv"
    assert main(["compare", str(p1), str(p2), "--methods", "single,local", "--seeds", "0,1",
                 "--option", "local.patience=50", "-w", "2", "-t", "5", "-o", str(out)]) == 0
    rows = ResultsFile(out).read()
    assert sorted((r["problem"], r["method"], r["seed"]) for r in rows) == sorted(
        (p, m, s) for p in ("p0", "p1") for m in ("single", "local") for s in (0, 1))
    capsys.readouterr()
    # an option for every listed method that takes it; one none takes is exit 2 naming it
    assert main(["compare", str(p1), "--methods", "single", "--option", "patience=5"]) == 2
    assert "patience" in capsys.readouterr().err
    assert main(["compare", str(p1), "--methods", "single", "--seeds", "a,b"]) == 2
    assert "--seeds: expected comma-separated integers" in capsys.readouterr().err


def test_objective_weights_are_checked_by_name(tmp_path, diamond, capsys):
    (p1,) = _files(tmp_path, diamond, n=1)
    assert main(["solve", str(p1), "-m", "single", "--objective", '{"energi": 0.2}']) == 2
    assert "unknown metric \"energi\" (did you mean 'energy'?)" in capsys.readouterr().err
    assert main(["solve", str(p1), "-m", "single", "--objective", '{"energy": 0, "latency": 0}']) == 2
    assert "at least one positive weight" in capsys.readouterr().err
    assert main(["solve", str(p1), "-m", "single", "--objective", '{"energy": true}']) == 2
    assert "expected a finite number >= 0, found true" in capsys.readouterr().err


def test_the_report_names_units_the_bound_and_an_infeasible_plan(tmp_path, diamond, capsys):
    (p1,) = _files(tmp_path, diamond, n=1)
    assert main(["solve", str(p1), "-m", "single", "--objective", "throughput"]) == 0
    out = capsys.readouterr().out
    assert "objective throughput (minimise the period, s)" in out
    assert " s   bound " in out and ("(cheap bound)" in out or "(proven by single)" in out)
    assert main(["solve", str(p1), "-m", "single", "--objective", '{"latency": 1, "energy": 0.5}']) == 0
    assert "1·latency_s + 0.5·energy_j" in capsys.readouterr().out
    # a hand-written plan that overflows memory: no gap, no empty method name, no solve time
    d = json.loads(p1.read_text())
    for dev in d["devices"]:
        dev["memory_bytes"] = 1500.0
    p1.write_text(json.dumps(d))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"assignment": {"s": "A", "l": "A", "r": "A", "t": "A"}}))
    assert main(["evaluate", str(p1), str(plan)]) == 3
    out = capsys.readouterr().out
    assert "infeasible plan: no bound, no gap" in out and "gap 0.00%" not in out
    assert "method (plan file)" in out and "solve time" not in out


# --------------------------------------------------------------------------------- Ctrl-C
def _mid(tmp_path):
    """A problem whose energy optimum `local` cannot prove (its bound stays below), so with a
    huge patience it would search until its time limit."""
    d = _generate("hybrid", 40, 6, device_set="iot", seed=1, name="mid")
    f = tmp_path / "mid.json"
    f.write_text(json.dumps(d))
    return f


def test_ctrl_c_keeps_the_best_plan_so_far_and_exits_130(tmp_path):
    """The first Ctrl-C stops the method as at its time limit, the plan found so far is
    written where -o was given (status time_limit, message 'interrupted'), exit code 130.
    Before, the plan was lost (and cpsat swallowed the signal, exit 0)."""
    import signal
    import time
    f, out = _mid(tmp_path), tmp_path / "plan.json"
    proc = subprocess.Popen([sys.executable, "-m", "placement.cli", "solve", str(f), "-m", "local",
                             "-t", "120", "--objective", "energy", "--option", "patience=100000000",
                             "-o", str(out), "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8.0)  # imports and the constructive start: local is annealing by now
    assert proc.poll() is None, "the search must still be running when Ctrl-C comes"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - t0 < 20, "stopped well before its 120 s limit"
    plan = json.loads(out.read_text())
    assert plan["status"] == "time_limit" and "interrupted" in plan["message"]
    assert plan["assignment"] and json.loads(stdout)["assignment"] == plan["assignment"]


@pytest.mark.parametrize("method,after_s", [("cpsat", 5.0), ("milp", 5.0), ("local", 3.0)])
def test_a_stop_request_ends_the_search_with_its_best_plan(method, after_s):
    """What Ctrl-C does, in process (placement.interrupt.request from a timer, while the
    method is searching: CP-SAT inside its solve, CBC under its watchdog, local annealing):
    the method returns within a few seconds of the request, its plan marked interrupted."""
    import threading
    import time
    from placement import interrupt
    if method == "local":  # its energy optimum cannot be proven: it would anneal for 60 s
        p = placement.load(_generate("hybrid", 40, 6, device_set="iot", seed=1)).with_objective("energy")
        opts = {"patience": 100_000_000}
    else:                  # 120 blocks x 16 devices: cpsat needs ~16 s to prove it, milp longer
        p = placement.load(_generate("dag", 120, 16, device_set="edge", seed=1))
        opts = {}
    placement.solve(p, method=method, time_limit=0)  # imports and compiled kernels, untimed
    timer = threading.Timer(after_s, interrupt.request)
    interrupt.clear()
    t0 = time.monotonic()          # before the timer starts: it fires after_s after that
    timer.start()
    try:
        plan = placement.solve(p, method=method, time_limit=60, **opts)
    finally:
        timer.cancel()
        interrupt.clear()
    took = time.monotonic() - t0
    # (a timer's wait may end a hair early: 10 ms of slack)
    assert after_s - 0.01 <= took < after_s + 4.0, f"{method} returned {took - after_s:.1f} s after the request"
    assert "interrupted" in plan.message and plan.assignment
    assert plan.status.value in ("time_limit", "optimal")


def test_ctrl_c_in_compare_marks_the_row_and_resume_redoes_it(tmp_path):
    import signal
    import time
    f, rows = _mid(tmp_path), tmp_path / "rows.csv"
    proc = subprocess.Popen([sys.executable, "-m", "placement.cli", "compare", str(f), "--methods",
                             "single,local", "--objective", "energy", "--option",
                             "local.patience=100000000", "-t", "120", "-o", str(rows)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (rows.exists() and "single" in rows.read_text()):
        time.sleep(0.1)
    time.sleep(4.0)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    got = {r["method"]: r["status"] for r in ResultsFile(rows).read()}
    assert got["local"] == "interrupted" and got["single"] != "interrupted", got
    again = placement.compare([str(f)], ["single", "local"], objective="energy", time_limit=3,
                              results=rows, resume=True)
    assert {r["method"]: r["status"] for r in again}["local"] in ("optimal", "feasible", "time_limit")


@pytest.mark.parametrize("plan,field", [
    ({"assignment": {"zz": "A"}}, "assignment"),
    ({"assignment": {"s": "nope", "l": "A", "r": "A", "t": "A"}}, "assignment"),
    ({"assignment": {"s": "A", "l": "A", "r": "A", "t": "A"}, "order": {"A": ["s", "zz"]}}, "order"),
    ({"assignment": []}, "assignment"),
])
def test_plan_file_errors_name_the_file_and_the_field(tmp_path, diamond, capsys, plan, field):
    (p1,) = _files(tmp_path, diamond, n=1)
    f = tmp_path / "hand.plan.json"
    f.write_text(json.dumps(plan))
    assert main(["evaluate", str(p1), str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}: {field}" in err and "Traceback" not in err, err

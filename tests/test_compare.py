"""The comparator: consistent rows, honest gaps and times, atomic resumable results, executors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import placement
from placement import registry
from placement.comparator import (COLUMNS, KEY, ResultsFile, compare, finish_rows, no_plan_problems,
                                  time_limit_margin)
from placement.errors import InputError
from placement.method import Method

from .conftest import ROOT

def _generate(*args, **kw):
    """`placement.generate` without a shared medium: these tests check contention-free
    rules and methods (star networks put devices on a medium by default since issue 15;
    media are tested in tests/test_media.py)."""
    return placement.generate(*args, **{"media": False, **kw})


FAST = ("single", "heft", "dp")


def available(names=None) -> list[str]:
    """The named (default: all registered) methods; one that does not load fails the test
    rather than dropping out of it."""
    names = list(names or registry.METHODS)
    for n in names:
        registry.get_method(n)  # MethodError: the registry is broken, and the test says so
    return names


def fast_methods() -> list[str]:
    return available(FAST)


class _Slow(Method):
    """`single`'s plan after a fixed sleep (kill test: rows appear slowly, deterministically)."""

    name = "slow"
    kind = "baseline"
    guarantee = "same as single"
    summary = "single, 0.25 s later"
    options = {"sleep": "seconds to sleep"}

    def solve(self, problem, ctx):
        time.sleep(float(ctx.options.get("sleep", os.environ.get("PLACEMENT_TEST_SLOW_S", 0.25))))
        return registry.get_method("single").solve(problem, ctx)


class _Overrun(Method):
    """Ignores its time limit (to see the comparator flag it)."""

    name = "overrun"
    kind = "baseline"
    guarantee = "none"
    summary = "sleeps past its limit"

    def solve(self, problem, ctx):
        time.sleep(ctx.time_limit + time_limit_margin(ctx.time_limit) + 0.3)
        return registry.get_method("single").solve(problem, ctx)


@pytest.fixture
def fake_methods(monkeypatch):
    for name, cls in (("slow", "_Slow"), ("overrun", "_Overrun")):
        monkeypatch.setitem(registry.METHODS, name, f"tests.test_compare:{cls}")
        registry._cache.pop(name, None)
    yield
    for name in ("slow", "overrun"):
        registry._cache.pop(name, None)


def problems(tmp_path: Path, n: int = 3, blocks: int = 8, devices: int = 3) -> list[str]:
    out = []
    for i in range(n):
        d = _generate("hybrid", blocks, devices, seed=i, name=f"g{i}")
        f = tmp_path / f"g{i}.json"
        f.write_text(json.dumps(d))
        out.append(str(f))
    return out


def check_rows(rows):
    """Every invariant a row must keep."""
    keys = [tuple(r[k] for k in KEY) for r in rows]
    assert len(keys) == len(set(keys)), "duplicate row"
    by_group: dict = {}
    for r in rows:
        assert set(COLUMNS) <= set(r)
        by_group.setdefault((r["problem"], r["objective"]), []).append(r)
    for group in by_group.values():
        bounds = [r["bound"] for r in group if r["bound"] is not None]
        values = [r["value"] for r in group if r["status"] in ("optimal", "feasible", "time_limit")]
        best = max(bounds) if bounds else None
        for r in group:
            assert r["best_bound"] == best
            if r["status"] not in ("optimal", "feasible", "time_limit"):
                assert r["value"] is None and r["gap"] is None
                continue
            v = r["value"]
            assert r["bound"] <= v * (1 + 1e-9) + 1e-15, r
            assert r["gap"] == pytest.approx((v - r["bound"]) / v, abs=1e-12)
            assert r["gap_best"] == pytest.approx((v - best) / v, abs=1e-9)
            assert r["gap_best"] >= -1e-9, "some method's bound is above another method's plan"
            assert r["ratio_best"] == pytest.approx(v / min(values))
            assert r["solve_time_s"] <= r["time_limit"] + time_limit_margin(r["time_limit"])
            assert r["within_limit"] is True


def test_rows_are_consistent_and_come_from_the_evaluator(tmp_path):
    methods = fast_methods() + available(["brute"])
    files = problems(tmp_path, n=2, blocks=6, devices=2)
    rows = compare(files, methods, time_limit=5, objective="latency,energy")
    assert len(rows) == 2 * 2 * len(methods)
    check_rows(rows)
    assert [r["objective"] for r in rows[: len(methods)]] == ["latency"] * len(methods)
    for r in rows:
        if r["status"] in ("optimal", "feasible", "time_limit"):
            plan = placement.solve(r["file"], r["method"], objective=r["objective"], time_limit=5)
            assert plan.value == pytest.approx(r["value"], rel=1e-9)
            key = {"latency": "latency_s", "energy": "energy_j"}[r["objective"]]
            assert r[key] == pytest.approx(r["value"], rel=1e-12)
    if "brute" in methods:  # an exact method's bound is the best; nothing beats its value
        for r in rows:
            if r["method"] == "brute" and r["status"] == "optimal":
                assert r["gap_best"] == pytest.approx(0.0, abs=1e-9)


def test_best_bound_gap_formula_on_hand_rows():
    rows = [
        {"problem": "p", "objective": "latency", "method": "a", "status": "feasible", "value": 2.0, "bound": 1.0},
        {"problem": "p", "objective": "latency", "method": "b", "status": "optimal", "value": 1.6, "bound": 1.6},
        {"problem": "p", "objective": "latency", "method": "c", "status": "no_solution", "value": None, "bound": 0.5},
        {"problem": "q", "objective": "latency", "method": "a", "status": "feasible", "value": 4.0, "bound": None},
    ]
    out = finish_rows(rows)
    assert [r["best_bound"] for r in out] == [1.6, 1.6, 1.6, None]
    assert out[0]["gap_best"] == pytest.approx(0.2) and out[1]["gap_best"] == 0.0
    assert out[2]["gap_best"] is None and out[3]["gap_best"] is None
    assert out[0]["ratio_best"] == pytest.approx(1.25) and out[1]["ratio_best"] == 1.0
    assert rows[0].get("best_bound") is None  # inputs not changed


def test_time_limit_is_honoured_and_overrun_is_flagged(tmp_path, fake_methods):
    files = problems(tmp_path, n=1, blocks=6, devices=2)
    rows = compare(files, ["overrun"] + fast_methods(), time_limit=0.2)
    over = next(r for r in rows if r["method"] == "overrun")
    assert over["solve_time_s"] > 0.2 + time_limit_margin(0.2)
    assert over["within_limit"] is False
    for r in rows:
        if r["method"] != "overrun":
            assert r["within_limit"] is True


@pytest.mark.parametrize("method", [m for m in registry.METHODS if m not in ("single",)])
def test_every_method_honours_a_short_limit_in_compare(tmp_path, method):
    if method not in available([method]):
        pytest.fail(f"method '{method}' is registered but does not load (registry says so)")
    files = problems(tmp_path, n=1, blocks=30, devices=4)
    (row,) = compare(files, [method], time_limit=1.0)
    assert row["status"] in ("optimal", "feasible", "time_limit", "no_solution", "skipped"), row
    if row["status"] != "skipped":
        assert row["solve_time_s"] <= 1.0 + time_limit_margin(1.0), row
    else:
        assert row["message"], "a skipped row says why"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_results_file_round_trips_and_resume_runs_nothing_twice(tmp_path, suffix):
    files = problems(tmp_path, n=2)
    out = tmp_path / f"rows{suffix}"
    seen = []
    rows = compare(files, fast_methods(), time_limit=5, results=out, on_row=seen.append)
    assert len(seen) == len(rows)
    back = ResultsFile(out).read()
    assert back == rows                       # exact round trip, floats included
    again = []
    rows2 = compare(files, fast_methods(), time_limit=5, results=out, resume=True, on_row=again.append)
    assert again == [] and rows2 == rows
    # a new method or seed is added, the old rows kept
    rows3 = compare(files, fast_methods(), time_limit=5, seeds=[0, 1], resume=out, on_row=again.append)
    assert len(again) == len(rows) and len(rows3) == 2 * len(rows)
    check_rows(rows3)


def test_torn_last_line_is_dropped_on_resume(tmp_path, capsys):
    files = problems(tmp_path, n=2)
    out = tmp_path / "rows.jsonl"
    rows = compare(files, ["single"], time_limit=5, results=out)
    text = out.read_text()
    lines = text.splitlines(keepends=True)
    out.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a writer killed mid-line
    redone = []
    rows2 = compare(files, ["single"], time_limit=5, resume=out, on_row=redone.append)
    assert "dropped 1 incomplete line" in capsys.readouterr().err
    assert len(redone) == 1
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("solve_time_s", "wall_s")} for r in rs]
    assert strip(rows2) == strip(rows)
    # the CSV reader drops a torn last line too
    csv_out = tmp_path / "rows.csv"
    compare(files, ["single"], time_limit=5, results=csv_out)
    t = csv_out.read_text()
    csv_out.write_text(t[: len(t) - 20])
    assert len(ResultsFile(csv_out).read()) == len(rows) - 1


def _cli(args, **kw):
    code = ("import sys; from placement import registry; "
            "registry.METHODS['slow'] = 'tests.test_compare:_Slow'; "
            "from placement.cli import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_resume_after_kill_gives_the_clean_table_without_duplicates(tmp_path):
    files = problems(tmp_path, n=4, blocks=6, devices=2)
    methods = ",".join(["slow"] + fast_methods())
    total = 4 * len(methods.split(","))
    killed = tmp_path / "killed.csv"
    # 1 s a `slow` row: the study lasts >= 4 s, so the kill lands mid-study even on a loaded
    # machine where this poll loop may wait a second for the CPU
    proc = _cli(["compare", *files, "--methods", methods, "-t", "5", "--csv", str(killed)],
                env={**os.environ, "PLACEMENT_TEST_SLOW_S": "1.0"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if killed.exists() and len(ResultsFile(killed).read()) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    partial = ResultsFile(killed).read()
    assert 2 <= len(partial) < total, "the kill must land mid-study"
    resumed = _cli(["compare", *files, "--methods", methods, "-t", "5", "--resume", str(killed)])
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    clean = tmp_path / "clean.csv"
    done = _cli(["compare", *files, "--methods", methods, "-t", "5", "--csv", str(clean)])
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    a, b = ResultsFile(killed).read(), ResultsFile(clean).read()
    assert len(a) == len(b) == total
    timing = ("solve_time_s", "wall_s", "file")
    strip = lambda rs: [{k: v for k, v in r.items() if k not in timing} for r in rs]
    assert strip(a) == strip(b)
    assert len({tuple(r[k] for k in KEY) for r in a}) == total
    assert not list(tmp_path.glob(".killed.csv.*.tmp")), "stale temporaries are cleaned on resume"


def test_cli_table_exit_codes_and_json(tmp_path, diamond):
    files = problems(tmp_path, n=1)
    out = subprocess.run([sys.executable, "-m", "placement.cli", "compare", *files, "--methods",
                          "single", "-t", "5", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows[0]["method"] == "single" and rows[0]["status"] == "feasible"
    table = subprocess.run([sys.executable, "-m", "placement.cli", "compare", *files, "--methods",
                            "single", "-t", "5"], capture_output=True, text=True, cwd=ROOT)
    assert table.returncode == 0 and "single" in table.stdout and "gap_best" in table.stdout
    # no method finds a plan: the model fits no device -> exit 3, and the row says why
    for dev in diamond["devices"]:
        dev["memory_bytes"] = 10.0
    f = tmp_path / "tiny.json"
    f.write_text(json.dumps(diamond))
    bad = subprocess.run([sys.executable, "-m", "placement.cli", "compare", str(f), "--methods",
                          "single", "-t", "5", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 3, bad.stderr
    assert "no method found a plan for diamond" in bad.stderr
    assert json.loads(bad.stdout)[0]["message"]
    unknown = subprocess.run([sys.executable, "-m", "placement.cli", "compare", *files, "--methods",
                              "nope"], capture_output=True, text=True, cwd=ROOT)
    assert unknown.returncode == 2 and "unknown method 'nope'" in unknown.stderr


def test_input_errors_name_what_is_wrong(tmp_path, diamond):
    with pytest.raises(InputError, match="unique in a comparison"):
        compare([diamond, diamond], ["single"])
    with pytest.raises(InputError, match=r"ending in \.csv or \.jsonl"):
        compare([diamond], ["single"], results=tmp_path / "rows.txt")
    f = tmp_path / "p.json"
    f.write_text(json.dumps(diamond))
    with pytest.raises(InputError, match="is also a problem file"):
        compare([str(f)], ["single"], results=tmp_path / "p.json")
    assert json.loads(f.read_text()) == diamond
    with pytest.raises(InputError, match="workers: expected at least 1"):
        compare([diamond], ["single"], workers=0)
    with pytest.raises(InputError, match="objective: expected latency"):
        compare([diamond], ["single"], objective="speed")
    with pytest.raises(InputError, match="runs only in-process"):
        compare([placement.load(diamond)], ["single"], workers=2)
    assert no_plan_problems([{"problem": "x", "status": "infeasible"},
                             {"problem": "y", "status": "feasible"}]) == ["x"]


def test_skipped_row_for_a_refused_size(tmp_path):
    if "brute" not in available(["brute"]):
        pytest.fail("brute is registered but does not load (registry says so)")
    files = problems(tmp_path, n=1, blocks=40, devices=8)
    (row,) = compare(files, ["brute"], time_limit=5)
    assert row["status"] == "skipped" and "refuses" in row["message"]


def test_process_pool_gives_the_same_rows(tmp_path):
    files = problems(tmp_path, n=2)
    local = compare(files, fast_methods(), time_limit=5)
    pooled = compare(files, fast_methods(), time_limit=5, workers=2)
    drop = ("solve_time_s", "wall_s", "within_limit")
    assert [{k: v for k, v in r.items() if k not in drop} for r in pooled] == \
           [{k: v for k, v in r.items() if k not in drop} for r in local]


def test_ray_executor_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is the optional 'cluster' extra; not installed here")
    files = problems(tmp_path, n=2)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray.csv"
        rows = compare(files, fast_methods(), time_limit=5, executor="ray", results=out)
        assert ray.is_initialized(), "compare must not shut down a Ray instance it did not start"
    finally:
        ray.shutdown()
    local = compare(files, fast_methods(), time_limit=5)
    drop = ("solve_time_s", "wall_s", "within_limit")
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows] == \
           [{k: v for k, v in r.items() if k not in drop} for r in local]
    assert ResultsFile(out).read() == rows
    check_rows(rows)


def test_resume_reruns_the_rows_of_a_problem_that_changed(tmp_path, capsys):
    files = problems(tmp_path, n=2)
    out = tmp_path / "rows.csv"
    rows = compare(files, ["single"], time_limit=5, results=out)
    assert all(len(r["problem_sha"]) == 12 for r in rows)
    d = json.loads(Path(files[0]).read_text())
    for dev in d["devices"]:
        dev["flops_per_s"] *= 2          # re-measured: every compute time halves
    Path(files[0]).write_text(json.dumps(d))
    redone = []
    rows2 = compare(files, ["single"], time_limit=5, resume=out, on_row=redone.append)
    assert "g0 changed since 1 row was written: it is dropped" in capsys.readouterr().err
    assert [r["problem"] for r in redone] == ["g0"]
    assert len(rows2) == 2 and rows2[0]["value"] < rows[0]["value"] and rows2[1] == rows[1]
    assert ResultsFile(out).read() == rows2


def test_scenario_problem_reports_expected_and_worst_latency(tmp_path):
    """SPEC 10: on a conditional problem, latency_s is an expectation; compare shows the worst
    scenario beside it (rows and table), equal to the evaluator's per-scenario maximum."""
    example = str(ROOT / "examples" / "ask_the_expert.json")
    rows = compare([example], ["single", "heft"], time_limit=5, objective="latency")
    for r in rows:
        plan = placement.solve(example, r["method"], objective="latency", time_limit=5)
        per = [s["latency_s"] for s in plan.metrics["scenarios"].values()]
        assert r["latency_max_s"] == pytest.approx(max(per), rel=1e-12)
        assert r["latency_s"] == pytest.approx(plan.metrics["latency_s"], rel=1e-12)
        assert r["latency_max_s"] > r["latency_s"]
    table = subprocess.run([sys.executable, "-m", "placement.cli", "compare", example, "--methods",
                            "single", "-t", "5"], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "COLUMNS": "250"})
    assert table.returncode == 0, table.stderr
    assert "latency_max_s" in table.stdout and "the worst scenario's" in table.stdout
    # a problem without scenarios keeps the plain table: one scenario, worst = expected
    plain = compare(problems(tmp_path, n=1), ["single"], time_limit=5)
    assert plain[0]["latency_max_s"] == plain[0]["latency_s"]

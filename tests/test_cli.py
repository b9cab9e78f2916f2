"""The command line: exit codes 0/1/2/3, --json, -o, and no tracebacks for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from placement.cli import main

from .conftest import ROOT, diamond_dict


@pytest.fixture
def diamond_file(tmp_path):
    f = tmp_path / "diamond.json"
    f.write_text(json.dumps(diamond_dict()))
    return f


def test_solve_prints_plan_and_writes_file(diamond_file, tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(["solve", str(diamond_file), "--method", "single", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "status feasible" in text and "latency" in text and "plan written to" in text
    plan = json.loads(out.read_text())
    assert plan["method"] == "single" and set(plan["assignment"]) == {"s", "l", "r", "t"}


def test_solve_json(diamond_file, capsys):
    assert main(["solve", str(diamond_file), "-m", "single", "--json", "--objective", "energy"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["objective"] == "energy" and plan["value"] == plan["metrics"]["energy_j"]


def test_weighted_objective_from_cli(diamond_file, capsys):
    assert main(["solve", str(diamond_file), "-m", "single", "--json",
                 "--objective", '{"latency": 1, "energy": 0.5}']) == 0
    plan = json.loads(capsys.readouterr().out)
    m = plan["metrics"]
    assert plan["value"] == pytest.approx(m["latency_s"] + 0.5 * m["energy_j"])


def test_evaluate_command(diamond_file, tmp_path, capsys):
    plan = tmp_path / "hand.json"
    plan.write_text(json.dumps({"assignment": {"s": "A", "l": "A", "r": "B", "t": "A"}}))
    assert main(["evaluate", str(diamond_file), str(plan), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["latency_s"] == pytest.approx(0.55)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"assignment": {"s": "Z", "l": "A", "r": "B", "t": "A"}}))
    assert main(["evaluate", str(diamond_file), str(bad)]) == 2
    assert "assignment: expected device ids of the problem, found {'s': 'Z'}" in capsys.readouterr().err


def test_infeasible_plan_on_evaluate_exits_3(diamond_file, tmp_path, capsys):
    d = diamond_dict()
    d["devices"][0]["memory_bytes"] = 1000
    f = tmp_path / "small.json"
    f.write_text(json.dumps(d))
    plan = tmp_path / "all_a.json"
    plan.write_text(json.dumps({"assignment": {"s": "A", "l": "A", "r": "A", "t": "A"}}))
    assert main(["evaluate", str(f), str(plan)]) == 3
    assert "violation memory: device 'A' needs" in capsys.readouterr().out


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["model"]["blocks"][0].update(flops=-1), "model.blocks[0].flops: expected a finite number >= 0, found -1"),
    (lambda d: d["model"]["edges"].append(["t", "s"]), "expected an acyclic block graph (cycle:"),
    (lambda d: d.update(sourc="A"), "expected only known keys, found \"sourc\" (did you mean 'source'?"),
])
def test_bad_problem_exits_2_without_traceback(tmp_path, capsys, edit, message):
    d = diamond_dict()
    edit(d)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(d))
    assert main(["solve", str(f), "-m", "single"]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and message in err and "Traceback" not in err


def test_unknown_method_and_option(diamond_file, capsys):
    assert main(["solve", str(diamond_file), "-m", "magic"]) == 2
    assert "unknown method 'magic': expected one of single, heft" in capsys.readouterr().err
    assert main(["solve", str(diamond_file), "-m", "single", "--option", "x=1"]) == 2
    assert "method 'single' has no option ['x']" in capsys.readouterr().err
    assert main(["solve", str(diamond_file), "-m", "single", "--objective", "speed"]) == 2
    assert "--objective: expected latency, throughput or energy, found 'speed'" in capsys.readouterr().err


def test_proven_infeasible_exits_3_with_reason(tmp_path, capsys):
    d = diamond_dict()
    d["model"]["blocks"][2]["params_bytes"] = 3.2e9
    f = tmp_path / "big.json"
    f.write_text(json.dumps(d))
    assert main(["solve", str(f), "-m", "single"]) == 3
    out = capsys.readouterr().out
    assert "status infeasible" in out
    assert "block 'r' needs 3.2 GB (3.2e+09 bytes), the largest device it may run on ('A') holds 1 MB" in out


def test_no_single_device_fits_exits_3(tmp_path, capsys):
    d = diamond_dict()
    for dev in d["devices"]:
        dev["memory_bytes"] = 3500
    f = tmp_path / "tight.json"
    f.write_text(json.dumps(d))
    assert main(["solve", str(f), "-m", "single", "--json"]) == 3
    plan = json.loads(capsys.readouterr().out)
    assert plan["status"] == "no_solution" and "no single device can run the whole model" in plan["message"]


def test_methods_and_generate(tmp_path, capsys):
    assert main(["methods", "--json"]) == 0
    names = [m["name"] for m in json.loads(capsys.readouterr().out)]
    from placement.registry import METHODS
    assert names == list(METHODS)
    out = tmp_path / "g.json"
    assert main(["generate", "--shape", "dag", "--blocks", "9", "--devices", "3", "--seed", "4",
                 "-o", str(out)]) == 0
    assert len(json.loads(out.read_text())["model"]["blocks"]) == 9
    assert main(["generate", "--blocks", "0"]) == 2


def test_console_script_end_to_end(diamond_file):
    """The installed entry point, as a user runs it."""
    exe = ROOT / ".venv" / "bin" / "placement"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "placement.cli"]
    res = subprocess.run(cmd + ["solve", str(diamond_file), "-m", "single", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "feasible"
    res = subprocess.run(cmd + ["solve", str(diamond_file) + ".missing"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and "expected an existing problem file" in res.stderr
    assert "Traceback" not in res.stderr

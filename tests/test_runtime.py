"""`placement run`: real worker processes on gloo over loopback (SPEC section 11).

No timing asserts (CI has 2 cores): the outcomes checked are the output against the unsplit
model, the report's structure, which devices ran which blocks, and clean failures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
psutil = pytest.importorskip("psutil")
from torch import nn  # noqa: E402

import placement  # noqa: E402
from placement.runtime.prepare import predicted_transfers  # noqa: E402
from placement.runtime.supervisor import WorkerFailure  # noqa: E402
from placement.errors import InputError, PlanError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = "tests.test_runtime:small_model"
SPEC_KEYS = {"problem", "plan", "emulation", "inferences", "output_matches", "max_abs_error", "predicted",
             "measured", "error", "blocks", "transfers"}


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.ReLU()

    def forward(self, x):
        return x + self.act(self.bn(self.conv(x)))  # a skip edge around conv/bn/act


class SmallNet(nn.Module):
    """A small CNN with a residual stage: 4 blocks at block granularity, skip edges at layer."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.stage1 = Residual(8)
        self.stage2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x):
        return self.head(self.stage2(self.stage1(self.stem(x))))


def small_model() -> nn.Module:
    return SmallNet()


def _problem(granularity: str) -> dict:
    from profiles import make_problem, profile_model

    torch.manual_seed(0)
    section = profile_model(SmallNet(), (1, 3, 32, 32), granularity, name="smallnet", measure_time=False)
    prob = make_problem(section, ["rpi4", "jetson-nano", "laptop"], "wifi5", name=f"smallnet-{granularity}")
    # a slow camera on a fast network: every method moves blocks off it, so plans cross devices
    for d in prob["devices"]:
        if d["id"] == "rpi4":
            d["flops_per_s"] = 1e7
    prob["network"] = {"default": {"bandwidth_bytes_per_s": 1e9, "latency_s": 1e-4}}
    return prob


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("runtime")
    out = {}
    for g in ("block", "layer"):
        prob = _problem(g)
        path = d / f"{g}.json"
        path.write_text(json.dumps(prob))
        out[g] = path
    out["dir"] = d
    return out


def _spread(problem_path: Path, devices: list[str]) -> dict:
    """A hand-made plan: blocks in contiguous runs over ``devices`` (every device gets one)."""
    p = placement.load(str(problem_path))
    ids = [b.id for b in p.blocks]
    k = len(devices)
    assignment = {b: devices[min(i * k // len(ids), k - 1)] for i, b in enumerate(ids)}
    for b, d in p.pinned.items():
        assignment[p.blocks[b].id] = p.devices[d].id
    return {"assignment": assignment}


def _check_report(rep, n: int) -> None:
    d = rep.to_dict()
    assert set(d) == SPEC_KEYS
    # same kernels, same thread count: equal in practice (0.0 here); allclose is the contract
    assert d["output_matches"] is True and 0.0 <= d["max_abs_error"] <= 1e-5
    assert d["inferences"] == n
    assert set(d["measured"]) == {"latency_s", "latency_p90_s", "period_s"}
    assert all(b["measured_s"] is not None and b["measured_s"] > 0 for b in d["blocks"])
    assert all(t["measured_s"] is not None and t["measured_s"] > 0 for t in d["transfers"])


# Workers this test process started (through the CLI or in-process) inherit this mark, so the
# count ignores workers of other suites running on the machine (xdist, other checkouts).
_OWNER = os.environ.setdefault("PLACEMENT_TEST_OWNER", str(os.getpid()))


def _workers_alive() -> set[int]:
    out = set()
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            if ("placement.runtime.worker" in " ".join(proc.info["cmdline"] or [])
                    and (proc.info["environ"] or {}).get("PLACEMENT_TEST_OWNER") == _OWNER):
                out.add(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


@pytest.mark.parametrize("method", ["single", "heft", "cpsat", "dp", "local", "milp"])
def test_plans_of_every_method_reproduce_the_model(files, method, tmp_path):
    problem = str(files["block"])
    plan = placement.solve(problem, method, time_limit=10)
    assert plan.feasible
    path = tmp_path / "plan.json"
    plan.save(path)
    rep = placement.run(problem, str(path), MODEL, inferences=2)
    _check_report(rep, 2)
    # the report lists every block on the device the plan put it on
    assert {b["id"]: b["device"] for b in rep.blocks} == plan.assignment
    # at least two workers: the camera's input and output cross devices, and every transfer
    # the evaluator counts was measured
    assert rep.transfers and len(rep.transfers) == len(predicted_transfers(placement.load(problem), plan.assignment))


def test_three_workers_layer_granularity_skip_edges_emulated(files, tmp_path):
    problem = files["layer"]
    p = placement.load(str(problem))
    # a layer-level profile of the residual stage has a skip edge that jumps over blocks
    order = {b.id: i for i, b in enumerate(p.blocks)}
    assert any(order[p.blocks[v].id] - order[p.blocks[u].id] > 1 for u, v in zip(p.edge_src, p.edge_dst))
    plan = _spread(problem, ["rpi4", "jetson-nano", "laptop"])
    calib, trace = tmp_path / "calibrated.json", tmp_path / "trace.json"
    rep = placement.run(str(problem), plan, MODEL, inferences=2, emulate=True, time_scale=2.0,
                        calibrate=calib, trace=trace)
    _check_report(rep, 2)
    assert rep.emulation == "throttle" and rep.time_scale == 2.0
    assert len({b["device"] for b in rep.blocks}) == 3
    # the skip edge that crosses devices is a measured transfer
    assert any(t["src"] not in ("input",) and t["dst"] != "output" for t in rep.transfers)
    # calibration: measured times per device id, and the file loads and re-plans
    cal = placement.load(str(calib))
    for b in rep.blocks:
        blk = cal.blocks[cal.block_index[b["id"]]]
        assert blk.time_s[b["device"]] == pytest.approx(b["measured_s"])
    assert placement.solve(cal, "heft", time_limit=5).feasible
    tr = json.loads(trace.read_text())
    assert set(tr["schedule"]) == {b.id for b in p.blocks}
    # predicted above measured: every block drawn in both charts
    from placement.plots import show_measured
    info = show_measured(str(problem), plan, str(trace), tmp_path / "gantt.png")
    assert info["bars"] == p.n_blocks and (tmp_path / "gantt.png").stat().st_size > 0
    with pytest.raises(InputError, match="no measured times for blocks"):
        show_measured(str(problem), plan, {"schedule": {}}, tmp_path / "bad.png")


def test_timm_hybrid_block_granularity_two_workers(tmp_path):
    problem = ROOT / "examples" / "models" / "levit_128s.block.json"
    assert "fx_nodes" in json.loads(problem.read_text())["model"]["blocks"][0]
    plan = _spread(problem, ["rpi4", "jetson-nano"])
    rep = placement.run(str(problem), plan, "levit_128s", inferences=2)
    _check_report(rep, 2)
    assert len({b["device"] for b in rep.blocks}) == 2
    # attention blocks crossed a device boundary and came back equal to the unsplit model
    assert any(t["src"] != "input" and t["dst"] != "output" for t in rep.transfers)


def _cli(*args, env=None, timeout=240):
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "placement.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=e, timeout=timeout)


@pytest.mark.parametrize("fault,says", [
    ("kill", "SIGKILL"),          # a worker that dies
    ("stop", "no heartbeat"),     # one frozen whole (SIGSTOP: its heartbeat thread too)
])
def test_a_dead_or_frozen_worker_is_reported_and_nothing_is_left(files, tmp_path, fault, says):
    """Exit 1 naming the device (and, for a death, the block), no traceback, no process left."""
    plan_path = tmp_path / "plan.json"
    plan = _spread(files["block"], ["rpi4", "jetson-nano"])
    plan_path.write_text(json.dumps(plan))
    victim = next(b for b, d in plan["assignment"].items() if d == "jetson-nano")
    before = _workers_alive()
    r = _cli("run", str(files["block"]), str(plan_path), "--model", MODEL, "-n", "2",
             env={"PLACEMENT_RUNTIME_FAULT": f"{fault}:jetson-nano:{victim}"})
    assert r.returncode == 1, r.stderr
    assert "device 'jetson-nano'" in r.stderr and says in r.stderr and "Traceback" not in r.stderr
    if fault == "kill":
        assert f"block '{victim}'" in r.stderr
    assert _workers_alive() - before == set()


def test_hung_worker_ends_the_run_within_the_timeout(files, tmp_path):
    plan = _spread(files["block"], ["rpi4", "laptop"])
    victim = next(b for b, d in plan["assignment"].items() if d == "laptop")
    before = _workers_alive()
    os.environ["PLACEMENT_RUNTIME_FAULT"] = f"hang:laptop:{victim}"
    try:
        with pytest.raises(WorkerFailure,
                           match=rf"no progress for 3 s .*device 'laptop'.*running block '{victim}'"):
            placement.run(str(files["block"]), plan, MODEL, inferences=2, timeout_s=3)
    finally:
        del os.environ["PLACEMENT_RUNTIME_FAULT"]
    assert _workers_alive() - before == set()


def test_bad_plans_exit_2_before_any_worker_starts(files, tmp_path):
    problem = str(files["block"])
    p = placement.load(problem)
    good = _spread(files["block"], ["rpi4", "laptop"])["assignment"]
    cases = {
        "unknown block": ({**good, "nope": "rpi4"}, "unknown"),
        "unknown device": ({**good, p.blocks[1].id: "tpu"}, "device ids"),
        "missing block": ({k: v for k, v in list(good.items())[1:]}, "missing"),
    }
    for name, (assignment, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.json"
        path.write_text(json.dumps({"assignment": assignment}))
        r = _cli("run", problem, str(path), "--model", MODEL, timeout=60)
        assert r.returncode == 2, (name, r.stderr)
        assert message in r.stderr and str(path) in r.stderr and "Traceback" not in r.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    r = _cli("run", problem, str(broken), "--model", MODEL, timeout=60)
    assert r.returncode == 2 and "valid JSON" in r.stderr
    # infeasible: a device too small for its blocks
    tiny = json.loads(Path(problem).read_text())
    for d in tiny["devices"]:
        if d["id"] == "laptop":
            d["memory_bytes"] = 1.0
    with pytest.raises(PlanError, match="infeasible.*memory"):
        placement.run(tiny, {"assignment": good}, MODEL)


def test_unrebuildable_blocks_name_the_block(files):
    prob = json.loads(Path(files["block"]).read_text())
    victim = prob["model"]["blocks"][1]
    victim["fx_nodes"] = ["no_such_node"]
    plan = {"assignment": {b["id"]: "rpi4" for b in prob["model"]["blocks"]}}
    with pytest.raises(InputError, match=rf"block '{victim['id']}' cannot be rebuilt"):
        placement.run(prob, plan, MODEL)
    del victim["fx_nodes"]
    with pytest.raises(InputError, match=rf"block '{victim['id']}' cannot be rebuilt: .*no fx_nodes"):
        placement.run(prob, plan, MODEL)


def test_worker_that_cannot_bind_is_reported(files, monkeypatch):
    import socket

    plan = _spread(files["block"], ["rpi4", "laptop"])
    before = _workers_alive()
    with socket.socket() as held:  # rank 0 must listen on MASTER_PORT: it is taken
        held.bind(("127.0.0.1", 0))
        held.listen()
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", str(held.getsockname()[1]))
        with pytest.raises(WorkerFailure, match=r"device 'rpi4' \(rank 0\) exited with code 1 while joining "
                                                r"the process group: .*(EADDRINUSE|address already in use)"):
            placement.run(str(files["block"]), plan, MODEL, inferences=2)
    assert _workers_alive() - before == set()

"""`placement run --emulate` on a shared medium (SPEC 5a, 11): real gloo workers on loopback,
the emulated air serialising the senders; the measured latency follows the prediction made
with the medium, not the contention-blind one.

The model (`fan_model`): a stem, three parallel conv branches, their sum and a head. The
problem puts the camera and three boards on one Wi-Fi medium ``air`` at 1.6 MB/s (a branch's
32 KB input takes 20 ms on the air) and 1 ms latency; the stem takes 5 ms, each branch 30 ms,
the rest 1 ms. The plan fans the branches out to the three boards:

* contention-blind, the three inputs travel at once (arrive 26 ms), the branches end at 56 ms,
  the three results return at once (77 ms): about 79 ms;
* on the shared air the inputs go one after the other (sent 5-25, 25-46, 46-66 ms), and the
  first result waits for the third input to leave (results sent 66-87, 87-107, 107-128 ms):
  about 130 ms.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import placement  # noqa: E402

MODEL = "tests.test_media_run:fan_model"
DEVICES = ["phone", "rpi4", "jetson-nano", "laptop"]
#: measured / predicted latency: the emulation paces blocks and links with sleeps on a shared
#: 2-core machine (process wake-ups, gloo's own loopback time)
TOLERANCE = 0.15


class Branch(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x))


class FanNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.b1, self.b2, self.b3 = Branch(8), Branch(8), Branch(8)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        y = self.stem(x)
        return self.head(self.b1(y) + self.b2(y) + self.b3(y))


def fan_model() -> nn.Module:
    return FanNet()


def fan_problem(media: bool = True) -> dict:
    from profiles import make_problem, profile_model

    torch.manual_seed(0)
    section = profile_model(FanNet(), (1, 3, 32, 32), "block", name="fannet", measure_time=False)
    prob = make_problem(section, DEVICES, "wifi5", name="fannet-air" if media else "fannet-wired")
    ids = [d["id"] for d in prob["devices"]]
    times = {"stem": 0.005, "b1": 0.03, "b2": 0.03, "b3": 0.03}
    for b in prob["model"]["blocks"]:
        b["time_s"] = {d: times.get(b["id"], 0.001) for d in ids}
    prob["network"] = {"default": {"bandwidth_bytes_per_s": 1.6e6, "latency_s": 0.001}}
    if media:
        prob["network"]["media"] = [{"id": "air", "devices": ids}]
    prob["source"] = prob["sink"] = ids[0]
    return prob


def _fan_out_plan(prob: dict) -> dict:
    cam, *boards = [d["id"] for d in prob["devices"]]
    a = {b["id"]: cam for b in prob["model"]["blocks"]}
    a.update(b1=boards[0], b2=boards[1], b3=boards[2])
    return {"assignment": a}


def test_a_run_on_the_emulated_air_measures_the_prediction_made_with_the_medium(tmp_path):
    air, wired = fan_problem(True), fan_problem(False)
    plan = _fan_out_plan(air)
    blind = placement.evaluate(wired, plan)
    aware = placement.evaluate(air, plan)
    # the hand-worked figures of the module docstring
    assert blind.metrics["latency_s"] == pytest.approx(0.079, abs=0.0015)
    assert aware.metrics["latency_s"] == pytest.approx(0.1299, abs=0.0005)
    assert [tuple(t) for t in aware.medium_order["air"][:3]] == [("stem", "b1"), ("stem", "b2"), ("stem", "b3")]
    rep = placement.run(air, aware, MODEL, inferences=3, emulate=True)
    assert rep.output_matches
    measured = rep.measured["latency_s"]
    assert rep.predicted["latency_s"] == pytest.approx(aware.metrics["latency_s"])
    assert abs(measured / aware.metrics["latency_s"] - 1) <= TOLERANCE, (measured, aware.metrics)
    # contention matters here: the run is far above what contention-blind planning promised
    assert measured > 1.3 * blind.metrics["latency_s"], (measured, blind.metrics)
    # every transfer of the plan crossed the air and was measured
    assert len(rep.transfers) == 6 and all(t["measured_s"] > 0 for t in rep.transfers)
    print(f"fan-out on the emulated air: predicted {aware.metrics['latency_s']:.4f} s with the medium, "
          f"{blind.metrics['latency_s']:.4f} s without; measured {measured:.4f} s (time scale {rep.time_scale:g})")


def test_a_run_keeps_the_plans_medium_order(tmp_path):
    """A plan's ``medium_order`` (SPEC 5a) is kept by the run's single inferences: each
    branch's input and result take the air before the next branch's input (not first come
    first served): 5 ms stem, then three times 20 ms in, 1 ms latency, 30 ms branch, 20 ms
    out, 1 ms latency: about 220 ms, where the first-come order gives about 130 ms."""
    air = fan_problem(True)
    plan = _fan_out_plan(air)
    fcfs = placement.evaluate(air, plan)
    names = [tuple(t) for t in fcfs.medium_order["air"]]
    ins = [t for t in names if t[0] == "stem"]
    outs = [t for t in names if t[0] != "stem"]
    by_branch = {t[1]: t for t in ins}
    order = [x for o in outs for x in (by_branch[o[0]], o)]
    ordered_plan = {**plan, "medium_order": {"air": [list(t) for t in order]}}
    ordered = placement.evaluate(air, ordered_plan)
    assert [tuple(t) for t in ordered.medium_order["air"]] == order
    assert ordered.metrics["latency_s"] == pytest.approx(0.220, abs=0.003)
    assert fcfs.metrics["latency_s"] == pytest.approx(0.1299, abs=0.0005)
    rep = placement.run(air, ordered, MODEL, inferences=2, emulate=True)
    assert rep.output_matches
    measured = rep.measured["latency_s"]
    assert rep.predicted["latency_s"] == pytest.approx(ordered.metrics["latency_s"])
    assert abs(measured / ordered.metrics["latency_s"] - 1) <= TOLERANCE, (measured, ordered.metrics)

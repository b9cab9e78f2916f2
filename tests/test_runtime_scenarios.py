"""`placement run` on conditional models (SPEC sections 10 and 11, issue 16): real gloo workers
on loopback run one scenario per inference, only the scenario's blocks compute and send, and
the sink's result equals the reference computation of that scenario on the unsplit models.

No timing asserts (CI has 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("psutil")
from torch import nn  # noqa: E402

import placement  # noqa: E402

GEN = "tests.test_runtime_scenarios:small_generalist"
EXPERT = "tests.test_runtime_scenarios:small_expert"
EXITS_MODEL = "tests.test_runtime_scenarios:small_generalist"
SHAPE = (1, 3, 32, 32)


class Net(nn.Module):
    """A small CNN classifier: stem, two stages, head (10 classes)."""

    def __init__(self, width: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.stage1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10))

    def forward(self, x):
        return self.head(self.stage2(self.stage1(self.stem(x))))


def small_generalist() -> nn.Module:
    return Net(8)


def small_expert() -> nn.Module:
    return Net(16)


def _section(spec: str, model: nn.Module) -> dict:
    from profiles import profile_model

    sec = profile_model(model, SHAPE, "block", name=spec.split(":")[-1], measure_time=False)
    sec["meta"]["source_model"] = spec   # as 'placement profile' records it
    return sec


def experts_problem() -> dict:
    from profiles import make_problem
    from profiles.conditional import combine_experts

    gsec = _section(GEN, small_generalist())
    esec = _section(EXPERT, small_expert())
    section = combine_experts(gsec, [esec, esec], [0.5, 0.3, 0.2], name="ask-small")
    prob = make_problem(section, ["rpi4", "jetson-nano", "laptop"], "wifi5", name="ask-small")
    prob["network"] = {"default": {"bandwidth_bytes_per_s": 1e9, "latency_s": 1e-4}}
    return prob


def exits_problem() -> dict:
    from profiles import make_problem
    from profiles.conditional import add_exits, exit_head_costs

    model = small_generalist()
    sec = _section(EXITS_MODEL, model)
    heads = exit_head_costs(model, sec, ["stage1"], SHAPE, warmup=0, repeats=1)
    section = add_exits(sec, {"stage1": 0.4}, heads)
    prob = make_problem(section, ["rpi4", "jetson-nano", "laptop"], "wifi5", name="exits-small")
    prob["network"] = {"default": {"bandwidth_bytes_per_s": 1e9, "latency_s": 1e-4}}
    return prob

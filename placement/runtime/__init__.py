"""The split-inference runtime (SPEC section 11): execute a plan on real worker processes.

``placement.run(problem, plan, model=...)`` checks the plan against the problem (exit 2 on
any mismatch, before any worker starts), rebuilds the blocks from the profile's mapping,
starts one worker per device on torch.distributed (gloo, loopback here or across machines
given ``MASTER_ADDR``/``MASTER_PORT``), supervises them, checks the sink's output against the
unsplit model, and returns a `RunReport`: measured against predicted, in total, block by
block and transfer by transfer. See docs/runtime.md.

Importing this package does not import torch; `run` does.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from typing import Any, Sequence

from .report import RunReport

__all__ = ["run", "RunReport", "DEFAULT_TIMEOUT_S", "DEFAULT_INFERENCES"]

#: no worker changing state for this long is a hang (s); the process group's own timeout too.
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_INFERENCES = 10


def run(problem: Any, plan: Any, model: str | None = None, *, scenario: str | None = None,
        inferences: int = DEFAULT_INFERENCES, emulate: bool = False,
        time_scale: float | None = None, threads: int | None = None, seed: int = 0,
        timeout_s: float = DEFAULT_TIMEOUT_S, devices: Sequence[str] | None = None,
        calibrate: str | os.PathLike[str] | None = None, trace: str | os.PathLike[str] | None = None,
        on_state=None) -> RunReport | None:
    """Execute ``plan`` (a `Plan`, dict or path) of ``problem`` (a `Problem`, dict or path)
    with the torch model ``model`` (a timm name, random weights, or ``package.module:callable``).

    ``inferences``: single inferences measured (after one warm-up) and inputs in the
    pipelined stream. ``emulate``: pace each device to its predicted times and throttle each
    link (`placement.runtime.emulation`); ``time_scale`` slows the emulated world by that
    factor (default: the smallest that this host can keep up with). ``threads``: intra-op
    threads per worker (default 1 when emulating, else torch's default). ``devices``: the
    plan's devices whose workers this machine starts (default all; see docs/runtime.md for
    two machines). ``calibrate``: write the problem with the measured block times as
    ``time_s[device id]``. ``trace``: write the measured schedule (for ``placement show``).

    A problem with scenarios (SPEC 10) runs one scenario per inference: ``scenario`` (a
    name) for every inference, else each one sampled from the probabilities with ``seed``;
    its blocks are rebuilt from the source models the problem names (``model`` is then only
    needed for an early-exit problem profiled before they were recorded), and the report is
    a `conditional_report.ScenarioRunReport` (per scenario and in expectation).

    Raises `InputError` (exit 2) for a bad or mismatched plan or model, before any worker
    starts; `supervisor.WorkerFailure` (exit 1) when a worker dies or hangs. Returns None on
    a machine that does not host the sink (its report is made there).
    """
    from ..errors import InputError
    from ..plan import write_json_atomic
    from . import emulation
    from .prepare import build_run, check_plan, predicted_transfers
    from .report import analyse, calibrated_problem
    from .supervisor import supervise

    if inferences < 2:
        raise InputError(f"--inferences: expected at least 2 (the period needs two outputs), found {inferences}")
    if time_scale is not None and not time_scale >= 1.0:
        raise InputError(f"--time-scale: expected a factor >= 1, found {time_scale}")
    if timeout_s <= 0:
        raise InputError(f"--timeout: expected seconds > 0, found {timeout_s}")
    p, scored = check_plan(problem, plan)
    if not p.scenarios:
        if scenario is not None:
            raise InputError(f"--scenario: problem '{p.name}' has no scenarios (model.scenarios)")
        if not model:
            raise InputError("--model: expected the profiled model (a timm name or 'package.module:callable')")
    plan_name = str(plan) if isinstance(plan, (str, os.PathLike)) else (scored.method or "plan")
    if isinstance(plan, (str, os.PathLike)):
        plan_name = os.path.basename(str(plan))
    threads = threads or (1 if emulate else None)
    import torch
    if p.scenarios:
        from .conditional import build_scenario_run
        spec, keep = build_scenario_run(p, scored, model, scenario=scenario, inferences=inferences, emulate=emulate,
                                        time_scale=time_scale, threads=threads or torch.get_num_threads(),
                                        seed=seed, timeout_s=timeout_s)
    else:
        spec, keep = build_run(p, scored, model, inferences=inferences, emulate=emulate, time_scale=time_scale,
                               threads=threads or torch.get_num_threads(), seed=seed, timeout_s=timeout_s)
    world = spec["world"]
    local = list(world) if devices is None else list(devices)
    unknown = [d for d in local if d not in world]
    if unknown:
        raise InputError(f"--devices: {unknown} run no block of this plan; the plan's devices are {world}")
    link_kind = emulation.NONE
    netem_note = ""
    if emulate:
        # probed once per run and reported; the throttle is what this runtime implements (where
        # netem works, the report still says "throttle": kernel shaping is not built, docs/runtime.md)
        _, netem_note = emulation.netem_available()
        link_kind = emulation.THROTTLE
    run_dir = tempfile.mkdtemp(prefix="placement-run-")
    spec["media_dir"] = run_dir      # shared media's free times (emulation.Medium), one file each
    try:
        with open(os.path.join(run_dir, "run.pkl"), "wb") as f:
            pickle.dump(spec, f)
        supervise(run_dir, world, local, timeout_s=timeout_s, on_state=on_state)
        path = os.path.join(run_dir, "records.pkl")
        if spec["sink"] not in local:
            return None
        with open(path, "rb") as f:
            records = pickle.load(f)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    if p.scenarios:
        from .conditional_report import analyse_scenarios
        rep = analyse_scenarios(spec, records, problem=p, scored=scored, plan_name=plan_name, emulation=link_kind,
                                references=keep["references"], host_s=keep["host_s"])
    else:
        rep = analyse(spec, records, problem=p, scored=scored,
                      predicted_transfers=predicted_transfers(p, scored.assignment), plan_name=plan_name,
                      emulation=link_kind, references=keep["references"], host_s=keep["host_s"])
    rep.netem = netem_note
    if calibrate:
        raw = _raw_problem(problem, p)
        write_json_atomic(calibrate, calibrated_problem(raw, rep))
    if trace:
        write_json_atomic(trace, rep.trace())
    return rep


def _raw_problem(problem: Any, p) -> dict[str, Any]:
    """The problem as the user wrote it (file or dict), else the loader's expanded form."""
    import copy
    import json
    from collections.abc import Mapping

    if isinstance(problem, Mapping):
        return copy.deepcopy(dict(problem))
    if isinstance(problem, (str, os.PathLike)) and os.path.isfile(str(problem)):
        with open(problem, encoding="utf-8") as f:
            return json.load(f)
    return json.loads(json.dumps(dict(p.spec), default=list))

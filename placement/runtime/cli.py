"""``placement run PROBLEM PLAN [--model MODEL] [--scenario NAME] [--inferences N] [--emulate] [--calibrate OUT.json] [--json]``."""

from __future__ import annotations

import argparse
import json
import sys

from . import DEFAULT_INFERENCES, DEFAULT_TIMEOUT_S


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("problem", help="problem file (JSON) with the profile's block-to-module mapping")
    p.add_argument("plan", help="plan file (JSON) for that problem")
    p.add_argument("--model", default=None, metavar="MODEL",
                   help="the profiled model: a timm name (random weights, nothing is downloaded) or "
                        "'package.module:callable' (a problem with scenarios names its own source models)")
    p.add_argument("--scenario", default=None, metavar="NAME",
                   help="a problem with scenarios: run scenario NAME in every inference (default: each "
                        "inference's scenario sampled from the probabilities with --seed)")
    p.add_argument("-n", "--inferences", type=int, default=DEFAULT_INFERENCES,
                   help=f"single inferences measured, and inputs in the pipelined stream (default {DEFAULT_INFERENCES})")
    p.add_argument("--emulate", action="store_true",
                   help="pace every device to its predicted block times and throttle every link to the "
                        "problem's bandwidth and latency (docs/runtime.md)")
    p.add_argument("--time-scale", type=float, default=None, metavar="S",
                   help="with --emulate: run the emulated world S times slower (>= 1; default: the smallest "
                        "this host keeps up with); reported figures are divided by S")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads per worker (default 1 with --emulate, else torch's default)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds without progress before the run is declared hung (default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--devices", default=None,
                   help="comma-separated plan devices whose workers run on this machine (default all); "
                        "with MASTER_ADDR/MASTER_PORT, for runs across machines")
    p.add_argument("--seed", type=int, default=0, help="seed of the model's random weights and the inputs")
    p.add_argument("--calibrate", metavar="OUT.json",
                   help="write the problem with the measured block times as time_s[device id]")
    p.add_argument("--trace", metavar="OUT.json",
                   help="write the measured schedule (for 'placement show PROBLEM PLAN --measured OUT.json')")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout (SPEC section 11)")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from . import run as run_plan
    from .supervisor import WorkerFailure

    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads: expected at least 1, found {args.threads}")
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None
    try:
        rep = run_plan(args.problem, args.plan, args.model, scenario=args.scenario,
                       inferences=args.inferences, emulate=args.emulate,
                       time_scale=args.time_scale, threads=args.threads, seed=args.seed, timeout_s=args.timeout,
                       devices=devices, calibrate=args.calibrate, trace=args.trace)
    except InputError as exc:
        from ..errors import ProblemError
        if isinstance(exc, ProblemError):
            raise
        raise InputError(f"{args.problem}, {args.plan}: {exc}") from None
    except WorkerFailure as exc:
        print(f"placement run: error: {exc}", file=sys.stderr)
        return 1
    if rep is None:
        print("placement run: this machine's workers are done; the report is made where the sink runs",
              file=sys.stderr)
        return 0
    if args.json:
        from ..plan import _clean
        print(json.dumps(_clean(rep.to_dict()), indent=2))
    else:
        from ..report import console
        from .conditional_report import ScenarioRunReport, print_scenario_report
        from .report import print_report
        (print_scenario_report if isinstance(rep, ScenarioRunReport) else print_report)(rep, console())
        if args.calibrate:
            console().print(f"calibrated problem written to {args.calibrate}")
    return 0 if rep.output_matches else 1

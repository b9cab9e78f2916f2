"""``placement profile MODEL --devices ... -o problem.json`` (called by ``placement.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import GRANULARITIES, catalog


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``placement profile``."""
    parser.add_argument("model", metavar="MODEL", nargs="?",
                        help="a timm model name (created with pretrained=False: nothing is downloaded) "
                             "or 'package.module:callable' returning your torch.nn.Module")
    parser.add_argument("--devices", default="rpi4,jetson-nano,laptop",
                        help="comma-separated catalog device types; repeats allowed (rpi4,rpi4,laptop); "
                             "the first is the camera (source and sink). Types: " + ", ".join(catalog.device_types()))
    parser.add_argument("--granularity", choices=GRANULARITIES, default="block",
                        help="where to cut the model (default: block)")
    parser.add_argument("--input", dest="input_shape", default=None,
                        help="input shape NxCxHxW, e.g. 1x3x256x256 (default: the model's own, else 1x3x224x224)")
    parser.add_argument("--network", default="wifi5",
                        help="catalog network for the default link (" + ", ".join(catalog.network_names())
                             + "; default wifi5)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads while measuring (default 1)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up runs per block (default 3)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per block, median kept (default 10)")
    parser.add_argument("--name", default=None, help="problem name (default MODEL-NDEV)")
    parser.add_argument("-o", "--output", default=None, help="problem file to write (default: stdout)")
    parser.add_argument("--splits", choices=("none", "auto"), default="none",
                        help="auto: mark the blocks that can run as shards (conv blocks by rows, attention "
                        "by heads, MLP by hidden units) with their real halo and gather costs (default none)")
    parser.add_argument("--no-media", dest="media", action="store_false", default=None,
                        help="a Wi-Fi network without a shared medium (transfers do not contend)")
    cond = parser.add_argument_group("conditional execution (scenarios; docs/profiles.md)")
    cond.add_argument("--generalist", metavar="MODEL",
                      help="a generalist model on the edge (instead of MODEL), with --experts and --route")
    cond.add_argument("--experts", metavar="MODEL[:COUNT],...",
                      help="expert models, e.g. deit_small_patch16_224:4")
    cond.add_argument("--route", metavar="P0,P1,...",
                      help="the edge-only probability, then each expert's (sum 1)")
    cond.add_argument("--exits", metavar="BLOCK:P,...",
                      help="early-exit heads after these blocks, with the probability of exiting there")


def run(args: argparse.Namespace) -> int:
    """Profile, build the problem, write it (atomically). Returns the exit code (0)."""
    for name, default in (("generalist", None), ("experts", None), ("route", None), ("exits", None),
                          ("splits", "none"), ("media", None)):
        if not hasattr(args, name):  # a Namespace built by a caller that predates these options
            setattr(args, name, default)
    import warnings

    from placement.errors import InputError

    # fvcore traces with torch.jit, which torch 2.14 marks deprecated: noise for our users
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)

    from . import make_problem, torch_available
    from .models import default_input_shape, parse_input_shape

    types = catalog.parse_device_list(args.devices)
    catalog.network_spec(args.network)  # unknown network: InputError before any work
    if args.output:
        from placement.plan import check_output_path
        check_output_path(args.output, what="problem file")  # before minutes of profiling
    if args.threads < 1 or args.warmup < 0 or args.repeats < 1:
        raise InputError("--threads and --repeats must be >= 1, --warmup >= 0")
    shape = parse_input_shape(args.input_shape) if args.input_shape else None
    if not torch_available():
        raise InputError("placement profile needs the 'profile' extra (torch, torchvision, timm, fvcore): "
                         "pip install 'placement[profile]'")
    from .calibration import measure_host_reference
    from .graph import TraceError
    from .models import load_model
    from .profile import profile_model

    from . import conditional as C

    def profiled(spec: str):
        model, model_name = load_model(spec)
        shp = shape or default_input_shape(model)
        try:
            sec = profile_model(model, shp, args.granularity, name=model_name, threads=args.threads,
                                warmup=args.warmup, repeats=args.repeats,
                                halves=getattr(args, "splits", "none") == "auto" and not args.generalist)
        except TraceError as exc:
            raise InputError(f"MODEL '{spec}': {exc}") from None
        except RuntimeError as exc:  # e.g. the input shape does not fit the model
            raise InputError(f"MODEL '{spec}' failed on input {'x'.join(map(str, shp))}: {exc}") from None
        sec["meta"]["source_model"] = spec  # what 'placement run' rebuilds a scenario model's blocks from
        return model, model_name, shp, sec

    if args.generalist:
        if args.model or args.exits:
            raise InputError("--generalist: give either MODEL (with --exits) or --generalist with --experts")
        if not args.experts or not args.route:
            raise InputError("--generalist: needs --experts and --route")
        experts = C.parse_experts(args.experts)
        route = C.parse_route(args.route, len(experts))
        _, gname, _, gsec = profiled(args.generalist)
        cache: dict[str, dict] = {}
        for e in experts:  # the same model twice is profiled once
            if e not in cache:
                cache[e] = profiled(e)[3]
        section = C.combine_experts(gsec, [cache[e] for e in experts], route)
        model_name = section["name"]
    else:
        if not args.model:
            raise InputError("MODEL: expected a timm name or 'package.module:callable' (or --generalist)")
        if args.experts or args.route:
            raise InputError("--experts and --route go with --generalist")
        model, model_name, shp, section = profiled(args.model)
        if args.splits == "auto":
            from .splits import add_splits, split_candidates
            section = add_splits(section, split_candidates(model, section, shp))
        if args.exits:
            exits = C.parse_exits(args.exits)
            ids = [b["id"] for b in section["blocks"]]
            for x in exits:
                if x not in ids:
                    C.add_exits(section, {x: exits[x]}, {})  # raises, naming the block and the valid ones
            heads = C.exit_head_costs(model, section, list(exits), shp, threads=args.threads,
                                      warmup=args.warmup, repeats=args.repeats)
            section = C.add_exits(section, exits, heads)
    reference = measure_host_reference(args.threads, args.warmup, args.repeats)
    problem = make_problem(section, types, args.network, reference=reference, name=args.name,
                           media=args.media)
    text = json.dumps(problem, indent=1)
    if args.output:
        write_atomic(args.output, text + "\n")
        n_b, n_e = len(section["blocks"]), len(section["edges"])
        print(f"{args.output}: {model_name}, {n_b} blocks, {n_e} edges, {len(problem['devices'])} devices",
              file=sys.stderr)
    else:
        sys.stdout.write(text + "\n")
    return 0


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, with an ordinary file's mode."""
    from placement.plan import write_text_atomic
    write_text_atomic(path, text)


def main(argv: Any = None) -> int:  # pragma: no cover - convenience: python -m profiles.cli
    parser = argparse.ArgumentParser(prog="placement profile")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

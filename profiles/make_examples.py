"""Regenerate the shipped example problems: ``python -m profiles.make_examples``.

Seven timm models (five hybrids, one CNN, one ViT) at the ``stage`` and ``block``
granularities, profiled on this machine (1 thread, 3 warm-up runs, median of 10) and
calibrated onto one realistic device set: a Raspberry Pi 4 camera (the source and sink), an
ESP32-S3 node (6 MiB for the model, so no whole model fits on it), a Jetson Nano, a phone, a
laptop and a near-edge GPU server, on Wi-Fi 5. Needs the ``profile`` extra, except with
``--rebuild``, which keeps the measured model sections and host reference of the existing
files and only redoes devices, network and calibration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

#: (timm name, input shape): each model at its own default resolution
MODELS = [
    ("mobilevit_s", (1, 3, 256, 256)),
    ("efficientformer_l1", (1, 3, 224, 224)),
    ("levit_128s", (1, 3, 224, 224)),
    ("fastvit_t8", (1, 3, 256, 256)),
    ("coatnet_0_rw_224", (1, 3, 224, 224)),
    ("resnet18", (1, 3, 224, 224)),
    ("deit_tiny_patch16_224", (1, 3, 224, 224)),
]
GRANULARITIES = ("stage", "block")
DEVICES = ["rpi4", "esp32-s3", "jetson-nano", "phone", "laptop", "edge-gpu"]
NETWORK = "wifi5"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profiles.make_examples", description=__doc__)
    parser.add_argument("--out", default=os.path.join("examples", "models"), help="output folder")
    parser.add_argument("--models", default=",".join(m for m, _ in MODELS), help="subset, comma-separated")
    parser.add_argument("--granularities", default=",".join(GRANULARITIES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rebuild", action="store_true",
                        help="no measuring: rebuild the problems from the existing files' model sections")
    args = parser.parse_args(argv)
    if args.rebuild:
        return _rebuild(args)

    from . import make_problem
    from .calibration import measure_host_reference
    from .cli import write_atomic
    from .models import load_model
    from .profile import profile_model

    wanted = set(args.models.split(","))
    reference = measure_host_reference(args.threads, args.warmup, args.repeats)
    print(f"host reference: {reference['rate_flops_per_s']:.3e} flops/s "
          f"({reference['time_host_s'] * 1e3:.1f} ms for resnet18 at 224)", file=sys.stderr)
    for name, shape in MODELS:
        if name not in wanted:
            continue
        for gran in args.granularities.split(","):
            t0 = time.perf_counter()
            model, _ = load_model(name)
            section = profile_model(model, shape, gran, name=name, threads=args.threads, warmup=args.warmup,
                                    repeats=args.repeats)
            problem = make_problem(section, DEVICES, NETWORK, reference=reference, name=f"{name}.{gran}")
            path = os.path.join(args.out, f"{name}.{gran}.json")
            write_atomic(path, json.dumps(problem, indent=1) + "\n")
            m = section["meta"]
            print(f"{path}: {len(section['blocks'])} blocks, {len(section['edges'])} edges, "
                  f"{m['model_flops_fvcore'] / 1e9:.3f} GFLOPs (fvcore), host {m['model_time_host_s'] * 1e3:.1f} ms, "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _rebuild(args) -> int:
    from . import make_problem
    from .cli import write_atomic

    for name, _ in MODELS:
        if name not in set(args.models.split(",")):
            continue
        for gran in args.granularities.split(","):
            path = os.path.join(args.out, f"{name}.{gran}.json")
            with open(path, encoding="utf-8") as f:
                old = json.load(f)
            section = old["model"]
            for b in section["blocks"]:
                b.pop("time_s", None)
            reference = old["meta"]["calibration"]["reference"]
            problem = make_problem(section, DEVICES, NETWORK, reference=reference, name=f"{name}.{gran}")
            write_atomic(path, json.dumps(problem, indent=1) + "\n")
            print(f"{path}: rebuilt", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Profiles: real PyTorch models and real devices into problem files.

``profile_model(model, input_shape, granularity)`` cuts a torch model into blocks along its
real data flow (torch.fx) and measures each block on this machine: FLOPs (fvcore),
parameter bytes, peak working memory, output and per-edge tensor bytes, and time.
``make_problem(model_section, ["rpi4", "laptop"], "wifi5", reference=...)`` turns that into
a complete problem file with catalog devices, a catalog network and calibrated times;
``profile_problem`` does both in one call, as ``placement profile`` does.

Nothing here imports torch at import time: the catalog functions work without it, and
`profile_model` imports torch (the ``profile`` extra) when called. See docs/profiles.md.
"""

from __future__ import annotations

from typing import Any, Sequence

from .catalog import device_spec, device_types, devices, network, network_names, network_spec
from .problem import make_problem

GRANULARITIES = ("stage", "block", "layer")

__all__ = [
    "GRANULARITIES", "profile_model", "profile_problem", "make_problem", "load_model",
    "device_types", "network_names", "device_spec", "network_spec", "devices", "network",
    "measure_host_reference", "extract_block", "torch_available",
]


def torch_available() -> bool:
    """True when the ``profile`` extra (torch, fvcore) is importable."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "fvcore"))


def profile_model(model: Any, input_shape: Sequence[int] = (1, 3, 224, 224), granularity: str = "block",
                  **options: Any) -> dict[str, Any]:
    """Measure ``model`` (a ``torch.nn.Module``) block by block; see `profiles.profile.profile_model`.

    Returns the ``model`` section of a problem file. ``options``: ``name``, ``threads``
    (default 1), ``warmup`` (3), ``repeats`` (10), ``measure_time`` (True), ``seed`` (0).
    """
    from .profile import profile_model as _profile_model

    return _profile_model(model, input_shape, granularity, **options)


def measure_host_reference(threads: int = 1, warmup: int = 3, repeats: int = 10) -> dict[str, Any]:
    """This machine's effective rate on the calibration reference (see `profiles.calibration`)."""
    from .calibration import measure_host_reference as _m

    return _m(threads, warmup, repeats)


def profile_problem(model: Any, device_types: Sequence[str], network: str = "wifi5", *,
                    input_shape: Sequence[int] = (1, 3, 224, 224), granularity: str = "block",
                    name: str | None = None, threads: int = 1, warmup: int = 3, repeats: int = 10,
                    source: str | None = None) -> dict[str, Any]:
    """Profile ``model`` (a module, a timm name, or ``"package.module:callable"``) and return a
    complete problem file (dict) for ``device_types`` on ``network``."""
    module, model_name = load_model(model) if isinstance(model, str) else (model, None)
    section = profile_model(module, input_shape, granularity, name=name or model_name, threads=threads,
                            warmup=warmup, repeats=repeats)
    reference = measure_host_reference(threads, warmup, repeats)
    return make_problem(section, device_types, network, reference=reference, source=source)


def load_model(spec: str) -> tuple[Any, str]:
    """A model from a timm name (``pretrained=False``: nothing is downloaded) or from
    ``"package.module:callable"`` (the callable returns an ``nn.Module``). Returns (module, name)."""
    from .models import load_model as _load

    return _load(spec)


def extract_block(gm: Any, fx_nodes: Sequence[str]) -> Any:
    """Build one block alone from the model's traced GraphModule and the block's ``fx_nodes``
    (see `profiles.graph.extract_block`)."""
    from .graph import extract_block as _extract

    return _extract(gm, fx_nodes)

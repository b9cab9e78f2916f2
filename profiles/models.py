"""Where a model comes from: a timm name or a user's ``package.module:callable``."""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from typing import Any

from .catalog import _input_error


def load_model(spec: str) -> tuple[Any, str]:
    """Return (``nn.Module`` in eval mode, name) for ``spec``.

    ``spec`` is a timm model name, created with ``pretrained=False`` (random weights, nothing
    is downloaded), or ``package.module:callable`` where the callable takes no argument and
    returns an ``nn.Module`` (an ``nn.Module`` instance at that path is used as it is). The
    current directory is importable, so ``mymodel:build`` finds ``./mymodel.py``.
    Raises `placement.errors.InputError` for an unknown name or a bad callable.
    """
    import torch

    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise _input_error(f"MODEL: expected a timm name or 'package.module:callable', found '{spec}'")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            mod = importlib.import_module(module_name)
        except ImportError as exc:
            raise _input_error(f"MODEL: cannot import module '{module_name}' ({exc})") from None
        obj: Any = mod
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise _input_error(f"MODEL: module '{module_name}' has no attribute '{attr}'")
            obj = getattr(obj, part)
        if isinstance(obj, torch.nn.Module):
            model = obj
        elif callable(obj):
            model = obj()
        else:
            raise _input_error(f"MODEL: '{spec}' is neither an nn.Module nor a callable")
        if not isinstance(model, torch.nn.Module):
            raise _input_error(f"MODEL: '{spec}' returned {type(model).__name__}, expected a torch.nn.Module")
        return model.eval(), attr.split(".")[-1]

    import timm

    if not timm.is_model(spec):
        close = difflib.get_close_matches(spec, timm.list_models(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise _input_error(f"MODEL: unknown timm model '{spec}'{hint} "
                           "(or give your own model as 'package.module:callable')")
    model = timm.create_model(spec, pretrained=False)
    return model.eval(), spec


def default_input_shape(model: Any) -> tuple[int, ...]:
    """The model's own input size when it declares one (timm's ``default_cfg``), batch 1;
    otherwise 1x3x224x224."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    if size and len(size) == 3:
        return (1, *(int(s) for s in size))
    return (1, 3, 224, 224)


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"1x3x256x256"`` -> ``(1, 3, 256, 256)``; InputError when malformed."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise _input_error(f"--input: expected a shape like 1x3x224x224, found '{text}'") from None
    if len(shape) < 2 or any(s <= 0 for s in shape):
        raise _input_error(f"--input: expected positive sizes like 1x3x224x224, found '{text}'")
    return shape

"""Devices and per-call numeric settings: which device a config names, mixed precision through
`torch.autocast` (thread-local, so one session's training cannot change another's numbers), and
the optimizer torch offers for that device. Nothing here changes process-wide state."""

from __future__ import annotations

import contextlib

import torch

from ..errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" -> CUDA, then Apple MPS, then CPU; a named device must exist here."""
    mps = getattr(torch.backends, "mps", None)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device {name!r} is not a device name; use auto, cpu, cuda, cuda:N or mps.") from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
        "mps": mps is not None and mps.is_available(),
    }.get(device.type, False)
    if not available:
        raise ConfigError(f"train.device {name!r} is not available on this machine; use --device auto or cpu.")
    return device


def autocast(device: torch.device, precision: str, cache: bool = True):
    """The context the forward pass runs in: bfloat16 autocast, or nothing for float32. A step
    recorded as a CUDA graph runs without autocast's cache of cast weights (`cache=False`), which
    would outlive the recording."""
    if precision == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


def make_optimizer(params, lr: float, capturable: bool = False) -> torch.optim.Adam:
    """Adam (Kingma & Ba, arXiv:1412.6980) with torch's fused kernel where the device has it
    (CUDA, CPU), else its multi-tensor version; the updates are the same. `capturable`: its step
    counts stay on the device, so that a CUDA graph can record the step (training.step)."""
    params = list(params)
    if capturable:
        return torch.optim.Adam(params, lr=lr, fused=True, capturable=True)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
        return torch.optim.Adam(params, lr=lr, foreach=True)

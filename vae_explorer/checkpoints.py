"""Checkpoints: a folder holding four plain files, written atomically and read without unpickling.

    NAME/config.json       {"format_version": 1, "data": {...}, "model": {...}, "train": {...}}
    NAME/model.safetensors the weights only
    NAME/history.json      one object per epoch (epoch, train_loss, ..., seconds)
    NAME/metrics.json      test metrics written by `evaluate`

A save writes a sibling folder `.NAME.saving-PID` and swaps it in with renames, so an
interrupted save leaves the previous checkpoint in place (or, if it stopped between the two
renames, as `.NAME.previous-PID`, which `load_checkpoint` puts back).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig, config_from_dict
from .errors import CheckpointError, ConfigError
from .models import VAE, build_model

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, HISTORY_FILE, METRICS_FILE = "config.json", "model.safetensors", "history.json", "metrics.json"


@dataclass
class Checkpoint:
    path: Path
    model: VAE  # in eval mode
    config: RunConfig
    history: list[dict] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, allow_nan=False) + "\n").encode("utf-8")


def save_checkpoint(path: str | Path, model: VAE, config: RunConfig, history: list[dict] | None = None,
                    metrics: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint folder atomically; an existing one at `path` is replaced."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.saving-{os.getpid()}"
    previous = path.parent / f".{path.name}.previous-{os.getpid()}"
    for stale in [*path.parent.glob(f".{path.name}.saving-*"), *(path.parent.glob(f".{path.name}.previous-*") if path.exists() else [])]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a save that was killed
    staging.mkdir()
    try:
        weights = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
        save_file(weights, str(staging / WEIGHTS_FILE), metadata={"format_version": str(FORMAT_VERSION)})
        with open(staging / WEIGHTS_FILE, "rb+") as f:
            os.fsync(f.fileno())
        _fsync_write(staging / CONFIG_FILE, _json_bytes({"format_version": FORMAT_VERSION, **config.to_dict()}))
        _fsync_write(staging / HISTORY_FILE, _json_bytes(history or []))
        _fsync_write(staging / METRICS_FILE, _json_bytes(metrics or {}))
        if path.exists():
            os.rename(path, previous)
        os.rename(staging, path)  # the commit point
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    return path


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    """Merge `metrics` into a checkpoint's metrics.json (atomic: write aside, then rename)."""
    path = Path(path)
    current = _read_json(path / METRICS_FILE, dict) if (path / METRICS_FILE).exists() else {}
    tmp = path / f".{METRICS_FILE}.tmp-{os.getpid()}"
    _fsync_write(tmp, _json_bytes({**current, **metrics}))
    os.replace(tmp, path / METRICS_FILE)


def _recover_interrupted_save(path: Path) -> None:
    """If a save stopped between its two renames, put the previous checkpoint back."""
    if path.exists() or not path.parent.is_dir():
        return
    leftovers = sorted(path.parent.glob(f".{path.name}.previous-*"), key=lambda p: p.stat().st_mtime)
    if leftovers:
        os.rename(leftovers[-1], path)


def _read_json(file: Path, expected_type: type) -> Any:
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{file} is missing; the checkpoint is incomplete, so train or copy it again.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file} is corrupt ({exc.__class__.__name__}); restore it from a copy or train again.") from None
    if not isinstance(value, expected_type):
        raise CheckpointError(f"{file} holds a {type(value).__name__}, not a {expected_type.__name__}; restore it from a copy or train again.")
    return value


def read_config(path: str | Path) -> RunConfig:
    """The run config of a checkpoint folder, checked, without loading its weights."""
    path = Path(path)
    _recover_interrupted_save(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint folder {path} does not exist; pass a folder holding config.json and model.safetensors.")
    raw = _read_json(path / CONFIG_FILE, dict)
    version = raw.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path / CONFIG_FILE} has format_version {version!r}, but this version of vae-explorer reads "
            f"{FORMAT_VERSION}; upgrade vae-explorer or train the model again."
        )
    try:
        config = config_from_dict(raw, str(path / CONFIG_FILE))
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    if config.model.image_shape is None:
        raise CheckpointError(f"{path / CONFIG_FILE} has no model.image_shape; train the model again.")
    return config


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint folder; a missing, corrupt or mismatched file raises CheckpointError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    config = read_config(path)
    weights_file = path / WEIGHTS_FILE
    if not weights_file.is_file():
        raise CheckpointError(f"{weights_file} is missing; the checkpoint is incomplete, so train or copy it again.")
    try:
        weights = load_file(str(weights_file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights_file} is not a valid safetensors file ({exc}); restore it from a copy or train again.") from None
    try:
        model = build_model(config.model)
    except ConfigError as exc:
        raise CheckpointError(f"{path / CONFIG_FILE}: {exc}") from None
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{weights_file} does not fit the model in config.json ({detail}); the two files come from different models.")
    for key, tensor in weights.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(
                f"{weights_file} has {key} of shape {list(tensor.shape)} but config.json needs "
                f"{list(expected[key].shape)}; the two files come from different models."
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{weights_file} has NaN or infinite values in {key}; use an earlier checkpoint or train again.")
    model.load_state_dict(weights)
    model.to(device).eval()
    history = _read_json(path / HISTORY_FILE, list) if (path / HISTORY_FILE).exists() else []
    metrics = _read_json(path / METRICS_FILE, dict) if (path / METRICS_FILE).exists() else {}
    _check_numbers(path / METRICS_FILE, metrics)
    return Checkpoint(path, model, config, history, metrics)


def _check_numbers(file: Path, metrics: dict) -> None:
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise CheckpointError(f"{file} has a non-finite {key}; run `vae-explorer evaluate` again.")

"""Checkpoints: a folder of plain files, written atomically and read without unpickling.

    NAME/config.json            {"format_version": 2, "data": {...}, "model": {...}, "train": {...}}
    NAME/model.safetensors      the weights only
    NAME/history.json           one object per epoch (epoch, train_loss, ..., seconds)
    NAME/metrics.json           test metrics (basic ones when training ends, the rest from `evaluate`)
    NAME/optimizer.safetensors  to resume training: Adam's moments and step per parameter, the
                                states of the batch-order and noise generators, the counters
    NAME/training.json          {"status": "running" | "finished" | "stopped" | "interrupted" | "failed",
                                 "epochs_done", "target_epochs", "pid", "host"}
    NAME/epochs.safetensors     optional, per epoch (and before training): the first test images' codes
                                on that epoch's PCA plane and the decodes of 8 fixed prior draws

Format 1 (earlier versions) has no optimizer state or training.json: such a checkpoint loads and
can be explored, but not resumed.

A save writes a sibling folder `.NAME.saving-PID` and swaps it in with renames, so an
interrupted save leaves the previous checkpoint in place (or, if it stopped between the two
renames, as `.NAME.previous-PID`, which `load_checkpoint` puts back).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig, config_from_dict
from ..errors import CheckpointError, ConfigError
from ..models import VAE, build_model
from ..training import TrainingState
from .records import clean_history, clean_metrics, clean_training, read_json

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
CONFIG_FILE, WEIGHTS_FILE, HISTORY_FILE, METRICS_FILE = (
    "config.json",
    "model.safetensors",
    "history.json",
    "metrics.json",
)
OPTIMIZER_FILE, TRAINING_FILE = "optimizer.safetensors", "training.json"
EPOCHS_FILE = "epochs.safetensors"  # optional: what the model made of fixed inputs after each epoch (latent/epochs.py)


@dataclass
class Checkpoint:
    path: Path
    model: VAE  # in eval mode
    config: RunConfig
    history: list[dict] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)  # training.json; {} for format 1
    notes: list[str] = field(default_factory=list)  # what was left out of history.json or metrics.json, and why

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def resumable(self) -> bool:
        return (self.path / OPTIMIZER_FILE).is_file()

    @property
    def interrupted(self) -> bool:
        return interrupted(self.training)


def read_training(path: str | Path) -> dict[str, Any]:
    """A checkpoint's training.json ({} when it has none or it cannot be read), without loading the rest."""
    try:
        return clean_training(read_json(Path(path) / TRAINING_FILE, dict))
    except (CheckpointError, OSError):
        return {}


def interrupted(training: dict[str, Any]) -> bool:
    """A training that ended before its last epoch without being asked to stop: its process is gone
    (a crash, a kill) or the server it trained for went away. What it saved can be resumed."""
    return training.get("status") == "interrupted" or (training.get("status") == "running" and not _alive(training))


def _alive(training: dict) -> bool:
    """Whether the process that wrote training.json still runs (on this machine)."""
    if training.get("host") != socket.gethostname() or not isinstance(training.get("pid"), int):
        return False
    try:
        os.kill(training["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def weights_sha1(path: str | Path) -> str:
    """The sha1 of a checkpoint's weights file: what derived files (maps, ONNX graphs) are keyed by.
    Remembered per file version (inode, size, modification time; saves write a new file and rename
    it), since pages ask on every rerun and a large model's file takes a while to read."""
    weights = Path(path) / WEIGHTS_FILE
    if not weights.exists() and (Path(path) / "onnx_encoder.onnx").exists():  # an imported ONNX pair: both graphs,
        # and the likelihood and range it declares (they change what the encoder is fed and the pictures)
        names = ("onnx_encoder.onnx", "onnx_decoder.onnx", "onnx.json")
        parts = [_version_sha1(Path(path) / name) for name in names if (Path(path) / name).exists()]
        return hashlib.sha1("".join(parts).encode("ascii")).hexdigest()
    return _version_sha1(weights)


def _version_sha1(file: Path) -> str:
    stat = file.stat()
    return _file_sha1(str(file.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_sha1(path: str, inode: int, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def training_status(status: str, epochs_done: int, target_epochs: int) -> dict[str, Any]:
    """The training.json of a checkpoint written by this process."""
    return {
        "status": status,
        "epochs_done": epochs_done,
        "target_epochs": target_epochs,
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }


def fsync_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` and wait until it is on the disk (a staging folder's files, before the rename that publishes it)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def json_bytes(value: Any) -> bytes:
    """A JSON file's bytes as every checkpoint file is written (indented, no NaN, a final newline)."""
    return (json.dumps(value, indent=2, allow_nan=False) + "\n").encode("utf-8")


def _optimizer_tensors(model: VAE, state: TrainingState) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A TrainingState as flat tensors keyed by parameter name (safetensors holds no nesting)."""
    names = [name for name, _ in model.named_parameters()]  # the optimizer's order
    tensors = {"rng.order": state.order_rng.cpu(), "rng.noise": state.noise_rng.cpu()}
    for index, per_parameter in state.optimizer["state"].items():
        for key, value in per_parameter.items():  # step, exp_avg, exp_avg_sq
            tensors[f"{key}.{names[index]}"] = torch.as_tensor(value).detach().to("cpu").contiguous().clone()
    metadata = {
        "format_version": str(FORMAT_VERSION),
        "epochs_done": str(state.epochs_done),
        "steps_done": str(state.steps_done),
        "param_groups": json.dumps(state.optimizer["param_groups"]),
    }
    return tensors, metadata


def save_checkpoint(
    path: str | Path,
    model: VAE,
    config: RunConfig,
    history: list[dict] | None = None,
    metrics: dict[str, Any] | None = None,
    state: TrainingState | None = None,
    training: dict[str, Any] | None = None,
    frames: list[dict] | None = None,
) -> Path:
    """Write a checkpoint folder atomically; an existing one at `path` is replaced. With `state`,
    the optimizer state to resume from; with `training`, its training.json (see training_status);
    with `frames`, the epoch frames of latent/epochs.py."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.saving-{os.getpid()}"
    previous = path.parent / f".{path.name}.previous-{os.getpid()}"
    for stale in [
        *path.parent.glob(f".{path.name}.saving-*"),
        *(path.parent.glob(f".{path.name}.previous-*") if path.exists() else []),
    ]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a save that was killed
    staging.mkdir()
    try:
        weights = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
        save_file(weights, str(staging / WEIGHTS_FILE), metadata={"format_version": str(FORMAT_VERSION)})
        files = [staging / WEIGHTS_FILE]
        if frames:
            from .epochs import frames_to_tensors

            save_file(frames_to_tensors(frames), str(staging / EPOCHS_FILE))
            files.append(staging / EPOCHS_FILE)
        if state is not None:
            tensors, metadata = _optimizer_tensors(model, state)
            save_file(tensors, str(staging / OPTIMIZER_FILE), metadata=metadata)
            files.append(staging / OPTIMIZER_FILE)
        for file in files:
            with open(file, "rb+") as f:
                os.fsync(f.fileno())
        fsync_write(staging / CONFIG_FILE, json_bytes({"format_version": FORMAT_VERSION, **config.to_dict()}))
        fsync_write(staging / HISTORY_FILE, json_bytes(history or []))
        fsync_write(staging / METRICS_FILE, json_bytes(metrics or {}))
        if training is not None:
            fsync_write(staging / TRAINING_FILE, json_bytes(training))
        if path.exists():
            os.rename(path, previous)
        os.rename(staging, path)  # the commit point
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    return path


def load_training_state(path: str | Path, model: VAE) -> TrainingState:
    """The optimizer state saved with a checkpoint, for `train(..., resume=...)` on its model."""
    from safetensors import SafetensorError, safe_open

    file = Path(path) / OPTIMIZER_FILE
    if not file.is_file():
        raise CheckpointError(
            f"{Path(path).name} was saved without its optimizer state (by an older version, or imported); "
            "it can be explored but not resumed: train it again."
        )
    try:
        with safe_open(str(file), framework="pt") as f:
            tensors = {key: f.get_tensor(key) for key in f.keys()}
            metadata = f.metadata() or {}
        param_groups = json.loads(metadata["param_groups"])
        for group in param_groups:  # JSON has no tuples
            group.update({key: tuple(value) for key, value in group.items() if key == "betas"})
        epochs_done, steps_done = int(metadata["epochs_done"]), int(metadata["steps_done"])
    except (SafetensorError, OSError, ValueError, KeyError):
        raise CheckpointError(
            f"{file} is not a readable optimizer state; it cannot be resumed, but the model still loads."
        ) from None
    names = [name for name, _ in model.named_parameters()]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for index, name in enumerate(names):
        found = {
            key: tensors[f"{key}.{name}"] for key in ("step", "exp_avg", "exp_avg_sq") if f"{key}.{name}" in tensors
        }
        if found:
            state[index] = found
    if {key.split(".", 1)[1] for key in tensors if not key.startswith("rng.")} - set(names):
        raise CheckpointError(f"{file} does not fit the model in config.json; the two files come from different runs.")
    return TrainingState(
        {"state": state, "param_groups": param_groups},
        tensors["rng.order"],
        tensors["rng.noise"],
        epochs_done,
        steps_done,
    )


def read_epoch_frames(path: str | Path) -> list[dict]:
    """A checkpoint's epoch frames (latent/epochs.py), [] when it has none or they cannot be read:
    they are a replay of how it learned, and the checkpoint is whole without them."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .epochs import frames_from_tensors

    file = Path(path) / EPOCHS_FILE
    if not file.is_file():
        return []
    try:
        return frames_from_tensors(load_file(str(file)))
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return []


def write_training(path: str | Path, training: dict[str, Any]) -> None:
    """Replace a checkpoint's training.json (atomic: write aside, then rename)."""
    path = Path(path)
    tmp = path / f".{TRAINING_FILE}.tmp-{os.getpid()}"
    fsync_write(tmp, json_bytes(training))
    os.replace(tmp, path / TRAINING_FILE)


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    """Merge `metrics` into a checkpoint's metrics.json (atomic: write aside, then rename)."""
    path = Path(path)
    current = _read_json(path / METRICS_FILE, dict) if (path / METRICS_FILE).exists() else {}
    tmp = path / f".{METRICS_FILE}.tmp-{os.getpid()}"
    fsync_write(tmp, json_bytes({**current, **metrics}))
    os.replace(tmp, path / METRICS_FILE)


def _recover_interrupted_save(path: Path) -> None:
    """If a save stopped between its two renames, put the previous checkpoint back."""
    if path.exists() or not path.parent.is_dir():
        return
    leftovers = sorted(path.parent.glob(f".{path.name}.previous-*"), key=lambda p: p.stat().st_mtime)
    if leftovers:
        os.rename(leftovers[-1], path)


def _read_json(file: Path, expected_type: type) -> Any:
    return read_json(file, expected_type)  # bounded in size and nesting (records.py)


def locate(path: str | Path, runs: str | Path | None = None) -> Path:
    """A checkpoint folder from its path, or from the name of a shipped checkpoint or of a run
    (in `runs`, default the runs folder)."""
    from ..paths import find_checkpoint, runs_dir, shipped_checkpoint_names

    path = Path(path)
    _recover_interrupted_save(path)
    if path.is_dir():
        return path
    found = find_checkpoint(str(path), runs) if len(path.parts) == 1 else None
    if found is not None:
        return found
    raise CheckpointError(
        f"checkpoint folder {path} does not exist; pass a folder holding config.json and model.safetensors, "
        f"or the name of a shipped checkpoint ({', '.join(shipped_checkpoint_names())}) or of a run in "
        f"{runs_dir(runs)}."
    )


def read_config(path: str | Path) -> RunConfig:
    """The run config of a checkpoint folder (or name), checked, without loading its weights."""
    path = locate(path)
    raw = _read_json(path / CONFIG_FILE, dict)
    version = raw.pop("format_version", None)
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path / CONFIG_FILE} has format_version {version!r}, but this version of vae-explorer reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))}; upgrade vae-explorer or train the model again."
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

    path = locate(path)
    config = read_config(path)
    if config.model.architecture == "onnx":  # an imported pair (checkpoints/onnx_import.py): no weights of ours
        from .onnx_import import load_imported

        model = load_imported(path, config)
        model.to(device).eval()
        return Checkpoint(path, model, config, *_side_files(path, config.model.latent_dim))
    weights_file = path / WEIGHTS_FILE
    if not weights_file.is_file():
        raise CheckpointError(f"{weights_file} is missing; the checkpoint is incomplete, so train or copy it again.")
    try:
        weights = load_file(str(weights_file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{weights_file} is not a valid safetensors file ({exc}); restore it from a copy or train again."
        ) from None
    try:
        model = build_model(config.model)
    except ConfigError as exc:
        raise CheckpointError(f"{path / CONFIG_FILE}: {exc}") from None
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(
            f"{weights_file} does not fit the model in config.json ({detail}); the two files come from different models."
        )
    for key, tensor in weights.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(
                f"{weights_file} has {key} of shape {list(tensor.shape)} but config.json needs "
                f"{list(expected[key].shape)}; the two files come from different models."
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(
                f"{weights_file} has NaN or infinite values in {key}; use an earlier checkpoint or train again."
            )
    model.load_state_dict(weights)
    model.to(device).eval()
    return Checkpoint(path, model, config, *_side_files(path, config.model.latent_dim))


def _side_files(path: Path, latent_dim: int) -> tuple[list, dict, dict, list[str]]:
    """history.json, metrics.json and training.json, each optional, with what a page can show of
    them (records.py), and notes on what was left out."""
    history = _read_json(path / HISTORY_FILE, list) if (path / HISTORY_FILE).exists() else []
    metrics = _read_json(path / METRICS_FILE, dict) if (path / METRICS_FILE).exists() else {}
    _check_numbers(path / METRICS_FILE, metrics)
    training = clean_training(_read_json(path / TRAINING_FILE, dict)) if (path / TRAINING_FILE).exists() else {}
    history, history_notes = clean_history(history, latent_dim)
    metrics, metric_notes = clean_metrics(metrics, latent_dim)
    return history, metrics, training, history_notes + metric_notes


def _check_numbers(file: Path, metrics: dict) -> None:
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise CheckpointError(f"{file} has a non-finite {str(key)[:40]}; run `vae-explorer evaluate` again.")

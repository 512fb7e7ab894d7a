"""Configs: three dataclasses (data, model, training) that a YAML file in `configs/` maps onto 1:1.

A YAML config has three sections, each holding the fields of one dataclass:

    data:  {dataset: fashion-mnist}
    model: {architecture: mlp, latent_dim: 20, hidden_sizes: [400]}
    train: {epochs: 10, batch_size: 128, lr: 0.001}

Every value is checked against the field's type and range (kept in the field's metadata) and a
bad key or value raises `ConfigError` with one sentence that names the key and the fix.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh")
LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned")
PRECISIONS = ("float32", "bfloat16")
MEMORY_FORMATS = ("auto", "contiguous", "channels_last")
LR_SCHEDULES = ("none", "cosine", "step")
OBJECTIVES = ("elbo", "iwae")
PRIORS = ("normal", "vamp")
# Values earlier versions wrote that mean something else now: train.precision "fast" switched the
# process-wide float32 matmul precision, "exact" did not; both read as plain float32.
LEGACY_VALUES = {("train", "precision"): {"fast": "float32", "exact": "float32"}}


MAX_STRING = 4096  # characters in any string value (a path at most), unless a field says fewer
MAX_ITEMS = 1000  # values in any list value, unless a field says fewer


def _shown(value: Any) -> str:
    """A value as a message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field(default: Any, **rules: Any) -> Any:
    """A dataclass field whose metadata holds its validation rules (min, max, choices)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=rules)
    return field(default=default, metadata=rules)


@dataclass
class DataConfig:
    # Registry name ("digits", "fashion-mnist", "mnist", "kmnist", "shapes", "photos") or "folder:PATH".
    dataset: str = _field("digits")
    # Folder searched first for downloaded datasets (then $VAE_EXPLORER_DATA, then /usr/share/datasets).
    data_dir: str | None = _field(None)
    # Side length images are resized to; None keeps the native size (8 digits, 28 MNIST-likes, 32 shapes/folder).
    image_size: int | None = _field(None, min=4, max=256)
    # Colour channels for folder datasets and photos: 1 grayscale or 3 RGB.
    channels: int = _field(1, choices=(1, 3))
    # Held-out share for datasets without an official split (digits, shapes, folder).
    test_fraction: float = _field(0.2, min=0.05, max=0.5)
    # Seed of that split; fixed so the test set never changes between runs.
    split_seed: int = _field(0, min=0)
    # Keep only the first N training / test images (quick experiments and tests); None keeps all.
    max_train: int | None = _field(None, min=1)
    max_test: int | None = _field(None, min=1)


@dataclass
class ModelConfig:
    # Registry name of the encoder/decoder pair: "mlp", "conv", or "spatial" (fully convolutional, z a map of
    # latent_dim channels at 1/2**len(channels) of the image's side, as the VAEs of latent diffusion).
    architecture: str = _field("mlp")
    # Dimension of z; the prior is N(0, I) of this size. A spatial architecture: z's channels at each position.
    latent_dim: int = _field(8, min=1, max=512)
    # MLP: widths of the encoder's hidden layers (the decoder mirrors them). Conv: the dense
    # layer(s) between the flattened feature map and the latent heads.
    hidden_sizes: list[int] = _field([256, 128], min=1, max=8192, max_items=16)
    # Conv and spatial: output channels of each stride-2 convolution (each halves the image side).
    channels: list[int] = _field([32, 64], min=1, max=1024, max_items=12)
    # Nonlinearity between layers.
    activation: str = _field("relu", choices=ACTIVATIONS)
    # p(x|z): "bernoulli" on logits (images in [0,1]), "gaussian" with fixed sigma, or
    # "gaussian-learned" with one learned sigma per channel.
    likelihood: str = _field("bernoulli", choices=LIKELIHOODS)
    # Gaussian likelihood: the fixed sigma, or the starting sigma when it is learned.
    gaussian_sigma: float = _field(0.1, min=1e-3, max=10.0)
    # Condition encoder and decoder on the class label (a conditional VAE, Sohn et al. 2015).
    conditional: bool = _field(False)
    # p(z): "normal" is N(0, I); "vamp" the VampPrior (Tomczak & Welling, arXiv:1705.07120), the
    # mixture of the encoder's posteriors of pseudo_inputs learned pseudo-images.
    prior: str = _field("normal", choices=PRIORS)
    # VampPrior: how many pseudo-inputs (mixture components) it learns.
    pseudo_inputs: int = _field(50, min=1, max=5000)
    # A second stochastic level z2 of this size above z (a two-level hierarchical VAE: p(z2) = N(0, I),
    # p(z|z2) and q(z2|z) small Gaussian MLPs; the decoder and the pages use z); 0: one level.
    top_latent_dim: int = _field(0, min=0, max=128)
    # (C, H, W) of the images; filled in from the dataset when the model is built for it.
    image_shape: list[int] | None = _field(None, min=1, max=4096, min_items=3, max_items=3)
    # Number of classes and their names; filled in from the dataset (conditional models need them).
    num_classes: int | None = _field(None, min=1, max=1000)
    class_names: list[str] | None = _field(None, max_items=1000, max_length=100)


@dataclass
class TrainConfig:
    # Passes over the training set.
    epochs: int = _field(10, min=1, max=100_000)
    # Images per optimizer step.
    batch_size: int = _field(128, min=1, max=1_000_000)
    # Adam learning rate.
    lr: float = _field(1e-3, min=1e-8, max=1.0, exclusive_min=0.0)
    # Weight of the KL term: 1 is the plain VAE, >1 a beta-VAE (Higgins et al. 2017).
    beta: float = _field(1.0, min=0.0, max=1000.0)
    # The KL weight rises linearly from 0 to beta over this many epochs (0: no warm-up).
    warmup_epochs: int = _field(0, min=0, max=100_000)
    # What training maximises: "elbo" (Kingma & Welling; with beta and free_bits below) or "iwae",
    # the importance-weighted bound of Burda et al. (arXiv:1509.00519) with iwae_samples samples
    # per image (tighter than the ELBO; needs beta 1, no warm-up and no free bits).
    objective: str = _field("elbo", choices=OBJECTIVES)
    # "iwae": importance samples k per image (k = 1 is the ELBO); each step decodes k times as much.
    iwae_samples: int = _field(5, min=1, max=1000)
    # Free bits (Kingma et al. 2016, arXiv:1606.04934, eq. 15): nats per latent dimension the KL
    # is not penalised below (averaged over the batch), against posterior collapse; 0 turns it off.
    free_bits: float = _field(0.0, min=0.0, max=100.0)
    # Seeds torch, numpy and Python's random, so a run can be repeated.
    seed: int = _field(0, min=0)
    # "auto" picks CUDA, then MPS, then CPU; or name one ("cpu", "cuda", "cuda:1", "mps").
    device: str = _field("auto")
    # "float32" everywhere, or "bfloat16": the forward pass under torch.autocast (mixed precision,
    # weights and optimizer stay float32). Fast on GPUs and on CPUs with bf16 units (AMX, AVX-512
    # BF16); much slower on CPUs without them.
    precision: str = _field("float32", choices=PRECISIONS)
    # Learning-rate schedule over the configured epochs, updated every step: "none" keeps lr,
    # "cosine" falls from lr to 0 along half a cosine, "step" multiplies it by lr_gamma every
    # lr_step_epochs epochs.
    lr_schedule: str = _field("none", choices=LR_SCHEDULES)
    # "step" schedule: epochs between two cuts of the learning rate.
    lr_step_epochs: int = _field(10, min=1, max=100_000)
    # "step" schedule: the factor each cut multiplies the learning rate by.
    lr_gamma: float = _field(0.1, min=1e-6, max=1.0)
    # Compile the encoder and decoder with torch.compile (needs a C++ compiler on CPU; the first
    # steps wait for the compilation, tens of seconds).
    compile: bool = _field(False)
    # On a CUDA GPU: record the whole training step (forward, loss, backward, Adam) once as a CUDA
    # graph and replay it for every batch, instead of launching its ~70 small kernels from Python.
    # One process, not with compile; the same training, up to the GPU's rounding.
    capture: bool = _field(False)
    # How convolutions keep their images while training: "channels_last" (each pixel's channels side
    # by side, what the CPU's and cuDNN's fastest convolution kernels read), "contiguous" (channel
    # planes), or "auto": channels_last for a model with convolutions on a CPU or CUDA GPU (not on
    # Apple's MPS, where torch's channels-last convolutions trained slower). The checkpoint is the same.
    memory_format: str = _field("auto", choices=MEMORY_FORMATS)


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
# Keys a run fills in from its dataset: neither the Train form nor `train`'s flags offer them.
FILLED_FROM_DATA = {("model", "image_shape"), ("model", "num_classes"), ("model", "class_names")}


def field_docs(cls: type) -> dict[str, str]:
    """The comment above each field of a config dataclass, read from this file, one line each: what
    `vae-explorer train --help` says of its flag, so the flags cannot drift from the configs. A field
    without a comment of its own shares the one above it (max_train and max_test)."""
    import inspect

    docs, comment, previous = {}, [], ""
    for line in inspect.getsource(cls).splitlines()[1:]:
        text = line.strip()
        if text.startswith("#"):
            comment.append(text.lstrip("# "))
        elif ":" in text and text.split(":")[0].isidentifier():
            previous = " ".join(comment) or previous
            docs[text.split(":")[0]] = previous
            comment = []
    return docs


def field_type(cls: type, name: str) -> tuple[type, bool]:
    """A field's value type without Optional, and whether the field holds a list of them."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    inner = args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint
    if typing.get_origin(inner) is list:
        return typing.get_args(inner)[0], True
    return inner, False


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"did you mean '{close[0]}'?" if close else f"known keys are {', '.join(known)}"


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _check_scalar(value: Any, tp: Any, key: str, rules: dict, source: str) -> Any:
    where = f"{source}: {key}"
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {_shown(value)}; write true or false.")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(f"{where} must be an integer, got {_shown(value)}; write a whole number.")
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(
                    f"{where} must be a number, got {_shown(value)}; write a number such as 0.001."
                ) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {_shown(value)}; write a number such as 0.001.")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {_shown(value)}; write a finite number.")
    elif tp is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be a non-empty string, got {_shown(value)}; write a name.")
        longest = rules.get("max_length", MAX_STRING)
        if len(value) > longest:
            raise ConfigError(
                f"{where} is {len(value):,} characters long, more than the {longest:,} allowed; shorten it."
            )
    if "choices" in rules and value not in rules["choices"]:
        options = ", ".join(str(c) for c in rules["choices"])
        raise ConfigError(f"{where} must be one of {options}, got {_shown(value)}; pick one of those.")
    lo, hi = rules.get("min"), rules.get("max")
    exclusive_min = rules.get("exclusive_min")
    if (
        (lo is not None and value < lo)
        or (hi is not None and value > hi)
        or (exclusive_min is not None and value <= exclusive_min)
    ):
        span = f"from {lo} to {hi}" if hi is not None else f"of at least {lo}"
        raise ConfigError(f"{where} must be {span}, got {_shown(value)}; set it in that range.")
    return value


def _check_value(value: Any, tp: Any, key: str, rules: dict, source: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check_value(value, inner, key, rules, source)
    if origin is list:
        (inner,) = args
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(
                f"{source}: {key} must be a non-empty list of {_type_name(inner)}s, got {_shown(value)}; "
                f"write it as [a, b]."
            )
        fewest, most = rules.get("min_items", 1), rules.get("max_items", MAX_ITEMS)
        if not fewest <= len(value) <= most:
            count = f"{most}" if fewest == most else f"from {fewest} to {most}"
            raise ConfigError(f"{source}: {key} must hold {count} values, got {len(value):,}; give {count}.")
        return [_check_scalar(v, inner, key, rules, source) for v in value]
    return _check_scalar(value, tp, key, rules, source)


def section_from_dict(cls: type, raw: Any, section: str, source: str) -> Any:
    """Build one config dataclass from a mapping, checking every key, type and range."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: section '{section}' must be a mapping of keys to values; indent its keys under '{section}:'."
        )
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    values = {}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{source}: unknown key '{section}.{str(key)[:60]}'; {_suggest(str(key)[:60], known)}")
    for f in fields(cls):
        if f.name in raw:
            value = (
                LEGACY_VALUES.get((section, f.name), {}).get(raw[f.name], raw[f.name])
                if isinstance(raw[f.name], str)
                else raw[f.name]
            )
            values[f.name] = _check_value(value, hints[f.name], f"{section}.{f.name}", dict(f.metadata), source)
        elif f.default is MISSING and f.default_factory is MISSING:  # pragma: no cover - all fields have defaults
            raise ConfigError(f"{source}: missing key '{section}.{f.name}'; add it.")
    return cls(**values)


def config_from_dict(raw: Any, source: str = "config") -> RunConfig:
    """A `RunConfig` from a nested mapping such as a parsed YAML file or a saved config.json."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the file must hold a mapping with sections data, model and train; see configs/digits_mlp.yaml."
        )
    for key in raw:
        if key not in SECTIONS:
            raise ConfigError(f"{source}: unknown section '{str(key)[:60]}'; {_suggest(str(key)[:60], list(SECTIONS))}")
    parts = {name: section_from_dict(cls, raw.get(name), name, source) for name, cls in SECTIONS.items()}
    model = parts["model"]
    if model.class_names is not None and model.num_classes is not None and len(model.class_names) != model.num_classes:
        raise ConfigError(
            f"{source}: model.class_names holds {len(model.class_names)} names but model.num_classes is "
            f"{model.num_classes}; give one name per class."
        )
    check_objective(parts["train"], source)
    check_model_kind(parts["model"], parts["train"], source)
    return RunConfig(**parts)


def check_model_kind(model: ModelConfig, train: TrainConfig, source: str = "config") -> None:
    """The VampPrior and the second level are each for an unconditional VAE, one at a time, without free bits."""
    kinds = [
        name
        for name, on in (
            ("model.prior vamp", model.prior == "vamp"),
            ("model.top_latent_dim", model.top_latent_dim > 0),
        )
        if on
    ]
    if len(kinds) == 2:
        raise ConfigError(
            f"{source}: model.prior vamp and model.top_latent_dim are two different priors for z; use one "
            "of them (set top_latent_dim to 0 or prior to normal)."
        )
    if kinds and model.conditional:
        raise ConfigError(f"{source}: {kinds[0]} is for an unconditional VAE; set model.conditional to false.")
    if kinds and train.free_bits > 0:
        raise ConfigError(
            f"{source}: train.free_bits is for the N(0, I) prior, not with {kinds[0]}; set free_bits to 0."
        )


def check_objective(train: TrainConfig, source: str = "config") -> None:
    """The IWAE bound is of log p(x) itself: a KL weight, its warm-up or free bits have no place in it."""
    if train.objective != "iwae":
        return
    for key, value, plain in (
        ("beta", train.beta, 1.0),
        ("warmup_epochs", train.warmup_epochs, 0),
        ("free_bits", train.free_bits, 0.0),
    ):
        if value != plain:
            raise ConfigError(
                f"{source}: train.objective iwae trains the bound on log p(x) itself, so train.{key} must be "
                f"{plain:g}, not {value:g}; set it to {plain:g}, or use objective elbo for it."
            )


def load_config(path: str | Path) -> RunConfig:
    """Read and check a YAML config file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; pass an existing file such as configs/digits_mlp.yaml.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path} is not valid YAML{line}; fix the syntax there (indentation, colons, quotes)."
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not a UTF-8 text file; pass a YAML config such as configs/digits_mlp.yaml."
        ) from None
    return config_from_dict(raw, str(path))


def apply_overrides(config: RunConfig, overrides: dict[str, Any], source: str = "command line") -> RunConfig:
    """A copy of `config` with "section.key" values replaced, checked like a file's values."""
    raw = config.to_dict()
    for dotted, value in overrides.items():
        section, key = dotted.split(".", 1)
        raw[section][key] = value
    return config_from_dict(raw, source)

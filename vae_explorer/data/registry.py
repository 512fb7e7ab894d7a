"""The dataset registry: each dataset is in-memory tensors (N, C, H, W) in [0, 1] with labels.

    data = load_dataset(DataConfig(dataset="fashion-mnist"))
    data.train_x  # (60000, 1, 28, 28) float32 in [0, 1]

Training reads batches straight from these tensors, so nothing runs per sample on the hot path.
The split into train and test is fixed: the official one where a dataset has it, otherwise a
permutation seeded by `DataConfig.split_seed`. A registry is a dict plus a decorator; unknown
names raise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DatasetError


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor  # (N, C, H, W) float32 in [0, 1], or an ImageStore that reads them from disk
    train_y: torch.Tensor  # (N,) int64 class index
    test_x: torch.Tensor  # (M, C, H, W)
    test_y: torch.Tensor  # (M,)
    class_names: list[str]
    # Ground-truth generative factors (shapes only): (N, F) int64 index of each factor's value.
    train_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    factor_names: list[str] = field(default_factory=list)
    factor_sizes: list[int] = field(default_factory=list)
    # Files of a folder dataset that could not be read (relative paths); they are not in the set.
    skipped: list[str] = field(default_factory=list)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    how_to_get: str  # one sentence shown when it is missing
    load: Callable[[DataConfig], Dataset]
    locate: Callable[[DataConfig], str | None]  # where it is on this machine, or None
    reports_progress: bool = False  # load(config, progress) tells progress(done, total) while it reads


DATASETS: dict[str, DatasetSpec] = {}
PREFIXED: dict[str, DatasetSpec] = {}  # "folder:" -> the spec of every folder:PATH


def register_dataset(name: str, description: str, how_to_get: str = "", locate=None):
    """Add a loader to the registry under `name`; a duplicate name is a bug and raises."""

    def wrap(load: Callable[[DataConfig], Dataset]) -> Callable[[DataConfig], Dataset]:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        DATASETS[name] = DatasetSpec(name, description, how_to_get, load, locate or (lambda cfg: "built in"))
        return load

    return wrap


def dataset_spec(name: str) -> DatasetSpec:
    for prefix, spec in PREFIXED.items():
        if name.startswith(prefix):
            return spec
    if name not in DATASETS:
        known = ", ".join(sorted(DATASETS) + [spec.name for spec in PREFIXED.values()])
        raise DatasetError(f"unknown dataset {name!r}; use one of {known}.")
    return DATASETS[name]


_CACHE: dict[tuple, Dataset] = {}


def take(images, index):
    """Some rows of a set's images: a tensor's, or a store's without reading them."""
    from .store import ImageStore

    return images.select(index) if isinstance(images, ImageStore) else images[index]


def load_dataset(config: DataConfig, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """Load (once per process) the dataset a `DataConfig` names, split and trimmed.

    `progress(done, total)` is told while a folder is first decoded into its cache. The returned
    tensors are shared between callers: treat them as read-only.
    """
    key = tuple(sorted(asdict(config).items()))
    if key not in _CACHE:
        spec = dataset_spec(config.dataset)
        data = spec.load(config, progress) if spec.reports_progress else spec.load(config)
        if config.max_train is not None:
            data.train_x, data.train_y = (
                take(data.train_x, slice(None, config.max_train)),
                data.train_y[: config.max_train],
            )
            if data.train_factors is not None:
                data.train_factors = data.train_factors[: config.max_train]
        if config.max_test is not None:
            data.test_x, data.test_y = take(data.test_x, slice(None, config.max_test)), data.test_y[: config.max_test]
            if data.test_factors is not None:
                data.test_factors = data.test_factors[: config.max_test]
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = data
    return _CACHE[key]


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random split of range(n) into (train, test) index arrays."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def split(name, x: torch.Tensor, y: torch.Tensor, class_names, config: DataConfig, factors=None, **extra) -> Dataset:
    """A Dataset from all images (N, C, H, W) of a set without an official split."""
    train, test = split_indices(len(x), config.test_fraction, config.split_seed)
    train_t, test_t = torch.from_numpy(train), torch.from_numpy(test)
    return Dataset(
        name,
        take(x, train_t),
        y[train_t],
        take(x, test_t),
        y[test_t],
        class_names,
        train_factors=None if factors is None else factors[train_t],
        test_factors=None if factors is None else factors[test_t],
        **extra,
    )


def resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Images (N, C, H, W) resized to size x size (antialiased bilinear); None keeps them."""
    if size is None or x.shape[-1] == size and x.shape[-2] == size:
        return x
    return torch.nn.functional.interpolate(
        x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    ).clamp_(0, 1)


def list_datasets(config: DataConfig | None = None) -> list[tuple[DatasetSpec, str | None]]:
    """Every registered dataset with where it is found on this machine (None: not available)."""
    config = config or DataConfig()
    return [(spec, spec.locate(config)) for spec in DATASETS.values()] + [
        (spec, "any folder you name") for spec in PREFIXED.values()
    ]

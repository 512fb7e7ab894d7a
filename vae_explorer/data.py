"""Datasets: one registry; each dataset is in-memory tensors (N, C, H, W) in [0, 1] with labels.

    data = load_dataset(DataConfig(dataset="fashion-mnist"))
    data.train_x  # (60000, 1, 28, 28) float32 in [0, 1]

Training reads batches straight from these tensors, so nothing runs per sample on the hot path.
The split into train and test is fixed: the official one where a dataset has it, otherwise a
permutation seeded by `DataConfig.split_seed`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .cache import cache_root
from .config import DataConfig
from .errors import DatasetError

SYSTEM_DATA_ROOT = Path("/usr/share/datasets")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    train_y: torch.Tensor  # (N,) int64 class index
    test_x: torch.Tensor  # (M, C, H, W)
    test_y: torch.Tensor  # (M,)
    class_names: list[str]
    # Ground-truth generative factors (shapes only): (N, F) int64 index of each factor's value.
    train_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    factor_names: list[str] = field(default_factory=list)
    factor_sizes: list[int] = field(default_factory=list)

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


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(name: str, description: str, how_to_get: str = "", locate=None):
    """Add a loader to the registry under `name`; a duplicate name is a bug and raises."""

    def wrap(load: Callable[[DataConfig], Dataset]) -> Callable[[DataConfig], Dataset]:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        DATASETS[name] = DatasetSpec(name, description, how_to_get, load, locate or (lambda cfg: "built in"))
        return load

    return wrap


def dataset_spec(name: str) -> DatasetSpec:
    if name.startswith("folder:"):
        return _FOLDER_SPEC
    if name not in DATASETS:
        known = ", ".join(sorted(DATASETS)) + ", folder:PATH"
        raise DatasetError(f"unknown dataset {name!r}; use one of {known}.")
    return DATASETS[name]


_CACHE: dict[tuple, Dataset] = {}


def load_dataset(config: DataConfig) -> Dataset:
    """Load (once per process) the dataset a `DataConfig` names, split and trimmed.

    The returned tensors are shared between callers: treat them as read-only.
    """
    key = tuple(sorted(asdict(config).items()))
    if key not in _CACHE:
        data = dataset_spec(config.dataset).load(config)
        if config.max_train is not None:
            data.train_x, data.train_y = data.train_x[: config.max_train], data.train_y[: config.max_train]
            if data.train_factors is not None:
                data.train_factors = data.train_factors[: config.max_train]
        if config.max_test is not None:
            data.test_x, data.test_y = data.test_x[: config.max_test], data.test_y[: config.max_test]
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


def _split(name, x: torch.Tensor, y: torch.Tensor, class_names, config: DataConfig, factors=None, **extra) -> Dataset:
    train, test = split_indices(len(x), config.test_fraction, config.split_seed)
    train_t, test_t = torch.from_numpy(train), torch.from_numpy(test)
    return Dataset(
        name, x[train_t], y[train_t], x[test_t], y[test_t], class_names,
        train_factors=None if factors is None else factors[train_t],
        test_factors=None if factors is None else factors[test_t],
        **extra,
    )


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or x.shape[-1] == size and x.shape[-2] == size:
        return x
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)


# --- digits: scikit-learn's bundled 8x8 handwritten digits, the embedded default -----------------


@register_dataset("digits", "scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes); bundled, no download")
def load_digits(config: DataConfig) -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return _split("digits", _resize(x, config.image_size), y, [str(d) for d in range(10)], config)


# --- MNIST-like sets in IDX files: fashion-mnist, mnist, kmnist ----------------------------------

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_IDX_SETS = {
    # name: (torchvision class, folder names to look in, class names)
    "fashion-mnist": ("FashionMNIST", ["fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"],
                      ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]),
    "mnist": ("MNIST", ["mnist", "MNIST/raw", "MNIST"], [str(d) for d in range(10)]),
    "kmnist": ("KMNIST", ["kmnist", "KMNIST/raw", "KMNIST"], ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]),
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, as a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
            raise ValueError("bad magic number")
        ndim = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return data.reshape(dims)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path} is not a readable IDX file ({exc}); delete it and download the dataset again.") from None


def _data_roots(config: DataConfig) -> list[Path]:
    roots = []
    if config.data_dir:
        roots.append(Path(config.data_dir).expanduser())
    if os.environ.get("VAE_EXPLORER_DATA"):
        roots.append(Path(os.environ["VAE_EXPLORER_DATA"]).expanduser())
    roots.append(SYSTEM_DATA_ROOT)
    roots.append(_download_root(config))
    return roots


def _download_root(config: DataConfig) -> Path:
    if config.data_dir:
        return Path(config.data_dir).expanduser()
    return cache_root() / "datasets"


def _find_idx_folder(name: str, config: DataConfig) -> Path | None:
    _, folders, _ = _IDX_SETS[name]
    for root in _data_roots(config):
        for folder in ["", *folders]:
            candidate = root / folder
            if all((candidate / f).is_file() or (candidate / f"{f}.gz").is_file() for f in _IDX_FILES.values()):
                return candidate
    return None


def _download_idx(name: str, config: DataConfig) -> Path:
    torchvision_class, _, _ = _IDX_SETS[name]
    hint = _how_to_get(name)
    if os.environ.get("VAE_EXPLORER_OFFLINE"):
        raise DatasetError(f"dataset {name} was not found and downloads are off (VAE_EXPLORER_OFFLINE); {hint}")
    root = _download_root(config)
    try:
        import torchvision.datasets

        getattr(torchvision.datasets, torchvision_class)(str(root), train=True, download=True)
        getattr(torchvision.datasets, torchvision_class)(str(root), train=False, download=True)
    except Exception as exc:  # no network, a proxy, a full disk: all end the same way for the user
        raise DatasetError(f"dataset {name} was not found and could not be downloaded ({type(exc).__name__}); {hint}") from None
    found = _find_idx_folder(name, config)
    if found is None:
        raise DatasetError(f"dataset {name} was downloaded to {root} but its files are not there; {hint}")
    return found


def _how_to_get(name: str) -> str:
    folder = _IDX_SETS[name][1][0]
    debian = " or run `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
    return (f"connect to the internet so it downloads{debian}, or put its four IDX files in a folder "
            f"and pass it with --data-dir (or set VAE_EXPLORER_DATA), e.g. DIR/{folder}/train-images-idx3-ubyte.gz.")


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    """The four IDX arrays of a folder, through uncompressed copies in the cache folder.

    Un-gzipping Fashion-MNIST takes 0.25 s, a twentieth of a short training run. The copies are
    plain .npy files keyed by the IDX files' paths, sizes and modification times (a changed file
    is read again): loading Fashion-MNIST's images as floats took 72 ms so against 87 ms from one
    .npz (zip's checksum over 55 MB). Mapping the copies instead of reading them took 58 ms, but
    the first epoch of a training after it ran 0.4 s slower here, so they are read.
    """
    paths = {key: folder / stem if (folder / stem).is_file() else folder / f"{stem}.gz" for key, stem in _IDX_FILES.items()}
    stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths.values())
    cache = cache_root() / "idx"
    digest = hashlib.sha1(stamp.encode()).hexdigest()[:16]
    copies = {key: cache / f"{digest}.{key}.npy" for key in paths}
    try:
        return {key: np.load(copy, allow_pickle=False) for key, copy in copies.items()}
    except (OSError, EOFError, ValueError):  # missing, or cut short (a full disk): read the IDX files
        pass
    arrays = {key: read_idx(path) for key, path in paths.items()}
    partial = None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for key, copy in copies.items():
            partial = copy.with_name(f"{copy.name}.{os.getpid()}.tmp")
            with open(partial, "wb") as f:
                np.save(f, arrays[key], allow_pickle=False)
            os.replace(partial, copy)
        for old in cache.glob("*.npz"):  # the single-file copies of earlier versions
            old.unlink(missing_ok=True)
    except OSError:  # a read-only home or a full disk: work without the copies
        if partial is not None:
            partial.unlink(missing_ok=True)
    return arrays


def _load_idx_set(name: str, config: DataConfig) -> Dataset:
    folder = _find_idx_folder(name, config) or _download_idx(name, config)
    arrays = _read_idx_folder(folder)
    # .float() makes the copy; only read-only arrays (fresh from the IDX bytes) need one before
    # torch may wrap them (10-30 ms for Fashion-MNIST's 47 MB otherwise).
    images = {k: arrays[k] if arrays[k].flags.writeable else arrays[k].copy() for k in ("train_x", "test_x")}
    x = {k: _resize(torch.from_numpy(a).unsqueeze(1).float().div_(255.0), config.image_size) for k, a in images.items()}
    y = {k: torch.from_numpy(arrays[k].astype(np.int64)) for k in ("train_y", "test_y")}
    if len(x["train_x"]) != len(y["train_y"]) or len(x["test_x"]) != len(y["test_y"]):
        raise DatasetError(f"the IDX files in {folder} do not match (images and labels differ in count); download {name} again.")
    return Dataset(name, x["train_x"], y["train_y"], x["test_x"], y["test_y"], list(_IDX_SETS[name][2]))


def _register_idx(name: str, description: str) -> None:
    def locate(config: DataConfig) -> str | None:
        found = _find_idx_folder(name, config)
        return str(found) if found else None

    register_dataset(name, description, _how_to_get(name), locate)(lambda config: _load_idx_set(name, config))


_register_idx("fashion-mnist", "Zalando's Fashion-MNIST, 28x28 clothing (60,000 + 10,000 images, 10 classes)")
_register_idx("mnist", "MNIST handwritten digits, 28x28 (60,000 + 10,000 images, 10 classes)")
_register_idx("kmnist", "Kuzushiji-MNIST cursive Japanese, 28x28 (60,000 + 10,000 images, 10 classes)")


# --- shapes: a procedurally generated dSprites-like set with known factors -----------------------


@register_dataset("shapes", "dSprites-like shapes with 5 known factors (shape, scale, rotation, x, y); generated, no download")
def load_shapes(config: DataConfig) -> Dataset:
    from .shapes import FACTOR_NAMES, SHAPE_NAMES, generate_shapes

    images, factors, sizes = generate_shapes(config.image_size or 32)
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, S, S)
    f = torch.from_numpy(factors)
    return _split("shapes", x, f[:, 0].clone(), list(SHAPE_NAMES), config, factors=f,
                  factor_names=list(FACTOR_NAMES), factor_sizes=list(sizes))


# --- folder:PATH: any folder of images -----------------------------------------------------------


def _folder_path(config: DataConfig) -> Path:
    return Path(config.dataset[len("folder:"):]).expanduser()


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_folder(config: DataConfig) -> Dataset:
    """Images from class sub-folders (label = sub-folder) or from one flat folder (one class)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    root = _folder_path(config)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist; pass an existing folder as folder:PATH.")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and _list_images(d))
    groups = [(d.name, _list_images(d)) for d in class_dirs] if class_dirs else [(root.name or "images", _list_images(root))]
    size, mode = config.image_size or 32, "L" if config.channels == 1 else "RGB"
    images, labels, skipped = [], [], []
    for label, (_, paths) in enumerate(groups):
        for path in paths:
            try:
                with Image.open(path) as img:
                    img = ImageOps.exif_transpose(img).convert(mode)
                    img = ImageOps.fit(img, (size, size), Image.Resampling.LANCZOS)
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
                skipped.append(path.name)
                continue
            arr = np.asarray(img, dtype=np.float32) / 255.0
            images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
            labels.append(label)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable file(s) in {root}, e.g. {skipped[0]}", stacklevel=2)
    if len(images) < 2:
        raise DatasetError(f"image folder {root} holds fewer than 2 readable images; add PNG or JPEG files (optionally in one sub-folder per class).")
    x = torch.from_numpy(np.stack(images))
    y = torch.tensor(labels, dtype=torch.int64)
    return _split(f"folder:{root}", x, y, [name for name, _ in groups], config)


_FOLDER_SPEC = DatasetSpec(
    "folder:PATH", "any folder of images (one sub-folder per class, or flat), resized to image_size",
    "pass an existing folder of images as folder:PATH.", load_folder,
    lambda config: str(_folder_path(config)) if _folder_path(config).is_dir() else None,
)


def list_datasets(config: DataConfig | None = None) -> list[tuple[DatasetSpec, str | None]]:
    """Every registered dataset with where it is found on this machine (None: not available)."""
    config = config or DataConfig()
    return [(spec, spec.locate(config)) for spec in DATASETS.values()] + [(_FOLDER_SPEC, "any folder you name")]

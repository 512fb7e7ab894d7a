"""The MNIST-like sets in IDX files: fashion-mnist, mnist, kmnist.

Looked for in this order: `data.data_dir`, `$VAE_EXPLORER_DATA`, /usr/share/datasets (where
Debian's dataset-fashion-mnist puts them), the cache folder; downloaded with torchvision when
online and none holds the four files (unless `$VAE_EXPLORER_OFFLINE` is set).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DatasetError
from ..paths import cache_root
from .registry import Dataset, register_dataset, resize

SYSTEM_DATA_ROOT = Path("/usr/share/datasets")

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_IDX_SETS = {
    # name: (torchvision class, folder names to look in, class names)
    "fashion-mnist": (
        "FashionMNIST",
        ["fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"],
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
    "mnist": ("MNIST", ["mnist", "MNIST/raw", "MNIST"], [str(d) for d in range(10)]),
    "kmnist": (
        "KMNIST",
        ["kmnist", "KMNIST/raw", "KMNIST"],
        ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
    ),
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
        dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return data.reshape(dims)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(
            f"{path} is not a readable IDX file ({exc}); delete it and download the dataset again."
        ) from None


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
    except Exception:  # no network, a proxy, a full disk: all end the same way for the user
        raise DatasetError(f"dataset {name} was not found and could not be downloaded; {hint}") from None
    found = _find_idx_folder(name, config)
    if found is None:
        raise DatasetError(f"dataset {name} was downloaded to {root} but its files are not there; {hint}")
    return found


def _how_to_get(name: str) -> str:
    folder = _IDX_SETS[name][1][0]
    debian = " or run `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
    return (
        f"connect to the internet so it downloads{debian}, or put its four IDX files in a folder "
        f"and pass it with --data-dir (or set VAE_EXPLORER_DATA), e.g. DIR/{folder}/train-images-idx3-ubyte.gz."
    )


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    """The four IDX arrays of a folder, through uncompressed copies in the cache folder.

    Un-gzipping Fashion-MNIST takes 0.25 s, a twentieth of a short training run. The copies are
    plain .npy files keyed by the IDX files' paths, sizes and modification times (a changed file
    is read again): loading Fashion-MNIST's images as floats took 72 ms so against 87 ms from one
    .npz (zip's checksum over 55 MB). Mapping the copies instead of reading them took 58 ms, but
    the first epoch of a training after it ran 0.4 s slower here, so they are read.
    """
    paths = {
        key: folder / stem if (folder / stem).is_file() else folder / f"{stem}.gz" for key, stem in _IDX_FILES.items()
    }
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
    x = {k: resize(torch.from_numpy(a).unsqueeze(1).float().div_(255.0), config.image_size) for k, a in images.items()}
    y = {k: torch.from_numpy(arrays[k].astype(np.int64)) for k in ("train_y", "test_y")}
    if len(x["train_x"]) != len(y["train_y"]) or len(x["test_x"]) != len(y["test_y"]):
        raise DatasetError(
            f"the IDX files in {folder} do not match (images and labels differ in count); download {name} again."
        )
    return Dataset(name, x["train_x"], y["train_y"], x["test_x"], y["test_y"], list(_IDX_SETS[name][2]))


def _register_idx(name: str, description: str) -> None:
    def locate(config: DataConfig) -> str | None:
        found = _find_idx_folder(name, config)
        return str(found) if found else None

    register_dataset(name, description, _how_to_get(name), locate)(lambda config: _load_idx_set(name, config))


_register_idx("fashion-mnist", "Zalando's Fashion-MNIST, 28x28 clothing (60,000 + 10,000 images, 10 classes)")
_register_idx("mnist", "MNIST handwritten digits, 28x28 (60,000 + 10,000 images, 10 classes)")
_register_idx("kmnist", "Kuzushiji-MNIST cursive Japanese, 28x28 (60,000 + 10,000 images, 10 classes)")

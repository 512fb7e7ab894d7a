import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae_explorer.config import DataConfig
from vae_explorer.data import DATASETS, list_datasets, load_dataset
from vae_explorer.data.idx import read_idx
from vae_explorer.data.image_folder import skipped_message
from vae_explorer.data.shapes import FACTOR_NAMES, generate_shapes
from vae_explorer.errors import DatasetError


def check_dataset(data, shape, classes):
    for x, y in ((data.train_x, data.train_y), (data.test_x, data.test_y)):
        assert x.dtype == torch.float32 and x.dim() == 4 and tuple(x.shape[1:]) == shape
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert y.dtype == torch.int64 and len(y) == len(x)
        assert int(y.min()) >= 0 and int(y.max()) < classes
    assert data.num_classes == classes


def test_digits_is_the_embedded_default():
    data = load_dataset(DataConfig())
    check_dataset(data, (1, 8, 8), 10)
    assert len(data.train_x) + len(data.test_x) == 1797
    assert float(data.train_x.max()) == 1.0


def test_split_is_fixed_and_disjoint():
    a = load_dataset(DataConfig(dataset="digits", split_seed=0))
    b = load_dataset(DataConfig(dataset="digits", split_seed=0, max_test=359))  # another cache entry, same split
    assert torch.equal(a.test_x, b.test_x)
    other = load_dataset(DataConfig(dataset="digits", split_seed=1))
    assert not torch.equal(a.test_x, other.test_x)
    train_rows = {tuple(r.flatten().tolist()) for r in a.train_x}
    overlap = sum(tuple(r.flatten().tolist()) in train_rows for r in a.test_x)
    assert overlap < 5  # the 8x8 digits hold a few exact duplicates, nothing more


def test_resize_and_limits():
    data = load_dataset(DataConfig(dataset="digits", image_size=16, max_train=10, max_test=5))
    check_dataset(data, (1, 16, 16), 10)
    assert (len(data.train_x), len(data.test_x)) == (10, 5)


def test_shapes_factors_are_right():
    images, factors, sizes = generate_shapes(32)
    assert images.shape == (6144, 32, 32) and factors.shape == (6144, 5) and sizes == (3, 4, 8, 8, 8)
    assert len({tuple(f) for f in factors.tolist()}) == 6144  # every combination once
    assert np.array_equal(images, generate_shapes(32)[0])  # deterministic

    def pick(**values):
        keys = [FACTOR_NAMES.index(k) for k in values]
        rows = np.all(factors[:, keys] == list(values.values()), axis=1)
        return images[rows]

    area_small = pick(shape=0, scale=0, rotation=0, pos_x=3, pos_y=3)[0].sum()
    area_big = pick(shape=0, scale=3, rotation=0, pos_x=3, pos_y=3)[0].sum()
    assert area_big == pytest.approx(area_small * 4, rel=0.15)  # radius doubles -> area x4
    ys, xs = np.indices((32, 32))
    left, right = (
        pick(shape=1, scale=2, rotation=0, pos_x=0, pos_y=4)[0],
        pick(shape=1, scale=2, rotation=0, pos_x=7, pos_y=4)[0],
    )
    assert (xs * left).sum() / left.sum() < 10 < 22 < (xs * right).sum() / right.sum()
    top = pick(shape=2, scale=2, rotation=0, pos_x=4, pos_y=0)[0]
    assert (ys * top).sum() / top.sum() < 10
    a, b = (
        pick(shape=1, scale=3, rotation=0, pos_x=4, pos_y=4)[0],
        pick(shape=1, scale=3, rotation=4, pos_x=4, pos_y=4)[0],
    )
    assert a.sum() == pytest.approx(b.sum(), rel=0.05) and np.abs(a - b).sum() > 10  # rotation moves pixels, keeps area


@pytest.mark.slow
def test_shapes_dataset_carries_factors():
    data = load_dataset(DataConfig(dataset="shapes"))
    check_dataset(data, (1, 32, 32), 3)
    assert data.train_factors.shape == (len(data.train_x), 5)
    assert data.factor_names == list(FACTOR_NAMES)
    assert torch.equal(data.train_y, data.train_factors[:, 0])
    assert len(load_dataset(DataConfig(dataset="shapes", image_size=64)).test_x[0, 0]) == 64


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_idx_folder(folder: Path, n_train=20, n_test=10) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n_train))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, n_test))


@pytest.mark.parametrize(
    "name, folder", [("mnist", "MNIST/raw"), ("kmnist", "kmnist"), ("fashion-mnist", "fashion-mnist")]
)
def test_idx_datasets_load_from_data_dir(tmp_path, name, folder):
    make_idx_folder(tmp_path / folder)
    data = load_dataset(DataConfig(dataset=name, data_dir=str(tmp_path)))
    check_dataset(data, (1, 28, 28), 10)
    assert (len(data.train_x), len(data.test_x)) == (20, 10)


def test_idx_from_environment_variable(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "mnist", n_train=7)
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path))
    assert len(load_dataset(DataConfig(dataset="mnist", max_test=3)).train_x) == 7


def test_missing_dataset_offline_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_OFFLINE", "1")
    monkeypatch.delenv("VAE_EXPLORER_DATA", raising=False)
    monkeypatch.setenv("VAE_EXPLORER_CACHE", str(tmp_path))
    with pytest.raises(DatasetError, match=r"kmnist was not found.*--data-dir"):
        load_dataset(DataConfig(dataset="kmnist", data_dir=str(tmp_path / "empty")))


def test_corrupt_idx_file_is_named(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        read_idx(bad)


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(DatasetError, match=r"unknown dataset 'cifar'.*digits.*folder:PATH"):
        load_dataset(DataConfig(dataset="cifar"))


def make_image(path: Path, colour, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_folder_with_class_subfolders(tmp_path):
    for i in range(3):
        make_image(tmp_path / "cats" / f"{i}.png", (200, 10, 10))
        make_image(tmp_path / "dogs" / f"{i}.jpg", (10, 10, 200))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    data = load_dataset(DataConfig(dataset=f"folder:{tmp_path}", image_size=16, channels=3, test_fraction=0.34))
    check_dataset(data, (3, 16, 16), 2)
    assert data.class_names == ["cats", "dogs"]
    assert len(data.train_x) + len(data.test_x) == 6


def test_flat_folder_grayscale_and_unreadable_files(tmp_path):
    for i in range(4):
        make_image(tmp_path / f"{i}.png", (i * 60, i * 60, i * 60))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    data = load_dataset(DataConfig(dataset=f"folder:{tmp_path}", image_size=8))
    check_dataset(data, (1, 8, 8), 1)
    assert data.skipped == ["broken.png"] and len(data.train_x) + len(data.test_x) == 4
    assert (
        skipped_message(data)
        == f"skipped 1 unreadable file in {tmp_path} (broken.png): it is left out of the set; fix or delete it."
    )


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(DataConfig(dataset=f"folder:{tmp_path / 'missing'}"))
    with pytest.raises(DatasetError, match="holds no image files; add PNG or JPEG files"):
        load_dataset(DataConfig(dataset=f"folder:{tmp_path}"))
    (tmp_path / "a.png").write_bytes(b"not a png")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"fewer than 2 readable images \(2 could not be read, e.g. a.png\)"):
        load_dataset(DataConfig(dataset=f"folder:{tmp_path}"))


def test_list_datasets_covers_the_registry():
    names = [spec.name for spec, _ in list_datasets()]
    assert set(DATASETS) <= set(names) and "folder:PATH" in names
    assert dict((s.name, w) for s, w in list_datasets())["digits"] == "built in"


@pytest.mark.fashion
def test_fashion_mnist(needs_fashion):
    data = load_dataset(DataConfig(dataset="fashion-mnist"))
    check_dataset(data, (1, 28, 28), 10)
    assert (len(data.train_x), len(data.test_x)) == (60000, 10000)
    assert data.class_names[9] == "Ankle boot"


def test_cache_folder_is_chosen_by_the_environment(tmp_path, monkeypatch):
    from vae_explorer.paths import cache_root

    monkeypatch.setenv("VAE_EXPLORER_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("VAE_EXPLORER_CACHE")
    assert cache_root() == tmp_path / "xdg" / "vae_explorer"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "vae_explorer"


def test_idx_cache_follows_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_CACHE", str(tmp_path / "cache"))
    make_idx_folder(tmp_path / "data" / "mnist", n_train=6)
    config = DataConfig(dataset="mnist", data_dir=str(tmp_path / "data"), split_seed=7)
    stale = tmp_path / "cache" / "idx" / "0123456789abcdef.npz"  # an earlier version's copy
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    first = load_dataset(config).train_x.clone()
    copies = sorted((tmp_path / "cache" / "idx").glob("*.npy"))
    assert len(copies) == 4 and not stale.exists()
    from vae_explorer.data import registry as data_module

    data_module._CACHE.clear()
    assert torch.equal(load_dataset(config).train_x, first)  # read back from the cache
    sizes = [copy.stat().st_size for copy in copies]
    for i, copy in enumerate(copies):  # empty or cut short (a full disk): the IDX files are read again
        copy.write_bytes(copy.read_bytes()[:-3] if i else b"")
    data_module._CACHE.clear()
    assert torch.equal(load_dataset(config).train_x, first)
    assert [copy.stat().st_size for copy in copies] == sizes  # and the copies written anew
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 28, 28)))
    data_module._CACHE.clear()
    assert not torch.equal(load_dataset(config).train_x, first)  # a changed file is read again

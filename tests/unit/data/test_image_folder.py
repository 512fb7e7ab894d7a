"""Image folders through their uint8 cache (vae_explorer/data/image_folder.py, store.py): decoded once,
converted as uploads are, reused until the folder changes, and read from disk batch by batch
when large, with the same training result as in memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import vae_explorer.data.image_folder as folder
from vae_explorer import TrainConfig
from vae_explorer.config import DataConfig, ModelConfig
from vae_explorer.data import load_dataset
from vae_explorer.data.registry import _CACHE
from vae_explorer.data.store import ImageStore
from vae_explorer.data.uploads import prepare_image
from vae_explorer.models import build_model, fit_to_data
from vae_explorer.training import train


@pytest.fixture(autouse=True)
def fresh_process_cache():
    _CACHE.clear()  # load_dataset keeps sets per process; these tests change folders under the same name
    yield
    _CACHE.clear()


def blobs(root, n=24, size=(20, 16)):
    """n small RGB images in two class folders, each a different gradient."""
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
        (root / ("a" if i % 2 else "b")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / ("a" if i % 2 else "b") / f"{i:03d}.png")


def test_a_16_bit_png_reads_as_its_upload_does(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (16, 1))  # a full-range horizontal ramp
    for name in ("one", "two"):
        Image.fromarray(ramp).save(tmp_path / f"{name}.png")  # mode I;16
    data = load_dataset(DataConfig(dataset=f"folder:{tmp_path}", image_size=16, test_fraction=0.5))
    shown = data.train_x[0, 0].numpy()
    assert shown[0] == pytest.approx(np.linspace(0, 1, 16), abs=1 / 255)  # before: 99.6% white
    upload = prepare_image((tmp_path / "one.png").read_bytes(), (1, 16, 16), invert=False, center=False)
    assert np.abs(shown - upload[0].numpy()).max() <= 1 / 255


def test_transparency_is_white_as_in_an_upload(tmp_path):
    for name in ("one", "two"):
        pixels = np.zeros((8, 8, 4), np.uint8)
        pixels[2:6, 2:6] = (0, 0, 0, 255)  # a black square on a transparent background
        Image.fromarray(pixels, mode="RGBA").save(tmp_path / f"{name}.png")
    data = load_dataset(DataConfig(dataset=f"folder:{tmp_path}", image_size=8, test_fraction=0.5))
    image = data.test_x[0, 0].numpy()
    assert (image[0] == 1.0).all() and (image[3, 3] == 0.0)  # before: the background read as black


def test_the_cache_is_reused_until_the_folder_changes(tmp_path, monkeypatch):
    blobs(tmp_path / "set")
    config = DataConfig(dataset=f"folder:{tmp_path / 'set'}", image_size=8, channels=3)
    calls = []
    first = load_dataset(config, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (24, 24)
    _CACHE.clear()

    def no_decoding(*args):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(folder, "_read_image", no_decoding)
    again = load_dataset(config)
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)
    monkeypatch.undo()
    _CACHE.clear()
    Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(tmp_path / "set" / "a" / "001.png")  # one file changed
    changed = load_dataset(config)
    assert not torch.equal(torch.cat([first.train_x, first.test_x]), torch.cat([changed.train_x, changed.test_x]))


@pytest.mark.parametrize(
    "damage", ["overwritten at the same length", "cut short", "meta.json truncated", "labels.npy removed"]
)
def test_a_damaged_cache_is_read_again_from_the_folder(damage, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_CACHE", str(tmp_path / "cache"))
    blobs(tmp_path / "set")
    config = DataConfig(dataset=f"folder:{tmp_path / 'set'}", image_size=8, channels=3)
    first = load_dataset(config)
    _CACHE.clear()
    (cache,) = (tmp_path / "cache" / "folders").iterdir()
    pixels = cache / "images.u8"
    if damage == "overwritten at the same length":
        pixels.write_bytes(bytes(pixels.stat().st_size))  # all black, same size: only the digest tells
    elif damage == "cut short":
        pixels.write_bytes(pixels.read_bytes()[:100])
    elif damage == "meta.json truncated":
        (cache / "meta.json").write_text((cache / "meta.json").read_text()[:10])
    else:
        (cache / "labels.npy").unlink()
    again = load_dataset(config)
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)


def _in_memory_and_on_disk(tmp_path, monkeypatch):
    """A folder of 40 images (30 to train), loaded as a set held in memory and as one read from disk."""
    blobs(tmp_path / "set", n=40)
    config = DataConfig(dataset=f"folder:{tmp_path / 'set'}", image_size=8, channels=3, test_fraction=0.25)
    in_memory = load_dataset(config)
    _CACHE.clear()
    monkeypatch.setattr(folder, "IN_MEMORY_BYTES", 0)
    return in_memory, load_dataset(config)


def test_a_large_set_is_read_from_disk_and_trains_exactly_as_in_memory(tmp_path, monkeypatch):
    in_memory, on_disk = _in_memory_and_on_disk(tmp_path, monkeypatch)
    assert isinstance(on_disk.train_x, ImageStore) and isinstance(on_disk.test_x, ImageStore)
    assert on_disk.image_shape == in_memory.image_shape == (3, 8, 8) and len(on_disk.train_x) == 30
    index = torch.tensor([7, 0, 29, 3, 3])
    assert torch.equal(on_disk.train_x[index], in_memory.train_x[index])  # any order, repeats
    assert torch.equal(on_disk.test_x[2:9], in_memory.test_x[2:9]) and torch.equal(
        on_disk.test_x[-1], in_memory.test_x[-1]
    )
    from vae_explorer.training import loop

    monkeypatch.setattr(loop, "RESIDENT_CHUNK", 7)  # 30 images: chunks of 7, 7, 7, 7 and 2
    trained = []
    for data, resident in ((in_memory, False), (on_disk, False), (on_disk, True)):
        # resident: what a GPU with room does, the uint8 set held on the device, here the CPU
        monkeypatch.setattr(
            loop,
            "resident_images",
            loop.hold if resident else (lambda store, device: None),
        )
        model = build_model(
            fit_to_data(ModelConfig(latent_dim=2, hidden_sizes=[16]), data.image_shape, data.class_names), seed=0
        )
        history = train(model, data, TrainConfig(epochs=2, batch_size=8, seed=0, device="cpu"))
        trained.append((model.state_dict(), history))
    for other in trained[1:]:
        for name, weight in trained[0][0].items():
            assert torch.equal(weight, other[0][name]), name
        assert [r["test_loss"] for r in trained[0][1]] == [r["test_loss"] for r in other[1]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_a_set_on_disk_is_held_on_the_gpu_as_uint8_when_it_fits(tmp_path, monkeypatch):
    from vae_explorer.training import loop

    in_memory, on_disk = _in_memory_and_on_disk(tmp_path, monkeypatch)
    held = loop.resident_images(on_disk.train_x, torch.device("cuda"))
    assert held.dtype == torch.uint8 and held.device.type == "cuda" and held.shape == (30, 3, 8, 8)
    assert torch.equal(held.cpu().float() / 255, in_memory.train_x)
    losses = []
    for data in (in_memory, on_disk):
        model = build_model(
            fit_to_data(ModelConfig(latent_dim=2, hidden_sizes=[16]), data.image_shape, data.class_names), seed=0
        )
        losses.append(train(model, data, TrainConfig(epochs=2, batch_size=8, seed=0, device="cuda"))[-1]["test_loss"])
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)

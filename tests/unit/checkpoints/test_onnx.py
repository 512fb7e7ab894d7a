"""Decoders as ONNX graphs: onnxruntime's images equal torch's for every shipped model, and a
checkpoint without one (or with one of other weights) gets it made on first use."""

import shutil

import numpy as np
import pytest
import torch

from vae_explorer import load_checkpoint
from vae_explorer.checkpoints.onnx_export import DECODER_FILE, decoder_onnx, recorded_weights, weights_sha1
from vae_explorer.paths import shipped_checkpoint_names


def onnx_images(path, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"z": z.astype(np.float32)}
    if labels is not None:
        feeds["label"] = labels.astype(np.float32)
    return session.run(["image"], feeds)[0]


@pytest.mark.parametrize("name", shipped_checkpoint_names())
def test_every_shipped_model_carries_its_decoder_and_it_decodes_as_torch_does(name):
    checkpoint = load_checkpoint(name)
    path = checkpoint.path / DECODER_FILE
    assert recorded_weights(path) == weights_sha1(checkpoint.path)  # made from these very weights
    assert decoder_onnx(checkpoint) == path  # found, not made again
    model = checkpoint.model
    shape = model.latent_shape() if getattr(model, "spatial", False) else (model.latent_dim,)
    z = torch.randn(16, *shape, generator=torch.Generator().manual_seed(0)) * 2
    labels = torch.arange(16) % model.cond_dim if model.cond_dim else None
    one_hot = torch.nn.functional.one_hot(labels, model.cond_dim).numpy() if model.cond_dim else None
    expected = model.generate(z, labels).numpy()
    got = onnx_images(path, z.numpy(), one_hot)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-5


def test_a_run_gets_its_decoder_on_first_use_and_a_new_one_when_retrained(tiny_checkpoint, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_checkpoint, run)
    checkpoint = load_checkpoint(run)
    path = decoder_onnx(checkpoint)
    first = weights_sha1(run)
    assert path == run / DECODER_FILE and recorded_weights(path) == first
    made = path.stat().st_mtime_ns
    assert decoder_onnx(load_checkpoint(run)) == path and path.stat().st_mtime_ns == made  # kept
    z = np.random.default_rng(0).normal(size=(5, 2))
    assert np.abs(onnx_images(path, z) - checkpoint.model.generate(torch.from_numpy(z).float()).numpy()).max() <= 1e-5
    with torch.no_grad():  # retrained: other weights
        for parameter in checkpoint.model.decoder.parameters():
            parameter.add_(0.1)
    from vae_explorer import save_checkpoint

    save_checkpoint(run, checkpoint.model, checkpoint.config, checkpoint.history)
    again = decoder_onnx(load_checkpoint(run))
    assert recorded_weights(again) == weights_sha1(run) != first
    assert np.abs(onnx_images(again, z) - checkpoint.model.generate(torch.from_numpy(z).float()).numpy()).max() <= 1e-5


def test_a_shipped_checkpoint_without_one_gets_it_in_the_cache(tiny_checkpoint, tmp_path, monkeypatch):
    from vae_explorer import paths

    shipped = tmp_path / "shipped"
    shutil.copytree(tiny_checkpoint, shipped / "tiny")
    monkeypatch.setattr(paths, "shipped_checkpoints_dir", lambda: shipped)
    path = decoder_onnx(load_checkpoint(shipped / "tiny"))
    assert path.parent == paths.cache_root() / "onnx" and not (shipped / "tiny" / DECODER_FILE).exists()


def test_a_conditional_decoder_takes_the_class():
    checkpoint = load_checkpoint("fashion-mnist-cvae")
    z = np.zeros((2, 16))
    sneaker, bag = np.eye(10)[[7, 8]][:1], np.eye(10)[[8]]
    images = [onnx_images(checkpoint.path / DECODER_FILE, z[:1], label) for label in (sneaker, bag)]
    assert np.abs(images[0] - images[1]).max() > 0.1


def test_the_export_command(tiny_checkpoint, tmp_path, capsys):
    from vae_explorer.cli import main

    assert (
        main(["export-onnx", "--model-path", str(tiny_checkpoint), "--out", str(tmp_path / "graphs" / "tiny.onnx")])
        == 0
    )
    assert "inputs z (batch, 2), output image (batch, 1, 8, 8) in [0, 1]" in capsys.readouterr().out
    z = np.zeros((1, 2))
    model = load_checkpoint(tiny_checkpoint).model
    assert (
        np.abs(onnx_images(tmp_path / "graphs" / "tiny.onnx", z) - model.generate(torch.zeros(1, 2)).numpy()).max()
        <= 1e-5
    )
    assert main(["export-onnx", "--model-path", "no-such-model"]) == 2

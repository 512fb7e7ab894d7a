"""Shared fixtures: tiny data and one tiny trained checkpoint reused by the whole session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from vae_explorer import DataConfig, ModelConfig, RunConfig, TrainConfig, build_model, fit_to_data, load_dataset, save_checkpoint, train

REPO = Path(__file__).resolve().parents[1]
IN_CI = bool(os.environ.get("CI"))

# Tests never try to download a dataset, and the feature classifiers they train stay out of ~/.cache.
os.environ.setdefault("VAE_EXPLORER_OFFLINE", "1")
os.environ["VAE_EXPLORER_CACHE"] = tempfile.mkdtemp(prefix="vae-explorer-test-cache-")


def require(condition: bool, what: str) -> None:
    """Skip when something optional is missing, but fail in CI, where .ci/run must have installed it."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing in CI; .ci/run must install it")
    pytest.skip(f"{what} is not installed here")


def fashion_available() -> bool:
    from vae_explorer.data import dataset_spec

    return dataset_spec("fashion-mnist").locate(DataConfig(dataset="fashion-mnist")) is not None


@pytest.fixture
def needs_fashion():
    require(fashion_available(), "Fashion-MNIST (apt-get install dataset-fashion-mnist)")


TINY_DATA = DataConfig(dataset="digits", max_train=256, max_test=64)
TINY_MODEL = ModelConfig(architecture="mlp", latent_dim=2, hidden_sizes=[16])
TINY_TRAIN = TrainConfig(epochs=6, batch_size=16, lr=3e-3, seed=0, device="cpu")


@pytest.fixture(scope="session")
def tiny_data():
    return load_dataset(TINY_DATA)


@pytest.fixture(scope="session")
def tiny_run(tiny_data):
    """A tiny MLP trained for two epochs on 256 digits: (model, config, history)."""
    config = RunConfig(TINY_DATA, fit_to_data(TINY_MODEL, tiny_data.image_shape, tiny_data.class_names), TINY_TRAIN)
    model = build_model(config.model, seed=0)
    history = train(model, tiny_data, config.train)
    return model, config, history


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run, tmp_path_factory) -> Path:
    model, config, history = tiny_run
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", model, config, history)

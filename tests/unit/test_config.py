from pathlib import Path

import pytest
from conftest import REPO

from vae_explorer.config import RunConfig, apply_overrides, config_from_dict, load_config
from vae_explorer.errors import ConfigError


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_parses(path):
    config = load_config(path)
    assert isinstance(config, RunConfig)


def test_fashion_config_is_the_pytorch_examples_architecture():
    config = load_config(REPO / "configs" / "fashion_mnist_mlp.yaml")
    assert config.data.dataset == "fashion-mnist"
    assert (config.model.architecture, config.model.hidden_sizes, config.model.latent_dim) == ("mlp", [400], 20)
    assert (config.model.activation, config.model.likelihood) == ("relu", "bernoulli")
    assert (config.train.batch_size, config.train.lr) == (128, 0.001)


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"model": {"latent_dims": 4}}, ["model.latent_dims", "latent_dim"]),
        ({"modle": {}}, ["modle", "model"]),
        ({"model": {"latent_dim": 0}}, ["model.latent_dim", "from 1 to 512", "got 0"]),
        ({"model": {"latent_dim": 513}}, ["model.latent_dim", "513"]),
        ({"model": {"latent_dim": "eight"}}, ["model.latent_dim", "integer"]),
        ({"model": {"latent_dim": True}}, ["model.latent_dim", "integer"]),
        ({"train": {"lr": -0.1}}, ["train.lr", "-0.1"]),
        ({"train": {"lr": 0}}, ["train.lr"]),
        ({"train": {"lr": "fast"}}, ["train.lr", "number"]),
        ({"train": {"epochs": 0}}, ["train.epochs", "got 0"]),
        ({"train": {"beta": float("nan")}}, ["train.beta", "finite"]),
        ({"model": {"activation": "sigmoidish"}}, ["model.activation", "relu"]),
        ({"model": {"hidden_sizes": 400}}, ["model.hidden_sizes", "list"]),
        ({"model": {"hidden_sizes": [400, -1]}}, ["model.hidden_sizes", "-1"]),
        ({"model": {"conditional": "yes"}}, ["model.conditional", "true or false"]),
        ({"data": ["digits"]}, ["section 'data'", "mapping"]),
        (["not", "a", "mapping"], ["mapping"]),
    ],
)
def test_bad_values_name_the_key(raw, words):
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, "test.yaml")
    message = str(info.value)
    for word in words:
        assert word in message
    assert message.startswith("test.yaml")


def test_yaml_1_1_exponent_strings_are_numbers():
    # PyYAML reads 1e-3 (no dot) as a string; a learning rate written that way must still work.
    assert config_from_dict({"train": {"lr": "1e-3"}}).train.lr == pytest.approx(1e-3)


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  latent_dim: 4\n   hidden_sizes: [1\n")
    with pytest.raises(ConfigError, match=r"broken.yaml is not valid YAML at line \d"):
        load_config(path)


def test_missing_and_binary_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ConfigError, match="binary.yaml"):
        load_config(binary)


def test_empty_file_gives_defaults(tmp_path: Path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == RunConfig()


def test_overrides_are_checked_like_the_file():
    config = apply_overrides(RunConfig(), {"train.epochs": 3, "model.latent_dim": 2})
    assert (config.train.epochs, config.model.latent_dim) == (3, 2)
    with pytest.raises(ConfigError, match="command line: train.batch_size"):
        apply_overrides(RunConfig(), {"train.batch_size": 0})

"""Every shipped checkpoint loads and its test loss matches the metrics.json it was shipped with."""

import dataclasses
import importlib.util

import numpy as np
import pytest
from conftest import REPO, fashion_available, require

from vae_explorer import load_checkpoint, load_dataset
from vae_explorer.training import average_loss

SHIPPED = [
    "digits-mlp",
    "digits-iwae",
    "digits-free-bits",
    "digits-vamp",
    "digits-two-level",
    "fashion-mnist-conv",
    "fashion-mnist-2d",
    "fashion-mnist-cvae",
    "shapes-betavae",
    "shapes-vae",
    "photos-spatial",
]


def test_the_shipped_set_is_complete():
    found = sorted(p.name for p in (REPO / "checkpoints").iterdir() if (p / "config.json").is_file())
    assert set(SHIPPED) <= set(found)
    for name in found:
        size = sum(f.stat().st_size for f in (REPO / "checkpoints" / name).iterdir())
        assert size < 8 * 2**20, f"{name} is {size / 2**20:.1f} MB; shipped checkpoints must stay small"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_matches_its_metrics(name):
    checkpoint = load_checkpoint(REPO / "checkpoints" / name)
    config = checkpoint.config
    if config.data.dataset == "fashion-mnist":
        require(fashion_available(), "Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    metrics = checkpoint.metrics
    assert {"neg_elbo", "recon", "kl", "kl_per_dim", "active_units", "iwae_nll", "iwae_k"} <= set(metrics)
    assert len(checkpoint.history) == config.train.epochs
    if config.data.dataset == "photos":
        require(importlib.util.find_spec("skimage") is not None, "scikit-image (pip install -r requirements.txt)")
    data = load_dataset(dataclasses.replace(config.data, data_dir=None))
    y = data.test_y if config.model.conditional else None
    measured = average_loss(checkpoint.model, data.test_x, y, beta=1.0, seed=metrics.get("eval_seed", 0))
    assert measured["recon"] + measured["kl"] == pytest.approx(metrics["neg_elbo"], rel=2e-3)
    assert measured["kl"] == pytest.approx(metrics["kl"], rel=2e-3)
    assert metrics["iwae_nll"] <= metrics["neg_elbo"]


def test_what_the_objective_checkpoints_are_shipped_to_show():
    """The README and the configs say what digits-iwae and digits-free-bits teach beside digits-mlp
    (the same network and data): the IWAE-trained model has the tighter bound on log p(x) but the
    worse ELBO; free bits keep every dimension active where the ELBO leaves half of them collapsed."""
    plain, iwae, free = (
        load_checkpoint(REPO / "checkpoints" / name) for name in ("digits-mlp", "digits-iwae", "digits-free-bits")
    )
    assert (iwae.config.train.objective, iwae.config.train.iwae_samples) == (
        "iwae",
        5,
    ) and free.config.train.free_bits == 0.5
    assert iwae.metrics["iwae_nll"] < plain.metrics["iwae_nll"] and iwae.metrics["neg_elbo"] > plain.metrics["neg_elbo"]
    assert free.metrics["active_units"] == 8 > plain.metrics["active_units"]
    assert min(free.metrics["kl_per_dim"]) >= 0.5 > min(plain.metrics["kl_per_dim"])


def test_what_the_prior_checkpoints_are_shipped_to_show():
    """digits-vamp and digits-two-level beside digits-mlp: a learned prior fits the data better (both
    bounds lower, better samples), and the VampPrior keeps all 8 dimensions active."""
    plain, vamp, two = (
        load_checkpoint(REPO / "checkpoints" / name) for name in ("digits-mlp", "digits-vamp", "digits-two-level")
    )
    assert vamp.config.model.prior == "vamp" and two.config.model.top_latent_dim == 4
    for model in (vamp, two):
        assert (
            model.metrics["neg_elbo"] < plain.metrics["neg_elbo"]
            and model.metrics["iwae_nll"] < plain.metrics["iwae_nll"]
        )
        assert model.metrics["fid"] < plain.metrics["fid"]
    assert vamp.metrics["active_units"] == 8 > plain.metrics["active_units"]


@pytest.mark.parametrize("name", ["digits-iwae", "digits-free-bits", "digits-vamp", "digits-two-level"])
def test_the_newer_shipped_runs_carry_their_epoch_replay(name):
    from vae_explorer.checkpoints import read_epoch_frames

    checkpoint = load_checkpoint(REPO / "checkpoints" / name)
    frames = read_epoch_frames(checkpoint.path)
    assert [f["epoch"] for f in frames] == list(range(checkpoint.config.train.epochs + 1))
    from vae_explorer.latent import sample_prior

    final = np.rint(sample_prior(checkpoint.model, 8, seed=0).numpy() * 255)
    assert (
        np.abs(frames[-1]["samples"].astype(int) - final.astype(int)).max() <= 1
    )  # the last frame is the shipped model's


def test_what_the_beta_pair_is_shipped_to_show():
    """shapes-vae and shapes-betavae are one network on one dataset, beta = 1 and beta = 4 (Learn and Compare pair
    them): the larger beta keeps less information in z and fewer active dimensions, and reconstructs worse."""
    plain, beta = (load_checkpoint(REPO / "checkpoints" / name) for name in ("shapes-vae", "shapes-betavae"))
    assert plain.config.model == beta.config.model and plain.config.data == beta.config.data
    assert (plain.config.train.beta, beta.config.train.beta) == (1.0, 4.0)
    assert beta.metrics["kl"] < plain.metrics["kl"] and beta.metrics["active_units"] < plain.metrics["active_units"]
    assert beta.metrics["recon"] > plain.metrics["recon"]

"""Training objectives beyond the plain ELBO: the IWAE bound (Burda et al. 2016) and free bits
(Kingma et al. 2016), checked against torch.distributions and the papers' closed forms, trained,
and refused in one sentence where they do not combine."""

from __future__ import annotations

import math

import pytest
import torch

from vae_explorer import DataConfig, ModelConfig, TrainConfig, build_model, fit_to_data, load_dataset, train
from vae_explorer.config import config_from_dict
from vae_explorer.errors import ConfigError
from vae_explorer.evaluation import active_units
from vae_explorer.latent import encode_means
from vae_explorer.models.losses import free_bits_loss


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(dataset="digits"))


def small_model(data, latent=4, seed=0):
    return build_model(
        fit_to_data(ModelConfig(latent_dim=latent, hidden_sizes=[32]), data.image_shape, data.class_names), seed=seed
    )


def test_free_bits_charges_lambda_for_each_dimension_below_it_and_has_that_gradient():
    kl = torch.tensor(
        [[0.1, 2.0, 0.3], [0.2, 1.0, 0.9], [0.0, 3.0, 0.3]], requires_grad=True
    )  # (B=3, D=3); means .1, 2, .5
    recon = torch.tensor([10.0, 11.0, 12.0])
    parts = free_bits_loss(recon, kl, beta=2.0, free_bits=0.6)
    # the paper's objective on this batch: mean recon + beta * sum_j max(lambda, mean_i KL_ij)
    expected = recon.mean() + 2.0 * (max(0.6, 0.1) + max(0.6, 2.0) + max(0.6, 0.5))
    assert torch.isclose(parts.total.mean(), expected)
    assert torch.allclose(parts.kl, kl.detach().sum(1))  # the record keeps the true KL
    parts.total.mean().backward()
    # only the dimension above its free bits is pushed: d/dKL_ij = beta / B there, 0 elsewhere
    assert torch.allclose(kl.grad, torch.tensor([[0.0, 2 / 3, 0.0]] * 3))


def test_free_bits_of_zero_is_the_plain_objective():
    kl = torch.rand(5, 4)
    recon = torch.rand(5)
    assert torch.allclose(free_bits_loss(recon, kl, 1.5, 0.0).total, recon + 1.5 * kl.sum(1))


def test_the_iwae_loss_is_minus_the_log_mean_of_importance_weights_from_torch_distributions(digits):
    from torch.distributions import Bernoulli, Normal

    model = small_model(digits)
    x = digits.test_x[:6]
    k = 7
    parts = model.iwae_loss(x, None, k, torch.Generator().manual_seed(3))
    # the same samples, drawn independently: z_i = mu + sigma * eps with the generator's eps
    q = model.encode(x)
    eps = torch.randn((6 * k, 4), generator=torch.Generator().manual_seed(3))
    mu, sigma = q.mean.repeat_interleave(k, 0), q.stddev.repeat_interleave(k, 0)
    z = mu + sigma * eps
    log_w = (
        Bernoulli(logits=model.decode(z).flatten(1), validate_args=False)
        .log_prob(x.repeat_interleave(k, 0).flatten(1))
        .sum(1)
        + Normal(0.0, 1.0).log_prob(z).sum(1)
        - Normal(mu, sigma).log_prob(z).sum(1)
    ).view(6, k)
    expected = -(torch.logsumexp(log_w, 1) - math.log(k))
    assert torch.allclose(parts.total, expected, atol=1e-4)
    assert torch.allclose(parts.kl, q.kl()) and parts.recon.shape == (6,)
    # log-mean-exp >= mean: the bound is at least the k-sample ELBO of the same samples, image by image
    assert (-parts.total >= log_w.mean(1) - 1e-5).all()


def test_with_one_sample_the_iwae_loss_is_the_single_sample_elbo(digits):
    model = small_model(digits)
    x = digits.test_x[:5]
    iwae = model.iwae_loss(x, None, 1, torch.Generator().manual_seed(0))
    elbo = model.loss(x, None, 1.0, torch.Generator().manual_seed(0))
    # the same z; the ELBO's KL is analytic, the bound's a one-sample estimate: equal in expectation, so
    # their difference is that of the two KL estimates, and the reconstructions agree exactly
    assert torch.allclose(iwae.recon, elbo.recon, atol=1e-5)
    many = torch.stack([model.iwae_loss(x, None, 1, torch.Generator().manual_seed(s)).total for s in range(400)]).mean(
        0
    )
    exact = torch.stack([model.loss(x, None, 1.0, torch.Generator().manual_seed(s)).total for s in range(400)]).mean(0)
    assert torch.allclose(many, exact, rtol=0.02)


def test_training_on_the_iwae_bound_lowers_it(digits):
    model = small_model(digits)
    config = TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=0, device="cpu", objective="iwae", iwae_samples=4)
    history = train(model, digits, config)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["test_loss"] < history[0]["test_loss"]
    # the recorded training loss is -L_k: below the ELBO's (recon + KL) of the same epoch
    assert all(h["train_loss"] <= h["train_recon"] + h["train_kl"] + 1.0 for h in history)


def test_free_bits_keeps_dimensions_a_beta_vae_would_collapse(digits):
    counts = {}
    for free in (0.0, 1.0):
        model = small_model(digits, latent=6)
        train(
            model, digits, TrainConfig(epochs=8, batch_size=64, lr=3e-3, beta=4.0, seed=0, device="cpu", free_bits=free)
        )
        mu, _ = encode_means(model, digits.test_x)
        counts[free] = active_units(mu)
    assert counts[0.0] <= 1 and counts[1.0] >= 4, counts


@pytest.mark.parametrize("key, value", [("beta", 4.0), ("warmup_epochs", 3), ("free_bits", 0.5)])
def test_the_iwae_objective_refuses_what_it_has_no_place_for(key, value, digits):
    with pytest.raises(ConfigError) as error:
        config_from_dict({"train": {"objective": "iwae", key: value}}, "my.yaml")
    plain = {"beta": "1", "warmup_epochs": "0", "free_bits": "0"}[key]
    assert str(error.value) == (
        f"my.yaml: train.objective iwae trains the bound on log p(x) itself, so train.{key} must be "
        f"{plain}, not {value:g}; set it to {plain}, or use objective elbo for it."
    )
    with pytest.raises(
        ConfigError, match=f"train config: train.objective iwae .* train.{key} must be"
    ):  # made in Python
        train(small_model(digits), digits, TrainConfig(device="cpu", objective="iwae", **{key: value}))


def test_the_cli_trains_with_an_objective_and_refuses_a_bad_mix(tmp_path, capsys):
    from vae_explorer import load_checkpoint
    from vae_explorer.cli import main

    assert (
        main(
            [
                "train",
                "--epochs",
                "1",
                "--objective",
                "iwae",
                "--iwae-samples",
                "3",
                "--warmup-epochs",
                "0",
                "--out",
                str(tmp_path / "iwae"),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    config = load_checkpoint(tmp_path / "iwae").config.train
    assert (config.objective, config.iwae_samples) == ("iwae", 3)
    capsys.readouterr()
    assert (
        main(
            ["train", "--epochs", "1", "--objective", "iwae", "--beta", "4", "--out", str(tmp_path / "bad"), "--quiet"]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: command line: train.objective iwae trains the bound on log p(x) itself, so train.beta "
        "must be 1, not 4; set it to 1, or use objective elbo for it."
    )
    assert not (tmp_path / "bad").exists()

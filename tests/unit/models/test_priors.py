"""Priors beyond N(0, I): the VampPrior (Tomczak & Welling 2018) and a two-level hierarchical VAE,
their densities and KL terms against torch.distributions, their bounds consistent with their
ELBOs, their samples, training, saving and loading, and the combinations refused."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal, kl_divergence

from vae_explorer import (
    DataConfig,
    ModelConfig,
    TrainConfig,
    build_model,
    fit_to_data,
    load_checkpoint,
    load_dataset,
    save_checkpoint,
    train,
)
from vae_explorer.config import RunConfig, config_from_dict
from vae_explorer.errors import ConfigError


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(dataset="digits"))


def model_of(data, seed=0, **kind):
    config = fit_to_data(ModelConfig(latent_dim=3, hidden_sizes=[32], **kind), data.image_shape, data.class_names)
    return build_model(config, seed=seed)


def vamp_mixture(model) -> MixtureSameFamily:
    mean, logvar = model._vamp_components()
    k = len(mean)
    return MixtureSameFamily(
        Categorical(torch.full((k,), 1 / k)), Independent(Normal(mean, torch.exp(0.5 * logvar)), 1)
    )


def test_the_vamp_prior_is_the_mixture_of_the_pseudo_inputs_posteriors(digits):
    model = model_of(digits, prior="vamp", pseudo_inputs=7)
    with torch.no_grad():
        model.pseudo_logits.normal_(0, 2)  # pseudo-images far from grey, so the components differ
        z = torch.randn(20, 3) * 2
        assert torch.allclose(model.prior_log_prob(z), vamp_mixture(model).log_prob(z), atol=1e-4)
        # the components are the encoder's posteriors of sigmoid(pseudo_logits), computed here directly
        q = model.encode(torch.sigmoid(model.pseudo_logits))
        assert torch.allclose(model._vamp_components()[0], q.mean)


def test_the_vamp_kl_is_log_q_minus_log_p_at_the_sample_and_per_dimension_against_the_marginals(digits):
    model = model_of(digits, prior="vamp", pseudo_inputs=5)
    x = digits.test_x[:6]
    with torch.no_grad():
        model.pseudo_logits.normal_(0, 2)
        q = model.encode(x)
        z = q.sample(torch.Generator().manual_seed(0))
        kl, per_dim = model.kl_terms(q, z)
        posterior = Normal(q.mean, q.stddev)
        assert torch.allclose(kl, posterior.log_prob(z).sum(1) - vamp_mixture(model).log_prob(z), atol=1e-4)
        mean, logvar = model._vamp_components()
        for j in range(3):  # the prior's marginal in dimension j: a 1-D mixture of the components' j-th coordinates
            marginal = MixtureSameFamily(
                Categorical(torch.full((5,), 0.2)), Normal(mean[:, j], torch.exp(0.5 * logvar[:, j]))
            )
            assert torch.allclose(per_dim[:, j], posterior.log_prob(z)[:, j] - marginal.log_prob(z[:, j]), atol=1e-4)


def test_the_two_level_kl_is_analytic_given_the_top_sample(digits):
    model = model_of(digits, top_latent_dim=2)
    x = digits.test_x[:6]
    with torch.no_grad():
        q = model.encode(x)
        z = q.sample(torch.Generator().manual_seed(0))
        kl, per_dim = model.kl_terms(q, z, torch.Generator().manual_seed(5))
        # independently: z2 from q(z2|z) with the same noise, then the two Gaussian KLs of torch.distributions
        top_mu, top_logvar = model.top_encoder(z).chunk(2, 1)
        eps = torch.randn(top_mu.shape, generator=torch.Generator().manual_seed(5))
        z2 = top_mu + eps * torch.exp(0.5 * top_logvar)
        p_mu, p_logvar = model.top_prior(z2).chunk(2, 1)
        expected_dims = kl_divergence(Normal(q.mean, q.stddev), Normal(p_mu, torch.exp(0.5 * p_logvar)))
        top_kl = kl_divergence(Normal(top_mu, torch.exp(0.5 * top_logvar)), Normal(0.0, 1.0)).sum(1)
        assert torch.allclose(per_dim, expected_dims, atol=1e-5)
        assert torch.allclose(kl, expected_dims.sum(1) + top_kl, atol=1e-5)


@pytest.mark.parametrize("kind", [{"prior": "vamp", "pseudo_inputs": 4}, {"top_latent_dim": 2}, {}])
def test_one_importance_sample_is_an_unbiased_elbo(kind, digits):
    """E[log w] with k = 1 is the ELBO: the bound's code path and the loss's agree on average."""
    model = model_of(digits, **kind)
    x = digits.test_x[:4]
    with torch.no_grad():
        log_w = torch.stack(
            [model.importance_log_weights(x, None, 1, torch.Generator().manual_seed(s))[0][:, 0] for s in range(3000)]
        )
        elbo = torch.stack([-model.loss(x, None, 1.0, torch.Generator().manual_seed(s)).total for s in range(3000)])
    spread = (log_w.std(0) + elbo.std(0)) / math.sqrt(3000)
    assert ((log_w.mean(0) - elbo.mean(0)).abs() < 4 * spread + 0.05).all(), (log_w.mean(0), elbo.mean(0))


def test_vamp_samples_come_from_the_mixture(digits):
    model = model_of(digits, prior="vamp", pseudo_inputs=1)  # one component: samples are that Gaussian
    with torch.no_grad():
        mean, logvar = model._vamp_components()
        z = model.sample_prior(20_000, torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), mean[0], atol=0.03) and torch.allclose(
        z.std(0), torch.exp(0.5 * logvar[0]), rtol=0.03
    )


def test_two_level_samples_go_through_p_of_z_given_z2(digits):
    model = model_of(digits, top_latent_dim=2)
    with torch.no_grad():
        z = model.sample_prior(5, torch.Generator().manual_seed(3))
        generator = torch.Generator().manual_seed(3)
        z2 = torch.randn(5, 2, generator=generator)
        p_mu, p_logvar = model.top_prior(z2).chunk(2, 1)
        assert torch.allclose(z, p_mu + torch.randn(5, 3, generator=generator) * torch.exp(0.5 * p_logvar), atol=1e-6)


@pytest.mark.parametrize("kind", [{"prior": "vamp", "pseudo_inputs": 10}, {"top_latent_dim": 2}])
def test_both_train_and_survive_a_save_and_load(kind, digits, tmp_path):
    model = model_of(digits, **kind)
    history = train(model, digits, TrainConfig(epochs=3, batch_size=64, lr=3e-3, device="cpu", seed=0))
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    assert len(history[-1]["test_kl_per_dim"]) == 3
    config = RunConfig(DataConfig(dataset="digits"), model.config, TrainConfig(epochs=3))
    loaded = load_checkpoint(save_checkpoint(tmp_path / "run", model, config, history)).model
    x = digits.test_x[:5]
    with torch.no_grad():
        assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))
        assert torch.equal(
            loaded.sample_prior(4, torch.Generator().manual_seed(0)),
            model.sample_prior(4, torch.Generator().manual_seed(0)),
        )


@pytest.mark.parametrize(
    "model_keys, train_keys, expected",
    [
        (
            {"prior": "vamp", "top_latent_dim": 2},
            {},
            "cfg: model.prior vamp and model.top_latent_dim are two different priors for z; "
            "use one of them (set top_latent_dim to 0 or prior to normal).",
        ),
        (
            {"prior": "vamp", "conditional": True},
            {},
            "cfg: model.prior vamp is for an unconditional VAE; set model.conditional to false.",
        ),
        (
            {"top_latent_dim": 4},
            {"free_bits": 0.5},
            "cfg: train.free_bits is for the N(0, I) prior, not with model.top_latent_dim; set free_bits to 0.",
        ),
    ],
)
def test_combinations_without_a_meaning_are_refused(model_keys, train_keys, expected):
    with pytest.raises(ConfigError) as error:
        config_from_dict({"model": model_keys, "train": train_keys}, "cfg")
    assert str(error.value) == expected


def test_vamp_pseudo_inputs_start_from_training_images_once(digits):
    model = model_of(digits, prior="vamp", pseudo_inputs=6)
    train(
        model, digits, TrainConfig(epochs=1, batch_size=64, lr=1e-9, device="cpu", seed=4)
    )  # lr ~0: barely moves them
    picked = torch.randperm(len(digits.train_x), generator=torch.Generator().manual_seed(4))[:6]
    assert torch.allclose(
        torch.sigmoid(model.pseudo_logits.detach()), digits.train_x[picked].clamp(0.02, 0.98), atol=1e-4
    )
    with torch.no_grad():
        model.pseudo_logits.fill_(0.25)  # as if learned since
    train(
        model, digits, TrainConfig(epochs=1, batch_size=64, lr=1e-9, device="cpu", seed=5)
    )  # a second call keeps them
    assert torch.allclose(model.pseudo_logits.detach(), torch.full_like(model.pseudo_logits, 0.25), atol=1e-4)

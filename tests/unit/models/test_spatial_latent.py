"""A VAE of this package with a spatial latent (architecture "spatial"): z is a map of latent_dim
channels at 1/f of the image's side, the prior N(0, I) at every position. Its bounds are checked
against torch.distributions, term by term, and its statistics against torch's own reductions."""

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae_explorer.config import ModelConfig
from vae_explorer.errors import ConfigError
from vae_explorer.models import build_model
from vae_explorer.training import average_loss


def spatial(**kw):
    base = dict(
        architecture="spatial", latent_dim=3, channels=[8, 16], image_shape=[3, 16, 16], likelihood="gaussian-learned"
    )
    base.update(kw)
    return build_model(ModelConfig(**base), seed=0)


def test_the_latent_is_a_map_at_one_fourth_of_any_size_the_factor_divides():
    model = spatial()
    assert model.spatial and model.factor == 4 and model.latent_shape() == (3, 4, 4)
    for h, w in ((16, 16), (24, 40), (64, 32)):
        x = torch.rand(2, 3, h, w)
        q = model.encode(x)
        assert q.mean.shape == q.logvar.shape == (2, 3, h // 4, w // 4) == (2, *model.latent_shape((3, h, w)))
        assert model.reconstruct(x).shape == x.shape
    assert model.sample_prior(5, torch.Generator().manual_seed(0)).shape == (5, 3, 4, 4)
    images = model.generate(model.sample_prior(2))
    assert images.shape == (2, 3, 16, 16) and 0 <= images.min() and images.max() <= 1


def test_the_elbo_is_the_gaussian_likelihood_and_the_kl_of_every_position():
    """-ELBO = -log N(x; decoder(z), sigma^2) + KL(q || N(0, I)) summed over channels and positions, with
    z the reparameterized sample the generator's noise gives (the same draw here)."""
    model = spatial()
    x = torch.rand(4, 3, 16, 16)
    parts = model.loss(x, generator=torch.Generator().manual_seed(3))
    q = model.encode(x)
    eps = torch.randn(q.mean.shape, generator=torch.Generator().manual_seed(3))
    z = q.mean + eps * (0.5 * q.logvar).exp()
    sigma = model.log_sigma.exp()[:, None, None]
    recon = -Normal(model.decode(z), sigma).log_prob(x).sum((1, 2, 3))
    kl = kl_divergence(Normal(q.mean, (0.5 * q.logvar).exp()), Normal(0.0, 1.0)).sum((1, 2, 3))
    torch.testing.assert_close(parts.recon, recon, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(parts.kl, kl, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(q.kl_per_dim(), kl_divergence(Normal(q.mean, q.stddev), Normal(0.0, 1.0)).sum((2, 3)))


def test_the_importance_weights_are_those_of_the_whole_map():
    """log w = log p(x|z) + log p(z) - log q(z|x), each summed over the whole map (not its last axis)."""
    model = spatial()
    x = torch.rand(2, 3, 16, 16)
    log_w, log_px_z, q = model.importance_log_weights(x, k=3, generator=torch.Generator().manual_seed(1))
    assert log_w.shape == log_px_z.shape == (2, 3)
    eps = torch.randn((6, *q.mean.shape[1:]), generator=torch.Generator().manual_seed(1))
    mean, std = q.mean.repeat_interleave(3, 0), q.stddev.repeat_interleave(3, 0)
    z = mean + eps * std
    sigma = model.log_sigma.exp()[:, None, None]
    expected = (
        Normal(model.decode(z), sigma).log_prob(x.repeat_interleave(3, 0)).sum((1, 2, 3))
        + Normal(0.0, 1.0).log_prob(z).sum((1, 2, 3))
        - Normal(mean, std).log_prob(z).sum((1, 2, 3))
    )
    torch.testing.assert_close(log_w.flatten(), expected, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(model.prior_log_prob(z), Normal(0.0, 1.0).log_prob(z).sum((1, 2, 3)))


def test_a_channel_s_activity_is_the_variance_of_its_means_over_every_position():
    model = spatial()
    x = torch.rand(7, 3, 16, 16)
    measured = average_loss(model, x, None, batch_size=3)
    means = model.encode(x).mean.double()  # (7, 3, 4, 4)
    per_channel = means.transpose(0, 1).reshape(3, -1).var(1)
    assert measured["mu_var"] == pytest.approx(per_channel.tolist(), rel=1e-6)
    assert len(measured["kl_per_dim"]) == 3


def test_one_step_of_adam_lowers_the_loss():
    model = spatial()
    x = torch.rand(8, 3, 16, 16)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    before = model.loss(x, generator=torch.Generator().manual_seed(0)).total.mean()
    for _ in range(5):
        loss = model.loss(x, generator=torch.Generator().manual_seed(0)).total.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.loss(x, generator=torch.Generator().manual_seed(0)).total.mean() < before


@pytest.mark.parametrize(
    "change, said",
    [
        (dict(image_shape=[3, 18, 16]), "the image's sides must be multiples of 4, not 18x16; use data.image_size 16"),
        (dict(conditional=True, num_classes=3), "without model.conditional; set it to false."),
        (dict(prior="vamp"), "without model.prior vamp; set model.prior to normal."),
        (dict(top_latent_dim=2), "without model.top_latent_dim; set it to 0."),
    ],
)
def test_what_a_latent_map_cannot_have_is_one_sentence(change, said):
    with pytest.raises(ConfigError) as error:
        spatial(**change)
    assert said in str(error.value) and "\n" not in str(error.value)

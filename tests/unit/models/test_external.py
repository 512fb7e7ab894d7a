"""A model written elsewhere, explored through the notebook door (vae_explorer.models.wrap_model):
a small VAE defined and trained here with its own loop, never touching the package, then wrapped;
the package's evaluation, generation and latent operations agree with the model's own numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vae_explorer.config import DataConfig
from vae_explorer.data import load_dataset
from vae_explorer.errors import ConfigError
from vae_explorer.evaluation import basic_metrics, evaluate
from vae_explorer.latent import encode_means, generate, interpolate, pca_2d, traverse
from vae_explorer.models import wrap_model


class TheirVAE(nn.Module):
    """Someone's MLP VAE on 8x8 digits: flat images in, flat logits out."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.Tanh(), nn.Linear(48, 2 * 3))
        self.dec = nn.Sequential(nn.Linear(3, 48), nn.Tanh(), nn.Linear(48, 64))

    def encode(self, x):
        mu, logvar = self.enc(x).chunk(2, 1)
        return mu, logvar

    def decode(self, z):
        return self.dec(z)  # (B, 64) logits

    def neg_elbo(self, x, generator):
        """Their own test loss: BCE-with-logits summed over pixels plus the closed-form KL, one z per image."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
        recon = nn.functional.binary_cross_entropy_with_logits(self.decode(z), x.flatten(1), reduction="none").sum(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return recon + kl


@pytest.fixture(scope="module")
def theirs():
    data = load_dataset(DataConfig(dataset="digits"))
    torch.manual_seed(0)
    model = TheirVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        index = torch.randint(0, len(data.train_x), (64,), generator=generator)
        loss = model.neg_elbo(data.train_x[index], generator).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, data


def test_evaluate_gives_their_own_test_loss(theirs):
    model, data = theirs
    with torch.no_grad():
        own = float(
            torch.cat([model.neg_elbo(data.test_x, torch.Generator().manual_seed(s)) for s in range(20)]).mean()
        )
    wrapped = wrap_model(model.encode, model.decode, (1, 8, 8), module=model)
    metrics, mu = basic_metrics(wrapped, data)
    assert wrapped.latent_dim == 3 and metrics["neg_elbo"] == pytest.approx(
        own, abs=1.5
    )  # one noise draw against twenty
    with torch.no_grad():
        expected_mu, _ = model.encode(data.test_x)
    assert mu.numpy() == pytest.approx(expected_mu.numpy(), abs=1e-6) and encode_means(wrapped, data.test_x)[
        0
    ].shape == (359, 3)
    full = evaluate(wrapped, data, k=20)  # the importance-weighted bound too (Burda et al.): tighter than the ELBO
    assert full["iwae_nll"] <= full["neg_elbo"] + 1e-6 and full["active_units"] <= 3


def test_pictures_and_latent_operations_are_their_decoder_s(theirs):
    model, data = theirs
    wrapped = wrap_model(model.encode, model.decode, (1, 8, 8), module=model)
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs_images = torch.sigmoid(model.decode(z)).reshape(5, 1, 8, 8)
    assert torch.allclose(generate(wrapped, z), theirs_images, atol=1e-6)
    path = interpolate(z[0], z[1], 7, "slerp")
    assert path.shape == (7, 3) and torch.allclose(path[0], z[0], atol=1e-6)
    assert traverse(wrapped, [0, 2], steps=5).shape == (10, 1, 8, 8)
    coords, _, _ = pca_2d(encode_means(wrapped, data.test_x)[0].numpy())
    assert coords.shape == (359, 2)


def test_a_decoder_that_returns_probabilities_is_the_same_bernoulli(theirs):
    model, data = theirs
    as_logits = wrap_model(model.encode, model.decode, (1, 8, 8), module=model)
    as_probabilities = wrap_model(
        model.encode, lambda z: torch.sigmoid(model.decode(z)), (1, 8, 8), "probabilities", module=model
    )
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(generate(as_logits, z), generate(as_probabilities, z), atol=1e-5)
    first, second = (basic_metrics(m, data)[0]["neg_elbo"] for m in (as_logits, as_probabilities))
    assert first == pytest.approx(second, rel=1e-4)


def test_a_wrong_contract_is_one_clear_message(theirs):
    model, _ = theirs
    with pytest.raises(ConfigError, match=r"encode\(x\) must return \(mu, logvar\)"):
        wrap_model(lambda x: model.encode(x)[0], model.decode, (1, 8, 8))
    with pytest.raises(
        ConfigError, match=r"decode\(z\) gave 784 numbers per image, but image_shape \(1, 8, 8\) holds 64"
    ):
        wrap_model(model.encode, lambda z: torch.zeros(len(z), 784), (1, 8, 8))
    with pytest.raises(
        ConfigError,
        match=r"encode\(x\) raised on a blank batch of shape \(1, 1, 28, 28\): mat1 and mat2 "
        r"shapes cannot be multiplied \(1x784 and 64x48\)",
    ):  # the person's own message
        wrap_model(model.encode, model.decode, (1, 28, 28))
    with pytest.raises(ConfigError, match=r"decode\(z\) raised on z of shape \(1, 3\)"):
        wrap_model(model.encode, lambda z: model.decode(torch.cat([z, z], 1)), (1, 8, 8))
    with pytest.raises(ConfigError, match="output must be logits or probabilities, not 'mean'"):
        wrap_model(model.encode, model.decode, (1, 8, 8), "mean")
    with pytest.raises(ConfigError, match=r"image_shape must be \(channels, height, width\)"):
        wrap_model(model.encode, model.decode, (64,))

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


# --- the shipped photos-spatial from the command line ---------------------------------------------------


def _photo_file(path, pixels):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_the_photo_command_takes_the_shipped_spatial_vae_by_name(tmp_path, capsys):
    """`vae-explorer photo --vae photos-spatial`: scikit-learn's flower.jpg (not a photo it was trained on)
    at its size cut to multiples of 8; the PSNR printed is that of the model's own reconstruction."""
    import numpy as np
    from sklearn.datasets import load_sample_image

    from vae_explorer import load_checkpoint
    from vae_explorer.cli import main
    from vae_explorer.evaluation.fidelity import psnr

    pixels = load_sample_image("flower.jpg")[:203, :301]  # cut to 200 x 300, the middle kept
    photo = _photo_file(tmp_path / "flower.png", pixels)
    assert main(["photo", "--vae", "photos-spatial", "--image", str(photo), "--out", str(tmp_path / "o.png")]) == 0
    printed = capsys.readouterr().out
    assert "photos-spatial: a spatial-latent VAE of vae-explorer of" in printed
    assert "flower.png: 300x200 pixels -> latent 4x50x75" in printed
    model = load_checkpoint("photos-spatial").model
    x = torch.from_numpy(pixels[1:201, 0:300].astype(np.float32) / 255).permute(2, 0, 1)
    assert f"PSNR {psnr(x, model.generate(model.encode(x[None]).mean)[0]):.2f} dB" in printed
    assert main(["photo", "--vae", "digits-mlp", "--image", str(photo)]) == 2
    said = capsys.readouterr().err
    assert "digits-mlp is a vae-explorer model with a latent vector, not a latent map; pass a spatial one" in said


def test_a_latent_map_has_no_2d_map_and_its_decoder_exports_for_any_size(tmp_path, capsys):
    import numpy as np
    import onnxruntime

    from vae_explorer import load_checkpoint
    from vae_explorer.cli import main

    assert main(["map", "--model-path", "photos-spatial"]) == 2
    assert "photos-spatial has a latent map (4 x 16 x 16 for its training images), not a vector" in (
        capsys.readouterr().err
    )
    out = tmp_path / "decoder.onnx"
    assert main(["export-onnx", "--model-path", "photos-spatial", "--out", str(out)]) == 0
    assert "inputs z (batch, 4, rows, columns), output image (batch, 3, 4 rows, 4 columns)" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(out))
    model = load_checkpoint("photos-spatial").model
    z = torch.randn(2, 4, 9, 13, generator=torch.Generator().manual_seed(0))
    (image,) = session.run(None, {"z": z.numpy()})
    assert image.shape == (2, 3, 36, 52)
    np.testing.assert_allclose(image, model.generate(z).numpy(), atol=1e-5)

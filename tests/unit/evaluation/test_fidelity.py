"""PSNR and SSIM against their closed forms, and a photo through a spatial VAE measured as the
VAE itself reconstructs it."""

import math

import pytest
import torch

from vae_explorer.evaluation.fidelity import psnr, reconstruct_photo, ssim


def test_psnr_is_ten_log10_of_one_over_the_mean_squared_error():
    a = torch.full((3, 8, 8), 0.5)
    assert psnr(a, a + 0.1) == pytest.approx(20.0)  # mse 0.01
    assert psnr(a, a + 0.01) == pytest.approx(40.0)
    assert psnr(a, a) == math.inf


def test_ssim_of_flat_images_is_the_luminance_term_and_of_an_image_with_itself_one():
    """Where both images are constant the variances and covariance are 0, so SSIM is
    (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1) (Wang et al. 2004, eq. 13 with sigma = 0)."""
    c1 = 0.01**2
    a, b = torch.full((1, 16, 16), 0.2), torch.full((1, 16, 16), 0.7)
    assert ssim(a, b) == pytest.approx((2 * 0.2 * 0.7 + c1) / (0.2**2 + 0.7**2 + c1))
    x = torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(0))
    assert ssim(x, x) == pytest.approx(1.0)
    noisy = (x + 0.2 * torch.randn(3, 20, 20, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    noisier = (x + 0.5 * torch.randn(3, 20, 20, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert ssim(x, noisy) == pytest.approx(ssim(noisy, x)) and 1 > ssim(x, noisy) > ssim(x, noisier)


def test_a_photo_through_a_spatial_vae_is_measured_against_its_own_decode():
    class Halving:  # a stand-in "VAE": the latent is the photo averaged over 2 x 2 blocks
        factor = 2

        def encode(self, x):
            mean = torch.nn.functional.avg_pool2d(x, 2)
            return mean, torch.zeros_like(mean)

        def decode(self, z):
            return torch.nn.functional.interpolate(z, scale_factor=2, mode="nearest")

    photo = torch.rand(3, 8, 12, generator=torch.Generator().manual_seed(2))
    result = reconstruct_photo(Halving(), photo)
    expected = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(photo[None], 2), scale_factor=2)[0]
    assert torch.equal(result.reconstruction, expected) and result.mean.shape == (3, 4, 6)
    assert torch.allclose(result.error, (expected - photo).abs().mean(0))
    assert result.psnr == pytest.approx(psnr(photo, expected)) and result.ssim == pytest.approx(ssim(photo, expected))


def test_ssim_equals_scikit_image_s_with_wang_s_window():
    """scikit-image's structural_similarity with the paper's Gaussian window (sigma 1.5, population
    covariances) is the reference."""
    import importlib.util

    import numpy as np
    from conftest import require

    require(importlib.util.find_spec("skimage") is not None, "scikit-image (pip install -r requirements.txt)")
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    for shape, noise in (((3, 40, 56), 0.1), ((1, 24, 24), 0.3), ((3, 64, 32), 0.02)):
        x = torch.rand(*shape, generator=g)
        y = (x + noise * torch.randn(*shape, generator=g)).clamp(0, 1)
        expected = structural_similarity(
            x.double().numpy(),
            y.double().numpy(),
            data_range=1.0,
            channel_axis=0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert ssim(x, y) == pytest.approx(expected, abs=1e-12)
        assert np.isfinite(expected)

"""How faithfully an autoencoder gives back a photo: PSNR and SSIM between the photo and its
reconstruction, and the error per pixel. For the spatial VAEs of latent diffusion
(models/diffusers_vae.py), whose reconstructions are judged by these numbers rather than by a
likelihood."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11  # Wang et al. 2004: an 11 x 11 Gaussian window of sigma 1.5
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1]: 10 log10(1 / mean squared error);
    infinite for identical images."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse, dtype=torch.float64)).item()


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """The structural similarity of two images (C, H, W) in [0, 1] (Wang, Bovik, Sheikh and
    Simoncelli 2004, eq. 13): local means, variances and covariance under an 11 x 11 Gaussian window
    (sigma 1.5), each channel on its own, averaged over the positions where the window fits whole
    and over the channels. 1 for identical images."""
    a, b = a.double()[None], b.double()[None]  # (1, C, H, W)
    channels = a.shape[1]
    size = min(SSIM_WINDOW, a.shape[-1], a.shape[-2])
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(channels, 1, size, size)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=channels)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # the dynamic range L is 1
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


@dataclass
class PhotoReconstruction:
    """A photo through a spatial VAE: the photo and its reconstruction (3, H, W) in [0, 1], the
    mean absolute error per pixel over the channels (H, W), PSNR (dB) and SSIM, and the posterior
    mean and log-variance (C, H/f, W/f) the reconstruction was decoded from."""

    photo: torch.Tensor
    reconstruction: torch.Tensor
    error: torch.Tensor
    psnr: float
    ssim: float
    mean: torch.Tensor
    logvar: torch.Tensor


def reconstruct_photo(vae, photo: torch.Tensor) -> PhotoReconstruction:
    """Encode a photo (3, H, W) in [0, 1] with `vae` (a SpatialVAE; H and W multiples of its factor),
    decode the posterior mean, and measure the difference."""
    mean, logvar = vae.encode(photo[None])
    reconstruction = vae.decode(mean)[0]
    return PhotoReconstruction(
        photo=photo,
        reconstruction=reconstruction,
        error=(reconstruction - photo).abs().mean(0),
        psnr=psnr(photo, reconstruction),
        ssim=ssim(photo, reconstruction),
        mean=mean[0],
        logvar=logvar[0],
    )


@dataclass
class FolderFidelity:
    """Many photos through one spatial VAE: (name, PSNR, SSIM) per photo, in the order given, and
    the moments of their latents' means (latent.spatial.ChannelMoments)."""

    rows: list[tuple[str, float, float]]
    moments: object


def fidelity_over(vae, photos, progress=None) -> FolderFidelity:
    """Each (name, photo (3, H, W)) of `photos` through `vae`; `progress(done)` after each."""
    from ..latent.spatial import ChannelMoments

    moments, rows = ChannelMoments(vae.latent_channels), []
    for name, photo in photos:
        result = reconstruct_photo(vae, photo)
        rows.append((name, result.psnr, result.ssim))
        moments.add(result.mean)
        if progress is not None:
            progress(len(rows))
    return FolderFidelity(rows, moments)

"""The registry of encoder/decoder pairs a VAE is built from.

An architecture is a function `(config, cond_dim) -> (encoder, features, decoder)`: the encoder
maps images (B, C, H, W) to features (B, features); the decoder maps (B, latent_dim + cond_dim)
to likelihood parameters (B, C, H, W). The VAE adds the Gaussian head and the conditioning.

A spatial architecture (registered with `spatial=True`) is fully convolutional: its encoder maps
images to feature maps (B, features, H/f, W/f) and its decoder maps latents (B, latent_dim, h, w)
back to (B, C, h f, w f), as the VAEs of latent diffusion do; the latent then has latent_dim
channels at every position, and the model takes images of any size that f divides.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}
Architecture = Callable[[ModelConfig, int], tuple[nn.Module, int, nn.Module]]
ARCHITECTURES: dict[str, Architecture] = {}
SPATIAL_ARCHITECTURES: set[str] = set()  # those whose latent is a map (C, h, w), not a vector


def register_architecture(name: str, spatial: bool = False) -> Callable[[Architecture], Architecture]:
    """Add an encoder/decoder builder to the registry; a duplicate name is a bug and raises."""

    def wrap(builder: Architecture) -> Architecture:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is already registered")
        ARCHITECTURES[name] = builder
        if spatial:
            SPATIAL_ARCHITECTURES.add(name)
        return builder

    return wrap


def _dense(width: int, sizes: list[int], act: type[nn.Module]) -> tuple[list[nn.Module], int]:
    """Linear + activation layers through `sizes`, starting from `width`; returns them and the last width."""
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(width, size), act()]
        width = size
    return layers, width


@register_architecture("mlp")
def mlp(config: ModelConfig, cond_dim: int) -> tuple[nn.Module, int, nn.Module]:
    """Fully connected: flatten -> hidden_sizes -> features; the decoder mirrors the widths."""
    c, h, w = config.image_shape
    act = ACTIVATIONS[config.activation]
    encoder, features = _dense(c * h * w, config.hidden_sizes, act)
    decoder, width = _dense(config.latent_dim + cond_dim, list(reversed(config.hidden_sizes)), act)
    decoder += [nn.Linear(width, c * h * w), nn.Unflatten(1, (c, h, w))]
    return nn.Sequential(nn.Flatten(), *encoder), features, nn.Sequential(*decoder)


@register_architecture("conv")
def conv(config: ModelConfig, cond_dim: int) -> tuple[nn.Module, int, nn.Module]:
    """Stride-2 4x4 convolutions (each halves the side), then dense layers; transposed on the way back.

    Odd sides (28 -> 14 -> 7 -> 3) are restored exactly with `output_padding`.
    """
    c, h, w = config.image_shape
    act = ACTIVATIONS[config.activation]
    sides = [(h, w)]
    for _ in config.channels:
        sides.append((sides[-1][0] // 2, sides[-1][1] // 2))
    if min(sides[-1]) < 1:
        raise ConfigError(
            f"model.channels has {len(config.channels)} stride-2 layers, too many for {h}x{w} images; "
            f"use at most {int(math.log2(min(h, w)))}."
        )
    encoder: list[nn.Module] = []
    in_ch = c
    for ch in config.channels:
        encoder += [nn.Conv2d(in_ch, ch, 4, stride=2, padding=1), act()]
        in_ch = ch
    flat = in_ch * sides[-1][0] * sides[-1][1]
    dense, features = _dense(flat, config.hidden_sizes, act)
    encoder += [nn.Flatten(), *dense]

    decoder, width = _dense(config.latent_dim + cond_dim, list(reversed(config.hidden_sizes)), act)
    decoder += [nn.Linear(width, flat), act(), nn.Unflatten(1, (in_ch, *sides[-1]))]
    out_channels = list(reversed(config.channels[:-1])) + [c]
    for i, ch in enumerate(out_channels):
        (h_in, w_in), (h_out, w_out) = sides[-1 - i], sides[-2 - i]
        decoder.append(
            nn.ConvTranspose2d(in_ch, ch, 4, stride=2, padding=1, output_padding=(h_out - 2 * h_in, w_out - 2 * w_in))
        )
        if i < len(out_channels) - 1:
            decoder.append(act())
        in_ch = ch
    return nn.Sequential(*encoder), features, nn.Sequential(*decoder)


@register_architecture("spatial", spatial=True)
def spatial(config: ModelConfig, cond_dim: int) -> tuple[nn.Module, int, nn.Module]:
    """Fully convolutional, for a latent map: a 3x3 stem, then per entry of `channels` a stride-2 4x4
    convolution (halving the side) and a 3x3 one; the decoder mirrors it, doubling the side by upsampling.
    The latent has latent_dim channels at 1/f of the image's side, f = 2 ** len(channels)."""
    c, h, w = config.image_shape
    act = ACTIVATIONS[config.activation]
    factor = 2 ** len(config.channels)
    if h % factor or w % factor:
        raise ConfigError(
            f"model.channels has {len(config.channels)} stride-2 layers, so the image's sides must be multiples of "
            f"{factor}, not {h}x{w}; use data.image_size {max(factor, h // factor * factor)} or fewer model.channels."
        )
    widths = [config.channels[0], *config.channels]
    encoder: list[nn.Module] = [nn.Conv2d(c, widths[0], 3, padding=1), act()]
    for in_ch, ch in zip(widths, widths[1:]):
        encoder += [nn.Conv2d(in_ch, ch, 4, stride=2, padding=1), act(), nn.Conv2d(ch, ch, 3, padding=1), act()]
    decoder: list[nn.Module] = [nn.Conv2d(config.latent_dim, widths[-1], 3, padding=1), act()]
    for in_ch, ch in zip(reversed(widths[1:]), reversed(widths[:-1])):
        # nearest-neighbour upsampling, then a convolution: unlike a stride-2 transposed convolution, no
        # checkerboard pattern in the picture (Odena, Dumoulin & Olah, Distill 2016)
        decoder += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, ch, 3, padding=1), act()]
        decoder += [nn.Conv2d(ch, ch, 3, padding=1), act()]
    decoder.append(nn.Conv2d(widths[0], c, 3, padding=1))
    return nn.Sequential(*encoder), widths[-1], nn.Sequential(*decoder)

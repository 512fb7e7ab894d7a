"""A door for models written elsewhere: any encoder and decoder, explored as a VAE of this package.

    from vae_explorer.models import wrap_model
    model = wrap_model(my_vae.encode, my_vae.decode, image_shape=(1, 28, 28), output="logits", module=my_vae)
    evaluate(model, data); traverse(model, z, 8); interpolate(...); pca_2d(encode_means(model, x)[0])

`encode(x)` takes images (B, C, H, W) in [0, 1] and returns (mu, logvar), each (B, D), of a
diagonal Gaussian q(z|x); `decode(z)` returns, per image, what `output` says: "logits" of a
Bernoulli p(x|z) (the usual choice for images in [0, 1]; the mean image is their sigmoid) or
"probabilities" (already through a sigmoid; turned into logits, clamped to 1e-6..1-1e-6, so the
likelihood is the same Bernoulli). Any shape that holds C*H*W numbers per image is accepted
(an MLP's flat (B, 784) too). Nothing is copied or saved: the wrapped model calls the two
functions, so it explores the object as it is now.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .vae import VAE, Posterior

OUTPUTS = ("logits", "probabilities")
_EPS = 1e-6


class WrappedVAE(VAE):
    """A VAE whose encoder and decoder are someone else's functions (see the module's docstring)."""

    def __init__(self, encode: Callable, decode: Callable, config: ModelConfig, output: str, module: nn.Module | None):
        nn.Module.__init__(self)  # not VAE.__init__: there is no architecture of ours to build
        self.config, self.cond_dim, self.output = config, 0, output
        self._encode, self._decode = encode, decode
        if module is not None:
            self.external = module  # its parameters and buffers are this model's: .to(), .eval(), parameters()
        # a zero-size parameter, first in parameters(), tells the device even when `module` has none
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)
        self.register_buffer("log_sigma", torch.zeros(config.image_shape[0]), persistent=False)  # unused: Bernoulli

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        mu, logvar = self._encode(x)
        return Posterior(mu.float(), logvar.float())

    def num_parameters(self) -> int:
        """The wrapped module's parameters, or the weights a graph holds (`weights`, set by whoever knows)."""
        return getattr(self, "weights", None) or super().num_parameters()

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self._decode(z).float().reshape(len(z), *self.config.image_shape)  # (B, C, H, W)
        return torch.logit(out.clamp(_EPS, 1 - _EPS)) if self.output == "probabilities" else out


def wrap_model(encode: Callable, decode: Callable, image_shape, output: str = "logits", module: nn.Module | None = None,
               class_names: list[str] | None = None) -> WrappedVAE:
    """Wrap an encoder and decoder written elsewhere as a VAE the package's latent operations and
    evaluation accept. The latent size is found by encoding one blank image; `module` (the
    nn.Module the functions belong to, if any) moves with the wrapper between devices."""
    if output not in OUTPUTS:
        raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}; say what the decoder returns.")
    shape = [int(v) for v in image_shape]
    if len(shape) != 3:
        raise ConfigError(f"image_shape must be (channels, height, width), got {tuple(image_shape)}.")
    device = next(module.parameters()).device if module is not None and any(True for _ in module.parameters()) else "cpu"
    with torch.no_grad():
        try:
            probe = encode(torch.zeros(1, *shape, device=device))
        except (RuntimeError, ValueError, TypeError) as error:
            raise ConfigError(f"encode(x) failed on a blank batch of shape {(1, *shape)} ({type(error).__name__}); pass the "
                              "image_shape the encoder takes.") from None
        if not isinstance(probe, (tuple, list)) or len(probe) != 2 or probe[0].shape != probe[1].shape or probe[0].dim() != 2:
            raise ConfigError("encode(x) must return (mu, logvar), two tensors of shape (batch, latent_dim).")
        latent_dim = int(probe[0].shape[1])
        try:
            image = decode(torch.zeros(1, latent_dim, device=device))
        except (RuntimeError, ValueError, TypeError) as error:
            raise ConfigError(f"decode(z) failed on z of shape (1, {latent_dim}), the size encode gives "
                              f"({type(error).__name__}); the two must agree on the latent size.") from None
        if image.numel() != shape[0] * shape[1] * shape[2]:
            raise ConfigError(f"decode(z) gave {image.numel()} numbers per image, but image_shape {tuple(shape)} holds "
                              f"{shape[0] * shape[1] * shape[2]}; pass the image_shape the decoder makes.")
    config = ModelConfig(architecture="external", latent_dim=latent_dim, image_shape=shape, likelihood="bernoulli",
                         num_classes=len(class_names) if class_names else None, class_names=list(class_names) if class_names else None)
    return WrappedVAE(encode, decode, config, output, module)

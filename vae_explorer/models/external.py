"""A door for models written elsewhere: any encoder and decoder, explored as a VAE of this package.

    from vae_explorer.models import wrap_model
    model = wrap_model(my_vae.encode, my_vae.decode, image_shape=(1, 28, 28), module=my_vae)   # BCE-trained, [0, 1]
    model = wrap_model(vae.encode, vae.decode, (3, 64, 64), likelihood="gaussian", value_range="-1,1",
                       fit_images=data.test_x, module=vae)                                  # MSE-trained, Tanh output
    evaluate(model, data); traverse(model, z, 8); interpolate(...); pca_2d(encode_means(model, x)[0])

`encode(x)` is called with images in the model's units (the dataset's [0, 1] images mapped by the
declared range, models/observation.py) as (B, C, H, W), or flat (B, C*H*W), or channels-last
(B, H, W, C): whichever the encoder takes, found on a blank image and kept. It may return what real
code returns: (mu, logvar), (mu, logvar, z) or a longer tuple or list (the first two), one tensor
(B, 2D) of both, a dict or ModelOutput with named fields (mu / mean / loc / embedding and logvar /
log_var / log_covariance), or a `torch.distributions.Normal` (its scale becomes the log-variance).
An encoder that flattens its input takes any layout, so a channels-last one is not told apart that
way: pass layout="nhwc". `decode(z)` returns per image the likelihood's parameters (logits or
probabilities of a Bernoulli, the mean of a Gaussian, and for a learned variance the mean and
log-variance): a tensor of
C*H*W numbers (any shape, channels-last found like the encoder's), a tuple, list, dict or
ModelOutput (reconstruction / recon / x_recon / logits / mean / loc, then logvar / log_var), or a
`torch.distributions` Bernoulli or Normal. With `conditional=True` both are called with the class
indices y (B,) as a second argument. Nothing is copied or saved: the wrapped model calls the two
functions, so it explores the object as it is now.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError, VaeExplorerError
from .observation import Observation, fit_sigma
from .vae import VAE, Posterior

LAYOUTS = ("nchw", "flat", "nhwc")  # how the encoder takes images: as (B, C, H, W), (B, C*H*W) or (B, H, W, C)
MAX_LATENT = 512  # the sliders and maps of the app show the dimensions that carry the most KL
MEAN_KEYS = ("mu", "mean", "z_mean", "loc", "embedding", "latent_mean", "posterior_mean")
LOGVAR_KEYS = ("logvar", "log_var", "z_log_var", "log_variance", "log_covariance", "log_sigma2")
IMAGE_KEYS = ("reconstruction", "recon", "x_recon", "recon_x", "x_hat", "logits", "mean", "loc", "probs", "sample", "x")


def _fields(out) -> dict | None:
    """A dict, ModelOutput (a dict, or an object with named fields) or NamedTuple as {name: value}."""
    if isinstance(out, dict):
        return dict(out)
    if hasattr(out, "_asdict"):
        return out._asdict()
    if hasattr(out, "__dict__") and not isinstance(out, (torch.Tensor, nn.Module)) and not callable(out):
        return {k: v for k, v in vars(out).items() if isinstance(v, torch.Tensor)}
    return None


def _pick(fields: dict, keys: tuple[str, ...]):
    lowered = {str(k).lower(): v for k, v in fields.items()}
    return next((lowered[k] for k in keys if isinstance(lowered.get(k), torch.Tensor)), None)


def posterior_of(out) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) from what an encoder returned (see the module's docstring); ConfigError if it is none of those."""
    from torch import distributions

    if isinstance(out, distributions.Independent):
        out = out.base_dist
    if isinstance(out, distributions.Normal):
        return out.loc, 2 * torch.log(out.scale)
    if isinstance(out, torch.Tensor):
        if out.dim() == 2 and out.shape[1] % 2 == 0:  # (B, 2D): the mean, then the log-variance
            return out.chunk(2, dim=1)
    elif isinstance(out, (tuple, list)) and len(out) >= 2 and all(isinstance(v, torch.Tensor) for v in out[:2]):
        return out[0], out[1]
    elif (fields := _fields(out)) is not None:
        mu, logvar = _pick(fields, MEAN_KEYS), _pick(fields, LOGVAR_KEYS)
        if mu is not None and logvar is not None:
            return mu, logvar
        raise ConfigError(
            f"encode(x) returned fields {', '.join(map(str, list(fields)[:6]))}; name the mean mu and the "
            "log-variance logvar (or return them as a tuple (mu, logvar))."
        )
    raise ConfigError(
        f"encode(x) must return (mu, logvar), two tensors of shape (batch, latent_dim), not {_kind(out)}."
    )


def image_params_of(out, observation: Observation) -> torch.Tensor:
    """The decoder's output as one tensor (B, ...): the likelihood's parameters, a mean then a log-variance when learned."""
    from torch import distributions

    if isinstance(out, distributions.Independent):
        out = out.base_dist
    if isinstance(out, distributions.Bernoulli):
        return out.logits if observation.output == "logits" else out.probs
    if isinstance(out, distributions.Normal):
        parts = [out.loc, 2 * torch.log(out.scale)]
    elif isinstance(out, torch.Tensor):
        return out
    elif isinstance(out, (tuple, list)) and out and all(isinstance(v, torch.Tensor) for v in out[:2]):
        parts = list(out[:2])
    elif (fields := _fields(out)) is not None and _pick(fields, IMAGE_KEYS) is not None:
        parts = [_pick(fields, IMAGE_KEYS), _pick(fields, LOGVAR_KEYS)]
    else:
        raise ConfigError(f"decode(z) must return the image's likelihood parameters as a tensor, not {_kind(out)}.")
    if observation.likelihood == "gaussian-learned":
        if len(parts) < 2 or parts[1] is None:
            raise ConfigError(
                "decode(z) gives no variance, so the gaussian-learned likelihood cannot be computed; declare "
                "likelihood gaussian (a fixed sigma) or return (mean, logvar)."
            )
        mean, logvar = parts[:2]
        return torch.cat([mean.flatten(1), logvar.expand_as(mean).flatten(1)], 1)
    return parts[0]


def _kind(out) -> str:
    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    return f"a {type(out).__name__}"


def _said(error: Exception) -> str:
    """The first line of the person's own error message, short."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]


class WrappedVAE(VAE):
    """A VAE whose encoder and decoder are someone else's functions (see the module's docstring)."""

    def __init__(
        self,
        encode: Callable,
        decode: Callable,
        config: ModelConfig,
        observation: Observation,
        module: nn.Module | None,
        layout: str = "nchw",
        decoder_layout: str = "nchw",
    ):
        nn.Module.__init__(self)  # not VAE.__init__: there is no architecture of ours to build
        self.config, self.observation = config, observation
        self.cond_dim = config.num_classes if config.conditional else 0
        self.layout, self.decoder_layout = layout, decoder_layout
        self._encode, self._decode = encode, decode
        if module is not None:
            self.external = module  # its parameters and buffers are this model's: .to(), .eval(), parameters()
        # a zero-size parameter, first in parameters(), tells the device even when `module` has none
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    @property
    def output(self) -> str:
        return self.observation.output

    def _arranged(self, x: torch.Tensor) -> torch.Tensor:
        """Images in the model's units (B, C, H, W) as the encoder takes them."""
        if self.layout == "flat":
            return x.flatten(1)
        if self.layout == "nhwc":
            return x.permute(0, 2, 3, 1).contiguous()
        return x

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        arranged = self._arranged(self.observation.to_model(x))
        out = self._encode(arranged, self._labels(y, len(x))) if self.cond_dim else self._encode(arranged)
        mu, logvar = posterior_of(out)
        return Posterior(mu.float().reshape(len(x), -1), logvar.float().reshape(len(x), -1))

    def _labels(self, y, batch: int) -> torch.Tensor:
        if y is None:
            raise ValueError("this conditional model needs class labels y")
        y = torch.as_tensor(y, device=self.anchor.device).long()
        return y.expand(batch) if y.dim() == 0 else y

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's parameters (B, C, H, W) (B, 2C, H, W with a learned variance), see Observation.params."""
        out = self._decode(z, self._labels(y, len(z))) if self.cond_dim else self._decode(z)
        params = image_params_of(out, self.observation).float()
        c, h, w = self.config.image_shape
        if self.decoder_layout == "nhwc":  # (B, [2,] H, W, C) in memory order
            k = self.observation.outputs_per_pixel
            params = params.reshape(len(z), k, h, w, c).permute(0, 1, 4, 2, 3)
        return self.observation.params(params.reshape(len(z), -1), (c, h, w))

    def mean_image(self, params: torch.Tensor) -> torch.Tensor:
        return self.observation.mean_image(params)

    def log_likelihood(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return -self.observation.nll(x, params)

    def describe_likelihood(self) -> str:
        return self.observation.describe()

    def num_parameters(self) -> int:
        """The wrapped module's parameters, or the weights a graph holds (`weights`, set by whoever knows)."""
        return getattr(self, "weights", None) or super().num_parameters()


def _probe_encoder(encode: Callable, shape: list[int], device, labels, layout: str | None):
    """The layout the encoder takes a blank image in and what it returned (tried in LAYOUTS' order
    unless `layout` is given); ConfigError with the person's own message when none works."""
    c, h, w = shape
    blanks = {"nchw": (1, c, h, w), "flat": (1, c * h * w), "nhwc": (1, h, w, c)}
    first = None
    for name in [layout] if layout else LAYOUTS:
        if name == "nhwc" and (h, w, c) == (c, h, w):
            continue
        try:
            x = torch.zeros(blanks[name], device=device)
            return name, (encode(x, labels) if labels is not None else encode(x))
        except VaeExplorerError:  # said already (a graph's limits, a contract)
            raise
        except Exception as error:  # noqa: BLE001 - the person's code: any error is theirs to read
            first = first or error
    raise ConfigError(
        f"encode(x) raised on a blank batch of shape {blanks[layout or 'nchw']}: {_said(first)}; pass "
        "the image_shape (channels, height, width) of the images it was trained on."
    )


def wrap_model(
    encode: Callable,
    decode: Callable,
    image_shape,
    output: str = "logits",
    module: nn.Module | None = None,
    class_names: list[str] | None = None,
    likelihood: str | None = None,
    sigma: float | None = None,
    value_range: str | None = None,
    mean=None,
    std=None,
    fit_images: torch.Tensor | None = None,
    fit_labels: torch.Tensor | None = None,
    conditional: bool = False,
    layout: str | None = None,
    observation: Observation | None = None,
) -> WrappedVAE:
    """Wrap an encoder and decoder written elsewhere as a VAE the package's latent operations and
    evaluation accept. The latent size and the layout the encoder takes are found on one blank
    image; `module` (the nn.Module the functions belong to, if any) moves with the wrapper between
    devices. `likelihood` (bernoulli, gaussian, gaussian-learned; not given: Bernoulli assumed and
    said), `value_range` ("0,1", "-1,1") or `mean` and `std` per channel say how it was trained; a
    gaussian's `sigma`, when not given, is fitted on `fit_images` (test images in [0, 1]; and
    `fit_labels`, their classes, for a conditional model)."""
    shape = [int(v) for v in image_shape]
    if len(shape) != 3:
        raise ConfigError(f"image_shape must be (channels, height, width), got {tuple(image_shape)}.")
    if observation is None:
        observation = Observation.declare(likelihood, output, sigma, value_range, mean, std, channels=shape[0])
    if observation.likelihood == "gaussian" and observation.sigma is None and fit_images is None:
        raise ConfigError(
            "a gaussian likelihood needs its sigma: pass sigma (in the model's units), or fit_images (test "
            "images in [0, 1]) to fit it by maximum likelihood."
        )
    if layout is not None and layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}.")
    if conditional and not class_names:
        raise ConfigError("a conditional model needs its class_names, one per class in the order of its labels.")
    device = (
        next(module.parameters()).device if module is not None and any(True for _ in module.parameters()) else "cpu"
    )
    labels = torch.zeros(1, dtype=torch.long, device=device) if conditional else None
    with torch.no_grad():
        layout, probe = _probe_encoder(encode, shape, device, labels, layout)
        mu, logvar = posterior_of(probe)
        if mu.shape != logvar.shape or mu.dim() != 2 or len(mu) != 1:
            raise ConfigError(
                f"encode(x) must return (mu, logvar), two tensors of shape (batch, latent_dim); got shapes "
                f"{tuple(mu.shape)} and {tuple(logvar.shape)}."
            )
        latent_dim = int(mu.shape[1])
        if latent_dim > MAX_LATENT:
            raise ConfigError(
                f"the latent size is {latent_dim}; vae-explorer explores codes of up to {MAX_LATENT} dimensions."
            )
        try:
            z = torch.zeros(1, latent_dim, device=device)
            out = decode(z, labels) if conditional else decode(z)
        except VaeExplorerError:
            raise
        except Exception as error:  # noqa: BLE001 - the person's code
            raise ConfigError(
                f"decode(z) raised on z of shape (1, {latent_dim}), the size encode gives: {_said(error)}; the "
                "two must agree on the latent size."
            ) from None
        image = image_params_of(out, observation)
        per_image = shape[0] * shape[1] * shape[2] * observation.outputs_per_pixel
        if observation.outputs_per_pixel == 2 and image.numel() == per_image // 2:
            raise ConfigError(
                "decode(z) gives no variance, so the gaussian-learned likelihood cannot be computed; declare "
                "likelihood gaussian (a fixed sigma) or return (mean, logvar)."
            )
        if image.numel() != per_image:
            raise ConfigError(
                f"decode(z) gave {image.numel()} numbers per image, but image_shape {tuple(shape)} holds "
                f"{per_image // observation.outputs_per_pixel}"
                + (" (times 2: a mean and a log-variance)" if observation.outputs_per_pixel == 2 else "")
                + "; pass the image_shape the decoder makes, and the likelihood it gives."
            )
    decoder_layout = _decoder_layout(tuple(image.shape[1:]), shape, layout, observation)
    config = ModelConfig(
        architecture="external",
        latent_dim=latent_dim,
        image_shape=shape,
        likelihood=observation.likelihood,
        conditional=conditional,
        num_classes=len(class_names) if class_names else None,
        class_names=list(class_names) if class_names else None,
    )
    model = WrappedVAE(encode, decode, config, observation, module, layout, decoder_layout)
    if observation.likelihood == "gaussian" and observation.sigma is None:
        if conditional and fit_labels is None:
            raise ConfigError("fitting sigma of a conditional model needs the images' classes: pass fit_labels.")
        model.observation = observation.with_sigma(fit_sigma(model, fit_images, fit_labels))
    return model


def _decoder_layout(made: tuple, shape: list[int], layout: str, observation: Observation) -> str:
    """nhwc when the decoder's images come channels-last: its output is (H, W, C) (not also (C, H, W)),
    or it is flat and the encoder took channels-last images of several channels."""
    c, h, w = shape
    k = observation.outputs_per_pixel
    if made in ((h, w, c), (h, w, k * c)) and made not in ((c, h, w), (k * c, h, w)):
        return "nhwc"
    if len(made) == 1 and layout == "nhwc" and c > 1:
        return "nhwc"
    return "nchw"

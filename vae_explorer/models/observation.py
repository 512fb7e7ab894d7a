"""How a model brought in from elsewhere sees images: the likelihood p(x|z) it was trained with and
the value range of its inputs and outputs.

A VAE trained with binary cross-entropy on images in [0, 1] is scored here as its own loss scores
it only if it is read as a Bernoulli; one trained with MSE on images normalised to [-1, 1] (a Tanh
at the decoder's end, torchvision's `Normalize(0.5, 0.5)`) is a Gaussian in those units. An
`Observation` says which, and maps between the dataset's images (always [0, 1] here) and the
model's units:

    model units = (x - mean) / std      per channel; [0, 1]: mean 0, std 1; [-1, 1]: mean 0.5, std 0.5
    x           = model units * std + mean, clipped to [0, 1] for pictures

Likelihoods, per image, summed over pixels, in nats, in the model's units (so `evaluate` gives the
number the model's own Gaussian loss gives; a density in [-1, 1] is log 2 per pixel lower than the
same one in [0, 1]):

    bernoulli         -log p = BCE(logits, x)          (probabilities are turned into logits)
    gaussian          -log p = (x - m)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2, one sigma
    gaussian-learned  -log p = (x - m)^2 / (2 s^2) + log s + log(2 pi) / 2, s per pixel from the decoder

A fixed sigma not given is fitted by maximum likelihood on test images: with one z ~ q(z|x) per
image, the reconstruction term is smallest at sigma^2 = the mean over images and pixels of
(x - m(z))^2 (`fit_sigma`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .losses import LOG_2PI

LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned")
OUTPUTS = ("logits", "probabilities")
VALUE_RANGES = {"0,1": ((0.0,), (1.0,)), "-1,1": ((0.5,), (0.5,))}
MIN_SIGMA, MAX_SIGMA = 1e-3, 100.0  # a declared or fitted sigma outside these is not a model's noise
MIN_LOG_VAR = 2 * math.log(MIN_SIGMA)  # a learned variance is floored here, so the NLL cannot run off to -inf
_EPS = 1e-6


@dataclass(frozen=True)
class Observation:
    # "bernoulli" (images in [0, 1], BCE), "gaussian" (MSE, one fixed sigma) or "gaussian-learned"
    # (the decoder also gives a log-variance per pixel).
    likelihood: str = "bernoulli"
    # Bernoulli only: the decoder gives "logits" or "probabilities" (a sigmoid at its end).
    output: str = "logits"
    # Gaussian only: sigma in the model's units; None until fitted (`fit_sigma`).
    sigma: float | None = None
    # Whether sigma was fitted on test images rather than given.
    sigma_fitted: bool = False
    # Per channel (or one value for all): model input = (x - mean) / std for x in [0, 1].
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    # False when nobody declared the likelihood: Bernoulli from logits on [0, 1] was assumed.
    declared: bool = True

    # --- building and checking -----------------------------------------------------------------

    @classmethod
    def declare(
        cls,
        likelihood: str | None = None,
        output: str = "logits",
        sigma: float | None = None,
        value_range: str | None = None,
        mean=None,
        std=None,
        channels: int | None = None,
    ) -> Observation:
        """An observation from what a person said (None: not said); ConfigError names a bad declaration."""
        if likelihood is not None and (not isinstance(likelihood, str) or likelihood not in LIKELIHOODS):
            raise ConfigError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, not {likelihood!r}.")
        if not isinstance(output, str) or output not in OUTPUTS:
            raise ConfigError(f"output must be logits or probabilities, not {output!r}; say what the decoder gives.")
        if value_range is not None and (mean is not None or std is not None):
            raise ConfigError(
                "give the value range either as a range (0,1 or -1,1) or as a mean and std per channel, not both."
            )
        if value_range is not None:
            if not isinstance(value_range, str) or value_range.replace(" ", "") not in VALUE_RANGES:
                raise ConfigError(
                    f"value range must be 0,1 or -1,1, not {value_range!r}; for other normalisations give "
                    "the mean and std per channel."
                )
            mean, std = VALUE_RANGES[value_range.replace(" ", "")]
        if (mean is None) != (std is None):
            raise ConfigError(
                "give both the mean and the std of the normalisation (x - mean) / std, one value or one per channel."
            )
        mean = (0.0,) if mean is None else tuple(float(v) for v in _listed(mean))
        std = (1.0,) if std is None else tuple(float(v) for v in _listed(std))
        for name, values in (("mean", mean), ("std", std)):
            if len(values) not in (1, channels or len(values)) or not all(math.isfinite(v) for v in values):
                raise ConfigError(
                    f"the normalisation's {name} has {len(values)} values; give one, or one per channel "
                    f"({channels}), each a finite number."
                )
        if any(v <= 0 for v in std):
            raise ConfigError(f"the normalisation's std must be positive, got {', '.join(f'{v:g}' for v in std)}.")
        if sigma is not None:
            try:
                sigma = float(sigma)
            except (TypeError, ValueError):
                raise ConfigError(f"sigma must be a number, not {str(sigma)[:40]!r}.") from None
            if not (MIN_SIGMA <= sigma <= MAX_SIGMA):
                raise ConfigError(
                    f"sigma {sigma:g} is not a pixel noise a model can have; give a sigma between {MIN_SIGMA:g} "
                    f"and {MAX_SIGMA:g} in the model's units, or leave it out to fit it on the test images."
                )
        chosen = likelihood or "bernoulli"
        if chosen != "gaussian" and sigma is not None:
            raise ConfigError(
                f"sigma is for the gaussian likelihood (a fixed sigma); the {chosen} likelihood has none, so "
                "leave sigma out or declare likelihood gaussian."
            )
        observation = cls(chosen, output, sigma, False, mean, std, likelihood is not None)
        if chosen == "bernoulli" and not observation.unit_range:
            raise ConfigError(
                "a Bernoulli likelihood needs images in [0, 1]; a model trained on normalised images (a Tanh "
                "output, MSE) is a gaussian: declare likelihood gaussian with its range."
            )
        return observation

    @property
    def unit_range(self) -> bool:
        return all(v == 0.0 for v in self.mean) and all(v == 1.0 for v in self.std)

    @property
    def outputs_per_pixel(self) -> int:
        """Values the decoder gives per pixel: 2 for a mean and a log-variance, else 1."""
        return 2 if self.likelihood == "gaussian-learned" else 1

    def with_sigma(self, sigma: float) -> Observation:
        return dataclasses.replace(self, sigma=float(sigma), sigma_fitted=True)

    # --- the mapping between images and the model's units --------------------------------------

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1, 1, 1)
        return (
            torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(shape),
            torch.tensor(self.std, dtype=like.dtype, device=like.device).view(shape),
        )

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (B, C, H, W) in the model's units."""
        if self.unit_range:
            return x
        mean, std = self._stats(x)
        return (x - mean) / std

    def to_image(self, values: torch.Tensor, clip: bool = True) -> torch.Tensor:
        """Values in the model's units (B, C, H, W) back in [0, 1] units (clipped to [0, 1] for pictures)."""
        if not self.unit_range:
            mean, std = self._stats(values)
            values = values * std + mean
        return values.clamp(0.0, 1.0) if clip else values

    # --- the likelihood --------------------------------------------------------------------------

    def params(self, out: torch.Tensor, image_shape) -> torch.Tensor:
        """The decoder's output (B, outputs_per_pixel * C*H*W numbers, mean first) as likelihood
        parameters: logits (B, C, H, W), means (B, C, H, W), or means and log-variances (B, 2C, H, W)."""
        c, h, w = image_shape
        params = out.float().reshape(len(out), self.outputs_per_pixel * c, h, w)
        if self.likelihood == "bernoulli" and self.output == "probabilities":
            return torch.logit(params.clamp(_EPS, 1 - _EPS))
        return params

    def nll(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per image, (B,), for images x in [0, 1] (B, C, H, W)."""
        if self.likelihood == "bernoulli":
            per_pixel = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        else:
            target = self.to_model(x)
            if self.likelihood == "gaussian":
                if self.sigma is None:
                    raise ConfigError(
                        "this Gaussian likelihood has no sigma yet; give one, or fit it on test images (fit_sigma)."
                    )
                mean, log_var = params, torch.full_like(params, 2 * math.log(self.sigma))
            else:
                mean, log_var = params.chunk(2, dim=1)
                log_var = log_var.clamp(min=MIN_LOG_VAR)
            per_pixel = 0.5 * ((target - mean).pow(2) * torch.exp(-log_var) + log_var + LOG_2PI)
        return per_pixel.flatten(1).sum(1)

    def mean_image(self, params: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z) as an image in [0, 1], (B, C, H, W)."""
        if self.likelihood == "bernoulli":
            return torch.sigmoid(params)
        if self.likelihood == "gaussian-learned":
            params = params.chunk(2, dim=1)[0]
        return self.to_image(params)

    # --- words -----------------------------------------------------------------------------------

    def range_words(self) -> str:
        for name, (mean, std) in VALUE_RANGES.items():
            if set(self.mean) == set(mean) and set(self.std) == set(std):
                return "[" + name.replace(",", ", ") + "]"
        return f"normalised by mean {_numbers(self.mean)} and std {_numbers(self.std)}"

    def inputs_words(self) -> str:
        """ "in [-1, 1]" or "normalised by mean ... and std ..." """
        words = self.range_words()
        return f"in {words}" if words.startswith("[") else words

    def describe(self) -> str:
        """One sentence for a page: "scored as a Gaussian, sigma 0.1 per pixel, inputs in [-1, 1]"."""
        if self.likelihood == "bernoulli":
            said = f"scored as a Bernoulli per pixel (the decoder gives {self.output}), inputs {self.inputs_words()}"
        elif self.likelihood == "gaussian":
            fitted = " (fitted on the test images)" if self.sigma_fitted else ""
            said = f"scored as a Gaussian, sigma {self.sigma:.3g} per pixel{fitted}, inputs {self.inputs_words()}"
        else:
            said = f"scored as a Gaussian with the decoder's own variance per pixel, inputs {self.inputs_words()}"
        if not self.declared:
            said += " (assumed: no likelihood was declared)"
        return said

    # --- storage -----------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "likelihood": self.likelihood,
            "output": self.output,
            "sigma": self.sigma,
            "sigma_fitted": self.sigma_fitted,
            "mean": list(self.mean),
            "std": list(self.std),
            "declared": self.declared,
        }

    @classmethod
    def from_dict(cls, record: dict, channels: int) -> Observation:
        """From an import's onnx.json (older ones hold only "output"); ConfigError when a value is not one we write."""
        if not isinstance(record, dict):
            raise ConfigError("the likelihood record is not an object")
        declared = record.get("declared", "likelihood" in record)
        if not isinstance(declared, bool) or not isinstance(record.get("sigma_fitted", False), bool):
            raise ConfigError("the likelihood record's declared and sigma_fitted must be true or false")
        observation = cls.declare(
            record.get("likelihood", "bernoulli"),
            record.get("output", "logits"),
            record.get("sigma"),
            mean=record.get("mean", [0.0]),
            std=record.get("std", [1.0]),
            channels=channels,
        )
        if observation.likelihood == "gaussian" and observation.sigma is None:
            raise ConfigError("the Gaussian likelihood's sigma is missing")
        return dataclasses.replace(observation, sigma_fitted=bool(record.get("sigma_fitted", False)), declared=declared)


def _listed(values) -> list:
    if isinstance(values, (int, float)):
        return [values]
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    try:
        return [float(v) for v in values][:8]  # more than 8 is never a channel count: refused by the length check
    except (TypeError, ValueError):
        raise ConfigError(f"the normalisation's mean and std must be numbers, got {str(values)[:40]!r}.") from None


def _numbers(values) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")" if len(values) > 1 else f"{values[0]:.3g}"


@torch.no_grad()
def fit_sigma(model, x: torch.Tensor, y: torch.Tensor | None = None, seed: int = 0, batch_size: int = 500) -> float:
    """The maximum-likelihood sigma of a fixed-sigma Gaussian p(x|z) on images x in [0, 1]: with one
    z ~ q(z|x) per image (a CPU generator seeded with `seed`), sqrt of the mean over images and pixels
    of (x - m(z))^2 in the model's units."""
    observation: Observation = model.observation
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = None if y is None or not model.cond_dim else y[start : start + batch_size].to(device)
        z = model.encode(xb, yb).sample(generator)
        mean = model.decode(z, yb)
        total += float((observation.to_model(xb) - mean).double().pow(2).sum())
        count += mean.numel()
    sigma = math.sqrt(total / max(count, 1))
    if not (MIN_SIGMA <= sigma <= MAX_SIGMA):
        raise ConfigError(
            f"the fitted sigma is {sigma:.3g}, not a pixel noise a model can have; declare the likelihood "
            "and range the model was trained with, or give sigma."
        )
    return sigma

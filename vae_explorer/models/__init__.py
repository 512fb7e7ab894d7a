"""Models: the VAE, its registry of encoder/decoder architectures, the loss as pure functions, and a
wrapper for models written elsewhere."""

from .architectures import ACTIVATIONS, ARCHITECTURES, SPATIAL_ARCHITECTURES, register_architecture
from .external import WrappedVAE, wrap_model
from .losses import LossParts, gaussian_kl, kl_to_prior, log_normal, reconstruction_nll, vae_loss
from .observation import Observation, fit_sigma
from .vae import VAE, Posterior, build_model, fit_to_data

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "SPATIAL_ARCHITECTURES",
    "LossParts",
    "Posterior",
    "VAE",
    "build_model",
    "fit_to_data",
    "gaussian_kl",
    "kl_to_prior",
    "log_normal",
    "Observation",
    "fit_sigma",
    "reconstruction_nll",
    "register_architecture",
    "vae_loss",
    "WrappedVAE",
    "wrap_model",
]

"""A spatial VAE from a folder, whichever kind it is: a diffusers AutoencoderKL (config.json whose
_class_name says so, beside diffusion_pytorch_model.safetensors) or a checkpoint of this package
whose model has a spatial latent (architecture "spatial": config.json with format_version, beside
model.safetensors). Both come back with one face, models.diffusers_vae.SpatialVAE."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..models.diffusers_vae import MAX_CONFIG_BYTES, SpatialVAE, checkpoint_spatial_vae, load_spatial_vae
from .folder import CONFIG_FILE, load_checkpoint, locate


def is_checkpoint_folder(folder: str | Path) -> bool:
    """Whether the folder's config.json is one this package wrote (it has a format_version)."""
    config = Path(folder).expanduser() / CONFIG_FILE
    if not config.is_file() or config.stat().st_size > MAX_CONFIG_BYTES * 16:
        return False
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    return isinstance(raw, dict) and "format_version" in raw and "_class_name" not in raw


def open_spatial_vae(folder: str | Path, device: str | torch.device = "cpu", tiled: bool = False) -> SpatialVAE:
    """The spatial VAE in `folder` (see the module's docstring). `tiled` is diffusers' tiling; a model of
    this package is small and runs whole at every size this package takes, so it is not tiled."""
    folder = Path(folder).expanduser()
    if not folder.is_dir() and len(folder.parts) == 1:  # the name of a shipped checkpoint or of a run
        try:
            folder = locate(folder)
        except CheckpointError:
            pass  # said below, as a folder that is not there
    if not is_checkpoint_folder(folder):
        return load_spatial_vae(folder, device, tiled)
    checkpoint = load_checkpoint(folder, device)
    if not getattr(checkpoint.model, "spatial", False):
        raise CheckpointError(
            f"{folder.name} is a vae-explorer model with a latent vector, not a latent map; pass a spatial one "
            "(model.architecture spatial, such as the shipped photos-spatial) or a diffusers VAE's folder."
        )
    return checkpoint_spatial_vae(checkpoint.model, folder.name)

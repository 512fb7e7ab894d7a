"""The VAEs of latent diffusion: a diffusers `AutoencoderKL` (Stable Diffusion's, SDXL's, SD3's,
FLUX's) opened from a local folder as `save_pretrained` writes it, config.json beside
diffusion_pytorch_model.safetensors. Nothing is downloaded and nothing is unpickled.

Its latent is spatial: C channels (4 for SD 1.x, 2.x and SDXL; 16 for SD3 and FLUX) at 1/f of the
image's side (f = 8 for the usual four blocks). Images go in and come out in [0, 1] here (the
model's own range is [-1, 1]); `encode` gives the mean and log-variance of the diagonal Gaussian
q(z|x) at every latent position, `decode` the mean image. A diffusion model works on
(z - shift_factor) * scaling_factor, the factor chosen so that the latents have about unit
variance (Rombach et al. 2022, arXiv:2112.10752, section 3 and appendix G).

    vae = load_spatial_vae("~/models/sd-vae-ft-mse")
    mean, logvar = vae.encode(x)   # x (B, 3, H, W) in [0, 1], H and W multiples of vae.factor
    image = vae.decode(mean)       # (B, 3, H, W) in [0, 1]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
PICKLED_WEIGHTS = "diffusion_pytorch_model.bin"
CLASS_NAME = "AutoencoderKL"
MAX_CONFIG_BYTES = 64 * 1024  # a VAE's config is about 1 KB
MAX_PARAMETERS = 150_000_000  # Stable Diffusion's and FLUX's VAEs have about 84 million


@dataclass
class SpatialVAE:
    """A diffusers AutoencoderKL in eval mode, its gradients off, with what the pages need to know.
    `CheckpointSpatialVAE` gives a spatial-latent VAE of this package's own the same face."""

    module: torch.nn.Module
    name: str
    latent_channels: int
    factor: int  # image pixels per latent position, along each side
    scaling_factor: float
    shift_factor: float
    num_parameters: int
    tiled: bool = False  # diffusers' tiling: tiles of its sample_size, a quarter overlapping, blended linearly
    kind: str = "an AutoencoderKL"  # what it is, in a sentence: "{name}: {kind} of N parameters"
    tileable = True  # diffusers' tiling applies (a class attribute: CheckpointSpatialVAE's is False)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, H, W) in [0, 1] -> the mean and log-variance of q(z|x), each (B, C, H/f, W/f)."""
        distribution = self.module.encode(x * 2 - 1).latent_dist
        return distribution.mean, distribution.logvar

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, h, w) -> images (B, 3, h f, w f) in [0, 1]."""
        return ((self.module.decode(z).sample + 1) / 2).clamp(0, 1)

    def to_diffusion(self, z: torch.Tensor) -> torch.Tensor:
        """The latent as a diffusion model sees it: (z - shift_factor) * scaling_factor."""
        return (z - self.shift_factor) * self.scaling_factor

    def from_diffusion(self, latents: torch.Tensor) -> torch.Tensor:
        return latents / self.scaling_factor + self.shift_factor


@dataclass
class CheckpointSpatialVAE(SpatialVAE):
    """A VAE of this package with a spatial latent (architecture "spatial", models/vae.py) as a SpatialVAE:
    its module is the VAE, trained on images in [0, 1] already; its prior is N(0, I) at every position,
    so its latents need no scaling (scaling_factor 1, shift 0). Small, it runs whole: no tiling."""

    tileable = False

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.module.encode(x)
        return q.mean, q.logvar

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.module.generate(z)


def checkpoint_spatial_vae(model: torch.nn.Module, name: str) -> CheckpointSpatialVAE:
    """A spatial-latent VAE of this package (model.spatial) with the face of a diffusers one."""
    return CheckpointSpatialVAE(
        module=model.eval().requires_grad_(False),
        name=name,
        latent_channels=model.latent_dim,
        factor=model.factor,
        scaling_factor=1.0,
        shift_factor=0.0,
        num_parameters=model.num_parameters(),
        kind="a spatial-latent VAE of vae-explorer",
    )


def read_spatial_config(folder: str | Path) -> dict:
    """A diffusers VAE folder's config.json, checked to describe an AutoencoderKL whose weights are
    there as safetensors; each problem is one sentence naming the folder and what to pass instead."""
    folder = Path(folder).expanduser()
    name = folder.name or str(folder)
    if not folder.is_dir():
        raise CheckpointError(
            f"{name} is not a folder; pass the folder that holds a diffusers VAE's {CONFIG_FILE} and {WEIGHTS_FILE}."
        )
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        if (folder / "vae" / CONFIG_FILE).is_file():
            raise CheckpointError(
                f"{name} is a diffusion pipeline's folder; pass its vae/ folder, which holds the VAE."
            )
        raise CheckpointError(
            f"{name} has no {CONFIG_FILE}, so it is not a diffusers VAE; pass the folder that save_pretrained "
            f"wrote ({CONFIG_FILE} beside {WEIGHTS_FILE})."
        )
    if config_path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{name}/{CONFIG_FILE} is larger than any VAE's config; pass a diffusers VAE folder.")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{name}/{CONFIG_FILE} is not valid JSON; restore it from the model's source.") from None
    if not isinstance(config, dict):
        raise CheckpointError(
            f"{name}/{CONFIG_FILE} is not a config (a JSON object); restore it from the model's source."
        )
    kind = config.get("_class_name")
    if kind != CLASS_NAME:
        described = f"a {str(kind)[:60]}" if isinstance(kind, str) else "no model class"
        raise CheckpointError(
            f"{name}/{CONFIG_FILE} describes {described}, not an {CLASS_NAME}; vae-explorer opens the VAEs of latent "
            "diffusion (Stable Diffusion's, SDXL's, SD3's, FLUX's vae/ folder)."
        )
    if not (folder / WEIGHTS_FILE).is_file() and weights_variant(folder) is None:
        if (folder / PICKLED_WEIGHTS).is_file():
            raise CheckpointError(
                f"{name} holds its weights only as {PICKLED_WEIGHTS}, a pickle, which vae-explorer never opens; "
                "save the model again with save_pretrained(folder, safe_serialization=True)."
            )
        raise CheckpointError(f"{name} has no {WEIGHTS_FILE}; copy the VAE's weights file next to its {CONFIG_FILE}.")
    return config


def weights_variant(folder: Path) -> str | None:
    """The variant of the folder's safetensors weights when only a variant is there (pipelines often
    ship diffusion_pytorch_model.fp16.safetensors alone): "fp16" first, else the only one; None
    when the plain file is there or no variant is."""
    if (folder / WEIGHTS_FILE).is_file():
        return None
    variants = sorted(p.name.split(".")[1] for p in folder.glob("diffusion_pytorch_model.*.safetensors"))
    return "fp16" if "fp16" in variants else (variants[0] if len(variants) == 1 else None)


def _autoencoder_class():
    try:
        from diffusers import AutoencoderKL
    except ImportError:
        raise CheckpointError(
            "opening a diffusers VAE needs the diffusers package; run `pip install diffusers` "
            "(or install vae-explorer[diffusion])."
        ) from None
    return AutoencoderKL


def _count_parameters(autoencoder, config: dict, name: str) -> int:
    """The parameters the config describes, counted on torch's meta device (nothing is allocated)."""
    try:
        with torch.device("meta"):
            model = autoencoder.from_config(config)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, ZeroDivisionError, RuntimeError) as error:
        words = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{name}/{CONFIG_FILE} is not a config diffusers can build an {CLASS_NAME} from ({words}); restore it "
            "from the model's source."
        ) from None
    return sum(p.numel() for p in model.parameters())


def load_spatial_vae(folder: str | Path, device: str | torch.device = "cpu", tiled: bool = False) -> SpatialVAE:
    """Open a diffusers AutoencoderKL from a local folder (no download, safetensors only), sized
    from its config before any weight is read. `tiled`: encode and decode photos larger than the
    model's sample_size in overlapping tiles (diffusers' enable_tiling), so memory holds one tile's
    activations, not the whole photo's; the seams are blended over a quarter of a tile."""
    folder = Path(folder).expanduser()
    config = read_spatial_config(folder)
    name = folder.name or str(folder)
    autoencoder = _autoencoder_class()
    count = _count_parameters(autoencoder, config, name)
    if count > MAX_PARAMETERS:
        raise CheckpointError(
            f"{name}/{CONFIG_FILE} describes a VAE of {count:,} parameters, more than the {MAX_PARAMETERS:,} "
            "vae-explorer opens; pass the VAE of a latent diffusion model (about 84 million)."
        )
    try:
        module = autoencoder.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True, variant=weights_variant(folder)
        ).float()  # half-precision variants are read into float32: a CPU computes in it
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        words = str(error).splitlines()[0][:160].replace(str(folder), name)
        raise CheckpointError(
            f"{name}/{WEIGHTS_FILE} does not fit its {CONFIG_FILE} or is damaged ({words}); copy both files again "
            "from the model's source."
        ) from None
    module = module.to(device).eval().requires_grad_(False)
    if tiled:
        module.enable_tiling()
    blocks = len(module.config.block_out_channels)
    shift = module.config.shift_factor
    return SpatialVAE(
        module=module,
        name=name,
        latent_channels=int(module.config.latent_channels),
        factor=2 ** (blocks - 1),
        scaling_factor=float(module.config.scaling_factor),
        shift_factor=float(shift) if shift is not None else 0.0,
        num_parameters=count,
        tiled=tiled,
    )

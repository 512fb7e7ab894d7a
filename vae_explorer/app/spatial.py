"""The Latent diffusion page's models and work: the spatial VAEs this server offers (the spatial-latent
checkpoints of the catalogue, shipped or trained here, and the diffusers VAE folders under the folder
given with `vae-explorer app --diffusers-root DIR`, kept in $VAE_EXPLORER_DIFFUSERS_ROOT; a visitor never
names a path), each opened once for every session, and a photo's reconstruction, kept by the photo's
digest."""

from __future__ import annotations

import hashlib
import os
import statistics
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

DIFFUSERS_ROOT_VARIABLE = "VAE_EXPLORER_DIFFUSERS_ROOT"
# A photo through Stable Diffusion's VAE at 512 x 512 peaks at about 2.2 GB on the CPU (docs/performance.md):
# the page takes photos up to that size, and runs the VAE for one visitor at a time (the others wait), so a
# class cannot multiply that memory by the number of students.
PAGE_MAX_PIXELS = 512 * 512
# Tiled (diffusers' tiling, tiles of the VAE's sample_size, 512 for Stable Diffusion's), the memory is one
# tile's whatever the photo's size: 768 x 768 tiled peaked at 2.3 GB, about 512 x 512 untiled's.
PAGE_TILED_MAX_PIXELS = 1024 * 1024
_running = threading.Lock()


class Offered(NamedTuple):
    """A VAE as the page's cached work is keyed: its folder, the stamp of its files (a VAE saved again is
    another) and whether it encodes and decodes in tiles (diffusers' tiling: a second instance)."""

    folder: str
    saved: float
    tiled: bool = False


def diffusers_root() -> Path | None:
    value = os.environ.get(DIFFUSERS_ROOT_VARIABLE)
    return Path(value).expanduser().resolve() if value else None


def offered_vaes() -> dict[str, str]:
    """label -> folder of each spatial VAE offered: the catalogue's spatial-latent checkpoints (shipped
    first), then each diffusers VAE under the root (a folder holding config.json, or a pipeline's vae/
    folder, named after the pipeline), never one a link leads out of the root to."""
    from .catalog import available_models

    found = {ref.label: ref.path for ref in available_models("spatial")}
    root = diffusers_root()
    if root is None or not root.is_dir():
        return found
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for candidate in (folder, folder / "vae"):
            resolved = candidate.resolve()
            if (candidate / "config.json").is_file() and resolved.is_relative_to(root):
                found.setdefault(f"{folder.name}  (diffusers)", str(resolved))
    return found


def _stamp(folder: str) -> float:
    return max(
        (Path(folder) / name).stat().st_mtime
        for name in ("config.json", "diffusion_pytorch_model.safetensors", "model.safetensors")
        if (Path(folder) / name).exists()
    )


@st.cache_resource(max_entries=4, show_spinner="Opening the VAE…")
def _load(which: Offered):
    from ..checkpoints.spatial import is_checkpoint_folder, open_spatial_vae
    from ..models.diffusers_vae import checkpoint_spatial_vae
    from . import catalog

    if is_checkpoint_folder(which.folder):  # the catalogue's own object, shared with the browser decoder's export
        checkpoint = catalog.load(which.folder)
        if getattr(checkpoint.model, "spatial", False):
            return checkpoint_spatial_vae(checkpoint.model, checkpoint.name)
    return open_spatial_vae(which.folder, tiled=which.tiled)


def chosen(folder: str, tiled: bool = False) -> Offered:
    """The VAE in `folder` as it is now (tiled or not) for the page's cached work."""
    return Offered(folder, _stamp(folder), tiled)


def load(which: Offered | str):
    """The VAE, one object for every session (read-only: eval mode, no gradients)."""
    return _load(which if isinstance(which, Offered) else chosen(which))


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@st.cache_data(max_entries=16, show_spinner="The photo through the VAE…")
def reconstruction(which: Offered, photo_digest: str, _photo: torch.Tensor) -> dict:
    """A photo through the VAE (evaluation.fidelity.reconstruct_photo) as arrays, kept per photo."""
    from ..evaluation.fidelity import reconstruct_photo
    from ..latent.spatial import (
        channel_statistics,
        neighbour_correlation,
        rgb_preview,
        rgb_preview_fit,
        unit_variance_scale,
    )

    with _running:
        result = reconstruct_photo(_load(which), _photo)
    mean, std = channel_statistics(result.mean[None])
    preview = rgb_preview(result.mean, rgb_preview_fit(result.mean[None], _photo[None]))
    return {
        "photo": _photo.numpy(),
        "reconstruction": result.reconstruction.numpy(),
        "error": result.error.numpy(),
        "psnr": result.psnr,
        "ssim": result.ssim,
        "mean": result.mean.numpy(),
        "channel_mean": mean.numpy(),
        "channel_std": std.numpy(),
        "unit_scale": unit_variance_scale(result.mean[None]),
        "preview": preview.numpy(),
        "neighbours": neighbour_correlation(result.mean),
    }


@st.cache_data(max_entries=64, show_spinner="Decoding on the server…")
def decode_noisy(which: Offered, photo_digest: str, _mean: np.ndarray, sigma: float) -> np.ndarray:
    """The photo's latent mean plus sigma times a fixed draw of N(0, I) noise, decoded (3, H, W)."""
    vae = _load(which)
    z = torch.from_numpy(_mean)
    noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
    with _running:
        return vae.decode((z + sigma * noise)[None])[0].numpy()


@st.cache_data(max_entries=64, show_spinner="Decoding on the server…")
def decode_between(
    which: Offered, digests: tuple[str, str], _a: np.ndarray, _b: np.ndarray, t: float, method: str
) -> np.ndarray:
    """The point t of the way from one photo's latent mean to another's (latent.spatial.interpolate_latents),
    decoded (3, H, W)."""
    from ..latent.spatial import interpolate_latents

    z = interpolate_latents(torch.from_numpy(_a), torch.from_numpy(_b), t, method)
    with _running:
        return _load(which).decode(z[None])[0].numpy()


@st.cache_data(max_entries=64, show_spinner="Decoding on the server…")
def decode_pasted(
    which: Offered, digests: tuple[str, str], _target: np.ndarray, _source: np.ndarray, box: tuple
) -> np.ndarray:
    """The first photo's latent mean with the box (top, left, height, width) of latent positions from the
    second's (latent.spatial.paste_patch), decoded (3, H, W)."""
    from ..latent.spatial import paste_patch

    z = paste_patch(torch.from_numpy(_target), torch.from_numpy(_source), *box)
    with _running:
        return _load(which).decode(z[None])[0].numpy()


@st.cache_data(max_entries=8, show_spinner="Decoding on the server…")
def decode_prior(which: Offered, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """A draw z ~ N(0, I) of the latent's shape, decoded (3, H, W)."""
    z = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    with _running:
        return _load(which).decode(z[None])[0].numpy()


@st.cache_data(max_entries=64, show_spinner="Decoding the painting on the server…")
def decode_painted(
    which: Offered, photo_digest: str, _mean: np.ndarray, dabs: tuple, _source: np.ndarray | None = None
) -> np.ndarray:
    """The photo's latent mean with the brush's dabs painted on (latent.spatial.paint_latent; `_source`, the
    second photo's latent, is in `photo_digest` when given), decoded (3, H, W)."""
    from ..latent.spatial import paint_latent

    z = paint_latent(torch.from_numpy(_mean), dabs, None if _source is None else torch.from_numpy(_source))
    with _running:
        return _load(which).decode(z[None])[0].numpy()


@st.cache_data(max_entries=8, show_spinner=False)
def reach(which: Offered) -> int:
    """Latent positions a change reaches in this VAE's pictures (latent.spatial.receptive_radius), for the
    browser's windowed decoding; 0 for a VAE the browser does not decode (a diffusers one)."""
    from ..latent.spatial import receptive_radius

    vae = _load(which)
    if vae.tileable:  # a diffusers VAE: painted on the server, no window to size
        return 0
    with _running:
        return receptive_radius(vae.module.decode, vae.latent_channels, vae.factor)


def painter_decoder(key: str, folder: str, vae) -> tuple[dict | None, str]:
    """The decoder spec for the painter `key` (None: the server decodes each stroke) and the one line that
    says where the painting is decoded."""
    from . import catalog
    from .live import browser_decoding

    if vae.tileable:  # a diffusers VAE (a checkpoint of ours is small and exports to ONNX)
        return None, (
            f"Decoded on the server when a stroke ends: this VAE's decoder ({vae.num_parameters:,} parameters with its "
            "encoder) is too large to run in a browser."
        )
    live, why = browser_decoding(key, catalog.load(folder))
    return live, why or "Decoded in your browser as you paint: only the part of the picture a change can reach."


def tiles(vae) -> int:
    """The side in pixels of the tiles a VAE can encode and decode in (diffusers' sample_size), 0 for one
    that is not tiled (a VAE of this package: small, it runs whole)."""
    if not vae.tileable:
        return 0
    side = vae.module.config.sample_size
    return int(side[0] if isinstance(side, (list, tuple)) else side)


def describe(label: str, vae) -> str:
    """One line on the VAE: what it is, its latent, its scaling."""
    from . import safety

    name = safety.plain(label.split("  ")[0])
    if vae.tileable:
        scaling = f"its config's scaling factor {vae.scaling_factor:g}"
    else:
        scaling = "trained as a plain VAE (N(0, I) at every position), so its latents need no scaling factor"
    return (
        f"{name}: {vae.kind} of {vae.num_parameters:,} parameters; {vae.latent_channels} latent channels at "
        f"1/{vae.factor} of the image's side; {scaling}."
    )


def picture(chw: np.ndarray) -> np.ndarray:
    """A decoded image (3, H, W) in [0, 1] as the uint8 (H, W, 3) st.image shows."""
    from ..images import to_uint8

    return to_uint8(torch.from_numpy(chw)[None])[0]


def error_picture(error: np.ndarray) -> np.ndarray:
    """The error per pixel (H, W) times 4 in grey (white is an error of 1/4), uint8 (H, W, 3)."""
    return picture(np.clip(error * 4, 0, 1)[None].repeat(3, 0))


def channels_png(mean: np.ndarray) -> bytes:
    """Each channel of a latent (C, h, w) as a grey picture on one scale, four to a row, as a PNG."""
    from ..images import png_bytes
    from ..latent.spatial import channel_pictures

    return png_bytes(channel_pictures(torch.from_numpy(mean)), nrow=min(len(mean), 4), min_cell=160)


def changed_outside(before: np.ndarray, after: np.ndarray, box: tuple, factor: int) -> float:
    """latent.spatial.changed_outside on two decoded images (3, H, W)."""
    from ..latent.spatial import changed_outside as share

    return share(torch.from_numpy(before), torch.from_numpy(after), box, factor)


MAX_COMPARED = 12  # photos put through two VAEs at once on the page: seconds each for a full-size VAE


@st.cache_data(max_entries=8, show_spinner="The photos through the VAE…")
def fidelity_of(which: Offered, digests: tuple, _photos: list) -> list[dict]:
    """Each photo (3, H, W) through the VAE (evaluation.fidelity.reconstruct_photo): its PSNR, SSIM, the
    seconds it took (measured when first computed, the VAE alone on the server's cores) and the
    reconstruction, kept by the photos' digests."""
    import time

    from ..evaluation.fidelity import reconstruct_photo

    vae, rows = _load(which), []
    for photo in _photos:
        with _running:
            started = time.perf_counter()
            result = reconstruct_photo(vae, photo)
            seconds = time.perf_counter() - started
        rows.append(
            {
                "psnr": result.psnr,
                "ssim": result.ssim,
                "seconds": seconds,
                "reconstruction": result.reconstruction.numpy(),
            }
        )
    return rows


def read_photos(uploads, multiple: int) -> tuple[list[str], list, list[str], list[str]]:
    """The uploaded photos (at most MAX_COMPARED) as (3, H, W) cropped to multiples of `multiple`: their
    names, the photos, their digests, and one line per file left out (unreadable, too large, or over the
    count)."""
    from ..data.uploads import ImageError, photo_image
    from . import safety

    names, photos, digests, skipped = [], [], [], []
    for upload in uploads:
        if len(photos) == MAX_COMPARED:
            skipped.append(f"{safety.plain(upload.name)}: more than the {MAX_COMPARED} photos compared at once")
            continue
        data = upload.getvalue()
        try:
            photos.append(photo_image(data, multiple, upload.name, max_pixels=PAGE_MAX_PIXELS))
        except ImageError as error:
            skipped.append(safety.say(error).split(";")[0])
            continue
        names.append(upload.name)
        digests.append(f"{digest(data)}-{multiple}")
    return names, photos, digests, skipped


def comparison(first: str, second: str, uploads) -> dict:
    """Photos through two offered VAEs (folders `first` and `second`), each cropped to whole latent
    positions of both: per photo both PSNRs and SSIMs, the seconds each VAE took, and the pictures of the
    photos furthest from their reconstruction (by the lower of the two PSNRs), worst first."""
    import math

    vaes = [load(first), load(second)]
    multiple = math.lcm(vaes[0].factor, vaes[1].factor)
    names, photos, digests, skipped = read_photos(uploads, multiple)
    results = [fidelity_of(chosen(folder), tuple(digests), photos) for folder in (first, second)]
    rows = [
        {"name": name, "psnr": (a["psnr"], b["psnr"]), "ssim": (a["ssim"], b["ssim"])}
        for name, a, b in zip(names, *results)
    ]
    worst = sorted(range(len(rows)), key=lambda i: min(rows[i]["psnr"]))[:3]
    gallery = [
        (
            names[i],
            picture(photos[i].numpy()),
            picture(results[0][i]["reconstruction"]),
            picture(results[1][i]["reconstruction"]),
        )
        for i in worst
    ]
    seconds = [sum(r["seconds"] for r in result) / max(len(result), 1) for result in results]
    medians = [statistics.median(r["psnr"] for r in result) if result else float("nan") for result in results]
    pixels = sum(p.shape[1] * p.shape[2] for p in photos) / max(len(photos), 1)
    return {
        "rows": rows,
        "gallery": gallery,
        "seconds": seconds,
        "median_psnr": medians,
        "pixels": pixels,
        "skipped": skipped,
        "multiple": multiple,
    }


def painted_latent(mean: np.ndarray, dabs: list, source: np.ndarray | None = None) -> np.ndarray:
    """The latent mean (C, h, w) with the brush's dabs on it (latent.spatial.paint_latent), as numpy."""
    from ..latent.spatial import paint_latent

    return paint_latent(torch.from_numpy(mean), dabs, None if source is None else torch.from_numpy(source)).numpy()


@st.cache_data(max_entries=16, show_spinner="Decoding the link's latent…")
def decode_linked(which: Offered, link_digest: str, _z: np.ndarray) -> np.ndarray:
    """A latent a link carries (C, h, w), decoded (3, H, W)."""
    with _running:
        return _load(which).decode(torch.from_numpy(_z)[None])[0].numpy()

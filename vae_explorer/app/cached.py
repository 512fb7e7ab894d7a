"""The tensor work pages ask of a model, made once and kept for every session where it repeats.

Each public function takes the checkpoint itself. Behind it a `st.cache_data` function is keyed by
the checkpoint's path and save stamp (catalog.stamp) plus the parameters, never by a model object,
so a checkpoint saved again is computed again and pages never see a cache key.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from ..checkpoints import Checkpoint
from ..latent import encode_means
from . import catalog

GRID_GAP = 2  # pixels between the cells of Generate's grids, at the PNG's own size


def _key(checkpoint: Checkpoint) -> tuple[str, float]:
    """The part of every cache key that names the checkpoint as saved now."""
    return str(checkpoint.path), catalog.stamp(checkpoint.path)


def encoded_test_set(checkpoint: Checkpoint, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior means, log-variances and labels of the first `limit` test images."""
    return _encoded_test_set(*_key(checkpoint), limit)


@st.cache_data(max_entries=16, show_spinner="Encoding the test set…")
def _encoded_test_set(path: str, saved: float, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    checkpoint = catalog._load(path, saved)
    data = catalog.dataset_of(checkpoint)
    if data is None:
        return np.zeros((0, checkpoint.model.latent_dim)), np.zeros((0, checkpoint.model.latent_dim)), np.zeros(0, int)
    x, y = data.test_x[:limit], data.test_y[:limit]
    mu, logvar = encode_means(checkpoint.model, x, y if checkpoint.model.cond_dim else None)
    return mu.numpy(), logvar.numpy(), y.numpy()


@st.cache_data(max_entries=4, show_spinner="Encoding every image…")
def _encoded_all(path: str, saved: float) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and labels of every image: the test images first, then the training images."""
    from ..latent.maps import kept_codes

    checkpoint = catalog._load(path, saved)
    return kept_codes(checkpoint.model, catalog.dataset_of(checkpoint), "all", path)


def map_codes(checkpoint: Checkpoint, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the Latent map draws for `limit` points (past the test set: every image, test first):
    the posterior means, labels, their PCA coordinates, mean and directions. Cached: the PCA of
    70,000 codes takes ~40 ms, and the page reruns on every click."""
    return _map_codes(*_key(checkpoint), limit)


@st.cache_data(max_entries=8, show_spinner=False)
def _map_codes(path: str, saved: float, limit: int):
    from ..latent import pca_2d

    checkpoint = catalog._load(path, saved)
    if limit > len(catalog.dataset_of(checkpoint).test_x):
        mu, labels = _encoded_all(path, saved)
    else:
        mu, _, labels = _encoded_test_set(path, saved, limit)
    coords, mean, directions = pca_2d(mu)
    return mu, labels, coords, mean, directions


def slow_map(checkpoint: Checkpoint, method: str, parameter: float, split: str, mu: np.ndarray):
    """A t-SNE or UMAP map of the codes `mu`: (coords, None) when kept on disk, else (None, task)
    with the computation asked of this session's MapQueue (one at a time, the newest waiting)."""
    from ..latent import compute_map, kept_map
    from ..runs.map_queue import MapQueue

    path, saved = _key(checkpoint)
    coords = kept_map(path, method, len(mu), parameter, split)
    if coords is not None:
        return coords, None
    queue = st.session_state.setdefault("map_queue", MapQueue())
    task = queue.request(
        (path, saved, method, parameter, split, len(mu)),
        lambda progress: compute_map(mu, path, method, parameter, split, progress),
    )
    return None, task


def picture(checkpoint: Checkpoint, z, label: int | None = None) -> np.ndarray:
    """The image one latent vector (D,) decodes to, as uint8 (H, W) or (H, W, 3). Kept for every
    session: each visitor's first picture (z = 0, or a shared link's z) is decoded once."""
    return _picture(
        *_key(checkpoint),
        tuple(float(v) for v in np.asarray(z, dtype=float).ravel()),
        None if label is None else int(label),
    )


@st.cache_data(max_entries=512, show_spinner=False)
def _picture(path: str, saved: float, z: tuple[float, ...], label: int | None) -> np.ndarray:
    from ..images import to_uint8
    from ..latent import generate

    image = to_uint8(generate(catalog._load(path, saved).model, np.asarray(z, dtype=np.float32), label))[0]
    return image[..., 0] if image.shape[-1] == 1 else image


def prior_samples_png(checkpoint: Checkpoint, count: int, nrow: int, seed: int, cell: int) -> bytes:
    """Home's samples from the prior as a PNG: the same for every visitor with the same seed, so made once."""
    return _prior_samples_png(*_key(checkpoint), count, nrow, seed, cell)


@st.cache_data(max_entries=64, show_spinner=False)
def _prior_samples_png(path: str, saved: float, count: int, nrow: int, seed: int, cell: int) -> bytes:
    from ..images import png_bytes
    from ..latent import sample_prior

    return png_bytes(sample_prior(catalog._load(path, saved).model, count, seed=seed), nrow=nrow, min_cell=cell)


def reconstructions_png(checkpoint: Checkpoint, start: int, count: int, per_row: int) -> bytes:
    """Reconstruct's rows of test images and their reconstructions (from the posterior mean) as a PNG, made once."""
    return _reconstructions_png(*_key(checkpoint), start, count, per_row)


@st.cache_data(max_entries=64, show_spinner=False)
def _reconstructions_png(path: str, saved: float, start: int, count: int, per_row: int) -> bytes:
    from ..images import png_bytes
    from ..latent import reconstruction_rows

    checkpoint = catalog._load(path, saved)
    data = catalog.dataset_of(checkpoint)
    rows = reconstruction_rows(
        checkpoint.model, data.test_x[start : start + count], data.test_y[start : start + count], per_row
    )
    return png_bytes(rows, nrow=per_row, min_cell=56)


def prior_code(checkpoint: Checkpoint) -> list[float]:
    """One z drawn from the model's prior (a new draw each call), each coordinate held within the sliders' -3..3."""
    seed = int(np.random.default_rng().integers(2**31))
    z = checkpoint.model.sample_prior(1, torch.Generator().manual_seed(seed))[0].cpu().numpy()
    return np.clip(z, -3, 3).astype(float).tolist()


def epoch_frames(checkpoint: Checkpoint) -> list[dict]:
    """The checkpoint's kept epoch frames (checkpoints/epochs.py), [] when it has none."""
    return _epoch_frames(*_key(checkpoint))


@st.cache_data(max_entries=8, show_spinner=False)
def _epoch_frames(path: str, saved: float) -> list[dict]:
    from ..checkpoints import read_epoch_frames

    return read_epoch_frames(path)


def latent_stats(checkpoint: Checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """KL per latent dimension (nats, test-set mean) and which dimensions are active.

    From the encoded test set when it is available, else from metrics.json; a dimension is
    active when its posterior mean varies across the data (variance > 0.01, Burda et al.).
    """
    return _latent_stats(*_key(checkpoint))


@st.cache_data(max_entries=16, show_spinner=False)
def _latent_stats(path: str, saved: float) -> tuple[np.ndarray, np.ndarray]:
    from ..evaluation import active_dimensions, kl_per_dimension

    checkpoint = catalog._load(path, saved)
    mu, logvar, _ = _encoded_test_set(path, saved, 2000)
    if len(mu) > 1 and not checkpoint.model.standard_prior:  # the KL to another prior needs samples: training wrote it
        kl = np.asarray(checkpoint.metrics.get("kl_per_dim") or np.zeros(checkpoint.model.latent_dim))
        return kl, active_dimensions(torch.from_numpy(mu)).numpy()
    if len(mu) > 1:
        mu_t, logvar_t = torch.from_numpy(mu), torch.from_numpy(logvar)
        return kl_per_dimension(mu_t, logvar_t).numpy(), active_dimensions(mu_t).numpy()
    kl = np.asarray(checkpoint.metrics.get("kl_per_dim") or np.zeros(checkpoint.model.latent_dim))
    return kl, kl > 0.01


def test_neg_elbos(checkpoint: Checkpoint, limit: int = 2000) -> np.ndarray:
    """The neg-ELBO of each of the first `limit` test images (N,), one seeded z each: what an upload is set against."""
    return _test_neg_elbos(*_key(checkpoint), limit)


@st.cache_data(max_entries=16, show_spinner=False)
def _test_neg_elbos(path: str, saved: float, limit: int) -> np.ndarray:
    from ..evaluation import neg_elbo_per_image

    checkpoint = catalog._load(path, saved)
    data = catalog.dataset_of(checkpoint)
    if data is None:
        return np.zeros(0)
    y = data.test_y[:limit] if checkpoint.model.cond_dim else None
    return neg_elbo_per_image(checkpoint.model, data.test_x[:limit], y).numpy()


def typicality_of(checkpoint: Checkpoint, x: torch.Tensor, label: int | None) -> tuple[str, bool]:
    """The sentence on how far one image (C, H, W) in [0, 1] is from the model's test images, and whether it is far."""
    from ..evaluation import neg_elbo_per_image
    from .sentences import typicality

    y = torch.tensor([int(label or 0)]) if checkpoint.model.cond_dim else None
    value = float(neg_elbo_per_image(checkpoint.model, x.unsqueeze(0), y)[0])
    return typicality(checkpoint.name, value, test_neg_elbos(checkpoint))


def grid_png(checkpoint: Checkpoint, kind: str, side: int, label: int | None, cell: int = 28) -> bytes:
    """Generate's grid as a PNG: "manifold" (the whole 1- or 2-D latent space) or "plane" (the PCA
    plane of the encoded test set), side x side cells of at least `cell` pixels (whole multiples of
    the image: shown at its own size, every pixel is as wide as every other), GRID_GAP pixels apart.
    Kept: every visit to the page shows it."""
    return _grid_png(*_key(checkpoint), kind, side, label, cell)


@st.cache_data(max_entries=32, show_spinner=False)
def _grid_png(path: str, saved: float, kind: str, side: int, label: int | None, cell: int) -> bytes:
    from ..images import cell_side, png_bytes
    from ..latent import manifold_grid, plane_grid

    model = catalog._load(path, saved).model
    if kind == "manifold":
        images = manifold_grid(model, side, label)
    else:
        centre, directions, spread = _pca_plane(path, saved)
        images = plane_grid(model, centre, directions, spread, side, label)
    # small images' pixels outlined (see images.enlarge); grid.js maps the pointer with the gap
    return png_bytes(images, nrow=side, min_cell=cell_side(max(images.shape[-2:]), cell), padding=GRID_GAP)


def pca_plane(checkpoint: Checkpoint) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (D,), the top-2 principal directions (2, D) and their standard deviations (2,) of the
    encoded test set: the plane in which the data spreads most."""
    return _pca_plane(*_key(checkpoint))


@st.cache_data(max_entries=16, show_spinner=False)
def _pca_plane(path: str, saved: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ..latent import pca_2d

    mu, _, _ = _encoded_test_set(path, saved, 10_000)
    if len(mu) < 3:
        dim = catalog._load(path, saved).model.latent_dim
        return np.zeros(dim), np.eye(2, dim), np.ones(2)
    coords, centre, directions = pca_2d(mu)  # the same plane, signs and all, as the Latent map's PCA
    return centre, directions, coords.std(0, ddof=1)

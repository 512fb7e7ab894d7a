"""2-D maps of latent vectors: PCA (linear, invertible) and t-SNE (kept on disk, it is slow).

t-SNE of 10,000 points took 29 s on 2 cores here, so a map is computed once and saved beside its
checkpoint as `embeddings/tsne-n{N}-p{perplexity}-{weights hash}.npy` (or under ~/.cache when
that folder is read-only); the hash of the weights in the name means a retrained model never
reuses an old map, and shipped checkpoints can carry theirs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..checkpoints.folder import weights_sha1
from ..paths import cache_root


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates (N, 2), the mean (D,) and the two principal directions (2, D)."""
    mean = points.mean(0)
    centred = points - mean
    if points.shape[1] == 1:
        return np.hstack([centred, np.zeros_like(centred)]), mean, np.eye(1)
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    directions = directions[:2]
    # An SVD direction's sign is arbitrary: fix it (largest component positive), so a map of a
    # model that is still learning, or refitted, does not flip.
    directions = directions * np.sign(directions[np.arange(len(directions)), np.abs(directions).argmax(1)])[:, None]
    return centred @ directions.T, mean, directions


def pca_inverse(coords: np.ndarray, mean: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Latent vectors (N, D) for map positions (N, 2): the mean plus the position along the plane."""
    return mean + np.atleast_2d(coords)[:, : len(directions)] @ directions


def tsne_2d(points: np.ndarray, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = min(perplexity, max(2.0, (len(points) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=os.cpu_count()).fit_transform(points)


def weights_digest(checkpoint_path: str | Path) -> str:
    """A short hash of a checkpoint's weights: a map computed for other weights is never reused."""
    return weights_sha1(checkpoint_path)[:12]


def tsne_cache_files(checkpoint_path: str | Path, n: int, perplexity: float) -> list[Path]:
    """Where a t-SNE map is looked for and kept: beside the checkpoint, then the user cache folder."""
    checkpoint_path = Path(checkpoint_path)
    digest = weights_digest(checkpoint_path)
    name = f"tsne-n{n}-p{perplexity:g}-{digest}.npy"
    cache = cache_root() / "embeddings" / name
    return [checkpoint_path / "embeddings" / name, cache]


def load_or_compute_tsne(points: np.ndarray, checkpoint_path, perplexity: float,
                         beside_shipped: bool = False) -> tuple[np.ndarray, bool]:
    """The t-SNE map of `points` from disk if it was computed before; returns (coords, was_cached).

    A new map is kept beside the checkpoint, except for the shipped checkpoints (their folder is
    part of the install; maps computed in the app go to the cache folder) unless `beside_shipped`
    (scripts/precompute_maps.py, which makes the maps they ship with)."""
    from ..paths import shipped_checkpoints_dir

    files = tsne_cache_files(checkpoint_path, len(points), perplexity)
    for candidate in files:
        try:
            coords = np.load(candidate)
            if coords.shape == (len(points), 2):
                return coords, True
        except (OSError, ValueError):
            pass
    coords = tsne_2d(points, perplexity)
    shipped = Path(checkpoint_path).resolve().parent == shipped_checkpoints_dir().resolve()
    for target in files[1:] if shipped and not beside_shipped else files:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.stem}.{os.getpid()}.npy")
            np.save(partial, coords)
            os.replace(partial, target)
            break
        except OSError:
            continue
    return coords, False


def place_by_neighbours(point: np.ndarray, points: np.ndarray, coords: np.ndarray, k: int = 10) -> np.ndarray:
    """Where a new latent vector lands on a map that has no transform (t-SNE): the mean map
    position of its k nearest neighbours in latent space."""
    distances = ((points - point) ** 2).sum(1)
    nearest = np.argsort(distances)[:k]
    return coords[nearest].mean(0)

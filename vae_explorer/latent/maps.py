"""2-D maps of latent vectors: PCA (linear, invertible), t-SNE and UMAP (kept on disk: slow).

t-SNE of 10,000 points took 29 s on 2 cores here, so a map is computed once and saved beside its
checkpoint as `embeddings/tsne-n{N}-p{perplexity}-{weights hash}.npy` (UMAP: `umap-...-k{neighbours}`;
other splits than the test set add it after the method), or under ~/.cache for the shipped
checkpoints and read-only folders; the hash of the weights in the name means a retrained model
never reuses an old map, and shipped checkpoints can carry theirs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..checkpoints.folder import weights_sha1
from ..errors import ConfigError
from ..paths import cache_root

Progress = Callable[[int, int], None]


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


# The map libraries (numba and its JIT caches underneath) are first imported in the sessions' background map
# threads, two at once when two sessions ask; one at a time here (a UMAP task failed twice in CI with
# ModuleNotFoundError, not reproduced alone).
_IMPORTING = threading.Lock()
SKLEARN_TSNE_MAX = 10_000  # up to here scikit-learn's t-SNE; above it openTSNE's (see tsne_2d)
TSNE_ITERATIONS = 750  # openTSNE's defaults: 250 early-exaggeration iterations, then 500


def tsne_2d(
    points: np.ndarray, perplexity: float = 30.0, seed: int = 0, progress: Progress | None = None
) -> np.ndarray:
    """t-SNE (van der Maaten & Hinton, 2008) of points (N, D) to (N, 2).

    Chosen by measuring on 2 cores: scikit-learn's Barnes-Hut t-SNE took 26-29 s for 10,000
    points of 16-D and 66 s for 20,000 (it grows faster than N), openTSNE's FFT-accelerated
    interpolation (Linderman et al., 2019) 110 s for all 70,000 Fashion-MNIST codes and was
    not faster at 10,000; so scikit-learn up to SKLEARN_TSNE_MAX points (the maps shipped with
    the checkpoints are its), openTSNE above, with `progress(done, total)` told as it iterates."""
    perplexity = min(perplexity, max(2.0, (len(points) - 1) / 3))
    if len(points) <= SKLEARN_TSNE_MAX:
        with _IMPORTING:
            from sklearn.manifold import TSNE
        coords = TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=os.cpu_count()
        ).fit_transform(points)
    else:
        with _IMPORTING:
            from openTSNE import TSNE as OpenTSNE

        done = [0]

        def tell(iteration, error, embedding) -> bool:
            done[0] += 10
            if progress is not None:
                progress(min(done[0], TSNE_ITERATIONS), TSNE_ITERATIONS)
            return False

        coords = np.asarray(
            OpenTSNE(
                perplexity=perplexity,
                n_jobs=os.cpu_count(),
                random_state=seed,
                callbacks=tell,
                callbacks_every_iters=10,
                verbose=False,
            ).fit(np.asarray(points, np.float64))
        )
    if progress is not None:
        progress(1, 1)
    return coords


def umap_2d(points: np.ndarray, neighbours: int = 15, seed: int = 0, progress: Progress | None = None) -> np.ndarray:
    """UMAP (McInnes, Healy & Melville, arXiv:1802.03426) of points (N, D) to (N, 2), with
    umap-learn; seeded, so one thread (umap-learn's rule for a repeatable map)."""
    with _IMPORTING:
        import umap
    coords = umap.UMAP(
        n_neighbors=int(max(2, min(neighbours, len(points) - 1))), random_state=seed, n_jobs=1
    ).fit_transform(points)
    if progress is not None:
        progress(1, 1)
    return np.asarray(coords, np.float64)


# method: (function, its parameter's letter in file names)
MAP_METHODS: dict[str, tuple[Callable, str]] = {"tsne": (tsne_2d, "p"), "umap": (umap_2d, "k")}
SPLITS = ("test", "train", "all")  # "all": the test images first, then the training images


def weights_digest(checkpoint_path: str | Path) -> str:
    """A short hash of a checkpoint's weights: a map computed for other weights is never reused."""
    return weights_sha1(checkpoint_path)[:12]


def map_files(checkpoint_path: str | Path, method: str, n: int, parameter: float, split: str = "test") -> list[Path]:
    """Where a map is looked for and kept: beside the checkpoint, then the user cache folder.
    Test-split names are `{method}-n{N}-{p|k}{parameter}-{weights hash}.npy` (the shipped t-SNE
    maps' names); other splits add the split after the method."""
    checkpoint_path = Path(checkpoint_path)
    letter = MAP_METHODS[method][1]
    name = f"{method}{'' if split == 'test' else '-' + split}-n{n}-{letter}{parameter:g}-{weights_digest(checkpoint_path)}.npy"
    return [checkpoint_path / "embeddings" / name, cache_root() / "embeddings" / name]


def tsne_cache_files(checkpoint_path: str | Path, n: int, perplexity: float) -> list[Path]:
    """Where a t-SNE map of the first n test images is looked for and kept."""
    return map_files(checkpoint_path, "tsne", n, perplexity)


def kept_map(checkpoint_path, method: str, n: int, parameter: float, split: str = "test") -> np.ndarray | None:
    """A map computed before for these weights and points, or None."""
    for candidate in map_files(checkpoint_path, method, n, parameter, split):
        try:
            coords = np.load(candidate, allow_pickle=False)
            if coords.shape == (n, 2):
                return coords
        except (OSError, ValueError):
            pass
    return None


def compute_map(
    points: np.ndarray,
    checkpoint_path,
    method: str,
    parameter: float,
    split: str = "test",
    progress: Progress | None = None,
    beside_shipped: bool = False,
) -> np.ndarray:
    """Compute the map and keep it: beside the checkpoint, except for the shipped checkpoints
    (their folder is part of the install; maps computed in the app go to the cache folder)
    unless `beside_shipped` (scripts/precompute_maps.py, which makes the maps they ship with)."""
    from ..paths import shipped_checkpoints_dir

    function = MAP_METHODS[method][0]
    coords = function(points, parameter, progress=progress)
    files = map_files(checkpoint_path, method, len(points), parameter, split)
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
    return coords


def load_or_compute_tsne(
    points: np.ndarray, checkpoint_path, perplexity: float, beside_shipped: bool = False
) -> tuple[np.ndarray, bool]:
    """The t-SNE map of `points` (the first N test images' codes) from disk if it was computed
    before, else computed and kept (see compute_map); returns (coords, was_cached)."""
    coords = kept_map(checkpoint_path, "tsne", len(points), perplexity)
    if coords is not None:
        return coords, True
    return compute_map(points, checkpoint_path, "tsne", perplexity, beside_shipped=beside_shipped), False


def split_codes(model, data, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Posterior means (N, D) and labels (N,) of a split's images: "test", "train", or "all"
    (the test images first, then the training images), encoded in batches (a set on disk too)."""
    from .operations import encode_means

    if split not in SPLITS:
        raise ConfigError(f"the split must be test, train or all, got {split!r}.")
    parts = {
        "test": [(data.test_x, data.test_y)],
        "train": [(data.train_x, data.train_y)],
        "all": [(data.test_x, data.test_y), (data.train_x, data.train_y)],
    }[split]
    mus = [encode_means(model, x, y)[0].numpy() for x, y in parts]
    return np.concatenate(mus), np.concatenate([y.numpy() for _, y in parts])


def kept_codes(model, data, split: str, checkpoint_path) -> tuple[np.ndarray, np.ndarray]:
    """split_codes, kept in the cache folder under the weights' digest (encoding all 70,000
    Fashion-MNIST images with the conv model took 4.2 s here; reading them back, milliseconds)."""
    labels = {"test": [data.test_y], "train": [data.train_y], "all": [data.test_y, data.train_y]}.get(split)
    if labels is None:
        raise ConfigError(f"the split must be test, train or all, got {split!r}.")
    labels = np.concatenate([y.numpy() for y in labels])
    target = cache_root() / "embeddings" / f"codes-{split}-n{len(labels)}-{weights_digest(checkpoint_path)}.npy"
    try:
        mu = np.load(target, allow_pickle=False)
        if mu.shape == (len(labels), model.latent_dim):
            return mu, labels
    except (OSError, ValueError):
        pass
    mu, labels = split_codes(model, data, split)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.stem}.{os.getpid()}.npy")
        np.save(partial, mu)
        os.replace(partial, target)
    except OSError:  # a read-only cache: encode again next time
        pass
    return mu, labels


def place_by_neighbours(point: np.ndarray, points: np.ndarray, coords: np.ndarray, k: int = 10) -> np.ndarray:
    """Where a new latent vector lands on a map that has no transform (t-SNE): the mean map
    position of its k nearest neighbours in latent space."""
    distances = ((points - point) ** 2).sum(1)
    nearest = np.argsort(distances)[:k]
    return coords[nearest].mean(0)

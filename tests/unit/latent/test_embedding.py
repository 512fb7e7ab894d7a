"""2-D maps against scikit-learn: PCA and its inverse, t-SNE kept on disk, placing a new point."""

import shutil

import numpy as np
import pytest
from sklearn.decomposition import PCA

from vae_explorer.latent.maps import (
    load_or_compute_tsne,
    pca_2d,
    pca_inverse,
    place_by_neighbours,
    tsne_2d,
    tsne_cache_files,
    weights_digest,
)

rng = np.random.default_rng(0)
# 300 points in 5-D, spread unevenly and away from the origin, so centring and ordering matter.
POINTS = (
    rng.standard_normal((300, 5)) @ np.diag([3.0, 0.2, 1.5, 0.1, 0.5]) @ np.linalg.qr(rng.standard_normal((5, 5)))[0]
    + 4.0
)


def test_pca_matches_scikit_learn():
    coords, mean, directions = pca_2d(POINTS)
    reference = PCA(2).fit(POINTS)
    signs = np.sign((directions * reference.components_).sum(1))  # an SVD direction's sign is arbitrary
    assert mean == pytest.approx(reference.mean_)
    assert directions == pytest.approx(reference.components_ * signs[:, None], abs=1e-9)
    assert coords == pytest.approx(reference.transform(POINTS) * signs, abs=1e-9)
    assert coords.var(0, ddof=1) == pytest.approx(reference.explained_variance_)


def test_pca_signs_are_fixed_by_the_largest_component():
    _, _, directions = pca_2d(POINTS)
    largest = directions[np.arange(2), np.abs(directions).argmax(1)]
    assert (largest > 0).all()
    _, _, flipped = pca_2d(-POINTS)  # the same plane: the same directions, not their negatives
    assert flipped == pytest.approx(directions, abs=1e-9)


def test_pca_inverse_is_scikit_learns_inverse():
    coords, mean, directions = pca_2d(POINTS)
    reference = PCA(2).fit(POINTS)
    signs = np.sign((directions * reference.components_).sum(1))
    assert pca_inverse(coords, mean, directions) == pytest.approx(reference.inverse_transform(coords * signs), abs=1e-9)
    on_plane = mean + np.array([[1.5, -0.5]]) @ directions
    assert pca_inverse(np.array([1.5, -0.5]), mean, directions) == pytest.approx(on_plane)
    assert pca_2d(np.vstack([POINTS, on_plane]))[0][-1] == pytest.approx([1.5, -0.5], abs=0.05)


def test_pca_of_a_single_dimension_pads_the_second_axis():
    points = np.array([[1.0], [3.0], [5.0]])
    coords, mean, directions = pca_2d(points)
    assert coords == pytest.approx(np.array([[-2.0, 0.0], [0.0, 0.0], [2.0, 0.0]]))
    assert mean == pytest.approx([3.0]) and directions == pytest.approx(np.eye(1))


def test_a_new_point_lands_at_its_neighbours_mean_position():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0], [12.0, 0.0]])
    coords = np.array([[0.0, 0.0], [2.0, 2.0], [50.0, 50.0], [60.0, 60.0], [70.0, 70.0]])
    assert place_by_neighbours(np.array([0.4, 0.0]), points, coords, k=2) == pytest.approx([1.0, 1.0])
    assert place_by_neighbours(np.array([11.2, 0.0]), points, coords, k=3) == pytest.approx([60.0, 60.0])


@pytest.fixture
def checkpoint_copy(tiny_checkpoint, tmp_path):
    target = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoint, target)
    return target


def test_tsne_is_kept_beside_the_checkpoint_and_read_back(checkpoint_copy):
    points = POINTS[:60]
    coords, cached = load_or_compute_tsne(points, checkpoint_copy, perplexity=10)
    assert not cached and coords == pytest.approx(tsne_2d(points, perplexity=10))
    kept = checkpoint_copy / "embeddings" / f"tsne-n60-p10-{weights_digest(checkpoint_copy)}.npy"
    assert kept.is_file() and np.load(kept) == pytest.approx(coords)
    again, cached = load_or_compute_tsne(points, checkpoint_copy, perplexity=10)
    assert cached and again == pytest.approx(coords)
    # neighbours stay neighbours: the two closest pairs in 5-D are closer on the map than a typical pair
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(60) * 1e9
    i, j = np.unravel_index(distances.argmin(), distances.shape)
    map_distances = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    assert map_distances[i, j] < np.median(map_distances)


def test_a_retrained_model_does_not_reuse_an_old_map(checkpoint_copy):
    first = tsne_cache_files(checkpoint_copy, 60, 10)[0]
    weights = checkpoint_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x80\x3f")  # other weights, other digest
    assert tsne_cache_files(checkpoint_copy, 60, 10)[0] != first
    assert tsne_cache_files(checkpoint_copy, 60, 10)[0].name.startswith("tsne-n60-p10-")


def test_a_checkpoint_that_cannot_hold_its_map_keeps_it_in_the_cache(checkpoint_copy):
    (checkpoint_copy / "embeddings").write_text("a file where the folder would go")  # mkdir fails, as read-only would
    coords, cached = load_or_compute_tsne(POINTS[:40], checkpoint_copy, perplexity=5)
    beside, in_cache = tsne_cache_files(checkpoint_copy, 40, 5)
    assert not cached and in_cache.is_file() and np.load(in_cache) == pytest.approx(coords)
    assert load_or_compute_tsne(POINTS[:40], checkpoint_copy, perplexity=5)[1]


def test_a_map_of_a_shipped_checkpoint_goes_to_the_cache_never_into_checkpoints(tmp_path, monkeypatch):
    import shutil

    from conftest import REPO

    import vae_explorer.paths as paths

    shipped = tmp_path / "checkpoints"
    shutil.copytree(
        REPO / "checkpoints" / "digits-mlp", shipped / "digits-mlp", ignore=shutil.ignore_patterns("embeddings")
    )
    monkeypatch.setattr(paths, "shipped_checkpoints_dir", lambda: shipped)
    before = sorted(p.relative_to(shipped) for p in shipped.rglob("*"))
    coords, cached = load_or_compute_tsne(POINTS[:30], shipped / "digits-mlp", perplexity=5)
    beside, in_cache = tsne_cache_files(shipped / "digits-mlp", 30, 5)
    assert not cached and in_cache.is_file() and not beside.exists()
    assert sorted(p.relative_to(shipped) for p in shipped.rglob("*")) == before  # nothing written there
    assert load_or_compute_tsne(POINTS[:30], shipped / "digits-mlp", perplexity=5)[1]  # found again in the cache


def test_tsne_is_scikit_learns_with_the_perplexity_capped_for_small_sets():
    from sklearn.manifold import TSNE

    small = POINTS[:13]  # perplexity must stay below the number of points: capped at (13 - 1) / 3 = 4
    reference = TSNE(n_components=2, perplexity=4.0, init="pca", random_state=0).fit_transform(small)
    assert tsne_2d(small, perplexity=30) == pytest.approx(reference, abs=1e-4)
    tiny = POINTS[:4]  # and never below 2
    assert tsne_2d(tiny) == pytest.approx(
        TSNE(perplexity=2.0, init="pca", random_state=0).fit_transform(tiny), abs=1e-4
    )
    some = POINTS[:100]  # 30 by default
    assert tsne_2d(some) == pytest.approx(
        TSNE(perplexity=30.0, init="pca", random_state=0).fit_transform(some), abs=1e-4
    )


def test_the_weights_digest_is_the_sha1_of_the_file(checkpoint_copy):
    import hashlib

    data = (checkpoint_copy / "model.safetensors").read_bytes()
    assert weights_digest(checkpoint_copy) == hashlib.sha1(data).hexdigest()[:12]


def test_the_cache_copy_of_a_map_lives_in_the_cache_folder(checkpoint_copy):
    from vae_explorer.paths import cache_root

    beside, in_cache = tsne_cache_files(checkpoint_copy, 40, 5)
    name = f"tsne-n40-p5-{weights_digest(checkpoint_copy)}.npy"
    assert beside == checkpoint_copy / "embeddings" / name and in_cache == cache_root() / "embeddings" / name


def test_a_new_point_takes_ten_neighbours_by_default():
    points = np.arange(12, dtype=float)[:, None]
    coords = np.stack([np.arange(12.0), np.zeros(12)], 1)
    assert place_by_neighbours(np.array([0.0]), points, coords) == pytest.approx([4.5, 0.0])  # mean of 0..9


def test_a_map_joins_the_others_in_an_existing_embeddings_folder(checkpoint_copy):
    (checkpoint_copy / "embeddings").mkdir()
    (checkpoint_copy / "embeddings" / "tsne-n10-p3-0123456789ab.npy").write_bytes(b"another model's map")
    load_or_compute_tsne(POINTS[:30], checkpoint_copy, perplexity=5)
    beside, in_cache = tsne_cache_files(checkpoint_copy, 30, 5)
    assert beside.is_file() and not in_cache.exists()


# --- large maps: openTSNE past scikit-learn's range, UMAP, every split ----------------------------------


def test_a_large_t_sne_is_open_tsne_s_with_its_progress(monkeypatch):
    import os

    from openTSNE import TSNE as OpenTSNE

    import vae_explorer.latent.maps as maps

    monkeypatch.setattr(maps, "SKLEARN_TSNE_MAX", 100)  # POINTS (300) is past it
    told = []
    coords = maps.tsne_2d(POINTS, perplexity=20, progress=lambda done, total: told.append((done, total)))
    reference = np.asarray(OpenTSNE(perplexity=20, n_jobs=os.cpu_count(), random_state=0, verbose=False).fit(POINTS))
    assert coords.shape == (300, 2) and coords == pytest.approx(reference, abs=1e-6)
    assert told[0][0] < told[-2][0] and told[-2] == (maps.TSNE_ITERATIONS, maps.TSNE_ITERATIONS) and told[-1] == (1, 1)


def test_umap_is_umap_learns_seeded_map():
    import umap

    from vae_explorer.latent.maps import umap_2d

    coords = umap_2d(POINTS, neighbours=10)
    assert coords == pytest.approx(umap.UMAP(n_neighbors=10, random_state=0, n_jobs=1).fit_transform(POINTS), abs=1e-6)


def test_maps_of_other_splits_are_kept_under_their_own_names(checkpoint_copy):
    from vae_explorer.latent.maps import compute_map, kept_map, map_files

    assert kept_map(checkpoint_copy, "umap", 50, 5, "all") is None
    coords = compute_map(POINTS[:50], checkpoint_copy, "umap", 5, "all")
    beside, _ = map_files(checkpoint_copy, "umap", 50, 5, "all")
    assert beside.name == f"umap-all-n50-k5-{weights_digest(checkpoint_copy)}.npy" and beside.is_file()
    assert kept_map(checkpoint_copy, "umap", 50, 5, "all") == pytest.approx(coords)
    assert (
        kept_map(checkpoint_copy, "umap", 50, 5, "test") is None
        and kept_map(checkpoint_copy, "umap", 50, 6, "all") is None
    )


def test_codes_of_every_split_are_the_encoders_means_test_first():
    from conftest import REPO
    from pictures import posterior

    from vae_explorer import load_checkpoint, load_dataset
    from vae_explorer.errors import ConfigError
    from vae_explorer.latent.maps import split_codes

    checkpoint = load_checkpoint(REPO / "checkpoints" / "digits-mlp")
    data = load_dataset(checkpoint.config.data)
    mu, labels = split_codes(checkpoint.model, data, "all")
    expected = np.concatenate(
        [posterior(checkpoint.model, data.test_x)[0], posterior(checkpoint.model, data.train_x)[0]]
    )
    assert mu == pytest.approx(expected, abs=1e-5) and (labels == np.concatenate([data.test_y, data.train_y])).all()
    assert len(split_codes(checkpoint.model, data, "train")[0]) == len(data.train_x)
    with pytest.raises(ConfigError, match="the split must be test, train or all, got 'both'"):
        split_codes(checkpoint.model, data, "both")

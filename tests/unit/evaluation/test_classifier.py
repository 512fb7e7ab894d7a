"""The feature classifier, the Fréchet distance and the sample-quality score."""

import numpy as np
import pytest
from conftest import TINY_DATA

from vae_explorer import build_model
from vae_explorer.config import DataConfig
from vae_explorer.errors import CheckpointError, ConfigError
from vae_explorer.evaluation import sample_quality
from vae_explorer.evaluation.fid import (
    cache_dir,
    classifier_key,
    default_epochs,
    find_classifier,
    frechet_distance,
    get_classifier,
    load_classifier,
    train_classifier,
)
from vae_explorer.paths import shipped_classifiers_dir


def test_frechet_distance_matches_the_matrix_square_root_formula():
    import scipy.linalg as scipy_linalg  # scikit-learn depends on scipy

    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 2.0
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(
        cov_a + cov_b - 2 * scipy_linalg.sqrtm(cov_a @ cov_b).real
    )
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)


def test_frechet_distance_known_cases():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, 2.0, 0.0, -2.0])
    assert frechet_distance(a, a + shift) == pytest.approx(9.0, rel=1e-6)  # same covariance: |m|^2
    # N(0, I) against N(0, 4 I) in 4 dimensions: 4 * (1 + 4 - 2 * 2) = 4, up to sampling error
    big = rng.normal(size=(200_000, 4))
    assert frechet_distance(big, 2 * rng.normal(size=(200_000, 4))) == pytest.approx(4.0, abs=0.1)


def test_classifier_is_trained_once_on_the_whole_dataset_kept_and_found(tiny_data):
    other_split = DataConfig(dataset="digits", split_seed=7, max_train=100)  # no shipped classifier for this split
    assert find_classifier(other_split) is None
    calls = []
    model, info = get_classifier(other_split, lambda step, total: calls.append((step, total)), epochs=2)
    assert calls and calls[-1][0] == calls[-1][1] == 2 * 12  # 1,438 training images, not 100: batches of 128
    folder = find_classifier(other_split)
    assert folder is not None and folder.name == classifier_key(other_split) == info["key"]
    assert folder.parent == cache_dir() and info["data"]["max_train"] is None
    assert info["test_accuracy"] > 0.3  # ten classes, chance is 0.1
    again, _ = get_classifier(DataConfig(dataset="digits", split_seed=7), lambda *a: pytest.fail("trained twice"))
    x = tiny_data.test_x[:16]
    np.testing.assert_allclose(again.embed(x), model.embed(x), atol=1e-6)
    assert again.embed(x).shape == (16, 64)


def test_classifier_key_ignores_where_the_files_are():
    assert classifier_key(DataConfig("fashion-mnist")) == classifier_key(
        DataConfig("fashion-mnist", data_dir="/elsewhere")
    )
    assert classifier_key(DataConfig("fashion-mnist")) == classifier_key(DataConfig("fashion-mnist", max_train=10))
    assert classifier_key(DataConfig("fashion-mnist")) != classifier_key(DataConfig("fashion-mnist", image_size=32))
    assert find_classifier(TINY_DATA).parent == shipped_classifiers_dir()  # digits' is shipped, for any subset
    assert classifier_key(DataConfig("folder:/a b/c")).startswith("folder--a-b-c-")
    assert default_epochs(60_000) == 2 and default_epochs(1_437) == 13 and default_epochs(10) == 20


def test_a_single_class_has_no_classifier(tiny_data):
    import dataclasses

    one = dataclasses.replace(tiny_data, class_names=["only"])
    with pytest.raises(ConfigError, match="single class"):
        train_classifier(one, TINY_DATA)


def test_a_corrupt_classifier_says_how_to_fix(tmp_path):
    (tmp_path / "info.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="delete that folder"):
        load_classifier(tmp_path)


def test_trained_model_samples_score_better_than_untrained(tiny_run, tiny_data):
    model, config, _ = tiny_run
    classifier, _ = get_classifier(TINY_DATA)
    trained = sample_quality(model, tiny_data, classifier)
    untrained = sample_quality(build_model(config.model, seed=1).eval(), tiny_data, classifier)
    assert 0 <= trained["fid_floor"] < trained["fid"] < untrained["fid"]
    assert trained["fid_n"] == len(tiny_data.test_x) == 64

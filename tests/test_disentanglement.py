import numpy as np
import pytest

from vae_explorer.disentanglement import factor_vae_score, mig

rng = np.random.default_rng(0)
FACTORS = np.stack(np.meshgrid(np.arange(4), np.arange(5), np.arange(6), indexing="ij"), -1).reshape(-1, 3).repeat(20, 0)  # (2400, 3)


def test_one_dimension_per_factor_scores_one():
    codes = FACTORS[:, [2, 0, 1]].astype(float) + 0.01 * rng.standard_normal((len(FACTORS), 3))  # permuted, lightly noisy
    codes = np.hstack([codes, 0.001 * rng.standard_normal((len(FACTORS), 2))])  # two collapsed extra dimensions
    score, per_factor = mig(codes, FACTORS)
    assert score == pytest.approx(1.0, abs=0.05) and len(per_factor) == 3
    assert factor_vae_score(codes, FACTORS) == pytest.approx(1.0, abs=0.02)


def test_noise_scores_near_zero():
    codes = rng.standard_normal((len(FACTORS), 5))
    assert mig(codes, FACTORS)[0] < 0.05
    assert factor_vae_score(codes, FACTORS) < 0.6


def test_entangled_codes_score_in_between():
    # every dimension mixes two factors: information is shared, the gap shrinks
    f = FACTORS.astype(float)
    codes = np.stack([f[:, 0] + f[:, 1], f[:, 1] + f[:, 2], f[:, 2] + f[:, 0]], 1)
    score = mig(codes, FACTORS)[0]
    assert 0.0 < score < 0.5


def test_mig_needs_two_dimensions():
    with pytest.raises(ValueError):
        mig(np.zeros((10, 1)), FACTORS[:10])

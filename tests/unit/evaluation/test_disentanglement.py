import numpy as np
import pytest

from vae_explorer.evaluation.disentanglement import factor_vae_score, mig

rng = np.random.default_rng(0)
FACTORS = (
    np.stack(np.meshgrid(np.arange(4), np.arange(5), np.arange(6), indexing="ij"), -1).reshape(-1, 3).repeat(20, 0)
)  # (2400, 3)


def test_one_dimension_per_factor_scores_one():
    codes = FACTORS[:, [2, 0, 1]].astype(float) + 0.01 * rng.standard_normal(
        (len(FACTORS), 3)
    )  # permuted, lightly noisy
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


# Two factors on a full grid: v0 in {0, 1} and v1 in {0, 1, 2, 3}, each combination 10 times.
GRID = np.stack(np.meshgrid(np.arange(2), np.arange(4), indexing="ij"), -1).reshape(-1, 2).repeat(10, 0)  # (80, 2)


def test_mutual_information_and_mig_by_hand():
    from vae_explorer.evaluation.disentanglement import mutual_information

    v0, v1 = GRID[:, 0], GRID[:, 1]
    codes = np.stack([v0, v1 // 2, v1], 1).astype(float)  # z0 copies v0, z1 halves v1, z2 copies v1
    info = mutual_information(codes, GRID)
    log2 = np.log(2)
    assert info == pytest.approx(np.array([[log2, 0], [0, log2], [0, 2 * log2]]), abs=1e-12)
    score, per_factor = mig(codes, GRID)
    # v0: (I(z0) - I(z1 or z2)) / H(v0) = (log 2 - 0) / log 2; v1: (log 4 - log 2) / log 4
    assert per_factor == pytest.approx([1.0, 0.5]) and score == pytest.approx(0.75)


def test_mig_with_one_dimension_sharing_its_factor_evenly():
    codes = np.stack([GRID[:, 1], GRID[:, 1], GRID[:, 0]], 1).astype(float)  # v1 in two dimensions: no gap
    assert mig(codes, GRID)[1] == pytest.approx([1.0, 0.0])


def test_factor_vae_score_ignores_collapsed_dimensions():
    f = FACTORS.astype(float)
    codes = np.stack([f[:, 0], f[:, 1], f[:, 2], np.full(len(f), 3.0), 1e-3 * f[:, 0]], 1)  # constant and near-constant
    assert factor_vae_score(codes, FACTORS) == 1.0


def test_factor_vae_score_when_two_factors_share_a_dimension():
    # Fixing v1 or v2 leaves z1 = v1 + v2 half its variance while z0 keeps all of it, so both vote for
    # z1; the classifier can name only one of them: accuracy 1/3 (v0) + 1/3 (the one named).
    f = FACTORS.astype(float)
    codes = np.stack([f[:, 0], f[:, 1] + f[:, 2]], 1)
    assert factor_vae_score(codes, FACTORS[:, [0, 1, 2]], votes=2000) == pytest.approx(2 / 3, abs=0.05)


def test_factor_vae_score_normalises_each_dimension():
    # z0 encodes v0 with noise on a scale of 100 (variance 80 + 20); z1 and z2 encode v1 and v2 on a
    # scale of 10. With v0 fixed, z0 keeps a fifth of its variance: the least once each dimension is
    # divided by its spread, but 20, more than all of z1's or z2's, if it were not.
    f, noise = FACTORS.astype(float), rng.standard_normal((len(FACTORS), 2))
    codes = np.stack(
        [
            8 * f[:, 0] + np.sqrt(20) * noise[:, 0],
            np.sqrt(4.5) * f[:, 1] + noise[:, 1],
            np.sqrt(10 / f[:, 2].var()) * f[:, 2],
        ],
        1,
    )
    assert factor_vae_score(codes, FACTORS) == pytest.approx(1.0, abs=0.01)
    assert factor_vae_score(10 * codes, FACTORS) == pytest.approx(
        1.0, abs=0.01
    )  # variances 10,000 and 1,000: all carry


def test_mig_with_exactly_two_dimensions_and_its_message():
    codes = np.stack([GRID[:, 0], GRID[:, 1]], 1).astype(float)
    assert mig(codes, GRID)[1] == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="^MIG needs at least two latent dimensions$"):
        mig(codes[:, :1], GRID)


def test_mig_cuts_each_dimension_into_twenty_bins():
    # A factor with 21 values copied into z0: 20 equal bins over its range put the top two values in
    # one bin (so I < H), while 15 values would each get a bin of their own. disentanglement_lib uses 20.
    from vae_explorer.evaluation.disentanglement import mutual_information

    for levels, exact in ((15, True), (21, False)):
        v = np.arange(levels).repeat(4)
        factors = np.stack([v, v % 2], 1)
        codes = np.stack([v.astype(float), np.zeros(len(v))], 1)
        info = mutual_information(codes, factors)[0, 0]
        entropy = np.log(levels)
        assert bool(info == pytest.approx(entropy)) is exact
        merged = entropy - (2 / levels) * np.log(2)  # two values of 4 codes each share one bin
        assert exact or info == pytest.approx(merged)
        assert mig(codes, factors)[1][0] == pytest.approx(info / entropy)
        assert mig(codes, factors, bins=10)[1][0] == pytest.approx(
            mutual_information(codes, factors, bins=10)[0, 0] / entropy
        )
        assert mig(codes, factors, bins=10)[1][0] < info / entropy  # fewer bins merge more values


def test_factor_vae_score_is_repeatable_and_normalises_small_scales():
    f = FACTORS.astype(float)
    codes = np.stack([f[:, 0], f[:, 1] + f[:, 2]], 1)
    assert factor_vae_score(codes, FACTORS) == factor_vae_score(codes, FACTORS)  # seeded
    assert factor_vae_score(codes, FACTORS) == factor_vae_score(codes, FACTORS, seed=0)
    noise = rng.standard_normal((len(FACTORS), 2))
    small = 0.01 * np.stack(
        [
            8 * f[:, 0] + np.sqrt(20) * noise[:, 0],
            np.sqrt(4.5) * f[:, 1] + noise[:, 1],
            np.sqrt(10 / f[:, 2].var()) * f[:, 2],
        ],
        1,
    )  # every spread below 1
    assert factor_vae_score(small, FACTORS) == pytest.approx(1.0, abs=0.01)


def test_factor_vae_score_counts_votes():
    # z0 copies v0 (times 10) and wins every vote for v0; z1 is v1 with noise, so with v1 fixed it
    # mostly beats z0 but not always. Counting votes names z0 v0 and z1 v1: accuracy 1/2 plus z1's
    # share of the v1 votes, about 0.9. (Marking a pair as seen instead of counting would give 2/3.)
    v = FACTORS[:, :2]
    codes = np.stack([10.0 * v[:, 0], v[:, 1] + 3 * rng.standard_normal(len(v))], 1)
    assert 0.8 < factor_vae_score(codes, v) < 0.98

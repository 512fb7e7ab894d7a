"""Latent operations against formulas written out here: the decoded z is read back from the
pictures of a model whose decoder writes z into its pixels (probes.revealing_model)."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from probes import revealed_z, revealing_model
from vae_explorer.latent import (class_labels, encode_means, interpolate, manifold_grid, normal_quantiles, sample_prior,
                                 traverse)


def test_normal_quantiles_are_the_inverse_gaussian_cdf():
    assert normal_quantiles(7).numpy() == pytest.approx(norm.ppf(np.linspace(0.05, 0.95, 7)), abs=1e-5)
    assert normal_quantiles(3, 0.1, 0.9).numpy() == pytest.approx(norm.ppf([0.1, 0.5, 0.9]), abs=1e-5)


def test_the_manifold_grid_runs_z0_rightwards_and_z1_upwards():
    model = revealing_model(2)
    n = 5
    z = revealed_z(manifold_grid(model, n), 2).view(n, n, 2)  # row-major: (row, column, dim)
    q = norm.ppf(np.linspace(0.05, 0.95, n))
    assert z[0, 0].numpy() == pytest.approx([q[0], q[-1]], abs=1e-5)  # top left: z0 low, z1 high
    assert z[0, -1].numpy() == pytest.approx([q[-1], q[-1]], abs=1e-5)  # top right
    assert z[-1, 0].numpy() == pytest.approx([q[0], q[0]], abs=1e-5)  # bottom left
    assert z[:, 2, 0].numpy() == pytest.approx(np.full(n, q[2]), abs=1e-5)  # a column shares z0
    assert z[3, :, 1].numpy() == pytest.approx(np.full(n, q[1]), abs=1e-5)  # a row shares z1
    assert z[2, :, 0].numpy() == pytest.approx(q, abs=1e-5)


def test_a_1d_manifold_is_one_row_and_3d_has_none():
    z = revealed_z(manifold_grid(revealing_model(1), 6), 1)[:, 0]
    assert z.numpy() == pytest.approx(norm.ppf(np.linspace(0.05, 0.95, 6)), abs=1e-5)
    with pytest.raises(ValueError, match="1-D or 2-D latent space, this model has 3"):
        manifold_grid(revealing_model(3), 4)


def test_slerp_is_the_formula_with_non_orthogonal_end_points():
    z0, z1 = torch.tensor([1.0, 0.5, -2.0]), torch.tensor([0.3, 2.0, 1.0])
    omega = math.acos(float(z0 @ z1 / (z0.norm() * z1.norm())))
    t = np.linspace(0, 1, 6)[:, None]
    expected = (np.sin((1 - t) * omega) * z0.numpy() + np.sin(t * omega) * z1.numpy()) / math.sin(omega)
    assert interpolate(z0, z1, 6, "slerp").numpy() == pytest.approx(expected, abs=1e-5)
    assert interpolate(z0, z1, 6, "linear").numpy() == pytest.approx((1 - t) * z0.numpy() + t * z1.numpy(), abs=1e-6)


def test_slerp_between_equal_norms_keeps_the_norm_and_turns_evenly():
    z0 = torch.tensor([2.0, 0.0, 0.0])
    z1 = 2.0 * torch.tensor([math.cos(2.0), math.sin(2.0), 0.0])  # 2 radians apart
    path = interpolate(z0, z1, 5, "slerp")
    assert path.norm(dim=1).numpy() == pytest.approx(np.full(5, 2.0), abs=1e-5)
    angles = np.arctan2(path[:, 1].numpy(), path[:, 0].numpy())
    assert angles == pytest.approx(np.linspace(0, 2.0, 5), abs=1e-5)
    assert float(interpolate(z0, z1, 5, "linear")[2].norm()) < 2.0 * math.cos(1.0) + 1e-5  # the chord dips inside


def test_slerp_of_parallel_points_is_the_line_and_unknown_methods_are_refused():
    z0, z1 = torch.tensor([1.0, 1.0]), torch.tensor([3.0, 3.0])
    assert torch.allclose(interpolate(z0, z1, 3, "slerp"), torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    with pytest.raises(ValueError, match="unknown interpolation method 'cubic'"):
        interpolate(z0, z1, 3, "cubic")


def test_a_traversal_row_varies_only_its_dimension():
    model = revealing_model(4)
    start = torch.tensor([0.5, -1.0, 2.0, 0.25])
    values = torch.linspace(-3, 3, 5)
    z = revealed_z(traverse(model, start, [2, 0], values), 4).view(2, 5, 4)
    for row, dim in enumerate([2, 0]):
        expected = start.repeat(5, 1)
        expected[:, dim] = values
        assert torch.allclose(z[row], expected, atol=1e-5)
    assert torch.equal(start, torch.tensor([0.5, -1.0, 2.0, 0.25]))  # the start vector is left as it was


def test_prior_samples_decode_seeded_standard_normal_draws():
    model = revealing_model(3)
    z = revealed_z(sample_prior(model, 4000, seed=5), 3)
    assert torch.allclose(z, torch.randn(4000, 3, generator=torch.Generator().manual_seed(5)), atol=1e-5)
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=0.1) and torch.allclose(z.std(0), torch.ones(3), atol=0.05)
    assert not torch.equal(sample_prior(model, 4, seed=6), sample_prior(model, 4, seed=5))


def test_class_labels_of_a_conditional_model():
    model = revealing_model(2, conditional_classes=3)
    assert class_labels(model, None, 5).tolist() == [0, 1, 2, 0, 1]
    assert class_labels(model, 2, 3).tolist() == [2, 2, 2]
    assert class_labels(revealing_model(2), 1, 3) is None
    pictures = sample_prior(model, 3, label=1).reshape(3, -1)
    assert torch.allclose(pictures[:, 2:], torch.tensor([0.5, 0.55, 0.5]).expand(3, 3))  # one-hot of class 1, revealed


def test_encode_means_are_the_posterior_means_in_batches(tiny_run, tiny_data):
    model, _, _ = tiny_run
    x = tiny_data.test_x[:50]
    mu, logvar = encode_means(model, x, batch_size=7)
    q = model.encode(x)
    assert torch.allclose(mu, q.mean, atol=1e-6) and torch.allclose(logvar, q.logvar, atol=1e-6)
    assert mu.shape == (50, 2)


def test_interpolate_is_linear_unless_told_otherwise():
    z0, z1 = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])
    assert torch.equal(interpolate(z0, z1, 5), interpolate(z0, z1, 5, "linear"))


def test_slerp_between_short_vectors_and_at_a_small_angle():
    # |z0| |z1| < 1 and an angle of 0.5 rad: the formula still holds (no clamping of the norms, no
    # falling back to the line above the smallest angles)
    for z0, z1 in ((torch.tensor([0.3, 0.1]), torch.tensor([0.1, 0.2])),
                   (torch.tensor([2.0, 0.0]), 3.0 * torch.tensor([math.cos(0.5), math.sin(0.5)]))):
        omega = math.acos(float(z0 @ z1 / (z0.norm() * z1.norm())))
        t = np.linspace(0, 1, 5)[:, None]
        expected = (np.sin((1 - t) * omega) * z0.numpy() + np.sin(t * omega) * z1.numpy()) / math.sin(omega)
        assert interpolate(z0, z1, 5, "slerp").numpy() == pytest.approx(expected, abs=1e-5)


def test_slerp_between_opposite_points_is_the_line():
    # z1 = -2.5 z0: no great circle is the one; cos rounds to -1.0000001 here, which must not give NaN
    z0 = torch.tensor([1.5409960746765137, -0.293428897857666, -2.1787893772125244, 0.5684, -1.0845, -1.3986, 0.4033, 0.8380])
    z1 = -2.5 * z0
    path = interpolate(z0, z1, 5, "slerp")
    assert torch.isfinite(path).all() and torch.allclose(path, interpolate(z0, z1, 5, "linear"), atol=1e-6)
    z0, z1 = torch.tensor([2.0, 2.0]), torch.tensor([4.0, 4.0])  # parallel: the line too
    assert torch.allclose(interpolate(z0, z1, 3, "slerp"), torch.tensor([[2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]))

"""A spatial latent looked at: channel statistics, the unit-variance scale and the least-squares
colour preview, each against numpy computed here."""

import numpy as np
import pytest
import torch

from vae_explorer.latent.spatial import (
    channel_pictures,
    channel_statistics,
    rgb_preview,
    rgb_preview_fit,
    unit_variance_scale,
)


def test_channel_statistics_and_the_unit_variance_scale_are_numpy_s():
    means = (
        torch.randn(3, 4, 5, 6, generator=torch.Generator().manual_seed(0))
        * torch.tensor([1.0, 2.0, 0.5, 4.0])[:, None, None]
    )
    mean, std = channel_statistics(means)
    flat = means.numpy().transpose(1, 0, 2, 3).reshape(4, -1)
    assert np.allclose(mean.numpy(), flat.mean(1)) and np.allclose(std.numpy(), flat.std(1))
    assert unit_variance_scale(means) == pytest.approx(1 / means.numpy().std())
    assert float((means * unit_variance_scale(means)).double().std(correction=0)) == pytest.approx(1.0)


def test_the_preview_recovers_a_linear_map_from_channels_to_colours():
    """Images whose every 2 x 2 block's mean colour is an exact linear function of its position's
    channels: least squares finds that function, and the preview is those colours."""
    g = torch.Generator().manual_seed(1)
    means = torch.randn(2, 4, 3, 5, generator=g)
    true = torch.rand(5, 3, generator=g, dtype=torch.float64) * 0.1
    colours = (means.double().permute(0, 2, 3, 1) @ true[:4] + true[4]).permute(0, 3, 1, 2)  # (2, 3, 3, 5)
    images = colours.repeat_interleave(2, 2).repeat_interleave(2, 3)  # (2, 3, 6, 10): each block one colour
    matrix = rgb_preview_fit(means, images)
    assert torch.allclose(matrix, true, atol=1e-10)
    x = np.concatenate([means.numpy().transpose(0, 2, 3, 1).reshape(-1, 4), np.ones((30, 1))], 1)
    assert np.allclose(
        matrix.numpy(), np.linalg.lstsq(x, colours.numpy().transpose(0, 2, 3, 1).reshape(-1, 3), rcond=None)[0]
    )
    assert torch.allclose(rgb_preview(means[0], matrix), colours[0].clamp(0, 1).float(), atol=1e-6)


def test_channel_pictures_share_one_scale():
    mean = torch.tensor([[[-3.0, 0.0], [3.0, 6.0]]]).repeat(2, 1, 1) * torch.tensor([1.0, 0.5])[:, None, None]
    pictures = channel_pictures(mean)
    assert pictures.shape == (2, 1, 2, 2)
    assert pictures[0, 0].tolist() == [[0.0, 0.5], [1.0, 1.0]] and pictures[1, 0].tolist() == [[0.25, 0.5], [0.75, 1.0]]


def test_neighbour_correlation_is_numpy_s_and_near_zero_for_noise():
    from vae_explorer.latent.spatial import neighbour_correlation

    g = torch.Generator().manual_seed(5)
    smooth = torch.randn(3, 12, 40, generator=g).cumsum(2)  # random walks along the rows
    expected = np.mean([np.corrcoef(c[:, :-1].ravel(), c[:, 1:].ravel())[0, 1] for c in smooth.numpy()])
    assert neighbour_correlation(smooth) == pytest.approx(expected)
    assert abs(neighbour_correlation(torch.randn(4, 64, 64, generator=g))) < 0.05


def test_channel_moments_over_latents_of_different_sizes_are_numpy_s():
    from vae_explorer.latent.spatial import ChannelMoments

    g = torch.Generator().manual_seed(6)
    latents = [torch.randn(4, h, w, generator=g) * 3 + 1 for h, w in ((8, 8), (6, 10), (12, 4))]
    moments = ChannelMoments(4)
    for latent in latents:
        moments.add(latent)
    every = np.concatenate([latent.numpy().reshape(4, -1) for latent in latents], 1)
    assert np.allclose(moments.mean.numpy(), every.mean(1)) and np.allclose(moments.std.numpy(), every.std(1))
    assert moments.unit_variance_scale() == pytest.approx(1 / every.std())


def test_latents_interpolate_position_by_position_as_one_vector_does():
    """Each position of the spatial interpolation equals latent.interpolation_at on that position's C-vector
    (itself checked against slerp's closed form), and the ends are the two latents."""
    from vae_explorer.latent import interpolation_at
    from vae_explorer.latent.spatial import interpolate_latents

    g = torch.Generator().manual_seed(9)
    a, b = torch.randn(4, 3, 5, generator=g), torch.randn(4, 3, 5, generator=g)
    b[:, 0, 0] = 2 * a[:, 0, 0]  # a parallel pair: slerp is the line there
    for method in ("linear", "slerp"):
        middle = interpolate_latents(a, b, 0.3, method)
        for i in range(3):
            for j in range(5):
                expected = interpolation_at(a[:, i, j].numpy(), b[:, i, j].numpy(), 0.3, method)[0]
                assert torch.allclose(middle[:, i, j], expected, atol=1e-5)
        assert torch.allclose(interpolate_latents(a, b, 0.0, method), a, atol=1e-6)
        assert torch.allclose(interpolate_latents(a, b, 1.0, method), b, atol=1e-6)
    unit = torch.zeros(2, 1, 1)
    other = unit.clone()
    unit[0], other[1] = 1.0, 1.0
    assert torch.allclose(interpolate_latents(unit, other, 0.5, "slerp")[:, 0, 0], torch.tensor([0.5**0.5, 0.5**0.5]))


def test_a_pasted_patch_takes_the_box_from_the_source_and_nothing_else():
    from vae_explorer.latent.spatial import paste_patch

    target, source = torch.zeros(2, 4, 6), torch.ones(2, 4, 6)
    pasted = paste_patch(target, source, 1, 2, 2, 3)
    expected = np.zeros((2, 4, 6))
    expected[:, 1:3, 2:5] = 1
    assert np.array_equal(pasted.numpy(), expected) and target.sum() == 0  # the target itself is left alone


def test_changed_outside_counts_only_the_pixels_beyond_the_box():
    from vae_explorer.latent.spatial import changed_outside

    before = torch.zeros(3, 8, 8)
    after = before.clone()
    after[:, 2:6, 2:6] = 1.0  # the box (latent rows 1-2, columns 1-2 at factor 2) and a ring around it
    after[0, 0, 0] = 1 / 255  # a change of one level: not counted
    # box pixels rows 2-5, columns 2-5 exactly: nothing outside changed
    assert changed_outside(before, after, (1, 1, 2, 2), 2) == 0.0
    after[1, 7, 7] = 0.5  # one of the 64 - 16 = 48 pixels outside
    assert changed_outside(before, after, (1, 1, 2, 2), 2) == pytest.approx(1 / 48)


def test_a_dab_of_the_brush_adds_its_bump_on_one_channel_within_its_radius():
    from vae_explorer.latent.spatial import paint_latent

    z = torch.zeros(3, 6, 7)
    painted = paint_latent(z, [(1, 2.0, 3.5, 2.0, 1.5), (1, 2.0, 3.5, 2.0, -0.5)])
    expected = np.zeros((3, 6, 7))
    for i in range(6):
        for j in range(7):
            d2 = (i - 2.0) ** 2 + (j - 3.5) ** 2
            expected[1, i, j] = 1.0 * max(0.0, 1 - d2 / 4.0) ** 2  # 1.5 - 0.5 of the same bump
    np.testing.assert_allclose(painted.numpy(), expected, atol=1e-6)
    assert painted[1, 2, 3] > 0 and painted[1, 0, 3] == 0 and painted[1, 2, 1] == 0  # distance 2: the rim
    assert torch.equal(z, torch.zeros(3, 6, 7))  # the photo's latent is left as it was


def test_the_reach_of_a_decoder_is_its_receptive_field_in_latent_positions():
    """Two 3x3 convolutions around an upsampling by 2 reach 2 positions of the latent (1 + 1/2, rounded
    up to whole positions); decoding a window that reaches that far around a box gives, inside the box,
    the pixels of decoding the whole latent."""
    from vae_explorer.latent.spatial import receptive_radius

    torch.manual_seed(0)
    decoder = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        torch.nn.Upsample(scale_factor=2),
        torch.nn.Conv2d(4, 3, 3, padding=1),
    )
    reach = receptive_radius(decoder, 2, 2)
    assert reach == 2
    z = torch.randn(1, 2, 12, 12)
    with torch.no_grad():
        whole = decoder(z)
        window = decoder(z[:, :, 3 - reach : 7 + reach, 4 - reach : 9 + reach])  # around rows 3-6, columns 4-8
    inside = window[:, :, 2 * reach : 2 * (reach + 4), 2 * reach : 2 * (reach + 5)]
    torch.testing.assert_close(inside, whole[:, :, 6:14, 8:18])
    outside = decoder(z[:, :, 3 - reach + 1 : 7 + reach - 1, 4 - reach + 1 : 9 + reach - 1])  # a position short
    assert not torch.allclose(
        outside[:, :, 2 * (reach - 1) : 2 * (reach + 3), 2 * (reach - 1) : 2 * (reach + 4)], whole[:, :, 6:14, 8:18]
    )


def test_a_copying_dab_moves_every_channel_toward_the_source_by_the_brush_s_weight():
    from vae_explorer.latent.spatial import paint_latent

    z, source = torch.zeros(2, 5, 5), torch.arange(50, dtype=torch.float32).reshape(2, 5, 5)
    painted = paint_latent(z, [(-1, 2.0, 2.0, 2.0, 1.0)], source)
    weight = np.array([[max(0.0, 1 - ((i - 2) ** 2 + (j - 2) ** 2) / 4) ** 2 for j in range(5)] for i in range(5)])
    np.testing.assert_allclose(painted.numpy(), weight * source.numpy(), atol=1e-5)
    assert torch.equal(painted[:, 2, 2], source[:, 2, 2])  # the centre is the source's own
    with pytest.raises(ValueError, match="needs the source latent"):
        paint_latent(z, [(-1, 2.0, 2.0, 2.0, 1.0)])

"""Pictures for people: small images enlarged with their pixels outlined, and the GIF and MP4 exports
read back frame by frame."""

import numpy as np
import torch

from vae_explorer.images import enlarge, image_grid


def test_small_images_shown_large_get_a_line_around_each_pixel_and_keep_their_values():
    pixels = np.array([[0, 255], [128, 40]], np.uint8)[..., None]  # (H, W, 1)
    big = enlarge(pixels, 7)[..., 0]
    assert big.shape == (14, 14)
    assert np.array_equal(big[::7, ::7], pixels[..., 0])  # the top-left of each block is the pixel
    assert (big[0:6, 0:6] == 0).all() and (big[0:6, 7:13] == 255).all()  # inside a block: the pixel itself
    # the line along the bottom and right: dark grey on black, darker than the pixel on light ones
    assert big[6, 0] == 38 and big[0, 13] == 255 * 55 // 100 and big[13, 0] == 128 * 55 // 100 and big[13, 13] == 78


def test_large_images_and_small_enlargements_are_left_plain():
    image = torch.rand(1, 1, 28, 28)
    plain = np.asarray(image_grid(image, 1, padding=0, min_cell=280))  # 28 px: no lines at any size
    assert np.array_equal(plain, np.asarray(image_grid(image, 1, padding=0)).repeat(10, 0).repeat(10, 1))
    small = np.random.default_rng(0).integers(0, 256, (8, 8, 1), dtype=np.uint8)
    assert np.array_equal(enlarge(small, 4)[..., 0], small[..., 0].repeat(4, 0).repeat(4, 1))  # 4x: too small for lines


def _frames():
    from vae_explorer import load_checkpoint
    from vae_explorer.latent import traversal_frames, traverse

    model = load_checkpoint("digits-mlp").model
    images = traverse(model, [0, 3], steps=5)  # (2 rows * 5 steps, 1, 8, 8)
    return traversal_frames(images, 2, 5)  # 5 frames, each both rows at one value


def test_the_gif_plays_every_frame_forwards_then_back_exactly():
    from PIL import Image, ImageSequence

    from vae_explorer.images import gif_bytes

    frames = _frames()
    expected = [np.asarray(image_grid(f[None], 1, padding=0, min_cell=96)) for f in frames]
    with Image.open(__import__("io").BytesIO(gif_bytes(frames, min_cell=96))) as gif:
        shown = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(gif)]
    assert len(shown) == 2 * len(frames) - 2  # 0 1 2 3 4 3 2 1, then it loops
    for got, index in zip(shown, [0, 1, 2, 3, 4, 3, 2, 1]):
        assert np.array_equal(got, expected[index])


def test_the_mp4_holds_the_same_frames_within_compression_noise():
    import imageio.v3 as iio

    from vae_explorer.images import mp4_bytes

    frames = _frames()
    data = mp4_bytes(frames, min_cell=96, fps=8)
    video = iio.imread(data, extension=".mp4", index=None)  # (frames, H, W, 3), padded to multiples of 16
    expected = [np.asarray(image_grid(f[None], 1, padding=0, min_cell=96)) for f in frames]
    h, w = expected[0].shape
    assert len(video) == 8 and video.shape[1] % 16 == 0 and video.shape[2] % 16 == 0 and video.shape[1] >= h
    assert iio.immeta(data, extension=".mp4")["fps"] == 8
    for got, index in zip(video, [0, 1, 2, 3, 4, 3, 2, 1]):
        error = np.abs(got[:h, :w].mean(-1) - expected[index]).mean()
        assert error < 4.0, f"frame {index}: mean error {error:.1f} levels"
        assert got[h:, :].max(initial=0) < 20 and got[:, w:].max(initial=0) < 20  # the padding is black


def test_the_training_map_frames_put_each_dot_where_its_code_is_on_fixed_axes():
    from vae_explorer.images import scatter_frames

    frames = [
        {"epoch": 1, "scatter": np.array([[1.0, 0.0], [-0.5, 0.5]]), "labels": np.array([0, 1])},
        {"epoch": 2, "scatter": np.array([[2.0, -2.0], [0.0, 0.0]]), "labels": np.array([0, 1])},
    ]
    pictures = scatter_frames(frames, ["#ff0000", "#0000ff"], side=201, dot=2)
    assert pictures.shape == (2, 3, 201, 201)
    span = 2.0 * 1.05 + 1e-6  # the largest extent over both epochs, on both axes

    def pixel(i, x, y):
        col = round((x / span + 1) / 2 * 200)
        row = round((1 - (y / span + 1) / 2) * 200)
        return (pictures[i, :, row, col] * 255).round().int().tolist()

    assert pixel(0, 1.0, 0.0) == [255, 0, 0] and pixel(0, -0.5, 0.5) == [0, 0, 255]
    assert pixel(1, 2.0, -2.0) == [255, 0, 0] and pixel(1, 0.0, 0.0) == [0, 0, 255]
    assert pixel(1, -0.5, 0.5) == [255, 255, 255]  # where epoch 1's second dot was: empty now

import io

import numpy as np
import pytest
import torch
from hostile import png_header_only
from PIL import Image, ImageDraw

from vae_explorer.data.uploads import ImageError, prepare_image


def encode(image: Image.Image, fmt="PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def paper_drawing(size=(200, 120), box=(20, 20, 80, 100)) -> Image.Image:
    """A dark ring drawn off-centre on white paper."""
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).ellipse(box, outline="black", width=10)
    return image


def centre_of_mass(x: torch.Tensor) -> tuple[float, float]:
    m = x[0].numpy()
    ys, xs = np.indices(m.shape)
    return (ys * m).sum() / m.sum(), (xs * m).sum() / m.sum()


def test_drawing_on_paper_is_inverted_and_centred():
    x = prepare_image(encode(paper_drawing()), (1, 28, 28))
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert x[0, 0].max() < 0.05 and x[0].max() > 0.8  # dark background, bright stroke
    cy, cx = centre_of_mass(x)
    assert abs(cy - 13.5) < 1.5 and abs(cx - 13.5) < 1.5
    assert x[0, :3].sum() == 0 and x[0, -3:].sum() == 0  # the 20x20 box leaves a margin


def test_invert_choices_and_no_centring():
    light = encode(paper_drawing())
    assert prepare_image(light, (1, 28, 28), invert=False, center=False).mean() > 0.4  # kept mostly white
    dark = encode(Image.eval(paper_drawing(), lambda v: 255 - v))
    auto = prepare_image(dark, (1, 28, 28), invert="auto")
    assert auto[0, 0].max() < 0.05  # already dark: not inverted
    assert prepare_image(light, (1, 8, 8), center=False).shape == (1, 8, 8)


def test_rgb_models_get_three_channels():
    assert prepare_image(encode(paper_drawing()), (3, 32, 32)).shape == (3, 32, 32)


def test_transparency_16_bit_cmyk_gif_and_exif():
    rgba = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line((10, 10, 50, 50), fill=(0, 0, 0, 255), width=6)
    x = prepare_image(encode(rgba), (1, 28, 28))
    assert x.max() > 0.5 and x[0, 0, 0] < 0.05  # strokes on a transparent background

    deep = Image.fromarray((np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16))
    assert prepare_image(encode(deep), (1, 28, 28)).shape == (1, 28, 28)

    cmyk = paper_drawing().convert("CMYK")
    assert prepare_image(encode(cmyk, "JPEG"), (1, 28, 28)).max() > 0.5

    frames = [paper_drawing(), Image.new("RGB", (200, 120), "black")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert prepare_image(gif, (1, 28, 28)).max() > 0.5  # the first frame, not the black one

    tall = paper_drawing(size=(120, 200), box=(20, 20, 100, 60))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the viewer turns it 90 degrees
    rotated = prepare_image(encode(tall, "JPEG", exif=exif), (1, 28, 28))
    assert rotated.shape == (1, 28, 28)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "empty"),
        (b"%PDF-1.4 not an image", "not an image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not an image"),
        (png_header_only(30000, 30000), "megapixel|too large"),
        (png_header_only(1, 1), "only 1x1"),
    ],
)
def test_bad_uploads_give_one_clear_sentence(data, match):
    with pytest.raises(ImageError, match=match) as info:
        prepare_image(data, (1, 28, 28), name="upload.png")
    assert "upload.png" in str(info.value) or "empty" in str(info.value)


def test_truncated_image():
    data = encode(paper_drawing(size=(400, 400)), "JPEG")
    with pytest.raises(ImageError, match="damaged or truncated"):
        prepare_image(data[: len(data) // 3], (1, 28, 28), name="cut.jpg")


def test_a_file_over_the_upload_limit_is_refused_before_decoding():
    from vae_explorer.data.uploads import MAX_UPLOAD_BYTES

    with pytest.raises(ImageError, match=r"big.png is 20.1 MB, over the 20 MB limit"):
        prepare_image(b"\x89PNG" + b"\x00" * MAX_UPLOAD_BYTES, (1, 28, 28), name="big.png")

"""End to end in a real browser: `streamlit run Home.py` on a free loopback port, driven by
Playwright in Debian's headless Chromium (the fixtures are in conftest.py). Skipped where
Chromium or Playwright is missing, except in CI, where .ci/run installs both and a missing one fails."""

from __future__ import annotations

import io

import pytest
from conftest import PAGES, PATIENCE_MS, REPO, error_boxes, map_position, open_page
from PIL import Image, ImageDraw

pytestmark = pytest.mark.slow  # a browser per module: the full suite, not the fast tier


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_opens_without_an_error(page, app_url, path):
    open_page(page, app_url, path)
    assert error_boxes(page) == []


def _picture_pixels(page, src: str):
    """The pixels behind an <img> src (a data URI or a media URL of the app), decoded here."""
    from pictures import data_uri_pixels, decode_png

    if src.startswith("data:"):
        return data_uri_pixels(src)
    return decode_png(
        page.request.get(page.url.split("?")[0].rsplit("/", 1)[0] + src if src.startswith("/") else src).body()
    )


def _png(draw=True, size=(120, 90)) -> bytes:
    image = Image.new("RGB", size, "white")
    if draw:
        ImageDraw.Draw(image).ellipse((35, 15, 85, 75), outline="black", width=9)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_good_bad_and_huge(page, app_url, tmp_path):
    from hostile import png_header_only

    open_page(page, app_url, "Reconstruct")
    files = {"drawing.png": _png(), "notes.png": b"not an image at all", "huge.png": png_header_only(30000, 30000)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    page.locator("[data-testid='stFileUploaderDropzoneInput'][multiple]").first.set_input_files(
        [str(tmp_path / name) for name in files]
    )
    page.get_by_text("reconstruction", exact=True).first.wait_for(timeout=PATIENCE_MS)
    page.wait_for_timeout(1000)
    errors = " ".join(error_boxes(page))
    assert "notes.png is not an image" in errors
    assert "huge.png is too large to decode safely" in errors or "huge.png is 30000x30000" in errors
    # the app still works after the bad files
    page.get_by_label("How many").first.focus()
    open_page(page, app_url, "Generate")
    assert error_boxes(page) == []


def test_clicking_the_latent_map_shows_the_image(page, app_url):
    import re

    import numpy as np
    from pictures import as_pixels, assert_pixels_close, decoded, downscale, posterior

    from vae_explorer import load_checkpoint, load_dataset

    checkpoint = load_checkpoint(REPO / "checkpoints" / "digits-mlp")
    data = load_dataset(checkpoint.config.data)
    wanted = int(np.flatnonzero(data.test_y.numpy() == 2)[5])  # the sixth dot of the third class
    open_page(page, app_url, "Latent_map")
    page.mouse.click(*map_position(page, wanted))
    page.get_by_text("its reconstruction", exact=True).wait_for(timeout=PATIENCE_MS)
    label = page.locator(
        "[data-testid='stMarkdownContainer']", has_text=re.compile(r"Test image \d+")
    ).first.inner_text()
    index, name = re.match(r"Test image (\d+): (.+)", label).groups()
    index = int(index)
    assert index == wanted and name == "2"
    shown = {
        caption: _picture_pixels(
            page, page.locator("[data-testid='stImage']", has_text=caption).locator("img").get_attribute("src")
        )
        for caption in ("the image", "its reconstruction")
    }
    mu, _ = posterior(checkpoint.model, data.test_x[index : index + 1])
    assert_pixels_close(
        downscale(shown["the image"], (8, 8)), as_pixels(data.test_x[index : index + 1])[0], "the image"
    )
    assert_pixels_close(
        downscale(shown["its reconstruction"], (8, 8)), decoded(checkpoint.model, mu)[0], "its reconstruction"
    )


def test_interpolation_moves_and_downloads_a_png(page, app_url, tmp_path):
    open_page(page, app_url, "Interpolate")
    strip = page.locator("[data-testid='stImage'] img").nth(2)
    before = strip.get_attribute("src")
    page.get_by_label("Image B: test image").fill("7")
    page.get_by_label("Image B: test image").press("Enter")
    page.wait_for_function(
        "(src) => document.querySelectorAll(\"[data-testid='stImage'] img\")[2].src !== src",
        arg=before,
        timeout=PATIENCE_MS,
    )
    with page.expect_download() as download:
        page.get_by_role("button", name="Download (PNG)").click()
    path = tmp_path / "interpolation.png"
    download.value.save_as(path)
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"


def test_train_one_epoch_then_explore_it(page, app_url, runs_dir):
    open_page(page, app_url, "Train")
    page.get_by_role("spinbutton", name="Use only the first N training images").fill("256")
    page.get_by_role("spinbutton", name="Epochs", exact=True).fill("1")
    page.get_by_role("textbox", name="Save as").fill("browser run")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("saved as browser-run").wait_for(timeout=PATIENCE_MS)
    assert (runs_dir / "browser-run" / "model.safetensors").is_file()
    page.get_by_role("button", name="Explore it").click()
    page.get_by_role("heading", name="Reconstruct").first.wait_for(timeout=PATIENCE_MS)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PATIENCE_MS)
    assert "model=browser-run" in page.url
    assert page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count() == 0

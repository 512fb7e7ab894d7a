"""End to end in a real browser: `streamlit run Home.py` on a free loopback port, driven by
Playwright in Debian's headless Chromium. Skipped where Chromium or Playwright is missing,
except in CI, where .ci/run installs both and a missing one fails."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from conftest import REPO, require

CHROMIUM = Path("/usr/bin/chromium")
PAGES = {"": "Home", "Reconstruct": "Reconstruct", "Generate": "Generate", "Latent_map": "Latent map",
         "Interpolate": "Interpolate", "Traverse": "Traverse", "Learn": "Learn", "Train": "Train", "Evaluate": "Evaluate"}


def _playwright_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def app_url(runs_dir):
    require(CHROMIUM.exists(), "Chromium (apt-get install chromium)")
    require(_playwright_available(), "Playwright for Python (pip install playwright)")
    from vae_explorer.app.server import running_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAE_EXPLORER_RUNS", str(runs_dir))  # what the tests train stays out of runs/
        with running_app() as (base, _):
            yield base


@pytest.fixture(scope="module")
def browser(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def open_page(page, app_url: str, path: str, model: str = "digits-mlp"):
    page.goto(f"{app_url}/{path}?model={model}")
    page.get_by_role("heading", name=PAGES[path] if path else "vae-explorer").first.wait_for(timeout=60_000)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    page.wait_for_timeout(500)


def error_boxes(page) -> list[str]:
    return [e.inner_text() for e in page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").all()]


@pytest.mark.slow
@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_opens_without_an_error(page, app_url, path):
    open_page(page, app_url, path)
    assert error_boxes(page) == []


def _picture_pixels(page, src: str):
    """The pixels behind an <img> src (a data URI or a media URL of the app), decoded here."""
    from pictures import data_uri_pixels, decode_png

    if src.startswith("data:"):
        return data_uri_pixels(src)
    return decode_png(page.request.get(page.url.split("?")[0].rsplit("/", 1)[0] + src if src.startswith("/") else src).body())


@pytest.mark.slow
def test_dragging_a_slider_moves_the_picture_and_it_settles_right(page, app_url):
    from pictures import assert_pixels_close, decoded
    from vae_explorer import load_checkpoint

    open_page(page, app_url, "Generate")
    slider = page.locator(".ls-row input").first
    picture = page.locator(".ls-picture img")
    pictures = {picture.get_attribute("src")}
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    for i in range(40):
        page.mouse.move(box["x"] + box["width"] * (0.5 + 0.45 * i / 40), y)
        page.wait_for_timeout(30)
        pictures.add(picture.get_attribute("src"))
    assert len(pictures) >= 4, "the picture should change while the mouse is still down"
    page.mouse.up()
    page.wait_for_timeout(1500)
    values = [float(v) for v in page.locator(".ls-row input").evaluate_all(
        "inputs => inputs.sort((a, b) => a.dataset.index - b.dataset.index).map(i => i.value)")]
    dragged = int(slider.get_attribute("data-index"))
    assert values[dragged] > 2.0 and [v for i, v in enumerate(values) if i != dragged] == [0.0] * 7
    model = load_checkpoint(REPO / "checkpoints" / "digits-mlp").model
    assert_pixels_close(_picture_pixels(page, picture.get_attribute("src")), decoded(model, values)[0], "the settled picture")


def _png(draw=True, size=(120, 90)) -> bytes:
    image = Image.new("RGB", size, "white")
    if draw:
        ImageDraw.Draw(image).ellipse((35, 15, 85, 75), outline="black", width=9)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_uploads_good_bad_and_huge(page, app_url, tmp_path):
    from test_preprocess import png_header_only

    open_page(page, app_url, "Reconstruct")
    files = {"drawing.png": _png(), "notes.png": b"not an image at all", "huge.png": png_header_only(30000, 30000)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    page.locator("[data-testid='stFileUploaderDropzoneInput'][multiple]").first.set_input_files(
        [str(tmp_path / name) for name in files])
    page.get_by_text("reconstruction", exact=True).first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    errors = " ".join(error_boxes(page))
    assert "notes.png is not an image" in errors
    assert "huge.png is too large to decode safely" in errors or "huge.png is 30000x30000" in errors
    # the app still works after the bad files
    page.get_by_label("How many").first.focus()
    open_page(page, app_url, "Generate")
    assert error_boxes(page) == []


@pytest.mark.slow
def test_clicking_the_latent_map_shows_the_image(page, app_url):
    import re

    from pictures import as_pixels, assert_pixels_close, decoded, downscale, posterior
    from vae_explorer import load_checkpoint, load_dataset

    open_page(page, app_url, "Latent_map")
    dot = page.locator(".js-plotly-plot .scatterlayer .trace").nth(3).locator("path.point").nth(5)
    box = dot.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("its reconstruction").wait_for(timeout=30_000)
    label = page.locator("[data-testid='stMarkdownContainer']", has_text=re.compile(r"Test image \d+")).first.inner_text()
    index, name = re.match(r"Test image (\d+): (.+)", label).groups()
    checkpoint = load_checkpoint(REPO / "checkpoints" / "digits-mlp")
    data = load_dataset(checkpoint.config.data)
    index = int(index)
    assert name == "2" and int(data.test_y[index]) == 2  # the third class's trace was clicked
    shown = {caption: _picture_pixels(page, page.locator("[data-testid='stImage']", has_text=caption).locator("img")
                                      .get_attribute("src")) for caption in ("the image", "its reconstruction")}
    mu, _ = posterior(checkpoint.model, data.test_x[index: index + 1])
    assert_pixels_close(downscale(shown["the image"], (8, 8)), as_pixels(data.test_x[index: index + 1])[0], "the image")
    assert_pixels_close(downscale(shown["its reconstruction"], (8, 8)), decoded(checkpoint.model, mu)[0], "its reconstruction")


@pytest.mark.slow
def test_interpolation_moves_and_downloads_a_png(page, app_url, tmp_path):
    open_page(page, app_url, "Interpolate")
    strip = page.locator("[data-testid='stImage'] img").nth(2)
    before = strip.get_attribute("src")
    page.get_by_label("Image B: test image").fill("7")
    page.get_by_label("Image B: test image").press("Enter")
    page.wait_for_function("(src) => document.querySelectorAll(\"[data-testid='stImage'] img\")[2].src !== src", arg=before,
                           timeout=30_000)
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
    page.get_by_text("saved as browser-run").wait_for(timeout=60_000)
    assert (runs_dir / "browser-run" / "model.safetensors").is_file()
    page.get_by_role("button", name="Explore it").click()
    page.get_by_role("heading", name="Reconstruct").first.wait_for(timeout=60_000)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    assert "model=browser-run" in page.url
    assert page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count() == 0

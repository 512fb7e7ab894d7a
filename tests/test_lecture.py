"""A lecture's demos with the real mouse in Chromium, at projector size in presentation mode and at 1280x720:
what a lecturer clicks is what gets the click (issue: the replay's play button sat under plotly's toolbar, and a
click at its centre zoomed the axes instead)."""

from __future__ import annotations

import base64

import pytest

from conftest import PATIENCE_MS, REPO

pytestmark = pytest.mark.slow  # a browser per module: the full suite, not the fast tier

VIEWS = {"projector, presenting": ({"width": 1920, "height": 1080}, True), "laptop": ({"width": 1280, "height": 720}, False)}


@pytest.fixture(params=list(VIEWS))
def view(request, browser):
    viewport, presenting = VIEWS[request.param]
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(PATIENCE_MS)
    yield context.new_page(), presenting
    context.close()


def open_view(page, app_url: str, path: str, model: str, presenting: bool) -> None:
    page.goto(f"{app_url}/{path}?model={model}" + ("&present=1" if presenting else ""))
    page.get_by_role("heading", name=path.replace("_", " ")).first.wait_for(timeout=PATIENCE_MS)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PATIENCE_MS)
    page.wait_for_timeout(500)


def test_the_epoch_replay_plays_when_its_button_is_clicked(view, app_url):
    page, presenting = view
    open_view(page, app_url, "Learn", "digits-iwae", presenting)
    chart = page.locator("[data-testid='stPlotlyChart']").filter(has_text="play").first
    chart.scroll_into_view_if_needed()
    chart.locator(".updatemenu-button").first.wait_for(timeout=PATIENCE_MS)
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)  # over the chart: a toolbar shows if any
    page.wait_for_timeout(500)
    x_range = page.evaluate("(el) => el.querySelector('.js-plotly-plot').layout.xaxis.range.slice()", chart.element_handle())
    button = chart.locator(".updatemenu-button").first.bounding_box()
    target = (button["x"] + button["width"] / 2, button["y"] + button["height"] / 2)
    hit = page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y); return e.closest('.updatemenu-button') !== null; }",
                        list(target))
    assert hit, "something covers the play button's centre"
    last = chart.locator(".slider-group > .slider-label").text_content()
    # the row of decodes above the map belongs to the same animation: each epoch shows that epoch's samples
    from vae_explorer.app.replay import samples_png
    from vae_explorer.checkpoints import read_epoch_frames

    uris = {f"epoch {f['epoch']}": "data:image/png;base64," + base64.b64encode(samples_png(f)).decode("ascii")
            for f in read_epoch_frames(REPO / "checkpoints" / "digits-iwae")}
    shown = "(el) => { const i = el.querySelector('.imagelayer image'); return i && i.getAttribute('href'); }"
    assert page.evaluate(shown, chart.element_handle()) == uris[last]
    page.mouse.click(*target)
    page.wait_for_function(f"""([el, last, uris]) => {{ const label = el.querySelector('.slider-group > .slider-label').textContent;
      return label !== last && ({shown})(el) === uris[label]; }}""",
                           arg=[chart.element_handle(), last, uris], timeout=PATIENCE_MS)  # moved off the last epoch, both together
    assert page.evaluate("(el) => el.querySelector('.js-plotly-plot').layout.xaxis.range.slice()", chart.element_handle()) == x_range
    if presenting:  # no toolbar at all on a projector
        assert chart.locator(".modebar-container .modebar-btn").count() == 0 or not chart.locator(".modebar").is_visible()


def click_centre(page, locator) -> None:
    """A real mouse click at the element's centre, scrolled into view first (as a person scrolls to it)."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_a_training_survives_a_reload_stops_and_resumes_with_the_mouse(page, app_url, runs_dir):
    """Start from the form, reload the page while it trains, stop it from the reloaded page, resume it."""
    page.set_viewport_size({"width": 1920, "height": 1080})
    open_view(page, app_url, "Train", "digits-mlp", presenting=True)
    epochs = page.get_by_role("spinbutton", name="Epochs", exact=True)
    epochs.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("400")
    name = page.get_by_role("textbox", name="Save as")
    name.click()
    page.keyboard.type("lecture-run")
    click_centre(page, page.get_by_role("button", name="Start training"))
    stop = page.get_by_role("button", name="Stop", exact=True)
    stop.wait_for(timeout=PATIENCE_MS)
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=PATIENCE_MS)  # an epoch is done: its curves
    assert "job=" in page.url
    page.reload()  # a refresh: a new session, the same URL
    stop.wait_for(timeout=PATIENCE_MS)
    click_centre(page, stop)
    page.get_by_text("Stopped after", exact=False).first.wait_for(timeout=PATIENCE_MS)
    page.reload()
    resume = page.get_by_role("button", name="Resume")
    resume.wait_for(timeout=PATIENCE_MS)
    page.get_by_text("lecture-run", exact=False).first.wait_for(timeout=PATIENCE_MS)  # listed by its name
    click_centre(page, resume)
    stop.wait_for(timeout=PATIENCE_MS)  # training again, from where it stopped
    click_centre(page, stop)
    page.get_by_text("Stopped after", exact=False).first.wait_for(timeout=PATIENCE_MS)


def _photo(path):
    """A photo-like picture nothing like 8x8 digits: blocks of colour, 240x320."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((20, 20, 1))).astype(np.uint8)).save(path)
    return path


def test_a_photo_unlike_the_data_is_said_to_be_far_from_it(page, app_url, tmp_path):
    photo = _photo(tmp_path / "photo.png")
    page.set_viewport_size({"width": 1280, "height": 720})
    open_view(page, app_url, "Reconstruct", "digits-mlp", presenting=False)
    page.locator("[data-testid='stFileUploaderDropzoneInput'][multiple]").first.set_input_files(str(photo))
    page.get_by_text("Far from the data digits-mlp was trained on", exact=False).first.wait_for(timeout=PATIENCE_MS)
    open_view(page, app_url, "Latent_map", "digits-mlp", presenting=False)
    page.locator("[data-testid='stSidebar'] input[type=file][accept*='png']").first.set_input_files(str(photo))
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("Far from the data digits-mlp was trained on", exact=False).first.wait_for(timeout=PATIENCE_MS)
    # the map's upload has a preview (waited for: a rerun may still be drawing the sidebar)
    sidebar.get_by_text("your image, as the model sees it").first.wait_for(timeout=PATIENCE_MS)

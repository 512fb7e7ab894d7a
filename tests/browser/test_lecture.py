"""A lecture's demos with the real mouse in Chromium, at projector size in presentation mode and at 1280x720:
what a lecturer clicks is what gets the click (issue: the replay's play button sat under plotly's toolbar, and a
click at its centre zoomed the axes instead)."""

from __future__ import annotations

import base64

import pytest
from conftest import PATIENCE_MS, REPO

pytestmark = pytest.mark.slow  # a browser per module: the full suite, not the fast tier

VIEWS = {
    "projector, presenting": ({"width": 1920, "height": 1080}, True),
    "laptop": ({"width": 1280, "height": 720}, False),
}


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
    x_range = page.evaluate(
        "(el) => el.querySelector('.js-plotly-plot').layout.xaxis.range.slice()", chart.element_handle()
    )
    button = chart.locator(".updatemenu-button").first.bounding_box()
    target = (button["x"] + button["width"] / 2, button["y"] + button["height"] / 2)
    hit = page.evaluate(
        "([x, y]) => { const e = document.elementFromPoint(x, y); return e.closest('.updatemenu-button') !== null; }",
        list(target),
    )
    assert hit, "something covers the play button's centre"
    last = chart.locator(".slider-group > .slider-label").text_content()
    # the row of decodes above the map belongs to the same animation: each epoch shows that epoch's samples
    from vae_explorer.app.replay import samples_png
    from vae_explorer.checkpoints import read_epoch_frames

    uris = {
        f"epoch {f['epoch']}": "data:image/png;base64," + base64.b64encode(samples_png(f)).decode("ascii")
        for f in read_epoch_frames(REPO / "checkpoints" / "digits-iwae")
    }
    shown = "(el) => { const i = el.querySelector('.imagelayer image'); return i && i.getAttribute('href'); }"
    assert page.evaluate(shown, chart.element_handle()) == uris[last]
    page.mouse.click(*target)
    page.wait_for_function(
        f"""([el, last, uris]) => {{ const label = el.querySelector('.slider-group > .slider-label').textContent;
      return label !== last && ({shown})(el) === uris[label]; }}""",
        arg=[chart.element_handle(), last, uris],
        timeout=PATIENCE_MS,
    )  # moved off the last epoch, both together
    assert (
        page.evaluate("(el) => el.querySelector('.js-plotly-plot').layout.xaxis.range.slice()", chart.element_handle())
        == x_range
    )
    if presenting:  # no toolbar at all on a projector
        assert (
            chart.locator(".modebar-container .modebar-btn").count() == 0 or not chart.locator(".modebar").is_visible()
        )


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


# --- every demo with the real mouse, at projector size in presentation mode ---------------------------------


@pytest.fixture
def projector(browser):
    """A 1920x1080 page whose app pages open in presentation mode (conftest.open_page reads `presenting`)."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, accept_downloads=True)
    context.set_default_timeout(PATIENCE_MS)
    page = context.new_page()
    page.presenting = True
    yield page
    context.close()


def _mouse_demos() -> list:
    """The browser tests that drive a demo with the mouse alone (no values set by script), run again here at projector
    size: a module, not its functions, is imported, so pytest does not collect them twice."""
    import test_browser
    import test_live

    return [
        test_live.test_a_drag_is_decoded_in_the_browser_with_the_server_cut_off_and_settles_on_python,
        test_live.test_a_conditional_model_s_class_switches_in_the_browser_before_python_answers,
        test_live.test_pointing_at_the_pca_plane_decodes_the_place_under_the_pointer,
        test_live.test_pointing_at_the_latent_map_decodes_dots_and_empty_places_with_the_server_cut_off,
        test_live.test_drawing_is_encoded_and_decoded_in_the_browser_while_the_server_is_cut_off,
        test_live.test_a_released_drag_downloads_as_a_gif_of_its_path,
        test_live.test_compare_decodes_the_same_z_with_both_models_in_the_browser,
        test_browser.test_clicking_the_latent_map_shows_the_image,
    ]


@pytest.mark.parametrize("demo", _mouse_demos(), ids=lambda demo: demo.__name__.removeprefix("test_")[:60])
def test_each_mouse_demo_at_projector_size(projector, app_url, demo):
    demo(projector, app_url)
    assert "present=1" in projector.url  # it ran on the projector's pages, not the laptop's


def test_the_walk_reaches_a_and_b_when_its_slider_is_dragged_to_the_ends(projector, app_url):
    import numpy as np
    from conftest import open_page
    from pictures import assert_pixels_close, decoded, posterior
    from test_live import WALK, runtime_or_skip

    from vae_explorer import load_checkpoint, load_dataset

    runtime_or_skip()
    open_page(projector, app_url, "Interpolate")
    projector.wait_for_function(f"() => {{ const r = ({WALK})(); return r && r.dataset.mode === 'browser'; }}")
    checkpoint = load_checkpoint(REPO / "checkpoints" / "digits-mlp")
    data = load_dataset(checkpoint.config.data)
    b = next(i for i in range(len(data.test_y)) if data.test_y[i] != data.test_y[0])  # the page's A and B
    mu, _ = posterior(checkpoint.model, data.test_x[[0, b]])
    slider = projector.locator(".lp-t input")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    read = f"""() => {{ const r = ({WALK})(); const c = r.querySelector('canvas');
      return {{source: r.dataset.source, t: r._state.t, drawing: r._state.decoding,
               pixels: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}}; }}"""
    projector.mouse.move(box["x"] + box["width"] * 0.5, y)
    projector.mouse.down()
    for end, code, name in (
        (1.08, mu[1], "B"),
        (-0.08, mu[0], "A"),
    ):  # past each end of the track, as a hand overshoots
        for i in range(1, 13):
            projector.mouse.move(box["x"] + box["width"] * (0.5 + (end - 0.5) * i / 12), y)
            projector.wait_for_timeout(20)
        projector.wait_for_function(
            f"(t) => {{ const s = ({read})(); return s.t === t && !s.drawing && s.source === 'browser'; }}",
            arg=float(end > 0),
        )
        shown = projector.evaluate(read)
        pixels = np.array(shown["pixels"], dtype=np.uint8).reshape(8, 8, 4)[..., 0]
        assert_pixels_close(pixels, decoded(checkpoint.model, code)[0], f"the walk at {name}")
    projector.mouse.up()
    projector.wait_for_function("() => location.search.includes('interp_t=0.00')")  # released: the link keeps it


def test_the_wheel_scrolls_past_the_latent_map_and_ctrl_wheel_zooms_it(projector, app_url):
    from conftest import MAP_ROOT, map_position, open_page

    open_page(projector, app_url, "Latent_map")
    centre = map_position(projector, fraction=(0.5, 0.5))
    view = f"() => JSON.stringify(({MAP_ROOT})()._state.view)"
    top = f"() => ({MAP_ROOT})().querySelector('.lm-map').getBoundingClientRect().top"
    before, top_before = projector.evaluate(view), projector.evaluate(top)
    projector.mouse.move(*centre)
    projector.mouse.wheel(0, 300)
    projector.wait_for_function(f"(t) => ({top})() < t - 100", arg=top_before)  # the page scrolled on
    assert projector.evaluate(view) == before, "a plain wheel over the map must not zoom it"
    assert projector.evaluate(f"() => !({MAP_ROOT})().querySelector('.lm-wheel').hidden")  # and it says how to zoom
    projector.mouse.move(*map_position(projector, fraction=(0.5, 0.5)))
    top_now = projector.evaluate(top)
    projector.keyboard.down("Control")
    projector.mouse.wheel(0, -300)
    projector.keyboard.up("Control")
    projector.wait_for_function(f"(v) => ({view})() !== v", arg=before)  # zoomed in
    assert abs(projector.evaluate(top) - top_now) < 2  # and the page stayed where it was


def test_traverse_downloads_its_animation_with_a_click(projector, app_url, tmp_path):
    import io
    import re

    import numpy as np
    from conftest import open_page
    from pictures import assert_pixels_close, decoded, downscale
    from PIL import Image, ImageSequence

    from vae_explorer import load_checkpoint

    model = load_checkpoint(REPO / "checkpoints" / "digits-mlp").model
    open_page(projector, app_url, "Traverse")
    caption = projector.get_by_text(re.compile(r"^rows: ")).inner_text()
    rows = [int(d) for d in re.findall(r"z(\d+)", caption.split(";")[0])]
    button = projector.get_by_role("button", name="Download animation (GIF)")
    button.scroll_into_view_if_needed()
    with projector.expect_download() as download:
        button.click()
    with Image.open(io.BytesIO(open(download.value.path(), "rb").read())) as gif:
        frames = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(gif)]
    steps = 9  # the page's default
    assert len(frames) == 2 * steps - 2  # there and back, the ends once
    for index, value in ((0, -3.0), (steps - 1, 3.0)):  # every row side by side, at the sweep's two ends
        strip = downscale(frames[index], (8, 8 * len(rows)))
        for k, d in enumerate(rows):
            z = np.zeros(model.latent_dim)
            z[d] = value
            assert_pixels_close(strip[:, 8 * k : 8 * k + 8], decoded(model, z)[0], f"frame {index}, z{d} = {value}")

"""Decoding in the browser (vae_explorer/app/live): the Generate page's picture is decoded by the
model's ONNX graph in onnxruntime-web while a slider moves, with no message to the server, and it
settles on Python's decode after release; without WebAssembly the page says so and the server
decodes. Pixels are read off the panel's canvas and compared with the model's own layers."""

from __future__ import annotations

import base64
import hashlib
import json

import numpy as np
import pytest
from conftest import PATIENCE_MS, PATIENCE_S, REPO, error_boxes, open_page, require
from pictures import assert_pixels_close, decoded

from vae_explorer import load_checkpoint

pytestmark = pytest.mark.slow  # a browser per module: the full suite, not the fast tier


ROOT = """() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
  .map(r => r.querySelector('.ls-root')).find(Boolean)"""
CANVAS = f"""() => {{ const root = ({ROOT})(); const c = root.querySelector('canvas');
  return {{mode: root.dataset.mode, source: root.dataset.source, values: root._state.values, width: c.width, height: c.height,
           pixels: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}}; }}"""
SET_VALUES = f"""(values) => {{ const root = ({ROOT})();
  for (const input of root.querySelectorAll('.ls-row input')) {{
    input.value = String(values[Number(input.dataset.index)]);
    input.dispatchEvent(new Event('input', {{bubbles: true}}));
  }} }}"""


def runtime_or_skip():
    from vae_explorer.app.live import runtime_installed

    require(runtime_installed(), "onnxruntime-web (npm ci --prefix vae_explorer/app/live)")


def shown(page) -> tuple[dict, np.ndarray]:
    """The canvas's pixels as (H, W) grey or (H, W, 3), and its mode, source and values."""
    state = page.evaluate(CANVAS)
    rgb = np.array(state["pixels"], dtype=np.uint8).reshape(state["height"], state["width"], 4)[..., :3]
    return state, rgb[..., 0] if (rgb == rgb[..., :1]).all() else rgb


def cut_off(page) -> dict:
    """A switch between the page and the server: while `cut["on"]`, every message the page sends is
    held (counted in `cut["held"]`), none goes through."""
    cut = {"on": False, "held": 0}

    def relay(ws):
        server = ws.connect_to_server()
        ws.on_message(lambda message: cut.__setitem__("held", cut["held"] + 1) if cut["on"] else server.send(message))

    page.route_web_socket("**/_stcore/stream", relay)
    return cut


def grab_slider(page):
    """Press on the middle of the panel's first slider: (its dimension, move(fraction of its width)))."""
    slider = page.locator(".ls-row input").first
    slider.scroll_into_view_if_needed()  # as a person scrolls to it (a projector's page is taller)
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    return int(slider.get_attribute("data-index")), lambda fraction: page.mouse.move(
        box["x"] + box["width"] * fraction, y
    )


def wait_for_mode(page, mode: str) -> None:
    page.wait_for_function(
        f"() => {{ const r = ({ROOT})(); return r && r.dataset.mode === '{mode}' && r._state.drawn > 0; }}",
        timeout=PATIENCE_MS,
    )


def test_a_drag_is_decoded_in_the_browser_with_the_server_cut_off_and_settles_on_python(page, app_url):
    runtime_or_skip()
    cut = cut_off(page)
    open_page(page, app_url, "Generate")
    wait_for_mode(page, "browser")
    model = load_checkpoint(REPO / "checkpoints" / "digits-mlp").model
    dragged, move = grab_slider(page)
    cut["on"] = True
    pictures = set()
    for i in range(1, 25):
        move(0.5 + 0.45 * i / 24)
        page.wait_for_timeout(20)
        state, pixels = shown(page)
        pictures.add(pixels.tobytes())
    assert state["source"] == "browser" and len(pictures) >= 4, "the picture should change while the server is cut off"
    assert cut["held"] == 0, "a drag decoded in the browser sends nothing to the server"
    assert_pixels_close(pixels, decoded(model, state["values"])[0], "the browser's picture in mid-drag")
    cut["on"] = False
    page.mouse.up()  # released: Python hears the value, and answers with its own picture
    page.wait_for_function(f"() => ({ROOT})().dataset.source === 'server'", timeout=PATIENCE_MS)
    state, pixels = shown(page)
    assert state["values"][dragged] > 2.0 and [v for i, v in enumerate(state["values"]) if i != dragged] == [0.0] * 7
    assert_pixels_close(pixels, decoded(model, state["values"])[0], "the settled picture")
    page.wait_for_function(f"() => location.search.includes('z={state['values'][0]:.2f}')", timeout=PATIENCE_MS)
    assert error_boxes(page) == []


@pytest.mark.parametrize("model_name, label", [("fashion-mnist-conv", None), ("fashion-mnist-cvae", 7)])
def test_the_browser_decodes_a_known_z_as_python_does(page, app_url, model_name, label):
    from conftest import fashion_available

    runtime_or_skip()
    require(fashion_available(), "Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    open_page(page, app_url, "Generate", model=model_name)
    model = load_checkpoint(REPO / "checkpoints" / model_name).model
    if label is not None:
        wait_for_mode(page, "browser")
        page.locator(".ls-classes button", has_text="Sneaker").click()
        page.wait_for_function(f"() => ({ROOT})()._state.label === {label}", timeout=PATIENCE_MS)
    wait_for_mode(page, "browser")
    z = np.random.default_rng(3).uniform(-2.5, 2.5, model.latent_dim).round(2).tolist()
    page.evaluate(SET_VALUES, z)
    page.wait_for_function(f"() => ({ROOT})().dataset.source === 'browser'", timeout=PATIENCE_MS)
    page.wait_for_timeout(200)
    state, pixels = shown(page)
    assert state["values"] == z
    assert_pixels_close(pixels, decoded(model, z, label)[0], f"{model_name}'s picture decoded in the browser")


def test_a_conditional_model_s_class_switches_in_the_browser_before_python_answers(page, app_url):
    from conftest import fashion_available

    runtime_or_skip()
    require(fashion_available(), "Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    cut = cut_off(page)
    open_page(page, app_url, "Generate", model="fashion-mnist-cvae")
    wait_for_mode(page, "browser")
    page.wait_for_timeout(500)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PATIENCE_MS)
    model = load_checkpoint(REPO / "checkpoints" / "fashion-mnist-cvae").model
    cut["on"] = True
    for k in (7, 1, 9):  # Sneaker, Trouser, Ankle boot
        drawn = page.evaluate(f"() => ({ROOT})()._state.drawn")
        page.locator(".ls-classes button").nth(k).click()
        page.wait_for_function(
            f"(n) => ({ROOT})()._state.drawn > n && !({ROOT})()._state.decoding", arg=drawn, timeout=PATIENCE_MS
        )
        state, pixels = shown(page)
        assert state["source"] == "browser"
        assert_pixels_close(pixels, decoded(model, state["values"], k)[0], f"class {k}, drawn with the server cut off")
    assert page.locator(".ls-classes button[aria-checked=true]").inner_text() == "Ankle boot"
    assert cut["held"] == 3, (
        "one message per switch (the class, for Python), and the picture did not wait for an answer"
    )


def test_without_webassembly_the_page_says_so_and_the_server_decodes(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script("delete globalThis.WebAssembly")
    page = context.new_page()
    try:
        open_page(page, app_url, "Generate")
        notice = page.get_by_text("This browser could not run the decoder")
        notice.wait_for(timeout=PATIENCE_MS)
        assert (
            "this browser has no WebAssembly" in notice.inner_text() and "decoded on the server" in notice.inner_text()
        )
        wait_for_mode(page, "server")
        model = load_checkpoint(REPO / "checkpoints" / "digits-mlp").model
        before = shown(page)[1]
        slider = page.locator(".ls-row input").first
        box = slider.bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.5, y)
        page.mouse.down()
        for i in range(1, 15):
            page.mouse.move(box["x"] + box["width"] * (0.5 - 0.45 * i / 14), y)
            page.wait_for_timeout(40)
        page.mouse.up()
        page.wait_for_timeout(1500)
        state, pixels = shown(page)
        assert state["source"] == "server" and not np.array_equal(pixels, before)
        assert_pixels_close(pixels, decoded(model, state["values"])[0], "the server's picture")
        assert error_boxes(page) == []
    finally:
        context.close()


# --- what Python hands the browser (AppTest: no browser) ------------------------------------------


def _panel(at) -> dict:
    (component,) = [c for c in at.get("bidi_component") if c.proto.component_name.endswith(".latent_sliders")]
    return json.loads(component.proto.json)


def test_the_graph_handed_to_the_browser_decodes_as_the_model_and_travels_once():
    import onnxruntime
    from streamlit.testing.v1 import AppTest

    runtime_or_skip()
    at = AppTest.from_file(str(REPO / "pages/2_Generate.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = "digits-mlp"
    at.run()
    first = _panel(at)["live"]
    assert first is not None, [c.value for c in at.caption]
    assert "onnx" not in first  # a browser may hold the graph already (kept by its digest): it is sent when asked for
    at.session_state["gen_sliders"] = {"z": None, "live": {"model": first["model"], "ok": True, "need": True}}
    at.run()
    live = _panel(at)["live"]
    assert hashlib.sha1(base64.b64decode(live["onnx"])).hexdigest()[:16] == live["graph"] == first["graph"]
    model = load_checkpoint(REPO / "checkpoints" / "digits-mlp").model
    session = onnxruntime.InferenceSession(base64.b64decode(live["onnx"]), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    (image,) = session.run(None, {"z": z})
    assert live["shape"] == [1, 8, 8] and live["cond_dim"] == 0 and image.shape == (16, 1, 8, 8)
    assert_pixels_close(
        np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)[:, 0], decoded(model, z), "the graph's pictures"
    )
    # the browser says it holds these weights: the next answers carry no graph
    at.session_state["gen_sliders"] = {"z": None, "live": {"model": live["model"], "ok": True}}
    at.run()
    assert "onnx" not in _panel(at)["live"] and _panel(at)["live"]["model"] == live["model"]
    # the browser could not run it: the server decodes, and the page says why in one line
    at.session_state["gen_sliders"] = {
        "z": None,
        "live": {"model": live["model"], "ok": False, "reason": "out of memory"},
    }
    at.run()
    assert _panel(at)["live"] is None
    assert any(
        c.value == "This browser could not run the decoder (out of memory); pictures are decoded on the server."
        for c in at.caption
    )


def test_without_the_runtime_installed_the_page_says_how_to_install_it(monkeypatch):
    from streamlit.testing.v1 import AppTest

    import vae_explorer.app.live.runtime as live

    monkeypatch.setattr(live, "RUNTIME_FILES", ("node_modules/not-installed.mjs",))
    at = AppTest.from_file(str(REPO / "pages/2_Generate.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = "digits-mlp"
    at.run()
    assert _panel(at)["live"] is None
    (line,) = [c.value for c in at.caption if "decoded on the server" in c.value]
    assert "onnxruntime-web" in line and "npm ci --prefix vae_explorer/app/live" in line


WALK = """() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
  .map(r => r.querySelector('.lp-root')).find(Boolean)"""


def test_the_walk_from_a_to_b_draws_the_point_at_t_in_the_browser(page, app_url):
    import torch
    from pictures import posterior

    from vae_explorer import load_dataset
    from vae_explorer.latent import interpolate

    runtime_or_skip()
    open_page(page, app_url, "Interpolate")
    page.wait_for_function(
        f"() => {{ const r = ({WALK})(); return r && r.dataset.mode === 'browser'; }}", timeout=PATIENCE_MS
    )
    checkpoint = load_checkpoint(REPO / "checkpoints" / "digits-mlp")
    data = load_dataset(checkpoint.config.data)
    b = next(i for i in range(len(data.test_y)) if data.test_y[i] != data.test_y[0])  # B starts in another class than A
    mu, _ = posterior(checkpoint.model, data.test_x[[0, b]])  # the page's A and B: test image 0 and that one
    expected = {
        method: interpolate(torch.from_numpy(mu[0]), torch.from_numpy(mu[1]), 5, method)
        for method in ("linear", "slerp")
    }
    read = f"""() => {{ const r = ({WALK})(); const c = r.querySelector('canvas');
      return {{source: r.dataset.source, t: r._state.t, method: r._state.method,
               pixels: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}}; }}"""
    for method, t, step in (("slerp", 0.25, 1), ("linear", 0.75, 3), ("slerp", 1.0, 4)):
        page.locator(f".lp-method input[value='{method}']").check()
        page.evaluate(f"""() => {{ const r = ({WALK})(); const s = r.querySelector('input[type=range]');
          s.value = '{t}'; s.dispatchEvent(new Event('input', {{bubbles: true}})); }}""")
        page.wait_for_function(f"() => ({WALK})().dataset.source === 'browser'", timeout=PATIENCE_MS)
        page.wait_for_timeout(150)
        shown = page.evaluate(read)
        assert (shown["t"], shown["method"]) == (t, method)
        pixels = np.array(shown["pixels"], dtype=np.uint8).reshape(8, 8, 4)[..., 0]
        assert_pixels_close(
            pixels, decoded(checkpoint.model, expected[method][step].numpy())[0], f"{method} at t = {t}"
        )
    # released: Python hears t and the path, for the URL
    page.locator(".lp-t input").dispatch_event("change")
    page.wait_for_function(
        "() => location.search.includes('interp_t=1.00') && location.search.includes('interp_path=slerp')",
        timeout=PATIENCE_MS,
    )
    assert error_boxes(page) == []


GRID = """() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
  .map(r => r.querySelector('.lg-root')).find(Boolean)"""


def test_pointing_at_the_pca_plane_decodes_the_place_under_the_pointer(page, app_url):
    from pictures import pca_reference, posterior

    from vae_explorer import load_dataset
    from vae_explorer.app.cached import GRID_GAP

    runtime_or_skip()
    open_page(page, app_url, "Generate")
    page.wait_for_function(
        f"() => {{ const r = ({GRID})(); return r && r.dataset.mode === 'browser'; }}", timeout=PATIENCE_MS
    )
    checkpoint = load_checkpoint(REPO / "checkpoints" / "digits-mlp")
    mu, _ = posterior(checkpoint.model, load_dataset(checkpoint.config.data).test_x)
    coords, directions, pca = pca_reference(mu)
    spread = coords.std(0, ddof=1)
    grid = page.locator(".lg-grid")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    side = 12  # the page's default grid size
    natural = grid.evaluate("g => [g.naturalWidth, g.naturalHeight]")
    pitch = [(n - GRID_GAP) / side for n in natural]  # cells GRID_GAP apart, with a gap around them

    def at(u, k):  # where cell position u (cell centres at whole numbers) is on the screen, along axis k
        return (box["x"], box["y"])[k] + (box["width"], box["height"])[k] * (
            GRID_GAP / 2 + (u + 0.5) * pitch[k]
        ) / natural[k]

    for col, row in ((4, 1), (9.5, 6.25), (0, 11)):  # cell centres, and a place between them
        page.mouse.move(at(col, 0), at(row, 1))
        page.wait_for_timeout(150)
        a, b = -2.5 + 5 * col / (side - 1), 2.5 - 5 * row / (side - 1)
        z = pca.mean_ + a * spread[0] * directions[0] + b * spread[1] * directions[1]
        shown = page.evaluate(f"""() => {{ const r = ({GRID})(); const c = r.querySelector('canvas');
          return {{source: r.dataset.source, text: r.querySelector('output').textContent,
                   pixels: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}}; }}""")
        assert shown["source"] == "browser" and f"PC1 (sd) = {a:.2f}" in shown["text"]
        pixels = np.array(shown["pixels"], dtype=np.uint8).reshape(8, 8, 4)[..., 0]
        assert_pixels_close(
            pixels, decoded(checkpoint.model, z)[0], f"the point under the pointer at cell ({col}, {row})"
        )


def test_pointing_at_the_latent_map_decodes_dots_and_empty_places_with_the_server_cut_off(page, app_url):
    from conftest import MAP_ROOT, map_position
    from pictures import pca_reference, posterior

    from vae_explorer import load_dataset

    runtime_or_skip()
    cut = cut_off(page)
    open_page(page, app_url, "Latent_map")
    page.wait_for_function(
        f"() => {{ const r = ({MAP_ROOT})(); return r && r.dataset.mode === 'browser'; }}", timeout=PATIENCE_MS
    )
    checkpoint = load_checkpoint(REPO / "checkpoints" / "digits-mlp")
    data = load_dataset(checkpoint.config.data)
    mu, _ = posterior(checkpoint.model, data.test_x)
    _, directions, pca = pca_reference(mu)
    read = f"""() => {{ const r = ({MAP_ROOT})(); const c = r.querySelector('.lm-tip canvas');
      return {{hover: r._state.hover, drawn: r._state.drawn, busy: r._state.decoding,
               tip: r.querySelector('.lm-tip output').textContent, hidden: r.querySelector('.lm-tip').hidden,
               pixels: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}}; }}"""

    def point_at(x, y):
        drawn = page.evaluate(read)["drawn"]
        page.mouse.move(x, y)
        page.wait_for_function(
            f"(n) => {{ const s = ({MAP_ROOT})()._state; return s.drawn > n && !s.decoding; }}",
            arg=drawn,
            timeout=PATIENCE_MS,
        )
        shown = page.evaluate(read)
        return shown, np.array(shown["pixels"], dtype=np.uint8).reshape(8, 8, 4)[..., 0]

    page.wait_for_timeout(500)  # the page's report that it holds the model and the points, and Python's answer
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PATIENCE_MS)
    cut["on"] = True
    for index in (5, 100):  # a dot: its reconstruction, the decode of its posterior mean
        shown, pixels = point_at(*map_position(page, index))
        assert (
            shown["hover"]["index"] == index
            and not shown["hidden"]
            and f"test image {index}: {int(data.test_y[index])}" in shown["tip"]
        )
        assert_pixels_close(
            pixels, decoded(checkpoint.model, mu[index])[0], f"the reconstruction of test image {index}"
        )
    places = 0
    for fraction in ((0.08, 0.1), (0.92, 0.12), (0.1, 0.85), (0.9, 0.9), (0.5, 0.06)):  # the corners are mostly empty
        shown, pixels = point_at(*map_position(page, fraction=fraction))
        if "index" in shown["hover"]:
            continue
        places += 1
        x, y = shown["hover"]["x"], shown["hover"]["y"]
        assert f"PC 1 = {x:.2f}, PC 2 = {y:.2f}" in shown["tip"]
        assert_pixels_close(
            pixels,
            decoded(checkpoint.model, pca.mean_ + x * directions[0] + y * directions[1])[0],
            f"the empty place ({x:.2f}, {y:.2f})",
        )
    assert places >= 2
    assert cut["held"] == 0, "pointing at the map sends nothing to the server"
    cut["on"] = False
    assert error_boxes(page) == []


def test_the_browser_s_inverse_normal_cdf_and_slerp_match_scipy_and_torch(page, app_url):
    import torch
    from scipy.stats import norm

    from vae_explorer.latent import interpolation_at

    open_page(page, app_url, "Generate")
    base = f"{app_url}/_stcore/bidi-components"
    p = [1e-4, 0.01, 0.02425, 0.05, 0.3, 0.5, 0.77, 0.95, 0.99, 0.9999]
    a, b = [0.3, -1.2, 2.0], [1.5, 0.4, -0.7]
    got = page.evaluate(f"""async () => {{
      const grid = await import('{base}/vae-explorer.grid_explorer/grid/grid.js');
      const path = await import('{base}/vae-explorer.interpolation_walk/walk/walk.js');
      return {{probit: {p}.map(grid.probit), slerp: [0, 0.3, 1].map(t => path.pointAt({a}, {b}, t, 'slerp'))}}; }}""")
    assert got["probit"] == pytest.approx(norm.ppf(p), rel=2e-9, abs=1e-12)
    assert np.array(got["slerp"]) == pytest.approx(
        interpolation_at(torch.tensor(a), torch.tensor(b), [0, 0.3, 1], "slerp").numpy(), abs=1e-6
    )


def test_a_failing_export_is_reported_in_one_line_without_the_exporter_s_words(monkeypatch):
    from streamlit.testing.v1 import AppTest

    import vae_explorer.app.live.runtime as live

    runtime_or_skip()

    def failing(*args, **kwargs):
        raise RuntimeError("torch.onnx failed in /srv/secret/site-packages/torch/onnx/_internal.py")

    monkeypatch.setattr(live, "_browser_decoder", failing)
    at = AppTest.from_file(str(REPO / "pages/2_Generate.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = "digits-mlp"
    at.run()
    assert _panel(at)["live"] is None and not at.exception
    (line,) = [c.value for c in at.caption if "decoded on the server" in c.value]
    assert "could not be exported to ONNX" in line and "vae-explorer export-onnx" in line and "/srv" not in line


# --- the drawing pad (Reconstruct) ------------------------------------------------------------------

PAD = """() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
  .map(r => r.querySelector('.dp-root')).find(Boolean)"""
PAD_STATE = f"""() => {{ const root = ({PAD})();
  const read = (c) => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).filter((_, i) => i % 4 === 0);
  return {{mode: root.dataset.mode, source: root.dataset.source, encoded: Number(root.dataset.encoded || 0),
           mu: JSON.parse(root.dataset.mu || 'null'), sigma: JSON.parse(root.dataset.sigma || 'null'),
           input: read(root.querySelector('.dp-input')), recon: read(root.querySelector('.dp-recon'))}}; }}"""


def pad_state(page) -> dict:
    state = page.evaluate(PAD_STATE)
    state["input"] = np.array(state["input"], dtype=np.uint8).reshape(8, 8)
    state["recon"] = np.array(state["recon"], dtype=np.uint8).reshape(8, 8)
    return state


def stroke(page, points, steps_between: int = 6, pause_ms: int = 15) -> None:
    """A pen stroke through `points` (fractions of the pad), moved in small steps."""
    box = page.locator(".dp-canvas").bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(at, at[1:]):
        for i in range(1, steps_between + 1):
            page.mouse.move(x0 + (x1 - x0) * i / steps_between, y0 + (y1 - y0) * i / steps_between)
            page.wait_for_timeout(pause_ms)


def python_encoding(model, grey: np.ndarray):
    import torch

    x = torch.from_numpy(grey.astype(np.float32) / 255.0).reshape(1, 1, 8, 8)
    with torch.no_grad():
        q = model.encode(x)
    return q.mean[0].numpy(), q.stddev[0].numpy()


def test_drawing_is_encoded_and_decoded_in_the_browser_while_the_server_is_cut_off(page, app_url):
    runtime_or_skip()
    cut = cut_off(page)
    open_page(page, app_url, "Reconstruct")
    page.wait_for_function(
        f"() => {{ const r = ({PAD})(); return r && r.dataset.mode === 'browser'; }}", timeout=PATIENCE_MS
    )
    page.locator(".dp-canvas").scroll_into_view_if_needed()
    model = load_checkpoint(REPO / "checkpoints" / "digits-mlp").model
    cut["on"] = True
    stroke(page, [(0.3, 0.2), (0.7, 0.2), (0.35, 0.85)])  # a 7, pen still down
    seen = pad_state(page)
    assert seen["encoded"] >= 5, "the pad should encode while the pen moves"
    assert cut["held"] == 0, "drawing sends nothing to the server until the stroke ends"
    mu, sigma = python_encoding(model, seen["input"])
    assert np.allclose(seen["mu"], mu, atol=1e-4) and np.allclose(seen["sigma"], sigma, atol=1e-4)
    assert_pixels_close(seen["recon"], decoded(model, mu)[0], "the reconstruction drawn in the page")
    assert seen["input"].max() == 255 and seen["input"].min() == 0  # the stroke is in the input, on black
    cut["on"] = False
    page.mouse.up()  # the stroke ends: Python hears the drawing and shows its samples
    page.get_by_text("six samples z ~ q(z|x) of your drawing, decoded").wait_for(timeout=PATIENCE_MS)
    assert cut["held"] == 0
    # undo leaves a blank pad: encoded as the blank image
    page.get_by_role("button", name="Undo").click()
    page.wait_for_function(
        f"() => ({PAD})().dataset.encoded > {seen['encoded']} && ({PAD_STATE})().input.every(v => v === 0)",
        timeout=PATIENCE_MS,
    )
    blank = pad_state(page)
    assert np.allclose(blank["mu"], python_encoding(model, np.zeros((8, 8), np.uint8))[0], atol=1e-4)
    assert error_boxes(page) == []


def test_without_webassembly_the_server_encodes_each_stroke_and_a_touch_draws(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, has_touch=True)
    context.add_init_script("delete globalThis.WebAssembly")
    page = context.new_page()
    try:
        open_page(page, app_url, "Reconstruct")
        page.wait_for_function(f"() => ({PAD})()", timeout=PATIENCE_MS)
        pad = page.locator(".dp-canvas")
        pad.scroll_into_view_if_needed()
        box = pad.bounding_box()
        page.touchscreen.tap(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)  # a finger: a dot
        page.wait_for_function(f"() => ({PAD})().dataset.source === 'server'", timeout=PATIENCE_MS)
        page.wait_for_timeout(500)  # the server's pictures load as images
        model = load_checkpoint(REPO / "checkpoints" / "digits-mlp").model
        state = pad_state(page)
        assert state["mode"] == "server" and state["input"][3:5, 3:5].min() > 0  # the dot, in the middle
        mu, _ = python_encoding(model, state["input"])
        assert np.allclose(state["mu"], mu, atol=1e-4)
        assert_pixels_close(state["recon"], decoded(model, mu)[0], "the server's reconstruction")
        notice = page.get_by_text("This browser could not run the encoder")
        assert (
            "this browser has no WebAssembly" in notice.inner_text()
            and "the server encodes each stroke" in notice.inner_text()
        )
        assert error_boxes(page) == []
    finally:
        context.close()


def test_a_released_drag_downloads_as_a_gif_of_its_path(page, app_url):
    import io

    from pictures import tiles
    from PIL import Image, ImageSequence

    runtime_or_skip()
    open_page(page, app_url, "Generate")
    wait_for_mode(page, "browser")
    model = load_checkpoint(REPO / "checkpoints" / "digits-mlp").model
    dragged, move = grab_slider(page)
    for i in range(1, 31):
        move(0.5 + 0.45 * i / 30)
        page.wait_for_timeout(30)
    page.mouse.up()
    button = page.get_by_role("button", name="frames (GIF)")
    button.wait_for(timeout=PATIENCE_MS)
    frames_said = int(button.inner_text().split(",")[1].split()[0])
    with page.expect_download() as download:
        button.click()
    with Image.open(io.BytesIO(open(download.value.path(), "rb").read())) as gif:
        shown, durations = zip(*[(np.asarray(f.convert("L")), f.info["duration"]) for f in ImageSequence.Iterator(gif)])
    state = page.evaluate(CANVAS)
    # about 1 s of drag at 15 frames a second; Pillow merges identical neighbours (a pause in the drag) into one frame
    # shown for longer, so the frames said are the GIF's length in frame steps of 1/15 s (GIF stores whole centiseconds:
    # one step 60 ms, two merged 130 ms), not always its count of frames
    steps = [round(d / (1000 / 15)) for d in durations]
    assert frames_said >= 10 and len(shown) <= frames_said and min(steps) >= 1 and sum(steps) == frames_said
    start = np.zeros(model.latent_dim)
    end = np.array(state["values"])
    assert end[dragged] > 2.0
    # the first frame is the picture before the drag, the last the released one (28x upscaled 8x8, pixels outlined)
    first, last = (tiles(frame, 1, 1, (8, 8), padding=0)[0] for frame in (shown[0], shown[-1]))
    assert_pixels_close(first, decoded(model, start)[0], "the drag's first frame")
    assert_pixels_close(last, decoded(model, end)[0], "the drag's last frame")
    assert len({frame.tobytes() for frame in shown}) >= 5  # it moves


def test_compare_decodes_the_same_z_with_both_models_in_the_browser(page, app_url):
    runtime_or_skip()
    cut = cut_off(page)
    open_page(page, app_url, "Compare")
    page.wait_for_function(
        f"() => {{ const r = ({ROOT})(); const t = r && r.querySelector('.ls-twin canvas'); "
        "return r && r.dataset.mode === 'browser' && t && t.dataset.mode === 'browser'; }",
        timeout=PATIENCE_MS,
    )
    first = load_checkpoint(REPO / "checkpoints" / "digits-mlp").model
    second = load_checkpoint(REPO / "checkpoints" / "digits-free-bits").model  # the page's first choice for digits-mlp
    page.locator(".ls-row input").first.scroll_into_view_if_needed()
    dragged, move = grab_slider(page)
    cut["on"] = True
    for i in range(1, 16):
        move(0.5 + 0.4 * i / 15)
        page.wait_for_timeout(25)
    both = page.evaluate(f"""() => {{ const r = ({ROOT})(); const read = (c) => Array.from(c.getContext('2d')
      .getImageData(0, 0, c.width, c.height).data).filter((_, i) => i % 4 === 0);
      const t = r.querySelector('.ls-twin canvas');
      return {{values: r._state.values, source: r.dataset.source, twin: t.dataset.source,
               a: read(r.querySelector('.ls-picture > canvas')), b: read(t)}}; }}""")
    assert cut["held"] == 0 and both["source"] == "browser" and both["twin"] == "browser"
    assert both["values"][dragged] > 1.5
    assert_pixels_close(
        np.array(both["a"], np.uint8).reshape(8, 8), decoded(first, both["values"])[0], "digits-mlp's picture"
    )
    assert_pixels_close(
        np.array(both["b"], np.uint8).reshape(8, 8), decoded(second, both["values"])[0], "digits-free-bits' picture"
    )
    cut["on"] = False
    page.mouse.up()
    assert error_boxes(page) == []


def test_a_browser_is_sent_a_graph_once_and_a_new_tab_decodes_from_its_own_copy(browser, app_url):
    from vae_explorer.checkpoints import decoder_onnx

    runtime_or_skip()
    graph = len(base64.b64encode(decoder_onnx(load_checkpoint(REPO / "checkpoints" / "digits-mlp")).read_bytes()))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(PATIENCE_MS)
    received = []

    def visit() -> int:
        """A new tab opens Generate until it decodes in the page: the bytes the server sent it."""
        page = context.new_page()
        counted = {"bytes": 0}
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived", lambda payload: counted.__setitem__("bytes", counted["bytes"] + len(payload))
            ),
        )
        open_page(page, app_url, "Generate")
        wait_for_mode(page, "browser")
        page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PATIENCE_MS)
        page.wait_for_timeout(500)
        received.append(page.evaluate(f"() => ({ROOT})().dataset.mode"))
        page.close()
        return counted["bytes"]

    try:
        first, second = visit(), visit()
    finally:
        context.close()
    assert received == ["browser", "browser"]
    assert first - second >= 0.9 * graph, (
        f"the first tab got {first:,} bytes, the second {second:,}; the graph is {graph:,}"
    )


def test_each_component_served_inline_is_one_module_with_common_js_before_it(tmp_path):
    """A clone Streamlit does not know as an installed package gets each component inline, where it
    cannot import ../common.js: runtime._inline puts common.js first, and the text must be one valid
    module (no import left, no name declared twice) that still exports the component."""
    import shutil
    import subprocess

    from conftest import require

    from vae_explorer.app.live.runtime import _inline

    node = shutil.which("node")
    require(node is not None, "Node.js (apt-get install npm)")
    for folder in ("sliders", "walk", "grid", "map", "pad", "paint"):
        text = _inline(folder)
        assert 'common.js";' not in text and "export default function" in text
        assert "\nexport function outlinePixels" not in text and "function outlinePixels" in text
        module = tmp_path / f"{folder}.mjs"
        module.write_text(text)
        checked = subprocess.run([node, "--check", str(module)], capture_output=True, text=True)
        assert checked.returncode == 0, f"{folder}: {checked.stderr}"


PAINT = """() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
  .map(r => r.querySelector('.pt-root')).find(Boolean)"""


def test_painting_on_a_channel_is_decoded_in_the_browser_as_the_model_decodes_the_painted_latent(page, app_url):
    """A stroke of the mouse over the decoded photo on the Latent diffusion page (the shipped photos-spatial):
    while the button is down nothing goes to the server, the picture changes where the brush went, and
    every pixel is the model's own decode of the latent painted with the dabs the page made."""
    import io

    import torch
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from vae_explorer.latent.spatial import paint_latent

    runtime_or_skip()
    cut = cut_off(page)
    open_page(page, app_url, "Latent_diffusion")
    photo = load_sample_image("flower.jpg")[150:246, 200:328]  # 96 x 128, not a training photo
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")
    page.locator("input[type=file]").first.set_input_files(
        files=[{"name": "flower.png", "mimeType": "image/png", "buffer": buffer.getvalue()}]
    )
    page.wait_for_function(
        f"() => {{ const r = ({PAINT})(); return r && r.dataset.mode === 'browser' && r._state.pixels; }}",
        timeout=PATIENCE_MS,
    )
    canvas = page.locator(".pt-image")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    cut["on"] = True
    page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.3 * box["height"])
    page.mouse.down()
    for i in range(1, 13):
        page.mouse.move(box["x"] + (0.2 + 0.05 * i) * box["width"], box["y"] + (0.3 + 0.03 * i) * box["height"])
        page.wait_for_timeout(15)
    page.wait_for_function(
        f"() => {{ const r = ({PAINT})(); return Number(r.dataset.decodes) >= 3 && !r._state.decoding && !r._state.dirty; }}",
        timeout=PATIENCE_MS,
    )
    seen = page.evaluate(
        f"""() => {{ const r = ({PAINT})(); const c = r.querySelector('.pt-image');
        return {{dabs: r._state.dabs, source: r.dataset.source, width: c.width, height: c.height,
                 pixels: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}}; }}"""
    )
    assert cut["held"] == 0, "painting sends nothing to the server until the stroke ends"
    assert seen["source"] == "browser" and len(seen["dabs"]) >= 12
    model = load_checkpoint(REPO / "checkpoints" / "photos-spatial").model
    x = torch.from_numpy(photo.astype(np.float32) / 255).permute(2, 0, 1)
    with torch.no_grad():
        mean = model.encode(x[None]).mean[0]
        before = model.generate(mean[None])[0]
        after = model.generate(paint_latent(mean, seen["dabs"])[None])[0]
    as_uint8 = lambda t: (t.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)  # noqa: E731
    shown = np.array(seen["pixels"], dtype=np.uint8).reshape(seen["height"], seen["width"], 4)[..., :3]
    assert_pixels_close(shown, as_uint8(after), "the painted picture")
    assert np.abs(shown.astype(int) - as_uint8(before).astype(int)).max() > 10  # the brush changed it
    cut["on"] = False
    page.mouse.up()  # the stroke ends: Python hears the dabs
    page.wait_for_function(f"() => ({PAINT})()._state.answered >= 1", timeout=PATIENCE_MS)  # Python's painting 1
    assert error_boxes(page) == []


def test_the_copying_brush_brings_the_second_photo_s_latent_in_as_the_model_decodes_it(page, app_url):
    """With a second photo on the page, the painter's "copy from the second photo" brush: a stroke of the
    mouse moves the first latent toward the second's where it passes, decoded in the browser as the model
    decodes latent.spatial.paint_latent with the second latent as the source."""
    import io

    import torch
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from vae_explorer.latent.spatial import paint_latent

    runtime_or_skip()
    open_page(page, app_url, "Latent_diffusion")
    first, second = load_sample_image("flower.jpg")[150:214, 200:264], load_sample_image("china.jpg")[100:164, 150:214]
    files = []
    for name, pixels in (("first.png", first), ("second.png", second)):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        files.append({"name": name, "mimeType": "image/png", "buffer": buffer.getvalue()})
    page.locator("input[type=file]").first.set_input_files(files=[files[0]])
    page.get_by_text("A second photo (resized to the first one's size)").wait_for(timeout=PATIENCE_MS)
    second_box = page.locator('[data-testid="stFileUploader"]').filter(has_text="A second photo")
    second_box.locator("input[type=file]").set_input_files(files=[files[1]])
    page.wait_for_function(
        f"""() => {{ const r = ({PAINT})(); return r && r.dataset.mode === 'browser' && r._state.pixels && r._state.source; }}""",
        timeout=PATIENCE_MS,
    )
    page.locator(".pt-channels input[value='-1']").check()
    canvas = page.locator(".pt-image")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.5 * box["height"])
    page.mouse.down()
    for i in range(1, 8):
        page.mouse.move(box["x"] + (0.3 + 0.05 * i) * box["width"], box["y"] + 0.5 * box["height"])
        page.wait_for_timeout(15)
    page.wait_for_function(
        f"() => {{ const r = ({PAINT})(); return Number(r.dataset.decodes) >= 2 && !r._state.decoding && !r._state.dirty; }}",
        timeout=PATIENCE_MS,
    )
    seen = page.evaluate(
        f"""() => {{ const r = ({PAINT})(); const c = r.querySelector('.pt-image');
        return {{dabs: r._state.dabs, width: c.width, height: c.height,
                 pixels: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}}; }}"""
    )
    page.mouse.up()
    assert seen["dabs"] and all(d[0] == -1 and d[4] == 1 for d in seen["dabs"])
    model = load_checkpoint(REPO / "checkpoints" / "photos-spatial").model
    with torch.no_grad():
        a, b = (
            model.encode(torch.from_numpy(x.astype(np.float32) / 255).permute(2, 0, 1)[None]).mean[0]
            for x in (first, second)
        )
        after = model.generate(paint_latent(a, seen["dabs"], b)[None])[0]
    shown_pixels = np.array(seen["pixels"], dtype=np.uint8).reshape(seen["height"], seen["width"], 4)[..., :3]
    assert_pixels_close(
        shown_pixels, (after.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8), "the copied-into picture"
    )
    assert error_boxes(page) == []

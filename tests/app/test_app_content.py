"""Each page shows what it says: the pixels and numbers on the page, read back from AppTest, against
answers computed here from the model's own layers and the data (see pictures.py)."""

import base64
import json
import math

import numpy as np
import pytest
import torch
from conftest import PATIENCE_S, REPO, fashion_available, require
from pictures import (
    Media,
    as_pixels,
    assert_pixels_close,
    data_uri_pixels,
    decoded,
    downscale,
    pca_reference,
    plotly_spec,
    plotly_values,
    posterior,
    tiles,
)
from safetensors.numpy import load_file
from scipy.stats import norm
from streamlit.testing.v1 import AppTest

from vae_explorer import load_checkpoint, load_dataset

CHECKPOINTS = REPO / "checkpoints"


@pytest.fixture
def media(monkeypatch):
    return Media(monkeypatch)


def run(page: str, model: str = "digits-mlp", **params) -> AppTest:
    if model.startswith("fashion"):
        require(fashion_available(), "Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    at = AppTest.from_file(str(REPO / page), default_timeout=PATIENCE_S)
    at.query_params.update({"model": model, **params})
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def shipped(name: str):
    checkpoint = load_checkpoint(CHECKPOINTS / name)
    return checkpoint, load_dataset(checkpoint.config.data)


# --- Home ---------------------------------------------------------------------------------------------


def test_home_shows_the_models_metrics_size_and_prior_samples(media):
    checkpoint, _ = shipped("digits-mlp")
    at = run("Home.py")
    metrics = json.loads((CHECKPOINTS / "digits-mlp" / "metrics.json").read_text())
    shown = {m.label: m.value for m in at.metric}
    assert shown["neg-ELBO"] == f"{metrics['neg_elbo']:.2f}" and shown["KL"] == f"{metrics['kl']:.2f}"
    assert shown[f"IWAE, k={metrics['iwae_k']}"] == f"{metrics['iwae_nll']:.2f}"
    parameters = sum(t.size for t in load_file(CHECKPOINTS / "digits-mlp" / "model.safetensors").values())
    assert any(f"{parameters:,} parameters" in m.value for m in at.markdown)
    samples = tiles(media.image(at, "z ~ N(0, I), decoded"), 32, 8, (8, 8))
    z = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))
    assert_pixels_close(samples, decoded(checkpoint.model, z), "prior samples")
    at.button(key="home_new_samples").click().run()
    again = tiles(media.image(at, "z ~ N(0, I), decoded"), 32, 8, (8, 8))
    assert_pixels_close(
        again, decoded(checkpoint.model, torch.randn(32, 8, generator=torch.Generator().manual_seed(1)))
    )


def test_home_samples_of_a_conditional_model_run_one_class_per_column(media):
    checkpoint, _ = shipped("fashion-mnist-cvae")
    at = run("Home.py", "fashion-mnist-cvae")
    samples = tiles(media.image(at, "z ~ N(0, I), decoded: each column one class"), 30, 10, (28, 28))
    z = torch.randn(30, 16, generator=torch.Generator().manual_seed(0))
    for i in (0, 7, 13, 29):
        assert_pixels_close(samples[i], decoded(checkpoint.model, z[i], label=i % 10)[0], f"sample {i}")


# --- Reconstruct ----------------------------------------------------------------------------------------


def test_reconstruct_rows_show_each_test_image_over_its_own_reconstruction(media):
    checkpoint, data = shipped("digits-mlp")
    at = run("pages/1_Reconstruct.py")
    at.slider(key="recon_count").set_value(8).run()
    at.number_input(key="recon_start").set_value(16).run()
    grid = tiles(
        media.image(at, "Rows alternate: test images, then their reconstructions from the posterior mean."),
        16,
        8,
        (8, 8),
    )
    x = data.test_x[16:24]
    mu, _ = posterior(checkpoint.model, x)
    assert_pixels_close(grid[:8], as_pixels(x), "test images 16-23")
    assert_pixels_close(grid[8:], decoded(checkpoint.model, mu), "their reconstructions")


def _png(shape: str) -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("L", (64, 64), 255)
    draw = ImageDraw.Draw(image)
    if shape == "bar":
        draw.rectangle((28, 6, 36, 58), fill=0)
    else:
        draw.ellipse((14, 8, 50, 56), outline=0, width=7)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_reconstruct_each_upload_shows_its_own_encoding(media):
    from vae_explorer.data.uploads import prepare_image

    checkpoint, _ = shipped("digits-mlp")
    at = run("pages/1_Reconstruct.py")
    uploads = {"bar.png": _png("bar"), "ring.png": _png("ring")}
    at.file_uploader(key="recon_uploads").set_value([(name, data, "image/png") for name, data in uploads.items()]).run()
    inputs = [downscale(p, (8, 8)) for c, p in media.images(at) if c == "as the model sees it"]
    recons = [downscale(p, (8, 8)) for c, p in media.images(at) if c == "reconstruction"]
    bars = [plotly_spec(chart)["data"][0] for chart in at.get("plotly_chart")]
    assert len(inputs) == len(recons) == len(bars) == 2
    for i, data in enumerate(uploads.values()):
        x = prepare_image(data, (1, 8, 8))
        mu, sigma = posterior(checkpoint.model, x[None])
        assert_pixels_close(inputs[i], as_pixels(x[None])[0], f"upload {i} as the model sees it")
        assert_pixels_close(recons[i], decoded(checkpoint.model, mu)[0], f"upload {i} reconstructed")
        assert plotly_values(bars[i]["y"]) == pytest.approx(mu[0], abs=1e-5)
        assert plotly_values(bars[i]["error_y"]["array"]) == pytest.approx(sigma[0], abs=1e-5)
    assert not np.array_equal(inputs[0], inputs[1])


# --- Generate -------------------------------------------------------------------------------------------


def _slider_picture(at) -> tuple[np.ndarray, dict]:
    (component,) = [c for c in at.get("bidi_component") if c.proto.component_name.endswith(".latent_sliders")]
    data = json.loads(component.proto.json)
    return data_uri_pixels(data["image"]), data


def test_generate_moving_one_slider_changes_only_its_coordinate_and_the_picture_follows():
    checkpoint, _ = shipped("digits-mlp")
    at = run("pages/2_Generate.py", z="0.5,-1,0.25,2,0,1.5,-0.5,0.75")
    picture, data = _slider_picture(at)
    start = [0.5, -1, 0.25, 2, 0, 1.5, -0.5, 0.75]
    assert data["values"] == start
    assert_pixels_close(picture, decoded(checkpoint.model, start)[0], "the picture of the URL's z")
    for i, value in ((3, -2.25), (6, 1.0)):
        moved = list(at.session_state["gen_z"])
        moved[i] = value
        at.session_state["gen_sliders"] = {"z": {"values": moved, "version": at.session_state["gen_version"], "seq": i}}
        before = list(at.session_state["gen_z"])
        at.run()
        after = at.session_state["gen_z"]
        assert [j for j in range(8) if after[j] != before[j]] == [i] and after[i] == value
        picture, data = _slider_picture(at)
        assert_pixels_close(picture, decoded(checkpoint.model, after)[0], f"the picture after moving z{i}")
        assert data["seq"] == i  # the answer carries the value's sequence number back


def _grid(at) -> tuple[np.ndarray, dict]:
    """Generate's grid (the picture under the pointer-decoding panel) and what the browser gets to map a cell to z."""
    (component,) = [c for c in at.get("bidi_component") if c.proto.component_name.endswith(".grid_explorer")]
    data = json.loads(component.proto.json)
    return data_uri_pixels(data["grid"]), data


def _cell_z(data: dict, col: float, row: float) -> np.ndarray:
    """z at a cell position as grid.js computes it from the panel's origin and axes."""
    z = np.array(data["origin"], dtype=float)
    for axis, u in zip(data["axes"], (col, row)):
        if axis:
            t = axis["start"] + axis["step"] * u
            z += (norm.ppf(t) if axis["kind"] == "probit" else t) * np.array(axis["vector"])
    return z


def test_generate_pca_plane_is_the_plane_of_the_encoded_test_set():
    checkpoint, data = shipped("digits-mlp")
    at = run("pages/2_Generate.py")
    at.slider(key="gen_grid_side").set_value(7).run()
    picture, panel = _grid(at)
    grid = tiles(picture, 49, 7, (8, 8), padding=panel["gap"])
    gap = panel["gap"]
    assert gap >= 1 and (picture[:gap] == 255).all() and (picture[:, :gap] == 255).all()  # cells apart, on white
    scale = (picture.shape[1] - 8 * gap) // (7 * 8)
    assert scale >= 6  # 8x8 digits large enough for their pixels to be outlined: each block's last row is a line
    block = picture[gap : gap + 8 * scale, gap : gap + 8 * scale]
    assert (block[scale - 1 :: scale, ::scale] != block[::scale, ::scale]).all()
    mu, _ = posterior(checkpoint.model, data.test_x)
    coords, directions, pca = pca_reference(mu)
    spread = coords.std(0, ddof=1)
    steps = np.linspace(-2.5, 2.5, 7)
    for row, col in ((3, 3), (0, 0), (0, 6), (6, 2)):
        z = pca.mean_ + steps[col] * spread[0] * directions[0] + steps[::-1][row] * spread[1] * directions[1]
        assert_pixels_close(grid[row * 7 + col], decoded(checkpoint.model, z)[0], f"cell ({row}, {col})")
        assert _cell_z(panel, col, row) == pytest.approx(z, abs=1e-5)  # pointing at its centre decodes the same z


def test_generate_manifold_of_a_2d_model_runs_z0_right_and_z1_up():
    checkpoint, _ = shipped("fashion-mnist-2d")
    at = run("pages/2_Generate.py", "fashion-mnist-2d")
    at.slider(key="gen_grid_side").set_value(8).run()
    picture, panel = _grid(at)
    grid = tiles(picture, 64, 8, (28, 28), padding=panel["gap"])
    q = norm.ppf(np.linspace(0.05, 0.95, 8))
    for row, col in ((0, 0), (0, 7), (7, 0), (3, 5)):
        assert_pixels_close(
            grid[row * 8 + col], decoded(checkpoint.model, [q[col], q[7 - row]])[0], f"cell ({row}, {col})"
        )
        assert _cell_z(panel, col, row) == pytest.approx([q[col], q[7 - row]], abs=1e-6)


def test_generate_class_picker_of_a_conditional_model():
    checkpoint, _ = shipped("fashion-mnist-cvae")
    at = run("pages/2_Generate.py", "fashion-mnist-cvae", z=",".join(["0.5"] * 16), gen_class="2")
    picture, panel = _slider_picture(at)
    assert panel["classes"] == checkpoint.config.model.class_names and panel["label"] == 2  # the link's class
    assert_pixels_close(picture, decoded(checkpoint.model, [0.5] * 16, label=2)[0], "class 2 (Pullover), from the link")
    # the panel switched to Sneaker: Python's picture, the grid below and the URL follow
    at.session_state["gen_sliders"] = {"z": None, "live": None, "label": {"value": 7, "version": panel["version"]}}
    at.run()
    picture, panel = _slider_picture(at)
    assert_pixels_close(picture, decoded(checkpoint.model, [0.5] * 16, label=7)[0], "class 7 (Sneaker)")
    assert panel["label"] == 7 and at.query_params["gen_class"] == "7"
    grid, cells = _grid(at)
    side = cells["cols"]
    centre = tiles(grid, side * side, side, (28, 28), padding=cells["gap"])[0]
    assert_pixels_close(
        centre, decoded(checkpoint.model, _cell_z(cells, 0, 0), label=7)[0], "the grid's first cell, as a Sneaker"
    )
    # a class from an older panel, or out of range: ignored
    for stale in ({"value": 3, "version": panel["version"] - 1}, {"value": 99, "version": panel["version"]}):
        at.session_state["gen_sliders"] = {"z": None, "live": None, "label": stale}
        at.run()
        assert _slider_picture(at)[1]["label"] == 7


# --- Latent map -----------------------------------------------------------------------------------------


def _map(at) -> dict:
    (component,) = [c for c in at.get("bidi_component") if c.proto.component_name.endswith(".latent_map")]
    return json.loads(component.proto.json)


def _map_points(at) -> tuple[np.ndarray, np.ndarray]:
    """The dots the latent map draws: coordinates (N, 2) in test-set order, and the class of each."""
    cloud = _map(at)["cloud"]
    coords = np.frombuffer(base64.b64decode(cloud["coords"]), "<f4").reshape(-1, 2)
    return coords, np.frombuffer(base64.b64decode(cloud["labels"]), np.uint8)


def test_latent_map_pca_places_each_test_image_by_its_posterior_mean():
    checkpoint, data = shipped("digits-mlp")
    at = run("pages/3_Latent_map.py")
    coords, labels = _map_points(at)
    mu, _ = posterior(checkpoint.model, data.test_x)
    expected, directions, pca = pca_reference(mu)
    assert coords == pytest.approx(expected, abs=1e-4)
    assert (labels == data.test_y.numpy()).all()
    # what the browser turns a place into: z = mean + x * direction0 + y * direction1
    plane = _map(at)["plane"]
    assert plane["mean"] == pytest.approx(pca.mean_, abs=1e-5) and plane["directions"] == pytest.approx(
        directions, abs=1e-5
    )
    assert _map(at)["names"] == checkpoint.config.model.class_names


def test_latent_map_tsne_shows_the_kept_map():
    checkpoint, data = shipped("digits-mlp")
    at = run("pages/3_Latent_map.py", map_method="t-SNE")
    coords, _ = _map_points(at)
    (kept,) = (CHECKPOINTS / "digits-mlp" / "embeddings").glob("tsne-n359-p30-*.npy")
    assert coords == pytest.approx(np.load(kept), abs=1e-4)
    assert _map(at)["plane"] is None  # only dots can be pointed at on a t-SNE map


def test_latent_map_places_an_upload_where_pca_puts_its_mean():
    from vae_explorer.data.uploads import prepare_image

    checkpoint, data = shipped("digits-mlp")
    at = run("pages/3_Latent_map.py")
    at.sidebar.file_uploader(key="map_upload").set_value(("ring.png", _png("ring"), "image/png")).run()
    mu, _ = posterior(checkpoint.model, data.test_x)
    _, directions, pca = pca_reference(mu)
    z, _ = posterior(checkpoint.model, prepare_image(_png("ring"), (1, 8, 8))[None])
    assert _map(at)["star"] == pytest.approx(((z - pca.mean_) @ directions.T)[0], abs=1e-4)


def test_latent_map_encodes_an_upload_to_a_conditional_model_with_the_class_asked_for():
    from vae_explorer.data.uploads import prepare_image

    checkpoint, data = shipped("fashion-mnist-cvae")
    at = run("pages/3_Latent_map.py", "fashion-mnist-cvae")
    at.sidebar.file_uploader(key="map_upload").set_value(("shoe.png", _png("ring"), "image/png")).run()
    at.sidebar.selectbox(key="map_upload_class").select(7).run()
    mu = np.stack([posterior(checkpoint.model, data.test_x[i : i + 1], int(data.test_y[i]))[0][0] for i in range(2000)])
    _, directions, pca = pca_reference(mu)
    z, _ = posterior(checkpoint.model, prepare_image(_png("ring"), (1, 28, 28))[None], 7)
    assert _map(at)["star"] == pytest.approx(((z - pca.mean_) @ directions.T)[0], abs=1e-4)


def _click(at, picked: dict) -> None:
    at.session_state["map_view"] = {"picked": picked, "held": None, "live": None}
    at.run()
    assert not at.exception, [e.message for e in at.exception]


def test_latent_map_shows_a_clicked_dot_and_a_clicked_place(media):
    checkpoint, data = shipped("digits-mlp")
    at = run("pages/3_Latent_map.py")
    _click(at, {"index": 17})
    assert any(m.value == f"**Test image 17**: {int(data.test_y[17])}" for m in at.markdown)
    mu, _ = posterior(checkpoint.model, data.test_x[17:18])
    assert_pixels_close(
        downscale(media.image(at, "the image"), (8, 8)), as_pixels(data.test_x[17:18])[0], "the clicked image"
    )
    assert_pixels_close(
        downscale(media.image(at, "its reconstruction"), (8, 8)), decoded(checkpoint.model, mu)[0], "its reconstruction"
    )
    _click(at, {"x": 1.25, "y": -0.5, "label": 0})
    all_mu, _ = posterior(checkpoint.model, data.test_x)
    _, directions, pca = pca_reference(all_mu)
    z = pca.mean_ + np.array([1.25, -0.5]) @ directions
    assert_pixels_close(
        downscale(media.image(at, "z = mean + position along the PCA plane"), (8, 8)),
        decoded(checkpoint.model, z)[0],
        "the clicked place",
    )
    for nonsense in ({"index": 10_000}, {"index": "a"}, {"x": float("nan"), "y": 0}):  # never an error box
        _click(at, nonsense)
        assert any("Click a dot" in i.value for i in at.info)


def test_latent_map_place_of_a_conditional_model_decodes_with_the_nearest_class(media):
    checkpoint, data = shipped("fashion-mnist-cvae")
    at = run("pages/3_Latent_map.py", "fashion-mnist-cvae")
    _click(at, {"x": 0.5, "y": 0.25, "label": 7})
    mu = np.stack([posterior(checkpoint.model, data.test_x[i : i + 1], int(data.test_y[i]))[0][0] for i in range(2000)])
    _, directions, pca = pca_reference(mu)
    z = pca.mean_ + np.array([0.5, 0.25]) @ directions
    image = media.image(at, "z = mean + position along the PCA plane, class Sneaker")
    assert_pixels_close(downscale(image, (28, 28)), decoded(checkpoint.model, z, label=7)[0], "the place, as a Sneaker")


def test_latent_map_of_every_image_puts_the_test_images_first_and_names_a_training_image(media):
    checkpoint, data = shipped("digits-mlp")
    n_test, n_all = len(data.test_x), len(data.test_x) + len(data.train_x)
    at = run("pages/3_Latent_map.py", map_points=str(n_all))
    coords, labels = _map_points(at)
    mu = np.concatenate([posterior(checkpoint.model, data.test_x)[0], posterior(checkpoint.model, data.train_x)[0]])
    assert (
        coords == pytest.approx(pca_reference(mu)[0], abs=1e-4)
        and (labels == np.concatenate([data.test_y, data.train_y])).all()
    )
    _click(at, {"index": n_test + 5})
    assert any(m.value == f"**Training image 5**: {int(data.train_y[5])}" for m in at.markdown)
    assert_pixels_close(
        downscale(media.image(at, "the image"), (8, 8)), as_pixels(data.train_x[5:6])[0], "training image 5"
    )


@pytest.mark.slow
def test_latent_map_umap_is_computed_in_the_background_then_shown():
    from vae_explorer.latent.maps import map_files

    checkpoint, data = shipped("digits-mlp")
    at = run("pages/3_Latent_map.py", map_method="UMAP", map_neighbours="12")
    assert not [
        c for c in at.get("bidi_component") if c.proto.component_name.endswith(".latent_map")
    ]  # not computed inline
    from vae_explorer.app.catalog import stamp

    path = str(CHECKPOINTS / "digits-mlp")
    task = at.session_state["map_queue"].status((path, stamp(path), "umap", 12.0, "test", len(data.test_x)))
    assert task is not None and task.finished.wait(180) and task.state == "done"
    at.run()
    coords, _ = _map_points(at)
    beside, in_cache = map_files(checkpoint.path, "umap", len(data.test_x), 12)
    assert not beside.exists() and coords == pytest.approx(
        np.load(in_cache), abs=1e-5
    )  # a shipped model's map: the cache


def test_latent_map_points_travel_once_per_tab():
    at = run("pages/3_Latent_map.py")
    cloud = _map(at)["cloud"]
    assert "coords" in cloud
    at.session_state["map_view"] = {"picked": None, "held": {"id": cloud["id"], "ok": True}, "live": None}
    at.run()
    assert _map(at)["cloud"] == {"id": cloud["id"]}  # the page holds them: only their digest
    at.session_state["map_view"] = {"picked": None, "held": {"id": cloud["id"], "ok": False}, "live": None}
    at.run()
    assert _map(at)["cloud"]["coords"] == cloud["coords"]  # it lost them: sent again


# --- Interpolate ----------------------------------------------------------------------------------------


def test_interpolation_frames_run_from_a_to_b(media):
    checkpoint, data = shipped("digits-mlp")
    at = run("pages/4_Interpolate.py", interp_A="5", interp_B="12", interp_steps="5")
    strip = tiles(media.image(at, "top row: linear; bottom row: slerp"), 10, 5, (8, 8))
    mu, _ = posterior(checkpoint.model, data.test_x[[5, 12]])
    a, b = mu
    omega = math.acos(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    for row in (0, 1):
        assert_pixels_close(strip[row * 5], decoded(checkpoint.model, a)[0], f"row {row} starts at A")
        assert_pixels_close(strip[row * 5 + 4], decoded(checkpoint.model, b)[0], f"row {row} ends at B")
    assert_pixels_close(strip[2], decoded(checkpoint.model, (a + b) / 2)[0], "the linear midpoint")
    middle = (a + b) * math.sin(omega / 2) / math.sin(omega)
    assert_pixels_close(strip[7], decoded(checkpoint.model, middle)[0], "the slerp midpoint")
    norms = {t["name"]: plotly_values(t["y"]) for t in plotly_spec(at.get("plotly_chart")[0])["data"]}
    assert norms["linear"][2] == pytest.approx(np.linalg.norm((a + b) / 2), rel=1e-5)
    assert norms["slerp"][2] == pytest.approx(np.linalg.norm(middle), rel=1e-5)
    # what the caption says: linear runs below the line between the end lengths; slerp between codes of equal length keeps it
    t = np.linspace(0, 1, 5)
    assert (norms["linear"][1:-1] < ((1 - t) * np.linalg.norm(a) + t * np.linalg.norm(b))[1:-1]).all()
    caption = next(c.value for c in at.caption if c.value.startswith("Linear interpolation cuts the corner"))
    assert "two codes of equal length keep that length" in caption and "√d" in caption
    from vae_explorer.latent import interpolation_at

    b_scaled = b * np.linalg.norm(a) / np.linalg.norm(b)
    along = interpolation_at(torch.from_numpy(a), torch.from_numpy(b_scaled), np.linspace(0, 1, 9), "slerp").numpy()
    assert np.linalg.norm(along, axis=1) == pytest.approx(np.full(9, np.linalg.norm(a)), rel=1e-5)


def test_an_upload_replaces_the_end_point_it_was_meant_for(media):
    from vae_explorer.data.uploads import prepare_image

    checkpoint, data = shipped("digits-mlp")
    at = run("pages/4_Interpolate.py", interp_A="5", interp_B="12", interp_steps="5")
    at.file_uploader(key="interp_upload_B").set_value(("bar.png", _png("bar"), "image/png")).run()
    strip = tiles(media.image(at, "top row: linear; bottom row: slerp"), 10, 5, (8, 8))
    upload, _ = posterior(checkpoint.model, prepare_image(_png("bar"), (1, 8, 8))[None])
    a, _ = posterior(checkpoint.model, data.test_x[5:6])
    assert_pixels_close(strip[0], decoded(checkpoint.model, a)[0], "A is still test image 5")
    assert_pixels_close(strip[4], decoded(checkpoint.model, upload)[0], "B is now the upload")
    ends = media.images(at)[:2]
    assert [caption for caption, _ in ends] == [
        f"A: test image 5, {int(data.test_y[5])}",
        "B: your upload",
    ]  # not a test image's class
    assert all(pixels.shape[0] >= 192 for _, pixels in ends)  # large enough to see from the back of a room
    assert_pixels_close(downscale(ends[0][1], (8, 8)), as_pixels(data.test_x[5:6])[0], "image A")
    assert_pixels_close(
        downscale(ends[1][1], (8, 8)), as_pixels(prepare_image(_png("bar"), (1, 8, 8))[None])[0], "image B"
    )


def test_an_upload_to_a_conditional_model_is_encoded_with_the_class_asked_for(media):
    from vae_explorer.data.uploads import prepare_image

    checkpoint, data = shipped("fashion-mnist-cvae")
    at = run("pages/4_Interpolate.py", "fashion-mnist-cvae", interp_A="5", interp_B="12", interp_steps="5")
    at.file_uploader(key="interp_upload_A").set_value(("shoe.png", _png("bar"), "image/png")).run()
    at.selectbox(key="interp_upload_class_A").select(7).run()
    x = prepare_image(_png("bar"), (1, 28, 28))[None]
    a, _ = posterior(checkpoint.model, x, 7)
    strip = tiles(media.image(at, "top row: linear; bottom row: slerp"), 10, 5, (28, 28))
    assert_pixels_close(
        strip[0], decoded(checkpoint.model, a, label=7)[0], "A: the upload encoded and decoded as a Sneaker"
    )
    assert media.images(at)[0][0] == "A: your upload, encoded as Sneaker"


def test_four_corners_and_latent_arithmetic(media):
    checkpoint, data = shipped("digits-mlp")
    at = run("pages/4_Interpolate.py", interp_A="5", interp_B="12")
    at.number_input(key="interp_C").set_value(20).run()
    at.number_input(key="interp_D").set_value(33).run()
    at.slider(key="interp_side").set_value(4).run()
    grid = tiles(
        media.image(at, "corners: A top-left, B top-right, C bottom-left, D bottom-right"), 16, 4, (8, 8), padding=1
    )
    mu, _ = posterior(checkpoint.model, data.test_x)
    for cell, index in ((0, 5), (3, 12), (12, 20), (15, 33)):
        assert_pixels_close(grid[cell], decoded(checkpoint.model, mu[index])[0], f"corner at test image {index}")
    labels = data.test_y.numpy()
    centroid = {k: mu[labels == k].mean(0) for k in (7, 5)}  # the page's defaults: plus 7, minus 5, amount 1
    parts = tiles(media.images(at)[-1][1], 4, 4, (8, 8))
    assert_pixels_close(parts[1], decoded(checkpoint.model, centroid[7])[0], "centroid of 7")
    assert_pixels_close(parts[3], decoded(checkpoint.model, mu[5] + centroid[7] - centroid[5])[0], "A + 7 - 5")


# --- Traverse -------------------------------------------------------------------------------------------


def test_each_traversal_row_varies_only_its_dimension(media):
    checkpoint, data = shipped("digits-mlp")
    at = run("pages/5_Traverse.py", trav_dims="4,0,6", trav_steps="5")
    grid = tiles(media.images(at)[0][1], 15, 5, (8, 8))
    values = np.linspace(-3, 3, 5)
    for row, dim in enumerate([4, 0, 6]):
        z = np.zeros((5, 8))
        z[:, dim] = values
        assert_pixels_close(grid[row * 5 : row * 5 + 5], decoded(checkpoint.model, z), f"row {row} (z{dim})")
    at.selectbox(key="trav_start").set_value("a test image").run()
    at.number_input(key="trav_index").set_value(9).run()
    grid = tiles(media.images(at)[0][1], 15, 5, (8, 8))
    mu, sigma = posterior(checkpoint.model, data.test_x[:2000])
    z = np.tile(mu[9], (5, 1))
    z[:, 0] = values
    assert_pixels_close(grid[5:10], decoded(checkpoint.model, z), "z0 swept from test image 9")
    kl = (0.5 * (mu**2 + sigma**2 - 1 - np.log(sigma**2))).mean(0)
    bars = plotly_spec(at.get("plotly_chart")[0])["data"][0]
    order = np.argsort(-kl)
    assert list(bars["x"]) == [f"z{i}" for i in order] and plotly_values(bars["y"]) == pytest.approx(
        kl[order], rel=1e-4
    )


# --- Learn ----------------------------------------------------------------------------------------------


def test_learn_reparameterization_numbers_follow_the_sliders():
    at = run("pages/6_Learn.py")
    at.slider(key="learn_mu").set_value(1.5)
    at.slider(key="learn_sigma").set_value(0.4)
    at.slider(key="learn_eps").set_value(-2.0).run()
    kl = 0.5 * (1.5**2 + 0.4**2 - 1 - math.log(0.4**2))
    assert any(f"KL of this q from the prior: {kl:.2f} nats" in c.value for c in at.caption)
    figure = plotly_spec(at.get("plotly_chart")[0])
    assert figure["layout"]["shapes"][0]["x0"] == pytest.approx(1.5 + 0.4 * -2.0)
    q = figure["data"][1]
    x, y = plotly_values(q["x"]), plotly_values(q["y"])
    assert y == pytest.approx(norm.pdf(x, 1.5, 0.4), rel=1e-4)


def test_learn_collapse_chart_shows_kl_per_dimension():
    checkpoint, data = shipped("digits-mlp")
    at = run("pages/6_Learn.py")
    mu, sigma = posterior(checkpoint.model, data.test_x)
    kl = (0.5 * (mu**2 + sigma**2 - 1 - np.log(sigma**2))).mean(0)
    bars = plotly_spec(at.get("plotly_chart")[-1])["data"][0]
    assert plotly_values(bars["y"]) == pytest.approx(np.sort(kl)[::-1], rel=1e-4)
    active = int((mu.var(0, ddof=1) > 0.01).sum())
    assert any(f"{active} of 8 dimensions are active" in c.value for c in at.caption)


# --- Evaluate -------------------------------------------------------------------------------------------


def test_evaluate_table_matches_the_model_computed_here():
    checkpoint, data = shipped("digits-mlp")
    at = run("pages/8_Evaluate.py")
    at.selectbox(key="eval_k").select(10)
    at.selectbox(key="eval_test_images").select(500).run()
    table = at.table[0].value
    rows = dict(zip(table["metric"], table["digits-mlp"]))
    mu, sigma = posterior(checkpoint.model, data.test_x)
    kl = 0.5 * (mu**2 + sigma**2 - 1 - np.log(sigma**2))
    assert rows["KL"] == f"{kl.sum(1).mean():.2f}"
    assert rows["active units"] == f"{int((mu.var(0, ddof=1) > 0.01).sum())} of 8"
    assert rows["test images"] == f"{len(data.test_x):,}"
    metrics = checkpoint.metrics  # measured on the whole test set (359 images) with the same seed
    assert rows["neg-ELBO"] == f"{metrics['neg_elbo']:.2f}" and rows["reconstruction"] == f"{metrics['recon']:.2f}"
    assert float(rows["IWAE bound, k = 10"]) <= float(rows["neg-ELBO"])
    bars = plotly_spec(at.get("plotly_chart")[0])["data"][0]
    assert plotly_values(bars["y"]) == pytest.approx(kl.mean(0), rel=1e-4)


def test_evaluate_compares_the_objectives_on_the_same_data():
    at = run("pages/8_Evaluate.py")
    at.selectbox(key="eval_k").select(10)
    at.multiselect(key="eval_models").set_value(["digits-mlp", "digits-iwae", "digits-free-bits"])
    at.selectbox(key="eval_test_images").select(500).run()
    table = at.table[0].value
    rows = {metric: i for i, metric in enumerate(table["metric"])}
    assert [table[name][rows["trained with"]] for name in ("digits-mlp", "digits-iwae", "digits-free-bits")] == [
        "ELBO",
        "IWAE bound, k = 5",
        "ELBO, free bits 0.5 nats",
    ]
    active = {}
    for name in ("digits-mlp", "digits-free-bits"):
        checkpoint, data = shipped(name)
        mu, _ = posterior(checkpoint.model, data.test_x)
        active[name] = int((mu.var(0, ddof=1) > 0.01).sum())
        assert table[name][rows["active units"]] == f"{active[name]} of 8"
    assert active["digits-free-bits"] > active["digits-mlp"]


# --- Train ----------------------------------------------------------------------------------------------


def test_train_page_shows_the_saved_models_history_and_reconstructions(media, tmp_path, monkeypatch):
    from test_app_train import submit, train_page, wait_until_finished

    from vae_explorer.app import catalog

    monkeypatch.setattr(catalog, "TRAINED_DIR", tmp_path / "runs")
    at = submit(train_page(train_name="watched", **{"train__train__epochs": 2}), "Start training")
    assert wait_until_finished(at).status == "done"
    trained = load_checkpoint(tmp_path / "runs" / "watched")
    data = load_dataset(trained.config.data)
    curves = {
        (trace["name"], trace["xaxis"]): plotly_values(trace["y"])
        for trace in plotly_spec(at.get("plotly_chart")[0])["data"]
    }
    assert curves[("train", "x")] == pytest.approx([r["train_loss"] for r in trained.history])
    assert curves[("test", "x")] == pytest.approx([r["test_loss"] for r in trained.history])
    assert curves[("test", "x3")] == pytest.approx([r["test_kl"] for r in trained.history])
    strip = tiles(media.image(at, "Test images (top) and their reconstructions now (bottom)"), 16, 8, (8, 8))
    mu, _ = posterior(trained.model, data.test_x[:8])
    assert_pixels_close(strip[:8], as_pixels(data.test_x[:8]), "the first test images")
    assert_pixels_close(strip[8:], decoded(trained.model, mu), "their reconstructions by the saved model")


def test_generate_shows_the_line_of_a_1d_model(media, tmp_path, monkeypatch, tiny_data):
    from vae_explorer import ModelConfig, RunConfig, TrainConfig, build_model, fit_to_data, save_checkpoint
    from vae_explorer.app import catalog

    monkeypatch.setattr(catalog, "TRAINED_DIR", tmp_path / "runs")
    config = RunConfig(
        model=fit_to_data(ModelConfig(latent_dim=1, hidden_sizes=[8]), tiny_data.image_shape, tiny_data.class_names),
        train=TrainConfig(epochs=1),
    )
    model = build_model(config.model, seed=0)
    save_checkpoint(tmp_path / "runs" / "one-d", model, config, [])
    at = run("pages/2_Generate.py", "one-d")
    at.slider(key="gen_grid_side").set_value(9).run()
    picture, panel = _grid(at)
    line = tiles(picture, 9, 9, (8, 8), padding=panel["gap"])
    assert_pixels_close(line, decoded(model, norm.ppf(np.linspace(0.05, 0.95, 9))[:, None]), "the 1-D manifold")


def test_learn_shows_how_a_checkpoint_s_dimensions_learned_when_its_history_holds_it(
    tiny_checkpoint, tmp_path, monkeypatch
):
    import shutil

    from vae_explorer.app import catalog

    monkeypatch.setattr(catalog, "TRAINED_DIR", tmp_path / "runs")
    shutil.copytree(tiny_checkpoint, tmp_path / "runs" / "tiny")
    history = load_checkpoint(tmp_path / "runs" / "tiny").history
    at = AppTest.from_file(str(REPO / "pages/6_Learn.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = "tiny"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    (figure,) = [
        plotly_spec(c)
        for c in at.get("plotly_chart")
        if any(t.get("type") == "heatmap" for t in plotly_spec(c)["data"])
    ]
    heatmap, active = figure["data"]
    z = heatmap["z"]
    kl = (
        plotly_values(z).reshape([int(v) for v in str(z["shape"]).split(",")])
        if isinstance(z, dict)
        else np.array(z, float)
    )
    assert kl.shape == (2, len(history))  # one row per latent dimension, one column per epoch
    assert kl == pytest.approx(np.array([r["test_kl_per_dim"] for r in history]).T, rel=1e-6)
    assert list(plotly_values(active["y"])) == [sum(v > 0.01 for v in r["test_mu_var"]) for r in history]
    # a shipped checkpoint trained before these were recorded shows no such figure
    at = run("pages/6_Learn.py")
    assert not [c for c in at.get("plotly_chart") if any(t.get("type") == "heatmap" for t in plotly_spec(c)["data"])]


def test_learn_shows_the_vamp_prior_pseudo_inputs_and_the_comparison(media):
    import torch
    from pictures import tiles

    checkpoint, _ = shipped("digits-vamp")
    at = run("pages/6_Learn.py", "digits-vamp")
    pseudo = tiles(media.image(at, "digits-vamp: its first 16 pseudo-inputs, as learned"), 16, 8, (8, 8))
    expected = torch.sigmoid(checkpoint.model.pseudo_logits[:16].detach())[:, 0].numpy() * 255
    assert np.abs(pseudo.astype(float) - expected).max() <= 1.0
    table = next(d.value for d in at.table if "what changes" in d.value)
    rows = dict(zip(table["model"], table["IWAE bound (k=100)"]))
    assert rows["digits-vamp"] == f"{checkpoint.metrics['iwae_nll']:.2f}" and len(rows) == 5


def test_home_and_generate_draw_from_the_models_own_prior(media):
    checkpoint, _ = shipped("digits-two-level")
    at = run("Home.py", "digits-two-level")
    samples = tiles(
        media.image(at, "z from its two-level prior (z2 ~ N(0, I), then z ~ p(z|z2)), decoded"), 32, 8, (8, 8)
    )
    from vae_explorer.latent import sample_prior

    expected = sample_prior(checkpoint.model, 32, seed=0)[:, 0].numpy() * 255
    assert np.abs(samples.astype(float) - expected).max() <= 1.0


def _pad(at) -> dict:
    (component,) = [c for c in at.get("bidi_component") if c.proto.component_name.endswith(".drawing_pad")]
    return json.loads(component.proto.json)


def test_a_drawing_from_the_pad_is_encoded_by_python_and_kept_for_other_pages(media):
    import base64

    import torch

    checkpoint, _ = shipped("digits-mlp")
    grey = np.zeros((8, 8), np.uint8)
    grey[1:7, 3:5] = 255
    grey[1, 2] = 128
    at = run("pages/1_Reconstruct.py")
    assert _pad(at)["result"] is None and _pad(at)["shape"] == [1, 8, 8]
    at.session_state["recon_pad"] = {
        "drawing": {"pixels": base64.b64encode(grey.tobytes()).decode(), "seq": 3, "strokes": 2}
    }
    at.run()
    result = _pad(at)["result"]
    with torch.no_grad():
        q = checkpoint.model.encode(torch.from_numpy(grey.astype(np.float32) / 255).reshape(1, 1, 8, 8))
    assert result["seq"] == 3 and np.allclose(result["mu"], q.mean[0].numpy(), atol=1e-6)
    assert np.allclose(result["sigma"], q.stddev[0].numpy(), atol=1e-6)
    assert np.array_equal(data_uri_pixels(result["input"]), grey)
    assert_pixels_close(
        data_uri_pixels(result["recon"]), decoded(checkpoint.model, q.mean.numpy())[0], "the reconstruction"
    )
    assert "six samples z ~ q(z|x) of your drawing, decoded" in [c for c, _ in media.images(at)]
    kept = at.session_state["drawing"]
    assert kept["shape"] == [1, 8, 8] and np.array_equal(
        (kept["image"][0].numpy() * 255).round().astype(np.uint8), grey
    )
    # what a page cannot use is ignored, never an error: the wrong size, not base64, a cleared pad
    for sent in (
        {"pixels": base64.b64encode(bytes(10)).decode(), "seq": 4, "strokes": 1},
        {"pixels": "%%%", "seq": 5, "strokes": 1},
        {"pixels": base64.b64encode(grey.tobytes()).decode(), "seq": 6, "strokes": 0},
    ):
        at.session_state["recon_pad"] = {"drawing": sent}
        at.run()
        assert not at.exception and not at.error and _pad(at)["result"] is None


def test_the_drawing_is_an_end_point_on_interpolate_and_a_star_on_the_latent_map():
    import torch

    checkpoint, _ = shipped("digits-mlp")
    grey = np.zeros((1, 8, 8), np.float32)
    grey[0, 1:7, 3:5] = 1.0
    drawing = {"model": str(checkpoint.path), "shape": [1, 8, 8], "image": torch.from_numpy(grey), "label": None}
    with torch.no_grad():
        mu = checkpoint.model.encode(torch.from_numpy(grey)[None]).mean[0].numpy()
    at = AppTest.from_file(str(REPO / "pages/4_Interpolate.py"), default_timeout=PATIENCE_S)
    at.session_state["drawing"] = drawing
    at.run()
    at.checkbox(key="interp_drawing_A").check().run()
    assert not at.exception and "A: your drawing" in [i for e in at.get("image") for i in e.captions]
    walk = next(
        json.loads(c.proto.json)
        for c in at.get("bidi_component")
        if c.proto.component_name.endswith(".interpolation_walk")
    )
    assert np.allclose(walk["a"], mu, atol=1e-5)
    at = AppTest.from_file(str(REPO / "pages/3_Latent_map.py"), default_timeout=PATIENCE_S)
    at.session_state["drawing"] = drawing
    at.run()
    assert not at.exception and at.sidebar.checkbox(key="map_drawing").value
    codes, _ = posterior(checkpoint.model, load_dataset(checkpoint.config.data).test_x)
    _, directions, pca = pca_reference(codes)
    assert _map(at)["star"] == pytest.approx((mu - pca.mean_) @ directions.T, abs=1e-4)


def test_a_released_drag_is_offered_as_gif_and_mp4_and_a_bad_one_is_ignored():
    at = run("pages/2_Generate.py")
    version = at.session_state["gen_version"]
    path = [[0.1 * i] + [0.0] * 7 for i in range(12)]
    for drag, offered in (([[float("nan")] * 8] * 3, False), ([[0.0] * 5] * 3, False), ("junk", False), (path, True)):
        at.session_state["gen_sliders"] = {"z": {"values": path[-1], "version": version, "seq": 3, "drag": drag}}
        at.run()
        assert not at.exception and not at.error
        labels = [d.proto.label for d in at.get("download_button")]
        assert ("Your last drag, 12 frames (GIF)" in labels and "Your last drag (MP4)" in labels) == offered, (
            drag,
            labels,
        )
    assert at.session_state["gen_drag"]["path"] == path


# --- Compare ------------------------------------------------------------------------------------------


def _sliders(at) -> dict:
    (component,) = [c for c in at.get("bidi_component") if c.proto.component_name.endswith(".latent_sliders")]
    return json.loads(component.proto.json)


def test_compare_decodes_the_same_z_with_both_models_and_reconstructs_the_same_image(media):
    first, data = shipped("digits-mlp")
    at = run("pages/9_Compare.py")
    assert (
        at.selectbox(key="cmp_other").value == "digits-free-bits"
    )  # the same data and latent size first, in the picker's order
    at.selectbox(key="cmp_other").select("digits-vamp").run()
    second, _ = shipped("digits-vamp")
    version = at.session_state["cmp_version"]
    z = [1.5, -1.0, 0.5, 0.0, 2.0, -0.5, 0.0, 1.0]
    at.session_state["cmp_sliders"] = {"z": {"values": z, "version": version, "seq": 2}}
    at.run()
    panel = _sliders(at)
    assert panel["caption"] == "digits-mlp" and panel["twin"]["caption"] == "digits-vamp"
    assert_pixels_close(data_uri_pixels(panel["image"]), decoded(first.model, z)[0], "the first model's picture of z")
    assert_pixels_close(
        data_uri_pixels(panel["twin"]["image"]), decoded(second.model, z)[0], "the second model's picture of z"
    )
    at.number_input(key="cmp_image").set_value(7).run()
    for name, model in (("digits-mlp", first.model), ("digits-vamp", second.model)):
        caption = next(c for c, _ in media.images(at) if c.startswith(f"{name}: reconstruction"))
        mu, _ = posterior(model, data.test_x[7:8])
        assert_pixels_close(
            downscale(media.image(at, caption), (8, 8)), decoded(model, mu)[0], f"{name}'s reconstruction"
        )
    traversals = [c for c, _ in media.images(at) if c.endswith("the others at 0")]
    assert len(traversals) == 2


def test_a_compare_link_keeps_the_pair_and_z_and_its_sliders_name_both_models_kl():
    first, data = shipped("digits-mlp")
    second, _ = shipped("digits-free-bits")  # N(0, I) priors: KL per dimension in closed form
    z = [1.5, -1.0, 0.5, 0.0, 2.0, -0.5, 0.0, 1.0]
    at = run("pages/9_Compare.py", cmp_other="digits-free-bits", z=",".join(map(str, z)))
    assert at.selectbox(key="cmp_other").value == "digits-free-bits"
    panel = _sliders(at)
    assert panel["values"] == pytest.approx(z)
    assert_pixels_close(
        data_uri_pixels(panel["twin"]["image"]), decoded(second.model, z)[0], "the link's z, second model"
    )
    assert at.query_params["cmp_other"] == "digits-free-bits" and at.query_params["z"] == ",".join(
        f"{v:.2f}" for v in z
    )
    kls = []
    for checkpoint in (first, second):  # KL per dimension from the posteriors, as the sliders should say it
        mu, sigma = posterior(checkpoint.model, data.test_x)
        kls.append(((0.5 * (mu**2 + sigma**2 - 1 - np.log(sigma**2))).mean(0), mu.var(0, ddof=1) > 0.01))
    (kl_a, active_a), (kl_b, active_b) = kls
    order = [d["index"] for d in panel["dims"]]
    assert order == list(np.argsort(-np.maximum(kl_a, kl_b), kind="stable"))  # most KL in either model first
    for d in panel["dims"]:
        i = d["index"]
        assert d["label"] == f"z{i}  ·  {kl_a[i]:.2f} | {kl_b[i]:.2f} nats"
        assert d["collapsed"] == (not active_a[i] and not active_b[i])
    assert any(not d["collapsed"] for d in panel["dims"])
    # a link naming a model that is not here: the usual pick, no error
    at = run("pages/9_Compare.py", cmp_other="no-such-model")
    assert at.selectbox(key="cmp_other").value == "digits-free-bits" and not at.error
    at = run("pages/9_Compare.py", cmp_other="digits-vamp")
    assert at.selectbox(key="cmp_other").value == "digits-vamp" and at.query_params["cmp_other"] == "digits-vamp"


def test_compare_says_when_one_z_cannot_drive_both_and_offers_a_class_for_a_conditional_model(needs_fashion):
    at = run("pages/9_Compare.py", "fashion-mnist-2d")
    at.selectbox(key="cmp_other").select("fashion-mnist-cvae").run()
    assert any(
        "fashion-mnist-2d has 2 latent dimensions and fashion-mnist-cvae 16: one z cannot drive both" in i.value
        for i in at.info
    )
    assert not [c for c in at.get("bidi_component") if c.proto.component_name.endswith(".latent_sliders")]
    assert at.selectbox(key="cmp_label").label == "Class for fashion-mnist-cvae (conditional)"
    assert not at.exception and not at.error


def test_compare_reconstructs_the_same_upload_with_both_models(media):
    from vae_explorer.data.uploads import prepare_image

    first, _ = shipped("digits-mlp")
    second, _ = shipped("digits-two-level")
    at = run("pages/9_Compare.py")
    at.selectbox(key="cmp_other").select("digits-two-level")
    at.radio(key="cmp_source").set_value("an upload").run()
    at.file_uploader(key="cmp_upload").set_value(("ring.png", _png("ring"), "image/png")).run()
    assert not at.exception and not at.error
    x = prepare_image(_png("ring"), (1, 8, 8))
    assert np.array_equal(downscale(media.image(at, "the input"), (8, 8)), as_pixels(x[None])[0])
    for name, model in (("digits-mlp", first.model), ("digits-two-level", second.model)):
        caption = next(c for c, _ in media.images(at) if c.startswith(f"{name}: reconstruction"))
        mu, _ = posterior(model, x[None])
        assert_pixels_close(
            downscale(media.image(at, caption), (8, 8)), decoded(model, mu)[0], f"{name}'s reconstruction"
        )
    at.file_uploader(key="cmp_upload").set_value(("notes.png", b"not an image", "image/png")).run()
    assert [e.value for e in at.error] == [
        "notes.png is not an image this app can read; upload a PNG, JPEG, BMP, WebP or GIF image."
    ]


@pytest.mark.parametrize(
    "t, path, expected",
    [
        ("nan", "zigzag", (0.5, "slerp")),
        ("7", "linear", (1.0, "linear")),
        ("-1", "slerp", (0.0, "slerp")),
        ("0.25", "", (0.25, "slerp")),
    ],
)
def test_a_walk_link_s_values_are_used_when_they_can_be_and_replaced_when_not(t, path, expected):
    at = run("pages/4_Interpolate.py", interp_t=t, interp_path=path)
    (walk,) = [c for c in at.get("bidi_component") if c.proto.component_name.endswith(".interpolation_walk")]
    data = json.loads(walk.proto.json)
    assert (data["t"], data["method"]) == expected and not at.error


@pytest.mark.parametrize("given, expected", [("9", 9), ("10", 0), ("x", 0), ("-1", 0)])
def test_a_class_in_a_link_is_taken_only_when_the_model_has_it(needs_fashion, given, expected):
    at = run("pages/2_Generate.py", "fashion-mnist-cvae", gen_class=given)
    assert _slider_picture(at)[1]["label"] == expected and not at.error

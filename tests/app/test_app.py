"""AppTest: every page with every shipped checkpoint renders without an exception, and each page
answers at least one interaction."""

import io

import pytest
from conftest import MODEL_PAGES, PATIENCE_S, REPO, fashion_available, require, shown
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

MODELS = [
    "digits-mlp",
    "digits-iwae",
    "digits-free-bits",
    "digits-vamp",
    "digits-two-level",
    "fashion-mnist-conv",
    "fashion-mnist-2d",
    "fashion-mnist-cvae",
    "shapes-betavae",
    "shapes-vae",
]


def open_page(page: str, model: str = "digits-mlp") -> AppTest:
    if model.startswith("fashion"):
        require(fashion_available(), "Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    at = AppTest.from_file(str(REPO / page), default_timeout=PATIENCE_S)
    at.query_params["model"] = model
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title, (
        "the page drew no title: it did not run (a page that fails to compile draws nothing, and no exception)"
    )


# The fast tier opens every page on digits-mlp and every model on Home and Generate; the rest of the
# matrix is marked slow.
MATRIX = [
    (page, model)
    if model == "digits-mlp" or page in ("Home.py", "pages/2_Generate.py")
    else pytest.param(page, model, marks=pytest.mark.slow)
    for model in MODELS
    for page in MODEL_PAGES
]


@pytest.mark.parametrize("page, model", MATRIX)
def test_every_page_with_every_shipped_model(page, model):
    at = open_page(page, model)
    assert_clean(at)
    assert at.query_params["model"] == [model] or at.query_params["model"] == model


def drawing(invert=False, size=(120, 90)) -> bytes:
    """A dark-on-light stroke, like a photo of a digit drawn on paper."""
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).ellipse((35, 15, 85, 75), outline="black", width=9)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_home_picker_switches_model():
    at = open_page("Home.py")
    at.sidebar.selectbox[0].select("shapes-betavae").run()
    assert_clean(at)
    assert at.session_state["model"] == "shapes-betavae"
    assert any("shapes" in m.value for m in at.markdown)


def test_reconstruct_upload_and_bad_file():
    at = open_page("pages/1_Reconstruct.py")
    at.file_uploader(key="recon_uploads").set_value(
        [("circle.png", drawing(), "image/png"), ("notes.png", b"this is not an image", "image/png")]
    ).run()
    assert not at.exception
    assert any("notes.png is not an image" in e.value for e in at.error)
    assert any("circle.png" in m.value for m in at.markdown)  # the good file is still shown
    assert len(at.get("plotly_chart")) >= 1  # mu and sigma per dimension


def test_reconstruct_more_test_images():
    at = open_page("pages/1_Reconstruct.py")
    at.slider(key="recon_count").set_value(32).run()
    assert_clean(at)


def test_generate_buttons_and_dragged_values():
    at = open_page("pages/2_Generate.py")
    assert at.session_state["gen_z"] == [0.0] * 8
    at.button(key="gen_random").click().run()
    assert_clean(at)
    assert at.session_state["gen_z"] != [0.0] * 8
    version = at.session_state["gen_version"]
    # What the browser sends during a drag: the component's state for the current version.
    at.session_state["gen_sliders"] = {"z": {"values": [1.5] + [0.0] * 7, "version": version, "seq": 3}}
    at.run()
    assert_clean(at)
    assert at.session_state["gen_z"][0] == 1.5
    assert (
        at.query_params["z"][0].startswith("1.50")
        if isinstance(at.query_params["z"], list)
        else at.query_params["z"].startswith("1.50")
    )
    at.button(key="gen_reset").click().run()
    assert at.session_state["gen_z"] == [0.0] * 8


def test_generate_reads_a_shared_url():
    at = AppTest.from_file(str(REPO / "pages/2_Generate.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = "digits-mlp"
    at.query_params["z"] = "0.5,-1,2,0,0,0,0,9"
    at.run()
    assert_clean(at)
    assert at.session_state["gen_z"] == [0.5, -1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0]  # clipped to the slider range
    assert [w.value for w in at.warning] == [
        "Values of the z in this link outside -3 to 3 were set to the sliders' ends."
    ]


@pytest.mark.parametrize(
    "z, notice",
    [
        (
            "nan,inf,0,0,0,0,0,0",
            "The z in this link holds values that are not finite numbers (nan or inf); starting from zero.",
        ),
        ("1,2,3", "The z in this link has 3 values, but digits-mlp has 8 latent dimensions; starting from zero."),
        ("abc", "The z in this link could not be read (it should be numbers separated by commas); starting from zero."),
    ],
)
def test_a_link_with_a_z_that_cannot_be_used_says_so_in_one_line(z, notice):
    at = AppTest.from_file(str(REPO / "pages/2_Generate.py"), default_timeout=PATIENCE_S)
    at.query_params.update({"model": "digits-mlp", "z": z})
    at.run()
    assert_clean(at)
    assert [w.value for w in at.warning] == [notice] and at.session_state["gen_z"] == [0.0] * 8
    at.button(key="gen_random").click().run()  # said once: not again on the next rerun
    assert not at.warning


@pytest.mark.parametrize("name", ["../../etc", "no-such-model", "x`y*"])
def test_a_link_naming_a_model_the_server_lacks_says_so_and_shows_the_default(name):
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = name
    at.run()
    assert_clean(at)
    assert [shown(w.value) for w in at.warning] == [
        f"This link asks for a model called {name}, which this server does not have; "
        "showing digits-mlp instead (pick another in the sidebar)."
    ]  # as typed, as text
    assert at.session_state["model"] == "digits-mlp" and at.query_params["model"] == "digits-mlp"
    at.run()
    assert not at.warning


def test_latent_map_methods():
    at = open_page("pages/3_Latent_map.py")
    at.radio(key="map_method").set_value("t-SNE").run()
    assert_clean(at)
    at.radio(key="map_method").set_value("PCA").run()
    assert_clean(at)


def test_interpolate_steps_and_upload():
    at = open_page("pages/4_Interpolate.py")
    at.slider(key="interp_steps").set_value(6).run()
    assert_clean(at)
    at.file_uploader(key="interp_upload_A").set_value(("circle.png", drawing(), "image/png")).run()
    assert_clean(at)


def test_traverse_from_a_test_image():
    at = open_page("pages/5_Traverse.py")
    at.selectbox(key="trav_start").set_value("a test image").run()
    assert_clean(at)
    at.multiselect(key="trav_dims").set_value([]).run()
    assert any("Pick at least one" in i.value for i in at.info)


def test_uploading_a_checkpoint_zip(tiny_checkpoint, tmp_path, monkeypatch):
    import zipfile

    from vae_explorer.app import catalog

    monkeypatch.setattr(catalog, "TRAINED_DIR", tmp_path / "runs")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for f in tiny_checkpoint.iterdir():
            archive.write(f, f"tiny/{f.name}")
    at = open_page("Home.py")
    at.sidebar.file_uploader(key="upload_checkpoint").set_value(
        ("my tiny.zip", buffer.getvalue(), "application/zip")
    ).run()
    assert_clean(at)
    assert at.session_state["model"] == "my-tiny"
    assert (tmp_path / "runs" / "uploaded" / "my-tiny" / "model.safetensors").is_file()
    at.sidebar.file_uploader(key="upload_checkpoint").set_value(("evil.zip", b"not a zip", "application/zip")).run()
    assert any("evil.zip is not a zip file" in e.value for e in at.error)


def test_selections_round_trip_through_the_url():
    at = AppTest.from_file(str(REPO / "pages/5_Traverse.py"), default_timeout=PATIENCE_S)
    at.query_params.update({"model": "digits-mlp", "trav_dims": "1,3", "trav_steps": "7"})
    at.run()
    assert_clean(at)
    assert at.session_state["trav_dims"] == [1, 3] and at.session_state["trav_steps"] == 7
    at = AppTest.from_file(str(REPO / "pages/3_Latent_map.py"), default_timeout=PATIENCE_S)
    at.query_params.update({"model": "digits-mlp", "map_method": "t-SNE", "map_perplexity": "999"})  # 999: out of range
    at.run()
    assert_clean(at)
    assert at.session_state["map_method"] == "t-SNE" and at.session_state["map_perplexity"] == 30


def test_learn_page_reparameterization_slider():
    at = open_page("pages/6_Learn.py")
    at.slider(key="learn_eps").set_value(-2.0).run()
    assert_clean(at)
    assert any("ε = -2.0" in c.value for c in at.caption)


def test_evaluate_shows_two_checkpoints_side_by_side():
    at = open_page("pages/8_Evaluate.py")
    at.selectbox(key="eval_k").select(10)
    at.selectbox(key="eval_test_images").select(500)
    at.multiselect(key="eval_models").set_value(["digits-mlp", "shapes-betavae"]).run()
    assert not at.exception, [e.message for e in at.exception]
    table = at.table[0].value
    assert list(table.columns) == ["metric", "digits-mlp", "shapes-betavae", "meaning"]
    rows = dict(zip(table["metric"], zip(table["digits-mlp"], table["shapes-betavae"])))
    for metric in ("neg-ELBO", "KL", "IWAE bound, k = 10", "active units", "FID (samples)"):
        assert all(value != "—" for value in rows[metric]), metric
    assert rows["MIG ↑"][0] == "—" and float(rows["MIG ↑"][1]) >= 0  # disentanglement only where factors are known
    assert float(rows["neg-ELBO"][0]) >= float(rows["IWAE bound, k = 10"][0])
    assert len(at.get("plotly_chart")) == 3  # KL per dimension, the gap histogram, MIG per factor
    assert "different datasets" in at.warning[0].value


def test_presentation_mode_enlarges_type_and_pictures_and_is_kept_in_the_link():
    import json

    def panel(at) -> dict:
        (component,) = [c for c in at.get("bidi_component") if c.proto.component_name.endswith(".latent_sliders")]
        return json.loads(component.proto.json)

    at = AppTest.from_file(str(REPO / "pages/2_Generate.py"), default_timeout=PATIENCE_S)
    at.query_params.update({"model": "digits-mlp", "present": "1"})
    at.run()
    assert_clean(at)
    assert at.sidebar.toggle(key="present_toggle").value is True
    assert any("html { font-size: 22px; }" in m.value for m in at.markdown)  # the larger root font: every rem grows
    assert panel(at)["picture_px"] == 420  # 280 x 1.5
    at.sidebar.toggle(key="present_toggle").set_value(False).run()
    assert panel(at)["picture_px"] == 280 and "present" not in at.query_params
    assert not any("font-size: 22px" in m.value for m in at.markdown)

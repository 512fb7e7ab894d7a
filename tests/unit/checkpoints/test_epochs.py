"""A run keeps what its model made of fixed inputs after every epoch (epochs.safetensors), and the
Learn page replays it for the saved checkpoint: the frames against the models recomputed here."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from conftest import PATIENCE_S, REPO, TINY_DATA, TINY_MODEL

from vae_explorer import RunConfig, TrainConfig, build_model, fit_to_data, load_checkpoint, load_dataset
from vae_explorer.checkpoints import read_epoch_frames
from vae_explorer.latent import encode_means, sample_prior
from vae_explorer.runs import prepare_run, train_run


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    config = RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=3, batch_size=32, lr=3e-3, seed=0, device="cpu"))
    out = tmp_path_factory.mktemp("runs") / "replayed"
    train_run(prepare_run(config, out))
    return out


def test_every_epoch_and_the_start_are_kept_and_are_the_models_own_numbers(run_folder):
    frames = read_epoch_frames(run_folder)
    assert [f["epoch"] for f in frames] == [0, 1, 2, 3]
    data = load_dataset(TINY_DATA)
    final = load_checkpoint(run_folder).model
    mu, _ = encode_means(final, data.test_x[:500])
    # a 2-D model's plane is z itself
    assert np.allclose(frames[-1]["scatter"], mu.numpy(), atol=1e-5)
    assert np.array_equal(frames[-1]["labels"], data.test_y[:500].numpy())
    expected = np.rint(sample_prior(final, 8, seed=0).numpy() * 255).astype(np.uint8)
    assert np.abs(frames[-1]["samples"].astype(int) - expected.astype(int)).max() <= 1
    start = build_model(fit_to_data(TINY_MODEL, data.image_shape, data.class_names), seed=0)  # before any step
    assert np.allclose(frames[0]["scatter"], encode_means(start, data.test_x[:500])[0].numpy(), atol=1e-5)


def test_a_resumed_run_appends_to_its_frames(run_folder, tmp_path):
    import shutil

    copy = tmp_path / "again"
    shutil.copytree(run_folder, copy)
    train_run(prepare_run(None, copy, resume=True, epochs=5))
    assert [f["epoch"] for f in read_epoch_frames(copy)] == [0, 1, 2, 3, 4, 5]


def test_a_damaged_frames_file_is_ignored_not_fatal(run_folder, tmp_path):
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(run_folder, copy)
    (copy / "epochs.safetensors").write_bytes(b"not a safetensors file")
    assert read_epoch_frames(copy) == [] and load_checkpoint(copy).model is not None


def test_the_learn_page_replays_a_saved_run(run_folder, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from vae_explorer.app import catalog

    monkeypatch.setattr(catalog, "TRAINED_DIR", run_folder.parent)
    at = AppTest.from_file(str(REPO / "pages/6_Learn.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = "replayed"
    at.run()
    assert not at.exception and not at.error
    charts = {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    animation = charts["learn_map_epochs"]
    assert [f["name"] for f in animation["frames"]] == ["0", "1", "2", "3"]
    frames = read_epoch_frames(run_folder)
    from pictures import plotly_values

    trace = animation["frames"][-1]["data"][0]  # class 0 after the last epoch
    mask = frames[-1]["labels"] == 0
    assert plotly_values(trace["x"]) == pytest.approx(frames[-1]["scatter"][mask, 0], abs=1e-5)
    # the same prior draws decoded after each epoch ride in the same animation: one slider, one play button
    from vae_explorer.app.replay import samples_png

    for shown, frame in zip(animation["frames"], frames):
        (strip,) = shown["layout"]["images"]
        assert strip["source"] == "data:image/png;base64," + base64.b64encode(samples_png(frame)).decode("ascii")
    assert animation["layout"]["images"][0]["source"] == animation["frames"][-1]["layout"]["images"][0]["source"]
    assert not [s for s in at.select_slider if s.label == "Samples from the same z after epoch"]
    labels = [d.proto.label for d in at.get("download_button")]
    assert "Download the map's epochs (MP4)" in labels

"""AppTest of the Train page: a training from the form makes a checkpoint the other pages open;
Stop keeps what was learned; bad form values give one clear message; the beta sweep draws."""

import base64
import json
import time
from pathlib import Path

import pytest
from conftest import PATIENCE_S, REPO, shown
from streamlit.testing.v1 import AppTest

from vae_explorer.app import catalog


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(catalog, "TRAINED_DIR", tmp_path / "runs")
    return tmp_path / "runs"


def train_page(state: dict | None = None, **values) -> AppTest:
    at = AppTest.from_file(str(REPO / "pages/7_Train.py"), default_timeout=PATIENCE_S)
    for key, value in (state or {}).items():  # what a person typed before the page is tested
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    for key, value in {"train__data__max_train": 256, "train__train__epochs": 1, **values}.items():
        widget = next(
            w for kind in (at.number_input, at.text_input, at.selectbox, at.checkbox) for w in kind if w.key == key
        )
        widget.set_value(value)
    return at


def submit(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def wait_until_finished(at: AppTest, timeout: float = PATIENCE_S):
    job = at.session_state["train_job"]
    deadline = time.time() + timeout
    while not job.snapshot().finished and time.time() < deadline:
        time.sleep(0.1)
    at.run()
    return job.snapshot()


def test_one_epoch_from_the_form_makes_a_checkpoint_every_page_opens(runs):
    at = submit(train_page(train_name="my first VAE!"), "Start training")
    snap = wait_until_finished(at)
    assert snap.status == "done", snap.message
    assert not at.exception and not at.error
    assert any("saved as my-first-VAE" in s.value for s in at.success)
    assert (runs / "my-first-VAE" / "model.safetensors").is_file()
    charts = {
        c.key: c for c in at.get("plotly_chart")
    }  # loss curves, KL per dimension by epoch, latent scatter, its epochs
    assert set(charts) == {"train_history_chart", "train_dims_chart", "train_scatter", "train_map_epochs"}
    animation = json.loads(charts["train_map_epochs"].proto.spec)
    assert [f["name"] for f in animation["frames"]] == [str(f["epoch"]) for f in snap.frames] and len(snap.frames) >= 2
    labels = [d.proto.label for d in at.get("download_button")]
    assert "Download the map's epochs (GIF)" in labels and "Download the map's epochs (MP4)" in labels
    sources = [
        f["layout"]["images"][0]["source"] for f in animation["frames"]
    ]  # each epoch's decodes, in the animation
    assert sources == [
        "data:image/png;base64," + base64.b64encode(f["samples_png"]).decode("ascii") for f in snap.frames
    ]
    assert "my-first-VAE" in at.sidebar.selectbox[0].options[-1] or any(
        "my-first-VAE" in o for o in at.sidebar.selectbox[0].options
    )
    for page in ("pages/1_Reconstruct.py", "pages/2_Generate.py", "pages/5_Traverse.py"):
        other = AppTest.from_file(str(REPO / page), default_timeout=PATIENCE_S)
        other.query_params["model"] = "my-first-VAE"
        other.run()
        assert not other.exception and not other.error, page
        assert other.session_state["model"] == "my-first-VAE"


def test_stop_keeps_what_was_learned(runs):
    at = submit(train_page(train_name="stopped", **{"train__train__epochs": 5000}), "Start training")
    job = at.session_state["train_job"]
    deadline = time.time() + PATIENCE_S
    while job.snapshot().step < 10 and time.time() < deadline:
        time.sleep(0.05)
    at.run()
    # a reload of the page (a new session with the same URL) follows the same training, and can stop it
    token = at.query_params["job"]
    reloaded = AppTest.from_file(str(REPO / "pages/7_Train.py"), default_timeout=PATIENCE_S)
    reloaded.query_params["job"] = token[0] if isinstance(token, list) else token
    reloaded.run()
    assert not reloaded.exception and not reloaded.error
    assert reloaded.session_state["train_job"] is job and any(h.value == "Training" for h in reloaded.subheader)
    assert not any(
        m.value.startswith("**stopped**:") for m in reloaded.markdown
    )  # not offered for resuming while it trains
    reloaded.button(key="train_stop").click().run()
    snap = wait_until_finished(reloaded)
    at.run()
    assert snap.status == "stopped" and snap.step < snap.total_steps
    assert any("Stopped after" in s.value for s in at.success)
    assert (runs / "stopped" / "history.json").is_file()
    # stopped early, it is offered for resuming (it was only resumable from the command line)
    fresh = AppTest.from_file(str(REPO / "pages/7_Train.py"), default_timeout=PATIENCE_S).run()
    done = json.loads((runs / "stopped" / "training.json").read_text())["epochs_done"]
    assert any(f"**stopped**: stopped after epoch {done} of 5000" in m.value for m in fresh.markdown), [
        m.value for m in fresh.markdown
    ]
    assert fresh.button(key="train_resume_stopped")
    # a link to a training this server does not hold (restarted since) says so in one line
    gone = AppTest.from_file(str(REPO / "pages/7_Train.py"), default_timeout=PATIENCE_S)
    gone.query_params["job"] = "no-such-training"
    gone.run()
    assert any("no longer on this server" in i.value for i in gone.info) and not gone.exception


def test_bad_form_values_give_one_clear_message(runs):
    at = submit(train_page(**{"train__model__hidden_sizes": "256, lots"}), "Start training")
    assert [shown(e.value) for e in at.error] == [
        "Train form: model.hidden_sizes must be whole numbers separated by commas, got '256, lots'; write it like 256, 128."
    ]
    at = submit(train_page(train_name="digits-mlp"), "Start training")
    assert "named digits-mlp already exists; choose another name" in at.error[0].value
    at = submit(train_page({"train__data__dataset": "nope"}, train_name="x"), "Start training")
    assert at.session_state["train_job"].join(PATIENCE_S) is None
    at.run()
    assert "unknown dataset 'nope'" in at.error[0].value
    assert not runs.exists() or not any(runs.iterdir())


def test_beta_sweep_draws_the_rate_distortion_curve(runs):
    at = train_page()
    at.multiselect(key="train_sweep_betas").set_value([0.0, 8.0])
    at.number_input(key="train_sweep_epochs").set_value(2)
    snap = wait_until_finished(submit(at, "Run the sweep"))
    assert snap.status == "done" and len(snap.results) == 2
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe) == 1
    assert not runs.exists()  # sweep models are compared, not saved


def test_submitted_values_survive_a_visit_to_another_page(runs):
    at = submit(train_page(**{"train__model__hidden_sizes": "64, lots"}), "Start training")  # refused, but kept
    remembered = at.session_state["train_form_values"]
    assert remembered["train__model__hidden_sizes"] == "64, lots"
    # Back from another page, Streamlit has dropped the widgets' own values; only the plain key is left.
    back = train_page({"train_form_values": remembered})
    assert back.text_input(key="train__model__hidden_sizes").value == "64, lots"


def test_load_a_preset_fills_the_form(runs):
    at = train_page()
    at.selectbox(key="train_preset").select("shapes_betavae").run()
    assert at.selectbox(key="train__data__dataset").value == "shapes"
    assert at.number_input(key="train__train__beta").value == 4.0


def test_the_form_offers_every_config_key(runs):
    from vae_explorer.app.train_form import form_keys, widget_key

    at = train_page()
    drawn = {w.key for kind in (at.number_input, at.text_input, at.selectbox, at.checkbox) for w in kind}
    assert {widget_key(section, key) for section, key in form_keys()} <= drawn


def test_the_form_trains_on_the_iwae_bound_and_refuses_it_with_a_beta(runs):
    at = submit(
        train_page(train_name="iwae", **{"train__train__objective": "iwae", "train__train__beta": 4.0}),
        "Start training",
    )
    assert [shown(e.value) for e in at.error] == [
        "Train form: train.objective iwae trains the bound on log p(x) itself, so "
        "train.beta must be 1, not 4; set it to 1, or use objective elbo for it."
    ]
    assert not runs.exists() or not any(runs.iterdir())
    at = submit(
        train_page(
            train_name="iwae",
            **{"train__train__objective": "iwae", "train__train__iwae_samples": 3, "train__train__warmup_epochs": 0},
        ),
        "Start training",
    )
    snap = wait_until_finished(at)
    assert snap.status == "done", snap.message
    saved = json.loads((runs / "iwae" / "config.json").read_text())["train"]
    assert (saved["objective"], saved["iwae_samples"]) == ("iwae", 3)


def test_the_preset_named_is_the_one_the_form_holds(runs):
    at = train_page()
    assert at.selectbox(key="train_preset").value == "digits_mlp"  # the form starts from digits_mlp's values
    assert at.number_input(key="train__train__warmup_epochs").value == 10
    at.selectbox(key="train_preset").select("digits_free_bits").run()
    assert at.number_input(key="train__train__free_bits").value == 0.5


def test_the_form_says_in_one_sentence_that_capture_needs_a_cuda_gpu(runs):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    at = submit(
        train_page(train_name="captured", **{"train__train__capture": True, "train__train__device": "cpu"}),
        "Start training",
    )
    assert "train_job" not in at.session_state  # said before a job starts
    said = [shown(e.value) for e in at.error]
    assert said == [
        "train.capture records the training step as a CUDA graph, and the device here is cpu: "
        "leave train.capture off, or train on a CUDA GPU."
    ], said
    assert not runs.exists() or not any((runs / name / "model.safetensors").exists() for name in ("captured",))

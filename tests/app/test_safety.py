"""What reaches a browser (vae_explorer/app/safety.py, data/access.py): every page opened on a corpus
of uploaded checkpoints that were accepted but are odd or hostile shows no exception and no
traceback; names people chose are shown as text, not markdown; an uploaded config reads no server
folder; the Train form reads folders only under the data root; a run name is reserved when its
training starts; a failing save is one sentence with the last good epoch intact."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import hostile
import pytest
from conftest import MODEL_PAGES, PATIENCE_S, REPO, TINY_DATA, TINY_MODEL, shown
from streamlit.testing.v1 import AppTest

from vae_explorer import RunConfig, TrainConfig, load_checkpoint
from vae_explorer.app import catalog
from vae_explorer.app.safety import boundary, label, plain, say, server_paths_named
from vae_explorer.checkpoints import import_checkpoint_zip
from vae_explorer.config import DataConfig
from vae_explorer.data.access import check_form_data, uploaded_data
from vae_explorer.errors import ConfigError, TrainingError

# --- text ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        hostile.MARKDOWN,
        "digits-mlp",
        "my_model.v2",
        "1. not a list",
        "- nor this",
        "# nor a heading",
        "$x^2$ and :red[colour]",
        "back\\slash",
        "see http://attacker.invalid/ or www.attacker.invalid",
    ],
)
def test_plain_markdown_shows_the_same_characters_and_no_markup(text):
    markdown = plain(text)
    assert shown(markdown) == text
    bare = markdown.replace("\\\\", "")  # escaped backslashes aside, no markup character stands unescaped
    assert (
        not re.search(r"(?<!\\)[\[\]()*_<>!$#`~|&]", bare) and not re.search(r"(?<!\\)://", bare) and "www." not in bare
    ), markdown
    assert not re.match(r"\s*([-+#>]|\d+[.)])", markdown)  # no list, heading or quote at the start


def test_plotly_labels_show_tags_as_text():
    assert (
        label('<a href="http://attacker.invalid">x</a> & <b>')
        == '&lt;a href="http://attacker.invalid"&gt;x&lt;/a&gt; &amp; &lt;b&gt;'
    )


def test_server_folders_are_named_not_spelled_out(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    message = f"{tmp_path / 'runs' / 'x' / 'config.json'} is corrupt; and /usr/share/datasets/fashion-mnist/t10k.gz too"
    assert server_paths_named(message) == "the runs folder/x/config.json is corrupt; and …/t10k.gz too"


def test_the_boundary_turns_any_error_into_one_sentence_and_lets_streamlit_s_own_exceptions_pass():
    import streamlit as st
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    said = []
    original = st.error
    st.error = said.append
    try:
        with boundary():
            raise KeyError("neg_elbo")
        with boundary():
            raise ConfigError("model.latent_dim must be from 1 to 128, got 0; set it in that range.")
        with pytest.raises(StopException):
            with boundary():
                raise StopException()
    finally:
        st.error = original
    assert (
        said[0].startswith("Something went wrong on this page")
        and "KeyError" not in said[0]
        and "neg_elbo" not in said[0]
    )
    assert shown(said[1]) == "model.latent_dim must be from 1 to 128, got 0; set it in that range."


# --- server folders ------------------------------------------------------------------------------------


def test_the_train_form_reads_folders_only_inside_the_data_root(tmp_path):
    root = tmp_path / "data"
    (root / "pets").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")
    assert (
        check_form_data(DataConfig(dataset="folder:pets"), root.resolve()).dataset
        == f"folder:{(root / 'pets').resolve()}"
    )
    assert check_form_data(DataConfig(dataset="digits"), None).dataset == "digits"
    said = set()
    for given in (
        "folder:../secret",
        f"folder:{tmp_path / 'secret'}",
        "folder:link",
        "folder:/etc",
        "folder:/no/such/place",
    ):
        with pytest.raises(ConfigError) as error:
            check_form_data(DataConfig(dataset=given), root.resolve())
        said.add(str(error.value))
        assert str(tmp_path) not in str(error.value)
    assert len(said) == 1  # the same sentence whether the folder exists or not: nothing is revealed
    with pytest.raises(ConfigError, match="this server offers no image folders"):
        check_form_data(DataConfig(dataset="folder:pets"), None)
    with pytest.raises(ConfigError, match="data.data_dir can only name a folder inside"):
        check_form_data(DataConfig(dataset="mnist", data_dir="/etc"), root.resolve())


def test_an_uploaded_config_reads_no_server_folder():
    assert uploaded_data(DataConfig(dataset="folder:/etc")) is None
    assert uploaded_data(DataConfig(dataset="fashion-mnist", data_dir="/etc")).data_dir is None


# --- every page on odd and hostile uploads -------------------------------------------------------------


@pytest.fixture(scope="module")
def uploads(tiny_checkpoint, tmp_path_factory) -> dict[str, str]:
    """Uploaded checkpoints, through the sidebar's door: name -> what makes it odd."""
    runs = tmp_path_factory.mktemp("runs")
    files = {
        p.name: p.read_bytes()
        for p in tiny_checkpoint.iterdir()
        if p.name in ("config.json", "model.safetensors", "history.json", "metrics.json")
    }
    metrics = {
        "neg_elbo": 1.0,
        "recon": "x",
        "kl": 2.0,
        "kl_per_dim": [1, 2, 3, 4, 5],
        "active_units": 99,
        "fid": 1.0,
        "iwae_nll": [],
        "mig_per_factor": "no",
    }
    corpus = {
        "odd-records": {
            **files,
            "metrics.json": json.dumps(metrics).encode(),
            "history.json": json.dumps([{"epoch": "one"}, None]).encode(),
        },
        "markdown-names": hostile.with_config(
            files, model__class_names=[f"{hostile.MARKDOWN_NAME} {k}" for k in range(10)], data__dataset="digits"
        ),
        "server-folder": hostile.with_config(files, data__dataset="folder:/etc"),
        "server-data-dir": hostile.with_config(files, data__data_dir="/etc"),
    }
    for name, contents in corpus.items():
        import_checkpoint_zip(hostile.checkpoint_zip(contents), f"{name}.zip", runs / "uploaded")
    return {"runs": runs, "names": list(corpus)}


def _texts(at: AppTest) -> list[str]:
    """Every piece of markdown the page sent: text, captions, alerts, headings, widget labels."""
    found = [
        e.value
        for kind in ("markdown", "caption", "error", "warning", "info", "success", "subheader", "title")
        for e in at.get(kind)
    ]
    return found + [
        w.label for kind in ("selectbox", "slider", "button", "number_input", "text_input") for w in at.get(kind)
    ]


@pytest.mark.parametrize("model", ["odd-records", "markdown-names", "server-folder", "server-data-dir"])
@pytest.mark.parametrize(
    "page", [p if p == "Home.py" else pytest.param(p, marks=pytest.mark.slow) for p in MODEL_PAGES]
)
def test_every_page_opens_on_odd_and_hostile_uploads_without_a_traceback(page, model, uploads, monkeypatch):
    monkeypatch.setattr(catalog, "TRAINED_DIR", uploads["runs"])
    at = AppTest.from_file(str(REPO / page), default_timeout=PATIENCE_S)
    at.query_params["model"] = model
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert [
        e.value for e in at.error if e.value.startswith("Something went wrong")
    ] == []  # the boundary was not needed
    assert at.session_state["model"] == model
    for text in _texts(at):
        # shown as text, never markup: no image or link syntax, no tag that is not escaped (plain() writes \\<img)
        assert "![" not in text and "](http" not in text and not re.search(r"(?<!\\)<img", text), text
        assert "/etc" not in text, text
    if model == "server-folder" and page in ("pages/1_Reconstruct.py", "pages/3_Latent_map.py"):
        assert any("trained on an image folder of its own, which this server does not have" in i.value for i in at.info)


# --- run names and saves -------------------------------------------------------------------------------


def test_a_run_name_is_reserved_when_its_training_starts(tmp_path):
    from vae_explorer.runs.jobs import RESERVED, release_name, run_folder

    first = run_folder("my vae", tmp_path, set())
    assert (first / RESERVED).is_file()
    with pytest.raises(ConfigError, match="a checkpoint named my-vae already exists; choose another name."):
        run_folder("my vae", tmp_path, set())  # another session, a moment later, before any epoch is saved
    release_name(first)  # its training failed before saving anything: the name is free again
    assert run_folder("my vae", tmp_path, set()) == first
    (first / RESERVED).write_text(json.dumps({"pid": 2**22 + 12345, "host": "gone"}))  # its server was killed
    assert run_folder("my vae", tmp_path, set()) == first


def test_a_runs_folder_that_cannot_be_written_is_said_before_training(tmp_path):
    """A runs folder below a file cannot be made (the same refusal as a read-only one, which root
    would write all the same)."""
    from vae_explorer.runs.jobs import run_folder

    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(ConfigError) as error:
        run_folder("x", tmp_path / "a-file" / "runs", set())
    assert (
        str(error.value) == f"{tmp_path / 'a-file' / 'runs'} cannot be written (Not a directory); "
        "make it writable or free some space, then start again."
    )
    assert shown(say(error.value)).endswith(
        "cannot be written (Not a directory); make it writable or free some space, then start again."
    )


def test_a_full_disk_during_a_save_is_one_sentence_and_the_last_epoch_stays(tmp_path, monkeypatch):
    from vae_explorer.runs import prepare_run, train_run
    from vae_explorer.runs import run as run_module

    real_save, saves = run_module.save_checkpoint, []

    def save(*args, **kwargs):
        saves.append(1)
        if len(saves) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(run_module, "save_checkpoint", save)
    run = prepare_run(
        RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=3, batch_size=32, device="cpu")), tmp_path / "full"
    )
    with pytest.raises(TrainingError) as error:
        train_run(run)
    assert str(error.value) == (
        "epoch 2 could not be saved (the disk is full; free some space and resume the run). "
        "The checkpoint of epoch 1 was kept in full."
    )
    checkpoint = load_checkpoint(tmp_path / "full")
    assert [r["epoch"] for r in checkpoint.history] == [1] and checkpoint.resumable
    assert not list(Path(tmp_path).glob(".full.*"))  # no staging folder left

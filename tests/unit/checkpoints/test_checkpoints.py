import json
import os
import shutil

import pytest
import torch

from vae_explorer import CheckpointError, load_checkpoint, save_checkpoint
from vae_explorer.checkpoints import write_metrics


def test_save_then_load_gives_the_same_outputs(tiny_run, tiny_checkpoint):
    model, config, history = tiny_run
    loaded = load_checkpoint(tiny_checkpoint)
    assert loaded.config == config and loaded.history == history
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(loaded.model.reconstruct(x), model.reconstruct(x))
    z = torch.randn(3, 2)
    assert torch.equal(loaded.model.generate(z), model.generate(z))
    assert not loaded.model.training
    assert sorted(os.listdir(tiny_checkpoint)) == ["config.json", "history.json", "metrics.json", "model.safetensors"]
    assert json.loads((tiny_checkpoint / "config.json").read_text())["format_version"] == 2


def test_weights_file_holds_no_pickle(tiny_checkpoint):
    header_size = int.from_bytes((tiny_checkpoint / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((tiny_checkpoint / "model.safetensors").read_bytes()[8 : 8 + header_size])
    assert all(v["dtype"] == "F32" for k, v in header.items() if k != "__metadata__")


@pytest.fixture
def copy(tiny_checkpoint, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(tiny_checkpoint, target)
    return target


def test_an_interrupted_save_leaves_the_old_checkpoint_loadable(tiny_run, copy, monkeypatch):
    model, config, history = tiny_run
    import vae_explorer.checkpoints.folder as checkpoints

    real = checkpoints.fsync_write

    def crash(path, data):
        if path.name == "history.json":
            raise KeyboardInterrupt  # the process is stopped halfway through writing
        real(path, data)

    monkeypatch.setattr(checkpoints, "fsync_write", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(copy, model, config, history + [{"epoch": 99}])
    loaded = load_checkpoint(copy)
    assert loaded.history == history
    assert [p.name for p in copy.parent.iterdir()] == ["copy"]  # no half-written folder left behind


def test_a_save_stopped_between_the_renames_is_recovered(copy):
    # The old folder was moved aside and the process died before the new one was renamed in.
    os.rename(copy, copy.parent / f".{copy.name}.previous-12345")
    assert load_checkpoint(copy).history
    assert copy.is_dir()


def test_saving_over_an_existing_checkpoint(tiny_run, copy):
    model, config, history = tiny_run
    save_checkpoint(copy, model, config, history[:1])
    assert len(load_checkpoint(copy).history) == 1


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: (p / "config.json").unlink(), "config.json is missing"),
        (lambda p: (p / "model.safetensors").unlink(), "model.safetensors is missing"),
        (lambda p: (p / "config.json").write_text("{not json"), "config.json is corrupt"),
        (lambda p: (p / "config.json").write_text("[1, 2]"), "config.json holds a list"),
        (lambda p: (p / "history.json").write_text('{"a"'), "history.json is corrupt"),
        (
            lambda p: (p / "model.safetensors").write_bytes(b"\x00" * 20),
            "model.safetensors is not a valid safetensors file",
        ),
        (
            lambda p: (p / "model.safetensors").write_bytes((p / "model.safetensors").read_bytes()[:-50]),
            "model.safetensors is not a valid",
        ),
    ],
)
def test_corrupt_checkpoints_name_the_file(copy, damage, match):
    damage(copy)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(copy)


def _edit_config(path, edit):
    raw = json.loads((path / "config.json").read_text())
    edit(raw)
    (path / "config.json").write_text(json.dumps(raw))


def test_unsupported_format_version(copy):
    _edit_config(copy, lambda raw: raw.update(format_version=99))
    with pytest.raises(CheckpointError, match="format_version 99.*reads 1 and 2"):
        load_checkpoint(copy)


def test_weights_that_do_not_fit_the_config(copy):
    _edit_config(copy, lambda raw: raw["model"].update(latent_dim=5))
    with pytest.raises(CheckpointError, match="shape.*different models"):
        load_checkpoint(copy)


def test_bad_config_value_inside_a_checkpoint(copy):
    _edit_config(copy, lambda raw: raw["model"].update(latent_dim=-1))
    with pytest.raises(CheckpointError, match="model.latent_dim"):
        load_checkpoint(copy)


def test_nan_weights_are_refused(tiny_run, copy):
    model, config, history = tiny_run
    broken = type(model)(config.model)
    broken.load_state_dict(model.state_dict())
    with torch.no_grad():
        next(broken.parameters()).fill_(float("nan"))
    save_checkpoint(copy, broken, config, history)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_checkpoint(copy)


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing")


def test_write_metrics_merges(copy):
    write_metrics(copy, {"neg_elbo": 30.0, "recon": 25.0, "kl": 5.0})
    write_metrics(copy, {"iwae_nll": 29.5, "iwae_k": 5})
    assert load_checkpoint(copy).metrics == {"neg_elbo": 30.0, "recon": 25.0, "kl": 5.0, "iwae_nll": 29.5, "iwae_k": 5}
    write_metrics(copy, {"a key of another version": 1.0})  # kept in the file, left out of what the pages see
    checkpoint = load_checkpoint(copy)
    assert "a key of another version" not in checkpoint.metrics and len(checkpoint.metrics) == 5
    assert checkpoint.notes == [
        "metrics.json: a key of another version left out: not what vae-explorer writes there "
        "(the Evaluate page or vae-explorer evaluate computes them again)."
    ]


def test_a_format_1_checkpoint_loads_and_says_it_cannot_be_resumed(copy):
    """Checkpoints of earlier versions: no optimizer state, train.precision 'fast' (read as float32)."""
    from vae_explorer import load_training_state

    _edit_config(copy, lambda raw: (raw.update(format_version=1), raw["train"].update(precision="fast")))
    loaded = load_checkpoint(copy)
    assert loaded.config.train.precision == "float32" and not loaded.resumable and loaded.training == {}
    with pytest.raises(
        CheckpointError, match="saved without its optimizer state .* it can be explored but not resumed"
    ):
        load_training_state(copy, loaded.model)


def test_the_optimizer_state_round_trips(tiny_run, tiny_data, tmp_path):
    from vae_explorer import TrainConfig, build_model, load_training_state, train

    model, config, _ = tiny_run
    fresh = build_model(config.model, seed=0)
    states = []
    train(fresh, tiny_data, TrainConfig(epochs=1, batch_size=64, device="cpu"), [lambda e: states.append(e.state)])
    state = [s for s in states if s is not None][-1]
    save_checkpoint(tmp_path / "run", fresh, config, [], state=state)
    back = load_training_state(tmp_path / "run", load_checkpoint(tmp_path / "run").model)
    assert (back.epochs_done, back.steps_done) == (state.epochs_done, state.steps_done) == (1, 4)
    assert torch.equal(back.order_rng, state.order_rng) and torch.equal(back.noise_rng, state.noise_rng)
    assert back.optimizer["param_groups"] == state.optimizer["param_groups"]
    for index, per_parameter in state.optimizer["state"].items():
        for key, value in per_parameter.items():
            assert torch.equal(back.optimizer["state"][index][key], value), (index, key)

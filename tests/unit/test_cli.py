"""The command line end to end on digits: train one epoch, generate, evaluate, and its errors."""

import json
import subprocess
import sys

import pytest
from conftest import PATIENCE_S, REPO
from PIL import Image

from vae_explorer.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "digits-run"
    code = main(
        [
            "train",
            "--config",
            str(REPO / "configs/digits_mlp.yaml"),
            "--epochs",
            "1",
            "--latent-dim",
            "2",
            "--out",
            str(out),
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    return out


def test_train_writes_a_checkpoint(trained, capsys):
    assert {p.name for p in trained.iterdir()} == {
        "config.json",
        "model.safetensors",
        "history.json",
        "metrics.json",
        "optimizer.safetensors",
        "training.json",
        "epochs.safetensors",
    }
    history = json.loads((trained / "history.json").read_text())
    assert len(history) == 1 and history[0]["epoch"] == 1
    config = json.loads((trained / "config.json").read_text())
    assert config["model"]["latent_dim"] == 2 and config["train"]["epochs"] == 1  # flags override the YAML
    assert config["model"]["image_shape"] == [1, 8, 8]


def test_generate_samples_and_grid(trained, tmp_path):
    assert main(["generate", "--model-path", str(trained), "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert (
        main(["generate", "--model-path", str(trained), "--n", "25", "--grid", "--out", str(tmp_path / "g.png")]) == 0
    )
    for name in ("s.png", "g.png"):
        with Image.open(tmp_path / name) as image:
            image.verify()
    with Image.open(tmp_path / "g.png") as image:
        assert image.size[0] == image.size[1] >= 5 * 28


def test_evaluate_writes_metrics(trained, capsys):
    assert main(["evaluate", "--model-path", str(trained), "--k", "10"]) == 0
    out = capsys.readouterr().out
    assert "neg_elbo" in out and "iwae_nll" in out and "elbo_iwae_gap" in out and "fid" in out
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["iwae_k"] == 10 and len(metrics["kl_per_dim"]) == 2
    assert metrics["fid"] > metrics["fid_floor"] >= 0 and metrics["fid_classifier"]["test_accuracy"] > 0.1
    assert main(["evaluate", "--model-path", str(trained), "--k", "10", "--no-fid"]) == 0
    assert "fid" not in capsys.readouterr().out  # skipped; the earlier score stays in metrics.json


def test_train_classifier(tmp_path, capsys):
    assert main(["train-classifier", "--dataset", "digits", "--epochs", "1", "--out-dir", str(tmp_path)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    (folder,) = tmp_path.iterdir()
    assert (folder / "model.safetensors").is_file() and json.loads((folder / "info.json").read_text())["epochs"] == 1


def test_datasets_lists_availability(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "built in" in out and "fashion-mnist" in out and "shapes" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--config", "nope.yaml"], "config file nope.yaml not found"),
        (["train-classifier", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["train-classifier", "--epochs", "0"], "--epochs must be from 1 to 1000"),
        (["train", "--latent-dim", "0"], "model.latent_dim must be from 1 to 512"),
        (["train", "--lr", "-1"], "train.lr"),
        (["train", "--dataset", "cifar"], "unknown dataset 'cifar'"),
        (["train", "--batch-size", "99999", "--epochs", "1"], "larger than the 1438 training images"),
        (["generate", "--model-path", "missing-folder"], "checkpoint folder missing-folder does not exist"),
        (["evaluate", "--model-path", "missing-folder"], "does not exist"),
    ],
)
def test_user_errors_are_one_line_without_traceback(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("error: ")


def test_generate_errors(trained, tmp_path, capsys):
    assert main(["generate", "--model-path", str(trained), "--class", "3", "--out", str(tmp_path / "x.png")]) == 2
    assert "needs a conditional model" in capsys.readouterr().err
    assert (
        main(["generate", "--model-path", str(trained), "--out", str(tmp_path / "no" / "such" / "dir" / "x.png")]) == 0
    )
    bad = tmp_path / "file"
    bad.write_text("")
    assert main(["generate", "--model-path", str(trained), "--out", str(bad / "x.png")]) == 2
    assert "error:" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vae_explorer", "train", "--epochs", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=PATIENCE_S,
    )
    assert result.returncode == 2
    assert "train.epochs" in result.stderr and "Traceback" not in result.stderr


def test_running_out_of_memory_is_a_message(monkeypatch, capsys, tmp_path):
    import vae_explorer.runs.run as training

    def too_big(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:119] DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 TB"
        )

    monkeypatch.setattr(training, "train", too_big)
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "needs more memory" in err and "Traceback" not in err


def test_importing_the_package_changes_no_process_wide_state():
    """No collector switched off or frozen, no environment variable set, no matmul precision changed."""
    code = (
        "import gc, os, torch; before = (gc.isenabled(), gc.get_freeze_count(), dict(os.environ), "
        "torch.get_float32_matmul_precision()); import vae_explorer, vae_explorer.cli, vae_explorer.runs.jobs; "
        "after = (gc.isenabled(), gc.get_freeze_count(), dict(os.environ), torch.get_float32_matmul_precision()); "
        "assert after == before, (before, after)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=PATIENCE_S)


def test_train_resume_and_names(tmp_path, monkeypatch, capsys):
    """A run is saved in the runs folder under its name, found by name, and --resume takes it further."""
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    assert (
        main(["train", "--config", "digits_mlp", "--epochs", "2", "--latent-dim", "2", "--name", "named", "--quiet"])
        == 0
    )
    folder = tmp_path / "runs" / "named"
    assert json.loads((folder / "training.json").read_text())["status"] == "finished"
    assert main(["train", "--resume", "named", "--epochs", "3", "--quiet"]) == 0
    history = json.loads((folder / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3] and json.loads((folder / "config.json").read_text())["train"][
        "epochs"
    ] == 3
    assert main(["generate", "--model-path", "named", "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["generate", "--model-path", "digits-mlp", "--n", "4", "--out", str(tmp_path / "d.png")]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "named", "--epochs", "3"]) == 2
    assert "has trained 3 epochs already; pass --epochs above 3" in capsys.readouterr().err
    assert main(["train", "--resume", "named", "--epochs", "5", "--lr", "0.1"]) == 2
    assert "leave out --lr" in capsys.readouterr().err
    assert main(["train", "--config", "no_such_config"]) == 2
    said = capsys.readouterr().err
    assert "config file no_such_config not found; pass a YAML file or one of the shipped configs: " in said
    assert "digits_mlp, digits_two_level, digits_vamp, fashion_mnist_2d" in said


def test_training_on_a_folder_names_its_unreadable_files_in_one_line(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    for i in range(12):
        (tmp_path / "pics" / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((10, 10), i * 20, np.uint8)).save(tmp_path / "pics" / "ab"[i % 2] / f"{i}.png")
    (tmp_path / "pics" / "a" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    (tmp_path / "pics" / "b" / "empty.jpg").write_bytes(b"")
    assert (
        main(
            [
                "train",
                "--dataset",
                f"folder:{tmp_path / 'pics'}",
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--out",
                str(tmp_path / "run"),
                "--quiet",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("warning:")]
    assert line == (
        f"warning: skipped 2 unreadable files in {tmp_path / 'pics'} (a/cut.png, b/empty.jpg): "
        "they are left out of the set; fix or delete them."
    )
    assert "Traceback" not in err and "UserWarning" not in err


def test_map_computes_keeps_and_reuses_a_map_of_every_image(capsys):
    import numpy as np

    from vae_explorer import load_checkpoint, load_dataset
    from vae_explorer.latent import split_codes, umap_2d
    from vae_explorer.latent.maps import map_files

    assert main(["map", "--model-path", "digits-mlp", "--method", "umap", "--split", "all", "--neighbours", "9"]) == 0
    checkpoint = load_checkpoint(REPO / "checkpoints" / "digits-mlp")
    mu, _ = split_codes(checkpoint.model, load_dataset(checkpoint.config.data), "all")
    beside, in_cache = map_files(checkpoint.path, "umap", len(mu), 9, "all")
    out = capsys.readouterr().out
    assert (
        f"umap map of {len(mu):,} codes (all)" in out and str(in_cache) in out and not beside.exists()
    )  # shipped: the cache
    assert np.load(in_cache) == pytest.approx(umap_2d(mu, 9), abs=1e-6)
    assert main(["map", "--model-path", "digits-mlp", "--method", "umap", "--split", "all", "--neighbours", "9"]) == 0
    assert "is kept already" in capsys.readouterr().out
    assert main(["map", "--model-path", "digits-mlp", "--method", "tsne", "--perplexity", "1"]) == 2
    assert (
        capsys.readouterr().err
        == "error: --perplexity and --neighbours must be from 2 to 1000; pass a value in that range.\n"
    )


def test_every_config_key_a_run_sets_has_a_train_flag_that_sets_it(tmp_path, capsys):
    """train's flags are made from the config dataclasses: one per key (but those filled in from the dataset),
    said in --help with the comment above the field; flags of each kind (a number, a list, a choice, a yes/no,
    a key two sections share) end up in the run's saved config."""
    from dataclasses import fields

    from vae_explorer.checkpoints import read_config
    from vae_explorer.cli import config_flags
    from vae_explorer.config import FILLED_FROM_DATA, SECTIONS

    keys = {key for _, _, key, _ in config_flags()}
    every = {f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in fields(cls)}
    assert keys == every - {f"{section}.{key}" for section, key in FILLED_FROM_DATA}
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS Passes over the training set. [train.epochs]" in said
    assert "--model-channels MODEL_CHANNELS [MODEL_CHANNELS ...] Conv and spatial: output channels" in said

    out = tmp_path / "run"
    argv = ["train", "--epochs", "1", "--max-train", "64", "--max-test", "32", "--hidden-sizes", "24", "12"]
    argv += ["--model-channels", "4", "8", "--data-channels", "1", "--activation", "tanh", "--conditional"]
    argv += ["--batch-size", "32", "--lr-gamma", "0.5", "--no-compile", "--out", str(out), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    config = read_config(out)
    assert (config.data.max_train, config.data.max_test, config.data.channels) == (64, 32, 1)
    assert (config.model.hidden_sizes, config.model.channels) == ([24, 12], [4, 8])
    assert (config.model.activation, config.model.conditional) == ("tanh", True)
    assert (config.train.lr_gamma, config.train.compile, config.train.epochs) == (0.5, False, 1)

"""A class's server takes uploads from every student: the hostile corpus (tests/hostile.py) sent
through the doors it would come in by. Each case is refused in one sentence (no traceback, no
exception name, no server path) or is harmless, and nothing is left behind: no staging folder, no
child process, no temporary folder."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import hostile
import numpy as np
import pytest

from vae_explorer import load_checkpoint
from vae_explorer.checkpoints import import_checkpoint_zip
from vae_explorer.checkpoints.onnx_import import import_onnx
from vae_explorer.errors import VaeExplorerError

SECRET = "secret-of-the-server.txt"
PAIR_CONFIG = {
    "format_version": 2,
    "data": {"dataset": "digits"},
    "model": {
        "architecture": "onnx",
        "latent_dim": 3,
        "image_shape": [1, 8, 8],
        "num_classes": 10,
        "class_names": [str(d) for d in range(10)],
    },
    "train": {},
}


@pytest.fixture
def server_folder(tmp_path, monkeypatch) -> Path:
    """The server's working folder, holding a file no upload may read (a relative path in a graph
    would resolve here)."""
    folder = tmp_path / "server"
    folder.mkdir()
    (folder / SECRET).write_text("the server's own secret")
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 3)) * 0.1, rng.normal(size=(64, 3)) * 0.05, rng.normal(size=(3, 64))


def one_sentence(message: str, *server_paths: Path) -> None:
    assert "\n" not in message and message.endswith("."), message
    assert "Traceback" not in message and "Error:" not in message and "Exception" not in message, message
    for path in server_paths:
        assert str(path) not in message, message


def left_behind(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def temporary_graph_folders() -> set[str]:
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("vae-explorer-graph-*")}


HOSTILE_DECODERS = {
    "weights in a server file, through a sparse initializer": (
        lambda: hostile.decoder_reading_a_file_through_a_sparse_initializer(SECRET),
        "the decoder keeps its weights in a separate file",
    ),
    "weights in a server file, through a Constant's value": (
        lambda: hostile.decoder_reading_a_file_through_a_constant(SECRET, sparse=False),
        "the decoder keeps its weights in a separate file",
    ),
    "weights in a server file, through a Constant's sparse_value": (
        lambda: hostile.decoder_reading_a_file_through_a_constant(SECRET, sparse=True),
        "the decoder keeps its weights in a separate file",
    ),
    "weights in a server file, inside a function": (
        lambda: hostile.decoder_reading_a_file_inside_a_function(SECRET),
        "the decoder keeps its weights in a separate file",
    ),
    "a Loop of 10^12 steps": (lambda: hostile.decoder_with_an_endless_loop(), "the decoder uses control flow (Loop)"),
    "2 GB allocated at run time": (
        lambda: hostile.decoder_that_allocates(2.0),
        "the decoder asked for more memory than the 2 GB",
    ),
    "a fixed batch of 50 million": (
        lambda: hostile.decoder_with_a_fixed_batch(50_000_000),
        "the decoder was exported for batches of exactly 50,000,000",
    ),
}


@pytest.mark.parametrize("case", HOSTILE_DECODERS)
def test_a_hostile_graph_in_an_uploaded_zip_is_refused_and_leaves_nothing(case, weights, server_folder, tmp_path):
    make, expected = HOSTILE_DECODERS[case]
    uploads, before = tmp_path / "uploaded", temporary_graph_folders()
    data = hostile.pair_zip(hostile.encoder(*weights[:2]), make(), PAIR_CONFIG)
    with pytest.raises(VaeExplorerError) as error:
        import_checkpoint_zip(data, "theirs.zip", uploads)
    message = str(error.value)
    assert message.startswith(f"theirs.zip: onnx_decoder.onnx: {expected}"), message
    one_sentence(message, server_folder, tmp_path)
    assert left_behind(uploads) == [] and temporary_graph_folders() <= before


@pytest.mark.parametrize("case", HOSTILE_DECODERS)
def test_a_hostile_graph_given_to_import_onnx_is_refused_and_writes_nothing(case, weights, server_folder, tmp_path):
    make, expected = HOSTILE_DECODERS[case]
    (tmp_path / "e.onnx").write_bytes(hostile.encoder(*weights[:2]))
    (tmp_path / "d.onnx").write_bytes(make())
    with pytest.raises(VaeExplorerError) as error:
        import_onnx(tmp_path / "e.onnx", tmp_path / "d.onnx", tmp_path / "runs" / "theirs", "digits")
    assert str(error.value).startswith(f"d.onnx: {expected}"), str(error.value)
    one_sentence(str(error.value), server_folder)
    assert left_behind(tmp_path / "runs") == []


@pytest.mark.slow
def test_a_graph_that_would_run_for_hours_is_stopped_while_the_server_goes_on(weights, server_folder, tmp_path):
    """No loop and no large tensor, only hours of matrix products: the child running it is stopped
    at the time limit, and meanwhile the server's own work goes on."""
    from vae_explorer.latent import generate
    from vae_explorer.models.graph_process import RUN_TIMEOUT_S

    data = hostile.pair_zip(hostile.encoder(*weights[:2]), hostile.decoder_that_never_finishes(), PAIR_CONFIG)
    outcome = {}

    def upload():
        try:
            import_checkpoint_zip(data, "slow.zip", tmp_path / "uploaded")
        except VaeExplorerError as exc:
            outcome["message"] = str(exc)

    student = threading.Thread(target=upload)
    student.start()
    served = 0
    model = load_checkpoint("digits-mlp").model
    while student.is_alive() and served < 1000:  # another session's decodes, answered during the upload
        generate(model, np.zeros((1, 8), np.float32))
        served += 1
    student.join()
    assert served >= 1
    assert outcome["message"].startswith(
        f"slow.zip: onnx_decoder.onnx: the decoder took more than {RUN_TIMEOUT_S:.0f} s"
    ), outcome
    one_sentence(outcome["message"], server_folder, tmp_path)
    assert left_behind(tmp_path / "uploaded") == []


def test_a_well_behaved_pair_still_imports_from_a_zip_and_decodes_as_its_matrices(weights, tmp_path):
    w_mu, w_logvar, w = weights
    folder = import_checkpoint_zip(
        hostile.pair_zip(hostile.encoder(w_mu, w_logvar), hostile.decoder(w), PAIR_CONFIG),
        "fine.zip",
        tmp_path / "uploaded",
    )
    model = load_checkpoint(folder).model
    z = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    import torch

    assert np.allclose(model.decode(torch.from_numpy(z)).reshape(5, -1).numpy(), z @ w, atol=1e-5)
    assert json.loads((folder / "onnx.json").read_text())["output"] == "logits"


# --- checkpoint zips ---------------------------------------------------------------------------------


def mlp_parameters(pixels: int, hidden: list[int], latent: int) -> int:
    """The closed form of an MLP VAE's parameter count: the encoder's layers, the (mu, logvar) head,
    the decoder's mirrored layers and its output layer, each weights plus biases."""
    widths = [pixels, *hidden]
    encoder = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))
    back = [latent, *reversed(hidden)]
    decoder = sum((a + 1) * b for a, b in zip(back[:-1], back[1:])) + (hidden[0] + 1) * pixels
    return encoder + (hidden[-1] + 1) * 2 * latent + decoder


BOMB = mlp_parameters(64, [8192] * 12, 2)  # the tiny checkpoint's 8x8 digits and latent size, 12 layers of 8,192


@pytest.fixture
def files(tiny_checkpoint) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in tiny_checkpoint.iterdir()
        if p.name in ("config.json", "model.safetensors", "history.json", "metrics.json")
    }


HOSTILE_ZIPS = {
    "config.json nested 100,000 deep": (
        lambda f: hostile.checkpoint_zip({**f, "config.json": hostile.nested(100_000)}),
        "bad.zip: config.json is nested more than 32 levels deep",
    ),
    "metrics.json nested 100,000 deep": (
        lambda f: hostile.checkpoint_zip({**f, "metrics.json": hostile.nested(100_000, "object")}),
        "bad.zip: metrics.json is nested more than 32 levels deep",
    ),
    "a member flagged encrypted": (
        lambda f: hostile.checkpoint_zip(f, encrypted="config.json"),
        "bad.zip holds config.json encrypted; zip the checkpoint folder without a password.",
    ),
    "an unsupported compression method": (
        lambda f: hostile.checkpoint_zip(f, method=99),
        re.compile(r"bad\.zip holds \w+\.\w+ compressed in a way this app does not unpack"),
    ),
    "12 hidden layers of 8192 (a memory bomb)": (
        lambda f: hostile.checkpoint_zip(hostile.with_config(f, model__hidden_sizes=[8192] * 12)),
        f"bad.zip: config.json: model config: this model would have {BOMB:,} parameters",
    ),
    "200 hidden layers": (
        lambda f: hostile.checkpoint_zip(hostile.with_config(f, model__hidden_sizes=[8192] * 200)),
        "bad.zip: config.json: model.hidden_sizes must hold from 1 to 16 values, got 200",
    ),
    "4096x4096 RGB images": (
        lambda f: hostile.checkpoint_zip(hostile.with_config(f, model__image_shape=[3, 4096, 4096])),
        "bad.zip: config.json: model config: this model would have",
    ),
    "a million classes": (
        lambda f: hostile.checkpoint_zip(hostile.with_config(f, model__num_classes=10**6, model__conditional=True)),
        "bad.zip: config.json: model.num_classes must be from 1 to 1000",
    ),
    "class names that do not match the classes": (
        lambda f: hostile.checkpoint_zip(hostile.with_config(f, model__class_names=["a", "b"])),
        "bad.zip: config.json: model.class_names holds 2 names but model.num_classes is 10",
    ),
    "a dataset name of 100,000 characters": (
        lambda f: hostile.checkpoint_zip(hostile.with_config(f, data__dataset="x" * 100_000)),
        "bad.zip: config.json: data.dataset is 100,000 characters long",
    ),
}


@pytest.mark.parametrize("case", HOSTILE_ZIPS)
def test_a_hostile_checkpoint_zip_is_refused_in_one_sentence_and_leaves_nothing(case, files, tmp_path):
    make, expected = HOSTILE_ZIPS[case]
    with pytest.raises(VaeExplorerError) as error:
        import_checkpoint_zip(make(files), "bad.zip", tmp_path / "uploaded")
    message = str(error.value)
    assert expected.match(message) if isinstance(expected, re.Pattern) else message.startswith(expected), message
    one_sentence(message, tmp_path)
    assert left_behind(tmp_path / "uploaded") == []


def test_a_memory_bomb_config_is_refused_before_anything_is_allocated(files, tmp_path):
    """In a fresh process, the zip of a model of 1.5 billion parameters is refused with the process's
    peak memory that of importing torch (documented cap: 1.5 GB for an import)."""
    import subprocess
    import sys

    from conftest import PATIENCE_S

    (tmp_path / "bomb.zip").write_bytes(
        hostile.checkpoint_zip(hostile.with_config(files, model__hidden_sizes=[8192] * 12))
    )
    # the peak of this process's own address space (VmHWM: getrusage's figure would count the parent's at the fork)
    code = (
        "import sys; from vae_explorer.checkpoints import import_checkpoint_zip\n"
        "from vae_explorer.errors import VaeExplorerError\n"
        "try:\n    import_checkpoint_zip(open(sys.argv[1], 'rb').read(), 'bomb.zip', sys.argv[2])\n"
        "except VaeExplorerError as exc:\n    print('refused:', exc)\n"
        "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "bomb.zip"), str(tmp_path / "uploaded")],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    said, peak_kb = result.stdout.splitlines()
    assert said.startswith(
        f"refused: bomb.zip: config.json: model config: this model would have {BOMB:,} parameters"
    ), said
    assert int(peak_kb) < 1.5 * 2**20, f"peak memory {int(peak_kb) / 2**10:.0f} MB"


def test_metrics_history_and_names_of_another_shape_are_left_out_with_a_note(files, tmp_path):
    """Accepted, but what does not have the shape vae-explorer writes is left out, so no page can break on it."""
    metrics = {
        "neg_elbo": "lots",
        "recon": 1.0,
        "kl": 2.0,
        "kl_per_dim": "not a list",
        "fid": 3.0,
        "active_units": -4,
        "iwae_nll": 20.0,
        "iwae_k": 5,
        "mig_per_factor": {"shape": [1, 2]},
    }
    history = [{"epoch": 1, "train_loss": "x"}, 7]
    bad = {**files, "metrics.json": json.dumps(metrics).encode(), "history.json": json.dumps(history).encode()}
    folder = import_checkpoint_zip(hostile.checkpoint_zip(bad), "odd.zip", tmp_path / "uploaded")
    checkpoint = load_checkpoint(folder)
    assert checkpoint.metrics == {"iwae_nll": 20.0, "iwae_k": 5}  # neg_elbo is not a number, so recon and kl go with it
    assert checkpoint.history == []
    assert checkpoint.notes == [
        "history.json does not hold epoch records as vae-explorer writes them; its curves are left out.",
        "metrics.json: active_units, fid, kl, kl_per_dim, mig_per_factor, neg_elbo and 1 more left out: not what "
        "vae-explorer writes there (the Evaluate page or vae-explorer evaluate computes them again).",
    ]

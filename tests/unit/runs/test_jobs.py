"""Background training jobs (the Train page's engine): each trains in a child process; no Streamlit."""

import json
import os
import signal
import threading
import time

import pytest
import torch
from conftest import PATIENCE_S, TINY_DATA, TINY_MODEL

from vae_explorer import RunConfig, TrainConfig, load_checkpoint
from vae_explorer.errors import ConfigError
from vae_explorer.runs.jobs import SweepJob, TrainingJob, run_folder

QUICK = RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=2, batch_size=32, seed=0, device="cpu"))


def finish(job, timeout=PATIENCE_S):
    job.join(timeout)
    snap = job.snapshot()
    assert snap.finished, snap
    return snap


def test_training_job_saves_a_checkpoint_with_previews_and_metrics(tmp_path):
    snap = finish(TrainingJob(QUICK, tmp_path / "run").start())
    assert snap.status == "done" and "saved as run" in snap.message, snap.message
    assert snap.step == snap.total_steps == 2 * 8 and [r["epoch"] for r in snap.history] == [1, 2]
    assert snap.strip_png.startswith(b"\x89PNG")  # the page shows it as it is
    assert snap.scatter.shape == (64, 2) and snap.scatter_labels.shape == (64,)
    assert snap.class_names == [str(d) for d in range(10)]
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.history == snap.history and checkpoint.config.model.image_shape == [1, 8, 8]
    assert checkpoint.training["status"] == "finished" and checkpoint.resumable
    assert {"neg_elbo", "recon", "kl", "kl_per_dim", "active_units"} <= set(checkpoint.metrics)  # Home has its numbers
    assert checkpoint.metrics["neg_elbo"] == pytest.approx(checkpoint.history[-1]["test_loss"], rel=1e-6)
    assert not (tmp_path / "run" / "decoder.onnx").exists()  # exported only for the app's browser decoding


def test_a_training_job_for_the_app_leaves_the_browser_decoder_ready(tmp_path):
    import numpy as np
    import onnxruntime
    from pictures import decoded

    from vae_explorer.checkpoints import weights_sha1
    from vae_explorer.checkpoints.onnx_export import DECODER_FILE, recorded_weights

    snap = finish(TrainingJob(QUICK, tmp_path / "run", export_onnx=True).start())
    assert snap.status == "done", snap.message
    graph = tmp_path / "run" / DECODER_FILE  # the first page to open the model finds it: no export then
    assert recorded_weights(graph) == weights_sha1(tmp_path / "run")
    z = np.random.default_rng(1).standard_normal((5, 2)).astype(np.float32)
    (image,) = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"]).run(None, {"z": z})
    expected = decoded(load_checkpoint(tmp_path / "run").model, z)
    assert np.abs(np.rint(np.clip(image[:, 0], 0, 1) * 255) - expected.astype(float)).max() <= 1


def test_stop_keeps_what_was_learned(tmp_path):
    config = RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=10_000, batch_size=16, device="cpu"))
    job = TrainingJob(config, tmp_path / "long").start()
    deadline = time.time() + PATIENCE_S
    while job.snapshot().step < 20 and time.time() < deadline:
        time.sleep(0.05)
    job.stop()
    snap = finish(job)
    assert snap.status == "stopped" and snap.step < snap.total_steps
    checkpoint = load_checkpoint(tmp_path / "long")
    assert len(checkpoint.history) == len(snap.history) >= 1 and checkpoint.training["status"] == "stopped"
    assert not checkpoint.interrupted  # asked to stop: not listed as interrupted


def test_a_failure_is_a_message_not_a_crash(tmp_path):
    bad = RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=1, batch_size=10_000, device="cpu"))
    snap = finish(TrainingJob(bad, tmp_path / "bad").start())
    assert snap.status == "failed" and "batch_size 10000 is larger than the 256 training images" in snap.message
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_two_jobs_at_once_match_one_alone_bit_for_bit(tmp_path):
    jobs = [TrainingJob(QUICK, tmp_path / f"run{i}").start() for i in range(2)]
    for job in jobs:
        finish(job)
    finish(TrainingJob(QUICK, tmp_path / "alone").start())
    alone = load_checkpoint(tmp_path / "alone").model.state_dict()
    for i in range(2):
        for key, value in load_checkpoint(tmp_path / f"run{i}").model.state_dict().items():
            assert torch.equal(value, alone[key]), key
    assert not any(t.name == "TrainingJob" for t in threading.enumerate())


def _worker_pid(job) -> int:
    deadline = time.time() + PATIENCE_S
    while job._process is None and time.time() < deadline:
        time.sleep(0.02)
    return job._process.pid


@pytest.mark.slow
def test_a_killed_training_is_interrupted_and_resumes_to_the_end(tmp_path):
    config = RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=40, batch_size=16, device="cpu"))
    job = TrainingJob(config, tmp_path / "killed").start()
    deadline = time.time() + PATIENCE_S
    while len(job.snapshot().history) < 2 and time.time() < deadline:
        time.sleep(0.02)
    os.kill(_worker_pid(job), signal.SIGKILL)  # as the OOM killer or a power cut would
    snap = finish(job)
    assert snap.status == "failed" and "ended unexpectedly" in snap.message
    checkpoint = load_checkpoint(tmp_path / "killed")
    assert checkpoint.interrupted and checkpoint.training["status"] == "running" and 2 <= len(checkpoint.history) < 40
    saved = len(checkpoint.history)
    resumed = finish(TrainingJob(None, tmp_path / "killed", resume=True).start())
    assert resumed.status == "done", resumed.message
    assert [r["epoch"] for r in resumed.history] == list(range(1, 41))  # the page's curves start at epoch 1
    again = load_checkpoint(tmp_path / "killed")
    assert [r["epoch"] for r in again.history] == list(range(1, 41)) and again.training["status"] == "finished"
    assert again.history[:saved] == checkpoint.history  # the epochs saved before the kill are kept as they were


def test_a_server_that_goes_away_leaves_an_interrupted_run(tmp_path):
    config = RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=10_000, batch_size=16, device="cpu"))
    job = TrainingJob(config, tmp_path / "orphan").start()
    deadline = time.time() + PATIENCE_S
    while not job.snapshot().history and time.time() < deadline:
        time.sleep(0.02)
    _worker_pid(job)
    job._process.stdin.close()  # what the worker sees when its server dies
    job._process.wait(60)
    training = json.loads((tmp_path / "orphan" / "training.json").read_text())
    assert training["status"] == "interrupted" and load_checkpoint(tmp_path / "orphan").interrupted


def test_beta_sweep_trades_rate_for_distortion():
    config = RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=3, batch_size=32, lr=3e-3, device="cpu"))
    snap = finish(SweepJob(config, [8.0, 0.0]).start())
    assert snap.status == "done" and [r["beta"] for r in snap.results] == [0.0, 8.0]
    free, squeezed = snap.results
    assert free["kl"] > squeezed["kl"] and free["recon"] < squeezed["recon"]
    assert all(0 <= r["active_units"] <= r["latent_dim"] == 2 for r in snap.results)
    with pytest.raises(ConfigError, match="at least one beta"):
        SweepJob(config, [])


def test_run_folder_names(tmp_path):
    assert run_folder("  my run: β=4! ", tmp_path, set()).name == "my-run-4"
    with pytest.raises(ConfigError, match="named digits-mlp already exists; choose another name"):
        run_folder("digits-mlp", tmp_path, {"digits-mlp"})
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError, match="mine already exists"):
        run_folder("mine", tmp_path, set())
    with pytest.raises(ConfigError, match="name is empty"):
        run_folder("   ", tmp_path, set())


def test_a_folder_s_unreadable_files_are_shown_by_the_job(tmp_path):
    import dataclasses

    import numpy as np
    from PIL import Image

    for i in range(10):
        Image.fromarray(np.full((10, 10, 3), i * 20, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    config = dataclasses.replace(
        QUICK,
        data=dataclasses.replace(TINY_DATA, dataset=f"folder:{tmp_path}", image_size=8, max_train=None, max_test=None),
        train=dataclasses.replace(QUICK.train, batch_size=4, epochs=1),
    )
    snap = finish(TrainingJob(config, tmp_path / "run").start())
    assert snap.status == "done", snap.message
    assert (
        snap.warning
        == f"Skipped 1 unreadable file in {tmp_path} (broken.png): it is left out of the set; fix or delete it."
    )


def test_a_training_job_keeps_one_preview_per_epoch_with_samples_from_the_same_z(tmp_path):
    import io

    import numpy as np
    from pictures import decoded, tiles
    from PIL import Image

    from vae_explorer.latent import encode_means, pca_2d

    snap = finish(TrainingJob(QUICK, tmp_path / "run").start())
    assert [f["epoch"] for f in snap.frames] == [0, 1, 2]  # before training, then after each epoch
    model = load_checkpoint(tmp_path / "run").model
    z = torch.randn(8, model.latent_dim, generator=torch.Generator().manual_seed(0))
    last = np.asarray(Image.open(io.BytesIO(snap.frames[-1]["samples_png"])).convert("L"))
    samples = tiles(last, 8, 8, (8, 8))
    expected = decoded(model, z.numpy())
    assert np.abs(samples.astype(int) - expected.astype(int)).max() <= 1  # the final model's decode of the fixed z
    first = tiles(np.asarray(Image.open(io.BytesIO(snap.frames[0]["samples_png"])).convert("L")), 8, 8, (8, 8))
    assert np.abs(first.astype(int) - expected.astype(int)).max() > 1  # the untrained model made something else of it
    from vae_explorer.data import load_dataset

    data = load_dataset(QUICK.data)
    mu, _ = encode_means(model, data.test_x[:500])
    plane = mu.numpy() if model.latent_dim == 2 else pca_2d(mu.numpy())[0]
    assert snap.frames[-1]["scatter"] == pytest.approx(plane, abs=2e-4) and len(snap.frames[-1]["labels"]) == len(plane)

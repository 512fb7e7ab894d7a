"""Background training jobs (the Train page's engine), without Streamlit."""

import threading
import time

import pytest
import torch

from conftest import TINY_DATA, TINY_MODEL
from vae_explorer import RunConfig, TrainConfig, load_checkpoint
from vae_explorer.errors import ConfigError
from vae_explorer.jobs import SweepJob, TrainingJob, plane_2d, run_folder

QUICK = RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=2, batch_size=32, seed=0, device="cpu"))


def finish(job, timeout=60.0):
    job.join(timeout)
    snap = job.snapshot()
    assert snap.finished, snap
    return snap


def test_training_job_saves_a_checkpoint_with_previews(tmp_path):
    snap = finish(TrainingJob(QUICK, tmp_path / "run").start())
    assert snap.status == "done" and "saved as run" in snap.message
    assert snap.step == snap.total_steps == 2 * 8 and [r["epoch"] for r in snap.history] == [1, 2]
    assert snap.originals.shape == snap.reconstructions.shape == (8, 1, 8, 8)
    assert snap.strip_png.startswith(b"\x89PNG")  # the page shows it as it is
    assert snap.scatter.shape == (64, 2) and snap.scatter_labels.shape == (64,)
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.history == snap.history
    assert checkpoint.config.model.image_shape == [1, 8, 8]


def test_stop_keeps_what_was_learned(tmp_path):
    config = RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=10_000, batch_size=16, device="cpu"))
    job = TrainingJob(config, tmp_path / "long").start()
    deadline = time.time() + 30
    while job.snapshot().step < 20 and time.time() < deadline:
        time.sleep(0.02)
    job.stop()
    snap = finish(job)
    assert snap.status == "stopped" and snap.step < snap.total_steps
    assert len(load_checkpoint(tmp_path / "long").history) == len(snap.history) >= 1


def test_a_failure_is_a_message_not_a_crash(tmp_path):
    bad = RunConfig(TINY_DATA, TINY_MODEL, TrainConfig(epochs=1, batch_size=10_000, device="cpu"))
    snap = finish(TrainingJob(bad, tmp_path / "bad").start())
    assert snap.status == "failed" and "batch_size 10000 is larger than the 256 training images" in snap.message
    assert not (tmp_path / "bad").exists()


def test_two_jobs_at_once_match_two_in_a_row(tmp_path):
    jobs = [TrainingJob(QUICK, tmp_path / f"run{i}").start() for i in range(2)]
    for job in jobs:
        finish(job)
    alone = finish(TrainingJob(QUICK, tmp_path / "alone").start())
    for i in range(2):
        weights = load_checkpoint(tmp_path / f"run{i}").model.state_dict()
        for key, value in load_checkpoint(tmp_path / "alone").model.state_dict().items():
            torch.testing.assert_close(weights[key], value, atol=1e-2, rtol=0)  # bf16 matmuls: close, not bitwise
    assert alone.history[-1]["test_loss"] == pytest.approx(jobs[0].snapshot().history[-1]["test_loss"], abs=0.5)
    assert not any(t.name == "TrainingJob" for t in threading.enumerate())


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


def test_plane_2d_shapes():
    import numpy as np

    assert plane_2d(np.ones((5, 1))).shape == (5, 2)
    points = np.random.default_rng(0).normal(size=(50, 6)) * [5, 3, 0.1, 0.1, 0.1, 0.1]
    flat = plane_2d(points)
    assert flat.shape == (50, 2) and flat[:, 0].var() > flat[:, 1].var()

"""Training in the background, for the app: a job runs `train` in its own thread and publishes
what a page draws (progress, history, a reconstruction strip, a latent scatter) as snapshots.

The page never waits on a job: it reads `job.snapshot()` on each rerun. A job builds its own
model, so nothing shared (a cached model another session explores) is ever touched. At most
`MAX_RUNNING` jobs train at once in one process; later ones wait for a slot, so a classroom
starting thirty trainings does not stall everyone's exploring on a 2-core machine.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig
from .errors import ConfigError, TrainingError, VaeExplorerError
from .embedding import pca_2d
from .images import png_bytes

MAX_RUNNING = 2
_SLOTS = threading.BoundedSemaphore(MAX_RUNNING)
PREVIEW_EVERY_S = 0.7  # how often, at most, the reconstruction strip and the scatter are redrawn
JOB_NICENESS = 10  # CPU priority of training threads (0 normal, 19 lowest)
SAVE_EVERY_S = 30.0  # a long run is also saved this often, so a server restart keeps most of it
log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """What a page shows of a job at one moment (a copy: the job goes on changing)."""

    status: str  # waiting | loading | running | saving | done | stopped | failed
    message: str = ""
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    originals: np.ndarray | None = None  # (N, C, H, W) floats in [0, 1]: the fixed preview images
    reconstructions: np.ndarray | None = None  # (N, C, H, W) their reconstructions now
    strip_png: bytes | None = None  # both as a PNG: originals on top, reconstructions below
    scatter: np.ndarray | None = None  # (M, 2) posterior means of test images, in their top-2 PCA plane
    scatter_labels: np.ndarray | None = None  # (M,)
    results: list[dict] = field(default_factory=list)  # a beta sweep: one row per finished beta
    saved: str | None = None  # the checkpoint folder, once written
    elapsed: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "failed")

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


def plane_2d(mu: np.ndarray) -> np.ndarray:
    """(M, D) latent means -> (M, 2): z itself for D = 2, else the top-2 principal components (padded for D = 1)."""
    return mu if mu.shape[1] == 2 else pca_2d(mu)[0]


def _lower_priority() -> None:
    """Run this thread (and the torch worker threads it starts, which inherit it) at a low CPU
    priority: a training then takes only what the sessions exploring the app leave idle.
    Linux sets niceness per thread; elsewhere this does nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), JOB_NICENESS)
    except (AttributeError, OSError):
        pass


class Job:
    """A piece of work in a daemon thread, with a stop flag and a snapshot under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state = Snapshot("waiting", "Waiting for a free training slot…")
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "Job":
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the job to stop after the current step; what it learned so far is kept."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def snapshot(self) -> Snapshot:
        with self._lock:
            state = replace(self._state, history=list(self._state.history), results=list(self._state.results))
        state.elapsed = (self._ended or time.perf_counter()) - self._started
        return state

    def _update(self, **values) -> None:
        with self._lock:
            for key, value in values.items():
                setattr(self._state, key, value)

    def _run(self) -> None:
        _lower_priority()
        while not _SLOTS.acquire(timeout=0.2):
            if self._stop.is_set():
                self._ended = time.perf_counter()
                self._update(status="stopped", message="Stopped before it started.")
                return
        try:
            self.work()
        except VaeExplorerError as exc:
            self._update(status="failed", message=str(exc))
        except MemoryError:
            self._update(status="failed", message="Training needs more memory than this machine has; use a smaller "
                                                  "batch size, model or max_train.")
        except Exception as exc:  # a bug: keep the server alive, say so, log the traceback
            log.exception("training job failed")
            self._update(status="failed", message=f"Training failed unexpectedly ({type(exc).__name__}: {exc}); "
                                                  "the server log has the details.")
        finally:
            self._ended = time.perf_counter()
            _SLOTS.release()

    def work(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _prepare(self, config: RunConfig):
        """Load the dataset, check the training config against it and fill in the model's shape and
        classes; returns the dataset and the optimizer steps one training run takes."""
        from .data import load_dataset
        from .models import fit_to_data
        from .training import check_fits

        self._update(status="loading", message=f"Loading {config.data.dataset}…")
        data = load_dataset(config.data)
        check_fits(config.train, data)
        config.model = fit_to_data(config.model, data.image_shape, data.class_names)
        return data, -(-len(data.train_x) // config.train.batch_size) * config.train.epochs


class TrainingJob(Job):
    """Train one model from `config` and save it to `out` (also when stopped, or at a NaN with
    the last good epoch)."""

    def __init__(self, config: RunConfig, out: str | Path, preview_images: int = 8, scatter_points: int = 500):
        super().__init__()
        self.config, self.out = copy.deepcopy(config), Path(out)
        self.preview_images, self.scatter_points = preview_images, scatter_points

    def work(self) -> None:
        from .checkpoints import save_checkpoint
        from .models import build_model
        from .training import train

        config = self.config
        data, total_steps = self._prepare(config)
        model = build_model(config.model, seed=config.train.seed)
        preview = _Preview(model, data, self.preview_images, self.scatter_points)
        self._update(status="running", message="Training…", originals=preview.originals, total_steps=total_steps,
                     **preview.draw())
        history: list[dict] = []
        last_save = time.perf_counter()

        def on_event(event) -> bool:
            nonlocal last_save
            now = time.perf_counter()
            values = {"step": event.step, "total_steps": event.total_steps, "epoch": event.epoch}
            if event.kind == "epoch":
                history.append(event.record)
                values["history"] = list(history)
            if preview.due(now) or (event.kind == "epoch" and event.epoch == config.train.epochs):
                values.update(preview.draw())
            self._update(**values)
            if event.kind == "epoch" and now - last_save > SAVE_EVERY_S:
                save_checkpoint(self.out, model, config, history)
                last_save = now
            return self._stop.is_set()

        try:
            train(model, data, config.train, [on_event])
        except TrainingError as exc:
            if history:
                save_checkpoint(self.out, model, config, history)
                raise TrainingError(f"{exc} The model from epoch {len(history)} was saved as {self.out.name}.") from None
            raise
        self._update(status="saving", message="Saving…", **preview.draw())
        if not history:
            raise TrainingError("training stopped before one step was taken; nothing was saved.")
        save_checkpoint(self.out, model, config, history)
        stopped = self._stop.is_set()
        epochs = f"{len(history)} epoch{'s' if len(history) != 1 else ''}" + (" (the last one partly)" if "stopped_at_step" in history[-1] else "")
        self._update(status="stopped" if stopped else "done", saved=str(self.out), history=list(history),
                     message=f"{'Stopped' if stopped else 'Done'} after {epochs}; saved as {self.out.name}.")


class SweepJob(Job):
    """Train one fresh model per beta (same seed, same epochs) and record the rate (KL) and the
    distortion (reconstruction NLL) of each on the test set, with its active units."""

    def __init__(self, config: RunConfig, betas: list[float]):
        super().__init__()
        if not betas:
            raise ConfigError("the beta sweep needs at least one beta; pick one or more values.")
        self.config, self.betas = copy.deepcopy(config), sorted(set(float(b) for b in betas))

    def work(self) -> None:
        from .evaluation import active_units
        from .latent import encode_means
        from .models import build_model
        from .training import average_loss, train

        config = self.config
        data, per_beta = self._prepare(config)
        results: list[dict] = []
        for index, beta in enumerate(self.betas):
            self._update(status="running", message=f"Training with beta = {beta:g} ({index + 1} of {len(self.betas)})…",
                         total_steps=per_beta * len(self.betas))
            model = build_model(config.model, seed=config.train.seed)
            offset = per_beta * index

            def on_event(event, offset=offset) -> bool:
                self._update(step=offset + event.step, epoch=event.epoch)
                return self._stop.is_set()

            history = train(model, data, replace(config.train, beta=beta), [on_event])
            if self._stop.is_set() and "stopped_at_step" in history[-1]:
                break
            y = data.test_y if model.cond_dim else None
            test = average_loss(model, data.test_x, y, beta=1.0, seed=config.train.seed)
            mu, _ = encode_means(model, data.test_x, y)
            results.append({"beta": beta, "recon": test["recon"], "kl": test["kl"], "neg_elbo": test["recon"] + test["kl"],
                            "active_units": active_units(mu), "latent_dim": model.latent_dim})
            self._update(results=list(results))
        stopped = self._stop.is_set()
        self._update(status="stopped" if stopped else "done", step=per_beta * len(results),
                     message=f"{'Stopped' if stopped else 'Done'}: {len(results)} of {len(self.betas)} beta values trained.")


class _Preview:
    """The fixed test images whose reconstructions and latent scatter a page shows as a model learns."""

    def __init__(self, model, data, images: int, points: int):
        self.model, self.last = model, 0.0
        self.conditional = bool(model.cond_dim)
        self.x, self.y = data.test_x[:images], data.test_y[:images]
        self.scatter_x, self.scatter_y = data.test_x[:points], data.test_y[:points]
        self.originals = self.x.numpy()

    def due(self, now: float) -> bool:
        return now - self.last >= PREVIEW_EVERY_S

    @torch.no_grad()
    def draw(self) -> dict:
        from .latent import encode_means

        self.last = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        try:
            device = next(self.model.parameters()).device
            y = self.y.to(device) if self.conditional else None
            reconstructions = self.model.reconstruct(self.x.to(device), y).cpu()
            mu, _ = encode_means(self.model, self.scatter_x, self.scatter_y if self.conditional else None)
        finally:
            self.model.train(was_training)
        # Encoded here, once per preview, not by every page rerun that shows it.
        strip = png_bytes(torch.cat([self.x, reconstructions]), nrow=len(self.x), min_cell=48)
        return {"reconstructions": reconstructions.numpy(), "strip_png": strip, "scatter": plane_2d(mu.numpy()),
                "scatter_labels": self.scatter_y.numpy()}


def run_folder(name: str, runs_dir: str | Path, taken: set[str]) -> Path:
    """The folder for a new checkpoint called `name` (sanitised) in `runs_dir`; refuses a name in use."""
    from .checkpoint_zip import sanitize_name

    if not name.strip():
        raise ConfigError("the checkpoint name is empty; type a name such as digits-beta4.")
    clean = sanitize_name(name.strip())
    path = Path(runs_dir) / clean
    if clean in taken or path.exists():
        raise ConfigError(f"a checkpoint named {clean} already exists; choose another name.")
    return path

"""The process a background job of the app trains in: `python -m vae_explorer.runs.worker`.

It reads one JSON line on stdin (what to do), trains at a lower CPU priority, and writes JSON
lines on stdout that the server's job turns into what the Train page shows:

    {"event": "status", "status": "loading" | "running" | "saving", "message": ...}
    {"event": "progress", "step": ..., "total_steps": ..., "epoch": ...}
    {"event": "epoch", "record": {...}}                    (the run's checkpoint is saved by then)
    {"event": "preview", "strip_png": BASE64, "scatter": [[x, y], ...], "labels": [...], "class_names": [...],
     "epoch": N | null, "samples_png": BASE64}              (epoch set: kept, one per epoch, for the epoch slider)
    {"event": "sweep", "result": {...}}                    (a beta sweep: one per finished beta)
    {"event": "done", "status": "done" | "stopped", "message": ..., "saved": PATH | null}
    {"event": "failed", "message": ...}

A line "stop" on stdin asks it to stop after the current step; what was learned is kept. In its
own process a training cannot slow the server's threads through the interpreter lock, cannot
change another session's numbers, and a crash of it leaves the server running.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import sys
import threading
import time
import traceback

JOB_NICENESS = 10  # CPU priority of a training (0 normal, 19 lowest): exploring sessions come first
PROGRESS_EVERY_S = 0.2
PREVIEW_EVERY_S = 0.7  # how often, at most, the reconstruction strip and the scatter are redrawn


def emit(**message) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Preview:
    """The fixed test images whose reconstructions and latent scatter the page shows as a model learns."""

    def __init__(self, model, data, images: int = 8, frames: list[dict] | None = None):
        self.model, self.data, self.last, self.class_names = model, data, 0.0, list(data.class_names)
        self.frames = frames if frames is not None else []  # the run's saved epoch frames: reused, not computed again
        self.x, self.y = data.test_x[:images], data.test_y[:images]

    def due(self) -> bool:
        return time.perf_counter() - self.last >= PREVIEW_EVERY_S

    def send(self, epoch: int | None = None) -> None:
        """Publish the preview; `epoch` (0 before training) marks one kept for the page's epoch slider."""
        import torch

        from ..images import png_bytes
        from ..latent.epochs import epoch_frame

        self.last = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                device = next(self.model.parameters()).device
                conditional = bool(self.model.cond_dim)
                reconstructions = self.model.reconstruct(
                    self.x.to(device), self.y.to(device) if conditional else None
                ).cpu()
        finally:
            self.model.train(was_training)
        # the codes on the PCA plane and the fixed-z samples: at an epoch's end, the frame the run just saved
        saved = self.frames[-1] if epoch is not None and self.frames and self.frames[-1]["epoch"] == epoch else None
        frame = saved or epoch_frame(self.model, self.data, epoch or 0)
        strip = png_bytes(torch.cat([self.x, reconstructions]), nrow=len(self.x), min_cell=48)
        samples = torch.from_numpy(frame["samples"]).float() / 255.0
        emit(
            event="preview",
            strip_png=base64.b64encode(strip).decode("ascii"),
            scatter=frame["scatter"].round(4).tolist(),
            labels=frame["labels"].tolist(),
            class_names=self.class_names,
            epoch=epoch,
            samples_png=base64.b64encode(png_bytes(samples, nrow=len(samples), min_cell=48)).decode("ascii"),
        )


class Stop:
    """Why the worker should stop: asked to (a "stop" line), or its server went away (stdin closed)."""

    def __init__(self) -> None:
        self.event, self.server_gone = threading.Event(), False

    def is_set(self) -> bool:
        return self.event.is_set()

    def watch(self) -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                self.event.set()
        self.server_gone = True  # stop too, keeping what was learned; the run is resumable later
        self.event.set()


def _progress(stop: Stop, preview: Preview | None, offset: int = 0, total: int | None = None):
    last = 0.0

    def callback(event) -> bool:
        nonlocal last
        now = time.perf_counter()
        if event.kind == "epoch" or now - last >= PROGRESS_EVERY_S:
            last = now
            emit(event="progress", step=offset + event.step, total_steps=total or event.total_steps, epoch=event.epoch)
        if event.kind == "epoch":
            emit(event="epoch", record=event.record)
        if preview is not None and (preview.due() or event.kind == "epoch"):
            preview.send(event.epoch if event.kind == "epoch" else None)
        return stop.is_set()

    return callback


def train_job(spec: dict, stop: Stop) -> None:
    from ..checkpoints import training_status, write_training
    from ..config import config_from_dict
    from ..data.image_folder import skipped_message
    from . import prepare_run, train_run

    config = None if spec.get("resume") else config_from_dict(spec["config"], "the Train form")
    emit(
        event="status",
        status="loading",
        message="Loading the data…" if config is None else f"Loading {config.data.dataset}…",
    )

    def reading(done: int, total: int) -> None:  # an image folder's first reading into the cache
        emit(
            event="status",
            status="loading",
            message=f"Reading the image folder into the cache: {done:,} of {total:,} images…",
        )

    run = prepare_run(config, spec["out"], resume=bool(spec.get("resume")), epochs=spec.get("epochs"), progress=reading)
    skipped = skipped_message(run.data)
    if skipped:
        emit(event="status", status="loading", warning=skipped[0].upper() + skipped[1:])
    preview = Preview(run.model, run.data, frames=run.frames)
    for record in run.history:  # a resumed run: its curves start at epoch 1
        emit(event="epoch", record=record)
    emit(event="status", status="running", message="Training…")
    preview.send(len(run.history))  # the model before this run's first epoch
    train_run(run, [_progress(stop, preview)])
    history = run.history
    if stop.server_gone and len(history) < run.config.train.epochs:
        write_training(run.out, training_status("interrupted", len(history), run.config.train.epochs))
    stopped = stop.is_set() or len(history) < run.config.train.epochs
    if spec.get("export_onnx") and not stop.server_gone:
        emit(event="status", status="running", message="Preparing the decoder for the browser…")
        _prepare_browser_decoder(run.out)
    epochs = f"{len(history)} epoch{'s' if len(history) != 1 else ''}" + (
        " (the last one partly)" if "stopped_at_step" in history[-1] else ""
    )
    emit(
        event="done",
        status="stopped" if stopped else "done",
        saved=str(run.out),
        message=f"{'Stopped' if stopped else 'Done'} after {epochs}; saved as {run.out.name}.",
    )


def _prepare_browser_decoder(out) -> None:
    """Export the new model's decoder to ONNX here, so that its first page in the app draws at
    once in the browser instead of waiting seconds for the export. A failure is left to the page,
    which decodes on the server and says why."""
    from ..checkpoints import decoder_onnx, load_checkpoint
    from ..errors import VaeExplorerError

    try:
        decoder_onnx(load_checkpoint(out))
    except (ImportError, RuntimeError, OSError, VaeExplorerError):
        pass


def sweep_job(spec: dict, stop: Stop) -> None:
    """One fresh model per beta (same seed, same epochs): the rate (KL) and distortion
    (reconstruction NLL) of each on the test set, with its active units. Nothing is saved."""
    from ..config import config_from_dict
    from ..data import load_dataset
    from ..evaluation import basic_metrics
    from ..models import build_model, fit_to_data
    from ..training import check_fits, train

    config = config_from_dict(spec["config"], "the Train form")
    betas = sorted({float(b) for b in spec["betas"]})
    emit(event="status", status="loading", message=f"Loading {config.data.dataset}…")
    data = load_dataset(config.data)
    check_fits(config.train, data)
    config.model = fit_to_data(config.model, data.image_shape, data.class_names)
    per_beta = -(-len(data.train_x) // config.train.batch_size) * config.train.epochs
    done = 0
    for index, beta in enumerate(betas):
        emit(event="status", status="running", message=f"Training with beta = {beta:g} ({index + 1} of {len(betas)})…")
        model = build_model(config.model, seed=config.train.seed)
        history = train(
            model,
            data,
            dataclasses.replace(config.train, beta=beta),
            [_progress(stop, None, offset=per_beta * index, total=per_beta * len(betas))],
        )
        if stop.is_set() and "stopped_at_step" in history[-1]:
            break
        metrics, _ = basic_metrics(model, data, seed=config.train.seed)
        emit(
            event="sweep",
            result={
                "beta": beta,
                "recon": metrics["recon"],
                "kl": metrics["kl"],
                "neg_elbo": metrics["neg_elbo"],
                "active_units": metrics["active_units"],
                "latent_dim": model.latent_dim,
            },
        )
        done += 1
        if stop.is_set():
            break
    stopped = done < len(betas)
    emit(
        event="done",
        status="stopped" if stopped else "done",
        saved=None,
        message=f"{'Stopped' if stopped else 'Done'}: {done} of {len(betas)} beta values trained.",
    )


def main() -> int:
    from ..errors import VaeExplorerError

    try:
        os.nice(JOB_NICENESS)
    except (AttributeError, OSError):  # not on this system
        pass
    spec = json.loads(sys.stdin.readline())
    stop = Stop()
    threading.Thread(target=stop.watch, daemon=True).start()
    try:
        (sweep_job if spec["kind"] == "sweep" else train_job)(spec, stop)
    except VaeExplorerError as exc:
        emit(event="failed", message=str(exc))
    except MemoryError:
        emit(
            event="failed",
            message="Training needs more memory than this machine has; use a smaller batch size, model or max_train.",
        )
    except Exception:  # a bug: say so in one line, the traceback goes to the server's log
        traceback.print_exc()
        emit(event="failed", message="Training failed unexpectedly; the server log has the details.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

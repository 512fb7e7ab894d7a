"""One run: prepare it (a new model from a config, or a checkpoint to resume), train it with
`train`, save a checkpoint after every epoch with what resuming needs, and end by writing the
run's basic test metrics and its status.

    run = prepare_run(config, out)               # or prepare_run(None, out, resume=True, epochs=20)
    history = train_run(run, callbacks=[...])     # run.history holds every epoch, earlier ones too

training.json says "running" while epochs are being saved, then "finished" or "stopped" (a
callback asked to stop). A run whose training.json says "running" but whose process is gone was
interrupted (a crash, a server restart) and can be resumed from its last saved epoch.
"""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..checkpoints import (
    load_checkpoint,
    load_training_state,
    read_epoch_frames,
    save_checkpoint,
    training_status,
    write_metrics,
    write_training,
)
from ..config import RunConfig
from ..data import Dataset, load_dataset
from ..errors import ConfigError, TrainingError
from ..evaluation import basic_metrics
from ..latent.epochs import epoch_frame
from ..models import VAE, build_model, fit_to_data
from ..training import Callback, TrainingState, check_fits, distributed, train


@dataclass
class Run:
    config: RunConfig
    out: Path
    model: VAE
    data: Dataset
    history: list[dict] = field(default_factory=list)  # every epoch so far, earlier sessions included
    resume: TrainingState | None = None
    frames: list[dict] = field(default_factory=list)  # latent/epochs.py: before training (epoch 0), then each epoch

    @property
    def epochs_done(self) -> int:
        return len(self.history)


def prepare_run(
    config: RunConfig | None, out: str | Path, resume: bool = False, epochs: int | None = None, progress=None
) -> Run:
    """A new run of `config` into `out`, or (resume=True) the checkpoint at `out` continued to
    `epochs` epochs in all (default: the epochs it was started with). `progress(done, total)` is
    told while an image folder is first decoded into its cache."""
    out = Path(out)
    check_writable(out)
    if not resume:
        config = dataclasses.replace(config)  # the caller's config is left as it was
        data = load_dataset(config.data, progress)
        check_fits(config.train, data)
        config.model = fit_to_data(config.model, data.image_shape, data.class_names)
        return Run(config, out, build_model(config.model, seed=config.train.seed), data)
    checkpoint = load_checkpoint(out)
    state = load_training_state(out, checkpoint.model)
    config = checkpoint.config
    target = epochs or config.train.epochs
    if target <= state.epochs_done:
        raise ConfigError(
            f"{out.name} has trained {state.epochs_done} epochs already; pass --epochs above "
            f"{state.epochs_done} to train it further."
        )
    config.train = dataclasses.replace(config.train, epochs=target)
    data = load_dataset(config.data, progress)
    check_fits(config.train, data)
    history = checkpoint.history[: state.epochs_done]
    frames = [f for f in read_epoch_frames(out) if f["epoch"] <= state.epochs_done]
    return Run(config, out, checkpoint.model, data, history, state, frames)


def _why(exc: OSError) -> str:
    """An OSError of a save, in words a person acts on."""
    if exc.errno == errno.ENOSPC:
        return "the disk is full; free some space and resume the run"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "its folder cannot be written; make it writable and resume the run"
    return f"{exc.strerror or 'a file system error'}; resume the run once that is fixed"


def check_writable(out: Path) -> None:
    """ConfigError, before any training, when the folder a run saves into cannot be written."""
    import tempfile

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{out.parent} cannot be written ({exc.strerror or 'a file system error'}); make it writable, "
            "or save elsewhere (--out, --runs-dir)."
        ) from None


def train_run(run: Run, callbacks: Iterable[Callback] = ()) -> list[dict]:
    """Train the run to its configured epochs, saving after each epoch; returns every epoch's record.

    A TrainingError (the loss became NaN) leaves the checkpoint of the last good epoch in `out`
    and is raised with where that is."""
    target = run.config.train.epochs
    stopped = False

    def save(event) -> None:
        nonlocal stopped
        if event.kind != "epoch":
            return
        run.history.append(event.record)
        stopped = "stopped_at_step" in event.record
        run.frames.append(epoch_frame(event.model, run.data, event.epoch))
        try:
            save_checkpoint(
                run.out,
                event.model,
                run.config,
                run.history,
                state=event.state,
                training=training_status("running", event.epoch, target),
                frames=run.frames,
            )
        except OSError as exc:  # a full disk, a folder made read-only: the previous save stays as it was
            run.history.pop()
            run.frames.pop()
            raise TrainingError(
                f"epoch {event.epoch} could not be saved ({_why(exc)})"
                + ("." if run.history else "; nothing was saved.")
            ) from None

    if not run.frames and distributed.is_main():  # the model before training, for the replay
        run.frames.append(epoch_frame(run.model, run.data, 0))

    try:
        trained = train(run.model, run.data, run.config.train, [save, *callbacks], resume=run.resume)
    except TrainingError as exc:
        if run.history and distributed.is_main():
            try:
                write_training(run.out, training_status("failed", len(run.history), target))
            except (
                OSError
            ):  # the disk that refused the save: training.json keeps saying "running", which reads as interrupted
                pass
            raise TrainingError(
                f"{exc} The checkpoint of epoch {len(run.history)} was kept in {run.out.name}."
            ) from None
        raise
    if not distributed.is_main():  # under torchrun the callbacks (and so the saving) are rank 0's alone
        return run.history + trained
    if not run.history:
        raise TrainingError("training stopped before one step was taken; nothing was saved.")
    stopped = stopped or len(run.history) < target
    metrics, _ = basic_metrics(run.model, run.data, beta=run.config.train.beta, seed=run.config.train.seed)
    write_metrics(run.out, metrics)
    write_training(run.out, training_status("stopped" if stopped else "finished", len(run.history), target))
    return run.history

"""Training: one function, `train(model, data, config, callbacks)`, used by the CLI, the app and
the notebook alike; autograd computes the gradients and `torch.optim.Adam` takes the steps.

Batches are slices of the in-memory tensors through a seeded permutation (or, for a set kept on
disk, rows read from its uint8 store): there is no DataLoader and no per-sample Python on the
hot path. After every optimizer step and every epoch
each callback receives a `TrainingEvent`; a callback that returns True stops training after
that step (what was learned is kept and the partial epoch is recorded). Epoch events carry the
`TrainingState` (optimizer moments, random-number generator states, counters) that a
checkpoint keeps, so `train(..., resume=state)` continues exactly where the run stopped: two
epochs and a resume to four end with the same weights as four straight epochs.

A step (forward, loss, backward, Adam) is `step.Step`; with `train.capture` on a CUDA GPU it is
`step.CapturedStep`, recorded once as a CUDA graph and replayed for every full batch.

Nothing process-wide is touched: the batch order and the noise come from the run's own seeded
generators, mixed precision is `torch.autocast` (thread-local), so two trainings in one process
(two app sessions) neither disturb each other nor change anyone else's numbers.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from ..config import TrainConfig
from ..data import Dataset
from ..data.store import ImageStore
from ..errors import ConfigError, TrainingError
from ..models import VAE
from ..models.losses import free_bits_loss
from . import distributed
from .devices import make_optimizer, resolve_device
from .step import CapturedStep, CaptureFailed, Step


@dataclass
class TrainingState:
    """What a checkpoint keeps to resume a run: valid as given (the tensors are the live ones)."""

    optimizer: dict  # torch.optim.Adam.state_dict()
    order_rng: torch.Tensor  # the batch-order generator's state (uint8)
    noise_rng: torch.Tensor  # the noise (eps) generator's state (uint8)
    epochs_done: int
    steps_done: int


@dataclass
class TrainingEvent:
    kind: str  # "step" after an optimizer step, "epoch" after an epoch's test evaluation
    epoch: int  # 1-based epoch in progress
    step: int  # optimizer steps done so far, over all epochs
    total_steps: int  # steps the whole run would take
    raw_loss: float | torch.Tensor  # see `loss`; a step's is still on the device
    record: dict | None  # the epoch's history record (epoch events only)
    model: VAE
    state: TrainingState | None = None  # epoch events: what a checkpoint keeps to resume from here

    @property
    def loss(self) -> float:
        """The batch's loss (step events) or the epoch's mean training loss (epoch events). A step's is
        read from the device only when a callback asks (the read waits for the GPU), so a callback
        that shows it now and then costs one wait then, not one per step."""
        return float(self.raw_loss)


Callback = Callable[[TrainingEvent], "bool | None"]


class _Objective(torch.nn.Module):
    """The model's loss as a module's forward, so that DistributedDataParallel can wrap it (it
    averages the gradients of what goes through forward). Per-image (recon, kl, total): the ELBO
    (with beta and free bits) or the IWAE bound, as config.objective says."""

    def __init__(self, model: VAE, config: TrainConfig):
        super().__init__()
        self.model = model
        self.objective, self.k, self.free_bits = config.objective, config.iwae_samples, config.free_bits

    def forward(self, x, y, beta: float, generator):
        if self.objective == "iwae":
            parts = self.model.iwae_loss(x, y, self.k, generator)
        elif self.free_bits > 0:  # under DDP each process's share of the batch has its own KL means
            parts, _, kl_per_dim = self.model.loss_and_posterior(x, y, beta, generator)
            parts = free_bits_loss(parts.recon, kl_per_dim, beta, self.free_bits)
        else:
            parts = self.model.loss(x, y, beta, generator)
        return parts.recon, parts.kl, parts.total


@torch.no_grad()
def average_loss(
    model: VAE, x: torch.Tensor, y: torch.Tensor | None, beta: float = 1.0, batch_size: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Mean recon, KL and recon + beta * KL per image over a whole set, in nats; and per latent
    dimension, the mean KL to the prior (nats) and the variance of the posterior means over the
    set (a dimension is active when it exceeds 0.01, Burda et al.). A spatial latent's dimensions are
    its channels: the KL summed over positions, the variance over every image's every position.

    The one sample of z per image comes from a CPU generator seeded with `seed`, so the figure is
    repeatable, and the same on every device.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    sums = torch.zeros(3, dtype=torch.float64)
    dims = torch.zeros(3, model.latent_dim, dtype=torch.float64)  # per dimension: KL, sum of mu, sum of mu^2
    positions = 0  # posterior means counted: one per image, or one per image and latent position
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = None if y is None else y[start : start + batch_size].to(device)
        parts, q, kl_per_dim = model.loss_and_posterior(xb, yb if model.cond_dim else None, beta, generator)
        sums += torch.stack([parts.recon.sum(), parts.kl.sum(), parts.total.sum()]).double().cpu()
        mean = q.mean.double()
        if mean.dim() > 2:  # (B, D, h, w) -> (B h w, D): every position a sample of each channel
            mean = mean.transpose(0, 1).flatten(1).T
        positions += len(mean)
        dims += torch.stack([kl_per_dim.double().sum(0), mean.sum(0), mean.pow(2).sum(0)]).cpu()
    model.train(was_training)
    n = max(len(x), 1)
    recon, kl, total = (sums / n).tolist()
    mu_var = (dims[2] - dims[1].pow(2) / max(positions, 1)) / max(positions - 1, 1)  # unbiased, as torch.var
    return {
        "loss": total,
        "recon": recon,
        "kl": kl,
        "kl_per_dim": (dims[0] / n).tolist(),
        "mu_var": mu_var.clamp(min=0).tolist(),
    }


def kl_weight(config: TrainConfig, epoch: int, step_in_epoch: int, steps_per_epoch: int) -> float:
    """beta, ramped linearly from 0 over the first `warmup_epochs` epochs (step by step)."""
    if config.warmup_epochs == 0:
        return config.beta
    progress = (epoch - 1 + step_in_epoch / steps_per_epoch) / config.warmup_epochs
    return config.beta * min(1.0, progress)


def learning_rate(config: TrainConfig, epoch: int, step_in_epoch: int, steps_per_epoch: int) -> float:
    """The learning rate of a step: a function of where the step is, so a resumed run gets the same."""
    if (
        config.lr_schedule == "cosine"
    ):  # from lr at the first step to 0 after the last (Loshchilov & Hutter, no restarts)
        progress = (epoch - 1 + step_in_epoch / steps_per_epoch) / config.epochs
        return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if config.lr_schedule == "step":
        return config.lr * config.lr_gamma ** ((epoch - 1) // config.lr_step_epochs)
    return config.lr


def check_fits(config: TrainConfig, data: Dataset) -> None:
    """Raise ConfigError when the training config cannot run on this dataset."""
    from ..config import check_objective

    check_objective(config, "train config")  # also for a TrainConfig made in Python, not read from a file
    n = len(data.train_x)
    if config.batch_size > n:
        raise ConfigError(
            f"train.batch_size {config.batch_size} is larger than the {n} training images; lower --batch-size."
        )
    check_capture(config, resolve_device(config.device))


def check_capture(config: TrainConfig, device: torch.device) -> None:
    """train.capture records the step as a CUDA graph: on a CUDA device, uncompiled."""
    if config.capture and config.compile:
        raise ConfigError("train.capture and train.compile cannot be combined; leave one of them off.")
    if config.capture and device.type != "cuda":
        raise ConfigError(
            f"train.capture records the training step as a CUDA graph, and the device here is {device.type}: "
            "leave train.capture off, or train on a CUDA GPU."
        )


def channels_last(config: TrainConfig, model: VAE, device: torch.device) -> bool:
    """Whether training keeps the model's 4-D weights and the batches channels-last: asked for, or "auto", the
    model has convolutions and `device` is a CPU (on this project's machine a step of fashion_mnist_conv took 13%
    less time, of photos_spatial 20-30%) or a CUDA GPU (cuDNN's tensor-core convolutions read that layout). Not on
    Apple's MPS: torch's 2-D convolution backward pass there ran about 30x slower channels-last until August 2026
    (pytorch/pytorch#193349), so auto keeps channel planes there and on any other device."""
    if config.memory_format != "auto":
        return config.memory_format == "channels_last"
    convolutions = any(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in model.modules())
    return convolutions and device.type in ("cpu", "cuda")


def _match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each loaded moment its parameter's memory layout: the fused Adam kernel walks a parameter and its
    moments as flat memory, so a channels-last weight with a moment in channel planes would be updated wrongly."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    optimizer.state[param][key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _compile(model: VAE) -> None:
    """torch.compile the encoder and decoder in place (their parameters, and so the checkpoint, unchanged)."""
    model.encoder.compile()
    model.decoder.compile()


RESIDENT_CHUNK = 8192  # images read from disk at a time while a set is moved to the GPU


def resident_images(store: ImageStore, device: torch.device) -> torch.Tensor | None:
    """A set kept on disk, as uint8 on a CUDA device when it takes at most a quarter of the memory free
    there (each batch then converted to float there); None elsewhere: read batch by batch."""
    if device.type != "cuda" or len(store) * store.shape[1:].numel() > torch.cuda.mem_get_info(device)[0] // 4:
        return None
    return hold(store, device)


def hold(store: ImageStore, device: torch.device) -> torch.Tensor:
    """The store's images as one uint8 tensor on `device`, read a chunk at a time (host memory never holds the set)."""
    held = torch.empty(tuple(store.shape), dtype=torch.uint8, device=device)
    for start in range(0, len(store), RESIDENT_CHUNK):
        held[start : start + RESIDENT_CHUNK] = store.uint8(slice(start, start + RESIDENT_CHUNK)).to(device)
    return held


def _batch(x, resident: torch.Tensor | None, index: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The batch's images as float32 in [0, 1] on the device: sliced from the set there, or read from a set
    on disk as uint8 (through pinned memory to a GPU, the copy overlapping the steps before it)."""
    if resident is not None:
        return resident.index_select(0, index).float().div_(255.0)
    if not isinstance(x, ImageStore):
        return x.index_select(0, index)
    images = x.uint8(index)
    if device.type == "cuda":
        images = images.pin_memory().to(device, non_blocking=True)
    return images.to(device).float().div_(255.0)


NONFINITE_CHECK_STEPS = 500  # steps between two looks at the device's non-finite flag (and at the end of each epoch)


def _check_finite(model: VAE, last_good: dict, losses: torch.Tensor, epoch: int, config: TrainConfig) -> None:
    """Stop as _diverged does when a step's loss in `losses` (this epoch's so far) is not a number."""
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        first = int(bad[0, 0])
        _diverged(model, last_good, float(losses[first]), epoch, first, config)


def _diverged(model: VAE, last_good: dict, loss: float, epoch: int, step_index: int, config: TrainConfig) -> None:
    """Restore the end of the last complete epoch and say where the loss stopped being a number."""
    model.load_state_dict(last_good)
    raise TrainingError(
        f"the loss became {loss} at epoch {epoch}, step {step_index + 1}; the model was restored to "
        f"the end of epoch {epoch - 1}: lower the learning rate (now {config.lr:g}) and train again."
    )


def train(
    model: VAE,
    data: Dataset,
    config: TrainConfig,
    callbacks: Iterable[Callback] = (),
    resume: TrainingState | None = None,
) -> list[dict]:
    """Train `model` in place on `data` for `config.epochs` epochs in all and return the history of
    the epochs trained now, one record per epoch; with `resume`, go on from where that state was
    saved (the model must hold the weights saved with it).

    Raises TrainingError when the loss becomes NaN or infinite; the model is then restored to the
    end of the last complete epoch (what a per-epoch checkpoint holds).
    """
    device = resolve_device(config.device)
    laid = channels_last(config, model, device)
    if laid:
        model.to(memory_format=torch.channels_last)
    try:
        return _train(model, data, config, callbacks, resume, device, laid)
    finally:  # the model goes back as it came, whatever happened
        if laid:
            model.to(memory_format=torch.contiguous_format)


def _train(model, data, config, callbacks, resume, device: torch.device, laid: bool) -> list[dict]:
    callbacks = list(callbacks)
    check_fits(config, data)
    if not getattr(model, "standard_prior", True) and config.free_bits > 0:
        from ..config import check_model_kind

        check_model_kind(model.config, config, "train config")
    n = len(data.train_x)
    model.to(device)
    if config.compile:
        _compile(model)
    # Under torchrun: every global batch of config.batch_size is split across the processes (rank r
    # takes every world-th image of it) and DDP averages the gradients; only rank 0 runs callbacks.
    rank, world = distributed.world()
    if world > 1 and config.capture:
        raise ConfigError("train.capture works in one process; leave train.capture off under torchrun.")
    objective = _Objective(model, config)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        objective = DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)
    if world > 1 and config.batch_size < world:
        raise ConfigError(
            f"train.batch_size {config.batch_size} is smaller than the {world} processes; raise --batch-size."
        )
    callbacks = callbacks if rank == 0 else []
    # A set in memory moves to the device whole; one on disk (an ImageStore) is read batch by batch,
    # moved as uint8 and converted to float there, so memory holds a batch, not the set.
    on_disk = isinstance(data.train_x, ImageStore)
    x, y = (data.train_x if on_disk else data.train_x.to(device)), data.train_y.to(device)
    resident = resident_images(x, device) if on_disk else None  # on a GPU with room: the uint8 set held there
    conditional = bool(model.cond_dim)
    optimizer = make_optimizer(model.parameters(), config.lr, capturable=config.capture)
    # Own generators for the batch order and for eps, so that a run depends on its seed alone.
    order_generator = torch.Generator().manual_seed(config.seed)
    noise_generator = torch.Generator(device=device).manual_seed(config.seed + 1 + 1000 * rank)
    # several processes drop an epoch's last, partial batch (a shard could be empty)
    steps_per_epoch = math.ceil(n / config.batch_size) if world == 1 else max(1, n // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    first_epoch, step = 1, 0
    if getattr(model.config, "prior", "normal") == "vamp" and not bool(model.pseudo_started):
        # a VampPrior's pseudo-inputs start as K training images drawn with the run's seed (the same in every process)
        picked = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))[: model.config.pseudo_inputs]
        model.start_pseudo_inputs(x.uint8(picked).float().div(255.0) if on_disk else data.train_x[picked])
    if resume is not None:
        optimizer.load_state_dict(resume.optimizer)
        _match_layouts(optimizer)  # a state saved by a run with the other memory format
        order_generator.set_state(resume.order_rng)
        if rank == 0:  # the checkpoint holds rank 0's noise; the others start afresh from their own seeds
            noise_generator.set_state(resume.noise_rng.to(noise_generator.get_state().device))
        else:
            noise_generator.manual_seed(config.seed + 1 + 1000 * rank + resume.steps_done)
        first_epoch, step = resume.epochs_done + 1, resume.steps_done
        for group in optimizer.param_groups:  # a saved state brings its own flags; a recorded step needs this one
            group["capturable"] = bool(group.get("capturable")) or config.capture
    if config.capture:  # the step recorded once as a CUDA graph (on another device: the same fixed tensors, unrecorded)
        run_step = CapturedStep(
            objective, optimizer, device, config.precision, noise_generator, config.batch_size, device.type == "cuda"
        )
    else:
        run_step = Step(objective, optimizer, device, config.precision, noise_generator)
    history: list[dict] = []
    last_good = copy.deepcopy(model.state_dict())
    stop = False

    for epoch in range(first_epoch, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=order_generator)
        order = order if on_disk and resident is None else order.to(device)
        # recon, kl, objective summed over images, in float64 on the device, and each step's loss for the non-finite
        # check: read once an epoch, so a step never waits for the device. (Under torchrun
        # each step's loss is summed over the processes at once, so that every process stops at the same step.)
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        losses = torch.zeros(steps_per_epoch, dtype=torch.float64, device=device)  # each step's, for the check
        seen = 0
        for i in range(steps_per_epoch):
            index = order[i * config.batch_size : (i + 1) * config.batch_size][rank::world]
            xb = _batch(x, resident, index, device)  # (B, C, H, W)
            if laid:
                xb = xb.contiguous(memory_format=torch.channels_last)
            beta = kl_weight(config, epoch, i, steps_per_epoch)
            yb = y.index_select(0, index.to(device)) if conditional else None
            try:
                parts = run_step(xb, yb, beta, learning_rate(config, epoch, i, steps_per_epoch))  # recon, kl, loss
            except CaptureFailed as error:
                model.load_state_dict(last_good)
                raise TrainingError(
                    f"this model's training step could not be recorded as a CUDA graph ({error}); the model was "
                    f"restored to the end of epoch {epoch - 1}: train again with train.capture off."
                ) from None
            if world > 1:  # every process stops at the same step, for a NaN anywhere or a callback's stop
                loss_value = distributed.all_sum([float(parts[2])], device)[0] / world
                if not math.isfinite(loss_value):
                    _diverged(model, last_good, loss_value, epoch, i, config)
                parts[2] = loss_value
            losses[i] = parts[2]
            step += 1
            seen += len(xb)
            sums += torch.stack([parts[0], parts[1], parts[2] * len(xb)])
            if (i + 1) % NONFINITE_CHECK_STEPS == 0:  # a long epoch does not run on in vain
                _check_finite(model, last_good, losses[: i + 1], epoch, config)
            event = TrainingEvent("step", epoch, step, total_steps, parts[2], None, model)
            wants_stop = any([bool(callback(event)) for callback in callbacks])
            if world > 1:
                wants_stop = distributed.all_sum([float(wants_stop)], device)[0] > 0
            if wants_stop:
                stop = True
                break

        # the epoch's one wait for the device: weights after a non-finite loss are not kept
        _check_finite(model, last_good, losses[: steps_per_epoch if not stop else i + 1], epoch, config)
        test = average_loss(model, data.test_x, data.test_y, config.beta, seed=config.seed)
        *sums, seen = distributed.all_sum([*sums.tolist(), float(seen)], device)  # over every process's shard
        train_recon, train_kl, train_loss = (total / max(seen, 1) for total in sums)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_recon": train_recon,
            "train_kl": train_kl,
            "test_loss": test["loss"],
            "test_recon": test["recon"],
            "test_kl": test["kl"],
            "test_kl_per_dim": test["kl_per_dim"],
            "test_mu_var": test["mu_var"],  # how each dimension learns, epoch by epoch
            "seconds": time.perf_counter() - started,
            "beta": kl_weight(config, epoch, steps_per_epoch, steps_per_epoch),
            "lr": learning_rate(config, epoch, steps_per_epoch - 1, steps_per_epoch),
            "world_size": world,
            "train_images": int(seen),  # over all processes: each image of the epoch once
        }
        if stop:
            record["stopped_at_step"] = int(seen) // config.batch_size
        history.append(record)
        last_good = copy.deepcopy(model.state_dict())
        saved = optimizer.state_dict()
        for group in saved["param_groups"]:  # a captured step's learning rate is a device tensor: kept as a number
            group["lr"] = float(group["lr"])
        state = TrainingState(saved, order_generator.get_state(), noise_generator.get_state(), epoch, step)
        event = TrainingEvent("epoch", epoch, step, total_steps, train_loss, record, model, state)
        ends = any([bool(callback(event)) for callback in callbacks]) or stop
        if world > 1:  # rank 0's callbacks decide for every process
            ends = distributed.all_sum([float(ends)], device)[0] > 0
        if ends:
            break
    model.eval()
    return history

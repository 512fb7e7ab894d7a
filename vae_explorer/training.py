"""Training: one function, `train(model, data, config, callbacks)`, used by the CLI, the app and
the notebook alike.

Batches are slices of the in-memory tensors through a seeded permutation: there is no
DataLoader and no per-sample Python on the hot path. After every optimizer step and every epoch
each callback receives a `TrainingEvent`; a callback that returns True stops training after
that step (what was learned is kept and the partial epoch is recorded).
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from .config import TrainConfig
from .data import Dataset
from . import fast_mlp
from .errors import ConfigError, TrainingError
from .models import VAE
from .optim import make_optimizer


@dataclass
class TrainingEvent:
    kind: str  # "step" after an optimizer step, "epoch" after an epoch's test evaluation
    epoch: int  # 1-based epoch in progress
    step: int  # optimizer steps done so far, over all epochs
    total_steps: int  # steps the whole run would take
    loss: float  # the batch's loss (step events) or the epoch's mean training loss (epoch events)
    record: dict | None  # the epoch's history record (epoch events only)
    model: VAE


Callback = Callable[[TrainingEvent], "bool | None"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA, then Apple MPS, then CPU; a named device must exist here."""
    mps = getattr(torch.backends, "mps", None)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device {name!r} is not a device name; use auto, cpu, cuda, cuda:N or mps.") from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
        "mps": mps is not None and mps.is_available(),
    }.get(device.type, False)
    if not available:
        raise ConfigError(f"train.device {name!r} is not available on this machine; use --device auto or cpu.")
    return device


def flush_denormals_process_wide() -> None:
    """Flush denormal floats to zero in this thread and in every torch worker thread started later.

    Call it before the first parallel torch op of a process: worker threads copy the setting
    when they start. Denormals appear as Adam's moments decay towards zero for weights whose
    gradient stays zero, and without this later epochs ran 20% slower on this CPU.
    """
    torch.set_flush_denormal(True)


_FAST_LOCK = threading.Lock()
_fast_users = 0  # trainings in this process now running with precision "fast"
_saved_precision = "highest"


@contextlib.contextmanager
def precision_mode(precision: str):
    """"fast": float32 matrix products may use bfloat16 internally (oneDNN/AMX on CPU, TF32 on
    CUDA) and denormal floats are flushed to zero in this thread, which otherwise slow CPU maths
    several-fold as weights settle.

    The matmul precision is process-wide: it is counted, so with two trainings in one process
    (two app sessions) the first to finish does not switch it back under the other.
    """
    global _fast_users, _saved_precision
    if precision != "fast":
        yield
        return
    with _FAST_LOCK:
        if _fast_users == 0:
            _saved_precision = torch.get_float32_matmul_precision()
            torch.set_float32_matmul_precision("medium")
        _fast_users += 1
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        with _FAST_LOCK:
            _fast_users -= 1
            if _fast_users == 0:
                torch.set_float32_matmul_precision(_saved_precision)


@torch.no_grad()
def average_loss(model: VAE, x: torch.Tensor, y: torch.Tensor | None, beta: float = 1.0,
                 batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean recon, KL and recon + beta * KL per image over a whole set, in nats.

    The one sample of z per image comes from a generator seeded with `seed`, so the figure is
    repeatable.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    sums = torch.zeros(3, dtype=torch.float64)
    for start in range(0, len(x), batch_size):
        xb = x[start: start + batch_size].to(device)
        yb = None if y is None else y[start: start + batch_size].to(device)
        parts = model.loss(xb, yb if model.cond_dim else None, beta, generator)
        sums += torch.stack([parts.recon.sum(), parts.kl.sum(), parts.total.sum()]).double().cpu()
    model.train(was_training)
    recon, kl, total = (sums / max(len(x), 1)).tolist()
    return {"loss": total, "recon": recon, "kl": kl}


def kl_weight(config: TrainConfig, epoch: int, step_in_epoch: int, steps_per_epoch: int) -> float:
    """beta, ramped linearly from 0 over the first `warmup_epochs` epochs (step by step)."""
    if config.warmup_epochs == 0:
        return config.beta
    progress = (epoch - 1 + step_in_epoch / steps_per_epoch) / config.warmup_epochs
    return config.beta * min(1.0, progress)


def check_fits(config: TrainConfig, data: Dataset) -> None:
    """Raise ConfigError when the training config cannot run on this dataset."""
    n = len(data.train_x)
    if config.batch_size > n:
        raise ConfigError(f"train.batch_size {config.batch_size} is larger than the {n} training images; lower --batch-size.")
    resolve_device(config.device)


def train(model: VAE, data: Dataset, config: TrainConfig, callbacks: Iterable[Callback] = ()) -> list[dict]:
    """Train `model` in place on `data` and return the history, one record per epoch.

    Raises TrainingError when the loss becomes NaN or infinite; the model is then restored to the
    end of the last complete epoch (what a per-epoch checkpoint holds).
    """
    callbacks = list(callbacks)
    check_fits(config, data)
    n = len(data.train_x)
    seed_everything(config.seed)
    device = resolve_device(config.device)
    model.to(device)
    x, y = data.train_x.to(device), data.train_y.to(device)
    conditional = bool(model.cond_dim)
    fast_step = fast_mlp.MLPStep(model) if fast_mlp.supports(model) else None
    if fast_step is not None:
        x = x.reshape(len(x), -1)  # the MLP flattens the images first anyway
    optimizer = make_optimizer(model.parameters(), config.lr)
    # Own generators for the batch order and for eps, so two trainings in one process (two app
    # sessions) neither disturb each other nor depend on the global RNG.
    order_generator = torch.Generator().manual_seed(config.seed)
    noise_generator = torch.Generator(device=device).manual_seed(config.seed + 1)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    history: list[dict] = []
    last_good = copy.deepcopy(model.state_dict())
    step, stop = 0, False

    with precision_mode(config.precision):
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=order_generator).to(device)
            sums = [0.0, 0.0, 0.0]  # recon, kl, objective summed over images
            seen = 0
            for i in range(steps_per_epoch):
                index = order[i * config.batch_size: (i + 1) * config.batch_size]
                xb = x.index_select(0, index)  # (B, C, H, W), or (B, pixels) for the fast MLP step
                beta = kl_weight(config, epoch, i, steps_per_epoch)
                optimizer.zero_grad(set_to_none=True)
                if fast_step is not None:  # the loss and gradients of the branch below, without autograd
                    # Alone in "fast" precision it may switch the process-wide matmul precision to
                    # float32 around its small layers (faster so); beside another training it does not.
                    alone = config.precision == "fast" and _fast_users == 1
                    recon_sum, kl_sum = fast_step(xb, beta, noise_generator, small_layers_in_float32=alone)
                    recon_value, kl_value = torch.stack([recon_sum, kl_sum]).tolist()
                    loss_value = (recon_value + beta * kl_value) / len(xb)
                else:
                    parts = model.loss(xb, y.index_select(0, index) if conditional else None, beta, noise_generator)
                    loss = parts.total.mean()
                    recon_value, kl_value, loss_value = torch.stack([parts.recon.detach().sum(), parts.kl.detach().sum(), loss.detach()]).tolist()
                if not math.isfinite(loss_value):
                    model.load_state_dict(last_good)
                    raise TrainingError(
                        f"the loss became {loss_value} at epoch {epoch}, step {i + 1}; the model was restored to "
                        f"the end of epoch {epoch - 1}: lower the learning rate (now {config.lr:g}) and train again."
                    )
                if fast_step is None:
                    loss.backward()
                optimizer.step()
                step += 1
                seen += len(xb)
                sums[0] += recon_value
                sums[1] += kl_value
                sums[2] += loss_value * len(xb)
                event = TrainingEvent("step", epoch, step, total_steps, loss_value, None, model)
                if any([bool(callback(event)) for callback in callbacks]):
                    stop = True
                    break

            test = average_loss(model, data.test_x, data.test_y, config.beta, seed=config.seed)
            train_recon, train_kl, train_loss = (total / max(seen, 1) for total in sums)
            record = {
                "epoch": epoch, "train_loss": train_loss, "train_recon": train_recon, "train_kl": train_kl,
                "test_loss": test["loss"], "test_recon": test["recon"], "test_kl": test["kl"],
                "seconds": time.perf_counter() - started, "beta": kl_weight(config, epoch, steps_per_epoch, steps_per_epoch),
            }
            if stop:
                record["stopped_at_step"] = seen // config.batch_size
            history.append(record)
            last_good = copy.deepcopy(model.state_dict())
            event = TrainingEvent("epoch", epoch, step, total_steps, train_loss, record, model)
            if any([bool(callback(event)) for callback in callbacks]) or stop:
                break
    model.eval()
    return history

"""Training: the one `train` loop, devices and mixed precision, and background jobs for the app."""

from .devices import autocast, make_optimizer, resolve_device
from .loop import (
    Callback,
    TrainingEvent,
    TrainingState,
    average_loss,
    check_capture,
    check_fits,
    kl_weight,
    learning_rate,
    train,
)

__all__ = [
    "Callback",
    "TrainingEvent",
    "TrainingState",
    "autocast",
    "average_loss",
    "check_capture",
    "check_fits",
    "kl_weight",
    "learning_rate",
    "make_optimizer",
    "resolve_device",
    "train",
]

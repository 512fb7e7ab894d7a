"""Checkpoints: folders written atomically and read without unpickling, and zip uploads of them."""

from .folder import (
    Checkpoint,
    interrupted,
    load_checkpoint,
    load_training_state,
    locate,
    read_config,
    read_epoch_frames,
    read_training,
    save_checkpoint,
    training_status,
    weights_sha1,
    write_metrics,
    write_training,
)
from .onnx_export import decoder_onnx, export_decoder
from .zip_import import import_checkpoint_zip, sanitize_name

__all__ = [
    "Checkpoint",
    "decoder_onnx",
    "export_decoder",
    "import_checkpoint_zip",
    "interrupted",
    "read_training",
    "load_checkpoint",
    "load_training_state",
    "locate",
    "read_config",
    "read_epoch_frames",
    "sanitize_name",
    "save_checkpoint",
    "training_status",
    "weights_sha1",
    "write_metrics",
    "write_training",
]

"""The epoch-frames file beside a checkpoint (`epochs.safetensors`): the frames that
vae_explorer.latent.epochs.epoch_frame makes (one per epoch) as the flat tensors a safetensors
file holds, and back.

    tensors = frames_to_tensors(frames); frames = frames_from_tensors(tensors)
"""

from __future__ import annotations

import numpy as np
import torch


def frames_to_tensors(frames: list[dict]) -> dict[str, torch.Tensor]:
    """Frames as the flat tensors a safetensors file holds."""
    return {
        "epochs": torch.tensor([f["epoch"] for f in frames], dtype=torch.int64),
        "scatter": torch.from_numpy(np.stack([f["scatter"] for f in frames]).astype(np.float32)),
        "labels": torch.from_numpy(np.asarray(frames[0]["labels"], dtype=np.int64)),
        "samples": torch.from_numpy(np.stack([f["samples"] for f in frames]).astype(np.uint8)),
    }


def frames_from_tensors(tensors: dict[str, torch.Tensor]) -> list[dict]:
    """The frames back from `frames_to_tensors`'s tensors; [] when they do not fit together."""
    try:
        epochs, scatter, labels, samples = (tensors[k] for k in ("epochs", "scatter", "labels", "samples"))
    except KeyError:
        return []
    if not (len(epochs) == len(scatter) == len(samples)) or scatter.dim() != 3 or scatter.shape[1] != len(labels):
        return []
    return [
        {"epoch": int(e), "scatter": s.numpy(), "labels": labels.numpy(), "samples": m.numpy()}
        for e, s, m in zip(epochs, scatter, samples)
    ]

"""What a model makes of fixed inputs, epoch by epoch: the codes of the first test images on that
epoch's top-2 PCA plane, and the decodes of 8 fixed draws of z from the prior. A run keeps one
frame per epoch (and one before training, epoch 0) beside its checkpoint, in
`epochs.safetensors`, so the Train and Learn pages replay how any saved run learned.

    frame = epoch_frame(model, data, epoch)   # {"epoch", "scatter" (N, 2), "labels" (N,), "samples" (8, C, H, W) uint8}
    tensors = frames_to_tensors(frames); frames = frames_from_tensors(tensors)
"""

from __future__ import annotations

import numpy as np
import torch

POINTS, SAMPLES = 500, 8  # test images on the map; fixed prior draws decoded


@torch.no_grad()
def epoch_frame(model, data, epoch: int, points: int = POINTS) -> dict:
    """The model's frame now (see the module's docstring); the model is left in the mode it was in."""
    from ..images import to_uint8
    from .maps import pca_2d
    from .operations import encode_means, sample_prior

    was_training = model.training
    model.eval()
    try:
        x, y = data.test_x[:points], data.test_y[:points]
        mu, _ = encode_means(model, x, y if model.cond_dim else None)
        samples = sample_prior(model, SAMPLES, seed=0)  # the same z at every epoch: what the decoder learns to make of it
    finally:
        model.train(was_training)
    mu = mu.numpy()
    plane = mu if mu.shape[1] == 2 else pca_2d(mu)[0]  # z itself for D = 2, else the top-2 principal components
    return {"epoch": int(epoch), "scatter": plane.astype(np.float32), "labels": np.asarray(y, dtype=np.int64),
            "samples": to_uint8(samples).transpose(0, 3, 1, 2)}


def frames_to_tensors(frames: list[dict]) -> dict[str, torch.Tensor]:
    """Frames as the flat tensors a safetensors file holds."""
    return {"epochs": torch.tensor([f["epoch"] for f in frames], dtype=torch.int64),
            "scatter": torch.from_numpy(np.stack([f["scatter"] for f in frames]).astype(np.float32)),
            "labels": torch.from_numpy(np.asarray(frames[0]["labels"], dtype=np.int64)),
            "samples": torch.from_numpy(np.stack([f["samples"] for f in frames]).astype(np.uint8))}


def frames_from_tensors(tensors: dict[str, torch.Tensor]) -> list[dict]:
    """The frames back from `frames_to_tensors`'s tensors; [] when they do not fit together."""
    try:
        epochs, scatter, labels, samples = (tensors[k] for k in ("epochs", "scatter", "labels", "samples"))
    except KeyError:
        return []
    if not (len(epochs) == len(scatter) == len(samples)) or scatter.dim() != 3 or scatter.shape[1] != len(labels):
        return []
    return [{"epoch": int(e), "scatter": s.numpy(), "labels": labels.numpy(), "samples": m.numpy()}
            for e, s, m in zip(epochs, scatter, samples)]

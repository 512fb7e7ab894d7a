"""What a model makes of fixed inputs, epoch by epoch: the codes of the first test images on that
epoch's top-2 PCA plane, and the decodes of 8 fixed draws of z from the prior. A run keeps one
frame per epoch (and one before training, epoch 0) beside its checkpoint, in
`epochs.safetensors`, so the Train and Learn pages replay how any saved run learned.

    frame = epoch_frame(model, data, epoch)   # {"epoch", "scatter" (N, 2), "labels" (N,), "samples" (8, C, H, W) uint8}

The file's format (frames as flat tensors and back) is vae_explorer.checkpoints.epochs.
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
        samples = sample_prior(
            model, SAMPLES, seed=0
        )  # the same z at every epoch: what the decoder learns to make of it
    finally:
        model.train(was_training)
    mu = mu.flatten(1).numpy()  # a spatial latent (N, C, h, w): its maps as vectors, for PCA
    plane = mu if mu.shape[1] == 2 else pca_2d(mu)[0]  # z itself for D = 2, else the top-2 principal components
    return {
        "epoch": int(epoch),
        "scatter": plane.astype(np.float32),
        "labels": np.asarray(y, dtype=np.int64),
        "samples": to_uint8(samples).transpose(0, 3, 1, 2),
    }

"""The training step of an MLP VAE with a Bernoulli likelihood, with its gradients written out.

Why: on a small CPU the per-operation bookkeeping of autograd is a large share of a step. For
the pytorch/examples architecture (784-400-20, batch 128) on this repository's 2-core machine a
step takes 2.36 ms through `VAE.loss` + `backward()` and 1.93 ms here (the eleven matrix
products, 1.1 ms, and the Adam update, 0.22 ms, are the same in both; see `bench`).

The maths is exactly `VAE.loss` followed by `.mean().backward()`: the same layers, the same eps
drawn from the same generator in the same order, loss = mean over the batch of
recon + beta * KL. A test compares every gradient with autograd's. Only plain MLPs are covered
(ReLU, Bernoulli, not conditional); `supports` says when, and `train` falls back to autograd
for everything else.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .models import VAE


def supports(model: VAE) -> bool:
    """Whether `MLPStep` computes this model's gradients."""
    config = model.config
    return (
        config.architecture == "mlp" and config.activation == "relu" and config.likelihood == "bernoulli"
        and not model.cond_dim and all(p.dtype == torch.float32 for p in model.parameters())
    )


class MLPStep:
    """Forward and backward pass of one batch; the gradients land in each parameter's `.grad`."""

    def __init__(self, model: VAE):
        if not supports(model):
            raise ValueError("MLPStep needs an MLP VAE with ReLU, a Bernoulli likelihood and no class condition")
        self.latent_dim = model.latent_dim
        self.encoder = [m for m in model.encoder if isinstance(m, nn.Linear)]  # each followed by a ReLU
        self.head = model.to_latent  # -> (mu, logvar)
        self.decoder = [m for m in model.decoder if isinstance(m, nn.Linear)]  # ReLU after all but the last

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, beta: float, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, pixels) in [0, 1]. Returns the batch's summed reconstruction NLL and KL (0-d tensors)."""
        batch, d = len(x), self.latent_dim
        scale = 1.0 / batch  # the loss is a mean over the batch

        # Forward, keeping each layer's input (for the weight gradients) and ReLU output (for its mask).
        inputs, h = [], x
        for layer in self.encoder:
            inputs.append(h)
            h = torch.addmm(layer.bias, h, layer.weight.t()).clamp_min_(0)
        stats = torch.addmm(self.head.bias, h, self.head.weight.t())  # (B, 2D)
        mu, logvar = stats[:, :d], stats[:, d:]
        std = torch.exp(0.5 * logvar)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = torch.addcmul(mu, eps, std)
        decoder_inputs, g = [], z
        for i, layer in enumerate(self.decoder):
            decoder_inputs.append(g)
            g = torch.addmm(layer.bias, g, layer.weight.t())
            if i < len(self.decoder) - 1:
                g.clamp_min_(0)
        logits = g
        # Bernoulli NLL summed over pixels and batch: softplus(l) - x * l (= BCE with logits).
        recon = F.softplus(logits).sum() - torch.dot(x.reshape(-1), logits.reshape(-1))
        var = std * std
        kl = 0.5 * (mu * mu + var - 1 - logvar).sum()

        # Backward.
        grad = torch.sigmoid(logits).sub_(x).mul_(scale)  # d loss / d logits
        for i in reversed(range(len(self.decoder))):
            layer, a = self.decoder[i], decoder_inputs[i]
            layer.weight.grad, layer.bias.grad = grad.t() @ a, grad.sum(0)
            grad = grad @ layer.weight  # d loss / d layer input
            if i > 0:  # that input is the previous layer's ReLU output
                grad = torch.ops.aten.threshold_backward(grad, a, 0)
        # grad is now d loss / dz; z = mu + eps * std, std = exp(logvar / 2); KL' = mu and (var - 1) / 2.
        grad_stats = torch.empty_like(stats)
        torch.add(grad, mu, alpha=beta * scale, out=grad_stats[:, :d])
        torch.add(grad * eps * std * 0.5, var - 1, alpha=0.5 * beta * scale, out=grad_stats[:, d:])
        self.head.weight.grad, self.head.bias.grad = grad_stats.t() @ h, grad_stats.sum(0)
        grad = grad_stats @ self.head.weight
        for i in reversed(range(len(self.encoder))):
            layer, a = self.encoder[i], inputs[i]
            grad = torch.ops.aten.threshold_backward(grad, h, 0)  # h: this layer's ReLU output
            layer.weight.grad, layer.bias.grad = grad.t() @ a, grad.sum(0)
            if i > 0:
                grad, h = grad @ layer.weight, a
        return recon, kl

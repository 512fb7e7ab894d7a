"""The training step of an MLP VAE with a Bernoulli likelihood, with its gradients written out.

Why: on a small CPU the per-operation bookkeeping of autograd is a large share of a step. For
the pytorch/examples architecture (784-400-20, batch 128) on this repository's 2-core machine,
with precision "fast", a step with its Adam update takes 2.35 ms through `VAE.loss` +
`backward()` and 1.88 ms here (medians of 3 x 3,500 steps). Of that, the five products of the
784x400 layers take 0.92 ms and Adam 0.36 ms (what leaving each out of a step saves).

The maths is exactly `VAE.loss` followed by `.mean().backward()`: the same layers, the same eps
drawn from the same generator in the same order, loss = mean over the batch of
recon + beta * KL. A test compares every gradient with autograd's. With bfloat16 products
(precision "fast") the step may multiply its small layers in float32 instead (faster there, and
closer to float32 than autograd in bfloat16; a test checks that too). Only plain MLPs are covered
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


# Layers with fewer weights than this multiply faster in float32 than through bfloat16: with
# precision "fast" on this machine's CPU a 128-image batch through a 400x40 layer (forward and
# both backward products) took 0.083 ms in bfloat16 and 0.056 ms in float32; the two meet near
# 40,000 weights, and the 784x400 layers take 0.29 ms in bfloat16 against 0.65 ms.
SMALL_LAYER = 32_768


def _linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    # The product, then the bias in place: addmm with its bias took 10-15 us longer for the
    # 784x400 layers in bfloat16 (0.124 against 0.109 ms), and the same in float32.
    return torch.mm(x, layer.weight.t()).add_(layer.bias)


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
    def __call__(self, x: torch.Tensor, beta: float, generator: torch.Generator | None = None,
                 small_layers_in_float32: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, pixels) in [0, 1]. Returns the batch's summed reconstruction NLL and KL (0-d tensors).

        small_layers_in_float32: while the process-wide float32 matmul precision is "medium"
        (bfloat16 products), switch it to "highest" around the products of small layers and back
        after each. Only for a caller that owns that setting: another thread's products in the
        meantime would run in float32 too (right, only slower).
        """
        switch = small_layers_in_float32 and torch.get_float32_matmul_precision() == "medium"
        try:
            return self._step(x, beta, generator, switch)
        finally:
            if switch:
                torch.set_float32_matmul_precision("medium")

    def _step(self, x: torch.Tensor, beta: float, generator: torch.Generator | None,
              switch: bool) -> tuple[torch.Tensor, torch.Tensor]:
        batch, d = len(x), self.latent_dim
        scale = 1.0 / batch  # the loss is a mean over the batch

        def precision(layer: nn.Linear) -> None:  # set before each layer's products when switching
            if switch:
                torch.set_float32_matmul_precision("highest" if layer.weight.numel() < SMALL_LAYER else "medium")

        # Forward, keeping each layer's input (for the weight gradients) and ReLU output (for its mask).
        inputs, h = [], x
        for layer in self.encoder:
            inputs.append(h)
            precision(layer)
            h = _linear(h, layer).clamp_min_(0)
        precision(self.head)
        stats = _linear(h, self.head)  # (B, 2D)
        mu, logvar = stats[:, :d], stats[:, d:]
        std = torch.exp(0.5 * logvar)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        noise = eps * std
        z = mu + noise
        decoder_inputs, g = [], z
        for i, layer in enumerate(self.decoder):
            decoder_inputs.append(g)
            precision(layer)
            g = _linear(g, layer)
            if i < len(self.decoder) - 1:
                g.clamp_min_(0)
        logits = g
        # Bernoulli NLL summed over pixels and batch: softplus(l) - x * l (= BCE with logits).
        # (x * l).sum() rather than torch.dot: dot took 75 us here after a bfloat16 product, this 30.
        recon = F.softplus(logits).sum() - (x * logits).sum()
        var = std * std
        # KL = 0.5 * sum(mu^2 + var - 1 - logvar); the -1 per dimension is added as a number.
        kl = torch.addcmul(var - logvar, mu, mu).sum().sub_(batch * d).mul_(0.5)

        # Backward.
        grad = torch.sigmoid(logits).sub_(x).mul_(scale)  # d loss / d logits
        for i in reversed(range(len(self.decoder))):
            layer, a = self.decoder[i], decoder_inputs[i]
            precision(layer)
            layer.weight.grad, layer.bias.grad = grad.t() @ a, grad.sum(0)
            grad = grad @ layer.weight  # d loss / d layer input
            if i > 0:  # that input is the previous layer's ReLU output
                grad = torch.ops.aten.threshold_backward(grad, a, 0)
        # grad is now d loss / dz; z = mu + eps * std, std = exp(logvar / 2); KL' = mu and (var - 1) / 2.
        # d/dlogvar = grad * eps * std / 2 + beta * scale * (var - 1) / 2.
        grad_stats = torch.empty_like(stats)
        torch.add(grad, mu, alpha=beta * scale, out=grad_stats[:, :d])
        half_kl = 0.5 * beta * scale
        torch.addcmul(var.mul(half_kl).sub_(half_kl), grad, noise, value=0.5, out=grad_stats[:, d:])
        precision(self.head)
        self.head.weight.grad, self.head.bias.grad = grad_stats.t() @ h, grad_stats.sum(0)
        grad = grad_stats @ self.head.weight
        for i in reversed(range(len(self.encoder))):
            layer, a = self.encoder[i], inputs[i]
            grad = torch.ops.aten.threshold_backward(grad, h, 0)  # h: this layer's ReLU output
            precision(layer)
            layer.weight.grad, layer.bias.grad = grad.t() @ a, grad.sum(0)
            if i > 0:
                grad, h = grad @ layer.weight, a
        return recon, kl

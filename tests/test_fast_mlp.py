"""The hand-written MLP training step gives autograd's loss and gradients, and train() uses it."""

import pytest
import torch

from vae_explorer import build_model, train
from vae_explorer import fast_mlp
from vae_explorer.config import ModelConfig, TrainConfig


def gradients(model):
    return {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("hidden, latent, shape, beta", [
    ([400], 20, (1, 28, 28), 1.0),  # the pytorch/examples architecture
    ([48, 24], 3, (1, 8, 8), 0.37),  # two hidden layers, a KL weight (warm-up, beta-VAE)
    ([16], 1, (3, 8, 8), 4.0),  # colour images, one latent dimension
])
def test_step_matches_autograd(hidden, latent, shape, beta):
    config = ModelConfig(architecture="mlp", latent_dim=latent, hidden_sizes=hidden, image_shape=shape)
    model = build_model(config, seed=0)
    x = torch.rand(32, *shape, generator=torch.Generator().manual_seed(1))
    x[:5] = (x[:5] > 0.5).float()  # binary and grey pixels

    model.zero_grad(set_to_none=True)
    parts = model.loss(x, None, beta, torch.Generator().manual_seed(7))
    parts.total.mean().backward()
    expected = gradients(model)

    model.zero_grad(set_to_none=True)
    recon, kl = fast_mlp.MLPStep(model)(x.flatten(1), beta, torch.Generator().manual_seed(7))
    assert recon.item() == pytest.approx(parts.recon.sum().item(), rel=1e-5)
    assert kl.item() == pytest.approx(parts.kl.sum().item(), rel=1e-5)
    got = gradients(model)
    assert got.keys() == expected.keys()
    for name, grad in expected.items():
        assert got[name].shape == grad.shape, name
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6 * grad.abs().max().item(), msg=name)


@pytest.mark.parametrize("precision", ["medium", "highest"])
def test_small_layers_in_float32_leave_the_precision_as_found(precision):
    """With bfloat16 products ("medium") the step multiplies its small layers in float32 and
    switches back after; its gradients are at least as close to float32 autograd's as those of
    autograd in the same precision."""
    config = ModelConfig(architecture="mlp", latent_dim=20, hidden_sizes=[400], image_shape=(1, 28, 28))
    model = build_model(config, seed=0)
    x = torch.rand(64, 784, generator=torch.Generator().manual_seed(1))

    def autograd_gradients():
        model.zero_grad(set_to_none=True)
        model.loss(x.view(-1, 1, 28, 28), None, 1.0, torch.Generator().manual_seed(7)).total.mean().backward()
        return gradients(model)

    saved = torch.get_float32_matmul_precision()
    try:
        exact = autograd_gradients()
        torch.set_float32_matmul_precision(precision)
        same_precision = autograd_gradients()
        step = fast_mlp.MLPStep(model)
        assert [layer.weight.numel() < fast_mlp.SMALL_LAYER for layer in (step.head, *step.decoder)] == [True, True, False]
        model.zero_grad(set_to_none=True)
        step(x, 1.0, torch.Generator().manual_seed(7), small_layers_in_float32=True)
        assert torch.get_float32_matmul_precision() == precision
        for name, grad in gradients(model).items():
            scale = exact[name].abs().max().item()
            ours, theirs = ((g - exact[name]).abs().max().item() / scale for g in (grad, same_precision[name]))
            assert ours <= 1.25 * theirs + 1e-5, (name, ours, theirs)
        with pytest.raises(RuntimeError):  # a failing step (wrong width) switches back too
            step(x[:, :100], 1.0, small_layers_in_float32=True)
        assert torch.get_float32_matmul_precision() == precision
    finally:
        torch.set_float32_matmul_precision(saved)


@pytest.mark.parametrize("change", [
    {"architecture": "conv", "channels": [8, 16]}, {"activation": "tanh"}, {"likelihood": "gaussian"},
    {"conditional": True, "num_classes": 10},
])
def test_other_models_are_left_to_autograd(change):
    config = ModelConfig(**{"architecture": "mlp", "latent_dim": 2, "hidden_sizes": [16], "image_shape": (1, 8, 8), **change})
    model = build_model(config, seed=0)
    assert not fast_mlp.supports(model)
    with pytest.raises(ValueError, match="MLPStep needs"):
        fast_mlp.MLPStep(model)


@pytest.mark.parametrize("precision, rel", [
    ("exact", 1e-4),
    ("fast", 2e-3),  # the fast step multiplies small layers in float32, autograd all in bfloat16
])
def test_training_with_the_fast_step_follows_autograd(tiny_run, tiny_data, monkeypatch, precision, rel):
    _, run_config, _ = tiny_run
    config = TrainConfig(epochs=2, batch_size=32, seed=3, device="cpu", beta=2.0, warmup_epochs=1, precision=precision)
    fast_model = build_model(run_config.model, seed=0)
    assert fast_mlp.supports(fast_model)
    fast = train(fast_model, tiny_data, config)
    monkeypatch.setattr(fast_mlp, "supports", lambda model: False)
    slow = train(build_model(run_config.model, seed=0), tiny_data, config)
    for a, b in zip(fast, slow):
        for key in ("train_loss", "train_recon", "train_kl", "test_loss", "test_recon", "test_kl", "beta"):
            assert a[key] == pytest.approx(b[key], rel=rel), key

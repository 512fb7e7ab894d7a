"""Devices and the options behind config keys: torch.compile on the CPU here, and on a GPU where
there is one (the GPU tests skip elsewhere; a skip is not a pass)."""

import dataclasses

import pytest
import torch
from conftest import TINY_TRAIN

from vae_explorer import build_model, load_checkpoint, save_checkpoint, train

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@pytest.mark.slow
def test_compiled_training_matches_eager_and_saves_plain_weights(tiny_run, tiny_data, tmp_path):
    _, config, _ = tiny_run
    train_config = dataclasses.replace(TINY_TRAIN, epochs=1)
    eager = train(build_model(config.model, seed=0), tiny_data, train_config)
    model = build_model(config.model, seed=0)
    compiled = train(model, tiny_data, dataclasses.replace(train_config, compile=True))
    assert compiled[-1]["test_loss"] == pytest.approx(eager[-1]["test_loss"], rel=1e-4)
    assert not any("_orig_mod" in key for key in model.state_dict())  # the checkpoint does not change shape
    save_checkpoint(tmp_path / "compiled", model, config, compiled)
    assert load_checkpoint(tmp_path / "compiled").history == compiled


@needs_cuda
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_on_the_gpu(tiny_run, tiny_data, precision):
    _, config, _ = tiny_run
    cpu = train(build_model(config.model, seed=0), tiny_data, dataclasses.replace(TINY_TRAIN, epochs=2))
    model = build_model(config.model, seed=0)
    gpu = train(model, tiny_data, dataclasses.replace(TINY_TRAIN, epochs=2, device="cuda", precision=precision))
    assert next(model.parameters()).device.type == "cuda"
    assert gpu[-1]["test_loss"] == pytest.approx(cpu[-1]["test_loss"], rel=0.05)


@needs_cuda
def test_resume_on_the_gpu_is_four_straight_epochs(tiny_run, tiny_data):
    _, config, _ = tiny_run
    train_config = dataclasses.replace(TINY_TRAIN, epochs=4, device="cuda")
    whole = train(build_model(config.model, seed=0), tiny_data, train_config)
    model, states = build_model(config.model, seed=0), []
    part = train(
        model,
        tiny_data,
        train_config,
        [lambda e: states.append(e.state) if e.kind == "epoch" else None, lambda e: e.kind == "epoch" and e.epoch == 2],
    )
    rest = train(model, tiny_data, train_config, resume=states[-1])
    assert [r["test_loss"] for r in part + rest] == pytest.approx([r["test_loss"] for r in whole], rel=1e-5)


@needs_cuda
@pytest.mark.slow
def test_compiled_training_on_the_gpu(tiny_run, tiny_data):
    _, config, _ = tiny_run
    history = train(
        build_model(config.model, seed=0),
        tiny_data,
        dataclasses.replace(TINY_TRAIN, epochs=1, device="cuda", compile=True, precision="bfloat16"),
    )
    assert history[-1]["test_loss"] > 0


@needs_cuda
@pytest.mark.parametrize("name", ["digits-mlp", "digits-vamp", "digits-two-level", "shapes-betavae"])
def test_the_same_seed_gives_the_same_figures_on_the_gpu(name):
    """Evaluation, prior samples and samples of q(z|x) draw their noise on the CPU, so a metric does
    not depend on the device it ran on (the GPU's arithmetic differs from the CPU's only in rounding)."""
    from vae_explorer import load_dataset
    from vae_explorer.evaluation import evaluate, find_classifier
    from vae_explorer.evaluation.fid import load_classifier
    from vae_explorer.latent import encode_image, generate, sample_prior

    cpu, gpu = load_checkpoint(name), load_checkpoint(name, device="cuda")
    data = load_dataset(cpu.config.data)
    z = torch.randn(16, cpu.model.latent_dim, generator=torch.Generator().manual_seed(0))
    pictures = {
        "decoded": (generate(gpu.model, z), generate(cpu.model, z)),
        "prior samples": (sample_prior(gpu.model, 16, seed=3), sample_prior(cpu.model, 16, seed=3)),
        "samples of q(z|x)": (
            encode_image(gpu.model, data.test_x[0]).samples,
            encode_image(cpu.model, data.test_x[0]).samples,
        ),
    }
    classifier, _ = load_classifier(find_classifier(cpu.config.data))
    on_cpu, on_gpu = (evaluate(c.model, data, k=20, classifier=classifier) for c in (cpu, gpu))
    keys = ("neg_elbo", "recon", "kl", "iwae_nll", "elbo_iwae_gap", "fid")
    print(
        name,
        {what: float((a.cpu() - b).abs().max()) for what, (a, b) in pictures.items()},
        {key: (on_cpu[key], on_gpu[key]) for key in keys},
    )
    # convolutions on the GPU run in TF32 by default (cuDNN), a rounding of about 1e-3: within one grey level
    for what, (a, b) in pictures.items():
        assert torch.allclose(a.cpu(), b, atol=1 / 255), what
    for key in keys:
        assert on_gpu[key] == pytest.approx(on_cpu[key], rel=1e-3, abs=1e-3), key
    assert on_gpu["kl_per_dim"] == pytest.approx(on_cpu["kl_per_dim"], abs=1e-3)
    assert on_gpu["active_units"] == on_cpu["active_units"]

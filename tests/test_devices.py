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
    part = train(model, tiny_data, train_config, [lambda e: states.append(e.state) if e.kind == "epoch" else None,
                                                  lambda e: e.kind == "epoch" and e.epoch == 2])
    rest = train(model, tiny_data, train_config, resume=states[-1])
    assert [r["test_loss"] for r in part + rest] == pytest.approx([r["test_loss"] for r in whole], rel=1e-5)


@needs_cuda
@pytest.mark.slow
def test_compiled_training_on_the_gpu(tiny_run, tiny_data):
    _, config, _ = tiny_run
    history = train(build_model(config.model, seed=0), tiny_data,
                    dataclasses.replace(TINY_TRAIN, epochs=1, device="cuda", compile=True, precision="bfloat16"))
    assert history[-1]["test_loss"] > 0


@needs_cuda
def test_a_shipped_model_decodes_and_evaluates_on_the_gpu(tiny_data):
    from vae_explorer.evaluation import evaluate
    from vae_explorer.latent import generate

    cpu, gpu = load_checkpoint("digits-mlp"), load_checkpoint("digits-mlp", device="cuda")
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(generate(gpu.model, z), generate(cpu.model, z), atol=1e-4)
    assert evaluate(gpu.model, tiny_data, k=5)["neg_elbo"] == pytest.approx(evaluate(cpu.model, tiny_data, k=5)["neg_elbo"], rel=1e-3)

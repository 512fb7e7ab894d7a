import math

import pytest
import torch

from conftest import TINY_TRAIN
from vae_explorer import ConfigError, TrainingError, build_model, train
from vae_explorer.config import TrainConfig
from vae_explorer.training import kl_weight, resolve_device

KEYS = {"epoch", "train_loss", "train_recon", "train_kl", "test_loss", "test_recon", "test_kl", "seconds"}


def fresh(tiny_run):
    _, config, _ = tiny_run
    return build_model(config.model, seed=0)


def test_history_has_one_record_per_epoch(tiny_run):
    model, _, history = tiny_run
    assert [r["epoch"] for r in history] == list(range(1, 7))
    for record in history:
        assert KEYS <= set(record)
        assert all(math.isfinite(record[k]) for k in KEYS)
        assert record["test_loss"] == pytest.approx(record["test_recon"] + record["test_kl"])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert not model.training  # handed back in eval mode


def test_same_seed_same_history(tiny_run, tiny_data):
    a, b = fresh(tiny_run), fresh(tiny_run)
    config = TrainConfig(epochs=1, batch_size=32, seed=3, device="cpu")
    ha, hb = train(a, tiny_data, config), train(b, tiny_data, config)
    assert [r["test_loss"] for r in ha] == [r["test_loss"] for r in hb]


def test_callbacks_see_every_step_and_epoch(tiny_run, tiny_data):
    events = []
    train(fresh(tiny_run), tiny_data, TrainConfig(epochs=2, batch_size=64, device="cpu"), [events.append])
    steps = [e for e in events if e.kind == "step"]
    epochs = [e for e in events if e.kind == "epoch"]
    assert len(steps) == 2 * 4 and [e.step for e in steps] == list(range(1, 9))
    assert steps[0].total_steps == 8
    assert [e.epoch for e in epochs] == [1, 2] and epochs[0].record["epoch"] == 1


def test_a_callback_can_stop_training_and_keeps_what_was_learned(tiny_run, tiny_data):
    model = fresh(tiny_run)
    history = train(model, tiny_data, TrainConfig(epochs=5, batch_size=32, device="cpu"),
                    [lambda e: e.kind == "step" and e.step == 3])
    assert len(history) == 1 and history[0]["stopped_at_step"] == 3
    assert math.isfinite(history[0]["test_loss"])


def test_nan_loss_stops_with_a_clear_error_and_restores_the_model(tiny_run, tiny_data):
    model = fresh(tiny_run)
    saved = {}

    def poison(event):
        if event.kind == "epoch":
            saved.update({k: v.clone() for k, v in event.model.state_dict().items()})
        if event.kind == "step" and event.epoch == 2 and event.step == 10:
            with torch.no_grad():
                next(event.model.parameters()).fill_(float("nan"))

    with pytest.raises(TrainingError, match=r"loss became nan at epoch 2.*restored to the end of epoch 1.*learning rate"):
        train(model, tiny_data, TrainConfig(epochs=3, batch_size=32, device="cpu"), [poison])
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key])


def test_kl_warmup_is_linear():
    config = TrainConfig(beta=2.0, warmup_epochs=2)
    assert kl_weight(config, 1, 0, 10) == 0.0
    assert kl_weight(config, 1, 5, 10) == pytest.approx(0.5)
    assert kl_weight(config, 2, 5, 10) == pytest.approx(1.5)
    assert kl_weight(config, 3, 0, 10) == 2.0
    assert kl_weight(TrainConfig(beta=0.5), 1, 0, 10) == 0.5


def test_batch_larger_than_data_is_a_config_error(tiny_run, tiny_data):
    with pytest.raises(ConfigError, match="batch_size 1000 is larger than the 256 training images"):
        train(fresh(tiny_run), tiny_data, TrainConfig(batch_size=1000, device="cpu"))


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ConfigError, match="not a device name"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="'cuda' is not available"):
            resolve_device("cuda")


def test_training_restores_global_precision_settings(tiny_run, tiny_data):
    before = torch.get_float32_matmul_precision()
    train(fresh(tiny_run), tiny_data, TrainConfig(epochs=1, batch_size=64, device="cpu", precision="fast"))
    assert torch.get_float32_matmul_precision() == before


def test_conditional_training(tiny_run, tiny_data):
    import dataclasses

    _, config, _ = tiny_run
    model = build_model(dataclasses.replace(config.model, conditional=True))
    history = train(model, tiny_data, TINY_TRAIN)
    assert len(history) == 6 and math.isfinite(history[-1]["test_loss"])


def test_fused_adam_matches_torch_adam():
    from vae_explorer.optim import FusedAdam, make_optimizer

    torch.manual_seed(0)
    ours = [torch.randn(5, 3, requires_grad=True), torch.randn(4, requires_grad=True)]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    a, b = FusedAdam(ours, lr=1e-2), torch.optim.Adam(theirs, lr=1e-2)
    for step in range(6):
        grads = [torch.randn_like(p) for p in ours]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        if step in (1, 2):  # a parameter without a gradient does not step (its count stays behind)
            ours[1].grad = theirs[1].grad = None
        a.step()
        b.step()
    for p, q in zip(ours, theirs):
        assert torch.allclose(p, q, atol=1e-6)
    assert isinstance(make_optimizer(ours, 1e-3), FusedAdam)

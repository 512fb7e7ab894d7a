import dataclasses
import math

import pytest
import torch
from conftest import TINY_TRAIN, two_epochs

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
    history = train(
        model,
        tiny_data,
        TrainConfig(epochs=5, batch_size=32, device="cpu"),
        [lambda e: e.kind == "step" and e.step == 3],
    )
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

    with pytest.raises(
        TrainingError, match=r"loss became nan at epoch 2.*restored to the end of epoch 1.*learning rate"
    ):
        train(model, tiny_data, TrainConfig(epochs=3, batch_size=32, device="cpu"), [poison])
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key])


def test_a_step_reads_nothing_from_the_device_unless_a_callback_asks(tiny_run, tiny_data, monkeypatch):
    """Sums and the non-finite check stay on the device through an epoch (on a GPU, each read of a value waits for it):
    the training loop's own reads are a few per epoch, not one per step; a callback that asks for a step's loss gets it."""
    import sys

    model = fresh(tiny_run)
    reads = {"n": 0}
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, **kwargs):
            if sys._getframe(1).f_code.co_filename.endswith(("training/loop.py", "training/distributed.py")):
                reads["n"] += 1  # the loop's own reads (the optimizer's, of CPU-held step counts, are not the loop's)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    between = []  # the loop's reads between one step event and the next
    last = {"at": 0}

    def watch(event):
        if event.kind == "step":
            between.append(reads["n"] - last["at"])
            last["at"] = reads["n"]

    train(model, tiny_data, TrainConfig(epochs=2, batch_size=8, device="cpu"), [watch])
    assert len(between) >= 60
    assert sum(1 for n in between[1:] if n) <= 2, between  # only across the epoch's end (its check, sums and test loss)
    monkeypatch.undo()
    shown = []
    train(
        fresh(tiny_run),
        tiny_data,
        TrainConfig(epochs=1, batch_size=8, device="cpu"),
        [lambda e: shown.append(e.loss) if e.kind == "step" else None],
    )
    assert len(shown) >= 30 and all(isinstance(v, float) and math.isfinite(v) for v in shown)


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


def test_conditional_training(tiny_run, tiny_data):
    import dataclasses

    _, config, _ = tiny_run
    model = build_model(dataclasses.replace(config.model, conditional=True))
    history = train(model, tiny_data, TINY_TRAIN)
    assert len(history) == 6 and math.isfinite(history[-1]["test_loss"])


def test_training_changes_no_process_wide_state(tiny_run, tiny_data):
    """No global RNG reseeded, no matmul precision or denormal switch, no collector or environment change."""
    import gc
    import os

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    before = (
        torch.get_float32_matmul_precision(),
        gc.isenabled(),
        gc.get_freeze_count(),
        dict(os.environ),
        torch.get_num_threads(),
    )
    for precision in ("float32", "bfloat16"):
        train(fresh(tiny_run), tiny_data, TrainConfig(epochs=1, batch_size=64, device="cpu", precision=precision))
    assert torch.equal(torch.rand(3), expected)  # the global generator went on as if nothing had run
    assert (
        torch.get_float32_matmul_precision(),
        gc.isenabled(),
        gc.get_freeze_count(),
        dict(os.environ),
        torch.get_num_threads(),
    ) == before


def test_the_optimizer_is_torch_adam(tiny_run, tiny_data):
    from vae_explorer.training import make_optimizer

    optimizer = make_optimizer(fresh(tiny_run).parameters(), 1e-3)
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["lr"] == 1e-3


def test_bfloat16_autocast_trains_close_to_float32(tiny_run, tiny_data):
    config = TrainConfig(epochs=3, batch_size=32, lr=3e-3, device="cpu")
    full = train(fresh(tiny_run), tiny_data, config)
    mixed = train(fresh(tiny_run), tiny_data, dataclasses.replace(config, precision="bfloat16"))
    assert mixed[-1]["test_loss"] == pytest.approx(full[-1]["test_loss"], rel=0.03)
    assert mixed[-1]["test_loss"] != full[-1]["test_loss"]  # it did run in bfloat16


def test_learning_rate_schedules():
    from vae_explorer.training import learning_rate

    cosine = TrainConfig(epochs=4, lr=1e-2, lr_schedule="cosine")
    assert learning_rate(cosine, 1, 0, 10) == pytest.approx(1e-2)
    assert learning_rate(cosine, 3, 0, 10) == pytest.approx(0.5e-2)  # half way: cos(pi / 2)
    assert learning_rate(cosine, 4, 5, 10) == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 3.5 / 4)))
    step = TrainConfig(epochs=10, lr=1e-2, lr_schedule="step", lr_step_epochs=3, lr_gamma=0.5)
    assert [learning_rate(step, e, 0, 10) for e in (1, 3, 4, 7, 10)] == pytest.approx(
        [1e-2, 1e-2, 5e-3, 2.5e-3, 1.25e-3]
    )
    assert learning_rate(TrainConfig(lr=2e-3), 9, 3, 10) == 2e-3


def test_the_schedule_reaches_the_optimizer(tiny_run, tiny_data):
    seen = []

    def watch(event):
        if event.kind == "epoch":
            seen.append(event.state.optimizer["param_groups"][0]["lr"])

    config = TrainConfig(
        epochs=3, batch_size=64, lr=1e-2, lr_schedule="step", lr_step_epochs=1, lr_gamma=0.1, device="cpu"
    )
    history = train(fresh(tiny_run), tiny_data, config, [watch])
    assert seen == pytest.approx([1e-2, 1e-3, 1e-4]) and [r["lr"] for r in history] == pytest.approx(seen)


@pytest.mark.parametrize("schedule", ["none", "cosine"])
def test_two_epochs_and_a_resume_to_four_are_four_straight_epochs(tiny_run, tiny_data, schedule):
    config = TrainConfig(epochs=4, batch_size=32, lr=3e-3, seed=5, device="cpu", lr_schedule=schedule, warmup_epochs=2)
    straight = fresh(tiny_run)
    whole = train(straight, tiny_data, config)
    first = fresh(tiny_run)
    part, state = two_epochs(first, tiny_data, config)
    assert len(part) == 2
    rest = train(first, tiny_data, config, resume=state)
    assert [r["epoch"] for r in rest] == [3, 4]
    assert [r["test_loss"] for r in part + rest] == [r["test_loss"] for r in whole]
    for (name, a), b in zip(straight.state_dict().items(), first.state_dict().values()):
        assert torch.equal(a, b), name


def test_training_in_one_thread_leaves_another_threads_numbers_alone(tiny_data):
    """While a session trains, another session's decodes and evaluation of a shipped model are
    bit-identical to those computed with nothing else running."""
    import threading

    from vae_explorer import load_checkpoint
    from vae_explorer.evaluation import evaluate
    from vae_explorer.latent import generate

    shipped = load_checkpoint("digits-mlp")
    z = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))

    def other_session():
        images = [generate(shipped.model, z) for _ in range(10)]
        return images, evaluate(shipped.model, tiny_data, k=5)

    alone = other_session()
    stop = threading.Event()

    def trainer():  # bfloat16 autocast and float32, back to back, until the other session is done
        while not stop.is_set():
            for precision in ("bfloat16", "float32"):
                model = build_model(shipped.config.model, seed=0)
                train(
                    model,
                    tiny_data,
                    TrainConfig(epochs=1, batch_size=16, device="cpu", precision=precision),
                    [lambda e: stop.is_set()],
                )

    thread = threading.Thread(target=trainer)
    thread.start()
    try:
        busy = other_session()
    finally:
        stop.set()
        thread.join()
    assert all(torch.equal(a, b) for a, b in zip(alone[0], busy[0]))
    assert busy[1] == alone[1]


def test_each_epoch_records_how_every_latent_dimension_learns(tiny_data):
    from conftest import TINY_MODEL

    from vae_explorer.evaluation.metrics import active_units, kl_per_dimension
    from vae_explorer.latent import encode_means
    from vae_explorer.models import build_model, fit_to_data

    model = build_model(fit_to_data(TINY_MODEL, tiny_data.image_shape, tiny_data.class_names), seed=0)
    history = train(model, tiny_data, TrainConfig(epochs=2, batch_size=16, seed=0, device="cpu"))
    mu, logvar = encode_means(model, tiny_data.test_x)  # the model after the last epoch, as its record saw it
    last = history[-1]
    assert last["test_kl_per_dim"] == pytest.approx(kl_per_dimension(mu, logvar).tolist(), rel=1e-5, abs=1e-7)
    assert last["test_mu_var"] == pytest.approx(mu.double().var(0).tolist(), rel=1e-4, abs=1e-8)
    assert sum(v > 0.01 for v in last["test_mu_var"]) == active_units(mu)
    assert sum(last["test_kl_per_dim"]) == pytest.approx(last["test_kl"], rel=1e-5)  # the parts of the KL in the loss

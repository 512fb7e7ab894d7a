"""Faults: a process killed in the middle of a save, many sessions sharing one cached model."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch
from conftest import PATIENCE_S

from vae_explorer import load_checkpoint, save_checkpoint

SAVER = textwrap.dedent("""
    import sys, torch
    from vae_explorer import ModelConfig, RunConfig, build_model, save_checkpoint
    config = RunConfig()
    config.model = ModelConfig(latent_dim=4, hidden_sizes=[1024, 1024], image_shape=[1, 28, 28], num_classes=10)
    model = build_model(config.model, seed=0)
    version = 0
    print("ready", flush=True)
    while True:  # save new versions until killed; each has its version in history and in a weight
        version += 1
        with torch.no_grad():
            model.to_latent.bias.fill_(float(version))
        record = dict(epoch=version, train_loss=1.0, train_recon=1.0, train_kl=0.0, test_loss=1.0, test_recon=1.0, test_kl=0.0)
        save_checkpoint(sys.argv[1], model, config, [record])
""")


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 0.55, 0.8, 1.1])
def test_killing_the_process_during_a_save_leaves_a_loadable_checkpoint(tmp_path, delay):
    target = tmp_path / "ckpt"
    process = subprocess.Popen([sys.executable, "-c", SAVER, str(target)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    deadline = time.time() + PATIENCE_S
    while not (target / "config.json").exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(delay)  # lands somewhere inside one of the repeated saves
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    checkpoint = load_checkpoint(target)  # may first put back a folder moved aside by the killed save
    version = checkpoint.history[-1]["epoch"]
    assert version >= 1
    assert checkpoint.model.to_latent.bias[0].item() == float(version)  # weights and history from the same save
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "ckpt"]
    # at most a half-written staging folder or the replaced one not yet deleted: never loaded, and
    # the next save clears them
    assert all(".saving-" in name or ".previous-" in name for name in leftovers)


def test_a_new_save_cleans_up_after_a_killed_one(tiny_run, tmp_path):
    model, config, history = tiny_run
    target = save_checkpoint(tmp_path / "c", model, config, history)
    stale = tmp_path / f".c.saving-{os.getpid()}"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    save_checkpoint(target, model, config, history)
    assert not stale.exists()


def test_many_sessions_share_one_model_without_changing_it(tiny_checkpoint):
    """Ten threads decode and encode with the same cached model at once: every answer matches a
    single-threaded one and the weights are untouched."""
    checkpoint = load_checkpoint(tiny_checkpoint)
    model = checkpoint.model.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    z = torch.randn(10, 50, model.latent_dim, generator=torch.Generator().manual_seed(0))
    x = torch.rand(10, 50, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    expected = [(model.generate(z[i]), model.encode(x[i]).mean) for i in range(10)]
    answers, errors = [None] * 10, []

    def session(i):
        try:
            with torch.inference_mode():
                for _ in range(20):
                    answers[i] = (model.generate(z[i]), model.encode(x[i]).mean)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (image, mu), (want_image, want_mu) in zip(answers, expected):
        assert torch.allclose(image, want_image, atol=1e-6) and torch.allclose(mu, want_mu, atol=1e-6)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_two_trainings_at_once_match_two_in_a_row(tiny_run, tiny_data):
    """Two sessions training at the same time get exactly what each would get alone."""
    from vae_explorer import build_model, train
    from vae_explorer.config import TrainConfig

    _, config, _ = tiny_run
    settings = [TrainConfig(epochs=2, batch_size=32, seed=s, device="cpu", precision="exact") for s in (1, 2)]
    alone = [train(build_model(config.model, seed=0), tiny_data, c) for c in settings]
    together = [None, None]

    def run(i):
        together[i] = train(build_model(config.model, seed=0), tiny_data, settings[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        # equal up to float summation order (worker threads are shared while both run)
        assert [r["test_loss"] for r in a] == pytest.approx([r["test_loss"] for r in b], rel=1e-5)
        assert [r["train_loss"] for r in a] == pytest.approx([r["train_loss"] for r in b], rel=1e-5)

"""torchrun: `torchrun --nproc_per_node 2 -m vae_explorer train` trains one model in two CPU
processes (gloo) with the same train() as one process: every batch split across them, DDP
averaging the gradients, rank 0 alone printing and saving; resuming works there too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PATIENCE_S

from vae_explorer import load_checkpoint

pytestmark = pytest.mark.slow  # torchrun processes

TRAIN = [
    "train",
    "--dataset",
    "digits",
    "--latent-dim",
    "4",
    "--epochs",
    "3",
    "--batch-size",
    "64",
    "--device",
    "cpu",
    "--quiet",
]


def torchrun(*argv: str, processes: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(processes),
            "--standalone",
            "-m",
            "vae_explorer",
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    two = torchrun(*TRAIN, "--out", str(folder / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run(
        [sys.executable, "-m", "vae_explorer", *TRAIN, "--out", str(folder / "one")],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    return folder, two, one


def test_two_processes_learn_what_one_does(runs):
    folder, two, _ = runs
    both = {name: json.loads((folder / name / "history.json").read_text()) for name in ("one", "two")}
    assert [r["world_size"] for r in both["two"]] == [2, 2, 2] and [r["world_size"] for r in both["one"]] == [1, 1, 1]
    # each process saw its own half of every batch: together each image of the epoch once (the last,
    # partial batch of 1,438 % 64 = 30 images dropped), as one process sees all 1,438
    assert [r["train_images"] for r in both["two"]] == [22 * 64] * 3 and both["one"][0]["train_images"] == 1438
    one_loss, two_loss = both["one"][-1]["test_loss"], both["two"][-1]["test_loss"]
    assert abs(two_loss - one_loss) <= 0.05 * one_loss, (one_loss, two_loss)
    assert both["two"][0]["test_loss"] > two_loss  # it learned
    # the saved model is the one that was trained: its test loss is the last epoch's
    checkpoint = load_checkpoint(folder / "two")
    assert checkpoint.training["status"] == "finished" and checkpoint.metrics["neg_elbo"] == pytest.approx(
        two_loss, rel=1e-6
    )


def test_only_rank_0_prints(runs):
    _, two, _ = runs
    assert two.stdout.count("final test loss") == 1
    assert two.stderr.count("training mlp VAE") == 1 and ", 2 processes" in two.stderr
    assert "Traceback" not in two.stderr


def test_a_torchrun_run_resumes_under_torchrun(runs):
    folder, _, _ = runs
    resumed = torchrun("train", "--resume", str(folder / "two"), "--epochs", "4", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    history = json.loads((folder / "two" / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3, 4] and history[-1]["world_size"] == 2
    assert history[-1]["test_loss"] <= history[2]["test_loss"] + 0.5


def _train_one_rank(rank: int, world: int, out: str) -> None:
    """One process of a 2-process group made here (no torchrun): rank 0's callback ends after epoch 1."""
    import torch.distributed as dist
    from conftest import TINY_DATA, TINY_MODEL

    from vae_explorer import TrainConfig
    from vae_explorer.data import load_dataset
    from vae_explorer.models import build_model, fit_to_data
    from vae_explorer.training import train

    # the rendezvous in a file, as torchrun's is in its agent: no rank hosts a store server that the other's exit
    # could tear down under it (with tcp://, rank 1 was once aborted at exit, "terminate called without an
    # active exception", on a loaded 2-core machine)
    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=world)
    try:
        data = load_dataset(TINY_DATA)
        model = build_model(fit_to_data(TINY_MODEL, data.image_shape, data.class_names), seed=0)
        history = train(
            model,
            data,
            TrainConfig(epochs=3, batch_size=16, seed=0, device="cpu"),
            [lambda event: event.kind == "epoch"],
        )
        (Path(out) / f"{rank}.json").write_text(
            json.dumps([len(history), float(next(model.parameters()).detach().sum())])
        )
    finally:  # leave together, as a torchrun command does (a rank tearing down gloo early was aborted in CI)
        from vae_explorer.training.distributed import finish

        finish()


def test_a_stop_decided_on_rank_0_ends_every_process(tmp_path):
    import torch.multiprocessing as mp

    context = mp.start_processes(_train_one_rank, args=(2, str(tmp_path)), nprocs=2, join=False, start_method="spawn")
    import time

    deadline = time.monotonic() + PATIENCE_S
    while not context.join(timeout=5):  # True once both have ended; a process left waiting would hang here
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("a process did not end: the stop was not shared")
    (epochs0, weights0), (epochs1, weights1) = (json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1))
    assert epochs0 == epochs1 == 1 and weights0 == weights1  # both stopped after epoch 1, with the same weights

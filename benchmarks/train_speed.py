"""Training speed side by side with pytorch/examples' VAE: whole processes, taking turns.

    python benchmarks/train_speed.py --reference PATH/TO/examples/vae/main.py --epochs 10 --runs 2 [-- --capture]

The reference is pytorch/examples `vae/main.py` with MNIST swapped for FashionMNIST (nothing else
changed; it is not part of this repository: clone pytorch/examples and edit the two
`datasets.MNIST(` calls). It reads `../data/FashionMNIST/raw/` relative to its folder; give it the
four un-gzipped IDX files there. Ours is `vae-explorer train` on configs/fashion_mnist_mlp.yaml (the
same 784-400-20 MLP, batch 128, Adam 1e-3), with the flags given after `--`. Each process is timed
from start to exit; the two commands alternate so that drifts of the machine hit both. Prints every
run, the medians, the speed-up and the test losses, and ours' steady-state seconds per epoch (the
median epoch after the first, from its history.json).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return seconds, result.stdout + result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="pytorch/examples vae/main.py, edited for FashionMNIST")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=2, help="runs of each command")
    parser.add_argument(
        "--ours",
        nargs="+",
        help="our command (default: the CLI on configs/fashion_mnist_mlp.yaml); --epochs N --out DIR are appended",
    )
    parser.add_argument("flags", nargs="*", help="more flags for our command, after --")
    args = parser.parse_args()
    reference = args.reference.resolve() if args.reference else None  # it runs in its own folder
    ours = args.ours or [
        sys.executable,
        "-m",
        "vae_explorer",
        "train",
        "--config",
        str(REPO / "configs/fashion_mnist_mlp.yaml"),
        "--quiet",
    ]
    times: dict[str, list[float]] = {"reference": [], "ours": []}
    losses: dict[str, list[float]] = {"reference": [], "ours": []}
    epochs: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(args.runs):
            if reference:
                seconds, out = timed([sys.executable, str(reference), "--epochs", str(args.epochs)], reference.parent)
                times["reference"].append(seconds)
                losses["reference"].append(float(re.findall(r"Test set loss: ([0-9.]+)", out)[-1]))
                print(f"reference run {run + 1}: {seconds:.2f} s, test loss {losses['reference'][-1]:.2f}", flush=True)
            folder = Path(scratch) / f"run{run}"
            seconds, out = timed([*ours, *args.flags, "--epochs", str(args.epochs), "--out", str(folder)], REPO)
            history = json.loads((folder / "history.json").read_text())
            times["ours"].append(seconds)
            losses["ours"].append(history[-1]["test_loss"])
            epochs += [r["seconds"] for r in history[1:]]
            print(f"ours run {run + 1}: {seconds:.2f} s, test loss {losses['ours'][-1]:.2f}", flush=True)
    for who in ("reference", "ours"):
        if times[who]:
            print(
                f"{who:>9}: median {statistics.median(times[who]):.2f} s over {len(times[who])} runs "
                f"({', '.join(f'{t:.2f}' for t in times[who])}), test loss {statistics.median(losses[who]):.2f}"
            )
    if times["reference"]:
        print(f"speed-up: {statistics.median(times['reference']) / statistics.median(times['ours']):.2f}x")
    if epochs:
        print(
            f"ours, steady state: {statistics.median(epochs):.3f} s per epoch (median of epochs 2-{args.epochs}, "
            "test pass included)"
        )


if __name__ == "__main__":
    main()

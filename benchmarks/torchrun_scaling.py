"""One process against torchrun's N processes, same config and the same total batch:

    python benchmarks/torchrun_scaling.py [--config fashion_mnist_mlp] [--epochs 3] [--processes 2]
        [--batch-sizes 128 1024 4096] [-- MORE TRAIN FLAGS, e.g. --max-train 12000]

Each run is a fresh `vae-explorer train` (CPU, gloo for N > 1); for each batch size (the total
batch: each of N processes takes 1/N of it) reported: the median epoch time (epochs 2.. as
recorded in history.json, the test pass included), the speed-up, and the final test loss of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(processes: int, config: str, epochs: int, out: Path, flags: list[str]) -> list[dict]:
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--standalone"]
        if processes > 1
        else [sys.executable]
    )
    subprocess.run(
        [
            *launcher,
            "-m",
            "vae_explorer",
            "train",
            "--config",
            config,
            "--epochs",
            str(epochs),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--quiet",
            *flags,
        ],
        check=True,
        capture_output=True,
    )
    return json.loads((out / "history.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="fashion_mnist_mlp")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[None])
    parser.add_argument("flags", nargs="*", help="more `vae-explorer train` flags, after --")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vae-explorer-ddp-"))
    for batch in args.batch_sizes:
        flags = [*args.flags, *(["--batch-size", str(batch)] if batch else [])]
        results = {}
        for n in (1, args.processes):
            history = run(n, args.config, args.epochs, work / f"b{batch}p{n}", flags)
            results[n] = (statistics.median(r["seconds"] for r in history[1:] or history), history[-1]["test_loss"])
        one, many = results[1], results[args.processes]
        print(
            f"{args.config} {' '.join(flags)}: 1 process {one[0]:.2f} s per epoch, {args.processes} processes "
            f"{many[0]:.2f} s (median of epochs 2-{args.epochs}); speed-up {one[0] / many[0]:.2f}x; "
            f"test loss {one[1]:.2f} against {many[1]:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""A folder of images larger than memory would like: cache build, then one epoch with bounded memory.

    python benchmarks/big_folder.py [--images 100000] [--size 64] [--folder DIR] [--keep]

Writes `--images` RGB PNGs of `--size` pixels (coloured discs on gradients, ten class folders)
into a temporary folder (or uses `--folder`), then in fresh processes, with their own empty cache
folder:
1. reads the folder into the uint8 image cache (`load_dataset`, what the first training does),
2. trains one epoch of the MLP VAE of configs/digits_mlp.yaml's shape on it
   (`vae-explorer train`, batch 128, CPU), with the cache in place.
For each: wall time, images per second and the process's peak resident memory (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO


def write_images(folder: Path, n: int, size: int) -> None:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size)[None, :, None]
    for i in range(n):
        k = i % 10
        base = (ramp * rng.integers(0, 256, 3) + (1 - ramp) * rng.integers(0, 256, 3)).repeat(size, 0).astype(np.uint8)
        image = Image.fromarray(base)
        r = int(rng.integers(size // 8, size // 3))
        x, y = rng.integers(r, size - r, 2)
        ImageDraw.Draw(image).ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        (folder / f"class{k}").mkdir(parents=True, exist_ok=True)
        image.save(folder / f"class{k}" / f"{i:06d}.png")


def timed(argv: list[str], env: dict) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB of the child, stderr) of one command in a fresh process."""
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"{' '.join(argv[:4])} failed:\n{result.stderr[-2000:]}")
    # ru_maxrss of the children waited for so far: each step runs after the previous one, and is larger
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--folder", type=Path, help="an existing folder of images to use instead of writing one")
    parser.add_argument("--keep", action="store_true", help="keep the written folder and the cache")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vae-explorer-big-"))
    folder = args.folder or work / "images"
    try:
        if args.folder is None:
            started = time.perf_counter()
            write_images(folder, args.images, args.size)
            print(
                f"wrote {args.images:,} {args.size}x{args.size} PNGs in {time.perf_counter() - started:.0f} s "
                f"({sum(f.stat().st_size for f in folder.rglob('*.png')) / 2**20:.0f} MB)"
            )
        env = dict(os.environ, VAE_EXPLORER_CACHE=str(work / "cache"))
        data = {"dataset": f"folder:{folder}", "image_size": args.size, "channels": 3}
        seconds, rss, _ = timed(
            [
                sys.executable,
                "-c",
                "import json, sys; from vae_explorer.config import DataConfig; "
                "from vae_explorer.data import load_dataset; d = load_dataset(DataConfig(**json.loads(sys.argv[1]))); "
                "print(len(d.train_x), len(d.test_x), type(d.train_x).__name__)",
                json.dumps(data),
            ],
            env,
        )
        n = len(list(folder.rglob("*.png")))
        cache_mb = sum(f.stat().st_size for f in (work / "cache").rglob("*") if f.is_file()) / 2**20
        print(
            f"cache build: {seconds:.1f} s for {n:,} files ({n / seconds:,.0f} images/s), {cache_mb:,.0f} MB on disk, "
            f"peak memory {rss:,.0f} MB"
        )
        config = work / "big.yaml"
        config.write_text(
            json.dumps(
                {
                    "data": data,
                    "model": {"architecture": "mlp", "latent_dim": 16, "hidden_sizes": [512, 256]},
                    "train": {"epochs": 1, "batch_size": 128, "device": "cpu"},
                }
            )
        )
        seconds, rss, err = timed(
            [
                sys.executable,
                "-m",
                "vae_explorer",
                "train",
                "--config",
                str(config),
                "--out",
                str(work / "run"),
                "--quiet",
            ],
            env,
        )
        history = json.loads((work / "run" / "history.json").read_text())
        epoch = history[0]["seconds"]
        train_n = int(n * 0.8)
        print(
            f"one epoch: {epoch:.1f} s inside train() ({train_n / epoch:,.0f} training images/s, test set evaluated too), "
            f"{seconds:.1f} s for the whole command; peak memory {rss:,.0f} MB; test loss {history[0]['test_loss']:.1f}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()

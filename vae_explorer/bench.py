"""`python -m vae_explorer bench`: training speed, test loss and decode latency.

By default it trains the pytorch/examples architecture (configs/fashion_mnist_mlp.yaml) on
Fashion-MNIST and reports:
  - the CLI `train` as a whole process (python start, imports, data, training, saving): seconds;
  - training throughput in the same process: images per second and the test loss reached;
  - the latency of decoding one latent vector into one image on the CPU: median and p95.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .config import apply_overrides, load_config

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "fashion_mnist_mlp.yaml"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def decode_latency_ms(model, repeats: int = 2000) -> tuple[float, float]:
    """Median and p95 milliseconds to decode one z into one image (CPU, no autograd)."""
    import torch

    z = torch.randn(1, model.latent_dim)
    times = []
    with torch.inference_mode():
        for _ in range(50):
            model.generate(z)
        for _ in range(repeats):
            start = time.perf_counter()
            model.generate(z)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), _percentile(times, 0.95)


def run_bench(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .models import build_model, fit_to_data
    from .training import flush_denormals_process_wide, train

    config_path = Path(args.config) if args.config else DEFAULT_CONFIG
    config = apply_overrides(load_config(config_path), {"train.epochs": args.epochs, "train.device": "cpu",
                                                       **({"data.data_dir": args.data_dir} if args.data_dir else {})})
    print(f"bench: {config_path} for {args.epochs} epochs on the CPU")
    if config.train.precision == "fast":
        flush_denormals_process_wide()

    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "vae_explorer", "train", "--config", str(config_path), "--epochs", str(args.epochs),
                   "--device", "cpu", "--quiet", "--out", str(Path(scratch) / "bench")]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        process_seconds = time.perf_counter() - start
        if result.returncode != 0:
            print(result.stderr.strip(), file=sys.stderr)
            return result.returncode
        print(f"  whole `train` process:  {process_seconds:7.2f} s   ({result.stdout.strip().splitlines()[-1]})")

    data = load_dataset(config.data)
    config.model = fit_to_data(config.model, data.image_shape, data.class_names)
    model = build_model(config.model, seed=config.train.seed)
    history = train(model, data, config.train)
    seconds = sum(r["seconds"] for r in history)
    images = len(data.train_x) * len(history)
    print(f"  in-process training:    {seconds:7.2f} s   {images / seconds:,.0f} training images/s (incl. test pass each epoch)")
    print(f"  test loss:              {history[-1]['test_loss']:7.2f} nats per image after {len(history)} epochs")
    model.cpu().eval()
    p50, p95 = decode_latency_ms(model)
    print(f"  decode one image (CPU): {p50:7.3f} ms median, {p95:.3f} ms p95")
    return 0

"""How long decoding one latent vector into one image takes on the CPU, per shipped model.

python benchmarks/decode_latency.py [--repeats 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import percentile


def decode_latency_ms(model, repeats: int = 2000) -> tuple[float, float]:
    """Median and p95 milliseconds to decode one z into one image (CPU, no autograd)."""
    import torch

    z = torch.randn(1, model.latent_dim)
    y = torch.tensor([0]) if model.cond_dim else None
    times = []
    with torch.inference_mode():
        for _ in range(50):
            model.generate(z, y)
        for _ in range(repeats):
            start = time.perf_counter()
            model.generate(z, y)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), percentile(times, 0.95)


def main() -> None:
    from vae_explorer import load_checkpoint
    from vae_explorer.paths import shipped_checkpoint_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    for name in shipped_checkpoint_names():
        p50, p95 = decode_latency_ms(load_checkpoint(name).model, args.repeats)
        print(f"{name:<20} decode one image: {p50:.3f} ms median, {p95:.3f} ms p95 ({args.repeats} decodes)")


if __name__ == "__main__":
    main()

"""Training epochs on one device, the plain step against the step recorded as a CUDA graph (train.capture):

    python benchmarks/gpu_training.py [--configs fashion_mnist_mlp fashion_mnist_conv] [--epochs 4] [--device cuda]
        [--loop-only]

For each config and each way (plain; captured, on CUDA only), `train()` runs `--epochs` epochs in this
process; reported: each epoch's seconds as the history records them (the test set's evaluation
included), the steady epoch (the median after the first), the last test loss, and, from torch's
profiler over one more epoch, the GPU's busy time (the sum of its kernels' times) as a share of the
epoch and the number of kernel launches. On a CPU only the plain rows are printed, to check the script.
`--loop-only` times what the training loop itself does around the steps (batches sliced, learning rate and
beta, sums, events): every step returns zeros without a forward pass, backward pass or Adam, and the test
pass is skipped; the floor of an epoch's host time on any device.
Fashion-MNIST is read as the CLI reads it ($VAE_EXPLORER_DATA, /usr/share/datasets, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def profiled_epoch(model, data, config) -> tuple[float, float, int]:
    """(seconds, GPU kernel seconds, kernel launches) of one more epoch under torch's profiler."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from vae_explorer import train

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        started = time.perf_counter()
        train(model, data, dataclasses.replace(config, epochs=1))
        seconds = time.perf_counter() - started
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return seconds, sum(e.device_time for e in kernels) / 1e6, len(kernels)


def shipped(name: str):
    """A config of configs/ by name: the run config, its dataset and the model config fitted to it."""
    from vae_explorer import fit_to_data, load_config, load_dataset

    run = load_config(REPO / "configs" / f"{name}.yaml")
    data = load_dataset(run.data)
    return run, data, fit_to_data(run.model, data.image_shape, data.class_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["fashion_mnist_mlp", "fashion_mnist_conv"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--loop-only", action="store_true", help="time the loop around no-op steps (see above)")
    args = parser.parse_args()
    if args.loop_only:
        return loop_only(args)

    import torch

    from vae_explorer import build_model, train

    print(
        f"torch {torch.__version__}, device {args.device}",
        torch.cuda.get_device_name() if "cuda" in args.device else "",
    )
    for name in args.configs:
        run, data, model_config = shipped(name)
        ways = [False, True] if args.device.startswith("cuda") else [False]
        for capture in ways:
            config = dataclasses.replace(run.train, epochs=args.epochs, device=args.device, capture=capture)
            model = build_model(model_config, seed=0)
            history = train(model, data, config)
            epochs = [r["seconds"] for r in history]
            steady = statistics.median(epochs[1:] or epochs)
            seconds, busy, launches = profiled_epoch(model, data, config)
            print(
                f"{name} {'captured' if capture else 'plain   '}: epochs "
                + " ".join(f"{s:.3f}" for s in epochs)
                + f" s; steady {steady:.3f} s; test loss {history[-1]['test_loss']:.2f}; profiled epoch "
                f"{seconds:.3f} s, GPU busy {busy:.3f} s ({100 * busy / seconds:.0f}%), {launches} kernels",
                flush=True,
            )


def loop_only(args) -> None:
    """Epochs of the plain loop with each step and the test pass replaced by no-ops."""
    import torch

    from vae_explorer import build_model, train
    from vae_explorer.training import loop, step

    step.Step.__call__ = lambda self, x, y, beta, lr: torch.zeros(3, dtype=torch.float64, device=x.device)
    loop.average_loss = lambda *a, **k: {"loss": 0.0, "recon": 0.0, "kl": 0.0, "kl_per_dim": [], "mu_var": []}
    for name in args.configs:
        run, data, model_config = shipped(name)
        model = build_model(model_config, seed=0)
        config = dataclasses.replace(run.train, epochs=args.epochs, device=args.device)
        epochs = [r["seconds"] for r in train(model, data, config)]
        steps = -(-len(data.train_x) // config.batch_size)
        steady = statistics.median(epochs[1:] or epochs)
        print(
            f"{name} loop only: epochs " + " ".join(f"{s:.4f}" for s in epochs) + f" s; steady {steady:.4f} s, "
            f"{1e6 * steady / steps:.0f} us a step ({steps} steps)",
            flush=True,
        )


if __name__ == "__main__":
    main()

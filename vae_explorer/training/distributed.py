"""Several processes training one model, started by torchrun:

    torchrun --nproc_per_node 2 -m vae_explorer train --config configs/fashion_mnist_mlp.yaml

torchrun gives each process RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address in its
environment; `start` joins the process group from it (gloo on CPU, NCCL on CUDA, one GPU per
process). `train()` then shards every batch across the processes and lets
DistributedDataParallel average the gradients, so all of them hold the same weights after every
step; only rank 0 runs the callbacks (progress, checkpoints). A single process never joins a
group and trains exactly as before. Nothing here sets environment variables or other
process-wide switches; the process group is torch.distributed's own.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..errors import ConfigError


def launched() -> bool:
    """True in a process torchrun started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device_name: str) -> str:
    """Join torchrun's process group; returns the device this process trains on ("cpu" or
    "cuda:LOCAL_RANK"). `device_name` is the run's train.device."""
    if dist.is_initialized():
        return _device_for(device_name)
    device = _device_for(device_name)
    if device.startswith("cuda"):  # NCCL, bound to this process's GPU (no torch.cuda.set_device)
        dist.init_process_group(backend="nccl", device_id=torch.device(device))
    else:
        dist.init_process_group(backend="gloo")
    return device


def _device_for(device_name: str) -> str:
    local = int(os.environ.get("LOCAL_RANK", "0"))
    wants_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if not wants_cuda:
        return "cpu"
    if local >= torch.cuda.device_count():
        raise ConfigError(
            f"torchrun started process {local} but this machine has {torch.cuda.device_count()} GPU(s); "
            "pass --nproc_per_node at most that, or --device cpu."
        )
    return f"cuda:{local}"


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """The sum over all processes of each value (the values themselves in a single process)."""
    if world()[1] == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def finish() -> None:
    """Leave the process group (at the end of a torchrun command), all processes together: rank 0
    still evaluates and saves after the last step, and a rank that tore down its gloo group
    meanwhile was aborted ("terminate called without an active exception", seen on a loaded
    2-core machine). A peer that already died ends the barrier with an error, not a wait."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except (RuntimeError, dist.DistBackendError):
            pass  # a peer is gone: nothing to wait for
        finally:
            dist.destroy_process_group()

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
import time

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


RELEASE_WAIT_S = 0.2  # after the last collective, for gloo's worker threads to let go of what they ran (see finish)


def finish() -> None:
    """Leave the process group (at the end of a torchrun command), all processes together: rank 0
    still evaluates and saves after the last step. A peer that already died ends the barrier with an
    error, not a wait.

    Then a short pause with the interpreter whole. A gloo worker thread lets go of a collective it ran
    (and of the tensors in it) a moment after the caller has seen it finish, and letting go of a tensor
    Python has seen needs the GIL, which no thread can take once the interpreter is exiting: a rank
    whose exit came first was aborted after all its work was done ("terminate called without an active
    exception"; gdb on the core: ProcessGroupGloo::runLoop -> ~AsyncBarrierWork -> ~AsyncAllreduceWork
    -> TensorImpl::decref_pyobject -> take_gil -> pthread_exit), and torchrun reported the command as
    failed. destroy_process_group does not end those threads once a DistributedDataParallel wrapper has
    been built (torch keeps the group alive), so nothing here can wait for them exactly: the pause lets
    a worker that was descheduled run first. It narrows the race; it does not close it."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except (RuntimeError, dist.DistBackendError):
            pass  # a peer is gone: nothing to wait for
        finally:
            time.sleep(RELEASE_WAIT_S)  # the GIL free for the workers' last releases
            dist.destroy_process_group()

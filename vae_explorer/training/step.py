"""One optimizer step (forward, loss, backward, Adam), run as it comes or captured once as a CUDA
graph and replayed.

A small VAE's step is some 70 kernels of a few microseconds each: on a GPU, launching them from
Python costs ten times what running them does. `CapturedStep` records the whole step once with
`torch.cuda.graph` (fused, capturable Adam; the learning rate and beta live in device tensors the
graph reads) and then launches it as one graph per batch: each batch is copied into the graph's
fixed input tensor, and the last, smaller batch of an epoch is run as it comes instead of
recording a second graph. The noise generator is registered with the graph, so every replay
draws new noise and its state, saved in checkpoints, moves on as the replays go.

`CapturedStep(..., graph=False)` runs the same fixed tensors without recording (what the CPU
tests check against the plain step: the same numbers to the last bit). Nothing here changes
process-wide state.
"""

from __future__ import annotations

import torch

from .devices import autocast

WARMUP_STEPS = 3  # steps run before recording: Adam's state and the libraries' workspaces exist by then


class Step:
    """`step(x, y, beta, lr)`: one optimizer step on a batch; returns (recon summed over the batch,
    KL summed, the batch's mean loss) in float64 on the device, without waiting for it."""

    def __init__(self, objective, optimizer: torch.optim.Optimizer, device: torch.device, precision: str, generator):
        self.objective, self.optimizer, self.device = objective, optimizer, device
        self.precision, self.generator = precision, generator

    def _run(self, x, y, beta, caching: bool = True) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.precision, cache=caching):
            recon, kl, total = self.objective(x, y, beta, self.generator)
            loss = total.mean()
        parts = torch.stack([recon.detach().sum(), kl.detach().sum(), loss.detach()]).double()
        loss.backward()
        self.optimizer.step()
        return parts

    def __call__(self, x, y, beta: float, lr: float) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return self._run(x, y, beta)


class CapturedStep(Step):
    """The step recorded once as a CUDA graph and replayed for every full batch. The optimizer must
    be Adam with `capturable=True` (`devices.make_optimizer(..., capturable=True)`); its learning
    rate becomes a tensor of this step's, so load a saved optimizer state before making the step."""

    def __init__(self, objective, optimizer, device, precision, generator, batch_size: int, graph: bool = True):
        super().__init__(objective, optimizer, device, precision, generator)
        self.batch_size = batch_size
        self.x: torch.Tensor | None = None  # the recorded step's input batch, made from the first full one
        self.y: torch.Tensor | None = None
        self.beta = torch.zeros((), device=device)
        # the learning rate the recorded optimizer reads: CUDA's fused Adam takes it as float32, the CPU's as
        # float64 (what a Python float gives, to the last bit)
        self.lr = torch.zeros((), dtype=torch.float32 if device.type == "cuda" else torch.float64, device=device)
        for group in optimizer.param_groups:
            group["lr"] = self.lr
        self.use_graph, self.graph, self.calls = graph, None, 0
        self.parts: torch.Tensor | None = None  # the recorded step's output, rewritten by every replay
        self.stream = torch.cuda.Stream(device) if graph else None

    def __call__(self, x, y, beta: float, lr: float) -> torch.Tensor:
        self.lr.fill_(lr)  # every group shares the one tensor
        if len(x) != self.batch_size:  # the epoch's last, smaller batch: as it comes, no second graph
            return self._run(x, y, beta)
        if self.x is None:
            self.x, self.y = torch.empty_like(x), None if y is None else torch.empty_like(y)
        self.x.copy_(x)
        if y is not None:
            self.y.copy_(y)
        self.beta.fill_(beta)
        self.calls += 1
        if not self.use_graph:
            return self._run(self.x, self.y, self.beta)
        if self.graph is None and self.calls <= WARMUP_STEPS:
            # before recording, on the stream the recording will use (libraries set up per stream)
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                parts = self._run(self.x, self.y, self.beta)
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
            parts.record_stream(torch.cuda.current_stream(self.device))  # read there next: not reused before
            return parts
        if self.graph is None:
            self._record()  # raises CaptureFailed when the step cannot be recorded
        self.graph.replay()
        return self.parts.clone()  # the next replay rewrites self.parts

    def _record(self) -> None:
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        torch.cuda.current_stream(self.device).synchronize()
        try:
            with torch.cuda.graph(graph, stream=self.stream):
                self.parts = self._run(self.x, self.y, self.beta, caching=False)
        except RuntimeError as error:  # a step that waits for the GPU (reads a value) cannot be recorded
            self.use_graph = False
            raise CaptureFailed(str(error).strip().splitlines()[0][:200] if str(error).strip() else "") from None
        self.graph = graph


class CaptureFailed(Exception):
    """The step could not be recorded as a CUDA graph; the message is torch's first line."""

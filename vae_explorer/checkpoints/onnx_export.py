"""A checkpoint's decoder as an ONNX graph, `decoder.onnx` beside the checkpoint, so that a
browser (onnxruntime-web) or any ONNX runtime decodes z without PyTorch.

    path = decoder_onnx(checkpoint)       # made on first use; shipped checkpoints carry theirs

The graph's inputs are "z", (batch, latent_dim) float32, and for a conditional model "label", the
class one-hot (batch, classes) float32; its output "image" is (batch, C, H, W) float32 in [0, 1],
the mean of p(x|z): what `VAE.generate` returns. The graph records the digest of the weights it
was made from (metadata "weights_sha1"), so a retrained checkpoint gets a new one. A checkpoint
folder that cannot hold it (read-only, or shipped with the package) has it made in the cache
folder instead, under that digest. A spatial latent's "z" is (batch, latent_dim, rows, columns),
rows and columns free, and its image (batch, C, rows f, columns f).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from ..models import VAE
from ..paths import cache_root
from .folder import Checkpoint, weights_sha1

DECODER_FILE = "decoder.onnx"
ENCODER_FILE = "encoder.onnx"  # made only for the browser's drawing pad
OPSET = 20


class _Decoder(nn.Module):
    """z (and the one-hot class) -> the mean image, as one module for the exporter."""

    def __init__(self, model: VAE):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        if label is not None:
            z = torch.cat([z, label], 1)
        return self.model.mean_image(self.model.decoder(z))


def _export(
    module: nn.Module, args: tuple, names: list[str], outputs: list[str], path: Path, metadata: dict, sides=False
) -> Path:
    """torch.onnx.export of `module` with a free batch dimension on every input (and, with `sides`, free
    last two dimensions: a spatial latent's rows and columns), written aside and renamed into place, with
    `metadata` recorded in the graph."""
    import onnx
    from torch.export import Dim

    batch = Dim("batch", min=1, max=65536)
    free = {0: batch}
    if sides:
        free.update({2: Dim("rows", min=2, max=4096), 3: Dim("columns", min=2, max=4096)})
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.onnx.export(
            module.eval(),
            args,
            str(partial),
            input_names=names,
            output_names=outputs,
            dynamic_shapes={name: free for name in names},
            dynamo=True,
            external_data=False,
            opset_version=OPSET,
            verbose=False,
        )
        graph = onnx.load(str(partial))
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(partial))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def export_decoder(model: VAE, path: str | Path, weights: str = "") -> Path:
    """Write the model's decoder as ONNX to `path` (atomically); `weights` is recorded as its digest."""
    model = copy.deepcopy(model).to("cpu").eval()  # a copy: the model may be shared by the app's sessions
    spatial = getattr(model, "spatial", False)
    z = torch.zeros(2, *model.latent_shape()) if spatial else torch.zeros(2, model.latent_dim)
    args, names = ((z, torch.zeros(2, model.cond_dim)), ["z", "label"]) if model.cond_dim else ((z,), ["z"])
    metadata = {"weights_sha1": weights, "latent_dim": str(model.latent_dim)}
    if spatial:
        metadata["factor"] = str(model.factor)
    return _export(_Decoder(model), args, names, ["image"], Path(path), metadata, sides=spatial)


class _Encoder(nn.Module):
    """An image (and the one-hot class) -> the posterior's mean and log-variance, as VAE.encode computes them."""

    def __init__(self, model: VAE):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.model.encoder(x)
        if label is not None:
            h = torch.cat([h, label], 1)
        mu, logvar = self.model.to_latent(h).chunk(2, dim=1)
        return mu, logvar


def export_encoder(model: VAE, path: str | Path, weights: str = "") -> Path:
    """Write the model's encoder as ONNX to `path` (atomically): inputs "x" (batch, C, H, W) in
    [0, 1] and, for a conditional model, "label" (batch, classes) one-hot; outputs "mu" and
    "logvar" (batch, latent_dim). `weights` is recorded as its digest."""
    model = copy.deepcopy(model).to("cpu").eval()
    x = torch.zeros(2, *model.config.image_shape)
    args, names = ((x, torch.zeros(2, model.cond_dim)), ["x", "label"]) if model.cond_dim else ((x,), ["x"])
    return _export(_Encoder(model), args, names, ["mu", "logvar"], Path(path), {"weights_sha1": weights})


def _made_once(checkpoint: Checkpoint, file: str, suffix: str, make, what: str) -> Path:
    """The graph `file` of these weights, beside the checkpoint or in the cache folder (a shipped
    checkpoint's folder is not written to); `make(target, weights)` writes it when there is none."""
    from ..paths import shipped_checkpoints_dir

    weights = weights_sha1(checkpoint.path)
    beside = checkpoint.path / file
    cached = cache_root() / "onnx" / f"{weights[:16]}{suffix}.onnx"
    for candidate in (beside, cached):
        if candidate.is_file() and recorded_weights(candidate) == weights:
            return candidate
    targets = [cached] if checkpoint.path.resolve().parent == shipped_checkpoints_dir().resolve() else [beside, cached]
    for target in targets:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            return make(target, weights)
        except OSError:
            continue
    raise CheckpointError(
        f"the {what} of {checkpoint.name} could not be written as ONNX (no writable folder); "
        "set VAE_EXPLORER_CACHE to a writable folder."
    )


def encoder_onnx(checkpoint: Checkpoint) -> Path:
    """The checkpoint's encoder.onnx (for the browser's drawing pad), made on first use, keyed by the
    weights' digest like decoder_onnx."""
    if not hasattr(checkpoint.model, "to_latent"):  # an imported pair or a wrapped model: no encoder of ours to export
        raise CheckpointError(
            f"{checkpoint.name}'s encoder is not one of this package's models, so it runs on the server"
        )
    return _made_once(
        checkpoint,
        ENCODER_FILE,
        "-encoder",
        lambda target, weights: export_encoder(checkpoint.model, target, weights),
        "encoder",
    )


def recorded_weights(path: str | Path) -> str | None:
    """The weights digest an ONNX decoder was made from (None when it cannot be read)."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception:  # a truncated or foreign file: as good as none
        return None
    return {p.key: p.value for p in graph.metadata_props}.get("weights_sha1")


def decoder_onnx(checkpoint: Checkpoint) -> Path:
    """The checkpoint's decoder.onnx, made now if it has none or one of other weights."""

    def make(target: Path, weights: str) -> Path:
        if checkpoint.config.model.architecture != "onnx":
            return export_decoder(checkpoint.model, target, weights)
        from .onnx_import import browser_decoder_graph  # an imported pair: its own decoder, a sigmoid added

        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        partial.write_bytes(
            browser_decoder_graph(
                checkpoint.path, checkpoint.config.model.image_shape, weights, checkpoint.model.cond_dim
            )
        )
        os.replace(partial, target)
        return target

    return _made_once(checkpoint, DECODER_FILE, "", make, "decoder")

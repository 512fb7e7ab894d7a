"""A checkpoint's decoder as an ONNX graph, `decoder.onnx` beside the checkpoint, so that a
browser (onnxruntime-web) or any ONNX runtime decodes z without PyTorch.

    path = decoder_onnx(checkpoint)       # made on first use; shipped checkpoints carry theirs

The graph's inputs are "z", (batch, latent_dim) float32, and for a conditional model "label", the
class one-hot (batch, classes) float32; its output "image" is (batch, C, H, W) float32 in [0, 1],
the mean of p(x|z): what `VAE.generate` returns. The graph records the digest of the weights it
was made from (metadata "weights_sha1"), so a retrained checkpoint gets a new one. A checkpoint
folder that cannot hold it (read-only, or shipped with the package) has it made in the cache
folder instead, under that digest.
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


def export_decoder(model: VAE, path: str | Path, weights: str = "") -> Path:
    """Write the model's decoder as ONNX to `path` (atomically); `weights` is recorded as its digest."""
    import onnx
    from torch.export import Dim

    path = Path(path)
    model = copy.deepcopy(model).to("cpu").eval()  # a copy: the model may be shared by the app's sessions
    batch = Dim("batch", min=1, max=65536)
    z = torch.zeros(2, model.latent_dim)
    args, names, shapes = (z,), ["z"], {"z": {0: batch}}
    if model.cond_dim:
        args, names = (z, torch.zeros(2, model.cond_dim)), ["z", "label"]
        shapes["label"] = {0: batch}
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.onnx.export(_Decoder(model).eval(), args, str(partial), input_names=names, output_names=["image"],
                          dynamic_shapes=shapes, dynamo=True, external_data=False, opset_version=OPSET, verbose=False)
        graph = onnx.load(str(partial))
        graph.metadata_props.add(key="weights_sha1", value=weights)
        graph.metadata_props.add(key="latent_dim", value=str(model.latent_dim))
        onnx.save(graph, str(partial))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


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
    weights = weights_sha1(checkpoint.path)
    beside = checkpoint.path / DECODER_FILE
    cached = cache_root() / "onnx" / f"{weights[:16]}.onnx"
    for candidate in (beside, cached):
        if candidate.is_file() and recorded_weights(candidate) == weights:
            return candidate
    from ..paths import shipped_checkpoints_dir

    targets = [cached] if checkpoint.path.resolve().parent == shipped_checkpoints_dir().resolve() else [beside, cached]
    for target in targets:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if checkpoint.config.model.architecture == "onnx":  # an imported pair: its own decoder, a sigmoid added
                from .onnx_import import browser_decoder_graph

                graph = browser_decoder_graph(checkpoint.path, checkpoint.config.model.image_shape, weights)
                partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                partial.write_bytes(graph)
                os.replace(partial, target)
                return target
            return export_decoder(checkpoint.model, target, weights)
        except OSError:
            continue
    raise CheckpointError(f"the decoder of {checkpoint.name} could not be written as ONNX (no writable folder); "
                          "set VAE_EXPLORER_CACHE to a writable folder.")

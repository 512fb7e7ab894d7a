"""A VAE given as two ONNX graphs, run with onnxruntime: an encoder image -> (mean, log-variance) and
a decoder z -> logits or probabilities. Only the graphs are executed, never code from their files.

The contract (README, "Bring your own model"):
- encoder: one float32 input, the images in [0, 1] as (batch, C, H, W) or flattened (batch, C*H*W);
  two float32 outputs (batch, D), the mean and log-variance of q(z|x): the outputs named mu / mean /
  z_mean and logvar / log_var / z_log_var, or else the first two in order;
- decoder: one float32 input z (batch, D); its first output holds C*H*W numbers per image,
  (batch, C, H, W) or flat: Bernoulli logits, or probabilities with `output="probabilities"`.
A batch dimension fixed at export (say 1, at most MAX_FIXED_BATCH) is honoured by running batches of
that size.

A graph is untrusted: weights kept in another file (which could name any file on the server) and
control flow (Loop, Scan, If: a loop can run for ever, and an encoder or decoder needs none) are
refused when it is parsed, and it runs only in a child process under a memory and a time limit
(models/graph_process.py), a batch at a time in chunks sized to take well under that limit.

    pair = OnnxPair.from_bytes(encoder_bytes, decoder_bytes)  # raises OnnxPairError naming the problem
    model = onnx_model(pair, image_shape=(1, 28, 28), output="logits")  # a WrappedVAE
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import VaeExplorerError
from .external import WrappedVAE, wrap_model
from .graph_process import GraphProcess, GraphProcessError

# operator domains onnxruntime provides; a node in any other (not a function of the graph itself) is a custom operator
STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}
MEAN_NAMES, LOGVAR_NAMES = ("mu", "mean", "z_mean", "loc"), ("logvar", "log_var", "z_log_var", "log_variance")
MAX_FIXED_BATCH = 1024  # a batch dimension fixed at export beyond this is refused: each chunk would be that large
CHUNK_SECONDS = 0.5  # a batch is run in chunks of about this long, well under graph_process.RUN_TIMEOUT_S
MAX_CHUNK_ROWS, MAX_CHUNK_VALUES = 4096, 1 << 24  # and at most this many rows, and values (64 MB) per output


class OnnxPairError(VaeExplorerError):
    """A graph breaks the contract; the message is a sentence for the file's owner ("the encoder ...") and
    `role` says whose file is at fault: "encoder", "decoder" or "pair" (the two do not fit each other)."""

    def __init__(self, message: str, role: str):
        super().__init__(message)
        self.role = role


@dataclass
class Graph:
    """One checked graph, run in the pair's child process."""

    process: GraphProcess
    role: str  # "encoder" or "decoder": the graph's name in the process
    input: str
    input_shape: list  # per dimension an int, or None where it is free
    outputs: list[str]  # those used, in the order used
    output_shapes: list[list]
    values_per_row: list[int] = field(default_factory=list)  # the most each output may hold per image (the contract's size)
    rows: int = 16  # rows per chunk; adapted to the time a row takes

    @property
    def batch(self) -> int | None:
        """The batch size the graph was exported with, or None when any batch size runs."""
        return self.input_shape[0]

    def _chunk(self, x: np.ndarray) -> list[np.ndarray]:
        per_row = self.values_per_row or [MAX_CHUNK_VALUES] * len(self.outputs)  # unknown until the image shape is checked
        limits = [len(x) * values for values in per_row]
        started = time.monotonic()
        try:
            out = self.process.run(self.role, self.input, self.outputs, x, limits)
        except GraphProcessError as exc:
            raise OnnxPairError(f"{exc}; this pair cannot be run here", exc.role) from None
        if self.batch is None:  # the next chunk takes about CHUNK_SECONDS
            seconds = (time.monotonic() - started) / len(x)
            most = min(MAX_CHUNK_ROWS, MAX_CHUNK_VALUES // max(per_row))
            self.rows = int(min(most, max(1, CHUNK_SECONDS / max(seconds, 1e-6))))
        return out

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """The outputs for a batch of any length, in chunks (of the graph's fixed batch size if it has one)."""
        parts, start = [], 0
        while start < len(x):
            size = self.batch or self.rows
            chunk = x[start:start + size]
            if self.batch is not None and len(chunk) < self.batch:  # padded with its last row, and cut back after
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - len(chunk), 0)])
            parts.append([out[:min(size, len(x) - start)] for out in self._chunk(chunk)])
            start += size
        if not parts:
            return [np.zeros((0, *[d or 0 for d in shape[1:]]), np.float32) for shape in self.output_shapes]
        return [np.concatenate([p[i] for p in parts]) for i in range(len(self.outputs))]


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def _float32(value_info) -> bool:
    from onnx import TensorProto

    return value_info.type.tensor_type.elem_type == TensorProto.FLOAT


def parse_graph(data: bytes, role: str):
    """The ModelProto in `data`, checked to be a complete ONNX graph of standard operators with its
    weights inside (a graph pointing at external files is refused: they could name any file)."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        raise OnnxPairError(f"the {role} is not a complete ONNX model (truncated, or another kind of file)", role) from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data) for t in _tensors(model)):  # before the checker reads them
        raise OnnxPairError(f"the {role} keeps its weights in a separate file; save it as one file "
                            "(onnx.save(onnx.load(path), path, save_as_external_data=False))", role)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, RuntimeError):
        raise OnnxPairError(f"the {role} is not a complete ONNX model (truncated, or another kind of file)", role) from None
    if not model.graph.node:
        raise OnnxPairError(f"the {role} is not a complete ONNX model (its graph is empty)", role)
    local = {f.domain for f in model.functions}
    custom = sorted({f"{n.domain}::{n.op_type}" for n in _nodes(model) if n.domain not in STANDARD_DOMAINS | local})
    if custom:
        raise OnnxPairError(f"the {role} uses custom operators ({', '.join(custom[:3])}) that onnxruntime does not provide; "
                            "export it with standard ONNX operators only", role)
    looping = sorted({n.op_type for n in _nodes(model) if any(a.HasField("g") or len(a.graphs) for a in n.attribute)})
    if looping:
        raise OnnxPairError(f"the {role} uses control flow ({', '.join(looping[:3])}), which an encoder or decoder does not "
                            "need and which could run without end; export it without loops or conditionals", role)
    return model


def _graphs(model):
    """The model's graph, its functions' bodies and every subgraph inside either (a Loop's body, an If's branches)."""
    stack = [model.graph, *model.functions]
    while stack:
        graph = stack.pop()
        yield graph
        for node in graph.node:
            stack += [a.g for a in node.attribute if a.HasField("g")] + [g for a in node.attribute for g in a.graphs]


def _nodes(model):
    for graph in _graphs(model):
        yield from graph.node


def _tensors(model):
    """Every tensor a graph can hold data in: initializers, sparse initializers and node attributes
    (a Constant's value or sparse_value, any tensor or sparse tensor attribute), in every subgraph
    and function."""
    for graph in _graphs(model):
        yield from getattr(graph, "initializer", [])
        for sparse in getattr(graph, "sparse_initializer", []):
            yield from (sparse.values, sparse.indices)
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                for sparse in [*([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []), *attribute.sparse_tensors]:
                    yield from (sparse.values, sparse.indices)


def _pick(outputs: list, wanted: tuple[str, ...]):
    return next((o for o in outputs if o.name.lower() in wanted), None)


@dataclass
class OnnxPair:
    encoder: Graph
    decoder: Graph
    latent_dim: int
    weights: int = 0  # numbers in the two graphs' floating-point initializers

    @classmethod
    def from_bytes(cls, encoder: bytes, decoder: bytes) -> "OnnxPair":
        """Check both graphs against the contract (see the module's docstring) and open them."""
        enc_model, dec_model = parse_graph(encoder, "encoder"), parse_graph(decoder, "decoder")
        inputs = [i for i in enc_model.graph.input if i.name not in {t.name for t in enc_model.graph.initializer}]
        if len(inputs) != 1 or not _float32(inputs[0]) or len(_dims(inputs[0])) not in (2, 4):
            raise OnnxPairError("the encoder must take one float32 input, the images as (batch, C, H, W) or (batch, C*H*W)", "encoder")
        outputs = list(enc_model.graph.output)
        mean, logvar = _pick(outputs, MEAN_NAMES), _pick(outputs, LOGVAR_NAMES)
        if mean is None or logvar is None or mean is logvar:
            mean, logvar = (outputs + [None, None])[:2]
        if logvar is None or any(len(_dims(o)) != 2 or not _float32(o) for o in (mean, logvar)):
            raise OnnxPairError("the encoder must give two float32 outputs of shape (batch, latent_dim), the mean and "
                                "log-variance of q(z|x)", "encoder")
        sizes = {_dims(mean)[1], _dims(logvar)[1]} - {None}
        if len(sizes) > 1:
            raise OnnxPairError(f"the encoder's mean has {_dims(mean)[1]} dimensions but its log-variance "
                                f"{_dims(logvar)[1]}; they must be the same latent size", "encoder")
        dec_inputs = [i for i in dec_model.graph.input if i.name not in {t.name for t in dec_model.graph.initializer}]
        if len(dec_inputs) != 1 or not _float32(dec_inputs[0]) or len(_dims(dec_inputs[0])) != 2:
            raise OnnxPairError("the decoder must take one float32 input, z of shape (batch, latent_dim)", "decoder")
        dec_size = _dims(dec_inputs[0])[1]
        if sizes and dec_size is not None and dec_size != next(iter(sizes)):
            raise OnnxPairError(f"the encoder gives {next(iter(sizes))} latent dimensions but the decoder takes {dec_size}; "
                                "export an encoder and decoder of the same model", "pair")
        latent_dim = next(iter(sizes)) if sizes else dec_size
        if latent_dim is None:
            raise OnnxPairError("neither graph says its latent size; export them with a fixed latent dimension "
                                "(only the batch dimension may be free)", "pair")
        if not _float32(dec_model.graph.output[0]):
            raise OnnxPairError("the decoder's first output must be float32 (the logits or probabilities of the image)", "decoder")
        for role, given in (("encoder", inputs[0]), ("decoder", dec_inputs[0])):
            batch = _dims(given)[0]
            if batch is not None and not 1 <= batch <= MAX_FIXED_BATCH:
                raise OnnxPairError(f"the {role} was exported for batches of exactly {batch:,}; export it with a free batch "
                                    f"dimension, or a batch of at most {MAX_FIXED_BATCH:,}", role)
        process = GraphProcess({"encoder": encoder, "decoder": decoder})
        try:
            process.open()
        except GraphProcessError as exc:
            process.close()
            raise OnnxPairError(str(exc), exc.role) from None
        enc = Graph(process, "encoder", inputs[0].name, _dims(inputs[0]), [mean.name, logvar.name], [_dims(mean), _dims(logvar)],
                    [latent_dim, latent_dim])
        out = dec_model.graph.output[0]
        dec = Graph(process, "decoder", dec_inputs[0].name, _dims(dec_inputs[0]), [out.name], [_dims(out)])
        weights = sum(int(np.prod(t.dims)) for m in (enc_model, dec_model) for t in m.graph.initializer
                      if t.data_type in (1, 10, 11, 16))  # float, float16, double, bfloat16
        return cls(enc, dec, latent_dim, weights)

    def close(self) -> None:
        """Stop the graphs' process now (it also stops when the pair is garbage-collected)."""
        self.encoder.process.close()

    def check_image_shape(self, image_shape) -> None:
        """That the encoder takes and the decoder makes images of `image_shape` (C, H, W)."""
        shape, size = [int(v) for v in image_shape], int(np.prod(image_shape))
        named = "x".join(map(str, shape))
        given = self.encoder.input_shape[1:]
        fits = given == [size] or given == [None] if len(given) == 1 else all(g in (None, s) for g, s in zip(given, shape))
        if not fits:
            raise OnnxPairError(f"the encoder takes images of shape {_shape(given)}, but the dataset's are {named}", "encoder")
        self.decoder.values_per_row = [size]
        made = self.decoder.output_shapes[0][1:]
        if None not in made and int(np.prod(made)) != size:
            raise OnnxPairError(f"the decoder's output holds {_shape(made)} numbers per image, not an image of the "
                                f"dataset's shape {named}", "decoder")
        if len(made) == 3 and None not in made and made != shape:
            raise OnnxPairError(f"the decoder makes images of shape {_shape(made)}, but the dataset's are {named}", "decoder")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (B, D) on x's device."""
        flat = len(self.encoder.input_shape) == 2
        batch = x.detach().to("cpu", torch.float32).numpy().reshape(len(x), -1) if flat else x.detach().to("cpu", torch.float32).numpy()
        mu, logvar = self.encoder.run(np.ascontiguousarray(batch))
        return torch.from_numpy(mu).to(x.device), torch.from_numpy(logvar).to(x.device)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's first output for z (B, D), as it gives it, on z's device."""
        (out,) = self.decoder.run(np.ascontiguousarray(z.detach().to("cpu", torch.float32).numpy()))
        return torch.from_numpy(out).to(z.device)


def _shape(dims: list) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def onnx_model(pair: OnnxPair, image_shape, output: str = "logits", class_names: list[str] | None = None) -> WrappedVAE:
    """The pair as a VAE of this package (see `wrap_model`); probes it once on a blank image."""
    try:
        model = wrap_model(pair.encode, pair.decode, image_shape, output, class_names=class_names)
        model.weights = pair.weights
        return model
    except OnnxPairError:  # said of the graph already (a limit crossed, onnxruntime's refusal)
        raise
    except Exception as exc:  # onnxruntime's own errors on a shape the graph cannot take
        from ..errors import ConfigError

        if isinstance(exc, ConfigError):  # said for a Python caller: the exception's name is left out here
            message = re.sub(r" \(\w+\)", "", str(exc).rstrip("."))
            raise OnnxPairError(message.replace("encode(x)", "the encoder").replace("decode(z)", "the decoder"), "pair") from None
        raise OnnxPairError(f"the pair failed when run on a blank image ({str(exc).splitlines()[0][:160]})", "pair") from None

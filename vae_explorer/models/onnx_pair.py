"""A VAE given as two ONNX graphs, run with onnxruntime: an encoder image -> (mean, log-variance) and
a decoder z -> the likelihood's parameters. Only the graphs are executed, never code from their files.

The contract (docs/bring-your-own-model.md):
- encoder: one float32 input, the images in the model's units (models/observation.py) as
  (batch, C, H, W), channels-last (batch, H, W, C) or flattened (batch, C*H*W); two float32 outputs
  (batch, D), the mean and log-variance of q(z|x): the outputs named mu / mean / z_mean and logvar /
  log_var / z_log_var, or else the first two in order;
- decoder: one float32 input z (batch, D); its first output holds C*H*W numbers per image,
  (batch, C, H, W), channels-last or flat: Bernoulli logits or probabilities, or a Gaussian's mean;
  a learned variance is a second output (named logvar / log_var, or the second) of log-variances,
  or the first output holds twice the numbers, the means then the log-variances;
- conditional: the decoder (and, if it wants it, the encoder) takes a second input, the class: named
  label / y / c / class or else the second, as one-hot floats (batch, K) or indices (batch,) or
  (batch, 1), float32 or int64.
A batch dimension fixed at export (say 1, at most MAX_FIXED_BATCH) is honoured by running batches of
that size.

A graph is untrusted: weights kept in another file (which could name any file on the server) and
control flow (Loop, Scan, If: a loop can run for ever, and an encoder or decoder needs none) are
refused when it is parsed, and it runs only in a child process under a memory and a time limit
(models/graph_process.py), a batch at a time in chunks sized to take well under that limit.

    pair = OnnxPair.from_bytes(encoder_bytes, decoder_bytes)  # raises OnnxPairError naming the problem
    model = onnx_model(pair, image_shape=(1, 28, 28), observation=Observation())  # a WrappedVAE
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import VaeExplorerError
from .external import LOGVAR_KEYS, MEAN_KEYS, WrappedVAE, wrap_model
from .graph_process import GraphProcess, GraphProcessError
from .observation import Observation

# operator domains onnxruntime provides; a node in any other (not a function of the graph itself) is a custom operator
STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}
LABEL_NAMES = ("label", "labels", "y", "c", "class", "classes", "cond", "condition", "class_label")
CHANNEL_COUNTS = (1, 3, 4)  # a dimension of this size next to two larger ones is the channels
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
class Label:
    """A graph's class input: its name, and how it wants the class ("onehot" (B, K), "index" (B,),
    "column" (B, 1)) and of which type ("float32" or "int64" / "int32")."""

    name: str
    kind: str
    dtype: str
    classes: int | None = None  # K of a one-hot input, when fixed

    def feed(self, y: np.ndarray, classes: int) -> np.ndarray:
        """Class indices (B,) as this input takes them."""
        if self.kind == "onehot":
            return np.eye(classes, dtype=np.float32)[y]
        values = y.astype(self.dtype)
        return values.reshape(-1, 1) if self.kind == "column" else values


@dataclass
class Graph:
    """One checked graph, run in the pair's child process."""

    process: GraphProcess
    role: str  # "encoder" or "decoder": the graph's name in the process
    input: str
    input_shape: list  # per dimension an int, or None where it is free
    outputs: list[str]  # those used, in the order used
    output_shapes: list[list]
    label: Label | None = None  # the class input of a conditional graph
    values_per_row: list[int] = field(
        default_factory=list
    )  # the most each output may hold per image (the contract's size)
    rows: int = 16  # rows per chunk; adapted to the time a row takes
    classes: int = 0  # the number of classes, for a one-hot label

    @property
    def batch(self) -> int | None:
        """The batch size the graph was exported with, or None when any batch size runs."""
        return self.input_shape[0]

    def _chunk(self, x: np.ndarray, y: np.ndarray | None) -> list[np.ndarray]:
        per_row = self.values_per_row or [MAX_CHUNK_VALUES] * len(
            self.outputs
        )  # unknown until the image shape is checked
        limits = [len(x) * values for values in per_row]
        feeds = {self.input: x}
        if self.label is not None:
            feeds[self.label.name] = self.label.feed(np.zeros(len(x), np.int64) if y is None else y, self.classes)
        started = time.monotonic()
        try:
            out = self.process.run(self.role, feeds, self.outputs, limits)
        except GraphProcessError as exc:
            raise OnnxPairError(f"{exc}; this pair cannot be run here", exc.role) from None
        if self.batch is None:  # the next chunk takes about CHUNK_SECONDS
            seconds = (time.monotonic() - started) / len(x)
            most = min(MAX_CHUNK_ROWS, MAX_CHUNK_VALUES // max(per_row))
            self.rows = int(min(most, max(1, CHUNK_SECONDS / max(seconds, 1e-6))))
        return out

    def run(self, x: np.ndarray, y: np.ndarray | None = None) -> list[np.ndarray]:
        """The outputs for a batch of any length (and its class indices y (B,) for a conditional
        graph), in chunks (of the graph's fixed batch size if it has one)."""
        parts, start = [], 0
        while start < len(x):
            size = self.batch or self.rows
            chunk = x[start : start + size]
            labels = None if y is None else y[start : start + size]
            if self.batch is not None and len(chunk) < self.batch:  # padded with its last row, and cut back after
                pad = self.batch - len(chunk)
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)])
                labels = None if labels is None else np.concatenate([labels, np.repeat(labels[-1:], pad, 0)])
            parts.append([out[: min(size, len(x) - start)] for out in self._chunk(chunk, labels)])
            start += size
        if not parts:
            return [np.zeros((0, *[d or 0 for d in shape[1:]]), np.float32) for shape in self.output_shapes]
        return [np.concatenate([p[i] for p in parts]) for i in range(len(self.outputs))]


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def _float32(value_info) -> bool:
    from onnx import TensorProto

    return value_info.type.tensor_type.elem_type == TensorProto.FLOAT


def _split_inputs(inputs: list, role: str, main: str) -> tuple:
    """(the main input, the class input as a Label or None) of a graph's inputs; OnnxPairError otherwise."""
    from onnx import TensorProto

    if len(inputs) == 1:
        return inputs[0], None
    if len(inputs) != 2:
        raise OnnxPairError(
            f"the {role} takes {len(inputs)} inputs; it must take {main}, and for a conditional model the "
            "class label as a second",
            role,
        )
    label = next((i for i in inputs if i.name.lower() in LABEL_NAMES), None) or next(
        (i for i in inputs if len(_dims(i)) == 1), inputs[1]
    )
    given = inputs[1] if label is inputs[0] else inputs[0]
    dims = _dims(label)
    types = {TensorProto.FLOAT: "float32", TensorProto.INT64: "int64", TensorProto.INT32: "int32"}
    dtype = types.get(label.type.tensor_type.elem_type)
    if dtype is None or len(dims) not in (1, 2):
        raise OnnxPairError(
            f"the {role}'s class input {label.name!r} must be one-hot floats (batch, classes) or class indices "
            "(batch,) as float32 or int64",
            role,
        )
    if len(dims) == 1:
        kind = "index"
    elif dims[1] == 1:
        kind = "column"
    elif dtype != "float32":
        raise OnnxPairError(
            f"the {role}'s class input {label.name!r} is a (batch, classes) array of integers; a one-hot "
            "label must be float32",
            role,
        )
    else:
        kind = "onehot"
    return given, Label(label.name, kind, dtype, dims[1] if kind == "onehot" else None)


def parse_graph(data: bytes, role: str):
    """The ModelProto in `data`, checked to be a complete ONNX graph of standard operators with its
    weights inside (a graph pointing at external files is refused: they could name any file)."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        raise OnnxPairError(
            f"the {role} is not a complete ONNX model (truncated, or another kind of file)", role
        ) from None
    if any(
        t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data) for t in _tensors(model)
    ):  # before the checker reads them
        raise OnnxPairError(
            f"the {role} keeps its weights in a separate file; save it as one file "
            "(onnx.save(onnx.load(path), path, save_as_external_data=False))",
            role,
        )
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, RuntimeError):
        raise OnnxPairError(
            f"the {role} is not a complete ONNX model (truncated, or another kind of file)", role
        ) from None
    if not model.graph.node:
        raise OnnxPairError(f"the {role} is not a complete ONNX model (its graph is empty)", role)
    local = {f.domain for f in model.functions}
    custom = sorted({f"{n.domain}::{n.op_type}" for n in _nodes(model) if n.domain not in STANDARD_DOMAINS | local})
    if custom:
        raise OnnxPairError(
            f"the {role} uses custom operators ({', '.join(custom[:3])}) that onnxruntime does not provide; "
            "export it with standard ONNX operators only",
            role,
        )
    looping = sorted({n.op_type for n in _nodes(model) if any(a.HasField("g") or len(a.graphs) for a in n.attribute)})
    if looping:
        raise OnnxPairError(
            f"the {role} uses control flow ({', '.join(looping[:3])}), which an encoder or decoder does not "
            "need and which could run without end; export it without loops or conditionals",
            role,
        )
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
                for sparse in [
                    *([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []),
                    *attribute.sparse_tensors,
                ]:
                    yield from (sparse.values, sparse.indices)


def _pick(outputs: list, wanted: tuple[str, ...]):
    return next((o for o in outputs if o.name.lower() in wanted), None)


@dataclass
class OnnxPair:
    encoder: Graph
    decoder: Graph
    latent_dim: int
    weights: int = 0  # numbers in the two graphs' floating-point initializers
    variance_output: str | None = None  # the decoder's second output, a log-variance per pixel, if it has one
    variance_shape: list | None = None

    @classmethod
    def from_bytes(cls, encoder: bytes, decoder: bytes) -> OnnxPair:
        """Check both graphs against the contract (see the module's docstring) and open them."""
        enc_model, dec_model = parse_graph(encoder, "encoder"), parse_graph(decoder, "decoder")
        inputs = [i for i in enc_model.graph.input if i.name not in {t.name for t in enc_model.graph.initializer}]
        image, enc_label = _split_inputs(inputs, "encoder", "the images")
        if not _float32(image) or len(_dims(image)) not in (2, 4):
            raise OnnxPairError(
                "the encoder must take the images as one float32 input, (batch, C, H, W), (batch, H, W, C) "
                "or (batch, C*H*W)",
                "encoder",
            )
        outputs = list(enc_model.graph.output)
        mean, logvar = _pick(outputs, MEAN_KEYS), _pick(outputs, LOGVAR_KEYS)
        if mean is None or logvar is None or mean is logvar:
            mean, logvar = (outputs + [None, None])[:2]
        if logvar is None or any(len(_dims(o)) != 2 or not _float32(o) for o in (mean, logvar)):
            raise OnnxPairError(
                "the encoder must give two float32 outputs of shape (batch, latent_dim), the mean and "
                "log-variance of q(z|x)",
                "encoder",
            )
        sizes = {_dims(mean)[1], _dims(logvar)[1]} - {None}
        if len(sizes) > 1:
            raise OnnxPairError(
                f"the encoder's mean has {_dims(mean)[1]} dimensions but its log-variance "
                f"{_dims(logvar)[1]}; they must be the same latent size",
                "encoder",
            )
        dec_inputs = [i for i in dec_model.graph.input if i.name not in {t.name for t in dec_model.graph.initializer}]
        z_input, dec_label = _split_inputs(dec_inputs, "decoder", "z")
        if not _float32(z_input) or len(_dims(z_input)) != 2:
            raise OnnxPairError("the decoder must take z as a float32 input of shape (batch, latent_dim)", "decoder")
        if enc_label is not None and dec_label is None:
            raise OnnxPairError(
                "the encoder takes a class label but the decoder does not; a conditional model's decoder "
                "takes (z, label)",
                "pair",
            )
        classes = {label.classes for label in (enc_label, dec_label) if label is not None} - {None}
        if len(classes) > 1:
            raise OnnxPairError(
                f"the encoder's one-hot label has {enc_label.classes} classes but the decoder's "
                f"{dec_label.classes}; export an encoder and decoder of the same model",
                "pair",
            )
        dec_size = _dims(z_input)[1]
        if sizes and dec_size is not None and dec_size != next(iter(sizes)):
            raise OnnxPairError(
                f"the encoder gives {next(iter(sizes))} latent dimensions but the decoder takes {dec_size}; "
                "export an encoder and decoder of the same model",
                "pair",
            )
        latent_dim = next(iter(sizes)) if sizes else dec_size
        if latent_dim is None:
            raise OnnxPairError(
                "neither graph says its latent size; export them with a fixed latent dimension "
                "(only the batch dimension may be free)",
                "pair",
            )
        if not _float32(dec_model.graph.output[0]):
            raise OnnxPairError(
                "the decoder's first output must be float32 (the likelihood's parameters of the image)", "decoder"
            )
        for role, given in (("encoder", image), ("decoder", z_input)):
            batch = _dims(given)[0]
            if batch is not None and not 1 <= batch <= MAX_FIXED_BATCH:
                raise OnnxPairError(
                    f"the {role} was exported for batches of exactly {batch:,}; export it with a free batch "
                    f"dimension, or a batch of at most {MAX_FIXED_BATCH:,}",
                    role,
                )
        process = GraphProcess({"encoder": encoder, "decoder": decoder})
        try:
            process.open()
        except GraphProcessError as exc:
            process.close()
            raise OnnxPairError(str(exc), exc.role) from None
        enc = Graph(
            process,
            "encoder",
            image.name,
            _dims(image),
            [mean.name, logvar.name],
            [_dims(mean), _dims(logvar)],
            enc_label,
            [latent_dim, latent_dim],
        )
        dec_outputs = list(dec_model.graph.output)
        dec = Graph(
            process, "decoder", z_input.name, _dims(z_input), [dec_outputs[0].name], [_dims(dec_outputs[0])], dec_label
        )
        variance = _pick(dec_outputs[1:], LOGVAR_KEYS) or (dec_outputs[1] if len(dec_outputs) > 1 else None)
        weights = sum(
            int(np.prod(t.dims))
            for m in (enc_model, dec_model)
            for t in m.graph.initializer
            if t.data_type in (1, 10, 11, 16)
        )  # float, float16, double, bfloat16
        if variance is None or not _float32(variance):
            return cls(enc, dec, latent_dim, weights)
        return cls(enc, dec, latent_dim, weights, variance.name, _dims(variance))

    @property
    def conditional(self) -> bool:
        return self.decoder.label is not None

    @property
    def label_classes(self) -> int | None:
        """The number of classes a one-hot label says, when fixed."""
        return next(
            (g.label.classes for g in (self.encoder, self.decoder) if g.label is not None and g.label.classes), None
        )

    def close(self) -> None:
        """Stop the graphs' process now (it also stops when the pair is garbage-collected)."""
        self.encoder.process.close()

    def fixed_image_shape(self) -> tuple[list[int], str] | None:
        """(C, H, W) and the layout ("nchw" or "nhwc") of the images the encoder was exported for, when
        its input fixes them; a channels dimension is one of 1, 3, 4 beside two that are not."""
        dims = self.encoder.input_shape[1:]
        if len(dims) != 3 or None in dims:
            return None
        first, _, last = dims
        if last in CHANNEL_COUNTS and first not in CHANNEL_COUNTS:
            return [last, dims[0], dims[1]], "nhwc"
        return list(dims), "nchw"

    def layout(self, image_shape) -> str:
        """How the encoder takes images of `image_shape` (C, H, W): "flat", "nchw" or "nhwc";
        OnnxPairError when it takes none of those."""
        c, h, w = (int(v) for v in image_shape)
        given = self.encoder.input_shape[1:]
        if len(given) == 1:
            if given[0] not in (None, c * h * w):
                raise OnnxPairError(
                    f"the encoder takes {given[0]} numbers per image, but the dataset's images are {c}x{h}x{w} "
                    f"({c * h * w}); pass --image-size and --channels of the images it was trained on",
                    "encoder",
                )
            return "flat"
        if all(g in (None, s) for g, s in zip(given, (c, h, w))):
            return "nchw"
        if all(g in (None, s) for g, s in zip(given, (h, w, c))):
            return "nhwc"
        raise OnnxPairError(
            f"the encoder takes images of shape {_shape(given)}, but the dataset's are {c}x{h}x{w} (channels "
            "first; channels-last is found by itself); pass --image-size and --channels of the images it "
            "was trained on",
            "encoder",
        )

    def check_image_shape(self, image_shape, outputs_per_pixel: int = 1) -> None:
        """That the encoder takes and the decoder makes images of `image_shape` (C, H, W), with
        `outputs_per_pixel` values per pixel (2: a mean and a log-variance)."""
        shape, size = [int(v) for v in image_shape], int(np.prod(image_shape))
        named = "x".join(map(str, shape))
        self.layout(shape)
        if outputs_per_pixel == 2 and self.variance_output is not None:
            self.decoder.outputs = self.decoder.outputs[:1] + [self.variance_output]
            self.decoder.output_shapes = self.decoder.output_shapes[:1] + [self.variance_shape]
            self.decoder.values_per_row = [size, size]
            shapes = self.decoder.output_shapes
        else:
            self.decoder.values_per_row = [size * outputs_per_pixel]
            shapes = self.decoder.output_shapes[:1]
        for made, per_row in zip(shapes, self.decoder.values_per_row):
            made = made[1:]
            if None not in made and int(np.prod(made)) != per_row:
                twice = " (a mean and a log-variance per pixel)" if per_row == 2 * size else ""
                raise OnnxPairError(
                    f"the decoder's output holds {_shape(made)} numbers per image, not an image of the "
                    f"dataset's shape {named}{twice}",
                    "decoder",
                )

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (B, D) on x's device, for images arranged as the encoder takes them."""
        batch = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        mu, logvar = self.encoder.run(batch, None if y is None else y.detach().cpu().numpy())
        return torch.from_numpy(mu).to(x.device), torch.from_numpy(logvar).to(x.device)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The decoder's outputs used (the image's parameters, and a log-variance if asked for), on z's device."""
        outs = self.decoder.run(
            np.ascontiguousarray(z.detach().to("cpu", torch.float32).numpy()),
            None if y is None else y.detach().cpu().numpy(),
        )
        return tuple(torch.from_numpy(out).to(z.device) for out in outs)


def _shape(dims: list) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def onnx_model(
    pair: OnnxPair,
    image_shape,
    observation: Observation,
    class_names: list[str] | None = None,
    fit_images: torch.Tensor | None = None,
    fit_labels: torch.Tensor | None = None,
) -> WrappedVAE:
    """The pair as a VAE of this package (see `wrap_model`); probes it once on a blank image. A
    Gaussian's sigma not declared is fitted on `fit_images` (and their labels, if conditional)."""
    from ..errors import ConfigError

    if pair.conditional:
        if not class_names:
            raise OnnxPairError("the decoder takes a class label, so the model needs the dataset's classes", "pair")
        if pair.label_classes is not None and pair.label_classes != len(class_names):
            raise OnnxPairError(
                f"the graphs' one-hot label has {pair.label_classes} classes but the dataset has "
                f"{len(class_names)}; import it with the dataset it was trained on",
                "pair",
            )
        for graph in (pair.encoder, pair.decoder):
            graph.classes = len(class_names)
    pair.check_image_shape(image_shape, observation.outputs_per_pixel)
    try:
        model = wrap_model(
            pair.encode,
            pair.decode,
            image_shape,
            class_names=class_names,
            conditional=pair.conditional,
            layout=pair.layout(image_shape),
            observation=observation,
            fit_images=fit_images,
            fit_labels=fit_labels,
        )
        model.weights = pair.weights
        return model
    except OnnxPairError:  # said of the graph already (a limit crossed, onnxruntime's refusal)
        raise
    except ConfigError as exc:  # said for a Python caller: the exception's name is left out here
        message = re.sub(r" \(\w+\)", "", str(exc).rstrip("."))
        raise OnnxPairError(
            message.replace("encode(x)", "the encoder").replace("decode(z)", "the decoder"), "pair"
        ) from None
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors on a shape the graph cannot take
        raise OnnxPairError(
            f"the pair failed when run on a blank image ({str(exc).splitlines()[0][:160]})", "pair"
        ) from None

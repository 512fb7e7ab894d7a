"""Import a VAE trained anywhere as two ONNX graphs: a checkpoint folder every page and command opens.

    folder, notes = import_onnx("enc.onnx", "dec.onnx", "runs/their-vae", dataset="fashion-mnist")

    NAME/config.json          model.architecture "onnx", the latent size, the dataset's image shape and classes
    NAME/onnx.json            {"output": "logits" | "probabilities"}: what the decoder gives
    NAME/onnx_encoder.onnx    the encoder, its weights inside the file
    NAME/onnx_decoder.onnx    the decoder, likewise
    NAME/history.json, metrics.json   empty until `evaluate` fills the metrics

The graphs are checked against the contract of models/onnx_pair.py, then run on the dataset's test
images (finite means, variances and outputs in the range `output` says), and only then is the
folder written (aside, then renamed), so a refused import writes nothing. The server runs them
with onnxruntime; loading one opens them again from their bytes, with the same checks.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig, ModelConfig, RunConfig
from ..errors import CheckpointError, VaeExplorerError
from ..models.onnx_pair import OnnxPair, OnnxPairError, onnx_model
from .folder import CONFIG_FILE, FORMAT_VERSION, HISTORY_FILE, METRICS_FILE, _fsync_write, _json_bytes
from .records import read_json

ARCHITECTURE = "onnx"
IMPORT_FILE, ENCODER_GRAPH, DECODER_GRAPH = "onnx.json", "onnx_encoder.onnx", "onnx_decoder.onnx"
OUTPUTS = ("logits", "probabilities")
MAX_LATENT = 128  # ModelConfig's bound: the sliders and maps are made for codes this size
PROBE_IMAGES = 64


def is_imported(config: RunConfig) -> bool:
    return config.model.architecture == ARCHITECTURE


def _read_graph(path: Path, role: str) -> bytes:
    """The graph's bytes with any weights it keeps beside it (torch writes NAME.onnx.data) taken inside."""
    import onnx

    if not path.is_file():
        raise CheckpointError(f"{role} file {path} not found; pass the .onnx file your export wrote.")
    data = path.read_bytes()
    try:
        model = onnx.load_model_from_string(data)
        external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    except Exception:  # not ONNX at all: the pair's check says so in its own words
        return data
    if external:  # files on this machine the person names: read them in, so the checkpoint is one file per graph
        try:
            onnx.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError):
            raise CheckpointError(f"{path} keeps its weights in a separate file that is missing or unreadable; "
                                  "keep the .onnx.data file beside it.") from None
        data = model.SerializeToString()
    return data


def _probe(pair: OnnxPair, model, data, output: str) -> list[str]:
    """Run the pair on test images; raise OnnxPairError on what makes it unusable, return notes on what looks odd."""
    x = data.test_x[:PROBE_IMAGES]
    x = torch.as_tensor(np.asarray(x[:])) if not isinstance(x, torch.Tensor) else x
    with torch.no_grad():
        mu, logvar = pair.encode(x)
        if not (torch.isfinite(mu).all() and torch.isfinite(logvar).all()):
            raise OnnxPairError("the encoder gives NaN or infinite means or log-variances on the dataset's test images; "
                                "check that it was exported from a trained model and takes images in [0, 1]", "encoder")
        out = pair.decode(mu)
    if not torch.isfinite(out).all():
        raise OnnxPairError("the decoder gives NaN or infinite values for the test images' codes", "decoder")
    notes = []
    if output == "probabilities" and (out.min() < -1e-4 or out.max() > 1 + 1e-4):
        raise OnnxPairError(f"the decoder's outputs run from {out.min():.3g} to {out.max():.3g}, outside [0, 1], so they "
                            "are not probabilities; import it with --output logits", "decoder")
    if output == "logits" and out.min() >= 0 and out.max() <= 1:
        notes.append("the decoder's outputs all lie in [0, 1]: if they are probabilities (a sigmoid at its end), import "
                     "it again with --output probabilities, or its pictures and likelihoods will be wrong")
    return notes


def check_pair(encoder: bytes, decoder: bytes, image_shape, output: str, class_names=None):
    """The opened pair and its model, for graphs that keep the contract; OnnxPairError otherwise."""
    if output not in OUTPUTS:
        raise OnnxPairError(f"output must be logits or probabilities, not {output!r}", "decoder")
    pair = OnnxPair.from_bytes(encoder, decoder)
    try:
        if pair.latent_dim > MAX_LATENT:
            raise OnnxPairError(f"the latent size is {pair.latent_dim}; vae-explorer explores codes of up to {MAX_LATENT} dimensions", "pair")
        pair.check_image_shape(image_shape)
        return pair, onnx_model(pair, image_shape, output, class_names)
    except BaseException:  # its process is stopped now, not when the refused pair is collected
        pair.close()
        raise


def import_onnx(encoder: str | Path, decoder: str | Path, out: str | Path, dataset: str, output: str = "logits",
                class_names: list[str] | None = None, data_dir: str | None = None) -> tuple[Path, list[str]]:
    """Check an encoder and decoder exported anywhere and write them as a checkpoint folder at `out`
    (which must not exist). Returns the folder and notes worth telling (e.g. an output that looks
    like probabilities imported as logits). Every refusal is a CheckpointError and writes nothing."""
    from ..data import load_dataset

    encoder, decoder, out = Path(encoder), Path(decoder), Path(out)
    if out.exists():
        raise CheckpointError(f"{out} exists already; pass --out a new folder (nothing is overwritten).")
    enc_bytes, dec_bytes = _read_graph(encoder, "encoder"), _read_graph(decoder, "decoder")
    data_config = DataConfig(dataset=dataset, data_dir=data_dir)
    data = load_dataset(data_config)  # DatasetError says how to get it
    names = list(class_names) if class_names else list(data.class_names)
    if len(names) != data.num_classes:
        raise CheckpointError(f"--class-names gives {len(names)} names but {dataset} has {data.num_classes} classes; "
                              "give one name per class, in the dataset's order.")
    try:
        pair, model = check_pair(enc_bytes, dec_bytes, data.image_shape, output, names)
        try:
            notes = _probe(pair, model, data, output)
        finally:  # the pair was run to be checked; the folder is opened again by whoever explores it
            pair.close()
    except OnnxPairError as exc:
        which = {"encoder": encoder.name, "decoder": decoder.name}.get(exc.role, f"{encoder.name} and {decoder.name}")
        raise CheckpointError(f"{which}: {exc}.") from None
    config = RunConfig(data=data_config, model=ModelConfig(architecture=ARCHITECTURE, latent_dim=pair.latent_dim,
                                                           image_shape=list(data.image_shape), num_classes=len(names),
                                                           class_names=names))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.importing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _fsync_write(staging / ENCODER_GRAPH, enc_bytes)
        _fsync_write(staging / DECODER_GRAPH, dec_bytes)
        _fsync_write(staging / IMPORT_FILE, _json_bytes({"output": output, "encoder": encoder.name, "decoder": decoder.name}))
        _fsync_write(staging / CONFIG_FILE, _json_bytes({"format_version": FORMAT_VERSION, **config.to_dict()}))
        _fsync_write(staging / HISTORY_FILE, _json_bytes([]))
        _fsync_write(staging / METRICS_FILE, _json_bytes({}))
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out, notes


def graphs_sha1(path: str | Path) -> str:
    """The digest of an imported folder's two graphs: what derived files are keyed by."""
    digest = hashlib.sha1()
    for name in (ENCODER_GRAPH, DECODER_GRAPH):
        digest.update(hashlib.sha1((Path(path) / name).read_bytes()).digest())
    return digest.hexdigest()


def load_imported(path: Path, config: RunConfig):
    """The model of an imported folder (a WrappedVAE running its graphs); CheckpointError names the file at fault."""
    try:
        output = read_json(path / IMPORT_FILE, dict)["output"]
    except (CheckpointError, OSError, KeyError):
        raise CheckpointError(f"{path / IMPORT_FILE} is missing or unreadable; import the ONNX pair again.") from None
    graphs = []
    for name in (ENCODER_GRAPH, DECODER_GRAPH):
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name} is missing; the imported model is incomplete, so import it again.")
        graphs.append((path / name).read_bytes())
    try:
        pair, model = check_pair(*graphs, config.model.image_shape, output, config.model.class_names)
        if pair.latent_dim != config.model.latent_dim:
            pair.close()
    except OnnxPairError as exc:
        which = {"encoder": path / ENCODER_GRAPH, "decoder": path / DECODER_GRAPH}.get(exc.role, f"{path / ENCODER_GRAPH} and {DECODER_GRAPH}")
        raise CheckpointError(f"{which}: {exc}; import the ONNX pair again.") from None
    if pair.latent_dim != config.model.latent_dim:
        raise CheckpointError(f"{path / CONFIG_FILE} says latent_dim {config.model.latent_dim} but the graphs have "
                              f"{pair.latent_dim}; import the ONNX pair again.")
    return model


def browser_decoder_graph(path: Path, image_shape, weights: str) -> bytes:
    """The imported decoder as the browser's decoder.onnx (see checkpoints/onnx.py): input "z", output
    "image" (batch, C, H, W), the mean image in [0, 1] (a sigmoid after logits, a clip after
    probabilities). Nodes are added around the person's graph; theirs are left as they are."""
    import onnx
    from onnx import TensorProto, helper

    output = read_json(path / IMPORT_FILE, dict).get("output")
    model = onnx.load_model_from_string((path / DECODER_GRAPH).read_bytes())
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise CheckpointError(f"the decoder uses ONNX opset {opset}; the browser needs 13 or later, so export it again "
                              "with opset_version=17")
    initializers = {t.name for t in graph.initializer}
    z_in = next(i for i in graph.input if i.name not in initializers)
    out = graph.output[0]
    dims = [d for d in z_in.type.tensor_type.shape.dim]
    if dims[0].HasField("dim_value") and dims[0].dim_value != 1:
        raise CheckpointError(f"the decoder was exported for batches of exactly {dims[0].dim_value}; the browser decodes "
                              "one z at a time, so export it with a free batch dimension")
    prefix = "vae_explorer_"
    raw = out.name
    if raw == "image":  # the name the browser reads is taken by the person's own output: theirs is renamed
        raw = prefix + "raw"
        for node in graph.node:
            node.output[:] = [raw if name == "image" else name for name in node.output]
            node.input[:] = [raw if name == "image" else name for name in node.input]
    first, nodes = [], []  # before and after the person's nodes (a graph's nodes are in topological order)
    if z_in.name != "z":
        first.append(helper.make_node("Identity", ["z"], [z_in.name], name=prefix + "z"))
    shape = helper.make_tensor(prefix + "shape", TensorProto.INT64, [4], [-1, *map(int, image_shape)])
    nodes.append(helper.make_node("Reshape", [raw, prefix + "shape"], [prefix + "reshaped"], name=prefix + "reshape"))
    if output == "logits":
        nodes.append(helper.make_node("Sigmoid", [prefix + "reshaped"], ["image"], name=prefix + "sigmoid"))
    else:
        low = helper.make_tensor(prefix + "low", TensorProto.FLOAT, [], [0.0])
        high = helper.make_tensor(prefix + "high", TensorProto.FLOAT, [], [1.0])
        graph.initializer.extend([low, high])
        nodes.append(helper.make_node("Clip", [prefix + "reshaped", prefix + "low", prefix + "high"], ["image"], name=prefix + "clip"))
    graph.initializer.append(shape)
    if z_in.name != "z":  # the browser feeds "z": the person's input becomes the Identity's output
        renamed = onnx.ValueInfoProto()
        renamed.CopyFrom(z_in)
        renamed.name = "z"
        kept = [renamed if i.name == z_in.name else _copy(i) for i in graph.input]
        del graph.input[:]
        graph.input.extend(kept)
    every = first + [_copy_node(n) for n in graph.node] + nodes
    del graph.node[:]
    graph.node.extend(every)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", *map(int, image_shape)]))
    model.metadata_props.add(key="weights_sha1", value=weights)
    model.metadata_props.add(key="latent_dim", value=str(int(dims[1].dim_value)))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise VaeExplorerError(f"the decoder could not be prepared for the browser ({str(exc).splitlines()[0][:120]})") from None
    return model.SerializeToString()


def _copy(value_info):
    import onnx

    copy = onnx.ValueInfoProto()
    copy.CopyFrom(value_info)
    return copy


def _copy_node(node):
    import onnx

    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy

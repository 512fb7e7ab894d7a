"""Import a VAE trained anywhere as two ONNX graphs: a checkpoint folder every page and command opens.

    folder, notes = import_onnx("enc.onnx", "dec.onnx", "runs/their-vae", dataset="fashion-mnist")

    NAME/config.json          model.architecture "onnx", the latent size, the dataset (and the image size
                              and channels it is read at) and its classes
    NAME/onnx.json            the likelihood and value range (models/observation.py): likelihood, output,
                              sigma, sigma_fitted, mean, std, declared; and the layouts found (layout,
                              decoder_layout: nchw, nhwc, flat); older imports hold only "output"
    NAME/onnx_encoder.onnx    the encoder, its weights inside the file
    NAME/onnx_decoder.onnx    the decoder, likewise
    NAME/history.json, metrics.json   empty until `evaluate` fills the metrics

The graphs are checked against the contract of models/onnx_pair.py; an image shape the encoder's
input fixes sets the size (and, for a folder, the channels) the dataset is read at. Then they are run
on the dataset's test images (finite means, variances and outputs in the range declared; a fixed
Gaussian sigma not given is fitted on up to FIT_IMAGES of them), and only then is the folder written
(aside, then renamed), so a refused import writes nothing. The server runs them with onnxruntime;
loading one opens them again from their bytes, with the same checks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig, ModelConfig, RunConfig
from ..errors import CheckpointError, ConfigError, VaeExplorerError
from ..models.external import MAX_LATENT
from ..models.observation import Observation
from ..models.onnx_pair import OnnxPair, OnnxPairError, _split_inputs, onnx_model
from .folder import CONFIG_FILE, FORMAT_VERSION, HISTORY_FILE, METRICS_FILE, fsync_write, json_bytes
from .records import read_json

ARCHITECTURE = "onnx"
IMPORT_FILE, ENCODER_GRAPH, DECODER_GRAPH = "onnx.json", "onnx_encoder.onnx", "onnx_decoder.onnx"
PROBE_IMAGES = 64
FIT_IMAGES = 1000  # test images a Gaussian's sigma is fitted on
RANGE_SLACK = 0.1  # Gaussian means this far outside the declared range (in [0, 1] units) contradict it


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
            raise CheckpointError(
                f"{path} keeps its weights in a separate file that is missing or unreadable; "
                "keep the .onnx.data file beside it."
            ) from None
        data = model.SerializeToString()
    return data


def _probe(pair: OnnxPair, model, data) -> list[str]:
    """Run the pair on test images; raise OnnxPairError on what makes it unusable (or contradicts the
    declared likelihood and range), return notes on what looks odd."""
    observation = model.observation
    x = data.test_x[:PROBE_IMAGES]
    x = torch.as_tensor(np.asarray(x[:])) if not isinstance(x, torch.Tensor) else x
    y = torch.as_tensor(np.asarray(data.test_y[:PROBE_IMAGES])) if model.cond_dim else None
    with torch.no_grad():
        q = model.encode(x, y)
        if not (torch.isfinite(q.mean).all() and torch.isfinite(q.logvar).all()):
            raise OnnxPairError(
                "the encoder gives NaN or infinite means or log-variances on the dataset's test images; "
                f"check that it was exported from a trained model and takes images {observation.inputs_words()}",
                "encoder",
            )
        out = pair.decode(q.mean, y)[0]
        params = model.decode(q.mean, y)
    if not torch.isfinite(params).all():
        raise OnnxPairError("the decoder gives NaN or infinite values for the test images' codes", "decoder")
    low, high = float(out.min()), float(out.max())
    notes = []
    if (
        observation.likelihood == "bernoulli"
        and observation.output == "probabilities"
        and (low < -1e-4 or high > 1 + 1e-4)
    ):
        raise OnnxPairError(
            f"the decoder's outputs run from {low:.3g} to {high:.3g}, outside [0, 1], so they are not "
            "probabilities; import it with --output logits",
            "decoder",
        )
    if observation.likelihood == "bernoulli" and observation.output == "logits":
        if low >= 0 and high <= 1:
            notes.append(
                "the decoder's outputs all lie in [0, 1]: if they are probabilities (a sigmoid at its end), import "
                "it again with --output probabilities, or its pictures and likelihoods will be wrong"
            )
        elif low >= -1 - 1e-4 and high <= 1 + 1e-4 and low < -1e-3:  # logits are rarely all within [-1, 1]
            notes.append(
                "the decoder's outputs all lie in [-1, 1]: if it ends in a Tanh (a model trained with MSE on images "
                "in [-1, 1]), import it again with --likelihood gaussian --range -1,1"
            )
    if observation.likelihood != "bernoulli":
        means = params.chunk(2, dim=1)[0] if observation.likelihood == "gaussian-learned" else params
        in_images = observation.to_image(means, clip=False)  # the decoder's means in [0, 1] units
        below, above = float(in_images.min()), float(in_images.max())
        if below < -RANGE_SLACK or above > 1 + RANGE_SLACK:
            low_m, high_m = float(means.min()), float(means.max())
            hint = (
                " --range -1,1"
                if low_m >= -1 - 1e-3 and high_m <= 1 + 1e-3 and low_m < -RANGE_SLACK
                else " the --mean and --std it was trained with"
            )
            raise OnnxPairError(
                f"the decoder's means run from {low_m:.3g} to {high_m:.3g}, outside the declared range "
                f"{observation.range_words()}; import it with{hint}",
                "decoder",
            )
    if model.layout == "nhwc":
        notes.append("the encoder takes channels-last images (batch, H, W, C): the images are transposed for it")
    return notes


def check_pair(encoder: bytes, decoder: bytes, image_shape, observation: Observation, class_names=None, fit=None):
    """The opened pair and its model, for graphs that keep the contract; OnnxPairError otherwise.
    `fit` is (images, labels) a Gaussian's sigma is fitted on when the observation has none."""
    pair = OnnxPair.from_bytes(encoder, decoder)
    try:
        return pair, _model(pair, image_shape, observation, class_names, fit)
    except BaseException:  # its process is stopped now, not when the refused pair is collected
        pair.close()
        raise


def _model(pair: OnnxPair, image_shape, observation: Observation, class_names, fit):
    if pair.latent_dim > MAX_LATENT:
        raise OnnxPairError(
            f"the latent size is {pair.latent_dim}; vae-explorer explores codes of up to {MAX_LATENT} dimensions",
            "pair",
        )
    if (
        observation.likelihood == "gaussian-learned"
        and pair.variance_output is None
        and pair.decoder.output_shapes[0][1:]
        and None not in pair.decoder.output_shapes[0][1:]
        and int(np.prod(pair.decoder.output_shapes[0][1:])) == int(np.prod(image_shape))
    ):
        raise OnnxPairError(
            "the decoder gives one value per pixel and no log-variance output, so it cannot give the "
            "gaussian-learned likelihood; import it with --likelihood gaussian (a fixed sigma)",
            "decoder",
        )
    images, labels = fit if fit is not None else (None, None)
    return onnx_model(pair, image_shape, observation, class_names, images, labels)


def _load_data(pair: OnnxPair, dataset: str, data_dir: str | None, image_size: int | None, channels: int | None):
    """The dataset read at the image size and channels given, else at those the encoder's input fixes
    (left unset where they are the dataset's own, so it is the same dataset other models name)."""
    from ..data import load_dataset

    fixed = pair.fixed_image_shape()
    if fixed is not None:
        (c, h, w), _ = fixed
        if h != w and image_size is None:
            raise CheckpointError(
                f"the encoder takes {h}x{w} images; vae-explorer reads square images, so export it for square ones."
            )
        if dataset.startswith("folder:") and channels is None:
            channels = c if c in (1, 3) else None
    from ..config import section_from_dict

    # the flags checked against the config's bounds before anything is read (an image size of 10,000 is refused here)
    config = section_from_dict(
        DataConfig,
        {"dataset": dataset, "data_dir": data_dir, "image_size": image_size, "channels": channels or 1},
        "data",
        "import-onnx",
    )
    data = load_dataset(config)  # DatasetError says how to get it
    if fixed is not None and image_size is None and data.image_shape[1] != fixed[0][1]:
        config = section_from_dict(
            DataConfig,
            {"dataset": dataset, "data_dir": data_dir, "image_size": fixed[0][1], "channels": channels or 1},
            "data",
            "the encoder's input",
        )
        data = load_dataset(config)
    return config, data


def import_onnx(
    encoder: str | Path,
    decoder: str | Path,
    out: str | Path,
    dataset: str,
    output: str = "logits",
    class_names: list[str] | None = None,
    data_dir: str | None = None,
    likelihood: str | None = None,
    sigma: float | None = None,
    value_range: str | None = None,
    mean=None,
    std=None,
    image_size: int | None = None,
    channels: int | None = None,
) -> tuple[Path, list[str]]:
    """Check an encoder and decoder exported anywhere and write them as a checkpoint folder at `out`
    (which must not exist). `likelihood` (bernoulli, gaussian, gaussian-learned), `output`
    (Bernoulli: logits or probabilities), `sigma` (a fixed Gaussian's; fitted when not given) and
    `value_range` ("0,1", "-1,1") or `mean` and `std` per channel say how the model was trained
    (models/observation.py); `image_size` and `channels` how the dataset is read (else as the
    encoder's input fixes them). Returns the folder and notes worth telling (e.g. an output that
    looks like probabilities imported as logits). Every refusal is a CheckpointError and writes nothing."""
    encoder, decoder, out = Path(encoder), Path(decoder), Path(out)
    if out.exists():
        raise CheckpointError(f"{out} exists already; pass --out a new folder (nothing is overwritten).")
    enc_bytes, dec_bytes = _read_graph(encoder, "encoder"), _read_graph(decoder, "decoder")

    def refused(exc: OnnxPairError) -> CheckpointError:
        which = {"encoder": encoder.name, "decoder": decoder.name}.get(exc.role, f"{encoder.name} and {decoder.name}")
        return CheckpointError(f"{which}: {exc}.")

    try:
        pair = OnnxPair.from_bytes(enc_bytes, dec_bytes)
    except OnnxPairError as exc:
        raise refused(exc) from None
    try:
        data_config, data = _load_data(pair, dataset, data_dir, image_size, channels)
        names = list(class_names) if class_names else list(data.class_names)
        if len(names) != data.num_classes:
            raise CheckpointError(
                f"--class-names gives {len(names)} names but {dataset} has {data.num_classes} classes; "
                "give one name per class, in the dataset's order."
            )
        try:
            observation = Observation.declare(
                likelihood, output, sigma, value_range, mean, std, channels=data.image_shape[0]
            )
        except ConfigError as exc:
            raise CheckpointError(str(exc)) from None
        fit = (data.test_x[:FIT_IMAGES], data.test_y[:FIT_IMAGES])
        try:
            model = _model(pair, data.image_shape, observation, names, fit)
            notes = _probe(pair, model, data)
        except OnnxPairError as exc:
            raise refused(exc) from None
    finally:  # the pair was run to be checked; the folder is opened again by whoever explores it
        pair.close()
    observation = model.observation
    config = RunConfig(
        data=data_config,
        model=ModelConfig(
            architecture=ARCHITECTURE,
            latent_dim=pair.latent_dim,
            image_shape=list(data.image_shape),
            num_classes=len(names),
            class_names=names,
            likelihood=observation.likelihood,
            conditional=pair.conditional,
        ),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.importing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        fsync_write(staging / ENCODER_GRAPH, enc_bytes)
        fsync_write(staging / DECODER_GRAPH, dec_bytes)
        fsync_write(
            staging / IMPORT_FILE,
            json_bytes(
                {
                    **observation.to_dict(),
                    "layout": model.layout,
                    "decoder_layout": model.decoder_layout,
                    "encoder": encoder.name,
                    "decoder": decoder.name,
                }
            ),
        )
        fsync_write(staging / CONFIG_FILE, json_bytes({"format_version": FORMAT_VERSION, **config.to_dict()}))
        fsync_write(staging / HISTORY_FILE, json_bytes([]))
        fsync_write(staging / METRICS_FILE, json_bytes({}))
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out, notes


def read_observation(path: Path, channels: int) -> Observation:
    """The likelihood and range an imported folder declares (onnx.json); CheckpointError names the file."""
    try:
        return Observation.from_dict(read_json(path / IMPORT_FILE, dict), channels)
    except (CheckpointError, OSError):
        raise CheckpointError(f"{path / IMPORT_FILE} is missing or unreadable; import the ONNX pair again.") from None
    except ConfigError as exc:
        raise CheckpointError(f"{path / IMPORT_FILE}: {str(exc).rstrip('.')}; import the ONNX pair again.") from None


def load_imported(path: Path, config: RunConfig):
    """The model of an imported folder (a WrappedVAE running its graphs); CheckpointError names the file at fault."""
    observation = read_observation(path, config.model.image_shape[0])
    graphs = []
    for name in (ENCODER_GRAPH, DECODER_GRAPH):
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name} is missing; the imported model is incomplete, so import it again.")
        graphs.append((path / name).read_bytes())
    try:
        pair, model = check_pair(*graphs, config.model.image_shape, observation, config.model.class_names)
        if pair.latent_dim != config.model.latent_dim:
            pair.close()
    except OnnxPairError as exc:
        which = {"encoder": path / ENCODER_GRAPH, "decoder": path / DECODER_GRAPH}.get(
            exc.role, f"{path / ENCODER_GRAPH} and {DECODER_GRAPH}"
        )
        raise CheckpointError(f"{which}: {exc}; import the ONNX pair again.") from None
    if pair.latent_dim != config.model.latent_dim:
        raise CheckpointError(
            f"{path / CONFIG_FILE} says latent_dim {config.model.latent_dim} but the graphs have "
            f"{pair.latent_dim}; import the ONNX pair again."
        )
    return model


def browser_decoder_graph(path: Path, image_shape, weights: str, classes: int = 0) -> bytes:
    """The imported decoder as the browser's decoder.onnx (see checkpoints/onnx_export.py): inputs "z" and,
    for a conditional model of `classes` classes, "label" (batch, classes) one-hot; output "image" (batch, C, H, W), the
    mean image in [0, 1] (a sigmoid after logits, a clip after probabilities, the range mapped back
    after a Gaussian's means; channels-last transposed; a log-variance left out). Nodes are added
    around the person's graph; theirs are left as they are."""
    import onnx
    from onnx import TensorProto, helper

    c, h, w = (int(v) for v in image_shape)
    observation = read_observation(path, c)
    model = onnx.load_model_from_string((path / DECODER_GRAPH).read_bytes())
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise CheckpointError(
            f"the decoder uses ONNX opset {opset}; the browser needs 13 or later, so export it again "
            "with opset_version=17"
        )
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    z_in, label = _split_inputs(inputs, "decoder", "z")
    out = graph.output[0]
    dims = [d for d in z_in.type.tensor_type.shape.dim]
    if dims[0].HasField("dim_value") and dims[0].dim_value != 1:
        raise CheckpointError(
            f"the decoder was exported for batches of exactly {dims[0].dim_value}; the browser decodes "
            "one z at a time, so export it with a free batch dimension"
        )
    prefix = "vae_explorer_"
    raw = out.name
    taken = {"image", "z", "label"}  # the browser's names: the person's own values of those names are renamed
    renames = {name: prefix + name for name in taken}
    for node in graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
        node.input[:] = [renames.get(name, name) for name in node.input]
    raw = renames.get(raw, raw)
    first, nodes = [], []  # before and after the person's nodes (a graph's nodes are in topological order)
    first.append(helper.make_node("Identity", ["z"], [renames.get(z_in.name, z_in.name)], name=prefix + "z"))
    new_inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", int(dims[1].dim_value)])]
    if label is not None:
        theirs = renames.get(label.name, label.name)
        new_inputs.append(helper.make_tensor_value_info("label", TensorProto.FLOAT, ["batch", classes]))
        if label.kind == "onehot":
            first.append(helper.make_node("Identity", ["label"], [theirs], name=prefix + "label"))
        else:  # the browser's one-hot as the index the person's graph takes
            first.append(
                helper.make_node(
                    "ArgMax",
                    ["label"],
                    [prefix + "index"],
                    axis=1,
                    keepdims=int(label.kind == "column"),
                    name=prefix + "argmax",
                )
            )
            to = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64, "int32": TensorProto.INT32}[label.dtype]
            first.append(helper.make_node("Cast", [prefix + "index"], [theirs], to=to, name=prefix + "cast"))
    k = (
        2 if observation.likelihood == "gaussian-learned" and len(graph.output) == 1 else 1
    )  # means and log-variances in one
    layout = (
        "nhwc" if read_json(path / IMPORT_FILE, dict).get("decoder_layout") == "nhwc" else "nchw"
    )  # as found on import
    grouped = [-1, k, h, w, c] if layout == "nhwc" else [-1, k, c, h, w]
    constants = [
        helper.make_tensor(prefix + "grouped", TensorProto.INT64, [5], grouped),
        helper.make_tensor(prefix + "start", TensorProto.INT64, [1], [0]),
        helper.make_tensor(prefix + "end", TensorProto.INT64, [1], [1]),
        helper.make_tensor(prefix + "axis", TensorProto.INT64, [1], [1]),
        helper.make_tensor(prefix + "shape", TensorProto.INT64, [4], [-1, *grouped[2:]]),
    ]
    nodes += [
        helper.make_node("Reshape", [raw, prefix + "grouped"], [prefix + "grouped_out"], name=prefix + "group"),
        helper.make_node(
            "Slice",
            [prefix + "grouped_out", prefix + "start", prefix + "end", prefix + "axis"],
            [prefix + "means"],
            name=prefix + "means",
        ),  # the mean, not a log-variance
        helper.make_node(
            "Reshape", [prefix + "means", prefix + "shape"], [prefix + "reshaped"], name=prefix + "reshape"
        ),
    ]
    value = prefix + "reshaped"
    if layout == "nhwc":
        nodes.append(
            helper.make_node("Transpose", [value], [prefix + "chw"], perm=[0, 3, 1, 2], name=prefix + "transpose")
        )
        value = prefix + "chw"
    if observation.likelihood == "bernoulli" and observation.output == "logits":
        nodes.append(helper.make_node("Sigmoid", [value], ["image"], name=prefix + "sigmoid"))
    else:
        if not observation.unit_range:  # the model's units back to [0, 1]: x = v * std + mean
            std = [observation.std[i % len(observation.std)] for i in range(c)]
            mean = [observation.mean[i % len(observation.mean)] for i in range(c)]
            constants += [
                helper.make_tensor(prefix + "std", TensorProto.FLOAT, [1, c, 1, 1], std),
                helper.make_tensor(prefix + "mean", TensorProto.FLOAT, [1, c, 1, 1], mean),
            ]
            nodes += [
                helper.make_node("Mul", [value, prefix + "std"], [prefix + "scaled"], name=prefix + "scale"),
                helper.make_node(
                    "Add", [prefix + "scaled", prefix + "mean"], [prefix + "shifted"], name=prefix + "shift"
                ),
            ]
            value = prefix + "shifted"
        constants += [
            helper.make_tensor(prefix + "low", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor(prefix + "high", TensorProto.FLOAT, [], [1.0]),
        ]
        nodes.append(
            helper.make_node("Clip", [value, prefix + "low", prefix + "high"], ["image"], name=prefix + "clip")
        )
    graph.initializer.extend(constants)
    kept = [_copy(i) for i in graph.input if i.name in initializers]
    del graph.input[:]
    graph.input.extend(new_inputs + kept)
    every = first + [_copy_node(n) for n in graph.node] + nodes
    del graph.node[:]
    graph.node.extend(every)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", c, h, w]))
    model.metadata_props.add(key="weights_sha1", value=weights)
    model.metadata_props.add(key="latent_dim", value=str(int(dims[1].dim_value)))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise VaeExplorerError(
            f"the decoder could not be prepared for the browser ({str(exc).splitlines()[0][:120]})"
        ) from None
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

"""A corpus of hostile inputs, made here by code (nothing of it is committed as a file): what a
student could upload to a server that serves the app to a class, or type into its forms.

Each maker returns bytes (or a dict of files); test_hostile.py sends each through the entry point
that takes it and checks it is refused in one sentence or harmless, and that nothing is left behind.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib

import numpy as np

LATENT, PIXELS = 3, 64  # the digits' 8x8 images


# --- ONNX graphs ------------------------------------------------------------------------------------


def _model(nodes, inputs, outputs, initializers=(), sparse=(), functions=(), opset=17):
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers), sparse_initializer=list(sparse))
    opsets = [helper.make_opsetid("", opset), *[helper.make_opsetid(f.domain, 1) for f in functions]]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8, functions=list(functions))


def _z_in(batch="batch"):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, LATENT])


def _logits_out(batch="batch"):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, PIXELS])


def _external(tensor, location: str):
    """Make `tensor` say its data lies in the file `location` (relative: resolved from the process's folder)."""
    from onnx import TensorProto

    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.ClearField("int64_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return tensor


def decoder(w: np.ndarray) -> bytes:
    """A well-behaved decoder: logits = z @ w, (batch, 64)."""
    from onnx import helper, numpy_helper

    return _model(
        [helper.make_node("MatMul", ["z", "W"], ["logits"])],
        [_z_in()],
        [_logits_out()],
        [numpy_helper.from_array(w.astype(np.float32), "W")],
    ).SerializeToString()


def encoder(w_mu: np.ndarray, w_logvar: np.ndarray) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Flatten", ["x"], ["h"], axis=1),
        helper.make_node("MatMul", ["h", "Wm"], ["mu"]),
        helper.make_node("MatMul", ["h", "Wv"], ["logvar"]),
    ]
    out = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", LATENT]) for name in ("mu", "logvar")]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        out,
        [
            numpy_helper.from_array(w_mu.astype(np.float32), "Wm"),
            numpy_helper.from_array(w_logvar.astype(np.float32), "Wv"),
        ],
    ).SerializeToString()


def _sparse_w(location: str | None = None):
    """W (3, 64) as a sparse tensor with one value, its data optionally 'external'."""
    from onnx import TensorProto, helper

    values = helper.make_tensor("W", TensorProto.FLOAT, [1], [1.0])
    indices = helper.make_tensor("W_indices", TensorProto.INT64, [1], [5])
    if location:
        _external(values, location)
    return helper.make_sparse_tensor(values, indices, [LATENT, PIXELS])


def decoder_reading_a_file_through_a_sparse_initializer(location: str) -> bytes:
    from onnx import helper

    return _model(
        [helper.make_node("MatMul", ["z", "W"], ["logits"])], [_z_in()], [_logits_out()], sparse=[_sparse_w(location)]
    ).SerializeToString()


def decoder_reading_a_file_through_a_constant(location: str, sparse: bool) -> bytes:
    """W comes from a Constant node whose value (or sparse_value) says its data is in `location`."""
    from onnx import TensorProto, helper

    if sparse:
        constant = helper.make_node("Constant", [], ["W"], sparse_value=_sparse_w(location))
    else:
        value = _external(
            helper.make_tensor("Wv", TensorProto.FLOAT, [LATENT, PIXELS], [0.0] * LATENT * PIXELS), location
        )
        constant = helper.make_node("Constant", [], ["W"], value=value)
    return _model(
        [constant, helper.make_node("MatMul", ["z", "W"], ["logits"])], [_z_in()], [_logits_out()]
    ).SerializeToString()


def decoder_reading_a_file_inside_a_function(location: str) -> bytes:
    """The external Constant hidden in a local function the graph calls."""
    from onnx import TensorProto, helper

    value = _external(helper.make_tensor("Wv", TensorProto.FLOAT, [LATENT, PIXELS], [0.0] * LATENT * PIXELS), location)
    body = [helper.make_node("Constant", [], ["W"], value=value), helper.make_node("MatMul", ["zin", "W"], ["out"])]
    function = helper.make_function("evil.fn", "Dec", ["zin"], ["out"], body, [helper.make_opsetid("", 17)])
    return _model(
        [helper.make_node("Dec", ["z"], ["logits"], domain="evil.fn")], [_z_in()], [_logits_out()], functions=[function]
    ).SerializeToString()


def decoder_with_an_endless_loop(iterations: int = 10**12) -> bytes:
    """A Loop of `iterations` steps whose body adds z to itself: runs for ever, in effect."""
    from onnx import TensorProto, helper, numpy_helper

    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "acc_in"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None),
        ],
    )
    nodes = [
        helper.make_node("MatMul", ["z", "W"], ["start"]),
        helper.make_node("Loop", ["trips", "keep_going", "start"], ["logits"], body=body),
    ]
    inits = [
        numpy_helper.from_array(np.zeros((LATENT, PIXELS), np.float32), "W"),
        numpy_helper.from_array(np.array(iterations, np.int64), "trips"),
        numpy_helper.from_array(np.array(True), "keep_going"),
    ]
    return _model(nodes, [_z_in()], [_logits_out()], inits).SerializeToString()


def decoder_that_allocates(gigabytes: float) -> bytes:
    """A decoder that fills a tensor of `gigabytes` at run time (ConstantOfShape of a size computed
    from z's batch), then sums it into the logits: a memory bomb in a few hundred bytes."""
    from onnx import helper, numpy_helper

    count = int(gigabytes * 2**30 / 4)
    nodes = [
        helper.make_node("Shape", ["z"], ["zshape"], end=1),  # (batch,)
        helper.make_node("Mul", ["zshape", "count"], ["size"]),
        helper.make_node("ConstantOfShape", ["size"], ["big"], value=numpy_helper.from_array(np.ones(1, np.float32))),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
        helper.make_node("MatMul", ["z", "W"], ["flat"]),
        helper.make_node("Add", ["flat", "total"], ["logits"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([count], np.int64), "count"),
        numpy_helper.from_array(np.zeros((LATENT, PIXELS), np.float32), "W"),
    ]
    return _model(nodes, [_z_in()], [_logits_out()], inits).SerializeToString()


def decoder_that_never_finishes(products: int = 5000, side: int = 1000) -> bytes:
    """No loop, no large tensor: a chain of `products` products of a side x side matrix that depends
    on z (so nothing is computed ahead): hours of work in a few kilobytes."""
    from onnx import helper, numpy_helper

    nodes = [
        helper.make_node("ReduceSum", ["z"], ["s"], keepdims=0),
        helper.make_node(
            "ConstantOfShape", ["square"], ["ones"], value=numpy_helper.from_array(np.ones(1, np.float32))
        ),
        helper.make_node("Mul", ["ones", "s"], ["m0"]),
    ]
    for i in range(products):
        nodes.append(helper.make_node("MatMul", [f"m{i}", f"m{i}"], [f"m{i + 1}"]))
    nodes += [
        helper.make_node("ReduceSum", [f"m{products}"], ["total"], keepdims=0),
        helper.make_node("MatMul", ["z", "W"], ["flat"]),
        helper.make_node("Add", ["flat", "total"], ["logits"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([side, side], np.int64), "square"),
        numpy_helper.from_array(np.zeros((LATENT, PIXELS), np.float32), "W"),
    ]
    return _model(nodes, [_z_in()], [_logits_out()], inits).SerializeToString()


def decoder_with_a_fixed_batch(batch: int) -> bytes:
    from onnx import helper, numpy_helper

    return _model(
        [helper.make_node("MatMul", ["z", "W"], ["logits"])],
        [_z_in(batch)],
        [_logits_out(batch)],
        [numpy_helper.from_array(np.zeros((LATENT, PIXELS), np.float32), "W")],
    ).SerializeToString()


def pair_zip(encoder_bytes: bytes, decoder_bytes: bytes, config: dict, output: str = "logits") -> bytes:
    """An imported pair's folder as `vae-explorer import-onnx` writes it, zipped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("onnx.json", json.dumps({"output": output}))
        archive.writestr("onnx_encoder.onnx", encoder_bytes)
        archive.writestr("onnx_decoder.onnx", decoder_bytes)
    return buffer.getvalue()


# --- checkpoint zips: a real checkpoint's files, one of them made hostile -------------------------


def checkpoint_zip(files: dict[str, bytes], encrypted: str | None = None, method: int | None = None) -> bytes:
    """`files` zipped; one member flagged encrypted, or all stored with another compression method."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    if encrypted is None and method is None:
        return data
    # patch the headers: the general-purpose flag's bit 0 (encrypted), or the compression method
    out = bytearray(data)
    for signature, flag_at, method_at, name_length_at, header in (
        (b"PK\x03\x04", 6, 8, 26, 30),
        (b"PK\x01\x02", 8, 10, 28, 46),
    ):
        start = 0
        while (start := out.find(signature, start)) != -1:
            length = int.from_bytes(out[start + name_length_at : start + name_length_at + 2], "little")
            name = bytes(out[start + header : start + header + length]).decode()
            if encrypted == name:
                out[start + flag_at] |= 0x1
            if method is not None:
                out[start + method_at : start + method_at + 2] = method.to_bytes(2, "little")
            start += 4
    return bytes(out)


def nested(depth: int, kind: str = "list") -> bytes:
    return (("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)).encode()


def with_config(files: dict[str, bytes], **model_changes) -> dict[str, bytes]:
    config = json.loads(files["config.json"])
    for key, value in model_changes.items():
        section, name = key.split("__")
        config[section][name] = value
    return {**files, "config.json": json.dumps(config).encode()}


MARKDOWN = (
    "**bold** [a link](http://attacker.invalid/) ![img](http://attacker.invalid/pixel.png) <img src=x onerror=alert(1)>"
)
MARKDOWN_NAME = "![i](http://attacker.invalid/p.png) **b** <img src=x>"  # within a class name's 100 characters


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a size, with almost no pixel data behind it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))  # noqa: E731
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")
    )

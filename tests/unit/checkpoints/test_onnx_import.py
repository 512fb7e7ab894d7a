"""Models trained elsewhere, imported as two ONNX graphs (`vae-explorer import-onnx`): a VAE trained
here in plain PyTorch, exported with the README's lines, gives the package's evaluation its own test
loss; the pages open on it; the browser's graph decodes as the server does; and every bad import
is one sentence that writes nothing. Hand-made graphs (onnx.helper) whose encode and decode are
matrix products give the numbers in closed form."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MODEL_PAGES, PATIENCE_S, REPO, fashion_available, require
from torch import nn

from vae_explorer import load_checkpoint
from vae_explorer.checkpoints import decoder_onnx, import_checkpoint_zip, weights_sha1
from vae_explorer.checkpoints.onnx_import import import_onnx
from vae_explorer.config import DataConfig
from vae_explorer.data import load_dataset
from vae_explorer.errors import CheckpointError
from vae_explorer.evaluation import evaluate


class TheirVAE(nn.Module):
    """Someone's MLP VAE on Fashion-MNIST, written without the package."""

    def __init__(self):
        super().__init__()
        self.fc1, self.mu, self.logvar = nn.Linear(784, 128), nn.Linear(128, 6), nn.Linear(128, 6)
        self.fc2, self.out = nn.Linear(6, 128), nn.Linear(128, 784)

    def encode(self, x):
        h = torch.relu(self.fc1(x.flatten(1)))
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        return self.out(torch.relu(self.fc2(z)))  # (B, 784) logits

    def neg_elbo(self, x, generator=None):
        """Their test loss: BCE-with-logits summed over pixels plus the closed-form KL, one z per image."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
        recon = nn.functional.binary_cross_entropy_with_logits(self.decode(z), x.flatten(1), reduction="none").sum(1)
        return recon - 0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


class Encoder(nn.Module):  # the README's export lines
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x):
        return self.vae.encode(x)


class Decoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.decode(z)


@pytest.fixture(scope="module")
def theirs(tmp_path_factory):
    """Their model trained one pass over 12,000 images, its own test loss, and its two exported graphs."""
    require(fashion_available(), "Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    data = load_dataset(DataConfig(dataset="fashion-mnist"))
    torch.manual_seed(0)
    model = TheirVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for batch in data.train_x[:12_000].split(100):
        optimizer.zero_grad()
        model.neg_elbo(batch).mean().backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        generator = torch.Generator().manual_seed(1)
        test_loss = torch.cat([model.neg_elbo(b, generator) for b in data.test_x.split(1000)]).mean().item()
    folder = tmp_path_factory.mktemp("theirs")
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        Encoder(model).eval(),
        (torch.rand(2, 1, 28, 28),),
        str(folder / "encoder.onnx"),
        input_names=["x"],
        output_names=["mu", "logvar"],
        dynamic_shapes=({0: batch},),
        external_data=False,
    )
    torch.onnx.export(
        Decoder(model).eval(),
        (torch.randn(2, 6),),
        str(folder / "decoder.onnx"),
        input_names=["z"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
        external_data=False,
    )
    return model, data, test_loss, folder


@pytest.fixture(scope="module")
def imported(theirs, tmp_path_factory):
    _, _, _, folder = theirs
    out, notes = import_onnx(
        folder / "encoder.onnx", folder / "decoder.onnx", tmp_path_factory.mktemp("runs") / "theirs", "fashion-mnist"
    )
    assert notes == []
    return out


def test_evaluate_gives_their_own_test_loss(theirs, imported):
    model, data, test_loss, _ = theirs
    checkpoint = load_checkpoint(imported)
    metrics = evaluate(checkpoint.model, data, k=4, seed=0)
    assert abs(metrics["neg_elbo"] - test_loss) < 1.5, (metrics["neg_elbo"], test_loss)
    x = data.test_x[:50]
    with torch.no_grad():
        mu, logvar = model.encode(x)
        q = checkpoint.model.encode(x)
        assert torch.allclose(q.mean, mu, atol=1e-4) and torch.allclose(q.logvar, logvar, atol=1e-4)
        expected = torch.sigmoid(model.decode(mu)).reshape(50, 1, 28, 28)
        assert torch.allclose(checkpoint.model.reconstruct(x), expected, atol=1e-5)
    assert checkpoint.config.model.class_names == data.class_names and checkpoint.config.model.latent_dim == 6
    assert checkpoint.model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_the_browser_graph_decodes_as_the_server(theirs, imported):
    import onnxruntime

    model, _, _, _ = theirs
    checkpoint = load_checkpoint(imported)
    path = decoder_onnx(checkpoint)
    assert path == imported / "decoder.onnx"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z"] and session.get_outputs()[0].name == "image"
    z = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32) * 2
    image = session.run(["image"], {"z": z})[0]
    with torch.no_grad():
        expected = torch.sigmoid(model.decode(torch.from_numpy(z))).reshape(5, 1, 28, 28).numpy()
    assert image.shape == (5, 1, 28, 28) and np.abs(image - expected).max() < 1e-5
    from vae_explorer.checkpoints.onnx_export import recorded_weights

    assert recorded_weights(path) == weights_sha1(imported)  # kept: not made again on the next visit


@pytest.mark.parametrize("page", MODEL_PAGES)
def test_every_page_opens_on_the_imported_model(page, imported, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from vae_explorer.app import catalog

    monkeypatch.setattr(catalog, "TRAINED_DIR", imported.parent)
    at = AppTest.from_file(str(REPO / page), default_timeout=PATIENCE_S)
    at.query_params["model"] = "theirs"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["model"] == "theirs" and at.title  # a page that fails to compile draws nothing
    if page == "Home.py":
        text = " ".join(m.value for m in at.markdown)
        assert "imported as ONNX graphs" in text and "latent dimension **6**" in text
        assert "theirs  (imported)" in at.sidebar.selectbox[0].options


def test_an_imported_folder_uploads_as_a_zip_and_its_graphs_are_checked(imported, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in (
            "config.json",
            "onnx.json",
            "onnx_encoder.onnx",
            "onnx_decoder.onnx",
            "history.json",
            "decoder.onnx",
        ):
            archive.write(imported / name, f"theirs/{name}")
    folder = import_checkpoint_zip(buffer.getvalue(), "theirs.zip", tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "history.json",
        "onnx.json",
        "onnx_decoder.onnx",
        "onnx_encoder.onnx",
    ]  # the browser graph is made here again
    assert load_checkpoint(folder).model.latent_dim == 6
    # a zip whose graph is not ONNX, or lacks a part: refused in one line naming the file, nothing left
    for members, expected in (
        (
            {"onnx_decoder.onnx": b"not a graph"},
            "theirs.zip: onnx_decoder.onnx: the decoder is not a complete ONNX model",
        ),
        ({"onnx_encoder.onnx": None}, "theirs.zip has no onnx_encoder.onnx"),
    ):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name in ("config.json", "onnx.json", "onnx_encoder.onnx", "onnx_decoder.onnx"):
                if name in members and members[name] is None:
                    continue
                archive.writestr(name, members.get(name) or (imported / name).read_bytes())
        with pytest.raises(CheckpointError) as error:
            import_checkpoint_zip(buffer.getvalue(), "theirs.zip", tmp_path / "other")
        assert str(error.value).startswith(expected), str(error.value)
        assert str(tmp_path) not in str(error.value) and "\n" not in str(error.value)
        assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())


# --- hand-made graphs: encode is a matrix product, decode another, so every number is known ----------


def _graph(nodes, inputs, outputs, initializers, domains=()):
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    opsets = [helper.make_opsetid("", 17), *[helper.make_opsetid(d, 1) for d in domains]]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString()


def encoder_bytes(w_mu, w_logvar, image=(1, 8, 8), flat=False, batch="batch"):
    """x -> (flat(x) @ w_mu, flat(x) @ w_logvar): a linear encoder."""
    from onnx import TensorProto, helper, numpy_helper

    pixels = int(np.prod(image))
    shape = [batch, pixels] if flat else [batch, *image]
    nodes = [
        helper.make_node("Flatten", ["x"], ["h"], axis=1),
        helper.make_node("MatMul", ["h", "Wm"], ["mu"]),
        helper.make_node("MatMul", ["h", "Wv"], ["logvar"]),
    ]
    latent = w_mu.shape[1]
    return _graph(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [
            helper.make_tensor_value_info("mu", TensorProto.FLOAT, [batch, latent]),
            helper.make_tensor_value_info("logvar", TensorProto.FLOAT, [batch, latent]),
        ],
        [
            numpy_helper.from_array(w_mu.astype(np.float32), "Wm"),
            numpy_helper.from_array(w_logvar.astype(np.float32), "Wv"),
        ],
    )


def decoder_bytes(w, image=None, batch="batch", sigmoid=False, domain="", output="logits"):
    """z -> z @ w (flat logits), optionally reshaped to `image`, through a sigmoid, or by a custom op."""
    from onnx import TensorProto, helper, numpy_helper

    latent, pixels = w.shape
    nodes = [
        helper.make_node("MatMul", ["z", "W"], ["flat"], domain=domain)
        if domain
        else helper.make_node("MatMul", ["z", "W"], ["flat"])
    ]
    inits = [numpy_helper.from_array(w.astype(np.float32), "W")]
    last = "flat"
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", [last], ["p"]))
        last = "p"
    out_shape = [batch, pixels]
    if image is not None:
        inits.append(numpy_helper.from_array(np.array([-1, *image], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", [last, "shape"], ["shaped"]))
        last, out_shape = "shaped", [batch, *image]
    nodes.append(helper.make_node("Identity", [last], [output]))
    return _graph(
        nodes,
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, latent])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)],
        inits,
        [domain] if domain else [],
    )


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 3)) * 0.1, rng.normal(size=(64, 3)) * 0.05, rng.normal(size=(3, 64))


def write(folder: Path, encoder: bytes, decoder: bytes) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "e.onnx").write_bytes(encoder)
    (folder / "d.onnx").write_bytes(decoder)
    return folder / "e.onnx", folder / "d.onnx"


@pytest.mark.parametrize(
    "variant", ["plain", "flat input, image output", "fixed batch of 4", "probabilities named image"]
)
def test_each_form_of_the_contract_encodes_and_decodes_as_its_matrices(variant, weights, tmp_path):
    w_mu, w_logvar, w = weights
    batch = 4 if variant == "fixed batch of 4" else "batch"
    probabilities = variant == "probabilities named image"
    encoder = encoder_bytes(w_mu, w_logvar, flat=variant == "flat input, image output", batch=batch)
    decoder = decoder_bytes(
        w,
        image=(1, 8, 8) if variant == "flat input, image output" else None,
        batch=batch,
        sigmoid=probabilities,
        output="image" if probabilities else "logits",
    )
    e, d = write(tmp_path, encoder, decoder)
    out, notes = import_onnx(e, d, tmp_path / "run", "digits", output="probabilities" if probabilities else "logits")
    assert notes == []
    model = load_checkpoint(out).model
    x = load_dataset(DataConfig(dataset="digits")).test_x[:7]  # 7: not a multiple of a fixed batch either
    flat = x.reshape(7, -1).double().numpy()
    q = model.encode(x)
    assert np.allclose(q.mean.numpy(), flat @ w_mu, atol=1e-5) and np.allclose(
        q.logvar.numpy(), flat @ w_logvar, atol=1e-5
    )
    expected = 1 / (1 + np.exp(-(flat @ w_mu @ w)))
    assert np.allclose(model.reconstruct(x).reshape(7, -1).numpy(), expected, atol=1e-5)
    # the likelihood: a Bernoulli of these probabilities, summed over the 64 pixels
    logits = torch.from_numpy(flat @ w_mu @ w).float().reshape(7, 1, 8, 8)
    expected_ll = (flat * np.log(expected) + (1 - flat) * np.log(1 - expected)).sum(1)
    assert np.allclose(
        model.log_likelihood(x, model.decode(torch.from_numpy(flat @ w_mu).float())).numpy(), expected_ll, atol=1e-3
    )
    assert logits.shape == (7, 1, 8, 8)
    if batch == 4:  # the browser decodes one z at a time: such a graph is decoded by the server, and the reason said
        with pytest.raises(
            CheckpointError, match="exported for batches of exactly 4; the browser decodes one z at a time"
        ):
            decoder_onnx(load_checkpoint(out))
        return
    import onnxruntime

    session = onnxruntime.InferenceSession(str(decoder_onnx(load_checkpoint(out))), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(1).normal(size=(2, 3)).astype(np.float32)
    assert np.allclose(session.run(["image"], {"z": z})[0].reshape(2, -1), 1 / (1 + np.exp(-(z @ w))), atol=1e-5)


def _custom_op_decoder(w):
    return decoder_bytes(w, domain="my.company.ops")


BAD = {
    "latent sizes differ": (
        lambda wm, wv, w: (encoder_bytes(wm, wv), decoder_bytes(np.zeros((5, 64)))),
        "logits",
        "e.onnx and d.onnx: the encoder gives 3 latent dimensions but the decoder takes 5; "
        "export an encoder and decoder of the same model.",
    ),
    "output is not an image": (
        lambda wm, wv, w: (encoder_bytes(wm, wv), decoder_bytes(w[:, :10])),
        "logits",
        "d.onnx: the decoder's output holds 10 numbers per image, not an image of the dataset's shape 1x8x8.",
    ),
    "truncated file": (
        lambda wm, wv, w: (encoder_bytes(wm, wv)[:300], decoder_bytes(w)),
        "logits",
        "e.onnx: the encoder is not a complete ONNX model (truncated, or another kind of file).",
    ),
    "not ONNX at all": (
        lambda wm, wv, w: (encoder_bytes(wm, wv), b"\x89PNG\r\n\x1a\n" + bytes(200)),
        "logits",
        "d.onnx: the decoder is not a complete ONNX model (truncated, or another kind of file).",
    ),
    "custom operator": (
        lambda wm, wv, w: (encoder_bytes(wm, wv), _custom_op_decoder(w)),
        "logits",
        "d.onnx: the decoder uses custom operators (my.company.ops::MatMul) that onnxruntime does not provide; "
        "export it with standard ONNX operators only.",
    ),
    "images of other channels": (
        lambda wm, wv, w: (
            encoder_bytes(np.zeros((128, 3)), np.zeros((128, 3)), image=(2, 8, 8)),
            decoder_bytes(np.zeros((3, 128))),
        ),
        "logits",
        "e.onnx: the encoder takes images of shape 2x8x8, but the dataset's are 1x8x8 (channels first; "
        "channels-last is found by itself); pass --image-size and --channels of the images it was "
        "trained on.",
    ),
    "logits called probabilities": (
        lambda wm, wv, w: (encoder_bytes(wm, wv), decoder_bytes(w * 10)),
        "probabilities",
        "d.onnx: the decoder's outputs run from",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_import_is_one_sentence_and_writes_nothing(case, weights, tmp_path):
    make, output, expected = BAD[case]
    e, d = write(tmp_path / "files", *make(*weights))
    with pytest.raises(CheckpointError) as error:
        import_onnx(e, d, tmp_path / "runs" / "new", "digits", output=output)
    message = str(error.value)
    assert message.startswith(expected), message
    assert "\n" not in message and str(tmp_path) not in message
    assert not (tmp_path / "runs").exists() or not any(
        (tmp_path / "runs").iterdir()
    )  # nothing, not even a staging folder


def test_outputs_that_look_like_probabilities_are_pointed_out(weights, tmp_path):
    w_mu, w_logvar, w = weights
    e, d = write(tmp_path, encoder_bytes(w_mu, w_logvar), decoder_bytes(w, sigmoid=True))
    _, notes = import_onnx(e, d, tmp_path / "run", "digits")
    assert notes == [
        "the decoder's outputs all lie in [0, 1]: if they are probabilities (a sigmoid at its end), import "
        "it again with --output probabilities, or its pictures and likelihoods will be wrong"
    ]


def test_the_cli_imports_and_refuses_in_one_line(weights, tmp_path, capsys):
    from vae_explorer.cli import main

    w_mu, w_logvar, w = weights
    e, d = write(tmp_path, encoder_bytes(w_mu, w_logvar), decoder_bytes(w))
    assert (
        main(
            [
                "import-onnx",
                "--encoder",
                str(e),
                "--decoder",
                str(d),
                "--dataset",
                "digits",
                "--name",
                "mine",
                "--runs-dir",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert (
        said.startswith(f"imported {tmp_path / 'runs' / 'mine'} in ")
        and "latent dimension 3, 1x8x8 images of digits" in said
    )
    assert (
        main(
            [
                "import-onnx",
                "--encoder",
                str(e),
                "--decoder",
                str(d),
                "--dataset",
                "digits",
                "--name",
                "mine",
                "--runs-dir",
                str(tmp_path / "runs"),
            ]
        )
        == 2
    )  # exists: nothing overwritten
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"error: {tmp_path / 'runs' / 'mine'} exists already; pass --out a new folder (nothing is overwritten)."
    )
    assert (
        main(
            [
                "import-onnx",
                "--encoder",
                str(tmp_path / "nope.onnx"),
                "--decoder",
                str(d),
                "--dataset",
                "digits",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert (
        capsys.readouterr().err.strip()
        == f"error: encoder file {tmp_path / 'nope.onnx'} not found; pass the .onnx file your export wrote."
    )
    assert not (tmp_path / "x").exists()


def test_a_graph_that_points_at_files_outside_is_refused_from_a_zip(weights, tmp_path):
    """External data could name any file on the server: an uploaded graph must hold its weights."""
    import onnx

    w_mu, w_logvar, w = weights
    e, d = write(tmp_path / "files", encoder_bytes(w_mu, w_logvar), decoder_bytes(w))
    out, _ = import_onnx(e, d, tmp_path / "run", "digits")
    graph = onnx.load(str(out / "onnx_decoder.onnx"))
    tensor = graph.graph.initializer[0]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    del tensor.external_data[:]
    tensor.external_data.add(key="location", value="../../../../etc/passwd")
    tensor.ClearField("raw_data")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("config.json", "onnx.json", "onnx_encoder.onnx"):
            archive.write(out / name, name)
        archive.writestr("onnx_decoder.onnx", graph.SerializeToString())
    with pytest.raises(CheckpointError) as error:
        import_checkpoint_zip(buffer.getvalue(), "sneaky.zip", tmp_path / "uploads")
    assert str(error.value).startswith(
        "sneaky.zip: onnx_decoder.onnx: the decoder keeps its weights in a separate file"
    ), str(error.value)


def test_a_zip_of_a_pair_that_does_not_fit_names_no_server_folder(weights, tmp_path):
    w_mu, w_logvar, w = weights
    e, d = write(tmp_path / "files", encoder_bytes(w_mu, w_logvar), decoder_bytes(w))
    out, _ = import_onnx(e, d, tmp_path / "run", "digits")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("config.json", "onnx.json", "onnx_encoder.onnx"):
            archive.write(out / name, name)
        archive.writestr("onnx_decoder.onnx", decoder_bytes(np.zeros((5, 64))))  # takes 5 latent dimensions, not 3
    with pytest.raises(CheckpointError) as error:
        import_checkpoint_zip(buffer.getvalue(), "mixed.zip", tmp_path / "uploads")
    assert str(error.value) == (
        "mixed.zip: onnx_encoder.onnx and onnx_decoder.onnx: the encoder gives 3 latent dimensions but "
        "the decoder takes 5; export an encoder and decoder of the same model; import the ONNX pair again."
    )

"""VAEs written in the styles of other code bases, each trained here with its own loop and scored by its
own loss, brought in through both doors (wrap_model and import-onnx): the package's neg-ELBO is their
own bound where the likelihoods agree, the pictures are their decoders', and a bad declaration is
one sentence.

The styles: PyTorch-VAE (64x64 RGB, Tanh, MSE in [-1, 1]), pythae (ModelOutput, sigmoid, MSE),
Keras / JAX (channels-last), a conditional pair (one-hot label in, class index out), a decoder with
a learned variance per pixel, and pytorch/examples (a flat MLP, exported with the lines of docs/bring-your-own-model.md)."""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MODEL_PAGES, PATIENCE_S, REPO
from torch import nn

from vae_explorer import load_checkpoint
from vae_explorer.checkpoints import decoder_onnx
from vae_explorer.checkpoints.onnx_import import import_onnx
from vae_explorer.config import DataConfig
from vae_explorer.data import load_dataset
from vae_explorer.errors import CheckpointError, ConfigError
from vae_explorer.evaluation import basic_metrics
from vae_explorer.latent import generate
from vae_explorer.models import wrap_model
from vae_explorer.models.observation import fit_sigma

LOG_2PI = math.log(2 * math.pi)
SEEDS = 3  # their loss and ours, each averaged over the same draws of z


def kl(mu, logvar):
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


def gaussian_nll(x, mean, logvar):
    return (0.5 * ((x - mean).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)).flatten(1).sum(1)


def train(model, x, steps, lr=3e-3, y=None):
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        index = torch.randint(0, len(x), (32,), generator=generator)
        loss = model.loss(x[index], generator, None if y is None else y[index]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def their_test_loss(model, x, y=None) -> float:
    """Their own loss on the test set with the evaluation's draws of z (one (N, D) draw from a CPU
    generator seeded 0, 1, ...: test sets here are under the evaluation's batch of 1,000), so what
    differs between the two numbers is how the likelihood is computed, not the noise."""
    with torch.no_grad():
        return float(
            torch.stack([model.loss(x, torch.Generator().manual_seed(s), y).mean() for s in range(SEEDS)]).mean()
        )


def our_neg_elbo(wrapped, data) -> float:
    return float(np.mean([basic_metrics(wrapped, data, seed=s)[0]["neg_elbo"] for s in range(SEEDS)]))


def export(module, args, path, input_names, output_names):
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        module.eval(),
        args,
        str(path),
        input_names=input_names,
        output_names=output_names,
        dynamic_shapes=tuple({0: batch} for _ in args),
        external_data=False,
    )
    return path


class Call(nn.Module):
    """One method of a model as a module's forward, for torch.onnx.export."""

    def __init__(self, model, method):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, x):
        return getattr(self.model, self.method)(x)


class CallWithLabel(Call):
    def forward(self, x, label):
        return getattr(self.model, self.method)(x, label)


def rgb_folder(root: Path, n: int = 150, size: int = 64) -> Path:
    """Two classes of RGB pictures: a coloured disc or a coloured square on a coloured ground."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] / size
    for i in range(n):
        kind = ("disc", "square")[i % 2]
        ground, colour = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.12, 0.25)
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r if kind == "disc" else (abs(xx - cx) < r) & (abs(yy - cy) < r)
        picture = np.where(inside[..., None], colour, ground)
        (root / kind).mkdir(parents=True, exist_ok=True)
        Image.fromarray((picture * 255).astype(np.uint8)).save(root / kind / f"{i:03d}.png")
    return root


# --- PyTorch-VAE: VanillaVAE-like, 64x64 RGB, Tanh output, Gaussian (MSE) on images in [-1, 1] ----------------


class VanillaVAE(nn.Module):
    SIGMA = 0.1  # their fixed sigma, in [-1, 1] units

    def __init__(self, latent=8):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 8, 4, 2, 1),
            nn.LeakyReLU(),
            nn.Conv2d(8, 16, 4, 2, 1),
            nn.LeakyReLU(),
            nn.Conv2d(16, 16, 4, 2, 1),
            nn.LeakyReLU(),
            nn.Flatten(),
        )
        self.fc_mu, self.fc_var = nn.Linear(1024, latent), nn.Linear(1024, latent)
        self.decoder_input = nn.Linear(latent, 1024)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(16, 16, 4, 2, 1),
            nn.LeakyReLU(),
            nn.ConvTranspose2d(16, 8, 4, 2, 1),
            nn.LeakyReLU(),
            nn.ConvTranspose2d(8, 3, 4, 2, 1),
            nn.Tanh(),
        )

    def encode(self, x):  # x in [-1, 1]: their transform is Normalize(0.5, 0.5)
        h = self.encoder(x)
        return [self.fc_mu(h), self.fc_var(h)]  # a list, as PyTorch-VAE returns

    def decode(self, z):
        return self.decoder(self.decoder_input(z).view(-1, 16, 8, 8))

    def loss(self, x01, generator, y=None):
        x = x01 * 2 - 1
        mu, logvar = self.encode(x)
        z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
        log_var = torch.full_like(x, 2 * math.log(self.SIGMA))
        return gaussian_nll(x, self.decode(z), log_var) + kl(mu, logvar)


@pytest.fixture(scope="module")
def vanilla(tmp_path_factory):
    folder = rgb_folder(tmp_path_factory.mktemp("pictures"))
    data = load_dataset(DataConfig(dataset=f"folder:{folder}", image_size=64, channels=3))
    model = train(VanillaVAE(), data.train_x, steps=120)
    graphs = tmp_path_factory.mktemp("vanilla")
    export(Call(model, "encode"), (torch.rand(2, 3, 64, 64),), graphs / "encoder.onnx", ["x"], ["mu", "logvar"])
    export(Call(model, "decode"), (torch.randn(2, 8),), graphs / "decoder.onnx", ["z"], ["image"])
    return model, data, folder, graphs


def test_a_tanh_mse_model_on_rgb_is_scored_by_its_own_gaussian_through_either_door(vanilla, tmp_path):
    model, data, folder, graphs = vanilla
    own = their_test_loss(model, data.test_x)
    wrapped = wrap_model(
        model.encode, model.decode, (3, 64, 64), module=model, likelihood="gaussian", sigma=0.1, value_range="-1,1"
    )
    assert our_neg_elbo(wrapped, data) == pytest.approx(own, abs=1.5)
    assert wrapped.describe_likelihood() == "scored as a Gaussian, sigma 0.1 per pixel, inputs in [-1, 1]"
    # import-onnx: the image size and channels come from the encoder's input, not from flags
    out, notes = import_onnx(
        graphs / "encoder.onnx",
        graphs / "decoder.onnx",
        tmp_path / "vanilla",
        f"folder:{folder}",
        likelihood="gaussian",
        sigma=0.1,
        value_range="-1,1",
    )
    checkpoint = load_checkpoint(out)
    assert notes == [] and checkpoint.config.model.image_shape == [3, 64, 64] and checkpoint.config.data.channels == 3
    assert our_neg_elbo(checkpoint.model, data) == pytest.approx(own, abs=1.5)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        theirs = (model.decode(z) + 1) / 2  # their picture in [0, 1]
    assert torch.allclose(generate(checkpoint.model, z), theirs.clamp(0, 1), atol=1e-5)
    _check_browser_graph(checkpoint, z, theirs.clamp(0, 1))  # the range mapped back in the browser's graph too


def test_the_cli_takes_the_declaration_and_says_it(vanilla, tmp_path, capsys):
    from vae_explorer.cli import main

    _, _, folder, graphs = vanilla
    argv = [
        "import-onnx",
        "--encoder",
        str(graphs / "encoder.onnx"),
        "--decoder",
        str(graphs / "decoder.onnx"),
        "--dataset",
        f"folder:{folder}",
        "--likelihood",
        "gaussian",
        "--sigma",
        "0.1",
        "--range",
        "-1,1",
        "--out",
        str(tmp_path / "cli"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "3x64x64 images" in out and "scored as a Gaussian, sigma 0.1 per pixel, inputs in [-1, 1]" in out
    assert main(["evaluate", "--model-path", str(tmp_path / "cli"), "--k", "2"]) == 0
    assert "scored as a Gaussian, sigma 0.1 per pixel, inputs in [-1, 1]; nats per image:" in capsys.readouterr().out
    assert main([*argv[:-1], str(tmp_path / "bad"), "--sigma", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: sigma 0 is not a pixel noise a model can have") and "\n" not in err


def test_a_fitted_sigma_is_the_maximum_likelihood_one(vanilla):
    model, data, _, _ = vanilla
    wrapped = wrap_model(
        model.encode,
        model.decode,
        (3, 64, 64),
        module=model,
        likelihood="gaussian",
        value_range="-1,1",
        fit_images=data.test_x,
    )
    # independently: one z per image from the same seeded draws, sigma^2 = mean squared error in [-1, 1] units
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        x = data.test_x * 2 - 1
        mu, logvar = model.encode(x)
        z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
        expected = float((x - model.decode(z)).pow(2).mean().sqrt())
    assert wrapped.observation.sigma == pytest.approx(expected, rel=1e-5) and wrapped.observation.sigma_fitted
    assert "fitted on the test images" in wrapped.describe_likelihood()
    # the fitted sigma is where the one-sample reconstruction term is smallest
    recon = [
        basic_metrics(
            wrap_model(
                model.encode,
                model.decode,
                (3, 64, 64),
                module=model,
                likelihood="gaussian",
                sigma=s,
                value_range="-1,1",
            ),
            data,
        )[0]["recon"]
        for s in (expected * 0.9, expected, expected * 1.1)
    ]
    assert recon[1] < recon[0] and recon[1] < recon[2]
    assert fit_sigma(wrapped, data.test_x) == pytest.approx(expected, rel=1e-5)


def test_wrong_declarations_are_one_sentence(vanilla, tmp_path):
    model, data, folder, graphs = vanilla
    with pytest.raises(
        CheckpointError,
        match=r"^decoder.onnx: the decoder's means run from -[0-9.]+ to [0-9.]+, outside the "
        r"declared range \[0, 1\]; import it with --range -1,1\.$",
    ):
        import_onnx(
            graphs / "encoder.onnx", graphs / "decoder.onnx", tmp_path / "a", f"folder:{folder}", likelihood="gaussian"
        )
    with pytest.raises(CheckpointError, match=r"^sigma 0 is not a pixel noise a model can have; give a sigma between"):
        import_onnx(
            graphs / "encoder.onnx",
            graphs / "decoder.onnx",
            tmp_path / "b",
            f"folder:{folder}",
            likelihood="gaussian",
            sigma=0.0,
            value_range="-1,1",
        )
    with pytest.raises(
        CheckpointError, match=r"^decoder.onnx: the decoder gives one value per pixel and no log-variance output"
    ):
        import_onnx(
            graphs / "encoder.onnx",
            graphs / "decoder.onnx",
            tmp_path / "c",
            f"folder:{folder}",
            likelihood="gaussian-learned",
            value_range="-1,1",
        )
    with pytest.raises(CheckpointError, match=r"^a Bernoulli likelihood needs images in \[0, 1\]"):
        import_onnx(
            graphs / "encoder.onnx", graphs / "decoder.onnx", tmp_path / "d", f"folder:{folder}", value_range="-1,1"
        )
    with pytest.raises(ConfigError, match=r"^the normalisation's std must be positive"):
        wrap_model(
            model.encode, model.decode, (3, 64, 64), likelihood="gaussian", sigma=0.1, mean=[0.5] * 3, std=[0.5, 0, 0.5]
        )
    assert not any(tmp_path.iterdir())  # nothing written by a refusal
    # undeclared, the Tanh outputs are pointed out, and the assumed likelihood is said
    out, notes = import_onnx(graphs / "encoder.onnx", graphs / "decoder.onnx", tmp_path / "e", f"folder:{folder}")
    assert any("--likelihood gaussian --range -1,1" in note for note in notes), notes
    assert load_checkpoint(out).model.describe_likelihood().endswith("(assumed: no likelihood was declared)")


# --- pythae: encoder and decoder return ModelOutput; sigmoid output; MSE (a Gaussian with sigma 1) --------------


class ModelOutput(OrderedDict):
    """pythae's: a dict whose fields are also attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class PythaeVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder_net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
        self.decoder_net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.Sigmoid())

    def encoder(self, x):
        h = self.encoder_net(x)
        return ModelOutput(embedding=h[:, :4], log_covariance=h[:, 4:])

    def decoder(self, z):
        return ModelOutput(reconstruction=self.decoder_net(z).view(-1, 1, 8, 8))

    def loss(self, x, generator, y=None):
        """pythae's VAE loss, 0.5 * summed squared error + KL, with the Gaussian's constant: its own bound in nats."""
        out = self.encoder(x)
        mu, logvar = out.embedding, out.log_covariance
        z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
        recon = 0.5 * (self.decoder(z).reconstruction - x).pow(2).flatten(1).sum(1) + 0.5 * 64 * LOG_2PI
        return recon + kl(mu, logvar)


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(dataset="digits"))


def test_pythae_model_outputs_come_in_with_their_named_fields(digits):
    model = train(PythaeVAE(), digits.train_x, steps=200)
    wrapped = wrap_model(model.encoder, model.decoder, (1, 8, 8), module=model, likelihood="gaussian", sigma=1.0)
    assert our_neg_elbo(wrapped, digits) == pytest.approx(their_test_loss(model, digits.test_x), abs=1.5)
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(generate(wrapped, z), model.decoder(z).reconstruction, atol=1e-6)


# --- Keras / JAX: channels-last images in and out ---------------------------------------------------------------


class ChannelsLastVAE(nn.Module):
    """Images (B, H, W, C) in, logits (B, H, W, C) out, Bernoulli."""

    def __init__(self, side=16):
        super().__init__()
        self.side = side
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(side * side * 3, 64), nn.Tanh(), nn.Linear(64, 8))
        self.dec = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, side * side * 3))

    def encode(self, x):
        return tuple(self.enc(x).chunk(2, 1))

    def decode(self, z):
        return self.dec(z).view(-1, self.side, self.side, 3)

    def loss(self, x_nchw, generator, y=None):
        x = x_nchw.permute(0, 2, 3, 1)
        mu, logvar = self.encode(x)
        z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
        recon = nn.functional.binary_cross_entropy_with_logits(self.decode(z), x, reduction="none").flatten(1).sum(1)
        return recon + kl(mu, logvar)


@pytest.fixture(scope="module")
def channels_last(vanilla, tmp_path_factory):
    _, _, folder, _ = vanilla
    data = load_dataset(DataConfig(dataset=f"folder:{folder}", image_size=16, channels=3))
    model = train(ChannelsLastVAE(), data.train_x, steps=200)
    graphs = tmp_path_factory.mktemp("channels-last")
    export(Call(model, "encode"), (torch.rand(2, 16, 16, 3),), graphs / "encoder.onnx", ["x"], ["z_mean", "z_log_var"])
    export(Call(model, "decode"), (torch.randn(2, 4),), graphs / "decoder.onnx", ["z"], ["logits"])
    out, notes = import_onnx(
        graphs / "encoder.onnx",
        graphs / "decoder.onnx",
        tmp_path_factory.mktemp("runs") / "keras",
        f"folder:{folder}",
        likelihood="bernoulli",
    )
    return model, data, out, notes


def test_channels_last_models_are_found_and_transposed(channels_last):
    model, data, out, notes = channels_last
    assert notes == ["the encoder takes channels-last images (batch, H, W, C): the images are transposed for it"]
    checkpoint = load_checkpoint(out)
    assert checkpoint.config.model.image_shape == [3, 16, 16]  # read from the graph: the folder at 16 px, RGB
    own = their_test_loss(model, data.test_x)
    assert our_neg_elbo(checkpoint.model, data) == pytest.approx(own, abs=1.5)
    # a Python encoder that flattens takes any layout of the same size: channels-last is said, not found
    wrapped = wrap_model(model.encode, model.decode, (3, 16, 16), module=model, likelihood="bernoulli", layout="nhwc")
    assert wrapped.decoder_layout == "nhwc" and our_neg_elbo(wrapped, data) == pytest.approx(own, abs=1.5)
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = torch.sigmoid(model.decode(z)).permute(0, 3, 1, 2)  # channels-first for the check
    assert torch.allclose(generate(checkpoint.model, z), theirs, atol=1e-5)
    assert torch.allclose(generate(wrapped, z), theirs, atol=1e-6)
    _check_browser_graph(checkpoint, z, theirs)


def _check_browser_graph(checkpoint, z, expected, label=None):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(decoder_onnx(checkpoint)), providers=["CPUExecutionProvider"])
    feeds = {"z": z.numpy().astype(np.float32)}
    if label is not None:
        feeds["label"] = np.eye(checkpoint.model.cond_dim, dtype=np.float32)[label.numpy()]
    image = session.run(["image"], feeds)[0]
    assert image.shape == tuple(expected.shape) and np.allclose(image, expected.numpy(), atol=1e-5)


# --- a conditional pair: the encoder takes a one-hot label, the decoder a class index ---------------------------


class ConditionalVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(64 + 10, 64), nn.ReLU(), nn.Linear(64, 6))
        self.dec = nn.Sequential(nn.Linear(3 + 10, 64), nn.ReLU(), nn.Linear(64, 64))

    def encode(self, x, onehot):
        return tuple(self.enc(torch.cat([x.flatten(1), onehot], 1)).chunk(2, 1))

    def decode(self, z, label):
        return self.dec(torch.cat([z, nn.functional.one_hot(label, 10).float()], 1))

    def loss(self, x, generator, y):
        mu, logvar = self.encode(x, nn.functional.one_hot(y, 10).float())
        z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
        recon = nn.functional.binary_cross_entropy_with_logits(self.decode(z, y), x.flatten(1), reduction="none").sum(1)
        return recon + kl(mu, logvar)


@pytest.fixture(scope="module")
def conditional(digits, tmp_path_factory):
    model = train(ConditionalVAE(), digits.train_x, steps=300, y=digits.train_y)
    graphs = tmp_path_factory.mktemp("conditional")
    export(
        CallWithLabel(model, "encode"),
        (torch.rand(2, 1, 8, 8), torch.eye(10)[:2]),
        graphs / "encoder.onnx",
        ["x", "label"],
        ["mu", "logvar"],
    )
    export(
        CallWithLabel(model, "decode"),
        (torch.randn(2, 3), torch.tensor([1, 2])),
        graphs / "decoder.onnx",
        ["z", "y"],
        ["logits"],
    )
    out, notes = import_onnx(
        graphs / "encoder.onnx",
        graphs / "decoder.onnx",
        tmp_path_factory.mktemp("runs") / "cvae",
        "digits",
        likelihood="bernoulli",
    )
    return model, out, notes


def test_a_conditional_pair_comes_in_like_the_tool_s_own(conditional, digits):
    model, out, notes = conditional
    checkpoint = load_checkpoint(out)
    assert notes == [] and checkpoint.model.cond_dim == 10 and checkpoint.config.model.conditional
    own = their_test_loss(model, digits.test_x, digits.test_y)
    assert our_neg_elbo(checkpoint.model, digits) == pytest.approx(own, abs=1.5)
    z, y = torch.randn(5, 3, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 3, 3, 7, 9])
    with torch.no_grad():
        theirs = torch.sigmoid(model.decode(z, y)).view(5, 1, 8, 8)
    assert torch.allclose(checkpoint.model.generate(z, y), theirs, atol=1e-5)
    _check_browser_graph(checkpoint, z, theirs, label=y)
    wrapped = wrap_model(
        lambda x, y: model.encode(x, nn.functional.one_hot(y, 10).float()),
        model.decode,
        (1, 8, 8),
        module=model,
        likelihood="bernoulli",
        conditional=True,
        class_names=digits.class_names,
    )
    assert our_neg_elbo(wrapped, digits) == pytest.approx(own, abs=1.5)


# --- a decoder with a learned variance per pixel ----------------------------------------------------------------


class LearnedVarianceVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
        self.dec = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 128))

    def encode(self, x):
        return tuple(self.enc(x).chunk(2, 1))

    def decode(self, z):
        mean, logvar = self.dec(z).chunk(2, 1)
        return torch.sigmoid(mean), logvar.clamp(-8, 4)

    def loss(self, x, generator, y=None):
        mu, logvar = self.encode(x)
        z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
        mean, log_var = self.decode(z)
        return gaussian_nll(x.flatten(1), mean, log_var) + kl(mu, logvar)


@pytest.fixture(scope="module")
def learned(digits):
    return train(LearnedVarianceVAE(), digits.train_x, steps=300)


@pytest.fixture(scope="module")
def learned_import(learned, tmp_path_factory):
    graphs = tmp_path_factory.mktemp("learned")
    export(Call(learned, "encode"), (torch.rand(2, 1, 8, 8),), graphs / "e.onnx", ["x"], ["mu", "logvar"])
    export(Call(learned, "decode"), (torch.randn(2, 4),), graphs / "d.onnx", ["z"], ["mean", "log_var"])
    out, _ = import_onnx(
        graphs / "e.onnx",
        graphs / "d.onnx",
        tmp_path_factory.mktemp("runs") / "learned",
        "digits",
        likelihood="gaussian-learned",
    )
    return out


def test_a_learned_variance_is_read_from_the_decoder_s_second_output(learned, learned_import, digits):
    model = learned
    own = their_test_loss(model, digits.test_x)
    wrapped = wrap_model(model.encode, model.decode, (1, 8, 8), module=model, likelihood="gaussian-learned")
    assert our_neg_elbo(wrapped, digits) == pytest.approx(own, abs=1.5)
    checkpoint = load_checkpoint(learned_import)
    assert our_neg_elbo(checkpoint.model, digits) == pytest.approx(own, abs=1.5)
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs = model.decode(z)[0].view(3, 1, 8, 8)
    assert torch.allclose(generate(checkpoint.model, z), theirs, atol=1e-5)
    _check_browser_graph(checkpoint, z, theirs)
    assert checkpoint.model.describe_likelihood() == (
        "scored as a Gaussian with the decoder's own variance per pixel, inputs in [0, 1]"
    )
    with pytest.raises(
        ConfigError, match=r"decode\(z\) gives no variance, so the gaussian-learned likelihood cannot be computed"
    ):
        wrap_model(model.encode, lambda z: model.decode(z)[0], (1, 8, 8), likelihood="gaussian-learned")


# --- what encoders return in real code, and errors inside the person's functions --------------------------------


class TinyMLP(nn.Module):
    """pytorch/examples' VAE in small: encode takes flat (B, 64) images."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc21, self.fc22 = nn.Linear(64, 32), nn.Linear(32, 3), nn.Linear(32, 3)
        self.fc3, self.fc4 = nn.Linear(3, 32), nn.Linear(32, 64)

    def encode(self, x):
        h = torch.relu(self.fc1(x))  # no view: the caller flattens, as pytorch/examples' forward does
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return torch.sigmoid(self.fc4(torch.relu(self.fc3(z))))


RETURNS = {
    "a tuple": lambda mu, logvar: (mu, logvar),
    "(mu, logvar, z)": lambda mu, logvar: (mu, logvar, mu),
    "a list": lambda mu, logvar: [mu, logvar],
    "a dict": lambda mu, logvar: {"mean": mu, "log_var": logvar},
    "one tensor of both": lambda mu, logvar: torch.cat([mu, logvar], 1),
    "a Normal": lambda mu, logvar: torch.distributions.Normal(mu, torch.exp(0.5 * logvar)),
    "an Independent Normal": lambda mu, logvar: torch.distributions.Independent(
        torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), 1
    ),
}


@pytest.mark.parametrize("kind", RETURNS)
def test_every_form_an_encoder_returns_gives_the_same_posterior(kind, digits):
    model = TinyMLP().eval()
    wrapped = wrap_model(
        lambda x: RETURNS[kind](*model.encode(x)), model.decode, (1, 8, 8), "probabilities", module=model
    )
    assert wrapped.layout == "flat"  # (1, 1, 8, 8) failed in their Linear; the flat image worked
    q = wrapped.encode(digits.test_x[:10])
    with torch.no_grad():
        mu, logvar = model.encode(digits.test_x[:10].flatten(1))
    assert torch.allclose(q.mean, mu, atol=1e-6) and torch.allclose(q.logvar, logvar, atol=1e-5)


def test_an_error_inside_their_function_is_shown_in_its_own_words():
    model = TinyMLP()

    def broken(z):
        raise ValueError("the decoder expects a batch of 128")

    with pytest.raises(
        ConfigError,
        match=r"^decode\(z\) raised on z of shape \(1, 3\), the size encode gives: the decoder "
        r"expects a batch of 128;",
    ):
        wrap_model(model.encode, broken, (1, 8, 8), "probabilities")
    with pytest.raises(ConfigError, match=r"encode\(x\) returned fields code, spread; name the mean mu"):
        wrap_model(lambda x: {"code": x, "spread": x}, model.decode, (1, 8, 8))
    with pytest.raises(
        ConfigError, match="the latent size is 600; vae-explorer explores codes of up to 512 dimensions"
    ):
        wrap_model(lambda x: (torch.zeros(len(x), 600), torch.zeros(len(x), 600)), model.decode, (1, 8, 8))


def _readme_export_lines() -> str:
    text = (REPO / "docs" / "bring-your-own-model.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


@pytest.mark.parametrize("flat", [True, False])
def test_the_readme_s_export_lines_work_for_flat_mlps_and_list_returning_encoders(flat, digits, tmp_path, monkeypatch):
    """pytorch/examples' MLP (flat input, probabilities out) and PyTorch-VAE's list-returning encoder."""
    if flat:
        vae = TinyMLP().eval()
    else:
        vae = VanillaVAE().eval()
    lines = _readme_export_lines()
    settings = {"IMAGE": "(1, 8, 8)" if flat else "(3, 64, 64)", "LATENT": "3" if flat else "8", "FLAT": str(flat)}
    for name, value in settings.items():
        lines, count = re.subn(rf"^{name} = .*$", f"{name} = {value}", lines, flags=re.M)
        assert count == 1, f"the documented export lines set {name} once"
    monkeypatch.chdir(tmp_path)
    exec(compile(lines, "README", "exec"), {"vae": vae})
    from vae_explorer.models.onnx_pair import OnnxPair

    pair = OnnxPair.from_bytes((tmp_path / "encoder.onnx").read_bytes(), (tmp_path / "decoder.onnx").read_bytes())
    try:
        shape = (1, 8, 8) if flat else (3, 64, 64)
        x = torch.rand(4, *shape)
        mu, logvar = pair.encode(x.flatten(1) if pair.layout(shape) == "flat" else x)
        with torch.no_grad():
            expected = vae.encode(x.flatten(1) if flat else x)
        assert torch.allclose(mu, expected[0], atol=1e-4) and torch.allclose(logvar, expected[1], atol=1e-4)
    finally:
        pair.close()


# --- every page on each imported style --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imported_styles(vanilla, channels_last, conditional, learned_import, tmp_path_factory):
    _, _, folder, graphs = vanilla
    runs = tmp_path_factory.mktemp("styles")
    import_onnx(
        graphs / "encoder.onnx",
        graphs / "decoder.onnx",
        runs / "vanilla",
        f"folder:{folder}",
        likelihood="gaussian",
        value_range="-1,1",
    )
    import_onnx(graphs / "encoder.onnx", graphs / "decoder.onnx", runs / "vanilla-undeclared", f"folder:{folder}")
    for name, out in (("keras", channels_last[2]), ("cvae", conditional[1]), ("learned", learned_import)):
        import shutil

        shutil.copytree(out, runs / name)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("style", ["vanilla", "keras", "cvae", "learned"])
@pytest.mark.parametrize("page", MODEL_PAGES)
def test_every_page_opens_on_each_style(page, style, imported_styles, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from vae_explorer.app import catalog, safety

    monkeypatch.setattr(catalog, "TRAINED_DIR", imported_styles)
    at = AppTest.from_file(str(REPO / page), default_timeout=PATIENCE_S)
    at.query_params["model"] = style
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["model"] == style and at.title
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    if page in ("Home.py", "pages/8_Evaluate.py") or (page == "pages/9_Compare.py" and style == "vanilla"):
        said = safety.plain(load_checkpoint(imported_styles / style).model.describe_likelihood())
        assert said in text, said
    if page == "pages/9_Compare.py" and style == "vanilla":  # beside the same graphs scored as an assumed Bernoulli
        assert (
            safety.plain("(assumed: no likelihood was declared)") in text
            and "scored with different likelihoods" in text
        )


class WideVAE(nn.Module):
    """A 300-dimensional latent of which ten dimensions read the image; the rest stay at the prior."""

    def __init__(self, latent=300):
        super().__init__()
        torch.manual_seed(0)
        self.mu, self.logvar, self.dec = nn.Linear(64, latent), nn.Linear(64, latent), nn.Linear(latent, 64)
        with torch.no_grad():
            self.mu.weight[10:] = 0
            self.mu.bias.zero_()
            self.logvar.weight.zero_()
            self.logvar.bias.zero_()

    def encode(self, x):
        return self.mu(x.flatten(1)), self.logvar(x.flatten(1))

    def decode(self, z):
        return self.dec(z)


def test_a_latent_of_300_dimensions_gets_sliders_for_the_most_informative(tmp_path, monkeypatch):
    """Latents up to 512 come in; Generate shows sliders for the 64 dimensions that carry the most KL."""
    from streamlit.testing.v1 import AppTest

    from vae_explorer.app import cached, catalog

    model = WideVAE().eval()
    export(Call(model, "encode"), (torch.rand(2, 1, 8, 8),), tmp_path / "e.onnx", ["x"], ["mu", "logvar"])
    export(Call(model, "decode"), (torch.randn(2, 300),), tmp_path / "d.onnx", ["z"], ["logits"])
    import_onnx(tmp_path / "e.onnx", tmp_path / "d.onnx", tmp_path / "runs" / "wide", "digits", likelihood="bernoulli")
    monkeypatch.setattr(catalog, "TRAINED_DIR", tmp_path / "runs")
    at = AppTest.from_file(str(REPO / "pages/2_Generate.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = "wide"
    at.run()
    assert not at.exception and not at.error, [e.message for e in at.exception]
    assert any("Sliders for the 64 of 300 dimensions that carry the most KL" in c.value for c in at.caption)
    kl, _ = cached.latent_stats(catalog.load(tmp_path / "runs" / "wide"))
    assert set(np.argsort(-kl)[:10]) == set(range(10))  # the ten that read the image come first


ODD_RECORDS = {
    "sigma as text": ({"likelihood": "gaussian", "sigma": "wide"}, "sigma must be a number"),
    "sigma as a list": ({"likelihood": "gaussian", "sigma": [1, 2]}, "sigma must be a number"),
    "no sigma": ({"likelihood": "gaussian"}, "the Gaussian likelihood's sigma is missing"),
    "unknown likelihood": ({"likelihood": ["bernoulli"]}, "likelihood must be one of"),
    "std of zero": ({"likelihood": "gaussian", "sigma": 0.1, "mean": [0.5], "std": [0]}, "std must be positive"),
    "too many means": ({"likelihood": "gaussian", "sigma": 0.1, "mean": [0.1] * 5, "std": [1]}, "mean has 5 values"),
    "declared as text": ({"likelihood": "bernoulli", "declared": "yes"}, "must be true or false"),
}


@pytest.mark.parametrize("case", ODD_RECORDS)
def test_an_odd_likelihood_record_in_an_imported_folder_is_one_sentence(case, tmp_path):
    """onnx.json comes in zips from anyone: each odd value is refused naming the file, not raised as a Python error."""
    import json

    from vae_explorer.checkpoints.onnx_import import read_observation

    record, words = ODD_RECORDS[case]
    (tmp_path / "onnx.json").write_text(json.dumps({"output": "logits", **record}))
    with pytest.raises(CheckpointError) as error:
        read_observation(tmp_path, 3)
    assert words in str(error.value) and str(error.value).endswith("import the ONNX pair again.")
    assert (tmp_path / "onnx.json").name in str(error.value)


def test_an_image_size_out_of_bounds_is_refused_before_anything_is_read(vanilla, tmp_path):
    _, _, folder, graphs = vanilla
    with pytest.raises(ConfigError, match=r"import-onnx: data.image_size must be from 4 to 256, got 10000"):
        import_onnx(
            graphs / "encoder.onnx", graphs / "decoder.onnx", tmp_path / "a", f"folder:{folder}", image_size=10_000
        )


@pytest.mark.slow
def test_evaluate_trains_a_missing_classifier_once_and_a_second_session_reads_it(vanilla, tmp_path, monkeypatch):
    """The first Evaluate on a dataset without a feature classifier trains one under a progress bar; a second
    session then gets it from the shared cache (that replayed the first session's bar into a page that had none)."""
    from streamlit.testing.v1 import AppTest

    from vae_explorer.app import catalog

    _, _, _, graphs = vanilla
    folder = rgb_folder(tmp_path / "new-pictures", n=60)
    import_onnx(
        graphs / "encoder.onnx",
        graphs / "decoder.onnx",
        tmp_path / "runs" / "fresh",
        f"folder:{folder}",
        likelihood="gaussian",
        value_range="-1,1",
    )
    monkeypatch.setattr(catalog, "TRAINED_DIR", tmp_path / "runs")
    for _ in range(2):
        at = AppTest.from_file(str(REPO / "pages/8_Evaluate.py"), default_timeout=PATIENCE_S)
        at.query_params["model"] = "fresh"
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert any("FID" in str(row) for row in at.table[0].value["metric"])


def test_a_mean_and_std_normalisation_maps_as_torchvision_s_normalize_does():
    """(x - mean) / std per channel, as torchvision.transforms.Normalize computes it, and back for pictures."""
    from torchvision.transforms import Normalize

    from vae_explorer.models.observation import Observation

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    observation = Observation.declare("gaussian", sigma=0.5, mean=mean, std=std, channels=3)
    x = torch.rand(4, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(observation.to_model(x), Normalize(mean, std)(x), atol=1e-6)
    assert torch.allclose(observation.to_image(observation.to_model(x)), x, atol=1e-6)
    assert observation.describe() == (
        "scored as a Gaussian, sigma 0.5 per pixel, inputs normalised by mean (0.485, 0.456, "
        "0.406) and std (0.229, 0.224, 0.225)"
    )
    with pytest.raises(ConfigError, match=r"the normalisation's mean has 2 values; give one, or one per channel \(3\)"):
        Observation.declare("gaussian", sigma=0.5, mean=[0.5, 0.5], std=[0.5], channels=3)

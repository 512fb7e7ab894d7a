"""Write notebooks/vae_tutorial.ipynb from the cells below and execute it (outputs included).

Usage: python scripts/make_notebook.py   (about a minute on a 2-core CPU)
"""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "notebooks" / "vae_tutorial.ipynb"

CELLS = [
    (
        "md",
        """# A Variational Autoencoder, step by step

This notebook tells the story of the vae-explorer app in code, on scikit-learn's 8x8 handwritten
digits (bundled, nothing to download). It runs top to bottom on a CPU in about a minute.

A VAE (Kingma & Welling, *Auto-Encoding Variational Bayes*, [arXiv:1312.6114](https://arxiv.org/abs/1312.6114))
has two networks:

* an **encoder** that maps an image $x$ to a Gaussian $q(z|x) = \\mathcal{N}(\\mu(x), \\operatorname{diag}\\sigma^2(x))$
  over a small latent space, and
* a **decoder** that maps any point $z$ to the parameters of $p(x|z)$ (here a Bernoulli per pixel).

Training maximises the evidence lower bound (ELBO) on $\\log p(x)$:

$$\\log p(x) \\ge \\mathbb{E}_{q(z|x)}[\\log p(x|z)] - \\mathrm{KL}(q(z|x)\\,\\|\\,\\mathcal{N}(0, I)).$$

We minimise its negative: a **reconstruction** term plus a **KL** term, both in nats per image.""",
    ),
    (
        "code",
        """%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import torch

from vae_explorer import DataConfig, ModelConfig, RunConfig, TrainConfig, build_model, fit_to_data, load_dataset, train
from vae_explorer.images import image_grid

torch.manual_seed(0)


def show(images, nrow=None, title=None, cell=40):
    \"\"\"Show (N, C, H, W) images in [0, 1] as one grid.\"\"\"
    grid = image_grid(images, nrow=nrow, min_cell=cell)
    plt.figure(figsize=(grid.width / 100, grid.height / 100), dpi=100)
    plt.imshow(grid, cmap="gray", vmin=0, vmax=255)
    plt.axis("off")
    if title:
        plt.title(title)
    plt.show()""",
    ),
    (
        "md",
        """## The data
Every dataset comes as in-memory tensors `(N, C, H, W)` in $[0, 1]$ with labels and a fixed train/test split.""",
    ),
    (
        "code",
        """data = load_dataset(DataConfig(dataset="digits"))
print(data.train_x.shape, data.test_x.shape, data.class_names)
show(data.train_x[:32], nrow=16, title="training images")""",
    ),
    (
        "md",
        """## The model
An MLP encoder and decoder (the decoder mirrors the encoder) with an 8-dimensional latent space.
`fit_to_data` fills in the image shape and the classes from the dataset.""",
    ),
    (
        "code",
        """config = RunConfig(
    data=DataConfig(dataset="digits"),
    model=ModelConfig(architecture="mlp", latent_dim=8, hidden_sizes=[256, 128]),
    train=TrainConfig(epochs=60, batch_size=64, lr=1e-3, beta=1.0, warmup_epochs=10, seed=0),
)
config.model = fit_to_data(config.model, data.image_shape, data.class_names)
model = build_model(config.model, seed=0)
print(f"{model.num_parameters():,} parameters")

x = data.test_x[:4]
q = model.encode(x)                       # q(z|x): a Gaussian per image
print("mu", tuple(q.mean.shape), "log sigma^2", tuple(q.logvar.shape))
z = model.reparameterize(q.mean, q.logvar)  # z = mu + sigma * eps, eps ~ N(0, I): differentiable in mu and sigma
parts = model.loss(x)                     # per image, in nats
print("recon", parts.recon.detach().numpy().round(1), "KL", parts.kl.detach().numpy().round(2))""",
    ),
    (
        "md",
        """## Training
`train` is the same function the command line and the app's Train page call. A callback sees every
step and every epoch (the app draws its live charts from it); returning `True` from it would stop training.
The KL weight rises from 0 to beta over the first 10 epochs (warm-up), which keeps more latent dimensions in use.""",
    ),
    (
        "code",
        """def report(event):
    if event.kind == "epoch" and event.epoch % 10 == 0:
        r = event.record
        print(f"epoch {r['epoch']:>3}: test loss {r['test_loss']:.2f} = recon {r['test_recon']:.2f} + KL {r['test_kl']:.2f}")

history = train(model, data, config.train, [report])

epochs = [r["epoch"] for r in history]
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, part in zip(axes, ["loss", "recon", "kl"]):
    ax.plot(epochs, [r[f"train_{part}"] for r in history], label="train")
    ax.plot(epochs, [r[f"test_{part}"] for r in history], "--", label="test")
    ax.set_title(part)
    ax.set_xlabel("epoch")
axes[0].set_ylabel("nats per image")
axes[0].legend()
plt.show()""",
    ),
    (
        "md",
        """The KL first falls almost to 0: early on, nothing the encoder could say about an image is worth its cost.
Then it grows as the decoder learns to use $z$: the model spends nats of KL where they buy better reconstructions.""",
    ),
    (
        "md",
        """## Reconstructions
The posterior mean $\\mu(x)$ decoded: never a random sample, so the picture is deterministic.""",
    ),
    (
        "code",
        """x = data.test_x[:16]
show(torch.cat([x, model.reconstruct(x)]), nrow=16, title="test images (top) and their reconstructions (bottom)")""",
    ),
    (
        "md",
        """## Samples
Draw $z \\sim \\mathcal{N}(0, I)$ and decode: new digits that are in no dataset.""",
    ),
    (
        "code",
        """from vae_explorer.latent import sample_prior

show(sample_prior(model, 32, seed=0), nrow=16, title="z ~ N(0, I), decoded")""",
    ),
    (
        "md",
        """## Interpolation
Walk from one encoded image to another. A straight line cuts the corner: its $|z|$ runs below the straight line
between the two end lengths. Spherical interpolation (slerp) follows the arc between them, so two codes of equal
length keep that length all the way.""",
    ),
    (
        "code",
        """from vae_explorer.latent import encode_means, interpolate

mu, _ = encode_means(model, data.test_x)
a, b = mu[(data.test_y == 0).nonzero()[0, 0]], mu[(data.test_y == 7).nonzero()[0, 0]]
rows = [model.generate(interpolate(a, b, 10, method)) for method in ("linear", "slerp")]
show(torch.cat(rows), nrow=10, title="0 -> 7: linear (top), slerp (bottom)")""",
    ),
    (
        "md",
        """## The latent map
Each test image's posterior mean, projected onto the two directions in which the codes spread most (PCA).
Classes form regions although the model never saw a label.""",
    ),
    (
        "code",
        """from vae_explorer.latent import pca_2d

coords, _, _ = pca_2d(mu.numpy())
plt.figure(figsize=(6, 5))
scatter = plt.scatter(coords[:, 0], coords[:, 1], c=data.test_y.numpy(), cmap="tab10", s=12)
plt.legend(*scatter.legend_elements(), title="digit", bbox_to_anchor=(1, 1), fontsize=8)
plt.xlabel("PC 1")
plt.ylabel("PC 2")
plt.title("test images in latent space")
plt.show()""",
    ),
    (
        "md",
        """## What each dimension does, and which ones are used
Vary one latent dimension from -3 to +3 with the others at 0. A dimension whose posterior mean barely varies
across images is **inactive**: its KL is near 0, it says nothing about the image (posterior collapse).""",
    ),
    (
        "code",
        """from vae_explorer.evaluation import active_dimensions, kl_per_dimension
from vae_explorer.latent import traverse

_, logvar = encode_means(model, data.test_x)
kl = kl_per_dimension(mu, logvar)
active = active_dimensions(mu)
print("KL per dimension:", kl.numpy().round(2))
print("active:", active.numpy())
dims = kl.argsort(descending=True)[:4].tolist()
show(traverse(model, dims, steps=9), nrow=9,
     title=f"traversals of the dimensions with most KL: {dims}")""",
    ),
    (
        "md",
        """## Evaluation
The ELBO is only a bound. The importance-weighted bound of Burda et al.
([arXiv:1509.00519](https://arxiv.org/abs/1509.00519)) with $k$ samples is tighter and rises towards $\\log p(x)$.
The Fréchet distance compares the features of samples and of real test images in a small classifier
(trained once per dataset and kept on disk).""",
    ),
    (
        "code",
        """from vae_explorer.evaluation import evaluate, get_classifier

classifier, info = get_classifier(config.data)
metrics = evaluate(model, data, k=100, classifier=classifier, classifier_info=info)
for key in ("neg_elbo", "recon", "kl", "iwae_nll", "elbo_iwae_gap", "active_units", "fid", "fid_floor"):
    print(f"{key:<14} {metrics[key]:.3f}" if isinstance(metrics[key], float) else f"{key:<14} {metrics[key]}")""",
    ),
    (
        "md",
        """## Save it and open it in the app
A checkpoint is a folder of plain files (`config.json`, `model.safetensors`, `history.json`, `metrics.json`).
Saved in the runs folder (`vae_explorer.paths.runs_dir()`), it appears in the model picker of `vae-explorer app`.""",
    ),
    (
        "code",
        """import tempfile

from vae_explorer import load_checkpoint, save_checkpoint

folder = save_checkpoint(tempfile.mkdtemp() + "/digits-notebook", model, config, history, metrics)
again = load_checkpoint(folder)
assert torch.equal(again.model.reconstruct(x), model.reconstruct(x))
print("saved and reloaded", folder)""",
    ),
    (
        "md",
        """## Your own model
Any model with `encode(x) -> (mu, logvar)` and `decode(z) -> logits` (or probabilities) can be explored with the
same functions, without saving anything: `wrap_model` makes it look like one of ours. Here a small VAE written
from scratch in plain PyTorch, trained with its own loop for a few hundred steps.""",
    ),
    (
        "code",
        """from torch import nn

from vae_explorer.evaluation import basic_metrics
from vae_explorer.models import wrap_model


class MyVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2 * 4))
        self.dec = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64))

    def encode(self, x):
        return self.enc(x).chunk(2, 1)  # (mu, logvar)

    def decode(self, z):
        return self.dec(z)  # logits, one per pixel


mine = MyVAE()
optimizer = torch.optim.Adam(mine.parameters(), lr=3e-3)
generator = torch.Generator().manual_seed(0)
for step in range(400):
    x = data.train_x[torch.randint(0, len(data.train_x), (64,), generator=generator)]
    mu, logvar = mine.encode(x)
    z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
    recon = nn.functional.binary_cross_entropy_with_logits(mine.decode(z), x.flatten(1), reduction="none").sum(1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    loss = (recon + kl).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

wrapped = wrap_model(mine.encode, mine.decode, image_shape=(1, 8, 8), output="logits", module=mine.eval())
metrics, _ = basic_metrics(wrapped, data)
print(f"my model: test neg-ELBO {metrics['neg_elbo']:.1f} nats, {metrics['active_units']} of 4 dimensions active")
show(traverse(wrapped, list(range(4)), 9), nrow=9, title="my model: each of its 4 dimensions from -3 to +3")""",
    ),
    (
        "md",
        """## Try next
* Set `beta=4.0` and train again: fewer active dimensions, blurrier reconstructions, more disentangled traversals.
* Set `latent_dim=2` and plot `mu` directly: the whole model fits on one plane.
* `ModelConfig(conditional=True)` makes a conditional VAE: `sample_prior(model, 16, label=3)` draws threes.""",
    ),
]


def main() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src) for kind, src in CELLS
    ]
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    OUT.parent.mkdir(exist_ok=True)
    nbformat.write(notebook, OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()

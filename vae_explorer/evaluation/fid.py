"""A small convolutional classifier per dataset, whose penultimate features score sample quality
with the Fréchet distance (as FID does with Inception features, Heusel et al., arXiv:1706.08500).

A classifier is trained once per dataset and kept on disk: shipped ones in
`checkpoints/classifiers/`, others in `$VAE_EXPLORER_CACHE/classifiers` (default
`~/.cache/vae_explorer/classifiers`, under $XDG_CACHE_HOME when set). Each is a folder with `model.safetensors` and `info.json`.
Scores from different classifiers are not comparable; `info.json` names the one used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import DataConfig
from ..data import Dataset
from ..errors import CheckpointError, ConfigError
from ..paths import cache_root, shipped_classifiers_dir

FEATURES = 64  # width of the feature layer the Fréchet distance is computed on
_TRAINING = threading.Lock()  # one classifier trains at a time in a process; others then find it on disk


class Classifier(nn.Module):
    def __init__(self, image_shape: list[int] | tuple[int, ...], num_classes: int):
        super().__init__()
        channels = image_shape[0]
        self.features = nn.Sequential(  # (B, C, H, W) -> (B, FEATURES)
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, FEATURES),
            nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
        """Feature vectors (N, FEATURES) of images (N, C, H, W) in [0, 1]."""
        self.eval()
        return torch.cat([self.features(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).double().numpy()


IGNORED_IN_KEY = ("data_dir", "max_train", "max_test")  # one classifier serves every subset of a dataset


def classifier_key(config: DataConfig) -> str:
    """A folder name for the dataset a DataConfig describes (where its files live and how much of it
    a model used do not matter: the classifier is trained on all of it)."""
    described = {k: v for k, v in asdict(config).items() if k not in IGNORED_IN_KEY}
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:10]
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in config.dataset)[:40]
    return f"{name}-{digest}"


def cache_dir() -> Path:
    return cache_root() / "classifiers"


def find_classifier(config: DataConfig) -> Path | None:
    key = classifier_key(config)
    for root in (shipped_classifiers_dir(), cache_dir()):
        if (root / key / "model.safetensors").is_file():
            return root / key
    return None


def load_classifier(folder: str | Path) -> tuple[Classifier, dict]:
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        info = json.loads((folder / "info.json").read_text())
        model = Classifier(info["image_shape"], info["num_classes"])
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"the classifier in {folder} cannot be read ({exc}); delete that folder and it is trained again."
        ) from None
    return model.eval(), info


def default_epochs(n_train: int) -> int:
    """About 20,000 images' worth of steps, at least 2 passes: seconds on a CPU for every dataset here."""
    return max(2, min(20, 20_000 // max(n_train, 1)))


def train_classifier(
    data: Dataset,
    config: DataConfig,
    epochs: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    out_dir: str | Path | None = None,
) -> tuple[Classifier, dict]:
    """Train the feature classifier on `data`'s training set and save it in `out_dir` (default: the cache folder)."""
    from safetensors.torch import save_file

    from ..training import make_optimizer

    if data.num_classes < 2:
        raise ConfigError(
            f"{data.name} has a single class, so no feature classifier can be trained for a sample-quality "
            "score; give the folder one sub-folder per class."
        )
    epochs = epochs or default_epochs(len(data.train_x))
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Classifier(data.image_shape, data.num_classes)
    optimizer = make_optimizer(model.parameters(), 2e-3)
    batch, n = 128, len(data.train_x)
    steps = -(-n // batch)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        for i in range(steps):
            index = order[i * batch : (i + 1) * batch]
            loss = nn.functional.cross_entropy(model(data.train_x[index]), data.train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress:
                progress(epoch * steps + i + 1, epochs * steps)
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(data.test_x[i : i + 1000]).argmax(1) for i in range(0, len(data.test_x), 1000)])
    info = {
        "dataset": data.name,
        "key": classifier_key(config),
        "image_shape": list(data.image_shape),
        "num_classes": data.num_classes,
        "epochs": epochs,
        "seed": seed,
        "features": FEATURES,
        "test_accuracy": float((predictions == data.test_y).double().mean()),
        "data": asdict(config),
    }
    target = Path(out_dir or cache_dir()) / info["key"]
    staging = target.parent / f".{target.name}.saving-{os.getpid()}-{threading.get_ident()}"
    staging.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(staging / "model.safetensors"))
    (staging / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.rename(staging, target)
    return model, info


def get_classifier(
    config: DataConfig, progress: Callable[[int, int], None] | None = None, epochs: int | None = None
) -> tuple[Classifier, dict]:
    """The dataset's classifier from disk, trained first (on the whole dataset) when there is none."""
    from ..data import load_dataset

    with _TRAINING:
        folder = find_classifier(config)
        if folder is not None:
            return load_classifier(folder)
        whole = replace(config, max_train=None, max_test=None)
        return train_classifier(load_dataset(whole), whole, epochs, progress=progress)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors (N, F) and (M, F):

        |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))

    The trace of the matrix square root is computed as the sum of square roots of the
    eigenvalues of S_a^(1/2) S_b S_a^(1/2), which is symmetric, so no complex round-off appears.
    """
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)

"""What a page shows, read back as pixels, and what it should show, computed here from the model's
own layers, so a test compares the picture a person sees with an independent answer.

    media = Media(monkeypatch)            # before the AppTest runs
    at = open_page(...)
    caption, pixels = media.images(at)[0] # every st.image on the page, decoded
    tiles(pixels, n=16, nrow=8, side=(8, 8))  # a grid cut back into its images, upscaling undone
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import torch
from PIL import Image
from sklearn.decomposition import PCA
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import app_test


class Media:
    """Keeps the media storage of the latest AppTest run, so the bytes behind st.image can be read."""

    def __init__(self, monkeypatch):
        self.storage: MemoryMediaFileStorage | None = None
        media = self

        class Recording(MemoryMediaFileStorage):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                media.storage = self

        monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Recording)

    def read(self, url: str) -> bytes:
        return self.storage.get_file(url.rsplit("/", 1)[-1]).content

    def images(self, at) -> list[tuple[str, np.ndarray]]:
        """(caption, pixels as uint8 (H, W) or (H, W, 3)) of every st.image on the page, in order."""
        shown = []
        for element in at.get("image"):
            for url, caption in zip(element.value, element.captions):
                shown.append((caption, decode_png(self.read(url))))
        return shown

    def image(self, at, caption: str) -> np.ndarray:
        found = [pixels for text, pixels in self.images(at) if text == caption]
        assert len(found) == 1, (
            f"{len(found)} images captioned {caption!r}; captions: {[c for c, _ in self.images(at)]}"
        )
        return found[0]


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG", f"shown as {image.format}, not PNG: pixels would not be exact"
        return np.asarray(image.convert("L") if image.mode in ("L", "1", "P") else image.convert("RGB"))


def data_uri_pixels(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return decode_png(base64.b64decode(uri.split(",", 1)[1]))


def tiles(grid: np.ndarray, n: int, nrow: int, side: tuple[int, int], padding: int = 2) -> np.ndarray:
    """Cut a grid of n images (nrow per row, `padding` pixels around each) back into (n, h, w[, c])
    at their own size, undoing a whole-number upscaling."""
    h, w = side
    tile_w = (grid.shape[1] - (nrow + 1) * padding) // nrow
    scale = tile_w // w
    assert tile_w == scale * w, f"a grid of {nrow} columns of {w}-pixel images cannot be {grid.shape[1]} wide"
    tile_h = h * scale
    out = []
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = padding + r * (tile_h + padding), padding + c * (tile_w + padding)
        out.append(grid[top : top + tile_h : scale, left : left + tile_w : scale])
    return np.stack(out)


def downscale(picture: np.ndarray, side: tuple[int, int]) -> np.ndarray:
    """An image upscaled by a whole factor (nearest neighbour) back to (h, w)."""
    scale = picture.shape[0] // side[0]
    assert picture.shape[0] == scale * side[0] and picture.shape[1] == scale * side[1], picture.shape
    return picture[::scale, ::scale]


def as_pixels(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> uint8 (N, H, W) or (N, H, W, 3), rounded to the nearest level."""
    array = np.rint(images.detach().double().clamp(0, 1).numpy() * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return array[..., 0] if array.shape[-1] == 1 else array


@torch.no_grad()
def decoded(model, z, label: int | None = None) -> np.ndarray:
    """The pixels the model's decoder layers give for z (N, D), written out: decoder, then sigmoid
    (Bernoulli) or clamp (Gaussian)."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, model.latent_dim)
    if model.cond_dim:
        one_hot = torch.zeros(len(z), model.cond_dim)
        one_hot[:, int(label or 0)] = 1.0
        z = torch.cat([z, one_hot], 1)
    out = model.decoder(z)
    return as_pixels(torch.sigmoid(out) if model.config.likelihood == "bernoulli" else out)


@torch.no_grad()
def posterior(model, x: torch.Tensor, label: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of q(z|x) from the encoder's layers, written out, (N, D) each."""
    h = model.encoder(x)
    if model.cond_dim:
        one_hot = torch.zeros(len(x), model.cond_dim)
        one_hot[:, int(label or 0)] = 1.0
        h = torch.cat([h, one_hot], 1)
    stats = model.to_latent(h)
    d = model.latent_dim
    return stats[:, :d].numpy(), torch.exp(0.5 * stats[:, d:]).numpy()


def assert_pixels_close(shown: np.ndarray, expected: np.ndarray, what: str = "picture") -> None:
    """Every pixel within one level of 255 (rounding), and the shapes equal."""
    assert shown.shape == expected.shape, f"{what}: shape {shown.shape}, expected {expected.shape}"
    worst = int(np.abs(shown.astype(int) - expected.astype(int)).max())
    assert worst <= 1, f"{what}: a pixel is {worst} levels off"


def plotly_spec(element) -> dict:
    return json.loads(element.proto.spec)


def plotly_values(values) -> np.ndarray:
    """A trace's x or y: a plain list, or plotly's typed array {dtype, bdata}."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    return np.asarray(values, dtype=float)


def pca_reference(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, PCA]:
    """scikit-learn's PCA with each direction's sign fixed as the app documents it (largest component positive)."""
    pca = PCA(2).fit(mu)
    signs = np.sign(pca.components_[np.arange(2), np.abs(pca.components_).argmax(1)])
    return pca.transform(mu) * signs, pca.components_ * signs[:, None], pca

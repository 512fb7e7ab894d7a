"""The app's one door into vae_explorer: the shared model picker, cached models, cached arrays.

Models load through `st.cache_resource` (one shared object in eval mode, never mutated; anything
that trains works on its own copy). Derived arrays go through `st.cache_data`, keyed by the
checkpoint's path and modification stamp plus the parameters, never by a model object.
This package (`vae_explorer.app`) is the only part of vae_explorer that imports streamlit.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ..checkpoints import Checkpoint, load_checkpoint
from ..data import Dataset, load_dataset
from ..data.access import uploaded_data
from ..errors import VaeExplorerError
from ..latent import encode_means
from ..paths import runs_dir, shipped_checkpoints_dir
from . import safety

SHIPPED_DIR = Path(os.environ.get("VAE_EXPLORER_CHECKPOINTS") or shipped_checkpoints_dir())
TRAINED_DIR = runs_dir()  # $VAE_EXPLORER_RUNS, or `vae-explorer app --runs-dir`
DEFAULT_MODEL = "digits-mlp"
MODEL_KEY = "model"  # session-state key and query parameter of the chosen checkpoint
MAX_SLIDERS = 64  # a latent of more dimensions (up to 512, imported) gets sliders for those that carry the most KL


@dataclass(frozen=True)
class ModelRef:
    label: str  # what the picker shows
    path: str


def available_models() -> list[ModelRef]:
    """Shipped checkpoints first, then those trained or uploaded here (the runs folder), newest first."""
    refs = []
    for folder, group in ((SHIPPED_DIR, "shipped"), (TRAINED_DIR, "trained")):
        if not folder.is_dir():
            continue
        # a checkpoint folder, or one in a group folder (uploads go to runs/uploaded/NAME); hidden ones are partial
        found = [p for p in (*folder.glob("*/config.json"), *folder.glob("*/*/config.json"))
                 if not any(part.startswith(".") for part in p.relative_to(folder).parts)]
        found.sort(key=lambda p: (p.parent.name != DEFAULT_MODEL, -p.stat().st_mtime if group == "trained" else 0, p.parent.name))
        refs += [ModelRef(f"{p.parent.name}  ({_origin(p.parent, group)})", str(p.parent)) for p in found]
    return refs


def _origin(folder: Path, group: str) -> str:
    """What the picker says of a checkpoint: shipped, trained here, uploaded, or imported from ONNX."""
    if group == "shipped":
        return group
    if folder.parent.name == "uploaded":
        return "uploaded"
    return "imported" if (folder / "onnx.json").is_file() else "trained"


@st.cache_data(max_entries=256, show_spinner=False)
def _config_of(path: str, saved: float):
    from ..checkpoints import read_config

    return read_config(path)


def image_shape_of(path: str | Path) -> list[int] | None:
    """A checkpoint's image shape from its config.json alone (None when it cannot be read)."""
    try:
        return list(_config_of(str(path), stamp(path)).model.image_shape)
    except (VaeExplorerError, OSError, ValueError):
        return None


def comparable_first(checkpoint: Checkpoint, names: list[str], paths: dict[str, str]) -> str:
    """Of `names`, the model most like `checkpoint` to compare it with: the same model a beta apart first,
    then the same dataset and latent size (an objective apart, or its conditional version), then the same dataset."""
    mine = checkpoint.config

    def closeness(name: str) -> tuple:
        try:
            config = _config_of(paths[name], stamp(paths[name]))
        except (VaeExplorerError, OSError, ValueError):
            return (0, 0, 0)
        same_data = config.data.dataset == mine.data.dataset
        only_beta = same_data and config.model == mine.model and config.train.beta != mine.train.beta  # beta = 1 against 4
        return (only_beta, same_data and config.model.latent_dim == mine.model.latent_dim, same_data)

    return max(names, key=closeness)  # max keeps the first of equals: the picker's order


def interrupted_runs() -> list[tuple[str, dict]]:
    """Runs in the runs folder whose training ended before its last epoch: interrupted (a crash, a
    server restart) or stopped by whoever ran it; not those a job of this server trains now (a resumed
    run reads "interrupted" until its first new epoch is saved). (name, training.json), newest first."""
    from ..checkpoints import interrupted, read_training
    from ..runs.jobs import training_now

    if not TRAINED_DIR.is_dir():
        return []
    found = [(p.stat().st_mtime, p.name, read_training(p)) for p in TRAINED_DIR.iterdir() if p.is_dir() and not p.name.startswith(".")]

    def unfinished(training: dict) -> bool:
        stopped_early = training.get("status") == "stopped" and isinstance(training.get("epochs_done"), int) and \
            isinstance(training.get("target_epochs"), int) and training["epochs_done"] < training["target_epochs"]
        return interrupted(training) or stopped_early

    busy = training_now()
    return [(name, training) for _, name, training in sorted(found, reverse=True)
            if unfinished(training) and (TRAINED_DIR / name).resolve() not in busy]


def stamp(path: str | Path) -> float:
    """Changes whenever the checkpoint is saved again: part of every cache key."""
    path = Path(path)
    return max((path / f).stat().st_mtime for f in ("config.json", "model.safetensors", "onnx_encoder.onnx", "onnx_decoder.onnx", "epochs.safetensors") if (path / f).exists())


@st.cache_resource(max_entries=12, show_spinner="Loading the model…")
def _load(path: str, saved: float) -> Checkpoint:
    checkpoint = load_checkpoint(path)
    checkpoint.model.requires_grad_(False)  # shared by every session: read-only
    return checkpoint


def load(path: str | Path) -> Checkpoint:
    return _load(str(path), stamp(path))


PRESENTING_KEY = "presenting"  # the session's presentation mode (not the toggle's own key: widgets forget across pages)
PRESENTATION_SCALE = 1.5
# Streamlit sizes its text in rem, so a larger root font size enlarges every word on the page, the
# components' included; pictures grow through px(). The toolbar (Deploy, the menu) is hidden.
PRESENTATION_CSS = """<style>
html { font-size: 22px; }
h1 { font-size: 3.2rem !important; }
[data-testid="stMainBlockContainer"] { padding-top: 1.5rem; padding-left: 2.5rem; padding-right: 2.5rem; max-width: none; }
[data-testid="stToolbar"] { display: none; }
[data-testid="stSidebar"][data-collapsed="false"] { width: 22rem !important; }  /* the model picker's names whole */
</style>"""


def presenting() -> bool:
    return bool(st.session_state.get(PRESENTING_KEY))


def px(size: int) -> int:
    """A picture's size in CSS pixels: larger in presentation mode."""
    return int(round(size * (PRESENTATION_SCALE if presenting() else 1.0)))


def chart(figure, key: str, container=None) -> None:
    """st.plotly_chart, with the figure's text and height enlarged in presentation mode (per figure:
    a plotly template would be process-wide, every session's)."""
    if presenting():
        figure.update_layout(font=dict(size=18), height=int((figure.layout.height or 450) * 1.3))
        figure.update_annotations(font_size=20)  # subplot titles
    # no toolbar in presentation mode (it covers what is beneath it); never a wheel that zooms instead of scrolling the page
    config = {"scrollZoom": False, "displayModeBar": False if presenting() else "hover"}
    (container or st).plotly_chart(figure, key=key, config=config)


def presentation_toggle() -> None:
    """The sidebar's presentation-mode switch, shared by every page and kept in the URL (?present=1)."""
    if PRESENTING_KEY not in st.session_state:
        st.session_state[PRESENTING_KEY] = st.query_params.get("present") == "1"
    on = st.sidebar.toggle("Presentation mode", value=st.session_state[PRESENTING_KEY], key="present_toggle",
                           help="Large type and pictures for a projector, without the toolbar.")
    st.session_state[PRESENTING_KEY] = on
    if on:
        st.markdown(PRESENTATION_CSS, unsafe_allow_html=True)
        st.query_params["present"] = "1"
    elif "present" in st.query_params:
        del st.query_params["present"]


def select_model() -> Checkpoint:
    """The sidebar model picker shared by every page; the choice survives page changes and is
    kept in the URL (?model=NAME) so a view can be shared."""
    presentation_toggle()
    refs = available_models()
    if not refs:
        st.error("No checkpoints were found, neither shipped ones nor trained ones; train one with `vae-explorer train`.")
        st.stop()
    by_name = {Path(r.path).name: r for r in refs}
    uploaded = _upload_box()
    if uploaded:
        refs = available_models()
        by_name = {Path(r.path).name: r for r in refs}
        st.session_state[MODEL_KEY] = uploaded
    wanted = st.session_state.get(MODEL_KEY) or st.query_params.get(MODEL_KEY) or DEFAULT_MODEL
    if wanted not in by_name:
        linked = MODEL_KEY not in st.session_state and st.query_params.get(MODEL_KEY)
        wanted = DEFAULT_MODEL if DEFAULT_MODEL in by_name else next(iter(by_name))
        if linked:  # a shared link naming a model this server does not have: said once, not silently replaced
            shown = "".join(c for c in str(linked)[:60] if c.isprintable())
            st.warning(f"This link asks for a model called {safety.plain(shown)}, which this server does not have; showing "
                       f"{safety.plain(by_name[wanted].label.split('  ')[0])} instead (pick another in the sidebar).")
    names = list(by_name)
    name = st.sidebar.selectbox("Model", names, index=names.index(wanted), format_func=lambda n: by_name[n].label,
                                help="Shipped checkpoints and those trained or uploaded on this server.")
    st.session_state[MODEL_KEY] = name
    st.query_params[MODEL_KEY] = name
    try:
        return load(by_name[name].path)
    except VaeExplorerError as exc:
        st.error(safety.say(exc))
        st.stop()


def _upload_box() -> str | None:
    """The sidebar's checkpoint upload; returns the new model's name once, right after an import."""
    from ..checkpoints import import_checkpoint_zip

    with st.sidebar.expander("Upload a checkpoint (.zip)"):
        upload = st.file_uploader("A zipped checkpoint folder: config.json with model.safetensors, or an imported ONNX pair's folder", type=["zip"],
                                  key="upload_checkpoint")
        if upload is None or st.session_state.get("upload_done") == upload.file_id:
            return None
        st.session_state["upload_done"] = upload.file_id  # the uploader keeps the file across reruns
        try:
            folder = import_checkpoint_zip(upload.getvalue(), upload.name, TRAINED_DIR / "uploaded")
        except VaeExplorerError as exc:
            st.error(safety.say(exc))
            return None
        st.success(f"Imported {safety.plain(folder.name)}.")
        return folder.name


@st.cache_resource(max_entries=4, show_spinner="Loading the dataset…")
def _dataset(config_key: tuple) -> Dataset:
    from ..config import DataConfig

    return load_dataset(DataConfig(**dict(config_key)))


def uploaded(checkpoint: Checkpoint) -> bool:
    """Whether the checkpoint came in through the sidebar's upload (runs folder's uploaded/)."""
    return checkpoint.path.resolve().parent == (TRAINED_DIR / "uploaded").resolve()


def dataset_of(checkpoint: Checkpoint) -> Dataset | None:
    """The checkpoint's dataset (shared, read-only), or None with a note saying why there is none.
    An uploaded checkpoint reads no folder of the server's (data/access.py)."""
    config = checkpoint.config.data
    if uploaded(checkpoint):
        config = uploaded_data(config)
        if config is None:
            st.info("This uploaded model was trained on an image folder of its own, which this server does not have: "
                    "there are no test images to show here.")
            return None
    try:
        return _dataset(tuple(sorted(asdict(config).items())))
    except VaeExplorerError as exc:
        st.warning(f"The test images are not available: {safety.say(exc)}")
        return None


@st.cache_data(max_entries=16, show_spinner="Encoding the test set…")
def encoded_test_set(path: str, saved: float, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior means, log-variances and labels of the first `limit` test images."""
    checkpoint = _load(path, saved)
    data = dataset_of(checkpoint)
    if data is None:
        return np.zeros((0, checkpoint.model.latent_dim)), np.zeros((0, checkpoint.model.latent_dim)), np.zeros(0, int)
    x, y = data.test_x[:limit], data.test_y[:limit]
    mu, logvar = encode_means(checkpoint.model, x, y if checkpoint.model.cond_dim else None)
    return mu.numpy(), logvar.numpy(), y.numpy()


@st.cache_data(max_entries=4, show_spinner="Encoding every image…")
def encoded_all(path: str, saved: float) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and labels of every image: the test images first, then the training images."""
    from ..latent.maps import kept_codes

    checkpoint = _load(path, saved)
    return kept_codes(checkpoint.model, dataset_of(checkpoint), "all", path)


@st.cache_data(max_entries=8, show_spinner=False)
def map_codes(path: str, saved: float, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the Latent map draws for `limit` points (past the test set: every image, test first):
    the posterior means, labels, their PCA coordinates, mean and directions. Cached: the PCA of
    70,000 codes takes ~40 ms, and the page reruns on every click."""
    from ..latent import pca_2d

    checkpoint = _load(path, saved)
    if limit > len(dataset_of(checkpoint).test_x):
        mu, labels = encoded_all(path, saved)
    else:
        mu, _, labels = encoded_test_set(path, saved, limit)
    coords, mean, directions = pca_2d(mu)
    return mu, labels, coords, mean, directions


def picture(checkpoint: Checkpoint, z, label: int | None = None) -> np.ndarray:
    """The image one latent vector (D,) decodes to, as uint8 (H, W) or (H, W, 3). Kept for every
    session: each visitor's first picture (z = 0, or a shared link's z) is decoded once."""
    return _picture(str(checkpoint.path), stamp(checkpoint.path), tuple(float(v) for v in np.asarray(z, dtype=float).ravel()),
                    None if label is None else int(label))


@st.cache_data(max_entries=512, show_spinner=False)
def _picture(path: str, saved: float, z: tuple[float, ...], label: int | None) -> np.ndarray:
    from ..images import to_uint8
    from ..latent import generate

    image = to_uint8(generate(_load(path, saved).model, np.asarray(z, dtype=np.float32), label))[0]
    return image[..., 0] if image.shape[-1] == 1 else image


@st.cache_data(max_entries=64, show_spinner=False)
def prior_samples_png(path: str, saved: float, count: int, nrow: int, seed: int, cell: int) -> bytes:
    """Home's samples from the prior as a PNG: the same for every visitor with the same seed, so made once."""
    from ..images import png_bytes
    from ..latent import sample_prior

    return png_bytes(sample_prior(_load(path, saved).model, count, seed=seed), nrow=nrow, min_cell=cell)


@st.cache_data(max_entries=64, show_spinner=False)
def reconstructions_png(path: str, saved: float, start: int, count: int, per_row: int) -> bytes:
    """Reconstruct's rows of test images and their reconstructions (from the posterior mean) as a PNG, made once."""
    from ..images import png_bytes
    from ..latent import reconstruction_rows

    data = dataset_of(_load(path, saved))
    rows = reconstruction_rows(_load(path, saved).model, data.test_x[start: start + count], data.test_y[start: start + count], per_row)
    return png_bytes(rows, nrow=per_row, min_cell=56)


def prior_name(checkpoint: Checkpoint) -> str:
    """How the page names the model's prior p(z)."""
    config = checkpoint.config.model
    if config.prior == "vamp":
        return f"its VampPrior ({config.pseudo_inputs} pseudo-inputs)"
    if config.top_latent_dim:
        return "its two-level prior (z2 ~ N(0, I), then z ~ p(z|z2))"
    return "N(0, I)"


def prior_code(checkpoint: Checkpoint) -> list[float]:
    """One z drawn from the model's prior, each coordinate held within the sliders' -3..3."""
    seed = int(np.random.default_rng().integers(2**31))
    z = checkpoint.model.sample_prior(1, torch.Generator().manual_seed(seed))[0].cpu().numpy()
    return np.clip(z, -3, 3).astype(float).tolist()


@st.cache_data(max_entries=8, show_spinner=False)
def epoch_frames(path: str, saved: float) -> list[dict]:
    """The checkpoint's kept epoch frames (latent/epochs.py), [] when it has none."""
    from ..checkpoints import read_epoch_frames

    return read_epoch_frames(path)


DRAWING_KEY = "drawing"  # the session's last drawing on the Reconstruct pad, offered by other pages


def keep_drawing(checkpoint: Checkpoint, image, label: int | None) -> None:
    """Remember the session's drawing (C, H, W) for the pages that take an image as input."""
    st.session_state[DRAWING_KEY] = {"model": str(checkpoint.path), "shape": list(checkpoint.config.model.image_shape),
                                     "image": image, "label": label}


def kept_drawing(checkpoint: Checkpoint):
    """The session's drawing if it fits this model's images ((C, H, W) tensor, class), else (None, None)."""
    kept = st.session_state.get(DRAWING_KEY)
    if not kept or kept["shape"] != list(checkpoint.config.model.image_shape):
        return None, None
    return kept["image"], kept["label"]


def page(title: str, caption: str | None = None) -> Checkpoint:
    """The top of every page: its browser title, the shared model picker, the heading. Returns the chosen model."""
    st.set_page_config(page_title=f"{title} · vae-explorer", page_icon="🧭", layout="wide")
    checkpoint = select_model()
    st.title(title)
    if caption:
        st.caption(caption)
    return checkpoint


def class_names(checkpoint: Checkpoint) -> list[str]:
    names = checkpoint.config.model.class_names
    return list(names) if names else [str(i) for i in range(checkpoint.config.model.num_classes or 0)]


@st.cache_data(max_entries=16, show_spinner=False)
def latent_stats(path: str, saved: float) -> tuple[np.ndarray, np.ndarray]:
    """KL per latent dimension (nats, test-set mean) and which dimensions are active.

    From the encoded test set when it is available, else from metrics.json; a dimension is
    active when its posterior mean varies across the data (variance > 0.01, Burda et al.).
    """
    checkpoint = _load(path, saved)
    mu, logvar, _ = encoded_test_set(path, saved, 2000)
    if len(mu) > 1 and not checkpoint.model.standard_prior:  # the KL to another prior needs samples: training wrote it
        from ..evaluation import active_dimensions

        kl = np.asarray(checkpoint.metrics.get("kl_per_dim") or np.zeros(checkpoint.model.latent_dim))
        return kl, active_dimensions(torch.from_numpy(mu)).numpy()
    if len(mu) > 1:
        from ..evaluation import active_dimensions, kl_per_dimension

        mu_t, logvar_t = torch.from_numpy(mu), torch.from_numpy(logvar)
        return kl_per_dimension(mu_t, logvar_t).numpy(), active_dimensions(mu_t).numpy()
    kl = np.asarray(checkpoint.metrics.get("kl_per_dim") or np.zeros(checkpoint.model.latent_dim))
    return kl, kl > 0.01


@st.cache_data(max_entries=16, show_spinner=False)
def test_neg_elbos(path: str, saved: float, limit: int = 2000) -> np.ndarray:
    """The neg-ELBO of each of the first `limit` test images (N,), one seeded z each: what an upload is set against."""
    from ..evaluation import neg_elbo_per_image

    checkpoint = _load(path, saved)
    data = dataset_of(checkpoint)
    if data is None:
        return np.zeros(0)
    y = data.test_y[:limit] if checkpoint.model.cond_dim else None
    return neg_elbo_per_image(checkpoint.model, data.test_x[:limit], y).numpy()


def scored_alike(models) -> bool:
    """Whether these models' neg-ELBOs are in the same units: one likelihood, said the same way (whether or
    not it was declared)."""
    return len({m.describe_likelihood().removesuffix(" (assumed: no likelihood was declared)") for m in models}) <= 1


def typicality_of(checkpoint: Checkpoint, x: torch.Tensor, label: int | None) -> tuple[str, bool]:
    """The sentence on how far one image (C, H, W) in [0, 1] is from the model's test images, and whether it is far."""
    from ..evaluation import neg_elbo_per_image
    from .sentences import typicality

    y = torch.tensor([int(label or 0)]) if checkpoint.model.cond_dim else None
    value = float(neg_elbo_per_image(checkpoint.model, x.unsqueeze(0), y)[0])
    return typicality(checkpoint.name, value, test_neg_elbos(str(checkpoint.path), stamp(checkpoint.path)))


GRID_GAP = 2  # pixels between the cells of Generate's grids, at the PNG's own size


@st.cache_data(max_entries=32, show_spinner=False)
def grid_png(path: str, saved: float, kind: str, side: int, label: int | None, cell: int = 28) -> bytes:
    """Generate's grid as a PNG: "manifold" (the whole 1- or 2-D latent space) or "plane" (the PCA
    plane of the encoded test set), side x side cells of at least `cell` pixels (whole multiples of
    the image: shown at its own size, every pixel is as wide as every other), GRID_GAP pixels apart.
    Kept: every visit to the page shows it."""
    from ..images import cell_side, png_bytes
    from ..latent import manifold_grid, plane_grid

    model = _load(path, saved).model
    if kind == "manifold":
        images = manifold_grid(model, side, label)
    else:
        centre, directions, spread = pca_plane(path, saved)
        images = plane_grid(model, centre, directions, spread, side, label)
    # small images' pixels outlined (see images.enlarge); grid.js maps the pointer with the gap
    return png_bytes(images, nrow=side, min_cell=cell_side(max(images.shape[-2:]), cell), padding=GRID_GAP)


@st.cache_data(max_entries=16, show_spinner=False)
def pca_plane(path: str, saved: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (D,), the top-2 principal directions (2, D) and their standard deviations (2,) of the
    encoded test set: the plane in which the data spreads most."""
    from ..latent import pca_2d

    mu, _, _ = encoded_test_set(path, saved, 10_000)
    if len(mu) < 3:
        dim = _load(path, saved).model.latent_dim
        return np.zeros(dim), np.eye(2, dim), np.ones(2)
    coords, centre, directions = pca_2d(mu)  # the same plane, signs and all, as the Latent map's PCA
    return centre, directions, coords.std(0, ddof=1)


def slow_map(path: str, saved: float, method: str, parameter: float, split: str, mu: np.ndarray):
    """A t-SNE or UMAP map of the codes `mu`: (coords, None) when kept on disk, else (None, task)
    with the computation asked of this session's MapQueue (one at a time, the newest waiting)."""
    from ..latent import compute_map, kept_map
    from ..runs.maps import MapQueue

    coords = kept_map(path, method, len(mu), parameter, split)
    if coords is not None:
        return coords, None
    queue = st.session_state.setdefault("map_queue", MapQueue())
    task = queue.request((path, saved, method, parameter, split, len(mu)),
                         lambda progress: compute_map(mu, path, method, parameter, split, progress))
    return None, task


MAP_LIBRARIES = {"tsne": "openTSNE", "umap": "umap-learn"}


def show_map_progress(task, what: str) -> None:
    """A progress bar for a map being computed, polled every second; the page reruns when it is
    ready. A failure is said in one line."""
    method = task.key[2]

    @st.fragment(run_every=1.0)
    @safety.boundary()  # a fragment reruns alone, outside the page's boundary
    def poll() -> None:
        if task.state in ("done", "replaced"):
            st.rerun()
        elif task.state == "failed":
            if task.error in ("ImportError", "ModuleNotFoundError"):
                st.error(f"The {what} needs {MAP_LIBRARIES.get(method, method)}, which is not installed here; "
                         "run `pip install -r requirements.txt` and restart the app.")
            elif task.error == "MemoryError":
                st.error(f"The machine ran out of memory computing the {what}; choose fewer points.")
            else:
                st.error(f"The {what} could not be computed; choose fewer points or another method.")
        else:
            waiting = " (after the map being computed now)" if task.state == "waiting" else ""
            st.progress(min(task.done / task.total, 1.0),
                        text=f"Computing the {what}{waiting}: {100 * task.done / task.total:.0f}%. It is kept, so it opens at once next time.")

    poll()


def from_link(key: str, parse, default):
    """A value the URL's ?key=... gives a page that is not a widget's (a widget's: from_url): `parse`d
    (ValueError, TypeError or IndexError for text it cannot use), else `default`."""
    try:
        return parse(st.query_params[key]) if key in st.query_params else default
    except (ValueError, TypeError, IndexError):
        return default


def fraction(text: str) -> float:
    """A parser for from_link: a finite number, clipped to 0 to 1."""
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(text)
    return min(max(value, 0.0), 1.0)


def z_to_link(z) -> str:
    """A latent vector as a link's ?z= (two places: what the sliders show)."""
    return ",".join(f"{v:.2f}" for v in z)


def z_from_link(text: str | None, dim: int, model_name: str, low: float = -3.0, high: float = 3.0) -> tuple[np.ndarray, str | None]:
    """A latent vector from a shared link's ?z=v1,v2,... and, when it cannot be used as it is,
    the one line that says what was done instead (zeros, or values set to the sliders' ends)."""
    if not text:
        return np.zeros(dim), None
    try:
        values = np.array([float(v) for v in text.split(",")])
    except ValueError:
        return np.zeros(dim), "The z in this link could not be read (it should be numbers separated by commas); starting from zero."
    if len(values) != dim:
        return np.zeros(dim), (f"The z in this link has {len(values)} value{'s' if len(values) != 1 else ''}, but {safety.plain(model_name)} has "
                               f"{dim} latent dimensions; starting from zero.")
    if not np.isfinite(values).all():
        return np.zeros(dim), "The z in this link holds values that are not finite numbers (nan or inf); starting from zero."
    clipped = np.clip(values, low, high)
    if (clipped != values).any():
        return clipped, f"Values of the z in this link outside {low:g} to {high:g} were set to the sliders' ends."
    return values, None


def from_url(key: str, parse, **default) -> dict:
    """Seed the widget `key` from the URL's ?key=value the first time this session meets it.

    `parse` turns the text into a valid widget value (raising ValueError otherwise; a bad value
    is ignored). Returns the keyword giving the widget its default (e.g. value=3 or index=0),
    or nothing when the session already holds its value, which Streamlit would otherwise warn about.
    """
    if key not in st.session_state and key in st.query_params:
        try:
            st.session_state[key] = parse(st.query_params[key])
        except (ValueError, TypeError, IndexError):
            pass
    return {} if key in st.session_state else default


def to_url(**values) -> None:
    """Keep selections in the URL, so the current view can be shared as a link."""
    for key, value in values.items():
        st.query_params[key] = str(value)


def in_range(low: int, high: int):
    """A parser for from_url: an integer from low to high."""
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(text)
        return value
    return parse


def one_of(options):
    """A parser for from_url and from_link: one of `options` (compared as text)."""
    def parse(text: str):
        for option in options:
            if str(option) == text:
                return option
        raise ValueError(text)
    return parse


def feature_classifier(checkpoint: Checkpoint):
    """The feature classifier of the checkpoint's dataset for the Fréchet distance, with its info;
    trained here with a progress bar the first time (seconds to a minute), then read from disk.
    None when the dataset is not available or has a single class."""
    from ..evaluation import find_classifier

    data = dataset_of(checkpoint)
    if data is None or data.num_classes < 2:
        return None
    key = tuple(sorted(asdict(checkpoint.config.data).items()))
    if find_classifier(checkpoint.config.data) is None:  # trained outside the cache: a cached function draws nothing
        from ..evaluation import get_classifier

        bar = st.progress(0.0, text=f"Training the feature classifier for {data.name} (once; it is kept on disk)…")
        get_classifier(checkpoint.config.data, lambda step, total: bar.progress(
            step / total, text=f"Training the feature classifier for {data.name} (once): step {step} of {total}"))
        bar.empty()
    return _classifier(key)


@st.cache_resource(max_entries=8, show_spinner=False)
def _classifier(config_key: tuple):
    """The classifier from disk (feature_classifier trained it there first), one object for every session."""
    from ..config import DataConfig
    from ..evaluation import get_classifier

    return get_classifier(DataConfig(**dict(config_key)))


EVALUATIONS_KEPT = 32
_evaluated: OrderedDict = OrderedDict()  # (path, saved, k, test images, classifier) -> (metrics, gaps), newest last
_evaluating: dict[tuple, threading.Lock] = {}  # one computation per key at a time
_evaluations_lock = threading.Lock()


def evaluation(path: str, saved: float, k: int, test_images: int | None, classifier_key: str | None,
               classifier=None, progress=None) -> tuple[dict, np.ndarray] | None:
    """Test metrics of a checkpoint (see vae_explorer.evaluation) and its per-image ELBO-IWAE gaps,
    kept for every session of this server (the 32 newest). Not st.cache_data: the page's progress
    bar, told by `progress(fraction, what)`, belongs to the session that computes, and a cached
    function would replay it into others. A second session asking for the same figures meanwhile
    waits for the first's instead of computing them again."""
    from ..evaluation import evaluate_with_gaps, first_test_images

    key = (path, saved, k, test_images, classifier_key)
    with _evaluations_lock:
        if key in _evaluated:
            _evaluated.move_to_end(key)
            return _evaluated[key]
        busy = _evaluating.setdefault(key, threading.Lock())
    if busy.locked() and progress is not None:
        progress(0.0, "the same figures are being computed for another visitor; waiting for them")
    with busy:
        with _evaluations_lock:
            if key in _evaluated:
                return _evaluated[key]
        checkpoint = _load(path, saved)
        data = dataset_of(checkpoint)
        if data is None:
            return None
        model, info = classifier if classifier is not None else (None, None)
        result = evaluate_with_gaps(checkpoint.model, first_test_images(data, test_images), k=k,
                                    beta=checkpoint.config.train.beta, classifier=model, classifier_info=info,
                                    progress=progress)
        with _evaluations_lock:
            _evaluated[key] = result
            while len(_evaluated) > EVALUATIONS_KEPT:
                _evaluated.popitem(last=False)
            _evaluating.pop(key, None)
    return result

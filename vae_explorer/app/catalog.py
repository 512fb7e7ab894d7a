"""The models this server offers and how a page gets one: the catalogue (shipped checkpoints, then
those trained or uploaded here), loading (one shared read-only object per saved checkpoint), the
sidebar's picker and upload, and each model's dataset.

Models load through `st.cache_resource` (one shared object in eval mode, never mutated; anything
that trains works on its own copy). `stamp` changes whenever a checkpoint is saved again: the
cached work of `cached.py` is keyed by it, so pages never handle cache keys.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import streamlit as st

from ..checkpoints import Checkpoint, load_checkpoint
from ..data import Dataset, load_dataset
from ..data.access import uploaded_data
from ..errors import VaeExplorerError
from ..paths import runs_dir, shipped_checkpoints_dir
from . import safety

SHIPPED_DIR = Path(os.environ.get("VAE_EXPLORER_CHECKPOINTS") or shipped_checkpoints_dir())
TRAINED_DIR = runs_dir()  # $VAE_EXPLORER_RUNS, or `vae-explorer app --runs-dir`
DEFAULT_MODEL = "digits-mlp"
MODEL_KEY = "model"  # session-state key and query parameter of the chosen checkpoint


@dataclass(frozen=True)
class ModelRef:
    label: str  # what the picker shows
    path: str


def available_models(latent: str = "vector") -> list[ModelRef]:
    """Shipped checkpoints first, then those trained or uploaded here (the runs folder), newest first.
    `latent`: "vector" for the models whose z is a vector (every page but Latent diffusion), "spatial" for
    those whose z is a map (architecture spatial), "any" for all."""
    refs = []
    for folder, group in ((SHIPPED_DIR, "shipped"), (TRAINED_DIR, "trained")):
        if not folder.is_dir():
            continue
        # a checkpoint folder, or one in a group folder (uploads go to runs/uploaded/NAME); hidden ones are partial
        found = [
            p
            for p in (*folder.glob("*/config.json"), *folder.glob("*/*/config.json"))
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)
        ]
        found.sort(
            key=lambda p: (
                p.parent.name != DEFAULT_MODEL,
                -p.stat().st_mtime if group == "trained" else 0,
                p.parent.name,
            )
        )
        refs += [
            ModelRef(f"{p.parent.name}  ({_origin(p.parent, group)})", str(p.parent))
            for p in found
            if latent == "any" or spatial_latent(p.parent) == (latent == "spatial")
        ]
    return refs


def spatial_latent(path: str | Path) -> bool:
    """Whether a checkpoint's z is a map (architecture spatial), from its config.json alone; a config that
    cannot be read counts as a vector model's, so the picker offers it and loading it says what is wrong."""
    from ..models.architectures import SPATIAL_ARCHITECTURES

    try:
        return _config_of(str(path), stamp(path)).model.architecture in SPATIAL_ARCHITECTURES
    except (VaeExplorerError, OSError, ValueError):
        return False


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
        only_beta = (
            same_data and config.model == mine.model and config.train.beta != mine.train.beta
        )  # beta = 1 against 4
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
    found = [
        (p.stat().st_mtime, p.name, read_training(p))
        for p in TRAINED_DIR.iterdir()
        if p.is_dir() and not p.name.startswith(".")
    ]

    def unfinished(training: dict) -> bool:
        stopped_early = (
            training.get("status") == "stopped"
            and isinstance(training.get("epochs_done"), int)
            and isinstance(training.get("target_epochs"), int)
            and training["epochs_done"] < training["target_epochs"]
        )
        return interrupted(training) or stopped_early

    busy = training_now()
    return [
        (name, training)
        for _, name, training in sorted(found, reverse=True)
        if unfinished(training) and (TRAINED_DIR / name).resolve() not in busy
    ]


def stamp(path: str | Path) -> float:
    """Changes whenever the checkpoint is saved again: part of every cache key."""
    path = Path(path)
    return max(
        (path / f).stat().st_mtime
        for f in ("config.json", "model.safetensors", "onnx_encoder.onnx", "onnx_decoder.onnx", "epochs.safetensors")
        if (path / f).exists()
    )


@st.cache_resource(max_entries=12, show_spinner="Loading the model…")
def _load(path: str, saved: float) -> Checkpoint:
    checkpoint = load_checkpoint(path)
    checkpoint.model.requires_grad_(False)  # shared by every session: read-only
    return checkpoint


def load(path: str | Path) -> Checkpoint:
    return _load(str(path), stamp(path))


def select_model() -> Checkpoint:
    """The sidebar model picker shared by every page; the choice survives page changes and is
    kept in the URL (?model=NAME) so a view can be shared."""
    refs = available_models()
    if not refs:
        st.error(
            "No checkpoints were found, neither shipped ones nor trained ones; train one with `vae-explorer train`."
        )
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
            st.warning(
                f"This link asks for a model called {safety.plain(shown)}, which this server does not have; showing "
                f"{safety.plain(by_name[wanted].label.split('  ')[0])} instead (pick another in the sidebar)."
            )
    names = list(by_name)
    name = st.sidebar.selectbox(
        "Model",
        names,
        index=names.index(wanted),
        format_func=lambda n: by_name[n].label,
        help="Shipped checkpoints and those trained or uploaded on this server.",
    )
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
        upload = st.file_uploader(
            "A zipped checkpoint folder: config.json with model.safetensors, or an imported ONNX pair's folder",
            type=["zip"],
            key="upload_checkpoint",
        )
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
            st.info(
                "This uploaded model was trained on an image folder of its own, which this server does not have: "
                "there are no test images to show here."
            )
            return None
    try:
        return _dataset(tuple(sorted(asdict(config).items())))
    except VaeExplorerError as exc:
        st.warning(f"The test images are not available: {safety.say(exc)}")
        return None


def class_names(checkpoint: Checkpoint) -> list[str]:
    names = checkpoint.config.model.class_names
    return list(names) if names else [str(i) for i in range(checkpoint.config.model.num_classes or 0)]


def prior_name(checkpoint: Checkpoint) -> str:
    """How the page names the model's prior p(z)."""
    config = checkpoint.config.model
    if config.prior == "vamp":
        return f"its VampPrior ({config.pseudo_inputs} pseudo-inputs)"
    if config.top_latent_dim:
        return "its two-level prior (z2 ~ N(0, I), then z ~ p(z|z2))"
    return "N(0, I)"


def scored_alike(models) -> bool:
    """Whether these models' neg-ELBOs are in the same units: one likelihood, said the same way (whether or
    not it was declared)."""
    return len({m.describe_likelihood().removesuffix(" (assumed: no likelihood was declared)") for m in models}) <= 1

"""How a run learned, epoch by epoch: its latent map animated over the epochs (slider and play),
the decodes of the same 8 prior draws after each epoch, and both exported for slides. Shown on the
Train page for the run in progress and on the Learn page for any checkpoint that kept its epoch
frames (epochs.safetensors; latent/epochs.py)."""

from __future__ import annotations

import streamlit as st
import torch

from ..images import gif_bytes, mp4_bytes, png_bytes, scatter_frames
from . import chrome
from .figures import epochs_map_figure
from .live import CLASS_COLOURS


def samples_png(frame: dict) -> bytes:
    """A frame's 8 fixed-z decodes as one PNG row (a live job sends them encoded already)."""
    if "samples_png" in frame:
        return frame["samples_png"]
    return png_bytes(torch.from_numpy(frame["samples"]).float() / 255.0, nrow=len(frame["samples"]), min_cell=48)


def epoch_replay(frames: list[dict], names: list[str], key: str, animate: bool = True) -> None:
    """The map animation with the decodes of the same prior draws above it, one slider and one play
    button for both, and its GIF and MP4 (when `animate`: a running job shows it when it ends); until
    then the decodes after a chosen epoch."""
    if animate:
        left, right = st.columns([3, 1], gap="medium")
        chrome.chart(
            epochs_map_figure(frames, names, CLASS_COLOURS, [samples_png(f) for f in frames]), f"{key}_map_epochs", left
        )
        right.caption(
            "Top: 8 fixed draws of z from the prior, decoded by the model as it was after the epoch on the slider "
            "(0: before training). Below them: the test images' codes on that epoch's top-2 PCA plane. Press "
            "play: classes pull apart as the code learns, and the draws turn into pictures."
        )
        exports = left.columns(2)
        exports[0].download_button(
            "Download the map's epochs (GIF)",
            lambda: gif_bytes(scatter_frames(frames, CLASS_COLOURS), min_cell=0, milliseconds=500, bounce=False),
            "training-map.gif",
            "image/gif",
            key=f"{key}_map_gif",
            on_click="ignore",
        )
        exports[1].download_button(
            "Download the map's epochs (MP4)",
            lambda: mp4_bytes(scatter_frames(frames, CLASS_COLOURS), min_cell=0, fps=2, bounce=False),
            "training-map.mp4",
            "video/mp4",
            key=f"{key}_map_mp4",
            on_click="ignore",
        )
        return
    left, right = st.columns([3, 2])
    left.caption("The latent map of every epoch, with play, appears here when the training ends.")
    with right:
        epoch = st.select_slider(
            "Samples from the same z after epoch",
            [f["epoch"] for f in frames],
            value=frames[-1]["epoch"],
            key=f"{key}_samples_epoch_{len(frames)}",
        )  # a new epoch shows itself: a new widget
        shown = next(f for f in frames if f["epoch"] == epoch)
        st.image(
            samples_png(shown),
            width="stretch",
            output_format="PNG",
            caption="8 fixed draws of z from the prior, decoded by the model as it was after that epoch (0: before training)",
        )

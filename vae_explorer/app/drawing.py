"""The drawing handed between pages: the session's last drawing on Reconstruct's pad, offered as an
input by the pages that take an image (kept in the session, never on disk)."""

from __future__ import annotations

import streamlit as st

from ..checkpoints import Checkpoint

DRAWING_KEY = "drawing"  # the session's last drawing on the Reconstruct pad, offered by other pages


def keep_drawing(checkpoint: Checkpoint, image, label: int | None) -> None:
    """Remember the session's drawing (C, H, W) for the pages that take an image as input."""
    st.session_state[DRAWING_KEY] = {
        "model": str(checkpoint.path),
        "shape": list(checkpoint.config.model.image_shape),
        "image": image,
        "label": label,
    }


def kept_drawing(checkpoint: Checkpoint):
    """The session's drawing if it fits this model's images ((C, H, W) tensor, class), else (None, None)."""
    kept = st.session_state.get(DRAWING_KEY)
    if not kept or kept["shape"] != list(checkpoint.config.model.image_shape):
        return None, None
    return kept["image"], kept["label"]

"""The latent slider panel (sliders.js): one slider per dimension, decoded in the browser while it
is dragged, and what the browser sent back (values, the released drag's path, a class)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from .. import runtime


def pending_values(key: str, version: int) -> tuple[list[float] | None, int]:
    """The values the browser last sent for this panel (None if they predate `version`) and their seq."""
    sent = (st.session_state.get(key) or {}).get("z")
    if not sent or sent.get("version") != version:
        return None, 0
    return [float(v) for v in sent["values"]], int(sent.get("seq", 0))


def pending_drag(key: str, version: int, dim: int) -> list[list[float]] | None:
    """The path of the drag the panel `key` last released: the latent vector at 15 frames a second,
    (frames, dim), or None when the last message carried none (or predates `version`)."""
    sent = (st.session_state.get(key) or {}).get("z")
    if not sent or sent.get("version") != version or not isinstance(sent.get("drag"), list):
        return None
    try:
        path = [[float(v) for v in frame] for frame in sent["drag"][:150]]
    except (TypeError, ValueError):
        return None
    return path if path and all(len(frame) == dim and all(np.isfinite(frame)) for frame in path) else None


def pending_label(key: str, version: int, classes: int) -> int | None:
    """The class the panel `key` switched to (a conditional model), unless it predates `version`."""
    sent = (st.session_state.get(key) or {}).get("label")
    try:
        if sent and sent.get("version") == version and 0 <= int(sent["value"]) < classes:
            return int(sent["value"])
    except (TypeError, ValueError, KeyError):
        pass
    return None


def latent_sliders(
    key: str,
    dims: list[dict],
    values: list[float],
    version: int,
    image: np.ndarray,
    seq: int,
    live: dict | None = None,
    picture_px: int = 280,
    low: float = -3.0,
    high: float = 3.0,
    classes: list[str] | None = None,
    label: int | None = None,
    label_seq: int = 0,
    caption: str | None = None,
    twin: dict | None = None,
) -> None:
    """Mount the panel. `dims`: one dict per slider, in display order, with `index`, `label`,
    `title` (tooltip) and `collapsed`; `values`: the latent vector Python holds (set into the
    sliders whenever `version` changes); `image`: the picture decoded from the current values;
    `live`: what `browser_decoding` returned, or None to decode every value on the server.
    `classes` (a conditional model's class names) adds a class picker that decodes at once in the
    page; `label` is Python's class, taken by the panel whenever `label_seq` changes. `twin` (the
    Compare page) draws a second model's decode of the same z beside the first: {"image": its
    picture, "live": its `browser_decoding(..., field="live_twin")` spec, "caption"}; `caption`
    names the first."""
    runtime._declare("latent_sliders", "sliders")[0](
        key=key,
        data={
            "dims": dims,
            "values": [float(v) for v in values],
            "version": version,
            "image": runtime.png_data_uri(image),
            "shape": list(image.shape[:2]),
            "seq": seq,
            "picture_px": picture_px,
            "low": low,
            "high": high,
            "live": live,
            "classes": classes,
            "label": label,
            "label_seq": label_seq,
            "caption": caption,
            "twin": None
            if twin is None
            else {
                "image": runtime.png_data_uri(twin["image"]),
                "live": twin.get("live"),
                "caption": twin.get("caption"),
                "shape": list(twin["image"].shape[:2]),
            },
        },
        default={"z": None, "live": None, "label": None, "live_twin": None},
        on_z_change=lambda: None,
        on_live_change=lambda: None,
        on_label_change=lambda: None,
        on_live_twin_change=lambda: None,
    )

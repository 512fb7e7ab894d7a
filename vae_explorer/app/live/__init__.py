"""A latent-space slider panel that reports values *while* a slider is dragged.

`st.slider` only sends its value when the mouse is released, so the picture cannot follow a
drag. This custom component (Streamlit components v2; sliders.js and sliders.css beside this
file) shows the decoded picture above one range input per latent dimension and sends
`{"values", "version", "seq"}` on every
`input` event, with flow control: it sends the next value only after Python has answered the
previous ones (at most two values in flight; each answer carries its `seq`) or 250 ms have
passed, so a fast drag never queues up a backlog of reruns. With one value in flight a round trip
through Streamlit and the browser (~55 ms here, ~5 ms of it Python) capped a drag at ~15
pictures a second; two in flight gave ~30. Python decodes inside an `st.fragment`, so only this panel reruns.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import streamlit as st

_HERE = Path(__file__).resolve().parent
_COMPONENT = st.components.v2.component("vae_explorer.latent_sliders", css=(_HERE / "sliders.css").read_text(),
                                         js=(_HERE / "sliders.js").read_text())


def png_data_uri(image: np.ndarray) -> str:
    """A small image (H, W) or (H, W, 3) uint8 as a PNG data URI; the browser scales it up."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def pending_values(key: str, version: int) -> tuple[list[float] | None, int]:
    """The values the browser last sent for this panel (None if they predate `version`) and their seq."""
    sent = (st.session_state.get(key) or {}).get("z")
    if not sent or sent.get("version") != version:
        return None, 0
    return [float(v) for v in sent["values"]], int(sent.get("seq", 0))


def latent_sliders(key: str, dims: list[dict], values: list[float], version: int, image: np.ndarray, seq: int,
                   picture_px: int = 280, low: float = -3.0, high: float = 3.0) -> None:
    """Mount the panel. `dims`: one dict per slider, in display order, with `index`, `label`,
    `title` (tooltip) and `collapsed`; `values`: the latent vector Python holds (set into the
    sliders whenever `version` changes); `image`: the picture decoded from the current values."""
    _COMPONENT(
        key=key,
        data={"dims": dims, "values": [float(v) for v in values], "version": version, "image": png_data_uri(image),
              "seq": seq, "picture_px": picture_px, "low": low, "high": high},
        default={"z": None},
        on_z_change=lambda: None,
    )

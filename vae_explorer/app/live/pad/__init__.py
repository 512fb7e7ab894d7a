"""The drawing pad (pad.js): strokes encoded and decoded in the browser as they are drawn, or on the
server after each stroke; what the pad sent, as the model's input."""

from __future__ import annotations

import base64

import numpy as np
import streamlit as st

from .. import runtime


def pending_drawing(key: str, image_shape):
    """The drawing the pad `key` last sent, as the model's input (C, H, W) float32 in [0, 1] (each
    pixel a whole number of 255ths, as the page encoded it), and its sequence number; (None, 0)
    when there is none, it was cleared, or it does not fit the model (a pad of another model)."""
    sent = (st.session_state.get(key) or {}).get("drawing") or {}
    channels, height, width = (int(v) for v in image_shape)
    try:
        raw = base64.b64decode(sent.get("pixels") or "", validate=True)
        seq = int(sent.get("seq", 0))
    except (ValueError, TypeError):
        return None, 0
    if len(raw) != height * width or not sent.get("strokes"):
        return None, seq
    import torch

    pixels = np.frombuffer(raw, np.uint8).reshape(height, width).astype(np.float32) / 255.0
    return torch.from_numpy(np.repeat(pixels[None], channels, 0)), seq


def drawing_result(encoding, seq: int) -> dict | None:
    """What the pad draws when the server encoded the stroke `seq` (an `Encoding`, or None)."""
    if encoding is None:
        return None
    from ....images import to_uint8

    return {
        "seq": seq,
        "mu": [float(v) for v in encoding.mean],
        "sigma": [float(v) for v in encoding.stddev],
        "input": runtime.png_data_uri(_picture(to_uint8(encoding.image)[0])),
        "recon": runtime.png_data_uri(_picture(to_uint8(encoding.reconstruction)[0])),
    }


def _picture(hwc: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 as (H, W) or (H, W, 3), as PNG wants it."""
    return hwc[..., 0] if hwc.shape[-1] == 1 else hwc


def drawing_pad(
    key: str,
    shape,
    decoder: dict | None,
    encoder: dict | None,
    result: dict | None,
    pad_px: int = 280,
    label: int | None = None,
    brush: float = 2.0,
) -> None:
    """Mount the drawing pad: strokes in white on black, in the model's pixels; with both graphs in
    the page, every stroke is encoded and decoded as it is drawn (the input as the model sees it,
    mu and sigma per dimension, the reconstruction) and Python hears the drawing when a stroke
    ends. Without them Python's `result` (seq, mu, sigma, input and reconstruction as data URIs)
    is drawn after each stroke. `brush`: the default line width in the model's pixels."""
    runtime._declare("drawing_pad", "pad")[0](
        key=key,
        data={
            "shape": [int(v) for v in shape],
            "pad_px": pad_px,
            "decoder": decoder,
            "encoder": encoder,
            "result": result,
            "label": label,
            "brush": brush,
        },
        default={"drawing": None, "live": None, "live_encoder": None},
        on_drawing_change=lambda: None,
        on_live_change=lambda: None,
        on_live_encoder_change=lambda: None,
    )

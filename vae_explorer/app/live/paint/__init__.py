"""The latent painter (paint.js): a brush on one channel of a spatial latent, decoded in the browser as
the hand moves (a window around each change) or on the server when a stroke ends; what the page sent,
as dabs latent/spatial.paint_latent applies."""

from __future__ import annotations

import base64
import math

import numpy as np
import streamlit as st

from .. import runtime

MAX_RADIUS, MAX_AMOUNT = 16.0, 10.0  # beyond the page's own brush (8 positions, ±3): a hand-made request


def pending_dabs(key: str, version: str, shape, copying: bool = False) -> tuple[list[tuple] | None, int]:
    """The dabs (channel, row, col, radius, amount) the painter `key` last sent for the latent `version`
    of `shape` (C, h, w), and their sequence number; (None, 0) when there are none for it. What does not
    fit (another latent's, a channel or brush the page cannot make, too many, a copying dab (channel -1,
    amount in (0, 1]) without `copying`) is None too: the painting is then Python's last one."""
    from ....latent.spatial import MAX_DABS

    sent = (st.session_state.get(key) or {}).get("dabs") or {}
    if sent.get("version") != version or not isinstance(sent.get("dabs"), list):
        return None, 0
    channels, h, w = (int(v) for v in shape)
    dabs = sent["dabs"]
    if len(dabs) > MAX_DABS:
        return None, 0
    checked = []
    for one in dabs:
        if not isinstance(one, list) or len(one) != 5 or not all(isinstance(v, (int, float)) for v in one):
            return None, 0
        try:
            channel, row, col, radius, amount = (float(v) for v in one)
        except OverflowError:  # an integer too large for a float
            return None, 0
        if not all(math.isfinite(v) for v in (row, col, radius, amount)):
            return None, 0
        copy = channel == -1 and copying and 0 < amount <= 1
        if not (copy or channel in range(channels)) or not 0 < radius <= MAX_RADIUS or abs(amount) > MAX_AMOUNT:
            return None, 0
        if not (-radius <= row <= h + radius and -radius <= col <= w + radius):
            return None, 0
        checked.append((int(channel), row, col, radius, amount))
    try:
        return checked, int(sent.get("seq", 0))
    except (TypeError, ValueError):
        return None, 0


def latent_painter(
    key: str,
    latent: np.ndarray,
    version: str,
    factor: int,
    reach: int,
    image: np.ndarray,
    dabs: list[tuple],
    seq: int,
    live: dict | None,
    picture_px: int = 320,
    source: np.ndarray | None = None,
) -> None:
    """Mount the painter on the latent (C, h, w) float32 `latent`, whose pictures are `factor` times its
    side; `reach`: latent positions a change reaches in the picture (latent.spatial.receptive_radius).
    `image` (H, W, 3) uint8 is Python's picture of the latent with `dabs` painted (the painting `seq`);
    `live` the decoder's spec for the browser, or None when Python decodes; `source` another photo's latent
    of the same shape, which the copying brush takes from."""
    from ....latent.spatial import MAX_DABS

    runtime._declare("latent_painter", "paint")[0](
        key=key,
        data={
            "version": version,
            "latent": _base64(latent),
            "shape": [int(v) for v in latent.shape],
            "factor": int(factor),
            "reach": int(reach),
            "image": runtime.png_data_uri(image),
            "seq": int(seq),
            "dabs": [list(d) for d in dabs],
            "picture_px": int(picture_px),
            "max_dabs": MAX_DABS,
            "live": live,
            "source": None if source is None else _base64(source),
        },
        default={"dabs": None, "live": None},
        on_dabs_change=lambda: None,
        on_live_change=lambda: None,
    )


def _base64(latent: np.ndarray) -> str:
    """A latent's float32 values (little-endian, C order) as base64, as paint.js reads them."""
    return base64.b64encode(np.ascontiguousarray(latent, dtype="<f4").tobytes()).decode("ascii")

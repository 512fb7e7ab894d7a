"""The walk from A to B (walk.js): a slider over t, linear or slerp, decoded in the browser."""

from __future__ import annotations

import numpy as np
import streamlit as st

from .. import runtime


def pending_walk(key: str, version: int) -> tuple[float, str, int] | None:
    """(t, method, seq) the browser last sent for the walk panel `key`, unless it predates `version`."""
    sent = (st.session_state.get(key) or {}).get("t")
    if not sent or sent.get("version") != version or sent.get("method") not in ("linear", "slerp"):
        return None
    return min(max(float(sent["t"]), 0.0), 1.0), sent["method"], int(sent.get("seq", 0))


def interpolation_walk(
    key: str,
    a: np.ndarray,
    b: np.ndarray,
    version: int,
    t: float,
    method: str,
    image: np.ndarray,
    seq: int,
    live: dict | None = None,
    picture_px: int = 240,
) -> None:
    """Mount the walk from A to B: a slider over t and a linear/slerp choice, and the picture at t
    (`image`, Python's decode of the point at t). `version` changes with the end points."""
    runtime._declare("interpolation_walk", "walk")[0](
        key=key,
        data={
            "a": [float(v) for v in a],
            "b": [float(v) for v in b],
            "version": version,
            "t": float(t),
            "method": method,
            "image": runtime.png_data_uri(image),
            "shape": list(image.shape[:2]),
            "seq": seq,
            "picture_px": picture_px,
            "live": live,
        },
        default={"t": None, "live": None},
        on_t_change=lambda: None,
        on_live_change=lambda: None,
    )

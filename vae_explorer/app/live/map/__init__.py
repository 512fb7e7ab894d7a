"""The latent map (map.js): the page draws every dot, and decodes what the pointer is on."""

from __future__ import annotations

import base64
import hashlib

import numpy as np
import streamlit as st

from .. import runtime

# Ten colours a colour-blind reader can tell apart (Paul Tol's "muted" scheme, its pale grey
# replaced by a dark grey that shows on white); an eleventh class and on repeat them.
CLASS_COLOURS = [
    "#332288",
    "#88ccee",
    "#44aa99",
    "#117733",
    "#999933",
    "#ddcc77",
    "#cc6677",
    "#882255",
    "#aa4499",
    "#555555",
]


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def map_pick(key: str, n: int, planar: bool, classes: int) -> dict | None:
    """What the map `key` last had clicked, checked against the map shown now: {"index": i} for a
    dot, {"x", "y", "label"} for an empty place of a PCA map; None when nothing (valid) is."""
    picked = (st.session_state.get(key) or {}).get("picked") or {}
    try:
        if "index" in picked:
            index = int(picked["index"])
            return {"index": index} if 0 <= index < n else None
        if planar and "x" in picked:
            x, y, label = float(picked["x"]), float(picked["y"]), int(picked.get("label", 0))
            return (
                {"x": x, "y": y, "label": label if 0 <= label < classes else 0} if np.isfinite([x, y]).all() else None
            )
    except (TypeError, ValueError):
        pass
    return None


def latent_map(
    key: str,
    coords: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    method: str,
    axes: list[str],
    shape: tuple[int, int],
    plane: tuple[np.ndarray, np.ndarray] | None = None,
    mu: np.ndarray | None = None,
    star=None,
    picked: dict | None = None,
    live: dict | None = None,
    hint: str = "",
    height: int = 640,
    picture_px: int = 128,
    n_test: int | None = None,
    scale: float = 1.0,
) -> None:
    """Mount the latent map: `coords` (N, 2) coloured by `labels` (N,) with one legend entry per
    name. `plane` (mean (D,), directions (2, D)) makes every place of a PCA map decodable; `mu`
    (N, D) lets the browser decode each dot's posterior mean (both only with `live`). Dots from
    `n_test` on are training images (a map of every image). The points
    travel once per tab: after the page says it holds them, only their digest is sent."""
    coords = np.asarray(coords, np.float32)
    labels = np.asarray(labels).astype("<u2" if len(names) > 256 else np.uint8)
    # the means let the page decode each dot; past 10,000 dots they travel as float16 (half the bytes)
    mu = None if mu is None or live is None else np.asarray(mu, np.float16 if len(mu) > 10_000 else np.float32)
    digest = hashlib.sha1(coords.tobytes() + labels.tobytes() + (mu.tobytes() if mu is not None else b"")).hexdigest()[
        :16
    ]
    held = st.session_state.setdefault("map_clouds", set())
    report = (st.session_state.get(key) or {}).get("held") or {}
    if report.get("id"):
        (held.add if report.get("ok") else held.discard)(report["id"])
    cloud = {"id": digest}
    if digest not in held:
        cloud |= {
            "coords": _b64(coords),
            "labels": _b64(labels),
            "label_bytes": labels.itemsize,
            "mu": None if mu is None else _b64(mu),
            "mu_bytes": None if mu is None else mu.itemsize,
        }
    runtime._declare("latent_map", "map")[0](
        key=key,
        data={
            "cloud": cloud,
            "names": names,
            "colours": CLASS_COLOURS,
            "method": method,
            "axes": axes,
            "shape": list(shape),
            "plane": None
            if plane is None
            else {"mean": [float(v) for v in plane[0]], "directions": np.asarray(plane[1]).tolist()},
            "star": None if star is None else [float(v) for v in star],
            "picked": picked,
            "live": live,
            "hint": hint,
            "height": height,
            "picture_px": picture_px,
            "n_test": len(coords) if n_test is None else n_test,
            "scale": scale,
        },  # larger dots and axis text (presentation mode)
        default={"picked": None, "held": None, "live": None},
        on_picked_change=lambda: None,
        on_held_change=lambda: None,
        on_live_change=lambda: None,
    )

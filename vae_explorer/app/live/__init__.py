"""Pictures that follow the hand: components that decode in the browser.

The browser runs the model's decoder itself (its ONNX graph in onnxruntime-web, live.js): every
slider `input` event is decoded and drawn in the page, with no round trip, and Python hears only
the released value. The runtime is an npm package (package.json and package-lock.json here;
`npm ci` in this folder puts it in node_modules/, git-ignored) that the app serves itself: this
folder is the components' asset_dir, declared in vae_explorer/pyproject.toml, and Streamlit
serves it under /_stcore/bidi-components/. Where that is missing (Node.js was not there at
setup, the app runs from a folder Streamlit does not know as an installed package) or the browser
cannot run it (no WebAssembly, a failed load), the panels decode on the server, one round trip
per value, and the page says so in one line.

Server round trips (the fallback) are flow-controlled in the browser: the next value goes only
after Python has answered the previous ones (at most two in flight) or 250 ms have passed, so a
fast drag never queues up reruns; Python decodes inside an `st.fragment`, so only the panel reruns.
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import numpy as np
import streamlit as st

from ...checkpoints import Checkpoint
from ...errors import VaeExplorerError
from .. import catalog

_HERE = Path(__file__).resolve().parent
PROJECT = "vae-explorer"  # [project] name in vae_explorer/pyproject.toml, which declares this folder
RUNTIME_FILES = (
    "node_modules/onnxruntime-web/dist/ort.wasm.bundle.min.mjs",
    "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
)
INSTALL_HINT = "run `npm ci --prefix vae_explorer/app/live` in the clone (the README's setup does) and restart the app"


_DECLARED: dict[tuple[int, str], tuple] = {}


def _declare(name: str, js: str, css: str) -> tuple:
    """(component, served): served from this folder when Streamlit knows it as an installed
    package's asset_dir (then live.js and the runtime can be imported beside it); otherwise
    inline, decoding on the server only. Declared in the running server (a script run), once."""
    from streamlit.runtime import Runtime

    key = (id(Runtime.instance()) if Runtime.exists() else 0, name)
    if key not in _DECLARED:
        try:
            _DECLARED[key] = st.components.v2.component(f"{PROJECT}.{name}", js=js, css=css), True
        except Exception:  # no manifest registered for this folder: a clone that was not pip-installed
            _DECLARED[key] = (
                st.components.v2.component(
                    f"vae_explorer.{name}", js=(_HERE / js).read_text(), css=(_HERE / css).read_text()
                ),
                False,
            )
    return _DECLARED[key]


def runtime_installed() -> bool:
    return all((_HERE / f).is_file() for f in RUNTIME_FILES)


def png_data_uri(image: np.ndarray) -> str:
    """A small image (H, W) or (H, W, 3) uint8 as a PNG data URI; the browser scales it up."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@st.cache_resource(max_entries=8, show_spinner="Preparing the decoder for the browser…")
def _browser_decoder(path: str, saved: float, _checkpoint: Checkpoint) -> dict:
    """What the page needs to decode this model itself: its weights' digest, image shape, class
    count and the ONNX graph (base64). Made once per saved checkpoint, shared by all sessions."""
    from ...checkpoints import decoder_onnx, weights_sha1

    onnx_path = decoder_onnx(_checkpoint)
    model = _checkpoint.model
    graph = onnx_path.read_bytes()
    return {
        "model": weights_sha1(path)[:16],
        "graph": hashlib.sha1(graph).hexdigest()[:16],
        "shape": list(_checkpoint.config.model.image_shape),
        "cond_dim": int(model.cond_dim),
        "onnx": base64.b64encode(graph).decode("ascii"),
    }


def browser_decoding(
    key: str, checkpoint: Checkpoint, label: int | None = None, field: str = "live"
) -> tuple[dict | None, str | None]:
    """The decoder spec to hand the component `key` (None: decode on the server) and, when the
    server decodes, the one line that says why. The graph travels only until the browser reports
    (in the component's `field`: "live", or "live_twin" for a panel's second model) that it holds
    a session of these weights."""
    if not runtime_installed():
        return (
            None,
            f"Pictures are decoded on the server: the browser decoder (onnxruntime-web) is not installed; {INSTALL_HINT}.",
        )
    if not _declare("latent_sliders", "sliders.js", "sliders.css")[1]:
        return None, (
            "Pictures are decoded on the server: this app was not started from an installed vae-explorer; "
            "run `pip install -e .` in the clone and restart the app."
        )
    try:
        decoder = _browser_decoder(str(checkpoint.path), catalog.stamp(checkpoint.path), checkpoint)
    except VaeExplorerError as error:  # an export that fails: the server decodes
        return (
            None,
            f"Pictures are decoded on the server: this model's decoder could not be prepared for the browser ({error}).",
        )
    except (ImportError, RuntimeError):  # the exporter's own words may name server files: not shown
        return None, (
            "Pictures are decoded on the server: this model's decoder could not be exported to ONNX for the "
            "browser (`vae-explorer export-onnx --model-path MODEL` shows why)."
        )
    said = _browser_said(key, field, decoder["model"])
    if said.get("ok") is False:
        return (
            None,
            f"This browser could not run the decoder ({said.get('reason') or 'unknown reason'}); "
            "pictures are decoded on the server.",
        )
    return _spec(decoder, said) | {"label": label}, None


def _browser_said(key: str, field: str, model: str) -> dict:
    """What the browser last reported (in the component's `field`) of the graph `model`. Kept for the
    session, since a panel's own state goes when the page changes: {graph digest: its last report}."""
    held = st.session_state.setdefault("live_models", {})
    report = (st.session_state.get(key) or {}).get(field) or {}
    if report.get("model"):
        held[report["model"]] = report
    return held.get(model) or {}


def _spec(graph: dict, said: dict) -> dict:
    """A graph's spec for the page: its bytes only when the browser says it needs them. A browser
    keeps the graphs it was sent (IndexedDB, by the digest of their bytes: live.js), so a new tab or
    a reload makes its session from its own copy, and a graph crosses the network once per browser."""
    spec = {k: v for k, v in graph.items() if k != "onnx"}
    if said.get("need"):
        spec["onnx"] = graph["onnx"]
    return spec


@st.cache_resource(max_entries=8, show_spinner="Preparing the encoder for the browser…")
def _browser_encoder(path: str, saved: float, _checkpoint: Checkpoint) -> dict:
    """The encoder's graph for the drawing pad (base64), keyed like the decoder's by the weights."""
    from ...checkpoints import weights_sha1
    from ...checkpoints.onnx_export import encoder_onnx

    graph = encoder_onnx(_checkpoint).read_bytes()
    return {
        "model": weights_sha1(path)[:16] + "-encoder",
        "graph": hashlib.sha1(graph).hexdigest()[:16],
        "cond_dim": int(_checkpoint.model.cond_dim),
        "onnx": base64.b64encode(graph).decode("ascii"),
    }


def browser_encoding(key: str, checkpoint: Checkpoint) -> tuple[dict | None, str | None]:
    """The encoder spec for the drawing pad `key` (None: the server encodes each stroke) and, when
    the server encodes, why. As for the decoder, the graph travels until the browser holds it."""
    if not runtime_installed() or not _declare("drawing_pad", "draw.js", "draw.css")[1]:
        return (
            None,
            "The drawing is encoded on the server after each stroke: the browser runtime is not available here.",
        )
    try:
        encoder = _browser_encoder(str(checkpoint.path), catalog.stamp(checkpoint.path), checkpoint)
    except VaeExplorerError as error:
        return None, f"The drawing is encoded on the server after each stroke: {error}."
    except (ImportError, RuntimeError):
        return (
            None,
            "The drawing is encoded on the server after each stroke: its encoder could not be exported to ONNX.",
        )
    said = _browser_said(key, "live_encoder", encoder["model"])
    if said.get("ok") is False:
        return (
            None,
            f"This browser could not run the encoder ({said.get('reason') or 'unknown reason'}); the server encodes each stroke.",
        )
    return _spec(encoder, said), None


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
    from ...images import to_uint8

    return {
        "seq": seq,
        "mu": [float(v) for v in encoding.mean],
        "sigma": [float(v) for v in encoding.stddev],
        "input": png_data_uri(_picture(to_uint8(encoding.image)[0])),
        "recon": png_data_uri(_picture(to_uint8(encoding.reconstruction)[0])),
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
    _declare("drawing_pad", "draw.js", "draw.css")[0](
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
    _declare("latent_sliders", "sliders.js", "sliders.css")[0](
        key=key,
        data={
            "dims": dims,
            "values": [float(v) for v in values],
            "version": version,
            "image": png_data_uri(image),
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
                "image": png_data_uri(twin["image"]),
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
    _declare("interpolation_walk", "path.js", "path.css")[0](
        key=key,
        data={
            "a": [float(v) for v in a],
            "b": [float(v) for v in b],
            "version": version,
            "t": float(t),
            "method": method,
            "image": png_data_uri(image),
            "shape": list(image.shape[:2]),
            "seq": seq,
            "picture_px": picture_px,
            "live": live,
        },
        default={"t": None, "live": None},
        on_t_change=lambda: None,
        on_live_change=lambda: None,
    )


def grid_axes(
    kind: str, side: int, latent_dim: int, directions=None, spread=None, extent: float = 2.5
) -> list[dict | None]:
    """How a grid's cell position maps to z, for the browser (grid.js): per axis (columns, rows) the
    vector it moves along and its coordinate at cell x, start + step * x (linear) or the inverse
    normal CDF of that (probit). The same grids as latent.plane_grid and latent.manifold_grid."""
    if kind == "plane":
        return [
            {
                "vector": [float(v) for v in spread[k] * directions[k]],
                "kind": "linear",
                "start": sign * -extent,
                "step": sign * 2 * extent / (side - 1),
            }
            for k, sign in ((0, 1.0), (1, -1.0))
        ]
    unit = np.eye(latent_dim)
    axes = [{"vector": unit[0].tolist(), "kind": "probit", "start": 0.05, "step": 0.9 / (side - 1)}]
    axes.append(
        {"vector": unit[1].tolist(), "kind": "probit", "start": 0.95, "step": -0.9 / (side - 1)}
        if latent_dim == 2
        else None
    )
    return axes


def grid_explorer(
    key: str,
    grid_png: bytes,
    cols: int,
    rows: int,
    origin,
    axes: list[dict | None],
    names: list[str],
    shape: tuple[int, int],
    live: dict | None,
    hint: str,
    grid_px: int,
    picture_px: int = 224,
    gap: int = 0,
) -> None:
    """Mount a grid (Python's PNG, cols x rows cells `gap` pixels apart, with a gap around them too)
    whose pointer position is decoded beside it in the browser; without the browser decoder only
    the grid shows. Its axes are named `names` (columns, rows), with their values at the end cells."""
    _declare("grid_explorer", "grid.js", "grid.css")[0](
        key=key,
        data={
            "grid": "data:image/png;base64," + base64.b64encode(grid_png).decode("ascii"),
            "cols": cols,
            "rows": rows,
            "origin": [float(v) for v in origin],
            "axes": axes,
            "names": names,
            "shape": list(shape),
            "live": live,
            "hint": hint,
            "grid_px": grid_px,
            "picture_px": picture_px,
            "gap": gap,
        },
        default={"live": None},
        on_live_change=lambda: None,
    )


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
    _declare("latent_map", "map.js", "map.css")[0](
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

"""What every browser component shares on the Python side: declaring a component (served from this
folder, or inline), the browser decoder's runtime, PNG data URIs, and the model graphs handed to
the page (browser_decoding, browser_encoding), each sent only until the browser holds it."""

from __future__ import annotations

import base64
import hashlib
import io
import re
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


def _declare(name: str, folder: str) -> tuple:
    """(component, served) for the component in `folder` (its `folder.js`, and `folder.css` after
    common.css): served from this folder when Streamlit knows it as an installed package's asset_dir
    (then common.js, live.js and the runtime are imported beside it); otherwise inline, decoding on
    the server only. Declared in the running server (a script run), once."""
    from streamlit.runtime import Runtime

    key = (id(Runtime.instance()) if Runtime.exists() else 0, name)
    if key not in _DECLARED:
        css = (_HERE / "common.css").read_text() + (_HERE / folder / f"{folder}.css").read_text()
        try:
            _DECLARED[key] = st.components.v2.component(f"{PROJECT}.{name}", js=f"{folder}/{folder}.js", css=css), True
        except Exception:  # no manifest registered for this folder: a clone that was not pip-installed
            _DECLARED[key] = st.components.v2.component(f"vae_explorer.{name}", js=_inline(folder), css=css), False
    return _DECLARED[key]


def _inline(folder: str) -> str:
    """The component's module as one text, for a page that cannot import beside it: common.js
    (without its exports) before the component's own code (without its import of common.js)."""
    common = re.sub(r"^export ", "", (_HERE / "common.js").read_text(), flags=re.M)
    own = (_HERE / folder / f"{folder}.js").read_text()
    own = re.sub(r'^import \{[^}]*\} from "\.\./common\.js";\n', "", own, flags=re.M)
    return common + "\n" + own


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
    if not _declare("latent_sliders", "sliders")[1]:
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
    if not runtime_installed() or not _declare("drawing_pad", "pad")[1]:
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

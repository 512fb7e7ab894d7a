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

One folder per component, its Python (mount it, read what the browser sent), JS and CSS side by
side: sliders/, walk/, grid/, map/, pad/, paint/. What they share: runtime.py (declaring a component, the
graphs handed to the page), common.js (mounting, reporting to Python, loading live.js, base64,
pixel outlines; one namespace on the window), common.css, and live.js (onnxruntime-web).
"""

from .grid import grid_axes, grid_explorer
from .map import CLASS_COLOURS, latent_map, map_pick
from .pad import drawing_pad, drawing_result, pending_drawing
from .paint import latent_painter, pending_dabs
from .runtime import INSTALL_HINT, RUNTIME_FILES, browser_decoding, browser_encoding, png_data_uri, runtime_installed
from .sliders import latent_sliders, pending_drag, pending_label, pending_values
from .walk import interpolation_walk, pending_walk

__all__ = [
    "CLASS_COLOURS",
    "INSTALL_HINT",
    "RUNTIME_FILES",
    "browser_decoding",
    "browser_encoding",
    "drawing_pad",
    "drawing_result",
    "grid_axes",
    "grid_explorer",
    "interpolation_walk",
    "latent_painter",
    "latent_map",
    "latent_sliders",
    "map_pick",
    "pending_dabs",
    "pending_drag",
    "pending_drawing",
    "pending_label",
    "pending_values",
    "pending_walk",
    "png_data_uri",
    "runtime_installed",
]

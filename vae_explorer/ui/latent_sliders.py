"""A latent-space slider panel that reports values *while* a slider is dragged.

`st.slider` only sends its value when the mouse is released, so the picture cannot follow a
drag. This custom component (Streamlit components v2, inline HTML/JS) shows the decoded picture
above one range input per latent dimension and sends `{"values", "version", "seq"}` on every
`input` event, with flow control: it sends the next value only after Python has answered the
previous ones (at most two values in flight; each answer carries its `seq`) or 250 ms have
passed, so a fast drag never queues up a backlog of reruns. With one value in flight a round trip
through Streamlit and the browser (~55 ms here, ~5 ms of it Python) capped a drag at ~15
pictures a second; two in flight gave ~30. Python decodes inside an `st.fragment`, so only this panel reruns.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import streamlit as st

CSS = """
.ls-root { display: flex; gap: 1.5rem; flex-wrap: wrap; font-family: var(--st-font, sans-serif); color: var(--st-text-color); }
.ls-picture img { image-rendering: pixelated; border: 1px solid var(--st-border-color, #ddd); border-radius: 4px; background: #000; }
.ls-sliders { flex: 1; min-width: 260px; max-height: 560px; overflow-y: auto; padding-right: .5rem; }
.ls-row { display: grid; grid-template-columns: 10rem 1fr 3.2rem; align-items: center; gap: .5rem; margin: .15rem 0; }
.ls-row label { font-size: .85rem; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.ls-row output { font-variant-numeric: tabular-nums; font-size: .85rem; text-align: right; }
.ls-row input { width: 100%; accent-color: var(--st-primary-color); }
.ls-row.collapsed label, .ls-row.collapsed output { opacity: .45; }
"""

JS = """
const MAX_IN_FLIGHT = 2;  // values sent but not yet answered by a picture
const MIN_GAP_MS = 25;    // at most 40 values a second
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  let root = parentElement.querySelector(".ls-root");
  if (!root) {
    root = document.createElement("div");
    root.className = "ls-root";
    root.innerHTML = '<div class="ls-picture"><img alt="image decoded from the latent vector"></div><div class="ls-sliders"></div>';
    parentElement.appendChild(root);
    root._state = { values: [], version: null, seq: 0, answered: 0, pending: false, timer: null, sentAt: 0, sentTimes: {}, roundTrips: [], paintTrips: [] };
  }
  const state = root._state;
  const img = root.querySelector("img");
  img.style.width = data.picture_px + "px";
  if (data.image && img.getAttribute("src") !== data.image) img.setAttribute("src", data.image);
  if (typeof data.seq === "number" && data.seq > state.answered) {
    state.answered = data.seq;
    // round trips (value sent -> its picture here), kept for benchmarks: window-inspectable, bounded
    const sentAt = state.sentTimes[data.seq];
    if (sentAt) {
      state.roundTrips.push(performance.now() - sentAt);
      // ... and to the frame that shows it painted: decoded, then the next frame; a task queued from
      // its requestAnimationFrame callback runs once that frame has been painted
      img.decode().then(() => requestAnimationFrame(() => setTimeout(() => {
        state.paintTrips.push(performance.now() - sentAt);
        if (state.paintTrips.length > 1000) state.paintTrips.shift();
      }, 0))).catch(() => {});
    }
    if (state.roundTrips.length > 1000) state.roundTrips.shift();
    for (const seq of Object.keys(state.sentTimes)) if (Number(seq) <= data.seq) delete state.sentTimes[seq];
  }

  const send = () => {
    state.timer = null;
    const now = performance.now();
    const inFlight = state.seq - state.answered;
    if ((inFlight >= MAX_IN_FLIGHT || now - state.sentAt < MIN_GAP_MS) && now - state.sentAt < 250) {  // let Python catch up
      state.timer = setTimeout(send, 10);
      return;
    }
    if (!state.pending) return;
    state.pending = false;
    state.seq += 1;
    state.sentAt = now;
    state.sentTimes[state.seq] = now;
    setStateValue("z", { values: state.values.slice(), version: state.version, seq: state.seq });
  };
  const schedule = () => { state.pending = true; if (!state.timer) state.timer = setTimeout(send, 0); };
  if (state.pending && state.seq - state.answered < MAX_IN_FLIGHT) {  // Python answered: send the newest value now
    clearTimeout(state.timer);
    send();
  }

  const box = root.querySelector(".ls-sliders");
  const signature = JSON.stringify([data.dims, data.low, data.high]);
  if (root.dataset.signature !== signature) {
    box.innerHTML = "";
    data.dims.forEach((dim, row) => {
      const line = document.createElement("div");
      line.className = "ls-row" + (dim.collapsed ? " collapsed" : "");
      line.innerHTML = '<label></label><input type="range"><output></output>';
      const label = line.querySelector("label");
      label.textContent = dim.label;
      label.title = dim.title;
      const input = line.querySelector("input");
      Object.assign(input, { min: data.low, max: data.high, step: 0.01 });
      input.setAttribute("aria-label", dim.label);
      input.dataset.index = dim.index;
      input.addEventListener("input", () => {
        state.values[dim.index] = parseFloat(input.value);
        line.querySelector("output").textContent = parseFloat(input.value).toFixed(2);
        schedule();
      });
      box.appendChild(line);
    });
    root.dataset.signature = signature;
    state.version = null;
  }
  if (state.version !== data.version) {  // Python set new values (reset, random, a shared URL)
    state.values = data.values.slice();
    state.version = data.version;
    box.querySelectorAll("input").forEach((input) => {
      const v = state.values[parseInt(input.dataset.index)];
      input.value = v;
      input.parentElement.querySelector("output").textContent = v.toFixed(2);
    });
  }
}
"""

_COMPONENT = st.components.v2.component("vae_explorer.latent_sliders", css=CSS, js=JS)


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

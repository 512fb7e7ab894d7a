// What the components share. Each imports it from "../common.js" where the app serves them; served
// inline (a clone Streamlit does not know as an installed package), runtime.py puts this file before
// the component's own code instead, without its `export`s.

/**
 * A model's graph as Python sends it (runtime.py: browser_decoding, browser_encoding).
 * @typedef {Object} GraphSpec
 * @property {string} model     the digest of the weights: one session per model and page
 * @property {string} graph     the digest of the graph's bytes: the browser's kept copy (live.js)
 * @property {number[]} [shape] (C, H, W) of the decoded image
 * @property {number} cond_dim  the classes a conditional model takes one-hot (0: none)
 * @property {string} [onnx]    the graph, base64, only after the browser said it needs it
 * @property {number|null} [label] the class to decode with
 */

/**
 * The one name the app keeps on the page's window: what outlives a panel and is shared by every
 * component of the tab (the decoder runtime and its sessions, live.js; the map's points, map.js).
 * Each component's files are served under its own path, so module variables are not shared.
 */
export const shared = (globalThis.vaeExplorer ??= {});

let live = null;
/** live.js, the browser decoder, imported from where this file is served (never when inline). */
export const liveModule = () => (live ??= import(new URL("./live.js", import.meta.url).href));

/**
 * The panel's root element in `parentElement`, made once from `html` with its state (`makeState()`)
 * and an AbortController: every listener is added with its `signal`, so the cleanup a component
 * returns to Streamlit (called when the panel leaves the page) removes them all at once.
 * @returns {{root: HTMLElement, state: Object, fresh: boolean, signal: AbortSignal}}
 */
export function mount(parentElement, className, html, makeState) {
  let root = parentElement.querySelector(`.${className}`);
  const fresh = !root;
  if (fresh) {
    root = document.createElement("div");
    root.className = className;
    root.innerHTML = html;
    parentElement.appendChild(root);
    root._state = makeState();
    root._abort = new AbortController();
  }
  return { root, state: root._state, fresh, signal: root._abort.signal };
}

/** The cleanup a component returns: its listeners (through the signal) and whatever `also` stops. */
export function cleanup(root, also = () => {}) {
  return () => {
    root._abort.abort();
    also();
  };
}

/**
 * `report(field, value)`: tell Python a field's value, once per change (each setStateValue reruns
 * the panel's Python). What was said is kept in `state.said`, so it holds across renders.
 */
export function reporter(state, setStateValue) {
  state.said ??= {};
  return (field, value) => {
    const text = JSON.stringify(value);
    if (state.said[field] === text) return;
    state.said[field] = text;
    setStateValue(field, value);
  };
}

/**
 * Make (or find) the page's session of `spec`'s model for a panel: `ready(loaded)` once it exists
 * (returning false when the panel has moved on to another model meanwhile); `report(value)` tells
 * Python the outcome, including a runtime that could not be loaded at all.
 */
export function attachGraph(spec, report, ready) {
  liveModule().then(
    (module) => module.attach(spec, report, ready),
    (error) => report({ model: spec.model, ok: false, reason: `the browser decoder could not be loaded: ${error.message || error}` }),
  );
}

/**
 * Follow the model Python names in `live` (a GraphSpec, or null when Python decodes): attach its graph
 * when it is new, keep its class current, let go of it when Python decodes, and say which in
 * `root.dataset.mode` ("browser" or "server"). `ready()` runs once the page holds the model.
 */
export function followModel(root, state, live, report, ready = () => {}) {
  if (live && !(state.live && state.model === live.model)) {
    state.spec = { model: live.model, shape: live.shape, cond_dim: live.cond_dim, label: live.label };
    state.model = live.model;
    attachGraph(live, (value) => report("live", value), (loaded) => {
      if (state.model !== live.model) return false;  // another model came meanwhile
      state.live = loaded;
      root.dataset.mode = "browser";
      ready();
    });
  } else if (live && state.spec) {
    state.spec.label = live.label;
  } else if (!live) {
    state.live = null;
  }
  root.dataset.mode = state.live ? "browser" : "server";
}

/** Decode a panel's newest input and draw it; inputs arriving meanwhile coalesce (live.js). */
export function decodeLatest(state, input, draw, failed) {
  return liveModule().then((module) => module.decodeLatest(state, input, draw, failed));
}

/** Base64 text as bytes. */
export function bytesFromBase64(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** Bytes as base64 text (in slices: String.fromCharCode takes a bounded number of arguments). */
export function base64FromBytes(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** Draw `pixels` (ImageData) into `canvas`, resizing it only when its size changes (that clears it). */
export function putPixels(canvas, pixels) {
  if (canvas.width !== pixels.width || canvas.height !== pixels.height) [canvas.width, canvas.height] = [pixels.width, pixels.height];
  canvas.getContext("2d").putImageData(pixels, 0, 0);
}

/** A PNG data URI (Python's picture) as ImageData for `done`, unless `holder.shownImage` has moved on. */
export function loadPicture(uri, holder, done) {
  holder.shownImage = uri;
  const image = new Image();
  image.onload = () => {
    if (holder.shownImage !== uri) return;
    const scratch = Object.assign(document.createElement("canvas"), { width: image.naturalWidth, height: image.naturalHeight });
    const context = scratch.getContext("2d");
    context.drawImage(image, 0, 0);
    done(context.getImageData(0, 0, scratch.width, scratch.height));
  };
  image.src = uri;
}

/**
 * A picture of at most 16x16 pixels shown 6 or more times larger gets a line around each pixel, as
 * vae_explorer.images.enlarge draws on Python's pictures: an overlay (common.css) on the canvas's
 * holder, so the canvas keeps the decoded pixels.
 */
export function outlinePixels(canvas, [h, w], shownPx) {
  const holder = canvas.parentElement;
  holder.classList.toggle("px-lines", Math.max(h, w) <= 16 && shownPx >= 6 * w);
  Object.entries({ "--px-rows": h, "--px-cols": w, "--px-size": `${canvas.offsetWidth || shownPx}px` })
    .forEach(([name, value]) => holder.style.setProperty(name, value));
}

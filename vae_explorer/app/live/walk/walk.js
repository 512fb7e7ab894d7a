// A walk from A to B: one slider over t in [0, 1], linear or spherical (slerp), and the picture of
// the point at t. With the decoder in the page (live.js) the point is computed and decoded here on
// every `input` event, and Python hears t on release; otherwise each t goes to Python (one in
// flight, or another after 250 ms) and its picture comes back.
import { cleanup, decodeLatest, followModel, loadPicture, mount, putPixels, reporter } from "../common.js";

/**
 * What Python sends (walk/__init__.py, interpolation_walk).
 * @typedef {Object} WalkData
 * @property {number[]} a        A's latent vector
 * @property {number[]} b        B's latent vector
 * @property {number} version    changes with the end points
 * @property {number} t
 * @property {"linear"|"slerp"} method
 * @property {string} image      Python's picture of the point at t (a PNG data URI)
 * @property {number[]} shape    (H, W)
 * @property {number} seq        the last t Python has answered
 * @property {number} picture_px
 * @property {import("../common.js").GraphSpec|null} live
 */

/** The formulas of vae_explorer.latent.interpolation_at (float64 here, float32 in Python). */
export function pointAt(a, b, t, method) {
  const line = a.map((v, i) => (1 - t) * v + t * b[i]);
  if (method !== "slerp") return line;
  const dot = a.reduce((s, v, i) => s + v * b[i], 0);
  const norms = Math.max(Math.hypot(...a) * Math.hypot(...b), 1e-12);
  const omega = Math.acos(Math.min(Math.max(dot / norms, -1), 1));
  if (Math.sin(omega) < 1e-4) return line;
  return a.map((v, i) => (Math.sin((1 - t) * omega) * v + Math.sin(t * omega) * b[i]) / Math.sin(omega));
}

const HTML = `<canvas role="img" aria-label="the point at t, decoded"></canvas>
  <div class="lp-controls">
    <div class="lp-t"><span>A</span><input type="range" min="0" max="1" step="0.01" aria-label="t from A to B"><span>B</span></div>
    <output></output>
    <div class="lp-method" role="radiogroup" aria-label="path">
      <label><input type="radio" name="method" value="linear"> linear</label>
      <label><input type="radio" name="method" value="slerp"> slerp</label>
    </div>
  </div>`;

const newState = () => ({ t: 0, method: "linear", version: null, seq: 0, answered: 0, sentAt: 0, timer: null, moved: false,
                          live: null, model: null, decoding: false, again: false, shownImage: null, drawn: 0 });

/** @param {{data: WalkData, setStateValue: Function, parentElement: HTMLElement}} component */
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const { root, state, fresh, signal } = mount(parentElement, "lp-root", HTML, newState);
  const canvas = root.querySelector("canvas");
  const slider = root.querySelector("input[type=range]");
  const output = root.querySelector("output");
  const radios = [...root.querySelectorAll("input[type=radio]")];
  if (fresh) {
    const group = "method-" + Math.random().toString(36).slice(2);  // one radio group per panel
    radios.forEach((r) => { r.name = group; });
  }
  const report = reporter(state, setStateValue);
  canvas.style.width = data.picture_px + "px";
  if (!state.drawn && data.shape) [canvas.height, canvas.width] = data.shape;

  const draw = (pixels, source) => {
    putPixels(canvas, pixels);
    root.dataset.source = source;
    state.drawn += 1;
  };
  const send = () => {  // t and the method to Python
    state.timer = null;
    const now = performance.now();
    if (!state.live && state.seq > state.answered && now - state.sentAt < 250) { state.timer = setTimeout(send, 10); return; }
    state.seq += 1;
    state.sentAt = now;
    state.moved = false;
    setStateValue("t", { t: state.t, method: state.method, version: state.version, seq: state.seq });
  };
  const schedule = () => { if (!state.timer) state.timer = setTimeout(send, 0); };
  const decodeNow = () => decodeLatest(state,
    () => [pointAt(state.a, state.b, state.t, state.method), state.spec.label], (pixels) => draw(pixels, "browser"),
    (why) => { report("live", { model: state.spec.model, ok: false, reason: why }); schedule(); });
  const show = () => {
    output.textContent = `t = ${state.t.toFixed(2)} (${state.method})`;
    state.moved = true;
    if (state.live) decodeNow(); else schedule();
  };
  state.on = {  // what the controls do, renewed at every render; their listeners, added once, call these
    t: () => { state.t = parseFloat(slider.value); show(); },
    released: () => { if (state.live) schedule(); },
    method: (value) => { state.method = value; show(); if (state.live) schedule(); },
  };

  // new end points (another A or B, a shared URL): Python's t and method, and its picture
  const renewed = state.version !== data.version;
  if (renewed) {
    Object.assign(state, { version: data.version, a: data.a, b: data.b, t: data.t, method: data.method, shownImage: null, moved: false });
    slider.value = data.t;
    radios.forEach((r) => { r.checked = r.value === data.method; });
    output.textContent = `t = ${data.t.toFixed(2)} (${data.method})`;
  }
  if (typeof data.seq === "number" && data.seq > state.answered) state.answered = data.seq;
  if ((!state.live || renewed || (data.seq >= state.seq && !state.moved)) && data.image && state.shownImage !== data.image) {
    loadPicture(data.image, state, (pixels) => draw(pixels, "server"));
  }

  followModel(root, state, data.live, report);

  if (fresh) {
    slider.addEventListener("input", () => state.on.t(), { signal });
    slider.addEventListener("change", () => state.on.released(), { signal });
    radios.forEach((r) => r.addEventListener("change", () => state.on.method(r.value), { signal }));
  }
  return cleanup(root, () => clearTimeout(state.timer));
}

// A walk from A to B: one slider over t in [0, 1], linear or spherical (slerp), and the picture of
// the point at t. With the decoder in the page (live.js) the point is computed and decoded here on
// every `input` event, and Python hears t on release; otherwise each t goes to Python (one in
// flight, or another after 250 ms) and its picture comes back.
let live = null;  // live.js, imported where this file is served (not when inlined)
const liveModule = () => (live ??= import(new URL("./live.js", import.meta.url).href));

// The formulas of vae_explorer.latent.interpolation_at (float64 here, float32 in Python).
export function pointAt(a, b, t, method) {
  const line = a.map((v, i) => (1 - t) * v + t * b[i]);
  if (method !== "slerp") return line;
  const dot = a.reduce((s, v, i) => s + v * b[i], 0);
  const norms = Math.max(Math.hypot(...a) * Math.hypot(...b), 1e-12);
  const omega = Math.acos(Math.min(Math.max(dot / norms, -1), 1));
  if (Math.sin(omega) < 1e-4) return line;
  return a.map((v, i) => (Math.sin((1 - t) * omega) * v + Math.sin(t * omega) * b[i]) / Math.sin(omega));
}

export default function (component) {
  const { data, setStateValue, parentElement } = component;
  let root = parentElement.querySelector(".lp-root");
  if (!root) {
    root = document.createElement("div");
    root.className = "lp-root";
    root.innerHTML = `<canvas role="img" aria-label="the point at t, decoded"></canvas>
      <div class="lp-controls">
        <div class="lp-t"><span>A</span><input type="range" min="0" max="1" step="0.01" aria-label="t from A to B"><span>B</span></div>
        <output></output>
        <div class="lp-method" role="radiogroup" aria-label="path">
          <label><input type="radio" name="method" value="linear"> linear</label>
          <label><input type="radio" name="method" value="slerp"> slerp</label>
        </div>
      </div>`;
    parentElement.appendChild(root);
    root._state = { t: 0, method: "linear", version: null, seq: 0, answered: 0, sentAt: 0, timer: null, moved: false,
                    live: null, model: null, decoding: false, again: false, reported: null, shown: null, drawn: 0 };
    const group = "method-" + Math.random().toString(36).slice(2);  // one radio group per panel
    root.querySelectorAll("input[type=radio]").forEach((r) => { r.name = group; });
  }
  const state = root._state;
  const canvas = root.querySelector("canvas");
  const slider = root.querySelector("input[type=range]");
  const output = root.querySelector("output");
  const radios = [...root.querySelectorAll("input[type=radio]")];
  canvas.style.width = data.picture_px + "px";
  if (!state.drawn && data.shape) [canvas.height, canvas.width] = data.shape;

  const draw = (pixels, source) => {
    if (canvas.width !== pixels.width || canvas.height !== pixels.height) [canvas.width, canvas.height] = [pixels.width, pixels.height];
    canvas.getContext("2d").putImageData(pixels, 0, 0);
    root.dataset.source = source;
    state.drawn += 1;
  };
  const drawServer = (uri) => {
    if (!uri || state.shown === uri) return;
    state.shown = uri;
    const image = new Image();
    image.onload = () => {
      if (state.shown !== uri) return;
      const scratch = Object.assign(document.createElement("canvas"), { width: image.naturalWidth, height: image.naturalHeight });
      const context = scratch.getContext("2d");
      context.drawImage(image, 0, 0);
      draw(context.getImageData(0, 0, scratch.width, scratch.height), "server");
    };
    image.src = uri;
  };
  const report = (value) => {
    const text = JSON.stringify(value);
    if (state.reported !== text) { state.reported = text; setStateValue("live", value); }
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
  const decodeNow = () => liveModule().then((module) => module.decodeLatest(state,
    () => [pointAt(state.a, state.b, state.t, state.method), state.spec.label], (pixels) => draw(pixels, "browser"),
    (why) => { report({ model: state.spec.model, ok: false, reason: why }); schedule(); }));
  const show = () => {
    output.textContent = `t = ${state.t.toFixed(2)} (${state.method})`;
    state.moved = true;
    if (state.live) decodeNow(); else schedule();
  };

  // new end points (another A or B, a shared URL): Python's t and method, and its picture
  const fresh = state.version !== data.version;
  if (fresh) {
    Object.assign(state, { version: data.version, a: data.a, b: data.b, t: data.t, method: data.method, shown: null, moved: false });
    slider.value = data.t;
    radios.forEach((r) => { r.checked = r.value === data.method; });
    output.textContent = `t = ${data.t.toFixed(2)} (${data.method})`;
  }
  if (typeof data.seq === "number" && data.seq > state.answered) state.answered = data.seq;
  if (!state.live || fresh || (data.seq >= state.seq && !state.moved)) drawServer(data.image);

  if (data.live && !(state.live && state.model === data.live.model)) {
    state.spec = { model: data.live.model, shape: data.live.shape, cond_dim: data.live.cond_dim, label: data.live.label };
    state.model = data.live.model;
    const spec = data.live;
    liveModule().then((module) => module.attach(spec, report, (loaded) => {
      if (state.model !== spec.model) return false;  // another model came meanwhile
      state.live = loaded;
      root.dataset.mode = "browser";
    }), (error) => report({ model: spec.model, ok: false, reason: "the browser decoder could not be loaded: " + String(error.message || error) }));
  } else if (data.live && state.spec) {
    state.spec.label = data.live.label;
  } else if (!data.live) {
    state.live = null;
  }
  root.dataset.mode = state.live ? "browser" : "server";

  if (!root._wired) {
    root._wired = true;
    slider.addEventListener("input", () => { state.t = parseFloat(slider.value); show(); });
    slider.addEventListener("change", () => { if (state.live) schedule(); });
    radios.forEach((r) => r.addEventListener("change", () => { state.method = r.value; show(); if (state.live) schedule(); }));
  }
}

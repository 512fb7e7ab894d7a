// The drawing pad. Strokes are drawn in white on black (the datasets' colours) at a whole number of
// canvas pixels per model pixel; the model's input is the mean of each block, rounded to 1/255.
// With the model's encoder and decoder loaded in the page (live.js), every move of the pen is
// encoded and decoded here: the input as the model sees it, mu and sigma per dimension and the
// reconstruction follow the hand, and Python hears the drawing only when a stroke ends (or on undo
// and clear). Without them, Python encodes each finished stroke and its answer is drawn.
// Pointer events serve a mouse, a pen and a touch screen alike.

import { attachGraph, base64FromBytes, cleanup, liveModule, reporter } from "../common.js";

const BAR_ROW = 18;  // CSS pixels per latent dimension in the mu/sigma chart, for a 280-pixel pad (it grows with the pad)

/**
 * What Python sends (pad/__init__.py, drawing_pad).
 * @typedef {Object} PadData
 * @property {number[]} shape   (C, H, W) of the model's images
 * @property {number} pad_px
 * @property {import("../common.js").GraphSpec|null} decoder
 * @property {import("../common.js").GraphSpec|null} encoder
 * @property {{seq: number, mu: number[], sigma: number[], input: string, recon: string}|null} result  the server's encoding
 * @property {number|null} label
 * @property {number} brush     the default line width, in the model's pixels
 */

const HTML =
  '<div class="dp-pad"><canvas class="dp-canvas" role="img" aria-label="drawing pad: draw with the mouse, a pen or a finger"></canvas>' +
  '<div class="dp-tools"><button type="button" data-act="undo">Undo</button><button type="button" data-act="clear">Clear</button>' +
  '<label>Brush <input type="range" class="dp-brush" min="0.5" max="5" step="0.25"></label><output class="dp-brush-value"></output></div></div>' +
  '<div class="dp-out"><div class="dp-pictures">' +
  '<figure><canvas class="dp-input" role="img" aria-label="the drawing as the model sees it"></canvas><figcaption>as the model sees it</figcaption></figure>' +
  '<figure><canvas class="dp-recon" role="img" aria-label="its reconstruction"></canvas><figcaption>reconstruction from mu</figcaption></figure></div>' +
  '<figure class="dp-chart"><canvas class="dp-bars" role="img" aria-label="mu and sigma per latent dimension"></canvas>' +
  '<figcaption>mu ± sigma per latent dimension (-3 to 3)</figcaption></figure></div>';

// The pad's root for a model of this image shape: made again when the shape changes (another model).
function padRoot(parentElement, data) {
  let root = parentElement.querySelector(".dp-root");
  if (root && root._shape === data.shape.join("x")) return { root, fresh: false };
  if (root) { root._abort.abort(); root.remove(); }
  root = document.createElement("div");
  root.className = "dp-root";
  root._shape = data.shape.join("x");
  root.innerHTML = HTML;
  parentElement.appendChild(root);
  root.querySelector(".dp-canvas").getContext("2d", { willReadFrequently: true });  // it is read back at every move
  root._state = { strokes: [], current: null, seq: 0, brush: data.brush, encoder: null, decoder: null, encSpec: null,
                  decSpec: null, busy: false, again: false, encoded: 0, shownSeq: 0, label: null };
  root._abort = new AbortController();
  return { root, fresh: true };
}

// The pad's geometry for this render: its canvases, the model's image shape and canvas pixels per
// model pixel. The functions below draw with it.
function geometry(root, data) {
  const [channels, height, width] = data.shape;
  return {
    root, channels, height, width, padPx: data.pad_px,
    scale: Math.max(1, Math.ceil(data.pad_px / Math.max(height, width))),  // canvas pixels per model pixel
    pad: root.querySelector(".dp-canvas"), input: root.querySelector(".dp-input"),
    recon: root.querySelector(".dp-recon"), bars: root.querySelector(".dp-bars"),
  };
}

// The strokes, in white on black, at `scale` canvas pixels per model pixel.
function paint(at, state) {
  const { pad, scale } = at;
  const g = pad.getContext("2d");
  g.fillStyle = "#000";
  g.fillRect(0, 0, pad.width, pad.height);
  g.strokeStyle = g.fillStyle = "#fff";
  g.lineCap = g.lineJoin = "round";
  for (const stroke of state.current ? [...state.strokes, state.current] : state.strokes) {
    g.lineWidth = stroke.width * scale;
    const [x0, y0] = stroke.points[0];
    if (stroke.points.length === 1) {
      g.beginPath();
      g.arc(x0 * scale, y0 * scale, stroke.width * scale / 2, 0, 2 * Math.PI);
      g.fill();
      continue;
    }
    g.beginPath();
    g.moveTo(x0 * scale, y0 * scale);
    for (const [x, y] of stroke.points.slice(1)) g.lineTo(x * scale, y * scale);
    g.stroke();
  }
}

// The model's input, (H * W) uint8: the mean of each scale x scale block of the pad's red channel.
function readPixels(at) {
  const { pad, scale, height, width } = at;
  const rgba = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
  const out = new Uint8Array(height * width);
  const area = scale * scale;
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      let sum = 0;
      for (let dy = 0; dy < scale; dy++) {
        const row = ((r * scale + dy) * pad.width + c * scale) * 4;
        for (let dx = 0; dx < scale; dx++) sum += rgba[row + dx * 4];
      }
      out[r * width + c] = Math.round(sum / area);
    }
  }
  return out;
}

function showInput(at, grey) {
  const { width, height } = at;
  const image = new ImageData(width, height);
  for (let p = 0; p < width * height; p++) {
    image.data[p * 4] = image.data[p * 4 + 1] = image.data[p * 4 + 2] = grey[p];
    image.data[p * 4 + 3] = 255;
  }
  at.input.getContext("2d").putImageData(image, 0, 0);
}

// mu (a bar from 0) and mu ± sigma (a line) per latent dimension, from -3 to 3.
function drawBars(at, mu, sigma) {
  const { bars, padPx } = at;
  const dims = mu.length;
  const grow = Math.max(1, padPx / 280), row = BAR_ROW * grow;  // larger in presentation mode
  const cssWidth = Math.max(260, Math.round(padPx * 1.1));
  const ratio = window.devicePixelRatio || 1;
  bars.style.width = cssWidth + "px";
  bars.style.height = dims * row + 24 + "px";
  bars.width = cssWidth * ratio;
  bars.height = (dims * row + 24) * ratio;
  const g = bars.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  const ink = getComputedStyle(at.root).color || "#333";
  const left = 34 * grow, right = cssWidth - 8, x = (v) => left + (Math.max(-3, Math.min(3, v)) + 3) / 6 * (right - left);
  g.clearRect(0, 0, cssWidth, dims * row + 24);
  g.font = `${Math.round(11 * grow)}px sans-serif`;
  g.fillStyle = ink;
  g.globalAlpha = 0.35;
  g.fillRect(x(0), 0, 1, dims * row);
  g.globalAlpha = 1;
  for (const tick of [-3, 0, 3]) g.fillText(String(tick), x(tick) - (tick === 3 ? 8 : 3), dims * row + 14);
  for (let j = 0; j < dims; j++) {
    const y = j * row + 3;
    g.fillStyle = ink;
    g.fillText("z" + j, 2, y + row * 0.62);
    g.fillStyle = "#4c78a8";
    const a = x(Math.min(0, mu[j])), b = x(Math.max(0, mu[j]));
    g.fillRect(a, y + 2, Math.max(1, b - a), row - 8);
    g.fillStyle = ink;
    g.fillRect(x(mu[j] - sigma[j]), y + (row - 6) / 2, Math.max(1, x(mu[j] + sigma[j]) - x(mu[j] - sigma[j])), 1.5);
  }
}

// Encode the pad's newest input and decode its mean, in the page; moves that come meanwhile
// coalesce into one more run. A failing run hands the pad to the server (`failed(why)`).
async function encodeLatest(at, state, failed) {
  if (state.busy) { state.again = true; return; }
  state.busy = true;
  const { root, channels, height, width } = at;
  try {
    do {
      state.again = false;
      const grey = readPixels(at);
      showInput(at, grey);
      const { ort, session } = state.encoder;
      const x = new Float32Array(channels * height * width);
      for (let k = 0; k < channels; k++) for (let p = 0; p < height * width; p++) x[k * height * width + p] = grey[p] / 255;
      const feeds = { x: new ort.Tensor("float32", x, [1, channels, height, width]) };
      if (state.encSpec.cond_dim) {
        const onehot = new Float32Array(state.encSpec.cond_dim);
        onehot[state.label ?? 0] = 1;
        feeds.label = new ort.Tensor("float32", onehot, [1, state.encSpec.cond_dim]);
      }
      const out = await session.run(feeds);
      const mu = Array.from(out.mu.data), sigma = Array.from(out.logvar.data, (v) => Math.exp(0.5 * v));
      const module = await liveModule();
      at.recon.getContext("2d").putImageData(await module.decode(state.decoder, state.decSpec, mu, state.label), 0, 0);
      drawBars(at, mu, sigma);
      state.encoded += 1;
      root.dataset.mu = JSON.stringify(mu);
      root.dataset.sigma = JSON.stringify(sigma);
      root.dataset.encoded = String(state.encoded);
      root.dataset.source = "browser";
    } while (state.again);
  } catch (error) {
    const module = await liveModule();
    state.encoder = null;
    root.dataset.mode = "server";
    failed(module.reason(error));
  } finally {
    state.busy = false;
  }
}

/** @param {{data: PadData, setStateValue: Function, parentElement: HTMLElement}} component */
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const { root, fresh } = padRoot(parentElement, data);
  const signal = root._abort.signal;
  const state = root._state;
  state.label = data.label;
  const at = geometry(root, data);
  const { pad, height, width, scale } = at;
  const brush = root.querySelector(".dp-brush");
  const brushValue = root.querySelector(".dp-brush-value");
  if (pad.width !== width * scale || pad.height !== height * scale) {  // resizing a canvas clears it: only when it changes
    pad.width = width * scale;
    pad.height = height * scale;
  }
  pad.style.width = data.pad_px + "px";
  const side = Math.round(data.pad_px * 0.55);
  for (const c of [at.input, at.recon]) {
    if (c.width !== width || c.height !== height) { c.width = width; c.height = height; }
    c.style.width = side + "px";
  }

  const report = reporter(state, setStateValue);  // whether this page runs the encoder / decoder itself

  // --- encoding and decoding in the page ----------------------------------------------------------
  const encode = () => encodeLatest(at, state, (why) => report("live_encoder", { model: state.encSpec.model, ok: false, reason: why }));
  const inPage = () => state.encoder && state.decoder;

  if (data.encoder && data.decoder) {
    if (!state.encSpec || state.encSpec.model !== data.encoder.model || state.decSpec.model !== data.decoder.model) {
      state.encoder = state.decoder = null;
    }
    state.encSpec = data.encoder;
    state.decSpec = data.decoder;
    attachGraph(state.encSpec, (v) => report("live_encoder", v), (loaded) => { state.encoder = loaded; root.dataset.mode = inPage() ? "browser" : "server"; });
    attachGraph(state.decSpec, (v) => report("live", v), (loaded) => { state.decoder = loaded; root.dataset.mode = inPage() ? "browser" : "server"; });
  } else {
    state.encoder = state.decoder = null;
  }
  root.dataset.mode = inPage() ? "browser" : "server";

  // --- Python's answer (the server's encoding of the last stroke) --------------------------------
  const result = data.result;
  if (!inPage() && result && result.seq === state.seq && result.seq !== state.shownSeq) {
    state.shownSeq = result.seq;
    for (const [canvas, uri] of [[at.input, result.input], [at.recon, result.recon]]) {
      const image = new Image();
      image.onload = () => canvas.getContext("2d").drawImage(image, 0, 0, width, height);
      image.src = uri;
    }
    drawBars(at, result.mu, result.sigma);
    root.dataset.mu = JSON.stringify(result.mu);
    root.dataset.source = "server";
  }

  // --- the pen ---------------------------------------------------------------------------------
  const send = () => {
    state.seq += 1;
    const grey = readPixels(at);
    showInput(at, grey);
    setStateValue("drawing", { pixels: base64FromBytes(grey), seq: state.seq, strokes: state.strokes.length });
  };
  const where = (event) => {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) / box.width * width, (event.clientY - box.top) / box.height * height];
  };
  state.on = {  // what the pen and the tools do, renewed at every render; their listeners, added once, call these
    down: (event) => {
      event.preventDefault();
      pad.setPointerCapture(event.pointerId);
      state.current = { width: state.brush, points: [where(event)] };
      paint(at, state);
      if (inPage()) encode();
    },
    move: (event) => {
      if (!state.current) return;
      for (const e of event.getCoalescedEvents ? event.getCoalescedEvents() : [event]) state.current.points.push(where(e));
      paint(at, state);
      if (inPage()) encode();
    },
    end: () => {
      if (!state.current) return;
      state.strokes.push(state.current);
      state.current = null;
      paint(at, state);
      send();
    },
    undo: () => {
      if (!state.strokes.length) return;
      state.strokes.pop();
      paint(at, state);
      if (inPage()) encode();
      send();
    },
    clear: () => {
      state.strokes = [];
      paint(at, state);
      if (inPage()) encode();
      send();
    },
    brush: () => {
      state.brush = Number(brush.value);
      brushValue.textContent = state.brush.toFixed(2) + " px";
    },
  };
  if (fresh) {
    const on = (element, type, what) => element.addEventListener(type, (event) => state.on[what](event), { signal });
    on(pad, "pointerdown", "down");
    on(pad, "pointermove", "move");
    on(pad, "pointerup", "end");
    on(pad, "pointercancel", "end");
    on(root.querySelector('[data-act="undo"]'), "click", "undo");
    on(root.querySelector('[data-act="clear"]'), "click", "clear");
    on(brush, "input", "brush");
  }
  brush.value = String(state.brush);
  brushValue.textContent = state.brush.toFixed(2) + " px";
  paint(at, state);
  if (!root.dataset.mu) {  // a blank pad before the first stroke
    showInput(at, new Uint8Array(width * height));
    drawBars(at, new Array(0), new Array(0));
  }
  return cleanup(root);
}

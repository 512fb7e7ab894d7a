// Painting on one channel of a spatial latent (C, h, w): the brush adds to (or, with a negative amount,
// subtracts from) the chosen channel around the pointer, or (with a second photo's latent sent as the
// source) copies that latent in, every channel, and the picture follows. With the decoder in
// the page (live.js) each change is decoded here as the hand moves: only a window around it, reaching
// `reach` latent positions beyond what can change, so the pixels pasted back are those of decoding the
// whole latent. Without it, Python decodes the painting when a stroke ends. Either way Python hears the
// dabs (channel, row, col, radius, amount) when a stroke ends, and latent/spatial.paint_latent applies
// them as paintLatent does here.
import { bytesFromBase64, cleanup, followModel, loadPicture, mount, putPixels, reporter } from "../common.js";

/**
 * What Python sends (paint/__init__.py, latent_painter).
 * @typedef {Object} PaintData
 * @property {string} version    changes with the latent (another photo or VAE)
 * @property {string} latent     the latent's mean, float32 (C, h, w), base64
 * @property {number[]} shape    (C, h, w)
 * @property {number} factor     image pixels per latent position, along each side
 * @property {number} reach      latent positions a change reaches in the decoded picture
 * @property {string} image      Python's picture of the latent as painted so far (PNG data URI)
 * @property {number} seq        the painting Python's picture shows
 * @property {number[][]} dabs   the dabs Python holds (a reload or another render keeps them)
 * @property {number} picture_px
 * @property {number} max_dabs   the most dabs one painting may hold (latent/spatial.MAX_DABS)
 * @property {string|null} source the second photo's latent, float32 (C, h, w), base64: the copying brush's
 * @property {import("../common.js").GraphSpec|null} live
 */

/**
 * A dab of the brush on `z` (Float32Array, C*h*w), weight (1 - d^2/R^2)^2 within R (latent/spatial.brush):
 * on one channel, amount x weight added; channel -1, every channel moved that weight of the way to
 * `source` (the second photo's latent): a patch of it copied in, blended at the rim.
 */
export function dab(z, [c, h, w], [channel, row, col, radius, amount], source = null) {
  const r0 = Math.max(0, Math.ceil(row - radius)), r1 = Math.min(h - 1, Math.floor(row + radius));
  const c0 = Math.max(0, Math.ceil(col - radius)), c1 = Math.min(w - 1, Math.floor(col + radius));
  for (let i = r0; i <= r1; i++) {
    for (let j = c0; j <= c1; j++) {
      const inside = Math.max(0, 1 - ((i - row) ** 2 + (j - col) ** 2) / radius ** 2);
      const weight = inside * inside;
      if (channel >= 0) z[channel * h * w + i * w + j] += amount * weight;
      else for (let k = 0; k < c; k++) { const at = k * h * w + i * w + j; z[at] += amount * weight * (source[at] - z[at]); }
    }
  }
  return [r0, r1 + 1, c0, c1 + 1];  // the rows and columns it may have changed, [start, end)
}

/** latent/spatial.paint_latent: the dabs applied in turn to a copy of `z`. */
export function paintLatent(z, shape, dabs, source = null) {
  const out = Float32Array.from(z);
  dabs.forEach((d) => dab(out, shape, d, source));
  return out;
}

const union = (a, b) => (a ? [Math.min(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.max(a[3], b[3])] : b);
const grow = ([r0, r1, c0, c1], by, h, w) => [Math.max(0, r0 - by), Math.min(h, r1 + by), Math.max(0, c0 - by), Math.min(w, c1 + by)];

const HTML = `<div class="pt-pictures">
    <figure><canvas class="pt-image" role="img" aria-label="the painted latent, decoded: paint on it with the mouse, a pen or a finger"></canvas>
      <figcaption>decoded — paint here</figcaption></figure>
    <figure><canvas class="pt-channel" role="img" aria-label="the chosen channel of the latent: paint on it too"></canvas>
      <figcaption class="pt-channel-caption"></figcaption></figure>
  </div>
  <div class="pt-tools">
    <div class="pt-channels" role="radiogroup" aria-label="channel to paint on"></div>
    <label>Brush <input type="range" class="pt-radius" min="0.5" max="8" step="0.5" aria-label="brush radius in latent positions"></label>
    <output class="pt-radius-value"></output>
    <label>Amount <input type="range" class="pt-amount" min="-3" max="3" step="0.25" aria-label="what the brush adds"></label>
    <output class="pt-amount-value"></output>
    <button type="button" data-act="undo">Undo stroke</button><button type="button" data-act="reset">Start again</button>
  </div>`;

const newState = () => ({ version: null, base: null, z: null, shape: null, dabs: [], strokes: [], stroke: null, seq: 0,
                          answered: 0, channel: 0, radius: 2, amount: 2, dirty: null, decoding: false, pixels: null,
                          live: null, model: null, spec: null, decodes: 0, decodeMs: 0, shownImage: null, last: null,
                          source: null, copying: false });

/** @param {{data: PaintData, setStateValue: Function, parentElement: HTMLElement}} component */
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const { root, state, fresh, signal } = mount(parentElement, "pt-root", HTML, newState);
  const image = root.querySelector(".pt-image"), channelMap = root.querySelector(".pt-channel");
  const radius = root.querySelector(".pt-radius"), amount = root.querySelector(".pt-amount");
  const report = reporter(state, setStateValue);
  const [C, h, w] = data.shape, f = data.factor;
  image.style.width = data.picture_px + "px";
  channelMap.style.width = data.picture_px + "px";

  const drawChannel = () => {  // the chosen channel, -3 black to +3 white, one canvas pixel per position
    const pixels = new ImageData(w, h);
    for (let p = 0; p < h * w; p++) {
      const v = Math.floor(Math.min(Math.max((state.z[state.channel * h * w + p] + 3) / 6, 0), 1) * 255 + 0.5);
      pixels.data.set([v, v, v, 255], p * 4);
    }
    putPixels(channelMap, pixels);
    root.querySelector(".pt-channel-caption").textContent = `channel c${state.channel}: −3 black, +3 white — paint here too`;
  };
  const showServerPicture = () => loadPicture(data.image, state, (pixels) => {
    state.pixels = pixels;
    putPixels(image, pixels);
    root.dataset.source = "server";
  });
  const decodeWindows = async () => {  // the changed windows, decoded in turn; changes meanwhile join the next
    if (state.decoding) return;
    state.decoding = true;
    try {
      while (state.dirty && state.live) {
        const changed = grow(state.dirty, data.reach, h, w);  // what can differ in the picture
        const [r0, r1, c0, c1] = grow(changed, data.reach, h, w);  // what it depends on
        state.dirty = null;
        const rows = r1 - r0, cols = c1 - c0, input = new Float32Array(C * rows * cols);
        for (let k = 0; k < C; k++) {
          for (let i = 0; i < rows; i++) {
            const from = k * h * w + (r0 + i) * w + c0;
            input.set(state.z.subarray(from, from + cols), (k * rows + i) * cols);
          }
        }
        const started = performance.now();
        const { ort, session } = state.live;
        const out = (await session.run({ z: new ort.Tensor("float32", input, [1, C, rows, cols]) })).image.data;
        const H = rows * f, W = cols * f, plane = H * W, target = state.pixels.data;
        for (let y = (changed[0] - r0) * f; y < (changed[1] - r0) * f; y++) {
          for (let x = (changed[2] - c0) * f; x < (changed[3] - c0) * f; x++) {
            const at = ((r0 * f + y) * w * f + c0 * f + x) * 4;
            for (let k = 0; k < 3; k++) target[at + k] = Math.floor(Math.min(Math.max(out[k * plane + y * W + x], 0), 1) * 255 + 0.5);
          }
        }
        image.getContext("2d").putImageData(state.pixels, 0, 0, changed[2] * f, changed[0] * f,
                                            (changed[3] - changed[2]) * f, (changed[1] - changed[0]) * f);
        state.decodes += 1;
        state.decodeMs += performance.now() - started;
        Object.assign(root.dataset, { decodes: state.decodes, decodeMs: state.decodeMs.toFixed(1), source: "browser" });
      }
    } catch (error) {
      state.live = null;
      report("live", { model: state.spec.model, ok: false, reason: String(error.message || error).split("\n")[0].slice(0, 160) });
    } finally {
      state.decoding = false;
    }
  };
  const repaint = (rect) => {
    state.dirty = union(state.dirty, rect);
    drawChannel();
    if (state.live && state.pixels) decodeWindows();
  };
  const send = () => {
    state.seq += 1;
    setStateValue("dabs", { version: state.version, dabs: state.dabs, seq: state.seq });
  };
  const at = (event) => {  // the pointer in latent positions (a position's centre is at its pixels' centre)
    const box = event.currentTarget.getBoundingClientRect();
    return [((event.clientY - box.top) / box.height) * h - 0.5, ((event.clientX - box.left) / box.width) * w - 0.5];
  };
  const paintTo = ([row, col]) => {  // dabs every half radius from the last point, so a fast hand leaves no gaps
    const [fromRow, fromCol] = state.last ?? [row, col];
    const steps = Math.max(1, Math.ceil(Math.hypot(row - fromRow, col - fromCol) / (state.radius / 2)));
    let rect = null;
    for (let s = state.last ? 1 : 0; s <= steps; s++) {
      const t = s / steps;
      const one = [state.copying ? -1 : state.channel, +(fromRow + t * (row - fromRow)).toFixed(3), +(fromCol + t * (col - fromCol)).toFixed(3), state.radius, state.copying ? 1 : state.amount];
      state.dabs.push(one);
      rect = union(rect, dab(state.z, data.shape, one, state.source));
    }
    state.last = [row, col];
    if (rect) repaint(rect);
  };
  state.on = {
    down: (event) => {
      if (state.stroke !== null || state.dabs.length >= data.max_dabs) return;
      try { event.currentTarget.setPointerCapture(event.pointerId); } catch (e) { /* a pointer the browser no longer tracks */ }
      state.stroke = state.dabs.length;
      state.last = null;
      paintTo(at(event));
    },
    move: (event) => { if (state.stroke !== null && state.dabs.length < data.max_dabs) paintTo(at(event)); },
    up: () => {
      if (state.stroke === null) return;
      state.strokes.push(state.stroke);
      state.stroke = null;
      send();
    },
    undo: () => {
      if (!state.strokes.length) return;
      const from = state.strokes.pop();
      const undone = state.dabs.splice(from);
      state.z = paintLatent(state.base, data.shape, state.dabs, state.source);
      let rect = null;
      undone.forEach(([, row, col, r]) => { rect = union(rect, [Math.max(0, Math.ceil(row - r)), Math.min(h, Math.floor(row + r) + 1), Math.max(0, Math.ceil(col - r)), Math.min(w, Math.floor(col + r) + 1)]); });
      repaint(rect);
      send();
    },
    reset: () => {
      state.dabs = [];
      state.strokes = [];
      state.z = Float32Array.from(state.base);
      repaint([0, h, 0, w]);
      send();
    },
    channel: (k) => { state.copying = k < 0; if (k >= 0) state.channel = k; drawChannel(); },
    radius: () => { state.radius = parseFloat(radius.value); root.querySelector(".pt-radius-value").textContent = `${state.radius} positions`; },
    amount: () => { state.amount = parseFloat(amount.value); root.querySelector(".pt-amount-value").textContent = `${state.amount > 0 ? "+" : ""}${state.amount}`; },
  };

  if (state.version !== data.version) {  // another latent: Python's dabs (none, or those a rerun kept) and its picture
    const base = new Float32Array(bytesFromBase64(data.latent).buffer);
    state.source = data.source ? new Float32Array(bytesFromBase64(data.source).buffer) : null;
    state.copying = state.copying && !!state.source;
    Object.assign(state, { version: data.version, base, dabs: data.dabs.map((d) => d.slice()), strokes: data.dabs.length ? [0] : [],
                           seq: data.seq, answered: data.seq, shownImage: null, dirty: null, pixels: null });
    state.z = paintLatent(base, data.shape, state.dabs, state.source);
    state.channel = Math.min(state.channel, C - 1);
    const group = root.querySelector(".pt-channels");
    group.innerHTML = "";
    for (let k = state.source ? -1 : 0; k < C; k++) {  // -1: copy from the second photo
      const label = document.createElement("label");
      label.innerHTML = `<input type="radio" value="${k}"> ${k < 0 ? "copy from the second photo" : `c${k}`}`;
      const radio = label.firstChild;
      radio.name = `pt-channel-${data.version}`;
      radio.checked = k < 0 ? state.copying : k === state.channel && !state.copying;
      radio.addEventListener("change", () => state.on.channel(k), { signal });
      group.appendChild(label);
    }
    [image.width, image.height] = [w * f, h * f];
    drawChannel();
    showServerPicture();
  } else if (data.seq > state.answered || (!state.live && data.seq === state.seq && data.image !== state.shownImage)) {
    state.answered = data.seq;  // the server's picture of the painting (it decodes when the page cannot)
    if (!state.live) showServerPicture();
  }

  followModel(root, state, data.live, report);

  if (fresh) {
    radius.value = state.radius;
    amount.value = state.amount;
    state.on.radius();
    state.on.amount();
    for (const canvas of [image, channelMap]) {
      canvas.addEventListener("pointerdown", (e) => state.on.down(e), { signal });
      canvas.addEventListener("pointermove", (e) => state.on.move(e), { signal });
      canvas.addEventListener("pointerup", () => state.on.up(), { signal });
      canvas.addEventListener("pointercancel", () => state.on.up(), { signal });
    }
    radius.addEventListener("input", () => state.on.radius(), { signal });
    amount.addEventListener("input", () => state.on.amount(), { signal });
    root.querySelector("[data-act=undo]").addEventListener("click", () => state.on.undo(), { signal });
    root.querySelector("[data-act=reset]").addEventListener("click", () => state.on.reset(), { signal });
  }
  return cleanup(root);
}

// The latent map: every encoded image is a dot, drawn by the page itself. Dots are written
// straight into the canvas's pixel buffer (a disc of pixels each), so a pan or a zoom of tens of
// thousands of dots redraws within a frame; the axes, rings and the star are drawn on top.
// Pointing: near a dot, a card beside the pointer names it and, with the decoder in the page
// (live.js), shows its reconstruction (the decode of its posterior mean); on a PCA map any empty
// place is decoded too, z = mean + x * direction0 + y * direction1 (vae_explorer.latent.pca_inverse).
// A click tells Python what was picked; Python shows the image itself beside the map.
//
// The parts: unpacking the points (unpack: a spatial index, a drawing order), the view (fit,
// toScreen, toData), drawing (splat: the dots; drawAxes, drawStar, drawRings on top; render), the
// legend, the hit test (target), the card (showTip), and the hand (wireHand: pointer, pinch,
// wheel, buttons). Everything a listener needs is read from the root's state at the time.
import { bytesFromBase64, cleanup, decodeLatest, followModel, mount, reporter, shared } from "../common.js";

/**
 * What Python sends (map/__init__.py, latent_map).
 * @typedef {Object} MapData
 * @property {{id: string, coords?: string, labels?: string, label_bytes?: number, mu?: string|null, mu_bytes?: number|null}} cloud
 *   the points, base64 (coords float32 (N, 2), labels uint8/uint16, mu float32/float16 (N, D)); only `id` once the page holds them
 * @property {string[]} names    class names
 * @property {string[]} colours  "#rrggbb" per class
 * @property {string} method     "PCA", "t-SNE" or "UMAP"
 * @property {string[]} axes     the axes' names
 * @property {number[]} shape    (H, W) of a decoded picture
 * @property {{mean: number[], directions: number[][]}|null} plane  a PCA map's plane: every place decodes
 * @property {number[]|null} star   an uploaded image's place
 * @property {Object|null} picked   what Python shows as picked
 * @property {import("../common.js").GraphSpec|null} live
 * @property {string} hint
 * @property {number} height
 * @property {number} picture_px
 * @property {number} n_test     dots from here on are training images
 * @property {number} scale      larger dots and type (presentation mode)
 */

// The map's points, kept per tab so that they travel once (Python stops sending them once the
// page says it holds them; moving between pages keeps this).
const clouds = (shared.mapClouds ??= new Map());
const KEEP_CLOUDS = 6;
const HIT_PX = 7;  // a dot within this many CSS pixels of the pointer is "under" it
const DRAG_PX = 4; // a press that moves less than this is a click

function halves(raw) {  // IEEE 754 half-precision numbers (little-endian) as float32
  const h = new Uint16Array(raw.buffer), out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const sign = h[i] & 0x8000 ? -1 : 1, e = (h[i] >> 10) & 0x1f, f = h[i] & 0x3ff;
    out[i] = e === 0 ? sign * 2 ** -14 * (f / 1024) : e === 31 ? (f ? NaN : sign * Infinity) : sign * 2 ** (e - 15) * (1 + f / 1024);
  }
  return out;
}

function unpack(cloud) {
  const coords = new Float32Array(bytesFromBase64(cloud.coords).buffer);
  const raw = bytesFromBase64(cloud.labels);
  const labels = cloud.label_bytes === 2 ? new Uint16Array(raw.buffer) : raw;
  const mu = !cloud.mu ? null : cloud.mu_bytes === 2 ? halves(bytesFromBase64(cloud.mu)) : new Float32Array(bytesFromBase64(cloud.mu).buffer);
  const n = labels.length;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    const x = coords[2 * i], y = coords[2 * i + 1];
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  if (!n) [x0, x1, y0, y1] = [-1, 1, -1, 1];
  // a spatial index: buckets of a 128 x 128 grid over the points' bounding box
  const side = 128, bx = (x1 - x0) / side || 1, by = (y1 - y0) / side || 1;
  const heads = new Int32Array(side * side).fill(-1), next = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.min(side - 1, ((coords[2 * i] - x0) / bx) | 0) + side * Math.min(side - 1, ((coords[2 * i + 1] - y0) / by) | 0);
    next[i] = heads[c];
    heads[c] = i;
  }
  // a fixed shuffled drawing order, so that no class is always painted over the others
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let seed = 12345;
  for (let i = n - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return { id: cloud.id, n, coords, labels, mu, dim: mu ? mu.length / Math.max(n, 1) : 0, bounds: [x0, x1, y0, y1],
           index: { side, bx, by, heads, next }, order };
}

function rgb(colour) {  // "#rrggbb" -> [r, g, b]
  const v = parseInt(colour.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function niceStep(range) {
  const raw = range / 6, power = 10 ** Math.floor(Math.log10(raw)), f = raw / power;
  return power * (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10);
}

const HTML = `<div class="lm-legend" role="group" aria-label="classes: click to hide or show, double-click to show only one"></div>
  <div class="lm-stage">
    <canvas class="lm-map" role="img" aria-label="the latent map: one dot per encoded image"></canvas>
    <div class="lm-tools"><button data-zoom="1.5" title="Zoom in">+</button><button data-zoom="0.6667" title="Zoom out">&minus;</button><button data-reset title="Show every dot (double-click the map)">Fit</button></div>
    <div class="lm-wheel" hidden>Ctrl + wheel (or pinch, or + and &minus;) zooms the map</div>
    <div class="lm-tip" hidden><canvas role="img" aria-label="the place under the pointer, decoded"></canvas><output></output></div>
  </div>
  <div class="lm-hint"></div>`;

const newState = () => ({ cloud: null, view: null, hidden: new Set(), splat: null, dirty: true, size: [0, 0], hover: null,
                          picked: null, live: null, spec: null, model: null, decoding: false, again: false, z: null, zLabel: 0,
                          drawn: 0, pointers: new Map(), press: null, splatMs: [], observer: null, wheelNote: null });

// --- the view: data coordinates <-> CSS pixels within the canvas ---------------------------------
function fit(state) {
  const [x0, x1, y0, y1] = state.cloud ? state.cloud.bounds : [-1, 1, -1, 1];
  const [w, h] = state.size;
  const pad = 28;  // CSS px kept free for the axes' numbers
  const scale = Math.min((w - 2 * pad) / Math.max(x1 - x0, 1e-9), (h - 2 * pad) / Math.max(y1 - y0, 1e-9));
  state.view = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, s: scale };
}

function toScreen(state, x, y) {
  const { cx, cy, s } = state.view, [w, h] = state.size;
  return [w / 2 + (x - cx) * s, h / 2 - (y - cy) * s];
}

function toData(state, px, py) {
  const { cx, cy, s } = state.view, [w, h] = state.size;
  return [cx + (px - w / 2) / s, cy - (py - h / 2) / s];
}

const dotOnScreen = (state, i) => toScreen(state, state.cloud.coords[2 * i], state.cloud.coords[2 * i + 1]);

function zoomAt(state, px, py, factor) {  // about a point that stays where it is
  const [x, y] = toData(state, px, py);
  state.view.s *= factor;
  const [nx, ny] = toData(state, px, py);
  state.view.cx += x - nx;
  state.view.cy += y - ny;
  state.dirty = true;
}

// --- drawing ---------------------------------------------------------------------------------------
function background(root) {
  const probe = document.createElement("canvas").getContext("2d");
  probe.fillStyle = "#ffffff";
  probe.fillStyle = getComputedStyle(root).getPropertyValue("--st-background-color").trim() || "#ffffff";
  return probe.fillStyle.startsWith("#") ? rgb(probe.fillStyle) : [255, 255, 255];
}

// The dots, into a pixel buffer of the canvas's size: a disc of pixels each, in a fixed shuffled order.
function splat(root, canvas) {
  const state = root._state, cloud = state.cloud;
  const started = performance.now();
  const W = canvas.width, H = canvas.height, dpr = W / state.size[0];
  const image = new ImageData(W, H);
  const buffer = new Uint32Array(image.data.buffer);
  const [br, bg, bb] = background(root);
  buffer.fill((255 << 24 | bb << 16 | bg << 8 | br) >>> 0);
  if (cloud) {
    const packed = state.colours.map(([r, g, b]) => (255 << 24 | b << 16 | g << 8 | r) >>> 0);
    const radius = (cloud.n > 20000 ? 1.5 : cloud.n > 1000 ? 2.5 : 3.8) * dpr * state.scale;  // 3x3, 5x5 and 7x7 discs at dpr 1, no spikes
    const offsets = [];
    const r = Math.ceil(radius);
    for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= radius * radius) offsets.push([dx, dy]);
    const flat = Int32Array.from(offsets.map(([dx, dy]) => dy * W + dx));
    const { cx, cy, s } = state.view, [w, h] = state.size;
    const { coords, labels, order } = cloud;
    for (let o = 0; o < cloud.n; o++) {
      const i = order[o], k = labels[i];
      if (state.hidden.has(k)) continue;
      const px = Math.round((w / 2 + (coords[2 * i] - cx) * s) * dpr), py = Math.round((h / 2 - (coords[2 * i + 1] - cy) * s) * dpr);
      if (px < -r || py < -r || px >= W + r || py >= H + r) continue;
      const colour = packed[k % packed.length];
      if (px >= r && py >= r && px < W - r && py < H - r) {
        const base = py * W + px;
        for (let j = 0; j < flat.length; j++) buffer[base + flat[j]] = colour;
      } else {
        for (const [dx, dy] of offsets) {
          const x = px + dx, y = py + dy;
          if (x >= 0 && y >= 0 && x < W && y < H) buffer[y * W + x] = colour;
        }
      }
    }
  }
  state.splat = image;
  state.dirty = false;
  state.splatMs.push(performance.now() - started);
  if (state.splatMs.length > 200) state.splatMs.shift();
}

// Numbers on a PCA map's axes (its distances are real) and the axes' names.
function drawAxes(ctx, root) {
  const state = root._state, [w, h] = state.size;
  const style = getComputedStyle(root), family = style.fontFamily || "sans-serif";
  const fontPx = 12 * state.scale;
  ctx.font = `${fontPx}px ${family}`;
  ctx.fillStyle = style.color || "#333";
  ctx.globalAlpha = 0.75;
  if (state.method === "PCA") {
    const [x0, y1] = toData(state, 0, 0), [x1, y0] = toData(state, w, h);
    const step = niceStep(Math.min(x1 - x0, y1 - y0) * 1.0 + 1e-12);
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    // a true minus sign, and the y numbers above their tick: a tick just before a number read as a minus ("2" as "-2")
    const number = (v) => (+v.toFixed(6) + "").replace("-", "\u2212");
    for (let v = Math.ceil(x0 / step) * step; v <= x1; v += step) {
      const [sx] = toScreen(state, v, 0);
      ctx.fillRect(sx, h - 4, 1, 4);
      ctx.fillText(number(v), sx, h - 5);
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    for (let v = Math.ceil(y0 / step) * step; v <= y1; v += step) {
      const [, sy] = toScreen(state, 0, v);
      ctx.fillRect(0, sy, 6, 1);
      ctx.fillText(number(v), 2, sy - 2);
    }
  }
  ctx.globalAlpha = 1;
  ctx.font = `600 ${13 * state.scale}px ${family}`;
  ctx.textAlign = "right";
  ctx.textBaseline = "bottom";
  ctx.fillText(state.axes[0] + " →", w - 8, h - 8 - fontPx * 1.2);
  ctx.save();
  ctx.translate((state.method === "PCA" ? 28 : 10) + 13 * state.scale, 10);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(state.axes[1] + " →", 0, 0);
  ctx.restore();
}

// An uploaded image's place: a yellow star with a black and a white edge (it shows on dark dots and on white).
function drawStar(ctx, state) {
  const [sx, sy] = toScreen(state, state.star[0], state.star[1]);
  const big = state.scale;  // larger in presentation mode, like the type
  ctx.beginPath();
  for (let k = 0; k < 10; k++) {
    const radius = (k % 2 ? 6 : 15) * big, angle = -Math.PI / 2 + (k * Math.PI) / 5;
    ctx[k ? "lineTo" : "moveTo"](sx + radius * Math.cos(angle), sy + radius * Math.sin(angle));
  }
  ctx.closePath();
  ctx.fillStyle = "#ffd400";
  ctx.fill();
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 2.5;
  ctx.stroke();
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 1;
  ctx.stroke();
  ctx.font = `600 ${14 * big}px sans-serif`;
  ctx.textAlign = "center";
  ctx.lineWidth = 3;
  ctx.strokeStyle = "#fff";
  ctx.strokeText("your image", sx, sy - 17 * big);
  ctx.fillStyle = "#000";
  ctx.fillText("your image", sx, sy - 17 * big);
}

function ring(ctx, x, y, radius, colour, width) {
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.stroke();
}

// What was picked (a thick ring) and what the pointer is on (a thin one).
function drawRings(ctx, state) {
  const where = (hit) => (hit.index !== undefined ? dotOnScreen(state, hit.index) : toScreen(state, hit.x, hit.y));
  if (state.picked && state.cloud) {
    const [sx, sy] = where(state.picked);
    ring(ctx, sx, sy, 9, "#fff", 5);
    ring(ctx, sx, sy, 9, "#000", 2.5);
  }
  if (state.hover) {
    const [sx, sy] = where(state.hover);
    ring(ctx, sx, sy, state.hover.index !== undefined ? 7 : 5, "#000", 1.5);
  }
}

function render(root) {
  const state = root._state, canvas = root.querySelector(".lm-map");
  const cssW = Math.max(canvas.clientWidth, 50), cssH = Math.max(canvas.clientHeight, 50);
  const dpr = window.devicePixelRatio || 1;
  if (state.size[0] !== cssW || state.size[1] !== cssH || canvas.width !== Math.round(cssW * dpr)) {
    state.size = [cssW, cssH];
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    state.dirty = true;
  }
  if (!state.view) fit(state);
  if (state.dirty || !state.splat) splat(root, canvas);
  const ctx = canvas.getContext("2d");
  ctx.putImageData(state.splat, 0, 0);
  ctx.save();
  ctx.scale(dpr, dpr);
  drawAxes(ctx, root);
  if (state.star) drawStar(ctx, state);
  drawRings(ctx, state);
  ctx.restore();
}

// --- the legend: one button per class, with its count ---------------------------------------------
function buildLegend(root, data) {
  const state = root._state, cloud = state.cloud, legend = root.querySelector(".lm-legend");
  const counts = new Array(state.names.length).fill(0);
  if (cloud) for (let i = 0; i < cloud.n; i++) counts[cloud.labels[i]] += 1;
  const key = JSON.stringify([state.names, data.colours, counts]);
  if (legend.dataset.key === key) return;
  legend.dataset.key = key;
  legend.replaceChildren(...state.names.map((name, k) => {
    const item = document.createElement("button");
    item.type = "button";
    item.dataset.k = String(k);
    item.innerHTML = `<span class="lm-swatch" style="background:${data.colours[k % data.colours.length]}"></span><span></span>`;
    item.lastChild.textContent = `${name} (${counts[k].toLocaleString()})`;
    item.title = `${name}: ${counts[k].toLocaleString()} images. Click to hide or show; double-click to show only these.`;
    return item;
  }));
}

function syncLegend(root) {
  const hidden = root._state.hidden;
  root.querySelectorAll(".lm-legend button").forEach((b) => b.setAttribute("aria-pressed", String(!hidden.has(Number(b.dataset.k)))));
}

// A click hides or shows a class; a double click shows it alone.
function toggleClass(root, k, double) {
  const state = root._state;
  if (double) {  // the first click of the two has toggled k already
    const alone = state.names.every((_, j) => j === k || state.hidden.has(j));
    state.hidden = alone ? new Set() : new Set(state.names.map((_, j) => j).filter((j) => j !== k));
  } else if (state.hidden.has(k)) state.hidden.delete(k);
  else state.hidden.add(k);
  state.dirty = true;
  syncLegend(root);
  render(root);
}

// --- the hit test: what a pointer at a CSS position points at --------------------------------------
function nearest(state, px, py) {  // the visible dot closest to a CSS position, within HIT_PX
  const cloud = state.cloud;
  if (!cloud || !cloud.n) return -1;
  const [x, y] = toData(state, px, py), reach = HIT_PX / state.view.s;
  const { side, bx, by, heads, next } = cloud.index, [x0, , y0] = cloud.bounds;
  const c0 = Math.max(0, Math.floor((x - reach - x0) / bx)), c1 = Math.min(side - 1, Math.floor((x + reach - x0) / bx));
  const r0 = Math.max(0, Math.floor((y - reach - y0) / by)), r1 = Math.min(side - 1, Math.floor((y + reach - y0) / by));
  let best = -1, bestD = reach * reach;
  for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) {
    for (let i = heads[c + side * r]; i >= 0; i = next[i]) {
      if (state.hidden.has(cloud.labels[i])) continue;
      const d = (cloud.coords[2 * i] - x) ** 2 + (cloud.coords[2 * i + 1] - y) ** 2;
      if (d <= bestD) { bestD = d; best = i; }
    }
  }
  return best;
}

function nearestLabel(cloud, x, y) {  // the class of the closest dot anywhere (a conditional model's class for an empty place)
  if (!cloud || !cloud.n) return 0;
  let best = 0, bestD = Infinity;
  for (let i = 0; i < cloud.n; i++) {
    const d = (cloud.coords[2 * i] - x) ** 2 + (cloud.coords[2 * i + 1] - y) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  }
  return cloud.labels[best];
}

function planePoint(plane, x, y) {  // z = mean + x * direction0 + y * direction1
  const z = plane.mean.slice();
  plane.directions.forEach((d, k) => d.forEach((v, i) => { z[i] += (k ? y : x) * v; }));
  return z;
}

function target(state, px, py) {  // {index, label} for a dot, {x, y, label} for a PCA map's empty place, or null
  const i = nearest(state, px, py);
  if (i >= 0) return { index: i, label: state.cloud.labels[i] };
  if (state.method !== "PCA" || !state.plane || !state.cloud) return null;
  const [x, y] = toData(state, px, py);
  return { x, y, label: state.spec && state.spec.cond_dim ? nearestLabel(state.cloud, x, y) : 0 };
}

// --- the card beside the pointer: what is under it, decoded when the page can ---------------------
function showTip(root, px, py) {
  const state = root._state, hit = state.hover, cloud = state.cloud;
  const tip = root.querySelector(".lm-tip"), tipCanvas = tip.querySelector("canvas");
  if (!hit) { tip.hidden = true; return; }
  let text;
  if (hit.index !== undefined) {
    text = (hit.index < state.nTest ? `test image ${hit.index}` : `training image ${hit.index - state.nTest}`) +
           `: ${state.names[hit.label]}` + (state.live ? "\nits reconstruction" : "\nclick to see it");
  } else {
    text = `${state.axes[0]} = ${hit.x.toFixed(2)}, ${state.axes[1]} = ${hit.y.toFixed(2)}` +
           (state.live ? "\ndecoded here" + (state.spec.cond_dim ? ` as ${state.names[hit.label]}` : "") : "\nclick to decode it");
  }
  tip.querySelector("output").textContent = text;
  const decodable = state.live && (hit.index === undefined || cloud.mu);
  tipCanvas.hidden = !decodable;
  if (decodable) {
    state.z = hit.index !== undefined ? Array.from(cloud.mu.subarray(hit.index * cloud.dim, (hit.index + 1) * cloud.dim))
                                      : planePoint(state.plane, hit.x, hit.y);
    state.zLabel = hit.label;
    state.decodeNow();
  }
  tip.hidden = false;
  const [w, h] = state.size, box = tip.getBoundingClientRect();
  tip.style.left = (px + 18 + box.width > w ? px - 18 - box.width : px + 18) + "px";
  tip.style.top = Math.min(Math.max(py - box.height / 2, 0), h - box.height) + "px";
}

function hideTip(root) {
  root._state.hover = null;
  root.querySelector(".lm-tip").hidden = true;
}

// --- the hand: pan with a drag, pinch or Ctrl + wheel to zoom, point, click to pick ----------------
function wireHand(root, signal) {
  const state = root._state, canvas = root.querySelector(".lm-map");
  const listen = (element, type, handler, options = {}) => element.addEventListener(type, handler, { ...options, signal });
  const local = (event) => {
    const box = canvas.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  };
  listen(canvas, "pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    state.pointers.set(event.pointerId, local(event));
    if (state.pointers.size === 1) state.press = { at: local(event), moved: false };
  });
  listen(canvas, "pointermove", (event) => {
    const [px, py] = local(event);
    if (state.pointers.has(event.pointerId)) {
      const before = state.pointers.get(event.pointerId);
      if (state.pointers.size === 2) {  // pinch: zoom about the middle of the two fingers
        const [other] = [...state.pointers.entries()].filter(([id]) => id !== event.pointerId).map(([, p]) => p);
        const d0 = Math.hypot(before[0] - other[0], before[1] - other[1]), d1 = Math.hypot(px - other[0], py - other[1]);
        if (d0 > 0) zoomAt(state, (px + other[0]) / 2, (py + other[1]) / 2, d1 / d0);
      } else {
        state.view.cx -= (px - before[0]) / state.view.s;
        state.view.cy += (py - before[1]) / state.view.s;
        state.dirty = true;
      }
      state.pointers.set(event.pointerId, [px, py]);
      if (state.press && Math.hypot(px - state.press.at[0], py - state.press.at[1]) > DRAG_PX) state.press.moved = true;
      if (state.press && state.press.moved) hideTip(root);
      requestAnimationFrame(() => render(root));
      return;
    }
    state.hover = target(state, px, py);
    showTip(root, px, py);
    render(root);
  });
  const release = (event) => {
    const press = state.press;
    state.pointers.delete(event.pointerId);
    if (state.pointers.size === 0) state.press = null;
    if (event.type !== "pointerup" || !press || press.moved) return;
    const hit = target(state, ...local(event));
    if (!hit) return;
    state.picked = hit.index !== undefined ? { index: hit.index } : { x: hit.x, y: hit.y, label: hit.label };
    render(root);
    state.tell("picked", state.picked);
  };
  listen(canvas, "pointerup", release);
  listen(canvas, "pointercancel", release);
  listen(canvas, "pointerleave", () => { if (!state.pointers.size) { hideTip(root); render(root); } });
  // The wheel scrolls the page (a lecture scrolls past the map); Ctrl + wheel zooms, as does a
  // touchpad's pinch (which browsers send as a wheel with ctrlKey). A plain wheel says so once.
  listen(canvas, "wheel", (event) => {
    if (!(event.ctrlKey || event.metaKey)) {
      const note = root.querySelector(".lm-wheel");
      note.hidden = false;
      clearTimeout(state.wheelNote);
      state.wheelNote = setTimeout(() => { note.hidden = true; }, 1500);
      return;
    }
    event.preventDefault();
    zoomAt(state, ...local(event), Math.exp(-event.deltaY * 0.0015));
    requestAnimationFrame(() => render(root));
  }, { passive: false });
  listen(canvas, "dblclick", () => { state.view = null; state.dirty = true; render(root); });
  listen(root.querySelector(".lm-tools"), "click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.reset !== undefined) state.view = null;
    else zoomAt(state, state.size[0] / 2, state.size[1] / 2, Number(button.dataset.zoom));
    state.dirty = true;
    render(root);
  });
  listen(root.querySelector(".lm-legend"), "click", (event) => {
    const button = event.target.closest("button");
    if (button) toggleClass(root, Number(button.dataset.k), event.detail === 2);
  });
  state.observer = new ResizeObserver(() => { state.dirty = true; render(root); });
  state.observer.observe(canvas);
}

/** @param {{data: MapData, setStateValue: Function, parentElement: HTMLElement}} component */
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const { root, state, fresh, signal } = mount(parentElement, "lm-root", HTML, newState);
  const report = reporter(state, setStateValue);
  state.tell = report;
  const tipCanvas = root.querySelector(".lm-tip canvas");
  Object.assign(state, { names: data.names, colours: data.colours.map(rgb), method: data.method, plane: data.plane,
                         star: data.star, axes: data.axes, shape: data.shape, nTest: data.n_test ?? Infinity, scale: data.scale || 1 });
  root.querySelector(".lm-map").style.height = data.height + "px";
  tipCanvas.style.width = tipCanvas.style.height = data.picture_px + "px";
  if (!state.drawn) [tipCanvas.height, tipCanvas.width] = data.shape;
  root.querySelector(".lm-hint").textContent = data.hint;
  state.toScreen = (i) => dotOnScreen(state, i);  // for tests
  state.toScreenXY = (x, y) => toScreen(state, x, y);
  state.render = () => render(root);  // for benchmarks

  // the points: unpacked once per tab; Python is told whether the page holds them
  if (data.cloud.coords && !clouds.has(data.cloud.id)) {
    clouds.set(data.cloud.id, unpack(data.cloud));
    while (clouds.size > KEEP_CLOUDS) clouds.delete(clouds.keys().next().value);
  }
  const cloud = clouds.get(data.cloud.id) || null;
  report("held", { id: data.cloud.id, ok: !!cloud });  // without it Python sends the points again
  if (cloud !== state.cloud) {
    Object.assign(state, { cloud, view: null, hover: null, dirty: true });  // a new map: fit it
  }
  root.dataset.points = cloud ? String(cloud.n) : "0";
  buildLegend(root, data);
  syncLegend(root);

  // the decoder
  state.decodeNow = () => decodeLatest(state, () => [state.z, state.zLabel],
    (pixels) => {
      tipCanvas.getContext("2d").putImageData(pixels, 0, 0);
      state.drawn += 1;
      root.dataset.source = "browser";
    },
    (why) => { root.dataset.mode = "server"; report("live", { model: state.spec.model, ok: false, reason: why }); });
  followModel(root, state, data.live, report);

  if (fresh) wireHand(root, signal);
  const picked = data.picked;
  state.picked = picked && cloud && (picked.index === undefined || picked.index < cloud.n) ? picked : null;
  state.dirty = true;
  render(root);
  return cleanup(root, () => {
    if (state.observer) state.observer.disconnect();
    clearTimeout(state.wheelNote);
  });
}

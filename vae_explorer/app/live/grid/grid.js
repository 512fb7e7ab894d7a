// A grid of decoded cells (Python's PNG) where pointing decodes the place under the pointer: with
// the decoder in the page (live.js), every pointer move over the grid is turned into z and drawn
// beside it. Cell (col, row) centres are z = origin + f0(col) * axes[0].vector + f1(row) * axes[1].vector,
// each f linear (start + step * x) or probit (the inverse normal CDF of start + step * x), exactly
// the grids vae_explorer.latent.plane_grid and manifold_grid decode; between centres x is continuous.
import { cleanup, decodeLatest, followModel, mount, outlinePixels, reporter } from "../common.js";

/**
 * What Python sends (grid/__init__.py, grid_explorer).
 * @typedef {Object} GridData
 * @property {string} grid      the grid as a PNG data URI
 * @property {number} cols
 * @property {number} rows
 * @property {number[]} origin  z at cell position (0, 0) before the axes move it
 * @property {({vector: number[], kind: "linear"|"probit", start: number, step: number}|null)[]} axes  columns, rows
 * @property {string[]} names   the axes' names
 * @property {number[]} shape   (H, W) of one decoded picture
 * @property {import("../common.js").GraphSpec|null} live
 * @property {string} hint
 * @property {number} grid_px
 * @property {number} picture_px
 * @property {number} gap       pixels between cells (and around them), at the PNG's own size
 */

// Acklam's rational approximation of the inverse normal CDF (relative error below 1.2e-9).
export function probit(p) {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - low) return -probit(1 - p);
  const q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

// The coordinate along one axis at continuous cell position u (a cell's centre at integers).
export function axisValue(axis, u) {
  const t = axis.start + axis.step * u;
  return axis.kind === "probit" ? probit(Math.min(Math.max(t, 1e-4), 1 - 1e-4)) : t;
}

export function pointAt(origin, axes, x, y) {
  const z = origin.slice();
  [x, y].forEach((u, k) => {
    if (!axes[k]) return;
    const f = axisValue(axes[k], u);
    axes[k].vector.forEach((v, i) => { z[i] += f * v; });
  });
  return z;
}

// A signed number as an axis end shows it: "+2.5", "−2.5" (a true minus sign, never a hyphen).
const signed = (v) => (v < 0 ? "\u2212" : "+") + Math.abs(v).toFixed(1);

const HTML = `<div class="lg-plot"><div class="lg-y"><span></span><b></b><span></span></div>
  <img class="lg-grid" alt="a grid of decoded latent points"><div class="lg-x"><span></span><b></b><span></span></div></div>
  <div class="lg-side"><canvas role="img" aria-label="the point under the pointer, decoded"></canvas><output></output></div>`;

const newState = () => ({ live: null, model: null, spec: null, decoding: false, again: false, z: null, drawn: 0 });

// The axes' names and the values at the first and last cells' centres (rows run top to bottom).
function labelAxes(root, data) {
  [[".lg-x", data.axes[0], data.cols, `${data.names[0]} \u2192`], [".lg-y", data.axes[1], data.rows, `${data.names[1]} \u2192`]]
    .forEach(([where, axis, n, name]) => {
      const box = root.querySelector(where);
      box.hidden = !axis;
      if (!axis) return;
      const [first, middle, last] = box.children;
      const ends = [signed(axisValue(axis, 0)), signed(axisValue(axis, n - 1))];
      if (where === ".lg-y") ends.reverse();  // drawn bottom to top
      [first.textContent, middle.textContent, last.textContent] = [ends[0], name, ends[1]];
    });
}

// The grid's own pixels under the pointer -> continuous cell position (cell centres at integers); cells
// are `gap` pixels apart, with a gap before the first: centre i is at gap / 2 + (i + 0.5) * pitch.
function cellAt(grid, state, event) {
  const box = grid.getBoundingClientRect();
  const cell = (offset, side, natural, n) => {
    const pitch = (natural - state.gap) / n;
    const u = (Math.min(Math.max(offset / side, 0), 1) * natural - state.gap / 2) / pitch - 0.5;
    return Math.min(Math.max(u, -0.5), n - 0.5);
  };
  const x = cell(event.clientX - box.left, box.width, grid.naturalWidth, state.cols);
  const y = state.rows > 1 ? cell(event.clientY - box.top, box.height, grid.naturalHeight, state.rows) : 0;
  return [x, y];
}

/** @param {{data: GridData, setStateValue: Function, parentElement: HTMLElement}} component */
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const { root, state, fresh, signal } = mount(parentElement, "lg-root", HTML, newState);
  const report = reporter(state, setStateValue);
  const grid = root.querySelector(".lg-grid");
  const canvas = root.querySelector("canvas");
  const output = root.querySelector("output");
  if (grid.getAttribute("src") !== data.grid) grid.setAttribute("src", data.grid);
  grid.style.width = data.grid_px + "px";
  root.querySelector(".lg-plot").style.maxWidth = `calc(100% - ${data.picture_px}px - 1.5rem)`;  // the decoded point stays beside the grid
  canvas.style.width = data.picture_px + "px";
  if (!state.drawn) [canvas.height, canvas.width] = data.shape;
  Object.assign(state, { origin: data.origin, axes: data.axes, cols: data.cols, rows: data.rows, names: data.names, gap: data.gap || 0 });
  labelAxes(root, data);
  outlinePixels(canvas, data.shape, data.picture_px);

  const decodeNow = () => decodeLatest(state, () => [state.z, state.spec.label],
    (pixels) => {
      canvas.getContext("2d").putImageData(pixels, 0, 0);
      state.drawn += 1;
      root.dataset.source = "browser";
    },
    (why) => { root.dataset.mode = "server"; report("live", { model: state.spec.model, ok: false, reason: why }); });
  state.on = {  // what pointing does, renewed at every render; the listener, added once, calls it
    point: (event) => {
      if (!state.live) return;
      const [x, y] = cellAt(grid, state, event);
      state.z = pointAt(state.origin, state.axes, x, y);
      output.textContent = [x, y].map((u, k) => state.axes[k] && `${state.names[k]} = ${axisValue(state.axes[k], u).toFixed(2)}`)
        .filter(Boolean).join(",   ");
      decodeNow();
    },
  };

  followModel(root, state, data.live, report, () => {
    output.textContent = data.hint;
    state.z = pointAt(state.origin, state.axes, (state.cols - 1) / 2, (state.rows - 1) / 2);  // the grid's centre until pointed at
    decodeNow();
  });
  root.querySelector(".lg-side").hidden = !data.live;
  if (state.live) output.textContent = data.hint;

  if (fresh) grid.addEventListener("pointermove", (event) => state.on.point(event), { signal });
  return cleanup(root);
}

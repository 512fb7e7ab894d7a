// The latent slider panel. With the model's decoder loaded in the page (live.js), every `input`
// event is decoded here and drawn at once, and Python hears only the released value (`change`),
// for the URL, the download and the other panels. Without it (no WebAssembly, the runtime not
// installed or failing to load), each value makes the round trip to Python, with flow control:
// the next value goes only after Python has answered the previous ones (at most two in flight; each
// answer carries its `seq`) or 250 ms have passed, so a fast drag never queues up reruns.
import { attachGraph, cleanup, decodeLatest, loadPicture, mount, outlinePixels, putPixels, reporter } from "../common.js";

const MAX_IN_FLIGHT = 2;  // values sent but not yet answered by a picture
const MIN_GAP_MS = 25;    // at most 40 values a second
const KEEP = 1000;        // timing samples kept for benchmarks (window-inspectable, bounded)
const DRAG_FPS = 15;      // a released drag is sent as its values at this rate, for a GIF or MP4 of it
const DRAG_FRAMES = 150;  // at most 10 s of it

/**
 * What Python sends (sliders/__init__.py, latent_sliders).
 * @typedef {Object} SlidersData
 * @property {{index: number, label: string, title: string, collapsed: boolean}[]} dims  one per slider, in order
 * @property {number[]} values  the latent vector Python holds, taken whenever `version` changes
 * @property {number} version
 * @property {string} image     Python's picture of `values` (a PNG data URI)
 * @property {number[]} shape   (H, W) of the picture
 * @property {number} seq       the last value Python has answered
 * @property {number} picture_px
 * @property {number} low
 * @property {number} high
 * @property {import("../common.js").GraphSpec|null} live  the decoder, or null: Python decodes
 * @property {string[]|null} classes  a conditional model's class names
 * @property {number|null} label
 * @property {number} label_seq  Python's class is taken whenever this changes
 * @property {string|null} caption
 * @property {{image: string, live: Object|null, caption: string, shape: number[]}|null} twin  a second model (Compare)
 */

const HTML = '<div class="ls-picture"><canvas role="img" aria-label="image decoded from the latent vector"></canvas></div>' +
  '<div class="ls-controls"><div class="ls-classes" role="radiogroup" aria-label="class" hidden></div><div class="ls-sliders"></div></div>';

const newState = () => ({
  values: [], version: null, seq: 0, answered: 0, pending: false, timer: null, sentAt: 0, sentTimes: {},
  roundTrips: [], waits: [], drawn: 0, oldestUndrawn: null, movedSinceSend: false,
  live: null, spec: null, decoding: false, again: false, shownImage: null, label: null, twin: null,
});

function keep(list, value) {
  list.push(value);
  if (list.length > KEEP) list.shift();
}

// [[t, values]...] -> the values at every 1/DRAG_FPS s, the last one included
function resample(recording) {
  const out = [recording[0][1]];  // the values before the drag (its first input comes at the same moment)
  const t0 = recording[0][0], end = recording[recording.length - 1][0];
  let j = 0;
  for (let t = t0 + 1000 / DRAG_FPS; t <= end && out.length < DRAG_FRAMES - 1; t += 1000 / DRAG_FPS) {
    while (j + 1 < recording.length && recording[j + 1][0] <= t) j += 1;
    out.push(recording[j][1]);
  }
  out.push(recording[recording.length - 1][1]);
  return out;
}

// each input of a drag, with its time; a drag starts with the values before it
function record(state) {
  const now = performance.now();
  if (!state.recording || state.recordingClosed) {
    state.recording = [[now, state.before || state.values.slice()]];
    state.recordingClosed = false;
  }
  state.recording.push([now, state.values.slice()]);
  if (state.recording.length > 20 * DRAG_FRAMES) state.recording.splice(1, 1);
}

/** @param {{data: SlidersData, setStateValue: Function, parentElement: HTMLElement}} component */
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const { root, state, signal } = mount(parentElement, "ls-root", HTML, newState);
  const report = reporter(state, setStateValue);
  const canvas = root.querySelector(".ls-picture > canvas");
  canvas.style.width = data.picture_px + "px";
  if (!state.drawn && data.shape) [canvas.height, canvas.width] = data.shape;  // (H, W) until the first picture
  if (data.shape && !data.twin) outlinePixels(canvas, data.shape, data.picture_px);  // beside a twin, captions sit above
  root.dataset.mode = state.live ? "browser" : "server";

  const draw = (pixels, source) => {
    putPixels(canvas, pixels);
    root.dataset.source = source;
    state.drawn += 1;
    if (state.oldestUndrawn !== null) {
      keep(state.waits, performance.now() - state.oldestUndrawn);
      state.oldestUndrawn = null;
    }
  };
  const decodeNow = () => decodeLatest(state, () => [state.values, state.label], (pixels) => draw(pixels, "browser"),
    (why) => {  // a failing run: back to the server for the rest of this page's life
      root.dataset.mode = "server";
      report("live", { model: state.spec.model, ok: false, reason: why });
      schedule();
    });

  // --- talking to Python ---------------------------------------------------------------------
  const send = () => {
    state.timer = null;
    const now = performance.now();
    const inFlight = state.seq - state.answered;
    if (!state.live && (inFlight >= MAX_IN_FLIGHT || now - state.sentAt < MIN_GAP_MS) && now - state.sentAt < 250) {
      state.timer = setTimeout(send, 10);  // let Python catch up
      return;
    }
    if (!state.pending) return;
    state.pending = false;
    state.seq += 1;
    state.sentAt = now;
    state.sentTimes[state.seq] = now;
    state.movedSinceSend = false;
    const sent = { values: state.values.slice(), version: state.version, seq: state.seq };
    if (state.released && state.recording) {  // the drag just released, resampled in time
      sent.drag = resample(state.recording);
      state.recording = null;
    }
    state.released = false;
    setStateValue("z", sent);
  };
  const schedule = () => { state.pending = true; if (!state.timer) state.timer = setTimeout(send, 0); };

  const decodeTwin = showTwin(root, state, data, report);

  // --- Python's answer -----------------------------------------------------------------------
  if (typeof data.seq === "number" && data.seq > state.answered) {
    state.answered = data.seq;
    const sentAt = state.sentTimes[data.seq];
    if (sentAt) keep(state.roundTrips, performance.now() - sentAt);
    for (const seq of Object.keys(state.sentTimes)) if (Number(seq) <= data.seq) delete state.sentTimes[seq];
  }
  // Python's picture is shown unless this page has drawn a newer one itself (a drag since the send)
  const versionChanged = state.version !== null && state.version !== data.version;
  if ((!state.live || versionChanged || (data.seq >= state.seq && !state.movedSinceSend)) && data.image && state.shownImage !== data.image) {
    loadPicture(data.image, state, (pixels) => draw(pixels, "server"));
  }
  if (!state.live && state.pending && state.seq - state.answered < MAX_IN_FLIGHT) {  // send the newest value now
    clearTimeout(state.timer);
    send();
  }

  // --- the model in the page -----------------------------------------------------------------
  if (data.live && !(state.spec && state.spec.model === data.live.model && state.live)) {
    const spec = data.live;
    state.spec = { model: spec.model, shape: spec.shape, cond_dim: spec.cond_dim };
    attachGraph(spec, (value) => report("live", value), (loaded) => {
      if (state.spec.model !== spec.model) return false;  // another model came meanwhile
      state.live = loaded;
      root.dataset.mode = "browser";
    });
  } else if (!data.live && state.live) {
    state.live = null;
    root.dataset.mode = "server";
  }

  // what the sliders and buttons do, renewed at every render: their listeners, added once, call these
  state.on = {
    moved: () => {
      record(state);
      if (state.oldestUndrawn === null) state.oldestUndrawn = performance.now();
      state.movedSinceSend = true;
      if (state.live) decodeNow(); else schedule();
      decodeTwin();
    },
    released: () => {  // Python hears the value, and the drag's path
      state.recordingClosed = true;
      state.released = true;
      state.before = null;
      schedule();
    },
    switched: (k) => {
      state.movedSinceSend = true;
      if (state.live) decodeNow();
      decodeTwin();
      setStateValue("label", { value: k, version: state.version });  // Python hears it for the URL and the grid
    },
  };
  buildSliders(root, state, data, signal);
  showClasses(root, state, data, signal);
  return cleanup(root, () => clearTimeout(state.timer));
}

// One slider per dimension, made again when the dimensions change; Python's values are set into
// them whenever its version changes (reset, random, a shared URL).
function buildSliders(root, state, data, signal) {
  const box = root.querySelector(".ls-sliders");
  const signature = JSON.stringify([data.dims, data.low, data.high]);
  if (root.dataset.signature !== signature) {
    box.innerHTML = "";
    data.dims.forEach((dim) => {
      const line = document.createElement("div");
      line.className = "ls-row" + (dim.collapsed ? " collapsed" : "");
      line.innerHTML = "<label></label><input type=\"range\"><output></output>";
      const label = line.querySelector("label");
      label.textContent = dim.label;
      label.title = dim.title;
      const input = line.querySelector("input");
      Object.assign(input, { min: data.low, max: data.high, step: 0.01 });
      input.setAttribute("aria-label", dim.label);
      input.dataset.index = dim.index;
      input.addEventListener("pointerdown", () => { state.before = state.values.slice(); }, { signal });
      input.addEventListener("input", () => {
        state.values[dim.index] = parseFloat(input.value);
        line.querySelector("output").textContent = parseFloat(input.value).toFixed(2);
        state.on.moved();
      }, { signal });
      input.addEventListener("change", () => state.on.released(), { signal });
      box.appendChild(line);
    });
    root.dataset.signature = signature;
    state.version = null;
  }
  if (state.version !== data.version) {
    state.values = data.values.slice();
    state.version = data.version;
    box.querySelectorAll("input").forEach((input) => {
      const v = state.values[parseInt(input.dataset.index)];
      input.value = v;
      input.parentElement.querySelector("output").textContent = v.toFixed(2);
    });
  }
}

// A conditional model's class buttons: switched here, at once (state.on.switched); Python's class
// stands unless the panel has switched since (its answer then carries the same).
function showClasses(root, state, data, signal) {
  const classes = root.querySelector(".ls-classes");
  const sync = () => classes.querySelectorAll("button").forEach((b) => {
    b.setAttribute("aria-checked", String(Number(b.dataset.k) === state.label));
  });
  classes.hidden = !data.classes;
  if (data.classes) {
    if (classes.dataset.names !== JSON.stringify(data.classes)) {
      classes.dataset.names = JSON.stringify(data.classes);
      classes.replaceChildren(...data.classes.map((name, k) => {
        const button = document.createElement("button");
        button.type = "button";
        button.setAttribute("role", "radio");
        button.dataset.k = String(k);
        button.textContent = name;
        button.addEventListener("click", () => {
          if (state.label === k) return;
          state.label = k;
          sync();
          state.on.switched(k);
        }, { signal });
        return button;
      }));
      state.labelFrom = null;
    }
    if (state.labelFrom !== data.label_seq) { state.labelFrom = data.label_seq; state.label = data.label; }
  } else {
    state.label = null;
  }
  sync();
}

// A second model's picture of the same z (the Compare page), decoded beside the first. Returns
// what decodes it after each move (nothing without a twin).
function showTwin(root, state, data, report) {
  const picture = root.querySelector(".ls-picture");
  const canvas = picture.querySelector(":scope > canvas");
  let twinCanvas = picture.querySelector(".ls-twin canvas");
  if (data.twin && !twinCanvas) {
    picture.classList.add("ls-pair");
    canvas.insertAdjacentHTML("beforebegin", "<figcaption class=\"ls-caption-a\"></figcaption>");
    picture.insertAdjacentHTML("beforeend", "<div class=\"ls-twin\"><figcaption></figcaption><canvas role=\"img\" " +
      "aria-label=\"the same latent vector decoded by the second model\"></canvas></div>");
    twinCanvas = picture.querySelector(".ls-twin canvas");
    state.twin = { live: null, spec: null, decoding: false, again: false, shownImage: null, drawn: 0 };
  }
  const twin = state.twin;
  if (!data.twin || !twin) return () => {};
  picture.querySelector(".ls-caption-a").textContent = data.caption || "";
  picture.querySelector(".ls-twin figcaption").textContent = data.twin.caption || "";
  twinCanvas.style.width = data.picture_px + "px";
  if (!twin.drawn && data.twin.shape) [twinCanvas.height, twinCanvas.width] = data.twin.shape;
  const draw = (pixels, source) => {
    putPixels(twinCanvas, pixels);
    twinCanvas.dataset.source = source;
    twin.drawn += 1;
  };
  const twinReport = (value) => report("live_twin", value);
  if (data.twin.live && !(twin.spec && twin.spec.model === data.twin.live.model && twin.live)) {
    const spec = data.twin.live;
    twin.spec = { model: spec.model, shape: spec.shape, cond_dim: spec.cond_dim };
    attachGraph(spec, twinReport, (loaded) => {
      if (twin.spec.model !== spec.model) return false;
      twin.live = loaded;
      twinCanvas.dataset.mode = "browser";
    });
  } else if (!data.twin.live) {
    twin.live = null;
  }
  twinCanvas.dataset.mode = twin.live ? "browser" : "server";
  if (data.twin.image && twin.shownImage !== data.twin.image && !(twin.live && state.movedSinceSend)) {
    // Python's picture of the second model, unless the page has drawn a newer one
    loadPicture(data.twin.image, twin, (pixels) => draw(pixels, "server"));
  }
  return () => {
    if (!twin.live) return;
    decodeLatest(twin, () => [state.values, state.label], (pixels) => draw(pixels, "browser"),
      (why) => twinReport({ model: twin.spec.model, ok: false, reason: why }));
  };
}

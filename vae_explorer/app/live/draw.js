// The drawing pad. Strokes are drawn in white on black (the datasets' colours) at a whole number of
// canvas pixels per model pixel; the model's input is the mean of each block, rounded to 1/255.
// With the model's encoder and decoder loaded in the page (live.js), every move of the pen is
// encoded and decoded here: the input as the model sees it, mu and sigma per dimension and the
// reconstruction follow the hand, and Python hears the drawing only when a stroke ends (or on undo
// and clear). Without them, Python encodes each finished stroke and its answer is drawn.
// Pointer events serve a mouse, a pen and a touch screen alike.

let live = null;
async function liveModule() {
  if (!live) live = import(new URL("./live.js", import.meta.url).href);
  return live;
}

const BAR_ROW = 18;  // CSS pixels per latent dimension in the mu/sigma chart, for a 280-pixel pad (it grows with the pad)

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const [channels, height, width] = data.shape;
  const scale = Math.max(1, Math.ceil(data.pad_px / Math.max(height, width)));  // canvas pixels per model pixel
  let root = parentElement.querySelector(".dp-root");
  if (!root || root._shape !== data.shape.join("x")) {
    if (root) root.remove();
    root = document.createElement("div");
    root.className = "dp-root";
    root._shape = data.shape.join("x");
    root.innerHTML =
      '<div class="dp-pad"><canvas class="dp-canvas" role="img" aria-label="drawing pad: draw with the mouse, a pen or a finger"></canvas>' +
      '<div class="dp-tools"><button type="button" data-act="undo">Undo</button><button type="button" data-act="clear">Clear</button>' +
      '<label>Brush <input type="range" class="dp-brush" min="0.5" max="5" step="0.25"></label><output class="dp-brush-value"></output></div></div>' +
      '<div class="dp-out"><div class="dp-pictures">' +
      '<figure><canvas class="dp-input" role="img" aria-label="the drawing as the model sees it"></canvas><figcaption>as the model sees it</figcaption></figure>' +
      '<figure><canvas class="dp-recon" role="img" aria-label="its reconstruction"></canvas><figcaption>reconstruction from mu</figcaption></figure></div>' +
      '<figure class="dp-chart"><canvas class="dp-bars" role="img" aria-label="mu and sigma per latent dimension"></canvas>' +
      '<figcaption>mu ± sigma per latent dimension (-3 to 3)</figcaption></figure></div>';
    parentElement.appendChild(root);
    root.querySelector(".dp-canvas").getContext("2d", { willReadFrequently: true });  // it is read back at every move
    root._state = { strokes: [], current: null, seq: 0, brush: data.brush, encoder: null, decoder: null, encSpec: null,
                    decSpec: null, busy: false, again: false, encoded: 0, reported: {}, shownSeq: 0, label: null };
  }
  const state = root._state;
  state.label = data.label;
  const pad = root.querySelector(".dp-canvas");
  const inputCanvas = root.querySelector(".dp-input");
  const reconCanvas = root.querySelector(".dp-recon");
  const bars = root.querySelector(".dp-bars");
  const brush = root.querySelector(".dp-brush");
  const brushValue = root.querySelector(".dp-brush-value");
  if (pad.width !== width * scale || pad.height !== height * scale) {  // resizing a canvas clears it: only when it changes
    pad.width = width * scale;
    pad.height = height * scale;
  }
  pad.style.width = data.pad_px + "px";
  const side = Math.round(data.pad_px * 0.55);
  for (const c of [inputCanvas, reconCanvas]) {
    if (c.width !== width || c.height !== height) { c.width = width; c.height = height; }
    c.style.width = side + "px";
  }

  const report = (field, value) => {  // whether this page runs the encoder / decoder itself
    const text = JSON.stringify(value);
    if (state.reported[field] === text) return;
    state.reported[field] = text;
    setStateValue(field, value);
  };

  // --- the strokes and the model's input --------------------------------------------------------
  const paint = () => {
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
  };

  const pixels = () => {  // (H * W) uint8: the mean of each scale x scale block of the pad's red channel
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
  };

  const showInput = (grey) => {
    const image = new ImageData(width, height);
    for (let p = 0; p < width * height; p++) {
      image.data[p * 4] = image.data[p * 4 + 1] = image.data[p * 4 + 2] = grey[p];
      image.data[p * 4 + 3] = 255;
    }
    inputCanvas.getContext("2d").putImageData(image, 0, 0);
  };

  const drawBars = (mu, sigma) => {
    const dims = mu.length;
    const grow = Math.max(1, data.pad_px / 280), row = BAR_ROW * grow;  // larger in presentation mode
    const cssWidth = Math.max(260, Math.round(data.pad_px * 1.1));
    const ratio = window.devicePixelRatio || 1;
    bars.style.width = cssWidth + "px";
    bars.style.height = dims * row + 24 + "px";
    bars.width = cssWidth * ratio;
    bars.height = (dims * row + 24) * ratio;
    const g = bars.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    const styles = getComputedStyle(root);
    const ink = styles.color || "#333";
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
  };

  // --- encoding and decoding in the page ----------------------------------------------------------
  const encodeLatest = async () => {
    if (state.busy) { state.again = true; return; }
    state.busy = true;
    try {
      do {
        state.again = false;
        const grey = pixels();
        showInput(grey);
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
        reconCanvas.getContext("2d").putImageData(await module.decode(state.decoder, state.decSpec, mu, state.label), 0, 0);
        drawBars(mu, sigma);
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
      report("live_encoder", { model: state.encSpec.model, ok: false, reason: module.reason(error) });
    } finally {
      state.busy = false;
    }
  };
  const inPage = () => state.encoder && state.decoder;

  if (data.encoder && data.decoder) {
    if (!state.encSpec || state.encSpec.model !== data.encoder.model || state.decSpec.model !== data.decoder.model) {
      state.encoder = state.decoder = null;
    }
    state.encSpec = data.encoder;
    state.decSpec = data.decoder;
    liveModule().then((module) => {
      module.attach(state.encSpec, (v) => report("live_encoder", v), (loaded) => { state.encoder = loaded; root.dataset.mode = inPage() ? "browser" : "server"; });
      module.attach(state.decSpec, (v) => report("live", v), (loaded) => { state.decoder = loaded; root.dataset.mode = inPage() ? "browser" : "server"; });
    }, () => { root.dataset.mode = "server"; });
  } else {
    state.encoder = state.decoder = null;
  }
  root.dataset.mode = inPage() ? "browser" : "server";

  // --- Python's answer (the server's encoding of the last stroke) --------------------------------
  const result = data.result;
  if (!inPage() && result && result.seq === state.seq && result.seq !== state.shownSeq) {
    state.shownSeq = result.seq;
    for (const [canvas, uri] of [[inputCanvas, result.input], [reconCanvas, result.recon]]) {
      const image = new Image();
      image.onload = () => canvas.getContext("2d").drawImage(image, 0, 0, width, height);
      image.src = uri;
    }
    drawBars(result.mu, result.sigma);
    root.dataset.mu = JSON.stringify(result.mu);
    root.dataset.source = "server";
  }

  // --- the pen ---------------------------------------------------------------------------------
  const send = () => {
    state.seq += 1;
    const grey = pixels();
    showInput(grey);
    setStateValue("drawing", { pixels: base64(grey), seq: state.seq, strokes: state.strokes.length });
  };
  const where = (event) => {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) / box.width * width, (event.clientY - box.top) / box.height * height];
  };
  if (!pad._wired) {
    pad._wired = true;
    pad.addEventListener("pointerdown", (event) => {
      event.preventDefault();
      pad.setPointerCapture(event.pointerId);
      state.current = { width: state.brush, points: [where(event)] };
      paint();
      if (inPage()) encodeLatest();
    });
    pad.addEventListener("pointermove", (event) => {
      if (!state.current) return;
      for (const e of event.getCoalescedEvents ? event.getCoalescedEvents() : [event]) state.current.points.push(where(e));
      paint();
      if (inPage()) encodeLatest();
    });
    const end = () => {
      if (!state.current) return;
      state.strokes.push(state.current);
      state.current = null;
      paint();
      send();
    };
    pad.addEventListener("pointerup", end);
    pad.addEventListener("pointercancel", end);
    root.querySelector('[data-act="undo"]').addEventListener("click", () => {
      if (!state.strokes.length) return;
      state.strokes.pop();
      paint();
      if (inPage()) encodeLatest();
      send();
    });
    root.querySelector('[data-act="clear"]').addEventListener("click", () => {
      state.strokes = [];
      paint();
      if (inPage()) encodeLatest();
      send();
    });
    brush.addEventListener("input", () => {
      state.brush = Number(brush.value);
      brushValue.textContent = state.brush.toFixed(2) + " px";
    });
  }
  brush.value = String(state.brush);
  brushValue.textContent = state.brush.toFixed(2) + " px";
  paint();
  if (!root.dataset.mu) {  // a blank pad before the first stroke
    showInput(new Uint8Array(width * height));
    drawBars(new Array(0), new Array(0));
  }
}

// Decoding in the browser: onnxruntime-web (npm; installed into node_modules/ beside this file and
// served by the app itself, never from a CDN) runs a model's decoder.onnx on the page's own thread.
// One runtime per page and one session per model, kept in the tab's shared namespace (common.js),
// so that moving between the app's pages (no reload) neither fetches the runtime again nor
// rebuilds a model's session.
import { bytesFromBase64, shared as tab } from "./common.js";

const RUNTIME = "./node_modules/onnxruntime-web/dist/ort.wasm.bundle.min.mjs";
const WASM = "./node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
const CACHE_DB = "vae-explorer-live";
const CACHE_KEY = "onnxruntime-web-1.30.0.wasm";  // bump with package.json's version

const shared = (tab.live ??= { runtime: null, sessions: new Map() });

// The 14 MB wasm file is kept in IndexedDB: Streamlit serves component files without a validator
// or a lifetime, so the HTTP cache would fetch it again on every visit. (IndexedDB, unlike the
// Cache API, also works on a plain-http classroom address.)
function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(CACHE_DB, 2);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains("files")) db.createObjectStore("files");
      if (!db.objectStoreNames.contains(GRAPHS)) db.createObjectStore(GRAPHS);  // graph digest -> {bytes, at}
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// The models' graphs this browser was sent, by the digest of their bytes (spec.graph), the newest
// GRAPHS_KEPT: a new tab or a reload makes its session from its own copy instead of asking the
// server, so a graph crosses the network once per browser, not once per visit.
const GRAPHS = "graphs";
const GRAPHS_KEPT = 16;

async function keptGraph(digest) {
  try {
    const db = await openDb();
    const hit = await new Promise((resolve) => {
      const get = db.transaction(GRAPHS).objectStore(GRAPHS).get(digest);
      get.onsuccess = () => resolve(get.result);
      get.onerror = () => resolve(undefined);
    });
    return hit ? hit.bytes : null;
  } catch (e) { return null; }  // no IndexedDB: the server sends it
}

async function keepGraph(digest, bytes) {
  try {
    const db = await openDb();
    const store = db.transaction(GRAPHS, "readwrite").objectStore(GRAPHS);
    store.put({ bytes, at: Date.now() }, digest);
    const all = store.getAll();
    const keys = store.getAllKeys();
    all.onsuccess = () => {
      keys.onsuccess = () => {
        const oldest = keys.result.map((key, i) => [all.result[i].at, key]).sort((a, b) => a[0] - b[0]);
        oldest.slice(0, Math.max(0, oldest.length - GRAPHS_KEPT)).forEach(([, key]) => store.delete(key));
      };
    };
  } catch (e) { /* no IndexedDB, or no room: the next visit asks again */ }
}

async function cachedWasm(url) {
  let db = null;
  try {
    db = await openDb();
    const hit = await new Promise((resolve) => {
      const get = db.transaction("files").objectStore("files").get(CACHE_KEY);
      get.onsuccess = () => resolve(get.result);
      get.onerror = () => resolve(undefined);
    });
    if (hit) return hit;
  } catch (e) { db = null; }  // no IndexedDB (a private window, say): the network it is
  const response = await fetch(url);
  if (!response.ok) throw new Error(`the runtime's wasm file answered HTTP ${response.status}`);
  const bytes = await response.arrayBuffer();
  if (db) {
    try { db.transaction("files", "readwrite").objectStore("files").put(bytes, CACHE_KEY); } catch (e) { /* quota */ }
  }
  return bytes;
}

async function loadRuntime() {
  if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
    throw new Error("this browser has no WebAssembly");
  }
  const ort = await import(new URL(RUNTIME, import.meta.url).href);
  ort.env.wasm.numThreads = 1;  // Streamlit pages are not cross-origin isolated: no shared memory
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  ort.env.wasm.wasmBinary = await cachedWasm(new URL(WASM, import.meta.url).href);
  return ort;
}

export function runtime() {
  if (!shared.runtime) {
    shared.runtime = loadRuntime();
    shared.runtime.catch(() => { shared.runtime = null; });  // a later page may try again
  }
  return shared.runtime;
}

function makeSession(spec, bytes) {
  const made = runtime().then((ort) => ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"], graphOptimizationLevel: "all",
  }).then((s) => ({ ort, session: s })));
  made.catch(() => shared.sessions.delete(spec.model));
  shared.sessions.set(spec.model, made);
  return made;
}

// The session of a model (`spec.model` is its weights' digest), made from `spec.onnx` (base64)
// the first time; null when the page has not received that model's graph.
export function session(spec) {
  if (!shared.sessions.has(spec.model)) {
    if (!spec.onnx) return null;
    const bytes = bytesFromBase64(spec.onnx);
    if (spec.graph) keepGraph(spec.graph, bytes);
    makeSession(spec, bytes);
  }
  return shared.sessions.get(spec.model);
}

// Make (or find) the page's session of `spec`'s model for a panel: `ready(loaded)` once it exists,
// and `report` tells Python the outcome (the graph is needed, held, or failed, with why). Without
// the bytes, the browser's kept copy of the graph is used, and only without one are they asked for.
export function attach(spec, report, ready) {
  const settle = (made) => made.then((loaded) => {
    if (ready(loaded) !== false) report({ model: spec.model, ok: true });
  }, (error) => report({ model: spec.model, ok: false, reason: reason(error) }));
  const made = session(spec);
  if (made) { settle(made); return; }
  (spec.graph ? keptGraph(spec.graph) : Promise.resolve(null)).then((bytes) => {
    if (shared.sessions.has(spec.model)) settle(shared.sessions.get(spec.model));  // another panel made it meanwhile
    else if (bytes) settle(makeSession(spec, bytes));
    else report({ model: spec.model, ok: true, need: true });  // ask Python for the graph
  });
}

// Decode one z (and class, for a conditional model) into RGBA pixels: the model's mean image in
// [0, 1] scaled and rounded exactly as vae_explorer.images.to_uint8 does (clamp, * 255, + 0.5, floor).
export async function decode(loaded, spec, z, label) {
  const { ort, session: s } = loaded;
  const feeds = { z: new ort.Tensor("float32", Float32Array.from(z), [1, z.length]) };
  if (spec.cond_dim) {
    const onehot = new Float32Array(spec.cond_dim);
    onehot[label ?? 0] = 1;
    feeds.label = new ort.Tensor("float32", onehot, [1, spec.cond_dim]);
  }
  const out = (await s.run(feeds)).image.data;  // (1, C, H, W)
  const [c, h, w] = spec.shape;
  const rgba = new Uint8ClampedArray(h * w * 4);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) {
      const v = out[(c === 1 ? 0 : k) * h * w + p];
      rgba[p * 4 + k] = Math.floor(Math.min(Math.max(v, 0), 1) * 255 + 0.5);
    }
    rgba[p * 4 + 3] = 255;
  }
  return new ImageData(rgba, w, h);
}

// Decode a panel's newest input and draw it: inputs that come during a decode coalesce into one
// more decode, so a fast hand never queues work. `input()` gives [z, label] when the decode starts;
// a failing run clears `state.live` (the panel falls back to the server) and tells `failed(why)`.
export async function decodeLatest(state, input, draw, failed) {
  if (state.decoding) { state.again = true; return; }
  state.decoding = true;
  try {
    do {
      state.again = false;
      const [z, label] = input();
      draw(await decode(state.live, state.spec, z, label));
    } while (state.again);
  } catch (error) {
    state.live = null;
    failed(reason(error));
  } finally {
    state.decoding = false;
  }
}

// Why the runtime or a model could not be used, in words for the page's one-line notice.
export function reason(error) {
  const text = String(error && error.message ? error.message : error).split("\n")[0];
  return text.length > 160 ? text.slice(0, 157) + "..." : text;
}

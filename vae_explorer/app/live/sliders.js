const MAX_IN_FLIGHT = 2;  // values sent but not yet answered by a picture
const MIN_GAP_MS = 25;    // at most 40 values a second
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  let root = parentElement.querySelector(".ls-root");
  if (!root) {
    root = document.createElement("div");
    root.className = "ls-root";
    root.innerHTML = '<div class="ls-picture"><img alt="image decoded from the latent vector"></div><div class="ls-sliders"></div>';
    parentElement.appendChild(root);
    root._state = { values: [], version: null, seq: 0, answered: 0, pending: false, timer: null, sentAt: 0, sentTimes: {}, roundTrips: [], paintTrips: [] };
  }
  const state = root._state;
  const img = root.querySelector("img");
  img.style.width = data.picture_px + "px";
  if (data.image && img.getAttribute("src") !== data.image) img.setAttribute("src", data.image);
  if (typeof data.seq === "number" && data.seq > state.answered) {
    state.answered = data.seq;
    // round trips (value sent -> its picture here), kept for benchmarks: window-inspectable, bounded
    const sentAt = state.sentTimes[data.seq];
    if (sentAt) {
      state.roundTrips.push(performance.now() - sentAt);
      // ... and to the frame that shows it painted: decoded, then the next frame; a task queued from
      // its requestAnimationFrame callback runs once that frame has been painted
      img.decode().then(() => requestAnimationFrame(() => setTimeout(() => {
        state.paintTrips.push(performance.now() - sentAt);
        if (state.paintTrips.length > 1000) state.paintTrips.shift();
      }, 0))).catch(() => {});
    }
    if (state.roundTrips.length > 1000) state.roundTrips.shift();
    for (const seq of Object.keys(state.sentTimes)) if (Number(seq) <= data.seq) delete state.sentTimes[seq];
  }

  const send = () => {
    state.timer = null;
    const now = performance.now();
    const inFlight = state.seq - state.answered;
    if ((inFlight >= MAX_IN_FLIGHT || now - state.sentAt < MIN_GAP_MS) && now - state.sentAt < 250) {  // let Python catch up
      state.timer = setTimeout(send, 10);
      return;
    }
    if (!state.pending) return;
    state.pending = false;
    state.seq += 1;
    state.sentAt = now;
    state.sentTimes[state.seq] = now;
    setStateValue("z", { values: state.values.slice(), version: state.version, seq: state.seq });
  };
  const schedule = () => { state.pending = true; if (!state.timer) state.timer = setTimeout(send, 0); };
  if (state.pending && state.seq - state.answered < MAX_IN_FLIGHT) {  // Python answered: send the newest value now
    clearTimeout(state.timer);
    send();
  }

  const box = root.querySelector(".ls-sliders");
  const signature = JSON.stringify([data.dims, data.low, data.high]);
  if (root.dataset.signature !== signature) {
    box.innerHTML = "";
    data.dims.forEach((dim, row) => {
      const line = document.createElement("div");
      line.className = "ls-row" + (dim.collapsed ? " collapsed" : "");
      line.innerHTML = '<label></label><input type="range"><output></output>';
      const label = line.querySelector("label");
      label.textContent = dim.label;
      label.title = dim.title;
      const input = line.querySelector("input");
      Object.assign(input, { min: data.low, max: data.high, step: 0.01 });
      input.setAttribute("aria-label", dim.label);
      input.dataset.index = dim.index;
      input.addEventListener("input", () => {
        state.values[dim.index] = parseFloat(input.value);
        line.querySelector("output").textContent = parseFloat(input.value).toFixed(2);
        schedule();
      });
      box.appendChild(line);
    });
    root.dataset.signature = signature;
    state.version = null;
  }
  if (state.version !== data.version) {  // Python set new values (reset, random, a shared URL)
    state.values = data.values.slice();
    state.version = data.version;
    box.querySelectorAll("input").forEach((input) => {
      const v = state.values[parseInt(input.dataset.index)];
      input.value = v;
      input.parentElement.querySelector("output").textContent = v.toFixed(2);
    });
  }
}

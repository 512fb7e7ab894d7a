"""How fast the Latent map's component draws, pans and answers the pointer, for N dots:

    python benchmarks/map_draw.py [--points 10000 70000] [--frames 120]

In headless Chromium (Debian's chromium, Playwright) against the app on a free loopback port, the
page imports the component's own map.js (as the app serves it) and mounts it on a synthetic map of
N points in ten classes (Gaussian clusters) at 1100 x 640 CSS pixels. Reported per N:

- pan: the map moved a little at every animation frame for `--frames` frames (every dot redrawn
  each time): redraw time p50 / p95 and the frame rate reached;
- pointing: a pointer move over the map (find the dot under it, redraw, place the card), p50 / p95;
- mount: unpacking the points, building the spatial index and the first draw.
"""

from __future__ import annotations

import argparse

from common import CHROMIUM, CHROMIUM_ARGS, percentiles

from vae_explorer.app.server import running_app

DRIVE = """async ([n, frames]) => {
  const module = await import('/_stcore/bidi-components/vae-explorer.latent_map/map/map.js');
  let seed = 7;
  const random = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296;
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const coords = new Float32Array(2 * n), labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % 10;
    labels[i] = k;
    coords[2 * i] = 4 * Math.cos(k) + gauss();
    coords[2 * i + 1] = 4 * Math.sin(k) + gauss();
  }
  const b64 = (array) => { let s = ''; const bytes = new Uint8Array(array.buffer);
    for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192)); return btoa(s); };
  document.body.innerHTML = '<div id="host" style="width:1100px"></div>';
  const host = document.getElementById('host');
  const data = {cloud: {id: 'bench' + n, coords: b64(coords), labels: b64(labels), label_bytes: 1, mu: null},
    names: [...Array(10).keys()].map(String), colours: ['#332288', '#88ccee', '#44aa99', '#117733', '#999933', '#ddcc77',
    '#cc6677', '#882255', '#aa4499', '#555555'], method: 'PCA', axes: ['PC 1', 'PC 2'], shape: [8, 8],
    plane: {mean: [0, 0], directions: [[1, 0], [0, 1]]}, star: null, picked: null, live: null, hint: '',
    height: 640, picture_px: 128};
  let t0 = performance.now();
  module.default({data, setStateValue: () => {}, parentElement: host});
  const mount = performance.now() - t0;
  const root = host.querySelector('.lm-root'), state = root._state, canvas = root.querySelector('.lm-map');
  const pans = [], stamps = [];
  await new Promise((resolve) => {
    let i = 0;
    const step = (now) => {
      stamps.push(now);
      if (i === frames) { resolve(); return; }
      state.view.cx += 0.01;
      state.dirty = true;
      const t = performance.now();
      state.render();
      pans.push(performance.now() - t);
      i += 1;
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  const box = canvas.getBoundingClientRect(), hovers = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove', {
      clientX: box.left + box.width * (0.1 + 0.8 * random()),
      clientY: box.top + box.height * (0.1 + 0.8 * random()), bubbles: true}));
    hovers.push(performance.now() - t);
  }
  return {mount, pans, hovers, fps: frames / ((stamps[stamps.length - 1] - stamps[0]) / 1000)};
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, nargs="+", default=[10_000, 70_000])
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with running_app() as (base, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/_stcore/health")
        print(f"{'points':>8}  {'mount ms':>8}  {'pan redraw ms p50/p95':>22}  {'fps':>5}  {'pointing ms p50/p95':>20}")
        for n in args.points:
            got = page.evaluate(DRIVE, [n, args.frames])
            pan, hover = percentiles(got["pans"]), percentiles(got["hovers"])
            print(
                f"{n:>8,}  {got['mount']:>8.1f}  {pan[0]:>10.1f} / {pan[1]:<9.1f}  {got['fps']:>5.1f}  "
                f"{hover[0]:>9.2f} / {hover[1]:<8.2f}"
            )
        browser.close()


if __name__ == "__main__":
    main()

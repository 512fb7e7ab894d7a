"""Painting on a channel of the shipped spatial VAE's latent, decoded in the browser:

    python benchmarks/paint_browser.py [--side 256] [--frames 120] [--radius 2]

In headless Chromium (Debian's chromium, Playwright) against the app on a free loopback port, the
Latent diffusion page gets a side x side crop of scikit-learn's china.jpg (not a photo photos-spatial
was trained on) and opens its painter with the decoder in the page. A script in the page then presses
on the picture and moves the pointer one step further along a diagonal at every animation frame for
`--frames` frames (pointer events, as a hand makes them), and releases. Reported:

- pictures a second: the windowed decodes the page finished during the drag, over the drag's time
  (changes that come while a decode runs join the next one, so this is what the eye sees);
- the decode time per window, median and 95th percentile, and the window's size in pixels;
- the time from the photo's upload to the page's first picture, on the server (reconstruction and
  latent view of the photo through the VAE: `reconstruct_photo`, timed in this process too).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time

from common import CHROMIUM, CHROMIUM_ARGS, percentiles

from vae_explorer.app.server import app_environment, running_app

FIND_ROOT = """() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
  .map(r => r.querySelector('.pt-root')).find(Boolean)"""

DRIVE = """async ([frames, radius]) => {
  const root = (FIND_ROOT)();
  const canvas = root.querySelector('.pt-image');
  const state = root._state;
  const slider = root.querySelector('.pt-radius');
  slider.value = String(radius);
  slider.dispatchEvent(new Event('input', {bubbles: true}));
  const box = canvas.getBoundingClientRect();
  const at = (i) => ({clientX: box.left + box.width * (0.15 + 0.7 * i / frames),
                      clientY: box.top + box.height * (0.2 + 0.6 * i / frames),
                      pointerId: 1, bubbles: true, isPrimary: true, pointerType: 'mouse', buttons: 1});
  const windows = [];
  const run = state.live.session.run.bind(state.live.session);
  state.live.session.run = async (feeds) => {
    const started = performance.now();
    const out = await run(feeds);
    windows.push([performance.now() - started, feeds.z.dims[2] * feeds.z.dims[3]]);
    return out;
  };
  const before = state.decodes;
  canvas.dispatchEvent(new PointerEvent('pointerdown', at(0)));
  const started = performance.now();
  await new Promise((resolve) => {
    let i = 1;
    const step = () => {
      if (i > frames) { resolve(); return; }
      canvas.dispatchEvent(new PointerEvent('pointermove', at(i)));
      i += 1;
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  const seconds = (performance.now() - started) / 1000;
  const decodes = state.decodes - before;
  canvas.dispatchEvent(new PointerEvent('pointerup', at(frames)));
  state.live.session.run = run;
  return {decodes, seconds, windows, dabs: state.dabs.length};
}""".replace("FIND_ROOT", FIND_ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--radius", type=float, default=2.0, help="the brush's radius, in latent positions")
    args = parser.parse_args()

    import torch
    from PIL import Image
    from playwright.sync_api import sync_playwright
    from sklearn.datasets import load_sample_image

    from vae_explorer.checkpoints.spatial import open_spatial_vae
    from vae_explorer.evaluation.fidelity import reconstruct_photo

    if not 8 <= args.side <= 424 or args.side % 4:
        parser.error("--side must be a multiple of 4 from 8 to 424 (china.jpg is 427 x 640 pixels)")
    top = min(60, 427 - args.side)
    photo = load_sample_image("china.jpg")[top : top + args.side, 120 : 120 + args.side]
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")

    vae = open_spatial_vae("photos-spatial")
    x = torch.from_numpy(photo.astype("float32") / 255).permute(2, 0, 1)
    reconstruct_photo(vae, x)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        reconstruct_photo(vae, x)
        times.append(time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as runs, running_app(app_environment(runs)) as (base, _):
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/Latent_diffusion")
            page.get_by_role("heading", name="Latent diffusion").first.wait_for(timeout=120_000)
            started = time.perf_counter()
            page.locator("input[type=file]").first.set_input_files(
                files=[{"name": "china.png", "mimeType": "image/png", "buffer": buffer.getvalue()}]
            )
            page.wait_for_function(
                f"() => {{ const r = ({FIND_ROOT})(); return r && r.dataset.mode === 'browser' && r._state.pixels; }}",
                timeout=300_000,
            )
            first_picture = time.perf_counter() - started
            page.locator(".pt-image").scroll_into_view_if_needed()
            result = page.evaluate(DRIVE, [args.frames, args.radius])
            browser.close()
    decode_ms = [w[0] for w in result["windows"]]
    p50, p95 = percentiles(decode_ms)
    print(
        json.dumps(
            {
                "side": args.side,
                "radius": args.radius,
                "frames": args.frames,
                "pictures_per_second": result["decodes"] / result["seconds"],
                "decodes": result["decodes"],
                "drag_seconds": result["seconds"],
                "decode_ms_p50": p50,
                "decode_ms_p95": p95,
                "window_pixels_median": statistics.median(w[1] for w in result["windows"]) * vae.factor**2,
                "reconstruct_photo_s_median": statistics.median(times),
                "upload_to_painter_s": first_picture,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

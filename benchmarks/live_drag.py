"""A Generate slider driven at every animation frame, decoded in the browser and on the server:

    python benchmarks/live_drag.py [--frames 120] [--models digits-mlp fashion-mnist-conv] [--while-training]

In headless Chromium (Debian's chromium, Playwright) against the app on a free loopback port, a
script in the page sets the first slider to a new value and fires its `input` event once per
animation frame for `--frames` frames, then releases it (`change`). Reported per model, once with
the decoder in the page (the default) and once decoding on the server (the same page in a browser
without WebAssembly, the fallback):

- frames with a new picture: the share of frames after which the canvas had been redrawn;
- wait: for each picture drawn, how long the oldest input it answers had waited, p50 and p95;
- websocket messages the page sent during the drag, and the time from the first to the last frame;
- the settled picture against Python's decode of the released z (max difference in 1/255 steps);
- page weight: the bytes fetched to open the page the first time and on a revisit in the same
  browser profile (resource transfer sizes; the websocket's traffic is not counted).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from common import CHROMIUM, CHROMIUM_ARGS, percentiles

from vae_explorer.app.server import app_environment, running_app

FIND_ROOT = """() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
  .map(r => r.querySelector('.ls-root')).find(Boolean)"""

DRIVE = """async (frames) => {
  const root = (FIND_ROOT)();
  const input = root.querySelector('.ls-row input');
  const state = root._state;
  state.waits.length = 0;
  let last = state.drawn, fresh = 0;
  const times = [];
  await new Promise((resolve) => {
    let i = 0;
    const step = () => {
      times.push(performance.now());
      if (i > 0 && state.drawn > last) fresh += 1;
      last = state.drawn;
      if (i === frames) { resolve(); return; }
      input.value = String(-3 + 6 * (i + 1) / frames);
      input.dispatchEvent(new Event('input', {bubbles: true}));
      i += 1;
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  const waits = state.waits.slice();
  input.dispatchEvent(new Event('change', {bubbles: true}));
  return {fresh, frames, seconds: (times[times.length - 1] - times[0]) / 1000, waits, index: Number(input.dataset.index)};
}""".replace("FIND_ROOT", FIND_ROOT)

CANVAS = """() => { const root = (FIND_ROOT)(); const c = root.querySelector('canvas');
  return {mode: root.dataset.mode, source: root.dataset.source, width: c.width, height: c.height,
          values: root._state.values,
          pixels: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}; }""".replace(
    "FIND_ROOT", FIND_ROOT
)

WEIGHT = """() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
  .reduce((sum, e) => sum + (e.transferSize || 0), 0)"""


def canvas_pixels(page) -> tuple[dict, np.ndarray]:
    """What the panel's canvas shows, as (H, W, 3) uint8, and its mode, source and values."""
    shown = page.evaluate(CANVAS)
    rgba = np.array(shown["pixels"], dtype=np.uint8).reshape(shown["height"], shown["width"], 4)
    return shown, rgba[..., :3]


def python_picture(model_name: str, values: list[float]) -> np.ndarray:
    from vae_explorer import load_checkpoint
    from vae_explorer.images import to_uint8
    from vae_explorer.latent import generate

    image = to_uint8(generate(load_checkpoint(model_name).model, values))[0]
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def drive(context, base: str, model: str, frames: int) -> dict:
    page = context.new_page()
    page.set_viewport_size({"width": 1400, "height": 1000})
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    page.goto(f"{base}/Generate?model={model}")
    page.locator(".ls-row input").first.wait_for(timeout=60_000)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    page.wait_for_function(f"() => {{ const r = ({FIND_ROOT})(); return r && r._state.drawn > 0; }}", timeout=60_000)
    page.wait_for_timeout(1500)  # the graph loaded (or the fallback settled)
    mode = page.evaluate(f"() => ({FIND_ROOT})().dataset.mode")
    before = len(sent)
    result = page.evaluate(DRIVE, frames)
    during = len(sent) - before
    page.wait_for_timeout(2000)  # the released value's round trip
    shown, pixels = canvas_pixels(page)
    expected = python_picture(model, shown["values"])
    diff = int(np.abs(pixels.astype(int) - expected.astype(int)).max())
    page.close()
    p50, p95 = percentiles(result["waits"])
    return {
        "mode": mode,
        "fresh": result["fresh"] / result["frames"],
        "frames": result["frames"],
        "seconds": result["seconds"],
        "wait_p50": p50,
        "wait_p95": p95,
        "messages": during,
        "settled_source": shown["source"],
        "settled_diff": diff,
    }


def page_weight(chromium, base: str, model: str) -> tuple[int, int]:
    """Bytes transferred to open Generate in a fresh profile, then again (a revisit) in the same one."""
    context = chromium.new_context()
    weights = []
    for _ in range(2):
        page = context.new_page()
        page.goto(f"{base}/Generate?model={model}")
        page.wait_for_function(
            f"() => {{ const r = ({FIND_ROOT})(); return r && r.dataset.mode === 'browser'; }}", timeout=60_000
        )
        page.wait_for_timeout(500)
        weights.append(int(page.evaluate(WEIGHT)))
        page.close()
    context.close()
    return weights[0], weights[1]


def main() -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(
        description="A slider driven at every animation frame, in the browser and on the server."
    )
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--models", nargs="+", default=["digits-mlp", "fashion-mnist-conv"])
    parser.add_argument(
        "--while-training",
        action="store_true",
        help="first start a training in another session (the pytorch/examples MLP on Fashion-MNIST)",
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"skipped: {CHROMIUM} is missing (apt-get install chromium)")
        return 1
    with running_app(app_environment(tempfile.mkdtemp())) as (base, _), sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        without_wasm = chromium.new_context()
        without_wasm.add_init_script("delete globalThis.WebAssembly")  # a browser that cannot run the decoder
        browsers = {"browser": chromium.new_context(), "server": without_wasm}
        if args.while_training:  # in its own session, whose tab then closes: the training goes on in the server
            from app_speed import start_training

            trainer = chromium.new_page()
            start_training(trainer, base)
            trainer.close()
            print("(while another session trains on the Train page)")
        print(f"A slider driven at every animation frame for {args.frames} frames, then released:")
        rows = []
        for model in args.models:
            for where, browser in browsers.items():
                r = drive(browser, base, model, args.frames)
                rows.append({"model": model, "decoded": where, **r})
                print(
                    f"  {model:<20} decoded in the {where:<7} (mode {r['mode']:<7}) new picture on {100 * r['fresh']:5.1f}% "
                    f"of frames ({r['frames'] / r['seconds']:4.1f} frames/s); oldest input waited p50 {r['wait_p50']:5.1f} ms "
                    f"p95 {r['wait_p95']:5.1f} ms; {r['messages']} websocket messages during the drag; settled picture "
                    f"({r['settled_source']}) within {r['settled_diff']}/255 of Python's decode"
                )
        for model in args.models:
            first, again = page_weight(chromium, base, model)
            print(f"  page weight, Generate on {model}: first visit {first / 1e6:.2f} MB, revisit {again / 1e6:.2f} MB")
        chromium.close()
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

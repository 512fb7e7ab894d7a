"""How fast the app answers, measured three ways:

    python benchmarks/app_speed.py [--tsne] [--sessions 20 --seconds 60]


1. Python per slider update (what the Generate page's fragment does for each new z: decode one
   image and encode it as a PNG data URI), p50 and p95 over 500 random z, per shipped model.
2. In headless Chromium (Debian's chromium, driven by Playwright) against `streamlit run Home.py`
   on a free loopback port: the cold start, and with --sessions a load test of browser tabs.
   (A slider driven at every animation frame, in the browser and on the server: live_drag.py.)
3. The latent map of up to 10,000 test points: PCA, t-SNE from scratch (with --tsne), and a
   revisit (the map read back from disk).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CHROMIUM, CHROMIUM_ARGS, percentiles, rss_mb

from vae_explorer.app.server import free_port, running_app, start_app


def python_update_ms(checkpoint, repeats: int = 500) -> tuple[float, float]:
    import torch

    from vae_explorer.app.live import png_data_uri
    from vae_explorer.images import to_uint8

    rng = np.random.default_rng(0)
    times = []
    y = torch.tensor([0]) if checkpoint.model.cond_dim else None
    for _ in range(repeats):
        z = torch.from_numpy(rng.standard_normal((1, checkpoint.model.latent_dim)).astype(np.float32))
        start = time.perf_counter()
        with torch.inference_mode():
            image = to_uint8(checkpoint.model.generate(z, y))[0]
        png_data_uri(image[..., 0] if image.shape[-1] == 1 else image)
        times.append((time.perf_counter() - start) * 1000)
    return percentiles(times)


def start_training(page, base: str, epochs: int = 100) -> None:
    """On the Train page: load configs/fashion_mnist_mlp.yaml for `epochs` epochs (100: minutes) and
    start; returns once steps are being taken."""
    page.goto(f"{base}/Train")
    page.get_by_text("Start from").first.wait_for(timeout=60_000)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Start from").locator("input").click()
    page.get_by_role("option", name="fashion_mnist_mlp").click()
    page.get_by_role("spinbutton", name="Epochs", exact=True).wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    page.get_by_role("spinbutton", name="Epochs", exact=True).fill(str(epochs))
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Training… ·").first.wait_for(timeout=60_000)
    page.wait_for_timeout(2000)


def main() -> int:
    import argparse

    from vae_explorer import load_checkpoint
    from vae_explorer.data import load_dataset
    from vae_explorer.errors import DatasetError
    from vae_explorer.latent import encode_means, load_or_compute_tsne, pca_2d
    from vae_explorer.paths import shipped_checkpoint_names

    parser = argparse.ArgumentParser(description="How fast the app answers.")
    parser.add_argument("--tsne", action="store_true", help="also time a t-SNE of 10,000 points from scratch (~30 s)")
    parser.add_argument("--sessions", type=int, default=0, help="also a load test with this many browser tabs")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load test runs")
    args = parser.parse_args()
    models = shipped_checkpoint_names()
    print("Python work per slider update (decode one image + PNG data URI), 500 random z:")
    for name in models:
        p50, p95 = python_update_ms(load_checkpoint(name))
        print(f"  {name:<20} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")

    if Path(CHROMIUM).exists():
        starts = [cold_start_seconds() for _ in range(3)]
        print(
            f"Cold start, `streamlit run Home.py` to the home page showing a model: {statistics.median(starts):.2f} s "
            f"(median of 3: {', '.join(f'{s:.2f}' for s in starts)})"
        )
        if args.sessions:
            r = load_test(args.sessions, args.seconds)
            trips = percentiles(r["round_trips"]) if r["round_trips"] else (float("nan"),) * 2
            loads = percentiles(r["page_loads"]) if r["page_loads"] else (float("nan"),) * 2
            print(
                f"Load: {args.sessions} sessions in one headless Chromium for {r['seconds']:.0f} s: {r['errors']} errors "
                f"{sorted(set(r['failures']))}; slider round trips {len(r['round_trips'])}, p50 {trips[0]:.0f} ms, "
                f"p95 {trips[1]:.0f} ms; page opens {len(r['page_loads'])}, p50 {loads[0]:.0f} ms, p95 {loads[1]:.0f} ms; "
                f"server memory {r['server_rss_mb']:.0f} MB"
            )

    name = "fashion-mnist-conv" if "fashion-mnist-conv" in models else models[0]
    checkpoint = load_checkpoint(name)
    try:
        data = load_dataset(checkpoint.config.data)
    except DatasetError as exc:
        print(f"latent map: skipped ({exc})")
        return 0
    mu = encode_means(checkpoint.model, data.test_x[:10_000])[0].numpy()
    start = time.perf_counter()
    pca_2d(mu)
    print(f"Latent map of {len(mu):,} points ({name}): PCA {time.perf_counter() - start:.3f} s")
    if args.tsne:
        with tempfile.TemporaryDirectory() as scratch:  # a fresh folder: no stored map to find
            scratch_checkpoint = Path(scratch) / name
            scratch_checkpoint.mkdir()
            (scratch_checkpoint / "model.safetensors").write_bytes((checkpoint.path / "model.safetensors").read_bytes())
            start = time.perf_counter()
            load_or_compute_tsne(mu, scratch_checkpoint, 30.0)
            print(f"  t-SNE from scratch (perplexity 30, {len(mu):,} points): {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    _, cached = load_or_compute_tsne(mu, checkpoint.path, 30.0)
    print(
        f"  t-SNE revisit (read from disk{'' if cached else ', computed first'}): {time.perf_counter() - start:.3f} s"
    )
    return 0


def cold_start_seconds() -> float:
    """From `streamlit run Home.py` to the home page showing a model's metrics in Chromium."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        start = time.perf_counter()
        server = start_app(port)
        try:
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=2000)
                    break
                except Exception:  # not listening yet
                    time.sleep(0.05)
                    if time.perf_counter() - start > 60:
                        raise
            page.get_by_text("neg-ELBO").first.wait_for(timeout=60_000)
            return time.perf_counter() - start
        finally:
            browser.close()
            server.terminate()
            server.wait(timeout=20)


async def _session(browser, base: str, until: float, rng, results: dict) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    paths = ["", "Reconstruct", "Latent_map", "Interpolate", "Traverse"]
    while time.perf_counter() < until:
        try:
            await page.goto(f"{base}/Generate?model=digits-mlp", timeout=30_000)
            slider = page.locator(".ls-row input").first
            await slider.wait_for(timeout=30_000)
            box = await slider.bounding_box()
            y = box["y"] + box["height"] / 2
            await page.mouse.move(box["x"] + box["width"] * 0.1, y)
            await page.mouse.down()
            for i in range(40):
                await page.mouse.move(box["x"] + box["width"] * (0.1 + 0.8 * i / 40), y)
                await page.wait_for_timeout(25)
            await page.mouse.up()
            await page.wait_for_timeout(300)
            results["round_trips"] += await page.evaluate(
                "() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)"
                ".map(r => r.querySelector('.ls-root')).find(Boolean)._state.roundTrips"
            )
            start = time.perf_counter()
            await page.goto(f"{base}/{paths[int(rng.integers(len(paths)))]}?model=digits-mlp", timeout=30_000)
            await page.wait_for_selector("h1", timeout=30_000)
            await page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000)
            results["page_loads"].append((time.perf_counter() - start) * 1000)
            results["errors"] += await page.locator(
                "[data-testid='stException'], [data-testid='stAlertContentError']"
            ).count()
        except Exception as exc:  # a timeout or a crash counts as an error, and the session goes on
            results["errors"] += 1
            results["failures"].append(type(exc).__name__)
    await page.close()


def load_test(sessions: int = 20, seconds: float = 60.0) -> dict:
    """`sessions` browser tabs drag sliders and open pages for `seconds`; loopback only, bounded in time."""
    import asyncio

    from playwright.async_api import async_playwright

    from vae_explorer.app.server import app_environment

    results: dict = {"round_trips": [], "page_loads": [], "errors": 0, "failures": []}
    with running_app(app_environment(tempfile.mkdtemp())) as (base, server):

        async def run() -> None:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                until = time.perf_counter() + seconds
                await asyncio.gather(
                    *[_session(browser, base, until, np.random.default_rng(i), results) for i in range(sessions)]
                )
                await browser.close()

        start = time.perf_counter()
        asyncio.run(run())
        results["seconds"] = time.perf_counter() - start
        results["server_rss_mb"] = rss_mb(server.pid)
    return results


if __name__ == "__main__":
    raise SystemExit(main())

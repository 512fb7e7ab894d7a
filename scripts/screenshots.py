"""Regenerate the README's screenshots (docs/screenshots/*.png) from the real app.

Starts `streamlit run Home.py` on a free loopback port, opens each page in presentation mode at
1920x1080 in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright), as a projector
shows it, and saves a half-size palette-reduced PNG of each.
Usage: python scripts/screenshots.py [NAME ...]   (default: every shot)
"""

import io
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vae_explorer.app.server import app_environment, running_app  # noqa: E402

OUT = REPO / "docs" / "screenshots"
SHOTS = [  # (file name, page path, model, what to do before the shot)
    ("home", "", "fashion-mnist-cvae", None),
    ("reconstruct", "Reconstruct", "fashion-mnist-conv", "draw"),
    ("generate", "Generate", "fashion-mnist-2d", "drag"),
    ("latent_map", "Latent_map", "fashion-mnist-conv", "click"),
    ("interpolate", "Interpolate", "fashion-mnist-conv", None),
    ("traverse", "Traverse", "shapes-betavae", None),
    ("learn", "Learn", "fashion-mnist-conv", None),
    ("train", "Train", "digits-mlp", "train"),
    ("evaluate", "Evaluate", "fashion-mnist-conv", "evaluate"),
    ("compare", "Compare", "fashion-mnist-conv", "drag"),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with running_app(app_environment(tempfile.mkdtemp())) as (base, _):  # the Train shot's model is not kept
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            for name, path, model, action in SHOTS:
                if sys.argv[1:] and name not in sys.argv[1:]:
                    continue
                page.goto(f"{base}/{path}?model={model}&present=1")
                page.wait_for_selector("h1", timeout=60_000)
                page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
                page.wait_for_timeout(1500)
                if action == "drag":
                    slider = page.locator(".ls-row input").first
                    box = slider.bounding_box()
                    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 5)
                    page.mouse.down()
                    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + 5, steps=10)
                    page.mouse.up()
                elif action == "draw":  # a trouser leg drawn on the pad, encoded and decoded in the page
                    pad = page.locator(".dp-canvas")
                    pad.evaluate("c => c.scrollIntoView({block: 'center'})")
                    page.wait_for_timeout(2500)
                    box = pad.bounding_box()
                    for stroke in (
                        ((0.38, 0.12), (0.3, 0.9)),
                        ((0.62, 0.12), (0.7, 0.9)),
                        ((0.38, 0.12), (0.62, 0.12)),
                    ):
                        (x0, y0), (x1, y1) = stroke
                        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
                        page.mouse.down()
                        page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=15)
                        page.mouse.up()
                        page.wait_for_timeout(400)
                    page.locator(".dp-tools input").evaluate("b => b.scrollIntoView({block: 'end'})")
                elif action == "train":
                    page.get_by_role("button", name="Start training").click()
                    page.get_by_text("Test images (top)").wait_for(timeout=60_000)
                    page.wait_for_timeout(6000)
                    page.get_by_role("heading", name="Training", exact=True).evaluate("h => h.scrollIntoView()")
                elif action == "evaluate":  # a second checkpoint beside the first
                    page.locator('[data-testid="stMultiSelect"] input').click()
                    page.keyboard.type("fashion-mnist-cvae")
                    page.keyboard.press("Enter")
                    page.keyboard.press("Escape")
                    page.wait_for_timeout(1000)
                    page.locator('[data-testid="stTable"]').wait_for(timeout=180_000)
                    page.wait_for_function(
                        "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=180_000
                    )
                elif (
                    action == "click"
                ):  # keep one dot beside the map, then point at another (its card, decoded in the page)
                    root = (
                        "() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)"
                        ".map(r => r.querySelector('.lm-root')).find(Boolean)"
                    )
                    page.wait_for_function(
                        f"() => {{ const r = ({root})(); return r && r.dataset.mode === 'browser'; }}", timeout=60_000
                    )
                    box = page.evaluate(
                        f"() => {{ const b = ({root})().querySelector('.lm-map').getBoundingClientRect(); return [b.x, b.y]; }}"
                    )
                    for index, click in ((3, True), (40, False)):
                        x, y = page.evaluate(f"(i) => ({root})()._state.toScreen(i)", index)
                        (page.mouse.click if click else page.mouse.move)(box[0] + x, box[1] + y)
                        page.wait_for_timeout(2500 if click else 800)
                page.wait_for_timeout(2000)
                image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
                image = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
                image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(OUT / f"{name}.png", optimize=True)
                print(f"{OUT / f'{name}.png'}: {(OUT / f'{name}.png').stat().st_size // 1024} KB")
            browser.close()


if __name__ == "__main__":
    main()

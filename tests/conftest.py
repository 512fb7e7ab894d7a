"""Shared fixtures: tiny data and one tiny trained checkpoint reused by the whole session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from vae_explorer import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    TrainingState,
    build_model,
    fit_to_data,
    load_dataset,
    save_checkpoint,
    train,
)

REPO = Path(__file__).resolve().parents[1]
IN_CI = bool(os.environ.get("CI"))
# How long a test waits for a state (a server up, a page drawn, a training finished) before it calls
# it hung. Generous on purpose: a busy 2-core machine must never cross it; no test measures speed
# (benchmarks/ do).
PATIENCE_S = int(os.environ.get("VAE_EXPLORER_TEST_PATIENCE", "600"))  # seconds; shorter only to debug a hang
PATIENCE_MS = PATIENCE_S * 1000

# Tests never try to download a dataset, and the feature classifiers they train stay out of ~/.cache.
os.environ.setdefault("VAE_EXPLORER_OFFLINE", "1")
os.environ["VAE_EXPLORER_CACHE"] = tempfile.mkdtemp(prefix="vae-explorer-test-cache-")

# Home and every page that explores the sidebar's model (chrome.page draws the picker): what each page test opens.
MODEL_PAGES = ["Home.py"] + sorted(
    f"pages/{p.name}" for p in (REPO / "pages").glob("*.py") if "chrome.page(" in p.read_text()
)


def shown(markdown: str) -> str:
    """What a reader sees of markdown whose only markup is backslash escapes (app/safety.py's plain)."""
    import re

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def require(condition: bool, what: str) -> None:
    """Skip when something optional is missing, but fail in CI, where .ci/run must have installed it."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing in CI; .ci/run must install it")
    pytest.skip(f"{what} is not installed here")


def fashion_available() -> bool:
    from vae_explorer.data import dataset_spec

    return dataset_spec("fashion-mnist").locate(DataConfig(dataset="fashion-mnist")) is not None


@pytest.fixture
def needs_fashion():
    require(fashion_available(), "Fashion-MNIST (apt-get install dataset-fashion-mnist)")


TINY_DATA = DataConfig(dataset="digits", max_train=256, max_test=64)
TINY_MODEL = ModelConfig(architecture="mlp", latent_dim=2, hidden_sizes=[16])
TINY_TRAIN = TrainConfig(epochs=6, batch_size=16, lr=3e-3, seed=0, device="cpu")


def two_epochs(model, data, config) -> tuple[list[dict], TrainingState]:
    """The first two epochs of `config`, stopped by a callback: their history and the state to resume from."""
    states = []
    part = train(
        model,
        data,
        config,
        [lambda e: states.append(e.state) if e.kind == "epoch" else None, lambda e: e.kind == "epoch" and e.epoch == 2],
    )
    return part, states[-1]


@pytest.fixture(scope="session")
def tiny_data():
    return load_dataset(TINY_DATA)


@pytest.fixture(scope="session")
def tiny_run(tiny_data):
    """A tiny MLP trained for two epochs on 256 digits: (model, config, history)."""
    config = RunConfig(TINY_DATA, fit_to_data(TINY_MODEL, tiny_data.image_shape, tiny_data.class_names), TINY_TRAIN)
    model = build_model(config.model, seed=0)
    history = train(model, tiny_data, config.train)
    return model, config, history


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run, tmp_path_factory) -> Path:
    model, config, history = tiny_run
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", model, config, history)


# --- the wheel `pip install .` makes (test_packaging.py, test_install.py): built once per run ----------


def source_files() -> list[str]:
    """The files a commit of this tree would hold (tracked, and new ones git does not ignore), as
    paths relative to the repository."""
    try:
        listed = (
            subprocess.run(
                ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                capture_output=True,
                check=True,
                timeout=PATIENCE_S,
            )
            .stdout.decode()
            .split("\0")
        )
    except (OSError, subprocess.CalledProcessError):
        listed = []
    require(
        bool(listed), "git and the clone's .git folder (the packaging tests compare the wheel with the tracked files)"
    )
    return sorted(name for name in listed if name and (REPO / name).is_file())


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this tree, built as `pip install .` builds it, from a copy holding only the files
    a commit would (plus the browser decoder's runtime where `npm ci` installed it), so nothing else
    lying in the clone can slip into it or hide its absence."""
    from vae_explorer.app.live import RUNTIME_FILES

    root = tmp_path_factory.mktemp("wheel")
    live = Path("vae_explorer/app/live")
    runtime = [str(live / name) for name in RUNTIME_FILES if (REPO / live / name).is_file()]
    for name in source_files() + runtime:
        (root / "source" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / "source" / name)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(root / "dist"),
            str(root / "source"),
        ],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert built.returncode == 0, built.stderr
    (path,) = (root / "dist").glob("vae_explorer-*.whl")
    return path


# --- the browser tests' app and Chromium (test_browser.py, test_live.py): one of each per run --------

CHROMIUM = Path("/usr/bin/chromium")
PAGES = {
    "": "Home",
    "Reconstruct": "Reconstruct",
    "Generate": "Generate",
    "Latent_map": "Latent map",
    "Interpolate": "Interpolate",
    "Traverse": "Traverse",
    "Learn": "Learn",
    "Train": "Train",
    "Evaluate": "Evaluate",
    "Compare": "Compare",
    "Latent_diffusion": "Latent diffusion",
}


def _playwright_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def app_url(runs_dir):
    require(CHROMIUM.exists(), "Chromium (apt-get install chromium)")
    require(_playwright_available(), "Playwright for Python (pip install playwright)")
    from vae_explorer.app.server import running_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAE_EXPLORER_RUNS", str(runs_dir))  # what the tests train stays out of runs/
        with running_app() as (base, _):
            yield base


@pytest.fixture(scope="module")  # per module: Playwright's sync API holds an event loop until it stops
def browser(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(PATIENCE_MS)  # clicks and waits without a timeout of their own
    page = context.new_page()
    yield page
    context.close()


def open_page(page, app_url: str, path: str, model: str = "digits-mlp"):
    """Open a page of the app for a model; in presentation mode when the page was made for a projector
    (test_lecture's `projector` sets `page.presenting`)."""
    page.goto(f"{app_url}/{path}?model={model}" + ("&present=1" if getattr(page, "presenting", False) else ""))
    page.get_by_role("heading", name=PAGES[path] if path else "vae-explorer").first.wait_for(timeout=PATIENCE_MS)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PATIENCE_MS)
    page.wait_for_timeout(500)


def error_boxes(page) -> list[str]:
    return [
        e.inner_text() for e in page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").all()
    ]


MAP_ROOT = """() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
  .map(r => r.querySelector('.lm-root')).find(Boolean)"""


def map_position(page, index: int | None = None, fraction: tuple[float, float] | None = None) -> tuple[float, float]:
    """Where on the page the latent map draws test image `index` (or a fraction of its width and height)."""
    page.wait_for_function(
        f"() => {{ const r = ({MAP_ROOT})(); return r && Number(r.dataset.points) > 0; }}", timeout=PATIENCE_MS
    )
    box = page.evaluate(f"""() => {{ const map = ({MAP_ROOT})().querySelector('.lm-map');
      let b = map.getBoundingClientRect();
      if (b.top < 0 || b.bottom > innerHeight) {{  // as a person scrolls to it
        map.scrollIntoView({{block: 'center'}}); b = map.getBoundingClientRect(); }}
      return [b.x, b.y, b.width, b.height]; }}""")
    if index is None:
        return box[0] + box[2] * fraction[0], box[1] + box[3] * fraction[1]
    x, y = page.evaluate(f"(i) => ({MAP_ROOT})()._state.toScreen(i)", index)
    return box[0] + x, box[1] + y

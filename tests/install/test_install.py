"""`pip install .` gives software that works from any folder, as a user's install does.

The wheel (conftest's `wheel`: built from the files a commit holds) is installed into a fresh
virtual environment that cannot see the clone: no `--system-site-packages`, so no editable install
of the clone (setuptools' editable finder, an easy-install path) reaches it. Its dependencies are
this environment's: its site-packages folders are listed in a .pth file of the new environment, and
Python does not run the .pth files of folders added that way. So a module missing from the wheel
fails here as it fails for a user, whether the suite runs in a venv or in a system interpreter.
Every command then runs from a folder outside the repository, on the shipped models and configs the
wheel carries, and the installed app trains a model from its Train page in Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CHROMIUM, PATIENCE_MS, PATIENCE_S, REPO, _playwright_available, require

from vae_explorer.app.live import RUNTIME_FILES, runtime_installed

BROWSER_FILES = ("sliders/sliders.js", "common.js", "live.js", *RUNTIME_FILES)


def _get(url: str) -> tuple[str, bytes]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=PATIENCE_S) as response:
        return response.headers.get_content_type(), response.read()


def dependency_folders() -> list[str]:
    """This interpreter's site-packages folders, where torch and the rest are installed (a venv in
    the clone, as .ci/run makes, included); never the clone itself, which an old-style editable
    install puts on the path."""
    found = [Path(entry).resolve() for entry in sys.path if entry]
    return list(dict.fromkeys(str(p) for p in found if p.name in ("site-packages", "dist-packages") and p.is_dir()))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=PATIENCE_S)
    bin_dir = root / "venv" / "bin"
    site_packages = subprocess.run(
        [str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=PATIENCE_S,
    ).stdout.strip()
    Path(site_packages, "zz_dependencies_of_the_test_environment.pth").write_text(
        "\n".join(dependency_folders()) + "\n"
    )
    result = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert result.returncode == 0, result.stderr
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(
        {
            "VAE_EXPLORER_RUNS": str(root / "runs"),
            "VAE_EXPLORER_CACHE": str(root / "cache"),
            "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
            "VIRTUAL_ENV": str(root / "venv"),
        }
    )
    return {"root": root, "bin": bin_dir, "cwd": elsewhere, "env": env, "site": Path(site_packages)}


def run(installed, *argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(installed["bin"] / "vae-explorer"), *argv],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )


def python(installed, code: str) -> str:
    result = subprocess.run(
        [str(installed["bin"] / "python"), "-c", code],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_the_installed_package_is_the_wheel_and_the_clone_is_out_of_reach(installed):
    code = (
        "import json, sys, vae_explorer, vae_explorer.paths as p; print(vae_explorer.__file__); print(p.shipped_root()); "
        "print(any('editable' in type(f).__name__.lower() for f in sys.meta_path)); print(json.dumps(sys.path))"
    )
    module, shipped, editable_finder, path = python(installed, code).splitlines()
    assert (
        Path(module).parent == installed["site"] / "vae_explorer"
        and Path(shipped) == installed["site"] / "vae_explorer" / "shipped"
    )
    assert editable_finder == "False" and all(Path(entry).resolve() != REPO for entry in json.loads(path) if entry)
    # the same interpreter cannot import what the wheel does not hold, even where the clone has it
    assert (
        "ModuleNotFoundError"
        in subprocess.run(
            [str(installed["bin"] / "python"), "-c", "import vae_explorer.no_such_module"],
            cwd=REPO,
            env=installed["env"],
            capture_output=True,
            text=True,
        ).stderr
    )


@pytest.mark.slow
def test_every_command_works_from_a_folder_outside_the_repository(installed):
    cwd, runs = installed["cwd"], installed["root"] / "runs"
    result = run(installed, "datasets")
    assert result.returncode == 0 and "digits" in result.stdout and "shapes" in result.stdout, result.stderr
    result = run(installed, "generate", "--model-path", "digits-mlp", "--n", "16", "--out", "samples.png")
    assert result.returncode == 0, result.stderr
    assert (cwd / "samples.png").stat().st_size > 500
    result = run(installed, "train", "--config", "digits_mlp", "--epochs", "1", "--name", "first", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (runs / "first" / "model.safetensors").is_file() and json.loads(
        (runs / "first" / "metrics.json").read_text()
    )["neg_elbo"] > 0
    result = run(installed, "evaluate", "--model-path", "first", "--k", "5")  # FID with the shipped digits classifier
    assert result.returncode == 0, result.stderr
    metrics = json.loads((runs / "first" / "metrics.json").read_text())
    assert metrics["fid"] > 0 and metrics["fid_classifier"]["key"].startswith("digits-")
    assert not (installed["root"] / "cache" / "classifiers").exists()  # found shipped, not trained again
    result = run(installed, "map", "--model-path", "first", "--method", "tsne")
    assert result.returncode == 0, result.stderr
    assert list((runs / "first" / "embeddings").glob("tsne-*.npy"))
    # the run's graphs out and back in: its decoder by export-onnx, its encoder by the package's exporter
    result = run(installed, "export-onnx", "--model-path", "first", "--out", "decoder.onnx")
    assert result.returncode == 0, result.stderr
    python(
        installed,
        "from vae_explorer import load_checkpoint; from vae_explorer.checkpoints.onnx_export import export_encoder; "
        "export_encoder(load_checkpoint('first').model, 'encoder.onnx')",
    )
    result = run(
        installed,
        "import-onnx",
        "--encoder",
        "encoder.onnx",
        "--decoder",
        "decoder.onnx",
        "--dataset",
        "digits",
        "--output",
        "probabilities",
        "--name",
        "theirs",
    )
    assert result.returncode == 0, result.stderr
    result = run(installed, "generate", "--model-path", "theirs", "--n", "4", "--out", "theirs.png")
    assert result.returncode == 0, result.stderr
    result = run(installed, "evaluate", "--model-path", "no-such-model")
    assert result.returncode == 2 and "checkpoint folder no-such-model does not exist" in result.stderr
    # nothing left in the folder the commands ran in but the files they were asked for
    assert sorted(p.name for p in cwd.iterdir()) == ["decoder.onnx", "encoder.onnx", "samples.png", "theirs.png"]


@pytest.mark.slow
def test_the_installed_app_serves_its_pages_and_trains_from_its_train_page(installed):
    from test_readme import _open_home

    from vae_explorer.app.server import free_port, wait_until_healthy

    require(CHROMIUM.exists(), "Chromium (apt-get install chromium)")
    require(_playwright_available(), "Playwright for Python (pip install playwright)")
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = subprocess.Popen(
        [
            str(installed["bin"] / "vae-explorer"),
            "app",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=installed["cwd"],
        env=installed["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    before = sorted(p.name for p in installed["cwd"].iterdir())
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, server=server)
        status, kinds, headings = asyncio.run(_open_home(base))
        served = {
            name: _get(f"{base}/_stcore/bidi-components/vae-explorer.latent_sliders/{name}") for name in BROWSER_FILES
        }
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(PATIENCE_MS)
            page.goto(f"{base}/Train")
            page.get_by_role("button", name="Start training").wait_for()
            page.get_by_role("spinbutton", name="Use only the first N training images").fill("256")
            page.get_by_role("spinbutton", name="Epochs", exact=True).fill("1")
            page.get_by_role("textbox", name="Save as").fill("from the app")
            page.get_by_role("button", name="Start training").click()
            page.get_by_text("saved as from-the-app").wait_for()
            errors = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=PATIENCE_S)
    with pytest.raises(OSError):  # stopping `vae-explorer app` stopped the server itself: nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert status == 0 and "exception" not in kinds
    assert "vae-explorer" in headings and "Model: digits-mlp" in headings
    assert errors == 0
    trained = installed["root"] / "runs" / "from-the-app"
    assert (trained / "model.safetensors").is_file() and json.loads((trained / "training.json").read_text())[
        "status"
    ] == "finished"
    # the browser decoder's files, served by the installed app from the wheel, with types a browser accepts
    require(runtime_installed(), "onnxruntime-web (npm ci --prefix vae_explorer/app/live)")
    for name, (kind, body) in served.items():
        assert body == (REPO / "vae_explorer" / "app" / "live" / name).read_bytes(), name
        assert kind in (
            {"application/wasm"} if name.endswith(".wasm") else {"text/javascript", "application/javascript"}
        ), (name, kind)
    assert sorted(p.name for p in installed["cwd"].iterdir()) == before  # the app wrote nothing where it ran

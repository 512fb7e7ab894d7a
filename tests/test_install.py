"""`pip install .` gives software that works from any folder: the wheel is built, installed into a
fresh virtual environment (reusing this one's torch and friends), and its commands run from a
folder outside the repository, on the shipped models and configs it carries as package data."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import REPO, require
from vae_explorer.app.live import RUNTIME_FILES, runtime_installed

BROWSER_FILES = ("sliders.js", "live.js", *RUNTIME_FILES)


def _get(url: str) -> tuple[str, bytes]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return response.headers.get_content_type(), response.read()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"),
                    str(REPO)], check=True, timeout=300, capture_output=True)
    (wheel,) = (root / "dist").glob("vae_explorer-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(root / "venv")], check=True, timeout=300)
    bin_dir = root / "venv" / "bin"
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, timeout=300,
                   capture_output=True)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "VAE_EXPLORER_RUNS": str(root / "runs"), "VAE_EXPLORER_CACHE": str(root / "cache"),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return {"root": root, "bin": bin_dir, "cwd": elsewhere, "env": env}


def run(installed, *argv, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([str(installed["bin"] / "vae-explorer"), *argv], cwd=installed["cwd"], env=installed["env"],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_the_installed_package_is_the_wheel_not_the_clone(installed):
    code = "import vae_explorer, vae_explorer.paths as p; print(vae_explorer.__file__); print(p.shipped_root())"
    out = subprocess.run([str(installed["bin"] / "python"), "-c", code], cwd=installed["cwd"], env=installed["env"],
                         capture_output=True, text=True, check=True).stdout.split()
    venv = str(installed["root"] / "venv")
    assert out[0].startswith(venv) and out[1].startswith(venv) and out[1].endswith("shipped")


@pytest.mark.slow
def test_shipped_models_and_configs_by_name_and_runs_in_the_runs_folder(installed):
    result = run(installed, "generate", "--model-path", "digits-mlp", "--n", "16", "--out", "samples.png")
    assert result.returncode == 0, result.stderr
    assert (installed["cwd"] / "samples.png").stat().st_size > 500
    result = run(installed, "train", "--config", "digits_mlp", "--epochs", "1", "--name", "first", "--quiet")
    assert result.returncode == 0, result.stderr
    run_folder = installed["root"] / "runs" / "first"
    assert (run_folder / "model.safetensors").is_file() and json.loads((run_folder / "metrics.json").read_text())["neg_elbo"] > 0
    assert sorted(p.name for p in installed["cwd"].iterdir()) == ["samples.png"]  # nothing left in the folder it ran in
    result = run(installed, "evaluate", "--model-path", "first", "--k", "5")  # FID with the shipped digits classifier
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_folder / "metrics.json").read_text())
    assert metrics["fid"] > 0 and metrics["fid_classifier"]["key"].startswith("digits-")
    assert not (installed["root"] / "cache" / "classifiers").exists()  # found shipped, not trained again
    result = run(installed, "evaluate", "--model-path", "no-such-model")
    assert result.returncode == 2 and "checkpoint folder no-such-model does not exist" in result.stderr


@pytest.mark.slow
def test_vae_explorer_app_serves_the_home_page_from_any_folder(installed):
    from test_readme import _open_home
    from vae_explorer.app.server import free_port, wait_until_healthy

    port = free_port()
    server = subprocess.Popen([str(installed["bin"] / "vae-explorer"), "app", "--server.port", str(port),
                               "--server.address", "127.0.0.1", "--server.headless", "true"], cwd=installed["cwd"],
                              env=installed["env"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(base)
        status, kinds, headings = asyncio.run(_open_home(base))
        served = {name: _get(f"{base}/_stcore/bidi-components/vae-explorer.latent_sliders/{name}") for name in BROWSER_FILES}
    finally:
        server.terminate()
        server.wait(timeout=30)
    with pytest.raises(OSError):  # stopping `vae-explorer app` stopped the server itself: nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert status == 0 and "exception" not in kinds
    assert "vae-explorer" in headings and "Model: digits-mlp" in headings
    # the browser decoder's files, served by the installed app from the wheel, with types a browser accepts
    require(runtime_installed(), "onnxruntime-web (npm ci --prefix vae_explorer/app/live)")
    for name, (kind, body) in served.items():
        assert body == (REPO / "vae_explorer" / "app" / "live" / name).read_bytes(), name
        assert kind in ({"application/wasm"} if name.endswith(".wasm") else {"text/javascript", "application/javascript"}), (name, kind)
    assert sorted(p.name for p in installed["cwd"].iterdir()) in ([], ["samples.png"])  # the app wrote nothing where it ran

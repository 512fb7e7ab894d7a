"""The README's commands and config keys stay true."""

import dataclasses
import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO
from vae_explorer.config import SECTIONS

README = (REPO / "README.md").read_text()


def block_after(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.*?)```", README, re.S)
    assert match, f"README has no bash block after <!-- {marker} -->"
    return match.group(1).strip()


@pytest.mark.slow
def test_quick_start_runs(tmp_path):
    """Run the quick start's commands after `pip install` in a scratch folder holding the configs."""
    (tmp_path / "configs").symlink_to(REPO / "configs")
    commands = [c.strip() for c in block_after("quickstart").split("&&")]
    assert commands[0] == "pip install -r requirements.txt"
    for command in commands[1:]:
        argv = shlex.split(command)
        assert argv[:3] == ["python", "-m", "vae_explorer"]
        result = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "samples.png").stat().st_size > 1000
    assert (tmp_path / "runs" / "quickstart" / "model.safetensors").is_file()


@pytest.mark.slow
def test_app_command_serves_the_app(tmp_path):
    """`streamlit run Home.py` from the README starts and answers on a loopback port."""
    import socket
    import time
    import urllib.request

    commands = [c.strip() for c in block_after("app").split("&&")]
    assert commands == ["pip install -r requirements.txt", "streamlit run Home.py"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
                               "--server.address", "127.0.0.1", "--server.headless", "true"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not answer within 60 s")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert b"<html" in response.read().lower()
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_ci_runs_the_readme_test_command():
    assert block_after("tests") == "pip install -r requirements.txt && python -m pytest -q"
    assert "<!-- tests -->" in (REPO / ".ci" / "run").read_text()


def test_every_config_key_is_documented():
    for section, cls in SECTIONS.items():
        for field in dataclasses.fields(cls):
            assert re.search(rf"^\s+{field.name}:", README, re.M), f"README does not document {section}.{field.name}"

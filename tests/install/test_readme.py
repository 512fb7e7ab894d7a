"""The README's commands and config keys stay true."""

import dataclasses
import re
import shlex
import subprocess
import sys

import pytest
from conftest import PATIENCE_S, REPO

from vae_explorer.config import SECTIONS

README = (REPO / "README.md").read_text()
NPM_SETUP = (
    "npm ci --prefix vae_explorer/app/live"  # the browser decoder's runtime (vae_explorer/app/live/package.json)
)


def block_after(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.*?)```", README, re.S)
    assert match, f"README has no bash block after <!-- {marker} -->"
    return match.group(1).strip()


@pytest.mark.slow
def test_quick_start_runs(tmp_path):
    """Run the quick start's commands after `pip install` in a scratch folder, with its own runs folder."""
    import os

    commands = [c.strip() for c in block_after("quickstart").split("&&")]
    assert commands[0] == "pip install -r requirements.txt"
    env = {**os.environ, "VAE_EXPLORER_RUNS": str(tmp_path / "runs")}
    for command in commands[1:]:
        argv = shlex.split(command)
        assert argv[0] == "vae-explorer"
        result = subprocess.run(
            [sys.executable, "-m", "vae_explorer", *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=PATIENCE_S,
        )
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "samples.png").stat().st_size > 1000
    assert (tmp_path / "runs" / "quickstart" / "model.safetensors").is_file()


async def _open_home(base: str) -> tuple[int, list[str], list[str]]:
    """Open the home page over Streamlit's websocket, as a browser tab does: the run's finishing
    status, the kinds of elements it drew and the text of its headings."""
    import asyncio

    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    async with websockets.connect(
        base.replace("http://", "ws://") + "/_stcore/stream", subprotocols=["streamlit"], max_size=None
    ) as ws:
        request = BackMsg()
        request.rerun_script.query_string = ""
        await ws.send(request.SerializeToString())
        kinds, headings = [], []
        while True:
            message = ForwardMsg()
            message.ParseFromString(await asyncio.wait_for(ws.recv(), PATIENCE_S))
            if message.WhichOneof("type") == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                kinds.append(element.WhichOneof("type"))
                if kinds[-1] == "heading":
                    headings.append(element.heading.body)
            elif message.WhichOneof("type") == "script_finished":
                return message.script_finished, kinds, headings


def test_app_command_serves_the_app(tmp_path):
    """`streamlit run Home.py` from the README starts, and its home page runs to the end without an
    exception or an error box, showing the model."""
    import asyncio
    import urllib.request

    from vae_explorer.app.server import running_app

    commands = [c.strip() for c in block_after("app").split("&&")]
    assert commands == ["pip install -r requirements.txt", NPM_SETUP, "streamlit run Home.py"]
    with running_app() as (base, _):  # the same command, on a free loopback port
        with urllib.request.urlopen(f"{base}/", timeout=PATIENCE_S) as response:
            assert b"<html" in response.read().lower()
        status, kinds, headings = asyncio.run(_open_home(base))
    assert status == 0, f"the home page's run ended with status {status}"  # 0: finished successfully
    assert "exception" not in kinds and "vae-explorer" in headings and "Model: digits-mlp" in headings
    assert kinds.count("imgs") == 1  # the samples from the prior


def test_ci_runs_the_readme_commands_in_a_fresh_virtual_environment():
    venv, command = block_after("venv"), block_after("tests")
    assert venv == "python3 -m venv .venv && . .venv/bin/activate"
    assert command == f"pip install -r requirements.txt && {NPM_SETUP} && python -m pytest -q"
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert venv in lines and command in lines and lines.index(venv) < lines.index(command)


def test_every_config_key_is_documented():
    """docs/configs.md's YAML block holds every key, with its default."""
    from vae_explorer.config import RunConfig

    block = re.search(r"```yaml\n(.*?)```", (REPO / "docs" / "configs.md").read_text(), re.S).group(1)
    import yaml

    documented = yaml.safe_load(block)
    defaults = RunConfig().to_dict()
    for section, cls in SECTIONS.items():
        for field in dataclasses.fields(cls):
            assert field.name in documented[section], f"docs/configs.md does not document {section}.{field.name}"
            assert documented[section][field.name] == defaults[section][field.name], f"{section}.{field.name}'s default"


def test_the_readme_is_short_and_every_document_it_links_exists():
    """The README says what this is and how to start (about 150 lines); the reference lives in docs/, and every
    document there is linked from the README, every link there leads to a file."""
    assert len(README.splitlines()) <= 160
    linked = set(re.findall(r"\]\((docs/[^)#]+)", README))
    assert {p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")} <= linked
    for path in linked:
        assert (REPO / path).is_file(), f"README links {path}, which does not exist"
    for doc in (REPO / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)", doc.read_text()):
            assert (doc.parent / target).is_file(), f"{doc.name} links {target}, which does not exist"

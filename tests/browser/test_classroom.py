"""Serving a class: two app processes behind nginx with configs/serving/nginx-classroom.conf
(vae_explorer.app.serving, what `vae-explorer app --workers N` runs, starts them on loopback). Each
browser stays on one process (a picture made by one process is only there), sessions run through the
proxy without errors, and a real browser decodes in the page through it (the websocket and the 14 MB runtime pass)."""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
from conftest import CHROMIUM, PATIENCE_MS, PATIENCE_S, REPO, require

pytestmark = pytest.mark.slow  # two app processes behind nginx


sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    from vae_explorer.app.server import app_environment
    from vae_explorer.app.serving import classroom, nginx_path

    require(nginx_path() is not None, "nginx (apt-get install nginx)")
    with classroom(2, app_environment(str(tmp_path_factory.mktemp("runs")))) as (base, servers, _):
        yield base


def _status(url: str, cookie: str) -> int:
    request = urllib.request.Request(url, headers={"Cookie": f"vae_explorer_browser={cookie}"})
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE_S) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def _home_picture(base: str, cookie: str) -> str:
    """Open the home page over the proxy's websocket as the browser with `cookie`; the URL of its first picture."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    async with websockets.connect(
        base.replace("http://", "ws://") + "/_stcore/stream",
        subprotocols=["streamlit"],
        max_size=None,
        additional_headers={"Cookie": f"vae_explorer_browser={cookie}"},
    ) as ws:
        request = BackMsg()
        request.rerun_script.query_string = "model=digits-mlp"
        await ws.send(request.SerializeToString())
        while True:
            message = ForwardMsg()
            message.ParseFromString(await asyncio.wait_for(ws.recv(), PATIENCE_S))
            if message.WhichOneof("type") == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                if element.WhichOneof("type") == "imgs":
                    return element.imgs.imgs[0].url


def test_each_browser_stays_on_the_process_that_holds_its_pictures(proxied):
    mine = uuid.uuid4().hex
    picture = proxied + asyncio.run(_home_picture(proxied, mine))
    assert [_status(picture, mine) for _ in range(10)] == [200] * 10  # the same browser: always its process
    # other browsers are spread over both processes: for some of them, that picture is not there
    others = [_status(picture, uuid.uuid4().hex) for _ in range(24)]
    assert set(others) == {200, 404}, others
    # a first visit gets its cookie from nginx
    with urllib.request.urlopen(f"{proxied}/", timeout=PATIENCE_S) as response:
        assert response.headers["Set-Cookie"].startswith("vae_explorer_browser=")


def test_sessions_through_the_proxy_drag_and_open_pages_without_errors(proxied):
    from app_load import protocol_load_test

    # rounds of 3 s until enough was done: a busy machine answers fewer in each, never wrongly
    trips, opens, errors = [], [], []
    deadline = time.monotonic() + PATIENCE_S
    while (len(trips) < 4 or len(opens) < 8) and time.monotonic() < deadline:
        result = protocol_load_test(sessions=4, seconds=3.0, address=proxied)
        trips, opens, errors = trips + result["round_trips"], opens + result["page_opens"], errors + result["errors"]
    assert errors == []
    assert len(trips) >= 4 and len(opens) >= 8


def test_a_browser_decodes_in_the_page_through_the_proxy(proxied):
    from vae_explorer.app.live import runtime_installed

    require(CHROMIUM.exists(), "Chromium (apt-get install chromium)")
    require(runtime_installed(), "onnxruntime-web (npm ci --prefix vae_explorer/app/live)")
    from playwright.sync_api import sync_playwright
    from test_live import ROOT

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            page = browser.new_page()
            page.goto(f"{proxied}/Generate?model=digits-mlp")
            page.wait_for_function(
                f"() => {{ const r = ({ROOT})(); return r && r.dataset.mode === 'browser'; }}", timeout=PATIENCE_MS
            )
            assert page.context.cookies()[0]["name"] == "vae_explorer_browser"
        finally:
            browser.close()


def test_one_command_serves_a_class_and_ctrl_c_stops_every_process(tmp_path):
    """`vae-explorer app --workers 2`: two app processes and nginx in front, one line saying where; SIGINT (Ctrl-C)
    stops all of them and the command exits 0."""
    import re
    import signal
    import subprocess

    from vae_explorer.app.server import free_port
    from vae_explorer.app.serving import nginx_path

    require(nginx_path() is not None, "nginx (apt-get install nginx)")
    port = free_port()
    # as from a terminal, where Ctrl-C interrupts: a test run started in the background (`bash .ci/run &`) has SIGINT
    # ignored, which a child keeps (and then rightly ignores Ctrl-C); so the child first takes Python's own handler
    at_a_terminal = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'vae-explorer'; runpy.run_module('vae_explorer', run_name='__main__')"
    )
    command = subprocess.Popen(
        [
            sys.executable,
            "-c",
            at_a_terminal,
            "app",
            "--workers",
            "2",
            "--runs-dir",
            str(tmp_path),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = command.stdout.readline()  # printed once every process answers
        found = re.match(
            r"Serving 2 app processes \(127\.0\.0\.1:(\d+), (\d+)\) behind nginx at http://127\.0\.0\.1:(\d+)/", line
        )
        assert found, line
        assert int(found.group(3)) == port
        workers = [int(found.group(1)), int(found.group(2))]
        for where in [port, *workers]:
            assert _status(f"http://127.0.0.1:{where}/_stcore/health", uuid.uuid4().hex) == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=PATIENCE_S) as response:
            assert "vae_explorer_browser=" in (
                response.headers.get("Set-Cookie") or ""
            )  # the proxy keeps each browser on one
        command.send_signal(signal.SIGINT)
        assert command.wait(timeout=PATIENCE_S) == 0
        assert "Stopped: every app process and nginx." in command.stdout.read()
        for where in [port, *workers]:
            with pytest.raises(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{where}/_stcore/health", timeout=5)
    finally:
        if command.poll() is None:
            command.kill()


def test_workers_without_nginx_or_with_a_bad_count_are_one_sentence(monkeypatch, capsys):
    from vae_explorer import cli
    from vae_explorer.app import serving

    assert cli.main(["app", "--workers", "many"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --workers many is not a number of app processes; write --workers N (1 to 64) or --workers auto."
    )
    monkeypatch.setattr(serving, "nginx_path", lambda: None)
    assert cli.main(["app", "--workers", "2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: Serving several app processes needs nginx in front of them, and it is not "
        "installed: `sudo apt-get install nginx`, or start one process with `vae-explorer app`."
    )
    assert cli.main(["app", "--workers"]) == 2
    assert "--workers needs a value; write --workers N (1 to 64) or auto." in capsys.readouterr().err
    assert 1 <= serving.auto_workers() <= serving.MAX_AUTO_WORKERS

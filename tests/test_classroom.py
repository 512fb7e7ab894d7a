"""Serving a class: two app processes behind nginx with configs/serving/nginx-classroom.conf
(benchmarks/classroom.py starts them on loopback). Each browser stays on one process (a picture
made by one process is only there), sessions run through the proxy without errors, and a real
browser decodes in the page through it (the websocket and the 14 MB runtime pass)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import CHROMIUM, PATIENCE_MS, PATIENCE_S, REPO, require

pytestmark = pytest.mark.slow  # two app processes behind nginx


sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    require(shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists(), "nginx (apt-get install nginx)")
    from classroom import classroom
    from vae_explorer.app.server import app_environment

    with classroom(2, app_environment(str(tmp_path_factory.mktemp("runs")))) as (base, servers):
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

    async with websockets.connect(base.replace("http://", "ws://") + "/_stcore/stream", subprotocols=["streamlit"],
                                  max_size=None, additional_headers={"Cookie": f"vae_explorer_browser={cookie}"}) as ws:
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
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu",
                                                                         "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.goto(f"{proxied}/Generate?model=digits-mlp")
            page.wait_for_function(f"() => {{ const r = ({ROOT})(); return r && r.dataset.mode === 'browser'; }}",
                                   timeout=PATIENCE_MS)
            assert page.context.cookies()[0]["name"] == "vae_explorer_browser"
        finally:
            browser.close()

"""The protocol-level load client (benchmarks/app_load.py) drives a real server: a short run with two sessions."""

import sys

import pytest
from conftest import REPO, require

sys.path.insert(0, str(REPO / "benchmarks"))
from app_load import protocol_load_test  # noqa: E402

pytestmark = pytest.mark.slow  # the load benchmark's sessions


def test_two_protocol_sessions_drag_and_open_pages():
    # every value decoded on the server, as for a browser without WebAssembly: many values per drag
    result = protocol_load_test(sessions=2, seconds=2.0, live=False)
    assert result["errors"] == []
    assert len(result["round_trips"]) >= 10 and all(0 < t < 30_000 for t in result["round_trips"])
    assert len(result["page_opens"]) >= 4  # home, Generate, another page, for each session
    assert result["server_rss_mb"] > 50


def test_sessions_that_decode_in_the_browser_send_one_value_per_drag_and_get_the_graph_once():
    import base64

    from vae_explorer import load_checkpoint
    from vae_explorer.app.live import runtime_installed
    from vae_explorer.checkpoints import decoder_onnx

    require(runtime_installed(), "onnxruntime-web (npm ci --prefix vae_explorer/app/live)")
    result = protocol_load_test(sessions=2, seconds=3.0)
    graph = len(base64.b64encode(decoder_onnx(load_checkpoint("digits-mlp")).read_bytes()))
    assert result["errors"] == []
    drags = len(result["round_trips"])
    assert 2 <= drags <= len(result["page_opens"])  # one released value per Generate visit
    assert result["graph_bytes"] == 2 * graph  # once per session, however often it comes back to Generate

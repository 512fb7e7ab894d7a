"""The protocol-level load client (benchmarks/app_load.py) drives a real server: a short run with two sessions."""

import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from app_load import protocol_load_test  # noqa: E402


def test_two_protocol_sessions_drag_and_open_pages():
    result = protocol_load_test(sessions=2, seconds=2.0)
    assert result["errors"] == []
    assert len(result["round_trips"]) >= 10 and all(0 < t < 30_000 for t in result["round_trips"])
    assert len(result["page_opens"]) >= 4  # home, Generate, another page, for each session
    assert result["server_rss_mb"] > 50

"""Start the Streamlit app on a free loopback port for tests, benchmarks and screenshots."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int) -> subprocess.Popen:
    """`streamlit run Home.py` on 127.0.0.1:port, headless, output discarded."""
    return subprocess.Popen([sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until_healthy(base: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the app at {base} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def running_app() -> Iterator[tuple[str, subprocess.Popen]]:
    """The app's base URL and server process, stopped on exit."""
    port = free_port()
    server = start_app(port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)

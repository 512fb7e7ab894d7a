"""Start the Streamlit app: `vae-explorer app` in the foreground, or on a free loopback port for
tests, benchmarks and screenshots. (Imports no streamlit: the app runs in its own process.)

The app is `streamlit run Home.py` in the folder that holds Home.py, pages/ and
.streamlit/config.toml (the clone, or the installed package's shipped/ folder), so that
Streamlit reads the app's settings whichever folder the command is typed in.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..paths import app_dir


def app_command(flags: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(app_dir() / "Home.py"), *flags]


def app_environment(
    runs: str | Path | None = None, data_root: str | Path | None = None, diffusers_root: str | Path | None = None
) -> dict[str, str]:
    """This process's environment for the app's process, with the runs folder it should use, the
    folder whose image folders its Train page may read (data/access.py) and the folder whose
    diffusers VAEs its Latent diffusion page offers (app/spatial.py)."""
    env = dict(os.environ)
    if diffusers_root is not None:
        env["VAE_EXPLORER_DIFFUSERS_ROOT"] = str(Path(diffusers_root).expanduser().resolve())
    if runs is not None:
        env["VAE_EXPLORER_RUNS"] = str(Path(runs).expanduser().resolve())
    if data_root is not None:
        env["VAE_EXPLORER_DATA_ROOT"] = str(Path(data_root).expanduser().resolve())
    return env


def launch(
    flags: Sequence[str] = (),
    runs: str | Path | None = None,
    data_root: str | Path | None = None,
    diffusers_root: str | Path | None = None,
) -> None:
    """`vae-explorer app [streamlit flags]`: become the app's server (exec), so that stopping this
    process (Ctrl-C, `kill`, a service manager) stops the server, with no child left behind."""
    command = app_command(flags)
    os.chdir(app_dir())
    os.execve(command[0], command, app_environment(runs, data_root, diffusers_root))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, env: dict[str, str] | None = None, flags: Sequence[str] = ()) -> subprocess.Popen:
    """The app on 127.0.0.1:port, headless, with more streamlit `flags`, output discarded."""
    return subprocess.Popen(
        app_command(["--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true", *flags]),
        cwd=app_dir(),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until_healthy(base: str, timeout: float = 600.0, server: subprocess.Popen | None = None) -> None:
    """Wait until the app at `base` answers. The cap is generous (a busy machine starts it slowly);
    a `server` process that ends first fails at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"the app at {base} ended (status {server.returncode}) before it answered")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the app at {base} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def running_app(env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """The app's base URL and server process, stopped on exit."""
    port = free_port()
    server = start_app(port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, server=server)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)

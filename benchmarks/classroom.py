"""A classroom on loopback: several app processes behind nginx with configs/serving/nginx-classroom.conf.

    with classroom(processes=2) as (base, servers): ...   # base: nginx's address

The repository's config file is used as it is, with only its ports changed (the app processes'
free ports and nginx's own); nginx runs in the foreground from a scratch folder, as the user who
starts it. Used by tests/test_classroom.py and by `app_load.py --processes N`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from common import REPO
from vae_explorer.app.server import free_port, start_app, wait_until_healthy

CONFIG = REPO / "configs" / "serving" / "nginx-classroom.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def render(config: str, app_ports: list[int], front_port: int) -> str:
    """The config with its upstream servers replaced by `app_ports` and its listen port by `front_port`."""
    servers = "\n".join(f"    server 127.0.0.1:{port};" for port in app_ports)
    config, count = re.subn(r"(?:^\s*server 127\.0\.0\.1:\d+;\n)+", servers + "\n", config, count=1, flags=re.M)
    assert count == 1, "the config's upstream block lists no `server 127.0.0.1:PORT;` lines"
    config, count = re.subn(r"listen \d+;", f"listen 127.0.0.1:{front_port};", config)
    assert count == 1, "the config has no `listen PORT;` line"
    return config


@contextmanager
def classroom(processes: int = 2, env: dict[str, str] | None = None) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vae-explorer-classroom-")))
        ports = [free_port() for _ in range(processes)]
        servers = []
        for port in ports:
            server = start_app(port, env)
            servers.append(server)
            stack.callback(_stop, server)
        for port in ports:
            wait_until_healthy(f"http://127.0.0.1:{port}")
        front = free_port()
        (scratch / "classroom.conf").write_text(render(CONFIG.read_text(), ports, front))
        for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (scratch / folder).mkdir(mode=0o777)
            (scratch / folder).chmod(0o777)  # nginx's workers may run as another user
        (scratch / "nginx.conf").write_text(
            f"pid {scratch}/nginx.pid;\nerror_log {scratch}/error.log warn;\nworker_processes 1;\nevents {{}}\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {scratch}/body;\n  proxy_temp_path {scratch}/proxy;\n"
            f"  fastcgi_temp_path {scratch}/fastcgi;\n  uwsgi_temp_path {scratch}/uwsgi;\n  scgi_temp_path {scratch}/scgi;\n"
            f"  include {scratch}/classroom.conf;\n}}\n")
        nginx = subprocess.Popen([NGINX, "-p", str(scratch), "-c", str(scratch / "nginx.conf"), "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stack.callback(_stop, nginx)
        base = f"http://127.0.0.1:{front}"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if nginx.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {nginx.stderr.read() if nginx.poll() is not None else 'no answer'}; "
                                   f"{(scratch / 'error.log').read_text() if (scratch / 'error.log').exists() else ''}")
            time.sleep(0.1)
        yield base, servers


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()

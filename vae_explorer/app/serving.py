"""A class on one machine: several app processes behind nginx, each browser kept on one.

    vae-explorer app --workers N       (or --workers auto: one per core, at most 8)

Streamlit keeps a session in the memory of the process that serves its websocket, so nginx sends
every request of a browser to the same process (configs/serving/nginx-classroom.conf: a cookie
names the browser, a consistent hash of it picks the process). This module starts the processes
on free loopback ports and nginx in the foreground from a scratch folder, as the user who runs it,
with the shipped config (only its ports changed); stopping it (Ctrl-C, SIGTERM) stops them all.
`classroom()` is the same as a context manager, for the tests and benchmarks.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ..errors import ConfigError
from ..paths import shipped_configs_dir
from .server import free_port, start_app, wait_until_healthy

MAX_AUTO_WORKERS = 8  # each process holds its own models and sessions: about 0.5 to 1 GB


def config_path() -> Path:
    """configs/serving/nginx-classroom.conf, in the clone or in the installed package's shipped/ folder."""
    return shipped_configs_dir() / "serving" / "nginx-classroom.conf"


def nginx_path() -> str | None:
    """The nginx program (Debian installs it in /usr/sbin, which a user's PATH may not hold), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def auto_workers() -> int:
    """One app process per core this process may use, at most MAX_AUTO_WORKERS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_AUTO_WORKERS))


def parse_workers(text: str) -> int:
    """--workers N (1 to 64) or auto."""
    if text == "auto":
        return auto_workers()
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise ConfigError(
            f"--workers {text} is not a number of app processes; write --workers N (1 to 64) or --workers auto."
        )
    return int(text)


def render(config: str, app_ports: Sequence[int], listen: str) -> str:
    """The config with its upstream servers replaced by `app_ports` and its listen line by `listen` (PORT or ADDRESS:PORT)."""
    servers = "\n".join(f"    server 127.0.0.1:{port};" for port in app_ports)
    config, count = re.subn(r"(?:^\s*server 127\.0\.0\.1:\d+;\n)+", servers + "\n", config, count=1, flags=re.M)
    if count != 1:
        raise ConfigError(
            f"{config_path()} lists no `server 127.0.0.1:PORT;` line in its upstream block; restore it from the project."
        )
    config, count = re.subn(r"listen \S+;", f"listen {listen};", config)
    if count != 1:
        raise ConfigError(f"{config_path()} has no `listen PORT;` line; restore it from the project.")
    return config


def _nginx_conf(scratch: Path) -> str:
    """The main nginx.conf of a scratch folder: every file nginx writes stays in it."""
    return (
        f"pid {scratch}/nginx.pid;\nerror_log {scratch}/error.log warn;\nworker_processes 1;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {scratch}/body;\n  proxy_temp_path {scratch}/proxy;\n"
        f"  fastcgi_temp_path {scratch}/fastcgi;\n  uwsgi_temp_path {scratch}/uwsgi;\n  scgi_temp_path {scratch}/scgi;\n"
        f"  include {scratch}/classroom.conf;\n}}\n"
    )


@contextmanager
def classroom(
    processes: int = 2, env: dict[str, str] | None = None, listen: str | None = None, flags: Sequence[str] = ()
) -> Iterator[tuple[str, list[subprocess.Popen], subprocess.Popen]]:
    """`processes` app processes on free loopback ports (with streamlit `flags`) behind nginx listening
    on `listen` (default: a free loopback port): (the base URL to open, the app processes, nginx).
    Stopped on exit."""
    nginx_program = nginx_path()
    if nginx_program is None:
        raise ConfigError(
            "Serving several app processes needs nginx in front of them, and it is not installed: "
            "`sudo apt-get install nginx`, or start one process with `vae-explorer app`."
        )
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vae-explorer-classroom-")))
        ports = [free_port() for _ in range(processes)]
        servers = []
        for port in ports:
            server = start_app(port, env, flags)
            servers.append(server)
            stack.callback(stop, server)
        for port, server in zip(ports, servers):
            wait_until_healthy(f"http://127.0.0.1:{port}", server=server)
        if listen is None:
            listen = f"127.0.0.1:{free_port()}"
        (scratch / "classroom.conf").write_text(render(config_path().read_text(), ports, listen))
        for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (scratch / folder).mkdir(mode=0o777)
            (scratch / folder).chmod(0o777)  # nginx's workers may run as another user
        (scratch / "nginx.conf").write_text(_nginx_conf(scratch))
        nginx = subprocess.Popen(
            [nginx_program, "-p", str(scratch), "-c", str(scratch / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        stack.callback(stop, nginx)
        port = listen.rsplit(":", 1)[-1]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if nginx.poll() is not None or time.monotonic() > deadline:
                log = (scratch / "error.log").read_text() if (scratch / "error.log").exists() else ""
                said = (nginx.stderr.read() if nginx.poll() is not None else "") + log
                raise ConfigError(
                    f"nginx did not start on {listen}: {said.strip().splitlines()[-1] if said.strip() else 'no answer'}; "
                    "pick another port with --server.port."
                )
            time.sleep(0.1)
        yield base, servers, nginx


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _flag(flags: list[str], name: str) -> tuple[str | None, list[str]]:
    """A streamlit flag's value (`--name V` or `--name=V`) and the flags without it."""
    for i, flag in enumerate(flags):
        if flag == name and i + 1 < len(flags):
            return flags[i + 1], flags[:i] + flags[i + 2 :]
        if flag.startswith(name + "="):
            return flag.split("=", 1)[1], flags[:i] + flags[i + 1 :]
    return None, flags


def serve(workers: int, flags: Sequence[str], env: dict[str, str]) -> int:
    """`vae-explorer app --workers N`: N app processes behind nginx on --server.address:--server.port
    (default all addresses, port 8501), in the foreground until Ctrl-C or SIGTERM, which stop them all."""
    port, rest = _flag(list(flags), "--server.port")
    address, rest = _flag(rest, "--server.address")
    port = port or "8501"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"--server.port {port} is not a port; write a number from 1 to 65535.")
    listen = f"{address}:{port}" if address else port
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop ends it as Ctrl-C does
    try:
        with classroom(workers, env, listen, rest) as (base, servers, nginx):
            print(
                f"Serving {workers} app processes (127.0.0.1:"
                + ", ".join(_port_of(s) for s in servers)
                + f") behind nginx at http://{address or 'THIS-MACHINE'}:{port}/; students open that address. "
                "Ctrl-C stops them all.",
                flush=True,
            )
            while True:
                ended = next((s for s in [*servers, nginx] if s.poll() is not None), None)
                if ended is not None:
                    what = "nginx" if ended is nginx else f"the app process on 127.0.0.1:{_port_of(ended)}"
                    print(
                        f"{what[0].upper() + what[1:]} ended (status {ended.returncode}); stopping the others. Run "
                        "`vae-explorer app` alone to see an app process's messages.",
                        flush=True,
                    )
                    return 1
                time.sleep(0.5)
    except KeyboardInterrupt:
        print("Stopped: every app process and nginx.", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _port_of(server: subprocess.Popen) -> str:
    return server.args[server.args.index("--server.port") + 1]

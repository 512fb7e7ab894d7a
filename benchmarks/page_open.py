"""Where a page open goes: the server's CPU time for a visitor's first open of each page and for a
later visitor's open of the same page, and, run in this process, what the page's script spends it on.

    python benchmarks/page_open.py [--model digits-mlp] [--repeats 3]

1. A fresh app process (one, on loopback). For each page in turn, a new session (a websocket, as a
   new browser tab makes) asks for the page: "first" is the first visitor to open that page in
   this process (its caches cold), "later" a new visitor opening it after (caches warm; the
   mean CPU and median wall of --repeats: the kernel counts CPU in 10 ms ticks, so one open's
   figure is coarse and only a mean of many is not). Server CPU is the process's user + system time (all its threads, from
   /proc) from before the websocket opens to the page's `script_finished`, so session start,
   the script and sending the page are all in it; wall is the visitor's wait.
2. The same pages run as Streamlit's AppTest in this process, first and later runs, with the
   time inside the functions that build the page's parts summed by part: the model catalogue
   and loading, pictures (PNG encoding), component payloads (the browser's decoder graph, data
   URIs) and the rest (the script itself and Streamlit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import REPO

sys.path.insert(0, str(REPO))

PAGES = [
    "",
    "Reconstruct",
    "Generate",
    "Latent_map",
    "Interpolate",
    "Traverse",
    "Learn",
    "Train",
    "Evaluate",
    "Compare",
]
FILES = {
    "": "Home.py",
    "Reconstruct": "pages/1_Reconstruct.py",
    "Generate": "pages/2_Generate.py",
    "Latent_map": "pages/3_Latent_map.py",
    "Interpolate": "pages/4_Interpolate.py",
    "Traverse": "pages/5_Traverse.py",
    "Learn": "pages/6_Learn.py",
    "Train": "pages/7_Train.py",
    "Evaluate": "pages/8_Evaluate.py",
    "Compare": "pages/9_Compare.py",
}
# the functions whose time makes each part (module, name): none calls another part's
PARTS = {
    "catalogue": [
        ("vae_explorer.app.catalog", "available_models"),
        ("vae_explorer.app.catalog", "_load"),
        ("vae_explorer.app.catalog", "dataset_of"),
        ("vae_explorer.app.catalog", "image_shape_of"),
    ],
    "pictures": [
        ("vae_explorer.images", "png_bytes"),
        ("vae_explorer.images", "array_png_bytes"),
        ("vae_explorer.app.live.runtime", "png_data_uri"),
    ],
    "payloads": [("vae_explorer.app.live", "browser_decoding"), ("vae_explorer.app.live", "browser_encoding")],
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_open(base: str, pid: int, page: str, model: str) -> tuple[float, float]:
    """A new session opens `page`: (server CPU ms, wall ms)."""
    import websockets
    from app_load import Session

    cpu, start = cpu_seconds(pid), time.perf_counter()
    async with websockets.connect(
        base.replace("http://", "ws://") + "/_stcore/stream", subprotocols=["streamlit"], max_size=None, open_timeout=60
    ) as ws:
        session = Session(ws, model)
        reader = asyncio.ensure_future(session.read())
        await session.open(page, timeout=600)  # the session's first run: the page the URL names, as a new tab asks
        wall = (time.perf_counter() - start) * 1000
        reader.cancel()
        if session.errors:
            raise RuntimeError(f"{page or 'Home'}: {session.errors}")
    await asyncio.sleep(0.3)  # the server's work after the last message (its session closing) is not this open's
    return (cpu_seconds(pid) - cpu) * 1000, wall


def served(model: str, repeats: int) -> dict:
    from vae_explorer.app.server import app_environment, running_app

    rows = {}
    with running_app(app_environment(tempfile.mkdtemp())) as (base, server):
        time.sleep(2)
        for page in PAGES:
            first = asyncio.run(one_open(base, server.pid, page, model))
            later = [asyncio.run(one_open(base, server.pid, page, model)) for _ in range(repeats)]
            rows[page] = (first, (statistics.fmean(c for c, _ in later), statistics.median(w for _, w in later)))
            print(
                f"  served {page or 'Home'}: first {first[0]:.0f} ms CPU, later {rows[page][1][0]:.0f} ms CPU",
                flush=True,
            )
    return rows


def profiled(model: str) -> dict:
    """Per page: {"first"|"later": {part: ms}}: the page run as AppTest in this process, its parts timed
    by wrapping their functions (the script runs in AppTest's own thread, out of a profiler's reach)."""
    import functools
    import importlib

    from streamlit.testing.v1 import AppTest

    spent: dict[str, float] = {}
    depth = {"now": 0}

    def timed(part, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            depth["now"] += 1
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                depth["now"] -= 1
                if depth["now"] == 0:  # the outermost call only: a part calling a part is counted once
                    spent[part] = spent.get(part, 0.0) + (time.perf_counter() - start) * 1000

        return wrapper

    for part, functions in PARTS.items():
        for module_name, name in functions:
            module = importlib.import_module(module_name)
            setattr(module, name, timed(part, getattr(module, name)))

    def run_once(path: Path) -> float:
        at = AppTest.from_file(str(path), default_timeout=600)
        start = time.perf_counter()
        at.run()
        return (time.perf_counter() - start) * 1000

    empty = Path(tempfile.mkdtemp()) / "empty.py"  # AppTest's own cost of a run: a page that writes one line
    empty.write_text("import streamlit as st\nst.write('x')\n")
    harness = statistics.median(run_once(empty) for _ in range(5))
    rows = {
        "AppTest's own run (an empty page)": {
            "later": {**{part: 0.0 for part in PARTS}, "the rest": harness, "total": harness}
        }
    }
    for page in PAGES:
        rows[page] = {}
        for when in ("first", "later"):
            at = AppTest.from_file(str(REPO / FILES[page]), default_timeout=600)
            at.query_params["model"] = model
            spent.clear()
            start = time.perf_counter()
            at.run()
            total = (time.perf_counter() - start) * 1000
            parts = {part: spent.get(part, 0.0) for part in PARTS}
            parts["the rest"] = max(total - sum(parts.values()), 0.0)
            parts["total"] = total
            rows[page][when] = parts
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="digits-mlp")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(
        f"Page opens of {args.model}, {os.cpu_count()} CPUs; server CPU ms (user + system) and the visitor's wait (wall ms):"
    )
    served_rows = served(args.model, args.repeats)
    print("| page | first open: server CPU | first: wall | later open: server CPU | later: wall |")
    print("|---|---:|---:|---:|---:|")
    for page, ((c1, w1), (c2, w2)) in served_rows.items():
        print(f"| {page or 'Home'} | {c1:.0f} | {w1:.0f} | {c2:.0f} | {w2:.0f} |")
    print(
        "\nWhere a run of the page's script goes (AppTest in this process, wall ms; the rest: the script and Streamlit):"
    )
    rows = profiled(args.model)
    names = list(PARTS) + ["the rest", "total"]
    print("| page | run | " + " | ".join(names) + " |")
    print("|---|---|" + "---:|" * len(names))
    for page, runs in rows.items():
        for when, parts in runs.items():
            print(f"| {page or 'Home'} | {when} | " + " | ".join(f"{parts[n]:.0f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

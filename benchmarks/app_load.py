"""A load test that speaks Streamlit's own websocket protocol, so the server alone is measured.

    python benchmarks/app_load.py --clients 100 --seconds 60 [--processes 2] [--think 3]
                                  [--server-decodes] [--while-training]

Each simulated session opens its own websocket to the app on loopback (or, with --processes N,
to nginx in front of N app processes: classroom.py) and does what the browser does, without
rendering anything: it asks for the Generate page, says it holds the decoder's graph (as the
page does once onnxruntime-web has made a session of it), drags a latent slider for about a
second and then opens another page, again and again until time is up. Decoding in the browser,
a drag sends only its released value; with --server-decodes (a browser without WebAssembly)
it sends a value every 25 ms, at most two unanswered, as the slider component then does.
--think pauses each session between its actions, as a person does.
A round trip is the time from sending a slider value (a fragment rerun carrying the slider's new
state) to the picture for it arriving (the component's data carries the value's sequence number,
as the browser measures it); a page open, from asking for the page to its `script_finished`.
Traffic stays on 127.0.0.1 and ends after `seconds`.
"""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np

PAGES = ["", "Reconstruct", "Latent_map", "Interpolate", "Traverse"]  # the browser load test's pages
SLIDER_KEY = "gen_sliders"
# ScriptFinishedStatus: 0 finished, 2 stopped early because a newer rerun came, 3 fragment finished
FINISHED_OK, SUPERSEDED = (0, 3), 2


class Session:
    """One app session over one websocket; a reader task takes in everything the server sends."""

    def __init__(self, ws, model: str):
        self.ws, self.query = ws, f"model={model}"
        self.pages: dict[str, str] = {}
        self.slider_id = self.fragment_id = None
        self.version = 0
        self.errors: list[str] = []
        self.superseded = 0
        self.finished: asyncio.Queue = asyncio.Queue()  # script_finished statuses, in order
        self.seq = self.answered = 0  # the slider's last value sent, and the last one whose picture came back
        self.sent_at: dict[int, float] = {}
        self.round_trips: list[float] = []
        self.live: dict | None = None  # the decoder spec the panel last carried (None: the server decodes)
        self.graph_bytes = 0  # ONNX graph bytes the server sent (base64), as a browser would load them
        self.held: set[str] = set()  # models this tab made a session of (it asked for their graphs once)
        self.panel_state: dict = {}  # the panel's state as the browser holds it (what each send carries in full)

    async def send(self, page: str = "", fragment: str = "", states=()) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        client = msg.rerun_script
        client.query_string = self.query
        client.page_script_hash = self.pages.get(page, "")
        client.page_name = page  # a tab's first run names its page by the URL's path, as the browser does
        client.fragment_id = fragment
        client.widget_states.widgets.extend(states)
        await self.ws.send(msg.SerializeToString())

    async def read(self) -> None:
        """Note pages, the slider, pictures coming back (by their seq), errors and finished runs."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        while True:
            message = ForwardMsg()
            message.ParseFromString(await self.ws.recv())
            kind = message.WhichOneof("type")
            if kind == "navigation":
                self.pages = {p.url_pathname: p.page_script_hash for p in message.navigation.app_pages}
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                what = element.WhichOneof("type")
                if what == "bidi_component" and element.bidi_component.id.endswith(SLIDER_KEY):
                    self.slider_id, self.fragment_id = element.bidi_component.id, message.delta.fragment_id
                    data = json.loads(element.bidi_component.json or "{}")
                    self.version = data.get("version", 0)  # values are only taken for the current version
                    self.live = data.get("live")
                    self.graph_bytes += len((self.live or {}).get("onnx", ""))
                    self._picture(data.get("seq", 0))
                elif what == "exception" or (what == "alert" and element.alert.format == 1):  # 1: an error box
                    self.errors.append(what)
            elif kind == "script_finished":
                if message.script_finished == SUPERSEDED:
                    self.superseded += 1
                elif message.script_finished not in FINISHED_OK:
                    self.errors.append(f"script_finished {message.script_finished}")
                self.finished.put_nowait(message.script_finished)

    def _picture(self, seq: int) -> None:
        """The picture for slider value `seq` arrived (what the component's JS does on new data)."""
        if seq > self.answered:
            self.answered = seq
            if seq in self.sent_at:
                self.round_trips.append((time.perf_counter() - self.sent_at[seq]) * 1000)
            self.sent_at = {s: t for s, t in self.sent_at.items() if s > seq}

    async def open(self, page: str, timeout: float = 60.0) -> float:
        """Ask for a page; milliseconds until its script run finished."""
        while not self.finished.empty():
            self.finished.get_nowait()
        start = time.perf_counter()
        await self.send(page)
        while await asyncio.wait_for(self.finished.get(), timeout) == 3:  # a late fragment run: not this one
            pass
        return (time.perf_counter() - start) * 1000

    async def set_panel(self, **values) -> None:
        """What the slider component's setStateValue does: the panel's whole state, one key changed."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        self.panel_state.update(values)
        await self.send(
            "Generate", self.fragment_id, [WidgetState(id=self.slider_id, json_value=json.dumps(self.panel_state))]
        )

    async def take_graph(self, ok: bool = True) -> None:
        """As the browser does with the panel's decoder: a browser that has never seen the graph asks for
        it (the panel then carries its bytes), then says it made a session of it (`ok`) or, as a browser
        without WebAssembly does, that it cannot (then the server decodes)."""
        if not self.live or self.live["model"] in self.held:
            return  # this tab made its session of the model already
        if not self.live.get("onnx"):
            while not self.finished.empty():
                self.finished.get_nowait()
            await self.set_panel(live={"model": self.live["model"], "ok": True, "need": True})
            await asyncio.wait_for(self.finished.get(), 60)
        if self.live and self.live.get("onnx"):
            while not self.finished.empty():
                self.finished.get_nowait()
            if ok:
                self.held.add(self.live["model"])
            report = (
                {"model": self.live["model"], "ok": True}
                if ok
                else {"model": self.live["model"], "ok": False, "reason": "a load test client"}
            )
            await self.set_panel(live=report)
            await asyncio.wait_for(self.finished.get(), 60)

    async def drag(self, dims: int, moves: int = 40, interval: float = 0.025) -> None:
        """Move a slider for moves x interval seconds, sending values as the slider component does.
        Decoding in the browser (the panel carried a decoder): only the released value. On the
        server: at most two unanswered, or one more after 250 ms without an answer. Then wait for the last."""
        values, last_sent = [0.0] * dims, 0.0
        for move in range(moves + 1):
            values[0] = -3 + 6 * move / moves
            now = time.perf_counter()
            released = move == moves
            if (released or not self.live) and (self.seq - self.answered < 2 or now - last_sent > 0.25 or released):
                self.seq += 1
                self.sent_at[self.seq], last_sent = now, now
                await self.set_panel(z={"values": values, "version": self.version, "seq": self.seq})
            await asyncio.sleep(interval)
        deadline = time.perf_counter() + 30
        while self.answered < self.seq and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        if self.answered < self.seq:
            self.errors.append("slider value not answered within 30 s")


def _browser_cookie(base: str) -> str:
    """The cookies a browser's first request gets (behind the classroom proxy: which process is its)."""
    import urllib.request

    with urllib.request.urlopen(f"{base}/", timeout=30) as response:
        return "; ".join(c.split(";")[0] for c in response.headers.get_all("Set-Cookie") or [])


async def _client(
    base: str, model: str, dims: int, until: float, rng, results: dict, live: bool = True, think: float = 0.0
) -> None:
    import websockets

    url = base.replace("http://", "ws://") + "/_stcore/stream"
    try:
        cookie = await asyncio.to_thread(_browser_cookie, base)
        async with websockets.connect(
            url,
            subprotocols=["streamlit"],
            max_size=None,
            open_timeout=30,
            additional_headers={"Cookie": cookie} if cookie else None,
        ) as ws:
            session = Session(ws, model)
            reader = asyncio.ensure_future(session.read())
            try:
                await session.open("")
                while time.perf_counter() < until:
                    results["page_open_starts"].append(time.perf_counter())
                    results["page_opens"].append(await session.open("Generate"))
                    if session.slider_id is None:
                        results["errors"].append("no slider on the Generate page")
                        break
                    await session.take_graph(ok=live)
                    await asyncio.sleep(think * rng.uniform(0.5, 1.5))  # a person looks before dragging...
                    await session.drag(dims)
                    await asyncio.sleep(think * rng.uniform(0.5, 1.5))  # ... and after
                    results["page_open_starts"].append(time.perf_counter())
                    results["page_opens"].append(await session.open(PAGES[int(rng.integers(len(PAGES)))]))
                    await asyncio.sleep(think * rng.uniform(0.5, 1.5))
            finally:
                reader.cancel()
                results["round_trips"] += session.round_trips
                results["errors"] += session.errors
                results["superseded"] += session.superseded
                results["graph_bytes"] += session.graph_bytes
    except Exception as exc:  # a dropped connection, a timeout or a protocol error counts, and is named
        results["errors"].append(type(exc).__name__)


def protocol_load_test(
    sessions: int = 20,
    seconds: float = 60.0,
    model: str = "digits-mlp",
    while_training: bool = False,
    live: bool = True,
    processes: int = 0,
    address: str | None = None,
    think: float = 0.0,
) -> dict:
    """`sessions` websocket sessions drag sliders and open pages for `seconds` against a fresh server
    (`processes` = 0) or a classroom of that many app processes behind nginx (classroom.py). `live`:
    the sessions decode in the browser, as a browser with WebAssembly does (each drag sends its
    released value); otherwise every value goes to the server. With `while_training`, another
    session (a browser tab, closed once it has started) first starts training the
    pytorch/examples MLP on Fashion-MNIST on the Train page. `address`: drive a server already running there. `think`: seconds a
    session pauses between its actions (0.5 to 1.5 times it, at random), as a person does; 0: none."""
    import tempfile
    from contextlib import contextmanager

    from common import rss_mb

    from vae_explorer import load_checkpoint
    from vae_explorer.app.server import app_environment, running_app

    @contextmanager
    def served(env):
        if address:
            yield address, []
        elif processes:
            from classroom import classroom

            with classroom(processes, env) as (base, servers, _):
                yield base, servers
        else:
            with running_app(env) as (base, server):
                yield base, [server]

    dims = load_checkpoint(model).model.latent_dim
    results: dict = {
        "round_trips": [],
        "page_opens": [],
        "page_open_starts": [],
        "errors": [],
        "superseded": 0,
        "graph_bytes": 0,
    }
    runs = tempfile.mkdtemp()
    with served(app_environment(runs)) as (base, servers):
        if while_training:
            from app_speed import start_training
            from common import CHROMIUM, CHROMIUM_ARGS
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                start_training(browser.new_page(), base)
                browser.close()

        async def warm_up() -> None:  # the first page of a fresh server imports torch and loads the model
            import websockets

            for url in [f"ws://127.0.0.1:{_port(server)}/_stcore/stream" for server in servers] or [
                base.replace("http://", "ws://") + "/_stcore/stream"
            ]:  # each process directly, or the one address
                async with websockets.connect(url, subprotocols=["streamlit"], max_size=None, open_timeout=30) as ws:
                    session = Session(ws, model)
                    reader = asyncio.ensure_future(session.read())
                    await session.open("Generate")
                    reader.cancel()

        async def run() -> None:
            await warm_up()
            results["started"] = time.perf_counter()
            until = time.perf_counter() + seconds
            await asyncio.gather(
                *[
                    _client(base, model, dims, until, np.random.default_rng(i), results, live, think)
                    for i in range(sessions)
                ]
            )

        start = time.perf_counter()
        asyncio.run(run())
        results["seconds"] = time.perf_counter() - start
        results["server_rss_mb"] = sum(rss_mb(server.pid) for server in servers) if servers else float("nan")
        results["training_throughout"] = _training_now() if while_training else None
        results["epochs_trained"] = _epochs_saved(runs) if while_training else None
    return results


def _port(server) -> int:
    """The port an app process was started on (start_app passes --server.port)."""
    argv = server.args
    return int(argv[argv.index("--server.port") + 1])


def _epochs_saved(runs: str) -> int:
    """Epochs the trainings in a runs folder have saved so far."""
    from pathlib import Path

    return sum(len(json.loads(history.read_text())) for history in Path(runs).glob("*/history.json"))


def _training_now() -> bool:
    """Whether a training worker process (vae_explorer.runs.worker) is running on this machine."""
    from pathlib import Path

    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"vae_explorer.runs.worker" in status.read_bytes():
                return True
        except OSError:
            continue
    return False


def main() -> int:
    import argparse

    from common import percentile

    parser = argparse.ArgumentParser(description="A load test speaking Streamlit's websocket protocol.")
    parser.add_argument("--clients", type=int, default=20, help="sessions at once (1 to 200)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--while-training", action="store_true", help="while another session trains on the Train page")
    parser.add_argument(
        "--server-decodes",
        action="store_true",
        help="sessions send every slider value, as a browser without WebAssembly does",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds each session pauses between its actions, as a person does (default 0: none)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="serve with this many app processes behind nginx (configs/serving/nginx-classroom.conf)",
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 200 or not 1 <= args.seconds <= 600:
        parser.error("--clients must be from 1 to 200 and --seconds from 1 to 600")
    r = protocol_load_test(
        args.clients,
        args.seconds,
        while_training=args.while_training,
        live=not args.server_decodes,
        processes=args.processes,
        think=args.think,
    )
    trips, opens = r["round_trips"], r["page_opens"]
    where = f"{args.processes} app processes behind nginx" if args.processes else "one app process"
    pause = f", pausing ~{args.think:g} s between actions" if args.think else ", no pauses between actions"
    print(
        f"Load: {args.clients} protocol-level sessions (no browser) for {r['seconds']:.0f} s on loopback, "
        f"digits-mlp, {where}{pause}, "
        + (
            "every slider value decoded on the server"
            if args.server_decodes
            else "pictures decoded in the browser (each drag sends its released value)"
        )
        + (", while another session trains:" if args.while_training else ":")
    )
    print(
        f"  slider updates: {len(trips):,}, round trip p50 {percentile(trips, 0.5):.0f} ms, "
        f"p95 {percentile(trips, 0.95):.0f} ms, "
        f"max {max(trips, default=float('nan')):.0f} ms"
    )
    print(f"  page opens: {len(opens):,}, p50 {percentile(opens, 0.5):.0f} ms, p95 {percentile(opens, 0.95):.0f} ms")
    later = [
        ms for at, ms in zip(r["page_open_starts"], opens) if at - r["started"] >= 10
    ]  # after everyone's first visits
    print(
        f"  page opens begun 10 s or more after the start (all sessions start at once): {len(later):,}, "
        f"p50 {percentile(later, 0.5):.0f} ms, p95 {percentile(later, 0.95):.0f} ms"
    )
    print(
        f"  errors: {len(r['errors'])} {sorted(set(r['errors']))}; reruns stopped early for a newer one: {r['superseded']}"
    )
    print(
        f"  server memory (resident, all processes): {r['server_rss_mb']:.0f} MB; decoder graphs sent: "
        f"{r['graph_bytes'] / 1e6:.1f} MB (base64)"
    )
    if args.while_training:
        print(
            f"  the other session was still training at the end: {'yes' if r['training_throughout'] else 'NO'}; "
            f"epochs it saved by then: {r['epochs_trained']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

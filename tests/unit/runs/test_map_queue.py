"""One session's background maps (vae_explorer/runs/map_queue.py): one at a time, and a request made
while one runs waits, replacing any that was waiting (no pile of t-SNE runs from a slider)."""

from __future__ import annotations

import threading

from vae_explorer.runs.map_queue import MapQueue


def blocking(log: list, name: str, gate: threading.Event):
    def compute(progress):
        log.append(f"start {name}")
        progress(1, 4)
        gate.wait(10)
        progress(4, 4)
        log.append(f"end {name}")

    return compute


def test_one_runs_the_newest_waits_and_older_waiting_ones_are_dropped():
    queue, log = MapQueue(), []
    gates = {name: threading.Event() for name in "abcd"}
    a = queue.request(("a",), blocking(log, "a", gates["a"]))
    b = queue.request(("b",), blocking(log, "b", gates["b"]))
    c = queue.request(("c",), blocking(log, "c", gates["c"]))  # replaces b, which never runs
    assert queue.request(("a",), blocking(log, "a again", gates["a"])) is a  # the same map asked again: the same task
    assert a.state == "running" and b.state == "replaced" and b.finished.is_set() and c.state == "waiting"
    assert queue.status(("c",)) is c and queue.status(("b",)) is None
    for name in "ac":
        gates[name].set()
    assert c.finished.wait(10)
    assert log == ["start a", "end a", "start c", "end c"]
    assert (a.state, c.state, c.done, c.total) == ("done", "done", 4, 4)
    assert queue.status(("a",)) is a  # finished tasks keep their status for the page


def test_a_failure_is_recorded_by_its_kind_and_the_queue_goes_on():
    queue, log = MapQueue(), []

    def broken(progress):
        raise ImportError("No module named 'openTSNE' (/srv/site-packages)")

    failed = queue.request(("x",), broken)
    assert failed.finished.wait(10)
    assert failed.state == "failed" and failed.error == "ImportError"  # the page words it; no server path kept
    gate = threading.Event()
    gate.set()
    after = queue.request(("y",), blocking(log, "y", gate))
    assert after.finished.wait(10) and after.state == "done"

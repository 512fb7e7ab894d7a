"""Maps computed in the background for one app session, one at a time.

A t-SNE of 70,000 codes takes about two minutes, so the Latent map page does not compute it in
its script (every widget change would start another): it asks its session's `MapQueue`, which
runs one computation at a time in a thread, and a request made meanwhile waits, replacing any
request that was already waiting (five presses of an arrow key on the perplexity slider compute
the running map and the last one, not five at once). The page polls `status` for the progress.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Compute = Callable[[Callable[[int, int], None]], None]  # compute(progress) computes and keeps the map


@dataclass
class MapTask:
    key: tuple
    compute: Compute
    done: int = 0
    total: int = 1
    state: str = "waiting"  # waiting | running | done | failed
    error: str = ""  # the exception's type: what failed is shown in the page's own words
    finished: threading.Event = field(default_factory=threading.Event)


class MapQueue:
    """One session's map computations: at most one running and one waiting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: MapTask | None = None
        self._waiting: MapTask | None = None
        self._ended: dict[tuple, MapTask] = {}  # the last few finished, for their status

    def request(self, key: tuple, compute: Compute) -> MapTask:
        """Ask for the map `key`; returns its task (the running or waiting one if already asked)."""
        with self._lock:
            for task in (self._running, self._waiting):
                if task is not None and task.key == key:
                    return task
            task = MapTask(key, compute)
            if self._running is None:
                self._start(task)
            else:
                if self._waiting is not None:  # replaced: nobody waits for it any more
                    self._waiting.state = "replaced"
                    self._waiting.finished.set()
                self._waiting = task
            return task

    def active(self) -> list[MapTask]:
        """The running task and the waiting one, if any."""
        with self._lock:
            return [task for task in (self._running, self._waiting) if task is not None]

    def status(self, key: tuple) -> MapTask | None:
        with self._lock:
            for task in (self._running, self._waiting):
                if task is not None and task.key == key:
                    return task
            return self._ended.get(key)

    def _start(self, task: MapTask) -> None:
        self._running = task
        task.state = "running"
        threading.Thread(target=self._work, args=(task,), name=f"map {task.key}", daemon=True).start()

    def _work(self, task: MapTask) -> None:
        def progress(done: int, total: int) -> None:
            task.done, task.total = done, max(total, 1)

        try:
            task.compute(progress)
            task.state = "done"
        except (
            Exception
        ) as error:  # shown to the one session that asked, in the page's words; the details go to the log
            logging.getLogger("vae_explorer.runs").exception("the map %s failed", task.key)
            task.state, task.error = "failed", type(error).__name__
        task.finished.set()
        with self._lock:
            self._ended[task.key] = task
            while len(self._ended) > 8:
                self._ended.pop(next(iter(self._ended)))
            self._running = None
            if self._waiting is not None:
                waiting, self._waiting = self._waiting, None
                self._start(waiting)

"""Training in the background, for the app: a job trains in a child process (runs/worker.py) and
publishes what a page draws (progress, history, a reconstruction strip, a latent scatter) as
snapshots. No streamlit here.

The page never waits on a job: it reads `job.snapshot()` on each rerun. The child builds its own
model, so nothing shared (a cached model another session explores) is ever touched, and being a
process of its own it takes the CPU at a lower priority without holding the server's interpreter
lock. At most `MAX_RUNNING` jobs train at once in one server; later ones wait for a slot, so a
classroom starting thirty trainings does not stall everyone's exploring on a 2-core machine.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..errors import ConfigError

MAX_RUNNING = 2
_SLOTS = threading.BoundedSemaphore(MAX_RUNNING)
log = logging.getLogger(__name__)
KEEP_FINISHED_S = 3600.0  # a finished job stays findable this long (a page reloaded after the end still shows it)
_REGISTRY: dict[
    str, Job
] = {}  # token -> job: a page reloaded (a new session) finds its training by the token in its URL
_REGISTRY_LOCK = threading.Lock()


@dataclass
class Snapshot:
    """What a page shows of a job at one moment (a copy: the job goes on changing)."""

    status: str  # waiting | loading | running | done | stopped | failed
    message: str = ""
    warning: str = ""  # something the user should know that did not stop the job (unreadable files left out)
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    strip_png: bytes | None = None  # test images on top, their reconstructions now below
    scatter: np.ndarray | None = None  # (M, 2) posterior means of test images, in their top-2 PCA plane (z for D = 2)
    scatter_labels: np.ndarray | None = None  # (M,)
    # one per epoch (0: before training): {"epoch", "scatter", "labels", "samples_png" (the same z decoded)}
    frames: list[dict] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)  # a beta sweep: one row per finished beta
    saved: str | None = None  # the checkpoint folder, once written
    elapsed: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "failed")

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


class Job:
    """One child process doing a piece of work, with a stop request and a snapshot under a lock."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state = Snapshot("waiting", "Waiting for a free training slot…")
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen | None = None

    def start(self) -> Job:
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the job to stop after the current step; what it learned so far is kept."""
        self._stop.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            try:
                process.stdin.write("stop\n")
                process.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def snapshot(self) -> Snapshot:
        with self._lock:
            state = replace(
                self._state,
                history=list(self._state.history),
                results=list(self._state.results),
                frames=list(self._state.frames),
            )
        state.elapsed = (self._ended or time.perf_counter()) - self._started
        return state

    def _update(self, **values) -> None:
        with self._lock:
            for key, value in values.items():
                setattr(self._state, key, value)

    def _run(self) -> None:
        while not _SLOTS.acquire(timeout=0.2):
            if self._stop.is_set():
                self._ended = time.perf_counter()
                self._update(status="stopped", message="Stopped before it started.")
                self._release()
                return
        # the slot is ours: what takes the next seconds is the worker's start (Python, torch, the data), not a queue
        self._update(message="Starting the training: loading PyTorch and the data…")
        try:
            self._work()
        except Exception:  # a bug here: keep the server alive, say so, log the traceback
            log.exception("training job failed")
            self._update(status="failed", message="Training failed unexpectedly; the server log has the details.")
        finally:
            self._ended = time.perf_counter()
            _SLOTS.release()
            self._release()

    def _release(self) -> None:
        """What the job held when it ends (a TrainingJob: its run name, if nothing was saved under it)."""

    def _work(self) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "vae_explorer.runs.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        with self._lock:
            self._process = process
        process.stdin.write(json.dumps(self.spec) + "\n")
        process.stdin.flush()
        if self._stop.is_set():  # asked to stop while it started
            self.stop()
        finished = False
        for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:  # not one of the worker's messages: something printed by a library
                log.warning("training process: %s", line.rstrip())
                continue
            finished = self._take(message) or finished
        process.wait()
        if not finished:
            self._update(
                status="failed",
                message=f"The training process ended unexpectedly (exit status {process.returncode}); "
                "the server log has the details.",
            )

    def _take(self, message: dict) -> bool:
        """Fold one message of the worker into the snapshot; True once the job has ended."""
        event = message.pop("event")
        if event in ("status", "progress"):
            self._update(**message)
        elif event == "epoch":
            with self._lock:
                self._state.history.append(message["record"])
        elif event == "preview":
            self._update(
                strip_png=base64.b64decode(message["strip_png"]),
                scatter=np.asarray(message["scatter"]),
                scatter_labels=np.asarray(message["labels"]),
                class_names=message["class_names"],
            )
            if message.get("epoch") is not None:
                with self._lock:
                    self._state.frames.append(
                        {
                            "epoch": message["epoch"],
                            "scatter": np.asarray(message["scatter"]),
                            "labels": np.asarray(message["labels"]),
                            "samples_png": base64.b64decode(message["samples_png"]),
                        }
                    )
        elif event == "sweep":
            with self._lock:
                self._state.results.append(message["result"])
        elif event == "done":
            self._update(status=message["status"], message=message["message"], saved=message["saved"])
            return True
        elif event == "failed":
            self._update(status="failed", message=message["message"])
            return True
        return False


class TrainingJob(Job):
    """Train one model from `config` into `out` (saved after every epoch, also when stopped, and up
    to the last good epoch at a NaN), or with `resume`, go on training the checkpoint at `out` to
    `epochs` epochs in all. With `export_onnx` the worker also writes the decoder's ONNX graph
    beside the checkpoint when training ends (the app's browser decoding needs it)."""

    def __init__(
        self,
        config: RunConfig | None,
        out: str | Path,
        resume: bool = False,
        epochs: int | None = None,
        export_onnx: bool = False,
    ):
        self.config, self.out = copy.deepcopy(config), Path(out)
        super().__init__(
            {
                "kind": "train",
                "config": None if config is None else config.to_dict(),
                "out": str(self.out),
                "resume": resume,
                "epochs": epochs,
                "export_onnx": export_onnx,
            }
        )

    def _release(self) -> None:
        release_name(self.out)


class SweepJob(Job):
    """Train one fresh model per beta (same seed, same epochs) and record the rate (KL) and the
    distortion (reconstruction NLL) of each on the test set, with its active units."""

    def __init__(self, config: RunConfig, betas: list[float]):
        if not betas:
            raise ConfigError("the beta sweep needs at least one beta; pick one or more values.")
        self.config, self.betas = copy.deepcopy(config), sorted(set(float(b) for b in betas))
        super().__init__({"kind": "sweep", "config": config.to_dict(), "betas": self.betas})


def register(job: Job) -> str:
    """A new secret token for `job`, by which `find` gives it back: the page keeps it in its URL, so a
    reload (a new session of the same browser tab) watches and can stop the same training. Only who
    holds the URL has it; finished jobs are forgotten after KEEP_FINISHED_S."""
    import secrets

    token = secrets.token_urlsafe(12)
    with _REGISTRY_LOCK:
        now = time.perf_counter()
        for old in [t for t, j in _REGISTRY.items() if j._ended is not None and now - j._ended > KEEP_FINISHED_S]:
            del _REGISTRY[old]
        _REGISTRY[token] = job
    return token


def find(token: object) -> Job | None:
    """The job registered under `token` in this server process, if any."""
    if not isinstance(token, str) or len(token) > 64:
        return None
    with _REGISTRY_LOCK:
        return _REGISTRY.get(token)


def training_now() -> set[Path]:
    """The checkpoint folders jobs of this server process are training right now."""
    with _REGISTRY_LOCK:
        jobs = list(_REGISTRY.values())
    return {j.out.resolve() for j in jobs if isinstance(j, TrainingJob) and not j.snapshot().finished}


RESERVED = ".reserved"  # in a run's folder until its first epoch is saved there (the save replaces the folder)


def run_folder(name: str, runs_dir: str | Path, taken: set[str]) -> Path:
    """The folder for a new checkpoint called `name` (sanitised) in `runs_dir`, reserved for it now:
    made empty but for a note of who reserved it, so a second start of the same name (another
    session's, a moment later) is refused, and a runs folder that cannot be written is said before
    any training. TrainingJob releases it if nothing gets saved there."""
    from ..checkpoints import sanitize_name
    from ..checkpoints.folder import training_status

    if not name.strip():
        raise ConfigError("the checkpoint name is empty; type a name such as digits-beta4.")
    clean = sanitize_name(name.strip())
    path = Path(runs_dir) / clean
    if clean in taken:
        raise ConfigError(f"a checkpoint named {clean} already exists; choose another name.")
    try:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
        if _abandoned(path):
            release_name(path)
        path.mkdir()  # atomic: of two sessions starting the same name, one gets it
        (path / RESERVED).write_text(json.dumps(training_status("reserved", 0, 0)))
    except FileExistsError:
        raise ConfigError(f"a checkpoint named {clean} already exists; choose another name.") from None
    except OSError as exc:
        raise ConfigError(
            f"{runs_dir} cannot be written ({exc.strerror or 'a file system error'}); "
            "make it writable or free some space, then start again."
        ) from None
    return path


def _abandoned(path: Path) -> bool:
    """A reservation whose server is gone (killed before the first epoch was saved)."""
    from ..checkpoints.folder import _alive

    try:
        return (path / RESERVED).is_file() and not _alive(json.loads((path / RESERVED).read_text()))
    except (OSError, ValueError):
        return False


def release_name(path: Path) -> None:
    """Give back a reserved run name under which nothing was saved."""
    import shutil

    if (path / RESERVED).is_file() and not (path / "config.json").exists():
        shutil.rmtree(path, ignore_errors=True)

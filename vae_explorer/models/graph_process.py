"""Foreign ONNX graphs run in a child process of their own, under a memory and a time limit.

A graph from someone else's file is untrusted code: it can loop for ever, or compute a shape at
run time and allocate gigabytes. So the server never runs one in its own process. `GraphProcess`
starts `python -m vae_explorer.models.graph_process`, which caps its own address space
(`resource.setrlimit`) before it imports onnxruntime, opens the graphs from their bytes in an empty
working folder (a relative file name inside a graph resolves there, to nothing), and answers one
request at a time. The parent waits at most `RUN_TIMEOUT_S` for each answer, then kills the child;
the next request starts a fresh one. What crosses the pipe is a JSON header and raw arrays
(float32 outputs; float32 or int64 inputs, such as a class label) whose sizes the parent checks
before reading them: nothing is unpickled.

    process = GraphProcess({"encoder": encoder_bytes, "decoder": decoder_bytes})
    (image,) = process.run("decoder", {"z": z}, ["logits"], [limit])   # z: (B, D) float32 numpy
"""

from __future__ import annotations

import json
import os
import re
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref

import numpy as np

MEMORY_LIMIT_BYTES = 2 * 2**30  # the child's address space: onnxruntime and the graphs' tensors must fit
RUN_TIMEOUT_S = 10.0  # the longest one request (opening the graphs, or one chunk of a batch) may take
CHILD = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
_HEADER = struct.Struct("<I")  # the length of the JSON header that starts every message
MAX_HEADER_BYTES = 1 << 20
DTYPES = {"float32": "<f4", "int64": "<i8", "int32": "<i4"}  # what an input may be sent as


class GraphProcessError(RuntimeError):
    """The child refused or failed a request; the message is a phrase about the graph ("onnxruntime
    cannot run the decoder (...)"), and `role` names the graph at fault."""

    def __init__(self, message: str, role: str):
        super().__init__(message)
        self.role = role


def _write(stream, header: dict, arrays: tuple[np.ndarray, ...] = (), blobs: tuple[bytes, ...] = ()) -> None:
    body = json.dumps(header).encode("utf-8")
    stream.write(_HEADER.pack(len(body)) + body)
    for array in arrays:  # each as the little-endian type of its own kind (float32 unless an integer input)
        stream.write(np.ascontiguousarray(array, dtype=DTYPES.get(str(array.dtype), "<f4")).tobytes())
    for blob in blobs:
        stream.write(blob)
    stream.flush()


# --- the parent's side ---------------------------------------------------------------------------


def _stop(process: subprocess.Popen, folder: tempfile.TemporaryDirectory) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        try:
            stream.close()
        except OSError:
            pass
    folder.cleanup()


class GraphProcess:
    """A child process that holds onnxruntime sessions of `graphs` (role -> ONNX bytes), started
    when first needed and again after a request it failed to answer in time."""

    def __init__(
        self, graphs: dict[str, bytes], memory_limit: int = MEMORY_LIMIT_BYTES, timeout: float = RUN_TIMEOUT_S
    ):
        self.graphs, self.memory_limit, self.timeout = graphs, memory_limit, timeout
        self._lock = threading.Lock()  # one request at a time: sessions of a cached model are shared by every page
        self._process: subprocess.Popen | None = None
        self._finalizer = None

    def _start(self) -> subprocess.Popen:
        self.close()  # a child that died or was stopped, and its folder
        folder = tempfile.TemporaryDirectory(prefix="vae-explorer-graph-")  # its working folder: empty
        # this file run as a script (not the package, which would import torch before the limit is
        # set); from the empty folder, so no file of this package's folder shadows a library
        process = subprocess.Popen(
            [sys.executable, "-c", CHILD, __file__, str(self.memory_limit)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=folder.name,
        )
        self._finalizer = weakref.finalize(self, _stop, process, folder)
        self._process = process
        roles = list(self.graphs)
        try:
            _write(
                process.stdin,
                {"op": "open", "roles": roles, "sizes": [len(self.graphs[r]) for r in roles]},
                blobs=tuple(self.graphs[r] for r in roles),
            )
        except OSError:
            pass  # it died at once; _answer says so
        try:
            self._answer("to open", roles[0] if len(roles) == 1 else "pair")
        except GraphProcessError:  # a child that could not open the graphs is no use: the next request starts afresh
            self.close()
            raise
        return process

    def open(self) -> None:
        """Start the child and open the graphs now (GraphProcessError if onnxruntime cannot)."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._process = None

    def _read_exactly(self, size: int, deadline: float, what: str, role: str) -> bytes:
        stream, chunks, left = self._process.stdout, [], size
        fd = stream.fileno()
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                self.close()
                raise GraphProcessError(
                    f"the {role} took more than {self.timeout:.0f} s {what} and was stopped (a loop without "
                    "end, or far more work than a VAE's)",
                    role,
                )
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:  # the child died: out of its memory, or crashed
                code = self._process.poll()
                self.close()
                raise GraphProcessError(
                    f"the {role} was stopped {what}: it needed more than the {self.memory_limit / 2**30:.0f} GB "
                    f"of memory a graph may use here, or made onnxruntime fail (exit status {code})",
                    role,
                )
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _answer(self, what: str, role: str) -> dict:
        deadline = time.monotonic() + self.timeout
        (length,) = _HEADER.unpack(self._read_exactly(_HEADER.size, deadline, what, role))
        if length > MAX_HEADER_BYTES:
            self.close()
            raise GraphProcessError(f"the {role}'s process answered out of turn", role)
        header = json.loads(self._read_exactly(length, deadline, what, role))
        if "error" in header:
            raise GraphProcessError(header["error"], header.get("role", role))
        header["_deadline"] = deadline
        return header

    def run(
        self, role: str, feeds: dict[str, np.ndarray], outputs: list[str], max_values: list[int]
    ) -> list[np.ndarray]:
        """The `outputs` of graph `role` for its inputs `feeds` (name -> float32, int64 or int32
        array, the first one the batch); `max_values` bounds each output's number of values (what
        the contract allows for this batch), checked before it is read."""
        feeds = {
            name: np.ascontiguousarray(a, dtype=a.dtype if str(a.dtype) in DTYPES else np.float32)
            for name, a in feeds.items()
        }
        x = next(iter(feeds.values()))
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()
            try:
                _write(
                    self._process.stdin,
                    {
                        "op": "run",
                        "role": role,
                        "outputs": outputs,
                        "inputs": [[name, list(a.shape), str(a.dtype)] for name, a in feeds.items()],
                    },
                    arrays=tuple(feeds.values()),
                )
            except OSError:
                pass  # the child is gone; the answer says how
            header = self._answer("on one batch", role)
            shapes = header["shapes"]
            if len(shapes) != len(outputs) or any(
                int(np.prod(s, dtype=np.int64)) > m for s, m in zip(shapes, max_values)
            ):
                self.close()
                raise GraphProcessError(
                    f"the {role} gave outputs of shapes {shapes}, larger than the contract allows for {len(x)} images",
                    role,
                )
            arrays = []
            for shape in shapes:
                count = int(np.prod(shape, dtype=np.int64))
                data = self._read_exactly(4 * count, header["_deadline"], "on one batch", role)
                arrays.append(np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32))
            return arrays


# --- the child's side ----------------------------------------------------------------------------


def _read_child(stream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def serve() -> None:
    """The child's loop: cap the address space, then answer requests on stdin until it closes."""
    import resource

    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import onnxruntime as ort

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by a library may land in the answers
    sessions = {}
    while True:
        try:
            (length,) = _HEADER.unpack(_read_child(stdin, _HEADER.size))
            request = json.loads(_read_child(stdin, length))
        except EOFError:
            return
        role = request.get("role", "pair")
        try:
            if request["op"] == "open":
                blobs = [_read_child(stdin, size) for size in request["sizes"]]
                for name, blob in zip(request["roles"], blobs):
                    role = name
                    options = ort.SessionOptions()
                    options.log_severity_level = 3
                    sessions[name] = ort.InferenceSession(
                        blob, sess_options=options, providers=["CPUExecutionProvider"]
                    )
                _write(stdout, {"ok": True})
            else:
                feeds = {}
                for name, shape, dtype in request["inputs"]:
                    kind = np.dtype(DTYPES[dtype])
                    data = _read_child(stdin, kind.itemsize * int(np.prod(shape, dtype=np.int64)))
                    feeds[name] = np.frombuffer(data, dtype=kind).reshape(shape).astype(dtype)
                results = sessions[role].run(request["outputs"], feeds)
                results = [np.asarray(r, dtype=np.float32) for r in results]
                _write(stdout, {"shapes": [list(r.shape) for r in results]}, arrays=tuple(results))
        except EOFError:
            return
        except Exception as exc:  # onnxruntime's own Fail / InvalidGraph / RuntimeException types, MemoryError
            _write(stdout, {"error": _failure(role, str(exc), limit), "role": role})


def _failure(role: str, text: str, limit: int) -> str:
    """onnxruntime's error as a phrase about the graph, without its source paths or C++ names."""
    if "allocate memory" in text or "bad_alloc" in text or not text:  # MemoryError has no text
        return f"the {role} asked for more memory than the {limit / 2**30:.0f} GB a graph may use here"
    node = re.search(r"while running (\w+) node", text)
    if node:
        return f"onnxruntime cannot run the {role} (it failed in a {node.group(1)} node)"
    reason = re.sub(r"\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text.splitlines()[0])
    reason = re.sub(r"\S*[/\\]\S*|\S+::\S+", "", reason)  # no file paths, no C++ names
    return f"onnxruntime cannot run the {role} ({' '.join(reason.split())[:160] or 'it refused the graph'})"


if __name__ == "__main__":
    serve()

"""Images that need not fit in memory: uint8 (N, C, H, W) kept in a file, read per batch.

A dataset's `train_x` / `test_x` is either a float32 tensor in [0, 1] (small sets: fastest) or
an `ImageStore`, which indexes like one: `store[i:j]`, `store[index_tensor]` and `len(store)`
give float32 tensors in [0, 1], read from the file at that moment. Rows are read with `pread`
rather than through a memory map, so what a process holds is the batch it asked for (a mapped
file would count every page it touched towards the process's memory), and the operating
system's page cache keeps a file that fits in RAM fast from the second epoch on.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch


class ImageStore:
    """Rows `rows` of the uint8 images (N, C, H, W) written one after another, row-major, in `path`."""

    def __init__(self, path: str | Path, shape: tuple[int, int, int, int], rows: np.ndarray | None = None):
        self.path = Path(path)
        self._total, self._item = int(shape[0]), tuple(int(v) for v in shape[1:])
        self._row_bytes = int(np.prod(self._item))
        if self.path.stat().st_size < self._total * self._row_bytes:
            raise OSError(f"{self.path} is shorter than {self._total} images; delete it to rebuild the cache")
        self.rows = np.arange(self._total) if rows is None else np.asarray(rows, dtype=np.int64)

    # --- what a tensor of images answers -------------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self._item))

    dtype = torch.float32

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> torch.Tensor:
        """Images as float32 in [0, 1]: a slice, an integer, or an index array/tensor."""
        return self.uint8(key).float().div_(255.0)

    def uint8(self, key) -> torch.Tensor:
        """The same images as stored (uint8), e.g. to move them to a device before converting."""
        if isinstance(key, int):
            return self.uint8(slice(key, key + 1 if key != -1 else None))[0]
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        return torch.from_numpy(self._read(self.rows[key]))

    def select(self, index) -> ImageStore:
        """A store of some of these rows (a train/test split, the first N), without reading them."""
        if isinstance(index, torch.Tensor):
            index = index.numpy()
        return ImageStore(self.path, (self._total, *self._item), self.rows[index])

    def to(self, device) -> torch.Tensor:
        """Every image as one float32 tensor on `device` (only for sets that fit)."""
        return self[:].to(device)

    # --- reading -------------------------------------------------------------------------------
    def _read(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), C, H, W) uint8, each contiguous run of rows in one read."""
        rows = np.atleast_1d(rows)
        out = np.empty((len(rows), *self._item), dtype=np.uint8)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        flat = out.reshape(len(rows), -1)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for run in np.split(np.arange(len(rows)), breaks):
                first, count = int(ordered[run[0]]), len(run)
                want = count * self._row_bytes
                data = os.pread(fd, want, first * self._row_bytes)
                if len(data) != want:
                    raise OSError(f"{self.path} is shorter than its header says; delete it to rebuild the cache")
                flat[order[run]] = np.frombuffer(data, dtype=np.uint8).reshape(count, -1)
        finally:
            os.close(fd)
        return out

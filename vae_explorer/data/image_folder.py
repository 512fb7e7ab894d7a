"""folder:PATH: any folder of images, one sub-folder per class or flat (one class).

The images are decoded once into a cache of uint8 pixels (the cache folder's `folders/`, keyed by
the folder's path, the files' names, sizes and modification times, and the image size and
channels), so a second run reads pixels instead of decoding files, and a changed folder is read
again. A set whose float32 pixels fit in `IN_MEMORY_BYTES` is then held in memory (fastest);
a larger one stays on disk as an `ImageStore`, read batch by batch. Every image goes through the
same conversion as an upload (`uploads.standard_image`: transparency onto white, 16-bit and
float images scaled to 8 bits), then is fitted to image_size x image_size. Unreadable files are
skipped and named in `Dataset.skipped`; a folder with no readable image is an error.

The cache records a digest (BLAKE2b) of its pixels and labels, checked before each use: a cache
that was cut short, overwritten (even at the same length) or damaged is read again from the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DatasetError
from ..paths import cache_root
from .registry import PREFIXED, Dataset, DatasetSpec, split
from .store import ImageStore

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IN_MEMORY_BYTES = 1 << 30  # float32 pixels up to 1 GiB are held in memory; larger sets are read per batch
CACHE_FORMAT = 1  # bump when the conversion changes: older caches are then rebuilt


def _folder_path(config: DataConfig) -> Path:
    return Path(config.dataset[len("folder:") :]).expanduser()


def _list_images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def _read_image(path: Path, size: int, mode: str) -> np.ndarray:
    """One file as uint8 (size, size) or (size, size, 3), converted as an upload is."""
    from PIL import Image, ImageOps

    from .uploads import standard_image

    with Image.open(path) as image:
        image.seek(0)
        image.load()
        image = standard_image(ImageOps.exif_transpose(image)).convert(mode)
        return np.asarray(ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def _cache_digest(target: Path) -> str:
    digest = hashlib.blake2b(digest_size=20)
    for name in ("images.u8", "labels.npy"):
        with open(target / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _cache_intact(target: Path) -> bool:
    """Whether the cache at `target` is whole and as it was written (sizes, then the digest)."""
    try:
        meta = json.loads((target / "meta.json").read_text())
        if (target / "images.u8").stat().st_size != meta["count"] * int(np.prod(meta["shape"])):
            return False
        return _cache_digest(target) == meta["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _build_cache(
    files: list[tuple[int, Path]],
    root: Path,
    size: int,
    channels: int,
    target: Path,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Decode every file into target/images.u8 (rows of C*H*W bytes), labels.npy and meta.json."""
    from PIL import Image, UnidentifiedImageError

    mode = "L" if channels == 1 else "RGB"
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    labels, skipped = [], []
    try:
        with open(partial / "images.u8", "wb") as out:
            for i, (label, path) in enumerate(files):
                try:
                    pixels = _read_image(path, size, mode)
                except (
                    OSError,
                    UnidentifiedImageError,
                    ValueError,
                    SyntaxError,
                    EOFError,
                    Image.DecompressionBombError,
                ):
                    skipped.append(path.relative_to(root).as_posix())
                    continue
                out.write((pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)).tobytes())
                labels.append(label)
                if progress is not None and (i + 1) % 256 == 0:
                    progress(i + 1, len(files))
        if progress is not None:
            progress(len(files), len(files))
        np.save(partial / "labels.npy", np.asarray(labels, dtype=np.int64))
        (partial / "meta.json").write_text(
            json.dumps(
                {
                    "format": CACHE_FORMAT,
                    "count": len(labels),
                    "shape": [channels, size, size],
                    "skipped": skipped,
                    "digest": _cache_digest(partial),
                }
            )
        )
        try:
            os.replace(partial, target)
        except OSError:  # another process built it meanwhile: theirs is the same
            shutil.rmtree(partial, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def load_folder(config: DataConfig, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """Images from class sub-folders (label = sub-folder) or from one flat folder (one class);
    `progress(done, total)` is told while the files are decoded into the cache (the first time)."""
    root = _folder_path(config)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist; pass an existing folder as folder:PATH.")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and _list_images(d))
    groups = (
        [(d.name, _list_images(d)) for d in class_dirs] if class_dirs else [(root.name or "images", _list_images(root))]
    )
    files = [(label, path) for label, (_, paths) in enumerate(groups) for path in paths]
    if not files:
        raise DatasetError(
            f"image folder {root} holds no image files; add PNG or JPEG files (optionally in one sub-folder per class)."
        )
    size, channels = config.image_size or 32, config.channels
    listing = hashlib.sha1(f"{CACHE_FORMAT}|{root.resolve()}|{size}|{channels}".encode())
    for _, path in files:
        stat = path.stat()
        listing.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    target = cache_root() / "folders" / listing.hexdigest()[:20]
    if not _cache_intact(target):
        shutil.rmtree(target, ignore_errors=True)  # cut short, overwritten or damaged: read the folder again
        try:
            _build_cache(files, root, size, channels, target, progress)
        except OSError as error:
            raise DatasetError(
                f"the image cache for {root} could not be written ({error.strerror or error}); "
                "free disk space or set VAE_EXPLORER_CACHE to a writable folder."
            ) from None
    meta = json.loads((target / "meta.json").read_text())
    if meta["count"] < 2:
        bad = meta["skipped"]
        raise DatasetError(
            f"image folder {root} holds fewer than 2 readable images ({len(bad)} could not be read, e.g. "
            f"{bad[0] if bad else 'none'}); add PNG or JPEG files (optionally in one sub-folder per class)."
        )
    store = ImageStore(target / "images.u8", (meta["count"], *meta["shape"]))
    x = store[:] if meta["count"] * int(np.prod(meta["shape"])) * 4 <= IN_MEMORY_BYTES else store
    y = torch.from_numpy(np.load(target / "labels.npy"))
    data = split(f"folder:{root}", x, y, [name for name, _ in groups], config)
    data.skipped = list(meta["skipped"])
    return data


def skipped_message(data: Dataset) -> str | None:
    """The one line that names a folder's unreadable files (None when every file was read)."""
    if not data.skipped:
        return None
    names = ", ".join(data.skipped[:5]) + (f" and {len(data.skipped) - 5:,} more" if len(data.skipped) > 5 else "")
    n = len(data.skipped)
    them = "them" if n != 1 else "it"
    return (
        f"skipped {n:,} unreadable file{'s' if n != 1 else ''} in {data.name[len('folder:') :]} ({names}): "
        f"{'they are' if n != 1 else 'it is'} left out of the set; fix or delete {them}."
    )


PREFIXED["folder:"] = DatasetSpec(
    "folder:PATH",
    "any folder of images (one sub-folder per class, or flat), resized to image_size",
    "pass an existing folder of images as folder:PATH.",
    load_folder,
    lambda config: str(_folder_path(config)) if _folder_path(config).is_dir() else None,
    reports_progress=True,
)

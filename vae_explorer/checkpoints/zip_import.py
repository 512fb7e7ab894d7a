"""Import a checkpoint a person uploads as a .zip of its folder, refusing anything unsafe.

Only the files a model is explored from are taken (optionally inside one top-level folder): the four
of a checkpoint trained here, or those of an imported ONNX pair (checkpoints/onnx_import.py);
the optimizer state and training.json of a checkpoint are left out (an upload is explored, not
trained on), and anything else (a pickle, a path with `..` or an absolute path, a link, an oversized or over-compressed
member) refuses the whole upload. The files are written into a hidden staging folder inside the
target folder, loaded and checked like any checkpoint, and only then renamed into place, so a
refused upload leaves nothing behind and nothing is ever written outside the target folder.
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import CheckpointError
from .folder import (
    CONFIG_FILE,
    EPOCHS_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    OPTIMIZER_FILE,
    TRAINING_FILE,
    WEIGHTS_FILE,
    load_checkpoint,
)
from .onnx_export import DECODER_FILE, ENCODER_FILE
from .onnx_import import DECODER_GRAPH, ENCODER_GRAPH, IMPORT_FILE
from .records import MAX_JSON_BYTES

PAIR = (ENCODER_GRAPH, DECODER_GRAPH, IMPORT_FILE)
ALLOWED = {CONFIG_FILE, WEIGHTS_FILE, HISTORY_FILE, METRICS_FILE, EPOCHS_FILE, *PAIR}
# a checkpoint's files for resuming training (an upload is explored, not resumed) and its ONNX
# decoder and encoder (made again from the weights on first use, rather than taking a graph from the upload)
LEFT_OUT = {OPTIMIZER_FILE, TRAINING_FILE, DECODER_FILE, ENCODER_FILE}
MAX_MEMBER_BYTES = {
    WEIGHTS_FILE: 200 * 2**20,
    ENCODER_GRAPH: 200 * 2**20,
    DECODER_GRAPH: 200 * 2**20,
    EPOCHS_FILE: 64 * 2**20,
    **{name: MAX_JSON_BYTES[name] for name in (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, IMPORT_FILE)},
}
MAX_RATIO = 200  # uncompressed / compressed size; above it a member is treated as a zip bomb


def sanitize_name(name: str) -> str:
    """A safe folder name: letters, digits, '-', '_' and '.', no leading dot, at most 64 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-_")[:64]
    return cleaned or "uploaded-model"


def _members(archive: zipfile.ZipFile, zip_name: str) -> dict[str, zipfile.ZipInfo]:
    found: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if info.filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", info.filename) or ".." in path.parts:
            raise CheckpointError(
                f"{zip_name} holds an unsafe path {info.filename!r}; zip only the checkpoint folder's files."
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise CheckpointError(f"{zip_name} holds a symbolic link {info.filename!r}; zip the real files instead.")
        if info.is_dir() or path.name.startswith(".") or "__MACOSX" in path.parts or path.name in LEFT_OUT:
            continue
        if len(path.parts) > 2:
            raise CheckpointError(
                f"{zip_name} holds {info.filename!r} nested too deep; zip the checkpoint folder itself."
            )
        if path.name not in ALLOWED:
            raise CheckpointError(
                f"{zip_name} holds {info.filename!r}, which is not a checkpoint file; a checkpoint zip holds only "
                f"{', '.join(sorted(ALLOWED - set(PAIR) - {EPOCHS_FILE}))} (and {EPOCHS_FILE}), "
                f"or an imported pair's {', '.join(PAIR)} (nothing pickled)."
            )
        if path.name in found:
            raise CheckpointError(f"{zip_name} holds {path.name} twice; zip a single checkpoint folder.")
        if info.flag_bits & 0x1:
            raise CheckpointError(
                f"{zip_name} holds {path.name} encrypted; zip the checkpoint folder without a password."
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(
                f"{zip_name} holds {path.name} compressed in a way this app does not unpack; zip the "
                "checkpoint folder again with the usual compression (deflate)."
            )
        limit = MAX_MEMBER_BYTES[path.name]
        if info.file_size > limit:
            unit, scale = ("MB", 2**20) if limit >= 2**20 else ("KB", 2**10)
            size = math.ceil(info.file_size / scale * 10) / 10  # rounded up, so it never reads as equal to the limit
            raise CheckpointError(
                f"{zip_name}: {path.name} is {size:.1f} {unit}, over the {limit // scale} {unit} limit for "
                "uploads; copy a checkpoint that large into the server's runs folder instead."
            )
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 2**20:
            raise CheckpointError(
                f"{zip_name}: {path.name} expands {info.file_size // info.compress_size}-fold, like a zip bomb; refused."
            )
        found[path.name] = info
    if CONFIG_FILE in found and WEIGHTS_FILE not in found and any(name in found for name in PAIR):  # an imported pair
        missing = [name for name in PAIR if name not in found]
        if missing:
            raise CheckpointError(
                f"{zip_name} has no {missing[0]}; zip the whole folder `vae-explorer import-onnx` wrote."
            )
        return found
    for required in (CONFIG_FILE, WEIGHTS_FILE):
        if required not in found:
            raise CheckpointError(
                f"{zip_name} has no {required}; zip a checkpoint folder holding config.json and model.safetensors."
            )
    if any(name in found for name in PAIR):
        raise CheckpointError(
            f"{zip_name} mixes a checkpoint's weights with an imported ONNX pair; zip one checkpoint folder."
        )
    return found


def import_checkpoint_zip(data: bytes, zip_name: str, target_dir: str | Path, name: str | None = None) -> Path:
    """Check and unpack an uploaded checkpoint zip into `target_dir/NAME`; returns that folder."""
    target_dir = Path(target_dir)
    folder = sanitize_name(name or Path(zip_name).stem)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise CheckpointError(f"{zip_name} is not a zip file; zip the checkpoint folder and upload the .zip.") from None
    with archive:
        members = _members(archive, zip_name)
        target_dir.mkdir(parents=True, exist_ok=True)
        destination = target_dir / folder
        if destination.exists():
            raise CheckpointError(f"a model named {folder!r} already exists; rename the zip file and upload it again.")
        staging = target_dir / f".{folder}.uploading"
        shutil.rmtree(staging, ignore_errors=True)  # left by an import that was killed
        staging.mkdir()
        try:
            for filename, info in members.items():
                # zipfile stops at the size the header gives and checks the CRC, so a member that holds
                # more than its header says (past the size limit above) fails here as a BadZipFile.
                with archive.open(info) as source, open(staging / filename, "wb") as sink:
                    shutil.copyfileobj(source, sink)
            try:
                load_checkpoint(staging)  # the same checks as any checkpoint: format, shapes, NaN
            except CheckpointError as exc:  # said of the upload's files, not of the server's staging folder
                message = str(exc).replace(f"{staging}{os.sep}", "")  # its messages name the files they read
                raise CheckpointError(
                    f"{zip_name}: "
                    + message.replace("restore it from a copy or train again", "zip the checkpoint folder again")
                ) from None
            staging.rename(destination)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError, zlib.error):
            raise CheckpointError(f"{zip_name} could not be unpacked (it is damaged); zip the folder again.") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already once renamed into place
    return destination

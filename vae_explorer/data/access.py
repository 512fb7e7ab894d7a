"""Which of the server's folders a person using the app may make it read.

Served to a class, the app takes configs from people who must not reach the server's files: a
dataset `folder:PATH` or a `data_dir` in a form or an uploaded checkpoint would otherwise make the
pages read, cache and show any folder, and an error saying "does not exist" would tell which paths
do. So:

- The Train form reads image folders only under the data root that whoever serves the app chose
  (`vae-explorer app --data-root DIR`, kept in $VAE_EXPLORER_DATA_ROOT); `folder:NAME` means a
  folder in it. Without a data root, no folder is read, and neither is a `data_dir`.
- An uploaded checkpoint reads no folder at all: its `data_dir` is dropped, and a folder dataset
  means no test images here.

The refusals never depend on what exists on the server, so they reveal nothing about it.
The command line and a clone's own runs are the server owner's, and are not limited.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..config import DataConfig
from ..errors import ConfigError

FOLDER_PREFIX = "folder:"
DATA_ROOT_VARIABLE = "VAE_EXPLORER_DATA_ROOT"


def data_root() -> Path | None:
    """The folder under which the app may read image folders, or None when it may read none."""
    value = os.environ.get(DATA_ROOT_VARIABLE)
    return Path(value).expanduser().resolve() if value else None


def _inside(root: Path, given: str) -> Path | None:
    """`given` (relative to `root`, or absolute) resolved, if it lies inside `root`; else None."""
    path = (root / given).resolve()  # links followed: one inside that points outside is outside
    return path if path == root or root in path.parents else None


def check_form_data(config: DataConfig, root: Path | None, source: str = "Train form") -> DataConfig:
    """The data config with its folder resolved inside `root`; ConfigError when it names a folder
    outside it (or any folder, without a root)."""
    changes = {}
    if config.dataset.startswith(FOLDER_PREFIX):
        given = config.dataset[len(FOLDER_PREFIX) :]
        if root is None:
            raise ConfigError(
                f"{source}: this server offers no image folders to train on (whoever serves the app can offer "
                "some with `vae-explorer app --data-root DIR`); pick one of the datasets listed."
            )
        inside = _inside(root, given)
        if inside is None:
            raise ConfigError(
                f"{source}: data.dataset must be folder:NAME, a folder inside the data folder this server "
                "offers; write the folder's name within it."
            )
        changes["dataset"] = FOLDER_PREFIX + str(inside)
    if config.data_dir:
        inside = _inside(root, config.data_dir) if root is not None else None
        if inside is None:
            raise ConfigError(
                f"{source}: data.data_dir can only name a folder inside the data folder this server offers; "
                "leave it empty to use the usual places."
            )
        changes["data_dir"] = str(inside)
    return dataclasses.replace(config, **changes)


def uploaded_data(config: DataConfig) -> DataConfig | None:
    """What an uploaded checkpoint's data config may read here: its registry dataset from the
    server's usual places (its data_dir dropped), or None for a folder dataset."""
    if config.dataset.startswith(FOLDER_PREFIX):
        return None
    return dataclasses.replace(config, data_dir=None)

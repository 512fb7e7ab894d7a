"""The folder where vae_explorer keeps what it can make again: dataset downloads, uncompressed
copies of IDX files, trained feature classifiers and t-SNE maps.

`$VAE_EXPLORER_CACHE` when set, else `vae_explorer` under `$XDG_CACHE_HOME` or `~/.cache`.
(Imports no torch, so the light modules can use it.)
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    if os.environ.get("VAE_EXPLORER_CACHE"):
        return Path(os.environ["VAE_EXPLORER_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vae_explorer"

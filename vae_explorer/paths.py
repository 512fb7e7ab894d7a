"""Where vae-explorer finds what it ships and keeps what it makes. (Imports no torch.)

- Shipped checkpoints, configs, feature classifiers and the app's pages: in a clone they are the
  repository's `checkpoints/`, `configs/`, `Home.py` and `pages/`; an installed wheel carries the
  same files as package data under `vae_explorer/shipped/`.
- Runs (models trained with `vae-explorer train` or on the app's Train page): `$VAE_EXPLORER_RUNS`
  when set, else `vae-explorer/runs` under `$XDG_DATA_HOME` (default `~/.local/share`). The CLI's
  `--runs-dir` flag overrides both for one command.
- The cache (dataset downloads, IDX copies, feature classifiers trained here, t-SNE maps of
  checkpoints that cannot hold them): `$VAE_EXPLORER_CACHE` when set, else `vae_explorer` under
  `$XDG_CACHE_HOME` (default `~/.cache`).

A checkpoint or config may be named instead of given as a path: `digits-mlp` is a shipped
checkpoint or a run of that name, `digits_mlp` a shipped config (`find_checkpoint`,
`resolve_config`; `checkpoints.locate` is the one that says what was wrong).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent


def shipped_root() -> Path:
    """The folder holding checkpoints/, configs/, Home.py and pages/: package data when installed, else the clone."""
    bundled = _PACKAGE / "shipped"
    return bundled if bundled.is_dir() else _PACKAGE.parent


def shipped_checkpoints_dir() -> Path:
    return shipped_root() / "checkpoints"


def shipped_classifiers_dir() -> Path:
    return shipped_checkpoints_dir() / "classifiers"


def shipped_configs_dir() -> Path:
    return shipped_root() / "configs"


def app_dir() -> Path:
    """The folder of the Streamlit app: Home.py beside pages/."""
    return shipped_root()


def _under(env_var: str, xdg_var: str, fallback: str, leaf: str) -> Path:
    if os.environ.get(env_var):
        return Path(os.environ[env_var]).expanduser()
    return Path(os.environ.get(xdg_var) or Path.home() / fallback).expanduser() / leaf


def cache_root() -> Path:
    return _under("VAE_EXPLORER_CACHE", "XDG_CACHE_HOME", ".cache", "vae_explorer")


def runs_dir(override: str | Path | None = None) -> Path:
    """Where trained runs are saved and looked for; `override` (the --runs-dir flag) wins."""
    if override:
        return Path(override).expanduser()
    return _under("VAE_EXPLORER_RUNS", "XDG_DATA_HOME", ".local/share", "vae-explorer/runs")


def shipped_checkpoint_names() -> list[str]:
    root = shipped_checkpoints_dir()
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []


def shipped_config_names() -> list[str]:
    root = shipped_configs_dir()
    return sorted(p.stem for p in root.glob("*.yaml")) if root.is_dir() else []


def find_checkpoint(name: str, runs: str | Path | None = None) -> Path | None:
    """The folder of the shipped checkpoint, else of the run, called `name`; None when there is none."""
    if "/" in name or os.sep in name:
        return None
    for root in (shipped_checkpoints_dir(), runs_dir(runs)):
        if (root / name / "config.json").is_file():
            return root / name
    return None


def resolve_config(name_or_path: str | Path) -> Path:
    """A YAML config file from a path, or from the name of a shipped config (with or without .yaml)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = shipped_configs_dir() / f"{Path(str(name_or_path)).stem}.yaml"
    if "/" not in str(name_or_path) and shipped.is_file():
        return shipped
    raise ConfigError(
        f"config file {name_or_path} not found; pass a YAML file or one of the shipped configs: "
        f"{', '.join(shipped_config_names())}."
    )

"""What the wheel holds, found in the source tree rather than listed by hand (the name, version and
dependencies are in pyproject.toml).

- Every package under vae_explorer/ (setuptools' find_packages), each with the files beside its
  modules; of the browser decoder's runtime, which `npm ci` puts in the git-ignored node_modules/,
  only the two files the app serves, where they are installed (else the app decodes on the server).
- The app and what it ships, as package data of `vae_explorer.shipped`, where vae_explorer/paths.py
  finds them once installed: Home.py, pages/, .streamlit/config.toml, and every file under
  checkpoints/ and configs/.

tests/install/test_packaging.py builds the wheel and checks that it holds every file git tracks there.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
SKIPPED_FOLDERS = {"__pycache__", "node_modules"}
RUNTIME = [
    "node_modules/onnxruntime-web/dist/ort.wasm.bundle.min.mjs",
    "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
]
SHIPPED_FOLDERS = ["pages", "checkpoints", "configs"]  # under the clone's root, as vae_explorer.shipped.<name>


def files_under(folder: Path, packages: set[Path] = frozenset()) -> list[str]:
    """Every file below `folder` that is not Python source or bytecode, as paths relative to it,
    leaving out nested packages (they carry their own) and the folders in SKIPPED_FOLDERS."""
    found = []
    for parent, folders, files in os.walk(folder):
        here = Path(parent)
        folders[:] = sorted(f for f in folders if f not in SKIPPED_FOLDERS and here / f not in packages)
        found += [(here / f).relative_to(folder).as_posix() for f in sorted(files) if not f.endswith((".py", ".pyc"))]
    return found


def package_layout() -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    """(packages, package_dir, package_data) for setup()."""
    packages = find_packages(where=str(ROOT), include=["vae_explorer", "vae_explorer.*"])
    folders = {ROOT.joinpath(*name.split(".")) for name in packages}
    data = {name: files_under(ROOT.joinpath(*name.split(".")), folders) for name in packages}
    live = ROOT / "vae_explorer" / "app" / "live"
    data["vae_explorer.app.live"] += [path for path in RUNTIME if (live / path).is_file()]
    package_dir = {"vae_explorer.shipped": "."}
    data["vae_explorer.shipped"] = [".streamlit/config.toml"]
    for folder in SHIPPED_FOLDERS:
        name = f"vae_explorer.shipped.{folder}"
        package_dir[name] = folder
        data[name] = files_under(ROOT / folder)
    packages += list(package_dir)
    return packages, package_dir, {name: files for name, files in data.items() if files}


if __name__ == "__main__":
    packages, package_dir, package_data = package_layout()
    # script_name: this file, so that setuptools leaves it out of vae_explorer.shipped (the clone's root,
    # whose Python files it packs); under pip it would be the name of pip's own build helper
    setup(packages=packages, package_dir=package_dir, package_data=package_data, script_name=os.path.relpath(__file__))

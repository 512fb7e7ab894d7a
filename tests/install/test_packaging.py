"""The wheel `pip install .` builds holds every module and data file of the source tree, byte for
byte: the package, and under vae_explorer/shipped/ the app and what it ships (Home.py, pages/,
.streamlit/config.toml, checkpoints/, configs/); and it declares every package the code imports.
(test_install.py then installs it where the clone cannot be seen.)"""

from __future__ import annotations

import ast
import email
import importlib.metadata
import re
import sys
import zipfile
from pathlib import Path

from conftest import REPO, source_files

from vae_explorer.app.live import RUNTIME_FILES

SHIPPED_FILES = ("Home.py", ".streamlit/config.toml")
SHIPPED_FOLDERS = ("pages/", "checkpoints/", "configs/")


def expected_contents() -> dict[str, Path]:
    """Where each source file belongs in the wheel: wheel path -> file in the clone."""
    expected = {}
    for name in source_files():
        if name.startswith("vae_explorer/"):
            expected[name] = REPO / name
        elif name in SHIPPED_FILES or name.startswith(SHIPPED_FOLDERS):
            expected[f"vae_explorer/shipped/{name}"] = REPO / name
    for name in RUNTIME_FILES:  # the browser decoder's runtime, where `npm ci` installed it
        if (REPO / "vae_explorer/app/live" / name).is_file():
            expected[f"vae_explorer/app/live/{name}"] = REPO / "vae_explorer/app/live" / name
    return expected


def test_the_wheel_holds_every_module_and_data_file_and_nothing_else(wheel):
    expected = expected_contents()
    assert (
        "vae_explorer/runs/worker.py" in expected
        and "vae_explorer/shipped/checkpoints/digits-mlp/model.safetensors" in expected
    )
    with zipfile.ZipFile(wheel) as archive:
        held = {
            name for name in archive.namelist() if not name.startswith("vae_explorer-")
        }  # less the .dist-info folder
        assert sorted(set(expected) - held) == []  # nothing dropped
        assert sorted(held - set(expected)) == []  # nothing else: no setup.py, tests, caches or build leftovers
        changed = [name for name, source in expected.items() if archive.read(name) != source.read_bytes()]
    assert changed == []


def _imported_top_level_names() -> set[str]:
    """The top-level names of every module the package's source imports, anywhere in a file."""
    names = set()
    for path in (REPO / "vae_explorer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"vae_explorer"}


def test_the_wheel_declares_the_command_and_every_package_the_code_imports(wheel):
    with zipfile.ZipFile(wheel) as archive:
        info = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(info))
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert re.search(r"^vae-explorer = vae_explorer\.cli:run$", entry_points, re.M)
    required = {
        re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower().replace("_", "-")
        for line in metadata.get_all("Requires-Dist")
        if "extra ==" not in line
    }
    distributions = importlib.metadata.packages_distributions()  # import name -> the distributions providing it
    # extras, asked for when needed: torchvision downloads MNIST-likes (`download`), diffusers opens the VAEs of
    # latent diffusion (`diffusion`)
    optional = {"torchvision", "diffusers"}
    missing = {}
    for name in sorted(_imported_top_level_names() - optional):
        provided_by = {d.lower().replace("_", "-") for d in distributions.get(name, [name])}
        if not provided_by & required:
            missing[name] = sorted(provided_by)
    assert missing == {}

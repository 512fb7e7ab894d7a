"""The package's layers hold: a module imports only from its own layer or those below it, never upwards
(function-level imports included), so the core can be read, tested and reused without the app.

    base (errors, paths, config, images) -> data -> models -> training -> checkpoints -> latent -> evaluation
    -> runs -> app, cli
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

LAYERS = [
    {"errors", "paths", "config", "images"},
    {"data"},
    {"models"},
    {"training"},
    {"checkpoints"},
    {"latent"},
    {"evaluation"},
    {"runs"},
    {"app", "cli", "__main__"},
]
PACKAGE = REPO / "vae_explorer"


def layer_of(module: str) -> int | None:
    """The layer of a vae_explorer module (dotted, without the package's name); None for the package itself."""
    top = module.split(".")[0]
    return next((i for i, names in enumerate(LAYERS) if top in names), None)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, the vae_explorer module imported, dotted below the package) for every import in a file."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
                names = [[*target, alias.name] for alias in node.names] if not node.module else [target]
                found += [(node.lineno, ".".join(name)) for name in names if name]
            elif node.module and node.module.split(".")[0] == "vae_explorer":
                found.append((node.lineno, node.module.removeprefix("vae_explorer").lstrip(".")))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name.removeprefix("vae_explorer").lstrip("."))
                for alias in node.names
                if alias.name.split(".")[0] == "vae_explorer"
            ]
    return found


def test_no_module_imports_from_a_layer_above_its_own():
    upwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts or path == PACKAGE / "__init__.py":  # the package's face imports everything
            continue
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        own = layer_of(module)
        assert own is not None, f"{module} belongs to no layer: add it to LAYERS"
        for line, imported in imports_of(path):
            theirs = layer_of(imported) if imported else None
            if theirs is not None and theirs > own:
                upwards.append(f"{path.relative_to(REPO)}:{line} imports {imported}")
    assert upwards == [], "imports from a layer above:\n" + "\n".join(upwards)


def test_the_contract_sees_an_upward_import(tmp_path):
    """The check itself: a checkpoint module importing from latent is caught."""
    (tmp_path / "checkpoints").mkdir()
    planted = tmp_path / "checkpoints" / "planted.py"
    planted.write_text("def f():\n    from ..latent.epochs import epoch_frame\n")
    import test_layers

    original = test_layers.PACKAGE
    try:
        test_layers.PACKAGE = tmp_path
        assert [(line, name) for line, name in imports_of(planted)] == [(2, "latent.epochs")]
        assert layer_of("latent.epochs") > layer_of("checkpoints.planted")
    finally:
        test_layers.PACKAGE = original


def test_every_import_of_the_package_names_a_module_that_exists():
    """Function-level imports run only when their function does: a moved module's stale relative
    import (`from ...images` one folder deeper) is found here, not by the user who calls it."""
    import importlib.util

    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        for line, imported in imports_of(path):
            module = f"vae_explorer.{imported}" if imported else "vae_explorer"
            parent, _, last = module.rpartition(".")
            exists = importlib.util.find_spec(module) is not None or (
                importlib.util.find_spec(parent) is not None and hasattr(importlib.import_module(parent), last)
            )
            if not exists:
                missing.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert missing == [], "imports of modules that do not exist:\n" + "\n".join(missing)

"""`vae-explorer app`: the app from any folder, or a class's app processes behind nginx."""

from __future__ import annotations

from pathlib import Path


def _take_flag(argv: list[str], flag: str, value: str = "PATH") -> tuple[str | None, list[str]]:
    """The value of `flag VALUE` in argv, and argv without it."""
    if flag not in argv:
        return None, argv
    at = argv.index(flag)
    if at + 1 >= len(argv):
        from ..errors import ConfigError

        raise ConfigError(f"{flag} needs a value; write {flag} {value}.")
    return argv[at + 1], argv[:at] + argv[at + 2 :]


def cmd_app(argv: list[str]) -> int:
    """`vae-explorer app [--runs-dir DIR] [--data-root DIR] [--workers N|auto] [streamlit flags]`: the
    app, from any folder. --data-root offers the image folders under DIR to the Train page (none
    without it); --workers serves a class with N app processes behind nginx (app/serving.py)."""
    from ..app.server import app_environment, launch
    from ..errors import ConfigError

    runs, argv = _take_flag(argv, "--runs-dir")
    data_root, argv = _take_flag(argv, "--data-root")
    workers, argv = _take_flag(argv, "--workers", "N (1 to 64) or auto")
    diffusers_root, argv = _take_flag(argv, "--diffusers-root")
    if diffusers_root is not None and not Path(diffusers_root).expanduser().is_dir():
        raise ConfigError(
            f"--diffusers-root {diffusers_root} is not a folder; pass the folder whose diffusers VAE folders the "
            "Latent diffusion page may offer."
        )
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise ConfigError(
            f"--data-root {data_root} is not a folder; pass the folder whose image folders the Train page may use."
        )
    if workers is not None:
        from ..app.serving import parse_workers, serve

        return serve(parse_workers(workers), argv, app_environment(runs, data_root, diffusers_root))
    launch(argv, runs, data_root, diffusers_root)  # does not return: this process becomes the server
    return 0

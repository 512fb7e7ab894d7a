"""Generate's grids (grid.js): pointing at a grid decodes the place under the pointer in the browser."""

from __future__ import annotations

import base64

import numpy as np

from .. import runtime


def grid_axes(
    kind: str, side: int, latent_dim: int, directions=None, spread=None, extent: float = 2.5
) -> list[dict | None]:
    """How a grid's cell position maps to z, for the browser (grid.js): per axis (columns, rows) the
    vector it moves along and its coordinate at cell x, start + step * x (linear) or the inverse
    normal CDF of that (probit). The same grids as latent.plane_grid and latent.manifold_grid."""
    if kind == "plane":
        return [
            {
                "vector": [float(v) for v in spread[k] * directions[k]],
                "kind": "linear",
                "start": sign * -extent,
                "step": sign * 2 * extent / (side - 1),
            }
            for k, sign in ((0, 1.0), (1, -1.0))
        ]
    unit = np.eye(latent_dim)
    axes = [{"vector": unit[0].tolist(), "kind": "probit", "start": 0.05, "step": 0.9 / (side - 1)}]
    axes.append(
        {"vector": unit[1].tolist(), "kind": "probit", "start": 0.95, "step": -0.9 / (side - 1)}
        if latent_dim == 2
        else None
    )
    return axes


def grid_explorer(
    key: str,
    grid_png: bytes,
    cols: int,
    rows: int,
    origin,
    axes: list[dict | None],
    names: list[str],
    shape: tuple[int, int],
    live: dict | None,
    hint: str,
    grid_px: int,
    picture_px: int = 224,
    gap: int = 0,
) -> None:
    """Mount a grid (Python's PNG, cols x rows cells `gap` pixels apart, with a gap around them too)
    whose pointer position is decoded beside it in the browser; without the browser decoder only
    the grid shows. Its axes are named `names` (columns, rows), with their values at the end cells."""
    runtime._declare("grid_explorer", "grid")[0](
        key=key,
        data={
            "grid": "data:image/png;base64," + base64.b64encode(grid_png).decode("ascii"),
            "cols": cols,
            "rows": rows,
            "origin": [float(v) for v in origin],
            "axes": axes,
            "names": names,
            "shape": list(shape),
            "live": live,
            "hint": hint,
            "grid_px": grid_px,
            "picture_px": picture_px,
            "gap": gap,
        },
        default={"live": None},
        on_live_change=lambda: None,
    )

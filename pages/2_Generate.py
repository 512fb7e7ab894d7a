"""Generate: drag one slider per latent dimension and watch the decoded picture follow."""

import io

import numpy as np
import streamlit as st
from PIL import Image

from vae_explorer.app import cached, catalog, chrome, links, safety
from vae_explorer.app.live import (
    browser_decoding,
    grid_axes,
    grid_explorer,
    latent_sliders,
    pending_drag,
    pending_label,
    pending_values,
)
from vae_explorer.images import array_png_bytes, gif_bytes, mp4_bytes
from vae_explorer.latent import generate

with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    checkpoint = chrome.page(
        "Generate",
        "Each slider sets one coordinate of z; the decoder turns z into the picture. Sliders "
        "are ordered by how much information each dimension carries (KL per dimension); greyed ones are "
        "collapsed: the model ignores them.",
    )
    model = checkpoint.model
    dim = model.latent_dim
    names = catalog.class_names(checkpoint)

    # Python's copy of z: set by Reset / Random / the URL; the browser's drags update it inside the fragment.
    if st.session_state.get("gen_model") != checkpoint.path:
        z0, notice = links.z_from_link(st.query_params.get("z"), dim, checkpoint.name)
        if notice:
            st.warning(notice)
        first = links.from_link("gen_class", links.in_range(0, len(names) - 1), 0)  # a shared link's class
        st.session_state.update(
            gen_model=checkpoint.path,
            gen_z=z0.tolist(),
            gen_version=st.session_state.get("gen_version", 0) + 1,
            gen_label=first if model.cond_dim else None,
            gen_label_seq=st.session_state.get("gen_label_seq", 0) + 1,
        )

    buttons = st.columns([1, 1, 3])
    if buttons[0].button(
        "Random sample", key="gen_random", help=f"Draw z from the prior, {catalog.prior_name(checkpoint)}."
    ):
        st.session_state.gen_z = cached.prior_code(checkpoint)
        st.session_state.gen_version += 1
    if buttons[1].button("Reset to zero", key="gen_reset"):
        st.session_state.gen_z = [0.0] * dim
        st.session_state.gen_version += 1
    label = st.session_state.gen_label  # a conditional model's class: picked in the panel, decoded at once there

    kl, active = cached.latent_stats(checkpoint)
    order = np.argsort(-kl)
    dims = [
        {
            "index": int(i),
            "label": f"z{i}  ·  {kl[i]:.2f} nats" + ("" if active[i] else "  (collapsed)"),
            "title": f"dimension {i}: KL {kl[i]:.3f} nats per image"
            + ("" if active[i] else "; collapsed, it barely changes the picture"),
            "collapsed": bool(not active[i]),
        }
        for i in order[: chrome.MAX_SLIDERS]
    ]
    if dim > chrome.MAX_SLIDERS:
        st.caption(
            f"Sliders for the {chrome.MAX_SLIDERS} of {dim} dimensions that carry the most KL; the other "
            f"{dim - chrome.MAX_SLIDERS} keep their values (Random sample, Reset and shared links set them all)."
        )

    @st.fragment
    @safety.boundary()  # a fragment reruns alone, outside the page's boundary
    def slider_panel() -> None:
        version = st.session_state.gen_version
        values, seq = pending_values("gen_sliders", version)
        if values is not None:
            st.session_state.gen_z = values
        drag = pending_drag("gen_sliders", version, dim)
        if drag is not None and len(drag) >= 2:  # kept until the next drag: its GIF and MP4 are offered below
            st.session_state.gen_drag = {"path": drag, "label": label, "model": str(checkpoint.path)}
        switched = pending_label("gen_sliders", version, len(names)) if model.cond_dim else None
        if switched is not None and switched != label:
            st.session_state.gen_label = switched
            st.rerun()  # the whole page: the grid below decodes with the class too
        z = st.session_state.gen_z
        image = cached.picture(checkpoint, z, label)
        live, notice = browser_decoding("gen_sliders", checkpoint, label)
        latent_sliders(
            "gen_sliders",
            dims,
            z,
            version,
            image,
            seq,
            live,
            picture_px=chrome.px(280),
            classes=names if model.cond_dim else None,
            label=label,
            label_seq=st.session_state.gen_label_seq,
        )
        if notice:
            st.caption(notice)
        st.query_params["z"] = links.z_to_link(z)
        if model.cond_dim:
            st.query_params["gen_class"] = str(label)
        exports = st.columns(3)
        exports[0].download_button(
            "Download this picture (PNG)",
            lambda: array_png_bytes(image),
            "generated.png",
            "image/png",
            key="gen_download",
            on_click="ignore",
        )  # encoded only when clicked, not on every drag step
        drag = st.session_state.get("gen_drag")
        if drag and drag["model"] == str(checkpoint.path):

            def frames():  # decoded only when a button is clicked
                return generate(model, drag["path"], drag["label"])

            exports[1].download_button(
                f"Your last drag, {len(drag['path'])} frames (GIF)",
                lambda: gif_bytes(frames(), min_cell=224, milliseconds=67, bounce=False),
                "drag.gif",
                "image/gif",
                key="gen_drag_gif",
                on_click="ignore",
            )
            exports[2].download_button(
                "Your last drag (MP4)",
                lambda: mp4_bytes(frames(), min_cell=224, fps=15, bounce=False),
                "drag.mp4",
                "video/mp4",
                key="gen_drag_mp4",
                on_click="ignore",
            )

    slider_panel()

    st.divider()
    image_shape = tuple(checkpoint.config.model.image_shape[1:])
    if dim <= 2:
        st.subheader(f"The whole {dim}-D manifold")
        st.caption(
            "z over the prior, spaced by the inverse Gaussian CDF so each cell covers equal prior mass "
            "(Kingma & Welling, figure 4). z0 grows to the right"
            + (", z1 upwards." if dim == 2 else ".")
            + " Point at the grid to see the place under the pointer decoded."
        )
        side = st.slider("Grid size", 8, 30, 16, key="gen_grid_side")
        grid = cached.grid_png(checkpoint, "manifold", side, label, min(chrome.px(40), chrome.px(900) // side))
        live, _ = browser_decoding("gen_grid", checkpoint, label)
        grid_explorer(
            "gen_grid",
            grid,
            side,
            side if dim == 2 else 1,
            np.zeros(dim),
            grid_axes("manifold", side, dim),
            ["z0", "z1"],
            image_shape,
            live,
            "Point at the grid; until then, its centre.",
            grid_px=Image.open(io.BytesIO(grid)).width,
            picture_px=chrome.px(224),
            gap=cached.GRID_GAP,
        )
        st.download_button(
            "Download grid (PNG)", grid, "manifold.png", "image/png", key="gen_grid_download", on_click="ignore"
        )
    else:
        st.subheader("The plane where the data spreads most")
        st.caption(
            "A grid over the top two principal directions of the encoded test set (the other directions held at "
            "the data's mean), from -2.5 to +2.5 standard deviations along each. Point at the grid to see the place "
            "under the pointer decoded."
        )
        side = st.slider("Grid size", 6, 20, 12, key="gen_grid_side")
        grid = cached.grid_png(checkpoint, "plane", side, label, min(chrome.px(48), chrome.px(900) // side))
        centre, directions, spread = cached.pca_plane(checkpoint)
        live, _ = browser_decoding("gen_grid", checkpoint, label)
        grid_explorer(
            "gen_grid",
            grid,
            side,
            side,
            centre,
            grid_axes("plane", side, dim, directions, spread),
            ["PC1 (sd)", "PC2 (sd)"],
            image_shape,
            live,
            "Point at the grid; until then, its centre.",
            grid_px=Image.open(io.BytesIO(grid)).width,
            picture_px=chrome.px(224),
            gap=cached.GRID_GAP,
        )
        st.download_button(
            "Download grid (PNG)", grid, "pca_plane.png", "image/png", key="gen_grid_download", on_click="ignore"
        )

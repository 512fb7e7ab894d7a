"""Traverse: change one latent dimension at a time, from -3 to +3, and see what it controls."""

import numpy as np
import streamlit as st

from vae_explorer.app import cached, catalog, chrome, links, safety
from vae_explorer.app.figures import kl_bars
from vae_explorer.images import gif_bytes, mp4_bytes, png_bytes
from vae_explorer.latent import traversal_frames, traverse

with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    checkpoint = chrome.page(
        "Traverse",
        "Each row starts from one latent vector and sweeps a single dimension across the "
        "prior's range (-3 to +3 standard deviations) while the others stay fixed. Rows are ordered by KL "
        "per dimension: a dimension with almost no KL is collapsed and its row barely changes.",
    )
    model = checkpoint.model
    names = catalog.class_names(checkpoint)

    kl, active = cached.latent_stats(checkpoint)
    order = [int(i) for i in np.argsort(-kl)]
    # the dimensions get a row of their own, so their chips (name and nats) are never cut
    picked = st.multiselect(
        "Dimensions",
        order,
        key="trav_dims",
        format_func=lambda i: f"z{i} ({kl[i]:.2f} nats)",
        **links.from_url(
            "trav_dims",
            lambda text: [links.in_range(0, len(order) - 1)(v) for v in text.split(",") if v],
            default=order[: min(8, len(order))],
        ),
    )
    controls = st.columns([2, 1, 1])
    steps = controls[0].slider(
        "Steps", 5, 15, key="trav_steps", **links.from_url("trav_steps", links.in_range(5, 15), value=9)
    )
    links.to_url(trav_dims=",".join(map(str, picked)), trav_steps=steps)
    start = controls[1].selectbox("Start from", ["zero", "a test image"], key="trav_start")
    label = (
        controls[2].selectbox("Class", range(len(names)), format_func=lambda i: names[i], key="trav_class")
        if model.cond_dim
        else None
    )

    z = None  # zero
    if start == "a test image":
        mu, _, labels = cached.encoded_test_set(checkpoint, 2000)
        if len(mu):
            index = st.number_input("Test image", 0, len(mu) - 1, 0, key="trav_index")
            z = mu[index]
            st.caption(
                f"Starting from the posterior mean of test image {index} ({safety.plain(names[int(labels[index])])})."
            )

    if not picked:
        st.info("Pick at least one dimension.")
        st.stop()
    images = traverse(model, picked, steps, z, label)  # (len(picked) * steps, C, H, W), one row per dimension
    grid = png_bytes(images, nrow=steps, min_cell=48)
    left, right = st.columns([3, 1], gap="medium")
    with left:
        st.image(
            grid,
            width="stretch",
            output_format="PNG",
            caption="rows: " + ", ".join(f"z{i}" for i in picked) + "; columns: value from -3 to +3",
        )
        downloads = st.columns(3)
        downloads[0].download_button(
            "Download grid (PNG)", grid, "traversal.png", "image/png", key="trav_png", on_click="ignore"
        )
        # The animations sweep all chosen rows together: frame t shows every row at value t.
        downloads[1].download_button(
            "Download animation (GIF)",
            lambda: gif_bytes(traversal_frames(images, len(picked), steps), min_cell=96),
            "traversal.gif",
            "image/gif",
            key="trav_gif",
            on_click="ignore",
        )
        downloads[2].download_button(
            "Download animation (MP4)",
            lambda: mp4_bytes(traversal_frames(images, len(picked), steps), min_cell=96),
            "traversal.mp4",
            "video/mp4",
            key="trav_mp4",
            on_click="ignore",
        )
    with right:
        figure = kl_bars(kl, active, "KL per dimension (nats)", 320)
        chrome.chart(figure, "trav_kl")
        st.caption(
            "Collapsed: the posterior mean varies by less than 0.01 across the test set, so the decoder ignores it."
        )

"""Interpolate: walk between images in latent space, along a line and along a great circle."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vae_explorer.app import cached, catalog, chrome, links, safety
from vae_explorer.app.drawing import kept_drawing
from vae_explorer.app.live import browser_decoding, interpolation_walk, pending_walk
from vae_explorer.data import prepare_image
from vae_explorer.errors import VaeExplorerError
from vae_explorer.images import gif_bytes, mp4_bytes, png_bytes, to_uint8, upscale
from vae_explorer.latent import (
    centroid_arithmetic,
    class_centroids,
    corner_grid,
    encode_image,
    generate,
    interpolation_at,
    interpolation_paths,
    path_lengths,
)

with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    checkpoint = chrome.page("Interpolate")
    model = checkpoint.model
    names = catalog.class_names(checkpoint)
    data = catalog.dataset_of(checkpoint)
    mu, _, labels = cached.encoded_test_set(checkpoint, 10_000)
    if data is None or not len(mu):
        st.stop()
    n = len(mu)

    def pick(slot: str, default: int, column) -> tuple[np.ndarray, int]:
        """One end point, a test image by index or an uploaded one: its posterior mean and class."""
        with column:
            index = st.number_input(
                f"Image {slot}: test image",
                0,
                n - 1,
                key=f"interp_{slot}",
                **links.from_url(f"interp_{slot}", links.in_range(0, n - 1), value=default),
            )
            upload = st.file_uploader(
                f"…or upload image {slot}",
                type=["png", "jpg", "jpeg", "bmp", "webp", "gif"],
                key=f"interp_upload_{slot}",
            )
            z, label, image = mu[index], int(labels[index]), data.test_x[index : index + 1]
            caption = f"{slot}: test image {index}, {safety.plain(names[label])}"
            drawing, drawing_label = kept_drawing(checkpoint)
            if (
                upload is None
                and drawing is not None
                and st.checkbox(
                    f"…or use your drawing as {slot}",
                    key=f"interp_drawing_{slot}",
                    help="The last drawing on the Reconstruct page's pad.",
                )
            ):
                encoding = encode_image(model, drawing, drawing_label, samples=0)
                z, image = encoding.mean, encoding.image
                label = int(drawing_label or 0) if model.cond_dim else label
                caption = f"{slot}: your drawing" + (
                    f", encoded as {safety.plain(names[label])}" if model.cond_dim else ""
                )
            if upload is not None:
                if model.cond_dim:  # a conditional model encodes with a class, which an upload does not carry
                    label = st.selectbox(
                        f"Class to encode upload {slot} with",
                        range(len(names)),
                        format_func=lambda i: names[i],
                        key=f"interp_upload_class_{slot}",
                    )
                try:
                    encoding = encode_image(
                        model,
                        prepare_image(
                            upload.getvalue(), checkpoint.config.model.image_shape, "auto", True, name=upload.name
                        ),
                        label,
                        samples=0,
                    )
                    z, image = encoding.mean, encoding.image
                    caption = f"{slot}: your upload" + (
                        f", encoded as {safety.plain(names[label])}" if model.cond_dim else ""
                    )
                except VaeExplorerError as exc:
                    st.error(safety.say(exc))
            st.image(
                upscale(to_uint8(image)[0].squeeze(), 192), caption=caption, width=chrome.px(192), output_format="PNG"
            )
        return z, label

    ends = st.columns(3)
    z_a, label_a = pick("A", 0, ends[0])
    other = next(
        (i for i in range(n) if int(labels[i]) != int(labels[0])), min(1, n - 1)
    )  # B starts in another class than A
    z_b, _ = pick("B", other, ends[1])
    steps = ends[2].slider(
        "Steps", 5, 16, key="interp_steps", **links.from_url("interp_steps", links.in_range(5, 16), value=10)
    )
    links.to_url(interp_A=st.session_state["interp_A"], interp_B=st.session_state["interp_B"], interp_steps=steps)
    if model.cond_dim:
        ends[2].caption(
            f"This conditional model decodes the whole path as class {safety.plain(names[label_a])} (image A's class)."
        )

    # --- a walk from A to B, drawn as t moves ------------------------------------------------------------
    st.subheader("Walk from A to B")
    st.caption(
        "Drag t from A (0) to B (1): the picture is the decode of the point a fraction t of the way along the "
        "chosen path, drawn while you drag."
    )

    def _walk_from_url() -> tuple[float, str]:
        return links.from_link("interp_t", links.fraction, 0.5), links.from_link(
            "interp_path", links.one_of(["linear", "slerp"]), "slerp"
        )

    walk_ends = (np.asarray(z_a, np.float32).tobytes(), np.asarray(z_b, np.float32).tobytes(), label_a)
    if st.session_state.get("interp_walk_ends") != walk_ends:  # new end points: the walk starts again
        st.session_state.interp_walk_ends = walk_ends
        st.session_state.interp_walk_version = st.session_state.get("interp_walk_version", 0) + 1
        st.session_state.interp_walk_at = _walk_from_url()

    @st.fragment
    @safety.boundary()  # a fragment reruns alone, outside the page's boundary
    def walk() -> None:
        version = st.session_state.interp_walk_version
        sent, seq = pending_walk("interp_walk", version), 0
        if sent is not None:  # the browser's t and path (on release, or each value when the server decodes)
            t, method, seq = sent
            st.session_state.interp_walk_at = (t, method)
        t, method = st.session_state.interp_walk_at
        image = cached.picture(checkpoint, interpolation_at(z_a, z_b, t, method)[0], label_a)
        live, notice = browser_decoding("interp_walk", checkpoint, label_a)
        interpolation_walk("interp_walk", z_a, z_b, version, t, method, image, seq, live, picture_px=chrome.px(240))
        links.to_url(interp_t=f"{t:.2f}", interp_path=method)
        if notice:
            st.caption(notice)

    walk()

    # --- line and great circle ---------------------------------------------------------------------------
    st.subheader("A to B: a straight line and a great circle")
    st.caption(
        "Linear interpolation cuts the corner through the middle of the space: its |z| runs below the straight line "
        "from |z_A| to |z_B|, most for end points far apart in angle. Spherical interpolation "
        "(slerp) follows the arc between them: two codes of equal length keep that length all the way (codes of "
        "different lengths change length along the arc too; the plot shows by how much). The dotted line is √d, "
        "the length typical of a sample from the prior N(0, I) in d dimensions; encoded images often sit inside it."
    )
    paths = interpolation_paths(z_a, z_b, steps)
    rows = generate(model, np.concatenate([paths["linear"], paths["slerp"]]), label_a)
    strip = png_bytes(rows, nrow=steps, min_cell=56)
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.image(strip, width="stretch", caption="top row: linear; bottom row: slerp", output_format="PNG")
    with right:
        figure = go.Figure()
        t = np.linspace(0, 1, steps)
        for method, lengths in path_lengths(paths).items():
            figure.add_trace(go.Scatter(x=t, y=lengths, mode="lines+markers", name=method))
        figure.add_hline(y=float(np.sqrt(model.latent_dim)), line_dash="dot", annotation_text="√d")
        figure.update_layout(
            height=300,
            margin=dict(l=10, r=10, t=30, b=10),
            title="length of z, |z|, along each path",
            xaxis_title="t from A to B",
        )
        chrome.chart(figure, "interp_norm")
    buttons = st.columns(3)  # the page's whole width: in the strip's column their names were cut at 1280 px
    buttons[0].download_button(
        "Download (PNG)", strip, "interpolation.png", "image/png", key="interp_png", on_click="ignore"
    )
    buttons[1].download_button(
        "Download linear path (GIF)",
        lambda: gif_bytes(rows[:steps]),
        "interpolation.gif",
        "image/gif",
        key="interp_gif",
        on_click="ignore",
    )  # encoded only when clicked
    buttons[2].download_button(
        "Download linear path (MP4)",
        lambda: mp4_bytes(rows[:steps]),
        "interpolation.mp4",
        "video/mp4",
        key="interp_mp4",
        on_click="ignore",
    )

    # --- four corners ----------------------------------------------------------------------------------------
    st.subheader("A grid between four images")
    corners = st.columns(3)
    index_c = corners[0].number_input("Image C: test image", 0, n - 1, min(2, n - 1), key="interp_C")
    index_d = corners[1].number_input("Image D: test image", 0, n - 1, min(3, n - 1), key="interp_D")
    side = corners[2].slider("Grid size", 4, 12, 7, key="interp_side")
    grid = png_bytes(
        generate(model, corner_grid(z_a, z_b, mu[index_c], mu[index_d], side), label_a),
        nrow=side,
        min_cell=48,
        padding=1,
    )
    st.image(
        grid,
        width=min(chrome.px(720), side * chrome.px(72)),
        caption="corners: A top-left, B top-right, C bottom-left, D bottom-right",
        output_format="PNG",
    )
    st.download_button(
        "Download grid (PNG)", grid, "four_corners.png", "image/png", key="interp_grid_png", on_click="ignore"
    )

    # --- arithmetic ---------------------------------------------------------------------------------------------
    st.subheader("Latent arithmetic with class centroids")
    st.caption(
        "A class centroid is the mean z of that class's test images. Adding the difference of two centroids to "
        "image A moves it in the direction that separates those classes, e.g. "
        f"{safety.plain(names[label_a])} + ({safety.plain(names[min(7, len(names) - 1)])} − "
        f"{safety.plain(names[min(5, len(names) - 1)])}), as chosen below."
    )
    centroids = class_centroids(mu, labels, len(names))
    terms = st.columns(3)
    plus = terms[0].selectbox(
        "plus class", range(len(names)), index=min(7, len(names) - 1), format_func=lambda i: names[i], key="interp_plus"
    )
    minus = terms[1].selectbox(
        "minus class",
        range(len(names)),
        index=min(5, len(names) - 1),
        format_func=lambda i: names[i],
        key="interp_minus",
    )
    scale = terms[2].slider("amount", 0.0, 2.0, 1.0, 0.1, key="interp_amount")
    result = centroid_arithmetic(z_a, centroids, plus, minus, scale)
    parts = generate(model, np.stack([z_a, centroids[plus], centroids[minus], result]), label_a)
    st.image(
        png_bytes(parts, nrow=4, min_cell=72),
        width=chrome.px(480),
        caption=f"A,  centroid of {safety.plain(names[plus])},  centroid of {safety.plain(names[minus])},  A + {scale:g} × "
        f"({safety.plain(names[plus])} − {safety.plain(names[minus])})",
        output_format="PNG",
    )

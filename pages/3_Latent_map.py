"""Latent map: the encoded images as a 2-D scatter coloured by class; point to decode, click to look closer."""

import numpy as np
import streamlit as st

from vae_explorer.app import cached, catalog, chrome, links, safety
from vae_explorer.app.drawing import kept_drawing
from vae_explorer.app.live import browser_decoding, latent_map, map_pick
from vae_explorer.data import prepare_image
from vae_explorer.errors import VaeExplorerError
from vae_explorer.images import to_uint8, upscale
from vae_explorer.latent import encode_image, pca_inverse, place_by_neighbours, reconstruction_rows

with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    checkpoint = chrome.page(
        "Latent map",
        "Each dot is one image (test images, or every image), placed by its posterior mean "
        "(never a sample). PCA is a linear projection: distances along it are real and any place on it can be "
        "decoded. t-SNE and UMAP keep neighbours together but bend the space, so only their dots can be pointed at.",
    )
    model = checkpoint.model
    names = catalog.class_names(checkpoint)
    if model.cond_dim:
        st.info(
            "This model is conditional: its encoder and decoder are given the class, so z need not hold it. Expect the "
            "classes mixed together on this map: z holds what the class does not say (a digit's slant and thickness, a "
            "garment's shape), and any z decodes as any class."
        )

    data = catalog.dataset_of(checkpoint)
    if data is None:
        st.stop()
    n_test, n_all = len(data.test_x), len(data.test_x) + len(data.train_x)
    controls = st.columns([1, 1, 1])
    METHODS = ["PCA", "t-SNE", "UMAP"]
    method = controls[0].radio(
        "Method",
        METHODS,
        horizontal=True,
        key="map_method",
        **links.from_url("map_method", links.one_of(METHODS), index=0),
    )
    sizes = (
        [n for n in (500, 1000, 2000, 5000) if n < n_test] + [min(10_000, n_test)] + ([n_all] if n_all > n_test else [])
    )
    if len(sizes) > 1:
        limit = controls[1].select_slider(
            "Points",
            sizes,
            key="map_points",
            format_func=lambda n: f"all {n:,} (test + training)" if n > n_test else f"{n:,} test",
            **links.from_url("map_points", links.one_of(sizes), value=min(2000, n_test)),
        )
    else:
        limit = sizes[0]
        controls[1].markdown(f"**Points**: all {limit} test images")
    if method == "UMAP":
        parameter = controls[2].slider(
            "UMAP neighbours",
            2,
            100,
            key="map_neighbours",
            help="How large a neighbourhood each point sees.",
            **links.from_url("map_neighbours", links.in_range(2, 100), value=15),
        )
    else:
        parameter = controls[2].slider(
            "t-SNE perplexity",
            5,
            100,
            key="map_perplexity",
            disabled=method != "t-SNE",
            help="About how many neighbours each point attends to.",
            **links.from_url("map_perplexity", links.in_range(5, 100), value=30),
        )
    links.to_url(
        map_method=method,
        map_points=limit,
        **({"map_neighbours": parameter} if method == "UMAP" else {"map_perplexity": parameter}),
    )
    split = "all" if limit > n_test else "test"
    mu, labels, coords, pca_mean, pca_directions = cached.map_codes(checkpoint, limit)
    if method != "PCA":
        coords, task = cached.slow_map(checkpoint, "tsne" if method == "t-SNE" else "umap", float(parameter), split, mu)
        if coords is None:
            chrome.show_map_progress(task, f"{method} map of {len(mu):,} images")
            st.stop()

    # An uploaded image (or the session's drawing from the Reconstruct page) placed on the map.
    upload = st.sidebar.file_uploader(
        "Place your own image on the map", type=["png", "jpg", "jpeg", "bmp", "webp", "gif"], key="map_upload"
    )
    drawing, drawing_label = kept_drawing(checkpoint)
    use_drawing = (
        upload is None
        and drawing is not None
        and st.sidebar.checkbox(
            "Place your drawing on the map",
            value=True,
            key="map_drawing",
            help="The last drawing on the Reconstruct page's pad.",
        )
    )
    placed = None
    if upload is not None or use_drawing:
        try:
            x = (
                drawing
                if use_drawing
                else prepare_image(
                    upload.getvalue(), checkpoint.config.model.image_shape, "auto", True, name=upload.name
                )
            )
            upload_label = (
                drawing_label
                if use_drawing
                else (
                    st.sidebar.selectbox(
                        "Class to encode your image with",
                        range(len(names)),
                        format_func=lambda i: names[i],
                        key="map_upload_class",
                    )
                    if model.cond_dim
                    else None
                )
            )  # a conditional model needs one
            z_upload = encode_image(model, x, upload_label, samples=0).mean
            st.sidebar.image(
                upscale(to_uint8(x.unsqueeze(0))[0].squeeze(), 96),
                caption="your image, as the model sees it",
                output_format="PNG",
            )
            said, far = cached.typicality_of(checkpoint, x, upload_label)
            (st.sidebar.warning if far else st.sidebar.caption)(safety.plain(said))
            if method == "PCA":
                placed = (z_upload - pca_mean) @ pca_directions.T
            else:
                placed = place_by_neighbours(z_upload, mu, coords)
        except VaeExplorerError as exc:
            st.sidebar.error(safety.say(exc))

    def image_of(index: int) -> tuple[str, object, object]:
        """("Test image 3" or "Training image 5", its image (1, C, H, W), its label (1,)) of a dot."""
        if index < n_test:
            return f"Test image {index}", data.test_x[index : index + 1], data.test_y[index : index + 1]
        j = index - n_test
        return f"Training image {j}", data.train_x[j : j + 1], data.train_y[j : j + 1]

    planar = method == "PCA"
    live, notice = browser_decoding("map_view", checkpoint)
    picked = map_pick("map_view", len(mu), planar, len(names))
    left, right = st.columns([3, 1], gap="medium")
    with left:
        latent_map(
            "map_view",
            coords,
            labels,
            names,
            method,
            ["PC 1", "PC 2"] if planar else ["t-SNE 1", "t-SNE 2"],
            tuple(checkpoint.config.model.image_shape[1:]),
            plane=(pca_mean, pca_directions) if planar else None,
            mu=mu,
            star=placed,
            picked=picked,
            live=live,
            n_test=n_test,
            height=760 if chrome.presenting() else 640,
            picture_px=chrome.px(128),
            scale=chrome.px(100) / 100,
            hint="Ctrl + wheel or pinch to zoom, drag to move, double-click to fit. Point at a dot to see its reconstruction"
            + (", or at an empty place to decode it" if planar else "")
            + "; click to keep it beside the map.",
        )
        if notice:
            st.caption(notice)
    with right:
        if picked is None:
            st.info(
                "Click a dot to see its image and reconstruction"
                + (", or an empty place to decode it." if planar else ".")
            )
        elif "index" in picked:
            title, image, label = image_of(picked["index"])
            pair = to_uint8(reconstruction_rows(model, image, label, 1))
            st.markdown(f"**{title}**: {safety.plain(names[int(label[0])])}")
            st.image(upscale(pair[0].squeeze()), caption="the image", width=chrome.px(180), output_format="PNG")
            st.image(
                upscale(pair[1].squeeze()), caption="its reconstruction", width=chrome.px(180), output_format="PNG"
            )
        else:
            z = pca_inverse(np.array([[picked["x"], picked["y"]]]), pca_mean, pca_directions)[0]
            st.markdown(f"**Decoded at ({picked['x']:.2f}, {picked['y']:.2f})**")
            st.image(
                upscale(cached.picture(checkpoint, z, picked["label"] if model.cond_dim else None)),
                caption="z = mean + position along the PCA plane"
                + (f", class {safety.plain(names[picked['label']])}" if model.cond_dim else ""),
                width=chrome.px(180),
                output_format="PNG",
            )

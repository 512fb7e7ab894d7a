"""Compare: two models side by side, driven by the same input: the same z, the same image, the
same interpolation end points and the same traversal."""

from pathlib import Path

import numpy as np
import streamlit as st

from vae_explorer.app import cached, catalog, chrome, links, safety
from vae_explorer.app.drawing import kept_drawing
from vae_explorer.app.live import browser_decoding, latent_sliders, pending_values
from vae_explorer.data import prepare_image
from vae_explorer.errors import VaeExplorerError
from vae_explorer.images import png_bytes, to_uint8, upscale
from vae_explorer.latent import encode_image, encode_means, generate, interpolate, traverse

with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    first = chrome.page(
        "Compare",
        "Two models side by side, driven by the same input: for example β = 1 against β = 4, a VAE "
        "against its conditional version, or one objective against another.",
    )
    refs = {Path(r.path).name: r for r in catalog.available_models()}
    shape = first.config.model.image_shape
    candidates = [
        name for name, ref in refs.items() if name != first.name and catalog.image_shape_of(ref.path) == shape
    ]
    if not candidates:
        st.info(
            f"No other model here sees {shape[2]}x{shape[1]} images like {safety.plain(first.name)}; "
            "train one on the Train page, or pick another model in the sidebar."
        )
        st.stop()
    preferred = catalog.comparable_first(first, candidates, {n: refs[n].path for n in candidates})
    other_name = st.selectbox(
        "Compare with",
        candidates,
        key="cmp_other",
        format_func=lambda n: refs[n].label,
        **links.from_url(
            "cmp_other", lambda text: candidates[candidates.index(text)], index=candidates.index(preferred)
        ),
    )
    links.to_url(cmp_other=other_name)  # a shared link shows the same pair
    second = catalog.load(refs[other_name].path)
    models = {first.name: first, second.name: second}
    kl, active = cached.latent_stats(first)
    by_kl = np.argsort(-kl)  # the first's dimensions, most KL first
    if first.config.data.dataset != second.config.data.dataset:
        first_data, second_data = (
            safety.dataset_name(first.config.data.dataset),
            safety.dataset_name(second.config.data.dataset),
        )
        st.warning(
            f"{safety.plain(first.name)} was trained on {first_data} and {safety.plain(second.name)} on {second_data}: the "
            f"test images below are {first_data}'s."
        )

    # --- what each is ---------------------------------------------------------------------------------
    columns = st.columns(2)
    for column, checkpoint in zip(columns, models.values()):
        metrics, config = checkpoint.metrics, checkpoint.config
        kind = (
            "imported ONNX graphs"
            if config.model.architecture == "onnx"
            else f"{config.model.architecture}, β = {config.train.beta:g}"
        )
        column.markdown(
            f"**{safety.plain(checkpoint.name)}**: {kind}, z of {config.model.latent_dim}"
            + (", conditional" if config.model.conditional else "")
            + (
                f"; neg-ELBO {metrics['neg_elbo']:.2f}, KL {metrics['kl']:.2f} nats, {metrics['active_units']} of "
                f"{config.model.latent_dim} dimensions active"
                if "neg_elbo" in metrics
                else "; not evaluated yet"
            )
        )
        column.caption(safety.plain(checkpoint.model.describe_likelihood()))
    if not catalog.scored_alike(c.model for c in models.values()):
        st.caption(
            "The two are scored with different likelihoods, so their neg-ELBOs are in different units: compare "
            "their pictures, not those numbers."
        )
    conditional = [c for c in models.values() if c.model.cond_dim]
    names = catalog.class_names(conditional[0] if conditional else first)
    label = (
        st.selectbox(
            "Class for " + " and ".join(c.name for c in conditional) + " (conditional)",
            range(len(names)),
            format_func=lambda i: names[i],
            key="cmp_label",
        )
        if conditional
        else None
    )

    def class_for(checkpoint, wanted):
        """The class a model is given: the chosen one for a conditional model, none for the other."""
        return (wanted or 0) if checkpoint.model.cond_dim else None

    # --- 1. the same z --------------------------------------------------------------------------------
    st.subheader("The same z")
    dim = first.model.latent_dim
    if second.model.latent_dim != dim:
        st.info(
            f"{safety.plain(first.name)} has {dim} latent dimensions and {safety.plain(second.name)} "
            f"{second.model.latent_dim}: one z cannot drive both. "
            "The image, interpolation and traversal below still compare them, each with its own codes."
        )
    else:
        if st.session_state.get("cmp_pair") != (first.name, second.name):  # a new pair keeps the z it had (or a link's)
            z0, notice = links.z_from_link(st.query_params.get("z"), dim, first.name)
            if notice:
                st.warning(notice)
            st.session_state.update(
                cmp_pair=(first.name, second.name),
                cmp_z=z0.tolist(),
                cmp_version=st.session_state.get("cmp_version", 0) + 1,
            )
        if st.button("Random sample", key="cmp_random", help=f"Draw z from {safety.plain(first.name)}'s prior."):
            st.session_state.cmp_z = cached.prior_code(first)
            st.session_state.cmp_version += 1

        @st.fragment
        @safety.boundary()  # a fragment reruns alone, outside the page's boundary
        def same_z() -> None:
            version = st.session_state.cmp_version
            values, seq = pending_values("cmp_sliders", version)
            if values is not None:
                st.session_state.cmp_z = values
            z = st.session_state.cmp_z
            live, notice = browser_decoding("cmp_sliders", first, class_for(first, label))
            twin_live, twin_notice = browser_decoding(
                "cmp_sliders", second, class_for(second, label), field="live_twin"
            )
            # most KL in either model first; each slider names both models' KL, greyed where both collapsed
            kl_b, active_b = cached.latent_stats(second)
            both = np.argsort(-np.maximum(kl, kl_b))
            shown = both[: chrome.MAX_SLIDERS]
            dims = [
                {
                    "index": int(i),
                    "label": f"z{i}  ·  {kl[i]:.2f} | {kl_b[i]:.2f} nats",
                    "title": f"dimension {i} of both models' z: KL {kl[i]:.3f} nats per image in {first.name}"
                    + ("" if active[i] else " (collapsed)")
                    + f", {kl_b[i]:.3f} in {second.name}"
                    + ("" if active_b[i] else " (collapsed)"),
                    "collapsed": bool(not active[i] and not active_b[i]),
                }
                for i in shown
            ]
            if dim > chrome.MAX_SLIDERS:
                st.caption(
                    f"Sliders for the {chrome.MAX_SLIDERS} of {dim} dimensions that carry the most KL in either "
                    "model; the others keep their values."
                )
            latent_sliders(
                "cmp_sliders",
                dims,
                z,
                version,
                cached.picture(first, z, class_for(first, label)),
                seq,
                live,
                picture_px=chrome.px(220),
                caption=first.name,
                twin={
                    "image": cached.picture(second, z, class_for(second, label)),
                    "live": twin_live,
                    "caption": second.name,
                },
            )
            if notice or twin_notice:
                st.caption(notice or twin_notice)
            st.query_params["z"] = links.z_to_link(z)

        same_z()
        st.caption(
            f"One slider per dimension moves both models' z at once; each picture is its own decoder's answer. "
            f"Beside each slider: the KL of that dimension in {safety.plain(first.name)} | in {safety.plain(second.name)} "
            "(nats per image; greyed: collapsed in both, it changes neither picture)."
        )

    # --- 2. the same image ----------------------------------------------------------------------------
    data = catalog.dataset_of(first)
    st.subheader("The same image")
    drawing, drawing_label = kept_drawing(first)
    sources = (["your drawing"] if drawing is not None else []) + ["a test image", "an upload"]
    source = st.radio("Input", sources, horizontal=True, key="cmp_source")
    image, true_label = None, None
    if source == "your drawing":
        image, true_label = drawing, drawing_label
    elif source == "an upload":
        upload = st.file_uploader(
            "An image (PNG, JPEG, BMP, WebP or GIF), prepared as on the Reconstruct page",
            type=["png", "jpg", "jpeg", "bmp", "webp", "gif"],
            key="cmp_upload",
        )
        if upload is not None:
            try:
                image = prepare_image(upload.getvalue(), shape, "auto", True, name=upload.name)
            except VaeExplorerError as exc:
                st.error(safety.say(exc))
    elif data is not None:
        index = st.number_input("Test image", 0, len(data.test_x) - 1, 0, key="cmp_image")
        image, true_label = data.test_x[index], int(data.test_y[index])
    if image is not None:
        columns = st.columns(1 + len(models))
        columns[0].image(
            upscale(to_uint8(image[None])[0].squeeze(), 160),
            caption="the input",
            width=chrome.px(160),
            output_format="PNG",
        )
        for column, checkpoint in zip(columns[1:], models.values()):
            encoding = encode_image(
                checkpoint.model, image, class_for(checkpoint, label if label is not None else true_label), samples=0
            )
            column.image(
                upscale(to_uint8(encoding.reconstruction)[0].squeeze(), 160),
                width=chrome.px(160),
                output_format="PNG",
                caption=f"{safety.plain(checkpoint.name)}: reconstruction (its code {encoding.distance:.2f} from the origin)",
            )

    # --- 3. the same end points, 4. the same traversal -----------------------------------------------
    if data is not None:
        st.subheader("The same interpolation end points")
        ends = st.columns(3)
        a = ends[0].number_input("Image A: test image", 0, len(data.test_x) - 1, 0, key="cmp_a")
        b = ends[1].number_input(
            "Image B: test image", 0, len(data.test_x) - 1, min(1, len(data.test_x) - 1), key="cmp_b"
        )
        steps = ends[2].slider("Steps", 5, 12, 8, key="cmp_steps")
        for checkpoint in models.values():
            y = data.test_y[[a, b]] if checkpoint.model.cond_dim else None
            mu, _ = encode_means(checkpoint.model, data.test_x[[a, b]], y)
            path = interpolate(mu[0].numpy(), mu[1].numpy(), steps)
            st.image(
                png_bytes(
                    generate(checkpoint.model, path, class_for(checkpoint, int(data.test_y[a]))),
                    nrow=steps,
                    min_cell=56,
                ),
                caption=f"{safety.plain(checkpoint.name)}: linear from A to B in its own latent space",
                width="stretch",
                output_format="PNG",
            )

    st.subheader("The same traversal")
    shared = min(first.model.latent_dim, second.model.latent_dim)
    informative = [int(i) for i in by_kl if i < shared]
    picked = st.multiselect(
        "Dimensions",
        list(range(shared)),
        default=sorted(informative[:4]),
        key="cmp_dims",
        format_func=lambda i: f"z{i}",
        help=f"Four with the most KL in {safety.plain(first.name)} to start with.",
    )
    if picked:
        columns = st.columns(len(models))
        for column, checkpoint in zip(columns, models.values()):
            column.image(
                png_bytes(
                    traverse(checkpoint.model, picked, 7, label=class_for(checkpoint, label)), nrow=7, min_cell=40
                ),
                caption=f"{safety.plain(checkpoint.name)}: each row one dimension from -3 to +3, the others at 0",
                width="stretch",
                output_format="PNG",
            )

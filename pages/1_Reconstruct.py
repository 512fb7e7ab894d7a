"""Reconstruct: test images beside their reconstructions, and the encoding of images you upload."""

import math

import plotly.graph_objects as go
import streamlit as st

from vae_explorer.app import cached, catalog, chrome, safety
from vae_explorer.app.drawing import keep_drawing
from vae_explorer.app.live import browser_decoding, browser_encoding, drawing_pad, drawing_result, pending_drawing
from vae_explorer.data import prepare_image
from vae_explorer.errors import VaeExplorerError
from vae_explorer.images import png_bytes, to_uint8, upscale
from vae_explorer.latent import encode_image

with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    checkpoint = chrome.page("Reconstruct")
    model = checkpoint.model
    names = catalog.class_names(checkpoint)

    # --- test images ---------------------------------------------------------------------------------
    data = catalog.dataset_of(checkpoint)
    if data is not None:
        st.subheader("Test images and their reconstructions")
        count = st.slider("How many", 8, 64, 16, step=8, key="recon_count")
        start = st.number_input("Starting at test image", 0, len(data.test_x) - count, 0, step=count, key="recon_start")
        per_row = min(count, 16)
        picture = cached.reconstructions_png(checkpoint, start, count, per_row)
        st.image(
            picture,
            width="stretch",
            output_format="PNG",
            caption="Rows alternate: test images, then their reconstructions from the posterior mean.",
        )
        st.download_button("Download PNG", picture, "reconstructions.png", "image/png", key="recon_download_test")

    # --- drawing -------------------------------------------------------------------------------------
    channels, height, width = checkpoint.config.model.image_shape
    st.subheader("Draw")
    st.caption(
        f"Draw with the mouse, a pen or a finger. The pad is the model's {width}x{height} frame, drawn without "
        "centring; while you draw, the page encodes and decodes what it sees."
    )
    draw_label = (
        st.selectbox("Encode it as class", range(len(names)), format_func=lambda i: names[i], key="recon_draw_label")
        if model.cond_dim
        else None
    )
    decoder_spec, decoder_notice = browser_decoding("recon_pad", checkpoint, draw_label)
    encoder_spec, encoder_notice = browser_encoding("recon_pad", checkpoint)
    drawing, drawing_seq = pending_drawing("recon_pad", checkpoint.config.model.image_shape)
    drawn = encode_image(model, drawing, draw_label) if drawing is not None else None
    in_page = decoder_spec is not None and encoder_spec is not None
    drawing_pad(
        "recon_pad",
        (channels, height, width),
        decoder_spec if in_page else None,
        encoder_spec if in_page else None,
        drawing_result(drawn, drawing_seq),
        chrome.px(280),
        draw_label,
        brush=max(1.25, round(width / 14 * 4) / 4),
    )
    if not in_page:
        st.caption(encoder_notice or decoder_notice)
    if drawn is not None:
        keep_drawing(checkpoint, drawing, draw_label)
        st.image(
            png_bytes(drawn.samples, nrow=6, min_cell=56),
            caption="six samples z ~ q(z|x) of your drawing, decoded",
            width="content",
            output_format="PNG",
        )
        st.download_button(
            "Download the drawing, its reconstruction and samples (PNG)",
            png_bytes(drawn.strip(), nrow=8, min_cell=56),
            "drawing-reconstruction.png",
            "image/png",
            key="recon_download_drawing",
            on_click="ignore",
        )
        st.caption("Your drawing is also offered on the Interpolate and Latent map pages.")

    # --- uploads -------------------------------------------------------------------------------------
    st.subheader("Your own images")
    st.caption(
        f"This model sees {width}x{height} {'greyscale' if channels == 1 else 'colour'} images with a dark background. "
        "Uploads are converted, resized with their aspect kept, and centred like MNIST."
    )
    uploads = st.file_uploader(
        "PNG, JPEG, BMP, WebP or GIF (first frame)",
        type=["png", "jpg", "jpeg", "bmp", "webp", "gif"],
        accept_multiple_files=True,
        key="recon_uploads",
    )
    options = st.columns(3)
    invert = options[0].selectbox(
        "Invert",
        ["auto", "yes", "no"],
        key="recon_invert",
        help="auto inverts dark-on-light drawings, judged by the border.",
    )
    center = options[1].checkbox("Centre like MNIST", value=True, key="recon_center")
    label = (
        options[2].selectbox(
            "Class (conditional model)", range(len(names)), format_func=lambda i: names[i], key="recon_label"
        )
        if model.cond_dim
        else None
    )

    for upload in uploads or []:
        try:
            x = prepare_image(
                upload.getvalue(),
                (channels, height, width),
                {"auto": "auto", "yes": True, "no": False}[invert],
                center,
                name=upload.name,
            )
        except VaeExplorerError as exc:
            st.error(safety.say(exc))
            continue
        encoding = encode_image(model, x, label)
        st.markdown(f"**{safety.plain(upload.name)}**")
        cols = st.columns([1, 1, 2])
        for column, image, caption in (
            (cols[0], encoding.image, "as the model sees it"),
            (cols[1], encoding.reconstruction, "reconstruction"),
        ):
            column.image(upscale(to_uint8(image)[0].squeeze()), caption=caption, width="stretch", output_format="PNG")
        dims = [f"z{i}" for i in range(len(encoding.mean))]
        figure = go.Figure(
            go.Bar(
                x=dims,
                y=encoding.mean,
                error_y=dict(type="data", array=encoding.stddev, visible=True),
                marker_color="#4c78a8",
            )
        )
        figure.update_layout(
            height=260,
            margin=dict(l=10, r=10, t=30, b=10),
            title="mu ± sigma per latent dimension",
            yaxis_title="z",
            showlegend=False,
        )
        chrome.chart(figure, f"recon_bars_{upload.file_id}", cols[2])
        st.image(
            png_bytes(encoding.samples, nrow=6, min_cell=56),
            caption="six samples z ~ q(z|x), decoded: what the encoder is unsure about varies",
            width="content",
            output_format="PNG",
        )
        st.download_button(
            "Download input, reconstruction and samples (PNG)",
            lambda encoding=encoding: png_bytes(encoding.strip(), nrow=8, min_cell=56),
            f"{upload.name.rsplit('.', 1)[0]}-reconstruction.png",
            "image/png",
            key=f"recon_download_{upload.file_id}",
            on_click="ignore",
        )
        said, far = cached.typicality_of(checkpoint, x, label)
        if far:
            st.warning(safety.plain(said))
        elif said:
            st.caption(safety.plain(said))
        if encoding.unusual:
            st.info(
                f"This image's code is far from where the prior puts codes: its mean lies {encoding.distance:.1f} from the "
                f"origin, where draws from the prior N(0, I) in {len(encoding.mean)} dimensions lie about "
                f"{math.sqrt(len(encoding.mean)):.1f} away (and almost never 3 times that). It looks unlike the training data."
            )

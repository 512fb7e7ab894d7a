"""Latent diffusion: a photo through the VAE of a latent diffusion model (diffusers' AutoencoderKL),
what it gives back and what its spatial latent holds."""

import streamlit as st

from vae_explorer.app import chrome, links, safety, spatial
from vae_explorer.app.live import latent_painter, pending_dabs
from vae_explorer.app.spatial import picture
from vae_explorer.data.uploads import ImageError, photo_image
from vae_explorer.errors import VaeExplorerError

# Every picture as PNG: a JPEG would add its own errors to a page about reconstruction errors.
with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    st.set_page_config(page_title="Latent diffusion · vae-explorer", page_icon="🧭", layout="wide")
    chrome.presentation_toggle()
    st.title("Latent diffusion")
    st.caption(
        "Stable Diffusion and its successors diffuse in the latent space of a VAE: a photo becomes a few channels "
        "at 1/8 of its side, and the decoder turns them back into pixels. Upload a photo to see what the VAE keeps."
    )
    offered = spatial.offered_vaes()
    if not offered:
        st.info(
            "No spatial VAE is offered on this server; whoever runs it can train one (`vae-explorer train --config "
            "photos_spatial`) or start the app with `vae-explorer app --diffusers-root DIR`, DIR holding diffusers "
            "VAE folders (a pipeline's vae/ folder)."
        )
        st.stop()
    linked_vae = st.query_params.get("ld_vae")  # a shared link's VAE, by name
    if linked_vae and "ld_vae" not in st.session_state:
        named = [label for label in offered if label.split("  ")[0] == linked_vae]
        if named:
            st.session_state["ld_vae"] = named[0]
        else:
            st.warning(
                f"This link asks for a VAE called {safety.plain(''.join(filter(str.isprintable, linked_vae[:60])))}, which "
                "this server does not offer; pick one below."
            )
    name = st.selectbox("VAE", list(offered), key="ld_vae")  # option text is shown as typed, never as markdown
    folder = offered[name]
    try:
        vae = spatial.load(folder)
        tiled = bool(spatial.tiles(vae)) and st.toggle(
            "Tiled: encode and decode in overlapping tiles",
            key="ld_tiled",
            help=f"diffusers' tiling: tiles of {spatial.tiles(vae)} pixels, a quarter overlapping and blended, so the "
            "memory is one tile's and photos up to 1024 x 1024 pixels go through; the seams can show.",
        )
        which = spatial.chosen(folder, tiled)
        vae = spatial.load(which)
    except VaeExplorerError as exc:
        st.error(safety.say(exc))
        st.stop()
    st.caption(spatial.describe(name, vae))
    most = spatial.PAGE_TILED_MAX_PIXELS if tiled else spatial.PAGE_MAX_PIXELS

    upload = st.file_uploader(
        f"A photo (PNG, JPEG, WebP; up to {int(most**0.5)} x {int(most**0.5)} pixels, or as many pixels in another shape)",
        type=["png", "jpg", "jpeg", "webp", "bmp"],
        key="ld_photo",
    )
    if upload is None and st.query_params.get("ld_z"):  # a shared latent: decoded, until a photo is uploaded
        linked, said = links.latent_from_link(st.query_params["ld_z"], vae.latent_channels, name.split("  ")[0])
        if said:
            st.warning(said)
        else:
            link_digest = spatial.digest(st.query_params["ld_z"].encode())
            shared = st.columns([2, 3])
            shared[0].image(
                picture(spatial.decode_linked(which, link_digest, linked)),
                caption=f"the latent this link carries ({' x '.join(map(str, linked.shape))}), decoded",
                output_format="PNG",
            )
            shared[1].image(
                spatial.channels_png(linked), caption="its channels: −3 black, 0 grey, +3 white", output_format="PNG"
            )
            st.info("Upload a photo of your own to see it through the VAE.")
        st.stop()
    if upload is None:
        st.info("Upload a photo to see it through the VAE.")
        st.stop()
    data = upload.getvalue()
    try:
        photo = photo_image(data, vae.factor, upload.name, max_pixels=most)
    except ImageError as exc:
        st.error(safety.say(exc))
        st.stop()
    digest = spatial.digest(data)
    result = spatial.reconstruction(which, digest, photo)
    c, h, w = result["mean"].shape

    st.subheader("What the VAE gives back")
    figures = st.columns(3)
    figures[0].image(
        picture(result["photo"]), caption=f"the photo, {photo.shape[2]}x{photo.shape[1]}", output_format="PNG"
    )
    figures[1].image(
        picture(result["reconstruction"]),
        caption="its reconstruction, decoded from the latent's mean",
        output_format="PNG",
    )
    figures[2].image(
        spatial.error_picture(result["error"]),
        caption="the error per pixel (x4: white is 1/4)",
        output_format="PNG",
    )
    numbers = st.columns(3)
    numbers[0].metric("PSNR", f"{result['psnr']:.2f} dB")
    numbers[1].metric("SSIM", f"{result['ssim']:.4f}")
    numbers[2].metric("Latent", f"{c} x {h} x {w}")
    st.caption(
        f"The photo's {photo.shape[1] * photo.shape[2] * 3:,} numbers became {c * h * w:,} "
        f"({photo.shape[1] * photo.shape[2] * 3 / (c * h * w):.0f} times fewer)."
    )

    st.subheader("The latent, channel by channel")
    left, right = st.columns([3, 1])
    left.image(
        spatial.channels_png(result["mean"]),
        caption="each channel of the latent's mean: −3 black, 0 grey, +3 white",
        output_format="PNG",
    )
    right.image(
        picture(result["preview"]),
        width=chrome.px(200),
        caption="a colour preview: the channels mapped to RGB by a least-squares fit to this photo",
        output_format="PNG",
    )
    st.table(
        {
            "channel": [f"c{k}" for k in range(c)],
            "mean": [f"{v:+.2f}" for v in result["channel_mean"]],
            "standard deviation": [f"{v:.2f}" for v in result["channel_std"]],
        }
    )
    st.write(
        f"A diffusion model expects latents of about unit variance. Times this VAE's scaling factor ({vae.scaling_factor:g}), "
        f"this photo's latent has a standard deviation of {vae.scaling_factor / result['unit_scale']:.2f}; "
        f"the factor that would make it exactly 1 for this photo is {result['unit_scale']:.4f}."
    )

    st.subheader("What a diffusion model hands the decoder")
    sigma = st.slider("Noise added to the latent, σ", 0.0, 2.0, 0.0, 0.1, key="ld_sigma")
    noisy = spatial.decode_noisy(which, digest, result["mean"], float(sigma))
    columns = st.columns(2)
    columns[0].image(
        picture(noisy), caption=f"the latent's mean + {sigma:.1f} × N(0, I) noise, decoded", output_format="PNG"
    )
    prior = spatial.decode_prior(which, (c, h, w), 0)
    columns[1].image(picture(prior), caption="a draw z ~ N(0, I) of the same shape, decoded", output_format="PNG")
    st.write(
        "Halfway through sampling, a diffusion model's latent is still partly noise, and the decoder paints what it "
        "can of it. A draw from N(0, I) decodes to texture, not a picture: a photo's latent is smooth (in this one, "
        f"neighbouring positions correlate at {result['neighbours']:.2f}; in a draw from N(0, I), at about 0), so the "
        "decoder was never shown anything like the draw. That is what the diffusion model is for: it carries noise "
        "to where photos' latents lie."
    )
    st.caption("These pictures are decoded on the server, one request per slider value.")

    st.subheader("Two VAEs on your photos")
    others = [n for n in offered if n != name]
    if not others:
        st.info("Only one VAE is offered on this server, so there is none to compare it with.")
    else:
        second_name = st.selectbox("Compare it with", others, key="ld_vae_b")
        uploads = st.file_uploader(
            f"Photos to put through both (up to {spatial.MAX_COMPARED}, each up to 512 x 512 pixels)",
            type=["png", "jpg", "jpeg", "webp", "bmp"],
            accept_multiple_files=True,
            key="ld_set",
        )
        if not uploads:
            st.info("Upload a few photos to see which of the two VAEs gives each back better.")
        else:
            try:
                compared = spatial.comparison(folder, offered[second_name], uploads)
            except VaeExplorerError as exc:
                st.error(safety.say(exc))
                compared = None
            if compared and compared["skipped"]:
                st.warning("Left out: " + "; ".join(compared["skipped"]) + ".")
            if compared and compared["rows"]:
                first_label, second_label = (safety.plain(n.split("  ")[0]) for n in (name, second_name))
                rows = compared["rows"]
                better = sum(r["psnr"][1] > r["psnr"][0] for r in rows)
                summary = st.columns(3)
                summary[0].metric(f"Median PSNR, {first_label}", f"{compared['median_psnr'][0]:.2f} dB")
                summary[1].metric(f"Median PSNR, {second_label}", f"{compared['median_psnr'][1]:.2f} dB")
                summary[2].metric(f"{second_label} higher on", f"{better} of {len(rows)}")
                st.table(
                    {
                        "photo": [safety.plain(r["name"]) for r in rows],  # cells are markdown
                        f"PSNR {first_label}": [f"{r['psnr'][0]:.2f}" for r in rows],
                        f"PSNR {second_label}": [f"{r['psnr'][1]:.2f}" for r in rows],
                        f"SSIM {first_label}": [f"{r['ssim'][0]:.4f}" for r in rows],
                        f"SSIM {second_label}": [f"{r['ssim'][1]:.4f}" for r in rows],
                    }
                )
                st.caption(
                    f"Each photo cropped to multiples of {compared['multiple']} pixels, so both VAEs see the same "
                    f"pixels; {compared['seconds'][0]:.2f} s a photo through {first_label} and "
                    f"{compared['seconds'][1]:.2f} s through {second_label} on this server, at "
                    f"{compared['pixels']:,.0f} pixels a photo on average."
                )
                st.markdown("**Furthest from their reconstruction** (by the lower of the two PSNRs)")
                for photo_name, original, first_picture, second_picture in compared["gallery"]:
                    gallery = st.columns(3)
                    gallery[0].image(original, caption=safety.plain(photo_name), output_format="PNG")
                    gallery[1].image(first_picture, caption=f"through {first_label}", output_format="PNG")
                    gallery[2].image(second_picture, caption=f"through {second_label}", output_format="PNG")

    st.subheader("Between two photos")
    other = st.file_uploader(
        "A second photo (resized to the first one's size)", type=["png", "jpg", "jpeg", "webp", "bmp"], key="ld_other"
    )
    size, second = (photo.shape[2], photo.shape[1]), None
    if other is None:
        st.info("Upload a second photo to walk from the first one's latent to its latent, and to copy from it below.")
    else:
        try:
            second = photo_image(other.getvalue(), vae.factor, other.name, max_pixels=most, size=size)
        except ImageError as exc:
            st.error(safety.say(exc))
    if second is not None:
        other_digest = f"{spatial.digest(other.getvalue())}-{size[0]}x{size[1]}"
        result_b = spatial.reconstruction(which, other_digest, second)
        controls = st.columns(2)
        t = controls[0].slider("From the first photo (0) to the second (1), t", 0.0, 1.0, 0.5, 0.05, key="ld_t")
        method = controls[1].radio("Path", ["linear", "slerp"], key="ld_path", horizontal=True)
        between = spatial.decode_between(which, (digest, other_digest), result["mean"], result_b["mean"], t, method)
        walk = st.columns(3)
        walk[0].image(
            picture(result["reconstruction"]), caption="the first photo's reconstruction", output_format="PNG"
        )
        walk[1].image(picture(between), caption=f"t = {t:.2f} of the way ({method}), decoded", output_format="PNG")
        walk[2].image(
            picture(result_b["reconstruction"]), caption="the second photo's reconstruction", output_format="PNG"
        )
        st.caption(
            "Each latent position is interpolated on its own: linear mixes the two latents; slerp follows the great "
            "circle between each position's two channel vectors, keeping their length."
        )

        st.subheader("A piece of one latent in another")
        box = st.columns(4)
        top = box[0].slider("Top (latent rows)", 0, h - 1, h // 4, key="ld_top")
        left_at = box[1].slider("Left (latent columns)", 0, w - 1, w // 4, key="ld_left")
        tall = box[2].slider("Height", 1, h - top, max(1, min(h - top, h // 2)), key="ld_tall")
        wide = box[3].slider("Width", 1, w - left_at, max(1, min(w - left_at, w // 2)), key="ld_wide")
        pasted = spatial.decode_pasted(
            which, (digest, other_digest), result["mean"], result_b["mean"], (top, left_at, tall, wide)
        )
        patch = st.columns(2)
        patch[0].image(
            picture(pasted),
            caption=f"the first photo's latent with rows {top}-{top + tall - 1}, columns {left_at}-{left_at + wide - 1} "
            "of the second's, decoded",
            output_format="PNG",
        )
        f = vae.factor
        outside = spatial.changed_outside(result["reconstruction"], pasted, (top, left_at, tall, wide), f)
        patch[1].write(
            f"One latent position covers {f} x {f} pixels, but the decoder's convolutions mix neighbouring positions: "
            f"{100 * outside:.1f}% of the pixels outside the box differ from the first photo's reconstruction by more "
            "than 2 levels. The piece is painted into its surroundings, not cut out of the other picture."
        )

    st.subheader("Paint on the latent")
    st.write(
        "Pick a channel and paint on the picture or on the channel itself: the brush adds to that channel around "
        "the pointer (a negative amount subtracts). What the decoder makes of it shows what the channel carries. "
        "With a second photo above, the brush can also copy its latent into this one as you paint."
    )
    source = result_b["mean"] if second is not None else None  # what the copying brush takes from
    painted_digest = digest if source is None else f"{digest}+{other_digest}"
    version = f"{spatial.digest(painted_digest.encode())[:16]}-{spatial.digest(repr(which).encode())[:12]}"
    dabs, painted_seq = pending_dabs("ld_paint", version, result["mean"].shape, copying=source is not None)
    painted = (
        spatial.decode_painted(which, painted_digest, result["mean"], tuple(dabs), source)
        if dabs
        else result["reconstruction"]
    )
    live, where = spatial.painter_decoder("ld_paint", folder, vae)
    latent_painter(
        "ld_paint",
        result["mean"],
        version,
        vae.factor,
        spatial.reach(which),
        picture(painted),
        dabs or [],
        painted_seq,
        live,
        picture_px=chrome.px(320),
        source=source,
    )
    st.caption(where)
    if st.button("Put this latent in the address bar, to share it", key="ld_share"):
        link = links.latent_to_link(spatial.painted_latent(result["mean"], dabs or [], source))
        if link is None:
            st.info(
                f"This latent has {c * h * w:,} values; a link carries up to {links.MAX_LINKED_VALUES:,}, so crop the "
                "photo to share its latent."
            )
        else:
            st.query_params["ld_vae"] = name.split("  ")[0]
            st.query_params["ld_z"] = link
            st.caption("The address bar now holds this VAE and this latent, painted as it is: copy it to share them.")

"""vae-explorer: the home page. Pick a model in the sidebar; each page explores it one way."""

import streamlit as st

from vae_explorer.app import cached, catalog, chrome, safety

with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    st.set_page_config(page_title="vae-explorer", page_icon="🧭", layout="wide")

    checkpoint = chrome.sidebar()
    config = checkpoint.config
    model_config = config.model

    st.title("vae-explorer")
    st.write(
        "See inside a **Variational Autoencoder** (Kingma & Welling, 2013): an encoder maps each image to a "
        "Gaussian q(z|x) over a small latent space, a decoder maps any point z back to an image, and training "
        "trades reconstruction against keeping q(z|x) close to the prior N(0, I)."
    )

    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader(f"Model: {safety.plain(checkpoint.name)}")
        layers = model_config.hidden_sizes if model_config.architecture == "mlp" else model_config.channels
        kind = "conditional VAE" if model_config.conditional else ("beta-VAE" if config.train.beta != 1 else "VAE")
        if model_config.prior == "vamp":
            kind += f" with a VampPrior of {model_config.pseudo_inputs} pseudo-inputs"
        if model_config.top_latent_dim:
            kind = f"two-level {kind} (z2 of {model_config.top_latent_dim} above z)"
        if config.train.objective == "iwae":
            kind += f", trained on the IWAE bound (k = {config.train.iwae_samples})"
        if config.train.free_bits:
            kind += f", free bits {config.train.free_bits:g} nats"
        c, h, w = model_config.image_shape
        imported = model_config.architecture == "onnx"
        st.markdown(
            (
                f"- **VAE imported as ONNX graphs** (trained elsewhere; run here with onnxruntime), latent dimension "
                f"**{model_config.latent_dim}**, {checkpoint.model.num_parameters():,} weights\n"
                if imported
                else f"- **{kind}**, {model_config.architecture.upper()} {layers}, "
                f"latent dimension **{model_config.latent_dim}**, "
                f"{checkpoint.model.num_parameters():,} parameters\n"
            )
            + f"- data: **{safety.dataset_name(config.data.dataset)}**, {w}x{h} {'greyscale' if c == 1 else 'colour'} images, "
            f"{len(catalog.class_names(checkpoint))} classes\n"
            + f"- {safety.plain(checkpoint.model.describe_likelihood())}"
            + ("" if imported else f"; beta = {config.train.beta:g}; trained {len(checkpoint.history)} epochs")
        )
        metrics = checkpoint.metrics
        if metrics:
            cols = st.columns(3) + st.columns(
                3
            )  # two rows: five in one row cut their numbers short at 1280 px ("23.…")
            cols[0].metric(
                "neg-ELBO",
                f"{metrics['neg_elbo']:.2f}",
                help="Test set: reconstruction + KL, nats per image (lower is better).",
            )
            cols[1].metric("recon", f"{metrics['recon']:.2f}", help="-log p(x|z), nats per image.")
            cols[2].metric("KL", f"{metrics['kl']:.2f}", help="KL(q(z|x) || p(z)), nats per image.")
            if "iwae_nll" in metrics:
                cols[3].metric(
                    f"IWAE, k={metrics['iwae_k']}",
                    f"{metrics['iwae_nll']:.2f}",
                    help="Importance-weighted bound on -log p(x) (Burda et al.): tighter than the ELBO.",
                )
            if "fid" in metrics:
                cols[4].metric(
                    "FID",
                    f"{metrics['fid']:.1f}",
                    help=f"Fréchet distance of {metrics['fid_n']:,} samples to as many test "
                    f"images in a small classifier's features (lower is better; real images score "
                    f"{metrics['fid_floor']:.1f}). Compare models on the Evaluate page.",
                )
            st.caption(
                f"On the test set ({metrics.get('n_test', 0):,} images), in nats per image; lower is better."
                + (
                    f" {metrics['active_units']} of {model_config.latent_dim} latent dimensions are active (their "
                    "posterior mean varies across the test set)."
                    if "active_units" in metrics
                    else ""
                )
            )
        elif checkpoint.training.get("status") == "running" and not checkpoint.interrupted:
            st.caption(
                f"Still training: epoch {checkpoint.training.get('epochs_done')} of {checkpoint.training.get('target_epochs')} "
                "is saved; its test metrics come when the training ends."
            )
        elif checkpoint.interrupted:
            st.caption(
                f"Its training was interrupted after epoch {checkpoint.training.get('epochs_done')} of "
                f"{checkpoint.training.get('target_epochs')}; resume it on the Train page."
            )
        else:
            st.caption("No test metrics yet: the Evaluate page computes them.")
        for note in checkpoint.notes:  # what was left out of its history or metrics, and why
            st.caption(safety.plain(note))

    with right:
        st.subheader("Samples from the prior")
        seed = st.session_state.get("home_seed", 0)
        classes = len(catalog.class_names(checkpoint))
        nrow = classes if model_config.conditional else 8  # conditional: one column per class
        count = nrow * (3 if model_config.conditional else 4)
        st.image(
            cached.prior_samples_png(checkpoint, count, nrow, seed, 48),
            width="stretch",
            caption=(
                "z ~ N(0, I), decoded"
                if checkpoint.model.standard_prior
                else f"z from {catalog.prior_name(checkpoint)}, decoded"
            )
            + (": each column one class" if model_config.conditional else ""),
            output_format="PNG",
        )
        actions = st.columns(2)
        actions[1].download_button(
            "Download (PNG)",
            lambda: cached.prior_samples_png(checkpoint, count, nrow, seed, 56),
            "samples.png",
            "image/png",
            key="home_download",
            on_click="ignore",
        )  # made when clicked
        if actions[0].button("New samples", key="home_new_samples"):
            st.session_state["home_seed"] = seed + 1
            st.rerun()

    st.subheader("Pages")
    st.markdown(
        "- **Reconstruct**: test images beside their reconstructions; upload your own drawing and see how the model "
        "encodes it (mu and sigma per dimension) and what it decodes.\n"
        "- **Generate**: one slider per latent dimension; the picture follows as you drag. Random samples, the 2-D "
        "manifold, class choice for conditional models.\n"
        "- **Latent map**: the encoded images (the test set, or all of them) as a 2-D map (PCA, t-SNE or UMAP) coloured by "
        "class; point at it to see the place decoded, click a dot to see its image.\n"
        "- **Interpolate**: walk in a straight line and along a great circle between two images; latent arithmetic.\n"
        "- **Traverse**: vary one latent dimension at a time from -3 to +3 and watch what it controls.\n"
        "- **Learn**: the ELBO, the reparameterization trick, what beta does and posterior collapse, "
        "each next to something to touch.\n"
        "- **Train**: train your own model live (every hyperparameter, live curves, Stop), or sweep beta for the "
        "rate-distortion curve.\n"
        "- **Evaluate**: checkpoints side by side: ELBO, IWAE bound, active units, KL per dimension, sample quality (FID), "
        "disentanglement on shapes.\n"
        "- **Compare**: two models driven by the same z, the same image, the same walk and the same traversal, side by side.\n"
        "- **Latent diffusion**: a photo through the VAE of a latent diffusion model (Stable Diffusion's and its "
        "successors'), its spatial latent channel by channel, and what noise in that latent decodes to."
    )

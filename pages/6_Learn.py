"""Learn: the VAE explained for a class, each idea next to something to touch."""

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vae_explorer.app import cached, catalog, chrome, safety
from vae_explorer.app.figures import dimension_history_figure, has_dimension_history, kl_bars
from vae_explorer.app.replay import epoch_replay
from vae_explorer.app.sentences import elbo_sum, iwae_comparison
from vae_explorer.images import png_bytes
from vae_explorer.latent import sample_prior, traverse, vamp_components
from vae_explorer.models import kl_to_prior

with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    checkpoint = chrome.page(
        "Learn", "Kingma & Welling, *Auto-Encoding Variational Bayes*, ICLR 2014, arXiv:1312.6114."
    )

    st.header("1. The objective: the evidence lower bound")
    st.write(
        "We want a model p(x) = ∫ p(x|z) p(z) dz of images x, with a simple prior p(z) = N(0, I) over a small latent "
        "space and a decoder network for p(x|z). The integral is intractable, so an encoder network q(z|x) guesses which "
        "z could have produced x, and training maximises a lower bound on log p(x):"
    )
    st.latex(
        r"\log p(x) \;\ge\; \underbrace{\mathbb{E}_{q(z|x)}\big[\log p(x\mid z)\big]}_{\text{reconstruction}}"
        r"\;-\;\underbrace{\mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)}_{\text{rate}} \;=\; \mathrm{ELBO}(x)"
    )
    st.markdown(
        "- **Reconstruction**: decode a z drawn from q(z|x) and score how likely the original image is under p(x|z). "
        "Alone, it would let the encoder give every image its own far-away, pin-sharp code.\n"
        "- **KL**: how far q(z|x) is from the prior, in nats: the information the code carries about x. It pulls every "
        "q(z|x) towards N(0, I), so codes overlap, the space has no holes, and any z from the prior decodes to a "
        "plausible image.\n"
        "- The gap between log p(x) and the ELBO is KL(q(z|x) ‖ p(z|x)): how wrong the encoder's guess is. The IWAE bound on the "
        "Home page averages several guesses and closes part of that gap."
    )
    metrics = checkpoint.metrics
    if elbo_sum(metrics):
        st.info(
            f"For **{safety.plain(checkpoint.name)}** on its test set: {elbo_sum(metrics)}"
            + (f"; the IWAE bound is {metrics['iwae_nll']:.2f}." if "iwae_nll" in metrics else ".")
        )
    st.write(
        "For a Gaussian q(z|x) = N(μ, σ²) and the N(0, I) prior the KL has a closed form (the paper's appendix B):"
    )
    st.latex(r"\mathrm{KL} = -\tfrac12 \sum_{j=1}^{d} \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)")

    st.header("2. The reparameterization trick")
    st.write(
        "Sampling z ~ q(z|x) is random, and gradients cannot flow through a random draw. Writing the same draw as a "
        "deterministic function of μ, σ and outside noise ε moves the randomness out of the way, so the loss can be "
        "differentiated with respect to μ and σ (and so the encoder's weights):"
    )
    st.latex(r"z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I)")
    controls = st.columns(3)
    mu = controls[0].slider("μ (from the encoder)", -3.0, 3.0, 1.0, 0.1, key="learn_mu")
    sigma = controls[1].slider("σ (from the encoder)", 0.1, 2.0, 0.6, 0.05, key="learn_sigma")
    eps = controls[2].slider("ε (noise, drawn from N(0, 1))", -3.0, 3.0, 0.5, 0.1, key="learn_eps")
    z = mu + sigma * eps
    grid = np.linspace(-5, 5, 400)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=grid,
            y=np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi),
            name="prior N(0, 1)",
            line=dict(dash="dot", color="#888"),
        )
    )
    figure.add_trace(
        go.Scatter(
            x=grid,
            y=np.exp(-0.5 * ((grid - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)),
            name="q(z|x) = N(μ, σ²)",
            line=dict(color="#4c78a8"),
        )
    )
    figure.add_vline(x=z, line_color="#e45756", annotation_text=f"z = {mu:.1f} + {sigma:.2f} × {eps:.1f} = {z:.2f}")
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="z", yaxis_title="density")
    chrome.chart(figure, "learn_reparam")
    kl = kl_to_prior(mu, sigma)
    st.caption(
        f"∂z/∂μ = 1 and ∂z/∂σ = ε = {eps:.1f}: both are plain numbers, so backpropagation works. "
        f"KL of this q from the prior: {kl:.2f} nats (zero only at μ = 0, σ = 1)."
    )

    st.header("3. What β does")
    st.write(
        "A β-VAE (Higgins et al., 2017) weights the KL by β. β > 1 buys a smoother, more factorised latent space with "
        "blurrier reconstructions; β < 1 the opposite. Compare two shipped models, the same network trained on the "
        "same shapes with β = 1 and β = 4:"
    )
    refs = {Path(r.path).name: r.path for r in catalog.available_models()}
    names = list(refs)
    pick = st.columns(2)
    for column, default in zip(pick, ["shapes-vae", "shapes-betavae"]):  # the same network and data, β = 1 and β = 4
        with column:
            name = st.selectbox(
                "Model", names, index=names.index(default) if default in names else 0, key=f"learn_beta_{default}"
            )
            other = catalog.load(refs[name])
            kl_dims, active = cached.latent_stats(other)
            st.markdown(
                f"**{name}**: β = {other.config.train.beta:g}, {int(active.sum())} of {other.model.latent_dim} dimensions active"
                + (f", recon {other.metrics['recon']:.1f}, KL {other.metrics['kl']:.1f} nats" if other.metrics else "")
            )
            st.image(
                png_bytes(sample_prior(other.model, 16, seed=0), nrow=8, min_cell=40),
                caption="samples from the prior",
                width="stretch",
                output_format="PNG",
            )
            top = [int(i) for i in np.argsort(-kl_dims)[:4]]
            st.image(
                png_bytes(traverse(other.model, top, 8), nrow=8, min_cell=40),
                caption="traversals of the 4 dimensions with the most KL, -3 to +3",
                width="stretch",
                output_format="PNG",
            )

    st.header("4. Posterior collapse")
    st.write(
        "If the decoder can do well without the code, the cheapest way to lower the loss is to make q(z|x) equal the prior "
        "for some (or all) dimensions: their KL drops to zero and they carry no information. Such dimensions are "
        "*collapsed* (inactive): moving them changes nothing. Strong decoders, a large β and a KL that is switched on "
        "too early all encourage it; a KL warm-up (β rising from 0) and a smaller β discourage it."
    )
    kl_dims, active = cached.latent_stats(checkpoint)
    bars = kl_bars(kl_dims, active, f"KL per dimension of {safety.label(checkpoint.name)}", 280)
    chrome.chart(bars, "learn_collapse")
    st.caption(
        f"{int(active.sum())} of {len(active)} dimensions are active. Try the Traverse page on a collapsed one: its row does "
        "not change."
    )
    if has_dimension_history(checkpoint.history):
        chrome.chart(dimension_history_figure(checkpoint.history), "learn_dims_history")
        st.caption(
            f"How {safety.plain(checkpoint.name)}'s dimensions learned, epoch by epoch: a row that fades to zero is a dimension "
            "collapsing; one that lights up later is waking up (a KL warm-up gives more of them time to)."
        )
    frames = cached.epoch_frames(checkpoint)
    if len(frames) >= 2:
        st.subheader(f"How {safety.plain(checkpoint.name)} learned, epoch by epoch")
        epoch_replay(frames, catalog.class_names(checkpoint), "learn")

    st.header("5. Beyond the plain ELBO")
    st.write(
        "Four changes to the recipe, each shipped as digits-mlp's network trained on the same digits, so they can be "
        "compared number for number (all on the test set, nats per image; FID: lower is better):"
    )
    KINDS = {  # shipped checkpoint -> what it changes
        "digits-mlp": "the plain VAE: ELBO, N(0, I) prior",
        "digits-iwae": "trained on the IWAE bound with k = 5 samples (Burda et al. 2016)",
        "digits-free-bits": "free bits: no dimension's KL is penalised below 0.5 nats (Kingma et al. 2016)",
        "digits-vamp": "VampPrior: p(z) is a mixture of the posteriors of 50 learned pseudo-images (Tomczak & Welling 2018)",
        "digits-two-level": "two levels: z2 ~ N(0, I) above z, with p(z|z2) learned (a hierarchical VAE)",
    }
    shipped = {name: catalog.load(refs[name]) for name in KINDS if name in refs}
    if shipped:
        st.table(
            {
                "model": list(shipped),
                "what changes": [KINDS[n] for n in shipped],
                "neg-ELBO": [f"{c.metrics.get('neg_elbo', float('nan')):.2f}" for c in shipped.values()],
                "IWAE bound (k=100)": [f"{c.metrics.get('iwae_nll', float('nan')):.2f}" for c in shipped.values()],
                "active units": [
                    f"{c.metrics.get('active_units', '?')} of {c.model.latent_dim}" for c in shipped.values()
                ],
                "FID": [f"{c.metrics['fid']:.1f}" if "fid" in c.metrics else "—" for c in shipped.values()],
            },
            hide_index=True,
        )
    iwae_said = (
        iwae_comparison(shipped["digits-iwae"].metrics, shipped["digits-mlp"].metrics)
        if {"digits-iwae", "digits-mlp"} <= set(shipped)
        else iwae_comparison({}, {})
    )
    st.markdown(
        "- **IWAE**: the ELBO is the average of log-weights; the IWAE bound the log of their average over k samples, tighter "
        f"for every image. {iwae_said}\n"
        "- **Free bits** answer posterior collapse directly: below the floor a dimension's KL costs nothing extra, so the "
        "optimiser has no reason to switch it off, and every dimension stays in use.\n"
        "- **VampPrior**: instead of forcing every code towards one Gaussian, the prior is learned, as a mixture whose "
        "components are the encoder's posteriors of a few learned images (the pseudo-inputs, below).\n"
        "- **Two levels**: a second, smaller code z2 explains the first; p(z) becomes a learned, non-Gaussian density."
    )
    vamp = next((c for c in shipped.values() if c.config.model.prior == "vamp"), None)
    if checkpoint.config.model.prior == "vamp":
        vamp = checkpoint
    if vamp is not None:
        pseudo, centres = vamp_components(vamp.model, 16)
        left, right = st.columns(2)
        left.image(
            png_bytes(pseudo, nrow=8, min_cell=40),
            caption=f"{vamp.name}: its first 16 pseudo-inputs, as learned",
            width="stretch",
            output_format="PNG",
        )
        right.image(
            png_bytes(centres, nrow=8, min_cell=40),
            caption="the decode of each one's posterior mean: the centre of that component of p(z)",
            width="stretch",
            output_format="PNG",
        )

    st.header("Further reading")
    st.markdown(
        "- D. P. Kingma, M. Welling. *Auto-Encoding Variational Bayes*. ICLR 2014. arXiv:1312.6114.\n"
        "- Y. Burda, R. Grosse, R. Salakhutdinov. *Importance Weighted Autoencoders*. ICLR 2016. arXiv:1509.00519.\n"
        "- I. Higgins et al. *β-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework*. ICLR 2017.\n"
        "- R. T. Q. Chen et al. *Isolating Sources of Disentanglement in VAEs* (MIG). NeurIPS 2018. arXiv:1802.04942.\n"
        "- D. P. Kingma et al. *Improved Variational Inference with Inverse Autoregressive Flow* (free bits). NeurIPS 2016. "
        "arXiv:1606.04934.\n"
        "- J. M. Tomczak, M. Welling. *VAE with a VampPrior*. AISTATS 2018. arXiv:1705.07120."
    )

"""Learn: the VAE explained for a class, each idea next to something to touch."""

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vae_explorer.app import state
from vae_explorer.app.figures import dimension_history_figure, has_dimension_history
from vae_explorer.images import png_bytes
from vae_explorer.latent import sample_prior, traverse
from vae_explorer.models import kl_to_prior

checkpoint = state.page("Learn", "Kingma & Welling, *Auto-Encoding Variational Bayes*, ICLR 2014, arXiv:1312.6114.")

st.header("1. The objective: the evidence lower bound")
st.write("We want a model p(x) = ∫ p(x|z) p(z) dz of images x, with a simple prior p(z) = N(0, I) over a small latent "
         "space and a decoder network for p(x|z). The integral is intractable, so an encoder network q(z|x) guesses which "
         "z could have produced x, and training maximises a lower bound on log p(x):")
st.latex(r"\log p(x) \;\ge\; \underbrace{\mathbb{E}_{q(z|x)}\big[\log p(x\mid z)\big]}_{\text{reconstruction}}"
         r"\;-\;\underbrace{\mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)}_{\text{rate}} \;=\; \mathrm{ELBO}(x)")
st.markdown(
    "- **Reconstruction**: decode a z drawn from q(z|x) and score how likely the original image is under p(x|z). "
    "Alone, it would let the encoder give every image its own far-away, pin-sharp code.\n"
    "- **KL**: how far q(z|x) is from the prior, in nats: the information the code carries about x. It pulls every "
    "q(z|x) towards N(0, I), so codes overlap, the space has no holes, and any z from the prior decodes to a plausible image.\n"
    "- The gap between log p(x) and the ELBO is KL(q(z|x) ‖ p(z|x)): how wrong the encoder's guess is. The IWAE bound on the "
    "Home page averages several guesses and closes part of that gap."
)
metrics = checkpoint.metrics
if metrics:
    st.info(f"For **{checkpoint.name}** on its test set: reconstruction {metrics['recon']:.1f} + KL {metrics['kl']:.1f} = "
            f"{metrics['neg_elbo']:.1f} nats per image" + (f"; the IWAE bound is {metrics['iwae_nll']:.1f}." if "iwae_nll" in metrics else "."))
st.write("For a Gaussian q(z|x) = N(μ, σ²) and the N(0, I) prior the KL has a closed form (the paper's appendix B):")
st.latex(r"\mathrm{KL} = -\tfrac12 \sum_{j=1}^{d} \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)")

st.header("2. The reparameterization trick")
st.write("Sampling z ~ q(z|x) is random, and gradients cannot flow through a random draw. Writing the same draw as a "
         "deterministic function of μ, σ and outside noise ε moves the randomness out of the way, so the loss can be "
         "differentiated with respect to μ and σ (and so the encoder's weights):")
st.latex(r"z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I)")
controls = st.columns(3)
mu = controls[0].slider("μ (from the encoder)", -3.0, 3.0, 1.0, 0.1, key="learn_mu")
sigma = controls[1].slider("σ (from the encoder)", 0.1, 2.0, 0.6, 0.05, key="learn_sigma")
eps = controls[2].slider("ε (noise, drawn from N(0, 1))", -3.0, 3.0, 0.5, 0.1, key="learn_eps")
z = mu + sigma * eps
grid = np.linspace(-5, 5, 400)
figure = go.Figure()
figure.add_trace(go.Scatter(x=grid, y=np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), name="prior N(0, 1)", line=dict(dash="dot", color="#888")))
figure.add_trace(go.Scatter(x=grid, y=np.exp(-0.5 * ((grid - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)),
                            name="q(z|x) = N(μ, σ²)", line=dict(color="#4c78a8")))
figure.add_vline(x=z, line_color="#e45756", annotation_text=f"z = {mu:.1f} + {sigma:.2f} × {eps:.1f} = {z:.2f}")
figure.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="z", yaxis_title="density")
state.chart(figure, "learn_reparam")
kl = kl_to_prior(mu, sigma)
st.caption(f"∂z/∂μ = 1 and ∂z/∂σ = ε = {eps:.1f}: both are plain numbers, so backpropagation works. "
           f"KL of this q from the prior: {kl:.2f} nats (zero only at μ = 0, σ = 1).")

st.header("3. What β does")
st.write("A β-VAE (Higgins et al., 2017) weights the KL by β. β > 1 buys a smoother, more factorised latent space with "
         "blurrier reconstructions; β < 1 the opposite. Compare two shipped models:")
refs = {Path(r.path).name: r.path for r in state.available_models()}
names = list(refs)
pick = st.columns(2)
for column, default in zip(pick, ["fashion-mnist-conv", "shapes-betavae"]):
    with column:
        name = st.selectbox("Model", names, index=names.index(default) if default in names else 0, key=f"learn_beta_{default}")
        other = state.load(refs[name])
        kl_dims, active = state.latent_stats(refs[name], state.stamp(refs[name]))
        st.markdown(f"**{name}**: β = {other.config.train.beta:g}, {int(active.sum())} of {other.model.latent_dim} dimensions active"
                    + (f", recon {other.metrics['recon']:.1f}, KL {other.metrics['kl']:.1f} nats" if other.metrics else ""))
        st.image(png_bytes(sample_prior(other.model, 16, seed=0), nrow=8, min_cell=40), caption="samples from the prior",
                 width="stretch", output_format="PNG")
        top = [int(i) for i in np.argsort(-kl_dims)[:4]]
        st.image(png_bytes(traverse(other.model, top, 8), nrow=8, min_cell=40),
                 caption="traversals of the 4 dimensions with the most KL, -3 to +3", width="stretch", output_format="PNG")

st.header("4. Posterior collapse")
st.write("If the decoder can do well without the code, the cheapest way to lower the loss is to make q(z|x) equal the prior "
         "for some (or all) dimensions: their KL drops to zero and they carry no information. Such dimensions are "
         "*collapsed* (inactive): moving them changes nothing. Strong decoders, a large β and a KL that is switched on "
         "too early all encourage it; a KL warm-up (β rising from 0) and a smaller β discourage it.")
kl_dims, active = state.latent_stats(str(checkpoint.path), state.stamp(checkpoint.path))
order = np.argsort(-kl_dims)
bars = go.Figure(go.Bar(x=[f"z{i}" for i in order], y=kl_dims[order], marker_color=["#4c78a8" if active[i] else "#bab0ac" for i in order]))
bars.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), title=f"KL per dimension of {checkpoint.name} (grey: collapsed)",
                   yaxis_title="nats")
state.chart(bars, "learn_collapse")
st.caption(f"{int(active.sum())} of {len(active)} dimensions are active. Try the Traverse page on a grey one: its row does not change.")
if has_dimension_history(checkpoint.history):
    state.chart(dimension_history_figure(checkpoint.history), "learn_dims_history")
    st.caption(f"How {checkpoint.name}'s dimensions learned, epoch by epoch: a row that fades to zero is a dimension "
               "collapsing; one that lights up later is waking up (a KL warm-up gives more of them time to).")

st.header("Further reading")
st.markdown(
    "- D. P. Kingma, M. Welling. *Auto-Encoding Variational Bayes*. ICLR 2014. arXiv:1312.6114.\n"
    "- Y. Burda, R. Grosse, R. Salakhutdinov. *Importance Weighted Autoencoders*. ICLR 2016. arXiv:1509.00519.\n"
    "- I. Higgins et al. *β-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework*. ICLR 2017.\n"
    "- R. T. Q. Chen et al. *Isolating Sources of Disentanglement in VAEs* (MIG). NeurIPS 2018. arXiv:1802.04942."
)

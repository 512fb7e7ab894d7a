"""Evaluate: checkpoints side by side: the ELBO and its terms, the IWAE bound, active units, KL per
dimension, sample quality (Fréchet distance) and, on shapes, disentanglement."""

import json
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from vae_explorer.app import catalog, chrome, evaluations, safety

with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    current = chrome.page(
        "Evaluate",
        "Test-set metrics of any checkpoints side by side, per image in nats (lower is better "
        "unless said otherwise). Results are kept, so switching back is instant.",
    )
    refs = {Path(ref.path).name: ref for ref in catalog.available_models()}
    controls = st.columns([4, 1, 1])
    chosen = controls[0].multiselect(
        "Checkpoints", list(refs), default=[current.name], key="eval_models", format_func=lambda n: refs[n].label
    )
    k = controls[1].selectbox(
        "IWAE samples k",
        [1, 10, 50, 100, 500],
        index=3,
        key="eval_k",
        help="Importance samples per image for the IWAE bound; more is tighter and slower.",
    )
    test_images = controls[2].selectbox(
        "Test images",
        [500, 1000, 2000, 5000, None],
        index=1,
        key="eval_test_images",
        format_func=lambda n: "all" if n is None else f"first {n:,}",
    )
    if not chosen:
        st.info("Pick one or more checkpoints above.")
        st.stop()

    results, classifiers = {}, {}
    for name in chosen:
        checkpoint = catalog.load(refs[name].path)
        if catalog.dataset_of(checkpoint) is None:
            continue
        classifier = evaluations.feature_classifier(checkpoint)
        n = len(catalog.dataset_of(checkpoint).test_x)
        n = n if test_images is None else min(test_images, n)
        bar = (
            st.empty()
        )  # a first visit computes (a minute or two at most) with a bar; later ones find the figures kept

        def progress(fraction: float, what: str, name=name, n=n, bar=bar) -> None:
            bar.progress(
                min(max(fraction, 0.0), 1.0), text=f"Evaluating {safety.plain(name)} on {n:,} test images: {what}…"
            )

        results[name] = evaluations.evaluation(
            checkpoint, k, test_images, classifier[1]["key"] if classifier else None, classifier, progress
        )
        bar.empty()
        classifiers[name] = classifier[1] if classifier else None
        results[name] = (checkpoint, *results[name])
    if not results:
        st.stop()

    datasets = {checkpoint.config.data.dataset for checkpoint, _, _ in results.values()}
    if len(datasets) > 1:
        st.warning(
            f"These checkpoints were trained on different datasets "
            f"({', '.join(sorted(map(safety.dataset_name, datasets)))}): their numbers are not comparable."
        )

    # --- the table -----------------------------------------------------------------------------------
    def trained_with(metrics, checkpoint) -> str:
        """What the checkpoint was trained to minimise, in a few words."""
        model, train = checkpoint.config.model, checkpoint.config.train
        if model.architecture == "onnx":
            return "trained elsewhere (imported)"
        if train.objective == "iwae":
            return f"IWAE bound, k = {train.iwae_samples}"
        words = ["ELBO" if train.beta == 1 else f"β-ELBO, β = {train.beta:g}"]
        if train.free_bits > 0:
            words.append(f"free bits {train.free_bits:g} nats")
        if model.prior == "vamp":
            words.append(f"VampPrior ({model.pseudo_inputs} pseudo-inputs)")
        if model.top_latent_dim:
            words.append(f"two levels (z2 of {model.top_latent_dim})")
        return ", ".join(words)

    ROWS = [  # (label, metric key or function, format, what it means)
        (
            "trained with",
            trained_with,
            "{}",
            "the objective and prior of training (IWAE: Burda et al. 2016; free bits: "
            "Kingma et al. 2016; VampPrior: Tomczak & Welling 2018)",
        ),
        ("neg-ELBO", "neg_elbo", "{:.2f}", "reconstruction + KL: the bound that training lowers"),
        ("reconstruction", "recon", "{:.2f}", "−log p(x|z) with z ~ q(z|x)"),
        (
            "KL",
            "kl",
            "{:.2f}",
            'KL(q(z|x) ‖ p(z)): nats of information the code carries (the "rate" of rate-distortion '
            "theory; a one-sample estimate for a VampPrior or two levels)",
        ),
        (
            f"IWAE bound, k = {k}",
            "iwae_nll",
            "{:.2f}",
            "minus the IWAE bound L_k (the log of the average of k importance weights): "
            "still at least −log p(x), and closer to it than the neg-ELBO, so a tighter estimate of the model's fit",
        ),
        ("ELBO − IWAE gap", "elbo_iwae_gap", "{:.3f}", "mean over images; see the histogram below"),
        (
            "active units",
            lambda m, c: f"{m['active_units']} of {c.model.latent_dim}",
            "{}",
            "dimensions whose mean varies across images (variance > 0.01); the rest collapsed to the prior",
        ),
        (
            "FID (samples)",
            "fid",
            "{:.2f}",
            "Fréchet distance of prior samples to test images in the classifier's features",
        ),
        (
            "FID floor (train vs test)",
            "fid_floor",
            "{:.2f}",
            "the same between real images: what a perfect model scores with this many images",
        ),
        ("MIG ↑", "mig", "{:.3f}", "mutual information gap, 0 to 1 (Chen et al. 2018): higher is more disentangled"),
        ("FactorVAE score ↑", "factor_vae_score", "{:.3f}", "majority-vote accuracy, 0 to 1 (Kim & Mnih 2018)"),
        ("test images", "n_test", "{:,}", ""),
    ]
    table = {"metric": [], **{name: [] for name in results}, "meaning": []}
    for label, key, fmt, meaning in ROWS:
        values = {}
        for name, (checkpoint, metrics, _) in results.items():
            value = key(metrics, checkpoint) if callable(key) else metrics.get(key)
            values[name] = "—" if value is None else fmt.format(value)
        if all(v == "—" for v in values.values()):
            continue
        table["metric"].append(label)
        table["meaning"].append(meaning)
        for name, value in values.items():
            table[name].append(value)
    st.table(table, hide_index=True)  # a table wraps its cells: the "meaning" column is read, not scrolled
    differ = [
        f"{safety.plain(name)}: Home shows the figures saved with it ({saved['n_test']:,} test images, k = "
        f"{saved.get('iwae_k', '?')}), these are on {metrics['n_test']:,} with k = {k}"
        for name, (checkpoint, metrics, _) in results.items()
        if (saved := checkpoint.metrics).get("neg_elbo") is not None
        and (saved.get("n_test") != metrics["n_test"] or saved.get("iwae_k", k) != k)
    ]
    if differ:
        st.caption(
            "Why these can differ from Home's: " + "; ".join(differ) + '. Pick "all" test images (and k = 100) '
            "for the saved figures."
        )
    scored = {name: checkpoint.model.describe_likelihood() for name, (checkpoint, _, _) in results.items()}
    st.caption("  \n".join(f"{safety.plain(name)}: {safety.plain(said)}" for name, said in scored.items()))
    if not catalog.scored_alike(checkpoint.model for checkpoint, _, _ in results.values()):
        st.warning(
            "These models are scored with different likelihoods, so their neg-ELBO, reconstruction and IWAE "
            "figures are in different units and not comparable; KL, active units and FID are."
        )
    accuracies = {info["key"]: info for info in classifiers.values() if info}
    if accuracies:
        st.caption(
            "FID uses a small convolutional classifier trained once per dataset (`python -m vae_explorer "
            "train-classifier`); its test accuracy: "
            + ", ".join(f"{info['key'].rsplit('-', 1)[0]} {info['test_accuracy']:.1%}" for info in accuracies.values())
            + ". Scores from different classifiers are not comparable with each other or with Inception FIDs."
        )
    export = {name: metrics for name, (_, metrics, _) in results.items()}
    st.download_button(
        "Download these metrics (JSON)",
        json.dumps(export, indent=2),
        "metrics.json",
        "application/json",
        key="eval_download",
        on_click="ignore",
    )

    # --- KL per dimension and the gap ----------------------------------------------------------------
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("KL per latent dimension")
        figure = go.Figure()
        for name, (_, metrics, _) in results.items():
            figure.add_trace(
                go.Bar(
                    x=[f"z{i}" for i in range(len(metrics["kl_per_dim"]))],
                    y=metrics["kl_per_dim"],
                    name=safety.label(name),
                )
            )
        figure.update_layout(
            barmode="group",
            height=340,
            margin=dict(l=10, r=10, t=10, b=10),
            yaxis_title="nats per image",
            legend=dict(orientation="h", y=-0.2),
        )
        chrome.chart(figure, "eval_kl_chart")
        st.caption(
            "A dimension near 0 nats says nothing about the image: the encoder leaves it at the prior (collapsed). "
            "A β-VAE squeezes the information into fewer dimensions."
        )
    with right:
        st.subheader("Gap between the IWAE bound and the ELBO")
        figure = go.Figure()
        for name, (_, _, gaps) in results.items():
            figure.add_trace(go.Histogram(x=gaps, name=safety.label(name), opacity=0.6, nbinsx=40))
        figure.update_layout(
            barmode="overlay",
            height=340,
            margin=dict(l=10, r=10, t=10, b=10),
            xaxis_title=f"IWAE bound (k = {k}) − ELBO per image, nats",
            yaxis_title="images",
            legend=dict(orientation="h", y=-0.2),
        )
        chrome.chart(figure, "eval_gap_chart")
        st.caption(
            "For each image, log p(x) − ELBO = KL(q(z|x) ‖ p(z|x)): how far the encoder's Gaussian is from the true posterior. "
            f"The IWAE bound with k = {k} samples climbs part of the way up to log p(x), so its gap to the ELBO (computed from "
            "the same samples, never negative) is a lower bound on that KL. Images far to the right are those whose posterior "
            "the encoder fits worst: often unusual images, or a posterior with several modes that one Gaussian cannot cover. "
            "With k = 1 the two bounds coincide and the gap is 0."
        )

    shapes = {name: metrics for name, (_, metrics, _) in results.items() if "mig_per_factor" in metrics}
    if shapes:
        st.subheader("Disentanglement per factor (MIG)")
        figure = go.Figure()
        for name, metrics in shapes.items():
            figure.add_trace(
                go.Bar(
                    x=[safety.label(f) for f in metrics["mig_per_factor"]],
                    y=list(metrics["mig_per_factor"].values()),
                    name=safety.label(name),
                )
            )
        figure.update_layout(
            barmode="group",
            height=300,
            margin=dict(l=10, r=10, t=10, b=10),
            yaxis_title="MIG",
            legend=dict(orientation="h", y=-0.25),
        )
        chrome.chart(figure, "eval_mig_chart")
        st.caption(
            "For each true factor of the shapes set, the gap in mutual information between the two latent dimensions "
            "that share most with it, divided by the factor's entropy: 1 when exactly one dimension encodes it."
        )
    else:
        st.caption(
            "MIG and the FactorVAE score need a dataset with known generative factors: pick a checkpoint trained on shapes."
        )

"""Train: a form with every hyperparameter, training live in the background, and a beta sweep."""

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from vae_explorer.app import catalog, chrome, safety
from vae_explorer.app import train_form as form
from vae_explorer.app.figures import dimension_history_figure, has_dimension_history
from vae_explorer.app.live import CLASS_COLOURS, runtime_installed
from vae_explorer.app.replay import epoch_replay
from vae_explorer.app.train_form import field_widget
from vae_explorer.data import list_datasets
from vae_explorer.data.access import check_form_data, data_root
from vae_explorer.errors import VaeExplorerError
from vae_explorer.models import ARCHITECTURES, SPATIAL_ARCHITECTURES
from vae_explorer.runs.jobs import MAX_RUNNING, SweepJob, TrainingJob, find, register, run_folder

with safety.boundary():  # anything unexpected: one sentence on the page, the details in the server's log
    chrome.page(
        "Train",
        "Train your own VAE here. It trains in the background: you can watch it, stop it, or explore other "
        "pages meanwhile. It is saved after every epoch on this server and appears in every page's model picker.",
    )

    def watch(new_job) -> None:
        """This session follows `new_job`; its token goes in the URL, so a reload (a new session) follows it too."""
        st.session_state["train_job"] = new_job
        st.query_params["job"] = register(new_job)

    job = st.session_state.get("train_job")
    if job is None and "job" in st.query_params:  # a reloaded page: the training its URL follows
        job = find(st.query_params.get("job"))
        if job is None:
            del st.query_params["job"]
            st.info(
                "The training this page was following is no longer on this server (it was restarted); an unfinished "
                "run can be resumed below."
            )
        else:
            st.session_state["train_job"] = job
    busy = job is not None and not job.snapshot().finished

    # --- the form ------------------------------------------------------------------------------------
    presets = form.presets()
    form.ensure_defaults("digits_mlp")
    top = st.columns([2, 3])
    top[0].selectbox(
        "Start from",
        list(presets),
        key="train_preset",
        index=list(presets).index("digits_mlp"),
        on_change=lambda: form.load_preset(form.load_config(presets[st.session_state.train_preset])),
        help="Fills the form from one of the shipped YAML configs; then change what you like.",
    )
    datasets = {spec.name: where for spec, where in list_datasets() if spec.name != "folder:PATH"}
    folders = data_root() is not None  # image folders only under the folder whoever serves the app offers
    top[1].caption(
        f"Datasets on this machine: {', '.join(n for n, where in datasets.items() if where)}. "
        + (
            "A folder of images in this server's data folder works too: type folder:NAME as the dataset. "
            if folders
            else ""
        )
        + f"At most {MAX_RUNNING} trainings run at once on this server; others wait their turn."
    )

    with st.form("train_form"):
        data_col, model_col, output_col, train_col = st.columns(4, gap="medium")
        with data_col:
            st.markdown("**Data**")
            field_widget(
                st,
                "data",
                "dataset",
                "Dataset",
                "Pick one"
                + (
                    ", or type folder:NAME for a folder of images in this "
                    "server's data folder (one sub-folder per class, or flat)"
                    if folders
                    else ""
                ),
                suggestions=list(datasets),
                format_func=lambda n: n if datasets.get(n, True) else f"{n} (not on this machine)",
            )
            field_widget(
                st, "data", "max_train", "Use only the first N training images", "Empty: all of them. Small is quick."
            )
            field_widget(st, "data", "image_size", "Resize images to (pixels)", "Empty: the native size.")
            with st.expander("More data settings"):
                field_widget(st, "data", "max_test", "Use only the first N test images", "Empty: all of them.")
                field_widget(st, "data", "channels", "Channels (folder datasets)", "1 greyscale, 3 colour")
                field_widget(st, "data", "test_fraction", "Test share (digits, shapes, folders)")
                field_widget(st, "data", "split_seed", "Seed of the train/test split")
                field_widget(
                    st,
                    "data",
                    "data_dir",
                    "Folder searched first for dataset files",
                    "Empty: the usual places" + ("; or a folder in this server's data folder." if folders else "."),
                )
        with model_col:
            st.markdown("**Model**")
            field_widget(
                st,
                "model",
                "architecture",
                "Architecture",
                "mlp: dense layers; conv: stride-2 convolutions",
                suggestions=[name for name in ARCHITECTURES if name not in SPATIAL_ARCHITECTURES],
                accept_new_options=False,
            )
            field_widget(st, "model", "latent_dim", "Latent dimension", "Size of z (1 to 512)")
            field_widget(
                st,
                "model",
                "hidden_sizes",
                "Hidden layer sizes",
                "MLP widths (the decoder mirrors them), or the dense layers after a conv encoder; e.g. 256, 128",
            )
            field_widget(
                st, "model", "channels", "Conv channels", "Output channels of each stride-2 convolution; e.g. 32, 64"
            )
            field_widget(
                st,
                "model",
                "prior",
                "Prior p(z)",
                "normal: N(0, I); vamp: a VampPrior, a mixture over learned pseudo-images (Tomczak & Welling 2018)",
            )
            with st.expander("More model settings"):
                field_widget(
                    st, "model", "pseudo_inputs", "VampPrior: pseudo-inputs", "Mixture components of the VampPrior"
                )
                field_widget(
                    st,
                    "model",
                    "top_latent_dim",
                    "Second level: size of z2",
                    "0: one level. Above 0: a two-level hierarchical VAE with z2 ~ N(0, I) above z",
                )
        with output_col:
            st.markdown("**Decoder output**")
            field_widget(
                st,
                "model",
                "likelihood",
                "Likelihood p(x|z)",
                "bernoulli for images in [0, 1]; gaussian with a fixed or learned sigma",
            )
            field_widget(
                st, "model", "gaussian_sigma", "Gaussian sigma", "Fixed sigma, or the starting sigma when learned"
            )
            field_widget(st, "model", "activation", "Activation", "The nonlinearity between layers")
            field_widget(st, "model", "conditional", "Conditional on the class (CVAE)")
        with train_col:
            st.markdown("**Training**")
            field_widget(st, "train", "epochs", "Epochs")
            field_widget(st, "train", "beta", "β (KL weight)", "1: the plain VAE; above 1: a β-VAE")
            field_widget(
                st, "train", "warmup_epochs", "KL warm-up epochs", "β rises linearly from 0 over this many epochs"
            )
            field_widget(
                st,
                "train",
                "objective",
                "Objective",
                "elbo: the evidence lower bound (with β and free bits); iwae: "
                "the tighter importance-weighted bound of Burda et al. (β 1, no warm-up)",
            )
            field_widget(
                st,
                "train",
                "free_bits",
                "Free bits (nats per dimension)",
                "0: off. Above 0, a dimension's KL is "
                "not penalised below this (Kingma et al. 2016): fewer dimensions collapse",
            )
            field_widget(st, "train", "lr", "Learning rate", "Adam's step size, e.g. 0.001")
            with st.expander("More training settings"):
                field_widget(
                    st,
                    "train",
                    "iwae_samples",
                    "IWAE samples k",
                    "Importance samples per image when the objective is iwae; each step decodes k times",
                )
                field_widget(st, "train", "batch_size", "Batch size")
                field_widget(st, "train", "seed", "Seed")
                field_widget(
                    st,
                    "train",
                    "lr_schedule",
                    "Learning-rate schedule",
                    "none; cosine: down to 0 by the last epoch; step: times the factor below every N epochs",
                )
                field_widget(st, "train", "lr_step_epochs", "Step schedule: every N epochs")
                field_widget(st, "train", "lr_gamma", "Step schedule: factor")
                field_widget(
                    st,
                    "train",
                    "precision",
                    "Precision",
                    "bfloat16: mixed precision (fast on GPUs and CPUs with bf16 units, slow on others)",
                )
                field_widget(st, "train", "device", "Device", "auto, cpu, cuda or mps")
                field_widget(
                    st,
                    "train",
                    "compile",
                    "Compile with torch.compile",
                    "Faster steps after a compilation of tens of seconds",
                )
                field_widget(
                    st,
                    "train",
                    "memory_format",
                    "Memory format",
                    "auto: channels_last for convolutional models on a CPU or CUDA GPU (faster convolutions); "
                    "contiguous: channel planes",
                )
                field_widget(
                    st,
                    "train",
                    "capture",
                    "Capture (CUDA graph)",
                    "On a CUDA GPU: the whole step recorded once and replayed, one launch a step instead of ~70 "
                    "small ones (small models)",
                )
        name_col, start_col = st.columns([3, 1], vertical_alignment="bottom")
        name = name_col.text_input(
            "Save as",
            key="train_name",
            placeholder="empty: dataset-architecture-zD-N",
            help="Letters, digits, '-', '_' and '.'; saved on this server and offered in the model picker.",
        )
        start = start_col.form_submit_button("Start training", type="primary", disabled=busy, width="stretch")
        with st.expander("β sweep: train one model per β and draw the rate-distortion curve"):
            sweep_cols = st.columns([3, 1, 1], vertical_alignment="bottom")
            betas = sweep_cols[0].multiselect(
                "β values",
                [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
                default=[0.25, 1.0, 4.0, 16.0],
                key="train_sweep_betas",
            )
            sweep_epochs = sweep_cols[1].number_input("Epochs each", 1, 1000, 5, key="train_sweep_epochs")
            sweep = sweep_cols[2].form_submit_button("Run the sweep", disabled=busy, width="stretch")
            st.caption("Uses the settings above with these β and epochs; sweep models are compared, not saved.")

    def unused_name(config, taken: set[str]) -> str:
        """A name for an unnamed run: dataset-architecture-zD, numbered when taken."""
        base = f"{config.data.dataset.replace(':', '-').replace('/', '-')}-{config.model.architecture}-z{config.model.latent_dim}"
        return next(
            f"{base}-{i}"
            for i in range(1, 10_000)
            if f"{base}-{i}" not in taken and not (catalog.TRAINED_DIR / f"{base}-{i}").exists()
        )

    if start or sweep:
        form.remember()
        try:
            config = form.config_from_form()
            config.data = check_form_data(config.data, data_root())  # no folder outside the data folder
            if start:
                taken = {Path(ref.path).name for ref in catalog.available_models("any")}
                job = TrainingJob(
                    config,
                    run_folder(name or unused_name(config, taken), catalog.TRAINED_DIR, taken),
                    export_onnx=runtime_installed(),
                ).start()
            else:
                config.train.epochs = int(sweep_epochs)
                job = SweepJob(config, betas).start()
            watch(job)
            st.rerun()  # redraw the form with its buttons disabled while this runs
        except VaeExplorerError as exc:
            st.error(safety.say(exc))

    # --- interrupted runs ----------------------------------------------------------------------------
    stopped_runs = catalog.interrupted_runs()
    if stopped_runs:
        st.subheader("Unfinished trainings")
        st.caption(
            "These runs were saved after their last finished epoch when their training ended early (stopped, the "
            "server restarted, or the training process ended). Resume goes on from there with the same settings."
        )
        for run_name, training in stopped_runs:
            row = st.columns([4, 1], vertical_alignment="center")
            how = "stopped" if training.get("status") == "stopped" else "interrupted"
            row[0].markdown(
                f"**{safety.plain(run_name)}**: {how} after epoch {training.get('epochs_done', '?')} of "
                f"{training.get('target_epochs', '?')}"
            )
            if row[1].button("Resume", key=f"train_resume_{run_name}", disabled=busy):
                watch(
                    TrainingJob(
                        None, catalog.TRAINED_DIR / run_name, resume=True, export_onnx=runtime_installed()
                    ).start()
                )
                st.rerun()

    # --- the run -------------------------------------------------------------------------------------
    def history_figure(history: list[dict]) -> go.Figure:
        figure = make_subplots(rows=1, cols=3, subplot_titles=("loss (recon + β·KL)", "reconstruction", "KL"))
        epochs = [r["epoch"] for r in history]
        for col, part in enumerate(("loss", "recon", "kl"), start=1):
            for split, dash, colour in (("train", "solid", "#4c78a8"), ("test", "dash", "#f58518")):
                figure.add_trace(
                    go.Scatter(
                        x=epochs,
                        y=[r[f"{split}_{part}"] for r in history],
                        name=split,
                        mode="lines+markers",
                        line=dict(dash=dash, color=colour),
                        showlegend=col == 1,
                        legendgroup=split,
                    ),
                    1,
                    col,
                )
        figure.update_xaxes(
            title_text="epoch", tick0=0, dtick=max(1, -(-len(epochs) // 10))
        )  # whole epochs: no 0.5, 1.5
        figure.update_yaxes(title_text="nats per image", col=1)
        figure.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
        return figure

    def scatter_figure(points, labels, names) -> go.Figure:
        figure = go.Figure()
        for k in sorted(set(labels.tolist())):
            mask = labels == k
            figure.add_trace(
                go.Scattergl(
                    x=points[mask, 0],
                    y=points[mask, 1],
                    mode="markers",
                    marker=dict(size=5, color=CLASS_COLOURS[k % len(CLASS_COLOURS)]),
                    name=safety.label(names[k] if k < len(names) else k),
                )
            )
        figure.update_layout(
            height=340, margin=dict(l=10, r=10, t=30, b=10), title="test images in latent space (top-2 PCA)"
        )
        return figure

    def rate_distortion_figure(results: list[dict]) -> go.Figure:
        collapsed = ["#e45756" if r["active_units"] < r["latent_dim"] else "#4c78a8" for r in results]
        figure = go.Figure(
            go.Scatter(
                x=[r["kl"] for r in results],
                y=[r["recon"] for r in results],
                mode="lines+markers+text",
                text=[f"β={r['beta']:g} ({r['active_units']}/{r['latent_dim']} active)" for r in results],
                textposition="top right",
                marker=dict(size=11, color=collapsed),
                line=dict(color="#bbbbbb"),
            )
        )
        figure.update_layout(
            height=380,
            margin=dict(l=10, r=10, t=30, b=10),
            title="rate-distortion (test set)",
            xaxis_title="rate: KL(q(z|x) ‖ p(z)), nats",
            yaxis_title="distortion: −log p(x|z), nats",
        )
        return figure

    def show_job() -> None:
        snap = job.snapshot()
        if snap.finished and st.session_state.get("train_seen_finish") is not job:
            st.session_state["train_seen_finish"] = job
            st.rerun()  # the whole page: the picker lists the new model and the fragment stops polling
        steps = f"step {snap.step:,} of {snap.total_steps:,}  ·  {snap.elapsed:.0f} s"
        label = steps if snap.finished else f"{safety.plain(snap.message)}  ·  {steps}"
        st.progress(min(1.0, snap.progress), text=label)
        if snap.warning:
            st.warning(safety.plain(safety.server_paths_named(snap.warning)))
        if not snap.finished:
            if st.button(
                "Stop",
                key="train_stop",
                disabled=job.stopping,
                help="Stops after the current step; what was learned is kept and saved.",
            ):
                job.stop()
        elif snap.status == "failed":
            st.error(safety.plain(safety.server_paths_named(snap.message)))
        else:
            st.success(safety.plain(safety.server_paths_named(snap.message)))
        if isinstance(job, TrainingJob):
            if snap.history:
                chrome.chart(history_figure(snap.history), "train_history_chart")
                if has_dimension_history(snap.history):  # dimensions waking up or collapsing, epoch by epoch
                    chrome.chart(dimension_history_figure(snap.history), "train_dims_chart")
            if snap.strip_png is not None:
                left, right = st.columns([3, 2])
                left.image(
                    snap.strip_png,
                    width="stretch",
                    output_format="PNG",
                    caption="Test images (top) and their reconstructions now (bottom)",
                )
                names = snap.class_names or [str(i) for i in range(int(snap.scatter_labels.max()) + 1)]
                chrome.chart(scatter_figure(snap.scatter, snap.scatter_labels, names), "train_scatter", right)
            if (
                len(snap.frames) >= 2
            ):  # the run so far, epoch by epoch; every epoch's scatter in one figure only at the end
                st.markdown("**Epoch by epoch**")  # (not re-sent twice a second while it trains)
                epoch_replay(snap.frames, names, "train", animate=snap.finished)
            if snap.saved and st.button("Explore it", key="train_explore", type="primary"):
                st.session_state[catalog.MODEL_KEY] = Path(snap.saved).name
                st.switch_page("pages/1_Reconstruct.py")
        elif snap.results:
            chrome.chart(rate_distortion_figure(snap.results), "train_rd_chart")
            st.dataframe(
                [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in snap.results],
                hide_index=True,
            )
            collapsed = [r for r in snap.results if r["active_units"] < r["latent_dim"]]
            if collapsed:
                st.warning(
                    "Posterior collapse (red points): with "
                    + ", ".join(f"β={r['beta']:g} only {r['active_units']} of {r['latent_dim']}" for r in collapsed)
                    + " latent dimensions carry information; the others match the prior and the decoder ignores them."
                )
            st.caption(
                "Higher β buys a lower rate (fewer nats of information in z) with worse reconstructions. "
                "Alemi et al., Fixing a Broken ELBO (arXiv:1711.00464)."
            )

    if job is not None:
        st.subheader("Training" if isinstance(job, TrainingJob) else "β sweep")
        st.fragment(safety.boundary()(show_job), run_every=None if job.snapshot().finished else 0.5)()

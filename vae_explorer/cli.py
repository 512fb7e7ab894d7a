"""The command line: `vae-explorer train|generate|evaluate|map|photo|train-classifier|export-onnx|import-onnx|datasets|app`
(also `python -m vae_explorer ...`).

Checkpoints and configs are given as paths or by name (`--model-path digits-mlp`, `--config
digits_mlp`); runs are saved in the runs folder (vae_explorer/paths.py) unless --out names
another. Errors a person can cause are printed as one line, `error: ...`, with exit status 2; no
traceback reaches the terminal for them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import VaeExplorerError

RUNS_HELP = "folder of trained runs (default: $VAE_EXPLORER_RUNS, else ~/.local/share/vae-explorer/runs)"


def config_flags() -> list[tuple[str, str, str, dict]]:
    """`train`'s flags, one per config key a run sets itself (not those filled in from the dataset):
    (dest, --flag, "section.key", argparse options). Made from the config dataclasses as the Train
    form is: the type, choices and the comment above each field; a key that two sections share
    (channels) is prefixed with its section (--data-channels, --model-channels)."""
    import dataclasses

    from .config import FILLED_FROM_DATA, SECTIONS, field_docs, field_type

    names = [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]
    found = []
    for section, cls in SECTIONS.items():
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            if (section, f.name) in FILLED_FROM_DATA:
                continue
            dest = f.name if names.count(f.name) == 1 else f"{section}_{f.name}"
            inner, many = field_type(cls, f.name)
            options = {"help": f"{docs[f.name]} [{section}.{f.name}]".replace("%", "%%")}
            if inner is bool:
                options["action"] = argparse.BooleanOptionalAction
            else:
                options |= {"type": inner, "metavar": dest.upper() if "choices" not in f.metadata else None}
                if many:
                    options["nargs"] = "+"
                if "choices" in f.metadata:
                    options["choices"] = list(f.metadata["choices"])
            found.append((dest, "--" + dest.replace("_", "-"), f"{section}.{f.name}", options))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vae-explorer", description="Train, sample and evaluate variational autoencoders."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a VAE from a YAML config (or resume a run) and save a checkpoint folder")
    p.set_defaults(run=cmd_train)
    p.add_argument(
        "--config", help="YAML config: a file or a shipped config's name (digits_mlp, ...); default: the digits MLP"
    )
    p.add_argument(
        "--resume", metavar="CHECKPOINT", help="go on training this run (a folder or a run's name) to --epochs in all"
    )
    p.add_argument("--name", help="save as this run in the runs folder (default: the config's name)")
    p.add_argument("--out", help="checkpoint folder to write instead (any path)")
    p.add_argument("--runs-dir", help=RUNS_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    groups = {
        section: p.add_argument_group(f"{section} settings", f"each sets {section}.KEY, over the config's own value")
        for section in ("data", "model", "train")
    }
    for dest, flag, key, options in config_flags():
        groups[key.split(".")[0]].add_argument(flag, dest=dest, **options)

    p = sub.add_parser("generate", help="decode samples from the prior into a PNG grid")
    p.set_defaults(run=cmd_generate)
    p.add_argument("--model-path", required=True, help="checkpoint folder, or a shipped checkpoint's or a run's name")
    p.add_argument("--runs-dir", help=RUNS_HELP)
    p.add_argument("--n", type=int, default=64, help="number of samples (with --grid: cells, rounded to a square)")
    p.add_argument("--out", default="samples.png", help="PNG file to write")
    p.add_argument("--class", dest="label", help="class index or name, for a conditional model")
    p.add_argument(
        "--grid", action="store_true", help="the 1-D or 2-D latent manifold (inverse-CDF spaced) instead of samples"
    )
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("evaluate", help="test metrics of a checkpoint, written into its metrics.json")
    p.set_defaults(run=cmd_evaluate)
    p.add_argument("--model-path", required=True, help="checkpoint folder, or a shipped checkpoint's or a run's name")
    p.add_argument("--runs-dir", help=RUNS_HELP)
    p.add_argument("--k", type=int, default=100, help="importance samples for the IWAE bound")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="folder searched first for dataset files")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--no-fid",
        action="store_true",
        help="skip the sample-quality score (it trains a small classifier the first time)",
    )

    p = sub.add_parser(
        "map", help="compute a 2-D map (t-SNE, UMAP, PCA) of a checkpoint's codes and keep it for the Latent map page"
    )
    p.set_defaults(run=cmd_map)
    p.add_argument("--model-path", required=True, help="checkpoint folder, or a shipped checkpoint's or a run's name")
    p.add_argument("--runs-dir", help=RUNS_HELP)
    p.add_argument("--method", choices=["pca", "tsne", "umap"], default="tsne")
    p.add_argument(
        "--split", choices=["test", "train", "all"], default="test", help="which images (all: test then training)"
    )
    p.add_argument(
        "--perplexity", type=float, default=30.0, help="t-SNE: about how many neighbours each point attends to"
    )
    p.add_argument("--neighbours", type=int, default=15, help="UMAP: the size of the neighbourhood each point sees")
    p.add_argument("--data-dir", help="folder searched first for dataset files")
    p.add_argument("--device", default="auto")

    p = sub.add_parser(
        "train-classifier", help="train (again) the small classifier whose features give the Frechet distance"
    )
    p.set_defaults(run=cmd_train_classifier)
    p.add_argument("--dataset", default="digits", help="dataset name or folder:PATH")
    p.add_argument("--data-dir", help="folder searched first for dataset files")
    p.add_argument("--epochs", type=int, help="default: about 20,000 images' worth, at least 2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out-dir", help="folder to keep it in (default: ~/.cache/vae_explorer/classifiers, or $VAE_EXPLORER_CACHE)"
    )

    p = sub.add_parser(
        "photo", help="a photo through a latent diffusion VAE (a local diffusers folder): PSNR, SSIM, its latent"
    )
    p.set_defaults(run=cmd_photo)
    p.add_argument(
        "--vae",
        required=True,
        nargs="+",
        metavar="FOLDER",
        help="a diffusers AutoencoderKL folder (config.json and safetensors weights); with --folder, two to compare",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--image", help="the photo (PNG, JPEG, WebP, ...), up to 1 megapixel")
    which.add_argument(
        "--folder", help="a folder of photos: PSNR and SSIM of each, the worst, and the latent's statistics over all"
    )
    p.add_argument("--limit", type=int, default=500, help="--folder: at most this many photos (sorted by name)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="photo-reconstruction.png", help="PNG: photo | reconstruction | error x4 | preview")
    p.add_argument(
        "--tiled",
        action="store_true",
        help="encode and decode in overlapping tiles (diffusers' tiling): photos up to 16 megapixels in the memory "
        "of one tile",
    )
    p.add_argument("--channels-out", help="also write each latent channel as a grey picture (-3 black, +3 white)")
    p = sub.add_parser("export-onnx", help="write a checkpoint's decoder as an ONNX graph (z -> image)")
    p.set_defaults(run=cmd_export_onnx)
    p.add_argument("--model-path", required=True, help="checkpoint folder, or a shipped checkpoint's or a run's name")
    p.add_argument("--runs-dir", help=RUNS_HELP)
    p.add_argument("--out", help="ONNX file to write (default: decoder.onnx beside the checkpoint, made once)")

    p = sub.add_parser(
        "import-onnx", help="import a VAE trained elsewhere, as an ONNX encoder and decoder, into a checkpoint folder"
    )
    p.set_defaults(run=cmd_import_onnx)
    p.add_argument(
        "--encoder",
        required=True,
        help="ONNX file: images (batch, C, H, W), (batch, H, W, C) or (batch, C*H*W) "
        "in the model's range -> mean, log-variance",
    )
    p.add_argument(
        "--decoder", required=True, help="ONNX file: z (batch, latent_dim) -> the likelihood's parameters per pixel"
    )
    p.add_argument(
        "--likelihood",
        choices=["bernoulli", "gaussian", "gaussian-learned"],
        help="how it was trained: bernoulli (BCE, images in [0, 1]), gaussian (MSE: one fixed sigma) or "
        "gaussian-learned (the decoder also gives a log-variance per pixel); not given: bernoulli, said as assumed",
    )
    p.add_argument(
        "--output",
        choices=["logits", "probabilities"],
        default="logits",
        help="bernoulli: the decoder gives logits (default) or probabilities (after a sigmoid)",
    )
    p.add_argument(
        "--sigma",
        type=float,
        help="gaussian: the fixed sigma per pixel in the model's units (default: fitted "
        "on the test images by maximum likelihood)",
    )
    p.add_argument(
        "--range",
        dest="value_range",
        choices=["0,1", "-1,1"],
        help="the images' value range in training: 0,1 (default) or -1,1 (a Tanh output, Normalize(0.5, 0.5))",
    )
    p.add_argument(
        "--mean",
        nargs="+",
        type=float,
        metavar="M",
        help="or the normalisation (x - mean) / std: one mean or one per channel",
    )
    p.add_argument("--std", nargs="+", type=float, metavar="S", help="... and its std, one or one per channel")
    p.add_argument(
        "--dataset",
        required=True,
        help="the dataset it was trained on (see `datasets`): its test images are what the pages show",
    )
    p.add_argument(
        "--image-size",
        type=int,
        help="side the dataset's images are read at (default: the encoder's input size "
        "when fixed, else the dataset's own)",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=[1, 3],
        help="folder datasets: read as 1 (grey) or 3 (RGB) channels "
        "(default: the encoder's input's when fixed, else 1)",
    )
    p.add_argument("--data-dir", help="folder searched first for dataset files")
    p.add_argument(
        "--class-names", nargs="+", metavar="NAME", help="names of the classes, in order (default: the dataset's)"
    )
    p.add_argument("--name", help="save as this run in the runs folder (default: the encoder file's name)")
    p.add_argument("--out", help="checkpoint folder to write instead (any path; it must not exist)")
    p.add_argument("--runs-dir", help=RUNS_HELP)

    sub.add_parser("datasets", help="list the datasets and whether each is available here").set_defaults(
        run=cmd_datasets
    )
    sub.add_parser(
        "app",
        help="start the app in the browser ([--runs-dir DIR] [--data-root DIR: image folders the Train page may "
        "use] [--diffusers-root DIR: diffusers VAE folders the Latent diffusion page may offer] [--workers N|auto: N "
        "app processes behind nginx, for a class]); other flags go to `streamlit run` "
        "(e.g. --server.port 8600)",
        add_help=False,
    )
    return parser


def _run_folder(args: argparse.Namespace) -> Path:
    from .paths import runs_dir

    if args.out:
        return Path(args.out)
    name = args.name or (Path(args.config).stem if args.config else "digits_mlp")
    return runs_dir(args.runs_dir) / name


class _CacheBar:
    """progress(done, total) for a folder's first reading into the image cache, as a tqdm bar."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar = quiet, None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None and not self.quiet:
            self.bar = tqdm(
                total=total,
                unit="image",
                desc="reading the image folder into the cache",
                mininterval=0.25,
                file=sys.stderr,
            )
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _warn_skipped(data) -> None:
    from .data.image_folder import skipped_message

    message = skipped_message(data)
    if message:
        print(f"warning: {message}", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from .checkpoints import locate
    from .config import RunConfig, apply_overrides, load_config
    from .errors import ConfigError
    from .paths import resolve_config
    from .runs import prepare_run
    from .training import distributed

    given = [
        (flag, key, getattr(args, dest)) for dest, flag, key, _ in config_flags() if getattr(args, dest) is not None
    ]
    overrides = {key: value for _, key, value in given}
    reading = _CacheBar(args.quiet or os.environ.get("RANK", "0") != "0")  # under torchrun, rank 0's bar only
    try:
        if args.resume:
            changed = sorted(flag for flag, _, _ in given if flag not in ("--epochs", "--device"))
            changed += [
                flag for flag, given in (("--config", args.config), ("--out", args.out), ("--name", args.name)) if given
            ]
            if changed:
                raise ConfigError(
                    f"--resume goes on with the run's own config, in its own folder; leave out {', '.join(changed)} "
                    "(only --epochs and --device may be given)."
                )
            run = prepare_run(
                None, locate(args.resume, args.runs_dir), resume=True, epochs=args.epochs, progress=reading
            )
            if args.device:
                run.config.train = apply_overrides(run.config, {"train.device": args.device}).train
        else:
            config = load_config(resolve_config(args.config)) if args.config else RunConfig()
            run = prepare_run(apply_overrides(config, overrides), _run_folder(args), progress=reading)
    finally:
        reading.close()
    if distributed.launched():  # torchrun: join its process group; only rank 0 prints and saves
        run.config.train = dataclasses.replace(run.config.train, device=distributed.start(run.config.train.device))
    try:
        return _train_and_report(args, run)
    finally:
        distributed.finish()


def _train_and_report(args: argparse.Namespace, run) -> int:
    from tqdm import tqdm

    from .errors import TrainingError
    from .runs import train_run
    from .training import distributed

    main = distributed.is_main()
    args.quiet = args.quiet or not main
    if main:
        _warn_skipped(run.data)
    config, out = run.config, run.out
    done = run.epochs_done
    world = distributed.world()[1]
    if main:
        print(
            f"{'resuming' if done else 'training'} {config.model.architecture} VAE ({run.model.num_parameters():,} parameters, "
            f"latent {config.model.latent_dim}) on {run.data.name}: {len(run.data.train_x):,} train / {len(run.data.test_x):,} "
            f"test images -> {out}"
            + (f" (epoch {done + 1} of {config.train.epochs})" if done else "")
            + (f", {world} processes" if world > 1 else ""),
            file=sys.stderr,
        )
    bar = tqdm(total=0, unit="step", disable=True)  # replaced by the real bar at the first step

    def on_event(event) -> None:
        nonlocal bar
        if bar.disable and not args.quiet and event.kind == "step":  # only now: config errors print no half-drawn bar
            bar = tqdm(total=event.total_steps, initial=event.step - 1, unit="step", mininterval=0.25, file=sys.stderr)
        if event.kind == "step":
            bar.update(1)
            if event.step % 50 == 0:
                bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.1f}", refresh=False)
        else:
            bar.write(
                f"epoch {event.epoch}: train {event.record['train_loss']:.2f}  test {event.record['test_loss']:.2f} nats",
                file=sys.stderr,
            )

    try:
        history = train_run(run, [on_event])
    except TrainingError:
        bar.close()
        raise
    except KeyboardInterrupt:
        bar.close()
        kept = (
            f"{out} holds epoch {run.epochs_done}; resume with --resume {out}"
            if run.epochs_done
            else "nothing was saved"
        )
        if main:
            print(f"interrupted; {kept}.", file=sys.stderr)
        return 130
    bar.close()
    if main:
        print(
            f"final test loss: {history[-1]['test_loss']:.2f} nats per image (recon {history[-1]['test_recon']:.2f}, "
            f"KL {history[-1]['test_kl']:.2f}); saved {out}"
        )
    return 0


def _parse_label(value: str | None, class_names: list[str] | None, conditional: bool) -> int | None:
    from .errors import ConfigError

    if value is None:
        return None
    if not conditional:
        raise ConfigError("--class needs a conditional model; this checkpoint was trained without model.conditional.")
    names = class_names or []
    if value.isdigit() and int(value) < len(names):
        return int(value)
    lowered = [n.lower() for n in names]
    if value.lower() in lowered:
        return lowered.index(value.lower())
    raise ConfigError(
        f"--class {value!r} is not a class of this model; use an index from 0 to {len(names) - 1} or one of: {', '.join(names)}."
    )


def cmd_generate(args: argparse.Namespace) -> int:
    from .checkpoints import load_checkpoint, locate
    from .errors import ConfigError
    from .images import save_image_grid
    from .latent import manifold_grid, sample_prior

    if not 1 <= args.n <= 4096:
        raise ConfigError(f"--n must be from 1 to 4096, got {args.n}; pass a smaller number.")
    checkpoint = load_checkpoint(locate(args.model_path, args.runs_dir))
    model_config = checkpoint.config.model
    label = _parse_label(args.label, model_config.class_names, model_config.conditional)
    if args.grid:
        if model_config.latent_dim > 2:
            raise ConfigError(
                f"--grid needs a model with a 1-D or 2-D latent space; {checkpoint.path} has "
                f"{model_config.latent_dim}. Drop --grid to sample."
            )
        side = max(2, round(args.n**0.5)) if model_config.latent_dim == 2 else args.n
        images, nrow = manifold_grid(checkpoint.model, side, label), side
    else:
        images, nrow = sample_prior(checkpoint.model, args.n, label, args.seed), None
    out = save_image_grid(images, args.out, nrow)
    print(f"wrote {len(images)} images to {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import dataclasses

    from .checkpoints import load_checkpoint, locate, write_metrics
    from .data import load_dataset
    from .errors import ConfigError
    from .evaluation import evaluate
    from .training import resolve_device

    if not 1 <= args.k <= 10_000:
        raise ConfigError(f"--k must be from 1 to 10000, got {args.k}; pass a smaller number.")
    checkpoint = load_checkpoint(locate(args.model_path, args.runs_dir), resolve_device(args.device))
    data_config = checkpoint.config.data
    if args.data_dir:
        data_config = dataclasses.replace(data_config, data_dir=args.data_dir)
    data = load_dataset(data_config)
    classifier, info = (None, None) if args.no_fid else _classifier(data, checkpoint.config.data)
    metrics = evaluate(
        checkpoint.model,
        data,
        k=args.k,
        beta=checkpoint.config.train.beta,
        seed=args.seed,
        classifier=classifier,
        classifier_info=info,
    )
    write_metrics(checkpoint.path, metrics)
    print(
        f"{checkpoint.path} on {data.name} ({metrics['n_test']:,} test images), {checkpoint.model.describe_likelihood()}; "
        "nats per image:"
    )
    for key in ("neg_elbo", "recon", "kl", "iwae_nll", "iwae_k", "elbo_iwae_gap", "active_units", "fid", "fid_floor"):
        if key not in metrics:
            continue
        value = metrics[key]
        print(f"  {key:<13} {value:>10.3f}" if isinstance(value, float) else f"  {key:<13} {value:>10}")
    print("  kl_per_dim    " + " ".join(f"{v:.2f}" for v in metrics["kl_per_dim"]))
    if "mig" in metrics:
        print(
            f"  mig           {metrics['mig']:>10.3f}   ("
            + ", ".join(f"{k} {v:.2f}" for k, v in metrics["mig_per_factor"].items())
            + ")"
        )
        print(f"  factor_vae    {metrics['factor_vae_score']:>10.3f}")
    print(f"written to {checkpoint.path / 'metrics.json'}")
    return 0


def _classifier(data, data_config):
    """The dataset's feature classifier for the Frechet distance, trained with a progress bar the first time;
    None (with a note) for a dataset of one class."""
    from tqdm import tqdm

    from .evaluation import find_classifier, get_classifier

    if data.num_classes < 2:
        print(f"note: {data.name} has one class, so there is no sample-quality score (fid).", file=sys.stderr)
        return None, None
    bar = None

    def progress(step: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="step", desc="training the feature classifier (once)", file=sys.stderr)
        bar.update(step - bar.n)

    if find_classifier(data_config) is None:
        print(f"no feature classifier for {data.name} yet: training one, kept for later runs.", file=sys.stderr)
    model, info = get_classifier(data_config, progress)
    if bar is not None:
        bar.close()
    return model, info


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .config import DataConfig, section_from_dict
    from .data import load_dataset
    from .evaluation import train_classifier

    config = section_from_dict(DataConfig, {"dataset": args.dataset, "data_dir": args.data_dir}, "data", "command line")
    data = load_dataset(config)
    if args.epochs is not None and not 1 <= args.epochs <= 1000:
        from .errors import ConfigError

        raise ConfigError(f"--epochs must be from 1 to 1000, got {args.epochs}; pass a smaller number.")
    with tqdm(unit="step", desc=f"classifier for {data.name}", file=sys.stderr) as bar:

        def progress(step: int, total: int) -> None:
            bar.total = total
            bar.update(step - bar.n)

        _, info = train_classifier(data, config, args.epochs, args.seed, progress, args.out_dir)
    from .evaluation.fid import cache_dir

    print(
        f"test accuracy {info['test_accuracy']:.3f} after {info['epochs']} epochs; "
        f"saved {Path(args.out_dir or cache_dir()) / info['key']}"
    )
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from .checkpoints import decoder_onnx, export_decoder, load_checkpoint, locate
    from .checkpoints.onnx_export import weights_sha1

    checkpoint = load_checkpoint(locate(args.model_path, args.runs_dir))
    if args.out and checkpoint.config.model.architecture == "onnx":  # an imported pair: its browser graph, copied
        import shutil

        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        path = Path(shutil.copyfile(decoder_onnx(checkpoint), out))
    elif args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        path = export_decoder(checkpoint.model, out, weights_sha1(checkpoint.path))
    else:
        path = decoder_onnx(checkpoint)
    label = f" and label (batch, {checkpoint.model.cond_dim}) one-hot" if checkpoint.model.cond_dim else ""
    inputs = f"z (batch, {checkpoint.model.latent_dim}){label}"
    print(
        f"wrote {path}: inputs {inputs}, "
        f"output image (batch, {', '.join(map(str, checkpoint.config.model.image_shape))}) in [0, 1]"
    )
    return 0


def cmd_photo(args: argparse.Namespace) -> int:
    """A photo through a spatial VAE: what it gives back, how faithfully, and what its latent holds."""
    import time

    import torch
    import torch.nn.functional as F

    from .data.uploads import PHOTO_MAX_PIXELS, PHOTO_TILED_MAX_PIXELS, photo_image
    from .errors import ConfigError
    from .evaluation.fidelity import reconstruct_photo
    from .images import png_bytes
    from .latent.spatial import channel_pictures, channel_statistics, rgb_preview, rgb_preview_fit, unit_variance_scale
    from .models.diffusers_vae import load_spatial_vae

    if len(args.vae) > (2 if args.folder else 1):
        raise ConfigError(
            f"--vae takes one folder{' (two with --folder, to compare them)' if not args.folder else ' or two'}, "
            f"got {len(args.vae)}; pass {'one' if not args.folder else 'one or two'}."
        )
    limit = PHOTO_TILED_MAX_PIXELS if args.tiled else PHOTO_MAX_PIXELS
    if args.folder:
        return _photo_folder(args, [load_spatial_vae(folder, tiled=args.tiled) for folder in args.vae], limit)
    vae = load_spatial_vae(args.vae[0], tiled=args.tiled)
    source = Path(args.image)
    if not source.is_file():
        raise ConfigError(f"--image {args.image} is not a file; pass a photo (PNG, JPEG, WebP, ...).")
    photo = photo_image(source.read_bytes(), vae.factor, source.name, max_pixels=limit)
    started = time.perf_counter()
    result = reconstruct_photo(vae, photo)
    seconds = time.perf_counter() - started
    c, h, w = result.mean.shape
    print(
        f"{vae.name}: AutoencoderKL of {vae.num_parameters:,} parameters, {vae.latent_channels} latent channels "
        f"at 1/{vae.factor} of the side" + (", tiled" if vae.tiled else "")
    )
    print(f"{source.name}: {photo.shape[2]}x{photo.shape[1]} pixels -> latent {c}x{h}x{w}, in {seconds:.2f} s")
    print(f"  PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.4f} (the posterior mean, decoded)")
    mean, std = channel_statistics(result.mean[None])
    print("  latent channels, mean: " + " ".join(f"{v:+.2f}" for v in mean.tolist()))
    print("  latent channels, std:  " + " ".join(f"{v:.2f}" for v in std.tolist()))
    print(
        f"  a scaling factor of {unit_variance_scale(result.mean[None]):.4f} gives this photo's latent unit variance "
        f"(the config's scaling_factor: {vae.scaling_factor:g})"
    )
    preview = rgb_preview(result.mean, rgb_preview_fit(result.mean[None], photo[None]))
    preview = F.interpolate(preview[None], scale_factor=vae.factor, mode="nearest")[0]
    error = (result.error * 4).clamp(0, 1).expand(3, -1, -1)
    out = Path(args.out)
    out.write_bytes(png_bytes(torch.stack([photo, result.reconstruction, error, preview]), nrow=4, min_cell=1))
    print(f"wrote {out} (photo | reconstruction | error x4 | the latent's colour preview, fitted by least squares)")
    if args.channels_out:
        Path(args.channels_out).write_bytes(png_bytes(channel_pictures(result.mean), nrow=min(c, 8), min_cell=1))
        print(f"wrote {args.channels_out} (each latent channel, -3 black to +3 white)")
    return 0


PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def _photo_folder(args: argparse.Namespace, vaes: list, limit: int) -> int:
    """`photo --folder`: every photo of a folder through one VAE (or two, compared), the fidelity and the
    latent's statistics."""
    import statistics
    import time

    from tqdm import tqdm

    from .data.uploads import ImageError, photo_image
    from .errors import ConfigError
    from .evaluation.fidelity import fidelity_over

    folder = Path(args.folder)
    if not folder.is_dir():
        raise ConfigError(f"--folder {args.folder} is not a folder; pass a folder of photos.")
    if not 1 <= args.limit <= 100_000:
        raise ConfigError(f"--limit must be from 1 to 100000, got {args.limit}; pass a number in that range.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)[: args.limit]
    results, seconds = [], []
    for vae in vaes:
        skipped = []

        def photos(factor=vae.factor, skipped=skipped):  # read again for each VAE: memory holds one photo
            for path in files:
                try:
                    yield path.name, photo_image(path.read_bytes(), factor, path.name, max_pixels=limit)
                except (ImageError, OSError) as error:
                    skipped.append(f"{path.name} ({str(error).split(';')[0].removeprefix(path.name + ' ')})")

        started = time.perf_counter()
        with tqdm(total=len(files), unit="photo", desc=vae.name, file=sys.stderr, disable=args.quiet) as bar:
            results.append(fidelity_over(vae, photos(), lambda done: bar.update(1)))
            bar.update(len(files) - bar.n)
        seconds.append(time.perf_counter() - started)
    if skipped:
        print(f"warning: skipped {len(skipped)} of {len(files)}: {', '.join(skipped[:5])}", file=sys.stderr)
    if not results[0].rows:
        raise ConfigError(f"--folder {folder.name} holds no photo vae-explorer can read; add PNG or JPEG files.")
    for vae, result, spent in zip(vaes, results, seconds):
        psnrs, ssims = [r[1] for r in result.rows], [r[2] for r in result.rows]
        print(f"{vae.name} on {len(result.rows)} photos of {folder.name} ({spent / len(result.rows):.2f} s a photo):")
        print(
            f"  PSNR median {statistics.median(psnrs):.2f} dB (lowest {min(psnrs):.2f}), SSIM median "
            f"{statistics.median(ssims):.4f} (lowest {min(ssims):.4f})"
        )
        worst = sorted(result.rows, key=lambda row: row[1])[:3]
        print("  furthest from their reconstruction: " + ", ".join(f"{n} {p:.2f} dB" for n, p, _ in worst))
        moments = result.moments
        print("  latent channels over the folder, mean: " + " ".join(f"{v:+.3f}" for v in moments.mean.tolist()))
        print("  latent channels over the folder, std:  " + " ".join(f"{v:.3f}" for v in moments.std.tolist()))
        print(
            f"  a scaling factor of {moments.unit_variance_scale():.5f} gives these latents unit variance "
            f"(the config's scaling_factor: {vae.scaling_factor:g})"
        )
    if len(vaes) == 2:
        first, second = ({name: (p, q) for name, p, q in result.rows} for result in results)
        both = [name for name in first if name in second]
        gaps = sorted(both, key=lambda name: -abs(second[name][0] - first[name][0]))[:5]
        better = sum(second[name][0] > first[name][0] for name in both)
        print(
            f"{vaes[1].name} against {vaes[0].name}: higher PSNR on {better} of {len(both)} photos; where they differ "
            "most (PSNR, second minus first): " + ", ".join(f"{n} {second[n][0] - first[n][0]:+.2f} dB" for n in gaps)
        )
    return 0


def cmd_import_onnx(args: argparse.Namespace) -> int:
    import time

    from .checkpoints import read_config
    from .checkpoints.onnx_import import import_onnx
    from .checkpoints.zip_import import sanitize_name
    from .paths import runs_dir

    started = time.perf_counter()
    out = Path(args.out) if args.out else runs_dir(args.runs_dir) / sanitize_name(args.name or Path(args.encoder).stem)
    folder, notes = import_onnx(
        args.encoder,
        args.decoder,
        out,
        args.dataset,
        args.output,
        args.class_names,
        args.data_dir,
        likelihood=args.likelihood,
        sigma=args.sigma,
        value_range=args.value_range,
        mean=args.mean,
        std=args.std,
        image_size=args.image_size,
        channels=args.channels,
    )
    for note in notes:
        print(f"warning: {note}.", file=sys.stderr)
    config = read_config(folder)
    from .checkpoints.onnx_import import read_observation

    described = read_observation(folder, config.model.image_shape[0]).describe()
    print(
        f"imported {folder} in {time.perf_counter() - started:.1f} s: latent dimension {config.model.latent_dim}, "
        f"{'x'.join(map(str, config.model.image_shape))} images of {config.data.dataset}, {described}; explore it in the "
        f"app (it is listed as {folder.name}) or run `vae-explorer evaluate --model-path {folder}`"
    )
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from .data import list_datasets

    for spec, where in list_datasets():
        status = f"available ({where})" if where else f"not found: {spec.how_to_get}"
        print(f"{spec.name:<14} {spec.description}\n{'':<14} {status}")
    return 0


def _take_flag(argv: list[str], flag: str, value: str = "PATH") -> tuple[str | None, list[str]]:
    """The value of `flag VALUE` in argv, and argv without it."""
    if flag not in argv:
        return None, argv
    at = argv.index(flag)
    if at + 1 >= len(argv):
        from .errors import ConfigError

        raise ConfigError(f"{flag} needs a value; write {flag} {value}.")
    return argv[at + 1], argv[:at] + argv[at + 2 :]


def cmd_app(argv: list[str]) -> int:
    """`vae-explorer app [--runs-dir DIR] [--data-root DIR] [--workers N|auto] [streamlit flags]`: the
    app, from any folder. --data-root offers the image folders under DIR to the Train page (none
    without it); --workers serves a class with N app processes behind nginx (app/serving.py)."""
    from .app.server import app_environment, launch
    from .errors import ConfigError

    runs, argv = _take_flag(argv, "--runs-dir")
    data_root, argv = _take_flag(argv, "--data-root")
    workers, argv = _take_flag(argv, "--workers", "N (1 to 64) or auto")
    diffusers_root, argv = _take_flag(argv, "--diffusers-root")
    if diffusers_root is not None and not Path(diffusers_root).expanduser().is_dir():
        raise ConfigError(
            f"--diffusers-root {diffusers_root} is not a folder; pass the folder whose diffusers VAE folders the "
            "Latent diffusion page may offer."
        )
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise ConfigError(
            f"--data-root {data_root} is not a folder; pass the folder whose image folders the Train page may use."
        )
    if workers is not None:
        from .app.serving import parse_workers, serve

        return serve(parse_workers(workers), argv, app_environment(runs, data_root, diffusers_root))
    launch(argv, runs, data_root, diffusers_root)  # does not return: this process becomes the server
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from tqdm import tqdm

    from .checkpoints import load_checkpoint, locate
    from .data import load_dataset
    from .errors import ConfigError
    from .latent import compute_map, kept_map, pca_2d, split_codes
    from .latent.maps import map_files
    from .training import resolve_device

    if not 2 <= args.perplexity <= 1000 or not 2 <= args.neighbours <= 1000:
        raise ConfigError("--perplexity and --neighbours must be from 2 to 1000; pass a value in that range.")
    checkpoint = load_checkpoint(locate(args.model_path, args.runs_dir), resolve_device(args.device))
    data_config = (
        checkpoint.config.data
        if not args.data_dir
        else dataclasses.replace(checkpoint.config.data, data_dir=args.data_dir)
    )
    data = load_dataset(data_config)
    started = time.perf_counter()
    mu, _ = split_codes(checkpoint.model, data, args.split)
    if args.method == "pca":
        coords, _, _ = pca_2d(mu)
        print(
            f"PCA of {len(mu):,} codes in {time.perf_counter() - started:.1f} s; the Latent map page computes it "
            f"itself (it is instant), so nothing is kept."
        )
        return 0
    parameter = args.perplexity if args.method == "tsne" else args.neighbours
    if kept_map(checkpoint.path, args.method, len(mu), parameter, args.split) is not None:
        print(
            f"a {args.method} map of these {len(mu):,} codes is kept already: "
            f"{next(f for f in map_files(checkpoint.path, args.method, len(mu), parameter, args.split) if f.is_file())}"
        )
        return 0
    with tqdm(
        total=1, unit="step", desc=f"{args.method} of {len(mu):,} codes", file=sys.stderr, mininterval=0.5
    ) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        compute_map(mu, checkpoint.path, args.method, parameter, args.split, progress)
    kept = next(f for f in map_files(checkpoint.path, args.method, len(mu), parameter, args.split) if f.is_file())
    print(
        f"{args.method} map of {len(mu):,} codes ({args.split}) in {time.perf_counter() - started:.1f} s, kept in {kept}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["app"]:
            return cmd_app(argv[1:])
        # "--range -1,1" as written: argparse would read "-1,1" as an option, so it is joined to its flag
        argv = [
            f"--range={argv[i + 1]}" if a == "--range" and i + 1 < len(argv) else a
            for i, a in enumerate(argv)
            if not (i > 0 and argv[i - 1] == "--range")
        ]
        args = build_parser().parse_args(argv)
        return args.run(args)
    except VaeExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            "error: this request needs more memory than the machine has; use a smaller --batch-size, "
            "model (hidden_sizes, channels) or dataset (max_train).",
            file=sys.stderr,
        )
        return 2
    except RuntimeError as exc:  # torch reports allocation failures as RuntimeError
        if "out of memory" not in str(exc) and "can't allocate memory" not in str(exc):
            raise
        print(
            "error: this request needs more memory than the device has; use a smaller --batch-size or model, "
            "or --device cpu.",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:  # a path that cannot be read or written: name it
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; check that the path exists and is writable.", file=sys.stderr)
        return 2


def run() -> None:
    """Entry point of `python -m vae_explorer` and of the `vae-explorer` script."""
    sys.exit(main())

"""The commands that work on a checkpoint or a dataset: generate, evaluate, map, train-classifier,
export-onnx, import-onnx, datasets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parse_label(value: str | None, class_names: list[str] | None, conditional: bool) -> int | None:
    from ..errors import ConfigError

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
    from ..checkpoints import load_checkpoint, locate
    from ..errors import ConfigError
    from ..images import save_image_grid
    from ..latent import manifold_grid, sample_prior

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

    from ..checkpoints import load_checkpoint, locate, write_metrics
    from ..data import load_dataset
    from ..errors import ConfigError
    from ..evaluation import evaluate
    from ..training import resolve_device

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

    from ..evaluation import find_classifier, get_classifier

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

    from ..config import DataConfig, section_from_dict
    from ..data import load_dataset
    from ..evaluation import train_classifier

    config = section_from_dict(DataConfig, {"dataset": args.dataset, "data_dir": args.data_dir}, "data", "command line")
    data = load_dataset(config)
    if args.epochs is not None and not 1 <= args.epochs <= 1000:
        from ..errors import ConfigError

        raise ConfigError(f"--epochs must be from 1 to 1000, got {args.epochs}; pass a smaller number.")
    with tqdm(unit="step", desc=f"classifier for {data.name}", file=sys.stderr) as bar:

        def progress(step: int, total: int) -> None:
            bar.total = total
            bar.update(step - bar.n)

        _, info = train_classifier(data, config, args.epochs, args.seed, progress, args.out_dir)
    from ..evaluation.fid import cache_dir

    print(
        f"test accuracy {info['test_accuracy']:.3f} after {info['epochs']} epochs; "
        f"saved {Path(args.out_dir or cache_dir()) / info['key']}"
    )
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from ..checkpoints import decoder_onnx, export_decoder, load_checkpoint, locate
    from ..checkpoints.onnx_export import weights_sha1

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
    if getattr(checkpoint.model, "spatial", False):
        f, channels = checkpoint.model.factor, checkpoint.config.model.image_shape[0]
        inputs, output = (
            f"z (batch, {checkpoint.model.latent_dim}, rows, columns)",
            f"(batch, {channels}, {f} rows, {f} columns)",
        )
    else:
        inputs = f"z (batch, {checkpoint.model.latent_dim}){label}"
        output = f"(batch, {', '.join(map(str, checkpoint.config.model.image_shape))})"
    print(f"wrote {path}: inputs {inputs}, output image {output} in [0, 1]")
    return 0


def cmd_import_onnx(args: argparse.Namespace) -> int:
    import time

    from ..checkpoints import read_config
    from ..checkpoints.onnx_import import import_onnx
    from ..checkpoints.zip_import import sanitize_name
    from ..paths import runs_dir

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
    from ..checkpoints.onnx_import import read_observation

    described = read_observation(folder, config.model.image_shape[0]).describe()
    print(
        f"imported {folder} in {time.perf_counter() - started:.1f} s: latent dimension {config.model.latent_dim}, "
        f"{'x'.join(map(str, config.model.image_shape))} images of {config.data.dataset}, {described}; explore it in the "
        f"app (it is listed as {folder.name}) or run `vae-explorer evaluate --model-path {folder}`"
    )
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ..data import list_datasets

    for spec, where in list_datasets():
        status = f"available ({where})" if where else f"not found: {spec.how_to_get}"
        print(f"{spec.name:<14} {spec.description}\n{'':<14} {status}")
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from tqdm import tqdm

    from ..checkpoints import load_checkpoint, locate
    from ..data import load_dataset
    from ..errors import ConfigError
    from ..latent import compute_map, kept_map, pca_2d, split_codes
    from ..latent.maps import map_files
    from ..training import resolve_device

    if not 2 <= args.perplexity <= 1000 or not 2 <= args.neighbours <= 1000:
        raise ConfigError("--perplexity and --neighbours must be from 2 to 1000; pass a value in that range.")
    checkpoint = load_checkpoint(locate(args.model_path, args.runs_dir), resolve_device(args.device))
    if getattr(checkpoint.model, "spatial", False):
        raise ConfigError(
            f"{checkpoint.name} has a latent map ({' x '.join(map(str, checkpoint.model.latent_shape()))} for its "
            "training images), not a vector, so it has no 2-D map; see its latent with `vae-explorer photo --vae "
            f"{checkpoint.name} --image PHOTO` or on the app's Latent diffusion page."
        )
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

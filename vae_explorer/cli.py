"""The command line: `python -m vae_explorer train|generate|evaluate|train-classifier|datasets|bench` (also `vae-explorer`).

Errors a person can cause are printed as one line, `error: ...`, with exit status 2; no
traceback reaches the terminal for them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import VaeExplorerError

# flag -> "section.key" it overrides in the YAML config
TRAIN_OVERRIDES = {
    "dataset": "data.dataset", "data_dir": "data.data_dir", "epochs": "train.epochs", "beta": "train.beta",
    "latent_dim": "model.latent_dim", "lr": "train.lr", "batch_size": "train.batch_size", "seed": "train.seed",
    "device": "train.device", "warmup_epochs": "train.warmup_epochs", "precision": "train.precision",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vae-explorer", description="Train, sample and evaluate variational autoencoders.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a VAE from a YAML config and save a checkpoint folder")
    p.add_argument("--config", help="YAML config (see configs/); defaults to the built-in digits MLP")
    p.add_argument("--dataset", help="dataset name or folder:PATH (see `datasets`)")
    p.add_argument("--data-dir", help="folder searched first for dataset files")
    p.add_argument("--epochs", type=int)
    p.add_argument("--beta", type=float, help="KL weight (1: plain VAE)")
    p.add_argument("--warmup-epochs", type=int, help="epochs over which the KL weight rises from 0 to beta")
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--lr", type=float, help="Adam learning rate")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=["fast", "exact"], help="fast: bfloat16 matrix products where supported")
    p.add_argument("--out", help="checkpoint folder to write (default: runs/<config name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("generate", help="decode samples from the prior into a PNG grid")
    p.add_argument("--model-path", required=True, help="checkpoint folder")
    p.add_argument("--n", type=int, default=64, help="number of samples (with --grid: cells, rounded to a square)")
    p.add_argument("--out", default="samples.png", help="PNG file to write")
    p.add_argument("--class", dest="label", help="class index or name, for a conditional model")
    p.add_argument("--grid", action="store_true", help="the 1-D or 2-D latent manifold (inverse-CDF spaced) instead of samples")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("evaluate", help="test metrics of a checkpoint, written into its metrics.json")
    p.add_argument("--model-path", required=True, help="checkpoint folder")
    p.add_argument("--k", type=int, default=100, help="importance samples for the IWAE bound")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="folder searched first for dataset files")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-fid", action="store_true", help="skip the sample-quality score (it trains a small classifier the first time)")

    p = sub.add_parser("train-classifier", help="train (again) the small classifier whose features give the Frechet distance")
    p.add_argument("--dataset", default="digits", help="dataset name or folder:PATH")
    p.add_argument("--data-dir", help="folder searched first for dataset files")
    p.add_argument("--epochs", type=int, help="default: about 20,000 images' worth, at least 2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", help="folder to keep it in (default: ~/.cache/vae_explorer/classifiers, or $VAE_EXPLORER_CACHE)")

    sub.add_parser("datasets", help="list the datasets and whether each is available here")

    p = sub.add_parser("bench", help="training speed, test loss and decode latency on Fashion-MNIST")
    p.add_argument("--config", default=None, help="YAML config (default: configs/fashion_mnist_mlp.yaml)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data-dir")
    p.add_argument("--app", action="store_true", help="instead: the app's slider latency, drag rate in Chromium, latent map timings")
    p.add_argument("--tsne", action="store_true", help="with --app: also time a t-SNE of 10,000 points from scratch (~30 s)")
    p.add_argument("--while-training", action="store_true", help="with --app: also drag while another session trains")
    p.add_argument("--sessions", type=int, default=0, help="with --app: also a load test with this many browser sessions")
    p.add_argument("--seconds", type=float, default=60.0, help="with --sessions or --clients: how long the load test runs")
    p.add_argument("--clients", type=int, default=0,
                   help="instead: a load test with this many sessions speaking Streamlit's websocket protocol (no browser)")
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .checkpoints import save_checkpoint
    from .config import RunConfig, apply_overrides, load_config
    from .data import load_dataset
    from .errors import TrainingError
    from .models import build_model, fit_to_data
    from .training import check_fits, flush_denormals_process_wide, train

    config = load_config(args.config) if args.config else RunConfig()
    overrides = {key: getattr(args, flag) for flag, key in TRAIN_OVERRIDES.items() if getattr(args, flag) is not None}
    config = apply_overrides(config, overrides)
    out = Path(args.out or Path("runs") / (Path(args.config).stem if args.config else "digits_mlp"))
    if config.train.precision == "fast":
        flush_denormals_process_wide()
    data = load_dataset(config.data)
    check_fits(config.train, data)
    config.model = fit_to_data(config.model, data.image_shape, data.class_names)
    model = build_model(config.model, seed=config.train.seed)
    print(f"training {config.model.architecture} VAE ({model.num_parameters():,} parameters, latent {config.model.latent_dim}) "
          f"on {data.name}: {len(data.train_x):,} train / {len(data.test_x):,} test images -> {out}", file=sys.stderr)
    bar = tqdm(total=0, unit="step", disable=True)  # replaced by the real bar at the first step
    history: list[dict] = []

    def on_event(event) -> None:
        nonlocal bar
        if event.step == 1 and event.kind == "step":  # only now: config errors print no half-drawn bar
            bar = tqdm(total=event.total_steps, unit="step", disable=args.quiet, mininterval=0.25, file=sys.stderr)
        if event.kind == "step":
            bar.update(1)
            if event.step % 50 == 0:
                bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.1f}", refresh=False)
        else:  # save every epoch, so a crash or NaN later keeps this one
            history.append(event.record)
            save_checkpoint(out, event.model, config, history)
            bar.write(f"epoch {event.epoch}: train {event.record['train_loss']:.2f}  test {event.record['test_loss']:.2f} nats", file=sys.stderr)

    try:
        train(model, data, config.train, [on_event])
    except TrainingError as exc:
        bar.close()
        kept = f"the checkpoint {out} from epoch {len(history)} was kept" if history else "nothing was saved"
        raise TrainingError(f"{exc} ({kept})") from None
    except KeyboardInterrupt:
        bar.close()
        kept = f"{out} holds epoch {len(history)}" if history else "nothing was saved"
        print(f"interrupted; {kept}.", file=sys.stderr)
        return 130
    bar.close()
    print(f"final test loss: {history[-1]['test_loss']:.2f} nats per image (recon {history[-1]['test_recon']:.2f}, "
          f"KL {history[-1]['test_kl']:.2f}); saved {out}")
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
    raise ConfigError(f"--class {value!r} is not a class of this model; use an index from 0 to {len(names) - 1} or one of: {', '.join(names)}.")


def cmd_generate(args: argparse.Namespace) -> int:
    from .checkpoints import load_checkpoint
    from .errors import ConfigError
    from .images import save_image_grid
    from .latent import manifold_grid, sample_prior

    if not 1 <= args.n <= 4096:
        raise ConfigError(f"--n must be from 1 to 4096, got {args.n}; pass a smaller number.")
    checkpoint = load_checkpoint(args.model_path)
    model_config = checkpoint.config.model
    label = _parse_label(args.label, model_config.class_names, model_config.conditional)
    if args.grid:
        if model_config.latent_dim > 2:
            raise ConfigError(f"--grid needs a model with a 1-D or 2-D latent space; {checkpoint.path} has "
                              f"{model_config.latent_dim}. Drop --grid to sample.")
        side = max(2, round(args.n ** 0.5)) if model_config.latent_dim == 2 else args.n
        images, nrow = manifold_grid(checkpoint.model, side, label), side
    else:
        images, nrow = sample_prior(checkpoint.model, args.n, label, args.seed), None
    out = save_image_grid(images, args.out, nrow)
    print(f"wrote {len(images)} images to {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import dataclasses

    from .checkpoints import load_checkpoint, write_metrics
    from .data import load_dataset
    from .errors import ConfigError
    from .evaluation import evaluate
    from .training import resolve_device

    if not 1 <= args.k <= 10_000:
        raise ConfigError(f"--k must be from 1 to 10000, got {args.k}; pass a smaller number.")
    checkpoint = load_checkpoint(args.model_path, resolve_device(args.device))
    data_config = checkpoint.config.data
    if args.data_dir:
        data_config = dataclasses.replace(data_config, data_dir=args.data_dir)
    data = load_dataset(data_config)
    classifier, info = (None, None) if args.no_fid else _classifier(data, checkpoint.config.data)
    metrics = evaluate(checkpoint.model, data, k=args.k, beta=checkpoint.config.train.beta, seed=args.seed,
                       classifier=classifier, classifier_info=info)
    write_metrics(checkpoint.path, metrics)
    print(f"{checkpoint.path} on {data.name} ({metrics['n_test']:,} test images), nats per image:")
    for key in ("neg_elbo", "recon", "kl", "iwae_nll", "iwae_k", "elbo_iwae_gap", "active_units", "fid", "fid_floor"):
        if key not in metrics:
            continue
        value = metrics[key]
        print(f"  {key:<13} {value:>10.3f}" if isinstance(value, float) else f"  {key:<13} {value:>10}")
    print("  kl_per_dim    " + " ".join(f"{v:.2f}" for v in metrics["kl_per_dim"]))
    if "mig" in metrics:
        print(f"  mig           {metrics['mig']:>10.3f}   (" + ", ".join(f"{k} {v:.2f}" for k, v in metrics["mig_per_factor"].items()) + ")")
        print(f"  factor_vae    {metrics['factor_vae_score']:>10.3f}")
    print(f"written to {checkpoint.path / 'metrics.json'}")
    return 0


def _classifier(data, data_config):
    """The dataset's feature classifier for the Frechet distance, trained with a progress bar the first time;
    None (with a note) for a dataset of one class."""
    from tqdm import tqdm

    from .classifier import find_classifier, get_classifier

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

    from .classifier import train_classifier
    from .config import DataConfig, section_from_dict
    from .data import load_dataset

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
    from .classifier import cache_dir

    print(f"test accuracy {info['test_accuracy']:.3f} after {info['epochs']} epochs; saved {Path(args.out_dir or cache_dir()) / info['key']}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from .data import list_datasets

    for spec, where in list_datasets():
        status = f"available ({where})" if where else f"not found: {spec.how_to_get}"
        print(f"{spec.name:<14} {spec.description}\n{'':<14} {status}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"train": cmd_train, "generate": cmd_generate, "evaluate": cmd_evaluate, "datasets": cmd_datasets,
                "train-classifier": cmd_train_classifier}
    try:
        if args.command == "bench" and args.clients:
            from .bench_load import print_load_test

            return print_load_test(args.clients, args.seconds)
        if args.command == "bench" and args.app:
            from .bench_app import run_app_bench

            return run_app_bench(args)
        if args.command == "bench":
            from .bench import run_bench

            return run_bench(args)
        return commands[args.command](args)
    except VaeExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: this request needs more memory than the machine has; use a smaller --batch-size, "
              "model (hidden_sizes, channels) or dataset (max_train).", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # torch reports allocation failures as RuntimeError
        if "out of memory" not in str(exc) and "can't allocate memory" not in str(exc):
            raise
        print("error: this request needs more memory than the device has; use a smaller --batch-size or model, "
              "or --device cpu.", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written: name it
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; check that the path exists and is writable.", file=sys.stderr)
        return 2
    finally:  # `train` flushes denormals process-wide; a caller in the same process gets IEEE maths back
        if "torch" in sys.modules:
            sys.modules["torch"].set_flush_denormal(False)


def run() -> None:
    """Entry point of `python -m vae_explorer` and of the `vae-explorer` script: main(), then a quick exit.

    Tearing the interpreter down once torch is loaded takes about 0.3 s on a 2-core machine
    (clearing thousands of modules and objects), a twentieth of a 3-epoch training command. By
    then every file has been written and closed, so after the exit handlers have run and the
    streams are flushed the process ends with os._exit. An uncaught exception exits normally.
    """
    import atexit
    import os

    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # e.g. the reader of a pipe has gone (`... | head`)
            pass
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

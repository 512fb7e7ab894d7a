"""The command line: `vae-explorer train|generate|evaluate|map|photo|train-classifier|export-onnx|import-onnx|datasets|app`
(also `python -m vae_explorer ...`).

The commands are one table, build_parser: each registered once with its function (here, and in
train.py, explore.py, photo.py and app.py beside this file).

Checkpoints and configs are given as paths or by name (`--model-path digits-mlp`, `--config
digits_mlp`); runs are saved in the runs folder (vae_explorer/paths.py) unless --out names
another. Errors a person can cause are printed as one line, `error: ...`, with exit status 2; no
traceback reaches the terminal for them.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import VaeExplorerError
from .app import cmd_app
from .explore import (
    cmd_datasets,
    cmd_evaluate,
    cmd_export_onnx,
    cmd_generate,
    cmd_import_onnx,
    cmd_map,
    cmd_train_classifier,
)
from .photo import cmd_photo
from .train import cmd_train, config_flags

__all__ = ["build_parser", "config_flags", "main", "run"]

RUNS_HELP = "folder of trained runs (default: $VAE_EXPLORER_RUNS, else ~/.local/share/vae-explorer/runs)"


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
        "photo", help="photos through a spatial VAE (a diffusers folder or photos-spatial): PSNR, SSIM, the latent"
    )
    p.set_defaults(run=cmd_photo)
    p.add_argument(
        "--vae",
        required=True,
        nargs="+",
        metavar="FOLDER",
        help="a diffusers AutoencoderKL folder (config.json and safetensors weights) or a spatial-latent checkpoint "
        "(photos-spatial); with --folder or --sizes, two to compare",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--image", help="the photo (PNG, JPEG, WebP, ...), up to 1 megapixel")
    which.add_argument(
        "--folder", help="a folder of photos: PSNR and SSIM of each, the worst, and the latent's statistics over all"
    )
    which.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        metavar="SIDE",
        help="time and peak memory of a square photo through each VAE at each side, each in a fresh process "
        "(with --tiled: tiled too, and how far tiling moves the picture)",
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

"""`vae-explorer photo`: photos through a spatial VAE, the VAE of a latent diffusion model
(models/diffusers_vae.py) or a spatial-latent checkpoint of this package (checkpoints/spatial.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def cmd_photo(args: argparse.Namespace) -> int:
    """A photo through a spatial VAE: what it gives back, how faithfully, and what its latent holds."""
    import time

    import torch
    import torch.nn.functional as F

    from ..checkpoints.spatial import open_spatial_vae
    from ..data.uploads import PHOTO_MAX_PIXELS, PHOTO_TILED_MAX_PIXELS, photo_image
    from ..errors import ConfigError
    from ..evaluation.fidelity import reconstruct_photo
    from ..images import png_bytes
    from ..latent.spatial import channel_pictures, channel_statistics, rgb_preview, rgb_preview_fit, unit_variance_scale

    many = bool(args.folder or args.sizes)
    if len(args.vae) > (2 if many else 1):
        raise ConfigError(
            f"--vae takes one folder{' (two with --folder or --sizes, to compare them)' if not many else ' or two'}, "
            f"got {len(args.vae)}; pass {'one' if not many else 'one or two'}."
        )
    if args.sizes:
        return _photo_sizes(args)
    limit = PHOTO_TILED_MAX_PIXELS if args.tiled else PHOTO_MAX_PIXELS
    if args.folder:
        return _photo_folder(args, [open_spatial_vae(folder, tiled=args.tiled) for folder in args.vae], limit)
    vae = open_spatial_vae(args.vae[0], tiled=args.tiled)
    source = Path(args.image)
    if not source.is_file():
        raise ConfigError(f"--image {args.image} is not a file; pass a photo (PNG, JPEG, WebP, ...).")
    photo = photo_image(source.read_bytes(), vae.factor, source.name, max_pixels=limit)
    started = time.perf_counter()
    result = reconstruct_photo(vae, photo)
    seconds = time.perf_counter() - started
    c, h, w = result.mean.shape
    print(
        f"{vae.name}: {vae.kind} of {vae.num_parameters:,} parameters, {vae.latent_channels} latent channels "
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


def _photo_folder(args: argparse.Namespace, vaes: list, limit: int) -> int:
    """`photo --folder`: every photo of a folder through one VAE (or two, compared), the fidelity and the
    latent's statistics."""
    import statistics
    import time

    from tqdm import tqdm

    from ..data.uploads import ImageError, photo_image
    from ..errors import ConfigError
    from ..evaluation.fidelity import fidelity_over

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


# One VAE at one size, in a fresh process (so its peak memory is the process's own): open the VAE, then a
# seeded random photo through it (reconstruct_photo) twice; prints one JSON line and saves the second
# reconstruction (as safetensors: nothing is unpickled) for the tiled-against-untiled difference.
ONE_SIZE = """
import json, resource, statistics, sys, time
import torch
from safetensors.torch import save_file
from vae_explorer.checkpoints.spatial import open_spatial_vae
from vae_explorer.evaluation.fidelity import reconstruct_photo
folder, side, tiled, out = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
started = time.perf_counter()
vae = open_spatial_vae(folder, tiled=tiled)
opened = time.perf_counter() - started
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
photo = torch.rand(3, side, side, generator=torch.Generator().manual_seed(0))
times = []
for _ in range(2):
    started = time.perf_counter()
    result = reconstruct_photo(vae, photo)
    times.append(time.perf_counter() - started)
save_file({"reconstruction": result.reconstruction.contiguous()}, out)
print(json.dumps({"open_s": opened, "median_s": statistics.median(times), "opened_mb": before,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _photo_sizes(args: argparse.Namespace) -> int:
    """`photo --sizes`: each VAE at each size (and tiled, with --tiled, for a VAE that tiles), each run in a
    fresh process: seconds a photo and the process's peak memory, and how far tiling moves the picture."""
    import json
    import subprocess
    import tempfile

    from safetensors.torch import load_file

    from ..checkpoints.spatial import open_spatial_vae
    from ..data.uploads import PHOTO_MAX_PIXELS, PHOTO_TILED_MAX_PIXELS
    from ..errors import ConfigError

    vaes = [open_spatial_vae(folder) for folder in args.vae]  # checked here, one sentence each, before any run
    for side in args.sizes:
        if not 8 <= side <= 4096:
            raise ConfigError(f"--sizes takes sides from 8 to 4096 pixels, got {side}; pass sides in that range.")
        for vae in vaes:
            if side % vae.factor:
                raise ConfigError(
                    f"--sizes {side} is not a multiple of {vae.name}'s factor {vae.factor}; pass multiples of "
                    f"{vae.factor}."
                )
    with tempfile.TemporaryDirectory() as scratch:
        for folder, vae in zip(args.vae, vaes):
            tiles = vae.tileable
            print(f"{vae.name}: {vae.kind} of {vae.num_parameters:,} parameters (each line a fresh process, 2 runs)")
            for side in args.sizes:
                kept = {}
                for tiled in (False, True) if args.tiled and tiles else (False,):
                    limit = PHOTO_TILED_MAX_PIXELS if tiled else PHOTO_MAX_PIXELS
                    label = f"  {side}x{side}{' tiled' if tiled else ''}"
                    if side * side > limit:
                        print(f"{label}: not run (over {limit / 1e6:.0f} megapixels{'' if tiled else '; add --tiled'})")
                        continue
                    out = Path(scratch) / f"{vae.name}-{side}-{int(tiled)}.safetensors"
                    done = subprocess.run(
                        [
                            sys.executable,
                            "-c",
                            ONE_SIZE,
                            str(Path(folder).expanduser()),
                            str(side),
                            str(int(tiled)),
                            str(out),
                        ],
                        capture_output=True,
                        text=True,
                    )
                    if done.returncode != 0:
                        killed = done.returncode < 0 or "MemoryError" in done.stderr
                        print(
                            f"{label}: failed ({'out of memory' if killed else done.stderr.strip().splitlines()[-1][:160]})"
                        )
                        continue
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    kept[tiled] = load_file(out)["reconstruction"]
                    print(
                        f"{label}: {row['median_s']:.2f} s a photo; peak memory {row['peak_mb']:,.0f} MB "
                        f"({row['peak_mb'] - row['opened_mb']:,.0f} MB above the VAE opened, {row['opened_mb']:,.0f} MB)"
                    )
                if len(kept) == 2:
                    difference = (kept[True] - kept[False]).abs()
                    print(
                        f"  {side}x{side}: tiled against untiled, mean absolute difference {float(difference.mean()):.4f}, "
                        f"largest {float(difference.max()):.4f} (in [0, 1])"
                    )
    return 0

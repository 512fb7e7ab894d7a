"""A photo through a full-size latent diffusion VAE on this machine: time and peak memory per size.

    python benchmarks/spatial_vae.py [--sizes 256 512] [--repeats 3] [--tiled 768]

The VAE is diffusers' AutoencoderKL with Stable Diffusion's configuration (128-256-512-512 channels,
two layers per block, 4 latent channels, 83.7 M parameters) and random weights, saved to a scratch
folder and opened with vae_explorer's load_spatial_vae, as a user's local copy would be. Each size
runs in a fresh process: open the folder, then `reconstruct_photo` (encode, decode the mean, PSNR
and SSIM) `--repeats` times on a random photo; reported are the median time of the repeats and the
process's peak resident memory (ru_maxrss). `--tiled SIZE...` also runs those sizes with diffusers'
tiling (512-pixel tiles, a quarter overlapping, blended) and reports how far the tiled reconstruction
is from the untiled one (mean and largest absolute difference, in [0, 1] units). Needs diffusers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SD_VAE = dict(
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)

ONE_SIZE = """
import json, resource, statistics, sys, time
import torch
from safetensors.torch import save_file
from vae_explorer.evaluation.fidelity import reconstruct_photo
from vae_explorer.models.diffusers_vae import load_spatial_vae
folder, side, repeats, tiled, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
started = time.perf_counter()
vae = load_spatial_vae(folder, tiled=tiled)
opened = time.perf_counter() - started
photo = torch.rand(3, side, side, generator=torch.Generator().manual_seed(0))
times = []
for _ in range(repeats):
    started = time.perf_counter()
    result = reconstruct_photo(vae, photo)
    times.append(time.perf_counter() - started)
save_file({"reconstruction": result.reconstruction.contiguous()}, out)
print(json.dumps({"side": side, "open_s": opened, "median_s": statistics.median(times), "times": times,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": torch.get_num_threads()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiled", type=int, nargs="*", default=[], help="sizes to run tiled as well as untiled")
    args = parser.parse_args()
    import torch
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "sd-vae-random"
        torch.manual_seed(0)
        model = AutoencoderKL(**SD_VAE)
        print(
            f"AutoencoderKL, Stable Diffusion's configuration: {sum(p.numel() for p in model.parameters()):,} parameters"
        )
        model.save_pretrained(folder, safe_serialization=True)
        del model
        for side in sorted(set(args.sizes) | set(args.tiled)):
            outputs = {}
            for tiled in (False, True) if side in args.tiled else (False,):
                out = Path(scratch) / f"{side}-{int(tiled)}.safetensors"
                done = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        ONE_SIZE,
                        str(folder),
                        str(side),
                        str(args.repeats),
                        str(int(tiled)),
                        str(out),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row = json.loads(done.stdout.strip().splitlines()[-1])
                outputs[tiled] = load_file(out)["reconstruction"]
                print(
                    f"{side}x{side}{' tiled' if tiled else ''}: open {row['open_s']:.2f} s; photo through the VAE (encode, "
                    f"decode, PSNR, SSIM) median {row['median_s']:.2f} s of {args.repeats} "
                    f"({', '.join(f'{t:.2f}' for t in row['times'])}); peak memory {row['peak_mb']:,.0f} MB; "
                    f"{row['threads']} threads"
                )
            if len(outputs) == 2:
                difference = (outputs[True] - outputs[False]).abs()
                print(
                    f"{side}x{side}: tiled against untiled, mean absolute difference {float(difference.mean()):.4f}, "
                    f"largest {float(difference.max()):.4f} (in [0, 1])"
                )


if __name__ == "__main__":
    main()

"""Importing and opening a ~20 MB ONNX pair (issue target: under 3 s).

    python benchmarks/onnx_import.py [--repeats 3] [--hidden 1500 1000]

Exports an MLP VAE for 28x28 images (784-H1-H2-2x32 encoder, mirrored decoder; random weights:
the import does not care how well it was trained) with torch.onnx.export, then, in fresh
processes each time:
1. `vae-explorer import-onnx ... --dataset fashion-mnist` end to end (the process's wall time,
   Python and torch start included) and the time inside `import_onnx` (read, check, run on 64
   test images, write);
2. opening it: `load_checkpoint` (what a page does on its first visit), then encoding and
   reconstructing 1,000 test images with onnxruntime.
Prints medians over --repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO

OPEN = """
import json, sys, time
t0 = time.perf_counter()
from vae_explorer import load_checkpoint
from vae_explorer.config import DataConfig
from vae_explorer.data import load_dataset
t1 = time.perf_counter()
checkpoint = load_checkpoint(sys.argv[1])
t2 = time.perf_counter()
x = load_dataset(DataConfig(dataset="fashion-mnist")).test_x[:1000]
t3 = time.perf_counter()
checkpoint.model.reconstruct(x)
t4 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "load_checkpoint": t2 - t1, "reconstruct_1000": t4 - t3}))
"""

IMPORT = """
import json, sys, time
from vae_explorer.checkpoints.onnx_import import import_onnx
t = time.perf_counter()
import_onnx(sys.argv[1], sys.argv[2], sys.argv[3], "fashion-mnist")
print(json.dumps({"import_onnx": time.perf_counter() - t}))
"""


def export_pair(folder: Path, hidden: list[int], latent: int = 32) -> int:
    import torch
    from torch import nn

    torch.manual_seed(0)
    sizes = [784, *hidden]
    enc = nn.Sequential(
        nn.Flatten(),
        *[m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())],
        nn.Linear(sizes[-1], 2 * latent),
    )
    back = [latent, *hidden[::-1]]
    dec = nn.Sequential(
        *[m for a, b in zip(back, back[1:]) for m in (nn.Linear(a, b), nn.ReLU())], nn.Linear(back[-1], 784)
    )

    class Encoder(nn.Module):
        def forward(self, x):
            return enc(x).chunk(2, dim=1)

    batch = torch.export.Dim("batch")
    torch.onnx.export(
        Encoder().eval(),
        (torch.rand(2, 1, 28, 28),),
        str(folder / "encoder.onnx"),
        input_names=["x"],
        output_names=["mu", "logvar"],
        dynamic_shapes=({0: batch},),
        external_data=False,
        verbose=False,
    )
    torch.onnx.export(
        dec.eval(),
        (torch.randn(2, latent),),
        str(folder / "decoder.onnx"),
        input_names=["z"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
        external_data=False,
        verbose=False,
    )
    return sum(p.numel() for p in [*enc.parameters(), *dec.parameters()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, nargs="+", default=[1500, 1000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights = export_pair(folder, args.hidden)
        size = sum((folder / f).stat().st_size for f in ("encoder.onnx", "decoder.onnx")) / 2**20
        print(f"pair: {weights:,} weights, {size:.1f} MB ({', '.join(map(str, args.hidden))} hidden units)")
        results: dict[str, list[float]] = {}
        for repeat in range(args.repeats):
            out = folder / f"cli-{repeat}"
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "vae_explorer",
                    "import-onnx",
                    "--encoder",
                    str(folder / "encoder.onnx"),
                    "--decoder",
                    str(folder / "decoder.onnx"),
                    "--dataset",
                    "fashion-mnist",
                    "--out",
                    str(out),
                ],
                check=True,
                cwd=REPO,
                capture_output=True,
            )
            results.setdefault("vae-explorer import-onnx (process wall)", []).append(time.perf_counter() - started)
            inner = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    IMPORT,
                    str(folder / "encoder.onnx"),
                    str(folder / "decoder.onnx"),
                    str(folder / f"api-{repeat}"),
                ],
                check=True,
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            for key, value in json.loads(inner.stdout.splitlines()[-1]).items():
                results.setdefault(key, []).append(value)
            opened = subprocess.run(
                [sys.executable, "-c", OPEN, str(out)], check=True, cwd=REPO, capture_output=True, text=True
            )
            for key, value in json.loads(opened.stdout.splitlines()[-1]).items():
                results.setdefault(key, []).append(value)
        for key, values in results.items():
            print(f"{key:<42} median {statistics.median(values):6.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Retrain every shipped checkpoint in checkpoints/ from its config and record its metrics.
# Takes about 15 minutes on a 2-core CPU; needs Fashion-MNIST (apt-get install dataset-fashion-mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A SHIPPED=(
  [digits-mlp]=configs/digits_mlp.yaml
  [digits-iwae]=configs/digits_iwae.yaml
  [digits-free-bits]=configs/digits_free_bits.yaml
  [digits-vamp]=configs/digits_vamp.yaml
  [digits-two-level]=configs/digits_two_level.yaml
  [fashion-mnist-conv]=configs/fashion_mnist_conv.yaml
  [fashion-mnist-2d]=configs/fashion_mnist_2d.yaml
  [fashion-mnist-cvae]=configs/fashion_mnist_cvae.yaml
  [shapes-betavae]=configs/shapes_betavae.yaml
  [shapes-vae]=configs/shapes_vae.yaml
  [photos-spatial]=configs/photos_spatial.yaml
)
# The feature classifiers for the Frechet distance (evaluate uses them), one per dataset.
if [[ $# -eq 0 ]]; then
  for dataset in digits fashion-mnist shapes; do
    python -m vae_explorer train-classifier --dataset "$dataset" --out-dir checkpoints/classifiers
  done
fi
for name in "${!SHIPPED[@]}"; do
  if [[ $# -gt 0 && " $* " != *" $name "* ]]; then continue; fi
  python -m vae_explorer train --config "${SHIPPED[$name]}" --out "checkpoints/$name" --device cpu --quiet
  if [[ $name == photos-spatial ]]; then
    # a latent map: no sample-quality score (a draw from N(0, I) decodes to texture), no epoch replay or optimizer shipped
    python -m vae_explorer evaluate --model-path "checkpoints/$name" --device cpu --no-fid
    rm -f "checkpoints/$name/epochs.safetensors" "checkpoints/$name/optimizer.safetensors" "checkpoints/$name/training.json"
  else
    python -m vae_explorer evaluate --model-path "checkpoints/$name" --device cpu
  fi
  python -m vae_explorer export-onnx --model-path "checkpoints/$name" --out "checkpoints/$name/decoder.onnx"
done

#!/usr/bin/env bash
# One call on a lent GPU machine (the device tool): the GPU tests, the training benchmark in one process
# (plain against captured, GPU busy share), then 10 epochs as whole processes against pytorch/examples.
# That machine has torch, torchvision, pytest, PyYAML, Pillow and scikit-learn but no datasets and no
# network: carry Fashion-MNIST and the reference. Here, once (about 30 MB; PATH/TO/examples is a clone
# of pytorch/examples, e.g. what the `fetch` tool brings):
#   mkdir -p .gpu-data/reference/vae && cp -r /usr/share/datasets/fashion-mnist .gpu-data/ \
#     && git -C PATH/TO/examples show HEAD:vae/main.py | sed 's/datasets\.MNIST(/datasets.FashionMNIST(/' \
#        > .gpu-data/reference/vae/main.py && echo /.gpu-data/ >> .git/info/exclude
# then run `bash benchmarks/gpu_check.sh` with carry [".gpu-data"] and a timeout of 600 s. Each part has
# its own time limit, so a part that fails or hangs leaves the others' figures; logs go to $OUT.
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD" VAE_EXPLORER_DATA="$PWD/.gpu-data"
logs="${OUT:-/tmp}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
timeout 150 python3 -m pytest -q -p no:cacheprovider -rs tests/unit/training/test_devices.py \
    "tests/unit/data/test_image_folder.py::test_a_set_on_disk_is_held_on_the_gpu_as_uint8_when_it_fits" 2>&1 | tee "$logs/gpu-tests.log"
timeout 150 python3 benchmarks/gpu_training.py --epochs 4 2>&1 | grep -v "^USDT\|^ERROR:.*gpuGetDeviceCount" | tee "$logs/gpu-bench.log"
timeout 60 python3 benchmarks/gpu_training.py --epochs 3 --loop-only 2>&1 | tee -a "$logs/gpu-bench.log"
reference=.gpu-data/reference
if [ -f "$reference/vae/main.py" ]; then
    # torchvision's FashionMNIST finds the un-gzipped files and downloads nothing (the .gz files' checksums differ)
    mkdir -p "$reference/data/FashionMNIST/raw" "$reference/vae/results"
    for f in .gpu-data/fashion-mnist/*.gz; do gunzip -c "$f" > "$reference/data/FashionMNIST/raw/$(basename "$f" .gz)"; done
    timeout 240 python3 benchmarks/train_speed.py --reference "$reference/vae/main.py" --epochs 10 --runs 2 \
        -- --capture --device cuda 2>&1 | tee "$logs/gpu-whole.log"
else
    echo "no $reference/vae/main.py: the comparison with pytorch/examples is left out (see the top of this script)"
fi

#!/usr/bin/env bash
# One call on a lent GPU machine (the device tool): the GPU tests, then the training benchmark.
# That machine has torch, pytest, PyYAML, Pillow and scikit-learn but no datasets and no network:
# carry Fashion-MNIST. Here, once:
#   mkdir -p .gpu-data && cp -r /usr/share/datasets/fashion-mnist .gpu-data/ && echo /.gpu-data/ >> .git/info/exclude
# then run `bash benchmarks/gpu_check.sh` with carry [".gpu-data"] and a timeout of about 500 s.
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD" VAE_EXPLORER_DATA="$PWD/.gpu-data"
logs="${OUT:-/tmp}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
timeout 240 python3 -m pytest -q -p no:cacheprovider -rs tests/unit/training/test_devices.py \
    "tests/unit/data/test_image_folder.py::test_a_set_on_disk_is_held_on_the_gpu_as_uint8_when_it_fits" 2>&1 | tee "$logs/gpu-tests.log"
timeout 240 python3 benchmarks/gpu_training.py --epochs 4 2>&1 | grep -v "^USDT\|^ERROR:.*gpuGetDeviceCount" | tee "$logs/gpu-bench.log"

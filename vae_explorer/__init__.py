"""vae_explorer: train, load and explore variational autoencoders (Kingma & Welling, arXiv:1312.6114).

    from vae_explorer import load_checkpoint, load_dataset, DataConfig
    ckpt = load_checkpoint("checkpoints/digits-mlp")
    images = ckpt.model.reconstruct(load_dataset(ckpt.config.data).test_x[:8])
"""

import os as _os
import sys as _sys

if "streamlit" in _sys.modules and "torch" not in _sys.modules:
    # In the app, idle OpenMP threads spin only briefly before they sleep: spinning ~300,000 rounds
    # (libgomp's default) after each tiny decode took the CPU that the server and the browser need
    # (fashion-mnist-conv while dragging: 22 -> 29 pictures/s, painted p95 105 -> 80-84 ms), while
    # training speed is unchanged (3 epochs 5.2 s either way; sleeping at once would double it).
    # libgomp reads this once, when torch loads it; the CLI keeps the default.
    _os.environ.setdefault("GOMP_SPINCOUNT", "30000")

import gc as _gc

# Importing torch creates ~175,000 objects that the cyclic garbage collector tracks, and it scans
# them again and again while they pile up, though none is garbage. So it is paused for these
# imports, and the new objects go straight to the oldest generation (freeze, unfreeze) rather
# than all through the youngest, whose next collection would take 55 ms. `import vae_explorer`:
# 0.97 -> 0.88 s here (a command, the app's cold start and each test process start sooner). The
# collector is switched back on if it was on; objects someone else froze are left as they are.
_gc_was_enabled = _gc.isenabled()
_gc.disable()
try:
    from .checkpoints import Checkpoint, load_checkpoint, save_checkpoint
    from .config import DataConfig, ModelConfig, RunConfig, TrainConfig, load_config
    from .data import Dataset, load_dataset
    from .errors import CheckpointError, ConfigError, DatasetError, TrainingError, VaeExplorerError
    from .evaluation import evaluate
    from .models import VAE, build_model, fit_to_data
    from .training import TrainingEvent, train
finally:
    if _gc.get_freeze_count() == 0:
        _gc.freeze()
        _gc.unfreeze()
    if _gc_was_enabled:
        _gc.enable()

__version__ = "0.1.0"
__all__ = [
    "Checkpoint", "CheckpointError", "ConfigError", "DataConfig", "Dataset", "DatasetError", "ModelConfig", "RunConfig",
    "TrainConfig", "TrainingError", "TrainingEvent", "VAE", "VaeExplorerError", "build_model", "evaluate", "fit_to_data",
    "load_checkpoint", "load_config", "load_dataset", "save_checkpoint", "train",
]

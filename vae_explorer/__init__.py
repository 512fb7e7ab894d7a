"""vae_explorer: train, load and explore variational autoencoders (Kingma & Welling, arXiv:1312.6114).

    from vae_explorer import load_checkpoint, load_dataset
    ckpt = load_checkpoint("digits-mlp")          # a shipped checkpoint by name, or any folder
    images = ckpt.model.reconstruct(load_dataset(ckpt.config.data).test_x[:8])

The package follows the data: data -> models -> training -> checkpoints -> latent -> evaluation,
then the command line (cli/) and the Streamlit app (app/, the only part importing streamlit).
"""

from .checkpoints import Checkpoint, load_checkpoint, load_training_state, save_checkpoint
from .config import DataConfig, ModelConfig, RunConfig, TrainConfig, load_config
from .data import Dataset, load_dataset
from .errors import CheckpointError, ConfigError, DatasetError, TrainingError, VaeExplorerError
from .evaluation import evaluate
from .models import VAE, build_model, fit_to_data
from .training import TrainingEvent, TrainingState, train

__version__ = "0.2.0"


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "Dataset",
    "DatasetError",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "TrainingError",
    "TrainingEvent",
    "TrainingState",
    "VAE",
    "VaeExplorerError",
    "build_model",
    "evaluate",
    "fit_to_data",
    "load_checkpoint",
    "load_config",
    "load_dataset",
    "load_training_state",
    "save_checkpoint",
    "train",
]

"""Datasets: the registry (digits, fashion-mnist, mnist, kmnist, shapes, photos, folder:PATH) and
uploaded pictures turned into model inputs."""

from . import digits, idx, image_folder, photos, shapes  # noqa: F401  (each module registers its datasets)
from .registry import DATASETS, Dataset, DatasetSpec, dataset_spec, list_datasets, load_dataset, register_dataset
from .uploads import ImageError, prepare_image

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetSpec",
    "ImageError",
    "dataset_spec",
    "list_datasets",
    "load_dataset",
    "prepare_image",
    "register_dataset",
]

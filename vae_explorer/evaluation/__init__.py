"""Evaluation: the ELBO and its parts, the IWAE bound, active units, the Fréchet distance of
samples in a per-dataset classifier's features, and disentanglement on data with known factors."""

from .disentanglement import factor_vae_score, mig, mutual_information
from .fid import Classifier, find_classifier, frechet_distance, get_classifier, train_classifier
from .metrics import (
    ACTIVE_UNIT_THRESHOLD,
    active_dimensions,
    active_units,
    basic_metrics,
    evaluate,
    evaluate_with_gaps,
    first_test_images,
    importance_bounds,
    iwae_log_likelihood,
    kl_per_dimension,
    neg_elbo_per_image,
    sample_quality,
)

__all__ = [
    "ACTIVE_UNIT_THRESHOLD",
    "Classifier",
    "active_dimensions",
    "active_units",
    "basic_metrics",
    "evaluate",
    "evaluate_with_gaps",
    "factor_vae_score",
    "find_classifier",
    "first_test_images",
    "frechet_distance",
    "get_classifier",
    "importance_bounds",
    "iwae_log_likelihood",
    "neg_elbo_per_image",
    "kl_per_dimension",
    "mig",
    "mutual_information",
    "sample_quality",
    "train_classifier",
]

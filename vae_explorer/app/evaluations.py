"""Evaluate's figures: the feature classifier for the Fréchet distance (trained once with a progress
bar, then shared) and the test metrics of a checkpoint, kept for every session of this server."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import asdict

import numpy as np
import streamlit as st

from ..checkpoints import Checkpoint
from . import catalog


def feature_classifier(checkpoint: Checkpoint):
    """The feature classifier of the checkpoint's dataset for the Fréchet distance, with its info;
    trained here with a progress bar the first time (seconds to a minute), then read from disk.
    None when the dataset is not available or has a single class."""
    from ..evaluation import find_classifier

    data = catalog.dataset_of(checkpoint)
    if data is None or data.num_classes < 2:
        return None
    key = tuple(sorted(asdict(checkpoint.config.data).items()))
    if find_classifier(checkpoint.config.data) is None:  # trained outside the cache: a cached function draws nothing
        from ..evaluation import get_classifier

        bar = st.progress(0.0, text=f"Training the feature classifier for {data.name} (once; it is kept on disk)…")
        get_classifier(
            checkpoint.config.data,
            lambda step, total: bar.progress(
                step / total, text=f"Training the feature classifier for {data.name} (once): step {step} of {total}"
            ),
        )
        bar.empty()
    return _classifier(key)


@st.cache_resource(max_entries=8, show_spinner=False)
def _classifier(config_key: tuple):
    """The classifier from disk (feature_classifier trained it there first), one object for every session."""
    from ..config import DataConfig
    from ..evaluation import get_classifier

    return get_classifier(DataConfig(**dict(config_key)))


EVALUATIONS_KEPT = 32
_evaluated: OrderedDict = OrderedDict()  # (path, saved, k, test images, classifier) -> (metrics, gaps), newest last
_evaluating: dict[tuple, threading.Lock] = {}  # one computation per key at a time
_evaluations_lock = threading.Lock()


def evaluation(
    checkpoint: Checkpoint, k: int, test_images: int | None, classifier_key: str | None, classifier=None, progress=None
) -> tuple[dict, np.ndarray] | None:
    """Test metrics of a checkpoint (see vae_explorer.evaluation) and its per-image ELBO-IWAE gaps,
    kept for every session of this server (the 32 newest). Not st.cache_data: the page's progress
    bar, told by `progress(fraction, what)`, belongs to the session that computes, and a cached
    function would replay it into others. A second session asking for the same figures meanwhile
    waits for the first's instead of computing them again."""
    from ..evaluation import evaluate_with_gaps, first_test_images

    key = (str(checkpoint.path), catalog.stamp(checkpoint.path), k, test_images, classifier_key)
    with _evaluations_lock:
        if key in _evaluated:
            _evaluated.move_to_end(key)
            return _evaluated[key]
        busy = _evaluating.setdefault(key, threading.Lock())
    if busy.locked() and progress is not None:
        progress(0.0, "the same figures are being computed for another visitor; waiting for them")
    with busy:
        with _evaluations_lock:
            if key in _evaluated:
                return _evaluated[key]
        data = catalog.dataset_of(checkpoint)
        if data is None:
            return None
        model, info = classifier if classifier is not None else (None, None)
        result = evaluate_with_gaps(
            checkpoint.model,
            first_test_images(data, test_images),
            k=k,
            beta=checkpoint.config.train.beta,
            classifier=model,
            classifier_info=info,
            progress=progress,
        )
        with _evaluations_lock:
            _evaluated[key] = result
            while len(_evaluated) > EVALUATIONS_KEPT:
                _evaluated.popitem(last=False)
            _evaluating.pop(key, None)
    return result

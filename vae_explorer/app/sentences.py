"""Sentences that cite a model's numbers, with the direction of each comparison read from the
numbers themselves, so a retrained checkpoint can never leave a page saying the opposite of its table."""

from __future__ import annotations

import math


def _finite(metrics: dict, key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def iwae_comparison(iwae: dict, plain: dict, k: int = 100) -> str:
    """What training on the IWAE bound did, against the plain VAE: its bound -L_k (iwae_nll) and its
    neg-ELBO, each said lower or higher as they are (both are losses: lower is better)."""
    said = "Trained on it, a model is judged by its fit to log p(x), not by how well one Gaussian guesses the posterior"
    bound, bound_plain = _finite(iwae, "iwae_nll"), _finite(plain, "iwae_nll")
    elbo, elbo_plain = _finite(iwae, "neg_elbo"), _finite(plain, "neg_elbo")
    if None in (bound, bound_plain, elbo, elbo_plain):
        return said + "."
    fit = (
        "lower: a better fit to the data"
        if bound < bound_plain
        else "higher: a worse fit to the data"
        if bound > bound_plain
        else "the same"
    )
    gap = (
        "higher: its ELBO is lower"
        if elbo > elbo_plain
        else "lower: its ELBO is higher"
        if elbo < elbo_plain
        else "the same"
    )
    return (
        f"{said}: here its −L_{k} is {bound:.2f} nats against the plain VAE's {bound_plain:.2f} ({fit}), and its "
        f"neg-ELBO {elbo:.2f} against {elbo_plain:.2f} ({gap})."
    )


def typicality(name: str, value: float, test_values) -> tuple[str, bool]:
    """How an uploaded image's neg-ELBO stands among the test images' (nats, one z each): the
    sentence, and whether the image is far from the data (above every test image's, or the top 1%)."""
    import numpy as np

    values = np.sort(np.asarray(test_values, dtype=float))
    if not len(values) or not math.isfinite(value):
        return "", False
    median, top = float(np.median(values)), float(np.quantile(values, 0.99))
    higher_than = float(np.searchsorted(values, value, side="right")) / len(values)
    if value > values[-1]:
        return (
            f"Far from the data {name} was trained on: this image's neg-ELBO is {value:.1f} nats, more than any of "
            f"its {len(values):,} test images' (median {median:.1f}, 99th percentile {top:.1f}). Its reconstruction "
            "and its place on the map say little about it: the model has not seen anything like it.",
            True,
        )
    if value > top:
        return (
            f"Unusual for {name}: this image's neg-ELBO is {value:.1f} nats, higher than {higher_than:.1%} of its "
            f"test images' (median {median:.1f}).",
            True,
        )
    return (
        f"Like the data {name} was trained on: this image's neg-ELBO is {value:.1f} nats, higher than "
        f"{higher_than:.0%} of its test images' (median {median:.1f}).",
        False,
    )


def elbo_sum(metrics: dict) -> str:
    """ "reconstruction R + KL K = N nats per image", with figures that add up as written: each is
    rounded to two places, and where the rounded terms miss the rounded total (27.27 + 12.06 against
    39.33) the sign says so (≈) instead of an equation a student can check and find false."""
    recon, kl, total = (_finite(metrics, key) for key in ("recon", "kl", "neg_elbo"))
    if None in (recon, kl, total):
        return ""
    terms = round(recon, 2) + round(kl, 2)
    sign = "=" if abs(terms - round(total, 2)) < 0.005 else "≈"
    return f"reconstruction {recon:.2f} + KL {kl:.2f} {sign} {total:.2f} nats per image"

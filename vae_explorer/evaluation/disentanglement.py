"""Disentanglement metrics for data with known generative factors (the `shapes` set).

Both take latent codes (N, D), the posterior means, and the integer factor values (N, K).

MIG, the mutual information gap (Chen et al., arXiv:1802.04942, eq. 6): for each factor, the gap
between the two latent dimensions that share the most information with it, normalised by the
factor's entropy, averaged over factors. 1: each factor lives in exactly one dimension.

FactorVAE score (Kim & Mnih, arXiv:1802.05983, section 4): fix one factor, draw a batch of images
with everything else random, and vote for the latent dimension whose (normalised) value varies
least; a majority-vote classifier from dimensions to factors is scored by its accuracy. 1: every
factor is told apart by one dimension.
"""

from __future__ import annotations

import numpy as np


def _discretize(codes: np.ndarray, bins: int) -> np.ndarray:
    """Each latent dimension cut into `bins` equal-width bins, as in disentanglement_lib."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], bins)[1]
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def mutual_information(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> np.ndarray:
    """I(z_j; v_k) in nats for every latent dimension j and factor k: (D, K)."""
    from sklearn.metrics import mutual_info_score  # here, not at import: scikit-learn takes a second to import

    discrete = _discretize(codes, bins)
    return np.array(
        [
            [mutual_info_score(factors[:, k], discrete[:, j]) for k in range(factors.shape[1])]
            for j in range(codes.shape[1])
        ]
    )


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> tuple[float, list[float]]:
    """The mutual information gap and its value per factor."""
    if codes.shape[1] < 2:
        raise ValueError("MIG needs at least two latent dimensions")
    from sklearn.metrics import mutual_info_score

    info = mutual_information(codes, factors, bins)  # (D, K)
    entropy = np.array([mutual_info_score(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])
    top = np.sort(info, axis=0)[::-1]  # per factor, largest first
    per_factor = (top[0] - top[1]) / np.maximum(entropy, 1e-12)
    return float(per_factor.mean()), [float(v) for v in per_factor]


def factor_vae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    votes: int = 1000,
    batch: int = 64,
    seed: int = 0,
    collapsed_variance: float = 0.05,
) -> float:
    """Accuracy of the majority-vote classifier, on votes held out from the ones it was built from."""
    rng = np.random.default_rng(seed)
    scale = codes.std(axis=0)
    active = scale**2 > collapsed_variance * np.max(scale**2)  # dimensions that carry anything
    normalised = codes / np.where(scale > 0, scale, 1.0)
    n_dims, n_factors = codes.shape[1], factors.shape[1]

    def vote() -> tuple[int, int]:
        k = int(rng.integers(n_factors))
        value = rng.choice(np.unique(factors[:, k]))
        rows = np.flatnonzero(factors[:, k] == value)
        sample = normalised[rng.choice(rows, size=batch, replace=len(rows) < batch)]
        variance = np.where(active, sample.var(axis=0), np.inf)
        return int(np.argmin(variance)), k

    def table(n: int) -> np.ndarray:
        counts = np.zeros((n_dims, n_factors), dtype=np.int64)
        for _ in range(n):
            d, k = vote()
            counts[d, k] += 1
        return counts

    train, test = table(votes), table(votes // 2)
    guess = train.argmax(axis=1)  # each dimension votes for the factor it was most often chosen for
    return float(test[np.arange(n_dims), guess].sum() / test.sum())

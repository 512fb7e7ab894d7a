"""The ELBO, the IWAE bound and `evaluate` against a linear-Gaussian VAE, whose log p(x) and true
posterior are known in closed form (probabilistic PCA; see probes.LinearGaussian)."""

import math

import pytest
import torch
from probes import LinearGaussian

from vae_explorer.data import Dataset
from vae_explorer.evaluation import evaluate, evaluate_with_gaps, importance_bounds

TRUTH = LinearGaussian()
X = TRUTH.sample(6)  # (6, 1, 2, 3) float64 images drawn from the model


def many(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.repeat_interleave(n, 0)


def test_the_closed_forms_agree_with_each_other():
    # ELBO = log p(x) - KL(q || p(z|x)) for any q (the identity the VAE rests on), and the true
    # posterior as q leaves no gap.
    true_mean, true_var = TRUTH.posterior(X)
    mean, var = 0.7 * true_mean + 0.2, 1.8 * true_var
    assert torch.allclose(TRUTH.elbo(X, mean, var), TRUTH.log_px(X) - TRUTH.kl_to_posterior(X, mean, var), atol=1e-10)
    assert torch.allclose(TRUTH.elbo(X, true_mean, true_var), TRUTH.log_px(X), atol=1e-10)


def test_the_model_built_from_the_truth_encodes_the_true_posterior():
    model = TRUTH.vae()
    q = model.encode(X)
    true_mean, true_var = TRUTH.posterior(X)
    assert torch.allclose(q.mean, true_mean, atol=1e-12) and torch.allclose(q.logvar.exp(), true_var, atol=1e-12)


@pytest.mark.parametrize("k", [1, 7, 64])
def test_with_the_true_posterior_every_importance_weight_is_p_of_x(k):
    # w = p(x, z) / p(z|x) = p(x) for every z: both bounds equal log p(x) exactly, whatever the samples.
    model = TRUTH.vae()
    elbo_k, iwae = importance_bounds(model, X, k=k, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(elbo_k, TRUTH.log_px(X), atol=1e-9)
    assert torch.allclose(iwae, TRUTH.log_px(X), atol=1e-9)


def test_the_training_loss_is_the_negative_elbo_in_expectation():
    # A wrong q: the loss (one sample of z per image) averages to -ELBO of that q, its KL part is
    # exact per image, and the ELBO sits below log p(x) by KL(q || p(z|x)).
    model = TRUTH.vae(mean_scale=0.7, mean_shift=0.2, log_var_shift=math.log(1.8))
    mean, var = TRUTH.q_of(model, X)
    n = 40_000
    parts = model.loss(many(X, n), generator=torch.Generator().manual_seed(0))
    total = parts.total.view(len(X), n)
    standard_error = total.std(1) / math.sqrt(n)
    assert ((total.mean(1) + TRUTH.elbo(X, mean, var)).abs() < 4 * standard_error).all()
    assert torch.allclose(parts.kl.view(len(X), n)[:, 0], TRUTH.kl_to_prior(mean, var), atol=1e-10)
    assert (TRUTH.elbo(X, mean, var) < TRUTH.log_px(X) - 0.05).all()


def test_beta_weights_only_the_kl():
    model = TRUTH.vae(mean_scale=0.7)
    plain = model.loss(X, beta=1.0, generator=torch.Generator().manual_seed(0))
    heavy = model.loss(X, beta=4.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(heavy.recon, plain.recon) and torch.allclose(heavy.total, plain.recon + 4.0 * plain.kl)


def test_the_iwae_bound_stays_below_log_p_of_x_and_climbs_to_it():
    model = TRUTH.vae(mean_scale=0.7, mean_shift=0.2, log_var_shift=math.log(1.8))
    log_px = TRUTH.log_px(X[:2])
    mean, var = TRUTH.q_of(model, X[:2])
    elbo = TRUTH.elbo(X[:2], mean, var)
    bounds = {}
    for k, repeats in ((1, 4000), (10, 2000), (100, 400), (1000, 100)):
        # `repeats` independent estimates per image, averaged: E[L_k] rises with k towards log p(x)
        elbo_k, iwae = importance_bounds(model, many(X[:2], repeats), k=k, generator=torch.Generator().manual_seed(k))
        elbo_k, iwae = elbo_k.view(2, repeats), iwae.view(2, repeats)
        bounds[k] = iwae.mean(1)
        margin = 4 * elbo_k.std(1) / math.sqrt(repeats)
        assert ((elbo_k.mean(1) - elbo).abs() < margin).all(), k  # the k-sample ELBO estimate is unbiased
        if k == 1:  # L_1 is the ELBO, sample by sample
            assert torch.equal(iwae, elbo_k)
    for small, large in ((1, 10), (10, 100), (100, 1000)):
        assert (bounds[small] < bounds[large]).all(), (small, large)
    assert (bounds[1000] <= log_px + 0.01).all()
    gap = log_px - elbo  # KL(q || p(z|x)): L_1000 closes most of it
    assert ((log_px - bounds[1000]) < 0.1 * gap).all()


def _dataset(x: torch.Tensor) -> Dataset:
    labels = torch.zeros(len(x), dtype=torch.long)
    return Dataset("linear-gaussian", x, labels, x, labels, ["all"])


def test_evaluate_reports_the_closed_form_figures():
    model = TRUTH.vae(mean_scale=0.7, mean_shift=0.2, log_var_shift=math.log(1.8))
    x = TRUTH.sample(3000, seed=5)
    mean, var = TRUTH.q_of(model, x)
    metrics, gaps = evaluate_with_gaps(model, _dataset(x), k=50)
    neg_elbo, log_px = -TRUTH.elbo(x, mean, var), TRUTH.log_px(x)
    assert metrics["kl"] == pytest.approx(float(TRUTH.kl_to_prior(mean, var).mean()), abs=1e-9)
    assert metrics["kl_per_dim"] == pytest.approx((0.5 * (mean**2 + var - 1 - var.log())).mean(0).tolist(), abs=1e-9)
    # one sample per image: the sampling error of a 3,000-image mean, about 0.05 nats here
    assert metrics["neg_elbo"] == pytest.approx(float(neg_elbo.mean()), abs=0.2)
    assert metrics["recon"] == pytest.approx(float(neg_elbo.mean()) - metrics["kl"], abs=0.2)
    assert float(-log_px.mean()) - 0.02 <= metrics["iwae_nll"] < metrics["neg_elbo"]
    assert metrics["elbo_iwae_gap"] == pytest.approx(float(gaps.mean()))
    assert 0 < metrics["elbo_iwae_gap"] < float((log_px + neg_elbo).mean()) + 0.05  # at most KL(q || p(z|x))
    assert metrics["active_units"] == 3 and metrics["n_test"] == 3000


def test_evaluate_with_the_true_posterior_finds_log_p_of_x():
    x = TRUTH.sample(500, seed=6)
    metrics = evaluate(TRUTH.vae(), _dataset(x), k=20)
    assert metrics["iwae_nll"] == pytest.approx(float(-TRUTH.log_px(x).mean()), abs=1e-9)
    assert metrics["elbo_iwae_gap"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["neg_elbo"] == pytest.approx(float(-TRUTH.log_px(x).mean()), abs=0.3)

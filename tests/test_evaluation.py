import pytest
import torch

from vae_explorer.evaluation import active_units, evaluate, iwae_log_likelihood
from vae_explorer.latent import interpolate, manifold_grid, normal_quantiles, sample_prior, traverse


@pytest.fixture(scope="module")
def metrics(tiny_run, tiny_data):
    model, _, _ = tiny_run
    return evaluate(model, tiny_data, k=20)


def test_metrics_keys_and_consistency(metrics, tiny_run):
    assert {"neg_elbo", "recon", "kl", "kl_per_dim", "active_units", "iwae_nll", "iwae_k"} <= set(metrics)
    assert metrics["neg_elbo"] == pytest.approx(metrics["recon"] + metrics["kl"])
    assert len(metrics["kl_per_dim"]) == 2 and min(metrics["kl_per_dim"]) >= 0
    assert sum(metrics["kl_per_dim"]) == pytest.approx(metrics["kl"], rel=1e-4)  # analytic KL is exact per image
    assert metrics["iwae_k"] == 20 and 0 <= metrics["active_units"] <= 2


def test_iwae_bound_is_tighter_than_the_elbo(metrics):
    # -L_k <= -L_1: the importance-weighted bound on -log p(x) sits below the negative ELBO.
    assert metrics["iwae_nll"] <= metrics["neg_elbo"] + 0.05


def test_iwae_tightens_with_k(tiny_run, tiny_data):
    model, _, _ = tiny_run
    x = tiny_data.test_x
    bound = {k: float(iwae_log_likelihood(model, x, k=k, generator=torch.Generator().manual_seed(0)).mean()) for k in (1, 10, 200)}
    assert bound[1] < bound[10] < bound[200]


def test_evaluation_is_repeatable(tiny_run, tiny_data, metrics):
    model, _, _ = tiny_run
    again = evaluate(model, tiny_data, k=20)
    assert again["neg_elbo"] == metrics["neg_elbo"] and again["iwae_nll"] == metrics["iwae_nll"]


def test_active_units_on_a_constructed_case():
    torch.manual_seed(0)
    mu = torch.zeros(500, 4)
    mu[:, 0] = torch.randn(500)  # variance 1: active
    mu[:, 1] = 0.5 * torch.randn(500)  # variance 0.25: active
    mu[:, 2] = 0.05 * torch.randn(500)  # variance 0.0025: collapsed
    assert active_units(mu) == 2


def test_latent_helpers(tiny_run):
    model, _, _ = tiny_run
    assert sample_prior(model, 5).shape == (5, 1, 8, 8)
    assert manifold_grid(model, 3).shape == (9, 1, 8, 8)
    q = normal_quantiles(3)
    assert float(q[1]) == pytest.approx(0.0, abs=1e-6) and float(q[2]) == pytest.approx(1.6449, abs=1e-3)
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    line, arc = interpolate(z0, z1, 5, "linear"), interpolate(z0, z1, 5, "slerp")
    assert torch.allclose(line[0], z0) and torch.allclose(line[-1], z1) and torch.allclose(arc[-1], z1, atol=1e-5)
    assert float(arc[2].norm()) > float(line[2].norm())  # slerp keeps away from the origin
    grid = traverse(model, torch.zeros(2), [0, 1], torch.linspace(-3, 3, 4))
    assert grid.shape == (8, 1, 8, 8)


def test_shapes_models_get_disentanglement_metrics():
    from vae_explorer import DataConfig, ModelConfig, build_model, fit_to_data, load_dataset

    data = load_dataset(DataConfig(dataset="shapes", max_train=32, max_test=400))
    model = build_model(fit_to_data(ModelConfig(architecture="conv", latent_dim=3, channels=[4, 4], hidden_sizes=[8]),
                                    data.image_shape, data.class_names), seed=0)
    metrics = evaluate(model, data, k=2)
    assert 0.0 <= metrics["mig"] <= 1.0 and 0.0 <= metrics["factor_vae_score"] <= 1.0
    assert set(metrics["mig_per_factor"]) == {"shape", "scale", "rotation", "pos_x", "pos_y"}


def test_iwae_gap_is_never_negative_and_zero_for_one_sample(tiny_run, tiny_data):
    from vae_explorer.evaluation import evaluate_with_gaps, first_test_images

    model, _, _ = tiny_run
    data = first_test_images(tiny_data, 32)
    metrics, gaps = evaluate_with_gaps(model, data, k=50)
    assert gaps.shape == (32,) and (gaps >= 0).all() and gaps.mean() == pytest.approx(metrics["elbo_iwae_gap"])
    assert metrics["n_test"] == 32
    _, one = evaluate_with_gaps(model, data, k=1)
    assert abs(one).max() < 1e-9
